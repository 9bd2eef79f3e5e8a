//! `--resume` is exact: it never deletes rows it did not write, and never trusts a `done`
//! record on a server that is not the one recorded.
//!
//! * A table an earlier run began and never committed (killed mid-COPY) is copied again without
//!   emptying it: an append stays an append, rows the destination held of its own stay.
//! * A table whose `commit` line names a transaction the destination committed is done (recorded
//!   so, not copied twice); one it aborted is copied again without emptying; a prepared one
//!   (an `--atomic` run stopped before its decision) is refused with words until recovered; a
//!   `begin` of the old format (no `commit` lines) is emptied and copied again, as before.
//! * A table recorded done with rows (or committed, by a transaction id the clone's own
//!   transactions took) that is empty on the destination (a clone of the recorded server has
//!   its system identifier and oids) is copied again, and said; a run without
//!   `--resume` refused by the state file says that a clone needs another `--state`.
//!
//! Real clusters (allowing prepared transactions), shared by the binary.

mod common;

use std::process::Stdio;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use copyman_testkit::Cluster;

const SCHEMA: &str = "CREATE SCHEMA jk; CREATE TABLE jk.k1 (id int, v text); \
                      CREATE TABLE jk.k3 (id int, v text);";

/// The state file's name for database `db` on `cluster` (`system SYSID database OID`).
fn identity(cluster: &Cluster, db: &str) -> String {
    let row = cluster
        .connect(db)
        .query_one(
            "SELECT s.system_identifier::text, d.oid::text FROM pg_control_system() s, \
             pg_database d WHERE d.datname = current_database()",
            &[],
        )
        .unwrap();
    format!(
        "system {} database {}",
        row.get::<_, String>(0),
        row.get::<_, String>(1)
    )
}

fn precious(cluster: &Cluster, db: &str, table: &str) -> i64 {
    cluster
        .connect(db)
        .query_one(
            &format!("SELECT count(*) FROM {table} WHERE v = 'precious'"),
            &[],
        )
        .unwrap()
        .get(0)
}

