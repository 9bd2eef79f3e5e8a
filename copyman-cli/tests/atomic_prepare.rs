//! `--atomic` when a `PREPARE TRANSACTION` fails (on the source of a moving `--send`, or on a
//! destination): nothing committed, nothing left prepared, and no `ROLLBACK` sent where the
//! failed PREPARE already ended the transaction (the server would answer `WARNING:  there is no
//! transaction in progress`, SQLSTATE 25P01, and copyman would print it). Real clusters, shared
//! by the binary.

mod common;

use common::*;
use copyman_testkit::Cluster;

const MV: &str = "CREATE TABLE mv (id int PRIMARY KEY, v text);";

/// `copyman recover` of both destinations' databases `dbs` with the run's decision `log`: exit 0,
/// every one holding `mv`'s 100 rows, nothing left prepared.
#[track_caller]
fn recovered_all_committed(dbs: &[String; 2], log: &TempPath) {
    recovered_all(dbs, log, 100);
}

/// `copyman recover` of both destinations' databases `dbs` with the run's decision `log`: exit 0,
/// every one holding `rows` rows of `mv`, nothing left prepared.
#[track_caller]
fn recovered_all(dbs: &[String; 2], log: &TempPath, rows: i64) {
    let s = two_phase_clusters();
    let (to1, to2) = (s.dest[0].url(&dbs[0]), s.dest[1].url(&dbs[1]));
    let out = run(&[
        "recover",
        "--to",
        &to1,
        "--to",
        &to2,
        "--decision-log",
        log.arg(),
    ]);
    assert_exit(&out, 0);
    each_holds(dbs, rows);
}

/// Each destination holds `rows` of `mv` and nothing of copyman's prepared.
#[track_caller]
fn each_holds(dbs: &[String; 2], rows: i64) {
    let s = two_phase_clusters();
    for (cluster, db) in s.dest.iter().zip(dbs) {
        assert_eq!(count(cluster, db, "mv"), rows, "{db}");
        assert_eq!(prepared_in(cluster, db), Vec::<String>::new(), "{db}");
    }
}

/// What a failed PREPARE must not be followed by: our own ROLLBACK's warning.
#[track_caller]
fn assert_no_stray_rollback(stderr: &str) {
    assert!(
        !stderr.contains("there is no transaction in progress") && !stderr.contains("WARNING"),
        "a ROLLBACK was sent where no transaction was open: {stderr}"
    );
}

#[test]
fn atomic_a_source_whose_prepare_fails_gets_no_rollback_after_it() {
    let s = two_phase_clusters();
    // The moving source's DELETE breaks a deferred foreign key: its PREPARE TRANSACTION fails
    // (23503), which rolls its transaction back.
    let src = database(
        &s.source,
        &format!(
            "{MV} INSERT INTO mv SELECT g, 'v' || g FROM generate_series(1, 1000) AS g;
             CREATE TABLE ch (id int REFERENCES mv DEFERRABLE INITIALLY DEFERRED);
             INSERT INTO ch VALUES (5);"
        ),
    );
    let dbs = [database(&s.dest[0], MV), database(&s.dest[1], MV)];
    let log = TempPath::new("decisions.log");
    let out = run(&[
        "copy",
        "--from",
        &s.source.url(&src),
        "--send",
        "COPY (DELETE FROM mv RETURNING *) TO STDOUT",
        "--to",
        &s.dest[0].url(&dbs[0]),
        "--to",
        &s.dest[1].url(&dbs[1]),
        "--receive",
        "COPY mv FROM STDIN",
        "--atomic",
        "--decision-log",
        log.arg(),
    ]);
    let stderr = text(&out.stderr);
    assert_exit(&out, 1);
    assert!(
        stderr.contains("23503") && stderr.contains("nothing committed"),
        "{stderr}"
    );
    assert_no_stray_rollback(&stderr);
    each_holds(&dbs, 0);
    assert_eq!(prepared_in(&s.source, &src), Vec::<String>::new());
    assert_eq!(
        count(&s.source, &src, "mv"),
        1000,
        "the source keeps its rows"
    );
    let decisions = std::fs::read_to_string(&log.0).unwrap_or_default();
    // The run's start (`begin RUN` and its parties), its own rollback (`abort RUN` before its
    // ROLLBACK PREPAREDs) and its end (`done RUN`: nothing left prepared); no `commit` line.
    assert!(
        !decisions.lines().any(|l| l.starts_with("commit ")),
        "no decision: {decisions}"
    );
    assert!(
        decisions.starts_with("begin ")
            && decisions
                .lines()
                .last()
                .is_some_and(|l| l.starts_with("done ")),
        "{decisions}"
    );
}

