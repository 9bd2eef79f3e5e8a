//! The session's error type and the server's structured errors.

use std::fmt;

use super::State;

/// An error or notice sent by the server (ErrorResponse or NoticeResponse), field by field.
///
/// The fields are the server's, as data: SQLSTATE, message, detail, hint, context and the rest.
/// `Display` reads like psql with `\set VERBOSITY verbose`:
///
/// ```
/// use copyman_core::session::DbError;
///
/// let mut e = DbError::new("ERROR", "23505", "duplicate key value violates unique constraint \"t_pkey\"");
/// e.detail = Some("Key (id)=(1) already exists.".into());
/// assert_eq!(
///     e.to_string(),
///     "ERROR:  23505: duplicate key value violates unique constraint \"t_pkey\"\n\
///      DETAIL:  Key (id)=(1) already exists."
/// );
/// assert!(!e.is_fatal());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct DbError {
    /// The severity as the server wrote it (`S`, possibly localized): ERROR, FATAL, PANIC, or for
    /// notices WARNING, NOTICE, DEBUG, INFO, LOG.
    pub severity: String,
    /// The severity never localized (`V`, servers 9.6 and later), when sent.
    pub severity_nonlocalized: Option<String>,
    /// The SQLSTATE code (`C`), e.g. `23505`.
    pub code: String,
    /// The primary message (`M`).
    pub message: String,
    /// The detail message (`D`).
    pub detail: Option<String>,
    /// The hint (`H`).
    pub hint: Option<String>,
    /// 1-based character position of the error in the query string (`P`).
    pub position: Option<u32>,
    /// Position in an internally generated query (`p`).
    pub internal_position: Option<u32>,
    /// The internally generated query that failed (`q`).
    pub internal_query: Option<String>,
    /// Where the error happened (`W`): a call stack of PL functions, or the COPY line, e.g.
    /// `COPY t, line 3: "3\tx"`.
    pub context: Option<String>,
    /// Schema of the object involved (`s`).
    pub schema: Option<String>,
    /// Table of the object involved (`t`).
    pub table: Option<String>,
    /// Column involved (`c`).
    pub column: Option<String>,
    /// Data type involved (`d`).
    pub datatype: Option<String>,
    /// Constraint involved (`n`).
    pub constraint: Option<String>,
    /// Server source file (`F`).
    pub file: Option<String>,
    /// Server source line (`L`).
    pub line: Option<u32>,
    /// Server source routine (`R`).
    pub routine: Option<String>,
}

impl DbError {
    /// An error with only its severity, SQLSTATE and message set (for tests and synthesized errors).
    pub fn new(severity: &str, code: &str, message: &str) -> Self {
        Self {
            severity: severity.to_owned(),
            code: code.to_owned(),
            message: message.to_owned(),
            ..Self::default()
        }
    }

    /// Whether the server ends the connection after this error (severity FATAL or PANIC).
    pub fn is_fatal(&self) -> bool {
        let severity = self
            .severity_nonlocalized
            .as_deref()
            .unwrap_or(&self.severity);
        matches!(severity, "FATAL" | "PANIC")
    }

