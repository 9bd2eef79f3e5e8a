//! A column whose type changes after copyman read the catalog, while copyman waits for the
//! table (a migration's `ALTER TABLE … ALTER COLUMN … TYPE` holds it): binary data carries no
//! type, so the copy read one type's bytes as the other's — an `int8` 10 stored as the `float8`
//! 5e-323, a `timestamp` taken as UTC — and exited 0. Each side now locks the table and checks
//! the columns' types before its COPY: the copy fails (55000), naming the column and both
//! types, and nothing is committed. One table and a job; the change on a destination and on the
//! source. Real clusters, shared by the binary.

use crate::common;

use common::*;
use copyman_testkit::Cluster;

const TABLE: &str = "CREATE TABLE a (id int8, v int8);";
const FILL: &str = "INSERT INTO a SELECT g, g * 10 FROM generate_series(1, 5) g;";

/// Runs `copyman ARGS` while a session of `db` on `cluster` holds `a` in an uncommitted
/// `ALTER TABLE a ALTER v TYPE float8`, committed once copyman waits for it (in its catalog
/// query, whose snapshot is older than the change, or in its transaction); copyman's output.
fn race(cluster: &Cluster, db: &str, args: &[&str]) -> std::process::Output {
    let migration = "BEGIN; ALTER TABLE a ALTER v TYPE float8 USING v::float8 / 3";
    while_held(cluster, db, migration, args)
}

#[track_caller]
fn assert_refused(out: &std::process::Output, exit: i32) {
    assert_exit(out, exit);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("55000")
            && stderr.contains("column \"v\" of")
            && stderr
                .contains("it is double precision now, the binary copy was planned for bigint")
            // copyman's own check, not the user's code.
            && !stderr.contains("inline_code_block"),
        "{stderr}"
    );
}

/// Runs the copy `args(from, to)` gives while a migration changes `a`'s column on either side:
/// the side's check fails the copy, nothing stored.
fn refused_on_either_side(args: impl Fn(&str, &str) -> Vec<String>) {
    let c = clusters();
    for on_source in [false, true] {
        let src = database(&c.source, &format!("{TABLE} {FILL}"));
        let dst = database(&c.dest[0], TABLE);
        let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
        let (cluster, db) = if on_source {
            (&c.source, &src)
        } else {
            (&c.dest[0], &dst)
        };
        let args = args(&from, &to);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_refused(&race(cluster, db, &args), 1);
        assert_eq!(
            count(&c.dest[0], &dst, "a"),
            0,
            "source changed: {on_source}"
        );
    }
}

/// One table, the change on either side: the side's lock check fails the copy.
#[test]
fn a_column_that_changes_type_on_either_side_while_copyman_waits_fails_the_copy() {
    refused_on_either_side(|from, to| {
        ["table", "a", "--from", from, "--to", to]
            .map(str::to_owned)
            .to_vec()
    });
}

/// `copy` whose statements both say FORMAT binary, the change on either side while copyman
/// waits (it compared the columns before): the side's check fails the copy (the int8 10 was
/// stored as the float8 5e-323, exit 0).
#[test]
fn a_binary_copys_column_that_changes_type_on_either_side_fails_the_copy() {
    refused_on_either_side(|from, to| {
        [
            "copy",
            "--from",
            from,
            "--send",
            "COPY a TO STDOUT (FORMAT binary)",
            "--to",
            to,
            "--receive",
            "COPY a FROM STDIN (FORMAT binary)",
        ]
        .map(str::to_owned)
        .to_vec()
    });
}

