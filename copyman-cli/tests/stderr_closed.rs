//! A stderr nobody reads (`copyman … 2>&1 | head`: the reader gone, every write fails with
//! EPIPE) changes nothing of what copyman does: a run commits everywhere or nowhere as it would
//! have, exits with the status it would have (never 101, a panic, half-way through the
//! COMMITs), still answers signals, `copyman recover` still finishes its work, and `--json`
//! still tells the truth on stdout.
//!
//! Each run here gets, as its stderr, a pipe whose read end was closed before copyman started.

mod common;

use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use copyman_testkit::Cluster;

const TABLE: &str = "CREATE TABLE t (id int8 PRIMARY KEY, name text)";

/// The source: table `t` with 3000 rows.
fn source() -> String {
    database(
        &two_phase_clusters().source,
        &format!("{TABLE}; INSERT INTO t SELECT g, 'row ' || g FROM generate_series(1, 3000) AS g"),
    )
}

/// Three destinations with an empty `t` (the third on the first destination cluster, in a
/// database of its own); `setup` run in each.
fn destinations(setup: &str) -> Vec<(&'static Cluster, String)> {
    let c = two_phase_clusters();
    [&c.dest[0], &c.dest[1], &c.dest[0]]
        .into_iter()
        .map(|cluster| (cluster, database(cluster, &format!("{TABLE}; {setup}"))))
        .collect()
}

/// `table t --from SRC --to D…` and then `extra`.
fn table_args(src: &str, dests: &[(&Cluster, String)], extra: &[&str]) -> Vec<String> {
    let mut args = vec![
        "table".to_owned(),
        "t".to_owned(),
        "--from".to_owned(),
        two_phase_clusters().source.url(src),
    ];
    for (cluster, db) in dests {
        args.push("--to".to_owned());
        args.push(cluster.url(db));
    }
    args.extend(extra.iter().map(|&a| a.to_owned()));
    args
}

/// `cmd` started with stderr a pipe whose read end is already closed, and stdout piped.
fn spawn_with_stderr_closed(mut cmd: Command) -> Child {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    cmd.stdout(Stdio::piped())
        .stderr(writer)
        .spawn()
        .expect("spawn copyman")
}

/// `copyman ARGS` with stderr closed, to its end.
fn run_with_stderr_closed(args: &[String]) -> Output {
    let mut cmd = copyman();
    cmd.args(args);
    spawn_with_stderr_closed(cmd)
        .wait_with_output()
        .expect("copyman output")
}

#[track_caller]
fn assert_status(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "exit status (101 is a panic)\n--- stdout\n{}",
        text(&out.stdout)
    );
}

/// Every destination holds exactly the source's rows.
#[track_caller]
fn assert_copied(src: &str, dests: &[(&Cluster, String)]) {
    let expected = digest(&two_phase_clusters().source, src, "t");
    assert_eq!(expected.0, 3000);
    for (cluster, db) in dests {
        assert_eq!(digest(cluster, db, "t"), expected, "destination {db}");
    }
}

/// No prepared transaction is left in the test's destination databases (those of the other
/// tests, which run beside it, may hold theirs a while: a job stopped during its commits).
#[track_caller]
fn assert_no_prepared<'a>(dests: impl IntoIterator<Item = (&'a Cluster, &'a str)>) {
    for (cluster, db) in dests {
        assert_eq!(prepared_in(cluster, db), Vec::<String>::new(), "{db}");
    }
}

#[test]
fn a_verbose_run_to_three_destinations_with_stderr_closed_commits_everywhere_and_exits_0() {
    let src = source();
    let dests = destinations("");
    let out = run_with_stderr_closed(&table_args(&src, &dests, &["-v", "--progress"]));
    assert_status(&out, 0);
    assert_copied(&src, &dests);
}

#[test]
fn an_atomic_verbose_run_with_stderr_closed_commits_everywhere_and_leaves_nothing_prepared() {
    let src = source();
    let dests = destinations("");
    let log = TempPath::new("decisions.log");
    let out = run_with_stderr_closed(&table_args(
        &src,
        &dests,
        &["-v", "--atomic", "--decision-log", log.arg()],
    ));
    assert_status(&out, 0);
    assert_copied(&src, &dests);
    assert_no_prepared(dests.iter().map(|(c, d)| (*c, d.as_str())));
}