#[test]
fn atomic_a_destination_whose_prepare_fails_gets_no_rollback_after_it() {
    let s = two_phase_clusters();
    let src = database(
        &s.source,
        &format!("{MV} INSERT INTO mv SELECT g, 'v' || g FROM generate_series(1, 500) g;"),
    );
    // Destination 2 cannot prepare: PostgreSQL refuses to PREPARE a transaction that executed
    // NOTIFY (0A000), and rolls it back.
    let dbs = [
        database(&s.dest[0], MV),
        database(
            &s.dest[1],
            &format!(
                "{MV} CREATE FUNCTION tell() RETURNS trigger LANGUAGE plpgsql AS
                   $$ BEGIN PERFORM pg_notify('copied', 'mv'); RETURN NULL; END $$;
                 CREATE TRIGGER tell AFTER INSERT ON mv FOR EACH STATEMENT
                   EXECUTE FUNCTION tell();"
            ),
        ),
    ];
    let log = TempPath::new("decisions.log");
    let out = run(&[
        "--json",
        "table",
        "mv",
        "--from",
        &s.source.url(&src),
        "--to",
        &s.dest[0].url(&dbs[0]),
        "--to",
        &s.dest[1].url(&dbs[1]),
        "--atomic",
        "--decision-log",
        log.arg(),
    ]);
    let stderr = text(&out.stderr);
    assert_exit(&out, 1);
    assert!(
        stderr.contains("0A000") && stderr.contains("nothing committed"),
        "{stderr}"
    );
    assert_no_stray_rollback(&stderr);
    let report = json(&out);
    assert_eq!(report["notices"], serde_json::json!([]), "{report}");
    each_holds(&dbs, 0);
    let decisions = std::fs::read_to_string(&log.0).unwrap_or_default();
    // The run's start (`begin RUN` and its parties), its own rollback (`abort RUN` before its
    // ROLLBACK PREPAREDs) and its end (`done RUN`: nothing left prepared); no `commit` line.
    assert!(
        !decisions.lines().any(|l| l.starts_with("commit ")),
        "no decision: {decisions}"
    );
    assert!(
        decisions.starts_with("begin ")
            && decisions
                .lines()
                .last()
                .is_some_and(|l| l.starts_with("done ")),
        "{decisions}"
    );
}

/// A hundred rows of `mv` on the source, `mv` empty in a new database on each destination, and
/// `copyman [pre] table mv --atomic --decision-log LOG` between them, paused at `point`: the
/// destinations' databases and the paused run.
fn paused_atomic_copy(log: &TempPath, pre: &[&str], point: &str) -> ([String; 2], Paused) {
    paused_atomic_copy_with(copyman(), log, pre, point)
}

/// [`paused_atomic_copy`] with `command` (its environment).
fn paused_atomic_copy_with(
    command: std::process::Command,
    log: &TempPath,
    pre: &[&str],
    point: &str,
) -> ([String; 2], Paused) {
    let s = two_phase_clusters();
    let src = database(
        &s.source,
        &format!("{MV} INSERT INTO mv SELECT g, 'v' || g FROM generate_series(1, 100) g;"),
    );
    let dbs = [database(&s.dest[0], MV), database(&s.dest[1], MV)];
    let (from, to1, to2) = (
        s.source.url(&src),
        s.dest[0].url(&dbs[0]),
        s.dest[1].url(&dbs[1]),
    );
    let mut args = pre.to_vec();
    args.extend(["table", "mv", "--from", &from, "--to", &to1, "--to", &to2]);
    args.extend(["--atomic", "--decision-log", log.arg()]);
    let paused = Paused::start_with(command, &args, point);
    (dbs, paused)
}

/// A file that is no decision log (a CSV, the run's own `--from`) given as one is refused by a
/// run and by recover, and left as it was: a run cut its last row and appended its records,
/// exit 0 (files67 F18).
#[test]
fn atomic_a_file_that_is_no_decision_log_is_refused() {
    let s = two_phase_clusters();
    let src = database(&s.source, MV);
    let dbs = [database(&s.dest[0], MV), database(&s.dest[1], MV)];
    let csv = TempPath::new("rows.csv");
    std::fs::write(&csv.0, "1,a\n2,b").unwrap();
    let (to1, to2) = (s.dest[0].url(&dbs[0]), s.dest[1].url(&dbs[1]));
    let copy = run(&[
        "copy",
        "--from",
        csv.arg(),
        "--to",
        &to1,
        "--to",
        &to2,
        "--receive",
        "COPY mv FROM STDIN (FORMAT csv)",
        "--atomic",
        "--decision-log",
        csv.arg(),
    ]);
    let recover = run(&[
        "recover",
        "--to",
        &to1,
        "--to",
        &to2,
        "--decision-log",
        csv.arg(),
    ]);
    for out in [copy, recover] {
        assert_exit(&out, 2);
        assert!(
            text(&out.stderr).contains("is not a copyman decision log"),
            "{}",
            text(&out.stderr)
        );
    }
    assert_eq!(std::fs::read_to_string(&csv.0).unwrap(), "1,a\n2,b");
    each_holds(&dbs, 0);
    let _ = src;
    // The same file in the default decision log's place is refused alike (recheck67 F12: cut
    // to its last line end and appended to, exit 0); a file where its directory goes is said.
    let state = TempPath::new("state");
    std::fs::create_dir_all(state.0.join("copyman")).unwrap();
    std::fs::copy(&csv.0, state.0.join("copyman/decisions.log")).unwrap();
    let defaulted = |args: &[&str]| {
        copyman()
            .env("XDG_STATE_HOME", &state.0)
            .args(args)
            .output()
            .unwrap()
    };
    let copy = [
        "copy",
        "--from",
        csv.arg(),
        "--to",
        &to1,
        "--receive",
        "COPY mv FROM STDIN (FORMAT csv)",
        "--atomic",
    ];
    for out in [defaulted(&copy), defaulted(&["recover", "--to", &to1])] {
        assert_exit(&out, 2);
        assert!(
            text(&out.stderr)
                .contains("(the default, --decision-log not given) is not a copyman decision log"),
            "{}",
            text(&out.stderr)
        );
    }
    let log = std::fs::read_to_string(state.0.join("copyman/decisions.log")).unwrap();
    assert_eq!(log, "1,a\n2,b");
    std::fs::remove_dir_all(state.0.join("copyman")).unwrap();
    std::fs::write(state.0.join("copyman"), "").unwrap();
    let out = defaulted(&copy);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("copyman is not a directory: the default decision log"),
        "{}",
        text(&out.stderr)
    );
    each_holds(&dbs, 0);
    // The run's own --from, empty (which a log may be): refused by what it is (recheck67 F2:
    // taken for a new log, the next run read its records as rows).
    let empty = TempPath::new("empty.csv");
    std::fs::write(&empty.0, "").unwrap();
    let out = run(&[
        "copy",
        "--from",
        empty.arg(),
        "--to",
        &to1,
        "--receive",
        "COPY mv FROM STDIN (FORMAT csv)",
        "--atomic",
        "--decision-log",
        empty.arg(),
    ]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("is the file the run reads its data from"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&empty.0).unwrap(), "");
}

