//! The source's side of the commit, and file endpoints, against real clusters: a `--send`
//! statement's transaction is checked before any destination commits (with `--atomic` too), a
//! source that wrote nothing cannot make a run partial; a truncated binary file, a file named
//! twice and a symlink destination.

mod common;

use std::process::Stdio;
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use copyman_testkit::Cluster;

const MV: &str = "CREATE TABLE mv (id int PRIMARY KEY, v text);";
const FILL: &str = "INSERT INTO mv SELECT g, 'v' || g FROM generate_series(1, 1000) AS g;";
const MOVE: &str = "COPY (DELETE FROM mv RETURNING *) TO STDOUT";
const RECEIVE: &str = "COPY mv FROM STDIN";

/// A source whose `DELETE` breaks a deferred foreign key (a child row references id 5): the
/// failure comes only when the source's constraints are checked.
fn source_with_deferred_child(s: &Clusters) -> String {
    database(
        &s.source,
        &format!(
            "{MV} {FILL} CREATE TABLE ch (id int REFERENCES mv DEFERRABLE INITIALLY DEFERRED);
             INSERT INTO ch VALUES (5);"
        ),
    )
}

fn empty_destinations(s: &Clusters, extra: &str) -> [String; 2] {
    [
        database(&s.dest[0], &format!("{MV} {extra}")),
        database(&s.dest[1], MV),
    ]
}

#[track_caller]
fn assert_nothing_committed(s: &Clusters, dbs: &[String; 2]) {
    for (cluster, db) in s.dest.iter().zip(dbs) {
        assert_eq!(count(cluster, db, "mv"), 0, "destination {db} committed");
        assert_eq!(prepared_in(cluster, db), Vec::<String>::new());
    }
}

fn move_args(s: &Clusters, src_url: &str, dbs: &[String; 2], extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = ["copy", "--from", src_url, "--send", MOVE]
        .map(str::to_owned)
        .to_vec();
    for (cluster, db) in s.dest.iter().zip(dbs) {
        args.extend(["--to".to_owned(), cluster.url(db)]);
    }
    args.extend(["--receive".to_owned(), RECEIVE.to_owned()]);
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    args
}

fn run_owned(args: &[String]) -> std::process::Output {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run(&args)
}

/// Point 1: a deferred constraint on the source fails the move before any destination commits.
#[test]
fn a_source_whose_deferred_constraint_fails_commits_nothing_anywhere() {
    let s = two_phase_clusters();
    let src = source_with_deferred_child(s);
    let dbs = empty_destinations(s, "");
    let out = run_owned(&move_args(s, &s.source.url(&src), &dbs, &[]));
    let stderr = text(&out.stderr);
    assert_exit(&out, 1);
    assert!(stderr.contains("23503"), "{stderr}");
    assert!(stderr.contains("nothing committed"), "{stderr}");
    assert!(!stderr.contains("PARTIAL"), "{stderr}");
    assert_nothing_committed(s, &dbs);
    assert_eq!(
        count(&s.source, &src, "mv"),
        1000,
        "the source keeps its rows"
    );
    // --json names the source and its SQLSTATE (they were null).
    let dbs = empty_destinations(s, "");
    let out = run_owned(&move_args(s, &s.source.url(&src), &dbs, &["--json"]));
    assert_exit(&out, 1);
    let report = json(&out);
    assert_eq!(report["server"], "source", "{report}");
    assert_eq!(report["sqlstate"], "23503", "{report}");
}

/// Point 1 under `--atomic`: the source is checked before the decision is recorded.
#[test]
fn atomic_a_source_whose_deferred_constraint_fails_commits_nothing_anywhere() {
    let s = two_phase_clusters();
    let src = source_with_deferred_child(s);
    let dbs = empty_destinations(s, "");
    let log = TempPath::new("decisions.log");
    let out = run_owned(&move_args(
        s,
        &s.source.url(&src),
        &dbs,
        &["--atomic", "--decision-log", log.arg()],
    ));
    let stderr = text(&out.stderr);
    assert_exit(&out, 1);
    assert!(stderr.contains("23503"), "{stderr}");
    assert!(stderr.contains("nothing committed"), "{stderr}");
    assert_nothing_committed(s, &dbs);
    assert_eq!(prepared_in(&s.source, &src), Vec::<String>::new());
    assert_eq!(
        count(&s.source, &src, "mv"),
        1000,
        "the source keeps its rows"
    );
    let decisions = std::fs::read_to_string(&log.0).unwrap_or_default();
    // No `commit` line: the run's start (with its parties), its own rollback (`abort RUN`,
    // before its ROLLBACK PREPAREDs) and its end (`done RUN`: nothing left prepared).
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

/// Destination 1's deferred constraint check waits (one row's trigger) for an advisory lock the
/// test holds ([`run_losing_the_source`]): the copy's end is held there as long as the test
/// wants, whatever the machine's load.
const GATED_CHECK: &str = "CREATE FUNCTION gate() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN IF NEW.id = 1 THEN PERFORM pg_advisory_xact_lock_shared(4242); END IF;
        RETURN NULL; END $$;
    CREATE CONSTRAINT TRIGGER gate AFTER INSERT ON mv DEFERRABLE INITIALLY DEFERRED
        FOR EACH ROW EXECUTE FUNCTION gate();";

/// Runs copyman with `args` (destination 1 in database `d1`, made with [`GATED_CHECK`]) and
/// ends the source's session (database `src`) on the server while destination 1's check waits
/// at the gate: the copy is over then, the source idle in its transaction, nothing committed.
/// The gate opens once the source's backend is gone. copyman's output.
fn run_losing_the_source(
    s: &Clusters,
    src: &str,
    d1: &str,
    args: &[String],
) -> std::process::Output {
    let mut gate = s.dest[0].connect(d1);
    gate.execute("SELECT pg_advisory_lock(4242)", &[]).unwrap();
    let mut child = copyman()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn copyman");
    let mut admin = s.source.connect("postgres");
    let mut watch = s.dest[0].connect("postgres");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut waiting = || -> i64 {
        watch
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 \
                 AND wait_event_type = 'Lock' AND wait_event = 'advisory'",
                &[&d1],
            )
            .unwrap()
            .get(0)
    };
    while waiting() == 0 {
        if child.try_wait().unwrap().is_some() || Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "destination 1's check never reached the gate\n--- stderr\n{}",
                text(&out.stderr)
            );
        }
        thread::sleep(Duration::from_millis(20));
    }
    // (In the select list, so that only the rows the WHERE keeps are terminated.)
    let ended: Vec<bool> = admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 \
             AND state = 'idle in transaction'",
            &[&src],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        ended,
        [true],
        "the source's session, idle in its transaction"
    );
    // Gone before the gate opens: copyman then finds it ended, however fast it goes on.
    while admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&src],
        )
        .unwrap()
        .get::<_, i64>(0)
        > 0
    {
        assert!(Instant::now() < deadline, "the source's backend never went");
        thread::sleep(Duration::from_millis(20));
    }
    gate.execute("SELECT pg_advisory_unlock(4242)", &[])
        .unwrap();
    child.wait_with_output().expect("copyman output")
}