#[test]
fn a_failing_run_with_stderr_closed_exits_1_and_commits_nothing_anywhere() {
    let src = source();
    // The third destination already holds row 1: a duplicate key there fails the copy.
    let dests = destinations("");
    let (third, db) = &dests[2];
    third
        .connect(db)
        .batch_execute("INSERT INTO t VALUES (1, 'already here')")
        .unwrap();
    let third_before = digest(third, db, "t");
    for atomic in [false, true] {
        let log = TempPath::new("decisions.log");
        let mut extra = vec!["-v"];
        if atomic {
            extra.extend(["--atomic", "--decision-log", log.arg()]);
        }
        let out = run_with_stderr_closed(&table_args(&src, &dests, &extra));
        assert_status(&out, 1);
        assert_eq!(count(dests[0].0, &dests[0].1, "t"), 0, "atomic: {atomic}");
        assert_eq!(count(dests[1].0, &dests[1].1, "t"), 0, "atomic: {atomic}");
        assert_eq!(digest(third, db, "t"), third_before, "atomic: {atomic}");
        assert_no_prepared(dests.iter().map(|(c, d)| (*c, d.as_str())));
    }
}

/// Waits (bounded: a hang fails the test, it does not hang it) for `child` to end, sending it
/// SIGTERM every 100 ms meanwhile.
fn terminate(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("copyman ignored SIGTERM with stderr closed (its signals thread died)");
        }
        signal(child, "TERM");
        thread::sleep(Duration::from_millis(100));
    }
}

/// A run held before its COMMITs cannot end by itself: only the second SIGTERM ends it, and
/// only if the first one's message (on a closed stderr) left the signals thread alive.
#[test]
fn sigterm_still_ends_a_paused_run_with_stderr_closed_exiting_143_with_nothing_committed() {
    let src = source();
    let dests = destinations("");
    let pause = TempPath::new("pause");
    let mut cmd = copyman();
    cmd.args(table_args(&src, &dests, &["-v"]))
        .env("COPYMAN_TEST_PAUSE", format!("checked:1@{}", pause.arg()));
    let mut child = spawn_with_stderr_closed(cmd);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !pause.0.exists() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("copyman ended ({status}) before pausing");
        }
        assert!(Instant::now() < deadline, "copyman never paused");
        thread::sleep(Duration::from_millis(20));
    }
    let status = terminate(&mut child);
    assert_eq!(status.code(), Some(143), "{status}");
    for (cluster, db) in &dests {
        assert_eq!(count(cluster, db, "t"), 0, "destination {db}");
        assert_eq!(settle_backends(cluster, db), Vec::<String>::new());
    }
}

#[test]
fn recover_with_stderr_closed_commits_what_was_decided_and_exits_0() {
    let src = source();
    let dests = destinations("");
    let log = TempPath::new("decisions.log");
    let copy = table_args(&src, &dests, &["--atomic", "--decision-log", log.arg()]);
    let copy: Vec<&str> = copy.iter().map(String::as_str).collect();
    // Prepared everywhere and the commit decided and recorded: then copyman dies.
    Paused::start(&copy, "recorded").kill();
    assert!(!prepared_xacts(dests[0].0).is_empty());
    let mut recover = vec!["-v".to_owned(), "recover".to_owned()];
    for (cluster, db) in &dests {
        recover.push("--to".to_owned());
        recover.push(cluster.url(db));
    }
    recover.extend(["--decision-log".to_owned(), log.arg().to_owned()]);
    let out = run_with_stderr_closed(&recover);
    assert_status(&out, 0);
    assert_copied(&src, &dests);
    assert_no_prepared(dests.iter().map(|(c, d)| (*c, d.as_str())));
}