/// An `--atomic` job of `mv` and `mw` (a row each) to both destinations, a table at a time,
/// with its decision log and state file named after `name` (the log made, empty): the
/// destinations' databases, the log, the state file, and the job's arguments.
struct TwoTables {
    dbs: [String; 2],
    log: TempPath,
    _state: TempPath,
    args: Vec<String>,
}

impl TwoTables {
    fn new(name: &str) -> Self {
        let s = two_phase_clusters();
        let tables = format!("{MV} CREATE TABLE mw (id int);");
        let src = database(
            &s.source,
            &format!("{tables} INSERT INTO mv VALUES (1, 'a'); INSERT INTO mw VALUES (2);"),
        );
        let dbs = [database(&s.dest[0], &tables), database(&s.dest[1], &tables)];
        let log = TempPath::new(&format!("{name}.log"));
        std::fs::write(&log.0, "").unwrap();
        let state = TempPath::new(&format!("{name}.state"));
        let args = [
            "table",
            "mv",
            "mw",
            "--jobs",
            "1",
            "--atomic",
            "--decision-log",
            log.arg(),
            "--state",
            state.arg(),
            "--from",
            &s.source.url(&src),
            "--to",
            &s.dest[0].url(&dbs[0]),
            "--to",
            &s.dest[1].url(&dbs[1]),
        ]
        .map(str::to_owned)
        .to_vec();
        Self {
            dbs,
            log,
            _state: state,
            args,
        }
    }

    /// Its arguments, after `pre`.
    fn args<'a>(&'a self, pre: &[&'a str]) -> Vec<&'a str> {
        let mut args = pre.to_vec();
        args.extend(self.args.iter().map(String::as_str));
        args
    }
}

/// A signal once the data is copied, before any PREPARE (the deferred constraints checked on
/// destination 1): the commit is called off, and nothing more is checked or prepared — every
/// open transaction rolls back (it went on to PREPARE every destination, then rolled them back:
/// a second signal in between left them prepared, holding their locks).
#[test]
fn atomic_a_signal_before_the_prepares_prepares_nothing() {
    let log = TempPath::new("decisions.log");
    let (dbs, mut paused) = paused_atomic_copy(&log, &["-v"], "checked:1");
    let mut stderr = StderrLines::take(&mut paused.child);
    signal(&paused.child, "HUP");
    let _ = stderr.wait_for("SIGHUP received");
    let out = paused.resume();
    let said = stderr.rest();
    assert_eq!(out.status.code(), Some(129), "{said}");
    assert!(!said.contains("PREPARE TRANSACTION"), "{said}");
    each_holds(&dbs, 0);
}

/// The decision log moved away after every destination prepared, before the decision: the run
/// takes no decision in a new file at its path (its start is in the moved one), says why, and
/// rolls everything back (it wrote `commit` into a new log and committed, unnoticed).
#[test]
fn atomic_a_decision_log_moved_during_the_run_decides_nothing() {
    let log = TempPath::new("moved-decisions.log");
    let away = TempPath::new("moved-decisions.log.old");
    let (dbs, paused) = paused_atomic_copy(&log, &[], "prepared:2");
    std::fs::rename(&log.0, &away.0).unwrap();
    let out = paused.resume();
    let stderr = text(&out.stderr);
    assert_exit(&out, 1);
    assert!(
        stderr.contains("cannot record the commit decision")
            && stderr.contains("no longer the file it was when the run began")
            && stderr.contains("nothing committed"),
        "{stderr}"
    );
    assert!(!log.0.exists(), "a new log was made at its path");
    each_holds(&dbs, 0);
}

/// An `--atomic` job fits `--jobs` to the prepared transactions its destinations have free: a
/// job of more workers failed table after table at its PREPARE (53200), every row copied and
/// thrown away, and a split table every time (its ranges prepare together). Capped with a
/// warning; a split table that cannot prepare its two ranges refused before copying.
#[test]
fn an_atomic_job_fits_its_workers_to_the_free_prepared_transactions() {
    let s = two_phase_clusters();
    let tables = "CREATE TABLE a (id int); CREATE TABLE b (id int); CREATE TABLE c (id int);";
    let src = database(
        &s.source,
        &format!(
            "{tables} INSERT INTO a SELECT generate_series(1, 5000);
             INSERT INTO b SELECT generate_series(1, 5000);
             INSERT INTO c SELECT generate_series(1, 5000);"
        ),
    );
    // Two prepared transactions at most there, one of them held by someone else.
    let narrow = Cluster::builder()
        .setting("max_prepared_transactions", "2")
        .start();
    let dst = database(&narrow, tables);
    let mut holder = narrow.connect(&dst);
    holder
        .batch_execute("BEGIN; INSERT INTO a VALUES (0); PREPARE TRANSACTION 'someone_else'")
        .unwrap();
    let log = TempPath::new("fit.decisions.log");
    let state = TempPath::new("fit.state");
    let (from, to) = (s.source.url(&src), narrow.url(&dst));
    let job = |more: &[&str]| {
        let mut args = vec!["table", "a", "b", "c", "--from", &from, "--to", &to];
        args.extend(["--atomic", "--decision-log", log.arg(), "--jobs", "3"]);
        args.extend(["--state", state.arg()]);
        args.extend(more);
        run(&args)
    };
    let out = job(&["--split-larger-than", "8kB"]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("has 1 prepared transaction free of its 2")
            && stderr.contains("a split table prepares 2 ranges at the least"),
        "{stderr}"
    );
    assert_eq!(count(&narrow, &dst, "a"), 0);
    let out = job(&[]);
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("copying 1 table at a time (--jobs 1)"),
        "{stderr}"
    );
    for table in ["a", "b", "c"] {
        assert_eq!(count(&narrow, &dst, table), 5000);
    }
    assert_eq!(prepared_xacts(&narrow), ["someone_else"]);
    holder
        .batch_execute("ROLLBACK PREPARED 'someone_else'")
        .unwrap();
}

