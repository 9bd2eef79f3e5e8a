//! What copyman tells the user: exit statuses, the run's summary (human or `--json`), one-line
//! errors, and the `--verbose` log.
//!
//! The log is a plain stderr logger (a flag and [`progress::println`], routed around the
//! progress bar, which never panics and ignores a stderr that is gone): the CLI has a handful of
//! steps to report, not spans to trace.

use std::error::Error;
use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use copyman_core::session::DbError;
pub(crate) use copyman_job::job::one_line;
use indicatif::{HumanBytes, HumanCount};
use serde_json::{Value, json};

use crate::progress;
use crate::signals;

/// The exit statuses, as `--help` documents them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// Every destination committed.
    Success = 0,
    /// The copy failed and nothing was committed anywhere.
    CopyFailed = 1,
    /// The command line made no sense.
    Usage = 2,
    /// A server could not be reached, or refused the login.
    Connect = 3,
    /// Some destinations committed (or may have, or will on recovery) and others did not: the
    /// report says which.
    Partial = 4,
    /// Interrupted by SIGHUP (128 + 1).
    Hangup = 129,
    /// Interrupted by SIGINT (128 + 2).
    Interrupt = 130,
    /// Stopped at once by SIGQUIT (128 + 3, Ctrl-\\), as by a second signal.
    Quit = 131,
    /// Interrupted by SIGTERM (128 + 15).
    Terminate = 143,
}

impl Exit {
    /// The process exit code.
    pub(crate) fn code(self) -> u8 {
        self as u8
    }

    /// The status for an interruption by `signal`.
    pub(crate) fn interrupted(signal: i32) -> Self {
        match signals::exit_code(signal) {
            129 => Self::Hangup,
            131 => Self::Quit,
            143 => Self::Terminate,
            _ => Self::Interrupt,
        }
    }

    /// Whether it is an interruption's.
    pub(crate) fn is_interruption(self) -> bool {
        matches!(
            self,
            Self::Hangup | Self::Interrupt | Self::Quit | Self::Terminate
        )
    }
}

/// An error that ends the run with a particular exit status (others exit 1).
#[derive(Debug)]
pub(crate) struct Fatal {
    /// The status.
    pub(crate) exit: Exit,
    /// One line saying what happened.
    pub(crate) message: String,
    /// The server that said it, and its words (SQLSTATE) when it did: in the `--json`
    /// document's `server` and `sqlstate`.
    pub(crate) server: Option<(String, ErrorInfo)>,
}

impl fmt::Display for Fatal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl Error for Fatal {}

impl Fatal {
    /// This refusal, said of the source (its file, its input) where it names no server:
    /// `--json`'s `server` and `endpoint` say so (files65 F2: null for a compressed file, a
    /// header in another order, where a missing file named the source).
    pub(crate) fn of_source(mut self) -> Self {
        if self.server.is_none() {
            let said = ErrorInfo {
                sqlstate: None,
                message: self.message.clone(),
            };
            self.server = Some(("source".to_owned(), said));
        }
        self
    }
}

static VERBOSE: AtomicBool = AtomicBool::new(false);

/// Turns the `--verbose` log on.
pub(crate) fn set_verbose(on: bool) {
    VERBOSE.store(on, Ordering::Relaxed);
}

/// Whether the step log is on (`--verbose`).
pub(crate) fn verbose() -> bool {
    VERBOSE.load(Ordering::Relaxed)
}

/// Logs a step (with `--verbose` only).
pub(crate) fn log(message: impl fmt::Display) {
    if VERBOSE.load(Ordering::Relaxed) {
        progress::println(&format!("copyman: {message}"));
    }
}

/// Warns (always, on stderr).
pub(crate) fn warn(message: impl fmt::Display) {
    let message = message.to_string();
    let line = format!("copyman: warning: {message}");
    {
        let mut said = WARNINGS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Said once: a file found binary is planned again as such, and its plan's warnings
        // were said (and listed) twice (docs43 F8).
        if said.contains(&message) {
            return;
        }
        said.push(message);
    }
    // (Not under the lock: a stderr that blocks must not hold a signal's report.)
    progress::println(&line);
}

/// Every warning said so far, for `--json` (`warnings`): what stderr said is in the document too.
static WARNINGS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// A job's state file, once the job knew it: a job refused before copying names it in its
/// `--json` document too (jobs67 F7: only the text did, which a wrapper's retry needs).
static JOB_STATE: Mutex<Option<String>> = Mutex::new(None);

/// Records the job's state file ([`JOB_STATE`]).
pub(crate) fn job_state(path: &std::path::Path) {
    *JOB_STATE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(path.display().to_string());
}

/// The warnings said so far ([`warn`]), in order.
pub(crate) fn warnings() -> Vec<String> {
    WARNINGS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

/// A notice (NOTICE, WARNING, …) a server sent during the run, and whose server sent it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Notice {
    /// `source` or `destination N` (1-based, as on the command line).
    pub(crate) endpoint: String,
    /// The server's notice, field by field.
    pub(crate) notice: DbError,
    /// How many times it was said (a job folds a notice said again: [`copyman_job::job::Notice`]).
    pub(crate) times: u64,
}

impl Notice {
    /// As `--json` carries it.
    pub(crate) fn to_json(&self) -> Value {
        let n = &self.notice;
        let own = n.severity == copyman_job::commit::OWN_WORDS;
        json!({
            "endpoint": self.endpoint,
            // copyman's own words: no server's severity.
            "severity": (!own).then_some(&n.severity),
            "by": if own { "copyman" } else { "server" },
            "sqlstate": n.code,
            "message": n.message,
            "detail": n.detail,
            "hint": n.hint,
            "times": self.times,
        })
    }
}

impl fmt::Display for Notice {
    /// As psql prints it (`WARNING:  text`, then `DETAIL:` and `HINT:` lines), after the
    /// endpoint that said it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = &self.notice;
        if n.severity == copyman_job::commit::OWN_WORDS {
            write!(f, "copyman: {}: {}", self.endpoint, n.message)?;
        } else {
            write!(f, "{}: {}:  {}", self.endpoint, n.severity, n.message)?;
        }
        if let Some(detail) = &n.detail {
            write!(f, "\nDETAIL:  {detail}")?;
        }
        if let Some(hint) = &n.hint {
            write!(f, "\nHINT:  {hint}")?;
        }
        Ok(())
    }
}

/// Prints `notices` on stderr as psql does, each said once: one said again by the same server
/// (copyman's planning queries each quote a name longer than 63 bytes, and its server says
/// "identifier … will be truncated" for each) is said with how many times (`--json` keeps each).
pub(crate) fn print_notices(notices: &[Notice]) {
    for said in notices_said(notices) {
        progress::println(&said);
    }
}

/// What [`print_notices`] prints.
fn notices_said(notices: &[Notice]) -> Vec<String> {
    // By what is printed, in one pass: a flood of 10 000 notices kept was compared pair by pair.
    let mut distinct: Vec<(String, u64)> = Vec::new();
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for notice in notices {
        let said = notice.to_string();
        match seen.get(&said) {
            Some(&at) => distinct[at].1 += notice.times,
            None => {
                seen.insert(said.clone(), distinct.len());
                distinct.push((said, notice.times));
            }
        }
    }
    (distinct.into_iter())
        .map(|(said, times)| match (times, said.split_once('\n')) {
            (1, _) => said,
            // On its first line, before any DETAIL or HINT.
            (_, Some((first, rest))) => format!("{first} (said {times} times)\n{rest}"),
            (_, None) => format!("{said} (said {times} times)"),
        })
        .map(|said| match said.contains(SYNC_WAIT_CANCELLED) {
            // A plain COMMIT's wait: it did commit there (commit66 F3: said as a PREPARE's; a
            // job's too, recheck74 F2).
            true if !ATOMIC.load(Ordering::Relaxed) => {
                format!("{said}\n{SYNC_WAIT_GLOSS_COMMIT}")
            }
            true => format!("{said}\n{SYNC_WAIT_GLOSS}"),
            false => said,
        })
        .collect()
}

/// PostgreSQL's warning when a wait for a synchronous standby is cancelled (copyman cancels it
/// on a signal): its DETAIL says "the transaction has already committed locally".
const SYNC_WAIT_CANCELLED: &str = "canceling wait for synchronous replication";

/// What copyman says after that warning: the transaction the server means is the step copyman
/// waited on, a `PREPARE TRANSACTION` under `--atomic` (rolled back or left for recovery since,
/// as the report says) — beside copyman's "nothing committed" it read as a contradiction
/// (commit64 F3).
const SYNC_WAIT_GLOSS: &str = "copyman: (the transaction the server says committed locally is \
     the step copyman was waiting on there: under --atomic a PREPARE TRANSACTION, which \
     commits nothing by itself, or a COMMIT PREPARED; what each destination holds is what the \
     report says)";

/// Whether the run or job commits with `--atomic` ([`set_atomic`]), for the gloss of a
/// cancelled standby wait.
static ATOMIC: AtomicBool = AtomicBool::new(false);

/// Records that the run or job commits with `--atomic` (a resumed job: as it began).
pub(crate) fn set_atomic(atomic: bool) {
    ATOMIC.store(atomic, Ordering::Relaxed);
}

/// [`SYNC_WAIT_GLOSS`] where the step was a plain `COMMIT` (no `--atomic`).
const SYNC_WAIT_GLOSS_COMMIT: &str = "copyman: (the transaction the server says committed locally \
     is the COMMIT copyman was waiting on there: it committed on that server, and its standby \
     may not have it yet; what each destination holds is what the report says)";

