//! What a signal does before the copy and during the COMMITs of a one-table run: while
//! connecting (a server that accepts and never answers) it exits at once, nothing begun; during
//! the COMMITs the first signal lets them finish and says so, and a second one exits at once
//! saying which destinations committed, with exit status 4 — never "nothing committed".

use crate::common;

use std::os::unix::net::UnixListener;
use std::process::Stdio;
use std::time::{Duration, Instant};
use std::{fs, thread};

use common::*;

/// Waits (bounded: a hang fails the test) for `child` to end.
fn wait_bounded(child: &mut std::process::Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("copyman did not end after the signal");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Waits (bounded: 60 s) until a thread of process `pid` is blocked writing to a full pipe.
fn wait_writing_to_a_full_pipe(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let blocked = || {
        let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
            return false;
        };
        tasks.filter_map(Result::ok).any(|task| {
            fs::read_to_string(task.path().join("wchan")).is_ok_and(|w| w.contains("pipe_write"))
        })
    };
    while !blocked() {
        assert!(
            Instant::now() < deadline,
            "{pid} never waited on a full pipe"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// How copyman names the mute server of [`a_signal_while_connecting_exits_at_once`].
fn mute_display(dir: &str) -> String {
    format!("postgres@{dir}:5999/x")
}

/// The connection `child` (run with `args`) makes to the mute server `listener`, once it came
/// (within 30 s: a run that ends before it dials fails the test).
fn accepted(
    listener: &UnixListener,
    child: &mut std::process::Child,
    args: &[&str],
) -> std::os::unix::net::UnixStream {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match listener.accept() {
            Ok((held, _)) => return held,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if let Some(status) = child.try_wait().unwrap() {
                    panic!("copyman {args:?} ended ({status}) before it connected");
                }
                assert!(Instant::now() < deadline, "copyman never connected");
                thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

#[test]
fn a_signal_while_connecting_exits_at_once() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE t (id int); CREATE TABLE u (id int);",
    );
    // A "server" that takes the connection and never answers.
    let dir = TempPath::new("mute-server");
    fs::create_dir_all(&dir.0).unwrap();
    let listener = UnixListener::bind(dir.0.join(".s.PGSQL.5999")).unwrap();
    listener.set_nonblocking(true).unwrap();
    let from = c.source.conninfo(&src);
    let mute = format!("host={} port=5999 user=postgres dbname=x", dir.arg());
    let log = TempPath::new("mute-recover.log");
    fs::write(&log.0, "").unwrap();
    // One table, its dry run (it ended silently, no document: conn66 F3), a job of two, and
    // recover (which copies nothing: it finished nothing).
    let runs: [(&[&str], &str); 4] = [
        (
            &["table", "t", "--from", &from, "--to", &mute, "--json"],
            "nothing was copied",
        ),
        (
            &[
                "table",
                "t",
                "--from",
                &from,
                "--to",
                &mute,
                "--json",
                "--dry-run",
            ],
            "nothing was copied",
        ),
        (
            &["table", "t", "u", "--from", &from, "--to", &mute, "--json"],
            "nothing was copied",
        ),
        (
            &[
                "recover",
                "--to",
                &mute,
                "--decision-log",
                log.arg(),
                "--json",
            ],
            "nothing was finished (no COMMIT or ROLLBACK PREPARED sent): whatever is prepared \
             stays prepared",
        ),
    ];
    for (tables, said) in runs {
        let args = tables;
        let mut child = copyman()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Its startup packet is waiting when the connection was accepted (bounded: a run that
        // ends before it dials fails the test).
        let _held = accepted(&listener, &mut child, tables);
        signal(&child, "INT");
        let status = wait_bounded(&mut child);
        let out = child.wait_with_output().unwrap();
        let stderr = text(&out.stderr);
        assert_eq!(status.code(), Some(130), "{tables:?}: {stderr}");
        // Each names whom it connected to (ops54 F5: the one-table document named none;
        // signals65 F3: a job named none either).
        let whom = format!(" to destination 1 ({})", mute_display(dir.arg()));
        assert!(
            stderr.contains(&format!("SIGINT received while connecting{whom}: {said}")),
            "{tables:?}: {stderr}"
        );
        if tables[0] == "table" {
            let report = json(&out);
            assert_eq!(report["server"], "destination 1", "{report}");
            assert_eq!(report["endpoint"], mute_display(dir.arg()), "{report}");
        }
        if tables[0] == "recover" {
            // recover's document: its log, and nothing looked at (not an empty list).
            let report = json(&out);
            assert_eq!(report["decision_log"], log.arg(), "{report}");
            assert!(report["prepared"].is_null(), "{report}");
        } else if tables.contains(&"--json") {
            // A job's too (it printed none).
            let report = json(&out);
            assert_eq!(report["exit_code"], 130, "{report}");
            assert_eq!(report["tables"], serde_json::json!([]), "{report}");
        }
    }
    // Its stdout given as the destination, a pipe: marked as a failed run's (recheck68 F14:
    // left empty, which `| psql -c 'TRUNCATE t' -c 'COPY t FROM STDIN'` read as an empty table).
    let mut child = copyman()
        .args(["table", "t", "--from", &mute, "--to", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // (Read as it comes, as a reader does: the mark is more than a pipe holds.)
    let mut stdout = child.stdout.take().unwrap();
    let reader = thread::spawn(move || {
        let mut all = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut all).unwrap();
        all
    });
    let _held = accepted(&listener, &mut child, &[]);
    signal(&child, "INT");
    let status = wait_bounded(&mut child);
    let out = child.wait_with_output().unwrap();
    assert_eq!(status.code(), Some(130), "{}", text(&out.stderr));
    assert!(reader.join().unwrap() == unsent(), "{}", text(&out.stderr));
    drop(listener);
    let _ = fs::remove_dir_all(&dir.0);
}

/// A source of 100 rows in `t` and two destinations with an empty `t`: the destinations'
/// databases, and the source's and destinations' conninfos.
fn one_table_to_two(c: &Clusters) -> (String, String, [String; 3]) {
    let src = database(
        &c.source,
        "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 100);",
    );
    let d1 = database(&c.dest[0], "CREATE TABLE t (id int)");
    let d2 = database(&c.dest[1], "CREATE TABLE t (id int)");
    let conninfos = [
        c.source.conninfo(&src),
        c.dest[0].conninfo(&d1),
        c.dest[1].conninfo(&d2),
    ];
    (d1, d2, conninfos)
}

/// SIGQUIT (Ctrl-\\) exits at once as a second signal does, saying what committed: during the
/// COMMITs exit 4, naming destination 1 committed (it killed copyman without a word, exit 131,
/// a partial copy unsaid); before them, 131 and nothing committed.
#[test]
fn sigquit_exits_at_once_saying_what_committed() {
    let c = clusters();
    let (d1, d2, [from, to1, to2]) = one_table_to_two(c);
    let args = ["table", "t", "--from", &from, "--to", &to1, "--to", &to2];
    let mut paused = Paused::start(&args, "committed:1");
    let stderr = StderrLines::take(&mut paused.child);
    signal(&paused.child, "QUIT");
    let status = wait_bounded(&mut paused.child);
    let said = stderr.rest();
    assert_eq!(status.code(), Some(4), "{said}");
    assert!(
        said.contains(
            "SIGQUIT received: exiting at once during the COMMITs: committed: destination 1 ("
        ) && !said.contains("not answered"),
        "every COMMIT sent was answered: no empty group (recheck45 F4.3): {said}"
    );
    assert_eq!(count(&c.dest[0], &d1, "t"), 100);
    assert_eq!(count(&c.dest[1], &d2, "t"), 0);
    // Before any COMMIT: nothing committed, the signal's own status; under --json said as
    // the document's error (it was null).
    let (d1, d2, [from, to1, to2]) = one_table_to_two(c);
    let args = [
        "--json", "table", "t", "--from", &from, "--to", &to1, "--to", &to2,
    ];
    let mut paused = Paused::start(&args, "checked:1");
    let stderr = StderrLines::take(&mut paused.child);
    signal(&paused.child, "QUIT");
    let status = wait_bounded(&mut paused.child);
    let said = stderr.rest();
    assert_eq!(status.code(), Some(131), "{said}");
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut paused.child.stdout.take().unwrap(), &mut stdout).unwrap();
    let report: serde_json::Value = serde_json::from_str(&stdout).expect(&stdout);
    assert_eq!(report["exit_code"], 131, "{report}");
    assert!(
        (report["error"].as_str()).is_some_and(|e| e.contains("SIGQUIT received: exiting at once")),
        "{report}"
    );
    assert!(said.contains("SIGQUIT received: exiting at once"), "{said}");
    assert_eq!(count(&c.dest[0], &d1, "t"), 0);
    assert_eq!(count(&c.dest[1], &d2, "t"), 0);
    // Before the commit phase (the transactions begun): said too (it said only "its backends
    // cancelled", signals41 F3), and the document names every destination rolled back (it
    // named none before the commit knew its parties, ops54 F6).
    let (d1, d2, [from, to1, to2]) = one_table_to_two(c);
    let args = [
        "--json", "table", "t", "--from", &from, "--to", &to1, "--to", &to2,
    ];
    let mut paused = Paused::start(&args, "begun:1");
    let stderr = StderrLines::take(&mut paused.child);
    signal(&paused.child, "QUIT");
    let status = wait_bounded(&mut paused.child);
    let said = stderr.rest();
    assert_eq!(status.code(), Some(131), "{said}");
    assert!(
        said.contains(
            "SIGQUIT received: exiting at once (its backends cancelled): nothing committed"
        ),
        "{said}"
    );
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut paused.child.stdout.take().unwrap(), &mut stdout).unwrap();
    let report: serde_json::Value = serde_json::from_str(&stdout).expect(&stdout);
    let destinations: Vec<(&str, &str)> = (report["destinations"].as_array().unwrap().iter())
        .map(|d| (d["server"].as_str().unwrap(), d["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        destinations,
        [
            ("destination 1", "rolled back"),
            ("destination 2", "rolled back")
        ],
        "{report}"
    );
    assert!(
        report["destinations"][1]["endpoint"].is_string(),
        "{report}"
    );
    assert_eq!(count(&c.dest[0], &d1, "t"), 0);
    assert_eq!(count(&c.dest[1], &d2, "t"), 0);
}

/// Under `--keep-going`, a destination that failed before the commit is in the report of a
/// second signal during the COMMITs (it was named nowhere but in the early warning, and a
/// script reading `destinations` missed it: signals43 F4).
#[test]
fn a_second_signal_during_the_commits_names_a_destination_that_failed_before() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 100);",
    );
    let d1 = database(&c.dest[0], "CREATE TABLE t (id int)");
    let d2 = database(&c.dest[1], "CREATE TABLE t (id int CHECK (id < 50))");
    let (from, to1, to2) = (
        c.source.conninfo(&src),
        c.dest[0].conninfo(&d1),
        c.dest[1].conninfo(&d2),
    );
    let args = [
        "--json",
        "table",
        "t",
        "--from",
        &from,
        "--to",
        &to1,
        "--to",
        &to2,
        "--keep-going",
    ];
    let mut paused = Paused::start(&args, "committed:1");
    let mut stderr = StderrLines::take(&mut paused.child);
    signal(&paused.child, "INT");
    let _ = stderr.wait_for("SIGINT received");
    signal(&paused.child, "INT");
    let status = wait_bounded(&mut paused.child);
    let said = stderr.rest();
    assert_eq!(status.code(), Some(4), "{said}");
    assert!(
        said.contains("failed before the commit (rolled back): destination 2"),
        "{said}"
    );
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut paused.child.stdout.take().unwrap(), &mut stdout).unwrap();
    let report: serde_json::Value = serde_json::from_str(&stdout).expect(&stdout);
    let statuses: Vec<(&str, &str)> = (report["destinations"].as_array().unwrap().iter())
        .map(|d| (d["server"].as_str().unwrap(), d["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        statuses,
        [("destination 1", "committed"), ("destination 2", "failed")],
        "{report}"
    );
    assert_eq!(report["interrupted"], "interrupted by SIGINT", "{report}");
    assert_eq!(count(&c.dest[0], &d1, "t"), 100);
    assert_eq!(count(&c.dest[1], &d2, "t"), 0);
}

#[test]
fn a_second_signal_during_the_commits_says_what_committed_and_exits_partial() {
    let c = clusters();
    let (d1, d2, [from, to1, to2]) = one_table_to_two(c);
    let args = [
        "--json", "table", "t", "--from", &from, "--to", &to1, "--to", &to2,
    ];
    // Destination 1 committed; destination 2's COMMIT not sent yet.
    let mut paused = Paused::start(&args, "committed:1");
    let mut stderr = StderrLines::take(&mut paused.child);
    signal(&paused.child, "INT");
    let first = stderr.wait_for("SIGINT received");
    signal(&paused.child, "INT");
    let status = wait_bounded(&mut paused.child);
    let said = stderr.rest();
    assert_eq!(status.code(), Some(4), "{said}");
    assert!(
        first.is_some_and(|l| l.contains("the commit is under way and finishes")),
        "{said}"
    );
    assert!(
        said.contains("exiting at once during the COMMITs: committed: destination 1 (")
            && !said.contains("nothing committed"),
        "{said}"
    );
    // Nothing is prepared without --atomic: what was not sent rolls back, no recover to run.
    assert!(
        said.contains("(rolled back as copyman exits)") && !said.contains("copyman recover"),
        "{said}"
    );
    // And under --json, the same on stdout.
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut paused.child.stdout.take().unwrap(), &mut stdout).unwrap();
    let report: serde_json::Value = serde_json::from_str(&stdout).expect(&stdout);
    assert_eq!(report["exited_at_once"], true, "{report}");
    assert_eq!(report["exit_code"], 4, "{report}");
    let committed = &report["destinations"][0];
    assert_eq!(committed["server"], "destination 1", "{report}");
    assert_eq!(committed["status"], "committed", "{report}");
    // With the counts the run had (signals67 F4: null).
    assert_eq!(committed["rows"], 100, "{report}");
    assert_eq!(report["source_rows"], 100, "{report}");
    assert_eq!(report["committed"], 1, "{report}");
    assert_eq!(report["committed_rows"], 100, "{report}");
    // Named by its endpoint too, as the report names destinations (it had only "destination 1").
    assert!(
        committed["endpoint"]
            .as_str()
            .is_some_and(|e| e.contains(&d1) && e.contains(&c.dest[0].port().to_string())),
        "{report}"
    );
    // Every party of the commit is listed with its status, the one whose COMMIT was not sent
    // too (it was only in the prose of `others`: a script saw one destination, committed).
    let rest = &report["destinations"][1];
    assert_eq!(rest["server"], "destination 2", "{report}");
    assert_eq!(rest["status"], "rolled back", "{report}");
    assert!(
        rest["endpoint"].as_str().is_some_and(|e| e.contains(&d2)),
        "{report}"
    );
    assert_eq!(report["destinations"].as_array().map(Vec::len), Some(2));
    assert_eq!(count(&c.dest[0], &d1, "t"), 100);
    assert_eq!(count(&c.dest[1], &d2, "t"), 0);
    assert_eq!(settle_backends(&c.dest[1], &d2), Vec::<String>::new());
}

/// A COMMIT the server answered with an error (a constraint deferred past copyman's check, as
/// a trigger can) is said as failed by a second signal, with the server's words, not "sent, not
/// answered (may have committed)" nor `in doubt`: it was counted among the unanswered.
#[test]
fn a_second_signal_says_a_refused_commit_failed_not_in_doubt() {
    let c = clusters();
    let (_, d2, [from, _, to2]) = one_table_to_two(c);
    // Destination 1's COMMIT fails: its trigger defers the constraint again and breaks it.
    let d1 = database(
        &c.dest[0],
        "CREATE TABLE t (id int);
         CREATE TABLE parent (id int PRIMARY KEY);
         CREATE TABLE bomb (pid int REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED);
         CREATE FUNCTION arm() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN SET CONSTRAINTS ALL DEFERRED; INSERT INTO bomb VALUES (-1); RETURN NULL; END $$;
         CREATE CONSTRAINT TRIGGER arm AFTER INSERT ON t DEFERRABLE INITIALLY DEFERRED
         FOR EACH ROW WHEN (NEW.id = 1) EXECUTE FUNCTION arm();",
    );
    let to1 = c.dest[0].conninfo(&d1);
    let args = [
        "--json",
        "table",
        "t",
        "--from",
        &from,
        "--to",
        &to1,
        "--to",
        &to2,
        "--keep-going",
    ];
    let mut paused = Paused::start(&args, "committed:2");
    let mut stderr = StderrLines::take(&mut paused.child);
    signal(&paused.child, "INT");
    let _ = stderr.wait_for("SIGINT received");
    signal(&paused.child, "INT");
    let status = wait_bounded(&mut paused.child);
    let said = stderr.rest();
    let again = said
        .lines()
        .find(|l| l.contains("received again"))
        .unwrap_or_else(|| panic!("{said}"));
    assert!(
        again.contains("every COMMIT was answered: committed: destination 2")
            && again.contains("COMMIT failed (nothing committed there): destination 1 (")
            && again.contains("23503")
            && !again.contains("may have committed"),
        "{said}"
    );
    assert_eq!(status.code(), Some(4), "{said}");
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut paused.child.stdout.take().unwrap(), &mut stdout).unwrap();
    let report: serde_json::Value = serde_json::from_str(&stdout).expect(&stdout);
    assert_eq!(report["exit_code"], 4, "{report}");
    let statuses: Vec<_> = (report["destinations"].as_array().unwrap().iter())
        .map(|d| (d["server"].as_str().unwrap(), d["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        statuses,
        [("destination 1", "failed"), ("destination 2", "committed")],
        "{report}"
    );
    assert_eq!(count(&c.dest[0], &d1, "t"), 0);
    assert_eq!(count(&c.dest[1], &d2, "t"), 100);
}

/// A table's source reads in a read-only transaction: its COMMIT commits nothing, and a second
/// signal does not list it among what committed or may have (it listed "source").
#[test]
fn a_second_signal_never_lists_a_read_only_source_as_committing() {
    let c = clusters();
    let (d1, d2, [from, to1, to2]) = one_table_to_two(c);
    let args = ["table", "t", "--from", &from, "--to", &to1, "--to", &to2];
    let mut paused = Paused::start(&args, "committed:source");
    let mut stderr = StderrLines::take(&mut paused.child);
    signal(&paused.child, "INT");
    let _ = stderr.wait_for("SIGINT received");
    signal(&paused.child, "INT");
    let status = wait_bounded(&mut paused.child);
    let said = stderr.rest();
    let again = said
        .lines()
        .find(|l| l.contains("received again"))
        .unwrap_or_else(|| panic!("{said}"));
    assert!(
        // Each with its endpoint (commit64 F2: by number only).
        again.contains("every COMMIT was answered: committed: destination 1 (")
            && again.contains(&format!("/{d1}), destination 2 ("))
            && again.contains(&format!("/{d2})"))
            && !again.contains("source"),
        "{said}"
    );
    // Every destination committed all its rows: the run is a success cut short, not partial
    // (it exited 4 saying "the others have not committed").
    assert_eq!(status.code(), Some(0), "{said}");
    assert_eq!(count(&c.dest[0], &d1, "t"), 100);
    assert_eq!(count(&c.dest[1], &d2, "t"), 100);
}

/// A signal once the commit began, but before its first COMMIT went out (the deferred
/// constraints checked), calls the commit off: nothing has committed yet, so nothing does (it
/// committed everything and exited 0, though the user had asked it to stop). One after the
/// first COMMIT lets the commit finish, and says so.
#[test]
fn a_signal_before_the_first_commit_calls_it_off_and_one_after_lets_it_finish() {
    let c = clusters();
    let (d1, d2, [from, to1, to2]) = one_table_to_two(c);
    let args = [
        "table", "t", "--from", &from, "--to", &to1, "--to", &to2, "--json",
    ];
    // The deferred constraints checked on destination 1: no COMMIT sent yet.
    let mut paused = Paused::start(&args, "checked:1");
    let mut stderr = StderrLines::take(&mut paused.child);
    signal(&paused.child, "INT");
    let said = stderr.wait_for("SIGINT received");
    let out = paused.resume();
    assert!(
        said.as_deref()
            .is_some_and(|l| l.contains("nothing is committed yet: the commit is called off")),
        "{}",
        stderr.rest()
    );
    assert_exit(&out, 130);
    assert_eq!(count(&c.dest[0], &d1, "t"), 0);
    assert_eq!(count(&c.dest[1], &d2, "t"), 0);
    assert_eq!(settle_backends(&c.dest[0], &d1), Vec::<String>::new());
    // No destination failed: the user's signal called the commit off (destination 2, whose
    // step came next, was said "failed", and --json blamed it at its top).
    let report = json(&out);
    for d in report["destinations"].as_array().unwrap() {
        assert_eq!(d["status"], "rolled back", "{report}");
    }
    assert!(report["server"].is_null(), "{report}");
    // The signal is the run's error, as one mid-data is (it was null here).
    assert_eq!(report["error"], "interrupted by SIGINT", "{report}");

    // Destination 1 committed: the commit finishes.
    let (d1, d2, [from, to1, to2]) = one_table_to_two(c);
    let args = ["table", "t", "--from", &from, "--to", &to1, "--to", &to2];
    let mut paused = Paused::start(&args, "committed:1");
    let mut stderr = StderrLines::take(&mut paused.child);
    signal(&paused.child, "INT");
    let said = stderr.wait_for("SIGINT received");
    let out = paused.resume();
    assert!(
        said.as_deref()
            .is_some_and(|l| l.contains("the commit is under way and finishes")),
        "{}",
        stderr.rest()
    );
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[0], &d1, "t"), 100);
    assert_eq!(count(&c.dest[1], &d2, "t"), 100);
}

/// A fast second signal in the middle of the copy exits at once, and leaves no backend of the run
/// in its COPY: a destination's backend that waits (here on a lock, in a trigger) reads nothing,
/// would not see its connection closed, and would keep the TRUNCATE's lock on the table until its
/// wait ended — so its CancelRequest is sent before the process exits.
#[test]
fn a_fast_second_signal_mid_copy_leaves_no_backend_in_its_copy() {
    let c = clusters();
    let table = "CREATE TABLE t (id int8 PRIMARY KEY, v text);";
    let src = database(
        &c.source,
        &format!("{table} INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 20000) g;"),
    );
    let d1 = database(&c.dest[0], table);
    let d2 = database(
        &c.dest[1],
        &format!(
            "{table}
             CREATE FUNCTION hold() RETURNS trigger LANGUAGE plpgsql AS $$
               BEGIN
                 IF NEW.id = 5000 THEN PERFORM pg_advisory_xact_lock_shared(42); END IF;
                 RETURN NEW;
               END $$;
             CREATE TRIGGER hold BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION hold();"
        ),
    );
    let mut holder = c.dest[1].connect(&d2);
    holder.batch_execute("SELECT pg_advisory_lock(42)").unwrap();
    let mut child = copyman()
        .args([
            "--json",
            "table",
            "t",
            "--truncate",
            "--from",
            &c.source.conninfo(&src),
            "--to",
            &c.dest[0].conninfo(&d1),
            "--to",
            &c.dest[1].conninfo(&d2),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = StderrLines::take(&mut child);
    // Destination 2's backend waits for the lock, in its COPY.
    let mut admin = c.dest[1].connect("postgres");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let waiting: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 \
                 AND wait_event = 'advisory' AND query ILIKE 'COPY%'",
                &[&d2],
            )
            .unwrap()
            .get(0);
        if waiting > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "never waited: {}", stderr.seen());
        thread::sleep(Duration::from_millis(20));
    }
    signal(&child, "INT");
    signal(&child, "INT");
    let status = wait_bounded(&mut child);
    let said = stderr.rest();
    // (Two signals this close may reach copyman as one: then the first one's cancel, sent at
    // once, ends the COPY, and the run stops as after one signal. Either way, the same end.)
    assert_eq!(status.code(), Some(130), "{said}");
    // Under --json a document all the same (exiting at once it printed none).
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
    let report: serde_json::Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout:?}: {said}"));
    assert_eq!(report["status"], "interrupted", "{report}");
    assert_eq!(report["exit_code"], 130, "{report}");
    // The lock is still held: only the cancel ends that COPY.
    assert_eq!(copy_backends(&c.dest[1], &d2), 0, "{said}");
    holder
        .batch_execute("SELECT pg_advisory_unlock(42)")
        .unwrap();
    assert_eq!(count(&c.dest[0], &d1, "t"), 0);
    assert_eq!(count(&c.dest[1], &d2, "t"), 0);
}

