//! How `copyman table` plans a copy, against real PostgreSQL clusters: columns by name from both
//! catalogs, generated columns left out, differing column sets refused, the binary format only
//! when every column's type matches, `--target-table`, `--dry-run`; and `copyman copy` refusing
//! a malformed statement before connecting and mismatched formats before any data.

use crate::common;

use common::*;
use copyman_testkit::Cluster;

/// Rows of `sql` on `db`, every value as text (`NULL` for NULL).
fn rows(cluster: &Cluster, db: &str, sql: &str) -> Vec<Vec<String>> {
    let wrapped = format!(
        "SELECT ARRAY(SELECT coalesce(v::text, 'NULL') FROM json_each_text(row_to_json(q)) AS j(k, v)) FROM ({sql}) AS q"
    );
    cluster
        .connect(db)
        .query(&wrapped, &[])
        .expect("query")
        .iter()
        .map(|r| r.get::<_, Vec<String>>(0))
        .collect()
}

/// No session or prepared transaction of copyman's is left on a test database (its backends
/// end once they read the end of their connections: waited for, up to a bound).
#[track_caller]
fn nothing_left_open(cluster: &Cluster, db: &str) {
    let client = &mut cluster.connect(db);
    let sessions = |client: &mut postgres::Client| -> i64 {
        client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND pid <> pg_backend_pid()",
                &[],
            )
            .unwrap()
            .get(0)
    };
    let mut open = sessions(client);
    for _ in 0..100 {
        if open == 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        open = sessions(client);
    }
    assert_eq!(open, 0, "sessions left on {db}");
    let prepared: i64 = client
        .query_one("SELECT count(*) FROM pg_prepared_xacts", &[])
        .unwrap()
        .get(0);
    assert_eq!(prepared, 0, "prepared transactions on {db}");
}

#[test]
fn swapped_column_order_copies_by_name() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE prices (price numeric(10,2), qty numeric(10,2));
         INSERT INTO prices SELECT g * 1.5, g FROM generate_series(1, 100) g;",
    );
    // Columns of one type: copied by position, the values would swap without a word.
    let d1 = database(
        &c.dest[0],
        "CREATE TABLE prices (qty numeric(10,2), price numeric(10,2));",
    );
    let d2 = database(
        &c.dest[1],
        "CREATE TABLE prices (price numeric(10,2), qty numeric(10,2));",
    );
    let out = run(&[
        "table",
        "prices",
        "--from",
        &c.source.url(&src),
        "--to",
        &c.dest[0].url(&d1),
        "--to",
        &c.dest[1].url(&d2),
        "--json",
    ]);
    assert_exit(&out, 0);
    // The same types by name on every side: binary, and still by name.
    assert_eq!(json(&out)["format"], "binary");
    let expected = rows(
        &c.source,
        &src,
        "SELECT price, qty FROM prices ORDER BY qty",
    );
    assert_eq!(expected.len(), 100);
    assert_eq!(expected[9], ["15.00", "10.00"]);
    for (cluster, db) in [(&c.dest[0], &d1), (&c.dest[1], &d2)] {
        assert_eq!(
            rows(cluster, db, "SELECT price, qty FROM prices ORDER BY qty"),
            expected
        );
    }
}

#[test]
fn generated_column_on_partitioned_source_copies() {
    let c = clusters();
    let ddl = "CREATE TABLE m (id int, v int, doubled int GENERATED ALWAYS AS (v * 2) STORED)
                 PARTITION BY RANGE (id);
               CREATE TABLE m1 PARTITION OF m FOR VALUES FROM (0) TO (500);
               CREATE TABLE m2 PARTITION OF m FOR VALUES FROM (500) TO (1000);";
    let src = database(
        &c.source,
        &format!("{ddl} INSERT INTO m (id, v) SELECT g, g + 1 FROM generate_series(0, 999) g;"),
    );
    // One destination partitioned, the other a plain table with the columns in another order.
    let d1 = database(&c.dest[0], ddl);
    let d2 = database(
        &c.dest[1],
        "CREATE TABLE m (doubled int GENERATED ALWAYS AS (v * 2) STORED, v int, id int);",
    );
    let out = run(&[
        "table",
        "m",
        "--from",
        &c.source.url(&src),
        "--to",
        &c.dest[0].url(&d1),
        "--to",
        &c.dest[1].url(&d2),
        "-v",
    ]);
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(r#"COPY (SELECT "id", "v" FROM "public"."m") TO STDOUT"#),
        "{stderr}"
    );
    assert!(!stderr.contains("generated as"), "{stderr}");
    assert!(
        stderr.contains(r#"COPY "m" ("id", "v") FROM STDIN"#),
        "{stderr}"
    );
    let expected = digest(&c.source, &src, "(SELECT id, v, doubled FROM m)");
    assert_eq!(expected.0, 1000);
    assert_eq!(
        digest(&c.dest[0], &d1, "(SELECT id, v, doubled FROM m)"),
        expected
    );
    assert_eq!(
        digest(&c.dest[1], &d2, "(SELECT id, v, doubled FROM m)"),
        expected
    );

    // A generated column named in --columns is read (COPY's column list would refuse it),
    // into a plain column.
    let d3 = database(&c.dest[0], "CREATE TABLE m1 (doubled int, id int);");
    let out = run(&[
        "table",
        "m1",
        "--columns",
        "id, doubled",
        "--from",
        &c.source.url(&src),
        "--to",
        &c.dest[0].url(&d3),
    ]);
    assert_exit(&out, 0);
    assert_eq!(
        digest(&c.dest[0], &d3, "(SELECT id, doubled FROM m1)"),
        digest(&c.source, &src, "(SELECT id, doubled FROM m1)")
    );

    // A destination that generates the column by another expression computes other values:
    // said (each destination computes it; it is not copied).
    let d4 = database(
        &c.dest[1],
        "CREATE TABLE m (id int, v int, doubled int GENERATED ALWAYS AS (v * 3) STORED)",
    );
    let out = run(&[
        "table",
        "m",
        "--from",
        &c.source.url(&src),
        "--to",
        &c.dest[1].url(&d4),
    ]);
    assert_exit(&out, 0);
    assert!(
        text(&out.stderr).contains(
            "column \"doubled\" is generated as (v * 2) on the source but as (v * 3) on destination 1"
        ),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn differing_column_sets_are_refused_with_the_listing() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE t (a int, b int, c int);
         INSERT INTO t SELECT g, g, g FROM generate_series(1, 10) g;",
    );
    let old = "INSERT INTO t (a) VALUES (-1), (-2);";
    let d1 = database(&c.dest[0], &format!("CREATE TABLE t (a int, b int); {old}"));
    let d2 = database(
        &c.dest[1],
        // An extra column that would take no value (a nullable or defaulted one is left to it).
        "CREATE TABLE t (a int, b int, c int, \"Extra\" text NOT NULL);
         INSERT INTO t (a, \"Extra\") VALUES (-1, 'x'), (-2, 'x');",
    );
    let out = run(&[
        "table",
        "t",
        "--from",
        &c.source.url(&src),
        "--to",
        &c.dest[0].url(&d1),
        "--to",
        &c.dest[1].url(&d2),
        "--truncate",
        "--json",
    ]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    for said in [
        "columns differ",
        r#"destination 1 (postgres@127.0.0.1:"#,
        r#") lacks "c""#,
        r#"destination 2 (postgres@127.0.0.1:"#,
        r#") has "Extra" that the source has not"#,
        "--columns",
    ] {
        assert!(stderr.contains(said), "{said:?} not in: {stderr}");
    }
    assert_eq!(json(&out)["exit_code"], 2);
    // Nothing moved, nothing was truncated, nothing is left open.
    assert_eq!(count(&c.dest[0], &d1, "t"), 2);
    assert_eq!(count(&c.dest[1], &d2, "t"), 2);
    assert_eq!(count(&c.source, &src, "t"), 10);
    nothing_left_open(&c.dest[0], &d1);
    nothing_left_open(&c.dest[1], &d2);
    nothing_left_open(&c.source, &src);
}

#[test]
fn columns_subset_copies_what_every_side_has() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE t (a int, b text, c int);
         INSERT INTO t SELECT g, 'b' || g, g FROM generate_series(1, 20) g;",
    );
    let d1 = database(
        &c.dest[0],
        "CREATE TABLE t (b text, a int, d text DEFAULT 'x');",
    );
    let d2 = database(&c.dest[1], "CREATE TABLE t (a int, b text, c int);");
    let args = |columns: &str| {
        run(&[
            "table",
            "t",
            "--columns",
            columns,
            "--from",
            &c.source.url(&src),
            "--to",
            &c.dest[0].url(&d1),
            "--to",
            &c.dest[1].url(&d2),
        ])
    };
    // A column a destination lacks: refused before anything moves.
    let out = args("a, c");
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains(r#"lacks "c""#),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[1], &d2, "t"), 0);
    let out = args("b, a");
    assert_exit(&out, 0);
    assert_eq!(
        rows(&c.dest[0], &d1, "SELECT a, b, d FROM t WHERE a = 7"),
        [["7", "b7", "x"]]
    );
    assert_eq!(
        rows(&c.dest[1], &d2, "SELECT a, b, c FROM t WHERE a = 7"),
        [["7", "b7", "NULL"]]
    );
    assert_eq!(count(&c.dest[0], &d1, "t"), 20);
}

#[test]
fn timestamptz_into_int8_gets_text_and_fails_loudly() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE e (id int8, at timestamptz);
         INSERT INTO e SELECT g, timestamptz '2024-01-01 00:00+00' + g * interval '1 s'
           FROM generate_series(1, 50) g;",
    );
    let d1 = database(&c.dest[0], "CREATE TABLE e (id int8, at int8);");
    let d2 = database(&c.dest[1], "CREATE TABLE e (id int8, at timestamptz);");
    let out = run(&[
        "table",
        "e",
        "--from",
        &c.source.url(&src),
        "--to",
        &c.dest[0].url(&d1),
        "--to",
        &c.dest[1].url(&d2),
        "--json",
        "-v",
    ]);
    assert_exit(&out, 1);
    let summary = json(&out);
    assert_eq!(summary["format"], "text");
    assert_eq!(summary["destinations"][0]["error"]["sqlstate"], "22P02");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            r#"format: text (column "at" is timestamp with time zone on the source but bigint on destination 1"#
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("invalid input syntax for type bigint"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &d1, "e"), 0);
    assert_eq!(count(&c.dest[1], &d2, "e"), 0);
    nothing_left_open(&c.dest[0], &d1);
    nothing_left_open(&c.dest[1], &d2);
}

