//! The job: plan a selection of tables, then copy them `jobs` at a time under one snapshot.
//!
//! [`plan`] connects to every server once: it lists the selection on the source
//! ([`crate::select`]), reads every table's catalog on the source and on each destination
//! ([`crate::plan`]), reads the state file (to resume), and opens the coordinating source session,
//! which exports its snapshot. [`run`] then starts the workers: each owns one source connection
//! and one connection per destination, takes the largest table left (whose tables referenced by a
//! foreign key, [`TablePlan::after`], have finished), imports the snapshot, copies
//! the table to every destination that still needs it (one `COPY … TO STDOUT` fanned out), checks
//! the row counts and ends each destination's transaction through core's commit machine
//! ([`crate::commit::run`]); a destination's `COMMIT` that succeeded is recorded in the
//! state file before the worker takes its next table.
//!
//! Tables emptied first and linked by foreign keys ([`Plan::groups`], formed by
//! [`crate::plan::fk_groups`]) are taken up by one worker as one unit: one transaction per
//! destination empties them all with one `TRUNCATE`, copies each (parents first) and commits
//! once; they succeed, fail and are recorded together.
//!
//! Failures: a table that fails on a destination is rolled back there. Under the default policy
//! ([`Options::keep_going`] off) it is rolled back on every destination and the job stops: the
//! tables in flight on other workers are aborted and rolled back, tables not started are not
//! started, tables committed before stay committed (and recorded). With `keep_going`, the table
//! commits where it completed and every other table goes on.
//!
//! Interrupts ([`Options::interrupt`], a signal in the `copyman` command) stop the job the same
//! way under any policy: the tables being copied roll back everywhere ([`Status::Interrupted`]),
//! those committed stay. A caller sees each worker's backends ([`Event::Backend`], until
//! [`Event::Ending`]) to show lock waits and to cancel a copy blocked on a server.
//! [`Options::stall_timeout`] is core's stall rule during the COPY and the sessions' timeouts
//! from a table's `BEGIN` to the end of its COPY (the wait for a COPY's completion excepted: only
//! the server's answer says whether it went through); [`Options::allow_count_mismatch`]
//! commits a destination whose count differs, with a warning.
//!
//! A statement given up before its end (a stall: a catalog lookup, a `TRUNCATE` or a COPY
//! waiting for a lock another session holds) is cancelled on its server, never left waiting
//! there, and its session is replaced by a new one for the next tables; the error says what the
//! backend waited for (a lock, held by which backend). While planning, that fails the table on
//! that destination only ([`DestPlan::Refused`]): the job stops before copying anything under
//! the default policy, and copies the rest under `keep_going`.

use std::collections::{HashSet, VecDeque};
use std::error::Error as StdError;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use crate::commit::{self, Commit, Outcome, Participant, Policy};
use crate::identity::Identity;
use copyman_core::session::{DbError, SessionError};
use copyman_sync::{
    Connection, CopyManager, Fault, Producer, Receiver, ReceiverOutcome, StatementProducer,
    StatementReceiver,
};

use crate::plan::{choose_format, lookup, major, needs_select, resolve_columns};
use crate::resume::{self, Resumed};
pub use crate::resume::{Backend, ResumeWait};
use crate::select::{self, Selection};
use crate::sequences::{self, Carrier, Carry};
use crate::sql::{Format, Ident, Relation, TableCopy, TableName, literal, own_rows};
use crate::state::{self, Recorded, StateFile};

/// Opens a connection to a server (called once per worker, and again after a connection broke).
pub type Connect = Arc<dyn Fn() -> Result<Connection, copyman_sync::Error> + Send + Sync>;

/// A server of the job.
#[derive(Clone)]
pub struct Server {
    /// How it is named in reports and in the state file (never with a password).
    pub name: String,
    /// How to connect to it.
    pub connect: Connect,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The default number of tables copied at once.
pub const DEFAULT_JOBS: usize = 4;

/// How a job runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Tables copied at once (at least 1).
    pub jobs: usize,
    /// Empty each destination table in the transaction of its copy (which then uses `FREEZE`).
    pub truncate: bool,
    /// The format, if forced; else binary where every column's type matches, text elsewhere.
    pub format: Option<Format>,
    /// Commit a table on the destinations where it completed, and go on with the others.
    pub keep_going: bool,
    /// Copy every table under the coordinating session's exported snapshot (else each table
    /// under a snapshot of its own).
    pub snapshot: bool,
    /// Compare an order-independent checksum of every table on the source and each destination
    /// (after its commit there). A table is recorded done on a destination only once its
    /// checksum matched; one that differs is recorded `mismatch` (not done: a resume empties it
    /// there and copies it again). Under [`Options::resume`] the tables an earlier run did are
    /// compared too (the source in the job's snapshot): one that differs now is recorded
    /// `mismatch` as well, and the next resume copies it again.
    pub verify: bool,
    /// Cap on the bytes per second read from the source, across all workers.
    pub max_rate: Option<u64>,
    /// The state file.
    pub state: PathBuf,
    /// Skip what the state file records as done (unless the destination holds none of a table
    /// recorded done with rows: another server with its identity, a clone); redo what it does
    /// not, asking each destination whether an earlier attempt committed (the transaction ids
    /// recorded before each COMMIT): done if it did, copied again without emptying the table if
    /// not (an append stays an append), emptied first only where that cannot be told.
    pub resume: bool,
    /// Copy an ordinary table larger than this many bytes as several ctid ranges side by side
    /// (at most `jobs` ranges, all in the job's snapshot; without it, in one snapshot of the
    /// table's own, exported by the session that counts the table).
    pub split_larger_than: Option<u64>,
    /// Two-phase commit per table under a durable decision in this log (`copyman recover`
    /// finishes what a crash leaves prepared); `None` for one COMMIT after another.
    pub two_phase: Option<PathBuf>,
    /// An endpoint of a table's copy that moves no byte for this long has stalled: the table
    /// fails there (core's stall rule during the COPY; the sessions' socket timeouts from the
    /// table's `BEGIN` to the end of its COPY, so a wait for a lock counts too). Never during a
    /// `COMMIT` (only its answer says whether it committed) nor a `--verify` checksum.
    pub stall_timeout: Option<Duration>,
    /// Accept a destination whose COPY stored another number of rows than the source sent
    /// (triggers that route or drop rows): it commits, with a [`DestResult::warning`].
    pub allow_count_mismatch: bool,
    /// Stops the job from outside (a signal): see [`Interrupt`].
    pub interrupt: Interrupt,
    /// Other state files a run without `--resume` also reads (the `copyman` command's default
    /// directory: earlier jobs of other selections, another spelling of this one): a table one
    /// of them records begun on these destinations is refused as in [`Options::state`].
    pub other_states: Vec<PathBuf>,
}

/// Stops a running job from outside, as a first SIGINT does: every table being copied is
/// aborted and rolled back on every destination ([`Status::Interrupted`]), tables already
/// committed stay committed and recorded in the state file (a resume goes on from there), tables
/// not started are not started. A table whose commit had begun finishes it (a `COMMIT` stopped
/// half-way would leave the destinations split).
///
/// A copy blocked on a server (a lock wait, a source that sends nothing) notices only when its
/// statement returns: the caller cancels the backends it heard of in [`Event::Backend`] (until
/// [`Event::Ending`] for that worker), as the `copyman` command does.
#[derive(Debug, Clone, Default)]
pub struct Interrupt(Arc<Mutex<Option<String>>>);

impl Interrupt {
    /// A handle that has not fired.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stops the job; `reason` (e.g. "interrupted by SIGINT") is in the report of every table cut
    /// short. A second call changes nothing.
    pub fn interrupt(&self, reason: impl Into<String>) {
        let mut slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            *slot = Some(reason.into());
        }
    }

    /// Why the job was interrupted, if it was.
    pub fn reason(&self) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether the job was interrupted.
    pub fn is_interrupted(&self) -> bool {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }
}

impl Options {
    /// The defaults, with the state file at `state`.
    pub fn new(state: impl Into<PathBuf>) -> Self {
        Self {
            jobs: DEFAULT_JOBS,
            truncate: false,
            format: None,
            keep_going: false,
            snapshot: true,
            verify: false,
            max_rate: None,
            state: state.into(),
            resume: false,
            split_larger_than: None,
            two_phase: None,
            stall_timeout: None,
            allow_count_mismatch: false,
            interrupt: Interrupt::new(),
            other_states: Vec::new(),
        }
    }
}

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
}

impl TableError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            sqlstate: None,
            message: message.into(),
            lasting: false,
        }
    }

    /// An error the plan found in a destination's catalog: [`TableError::lasting`].
    fn lasting(message: impl Into<String>) -> Self {
        Self {
            lasting: true,
            ..Self::new(message)
        }
    }

    /// Whether a rerun (`--resume`) meets this error again until what it names is changed: one
    /// known to ([`TableError::lasting`]), or a server error of a class no retry passes
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

/// As [`describe`]; under a stall timeout (`stall`), a socket timeout or core's stall error is
/// said as a stall of that long, not as "Resource temporarily unavailable".
pub fn describe_with(error: &(dyn StdError + 'static), stall: Option<Duration>) -> TableError {
    // Several connection attempts failed: each is said (the server's error only for its own
    // attempt), with the last one's SQLSTATE if its server spoke.
    if let Some(all @ copyman_sync::Error::Attempts(_)) =
        error.downcast_ref::<copyman_sync::Error>()
    {
        return TableError {
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
        .filter_map(|(name, value)| value.as_ref().map(|v| format!("{name}: {v}")))
        .collect();
        let message = match extras.is_empty() {
            true => db.message.clone(),
            false => format!("{} ({})", db.message, extras.join("; ")),
        };
        return TableError {
            lasting: false,
            sqlstate: Some(db.code.clone()),
            message: one_line(&message),
        };
    }
    // A row count the manager refused: said with its way out.
    if let Some(mismatch) = error.downcast_ref::<copyman_core::CountMismatch>() {
        return TableError::new(format!("{mismatch} ({COUNT_WAY_OUT})"));
    }
    match stall_in(error).and_then(|named| named.or(stall)) {
        Some(limit) => TableError::new(format!(
            "stalled for {} s: no byte moved (stall timeout)",
            limit.as_secs_f64()
        )),
        None => TableError::new(one_line(&error_chain(error))),
    }
}

/// An error and its sources on one line, `a: b: c`.
pub fn error_chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
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
    #[error("cannot connect to {server}: {error}")]
    Connect {
        /// Which.
        server: String,
        /// Why.
        error: TableError,
    },
    /// The selection could not be read (a bad pattern, a named table that does not exist).
    #[error("{0}")]
    Selection(String),
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
}

/// What a destination does with a table.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DestPlan {
    /// Copy it, truncating the table first (in the same transaction) when `truncate`.
    Copy {
        /// Emptied first: `--truncate`, or a resumed copy whose earlier attempt may have left
        /// rows there that cannot be told from the destination's own (see [`crate::state`]).
        truncate: bool,
        /// `COPY … FREEZE` (truncated in the same transaction, an ordinary table).
        freeze: bool,
        /// The table's `pg_class.relkind` there (how it is emptied: [`TablePlan::emptying`]).
        kind: String,
        /// Emptied first, a `DELETE` of its rows would touch nothing else there
        /// ([`sql::delete_is_quiet_query`](crate::sql::delete_is_quiet_query)).
        quiet_delete: bool,
        /// The copied columns' sequences, advanced there to the source's before its COMMIT.
        sequences: Vec<Carry>,
    },
    /// The state file records it done, with these rows: skipped.
    Done(u64),
    /// It cannot be copied there (missing, different columns): the error.
    Refused(TableError),
}

/// One table of the job.
#[derive(Debug, Clone)]
pub struct TablePlan {
    /// The table (the same name on every server).
    pub table: TableName,
    /// `pg_class.relkind` on the source.
    pub kind: String,
    /// Its size on the source, in bytes (the order of the job: largest first).
    pub size: u64,
    /// About how many rows it holds.
    pub estimate: Option<u64>,
    /// The columns copied, by name.
    pub columns: Vec<Ident>,
    /// The format.
    pub format: Format,
    /// Why that format.
    pub format_reason: String,
    /// The source's statement.
    pub send: String,
    /// The destinations' statement (without `FREEZE`).
    pub receive: String,
    /// A table split into ctid ranges: the source's statement for each range (empty: not split).
    pub ranges: Vec<String>,
    /// Each destination's part.
    pub destinations: Vec<DestPlan>,
    /// The tables of the job it references by a foreign key (indexes into [`Plan::tables`]):
    /// it starts only once they finished, so that its rows find theirs committed. Edges that
    /// would close a cycle are left out (those tables keep the size order).
    pub after: Vec<usize>,
    /// Every table that references it by a foreign key on some server (of the job or not),
    /// schema-qualified and quoted: a `TRUNCATE` of it alone fails there (0A000).
    pub referenced_by: Vec<String>,
}

impl TablePlan {
    /// Whether another table references it by a foreign key (on some server): it is then
    /// emptied with a `DELETE` ([`sql::emptying`]).
    pub fn referenced(&self) -> bool {
        let me = self.table.to_string();
        self.referenced_by.iter().any(|by| *by != me)
    }

    /// The statement that empties it on a destination where it is a relation of `kind`, and
    /// where a `DELETE` of its rows would touch nothing else (`quiet_delete`): a `DELETE` where
    /// it is referenced and that is so, else a `TRUNCATE` (refused where it is referenced).
    pub fn emptying(&self, kind: &str, quiet_delete: bool) -> String {
        crate::sql::emptying(&self.table, kind, self.referenced() && quiet_delete)
    }

    /// Whether it is emptied first on some destination (`--truncate`, or a resume taking it
    /// up again).
    pub fn emptied(&self) -> bool {
        self.destinations
            .iter()
            .any(|d| matches!(d, DestPlan::Copy { truncate: true, .. }))
    }

    /// The statement for a destination, with `FREEZE` when it truncated the table.
    pub fn receive_for(&self, freeze: bool) -> String {
        if freeze {
            // The options end the statement: `… (FORMAT x)` becomes `… (FORMAT x, FREEZE)`.
            let mut sql = self.receive.clone();
            if sql.ends_with(')') {
                sql.pop();
                sql.push_str(", FREEZE)");
            }
            sql
        } else {
            self.receive.clone()
        }
    }
}

/// A planned job, ready to [`run`].
pub struct Plan {
    /// The tables, largest first.
    pub tables: Vec<TablePlan>,
    /// The FK-linked groups of tables emptied first, each copied as one unit
    /// ([`crate::plan::Group`]).
    pub groups: Vec<crate::plan::Group>,
    /// What the plan did with the selection that the user should hear of: each partition left
    /// out because its partitioned ancestor is selected too (its rows are copied with it), and
    /// each partition excluded whose rows its selected ancestor copies all the same.
    pub notes: Vec<String>,
    /// Each destination as the state file names it ([`identity`], or
    /// [`state::unidentified_key`] for one that cannot say).
    pub keys: Vec<String>,
    /// The exported snapshot, if the job uses one.
    pub snapshot: Option<String>,
    /// What the state file said (empty unless resuming).
    pub recorded: Recorded,
    /// The selection, as the state file records it ([`Selection::key`]).
    pub selection: String,
    /// Tables begun and not recorded done by an earlier run whose commit the destination
    /// confirmed (`txid_status()`): `(table, destination, rows)`, recorded done by [`run`].
    confirmed: Vec<(String, usize, u64)>,
    /// Under two-phase commit, where each destination's transactions are (by destination), for
    /// the `party` lines of every decision ([`commit::DecisionLog::record_parties`]).
    parties: Vec<commit::Holder>,
    coordinator: Option<Connection>,
}

impl Plan {
    /// The group ([`Plan::groups`]) table `i` is copied with, if any.
    pub fn group_of(&self, i: usize) -> Option<&crate::plan::Group> {
        self.groups.iter().find(|g| g.members.contains(&i))
    }

    /// The statement that empties the members of `group` that destination `d` empties first:
    /// one `TRUNCATE` of them all ([`crate::plan::Group::truncate_together`]), else each
    /// member's own ([`TablePlan::emptying`]), children first; `None` when it empties none.
    pub fn group_emptying(&self, group: &crate::plan::Group, d: usize) -> Option<String> {
        let emptied: Vec<(&TablePlan, &str, bool)> = group
            .members
            .iter()
            .map(|&m| &self.tables[m])
            .filter_map(|t| match &t.destinations[d] {
                DestPlan::Copy {
                    truncate: true,
                    kind,
                    quiet_delete,
                    ..
                } => Some((t, kind.as_str(), *quiet_delete)),
                _ => None,
            })
            .collect();
        if emptied.is_empty() {
            return None;
        }
        Some(if truncates_together(&self.tables, group, d) {
            let list: Vec<(&TableName, &str)> = emptied
                .iter()
                .map(|&(t, kind, _)| (&t.table, kind))
                .collect();
            crate::sql::emptying_together(&list)
        } else {
            let each: Vec<String> = emptied
                .iter()
                .rev()
                .map(|&(t, kind, quiet)| t.emptying(kind, quiet))
                .collect();
            each.join("; ")
        })
    }
}

/// Whether destination `d` empties `group`'s members with one `TRUNCATE`: the group is
/// truncated together ([`crate::plan::Group::truncate_together`]) and every member that
/// references a member emptied there is emptied there too. A member copied there without
/// emptying (not begun there on a resume) or done there keeps its rows, and PostgreSQL refuses
/// a `TRUNCATE` of a table it references without it (0A000): there the members are emptied one
/// by one, as a table alone would be.
fn truncates_together(tables: &[TablePlan], group: &crate::plan::Group, d: usize) -> bool {
    let emptied_here =
        |t: &TablePlan| matches!(t.destinations[d], DestPlan::Copy { truncate: true, .. });
    group.truncate_together
        && group.members.iter().all(|&m| {
            let t = &tables[m];
            !emptied_here(t)
                || group.members.iter().all(|&k| {
                    let by = &tables[k];
                    emptied_here(by) || !t.referenced_by.contains(&by.table.to_string())
                })
        })
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan")
            .field("tables", &self.tables)
            .field("snapshot", &self.snapshot)
            .finish_non_exhaustive()
    }
}

fn connect(server: &Server) -> Result<Connection, JobError> {
    (server.connect)().map_err(|e| JobError::Connect {
        server: server.name.clone(),
        error: describe(&e),
    })
}

/// Gives up the session in `slot` if its statement did not end (a stall, a broken socket):
/// asks a new session what its backend was waiting for (a lock: which, held by whom), cancels
/// its statement, so that nothing of it goes on waiting or running on the server, and leaves
/// the new session in `slot` (or nothing, if none could be opened: the next use connects
/// again). Returns what to tell the user: what it waited for and that it was cancelled.
/// A session that is ready is left alone (`None`).
fn give_up(slot: &mut Option<Connection>, server: &Server) -> Option<String> {
    if slot.as_ref().is_none_or(Connection::is_ready) {
        return None;
    }
    let old = slot.take().expect("checked just above");
    let mut fresh = (server.connect)().ok();
    let pid = old.session().backend_key().map(|(pid, _)| pid);
    let waited = pid
        .zip(fresh.as_mut())
        .and_then(|(pid, conn)| lock_wait(conn, pid));
    let cancelled = match old.cancel() {
        Ok(()) => CANCELLED.to_owned(),
        Err(e) => format!("cancelling its statement failed: {}", describe(&e)),
    };
    // Its socket closes with it: a backend that ends its wait finds no one and rolls back.
    drop(old);
    *slot = fresh;
    Some(match waited {
        Some(waited) => format!("{waited}; {cancelled}"),
        None => cancelled,
    })
}

/// What [`give_up`] says of a statement it cancelled.
const CANCELLED: &str = "its statement was cancelled";

/// Whether backend `pid` waits for a lock, said as "backend N was waiting for a lock (kind)
/// held by backend M", asked on `conn` (another session on its server).
fn lock_wait(conn: &mut Connection, pid: i32) -> Option<String> {
    let rows = conn
        .query(&format!(
            "SELECT a.wait_event, {} FROM pg_catalog.pg_stat_activity a \
             WHERE a.pid = {pid} AND a.wait_event_type = 'Lock'",
            commit::lock_holders_sql("a.pid")
        ))
        .ok()?;
    let row = rows.first()?;
    let kind = row.first().cloned().flatten().unwrap_or_default();
    let holders = row.get(1).cloned().flatten().unwrap_or_default();
    // A prepared transaction (pg_blocking_pids says 0) by its name.
    let held = match commit::held_by(&holders) {
        held if held.is_empty() => held,
        held => format!(" {held}"),
    };
    Some(format!(
        "backend {pid} was waiting for a lock ({kind}){held}"
    ))
}

