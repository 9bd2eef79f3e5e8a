//! Faults and failures, in the vocabulary of py-postgresql's copyman.
//!
//! * [`ReceiverFault`]: one or more receivers failed during a cycle and left the copy; the others
//!   go on. A faulted receiver may be reconciled.
//! * [`ProducerFault`]: the producer failed; nothing changed, the caller may go on or abort.
//! * [`CopyFail`]: the copy as a whole failed; nothing was completed on any receiver that was
//!   still in it, and every connection still alive was handed back usable.
//!
//! Each carries its endpoints' errors as [`EndpointError`]s: the error itself, and at hand
//! the server's error ([`EndpointError::db_error`], [`EndpointError::code`]) and whether the
//! connection is gone ([`EndpointError::is_closed`]), whatever type the endpoint's error has.

use std::error::Error;
use std::fmt;
use std::io;
use std::ops::Deref;
use std::sync::Arc;

use crate::session::{DbError, SessionError};

/// Identifies a receiver of a [`Manager`](crate::manager::Manager): the order in which it was
/// added, from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReceiverId(pub usize);

impl fmt::Display for ReceiverId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An endpoint's error, as the adapters hand it in.
pub type BoxError = Box<dyn Error + Send + Sync + 'static>;

/// An endpoint's error, shared between the fault that reported it and the copy's summary.
///
/// Faults carry [`EndpointError`]s now, which deref to the same `dyn Error`.
pub type SharedError = Arc<dyn Error + Send + Sync + 'static>;

/// What an adapter finds in an endpoint's error of its own types: the server's error and whether
/// the connection is gone. See [`EndpointError::diagnosed`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Diagnosis {
    /// The server's error, if the server reported one.
    pub db_error: Option<DbError>,
    /// Whether the endpoint's connection is gone (closed by the server, the network or
    /// copyman): it cannot be used again.
    pub closed: bool,
}

impl Diagnosis {
    /// A diagnosis with the server's error `db_error` and `closed`.
    pub fn new(db_error: Option<DbError>, closed: bool) -> Self {
        Self { db_error, closed }
    }
}