/// A signal exiting at once once the commit decision is recorded (SIGQUIT), before the COMMIT
/// PREPAREDs: it says the commit was decided and the prepared transactions commit, exit 4 —
/// it said "before any COMMIT was sent … (it commits them if the decision was recorded)" of a
/// decision it had recorded itself (resume38 F11) — and recover commits them everywhere.
#[test]
fn atomic_exiting_at_once_after_the_decision_says_it_commits() {
    let log = TempPath::new("decided.log");
    let (dbs, mut paused) = paused_atomic_copy(&log, &[], "recorded");
    let stderr = StderrLines::take(&mut paused.child);
    signal(&paused.child, "QUIT");
    let out = paused.resume();
    let said = stderr.rest();
    assert_eq!(out.status.code(), Some(4), "{said}");
    assert!(
        said.contains("exiting at once once the commit was decided")
            && said.contains("the prepared transactions commit")
            && !said.contains("before any COMMIT was sent"),
        "{said}"
    );
    recovered_all_committed(&dbs, &log);
}

/// A signal exiting at once while the commit decision is being written (its log's lock taken
/// by another process, its fsync slow): not "the commit decision is recorded, so the prepared
/// transactions commit", exit 4 — recover then rolled everything back (signals65 F5). Nothing
/// is committed and whether the decision reached the log is not known: said so, with the
/// signal's exit, every destination in doubt with its prepared transaction named (recheck65 F2:
/// none was); recover finishes as the log says (here: not reached, rolled back).
#[test]
fn atomic_exiting_at_once_while_recording_the_decision_says_it_is_not_known() {
    let log = TempPath::new("recording.log");
    let (dbs, mut paused) = paused_atomic_copy(&log, &["--json"], "recording");
    let stderr = StderrLines::take(&mut paused.child);
    signal(&paused.child, "QUIT");
    // Not let go on: it would write the decision while the signal's exit is on its way.
    let out = paused.child.wait_with_output().unwrap();
    let said = stderr.rest();
    assert_eq!(out.status.code(), Some(131), "{said}");
    assert!(
        said.contains("exiting at once while the commit decision was being recorded")
            && said.contains("whether the decision reached the log is not known")
            && !said.contains("the commit decision is recorded"),
        "{said}"
    );
    let document = json(&out);
    assert_eq!(
        document["destinations"][0]["status"], "in doubt",
        "{document}"
    );
    for (i, destination) in document["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let gid = destination["gid"].as_str().unwrap_or_default();
        assert!(
            gid.starts_with("copyman:") && gid.ends_with(&format!(":{}", i + 1)),
            "{document}"
        );
        assert!(
            said.contains(&format!("destination {} (", i + 1))
                && said.contains(&format!("as {gid}")),
            "{said}"
        );
    }
    // The decision never reached the log: rolled back everywhere.
    recovered_all(&dbs, &log, 0);
}

/// A job's exit at once while a table's commit decision is being written names each
/// destination's prepared transaction of that table and says whether the decision reached the
/// log is not known, on stderr and in `--json` (recheck66 F8: no transaction named, "if the run
/// recorded its commit decision"); recover then finishes as the log says (not reached: rolled
/// back).
#[test]
fn atomic_a_jobs_exit_at_once_while_recording_names_the_prepared_transactions() {
    let job = TwoTables::new("job-recording");
    let (dbs, log) = (&job.dbs, &job.log);
    let args = job.args(&["--json"]);
    let mut paused = Paused::start(&args, "recording");
    let stderr = StderrLines::take(&mut paused.child);
    signal(&paused.child, "QUIT");
    let out = paused.child.wait_with_output().unwrap();
    let said = stderr.rest();
    assert_eq!(out.status.code(), Some(131), "{said}");
    let document = json(&out);
    let recorded: Vec<&serde_json::Value> = (document["tables"].as_array().unwrap().iter())
        .filter(|t| t["gid"].is_string())
        .collect();
    assert_eq!(recorded.len(), 2, "{document}");
    for (i, t) in recorded.iter().enumerate() {
        let gid = t["gid"].as_str().unwrap();
        assert!(
            gid.starts_with("copyman:") && gid.ends_with(&format!(":{}", i + 1)),
            "{document}"
        );
        assert!(
            said.contains(&format!("destination {} (", i + 1))
                && said.contains(&format!("as {gid}: its commit decision was being written")),
            "{said}"
        );
    }
    assert!(
        said.contains("whether it reached the log is not known"),
        "{said}"
    );
    recovered_all(dbs, log, 0);
}

