//! Ending a copy's transactions on blocking connections: core's [`Commit`] carried out, the
//! two-phase decision log, and recovery of what a crash left prepared.
//!
//! Every decision (what runs where, in which order, what a failure means) is core's
//! ([`copyman_core::commit`]); this module only runs the statements and writes the log.
//!
//! ```no_run
//! use copyman_job::commit::{self, Commit, DecisionLog, Options, Participant};
//! use copyman_sync::Connection;
//!
//! # fn copy_into(_: &mut [Connection]) {}
//! let mut dests = vec![
//!     Connection::connect_str("host=10.0.0.2 user=app dbname=shop")?,
//!     Connection::connect_str("host=10.0.0.3 user=app dbname=shop")?,
//! ];
//! for d in &mut dests {
//!     d.execute("BEGIN")?;
//! }
//! copy_into(&mut dests); // a CopyManager run into every destination
//!
//! // All or nothing across the servers: two-phase commit under a durable decision.
//! let log = DecisionLog::open("/var/lib/app/copyman-decisions.log")?;
//! let run = DecisionLog::new_run_id();
//! let _guard = log.lock_run(&run)?;
//! let options = Options { two_phase: Some(run), ..Options::default() };
//! let mut parties: Vec<&mut dyn Participant<Error = copyman_sync::Error>> =
//!     dests.iter_mut().map(|c| c as &mut dyn Participant<Error = _>).collect();
//! let report = commit::run(
//!     Commit::new(options, &[true, true]),
//!     &mut parties,
//!     None,
//!     |d| log.record(d).map_err(copyman_sync::Error::Io),
//!     |step| {
//!         let _ = log.note(step); // best effort: the run goes on either way
//!     },
//! );
//! assert!(report.succeeded());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use copyman_core::commit::{
    Action, Commit, Decision, Failure, GID_PREFIX, LOST_BACKEND_WAIT, Options, Outcome, Party,
    Policy, Recovery, Report, Resend, SourceOutcome, Step, lock_holders_sql, parse_gid,
    partly_ended, partly_ended_given, recovery, valid_run_id,
};

use copyman_core::session::{DbError, SessionError};

use crate::sql;
use copyman_sync::{Connection, Error};

/// Something whose transaction a [`Commit`] ends: a server connection, or (in an application)
/// anything with commit and rollback, such as a file written beside its final name.
pub trait Participant {
    /// The error a failed step carries into the report.
    type Error;

    /// Carries out `action`. [`Failure::Refused`] when it certainly did not take effect,
    /// [`Failure::Lost`] when that is unknown.
    fn run(&mut self, action: &Action) -> Result<(), Failure<Self::Error>>;
}

impl Participant for Connection {
    type Error = Error;

    fn run(&mut self, action: &Action) -> Result<(), Failure<Error>> {
        // A server that ended the session before the statement was sent (a terminated backend's
        // FATAL, waiting in the socket) refused it: its transaction is gone, nothing took effect.
        if let Err(e) = self.check() {
            return match action {
                // The server rolls back what a closed session left.
                Action::Rollback => Ok(()),
                _ => Err(Failure::Refused(e)),
            };
        }
        // Nothing to roll back where no transaction is open (a failed PREPARE TRANSACTION ended
        // it): core says so from the session's transaction status.
        if !action.is_due(self.session().transaction_status()) {
            return Ok(());
        }
        let said_before = self.session().notice_mark();
        // An interrupt cuts the wait for an answer only where it decides nothing (core's rule).
        let interrupter = action.awaited().then(|| self.take_interrupter()).flatten();
        let result = self.execute(&action.sql());
        if interrupter.is_some() {
            self.set_interrupter(interrupter);
        }
        // A trigger may have turned synchronous_commit off for the transaction (it outlives the
        // session's own setting to the COMMIT): made durable again with the check of its
        // constraints, which the commit runs first on every party that writes and after which
        // nothing of the user's runs — so that the statement sent next is the COMMIT itself
        // (asked just before it, a server that did not answer was said to hold a COMMIT sent).
        let result = match (action, result) {
            (Action::CheckConstraints, Ok(_)) => self.execute(sql::DURABLE_COMMIT),
            (_, result) => result,
        };
        match result {
            Ok(_) => Ok(()),
            // An ERROR answers the statement: it did not take effect.
            Err(e) if e.db_error().is_some_and(|db| !db.is_fatal()) => Err(Failure::Refused(e)),
            // The server said it committed before the connection broke (a terminated wait for a
            // synchronous standby); its WARNING stays queued for the caller to show.
            Err(_) if action.committed_despite_loss(self.session().notices_since(said_before)) => {
                Ok(())
            }
            Err(e) => Err(Failure::Lost(e)),
        }
    }
}

/// Runs `action` on `conn` as [`Participant::run`] does; an action any session can carry out
/// ([`Action::finishes_anywhere`]) that failed because the session was lost (before the
/// statement was sent, or before its answer) is sent again on a new session from `connect`,
/// which then replaces `conn`. Its answer there stands, except that a transaction found gone
/// there (42704) after a statement that was sent and not answered leaves that loss as the
/// outcome: the lost statement may have finished it; and that a `ROLLBACK PREPARED` finds its
/// transaction gone, and the lost session's backend gone too (none can still prepare it: a
/// `PREPARE TRANSACTION` whose answer was lost), is done: nothing of it is left. Refused there
/// while the lost session's backend still holds the transaction, it is sent again once that
/// backend ended ([`Action::held_by_the_lost_backend`]). A `COMMIT PREPARED` that commits
/// there after its server's statistics were reset since the PREPARE is asked what crash
/// recovery took of the UNLOGGED tables it wrote ([`crash_suspect`]): [`Failure::Emptied`]
/// when some hold none of its rows, or cannot be told to.
///
/// # Errors
/// As [`Participant::run`].
pub fn run_on_a_live_session(
    conn: &mut Connection,
    action: &Action,
    connect: &dyn Fn() -> Result<Connection, Error>,
) -> Result<(), Failure<Error>> {
    let first = Participant::run(conn, action);
    let lost = match &first {
        Err(Failure::Lost(_)) => true,
        Err(Failure::Refused(e)) if e.is_closed() => false,
        _ => return first,
    };
    if !action.finishes_anywhere() {
        return first;
    }
    let mut fresh = match connect_while_restarting(connect) {
        Ok(fresh) => fresh,
        Err(refused) => {
            // The error that decides the outcome, and what must be fixed before a recovery can
            // finish it: said with the server's other words on this connection.
            let mut said = conn.take_notices();
            said.push(refused_retry(action, &refused));
            conn.keep_notices(said);
            return first;
        }
    };
    let old_backend = conn.session().backend_key().map(|(pid, _)| pid);
    // The lost session may have been lost to a crash of its server, which emptied the UNLOGGED
    // tables the prepared transaction wrote: asked while it still holds their locks, what it
    // took once committed.
    let suspect = match action {
        Action::CommitPrepared(gid) => crash_suspect(&mut fresh, gid),
        _ => None,
    };
    let mut again = Participant::run(&mut fresh, action);
    // The lost session's backend may hold the transaction a moment longer (core's rule).
    let since = Instant::now();
    while let Err(Failure::Refused(e)) = &again {
        let alive = || old_backend.is_some_and(|pid| backend_alive(&mut fresh, pid));
        let not_there = e.code() == Some("42704");
        match action.resend(e.code(), since.elapsed(), alive) {
            Resend::No => break,
            Resend::AfterPause => {
                thread::sleep(Resend::pause(since.elapsed()));
                // Not prepared yet: asked again without an error until it shows (each
                // refusal is an ERROR in its server's log).
                if not_there && !prepared_now(&mut fresh, action) {
                    continue;
                }
            }
            Resend::Last => {
                again = Participant::run(&mut fresh, action);
                break;
            }
        }
        again = Participant::run(&mut fresh, action);
    }
    let gone = |fresh: &mut Connection| {
        matches!(action, Action::RollbackPrepared(_))
            && old_backend.is_some_and(|pid| !backend_alive(fresh, pid))
    };
    let result = match again {
        Err(Failure::Refused(e)) if e.code() == Some("42704") && gone(&mut fresh) => Ok(()),
        Err(Failure::Refused(e)) if lost && e.code() == Some("42704") => Err(Failure::Lost(e)),
        again => CrashSuspect::judge(suspect, &mut fresh, again),
    };
    // What the lost session's server said (a trigger's warning, its FATAL's notice) stays.
    fresh.take_over_notices(conn);
    *conn = fresh;
    result
}

/// How long a new session to finish a statement is asked for again while its server restarts.
const RESTART_PATIENCE: Duration = Duration::from_secs(10);

/// `connect()`, asked again for up to [`RESTART_PATIENCE`] while its server says it cannot take
/// a session yet (57P03: starting up, in recovery after a crash of one of its backends): a
/// backend killed takes its server through a crash restart of well under a second, and a
/// retry at once was refused, leaving the transaction prepared for a recover (commit74 F1). A
/// server that refuses the connection (stopped) or shuts down is not waited for.
fn connect_while_restarting(
    connect: &dyn Fn() -> Result<Connection, Error>,
) -> Result<Connection, Error> {
    let since = Instant::now();
    loop {
        match connect() {
            Err(e) if since.elapsed() < RESTART_PATIENCE && restarting(&e) => {
                thread::sleep(Duration::from_millis(250));
            }
            done => return done,
        }
    }
}

/// Whether a connect's error says its server is on its way back: 57P03, not for a shutdown.
fn restarting(e: &Error) -> bool {
    e.db_error()
        .is_some_and(|db| db.code == "57P03" && !db.message.contains("shutting down"))
}

/// The severity of a notice in copyman's own words, which no server said (a server's is never
/// empty): printed as copyman's, not in a server's `ERROR:  …` form (signals41 F2).
pub const OWN_WORDS: &str = "";

/// A new session's refusal to carry out `action` (its connect failed), as the notice it is said
/// with, in copyman's words ([`OWN_WORDS`]): with the server's own error quoted (a FATAL such as
/// 57P03, the database system is shutting down) where it gave one, and its SQLSTATE — printed
/// in a server's `FATAL:  …` form, copyman's words passed for the server's (signals43 F5).
fn refused_retry(action: &Action, refused: &Error) -> DbError {
    let what = format!("a new session to send {} again", action.sql());
    match refused.db_error() {
        Some(db) => DbError::new(
            OWN_WORDS,
            &db.code,
            &format!(
                "{what} was refused by the server: {}: {} (SQLSTATE {})",
                db.severity, db.message, db.code
            ),
        ),
        None => DbError::new(OWN_WORDS, "08006", &format!("{what} failed: {refused}")),
    }
}

/// What may have taken rows of prepared transaction `gid`: its server's statistics reset since
/// it was prepared, as crash recovery resets them, and it wrote UNLOGGED tables, which crash
/// recovery empties ([`sql::CRASH_SINCE_PREPARED`]); `None` when not, or when that cannot be
/// told. Asked on a session of the transaction's database before it is finished (its locks
/// name the tables); what was taken is asked once it committed ([`CrashSuspect::emptied`]).
pub fn crash_suspect(conn: &mut Connection, gid: &str) -> Option<CrashSuspect> {
    let sql = sql::CRASH_SINCE_PREPARED.replace("{}", &sql::literal(gid));
    let row = conn.query(&sql).ok()?.into_iter().next()?;
    let field = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
    let unlogged: Vec<String> = (field(1).split(',').filter(|o| !o.is_empty()))
        .map(str::to_owned)
        .collect();
    (!unlogged.is_empty()).then(|| CrashSuspect {
        xid: field(0),
        unlogged,
        unlogged_names: field(2),
        kept: field(3),
    })
}

/// A prepared transaction that wrote UNLOGGED tables, its server's statistics reset since it
/// was prepared: crash recovery may have emptied them ([`crash_suspect`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrashSuspect {
    /// Its transaction id.
    xid: String,
    /// The UNLOGGED tables it wrote (oids).
    unlogged: Vec<String>,
    /// Their names (`a, b`).
    pub unlogged_names: String,
    /// The other tables it wrote, whose rows a crash keeps (`c, d`; empty when none).
    kept: String,
}

impl CrashSuspect {
    /// What the `COMMIT PREPARED` of a transaction suspected before it was sent (`suspect`)
    /// comes to, given its `result` on `conn` (of its database): where it took effect and a
    /// crash took rows it wrote ([`CrashSuspect::emptied`]), that party's failure,
    /// [`Failure::Emptied`] (its transaction committed); else `result`. One rule for a run's
    /// new session and `copyman recover`.
    pub fn judge(
        suspect: Option<Self>,
        conn: &mut Connection,
        result: Result<(), Failure<Error>>,
    ) -> Result<(), Failure<Error>> {
        match (result, suspect) {
            (Ok(()), Some(suspect)) => match suspect.emptied(conn) {
                Some(emptied) => Err(Failure::Emptied(emptied_error(&emptied))),
                None => Ok(()),
            },
            (result, _) => result,
        }
    }

