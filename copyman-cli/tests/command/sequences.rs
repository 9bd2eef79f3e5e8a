//! Sequences carried forward: after a copy, each destination's sequence of a copied `serial` or
//! identity column (or the one its default takes `nextval` of, or a partition's parent's
//! identity) stands where the source's does (never moved back), so the next INSERT there
//! that takes its default does not collide with a copied row — in table mode, in a job, and in a
//! job's split table. A role that may not UPDATE the sequence gets a warning, not a failed copy.
//! Real clusters, shared by the binary.

use crate::common;

use common::*;
use copyman_testkit::Cluster;

const TABLES: &str = "CREATE TABLE ident (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v text);
    CREATE TABLE ser (id serial PRIMARY KEY, v text);";

/// A source with 200 rows in each table (ids 1..200 from their sequences) and two destinations
/// with the same, empty tables.
fn servers(c: &Clusters) -> (String, String, String) {
    let src = database(
        &c.source,
        &format!(
            "{TABLES}
             INSERT INTO ident (v) SELECT 'r' || g FROM generate_series(1, 200) g;
             INSERT INTO ser (v) SELECT 'r' || g FROM generate_series(1, 200) g;"
        ),
    );
    (
        src,
        database(&c.dest[0], TABLES),
        database(&c.dest[1], TABLES),
    )
}

/// The id a plain INSERT takes on `cluster`'s `table` now (it fails on a copied row's id).
fn insert_default(cluster: &Cluster, db: &str, table: &str) -> Result<i32, postgres::Error> {
    let row = cluster.connect(db).query_one(
        &format!("INSERT INTO {table} (v) VALUES ('new') RETURNING id"),
        &[],
    )?;
    Ok(row.get(0))
}

#[test]
fn one_table_leaves_each_destination_sequence_past_the_copied_rows() {
    let c = clusters();
    let (src, d1, d2) = servers(c);
    // The plan says it where the run does it: in the transaction, before its COMMIT (it was
    // said after it: cli43 F5).
    let dry = run(&[
        "table",
        "ser",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&d1),
        "--dry-run",
    ]);
    assert_exit(&dry, 0);
    let plan = text(&dry.stdout);
    let advanced = plan.find("the sequence of \"id\" advanced").expect("said");
    let commit = plan.rfind("    COMMIT").expect("COMMIT");
    assert!(advanced < commit, "{plan}");
    for table in ["ident", "ser"] {
        let out = run(&[
            "table",
            table,
            "--from",
            &c.source.conninfo(&src),
            "--to",
            &c.dest[0].conninfo(&d1),
            "--to",
            &c.dest[1].conninfo(&d2),
        ]);
        assert_exit(&out, 0);
        assert_eq!(count(&c.dest[0], &d1, table), 200);
        assert_eq!(
            insert_default(&c.dest[0], &d1, table).unwrap(),
            201,
            "{table}"
        );
        assert_eq!(
            insert_default(&c.dest[1], &d2, table).unwrap(),
            201,
            "{table}"
        );
    }
}

#[test]
fn a_destination_sequence_ahead_of_the_source_is_not_moved_back() {
    let c = clusters();
    let (src, d1, d2) = servers(c);
    c.dest[0]
        .connect(&d1)
        .batch_execute("SELECT setval(pg_get_serial_sequence('ident', 'id'), 5000)")
        .unwrap();
    let out = run(&[
        "table",
        "ident",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&d1),
        "--to",
        &c.dest[1].conninfo(&d2),
    ]);
    assert_exit(&out, 0);
    assert_eq!(insert_default(&c.dest[0], &d1, "ident").unwrap(), 5001);
    assert_eq!(insert_default(&c.dest[1], &d2, "ident").unwrap(), 201);
}

