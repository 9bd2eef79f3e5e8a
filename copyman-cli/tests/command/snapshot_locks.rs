//! A TRUNCATE (or a table rewrite) on the source that commits after the snapshot copyman reads
//! a table in is not MVCC-safe: that snapshot sees the table empty, and the count and checksum
//! agree with it. copyman locks what it reads before its snapshot, so such a statement is waited
//! for and read as it left the table; where it did not — a role with `SELECT` on the columns
//! only (it may not `LOCK`), a view (lockable from PostgreSQL 11), a job under `--no-snapshot`
//! (its COPY took its snapshot before it waited) — the table was copied empty, exit 0, over the
//! destination's rows with `--truncate`. Now a view and `--no-snapshot` lock too, and a table
//! that cannot be locked is compared by its files before and after: a change fails it, nothing
//! committed. Real clusters, shared by the binary.

use crate::common;

use std::process::{Output, Stdio};

use common::*;
use copyman_testkit::Cluster;

const TABLE: &str = "CREATE TABLE k (id int, v text);";
const OLD: &str = "INSERT INTO k SELECT g, 'old' FROM generate_series(1, 1000) g;";
/// The source's reload, held uncommitted until copyman waits for it.
const RELOAD: &str =
    "BEGIN; TRUNCATE k; INSERT INTO k SELECT g, 'new' FROM generate_series(1, 1000) g";

/// A source role that may read `k`'s columns, not the table as a whole (so not lock it), and
/// `kv`: its conninfo.
fn column_reader(cluster: &Cluster, db: &str) -> String {
    let role = format!("cols_{db}");
    cluster
        .connect(db)
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN; GRANT SELECT (id, v) ON k TO {role}; \
             GRANT SELECT ON kv TO {role};"
        ))
        .unwrap();
    format!(
        "host=127.0.0.1 port={} user={role} dbname={db}",
        cluster.port()
    )
}

/// The job `args`, paused once its snapshot is taken while the source begins its reload of `k`,
/// committed once the job waits for it: the job's output.
fn reload_once_planned(cluster: &Cluster, db: &str, args: &[&str]) -> Output {
    let paused = Paused::start(args, "planned");
    let mut reload = cluster.connect(db);
    reload.batch_execute(RELOAD).unwrap();
    std::fs::remove_file(&paused.file.0).unwrap();
    wait_for_lock(cluster, db);
    reload.batch_execute("COMMIT").unwrap();
    paused.child.wait_with_output().unwrap()
}

/// The destination's rows of `k` with `v`.
fn rows_with(cluster: &Cluster, db: &str, v: &str) -> i64 {
    count(cluster, db, &format!("(SELECT 1 FROM k WHERE v = '{v}')"))
}

