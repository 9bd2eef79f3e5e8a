//! Edges of a job (`copyman table` with many tables): a table waiting on a lock says so, and
//! `--lock-timeout` fails it cleanly; a signal rolls back the tables being copied and keeps the
//! committed ones for `--resume`; `--stall-timeout`, `--allow-count-mismatch` and `--encoding`
//! mean in a job what they mean for one table. Real clusters, shared by the binary.

use crate::common;

use std::process::{Child, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// Two tables: `locked_t` (the larger: a job takes it first) and `other_t`.
const TWO: &str = "CREATE TABLE locked_t (id int8 PRIMARY KEY, v text);
                   CREATE TABLE other_t (id int8 PRIMARY KEY, v text);";
const FILL_TWO: &str =
    "INSERT INTO locked_t SELECT g, repeat('x', 50) FROM generate_series(1, 2000) g;
                        INSERT INTO other_t SELECT g, 'o' || g FROM generate_series(1, 10) g;";

/// Two tables for a lock taken during the job: `first_t` (the larger: copied first, slowly
/// under `--max-rate`) and `later_t`, locked on a destination while `first_t` is copied.
const LATER: &str = "CREATE TABLE first_t (id int8 PRIMARY KEY, v text);
                     CREATE TABLE later_t (id int8 PRIMARY KEY, v text);";
const FILL_LATER: &str =
    "INSERT INTO first_t SELECT g, repeat('f', 100) FROM generate_series(1, 3000) g;
                          INSERT INTO later_t SELECT g, 'l' || g FROM generate_series(1, 10) g;";

/// Starts a job of `first_t` then `later_t` (one at a time, slowly), waits until `first_t` is
/// being copied to destination 1, then locks `later_t` there; the job and the lock's holder.
fn job_then_lock(
    c: &Clusters,
    src: &str,
    d0: &str,
    d1: &str,
    state: &TempPath,
    extra: &[&str],
) -> (Child, postgres::Client) {
    let child = copyman()
        .args([
            "--json",
            "table",
            "first_t",
            "later_t",
            "--from",
            &c.source.conninfo(src),
            "--to",
            &c.dest[0].conninfo(d0),
            "--to",
            &c.dest[1].conninfo(d1),
            "--state",
            state.arg(),
            "--jobs",
            "1",
            "--max-rate",
            "100k",
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_query(&c.dest[0], d0, "COPY \"public\".\"first_t\"%FROM STDIN%");
    let holder = hold_lock(&c.dest[0], d0, "later_t");
    (child, holder)
}

/// The `--json` record of `table` on destination `dest` (0-based).
fn record<'a>(report: &'a Value, table: &str, dest: usize) -> &'a Value {
    report["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .filter(|r| r["table"] == format!(r#""public"."{table}""#))
        .nth(dest)
        .unwrap_or_else(|| panic!("no record of {table} on destination {}: {report}", dest + 1))
}

// Point 1: a job waiting on a lock says so, and honours --lock-timeout.

#[test]
fn job_lock_timeout_fails_the_locked_table_with_55p03_and_commits_nothing_of_it() {
    let c = clusters();
    let src = database(&c.source, &format!("{TWO}{FILL_TWO}"));
    let d0 = database(&c.dest[0], TWO);
    let d1 = database(&c.dest[1], TWO);
    let mut holder = hold_lock(&c.dest[0], &d0, "locked_t");
    let state = TempPath::new("lock-timeout.state");
    let out = run(&[
        "--json",
        "table",
        "locked_t",
        "other_t",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&d0),
        "--to",
        &c.dest[1].conninfo(&d1),
        "--state",
        state.arg(),
        "--jobs",
        "1",
        "--lock-timeout",
        "1s",
    ]);
    holder.batch_execute("ROLLBACK").unwrap();
    // Planning reads the table's catalog (its size takes a lock): the table is refused there,
    // and under the default policy the job stops before anything: nothing was committed
    // anywhere, exit 1 as documented.
    assert_exit(&out, 1);
    let report = json(&out);
    let locked = record(&report, "locked_t", 0);
    assert_eq!(locked["status"], "failed", "{report}");
    assert_eq!(locked["error"]["sqlstate"], "55P03", "{report}");
    assert_eq!(
        record(&report, "locked_t", 1)["status"],
        "not started",
        "{report}"
    );
    assert_eq!(record(&report, "other_t", 0)["status"], "not started");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(r#""public"."locked_t" on destination 1 ("#)
            && stderr.contains("SQLSTATE 55P03: canceling statement due to lock timeout"),
        "{stderr}"
    );
    // Nothing of it anywhere, and no session left behind.
    for (cluster, db) in [(&c.dest[0], &d0), (&c.dest[1], &d1)] {
        assert_eq!(count(cluster, db, "locked_t"), 0);
        assert_eq!(count(cluster, db, "other_t"), 0);
        assert_eq!(copy_backends(cluster, db), 0);
    }
}

#[test]
fn job_lock_timeout_during_the_copy_fails_that_table_with_55p03_and_nothing_of_it_commits() {
    let c = clusters();
    let src = database(&c.source, &format!("{LATER}{FILL_LATER}"));
    let d0 = database(&c.dest[0], LATER);
    let d1 = database(&c.dest[1], LATER);
    let state = TempPath::new("lock-timeout-copy.state");
    let (child, mut holder) = job_then_lock(c, &src, &d0, &d1, &state, &["--lock-timeout", "1s"]);
    let out = child.wait_with_output().unwrap();
    holder.batch_execute("ROLLBACK").unwrap();
    // first_t committed before: partial, exit 4 as documented.
    assert_exit(&out, 4);
    let report = json(&out);
    let later = record(&report, "later_t", 0);
    assert_eq!(later["status"], "failed", "{report}");
    assert_eq!(later["error"]["sqlstate"], "55P03", "{report}");
    assert_eq!(
        record(&report, "later_t", 1)["status"],
        "rolled back",
        "{report}"
    );
    let stderr = text(&out.stderr);
    // Its context copyman's own lock, said as such, without the frame of the `DO` block it ran
    // in (jobs66 F1: "PL/pgSQL function inline_code_block line 1 at SQL statement").
    assert!(
        stderr.contains(r#"table "public"."later_t" on destination 1 ("#)
            && stderr.contains("SQLSTATE 55P03: canceling statement due to lock timeout")
            && stderr.contains("copyman's own statement \"LOCK TABLE")
            && !stderr.contains("inline_code_block"),
        "{stderr}"
    );
    for (cluster, db) in [(&c.dest[0], &d0), (&c.dest[1], &d1)] {
        assert_eq!(
            digest(cluster, db, "first_t"),
            digest(&c.source, &src, "first_t")
        );
        assert_eq!(count(cluster, db, "later_t"), 0);
        assert_eq!(copy_backends(cluster, db), 0);
    }
}

#[test]
fn job_waiting_on_a_lock_says_so_on_stderr_then_finishes_once_released() {
    let c = clusters();
    let src = database(&c.source, &format!("{LATER}{FILL_LATER}"));
    let d0 = database(&c.dest[0], LATER);
    let d1 = database(&c.dest[1], LATER);
    let state = TempPath::new("lock-wait.state");
    let (mut child, mut holder) = job_then_lock(c, &src, &d0, &d1, &state, &[]);
    let holder_pid: i32 = holder
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    let mut stderr = StderrLines::take(&mut child);
    // Off a terminal too: one line when the wait begins, naming the table, the destination,
    // the lock and who holds it.
    let line = stderr.expect("waiting for lock on destination 1 (");
    let seen = stderr.seen().to_owned();
    assert!(
        line.contains(r#", table "public"."later_t": backend "#)
            && line.contains("lock on later_t, held by backend")
            && line.contains(&holder_pid.to_string()),
        "{line}"
    );
    // Still waiting a while later: said once, not once a second.
    thread::sleep(Duration::from_secs(2));
    holder.batch_execute("ROLLBACK").unwrap();
    let rest = stderr.unseen();
    let out = child.wait_with_output().unwrap();
    assert_exit(&out, 0);
    assert!(!rest.contains("waiting for lock"), "{seen}{rest}");
    // The wait is in `--json` too (it was on stderr only).
    let report = json(&out);
    let waits = report["waits"].as_array().expect("waits");
    assert!(
        waits.len() == 1
            && waits[0].as_str().is_some_and(
                |w| line.ends_with(w) && w.contains("lock on later_t, held by backend")
            ),
        "{waits:?} {line}"
    );
    for (cluster, db) in [(&c.dest[0], &d0), (&c.dest[1], &d1)] {
        for table in ["first_t", "later_t"] {
            assert_eq!(
                digest(cluster, db, table),
                digest(&c.source, &src, table),
                "{table}"
            );
        }
    }

    // A lock held when the job starts: its planning waits (a table's size takes a lock), and
    // says so too.
    let d0 = database(&c.dest[0], LATER);
    let mut holder = hold_lock(&c.dest[0], &d0, "later_t");
    let state = TempPath::new("lock-wait-plan.state");
    let mut child = copyman()
        .args([
            "table",
            "first_t",
            "later_t",
            "--from",
            &c.source.conninfo(&src),
            "--to",
            &c.dest[0].conninfo(&d0),
            "--state",
            state.arg(),
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = StderrLines::take(&mut child);
    let line = stderr.expect("waiting for lock on destination 1 (");
    assert!(
        line.contains("while planning the job: backend ") && line.contains("lock on later_t"),
        "{line}"
    );
    holder.batch_execute("ROLLBACK").unwrap();
    let rest = stderr.unseen();
    assert_eq!(child.wait().unwrap().code(), Some(0), "{rest}");
    assert_eq!(count(&c.dest[0], &d0, "later_t"), 10);
}

// Point 2: signals.

#[test]
fn job_sigint_rolls_back_the_running_tables_keeps_the_committed_ones_and_resume_finishes() {
    let c = clusters();
    let schema = "CREATE TABLE big_a (id int8 PRIMARY KEY, v text);
                  CREATE TABLE big_b (id int8 PRIMARY KEY, v text);
                  CREATE TABLE small_a (id int8 PRIMARY KEY, v text);
                  CREATE TABLE small_b (id int8 PRIMARY KEY, v text);";
    let src = database(
        &c.source,
        &format!(
            "{schema}
             INSERT INTO big_a SELECT g, repeat('a', 100) FROM generate_series(1, 3000) g;
             INSERT INTO big_b SELECT g, repeat('b', 100) FROM generate_series(1, 3000) g;
             INSERT INTO small_a SELECT g, 'a' || g FROM generate_series(1, 10) g;
             INSERT INTO small_b SELECT g, 'b' || g FROM generate_series(1, 10) g;"
        ),
    );
    let d0 = database(&c.dest[0], schema);
    let d1 = database(&c.dest[1], schema);
    let state = TempPath::new("sigint.state");
    let from = c.source.conninfo(&src);
    let (to0, to1) = (c.dest[0].conninfo(&d0), c.dest[1].conninfo(&d1));
    let args = [
        "--json",
        "table",
        "--from",
        &from,
        "--to",
        &to0,
        "--to",
        &to1,
        "--state",
        state.arg(),
    ];
    // A slow source: the big tables take many seconds, the small ones commit early.
    let child = copyman()
        .args(args)
        .args(["--jobs", "3", "--max-rate", "40k"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while ["small_a", "small_b"]
        .iter()
        .any(|t| count(&c.dest[0], &d0, t) < 10 || count(&c.dest[1], &d1, t) < 10)
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the small tables never committed"
        );
        thread::sleep(Duration::from_millis(50));
    }
    signal(&child, "INT");
    let out = child.wait_with_output().unwrap();
    assert_exit(&out, 130);
    let stderr = text(&out.stderr);
    assert!(
        stderr
            .contains("SIGINT received: stopping the job: the tables being copied are rolled back"),
        "{stderr}"
    );
    // Exactly which tables were committed and which were not.
    let summary = stderr
        .lines()
        .find(|l| l.starts_with("copyman: interrupted by SIGINT: committed on every destination"))
        .unwrap_or_else(|| panic!("no summary of the interruption:\n{stderr}"));
    let (done, not) = summary.split_once("; not committed everywhere: ").unwrap();
    for table in ["small_a", "small_b"] {
        assert!(
            done.contains(&format!(r#""public"."{table}""#)),
            "{summary}"
        );
    }
    for table in ["big_a", "big_b"] {
        assert!(not.contains(&format!(r#""public"."{table}""#)), "{summary}");
        assert!(!done.contains(table), "{summary}");
    }
    let report = json(&out);
    assert_eq!(report["status"], "interrupted", "{report}");
    assert_eq!(report["exit_code"], 130);
    for dest in 0..2 {
        for table in ["small_a", "small_b"] {
            assert_eq!(
                record(&report, table, dest)["status"],
                "committed",
                "{report}"
            );
        }
        for table in ["big_a", "big_b"] {
            let r = record(&report, table, dest);
            assert_eq!(r["status"], "interrupted", "{report}");
            assert!(
                r["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("rolled back, nothing of it committed: interrupted by SIGINT"),
                "{report}"
            );
        }
    }
    // Every server clean: no COPY left, nothing prepared; every table complete or empty.
    assert_eq!(copy_backends(&c.source, &src), 0);
    for (cluster, db) in [(&c.dest[0], &d0), (&c.dest[1], &d1)] {
        assert_eq!(copy_backends(cluster, db), 0);
        assert!(prepared_xacts(cluster).is_empty());
        for table in ["small_a", "small_b"] {
            assert_eq!(digest(cluster, db, table), digest(&c.source, &src, table));
        }
        for table in ["big_a", "big_b"] {
            assert_eq!(count(cluster, db, table), 0, "{table}");
        }
    }

    // --resume: the committed tables are skipped, the others copied; all identical.
    let out = copyman().args(args).arg("--resume").output().unwrap();
    assert_exit(&out, 0);
    let report = json(&out);
    for dest in 0..2 {
        for table in ["small_a", "small_b"] {
            assert_eq!(record(&report, table, dest)["status"], "already done");
        }
        for table in ["big_a", "big_b"] {
            assert_eq!(record(&report, table, dest)["status"], "committed");
        }
    }
    for (cluster, db) in [(&c.dest[0], &d0), (&c.dest[1], &d1)] {
        for table in ["small_a", "small_b", "big_a", "big_b"] {
            assert_eq!(
                digest(cluster, db, table),
                digest(&c.source, &src, table),
                "{table}"
            );
        }
    }
}

#[test]
fn job_sigterm_cancels_a_table_waiting_on_a_lock_and_rolls_it_back() {
    let c = clusters();
    let src = database(&c.source, &format!("{LATER}{FILL_LATER}"));
    let d0 = database(&c.dest[0], LATER);
    let d1 = database(&c.dest[1], LATER);
    let state = TempPath::new("sigterm.state");
    let (mut child, mut holder) = job_then_lock(c, &src, &d0, &d1, &state, &[]);
    let mut stderr = StderrLines::take(&mut child);
    stderr.expect("waiting for lock on destination 1 (");
    // The job sits in later_t's lock wait: the signal must cancel it, not wait for the lock.
    signal(&child, "TERM");
    let rest = stderr.unseen();
    let out = child.wait_with_output().unwrap();
    holder.batch_execute("ROLLBACK").unwrap();
    assert_exit(&out, 143);
    assert!(
        rest.contains("SIGTERM received: stopping the job"),
        "{rest}"
    );
    let report = json(&out);
    assert_eq!(report["status"], "interrupted", "{report}");
    for dest in 0..2 {
        assert_eq!(record(&report, "first_t", dest)["status"], "committed");
        assert_eq!(
            record(&report, "later_t", dest)["status"],
            "interrupted",
            "{report}"
        );
    }
    for (cluster, db) in [(&c.dest[0], &d0), (&c.dest[1], &d1)] {
        assert_eq!(count(cluster, db, "first_t"), 3000);
        assert_eq!(count(cluster, db, "later_t"), 0);
        assert_eq!(copy_backends(cluster, db), 0);
    }
}

// Point 3: the options of one table, in a job.

#[test]
fn job_stall_timeout_fails_a_table_whose_destination_moves_no_byte() {
    let c = clusters();
    let src = database(&c.source, &format!("{LATER}{FILL_LATER}"));
    let d0 = database(&c.dest[0], LATER);
    let d1 = database(&c.dest[1], LATER);
    // Destination 1 cannot take later_t's rows (a lock): it moves no byte.
    let state = TempPath::new("stall.state");
    let (child, mut holder) = job_then_lock(c, &src, &d0, &d1, &state, &["--stall-timeout", "1"]);
    let out = child.wait_with_output().unwrap();
    holder.batch_execute("ROLLBACK").unwrap();
    // A rate-capped source is no stall: first_t committed; later_t failed.
    assert_exit(&out, 4);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(r#"table "public"."later_t" on destination 1 ("#)
            && stderr.contains("stalled for 1 s: no byte moved"),
        "{stderr}"
    );
    let report = json(&out);
    assert_eq!(
        record(&report, "first_t", 0)["status"],
        "committed",
        "{report}"
    );
    assert_eq!(
        record(&report, "later_t", 0)["status"],
        "failed",
        "{report}"
    );
    assert_eq!(
        record(&report, "later_t", 1)["status"],
        "rolled back",
        "{report}"
    );
    for (cluster, db) in [(&c.dest[0], &d0), (&c.dest[1], &d1)] {
        assert_eq!(count(cluster, db, "first_t"), 3000);
        assert_eq!(count(cluster, db, "later_t"), 0);
    }

    // Held when the job starts, the lock stalls its planning the same way: nothing is copied.
    let d0 = database(&c.dest[0], LATER);
    let mut holder = hold_lock(&c.dest[0], &d0, "later_t");
    let state = TempPath::new("stall-plan.state");
    let out = run(&[
        "table",
        "first_t",
        "later_t",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&d0),
        "--state",
        state.arg(),
        "--stall-timeout",
        "1",
    ]);
    holder.batch_execute("ROLLBACK").unwrap();
    assert_exit(&out, 1);
    assert!(
        text(&out.stderr).contains("stalled for 1 s: no byte moved"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &d0, "first_t"), 0);
}

#[test]
fn job_allow_count_mismatch_commits_with_a_warning_and_fails_without_it() {
    let c = clusters();
    let schema = "CREATE TABLE t (id int8 PRIMARY KEY, v text);
                  CREATE TABLE u (id int8 PRIMARY KEY, v text);";
    let src = database(
        &c.source,
        &format!(
            "{schema} INSERT INTO t SELECT g, 'x' FROM generate_series(1, 1000) g;
             INSERT INTO u SELECT g, 'u' FROM generate_series(1, 10) g;"
        ),
    );
    // A trigger on destination 1 drops the even rows of t.
    let dest_sql = format!(
        "{schema}
         CREATE FUNCTION drop_even() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN IF NEW.id % 2 = 0 THEN RETURN NULL; END IF; RETURN NEW; END $$;
         CREATE TRIGGER drop_even BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION drop_even();"
    );
    let d0 = database(&c.dest[0], &dest_sql);
    let state = TempPath::new("mismatch.state");
    let from = c.source.conninfo(&src);
    let to = c.dest[0].conninfo(&d0);
    let args = [
        "--json",
        "table",
        "t",
        "u",
        "--from",
        &from,
        "--to",
        &to,
        "--state",
        state.arg(),
        "--jobs",
        "1",
    ];
    let out = run(&args);
    assert_exit(&out, 1);
    let report = json(&out);
    let r = record(&report, "t", 0);
    assert_eq!(r["status"], "failed", "{report}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("row count mismatch: the source sent 1000 rows, the destination stored 500"),
        "{report}"
    );
    assert_eq!(count(&c.dest[0], &d0, "t"), 0);

    // A resume (u committed: a run without --resume is refused rather than copy it twice).
    let out = copyman()
        .args(args)
        .args(["--allow-count-mismatch", "--resume"])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            r#"copyman: warning: "public"."t" → destination 1 ("#
        ) && stderr.contains(
            "row count mismatch: the source sent 1000 rows, the destination stored 500 (allowed)"
        ),
        "{stderr}"
    );
    let report = json(&out);
    let r = record(&report, "t", 0);
    assert_eq!(r["status"], "committed", "{report}");
    assert_eq!(r["rows"], 500);
    assert!(r["warning"].as_str().unwrap().contains("stored 500"));
    assert_eq!(count(&c.dest[0], &d0, "t"), 500);
    assert_eq!(count(&c.dest[0], &d0, "u"), 10);
}

#[test]
fn job_encoding_is_refused_with_the_reason() {
    let c = clusters();
    let src = database(&c.source, TWO);
    let d0 = database(&c.dest[0], TWO);
    let out = run(&[
        "table",
        "locked_t",
        "other_t",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&d0),
        "--encoding",
        "LATIN1",
    ]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "--encoding is for file and stdin endpoints: servers convert between themselves"
        ),
        "{stderr}"
    );
}

/// A flag of the single-table copy with a flag that makes a job says which flag made it a job
/// (it spoke of "a job of many tables" for one named table), and to leave that out (types46 F4).
#[test]
fn a_one_table_flag_in_a_job_names_what_made_it_a_job() {
    let out = run(&[
        "table",
        "items",
        "--from",
        "host=/nonexistent/a dbname=x",
        "--to",
        "host=/nonexistent/b dbname=x",
        "--verify",
        "--columns",
        "id",
    ]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "--columns is for one table copied alone, and --verify given makes this run a job"
        ) && stderr.contains("leave that out"),
        "{stderr}"
    );
}

/// A job the source refuses before any table is copied (its LOCK of a table another session
/// holds, under --lock-timeout) names the source and its SQLSTATE in `--json` (only inside the
/// error's words before).
#[test]
fn a_job_refused_by_its_source_names_it_and_its_sqlstate_in_json() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE a (id int); CREATE TABLE b (id int)",
    );
    let dst = database(
        &c.dest[0],
        "CREATE TABLE a (id int); CREATE TABLE b (id int)",
    );
    let mut holder = c.source.connect(&src);
    holder
        .batch_execute("BEGIN; LOCK TABLE a IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let state = TempPath::new("refused.state");
    let out = run(&[
        "--json",
        "table",
        "a",
        "b",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&dst),
        "--lock-timeout",
        "300ms",
        "--state",
        state.arg(),
    ]);
    holder.batch_execute("ROLLBACK").unwrap();
    let doc = json(&out);
    assert_eq!(doc["server"], "source", "{doc}");
    assert_eq!(doc["sqlstate"], "55P03", "{doc}");
}

/// A DDL on the source during a job (`VACUUM FULL`, an `ALTER TABLE`) waits for the lock the
/// job's snapshot session holds on its tables to the job's end; a worker that then read that
/// table waited for the DDL, which waited for the job: it hung for ever, naming the DDL as the
/// lock's holder. The worker takes its lock with NOWAIT: that table fails, naming the cycle, the
/// job ends (the DDL then runs), and a resume copies the table.
#[test]
fn a_ddl_queued_behind_the_jobs_lock_fails_its_table_rather_than_waiting_for_ever() {
    let c = clusters();
    let src = database(&c.source, &format!("{LATER}{FILL_LATER}"));
    let dst = database(&c.dest[0], LATER);
    let state = TempPath::new("ddl.state");
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
    let job = |extra: &[&str]| {
        let mut args = vec![
            "table",
            "first_t",
            "later_t",
            "--from",
            &from,
            "--to",
            &to,
            "--jobs",
            "1",
            "--state",
            state.arg(),
        ];
        args.extend(extra);
        args.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let args = job(&[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // `first_t` (the larger) committed; the job's snapshot session holds both tables locked.
    let paused = Paused::start(&args, "committed:1");
    let ddl = {
        let mut client = c.source.connect(&src);
        thread::spawn(move || {
            client
                .batch_execute("VACUUM FULL later_t")
                .map_err(|e| e.to_string())
        })
    };
    wait_for_query(&c.source, &src, "VACUUM FULL later_t");
    let out = paused.resume();
    assert_exit(&out, 4);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("waits for an exclusive lock on the table")
            && stderr.contains("SQLSTATE 55P03"),
        "{stderr}"
    );
    // The job ended, so the DDL ran.
    ddl.join().unwrap().unwrap();
    assert_eq!(count(&c.dest[0], &dst, "first_t"), 3000);
    assert_eq!(count(&c.dest[0], &dst, "later_t"), 0);
    let args = job(&["--resume"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_exit(&run(&args), 0);
    assert_eq!(
        digest(&c.dest[0], &dst, "later_t"),
        digest(&c.source, &src, "later_t")
    );
    assert_eq!(count(&c.dest[0], &dst, "first_t"), 3000);
}

/// `copyman ARGS` run on a terminal (`script`): how it exited (`script -e`: as copyman did) and
/// what the terminal showed.
fn on_a_terminal(args: &[&str]) -> (std::process::ExitStatus, String) {
    on_a_terminal_of("xterm", &[], args)
}

/// [`on_a_terminal`] of the type `term` (`TERM`), with `env` set too.
fn on_a_terminal_of(
    term: &str,
    env: &[(&str, &str)],
    args: &[&str],
) -> (std::process::ExitStatus, String) {
    use std::io::Read;
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let command: Vec<String> = std::iter::once(env!("CARGO_BIN_EXE_copyman"))
        .chain(args.iter().copied())
        .map(quote)
        .collect();
    let mut child = std::process::Command::new("script")
        .args(["-q", "-e", "-c", &command.join(" "), "/dev/null"])
        .env("TERM", term)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run script");
    let mut screen = Vec::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut screen)
        .unwrap();
    let status = child.wait().unwrap();
    (status, String::from_utf8_lossy(&screen).into_owned())
}

/// On a terminal without cursor codes (`TERM=dumb`: an editor's shell, a CI console), no bar
/// is drawn, and the plain lines of `--progress` come instead (progress62 F5: nothing until
/// the summary).
#[test]
fn a_dumb_terminal_gets_the_plain_lines() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE t (id int8); INSERT INTO t SELECT generate_series(1, 200000);",
    );
    let d1 = database(&c.dest[0], "CREATE TABLE t (id int8);");
    let state = TempPath::new("dumb.state");
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&d1));
    // About 3.6 MB at 400 kB/s: some 9 s, a line after 5.
    let (status, screen) = on_a_terminal_of(
        "dumb",
        &[],
        &[
            "table",
            "t",
            "--from",
            &from,
            "--to",
            &to,
            "--max-rate",
            "400k",
            "--state",
            state.arg(),
        ],
    );
    assert!(status.success(), "{screen}");
    assert!(
        !screen.contains('\x1b') && screen.contains("copyman: 5 s: 0/1 tables, "),
        "{screen}"
    );
    // The table in flight named, with its rows so far (jobs64 F5: a log named no table).
    assert!(
        screen.contains(r#"/s); "public"."t": copying, "#),
        "{screen}"
    );
    assert_eq!(count(&c.dest[0], &d1, "t"), 200_000);
}

/// On a terminal, the overall bar of a job of many small tables moves as its tables finish:
/// each weighs its planned size, counted whole once it is done. It measured COPY bytes against
/// the tables' sizes on disk (a page at least for one row), and stood at a few percent, with an
/// ETA of minutes, until the job's end.
#[test]
fn a_job_of_small_tables_moves_its_bar_as_they_finish() {
    let c = clusters();
    let schema: String = (1..=150)
        .map(|i| format!("CREATE TABLE s{i} (id int); INSERT INTO s{i} VALUES ({i});"))
        .collect();
    let src = database(&c.source, &schema);
    let tables: String = (1..=150)
        .map(|i| format!("CREATE TABLE s{i} (id int);"))
        .collect();
    let d1 = database(&c.dest[0], &tables);
    let state = TempPath::new("small-bar.state");
    let (status, screen) = on_a_terminal(&[
        "table",
        "--table",
        "s*",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&d1),
        "--state",
        state.arg(),
        "--jobs",
        "1",
        "--truncate",
    ]);
    assert!(status.success(), "{screen}");
    // What each draw of the bar showed: its percentage and the tables done ("] 42% … 63/150
    // tables"), while the job ran.
    let shown: Vec<(u32, u32)> = screen
        .split("] ")
        .skip(1)
        .filter_map(|s| {
            let percent = s.trim_start().split('%').next()?.parse().ok()?;
            let done = s
                .split("/150 tables")
                .next()?
                .rsplit(' ')
                .next()?
                .parse()
                .ok()?;
            Some((percent, done))
        })
        .filter(|&(_, done)| done > 0 && done < 150)
        .collect();
    assert!(!shown.is_empty(), "no draw while the job ran: {screen}");
    // At least about as far as the tables done say (they weigh alike).
    assert!(
        shown
            .iter()
            .all(|&(percent, done)| percent * 150 >= done * 100 / 2),
        "(percent, tables done): {shown:?}"
    );
    assert_eq!(count(&c.dest[0], &d1, "s150"), 1);
}

/// On a terminal, a job that stops at once (a table failed, the other rolled back) does not
/// draw its bar at 100%: a table ended held by no destination leaves the job's weight rather
/// than counting as copied ("100% 430 MiB/s ETA 0s 0/2 tables" was its last frame).
#[test]
fn a_job_that_stopped_at_once_does_not_draw_its_bar_full() {
    let c = clusters();
    let schema = "CREATE TABLE big (id int); CREATE TABLE small (id int PRIMARY KEY);";
    let src = database(
        &c.source,
        &format!(
            "{schema} INSERT INTO big SELECT generate_series(1, 300000); \
             INSERT INTO small VALUES (1);"
        ),
    );
    let d1 = database(
        &c.dest[0],
        &format!("{schema} INSERT INTO small VALUES (1);"),
    );
    let state = TempPath::new("stopped-bar.state");
    let (_, screen) = on_a_terminal(&[
        "table",
        "big",
        "small",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&d1),
        "--state",
        state.arg(),
        "--jobs",
        "2",
    ]);
    assert!(screen.contains("23505"), "{screen}");
    let full_with_nothing_done = screen
        .split("] ")
        .skip(1)
        .any(|s| s.trim_start().starts_with("100%") && s.contains("0/2 tables"));
    assert!(!full_with_nothing_done, "{screen}");
    assert_eq!(count(&c.dest[0], &d1, "big"), 0);
}

/// `--verbose` logs a job's steps: each table a worker takes with its statements (its
/// `TRUNCATE` was in no log: progress62 F6), each statement that ends its transactions and its
/// answer, how each table ended where (a job logged only its planning: cli43 F7).
#[test]
fn verbose_logs_a_jobs_steps() {
    let c = clusters();
    let tables = "CREATE TABLE va (id int); CREATE TABLE vb (id int);";
    let src = database(
        &c.source,
        &format!("{tables} INSERT INTO va SELECT generate_series(1, 10);"),
    );
    let d1 = database(&c.dest[0], tables);
    let state = TempDir::new("verbose-job");
    let out = run(&[
        "table",
        "va",
        "vb",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&d1),
        "--state",
        &state.path("job.state"),
        "--truncate",
        "-v",
    ]);
    assert_exit(&out, 0);
    let said = text(&out.stderr);
    for step in [
        "copyman: job 1: \"public\".",
        "\"public\".\"va\" on the source: COPY \"public\".\"va\" (\"id\") TO STDOUT",
        "): BEGIN; TRUNCATE ONLY \"public\".\"vb\"; ",
        "\"public\".\"va\" on destination 1 (",
        "): COMMIT (done)",
        "\"public\".\"vb\" → destination 1 (",
        "): committed (",
    ] {
        assert!(said.contains(step), "{step}: {said}");
    }
    // The closing line says the data and its rate, as a one-table run's (progress62 F7).
    let closing = said
        .lines()
        .find(|l| l.contains(" committed on the destinations in "));
    let closing = closing.unwrap_or_else(|| panic!("{said}"));
    assert!(
        closing.contains(" s (") && closing.contains("B/s)"),
        "{closing}"
    );
}