#[test]
fn a_role_that_may_not_update_the_sequence_is_warned_and_its_rows_commit() {
    let c = clusters();
    let (src, d1, _) = servers(c);
    let role = format!("writer_{d1}");
    c.dest[0]
        .connect(&d1)
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN;
             GRANT INSERT, SELECT ON ser TO {role};
             GRANT USAGE, SELECT ON SEQUENCE ser_id_seq TO {role};"
        ))
        .unwrap();
    let to = c.dest[0]
        .conninfo(&d1)
        .replace("user=postgres", &format!("user={role}"));
    let from = c.source.conninfo(&src);
    // Said while planning, the dry run too, and not promised: the dry run said it would
    // advance it (an application role's grants allow neither).
    let said = "the role there may not read and set";
    let dry = run(&["table", "ser", "--from", &from, "--to", &to, "--dry-run"]);
    assert_exit(&dry, 0);
    let plan = text(&dry.stdout) + &text(&dry.stderr);
    assert!(
        plan.contains(said) && !plan.contains(r#"sequence of "id" advanced"#),
        "{plan}"
    );
    let out = run(&["table", "ser", "--from", &from, "--to", &to]);
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("warning") && stderr.contains(said),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &d1, "ser"), 200);
    // A job says it in its plan too.
    let state = TempPath::new("seq-denied.state");
    let dry = run(&[
        "table",
        "ser",
        "ident",
        "--from",
        &from,
        "--to",
        &to,
        "--dry-run",
        "--truncate",
        "--state",
        state.arg(),
    ]);
    let plan = text(&dry.stdout) + &text(&dry.stderr);
    assert!(
        plan.contains(said) && !plan.contains(r#"advance the sequence of "id""#),
        "{plan}"
    );
}

/// A source role that may read the tables but not their sequences (SELECT on the tables only):
/// each destination's sequence is set past the copied rows, said (it was left at 1, exit 0, and
/// the next INSERT there collided with a copied row); one table and a job alike.
#[test]
fn a_source_sequence_the_role_may_not_read_is_set_past_the_copied_rows() {
    let c = clusters();
    let (src, d1, d2) = servers(c);
    let role = format!("reader_{src}");
    c.source
        .connect(&src)
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN; GRANT SELECT ON ident, ser TO {role};"
        ))
        .unwrap();
    let from = c
        .source
        .conninfo(&src)
        .replace("user=postgres", &format!("user={role}"));
    let state = TempPath::new("unreadable-sequences.state");
    for (tables, to, db) in [
        (&["ident"][..], c.dest[0].conninfo(&d1), &d1),
        (&["ident", "ser"][..], c.dest[1].conninfo(&d2), &d2),
    ] {
        let cluster = if db == &d1 { &c.dest[0] } else { &c.dest[1] };
        let mut args = vec!["table"];
        args.extend(tables);
        args.extend(["--from", &from, "--to", &to]);
        if tables.len() > 1 {
            args.extend(["--state", state.arg()]);
        }
        let out = run(&args);
        assert_exit(&out, 0);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("set past the copied rows (200)"),
            "{tables:?}: {stderr}"
        );
        for table in tables {
            assert_eq!(insert_default(cluster, db, table).unwrap(), 201, "{table}");
        }
    }
}

/// The same unreadable source sequence into a destination whose role may INSERT and move the
/// sequence but not read the table: the rows' highest value cannot be asked there without an
/// error that would abort its transaction, so the sequence is left as it was, said, and the
/// rows commit (a failed `max()` had failed the copy).
#[test]
fn an_unreadable_source_sequence_into_a_table_the_role_may_not_read_still_commits() {
    let c = clusters();
    let (src, d1, _) = servers(c);
    let reader = format!("reader_{src}");
    c.source
        .connect(&src)
        .batch_execute(&format!(
            "CREATE ROLE {reader} LOGIN; GRANT SELECT ON ser TO {reader};"
        ))
        .unwrap();
    let writer = format!("inserter_{d1}");
    c.dest[0]
        .connect(&d1)
        .batch_execute(&format!(
            "CREATE ROLE {writer} LOGIN; GRANT INSERT ON ser TO {writer};
             GRANT USAGE, SELECT, UPDATE ON SEQUENCE ser_id_seq TO {writer};"
        ))
        .unwrap();
    let from = (c.source.conninfo(&src)).replace("user=postgres", &format!("user={reader}"));
    let to = (c.dest[0].conninfo(&d1)).replace("user=postgres", &format!("user={writer}"));
    let out = run(&["table", "ser", "--from", &from, "--to", &to]);
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("the source's sequence of column \"id\" cannot be read"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &d1, "ser"), 200);
}

