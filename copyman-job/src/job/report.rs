//! What a running job says: the [`Event`]s it tells as it goes (a session's [`Side`] among
//! them), and at its end a [`JobReport`] of [`TableReport`]s, each with a [`DestResult`] and its
//! [`Status`] per destination.

use copyman_sync::DbError;

use super::error::TableError;
#[cfg(doc)]
use super::{Interrupt, Options, plan_with};
use crate::commit;
use crate::resume::ResumeWait;
use crate::sql::{Format, TableName};

/// Where the answer to a statement that ends a transaction stands ([`Event::CommitStep`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Sent, not answered yet: whether it takes effect only its answer will say.
    Awaited,
    /// Answered: it took effect.
    TookEffect,
    /// The server answered with an error (its words), or its session was known gone before
    /// the statement was sent: nothing of it took effect.
    Refused(String),
    /// The connection broke after it was sent, before its answer: whether it took effect is
    /// unknown (the final report says how the table ended).
    Lost,
}

impl Answer {
    /// Whether it is still awaited.
    pub fn is_awaited(&self) -> bool {
        matches!(self, Self::Awaited)
    }

    /// Whether it took effect.
    pub fn took_effect(&self) -> bool {
        matches!(self, Self::TookEffect)
    }

    /// The server's words, if it refused the statement.
    pub fn refusal(&self) -> Option<&str> {
        match self {
            Self::Refused(why) => Some(why),
            _ => None,
        }
    }
}

/// How a table ended on a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Status {
    /// Committed in this run (and recorded).
    Committed,
    /// Recorded done by an earlier run: skipped.
    AlreadyDone,
    /// Done by an earlier run, but `--verify` found its checksum different from the source's
    /// now (it changed there since): no longer recorded as done, nor copied again by this run.
    Differs,
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
    /// A table split into ranges whose commit stopped midway there: some ranges committed (their
    /// rows are the result's `rows`), the others not. A resume of a job that empties its tables
    /// (`--truncate`) empties it and copies it again; an append's resume refuses it (emptying
    /// it would delete rows the job did not write).
    PartlyCommitted,
}

impl Status {
    /// A short name: `committed`, `already done`, `differs`, `failed`, `rolled back`,
    /// `not started`, `in doubt`, `interrupted`, `partly committed`.
    pub fn name(self) -> &'static str {
        match self {
            Self::PartlyCommitted => "partly committed",
            Self::Committed => "committed",
            Self::AlreadyDone => "already done",
            Self::Differs => "differs",
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

/// How a split table's error says its ranges ended apart: "1 of its 3 ranges committed, …"
/// ([`DestResult::ranges_apart`]).
pub(super) const RANGES_COMMITTED: &str = " ranges committed";

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
    /// `--verify`: whether its checksum equals the source's (`None`: not compared).
    pub verified: Option<bool>,
    /// `--verify`: a checksum (its own or the source's) could not be computed (a session
    /// terminated, a server gone): not compared, so neither done nor found different; the error
    /// says why. A resume compares it again.
    pub unverified: bool,
    /// `--verify`: the checksum it matched the source's with, recorded with its `done` so that
    /// a resume compares it with that, not with the source as it is then.
    pub checksum: Option<String>,
    /// What the caller should hear about a table that did commit (a row count that differs
    /// from the source's, under [`Options::allow_count_mismatch`]).
    pub warning: Option<String>,
}

impl DestResult {
    pub(super) fn new(status: Status) -> Self {
        Self {
            status,
            rows: None,
            bytes: 0,
            seconds: 0.0,
            error: None,
            verified: None,
            unverified: false,
            checksum: None,
            warning: None,
        }
    }

    /// A split table whose ranges ended apart there: some committed, or may have (a COMMIT not
    /// answered), and others not. A resume without `--truncate` refuses it: the destination
    /// may hold rows this job did not write, which emptying it would delete.
    pub fn ranges_apart(&self) -> bool {
        matches!(self.status, Status::PartlyCommitted | Status::InDoubt)
            && self
                .error
                .as_ref()
                .is_some_and(|e| e.message.contains(RANGES_COMMITTED))
    }