#[test]
fn same_types_get_binary_and_oids_that_differ_get_text() {
    let c = clusters();
    let types = "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
                 CREATE DOMAIN posint AS int4 CHECK (VALUE > 0);";
    let tables = "CREATE TABLE v (id int8, m mood, d posint, tags text[], at timestamptz);
                  CREATE TABLE w (id int8, ms mood[]);";
    let fill = "INSERT INTO v SELECT g, 'ok', g, ARRAY['a', 'b'], timestamptz '2024-01-01 00:00+00'
                  FROM generate_series(1, 30) g;
                INSERT INTO w SELECT g, ARRAY['sad', 'happy']::mood[] FROM generate_series(1, 30) g;";
    let src = database(&c.source, &format!("{types}{tables}{fill}"));
    let d1 = database(&c.dest[0], "SELECT 1");
    // The same DDL on the destination, with an enum whose OID surely differs from the source's.
    let oid = |cluster: &Cluster, db: &str| -> u32 {
        cluster
            .connect(db)
            .query_one("SELECT 'mood'::regtype::oid", &[])
            .unwrap()
            .get(0)
    };
    let source_oid = oid(&c.source, &src);
    let dest = &mut c.dest[0].connect(&d1);
    dest.batch_execute(types).unwrap();
    while oid(&c.dest[0], &d1) == source_oid {
        dest.batch_execute(&format!(
            "DROP TABLE IF EXISTS w; DROP DOMAIN posint; DROP TYPE mood; {types}"
        ))
        .unwrap();
    }
    dest.batch_execute(tables).unwrap();
    let copy = |table: &str| {
        run(&[
            "table",
            table,
            "--from",
            &c.source.url(&src),
            "--to",
            &c.dest[0].url(&d1),
            "--json",
            "-v",
        ])
    };
    // Enums travel as their labels, domains as their base type: binary is safe by name.
    let out = copy("v");
    assert_exit(&out, 0);
    assert_eq!(json(&out)["format"], "binary");
    assert!(
        text(&out.stderr)
            .contains("format: binary (every copied column has the same type on every server)"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(digest(&c.dest[0], &d1, "v"), digest(&c.source, &src, "v"));
    // An array of enums carries the enum's OID: text.
    let out = copy("w");
    assert_exit(&out, 0);
    assert_eq!(json(&out)["format"], "text");
    assert!(
        text(&out.stderr)
            .contains(r#"column "ms" is of type public.mood[], whose binary form differs on"#),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(digest(&c.dest[0], &d1, "w"), digest(&c.source, &src, "w"));
}

#[test]
fn target_table_names_the_destination_table() {
    let c = clusters();
    let src = database(&c.source, &format!("{ITEMS}{FILL_ITEMS}"));
    let archive = "CREATE SCHEMA archive;
        CREATE TABLE archive.\"Items 2024\" (tags text[], price numeric(12,2), at timestamptz,
                                             name text, id int8 PRIMARY KEY);
        INSERT INTO archive.\"Items 2024\" (id) VALUES (-1);";
    let d1 = database(&c.dest[0], archive);
    let out = run(&[
        "table",
        "items",
        "--target-table",
        r#"archive."Items 2024""#,
        "--truncate",
        "--from",
        &c.source.url(&src),
        "--to",
        &c.dest[0].url(&d1),
    ]);
    assert_exit(&out, 0);
    let cols = "(SELECT id, name, at, price, tags FROM {})";
    assert_eq!(
        digest(
            &c.dest[0],
            &d1,
            &cols.replace("{}", r#"archive."Items 2024""#)
        ),
        digest(&c.source, &src, &cols.replace("{}", "items"))
    );
    // A target table that does not exist is named with its destination, with what creates
    // it: a usage error (exit 2, as a column missing there: cli51 F2).
    let out = run(&[
        "table",
        "items",
        "--target-table",
        "nowhere",
        "--from",
        &c.source.url(&src),
        "--to",
        &c.dest[0].url(&d1),
    ]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(r#"destination 1 (postgres@127.0.0.1:"#)
            && stderr.contains(r#"table "nowhere": SQLSTATE 42P01"#)
            && stderr.contains("pg_dump --section=pre-data"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &d1, r#"archive."Items 2024""#), 1000);
}

#[test]
fn dry_run_prints_the_plan_and_leaves_every_server_untouched() {
    let c = clusters();
    // Never analyzed: the estimate comes from the relation's size.
    let src = database(
        &c.source,
        "CREATE TABLE d (id int8, note text);
         INSERT INTO d SELECT g, 'note ' || g FROM generate_series(1, 20000) g;",
    );
    let old = "CREATE TABLE d (note text, id int8); INSERT INTO d VALUES ('old', -1);";
    let d1 = database(&c.dest[0], old);
    let d2 = database(&c.dest[1], old);
    let args = |json: bool| {
        let mut args = vec![
            "table".to_owned(),
            "d".to_owned(),
            "--from".to_owned(),
            c.source.url(&src),
            "--to".to_owned(),
            c.dest[0].url(&d1),
            "--to".to_owned(),
            c.dest[1].url(&d2),
            "--truncate".to_owned(),
            "--dry-run".to_owned(),
        ];
        if json {
            args.push("--json".to_owned());
        }
        copyman().args(args).output().unwrap()
    };
    let out = args(false);
    assert_exit(&out, 0);
    let stdout = text(&out.stdout);
    for said in [
        "dry run, nothing copied",
        // The source's table as its server resolves it; the destinations' as they do.
        r#"COPY "public"."d" ("id", "note") TO STDOUT (FORMAT binary)"#,
        "format: binary (every copied column has the same type on every server)",
        "estimate: about",
        "destination 2: postgres@127.0.0.1:",
        r#"columns: "id", "note""#,
        r#"TRUNCATE ONLY "d""#,
        r#"COPY "d" ("id", "note") FROM STDIN (FORMAT binary)"#,
    ] {
        assert!(stdout.contains(said), "{said:?} not in: {stdout}");
    }
    let out = args(true);
    assert_exit(&out, 0);
    let plan = json(&out);
    assert_eq!(plan["dry_run"], true);
    // What stderr warned is in the document too (nothing here).
    assert_eq!(plan["warnings"], serde_json::json!([]), "{plan}");
    assert_eq!(plan["plan"]["format"], "binary");
    let estimate = plan["plan"]["estimate"]["rows"].as_u64().unwrap();
    assert!((10_000..=40_000).contains(&estimate), "estimate {estimate}");
    assert_eq!(
        plan["plan"]["destinations"][1]["columns"],
        serde_json::json!(["id", "note"])
    );
    // Named as a run's records are (docs45 F1).
    assert_eq!(plan["plan"]["destinations"][1]["server"], "destination 2");
    assert_eq!(
        plan["plan"]["destinations"][0]["statement"],
        r#"COPY "d" ("id", "note") FROM STDIN (FORMAT binary)"#
    );
    // Nothing was truncated or copied, nothing is left open.
    for (cluster, db) in [(&c.dest[0], &d1), (&c.dest[1], &d2)] {
        assert_eq!(rows(cluster, db, "SELECT id, note FROM d"), [["-1", "old"]]);
        nothing_left_open(cluster, db);
    }
    assert_eq!(count(&c.source, &src, "d"), 20000);
}

/// Statistics taken before a bulk load: the estimate scales them to the table's size now, as the
/// planner does (it took `reltuples` as it stood: 1 000 for 100 000 rows, and the bar said
/// "100% ETA 0s" for nearly the whole copy).
#[test]
fn the_estimate_follows_a_table_grown_since_it_was_analyzed() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE g (id int8, note text) WITH (autovacuum_enabled = off);
         INSERT INTO g SELECT n, 'note ' || n FROM generate_series(1, 1000) n;
         ANALYZE g;
         INSERT INTO g SELECT n, 'note ' || n FROM generate_series(1001, 100000) n;",
    );
    let d1 = database(&c.dest[0], "CREATE TABLE g (id int8, note text);");
    let out = run(&[
        "--json",
        "table",
        "g",
        "--from",
        &c.source.url(&src),
        "--to",
        &c.dest[0].url(&d1),
        "--dry-run",
    ]);
    assert_exit(&out, 0);
    let estimate = json(&out)["plan"]["estimate"]["rows"].as_u64().unwrap();
    assert!(
        (80_000..=120_000).contains(&estimate),
        "estimate {estimate}"
    );
}

/// A partition copied alone is estimated at its rows, not twice them (its partition tree holds
/// itself: jobs64 F1); its partitioned table at the sum of its partitions'.
#[test]
fn a_partition_alone_is_estimated_at_its_rows() {
    let c = clusters();
    let schema = "CREATE TABLE e (id int8, note text) PARTITION BY RANGE (id);
         CREATE TABLE e1 PARTITION OF e FOR VALUES FROM (0) TO (50001);
         CREATE TABLE e2 PARTITION OF e FOR VALUES FROM (50001) TO (100001);";
    let src = database(
        &c.source,
        &format!(
            "{schema} INSERT INTO e SELECT n, 'note ' || n FROM generate_series(1, 100000) n; \
             ANALYZE e;"
        ),
    );
    let d1 = database(&c.dest[0], schema);
    for (table, rows) in [("e1", 50_000), ("e", 100_000)] {
        let out = run(&[
            "--json",
            "table",
            table,
            "--from",
            &c.source.url(&src),
            "--to",
            &c.dest[0].url(&d1),
            "--dry-run",
        ]);
        assert_exit(&out, 0);
        let estimate = json(&out)["plan"]["estimate"]["rows"].as_u64().unwrap();
        assert!(
            (rows * 9 / 10..=rows * 11 / 10).contains(&estimate),
            "{table}: estimate {estimate}"
        );
    }
}

#[test]
fn malformed_copy_statement_exit_2_without_connecting() {
    // A port nobody listens on: a connection attempt would be exit 3.
    let port = closed_port();
    let conn = format!("host=127.0.0.1 port={port} user=u dbname=d");
    for (send, receive, said) in [
        (
            "SELECT 1",
            "COPY t FROM STDIN",
            "--send: the statement is not a COPY",
        ),
        (
            "COPY t TO STDOUT; DROP TABLE t",
            "COPY t FROM STDIN",
            "--send: expected a single COPY TO STDOUT",
        ),
        (
            "COPY t TO STDOUT",
            "COPY t TO STDOUT",
            "--receive: expected a COPY FROM STDIN",
        ),
        (
            "COPY t TO STDOUT",
            "COPY t FROM '/etc/passwd'",
            "--receive: expected a COPY FROM STDIN, got a COPY FROM a file",
        ),
    ] {
        let out = run(&[
            "copy",
            "--from",
            &conn,
            "--send",
            send,
            "--to",
            &conn,
            "--receive",
            receive,
        ]);
        assert_exit(&out, 2);
        let stderr = text(&out.stderr);
        assert!(stderr.contains(said), "{said:?} not in: {stderr}");
        assert!(!stderr.contains("connect"), "{stderr}");
    }
}

/// A `--receive` whose options copyman cannot read (a dollar-quoted value) is refused before
/// connecting: its ends could not be compared (a NULL or QUOTE spelled so swapped '' and NULL).
/// (The run's own check of the formats the servers announce is the shared scenario
/// `mismatched_formats`, under both adapters.)
#[test]
fn mismatched_copy_formats_are_refused_before_data() {
    let c = clusters();
    let src = database(&c.source, "SELECT 1");
    let d1 = database(&c.dest[0], "CREATE TABLE t (n int);");
    let out = run(&[
        "copy",
        "--from",
        &c.source.url(&src),
        "--send",
        "COPY (SELECT generate_series(1, 1000)) TO STDOUT (FORMAT csv)",
        "--to",
        &c.dest[0].url(&d1),
        "--receive",
        "COPY t FROM STDIN (FORMAT $$binary$$)",
        "--json",
    ]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("the --receive of destination 1: copyman cannot read its options"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &d1, "t"), 0);
    nothing_left_open(&c.dest[0], &d1);
}

/// A table that other tables inherit from is read as `COPY table TO` reads it — its own rows,
/// not its children's — in every form: a `--where`, and a job's ctid ranges. (The SELECT form
/// read the children's rows too: a child copied as a table of its own then had its rows twice.)
#[test]
fn an_inheritance_parent_is_read_without_its_childrens_rows() {
    let c = clusters();
    let schema = "CREATE TABLE parent (id int, pad text);
                  CREATE TABLE child (extra int) INHERITS (parent);";
    let src = database(
        &c.source,
        &format!(
            "{schema}
             INSERT INTO parent SELECT g, repeat('p', 100) FROM generate_series(1, 2000) g;
             INSERT INTO child SELECT g, 'c', g FROM generate_series(1, 5) g;"
        ),
    );
    let only = |db: &str| rows(&c.dest[0], db, "SELECT count(*) FROM ONLY parent")[0][0].clone();

    // One table, with a condition.
    let d = database(&c.dest[0], schema);
    let out = run(&[
        "table",
        "parent",
        "--where",
        "id > 0",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&d),
    ]);
    assert_exit(&out, 0);
    assert_eq!(only(&d), "2000");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(r#""parent" has 1 inheritance child: only its own rows are copied"#),
        "{stderr}"
    );

    // A job splitting the parent into ranges, the child copied as itself.
    let d = database(&c.dest[0], schema);
    let state = TempPath::new("inherit.state");
    let out = run(&[
        "table",
        "parent",
        "child",
        "--split-larger-than",
        "64k",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&d),
        "--state",
        state.arg(),
    ]);
    assert_exit(&out, 0);
    assert_eq!(only(&d), "2000");
    assert_eq!(
        rows(&c.dest[0], &d, "SELECT count(*) FROM child")[0][0],
        "5"
    );
}

/// OID alias columns (`regclass`, `regtype`) travel by name, never as binary OIDs that name
/// another object (or none) on another server; `aclitem`, which has no binary form, is copied
/// too. The auto-chosen format is text, and says why.
#[test]
fn oid_aliases_and_types_without_binary_io_are_copied_as_text() {
    let c = clusters();
    let table = "CREATE TABLE rc (id int, r regclass, ty regtype, a aclitem[]);";
    let src = database(
        &c.source,
        &format!(
            "CREATE TABLE big (x int); CREATE TYPE pair AS (a int, b int); {table}
             INSERT INTO rc VALUES (1, 'big', 'pair', '{{postgres=r/postgres}}');"
        ),
    );
    // Created in another order: other OIDs.
    let d = database(
        &c.dest[0],
        &format!("CREATE TYPE pair AS (a int, b int); CREATE TABLE big (x int); {table}"),
    );
    let args = [
        "table",
        "rc",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&d),
    ];
    let dry = run(&[&args[..], &["--dry-run"]].concat());
    assert_exit(&dry, 0);
    let plan = text(&dry.stdout);
    assert!(
        plan.contains("format: text") && plan.contains("regclass"),
        "{plan}"
    );
    let out = run(&args);
    assert_exit(&out, 0);
    assert_eq!(
        rows(&c.dest[0], &d, "SELECT r::text, ty::text, a::text FROM rc"),
        [["big", "pair", "{postgres=r/postgres}"]]
    );
}

/// A file's fields are positional: loaded into destinations whose columns are in different
/// orders, each would get other values in its columns (exit 0). Refused before anything is sent,
/// unless `--columns` names the file's columns; destinations alike take it as before.
#[test]
fn a_file_into_destinations_with_different_column_orders_is_refused() {
    let c = clusters();
    let d1 = database(&c.dest[0], "CREATE TABLE w (a text, b text);");
    let d2 = database(&c.dest[1], "CREATE TABLE w (b text, a text);");
    let file = TempPath::new("w.csv");
    std::fs::write(&file.0, "a,b\nAVAL,BVAL\n").unwrap();
    let args = |extra: &[&'static str]| {
        let mut args = vec![
            "table".to_owned(),
            "w".to_owned(),
            "--from".to_owned(),
            file.arg().to_owned(),
            "--header".to_owned(),
            "--to".to_owned(),
            c.dest[0].conninfo(&d1),
            "--to".to_owned(),
            c.dest[1].conninfo(&d2),
        ];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        args
    };
    let refused = run(&args(&[]).iter().map(String::as_str).collect::<Vec<_>>());
    assert_exit(&refused, 2);
    let stderr = text(&refused.stderr);
    assert!(
        stderr.contains(r#"has ("a", "b")"#) && stderr.contains("--columns"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &d1, "w"), 0);
    assert_eq!(count(&c.dest[1], &d2, "w"), 0);
    let named = run(&args(&["--columns", "a,b"])
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>());
    assert_exit(&named, 0);
    for (cluster, db) in [(&c.dest[0], &d1), (&c.dest[1], &d2)] {
        assert_eq!(rows(cluster, db, "SELECT a, b FROM w"), [["AVAL", "BVAL"]]);
    }
}

/// A file is read as the destination server's own DateStyle and IntervalStyle say, as psql's
/// `\copy` reads it (`04/03/2024` is the 4th of March on a `DMY` server; `-1 2:03:04` is all
/// negative under `sql_standard`), not as the ISO styles copyman's sessions use between servers.
#[test]
fn a_file_is_read_as_the_destination_server_reads_dates_and_intervals() {
    let c = clusters();
    let d = database(
        &c.dest[0],
        "CREATE TABLE dd (id int, day date, span interval);",
    );
    c.dest[0]
        .connect(&d)
        .batch_execute(&format!(
            "ALTER DATABASE \"{d}\" SET datestyle = 'SQL, DMY';
             ALTER DATABASE \"{d}\" SET intervalstyle = 'sql_standard';"
        ))
        .unwrap();
    let file = TempPath::new("dd.txt");
    std::fs::write(&file.0, "1\t04/03/2024\t-1 2:03:04\n").unwrap();
    let out = run(&[
        "table",
        "dd",
        "--from",
        file.arg(),
        "--to",
        &c.dest[0].conninfo(&d),
    ]);
    assert_exit(&out, 0);
    assert_eq!(
        rows(
            &c.dest[0],
            &d,
            "SELECT to_char(day, 'YYYY-MM-DD'), (span = interval '-1 day -2:03:04')::text FROM dd"
        ),
        [["2024-03-04", "true"]]
    );
}

/// A binary file a server refuses is not "fixed" by `--format text` (the file is binary): no
/// such hint, only the server's error.
#[test]
fn a_refused_binary_file_gets_no_hint_to_use_text() {
    let c = clusters();
    let table = "CREATE TABLE b (id int);";
    let src = database(
        &c.source,
        &format!("{table} INSERT INTO b SELECT generate_series(1, 10);"),
    );
    let d = database(&c.dest[0], table);
    let file = TempPath::new("b.bin");
    let out = run(&[
        "table",
        "b",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        file.arg(),
        "--format",
        "binary",
    ]);
    assert_exit(&out, 0);
    // Twice over: data after the trailer.
    let once = std::fs::read(&file.0).unwrap();
    std::fs::write(&file.0, [once.clone(), once].concat()).unwrap();
    let out = run(&[
        "table",
        "b",
        "--from",
        file.arg(),
        "--format",
        "binary",
        "--to",
        &c.dest[0].conninfo(&d),
    ]);
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    // The server's 22P04 ("received copy data after EOF marker"), or copyman's own refusal.
    assert!(
        stderr.contains("EOF marker") || stderr.contains("trailer"),
        "{stderr}"
    );
    assert!(!stderr.contains("--format text"), "{stderr}");
    assert_eq!(count(&c.dest[0], &d, "b"), 0);
}

/// A destination column the source has not, which takes its default (or NULL) for every row, is
/// left to it: nothing of the source is lost (an audit column, one added on that side first) —
/// in one table's copy and in a job. One that would take neither (NOT NULL, no default) is
/// refused, named, before anything is sent.
#[test]
fn destination_columns_that_fill_themselves_are_left_to_their_default() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE x (id int, v text); INSERT INTO x SELECT g, 'v' FROM generate_series(1, 50) g;",
    );
    let d = database(
        &c.dest[0],
        "CREATE TABLE x (id int, audit timestamptz DEFAULT now() NOT NULL, v text, note text,
                         n int GENERATED ALWAYS AS IDENTITY);",
    );
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&d));
    let out = run(&["table", "x", "--from", &from, "--to", &to]);
    assert_exit(&out, 0);
    assert_eq!(
        rows(
            &c.dest[0],
            &d,
            "SELECT count(*), count(audit), count(note), count(DISTINCT v) FROM x"
        ),
        [["50", "50", "0", "1"]]
    );
    let state = TempPath::new("fills.state");
    let out = run(&[
        "table",
        "x",
        "x",
        "--from",
        &from,
        "--to",
        &to,
        "--truncate",
        "--state",
        state.arg(),
    ]);
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[0], &d, "x"), 50);
    // A column that would take no value: refused, named.
    c.dest[0]
        .connect(&d)
        .batch_execute("ALTER TABLE x ADD COLUMN must int NOT NULL DEFAULT 0; ALTER TABLE x ALTER COLUMN must DROP DEFAULT")
        .unwrap();
    let out = run(&["table", "x", "--from", &from, "--to", &to]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(r#""must""#) && !stderr.contains(r#""note""#),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &d, "x"), 50);
}

/// A domain of one name over other base types on each side (`int8` here, `float8` there), or a
/// composite whose field is such a domain, must not go in binary: its bits would be read as the
/// other type (exit 0 with other values). Text converts them; the conversion is warned about.
#[test]
fn domains_and_composites_over_other_base_types_are_copied_as_text() {
    let c = clusters();
    let table = "CREATE TABLE dt (id int, v dm, c pair);";
    let src = database(
        &c.source,
        &format!(
            "CREATE DOMAIN dm AS int8; CREATE TYPE pair AS (d dm, n int); {table}
             INSERT INTO dt VALUES (1, 1, ROW(1, 1)), (2, 4607182418800017408, ROW(-5, 2));"
        ),
    );
    // The same OIDs (created in the same order), other base types.
    let d = database(
        &c.dest[0],
        &format!("CREATE DOMAIN dm AS float8; CREATE TYPE pair AS (d dm, n int); {table}"),
    );
    let args = [
        "table",
        "dt",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&d),
    ];
    let dry = run(&[&args[..], &["--dry-run"]].concat());
    assert_exit(&dry, 0);
    assert!(
        text(&dry.stdout).contains("format: text"),
        "{}",
        text(&dry.stdout)
    );
    let out = run(&args);
    assert_exit(&out, 0);
    assert_eq!(
        rows(
            &c.dest[0],
            &d,
            "SELECT (v = id * 4607182418800017407 - 4607182418800017406)::text, c::text \
             FROM dt ORDER BY id"
        ),
        [["true", "(1,1)"], ["true", "(-5,2)"]]
    );
}