/// A copyman killed (`kill -9`) while its source's statement has not sent its first row (a sort,
/// a `--send` waiting on something) does not leave that statement running on the server: the
/// backend checks that its client is still there while a statement runs
/// (`client_connection_check_interval`, PostgreSQL 14+) and ends within seconds (it ran on
/// until its query ended: hours for a large sort, holding a move's locks).
#[test]
fn a_killed_copyman_leaves_no_source_query_running() {
    let c = clusters();
    let src = database(&c.source, "");
    let dst = database(&c.dest[0], "CREATE TABLE t (x text);");
    let mut child = copyman()
        .args([
            "copy",
            "--from",
            &c.source.conninfo(&src),
            "--send",
            "COPY (SELECT pg_sleep(120)::text) TO STDOUT",
            "--to",
            &c.dest[0].conninfo(&dst),
            "--receive",
            "COPY t FROM STDIN",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_query(&c.source, &src, "COPY (SELECT pg_sleep(120)%");
    child.kill().unwrap();
    child.wait().unwrap();
    let started = Instant::now();
    loop {
        let running: i64 = c
            .source
            .connect("postgres")
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 \
                 AND query LIKE 'COPY (SELECT pg_sleep(120)%'",
                &[&src],
            )
            .unwrap()
            .get(0);
        if running == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the source's query still runs 30 s after copyman was killed"
        );
        thread::sleep(Duration::from_millis(200));
    }
}