/// Point 1: a source session the server ended before the destinations' COMMIT (57P01) fails
/// the move: every destination rolls back.
#[test]
fn a_source_lost_before_the_destinations_commit_commits_nothing_anywhere() {
    let s = two_phase_clusters();
    let src = database(&s.source, &format!("{MV} {FILL}"));
    let dbs = empty_destinations(s, GATED_CHECK);
    let args = move_args(s, &s.source.url(&src), &dbs, &[]);
    let out = run_losing_the_source(s, &src, &dbs[0], &args);
    let stderr = text(&out.stderr);
    assert_exit(&out, 1);
    assert!(stderr.contains("57P01"), "{stderr}");
    assert!(stderr.contains("nothing committed"), "{stderr}");
    assert_nothing_committed(s, &dbs);
    assert_eq!(
        count(&s.source, &src, "mv"),
        1000,
        "the source keeps its rows"
    );
}

/// Point 1 under `--atomic`: the source lost before the decision rolls every prepared
/// destination back; no decision is recorded, no prepared transaction is left.
#[test]
fn atomic_a_source_lost_before_the_decision_commits_nothing_anywhere() {
    let s = two_phase_clusters();
    let src = database(&s.source, &format!("{MV} {FILL}"));
    let dbs = empty_destinations(s, GATED_CHECK);
    let log = TempPath::new("decisions.log");
    let args = move_args(
        s,
        &s.source.url(&src),
        &dbs,
        &["--atomic", "--decision-log", log.arg()],
    );
    let out = run_losing_the_source(s, &src, &dbs[0], &args);
    let stderr = text(&out.stderr);
    assert_exit(&out, 1);
    assert!(stderr.contains("57P01"), "{stderr}");
    assert_nothing_committed(s, &dbs);
    assert_eq!(
        count(&s.source, &src, "mv"),
        1000,
        "the source keeps its rows"
    );
    let decisions = std::fs::read_to_string(&log.0).unwrap_or_default();
    // No `commit` line: the run's start (with its parties), its own rollback (`abort RUN`,
    // before its ROLLBACK PREPAREDs) and its end (`done RUN`: nothing left prepared).
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

/// Point 1: a read-only `--send` whose source is lost after the copy changed nothing by
/// failing to commit: every destination holds the source's rows, exit 0, not PARTIAL.
#[test]
fn a_read_only_source_lost_before_its_commit_is_not_partial() {
    let s = two_phase_clusters();
    let src = database(&s.source, &format!("{MV} {FILL}"));
    let dbs = empty_destinations(s, GATED_CHECK);
    let mut args = move_args(s, &s.source.url(&src), &dbs, &[]);
    args[4] = "COPY mv TO STDOUT".to_owned();
    let out = run_losing_the_source(s, &src, &dbs[0], &args);
    let stderr = text(&out.stderr);
    assert_exit(&out, 0);
    assert!(!stderr.contains("PARTIAL"), "{stderr}");
    assert!(stderr.contains("wrote nothing"), "{stderr}");
    let expected = digest(&s.source, &src, "mv");
    for (cluster, db) in s.dest.iter().zip(&dbs) {
        assert_eq!(digest(cluster, db, "mv"), expected);
    }
}

/// Point 1: a moving source that stays alive still commits after every destination (the check
/// adds no failure of its own).
#[test]
fn a_move_still_commits_everywhere() {
    let s = two_phase_clusters();
    let src = database(&s.source, &format!("{MV} {FILL}"));
    let expected = digest(&s.source, &src, "mv");
    let dbs = empty_destinations(s, "");
    let out = run_owned(&move_args(s, &s.source.url(&src), &dbs, &[]));
    assert_exit(&out, 0);
    assert_eq!(count(&s.source, &src, "mv"), 0, "moved");
    for (cluster, db) in s.dest.iter().zip(&dbs) {
        assert_eq!(digest(cluster, db, "mv"), expected);
    }
}

/// `mv`'s 1000 rows as a binary COPY file, as the server writes it.
fn binary_file(s: &Clusters, name: &str) -> (TempPath, (i64, String)) {
    use std::io::Read;
    let src = database(&s.source, &format!("{MV} {FILL}"));
    let mut data = Vec::new();
    s.source
        .connect(&src)
        .copy_out("COPY mv TO STDOUT (FORMAT binary)")
        .expect("COPY TO STDOUT")
        .read_to_end(&mut data)
        .expect("read the binary COPY");
    assert_eq!(&data[data.len() - 2..], b"\xff\xff", "the trailer");
    let file = TempPath::new(name);
    std::fs::write(&file.0, &data).unwrap();
    (file, digest(&s.source, &src, "mv"))
}

fn load_args<'a>(file: &'a str, urls: &'a [String]) -> Vec<&'a str> {
    let mut args = vec!["copy", "--from", file];
    for url in urls {
        args.extend(["--to", url]);
    }
    args.extend(["--receive", "COPY mv FROM STDIN (FORMAT binary)"]);
    args
}

/// Point 2: a binary COPY file cut at a tuple boundary (its `-1` trailer gone) is refused, not
/// loaded short; a whole one with a corrupt tuple is said corrupt.
#[test]
fn a_truncated_or_corrupt_binary_file_is_refused_and_nothing_commits() {
    let s = two_phase_clusters();
    let (file, expected) = binary_file(s, "mv.bin");
    let dbs = empty_destinations(s, "");
    let urls: Vec<String> = s.dest.iter().zip(&dbs).map(|(c, d)| c.url(d)).collect();

    // Whole, it loads every row.
    let out = run(&load_args(file.arg(), &urls));
    assert_exit(&out, 0);
    for (cluster, db) in s.dest.iter().zip(&dbs) {
        assert_eq!(digest(cluster, db, "mv"), expected);
    }

    // Cut before the trailer: every row it has is whole, and none is loaded.
    let dbs = empty_destinations(s, "");
    let urls: Vec<String> = s.dest.iter().zip(&dbs).map(|(c, d)| c.url(d)).collect();
    let data = std::fs::read(&file.0).unwrap();
    std::fs::write(&file.0, &data[..data.len() - 2]).unwrap();
    let out = run(&load_args(file.arg(), &urls));
    let stderr = text(&out.stderr);
    assert_exit(&out, 1);
    assert!(
        stderr.contains("ends without binary COPY's end marker (after 1,000 rows): truncated?"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing committed"), "{stderr}");
    assert_nothing_committed(s, &dbs);

    // Whole, but its first tuple says a field more than it has: corrupt, not cut short (files48
    // F4: "truncated?" of a whole file).
    let dbs = empty_destinations(s, "");
    let urls: Vec<String> = s.dest.iter().zip(&dbs).map(|(c, d)| c.url(d)).collect();
    let mut corrupt = data.clone();
    let fields = u16::from_be_bytes([corrupt[19], corrupt[20]]);
    corrupt[19..21].copy_from_slice(&(fields + 1).to_be_bytes());
    std::fs::write(&file.0, &corrupt).unwrap();
    let out = run(&load_args(file.arg(), &urls));
    let stderr = text(&out.stderr);
    assert_exit(&out, 1);
    assert!(
        stderr.contains("ends in the bytes of binary COPY's end marker, but its tuples do not read up to it (after 0 rows read whole")
            && stderr.contains("the file is corrupt")
            && !stderr.contains("truncated?"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing committed"), "{stderr}");
    assert_nothing_committed(s, &dbs);
}

/// `copyman copy` of `mv`'s 1000 rows to `to`, run in `dir`.
fn copy_to_files(s: &Clusters, src: &str, dir: &TempDir, to: &[&str]) -> std::process::Output {
    let url = s.source.url(src);
    let mut args = vec!["copy", "--from", &url, "--send", "COPY mv TO STDOUT"];
    for t in to {
        args.extend(["--to", t]);
    }
    copyman()
        .args(&args)
        .current_dir(&dir.0)
        .output()
        .expect("run copyman")
}

/// Point 3: one file given twice by different paths (or through a link) is a usage error, as a
/// server given twice is; nothing is written.
#[test]
fn the_same_file_given_twice_is_refused() {
    let s = two_phase_clusters();
    let src = database(&s.source, &format!("{MV} {FILL}"));
    let dir = TempDir::new("twice");
    let absolute = dir.path("same.txt");
    let out = copy_to_files(s, &src, &dir, &["./same.txt", &absolute]);
    let stderr = text(&out.stderr);
    assert_exit(&out, 2);
    assert!(stderr.contains("are the same file"), "{stderr}");
    assert_eq!(dir.list(), Vec::<String>::new(), "nothing written");

    // A link to it is the same file too.
    std::os::unix::fs::symlink("same.txt", dir.0.join("link.txt")).unwrap();
    let out = copy_to_files(s, &src, &dir, &["link.txt", &absolute]);
    assert_exit(&out, 2);
    assert_eq!(dir.list(), vec!["link.txt"], "nothing written");

    // Different files in one directory are fine.
    let out = copy_to_files(s, &src, &dir, &["a.txt", "b.txt"]);
    assert_exit(&out, 0);
    assert_eq!(dir.list(), vec!["a.txt", "b.txt", "link.txt"]);

    // A hard link is another name of the same file (found by a tester: both written, the link
    // split in two).
    std::fs::hard_link(dir.0.join("a.txt"), dir.0.join("hard.txt")).unwrap();
    let out = copy_to_files(s, &src, &dir, &["a.txt", "hard.txt"]);
    assert_exit(&out, 2);
    assert!(text(&out.stderr).contains("are the same file"));
}

/// Point 4: a symlink destination is written through to its target (the rename happens beside
/// the target), and stays a link.
#[test]
fn a_symlink_destination_writes_its_target() {
    let s = two_phase_clusters();
    let src = database(&s.source, &format!("{MV} {FILL}"));
    let dir = TempDir::new("link");
    std::fs::create_dir(dir.0.join("sub")).unwrap();
    std::fs::write(dir.0.join("sub/target.txt"), "old\n").unwrap();
    std::os::unix::fs::symlink("sub/target.txt", dir.0.join("link.txt")).unwrap();
    let out = copy_to_files(s, &src, &dir, &["./link.txt"]);
    assert_exit(&out, 0);

    let link = std::fs::symlink_metadata(dir.0.join("link.txt")).unwrap();
    assert!(link.file_type().is_symlink(), "the link stays a link");
    let written = std::fs::read_to_string(dir.0.join("sub/target.txt")).unwrap();
    assert_eq!(written.lines().count(), 1000);
    assert!(written.starts_with("1\tv1\n"), "{}", &written[..20]);
    assert_eq!(
        dir.list(),
        vec!["link.txt", "sub"],
        "no temporary file left"
    );
    let sub: Vec<_> = std::fs::read_dir(dir.0.join("sub")).unwrap().collect();
    assert_eq!(sub.len(), 1, "no temporary file left beside the target");

    // A dangling link creates its target.
    std::os::unix::fs::symlink("new.txt", dir.0.join("dangling.txt")).unwrap();
    let out = copy_to_files(s, &src, &dir, &["dangling.txt"]);
    assert_exit(&out, 0);
    assert!(
        std::fs::symlink_metadata(dir.0.join("dangling.txt"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        std::fs::read_to_string(dir.0.join("new.txt")).unwrap(),
        written
    );
}

/// Point 5: stdout has no rollback: when a server destination fails, what already went down
/// the pipe is said to be out, not rolled back silently. What was still buffered does not go
/// out after the failure: a copy small enough to be buffered whole sends no row — only the line
/// that fails a COPY reading it, an empty stream being an empty table (files67 F16).
#[test]
fn stdout_says_what_went_out_when_the_copy_fails() {
    let s = two_phase_clusters();
    let checked = "CREATE TABLE mv (id int PRIMARY KEY CHECK (id < 500), v text)";
    let copy = |src: &str, url: &str| {
        run(&[
            "copy",
            "--from",
            &s.source.url(src),
            "--send",
            "COPY mv TO STDOUT",
            "--to",
            "-",
            "--to",
            url,
            "--receive",
            RECEIVE,
        ])
    };
    let small = database(&s.source, &format!("{MV} {FILL}"));
    let d0 = database(&s.dest[0], checked);
    let out = copy(&small, &s.dest[0].url(&d0));
    assert_exit(&out, 1);
    assert!(
        out.stdout.starts_with(b"\\.copyman: the copy failed here"),
        "no row went out on stdout: {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        text(&out.stderr).contains("no data went out before the run failed"),
        "{}",
        text(&out.stderr)
    );

    // About 1 MB, the failure at its middle: the first chunks went out.
    let src = database(
        &s.source,
        &format!(
            "{MV} INSERT INTO mv SELECT g, repeat('v', 1000) FROM generate_series(1, 1000) g;"
        ),
    );
    let d1 = database(&s.dest[0], checked);
    let url = s.dest[0].url(&d1);
    let out = copy(&src, &url);
    let stderr = text(&out.stderr);
    assert_exit(&out, 1);
    assert!(!out.stdout.is_empty(), "rows went out on stdout");
    assert!(stderr.contains("23514"), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.trim_end().contains(" -: "))
        .unwrap_or_else(|| panic!("no line for stdout:\n{stderr}"));
    assert!(
        line.contains("went out before the run failed and cannot be taken back"),
        "{stderr}"
    );
    // Said as sent, never as rolled back; the headline says the servers hold nothing.
    assert!(line.trim_start().starts_with("sent"), "{stderr}");
    assert!(
        stderr.contains("nothing committed on any server, but data went out to stdout"),
        "{stderr}"
    );
    assert_eq!(count(&s.dest[0], &d1, "mv"), 0);
}

/// Point 1 under `--atomic`, where the source allows prepared transactions: the moving source is
/// a participant. Killed right after the decision was recorded, copyman leaves the source and
/// every destination prepared, and `copyman recover` given all of them commits all of them: the
/// rows end up moved, never on both sides.
#[test]
fn atomic_a_moving_source_is_prepared_with_the_destinations_and_recovered_with_them() {
    let s = two_phase_clusters();
    let src = database(&s.source, &format!("{MV} {FILL}"));
    let expected = digest(&s.source, &src, "mv");
    let dbs = empty_destinations(s, "");
    let log = TempPath::new("decisions.log");
    let atomic = ["--atomic", "--decision-log", log.arg()];

    // Straight through: moved.
    let out = run_owned(&move_args(s, &s.source.url(&src), &dbs, &atomic));
    assert_exit(&out, 0);
    assert_eq!(count(&s.source, &src, "mv"), 0, "moved");
    for (cluster, db) in s.dest.iter().zip(&dbs) {
        assert_eq!(digest(cluster, db, "mv"), expected);
    }
    let decisions = std::fs::read_to_string(&log.0).unwrap();
    assert!(
        decisions.contains(":0"),
        "the source's gid is decided: {decisions}"
    );

    // Killed after the decision: everything is prepared, nothing visible yet.
    let src = database(&s.source, &format!("{MV} {FILL}"));
    let dbs = empty_destinations(s, "");
    let args = move_args(s, &s.source.url(&src), &dbs, &atomic);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Paused::start(&args, "recorded").kill();
    let source_gids = prepared_in(&s.source, &src);
    assert_eq!(source_gids.len(), 1, "{source_gids:?}");
    assert!(source_gids[0].ends_with(":0"), "{source_gids:?}");
    assert_eq!(count(&s.source, &src, "mv"), 1000, "not yet moved");
    for (cluster, db) in s.dest.iter().zip(&dbs) {
        assert_eq!(prepared_in(cluster, db).len(), 1);
        assert_eq!(count(cluster, db, "mv"), 0);
    }

    // Without the source: the destinations commit, and the source's prepared transaction,
    // named in the decision, is said to be missing (found by a tester: "nothing pending").
    let mut without_source = vec!["recover".to_owned()];
    for url in s.dest.iter().zip(&dbs).map(|(c, d)| c.url(d)) {
        without_source.extend(["--to".to_owned(), url]);
    }
    without_source.extend(["--decision-log".to_owned(), log.arg().to_owned()]);
    let out = run_owned(&without_source);
    // Something is left pending (the source's transaction): exit 1, never "nothing pending".
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "the source's transaction {} was decided commit: give the source's CONN too",
            source_gids[0]
        )),
        "{stderr}"
    );
    let mut recover = vec!["recover".to_owned()];
    for url in s
        .dest
        .iter()
        .zip(&dbs)
        .map(|(c, d)| c.url(d))
        .chain([s.source.url(&src)])
    {
        recover.extend(["--to".to_owned(), url]);
    }
    recover.extend(["--decision-log".to_owned(), log.arg().to_owned()]);
    let out = run_owned(&recover);
    assert_exit(&out, 0);
    assert_eq!(prepared_in(&s.source, &src), Vec::<String>::new());
    assert_eq!(count(&s.source, &src, "mv"), 0, "moved by recovery");
    for (cluster, db) in s.dest.iter().zip(&dbs) {
        assert_eq!(prepared_in(cluster, db), Vec::<String>::new());
        assert_eq!(digest(cluster, db, "mv"), expected);
    }
}

/// Point 1 under `--atomic`, where the source allows no prepared transactions (PostgreSQL's
/// default): the source is checked right before the decision instead, and the user is told the
/// move is not atomic with the destinations.
#[test]
fn atomic_a_source_without_prepared_transactions_is_checked_before_the_decision() {
    static PLAIN: OnceLock<Cluster> = OnceLock::new();
    let s = two_phase_clusters();
    let plain = PLAIN.get_or_init(Cluster::start);
    let log = TempPath::new("decisions.log");
    let atomic = ["--atomic", "--decision-log", log.arg()];

    let src = database(
        plain,
        &format!(
            "{MV} {FILL} CREATE TABLE ch (id int REFERENCES mv DEFERRABLE INITIALLY DEFERRED);
             INSERT INTO ch VALUES (5);"
        ),
    );
    let dbs = empty_destinations(s, "");
    let out = run_owned(&move_args(s, &plain.url(&src), &dbs, &atomic));
    let stderr = text(&out.stderr);
    assert_exit(&out, 1);
    assert!(stderr.contains("23503"), "{stderr}");
    assert!(stderr.contains("nothing committed"), "{stderr}");
    assert_nothing_committed(s, &dbs);
    assert_eq!(count(plain, &src, "mv"), 1000, "the source keeps its rows");

    let src = database(plain, &format!("{MV} {FILL}"));
    let expected = digest(plain, &src, "mv");
    let dbs = empty_destinations(s, "");
    let out = run_owned(&move_args(s, &plain.url(&src), &dbs, &atomic));
    let stderr = text(&out.stderr);
    assert_exit(&out, 0);
    assert!(
        stderr.contains("the source cannot prepare a transaction now"),
        "{stderr}"
    );
    assert_eq!(count(plain, &src, "mv"), 0, "moved");
    for (cluster, db) in s.dest.iter().zip(&dbs) {
        assert_eq!(digest(cluster, db, "mv"), expected);
    }
}

/// Under --keep-going a move whose one destination fails commits on the other while the
/// source's DELETE rolls back (the source commits only if every destination did): its rows are
/// then in both places. That is said (a warning, and `source.transaction` in --json); it was
/// silent.
#[test]
fn a_move_under_keep_going_says_the_sources_changes_were_rolled_back() {
    let s = two_phase_clusters();
    let src = database(&s.source, &format!("{MV} {FILL}"));
    let dbs = [
        database(&s.dest[0], "SELECT 1"), // no table: fails
        database(&s.dest[1], MV),
    ];
    let args = move_args(s, &s.source.url(&src), &dbs, &["--keep-going", "--json"]);
    let out = run_owned(&args);
    let stderr = text(&out.stderr);
    assert_exit(&out, 4);
    assert!(
        stderr.contains("the source's --send statement's changes were rolled back"),
        "{stderr}"
    );
    assert_eq!(json(&out)["source"]["transaction"], "rolled back");
    assert_eq!(count(&s.source, &src, "mv"), 1000, "the DELETE rolled back");
    assert_eq!(count(&s.dest[1], &dbs[1], "mv"), 1000);
}

/// A move whose source COMMIT is sent and never answered (the source waits for a synchronous
/// standby, then stops: a crash, a network cut) is in doubt, not "did not commit": here the
/// DELETE committed locally, and a user told it did not would undo the move on the
/// destinations and lose the rows everywhere.
/// A source whose COMMITs wait for a standby that does not exist (in `src` only, which holds
/// the move's table), and a move from it under way until its COMMIT waits.
fn move_until_the_source_commit_waits(
    s: &Clusters,
    dbs: &[String; 2],
) -> (Cluster, String, std::process::Child) {
    let source = Cluster::builder()
        .setting("synchronous_standby_names", "nosuch")
        .setting("synchronous_commit", "local")
        .start();
    let src = database(&source, &format!("{MV} {FILL}"));
    source
        .connect("postgres")
        .batch_execute(&format!(
            "ALTER DATABASE \"{src}\" SET synchronous_commit = on"
        ))
        .unwrap();
    let args = move_args(s, &source.url(&src), dbs, &["--json"]);
    let child = copyman()
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let waiting = || -> i64 {
        source
            .connect("postgres")
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 \
                 AND wait_event = 'SyncRep'",
                &[&src],
            )
            .unwrap()
            .get(0)
    };
    while waiting() == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no COMMIT waited"
        );
        thread::sleep(Duration::from_millis(50));
    }
    (source, src, child)
}

#[test]
fn a_source_commit_lost_in_flight_is_in_doubt() {
    // Its own source: it is stopped.
    let s = clusters();
    let dbs = empty_destinations(s, "");
    let (source, src, child) = move_until_the_source_commit_waits(s, &dbs);
    source.stop_immediate();
    let out = child.wait_with_output().unwrap();
    assert_exit(&out, 4);
    let report = json(&out);
    assert_eq!(report["source"]["transaction"], "in doubt", "{report}");
    let said = text(&out.stderr);
    assert!(
        said.contains("whether the source's transaction committed")
            && !said.contains("did not commit"),
        "{said}"
    );
    source.start_again();
    // It did commit: the rows are on the destinations only.
    assert_eq!(count(&source, &src, "mv"), 0);
    for (cluster, db) in s.dest.iter().zip(&dbs) {
        assert_eq!(count(cluster, db, "mv"), 1000);
    }
}

/// A second signal while the source's COMMIT is unanswered names it among the COMMITs that may
/// have committed (it said "not answered: none; the others have not committed" while the move's
/// DELETE had committed).
#[test]
fn a_second_signal_during_the_source_commit_says_it_may_have_committed() {
    let s = clusters();
    let dbs = empty_destinations(s, "");
    let (_source, _src, mut child) = move_until_the_source_commit_waits(s, &dbs);
    let mut stderr = StderrLines::take(&mut child);
    signal(&child, "INT");
    let _ = stderr.wait_for("SIGINT received");
    signal(&child, "INT");
    let out = child.wait_with_output().unwrap();
    let said = stderr.rest();
    assert_eq!(out.status.code(), Some(4), "{said}");
    assert!(
        said.contains("COMMIT sent, not answered (may have committed: its session stays")
            && said.contains("before copying to it again): source")
            && said.contains("check the source"),
        "{said}"
    );
}

/// Under --atomic a source prepared with the destinations whose session is lost after the
/// decision (a terminated backend, a network blip) is finished by the run on a new session, as
/// a destination is: the move commits everywhere (it was left `commit pending`, exit 4, holding
/// its locks, for copyman recover given the source).
#[test]
fn atomic_a_prepared_source_whose_session_is_lost_is_finished_on_a_new_one() {
    let s = two_phase_clusters();
    let src = database(&s.source, &format!("{MV} {FILL}"));
    let dbs = empty_destinations(s, "");
    let log = TempPath::new("decisions.log");
    let args = move_args(
        s,
        &s.source.url(&src),
        &dbs,
        &["--atomic", "--decision-log", log.arg()],
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let paused = Paused::start(&args, "recorded");
    assert_eq!(prepared_in(&s.source, &src).len(), 1, "the source prepared");
    assert!(s.source.terminate_backends(&src) >= 1);
    let out = paused.resume();
    assert_exit(&out, 0);
    assert_eq!(
        count(&s.source, &src, "mv"),
        0,
        "the move's DELETE committed"
    );
    for (cluster, db) in s.dest.iter().zip(&dbs) {
        assert_eq!(count(cluster, db, "mv"), 1000);
        assert_eq!(prepared_in(cluster, db), Vec::<String>::new());
    }
    assert_eq!(prepared_in(&s.source, &src), Vec::<String>::new());
}

/// An `--atomic` move whose destination is lost after the decision: the advice to recover
/// names the source's CONN too, which prepared with them (signals45 F2: "with the same --to
/// and --decision-log", followed literally, left the source's DELETE prepared, the rows on
/// every side). Followed, it finishes the move.
#[test]
fn atomic_the_advice_to_recover_a_move_names_the_source() {
    let s = two_phase_clusters();
    let src = database(&s.source, &format!("{MV} {FILL}"));
    let dbs = empty_destinations(s, "");
    let log = TempPath::new("move-advice.log");
    let args = move_args(
        s,
        &s.source.url(&src),
        &dbs,
        &["--atomic", "--decision-log", log.arg()],
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let paused = Paused::start(&args, "recorded");
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
            "run copyman recover with the same --to, one more --to of the source's CONN, and \
             --decision-log {}",
            log.arg()
        )),
        "{stderr}"
    );
    admin(&format!("ALTER DATABASE {} ALLOW_CONNECTIONS true", dbs[1]));
    let mut recover = vec!["recover".to_owned()];
    for url in s.dest.iter().zip(&dbs).map(|(c, d)| c.url(d)) {
        recover.extend(["--to".to_owned(), url]);
    }
    recover.extend(["--to".to_owned(), s.source.url(&src)]);
    recover.extend(["--decision-log".to_owned(), log.arg().to_owned()]);
    assert_exit(&run_owned(&recover), 0);
    assert_eq!(count(&s.source, &src, "mv"), 0, "moved");
    for (cluster, db) in s.dest.iter().zip(&dbs) {
        assert_eq!(count(cluster, db, "mv"), 1000);
    }
}

