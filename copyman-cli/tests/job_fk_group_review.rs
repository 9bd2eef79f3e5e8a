//! FK-linked groups (`--truncate`, or a resume taking tables up again) where the review found
//! them wrong: a group whose members are emptied on some destinations only, a partitioned
//! member that references another, and a member after the first waiting for a lock on a
//! destination. Real clusters, shared by the binary; a fresh database per test.

mod common;

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
    let out = run(&[
        "table",
        "--truncate",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&d1),
        "--to",
        &c.dest[1].conninfo(&d2),
        "--state",
        state.arg(),
        "public.p",
        "public.c",
    ]);
    assert_exit(&out, 0);
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