fn job(src: &str, dest: &str, state: &TempPath, extra: &[&str]) -> std::process::Output {
    copyman()
        .args([
            "table", "--schema", "jk", "--jobs", "1", "--from", src, "--to", dest, "--state",
        ])
        .arg(state.arg())
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn a_resume_after_a_kill_mid_copy_keeps_the_rows_the_destination_held() {
    let c = two_phase_clusters();
    let src = database(
        &c.source,
        &format!(
            "{SCHEMA} INSERT INTO jk.k1 SELECT g, 'v' FROM generate_series(1, 100) g;
             INSERT INTO jk.k3 SELECT g, 'v' FROM generate_series(1, 50000) g;"
        ),
    );
    // D1's k3 holds two rows of its own; a trigger stops its copy in the middle, on a lock the
    // test holds, where copyman is killed.
    let d1 = database(
        &c.dest[0],
        &format!(
            "{SCHEMA} INSERT INTO jk.k3 VALUES (-1, 'precious'), (-2, 'precious');
             CREATE FUNCTION jk.hold() RETURNS trigger LANGUAGE plpgsql AS
               $$ BEGIN IF NEW.id = 25000 THEN PERFORM pg_advisory_xact_lock(4242); END IF;
                  RETURN NEW; END $$;
             CREATE TRIGGER hold BEFORE INSERT ON jk.k3 FOR EACH ROW EXECUTE FUNCTION jk.hold();"
        ),
    );
    let state = TempPath::new("exact-kill.state");
    let mut holder = c.dest[0].connect(&d1);
    holder
        .batch_execute("SELECT pg_advisory_lock(4242)")
        .unwrap();
    let mut child = copyman()
        .args([
            "table",
            "--schema",
            "jk",
            "--jobs",
            "1",
            "--from",
            &c.source.conninfo(&src),
            "--to",
            &c.dest[0].conninfo(&d1),
            "--state",
            state.arg(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The copy waits on the lock in the middle of k3 (the largest table: first).
    let mut watch = c.dest[0].connect("postgres");
    let started = Instant::now();
    loop {
        let waiting: i64 = watch
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 \
                 AND wait_event_type = 'Lock' AND wait_event = 'advisory'",
                &[&d1],
            )
            .unwrap()
            .get(0);
        if waiting > 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "k3 never blocked"
        );
        thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // The killed run's session ends once it is let go (it finds its client gone).
    holder
        .batch_execute("SELECT pg_advisory_unlock(4242)")
        .unwrap();
    assert!(settle_backends_to(&c.dest[0], &d1, 1).len() <= 1);
    let recorded = std::fs::read_to_string(&state.0).unwrap();
    assert!(recorded.contains("begin\t\"jk\".\"k3\""), "{recorded}");
    assert!(!recorded.contains("commit\t\"jk\".\"k3\""), "{recorded}");
    holder.batch_execute("DROP TRIGGER hold ON jk.k3").unwrap();

    let resumed = job(
        &c.source.conninfo(&src),
        &c.dest[0].conninfo(&d1),
        &state,
        &["--resume"],
    );
    assert_exit(&resumed, 0);
    assert_eq!(
        count(&c.dest[0], &d1, "jk.k3"),
        50002,
        "appended once, kept"
    );
    assert_eq!(
        precious(&c.dest[0], &d1, "jk.k3"),
        2,
        "the precious rows stay"
    );
    assert_eq!(count(&c.dest[0], &d1, "jk.k1"), 100);
    // What the resume committed it announced first, and recorded done.
    let recorded = std::fs::read_to_string(&state.0).unwrap();
    assert!(recorded.contains("commit\t\"jk\".\"k3\""), "{recorded}");
    assert!(recorded.contains("done\t\"jk\".\"k3\""), "{recorded}");
    // Nothing left open or prepared.
    assert!(settle_backends_to(&c.dest[0], &d1, 1).len() <= 1);
    assert!(prepared_xacts(&c.dest[0]).is_empty());
}

/// A transaction on `cluster`'s database `db` that inserts the source's rows (ids 1..=n) into
/// `table`, as a copy would, and ends with `end` (`COMMIT` or `ROLLBACK` or a `PREPARE
/// TRANSACTION`); its transaction id.
fn transaction(cluster: &Cluster, db: &str, table: &str, n: i64, end: &str) -> u64 {
    let mut client = cluster.connect(db);
    client.batch_execute("BEGIN").unwrap();
    client
        .batch_execute(&format!(
            "INSERT INTO {table} SELECT g, 'v' FROM generate_series(1, {n}) g"
        ))
        .unwrap();
    let xid: String = client
        .query_one("SELECT txid_current()::text", &[])
        .unwrap()
        .get(0);
    client.batch_execute(end).unwrap();
    xid.parse().unwrap()
}

#[test]
fn a_resume_asks_the_destination_whether_an_announced_commit_went_through() {
    let c = two_phase_clusters();
    let tables = "CREATE SCHEMA jk; CREATE TABLE jk.k3 (id int, v text); \
                  CREATE TABLE jk.k4 (id int, v text); CREATE TABLE jk.k5 (id int, v text);";
    let src = database(
        &c.source,
        &format!(
            "{tables} INSERT INTO jk.k3 SELECT g, 'v' FROM generate_series(1, 1000) g;
             INSERT INTO jk.k4 SELECT g, 'v' FROM generate_series(1, 700) g;
             INSERT INTO jk.k5 SELECT g, 'v' FROM generate_series(1, 300) g;"
        ),
    );
    let d1 = database(
        &c.dest[0],
        &format!(
            "{tables} INSERT INTO jk.k3 VALUES (-1, 'precious'), (-2, 'precious');
             INSERT INTO jk.k4 VALUES (-1, 'precious'), (-2, 'precious');
             INSERT INTO jk.k5 VALUES (-1, 'precious'), (-2, 'precious');"
        ),
    );
    let me = identity(&c.dest[0], &d1);
    // k3: an earlier run committed it, crashed before recording it done; k4: its commit was
    // announced and never went through; k5: begun by an older copyman (no commit lines).
    let committed = transaction(&c.dest[0], &d1, "jk.k3", 1000, "COMMIT");
    let aborted = transaction(&c.dest[0], &d1, "jk.k4", 700, "ROLLBACK");
    let state = TempPath::new("exact-commit.state");
    std::fs::write(
        &state.0,
        format!(
            "copyman-job 2\n\
             begin\t\"jk\".\"k3\"\t{me}\texact\n\
             commit\t\"jk\".\"k3\"\t{me}\t1000\t{committed}\n\
             begin\t\"jk\".\"k4\"\t{me}\texact\n\
             commit\t\"jk\".\"k4\"\t{me}\t700\t{aborted}\n\
             begin\t\"jk\".\"k5\"\t{me}\n"
        ),
    )
    .unwrap();
    let resumed = job(
        &c.source.conninfo(&src),
        &c.dest[0].conninfo(&d1),
        &state,
        &["--resume"],
    );
    assert_exit(&resumed, 0);
    let stderr = text(&resumed.stderr);
    // Committed: not copied twice, and recorded done now.
    assert_eq!(
        count(&c.dest[0], &d1, "jk.k3"),
        1002,
        "not copied twice\n{stderr}"
    );
    assert!(
        stderr.contains("\"jk\".\"k3\": an earlier run committed it"),
        "{stderr}"
    );
    let recorded = std::fs::read_to_string(&state.0).unwrap();
    assert!(
        recorded.contains(&format!("done\t\"jk\".\"k3\"\t{me}\t1000\n")),
        "{recorded}"
    );
    // Aborted: copied again, not emptied.
    assert_eq!(count(&c.dest[0], &d1, "jk.k4"), 702);
    assert_eq!(precious(&c.dest[0], &d1, "jk.k4"), 2);
    // The old format's begin: emptied and copied again, as before.
    assert_eq!(count(&c.dest[0], &d1, "jk.k5"), 300);
    assert_eq!(precious(&c.dest[0], &d1, "jk.k5"), 0);
    // Nothing left to do.
    let again = job(
        &c.source.conninfo(&src),
        &c.dest[0].conninfo(&d1),
        &state,
        &["--resume"],
    );
    assert_exit(&again, 0);
    assert_eq!(count(&c.dest[0], &d1, "jk.k3"), 1002);
    assert_eq!(count(&c.dest[0], &d1, "jk.k4"), 702);
}

#[test]
fn a_resume_refuses_while_an_announced_commit_is_prepared_and_undecided() {
    let c = two_phase_clusters();
    let tables = "CREATE SCHEMA jk; CREATE TABLE jk.k3 (id int, v text);";
    let src = database(
        &c.source,
        &format!("{tables} INSERT INTO jk.k3 SELECT g, 'v' FROM generate_series(1, 500) g;"),
    );
    let d1 = database(
        &c.dest[0],
        &format!("{tables} INSERT INTO jk.k3 VALUES (-1, 'precious'), (-2, 'precious');"),
    );
    let me = identity(&c.dest[0], &d1);
    let gid = format!("exact-test-{d1}");
    let xid = transaction(
        &c.dest[0],
        &d1,
        "jk.k3",
        500,
        &format!("PREPARE TRANSACTION '{gid}'"),
    );
    let state = TempPath::new("exact-prepared.state");
    std::fs::write(
        &state.0,
        format!(
            "copyman-job 3\n\
             begin\t\"jk\".\"k3\"\t{me}\texact\n\
             commit\t\"jk\".\"k3\"\t{me}\t500\t{xid}\n"
        ),
    )
    .unwrap();
    let refused = job(
        &c.source.conninfo(&src),
        &c.dest[0].conninfo(&d1),
        &state,
        &["--resume"],
    );
    assert_exit(&refused, 2);
    let stderr = text(&refused.stderr);
    assert!(
        stderr.contains(&format!("is prepared as {gid} and not finished"))
            && stderr.contains("copyman recover"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &d1, "jk.k3"), 2, "nothing done");
    // Once rolled back (as recover would), the resume copies it, not emptying it.
    c.dest[0]
        .connect(&d1)
        .batch_execute(&format!("ROLLBACK PREPARED '{gid}'"))
        .unwrap();
    let resumed = job(
        &c.source.conninfo(&src),
        &c.dest[0].conninfo(&d1),
        &state,
        &["--resume"],
    );
    assert_exit(&resumed, 0);
    assert_eq!(count(&c.dest[0], &d1, "jk.k3"), 502);
    assert_eq!(precious(&c.dest[0], &d1, "jk.k3"), 2);
}

#[test]
fn a_resume_into_an_empty_clone_copies_again_and_says_so() {
    let c = two_phase_clusters();
    let src = database(
        &c.source,
        &format!(
            "{SCHEMA} INSERT INTO jk.k1 SELECT g, 'v' FROM generate_series(1, 100) g;
             INSERT INTO jk.k3 SELECT g, 'v' FROM generate_series(1, 2000) g;"
        ),
    );
    // The clone: the identity the state file names (its origin's), none of its rows; its own
    // transactions took the ids its origin's had (k1's recorded commit: committed here).
    let clone = database(
        &c.dest[0],
        &format!("{SCHEMA} CREATE TABLE scratch (id int, v text);"),
    );
    let me = identity(&c.dest[0], &clone);
    let other = transaction(&c.dest[0], &clone, "scratch", 1, "COMMIT");
    let state = TempPath::new("exact-clone.state");
    std::fs::write(
        &state.0,
        format!(
            "copyman-job 3\n\
             begin\t\"jk\".\"k3\"\t{me}\texact\n\
             done\t\"jk\".\"k3\"\t{me}\t2000\n\
             begin\t\"jk\".\"k1\"\t{me}\texact\n\
             commit\t\"jk\".\"k1\"\t{me}\t100\t{other}\n"
        ),
    )
    .unwrap();
    let resumed = job(
        &c.source.conninfo(&src),
        &c.dest[0].conninfo(&clone),
        &state,
        &["--resume"],
    );
    assert_exit(&resumed, 0);
    let stderr = text(&resumed.stderr);
    assert!(
        stderr.contains(
            "destination 1 holds no rows of \"jk\".\"k3\", which the state file records done \
             with 2000 rows"
        ) && stderr.contains(
            "emptied or recreated there since, or that destination is another server with the \
             same system identifier (a clone): copied again"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "destination 1 holds no rows of \"jk\".\"k1\", whose transaction of an earlier \
             run (100 rows, its COMMIT sent) reads committed there — a crash of its server before \
             that COMMIT was durable, which lets the server give the id to a transaction of its \
             own, or emptied or recreated there since"
        ),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &clone, "jk.k3"), 2000);
    assert_eq!(count(&c.dest[0], &clone, "jk.k1"), 100);
    // A run without --resume into it: refused, and told that a clone needs its own state file.
    let fresh = job(
        &c.source.conninfo(&src),
        &c.dest[0].conninfo(&clone),
        &state,
        &[],
    );
    assert_exit(&fresh, 2);
    let stderr = text(&fresh.stderr);
    assert!(
        stderr.contains("records an earlier job")
            && stderr.contains("clone")
            && stderr.contains("a --state in another directory"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &clone, "jk.k3"), 2000, "not twice");
}

/// A table recorded done on a destination where it does not exist now (dropped since): the
/// resume took it as done, its rows reported there (exit 0). Refused, naming it — and each
/// other table refused so, at once (recheck66 F7: a table per resume).
#[test]
fn a_resume_refuses_a_done_table_dropped_since() {
    let c = two_phase_clusters();
    let src = database(
        &c.source,
        &format!(
            "{SCHEMA} INSERT INTO jk.k1 SELECT g, 'v' FROM generate_series(1, 100) g;
             INSERT INTO jk.k3 SELECT g, 'v' FROM generate_series(1, 20) g;"
        ),
    );
    let dest = database(
        &c.dest[0],
        &format!("{SCHEMA} INSERT INTO jk.k3 SELECT g, 'v' FROM generate_series(1, 20) g;"),
    );
    let me = identity(&c.dest[0], &dest);
    c.dest[0]
        .connect(&dest)
        .batch_execute("DROP TABLE jk.k3; DROP TABLE jk.k1")
        .unwrap();
    let state = TempPath::new("exact-dropped.state");
    std::fs::write(
        &state.0,
        format!(
            "copyman-job 3\n\
             begin\t\"jk\".\"k3\"\t{me}\texact\n\
             done\t\"jk\".\"k3\"\t{me}\t20\n\
             begin\t\"jk\".\"k1\"\t{me}\texact\n\
             done\t\"jk\".\"k1\"\t{me}\t100\n"
        ),
    )
    .unwrap();
    let resumed = job(
        &c.source.conninfo(&src),
        &c.dest[0].conninfo(&dest),
        &state,
        &["--resume"],
    );
    assert_exit(&resumed, 2);
    let stderr = text(&resumed.stderr);
    for table in ["k1", "k3"] {
        assert!(
            stderr.contains(&format!(
                "table \"jk\".\"{table}\", which the earlier run began or committed on \
                 destination 1, does not exist there now"
            )),
            "{stderr}"
        );
    }
    assert!(stderr.contains("--resume refuses 2 tables"), "{stderr}");
}

/// A table partitioned on the destination and not on the source holds its rows in its
/// partitions: `ONLY` finds none there. A resume must not take it for a clone's empty table
/// and copy its rows a second time.
#[test]
fn a_resume_into_a_partitioned_destination_table_copies_nothing_twice() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE pt (id int); INSERT INTO pt VALUES (1), (2), (3);
         CREATE TABLE other (id int); INSERT INTO other VALUES (1);",
    );
    let dst = database(
        &c.dest[0],
        "CREATE TABLE pt (id int) PARTITION BY RANGE (id);
         CREATE TABLE pt_1 PARTITION OF pt FOR VALUES FROM (MINVALUE) TO (MAXVALUE);
         CREATE TABLE other (id int);",
    );
    let state = TempPath::new("partitioned-dest.state");
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
    let args = [
        "table",
        "pt",
        "other",
        "--from",
        &from,
        "--to",
        &to,
        "--state",
        state.arg(),
    ];
    assert_exit(&run(&args), 0);
    let resumed = run(&[&args[..], &["--resume"]].concat());
    assert_exit(&resumed, 0);
    let stderr = text(&resumed.stderr);
    assert!(!stderr.contains("a clone?"), "{stderr}");
    assert_eq!(count(&c.dest[0], &dst, "pt"), 3);
    assert_eq!(count(&c.dest[0], &dst, "other"), 1);
}