/// A second signal once every destination committed a move, before the source's COMMIT went
/// out: the at-once exit names the source — its DELETE rolls back as copyman exits, so the rows
/// are on the source and on the destinations (it named only the destinations, and "the others").
#[test]
fn a_second_signal_before_the_source_commit_says_the_rows_stay_on_the_source() {
    let s = clusters();
    let src = database(&s.source, &format!("{MV} {FILL}"));
    let dbs = empty_destinations(s, "");
    let args = move_args(s, &s.source.url(&src), &dbs, &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut paused = Paused::start(&args, "committed:2");
    let mut stderr = StderrLines::take(&mut paused.child);
    signal(&paused.child, "INT");
    let _ = stderr.wait_for("SIGINT received");
    signal(&paused.child, "INT");
    let status = paused.child.wait().unwrap();
    let said = stderr.rest();
    assert_eq!(status.code(), Some(4), "{said}");
    assert!(
        said.contains("committed: destination 1 (")
            && said.contains("), destination 2 (")
            && said.contains("not committed: source (rolled back as copyman exits)")
            && said.contains("the source's statement did not commit"),
        "{said}"
    );
    assert_eq!(
        count(&s.source, &src, "mv"),
        1000,
        "the move's DELETE rolled back"
    );
}

/// An `--atomic` move from a source that cannot prepare, killed after its decision: recover
/// commits the destinations and says that the source's DELETE, which the run was to commit after
/// them, may have rolled back — the rows then on both sides — and exits 1 (check) (it exited 0
/// without a word, and a second move duplicated every row).
#[test]
fn recover_of_a_move_whose_source_could_not_prepare_says_to_check_the_source() {
    let (plain, s) = (clusters(), two_phase_clusters());
    let src = database(&plain.source, &format!("{MV} {FILL}"));
    let dbs = empty_destinations(s, "");
    let log = TempPath::new("decisions.log");
    let args = move_args(
        s,
        &plain.source.url(&src),
        &dbs,
        &["--atomic", "--decision-log", log.arg()],
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Paused::start(&args, "recorded").kill();
    let recover = run(&[
        "recover",
        "--to",
        &s.dest[0].url(&dbs[0]),
        "--to",
        &s.dest[1].url(&dbs[1]),
        "--decision-log",
        log.arg(),
    ]);
    let said = text(&recover.stderr);
    assert_exit(&recover, 1);
    assert!(
        said.contains("could not prepare, so the run was to commit it after the destinations")
            && said.contains("check the source"),
        "{said}"
    );
    for (cluster, db) in s.dest.iter().zip(&dbs) {
        assert_eq!(count(cluster, db, "mv"), 1000);
        assert_eq!(prepared_in(cluster, db), Vec::<String>::new());
    }
    assert_eq!(
        count(&plain.source, &src, "mv"),
        1000,
        "the DELETE rolled back"
    );
}

/// Under --atomic with a source prepared with the destinations, a second signal once the
/// destinations' COMMIT PREPAREDs were answered says the source's transaction stays prepared
/// for recover, which commits it (it said the move's DELETE rolls back and its rows stay on the
/// source: cleaning the destinations' "duplicates" would then have lost them everywhere).
#[test]
fn atomic_a_second_signal_before_a_prepared_source_commits_says_recover_commits_it() {
    let s = two_phase_clusters();
    let src = database(&s.source, &format!("{MV} {FILL}"));
    let dbs = empty_destinations(s, "");
    let log = TempPath::new("decisions.log");
    let args = move_args(
        s,
        &s.source.url(&src),
        &dbs,
        &["--atomic", "--decision-log", log.arg()],
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut paused = Paused::start(&args, "commit-prepared:2");
    let mut stderr = StderrLines::take(&mut paused.child);
    signal(&paused.child, "INT");
    let _ = stderr.wait_for("SIGINT received");
    signal(&paused.child, "INT");
    let status = paused.child.wait().unwrap();
    let said = stderr.rest();
    assert_eq!(status.code(), Some(4), "{said}");
    assert!(
        said.contains("the source's prepared transaction stays prepared")
            && said.contains("not committed: source (prepared: copyman recover with the same --to")
            && !said.contains("its changes roll back"),
        "{said}"
    );
    assert_eq!(prepared_in(&s.source, &src).len(), 1, "{said}");
    let recover = run(&[
        "recover",
        "--to",
        &s.source.url(&src),
        "--to",
        &s.dest[0].url(&dbs[0]),
        "--to",
        &s.dest[1].url(&dbs[1]),
        "--decision-log",
        log.arg(),
    ]);
    assert_exit(&recover, 0);
    assert_eq!(
        count(&s.source, &src, "mv"),
        0,
        "the move's DELETE committed"
    );
}

/// An `--atomic` move from a source that cannot prepare, killed after the destinations'
/// COMMIT PREPAREDs and before the source's COMMIT: recover has nothing left to commit, and
/// still says to check the source (once) — it said "nothing pending", exit 0.
#[test]
fn recover_after_the_destinations_committed_still_says_to_check_an_unprepared_source() {
    let (plain, s) = (clusters(), two_phase_clusters());
    let src = database(&plain.source, &format!("{MV} {FILL}"));
    let dbs = empty_destinations(s, "");
    let log = TempPath::new("decisions.log");
    let args = move_args(
        s,
        &plain.source.url(&src),
        &dbs,
        &["--atomic", "--decision-log", log.arg()],
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Paused::start(&args, "commit-prepared:2").kill();
    let recover = || {
        run(&[
            "recover",
            "--to",
            &s.dest[0].url(&dbs[0]),
            "--to",
            &s.dest[1].url(&dbs[1]),
            "--decision-log",
            log.arg(),
        ])
    };
    let out = recover();
    let said = text(&out.stderr);
    assert_exit(&out, 1);
    assert!(said.contains("check the source"), "{said}");
    assert_eq!(
        count(&plain.source, &src, "mv"),
        1000,
        "the DELETE rolled back"
    );
    // Said once.
    let out = recover();
    assert_exit(&out, 0);
    assert!(
        !text(&out.stderr).contains("check the source"),
        "{}",
        text(&out.stderr)
    );
}

/// A move under `--atomic` whose source's server goes down once every destination committed
/// and before the source's own COMMIT PREPARED: PARTIAL, said as every destination committed
/// and the source's part pending, with the recover that finishes it (commit68 F6: "2 of 2
/// destinations committed", and "with the source as a --to --decision-log").
#[test]
fn atomic_a_source_down_after_the_destinations_committed_is_said_as_its_part() {
    let s = two_phase_clusters();
    let source = Cluster::builder()
        .setting("max_prepared_transactions", "5")
        .start();
    let src = database(&source, &format!("{MV} {FILL}"));
    let dbs = empty_destinations(s, "");
    let log = TempPath::new("source-down.log");
    let args = move_args(
        s,
        &source.url(&src),
        &dbs,
        &["--atomic", "--decision-log", log.arg()],
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let paused = Paused::start(&args, "commit-prepared:2");
    source.stop_immediate();
    let out = paused.resume();
    let stderr = text(&out.stderr);
    assert_exit(&out, 4);
    assert!(
        stderr.contains("PARTIAL: every destination committed (the source's transaction was")
            && stderr.contains(&format!(
                "run copyman recover --to SOURCE --decision-log {} (SOURCE: the source's CONN)",
                log.arg()
            )),
        "{stderr}"
    );
    for (cluster, db) in s.dest.iter().zip(&dbs) {
        assert_eq!(count(cluster, db, "mv"), 1000);
    }
}

/// A move whose source session ends after every destination committed: its COMMIT fails, the
/// DELETE rolls back, and the rows are on both sides. Said once in the headline, with what that
/// means for the same command again (commit74 F4: "every destination committed (every
/// destination committed, but …)", nothing of the rows being on both sides), exit 4.
#[test]
fn a_move_whose_source_commit_fails_says_the_rows_are_on_both_sides() {
    let s = clusters();
    let src = database(&s.source, &format!("{MV} {FILL}"));
    let dbs = empty_destinations(s, "");
    let args = move_args(s, &s.source.url(&src), &dbs, &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let paused = Paused::start(&args, "committed:2");
    assert!(s.source.terminate_backends(&src) >= 1);
    let out = paused.resume();
    assert_exit(&out, 4);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "copyman: PARTIAL: every destination committed, but the source's transaction did \
             not commit"
        ) && stderr.contains("the rows copied are on the source and on every destination now"),
        "{stderr}"
    );
    assert_eq!(count(&s.source, &src, "mv"), 1000, "the DELETE rolled back");
    for (cluster, db) in s.dest.iter().zip(&dbs) {
        assert_eq!(count(cluster, db, "mv"), 1000);
    }
}