/// Which server and database `conn` is on, as the state file names a destination:
/// `system SYSID database OID` (`pg_control_system()`'s identifier, unique per cluster, and the
/// database's oid), the same however the destination was spelled (a host name or an address,
/// a socket directory with or without a trailing slash, a user or database from the
/// environment). `None` when the server does not say (`pg_control_system()` revoked).
pub fn identity(conn: &mut Connection) -> Option<String> {
    Identity::of(conn, None).ok()?.state_key()
}

/// The records of the state file at `path` for a resume of a job to `destinations` (named in
/// the file by `keys`).
///
/// # Errors
/// No state file there (nothing says which tables the destinations may already hold: copying
/// them all again would duplicate the rows of those that committed), one that cannot be read
/// or is of an older format, or a destination that cannot say which server it is while the
/// file records destinations this run does not have (it may be one of them, spelled otherwise).
fn resumed(
    path: &Path,
    selection: &Selection,
    keys: &[String],
    destinations: &[Server],
) -> Result<Recorded, JobError> {
    let state_error = |error| JobError::State {
        path: path.to_owned(),
        error,
    };
    if !path.exists() {
        return Err(JobError::Refused(format!(
            "--resume: there is no state file at {} to resume from (a resume copies again only \
             what that file does not record as done; without it, tables an earlier run committed \
             would be copied twice): give the earlier run's --state, or run the job without \
             --resume (with --truncate to empty the tables first)",
            path.display()
        )));
    }
    let recorded = state::read(path).map_err(state_error)?;
    // Another selection may cover the same rows otherwise (a partitioned table, then its
    // partitions): what it records done would not match, and they would be copied twice.
    // (The same selection spelled otherwise is the same: `--table BULK` is `--table bulk`.)
    if let Some(recorded_for) = recorded
        .selection
        .as_deref()
        .filter(|s| !selection.is_recorded_as(s))
    {
        let selection = selection.key();
        return Err(JobError::Refused(format!(
            "--resume: the state file {} was written for another selection ({recorded_for}), \
             not {selection}: a resume of another selection could copy rows twice (a \
             partitioned table and its partitions, selected one way and then the other); \
             resume with the same tables and patterns, or give this job another --state",
            path.display()
        )));
    }
    let known: HashSet<&str> = keys.iter().map(String::as_str).collect();
    let others: Vec<&str> = recorded
        .destinations()
        .into_iter()
        .filter(|d| !known.contains(d))
        .collect();
    for (key, server) in keys.iter().zip(destinations) {
        if !others.is_empty() && state::is_unidentified(key) {
            return Err(JobError::Refused(format!(
                "--resume: destination {} cannot say which server it is (pg_control_system() \
                 is not readable there), and the state file {} records destinations this run \
                 does not have ({}): it may be one of them, spelled otherwise; resume with the \
                 destinations spelled as before, or run the job without --resume",
                server.name,
                path.display(),
                others.join(", ")
            )));
        }
    }
    // A destination recorded by its connection string (it could not say which server it was)
    // that this run does not name so may be one of this run's, identified now: its records would
    // not match, and a resume would copy its tables a second time.
    if let Some(recorded_as) = others.iter().find(|d| state::is_unidentified(d)) {
        return Err(JobError::Refused(format!(
            "--resume: the state file {} records a destination by its connection string \
             ({recorded_as}: it could not say which server it was), and no destination of this \
             run is named so: it may be one of them, which a resume would copy into a second \
             time; resume with the destinations as before, or run the job without --resume \
             (with --truncate to empty the tables first)",
            path.display()
        )));
    }
    Ok(recorded)
}

/// A job that is not a resume starts a new state file. Where the one at `path` records an
/// earlier run that began one of these `tables` on one of these destinations (`keys`), a copy
/// that does not empty it first would add its rows a second time: refused, unless `truncate`.
///
/// # Errors
/// [`JobError::Refused`], naming the tables and what to do instead.
fn fresh(path: &Path, truncate: bool, tables: &[String], keys: &[String]) -> Result<(), JobError> {
    if truncate {
        return Ok(());
    }
    // An unreadable or older file: nothing to go by (it is replaced, as before).
    let Ok(recorded) = state::read(path) else {
        return Ok(());
    };
    let mut again: Vec<&str> = tables
        .iter()
        .filter(|t| keys.iter().any(|k| recorded.begun(t, k)))
        .map(String::as_str)
        .collect();
    if again.is_empty() {
        return Ok(());
    }
    let more = again.len().saturating_sub(3);
    again.truncate(3);
    Err(JobError::Refused(format!(
        "the state file {} records an earlier job into these destinations, which \
         began {}{}: copied again without emptying them, their rows would be there twice; \
         --resume copies only what that run did not finish, --truncate empties each table and \
         copies it again, and another --state (or removing that file) adds the rows once more; \
         a clone of a destination (a base backup, a copied data directory, a restore) shares \
         its origin's identity, so the file names it too: --resume is wrong for a clone, give \
         it another --state",
        path.display(),
        again.join(", "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        }
    )))
}

/// Plans a job: the selection listed on the source, every table's catalog read on every server,
/// the state file read (when resuming), and the snapshot exported. Nothing is written anywhere.
/// [`plan_with`] tells what planning waits for as it happens.
///
/// # Errors
/// See [`JobError`]: a server that cannot be reached, a bad or empty selection, a source that
/// cannot export its snapshot, an unreadable state file.
pub fn plan(
    source: &Server,
    destinations: &[Server],
    selection: &Selection,
    options: &Options,
) -> Result<Plan, JobError> {
    plan_with(source, destinations, selection, options, &|_| {})
}

/// [`plan`], telling `events` at once of what planning waits for: a resume that waits for an
/// earlier run's transaction still in progress on a destination ([`Event::ResumeWait`], before
/// the wait).
///
/// # Errors
/// As [`plan`].
pub fn plan_with(
    source: &Server,
    destinations: &[Server],
    selection: &Selection,
    options: &Options,
    events: &dyn Fn(Event),
) -> Result<Plan, JobError> {
    let mut src = connect(source)?;
    // A destination's planning session: `None` once it was given up and could not be replaced
    // (each later table tries to connect again). Under `keep_going` a destination that cannot
    // be reached is left out of the job (`down`: each of its tables refused with why), as a
    // one-table run drops it; else the job stops before anything began.
    let mut dests = Vec::with_capacity(destinations.len());
    let mut down: Vec<Option<TableError>> = vec![None; destinations.len()];
    let mut left_out = Vec::new();
    for (i, server) in destinations.iter().enumerate() {
        match connect(server) {
            Ok(conn) => dests.push(Some(conn)),
            Err(JobError::Connect { server, error }) if options.keep_going => {
                left_out.push(format!(
                    "destination {} {server}: cannot connect: {error}; left out (--keep-going)",
                    i + 1
                ));
                down[i] = Some(error.prefixed("cannot connect: "));
                dests.push(None);
            }
            Err(e) => return Err(e),
        }
    }
    // None left: a connection failure, as without `keep_going`.
    if !destinations.is_empty() && down.iter().all(Option::is_some) {
        let error = down.swap_remove(0).expect("checked: every one is down");
        return Err(JobError::Connect {
            server: destinations[0].name.clone(),
            error: TableError {
                message: error
                    .message
                    .trim_start_matches("cannot connect: ")
                    .to_owned(),
                ..error
            },
        });
    }
    let query =
        select::selection_query(selection).map_err(|e| JobError::Selection(e.to_string()))?;
    let rows = src.query(&query).map_err(|e| {
        let error = describe_with(&e, options.stall_timeout);
        // A named table that does not exist: the regclass cast refuses it (42P01).
        if error.sqlstate.as_deref() == Some("42P01") {
            JobError::Selection(error.message)
        } else {
            JobError::Source(error)
        }
    })?;
    let (covered, selected): (Vec<_>, Vec<_>) = select::read_selection(&rows)
        .map_err(JobError::Selection)?
        .into_iter()
        .partition(|s| s.within.is_some());
    // A partition selected with its partitioned ancestor: its rows come with the ancestor's.
    let mut notes: Vec<String> = covered
        .iter()
        .filter_map(|s| {
            let within = s.within.as_ref()?;
            Some(if s.excluded {
                format!(
                    "{}: matches --exclude-table, but its rows are copied with its partitioned \
                     table {within}, which is copied whole (leave {within} out to leave them out)",
                    s.table
                )
            } else {
                format!(
                    "{}: copied with its partitioned table {within}, not by itself",
                    s.table
                )
            })
        })
        .collect();
    // The destinations left out are said first.
    notes.splice(0..0, left_out);
    if selected.is_empty() {
        return Err(JobError::Empty(selection.to_string()));
    }
    // A table the source's role cannot read is refused here, by name, rather than left out (the
    // destinations would lack it without a word) or found only after other tables committed.
    let unreadable: Vec<String> = selected
        .iter()
        .filter(|s| !s.readable)
        .map(|s| s.table.to_string())
        .collect();
    if !unreadable.is_empty() {
        return Err(JobError::Source(TableError {
            lasting: false,
            sqlstate: None,
            message: format!(
                "permission denied: the source's role may not SELECT {} {} (it needs SELECT on \
                 the table, or on each of its columns, and USAGE on its schema); grant it, or \
                 leave {} out with --exclude-table",
                if unreadable.len() == 1 {
                    "table"
                } else {
                    "tables"
                },
                unreadable.join(", "),
                if unreadable.len() == 1 { "it" } else { "them" },
            ),
        }));
    }
    // Each destination as the state file names it: by what it is, not by how it was spelled.
    let mut keys: Vec<String> = dests
        .iter_mut()
        .zip(destinations)
        .map(|(conn, server)| {
            conn.as_mut()
                .and_then(identity)
                .unwrap_or_else(|| state::unidentified_key(&server.name))
        })
        .collect();
    // Clones of one server (a copied data directory, pg_basebackup) running side by side are
    // two destinations with one system identifier: named alike, one's records would stand for
    // the other's. They are named by their connection strings instead.
    let shared: Vec<bool> = keys
        .iter()
        .map(|k| keys.iter().filter(|other| *other == k).count() > 1)
        .collect();
    for ((key, server), shared) in keys.iter_mut().zip(destinations).zip(shared) {
        if shared {
            *key = state::unidentified_key(&server.name);
        }
    }
    let recorded = if options.resume {
        resumed(&options.state, selection, &keys, destinations)?
    } else {
        let tables: Vec<String> = selected.iter().map(|s| s.table.to_string()).collect();
        for path in std::iter::once(&options.state).chain(&options.other_states) {
            fresh(path, options.truncate, &tables, &keys)?;
        }
        Recorded::default()
    };
    if recorded.verify && !options.verify {
        return Err(JobError::Refused(
            "the run this resumes was given --verify: resume with --verify too (a table it \
             finds committed and not recorded done would else be recorded done unchecked)"
                .to_owned(),
        ));
    }
    if recorded.truncate && !options.truncate {
        notes.push(
            "the run this resumes was given --truncate: each table is emptied before it is \
             copied, as it would have been"
                .to_owned(),
        );
    }
    // Each destination's party in the decisions (one without a connection here is recorded
    // without an identity: recovery then asks for it by name).
    let mut parties: Vec<commit::Holder> = destinations
        .iter()
        .enumerate()
        .map(|(i, server)| commit::Holder {
            gid: String::new(),
            server: String::new(),
            database: String::new(),
            display: format!("destination {} {}", i + 1, server.name),
        })
        .collect();
    if options.two_phase.is_some() {
        // Under --keep-going a destination that did not connect has no connection here: pair
        // each connection with its own server (its party, named `destination N NAME` as a
        // one-table run names it), so the refusal names the right one.
        let connected = dests.iter_mut().zip(&mut parties);
        for (conn, party) in connected.filter_map(|(c, p)| c.as_mut().map(|c| (c, p))) {
            let name = party.display.clone();
            *party = commit::Holder::of(conn, std::mem::take(&mut party.display));
            let max = conn
                .query("SELECT pg_catalog.current_setting('max_prepared_transactions')")
                .map_err(|e| {
                    let why = describe_with(&e, options.stall_timeout);
                    JobError::Refused(format!("{name}: {why}"))
                })?
                .first()
                .and_then(|r| r.first().cloned().flatten())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
            if max == 0 {
                return Err(JobError::Refused(format!(
                    "two-phase commit: {name} does not allow prepared transactions \
                     (max_prepared_transactions = 0): set max_prepared_transactions above 0 in \
                     its postgresql.conf and restart it"
                )));
            }
        }
    }
    let block_size: u64 = src
        .query("SELECT pg_catalog.current_setting('block_size')")
        .ok()
        .and_then(|rows| rows.first().and_then(|r| r.first().cloned().flatten()))
        .and_then(|b| b.parse().ok())
        .unwrap_or(8192);
    let source_version = src.session().server_version_num();
    let same_major = source_version.map(major).is_some_and(|s| {
        dests.iter().flatten().all(|d| {
            d.session()
                .server_version_num()
                .is_none_or(|v| major(v) == s)
        })
    });

    // Without the job's snapshot, a split table's ranges read one of its own, which the session
    // that counts it exports: a source that cannot export one has its tables copied whole.
    let no_export = if options.snapshot || options.split_larger_than.is_none() {
        None
    } else {
        let probe = src
            .execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .and_then(|_| src.query("SELECT pg_catalog.pg_export_snapshot()"));
        let _ = src.execute("ROLLBACK");
        probe
            .err()
            .map(|e| describe_with(&e, options.stall_timeout).to_string())
    };

    let mut tables = Vec::new();
    let mut confirmed = Vec::new();
    for sel in selected {
        let key = sel.table.to_string();
        let source_rel = match lookup(&mut src, &sel.table) {
            Ok(Some(rel)) => rel,
            Ok(None) => {
                return Err(JobError::Selection(format!("source table {key} not found")));
            }
            Err(crate::plan::LookupError::Server(e)) => {
                return Err(JobError::Source(
                    describe_with(&e, options.stall_timeout).prefixed(&format!("table {key}: ")),
                ));
            }
            Err(crate::plan::LookupError::Catalog(m)) => {
                return Err(JobError::Source(TableError::new(format!(
                    "table {key}: {m}"
                ))));
            }
        };
        let columns: Vec<Ident> = source_rel
            .columns
            .iter()
            .filter(|c| !c.generated)
            .map(|c| c.name.clone())
            .collect();
        let mut plans = Vec::new();
        let mut rels: Vec<(usize, Relation)> = Vec::new();
        for (i, (slot, server)) in dests.iter_mut().zip(destinations).enumerate() {
            let done = recorded.done(&key, &keys[i]);
            if let Some(rows @ 0) = done {
                plans.push(DestPlan::Done(rows));
                continue;
            }
            // Left out (--keep-going): recorded done as recorded, else refused with why.
            if let Some(error) = &down[i] {
                plans.push(done.map_or_else(|| DestPlan::Refused(error.clone()), DestPlan::Done));
                continue;
            }
            let conn = match ensure(slot, server) {
                Ok(conn) => conn,
                // Recorded done: as recorded (it cannot be checked).
                Err(_) if done.is_some() => {
                    plans.push(DestPlan::Done(done.unwrap_or_default()));
                    continue;
                }
                Err(e) => {
                    plans.push(DestPlan::Refused(e));
                    continue;
                }
            };
            // What the state file says of it here, checked against the destination.
            let waiting = |wait: ResumeWait| events(Event::ResumeWait(wait));
            let here = resume::Here {
                d: i,
                key: &keys[i],
                name: &server.name,
                waiting: &waiting,
            };
            let here = resume::resumed_here(conn, &recorded, &sel.table, &here);
            let empty_first = match here.map_err(JobError::Refused)? {
                Resumed::Done { rows, note } => {
                    notes.extend(note);
                    if done.is_none() {
                        confirmed.push((key.clone(), i, rows));
                    }
                    plans.push(DestPlan::Done(rows));
                    continue;
                }
                Resumed::Copy { empty, note } => {
                    notes.extend(note);
                    empty
                }
            };
            let rel = match lookup(conn, &sel.table) {
                Ok(Some(rel)) => rel,
                Ok(None) => {
                    plans.push(DestPlan::Refused(TableError::lasting("not found")));
                    continue;
                }
                Err(crate::plan::LookupError::Server(e)) => {
                    let mut error = describe_with(&e, options.stall_timeout);
                    // A lookup given up (a stall: it waits for a lock the catalog query takes
                    // to read the table's size) still runs on the server: it is cancelled, and
                    // the next tables are looked up on a new session. (A server's error, such
                    // as lock_timeout's 55P03, leaves the session usable.)
                    if let Some(note) = give_up(slot, server) {
                        error.message = format!("reading its catalog: {}; {note}", error.message);
                    }
                    plans.push(DestPlan::Refused(error));
                    continue;
                }
                Err(crate::plan::LookupError::Catalog(m)) => {
                    plans.push(DestPlan::Refused(TableError::lasting(m)));
                    continue;
                }
            };
            let label = format!("destination {}", i + 1);
            if let Err(why) = resolve_columns(&[], Some(&source_rel), &[(label.as_str(), &rel)]) {
                // A job copies whole tables: --columns is for one table copied alone.
                plans.push(DestPlan::Refused(TableError::lasting(format!(
                    "{why}; copy it alone (copyman table {} --columns …) and leave it out of \
                     the job (--exclude-table)",
                    sel.table
                ))));
                continue;
            }
            if options.format == Some(Format::Binary)
                && let Err(why) =
                    crate::plan::binary_misreads(&columns, &source_rel, &[(label.as_str(), &rel)])
            {
                plans.push(DestPlan::Refused(TableError::lasting(why)));
                continue;
            }
            let truncate = options.truncate || recorded.truncate || empty_first;
            // Asked only of a table to be emptied; an unanswered question is a no.
            let quiet_delete = truncate
                && conn
                    .query(&crate::sql::delete_is_quiet_query(&sel.table))
                    .ok()
                    .and_then(|rows| rows.first().and_then(|r| r.first().cloned().flatten()))
                    .as_deref()
                    == Some("t");
            plans.push(DestPlan::Copy {
                truncate,
                // Not where it is emptied by a DELETE (referenced): set again below.
                freeze: truncate && rel.kind == "r",
                kind: rel.kind.clone(),
                quiet_delete,
                sequences: sequences::carried(&columns, &source_rel, &rel),
            });
            let uncarried = sequences::uncarried(&columns, &source_rel, &rel);
            notes.extend(sequences::uncarried_warning(
                &key,
                &format!("destination {}", i + 1),
                &uncarried,
            ));
            rels.push((i, rel));
        }
        let labels: Vec<String> = rels
            .iter()
            .map(|(i, _)| format!("destination {}", i + 1))
            .collect();
        let view: Vec<(&str, &Relation)> = labels
            .iter()
            .zip(&rels)
            .map(|(l, (_, r))| (l.as_str(), r))
            .collect();
        let choice = choose_format(
            options.format,
            Some(&columns),
            Some(&source_rel),
            &view,
            true,
            same_major,
        )
        .map_err(JobError::Refused)?;
        if let Some(warning) = &choice.warning {
            notes.push(format!("{}: {warning}", sel.table));
        }
        let copy = TableCopy {
            table: sel.table.clone(),
            target: None,
            columns: columns.clone(),
            condition: None,
            header: false,
        };
        let select = needs_select(&source_rel, Some(&columns));
        // A table emptied first (`--truncate`, or taken up again by a resume) is copied whole:
        // its TRUNCATE must commit with its rows, and ranges in transactions of their own could
        // not wait for its lock (nor, after a DELETE, for the unique keys it frees).
        let emptied = plans
            .iter()
            .any(|p| matches!(p, DestPlan::Copy { truncate: true, .. }));
        let ranges = match options.split_larger_than {
            Some(limit) if limit > 0 && sel.kind == "r" && sel.size > limit && !emptied => {
                match &no_export {
                    None => split(
                        &copy,
                        choice.format,
                        sel.size,
                        limit,
                        block_size,
                        options.jobs,
                    ),
                    Some(why) => {
                        notes.push(format!(
                            "{}: copied whole, not split: without the job's snapshot its ranges \
                             would read one of the table's own, and the source cannot export \
                             one ({why})",
                            sel.table
                        ));
                        Vec::new()
                    }
                }
            }
            _ => Vec::new(),
        };
        tables.push(TablePlan {
            ranges,
            send: copy.copy_out(choice.format, select, &source_rel.kind),
            receive: copy.copy_in(choice.format),
            table: sel.table,
            kind: sel.kind,
            size: sel.size,
            estimate: source_rel.estimate,
            columns,
            format: choice.format,
            format_reason: choice.reason,
            destinations: plans,
            after: Vec::new(),
            referenced_by: Vec::new(),
        });
    }
    // Foreign keys, as every server has them (the destinations enforce theirs; the source's
    // say how the data hangs together): parents first.
    let mut edges = foreign_keys(&mut src);
    let mut ancestors = partition_ancestors(&mut src);
    for conn in dests.iter_mut().flatten() {
        edges.extend(foreign_keys(conn));
        ancestors.extend(partition_ancestors(conn));
    }
    let edges = onto_job_tables(&tables, &ancestors, edges);
    order_by_foreign_keys(&mut tables, &edges);
    // FK-linked tables emptied first are copied as one unit (see `crate::plan::Group`).
    let groups = {
        let names: Vec<String> = tables.iter().map(|t| t.table.to_string()).collect();
        let emptied: Vec<bool> = tables.iter().map(TablePlan::emptied).collect();
        let after: Vec<Vec<usize>> = tables.iter().map(|t| t.after.clone()).collect();
        crate::plan::fk_groups(&names, &emptied, &after, &edges)
    };
    for g in &groups {
        let names: Vec<String> = g
            .members
            .iter()
            .map(|&m| tables[m].table.to_string())
            .collect();
        notes.push(format!(
            "{}: linked by foreign keys and emptied first, so copied as one unit in this order \
             (on each destination one transaction {}, then each table's COPY, then one \
             COMMIT; not split, one session per destination)",
            names.join(", "),
            if g.truncate_together {
                // As the first destination has them (the plan shows each destination's).
                let list: Vec<String> = g
                    .members
                    .iter()
                    .map(|&m| {
                        let t = &tables[m];
                        let kind = t
                            .destinations
                            .iter()
                            .find_map(|d| match d {
                                DestPlan::Copy { kind, .. } => Some(kind.as_str()),
                                _ => None,
                            })
                            .unwrap_or(t.kind.as_str());
                        own_rows(&t.table, kind)
                    })
                    .collect();
                let partly = (0..tables[g.members[0]].destinations.len())
                    .any(|d| !truncates_together(&tables, g, d));
                format!(
                    "empties them with one TRUNCATE {}{}",
                    list.join(", "),
                    if partly {
                        " (one by one, children first, where a member that references another \
                         emptied there is not emptied there itself)"
                    } else {
                        ""
                    }
                )
            } else {
                "empties them one by one, children first (a table outside the group references \
                 one of them: TRUNCATE is refused there)"
                    .to_owned()
            }
        ));
    }
    // Truncated with every table that references it, a table takes FREEZE like any other;
    // that is decided on each destination ([`truncates_together`]).
    let together: Vec<Vec<bool>> = (0..tables.len())
        .map(|i| {
            (0..tables[i].destinations.len())
                .map(|d| {
                    groups
                        .iter()
                        .find(|g| g.members.contains(&i))
                        .is_some_and(|g| truncates_together(&tables, g, d))
                })
                .collect()
        })
        .collect();
    for (i, t) in tables.iter_mut().enumerate() {
        let referenced = t.referenced();
        for (d, dest) in t.destinations.iter_mut().enumerate() {
            if let DestPlan::Copy {
                freeze,
                quiet_delete,
                ..
            } = dest
            {
                *freeze &= !(referenced && !together[i][d] && *quiet_delete);
            }
        }
    }
    drop(dests);

    // The snapshot: exported by a session that stays open, in its transaction, until the job
    // ends (an exported snapshot lives as long as the transaction that exported it).
    let (coordinator, snapshot) = if options.snapshot {
        src.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .map_err(|e| JobError::Source(describe(&e)))?;
        let rows = src
            .query("SELECT pg_catalog.pg_export_snapshot()")
            .map_err(|e| JobError::Snapshot(describe(&e)))?;
        let id = rows
            .first()
            .and_then(|r| r.first().cloned().flatten())
            .ok_or_else(|| JobError::Snapshot(TableError::new("no snapshot id returned")))?;
        (Some(src), Some(id))
    } else {
        (None, None)
    };
    Ok(Plan {
        tables,
        groups,
        notes,
        keys,
        snapshot,
        recorded,
        selection: selection.key(),
        confirmed,
        parties,
        coordinator,
    })
}