    /// Parses the body of an ErrorResponse (`tag` `E`) or NoticeResponse (`N`) with
    /// postgres-protocol's `backend::Message::parse` and its field iterator (fields of a type
    /// byte and a NUL-terminated string, ended by a zero byte). Strings are decoded from the
    /// session's `client_encoding` ([`crate::statement::decode_text`]: a LATIN1 session's
    /// `"ééééé"` was printed as U+FFFDs, the value lost, types66 F14), lossily.
    pub(crate) fn parse(tag: u8, body: &[u8], encoding: &str) -> Result<Self, String> {
        use bytes::{BufMut, BytesMut};
        use fallible_iterator::FallibleIterator;
        use postgres_protocol::message::backend::Message;

        // The session has split the message off already; postgres-protocol parses whole ones.
        let len = body
            .len()
            .checked_add(4)
            .and_then(|len| i32::try_from(len).ok())
            .ok_or("error fields too long")?;
        let mut message = BytesMut::with_capacity(body.len() + 5);
        message.put_u8(tag);
        message.put_i32(len);
        message.put_slice(body);
        let parsed = Message::parse(&mut message).map_err(|e| e.to_string())?;
        let mut fields = match &parsed {
            Some(Message::ErrorResponse(body)) => body.fields(),
            Some(Message::NoticeResponse(body)) => body.fields(),
            _ => {
                return Err(format!(
                    "message '{}' holds no error fields",
                    char::from(tag)
                ));
            }
        };
        let mut error = Self::default();
        while let Some(field) = fields.next().map_err(|e| e.to_string())? {
            let value = crate::statement::decode_text(field.value_bytes(), encoding);
            match field.type_() {
                b'S' => error.severity = value,
                b'V' => error.severity_nonlocalized = Some(value),
                b'C' => error.code = value,
                b'M' => error.message = value,
                b'D' => error.detail = Some(value),
                b'H' => error.hint = Some(value),
                b'P' => error.position = value.parse().ok(),
                b'p' => error.internal_position = value.parse().ok(),
                b'q' => error.internal_query = Some(value),
                b'W' => error.context = Some(value),
                b's' => error.schema = Some(value),
                b't' => error.table = Some(value),
                b'c' => error.column = Some(value),
                b'd' => error.datatype = Some(value),
                b'n' => error.constraint = Some(value),
                b'F' => error.file = Some(value),
                b'L' => error.line = value.parse().ok(),
                b'R' => error.routine = Some(value),
                // The protocol says unknown field types are to be ignored.
                _ => {}
            }
        }
        if error.severity.is_empty()
            && let Some(v) = &error.severity_nonlocalized
        {
            error.severity.clone_from(v);
        }
        Ok(error)
    }
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:  ", self.severity)?;
        if !self.code.is_empty() {
            write!(f, "{}: ", self.code)?;
        }
        f.write_str(&self.message)?;
        if let Some(detail) = &self.detail {
            write!(f, "\nDETAIL:  {detail}")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\nHINT:  {hint}")?;
        }
        if let Some(context) = &self.context {
            write!(f, "\nCONTEXT:  {context}")?;
        }
        Ok(())
    }
}

impl std::error::Error for DbError {}