/// Takes what the run's servers said (notices and warnings, on every connection: the source's
/// and each destination's, in command-line order), prints each on stderr as psql does, and
/// returns them for `--json`.
pub(crate) fn take_notices<'c>(
    source: Option<&'c mut copyman_sync::Connection>,
    destinations: impl IntoIterator<Item = Option<&'c mut copyman_sync::Connection>>,
) -> Vec<Notice> {
    let mut all = Vec::new();
    let connections = std::iter::once(("source".to_owned(), source)).chain(
        destinations
            .into_iter()
            .enumerate()
            .map(|(i, conn)| (format!("destination {}", i + 1), conn)),
    );
    for (endpoint, conn) in connections {
        let Some(conn) = conn else { continue };
        let said: Vec<Notice> = (conn.take_notices().into_iter())
            .map(|notice| Notice {
                endpoint: endpoint.clone(),
                notice,
                times: 1,
            })
            .collect();
        print_notices(&said);
        all.extend(said);
        let dropped = conn.session().dropped_messages();
        if dropped > 0 {
            warn(format_args!("{endpoint}: {dropped} more notices not kept"));
        }
    }
    all
}

/// An error described for the user and for `--json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ErrorInfo {
    /// The server's SQLSTATE, when the server spoke.
    pub(crate) sqlstate: Option<String>,
    /// The error on one line (server message with detail and context, or the error chain).
    pub(crate) message: String,
}

impl fmt::Display for ErrorInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.sqlstate {
            Some(code) => write!(f, "SQLSTATE {code}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Describes an error on one line: the server's SQLSTATE, message, detail, hint and context
/// when the server spoke, a stall under `--stall-timeout`, else the error chain (copyman-job's
/// description, the same for one table as for a job).
pub(crate) fn describe(error: &(dyn Error + 'static)) -> ErrorInfo {
    let described = copyman_job::job::describe_with(error, stall_timeout());
    let mut message = described.message;
    // Binary input's fields are read as the destination's types: one of another type is bytes
    // read wrong (a 4-byte integer as text: a NUL byte, 22021; an int4 as an int8: too short,
    // 08P01), not text in another encoding (types43 F2).
    let binary_input = INPUT_BINARY.load(Ordering::Relaxed);
    if binary_input
        && matches!(
            described.sqlstate.as_deref(),
            Some("22021" | "08P01" | "22P03")
        )
    {
        let input = INPUT
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Its text fields are in the encoding of the session that wrote them, which binary
        // data does not record either (files63 F6: a LATIN1 database's text was said to be of
        // another type).
        let encoding = match described.sqlstate.as_deref() {
            Some("22021") => {
                "; or a text field written in another encoding than the sessions read it in: \
                 give each CONN the client_encoding it was written in (client_encoding=LATIN1 \
                 for a LATIN1 database's)"
            }
            _ => "",
        };
        message = format!(
            "{message} ({} is binary COPY data, which records no column types: each field is \
             read as the destination column's type, and one written from another type (an \
             integer read as text, an int4 as an int8) is refused so; copy from the types it \
             was written from, or from a text or CSV file{encoding})",
            input.as_deref().unwrap_or("the input")
        );
    } else if described.sqlstate.as_deref() == Some("22021")
        && let Some(input) = INPUT
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    {
        // No encoding reads a NUL byte: another --encoding fails the same way.
        message = match message.contains(": 0x00") {
            true => format!(
                "{message} (PostgreSQL text never holds a NUL byte (0x00), in any encoding: \
                 {}; input whose every other byte is NUL is UTF-16 without a byte order mark: \
                 iconv -f UTF-16LE -t UTF-8 FILE | copyman … --from -)",
                input.split(':').next().unwrap_or(&input)
            ),
            false => format!("{message} ({input})"),
        };
    }
    // The line a server's error names is the input's: said of which (files63 F12: "line 3" of
    // no file named).
    if let Some(name) = INPUT_NAME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .as_deref()
        && let Some(at) = message.find("(context: COPY ")
        && let Some(line) = message[at..]
            .split(", line ")
            .nth(1)
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .filter(|n| !n.is_empty())
    {
        // Binary data has no lines: the server's count is of its rows (files65 F3).
        message = match binary_input {
            true => format!("{message} (row {line} of {name})"),
            false => format!("{message} (line {line} of {name})"),
        };
    }
    // A string too long for a destination of bytes: counted as bytes there (types62 F3: 'ßßßßß'
    // too long for character varying(5), no word of why).
    if described.sqlstate.as_deref() == Some("22001")
        && let Some(why) = lengths_in_bytes(None)
    {
        message = format!("{message} ({why})");
    }
    ErrorInfo {
        sqlstate: described.sqlstate,
        message,
    }
}

/// The destinations (`destination 2`) whose database is `SQL_ASCII`, with a source that is
/// not: a 22001 says that lengths count bytes there ([`describe`]).
static SQL_ASCII_DESTINATIONS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// What a 22001 of `destinations` (`destination 2`; `None`: any) says where their database is
/// `SQL_ASCII` ([`SQL_ASCII_DESTINATIONS`]), or `None`.
pub(crate) fn lengths_in_bytes(destinations: Option<&[String]>) -> Option<String> {
    let ascii = SQL_ASCII_DESTINATIONS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let named: Vec<&str> = (ascii.iter())
        .filter(|a| destinations.is_none_or(|d| d.contains(a)))
        .map(String::as_str)
        .collect();
    (!named.is_empty()).then(|| {
        format!(
            "{}'s database is SQL_ASCII, whose lengths count bytes, not characters: a character \
             beyond ASCII is 2 to 4 of them there",
            named.join(", ")
        )
    })
}

/// Records [`SQL_ASCII_DESTINATIONS`].
pub(crate) fn set_sql_ascii_destinations(names: &[&str]) {
    *SQL_ASCII_DESTINATIONS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) =
        names.iter().map(|n| (*n).to_owned()).collect();
}

/// What a 22021 (bytes invalid in an encoding) says of the run's source: a file's or stdin's
/// encoding it was read as, and `--encoding`, the way out; a `SQL_ASCII` database's bytes read
/// as UTF8, and `client_encoding`, the way out ([`describe`]).
static INPUT: Mutex<Option<String>> = Mutex::new(None);

/// The way out of a 22021 where a `SQL_ASCII` source's bytes are read as UTF8.
const SQL_ASCII_SOURCE: &str = "the source's database is SQL_ASCII, which holds bytes of no \
                                declared encoding, read as UTF8: give every CONN the data's \
                                encoding, e.g. client_encoding=LATIN1";

/// Records that the run's source is a `SQL_ASCII` database read as UTF8: a 22021 of its says
/// [`SQL_ASCII_SOURCE`] (one table's error, a job's closing advice: [`sql_ascii_source`]).
pub(crate) fn set_sql_ascii_source() {
    *INPUT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(SQL_ASCII_SOURCE.to_owned());
}

/// [`SQL_ASCII_SOURCE`], where [`set_sql_ascii_source`] recorded it.
pub(crate) fn sql_ascii_source() -> Option<&'static str> {
    let input = INPUT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    (input.as_deref() == Some(SQL_ASCII_SOURCE)).then_some(SQL_ASCII_SOURCE)
}

/// The run's file (its name) or stdin, whose line a server's error names ([`set_input`]).
static INPUT_NAME: Mutex<Option<String>> = Mutex::new(None);

/// Whether the run's file or stdin is binary COPY data ([`set_input`]).
static INPUT_BINARY: AtomicBool = AtomicBool::new(false);

/// Records what [`INPUT`] says for a run whose source is a file or stdin, or a server whose
/// database is `SQL_ASCII` read in another encoding (`sql_ascii`).
pub(crate) fn set_input(t: &crate::args::Transfer, sql_ascii: bool) {
    *INPUT_NAME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = match &t.source {
        crate::args::Endpoint::Server(_) => None,
        crate::args::Endpoint::Stdio => Some("stdin".to_owned()),
        other => Some(other.display()),
    };
    let input = match &t.source {
        crate::args::Endpoint::Server(_) if sql_ascii => {
            set_sql_ascii_source();
            return;
        }
        crate::args::Endpoint::Server(_) => None,
        crate::args::Endpoint::Stdio => Some("stdin".to_owned()),
        other => Some(format!("the file {}", other.display())),
    };
    if input.is_some() && crate::plan::input_is_binary(t) {
        INPUT_BINARY.store(true, Ordering::Relaxed);
        *INPUT
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = input;
        return;
    }
    // A --receive's own ENCODING is what the server reads the file in, whatever --encoding
    // says (it said "read as LATIN1 (--encoding)" of a file read as UTF8: copy41 F13).
    // Said only where every --receive names the same one (recheck41b F8: the first one's was
    // said of every destination).
    let own = match &t.statements {
        crate::args::Statements::Raw { receive, .. } => {
            let each: Vec<Option<String>> = (receive.iter())
                .map(|sql| {
                    let sql = sql.as_deref()?;
                    copyman_core::statement::representation(sql)?.encoding
                })
                .collect();
            match each.split_first() {
                Some((first, rest)) if rest.iter().all(|e| e == first) => first.clone(),
                _ => None,
            }
        }
        crate::args::Statements::Table { .. } => None,
    };
    *INPUT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) =
        // (An --encoding naming another is refused: `args::refuse_two_file_encodings`.)
        input.map(|input| match (own, crate::file_source::file_encoding(t)) {
            (Some(own), _) => format!("{input} is read as {own}, the --receive's ENCODING"),
            (None, (encoding, "the default")) => format!(
                "{input} is read as {encoding} (the default): give its encoding with \
                 --encoding, e.g. --encoding LATIN1"
            ),
            (None, (encoding, from)) => format!("{input} is read as {encoding} ({from})"),
        });
}