/// The commit decision's write waiting for the decision log's lock, which another process holds
/// (a run or recover sharing the log, a script's `flock`): said every few seconds, naming that
/// process, while the prepared transactions hold their locks — it said nothing (signals65 F6);
/// once the lock is free the run commits.
#[test]
fn atomic_a_decision_waiting_for_the_logs_lock_says_who_holds_it() {
    // (The log bound: dropped, its file would go.)
    let HeldDecision {
        dbs,
        log: _log,
        held,
        mut stderr,
        run,
        ..
    } = HeldDecision::new("held");
    let said = stderr.wait_for("the commit decision is not recorded yet");
    held.unlock().unwrap();
    let said = said.expect("the wait for the log's lock said");
    assert!(
        said.contains(&format!("process {} holds it", std::process::id()))
            && said.contains("the prepared transactions hold their locks"),
        "{said}"
    );
    let out = run.join().unwrap();
    assert_exit(&out, 0);
    each_holds(&dbs, 100);
}

/// An `--atomic` copy (its log named after `name`) paused with every PREPARE answered, then let
/// go while this process holds the decision log's lock, as another run's or a script's `flock`
/// would (its waits said after a second).
struct HeldDecision {
    /// The destinations' databases.
    dbs: [String; 2],
    log: TempPath,
    /// The log, locked.
    held: std::fs::File,
    /// The run's stderr, its process, and the thread that waits for its end.
    stderr: StderrLines,
    pid: u32,
    run: std::thread::JoinHandle<std::process::Output>,
}

impl HeldDecision {
    fn new(name: &str) -> Self {
        let log = TempPath::new(&format!("{name}.log"));
        let mut command = copyman();
        command.env("COPYMAN_TEST_SAY_AFTER", "1");
        let (dbs, mut paused) = paused_atomic_copy_with(command, &log, &[], "prepared:2");
        let stderr = StderrLines::take(&mut paused.child);
        let held = std::fs::File::open(&log.0).unwrap();
        held.lock().unwrap();
        let pid = paused.child.id();
        let run = paused.resume_in_background();
        Self {
            dbs,
            log,
            held,
            stderr,
            pid,
            run,
        }
    }
}

/// Sends `name` to process `pid` (a child another thread waits for).
fn kill(pid: u32, name: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

/// Waits up to 15 s for `run` to end while this process holds the decision log's lock (`held`),
/// then lets the lock go: whether it ended without the lock, and its output.
fn ended_without_the_lock(
    run: std::thread::JoinHandle<std::process::Output>,
    held: &std::fs::File,
) -> (bool, std::process::Output) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !run.is_finished() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let ended = run.is_finished();
    held.unlock().unwrap();
    (ended, run.join().unwrap())
}

/// A signal while the commit decision waits for the decision log's lock, which another process
/// holds, calls the commit off: nothing is decided yet, so every PREPARE rolls back and the run
/// ends at once, exit 130 — it waited for the holder to let go, then committed (signals67 F5).
/// A signal while the run's start waits so ends the run too: nothing was copied.
#[test]
fn atomic_a_signal_while_waiting_for_the_logs_lock_calls_the_run_off() {
    let HeldDecision {
        dbs,
        log,
        held,
        mut stderr,
        pid,
        run,
    } = HeldDecision::new("held-signal");
    stderr.expect("the commit decision is not recorded yet");
    kill(pid, "INT");
    let (ended, out) = ended_without_the_lock(run, &held);
    let said = stderr.rest();
    assert!(ended, "it waited for the lock after the signal: {said}");
    assert_eq!(out.status.code(), Some(130), "{said}");
    assert!(
        said.contains("nothing is committed yet: the commit is called off")
            && said.contains("interrupted by SIGINT after")
            && said.contains(": nothing committed"),
        "{said}"
    );
    let written = std::fs::read_to_string(&log.0).unwrap();
    assert!(
        !written.lines().any(|l| l.starts_with("commit ")),
        "{written}"
    );
    each_holds(&dbs, 0);
    // The run's start.
    held.lock().unwrap();
    let s = two_phase_clusters();
    let src = database(&s.source, &format!("{MV} INSERT INTO mv VALUES (1, 'v');"));
    let (from, to1, to2) = (
        s.source.url(&src),
        s.dest[0].url(&dbs[0]),
        s.dest[1].url(&dbs[1]),
    );
    let mut child = copyman()
        .env("COPYMAN_TEST_SAY_AFTER", "1")
        .args(["table", "mv", "--from", &from, "--to", &to1, "--to", &to2])
        .args(["--atomic", "--decision-log", log.arg()])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = StderrLines::take(&mut child);
    stderr.expect("lock on the decision log");
    let pid = child.id();
    let run = std::thread::spawn(move || child.wait_with_output().unwrap());
    kill(pid, "INT");
    let (ended, out) = ended_without_the_lock(run, &held);
    let said = stderr.rest();
    assert!(ended, "it waited for the lock after the signal: {said}");
    assert_eq!(out.status.code(), Some(130), "{said}");
    assert!(
        said.contains("while waiting for the lock on the decision log")
            && said.contains("to record the run's start: nothing was copied"),
        "{said}"
    );
    each_holds(&dbs, 0);
}

/// An `--atomic` copy killed at `point`, its decision log (named after `name`) locked by this
/// process, as a backup script's `flock` holds it: the destinations' databases, the log and the
/// file its lock is on.
struct HeldLog {
    dbs: [String; 2],
    log: TempPath,
    file: std::fs::File,
}

impl HeldLog {
    fn new(name: &str, point: &str) -> Self {
        let log = TempPath::new(&format!("{name}.log"));
        let (dbs, paused) = paused_atomic_copy(&log, &[], point);
        paused.kill();
        let file = std::fs::File::open(&log.0).unwrap();
        file.lock().unwrap();
        Self { dbs, log, file }
    }