/// How an adapter reads its own error types into a [`Diagnosis`] (given to the [`Manager`] with
/// [`Manager::set_diagnose`]).
///
/// [`Manager`]: crate::manager::Manager
/// [`Manager::set_diagnose`]: crate::manager::Manager::set_diagnose
pub type Diagnose = fn(&(dyn Error + 'static)) -> Diagnosis;

/// An endpoint's error as faults and outcomes carry it: the error, shared (a fault and the copy's
/// end both hold it), with the server's error and the connection's state at hand.
///
/// It derefs to the error itself (`dyn Error`), and displays as it; its `source()` is the
/// error's. The accessors answer for any endpoint, whatever its error type:
///
/// ```
/// use copyman_core::fault::EndpointError;
/// use copyman_core::session::{DbError, SessionError};
///
/// let server = DbError::new("ERROR", "23505", "duplicate key value violates unique constraint");
/// // As an adapter wraps a session error in its own error type, boxed.
/// let error = EndpointError::new(SessionError::Db(Box::new(server)));
/// assert_eq!(error.code(), Some("23505"));
/// assert!(!error.is_closed());
/// assert!(error.to_string().contains("duplicate key"));
///
/// let gone = EndpointError::new(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
/// assert_eq!(gone.code(), None);
/// assert!(gone.is_closed());
/// ```
#[derive(Clone)]
pub struct EndpointError {
    inner: Arc<Inner>,
}

struct Inner {
    error: BoxError,
    diagnosis: Diagnosis,
}

impl EndpointError {
    /// The endpoint's `error`, diagnosed from copyman-core's own types in its `source()` chain
    /// ([`DbError`], [`SessionError`], `io::Error`).
    pub fn new(error: impl Into<BoxError>) -> Self {
        Self::diagnosed(error.into(), |_| Diagnosis::default())
    }

    /// The endpoint's `error`, diagnosed by `diagnose` first (an adapter reading its own error
    /// types), then as [`EndpointError::new`] does for what that did not find.
    pub fn diagnosed(error: BoxError, diagnose: Diagnose) -> Self {
        // An error that is already one (an endpoint passing a fault on) stays as it is.
        let error = match error.downcast::<Self>() {
            Ok(already) => return *already,
            Err(error) => error,
        };
        let mut diagnosis = Diagnosis::default();
        let mut next: Option<&(dyn Error + 'static)> = Some(&*error);
        while let Some(e) = next {
            // The adapter reads its own errors wherever they stand in the chain (one wrapped
            // in core's `CompletionInDoubt` lost its FATAL's SQLSTATE and its close: lib65 F17).
            let said = diagnose(e);
            if diagnosis.db_error.is_none() {
                diagnosis.db_error = said.db_error.or_else(|| {
                    e.downcast_ref::<DbError>()
                        .or_else(|| e.downcast_ref::<SessionError>()?.db_error())
                        .cloned()
                });
            }
            diagnosis.closed |= said.closed || is_closed(e);
            next = e.source();
        }
        if diagnosis.db_error.as_ref().is_some_and(DbError::is_fatal) {
            // The server ends the session after a FATAL error.
            diagnosis.closed = true;
        }
        Self {
            inner: Arc::new(Inner { error, diagnosis }),
        }
    }

    /// The server's error, if the server reported one (from a raw session or a client-bound
    /// endpoint alike).
    pub fn db_error(&self) -> Option<&DbError> {
        self.inner.diagnosis.db_error.as_ref()
    }

    /// The SQLSTATE of the server's error, if the server reported one (an error in the old
    /// protocol's form has none).
    pub fn code(&self) -> Option<&str> {
        self.db_error()
            .map(|e| e.code.as_str())
            .filter(|c| !c.is_empty())
    }

    /// Whether the endpoint's connection is gone (closed by the server, a FATAL error, the
    /// network, or copyman): it cannot be reconciled or used again. It says what the error was
    /// when it was met: a connection the copy closed afterwards, failing a stalled receiver
    /// whose socket stayed full, is not told here (its connection says it is closed).
    pub fn is_closed(&self) -> bool {
        self.inner.diagnosis.closed
    }

    /// The error itself.
    pub fn get_ref(&self) -> &(dyn Error + Send + Sync + 'static) {
        &*self.inner.error
    }
}

/// Whether `error` itself says the connection ended.
fn is_closed(error: &(dyn Error + 'static)) -> bool {
    if let Some(SessionError::Closed) = error.downcast_ref::<SessionError>() {
        return true;
    }
    error
        .downcast_ref::<io::Error>()
        .is_some_and(is_connection_lost)
}

/// Whether a socket's `error` means the connection is gone (reset, aborted, a broken pipe, an
/// unexpected end), as opposed to a timeout or a refusal.
pub fn is_connection_lost(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof
            | io::ErrorKind::NotConnected
    )
}

impl Deref for EndpointError {
    type Target = dyn Error + Send + Sync + 'static;

    fn deref(&self) -> &Self::Target {
        self.get_ref()
    }
}

impl fmt::Debug for EndpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.inner.error, f)
    }
}

impl fmt::Display for EndpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.inner.error, f)
    }
}

// Transparent: the error's own text is the Display, so its source is the error's source.
impl Error for EndpointError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.inner.error.source()
    }
}

impl From<BoxError> for EndpointError {
    fn from(error: BoxError) -> Self {
        Self::new(error)
    }
}

/// Receivers failed during a cycle and were removed from the copy.
///
/// The copy can go on with the remaining receivers; a faulted receiver rejoins only through
/// reconcile. If nothing is done about it, the faulted receiver's COPY is failed when the copy
/// finishes, so it commits nothing.
#[derive(Debug, Clone)]
pub struct ReceiverFault {
    /// Each failed receiver with its error, in the order the errors arrived.
    pub faults: Vec<(ReceiverId, EndpointError)>,
}