    /// Once its transaction committed (on `conn`, of its database): what the crash took of the
    /// UNLOGGED tables it wrote — those holding none of its rows —, those of which that cannot
    /// be told, and the others it wrote; `None` when every one holds some of its rows. A table
    /// that cannot be read (no SELECT privilege, a lock held for more than a second) is told
    /// by its size (no privilege asked), empty when emptied; else, or where the size cannot be
    /// asked either, it cannot be told (recheck56 F1: taken as kept, "committed", exit 0). A
    /// copy of no rows into one also holds none: its caller knows the count.
    pub fn emptied(&self, conn: &mut Connection) -> Option<Emptied> {
        let first = |conn: &mut Connection, sql: &str| -> Result<String, String> {
            let rows = conn.query(sql).map_err(|e| e.to_string())?;
            let value = rows.into_iter().next().and_then(|r| r.into_iter().next());
            Ok(value.flatten().unwrap_or_default())
        };
        let _ = conn.execute("SET lock_timeout = 1000");
        let (mut tables, mut unknown) = (Vec::new(), Vec::new());
        for oid in &self.unlogged {
            let named = first(conn, &format!("SELECT {oid}::pg_catalog.regclass::text"));
            let Ok(name) = named.map(|n| if n.is_empty() { oid.clone() } else { n }) else {
                continue;
            };
            let sql = sql::HOLDS_NONE_OF
                .replacen("{}", &name, 1)
                .replacen("{}", &self.xid, 1);
            let size = format!("SELECT (pg_catalog.pg_relation_size({oid}) = 0)::text");
            match first(conn, &sql).or_else(|read| match first(conn, &size) {
                Ok(empty) if empty == "true" => Ok(empty),
                _ => Err(read),
            }) {
                Ok(none) if none == "true" => tables.push(name),
                Ok(_) => {}
                Err(why) => unknown.push(format!("{name} ({why})")),
            }
        }
        let _ = conn.execute("RESET lock_timeout");
        (!tables.is_empty() || !unknown.is_empty()).then(|| Emptied {
            tables: tables.join(", "),
            unknown: unknown.join(", "),
            kept: self.kept.clone(),
        })
    }
}

/// What crash recovery since a prepared transaction was prepared took of what it wrote
/// ([`CrashSuspect::emptied`]): lists to say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emptied {
    /// The UNLOGGED tables emptied (`a, b`; empty when none).
    pub tables: String,
    /// The UNLOGGED tables of which that cannot be told, each with why (`a (…)`).
    pub unknown: String,
    /// The other tables it wrote, whose rows it keeps (empty when none).
    pub kept: String,
}

impl Emptied {
    /// What its commit did, in copyman's words (beginning with [`EMPTIED`]; with
    /// [`NONE_KEPT`] when none of its rows is there).
    pub fn words(&self) -> String {
        let crash = "its server ran crash recovery since the transaction was prepared, which \
                     empties UNLOGGED tables";
        let only = self.kept.is_empty() && self.unknown.is_empty();
        let mut said = match (self.tables.as_str(), only) {
            ("", _) => format!("{EMPTIED}, but"),
            (tables, true) => {
                return format!(
                    "{NONE_KEPT}: {crash}, and {tables} lost the rows copied (the commit was \
                     decided: copy them again)"
                );
            }
            (tables, false) => {
                format!("{EMPTIED} without the rows it wrote into {tables}: {crash};")
            }
        };
        if !self.unknown.is_empty() {
            said.push_str(&format!(
                " whether {} kept the rows it wrote cannot be told: its server's statistics \
                 were reset since the transaction was prepared, as crash recovery resets them, \
                 which empties UNLOGGED tables (count them there before copying again);",
                self.unknown
            ));
        }
        if !self.kept.is_empty() {
            said.push_str(&format!(
                " those it wrote into {} are committed (empty them there before copying again, \
                 as --truncate does);",
                self.kept
            ));
        }
        said.pop();
        said
    }
}

/// How [`Emptied::words`] begin (a caller that says a failed commit's error after its own
/// words leaves them out for this one: it did commit).
pub const EMPTIED: &str = "its transaction committed";

/// How [`Emptied::words`] begin where none of its rows is there: the destination holds nothing
/// of the copy (elsewhere it holds some, or may).
pub const NONE_KEPT: &str = "its transaction committed without any of its rows";

/// A prepared transaction committed without the rows crash recovery emptied since it was
/// prepared ([`Emptied`]): its failure, in copyman's words (SQLSTATE 57P02, the crash's own).
pub fn emptied_error(emptied: &Emptied) -> Error {
    Error::Session(SessionError::Db(Box::new(DbError::new(
        OWN_WORDS,
        "57P02",
        &emptied.words(),
    ))))
}

/// Whether backend `pid` is still there, asked on `conn` (another session on its server);
/// `true` when that cannot be told.
/// Whether the transaction a `COMMIT PREPARED` or `ROLLBACK PREPARED` names is prepared on
/// `conn`'s server now (`true` where that cannot be told: the statement then asks).
fn prepared_now(conn: &mut Connection, action: &Action) -> bool {
    let (Action::CommitPrepared(gid) | Action::RollbackPrepared(gid)) = action else {
        return true;
    };
    conn.query(&format!(
        "SELECT count(*) FROM pg_catalog.pg_prepared_xacts WHERE gid = '{}'",
        gid.replace('\'', "''")
    ))
    .ok()
    .and_then(|rows| rows.first().and_then(|r| r.first().cloned().flatten()))
    .is_none_or(|n| n != "0")
}

/// A PREPARE TRANSACTION's wait bounded by `--stall-timeout` ([`PrepareBound::arm`]): it decides
/// nothing, and one waiting for a synchronous standby that is not there held the run for ever
/// (commit68 F10; a job's, recheck70 F4), its backend active, so that no socket's timeout ends
/// it.
pub struct PrepareBound {
    /// The connection's interrupter (a signal's), put back after.
    shared: Option<copyman_sync::Interrupter>,
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
    fired: std::sync::Arc<std::sync::atomic::AtomicBool>,
    timer: thread::JoinHandle<()>,
}

impl PrepareBound {
    /// Gives `conn` an interrupter of its own that a timer interrupts once `limit` passed (or
    /// once the signal's interrupter it had is): the wait then ends as a signal's does, once
    /// its server moved nothing for the interrupt's grace — the connection closed, its backend
    /// cancelled, the transaction maybe prepared and rolled back prepared by the commit's
    /// abort. `None` where no interrupter can be made (the wait is then not bounded).
    pub fn arm(conn: &mut Connection, limit: Duration) -> Option<Self> {
        use std::sync::atomic::{AtomicBool, Ordering};
        let own = copyman_sync::Interrupter::new().ok()?;
        let shared = conn.take_interrupter();
        conn.set_interrupter(Some(own.clone()));
        let (done, fired) = (
            std::sync::Arc::new(AtomicBool::new(false)),
            std::sync::Arc::new(AtomicBool::new(false)),
        );
        let (stop, fire, signal) = (done.clone(), fired.clone(), shared.clone());
        let timer = thread::spawn(move || {
            let started = Instant::now();
            while !stop.load(Ordering::SeqCst) {
                if signal.as_ref().is_some_and(|s| s.is_interrupted()) {
                    own.interrupt();
                    return;
                }
                if started.elapsed() >= limit {
                    fire.store(true, Ordering::SeqCst);
                    own.interrupt();
                    return;
                }
                thread::sleep(Duration::from_millis(50));
            }
        });
        Some(Self {
            shared,
            done,
            fired,
            timer,
        })
    }

    /// Puts the connection's interrupter back; whether the timer gave the wait up.
    pub fn disarm(self, conn: &mut Connection) -> bool {
        use std::sync::atomic::Ordering;
        self.done.store(true, Ordering::SeqCst);
        let _ = self.timer.join();
        conn.set_interrupter(self.shared);
        self.fired.load(Ordering::SeqCst)
    }

    /// What is said of a PREPARE given up at `limit`.
    pub fn given_up(limit: Option<Duration>) -> String {
        format!(
            "its PREPARE TRANSACTION was not answered within --stall-timeout {} s (a \
             synchronous standby that is not there?): given up, its backend cancelled",
            limit.unwrap_or_default().as_secs_f64()
        )
    }
}

/// Whether an error of SQLSTATE `code` says the server ended the session's backend itself — its
/// shutdown (57P01, 57P02), its start not done (57P03), its database dropped (57P04), an idle
/// session's timeout (57P05) —: no backend of it stays, and none is to be ended or said (ux70
/// F6: "may stay … holding its locks" of one a fast shutdown had ended, on a server down).
pub fn ended_by_its_server(code: Option<&str>) -> bool {
    code.is_some_and(|c| c.starts_with("57P0"))
}

/// Ends backend `pid` on the server of `conn` (another session there), a session copyman closed
/// with its statement under way: behind a lost network path its server never hears the close,
/// and the backend stays in its COPY, in its transaction, holding its locks until the server's
/// keepalive gives up, hours later (conn68 F2). Only a client backend of this login (its session
/// user: a CONN's `-c role=…` changes the current one) that began at least `older_than` seconds
/// ago (when its session was made: not another that took its process id since).
/// `Some(true)`: terminated (gone, where the server can wait for it: PostgreSQL 14 and later);
/// `Some(false)`: not there (its server heard); `None`: it could not be asked (its session's
/// role may not see it: a CONN's `-c role=…` without `pg_read_all_stats`), terminating it was
/// refused, or it was still there two seconds after (a frozen backend: recheck69 F5, said
/// terminated while it held its locks on).
pub fn end_orphan(conn: &mut Connection, pid: i32, older_than: f64) -> Option<bool> {
    let waits = conn
        .session()
        .server_version_num()
        .is_some_and(|v| v >= 140_000);
    let terminate = match waits {
        true => "pg_catalog.pg_terminate_backend(a.pid, 2000)",
        false => "pg_catalog.pg_terminate_backend(a.pid)",
    };
    let rows = conn
        .query(&format!(
            "SELECT CASE WHEN a.backend_start IS NULL THEN 'hidden' \
               WHEN a.backend_type = 'client backend' AND a.usename = session_user \
                 AND a.backend_start < pg_catalog.now() \
                     - pg_catalog.make_interval(secs => {:.3}) \
               THEN {terminate}::text ELSE 'another' END \
             FROM pg_catalog.pg_stat_activity a WHERE a.pid = {pid}",
            older_than.max(0.0)
        ))
        .ok()?;
    // (Its warning that the backend did not end in time says nothing the caller does not.)
    let _ = conn.take_notices();
    match rows
        .first()
        .and_then(|row| row.first().cloned().flatten())
        .as_deref()
    {
        None | Some("another") => Some(false),
        Some("true") => Some(true),
        Some(_) => None,
    }
}

pub(crate) fn backend_alive(conn: &mut Connection, pid: i32) -> bool {
    conn.query(&format!(
        "SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE pid = {pid}"
    ))
    .ok()
    .and_then(|rows| rows.first().and_then(|r| r.first().cloned().flatten()))
    .is_none_or(|n| n != "0")
}

/// Runs `commit` to its end: each step on its destination (by index into `destinations`) or on
/// the source, [`Step::Record`] through `record`, and the records nothing waits on
/// ([`Step::RecordAbort`], [`Step::RecordOut`]: best effort) through `note`
/// ([`DecisionLog::note`] writes them). Returns where every party ended.
///
/// # Panics
/// If the commit names a destination `destinations` does not have, or a source when `source`
/// is `None` (the caller's bug: the commit was built for other parties).
pub fn run<E>(
    mut commit: Commit<E>,
    destinations: &mut [&mut dyn Participant<Error = E>],
    mut source: Option<&mut dyn Participant<Error = E>>,
    mut record: impl FnMut(&Decision) -> Result<(), E>,
    mut note: impl FnMut(&Step),
) -> Report<E> {
    while let Some(step) = commit.poll_step() {
        match step {
            Step::Run { party, action } => {
                let result = match party {
                    Party::Destination(n) => destinations[n].run(&action),
                    Party::Source => source
                        .as_deref_mut()
                        .expect("the commit has a source")
                        .run(&action),
                };
                commit.handle_result(result);
            }
            Step::Record(decision) => commit.handle_recorded(record(&decision)),
            step @ (Step::RecordAbort(_)
            | Step::RecordOut { .. }
            | Step::RecordCommitting { .. }
            | Step::RecordRefused { .. }) => note(&step),
            _ => unreachable!("a step this driver does not know"),
        }
    }
    commit.outcome()
}