#[test]
fn a_setval_the_destination_refuses_fails_the_copy_and_commits_nothing() {
    let c = clusters();
    let (src, d1, d2) = servers(c);
    // The destination's sequence cannot reach the source's 200.
    c.dest[0]
        .connect(&d1)
        .batch_execute("ALTER SEQUENCE ser_id_seq MAXVALUE 100")
        .unwrap();
    let out = run(&[
        "table",
        "ser",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&d1),
        "--to",
        &c.dest[1].conninfo(&d2),
    ]);
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("22003") && stderr.contains("sequence"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &d1, "ser"), 0);
    assert_eq!(count(&c.dest[1], &d2, "ser"), 0);
    assert!(settle_backends(&c.dest[0], &d1).is_empty());
}

#[test]
fn a_job_carries_the_sequences_of_whole_and_split_tables() {
    let c = clusters();
    let (src, d1, d2) = servers(c);
    // `ser` large enough to be split in ranges.
    c.source
        .connect(&src)
        .batch_execute("INSERT INTO ser (v) SELECT repeat('x', 500) FROM generate_series(1, 3000)")
        .unwrap();
    let state = TempPath::new("sequences.state");
    let dry = run(&[
        "table",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&d1),
        "--to",
        &c.dest[1].conninfo(&d2),
        "--split-larger-than",
        "64k",
        "--dry-run",
    ]);
    assert_exit(&dry, 0);
    let plan = text(&dry.stdout);
    assert!(plan.contains(r#"advance the sequence of "id""#), "{plan}");
    assert!(plan.contains("range 2:"), "{plan}");
    let out = run(&[
        "table",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&d1),
        "--to",
        &c.dest[1].conninfo(&d2),
        "--split-larger-than",
        "64k",
        "--state",
        state.arg(),
    ]);
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[1], &d2, "ser"), 3200);
    for (cluster, db) in [(&c.dest[0], &d1), (&c.dest[1], &d2)] {
        assert_eq!(insert_default(cluster, db, "ident").unwrap(), 201);
        assert_eq!(insert_default(cluster, db, "ser").unwrap(), 3201);
    }
}

/// A sequence that stands uncalled at a value of its own (created `START WITH`, or `RESTART`ed)
/// is read as where it stands, not as unused: a destination started ahead is not moved back, and
/// a source restarted ahead is carried.
#[test]
fn an_uncalled_sequence_is_where_it_stands() {
    let c = clusters();
    let (src, d1, d2) = servers(c);
    c.dest[0]
        .connect(&d1)
        .batch_execute("ALTER TABLE ident ALTER COLUMN id RESTART WITH 1000000")
        .unwrap();
    c.source
        .connect(&src)
        .batch_execute("ALTER SEQUENCE ser_id_seq RESTART WITH 5000")
        .unwrap();
    for table in ["ident", "ser"] {
        let out = run(&[
            "table",
            table,
            "--from",
            &c.source.conninfo(&src),
            "--to",
            &c.dest[0].conninfo(&d1),
            "--to",
            &c.dest[1].conninfo(&d2),
        ]);
        assert_exit(&out, 0);
    }
    assert_eq!(insert_default(&c.dest[0], &d1, "ident").unwrap(), 1_000_000);
    assert_eq!(insert_default(&c.dest[1], &d2, "ident").unwrap(), 201);
    assert_eq!(insert_default(&c.dest[0], &d1, "ser").unwrap(), 5000);
    assert_eq!(insert_default(&c.dest[1], &d2, "ser").unwrap(), 5000);
}