impl ReceiverFault {
    /// The error of `receiver`, if it is among the faults (`faults[receiver]` in py-postgresql's
    /// copyman).
    pub fn get(&self, receiver: ReceiverId) -> Option<&EndpointError> {
        self.faults
            .iter()
            .find(|(id, _)| *id == receiver)
            .map(|(_, e)| e)
    }
}

/// An error and its sources on one line, `a: b: c` (a source whose words the text already holds
/// is not said again): how a fault that lists several errors, and so is no error's source
/// itself, says each with its cause — "i/o error on the connection: Connection reset by peer",
/// not the first words alone. The adapters' errors that say their cause in their own words too
/// (as rust-postgres's do) so are said once.
///
/// ```
/// use std::io;
/// use copyman_core::fault::Chain;
///
/// #[derive(Debug)]
/// struct Reading(io::Error);
/// impl std::fmt::Display for Reading {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         write!(f, "reading failed: {}", self.0)
///     }
/// }
/// impl std::error::Error for Reading {
///     fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
///         Some(&self.0)
///     }
/// }
/// let error = Reading(io::Error::other("disk gone"));
/// assert_eq!(Chain(&error).to_string(), "reading failed: disk gone");
/// ```
pub struct Chain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut said = self.0.to_string();
        let mut source = self.0.source();
        while let Some(cause) = source {
            let words = cause.to_string();
            // An IO error said already without its `(os error N)` ([`crate::client::os_words`]).
            let bare = (cause.downcast_ref::<io::Error>()).map(crate::client::os_words);
            if !said.contains(&words) && !bare.is_some_and(|bare| said.contains(&bare)) {
                said.push_str(": ");
                said.push_str(&words);
            }
            source = cause.source();
        }
        f.write_str(&said)
    }
}

impl fmt::Display for ReceiverFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.faults.as_slice() {
            [(id, error)] => write!(f, "receiver {id} faulted: {}", Chain(&**error)),
            faults => {
                write!(f, "{} receivers faulted", faults.len())?;
                for (id, error) in faults {
                    write!(f, "; receiver {id}: {}", Chain(&**error))?;
                }
                Ok(())
            }
        }
    }
}

// The errors are listed in Display (there may be several), so none is repeated as the source.
impl Error for ReceiverFault {}

/// The producer failed. The manager changed nothing: the caller may abort, or go on where the
/// producer can be read again (its `resumable()`: a producer of the caller's whose failure was
/// transient), the next step reading it again. A producer whose server ended its COPY with the
/// error cannot: the copy's progress ends after its fault, and finishing fails.
#[derive(Debug, Clone)]
pub struct ProducerFault {
    /// The producer's error.
    pub error: EndpointError,
}

impl fmt::Display for ProducerFault {
    /// `producer faulted: ` and its error with its causes, as a [`ReceiverFault`] says its
    /// receiver's (it said only "producer raised an error", the cause left to `source()`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "producer faulted: {}", Chain(&*self.error))
    }
}

/// The original error stays its source (`__context__` in py-postgresql's copyman), though
/// Display says it too ([`Chain`] says it once).
impl Error for ProducerFault {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&*self.error)
    }
}

/// A fault reported by a cycle: `Fault` in py-postgresql's copyman.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Fault {
    /// One or more receivers failed.
    #[error(transparent)]
    Receiver(#[from] ReceiverFault),
    /// The producer failed.
    #[error(transparent)]
    Producer(#[from] ProducerFault),
}

/// How each receiver ended, in a [`Summary`](crate::manager::Summary) or a [`CopyFail`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ReceiverOutcome {
    /// Its COPY completed, with its `COPY n` if it reported one. In a [`CopyFail`] this is a
    /// receiver whose server accepted CopyDone before the copy failed at its end: outside a
    /// transaction its rows are committed.
    Completed(Option<u64>),
    /// It faulted during the copy and its COPY was failed: it holds nothing of this copy.
    Faulted(EndpointError),
    /// Its own COPY failed at the end (CopyDone refused, or it could not start): it holds
    /// nothing of this copy.
    Failed(EndpointError),
    /// The copy failed and copyman failed this receiver's COPY, which had done nothing wrong:
    /// it holds nothing of this copy.
    Dropped,
    /// Its COPY completed, but its `COPY n` (the first field) is not the producer's: the error
    /// ([`CountMismatch`]) says both. Its rows are in (committed unless in a transaction, which
    /// the caller should roll back); under the keep-going policy the others complete, else the
    /// copy fails.
    Miscounted(Option<u64>, EndpointError),
    /// Its session was in no transaction (autocommit), its CopyDone went out, and no answer came
    /// (the connection was lost, or its server ended the session: [`CompletionInDoubt`]): its
    /// rows may have committed, or not; only its server can tell (a synchronous standby's wait
    /// cut short leaves them committed locally). Counted by [`CopyFail::any_completed`].
    InDoubt(EndpointError),
}