/// A signal before the first COMMIT calls the commit off on the servers, but stdout got every
/// row already: it is said `sent`, never "rolled back" (every row had gone out, and the report
/// said stdout rolled back and nothing committed).
#[test]
fn a_signal_before_the_first_commit_says_stdout_got_its_rows() {
    let c = clusters();
    let (d1, _, [from, to1, _]) = one_table_to_two(c);
    let args = ["table", "t", "--from", &from, "--to", "-", "--to", &to1];
    let mut paused = Paused::start(&args, "checked:2");
    let mut stderr = StderrLines::take(&mut paused.child);
    signal(&paused.child, "INT");
    let _ = stderr.wait_for("SIGINT received");
    let out = paused.resume();
    let said = stderr.rest();
    // Stdout holds the rows, the server none: partial, said so.
    assert_eq!(out.status.code(), Some(4), "{said}");
    assert_eq!(text(&out.stdout).lines().count(), 100, "every row went out");
    assert!(!said.contains("-: interrupted"), "{said}");
    assert_eq!(count(&c.dest[0], &d1, "t"), 0);
}

/// A job's dry run stopped by a signal once planned ends with the signal's status, not after
/// printing its whole plan with exit 0 (it said "stopping the job", then did not): a signal
/// that came as its planning ended stops it before the plan, one while the plan is printed
/// (here into a pipe nobody reads, as a pager that waits) exits at once (recheck39 F2).
#[test]
fn a_signal_stops_a_jobs_dry_run_once_planned() {
    let c = clusters();
    // Enough tables of long names that the plan outgrows a pipe's buffer.
    let tables = "DO $$ BEGIN FOR i IN 1..150 LOOP EXECUTE format(
        'CREATE TABLE %I (id int)', 'a_table_whose_name_is_long_enough_to_fill_a_pipe_' || i);
        END LOOP; END $$;";
    let src = database(&c.source, tables);
    let (d1, d2) = (database(&c.dest[0], tables), database(&c.dest[1], tables));
    let state = TempPath::new("dry.state");
    let (from, to1, to2) = (
        c.source.conninfo(&src),
        c.dest[0].conninfo(&d1),
        c.dest[1].conninfo(&d2),
    );
    let args = [
        "table",
        "--table",
        "a_table_*",
        "--from",
        &from,
        "--to",
        &to1,
        "--to",
        &to2,
        "--state",
        state.arg(),
        "--dry-run",
    ];
    // A signal as the planning ends: no plan, the signal's status.
    let mut paused = Paused::start(&args, "planned");
    let mut stderr = StderrLines::take(&mut paused.child);
    signal(&paused.child, "INT");
    let _ = stderr.wait_for("SIGINT received");
    let out = paused.resume();
    let said = stderr.rest();
    assert_eq!(out.status.code(), Some(130), "{said}");
    assert!(!text(&out.stdout).contains("dry run"), "{said}");
    // A signal while the plan is printed into a pipe nobody reads: out at once.
    let mut paused = Paused::start(&args, "planned");
    let stderr = StderrLines::take(&mut paused.child);
    fs::remove_file(&paused.file.0).unwrap();
    wait_writing_to_a_full_pipe(paused.child.id());
    signal(&paused.child, "INT");
    let status = wait_bounded(&mut paused.child);
    let said = stderr.rest();
    assert_eq!(status.code(), Some(130), "{said}");
    assert!(
        said.contains("SIGINT received while printing the dry run's plan: nothing was copied"),
        "{said}"
    );
}

