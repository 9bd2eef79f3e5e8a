//! What goes wrong, as the user reads it: a table's error on one line with the server's SQLSTATE
//! ([`TableError`]), what ends a job before any table is copied ([`JobError`]), how an error is
//! said ([`describe`], [`describe_with`], [`db_error`], [`error_chain`], [`one_line`]), and the
//! row count check's refusals ([`COUNT_WAY_OUT`]).

use std::error::Error as StdError;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use copyman_core::session::{DbError, SessionError};

/// An error as the user sees it: the server's SQLSTATE (when it spoke) and one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableError {
    /// The server's SQLSTATE.
    pub sqlstate: Option<String>,
    /// The error on one line.
    pub message: String,
    /// Known to be met again by a rerun until what it names is mended, whatever its SQLSTATE
    /// says: found by the plan in a destination's catalog (the table missing there, its
    /// columns different), or a copy its caller cancelled because it waited on itself
    /// ([`TableError::lasts`]).
    pub lasting: bool,
    /// It is the failure to connect to its server (a server down, its connection limit
    /// reached: 53300): a job that failed of nothing else ends as a connection failure (exit 3
    /// of the command), not as a failed copy.
    pub connect: bool,
}

impl TableError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            sqlstate: None,
            message: message.into(),
            lasting: false,
            connect: false,
        }
    }

    /// An error the plan found in a destination's catalog: [`TableError::lasting`].
    pub(super) fn lasting(message: impl Into<String>) -> Self {
        Self {
            lasting: true,
            ..Self::new(message)
        }
    }

    /// Whether a rerun (`--resume`) meets this error again until what it names is changed: one
    /// known to (`TableError::lasting`), or a server error of a class no retry passes
    /// ([`copyman_core::session::sqlstate_lasts`]: a table missing, a view written to, a bad
    /// row, a constraint violated, a privilege lacking). A connection lost, a lock or
    /// statement timeout, a cancel, a stall may not happen again.
    pub fn lasts(&self) -> bool {
        self.lasting
            || self
                .sqlstate
                .as_deref()
                .is_some_and(copyman_core::session::sqlstate_lasts)
    }

    pub(crate) fn prefixed(mut self, prefix: &str) -> Self {
        self.message = format!("{prefix}{}", self.message);
        self
    }
}

/// Why a table rolled back when the decision log could not record its run ([`commit::Report`]'s
/// `record_error`): the log's own words (its path and the system's error), not an IO error's
/// "on the connection".
///
/// [`commit::Report`]: crate::commit::Report
pub(super) fn unrecorded(error: &copyman_sync::Error) -> TableError {
    match error {
        copyman_sync::Error::Io(e) => TableError::new(e.to_string()),
        other => describe(other),
    }
}

/// A destination's transaction, prepared as `gid` and decided commit, whose COMMIT PREPARED
/// failed (`error`): in doubt. `copyman recover` commits it, unless it was gone (42704: no such
/// prepared transaction): another session finished it meanwhile, either way, and only the
/// destination can say which — a resume asks it (by the transaction id recorded before the
/// PREPARE) and copies the table again where it did not commit. Not an error a rerun meets
/// again (its SQLSTATE is then said in the message).
pub(super) fn commit_pending(gid: &str, error: TableError) -> TableError {
    if error.sqlstate.as_deref() == Some("42704") {
        return TableError::new(format!(
            "prepared as {gid} and decided commit, but by its COMMIT PREPARED the transaction \
             was gone (SQLSTATE 42704: {}): another session finished it meanwhile (copyman \
             recover with another decision log, COMMIT or ROLLBACK PREPARED by hand), and \
             whether it committed is unknown: --resume asks this destination and copies the \
             table again if it did not",
            error.message
        ));
    }
    error.prefixed(&format!(
        "prepared as {gid} and decided, but COMMIT PREPARED was not confirmed (copyman recover \
         commits it): "
    ))
}