/// A column the source generates, nullable (or with a default) on the destination, would be
/// NULL (or its default) in every row: refused, naming `--columns`, which copies its values.
/// A narrowing type (numeric to numeric(6,2)) is copied with a warning naming it.
#[test]
fn a_generated_source_column_is_refused_and_narrowing_types_warned() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE g (a int, b int GENERATED ALWAYS AS (a * 2) STORED, n numeric);
         INSERT INTO g (a, n) VALUES (1, 1.005), (2, 2);",
    );
    let d = database(&c.dest[0], "CREATE TABLE g (a int, b int, n numeric(6,2));");
    let args = |extra: &[&str]| {
        let mut args = vec![
            "table".to_owned(),
            "g".to_owned(),
            "--from".to_owned(),
            c.source.conninfo(&src),
            "--to".to_owned(),
            c.dest[0].conninfo(&d),
        ];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        args
    };
    let run_with = |extra: &[&str]| {
        let args = args(extra);
        run(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let refused = run_with(&[]);
    assert_exit(&refused, 2);
    let stderr = text(&refused.stderr);
    assert!(
        stderr.contains(r#""b" that the source generates"#) && stderr.contains("--columns"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &d, "g"), 0);
    let out = run_with(&["--columns", "a,b,n"]);
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("column \"n\" is numeric on the source but numeric(6,2)"),
        "{stderr}"
    );
    assert_eq!(
        rows(&c.dest[0], &d, "SELECT a, b, n FROM g ORDER BY a"),
        [["1", "2", "1.01"], ["2", "4", "2.00"]]
    );
}

#[test]
fn copy_dry_run_between_servers_shows_the_statements_and_copies_nothing() {
    // It panicked (exit 101): the plan of raw statements has no per-destination sequences.
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE t (n int); INSERT INTO t SELECT generate_series(1, 10);",
    );
    let d1 = database(&c.dest[0], "CREATE TABLE t (n int);");
    let d2 = database(&c.dest[1], "CREATE TABLE t (n int);");
    let out = run(&[
        "copy",
        "--from",
        &c.source.url(&src),
        "--send",
        "COPY t TO STDOUT",
        "--to",
        &c.dest[0].url(&d1),
        "--to",
        &c.dest[1].url(&d2),
        "--receive",
        "COPY t FROM STDIN",
        "--dry-run",
    ]);
    assert_exit(&out, 0);
    let plan = text(&out.stdout);
    assert!(
        plan.contains("COPY t TO STDOUT") && plan.matches("COPY t FROM STDIN").count() == 2,
        "{plan}"
    );
    assert_eq!(count(&c.dest[0], &d1, "t"), 0);
    assert_eq!(count(&c.dest[1], &d2, "t"), 0);
    // --json lists both destinations (it listed none).
    let out = run(&[
        "copy",
        "--from",
        &c.source.url(&src),
        "--send",
        "COPY t TO STDOUT",
        "--to",
        &c.dest[0].url(&d1),
        "--to",
        &c.dest[1].url(&d2),
        "--receive",
        "COPY t FROM STDIN",
        "--dry-run",
        "--json",
    ]);
    assert_exit(&out, 0);
    let plan = json(&out);
    assert_eq!(
        plan["plan"]["destinations"].as_array().map(Vec::len),
        Some(2),
        "{plan}"
    );
}

/// A composite type whose fields stand in another order on a destination (`addr(street, city)`
/// against `addr(city, street)`): COPY fills a composite's fields by position, in text as in
/// binary, so street and city were swapped on every row with exit 0 (and --verify agreeing).
/// Refused before anything is sent, naming the column and both field lists; an array of them
/// too; a job refuses that table there. So is one of another number of fields.
#[test]
fn a_composite_whose_fields_stand_in_another_order_is_refused() {
    let c = clusters();
    let table = "CREATE TABLE people (id int, home addr, past addr[]);";
    let src = database(
        &c.source,
        &format!(
            "CREATE TYPE addr AS (street text, city text); {table}
             INSERT INTO people VALUES (1, ROW('1 Main St', 'Springfield'),
               ARRAY[ROW('2 Elm St', 'Shelbyville')::addr]);"
        ),
    );
    let swapped = database(
        &c.dest[0],
        &format!("CREATE TYPE addr AS (city text, street text); {table}"),
    );
    for format in ["text", "binary"] {
        let out = run(&[
            "table",
            "people",
            "--from",
            &c.source.conninfo(&src),
            "--to",
            &c.dest[0].conninfo(&swapped),
            "--format",
            format,
        ]);
        assert_exit(&out, 2);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(r#"has column "home" of public.addr: a composite type whose fields are ("street", "city") on the source and ("city", "street") there"#),
            "{format}: {stderr}"
        );
        // Its array's place in words (it said "at /e in its values": names42 F3).
        assert!(
            stderr.contains(r#"has column "past" of public.addr[]: a composite type (its array elements) whose fields"#),
            "{format}: {stderr}"
        );
        assert_eq!(count(&c.dest[0], &swapped, "people"), 0);
    }
    // Another schema's type of the name there: both types said (the fields were said to be
    // the destination type's on the source).
    let other_schema = database(
        &c.dest[0],
        "CREATE SCHEMA b; CREATE TYPE b.addr AS (city text, street text);
         CREATE TABLE people (id int, home b.addr, past b.addr[]);",
    );
    let out = run(&[
        "table",
        "people",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&other_schema),
    ]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(r#"has column "home" of b.addr (public.addr on the source): a composite"#),
        "{stderr}"
    );
    // Another number of fields there: every value would fail (22P02), said before any row and
    // not as "made of other types" (types41 F5).
    let wider = database(
        &c.dest[0],
        &format!("CREATE TYPE addr AS (street text, city text, zip text); {table}"),
    );
    let out = run(&[
        "table",
        "people",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&wider),
    ]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains(r#"a composite type of 2 fields on the source ("street", "city") and 3 there ("street", "city", "zip")"#),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &wider, "people"), 0);
    // The same fields in the same order (another type OID, say) still copy.
    let same = database(
        &c.dest[1],
        &format!(
            "CREATE TYPE other AS (x int); CREATE TYPE addr AS (street text, city text); {table}"
        ),
    );
    let out = run(&[
        "table",
        "people",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[1].conninfo(&same),
    ]);
    assert_exit(&out, 0);
    assert_eq!(
        digest(&c.dest[1], &same, "people"),
        digest(&c.source, &src, "people")
    );
    // Fields named otherwise there, none moved: filled by position, as a renamed type may
    // mean, and said pair by pair (types64 F5: copied without a word).
    let renamed = database(
        &c.dest[1],
        &format!("CREATE TYPE addr AS (road text, city text); {table}"),
    );
    let out = run(&[
        "table",
        "people",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[1].conninfo(&renamed),
    ]);
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(r#"column "home" is public.addr on "#)
            && stderr.contains(r#", a composite type whose fields are named otherwise there, and COPY fills a composite's fields by position: "street" into "road""#),
        "{stderr}"
    );
    assert!(!stderr.contains(r#""city" into"#), "{stderr}");
    assert_eq!(count(&c.dest[1], &renamed, "people"), 1);
}

/// Extra destination columns that would not get what an INSERT gives them are refused while
/// planning: a column of a NOT NULL (or CHECKed) domain without a default (COPY gave it NULL,
/// past its domain), and every column when the source has none to copy (COPY cannot name an
/// empty list: each empty row was read as the destination's columns, '' instead of the
/// default). A domain with a default fills itself.
#[test]
fn extra_columns_that_would_not_get_their_default_or_pass_their_domain_are_refused() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE t (id int); INSERT INTO t VALUES (1), (2);
         CREATE TABLE z (); INSERT INTO z DEFAULT VALUES;",
    );
    let dst = database(
        &c.dest[0],
        "CREATE DOMAIN nn AS text NOT NULL; CREATE DOMAIN nc AS int CHECK (VALUE IS NOT NULL);
         CREATE DOMAIN nd AS text NOT NULL DEFAULT 'd'; CREATE DOMAIN pos AS int CHECK (VALUE > 0);
         CREATE TABLE t (id int, req nn, chk nc, p pos); CREATE TABLE z (x text DEFAULT 'dflt');",
    );
    let copy = |table: &str| {
        run(&[
            "table",
            table,
            "--from",
            &c.source.conninfo(&src),
            "--to",
            &c.dest[0].conninfo(&dst),
        ])
    };
    let out = copy("t");
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("req") && stderr.contains("chk"), "{stderr}");
    // A CHECK that NULL passes (VALUE > 0) takes NULL: not refused.
    assert!(!stderr.contains("\"p\""), "{stderr}");
    assert_eq!(count(&c.dest[0], &dst, "t"), 0);
    for format in ["text", "csv"] {
        let out = run(&[
            "table",
            "z",
            "--from",
            &c.source.conninfo(&src),
            "--to",
            &c.dest[0].conninfo(&dst),
            "--format",
            format,
        ]);
        assert_exit(&out, 2);
        assert!(
            text(&out.stderr).contains("the source has no column to copy"),
            "{}",
            text(&out.stderr)
        );
        assert_eq!(count(&c.dest[0], &dst, "z"), 0);
    }
    // A domain's default fills the column: copied, each row given it.
    c.dest[0]
        .connect(&dst)
        .batch_execute("DROP TABLE t; CREATE TABLE t (id int, req nd, p pos)")
        .unwrap();
    assert_exit(&copy("t"), 0);
    assert_eq!(
        count(&c.dest[0], &dst, "(SELECT * FROM t WHERE req = 'd')"),
        2
    );
}

/// A destination view that takes rows through its INSTEAD OF trigger counts every row handed to
/// the trigger: one the trigger skips went unnoticed ("COPY 6", 4 rows there, exit 0). Refused
/// unless `--allow-count-mismatch` lets the count go unchecked.
#[test]
fn a_destination_view_whose_trigger_may_skip_rows_is_refused_unless_counts_are_let_go() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE v (id int); INSERT INTO v SELECT generate_series(-2, 3);",
    );
    let dst = database(
        &c.dest[0],
        "CREATE TABLE real_t (id int); CREATE VIEW v AS SELECT id FROM real_t;
         CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN IF NEW.id < 0 THEN RETURN NULL; END IF;
              INSERT INTO real_t VALUES (NEW.id); RETURN NEW; END $$;
         CREATE TRIGGER tr INSTEAD OF INSERT ON v FOR EACH ROW EXECUTE FUNCTION f();",
    );
    let copy = |extra: &[&str]| {
        let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
        let mut args = vec!["table", "v", "--from", from.as_str(), "--to", to.as_str()];
        args.extend(extra);
        run(&args)
    };
    let out = copy(&[]);
    assert_exit(&out, 1);
    assert!(
        text(&out.stderr).contains("its COPY counts the rows it hands to its INSTEAD OF INSERT"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &dst, "real_t"), 0);
    let out = copy(&["--allow-count-mismatch"]);
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[0], &dst, "real_t"), 4);
}