/// A sequence at its end — MAXVALUE reached, cycling or not — is carried as the source's own
/// position (within the bounds both sides share), not as a next value beyond them (22003).
#[test]
fn a_sequence_at_its_end_is_carried_as_it_stands() {
    let c = clusters();
    let table = "CREATE SEQUENCE cys MAXVALUE 10 CYCLE;
        CREATE TABLE cy (id int DEFAULT nextval('cys') PRIMARY KEY, v text);
        ALTER SEQUENCE cys OWNED BY cy.id;";
    let src = database(
        &c.source,
        &format!("{table} INSERT INTO cy (v) SELECT 'v' FROM generate_series(1, 10);"),
    );
    let d = database(&c.dest[0], table);
    let out = run(&[
        "table",
        "cy",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&d),
    ]);
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[0], &d, "cy"), 10);
    let at: (i64, bool) = {
        let row = c.dest[0]
            .connect(&d)
            .query_one("SELECT last_value, is_called FROM cys", &[])
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!(at, (10, true));
}

/// A column that owns a sequence on a destination but not on the source (`int` there, `serial`
/// here) cannot be carried: nothing says where it should stand. It is said, in one table's copy
/// and in a job, not left for the next INSERT to find.
#[test]
fn a_sequence_only_the_destination_has_is_said() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE plain (id int PRIMARY KEY, v text);
         INSERT INTO plain SELECT g, 'v' FROM generate_series(1, 20) g;",
    );
    let d = database(
        &c.dest[0],
        "CREATE TABLE plain (id serial PRIMARY KEY, v text);",
    );
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&d));
    let out = run(&["table", "plain", "--from", &from, "--to", &to]);
    assert_exit(&out, 0);
    let said = "owns a sequence there but not on the source";
    assert!(text(&out.stderr).contains(said), "{}", text(&out.stderr));
    let state = TempPath::new("uncarried.state");
    let out = run(&[
        "table",
        "plain",
        "plain",
        "--truncate",
        "--from",
        &from,
        "--to",
        &to,
        "--state",
        state.arg(),
    ]);
    assert_exit(&out, 0);
    assert!(text(&out.stderr).contains(said), "{}", text(&out.stderr));
}

/// The sequence a copied column's values come from is carried where the column owns none: a
/// partition copied without its partitioned table (its parent's identity, or the `nextval`
/// default it took from its parent's `serial`), an inheritance child (its parent's default), and
/// a sequence several tables take from (`DEFAULT nextval('shared')`). They had been left at 1,
/// exit 0: the next INSERT there took id 1 again, or failed on a duplicate key.
#[test]
fn a_job_of_partitions_children_and_shared_sequences_carries_where_values_came_from() {
    const SCHEMA: &str = "
        CREATE TABLE ev (id bigserial, k int, v text) PARTITION BY LIST (k);
        CREATE TABLE ev_1 PARTITION OF ev FOR VALUES IN (1);
        CREATE TABLE idt (id int GENERATED ALWAYS AS IDENTITY, k int, v text) PARTITION BY LIST (k);
        CREATE TABLE idt_1 PARTITION OF idt FOR VALUES IN (1);
        CREATE TABLE base (id serial PRIMARY KEY, v text);
        CREATE TABLE child (PRIMARY KEY (id)) INHERITS (base);
        CREATE SEQUENCE shared;
        CREATE TABLE sh (id int DEFAULT nextval('shared') PRIMARY KEY, v text);";
    let c = clusters();
    let src = database(
        &c.source,
        &format!(
            "{SCHEMA}
             INSERT INTO ev (k, v) SELECT 1, 'e' FROM generate_series(1, 40);
             INSERT INTO idt (k, v) SELECT 1, 'i' FROM generate_series(1, 30);
             INSERT INTO child (v) SELECT 'c' FROM generate_series(1, 20);
             INSERT INTO sh (v) SELECT 's' FROM generate_series(1, 10);"
        ),
    );
    let dst = database(&c.dest[0], SCHEMA);
    let state = TempPath::new("carried-partitions.state");
    let out = run(&[
        "table",
        "ev_1",
        "idt_1",
        "child",
        "sh",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&dst),
        "--state",
        state.arg(),
    ]);
    assert_exit(&out, 0);
    let next = |sql: &str| -> i64 {
        let row = c.dest[0].connect(&dst).query_one(sql, &[]).unwrap();
        row.get(0)
    };
    assert_eq!(next("INSERT INTO ev (k) VALUES (1) RETURNING id"), 41);
    assert_eq!(
        next("INSERT INTO idt (k) VALUES (1) RETURNING id::int8"),
        31
    );
    assert_eq!(
        next("INSERT INTO child (v) VALUES ('n') RETURNING id::int8"),
        21
    );
    assert_eq!(
        next("INSERT INTO sh (v) VALUES ('n') RETURNING id::int8"),
        11
    );
}

