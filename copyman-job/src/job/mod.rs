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
//!
//! Its files, each named for what it holds: `options` (how a job runs: [`Options`], [`Server`],
//! [`Interrupt`]), `error` ([`TableError`], [`JobError`], [`describe`]), `planning` ([`plan`]:
//! [`Plan`], [`TablePlan`], [`DestPlan`], and the foreign keys, partitions and ranges that shape
//! them), `report` ([`Event`], [`JobReport`], [`Status`]), `running` ([`run`]: the workers, the
//! queue, the end of each table), `sessions` (a worker's connections, given up when stalled),
//! `drive` (one COPY through the copy manager), `whole`, `group` and `ranges` (a table copied
//! whole, tables linked by foreign keys copied as one unit, a large table copied in ctid ranges)
//! and `verify` (the checksums).

mod drive;
mod error;
mod group;
mod options;
mod planning;
mod ranges;
mod report;
mod running;
mod sessions;
mod verify;
mod whole;

pub use self::error::{
    COUNT_WAY_OUT, JobError, TableError, db_error, describe, describe_with, error_chain, one_line,
};
pub use self::options::{Connect, DEFAULT_JOBS, Interrupt, Options, Server};
pub use self::planning::{
    DestPlan, Plan, TablePlan, covered_by, identity, plan, plan_with, refuse_rows_of_jobs, split,
};
pub use self::report::{Answer, DestResult, Event, JobReport, Notice, Side, Status, TableReport};
pub use self::running::{first_names, run};
pub use crate::resume::{Backend, ResumeWait};