impl ReceiverOutcome {
    /// Whether the receiver's COPY completed: its rows are in (committed unless in a
    /// transaction), [miscounted](Self::Miscounted) ones too.
    pub fn is_completed(&self) -> bool {
        matches!(self, Self::Completed(_) | Self::Miscounted(..))
    }

    /// Whether the receiver's COPY completed with the producer's row count (or none to compare):
    /// a success.
    pub fn is_success(&self) -> bool {
        matches!(self, Self::Completed(_))
    }

    /// The receiver's error, if it faulted, failed, was miscounted or is in doubt.
    pub fn error(&self) -> Option<&EndpointError> {
        match self {
            Self::Faulted(e) | Self::Failed(e) | Self::Miscounted(_, e) | Self::InDoubt(e) => {
                Some(e)
            }
            _ => None,
        }
    }

    /// Whether the receiver's rows may be committed outside a transaction: its COPY completed,
    /// or its answer never came ([`InDoubt`](Self::InDoubt)).
    pub fn may_have_committed(&self) -> bool {
        self.is_completed() || matches!(self, Self::InDoubt(_))
    }
}

/// A receiver's completion that got no answer where the answer is its commit (autocommit): its
/// CopyDone went out, then the connection was lost or the server ended the session. Its rows
/// may or may not have committed ([`ReceiverOutcome::InDoubt`]).
#[derive(Debug)]
pub struct CompletionInDoubt {
    /// The error the completion met.
    pub error: BoxError,
    /// The server ended the session (a FATAL error came, not the COPY's answer), rather than
    /// the connection being lost.
    pub ended_by_server: bool,
}

impl fmt::Display for CompletionInDoubt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // (A FATAL is an answer of a kind: "no answer came" quoted it, lib65 F17.)
        let what = match self.ended_by_server {
            true => "its server ended the session before saying whether its COPY committed",
            false => "no answer came",
        };
        write!(
            f,
            "its CopyDone went out and {what} ({}): outside a transaction its rows may have \
             committed",
            Chain(&*self.error)
        )
    }
}

impl Error for CompletionInDoubt {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&*self.error)
    }
}

/// A receiver's completion `error`, as the manager should take it: where the answer was to be
/// its commit (`commits`: autocommit, [`Endpoint::completion_commits`]) and no answer said the
/// COPY failed (`answer`, the server's error the adapter's error carries: an ERROR did; a FATAL,
/// a closed connection or a lost path says nothing of the commit), [`CompletionInDoubt`]; else
/// the error as it is.
///
/// [`Endpoint::completion_commits`]: crate::endpoint::Endpoint::completion_commits
///
/// ```
/// use copyman_core::fault::{CompletionInDoubt, completion_error};
/// use copyman_core::session::{DbError, SessionError};
///
/// let lost = completion_error(true, None, Box::new(SessionError::Closed));
/// assert!(lost.is::<CompletionInDoubt>());
/// let refused = DbError::new("ERROR", "23505", "duplicate key value violates unique constraint");
/// let answer = completion_error(true, Some(&refused), Box::new(SessionError::Db(Box::new(refused.clone()))));
/// assert!(!answer.is::<CompletionInDoubt>());
/// let ended = DbError::new("FATAL", "57P01", "terminating connection due to administrator command");
/// let ended = completion_error(true, Some(&ended), Box::new(SessionError::Db(Box::new(ended.clone()))));
/// assert!(ended.is::<CompletionInDoubt>());
/// // Inside a transaction nothing is committed by the answer: as it is.
/// assert!(!completion_error(false, None, Box::new(SessionError::Closed)).is::<CompletionInDoubt>());
/// ```
pub fn completion_error(commits: bool, answer: Option<&DbError>, error: BoxError) -> BoxError {
    if !commits || answer.is_some_and(|db| !db.is_fatal()) {
        return error;
    }
    Box::new(CompletionInDoubt {
        error,
        ended_by_server: answer.is_some(),
    })
}