    /// A `copyman recover` of both destinations with the log, its stderr piped.
    fn recover(&self) -> std::process::Child {
        let s = two_phase_clusters();
        copyman()
            .args(["recover", "--to", &s.dest[0].url(&self.dbs[0])])
            .args(["--to", &s.dest[1].url(&self.dbs[1])])
            .args(["--decision-log", self.log.arg()])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }
}

/// A recovery waiting for its decision log's lock, which another process holds (a backup
/// script's `flock`): said after a second, naming that process (it waited without a word for
/// as long as the lock was held: recheck66 F5); once the lock is free it finishes the run. A
/// second recovery meanwhile finds the run's lock held by the first, not by the run: not "its
/// run is still in progress", exit 1 (recheck66 F6).
#[test]
fn atomic_a_recovery_waiting_for_the_logs_lock_says_who_holds_it() {
    let held = HeldLog::new("recover-held", "prepared:2");
    let mut child = held.recover();
    let mut stderr = StderrLines::take(&mut child);
    let said = stderr.wait_for("for the lock on the decision log");
    let second = held.recover();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    held.file.unlock().unwrap();
    let said = said.unwrap_or_else(|| panic!("the wait unsaid: {}", stderr.seen()));
    assert!(
        said.contains(&format!("process {} holds it", std::process::id())),
        "{said}"
    );
    let first = (child.wait().unwrap().code(), stderr.rest());
    let second = second.wait_with_output().unwrap();
    let second = (second.status.code(), text(&second.stderr));
    // Each finishes, or finds the other's ROLLBACK PREPARED of a transaction running right
    // then (busy, 55000: "run copyman recover again"); neither takes the other for the run.
    for (code, said) in [first, second] {
        let busy = said.contains("in use by another session right now");
        assert!(code == Some(0) || (code == Some(1) && busy), "{said}");
        assert!(!said.contains("still in progress"), "{said}");
    }
    each_holds(&held.dbs, 0);
}

/// A recovery of a run decided commit, signalled while it waits for the decision log's lock to
/// record a COMMIT PREPARED it is about to send: it sends none after the signal, and says so —
/// it sent one once the lock came, leaving the run committed on one destination and prepared on
/// the other (signals67 F12). Recovered again, both commit.
#[test]
fn atomic_a_recovery_signalled_while_waiting_for_the_logs_lock_sends_nothing_more() {
    let held = HeldLog::new("recover-signalled", "recorded");
    let mut child = held.recover();
    let mut stderr = StderrLines::take(&mut child);
    let said = stderr.wait_for("for the lock on the decision log");
    assert!(said.is_some(), "the wait unsaid: {}", stderr.seen());
    signal(&child, "TERM");
    let _ = stderr.wait_for("SIGTERM received");
    // It ends with the lock still held (recheck67 F7: it waited for the holder).
    let run = std::thread::spawn(move || child.wait_with_output().unwrap());
    let (ended, out) = ended_without_the_lock(run, &held.file);
    let code = out.status.code();
    let said = stderr.rest();
    assert!(ended, "it waited for the lock after the signal: {said}");
    assert_ne!(code, Some(0), "{said}");
    assert!(
        said.contains("interrupted by SIGTERM while the decision log's lock was waited for"),
        "{said}"
    );
    for (cluster, db) in two_phase_clusters().dest.iter().zip(&held.dbs) {
        assert_eq!(count(cluster, db, "mv"), 0, "{db}: {said}");
        assert_eq!(prepared_in(cluster, db).len(), 1, "{db}: {said}");
    }
    recovered_all_committed(&held.dbs, &held.log);
}

/// A first signal while a job's table waits for the decision log's lock to record its commit
/// decision says that table commits (its decision being recorded), not that the tables being
/// copied roll back (signals67 F9: it then committed); once the lock is free it commits, and
/// the job stops.
#[test]
fn atomic_a_jobs_first_signal_while_recording_says_the_table_commits() {
    let s = two_phase_clusters();
    let job = TwoTables::new("job-signal-held");
    let (dbs, log) = (&job.dbs, &job.log);
    let args = job.args(&[]);
    // Every PREPARE answered; then the log's lock is held by another process.
    let mut paused = Paused::start(&args, "prepared:2");
    let mut stderr = StderrLines::take(&mut paused.child);
    let pid = paused.child.id().to_string();
    let held = std::fs::File::open(&log.0).unwrap();
    held.lock().unwrap();
    let run = paused.resume_in_background();
    let waiting = stderr.wait_for("for the lock on the decision log");
    assert!(waiting.is_some(), "the wait unsaid: {}", stderr.seen());
    let sent = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    let said = stderr.wait_for("SIGINT received");
    held.unlock().unwrap();
    let said = said.unwrap_or_else(|| panic!("{}", stderr.seen()));
    assert!(
        said.contains("\"public\".\"mv\" (its commit decision being recorded)")
            && said.contains("began and finish")
            && !said.contains("stopping the job: the tables being copied are rolled back"),
        "{said}"
    );
    let out = run.join().unwrap();
    let rest = stderr.rest();
    assert_ne!(out.status.code(), Some(0), "{rest}");
    for (cluster, db) in s.dest.iter().zip(dbs.iter()) {
        assert_eq!(count(cluster, db, "mv"), 1, "{db}: {rest}");
        assert_eq!(prepared_in(cluster, db), Vec::<String>::new(), "{db}");
    }
}