/// A job interrupted while a table's commit checks its deferred constraints (before any COMMIT
/// of it) calls that table's commit off, as a one-table run does (it said the tables being
/// copied roll back, then committed it everywhere).
#[test]
fn a_job_interrupted_before_a_tables_first_commit_calls_it_off() {
    let c = clusters();
    let tables = "CREATE TABLE m (id int); CREATE TABLE n (id int);";
    let src = database(
        &c.source,
        &format!(
            "{tables} INSERT INTO m SELECT generate_series(1, 100); INSERT INTO n VALUES (1);"
        ),
    );
    // Destination 1 checks m's deferred constraint slowly.
    let d1 = database(
        &c.dest[0],
        &format!(
            "{tables}
             CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS $$
               BEGIN PERFORM pg_sleep(30); RETURN NULL; END $$;
             CREATE CONSTRAINT TRIGGER slow AFTER INSERT ON m DEFERRABLE INITIALLY DEFERRED
               FOR EACH ROW WHEN (NEW.id = 1) EXECUTE FUNCTION slow();"
        ),
    );
    let d2 = database(&c.dest[1], tables);
    let state = TempPath::new("called-off.state");
    let mut child = copyman()
        .args([
            "table",
            "m",
            "n",
            "--jobs",
            "1",
            "--from",
            &c.source.conninfo(&src),
        ])
        .args([
            "--to",
            &c.dest[0].conninfo(&d1),
            "--to",
            &c.dest[1].conninfo(&d2),
        ])
        .args(["--state", state.arg(), "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_query(&c.dest[0], &d1, "SET CONSTRAINTS ALL IMMEDIATE");
    let stderr = StderrLines::take(&mut child);
    signal(&child, "INT");
    let status = wait_bounded(&mut child);
    assert_eq!(status.code(), Some(130));
    // --json: the signal is why, no server (destination 1 was named, its table rolled back).
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
    let report: serde_json::Value = serde_json::from_str(&stdout).expect(&stdout);
    assert_eq!(report["error"], "interrupted by SIGINT", "{report}");
    assert!(report["server"].is_null(), "{report}");
    for (cluster, db) in [(&c.dest[0], &d1), (&c.dest[1], &d2)] {
        assert_eq!(count(cluster, db, "m"), 0, "m committed on {db}");
    }
    // The check given up after the signal is the user's stop: no destination failed (the
    // slow one was "failed", named in "the job stopped:", "a frozen backend" guessed).
    let said = stderr.rest();
    assert!(
        !said.contains("failed:") && !said.contains("the job stopped: table"),
        "{said}"
    );
}

/// A signal while the commit checks a slow deferred constraint (before any COMMIT) cancels the
/// check with the commit it calls off (it waited for the whole check: here a minute).
#[test]
fn a_signal_during_a_slow_check_cancels_it() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 100);",
    );
    let dst = database(
        &c.dest[0],
        "CREATE TABLE t (id int);
         CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN PERFORM pg_sleep(60); RETURN NULL; END $$;
         CREATE CONSTRAINT TRIGGER slow AFTER INSERT ON t DEFERRABLE INITIALLY DEFERRED
           FOR EACH ROW WHEN (NEW.id = 1) EXECUTE FUNCTION slow();",
    );
    let mut child = copyman()
        .args(["table", "t", "--from", &c.source.conninfo(&src)])
        .args(["--to", &c.dest[0].conninfo(&dst)])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_query(&c.dest[0], &dst, "SET CONSTRAINTS ALL IMMEDIATE");
    signal(&child, "INT");
    // (Bounded at 20 s, a third of the check.)
    let status = wait_bounded(&mut child);
    assert_eq!(status.code(), Some(130));
    assert_eq!(count(&c.dest[0], &dst, "t"), 0);
}