/// Every foreign key on `conn`'s database as `(referencing, referenced)` table names, between
/// the tables themselves and between the roots of their partition trees (a partition selected by
/// itself, or its partitioned table); a self-reference left out. Nothing when the catalog cannot
/// be read (the tables then keep the size order).
fn foreign_keys(conn: &mut Connection) -> Vec<(String, String)> {
    const SQL: &str = "SELECT DISTINCT cn.nspname::text, c.relname::text, pn.nspname::text, \
          p.relname::text \
        FROM pg_catalog.pg_constraint k \
        CROSS JOIN LATERAL (VALUES (k.conrelid, k.confrelid), \
            (coalesce(pg_catalog.pg_partition_root(k.conrelid), k.conrelid), \
             coalesce(pg_catalog.pg_partition_root(k.confrelid), k.confrelid))) e(child, parent) \
        JOIN pg_catalog.pg_class c ON c.oid = e.child \
        JOIN pg_catalog.pg_namespace cn ON cn.oid = c.relnamespace \
        JOIN pg_catalog.pg_class p ON p.oid = e.parent \
        JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace \
        WHERE k.contype = 'f' AND e.child <> e.parent";
    let Ok(rows) = conn.query(SQL) else {
        return Vec::new();
    };
    rows.into_iter()
        .filter_map(|row| {
            let mut row = row.into_iter();
            let mut name = || {
                let schema = row.next().flatten()?;
                let name = row.next().flatten()?;
                Some(TableName::from_parts(Some(schema), name))
            };
            let child = name()?;
            let parent = name()?;
            Some((child.to_string(), parent.to_string()))
        })
        .collect()
}

/// Each partition on `conn`'s database with its ancestors, nearest first (schema-qualified and
/// quoted). Nothing when the catalog cannot be read.
fn partition_ancestors(conn: &mut Connection) -> Vec<(String, Vec<String>)> {
    const SQL: &str = "SELECT cn.nspname::text, c.relname::text, an.nspname::text, a.relname::text \
        FROM pg_catalog.pg_class c \
        JOIN pg_catalog.pg_namespace cn ON cn.oid = c.relnamespace \
        CROSS JOIN LATERAL pg_catalog.pg_partition_ancestors(c.oid) WITH ORDINALITY u(relid, n) \
        JOIN pg_catalog.pg_class a ON a.oid = u.relid \
        JOIN pg_catalog.pg_namespace an ON an.oid = a.relnamespace \
        WHERE c.relispartition AND u.relid <> c.oid ORDER BY c.oid, u.n";
    let Ok(rows) = conn.query(SQL) else {
        return Vec::new();
    };
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for row in rows {
        let mut row = row.into_iter();
        let mut name = || {
            let schema = row.next().flatten()?;
            let name = row.next().flatten()?;
            Some(TableName::from_parts(Some(schema), name).to_string())
        };
        let (Some(part), Some(ancestor)) = (name(), name()) else {
            continue;
        };
        match out.last_mut() {
            Some((p, list)) if *p == part => list.push(ancestor),
            _ => out.push((part, vec![ancestor])),
        }
    }
    out
}

/// The foreign keys `edges` between the job's tables as the job copies them: a partition that is
/// not a table of the job but whose ancestor is (its rows are copied, and emptied, with that
/// ancestor's) stands for its nearest such ancestor. A partitioned table's foreign key has a
/// row of its own for each partition (`c1 → p` besides `c → p`): without this, such a
/// partition would count as a table outside the job that references `p`. Self-references and
/// repeats are left out.
fn onto_job_tables(
    tables: &[TablePlan],
    ancestors: &[(String, Vec<String>)],
    edges: Vec<(String, String)>,
) -> Vec<(String, String)> {
    let job: HashSet<String> = tables.iter().map(|t| t.table.to_string()).collect();
    let map = |name: String| -> String {
        if job.contains(&name) {
            return name;
        }
        ancestors
            .iter()
            .filter(|(p, _)| *p == name)
            .find_map(|(_, list)| list.iter().find(|a| job.contains(*a)).cloned())
            .unwrap_or(name)
    };
    let mut out: Vec<(String, String)> = Vec::new();
    for (c, p) in edges {
        let edge = (map(c), map(p));
        if edge.0 != edge.1 && !out.contains(&edge) {
            out.push(edge);
        }
    }
    out
}

/// Fills each table's [`TablePlan::after`] (the job's tables it references, except those on a
/// cycle with it: tables on a cycle keep the size order) and [`TablePlan::referenced_by`].
fn order_by_foreign_keys(tables: &mut [TablePlan], edges: &[(String, String)]) {
    let index: std::collections::HashMap<String, usize> = tables
        .iter()
        .enumerate()
        .map(|(i, t)| (t.table.to_string(), i))
        .collect();
    let mut after: Vec<Vec<usize>> = vec![Vec::new(); tables.len()];
    // Whether `from` waits, through the edges kept so far, for `to`.
    fn waits(after: &[Vec<usize>], from: usize, to: usize) -> bool {
        let mut seen = vec![false; after.len()];
        let mut stack = vec![from];
        while let Some(i) = stack.pop() {
            if i == to {
                return true;
            }
            if !std::mem::replace(&mut seen[i], true) {
                stack.extend(&after[i]);
            }
        }
        false
    }
    let mut pairs: Vec<(usize, usize)> = edges
        .iter()
        .filter_map(|(child, parent)| Some((*index.get(child)?, *index.get(parent)?)))
        .filter(|(c, p)| c != p)
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    let mut all: Vec<Vec<usize>> = vec![Vec::new(); tables.len()];
    for &(child, parent) in &pairs {
        all[child].push(parent);
    }
    // Tables on one cycle keep the size order among themselves: no edge of the cycle is kept.
    for (child, parent) in pairs {
        if !waits(&all, parent, child) {
            after[child].push(parent);
        }
    }
    for (t, after) in tables.iter_mut().zip(after) {
        t.after = after;
    }
    for t in tables.iter_mut() {
        let me = t.table.to_string();
        let mut by: Vec<&String> = edges
            .iter()
            .filter(|(_, parent)| *parent == me)
            .map(|(child, _)| child)
            .collect();
        by.sort_unstable();
        by.dedup();
        t.referenced_by = by.into_iter().map(|name| name.to_owned()).collect();
    }
}

/// The source's statements for a table of `size` bytes split into ranges of about `limit`
/// bytes (at least 2, at most `jobs`), by heap page: `ctid >= '(lo,0)' AND ctid < '(hi,0)'`, the
/// first range open below and the last open above (pages added since the size was read).
pub fn split(
    copy: &TableCopy,
    format: Format,
    size: u64,
    limit: u64,
    block_size: u64,
    jobs: usize,
) -> Vec<String> {
    let n = size.div_ceil(limit.max(1)).clamp(2, (jobs as u64).max(2));
    let pages = (size / block_size.max(1)).max(1);
    let per = pages.div_ceil(n);
    (0..n)
        .map(|i| {
            let (lo, hi) = (i * per, (i + 1) * per);
            let condition = if i == 0 {
                format!("ctid < '({hi},0)'::pg_catalog.tid")
            } else if i == n - 1 {
                format!("ctid >= '({lo},0)'::pg_catalog.tid")
            } else {
                format!("ctid >= '({lo},0)'::pg_catalog.tid AND ctid < '({hi},0)'::pg_catalog.tid")
            };
            TableCopy {
                condition: Some(condition),
                ..copy.clone()
            }
            .copy_out(format, true, "r")
        })
        .collect()
}

/// How a table ended on a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Status {
    /// Committed in this run (and recorded).
    Committed,
    /// Recorded done by an earlier run: skipped.
    AlreadyDone,
    /// It failed there: nothing of it is committed.
    Failed,
    /// It was fine there, but the table failed elsewhere (default policy) or the job stopped:
    /// rolled back, nothing committed.
    RolledBack,
    /// The job stopped before this table started.
    NotStarted,
    /// The connection broke during its `COMMIT`: whether it committed is unknown (a resume asks
    /// the destination: done if it did, copied again if not).
    InDoubt,
    /// The job was interrupted ([`Interrupt`]) while it copied this table: rolled back, nothing
    /// of it committed (a resume copies it again).
    Interrupted,
}

impl Status {
    /// A short name: `committed`, `already done`, `failed`, `rolled back`, `not started`,
    /// `in doubt`, `interrupted`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Committed => "committed",
            Self::AlreadyDone => "already done",
            Self::Failed => "failed",
            Self::RolledBack => "rolled back",
            Self::NotStarted => "not started",
            Self::InDoubt => "in doubt",
            Self::Interrupted => "interrupted",
        }
    }

    /// Whether the table is on the destination (now or from an earlier run).
    pub fn is_done(self) -> bool {
        matches!(self, Self::Committed | Self::AlreadyDone)
    }
}

/// A table on one destination.
#[derive(Debug, Clone, PartialEq)]
pub struct DestResult {
    /// How it ended.
    pub status: Status,
    /// Rows committed (or recorded by an earlier run).
    pub rows: Option<u64>,
    /// Bytes read from the source for it.
    pub bytes: u64,
    /// How long its copy took.
    pub seconds: f64,
    /// What went wrong.
    pub error: Option<TableError>,
    /// `--verify`: whether its checksum equals the source's (`None`: not checked).
    pub verified: Option<bool>,
    /// What the caller should hear about a table that did commit (a row count that differs
    /// from the source's, under [`Options::allow_count_mismatch`]).
    pub warning: Option<String>,
}

impl DestResult {
    fn new(status: Status) -> Self {
        Self {
            status,
            rows: None,
            bytes: 0,
            seconds: 0.0,
            error: None,
            verified: None,
            warning: None,
        }
    }

    /// Marks it ended with `status` and `error`, unless it already has an error (the first
    /// stands, with its status).
    fn fail(&mut self, status: Status, error: TableError) {
        if self.error.is_none() {
            self.status = status;
            self.error = Some(error);
        }
    }
}

/// How a table went.
#[derive(Debug, Clone, PartialEq)]
pub struct TableReport {
    /// The table.
    pub table: TableName,
    /// The format it was copied in.
    pub format: Format,
    /// Rows the source sent (its `COPY n`).
    pub source_rows: Option<u64>,
    /// Each destination, in order.
    pub destinations: Vec<DestResult>,
}

/// How the job went.
#[derive(Debug, Clone)]
pub struct JobReport {
    /// Every table of the plan, in the plan's order.
    pub tables: Vec<TableReport>,
    /// The snapshot the tables were read in.
    pub snapshot: Option<String>,
    /// Why the job stopped early (default policy), if it did.
    pub stopped: Option<String>,
    /// The job stopped because the tables left wait on each other by their foreign keys (a
    /// group emptied first and a table copied without emptying, [`JobReport::stopped`] names
    /// them): a resume as it was would stop the same way; one that empties every table
    /// ([`Options::truncate`]) copies them as one group.
    pub stopped_waiting: bool,
    /// Why the job was interrupted ([`Options::interrupt`]), if it was.
    pub interrupted: Option<String>,
    /// How long it took.
    pub seconds: f64,
}

impl JobReport {
    /// Whether every table reached every destination (and, with verify, matched the source).
    pub fn succeeded(&self) -> bool {
        self.tables.iter().all(|t| {
            t.destinations
                .iter()
                .all(|d| d.status.is_done() && d.verified != Some(false))
        })
    }

    /// Whether this run committed anything.
    pub fn committed_any(&self) -> bool {
        self.tables.iter().any(|t| {
            t.destinations
                .iter()
                .any(|d| matches!(d.status, Status::Committed | Status::InDoubt))
        })
    }
}

/// What a running job tells its caller.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// The job starts: how many tables, and their total size.
    Started {
        /// Tables the workers take up: those to copy (not already done everywhere) and, under
        /// [`Options::verify`], those done earlier, only to compare (each is a
        /// [`Event::TableStarted`] and a [`Event::TableFinished`] as well).
        tables: usize,
        /// The total size on the source of the tables to copy.
        bytes: u64,
    },
    /// A worker took a table.
    TableStarted {
        /// The worker (0-based).
        worker: usize,
        /// The table.
        table: TableName,
        /// Its size on the source.
        size: u64,
    },
    /// A worker's table moved on (totals for the table so far).
    Progress {
        /// The worker.
        worker: usize,
        /// Rows sent so far.
        rows: u64,
        /// Bytes sent so far.
        bytes: u64,
    },
    /// A session is about to run a table's statements (its `BEGIN`, `TRUNCATE`, `COPY`): its
    /// backend, for a caller that shows lock waits or cancels the copy on a signal. It stands
    /// for that worker until [`Event::Ending`] or [`Event::TableFinished`].
    Backend {
        /// The worker.
        worker: usize,
        /// The table.
        table: TableName,
        /// Which server.
        side: Side,
        /// The backend's process id (`pg_backend_pid()`).
        pid: i32,
        /// The CancelRequest message that cancels what the backend runs (sent to the server
        /// on a new connection, as libpq's `PQcancel` does).
        cancel_request: Option<Vec<u8>>,
    },
    /// A worker's copy of a table is over and its transactions end now (`COMMIT` or
    /// `ROLLBACK`): its backends must no longer be cancelled.
    Ending {
        /// The worker.
        worker: usize,
    },
    /// A statement that ends a table's transaction on a destination (`COMMIT`, `PREPARE
    /// TRANSACTION`, `COMMIT PREPARED`, `ROLLBACK`, …) is sent (`answered: None`), or its server
    /// answered it (`Some(true)`: it took effect; `Some(false)`: an error, or the connection
    /// broke and the final report says how it ended). Such a statement is never cancelled nor
    /// timed out (only the server's answer says whether it committed): a caller that sees one
    /// wait can only say so, and one that must exit at once can say what may have committed.
    CommitStep {
        /// The worker.
        worker: usize,
        /// The table.
        table: TableName,
        /// The destination (0-based).
        destination: usize,
        /// Its backend's process id, if the server gave it.
        pid: Option<i32>,
        /// The statement.
        action: commit::Action,
        /// Whether it took effect, once answered.
        answered: Option<bool>,
    },
    /// While planning ([`plan_with`]), before a resume waits for a transaction an earlier run
    /// announced on a destination and that is still in progress there: what it waits for, and
    /// how long at most (then it goes on if the transaction ended, or refuses the resume).
    ResumeWait(ResumeWait),
    /// A worker finished a table (whatever the outcome).
    TableFinished {
        /// The worker.
        worker: usize,
        /// How it went.
        report: TableReport,
    },
}

/// Which server of the job a session is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Side {
    /// The source.
    Source,
    /// A destination, by position (0-based).
    Destination(usize),
}

/// The shared read-rate cap.
struct Rate {
    per_second: u64,
    start: Instant,
    used: Mutex<u64>,
}

/// How long the rate cap sleeps at once: an interrupt is noticed within this.
const RATE_SLICE: Duration = Duration::from_millis(100);

impl Rate {
    /// Counts `bytes` read, then sleeps until the cap allows them; `waiting` is called at each
    /// slice of the sleep (the worker is not stuck: it waits on purpose), which ends early when
    /// `stopped` says so (the job is interrupted or stopped, a sibling range failed).
    fn take(&self, bytes: u64, stopped: &dyn Fn() -> bool, waiting: &dyn Fn()) {
        let due = {
            let mut used = self.used.lock().unwrap_or_else(PoisonError::into_inner);
            *used += bytes;
            Duration::from_secs_f64(*used as f64 / self.per_second as f64)
        };
        loop {
            let elapsed = self.start.elapsed();
            if due <= elapsed || stopped() {
                return;
            }
            thread::sleep((due - elapsed).min(RATE_SLICE));
            waiting();
        }
    }
}

struct Shared<'a> {
    plan: &'a Plan,
    source: &'a Server,
    destinations: &'a [Server],
    options: &'a Options,
    state: &'a StateFile,
    events: &'a (dyn Fn(Event) + Sync),
    queue: Mutex<VecDeque<usize>>,
    /// Which tables this run copies (a table done earlier everywhere is not waited for).
    pending: Vec<bool>,
    /// Told (under `queue`'s lock) whenever a table finishes: a table that waits for the tables
    /// it references may start.
    turn: Condvar,
    /// How many tables (a group counts once) workers took from the queue and have not finished.
    running: std::sync::atomic::AtomicUsize,
    stop: AtomicBool,
    stopped: Mutex<Option<String>>,
    /// [`JobReport::stopped_waiting`].
    stopped_waiting: AtomicBool,
    reports: Mutex<Vec<Option<TableReport>>>,
    rate: Option<Rate>,
    two_phase: Option<TwoPhase>,
    /// Each table's group ([`Plan::groups`], by position), if it is in one.
    group_of: Vec<Option<usize>>,
}

/// Two-phase commit per table: the decision log, the job's run id, and a count of the tables'
/// commits (each table commits under run id `RUN-N`).
struct TwoPhase {
    log: commit::DecisionLog,
    run: String,
    next: std::sync::atomic::AtomicUsize,
}