/// A job under `--atomic` whose decision log's lock another process holds: the wait is said,
/// naming that process (it waited without a word, its destinations' sessions holding their
/// tables: recheck66 F9); once the lock is free the job commits every table.
#[test]
fn atomic_a_job_waiting_for_the_logs_lock_says_who_holds_it() {
    let s = two_phase_clusters();
    let job = TwoTables::new("job-held");
    let (dbs, log) = (&job.dbs, &job.log);
    let held = std::fs::File::open(&log.0).unwrap();
    held.lock().unwrap();
    let mut child = copyman()
        .args(job.args(&[]))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = StderrLines::take(&mut child);
    let said = stderr.wait_for("for the lock on the decision log");
    held.unlock().unwrap();
    let said = said.unwrap_or_else(|| panic!("the wait unsaid: {}", stderr.seen()));
    assert!(
        said.contains(&format!("process {} holds it", std::process::id())),
        "{said}"
    );
    assert_eq!(child.wait().unwrap().code(), Some(0), "{}", stderr.rest());
    for (cluster, db) in s.dest.iter().zip(dbs.iter()) {
        assert_eq!(
            (count(cluster, db, "mv"), count(cluster, db, "mw")),
            (1, 1),
            "{db}"
        );
    }
}

/// A prepared transaction rolled back by hand after the commit decision, before its COMMIT
/// PREPARED: the run finds it gone (42704, in doubt, exit 4) and records that its statement
/// was refused, so that recover does not say "committed: a COMMIT PREPARED of it went out" of a
/// destination that holds none of the rows (commit66 F7): it says to check it.
#[test]
fn atomic_a_commit_prepared_that_found_it_gone_is_not_said_committed_by_recover() {
    let s = two_phase_clusters();
    let log = TempPath::new("gone.log");
    let (dbs, paused) = paused_atomic_copy(&log, &[], "recorded");
    let gid = prepared_in(&s.dest[0], &dbs[0]).pop().expect("prepared");
    s.dest[0]
        .connect(&dbs[0])
        .batch_execute(&format!("ROLLBACK PREPARED '{gid}'"))
        .unwrap();
    let out = paused.resume();
    assert_exit(&out, 4);
    let (to1, to2) = (s.dest[0].url(&dbs[0]), s.dest[1].url(&dbs[1]));
    let out = run(&[
        "recover",
        "--to",
        &to1,
        "--to",
        &to2,
        "--decision-log",
        log.arg(),
    ]);
    let said = text(&out.stderr);
    assert!(
        !said.contains("committed: a COMMIT PREPARED of it went out")
            && said.contains(&format!("{gid} ("))
            && said.contains("may lack the run's rows: check what it holds"),
        "{said}"
    );
    assert_eq!(count(&s.dest[0], &dbs[0], "mv"), 0);
    assert_eq!(count(&s.dest[1], &dbs[1], "mv"), 100);
}

/// A destination lost after the commit decision, before its COMMIT PREPARED, and not reachable
/// again: its line says to run recover with the run's `--decision-log` — recover without it
/// reads the default log, finds no line of the run, and leaves the transaction alone
/// (signals43 F2). Followed, the advice commits it.
#[test]
fn atomic_the_advice_to_recover_names_the_runs_decision_log() {
    let s = two_phase_clusters();
    let log = TempPath::new("advice-decisions.log");
    let (dbs, paused) = paused_atomic_copy(&log, &[], "recorded");
    let admin = |sql: &str| s.dest[1].connect("postgres").batch_execute(sql).unwrap();
    admin(&format!(
        "ALTER DATABASE {} ALLOW_CONNECTIONS false",
        dbs[1]
    ));
    admin(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}'",
        dbs[1]
    ));
    let out = paused.resume();
    assert_exit(&out, 4);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "run copyman recover with the same --to and --decision-log {} to finish it",
            log.arg()
        )),
        "{stderr}"
    );
    admin(&format!("ALTER DATABASE {} ALLOW_CONNECTIONS true", dbs[1]));
    recovered_all_committed(&dbs, &log);
}

/// A run killed once its commit decision was recorded, before its COMMIT PREPAREDs, leaves
/// its prepared transactions: a run into the same destination's table is refused before
/// copying, one table's and a job's, dry runs too — recover commits them, and the run's rows
/// came on top, every row twice with exit 0 (signals43 F8 said it in a warning, which was passed
/// over: commit48 F4). A run into another table of that database is told, not refused.
#[test]
fn atomic_a_run_into_a_table_an_earlier_runs_prepared_transaction_wrote_is_refused() {
    let s = two_phase_clusters();
    let log = TempPath::new("left-decisions.log");
    let (dbs, mut paused) = paused_atomic_copy(&log, &[], "recorded");
    paused.child.kill().unwrap();
    let _ = paused.child.wait();
    let left = prepared_in(&s.dest[1], &dbs[1]);
    assert_eq!(left.len(), 1, "{left:?}");
    let (from, to) = (s.dest[0].url(&dbs[0]), s.dest[1].url(&dbs[1]));
    for dry_run in [true, false] {
        let mut args = vec!["table", "mv", "--from", &from, "--to", &to];
        if dry_run {
            args.push("--dry-run");
        }
        let out = run(&args);
        assert_exit(&out, 2);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(&format!(
                "/{}) holds copyman's prepared transaction {} (prepared",
                dbs[1], left[0]
            )) && stderr
                .contains("ago; on mv) of an earlier run, which wrote into this run's table")
                && stderr.contains("finish it first with copyman recover"),
            "{stderr}"
        );
    }
    // A copy whose --receive writes it (recheck48b F2: warned, rows twice, exit 0).
    let out = run(&[
        "copy",
        "--from",
        &from,
        "--send",
        "COPY mv TO STDOUT",
        "--to",
        &to,
        "--receive",
        "COPY mv FROM STDIN",
    ]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("which wrote into this run's table"),
        "{}",
        text(&out.stderr)
    );
    // A job's plan refuses it too.
    let out = run(&[
        "table",
        "--schema",
        "public",
        "--from",
        &from,
        "--to",
        &to,
        "--dry-run",
    ]);
    assert_exit(&out, 2);
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        said.contains(&format!("holds copyman's prepared transaction {}", left[0]))
            && said.contains("which wrote into this run's table"),
        "{said}"
    );
    // Another table of that database: told, and copied.
    for (cluster, db) in [(&s.dest[0], &dbs[0]), (&s.dest[1], &dbs[1])] {
        (cluster.connect(db))
            .batch_execute("CREATE TABLE other (id int); INSERT INTO other VALUES (1)")
            .unwrap();
    }
    let out = run(&["table", "other", "--from", &from, "--to", &to, "--truncate"]);
    assert_exit(&out, 0);
    assert!(
        text(&out.stderr).contains(&format!("holds copyman's prepared transaction {}", left[0])),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&s.dest[1], &dbs[1], "other"), 1);
    (s.dest[1].connect(&dbs[1]))
        .batch_execute("DROP TABLE other")
        .unwrap();
    recovered_all_committed(&dbs, &log);
}