/// Everything that can go wrong in a [`Session`](super::Session).
///
/// Errors that end the session (a FATAL server error, an authentication or protocol failure, a
/// closed connection) are sticky: once one has happened, every later call returns it again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The server reported an error that ended the operation or the session (an ErrorResponse
    /// during startup, such as a wrong password or an unknown database, or any FATAL error).
    #[error(transparent)]
    Db(Box<DbError>),
    /// Authentication cannot proceed on the client side.
    #[error("{reason}")]
    Auth {
        /// What is wrong, e.g. `unsupported authentication method: GSS`.
        reason: String,
    },
    /// The server broke the protocol: a malformed message, or a message not allowed in the
    /// session's state.
    #[error("protocol violation by the server: {reason}")]
    Protocol {
        /// What was wrong with the server's bytes.
        reason: String,
    },
    /// A COPY went the other way than the operation asked for (e.g. `copy_out()` of a
    /// `COPY … FROM STDIN`); the session made the server give up that COPY.
    #[error("statement started {got} but a {expected} was expected")]
    WrongDirection {
        /// The COPY the operation asked for, e.g. `COPY TO STDOUT`.
        expected: &'static str,
        /// The COPY the server started, e.g. `COPY FROM STDIN`.
        got: &'static str,
    },
    /// `copy_out()`/`copy_in()` ran a statement that started no COPY.
    #[error("statement is not a COPY (server answered {tag})")]
    NotCopy {
        /// The command tag of the statement's CommandComplete (`EMPTY QUERY` for an empty one).
        tag: String,
    },
    /// `query()` ran a statement that started a COPY; the session made the server give it up
    /// (an error there: a transaction around it is aborted), or a COPY TO STDOUT ran to its end
    /// before the cancel reached it (its data read and discarded; a transaction around it still
    /// open: lib49 F2, it was said aborted, and a COMMIT after committed).
    #[error(
        "statement started {got}, {}: a COPY runs as a copy's endpoint (StatementProducer for \
         COPY TO STDOUT, StatementReceiver for COPY FROM STDIN)",
        match completed {
            false => "which the server was made to give up (an error there: a transaction \
                      around it is aborted)",
            true => "which ran to its end before the cancel copyman sent reached it (its data \
                     read and discarded; no error there: a transaction around it is still open)",
        }
    )]
    UnexpectedCopy {
        /// The COPY the server started, e.g. `COPY TO STDOUT`.
        got: &'static str,
        /// It ended without an error (its `COPY n`), not given up.
        completed: bool,
    },
    /// A connection's `execute()` or `query()` was given a statement that reads as a COPY:
    /// not sent (it aborted a transaction around it, whose COMMIT then rolled back, lib44 F4).
    #[error(
        "the statement is a {got}, not sent: a COPY runs as a copy's endpoint (StatementProducer \
         for COPY TO STDOUT, StatementReceiver for COPY FROM STDIN)"
    )]
    CopyNotSent {
        /// The COPY the statement is, e.g. `COPY FROM STDIN`.
        got: &'static str,
    },
    /// The connection was closed by the server (end of stream without a goodbye).
    #[error("connection closed by the server")]
    Closed,
    /// An operation called in a state that does not allow it.
    #[error("{operation} is not allowed in state {state}")]
    Misuse {
        /// The method called, e.g. `copy_done`.
        operation: &'static str,
        /// The session's state at the call.
        state: State,
    },
    /// A string holds a NUL byte, which the protocol cannot carry.
    #[error("{what} contains a nul byte")]
    NulByte {
        /// Which string, e.g. `query`.
        what: &'static str,
    },
    /// A statement holds characters beyond ASCII while the session's `client_encoding` is not
    /// UTF8 (nor SQL_ASCII into a UTF8 or SQL_ASCII database): the server would read its UTF-8
    /// bytes as other characters (`'é'` as `'Ã©'` under
    /// LATIN1: a `WHERE` that matches other rows, a column not found). Nothing was sent.
    #[error(
        "the statement holds characters beyond ASCII, and the session's client_encoding is \
         {client_encoding}: the server would read them as other characters (a condition would \
         match other rows); nothing was sent: leave client_encoding unset or UTF8 (--encoding, \
         PGCLIENTENCODING, a CONN's client_encoding) for SQL or names beyond ASCII"
    )]
    NotUtf8 {
        /// The session's `client_encoding`.
        client_encoding: String,
    },
    /// Settings the startup message pinned did not take: the server (a connection pooler in
    /// front of it, told to ignore startup parameters, as PgBouncer's
    /// `ignore_startup_parameters`) let the session in without them
    /// ([`StartupConfig::unreported`](super::StartupConfig::unreported)). Text data would be
    /// read and written other than on every other server (`money` in another locale, an array's
    /// NULL read as a string, floats rounded).
    #[error(
        "the server did not apply the session settings of the startup message ({}): a \
         connection pooler that drops startup parameters (PgBouncer's \
         ignore_startup_parameters)? connect to PostgreSQL itself, or have the pooler keep them \
         (PgBouncer 1.20+: track_extra_parameters)",
        .ignored.join("; ")
    )]
    SettingsIgnored {
        /// Each as "lc_monetary is es_AR.utf8, not C".
        ignored: Vec<String>,
    },
    /// A setting that shapes a COPY OUT's data changed while the server wrote it (a function
    /// its statement ran called `set_config`): the rows after it are written otherwise than
    /// those before (a text COPY's dates in another order, its timestamps in another zone) and
    /// would be read as other values. The COPY is given up.
    #[error(
        "the server's {name} changed to '{value}' during its COPY (a function its statement ran \
         set it): the rows after it would be written otherwise than those before, and read as \
         other values; the COPY is given up"
    )]
    OutputChanged {
        /// The setting (`DateStyle`, `IntervalStyle`, `TimeZone`, `client_encoding`).
        name: String,
        /// Its new value.
        value: String,
    },
    /// A CopyData or CopyFail message could not be encoded.
    #[error(transparent)]
    Wire(#[from] copyman_wire::WireError),
    /// The statement given for a COPY is not the COPY needed; nothing was sent.
    #[error(transparent)]
    Statement(#[from] crate::statement::StatementError),
}

impl SessionError {
    /// The server's error, when there is one.
    pub fn db_error(&self) -> Option<&DbError> {
        match self {
            Self::Db(e) => Some(e.as_ref()),
            _ => None,
        }
    }

    pub(crate) fn db(error: DbError) -> Self {
        Self::Db(Box::new(error))
    }

    pub(crate) fn protocol(reason: impl Into<String>) -> Self {
        Self::Protocol {
            reason: reason.into(),
        }
    }

    pub(crate) fn auth(reason: impl Into<String>) -> Self {
        Self::Auth {
            reason: reason.into(),
        }
    }
}