/// The words a decision log's lines begin with ([`DecisionLog`]).
const RECORDS: [&str; 12] = [
    "begin",
    "commit",
    "party",
    "done",
    "abort",
    "ended",
    "committing",
    "refused",
    "out",
    "unprepared",
    "told",
    "died",
];

/// Why the file at `path` is no decision log, where it exists and holds something: its first
/// line (shortened) is no record of one, or it is not text. `None` where it is empty, missing,
/// no regular file (a FIFO, whose open would wait, is refused apart), unreadable (the open says
/// why), or begins as a log does — a first line cut short by a crash included. A run appends to it (cutting a last line that does not end back to its last line
/// end): given a data file by mistake, it cut the file's last row and appended its records,
/// exit 0, the run's own `--from` file too (files67 F18).
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("copyman-doc-log-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// use copyman_job::commit::not_a_log;
///
/// let log = dir.join("decisions.log");
/// std::fs::write(&log, "begin 1764479123-42-9f3a\nparty 1764479123-42-9f3a g s d x\n").unwrap();
/// assert_eq!(not_a_log(&log), None);
/// let csv = dir.join("rows.csv");
/// std::fs::write(&csv, "1,alice\n2,bob\n").unwrap();
/// assert!(not_a_log(&csv).is_some_and(|why| why.contains("1,alice")));
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn not_a_log(path: &Path) -> Option<String> {
    // A regular file only: a FIFO's open would wait for its other end (refused apart).
    if !fs::metadata(path).is_ok_and(|m| m.is_file()) {
        return None;
    }
    let mut start = Vec::new();
    File::open(path)
        .ok()?
        .take(4096)
        .read_to_end(&mut start)
        .ok()?;
    if start.is_empty() {
        return None;
    }
    // Its first line (its first 4 096 bytes where it has no line end there).
    let (first, ended) = match start.iter().position(|&b| b == b'\n') {
        Some(end) => (&start[..end], true),
        None => (&start[..], false),
    };
    let Ok(first) = std::str::from_utf8(first) else {
        return Some("it is not text".to_owned());
    };
    let word = first.split_whitespace().next().unwrap_or_default();
    // A first line cut short by a crash reads as the start of a record's word.
    let begun = |kind: &&str| kind.starts_with(word) && !word.is_empty();
    if RECORDS.contains(&word) || (!ended && RECORDS.iter().any(begun)) {
        return None;
    }
    let shown: String = first.chars().take(40).collect();
    let cut = if first.chars().count() > 40 {
        "…"
    } else {
        ""
    };
    Some(format!("its first line ({shown}{cut}) is no record of one"))
}

/// How often a wait for the decision log's lock asks whether to give up
/// ([`DecisionLog::stopped_by`]).
pub const LOCK_POLL: Duration = Duration::from_millis(50);

/// The error of a write given up ([`DecisionLog::stopped_by`]).
fn called_off() -> io::Error {
    io::Error::new(
        io::ErrorKind::Interrupted,
        "given up, the run stopped while another process held the log's lock: nothing was \
         written",
    )
}

/// Takes `file`'s lock (an exclusive `flock`), waiting for whoever holds it, unless `give_up`
/// (asked every [`LOCK_POLL`] of the wait) says to stop waiting: then the error of
/// [`called_off`]. The wait is a `flock` of its own thread, blocked on a duplicate of the
/// file's descriptor (one open file, one lock), so that `/proc/locks` shows this process
/// waiting ([`waits_for_lock`], which a run's words of the wait read); a wait given up lets go
/// of the lock as soon as that thread takes it.
fn lock_unless(file: &File, give_up: &dyn Fn() -> bool) -> io::Result<()> {
    use std::sync::{Arc, Condvar, Mutex, PoisonError};
    match file.try_lock() {
        Ok(()) => return Ok(()),
        Err(fs::TryLockError::Error(e)) => return Err(e),
        Err(fs::TryLockError::WouldBlock) => {}
    }
    if give_up() {
        return Err(called_off());
    }
    /// The waiting thread's state: `None` waiting, `Some(Ok(true))` taken, `Some(Ok(false))`
    /// given up by the caller, `Some(Err)` failed.
    type State = (Mutex<Option<io::Result<bool>>>, Condvar);
    let waiter = file.try_clone()?;
    let state: Arc<State> = Arc::new((Mutex::new(None), Condvar::new()));
    let theirs = Arc::clone(&state);
    thread::Builder::new()
        .name("copyman-log-lock".to_owned())
        .spawn(move || {
            let locked = waiter.lock();
            let (cell, woken) = &*theirs;
            let mut cell = cell.lock().unwrap_or_else(PoisonError::into_inner);
            match (&*cell, locked) {
                // Given up meanwhile: let go of it at once.
                (Some(Ok(false)), Ok(())) => {
                    let _ = waiter.unlock();
                }
                (_, locked) => *cell = Some(locked.map(|()| true)),
            }
            woken.notify_all();
        })?;
    let (cell, woken) = &*state;
    let mut cell = cell.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        match cell.take() {
            Some(Ok(_)) => return Ok(()),
            Some(Err(e)) => return Err(e),
            None => {}
        }
        if give_up() {
            *cell = Some(Ok(false));
            return Err(called_off());
        }
        cell = woken
            .wait_timeout(cell, LOCK_POLL)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
}

/// The two-phase commit decisions, one line per run in a file: `commit RUN GID…`, written and
/// fsynced before the first `COMMIT PREPARED` of the run. A run with no line here committed
/// nothing, so recovery rolls its prepared transactions back.
///
/// Runs in progress hold a lock ([`DecisionLog::lock_run`]) on a file beside the log, so recovery
/// never decides for a run that may still record its decision.
///
/// A log opened for runs ([`DecisionLog::open`]) or for recovery ([`DecisionLog::existing`])
/// writes only to the file it opened: a path that names another file later (the log moved,
/// replaced or removed while a run goes on) refuses every write, the decision's first, so that
/// no run decides in a file without its start.
#[derive(Debug)]
pub struct DecisionLog {
    path: PathBuf,
    /// The file it opened (device, inode), if it opened one.
    file: Option<(u64, u64)>,
    /// The caller's stop ([`DecisionLog::stopped_by`]).
    stop: Option<fn() -> bool>,
}

impl DecisionLog {
    /// The log at `path`, for a run: created (with its directory) if missing, so that recovery
    /// can tell "this run recorded no decision" from "this is not the log".
    ///
    /// # Errors
    /// The directory or the file cannot be created.
    pub fn open(path: impl Into<PathBuf>) -> io::Result<Self> {
        let path = path.into();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        file.sync_all()?;
        let file = Some(identity(&file.metadata()?));
        Ok(Self {
            path,
            file,
            stop: None,
        })
    }

    /// The log at `path`, for recovery: it must exist (a run creates it before it prepares
    /// anything).
    ///
    /// # Errors
    /// It does not exist ([`io::ErrorKind::NotFound`]) or cannot be read.
    pub fn existing(path: impl Into<PathBuf>) -> io::Result<Self> {
        let path = path.into();
        let file = Some(identity(&fs::metadata(&path)?));
        Ok(Self {
            path,
            file,
            stop: None,
        })
    }

    /// The log at `path` whether or not it exists (missing, it reads as empty): for recovery when
    /// the caller knows the log is lost and no run recorded a commit decision.
    pub fn none(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            file: None,
            stop: None,
        }
    }

    /// The log, its writes that wait for its lock (another process holds it: a run or recovery
    /// sharing the log, a script's `flock`) given up once `stop` says so (asked every
    /// [`LOCK_POLL`]): a run stopped then has nothing to wait for (signals67 F5: a run
    /// signalled while it waited to record its start, or its decision, waited for the holder to
    /// let go, then went on). The records a log's reader can do without are given up so — a
    /// run's start and parties (nothing is prepared yet), a decision not yet written
    /// ([`DecisionLog::record_parties_unless`]), its rollback and its end — never one of a
    /// COMMIT PREPARED being sent. A write given up writes nothing and fails with an error of
    /// kind [`io::ErrorKind::Interrupted`].
    #[must_use]
    pub fn stopped_by(self, stop: fn() -> bool) -> Self {
        Self {
            stop: Some(stop),
            ..self
        }
    }

    /// Whether the caller's stop says to give up a wait for the lock ([`DecisionLog::stopped_by`]).
    fn stopping(&self) -> bool {
        self.stop.is_some_and(|stop| stop())
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether `run` has the shape of the ids [`new_run_id`](Self::new_run_id) makes (a job's
    /// with its table's number after them: `1764479123-4242-9f3a-2`): a prepared transaction
    /// named `copyman:1:1` by another program is not a run of the command's (commit68 F7:
    /// `recover --no-decision-log` rolled it back).
    pub fn is_commands_run_id(run: &str) -> bool {
        // Decimal as copyman writes it: no sign, no leading zero (recheck69 F7: `01…`, an
        // upper-case salt, process 0 or a time to come were taken for the command's).
        let number = |s: &str| {
            let digits = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
            (digits && (s.len() == 1 || !s.starts_with('0')))
                .then(|| s.parse::<u64>().ok())
                .flatten()
        };
        let salt =
            |s: &str| s.len() == 4 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        // Not from the future (a day's margin for clocks apart) nor from before copyman (2020),
        // a process id as the system gives one (1 to 2^32 - 1), a job's table counted from 1
        // (recheck70 F8: 2001, process 2^32 and a table 0 were taken for the command's).
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(u64::MAX, |d| d.as_secs());
        let made = |secs: &str, pid: &str, hex: &str| {
            number(secs).is_some_and(|s| (1_600_000_000..=now.saturating_add(86_400)).contains(&s))
                && number(pid).is_some_and(|p| (1..=u64::from(u32::MAX)).contains(&p))
                && salt(hex)
        };
        match run.split('-').collect::<Vec<_>>()[..] {
            [secs, pid, hex] => made(secs, pid, hex),
            [secs, pid, hex, n] => made(secs, pid, hex) && number(n).is_some_and(|n| n > 0),
            _ => false,
        }
    }

    /// A new run id: the time, this process and a little randomness (`1764479123-4242-9f3a`).
    pub fn new_run_id() -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        // RandomState's keys are random per process: two runs of one process differ by time.
        let salt = {
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::hash::RandomState::new().build_hasher();
            h.write_u32(now.subsec_nanos());
            h.finish()
        };
        format!(
            "{}-{}-{:04x}",
            now.as_secs(),
            std::process::id(),
            salt & 0xffff
        )
    }

    /// The lock file of `run`, beside the log as it really is: the same for every spelling of
    /// its path (a symbolic link to it, `./` or `..` in it), so that a recovery given another
    /// spelling than the run's still sees the run in progress.
    fn lock_path(&self, run: &str) -> PathBuf {
        let real = fs::canonicalize(&self.path).unwrap_or_else(|_| self.path.clone());
        let name = real
            .file_name()
            .map_or_else(|| "copyman".into(), |n| n.to_string_lossy().into_owned());
        real.with_file_name(format!(".{name}.{run}.lock"))
    }

    /// Marks `run` as in progress until the guard is dropped (or the process dies: the lock is
    /// the kernel's).
    ///
    /// Its start is recorded in the log first (`begin RUN`, fsynced), before anything is
    /// prepared: a recovery reading another log then finds no line of the run and decides
    /// nothing ([`Recovery::UnknownRun`]) instead of rolling back what its own log decided.
    ///
    /// # Errors
    /// The log cannot be written, or the lock file cannot be created or locked.
    pub fn lock_run(&self, run: &str) -> io::Result<RunLock> {
        self.lock_run_with(run, &[], None)
    }

    /// [`DecisionLog::lock_run`], with the server that will hold each transaction the run may
    /// prepare (`destinations[n]` destination `n`'s, `source` the source's, each with the global
    /// id [`Commit::gid`] / [`Commit::source_gid`] gives it) on `party` lines in the same
    /// durable write: a recovery then knows every server of a run that died before its decision
    /// too, and asks for those it was not given rather than say "nothing pending" while one may
    /// still hold a prepared transaction.
    ///
    /// # Errors
    /// As [`DecisionLog::lock_run`].
    pub fn lock_run_with(
        &self,
        run: &str,
        destinations: &[Option<&Holder>],
        source: Option<&Holder>,
    ) -> io::Result<RunLock> {
        let mut lines = format!("begin {run}\n");
        let each = destinations.iter().enumerate();
        let parties = each
            .filter_map(|(n, h)| Some((Commit::<()>::gid(run, n), (*h)?)))
            .chain(source.map(|h| (Commit::<()>::source_gid(run), h)));
        for (gid, holder) in parties {
            lines.push_str(&party_line(run, &gid, holder));
        }
        // Locked under another name, then renamed into place: a lock file that can be seen is
        // locked by its live run or left by a dead one, never not yet locked (a recovery
        // removes one it finds unlocked: `run_in_progress`). Made before the run's start is
        // written, and named where it cannot be: a log writable in a directory that is not
        // was said "Permission denied" of the log, its start left there (commit66 F10).
        let path = self.lock_path(run);
        let mut fresh = path.clone().into_os_string();
        fresh.push(".new");
        let file = File::create(&fresh).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "cannot create the run's lock file {} beside it (its directory must be \
                     writable): {e}",
                    path.display()
                ),
            )
        })?;
        let locked = file
            .lock()
            .and_then(|()| self.append(&lines))
            .and_then(|()| fs::rename(&fresh, &path));
        if let Err(e) = locked {
            let _ = fs::remove_file(&fresh);
            return Err(e);
        }
        Ok(RunLock { file, path })
    }

    /// Names `holder`'s server as the one that will hold `run`'s transaction `gid` (a durable
    /// `party` line), for a party its start did not name ([`DecisionLog::lock_run_with`]): before
    /// it prepares.
    ///
    /// # Errors
    /// Writing or syncing failed: it must not prepare.
    pub fn name_party(&self, run: &str, gid: &str, holder: &Holder) -> io::Result<()> {
        self.append(&party_line(run, gid, holder))
    }

    /// Records that `run`'s source (shown as `display`) wrote and could not prepare
    /// (`unprepared RUN DISPLAY`): the run commits it after the destinations, itself. A
    /// recovery that commits the run's prepared transactions after it died then says that the
    /// source's changes (a move's DELETE) may have rolled back, the rows being on both sides.
    ///
    /// # Errors
    /// Writing or syncing failed.
    pub fn unprepared_source(&self, run: &str, display: &str) -> io::Result<()> {
        self.append(&format!("unprepared {run} {}\n", escape(display)))
    }

    /// Records that a recovery said to check `run`'s unprepared source (`told RUN`): said once.
    ///
    /// # Errors
    /// Writing or syncing failed (a later recovery says it again).
    pub fn told_source(&self, run: &str) -> io::Result<()> {
        self.append(&format!("told {run}\n"))
    }

    /// Appends `line` (whole lines) and makes it durable (file and directory fsynced).
    /// A wait for the lock is given up once the caller's stop says so
    /// ([`DecisionLog::stopped_by`]).
    fn append(&self, line: &str) -> io::Result<()> {
        self.append_checked(None, &|| self.stopping(), |_| Ok(line.to_owned()))
    }

    /// [`DecisionLog::append`], waiting for the lock whatever the caller's stop says: a record
    /// of a COMMIT PREPARED being sent, which goes out once it is written.
    fn append_waiting(&self, line: &str) -> io::Result<()> {
        self.append_checked(None, &|| false, |_| Ok(line.to_owned()))
    }

    /// [`DecisionLog::append`] of the lines `lines` makes of the log's whole lines from the last
    /// line `since` on (the run's `begin` line: all of the run's lines follow it; the whole log
    /// when there is no such line; none when `since` is `None`), or its refusal.
    ///
    /// Writers take the log's lock for the whole of it, so each finds the log as the last one
    /// left it. A line not ended by a newline at the end is a write that failed or was cut short
    /// (a full disk, a crash): it was never durable, so it decided nothing, and it is cut off
    /// before this line is written — written after it, the two would read as one whole line (a
    /// `commit` whose cut-off gids run into the next line's words). A write that fails is cut
    /// back the same way. Only the log's end is read (a log grows by a few lines per run).
    /// A wait for the lock is given up when `give_up` says so ([`lock_unless`]).
    fn append_checked(
        &self,
        since: Option<&str>,
        give_up: &dyn Fn() -> bool,
        lines: impl FnOnce(&str) -> io::Result<String>,
    ) -> io::Result<()> {
        let moved = |why: &dyn std::fmt::Display| {
            io::Error::other(format!(
                "it is no longer the file it was when the run began: moved, replaced or removed \
                 meanwhile ({why}); the run's earlier lines are in that file"
            ))
        };
        let mut file = OpenOptions::new()
            .create(self.file.is_none())
            .read(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| match self.file {
                Some(_) if e.kind() == io::ErrorKind::NotFound => moved(&e),
                _ => e,
            })?;
        if let Some(opened) = self.file
            && identity(&file.metadata()?) != opened
        {
            return Err(moved(&"another file is at its path"));
        }
        lock_unless(&file, give_up)?;
        let (tail, whole) = read_tail(&file, since)?;
        if whole < file.metadata()?.len() {
            file.set_len(whole)?;
            file.sync_all()?;
        }
        let line = lines(&tail)?;
        let written = file
            .write_all(line.as_bytes())
            .and_then(|()| file.sync_all());
        if let Err(e) = written {
            let _ = file.set_len(whole);
            let _ = file.sync_all();
            return Err(e);
        }
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    }

    /// Whether `run` is in progress (its lock is held by a live process). A lock file left by a
    /// run that died (killed: its guard never dropped) is removed, under its lock, once its death
    /// is recorded (`died RUN`, [`LogContents::died`]).
    ///
    /// Another recovery holds the lock of a dead run for a moment while it records that death:
    /// a lock found held is asked again for a while (a run holds it for its whole life), and one
    /// whose file is gone meanwhile was that (recheck65 F3: the second of two recoveries said
    /// "its run is still in progress" of a killed run, exit 1).
    pub fn run_in_progress(&self, run: &str) -> bool {
        const TRIES: u32 = 5;
        let path = self.lock_path(run);
        let Ok(file) = File::open(&path) else {
            return false;
        };
        for tried in 1..=TRIES {
            // Unlocked: left by a run that died, which decides nothing any more. A run locks its
            // file before it can be seen ([`DecisionLog::lock_run_with`]) and no other run has
            // its id: this one is gone for good.
            if file.try_lock().is_ok() {
                // Not recorded, the file stays: the next recovery finds it again.
                if self.append(&format!("died {run}\n")).is_err() {
                    let _ = file.unlock();
                    return false;
                }
                let _ = fs::remove_file(&path);
                let _ = file.unlock();
                return false;
            }
            if tried == TRIES {
                break;
            }
            thread::sleep(Duration::from_millis(40));
            // Removed by the recovery that held it, its death recorded.
            if !path.exists() {
                return false;
            }
        }
        // Held by a `copyman recover` (its command line says so): recording the death, itself
        // waiting for the log (recheck66 F6: said "in progress"). Anything else — the run, or
        // a process this one cannot see as it is (another PID namespace) — is the run.
        !lock_holder(&path).is_some_and(|(_, command)| {
            let mut words = command.split(' ');
            words.next().is_some_and(|exe| exe.contains("copyman")) && words.any(|w| w == "recover")
        })
    }

    /// Whether `run` left its lock file beside this log, unlocked: it died (killed, its machine
    /// crashed) rather than ended on its own, which removes it. Asked before
    /// [`DecisionLog::run_in_progress`], which records that death and removes the file. A copy
    /// of the log elsewhere or under another name has no lock file of its runs.
    pub fn died(&self, run: &str) -> bool {
        File::open(self.lock_path(run)).is_ok_and(|file| {
            let free = file.try_lock().is_ok();
            let _ = file.unlock();
            free
        })
    }

    /// Appends the commit decision and makes it durable (file and directory fsynced).
    ///
    /// # Errors
    /// Writing or syncing failed: the decision is not recorded, nothing may be committed.
    pub fn record(&self, decision: &Decision) -> io::Result<()> {
        self.record_with_holders(decision, &[])
    }

    /// [`DecisionLog::record`], with the server holding each of the decision's transactions
    /// (`holders`, one per global id it knows) on `party RUN GID SERVER DATABASE DISPLAY` lines
    /// before the decision's line, in the same durable write: recovery then knows every party
    /// of the run, and can say which ones the servers it was given do not account for. A log
    /// reader that does not know these lines skips them.
    ///
    /// # Errors
    /// Writing or syncing failed: the decision is not recorded, nothing may be committed.
    pub fn record_with_holders(&self, decision: &Decision, holders: &[Holder]) -> io::Result<()> {
        self.record_unless(decision, holders, &|| false)
    }

    /// [`DecisionLog::record_with_holders`], unless it is called off ([`record_parties_unless`]).
    ///
    /// [`record_parties_unless`]: DecisionLog::record_parties_unless
    fn record_unless(
        &self,
        decision: &Decision,
        holders: &[Holder],
        taken: &dyn Fn() -> bool,
    ) -> io::Result<()> {
        let run = decision.run.as_str();
        self.append_checked(Some(&format!("begin {run}")), &|| self.stopping(), |log| {
            if taken() {
                return Err(called_off());
            }
            // Never after a recovery began to roll the run back (`abort RUN`, written first):
            // some of its transactions may be gone already.
            if log.lines().any(|l| l.split_whitespace().eq(["abort", run])) {
                return Err(io::Error::other(format!(
                    "run {run} was rolled back meanwhile (the log says `abort {run}`: a copyman \
                     recover or the run itself), so it cannot be committed"
                )));
            }
            // Each party once: those its start named ([`DecisionLog::lock_run_with`]) are not
            // written again.
            let named: HashSet<&str> = log
                .lines()
                .filter_map(|l| match l.split_whitespace().collect::<Vec<_>>()[..] {
                    ["party", r, gid, ..] if r == run => Some(gid),
                    _ => None,
                })
                .collect();
            let mut line = String::new();
            for holder in holders.iter().filter(|h| !named.contains(h.gid.as_str())) {
                line.push_str(&party_line(run, &holder.gid, holder));
            }
            line.push_str(&format!("commit {run}"));
            for gid in decision
                .gids
                .iter()
                .map(|(_, gid)| gid)
                .chain(&decision.source)
            {
                line.push(' ');
                line.push_str(gid);
            }
            line.push('\n');
            Ok(line)
        })
    }

    /// [`DecisionLog::record_with_holders`], each holder found from where its party is:
    /// `destinations[n]` holds the transaction of the commit's destination `n`, `source` the
    /// source's (`None`: not a server, or not known, and then not recorded). The one place that
    /// turns a decision's parties into its `party` lines, for a one-table run and a job's
    /// tables alike.
    ///
    /// # Errors
    /// Writing or syncing failed: the decision is not recorded, nothing may be committed.
    pub fn record_parties(
        &self,
        decision: &Decision,
        destinations: &[Option<&Holder>],
        source: Option<&Holder>,
    ) -> io::Result<()> {
        self.record_parties_unless(decision, destinations, source, &|| false)
    }

    /// [`DecisionLog::record_parties`], called off by the caller's stop while it waits for the
    /// log's lock ([`DecisionLog::stopped_by`]: a run stopped then commits nothing, signals67
    /// F5), or by `taken`, asked once the lock is held, before the decision is written. The
    /// lock keeps every other writer out: a caller's stop checked in `taken` either comes
    /// before the decision or finds it written.
    ///
    /// # Errors
    /// As [`DecisionLog::record_parties`]; called off, of kind [`io::ErrorKind::Interrupted`].
    pub fn record_parties_unless(
        &self,
        decision: &Decision,
        destinations: &[Option<&Holder>],
        source: Option<&Holder>,
        taken: &dyn Fn() -> bool,
    ) -> io::Result<()> {
        let holders: Vec<Holder> = decision
            .gids
            .iter()
            .filter_map(|(n, gid)| Some((destinations.get(*n).copied().flatten()?, gid)))
            .chain(source.zip(decision.source.as_ref()))
            .map(|(holder, gid)| Holder {
                gid: gid.clone(),
                ..holder.clone()
            })
            .collect();
        self.record_unless(decision, &holders, taken)
    }

    /// Records that nothing of `run` is left prepared anywhere (`done RUN`): recovery no longer
    /// asks for its parties' servers.
    ///
    /// # Errors
    /// Writing or syncing failed (recovery then still asks for the run's servers).
    pub fn finished(&self, run: &str) -> io::Result<()> {
        self.append(&format!("done {run}\n"))
    }

    /// Records that recovery rolls back `run`'s prepared transactions (`abort RUN`), before the
    /// first of them: a later recovery that finds some of the run gone and some still prepared
    /// (in a database or on a server not given the first time) then knows why, and rolls back
    /// the rest.
    ///
    /// # Errors
    /// Writing or syncing failed: nothing of the run may be rolled back on the strength of it.
    pub fn aborted(&self, run: &str) -> io::Result<()> {
        self.append(&format!("abort {run}\n"))
    }

    /// Records that `run`'s transactions `gids` will never be prepared (`out RUN GID…`): under
    /// keep-going, destinations that failed below others that are prepared
    /// ([`Step::RecordOut`]), so that a recovery of a run that died before its decision does
    /// not take the gap for transactions that ended.
    ///
    /// # Errors
    /// Writing or syncing failed (a recovery then refuses the run as possibly split: the safe
    /// side).
    pub fn left_out(&self, run: &str, gids: &[String]) -> io::Result<()> {
        self.append(&format!("out {run} {}\n", gids.join(" ")))
    }

    /// Writes what a commit's best-effort step records: [`Step::RecordAbort`]
    /// ([`DecisionLog::aborted`]), [`Step::RecordOut`] ([`DecisionLog::left_out`]),
    /// [`Step::RecordCommitting`] ([`DecisionLog::committing`]) and [`Step::RecordRefused`]
    /// (`refused RUN GID run`); other steps write nothing.
    ///
    /// # Errors
    /// As those.
    pub fn note(&self, step: &Step) -> io::Result<()> {
        match step {
            Step::RecordAbort(run) => self.aborted(run),
            Step::RecordOut { run, gids } => self.left_out(run, gids),
            Step::RecordCommitting { run, gid } => self.committing(run, gid),
            Step::RecordRefused { run, gid } => {
                self.append_waiting(&format!("refused {run} {gid} run\n"))
            }
            _ => Ok(()),
        }
    }

    /// Records that recovery finished `run`'s prepared transaction `gid` (`ended RUN GID`, after
    /// its COMMIT or ROLLBACK PREPARED): a later recovery not given its server then counts it
    /// finished rather than ask for that server again.
    ///
    /// # Errors
    /// Writing or syncing failed (a later recovery then asks for its server: the safe side).
    pub fn ended(&self, run: &str, gid: &str) -> io::Result<()> {
        self.append(&format!("ended {run} {gid}\n"))
    }

    /// Records that `run`'s transactions `gids` ended (`ended RUN GID`, as
    /// [`DecisionLog::ended`], in one write): a run that leaves work for recovery, of those
    /// it committed or rolled back itself ([`Report::ended_gids`]).
    ///
    /// # Errors
    /// Writing or syncing failed (a recovery then asks for their servers: the safe side).
    pub fn ended_all(&self, run: &str, gids: &[String]) -> io::Result<()> {
        let lines: String = gids
            .iter()
            .map(|gid| format!("ended {run} {gid}\n"))
            .collect();
        match lines.is_empty() {
            true => Ok(()),
            false => self.append(&lines),
        }
    }

    /// Records that `run` sends its `COMMIT PREPARED` of `gid` now (`committing RUN GID`,
    /// [`Step::RecordCommitting`]): a recovery that finds `gid` gone from its server knows the
    /// run (not someone else) ended it.
    ///
    /// # Errors
    /// Writing or syncing failed (a recovery then says that server must be checked: the safe
    /// side).
    pub fn committing(&self, run: &str, gid: &str) -> io::Result<()> {
        self.append_waiting(&format!("committing {run} {gid}\n"))
    }

    /// Records that a recovery sends `run`'s `COMMIT PREPARED` of `gid` now (`committing RUN
    /// GID recovery`; an older copyman reads the line as the run's): a later recovery that finds
    /// it busy or gone knows who sent it.
    ///
    /// # Errors
    /// As [`DecisionLog::committing`].
    pub fn recovery_committing(&self, run: &str, gid: &str) -> io::Result<()> {
        self.append(&format!("committing {run} {gid} recovery\n"))
    }

    /// Records that the `COMMIT PREPARED` of `gid` a recovery recorded sending
    /// ([`DecisionLog::recovery_committing`]) was answered with an error (`refused RUN GID`):
    /// that one does not run on the server (another recovery's may), and a later recovery
    /// that finds `gid` busy or gone does not take it for that statement's work (recheck56 F3:
    /// another session's ROLLBACK PREPARED, running, was said to be that recovery's commit). An
    /// older copyman skips the line.
    ///
    /// # Errors
    /// As [`DecisionLog::committing`].
    pub fn refused(&self, run: &str, gid: &str) -> io::Result<()> {
        self.append(&format!("refused {run} {gid}\n"))
    }

    /// Every global id a recorded commit decision names (an empty set when there is no log).
    ///
    /// # Errors
    /// The log exists but cannot be read.
    pub fn committed(&self) -> io::Result<HashSet<String>> {
        Ok(self.read()?.committed)
    }

    /// Every run the log holds a line of: its start or its decision.
    ///
    /// # Errors
    /// The log exists but cannot be read.
    pub fn runs(&self) -> io::Result<HashSet<String>> {
        Ok(self.read()?.runs)
    }

    /// Everything the log says (empty when there is no log).
    ///
    /// # Errors
    /// The log exists but cannot be read.
    pub fn read(&self) -> io::Result<LogContents> {
        let text = match fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(LogContents::default()),
            Err(e) => return Err(e),
        };
        let mut log = LogContents::default();
        let mut holders: HashMap<String, Vec<Holder>> = HashMap::new();
        let mut decisions: HashMap<String, Vec<String>> = HashMap::new();
        // Recoveries' COMMIT PREPAREDs of each transaction recorded sent, less those refused.
        let mut recoveries_sent: HashMap<String, i32> = HashMap::new();
        // Only whole lines: a line cut short by a crash while it was written was never fsynced,
        // so its run committed nothing.
        for line in text.split_inclusive('\n').filter(|l| l.ends_with('\n')) {
            let mut words = line.split_whitespace();
            let (Some(kind), Some(run)) = (words.next(), words.next()) else {
                continue;
            };
            if !RECORDS.contains(&kind) {
                continue;
            }
            log.runs.insert(run.to_owned());
            match kind {
                "commit" => {
                    let gids: Vec<String> = words
                        .filter(|w| parse_gid(w).is_some())
                        .map(str::to_owned)
                        .collect();
                    decisions.insert(run.to_owned(), gids.clone());
                    log.committed.extend(gids);
                }
                "party" => {
                    let mut field = || words.next().map(unescape).unwrap_or_default();
                    let (gid, server, database, display) = (field(), field(), field(), field());
                    // An older copyman's lines end with the display, or the backend.
                    let (backend, place) = (field(), field());
                    let known = holders.entry(run.to_owned()).or_default();
                    if parse_gid(&gid).is_some() {
                        log.named.insert(gid.clone());
                    }
                    // Named at its start and again with its decision: once.
                    if parse_gid(&gid).is_some() && !known.iter().any(|h| h.gid == gid) {
                        known.push(Holder {
                            gid,
                            server,
                            database,
                            display,
                            backend,
                            place,
                        });
                    }
                }
                "done" => {
                    log.done.insert(run.to_owned());
                }
                "ended" => {
                    log.ended.extend(
                        words
                            .next()
                            .filter(|w| parse_gid(w).is_some())
                            .map(str::to_owned),
                    );
                }
                "committing" => {
                    let gid = words.next().filter(|w| parse_gid(w).is_some());
                    match (gid, words.next() == Some("recovery")) {
                        (Some(gid), true) => {
                            *recoveries_sent.entry(gid.to_owned()).or_default() += 1
                        }
                        (gid, _) => log.committing.extend(gid.map(str::to_owned)),
                    }
                }
                // One recovery's statement refused: the others' may still run (a recovery
                // killed while its COMMIT PREPARED waits, then one refused as busy by it).
                // The run's own refused (`refused RUN GID run`): its `committing` line sent
                // nothing that ran (commit66 F7).
                "refused" => match (words.next(), words.next()) {
                    (Some(gid), Some("run")) => {
                        log.committing.remove(gid);
                    }
                    (Some(gid), _) => *recoveries_sent.entry(gid.to_owned()).or_default() -= 1,
                    (None, _) => {}
                },
                "abort" => {
                    log.aborted.insert(run.to_owned());
                }
                "told" => {
                    log.told.insert(run.to_owned());
                }
                "died" => {
                    log.died.insert(run.to_owned());
                }
                "unprepared" => {
                    let display = words.next().map(unescape).unwrap_or_default();
                    log.unprepared.insert(run.to_owned(), display);
                }
                "out" => {
                    log.out
                        .extend(words.filter(|w| parse_gid(w).is_some()).map(str::to_owned));
                }
                _ => {}
            }
        }
        log.recovery_committing = (recoveries_sent.into_iter())
            .filter(|(_, sent)| *sent > 0)
            .map(|(gid, _)| gid)
            .collect();
        for (run, mut known) in holders {
            match decisions.get(&run) {
                // The decision's parties: the transactions it names.
                Some(gids) => {
                    // Those its run left out (`out` lines) are kept apart: decided commit
                    // without them, they hold none of its rows.
                    let left: Vec<Holder> = (known.iter())
                        .filter(|h| !gids.contains(&h.gid) && log.out.contains(&h.gid))
                        .cloned()
                        .collect();
                    if !left.is_empty() {
                        log.left.insert(run.clone(), left);
                    }
                    known.retain(|h| gids.contains(&h.gid));
                    log.holders.insert(run, known);
                }
                None => {
                    log.begun.insert(run, known);
                }
            }
        }
        Ok(log)
    }
}