#[test]
fn a_jobs_column_that_changes_type_while_it_waits_fails_the_table() {
    let c = clusters();
    let src = database(&c.source, &format!("{TABLE} {FILL}"));
    let dst = database(&c.dest[0], TABLE);
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
    let state = TempPath::new("type-change.state");
    let out = race(
        &c.dest[0],
        &dst,
        &[
            "table",
            "a",
            "--schema",
            "public",
            "--from",
            &from,
            "--to",
            &to,
            "--state",
            state.arg(),
        ],
    );
    assert_refused(&out, 1);
    assert_eq!(count(&c.dest[0], &dst, "a"), 0);
    // Run again, it reads the catalog anew: text, the values converted.
    let out = run(&[
        "table",
        "a",
        "--schema",
        "public",
        "--from",
        &from,
        "--to",
        &to,
        "--state",
        state.arg(),
        "--resume",
    ]);
    assert_exit(&out, 0);
    let values: Vec<f64> = c.dest[0]
        .connect(&dst)
        .query("SELECT v FROM a ORDER BY id", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(values, [10.0, 20.0, 30.0, 40.0, 50.0]);
}

/// A view source replaced by one of other column types while copyman waits for it (binary,
/// one table): its check, after the view's lock (PostgreSQL 11 and later), fails the copy; it
/// read the float8's bits as int8, exit 0.
#[test]
fn a_view_replaced_while_copyman_waits_fails_the_copy() {
    let c = clusters();
    let src = database(
        &c.source,
        &format!("{TABLE} {FILL} CREATE VIEW vv AS SELECT * FROM a;"),
    );
    let dst = database(&c.dest[0], "CREATE TABLE vv (id int8, v int8)");
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
    let replaced = "BEGIN; DROP VIEW vv; CREATE VIEW vv AS SELECT id, v::float8 / 3 AS v FROM a";
    let args = ["table", "vv", "--from", &from, "--to", &to];
    let out = while_held(&c.source, &src, replaced, &args);
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("55000") && stderr.contains("it is double precision now"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &dst, "vv"), 0);
}

/// Columns of type `oid` (large object references) are said: copyman copies the numbers, not
/// the large objects (a destination row pointed at another large object of the same OID, exit
/// 0, without a word); one table and a job alike; and those of a domain over it, as contrib's
/// `lo` is (they were left out, dump63 F1). And a file's values for a `name` column,
/// which the server cuts to 63 bytes (between servers they are measured first), are said.
#[test]
fn large_object_and_name_columns_are_said() {
    let c = clusters();
    let table =
        "CREATE DOMAIN lo AS oid; CREATE TABLE docs (id int, body oid, title name, scan lo);";
    let src = database(
        &c.source,
        &format!("{table} INSERT INTO docs VALUES (1, 50000, 'contract', 50001);"),
    );
    let dst = database(&c.dest[0], table);
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
    let state = TempPath::new("large-objects.state");
    for extra in [&[][..], &["--state", state.arg(), "--verify"][..]] {
        let mut args = vec!["table", "docs", "--from", &from, "--to", &to, "--truncate"];
        args.extend(extra);
        let out = run(&args);
        assert_exit(&out, 0);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(
                r#"columns "body", "scan" of type oid (or lo) usually hold large object OIDs"#
            ) && !stderr.contains("cuts to 63 bytes"),
            "{extra:?}: {stderr}"
        );
    }
    let file = TempPath::new("docs.txt");
    std::fs::write(&file.0, "2\t50001\ttitle\t50002\n").unwrap();
    let out = run(&["table", "docs", "--from", file.arg(), "--to", &to]);
    assert_exit(&out, 0);
    assert!(
        text(&out.stderr).contains(r#"the destinations read "title" as type name"#),
        "{}",
        text(&out.stderr)
    );
}

/// A column dropped (or renamed) on a destination while copyman waits for the table: the check
/// says so in its own words, 42703 (it was the server's "column "v" not found in data type a",
/// from copyman's DO block), nothing stored. One table and a job.
#[test]
fn a_column_dropped_while_copyman_waits_is_said_as_such() {
    let c = clusters();
    for job in [false, true] {
        let src = database(&c.source, &format!("{TABLE} {FILL}"));
        let dst = database(&c.dest[0], TABLE);
        let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
        let state = TempPath::new("dropped-column.state");
        let mut args = vec!["table", "a", "--from", &from, "--to", &to];
        if job {
            args.extend(["--schema", "public", "--state", state.arg()]);
        }
        let out = while_held(
            &c.dest[0],
            &dst,
            "BEGIN; ALTER TABLE a DROP COLUMN v",
            &args,
        );
        assert_exit(&out, 1);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("42703")
                && stderr.contains("column \"v\" of ")
                && stderr.contains("was dropped or renamed after copyman read the catalog")
                && !stderr.contains("inline_code_block"),
            "job {job}: {stderr}"
        );
        assert_eq!(count(&c.dest[0], &dst, "a"), 0);
    }
}

