//! `--atomic` (two-phase commit) and `copyman recover`, against real clusters, killing copyman or
//! a destination server at each point of the commit. After every test every destination holds
//! all the rows or none, and no prepared transaction is left anywhere.

use crate::common;

use std::fs;
use std::sync::OnceLock;
use std::thread;

use common::*;
use copyman_testkit::Cluster;

/// A source (which allows no prepared transactions, as PostgreSQL's default) and two
/// destination clusters that allow them; a third, `stopped`, for the one test that stops it.
struct Servers {
    source: Cluster,
    a: Cluster,
    b: Cluster,
    stopped: Cluster,
}

fn servers() -> &'static Servers {
    static SERVERS: OnceLock<Servers> = OnceLock::new();
    SERVERS.get_or_init(|| {
        let two_phase = || {
            Cluster::builder()
                .setting("max_prepared_transactions", "10")
                .start()
        };
        thread::scope(|s| {
            let source = s.spawn(Cluster::start);
            let a = s.spawn(two_phase);
            let b = s.spawn(two_phase);
            let stopped = s.spawn(two_phase);
            Servers {
                source: source.join().unwrap(),
                a: a.join().unwrap(),
                b: b.join().unwrap(),
                stopped: stopped.join().unwrap(),
            }
        })
    })
}

const TABLE: &str = "CREATE TABLE m (id int8 PRIMARY KEY, v text)";