    /// Marks it ended with `status` and `error`, unless it already has an error (the first
    /// stands, with its status).
    pub(super) fn fail(&mut self, status: Status, error: TableError) {
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
    /// What the servers said while it was copied and committed (NOTICE, WARNING, …: a
    /// destination's trigger, a server that shut down under the copy), on which side, in order
    /// per session; a group's on its first member. At most
    /// [`KEPT_MESSAGES`](copyman_core::session::KEPT_MESSAGES) per session and table, and 100
    /// in all (a job keeps every table's to its end).
    pub notices: Vec<Notice>,
    /// The notices the servers sent during it that were not kept, counted.
    pub notices_dropped: u64,
}

/// A notice a server sent during a table's copy ([`TableReport::notices`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    /// Whose session said it.
    pub side: Side,
    /// What it said, field by field.
    pub notice: DbError,
    /// How many times it said it during the table (the same side and text: a trigger's notice
    /// per row is one entry).
    pub times: u64,
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
                .all(|d| d.status.is_done() && d.verified != Some(false) && !d.unverified)
        })
    }

    /// Whether this run committed anything.
    pub fn committed_any(&self) -> bool {
        self.tables.iter().any(|t| {
            t.destinations.iter().any(|d| {
                matches!(
                    d.status,
                    Status::Committed | Status::InDoubt | Status::PartlyCommitted
                )
            })
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
    /// A committed destination's session is about to compute a `--verify` checksum of the
    /// worker's table (a read, after the table's COMMIT): its backend, for a caller that cancels
    /// it on a signal, whatever the worker's transactions' end. It stands until the worker's
    /// next table.
    Checksum {
        /// The worker.
        worker: usize,
        /// The destination, by position (0-based).
        destination: usize,
        /// The backend's process id.
        pid: i32,
        /// What cancels what the backend runs.
        cancel: Option<copyman_sync::CancelToken>,
    },
    /// Under [`Options::verify`], a worker computes the source's checksum of a table (a read of
    /// each of its rows, in the job's snapshot): no data moves meanwhile, for about as long as
    /// the table's copy took. It stands until the worker's next event (the destinations'
    /// checksums are [`Event::Checksum`]s).
    Verifying {
        /// The worker.
        worker: usize,
        /// The table.
        table: TableName,
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
        /// What cancels what the backend runs (a CancelRequest sent, on a new connection, to
        /// the address its session is on, as libpq's `PQcancel` does).
        cancel: Option<copyman_sync::CancelToken>,
        /// What closes its session from another thread (a destination frozen at the end of its
        /// COPY with its data unread: the caller's watch gives it up).
        closer: Option<copyman_sync::Closer>,
    },
    /// A worker's copy of a table started streaming: what it waits for, readable from another
    /// thread while it runs ([`UnderWay`](copyman_core::run::UnderWay): the source's data, a
    /// destination's socket that takes no more), for a caller that says what a copy that stopped
    /// moving waits on. A split table's ranges stream side by side, each its own copy: one event
    /// each.
    Copying {
        /// The worker.
        worker: usize,
        /// What its copy waits for now.
        under_way: copyman_core::run::UnderWay,
        /// The destination (0-based) each of its receivers is, in their order.
        destinations: Vec<usize>,
        /// Each receiver's backend (its process id), in their order, where known: a split table's
        /// ranges copy to one destination each on a backend of its own.
        backends: Vec<Option<i32>>,
        /// What interrupts it from another thread (a signal's): an endpoint that then moves
        /// nothing for [`copyman_sync::INTERRUPT_GRACE`] is given up, so that the copy ends,
        /// and the table rolls back, even where a server froze.
        interrupter: Option<copyman_sync::Interrupter>,
        /// The payload bytes the copy sent each of its receivers so far, kept up to date: what
        /// a destination's `pg_stat_progress_copy` reads up to.
        sent: std::sync::Arc<std::sync::atomic::AtomicU64>,
    },
    /// A worker's copy of a table is over and its transactions end now (`COMMIT` or
    /// `ROLLBACK`): its backends must no longer be cancelled.
    Ending {
        /// The worker.
        worker: usize,
    },
    /// A statement that ends a table's transaction on a destination (`COMMIT`, `PREPARE
    /// TRANSACTION`, `COMMIT PREPARED`, `ROLLBACK`, …) is sent ([`Answer::Awaited`]), or how it
    /// ended. Such a statement is never cancelled nor timed out (only the server's answer says
    /// whether it committed): a caller that sees one wait can only say so, and one that must
    /// exit at once can say what may have committed.
    CommitStep {
        /// The worker.
        worker: usize,
        /// The table.
        table: TableName,
        /// The destination (0-based).
        destination: usize,
        /// Its backend's process id, if the server gave it.
        pid: Option<i32>,
        /// The backend whose session this one replaces, the statement sent again on a new
        /// session once that one was lost: its step is this one's from now on.
        replaces: Option<i32>,
        /// The statement.
        action: commit::Action,
        /// Where its answer stands.
        answer: Answer,
    },
    /// Under [`Options::two_phase`], the commit decision of `tables` (a table, or the members
    /// of a foreign-key group) is recorded in the decision log: they commit from now on, and
    /// what a stop leaves prepared of them `copyman recover` commits.
    Decided {
        /// The tables.
        tables: Vec<TableName>,
    },
    /// Under [`Options::two_phase`], copyman writes a commit decision to its decision log now
    /// (`Some`: the log) or is done writing it (`None`): a write made durable (fsync), which a
    /// slow disk can make last while every server waits for copyman (dups49 F1).
    Recording {
        /// The decision log, while the write lasts.
        log: Option<std::path::PathBuf>,
        /// The tables of the decision (a table, or the members of a foreign-key group): what
        /// is prepared of them is in doubt while the write lasts.
        tables: Vec<TableName>,
    },
    /// While planning ([`plan_with`]), before a resume waits for a transaction an earlier run
    /// announced on a destination and that is still in progress there: what it waits for, and
    /// how long at most (then it goes on if the transaction ended, or refuses the resume).
    ResumeWait(ResumeWait),
    /// While planning ([`plan_with`]), before each table's plan is made: how many tables were
    /// planned so far, of how many (a selection of thousands takes a while: each server's
    /// catalog is read a few hundred tables at a time).
    Planning {
        /// Tables planned so far.
        done: usize,
        /// Tables selected.
        total: usize,
    },
    /// A worker finished a table (whatever the outcome).
    TableFinished {
        /// The worker.
        worker: usize,
        /// How it went.
        report: TableReport,
    },
    /// Under [`Options::verify`], once every table is done: the tables verified on a
    /// destination where triggers of the user's ran as tables were written are compared with
    /// the source again, since a trigger may have changed one after its own check (their
    /// comparisons are [`Event::Backend`]s of worker 0).
    VerifyingAgain {
        /// The destination, by position (0-based).
        destination: usize,
        /// How many tables are compared again.
        tables: usize,
        /// The tables whose writes there fired triggers.
        triggers: Vec<String>,
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
