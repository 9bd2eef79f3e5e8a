//! FK-linked groups (`--truncate`, or a resume taking tables up again) where the review found
//! them wrong: a group whose members are emptied on some destinations only, a partitioned
//! member that references another, and a member after the first waiting for a lock on a
//! destination. Real clusters, shared by the binary; a fresh database per test.

use crate::common;

use std::fs;

use common::*;

/// `system SYSID database OID` of `db` on `cluster`: how the state file names a destination.
fn identity_key(cluster: &copyman_testkit::Cluster, db: &str) -> String {
    let row = cluster
        .connect(db)
        .query_one(
            "SELECT (SELECT system_identifier::text FROM pg_control_system()), \
             (SELECT oid::text FROM pg_database WHERE datname = current_database())",
            &[],
        )
        .unwrap();
    let (system, database): (String, String) = (row.get(0), row.get(1));
    format!("system {system} database {database}")
}

// Point 1: "truncated together" is decided on each destination.

/// a references b. Destination 1 has b done and a begun; destination 2 has b begun and a not
/// begun (copied there without emptying): both are emptied somewhere, so they form a group, but
/// on destination 2 a `TRUNCATE ONLY b` without a is refused (0A000). There b is emptied as a
/// table alone would be (a `DELETE`: a holds no rows there), and the resume succeeds.
#[test]
fn a_resume_whose_group_is_emptied_on_part_of_each_destination_succeeds() {
    let c = clusters();
    let schema = "CREATE TABLE b (id int PRIMARY KEY, v text);
         CREATE TABLE a (id int PRIMARY KEY, b int NOT NULL REFERENCES b, v text);";
    let rows = "INSERT INTO b SELECT g, 'b' || g FROM generate_series(1, 50) g;
         INSERT INTO a SELECT g, 1 + g % 50, 'a' || g FROM generate_series(1, 400) g;";
    let src = database(&c.source, &format!("{schema} {rows}"));
    // Destination 1: b committed (recorded done), a committed in part, not recorded done.
    let d1 = database(
        &c.dest[0],
        &format!(
            "{schema} INSERT INTO b SELECT g, 'b' || g FROM generate_series(1, 50) g;
             INSERT INTO a SELECT g, 1, 'old' FROM generate_series(1, 7) g;"
        ),
    );
    // Destination 2: b committed but not recorded done; a never begun (empty).
    let d2 = database(
        &c.dest[1],
        &format!("{schema} INSERT INTO b SELECT g, 'old' FROM generate_series(1, 50) g;"),
    );
    let (k1, k2) = (identity_key(&c.dest[0], &d1), identity_key(&c.dest[1], &d2));
    let state = TempPath::new("fk-review-partial.state");
    fs::write(
        &state.0,
        format!(
            "copyman-job 2\nselection\t\"public\".\"a\" \"public\".\"b\"\n\
             begin\t\"public\".\"b\"\t{k1}\ndone\t\"public\".\"b\"\t{k1}\t50\n\
             begin\t\"public\".\"b\"\t{k2}\nbegin\t\"public\".\"a\"\t{k1}\n"
        ),
    )
    .unwrap();
    let out = run(&[
        "table",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&d1),
        "--to",
        &c.dest[1].conninfo(&d2),
        "--state",
        state.arg(),
        "--resume",
        "public.a",
        "public.b",
    ]);
    assert_exit(&out, 0);
    for (cluster, db) in c.dest.iter().zip([&d1, &d2]) {
        for table in ["a", "b"] {
            assert_eq!(
                digest(cluster, db, table),
                digest(&c.source, &src, table),
                "{table}"
            );
        }
        assert_eq!(copy_backends(cluster, db), 0);
    }
}

// Point 2: a partitioned member that references another member.