/// A file's device and inode: the same file, whatever its path names now.
fn identity(meta: &fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

/// The end of a log `file`: its whole lines from the start of the last line `since` (all of
/// them when there is none; none when `since` is `None`), and where its whole lines end (a line
/// not ended by a newline after that is torn). Read backwards, a block at a time, only as far as
/// needed.
fn read_tail(file: &File, since: Option<&str>) -> io::Result<(String, u64)> {
    read_tail_by(file, since, 64 * 1024)
}

/// [`read_tail`], `block` bytes at a time.
fn read_tail_by(file: &File, since: Option<&str>, block: u64) -> io::Result<(String, u64)> {
    use std::os::unix::fs::FileExt;

    let marker = since.map(|line| format!("{line}\n").into_bytes());
    // What was read: the file from `start` to its end.
    let mut start = file.metadata()?.len();
    let mut bytes: Vec<u8> = Vec::new();
    let mut whole: Option<u64> = None;
    let mut from: Option<u64> = None;
    while start > 0 && (whole.is_none() || (marker.is_some() && from.is_none())) {
        let step = block.min(start);
        start -= step;
        let mut block = vec![0; usize::try_from(step).expect("a block fits in memory")];
        file.read_exact_at(&mut block, start)?;
        let new = block.len();
        block.extend_from_slice(&bytes);
        bytes = block;
        if whole.is_none() {
            let last = bytes[..new].iter().rposition(|&b| b == b'\n');
            whole = last.map(|i| start + i as u64 + 1);
        }
        if let (Some(m), None) = (&marker, from) {
            // A line that starts in the new block, or right after it (where the byte before it
            // was not read until now).
            let at_line_start = |i: usize| {
                if i == 0 {
                    start == 0
                } else {
                    bytes[i - 1] == b'\n'
                }
            };
            from = (0..=new)
                .rev()
                .find(|&i| bytes[i..].starts_with(m) && at_line_start(i))
                .map(|i| start + i as u64);
        }
    }
    let whole = whole.unwrap_or(0);
    let from = match marker {
        None => whole,
        Some(_) => from.unwrap_or(0).min(whole),
    };
    let offset = |at: u64| usize::try_from(at - start).expect("read");
    let text = String::from_utf8_lossy(&bytes[offset(from)..offset(whole)]).into_owned();
    Ok((text, whole))
}

/// A `party RUN GID SERVER DATABASE DISPLAY BACKEND PLACE` line: `holder`'s server holds (or
/// will hold) the transaction `gid` of `run`.
fn party_line(run: &str, gid: &str, holder: &Holder) -> String {
    format!(
        "party {run} {gid} {} {} {} {} {}\n",
        escape(&holder.server),
        escape(&holder.database),
        escape(&holder.display),
        escape(&holder.backend),
        escape(&holder.place)
    )
}

/// What a [`DecisionLog`] says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogContents {
    /// Every run it holds a line of.
    pub runs: HashSet<String>,
    /// Every global id a commit decision names.
    pub committed: HashSet<String>,
    /// The parties of each run whose decision recorded them (a log written by an older copyman
    /// records none): run → the server of each of its transactions.
    pub holders: HashMap<String, Vec<Holder>>,
    /// The parties each run without a decision named at its start ([`DecisionLog::lock_run_with`];
    /// none for an older copyman's): run → the server of each transaction it may have prepared.
    pub begun: HashMap<String, Vec<Holder>>,
    /// The parties each run with a decision named at its start and left out of it
    /// ([`DecisionLog::left_out`]: under keep-going, a destination that failed before its
    /// PREPARE): run → the server of each.
    pub left: HashMap<String, Vec<Holder>>,
    /// The runs that recorded that nothing of theirs is left prepared.
    pub done: HashSet<String>,
    /// The prepared transactions recovery finished ([`DecisionLog::ended`]).
    pub ended: HashSet<String>,
    /// The prepared transactions whose run sent their `COMMIT PREPARED`
    /// ([`DecisionLog::committing`]).
    pub committing: HashSet<String>,
    /// The prepared transactions whose `COMMIT PREPARED` a recovery sent
    /// ([`DecisionLog::recovery_committing`]).
    pub recovery_committing: HashSet<String>,
    /// The runs recovery began to roll back ([`DecisionLog::aborted`]).
    pub aborted: HashSet<String>,
    /// The transactions their runs never prepared ([`DecisionLog::left_out`]).
    pub out: HashSet<String>,
    /// Every transaction a `party` line names, at its run's start or with its decision.
    pub named: HashSet<String>,
    /// The runs whose source wrote and could not prepare, with the source as shown
    /// ([`DecisionLog::unprepared_source`]).
    pub unprepared: HashMap<String, String>,
    /// The runs whose unprepared source a recovery said to check ([`DecisionLog::told_source`]).
    pub told: HashSet<String>,
    /// The runs a recovery found dead: their lock file left unlocked beside the log
    /// ([`DecisionLog::run_in_progress`]).
    pub died: HashSet<String>,
}