/// A signal ignored when copyman started stays ignored, as `nohup` means it: a hangup then does
/// not call the commit off (it stopped the copy and rolled everything back, exit 129).
#[test]
fn a_hangup_ignored_at_start_stays_ignored() {
    let c = clusters();
    let (d1, d2, [from, to1, to2]) = one_table_to_two(c);
    let mut under_nohup = copyman_as(std::path::Path::new("/bin/sh"));
    under_nohup.args([
        "-c",
        "trap '' HUP; exec \"$0\" \"$@\"",
        env!("CARGO_BIN_EXE_copyman"),
    ]);
    let args = ["table", "t", "--from", &from, "--to", &to1, "--to", &to2];
    let paused = Paused::start_with(under_nohup, &args, "checked:1");
    signal(&paused.child, "HUP");
    thread::sleep(Duration::from_millis(200));
    let out = paused.resume();
    assert_exit(&out, 0);
    assert!(
        !text(&out.stderr).contains("SIGHUP"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &d1, "t"), 100);
    assert_eq!(count(&c.dest[1], &d2, "t"), 100);
}

/// A signal while destination 1's `TRUNCATE` waits for another session's lock: the run is
/// interrupted and nothing committed, and both destinations are listed rolled back — the one
/// whose statement copyman cancelled was listed failed, SQLSTATE 57014, a failure of its own
/// to a script counting them.
#[test]
fn a_destination_cancelled_on_a_signal_is_rolled_back_not_failed() {
    let c = clusters();
    let table = "CREATE TABLE t (id int);";
    let src = database(
        &c.source,
        &format!("{table} INSERT INTO t SELECT generate_series(1, 100);"),
    );
    let (d1, d2) = (database(&c.dest[0], table), database(&c.dest[1], table));
    let mut holder = c.dest[0].connect(&d1);
    holder
        .batch_execute("BEGIN; LOCK TABLE t IN SHARE MODE")
        .unwrap();
    let child = copyman()
        .args(["--json", "table", "t", "--truncate", "--from"])
        .arg(c.source.conninfo(&src))
        .args(["--to", &c.dest[0].conninfo(&d1)])
        .args(["--to", &c.dest[1].conninfo(&d2)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_lock(&c.dest[0], &d1);
    signal(&child, "INT");
    let out = child.wait_with_output().unwrap();
    holder.batch_execute("COMMIT").unwrap();
    assert_exit(&out, 130);
    let doc = json(&out);
    for d in doc["destinations"].as_array().unwrap() {
        assert_eq!(d["status"], "rolled back", "{doc}");
    }
    assert_eq!(count(&c.dest[0], &d1, "t"), 0);
    assert_eq!(count(&c.dest[1], &d2, "t"), 0);
}

/// Under `--keep-going`, a signal while a destination's COPY waits for a lock (a trigger's
/// advisory lock): copyman's own cancel of it is not said as that destination failing with
/// "the copy goes on without it" one line after "stopping the copy" (progress45 F7); interrupted,
/// nothing committed.
#[test]
fn a_signal_under_keep_going_does_not_say_the_copy_goes_on() {
    let c = clusters();
    let table = "CREATE TABLE t (id int);";
    let src = database(
        &c.source,
        &format!("{table} INSERT INTO t SELECT generate_series(1, 200000);"),
    );
    let d1 = database(&c.dest[0], table);
    let d2 = database(
        &c.dest[1],
        &format!(
            "{table} CREATE FUNCTION held() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN
               PERFORM pg_advisory_xact_lock(42); RETURN NEW; END$$;
             CREATE TRIGGER held BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION held();"
        ),
    );
    let mut holder = c.dest[1].connect(&d2);
    holder
        .batch_execute("BEGIN; SELECT pg_advisory_xact_lock(42)")
        .unwrap();
    let child = copyman()
        .args(["table", "t", "--keep-going", "--progress", "--from"])
        .arg(c.source.conninfo(&src))
        .args(["--to", &c.dest[0].conninfo(&d1)])
        .args(["--to", &c.dest[1].conninfo(&d2)])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_lock(&c.dest[1], &d2);
    // Once the copy has stood still a while (the watch looks at it).
    thread::sleep(Duration::from_secs(3));
    signal(&child, "INT");
    let out = child.wait_with_output().unwrap();
    holder.batch_execute("COMMIT").unwrap();
    assert_exit(&out, 130);
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("the copy goes on without it"), "{stderr}");
    assert_eq!(count(&c.dest[0], &d1, "t"), 0);
    assert_eq!(count(&c.dest[1], &d2, "t"), 0);
}

/// A second signal while `--verify` computes a committed destination's checksum exits at once
/// and cancels that query too: its session's transaction had ended (the table committed), so it
/// was not among the backends cancelled, and it kept its CPU and its lock until the server
/// noticed copyman gone (≈5 s), while copyman said "its backends cancelled". Here the checksum
/// waits for a lock the test holds: only a cancel ends it as the server's log says.
#[test]
fn a_second_signal_during_verify_cancels_the_destinations_checksum() {
    let c = clusters();
    let table = "CREATE TABLE checksum_cancelled (id int8 PRIMARY KEY, v text);";
    let src = database(
        &c.source,
        &format!(
            "{table} INSERT INTO checksum_cancelled SELECT g, 'v' FROM generate_series(1, 500) g;"
        ),
    );
    let d1 = database(&c.dest[0], table);
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&d1));
    let args = [
        "table",
        "checksum_cancelled",
        "--verify",
        "--from",
        &from,
        "--to",
        &to,
    ];
    let mut paused = Paused::start(&args, "committed:1");
    let mut holder = c.dest[0].connect(&d1);
    holder
        .batch_execute("BEGIN; LOCK TABLE checksum_cancelled IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    fs::remove_file(&paused.file.0).unwrap();
    wait_for_query(&c.dest[0], &d1, "%checksum_cancelled%");
    signal(&paused.child, "INT");
    signal(&paused.child, "INT");
    let status = wait_bounded(&mut paused.child);
    assert_ne!(status.code(), Some(0));
    let log = c.dest[0].log_file().to_owned();
    let deadline = Instant::now() + Duration::from_secs(10);
    let cancelled = loop {
        let text = String::from_utf8_lossy(&fs::read(&log).unwrap()).into_owned();
        let lines: Vec<&str> = text.lines().collect();
        let found = lines.windows(2).any(|w| {
            w[0].contains("canceling statement due to user request")
                && w[1].contains("STATEMENT")
                && w[1].contains("checksum_cancelled")
        });
        if found || Instant::now() > deadline {
            break found;
        }
        thread::sleep(Duration::from_millis(100));
    };
    holder.batch_execute("ROLLBACK").unwrap();
    assert!(cancelled, "the checksum was not cancelled");
    assert_eq!(count(&c.dest[0], &d1, "checksum_cancelled"), 500);
}

