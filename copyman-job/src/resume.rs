//! What a resume does with a table an earlier run began on a destination and did not record
//! done, and with one it recorded done: asked of the destination, not guessed.
//!
//! Before each COMMIT (or `PREPARE TRANSACTION`) the job records a `commit` line with the
//! destination's transaction ids ([`announce_commit`]). A resume then knows, for a table begun
//! and not done ([`settle`]): no `commit` line, its COMMIT was never sent (copied again, not
//! emptied: rows the destination holds of its own stay); a `commit` line, `txid_status()` there
//! says whether it committed (done: not copied twice) or not (copied again, not emptied). Only
//! what cannot be told is emptied first, as every begun table was before (and said, when it is
//! not the old format's plain lack of records).
//!
//! A table recorded done with rows but empty there ([`holds_rows`]) is not what the record
//! describes: a clone of the destination (a base backup, a copied data directory) has its
//! system identifier and oids, hence its name in the state file.

use std::collections::HashMap;
use std::fmt;
use std::thread;
use std::time::{Duration, Instant};

use copyman_sync::Connection;

use crate::job::{TableError, describe};
use crate::sql::{TableName, own_rows};
use crate::state::{Committing, Recorded, StateFile};

/// How long a resume waits for an earlier run's transaction that is still in progress (the
/// server has not yet noticed that its client died) before it refuses.
const IN_PROGRESS_WAIT: Duration = Duration::from_secs(10);

/// What a resume does with a table begun and not done on a destination.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Settled {
    /// An earlier attempt committed, with these rows: done (recorded so, not copied again).
    Committed(u64),
    /// Committed with these rows, found different from the source by an earlier run's
    /// `--verify`, and compared again by this one's: not copied ([`Resumed::Recheck`]).
    Recheck(u64),
    /// No earlier attempt committed: copied again, emptied first only when `empty` (what the
    /// earlier attempts left cannot be told otherwise); `note` says why, when it should be said.
    Again {
        /// Empty the table first (in the copy's transaction).
        empty: bool,
        /// What the user should hear.
        note: Option<String>,
    },
}

/// A transaction's fate, as `txid_status()` tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Fate {
    Committed,
    Aborted,
    InProgress,
    /// The server does not remember it (too old: NULL), cannot say (before PostgreSQL 10, a
    /// revoked function), or refuses the id (a clone whose transactions went elsewhere).
    Unknown(String),
}

fn fate(conn: &mut Connection, xid: u64) -> Fate {
    match conn.query(&format!("SELECT pg_catalog.txid_status({xid})")) {
        Ok(rows) => match rows
            .first()
            .and_then(|r| r.first().cloned().flatten())
            .as_deref()
        {
            Some("committed") => Fate::Committed,
            Some("aborted") => Fate::Aborted,
            Some("in progress") => Fate::InProgress,
            Some(other) => Fate::Unknown(format!("txid_status() said {other:?}")),
            None => Fate::Unknown("the server no longer remembers it".to_owned()),
        },
        // An id at or past the server's next one (22023 "is in the future") never committed in
        // this server's history: a crash forgot it before its COMMIT became durable (a resume
        // refused a server whose next id is not above an acknowledged commit's before this).
        Err(e)
            if e.db_error().is_some_and(|db| {
                db.code.as_str() == "22023" && db.message.contains("in the future")
            }) =>
        {
            Fate::Aborted
        }
        Err(e) => Fate::Unknown(describe(&e).to_string()),
    }
}

/// A resume that waits for a transaction an earlier run announced (its `commit` line) and that
/// is still in progress on a destination: its session has not ended yet (the server has not
/// noticed that its client died, or the run is still alive). Said before the wait (the job's
/// [`Event::ResumeWait`](crate::job::Event::ResumeWait)): the wait lasts up to
/// [`ResumeWait::limit`], then the resume goes on if the transaction ended, or is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResumeWait {
    /// The table, as the state file names it (quoted).
    pub table: String,
    /// The destination (0-based).
    pub destination: usize,
    /// The destination's name ([`Server::name`](crate::job::Server::name): never with a
    /// password).
    pub name: String,
    /// The transaction id (`txid_current()`, with its epoch) recorded on the `commit` line.
    pub xid: u64,
    /// The backend that holds it, when `pg_stat_activity` tells (its `backend_xid`).
    pub holder: Option<Backend>,
    /// How long the resume waits for it at most.
    pub limit: Duration,
}

/// A backend that holds a transaction, as `pg_stat_activity` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Backend {
    /// Its process id.
    pub pid: i32,
    /// Its `application_name`, when it has one and the server shows it.
    pub application_name: Option<String>,
}

impl fmt::Display for ResumeWait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "--resume: table {}: the earlier run's transaction {} on destination {} ({}) is \
             still in progress",
            self.table,
            self.xid,
            self.destination + 1,
            self.name
        )?;
        match &self.holder {
            Some(Backend {
                pid,
                application_name: Some(app),
            }) => write!(f, " (held by backend {pid}, application_name {app:?})")?,
            Some(Backend { pid, .. }) => write!(f, " (held by backend {pid})")?,
            None => {}
        }
        write!(
            f,
            ": waiting up to {} s for it to end",
            self.limit.as_secs()
        )
    }
}

/// The backend whose transaction is `xid`, if `pg_stat_activity` shows it (its `backend_xid`:
/// the 32-bit id, no epoch; a role without `pg_read_all_stats` sees it of its own sessions
/// only).
fn holder(conn: &mut Connection, xid: u64) -> Option<Backend> {
    let rows = conn
        .query(&format!(
            "SELECT pid::text, application_name FROM pg_catalog.pg_stat_activity \
             WHERE backend_xid::text = '{}'",
            xid & 0xFFFF_FFFF
        ))
        .ok()?;
    let row = rows.first()?;
    Some(Backend {
        pid: row.first()?.as_deref()?.parse().ok()?,
        application_name: row.get(1).cloned().flatten().filter(|a| !a.is_empty()),
    })
}

/// The fate of `xid`, waiting up to [`IN_PROGRESS_WAIT`] while it is in progress (not for a
/// prepared transaction: only a decision ends it); `waiting` is told once, before the wait.
fn settled_fate(
    conn: &mut Connection,
    xid: u64,
    waiting: &dyn Fn(Option<Backend>),
    interrupted: &dyn Fn() -> bool,
) -> Fate {
    let deadline = Instant::now() + IN_PROGRESS_WAIT;
    let mut said = false;
    loop {
        let fate = fate(conn, xid);
        let given_up = Instant::now() >= deadline || interrupted();
        if fate != Fate::InProgress || given_up || prepared(conn, xid).is_some() {
            return fate;
        }
        if !said {
            said = true;
            waiting(holder(conn, xid));
        }
        thread::sleep(Duration::from_millis(200));
    }
}