/// One table: read through a view it is locked (and waited for), read by a role that may not
/// lock it its files tell the change: the copy fails, the destination keeps its rows.
#[test]
fn one_table_reloaded_while_copyman_waits_is_never_copied_empty() {
    let c = clusters();
    let src = database(
        &c.source,
        &format!("{TABLE} {OLD} CREATE VIEW kv AS SELECT * FROM k;"),
    );
    let dst = database(
        &c.dest[0],
        &format!("{TABLE} {OLD} CREATE VIEW kv AS SELECT * FROM k;"),
    );
    let to = c.dest[0].conninfo(&dst);
    // A view (superuser): locked before the snapshot, the reload is waited for and copied.
    let from = c.source.conninfo(&src);
    let args = [
        "table",
        "kv",
        "--target-table",
        "k",
        "--from",
        &from,
        "--to",
        &to,
        "--truncate",
    ];
    let out = while_held(&c.source, &src, RELOAD, &args);
    assert_exit(&out, 0);
    assert_eq!(
        rows_with(&c.dest[0], &dst, "new"),
        1000,
        "{}",
        text(&out.stderr)
    );
    // The table, by a role that may read its columns only, the reload begun once copyman
    // planned (its destination waits for a lock meanwhile) and committed once its COPY waits:
    // the table's files changed.
    c.source
        .connect(&src)
        .batch_execute(&format!("TRUNCATE k; {OLD}"))
        .unwrap();
    let cols = column_reader(&c.source, &src);
    let mut holder = c.dest[0].connect(&dst);
    holder
        .batch_execute("BEGIN; LOCK TABLE k IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let child = copyman()
        .args(["table", "k", "--from", &cols, "--to", &to, "--truncate"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_lock(&c.dest[0], &dst);
    let mut reload = c.source.connect(&src);
    reload.batch_execute(RELOAD).unwrap();
    holder.batch_execute("COMMIT").unwrap();
    wait_for_lock(&c.source, &src);
    reload.batch_execute("COMMIT").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("the table was truncated or rewritten")
            && stderr.contains("SELECT on its columns only"),
        "{stderr}"
    );
    assert_eq!(
        rows_with(&c.dest[0], &dst, "new"),
        1000,
        "the destination kept its rows"
    );
}

/// A job: by a role that may not lock the table, under the job's snapshot (taken before the
/// reload committed), the table fails and is not recorded done (a resume copies it); under
/// `--no-snapshot` the worker locks before its own snapshot and copies the reloaded rows.
#[test]
fn a_job_reloaded_while_it_waits_is_never_copied_empty() {
    let c = clusters();
    let src = database(
        &c.source,
        &format!("{TABLE} {OLD} CREATE VIEW kv AS SELECT * FROM k;"),
    );
    let dst = database(&c.dest[0], TABLE);
    let to = c.dest[0].conninfo(&dst);
    let cols = column_reader(&c.source, &src);
    let state = TempPath::new("snapshot-locks.state");
    let args = [
        "table",
        "k",
        "--from",
        &cols,
        "--to",
        &to,
        "--state",
        state.arg(),
    ];
    let out = reload_once_planned(&c.source, &src, &args);
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("was truncated or rewritten") && stderr.contains("--resume copies it"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &dst, "k"), 0);
    let out = copyman().args(args).arg("--resume").output().unwrap();
    assert_exit(&out, 0);
    assert_eq!(rows_with(&c.dest[0], &dst, "new"), 1000);
    // --no-snapshot (superuser): the worker's lock comes before its snapshot.
    c.dest[0].connect(&dst).batch_execute("TRUNCATE k").unwrap();
    let from = c.source.conninfo(&src);
    // (A job of its own directory: the first one's state file records k copied there.)
    let dir = TempDir::new("snapshot-locks-none");
    let state = dir.path("job.state");
    let args = [
        "table",
        "k",
        "--no-snapshot",
        "--from",
        &from,
        "--to",
        &to,
        "--state",
        &state,
    ];
    let out = reload_once_planned(&c.source, &src, &args);
    assert_exit(&out, 0);
    assert_eq!(
        rows_with(&c.dest[0], &dst, "new"),
        1000,
        "{}",
        text(&out.stderr)
    );
}

/// A job of a partitioned table `pt` (partitions `pt1`, `pt2`, 1000 rows each) its source role
/// may read only column by column (it may not lock it), paused once planned while `change` runs
/// on the source as its owner: the source's database, the destination's, the state file and the
/// job's output.
fn unlockable_partitioned_job(change: &str) -> (String, String, TempPath, Output) {
    let c = clusters();
    let tree = "CREATE TABLE pt (id int, v text) PARTITION BY RANGE (id);
        CREATE TABLE pt1 PARTITION OF pt FOR VALUES FROM (0) TO (1000);
        CREATE TABLE pt2 PARTITION OF pt FOR VALUES FROM (1000) TO (2000);";
    let src = database(
        &c.source,
        &format!("{tree} INSERT INTO pt SELECT g, 'v' || g FROM generate_series(0, 1999) g;"),
    );
    let dst = database(&c.dest[0], tree);
    let role = format!("parts_{src}");
    c.source
        .connect(&src)
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN; GRANT SELECT (id, v) ON pt TO {role};"
        ))
        .unwrap();
    let state = TempPath::new("partition-changed.state");
    let out = {
        let args = unlockable_args(&src, &dst, &state, role.as_str());
        let paused = Paused::start(
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
            "planned",
        );
        // Not waiting for the job (it waited for ever).
        c.source
            .connect(&src)
            .batch_execute(&format!("SET lock_timeout = '20s'; {change}"))
            .unwrap();
        paused.resume()
    };
    (src, dst, state, out)
}

/// [`unlockable_partitioned_job`]'s arguments.
fn unlockable_args(src: &str, dst: &str, state: &TempPath, role: &str) -> Vec<String> {
    let c = clusters();
    let from = format!(
        "host=127.0.0.1 port={} user={role} dbname={src}",
        c.source.port()
    );
    let to = c.dest[0].conninfo(dst);
    [
        "table",
        "pt",
        "--from",
        &from,
        "--to",
        &to,
        "--state",
        state.arg(),
    ]
    .map(str::to_owned)
    .to_vec()
}

/// A partitioned table its role may read only column by column, a partition truncated while an
/// earlier table of the job copies: the job's snapshot session held the partitions' locks (its
/// `pg_partition_tree`), the TRUNCATE waited for it and the table's copy for the TRUNCATE, for
/// ever. The job's own questions release their locks: the TRUNCATE goes through, and the table's
/// files tell it (failed, not recorded; `--resume` copies it).
#[test]
fn a_partition_truncated_during_a_job_that_cannot_lock_its_table_does_not_hang_it() {
    let c = clusters();
    let (src, dst, state, out) = unlockable_partitioned_job("TRUNCATE pt1");
    assert_exit(&out, 1);
    assert!(
        text(&out.stderr).contains("was truncated or rewritten"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &dst, "pt"), 0);
    let args = unlockable_args(&src, &dst, &state, &format!("parts_{src}"));
    let out = copyman().args(args).arg("--resume").output().unwrap();
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[0], &dst, "pt"), 1000);
}