/// A destination whose network path freezes once copyman sent it the end of its data (its COPY
/// still ending: a statement trigger takes its time): one SIGTERM gives its wait up after the
/// interrupt's grace, as while streaming, and the run exits 143, nothing committed anywhere
/// (inside its transaction the COPY's answer commits nothing). It waited for that answer for
/// ever, "still stopping" every 10 s, until a second signal.
#[test]
fn a_destination_frozen_at_the_end_of_its_copy_is_given_up_after_one_signal() {
    use copyman_testkit::proxy::{Direction, Fault, Proxy};
    let c = clusters();
    let table = "CREATE TABLE t (id int8 PRIMARY KEY, v text);";
    let src = database(
        &c.source,
        &format!("{table} INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 1000) g;"),
    );
    let d1 = database(&c.dest[0], table);
    let d2 = database(
        &c.dest[1],
        &format!(
            "{table}
             CREATE FUNCTION slow_end() RETURNS trigger LANGUAGE plpgsql AS
               $$ BEGIN PERFORM pg_sleep(8); RETURN NULL; END $$;
             CREATE TRIGGER slow_end AFTER INSERT ON t FOR EACH STATEMENT
               EXECUTE FUNCTION slow_end();"
        ),
    );
    let proxy = Proxy::for_cluster(&c.dest[1]);
    let mut child = copyman()
        .args(["table", "t", "--from", &c.source.conninfo(&src)])
        .args(["--to", &c.dest[0].conninfo(&d1)])
        .args(["--to", &proxy.conninfo(&c.dest[1], &d2), "--quiet"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Its COPY is ending (the trigger sleeps): the path freezes, then one signal.
    let mut admin = c.dest[1].connect("postgres");
    let deadline = Instant::now() + Duration::from_secs(30);
    while admin
        .query(
            "SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND wait_event = 'PgSleep'",
            &[&d2],
        )
        .unwrap()
        .is_empty()
    {
        assert!(Instant::now() < deadline, "the COPY never reached its end");
        thread::sleep(Duration::from_millis(20));
    }
    proxy.set(Direction::ClientToServer, Fault::Stall);
    proxy.set(Direction::ServerToClient, Fault::Stall);
    signal(&child, "TERM");
    let status = wait_bounded(&mut child);
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(143), "{stderr}");
    assert!(stderr.contains("nothing committed"), "{stderr}");
    proxy.set(Direction::ClientToServer, Fault::Pass);
    proxy.set(Direction::ServerToClient, Fault::Pass);
    assert_eq!(count(&c.dest[0], &d1, "t"), 0);
    assert!(settle_backends(&c.dest[1], &d2).is_empty());
    assert_eq!(count(&c.dest[1], &d2, "t"), 0);
}

/// A signal that exits at once while a resume plans (a second Ctrl-C, or SIGQUIT) does not say
/// "nothing was committed": the table an earlier run committed stays committed, and the words
/// (stderr and `--json`'s error, all a script reads) say this run committed nothing (resume38
/// F1).
#[test]
fn exiting_at_once_while_a_resume_plans_says_this_run_committed_nothing() {
    let c = clusters();
    let schema = "CREATE TABLE a (id int); CREATE TABLE b (id int);";
    let src = database(
        &c.source,
        &format!("{schema} INSERT INTO a VALUES (1); INSERT INTO b VALUES (2);"),
    );
    let d1 = database(&c.dest[0], schema);
    let state = TempPath::new("quit.state");
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&d1));
    let args = [
        "table",
        "a",
        "b",
        "--from",
        &from,
        "--to",
        &to,
        "--state",
        state.arg(),
        "--jobs",
        "1",
    ];
    Paused::start(&args, "committed:1").kill();
    let held = count(&c.dest[0], &d1, "a") + count(&c.dest[0], &d1, "b");
    assert_eq!(held, 1, "the first table committed");
    let mut resume = args.to_vec();
    resume.extend(["--resume", "--json"]);
    let mut paused = Paused::start(&resume, "planning:1");
    let stderr = StderrLines::take(&mut paused.child);
    signal(&paused.child, "QUIT");
    let status = wait_bounded(&mut paused.child);
    let said = stderr.rest();
    assert_eq!(status.code(), Some(131), "{said}");
    assert!(
        !said.contains("nothing was committed")
            && said.contains("this run committed nothing")
            && said.contains("what earlier runs of the job committed stays committed"),
        "{said}"
    );
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut paused.child.stdout.take().unwrap(), &mut stdout).unwrap();
    let report: serde_json::Value = serde_json::from_str(&stdout).expect(&stdout);
    let error = report["error"].as_str().unwrap_or_default();
    assert!(error.contains("this run committed nothing"), "{report}");
    let held = count(&c.dest[0], &d1, "a") + count(&c.dest[0], &d1, "b");
    assert_eq!(held, 1, "what the first run committed stays");
}