impl LogContents {
    /// Whether copyman sent `gid`'s `COMMIT PREPARED`, its run or a recovery: gone from its
    /// server, it was committed, not ended by someone else.
    pub fn commit_sent(&self, gid: &str) -> bool {
        self.committing.contains(gid) || self.recovery_committing.contains(gid)
    }

    /// Whether `gid`'s run decided commit without naming it, though a `party` line named it
    /// and no `out` line says the run left it out: a log that contradicts itself (edited, two
    /// merged), by which it is neither committed (the decision does not name it) nor rolled
    /// back (its run committed its others: atomic45 F2 split a run so).
    pub fn contradicts(&self, gid: &str) -> bool {
        let Some((run, _)) = parse_gid(gid) else {
            return false;
        };
        let decided = (self.committed.iter()).any(|g| parse_gid(g).is_some_and(|(r, _)| r == run));
        decided
            && !self.committed.contains(gid)
            && self.named.contains(gid)
            && !self.out.contains(gid)
    }
}

/// Which server holds one of a run's prepared transactions, as its decision recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The transaction's global id.
    pub gid: String,
    /// The server's identity ([`server_identity`]; empty when it could not be read).
    pub server: String,
    /// The database the transaction is in.
    pub database: String,
    /// The server as the run showed it (never with a password), for messages.
    pub display: String,
    /// The session that will prepare it, as its server names it (`PID BACKEND_START`, or `PID`
    /// alone where the run did not ask its start: a job's table sessions; empty when not known):
    /// while that session lives, a PREPARE it has not read yet (a frozen backend, a lost network
    /// path) may still leave the transaction prepared after its run died.
    pub backend: String,
    /// Where the server keeps its data ([`server_place`]: its data directory; empty where the
    /// role may not read it, or an older copyman's log): a server of the same identity
    /// elsewhere is a copy of it (a clone, a restored backup), which holds the transaction as
    /// its origin does, and finishing it there leaves the origin's prepared.
    pub place: String,
}