/// The copy failed: every receiver still in it had its COPY failed, the producer was cancelled.
#[derive(Debug, Clone)]
pub struct CopyFail {
    /// Why the copy failed ("no receivers", "copy stopped before the producer's end", …).
    pub reason: String,
    /// Every receiver's outcome, in order of [`ReceiverId`]: what its COPY came to (completed
    /// with its `COPY n` when its server accepted CopyDone before the end failed, faulted,
    /// failed with its error, or dropped).
    pub receivers: Vec<(ReceiverId, ReceiverOutcome)>,
    /// Receivers whose completion or abort failed, with their errors.
    pub receiver_faults: Vec<(ReceiverId, EndpointError)>,
    /// The producer's error on exit, if it had one.
    pub producer_fault: Option<EndpointError>,
    /// Whether the producer reached its end before the copy failed.
    pub producer_ended: bool,
    /// The producer's `COPY n`, if it reached its end and reported one.
    pub producer_count: Option<u64>,
}

impl CopyFail {
    /// Whether any receiver's COPY completed, or may have ([`ReceiverOutcome::InDoubt`]): so not
    /// "nothing committed" outside transactions.
    pub fn any_completed(&self) -> bool {
        self.receivers.iter().any(|(_, o)| o.may_have_committed())
    }

    /// The exit error of `receiver`, if it had one.
    pub fn receiver_fault(&self, receiver: ReceiverId) -> Option<&EndpointError> {
        self.receiver_faults
            .iter()
            .find(|(id, _)| *id == receiver)
            .map(|(_, e)| e)
    }
}

impl fmt::Display for CopyFail {
    /// The reason, every receiver's error (those that faulted during the copy too: "no
    /// receivers" alone would hide why), the producer's, and the receivers whose COPY completed
    /// all the same — committed, unless their session had a transaction open. Parts follow each
    /// other after `; `, or on lines of their own once a server's error took several (its
    /// DETAIL, HINT, CONTEXT): what follows is not read as part of its CONTEXT.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = vec![self.reason.clone()];
        for (id, error) in &self.receiver_faults {
            parts.push(format!("receiver {id}: {}", Chain(&**error)));
        }
        for (id, outcome) in &self.receivers {
            // Not again when the reason says it already (a copy ended by that fault: one
            // receiver's words, or several's, `; receiver N: …`).
            let error = outcome
                .error()
                .map_or(String::new(), |e| Chain(&**e).to_string());
            let said = format!("receiver {id} faulted: {error}");
            let among = format!("; receiver {id}: {error}");
            if let ReceiverOutcome::Faulted(_) = outcome
                && self.receiver_fault(*id).is_none()
                && !self.reason.contains(&said)
                && !self.reason.contains(&among)
            {
                parts.push(said);
            }
        }
        // Not again when the reason says it already (a copy ended by the producer's fault:
        // `producer faulted: …`, lib49 F1).
        if let Some(error) = &self.producer_fault {
            let error = Chain(&**error).to_string();
            if !self.reason.contains(&format!("producer faulted: {error}")) {
                parts.push(format!("producer: {error}"));
            }
        }
        let completed: Vec<String> = self
            .receivers
            .iter()
            .filter(|(_, o)| o.is_completed())
            .map(|(id, _)| id.to_string())
            .collect();
        match completed.as_slice() {
            [] => {}
            [one] => parts.push(format!(
                "receiver {one}'s COPY completed all the same: committed there unless it ran \
                 inside a transaction"
            )),
            several => parts.push(format!(
                "the COPYs of receivers {} completed all the same: committed there unless they \
                 ran inside a transaction",
                several.join(", ")
            )),
        }
        let mut lines = false;
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                f.write_str(if lines { "\n" } else { "; " })?;
            }
            f.write_str(part)?;
            lines |= part.contains('\n');
        }
        Ok(())
    }
}