/// A second signal while the run rolls back what it prepared (destination 2 could not prepare:
/// destination 1's ROLLBACK PREPARED answered) says destination 1 rolled back, not prepared —
/// its `pg_prepared_xacts` held nothing (signals43 F1).
#[test]
fn atomic_a_second_signal_during_the_rollback_says_what_rolled_back() {
    let s = two_phase_clusters();
    let src = database(
        &s.source,
        &format!("{MV} INSERT INTO mv SELECT g, 'v' || g FROM generate_series(1, 100) g;"),
    );
    let dbs = [
        database(&s.dest[0], MV),
        database(
            &s.dest[1],
            &format!(
                "{MV} CREATE FUNCTION tell() RETURNS trigger LANGUAGE plpgsql AS
                   $$ BEGIN PERFORM pg_notify('copied', 'mv'); RETURN NULL; END $$;
                 CREATE TRIGGER tell AFTER INSERT ON mv FOR EACH STATEMENT
                   EXECUTE FUNCTION tell();"
            ),
        ),
    ];
    let log = TempPath::new("rollback-decisions.log");
    let (from, to1, to2) = (
        s.source.url(&src),
        s.dest[0].url(&dbs[0]),
        s.dest[1].url(&dbs[1]),
    );
    let args = [
        "--json",
        "table",
        "mv",
        "--from",
        &from,
        "--to",
        &to1,
        "--to",
        &to2,
        "--atomic",
        "--decision-log",
        log.arg(),
    ];
    let mut paused = Paused::start(&args, "rolled-back:1");
    let mut stderr = StderrLines::take(&mut paused.child);
    signal(&paused.child, "INT");
    let _ = stderr.wait_for("SIGINT received");
    signal(&paused.child, "INT");
    let out = paused.resume();
    let said = stderr.rest();
    assert_eq!(out.status.code(), Some(130), "{said}");
    assert!(
        said.contains("rolled back: destination 1") && !said.contains("prepared: destination 1"),
        "{said}"
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("--json");
    assert_eq!(
        report["destinations"][0]["status"], "rolled back",
        "{report}"
    );
    each_holds(&dbs, 0);
}

/// A run under `--keep-going` that left a destination out (its deferred check failed before its
/// PREPARE) and was killed once it decided commit: recover commits the others and names the one
/// left out — it holds none of the run's rows — once, exit 1 (commit48 F3: "nothing pending"
/// there, exit 0, the only word a killed run leaves).
#[test]
fn atomic_recover_names_a_destination_the_run_left_out() {
    let s = two_phase_clusters();
    let src = database(
        &s.source,
        &format!("{MV} INSERT INTO mv SELECT g, 'v' || g FROM generate_series(1, 100) g;"),
    );
    let refusing = format!(
        "{MV} CREATE FUNCTION no() RETURNS trigger LANGUAGE plpgsql
             AS $$ BEGIN RAISE EXCEPTION 'no rows here'; END $$;
         CREATE CONSTRAINT TRIGGER no AFTER INSERT ON mv DEFERRABLE INITIALLY DEFERRED
             FOR EACH ROW EXECUTE FUNCTION no();"
    );
    let dbs = [database(&s.dest[0], &refusing), database(&s.dest[1], MV)];
    let log = TempPath::new("left-out-decisions.log");
    let (from, to1, to2) = (
        s.source.url(&src),
        s.dest[0].url(&dbs[0]),
        s.dest[1].url(&dbs[1]),
    );
    let args = [
        "table",
        "mv",
        "--from",
        &from,
        "--to",
        &to1,
        "--to",
        &to2,
        "--atomic",
        "--keep-going",
        "--decision-log",
        log.arg(),
    ];
    let mut paused = Paused::start(&args, "recorded");
    paused.child.kill().unwrap();
    let _ = paused.child.wait();
    assert_eq!(prepared_in(&s.dest[1], &dbs[1]).len(), 1);
    let recover = || {
        run(&[
            "recover",
            "--to",
            &to1,
            "--to",
            &to2,
            "--decision-log",
            log.arg(),
        ])
    };
    let out = recover();
    let said = text(&out.stdout) + &text(&out.stderr);
    assert_exit(&out, 1);
    assert!(
        said.contains(":1 (")
            && said.contains("was left out of run")
            && said.contains(
                "holds none of the run's rows, which the others committed: copy to it again"
            ),
        "{said}"
    );
    assert_eq!(count(&s.dest[1], &dbs[1], "mv"), 100);
    assert_eq!(count(&s.dest[0], &dbs[0], "mv"), 0);
    // Said once.
    let out = recover();
    assert_exit(&out, 0);
    let said = text(&out.stdout) + &text(&out.stderr);
    assert!(!said.contains("left out"), "{said}");
}