/// Types of one name made of other modifiers (a domain over numeric(12,4) here and (10,2) there,
/// a composite whose field is timestamp(6) here and timestamp(0) there) round values: said as a
/// narrower column is, never "the same type on every server" (binary was chosen, 1.2345 stored
/// as 1.23 without a word). A char(n) into text keeps its padding, a bytea becomes its hex
/// digits: said too, for domains over them as well.
#[test]
fn same_named_types_of_other_modifiers_and_padded_chars_are_said() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE DOMAIN dn AS numeric(12,4); CREATE TYPE cn AS (n numeric(12,4), ts timestamp(6));
         CREATE DOMAIN code5 AS char(5); CREATE DOMAIN blob AS bytea;
         CREATE TABLE t (id int, a dn, d cn, code char(5), dc code5, db blob);
         INSERT INTO t VALUES (1, 1.2345, ROW(9.8765, '2024-01-01 23:59:59.9'), 'ab', 'cd', 'x');",
    );
    let dst = database(
        &c.dest[0],
        "CREATE DOMAIN dn AS numeric(10,2); CREATE TYPE cn AS (n numeric(10,2), ts timestamp(0));
         CREATE TABLE t (id int, a dn, d cn, code text, dc text, db text);",
    );
    let out = run(&[
        "table",
        "t",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&dst),
        "--verbose",
    ]);
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "column \"a\" is public.dn on both sides, but made of numeric(12,4) on the source"
        )
            && stderr.contains("column \"d\" is public.cn on both sides")
            && stderr.contains("column \"code\" is character(5) on the source but text")
            // Domains over them too (they were not said).
            && stderr.contains("column \"dc\" is public.code5 on the source but text")
            && stderr.contains("column \"db\" is public.blob on the source but text"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("the same type on every server"),
        "{stderr}"
    );
}