/// Where a resume is asked about: destination `d` (0-based), its key in the state file and its
/// name in words, and whom to tell of a wait.
pub(crate) struct Here<'a> {
    /// The destination (0-based).
    pub(crate) d: usize,
    /// Its key in the state file.
    pub(crate) key: &'a str,
    /// Its name ([`Server::name`](crate::job::Server::name)).
    pub(crate) name: &'a str,
    /// Told of each wait ([`ResumeWait`]) before it begins.
    pub(crate) waiting: &'a dyn Fn(ResumeWait),
    /// The job empties its tables first (`--truncate`): a table may be emptied again.
    pub(crate) truncate: bool,
    /// Whether the job was interrupted (a signal): a wait ends at once.
    pub(crate) interrupted: &'a dyn Fn() -> bool,
    /// The decision log the job was given (`--atomic`): the one a recover of its earlier run
    /// reads, said with the refusal of a table still prepared.
    pub(crate) log: Option<&'a std::path::Path>,
    /// Every decision log the job's runs were given ([`Recorded::logs`]): the one that holds
    /// a prepared transaction's run is named for its recover.
    pub(crate) logs: &'a [std::path::PathBuf],
    /// The first transaction id the destination gave this resume, where it was asked: an id
    /// the state file records at or above it is one a crash of the server forgot before it was
    /// durable — it committed nothing of the run, whatever `txid_status()` says of the
    /// transaction the server gave it to since.
    pub(crate) forgotten_from: Option<u64>,
    /// Found not where the earlier run left it (a restore, a failover), resumed under
    /// `--verify`: every table recorded there is compared, so one holding other rows than its
    /// copy's is not refused.
    pub(crate) moved: bool,
    /// Resumed under `--verify`: every table done there is compared with the source, so one
    /// holding other rows than its copy's is taken as done, to be compared, not refused.
    pub(crate) verify: bool,
    /// The copies recorded there whose tables hold none of their rows ([`copied_into`]).
    pub(crate) gone: &'a Gone,
    /// Under `--truncate`, a table not done there now that an earlier run copied in one
    /// transaction with this one ([`copied_with_undone`]): this one is copied again with it.
    pub(crate) copied_with: Option<&'a str>,
}

impl Here<'_> {
    /// The fate of the earlier run's transaction `xid` there ([`Here::forgotten_from`]).
    fn fate(&self, conn: &mut Connection, xid: u64) -> Fate {
        match self.forgotten_from {
            Some(first) if xid >= first => Fate::Aborted,
            _ => fate(conn, xid),
        }
    }
}

