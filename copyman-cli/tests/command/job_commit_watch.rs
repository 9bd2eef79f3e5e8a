//! A job's commit phase is never silent: a COMMIT that does not return is said (table,
//! destination, backend, what it waits on), never cancelled; the reminder after a first signal
//! names what it waits for; a second signal says what committed and what may have (and prints
//! `--json`; under `--atomic`, that `copyman recover` finishes what is prepared); an interrupt
//! during planning reads "interrupted", not "failed"; `--jobs` is capped to what the servers
//! accept. Real clusters: the shared source and two destinations, a destination whose COMMITs
//! wait for a synchronous standby that does not exist, one with `max_connections = 15`.

use crate::common;

use std::process::{Child, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use common::*;
use copyman_testkit::Cluster;
use serde_json::Value;

/// A cluster whose COMMITs wait for the synchronous standby "nosuch", in a database set so
/// ([`stuck_db`]); everywhere else `synchronous_commit = local` (setup commits at once).
fn syncrep() -> &'static Cluster {
    static SYNC: OnceLock<Cluster> = OnceLock::new();
    SYNC.get_or_init(|| {
        Cluster::builder()
            .setting("synchronous_standby_names", "nosuch")
            .setting("synchronous_commit", "local")
            .setting("max_prepared_transactions", "10")
            .start()
    })
}

const TABLES: &str = "CREATE TABLE t1 (id int8 PRIMARY KEY, v text);
                      CREATE TABLE t2 (id int8 PRIMARY KEY, v text);";
const FILL: &str = "INSERT INTO t1 SELECT g, 'one ' || g FROM generate_series(1, 500) g;
                    INSERT INTO t2 SELECT g, 'two ' || g FROM generate_series(1, 300) g;";

/// A database on [`syncrep`] whose sessions' COMMITs wait for the missing standby.
fn stuck_db() -> String {
    let db = database(syncrep(), TABLES);
    syncrep()
        .connect("postgres")
        .batch_execute(&format!(
            "ALTER DATABASE \"{db}\" SET synchronous_commit = on"
        ))
        .unwrap();
    db
}

/// The databases of one test: source, destinations 1 and 3 on the shared clusters,
/// destination 2 the stuck one.
struct Setup {
    src: String,
    d1: String,
    d2: String,
    d3: String,
    state: TempPath,
}

impl Setup {
    fn new(name: &str) -> Self {
        let c = clusters();
        Self {
            src: database(&c.source, &format!("{TABLES}{FILL}")),
            d1: database(&c.dest[0], TABLES),
            d2: stuck_db(),
            d3: database(&c.dest[1], TABLES),
            state: TempPath::new(name),
        }
    }

    /// `copyman [pre] table t1 t2 --from S --to D1 --to D2 --to D3 --state X [extra]`, its
    /// stderr read aside.
    fn spawn(&self, pre: &[&str], extra: &[&str]) -> (Child, StderrLines) {
        let c = clusters();
        let mut child = copyman()
            .args(pre)
            .args(["table", "t1", "t2", "--from"])
            .arg(c.source.conninfo(&self.src))
            .arg("--to")
            .arg(c.dest[0].conninfo(&self.d1))
            .arg("--to")
            .arg(syncrep().conninfo(&self.d2))
            .arg("--to")
            .arg(c.dest[1].conninfo(&self.d3))
            .args(["--state", self.state.arg()])
            .args(extra)
            // Reminders every 3 s, not 10.
            .env("COPYMAN_TEST_SAY_AFTER", "3")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = StderrLines::take(&mut child);
        (child, stderr)
    }

    /// Rows of `table` on destinations 1, 2, 3.
    fn counts(&self, table: &str) -> [i64; 3] {
        let c = clusters();
        [
            count(&c.dest[0], &self.d1, table),
            count(syncrep(), &self.d2, table),
            count(&c.dest[1], &self.d3, table),
        ]
    }
}

/// The backends of `db` on [`syncrep`] waiting for the standby: (pid, query).
fn sync_waiters(db: &str) -> Vec<(i32, String)> {
    syncrep()
        .connect("postgres")
        .query(
            "SELECT pid, query FROM pg_stat_activity WHERE datname = $1 AND state = 'active' \
             AND wait_event_type = 'IPC' AND wait_event = 'SyncRep'",
            &[&db],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// Waits (bounded) until `n` backends of `db` wait for the standby.
fn wait_for_waiters(db: &str, n: usize) {
    let started = std::time::Instant::now();
    loop {
        let waiters = sync_waiters(db);
        if waiters.len() >= n {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "never {n} backends waiting for the standby: {waiters:?}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// Releases every COMMIT of `db` waiting for the standby (a cancel ends the wait: the
/// transaction committed locally), until `stop`.
fn release(db: String, stop: &'static AtomicBool) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut client = syncrep().connect("postgres");
        while !stop.load(Ordering::SeqCst) {
            client
                .execute(
                    "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE datname = $1 \
                     AND wait_event = 'SyncRep'",
                    &[&db],
                )
                .unwrap();
            thread::sleep(Duration::from_millis(50));
        }
    })
}

/// Kills `child` if the test is still waiting for it after two minutes (a hang must fail the
/// test, not stall the suite). Dropping the guard (the test's end) calls it off, so that the
/// pid, reaped and perhaps reused by another test's process, is never killed.
fn watchdog(pid: u32) -> Watchdog {
    let off = std::sync::Arc::new(AtomicBool::new(false));
    let called_off = std::sync::Arc::clone(&off);
    thread::spawn(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while std::time::Instant::now() < deadline {
            if called_off.load(Ordering::SeqCst) {
                return;
            }
            thread::sleep(Duration::from_millis(100));
        }
        if !called_off.load(Ordering::SeqCst) {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    });
    Watchdog(off)
}

/// Calls a [`watchdog`] off when dropped.
struct Watchdog(std::sync::Arc<AtomicBool>);

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Reads `stderr` until a line says destination 2's COMMIT waits (at least `secs` s); the line.
fn commit_wait_line(stderr: &mut StderrLines, secs: u64) -> String {
    loop {
        let line = stderr.expect("'s COMMIT of table");
        // (Tenths under 10 s: "waiting 2.1 s".)
        let waited: f64 = line
            .split("waiting ")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0.0);
        if waited >= secs as f64 {
            return line;
        }
    }
}

fn record<'a>(report: &'a Value, table: &str, dest: usize) -> &'a Value {
    report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["table"].as_str().unwrap().contains(table))
        .nth(dest)
        .unwrap_or_else(|| panic!("no record of {table} on destination {}: {report}", dest + 1))
}