/// c is partitioned and references p ON DELETE CASCADE: each partition's constraint row
/// (`c1 → p`) is c's, not a table outside the group's, so the group is emptied with one
/// `TRUNCATE ONLY p, c` and the refresh succeeds.
#[test]
fn a_partitioned_member_referencing_another_is_truncated_with_the_group() {
    let c = clusters();
    let schema = "CREATE TABLE p (id int PRIMARY KEY, v text);
         CREATE TABLE c (id int, pid int REFERENCES p ON DELETE CASCADE, v text)
             PARTITION BY RANGE (id);
         CREATE TABLE c1 PARTITION OF c FOR VALUES FROM (MINVALUE) TO (500);
         CREATE TABLE c2 PARTITION OF c FOR VALUES FROM (500) TO (MAXVALUE);";
    let src = database(
        &c.source,
        &format!(
            "{schema} INSERT INTO p SELECT g, 'p' || g FROM generate_series(1, 40) g;
             INSERT INTO c SELECT g, 1 + g % 40, 'c' || g FROM generate_series(1, 900) g;"
        ),
    );
    let old = "INSERT INTO p VALUES (1, 'old'), (77, 'old');
         INSERT INTO c VALUES (3, 77, 'old'), (600, 1, 'old'), (601, 77, 'old');";
    let d1 = database(&c.dest[0], &format!("{schema} {old}"));
    let d2 = database(&c.dest[1], &format!("{schema} {old}"));
    let state = TempPath::new("fk-review-partitioned.state");
    let job = |extra: &[&str]| {
        copyman()
            .args(["table", "--truncate"])
            .args(["--from", &c.source.conninfo(&src)])
            .args(["--to", &c.dest[0].conninfo(&d1)])
            .args(["--to", &c.dest[1].conninfo(&d2)])
            .args(["--state", state.arg(), "public.p", "public.c"])
            .args(extra)
            .output()
            .unwrap()
    };
    // The plan names the one statement as PostgreSQL takes it (no ONLY for a partitioned c).
    let dry = job(&["--dry-run"]);
    let said = format!("{}{}", text(&dry.stdout), text(&dry.stderr));
    assert!(
        said.contains(r#"TRUNCATE ONLY "public"."p", "public"."c""#)
            && !said.contains("one by one"),
        "{said}"
    );
    assert_exit(&job(&[]), 0);
    for (cluster, db) in c.dest.iter().zip([&d1, &d2]) {
        for table in ["p", "c"] {
            assert_eq!(
                digest(cluster, db, table),
                digest(&c.source, &src, table),
                "{table}"
            );
        }
        assert_eq!(copy_backends(cluster, db), 0);
    }
}

// Point 3: a member after the first is watched on the destinations too.

/// c references p and x (x not selected): the group is p, c. On destination 1 another session
/// holds x's row 1 `FOR UPDATE`, so c's COPY (the second member) waits there for its foreign
/// key check. The job says so, and a SIGINT cancels that backend: exit 130, nothing committed,
/// no COPY left on the server although the lock is still held.
#[test]
fn a_second_member_waiting_for_a_lock_on_a_destination_is_reported_and_cancelled() {
    let c = clusters();
    let schema = "CREATE TABLE x (id int PRIMARY KEY);
         CREATE TABLE p (id int PRIMARY KEY, v text);
         CREATE TABLE c (id int PRIMARY KEY, pid int REFERENCES p, xid int REFERENCES x, v text);
         INSERT INTO x SELECT generate_series(1, 5);";
    let src = database(
        &c.source,
        &format!(
            "{schema} INSERT INTO p SELECT g, 'p' || g FROM generate_series(1, 30) g;
             INSERT INTO c SELECT g, 1 + g % 30, 1, 'c' || g FROM generate_series(1, 500) g;"
        ),
    );
    let old = "INSERT INTO p VALUES (1, 'old'), (99, 'old');
         INSERT INTO c VALUES (1, 99, 2, 'old'), (2, 1, 3, 'old');";
    let d1 = database(&c.dest[0], &format!("{schema} {old}"));
    let d2 = database(&c.dest[1], &format!("{schema} {old}"));
    let before: Vec<Vec<(i64, String)>> = c
        .dest
        .iter()
        .zip([&d1, &d2])
        .map(|(cluster, db)| ["p", "c"].iter().map(|t| digest(cluster, db, t)).collect())
        .collect();
    let mut holder = c.dest[0].connect(&d1);
    holder
        .batch_execute("BEGIN; SELECT id FROM x WHERE id = 1 FOR UPDATE")
        .unwrap();
    let state = TempPath::new("fk-review-lock.state");
    let mut child = copyman()
        .args(["table", "--truncate"])
        .args(["--from", &c.source.conninfo(&src)])
        .args(["--to", &c.dest[0].conninfo(&d1)])
        .args(["--to", &c.dest[1].conninfo(&d2)])
        .args(["--state", state.arg(), "public.p", "public.c"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = StderrLines::take(&mut child);
    let line = stderr.expect("waiting for lock on destination 1 (");
    assert!(line.contains(r#"table "public"."c""#), "{line}");
    signal(&child, "INT");
    let rest = stderr.unseen();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{rest}");
    // The lock is still held: the COPY that waited for it is gone all the same.
    assert_eq!(copy_backends(&c.dest[0], &d1), 0, "{rest}");
    holder.batch_execute("ROLLBACK").unwrap();
    for (k, (cluster, db)) in c.dest.iter().zip([&d1, &d2]).enumerate() {
        for (t, table) in ["p", "c"].iter().enumerate() {
            assert_eq!(digest(cluster, db, table), before[k][t], "{table}");
        }
        assert_eq!(copy_backends(cluster, db), 0);
    }
    assert!(
        rest.contains("committed on every destination (and recorded): none"),
        "{rest}"
    );
}

// Point 4: tables that wait for each other are named, not waited on for ever.

/// A resume without --truncate: p and c were begun (emptied again, one group), x was not
/// (copied without emptying). x references p, c references x: the group waits for x, x for
/// the group's p. The job says so and stops without copying anything (before, it hung).
#[test]
fn a_group_and_a_table_waiting_for_each_other_stop_the_job_with_their_names() {
    let c = clusters();
    let schema = "CREATE TABLE p (id int PRIMARY KEY);
         CREATE TABLE x (id int PRIMARY KEY, pid int REFERENCES p);
         CREATE TABLE c (id int PRIMARY KEY, pid int REFERENCES p, xid int REFERENCES x);";
    let src = database(
        &c.source,
        &format!(
            "{schema} INSERT INTO p SELECT generate_series(1, 20);
             INSERT INTO x SELECT g, g FROM generate_series(1, 20) g;
             INSERT INTO c SELECT g, 1 + g % 20, 1 + g % 20 FROM generate_series(1, 100) g;"
        ),
    );
    let d1 = database(
        &c.dest[0],
        &format!("{schema} INSERT INTO p VALUES (1), (2); INSERT INTO c VALUES (1, 1, NULL);"),
    );
    let key = identity_key(&c.dest[0], &d1);
    let state = TempPath::new("fk-review-order.state");
    fs::write(
        &state.0,
        format!(
            "copyman-job 2\nselection\t\"public\".\"c\" \"public\".\"p\" \"public\".\"x\"\n\
             begin\t\"public\".\"p\"\t{key}\nbegin\t\"public\".\"c\"\t{key}\n"
        ),
    )
    .unwrap();
    let before: Vec<(i64, String)> = ["p", "x", "c"]
        .iter()
        .map(|t| digest(&c.dest[0], &d1, t))
        .collect();
    let out = run(&[
        "table",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&d1),
        "--state",
        state.arg(),
        "--resume",
        "public.p",
        "public.x",
        "public.c",
    ]);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("cannot order the tables left by their foreign keys")
            && stderr.contains(r#"waits for "public"."x""#),
        "{stderr}"
    );
    assert_exit(&out, 1);
    for (t, table) in ["p", "x", "c"].iter().enumerate() {
        assert_eq!(digest(&c.dest[0], &d1, table), before[t], "{table}");
    }
    assert_eq!(copy_backends(&c.dest[0], &d1), 0);
}

// Point 5: a group's member referenced from outside the job is refused while planning.

/// customers and orders (orders → customers) are a group emptied first; on the destination,
/// `lines`, outside the job, holds a row referencing an order. The group's `DELETE`s would fail
/// there (23503) — after `big`, copied first, had committed. Refused while planning instead, as a
/// table alone is: the dry run and the run exit 1 alike, nothing copied anywhere.
#[test]
fn a_group_member_whose_rows_a_table_outside_references_is_refused_while_planning() {
    let c = clusters();
    let schema = "CREATE TABLE big (id int PRIMARY KEY, v text);
         CREATE TABLE customers (id int PRIMARY KEY);
         CREATE TABLE orders (id int PRIMARY KEY, customer_id int REFERENCES customers);
         CREATE TABLE lines (order_id int REFERENCES orders, n int);";
    let src = database(
        &c.source,
        &format!(
            "{schema} INSERT INTO big SELECT g, 'x' FROM generate_series(1, 1000) g;
             INSERT INTO customers VALUES (1), (2); INSERT INTO orders VALUES (10, 1), (11, 2);"
        ),
    );
    let d = database(
        &c.dest[0],
        &format!(
            "{schema} INSERT INTO customers VALUES (1); INSERT INTO orders VALUES (10, 1);
             INSERT INTO lines VALUES (10, 1);"
        ),
    );
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&d));
    let args = [
        "table",
        "big",
        "customers",
        "orders",
        "--from",
        &from,
        "--to",
        &to,
        "--truncate",
        "--jobs",
        "1",
    ];
    let dry = run(&[&args[..], &["--dry-run"]].concat());
    assert_exit(&dry, 1);
    let said = format!("{}{}", text(&dry.stdout), text(&dry.stderr));
    assert!(
        said.contains("23503") && said.contains("\"public\".\"lines\""),
        "{said}"
    );
    let out = run(&args);
    assert_exit(&out, 1);
    assert_eq!(count(&c.dest[0], &d, "big"), 0, "{}", text(&out.stderr));
    assert_eq!(count(&c.dest[0], &d, "orders"), 1);
    assert_eq!(count(&c.dest[0], &d, "lines"), 1);
}

/// A group copied as one unit under `--truncate`, its parent found differing by `--verify` on
/// the destination since: the resume copies the parent again with its child, emptied together
/// (emptied alone the parent failed, 23503 — its child's rows reference it — or 0A000, with
/// advice to empty them by hand: recheck54 F5, F8), exit 0, both as the source's.
#[test]
fn a_resume_copies_a_differing_member_again_with_its_unit() {
    let c = clusters();
    let schema = "CREATE TABLE p (id int PRIMARY KEY, v text);
         CREATE TABLE k (id int PRIMARY KEY, p int NOT NULL REFERENCES p, v text);";
    let rows = "INSERT INTO p SELECT g, 'p' || g FROM generate_series(1, 50) g;
         INSERT INTO k SELECT g, 1 + g % 50, 'k' || g FROM generate_series(1, 300) g;";
    let src = database(&c.source, &format!("{schema} {rows}"));
    let d1 = database(&c.dest[0], schema);
    let state = TempPath::new("fk-review-unit.state");
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&d1));
    let job = [
        "table",
        "--schema",
        "*",
        "--from",
        &from,
        "--to",
        &to,
        "--truncate",
    ];
    let job = [&job[..], &["--state", state.arg()]].concat();
    assert_exit(&run(&job), 0);
    c.dest[0]
        .connect(&d1)
        .batch_execute("UPDATE p SET v = 'changed' WHERE id = 7")
        .unwrap();
    let out = run(&[&job[..], &["--resume", "--verify"]].concat());
    assert_exit(&out, 4);
    let out = run(&[&job[..], &["--resume"]].concat());
    let said = text(&out.stderr);
    assert_exit(&out, 0);
    assert!(
        said.contains("\"public\".\"k\": copied again on destination 1 with \"public\".\"p\""),
        "{said}"
    );
    for table in ["p", "k"] {
        assert_eq!(
            digest(&c.dest[0], &d1, table),
            digest(&c.source, &src, table),
            "{table}"
        );
    }
    assert_exit(&run(&[&job[..], &["--resume", "--verify"]].concat()), 0);
}