/// A run's three destinations: a database on A, one on B (the server a test may stop), another
/// on A.
struct Run {
    src: String,
    dests: [(&'static Cluster, String); 3],
    log: TempPath,
}

impl Run {
    fn new() -> Self {
        Self::with_second(&servers().b)
    }

    /// A run whose second destination is on `second`.
    fn with_second(second: &'static Cluster) -> Self {
        let s = servers();
        let src = database(
            &s.source,
            &format!("{TABLE}; INSERT INTO m SELECT g, 'v' || g FROM generate_series(1, 2000) g"),
        );
        Self {
            src,
            dests: [
                (&s.a, database(&s.a, TABLE)),
                (second, database(second, TABLE)),
                (&s.a, database(&s.a, TABLE)),
            ],
            log: TempPath::new("decisions.log"),
        }
    }

    fn urls(&self) -> Vec<String> {
        self.dests.iter().map(|(c, db)| c.url(db)).collect()
    }

    fn copy_args(&self) -> Vec<String> {
        let mut args = vec![
            "table".to_owned(),
            "m".to_owned(),
            "--from".to_owned(),
            servers().source.url(&self.src),
        ];
        for url in self.urls() {
            args.push("--to".to_owned());
            args.push(url);
        }
        args.extend([
            "--atomic".to_owned(),
            "--decision-log".to_owned(),
            self.log.arg().to_owned(),
            "--json".to_owned(),
        ]);
        args
    }

    fn recover(&self) -> std::process::Output {
        let mut args = vec!["recover".to_owned()];
        for url in self.urls() {
            args.push("--to".to_owned());
            args.push(url);
        }
        args.extend([
            "--decision-log".to_owned(),
            self.log.arg().to_owned(),
            "--json".to_owned(),
        ]);
        copyman().args(&args).output().expect("run copyman recover")
    }

    /// `copyman recover` for this run, paused at `point`.
    fn recover_paused(&self, point: &str) -> Paused {
        let mut args = vec!["recover".to_owned()];
        for url in self.urls() {
            args.push("--to".to_owned());
            args.push(url);
        }
        args.extend(["--decision-log".to_owned(), self.log.arg().to_owned()]);
        Paused::start(&args.iter().map(String::as_str).collect::<Vec<_>>(), point)
    }

    /// `copyman recover` for this run given destinations `which` (0-based) only.
    fn recover_only(&self, which: &[usize]) -> std::process::Output {
        let urls = self.urls();
        let mut args = vec!["recover".to_owned()];
        for &n in which {
            args.push("--to".to_owned());
            args.push(urls[n].clone());
        }
        args.extend([
            "--decision-log".to_owned(),
            self.log.arg().to_owned(),
            "--json".to_owned(),
        ]);
        copyman().args(&args).output().expect("run copyman recover")
    }

    /// Rolls destination `n`'s (0-based) prepared transaction back by hand, as a DBA would;
    /// its global id.
    fn roll_back_by_hand(&self, n: usize) -> String {
        let (cluster, db) = &self.dests[n];
        let gid = self
            .prepared()
            .into_iter()
            .find(|g| g.ends_with(&format!(":{}", n + 1)))
            .expect("that destination prepared");
        cluster
            .connect(db)
            .batch_execute(&format!("ROLLBACK PREPARED '{gid}'"))
            .unwrap();
        gid
    }

    /// Rows on each destination.
    fn counts(&self) -> Vec<i64> {
        self.dests.iter().map(|(c, db)| count(c, db, "m")).collect()
    }

    /// Every destination holds exactly the source's rows.
    fn assert_all(&self) {
        let expected = digest(&servers().source, &self.src, "m");
        for (c, db) in &self.dests {
            assert_eq!(digest(c, db, "m"), expected, "{db}");
        }
    }

    /// Prepared transactions in this run's destination databases.
    fn prepared(&self) -> Vec<String> {
        let mut all = Vec::new();
        for (c, db) in &self.dests {
            all.extend(
                c.connect(db)
                    .query(
                        "SELECT gid FROM pg_prepared_xacts WHERE database = current_database()",
                        &[],
                    )
                    .unwrap()
                    .iter()
                    .map(|r| r.get::<_, String>(0)),
            );
        }
        all
    }
}

/// The backend of `db` on `cluster` idle in its transaction (a destination not prepared yet),
/// if there is one.
fn idle_in_transaction(cluster: &Cluster, db: &str) -> Option<i32> {
    let rows = cluster
        .connect("postgres")
        .query(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 \
             AND state = 'idle in transaction'",
            &[&db],
        )
        .unwrap();
    Some(rows.first()?.get(0))
}

/// Sends `sig` (`-STOP`, `-CONT`) to backend `pid`.
fn kill(sig: &str, pid: i32) {
    let status = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {sig} {pid}");
}

/// Waits (10 s at most) until backend `pid` is gone from `cluster`.
fn wait_gone(cluster: &Cluster, pid: i32) {
    let mut watch = cluster.connect("postgres");
    for _ in 0..200 {
        let n: i64 = watch
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = $1",
                &[&pid],
            )
            .unwrap()
            .get(0);
        if n == 0 {
            break;
        }
        thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn atomic_copies_to_three_destinations_row_for_row() {
    let run = Run::new();
    let out = copyman().args(run.copy_args()).output().unwrap();
    assert_exit(&out, 0);
    assert_eq!(json(&out)["status"], "ok");
    run.assert_all();
    assert!(run.prepared().is_empty());
    let log = fs::read_to_string(&run.log.0).expect("the decision was recorded");
    // The run's start, where each of its transactions is, its decision, each COMMIT PREPARED
    // as it is sent, and its end.
    let kinds: Vec<&str> = log.lines().filter_map(|l| l.split(' ').next()).collect();
    assert_eq!(
        kinds,
        [
            "begin",
            "party",
            "party",
            "party",
            "commit",
            "committing",
            "committing",
            "committing",
            "done"
        ],
        "{log}"
    );
    let decision = log.lines().nth(4).unwrap();
    assert_eq!(decision.matches("copyman:").count(), 3, "{log}");
    assert!(!log.contains("password"), "{log}");
}

#[test]
fn killed_after_some_prepared_then_recover_rolls_every_one_back() {
    let run = Run::new();
    let copy = run.copy_args();
    Paused::start(&args(&copy), "prepared:2").kill();
    // Two destinations hold prepared transactions, nothing is visible anywhere.
    assert_eq!(run.prepared().len(), 2, "{:?}", run.prepared());
    assert_eq!(run.counts(), [0, 0, 0]);

    let out = run.recover();
    assert_exit(&out, 0);
    let report = json(&out);
    assert_eq!(report["prepared"].as_array().unwrap().len(), 2, "{report}");
    assert!(
        report["prepared"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["outcome"] == "rolled back"),
        "{report}"
    );
    assert!(run.prepared().is_empty());
    assert_eq!(run.counts(), [0, 0, 0]);

    // Idempotent: nothing left to do.
    let out = run.recover();
    assert_exit(&out, 0);
    assert_eq!(json(&out)["prepared"].as_array().unwrap().len(), 0);
}

#[test]
fn killed_after_the_decision_and_one_commit_then_recover_commits_the_rest() {
    let run = Run::new();
    let copy = run.copy_args();
    Paused::start(&args(&copy), "commit-prepared:1").kill();
    assert_eq!(run.counts(), [2000, 0, 0]);
    assert_eq!(run.prepared().len(), 2);

    let out = run.recover();
    assert_exit(&out, 0);
    let report = json(&out);
    assert!(
        report["prepared"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["outcome"] == "committed"),
        "{report}"
    );
    // Each names what it is of its run, beside its place among the CONNs given (commit44 F3).
    for p in report["prepared"].as_array().unwrap() {
        let n = p["gid"].as_str().unwrap().rsplit(':').next().unwrap();
        assert_eq!(p["party"], format!("destination {n}"), "{report}");
        assert_eq!(p["endpoint"], p["destination"], "{report}");
    }
    run.assert_all();
    assert!(run.prepared().is_empty());
    // recover, as the run, records each COMMIT PREPARED before it sends it, as its own: a
    // recovery killed before its answer leaves a later one nothing to suspect.
    let log = fs::read_to_string(&run.log.0).unwrap();
    for n in [2, 3] {
        assert!(
            log.lines()
                .any(|l| l.starts_with("committing ") && l.ends_with(&format!(":{n} recovery"))),
            "{log}"
        );
    }
}

/// Two signals once destination 1's COMMIT PREPARED was answered: the line says the others
/// are prepared, for recover to commit (it said "not committed: …" as if rolled back, and a
/// run without --atomic pointed at recover for nothing).
#[test]
fn a_second_signal_during_the_commit_prepareds_says_recover_commits_the_rest() {
    let run = Run::new();
    let copy = run.copy_args();
    let mut paused = Paused::start(&args(&copy), "commit-prepared:1");
    let mut stderr = StderrLines::take(&mut paused.child);
    signal(&paused.child, "INT");
    let _ = stderr.wait_for("SIGINT received");
    signal(&paused.child, "INT");
    let status = paused.child.wait().unwrap();
    let said = stderr.rest();
    assert_eq!(status.code(), Some(4), "{said}");
    assert!(
        said.contains("exiting at once during the COMMITs: committed: destination 1 (")
            && said.contains("(prepared: copyman recover with the same --to")
            && said.contains("commits them)"),
        "{said}"
    );
    assert_eq!(run.counts(), [2000, 0, 0]);
    let out = run.recover();
    assert_exit(&out, 0);
    run.assert_all();
    assert!(run.prepared().is_empty());
}

/// A signal while copyman writes its commit decision to its log (held there, as a slow disk's
/// fsync would): the reminder says that write is what the run waits for, not "the servers to
/// answer" (dups49 F1: it named every server, all idle, waiting for copyman); the commit then
/// finishes. One table's run and a job's.
#[test]
fn a_stop_during_the_decisions_write_says_copyman_writes_it() {
    for job in [false, true] {
        let run = Run::new();
        let state = TempPath::new("recording.state");
        let mut copy = run.copy_args();
        if job {
            copy.extend(["--state".to_owned(), state.arg().to_owned()]);
        }
        let mut command = copyman();
        command.env("COPYMAN_TEST_SAY_AFTER", "1");
        let mut paused = Paused::start_with(command, &args(&copy), "recording");
        let mut stderr = StderrLines::take(&mut paused.child);
        signal(&paused.child, "TERM");
        let said = stderr.expect("still stopping");
        assert!(
            said.contains(&format!(
                "waiting for copyman's own write of its commit decision to {}",
                std::path::absolute(&run.log.0).unwrap().display()
            )) && !said.contains("the servers to answer"),
            "job {job}: {said}"
        );
        let out = paused.resume();
        assert_exit(&out, 0);
        run.assert_all();
        assert!(run.prepared().is_empty());
    }
}

/// A run killed before its decision while one destination's session had not yet read its
/// PREPARE (frozen here; a lost network path alike): that session still lives, and may prepare
/// once it reads it. recover does not say "nothing pending" and record the run done (the
/// prepared transaction appeared after it, holding its locks): it names the session and how to
/// end it, exit 1; once the session is gone, a second recover finishes.
#[test]
fn recover_does_not_finish_a_run_whose_session_may_still_prepare() {
    // One table, and a job (a state file): a job's party lines named no session (its planning
    // session's server only), so recover said "nothing pending" and recorded the run done.
    for job in [false, true] {
        session_that_may_still_prepare(job, false);
    }
    // The run's sessions in another TimeZone than the recovery's: its session still known (its
    // start was compared as text in each session's zone: "nothing pending", exit 0, and the
    // PREPARE landed after).
    session_that_may_still_prepare(false, true);
}

fn session_that_may_still_prepare(job: bool, zoned: bool) {
    let run = Run::new();
    let mut copy = run.copy_args();
    let state = TempPath::new("may-still-prepare.state");
    if job {
        copy.extend(["--state".to_owned(), state.arg().to_owned()]);
    }
    if zoned {
        let urls = run.urls();
        for arg in copy.iter_mut().filter(|a| urls.contains(a)) {
            let join = if arg.contains('?') { '&' } else { '?' };
            arg.push_str(&format!("{join}options=-c%20TimeZone%3DAsia%2FTokyo"));
        }
    }
    let paused = Paused::start(&args(&copy), "prepared:1");
    // A destination not prepared yet: its session waits, idle in its transaction.
    let open = (run.dests.iter()).find_map(|(c, db)| Some((*c, idle_in_transaction(c, db)?)));
    let (cluster, pid) = open.expect("a destination not prepared yet");
    kill("-STOP", pid);
    paused.kill();
    let out = run.recover();
    kill("-CONT", pid);
    assert_exit(&out, 1);
    let said = text(&out.stderr);
    assert!(
        said.contains(&format!(
            "is not prepared, but the session of its run that was to prepare it, backend \
             {pid}, is still open there"
        )) && said.contains(&format!("SELECT pg_terminate_backend({pid})")),
        "{said}"
    );
    let log = fs::read_to_string(&run.log.0).unwrap();
    assert!(!log.lines().any(|l| l.starts_with("done ")), "{log}");
    // Let go, the session reads the end of its connection and goes.
    wait_gone(cluster, pid);
    let out = run.recover();
    assert_exit(&out, 0);
    assert!(run.prepared().is_empty());
    assert_eq!(run.counts(), [0, 0, 0]);
}

/// The dead run's own COMMIT PREPARED, sent to a backend that had not run it yet (frozen here),
/// runs just before recover's: recover's finds it gone (42704). It is said committed, by its
/// run, exit 0 — not "could not be committed", exit 1.
#[test]
fn a_commit_prepared_its_dead_run_sent_is_said_committed_when_it_lands_first() {
    let run = Run::new();
    let copy = run.copy_args();
    let paused = Paused::start(&args(&copy), "commit-prepared:1");
    // A destination still prepared: its session (idle) is frozen before it reads its COMMIT
    // PREPARED.
    let prepared = run.prepared();
    let (n, gid) = (0..3)
        .find_map(|n| {
            let gid = prepared
                .iter()
                .find(|g| g.ends_with(&format!(":{}", n + 1)))?;
            Some((n, gid.clone()))
        })
        .expect("a destination still prepared");
    let (cluster, db) = &run.dests[n];
    let pid: i32 = cluster
        .connect("postgres")
        .query_one(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND state = 'idle' \
             AND backend_type = 'client backend' AND query LIKE 'PREPARE TRANSACTION%'",
            &[db],
        )
        .unwrap()
        .get(0);
    kill("-STOP", pid);
    let mut child = paused.child;
    fs::remove_file(&paused.file.0).unwrap();
    // The run records that it sends it, then waits on the frozen backend: killed there.
    let mut sent = false;
    for _ in 0..200 {
        let log = fs::read_to_string(&run.log.0).unwrap_or_default();
        if log
            .lines()
            .any(|l| l.starts_with("committing ") && l.ends_with(&gid))
        {
            sent = true;
            break;
        }
        thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(sent, "the run never sent {gid}'s COMMIT PREPARED");
    // recover lists it prepared, then the frozen backend runs the dead run's statement first.
    let recovering = run.recover_paused("finishing:1");
    kill("-CONT", pid);
    let mut watch = cluster.connect(db);
    for _ in 0..200 {
        let n: i64 = watch
            .query_one(
                "SELECT count(*) FROM pg_prepared_xacts WHERE gid = $1",
                &[&gid],
            )
            .unwrap()
            .get(0);
        if n == 0 {
            break;
        }
        thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = recovering.resume();
    let said = text(&out.stderr);
    assert_exit(&out, 0);
    assert!(
        said.contains(gid.as_str()) && said.contains("committed meanwhile by its run"),
        "{said}"
    );
    run.assert_all();
    assert!(run.prepared().is_empty());
}

/// The dead run's own COMMIT PREPARED still running on its server (waiting for a synchronous
/// standby named once the transactions were prepared) when recover sends its own: recover's is
/// refused as busy (55000). Said being committed by its run, exit 1 — not "could not be
/// committed" — and once the wait ends, recover finds it done.
#[test]
fn a_commit_prepared_its_dead_run_is_still_running_is_said_being_committed() {
    static LATER_SYNC: OnceLock<Cluster> = OnceLock::new();
    let sync = LATER_SYNC.get_or_init(|| {
        Cluster::builder()
            .setting("max_prepared_transactions", "10")
            .start()
    });
    let standby = |names: &str| {
        let mut admin = sync.connect("postgres");
        let set = format!("ALTER SYSTEM SET synchronous_standby_names = '{names}'");
        admin.batch_execute(&set).unwrap();
        admin.batch_execute("SELECT pg_reload_conf()").unwrap();
        // The reload is asynchronous: a new session sees the setting once it took effect.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while sync
            .connect("postgres")
            .query_one("SHOW synchronous_standby_names", &[])
            .unwrap()
            .get::<_, String>(0)
            != names
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the reload never took"
            );
            thread::sleep(std::time::Duration::from_millis(20));
        }
    };
    // A run whose second destination is on `sync`: its sessions wait for a standby once one is
    // named (the test clusters' default is off).
    let sync_run = || {
        let run = Run::with_second(sync);
        let on = format!(
            "ALTER DATABASE \"{}\" SET synchronous_commit = on",
            run.dests[1].1
        );
        sync.connect("postgres").batch_execute(&on).unwrap();
        run
    };
    let run = sync_run();
    let copy = run.copy_args();
    let paused = Paused::start(&args(&copy), "recorded");
    let gid = run
        .prepared()
        .into_iter()
        .find(|g| g.ends_with(":2"))
        .expect("destination 2 prepared");
    // From now on its COMMITs wait for a standby that is not there.
    standby("nosuch");
    let mut child = paused.child;
    fs::remove_file(&paused.file.0).unwrap();
    let waits = |db: &str| {
        (0..200).any(|_| {
            let n: i64 = sync
                .connect("postgres")
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 \
                     AND wait_event = 'SyncRep' AND query LIKE 'COMMIT PREPARED%'",
                    &[&db],
                )
                .unwrap()
                .get(0);
            n > 0 || {
                thread::sleep(std::time::Duration::from_millis(50));
                false
            }
        })
    };
    let waiting = waits(&run.dests[1].1);
    child.kill().unwrap();
    child.wait().unwrap();
    if !waiting {
        standby("");
    }
    assert!(waiting, "destination 2's COMMIT PREPARED never waited");
    let out = run.recover();
    let said = text(&out.stderr);
    standby("");
    assert_exit(&out, 1);
    let doc = json(&out);
    let record = doc["prepared"]
        .as_array()
        .and_then(|all| all.iter().find(|p| p["gid"] == gid.as_str()))
        .unwrap_or_else(|| panic!("{doc}"));
    assert_eq!(record["outcome"], "being committed", "{doc}");
    // The document names the server whose transaction is busy (null: ops54 F2).
    assert_eq!(
        (&doc["server"], &doc["endpoint"], &doc["sqlstate"]),
        (
            &record["server"],
            &record["endpoint"],
            &serde_json::json!("55000")
        ),
        "{doc}"
    );
    assert!(doc["endpoint"].is_string(), "{doc}");
    let outcome = record["detail"].as_str().unwrap_or_default();
    assert!(
        outcome.starts_with("being committed by its run's own COMMIT PREPARED")
            && !outcome.contains("could not be committed"),
        "{doc}\n{said}"
    );
    // The wait over, the run's statement commits as decided: nothing left to finish.
    let settle = |run: &Run| {
        for _ in 0..200 {
            if run.prepared().is_empty() {
                break;
            }
            thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    settle(&run);
    assert_exit(&run.recover(), 0);
    run.assert_all();
    assert!(run.prepared().is_empty());
    // A run killed before its COMMIT PREPAREDs, then a recover killed while its own waits:
    // the next recover says it is that earlier recover's, not the run's (signals43 F3).
    let run = sync_run();
    Paused::start(&args(&run.copy_args()), "recorded").kill();
    standby("nosuch");
    thread::sleep(std::time::Duration::from_millis(500));
    let recovering = run.recover_paused("finishing:1");
    fs::remove_file(&recovering.file.0).unwrap();
    let waiting = waits(&run.dests[1].1);
    let mut child = recovering.child;
    child.kill().unwrap();
    child.wait().unwrap();
    let out = run.recover();
    standby("");
    assert!(waiting, "the recover's COMMIT PREPARED never waited");
    assert_exit(&out, 1);
    let doc = json(&out);
    let gid = doc["prepared"]
        .as_array()
        .and_then(|all| all.iter().find(|p| p["outcome"] == "being committed"))
        .unwrap_or_else(|| panic!("{doc}"));
    let outcome = gid["detail"].as_str().unwrap_or_default();
    assert!(
        outcome.starts_with("being committed by an earlier copyman recover's COMMIT PREPARED"),
        "{doc}"
    );
    settle(&run);
    assert_exit(&run.recover(), 0);
    run.assert_all();
    assert!(run.prepared().is_empty());
    // Recover's own COMMIT PREPARED waiting for the standby: committed there already, its wait
    // cancelled after 10 s and the destination after it finished (conn72 F1: it waited for
    // ever, the later servers' transactions held prepared with their locks).
    let run = sync_run();
    Paused::start(&args(&run.copy_args()), "recorded").kill();
    standby("nosuch");
    let out = run.recover();
    standby("");
    let said = text(&out.stderr);
    assert_exit(&out, 0);
    assert!(
        said.contains("COMMIT PREPARED waited 10 s for a synchronous standby")
            && said.contains("committed there already"),
        "{said}"
    );
    run.assert_all();
    assert!(run.prepared().is_empty());
    // The run's own COMMIT PREPARED alike: the destination after it committed too, exit 0
    // (recheck73 F1: its transaction stayed prepared, its locks held, until a second signal).
    let run = sync_run();
    let paused = Paused::start(&args(&run.copy_args()), "recorded");
    standby("nosuch");
    fs::remove_file(&paused.file.0).unwrap();
    let out = paused.child.wait_with_output().unwrap();
    standby("");
    let said = text(&out.stderr);
    assert_exit(&out, 0);
    assert!(
        said.contains("COMMIT PREPARED waited 10 s for a synchronous standby"),
        "{said}"
    );
    run.assert_all();
    assert!(run.prepared().is_empty());
}

/// Recovered one server at a time, as recover itself advises: a transaction its run committed
/// on a server given is recorded as ended, so that the next recovery, given the rest, finishes
/// (it asked again for the server the first had seen, exit 1).
#[test]
fn recovered_one_server_at_a_time_each_is_asked_for_once() {
    let run = Run::new();
    let copy = run.copy_args();
    Paused::start(&args(&copy), "commit-prepared:1").kill();
    let prepared = run.prepared();
    let committed = (0..3)
        .find(|n| !prepared.iter().any(|g| g.ends_with(&format!(":{}", n + 1))))
        .expect("one destination committed");
    let rest: Vec<usize> = (0..3).filter(|n| *n != committed).collect();
    // The committed one and one of the rest: the third is asked for.
    let out = run.recover_only(&[committed, rest[0]]);
    assert_exit(&out, 1);
    assert!(text(&out.stderr).contains("give"), "{}", text(&out.stderr));
    // `--json`'s error is what is left, not the transaction this recovery just committed
    // (it was listed as "left pending", the line to act on last: cli40 F1).
    let error = json(&out)["error"].as_str().unwrap_or_default().to_owned();
    assert!(error.contains("give"), "{error}");
    assert!(!error.contains("): committed"), "{error}");
    // The third alone finishes the run.
    let out = run.recover_only(&[rest[1]]);
    assert_exit(&out, 0);
    run.assert_all();
    assert!(run.prepared().is_empty());
}

/// A destination's server given through another database (its maintenance database) tells
/// what the run committed there, as a server lists the prepared transactions of all its
/// databases: recover said it "is not on the servers given", exit 1 on every repeat though
/// nothing was pending (commit44 F2).
#[test]
fn a_server_given_through_another_database_settles_what_its_run_committed_there() {
    let run = Run::new();
    let copy = run.copy_args();
    Paused::start(&args(&copy), "commit-prepared:1").kill();
    let prepared = run.prepared();
    let committed = (0..3)
        .find(|n| !prepared.iter().any(|g| g.ends_with(&format!(":{}", n + 1))))
        .expect("one destination committed");
    let urls = run.urls();
    let mut recover = vec!["recover".to_owned()];
    for (n, url) in urls.iter().enumerate() {
        recover.push("--to".to_owned());
        recover.push(if n == committed {
            run.dests[n].0.url("postgres")
        } else {
            url.clone()
        });
    }
    recover.extend(["--decision-log".to_owned(), run.log.arg().to_owned()]);
    // Finished, then nothing left (other tests' runs on these servers are only named).
    for expected in ["committed", ""] {
        let out = copyman().args(&recover).output().unwrap();
        let said = text(&out.stderr);
        assert_exit(&out, 0);
        assert!(
            said.contains(expected) && !said.contains("not on the servers given"),
            "{said}"
        );
    }
    run.assert_all();
    assert!(run.prepared().is_empty());
}

#[test]
fn a_destination_stopped_after_it_prepared_keeps_its_transaction_for_recover() {
    let stopped = &servers().stopped;
    let run = Run::with_second(stopped);
    let copy = run.copy_args();
    // Every destination prepared and the decision is recorded; then the second one's server
    // stops (immediate).
    let paused = Paused::start(&args(&copy), "recorded");
    stopped.stop_immediate();
    let out = paused.resume();
    stopped.start_again();

    // A's destinations committed; B's is pending and said so.
    assert_exit(&out, 4);
    let summary = json(&out);
    assert_eq!(summary["status"], "partial", "{summary}");
    assert_eq!(summary["destinations"][1]["status"], "commit pending");
    assert!(
        text(&out.stderr).contains("copyman recover"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(run.counts(), [2000, 0, 2000]);
    // The prepared transaction survived the crash and restart.
    assert_eq!(prepared_xacts(stopped).len(), 1);

    let out = run.recover();
    assert_exit(&out, 0);
    run.assert_all();
    assert!(run.prepared().is_empty());
}

/// A destination's session lost after the decision (terminated), and the new session its COMMIT
/// PREPARED is sent on refused (the database takes no connections): pending, exit 4, and the
/// refusal — what must be fixed before recover can finish it — is said, not only the lost
/// session's 57P01.
#[test]
fn a_commit_prepared_whose_new_session_is_refused_says_the_refusal() {
    let run = Run::new();
    let (b, db) = (run.dests[1].0, run.dests[1].1.clone());
    let paused = Paused::start(&args(&run.copy_args()), "recorded");
    let mut admin = b.connect("postgres");
    admin
        .batch_execute(&format!("ALTER DATABASE \"{db}\" ALLOW_CONNECTIONS false"))
        .unwrap();
    admin
        .batch_execute(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}'"
        ))
        .unwrap();
    let out = paused.resume();
    admin
        .batch_execute(&format!("ALTER DATABASE \"{db}\" ALLOW_CONNECTIONS true"))
        .unwrap();

    assert_exit(&out, 4);
    assert_eq!(json(&out)["destinations"][1]["status"], "commit pending");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("a new session to send COMMIT PREPARED")
            && stderr.contains("not currently accepting connections"),
        "{stderr}"
    );
    // In copyman's words, the server's FATAL quoted (it took the server's `FATAL:  ` form:
    // signals43 F5).
    let line = (stderr.lines())
        .find(|l| l.contains("a new session to send COMMIT PREPARED"))
        .unwrap_or_default();
    assert!(
        line.starts_with("copyman: ")
            && line.contains("was refused by the server: FATAL: ")
            && line.contains("(SQLSTATE 55000)"),
        "{stderr}"
    );
    assert_eq!(run.counts(), [2000, 0, 2000]);
    let out = run.recover();
    assert_exit(&out, 0);
    run.assert_all();
}

#[test]
fn a_destination_that_cannot_prepare_is_refused_before_any_data_moves() {
    let run = Run::new();
    let s = servers();
    // The source cluster allows no prepared transactions: as a destination it cannot be atomic.
    let plain = database(&s.source, TABLE);
    let args = [
        "table",
        "m",
        "--from",
        &s.source.url(&run.src),
        "--to",
        &run.dests[0].0.url(&run.dests[0].1),
        "--to",
        &s.source.url(&plain),
        "--atomic",
        "--decision-log",
        run.log.arg(),
    ];
    let out = run_args(&args);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("destination 2"), "{stderr}");
    assert!(stderr.contains("max_prepared_transactions"), "{stderr}");
    // The dry run says the same (it exited 0).
    let mut dry = args.to_vec();
    dry.push("--dry-run");
    dry.insert(0, "--json");
    let out = run_args(&dry);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("does not allow prepared transactions"),
        "{}",
        text(&out.stderr)
    );
    // Named in --json as the refusal's server (it was null).
    assert_eq!(json(&out)["server"], "destination 2", "{}", json(&out));
    assert_eq!(count(&s.source, &plain, "m"), 0);
    assert_eq!(run.counts(), [0, 0, 0]);
    assert!(run.prepared().is_empty());
    assert!(prepared_xacts(&s.source).is_empty());
    // Files cannot take part either.
    let out = run_args(&[
        "table",
        "m",
        "--from",
        &s.source.url(&run.src),
        "--to",
        "/tmp/copyman-atomic-file.txt",
        "--atomic",
    ]);
    assert_exit(&out, 2);
    assert!(text(&out.stderr).contains("--atomic needs server destinations"));
}

#[test]
fn recover_never_touches_another_programs_or_a_running_copy() {
    let run = Run::new();
    let (a, db) = &run.dests[0];
    // Another program's prepared transaction.
    a.connect(db)
        .batch_execute(
            "BEGIN; INSERT INTO m VALUES (-1, 'theirs'); PREPARE TRANSACTION 'app-xact-1'",
        )
        .unwrap();

    // A run paused after its first destination prepared is still in progress; started
    // through a link of another name.
    let copy = run.copy_args();
    let dir = TempPath::new("link-dir");
    fs::create_dir(&dir.0).unwrap();
    let link = dir.0.join("cm");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_copyman"), &link).unwrap();
    let paused = Paused::start_with(copyman_as(&link), &args(&copy), "prepared:1");
    let out = run.recover();
    // Something is left pending: exit 1.
    assert_exit(&out, 1);
    let report = json(&out);
    let ours = report["prepared"].as_array().unwrap();
    assert_eq!(ours.len(), 1, "{report}");
    // One word to switch on, the words said apart (and the server by its number).
    assert_eq!(ours[0]["outcome"], "left alone", "{report}");
    assert!(
        ours[0]["detail"].as_str().unwrap().contains("in progress"),
        "{report}"
    );
    assert!(
        (ours[0]["server"].as_str()).is_some_and(|s| s.starts_with("destination ")),
        "{report}"
    );
    // Without the decision log (whose lock says "in progress") it is left alone too: a
    // copyman process of the run's id is alive on this host (it rolled the live run back).
    let mut no_log = vec!["recover".to_owned()];
    for url in run.urls() {
        no_log.extend(["--to".to_owned(), url]);
    }
    no_log.extend(["--no-decision-log".to_owned(), "--json".to_owned()]);
    let out = copyman().args(&no_log).output().unwrap();
    assert_exit(&out, 1);
    let report = json(&out);
    // (Other tests' runs may have transactions in other databases of these servers.)
    let mine: Vec<&serde_json::Value> = report["prepared"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| run.dests.iter().any(|(_, db)| p["database"] == db.as_str()))
        .collect();
    assert!(
        !mine.is_empty()
            && mine.iter().all(|p| {
                p["detail"]
                    .as_str()
                    .is_some_and(|o| o.contains("may still be in progress"))
            }),
        "{report}"
    );
    // The run goes on and commits everywhere.
    let out = paused.resume();
    assert_exit(&out, 0);
    assert_eq!(run.counts(), [2000, 2000, 2000]);
    let _ = fs::remove_dir_all(&dir.0);
    // The other program's transaction is still there, untouched, and said (it said "nothing
    // pending" while it held its locks).
    assert!(prepared_xacts(a).contains(&"app-xact-1".to_owned()));
    // One whose name starts as copyman's but is not of its shape is another's too, and said
    // (atomic45 F4: left alone unsaid).
    a.connect(db)
        .batch_execute(
            "BEGIN; INSERT INTO m VALUES (-2, 'by hand'); PREPARE TRANSACTION 'copyman:manual'",
        )
        .unwrap();
    let out = run.recover();
    let said = text(&out.stderr);
    assert!(
        said.contains(
            "2 prepared transactions not copyman's, left alone (app-xact-1, copyman:manual)"
        ),
        "{said}"
    );
    // One of copyman's shape but of no run id the command makes is left alone even without
    // a decision log (commit68 F7: `copyman:1:1` of another program was rolled back).
    a.connect(db)
        .batch_execute(
            "BEGIN; INSERT INTO m VALUES (-3, 'other'); PREPARE TRANSACTION 'copyman:1:1'",
        )
        .unwrap();
    let mut no_log = vec!["recover".to_owned()];
    for url in run.urls() {
        no_log.extend(["--to".to_owned(), url]);
    }
    no_log.push("--no-decision-log".to_owned());
    let out = copyman().args(&no_log).output().unwrap();
    let said = text(&out.stderr);
    assert!(
        said.contains("copyman:1:1") && said.contains("is no id a copyman command makes"),
        "{said}"
    );
    assert!(
        prepared_xacts(a).contains(&"copyman:1:1".to_owned()),
        "{said}"
    );
    for gid in ["app-xact-1", "copyman:manual", "copyman:1:1"] {
        a.connect(db)
            .batch_execute(&format!("ROLLBACK PREPARED '{gid}'"))
            .unwrap();
    }
    assert!(run.prepared().is_empty());
}

fn run_args(args: &[&str]) -> std::process::Output {
    copyman().args(args).output().expect("run copyman")
}

#[test]
fn recover_without_the_decision_log_rolls_back_nothing_on_a_guess() {
    let run = Run::new();
    let copy = run.copy_args();
    Paused::start(&args(&copy), "commit-prepared:1").kill();
    assert_eq!(run.prepared().len(), 2);
    // The wrong log: recover refuses to guess, and nothing changes.
    let mut recover = vec!["recover".to_owned()];
    for url in run.urls() {
        recover.push("--to".to_owned());
        recover.push(url);
    }
    let wrong = TempPath::new("no-such-decisions.log");
    let out = copyman()
        .args(&recover)
        .args(["--decision-log", wrong.arg()])
        .output()
        .unwrap();
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("--decision-log"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(run.prepared().len(), 2);
    // A log that exists but is not the run's (empty, another user's, another run's): it knows
    // nothing of the run, so it decides nothing — the run's own log decided commit, and one
    // destination already committed.
    fs::write(&wrong.0, "").unwrap();
    let out = copyman()
        .args(&recover)
        .args(["--decision-log", wrong.arg(), "--json"])
        .output()
        .unwrap();
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("left alone") && stderr.contains("has no line of run"),
        "{stderr}"
    );
    assert_eq!(json(&out)["status"], "pending");
    assert_eq!(run.prepared().len(), 2);
    // With the run's own log, the decided commit is finished.
    assert_exit(&run.recover(), 0);
    run.assert_all();
    assert!(run.prepared().is_empty());
    // Nothing of copyman's prepared any more: a log that does not exist decides nothing, and
    // there is nothing to decide (it was refused, exit 2, as when something is pending).
    let _ = fs::remove_file(&wrong.0);
    let out = copyman()
        .args(&recover)
        .args(["--decision-log", wrong.arg()])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert!(
        text(&out.stderr).contains("does not exist: no run wrote it"),
        "{}",
        text(&out.stderr)
    );
}

/// `copyman recover` is never silent while a server does not answer its COMMIT PREPARED (here
/// a synchronous standby that is not there): it says what it waits for, does not cancel it, and
/// finishes once the server answers.
#[test]
fn recover_says_what_it_waits_for() {
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    let s = servers();
    // Its own server: the setting that holds its commits would hold every other test's.
    let cluster = Cluster::builder()
        .setting("max_prepared_transactions", "10")
        .setting("synchronous_commit", "on")
        .start();
    let src = database(
        &s.source,
        &format!("{TABLE}; INSERT INTO m SELECT g, 'v' || g FROM generate_series(1, 2000) g"),
    );
    let db = database(&cluster, TABLE);
    let log = TempPath::new("decisions.log");
    let (from, to) = (s.source.url(&src), cluster.url(&db));
    let copy = [
        "table",
        "m",
        "--from",
        &from,
        "--to",
        &to,
        "--atomic",
        "--decision-log",
        log.arg(),
    ];
    // Prepared, and the commit decided and recorded: then copyman dies.
    Paused::start(&copy, "recorded").kill();
    let set = |value: &str| {
        let mut admin = cluster.connect("postgres");
        admin
            .batch_execute(&format!(
                "ALTER SYSTEM SET synchronous_standby_names = '{value}'"
            ))
            .unwrap();
        admin.batch_execute("SELECT pg_reload_conf()").unwrap();
        // The reload is asynchronous: a new session sees the setting once it took effect.
        let deadline = Instant::now() + Duration::from_secs(10);
        while cluster
            .connect("postgres")
            .query_one("SHOW synchronous_standby_names", &[])
            .unwrap()
            .get::<_, String>(0)
            != value
        {
            assert!(Instant::now() < deadline, "the reload never took");
            thread::sleep(Duration::from_millis(20));
        }
    };
    set("nosuch");
    let mut child = copyman()
        .args(["recover", "--to", &to, "--decision-log", log.arg()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = StderrLines::take(&mut child);
    let waiting = stderr.wait_for("waiting 1 s for");
    // Released either way, so that the recover ends.
    set("");
    let waiting =
        waiting.unwrap_or_else(|| panic!("recover never said it waits:\n{}", stderr.seen()));
    assert!(
        waiting.contains("COMMIT PREPARED 'copyman:")
            && waiting.contains("synchronous_standby_names"),
        "{waiting}"
    );
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert_eq!(prepared_xacts(&cluster), Vec::<String>::new());
    assert_eq!(count(&cluster, &db, "m"), 2000);
}

/// A decided transaction that another session finished before its COMMIT PREPARED (a `copyman
/// recover` given another log, a DBA by hand) is not sent to `copyman recover`, which would find
/// nothing: the run says it was finished elsewhere and that what the destination holds must be
/// checked (exit 4).
#[test]
fn a_decided_transaction_finished_elsewhere_is_said_so() {
    let run = Run::new();
    let copy = run.copy_args();
    let paused = Paused::start(&args(&copy), "commit-prepared:1");
    // Destination 2's prepared transaction, rolled back by hand meanwhile.
    run.roll_back_by_hand(1);
    let out = paused.resume();
    assert_exit(&out, 4);
    let report = json(&out);
    let error = report["destinations"][1]["error"].to_string();
    assert!(error.contains("finished meanwhile"), "{error}");
    assert!(!error.contains("run copyman recover"), "{error}");
    // Nothing is left for recover: in doubt, not "commit pending", and no hint to run it.
    assert_eq!(report["destinations"][1]["status"], "in doubt", "{report}");
    assert!(
        !report["error"]
            .to_string()
            .contains("to finish the prepared transactions"),
        "{report}"
    );
    // The headline counts it too, as in doubt (commit66 F5: "1 of 2 committed" only).
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("PARTIAL: 2 of 3 destinations committed, 1 in doubt"),
        "{stderr}"
    );
    assert_eq!(run.counts()[1], 0);
    assert!(run.prepared().is_empty());
}

/// A run killed after its decision, and a destination's prepared transaction then ended by
/// someone else (a ROLLBACK PREPARED by hand; a failover to a standby that never received it):
/// recover commits the others and says that destination must be checked, exit 1 (it said
/// "nothing pending", exit 0, and that destination lacked the rows). Said once. A transaction
/// the run itself committed before it was killed is no such case (the run records each COMMIT
/// PREPARED it sends): `killed_after_the_decision_and_one_commit_then_recover_commits_the_rest`.
#[test]
fn recover_says_a_decided_transaction_someone_else_ended_must_be_checked() {
    let run = Run::new();
    let copy = run.copy_args();
    Paused::start(&args(&copy), "recorded").kill();
    let gid = run.roll_back_by_hand(1);
    let out = run.recover();
    assert_exit(&out, 1);
    let report = json(&out);
    assert_eq!(report["status"], "check", "{report}");
    let said = text(&out.stderr);
    assert!(
        said.contains(&gid)
            && said.contains("was decided commit, but it is prepared there no more"),
        "{said}"
    );
    assert_eq!(run.counts(), [2000, 0, 2000]);
    assert!(run.prepared().is_empty());
    // Said once: the next recovery has nothing to say.
    let again = run.recover();
    assert_exit(&again, 0);
}

/// Under --atomic a signal before the decision is recorded calls the commit off: every
/// PREPARE rolls back, nothing is committed or left prepared (it committed everything).
#[test]
fn a_signal_before_the_decision_calls_the_commit_off() {
    let run = Run::new();
    let copy = run.copy_args();
    let mut paused = Paused::start(&args(&copy), "prepared:3");
    let mut stderr = StderrLines::take(&mut paused.child);
    signal(&paused.child, "INT");
    // The signal noted before the run goes on.
    stderr.expect("SIGINT received");
    let out = paused.resume();
    assert_exit(&out, 130);
    assert_eq!(run.counts(), [0, 0, 0]);
    assert!(run.prepared().is_empty());
}

/// One signal ends an `--atomic` run whose destination's backend froze before it read its
/// PREPARE (a lost network path alike): the PREPARE is given up after the interrupt's grace —
/// no decision is made before every PREPARE is answered, so nothing can commit — the prepared
/// ones roll back, and the frozen one is said as perhaps prepared, for `copyman recover`,
/// which rolls it back once the backend, let go, prepared it. The run waited for ever, said
/// every 10 s, until a second signal (commit39 F4, F5). For one table and for a job (`--state`).
#[test]
fn one_signal_gives_up_a_prepare_its_frozen_backend_never_answers() {
    for job in [false, true] {
        let run = Run::new();
        let mut copy = run.copy_args();
        let state = TempPath::new("frozen-prepare.state");
        if job {
            copy.extend(["--state".to_owned(), state.arg().to_owned()]);
        }
        // The step log says when destination 2's PREPARE goes out.
        copy.push("-v".to_owned());
        let mut paused = Paused::start(&args(&copy), "prepared:1");
        let mut lines = StderrLines::take(&mut paused.child);
        // Destination 2 (on B) is next to prepare: its backend idles in its transaction.
        let (b, db) = &run.dests[1];
        let pid = idle_in_transaction(b, db).expect("destination 2 not prepared yet");
        kill("-STOP", pid);
        fs::remove_file(&paused.file.0).unwrap();
        // Sent (logged as it goes out; a second lets it reach the frozen backend's socket),
        // not merely about to be: a signal before would roll back without a PREPARE out.
        while !lines
            .expect("PREPARE TRANSACTION")
            .contains("destination 2")
        {}
        thread::sleep(std::time::Duration::from_secs(1));
        signal(&paused.child, "TERM");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while paused.child.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
            thread::sleep(std::time::Duration::from_millis(100));
        }
        let ended = paused.child.try_wait().unwrap().is_some();
        kill("-CONT", pid);
        let status = paused.child.wait().unwrap();
        let said = lines.rest();
        assert!(ended, "job {job}: one SIGTERM did not end the run\n{said}");
        assert_eq!(status.code(), Some(143), "job {job}: {said}");
        assert!(said.contains("copyman recover"), "job {job}: {said}");
        assert_eq!(run.counts(), [0, 0, 0], "job {job}: {said}");
        // Let go, the backend reads its PREPARE, prepares, and ends with its closed session.
        wait_gone(b, pid);
        let out = run.recover();
        assert_exit(&out, 0);
        assert!(
            run.prepared().is_empty(),
            "job {job}: {}",
            text(&out.stderr)
        );
        assert_eq!(run.counts(), [0, 0, 0]);
    }
}

/// A destination whose session is lost after its PREPARE (a terminated backend, a network
/// blip) with the server up is finished by the run on a new session: its COMMIT PREPARED names
/// the transaction by its global id. (It was left `commit pending`, holding its locks, exit 4,
/// for copyman recover.)
#[test]
fn a_destination_session_lost_after_its_prepare_is_finished_on_a_new_one() {
    let run = Run::new();
    let copy = run.copy_args();
    let paused = Paused::start(&args(&copy), "recorded");
    let (cluster, db) = &run.dests[1];
    assert!(
        cluster.terminate_backends(db) >= 1,
        "the run's session there"
    );
    let out = paused.resume();
    assert_exit(&out, 0);
    run.assert_all();
    assert!(run.prepared().is_empty());
}

/// A destination whose backend is killed (-9) after its PREPARE: its server goes through a crash
/// restart, refusing sessions a moment (57P03, "in recovery mode"); the COMMIT PREPARED is sent
/// on a new session once it takes one, and the run commits everywhere (commit74 F1: one retry
/// at once was refused, and the transaction was left prepared, exit 4).
#[test]
fn a_destination_through_a_crash_restart_after_its_prepare_is_finished() {
    static CRASHING: OnceLock<Cluster> = OnceLock::new();
    // No checkpoint meanwhile: its crash recovery replays the filler's WAL, a second or more
    // of "in recovery mode".
    let crashing = CRASHING.get_or_init(|| {
        Cluster::builder()
            .setting("max_prepared_transactions", "10")
            .setting("checkpoint_timeout", "1h")
            .setting("max_wal_size", "10GB")
            .start()
    });
    database(
        crashing,
        "CREATE TABLE filler AS SELECT g, repeat('x', 300) AS v FROM generate_series(1, 400000) g",
    );
    let run = Run::with_second(crashing);
    let paused = Paused::start(&args(&run.copy_args()), "recorded");
    // (Any backend of its server: one killed resets them all.)
    let pid: i32 = crashing
        .connect("postgres")
        .query(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&run.dests[1].1],
        )
        .unwrap()[0]
        .get(0);
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = paused.resume();
    assert_exit(&out, 0);
    run.assert_all();
    assert!(run.prepared().is_empty());
}