// Point 1: a COMMIT that does not return is said, again and again; one waiting for a
// synchronous standby is cancelled after 10 s (committed there already: recheck73 F1, the
// others waited for ever), never before.

#[test]
fn job_commit_waiting_for_a_synchronous_standby_is_said_and_cancelled_at_ten_seconds() {
    let s = Setup::new("commit-wait.state");
    let (child, mut stderr) = s.spawn(&[], &["--stall-timeout", "2s", "--progress"]);
    let _watchdog = watchdog(child.id());
    let first = commit_wait_line(&mut stderr, 1);
    assert!(
        first.contains("copyman: waiting ")
            && first.contains("for destination 2 (")
            && first.contains("'s COMMIT of table \"public\".\"t")
            && first.contains("waiting on IPC/SyncRep")
            && first.contains("synchronous standby that is not there?")
            && first.contains("committed there already: its wait is cancelled at 10 s"),
        "{first}"
    );
    let waiters = sync_waiters(&s.d2);
    assert!(
        waiters
            .iter()
            .any(|(pid, _)| first.contains(&format!("backend {pid} active"))),
        "{first}\n{waiters:?}"
    );
    // Said again (every 3 s here), past --stall-timeout: the COMMITs are still there, not
    // cancelled.
    let again = commit_wait_line(&mut stderr, 4);
    assert!(again.contains("for destination 2 ("), "{again}");
    let waiters = sync_waiters(&s.d2);
    assert_eq!(waiters.len(), 2, "{waiters:?}");
    assert!(waiters.iter().all(|(_, q)| q == "COMMIT"), "{waiters:?}");
    // Past 10 s, cancelled: committed there, the job goes on.
    let rest = stderr.unseen();
    let out = child.wait_with_output().unwrap();
    let rest = format!("{rest}{}", text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{rest}");
    assert!(
        rest.contains("COMMIT of table \"public\".\"t")
            && rest.contains("waited 10 s for a synchronous standby"),
        "{rest}"
    );
    assert!(!rest.contains("failed"), "{rest}");
    assert_eq!(s.counts("t1"), [500; 3]);
    assert_eq!(s.counts("t2"), [300; 3]);
}

// Point 2: the reminder after a signal names what it waits for.

#[test]
fn job_signal_reminder_names_the_commit_it_waits_for() {
    static STOP: AtomicBool = AtomicBool::new(false);
    let s = Setup::new("reminder.state");
    let (child, mut stderr) = s.spawn(&[], &[]);
    let _watchdog = watchdog(child.id());
    commit_wait_line(&mut stderr, 1);
    signal(&child, "INT");
    let line = stderr.expect("still stopping");
    let seen = stderr.seen().to_owned();
    assert!(
        line.contains("waiting for destination 2's COMMIT of \"public\".\"t")
            && line.contains("(backend ")
            && line.contains(", IPC SyncRep)"),
        "{line}"
    );
    assert!(
        !line.contains("waiting for the servers to answer"),
        "{line}"
    );
    // The signal's own line names the tables whose COMMITs began as finishing: it said every
    // table being copied was rolled back, and they committed (jobs35 F9).
    assert!(
        seen.contains("SIGINT received: stopping the job: table")
            && seen.contains("began and finish (destination 2 (")
            // ("… waits", or "… each wait" where both tables' COMMITs wait by then.)
            && seen.contains(" for a synchronous standby to confirm it")
            && seen.contains("; the other tables being copied are rolled back"),
        "{seen}"
    );
    let releaser = release(s.d2.clone(), &STOP);
    let rest = stderr.unseen();
    let out = child.wait_with_output().unwrap();
    STOP.store(true, Ordering::SeqCst);
    releaser.join().unwrap();
    // A COMMIT under way when the signal came finishes: both tables committed everywhere.
    assert_eq!(out.status.code(), Some(0), "{seen}{rest}");
    assert_eq!(s.counts("t1"), [500; 3]);
    assert_eq!(s.counts("t2"), [300; 3]);
}

// Point 3: a second signal exits at once, saying what committed and what may have.

#[test]
fn job_second_sigint_during_a_stuck_commit_reports_committed_and_in_doubt() {
    static STOP: AtomicBool = AtomicBool::new(false);
    let s = Setup::new("at-once.state");
    let (child, mut stderr) = s.spawn(&["--json"], &[]);
    let _watchdog = watchdog(child.id());
    // Both tables' COMMITs wait on destination 2 (destination 1 committed both).
    commit_wait_line(&mut stderr, 1);
    wait_for_waiters(&s.d2, 2);
    signal(&child, "INT");
    stderr.expect("SIGINT received");
    signal(&child, "INT");
    let rest = stderr.unseen();
    let out = child.wait_with_output().unwrap();
    // During the COMMITs: partial, as one table's run says it (README, exit status).
    assert_exit(&out, 4);
    assert!(rest.contains("exiting at once"), "{rest}");
    // Its COMMITs are never cancelled: not said so (jobs49 F2: "its backends cancelled").
    assert!(
        !rest.contains("its backends cancelled")
            && rest.contains("a COMMIT sent is never cancelled"),
        "{rest}"
    );
    let report = json(&out);
    assert_eq!(report["status"], "interrupted", "{report}");
    assert_eq!(report["exit_code"], 4, "{report}");
    assert_eq!(report["exited_at_once"], true, "{report}");
    // As one table's says it (ops54 F7: absent).
    assert_eq!(report["interrupted"], "interrupted by SIGINT", "{report}");
    for table in ["t1", "t2"] {
        assert_eq!(record(&report, table, 0)["status"], "committed", "{report}");
        assert_eq!(record(&report, table, 1)["status"], "in doubt", "{report}");
        assert_eq!(
            record(&report, table, 1)["unanswered"],
            "COMMIT",
            "{report}"
        );
        assert_eq!(
            record(&report, table, 2)["status"],
            "rolled back",
            "{report}"
        );
    }
    let summary = rest
        .lines()
        .find(|l| l.starts_with("copyman: exited at once: committed: "))
        .unwrap_or_else(|| panic!("no summary:\n{rest}"));
    assert!(
        summary.contains("\"public\".\"t1\" on destination 1")
            && summary.contains("\"public\".\"t2\" on destination 1"),
        "{summary}"
    );
    let doubt = summary.split("in doubt").nth(1).unwrap();
    assert!(
        doubt.contains("\"public\".\"t1\" on destination 2")
            && doubt.contains("\"public\".\"t2\" on destination 2"),
        "{summary}"
    );
    assert!(!rest.contains("nothing committed"), "{rest}");
    // As said: destination 1 committed; destination 2's COMMITs go through once released;
    // destination 3's open transactions were rolled back by its server.
    let releaser = release(s.d2.clone(), &STOP);
    while !sync_waiters(&s.d2).is_empty() {
        thread::sleep(Duration::from_millis(50));
    }
    STOP.store(true, Ordering::SeqCst);
    releaser.join().unwrap();
    assert_eq!(settle_backends(syncrep(), &s.d2), Vec::<String>::new());
    assert_eq!(
        settle_backends(&clusters().dest[1], &s.d3),
        Vec::<String>::new()
    );
    assert_eq!(s.counts("t1"), [500, 500, 0]);
    assert_eq!(s.counts("t2"), [300, 300, 0]);
}

#[test]
fn job_atomic_second_sigint_during_a_stuck_prepare_says_copyman_recover_finishes_it() {
    static STOP: AtomicBool = AtomicBool::new(false);
    let _one = one_stuck_prepare_at_a_time();
    let c = clusters();
    let src = database(&c.source, &format!("{TABLES}{FILL}"));
    let d2 = stuck_db();
    let state = TempPath::new("atomic-at-once.state");
    let log = TempPath::new("atomic-at-once.log");
    let to = syncrep().conninfo(&d2);
    let mut child = atomic_job(
        &["t1", "t2"],
        &c.source.conninfo(&src),
        &[&to],
        &state,
        &log,
    );
    let _watchdog = watchdog(child.id());
    let mut stderr = StderrLines::take(&mut child);
    let line = stderr.expect("'s PREPARE TRANSACTION of table");
    assert!(line.contains("waiting on IPC/SyncRep"), "{line}");
    let (out, rest) = two_sigints_once_waiting(child, stderr, &d2, 2);
    // PREPAREs sent and no decision recorded: nothing committed, the signal's code (copyman
    // recover finishes what is prepared), as one table's run exits. It exited 4 and said
    // "in doubt: it may have committed".
    assert_exit(&out, 130);
    let report = json(&out);
    assert_eq!(report["exited_at_once"], true, "{report}");
    for table in ["t1", "t2"] {
        let r = record(&report, table, 0);
        assert_eq!(r["status"], "prepared or not", "{report}");
        assert!(
            r["unanswered"]
                .as_str()
                .unwrap()
                .starts_with("PREPARE TRANSACTION '"),
            "{report}"
        );
        assert!(
            r["note"].as_str().unwrap().contains("copyman recover"),
            "{report}"
        );
    }
    assert!(
        rest.contains(
            "copyman recover commits them if the run decided commit, else rolls them back"
        ),
        "{rest}"
    );
    // Released, the PREPAREs complete: prepared, never decided; recover rolls them back.
    let_prepares_through(&d2, &STOP);
    assert_eq!(settle_backends(syncrep(), &d2), Vec::<String>::new());
    // (Only this database's: another test's may be prepared there too.)
    let prepared: i64 = syncrep()
        .connect("postgres")
        .query_one(
            "SELECT count(*) FROM pg_prepared_xacts WHERE database = $1",
            &[&d2],
        )
        .unwrap()
        .get(0);
    assert_eq!(prepared, 2);
    let out = copyman()
        .args(["recover", "--to", &to, "--decision-log", log.arg()])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert_eq!(prepared_xacts(syncrep()), Vec::<String>::new());
    assert_eq!(count(syncrep(), &d2, "t1"), 0);
    assert_eq!(count(syncrep(), &d2, "t2"), 0);
}

// Point 4: an interrupt during planning reads "interrupted", not "failed", and stops the
// planning at once (tester-scale25 F5: it waited for the whole plan, 33 s on 8 000 tables).

#[test]
fn job_sigint_during_a_planning_lock_wait_reads_interrupted_not_failed() {
    let c = clusters();
    let src = database(&c.source, &format!("{TABLES}{FILL}"));
    let d1 = database(&c.dest[0], TABLES);
    let d2 = database(&c.dest[1], TABLES);
    let state = TempPath::new("plan-sigint.state");
    let mut holder = c.dest[0].connect(&d1);
    holder
        .batch_execute("BEGIN; LOCK TABLE t1 IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let mut child = copyman()
        .args(["--json", "table", "t1", "t2", "--from"])
        .arg(c.source.conninfo(&src))
        .arg("--to")
        .arg(c.dest[0].conninfo(&d1))
        .arg("--to")
        .arg(c.dest[1].conninfo(&d2))
        .args(["--state", state.arg()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _watchdog = watchdog(child.id());
    let mut stderr = StderrLines::take(&mut child);
    let seen = stderr.expect("waiting for lock on destination 1 (");
    signal(&child, "INT");
    let rest = stderr.unseen();
    let out = child.wait_with_output().unwrap();
    holder.batch_execute("ROLLBACK").unwrap();
    drop(holder);
    assert_exit(&out, 130);
    assert!(seen.contains("while planning the job"), "{seen}");
    // The planning stops at the signal (its lookup waiting for the lock cancelled): nothing
    // began, said once — not a line per table (it planned every table first, and listed them
    // all as not committed).
    let report = json(&out);
    assert_eq!(report["status"], "interrupted", "{report}");
    assert_eq!(report["tables"], serde_json::json!([]), "{report}");
    assert!(
        !rest.contains("57014") && !rest.contains(": failed"),
        "{rest}"
    );
    assert!(
        rest.contains("interrupted by SIGINT: nothing committed") && !rest.contains("--resume"),
        "{rest}"
    );
    for (cluster, db) in [(&c.dest[0], &d1), (&c.dest[1], &d2)] {
        assert_eq!(count(cluster, db, "t1"), 0);
        assert_eq!(count(cluster, db, "t2"), 0);
        assert_eq!(settle_backends(cluster, db), Vec::<String>::new());
    }
}

// Point 5: --jobs within what the servers accept.

/// The slots `superuser_reserved_connections` keeps are left free even for a superuser (the job
/// took them all, and the DBA's own psql was refused); the server named is the one that caps
/// the job, not the first that does not fit (the source, which would have taken more workers).
#[test]
fn job_jobs_beyond_max_connections_is_capped_or_refused_before_copying() {
    let tight = Cluster::builder().setting("max_connections", "15").start();
    let source = Cluster::builder().setting("max_connections", "20").start();
    let schema: String = (1..=20)
        .map(|i| format!("CREATE TABLE m{i} (id int8 PRIMARY KEY, v text);"))
        .collect();
    let fill: String = (1..=20)
        .map(|i| {
            format!("INSERT INTO m{i} SELECT g, repeat('m', 100) FROM generate_series(1, 1000) g;")
        })
        .collect();
    let src = database(&source, &format!("{schema}{fill}"));
    let d1 = database(&tight, &schema);
    let state = TempPath::new("max-connections.state");
    let job = |extra: &[&str]| {
        copyman()
            .args(["--json", "table", "--table", "m*", "--from"])
            .arg(source.conninfo(&src))
            .arg("--to")
            .arg(tight.conninfo(&d1))
            // Slowly (all at once, ~2 s): every worker holds its connections together.
            .args(["--state", state.arg(), "--jobs", "20", "--max-rate", "1M"])
            .args(extra)
            .output()
            .unwrap()
    };
    // 20 workers would need 21 connections (one each and the watch's) where 15 are allowed, 3
    // of them kept for a DBA: capped, said, and every table copied.
    let out = job(&[]);
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    let warning = stderr
        .lines()
        .find(|l| l.contains("--jobs 20 needs up to 21 connections there"))
        .unwrap_or_else(|| panic!("no warning:\n{stderr}"));
    assert!(
        warning.contains("destination 1 (")
            && warning.contains(
                "more connections now (max_connections 15, less the 3 that \
                 superuser_reserved_connections keeps for a DBA, left free)"
            )
            && warning.contains("at a time (--jobs 1"),
        "{warning}"
    );
    assert!(!stderr.contains("too many clients"), "{stderr}");
    for i in 1..=20 {
        assert_eq!(count(&tight, &d1, &format!("m{i}")), 1000);
    }
    // Two databases of the one server: named once, as one server (scale38 F13: each was named,
    // joined by "and", as if each accepted the connections).
    let d2 = database(&tight, &schema);
    // (A state file of its own directory: the first run's, beside it, records d1's tables.)
    let dir = TempDir::new("two-dbs");
    let out = copyman()
        .args(["table", "--table", "m*", "--dry-run", "--from"])
        .arg(source.conninfo(&src))
        .args(["--to", &tight.conninfo(&d1), "--to", &tight.conninfo(&d2)])
        .args(["--state", &dir.path("job.state"), "--jobs", "20"])
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    let warning = (stderr.lines())
        .find(|l| l.contains("--jobs 20 needs up to"))
        .unwrap_or_else(|| panic!("no warning:\n{stderr}"));
    assert!(
        warning.contains("the server of destination 1 (")
            && warning.contains("), destination 2 accepts")
            && !warning.contains(" and destination 2"),
        "{warning}"
    );
    // --split-larger-than costs range sessions only where a table is split: none over 1G, the
    // cap is the same (it was 2, as if every worker split a table); one over 64K, said why.
    for (split, jobs, says_split) in [("1G", "--jobs 11)", false), ("64K", "--jobs 2)", true)] {
        let out = job(&["--dry-run", "--resume", "--split-larger-than", split]);
        assert_exit(&out, 0);
        let stderr = text(&out.stderr);
        let warning = stderr
            .lines()
            .find(|l| l.contains("--jobs 20 needs up to"))
            .unwrap_or_else(|| panic!("{split}: no warning:\n{stderr}"));
        assert!(warning.contains(jobs), "{split}: {warning}");
        // The dry run's document has what stderr warned (it had no `warnings`).
        let document = json(&out);
        assert!(
            document["warnings"].as_array().is_some_and(|w| w
                .iter()
                .any(|w| w.as_str().is_some_and(|w| w.contains(jobs)))),
            "{split}: {document}"
        );
        assert_eq!(
            warning.contains("--split-larger-than: a worker copies"),
            says_split,
            "{split}: {warning}"
        );
    }
    // One table over the size: one worker splits it, and its ranges alone take sessions (it
    // was capped as if each of 20 workers split a table: 2 ranges where 12 sessions were
    // free). Cut into at most 11 ranges (the 11 workers an unsplit job fits); into 10 where
    // 11 would take 13 sessions, said.
    let one = TempPath::new("max-connections-one.state");
    let empty = database(&tight, &schema);
    let ranges = |split: &str| {
        let out = copyman()
            .args(["--json", "table", "m1", "--from"])
            .arg(source.conninfo(&src))
            .arg("--to")
            .arg(tight.conninfo(&empty))
            .args(["--state", one.arg(), "--jobs", "20", "--dry-run"])
            .args(["--split-larger-than", split])
            .output()
            .unwrap();
        assert_exit(&out, 0);
        let document = json(&out);
        let ranges = document["tables"][0]["ranges"]
            .as_array()
            .map_or(0, Vec::len);
        (ranges, text(&out.stderr))
    };
    let (few, stderr) = ranges("32K");
    assert!((3..=10).contains(&few), "{few} ranges: {stderr}");
    assert!(!stderr.contains("--jobs 20 needs"), "{stderr}");
    let (most, stderr) = ranges("4K");
    assert_eq!(most, 10, "{stderr}");
    assert!(
        stderr.contains(
            "copying 1 table at a time, a table over --split-larger-than in 10 ranges (--jobs 10)"
        ),
        "{stderr}"
    );
    // With 11 of the 12 ordinary connections held, not even one worker fits (its session and
    // the watch's) but in the reserved slots, which a superuser may take: one worker, said
    // (conn68 F1: refused, exit 3, while the server let the DBA in).
    let held: Vec<postgres::Client> = (0..11).map(|_| tight.connect("postgres")).collect();
    let out = job(&["--resume"]);
    let stderr = text(&out.stderr);
    assert_exit(&out, 0);
    assert!(
        stderr.contains(
            " now (max_connections 15, less the 3 that superuser_reserved_connections keeps \
             for a DBA, left free): a job needs 2 there even with --jobs 1, so it takes 1 of the \
             3 reserved slots kept for a DBA, as its superuser may (copying 1 table at a time, \
             --jobs 1)"
        ),
        "{stderr}"
    );
    // With 14 held, not even those: refused before copying.
    let more: Vec<postgres::Client> = (0..3).map(|_| tight.connect("postgres")).collect();
    let out = job(&["--resume"]);
    drop((held, more));
    assert_exit(&out, 3);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("destination 1 (")
            && stderr.contains(
                " now (max_connections 15, less the 3 that superuser_reserved_connections keeps \
                 for a DBA, left free): a job needs 2 there even with --jobs 1; free \
                 connections there, or raise max_connections"
            ),
        "{stderr}"
    );
}

/// A role that is not superuser sees other roles' sessions in `pg_stat_activity` without their
/// backend type: the cap counted only its own (25 connections held by others counted as none),
/// and the job failed with 53300 (exit 1). Nor did it count the role's `CONNECTION LIMIT`. Both
/// cap `--jobs` now, said, and every table is copied.
#[test]
fn job_jobs_are_capped_for_a_role_that_is_not_superuser_and_by_its_connection_limit() {
    let c = clusters();
    let tight = Cluster::builder().setting("max_connections", "15").start();
    let schema: String = (1..=8)
        .map(|i| format!("CREATE TABLE m{i} (id int8 PRIMARY KEY, v text);"))
        .collect();
    let fill: String = (1..=8)
        .map(|i| format!("INSERT INTO m{i} SELECT g, 'm' FROM generate_series(1, 500) g;"))
        .collect();
    let src = database(&c.source, &format!("{schema}{fill}"));
    let d1 = database(&tight, &schema);
    let role = format!("app_{d1}");
    let mut admin = tight.connect(&d1);
    admin
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN; GRANT ALL ON ALL TABLES IN SCHEMA public TO {role};
             GRANT EXECUTE ON FUNCTION pg_control_system() TO {role};
             CREATE ROLE grp_{role}; GRANT grp_{role} TO {role};
             GRANT ALL ON ALL TABLES IN SCHEMA public TO grp_{role};
             GRANT EXECUTE ON FUNCTION pg_control_system() TO grp_{role};"
        ))
        .unwrap();
    let to = format!(
        "host=127.0.0.1 port={} user={role} dbname={d1}",
        tight.port()
    );
    let state = TempPath::new("not-superuser.state");
    let job_to = |to: &str| {
        let mut admin = tight.connect(&d1);
        for i in 1..=8 {
            admin.batch_execute(&format!("TRUNCATE m{i}")).unwrap();
        }
        drop(admin);
        let _ = std::fs::remove_file(&state.0);
        copyman()
            .args(["table", "--table", "m*", "--from"])
            .arg(c.source.conninfo(&src))
            .args(["--to", to, "--state", state.arg(), "--jobs", "8"])
            .output()
            .unwrap()
    };
    let job = || job_to(&to);
    let copied = |out: &std::process::Output| {
        assert_exit(out, 0);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("--jobs 8 needs up to 9 connections there"),
            "{stderr}"
        );
        assert!(!stderr.contains("53300"), "{stderr}");
        for i in 1..=8 {
            assert_eq!(count(&tight, &d1, &format!("m{i}")), 500);
        }
    };
    // Eight of the 12 connections a role that is not superuser may have are held by another.
    let held: Vec<postgres::Client> = (0..8).map(|_| tight.connect("postgres")).collect();
    copied(&job());
    drop(held);
    // The role may have three connections: the cap names that limit, not max_connections.
    admin
        .batch_execute(&format!("ALTER ROLE {role} CONNECTION LIMIT 3"))
        .unwrap();
    let out = job();
    copied(&out);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("more connections now (the role's CONNECTION LIMIT 3)"),
        "{stderr}"
    );
    // The same under another role set for the session (`-c role=`): the server limits the
    // role that logged in, whose limit the cap reads (it read the set role's, none: 53300).
    let out = job_to(&format!("{to} options='-c role=grp_{role}'"));
    copied(&out);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("more connections now (the role's CONNECTION LIMIT 3)"),
        "{stderr}"
    );
    // One: not even one worker fits, and raising max_connections would not help.
    admin
        .batch_execute(&format!("ALTER ROLE {role} CONNECTION LIMIT 1"))
        .unwrap();
    let out = job();
    assert_exit(&out, 3);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("(the role's CONNECTION LIMIT 1): a job needs 2 there")
            && stderr.contains("or raise the role's CONNECTION LIMIT"),
        "{stderr}"
    );
}