/// Why a table failed on a destination that may hold its prepared transaction (its PREPARE
/// sent, not answered; or answered, and its ROLLBACK PREPARED not): `why` is what broke, if
/// known. A prepared transaction outlives its session, so nothing of a closed session's
/// words ("its server ends the transaction") follows ([`TableError::holds_prepared`]).
pub(super) fn rollback_pending(gid: &str, why: Option<TableError>) -> TableError {
    let why = why.map(|e| format!(": {e}")).unwrap_or_default();
    TableError::new(format!(
        "{MAY_HOLD_PREPARED} {gid} (nothing visible; copyman recover rolls it back){why}"
    ))
}

/// How [`rollback_pending`]'s words begin.
const MAY_HOLD_PREPARED: &str = "may hold the prepared transaction";

impl TableError {
    /// Whether its destination may hold the table's prepared transaction (its PREPARE sent
    /// and not answered, or its ROLLBACK PREPARED not): `copyman recover` finishes it before a
    /// resume can copy the table.
    pub fn holds_prepared(&self) -> bool {
        self.message.starts_with(MAY_HOLD_PREPARED)
    }
}

impl std::fmt::Display for TableError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.sqlstate {
            Some(code) => write!(f, "SQLSTATE {code}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// The server's error somewhere in `error`'s chain.
pub fn db_error<'a>(error: &'a (dyn StdError + 'static)) -> Option<&'a DbError> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(db) = e.downcast_ref::<DbError>() {
            return Some(db);
        }
        if let Some(db) = e
            .downcast_ref::<copyman_sync::Error>()
            .and_then(copyman_sync::Error::db_error)
        {
            return Some(db);
        }
        if let Some(db) = e
            .downcast_ref::<SessionError>()
            .and_then(SessionError::db_error)
        {
            return Some(db);
        }
        current = e.source();
    }
    None
}

/// A server's field of several lines on one: a CONTEXT's frames (`PL/pgSQL function f() line 1
/// at RAISE`, then `COPY t, line 3`) apart with ` / ` (they ran together, "at RAISE COPY t"), a
/// line that ends in `:` followed by its continuation (`COPY t, line 3: "3…"`). A deep one (a
/// recursion that ran out of stack: hundreds of frames, 70 KB) keeps its first and last
/// [`CONTEXT_ENDS`] lines and says how many went between (schema45 F5: printed whole, twice).
fn context_lines(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    // Cut only where more than one line would go.
    let cut = lines.len().saturating_sub(2 * CONTEXT_ENDS);
    let kept: Vec<String> = match cut {
        0 | 1 => lines.iter().map(|l| l.trim().to_owned()).collect(),
        _ => (lines[..CONTEXT_ENDS].iter().map(|l| l.trim().to_owned()))
            .chain(std::iter::once(format!("… {cut} more lines …")))
            .chain(
                lines[lines.len() - CONTEXT_ENDS..]
                    .iter()
                    .map(|l| l.trim().to_owned()),
            )
            .collect(),
    };
    let mut joined = String::new();
    for line in kept {
        if !joined.is_empty() {
            joined.push_str(if joined.ends_with(':') { " " } else { " / " });
        }
        joined.push_str(&line);
    }
    joined
}

/// How many of a deep CONTEXT's first and last lines are said ([`context_lines`]).
const CONTEXT_ENDS: usize = 4;

/// Describes `error` on one line: the server's SQLSTATE, message, detail, hint and context when
/// the server spoke, else the error chain.
pub fn describe(error: &(dyn StdError + 'static)) -> TableError {
    describe_with(error, None)
}

/// Whether `error`'s chain holds a socket timeout, or core's stall error: the stall timeout it
/// names, if it names one.
fn stall_in(error: &(dyn StdError + 'static)) -> Option<Option<Duration>> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(stalled) = e.downcast_ref::<copyman_sync::Stalled>() {
            return Some(Some(stalled.timeout));
        }
        if e.downcast_ref::<io::Error>()
            .is_some_and(copyman_core::stall::is_timeout)
        {
            return Some(None);
        }
        current = e.source();
    }
    None
}

/// What a hot standby's recovery conflict (40001 and kin: "canceling statement due to conflict
/// with recovery") means for a copy, and the ways out: the server says only what happened.
const RECOVERY_CONFLICT: &str = ": the source is a hot standby, and replaying its primary's \
    changes (a VACUUM's cleanup, a TRUNCATE or a lock there — copyman's own --truncate where a \
    destination is that primary or feeds it) cancels a read that holds them up longer than its \
    max_standby_streaming_delay; read from the primary, or raise max_standby_streaming_delay (or \
    set hot_standby_feedback = on, for cleanups) on the standby for the copy";

/// What "snapshot too old" (72000, a source's `old_snapshot_threshold`) means for a copy, and
/// the ways out: the server says two words, and a rerun meets it again.
const SNAPSHOT_TOO_OLD: &str = ": the source's old_snapshot_threshold is shorter than a read \
    of this copy takes while its table is written (the copy's snapshot grew older than that), \
    and a rerun meets it again while the source is written so: copy at a quieter time, from a \
    standby, or fewer tables per run, or raise old_snapshot_threshold on the source (-1 turns it \
    off; a restart)";

/// What "out of shared memory" (53200, its hint `max_locks_per_transaction`) means for a
/// copy: the server's lock table cannot hold the locks the statement takes — a `TRUNCATE` of a
/// table with thousands of partitions takes one per partition — and a rerun meets it again.
const LOCK_TABLE_FULL: &str = ": the server's lock table cannot hold the locks this takes \
    (one for each table locked or emptied — a TRUNCATE of a partitioned table one for each of \
    its partitions — held to the transaction's end), and a rerun meets it again: raise \
    max_locks_per_transaction there (it holds max_locks_per_transaction × (max_connections + \
    max_prepared_transactions) locks; a restart), or copy fewer tables or partitions at once";

/// What "maximum number of prepared transactions reached" (53200 too, its hint
/// `max_prepared_transactions`) means for an `--atomic` copy: other prepared transactions took
/// every slot since the plan looked, and a rerun meets it again until they end.
const PREPARED_SLOTS_FULL: &str = ": every prepared-transaction slot of that server is in use \
    (max_prepared_transactions), and a rerun meets it again: finish the prepared transactions \
    there first (copyman recover for copyman's, else COMMIT PREPARED or ROLLBACK PREPARED; \
    pg_prepared_xacts lists them), or raise max_prepared_transactions (a restart)";

/// What a write refused in a read-only transaction (25006) means: the statement's session is
/// read-only, on a standby or by a setting (the server names neither).
const READ_ONLY: &str = ": its session is read-only — a standby (in recovery), or \
    default_transaction_read_only set by its role or database (options='-c \
    default_transaction_read_only=off' in its CONN turns that off) — and a statement that writes \
    (a COPY into a table, a move's `COPY (DELETE … RETURNING …)`) needs a primary that takes \
    writes";

/// What a statement refused in a read-only transaction (25006) that is no COPY into a table
/// means: what the copy reads writes — a view or a default calling `nextval()`, a function
/// that writes, a move's `DELETE` — where the transaction reads only: copyman's own reading of
/// a table (one snapshot), or every transaction of a standby or of a session so set.
const WRITES_WHILE_READ: &str = ": what the copy reads writes (nextval(), or a function or \
    statement that writes, in a view, a default or a query), in a read-only transaction — \
    copyman reads a table in one, and a standby (in recovery) or default_transaction_read_only \
    (set by a role or database; options='-c default_transaction_read_only=off' in the CONN \
    turns that off) makes every transaction one; on a primary, a table's view that writes is \
    read with copyman copy --send 'COPY (SELECT … FROM the view) TO STDOUT', whose \
    transaction may write";

/// As [`describe`]; under a stall timeout (`stall`), a socket timeout or core's stall error is
/// said as a stall of that long, not as "Resource temporarily unavailable".
pub fn describe_with(error: &(dyn StdError + 'static), stall: Option<Duration>) -> TableError {
    // One attempt of several hosts' (the first answered with an error that ends the connect,
    // as libpq stops there): its error, said as any, with the host that said it.
    if let Some(copyman_sync::Error::Attempts(each)) = error.downcast_ref::<copyman_sync::Error>()
        && let [one] = each.as_slice()
    {
        let mut described = describe_with(&one.error, stall);
        described.message = format!(
            "{} (said by {}, the first of the CONN's hosts: as libpq, no other is tried once a \
             server answered the login with an error)",
            described.message, one.target
        );
        return described;
    }
    // Several connection attempts failed: each is said (the server's error only for its own
    // attempt), with the last one's SQLSTATE if its server spoke.
    if let Some(all @ copyman_sync::Error::Attempts(_)) =
        error.downcast_ref::<copyman_sync::Error>()
    {
        return TableError {
            connect: false,
            lasting: false,
            sqlstate: all.code().map(str::to_owned),
            message: one_line(&error_chain(error)),
        };
    }
    if let Some(db) = db_error(error) {
        let extras: Vec<String> = [
            ("detail", &db.detail),
            ("hint", &db.hint),
            ("context", &db.context),
        ]
        .iter()
        .filter_map(|(name, value)| {
            let value = value.as_ref()?;
            if *name != "context" {
                return Some(format!("{name}: {}", context_lines(value)));
            }
            // Copyman's own `DO` blocks (its checks, its locks before a copy) are no code of
            // the user's: their frame is left out ("PL/pgSQL function inline_code_block line
            // 1 at SQL statement", jobs66 F1), the statement it ran said as copyman's.
            let own = |line: &str| line.starts_with("PL/pgSQL function inline_code_block line ");
            if !value.lines().any(own) {
                return Some(format!("{name}: {}", context_lines(value)));
            }
            // (The statement said as copyman's is the one the frame after it ran: one a user's
            // trigger ran stands before that trigger's own frame.)
            let lines: Vec<&str> = value.lines().collect();
            let rest: Vec<String> = (lines.iter().enumerate())
                .filter(|(_, line)| !own(line))
                .map(|(i, line)| {
                    let framed = lines.get(i + 1).is_some_and(|next| own(next));
                    match line.strip_prefix("SQL statement ").filter(|_| framed) {
                        Some(statement) => format!("copyman's own statement {statement}"),
                        None => (*line).to_owned(),
                    }
                })
                .collect();
            (!rest.is_empty()).then(|| format!("{name}: {}", context_lines(&rest.join("\n"))))
        })
        .collect();
        let mut message = match extras.is_empty() {
            true => db.message.clone(),
            false => format!("{} ({})", db.message, extras.join("; ")),
        };
        if db.message.contains("due to conflict with recovery") {
            message.push_str(RECOVERY_CONFLICT);
        }
        if db.code == "72000" && db.message.contains("snapshot too old") {
            message.push_str(SNAPSHOT_TOO_OLD);
        }
        if db.code == "25006" && db.message.contains("in a read-only transaction") {
            // A COPY into a table is refused so on a read-only destination; anything else, in
            // what the copy reads (names52 F5: a view calling nextval() was said to be on a
            // standby, with a way out that changed nothing).
            match db.message.contains("cannot execute COPY FROM") {
                true => message.push_str(READ_ONLY),
                false => message.push_str(WRITES_WHILE_READ),
            }
        }
        // A pooler that refuses one of copyman's own startup settings refuses the next one
        // too, if told to let this one through (conn50 F2: seven rounds before the words
        // that say why).
        if let Some(name) = (db.message.strip_prefix("unsupported startup parameter: "))
            .filter(|name| db.code == "08P01" && copyman_core::session::sent_by_copyman(name))
        {
            message.push_str(&format!(
                ": {name} is not a setting you gave — copyman sends it, with {}, in every \
                 startup message so that text data means the same on every server: a connection \
                 pooler (PgBouncer) that refuses startup parameters is in front; connect to \
                 PostgreSQL itself (telling the pooler to ignore them lets the session in \
                 without them, which copyman refuses too)",
                copyman_core::session::PORTABILITY_SETTINGS
                    .iter()
                    .map(|(n, _)| *n)
                    .filter(|n| !n.eq_ignore_ascii_case(name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        // 53200 is the server's class for every resource it ran out of: said by which.
        let hint = db.hint.as_deref().unwrap_or_default();
        let out_of = match db.code.as_str() {
            "53200" if db.message.contains("prepared transactions") => Some(PREPARED_SLOTS_FULL),
            "53200" if hint.contains("max_locks_per_transaction") => Some(LOCK_TABLE_FULL),
            _ => None,
        };
        if let Some(why) = out_of {
            message.push_str(why);
        }
        return TableError {
            connect: false,
            lasting: out_of.is_some(),
            sqlstate: Some(db.code.clone()).filter(|c| !c.is_empty()),
            message: one_line(&message),
        };
    }
    // A row count the manager refused: said with its way out.
    if let Some(mismatch) = error.downcast_ref::<copyman_core::CountMismatch>() {
        // In the job's words (the library's are producer and receiver).
        return TableError::new(format!(
            "{} ({COUNT_WAY_OUT})",
            self::mismatch(mismatch.producer, mismatch.receiver)
        ));
    }
    // The interrupt's grace, not a stall timeout of the user's.
    if let Some(grace) = copyman_core::stall::cut_by_interrupt(error) {
        return TableError::new(format!(
            "moved no byte for {} s {CUT_BY_INTERRUPT} (its statement still running — a long \
             check, a checksum — or its backend frozen, or the network path to it lost)",
            grace.as_secs_f64()
        ));
    }
    match stall_in(error).and_then(|named| named.or(stall)) {
        Some(limit) => TableError::new(format!(
            "stalled for {} s: no byte moved (stall timeout)",
            limit.as_secs_f64()
        )),
        None => TableError::new(one_line(&error_chain(error))),
    }
}

/// What [`describe_with`] says of a wait the interrupt's grace ended: the job's stop, not the
/// destination's failure.
pub(crate) const CUT_BY_INTERRUPT: &str = "after the interrupt: given up";

/// An error and its sources on one line, `a: b: c`, each cause said once
/// ([`copyman_core::fault::Chain`]).
pub fn error_chain(error: &(dyn StdError + 'static)) -> String {
    copyman_core::fault::Chain(error).to_string()
}

/// Folds line breaks so that a message is one line.
pub fn one_line(text: &str) -> String {
    text.split(['\n', '\r'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// What ends a job before any table is copied.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JobError {
    /// A server could not be reached.
    #[error("cannot connect to {role} {server}: {error}")]
    Connect {
        /// `source` or `destination N`.
        role: String,
        /// Which, by its name.
        server: String,
        /// Why.
        error: TableError,
    },
    /// A destination stopped answering while the job was planned (its planning session
    /// stalled, or was lost), so the plan's checks there could not be made.
    #[error("{server}: {error}")]
    Destination {
        /// Which (`destination N NAME`).
        server: String,
        /// Why.
        error: TableError,
    },
    /// Under `keep_going`, no destination could be reached: each one's [`JobError::Connect`].
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Unreachable(Vec<Self>),
    /// The selection could not be read (a bad pattern).
    #[error("{0}")]
    Selection(String),
    /// A table the selection names does not exist on the source, or its schema does not (the
    /// server's 42P01 or 3F000, and where tables of that name are, if elsewhere).
    #[error("a table the selection names is not on the source: {0}")]
    NotOnSource(TableError),
    /// The selection matched no table.
    #[error("no table matches the selection ({0})")]
    Empty(String),
    /// The source cannot export a snapshot.
    #[error(
        "the source cannot export a snapshot ({0}); --no-snapshot copies each table under a \
         snapshot of its own (tables then come from different moments of the source)"
    )]
    Snapshot(TableError),
    /// The source refused a catalog query or the snapshot's transaction.
    #[error("source: {0}")]
    Source(TableError),
    /// A destination cannot take part as the options ask (two-phase commit without prepared
    /// transactions).
    #[error("{0}")]
    Refused(String),
    /// The state file cannot be read or written.
    #[error("state file {path}: {error}")]
    State {
        /// Where it is.
        path: PathBuf,
        /// Why.
        error: io::Error,
    },
    /// The two-phase commit's decision log cannot be opened.
    #[error("decision log {path}: {error}")]
    DecisionLog {
        /// Where it is.
        path: PathBuf,
        /// Why.
        error: io::Error,
    },
    /// Interrupted ([`Options::interrupt`](super::Options)) while it was planned: nothing was
    /// begun.
    #[error("{0}; stopped while the job was being planned: nothing was begun, nothing committed")]
    Interrupted(String),
}

/// What lets a row count that is not the source's through, said with every refusal of one: rows
/// that a trigger or a `WHERE` drops or routes on purpose (COPY applies no rule: schema45 F3).
/// The `copyman` command says the same of one table.
pub const COUNT_WAY_OUT: &str = "if a trigger or WHERE drops or routes rows on purpose, \
                             --allow-count-mismatch commits what each destination stored";

/// The error of a destination that stored another number of rows than the source sent.
pub(super) fn mismatch(sent: u64, stored: u64) -> String {
    format!("row count mismatch: the source sent {sent} rows, the destination stored {stored}")
}

/// A row count check's refusal: a count that is not the source's (`mismatch`) gets the way
/// out; a source that gave none does not, as `--allow-count-mismatch` does not pass it.
pub(super) fn refused(message: String, mismatch: bool) -> TableError {
    if mismatch {
        TableError::new(format!("{message} ({COUNT_WAY_OUT})"))
    } else {
        TableError::new(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A lock table too small for what a statement locks (53200: a TRUNCATE of a table with
    /// thousands of partitions) is said with what to raise, and as met again by a rerun, not
    /// "run again with --resume" for ever (scale38 F12).
    #[test]
    fn a_lock_table_too_small_is_said_with_what_to_raise_and_lasts() {
        let mut db = DbError::new("ERROR", "53200", "out of shared memory");
        db.hint = Some("You might need to increase max_locks_per_transaction.".to_owned());
        let said = describe(&copyman_sync::Error::Session(SessionError::Db(Box::new(
            db,
        ))));
        assert!(said.lasts(), "{said}");
        assert!(
            said.message
                .contains("raise max_locks_per_transaction there"),
            "{said}"
        );
    }

    /// The server's other resources it ran out of (53200 too) are not said as a full lock
    /// table: full prepared-transaction slots say what to finish (commit39 F2); plain "out of
    /// memory" adds nothing.
    #[test]
    fn fifty_three_two_hundred_is_said_by_what_ran_out() {
        let said = |message: &str, hint: &str| {
            let mut db = DbError::new("ERROR", "53200", message);
            db.hint = Some(hint.to_owned());
            describe(&copyman_sync::Error::Session(SessionError::Db(Box::new(
                db,
            ))))
        };
        let slots = said(
            "maximum number of prepared transactions reached",
            "Increase max_prepared_transactions (currently 20).",
        );
        assert!(slots.lasts(), "{slots}");
        assert!(
            slots
                .message
                .contains("finish the prepared transactions there first")
                && !slots.message.contains("max_locks_per_transaction"),
            "{slots}"
        );
        let memory = said("out of memory", "Failed on request of size 8192.");
        assert!(
            !memory.lasts() && !memory.message.contains("max_locks_per_transaction"),
            "{memory}"
        );
    }

    /// A destination that may hold a table's prepared transaction is known as such, whatever
    /// broke its session: what a job's advice (recover first) and its closed-session words
    /// (which a prepared transaction outlives) look at (resume38 F4).
    #[test]
    fn a_destination_that_may_hold_a_prepared_transaction_is_known() {
        let lost = TableError::new("connection closed by the server");
        let pending = rollback_pending("copyman:1-2-3-1:2", Some(lost));
        assert!(pending.holds_prepared(), "{pending}");
        assert!(
            pending
                .message
                .ends_with("rolls it back): connection closed by the server"),
            "{pending}"
        );
        assert!(rollback_pending("g", None).holds_prepared());
        assert!(!TableError::new("connection closed by the server").holds_prepared());
    }

    /// "snapshot too old" is said with what it means for a copy and the ways out (a rerun
    /// met it again).
    #[test]
    fn snapshot_too_old_and_a_read_only_write_are_said_with_their_ways_out() {
        let db = DbError::new("ERROR", "72000", "snapshot too old");
        let error = copyman_sync::Error::Session(SessionError::Db(Box::new(db)));
        let said = describe(&error);
        assert_eq!(said.sqlstate.as_deref(), Some("72000"));
        assert!(
            said.message.contains("old_snapshot_threshold"),
            "{}",
            said.message
        );
        let read_only = |message: &str| {
            let db = DbError::new("ERROR", "25006", message);
            describe(&copyman_sync::Error::Session(SessionError::Db(Box::new(
                db,
            ))))
        };
        let said = read_only("cannot execute COPY FROM in a read-only transaction");
        assert!(
            said.message.contains("a standby (in recovery)")
                && said
                    .message
                    .contains("default_transaction_read_only=off' in its CONN")
                && said.message.contains("a COPY into a table"),
            "{}",
            said.message
        );
        // What the copy reads writes (names52 F5): said so, as no copy's setting; a rerun
        // meets it again.
        let said = read_only("cannot execute nextval() in a read-only transaction");
        assert!(
            said.message.contains("what the copy reads writes")
                && said.message.contains("a standby (in recovery)")
                && said.message.contains("copyman copy --send")
                && said.lasts(),
            "{}",
            said.message
        );
    }

    /// A pooler's refusal of a startup setting copyman sends is said as copyman's, with the
    /// way (conn50 F2); one of the user's own is the pooler's words alone.
    #[test]
    fn a_poolers_refusal_of_copymans_startup_settings_says_whose_they_are() {
        let refused = |name: &str| {
            let message = format!("unsupported startup parameter: {name}");
            let db = DbError::new("FATAL", "08P01", &message);
            describe(&copyman_sync::Error::Session(SessionError::Db(Box::new(
                db,
            ))))
        };
        let said = refused("lc_monetary");
        assert_eq!(said.sqlstate.as_deref(), Some("08P01"));
        assert!(
            said.message
                .contains("lc_monetary is not a setting you gave")
                && said.message.contains("DateStyle, IntervalStyle")
                && !said.message.contains("lc_monetary, array_nulls")
                && said.message.contains("connect to PostgreSQL itself"),
            "{}",
            said.message
        );
        let said = refused("search_path");
        assert_eq!(said.message, "unsupported startup parameter: search_path");
    }

    /// A CONTEXT's frames apart (they ran together: "at RAISE COPY one, line 3"), a line
    /// ending in `:` with its continuation.
    #[test]
    fn context_frames_are_apart_on_one_line() {
        assert_eq!(
            context_lines("PL/pgSQL function chk() line 1 at RAISE\nCOPY one, line 3"),
            "PL/pgSQL function chk() line 1 at RAISE / COPY one, line 3"
        );
        assert_eq!(
            context_lines("COPY t, line 3:\n\"3\t-1\""),
            "COPY t, line 3: \"3\t-1\""
        );
        // Nine lines are said whole; a deep one, its ends.
        let deep: Vec<String> = (1..=9).map(|i| format!("f{i}")).collect();
        assert_eq!(context_lines(&deep.join("\n")), deep.join(" / "));
        let deep: Vec<String> = (1..=500).map(|i| format!("f{i}")).collect();
        assert_eq!(
            context_lines(&deep.join("\n")),
            "f1 / f2 / f3 / f4 / … 492 more lines … / f497 / f498 / f499 / f500"
        );
    }

    #[test]
    fn a_socket_timeout_is_said_as_a_stall_of_the_stall_timeout() {
        let timeout = copyman_sync::Error::Io(io::ErrorKind::WouldBlock.into());
        assert_eq!(
            describe_with(&timeout, Some(Duration::from_millis(1500))).message,
            "stalled for 1.5 s: no byte moved (stall timeout)"
        );
        // Without a stall timeout it is what it is.
        assert!(!describe(&timeout).message.contains("stalled"));
        // Core's stall error names its timeout itself.
        let stalled =
            copyman_sync::Stalled::new(copyman_sync::EndpointId::Producer, Duration::from_secs(2));
        assert_eq!(
            describe(&stalled).message,
            "stalled for 2 s: no byte moved (stall timeout)"
        );
        // The interrupt's grace is no stall timeout of the user's: said as what it is.
        let start = std::time::Instant::now();
        let grace = copyman_core::stall::StallTimer::after_interrupt(
            copyman_sync::EndpointId::Producer,
            start,
        )
        .handle_timeout(start + Duration::from_secs(3))
        .unwrap_err();
        let said = describe_with(&grace, Some(Duration::from_secs(60))).message;
        assert!(
            said.starts_with("moved no byte for 2 s after the interrupt"),
            "{said}"
        );
        assert!(grace.to_string().contains("after the copy was interrupted"));
    }
}