/// A destination's connection in a table's commit: each statement is told to the caller
/// ([`Event::CommitStep`]) before it is sent and once it is answered.
struct Announced<'c, 's, 'a> {
    conn: &'c mut Connection,
    shared: &'s Shared<'a>,
    worker: usize,
    /// The tables the transaction holds (a group's: each is told of every step).
    tables: &'s [TableName],
    destination: usize,
}

impl Participant for Announced<'_, '_, '_> {
    type Error = copyman_sync::Error;

    fn run(&mut self, action: &commit::Action) -> Result<(), commit::Failure<Self::Error>> {
        let pid = self.conn.session().backend_key().map(|(pid, _)| pid);
        let (worker, destination) = (self.worker, self.destination);
        let step = |table: &TableName, answered| Event::CommitStep {
            worker,
            table: table.clone(),
            destination,
            pid,
            action: action.clone(),
            answered,
        };
        for table in self.tables {
            (self.shared.events)(step(table, None));
        }
        let result = self.conn.run(action);
        for table in self.tables {
            (self.shared.events)(step(table, Some(result.is_ok())));
        }
        result
    }
}

/// Ends the transactions of one table (or FK group: `tables`) on the `live` destinations
/// through core's commit machine ([`commit_table`]), each telling the job's events of its steps.
fn commit_live(
    shared: &Shared<'_>,
    worker: usize,
    dests: &mut [Option<Connection>],
    live: &[usize],
    tables: &[TableName],
    options: commit::Options,
    flags: &[bool],
) -> commit::Report<copyman_sync::Error> {
    let mut announced: Vec<Announced<'_, '_, '_>> = dests
        .iter_mut()
        .enumerate()
        .filter(|(d, _)| live.contains(d))
        .map(|(destination, c)| Announced {
            conn: c.as_mut().expect("begun above"),
            shared,
            worker,
            tables,
            destination,
        })
        .collect();
    let destination_of: Vec<usize> = announced.iter().map(|a| a.destination).collect();
    let mut parties: Vec<&mut dyn Participant<Error = copyman_sync::Error>> = announced
        .iter_mut()
        .map(|a| a as &mut dyn Participant<Error = _>)
        .collect();
    commit_table(shared, options, flags, &mut parties, &destination_of)
}

/// Ends the transactions of `parties` (party `k` on destination `destination_of[k]`) through
/// core's commit machine: one COMMIT after another, or two-phase under the decision log, whose
/// decision names every party's server (`party` lines) and which records the run finished when
/// nothing of it is left prepared, as a one-table run's does.
fn commit_table(
    shared: &Shared<'_>,
    mut options: commit::Options,
    flags: &[bool],
    parties: &mut [&mut dyn Participant<Error = copyman_sync::Error>],
    destination_of: &[usize],
) -> commit::Report<copyman_sync::Error> {
    let Some(two) = &shared.two_phase else {
        return commit::run(
            Commit::new(options, flags),
            parties,
            None,
            |_| Ok(()),
            |_| {},
        );
    };
    let run = format!("{}-{}", two.run, two.next.fetch_add(1, Ordering::SeqCst));
    let holders: Vec<Option<&commit::Holder>> = destination_of
        .iter()
        .map(|&d| shared.plan.parties.get(d))
        .collect();
    // The lock says "in progress" to a concurrent `copyman recover`, and the log names every
    // server the run may prepare on; without them, commit nothing.
    let lock = two.log.lock_run_with(&run, &holders, None);
    if lock.is_err() {
        options.copy_failed = true;
    }
    options.two_phase = Some(run.clone());
    let report = commit::run(
        Commit::new(options, flags),
        parties,
        None,
        |d| {
            two.log
                .record_parties(d, &holders, None)
                .map_err(copyman_sync::Error::Io)
        },
        // Best effort: not recorded, a recovery that finds the run half rolled back, or a gap
        // among its prepared transactions, asks for its servers or refuses rather than guess.
        |step| {
            let _ = two.log.note(step);
        },
    );
    // Nothing of the run left prepared (committed under its decision, or rolled back): recovery
    // need not ask for its servers. (Not recorded, recovery asks for them all: the safe side.)
    if lock.is_ok() && !report.leaves_work() {
        let _ = two.log.finished(&run);
    }
    drop(lock);
    report
}