/// `copyman --json table TABLES --atomic` from `from` to `to`, its output piped.
fn atomic_job(tables: &[&str], from: &str, to: &[&str], state: &TempPath, log: &TempPath) -> Child {
    let mut cmd = copyman();
    cmd.args(["--json", "table"]).args(tables);
    cmd.args(["--atomic", "--from", from]);
    for to in to {
        cmd.args(["--to", to]);
    }
    cmd.args(["--state", state.arg(), "--decision-log", log.arg()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Once `waiters` PREPAREs wait on `db` (of [`stuck_db`]), two SIGINTs to `child`: its output
/// and what its stderr said after the first.
fn two_sigints_once_waiting(
    child: Child,
    mut stderr: StderrLines,
    db: &str,
    waiters: usize,
) -> (std::process::Output, String) {
    wait_for_waiters(db, waiters);
    signal(&child, "INT");
    stderr.expect("SIGINT received");
    signal(&child, "INT");
    let rest = stderr.unseen();
    (child.wait_with_output().unwrap(), rest)
}

/// Lets the PREPAREs stuck on `db` (of [`stuck_db`]) through, waits until none waits, and lets
/// that database's next statements (recover's ROLLBACK PREPAREDs) go without a standby.
fn let_prepares_through(db: &str, stop: &'static AtomicBool) {
    let releaser = release(db.to_owned(), stop);
    while !sync_waiters(db).is_empty() {
        thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::SeqCst);
    releaser.join().unwrap();
    syncrep()
        .connect("postgres")
        .batch_execute(&format!(
            "ALTER DATABASE \"{db}\" SET synchronous_commit = local"
        ))
        .unwrap();
}

/// The tests that leave transactions prepared on [`syncrep`] and recover them, one at a time:
/// a recovery counts another's in other databases of the server as pending.
fn one_stuck_prepare_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ONE.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Two signals while destination 2's PREPARE is stuck and destination 1's was answered:
/// destination 1 is prepared, not committed (it was called "in doubt: it may have committed");
/// destination 2 prepared or not; nothing committed, the signal's code. Recover rolls both
/// back (no decision was recorded).
#[test]
fn job_atomic_second_sigint_tells_a_prepared_destination_from_one_in_doubt() {
    static STOP: AtomicBool = AtomicBool::new(false);
    let _one = one_stuck_prepare_at_a_time();
    let c = clusters();
    let src = database(&c.source, &format!("{TABLES}{FILL}"));
    // Destination 1 on the same server as the stuck one, in a database that does not wait.
    let d1 = database(syncrep(), TABLES);
    let d2 = stuck_db();
    let state = TempPath::new("atomic-prepared.state");
    let log = TempPath::new("atomic-prepared.log");
    let (to1, to2) = (syncrep().conninfo(&d1), syncrep().conninfo(&d2));
    let mut child = atomic_job(
        &["t1"],
        &c.source.conninfo(&src),
        &[&to1, &to2],
        &state,
        &log,
    );
    let _watchdog = watchdog(child.id());
    let mut stderr = StderrLines::take(&mut child);
    stderr.expect("'s PREPARE TRANSACTION of table");
    let (out, rest) = two_sigints_once_waiting(child, stderr, &d2, 1);
    assert_exit(&out, 130);
    let report = json(&out);
    let prepared = record(&report, "t1", 0);
    assert_eq!(prepared["status"], "prepared", "{report}");
    assert!(
        prepared["note"].as_str().unwrap().contains("not committed"),
        "{report}"
    );
    assert_eq!(
        record(&report, "t1", 1)["status"],
        "prepared or not",
        "{report}"
    );
    assert!(
        rest.contains("prepared or being prepared, not committed")
            && rest.contains("\"public\".\"t1\" on destination 1")
            && rest.contains("\"public\".\"t1\" on destination 2"),
        "{rest}"
    );
    // Released: both prepared, never decided; recover rolls them back.
    let_prepares_through(&d2, &STOP);
    let out = copyman()
        .args([
            "recover",
            "--to",
            &to1,
            "--to",
            &to2,
            "--decision-log",
            log.arg(),
        ])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert_eq!(count(syncrep(), &d1, "t1"), 0);
    assert_eq!(count(syncrep(), &d2, "t1"), 0);
}

/// One table, `--atomic`: two signals while destination 2's PREPARE is stuck. Destination 1
/// prepared ("rollback pending": recover rolls it back), destination 2 "prepared or not",
/// destination 3, never sent its PREPARE, rolled back as copyman exits (all three were called
/// "rollback pending"), and the words name each.
#[test]
fn atomic_second_sigint_during_a_stuck_prepare_tells_each_destination_as_its_prepare_stands() {
    static STOP: AtomicBool = AtomicBool::new(false);
    let _one = one_stuck_prepare_at_a_time();
    let c = clusters();
    let src = database(&c.source, &format!("{TABLES}{FILL}"));
    let d1 = database(syncrep(), TABLES);
    let d2 = stuck_db();
    let d3 = database(syncrep(), TABLES);
    let log = TempPath::new("one-atomic-prepare.log");
    let to: Vec<String> = [&d1, &d2, &d3]
        .iter()
        .map(|d| syncrep().conninfo(d))
        .collect();
    let mut cmd = copyman();
    cmd.args(["--json", "table", "t1", "--atomic", "--from"])
        .arg(c.source.conninfo(&src));
    for to in &to {
        cmd.args(["--to", to]);
    }
    let mut child = cmd
        .args(["--decision-log", log.arg()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _watchdog = watchdog(child.id());
    let stderr = StderrLines::take(&mut child);
    let (out, rest) = two_sigints_once_waiting(child, stderr, &d2, 1);
    assert_exit(&out, 130);
    let report = json(&out);
    let status = |i: usize| {
        report["destinations"][i]["status"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        [status(0), status(1), status(2)],
        ["rollback pending", "prepared or not", "rolled back"],
        "{report}"
    );
    assert!(
        rest.contains("prepared: destination 1 (")
            && rest.contains("not answered (prepared or not): destination 2 (")
            && rest.contains("rolled back as copyman exits: destination 3 ("),
        "{rest}"
    );
    let prepared = |d: &str| {
        syncrep()
            .connect(d)
            .query_one(
                "SELECT count(*) FROM pg_prepared_xacts WHERE database = current_database()",
                &[],
            )
            .unwrap()
            .get::<_, i64>(0)
    };
    assert_eq!(prepared(&d3), 0, "destination 3 was never sent its PREPARE");
    let_prepares_through(&d2, &STOP);
    let mut recover = copyman();
    recover.arg("recover");
    for to in &to {
        recover.args(["--to", to]);
    }
    let out = recover
        .args(["--decision-log", log.arg()])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    for d in [&d1, &d2, &d3] {
        assert_eq!(count(syncrep(), d, "t1"), 0);
        assert_eq!(prepared(d), 0);
    }
}

/// A destination's `PREPARE TRANSACTION` whose session is terminated before it answers (here
/// while it waits for the standby: prepared locally) may have prepared: the job rolls it back
/// prepared on a new session, so the table failed there and nothing is left prepared (it said
/// "may hold the prepared transaction … copyman recover rolls it back" and left it, holding its
/// locks). What the server said on the lost session is still shown.
#[test]
fn job_atomic_a_prepare_whose_session_is_terminated_is_rolled_back_on_a_new_session() {
    static STOP: AtomicBool = AtomicBool::new(false);
    let _one = one_stuck_prepare_at_a_time();
    let c = clusters();
    let src = database(&c.source, &format!("{TABLES}{FILL}"));
    let d2 = stuck_db();
    let state = TempPath::new("atomic-terminated.state");
    let log = TempPath::new("atomic-terminated.log");
    let to = syncrep().conninfo(&d2);
    let child = atomic_job(&["t1"], &c.source.conninfo(&src), &[&to], &state, &log);
    let _watchdog = watchdog(child.id());
    wait_for_waiters(&d2, 1);
    syncrep()
        .connect("postgres")
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 \
             AND wait_event = 'SyncRep'",
            &[&d2],
        )
        .unwrap();
    // Its ROLLBACK PREPARED waits for the standby too: let it through.
    let releaser = release(d2.clone(), &STOP);
    let out = child.wait_with_output().unwrap();
    STOP.store(true, Ordering::SeqCst);
    releaser.join().unwrap();
    assert_exit(&out, 1);
    let report = json(&out);
    let r = record(&report, "t1", 0);
    assert_eq!(r["status"], "failed", "{report}");
    assert!(
        !r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("may hold the prepared transaction"),
        "{report}"
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("\"public\".\"t1\" on destination 1: WARNING:  canceling the wait"),
        "{stderr}"
    );
    let prepared: i64 = syncrep()
        .connect("postgres")
        .query_one(
            "SELECT count(*) FROM pg_prepared_xacts WHERE database = $1",
            &[&d2],
        )
        .unwrap()
        .get(0);
    assert_eq!(prepared, 0, "{stderr}");
    assert_eq!(count(syncrep(), &d2, "t1"), 0);
}

/// A job planning while a destination never answers its connection (a socket that accepts and
/// says nothing) says that it waits for that destination: it named the source's and the other
/// destination's backends, which only wait for copyman, as "frozen, or the network path to it
/// lost" (conn42 F2). A signal then stops it, nothing copied.
#[test]
fn a_job_waiting_for_a_connection_names_the_server_it_waits_for() {
    let c = clusters();
    let src = database(&c.source, "CREATE TABLE a (i int); CREATE TABLE b (i int);");
    let dst = database(
        &c.dest[0],
        "CREATE TABLE a (i int); CREATE TABLE b (i int);",
    );
    let dir = TempDir::new("silent-socket");
    let _silent = std::os::unix::net::UnixListener::bind(dir.0.join(".s.PGSQL.5999")).unwrap();
    let silent = format!("host={} port=5999 user=postgres dbname=x", dir.arg());
    let mut child = copyman()
        .env("COPYMAN_TEST_SAY_AFTER", "1")
        .args([
            "table",
            "a",
            "b",
            "--from",
            &c.source.conninfo(&src),
            "--to",
        ])
        .arg(c.dest[0].conninfo(&dst))
        .args(["--to", &silent])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = StderrLines::take(&mut child);
    let line = stderr.expect("nothing has moved for");
    signal(&child, "INT");
    let out = child.wait_with_output().unwrap();
    assert!(
        line.contains(&format!(
            "copyman waits for destination 2 (postgres@{}:5999/x) to answer its connection",
            dir.arg()
        )),
        "{line}"
    );
    assert!(!line.contains("frozen, or the network path"), "{line}");
    assert_eq!(out.status.code(), Some(130));
    assert_eq!(count(&c.dest[0], &dst, "a"), 0);
}

/// A job under `--atomic` stopped while its destination's PREPAREs wait for a synchronous standby
/// that is not there ends on its first signal: each PREPARE's wait is cancelled (prepared
/// there, as its server says), then rolled back — the ROLLBACK PREPARED waits for the same
/// standby, and its wait is cancelled too, said (it is rolled back on its server already).
/// Nothing is left prepared, nothing committed (commit48 F5: the stop waited for the ROLLBACK
/// PREPARED until a second signal, which then said it "may have committed").
#[test]
fn job_stopped_while_its_prepares_wait_for_a_synchronous_standby_ends_rolled_back() {
    let c = clusters();
    let src = database(&c.source, &format!("{TABLES}{FILL}"));
    let stuck = stuck_db();
    let log = TempPath::new("stop-prepare.log");
    let state = TempPath::new("stop-prepare.state");
    let mut child = copyman()
        .args(["table", "t1", "t2", "--from"])
        .arg(c.source.conninfo(&src))
        .arg("--to")
        .arg(syncrep().conninfo(&stuck))
        .args([
            "--atomic",
            "--decision-log",
            log.arg(),
            "--state",
            state.arg(),
        ])
        .env("COPYMAN_TEST_SAY_AFTER", "3")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = StderrLines::take(&mut child);
    let _watchdog = watchdog(child.id());
    let started = std::time::Instant::now();
    while sync_waiters(&stuck).is_empty() {
        if started.elapsed() > Duration::from_secs(30) {
            signal(&child, "KILL");
            panic!("no PREPARE waits for the standby: {}", stderr.unseen());
        }
        thread::sleep(Duration::from_millis(50));
    }
    signal(&child, "INT");
    stderr.expect("SIGINT received");
    let seen = stderr.seen().to_owned();
    let rest = stderr.unseen();
    let out = child.wait_with_output().unwrap();
    let said = format!("{seen}{rest}");
    assert_eq!(out.status.code(), Some(130), "{said}");
    assert!(
        said.contains("'s ROLLBACK PREPARED of table \"public\".\"t")
            && said.contains("rolled back there already, only the standby's word is waited for: its wait is cancelled"),
        "{said}"
    );
    assert!(!said.contains("may have committed"), "{said}");
    let left: i64 = syncrep()
        .connect("postgres")
        .query_one(
            "SELECT count(*) FROM pg_prepared_xacts WHERE database = $1",
            &[&stuck],
        )
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "{said}");
    assert!(sync_waiters(&stuck).is_empty(), "{said}");
    assert_eq!(count(syncrep(), &stuck, "t1"), 0, "{said}");
    assert_eq!(count(syncrep(), &stuck, "t2"), 0, "{said}");
}