/// The same in a job: a destination whose session is lost after its PREPARE (here after the
/// first destination's COMMIT PREPARED of a table) is finished by the job on a new session.
#[test]
fn a_job_destination_session_lost_after_its_prepare_is_finished_on_a_new_one() {
    let s = servers();
    let tables = "CREATE TABLE m (id int8 PRIMARY KEY, v text); CREATE TABLE n (id int8);";
    let src = database(
        &s.source,
        &format!(
            "{tables} INSERT INTO m SELECT g, 'v' || g FROM generate_series(1, 500) g;
             INSERT INTO n SELECT generate_series(1, 300);"
        ),
    );
    let (d1, d2) = (database(&s.a, tables), database(&s.b, tables));
    let (log, state) = (
        TempPath::new("job-decisions.log"),
        TempPath::new("job.state"),
    );
    let copy = [
        "table",
        "m",
        "n",
        "--jobs",
        "1",
        "--from",
        &s.source.url(&src),
        "--to",
        &s.a.url(&d1),
        "--to",
        &s.b.url(&d2),
        "--atomic",
        "--decision-log",
        log.arg(),
        "--state",
        state.arg(),
    ];
    let mut paused = Paused::start(&copy, "commit-prepared:1");
    assert!(s.b.terminate_backends(&d2) >= 1, "the job's sessions there");
    // The next table pauses there too: let it go on.
    let started = std::time::Instant::now();
    let _ = fs::remove_file(&paused.file.0);
    while paused.child.try_wait().unwrap().is_none() {
        assert!(started.elapsed().as_secs() < 60, "the job did not end");
        let _ = fs::remove_file(&paused.file.0);
        thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = paused.child.wait_with_output().unwrap();
    assert_exit(&out, 0);
    for (c, db) in [(&s.a, &d1), (&s.b, &d2)] {
        assert_eq!(digest(c, db, "m"), digest(&s.source, &src, "m"));
        assert_eq!(digest(c, db, "n"), digest(&s.source, &src, "n"));
    }
    // (Other tests' runs may hold prepared transactions in other databases of B.)
    let left: i64 =
        s.b.connect(&d2)
            .query_one(
                "SELECT count(*) FROM pg_prepared_xacts WHERE database = current_database()",
                &[],
            )
            .unwrap()
            .get(0);
    assert_eq!(left, 0);
}

/// Under `--atomic --keep-going` a destination that allows no prepared transactions is left out
/// and said, the others committing every row (exit 4), one table and a job alike; it stopped the
/// whole run (exit 2). Nothing is left prepared.
#[test]
fn keep_going_leaves_out_a_destination_without_prepared_transactions() {
    let s = servers();
    let tables = format!("{TABLE}; CREATE TABLE u (id int);");
    let src = database(
        &s.source,
        &format!(
            "{tables} INSERT INTO m SELECT g, 'v' FROM generate_series(1, 100) g; \
             INSERT INTO u VALUES (1);"
        ),
    );
    let from = s.source.url(&src);
    for job in [false, true] {
        let two_phase = database(&s.a, &tables);
        let none = database(&s.source, &tables);
        let log = TempPath::new("left-out.log");
        let state = TempPath::new("left-out.state");
        let mut args = vec!["table", "m"];
        if job {
            args.extend(["u", "--state", state.arg()]);
        }
        let (to, none_to) = (s.a.url(&two_phase), s.source.url(&none));
        args.extend(["--from", &from, "--to", &to, "--to", &none_to]);
        args.extend(["--atomic", "--decision-log", log.arg(), "--keep-going"]);
        let out = run(&args);
        let stderr = text(&out.stderr);
        assert_exit(&out, 4);
        assert!(
            stderr.contains("does not allow prepared transactions")
                && stderr.contains("left out (--keep-going)"),
            "{stderr}"
        );
        assert_eq!(count(&s.a, &two_phase, "m"), 100, "{stderr}");
        assert_eq!(count(&s.source, &none, "m"), 0, "{stderr}");
        if job {
            assert_eq!(count(&s.a, &two_phase, "u"), 1, "{stderr}");
        }
        // (Other tests' runs may hold prepared transactions in other databases of A.)
        let left: i64 = (s.a.connect(&two_phase))
            .query_one(
                "SELECT count(*) FROM pg_prepared_xacts WHERE database = current_database()",
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(left, 0, "{stderr}");
    }
}

/// A copy's dry run says how each transaction ends as the run ends it: the source's `BEGIN`
/// and when a `--send` that writes commits, each destination's two phases and the decision
/// log, the warning a source that cannot prepare gets; its `--json` names the format and each
/// destination's columns (copy41 F10: the plan showed only `BEGIN` and the statements, the
/// format and columns null).
#[test]
fn a_copys_dry_run_says_how_each_transaction_ends() {
    let s = servers();
    let setup = "CREATE TABLE queue (id int, v text); INSERT INTO queue VALUES (1, 'a'), (2, 'b')";
    let preparing = database(&s.a, setup);
    let plain = database(&s.source, setup);
    let dst = database(&s.b, "CREATE TABLE queue (id int, v text)");
    let log = TempPath::new("dry-ends.log");
    let to = s.b.url(&dst);
    let dry = |from: &str, json: bool| {
        let mut args = vec![
            "copy",
            "--dry-run",
            "--atomic",
            "--decision-log",
            log.arg(),
            "--from",
            from,
            "--send",
            "COPY (DELETE FROM queue RETURNING *) TO STDOUT (FORMAT csv)",
            "--to",
            &to,
            "--receive",
            "COPY queue FROM STDIN (FORMAT csv)",
        ];
        if json {
            args.insert(0, "--json");
        }
        run_args(&args)
    };
    let out = dry(&s.a.url(&preparing), false);
    assert_exit(&out, 0);
    let plan = text(&out.stdout);
    for line in [
        "    BEGIN\n    COPY (DELETE FROM queue RETURNING *) TO STDOUT (FORMAT csv)\n    if the \
         --send writes: PREPARE TRANSACTION with the destinations, COMMIT PREPARED with them\n",
        "  format: csv (the --send's)\n",
        "    columns: id, v\n",
        &format!(
            "    COPY queue FROM STDIN (FORMAT csv)\n    PREPARE TRANSACTION, then COMMIT PREPARED \
             once every destination prepared (decision log {})\n",
            log.arg()
        ),
    ] {
        assert!(plan.contains(line), "{line:?} in {plan}");
    }
    assert!(!text(&out.stderr).contains("cannot prepare"));

    let out = dry(&s.source.url(&plain), true);
    assert_exit(&out, 0);
    let value = json(&out);
    assert_eq!(value["plan"]["format"], "csv", "{value}");
    assert_eq!(value["plan"]["format_reason"], "the --send's", "{value}");
    assert_eq!(value["plan"]["source"]["begin"], "BEGIN", "{value}");
    assert!(
        value["plan"]["source"]["end"]
            .as_str()
            .is_some_and(|end| end.contains("not atomically: the source cannot prepare now")),
        "{value}"
    );
    let dest = &value["plan"]["destinations"][0];
    assert_eq!(dest["columns"], serde_json::json!(["id", "v"]), "{value}");
    assert!(
        dest["end"]
            .as_str()
            .is_some_and(|end| end.starts_with("PREPARE TRANSACTION")),
        "{value}"
    );
    assert!(
        value["warnings"].to_string().contains(
            "the source cannot prepare a transaction now (max_prepared_transactions is 0"
        ),
        "{value}"
    );
    // Nothing moved, nothing prepared.
    assert_eq!(count(&s.a, &preparing, "queue"), 2);
    assert_eq!(count(&s.source, &plain, "queue"), 2);
    assert_eq!(count(&s.b, &dst, "queue"), 0);
    // (Other tests' runs prepare on these servers meanwhile: this test's databases only.)
    for (cluster, db) in [(&s.a, &preparing), (&s.b, &dst)] {
        let here: i64 = cluster
            .connect("postgres")
            .query_one(
                "SELECT count(*) FROM pg_prepared_xacts WHERE database = $1",
                &[db],
            )
            .unwrap()
            .get(0);
        assert_eq!(here, 0, "{db}");
    }
}

/// A job begun with `--atomic` is resumed with it, its decisions in its own log, said (jobs46
/// F3: a resume without the flag committed the rest with plain COMMITs, one destination after
/// the other, and said nothing), `--atomic` given again or not.
#[test]
fn a_job_begun_with_atomic_is_resumed_with_it() {
    let s = servers();
    let tables = "CREATE TABLE a (id int); CREATE TABLE b (id int);";
    let src = database(
        &s.source,
        &format!(
            "{tables} INSERT INTO a SELECT generate_series(1, 30); \
             INSERT INTO b SELECT generate_series(1, 20);"
        ),
    );
    let d1 = database(&s.a, tables);
    let log = TempPath::new("atomic-resume.log");
    let state = TempPath::new("atomic-resume.state");
    let (from, to) = (s.source.conninfo(&src), s.a.conninfo(&d1));
    let job = |extra: &[&str]| {
        let mut args = vec![
            "table", "-t", "a", "-t", "b", "--jobs", "1", "--from", &from, "--to", &to, "--state",
        ];
        args.push(state.arg());
        args.extend(extra);
        run(&args)
    };
    assert_exit(
        &job(&["--atomic", "--decision-log", log.0.to_str().unwrap()]),
        0,
    );
    // As if the run had stopped before b: its records cut there, its rows gone.
    let written = fs::read_to_string(&state.0).unwrap();
    let lines: Vec<&str> = written.lines().collect();
    let cut = (lines.iter())
        .position(|l| l.starts_with("begin") && l.contains("\"b\""))
        .expect(&written);
    fs::write(&state.0, lines[..cut].join("\n") + "\n").unwrap();
    s.a.connect(&d1).batch_execute("TRUNCATE b").unwrap();
    let decisions = |log: &TempPath| {
        (fs::read_to_string(&log.0).unwrap().lines())
            .filter(|l| l.starts_with("commit "))
            .count()
    };
    let before = decisions(&log);
    let out = job(&["--resume"]);
    assert_exit(&out, 0);
    let said = text(&out.stdout) + &text(&out.stderr);
    assert!(
        said.contains("the job began with --atomic: it is resumed with it"),
        "{said}"
    );
    assert_eq!(decisions(&log), before + 1, "b committed under a decision");
    assert_eq!(count(&s.a, &d1, "b"), 20);
    assert_eq!(count(&s.a, &d1, "a"), 30);
    // Resumed with --atomic too, its --decision-log left out: the job's log, not the default
    // one (commit48 F1: the default log was said as where to recover from, and took the
    // resume's decisions).
    fs::write(&state.0, lines[..cut].join("\n") + "\n").unwrap();
    s.a.connect(&d1).batch_execute("TRUNCATE b").unwrap();
    let before = decisions(&log);
    let out = job(&["--resume", "--atomic"]);
    assert_exit(&out, 0);
    let said = text(&out.stdout) + &text(&out.stderr);
    assert!(
        said.contains(&format!(
            "the job began with --decision-log {}: it is resumed with it",
            log.arg()
        )),
        "{said}"
    );
    assert_eq!(decisions(&log), before + 1, "b decided in the job's log");
    assert_eq!(count(&s.a, &d1, "b"), 20);
    // Its log moved: a resume given the new place with --decision-log alone takes it (it was a
    // usage error without --atomic, though the resume takes --atomic).
    let moved = TempPath::new("atomic-resume-moved.log");
    fs::rename(&log.0, &moved.0).unwrap();
    fs::write(&state.0, lines[..cut].join("\n") + "\n").unwrap();
    s.a.connect(&d1).batch_execute("TRUNCATE b").unwrap();
    let before = decisions(&moved);
    let out = job(&["--resume", "--decision-log", moved.arg()]);
    assert_exit(&out, 0);
    assert_eq!(
        decisions(&moved),
        before + 1,
        "b committed, decided in the log given"
    );
    assert!(!log.0.exists(), "no log at the old place");
    assert_eq!(count(&s.a, &d1, "b"), 20);
    // Not for a job that did not begin with --atomic, nor without --resume.
    let plain = TempPath::new("atomic-resume-plain.state");
    let d2 = database(&s.a, tables);
    let to2 = s.a.conninfo(&d2);
    let args = [
        "table",
        "-t",
        "a",
        "--from",
        &from,
        "--to",
        &to2,
        "--state",
        plain.arg(),
    ];
    assert_exit(&run(&args), 0);
    let mut resume = args.to_vec();
    resume.extend(["--resume", "--decision-log", moved.arg()]);
    let out = run(&resume);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("the job did not begin with --atomic"),
        "{}",
        text(&out.stderr)
    );
    // No state file at all (a mistyped --state): said so, not that a job began without
    // --atomic (recheck57 F3).
    let nowhere = TempPath::new("atomic-resume-none.state");
    let resume: Vec<&str> = (resume.iter())
        .map(|a| if *a == plain.arg() { nowhere.arg() } else { a })
        .collect();
    let out = run(&resume);
    let said = text(&out.stderr);
    assert!(
        said.contains("there is no state file") && !said.contains("did not begin with --atomic"),
        "{said}"
    );
    let out = run(&[
        "table",
        "a",
        "--from",
        &from,
        "--to",
        &to2,
        "--decision-log",
        moved.arg(),
    ]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("give --atomic too"),
        "{}",
        text(&out.stderr)
    );
}

/// A destination's server crashing between its PREPARE TRANSACTION and its COMMIT PREPARED
/// (recheck54c F4): crash recovery keeps the prepared transaction and empties the UNLOGGED table
/// it wrote. Committed as decided on a new session, it is said to hold none of its rows — not
/// "committed", exit 0, with the table empty — by a one-table run (also when one kind of
/// statistics was reset by hand since the crash, commit55 F1), by `copyman recover` after
/// copyman died (and its dry run, F4), and by a job, which records the table not done there: a
/// resume copies it. A logged partition's rows are said kept (F2); a copy of no rows lost none
/// (F3).
#[test]
fn a_crash_between_prepare_and_commit_prepared_is_said_to_empty_an_unlogged_table() {
    let s = servers();
    let crashing = Cluster::builder()
        .setting("max_prepared_transactions", "10")
        .start();
    let src = database(
        &s.source,
        &format!("{TABLE}; INSERT INTO m SELECT g, 'v' || g FROM generate_series(1, 2000) g"),
    );
    let unlogged = "CREATE UNLOGGED TABLE m (id int8 PRIMARY KEY, v text)";
    let from = s.source.url(&src);
    // Paused at `point`, the server crashed (then `after`), copyman let go — or killed first.
    let crash_between = |args: &[&str], point: &str, after: &str, then_kill: bool| {
        let paused = Paused::start(args, point);
        if then_kill {
            paused.kill();
            crashing.crash_a_backend();
            return None;
        }
        crashing.crash_a_backend();
        if !after.is_empty() {
            crashing.connect("postgres").batch_execute(after).unwrap();
        }
        Some(paused.resume())
    };
    let said_emptied = |said: &str| {
        said.contains("its transaction committed without any of its rows")
            && said.contains("ran crash recovery since the transaction was prepared")
            && said.contains("m lost the rows copied")
    };
    // A one-table run into destination 1 (`dest_sql` there) and 2, with `extra`.
    let one_table = |dest_sql: &str, extra: &[&str], after: &str| {
        let (d1, d2) = (database(&crashing, dest_sql), database(&s.a, TABLE));
        let log = TempPath::new("decisions.log");
        let (to1, to2) = (crashing.url(&d1), s.a.url(&d2));
        let copy = ["table", "m", "--from", &from, "--to", &to1, "--to", &to2];
        let copy = [&copy[..], &["--atomic", "--decision-log", log.arg()], extra].concat();
        let out = crash_between(&copy, "recorded", after, false).unwrap();
        assert!(prepared_xacts(&crashing).is_empty());
        (out, d1, d2)
    };

    // Destination 1 failed, destination 2 committed, exit 4; the same with the archiver's
    // statistics reset by hand since the crash (the kinds' stamps then differ), and emptied
    // first (its transaction holds the table's ACCESS EXCLUSIVE lock until it is committed).
    let reset = "SELECT pg_stat_reset_shared('archiver')";
    for (extra, after) in [(&[][..], ""), (&[], reset), (&["--truncate"], "")] {
        let (out, d1, d2) = one_table(unlogged, extra, after);
        let said = text(&out.stderr);
        assert_exit(&out, 4);
        assert!(
            said_emptied(&said) && said.contains("PARTIAL"),
            "{after}: {said}"
        );
        assert!(!said.contains("did not commit: its transaction"), "{said}");
        let counts = (count(&crashing, &d1, "m"), count(&s.a, &d2, "m"));
        assert_eq!(counts, (0, 2000));
    }

    // A role that may write the table and not read it, the archiver's statistics reset by hand
    // since the crash: its size tells it emptied (recheck56 F1: "committed", exit 0, no rows).
    let (d1, d2) = (database(&crashing, unlogged), database(&s.a, TABLE));
    let role = format!("loader_{d1}");
    let grant = format!("CREATE ROLE {role} LOGIN; GRANT INSERT ON m TO {role}");
    crashing.connect(&d1).batch_execute(&grant).unwrap();
    let log = TempPath::new("decisions.log");
    let to1 = (crashing.conninfo(&d1)).replace("user=postgres", &format!("user={role}"));
    let to2 = s.a.url(&d2);
    let copy = ["table", "m", "--from", &from, "--to", &to1, "--to", &to2];
    let copy = [&copy[..], &["--atomic", "--decision-log", log.arg()]].concat();
    let out = crash_between(&copy, "recorded", reset, false).unwrap();
    let said = text(&out.stderr);
    assert_exit(&out, 4);
    assert!(said_emptied(&said), "{said}");
    assert_eq!(count(&crashing, &d1, "m"), 0);

    // A logged partition's rows are committed, the UNLOGGED one's lost: said so, and no
    // advice to copy again to it alone (it duplicated them: recheck56 F2).
    let partitioned = "CREATE TABLE m (id int8 PRIMARY KEY, v text) PARTITION BY RANGE (id);
        CREATE TABLE m_kept PARTITION OF m FOR VALUES FROM (1) TO (1001);
        CREATE UNLOGGED TABLE m_lost PARTITION OF m FOR VALUES FROM (1001) TO (3000);";
    let (out, d1, _) = one_table(partitioned, &[], "");
    let said = text(&out.stderr);
    assert_exit(&out, 4);
    assert!(
        said.contains("its transaction committed without the rows it wrote into m_lost")
            && said.contains("those it wrote into m_kept are committed"),
        "{said}"
    );
    assert_eq!(count(&crashing, &d1, "m"), 1000);
    assert!(!said.contains("to bring them level"), "{said}");

    // A copy of no rows lost none: committed, exit 0.
    let (out, d1, d2) = one_table(unlogged, &["--where", "false"], "");
    assert_exit(&out, 0);
    let counts = (count(&crashing, &d1, "m"), count(&s.a, &d2, "m"));
    assert_eq!(counts, (0, 0));

    // copyman dead after its decision, the server crashed: recover says so, exit 1 (its dry
    // run first: it says it).
    let (d1, d2) = (database(&crashing, unlogged), database(&s.a, TABLE));
    let log = TempPath::new("decisions.log");
    let (to1, to2) = (crashing.url(&d1), s.a.url(&d2));
    let copy = ["table", "m", "--from", &from, "--to", &to1, "--to", &to2];
    let copy = [&copy[..], &["--atomic", "--decision-log", log.arg()]].concat();
    crash_between(&copy, "recorded", "", true);
    let recover = ["recover", "--to", &to1, "--to", &to2];
    let recover = [&recover[..], &["--decision-log", log.arg()]].concat();
    let out = run(&[&recover[..], &["--dry-run"]].concat());
    let said = text(&out.stderr);
    assert!(
        said.contains(
            "would be committed, but its server's statistics were reset since it was prepared"
        ),
        "{said}"
    );
    let out = run(&[&recover[..], &["--json"]].concat());
    let said = text(&out.stderr);
    assert_exit(&out, 1);
    let doc = json(&out);
    let emptied = (doc["prepared"].as_array().unwrap().iter())
        .find(|p| p["endpoint"].as_str().is_some_and(|e| e.contains(&d1)))
        .unwrap_or_else(|| panic!("{doc}\n{said}"));
    assert_eq!(emptied["outcome"], "failed", "{doc}");
    assert!(said_emptied(emptied["detail"].as_str().unwrap()), "{doc}");
    assert_eq!(doc["sqlstate"], "57P02", "{doc}");
    let counts = (count(&crashing, &d1, "m"), count(&s.a, &d2, "m"));
    assert_eq!(counts, (0, 2000));
    assert!(prepared_xacts(&crashing).is_empty());
    assert!(prepared_xacts(&s.a).iter().all(|g| !log_names(&log, g)));

    // A job (every table of the source's database: m): stopped, exit 4; its resume copies m
    // again where it was emptied.
    let (d1, d2) = (database(&crashing, unlogged), database(&s.a, TABLE));
    let (log, state) = (TempPath::new("decisions.log"), TempPath::new("job.state"));
    let (to1, to2) = (crashing.url(&d1), s.a.url(&d2));
    let job = [
        "table", "--from", &from, "--to", &to1, "--to", &to2, "--atomic",
    ];
    let job = [
        &job[..],
        &["--decision-log", log.arg(), "--state", state.arg()],
    ]
    .concat();
    let out = crash_between(&job, "prepared:2", "", false).unwrap();
    let said = text(&out.stderr);
    assert_exit(&out, 4);
    assert!(said_emptied(&said), "{said}");
    assert_eq!(count(&crashing, &d1, "m"), 0);
    let out = run(&[&job[..], &["--resume"]].concat());
    assert_exit(&out, 0);
    let counts = (count(&crashing, &d1, "m"), count(&s.a, &d2, "m"));
    assert_eq!(counts, (2000, 2000));
    assert!(prepared_xacts(&crashing).is_empty());
}

/// Whether the decision log `log` names global id `gid`.
fn log_names(log: &TempPath, gid: &str) -> bool {
    fs::read_to_string(&log.0).is_ok_and(|text| text.contains(gid))
}