/// Under `--keep-going`, a destination refused before any byte for what it would do to the
/// values — a `name` column that would cut them, a narrower sequence its `setval` would
/// overflow — is left out, as one whose columns differ is, and the others copied (types66 F16:
/// the whole copy was refused, the healthy destination got nothing). Without it, refused. A
/// job alike: that table is left out there, the others copied (recheck66 F4: the whole job was
/// refused, exit 2).
#[test]
fn keep_going_leaves_out_a_destination_that_would_cut_or_overflow() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE kg (id int GENERATED BY DEFAULT AS IDENTITY, n text);
         INSERT INTO kg (n) VALUES (repeat('x', 80));
         SELECT setval(pg_get_serial_sequence('kg', 'id'), 100000);
         CREATE TABLE ok (id int); INSERT INTO ok VALUES (1), (2);",
    );
    let cuts = database(
        &c.dest[0],
        "CREATE TABLE kg (id int GENERATED BY DEFAULT AS IDENTITY, n name);
         CREATE TABLE ok (id int);",
    );
    let narrow = database(
        &c.dest[1],
        "CREATE TABLE kg (id smallint GENERATED BY DEFAULT AS IDENTITY, n text);
         CREATE TABLE ok (id int);",
    );
    let fine = database(
        &c.dest[0],
        "CREATE TABLE kg (id int GENERATED BY DEFAULT AS IDENTITY, n text);
         CREATE TABLE ok (id int);",
    );
    let from = c.source.conninfo(&src);
    let (to_cuts, to_narrow, to_fine) = (
        c.dest[0].conninfo(&cuts),
        c.dest[1].conninfo(&narrow),
        c.dest[0].conninfo(&fine),
    );
    let args = |keep_going: bool| {
        let mut args = vec!["table", "kg", "--from", &from, "--to", &to_cuts];
        args.extend(["--to", &to_narrow, "--to", &to_fine]);
        if keep_going {
            args.push("--keep-going");
        }
        run(&args)
    };
    assert_exit(&args(false), 2);
    assert_eq!(count(&c.dest[0], &fine, "kg"), 0);
    let out = args(true);
    assert_exit(&out, 4);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("which holds 63 bytes") && stderr.contains("SQLSTATE 22003"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &cuts, "kg"), 0);
    assert_eq!(count(&c.dest[1], &narrow, "kg"), 0);
    assert_eq!(count(&c.dest[0], &fine, "kg"), 1);
    // A job: kg left out where it would be cut or overflow, the rest copied.
    let fine = database(
        &c.dest[0],
        "CREATE TABLE kg (id int GENERATED BY DEFAULT AS IDENTITY, n text);
         CREATE TABLE ok (id int);",
    );
    let to_fine = c.dest[0].conninfo(&fine);
    let mut job = vec!["table", "kg", "ok", "--keep-going", "--from", &from];
    job.extend(["--to", &to_cuts, "--to", &to_narrow, "--to", &to_fine]);
    let out = run(&job);
    let stderr = text(&out.stderr);
    assert_exit(&out, 4);
    assert!(stderr.contains("which holds 63 bytes"), "{stderr}");
    assert_eq!(count(&c.dest[0], &cuts, "kg"), 0);
    assert_eq!(count(&c.dest[1], &narrow, "kg"), 0);
    assert_eq!(count(&c.dest[0], &fine, "kg"), 1);
    for (cluster, db) in [
        (&c.dest[0], &cuts),
        (&c.dest[1], &narrow),
        (&c.dest[0], &fine),
    ] {
        assert_eq!(count(cluster, db, "ok"), 2, "{db}: {stderr}");
    }
}