/// `--stall-timeout`, in milliseconds (0: none), for [`describe`].
static STALL_TIMEOUT_MS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Records `--stall-timeout`, so that socket timeouts are described as stalls.
pub(crate) fn set_stall_timeout(limit: Option<Duration>) {
    let ms = limit.map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    STALL_TIMEOUT_MS.store(ms, Ordering::Relaxed);
}

/// `--stall-timeout`, if set.
pub(crate) fn stall_timeout() -> Option<Duration> {
    match STALL_TIMEOUT_MS.load(Ordering::Relaxed) {
        0 => None,
        ms => Some(Duration::from_millis(ms)),
    }
}

/// The headline of a copy that failed at `failed` destinations (0-based, each with the error
/// to say when it is the only one): "destination 2 failed: SQLSTATE 23505: …", or
/// "destinations 1, 3 failed" (each line below says its own).
pub(crate) fn destinations_failed(failed: &[(usize, Option<ErrorInfo>)]) -> String {
    match failed {
        [(d, Some(error))] => format!("destination {} failed: {error}", d + 1),
        [(d, None)] => format!("destination {} failed", d + 1),
        several => format!(
            "destinations {} failed",
            several
                .iter()
                .map(|(d, _)| (d + 1).to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The headline of a copy whose every destination `failed` (each with its error, if known):
/// one destination's name and error (a copy to one destination that failed is not "every
/// destination failed": it named no cause, `--json`'s `error` neither), else "every
/// destination failed: destination 1: …; destination 2: …", or the error once where every one
/// failed with it (a file's bytes none of them took).
pub(crate) fn every_destination_failed(failed: &[(usize, Option<ErrorInfo>)]) -> String {
    match failed {
        [_] => destinations_failed(failed),
        [(_, Some(first)), rest @ ..] if rest.iter().all(|(_, e)| e.as_ref() == Some(first)) => {
            format!("every destination failed: {first}")
        }
        several => {
            let each: Vec<String> = (several.iter())
                .map(|(d, error)| match error {
                    Some(error) => format!("destination {}: {error}", d + 1),
                    None => format!("destination {}", d + 1),
                })
                .collect();
            format!("every destination failed: {}", each.join("; "))
        }
    }
}

/// How [`every_destination_failed`] begins where it names each destination's error.
const EACH_FAILED: &str = "every destination failed: destination ";

/// Whether `error` (or one of its sources) is a broken pipe.
pub(crate) fn is_broken_pipe(error: &(dyn Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if e.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
        {
            return true;
        }
        if let Some(copyman_sync::Error::Io(io)) = e.downcast_ref::<copyman_sync::Error>()
            && io.kind() == io::ErrorKind::BrokenPipe
        {
            return true;
        }
        current = e.source();
    }
    false
}

/// How a destination ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// Its transaction committed (server) or its file was written.
    Committed,
    /// It was fine, but the run failed elsewhere: rolled back, nothing kept.
    RolledBack,
    /// It failed: rolled back, nothing kept.
    Failed,
    /// The connection broke during its COMMIT: whether it committed is unknown.
    InDoubt,
    /// Prepared and decided commit, not yet committed: `copyman recover` finishes it.
    CommitPending,
    /// Perhaps prepared, decided rollback: nothing visible; `copyman recover` removes it.
    RollbackPending,
    /// Stdout or a pipe, when the run failed: what went out before cannot be taken back.
    Sent,
}

impl Status {
    fn name(self) -> &'static str {
        match self {
            Self::Committed => "committed",
            Self::RolledBack => "rolled back",
            Self::Failed => "failed",
            Self::InDoubt => "in doubt",
            Self::CommitPending => "commit pending",
            Self::RollbackPending => "rollback pending",
            Self::Sent => "sent",
        }
    }

    /// Whether the rows are, may be, or will be on recovery, on that destination.
    fn may_hold_rows(self) -> bool {
        matches!(self, Self::Committed | Self::InDoubt | Self::CommitPending)
    }
}

/// One destination's outcome.
#[derive(Debug, Clone)]
pub(crate) struct DestinationReport {
    /// The CONN, redacted.
    pub(crate) endpoint: String,
    /// The host of the CONN's list its sessions reached, when it names several.
    pub(crate) reached: Option<String>,
    /// How it ended.
    pub(crate) status: Status,
    /// Its `COPY n`, when it reported one.
    pub(crate) rows: Option<u64>,
    /// Its error, when it failed.
    pub(crate) error: Option<ErrorInfo>,
    /// Its `COPY … FROM STDIN` (servers).
    pub(crate) statement: Option<String>,
    /// From the start of the run to the end of its transaction (or file).
    pub(crate) duration: Option<Duration>,
    /// What it did besides (`--allow-count-mismatch`: another count than the source's).
    pub(crate) warning: Option<String>,
}

/// The outcome of a `table` or `copy` run.
#[derive(Debug, Clone)]
pub(crate) struct RunReport {
    /// `table` or `copy`.
    pub(crate) command: &'static str,
    /// The table, in table mode.
    pub(crate) table: Option<String>,
    /// The destinations' table, where `--target-table` named one.
    pub(crate) target_table: Option<String>,
    /// The source's `COPY … TO STDOUT` (a server source).
    pub(crate) statement: Option<String>,
    /// When the run started.
    pub(crate) started_at: SystemTime,
    /// The source, as it resolved (`user@host:port/dbname`) or its path.
    pub(crate) source: String,
    /// The host of the source's CONN its sessions reached, when it names several.
    pub(crate) source_reached: Option<String>,
    /// Whether the run emptied each destination's table first (`table --truncate`).
    pub(crate) truncated: bool,
    /// The COPY format, when copyman chose the statements.
    pub(crate) format: Option<String>,
    /// The source's `COPY n`.
    pub(crate) source_rows: Option<u64>,
    /// What became of the source's transaction when its statement wrote (`committed`,
    /// `rolled back`, …); `None` for a source that only read, or a file.
    pub(crate) source_transaction: Option<&'static str>,
    /// Payload bytes read from the source.
    pub(crate) bytes: u64,
    /// How long the copy took (connections to commit).
    pub(crate) duration: Duration,
    /// Every destination, in command-line order.
    pub(crate) destinations: Vec<DestinationReport>,
    /// Why the run failed, if it did.
    pub(crate) error: Option<String>,
    /// The source's error, when it is why.
    pub(crate) source_error: Option<ErrorInfo>,
    /// What the servers said (notices, warnings), in order per connection.
    pub(crate) notices: Vec<Notice>,
}

impl RunReport {
    /// Rows copied: the source's count, else the destinations' (a file source has none).
    pub(crate) fn rows(&self) -> Option<u64> {
        self.source_rows.or_else(|| {
            self.destinations
                .iter()
                .filter(|d| d.status == Status::Committed)
                .find_map(|d| d.rows)
        })
    }

    /// How far an interrupted copy got, as its last progress said it (the bar is cleared at
    /// the signal: progress62 F8): " after 76.38 MiB of data in 7.52 s", or nothing before any.
    fn how_far(&self) -> String {
        match self.bytes {
            0 => String::new(),
            bytes => format!(
                " after {} of data in {:.2} s",
                HumanBytes(bytes),
                self.duration.as_secs_f64()
            ),
        }
    }

    /// Whether every destination committed.
    pub(crate) fn succeeded(&self) -> bool {
        self.error.is_none()
            && self
                .destinations
                .iter()
                .all(|d| d.status == Status::Committed)
    }

    /// What "nothing committed" says when the run failed: stdout (or a pipe) that got data before
    /// the failure is said apart, since nothing takes it back.
    fn nothing_committed(&self) -> String {
        let sent: Vec<&str> = self
            .destinations
            .iter()
            .filter(|d| d.status == Status::Sent)
            .map(|d| d.endpoint.as_str())
            .collect();
        if sent.is_empty() {
            return "nothing committed".to_owned();
        }
        // stdout (`-`), or the pipe, FIFO or device a path names.
        let to: Vec<&str> = sent
            .into_iter()
            .map(|e| if e == "-" { "stdout" } else { e })
            .collect();
        let to = to.join(", ");
        format!(
            "nothing committed on any server, but data went out to {to}, which cannot be taken \
             back (see below)"
        )
    }

    /// Whether some destinations hold (or may hold) the rows and others do not.
    pub(crate) fn partial(&self) -> bool {
        !self.succeeded() && self.destinations.iter().any(|d| d.status.may_hold_rows())
    }

    /// The exit status. An interruption that left some destinations committed is partial
    /// first: that is what needs attention.
    pub(crate) fn exit(&self) -> Exit {
        if self.succeeded() {
            Exit::Success
        } else if self.partial() {
            Exit::Partial
        } else if let Some(signal) = self.interrupted() {
            Exit::interrupted(signal)
        } else if self.statement_refused() {
            Exit::Usage
        } else {
            Exit::CopyFailed
        }
    }

    /// A destination's server refused the `--receive` as written when its COPY started, before
    /// any byte went out and with nothing held anywhere: a syntax error, an option or column it
    /// does not take (SQLSTATE class 42 but a privilege's 42501, or 22023) — the command's
    /// mistake, exit 2, as a missing column in its column list is (files67 F2: FORCE_NOT_NULL's
    /// missing column, an unknown option, exit 1, "the copy failed", which scripts retry). Copy
    /// mode's only: table mode's statements are copyman's, refused so only where the table
    /// changed under the run (a column dropped meanwhile: the copy failed, exit 1).
    fn statement_refused(&self) -> bool {
        let refused = |e: &ErrorInfo| {
            e.sqlstate
                .as_deref()
                .is_some_and(|c| (c.starts_with("42") && c != "42501") || c == "22023")
        };
        self.command == "copy"
            && self.bytes == 0
            && self.source_error.is_none()
            && self.source_rows.is_none()
            && !self
                .destinations
                .iter()
                .any(|d| d.status.may_hold_rows() || d.status == Status::Sent)
            && self
                .destinations
                .iter()
                .any(|d| d.error.as_ref().is_some_and(refused))
    }

    /// The signal that interrupted the run, if one did and the run did not succeed.
    pub(crate) fn interrupted(&self) -> Option<i32> {
        signals::received().filter(|_| !self.succeeded())
    }

    /// The status word of `--json`.
    fn status(&self) -> &'static str {
        match self.exit() {
            Exit::Success => "ok",
            Exit::Partial => "partial",
            exit if exit.is_interruption() => "interrupted",
            _ => "failed",
        }
    }

    fn per_second(&self, n: u64) -> f64 {
        let secs = self.duration.as_secs_f64();
        if secs > 0.0 { n as f64 / secs } else { 0.0 }
    }

    /// The headline: what moved, how fast.
    pub(crate) fn headline(&self) -> String {
        let committed = self
            .destinations
            .iter()
            .filter(|d| d.status == Status::Committed)
            .count();
        let rows = match self.rows() {
            Some(rows) => progress::rows(rows),
            None => "data".to_owned(),
        };
        let speed = format!(
            "{}/s",
            HumanBytes(self.per_second(self.bytes).round() as u64)
        );
        let row_speed = self
            .rows()
            .map(|r| format!(", {} rows/s", HumanCount(self.per_second(r).round() as u64)))
            .unwrap_or_default();
        format!(
            "{rows} ({}) to {committed} of {} destination{} in {:.2} s ({speed}{row_speed})",
            HumanBytes(self.bytes),
            self.destinations.len(),
            if self.destinations.len() == 1 {
                ""
            } else {
                "s"
            },
            self.duration.as_secs_f64()
        )
    }

    /// The human summary.
    pub(crate) fn write_human(&self, out: &mut dyn Write) -> io::Result<()> {
        match &self.error {
            _ if self.exit().is_interruption() => writeln!(
                out,
                "copyman: interrupted by {}{}: {}",
                signals::name(self.interrupted().unwrap_or_default()),
                self.how_far(),
                self.nothing_committed()
            )?,
            None if self.succeeded() => writeln!(out, "copyman: copied {}", self.headline())?,
            _ if self.partial() => {
                let committed = format!("{}{}", self.committed_of_all(), self.in_doubt());
                // An error that says it already, once (commit74 F4: "every destination
                // committed (every destination committed, but the source's …)").
                let said = match &self.error {
                    Some(e) if e.starts_with(&committed) => e.clone(),
                    Some(e) => format!("{committed} ({e})"),
                    None => committed,
                };
                writeln!(
                    out,
                    "copyman: PARTIAL: {said}; see each below{}",
                    self.pending_hint()
                )?;
            }
            None => writeln!(out, "copyman: copy failed; {}", self.nothing_committed())?,
            // Each destination's error is on its line below: named there only (ux70 F1: a
            // long error said twice, in the headline and on its line).
            Some(error)
                if error.starts_with(EACH_FAILED)
                    && self.destinations.iter().all(|d| d.error.is_some()) =>
            {
                writeln!(
                    out,
                    "copyman: copy failed: every destination failed (each says why below); {}",
                    self.nothing_committed()
                )?
            }
            Some(error) => writeln!(
                out,
                "copyman: copy failed: {error}; {}",
                self.nothing_committed()
            )?,
        }
        if let Some(why) = crate::watch::waited_on_itself() {
            writeln!(out, "copyman: {why}")?;
        }
        if let Some((d, share)) = crate::watch::pacer()
            && let Some(dest) = self.destinations.get(d)
        {
            writeln!(
                out,
                "copyman: destination {} ({}) paced the copy: copyman waited on it alone {:.0}% \
                 of the time (the others wait with it)",
                d + 1,
                dest.endpoint,
                share * 100.0
            )?;
        }
        // One column for every line's status, as wide as the widest ("commit pending" pushed
        // its line one column right: sweep58 F6).
        let width = (self.destinations.iter())
            .map(|d| d.status.name().len())
            .fold(12, usize::max);
        // The error the headline said as every destination's: not said again on each line
        // (recheck72 F4: a long error three times).
        let said_above = (self.error.as_deref())
            .and_then(|e| e.strip_prefix("every destination failed: "))
            .filter(|_| self.destinations.len() > 1);
        for d in &self.destinations {
            let tag = d.rows.map(|n| format!("COPY {n}")).unwrap_or_default();
            let at = d.reached.as_ref().map(|host| format!(" (at {host})"));
            // One database given twice (a query into two of its tables): each line says its
            // table, or the lines read alike (copy41 F11).
            let twice = (self.destinations.iter())
                .filter(|o| o.endpoint == d.endpoint)
                .count()
                > 1;
            let table = (d.statement.as_deref())
                .filter(|_| twice)
                .and_then(copyman_core::statement::copy_table)
                .map(|t| format!(" → {t}"));
            let endpoint = format!(
                "{}{}{}",
                d.endpoint,
                at.unwrap_or_default(),
                table.unwrap_or_default()
            );
            let status = d.status.name();
            match (&d.error, &d.warning) {
                (Some(error), _) if said_above == Some(error.to_string().as_str()) => {
                    writeln!(
                        out,
                        "  {status:<width$} {tag:<14} {endpoint}: the error above"
                    )?;
                }
                (Some(error), _) => {
                    writeln!(out, "  {status:<width$} {tag:<14} {endpoint}: {error}")?;
                }
                (None, Some(warning)) => {
                    writeln!(out, "  {status:<width$} {tag:<14} {endpoint}: {warning}")?;
                }
                (None, None) => writeln!(out, "  {status:<width$} {tag:<14} {endpoint}")?,
            }
        }
        if let Some(host) = &self.source_reached {
            writeln!(out, "  {:<27} {} (at {host})", "source", self.source)?;
        }
        if let Some(advice) = self.level_advice() {
            writeln!(out, "{advice}")?;
        }
        Ok(())
    }

    /// Destinations that committed.
    fn committed(&self) -> usize {
        self.destinations
            .iter()
            .filter(|d| d.status == Status::Committed)
            .count()
    }

    /// "1 of 2 destinations committed", or where every one did (the source's part is what is
    /// partial) "every destination committed" (commit68 F6: "2 of 2 destinations committed"
    /// read as PARTIAL's contradiction).
    fn committed_of_all(&self) -> String {
        match (self.committed(), self.destinations.len()) {
            (n, all) if n == all => "every destination committed".to_owned(),
            (n, all) => format!("{n} of {all} destinations committed"),
        }
    }

    /// `, 1 in doubt` where COMMITs went unanswered: the headline's count of those committed
    /// leaves them out, and they may have (commit66 F5).
    fn in_doubt(&self) -> String {
        match (self.destinations.iter())
            .filter(|d| d.status == Status::InDoubt)
            .count()
        {
            0 => String::new(),
            n => format!(", {n} in doubt"),
        }
    }

    /// A hint to run `copyman recover` when a prepared transaction was left.
    fn pending_hint(&self) -> String {
        if self
            .destinations
            .iter()
            .any(|d| matches!(d.status, Status::CommitPending | Status::RollbackPending))
        {
            format!(
                "; run copyman recover {} to finish the prepared transactions",
                crate::recover::same_as_this_run()
            )
        } else {
            String::new()
        }
    }

    /// What brings a partial run's destinations level, where some committed and the others
    /// hold nothing of it (commit42 F1: the same command again failed on the ones that
    /// committed, 23505, and the server's "might succeed if retried" said otherwise): run
    /// again to the others only, or to all with `--truncate`. `None` where nothing or
    /// everything committed, or a prepared transaction waits (recover's first), or a file or
    /// stdout took the rows (what went out is said on its line).
    fn level_advice(&self) -> Option<String> {
        let numbered = |status: Status| -> Vec<String> {
            (self.destinations.iter().enumerate())
                .filter(|(_, d)| d.status == status)
                .map(|(i, _)| (i + 1).to_string())
                .collect()
        };
        let committed = numbered(Status::Committed);
        let doubt = numbered(Status::InDoubt);
        let mut others = numbered(Status::Failed);
        others.extend(numbered(Status::RolledBack));
        others.sort_by_key(|n| n.parse::<usize>().unwrap_or(0));
        let known = committed.len() + doubt.len() + others.len() == self.destinations.len();
        // One whose commit a crash took in part only (a logged partition's rows kept) or may
        // not have taken holds rows of it: its own words say what to do (recheck56 F2: the
        // advice, followed, duplicated them).
        let in_part = |d: &DestinationReport| {
            d.error.as_ref().is_some_and(|e| {
                e.message.starts_with(copyman_job::commit::EMPTIED)
                    && !e.message.starts_with(copyman_job::commit::NONE_KEPT)
            })
        };
        if self.destinations.iter().any(in_part) {
            return None;
        }
        // (In doubt: its rows may be there. commit48 F6: no advice at all, for the others too.)
        if !known
            || (committed.is_empty() && doubt.is_empty())
            || (others.is_empty() && doubt.is_empty())
        {
            return None;
        }
        let numbers = |n: &[String]| match n {
            [one] => format!("destination {one}"),
            many => format!("destinations {}", many.join(", ")),
        };
        // Offered only to a run that emptied its tables itself: to an appending one (a --where
        // load beside history) --truncate would empty rows this run never copied (recheck42
        // F3). (`copy` has no --truncate: its statements are the user's.)
        let truncate = match self.truncated {
            true => ", or again with every --to (--truncate empties each and loads it again)",
            false => "",
        };
        // One never reached was never told apart from the others: it may be one of them under
        // another name (conn66 F14: the advice, followed, loaded that database twice).
        let unreached: Vec<String> = (self.destinations.iter().enumerate())
            .filter(|(_, d)| {
                (d.error.as_ref()).is_some_and(|e| e.message.starts_with("cannot connect to"))
            })
            .map(|(i, _)| (i + 1).to_string())
            .collect();
        let unreached = match unreached.as_slice() {
            [] => String::new(),
            [_] => format!(
                "; {} was never reached, so copyman could not tell whether it is one of the \
                 others under another name: check that first",
                numbers(&unreached)
            ),
            _ => format!(
                "; {} were never reached, so copyman could not tell whether one is one of the \
                 others under another name: check that first",
                numbers(&unreached)
            ),
        };
        if doubt.is_empty() {
            return Some(format!(
                "copyman: {} committed and {} did not: to bring them level, run again with only \
                 the --to of {} (mend what failed first){truncate}{unreached}",
                numbers(&committed),
                numbers(&others),
                numbers(&others)
            ));
        }
        // (Nothing to mend where none failed: recheck48b F7.)
        let mend = match self.destinations.iter().any(|d| d.status == Status::Failed) {
            true => " (mend what failed first)",
            false => "",
        };
        // Each in doubt prepared and decided commit (`--atomic`): still prepared, it holds none
        // of the rows, visibly, until copyman recover commits it — the look would advise a copy
        // again exactly where it would add them twice (recheck69 F10).
        let prepared = (self.destinations.iter())
            .filter(|d| d.status == Status::InDoubt)
            .all(|d| {
                (d.error.as_ref()).is_some_and(|e| {
                    e.message.starts_with("prepared as ")
                        && e.message
                            .contains(crate::finish::COMMIT_PREPARED_UNANSWERED)
                })
            });
        if prepared {
            let (is, its, it) = match doubt.len() {
                1 => ("is", "its transaction was", "it"),
                _ => ("are", "their transactions were", "them"),
            };
            let rest = match others.is_empty() {
                true => String::new(),
                false => format!(
                    "; to bring {} level, run again with only {} --to{mend}{truncate}",
                    numbers(&others),
                    match others.len() {
                        1 => "its",
                        _ => "their",
                    },
                ),
            };
            return Some(format!(
                "copyman: {} {is} in doubt: {its} prepared and decided commit: run copyman \
                 recover {} once the server answers, which commits {it} where still prepared \
                 (never copy into {it} again before: a prepared transaction's rows are not seen \
                 there){rest}",
                numbers(&doubt),
                crate::recover::same_as_this_run()
            ));
        }
        let (is, look, of_doubt) = match doubt.len() {
            1 => (
                "is",
                "its server answers, look whether it holds",
                format!("{} if it holds none of them", numbers(&doubt)),
            ),
            _ => (
                "are",
                "their servers answer, look whether each holds",
                format!("each of {} that holds none of them", numbers(&doubt)),
            ),
        };
        let rerun = match others.is_empty() {
            true => of_doubt,
            false => format!("{}, and of {of_doubt}", numbers(&others)),
        };
        Some(format!(
            "copyman: {} {is} in doubt: once {look} this run's rows; to bring every destination \
             level, run again with only the --to of {rerun}{mend}{truncate}",
            numbers(&doubt)
        ))
    }

    /// Only what went wrong, one line each (for `--quiet`).
    pub(crate) fn write_errors(&self, out: &mut dyn Write) -> io::Result<()> {
        if self.exit().is_interruption() {
            writeln!(
                out,
                "copyman: interrupted by {}{}: {}",
                signals::name(self.interrupted().unwrap_or_default()),
                self.how_far(),
                self.nothing_committed()
            )?;
            return Ok(());
        }
        if self.partial() {
            writeln!(
                out,
                "copyman: PARTIAL: {}{}{}",
                self.committed_of_all(),
                self.in_doubt(),
                self.pending_hint()
            )?;
        }
        // Whether anything committed, as the full summary says it: it is what a cron job's
        // mail must tell (files40 F9: the quiet lines said the error twice, and not that).
        match (&self.error, self.partial()) {
            (Some(error), true) => writeln!(out, "copyman: copy failed: {error}")?,
            (Some(error), false) => writeln!(
                out,
                "copyman: copy failed: {error}; {}",
                self.nothing_committed()
            )?,
            (None, _) => {}
        }
        if let Some(why) = crate::watch::waited_on_itself() {
            writeln!(out, "copyman: {why}")?;
        }
        for d in &self.destinations {
            // (Not again the error the line above said.)
            if let Some(error) = &d.error
                && !self
                    .error
                    .as_ref()
                    .is_some_and(|run| run.to_string().contains(&error.to_string()))
            {
                writeln!(out, "copyman: destination {} failed: {error}", d.endpoint)?;
            }
        }
        if let Some(advice) = self.level_advice() {
            writeln!(out, "{advice}")?;
        }
        Ok(())
    }

    /// The `--json` summary.
    pub(crate) fn to_json(&self) -> Value {
        let rows = self.rows();
        // Who said the error: the source, else the first destination that failed (a failure in
        // the commit phase left `error` null with exit 1: a script printed "None").
        // (A destination that failed before one whose note is in its error: a pipe's
        // "went out and cannot be taken back" was named.)
        let each = || self.destinations.iter().enumerate();
        let failed = (each().filter(|(_, d)| d.status == Status::Failed))
            .chain(each())
            .find_map(|(i, d)| Some((i, d, d.error.as_ref()?)));
        let (server, endpoint, sqlstate) = match (&self.source_error, failed) {
            // Interrupted: the signal is why, not a server (a busy destination's 57014 was
            // copyman's own cancel, a destination left out before is another matter).
            _ if self.exit().is_interruption() => (None, None, None),
            (Some(e), _) => (
                Some("source".to_owned()),
                Some(self.source.clone()),
                e.sqlstate.clone(),
            ),
            (None, Some((i, d, e))) => (
                Some(format!("destination {}", i + 1)),
                Some(d.endpoint.clone()),
                e.sqlstate.clone(),
            ),
            (None, None) => (None, None, None),
        };
        // A signal is the run's error, as stderr says it (the source's 57014 that followed is
        // copyman's own cancel, under `source`: docs43 F5); a job's document says it so too.
        let interrupted = (self.exit().is_interruption()).then(|| {
            format!(
                "interrupted by {}",
                signals::name(self.interrupted().unwrap_or_default())
            )
        });
        let error = interrupted
            .clone()
            .or_else(|| self.error.clone())
            .or_else(|| {
                let (i, d, e) = failed.filter(|_| self.exit() != Exit::Success)?;
                // As its status says it: one in doubt may have committed (recheck48b F7:
                // "failed" where its rows were there).
                let what = match d.status {
                    Status::InDoubt => "is in doubt",
                    Status::CommitPending => "is commit pending",
                    Status::RollbackPending => "is rollback pending",
                    _ => "failed",
                };
                Some(format!(
                    "destination {} ({}) {what}: {}",
                    i + 1,
                    d.endpoint,
                    e.message
                ))
            });
        json!({
            "status": self.status(),
            "warnings": warnings(),
            "committed": self.committed(),
            "exit_code": self.exit().code(),
            "command": self.command,
            "table": self.table,
            "target_table": self.target_table,
            "started_at": rfc3339(self.started_at),
            "finished_at": rfc3339(self.started_at + self.duration),
            "source": {
                "endpoint": self.source,
                "reached": self.source_reached,
                "statement": self.statement,
                "rows": self.source_rows,
                "transaction": self.source_transaction,
                "error": self.source_error.as_ref().map(error_json),
            },
            "format": self.format,
            // One meaning in a one-table run's document and a job's: read from the source, and
            // committed, summed over the destinations (`rows` is the source's count here, the
            // committed total in a job's).
            "source_rows": self.source_rows,
            // Null where a committed destination's count is unknown (a file from a file,
            // which no statement says the format of): 0 read as "nothing written" (files40 F5).
            "committed_rows": self.destinations.iter()
                .filter(|d| d.status == Status::Committed)
                .map(|d| d.rows)
                .sum::<Option<u64>>(),
            "rows": rows,
            "bytes": self.bytes,
            "duration_secs": self.duration.as_secs_f64(),
            "rows_per_sec": rows.map(|r| self.per_second(r)),
            "bytes_per_sec": self.per_second(self.bytes),
            "destinations": self.destinations.iter().enumerate().map(|(i, d)| json!({
                "server": format!("destination {}", i + 1),
                "endpoint": d.endpoint,
                "reached": d.reached,
                "status": d.status.name(),
                "command_tag": d.rows.map(|n| format!("COPY {n}")),
                "rows": d.rows,
                "statement": d.statement,
                "duration_secs": d.duration.map(|t| t.as_secs_f64()),
                "error": d.error.as_ref().map(error_json),
                "warning": d.warning,
            })).collect::<Vec<_>>(),
            "error": error,
            // The way to bring a partial run's destinations level, or to finish what it left
            // prepared, as stderr says it (recheck49 F5: null where recover was the way).
            "advice": self.level_advice().map(|a| a.replacen("copyman: ", "", 1)).or_else(|| {
                let pending = self.pending_hint();
                (!pending.is_empty()).then(|| pending.trim_start_matches("; ").to_owned())
            }),
            "interrupted": interrupted,
            // As a run that ends before copying says it: who said the error, and its SQLSTATE.
            "server": server,
            "endpoint": endpoint,
            "sqlstate": sqlstate,
            "waits": crate::watch::lock_waits(),
            // The destination copyman waited on alone the most (1-based), and how much of the
            // time.
            "paced_by": crate::watch::pacer().map(|(d, share)| json!({
                "destination": d + 1,
                "share": (share * 100.0).round() / 100.0,
            })),
            "notices": self.notices.iter().map(Notice::to_json).collect::<Vec<_>>(),
        })
    }
}

/// An error as JSON.
pub(crate) fn error_json(error: &ErrorInfo) -> Value {
    json!({ "sqlstate": error.sqlstate, "message": error.message })
}

/// The `--json` document for a run that ended before copying (connection, usage): `server`
/// and `sqlstate` say which server could not be connected to and what it said, if it did.
/// Whatever the command, every list its own document has is there, empty (a one-table run's
/// `destinations`, a job's `tables` and `notes`, recover's `prepared`), and so are the totals,
/// nothing (`source_rows` not read): a script reads one shape (jobs67 F7: a job refused before
/// copying lacked `committed_rows`, `source_rows` and its `state`).
pub(crate) fn fatal_json(
    exit: Exit,
    message: &str,
    server: Option<(&str, &ErrorInfo)>,
    endpoint: Option<&str>,
) -> Value {
    let status = match exit {
        exit if exit.is_interruption() => "interrupted",
        // A resume that stopped before it began: what earlier runs committed stays.
        Exit::Partial => "partial",
        _ => "failed",
    };
    // Nothing was begun by this run that could have committed: no destination is listed.
    json!({
        "status": status,
        "exit_code": exit.code(),
        "error": message,
        "server": server.map(|(whom, _)| whom),
        "endpoint": endpoint.or_else(|| server.and_then(|(whom, _)| given_endpoint(whom))),
        "sqlstate": server.and_then(|(_, error)| error.sqlstate.as_deref()),
        "committed": 0,
        "source_rows": null,
        "rows": 0,
        "committed_rows": 0,
        "bytes": 0,
        "state": JOB_STATE.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone(),
        "notes": [],
        "destinations": [],
        "tables": [],
        "prepared": [],
        "warnings": warnings(),
        "finished_at": rfc3339(SystemTime::now()),
    })
}

/// A server as an error names it (`source`, `destination 2`, `destination 2 (NAME)`,
/// `destination 2 NAME`) split into what `--json`'s `server` says (`source`, `destination 2`)
/// and its `endpoint` (`NAME`), if named.
///
/// ```text
/// "destination 2 (u@h:5432/db)" → ("destination 2", Some("u@h:5432/db"))
/// ```
pub(crate) fn server_and_endpoint(whom: &str) -> (&str, Option<&str>) {
    let role_end = match whom.strip_prefix("destination ") {
        Some(rest) => match rest.bytes().take_while(u8::is_ascii_digit).count() {
            0 => return (whom, None),
            digits => "destination ".len() + digits,
        },
        None if whom.starts_with("source") => "source".len(),
        None => return (whom, None),
    };
    let (role, rest) = whom.split_at(role_end);
    let rest = rest.trim();
    let endpoint = (rest.strip_prefix('(').and_then(|r| r.strip_suffix(')'))).unwrap_or(rest);
    (role, Some(endpoint).filter(|e| !e.is_empty()))
}

/// The server a message about one destination names (`destination 2 (u@h:1/d) takes no
/// writes: …` → `destination 2 (u@h:1/d)`, for [`server_and_endpoint`]): the one it starts
/// with, else the only one it names, however often (`… differ: destination 2 (u@h:1/d) lacks
/// "v"`); `None` for a message that names none or several.
pub(crate) fn named_first(message: &str) -> Option<&str> {
    // Each `destination N` in it: where it starts, and its number.
    let named: Vec<(usize, &str)> = message
        .match_indices("destination ")
        .filter(|(at, _)| {
            *at == 0 || !message[..*at].ends_with(|c: char| c.is_alphanumeric() || c == '_')
        })
        .filter_map(|(at, word)| {
            let rest = &message[at + word.len()..];
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            (digits > 0).then(|| (at, &rest[..digits]))
        })
        .collect();
    let &(at, number) = named.first()?;
    if at != 0 && named.iter().any(|(_, n)| *n != number) {
        return None;
    }
    let end = at + "destination ".len() + number.len();
    match message[end..].strip_prefix(" (") {
        Some(within) => within
            .find(')')
            .map(|close| &message[at..end + 2 + close + 1]),
        None => Some(&message[at..end]),
    }
}

/// `time` as RFC 3339 in UTC with milliseconds: `2026-11-30T05:02:52.123Z`.
pub(crate) fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days, for days since 1970-01-01 (never negative here).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// Writes `text` on stdout (std's `print!` would panic on a closed stdout; this hands the
/// error back, and a broken pipe ends the run quietly, as main says), made
/// [`printable`](progress::printable) as stderr is: a dry run's plan names tables anyone who
/// may create one chose (an escape sequence in a name reached the terminal).
///
/// # Errors
/// Stdout cannot be written.
pub(crate) fn print_stdout(text: &str) -> io::Result<()> {
    write_stdout(&progress::in_locale(text))
}

/// [`print_stdout`], its words left in UTF-8 (a JSON document, UTF-8 by its definition).
fn write_stdout(text: &str) -> io::Result<()> {
    use std::os::fd::AsFd;

    let mut out = io::stdout().lock();
    // What Rust's line buffer holds goes first; then the text, straight to the descriptor (a
    // line buffer's failed write may keep part of it), waiting for room in a pipe left
    // non-blocking.
    out.flush()?;
    let mut raw = std::fs::File::from(out.as_fd().try_clone_to_owned()?);
    crate::dest::write_all_waiting(&mut raw, progress::printable(text).as_bytes())
}

/// The `exit_code` of the JSON document written ([`print_json`]), once written (held while it
/// is written).
static JSON_PRINTED: Mutex<Option<i32>> = Mutex::new(None);

/// [`JSON_PRINTED`], waited for while another thread writes its document, for a second at most
/// (a stdout whose reader does not read holds a write: a second signal still exits).
fn json_printed() -> Option<MutexGuard<'static, Option<i32>>> {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        match JSON_PRINTED.try_lock() {
            Ok(guard) => return Some(guard),
            Err(TryLockError::Poisoned(poisoned)) => return Some(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(TryLockError::WouldBlock) => return None,
        }
    }
}