/// Decides what a resume does with `table`, which the state file records begun and not done
/// on destination `here`, asking the destination (`conn`) the fate of the transactions its
/// `commit` lines name (a wait for one still in progress is told first, [`Here::waiting`]).
///
/// # Errors
/// The words of a refusal: a transaction of an earlier attempt still in progress there (its
/// session has not ended, or it is prepared and undecided: `copyman recover` decides it).
fn settle(
    conn: &mut Connection,
    recorded: &Recorded,
    name: &TableName,
    here: &Here<'_>,
) -> Result<Settled, String> {
    let key = name.to_string();
    let table = key.as_str();
    let (dest, d) = (here.key, here.d);
    let attempts = recorded.attempts(table, dest);
    let mut unknown: Option<String> = None;
    let mut partial = false;
    // The transactions of a split table's ranges that committed, where others did not.
    let mut committed: Vec<u64> = Vec::new();
    // Transactions begun with no `commit` line after them: asked too, as one that announced
    // its COMMIT with the rows they wrote there. A state file restored from a copy taken
    // while its job ran lacks the line of one that committed: the table was copied there a
    // second time, exit 0 (jobs46 F1).
    // Only one that committed is asked further (its rows counted, a scan of the table): one
    // that did not is what a kill mid-copy leaves, copied again as before.
    let mut commits = attempts.commits.clone();
    // The transactions a restart leaves in doubt (their ids perhaps given again), whose rows
    // there, once deleted, let it be copied again.
    let mut doubtful: Vec<u64> = Vec::new();
    // A server started since the attempts began may have forgotten an id of theirs that was
    // never durable (a crash) and given it to another transaction since: a commit of it is not
    // known to be theirs, whatever rows it wrote (crash51 F1, recheck51b F1: an application's
    // rows, as many as the run's, or one, were taken for the table's copy, done, exit 0).
    // (Crash recovery after a backend was killed keeps the postmaster's start time: told by
    // its statistics' reset, recheck54 F4.)
    let restarted =
        crate::identity::restarted_since(conn, attempts.started, attempts.reset).unwrap_or(false);
    let given_again = || {
        "its server restarted since the earlier run began it there, and may have given a \
         transaction id of that run it forgot to another transaction since, which committed"
            .to_owned()
    };
    if attempts
        .began
        .iter()
        .any(|&x| here.fate(conn, x) == Fate::Committed)
    {
        match crate::identity::rows_of(conn, table, &attempts.began) {
            // (One that wrote nothing there duplicates nothing if it is copied again, whoever
            // it was: the rows deleted since, as the refusal below says — it refused for good
            // after a restart, jobs66 F10.)
            Some(0) => {}
            _ if restarted => {
                unknown = Some(given_again());
                doubtful.extend(&attempts.began);
            }
            Some(rows) => commits.push(Committing {
                rows,
                xids: attempts.began.clone(),
            }),
            None => {
                unknown = Some(format!(
                    "a transaction of it committed there that the state file records no COMMIT \
                     of (a copy of the file, taken while its run went on, restored?), and the \
                     rows it wrote cannot be counted (no SELECT on {table}?)"
                ));
            }
        }
    }
    for commit in &commits {
        // The first transaction still in progress (after its wait) refuses the resume: the
        // ones after it are not waited for too.
        let mut fates: Vec<(u64, Fate)> = Vec::with_capacity(commit.xids.len());
        for &xid in &commit.xids {
            let waiting = |holder| {
                (here.waiting)(ResumeWait {
                    table: table.to_owned(),
                    destination: d,
                    name: here.name.to_owned(),
                    xid,
                    holder,
                    limit: IN_PROGRESS_WAIT,
                });
            };
            let fate = match here.fate(conn, xid) {
                Fate::InProgress => settled_fate(conn, xid, &waiting, here.interrupted),
                fate => fate,
            };
            if fate == Fate::InProgress {
                return Err(in_progress(conn, table, xid, here));
            }
            fates.push((xid, fate));
        }
        // (A two-phase commit's PREPARE, after its `commit` line, made its id durable: one the
        // restarted server has committed since is its COMMIT PREPARED's, `copyman recover`'s.)
        if restarted
            && recorded.atomic.is_none()
            && fates.iter().any(|(_, f)| *f == Fate::Committed)
        {
            // None of the rows they wrote there now: copied again as an append, duplicating
            // nothing, whoever committed under those ids (jobs66 F10).
            if crate::identity::rows_of(conn, table, &commit.xids) == Some(0) {
                continue;
            }
            unknown.get_or_insert_with(given_again);
            doubtful.extend(&commit.xids);
            continue;
        }
        if !fates.is_empty() && fates.iter().all(|(_, f)| *f == Fate::Committed) {
            // A committed id whose rows are not all there, in a table that holds others, may
            // be another transaction's: a crash of the destination forgot the run's id before
            // its COMMIT was durable, and the server gave it to one of its own since — which
            // may have written into this very table (recheck41 F1) — or the rows were updated
            // or deleted since. An empty one is copied again ([`resumed_here`]).
            let newest = commit.xids.iter().copied().max().unwrap_or_default();
            let written = (commit.rows > 0)
                .then(|| crate::identity::rows_of(conn, table, &commit.xids))
                .flatten();
            // Another count than the run's either way: more were written by that id too (an
            // application's transaction given it inserting as many, recheck41b F6).
            if let Some(found) = written.filter(|&n| n != commit.rows)
                && holds_rows(conn, name) == Some(true)
            {
                unknown.get_or_insert_with(|| {
                    format!(
                        "transaction {newest} committed there, but the table holds {found} rows \
                         it wrote where the run's wrote {}: the server may have given the id to \
                         a transaction of its own after a crash forgot it, or the rows were \
                         updated or deleted since",
                        commit.rows
                    )
                });
                continue;
            }
            return Ok(Settled::Committed(commit.rows));
        }
        if let Some((xid, Fate::Unknown(why))) =
            fates.iter().find(|(_, f)| matches!(f, Fate::Unknown(_)))
        {
            unknown.get_or_insert_with(|| format!("transaction {xid}: {why}"));
        }
        partial |= fates.iter().any(|(_, f)| *f == Fate::Committed);
        committed.extend(
            fates
                .iter()
                .filter(|(_, f)| *f == Fate::Committed)
                .map(|(xid, _)| *xid),
        );
    }
    let told = unknown.is_none();
    let note = if let Some(why) = unknown {
        Some(format!(
            "{table}: whether an earlier run's copy to destination {} committed cannot \
             be told ({why}): it is emptied there and copied again, in one transaction",
            d + 1
        ))
    } else if partial {
        Some(format!(
            "{table}: some of the ranges an earlier run copied to destination {} \
             committed, the others not: it is emptied there and copied again, in one transaction",
            d + 1
        ))
    } else {
        None
    };
    // What cannot be told, or a part of a table committed: emptied and copied again only by a
    // job that empties its tables anyway (as below).
    if let Some(note) = note.as_ref().filter(|_| !here.truncate) {
        // The rows its committed ranges wrote are told by their `xmin`: once deleted there (as
        // the refusal below says), it is copied again as the append it is.
        if told && partial && crate::identity::holds_rows_of(conn, table, &committed) == Some(false)
        {
            return Ok(Settled::Again {
                empty: false,
                note: Some(format!(
                    "{table}: the rows that some of an earlier run's ranges committed on \
                     destination {} were deleted there since: it is copied again",
                    d + 1
                )),
            });
        }
        // Left in doubt by a restart only: compared with the source under --verify, done if it
        // matches — whoever wrote its rows, it then holds the source's (jobs67 F9: the only
        // ways on deleted the run's rows there, or emptied every table).
        if here.verify && !partial && !doubtful.is_empty() {
            let rows = crate::identity::rows_of(conn, table, &doubtful).unwrap_or_default();
            return Ok(Settled::Recheck(rows));
        }
        let note = note
            .split_once(": it is emptied")
            .map_or(note.as_str(), |(what, _)| what);
        // `xmin` is the id without its epoch.
        let xmins = |xids: &[u64]| -> String {
            let xids: Vec<String> = (xids.iter())
                .map(|x| format!("'{}'", x & 0xFFFF_FFFF))
                .collect();
            xids.join(", ")
        };
        let delete = if told && partial {
            format!(
                "delete the rows the earlier run committed there (DELETE FROM {table} WHERE \
                 xmin IN ({})) and resume again: it is then copied again; or ",
                xmins(&committed)
            )
        } else if !doubtful.is_empty() {
            doubtful.sort_unstable();
            doubtful.dedup();
            format!(
                "resume with --verify, which compares it with the source (done if it matches); \
                 or, if the rows those ids wrote there are the earlier run's (look at them: \
                 SELECT * FROM {table} WHERE xmin IN ({0})), delete them (DELETE FROM {table} \
                 WHERE xmin IN ({0})) and resume again: it is then copied again; or ",
                xmins(&doubtful)
            )
        } else {
            String::new()
        };
        return Err(format!(
            "--resume: {note}: it is not emptied and copied again, since without --truncate it \
             may hold rows this job did not write; {delete}resume with --truncate, which \
             empties every table of the job not done yet, on every destination, before it \
             copies it (rows they held before the job included)"
        ));
    }
    // A table that committed with a checksum unlike the source's: emptied and copied again
    // only by a job that empties its tables anyway; an append's table may hold rows the job did
    // not write (it held some before, or got some since), which emptying it would delete.
    if let Some(rows) = recorded.mismatched(table, dest)
        && !here.truncate
    {
        // Compared again under --verify (mended by hand since, it may match now: sweep58 F2,
        // the only ways on were --truncate and leaving it out).
        if here.verify {
            return Ok(Settled::Recheck(rows));
        }
        return Err(format!(
            "--resume: table {table} on destination {} differs from the source (an earlier \
             run's --verify found it so): it is not emptied and copied again, \
             since without --truncate it may hold rows this job did not write; mend it and \
             resume with --verify (it is compared again: done if it matches), or resume with \
             --truncate to replace it, or leave it out (--exclude-table)",
            d + 1
        ));
    }
    // One begun by a copyman that announced no commit (format 2), or that committed with a
    // checksum unlike the source's under --truncate, is emptied as before.
    let empty =
        note.is_some() || attempts.unannounced || recorded.mismatched(table, dest).is_some();
    Ok(Settled::Again { empty, note })
}