#[test]
fn json_with_stderr_closed_still_prints_the_true_status_on_stdout() {
    let src = source();
    let dests = destinations("");
    let out = run_with_stderr_closed(&table_args(&src, &dests, &["-v", "--json"]));
    assert_status(&out, 0);
    let report = json(&out);
    assert_eq!(report["status"], "ok", "{report}");
    assert_eq!(report["exit_code"], 0, "{report}");
    assert_copied(&src, &dests);

    // A failed run: a destination without the table (a usage error: cli51 F2).
    let missing = database(&two_phase_clusters().dest[1], "SELECT 1");
    let mut failing = destinations("");
    failing[1].1 = missing;
    let out = run_with_stderr_closed(&table_args(&src, &failing, &["-v", "--json"]));
    assert_status(&out, 2);
    let report = json(&out);
    assert_eq!(report["status"], "failed", "{report}");
    assert_eq!(report["exit_code"], 2, "{report}");
    assert_eq!(count(failing[0].0, &failing[0].1, "t"), 0);
    assert_eq!(count(failing[2].0, &failing[2].1, "t"), 0);
}

#[test]
fn a_verbose_job_of_two_tables_with_stderr_closed_commits_both_and_exits_0() {
    let c = two_phase_clusters();
    let both = "CREATE TABLE a (id int8 PRIMARY KEY); CREATE TABLE b (id int8 PRIMARY KEY)";
    let src = database(
        &c.source,
        &format!(
            "{both}; INSERT INTO a SELECT generate_series(1, 2000); \
             INSERT INTO b SELECT generate_series(1, 500)"
        ),
    );
    let dests: Vec<String> = c.dest.iter().map(|d| database(d, both)).collect();
    let mut args = vec![
        "-v".to_owned(),
        "table".to_owned(),
        "a".to_owned(),
        "b".to_owned(),
        "--from".to_owned(),
        c.source.url(&src),
        "--progress".to_owned(),
    ];
    for (cluster, db) in c.dest.iter().zip(&dests) {
        args.push("--to".to_owned());
        args.push(cluster.url(db));
    }
    let out = run_with_stderr_closed(&args);
    assert_status(&out, 0);
    for (cluster, db) in c.dest.iter().zip(&dests) {
        assert_eq!(count(cluster, db, "a"), 2000);
        assert_eq!(count(cluster, db, "b"), 500);
    }
}

/// `copyman --json … 2>&1 | head -0`: the report cannot be written anywhere. The run's status
/// still stands (it used to become main's quiet 0 for a broken pipe: a failed copy exiting 0).
#[test]
fn a_failed_json_run_with_stdout_and_stderr_closed_still_exits_1() {
    let src = source();
    let dests = destinations("");
    let (first, db) = &dests[0];
    first
        .connect(db)
        .batch_execute("INSERT INTO t VALUES (1, 'already here')")
        .unwrap();
    let (out_reader, out_writer) = std::io::pipe().expect("a pipe");
    let (err_reader, err_writer) = std::io::pipe().expect("a pipe");
    drop((out_reader, err_reader));
    let status = copyman()
        .args(table_args(&src, &dests, &["--json"]))
        .stdout(out_writer)
        .stderr(err_writer)
        .status()
        .expect("run copyman");
    assert_eq!(status.code(), Some(1), "{status}");
    assert_eq!(count(first, db, "t"), 1);
    assert_eq!(count(dests[1].0, &dests[1].1, "t"), 0);
    assert_eq!(count(dests[2].0, &dests[2].1, "t"), 0);
}