/// The exit code the `--json` document written says, if one was written: the process exits
/// with it, whatever ends it next (a second signal's exit at once, as the run ended).
pub(crate) fn printed_exit_code() -> Option<i32> {
    json_printed()
        .and_then(|printed| *printed)
        .filter(|code| *code >= 0)
}

/// When the process started, and the command it runs: the `--json` envelope's
/// ([`envelope`]).
static STARTED: std::sync::OnceLock<SystemTime> = std::sync::OnceLock::new();
static COMMAND: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();

/// Notes the process's start (called first thing in `main`).
pub(crate) fn mark_start() {
    STARTED.get_or_init(SystemTime::now);
}

/// How long the process has run ([`mark_start`]).
pub(crate) fn running_for() -> Duration {
    STARTED
        .get()
        .and_then(|t| t.elapsed().ok())
        .unwrap_or_default()
}

/// The run's source as it was given (redacted), for a document whose error the source said but
/// that names no endpoint (a missing table: `server` was `source`, `endpoint` null: docs43 F6).
static SOURCE_ENDPOINT: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Notes the run's source server as it was given ([`SOURCE_ENDPOINT`]).
pub(crate) fn set_source_endpoint(endpoint: String) {
    let _ = SOURCE_ENDPOINT.set(endpoint);
}