/// A CSV file with a header into a table without columns: its header names nothing, and is not
/// said to "name no column" (it warned "its header (NULL) names no column").
#[test]
fn a_header_of_a_table_without_columns_is_not_said_to_name_no_column() {
    let c = clusters();
    let dst = database(&c.dest[0], "CREATE TABLE z ()");
    let file = TempPath::new("z.csv");
    std::fs::write(&file.0, "\n\n\n").unwrap();
    let out = run(&[
        "table",
        "z",
        "--from",
        file.arg(),
        "--to",
        &c.dest[0].conninfo(&dst),
        "--header",
    ]);
    assert_exit(&out, 0);
    assert!(
        !text(&out.stderr).contains("names no column"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &dst, "z"), 2);
}

/// `--columns` leaving out a destination column that takes no default and refuses NULL (a NOT
/// NULL domain, which COPY does not check for a column it is not given) is refused while
/// planning (NULLs were committed past the domain).
#[test]
fn columns_leaving_out_a_column_that_refuses_null_are_refused() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE t (id int, req text); INSERT INTO t VALUES (1, 'x');",
    );
    let dst = database(
        &c.dest[0],
        "CREATE DOMAIN nn AS text NOT NULL; CREATE TABLE t (id int, req nn)",
    );
    let out = run(&[
        "table",
        "t",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&dst),
        "--columns",
        "id",
    ]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("that --columns leaves out and that takes no default"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &dst, "t"), 0);
}