impl Holder {
    /// Where a party's transaction on `conn`'s server will be, as recovery compares it with the
    /// servers it is given; its gid is filled in with the decision
    /// ([`DecisionLog::record_parties`]). A server whose identity cannot be read is recorded
    /// with an empty one (recovery then asks for it by name).
    pub fn of(conn: &mut Connection, display: String) -> Self {
        let (server, database) = server_identity(conn).unwrap_or_default();
        Self {
            gid: String::new(),
            server,
            database,
            display,
            backend: String::new(),
            place: server_place(conn),
        }
    }

    /// [`Holder::of`], with `conn`'s own session as the one that will prepare
    /// ([`Holder::backend`]).
    pub fn of_session(conn: &mut Connection, display: String) -> Self {
        let backend = conn
            .query(BACKEND_SQL)
            .ok()
            .and_then(|rows| rows.into_iter().next())
            .and_then(|row| row.into_iter().next().flatten())
            .unwrap_or_default();
        Self {
            backend,
            ..Self::of(conn, display)
        }
    }
}

/// This session's backend as [`Holder::backend`] names it: its pid and start, in UTC and a
/// fixed form whatever the session's `TimeZone` and `DateStyle` (a run's and a recovery's
/// sessions of two zones did not know one backend: "nothing pending", and its PREPARE landed
/// after).
const BACKEND_SQL: &str = "SELECT pid::text || ' ' || pg_catalog.to_char(backend_start AT TIME \
     ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') \
     FROM pg_catalog.pg_stat_activity WHERE pid = pg_catalog.pg_backend_pid()";

/// Every backend of `conn`'s server that the session may see, as [`Holder::backend`] names
/// them (`PID BACKEND_START`, and `PID` alone): where a run's session still lives.
///
/// # Errors
/// The query failed.
pub fn live_backends(conn: &mut Connection) -> Result<HashSet<String>, Error> {
    let rows = conn.query(
        "SELECT pid::text || ' ' || pg_catalog.to_char(backend_start AT TIME ZONE 'UTC', \
         'YYYY-MM-DD HH24:MI:SS.US') FROM pg_catalog.pg_stat_activity \
         WHERE backend_start IS NOT NULL",
    )?;
    Ok(rows
        .into_iter()
        .filter_map(|row| row.into_iter().next().flatten())
        .flat_map(|backend| {
            let pid = backend.split(' ').next().unwrap_or_default().to_owned();
            [backend, pid]
        })
        .collect())
}

/// The runs whose global ids another session of `conn`'s server names in its last statement
/// (a run's session idle after its `PREPARE TRANSACTION 'copyman:RUN:N'`, one sending its
/// `COMMIT PREPARED`, another recovery's), each with that session's process id: a run that
/// may still be in progress, on this host or another, where its lock file and its process
/// cannot be seen (dup65 F14: `recover --no-decision-log` on a second machine rolled back a live
/// run's first destination, splitting it). Sessions whose text the role may not see
/// (`<insufficient privilege>`) tell nothing.
///
/// # Errors
/// The query failed.
pub fn runs_in_sessions(conn: &mut Connection) -> Result<Vec<(String, String)>, Error> {
    let rows = conn.query(
        "SELECT pid::text, query FROM pg_catalog.pg_stat_activity \
         WHERE pid <> pg_catalog.pg_backend_pid() AND query LIKE '%''copyman:%'",
    )?;
    let mut runs = Vec::new();
    for row in rows {
        let (Some(Some(pid)), Some(Some(query))) = (row.first(), row.get(1)) else {
            continue;
        };
        for quoted in query.split('\'').skip(1).step_by(2) {
            if let Some((run, _)) = parse_gid(quoted) {
                runs.push((run.to_owned(), pid.clone()));
            }
        }
    }
    Ok(runs)
}

/// A server's identity for recovery: its `system_identifier` (the same for every database of
/// the cluster, different for every `initdb`), and the session's database.
///
/// # Errors
/// The server's (PostgreSQL before 9.6 has no `pg_control_system()`).
pub fn server_identity(conn: &mut Connection) -> Result<(String, String), Error> {
    let rows = conn.query(
        "SELECT (SELECT system_identifier::text FROM pg_catalog.pg_control_system()), \
         pg_catalog.current_database()",
    )?;
    let text = |i: usize| {
        rows.first()
            .and_then(|r| r.get(i).cloned().flatten())
            .unwrap_or_default()
    };
    Ok((text(0), text(1)))
}

/// Where `conn`'s server keeps its data: its data directory, which a superuser or a member of
/// `pg_read_all_settings` may read; empty for another role (asked so that no error is raised
/// in a transaction the session may be in).
pub fn server_place(conn: &mut Connection) -> String {
    // (pg_read_all_settings came with PostgreSQL 10: asked of an older server, the role's name
    // would raise an error.)
    if conn
        .session()
        .server_version_num()
        .is_none_or(|v| v < 100_000)
    {
        return String::new();
    }
    conn.query(
        "SELECT CASE WHEN (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) \
           OR pg_catalog.pg_has_role('pg_read_all_settings', 'MEMBER') \
         THEN pg_catalog.current_setting('data_directory') END",
    )
    .ok()
    .and_then(|rows| rows.into_iter().next()?.into_iter().next().flatten())
    .unwrap_or_default()
}

