//! The one error type of copyman-sync.

use std::{fmt, io};

use copyman_core::session::{DbError, SessionError};

/// What can go wrong with a connection or an endpoint.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The connection string could not be parsed.
    #[error("invalid connection string")]
    Config(#[source] postgres::Error),
    /// A connection parameter is missing or unusable.
    #[error("invalid connection parameters: {0}")]
    Parameters(String),
    /// A host name could not be resolved to an address (libpq's words). The next host, if any,
    /// was tried; this is the error when none connected and this host came last.
    #[error("could not translate host name \"{host}\" to address")]
    Resolve {
        /// The host name.
        host: String,
        /// What the resolver said.
        #[source]
        source: io::Error,
    },
    /// No server could be reached.
    #[error("could not connect to {target}")]
    Connect {
        /// The address tried last (host:port or socket path).
        target: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// TLS could not be set up: settings, certificate files, the server's refusal, the handshake.
    #[error(transparent)]
    Tls(#[from] copyman_tls::TlsError),
    /// The session failed: the server's error (with SQLSTATE), authentication, protocol.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// Reading or writing the socket failed.
    #[error("i/o error on the connection")]
    Io(#[from] io::Error),
    /// The endpoint was used in a state where that is not possible.
    #[error("{0}")]
    State(&'static str),
    /// The `postgres` client of a client-bound endpoint failed. Displayed with the server's
    /// error (SQLSTATE, message, detail) when the server reported one: the client's own text is
    /// only "db error".
    #[error("{}", ClientError(.0))]
    Client(#[from] postgres::Error),
}

impl Error {
    /// The server's error, if the server reported one.
    pub fn db_error(&self) -> Option<&DbError> {
        match self {
            Self::Session(e) => e.db_error(),
            _ => None,
        }
    }

    /// The SQLSTATE of the server's error, if the server reported one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Client(e) => e.code().map(postgres::error::SqlState::code),
            _ => self.db_error().map(|e| e.code.as_str()),
        }
    }
}

/// A `postgres` error, displayed like copyman's own server errors when the server spoke.
struct ClientError<'a>(&'a postgres::Error);

impl fmt::Display for ClientError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(db) = self.0.as_db_error() else {
            write!(f, "{}", self.0)?;
            if let Some(source) = std::error::Error::source(self.0) {
                write!(f, ": {source}")?;
            }
            return Ok(());
        };
        write!(
            f,
            "{}:  {}: {}",
            db.severity(),
            db.code().code(),
            db.message()
        )?;
        if let Some(detail) = db.detail() {
            write!(f, "\nDETAIL:  {detail}")?;
        }
        if let Some(hint) = db.hint() {
            write!(f, "\nHINT:  {hint}")?;
        }
        if let Some(context) = db.where_() {
            write!(f, "\nCONTEXT:  {context}")?;
        }
        Ok(())
    }
}