/// A destination database whose search_path lacks the schema of its types prints them
/// qualified (`public.mood`) where the source prints `mood`: one type all the same, compared
/// with its schema on both sides — it was said to differ (a false warning, text chosen, and
/// `--format binary` refused).
#[test]
fn types_printed_on_other_search_paths_are_one_type() {
    let c = clusters();
    let schema = "CREATE TYPE mood AS ENUM ('sad', 'ok'); CREATE TABLE t (id int, e mood);";
    let src = database(
        &c.source,
        &format!("{schema} INSERT INTO t VALUES (1, 'ok');"),
    );
    let dst = database(&c.dest[0], schema);
    c.dest[0]
        .connect("postgres")
        .batch_execute(&format!(
            "ALTER DATABASE {dst} SET search_path = pg_catalog"
        ))
        .unwrap();
    let out = run(&[
        "--json",
        "table",
        "public.t",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&dst),
    ]);
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("on destination 1"), "{stderr}");
    assert_eq!(json(&out)["format"], "binary", "{stderr}");
    assert_eq!(
        digest(&c.dest[0], &dst, "public.t"),
        digest(&c.source, &src, "public.t")
    );
}

/// A dry run says the one reason a copy is in CSV (it listed all three: `--format csv`,
/// `--header` or a *.csv file), naming the *.csv file that chose it for every destination.
#[test]
fn dry_run_says_which_of_the_reasons_for_csv_applied() {
    let c = clusters();
    let table = "CREATE TABLE t (id int);";
    let src = database(&c.source, table);
    let d = database(&c.dest[0], table);
    let file = TempPath::new("chosen.csv");
    let plan = |extra: &[&str]| {
        let args = [
            "table",
            "t",
            "--from",
            &c.source.conninfo(&src),
            "--to",
            &c.dest[0].conninfo(&d),
            "--to",
            file.arg(),
            "--dry-run",
        ];
        let out = run(&[&args[..], extra].concat());
        assert_exit(&out, 0);
        text(&out.stdout)
    };
    let said = plan(&[]);
    assert!(
        said.contains(&format!(
            "format: csv (destination 2 is a *.csv file: {}, and every destination is written \
             so)",
            file.arg()
        )),
        "{said}"
    );
    let said = plan(&["--format", "csv"]);
    assert!(said.contains("format: csv (given: --format csv)"), "{said}");
    let said = plan(&["--header"]);
    assert!(said.contains("format: csv (given: --header)"), "{said}");
}

