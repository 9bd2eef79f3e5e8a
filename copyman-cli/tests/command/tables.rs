//! `copyman table` with many tables (a job): selection, one snapshot under a concurrent writer,
//! parallel jobs to three destinations verified, kill -9 then --resume, bad input.

use crate::common;

use std::fs;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use copyman_testkit::Cluster;
use serde_json::Value;

/// The `--json` records of one table, by destination.
fn records<'a>(report: &'a Value, table: &str) -> Vec<&'a Value> {
    report["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .filter(|r| r["table"] == table)
        .collect()
}

fn tables_copied(report: &Value) -> Vec<String> {
    let mut names: Vec<String> = report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["table"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names.dedup();
    names
}

const SCHEMA: &str = "
    CREATE SCHEMA sales;
    CREATE TABLE public.small (id int PRIMARY KEY, note text);
    CREATE TABLE public.big (id int PRIMARY KEY, note text);
    CREATE TABLE public.\"Mixed\" (id int);
    CREATE TABLE sales.orders (id int, amount numeric(12,2));
    CREATE TABLE sales.orders_old (id int);
    CREATE TABLE public.events (id int, at date) PARTITION BY RANGE (at);
    CREATE TABLE public.events_2024 PARTITION OF public.events
        FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
    CREATE TABLE public.events_2025 PARTITION OF public.events
        FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
    CREATE VIEW public.v_small AS SELECT * FROM public.small;
";

const FILL: &str = "
    INSERT INTO public.small SELECT g, 'n' || g FROM generate_series(1, 10) g;
    INSERT INTO public.big SELECT g, repeat('x', 100) FROM generate_series(1, 3000) g;
    INSERT INTO public.\"Mixed\" SELECT generate_series(1, 3);
    INSERT INTO sales.orders SELECT g, g * 1.5 FROM generate_series(1, 300) g;
    INSERT INTO sales.orders_old SELECT generate_series(1, 5);
    INSERT INTO public.events SELECT g, date '2024-06-01' + g FROM generate_series(1, 400) g;
";

#[test]
fn tables_selection_by_schema_pattern_and_exclusion_copies_partitions_through_their_root() {
    let c = clusters();
    let src = database(&c.source, &format!("{SCHEMA}{FILL}"));
    let dst = database(&c.dest[0], SCHEMA);
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
    // (Each a job of its own, with its own state file: one of another selection is not
    // replaced by the next.)
    let job = |extra: &[&str]| {
        let state = TempPath::new("selection.state");
        let mut args = vec![
            "--json",
            "table",
            "--from",
            &from,
            "--to",
            &to,
            "--state",
            state.arg(),
        ];
        args.extend_from_slice(extra);
        run(&args)
    };

    // --schema and a --table pattern (unqualified: the search path), minus an exclusion.
    let out = job(&[
        "--schema",
        "sales",
        "--table",
        "ev*",
        "--exclude-table",
        "sales.*_old",
    ]);
    assert_exit(&out, 0);
    let report = json(&out);
    assert_eq!(
        tables_copied(&report),
        [r#""public"."events""#, r#""sales"."orders""#]
    );
    // The partitioned table came through its root, once: every row, nothing twice.
    assert_eq!(
        digest(&c.dest[0], &dst, "public.events"),
        digest(&c.source, &src, "public.events")
    );
    assert_eq!(count(&c.dest[0], &dst, "sales.orders"), 300);
    assert_eq!(count(&c.dest[0], &dst, "sales.orders_old"), 0);
    assert_eq!(count(&c.dest[0], &dst, "public.big"), 0);

    // Quoted names keep their case, ? is one character; a view only when named.
    let out = job(&[
        r#""Mixed""#,
        "public.v_small",
        "--table",
        "bi?",
        "--dry-run",
    ]);
    // The destination's v_small is a plain view too, which COPY cannot write into: refused there
    // (42809), the rest planned; the job would stop before copying anything (exit 1).
    assert_exit(&out, 1);
    let plan = json(&out);
    let refused = plan["tables"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| {
            t["destinations"][0]["plan"]
                .as_str()
                .unwrap()
                .contains("42809")
        })
        .map(|t| t["table"].as_str().unwrap())
        .collect::<Vec<_>>();
    assert_eq!(refused, [r#""public"."v_small""#], "{plan}");
    let mut names: Vec<&str> = plan["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["table"].as_str().unwrap())
        .collect();
    assert_eq!(names[0], r#""public"."big""#, "largest first");
    names.sort();
    assert_eq!(
        names,
        [
            r#""public"."Mixed""#,
            r#""public"."big""#,
            r#""public"."v_small""#
        ]
    );

    // Nothing given: every table (no view, no partition by itself).
    let out = job(&["--dry-run"]);
    assert_exit(&out, 0);
    let all = json(&out);
    assert_eq!(all["tables"].as_array().unwrap().len(), 6, "{all}");

    // A selection that matches nothing, and a named table that does not exist: exit 2.
    let out = job(&["--table", "nothing*"]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("no table matches"),
        "{}",
        text(&out.stderr)
    );
    let out = job(&["small", "nope"]);
    assert_exit(&out, 2);
    assert!(text(&out.stderr).contains("nope"), "{}", text(&out.stderr));
}

const ACCOUNTS: &str = "
    CREATE TABLE acct_a (id int PRIMARY KEY, amount int8 NOT NULL, pad text);
    CREATE TABLE acct_b (id int PRIMARY KEY, amount int8 NOT NULL, pad text);
";

#[test]
fn tables_one_snapshot_keeps_a_concurrent_writers_invariant_on_every_destination() {
    let c = clusters();
    let src = database(
        &c.source,
        &format!(
            "{ACCOUNTS}
            INSERT INTO acct_a SELECT g, 1000, repeat('p', 200) FROM generate_series(1, 3000) g;
            INSERT INTO acct_b SELECT g, 1000, repeat('p', 200) FROM generate_series(1, 3000) g;"
        ),
    );
    let dsts = [
        database(&c.dest[0], ACCOUNTS),
        database(&c.dest[1], ACCOUNTS),
    ];
    let state = TempPath::new("snapshot.state");
    let stop = Arc::new(AtomicBool::new(false));
    let moves = Arc::new(AtomicU64::new(0));
    let writer = {
        let (stop, moves) = (stop.clone(), moves.clone());
        let mut client = c.source.connect(&src);
        thread::spawn(move || {
            let mut k = 0i32;
            while !stop.load(Ordering::SeqCst) {
                k = k % 3000 + 1;
                let mut tx = client.transaction().unwrap();
                tx.execute("UPDATE acct_a SET amount = amount - 7 WHERE id = $1", &[&k])
                    .unwrap();
                tx.execute("UPDATE acct_b SET amount = amount + 7 WHERE id = $1", &[&k])
                    .unwrap();
                tx.commit().unwrap();
                moves.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    while moves.load(Ordering::SeqCst) < 50 {
        thread::yield_now();
    }
    let before = moves.load(Ordering::SeqCst);
    // Slowed down by the read-rate cap, so that the writer writes throughout the copy.
    let out = run(&[
        "table",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&dsts[0]),
        "--to",
        &c.dest[1].conninfo(&dsts[1]),
        "--jobs",
        "2",
        "--max-rate",
        "800k",
        "--state",
        state.arg(),
    ]);
    let during = moves.load(Ordering::SeqCst) - before;
    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    assert_exit(&out, 0);
    assert!(
        during > 10,
        "the writer wrote during the copy ({during} moves)"
    );
    for (d, db) in c.dest.iter().zip(&dsts) {
        let sum: i64 = d
            .connect(db)
            .query_one(
                "SELECT ((SELECT sum(amount) FROM acct_a) + (SELECT sum(amount) FROM acct_b))::int8",
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(sum, 2 * 3000 * 1000, "the invariant holds on {db}");
    }
}

const SIX: &str = "
    CREATE TABLE t1 (id int8 PRIMARY KEY, name text, at timestamptz, price numeric(12,2), tags text[]);
    CREATE TABLE t2 (id int, total int GENERATED ALWAYS AS (id * 2) STORED, note text);
    CREATE TABLE t3 (id int, f float8, b bytea);
    CREATE TABLE t4 (id int);
    CREATE TABLE t5 (id int, j jsonb);
    CREATE TABLE t6 (id int);
";

const SIX_FILL: &str = "
    INSERT INTO t1 SELECT g, 'name ' || g || E'\\t\\\\ \"q\"', timestamptz '2024-01-01 00:00+00' + g * interval '1 min',
        g * 1.25, ARRAY['a', 'b,' || g] FROM generate_series(1, 3000) g;
    INSERT INTO t2 (id, note) SELECT g, 'x' FROM generate_series(1, 1500) g;
    INSERT INTO t3 SELECT g, g / 3.0, decode(md5(g::text), 'hex') FROM generate_series(1, 1000) g;
    INSERT INTO t4 SELECT generate_series(1, 700);
    INSERT INTO t5 SELECT g, jsonb_build_object('k', g) FROM generate_series(1, 200) g;
";

#[test]
fn tables_jobs_to_three_destinations_are_verified_row_for_row() {
    let c = clusters();
    let src = database(&c.source, &format!("{SIX}{SIX_FILL}"));
    // Three destinations: two clusters, and a second database on the first.
    let dests = [
        (&c.dest[0], database(&c.dest[0], SIX)),
        (&c.dest[1], database(&c.dest[1], SIX)),
        (&c.dest[0], database(&c.dest[0], SIX)),
    ];
    // Rows to be replaced (--truncate empties each table in the copy's transaction).
    c.dest[1]
        .connect(&dests[1].1)
        .batch_execute("INSERT INTO t4 SELECT generate_series(1, 99)")
        .unwrap();
    let state = TempPath::new("three.state");
    let from = c.source.conninfo(&src);
    let to: Vec<String> = dests.iter().map(|(cl, db)| cl.conninfo(db)).collect();
    let out = run(&[
        "--json",
        "table",
        "--from",
        &from,
        "--to",
        &to[0],
        "--to",
        &to[1],
        "--to",
        &to[2],
        "--jobs",
        "3",
        "--truncate",
        "--schema",
        "*",
        "--verify",
        "--state",
        state.arg(),
    ]);
    assert_exit(&out, 0);
    let report = json(&out);
    assert_eq!(report["status"], "ok");
    assert_eq!(report["tables"].as_array().unwrap().len(), 6 * 3);
    for table in ["t1", "t2", "t3", "t4", "t5", "t6"] {
        let expected = digest(&c.source, &src, table);
        for (cl, db) in &dests {
            assert_eq!(digest(cl, db, table), expected, "{table} on {db}");
        }
        for record in records(&report, &format!(r#""public"."{table}""#)) {
            assert_eq!(record["status"], "committed", "{record}");
            assert_eq!(record["verified"], true, "{record}");
            assert_eq!(record["rows"], expected.0, "{record}");
        }
    }
    // The state file has every table on every destination: a resume copies nothing again.
    let out = run(&[
        "--json",
        "table",
        "--from",
        &from,
        "--to",
        &to[0],
        "--to",
        &to[1],
        "--to",
        &to[2],
        "--resume",
        "--schema",
        "*",
        "--state",
        state.arg(),
    ]);
    assert_exit(&out, 0);
    let report = json(&out);
    assert!(
        report["tables"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "already done"),
        "{report}"
    );
}

#[test]
fn tables_a_job_killed_mid_copy_then_resumed_ends_identical_with_every_table_once() {
    let c = clusters();
    let mut schema = String::new();
    let mut fill = String::new();
    for i in 1..=8 {
        schema.push_str(&format!(
            "CREATE TABLE k{i} (id int PRIMARY KEY, pad text);"
        ));
        fill.push_str(&format!(
            "INSERT INTO k{i} SELECT g, repeat('k', 100) FROM generate_series(1, {}) g;",
            1000 + i * 100
        ));
    }
    let src = database(&c.source, &format!("{schema}{fill}"));
    let dsts = [database(&c.dest[0], &schema), database(&c.dest[1], &schema)];
    let state = TempPath::new("kill.state");
    let from = c.source.conninfo(&src);
    let to: Vec<String> = c
        .dest
        .iter()
        .zip(&dsts)
        .map(|(cl, db)| cl.conninfo(db))
        .collect();
    let args = |resume: bool| {
        let mut a = vec![
            "--json".to_owned(),
            "table".into(),
            "--from".into(),
            from.clone(),
            "--to".into(),
            to[0].clone(),
            "--to".into(),
            to[1].clone(),
            "--jobs".into(),
            "2".into(),
            "--max-rate".into(),
            "300k".into(),
            "--state".into(),
            state.arg().into(),
        ];
        if resume {
            a.push("--resume".into());
        }
        a
    };
    // Killed (SIGKILL) once some table committed and was recorded, while others are in flight.
    let mut child = copyman()
        .args(args(false))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let recorded = fs::read_to_string(&state.0).unwrap_or_default();
        if recorded.lines().any(|l| l.starts_with("done\t")) {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "copyman ended before the kill"
        );
        assert!(Instant::now() < deadline, "nothing was recorded");
        thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "killed");
    let recorded = fs::read_to_string(&state.0).unwrap();
    let done_before = recorded.lines().filter(|l| l.starts_with("done\t")).count();
    assert!(done_before < 16, "the kill came before the end: {recorded}");

    let out = copyman().args(args(true)).output().unwrap();
    assert_exit(&out, 0);
    let report = json(&out);
    for i in 1..=8 {
        let table = format!("k{i}");
        let expected = digest(&c.source, &src, &table);
        for (cl, db) in c.dest.iter().zip(&dsts) {
            assert_eq!(
                digest(cl, db, &table),
                expected,
                "{table} on {db}: copied once"
            );
        }
    }
    // What the first run recorded was skipped, the rest copied now.
    let skipped = report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "already done")
        .count();
    assert!(
        skipped >= done_before,
        "{skipped} skipped, {done_before} recorded\n{report}"
    );
    assert!(
        report["tables"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "already done" || r["status"] == "committed"),
        "{report}"
    );
    // No session left behind on any server (one that answered last may still be going away:
    // asked once, under a loaded machine, it was listed and gone by the message).
    for (cl, db) in c.dest.iter().zip(&dsts) {
        let left = settle_backends(cl, db);
        assert!(left.is_empty(), "{left:?}");
    }
}

#[test]
fn tables_a_table_missing_on_a_destination_stops_the_job_and_commits_nothing_of_it() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE a (id int); CREATE TABLE b (id int);
         INSERT INTO a SELECT generate_series(1, 100); INSERT INTO b SELECT generate_series(1, 50);",
    );
    let d0 = database(
        &c.dest[0],
        "CREATE TABLE a (id int); CREATE TABLE b (id int);",
    );
    let d1 = database(&c.dest[1], "CREATE TABLE a (id int);");
    let state = TempPath::new("missing.state");
    let (from, to0, to1) = (
        c.source.conninfo(&src),
        c.dest[0].conninfo(&d0),
        c.dest[1].conninfo(&d1),
    );
    let out = run(&[
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
    ]);
    assert_exit(&out, 1);
    let report = json(&out);
    let b = records(&report, r#""public"."b""#);
    assert_eq!(b[1]["status"], "failed");
    assert_eq!(b[1]["error"]["sqlstate"], "42P01", "{report}");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(r#""public"."b""#)
            && stderr.contains("destination 2")
            && stderr.contains("42P01"),
        "{stderr}"
    );
    // The job stopped before copying: nothing anywhere.
    assert_eq!(count(&c.dest[0], &d0, "a"), 0);
    assert_eq!(count(&c.dest[0], &d0, "b"), 0);
    assert_eq!(count(&c.dest[1], &d1, "a"), 0);

    // --keep-going: every table where it can go; exit 4 (partial).
    let out = run(&[
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
        "--keep-going",
    ]);
    assert_exit(&out, 4);
    assert_eq!(count(&c.dest[0], &d0, "a"), 100);
    assert_eq!(count(&c.dest[0], &d0, "b"), 50);
    assert_eq!(count(&c.dest[1], &d1, "a"), 100);
}

#[test]
fn tables_permission_denied_and_a_held_lock_fail_only_their_table_with_keep_going() {
    let c = clusters();
    let schema = "CREATE TABLE open_t (id int); CREATE TABLE closed_t (id int); CREATE TABLE locked_t (id int);";
    let src = database(
        &c.source,
        &format!(
            "{schema} INSERT INTO open_t SELECT generate_series(1, 10);
             INSERT INTO closed_t SELECT generate_series(1, 10); INSERT INTO locked_t VALUES (1);"
        ),
    );
    let d0 = database(&c.dest[0], schema);
    // A destination role that may not write closed_t.
    let role = format!("writer_{d0}");
    c.dest[0]
        .connect(&d0)
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN PASSWORD 'pw';
             GRANT SELECT, INSERT, TRUNCATE ON open_t, locked_t TO {role};
             GRANT SELECT ON closed_t TO {role};"
        ))
        .unwrap();
    let mut holder = c.dest[0].connect(&d0);
    let mut tx = holder.transaction().unwrap();
    tx.batch_execute("LOCK TABLE locked_t IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let to = format!(
        "host={} port={} user={role} password=pw dbname={d0}",
        c.dest[0].host(),
        c.dest[0].port()
    );
    let state = TempPath::new("denied.state");
    let out = run(&[
        "--json",
        "table",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &to,
        "--state",
        state.arg(),
        "--keep-going",
        "--jobs",
        "1",
        "--lock-timeout",
        "300ms",
    ]);
    tx.rollback().unwrap();
    assert_exit(&out, 4);
    let report = json(&out);
    let closed = records(&report, r#""public"."closed_t""#);
    assert_eq!(closed[0]["status"], "failed");
    assert_eq!(closed[0]["error"]["sqlstate"], "42501", "{report}");
    let locked = records(&report, r#""public"."locked_t""#);
    assert_eq!(locked[0]["status"], "failed");
    assert_eq!(locked[0]["error"]["sqlstate"], "55P03", "{report}");
    assert_eq!(
        records(&report, r#""public"."open_t""#)[0]["status"],
        "committed"
    );
    assert_eq!(count(&c.dest[0], &d0, "open_t"), 10);
    assert_eq!(count(&c.dest[0], &d0, "closed_t"), 0);
    assert_eq!(count(&c.dest[0], &d0, "locked_t"), 0);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("closed_t") && stderr.contains("42501"),
        "{stderr}"
    );
}

#[test]
fn tables_the_default_state_file_is_under_the_cache_directory_and_named() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE a (id int); INSERT INTO a VALUES (1);",
    );
    let dst = database(&c.dest[0], "CREATE TABLE a (id int);");
    let cache = std::env::temp_dir().join(format!("copyman-cache-{}", std::process::id()));
    let out = copyman()
        .args([
            "table",
            "--table",
            "a",
            "--from",
            &c.source.conninfo(&src),
            "--to",
            &c.dest[0].conninfo(&dst),
        ])
        .env("XDG_CACHE_HOME", &cache)
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    let jobs = cache.join("copyman/jobs");
    let files: Vec<_> = fs::read_dir(&jobs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    assert!(
        stderr.contains(&format!("state file: {}", files[0].display())),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &dst, "a"), 1);
    fs::remove_dir_all(cache).unwrap();
}

#[test]
fn tables_split_larger_than_copies_a_table_as_ctid_ranges_verified() {
    let c = clusters();
    let schema = "CREATE TABLE big (id int PRIMARY KEY, pad text); CREATE TABLE small (id int);";
    let src = database(
        &c.source,
        &format!(
            "{schema} INSERT INTO big SELECT g, repeat('r', 200) FROM generate_series(1, 4000) g;
             INSERT INTO small SELECT generate_series(1, 3);"
        ),
    );
    let dsts = [database(&c.dest[0], schema), database(&c.dest[1], schema)];
    let state = TempPath::new("split.state");
    let args = |extra: &[&str]| {
        let mut a = vec![
            "--json".to_owned(),
            "table".into(),
            "--from".into(),
            c.source.conninfo(&src),
            "--to".into(),
            c.dest[0].conninfo(&dsts[0]),
            "--to".into(),
            c.dest[1].conninfo(&dsts[1]),
            "--split-larger-than".into(),
            "100k".into(),
            "--jobs".into(),
            "3".into(),
            "--verify".into(),
            "--state".into(),
            state.arg().into(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let out = copyman().args(args(&["--dry-run"])).output().unwrap();
    assert_exit(&out, 0);
    let plan = json(&out);
    assert_eq!(
        plan["tables"][0]["ranges"].as_array().unwrap().len(),
        3,
        "{plan}"
    );
    // A table emptied first is copied whole: its TRUNCATE commits with its rows.
    let out = copyman()
        .args(args(&["--dry-run", "--truncate", "--schema", "*"]))
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let plan = json(&out);
    assert_eq!(
        plan["tables"][0]["ranges"].as_array().map(Vec::len),
        Some(0),
        "{plan}"
    );
    let out = copyman().args(args(&[])).output().unwrap();
    assert_exit(&out, 0);
    let report = json(&out);
    let expected = digest(&c.source, &src, "big");
    for (cl, db) in c.dest.iter().zip(&dsts) {
        assert_eq!(digest(cl, db, "big"), expected);
    }
    for record in records(&report, r#""public"."big""#) {
        assert_eq!(record["status"], "committed", "{record}");
        assert_eq!(record["verified"], true, "{record}");
        assert_eq!(record["rows"], 4000, "{record}");
    }
}

#[test]
fn tables_verify_reports_a_checksum_mismatch_per_table_and_destination() {
    let c = clusters();
    let schema = "CREATE TABLE same (id int, v text); CREATE TABLE changed (id int, v text);";
    let src = database(
        &c.source,
        &format!(
            "{schema} INSERT INTO same SELECT g, 'v' || g FROM generate_series(1, 100) g;
             INSERT INTO changed SELECT g, 'v' || g FROM generate_series(1, 100) g;"
        ),
    );
    // Destination 2 rewrites a value as it stores it: same row count, other rows.
    let d0 = database(&c.dest[0], schema);
    let d1 = database(
        &c.dest[1],
        &format!(
            "{schema}
             CREATE FUNCTION tamper() RETURNS trigger LANGUAGE plpgsql AS
               $$ BEGIN IF NEW.id = 42 THEN NEW.v := 'tampered'; END IF; RETURN NEW; END $$;
             CREATE TRIGGER tamper BEFORE INSERT ON changed FOR EACH ROW EXECUTE FUNCTION tamper();"
        ),
    );
    let state = TempPath::new("verify.state");
    let out = run(&[
        "--json",
        "table",
        "same",
        "changed",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&d0),
        "--to",
        &c.dest[1].conninfo(&d1),
        "--verify",
        "--state",
        state.arg(),
    ]);
    // Everything was committed: not 1 ("nothing committed anywhere"), but partial.
    assert_exit(&out, 4);
    let report = json(&out);
    let changed = records(&report, r#""public"."changed""#);
    assert_eq!(changed[0]["verified"], true, "{report}");
    assert_eq!(changed[1]["verified"], false, "{report}");
    assert!(
        changed[1]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("checksum differs"),
        "{report}"
    );
    for record in records(&report, r#""public"."same""#) {
        assert_eq!(record["verified"], true, "{record}");
    }
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("changed") && stderr.contains("checksum differs"),
        "{stderr}"
    );
    // An append: a resume leaves it to the user (never empties it), and no line says otherwise.
    assert!(
        stderr.contains("--resume leaves it to you")
            && !stderr.contains("--resume empties it there"),
        "{stderr}"
    );
    // The JSON says partial, as the exit status does.
    assert_eq!(report["status"], "partial", "{report}");
    // The table that differs is not counted done (2 tables to 2 destinations, one differs).
    assert!(
        stderr.contains("3 of 4 tables × destinations done"),
        "{stderr}"
    );
}

/// Keeps the helpers used (each test binary uses its own part of common).
#[allow(dead_code)]
#[test]
fn tables_a_database_given_twice_or_the_source_itself_is_refused_before_anything() {
    let c = clusters();
    let src = database(&c.source, &format!("{SCHEMA}{FILL}"));
    let d1 = database(&c.dest[0], SCHEMA);
    let state = TempPath::new("twice.state");
    // One database reached twice: by TCP and by its socket.
    let by_socket = format!(
        "host={} port={} user=postgres dbname={d1}",
        c.dest[0].socket_dir().display(),
        c.dest[0].port()
    );
    let out = run(&[
        "table",
        "--schema",
        "sales",
        "--from",
        &c.source.url(&src),
        "--to",
        &c.dest[0].url(&d1),
        "--to",
        &by_socket,
        "--state",
        state.arg(),
    ]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains(") are the same database"),
        "{}",
        text(&out.stderr)
    );
    // The source's own database as a destination.
    let out = run(&[
        "table",
        "--schema",
        "sales",
        "--from",
        &c.source.url(&src),
        "--to",
        &c.source.url(&src),
        "--state",
        state.arg(),
    ]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("is the source's database"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &d1, "sales.orders"), 0);
    assert_eq!(count(&c.source, &src, "sales.orders"), 300);
}

fn _uses(_: &Cluster) {}