/// A log field: `%`, whitespace and control characters as `%XX` (an empty field as `%`).
fn escape(text: &str) -> String {
    if text.is_empty() {
        return "%".to_owned();
    }
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '%' || c.is_whitespace() || c.is_control() {
            let mut buf = [0; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The inverse of [`escape`].
fn unescape(field: &str) -> String {
    if field == "%" {
        return String::new();
    }
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let byte = (bytes[i] == b'%')
            .then(|| field.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match byte {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A run in progress, for [`DecisionLog::run_in_progress`]; dropped when the run is over.
#[derive(Debug)]
pub struct RunLock {
    file: File,
    path: PathBuf,
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

/// A prepared transaction copyman left on a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// Its global id.
    pub gid: String,
    /// Its run.
    pub run: String,
    /// When it was prepared (the server's text), and its age in whole seconds.
    pub prepared: String,
    /// Its age in seconds.
    pub age_secs: u64,
    /// The database it is in (it can be finished only from a session in that database).
    pub database: String,
    /// Whether it belongs to the database `conn` is connected to.
    pub here: bool,
    /// The role that prepared it: only it (or a superuser) may finish it.
    pub owner: String,
}

/// copyman's prepared transactions on `conn`'s server, oldest first (never another program's).
///
/// # Errors
/// The server's.
pub fn prepared(conn: &mut Connection) -> Result<Vec<Prepared>, Error> {
    let rows = conn.query(
        "SELECT gid, prepared::text, \
         floor(extract(epoch FROM now() - prepared))::int8::text, database, \
         (database = current_database())::text, owner::text \
         FROM pg_prepared_xacts WHERE gid LIKE 'copyman:%' ORDER BY prepared",
    )?;
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            let text = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
            let gid = text(0);
            let (run, _) = parse_gid(&gid)?;
            Some(Prepared {
                run: run.to_owned(),
                prepared: text(1),
                age_secs: text(2).parse().unwrap_or(0),
                database: text(3),
                here: text(4) == "true",
                owner: text(5),
                gid,
            })
        })
        .collect())
}

/// The process a run id names (`TIME-PID-SALT`, [`DecisionLog::new_run_id`]), if a copyman
/// process of that id runs on this host: perhaps the run itself, still in progress. Known by
/// its executable (`/proc/PID/exe`): this very program however it was started (a symbolic link,
/// another name), or one whose file is named copyman; and by its start, not after the run id's
/// time. Never this process (recheck49 F1: a run given a killed run's process id took that
/// run's prepared transaction for its own live one, and stored every row beside it).
pub fn live_run(run: &str) -> Option<u32> {
    let mut words = run.split('-');
    let time: u64 = words.next()?.parse().ok()?;
    let pid: u32 = words.next()?.parse().ok()?;
    if pid == std::process::id() || process_started(pid).is_some_and(|started| started > time + 1) {
        return None;
    }
    let exe = fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    let same = |a: &Path, b: &Path| {
        use std::os::unix::fs::MetadataExt;
        match (fs::metadata(a), fs::metadata(b)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    };
    let ours = fs::read_link("/proc/self/exe").ok();
    let named = exe
        .file_name()
        .is_some_and(|n| n.to_string_lossy().contains("copyman"));
    (named || ours.is_some_and(|o| same(&o, &exe))).then_some(pid)
}

/// The process that holds the lock on the file at `path` (an `flock`, as [`DecisionLog`] takes
/// on its log), with its command line, from `/proc/locks`: who keeps a run waiting to write its
/// log (another run or recover sharing it, a `flock` of a script). `None` where none holds it,
/// or it cannot be told (no `/proc`).
pub fn lock_holder(path: &Path) -> Option<(u32, String)> {
    let pid = file_locks(path)?
        .into_iter()
        .find_map(|(waits, pid)| (!waits).then_some(pid))?;
    let command = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let command: Vec<String> = (command.split(|b| *b == 0))
        .filter(|w| !w.is_empty())
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect();
    Some((pid, command.join(" ")))
}

/// Whether process `pid` waits for the lock on the file at `path` (blocked in its `flock`), as
/// `/proc/locks` says: a recovery blocked so says it ([`lock_holder`] names who it waits for).
pub fn waits_for_lock(path: &Path, pid: u32) -> bool {
    file_locks(path).is_some_and(|locks| locks.contains(&(true, pid)))
}

/// The `flock`s on the file at `path`, from `/proc/locks`: (whether it is a waiter's, the
/// process). `None` where that cannot be read.
fn file_locks(path: &Path) -> Option<Vec<(bool, u32)>> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::metadata(path).ok()?;
    // `/proc/locks` names a file `MAJOR:MINOR:INODE`, the device numbers in hex.
    let dev = meta.dev();
    let (major, minor) = (
        ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff),
        (dev & 0xff) | ((dev >> 12) & !0xff),
    );
    let file = format!("{major:02x}:{minor:02x}:{}", meta.ino());
    let locks = fs::read_to_string("/proc/locks").ok()?;
    // `1: FLOCK  ADVISORY  WRITE 31259 fe:00:10010809 0 EOF`; a waiter's line has `->` after
    // its number, the rest one word later.
    Some(
        (locks.lines())
            .filter_map(|line| {
                let words: Vec<&str> = line.split_whitespace().collect();
                let waits = words.get(1) == Some(&"->");
                let at = usize::from(waits);
                (words.get(5 + at) == Some(&file.as_str()))
                    .then(|| Some((waits, words.get(4 + at)?.parse().ok()?)))?
            })
            .collect(),
    )
}

/// When process `pid` started, in seconds since the epoch (`/proc/PID/stat`'s start in clock
/// ticks since boot, which Linux counts at 100 a second for `/proc`, plus `/proc/stat`'s boot
/// time); `None` where that cannot be read.
fn process_started(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command's name, which may hold spaces and parentheses: the third field on.
    let rest = &stat[stat.rfind(')')? + 1..];
    let ticks: u64 = rest.split_whitespace().nth(19)?.parse().ok()?;
    let boot: u64 = fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    Some(boot + ticks / 100)
}

/// The holders of a lock in words ([`copyman_core::commit::held_by`]), a prepared transaction
/// of a copyman run still in progress on this host said as that run's ([`live_run`]).
pub fn held_by(holders: &str) -> String {
    copyman_core::commit::held_by_runs(holders, live_run)
}

/// copyman's prepared transactions in the database `conn` is connected to, each said with its
/// age and the tables it holds locks on (what recover will commit or roll back there):
/// `copyman:…:2 (prepared 12 s ago; on "public"."t1")`. Empty where there are none or where
/// that cannot be asked.
pub fn prepared_here(conn: &mut Connection) -> Vec<String> {
    prepared_holding(conn, &[])
}

/// [`prepared_here`]'s transactions that wrote one of `tables` (regclass literals,
/// [`TableName::regclass_literal`](crate::sql::TableName::regclass_literal)), or all of them
/// where `tables` is empty.
pub fn prepared_holding(conn: &mut Connection, tables: &[String]) -> Vec<String> {
    // A prepared transaction's locks are listed with no backend, under the virtual
    // transaction that holds the lock on its own transaction id.
    let locks = "FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_locks x \
              ON x.virtualtransaction = l.virtualtransaction AND x.pid IS NULL \
              AND x.locktype = 'transactionid' AND x.transactionid = p.transaction \
            WHERE l.locktype = 'relation' AND l.pid IS NULL \
              AND l.mode = 'RowExclusiveLock'";
    let holding = match tables {
        [] => String::new(),
        tables => {
            let regclasses: Vec<String> = (tables.iter())
                .map(|t| format!("pg_catalog.to_regclass({t})"))
                .collect();
            format!(
                "AND EXISTS (SELECT 1 {locks} AND l.relation IN ({}))",
                regclasses.join(", ")
            )
        }
    };
    let rows = conn.query(&format!(
        "SELECT p.gid, floor(extract(epoch FROM now() - p.prepared))::int8::text, \
           (SELECT pg_catalog.string_agg(DISTINCT l.relation::pg_catalog.regclass::text, ', ') \
            {locks}) \
         FROM pg_catalog.pg_prepared_xacts p \
         WHERE p.gid LIKE 'copyman:%' AND p.database = pg_catalog.current_database() \
         {holding} ORDER BY p.prepared",
    ));
    rows.unwrap_or_default()
        .into_iter()
        .filter_map(|row| {
            let text = |i: usize| row.get(i).cloned().flatten();
            let gid = text(0)?;
            // A run in progress (a copyman process of its id runs here) ends its own: not left
            // by an earlier run, and a copy waits for it.
            if parse_gid(&gid).is_some_and(|(run, _)| live_run(run).is_some()) {
                return None;
            }
            let age = text(1).unwrap_or_default();
            Some(match text(2) {
                Some(tables) => format!("{gid} (prepared {age} s ago; on {tables})"),
                None => format!("{gid} (prepared {age} s ago)"),
            })
        })
        .collect()
}

/// What a run into a database holding [`prepared_here`]'s transactions is told, before it
/// copies (`label` names the destination): they hold their locks, and what they wrote is
/// committed on top of this run's rows when recover finishes them as their run decided (run
/// again after a kill, a table without a unique key held its rows twice: signals43 F8).
pub fn prepared_here_warning(label: &str, prepared: &[String]) -> Option<String> {
    (!prepared.is_empty()).then(|| {
        format!(
            "{label} holds copyman's prepared transaction {} of an earlier run: it holds its \
             locks until copyman recover finishes it as its run decided — committed, where it \
             decided commit, on top of this run's rows in the same tables; finish it first with \
             copyman recover and that run's --decision-log",
            prepared.join(", ")
        )
    })
}

/// Why a run that writes into a table that [`prepared_holding`]'s transactions of an earlier run
/// wrote is refused (`label` names the destination): recover commits them, where their run
/// decided commit, and this run's rows would come on top (run again after a kill, every row was
/// there twice, exit 0, the warning of [`prepared_here_warning`] said and passed over: commit48
/// F4).
pub fn prepared_holding_refusal(label: &str, prepared: &[String]) -> Option<String> {
    (!prepared.is_empty()).then(|| {
        format!(
            "{label} holds copyman's prepared transaction {} of an earlier run, which wrote into \
             this run's table: copyman recover finishes it as its run decided, committing its \
             rows where it decided commit, and this run would add them again; finish it first \
             with copyman recover and that run's --decision-log (a run still committing \
             finishes it in a moment), then copy what it did not commit",
            prepared.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This process is never a live run, whatever run id names its process id; a process is
    /// not a run whose id was made before it started (recheck49 F1: a process id given again).
    #[test]
    fn a_live_run_is_another_process_that_started_before_its_run_id() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let own = std::process::id();
        assert_eq!(live_run(&format!("{now}-{own}-abcd")), None);
        let started = process_started(own).expect("this process's start");
        assert!(started <= now + 1, "{started} {now}");
        // PID 1 started before now, long after a run id of the epoch's first day.
        if let Some(init) = process_started(1) {
            assert!(init > 86_400, "{init}");
        }
        assert_eq!(live_run("86400-1-abcd"), None);
    }

    fn temp_log(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!(
            "copyman-sync-{}-{name}/decisions.log",
            std::process::id()
        ))
    }

    /// A write waiting for the log's lock is given up once the caller's stop says so, and a
    /// decision is called off under the lock: nothing written; the lock taken meanwhile by the
    /// wait's thread is let go as soon as it is taken. Without a stop it waits.
    #[test]
    fn a_wait_for_the_logs_lock_is_given_up_on_the_callers_stop() {
        use std::sync::atomic::{AtomicBool, Ordering};
        static STOP: AtomicBool = AtomicBool::new(false);
        let path = temp_log("stop");
        let log = DecisionLog::open(&path)
            .unwrap()
            .stopped_by(|| STOP.load(Ordering::SeqCst));
        let decision = Decision {
            run: "r1".into(),
            gids: vec![(0, "copyman:r1:1".into())],
            source: None,
        };
        let held = File::open(&path).unwrap();
        held.lock().unwrap();
        let stopper = thread::spawn(|| {
            thread::sleep(Duration::from_millis(200));
            STOP.store(true, Ordering::SeqCst);
        });
        let e = log.record(&decision).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::Interrupted, "{e}");
        stopper.join().unwrap();
        held.unlock().unwrap();
        // The given-up wait's thread takes the lock, and lets it go at once.
        let other = File::open(&path).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while other.try_lock().is_err() {
            assert!(Instant::now() < deadline, "the lock was never let go");
            thread::sleep(Duration::from_millis(20));
        }
        other.unlock().unwrap();
        assert!(log.committed().unwrap().is_empty());
        // Called off under the lock: nothing written either.
        STOP.store(false, Ordering::SeqCst);
        let e = (log.record_parties_unless(&decision, &[], None, &|| true)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::Interrupted, "{e}");
        assert!(log.committed().unwrap().is_empty());
        // Not stopped: it waits for the holder, then writes.
        held.lock().unwrap();
        let letting_go = thread::spawn(move || {
            thread::sleep(Duration::from_millis(200));
            held.unlock().unwrap();
        });
        log.record(&decision).unwrap();
        letting_go.join().unwrap();
        assert!(log.committed().unwrap().contains("copyman:r1:1"));
        let _ = fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn decisions_are_read_back_and_a_torn_line_counts_for_nothing() {
        let path = temp_log("torn");
        let log = DecisionLog::open(&path).unwrap();
        assert!(log.committed().unwrap().is_empty(), "created empty");
        log.record(&Decision {
            run: "r1".into(),
            gids: vec![(0, "copyman:r1:1".into()), (1, "copyman:r1:2".into())],
            source: Some("copyman:r1:0".into()),
        })
        .unwrap();
        // A crash in the middle of the next record: no newline, never fsynced.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"commit r2 copyman:r2:1 copyman:r2").unwrap();
        let committed = log.committed().unwrap();
        assert!(committed.contains("copyman:r1:1") && committed.contains("copyman:r1:2"));
        assert!(committed.contains("copyman:r1:0"), "the source's, too");
        assert!(!committed.contains("copyman:r2:1"), "{committed:?}");
        fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_recoverys_commit_prepared_is_told_from_its_runs() {
        let path = temp_log("committing");
        let log = DecisionLog::open(&path).unwrap();
        log.committing("r1", "copyman:r1:1").unwrap();
        log.recovery_committing("r1", "copyman:r1:2").unwrap();
        let read = log.read().unwrap();
        assert_eq!(read.committing, HashSet::from(["copyman:r1:1".to_owned()]));
        assert_eq!(
            read.recovery_committing,
            HashSet::from(["copyman:r1:2".to_owned()])
        );
        // Refused (answered with an error): not running; sent again by a later recovery: it is,
        // and one more refused then leaves that one running.
        log.refused("r1", "copyman:r1:2").unwrap();
        assert!(log.read().unwrap().recovery_committing.is_empty());
        log.recovery_committing("r1", "copyman:r1:2").unwrap();
        assert_eq!(log.read().unwrap().recovery_committing.len(), 1);
        log.recovery_committing("r1", "copyman:r1:2").unwrap();
        log.refused("r1", "copyman:r1:2").unwrap();
        assert_eq!(log.read().unwrap().recovery_committing.len(), 1);
        fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn holders_and_ends_are_read_back_and_old_lines_still_read() {
        let path = temp_log("holders");
        let log = DecisionLog::open(&path).unwrap();
        // An older copyman's decision: no holders.
        log.record(&Decision {
            run: "r0".into(),
            gids: vec![(0, "copyman:r0:1".into())],
            source: None,
        })
        .unwrap();
        let holder = |gid: &str, display: &str| Holder {
            gid: gid.into(),
            server: "7300".into(),
            database: "my db".into(),
            display: display.into(),
            backend: "4242 2026-12-03 12:00:00+00".into(),
            place: "/srv/pg/data".into(),
        };
        let holders = [
            holder("copyman:r1:1", "destination 1 h:1/my db"),
            holder("copyman:r1:0", ""),
        ];
        log.record_with_holders(
            &Decision {
                run: "r1".into(),
                gids: vec![(0, "copyman:r1:1".into())],
                source: Some("copyman:r1:0".into()),
            },
            &holders,
        )
        .unwrap();
        let read = log.read().unwrap();
        assert!(!read.holders.contains_key("r0"));
        assert_eq!(read.holders["r1"], holders);
        assert!(read.committed.contains("copyman:r0:1") && read.committed.contains("copyman:r1:0"));
        assert!(read.done.is_empty());
        log.finished("r1").unwrap();
        assert!(log.read().unwrap().done.contains("r1"));
        log.aborted("r2").unwrap();
        let read = log.read().unwrap();
        assert!(read.aborted.contains("r2") && read.runs.contains("r2"));
        assert!(!read.aborted.contains("r1"));
        fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_run_is_in_progress_while_its_lock_is_held() {
        let path = temp_log("lock");
        let log = DecisionLog::open(&path).unwrap();
        let run = DecisionLog::new_run_id();
        assert!(valid_run_id(&run), "{run}");
        assert!(DecisionLog::is_commands_run_id(&run), "{run}");
        assert!(DecisionLog::is_commands_run_id(&format!("{run}-12")));
        for other in [
            "1",
            "r1",
            "nightly-backup",
            "1-2-xyz0",
            "1-2-abcd-",
            "1-2-abcd-3-4",
            "1796664594-18849-AD29",
            "01796664594-18849-ad29",
            "9999999999-1-ab12",
            "1796664594-0-ab12",
            "1796664594-018849-ab12",
            // (recheck70 F8.)
            "1000000000-123-abcd",
            "1796664594-4294967296-abcd",
            "1796664594-123-abcd-0",
        ] {
            assert!(!DecisionLog::is_commands_run_id(other), "{other}");
        }
        assert_ne!(run, DecisionLog::new_run_id());
        assert!(!log.runs().unwrap().contains(&run));
        let guard = log.lock_run(&run).unwrap();
        assert!(log.run_in_progress(&run));
        // Its start is in the log before anything is prepared.
        assert!(log.runs().unwrap().contains(&run));
        assert!(log.committed().unwrap().is_empty());
        drop(guard);
        assert!(!log.run_in_progress(&run));
        // A killed run's lock file (never unlocked by its guard, released by the kernel) is
        // found unlocked and removed.
        let dead = DecisionLog::new_run_id();
        let left = log.lock_path(&dead);
        File::create(&left).unwrap();
        assert!(!log.run_in_progress(&dead));
        assert!(!left.exists());
        // Held for a moment by another recovery recording that death: not in progress
        // (recheck65 F3).
        let dead = DecisionLog::new_run_id();
        let left = log.lock_path(&dead);
        let other = File::create(&left).unwrap();
        other.lock().unwrap();
        let recording = thread::spawn(move || {
            thread::sleep(Duration::from_millis(60));
            fs::remove_file(&left).unwrap();
            other.unlock().unwrap();
        });
        assert!(!log.run_in_progress(&dead));
        recording.join().unwrap();
        // A lock file that cannot be made (an unwritable directory; here a directory in its
        // way): said as such, and the run's start not written (commit66 F10).
        let blocked = DecisionLog::new_run_id();
        let mut fresh = log.lock_path(&blocked).into_os_string();
        fresh.push(".new");
        fs::create_dir(&fresh).unwrap();
        let error = log.lock_run(&blocked).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("cannot create the run's lock file"),
            "{error}"
        );
        assert!(!log.runs().unwrap().contains(&blocked));
        fs::remove_dir(&fresh).unwrap();
        // Who holds the log's lock, as a run waiting for it says.
        assert_eq!(lock_holder(&path), None);
        let held = File::open(&path).unwrap();
        held.lock().unwrap();
        let (pid, command) = lock_holder(&path).unwrap();
        assert_eq!(pid, std::process::id());
        assert!(!command.is_empty());
        // And one that waits for it.
        let waiting = thread::spawn({
            let path = path.clone();
            move || File::open(&path).unwrap().lock().unwrap()
        });
        let started = Instant::now();
        while !waits_for_lock(&path, std::process::id()) {
            assert!(started.elapsed().as_secs() < 10, "never seen waiting");
            thread::sleep(Duration::from_millis(10));
        }
        held.unlock().unwrap();
        waiting.join().unwrap();
        let files: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(files, [path.file_name().unwrap()], "no lock file stays");
        assert!(DecisionLog::existing(&path).is_ok());
        assert!(DecisionLog::existing(path.with_file_name("missing.log")).is_err());
        fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_runs_start_names_its_parties_once_and_an_undecided_run_keeps_them() {
        let path = temp_log("begun");
        let log = DecisionLog::open(&path).unwrap();
        let at = |display: &str| Holder {
            gid: String::new(),
            server: "7300".into(),
            database: "db".into(),
            display: display.into(),
            backend: String::new(),
            place: String::new(),
        };
        let (d1, d2, source) = (at("destination 1"), at("destination 2"), at("the source"));
        // r1 dies before its decision; r2 decides commit for both destinations.
        drop(
            log.lock_run_with("r1", &[Some(&d1), None], Some(&source))
                .unwrap(),
        );
        drop(
            log.lock_run_with("r2", &[Some(&d1), Some(&d2)], None)
                .unwrap(),
        );
        let decision = Decision {
            run: "r2".into(),
            gids: vec![(0, "copyman:r2:1".into()), (1, "copyman:r2:2".into())],
            source: None,
        };
        log.record_parties(&decision, &[Some(&d1), Some(&d2)], None)
            .unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text.matches("party r2 ").count(), 2, "named once: {text}");
        let read = log.read().unwrap();
        let gids = |hs: &[Holder]| hs.iter().map(|h| h.gid.clone()).collect::<Vec<_>>();
        assert_eq!(gids(&read.begun["r1"]), ["copyman:r1:1", "copyman:r1:0"]);
        assert_eq!(read.begun["r1"][1].display, "the source");
        assert!(
            !read.begun.contains_key("r2"),
            "decided: its decision's parties"
        );
        assert_eq!(gids(&read.holders["r2"]), ["copyman:r2:1", "copyman:r2:2"]);
        fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn the_logs_end_is_read_as_the_whole_log_would_be_whatever_the_block_size() {
        // What `read_tail` must find, read the simple way.
        fn naive(text: &str, since: Option<&str>) -> (String, u64) {
            let whole = text.rfind('\n').map_or(0, |i| i + 1);
            let lines = &text[..whole];
            let from = match since {
                None => whole,
                Some(m) => {
                    let m = format!("{m}\n");
                    let mut at = None;
                    let mut pos = 0;
                    for line in lines.split_inclusive('\n') {
                        if line == m {
                            at = Some(pos);
                        }
                        pos += line.len();
                    }
                    at.unwrap_or(0)
                }
            };
            (lines[from..].to_owned(), whole as u64)
        }
        let path = temp_log("tail");
        let _ = DecisionLog::open(&path).unwrap();
        let logs = [
            "",
            "torn",
            "begin r\n",
            "begin r\nparty r a\ncommit r a\n",
            "begin r\nxbegin r\nbegin r\nabort r\ncommit r c",
            "done q\nbegin r\nabort q\nbegin rr\nbegin r\nparty r g s d x\ntorn tail",
            "begin rx\nbegin r",
            "\n\nbegin r\n\n",
        ];
        for text in logs {
            fs::write(&path, text).unwrap();
            let file = File::open(&path).unwrap();
            for since in [None, Some("begin r")] {
                let expected = naive(text, since);
                for block in 1..=12 {
                    let got = read_tail_by(&file, since, block).unwrap();
                    assert_eq!(got, expected, "{text:?} since {since:?} by {block}");
                }
                assert_eq!(read_tail(&file, since).unwrap(), expected);
            }
        }
        fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_torn_line_is_cut_off_before_the_next_line_is_written() {
        // A decision cut short (a full disk): written after it, the next run's `begin` made one
        // whole line of both, read as a commit of the torn decision's gids.
        let path = temp_log("torn-then-begin");
        let log = DecisionLog::open(&path).unwrap();
        log.lock_run("r0").map(drop).unwrap();
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"commit r1 copyman:r1:1 copyman:r1:2 cop")
            .unwrap();
        drop(f);
        let guard = log.lock_run("r2").unwrap();
        let read = log.read().unwrap();
        assert!(read.committed.is_empty(), "{read:?}");
        assert!(
            read.runs.contains("r2") && read.runs.contains("r0"),
            "{read:?}"
        );
        assert_eq!(fs::read_to_string(&path).unwrap(), "begin r0\nbegin r2\n");
        drop(guard);
        fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    /// A log moved, replaced or removed while a run goes on: nothing more is written, the
    /// decision first (it was written into a new file at the path, without the run's start).
    #[test]
    fn a_log_moved_away_during_a_run_takes_no_decision() {
        let path = temp_log("moved");
        let decision = Decision {
            run: "r1".into(),
            gids: vec![(0, "copyman:r1:1".into())],
            source: None,
        };
        let log = DecisionLog::open(&path).unwrap();
        let _guard = log.lock_run("r1").unwrap();
        let away = path.with_file_name("moved.log");
        fs::rename(&path, &away).unwrap();
        let refused = log.record(&decision).unwrap_err();
        assert!(
            refused.to_string().contains("no longer the file"),
            "{refused}"
        );
        assert!(!path.exists(), "no new log made at its path");
        // Another file in its place.
        fs::write(&path, "").unwrap();
        let refused = log.record(&decision).unwrap_err();
        assert!(refused.to_string().contains("another file"), "{refused}");
        assert_eq!(fs::read_to_string(&path).unwrap(), "");
        assert_eq!(fs::read_to_string(&away).unwrap(), "begin r1\n");
        // Back where it was, it takes the decision.
        fs::rename(&away, &path).unwrap();
        log.record(&decision).unwrap();
        assert!(log.committed().unwrap().contains("copyman:r1:1"));
        fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn no_decision_is_recorded_after_the_run_was_rolled_back() {
        let path = temp_log("abort-first");
        let log = DecisionLog::open(&path).unwrap();
        let decision = Decision {
            run: "r1".into(),
            gids: vec![(0, "copyman:r1:1".into())],
            source: None,
        };
        log.aborted("r1").unwrap();
        let refused = log.record(&decision).unwrap_err();
        assert!(refused.to_string().contains("abort r1"), "{refused}");
        assert!(log.committed().unwrap().is_empty());
        // Another run's abort does not stand in its way.
        log.aborted("r10").unwrap();
        let other = Decision {
            run: "r1x".into(),
            ..decision
        };
        log.record(&other).unwrap();
        assert!(log.committed().unwrap().contains("copyman:r1:1"));
        fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_run_is_in_progress_however_the_logs_path_is_spelled() {
        let path = temp_log("symlink");
        let log = DecisionLog::open(&path).unwrap();
        let link = path.with_file_name("link.log");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        let guard = DecisionLog::existing(&link)
            .unwrap()
            .lock_run("r1")
            .unwrap();
        assert!(log.run_in_progress("r1"));
        let dotted = path
            .parent()
            .unwrap()
            .join("..")
            .join(path.parent().unwrap().file_name().unwrap())
            .join("decisions.log");
        assert!(
            DecisionLog::existing(&dotted)
                .unwrap()
                .run_in_progress("r1")
        );
        drop(guard);
        assert!(!log.run_in_progress("r1"));
        fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    /// What a commit a crash took in whole, in part or perhaps says: each begins as its
    /// callers read it (a failure, not "did not commit"; in part: no advice to copy again).
    #[test]
    fn emptied_words() {
        let emptied = |tables: &str, unknown: &str, kept: &str| Emptied {
            tables: tables.to_owned(),
            unknown: unknown.to_owned(),
            kept: kept.to_owned(),
        };
        let whole = emptied("a", "", "").words();
        assert!(
            whole.starts_with(NONE_KEPT) && whole.contains("a lost the rows"),
            "{whole}"
        );
        let part = emptied("a", "", "b").words();
        assert!(
            !part.starts_with(NONE_KEPT) && part.starts_with(EMPTIED),
            "{part}"
        );
        assert!(part.contains("without the rows it wrote into a:"), "{part}");
        assert!(
            part.contains("those it wrote into b are committed"),
            "{part}"
        );
        let perhaps = emptied("", "a (permission denied)", "").words();
        assert!(
            perhaps.starts_with(
                "its transaction committed, but whether a (permission denied) \
                 kept the rows it wrote cannot be told"
            ),
            "{perhaps}"
        );
        assert!(!perhaps.ends_with(';'), "{perhaps}");
    }
}