/// A destination whose identity column is narrower (`smallint`) than the source's, whose
/// sequence stands at 100 000: every row fits, the `setval` cannot. Refused while planning,
/// the dry run as the run (it exited 0, and the run failed after every row), with the way out;
/// a job refuses that table there and copies the others.
#[test]
fn a_source_sequence_beyond_a_narrower_destination_sequence_is_refused_while_planning() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE nar (id int GENERATED BY DEFAULT AS IDENTITY, v text);
         CREATE TABLE other (id int);
         INSERT INTO nar (v) VALUES ('a'), ('b');
         SELECT setval(pg_get_serial_sequence('nar', 'id'), 100000);",
    );
    let dest = "CREATE TABLE nar (id smallint GENERATED BY DEFAULT AS IDENTITY, v text);
         CREATE TABLE other (id int);";
    let d = database(&c.dest[0], dest);
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&d));
    for dry in [true, false] {
        let mut args = vec!["table", "nar", "--from", &from, "--to", &to];
        if dry {
            args.push("--dry-run");
        }
        let out = run(&args);
        assert_exit(&out, 1);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("stands at 100000, beyond what its sequence")
                && stderr.contains("(smallint, 1..32767)")
                && stderr.contains("ALTER SEQUENCE"),
            "{stderr}"
        );
    }
    assert_eq!(count(&c.dest[0], &d, "nar"), 0);
    let state = TempPath::new("narrower.state");
    let out = run(&[
        "table",
        "nar",
        "other",
        "--from",
        &from,
        "--to",
        &to,
        "--state",
        state.arg(),
    ]);
    let stderr = text(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("SQLSTATE 22003") && stderr.contains("ALTER SEQUENCE"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &d, "nar"), 0);
}

/// A destination sequence the copy would not advance: a server's own id range, already ahead
/// (`START WITH 1000000 MINVALUE 1000000`), whose bounds the source's position lies outside —
/// refused, with advice that could not help (types66 F10) — and one counting the other way,
/// which was set to the source's position, among the copied rows (types66 F9: the next INSERT
/// collided). Both copied, each sequence left where it stood.
#[test]
fn a_destination_sequence_the_copy_would_not_advance_is_left_as_it_stands() {
    let c = clusters();
    let (src, _, _) = servers(c);
    let d = database(
        &c.dest[0],
        "CREATE TABLE ident (id int GENERATED BY DEFAULT AS IDENTITY \
           (START WITH 1000000 MINVALUE 1000000) PRIMARY KEY, v text);
         CREATE TABLE ser (id int GENERATED BY DEFAULT AS IDENTITY \
           (START WITH 1000 INCREMENT BY -1 MINVALUE 1 MAXVALUE 1000) PRIMARY KEY, v text);",
    );
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&d));
    for (table, next) in [("ident", 1_000_000), ("ser", 1000)] {
        let dry = run(&["table", table, "--from", &from, "--to", &to, "--dry-run"]);
        assert_exit(&dry, 0);
        let out = run(&["table", table, "--from", &from, "--to", &to]);
        assert_exit(&out, 0);
        assert_eq!(count(&c.dest[0], &d, table), 200);
        assert_eq!(
            insert_default(&c.dest[0], &d, table).unwrap(),
            next,
            "{table}"
        );
    }
}