/// A `security_invoker` view over a table its role may read only column by column: the role
/// reads the view, but its lock reaches the table with the role's own rights, and copyman's
/// lock before the snapshot failed the copy (42501), one table and a job. Such a view is read
/// without that lock, as before views were locked.
#[test]
fn a_view_whose_lock_the_role_may_not_take_is_copied_unlocked() {
    let c = clusters();
    let src = database(
        &c.source,
        &format!("{TABLE} {OLD} CREATE TABLE o (id int);"),
    );
    let role = format!("invoker_{src}");
    c.source
        .connect(&src)
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN; GRANT SELECT (id, v) ON k TO {role};
             CREATE VIEW sv WITH (security_invoker = true) AS SELECT id, v FROM k;
             GRANT SELECT ON sv, o TO {role};"
        ))
        .unwrap();
    let from = format!(
        "host=127.0.0.1 port={} user={role} dbname={src}",
        c.source.port()
    );
    let dst = database(
        &c.dest[0],
        "CREATE TABLE sv (id int, v text); CREATE TABLE o (id int);",
    );
    let to = c.dest[0].conninfo(&dst);
    assert_exit(&run(&["table", "sv", "--from", &from, "--to", &to]), 0);
    assert_eq!(count(&c.dest[0], &dst, "sv"), 1000);
    c.dest[0]
        .connect(&dst)
        .batch_execute("TRUNCATE sv")
        .unwrap();
    let state = TempPath::new("invoker-view.state");
    let out = run(&[
        "table",
        "sv",
        "o",
        "--from",
        &from,
        "--to",
        &to,
        "--state",
        state.arg(),
    ]);
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[0], &dst, "sv"), 1000);
}

/// The same role, a partition detached while the job waits to copy (no lock of the job's holds
/// the partitioned table): the snapshot's COPY reads the partitions as they are now, without it
/// (its rows copied by nobody, exit 0). The partition tree, as it is now, is part of what is
/// compared: the table fails, nothing committed.
#[test]
fn a_partition_detached_during_a_job_that_cannot_lock_its_table_fails_it() {
    let c = clusters();
    let (_, dst, _state, out) = unlockable_partitioned_job("ALTER TABLE pt DETACH PARTITION pt2");
    assert_exit(&out, 1);
    assert_eq!(count(&c.dest[0], &dst, "pt"), 0, "{}", text(&out.stderr));
}

/// A `--where` that reads another table, which the application refreshes with a `TRUNCATE`
/// and a reload in one transaction: that table is locked before the snapshot as the copied one
/// is, so the copy waits for the refresh and reads what it left (the older snapshot read it
/// empty: no row copied, exit 0).
#[test]
fn a_table_the_where_reads_is_locked_before_the_snapshot() {
    let c = clusters();
    let tables = "CREATE TABLE w (id int, v text); CREATE TABLE wsel (id int);";
    let src = database(
        &c.source,
        &format!(
            "{tables} INSERT INTO w SELECT g, 'v' FROM generate_series(1, 100) g;
             INSERT INTO wsel SELECT generate_series(1, 10);"
        ),
    );
    let d = database(&c.dest[0], tables);
    let out = while_held(
        &c.source,
        &src,
        "BEGIN; TRUNCATE wsel; INSERT INTO wsel SELECT generate_series(1, 20)",
        &[
            "table",
            "w",
            "--where",
            "id IN (SELECT id FROM wsel)",
            "--from",
            &c.source.conninfo(&src),
            "--to",
            &c.dest[0].conninfo(&d),
        ],
    );
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[0], &d, "w"), 20, "{}", text(&out.stderr));
}

/// A partition of the source's partitioned table held by another session (a TRUNCATE and
/// reload): copyman's first questions about the table took each partition's lock
/// (`pg_partition_tree`) and waited in silence, past `--lock-timeout`, before any watch stood.
/// They take none now: the wait is the copy's, said and bounded by `--lock-timeout`.
#[test]
fn a_held_partition_is_a_wait_said_and_bounded_by_the_lock_timeout() {
    let c = clusters();
    let tree = "CREATE TABLE hp (id int, v text) PARTITION BY LIST (v);
        CREATE TABLE hp_a PARTITION OF hp FOR VALUES IN ('a');
        CREATE TABLE hp_b PARTITION OF hp FOR VALUES IN ('b');";
    let src = database(
        &c.source,
        &format!(
            "{tree} INSERT INTO hp SELECT g, CASE WHEN g % 2 = 0 THEN 'a' ELSE 'b' END FROM generate_series(1, 100) g;"
        ),
    );
    let d = database(&c.dest[0], tree);
    let mut holder = c.source.connect(&src);
    holder.batch_execute("BEGIN; TRUNCATE hp_b").unwrap();
    // Let go once copyman ended, or after 20 s should it wait (it waited in silence).
    let (done, ended) = std::sync::mpsc::channel::<()>();
    let release = std::thread::spawn(move || {
        let _ = ended.recv_timeout(std::time::Duration::from_secs(20));
        holder.batch_execute("ROLLBACK").unwrap();
    });
    let out = run(&[
        "table",
        "hp",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&d),
        "--lock-timeout",
        "1s",
    ]);
    assert_exit(&out, 1);
    assert!(text(&out.stderr).contains("55P03"), "{}", text(&out.stderr));
    done.send(()).unwrap();
    release.join().unwrap();
    assert_eq!(count(&c.dest[0], &d, "hp"), 0);
}