/// On a terminal, a copy that stopped moving says so on its bar, in place of its counts: they
/// kept the rate from before the stall and "1:ok" of the destination copyman waited for
/// (progress62 F2).
#[test]
fn a_bar_says_that_nothing_moves_in_place_of_its_counts() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE t (id int8); INSERT INTO t SELECT generate_series(1, 3);",
    );
    let d1 = database(&c.dest[0], "CREATE TABLE t (id int8);");
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&d1));
    // A second a row: the source's COPY sends nothing for some 3 s.
    let (status, screen) = on_a_terminal_of(
        "xterm",
        &[("COPYMAN_TEST_SAY_AFTER", "1")],
        &[
            "table",
            "t",
            "--from",
            &from,
            "--to",
            &to,
            "--where",
            "pg_sleep(1) IS NOT NULL",
        ],
    );
    assert!(status.success(), "{screen}");
    let bar = screen
        .split(['\r', '\n', '\x1b'])
        .find(|s| s.contains("00:00:0") && s.contains("nothing has moved for "));
    let bar = bar.unwrap_or_else(|| panic!("no bar said it: {screen}"));
    assert!(!bar.contains(":ok"), "{bar}");
    // Once the rows came, the counts again, without it.
    assert!(
        !screen
            .split(['\r', '\n', '\x1b'])
            .any(|s| s.contains(":ok") && s.contains("nothing has moved")),
        "{screen}"
    );
    assert_eq!(count(&c.dest[0], &d1, "t"), 3);
}