/// Whether every attempt the state file records at `table` on the destination `dest` (`conn`:
/// a session there) is known to have committed nothing: not done nor committed unlike the
/// source, attempts of a copyman that announces its COMMITs, and each transaction they name
/// aborted there. What cannot be told (a transaction the server no longer remembers, one
/// still in progress or prepared) is not.
pub(crate) fn committed_nothing(
    conn: &mut Connection,
    recorded: &Recorded,
    table: &str,
    dest: &str,
) -> bool {
    if recorded.done(table, dest).is_some() || recorded.mismatched(table, dest).is_some() {
        return false;
    }
    let attempts = recorded.attempts(table, dest);
    !attempts.unannounced
        && (attempts.commits.iter().flat_map(|c| &c.xids))
            .chain(&attempts.began)
            .all(|&xid| fate(conn, xid) == Fate::Aborted)
}

/// The refusal for a transaction still in progress: prepared (an `--atomic` run that did not
/// finish it: stopped, or one whose COMMIT or ROLLBACK PREPARED failed there) or still running.
fn in_progress(conn: &mut Connection, table: &str, xid: u64, here: &Here<'_>) -> String {
    let d = here.d;
    let Some(gid) = prepared(conn, xid) else {
        return format!(
            "--resume: table {table}: the earlier run's transaction {xid} on destination {} \
             is still in progress, so whether its rows will be there cannot be told yet; the \
             earlier run's session there has not ended (waited {} s): end it \
             (pg_terminate_backend) or wait for it, then resume",
            d + 1,
            IN_PROGRESS_WAIT.as_secs()
        );
    };
    let (recover, decided) = match run_log(&gid, here) {
        Some(log) => (
            format!(
                "copyman recover given this job's --to and --decision-log {}",
                log.display()
            ),
            decided(log, &gid),
        ),
        None => (
            "copyman recover given this job's --to and its run's --decision-log".to_owned(),
            None,
        ),
    };
    let how = match decided {
        Some(true) => "its run's decision log records commit: it commits it".to_owned(),
        Some(false) => {
            "its run's decision log records no commit of it: it rolls it back".to_owned()
        }
        None => "the run's decision log says which way".to_owned(),
    };
    format!(
        "--resume: table {table}: the earlier run's transaction {xid} on destination {} is \
         prepared as {gid} and not finished (its --atomic run did not get to its COMMIT or \
         ROLLBACK PREPARED there); finish it with {recover} ({how}), then resume",
        d + 1
    )
}

/// Whether the decision log at `log` records a commit of the prepared transaction `gid`
/// (`Some(false)`: its run decided without it, or never decided: a resume runs after it
/// ended); `None` when the log cannot tell (unreadable, no line of its run).
fn decided(log: &std::path::Path, gid: &str) -> Option<bool> {
    let contents = crate::commit::DecisionLog::none(log).read().ok()?;
    let (run, _) = copyman_core::commit::parse_gid(gid)?;
    if contents.committed.contains(gid) {
        return Some(true);
    }
    contents.runs.contains(run).then_some(false)
}

/// The decision log a recover of the prepared transaction `gid` reads: of the logs the job's
/// runs were given, the one that holds a line of its run (a recover reading another finds no
/// line of the run and leaves it alone: signals45 F5, recheck48b F1); else the log this resume
/// was given.
fn run_log<'a>(gid: &str, here: &Here<'a>) -> Option<&'a std::path::Path> {
    let run = copyman_core::commit::parse_gid(gid).map(|(run, _)| run);
    let holds = |log: &std::path::Path| {
        run.is_some_and(|run| {
            crate::commit::DecisionLog::none(log)
                .runs()
                .is_ok_and(|runs| runs.contains(run))
        })
    };
    (here.log.into_iter())
        .chain(here.logs.iter().map(|l| l.as_path()))
        .find(|log| holds(log))
        .or(here.log)
}

/// The global id of the prepared transaction `xid`, if it is one.
fn prepared(conn: &mut Connection, xid: u64) -> Option<String> {
    // pg_prepared_xacts names the 32-bit transaction id (no epoch).
    conn.query(&format!(
        "SELECT gid FROM pg_catalog.pg_prepared_xacts WHERE transaction::text = '{}'",
        xid & 0xFFFF_FFFF
    ))
    .ok()
    .and_then(|rows| rows.first().and_then(|r| r.first().cloned().flatten()))
}

/// Whether `table` is not there on `conn`'s database (the question answered: a failure to
/// ask concludes nothing).
fn missing(conn: &mut Connection, table: &TableName) -> bool {
    let asked = conn.query(&format!(
        "SELECT (pg_catalog.to_regclass({}) IS NULL)::text",
        table.regclass_literal()
    ));
    asked.is_ok_and(|rows| {
        rows.first()
            .and_then(|r| r.first().cloned().flatten())
            .as_deref()
            == Some("true")
    })
}