/// An enum whose labels on a destination lack some of the source's: a row holding one fails
/// there (22P02). The plan said the types were the same (binary, exit 0); it says which labels
/// are missing now, in an array of them too (types41 F1). The run still fails cleanly.
#[test]
fn an_enum_lacking_some_of_the_sources_labels_is_said_by_the_plan() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
         CREATE TABLE e (id int, m mood, ms mood[]);
         INSERT INTO e VALUES (1, 'sad', '{sad,ok}'), (2, 'happy', '{happy}');",
    );
    let dst = database(
        &c.dest[0],
        "CREATE TYPE mood AS ENUM ('sad', 'meh', 'ok');
         CREATE TABLE e (id int, m mood, ms mood[]);",
    );
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
    let out = run(&["table", "e", "--from", &from, "--to", &to, "--dry-run"]);
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("column \"m\" is public.mood on destination 1")
            && stderr.contains("whose enum lacks the source's label happy: a row holding one"),
        "{stderr}"
    );
    assert!(
        stderr.contains("column \"ms\" is public.mood[] on destination 1"),
        "{stderr}"
    );
    let out = run(&["table", "e", "--from", &from, "--to", &to]);
    assert_exit(&out, 1);
    assert!(text(&out.stderr).contains("22P02"), "{}", text(&out.stderr));
    assert_eq!(count(&c.dest[0], &dst, "e"), 0);
}

/// A domain of one name that checks more on a destination (`CHECK (VALUE > 10)` there, `> 0` on
/// the source; NOT NULL there): the plan says which column and what it checks, and that a row
/// it refuses fails the copy (types43 F6: "the same type on every server" was all it said). A
/// destination's looser domain is no matter. The run still fails cleanly.
#[test]
fn a_domain_checking_more_on_a_destination_is_said_by_the_plan() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE DOMAIN pos AS int CHECK (VALUE > 0);
         CREATE DOMAIN label AS text;
         CREATE TABLE dm (id int, p pos, l label, ps pos[]);
         INSERT INTO dm VALUES (1, 5, 'x', '{50}'), (2, 50, NULL, NULL);",
    );
    let strict = database(
        &c.dest[0],
        "CREATE DOMAIN pos AS int CHECK (VALUE > 10);
         CREATE DOMAIN label AS text NOT NULL;
         CREATE TABLE dm (id int, p pos, l label, ps pos[]);",
    );
    let loose = database(
        &c.dest[1],
        "CREATE DOMAIN pos AS int;
         CREATE DOMAIN label AS text;
         CREATE TABLE dm (id int, p pos, l label, ps pos[]);",
    );
    let from = c.source.conninfo(&src);
    let (to_strict, to_loose) = (c.dest[0].conninfo(&strict), c.dest[1].conninfo(&loose));
    let args = [
        "table", "dm", "--from", &from, "--to", &to_strict, "--to", &to_loose,
    ];
    let mut dry = args.to_vec();
    dry.push("--dry-run");
    let out = run(&dry);
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("column \"p\" is public.pos on destination 1")
            && stderr.contains(
                "whose domain checks CHECK ((VALUE > 10)), which the source's column is not held \
                 to: a row it refuses would fail the copy (23514)"
            )
            && stderr.contains("column \"l\" is public.label on destination 1")
            && stderr.contains("whose domain checks NOT NULL, which")
            // An array of it too (types50 F5: not said, and the run failed on it).
            && stderr.contains("column \"ps\" is public.pos[] on destination 1")
            && stderr.matches("whose domain checks").count() == 3,
        "{stderr}"
    );
    let out = run(&args);
    assert_exit(&out, 1);
    assert!(text(&out.stderr).contains("23514"), "{}", text(&out.stderr));
    assert_eq!(count(&c.dest[0], &strict, "dm"), 0);
    assert_eq!(count(&c.dest[1], &loose, "dm"), 0);
}

/// A name longer than 63 bytes is read as the server reads it — cut there — with the server's
/// NOTICE as a warning, a TABLE's and a --columns' alike: the TABLE was cut without a word and
/// the column was not cut at all (refused as missing; names42 F7).
#[test]
fn names_longer_than_63_bytes_are_cut_as_the_server_cuts_them() {
    let c = clusters();
    let (table, column) = (
        format!("t_{}", "a".repeat(61)),
        format!("c_{}", "b".repeat(61)),
    );
    let schema = format!("CREATE TABLE {table} ({column} int)");
    let src = database(
        &c.source,
        &format!("{schema}; INSERT INTO {table} VALUES (1), (2)"),
    );
    let dst = database(&c.dest[0], &schema);
    let (long_table, long_column) = (format!("{table}zzz"), format!("{column}zzz"));
    let out = run(&[
        "table",
        &long_table,
        "--columns",
        &long_column,
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&dst),
    ]);
    assert_exit(&out, 0);
    let said = text(&out.stderr);
    for (flag, long, cut) in [
        ("TABLE", &long_table, &table),
        ("--columns", &long_column, &column),
    ] {
        assert!(
            said.contains(&format!(
                "{flag}: identifier \"{long}\" will be truncated to \"{cut}\""
            )),
            "{said}"
        );
    }
    assert_eq!(count(&c.dest[0], &dst, &table), 2);
}