/// A one-table run's destinations as they were given (redacted), for a document whose error
/// names one by its number only (a file that cannot be created: recheck56 F4), and for one of
/// an exit at once before the commit ([`given_destinations`]).
static DESTINATION_ENDPOINTS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();

/// Notes a one-table run's destinations as they were given ([`DESTINATION_ENDPOINTS`]).
pub(crate) fn set_destination_endpoints(endpoints: Vec<String>) {
    let _ = DESTINATION_ENDPOINTS.set(endpoints);
}

/// A one-table run's destinations as they were given: each named as its report names it
/// (`destination 2`), with its endpoint.
pub(crate) fn given_destinations() -> Vec<(String, String)> {
    (DESTINATION_ENDPOINTS
        .get()
        .into_iter()
        .flatten()
        .enumerate())
    .map(|(i, endpoint)| (format!("destination {}", i + 1), endpoint.clone()))
    .collect()
}

/// The endpoint `whom` (`source`, `destination 2`) was given as, where it was noted.
fn given_endpoint(whom: &str) -> Option<&'static str> {
    if whom == "source" {
        return SOURCE_ENDPOINT.get().map(String::as_str);
    }
    let n: usize = whom.strip_prefix("destination ")?.parse().ok()?;
    let endpoints = DESTINATION_ENDPOINTS.get()?;
    endpoints.get(n.checked_sub(1)?).map(String::as_str)
}