// Display already lists every error, so none is repeated as the source.
impl Error for CopyFail {}

/// A chunk producer's data holds a line that is exactly `\.`, PostgreSQL's end-of-data marker,
/// with data after it: every receiver's server would stop there, drop the rows after it and
/// report success. A producer fault; the copy fails.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "line {line} of the data is `\\.`, the end-of-data marker: the receivers would stop there \
     and lose the rows after it"
)]
pub struct EndOfDataMarker {
    /// Its 1-based line number in the producer's data (lines end with LF, CRLF or a lone CR).
    pub line: u64,
}

/// Receivers' `COPY n` differ, and the producer gave no count to say which is right (a
/// producer reading a file): no receiver's rows can be trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "row counts disagree: {} (and the producer gave no count)",
    .counts
        .iter()
        .map(|(id, n)| format!("receiver {id} stored {n}"))
        .collect::<Vec<_>>()
        .join(", ")
)]
pub struct CountsDisagree {
    /// Each completed receiver's `COPY n`.
    pub counts: Vec<(ReceiverId, u64)>,
}

/// A receiver's `COPY n` differs from the producer's: said with the usual causes and the way to
/// keep what each receiver stored (lib67 F4: the words named neither).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "row count mismatch: the producer sent {producer} row{}, the receiver stored {receiver} \
     (a BEFORE trigger returning NULL, a rule, or the COPY's WHERE dropping rows, or a trigger \
     routing them elsewhere? Options::with_check_counts(false) keeps what each receiver \
     stored, its count in the Summary)",
    if *.producer == 1 { "" } else { "s" }
)]
pub struct CountMismatch {
    /// The producer's `COPY n`.
    pub producer: u64,
    /// The receiver's `COPY n`.
    pub receiver: u64,
}

#[cfg(test)]
mod display_tests {
    use super::*;

    #[test]
    fn a_copy_failed_by_one_receivers_fault_says_it_once() {
        let error = || EndpointError::new(io::Error::new(io::ErrorKind::TimedOut, "stalled"));
        let fault = ReceiverFault {
            faults: vec![(ReceiverId(1), error())],
        };
        let mut fail = CopyFail {
            reason: fault.to_string(),
            receivers: vec![
                (ReceiverId(0), ReceiverOutcome::Failed(error())),
                (ReceiverId(1), ReceiverOutcome::Faulted(error())),
            ],
            receiver_faults: Vec::new(),
            producer_fault: None,
            producer_ended: false,
            producer_count: None,
        };
        assert_eq!(fail.to_string(), "receiver 1 faulted: stalled");
        // Another reason: the fault is said beside it.
        fail.reason = "copy stopped".to_owned();
        assert_eq!(
            fail.to_string(),
            "copy stopped; receiver 1 faulted: stalled"
        );
        // Two receivers faulted in one cycle: each said once (each was said twice).
        let fault = ReceiverFault {
            faults: vec![(ReceiverId(0), error()), (ReceiverId(2), error())],
        };
        let fail = CopyFail {
            reason: fault.to_string(),
            receivers: vec![
                (ReceiverId(0), ReceiverOutcome::Faulted(error())),
                (ReceiverId(1), ReceiverOutcome::Failed(error())),
                (ReceiverId(2), ReceiverOutcome::Faulted(error())),
            ],
            receiver_faults: Vec::new(),
            producer_fault: None,
            producer_ended: false,
            producer_count: None,
        };
        assert_eq!(
            fail.to_string(),
            "2 receivers faulted; receiver 0: stalled; receiver 2: stalled"
        );
    }

