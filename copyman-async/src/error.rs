//! The one error type of copyman-async.

use std::io;

use copyman_core::Diagnosis;
use copyman_core::session::{DbError, SessionError};

/// What can go wrong with a connection or an endpoint.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The connection string could not be parsed.
    #[error("invalid connection string")]
    Config(#[source] tokio_postgres::Error),
    /// The configuration sets a parameter copyman's raw connections cannot honour; it is
    /// refused rather than ignored.
    #[error(
        "connection parameter {parameter}={value} is not supported by copyman's raw connections"
    )]
    Unsupported {
        /// The parameter, as libpq names it (e.g. `target_session_attrs`).
        parameter: &'static str,
        /// Its value, as given.
        value: String,
    },
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
    /// The connection was closed by copyman to keep a COPY from committing (an endpoint was
    /// dropped in the middle of its COPY, or its abort did not complete in time).
    #[error("connection closed: {reason}")]
    Closed {
        /// Why it was closed.
        reason: &'static str,
    },
    /// The `tokio-postgres` client of a client-bound endpoint failed. The server's error,
    /// when it reported one, is copyman's [`DbError`] as for raw sessions (displayed the same:
    /// SQLSTATE, message, detail), through [`Error::db_error`].
    #[error("{0}")]
    Client(ClientError),
}

impl Error {
    /// The server's error, if the server reported one (on a raw session or through the client
    /// of a client-bound endpoint alike).
    pub fn db_error(&self) -> Option<&DbError> {
        match self {
            Self::Session(e) => e.db_error(),
            Self::Client(e) => e.db_error.as_deref(),
            _ => None,
        }
    }

    /// The SQLSTATE of the server's error, if the server reported one.
    pub fn code(&self) -> Option<&str> {
        self.db_error().map(|e| e.code.as_str())
    }

    /// Whether the connection is gone: closed by the server (or a FATAL error), by the network,
    /// or by copyman. It cannot be used again.
    pub fn is_closed(&self) -> bool {
        match self {
            Self::Session(SessionError::Closed) => true,
            Self::Client(e) => e.error.is_closed(),
            Self::Io(e) => copyman_core::fault::is_connection_lost(e),
            Self::Closed { .. } => true,
            _ => self.db_error().is_some_and(DbError::is_fatal),
        }
    }

    /// The [`Diagnosis`] of an endpoint's error for copyman-core's faults: this crate's
    /// [`Error`] read with [`Error::db_error`] and [`Error::is_closed`].
    pub(crate) fn diagnose(error: &(dyn std::error::Error + 'static)) -> Diagnosis {
        match error.downcast_ref::<Self>() {
            Some(e) => Diagnosis::new(e.db_error().cloned(), e.is_closed()),
            None => Diagnosis::default(),
        }
    }
}

impl From<tokio_postgres::Error> for Error {
    fn from(error: tokio_postgres::Error) -> Self {
        Self::Client(ClientError::new(error))
    }
}

/// A `tokio-postgres` client's error, with the server's error as copyman's [`DbError`].
#[derive(Debug)]
pub struct ClientError {
    error: tokio_postgres::Error,
    db_error: Option<Box<DbError>>,
}

impl ClientError {
    fn new(error: tokio_postgres::Error) -> Self {
        let db_error = error.as_db_error().map(|db| Box::new(db_error(db)));
        Self { error, db_error }
    }

    /// The client's own error.
    pub fn get_ref(&self) -> &tokio_postgres::Error {
        &self.error
    }
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.db_error {
            // Displayed like copyman's own server errors: the client's own text is "db error".
            Some(db) => write!(f, "{db}"),
            None => {
                write!(f, "{}", self.error)?;
                if let Some(source) = std::error::Error::source(&self.error) {
                    write!(f, ": {source}")?;
                }
                Ok(())
            }
        }
    }
}

// Display already says the cause (the server's error, or the client's error and its source).
impl std::error::Error for ClientError {}

/// The `tokio-postgres` crate's server error as copyman's one [`DbError`].
fn db_error(db: &tokio_postgres::error::DbError) -> DbError {
    let mut e = DbError::new(db.severity(), db.code().code(), db.message());
    e.severity_nonlocalized = db.parsed_severity().map(|s| s.to_string());
    e.detail = db.detail().map(str::to_owned);
    e.hint = db.hint().map(str::to_owned);
    match db.position() {
        Some(tokio_postgres::error::ErrorPosition::Original(p)) => e.position = Some(*p),
        Some(tokio_postgres::error::ErrorPosition::Internal { position, query }) => {
            e.internal_position = Some(*position);
            e.internal_query = Some(query.clone());
        }
        None => {}
    }
    e.context = db.where_().map(str::to_owned);
    e.schema = db.schema().map(str::to_owned);
    e.table = db.table().map(str::to_owned);
    e.column = db.column().map(str::to_owned);
    e.datatype = db.datatype().map(str::to_owned);
    e.constraint = db.constraint().map(str::to_owned);
    e.file = db.file().map(str::to_owned);
    e.line = db.line();
    e.routine = db.routine().map(str::to_owned);
    e
}