/// Names the command the process runs (`table`, `copy`, `recover`, `demo`) in every `--json`
/// document.
pub(crate) fn set_command(name: &'static str) {
    let _ = COMMAND.set(name);
}

/// `value` with the keys every `--json` document has, whatever its command and outcome (a job's,
/// a one-table run's, recover's, a run that ended before copying, a second signal's exit at
/// once), where it does not say them itself: `command`, `status`, `exit_code`, `error`, `server`
/// (`source` or `destination N`), `endpoint` (that server as it was given), `sqlstate` (null
/// where nothing failed, or no server said it), `started_at`, `finished_at`, `duration_secs`
/// (since the process started), `warnings`, `notices`, `waits`. A script reads `.error` or
/// `.duration_secs` of any document alike (a job's had neither); `error` is set whenever
/// `exit_code` is not 0.
fn envelope(value: &Value) -> Value {
    let mut doc = value.clone();
    let Some(map) = doc.as_object_mut() else {
        return doc;
    };
    let now = SystemTime::now();
    let started = *STARTED.get_or_init(|| now);
    let common = [
        ("command", json!(COMMAND.get())),
        ("status", Value::Null),
        ("exit_code", Value::Null),
        ("error", Value::Null),
        ("server", Value::Null),
        ("endpoint", Value::Null),
        ("sqlstate", Value::Null),
        ("started_at", json!(rfc3339(started))),
        ("finished_at", json!(rfc3339(now))),
        (
            "duration_secs",
            json!(
                now.duration_since(started)
                    .unwrap_or_default()
                    .as_secs_f64()
            ),
        ),
        ("warnings", json!(warnings())),
        ("notices", json!([])),
        // The waits said on stderr, whatever ended the run (a signal while it waited on a
        // lock printed `[]`).
        ("waits", json!(crate::watch::lock_waits())),
    ];
    for (key, default) in common {
        map.entry(key).or_insert(default);
    }
    // A document that says no why for an exit other than 0 says its status at least.
    let code = map["exit_code"].as_i64().filter(|code| *code != 0);
    if let (Some(code), true) = (code, map["error"].is_null()) {
        let status = map["status"].as_str().unwrap_or("failed").to_owned();
        map.insert("error".to_owned(), json!(format!("{status} (exit {code})")));
    }
    doc
}