/// A job that exits at once (a second signal) once a table's COMMIT on destination 1 was
/// answered, before destination 2's, says that table committed there — not "in doubt (COMMIT
/// sent, not answered)" and "committed: none" (sweep58 F3: the test hook paused the job before it
/// knew the answer; a stop in that moment said the same). Alike for the tables of a unit
/// (linked by foreign keys, one transaction: recheck59 F1, one said committed, the other in
/// doubt).
#[test]
fn a_job_exiting_at_once_after_an_answered_commit_says_it_committed() {
    let c = clusters();
    for unit in [false, true] {
        let schema = "CREATE TABLE a (id int PRIMARY KEY); \
                      CREATE TABLE b (id int REFERENCES a (id));";
        let src = database(
            &c.source,
            &format!(
                "{schema} INSERT INTO a SELECT generate_series(1, 100); \
                 INSERT INTO b SELECT generate_series(1, 50);"
            ),
        );
        let d1 = database(&c.dest[0], schema);
        let d2 = database(&c.dest[1], schema);
        let state = TempPath::new("answered.state");
        let (from, to1, to2) = (
            c.source.conninfo(&src),
            c.dest[0].conninfo(&d1),
            c.dest[1].conninfo(&d2),
        );
        let mut args = vec!["table", "a"];
        // Emptied first, a and b are copied as one unit.
        args.extend(if unit {
            &["b", "--truncate"][..]
        } else {
            &[][..]
        });
        args.extend(["--from", &from, "--to", &to1, "--to", &to2]);
        args.extend(["--state", state.arg(), "--jobs", "1"]);
        let mut paused = Paused::start(&args, "committed:1");
        let mut stderr = StderrLines::take(&mut paused.child);
        signal(&paused.child, "INT");
        stderr.expect("SIGINT received");
        signal(&paused.child, "INT");
        let status = wait_bounded(&mut paused.child);
        let said = stderr.rest();
        assert_eq!(status.code(), Some(4), "{said}");
        assert_eq!(count(&c.dest[0], &d1, "a"), 100);
        assert!(
            !said.contains("committed: none") && !said.contains("not answered"),
            "unit {unit}: {said}"
        );
        let committed = if unit {
            "committed: \"public\".\"a\" on destination 1, \"public\".\"b\" on destination 1"
        } else {
            "committed: \"public\".\"a\" on destination 1"
        };
        assert!(said.contains(committed), "unit {unit}: {said}");
    }
}