/// A destination column the source lacks, NOT NULL without a default, that a BEFORE INSERT
/// trigger fills: copied, the trigger said, as copy mode does it (table mode refused it, and
/// its advice --columns too: types43 F8). Without the trigger it is refused still.
#[test]
fn a_not_null_column_a_trigger_fills_is_no_refusal() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE xc (id int, a text); INSERT INTO xc VALUES (1, 'a'), (2, NULL);",
    );
    let with_trigger = database(
        &c.dest[0],
        "CREATE TABLE xc (id int, a text, must int NOT NULL);
         CREATE FUNCTION fill() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN NEW.must := coalesce(NEW.must, 42); RETURN NEW; END $$;
         CREATE TRIGGER xc_fill BEFORE INSERT ON xc FOR EACH ROW EXECUTE FUNCTION fill();",
    );
    let without = database(
        &c.dest[1],
        "CREATE TABLE xc (id int, a text, must int NOT NULL);",
    );
    let from = c.source.conninfo(&src);
    let out = run(&[
        "table",
        "xc",
        "--from",
        &from,
        "--to",
        &c.dest[0].conninfo(&with_trigger),
    ]);
    assert_exit(&out, 0);
    assert!(
        text(&out.stderr).contains("runs INSERT triggers on it (xc_fill)"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        c.dest[0]
            .psql(&with_trigger, "SELECT sum(must) FROM xc")
            .trim(),
        "84"
    );
    let out = run(&[
        "table",
        "xc",
        "--from",
        &from,
        "--to",
        &c.dest[1].conninfo(&without),
    ]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("takes no default and refuses NULL"),
        "{}",
        text(&out.stderr)
    );
    // --columns cannot fill it: not advised (it led to a second refusal, types46 F1), in a
    // job neither (recheck46 F5).
    assert!(
        !text(&out.stderr).contains("--columns"),
        "{}",
        text(&out.stderr)
    );
    let out = run(&[
        "table",
        "-t",
        "xc",
        "--from",
        &from,
        "--to",
        &c.dest[1].conninfo(&without),
    ]);
    let said = text(&out.stderr) + &text(&out.stdout);
    assert!(
        said.contains("takes no default and refuses NULL")
            && !said.contains("--columns")
            && said.contains("leave it out of the job (--exclude-table)"),
        "{said}"
    );
}

/// numeric with a fraction, or a float, into an integer column: the integer types' input reads
/// no decimal point, so such a row fails, none is rounded — said so, not "may be rounded"
/// (types43 F3). The run fails on it, nothing committed.
#[test]
fn a_number_with_a_fraction_into_an_integer_is_said_to_fail() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE ni (id int, n numeric(10,2), f float8);
         INSERT INTO ni VALUES (1, 3.00, 2), (2, 4.50, 2.5);",
    );
    let d1 = database(&c.dest[0], "CREATE TABLE ni (id int, n int, f int);");
    let out = run(&[
        "table",
        "ni",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&d1),
    ]);
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("whose input reads no decimal point: every row holding a value would fail")
            && stderr.contains("a row holding a value with a fraction would fail")
            && !stderr.contains("may be rounded"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &d1, "ni"), 0);
}

/// A column renamed on a destination (`name` there `full_name`): table mode pairs columns by
/// name and refuses; the refusal names the destination's column the source has not and the
/// `copy` that pairs them by place — which copies (`--columns` alone left it NULL, types66 F2).
#[test]
fn a_column_renamed_on_a_destination_is_said_with_the_copy_that_pairs_it() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE rn (id int, name text, age int); INSERT INTO rn VALUES (1, 'ada', 36);",
    );
    let dst = database(
        &c.dest[0],
        "CREATE TABLE rn (id int, full_name text, age int);",
    );
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
    let out = run(&["table", "rn", "--from", &from, "--to", &to]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    let (send, receive) = (
        "COPY rn (id, name, age) TO STDOUT",
        "COPY rn (id, full_name, age) FROM STDIN",
    );
    assert!(
        stderr.contains("has \"full_name\", which the source has not: if it is \"name\" renamed")
            && stderr.contains(&format!("--send '{send}' --receive '{receive}'")),
        "{stderr}"
    );
    let out = run(&[
        "copy",
        "--from",
        &from,
        "--send",
        send,
        "--to",
        &to,
        "--receive",
        receive,
    ]);
    assert_exit(&out, 0);
    assert_eq!(
        c.dest[0].psql(&dst, "SELECT full_name FROM rn").trim(),
        "ada"
    );
}

/// `--columns id,Email` where the table's column is `"Email"`: the name folds to `email`, which
/// the source has not; said with its quoted form to give, as a table name's is (types66 F5).
/// And a `copy` statement naming a column twice, which COPY refuses (42701), is said as such,
/// not as columns in another order (types66 F7).
#[test]
fn a_folded_or_doubled_column_name_is_said_as_such() {
    let c = clusters();
    let table = r#"CREATE TABLE mc (id int, "Email" text);"#;
    let src = database(
        &c.source,
        &format!("{table} INSERT INTO mc VALUES (1, 'a@b');"),
    );
    let dst = database(&c.dest[0], table);
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
    let out = run(&[
        "table",
        "mc",
        "--from",
        &from,
        "--to",
        &to,
        "--columns",
        "id,Email",
    ]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(r#"give --columns 'id,"Email"'"#),
        "{stderr}"
    );
    let out = run(&[
        "table",
        "mc",
        "--from",
        &from,
        "--to",
        &to,
        "--columns",
        r#"id,"Email""#,
    ]);
    assert_exit(&out, 0);
    let send = "COPY mc TO STDOUT";
    for (send, receive, whose) in [
        (
            send,
            "COPY mc (id, id) FROM STDIN",
            "the --receive of destination 1",
        ),
        (
            "COPY mc (id, id) TO STDOUT",
            "COPY mc FROM STDIN",
            "the --send",
        ),
    ] {
        let out = run(&[
            "copy",
            "--from",
            &from,
            "--send",
            send,
            "--to",
            &to,
            "--receive",
            receive,
        ]);
        assert_exit(&out, 2);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(&format!("{whose} names column \"id\" twice")),
            "{stderr}"
        );
    }
    assert_eq!(count(&c.dest[0], &dst, "mc"), 1);
}

/// A dry run whose catalog read waits behind a lock a migration holds on a destination's table
/// says the wait as the run does (it waited in silence, for as long as the lock was held:
/// recheck66 F1), then prints its plan once the lock is gone.
#[test]
fn a_dry_run_waiting_for_a_lock_says_so() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE t (id int); INSERT INTO t VALUES (1);",
    );
    let dst = database(&c.dest[0], "CREATE TABLE t (id int);");
    let mut holder = c.dest[0].connect(&dst);
    holder
        .batch_execute("BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let mut child = copyman()
        .args(["table", "t", "--dry-run", "--from"])
        .arg(c.source.conninfo(&src))
        .args(["--to", &c.dest[0].conninfo(&dst)])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = StderrLines::take(&mut child);
    let said = stderr.wait_for("waiting for lock on destination 1");
    holder.batch_execute("ROLLBACK").unwrap();
    let said = said.unwrap_or_else(|| panic!("the wait unsaid: {}", stderr.seen()));
    assert!(said.contains("held by backend"), "{said}");
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

/// A destination lacking the table's schema: the way given creates the schema first, as
/// pg_dump's `--table` writes no CREATE SCHEMA (recheck66 F13: the hint, followed, failed
/// again).
#[test]
fn a_destination_lacking_the_schema_is_told_to_create_it_first() {
    let c = clusters();
    let src = database(&c.source, "CREATE SCHEMA sx; CREATE TABLE sx.tt (id int);");
    let dst = database(&c.dest[0], "");
    let out = run(&[
        "table",
        "sx.tt",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&dst),
    ]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("SQLSTATE 3F000") && stderr.contains("create the schema there first"),
        "{stderr}"
    );
}