/// Writes a JSON document and a newline on stdout: one per process. A second signal's exit at
/// once and the run's own end may both come to write theirs (two signals close together: the
/// run ended on the first as the second came): the first written stands, the other is left
/// out (stdout held two documents, which a `--json` reader cannot parse).
pub(crate) fn print_json(value: &Value) -> io::Result<()> {
    let Some(mut printed) = json_printed().filter(|printed| printed.is_none()) else {
        return Ok(());
    };
    let document = envelope(value);
    let code = document["exit_code"]
        .as_i64()
        .and_then(|c| i32::try_from(c).ok());
    // (-1: printed without an exit code, which no exit then takes.)
    *printed = Some(code.unwrap_or(-1));
    let written = (|| {
        let mut text = serde_json::to_string_pretty(&document).map_err(io::Error::other)?;
        text.push('\n');
        write_stdout(&text)
    })();
    // A reader gone (`… --json | head -c 10`, a closed pipe): the document is lost, said on
    // stderr; the exit status stands.
    if let Err(e) = &written {
        progress::println(&format!(
            "copyman: warning: --json: the summary could not be written to stdout ({e}); the \
             exit status says how the run ended"
        ));
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A notice a server said again (a long name quoted by each of copyman's planning queries:
    /// 16 times each) is said once, with how many times; another server's is its own (scale38
    /// F7).
    #[test]
    fn a_notice_said_again_is_said_once() {
        let truncated = DbError::new("NOTICE", "42622", "identifier \"x\" will be truncated");
        let on = |endpoint: &str, notice: &DbError| Notice {
            endpoint: endpoint.to_owned(),
            notice: notice.clone(),
            times: 1,
        };
        let mut other = DbError::new("WARNING", "01000", "something else");
        other.hint = Some("a hint".to_owned());
        let notices = [
            on("destination 1", &truncated),
            on("destination 1", &other),
            on("destination 1", &truncated),
            on("destination 2", &truncated),
            on("destination 1", &other),
        ];
        assert_eq!(
            notices_said(&notices),
            [
                "destination 1: NOTICE:  identifier \"x\" will be truncated (said 2 times)",
                "destination 1: WARNING:  something else (said 2 times)\nHINT:  a hint",
                "destination 2: NOTICE:  identifier \"x\" will be truncated",
            ]
        );
        // One a job folded as it came (a notice per row) is said with all its times.
        let folded = Notice {
            times: 300,
            ..on("destination 1", &truncated)
        };
        assert_eq!(
            notices_said(&[folded]),
            ["destination 1: NOTICE:  identifier \"x\" will be truncated (said 300 times)"]
        );
        // copyman's own words are not dressed as a server's ERROR (signals41 F2).
        let own = DbError::new(
            copyman_job::commit::OWN_WORDS,
            "08006",
            "a new session failed",
        );
        assert_eq!(
            notices_said(&[on("destination 2", &own)]),
            ["copyman: destination 2: a new session failed"]
        );
        // The standby wait a signal cancelled is glossed (commit64 F3).
        let mut cancelled = DbError::new(
            "WARNING",
            "01000",
            "canceling wait for synchronous replication due to user request",
        );
        cancelled.detail = Some(
            "The transaction has already committed locally, but might not have been replicated \
             to the standby."
                .to_owned(),
        );
        let said = notices_said(&[on("destination 2", &cancelled)]);
        assert!(
            said[0].ends_with(SYNC_WAIT_GLOSS_COMMIT)
                && said[0].contains("DETAIL:  The transaction"),
            "{said:?}"
        );
        let json = on("destination 2", &own).to_json();
        assert!(json["severity"].is_null(), "{json}");
        assert_eq!(json["by"], "copyman");
        assert_eq!(on("destination 1", &other).to_json()["by"], "server");
    }

    #[test]
    fn every_destination_failed_says_one_error_once() {
        let e = |m: &str| {
            Some(ErrorInfo {
                sqlstate: Some("22021".to_owned()),
                message: m.to_owned(),
            })
        };
        assert_eq!(
            every_destination_failed(&[(0, e("bad")), (1, e("bad"))]),
            "every destination failed: SQLSTATE 22021: bad"
        );
        assert_eq!(
            every_destination_failed(&[(0, e("bad")), (1, e("worse"))]),
            "every destination failed: destination 1: SQLSTATE 22021: bad; destination 2: \
             SQLSTATE 22021: worse"
        );
    }

    #[test]
    fn a_server_named_by_an_error_is_its_role_and_endpoint() {
        let split = server_and_endpoint;
        assert_eq!(split("source"), ("source", None));
        assert_eq!(split("source u@h:1/d"), ("source", Some("u@h:1/d")));
        assert_eq!(split("destination 2"), ("destination 2", None));
        assert_eq!(
            split("destination 12 (u@h:1/d)"),
            ("destination 12", Some("u@h:1/d"))
        );
        assert_eq!(
            split("destination 2 u@h:1/d"),
            ("destination 2", Some("u@h:1/d"))
        );
        assert_eq!(split("monitor"), ("monitor", None));
        let named = |m| named_first(m).map(split);
        assert_eq!(
            named("destination 2 (u@h:1/d) takes no writes: it is a standby"),
            Some(("destination 2", Some("u@h:1/d")))
        );
        assert_eq!(named("destination 3: gone"), Some(("destination 3", None)));
        assert_eq!(named("the destinations differ"), None);
        assert_eq!(
            named("the columns differ: destination 2 (u@h:1/d) lacks \"v\""),
            Some(("destination 2", Some("u@h:1/d")))
        );
        assert_eq!(
            named("destination 1 (a@h:1/d) lacks \"v\", destination 2 (b@h:1/d) lacks \"w\""),
            Some(("destination 1", Some("a@h:1/d"))),
            "the one it starts with"
        );
        assert_eq!(
            named(
                "the columns differ: destination 1 (a@h:1/d) lacks \"v\", destination 2 lacks it"
            ),
            None,
            "several, none first"
        );
        assert_eq!(named("destination x"), None);
    }

    #[test]
    fn server_errors_are_one_line_with_sqlstate() {
        let mut db = DbError::new("ERROR", "23514", "new row violates check constraint \"c\"");
        db.detail = Some("Failing row contains (3, -1).".into());
        db.context = Some("COPY t, line 3:\n\"3\t-1\"".into());
        let error =
            copyman_sync::Error::Session(copyman_core::session::SessionError::Db(Box::new(db)));
        let info = describe(&error);
        assert_eq!(info.sqlstate.as_deref(), Some("23514"));
        assert_eq!(
            info.to_string(),
            "SQLSTATE 23514: new row violates check constraint \"c\" (detail: Failing row \
             contains (3, -1).; context: COPY t, line 3: \"3\t-1\")"
        );
        let io = copyman_sync::Error::Io(io::Error::from(io::ErrorKind::BrokenPipe));
        assert!(is_broken_pipe(&io));
        assert_eq!(describe(&io).sqlstate, None);
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        // A leap day, and the end of a century leap year.
        let t = UNIX_EPOCH + Duration::from_millis(951_782_400_250);
        assert_eq!(rfc3339(t), "2000-02-29T00:00:00.250Z");
        let t = UNIX_EPOCH + Duration::from_secs(978_307_199);
        assert_eq!(rfc3339(t), "2000-12-31T23:59:59.000Z");
    }

    #[test]
    fn report_json_and_exit() {
        let report = RunReport {
            command: "table",
            table: Some("public.t".into()),
            target_table: None,
            statement: Some("COPY public.t TO STDOUT".into()),
            started_at: UNIX_EPOCH + Duration::from_secs(1_764_478_972),
            source: "u@h:5432/db".into(),
            source_reached: Some("h2:5432".into()),
            truncated: false,
            format: Some("binary".to_owned()),
            source_rows: Some(10),
            source_transaction: None,
            bytes: 100,
            duration: Duration::from_secs(2),
            source_error: None,
            destinations: vec![
                DestinationReport {
                    endpoint: "host=b".into(),
                    reached: None,
                    status: Status::Committed,
                    rows: Some(10),
                    error: None,
                    statement: Some("COPY public.t FROM STDIN".into()),
                    duration: Some(Duration::from_millis(1500)),
                    warning: None,
                },
                DestinationReport {
                    endpoint: "u@c1:5432,c2:5432/db".into(),
                    reached: Some("c2:5432".into()),
                    status: Status::Failed,
                    rows: None,
                    error: Some(ErrorInfo {
                        sqlstate: Some("23514".into()),
                        message: "bad row".into(),
                    }),
                    statement: Some("COPY public.t FROM STDIN".into()),
                    duration: None,
                    warning: None,
                },
            ],
            error: None,
            notices: vec![Notice {
                endpoint: "destination 2".into(),
                notice: {
                    let mut db = DbError::default();
                    db.severity = "WARNING".into();
                    db.code = "01000".into();
                    db.message = "careful".into();
                    db.hint = Some("look".into());
                    db
                },
                times: 1,
            }],
        };
        assert_eq!(
            report.notices[0].to_string(),
            "destination 2: WARNING:  careful\nHINT:  look"
        );
        // One committed, one failed: partial, never "nothing committed".
        assert_eq!(report.exit(), Exit::Partial);
        let json = report.to_json();
        assert_eq!(json["status"], "partial");
        assert_eq!(json["committed"], 1);
        assert_eq!(json["command"], "table");
        assert_eq!(json["table"], "public.t");
        assert_eq!(json["started_at"], "2025-11-30T05:02:52.000Z");
        assert_eq!(json["finished_at"], "2025-11-30T05:02:54.000Z");
        assert_eq!(json["source"]["statement"], "COPY public.t TO STDOUT");
        assert_eq!(json["destinations"][0]["duration_secs"], 1.5);
        assert_eq!(
            json["destinations"][1]["statement"],
            "COPY public.t FROM STDIN"
        );
        assert_eq!(json["rows"], 10);
        assert_eq!(json["rows_per_sec"], 5.0);
        assert_eq!(json["destinations"][0]["command_tag"], "COPY 10");
        assert_eq!(json["destinations"][1]["error"]["sqlstate"], "23514");
        assert_eq!(json["notices"][0]["endpoint"], "destination 2");
        assert_eq!(json["notices"][0]["severity"], "WARNING");
        assert_eq!(json["notices"][0]["sqlstate"], "01000");
        assert_eq!(json["notices"][0]["message"], "careful");
        let mut human = Vec::new();
        report.write_human(&mut human).unwrap();
        let human = String::from_utf8(human).unwrap();
        assert!(
            human.contains("committed    COPY 10        host=b"),
            "{human}"
        );
        assert!(human.contains("SQLSTATE 23514: bad row"), "{human}");
        // One database twice: each line names its table.
        let mut twice = report.clone();
        twice.destinations[1].endpoint = "host=b".into();
        twice.destinations[1].reached = None;
        twice.destinations[1].statement = Some("COPY other FROM STDIN".into());
        let mut said = Vec::new();
        twice.write_human(&mut said).unwrap();
        let said = String::from_utf8(said).unwrap();
        assert!(said.contains("host=b → public.t\n"), "{said}");
        assert!(said.contains("host=b → other: "), "{said}");
        // A host list's outcome names the host its sessions went to.
        assert!(
            human.contains("u@c1:5432,c2:5432/db (at c2:5432): SQLSTATE 23514"),
            "{human}"
        );
        assert_eq!(json["destinations"][1]["reached"], "c2:5432");
        assert_eq!(json["source"]["reached"], "h2:5432");
        assert!(human.contains("  source   "), "{human}");
        assert!(human.contains(" u@h:5432/db (at h2:5432)\n"), "{human}");
        assert!(json["destinations"][0]["reached"].is_null());
        assert!(human.starts_with("copyman: PARTIAL: 1 of 2"), "{human}");
        assert!(!human.contains("nothing committed"), "{human}");

        assert_eq!(
            report.level_advice().as_deref(),
            Some(
                "copyman: destination 1 committed and destination 2 did not: to bring them \
                 level, run again with only the --to of destination 2 (mend what failed first)"
            )
        );
        // One in doubt beside: the others' way is said, and its own (commit48 F6: nothing was).
        let mut doubt = report.clone();
        doubt.destinations.push(doubt.destinations[0].clone());
        doubt.destinations[0].status = Status::InDoubt;
        assert_eq!(
            doubt.level_advice().as_deref(),
            Some(
                "copyman: destination 1 is in doubt: once its server answers, look whether it \
                 holds this run's rows; to bring every destination level, run again with only \
                 the --to of destination 2, and of destination 1 if it holds none of them (mend \
                 what failed first)"
            )
        );
        doubt.destinations[1].status = Status::InDoubt;
        assert!(
            doubt.level_advice().is_some_and(|a| a.contains(
                "destinations 1, 2 are in doubt: once their servers answer, look whether each \
                 holds this run's rows; to bring every destination level, run again with only \
                 the --to of each of destinations 1, 2 that holds none of them"
            )),
            "{:?}",
            doubt.level_advice()
        );
        // Nothing failed (one rolled back beside one in doubt): nothing to mend.
        // --json names it as its status does, with the advice (recheck48b F7: "failed").
        let mut lost = doubt.clone();
        lost.destinations[1].status = Status::Committed;
        lost.destinations[0].error = Some(ErrorInfo {
            sqlstate: None,
            message: "the connection was lost during COMMIT".into(),
        });
        let json = lost.to_json();
        assert!(
            json["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("destination 1 (")
                    && e.contains(") is in doubt: the connection")),
            "{json}"
        );
        assert!(
            json["advice"]
                .as_str()
                .is_some_and(|a| a.starts_with("destination 1 is in doubt: once its server")),
            "{json}"
        );
        // Prepared and its COMMIT PREPARED unanswered: recover first, never a copy into it
        // (recheck69 F10: "run again with only the --to of destination 2 if it holds none").
        let mut prepared = doubt.clone();
        prepared.destinations[1].status = Status::Failed;
        prepared.destinations[0].error = Some(ErrorInfo {
            sqlstate: None,
            message: format!(
                "prepared as copyman:r:1 {} (i/o error): it may have committed",
                crate::finish::COMMIT_PREPARED_UNANSWERED
            ),
        });
        let advice = prepared.level_advice().unwrap();
        assert!(
            advice.starts_with(
                "copyman: destination 1 is in doubt: its transaction was prepared and decided \
                 commit: run copyman recover with the same --to"
            ) && advice.contains("once the server answers, which commits it where still prepared")
                && advice.ends_with(
                "; to bring destination 2 level, run again with only its --to (mend what failed \
                 first)"
            ),
            "{advice}"
        );
        let mut rolled = doubt.clone();
        rolled.destinations[1].status = Status::RolledBack;
        assert!(
            rolled.level_advice().is_some_and(|a| !a.contains("mend")),
            "{:?}",
            rolled.level_advice()
        );
        doubt.destinations[2].status = Status::CommitPending;
        assert_eq!(doubt.level_advice(), None, "recover's first");
        // --json says recover's way then (recheck49 F5: null).
        let json = doubt.to_json();
        assert!(
            json["advice"]
                .as_str()
                .is_some_and(|a| a.starts_with("run copyman recover ")),
            "{json}"
        );

        let mut failed = report.clone();
        failed.destinations[0].status = Status::RolledBack;
        assert_eq!(failed.exit(), Exit::CopyFailed);
        assert_eq!(failed.to_json()["status"], "failed");
        // A pipe's note in its error (what went out) before the failure: the failure is named
        // (the pipe was).
        failed.destinations[0].status = Status::Sent;
        failed.destinations[0].error = Some(ErrorInfo {
            sqlstate: None,
            message: "3.50 MiB went out before the run failed and cannot be taken back".into(),
        });
        let json = failed.to_json();
        assert_eq!(json["server"], "destination 2", "{json}");
        assert_eq!(json["sqlstate"], "23514", "{json}");
        // Every destination failed, each for its own reason: each says why on its line, the
        // headline does not again (ux70 F1).
        let mut each = failed.clone();
        each.destinations[0].status = Status::Failed;
        let errors: Vec<(usize, Option<ErrorInfo>)> = (each.destinations.iter())
            .enumerate()
            .map(|(d, r)| (d, r.error.clone()))
            .collect();
        each.error = Some(every_destination_failed(&errors));
        let mut said = Vec::new();
        each.write_human(&mut said).unwrap();
        let said = String::from_utf8(said).unwrap();
        assert!(
            said.starts_with(
                "copyman: copy failed: every destination failed (each says why below)"
            ) && said.matches("went out before the run failed").count() == 1,
            "{said}"
        );
        assert!(
            each.to_json()["error"]
                .as_str()
                .is_some_and(|e| e.contains("destination 1: "))
        );
        // Every one for the same reason: the headline says it, once (recheck72 F4).
        let mut same = each.clone();
        let error = same.destinations[1].error.clone();
        for d in &mut same.destinations {
            (d.status, d.error) = (Status::Failed, error.clone());
        }
        let errors: Vec<(usize, Option<ErrorInfo>)> = (same.destinations.iter())
            .enumerate()
            .map(|(d, r)| (d, r.error.clone()))
            .collect();
        same.error = Some(every_destination_failed(&errors));
        let mut said = Vec::new();
        same.write_human(&mut said).unwrap();
        let said = String::from_utf8(said).unwrap();
        let message = &error.unwrap().message;
        assert!(
            said.matches(message.as_str()).count() == 1
                && said.matches(": the error above").count() == same.destinations.len(),
            "{said}"
        );
    }
}