impl Shared<'_> {
    /// Leaves out of `targets` (failed, said) each destination where a table of the job that
    /// `t` references ([`TablePlan::after`]) did not end committed or done: its rows would
    /// reference rows that are not there, or the old ones that failed to go (a table that could
    /// not be emptied) — copied and recorded done, it would be skipped by the resume that copies
    /// that table again. Whether the table may go on: not when none is left, or, without
    /// keep-going, when one was left out.
    fn referenced_committed(
        &self,
        t: &TablePlan,
        targets: &mut Vec<usize>,
        report: &mut TableReport,
    ) -> bool {
        let before = targets.len();
        {
            let reports = self.reports.lock().unwrap_or_else(PoisonError::into_inner);
            targets.retain(|&d| {
                let behind = t.after.iter().find(|&&p| {
                    reports[p].as_ref().is_some_and(|r| {
                        !matches!(
                            r.destinations[d].status,
                            Status::Committed | Status::AlreadyDone
                        )
                    })
                });
                let Some(&p) = behind else { return true };
                report.destinations[d].fail(
                    Status::Failed,
                    TableError::new(format!(
                        "not copied here: it references {}, which did not commit here (above); \
                         a resume copies them in turn",
                        self.plan.tables[p].table
                    )),
                );
                false
            });
        }
        !targets.is_empty() && (self.options.keep_going || targets.len() == before)
    }

    fn stop(&self, why: String) {
        let mut stopped = self.stopped.lock().unwrap_or_else(PoisonError::into_inner);
        if stopped.is_none() {
            *stopped = Some(why);
        }
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Whether the job stopped (default policy) or was interrupted: no new table starts, and
    /// a table not yet committing rolls back.
    fn halted(&self) -> bool {
        self.stop.load(Ordering::SeqCst) || self.options.interrupt.is_interrupted()
    }

    /// [`describe`], with the job's stall timeout.
    fn describe(&self, error: &(dyn StdError + 'static)) -> TableError {
        describe_with(error, self.options.stall_timeout)
    }

    /// A `TRUNCATE`'s error. Without `--truncate` it empties a table that an earlier run began
    /// or committed there: without it, a copy would add a second copy of the rows, so the table
    /// fails, and the error says what the DBA can do.
    ///
    /// A table whose rows other tables' rows reference cannot be emptied (its `DELETE`: 23503;
    /// a `TRUNCATE` of a referenced table alone: 0A000), with or without `--truncate`, and never
    /// will be: copyman empties no other table to make way (their rows would go), so the error
    /// says what to do instead of a resume that fails the same.
    fn resumed_truncate(
        &self,
        error: &(dyn StdError + 'static),
        t: &TablePlan,
        d: usize,
    ) -> TableError {
        let described = self.describe(error);
        if let Some(db) = db_error(error).filter(|db| matches!(db.code.as_str(), "0A000" | "23503"))
        {
            let me = t.table.to_string();
            let mut referencing: Vec<String> = t
                .referenced_by
                .iter()
                .filter(|r| **r != me)
                .cloned()
                .collect();
            if referencing.is_empty() {
                referencing.push("the tables that reference it".to_owned());
            }
            // Those the job does not copy: their rows, once emptied, are the DBA's to copy again.
            let outside: Vec<&String> = referencing
                .iter()
                .filter(|r| !self.plan.tables.iter().any(|p| p.table.to_string() == **r))
                .collect();
            let refill = if outside.is_empty() {
                String::new()
            } else {
                format!(
                    " (and copy {} there again yourself: the job does not)",
                    outside
                        .iter()
                        .map(|r| r.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            // 23503: its DELETE met rows that reference it; 0A000: a TRUNCATE, because a DELETE
            // would have touched other rows (a foreign key that acts on delete, a trigger, a
            // rule), or a partitioned table: it can be copied again only into emptied tables.
            let then = if db.code == "23503" {
                format!("then run again with --resume{refill}")
            } else {
                "then copy them there with a job of their own (another --state), without \
                 --truncate or --resume: here copyman would empty it only with a TRUNCATE, which \
                 PostgreSQL refuses (a DELETE would act on other rows: a foreign key ON DELETE \
                 CASCADE or SET NULL, a trigger or a rule)"
                    .to_owned()
            };
            // The one statement that empties them: the table (with its group, if it is in
            // one: the group's tables are emptied in one transaction), and the tables that
            // reference them.
            let mut together: Vec<String> = match self
                .plan
                .tables
                .iter()
                .position(|p| p.table == t.table)
                .and_then(|i| self.plan.group_of(i))
            {
                Some(g) => g
                    .members
                    .iter()
                    .map(|&m| self.plan.tables[m].table.to_string())
                    .collect(),
                None => vec![me.clone()],
            };
            let by: Vec<String> = self
                .plan
                .tables
                .iter()
                .filter(|p| together.contains(&p.table.to_string()))
                .flat_map(|p| p.referenced_by.iter().cloned())
                .chain(referencing.iter().filter(|r| r.starts_with('"')).cloned())
                .collect();
            for r in by {
                if !together.contains(&r) {
                    together.push(r);
                }
            }
            // Each as the job empties it: a partitioned table with its partitions (PostgreSQL
            // refuses `TRUNCATE ONLY` of one), an ordinary one without its heirs; a table the
            // job does not copy, of a kind not known here, `ONLY` itself.
            let together: Vec<String> = together
                .iter()
                .map(|name| {
                    match self
                        .plan
                        .tables
                        .iter()
                        .find(|p| p.table.to_string() == *name)
                    {
                        Some(p) => {
                            let kind = match &p.destinations[d] {
                                DestPlan::Copy { kind, .. } => kind.as_str(),
                                _ => p.kind.as_str(),
                            };
                            own_rows(&p.table, kind)
                        }
                        None => format!("ONLY {name}"),
                    }
                })
                .collect();
            return TableError {
                lasting: false,
                sqlstate: described.sqlstate,
                message: one_line(&format!(
                    "{}{}: rows of {} reference its rows, and copyman empties no other table \
                     (their rows would go), so it cannot empty it to copy it again; on \
                     destination {} ({}) empty them together yourself (TRUNCATE {}), \
                     {then}",
                    db.message,
                    db.detail
                        .as_ref()
                        .map(|d| format!(" ({d})"))
                        .unwrap_or_default(),
                    referencing.join(", "),
                    d + 1,
                    self.destinations[d].name,
                    together.join(", "),
                )),
            };
        }
        if self.options.truncate || self.plan.recorded.truncate {
            return described;
        }
        TableError {
            lasting: false,
            message: format!(
                "cannot empty the table, which an earlier run of the job began or committed \
                 here (copying without emptying it could leave its rows twice): {}; empty it \
                 there yourself, then run again with --resume",
                described.message
            ),
            ..described
        }
    }

    /// Tells the caller that `conn` is about to run `table`'s statements for `worker`.
    fn announce(&self, worker: usize, table: &TableName, side: Side, conn: &Connection) {
        if let Some((pid, _)) = conn.session().backend_key() {
            (self.events)(Event::Backend {
                worker,
                table: table.clone(),
                side,
                pid,
                cancel_request: conn.session().cancel_request().map(|b| b.to_vec()),
            });
        }
    }

    /// Arms (`on`) or clears the stall timeout on `conn`'s socket: armed from a table's `BEGIN`
    /// to the end of its COPY, cleared before a checksum or a `COMMIT`. A socket that cannot
    /// take it is broken, and its next statement says so.
    fn stall_guard(&self, conn: &mut Connection, on: bool) {
        if let Some(limit) = self.options.stall_timeout {
            let _ = conn.set_timeout(on.then_some(limit));
        }
    }

    /// The next table to copy: the first in the queue (largest first) whose referenced tables
    /// ([`TablePlan::after`]) have finished; waits while every table left waits for one in
    /// flight. `None` once the queue is empty or the job halted.
    fn next(&self) -> Option<usize> {
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if self.halted() || queue.is_empty() {
                return None;
            }
            let ready = {
                let reports = self.reports.lock().unwrap_or_else(PoisonError::into_inner);
                queue.iter().position(|&i| {
                    self.waits_for(i)
                        .iter()
                        .all(|&p| !self.pending[p] || reports[p].is_some())
                })
            };
            if let Some(at) = ready {
                self.running.fetch_add(1, Ordering::SeqCst);
                return queue.remove(at);
            }
            // Nothing in flight will ever let a table left start: they wait for each other
            // (a group waits for a table it references, which references one of its members
            // and is copied without emptying). Said, rather than waited on for ever.
            if self.running.load(Ordering::SeqCst) == 0 {
                let waits: Vec<String> = queue
                    .iter()
                    .map(|&i| {
                        let names = |list: Vec<usize>| -> Vec<String> {
                            list.iter()
                                .map(|&p| self.plan.tables[p].table.to_string())
                                .collect()
                        };
                        let me = match self.group_of[i] {
                            Some(g) => names(self.plan.groups[g].members.clone()).join(" with "),
                            None => self.plan.tables[i].table.to_string(),
                        };
                        let behind: Vec<usize> = self
                            .waits_for(i)
                            .into_iter()
                            .filter(|&p| self.pending[p])
                            .collect();
                        format!("{me} waits for {}", names(behind).join(", "))
                    })
                    .collect();
                // Said only if this is why the job stops (not when it had stopped already).
                if !self.halted() {
                    self.stopped_waiting.store(true, Ordering::SeqCst);
                }
                self.stop(format!(
                    "cannot order the tables left by their foreign keys: {}; each must commit \
                     before the other starts (a group of tables emptied first and a table \
                     copied without emptying that references one member and is referenced by \
                     another); nothing of them was copied: copy them with --truncate (all \
                     emptied, one group), or the table copied without emptying in a job of its \
                     own",
                    waits.join("; ")
                ));
                return None;
            }
            // A bounded wait: a job that halts meanwhile is seen without a notification.
            queue = self
                .turn
                .wait_timeout(queue, Duration::from_millis(200))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// The tables `i` waits for ([`TablePlan::after`]); for a group's first member, every
    /// member's, outside the group.
    fn waits_for(&self, i: usize) -> Vec<usize> {
        match self.group_of[i].map(|g| &self.plan.groups[g].members) {
            Some(members) => members
                .iter()
                .flat_map(|&m| self.plan.tables[m].after.iter().copied())
                .filter(|p| !members.contains(p))
                .collect(),
            None => self.plan.tables[i].after.clone(),
        }
    }

    /// A table finished: the tables waiting for it may start.
    fn finished(&self) {
        let _queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        self.turn.notify_all();
    }
}

/// Runs a planned job to its end; `events` hears about its progress (from every worker thread).
///
/// # Errors
/// The state file cannot be opened. Everything else is in the [`JobReport`].
pub fn run(
    plan: Plan,
    source: &Server,
    destinations: &[Server],
    options: &Options,
    events: &(dyn Fn(Event) + Sync),
) -> Result<JobReport, JobError> {
    let started = Instant::now();
    let state =
        StateFile::open(&options.state, options.resume).map_err(|error| JobError::State {
            path: options.state.clone(),
            error,
        })?;
    let mut plan = plan;
    if plan.recorded.selection.is_none() {
        state
            .selection(&plan.selection)
            .map_err(|error| JobError::State {
                path: options.state.clone(),
                error,
            })?;
    }
    if options.truncate && !plan.recorded.truncate {
        state.truncate().map_err(|error| JobError::State {
            path: options.state.clone(),
            error,
        })?;
    }
    // The run that began the job says whether it verifies (a resume that verifies once does
    // not bind the next).
    if options.verify && !options.resume {
        state.verify().map_err(|error| JobError::State {
            path: options.state.clone(),
            error,
        })?;
    }
    // What an earlier run committed without recording it (the destination confirmed it).
    for (table, d, rows) in std::mem::take(&mut plan.confirmed) {
        state
            .done(&table, &plan.keys[d], rows)
            .map_err(|error| JobError::State {
                path: options.state.clone(),
                error,
            })?;
    }
    let coordinator = plan.coordinator.take();
    // The tables this run copies; under verify, those done earlier are taken up too, only to
    // be compared (`verify_done`).
    let copies: Vec<bool> = plan.tables.iter().map(copies_any).collect();
    let mut group_of = vec![None; plan.tables.len()];
    for (g, group) in plan.groups.iter().enumerate() {
        for &m in &group.members {
            group_of[m] = Some(g);
        }
    }
    // A group is taken up by its first member; the worker copies the others with it.
    let todo: VecDeque<usize> = (0..plan.tables.len())
        .filter(|&i| copies[i] || (options.verify && !done_earlier(&plan.tables[i]).is_empty()))
        .filter(|&i| group_of[i].is_none_or(|g| plan.groups[g].members[0] == i))
        .collect();
    let taken_up = todo.len();
    let members = |i: usize| match group_of[i] {
        Some(g) => plan.groups[g].members.clone(),
        None => vec![i],
    };
    events(Event::Started {
        tables: todo.iter().map(|&i| members(i).len()).sum(),
        bytes: todo
            .iter()
            .flat_map(|&i| members(i))
            .filter(|&i| copies[i])
            .map(|i| plan.tables[i].size)
            .sum(),
    });
    let two_phase = match &options.two_phase {
        Some(path) => Some(TwoPhase {
            log: commit::DecisionLog::open(path).map_err(|error| JobError::DecisionLog {
                path: path.clone(),
                error,
            })?,
            run: commit::DecisionLog::new_run_id(),
            next: std::sync::atomic::AtomicUsize::new(1),
        }),
        None => None,
    };
    let shared = Shared {
        two_phase,
        group_of,
        plan: &plan,
        source,
        destinations,
        options,
        state: &state,
        events,
        queue: Mutex::new(todo),
        pending: copies,
        turn: Condvar::new(),
        running: std::sync::atomic::AtomicUsize::new(0),
        stop: AtomicBool::new(false),
        stopped: Mutex::new(None),
        stopped_waiting: AtomicBool::new(false),
        reports: Mutex::new(vec![None; plan.tables.len()]),
        rate: options.max_rate.filter(|&r| r > 0).map(|per_second| Rate {
            per_second,
            start: Instant::now(),
            used: Mutex::new(0),
        }),
    };
    // Under the default policy a table refused by a destination's catalog stops the job before
    // anything is copied.
    if !options.keep_going
        && let Some((table, dest, error)) = plan.tables.iter().find_map(|t| {
            t.destinations
                .iter()
                .enumerate()
                .find_map(|(i, d)| match d {
                    DestPlan::Refused(e) => Some((&t.table, i, e)),
                    _ => None,
                })
        })
    {
        shared.stop(format!(
            "table {table} on destination {} ({}): {error}",
            dest + 1,
            destinations[dest].name
        ));
    }
    let workers = options.jobs.max(1).min(taken_up.max(1));
    thread::scope(|s| {
        for worker in 0..workers {
            let shared = &shared;
            s.spawn(move || work(shared, worker));
        }
    });
    drop(coordinator);
    let reports = shared
        .reports
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    let tables = plan
        .tables
        .iter()
        .zip(reports)
        .map(|(t, report)| report.unwrap_or_else(|| unstarted(t)))
        .collect();
    Ok(JobReport {
        tables,
        snapshot: plan.snapshot.clone(),
        stopped: shared
            .stopped
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner),
        stopped_waiting: shared.stopped_waiting.into_inner(),
        interrupted: options.interrupt.reason(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Whether a destination copies `t` in this run (it is not done there already).
fn copies_any(t: &TablePlan) -> bool {
    t.destinations
        .iter()
        .any(|d| !matches!(d, DestPlan::Done(_)))
}

/// The destinations where an earlier run did `t` (by position).
fn done_earlier(t: &TablePlan) -> Vec<usize> {
    (0..t.destinations.len())
        .filter(|&d| matches!(t.destinations[d], DestPlan::Done(_)))
        .collect()
}

/// The report of a table no worker took: done earlier, refused, or not started.
fn unstarted(t: &TablePlan) -> TableReport {
    TableReport {
        table: t.table.clone(),
        format: t.format,
        source_rows: None,
        destinations: t
            .destinations
            .iter()
            .map(|d| match d {
                DestPlan::Done(rows) => DestResult {
                    rows: Some(*rows),
                    ..DestResult::new(Status::AlreadyDone)
                },
                DestPlan::Refused(e) => DestResult {
                    error: Some(e.clone().prefixed(&format!("table {}: ", t.table))),
                    ..DestResult::new(Status::Failed)
                },
                DestPlan::Copy { .. } => DestResult::new(Status::NotStarted),
            })
            .collect(),
    }
}

/// A worker's connections.
struct Conns {
    source: Option<Connection>,
    dests: Vec<Option<Connection>>,
}

/// The connection in `slot`, (re)connected when missing or broken (a statement that did not
/// end there is cancelled first: [`give_up`]).
fn ensure<'c>(
    slot: &'c mut Option<Connection>,
    server: &Server,
) -> Result<&'c mut Connection, TableError> {
    give_up(slot, server);
    if slot.is_none() {
        *slot = Some((server.connect)().map_err(|e| describe(&e).prefixed("cannot connect: "))?);
    }
    Ok(slot.as_mut().expect("connected just above"))
}

fn work(shared: &Shared<'_>, worker: usize) {
    let mut conns = Conns {
        source: None,
        dests: shared.destinations.iter().map(|_| None).collect(),
    };
    while let Some(i) = shared.next() {
        let _flight = InFlight(shared);
        let t = &shared.plan.tables[i];
        (shared.events)(Event::TableStarted {
            worker,
            table: t.table.clone(),
            size: t.size,
        });
        if let Some(g) = shared.group_of[i] {
            let group = &shared.plan.groups[g];
            let reports = copy_group(shared, worker, group, &mut conns);
            for (&m, report) in group.members.iter().zip(reports) {
                finish_table(shared, worker, m, report);
            }
        } else {
            let report = copy_table(shared, worker, t, &mut conns);
            finish_table(shared, worker, i, report);
        }
    }
}

/// A table (or group) a worker took: when it is over, the tables waiting for it may start. A
/// worker that panics (a bug, or the caller's `events` callback) stops the job, so that the
/// other workers end instead of waiting for ever for a table that will not finish; the panic
/// then reaches `run`'s caller.
struct InFlight<'s, 'a>(&'s Shared<'a>);

impl Drop for InFlight<'_, '_> {
    fn drop(&mut self) {
        if thread::panicking() {
            self.0
                .stop("a worker of the job panicked (see the message above)".to_owned());
        }
        self.0.running.fetch_sub(1, Ordering::SeqCst);
        self.0.finished();
    }
}

/// Records how table `i` went (and stops the job on its failure under the default policy).
fn finish_table(shared: &Shared<'_>, worker: usize, i: usize, report: TableReport) {
    let t = &shared.plan.tables[i];
    if !shared.options.keep_going
        && let Some((d, r)) = report
            .destinations
            .iter()
            .enumerate()
            .find(|(_, r)| matches!(r.status, Status::Failed | Status::InDoubt))
    {
        shared.stop(format!(
            "table {} on destination {} ({}): {}",
            t.table,
            d + 1,
            shared.destinations[d].name,
            r.error
                .as_ref()
                .map_or_else(|| r.status.name().to_owned(), ToString::to_string)
        ));
    }
    shared
        .reports
        .lock()
        .unwrap_or_else(PoisonError::into_inner)[i] = Some(report.clone());
    shared.finished();
    (shared.events)(Event::TableFinished { worker, report });
}

/// Why a healthy destination's copy of a table was rolled back: the job stopped (another table
/// failed under the default policy).
const JOB_STOPPED: &str = "the job stopped";

/// Why a healthy destination's copy of a table was rolled back: it failed on another destination
/// (default policy).
const OTHER_FAILED: &str = "the table failed on another destination";

/// The SQL that makes two servers print values alike, for the checksum.
const CHECKSUM_SETTINGS: [&str; 5] = [
    "SET LOCAL DateStyle = 'ISO, YMD'",
    "SET LOCAL IntervalStyle = 'postgres'",
    "SET LOCAL TimeZone = 'UTC'",
    "SET LOCAL extra_float_digits = 3",
    "SET LOCAL bytea_output = 'hex'",
];

/// An order-independent checksum of a table's copied columns: the row count and the sum of
/// the first 60 bits of each row's md5, over the rows a copy of the relation (of `kind` on the
/// server asked) reads or writes ([`own_rows`]: an inheritance parent's own rows, not its
/// children's).
fn checksum_query(table: &TableName, columns: &[Ident], kind: &str) -> String {
    let list: Vec<String> = columns.iter().map(ToString::to_string).collect();
    format!(
        "SELECT count(*)::text || ':' || coalesce(sum(('x' || substr(md5(ROW({})::text), 1, 15))\
         ::bit(60)::int8), 0)::text FROM {}",
        list.join(", "),
        own_rows(table, kind)
    )
}

/// Runs the checksum on `conn`, inside its open transaction. The relation's kind is read on
/// that server: a destination's table may be of another kind than the source's (partitioned
/// there, ordinary here), and each side counts the rows its copy read or wrote.
fn checksum(conn: &mut Connection, t: &TablePlan) -> Result<String, TableError> {
    for sql in CHECKSUM_SETTINGS {
        conn.execute(sql).map_err(|e| describe(&e))?;
    }
    let kind = conn
        .query(&format!(
            "SELECT c.relkind::text FROM pg_catalog.pg_class c WHERE c.oid = {}::pg_catalog.regclass",
            literal(&t.table.to_string())
        ))
        .map_err(|e| describe(&e))?
        .first()
        .and_then(|r| r.first().cloned().flatten())
        .ok_or_else(|| TableError::new("the relation's kind could not be read"))?;
    let rows = conn
        .query(&checksum_query(&t.table, &t.columns, &kind))
        .map_err(|e| describe(&e))?;
    rows.first()
        .and_then(|r| r.first().cloned().flatten())
        .ok_or_else(|| TableError::new("the checksum query returned nothing"))
}

/// Begins the source's transaction in `snapshot` (the job's, or a split table's own).
fn begin_source(
    shared: &Shared<'_>,
    conn: &mut Connection,
    snapshot: Option<&str>,
) -> Result<(), TableError> {
    conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .map_err(|e| shared.describe(&e))?;
    if let Some(id) = snapshot {
        conn.execute(&format!("SET TRANSACTION SNAPSHOT {}", literal(id)))
            .map_err(|e| {
                shared
                    .describe(&e)
                    .prefixed(if shared.plan.snapshot.as_deref() == Some(id) {
                        "cannot import the job's snapshot: "
                    } else {
                        "cannot import the table's snapshot: "
                    })
            })?;
    }
    Ok(())
}

/// Rolls back `conn`'s transaction, if it has one open (and is usable).
fn end(conn: Option<&mut Connection>) {
    if let Some(conn) = conn
        && conn.is_ready()
        && commit::Action::Rollback.is_due(conn.session().transaction_status())
    {
        let _ = conn.execute("ROLLBACK");
    }
}

/// Copies one table to every destination that needs it; under verify, compares it on those
/// where an earlier run did it ([`verify_done`]).
fn copy_table(shared: &Shared<'_>, worker: usize, t: &TablePlan, conns: &mut Conns) -> TableReport {
    // The source's checksum, if the copy computed one.
    let mut source_sum = None;
    let mut report = if !copies_any(t) {
        unstarted(t)
    } else if t.ranges.is_empty() {
        copy_whole(shared, worker, t, conns, &mut source_sum)
    } else {
        copy_split(shared, worker, t, conns, &mut source_sum)
    };
    give_up_stalled(shared, conns, &mut report);
    // Whatever way the copy ended, no socket timeout outlives it.
    for conn in conns
        .source
        .iter_mut()
        .chain(conns.dests.iter_mut().flatten())
    {
        shared.stall_guard(conn, false);
    }
    mark_interrupted(shared, &mut report);
    verify_done(shared, worker, t, conns, source_sum, &mut report);
    report
}

/// Under [`Options::verify`], compares `t` on the destinations where an earlier run did it
/// ([`DestPlan::Done`], skipped by the copy) with the source in the job's snapshot (`sum`: the
/// source's checksum if the copy computed it, else computed now), as a table copied now is
/// compared: a resume with verify checks every table of the job. One that differs, or cannot
/// be compared, is recorded `mismatch`: not done, so that the next resume empties it there and
/// copies it again. Nothing is compared once the job halted (an interrupt may have cancelled
/// the source's checksum: that would say nothing of the table).
fn verify_done(
    shared: &Shared<'_>,
    worker: usize,
    t: &TablePlan,
    conns: &mut Conns,
    sum: Option<String>,
    report: &mut TableReport,
) {
    let done = done_earlier(t);
    if !shared.options.verify || done.is_empty() || shared.halted() {
        return;
    }
    let sum = match sum {
        Some(sum) => Ok(sum),
        None => source_checksum(shared, worker, t, conns),
    };
    if shared.halted() {
        return;
    }
    let key = t.table.to_string();
    for d in done {
        let result = &mut report.destinations[d];
        match &sum {
            Ok(sum) => match ensure(&mut conns.dests[d], &shared.destinations[d]) {
                Ok(conn) => verify_dest(result, Some(conn), t, sum),
                Err(e) => {
                    result.verified = Some(false);
                    result.error = Some(e.prefixed("verify: "));
                }
            },
            Err(e) => {
                result.verified = Some(false);
                result.error = Some(e.clone().prefixed("verify: the source's checksum failed: "));
            }
        }
        if result.verified != Some(true) {
            record_mismatch(shared, &key, d, result);
        }
    }
}

/// The source's checksum of `t`, in the job's snapshot, on the worker's source session
/// (announced while it runs, so that a signal can cancel it).
fn source_checksum(
    shared: &Shared<'_>,
    worker: usize,
    t: &TablePlan,
    conns: &mut Conns,
) -> Result<String, TableError> {
    let source = ensure(&mut conns.source, shared.source).map_err(|e| e.prefixed("source: "))?;
    shared.announce(worker, &t.table, Side::Source, source);
    let sum = begin_source(shared, source, shared.plan.snapshot.as_deref())
        .and_then(|()| checksum(source, t));
    end(Some(source));
    (shared.events)(Event::Ending { worker });
    sum
}

/// The sessions of a table's copy whose statement did not end (a stall: a `BEGIN`, `TRUNCATE`
/// or COPY waiting for a lock, a server that stopped answering) are given up ([`give_up`]):
/// their statements cancelled, new sessions in their place, and what they waited for added to
/// the destination's error. A destination whose `COMMIT` is in doubt is left as it is (a cancel
/// must not decide it).
fn give_up_stalled(shared: &Shared<'_>, conns: &mut Conns, report: &mut TableReport) {
    give_up(&mut conns.source, shared.source);
    for (d, slot) in conns.dests.iter_mut().enumerate() {
        let result = &mut report.destinations[d];
        if result.status == Status::InDoubt {
            continue;
        }
        // (One note is enough: the ranges of a split table may each have stalled.)
        if let Some(note) = give_up(slot, &shared.destinations[d])
            && let Some(error) = &mut result.error
            && !error.message.contains(CANCELLED)
        {
            error.message = format!("{}; {note}", error.message);
        }
    }
}

/// After an interruption, the table's destinations that were rolled back because of it (or
/// whose statement the caller's cancel ended: SQLSTATE 57014) are [`Status::Interrupted`].
fn mark_interrupted(shared: &Shared<'_>, report: &mut TableReport) {
    let Some(reason) = shared.options.interrupt.reason() else {
        return;
    };
    for d in &mut report.destinations {
        let cut_short = match d.status {
            Status::RolledBack => true,
            Status::Failed => d.error.as_ref().is_some_and(|e| {
                e.sqlstate.as_deref() == Some("57014")
                    || e.message.contains(JOB_STOPPED)
                    || e.message.contains(OTHER_FAILED)
            }),
            _ => false,
        };
        if cut_short {
            d.status = Status::Interrupted;
            d.error = Some(TableError::new(format!(
                "rolled back, nothing of it committed: {reason}"
            )));
        }
    }
}

/// Copies one table (not split) to every destination that needs it; `sum_out` gets the source's
/// checksum under verify (in the copy's transaction), for [`verify_done`] too.
fn copy_whole(
    shared: &Shared<'_>,
    worker: usize,
    t: &TablePlan,
    conns: &mut Conns,
    sum_out: &mut Option<String>,
) -> TableReport {
    let started = Instant::now();
    let options = shared.options;
    let key = t.table.to_string();
    let mut report = unstarted(t);
    let mut targets: Vec<usize> = t
        .destinations
        .iter()
        .enumerate()
        .filter(|(_, d)| matches!(d, DestPlan::Copy { .. }))
        .map(|(i, _)| i)
        .collect();
    for &d in &targets {
        report.destinations[d].status = Status::RolledBack;
    }
    if !shared.referenced_committed(t, &mut targets, &mut report) {
        return report;
    }
    let fail_all = |report: &mut TableReport, targets: &[usize], error: &TableError| {
        for &d in targets {
            report.destinations[d].fail(Status::Failed, error.clone());
        }
    };

    let mut attempt = 0;
    let (source_rows, completed) = loop {
        attempt += 1;
        // The source, in the snapshot.
        let source = match ensure(&mut conns.source, shared.source) {
            Ok(conn) => conn,
            Err(e) => {
                fail_all(&mut report, &targets, &e.prefixed("source: "));
                return report;
            }
        };
        shared.announce(worker, &t.table, Side::Source, source);
        shared.stall_guard(source, true);
        if let Err(e) = begin_source(shared, source, shared.plan.snapshot.as_deref()) {
            end(Some(source));
            fail_all(&mut report, &targets, &e.prefixed("source: "));
            return report;
        }
        // The destinations, each in its transaction (truncated first where planned).
        let mut live = Vec::new();
        for &d in &targets {
            let DestPlan::Copy {
                truncate,
                ref kind,
                quiet_delete,
                ..
            } = t.destinations[d]
            else {
                continue;
            };
            if let Err(e) = shared.state.begin(&key, &shared.plan.keys[d]) {
                report.destinations[d]
                    .fail(Status::Failed, TableError::new(format!("state file: {e}")));
                continue;
            }
            let begun = ensure(&mut conns.dests[d], &shared.destinations[d]).and_then(|conn| {
                shared.announce(worker, &t.table, Side::Destination(d), conn);
                shared.stall_guard(conn, true);
                conn.execute("BEGIN").map_err(|e| shared.describe(&e))?;
                if truncate {
                    conn.execute(&t.emptying(kind, quiet_delete))
                        .map_err(|e| shared.resumed_truncate(&e, t, d))?;
                }
                Ok(())
            });
            match begun {
                Ok(()) => live.push(d),
                Err(e) => {
                    end(conns.dests[d].as_mut());
                    report.destinations[d].fail(Status::Failed, e);
                }
            }
        }
        let lost_one = live.len() < targets.len() && !options.keep_going;
        if live.is_empty() || lost_one || shared.halted() {
            end(conns.source.as_mut());
            for &d in &live {
                end(conns.dests[d].as_mut());
                if shared.halted() {
                    report.destinations[d].fail(Status::RolledBack, TableError::new(JOB_STOPPED));
                } else {
                    report.destinations[d].fail(Status::RolledBack, TableError::new(OTHER_FAILED));
                }
            }
            return report;
        }

        // The copy.
        let outcome = {
            let source = conns.source.as_mut().expect("connected above");
            let producer = StatementProducer::new(source, t.send.clone());
            let mut receivers: Vec<Box<dyn Receiver + '_>> = Vec::new();
            for (d, slot) in conns.dests.iter_mut().enumerate() {
                if !live.contains(&d) {
                    continue;
                }
                let DestPlan::Copy { freeze, .. } = t.destinations[d] else {
                    continue;
                };
                let conn = slot.as_mut().expect("begun above");
                receivers.push(Box::new(StatementReceiver::new(
                    conn,
                    t.receive_for(freeze),
                )));
            }
            let progress = |rows, bytes| {
                (shared.events)(Event::Progress {
                    worker,
                    rows,
                    bytes,
                });
            };
            drive(shared, &progress, producer, receivers, None)
        };
        match outcome {
            Driven::StartFailed {
                receivers,
                producer,
            } => {
                for (k, error) in &receivers {
                    report.destinations[live[*k]].fail(Status::Failed, error.clone());
                }
                if let Some(error) = producer {
                    end(conns.source.as_mut());
                    for &d in &live {
                        end(conns.dests[d].as_mut());
                    }
                    fail_all(&mut report, &live, &error.prefixed("source: "));
                    return report;
                }
                end(conns.source.as_mut());
                for &d in &live {
                    end(conns.dests[d].as_mut());
                }
                if options.keep_going && attempt <= shared.destinations.len() {
                    // Start again without the destinations that could not start.
                    targets.retain(|d| report.destinations[*d].status != Status::Failed);
                    if targets.is_empty() {
                        return report;
                    }
                    continue;
                }
                for &d in &live {
                    report.destinations[d].fail(Status::RolledBack, TableError::new(OTHER_FAILED));
                }
                return report;
            }
            Driven::Ran {
                faults,
                aborted,
                summary,
                bytes,
                producer_count,
                completions,
            } => {
                for (k, error) in &faults {
                    report.destinations[live[*k]].fail(Status::Failed, error.clone());
                }
                let mut completed = vec![None; live.len()];
                match summary {
                    Ok(rows) => {
                        for (k, outcome) in rows {
                            match outcome {
                                Ok(n) => completed[k] = Some(n),
                                Err(e) => report.destinations[live[k]].fail(Status::Failed, e),
                            }
                        }
                    }
                    Err(fail) => {
                        for (k, error) in &fail.receivers {
                            report.destinations[live[*k]].fail(Status::Failed, error.clone());
                        }
                        // Our own abort cancels the source's COPY: its error says nothing more.
                        let ours = aborted
                            .as_deref()
                            .is_some_and(|a| a == OTHER_FAILED || a == JOB_STOPPED);
                        if let Some(error) = fail.producer.as_ref().filter(|_| !ours) {
                            for &d in &live {
                                report.destinations[d]
                                    .fail(Status::Failed, error.clone().prefixed("source: "));
                            }
                        }
                        // A copy aborted because another destination failed or the job stopped
                        // rolls the healthy destinations back; one the source failed fails.
                        if let Some(why) = &aborted {
                            let status = if why == OTHER_FAILED || why == JOB_STOPPED {
                                Status::RolledBack
                            } else {
                                Status::Failed
                            };
                            for &d in &live {
                                if report.destinations[d].error.is_none() {
                                    report.destinations[d]
                                        .fail(status, TableError::new(why.clone()));
                                }
                            }
                        }
                        // (Under keep-going the manager lets the survivors of a failure complete
                        // and the copy succeed: a copy that failed anyway has none to keep.)
                        for (k, completion) in completions.iter().enumerate() {
                            let d = live[k];
                            match completion {
                                // Its COPY completed, another's did not.
                                Some(_) if report.destinations[d].error.is_none() => {
                                    report.destinations[d]
                                        .fail(Status::RolledBack, TableError::new(OTHER_FAILED));
                                }
                                _ => report.destinations[d].fail(
                                    Status::Failed,
                                    TableError::new(format!(
                                        "COPY did not complete: {}",
                                        fail.reason
                                    )),
                                ),
                            }
                        }
                    }
                }
                for &d in &live {
                    report.destinations[d].bytes = bytes;
                }
                let source_rows = producer_count;
                break (
                    source_rows,
                    live.iter().copied().zip(completed).collect::<Vec<_>>(),
                );
            }
        }
    };
    report.source_rows = source_rows;

    // Row counts: every destination holds exactly the source's rows.
    let mut ok: Vec<(usize, Option<u64>)> = Vec::new();
    for (d, rows) in &completed {
        let Some(rows) = rows else { continue };
        let check = match (source_rows, rows) {
            (Some(sent), Some(stored)) if sent != *stored => Err(mismatch(sent, *stored)),
            (None, _) => Err("the source reported no row count".to_owned()),
            _ => Ok(()),
        };
        match check {
            Ok(()) => ok.push((*d, *rows)),
            // `--allow-count-mismatch`: triggers that route or drop rows; it commits, said.
            Err(message) if options.allow_count_mismatch && source_rows.is_some() => {
                report.destinations[*d].warning = Some(format!("{message} (allowed)"));
                ok.push((*d, *rows));
            }
            Err(message) => report.destinations[*d]
                .fail(Status::Failed, refused(message, source_rows.is_some())),
        }
    }
    if let Some(conn) = conns.source.as_mut() {
        shared.stall_guard(conn, false);
    }
    // The sequences of the copied columns, where the table goes on (a setval is not rolled
    // back): the source's read now, after its rows, and each destination's advanced in its
    // transaction while its stall guard still stands (a setval waiting on a lock is said and
    // given up as a COPY would be).
    let going_on = !shared.halted()
        && (options.keep_going
            || (ok.len() == completed.len() && completed.len() == report_targets(t)));
    if going_on {
        let mut carrier = Carrier::default();
        let live: Vec<usize> = ok.iter().map(|(d, _)| *d).collect();
        for d in live {
            let (source, conn) = (conns.source.as_mut(), conns.dests[d].as_mut());
            if !carry(
                &mut carrier,
                t,
                d,
                source,
                conn,
                &mut report.destinations[d],
            ) {
                ok.retain(|(o, _)| *o != d);
            }
        }
    }
    // The source's checksum, inside the same snapshot (for the destinations done earlier too).
    let mut source_sum = None;
    if options.verify && (!ok.is_empty() || !done_earlier(t).is_empty()) {
        let conn = conns.source.as_mut().expect("connected above");
        match checksum(conn, t) {
            Ok(sum) => source_sum = Some(sum),
            Err(e) => {
                for (d, _) in &ok {
                    report.destinations[*d].error =
                        Some(e.clone().prefixed("verify: the source's checksum failed: "));
                    report.destinations[*d].verified = Some(false);
                }
            }
        }
    }
    end(conns.source.as_mut());

    // The end of each destination's transaction: core's commit machine.
    let live: Vec<usize> = completed.iter().map(|(d, _)| *d).collect();
    for conn in conns.dests.iter_mut().flatten() {
        shared.stall_guard(conn, false);
    }
    // From here the worker's backends are not cancelled; an interruption seen now still rolls
    // the table back, one that comes later lets its commit finish.
    (shared.events)(Event::Ending { worker });
    let mut flags: Vec<bool> = live
        .iter()
        .map(|d| ok.iter().any(|(o, _)| o == d))
        .collect();
    // Each COMMIT announced in the state file first: one that could not be, is not sent.
    if !shared.halted() && (options.keep_going || flags.iter().all(|f| *f)) {
        for (k, &d) in live.iter().enumerate() {
            if !flags[k] {
                continue;
            }
            let rows = ok.iter().find(|(o, _)| *o == d).and_then(|(_, r)| *r);
            let conn = conns.dests[d].as_mut().expect("begun above");
            let announced = resume::announce_commit(
                shared.state,
                &key,
                &shared.plan.keys[d],
                rows.unwrap_or(0),
                vec![conn],
            );
            if let Err(e) = announced {
                flags[k] = false;
                report.destinations[d].fail(Status::Failed, e);
            }
        }
    }
    let copy_failed = !options.keep_going && flags.iter().any(|f| !f);
    let mut commit_options = commit::Options::new(if options.keep_going {
        Policy::KeepGoing
    } else {
        Policy::AllOrNothing
    });
    let stopped_before_commit = shared.halted();
    commit_options.copy_failed = copy_failed || stopped_before_commit;
    let tables = std::slice::from_ref(&t.table);
    let outcome = commit_live(
        shared,
        worker,
        &mut conns.dests,
        &live,
        tables,
        commit_options,
        &flags,
    );
    let record_error = outcome.record_error.as_ref().map(|e| describe(e));
    for (k, outcome) in outcome.destinations.into_iter().enumerate() {
        let d = live[k];
        let result = &mut report.destinations[d];
        result.seconds = started.elapsed().as_secs_f64();
        match outcome {
            Outcome::Committed => {
                let rows = ok.iter().find(|(o, _)| *o == d).and_then(|(_, r)| *r);
                result.status = Status::Committed;
                result.rows = rows;
                // Under verify, recorded once its checksum is compared (below).
                if !options.verify {
                    record_committed(shared, &key, d, result);
                }
            }
            Outcome::RolledBack if record_error.is_some() => {
                result.fail(
                    Status::Failed,
                    record_error
                        .clone()
                        .expect("checked")
                        .prefixed("the two-phase decision could not be recorded: "),
                );
            }
            Outcome::RolledBack => {
                let why = if stopped_before_commit {
                    JOB_STOPPED
                } else {
                    OTHER_FAILED
                };
                result.fail(Status::RolledBack, TableError::new(why));
            }
            Outcome::InDoubt(e) => {
                result.status = Status::InDoubt;
                result.error = Some(describe(&e).prefixed("COMMIT in doubt: "));
            }
            Outcome::CommitPending { gid, error } => {
                result.status = Status::InDoubt;
                result.error = Some(describe(&error).prefixed(&format!(
                    "prepared as {gid} and decided, but COMMIT PREPARED was not confirmed \
                     (copyman recover commits it): "
                )));
            }
            Outcome::RollbackPending { gid, error } => {
                let why = error
                    .map(|e| format!(": {}", describe(&e)))
                    .unwrap_or_default();
                result.status = Status::Failed;
                result.error = Some(TableError::new(format!(
                    "may hold the prepared transaction {gid} (nothing visible; copyman recover \
                     rolls it back){why}"
                )));
            }
            // Its copy did not complete: its status and error are set already.
            Outcome::Failed(None) if result.error.is_some() => {}
            other => {
                let error = other
                    .error()
                    .map(|e| describe(e))
                    .unwrap_or_else(|| TableError::new("failed"));
                result.fail(Status::Failed, error);
            }
        }
    }
    // The destinations' checksums, after their commit.
    if let Some(sum) = &source_sum {
        for &d in &live {
            if report.destinations[d].status == Status::Committed {
                verify_dest(&mut report.destinations[d], conns.dests[d].as_mut(), t, sum);
            }
        }
    }
    *sum_out = source_sum;
    if options.verify {
        for &d in &live {
            if report.destinations[d].status == Status::Committed {
                record_committed(shared, &key, d, &mut report.destinations[d]);
            }
        }
    }
    report
}

/// Why a destination's copy of a group's table was rolled back: another table of its group
/// failed there.
fn group_failed(table: &TableName) -> TableError {
    TableError::new(format!(
        "its group (tables linked by foreign keys, copied as one unit) failed here: {table}"
    ))
}

/// Why a destination's copy of a group rolled back: the group failed on another destination.
const GROUP_OTHER_FAILED: &str =
    "its group (tables linked by foreign keys, copied as one unit) failed on another destination";

/// Copies an FK-linked group of tables as one unit ([`crate::plan::Group`]): on each
/// destination one transaction empties every member (one `TRUNCATE` where no other table
/// references them, else one by one, children first), copies each member in the group's order
/// from the job's snapshot, advances their sequences, and ends with one commit (two-phase under
/// [`Options::two_phase`]); every member is recorded done there together, after that commit.
/// A failure of any member on a destination rolls the whole group back there, and under the
/// default policy on every destination: nothing of the group is committed, and a resume copies
/// it again. Under keep-going a destination that fails leaves the group there and the others
/// go on (a COPY that cannot even start rolls the group back everywhere). Returns each member's
/// report, in [`crate::plan::Group::members`]' order.
fn copy_group(
    shared: &Shared<'_>,
    worker: usize,
    group: &crate::plan::Group,
    conns: &mut Conns,
) -> Vec<TableReport> {
    let mut sums = vec![None; group.members.len()];
    let mut reports = copy_group_unit(shared, worker, group, conns, &mut sums);
    // As after a table's copy: stalled sessions given up, no socket timeout left, an
    // interruption said, and under verify the members done earlier compared.
    for report in &mut reports {
        give_up_stalled(shared, conns, report);
    }
    for conn in conns
        .source
        .iter_mut()
        .chain(conns.dests.iter_mut().flatten())
    {
        shared.stall_guard(conn, false);
    }
    for ((&m, report), sum) in group.members.iter().zip(&mut reports).zip(sums) {
        mark_interrupted(shared, report);
        verify_done(shared, worker, &shared.plan.tables[m], conns, sum, report);
    }
    reports
}

/// [`copy_group`]'s copy and commit; `sums_out` gets the source's checksums under verify.
fn copy_group_unit(
    shared: &Shared<'_>,
    worker: usize,
    group: &crate::plan::Group,
    conns: &mut Conns,
    sums_out: &mut [Option<String>],
) -> Vec<TableReport> {
    let started = Instant::now();
    let options = shared.options;
    let tables: Vec<&TablePlan> = group
        .members
        .iter()
        .map(|&m| &shared.plan.tables[m])
        .collect();
    let leader = &tables[0].table;
    let mut reports: Vec<TableReport> = tables.iter().map(|t| unstarted(t)).collect();
    let copies = |k: usize, d: usize| matches!(tables[k].destinations[d], DestPlan::Copy { .. });
    let mut targets: Vec<usize> = (0..shared.destinations.len())
        .filter(|&d| (0..tables.len()).any(|k| copies(k, d)))
        .collect();
    // Fails the group on `d`: member `k` with `error` (`None`: its error is set already), the
    // others rolled back with it.
    let fail_on =
        |reports: &mut Vec<TableReport>, d: usize, k: usize, error: Option<TableError>| {
            if let Some(error) = error {
                reports[k].destinations[d].fail(Status::Failed, error);
            }
            for (j, r) in reports.iter_mut().enumerate() {
                if j != k && copies(j, d) {
                    r.destinations[d].fail(Status::RolledBack, group_failed(&tables[k].table));
                }
            }
        };
    // A member refused by a destination's catalog fails the group there.
    targets.retain(|&d| {
        let refused =
            (0..tables.len()).find(|&k| matches!(tables[k].destinations[d], DestPlan::Refused(_)));
        match refused {
            Some(k) => {
                fail_on(&mut reports, d, k, None);
                false
            }
            None => true,
        }
    });
    for &d in &targets {
        for (k, r) in reports.iter_mut().enumerate() {
            if copies(k, d) {
                r.destinations[d].status = Status::RolledBack;
            }
        }
    }
    // Tables outside the group that a member references must have committed there.
    let before = targets.len();
    for (k, t) in tables.iter().enumerate() {
        let mut kept = targets.clone();
        shared.referenced_committed(t, &mut kept, &mut reports[k]);
        for d in targets.clone() {
            if !kept.contains(&d) {
                fail_on(&mut reports, d, k, None);
                targets.retain(|&o| o != d);
            }
        }
    }
    // Everything still planned on `live` rolls back with `why`.
    let roll_back =
        |reports: &mut Vec<TableReport>, conns: &mut Conns, live: &[usize], why: &str| {
            end(conns.source.as_mut());
            for &d in live {
                end(conns.dests[d].as_mut());
                let why = if why == OTHER_FAILED {
                    GROUP_OTHER_FAILED
                } else {
                    why
                };
                for (k, r) in reports.iter_mut().enumerate() {
                    if copies(k, d) {
                        r.destinations[d].fail(Status::RolledBack, TableError::new(why));
                    }
                }
            }
        };
    let why_stopped = || {
        if shared.halted() {
            JOB_STOPPED
        } else {
            OTHER_FAILED
        }
    };
    if targets.is_empty() || (!options.keep_going && targets.len() < before) {
        return reports;
    }

    // The source, in the snapshot.
    let source = match ensure(&mut conns.source, shared.source) {
        Ok(conn) => conn,
        Err(e) => {
            let e = e.prefixed("source: ");
            for r in &mut reports {
                for &d in &targets {
                    r.destinations[d].fail(Status::Failed, e.clone());
                }
            }
            return reports;
        }
    };
    shared.announce(worker, leader, Side::Source, source);
    shared.stall_guard(source, true);
    if let Err(e) = begin_source(shared, source, shared.plan.snapshot.as_deref()) {
        end(Some(source));
        let e = e.prefixed("source: ");
        for r in &mut reports {
            for &d in &targets {
                r.destinations[d].fail(Status::Failed, e.clone());
            }
        }
        return reports;
    }

    // The destinations, each in one transaction, every member emptied first where planned.
    let mut live = Vec::new();
    for &d in &targets {
        let mut begun_all = true;
        for (k, t) in tables.iter().enumerate() {
            if copies(k, d)
                && let Err(e) = shared
                    .state
                    .begin(&t.table.to_string(), &shared.plan.keys[d])
            {
                fail_on(
                    &mut reports,
                    d,
                    k,
                    Some(TableError::new(format!("state file: {e}"))),
                );
                begun_all = false;
                break;
            }
        }
        if !begun_all {
            continue;
        }
        let emptied: Vec<(usize, &str, bool)> = (0..tables.len())
            .filter_map(|k| match &tables[k].destinations[d] {
                DestPlan::Copy {
                    truncate: true,
                    kind,
                    quiet_delete,
                    ..
                } => Some((k, kind.as_str(), *quiet_delete)),
                _ => None,
            })
            .collect();
        let begun = ensure(&mut conns.dests[d], &shared.destinations[d])
            .map_err(|e| (0, e))
            .and_then(|conn| {
                shared.announce(worker, leader, Side::Destination(d), conn);
                shared.stall_guard(conn, true);
                conn.execute("BEGIN")
                    .map_err(|e| (0, shared.describe(&e)))?;
                if emptied.is_empty() {
                    return Ok(());
                }
                if truncates_together(&shared.plan.tables, group, d) {
                    let sql = shared
                        .plan
                        .group_emptying(group, d)
                        .expect("it empties some member");
                    conn.execute(&sql).map_err(|e| {
                        let e = shared.describe(&e);
                        (
                            emptied[0].0,
                            TableError {
                                message: format!("emptying its group ({sql}): {}", e.message),
                                ..e
                            },
                        )
                    })?;
                } else {
                    // Children first: a member's DELETE meets no rows of the members after it.
                    for &(k, kind, quiet) in emptied.iter().rev() {
                        conn.execute(&tables[k].emptying(kind, quiet))
                            .map_err(|e| (k, shared.resumed_truncate(&e, tables[k], d)))?;
                    }
                }
                Ok(())
            });
        match begun {
            Ok(()) => live.push(d),
            Err((k, e)) => {
                end(conns.dests[d].as_mut());
                fail_on(&mut reports, d, k, Some(e));
            }
        }
    }
    if live.is_empty() || (live.len() < targets.len() && !options.keep_going) || shared.halted() {
        roll_back(&mut reports, conns, &live, why_stopped());
        return reports;
    }

    // Each member's COPY, parents first, in the same transactions; the rows each stored, by
    // member and destination (reported once committed).
    let mut counted = vec![vec![None; shared.destinations.len()]; tables.len()];
    // Each member's COPY, parents first, in the same transactions.
    for (k, t) in tables.iter().enumerate() {
        let here: Vec<usize> = live.iter().copied().filter(|&d| copies(k, d)).collect();
        if here.is_empty() {
            continue;
        }
        if k > 0 {
            (shared.events)(Event::TableStarted {
                worker,
                table: t.table.clone(),
                size: t.size,
            });
            // The watch forgets the worker's backends at a table's start: the destinations'
            // sessions, open since the group's BEGIN, are this member's now (a lock wait there
            // is reported, a signal cancels it).
            for &d in &here {
                if let Some(conn) = conns.dests[d].as_ref() {
                    shared.announce(worker, &t.table, Side::Destination(d), conn);
                }
            }
        }
        let source = conns.source.as_mut().expect("connected above");
        shared.announce(worker, &t.table, Side::Source, source);
        let outcome = {
            let producer = StatementProducer::new(source, t.send.clone());
            let mut receivers: Vec<Box<dyn Receiver + '_>> = Vec::new();
            for (d, slot) in conns.dests.iter_mut().enumerate() {
                if !here.contains(&d) {
                    continue;
                }
                let DestPlan::Copy { freeze, .. } = t.destinations[d] else {
                    continue;
                };
                receivers.push(Box::new(StatementReceiver::new(
                    slot.as_mut().expect("begun above"),
                    t.receive_for(freeze),
                )));
            }
            let progress = |rows, bytes| {
                (shared.events)(Event::Progress {
                    worker,
                    rows,
                    bytes,
                });
            };
            drive(shared, &progress, producer, receivers, None)
        };
        // Each destination of `here`: its COPY n, or its error.
        let mut ended: Vec<Result<Option<u64>, TableError>> =
            vec![Err(TableError::new("COPY did not complete")); here.len()];
        let mut source_rows = None;
        let mut source_error = None;
        match outcome {
            Driven::StartFailed {
                receivers,
                producer,
            } => {
                for (j, error) in receivers {
                    ended[j] = Err(error);
                }
                source_error = producer;
                // Every destination's transaction is in doubt of its COPY: none goes on.
                for e in &mut ended {
                    if e.is_ok()
                        || e.as_ref()
                            .is_err_and(|e| e.message == "COPY did not complete")
                    {
                        *e = Err(TableError::new(OTHER_FAILED));
                    }
                }
            }
            Driven::Ran {
                faults,
                aborted,
                summary,
                bytes,
                producer_count,
                completions,
            } => {
                source_rows = producer_count;
                for &d in &here {
                    reports[k].destinations[d].bytes = bytes;
                }
                let mut faulted = vec![None; here.len()];
                for (j, error) in faults {
                    faulted[j] = Some(error);
                }
                match summary {
                    Ok(rows) => {
                        for (j, outcome) in rows {
                            ended[j] = match faulted[j].take() {
                                Some(error) => Err(error),
                                None => outcome,
                            };
                        }
                    }
                    Err(fail) => {
                        for (j, error) in fail.receivers {
                            faulted[j].get_or_insert(error);
                        }
                        let ours = aborted
                            .as_deref()
                            .is_some_and(|a| a == OTHER_FAILED || a == JOB_STOPPED);
                        if !ours {
                            source_error = fail.producer;
                        }
                        // A destination whose COPY completed, or that our own abort
                        // stopped, is rolled back for another's failure; else it failed.
                        for (j, e) in ended.iter_mut().enumerate() {
                            let completed = completions.get(j).is_some_and(Option::is_some);
                            *e = Err(faulted[j].take().unwrap_or_else(|| match &aborted {
                                _ if completed => TableError::new(OTHER_FAILED),
                                Some(why) => TableError::new(why.clone()),
                                None => TableError::new(format!(
                                    "COPY did not complete: {}",
                                    fail.reason
                                )),
                            }));
                        }
                    }
                }
            }
        }
        reports[k].source_rows = source_rows;
        if let Some(error) = source_error {
            let error = error.prefixed("source: ");
            for &d in &here {
                fail_on(&mut reports, d, k, Some(error.clone()));
            }
            roll_back(&mut reports, conns, &live, OTHER_FAILED);
            return reports;
        }
        // Row counts, then who goes on.
        let mut failed_here = Vec::new();
        for (j, &d) in here.iter().enumerate() {
            let result = &mut reports[k].destinations[d];
            match &ended[j] {
                Ok(rows) => {
                    let check = match (source_rows, rows) {
                        (Some(sent), Some(stored)) if sent != *stored => {
                            Err(mismatch(sent, *stored))
                        }
                        (None, _) => Err("the source reported no row count".to_owned()),
                        _ => Ok(()),
                    };
                    match check {
                        Ok(()) => counted[k][d] = *rows,
                        Err(message) if options.allow_count_mismatch && source_rows.is_some() => {
                            result.warning = Some(format!("{message} (allowed)"));
                            counted[k][d] = *rows;
                        }
                        Err(message) => {
                            failed_here.push((d, refused(message, source_rows.is_some())))
                        }
                    }
                }
                Err(e) if knock_on(e) => {}
                Err(e) => failed_here.push((d, e.clone())),
            }
        }
        let knocked: Vec<usize> = here
            .iter()
            .enumerate()
            .filter(|(j, _)| ended[*j].as_ref().is_err_and(knock_on))
            .map(|(_, &d)| d)
            .collect();
        for (d, error) in failed_here.iter().cloned() {
            end(conns.dests[d].as_mut());
            fail_on(&mut reports, d, k, Some(error));
            live.retain(|&o| o != d);
        }
        if shared.halted()
            || live.is_empty()
            || !knocked.is_empty()
            || (!failed_here.is_empty() && !options.keep_going)
        {
            roll_back(&mut reports, conns, &live, why_stopped());
            return reports;
        }
    }
    if let Some(conn) = conns.source.as_mut() {
        shared.stall_guard(conn, false);
    }

    // The members' sequences, on each destination in its transaction.
    let mut carrier = Carrier::default();
    for (k, t) in tables.iter().enumerate() {
        for d in live.clone() {
            if !copies(k, d) {
                continue;
            }
            let (source, conn) = (conns.source.as_mut(), conns.dests[d].as_mut());
            if !carry(
                &mut carrier,
                t,
                d,
                source,
                conn,
                &mut reports[k].destinations[d],
            ) {
                end(conns.dests[d].as_mut());
                fail_on(&mut reports, d, k, None);
                live.retain(|&o| o != d);
            }
        }
    }
    if live.is_empty() || (live.len() < targets.len() && !options.keep_going) || shared.halted() {
        roll_back(&mut reports, conns, &live, why_stopped());
        return reports;
    }
    // The source's checksums, in the same snapshot.
    let mut sums: Vec<Option<String>> = vec![None; tables.len()];
    if options.verify {
        let conn = conns.source.as_mut().expect("connected above");
        for (k, t) in tables.iter().enumerate() {
            match checksum(conn, t) {
                Ok(sum) => sums[k] = Some(sum),
                Err(e) => {
                    for &d in &live {
                        if copies(k, d) {
                            reports[k].destinations[d].error =
                                Some(e.clone().prefixed("verify: the source's checksum failed: "));
                            reports[k].destinations[d].verified = Some(false);
                        }
                    }
                }
            }
        }
    }
    end(conns.source.as_mut());

    // Each member's COMMIT announced in the state file first, with the group's one transaction
    // id there (a resume asks the destination whether it committed): a destination where it
    // could not be is not committed.
    if !shared.halted() {
        for d in live.clone() {
            let conn = conns.dests[d].as_mut().expect("begun above");
            let unannounced = (0..tables.len()).filter(|&k| copies(k, d)).find_map(|k| {
                let rows = counted[k][d].unwrap_or(0);
                let table = tables[k].table.to_string();
                let key = &shared.plan.keys[d];
                resume::announce_commit(shared.state, &table, key, rows, vec![&mut *conn])
                    .err()
                    .map(|e| (k, e))
            });
            if let Some((k, error)) = unannounced {
                end(conns.dests[d].as_mut());
                fail_on(&mut reports, d, k, Some(error));
                live.retain(|&o| o != d);
            }
        }
    }
    if live.is_empty() || (live.len() < targets.len() && !options.keep_going) || shared.halted() {
        roll_back(&mut reports, conns, &live, why_stopped());
        return reports;
    }

    // One commit of the group per destination: core's commit machine.
    for conn in conns.dests.iter_mut().flatten() {
        shared.stall_guard(conn, false);
    }
    (shared.events)(Event::Ending { worker });
    let flags = vec![true; live.len()];
    let names: Vec<TableName> = tables.iter().map(|t| t.table.clone()).collect();
    let mut commit_options = commit::Options::new(if options.keep_going {
        Policy::KeepGoing
    } else {
        Policy::AllOrNothing
    });
    let stopped_before_commit = shared.halted();
    commit_options.copy_failed = stopped_before_commit;
    let outcome = commit_live(
        shared,
        worker,
        &mut conns.dests,
        &live,
        &names,
        commit_options,
        &flags,
    );
    let record_error = outcome.record_error.as_ref().map(|e| describe(e));
    for (j, outcome) in outcome.destinations.into_iter().enumerate() {
        let d = live[j];
        for (k, report) in reports.iter_mut().enumerate() {
            if !copies(k, d) {
                continue;
            }
            let result = &mut report.destinations[d];
            result.seconds = started.elapsed().as_secs_f64();
            match &outcome {
                Outcome::Committed => {
                    result.status = Status::Committed;
                    result.rows = counted[k][d];
                }
                Outcome::RolledBack if record_error.is_some() => result.fail(
                    Status::Failed,
                    record_error
                        .clone()
                        .expect("checked")
                        .prefixed("the two-phase decision could not be recorded: "),
                ),
                Outcome::RolledBack => {
                    result.fail(Status::RolledBack, TableError::new(why_stopped()));
                }
                Outcome::InDoubt(e) => {
                    result.status = Status::InDoubt;
                    result.error = Some(describe(e).prefixed("COMMIT in doubt: "));
                }
                Outcome::CommitPending { gid, error } => {
                    result.status = Status::InDoubt;
                    result.error = Some(describe(error).prefixed(&format!(
                        "prepared as {gid} and decided, but COMMIT PREPARED was not confirmed \
                         (copyman recover commits it): "
                    )));
                }
                Outcome::RollbackPending { gid, error } => {
                    let why = error
                        .as_ref()
                        .map(|e| format!(": {}", describe(e)))
                        .unwrap_or_default();
                    result.status = Status::Failed;
                    result.error = Some(TableError::new(format!(
                        "may hold the prepared transaction {gid} (nothing visible; copyman \
                         recover rolls it back){why}"
                    )));
                }
                other => {
                    let error = other
                        .error()
                        .map(|e| describe(e))
                        .unwrap_or_else(|| TableError::new("failed"));
                    result.fail(Status::Failed, error);
                }
            }
        }
    }
    // Checked (under verify) and recorded done, every member together, after the commit.
    for (k, t) in tables.iter().enumerate() {
        let key = t.table.to_string();
        for &d in &live {
            if !copies(k, d) || reports[k].destinations[d].status != Status::Committed {
                continue;
            }
            if let Some(sum) = &sums[k] {
                verify_dest(
                    &mut reports[k].destinations[d],
                    conns.dests[d].as_mut(),
                    t,
                    sum,
                );
            }
            record_committed(shared, &key, d, &mut reports[k].destinations[d]);
        }
    }
    sums_out.clone_from_slice(&sums);
    reports
}

/// Records a table committed on destination `d` in the state file: `done`, and under
/// [`Options::verify`] only once its checksum matched the source's; else `mismatch`, which is
/// not done (a resume empties the table there and copies it again, in one transaction), and
/// the destination's error says so.
fn record_committed(shared: &Shared<'_>, key: &str, d: usize, result: &mut DestResult) {
    let name = &shared.plan.keys[d];
    let rows = result.rows.unwrap_or(0);
    if shared.options.verify && result.verified != Some(true) {
        record_mismatch(shared, key, d, result);
        return;
    }
    if let Err(e) = shared.state.done(key, name, rows) {
        result.error = Some(TableError::new(format!(
            "committed, but the state file could not record it (a resume finds it committed \
             there, by the transaction id recorded before its COMMIT): {e}"
        )));
    }
}

/// What lets a row count that is not the source's through, said with every refusal of one: rows
/// that a trigger, a rule or a `WHERE` drops or routes on purpose. The `copyman` command says
/// the same of one table.
pub const COUNT_WAY_OUT: &str = "if a trigger, rule or WHERE drops or routes rows on purpose, \
                             --allow-count-mismatch commits what each destination stored";

/// The error of a destination that stored another number of rows than the source sent.
fn mismatch(sent: u64, stored: u64) -> String {
    format!("row count mismatch: the source sent {sent} rows, the destination stored {stored}")
}

/// A row count check's refusal: a count that is not the source's (`mismatch`) gets the way
/// out; a source that gave none does not, as `--allow-count-mismatch` does not pass it.
fn refused(message: String, mismatch: bool) -> TableError {
    if mismatch {
        TableError::new(format!("{message} ({COUNT_WAY_OUT})"))
    } else {
        TableError::new(message)
    }
}

/// A receiver (by position) and its `COPY n` or error.
type ReceiverEnd = (usize, Result<Option<u64>, TableError>);

/// Why the copy manager failed a copy as a whole.
struct Failed {
    reason: String,
    /// Receivers (by position) whose completion or abort failed.
    receivers: Vec<(usize, TableError)>,
    /// The producer's error.
    producer: Option<TableError>,
}

/// One range of a split table, as its sessions left it.
struct RangeEnd {
    /// The source's `COPY n` for the range.
    source_rows: Option<u64>,
    /// Each target destination: its `COPY n` (its transaction still open), or its error.
    dests: Vec<(usize, Result<u64, TableError>)>,
}

/// Copies one range (`send`) of a split table to `targets` on its own sessions (`conns`), in
/// `snapshot` (the one every range of the table reads in), leaving each destination's
/// transaction open where its COPY completed. `siblings` is raised by the first range whose
/// failure fails the table (see [`drive`]): the others stop.
#[allow(clippy::too_many_arguments)] // Each is one thing a range needs; a struct would only rename them.
fn copy_range(
    shared: &Shared<'_>,
    worker: usize,
    t: &TablePlan,
    snapshot: Option<&str>,
    send: &str,
    targets: &[usize],
    conns: &mut Conns,
    progress: &dyn Fn(u64, u64),
    siblings: &AtomicBool,
) -> RangeEnd {
    let end = copy_range_on(
        shared, worker, t, snapshot, send, targets, conns, progress, siblings,
    );
    // A range that failed on a destination fails the table there: under the default policy,
    // everywhere, and its siblings stop (a failure mid-COPY raised the flag already, at once).
    if !shared.options.keep_going && end.dests.iter().any(|(_, r)| r.is_err()) {
        siblings.store(true, Ordering::SeqCst);
    }
    end
}

/// [`copy_range`]'s work.
#[allow(clippy::too_many_arguments)] // As copy_range.
fn copy_range_on(
    shared: &Shared<'_>,
    worker: usize,
    t: &TablePlan,
    snapshot: Option<&str>,
    send: &str,
    targets: &[usize],
    conns: &mut Conns,
    progress: &dyn Fn(u64, u64),
    siblings: &AtomicBool,
) -> RangeEnd {
    let everywhere = |e: TableError| RangeEnd {
        source_rows: None,
        dests: targets.iter().map(|&d| (d, Err(e.clone()))).collect(),
    };
    // Another range failed the table already: this one does not start.
    if siblings.load(Ordering::SeqCst) {
        return everywhere(TableError::new(OTHER_FAILED));
    }
    let source = match ensure(&mut conns.source, shared.source) {
        Ok(conn) => conn,
        Err(e) => return everywhere(e.prefixed("source: ")),
    };
    shared.announce(worker, &t.table, Side::Source, source);
    shared.stall_guard(source, true);
    if let Err(e) = begin_source(shared, source, snapshot) {
        end(Some(source));
        return everywhere(e.prefixed("source: "));
    }
    let mut dests = Vec::new();
    let mut live = Vec::new();
    for &d in targets {
        let begun = ensure(&mut conns.dests[d], &shared.destinations[d]).and_then(|c| {
            shared.announce(worker, &t.table, Side::Destination(d), c);
            shared.stall_guard(c, true);
            c.execute("BEGIN")
                .map(|_| ())
                .map_err(|e| shared.describe(&e))
        });
        match begun {
            Ok(()) => live.push(d),
            Err(e) => {
                end(conns.dests[d].as_mut());
                dests.push((d, Err(e)));
            }
        }
    }
    if live.is_empty() {
        end(conns.source.as_mut());
        return RangeEnd {
            source_rows: None,
            dests,
        };
    }
    let outcome = {
        let source = conns.source.as_mut().expect("connected above");
        let producer = StatementProducer::new(source, send.to_owned());
        let mut receivers: Vec<Box<dyn Receiver + '_>> = Vec::new();
        for (d, slot) in conns.dests.iter_mut().enumerate() {
            if !live.contains(&d) {
                continue;
            }
            let conn = slot.as_mut().expect("begun above");
            receivers.push(Box::new(StatementReceiver::new(conn, t.receive_for(false))));
        }
        drive(shared, progress, producer, receivers, Some(siblings))
    };
    let mut source_rows = None;
    end(conns.source.as_mut());
    let mut errors: Vec<Option<TableError>> = live.iter().map(|_| None).collect();
    let mut rows: Vec<Option<u64>> = live.iter().map(|_| None).collect();
    match outcome {
        Driven::StartFailed {
            receivers,
            producer,
        } => {
            for (k, e) in receivers {
                errors[k] = Some(e);
            }
            let other = producer
                .map(|e| e.prefixed("source: "))
                .unwrap_or_else(|| TableError::new(OTHER_FAILED));
            for e in &mut errors {
                e.get_or_insert_with(|| other.clone());
            }
        }
        Driven::Ran {
            faults,
            aborted,
            summary,
            producer_count,
            completions,
            ..
        } => {
            source_rows = producer_count;
            for (k, e) in faults {
                errors[k].get_or_insert(e);
            }
            match summary {
                Ok(ends) => {
                    for (k, end) in ends {
                        match end {
                            Ok(Some(n)) => rows[k] = Some(n),
                            Ok(None) => {
                                errors[k].get_or_insert(TableError::new("no row count"));
                            }
                            Err(e) => {
                                errors[k].get_or_insert(e);
                            }
                        }
                    }
                }
                Err(fail) => {
                    for (k, e) in fail.receivers {
                        errors[k].get_or_insert(e);
                    }
                    let why = aborted.unwrap_or(fail.reason);
                    let why = match fail.producer {
                        Some(e) if why != OTHER_FAILED && why != JOB_STOPPED => {
                            e.prefixed("source: ").to_string()
                        }
                        _ => why,
                    };
                    for (k, e) in errors.iter_mut().enumerate() {
                        // Its COPY completed; another's did not.
                        let why = if completions[k].is_some() {
                            OTHER_FAILED.to_owned()
                        } else {
                            why.clone()
                        };
                        e.get_or_insert_with(|| TableError::new(why));
                    }
                }
            }
        }
    }
    for (k, &d) in live.iter().enumerate() {
        match (errors[k].take(), rows[k]) {
            (None, Some(n)) => dests.push((d, Ok(n))),
            (error, _) => {
                end(conns.dests[d].as_mut());
                dests.push((
                    d,
                    Err(error.unwrap_or_else(|| TableError::new("no row count"))),
                ));
            }
        }
    }
    // The range's transactions end in the table's commit: no socket timeout there.
    for conn in conns
        .source
        .iter_mut()
        .chain(conns.dests.iter_mut().flatten())
    {
        shared.stall_guard(conn, false);
    }
    RangeEnd { source_rows, dests }
}

/// Advances destination `d`'s sequences of `t` (in its open transaction, `conn`) to where the
/// source's stand, through `carrier` (each source sequence read once per table), into `result`:
/// a warning to say, or the error that fails the table there (then `false`: it must not commit).
fn carry(
    carrier: &mut Carrier,
    t: &TablePlan,
    d: usize,
    source: Option<&mut Connection>,
    conn: Option<&mut Connection>,
    result: &mut DestResult,
) -> bool {
    let DestPlan::Copy {
        sequences: carries, ..
    } = &t.destinations[d]
    else {
        return true;
    };
    if carries.is_empty() {
        return true;
    }
    let carried = match (source, conn) {
        (Some(source), Some(conn)) => carrier
            .carry(source, conn, carries)
            .map_err(|e| describe(e.error()).prefixed(&format!("{}: ", e.what()))),
        (None, _) => Err(TableError::new(
            "reading the source's sequences: no connection to the source",
        )),
        (_, None) => Err(TableError::new(
            "advancing its sequences: no connection to the destination",
        )),
    };
    match carried {
        Ok(said) => {
            let warnings = said
                .iter()
                .filter(|s| s.is_warning())
                .map(ToString::to_string);
            let warnings: Vec<String> = result.warning.take().into_iter().chain(warnings).collect();
            result.warning = (!warnings.is_empty()).then(|| warnings.join("; "));
            true
        }
        Err(e) => {
            result.fail(Status::Failed, e);
            false
        }
    }
}

/// Copies a table split into ranges: its ranges side by side, each on sessions of its own in one
/// snapshot (the job's, or without it one that the session counting the table exports); each
/// range's count checked against the source's for it, and their sum against the table's count
/// in the snapshot; then every range's transaction on every destination ends through one
/// commit. A table to be emptied first is never split ([`plan`]): its emptying
/// commits with its rows.
///
/// `sum_out` gets the source's checksum under verify, for [`verify_done`] too.
fn copy_split(
    shared: &Shared<'_>,
    worker: usize,
    t: &TablePlan,
    conns: &mut Conns,
    sum_out: &mut Option<String>,
) -> TableReport {
    let started = Instant::now();
    let options = shared.options;
    let key = t.table.to_string();
    let mut report = unstarted(t);
    let mut targets: Vec<usize> = (0..t.destinations.len())
        .filter(|&d| matches!(t.destinations[d], DestPlan::Copy { .. }))
        .collect();
    for &d in &targets {
        report.destinations[d].status = Status::RolledBack;
    }
    if !shared.referenced_committed(t, &mut targets, &mut report) {
        return report;
    }
    // The table's count (and checksum) in the snapshot. Without the job's snapshot
    // (`--no-snapshot`), the session that counts exports one of the table's own, and keeps its
    // transaction open until every range has imported it: the ranges and the count then read
    // one state of the table (in snapshots of their own, a row an update moves from one range's
    // pages to another's would be read twice, or not at all).
    let counted = ensure(&mut conns.source, shared.source).and_then(|source| {
        shared.announce(worker, &t.table, Side::Source, source);
        begin_source(shared, source, shared.plan.snapshot.as_deref())?;
        let own = match shared.plan.snapshot {
            Some(_) => None,
            None => Some(
                source
                    .query("SELECT pg_catalog.pg_export_snapshot()")
                    .map_err(|e| {
                        let mut e = describe(&e);
                        e.message = format!(
                            "cannot export a snapshot for its ranges ({}); a table split \
                             without the job's snapshot needs one (its ranges read it), \
                             copy it whole (a larger --split-larger-than)",
                            e.message
                        );
                        e
                    })?
                    .first()
                    .and_then(|r| r.first().cloned().flatten())
                    .ok_or_else(|| TableError::new("pg_export_snapshot() returned nothing"))?,
            ),
        };
        let total = source
            // An ordinary table (only those are split): its own rows, as its ranges read them.
            .query(&format!(
                "SELECT count(*)::text FROM {}",
                own_rows(&t.table, &t.kind)
            ))
            .map_err(|e| describe(&e))?
            .first()
            .and_then(|r| r.first().cloned().flatten())
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| TableError::new("the source's count(*) returned nothing"))?;
        let sum = if options.verify {
            Some(checksum(source, t)?)
        } else {
            None
        };
        if own.is_none() {
            end(Some(source));
        }
        Ok((total, sum, own))
    });
    let (total, source_sum, own) = match counted {
        Ok((total, source_sum, own)) => {
            sum_out.clone_from(&source_sum);
            (total, source_sum, own)
        }
        Err(e) => {
            end(conns.source.as_mut());
            for &d in &targets {
                report.destinations[d].fail(Status::Failed, e.clone().prefixed("source: "));
            }
            return report;
        }
    };
    report.source_rows = Some(total);
    // The snapshot the ranges read in: the job's, or the table's own (its exporting
    // transaction ends once the ranges are done, or on a return before they start).
    let snapshot = own.as_deref().or(shared.plan.snapshot.as_deref());
    let release = |conns: &mut Conns| {
        if own.is_some() {
            end(conns.source.as_mut());
        }
    };
    if shared.halted() {
        release(conns);
        return report;
    }
    for &d in &targets {
        if let Err(e) = shared.state.begin(&key, &shared.plan.keys[d]) {
            report.destinations[d]
                .fail(Status::Failed, TableError::new(format!("state file: {e}")));
            continue;
        }
    }
    targets.retain(|&d| report.destinations[d].error.is_none());
    if targets.is_empty() || (!options.keep_going && targets.len() < report_targets(t)) {
        release(conns);
        return report;
    }

    // The ranges, side by side.
    let n = t.ranges.len();
    let mut range_conns: Vec<Conns> = (0..n)
        .map(|_| Conns {
            source: None,
            dests: shared.destinations.iter().map(|_| None).collect(),
        })
        .collect();
    let totals: Vec<Mutex<(u64, u64)>> = (0..n).map(|_| Mutex::new((0, 0))).collect();
    let siblings = AtomicBool::new(false);
    let ends: Vec<RangeEnd> = thread::scope(|s| {
        let handles: Vec<_> = t
            .ranges
            .iter()
            .zip(range_conns.iter_mut())
            .enumerate()
            .map(|(i, (send, c))| {
                let (targets, totals, siblings) = (&targets, &totals, &siblings);
                s.spawn(move || {
                    let progress = |rows, bytes| {
                        *totals[i].lock().unwrap_or_else(PoisonError::into_inner) = (rows, bytes);
                        let (rows, bytes) = totals.iter().fold((0, 0), |(r, b), m| {
                            let (rr, bb) = *m.lock().unwrap_or_else(PoisonError::into_inner);
                            (r + rr, b + bb)
                        });
                        (shared.events)(Event::Progress {
                            worker,
                            rows,
                            bytes,
                        });
                    };
                    copy_range(
                        shared, worker, t, snapshot, send, targets, c, &progress, siblings,
                    )
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a range's copy does not panic"))
            .collect()
    });
    release(conns);
    let bytes: u64 = totals
        .iter()
        .map(|m| m.lock().unwrap_or_else(PoisonError::into_inner).1)
        .sum();

    // Every range complete on a destination, each with the source's count for it, and the sum
    // the table's count.
    for &d in &targets {
        let mut sum = 0;
        let mut error: Option<TableError> = None;
        // A count that differs from the source's (`--allow-count-mismatch` lets it commit).
        let mut off = None;
        for (i, range) in ends.iter().enumerate() {
            let label = format!("range {} of {n}", i + 1);
            match range.dests.iter().find(|(x, _)| *x == d).map(|(_, r)| r) {
                Some(Ok(stored)) => {
                    sum += stored;
                    match range.source_rows {
                        None if error.is_none() => {
                            error = Some(TableError::new(format!(
                                "{label}: the source reported no row count"
                            )));
                        }
                        Some(sent) if sent != *stored && off.is_none() => {
                            off = Some(format!("{label}: {}", mismatch(sent, *stored)));
                        }
                        _ => {}
                    }
                }
                // The range that failed says why, not a sibling that it stopped.
                Some(Err(e)) if error.as_ref().is_none_or(|k| knock_on(k) && !knock_on(e)) => {
                    error = Some(e.clone().prefixed(&format!("{label}: ")))
                }
                _ => {}
            }
        }
        if off.is_none() && sum != total {
            off = Some(format!(
                "row count mismatch: the ranges stored {sum} rows, the source's table holds {total}"
            ));
        }
        let result = &mut report.destinations[d];
        match off {
            Some(m) if options.allow_count_mismatch => {
                result.warning = Some(format!("{m} (allowed)"))
            }
            Some(m) if error.is_none() => error = Some(refused(m, true)),
            _ => {}
        }
        result.bytes = bytes;
        match error {
            Some(e) => {
                let status = if knock_on(&e) {
                    Status::RolledBack
                } else {
                    Status::Failed
                };
                result.fail(status, e);
            }
            None => result.rows = Some(sum),
        }
    }

    // The copied columns' sequences, on one of each destination's range sessions, where the
    // table goes on (a setval is not rolled back).
    let ok: Vec<(usize, Option<u64>)> = targets
        .iter()
        .filter(|&&d| report.destinations[d].error.is_none())
        .map(|&d| (d, None))
        .collect();
    if !shared.halted() && (options.keep_going || ok.len() == targets.len()) {
        let mut carrier = Carrier::default();
        for &(d, _) in &ok {
            let source = ensure(&mut conns.source, shared.source).ok();
            let conn = range_conns.iter_mut().zip(&ends).find_map(|(c, end)| {
                let open = end.dests.iter().any(|(x, r)| *x == d && r.is_ok());
                c.dests[d].as_mut().filter(|_| open)
            });
            carry(
                &mut carrier,
                t,
                d,
                source,
                conn,
                &mut report.destinations[d],
            );
        }
    }

    // Each destination's COMMITs announced in the state file first (the ids of its ranges'
    // transactions): one that could not be, is not sent.
    if !shared.halted()
        && (options.keep_going
            || targets
                .iter()
                .all(|&d| report.destinations[d].error.is_none()))
    {
        for &d in &targets {
            if report.destinations[d].error.is_some() {
                continue;
            }
            let open: Vec<&mut Connection> = range_conns
                .iter_mut()
                .zip(&ends)
                .filter_map(|(c, end)| {
                    let open = end.dests.iter().any(|(x, r)| *x == d && r.is_ok());
                    c.dests[d].as_mut().filter(|_| open)
                })
                .collect();
            let rows = report.destinations[d].rows.unwrap_or(0);
            if let Err(e) =
                resume::announce_commit(shared.state, &key, &shared.plan.keys[d], rows, open)
            {
                report.destinations[d].fail(Status::Failed, e);
            }
        }
    }
    // One commit over every range's transaction on every destination.
    let any_failed = targets
        .iter()
        .any(|&d| report.destinations[d].error.is_some());
    (shared.events)(Event::Ending { worker });
    let stopped = shared.halted();
    let mut parties_of: Vec<usize> = Vec::new();
    let mut flags = Vec::new();
    let mut announced: Vec<Announced<'_, '_, '_>> = Vec::new();
    for (i, c) in range_conns.iter_mut().enumerate() {
        for (d, slot) in c.dests.iter_mut().enumerate() {
            let open = ends[i].dests.iter().any(|(x, r)| *x == d && r.is_ok());
            if let Some(conn) = slot.as_mut().filter(|_| open) {
                parties_of.push(d);
                flags.push(report.destinations[d].error.is_none());
                announced.push(Announced {
                    conn,
                    shared,
                    worker,
                    tables: std::slice::from_ref(&t.table),
                    destination: d,
                });
            }
        }
    }
    let mut parties: Vec<&mut dyn Participant<Error = copyman_sync::Error>> = announced
        .iter_mut()
        .map(|a| a as &mut dyn Participant<Error = _>)
        .collect();
    let mut commit_options = commit::Options::new(if options.keep_going {
        Policy::KeepGoing
    } else {
        Policy::AllOrNothing
    });
    commit_options.copy_failed = (!options.keep_going && any_failed) || stopped;
    let outcome = if parties.is_empty() {
        None
    } else {
        Some(commit_table(
            shared,
            commit_options,
            &flags,
            &mut parties,
            &parties_of,
        ))
    };
    drop(parties);
    let outcomes = outcome.map(|o| o.destinations).unwrap_or_default();
    for &d in &targets {
        let mine: Vec<&Outcome<copyman_sync::Error>> = parties_of
            .iter()
            .zip(&outcomes)
            .filter(|(x, _)| **x == d)
            .map(|(_, o)| o)
            .collect();
        let result = &mut report.destinations[d];
        result.seconds = started.elapsed().as_secs_f64();
        let committed = mine.iter().filter(|o| o.is_committed()).count();
        if result.error.is_none() && committed == n && mine.len() == n {
            result.status = Status::Committed;
            // Under verify, recorded once its checksum is compared (below).
            if !options.verify {
                record_committed(shared, &key, d, result);
            }
        } else if committed > 0 || mine.iter().any(|o| o.may_hold_rows()) {
            result.status = if mine.iter().any(|o| matches!(o, Outcome::InDoubt(_))) {
                Status::InDoubt
            } else {
                Status::Failed
            };
            let why = mine
                .iter()
                .find_map(|o| o.error())
                .map(|e| describe(e).to_string())
                .unwrap_or_default();
            result.error = Some(TableError::new(format!(
                "{committed} of its {n} ranges committed, the others not ({why}): a resume \
                 truncates it and copies it again"
            )));
        } else if result.error.is_none() {
            let why = mine.iter().find_map(|o| o.error()).map(|e| describe(e));
            match why {
                Some(e) => result.fail(Status::Failed, e),
                None => result.fail(
                    Status::RolledBack,
                    TableError::new(if stopped { JOB_STOPPED } else { OTHER_FAILED }),
                ),
            }
        }
    }
    for c in &mut range_conns {
        give_up_stalled(shared, c, &mut report);
    }
    // The destinations' checksums, after their commit.
    if let Some(sum) = source_sum {
        for &d in &targets {
            if report.destinations[d].status == Status::Committed {
                let conn = ensure(&mut conns.dests[d], &shared.destinations[d]).ok();
                verify_dest(&mut report.destinations[d], conn, t, &sum);
            }
        }
    }
    if options.verify {
        for &d in &targets {
            if report.destinations[d].status == Status::Committed {
                record_committed(shared, &key, d, &mut report.destinations[d]);
            }
        }
    }
    report
}

/// Records that table `key` on destination `d` is committed but its checksum differs from the
/// source's (or could not be compared): `mismatch`, not done, and the destination's error says
/// what a resume does with it.
fn record_mismatch(shared: &Shared<'_>, key: &str, d: usize, result: &mut DestResult) {
    // If this record is lost, a table copied now has no `done` record all the same; one done
    // earlier keeps its `done`, as if it had not been compared.
    let recorded = shared
        .state
        .mismatch(key, &shared.plan.keys[d], result.rows.unwrap_or(0));
    let said =
        match recorded {
            Ok(()) => "not recorded as done: --resume empties the table there and copies it again"
                .to_owned(),
            Err(e) if result.status == Status::AlreadyDone => format!(
                "the state file could not record the mismatch ({e}): it still records the table \
             as done, and a resume skips it"
            ),
            Err(_) => "not recorded as done: --resume empties the table there and copies it again"
                .to_owned(),
        };
    match &mut result.error {
        Some(error) => error.message = format!("{}; {said}", error.message),
        None => result.error = Some(TableError::new(said)),
    }
}

/// Whether `error` only says that the copy was stopped for a failure elsewhere (another
/// destination, another range) or for the job's stop.
fn knock_on(error: &TableError) -> bool {
    error.message.ends_with(OTHER_FAILED) || error.message.ends_with(JOB_STOPPED)
}

/// How many destinations copy `t` (not done earlier, not refused).
fn report_targets(t: &TablePlan) -> usize {
    t.destinations
        .iter()
        .filter(|d| matches!(d, DestPlan::Copy { .. }))
        .count()
}

/// Compares a committed destination's checksum of `t` with the source's.
fn verify_dest(result: &mut DestResult, conn: Option<&mut Connection>, t: &TablePlan, sum: &str) {
    let Some(conn) = conn else {
        result.verified = Some(false);
        result.error = Some(TableError::new("verify: no connection to the destination"));
        return;
    };
    let theirs = conn
        .execute("BEGIN")
        .map_err(|e| describe(&e))
        .and_then(|_| checksum(conn, t));
    end(Some(conn));
    match theirs {
        Ok(theirs) if theirs == sum => result.verified = Some(true),
        Ok(theirs) => {
            result.verified = Some(false);
            result.error = Some(TableError::new(format!(
                "verify: the checksum differs from the source's (rows:sum {theirs} here, {sum} on \
                 the source)"
            )));
        }
        Err(e) => {
            result.verified = Some(false);
            result.error = Some(e.prefixed("verify: the checksum failed: "));
        }
    }
}

/// What a run of the copy manager came to.
enum Driven {
    /// It could not start: the receivers (by position) and the producer that failed.
    StartFailed {
        receivers: Vec<(usize, TableError)>,
        producer: Option<TableError>,
    },
    /// It ran.
    Ran {
        /// Receivers (by position) that faulted during the copy.
        faults: Vec<(usize, TableError)>,
        /// Why copyman aborted it.
        aborted: Option<String>,
        /// Each receiver's `COPY n` or error, or why the copy failed as a whole.
        summary: Result<Vec<ReceiverEnd>, Failed>,
        /// Bytes read from the source.
        bytes: u64,
        /// The source's `COPY n`, if it reached its end.
        producer_count: Option<u64>,
        /// By receiver (position): its `COPY n` if its COPY completed (the server accepted
        /// CopyDone), even when the copy failed after.
        completions: Vec<Option<Option<u64>>>,
    },
}

/// Runs one copy (a table's, or one range's) to its end or its abort. `siblings` ties the ranges
/// of a split table: a range whose failure fails the table raises it (any fault under the
/// default policy, a source's under keep-going), and the others abort at their next cycle
/// instead of streaming on for a table that will be rolled back.
fn drive<'a>(
    shared: &Shared<'_>,
    progress: &dyn Fn(u64, u64),
    producer: impl Producer + 'a,
    receivers: Vec<Box<dyn Receiver + 'a>>,
    siblings: Option<&AtomicBool>,
) -> Driven {
    let sibling_failed = || siblings.is_some_and(|s| s.load(Ordering::SeqCst));
    let fails_siblings = |fault: &Fault| {
        if let Some(s) = siblings
            && (!shared.options.keep_going || matches!(fault, Fault::Producer(_)))
        {
            s.store(true, Ordering::SeqCst);
        }
    };
    // The manager's policies: a destination's fault ends the copy unless keep-going, under which
    // the others complete (a failure at the end included); counts are checked unless allowed
    // to differ.
    let mut options = copyman_sync::Options::default()
        .with_check_counts(!shared.options.allow_count_mismatch)
        .with_keep_going(shared.options.keep_going);
    options.stall_timeout = shared.options.stall_timeout;
    let mut copy = match CopyManager::start_with(producer, receivers, options) {
        Ok(copy) => copy,
        Err(fail) => {
            return Driven::StartFailed {
                receivers: fail
                    .receiver_faults
                    .iter()
                    .map(|(id, e)| (id.0, shared.describe(&**e)))
                    .collect(),
                producer: fail.producer_fault.as_ref().map(|e| shared.describe(&**e)),
            };
        }
    };
    let mut faults = Vec::new();
    let mut aborted = None;
    let mut last_event = Instant::now();
    let mut last_bytes = 0;
    let interrupt = &shared.options.interrupt;
    loop {
        // Interrupted: abort whatever the policy (a fault that the caller's cancel caused is
        // the interruption too).
        if interrupt.is_interrupted() {
            aborted = Some(JOB_STOPPED.to_owned());
            break;
        }
        let Some(cycle) = copy.next() else { break };
        if interrupt.is_interrupted() {
            aborted = Some(JOB_STOPPED.to_owned());
            break;
        }
        match cycle {
            Ok(_) => {
                let (rows, bytes) = copy.totals();
                if let Some(rate) = &shared.rate {
                    let stopped = || {
                        interrupt.is_interrupted()
                            || shared.stop.load(Ordering::SeqCst)
                            || sibling_failed()
                    };
                    rate.take(bytes - last_bytes, &stopped, &|| progress(rows, bytes));
                }
                last_bytes = bytes;
                if last_event.elapsed() >= Duration::from_millis(100) {
                    last_event = Instant::now();
                    progress(rows, bytes);
                }
                if !shared.options.keep_going && shared.stop.load(Ordering::SeqCst) {
                    aborted = Some(JOB_STOPPED.to_owned());
                    break;
                }
                // Another range of the table failed it: this one's rows would be rolled back.
                if sibling_failed() {
                    aborted = Some(OTHER_FAILED.to_owned());
                    break;
                }
            }
            Err(fault) => {
                if let Fault::Receiver(faulted) = &fault {
                    for (id, error) in &faulted.faults {
                        faults.push((id.0, shared.describe(&**error)));
                    }
                }
                // Whether it ends the copy is the manager's policy (keep-going).
                if !copy.ends_copy(&fault) {
                    continue;
                }
                fails_siblings(&fault);
                aborted = Some(match &fault {
                    Fault::Receiver(_) => OTHER_FAILED.to_owned(),
                    Fault::Producer(fault) => format!("source: {}", shared.describe(&*fault.error)),
                    other => other.to_string(),
                });
                break;
            }
        }
    }
    let (rows, bytes) = copy.totals();
    progress(rows, bytes);
    let result = match &aborted {
        Some(reason) => Err(copy.abort(reason)),
        None => copy.finish(),
    };
    let (producer_count, outcomes) = match &result {
        Ok(summary) => (summary.producer_count, &summary.receivers),
        Err(fail) => (fail.producer_count, &fail.receivers),
    };
    let completions = outcomes
        .iter()
        .map(|(_, outcome)| match outcome {
            ReceiverOutcome::Completed(n) | ReceiverOutcome::Miscounted(n, _) => Some(*n),
            _ => None,
        })
        .collect();
    let summary = result.map_err(|fail| Failed {
        receivers: fail
            .receiver_faults
            .iter()
            .map(|(id, e)| (id.0, shared.describe(&**e)))
            .collect(),
        producer: fail.producer_fault.as_ref().map(|e| shared.describe(&**e)),
        reason: fail.reason,
    });
    let summary = summary.map(|summary| {
        summary
            .receivers
            .into_iter()
            .map(|(id, outcome)| {
                (
                    id.0,
                    match (&outcome, outcome.error()) {
                        (ReceiverOutcome::Completed(n), _) => Ok(*n),
                        (_, Some(e)) => Err(shared.describe(&**e)),
                        (_, None) => Err(TableError::new("unknown outcome")),
                    },
                )
            })
            .collect()
    });
    Driven::Ran {
        faults,
        aborted,
        summary,
        bytes,
        producer_count,
        completions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freeze_goes_into_the_options() {
        let t = TablePlan {
            table: TableName::parse("t").unwrap(),
            kind: "r".into(),
            size: 0,
            estimate: None,
            columns: Vec::new(),
            format: Format::Binary,
            format_reason: String::new(),
            send: String::new(),
            receive: r#"COPY "t" ("a") FROM STDIN (FORMAT binary)"#.into(),
            ranges: Vec::new(),
            destinations: Vec::new(),
            after: Vec::new(),
            referenced_by: Vec::new(),
        };
        assert_eq!(
            t.receive_for(true),
            r#"COPY "t" ("a") FROM STDIN (FORMAT binary, FREEZE)"#
        );
        assert_eq!(t.receive_for(false), t.receive);
    }

    #[test]
    fn a_table_waits_for_the_tables_it_references_except_on_a_cycle() {
        let plan = |name: &str| TablePlan {
            table: TableName::from_parts(Some("s".into()), name.into()),
            kind: "r".into(),
            size: 0,
            estimate: None,
            columns: Vec::new(),
            format: Format::Text,
            format_reason: String::new(),
            send: String::new(),
            receive: String::new(),
            ranges: Vec::new(),
            destinations: Vec::new(),
            after: Vec::new(),
            referenced_by: Vec::new(),
        };
        let mut tables: Vec<TablePlan> = ["child", "parent", "grand", "a", "b"]
            .into_iter()
            .map(plan)
            .collect();
        let name = |n: &str| format!(r#""s"."{n}""#);
        let edges = [
            (name("child"), name("parent")),
            (name("parent"), name("grand")),
            (name("a"), name("b")),
            (name("b"), name("a")),
            (name("outside"), name("parent")),
            (name("child"), name("parent")),
        ];
        order_by_foreign_keys(&mut tables, &edges);
        assert_eq!(tables[0].after, vec![1]);
        assert_eq!(tables[1].after, vec![2]);
        assert!(tables[2].after.is_empty());
        assert!(
            tables[3].after.is_empty() && tables[4].after.is_empty(),
            "a cycle"
        );
        assert_eq!(
            tables[1].referenced_by,
            vec![name("child"), name("outside")]
        );
        assert_eq!(tables[3].referenced_by, vec![name("b")]);
    }

    #[test]
    fn a_split_covers_every_page_once() {
        let copy = TableCopy {
            table: TableName::parse("t").unwrap(),
            target: None,
            columns: crate::sql::parse_columns("a").unwrap(),
            condition: None,
            header: false,
        };
        // 10 pages of 8 KiB in ranges of about 3 pages, at most 4 (--jobs).
        let ranges = split(&copy, Format::Text, 10 * 8192, 3 * 8192, 8192, 4);
        assert_eq!(
            ranges,
            [
                r#"COPY (SELECT "a" FROM ONLY "t" WHERE (ctid < '(3,0)'::pg_catalog.tid)) TO STDOUT (FORMAT text)"#,
                r#"COPY (SELECT "a" FROM ONLY "t" WHERE (ctid >= '(3,0)'::pg_catalog.tid AND ctid < '(6,0)'::pg_catalog.tid)) TO STDOUT (FORMAT text)"#,
                r#"COPY (SELECT "a" FROM ONLY "t" WHERE (ctid >= '(6,0)'::pg_catalog.tid AND ctid < '(9,0)'::pg_catalog.tid)) TO STDOUT (FORMAT text)"#,
                r#"COPY (SELECT "a" FROM ONLY "t" WHERE (ctid >= '(9,0)'::pg_catalog.tid)) TO STDOUT (FORMAT text)"#,
            ]
        );
        // At least two ranges, at most --jobs.
        assert_eq!(
            split(&copy, Format::Text, 100 * 8192, 8192, 8192, 3).len(),
            3
        );
        assert_eq!(split(&copy, Format::Text, 8192, 1, 8192, 1).len(), 2);
    }

    #[test]
    fn an_interrupt_keeps_its_first_reason_and_is_shared_by_its_clones() {
        let interrupt = Interrupt::new();
        let options = Options {
            interrupt: interrupt.clone(),
            ..Options::new("/tmp/x.state")
        };
        assert!(!options.interrupt.is_interrupted());
        interrupt.interrupt("interrupted by SIGINT");
        interrupt.interrupt("interrupted by SIGTERM");
        assert_eq!(
            options.interrupt.reason().as_deref(),
            Some("interrupted by SIGINT")
        );
    }

    #[test]
    fn the_rate_cap_does_not_sleep_through_an_interrupt() {
        // One byte a second: 1 MB would be a sleep of eleven days.
        let rate = Rate {
            per_second: 1,
            start: Instant::now(),
            used: Mutex::new(0),
        };
        let interrupt = Interrupt::new();
        let waited = std::sync::atomic::AtomicUsize::new(0);
        thread::scope(|s| {
            s.spawn(|| {
                rate.take(1 << 20, &|| interrupt.is_interrupted(), &|| {
                    // The job's watch hears that the worker waits on purpose.
                    if waited.fetch_add(1, Ordering::SeqCst) == 2 {
                        interrupt.interrupt("interrupted by SIGINT");
                    }
                });
            });
        });
        assert_eq!(waited.load(Ordering::SeqCst), 3);
        assert_eq!(*rate.used.lock().unwrap(), 1 << 20);
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
    }

    #[test]
    fn the_checksum_names_every_column() {
        let table = TableName::parse("s.t").unwrap();
        let columns = crate::sql::parse_columns(r#"a, "B""#).unwrap();
        let q = checksum_query(&table, &columns, "p");
        assert!(q.contains(r#"md5(ROW("a", "B")::text)"#), "{q}");
        assert!(q.ends_with(r#"FROM "s"."t""#), "{q}");
        // An ordinary table's own rows, as its copy reads them (not its children's).
        let q = checksum_query(&table, &columns, "r");
        assert!(q.ends_with(r#"FROM ONLY "s"."t""#), "{q}");
    }
}