/// A resume of a copy of a live job's state file (a backup, another directory: no lock of
/// that run beside it) took the tables the run was copying as never committed and copied them
/// again, every row twice with two exit 0s (commit36 F3). The file names its writer's process
/// (`writer BOOT PID START`): alive on this host, the resume is refused and copies nothing;
/// once the run is gone (killed), a resume finishes the job exactly.
#[test]
fn a_resume_of_a_copy_of_a_live_jobs_state_file_is_refused() {
    let c = two_phase_clusters();
    let src = database(
        &c.source,
        &format!(
            "{SCHEMA} INSERT INTO jk.k1 SELECT g, 'x' FROM generate_series(1, 300) g;
             INSERT INTO jk.k3 SELECT g, 'y' FROM generate_series(1, 200) g;"
        ),
    );
    let dest = database(&c.dest[0], SCHEMA);
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dest));
    let state = TempPath::new("live.state");
    let copy = TempPath::new("live-copy.state");
    let args = [
        "table", "--schema", "jk", "--jobs", "1", "--from", &from, "--to", &to, "--state",
    ];
    let paused = Paused::start(&[&args[..], &[state.arg()]].concat(), "committed:1");
    std::fs::copy(&state.0, &copy.0).unwrap();
    assert!(
        std::fs::read_to_string(&copy.0)
            .unwrap()
            .contains("\nwriter\t"),
        "the run names its process"
    );
    let out = job(&from, &to, &copy, &["--resume"]);
    let stderr = text(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("the run that wrote it (copyman process ")
            && stderr.contains("is still running on this host"),
        "{stderr}"
    );
    assert_eq!(
        count(&c.dest[0], &dest, "jk.k3"),
        0,
        "nothing copied by the refused resume"
    );
    // The run dies; a resume of its own file (or of the copy) finishes the job exactly.
    paused.kill();
    assert_exit(&job(&from, &to, &state, &["--resume"]), 0);
    assert_eq!(count(&c.dest[0], &dest, "jk.k1"), 300);
    assert_eq!(count(&c.dest[0], &dest, "jk.k3"), 200);
}