/// Whether `table` holds any row of its own on `conn`'s database, read as the relation it is
/// there (a table partitioned there but not on the source has its rows in its partitions:
/// `ONLY` would find none); `None` when the question fails (then nothing is concluded).
pub(crate) fn holds_rows(conn: &mut Connection, table: &TableName) -> Option<bool> {
    let rows = conn
        .query(&format!(
            "SELECT (CASE (SELECT c.relkind FROM pg_catalog.pg_class c \
               WHERE c.oid = {}::pg_catalog.regclass) \
             WHEN 'r' THEN EXISTS (SELECT 1 FROM {}) \
             ELSE EXISTS (SELECT 1 FROM {}) END)::text",
            table.regclass_literal(),
            own_rows(table, "r"),
            own_rows(table, "p"),
        ))
        .ok()?;
    match rows.first()?.first()?.as_deref()? {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// How many rows `table` (a name as a statement spells it) holds on `conn`'s database as its
/// own (not a table's that inherits from it; a partitioned table's partitions'); `None` when
/// the question fails.
pub(crate) fn own_row_count(conn: &mut Connection, table: &str) -> Option<u64> {
    let rows = conn
        .query(&format!(
            "SELECT (CASE (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = {}) \
             WHEN 'r' THEN (SELECT count(*) FROM ONLY {table}) \
             ELSE (SELECT count(*) FROM {table}) END)::text",
            crate::sql::relation_regclass(table),
        ))
        .ok()?;
    rows.first()?.first()?.as_deref()?.parse().ok()
}

/// What a resume says of a table recorded `done` (or committed) with `rows` rows on
/// destination `d` (`conn`), which holds none there: an UNLOGGED table there was emptied by a
/// crash of its server; else it was emptied or recreated there since, or the destination is
/// another server with the same system identifier (a clone) — the rows cannot tell which.
fn clone_note(conn: &mut Connection, table: &str, rows: u64, d: usize, done: &str) -> String {
    let why = crate::identity::unlogged_note(conn, table).unwrap_or(
        "emptied or recreated there since, or that destination is another server with the same \
         system identifier (a clone)",
    );
    // Its COMMIT recorded as sent, not as done: the id reads committed, which a crash of the
    // server before that COMMIT was durable lets it give to a transaction of its own (commit48
    // F2: said "records committed" of a COMMIT the job had said failed).
    let (what, crash) = match done {
        "committed" => (
            format!(
                "whose transaction of an earlier run ({rows} rows, its COMMIT sent) reads \
                 committed there"
            ),
            "a crash of its server before that COMMIT was durable, which lets the server give \
             the id to a transaction of its own, or ",
        ),
        _ => (
            format!("which the state file records {done} with {rows} rows"),
            "",
        ),
    };
    format!(
        "destination {} holds no rows of {table}, {what} — {crash}{why}: copied again",
        d + 1
    )
}

/// The other tables the state file `recorded` records copies of on destination `dest` whose
/// rows `table` there holds as its own (`identity::inserted_by`): another table's copy under its
/// name, renamed or swapped there since. Empty where there are none, or where it cannot be asked.
/// Only copies whose own table there holds none of their rows any more count (recheck53b F3: a
/// trigger writing into another table of the job, or a table partitioned there whose partition
/// is another of the job, was said swapped): found once per destination (`gone`), so that
/// `table` — often one to be appended to, holding many rows — is read only where there are
/// such copies.
pub(crate) fn copied_into(
    conn: &mut Connection,
    recorded: &Recorded,
    table: &str,
    dest: &str,
    gone: &Gone,
) -> Vec<String> {
    let away = gone.get_or_init(|| gone_from_their_tables(conn, recorded, dest));
    let others: Vec<&(String, Vec<u64>)> = away.iter().filter(|(t, _)| t != table).collect();
    let all: Vec<u64> = others.iter().flat_map(|(_, x)| x.iter().copied()).collect();
    if all.is_empty() {
        return Vec::new();
    }
    let held = crate::identity::inserted_by(conn, table, &all).unwrap_or_default();
    let mut whose: Vec<String> = (others.iter())
        .filter(|(_, x)| x.iter().any(|x| held.contains(x)))
        .map(|(t, _)| t.clone())
        .collect();
    whose.sort_unstable();
    whose
}

/// The copies the state file records on one destination whose own tables there hold none of
/// their rows any more, each table's with its transaction ids ([`gone_from_their_tables`]):
/// asked once per destination, on first need.
pub(crate) type Gone = std::cell::OnceCell<Vec<(String, Vec<u64>)>>;

/// The copies `recorded` records on destination `dest` (`conn`: a session there) whose own
/// tables hold none of their rows there: each table, with its copies' ids. Where the
/// destination's server started since the file's last record of it, only the ids of copies
/// recorded done count: an attempt's id a crash forgot may be an application's now (recheck53c
/// F5: its row in an UNLOGGED table the crash emptied was taken for a failed table's copy, and
/// the table refused as swapped with it).
fn gone_from_their_tables(
    conn: &mut Connection,
    recorded: &Recorded,
    dest: &str,
) -> Vec<(String, Vec<u64>)> {
    let durable_only = restarted_since(conn, recorded, dest);
    let xids_of = |t: &str| {
        if durable_only {
            let key = (t.to_owned(), dest.to_owned());
            Some(recorded.done_xids.get(&key).cloned().unwrap_or_default())
        } else {
            recorded.copies_xids(t, dest)
        }
    };
    let mut copies: Vec<(String, Vec<u64>)> = (recorded.begun.iter())
        .filter(|(_, k)| k == dest)
        .filter_map(|(t, _)| Some((t.clone(), xids_of(t)?)))
        .filter(|(_, xids)| !xids.is_empty())
        .collect();
    copies.sort_unstable();
    copies.dedup();
    copies.retain(|(t, x)| crate::identity::holds_rows_of(conn, t, x) != Some(true));
    copies
}

/// The other tables the state file `recorded` records on destination `dest` that hold rows of
/// `table`'s copy there (its transactions `xids`): its rows moved under their names, by a rename
/// or a swap. Asked only of a table found empty; each other table with storage there is read
/// until such a row, or through (one catalog question leaves out the empty ones: a clone whose
/// tables are all empty asks no more). A table copied in one of the same transactions (a
/// foreign-key group's member) is not asked: its own rows are of them (recheck53c F1: a group's
/// child emptied there was refused as swapped with its parent and sibling).
pub(crate) fn moved_to(
    conn: &mut Connection,
    recorded: &Recorded,
    table: &str,
    dest: &str,
    xids: &[u64],
) -> Vec<String> {
    let shares = |t: &str| {
        (recorded.copies_xids(t, dest)).is_some_and(|x| x.iter().any(|x| xids.contains(x)))
    };
    let mut others: Vec<&str> = (recorded.begun.iter())
        .filter(|(t, k)| k == dest && t != table && !shares(t))
        .map(|(t, _)| t.as_str())
        .collect();
    if others.is_empty() {
        return Vec::new();
    }
    others.sort_unstable();
    others.dedup();
    let names: Vec<String> = others.iter().map(|t| crate::sql::literal(t)).collect();
    let stored = conn.query(&format!(
        "SELECT t FROM pg_catalog.unnest(ARRAY[{}]::text[]) AS t WHERE (SELECT c.relkind = 'p' \
         OR pg_catalog.pg_relation_size(c.oid) > 0 FROM pg_catalog.pg_class c \
         WHERE c.oid = pg_catalog.to_regclass(t))",
        names.join(", ")
    ));
    let stored: Vec<String> = (stored.unwrap_or_default().into_iter())
        .filter_map(|row| row.into_iter().next().flatten())
        .collect();
    (stored.into_iter())
        .filter(|t| crate::identity::holds_rows_of(conn, t, xids) == Some(true))
        .collect()
}

/// [`swapped`]'s words for a table whose copy's rows are under another's name (`own`: what it
/// is and holds, said after its name).
fn swapped_away(table: &str, own: &str, here: &Here<'_>) -> String {
    format!(
        "--resume: destination {} ({})'s {table}{own} renamed or swapped with it there since? \
         give the tables their names again (ALTER TABLE … RENAME) and resume, or run the job \
         again with --truncate and another --state",
        here.d + 1,
        here.name,
    )
}

/// Whether the server of `conn` started since the state file's last record of where it stood
/// on destination `dest` (its `position` line's start time): `true` where either cannot be
/// told.
fn restarted_since(conn: &mut Connection, recorded: &Recorded, dest: &str) -> bool {
    let then = recorded.position(dest);
    let (started, reset) = (then.and_then(|p| p.started), then.and_then(|p| p.reset));
    crate::identity::restarted_since(conn, started, reset).unwrap_or(true)
}

/// Whether the server of `conn`, destination `dest`, ran crash recovery since the copy of
/// `table` recorded done there began — which emptied the table there if it is UNLOGGED, whatever
/// its rows' transaction ids say since (a transaction that wrote only UNLOGGED tables commits
/// without waiting for its WAL: a crash forgets its id, and gives it again). Told by the
/// statistics' reset recorded with the copy ([`Recorded::done_reset`]); for a copy an older
/// copyman recorded, by a server started since from a crash.
fn crashed_since_done(conn: &mut Connection, recorded: &Recorded, table: &str, dest: &str) -> bool {
    match crash_known_since_done(conn, recorded, table, dest) {
        Some(crashed) => crashed,
        None => {
            restarted_since(conn, recorded, dest) && crate::identity::started_after_a_crash(conn)
        }
    }
}

/// [`crashed_since_done`] where the statistics' reset recorded with the copy tells it: `None`
/// for a copy an older copyman recorded (a crash before the job and one after read alike).
pub(crate) fn crash_known_since_done(
    conn: &mut Connection,
    recorded: &Recorded,
    table: &str,
    dest: &str,
) -> Option<bool> {
    let reset = recorded
        .done_reset
        .get(&(table.to_owned(), dest.to_owned()))?;
    Some(crate::identity::crash_recovery_since(conn, *reset))
}

/// What a resume says of copying again a done `table` that a crash of destination `d`'s server
/// emptied (`held`: the rows written there since), under `--truncate` or not.
fn emptied_by_a_crash(
    table: &str,
    rows: u64,
    d: usize,
    held: Option<u64>,
    here: &Here<'_>,
) -> String {
    let how = match held {
        _ if here.truncate => "emptied and copied again (--truncate)".to_owned(),
        Some(0) => "copied again".to_owned(),
        Some(1) => "copied again beside the 1 row written there since".to_owned(),
        Some(n) => format!("copied again beside the {n} rows written there since"),
        None => "copied again beside the rows written there since".to_owned(),
    };
    format!(
        "{table}: destination {} lost the rows the earlier run committed there ({rows}) — it \
         is UNLOGGED there (or its partitions are), and crash recovery of its server since (a \
         crash, an immediate stop, a backend killed) emptied it: {how}",
        d + 1
    )
}

/// The refusal of `table` on destination `here`, which holds rows the earlier run copied into
/// the tables `whose` there (`own`: what it is, and holds, said after its name).
fn swapped(table: &str, whose: &[String], own: &str, here: &Here<'_>) -> String {
    format!(
        "--resume: destination {} ({})'s {table}{own} rows the earlier run copied into {} there: \
         renamed or swapped with it there since? give the tables their names again (ALTER TABLE \
         … RENAME) and resume, or run the job again with --truncate and another --state",
        here.d + 1,
        here.name,
        whose.join(", ")
    )
}

/// What a run does with a table on a destination, given what the state file says of it there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Resumed {
    /// Done (recorded so, or its earlier commit confirmed by the destination): not copied.
    Done {
        /// The rows committed.
        rows: u64,
        /// What the user should hear.
        note: Option<String>,
    },
    /// Found different from the source by an earlier run's `--verify` (`rows` committed):
    /// compared again by this run's, not copied; recorded done if it matches now.
    Recheck {
        /// The rows the earlier run committed.
        rows: u64,
        /// What the user should hear.
        note: Option<String>,
    },
    /// Copied, emptied first when `empty`.
    Copy {
        /// Empty the table first (in the copy's transaction).
        empty: bool,
        /// What the user should hear.
        note: Option<String>,
    },
}

/// The tables of `tables` recorded done on destination `dest` that an earlier run committed in
/// one transaction with a table of `tables` not done there now (a foreign-key group copied as
/// one unit, one of them found differing by `--verify` since, or copied again and failed):
/// each with the name of one such table. A resume that empties its tables copies them again
/// with it ([`Here::copied_with`]).
pub(crate) fn copied_with_undone(
    recorded: &Recorded,
    tables: &[String],
    dest: &str,
) -> HashMap<String, String> {
    let xids = |t: &String| recorded.done_xids.get(&(t.clone(), dest.to_owned()));
    let mut by_xid: HashMap<u64, Vec<&String>> = HashMap::new();
    for t in tables.iter().filter(|t| recorded.done(t, dest).is_some()) {
        for &xid in xids(t).into_iter().flatten() {
            by_xid.entry(xid).or_default().push(t);
        }
    }
    let mut with = HashMap::new();
    for undone in tables.iter().filter(|t| recorded.done(t, dest).is_none()) {
        for xid in xids(undone).into_iter().flatten() {
            for &t in by_xid.get(xid).into_iter().flatten() {
                with.entry(t.clone()).or_insert_with(|| undone.clone());
            }
        }
    }
    with
}

/// What this run does with `table` on destination `here` (`conn`: a session there), from what
/// `recorded` says: a table recorded done with rows that holds none there was done on another
/// server with this one's identity (a clone), and is copied again; one begun and not done is
/// [`settle`]d.
///
/// # Errors
/// The words of a refusal ([`settle`]).
pub(crate) fn resumed_here(
    conn: &mut Connection,
    recorded: &Recorded,
    table: &TableName,
    here: &Here<'_>,
) -> Result<Resumed, String> {
    let (dest, d) = (here.key, here.d);
    let key = table.to_string();
    // Gone there since (dropped, renamed): said, not taken as done with rows it cannot hold.
    if (recorded.begun(&key, dest) || recorded.done(&key, dest).is_some()) && missing(conn, table) {
        return Err(format!(
            "--resume: table {key}, which the earlier run began or committed on destination {}, \
             does not exist there now (dropped or renamed since): create it again there (it is \
             then copied again), or run the job again without --resume",
            d + 1
        ));
    }
    if let (Some(unit), Some(_)) = (here.copied_with, recorded.done(&key, dest)) {
        return Ok(Resumed::Copy {
            empty: false,
            note: Some(format!(
                "{key}: copied again on destination {} with {unit}, which is copied again there: \
                 an earlier run copied them as one unit (linked by foreign keys), in one \
                 transaction, and they are emptied together",
                d + 1
            )),
        });
    }
    if let Some(rows) = recorded.done(&key, dest) {
        let xids = recorded.done_xids.get(&(key.clone(), dest.to_owned()));
        // UNLOGGED there (in part or whole) and a crash recovery since, known by the reset
        // recorded with its copy: the rows of its UNLOGGED parts are gone, whatever rows it
        // holds now and whatever their ids say (recheck54 F1: as many written since were taken
        // as its own rewritten; F6: an id the crash forgot, given to an application's row, was
        // taken as its copy's — done, exit 0; recheck54b F3: a logged partition's rows kept
        // made the whole done). One holding every row its copy committed, by their ids, is
        // either its copy kept — the statistics reset by hand, alike to the microsecond, or a
        // clean start that found no statistics file (recheck54c F1: copied again beside them,
        // doubled, exit 0) — or an application's as many rows, given the crash's forgotten id:
        // compared under --verify, else refused.
        let entirely = |conn: &mut Connection| crate::identity::unlogged_entirely(conn, &key);
        if rows > 0
            && !here.moved
            && crate::identity::unlogged_within(conn, &key)
            && crash_known_since_done(conn, recorded, &key, dest) == Some(true)
        {
            let all_there =
                xids.is_some_and(|x| crate::identity::rows_of(conn, &key, x) == Some(rows));
            if all_there && here.verify {
                return Ok(Resumed::Done {
                    rows,
                    note: Some(format!(
                        "{key}: destination {}'s table is UNLOGGED there and its statistics were \
                         reset since (crash recovery, or by hand), yet it holds the {rows} rows \
                         of the earlier run's transactions: --verify compares it with the source",
                        d + 1
                    )),
                });
            }
            if all_there {
                return Err(format!(
                    "--resume: destination {} ({})'s {key} is UNLOGGED there, and its statistics \
                     were reset since the earlier run committed it — as a crash recovery resets \
                     them, which empties UNLOGGED tables —, yet it holds {rows} rows of that \
                     run's transactions, as many as it committed: its copy, kept (statistics \
                     reset by hand), or an application's rows, given the crash's forgotten \
                     transaction ids? resume with --verify to compare it with the source",
                    d + 1,
                    here.name
                ));
            }
            if here.truncate || entirely(conn) {
                let held = own_row_count(conn, &key);
                return Ok(Resumed::Copy {
                    empty: false,
                    note: Some(emptied_by_a_crash(&key, rows, d, held, here)),
                });
            }
            return Err(format!(
                "--resume: destination {} ({})'s {key}, which the state file records done with \
                 {rows} rows, has UNLOGGED partitions there, which crash recovery of its server \
                 since (a crash, an immediate stop, a backend killed) emptied, and logged ones, \
                 which kept their rows: copied again, those would be there twice; resume with \
                 --truncate (it is emptied and copied again), or copy its UNLOGGED partitions by \
                 themselves and leave it out of the job (--exclude-table)",
                d + 1,
                here.name
            ));
        }
        if rows > 0 && holds_rows(conn, table) == Some(false) {
            // Its copy's rows under another table's name: swapped there with it (recheck53b
            // F8: a table empty on the source swapped with it; copied again, the rows there
            // twice, exit 0).
            let moved = xids.map(|x| moved_to(conn, recorded, &key, dest, x));
            if let Some(whose) = moved.filter(|w| !w.is_empty()) {
                let own = format!(
                    ", which the state file records done with {rows} rows, holds none, and \
                     {} {} its copy's:",
                    whose.join(", "),
                    if whose.len() == 1 { "holds" } else { "hold" }
                );
                return Err(swapped_away(&key, &own, here));
            }
            return Ok(Resumed::Copy {
                empty: false,
                note: Some(clone_note(conn, &key, rows, d, "done")),
            });
        }
        // Rows there, none of them its copy's (its transactions'): another table's of the job
        // under its name, swapped with it there since (recheck52b F3: "done", exit 0, the
        // tables under each other's names); an UNLOGGED table a crash emptied before rows were
        // written (1 row of 60, exit 0); or every row rewritten since. Not asked where the
        // destination was found moved (--verify compares every table there). (A foreign-key
        // group's tables share one transaction: a swap between them is not told so.)
        if let (true, Some(xids), false) = (rows > 0, xids, here.moved)
            && crate::identity::holds_rows_of(conn, &key, xids) == Some(false)
        {
            let whose = copied_into(conn, recorded, &key, dest, here.gone);
            let xid = xids.iter().max().copied().unwrap_or_default();
            if !whose.is_empty() {
                let own = format!(
                    ", which the state file records done with {rows} rows, holds none of the \
                     rows the earlier run's transaction {xid} committed there, but"
                );
                return Err(swapped(&key, &whose, &own, here));
            }
            // As many rows as it committed: every row rewritten (an UPDATE keeps the count).
            let now = own_row_count(conn, &key);
            if now == Some(rows) {
                return Ok(Resumed::Done {
                    rows,
                    note: Some(format!(
                        "{key}: destination {}'s table holds none of the {rows} rows the earlier \
                         run's transaction {xid} committed there, nor another table's it copied, \
                         but as many rows: every row rewritten since (an UPDATE)? taken as done \
                         — --verify compares it with the source",
                        d + 1
                    )),
                });
            }
            // Only where its server ran crash recovery since (recheck53 F5: an application's
            // UPDATE of every row was taken for a crash's emptying, and the table appended
            // again; recheck53c F2: so was one after a clean restart, 201 rows of 100).
            if crate::identity::unlogged_within(conn, &key)
                && crashed_since_done(conn, recorded, &key, dest)
            {
                return Ok(Resumed::Copy {
                    empty: false,
                    note: Some(emptied_by_a_crash(&key, rows, d, now, here)),
                });
            }
            // Other rows, not as many (recheck53b F4, F7: emptied there since — an UNLOGGED
            // table by a crash the job went on after — and a row written since was taken as
            // done, 1 row of 100, exit 0).
            let other = match now {
                Some(1) => "1 other row".to_owned(),
                Some(n) => format!("{n} other rows"),
                None => "other rows".to_owned(),
            };
            let what = format!(
                "destination {} ({})'s {key}, which the state file records done with {rows} \
                 rows, holds none of the rows the earlier run's transaction {xid} committed \
                 there, but {other}",
                d + 1,
                here.name,
            );
            // Compared with the source by this run's --verify: one that differs is recorded so,
            // and replaced by a resume that empties it (recheck53c F3: the way the refusal gave
            // was refused again by every later resume).
            if here.verify {
                return Ok(Resumed::Done {
                    rows,
                    note: Some(format!("{what}: --verify compares it with the source")),
                });
            }
            let crash = if crate::identity::unlogged_within(conn, &key) {
                " (an UNLOGGED table by a crash)"
            } else {
                ""
            };
            let replaced = if recorded.truncate {
                "emptied and copied again by the next resume"
            } else {
                "replaced by a resume with --truncate"
            };
            return Err(format!(
                "--resume: {what}: emptied there since{crash} and written again, or replaced? \
                 resume with --verify to compare it with the source (one that differs is \
                 {replaced}), or leave it out of this and every later resume of the job \
                 (--exclude-table)"
            ));
        }
        return Ok(Resumed::Done { rows, note: None });
    }
    let resumed = if recorded.begun(&key, dest) {
        settled_here(conn, recorded, table, here)?
    } else {
        Resumed::Copy {
            empty: false,
            note: None,
        }
    };
    // Appended to a table holding another table's copy (renamed or swapped there since:
    // recheck53 F1, the rows of both mixed, exit 0). Asked only where the state file records
    // another table's copy there: a fresh job's each table read once more, and waited for
    // again where it is locked (ops54 F8: --lock-timeout waited once more per table).
    if let Resumed::Copy { empty: false, .. } = resumed
        && !here.truncate
        && (recorded.begun.iter()).any(|(t, k)| k == dest && *t != key)
        && holds_rows(conn, table) == Some(true)
    {
        let whose = copied_into(conn, recorded, &key, dest, here.gone);
        if !whose.is_empty() {
            let own = ", which this resume would append to, holds";
            return Err(swapped(&key, &whose, own, here));
        }
    }
    Ok(resumed)
}

/// [`resumed_here`] for a table the earlier run began there and did not record done.
fn settled_here(
    conn: &mut Connection,
    recorded: &Recorded,
    table: &TableName,
    here: &Here<'_>,
) -> Result<Resumed, String> {
    let (key, d) = (table.to_string(), here.d);
    Ok(match settle(conn, recorded, table, here)? {
        // A clone whose own transactions took the recorded id may call it committed.
        Settled::Committed(rows) if rows > 0 && holds_rows(conn, table) == Some(false) => {
            Resumed::Copy {
                empty: false,
                note: Some(clone_note(conn, &key, rows, d, "committed")),
            }
        }
        Settled::Committed(rows) => Resumed::Done {
            rows,
            note: Some(format!(
                "{key}: an earlier run committed it on destination {} ({rows} rows; the \
                 server confirms its transaction) without recording it done: taken as done (a \
                 run records it so), not copied again",
                d + 1
            )),
        },
        // (Found different by a --verify, or left in doubt by its server's restart: recheck68
        // F7, the doubt was said as a --verify's finding.)
        Settled::Recheck(rows) if recorded.mismatched(&key, here.key).is_some() => {
            Resumed::Recheck {
                rows,
                note: Some(format!(
                    "{key}: an earlier run's --verify found it different from the source on \
                     destination {}: compared again (--verify), not copied; recorded done if it \
                     matches now",
                    d + 1
                )),
            }
        }
        Settled::Recheck(rows) => Resumed::Recheck {
            rows,
            note: Some(format!(
                "{key}: an earlier run's COMMIT there was left in doubt by its server's restart \
                 on destination {}: compared with the source (--verify), not copied; recorded \
                 done if it matches",
                d + 1
            )),
        },
        Settled::Again { empty, note } => Resumed::Copy { empty, note },
    })
}

/// The transaction id of `conn`'s open transaction (`txid_current()`, with its epoch).
pub(crate) fn xid(conn: &mut Connection) -> Result<u64, TableError> {
    let rows = conn
        .query("SELECT pg_catalog.txid_current()::text")
        .map_err(|e| describe(&e).prefixed("reading its transaction id (txid_current()): "))?;
    rows.first()
        .and_then(|r| r.first().cloned().flatten())
        .and_then(|x| x.parse().ok())
        .ok_or_else(|| TableError::new("txid_current() returned no transaction id"))
}

/// Records, before the COMMIT (or `PREPARE TRANSACTION`) of `table` on a destination (`dest`,
/// its key in the state file), the ids of its open transactions (`conns`: one, or one per
/// range), with the `rows` copied: a resume then asks the destination whether they committed;
/// under `--verify`, with the source's checksum (`source_sum`: what a resume compares the
/// destination with, should this run stop before it did).
///
/// # Errors
/// An id could not be read, or the line not written: that destination must not commit (a
/// resume would take its attempt for one that never committed, and copy it again).
pub(crate) fn announce_commit(
    state: &StateFile,
    (table, dest): (&str, &str),
    rows: u64,
    conns: Vec<&mut Connection>,
    source_sum: Option<&str>,
) -> Result<(), TableError> {
    let xids = conns
        .into_iter()
        .map(xid)
        .collect::<Result<Vec<u64>, TableError>>()?;
    state
        .commit(table, dest, rows, &xids, source_sum)
        .map_err(|e| TableError::new(format!("state file: cannot record its commit: {e}")))
}