/// A pseudo-terminal: its master end, and its slave end for copyman's stderr.
fn pty() -> (std::fs::File, std::os::fd::OwnedFd) {
    use std::os::fd::FromRawFd;
    let (mut master, mut slave) = (-1, -1);
    // SAFETY: openpty writes one descriptor through each of the two pointers, which point to
    // live `c_int`s of this frame; the name, termios and winsize pointers may be null.
    let opened = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(opened, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: openpty succeeded: both are open descriptors this process owns and nothing else
    // holds; each is given one owner here.
    unsafe {
        (
            std::fs::File::from_raw_fd(master),
            std::os::fd::OwnedFd::from_raw_fd(slave),
        )
    }
}

/// A job shows its bars on a terminal, which hangs up during the job's COMMITs (its master end
/// closed: every later write gets EIO), and SIGHUP follows, as when a terminal window closes.
/// The first SIGHUP's message, printed above the bars, must leave the signals thread alive:
/// the second exits at once, with 4 (a COMMIT PREPARED answered), and `copyman recover`
/// finishes the decided table everywhere.
#[test]
fn a_job_whose_terminal_hangs_up_during_its_commits_still_answers_sighup() {
    use std::io::Read;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let c = two_phase_clusters();
    let both = "CREATE TABLE a (id int8 PRIMARY KEY); CREATE TABLE b (id int8 PRIMARY KEY)";
    let src = database(
        &c.source,
        &format!(
            "{both}; INSERT INTO a SELECT generate_series(1, 2000); \
             INSERT INTO b SELECT generate_series(1, 500)"
        ),
    );
    let dests: Vec<String> = c.dest.iter().map(|d| database(d, both)).collect();
    let log = TempPath::new("decisions.log");
    let state = TempPath::new("state");
    let pause = TempPath::new("pause");
    let mut args = vec![
        "-v".to_owned(),
        "table".to_owned(),
        "a".to_owned(),
        "b".to_owned(),
        "--from".to_owned(),
        c.source.url(&src),
        "--atomic".to_owned(),
        "--decision-log".to_owned(),
        log.arg().to_owned(),
        "--state".to_owned(),
        state.arg().to_owned(),
        // One table at a time, largest first: `a` pauses, `b` has not begun.
        "--jobs".to_owned(),
        "1".to_owned(),
    ];
    let mut to = Vec::new();
    for (cluster, db) in c.dest.iter().zip(&dests) {
        to.push("--to".to_owned());
        to.push(cluster.url(db));
    }
    args.extend(to.iter().cloned());
    let (mut master, slave) = pty();
    let mut child = copyman()
        .args(&args)
        .env("TERM", "xterm")
        .env(
            "COPYMAN_TEST_PAUSE",
            format!("commit-prepared:1@{}", pause.arg()),
        )
        .stdout(Stdio::null())
        .stderr(slave)
        .spawn()
        .expect("spawn copyman");
    // The terminal is read (a full one would block copyman) until it hangs up.
    let hang_up = Arc::new(AtomicBool::new(false));
    let reader = {
        let hang_up = Arc::clone(&hang_up);
        thread::spawn(move || {
            let mut seen = Vec::new();
            let mut buf = [0; 4096];
            while !hang_up.load(Ordering::SeqCst) {
                match master.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                }
            }
            // Dropping the master end here hangs the terminal up.
            seen
        })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !pause.0.exists() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("copyman ended ({status}) before pausing");
        }
        assert!(Instant::now() < deadline, "copyman never paused");
        thread::sleep(Duration::from_millis(20));
    }
    // Paused after destination 1's COMMIT PREPARED of `a`, its bars up (their spinner ticks, so
    // the reader wakes up to see the hang-up).
    hang_up.store(true, Ordering::SeqCst);
    let seen = text(&reader.join().unwrap());
    assert!(
        seen.contains("job 1: \"public\".\"a\""),
        "the bars were drawn: {seen}"
    );
    // The pause is never lifted: only a signal ends the run.
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("copyman ignored SIGHUP after its terminal hung up (its signals thread died)");
        }
        signal(&child, "HUP");
        thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status.code(), Some(4), "{status} (101 is a panic)");
    // The decided table is finished everywhere by recover; `b` never began.
    let mut recover = vec!["recover".to_owned()];
    recover.extend(to);
    recover.extend(["--decision-log".to_owned(), log.arg().to_owned()]);
    let out = run_with_stderr_closed(&recover);
    assert_status(&out, 0);
    for (cluster, db) in c.dest.iter().zip(&dests) {
        assert_eq!(count(cluster, db, "a"), 2000, "{db}");
        assert_eq!(count(cluster, db, "b"), 0, "{db}");
    }
    assert_no_prepared(c.dest.iter().zip(&dests).map(|(c, d)| (c, d.as_str())));
}