    /// After a server's error of several lines (its CONTEXT), what follows starts a line of its
    /// own: a receiver that committed all the same was said at the end of the CONTEXT line, as
    /// if part of it (lib40 F2).
    #[test]
    fn what_follows_an_error_of_several_lines_starts_a_line() {
        let deferred = EndpointError::new(io::Error::other(
            "ERROR:  P0001: deferred boom\nCONTEXT:  PL/pgSQL function boom2() line 1 at RAISE",
        ));
        let fail = CopyFail {
            reason: "could not complete the COPY operation".to_owned(),
            receivers: vec![
                (ReceiverId(0), ReceiverOutcome::Completed(Some(3))),
                (ReceiverId(1), ReceiverOutcome::Failed(deferred.clone())),
            ],
            receiver_faults: vec![(ReceiverId(1), deferred)],
            producer_fault: None,
            producer_ended: true,
            producer_count: Some(3),
        };
        assert_eq!(
            fail.to_string(),
            "could not complete the COPY operation; receiver 1: ERROR:  P0001: deferred boom\n\
             CONTEXT:  PL/pgSQL function boom2() line 1 at RAISE\n\
             receiver 0's COPY completed all the same: committed there unless it ran inside a \
             transaction"
        );
    }

    /// A producer's fault says its error, as a receiver's does (lib40 F6).
    #[test]
    fn a_producer_fault_says_its_error() {
        let fault = Fault::Producer(ProducerFault {
            error: EndpointError::new(io::Error::other("no byte moved for 2s")),
        });
        assert_eq!(fault.to_string(), "producer faulted: no byte moved for 2s");
        assert_eq!(
            Chain(&fault).to_string(),
            "producer faulted: no byte moved for 2s"
        );
    }

    /// An adapter's error whose words are general ("i/o error on the connection") with the
    /// cause as its source: a fault listing it says the cause too, since it is no error's
    /// source itself (copyman-sync said only "i/o error on the connection" for a reset).
    #[test]
    fn a_listed_error_is_said_with_its_causes() {
        #[derive(Debug, thiserror::Error)]
        #[error("i/o error on the connection")]
        struct Io(#[source] io::Error);
        let reset = || {
            let cause = io::Error::new(io::ErrorKind::ConnectionReset, "connection reset by peer");
            EndpointError::new(Io(cause))
        };
        let fault = ReceiverFault {
            faults: vec![(ReceiverId(2), reset())],
        };
        let said = "receiver 2 faulted: i/o error on the connection: connection reset by peer";
        assert_eq!(fault.to_string(), said);
        let fail = CopyFail {
            reason: "copy stopped".to_owned(),
            receivers: vec![(ReceiverId(2), ReceiverOutcome::Faulted(reset()))],
            receiver_faults: vec![(ReceiverId(3), reset())],
            producer_fault: Some(reset()),
            producer_ended: false,
            producer_count: None,
        };
        assert_eq!(
            fail.to_string(),
            "copy stopped; receiver 3: i/o error on the connection: connection reset by peer; \
             receiver 2 faulted: i/o error on the connection: connection reset by peer; \
             producer: i/o error on the connection: connection reset by peer"
        );
        // The producer's fault as the reason: said once (lib49 F1).
        let fail = CopyFail {
            reason: "producer faulted: i/o error on the connection: connection reset by peer"
                .to_owned(),
            receivers: Vec::new(),
            receiver_faults: Vec::new(),
            producer_fault: Some(reset()),
            producer_ended: false,
            producer_count: None,
        };
        assert_eq!(
            fail.to_string(),
            "producer faulted: i/o error on the connection: connection reset by peer"
        );
        // A cause whose words the text holds already is not said twice.
        let stalled = EndpointError::new(Io(io::Error::other("i/o error on the connection")));
        let fault = ReceiverFault {
            faults: vec![(ReceiverId(1), stalled)],
        };
        assert_eq!(
            fault.to_string(),
            "receiver 1 faulted: i/o error on the connection"
        );
    }
}
