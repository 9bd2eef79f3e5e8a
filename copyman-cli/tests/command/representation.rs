//! `copyman copy` ends that read the data otherwise than it is written: refused before connecting
//! when the statements say so (exit 2), at the copy's start by core when only the sessions can
//! tell (an ENCODING left out is the session's client_encoding); spellings of one encoding copy.

use crate::common;
use common::*;

const TABLE: &str = "CREATE TABLE t (i int8, s text)";
const FILL: &str = "INSERT INTO t SELECT g, CASE WHEN g % 3 = 0 THEN NULL ELSE 'é' || g END \
                    FROM generate_series(1, 1000) g";

/// `copyman copy --from FROM --send SEND --to TO --receive RECEIVE EXTRA…`.
fn copy_between(
    from: &str,
    send: &str,
    to: &str,
    receive: &str,
    extra: &[&str],
) -> std::process::Output {
    let mut args = vec![
        "copy",
        "--from",
        from,
        "--send",
        send,
        "--to",
        to,
        "--receive",
        receive,
    ];
    args.extend(extra);
    run(&args)
}

/// A text `--send` and a CSV `--receive`: refused before any server is reached (the hosts do not
/// exist), exit 2, in core's words.
#[test]
fn text_send_with_csv_receive_exits_2_before_connecting() {
    let out = run(&[
        "copy",
        "--from",
        "host=/nonexistent/source dbname=x",
        "--send",
        "COPY t TO STDOUT",
        "--to",
        "host=/nonexistent/dest dbname=x",
        "--receive",
        "COPY t FROM STDIN (FORMAT csv)",
    ]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "the --receive of destination 1 reads FORMAT csv, but --send writes FORMAT text: its \
             rows would be read as another format"
        ),
        "{stderr}"
    );
    assert!(
        !stderr.contains("nonexistent"),
        "nothing was connected: {stderr}"
    );
}

/// `ENCODING 'UTF8'` on one end and none on the other (the session's client_encoding, UTF8 on
/// copyman's connections) was refused before connecting; it copies every row.
#[test]
fn explicit_utf8_against_the_session_encoding_copies() {
    let c = clusters();
    let src = database(&c.source, &format!("{TABLE}; {FILL}"));
    let dst = database(&c.dest[0], TABLE);
    let out = run(&[
        "copy",
        "--from",
        &c.source.conninfo(&src),
        "--send",
        "COPY t TO STDOUT",
        "--to",
        &c.dest[0].conninfo(&dst),
        "--receive",
        "COPY t FROM STDIN (ENCODING 'unicode')",
    ]);
    assert_exit(&out, 0);
    assert_eq!(digest(&c.dest[0], &dst, "t"), digest(&c.source, &src, "t"));
}

/// A `--receive` with an ENCODING of its own (LATIN1) against a `--send` without one: only the
/// source session's client_encoding (UTF8) tells them apart. Core refused it at the copy's
/// start (exit 1, the dry run said OK); the plan asks the sessions and refuses it as the other
/// options are (exit 2, the dry run too, copy41 F4): nothing loaded, no COPY left anywhere.
#[test]
fn an_encoding_other_than_the_sessions_is_refused_once_connected() {
    let c = clusters();
    let src = database(&c.source, &format!("{TABLE}; {FILL}"));
    let dst = database(&c.dest[0], TABLE);
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
    for extra in [&["--dry-run"][..], &[]] {
        let receive = "COPY t FROM STDIN (ENCODING 'LATIN1')";
        let out = copy_between(&from, "COPY t TO STDOUT", &to, receive, extra);
        assert_exit(&out, 2);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(
                "the --receive of destination 1 reads FORMAT text, ENCODING 'LATIN1', but --send \
                 writes FORMAT text, ENCODING 'UTF8'"
            ) && stderr.contains("the same ENCODING option on both statements"),
            "{extra:?}: {stderr}"
        );
    }
    assert_eq!(count(&c.dest[0], &dst, "t"), 0);
    assert_eq!(copy_backends(&c.dest[0], &dst), 0);
    assert_eq!(copy_backends(&c.source, &src), 0);
}

/// HEADER on one end only, or FORCE_NULL / FORCE_NOT_NULL on a `--receive` from a server: the
/// data would be read otherwise than it was written (a row skipped as a header, a header stored
/// as a row, `''` and NULL swapped; the count check caught the first two, and its hint to
/// `--allow-count-mismatch` committed them), refused before connecting, exit 2.
#[test]
fn a_header_on_one_end_or_forced_nulls_are_refused_before_connecting() {
    for (send, receive, says) in [
        (
            "COPY t TO STDOUT (FORMAT csv)",
            "COPY t FROM STDIN (FORMAT csv, HEADER)",
            "reads FORMAT csv, HEADER, but --send writes FORMAT csv: a HEADER on one end only",
        ),
        (
            "COPY t TO STDOUT (FORMAT csv, HEADER)",
            "COPY t FROM STDIN (FORMAT csv)",
            "reads FORMAT csv, but --send writes FORMAT csv, HEADER:",
        ),
        (
            "COPY t TO STDOUT (FORMAT csv)",
            "COPY t FROM STDIN (FORMAT csv, FORCE_NULL (s))",
            "reads FORMAT csv, FORCE_NULL (s), but --send writes FORMAT csv: FORCE_NULL or \
             FORCE_NOT_NULL, options of COPY FROM only",
        ),
    ] {
        let out = run(&[
            "copy",
            "--from",
            "host=/nonexistent/source dbname=x",
            "--send",
            send,
            "--to",
            "host=/nonexistent/dest dbname=x",
            "--receive",
            receive,
        ]);
        assert_exit(&out, 2);
        let stderr = text(&out.stderr);
        assert!(stderr.contains(says), "{receive}: {stderr}");
        assert!(!stderr.contains("nonexistent"), "{stderr}");
    }
    // Both ends with a header agree: it copies.
    let c = clusters();
    let src = database(&c.source, &format!("{TABLE}; {FILL}"));
    let dst = database(&c.dest[0], TABLE);
    let out = run(&[
        "copy",
        "--from",
        &c.source.conninfo(&src),
        "--send",
        "COPY t TO STDOUT (FORMAT csv, HEADER)",
        "--to",
        &c.dest[0].conninfo(&dst),
        "--receive",
        "COPY t FROM STDIN (FORMAT csv, HEADER)",
    ]);
    assert_exit(&out, 0);
    assert_eq!(digest(&c.dest[0], &dst, "t"), digest(&c.source, &src, "t"));
}

/// A binary `--send` of a table into a `--receive` whose table has other types at the same
/// positions: refused before anything is sent, naming the column (it stored the bytes read as
/// the other types: 2 as a timestamp, 3.5 as an int8, exit 0); the same types copy.
#[test]
fn binary_copy_into_other_types_is_refused() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE bx (a int8, b int4, c float8); INSERT INTO bx VALUES (1, 2, 3.5);",
    );
    let other = database(
        &c.dest[0],
        "CREATE TABLE bx (a timestamp, b float4, c int8)",
    );
    let same = database(&c.dest[1], "CREATE TABLE bx (a int8, b int4, c float8)");
    let copy = |to: &str| {
        run(&[
            "copy",
            "--from",
            &c.source.conninfo(&src),
            "--send",
            "COPY bx TO STDOUT (FORMAT binary)",
            "--to",
            to,
            "--receive",
            "COPY bx FROM STDIN (FORMAT binary)",
        ])
    };
    let out = copy(&c.dest[0].conninfo(&other));
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "binary COPY does not convert values: the --send's column \"a\" is bigint on the \
             source but timestamp without time zone on destination 1"
        ),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &other, "bx"), 0);
    assert_exit(&copy(&c.dest[1].conninfo(&same)), 0);
    assert_eq!(
        digest(&c.dest[1], &same, "bx"),
        digest(&c.source, &src, "bx")
    );
    // A query's types are checked as a table's; one that cannot be described is said.
    let query = |send: &str, to: &str| {
        run(&[
            "copy",
            "--from",
            &c.source.conninfo(&src),
            "--send",
            send,
            "--to",
            to,
            "--receive",
            "COPY bx FROM STDIN (FORMAT binary)",
        ])
    };
    let select = "COPY (SELECT * FROM bx) TO STDOUT (FORMAT binary)";
    assert_exit(&query(select, &c.dest[0].conninfo(&other)), 2);
    let out = query(select, &c.dest[1].conninfo(&same));
    assert_exit(&out, 0);
    assert!(
        !text(&out.stderr).contains("not checked"),
        "{}",
        text(&out.stderr)
    );
    // A `DELETE … RETURNING` is described too (a table created from it WITH NO DATA): its
    // types are checked, and nothing is deleted by the description.
    let delete = "COPY (DELETE FROM bx WHERE true RETURNING *) TO STDOUT (FORMAT binary)";
    let rows = count(&c.source, &src, "bx");
    let out = query(delete, &c.dest[0].conninfo(&other));
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("binary COPY does not convert values"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.source, &src, "bx"), rows);
    let out = query(delete, &c.dest[1].conninfo(&same));
    assert_exit(&out, 0);
    assert!(
        !text(&out.stderr).contains("could not be described"),
        "{}",
        text(&out.stderr)
    );
    // Types of one binary form copy (a string into another string type, other modifiers).
    c.source
        .connect(&src)
        .batch_execute(
            "CREATE TABLE vs (v varchar(10), n numeric(6,2)); INSERT INTO vs VALUES ('x', 1.5)",
        )
        .unwrap();
    c.dest[1]
        .connect(&same)
        .batch_execute("CREATE TABLE vs (v text, n numeric(8,2))")
        .unwrap();
    let out = run(&[
        "copy",
        "--from",
        &c.source.conninfo(&src),
        "--send",
        "COPY vs TO STDOUT (FORMAT binary)",
        "--to",
        &c.dest[1].conninfo(&same),
        "--receive",
        "COPY vs FROM STDIN (FORMAT binary)",
    ]);
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[1], &same, "vs"), 1);
}

/// Options copyman cannot read (dollar-quoted or U& values and names, a quoted "header") are
/// refused before connecting: the ends could not be compared ('' and NULL were swapped, a NULL
/// stored as 'x', exit 0).
#[test]
fn options_the_check_cannot_read_are_refused_before_connecting() {
    for receive in [
        "COPY t FROM STDIN (FORMAT csv, NULL $$$$)",
        "COPY t FROM STDIN (FORMAT csv, QUOTE $a$|$a$)",
        r#"COPY t FROM STDIN (FORMAT csv, U&"force_not_null" (v))"#,
        r#"COPY t FROM STDIN (FORMAT csv, "header")"#,
        // An E'' escape beyond ASCII: said as such, not as a dollar quote (recheck42 F2).
        r"COPY t FROM STDIN (FORMAT csv, NULL E'\xe9')",
    ] {
        let out = run(&[
            "copy",
            "--from",
            "host=/nonexistent/source dbname=x",
            "--send",
            "COPY t TO STDOUT (FORMAT csv)",
            "--to",
            "host=/nonexistent/dest dbname=x",
            "--receive",
            receive,
        ]);
        assert_exit(&out, 2);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("copyman cannot read its options") && !stderr.contains("nonexistent"),
            "{receive}: {stderr}"
        );
        assert!(stderr.contains("an E'…' escape beyond ASCII"), "{stderr}");
    }
}

/// A binary `copy` between tables whose types have one name but are made of other types (a
/// domain, a range, an array of a domain over int8 here and timestamp there) or whose values are
/// OIDs (`regclass`): refused before anything is sent, as table mode refuses them (they were
/// compared by name: 1700000000000000 stored as 2053-11-13, `orders` as another table).
#[test]
fn binary_copy_of_same_named_types_made_of_others_or_of_oids_is_refused() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE DOMAIN dd AS int8; CREATE TYPE rr AS RANGE (subtype = int8);
         CREATE TABLE bx (a dd, r rr, ad dd[]);
         INSERT INTO bx VALUES (1700000000000000, '[1,2)', '{1700000000000000}');
         CREATE TABLE refs (id int, rel regclass);
         INSERT INTO refs VALUES (1, 'bx');",
    );
    let dst = database(
        &c.dest[0],
        "CREATE DOMAIN dd AS timestamp; CREATE TYPE rr AS RANGE (subtype = timestamp);
         CREATE TABLE bx (a dd, r rr, ad dd[]); CREATE TABLE refs (id int, rel regclass);",
    );
    for (table, said) in [
        (
            "bx",
            "column \"a\" is of type public.dd, whose binary form differs on destination 1",
        ),
        (
            "refs",
            "column \"rel\" is of type regclass, whose binary form is an OID",
        ),
    ] {
        let out = run(&[
            "copy",
            "--from",
            &c.source.conninfo(&src),
            "--send",
            &format!("COPY {table} TO STDOUT (FORMAT binary)"),
            "--to",
            &c.dest[0].conninfo(&dst),
            "--receive",
            &format!("COPY {table} FROM STDIN (FORMAT binary)"),
        ]);
        assert_exit(&out, 2);
        assert!(text(&out.stderr).contains(said), "{}", text(&out.stderr));
        assert_eq!(count(&c.dest[0], &dst, table), 0);
    }
}

/// Table mode: a multirange of one name over int8 here and timestamp there, and a type that is
/// an enum here and a range over an enum there, are other binary forms: `--format binary` is
/// refused, and by default they travel as text (their values were reinterpreted, exit 0).
#[test]
fn same_named_multiranges_and_enum_ranges_of_other_kinds_are_not_binary() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TYPE rr AS RANGE (subtype = int8, multirange_type_name = mr);
         CREATE TYPE e AS ENUM ('a', 'b'); CREATE TYPE x AS ENUM ('a', 'b');
         CREATE TABLE m (id int, v mr); INSERT INTO m VALUES (1, '{[1,2)}');
         CREATE TABLE k (id int, v x); INSERT INTO k VALUES (1, 'a');",
    );
    let dst = database(
        &c.dest[0],
        "CREATE TYPE rr AS RANGE (subtype = timestamp, multirange_type_name = mr);
         CREATE TYPE e AS ENUM ('a', 'b'); CREATE TYPE x AS RANGE (subtype = e);
         CREATE TABLE m (id int, v mr); CREATE TABLE k (id int, v x);",
    );
    for table in ["m", "k"] {
        let out = run(&[
            "table",
            table,
            "--from",
            &c.source.conninfo(&src),
            "--to",
            &c.dest[0].conninfo(&dst),
            "--format",
            "binary",
        ]);
        assert_exit(&out, 2);
        assert!(
            text(&out.stderr).contains("whose binary form differs on destination 1"),
            "{table}: {}",
            text(&out.stderr)
        );
        assert_eq!(count(&c.dest[0], &dst, table), 0);
    }
    // By default: text, which the destination reads as its own type (or refuses, loudly).
    let out = run(&[
        "table",
        "m",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&dst),
    ]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(count(&c.dest[0], &dst, "m"), 0);
}

/// `copy` between tables with the same columns in another order: COPY reads fields by position,
/// so their values were swapped (exit 0). Refused before anything is sent, in text as in
/// binary; a `--receive` that lists the columns in the `--send`'s order copies.
#[test]
fn copy_into_the_same_columns_in_another_order_is_refused() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE t (a text, b text); INSERT INTO t VALUES ('x', 'y');",
    );
    let dst = database(&c.dest[0], "CREATE TABLE t (b text, a text)");
    let copy = |format: &str, receive: &str| {
        run(&[
            "copy",
            "--from",
            &c.source.conninfo(&src),
            "--send",
            &format!("COPY t TO STDOUT (FORMAT {format})"),
            "--to",
            &c.dest[0].conninfo(&dst),
            "--receive",
            &format!("{receive} (FORMAT {format})"),
        ])
    };
    for format in ["text", "csv", "binary"] {
        let out = copy(format, "COPY t FROM STDIN");
        assert_exit(&out, 2);
        assert!(
            text(&out.stderr).contains("reads the same columns in another order (b, a)"),
            "{format}: {}",
            text(&out.stderr)
        );
        assert_eq!(count(&c.dest[0], &dst, "t"), 0);
    }
    assert_exit(&copy("text", "COPY t (a, b) FROM STDIN"), 0);
    assert_eq!(
        count(&c.dest[0], &dst, "(SELECT 1 FROM t WHERE a = 'x')"),
        1
    );
}

/// A column of one name generated on one side only, and so left out of that side's COPY: the
/// destination's (the source's "g" read into "h" beside the "g" it generates) or the source's
/// (its "h" read into the destination's "g"). The values landed in another column, exit 0;
/// refused before anything is sent now, and both column lists written out copy as written.
#[test]
fn copy_beside_a_generated_column_of_the_same_name_is_refused() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE t (id int, g int, h int GENERATED ALWAYS AS (id * 10) STORED);
         INSERT INTO t VALUES (1, 5);
         CREATE TABLE u (id int, g int GENERATED ALWAYS AS (id * 100) STORED, h int);
         INSERT INTO u (id, h) VALUES (1, 7);",
    );
    let dst = database(
        &c.dest[0],
        "CREATE TABLE t (id int, g int GENERATED ALWAYS AS (id * 2) STORED, h int);
         CREATE TABLE u (id int, g int);",
    );
    let copy = |send: &str, receive: &str| {
        run(&[
            "copy",
            "--from",
            &c.source.conninfo(&src),
            "--send",
            send,
            "--to",
            &c.dest[0].conninfo(&dst),
            "--receive",
            receive,
        ])
    };
    let out = copy("COPY t TO STDOUT", "COPY t FROM STDIN");
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("writes \"g\" as its field 2, which destination 1 (",)
            && text(&out.stderr).contains(
                "reads into its column \"h\", though it has a column \"g\", which it generates"
            )
            // Not a list naming "g", which the server refuses (copy44 F4).
            && text(&out.stderr).contains(
                "leave \"g\" out of the --send, or name the column it goes into in a --receive \
                 column list"
            ),
        "{}",
        text(&out.stderr)
    );
    let out = copy("COPY u TO STDOUT", "COPY u FROM STDIN");
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("the --send's table generates its column \"g\"")
            && text(&out.stderr).contains("reads into its column \"g\""),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &dst, "t"), 0);
    assert_eq!(count(&c.dest[0], &dst, "u"), 0);
    // Written out on both ends, the renaming is the user's.
    assert_exit(
        &copy("COPY t (id, g) TO STDOUT", "COPY t (id, h) FROM STDIN"),
        0,
    );
    assert_eq!(count(&c.dest[0], &dst, "(SELECT 1 FROM t WHERE h = 5)"), 1);
}

/// A column the source stores and a destination generates is said as such in table mode, one
/// table and a job alike: "lacks "g" (generated there)" said it missing, with advice for the
/// other way round (dump63 F2). Nothing is copied; leaving it out with --columns copies.
#[test]
fn table_a_column_generated_only_on_the_destination_is_said_generated_there() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE gt (id int, g int); INSERT INTO gt VALUES (1, 5);",
    );
    let dst = database(
        &c.dest[0],
        "CREATE TABLE gt (id int, g int GENERATED ALWAYS AS (id * 2) STORED);",
    );
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
    let state = TempPath::new("generated-there.state");
    for extra in [&[][..], &["--state", state.arg()][..]] {
        let mut args = vec!["table", "gt", "--from", &from, "--to", &to];
        args.extend(extra);
        let out = run(&args);
        assert_exit(&out, if extra.is_empty() { 2 } else { 1 });
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(r#" generates "g", which the source stores: COPY cannot write a"#)
                && !stderr.contains(r#"lacks "g""#),
            "{extra:?}: {stderr}"
        );
    }
    assert_eq!(count(&c.dest[0], &dst, "gt"), 0);
    assert_exit(
        &run(&[
            "table",
            "gt",
            "--from",
            &from,
            "--to",
            &to,
            "--columns",
            "id",
        ]),
        0,
    );
    assert_eq!(count(&c.dest[0], &dst, "(SELECT 1 FROM gt WHERE g = 2)"), 1);
}

/// `copy` whose `--send` is a query: its columns are described (a temporary view, rolled back)
/// and checked as a table's — the same columns in another order refused (their values were
/// swapped, exit 0), a binary misread refused; a query in the destination's order, or renamed
/// on purpose, copies; a `DELETE … RETURNING` is described without running it and checked the
/// same; nothing of the description stays on the source.
#[test]
fn copy_of_a_query_checks_its_columns_as_a_tables() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE p (id int, first_name text, last_name text, n int8);
         INSERT INTO p VALUES (1, 'Ada', 'Lovelace', 1700000000000000);",
    );
    let dst = database(
        &c.dest[0],
        "CREATE TABLE p (id int, last_name text, first_name text);
         CREATE TABLE stamps (at timestamp)",
    );
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
    let copy = |send: &str, receive: &str| copy_between(&from, send, &to, receive, &[]);
    let out = copy(
        "COPY (SELECT id, first_name, last_name FROM p WHERE id > 0) TO STDOUT",
        "COPY p FROM STDIN",
    );
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains(
            "the --send's query writes the columns (id, first_name, last_name) and destination 1"
        ) && text(&out.stderr).contains("select them in the destination's order"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &dst, "p"), 0);
    // In binary, an int8 read as a timestamp.
    let out = copy(
        "COPY (SELECT n FROM p) TO STDOUT (FORMAT binary)",
        "COPY stamps FROM STDIN (FORMAT binary)",
    );
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("binary COPY does not convert values"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &dst, "stamps"), 0);
    // Nothing of the description stays, and the source session was not left in a transaction.
    assert_eq!(
        count(
            &c.source,
            &src,
            "(SELECT 1 FROM pg_class WHERE relname = 'copyman_send_columns')"
        ),
        0
    );
    for send in [
        "COPY (SELECT id, last_name, first_name FROM p) TO STDOUT",
        "COPY (SELECT id, first_name AS last_name, last_name AS first_name FROM p) TO STDOUT",
    ] {
        assert_exit(&copy(send, "COPY p FROM STDIN"), 0);
    }
    assert_eq!(
        count(
            &c.dest[0],
            &dst,
            "(SELECT 1 FROM p WHERE last_name = 'Lovelace')"
        ),
        1
    );
    assert_eq!(
        count(
            &c.dest[0],
            &dst,
            "(SELECT 1 FROM p WHERE last_name = 'Ada')"
        ),
        1
    );
    // A move's DELETE cannot be a view: it is described by a table created from it WITH NO
    // DATA, which runs nothing (its trigger does not fire, no row goes), and checked the same.
    c.source
        .connect(&src)
        .batch_execute(
            "CREATE TABLE fired (n int);
             CREATE FUNCTION note() RETURNS trigger LANGUAGE plpgsql AS
               $$ BEGIN INSERT INTO fired VALUES (1); RETURN OLD; END $$;
             CREATE TRIGGER note BEFORE DELETE ON p FOR EACH ROW EXECUTE FUNCTION note();",
        )
        .unwrap();
    let out = copy(
        "COPY (DELETE FROM p RETURNING id, first_name, last_name) TO STDOUT",
        "COPY p FROM STDIN",
    );
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains(
            "the --send's query writes the columns (id, first_name, last_name) and destination 1"
        ),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.source, &src, "p"), 1);
    assert_eq!(count(&c.source, &src, "fired"), 0);
    assert_eq!(count(&c.dest[0], &dst, "p"), 2);
    let out = copy(
        "COPY (DELETE FROM p RETURNING id, last_name, first_name) TO STDOUT",
        "COPY p FROM STDIN",
    );
    assert_exit(&out, 0);
    assert_eq!(count(&c.source, &src, "p"), 0);
    assert_eq!(count(&c.source, &src, "fired"), 1);
    assert_eq!(count(&c.dest[0], &dst, "p"), 3);
    assert_eq!(
        count(
            &c.source,
            &src,
            "(SELECT 1 FROM pg_class WHERE relname = 'copyman_send_columns')"
        ),
        0
    );
}

/// `copy` between tables into narrower columns: said as table mode says it (rounded and cut
/// without a word, exit 0).
#[test]
fn copy_into_narrower_columns_is_said() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE t (id int, n numeric(12,4), f float8); INSERT INTO t VALUES (1, 1.2345, 0.1);",
    );
    let dst = database(
        &c.dest[0],
        "CREATE TABLE t (id int, amount numeric(10,2), f float4)",
    );
    let out = run(&[
        "copy",
        "--from",
        &c.source.conninfo(&src),
        "--send",
        "COPY t TO STDOUT",
        "--to",
        &c.dest[0].conninfo(&dst),
        "--receive",
        "COPY t FROM STDIN",
    ]);
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("column \"n\" is numeric(12,4) on the source but numeric(10,2)")
            && stderr.contains("column \"f\" is double precision on the source but real"),
        "{stderr}"
    );
}

/// `copy` into a view whose INSTEAD OF trigger may skip rows is refused unless
/// `--allow-count-mismatch` (said then), whatever the --send; a source table without columns
/// into one with columns is refused (each empty row read as them, '' instead of the default);
/// timestamps into timestamptz on destinations of other TimeZones are refused, as in table mode.
#[test]
fn copy_mode_refuses_views_empty_rows_and_times_read_in_other_zones() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE v (id int); INSERT INTO v SELECT generate_series(-2, 3);
         CREATE TABLE z (); INSERT INTO z DEFAULT VALUES;
         CREATE TABLE ts (at timestamp); INSERT INTO ts VALUES ('2024-01-01 00:00');",
    );
    let dst = database(
        &c.dest[0],
        "CREATE TABLE real_t (id int); CREATE VIEW v AS SELECT id FROM real_t;
         CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN IF NEW.id < 0 THEN RETURN NULL; END IF;
              INSERT INTO real_t VALUES (NEW.id); RETURN NEW; END $$;
         CREATE TRIGGER tr INSTEAD OF INSERT ON v FOR EACH ROW EXECUTE FUNCTION f();
         CREATE TABLE z (x text DEFAULT 'dflt'); CREATE TABLE ts (at timestamptz);",
    );
    let from = c.source.conninfo(&src);
    let to = c.dest[0].conninfo(&dst);
    let copy = |send: &str, receive: &str, extra: &[&str]| {
        let mut args = vec![
            "copy",
            "--from",
            &from,
            "--send",
            send,
            "--to",
            &to,
            "--receive",
            receive,
        ];
        args.extend(extra);
        run(&args)
    };
    for send in ["COPY v TO STDOUT", "COPY (SELECT id FROM v) TO STDOUT"] {
        let out = copy(send, "COPY v FROM STDIN", &[]);
        assert_exit(&out, 2);
        assert!(
            text(&out.stderr).contains("its COPY counts the rows it hands"),
            "{}",
            text(&out.stderr)
        );
    }
    assert_eq!(count(&c.dest[0], &dst, "real_t"), 0);
    let out = copy(
        "COPY v TO STDOUT",
        "COPY v FROM STDIN",
        &["--allow-count-mismatch"],
    );
    assert_exit(&out, 0);
    assert!(
        text(&out.stderr).contains("its rows are not counted"),
        "{}",
        text(&out.stderr)
    );
    for (send, what) in [
        ("COPY z TO STDOUT", "table"),
        ("COPY (SELECT FROM z) TO STDOUT", "query"),
    ] {
        let out = copy(send, "COPY z FROM STDIN", &[]);
        assert_exit(&out, 2);
        assert!(
            text(&out.stderr).contains(&format!("the --send's {what} has no column")),
            "{}",
            text(&out.stderr)
        );
    }
    assert_eq!(count(&c.dest[0], &dst, "z"), 0);
    // Two destinations in other zones.
    let other = database_in_zone(&c.dest[1], "Asia/Tokyo", "CREATE TABLE ts (at timestamptz)");
    let to2 = c.dest[1].conninfo(&other);
    for send in ["COPY ts TO STDOUT", "COPY (SELECT at FROM ts) TO STDOUT"] {
        let out = run(&[
            "copy",
            "--from",
            &from,
            "--send",
            send,
            "--to",
            &format!("{to} options='-c TimeZone=UTC'"),
            "--to",
            &to2,
            "--receive",
            "COPY ts FROM STDIN",
        ]);
        assert_exit(&out, 2);
        assert!(
            text(&out.stderr).contains("holds no time zone on the source"),
            "{send}: {}",
            text(&out.stderr)
        );
    }
}

/// A database on `cluster` whose TimeZone is `zone`, holding `sql`.
fn database_in_zone(cluster: &copyman_testkit::Cluster, zone: &str, sql: &str) -> String {
    let db = database(cluster, sql);
    cluster
        .connect("postgres")
        .batch_execute(&format!("ALTER DATABASE \"{db}\" SET TimeZone = '{zone}'"))
        .unwrap();
    db
}

/// `copy` of a composite whose fields stand in another order on the destination: filled by
/// position, the values would swap fields (street and city) — refused, as table mode refuses it.
#[test]
fn copy_of_a_composite_with_its_fields_in_another_order_is_refused() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TYPE addr AS (street text, city text);
         CREATE TABLE a (id int, at addr); INSERT INTO a VALUES (1, ROW('Main St', 'Springfield'));",
    );
    let dst = database(
        &c.dest[0],
        "CREATE TYPE addr AS (city text, street text); CREATE TABLE a (id int, at addr);",
    );
    let out = run(&[
        "copy",
        "--from",
        &c.source.conninfo(&src),
        "--send",
        "COPY a TO STDOUT",
        "--to",
        &c.dest[0].conninfo(&dst),
        "--receive",
        "COPY a FROM STDIN",
    ]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("the --send's column \"at\""),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &dst, "a"), 0);
}

/// A swap written out in both column lists is the user's: copied as written (it was refused as
/// "the same columns in another order"), and said, each pair named (types64 F1: a slip in one
/// list stored every value in the other column without a word).
#[test]
fn copy_with_both_column_lists_written_out_copies_as_written() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE t (a text, b text); INSERT INTO t VALUES ('x', 'y');",
    );
    let dst = database(&c.dest[0], "CREATE TABLE t (a text, b text)");
    let out = run(&[
        "copy",
        "--from",
        &c.source.conninfo(&src),
        "--send",
        "COPY t (b, a) TO STDOUT",
        "--to",
        &c.dest[0].conninfo(&dst),
        "--receive",
        "COPY t (a, b) FROM STDIN",
    ]);
    assert_exit(&out, 0);
    assert_eq!(
        count(&c.dest[0], &dst, "(SELECT 1 FROM t WHERE a = 'y')"),
        1
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "the --send's column list (b, a) and the --receive's (a, b) name the same columns in \
             another order: each value is stored as written, \"b\" into \"a\", \"a\" into \"b\""
        ),
        "{stderr}"
    );
}

/// A `--send` query the source cannot describe as a temporary view — a role without TEMP on
/// the database, a standby — skipped the check of its columns' order: `first_name` and
/// `last_name` were stored in each other's columns, exit 0, nothing said. Refused unless the
/// `--receive` lists its columns (the order is then the user's); a role whose transactions are
/// read-only by default describes it (in a read-write transaction, rolled back).
#[test]
fn copy_of_a_query_the_source_cannot_describe_needs_the_columns_listed() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE t (id int, first_name text, last_name text);
         INSERT INTO t VALUES (1, 'Ada', 'Lovelace');",
    );
    let dst = database(
        &c.dest[0],
        "CREATE TABLE t (id int, first_name text, last_name text)",
    );
    let role = format!("notemp_{src}");
    c.source
        .connect(&src)
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN; GRANT SELECT ON t TO {role};
             REVOKE TEMP ON DATABASE {src} FROM PUBLIC;"
        ))
        .unwrap();
    let from = format!(
        "host=127.0.0.1 port={} user={role} dbname={src}",
        c.source.port()
    );
    let to = c.dest[0].conninfo(&dst);
    let send = "COPY (SELECT id, last_name, first_name FROM t) TO STDOUT";
    let copy = |from: &str, receive: &str| {
        run(&[
            "copy",
            "--from",
            from,
            "--send",
            send,
            "--to",
            &to,
            "--receive",
            receive,
        ])
    };
    let out = copy(&from, "COPY t FROM STDIN");
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("the --send's query could not be described by the source")
            && stderr.contains("42501")
            && stderr.contains("list the columns in the --receive"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &dst, "t"), 0);
    // Listed: the user's order, copied as said — its values unchecked, which is said
    // (types43 F1).
    let out = copy(&from, "COPY t (id, last_name, first_name) FROM STDIN");
    assert_exit(&out, 0);
    assert!(
        text(&out.stderr).contains("its values are not checked against the destinations'"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        count(
            &c.dest[0],
            &dst,
            "(SELECT 1 FROM t WHERE last_name = 'Lovelace')"
        ),
        1
    );
    // Read-only by default (with TEMP): described, and the order refused as it is.
    c.source
        .connect(&src)
        .batch_execute(&format!(
            "GRANT TEMP ON DATABASE {src} TO {role};
             ALTER ROLE {role} SET default_transaction_read_only = on;"
        ))
        .unwrap();
    let out = copy(&from, "COPY t FROM STDIN");
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("reads the same columns in another order"),
        "{}",
        text(&out.stderr)
    );
}

/// `copy` of a query its source describes otherwise than as a plain view: a data-modifying
/// `WITH` (described by a table created from it WITH NO DATA, which runs nothing), a `DELETE …
/// RETURNING` whose last line ends in a comment, and a column read into another's place while
/// the others differ by name — each refused before anything moves (their values landed in each
/// other's columns, exit 0). A query that fails as it is described (a lock timeout, an unknown
/// column) is that failure (exit 1), not advice to list the columns.
#[test]
fn copy_of_a_query_is_described_whatever_its_shape() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE p (id int, x text, y text);
         INSERT INTO p VALUES (1, 'x1', 'y1'), (2, 'x2', 'y2');
         CREATE TABLE people (id int, name text, email text, created date);
         INSERT INTO people VALUES (1, 'Ann', 'ann@x.org', '2024-01-01');",
    );
    let dst = database(
        &c.dest[0],
        "CREATE TABLE p (id int, x text, y text);
         CREATE TABLE people (id int, email text, name text, created_at date);",
    );
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
    let copy = |send: &str, receive: &str, extra: &[&str]| {
        let mut args = vec![
            "copy",
            "--from",
            &from,
            "--send",
            send,
            "--to",
            &to,
            "--receive",
            receive,
        ];
        args.extend(extra);
        run(&args)
    };
    let swapped = "reads the same columns in another order";
    for send in [
        "COPY (WITH d AS (DELETE FROM p WHERE id = 1 RETURNING *) SELECT id, y, x FROM d) TO STDOUT",
        "COPY (DELETE FROM p RETURNING id, y, x -- move them\n) TO STDOUT",
    ] {
        let out = copy(send, "COPY p FROM STDIN", &[]);
        assert_exit(&out, 2);
        assert!(
            text(&out.stderr).contains(swapped),
            "{send}: {}",
            text(&out.stderr)
        );
        assert_eq!(count(&c.source, &src, "p"), 2, "{send}: nothing moved");
        assert_eq!(count(&c.dest[0], &dst, "p"), 0, "{send}");
    }
    // In the destination's order, the move goes through.
    let out = copy(
        "COPY (WITH d AS (DELETE FROM p WHERE id = 1 RETURNING *) SELECT id, x, y FROM d) TO STDOUT",
        "COPY p FROM STDIN",
        &[],
    );
    assert_exit(&out, 0);
    assert_eq!(count(&c.source, &src, "p"), 1);
    assert_eq!(
        count(&c.dest[0], &dst, "(SELECT 1 FROM p WHERE x = 'x1')"),
        1
    );
    // `name` read into `email` while `created` is `created_at` there.
    let out = copy(
        "COPY (DELETE FROM people RETURNING *) TO STDOUT",
        "COPY people FROM STDIN",
        &[],
    );
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("writes \"name\" as its field 2, which destination 1 (",)
            && text(&out.stderr).contains(
                "reads into its column \"email\", though it has a column \"name\" (its field 3)"
            ),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.source, &src, "people"), 1);
    // Names told apart by case only: the same swap.
    let out = copy(
        "COPY (SELECT id, \"Name\", email, created FROM (SELECT id, name AS \"Name\", email, \
         created FROM people) q) TO STDOUT",
        "COPY people FROM STDIN",
        &[],
    );
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("writes \"Name\" as its field 2"),
        "{}",
        text(&out.stderr)
    );
    // A lock the description waits for, and an unknown column: failures, said as such.
    let args = [
        "copy",
        "--from",
        &from,
        "--send",
        "COPY (DELETE FROM p RETURNING *) TO STDOUT",
        "--to",
        &to,
        "--receive",
        "COPY p FROM STDIN",
        "--lock-timeout",
        "1s",
    ];
    let mut holder = hold_lock(&c.source, &src, "p");
    let out = run(&args);
    holder.batch_execute("ROLLBACK").unwrap();
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("the --send's query failed on the source as copyman described it")
            && stderr.contains("55P03")
            && !stderr.contains("list the columns"),
        "{stderr}"
    );
    // A column a view cannot have (a ROW()'s pseudo-type record): not described, so the
    // --receive must list the columns; listed, it copies.
    let row_out = copy(
        "COPY (SELECT id, row(x, y), y FROM p) TO STDOUT",
        "COPY p FROM STDIN",
        &[],
    );
    assert_exit(&row_out, 2);
    assert!(
        text(&row_out.stderr).contains("42P16")
            && text(&row_out.stderr).contains("list the columns in the --receive"),
        "{}",
        text(&row_out.stderr)
    );
    assert_exit(
        &copy(
            "COPY (SELECT id, row(x, y), y FROM p) TO STDOUT",
            "COPY p (id, x, y) FROM STDIN",
            &[],
        ),
        0,
    );
    let out = copy(
        "COPY (SELECT id, nosuch FROM p) TO STDOUT",
        "COPY p FROM STDIN",
        &[],
    );
    // What the source has not: the command's (recheck44 F3).
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("42703") && !stderr.contains("list the columns"),
        "{stderr}"
    );
    assert_eq!(count(&c.source, &src, "p"), 1);
}

/// A standby source cannot describe a query (it refuses a read-write transaction): refused unless
/// the `--receive` lists its columns, as for a role without TEMP (its columns were read in
/// another order, exit 0).
#[test]
fn copy_of_a_query_from_a_standby_needs_the_columns_listed() {
    let c = clusters();
    let primary = copyman_testkit::Cluster::start();
    let db = database(
        &primary,
        "CREATE TABLE p (id int, x text, y text); INSERT INTO p VALUES (1, 'x1', 'y1');",
    );
    let standby = primary.clone_as_standby();
    let dst = database(&c.dest[0], "CREATE TABLE p (id int, x text, y text)");
    let copy = |receive: &str| {
        run(&[
            "copy",
            "--from",
            &standby.conninfo(&db),
            "--send",
            "COPY (SELECT id, y, x FROM p) TO STDOUT",
            "--to",
            &c.dest[0].conninfo(&dst),
            "--receive",
            receive,
        ])
    };
    let out = copy("COPY p FROM STDIN");
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("the --send's query could not be described by the source")
            && stderr.contains("list the columns in the --receive"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &dst, "p"), 0);
    assert_exit(&copy("COPY p (id, y, x) FROM STDIN"), 0);
    assert_eq!(
        count(&c.dest[0], &dst, "(SELECT 1 FROM p WHERE y = 'y1')"),
        1
    );
    // In binary, its types cannot be checked either: refused, listed or not (a text's bytes were
    // read as an int4, with a warning).
    let out = run(&[
        "copy",
        "--from",
        &standby.conninfo(&db),
        "--send",
        "COPY (SELECT id, y, x FROM p) TO STDOUT (FORMAT binary)",
        "--to",
        &c.dest[0].conninfo(&dst),
        "--receive",
        "COPY p (id, y, x) FROM STDIN (FORMAT binary)",
    ]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("FORMAT binary whose columns the source could not describe"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &dst, "p"), 1);
}

/// `copy` whose `--send` names a relation `COPY … TO STDOUT` cannot read as a table (a
/// partitioned table, a materialized view): said before anything, `--dry-run` too, with the
/// query that reads it (the dry run passed, the run failed at its start).
#[test]
fn copy_of_a_table_copy_cannot_read_is_refused_before_anything() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE pt (k int) PARTITION BY LIST (k);
         CREATE TABLE pt1 PARTITION OF pt FOR VALUES IN (1);
         INSERT INTO pt VALUES (1);
         CREATE MATERIALIZED VIEW mv AS SELECT 1 AS k;",
    );
    let dst = database(
        &c.dest[0],
        "CREATE TABLE pt (k int); CREATE TABLE mv (k int);",
    );
    for (table, what, extra) in [
        (
            "pt",
            "is a partitioned table on the source",
            Some("--dry-run"),
        ),
        ("mv", "is a materialized view on the source", None),
    ] {
        let send = format!("COPY {table} TO STDOUT");
        let receive = format!("COPY {table} FROM STDIN");
        let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
        let mut args = vec!["copy", "--from", &from, "--send", &send];
        args.extend(["--to", &to, "--receive", &receive]);
        args.extend(extra);
        let out = run(&args);
        // A usage error, as table mode's (copy44 F3: it was exit 1).
        assert_exit(&out, 2);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(what) && stderr.contains("COPY (SELECT * FROM"),
            "{table}: {stderr}"
        );
        assert_eq!(count(&c.dest[0], &dst, table), 0);
    }
}

/// `copy` in text with a NULL string a value can equal: PostgreSQL writes such a value as it is,
/// and the destination reads it back as NULL (the string 'NULL' under NULL 'NULL', every empty
/// string under NULL ''), exit 0. Refused before connecting; `\N`, a NULL beginning with a
/// backslash, and csv (which quotes such a value) copy as they are.
#[test]
fn copy_in_text_with_a_null_string_a_value_can_equal_is_refused() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE nul (id int, v text);
         INSERT INTO nul VALUES (1, 'NULL'), (2, NULL), (3, ''), (4, 'x');",
    );
    let dst = database(&c.dest[0], "CREATE TABLE nul (id int, v text)");
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
    let copy = |options: &str| {
        let send = format!("COPY nul TO STDOUT {options}");
        let receive = format!("COPY nul FROM STDIN {options}");
        run(&[
            "copy",
            "--from",
            &from,
            "--send",
            &send,
            "--to",
            &to,
            "--receive",
            &receive,
        ])
    };
    for options in [
        "(NULL 'NULL')",
        "(NULL '')",
        "(FORMAT text, NULL 'none')",
        "(NULL '\\t')",
        "(NULL '\\\\')",
    ] {
        let out = copy(options);
        assert_exit(&out, 2);
        assert!(
            text(&out.stderr).contains("a destination reads it back as NULL"),
            "{options}: {}",
            text(&out.stderr)
        );
        assert_eq!(count(&c.dest[0], &dst, "nul"), 0, "{options}");
    }
    // A file is written as asked: it is for another reader — said, as its empty strings and
    // its NULLs are the same bytes there (recheck69 F9: not a word).
    let file = TempPath::new("null-empty.txt");
    let out = run(&[
        "copy",
        "--from",
        &from,
        "--send",
        "COPY nul TO STDOUT (NULL '')",
        "--to",
        file.arg(),
    ]);
    assert_exit(&out, 0);
    assert!(
        text(&out.stderr).contains(&format!(
            "--to {}: the --send writes FORMAT text with NULL '': a value that is that string \
             is written as it too, the same bytes as a NULL",
            file.arg()
        )),
        "{}",
        text(&out.stderr)
    );
    for options in ["", "(NULL E'\\\\Z')", "(FORMAT csv, NULL 'NULL')"] {
        c.dest[0]
            .connect(&dst)
            .batch_execute("TRUNCATE nul")
            .unwrap();
        assert_exit(&copy(options), 0);
        assert_eq!(
            digest(&c.dest[0], &dst, "nul"),
            digest(&c.source, &src, "nul"),
            "{options}"
        );
    }
    // The end-of-data marker as the NULL string: a row ending in a NULL is written as it, and
    // every reader stops there — a file too (the count mismatch blamed triggers, and its
    // --allow-count-mismatch committed 1 row of 4, exit 0).
    let marker = TempPath::new("null-marker.txt");
    for options in ["(NULL '\\.')", "(FORMAT csv, NULL '\\.')"] {
        let (send, receive) = (
            format!("COPY nul TO STDOUT {options}"),
            format!("COPY nul FROM STDIN {options}"),
        );
        let server = ["--to", to.as_str(), "--receive", receive.as_str()];
        for dest in [&server[..], &["--to", marker.arg()]] {
            let out = run(&[&["copy", "--from", &from, "--send", &send][..], dest].concat());
            assert_exit(&out, 2);
            assert!(
                text(&out.stderr).contains("the end-of-data marker"),
                "{options}: {}",
                text(&out.stderr)
            );
        }
    }
}

/// A `;` inside the `--send`'s query: the server refuses such a COPY, but the query's description
/// (a view of it, sent whole) ran what followed it — `COMMIT; DELETE FROM victim` emptied a
/// table, under `--dry-run` too. Refused before connecting, like a `;` after the COPY.
#[test]
fn a_semicolon_inside_the_sends_query_is_refused_before_connecting() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE k (id int); CREATE TABLE victim (i int); INSERT INTO victim VALUES (1);",
    );
    let dst = database(&c.dest[0], "CREATE TABLE k (id int)");
    for extra in [&["--dry-run"][..], &[][..]] {
        let mut args = vec!["copy", "--from"];
        let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
        args.extend([
            from.as_str(),
            "--send",
            "COPY (SELECT id FROM k; COMMIT; DELETE FROM victim) TO STDOUT",
            "--to",
            &to,
            "--receive",
            "COPY k FROM STDIN",
        ]);
        args.extend(extra);
        let out = run(&args);
        assert_exit(&out, 2);
        assert!(
            text(&out.stderr).contains("got several statements"),
            "{}",
            text(&out.stderr)
        );
        assert_eq!(count(&c.source, &src, "victim"), 1);
    }
}

/// A multirange whose ranges' subtype orders its values otherwise on the destination — an
/// enum's labels in another order, text of another collation — was stored as other ranges:
/// multirange input sorts and merges its ranges by that order (`{[low,mid],[high,max]}` became
/// `{[low,max]}`, exit 0, binary chosen as "the same type"). Refused in table mode, a job and
/// `copy`; the same order on both sides copies.
#[test]
fn a_multirange_whose_subtype_orders_otherwise_is_refused() {
    let c = clusters();
    let kinds = |labels: &str, collation: &str| {
        format!(
            "CREATE TYPE lvl AS ENUM ({labels}); CREATE TYPE lvlrange AS RANGE (subtype = lvl);
             CREATE TYPE textrange AS RANGE (subtype = text, collation = {collation});
             CREATE TABLE e (id int, mr lvlmultirange);
             CREATE TABLE s (id int, mr textmultirange);
             CREATE TABLE r (id int, r textrange);"
        )
    };
    let src = database(
        &c.source,
        &(kinds("'low', 'mid', 'high', 'max'", "\"C\"")
            + "INSERT INTO e VALUES (1, '{[low,mid],[high,max]}');
               INSERT INTO s VALUES (1, '{[A,B],[a,b]}');
               INSERT INTO r VALUES (1, '[B,a]');"),
    );
    let other_enum = database(&c.dest[0], &kinds("'low', 'high', 'mid', 'max'", "\"C\""));
    let other_collation = database(
        &c.dest[1],
        &kinds("'low', 'mid', 'high', 'max'", "\"POSIX\""),
    );
    let from = c.source.conninfo(&src);
    let to = c.dest[0].conninfo(&other_enum);
    let out = run(&["table", "e", "--from", &from, "--to", &to]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("has column \"mr\" of public.lvlmultirange: a multirange whose ranges'")
            && stderr.contains("(the source: labels (low, mid, high, max), operator class")
            && stderr.contains("there: labels (low, high, mid, max), operator class enum_ops)"),
        "{stderr}"
    );
    let out = run(&[
        "copy",
        "--from",
        &from,
        "--send",
        "COPY e TO STDOUT",
        "--to",
        &to,
        "--receive",
        "COPY e FROM STDIN",
    ]);
    assert_exit(&out, 2);
    assert!(text(&out.stderr).contains("the --send's column \"mr\""));
    let state = TempPath::new("multirange.state");
    let out = run(&[
        "table",
        "e",
        "s",
        "--from",
        &from,
        "--to",
        &to,
        "--state",
        state.arg(),
    ]);
    assert_exit(&out, 1);
    assert_eq!(count(&c.dest[0], &other_enum, "e"), 0);
    // Text of another collation: `{[A,B],[a,b]}` merged into `{[a,B]}` under ICU's order.
    let icu = database(
        &c.dest[0],
        &kinds("'low', 'mid', 'high', 'max'", "\"und-x-icu\""),
    );
    let out = run(&[
        "table",
        "s",
        "--from",
        &from,
        "--to",
        &c.dest[0].conninfo(&icu),
    ]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("(the source: collation C, operator class text_ops; there: collation i:"),
        "{stderr}"
    );
    // A range alone: its bounds checked in ICU's order there (`B` after `a`), it failed the
    // copy once it began (and a nondeterministic collation's equal bounds stored it empty).
    let out = run(&[
        "table",
        "r",
        "--from",
        &from,
        "--to",
        &c.dest[0].conninfo(&icu),
    ]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("has column \"r\" of public.textrange: a range whose subtype orders")
            && stderr.contains("(the source: collation C, operator class text_ops; there:"),
        "{stderr}"
    );
    // C and POSIX are one order: copied, the ranges as they were.
    let to = c.dest[1].conninfo(&other_collation);
    let out = run(&[
        "table",
        "e",
        "s",
        "r",
        "--from",
        &from,
        "--to",
        &to,
        "--state",
        state.arg(),
    ]);
    assert_exit(&out, 0);
    let stored = c.dest[1]
        .connect(&other_collation)
        .query(
            "SELECT (SELECT mr::text FROM e), (SELECT mr::text FROM s), (SELECT r::text FROM r)",
            &[],
        )
        .unwrap();
    assert_eq!(stored[0].get::<_, String>(0), "{[low,mid],[high,max]}");
    assert_eq!(stored[0].get::<_, String>(1), "{[A,B],[a,b]}");
    assert_eq!(stored[0].get::<_, String>(2), "[B,a]");
}

/// A composite with a dropped field is made of the fields it has: compared by their places
/// among those (as `record_send` sends them), not by attribute numbers — it was said "made of
/// other types" than the same composite created without that field, and copied in text.
#[test]
fn a_composite_with_a_dropped_field_is_the_same_type() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TYPE p3 AS (x int, y text, z int); ALTER TYPE p3 DROP ATTRIBUTE y;
         CREATE TABLE t (id int, p p3); INSERT INTO t VALUES (1, ROW(1, 2));",
    );
    let dst = database(
        &c.dest[0],
        "CREATE TYPE p3 AS (x int, z int); CREATE TABLE t (id int, p p3);",
    );
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
    let out = run(&["table", "t", "--from", &from, "--to", &to, "--dry-run"]);
    assert_exit(&out, 0);
    let said = text(&out.stderr) + &text(&out.stdout);
    assert!(!said.contains("made of other"), "{said}");
    let out = run(&["table", "t", "--from", &from, "--to", &to]);
    assert_exit(&out, 0);
    assert_eq!(
        count(
            &c.dest[0],
            &dst,
            "(SELECT 1 FROM t WHERE p = ROW(1, 2)::p3)"
        ),
        1
    );
}

/// A source whose statement changes its `DateStyle` while it writes (a function calling
/// `set_config` at the third row): a text COPY's later dates would be read in another order
/// (the 4th of February as the 2nd of April), and it was copied so, exit 0. Refused now, nothing
/// committed, the server's words naming the setting; a binary COPY, whose dates are the same in
/// every style, copies every row right.
#[test]
fn a_style_changed_during_the_sources_copy_is_refused_for_text() {
    let c = clusters();
    let schema = "CREATE TABLE dt (i int, d date);";
    let src = database(
        &c.source,
        "CREATE FUNCTION flip(i int) RETURNS date LANGUAGE plpgsql AS $$
         BEGIN
           IF i = 3 THEN PERFORM set_config('DateStyle', 'German, DMY', false); END IF;
           RETURN date '2024-02-01' + i;
         END $$;",
    );
    let d = database(&c.dest[0], schema);
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&d));
    let send = "COPY (SELECT i, flip(i) FROM generate_series(1, 6) i) TO STDOUT";
    let copy = |format: &str| {
        let send = format!("{send}{format}");
        let receive = format!("COPY dt FROM STDIN{format}");
        run(&[
            "copy",
            "--from",
            &from,
            "--send",
            &send,
            "--to",
            &to,
            "--receive",
            &receive,
        ])
    };
    let out = copy("");
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("DateStyle changed to 'German, DMY'"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &d, "dt"), 0);
    let out = copy(" (FORMAT binary)");
    assert_exit(&out, 0);
    let wrong: i64 = c.dest[0]
        .connect(&d)
        .query_one(
            "SELECT count(*) FROM dt WHERE d <> date '2024-02-01' + i",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!((count(&c.dest[0], &d, "dt"), wrong), (6, 0));
}

/// `copy --dry-run` exits as the run would where its statements name a table or column their
/// server does not have (42P01, 42703: exit 2, the run's as well), or where the two ends' columns differ in number (22P04):
/// it said "ok", exit 0, and the run failed.
#[test]
fn a_copy_dry_run_fails_where_its_statements_would() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE t (id int, v text); INSERT INTO t VALUES (1, 'a');",
    );
    let d1 = database(&c.dest[0], "CREATE TABLE t (id int, v text);");
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&d1));
    let dry = |send: &str, receive: &str| {
        run(&[
            "copy",
            "--from",
            &from,
            "--send",
            send,
            "--to",
            &to,
            "--receive",
            receive,
            "--dry-run",
        ])
    };
    // The source's own table or column missing is a usage error, as table mode says it (exit 2,
    // copy44 F3).
    for send in ["COPY nosuch TO STDOUT", "COPY t (nocol) TO STDOUT"] {
        let out = dry(send, "COPY t FROM STDIN");
        assert_exit(&out, 2);
        assert!(
            text(&out.stderr).contains("the --send's table on the source: SQLSTATE 42"),
            "{send}: {}",
            text(&out.stderr)
        );
    }
    // A destination's, too, as table mode's and the help say, the dry run and the run alike
    // (files65 F10: exit 1, "could not start its COPY"); with what creates a missing table.
    for (receive, said) in [
        ("COPY t (nocol) FROM STDIN", "SQLSTATE 42703"),
        // Said as the server says them: its schema missing, a quoted name once (recheck66 F2).
        (
            "COPY nosuch.t FROM STDIN",
            "SQLSTATE 3F000: schema \"nosuch\" does not exist",
        ),
        // (pg_dump's --table creates no schema: recheck66 F13.)
        ("COPY nosuch.t FROM STDIN", "create the schema there first"),
        (
            "COPY \"T\" FROM STDIN",
            "SQLSTATE 42P01: relation \"T\" does not exist",
        ),
    ] {
        for out in [
            dry("COPY t TO STDOUT", receive),
            copy_between(&from, "COPY t TO STDOUT", &to, receive, &[]),
        ] {
            assert_exit(&out, 2);
            let stderr = text(&out.stderr);
            assert!(
                stderr.contains("destination 1 (") && stderr.contains(said),
                "{receive}: {stderr}"
            );
        }
    }
    // An option or a column its server refuses when its COPY starts, before anything went
    // out: the command's mistake too (files67 F2: exit 1, "the copy failed").
    for (receive, said) in [
        (
            "COPY t FROM STDIN (FORMAT csv, FORCE_NOT_NULL (nocol))",
            "SQLSTATE 42703",
        ),
        ("COPY t FROM STDIN (FORMAT csv, bogus 1)", "SQLSTATE 42601"),
    ] {
        let args = ["copy", "--from", "-", "--to", &to, "--receive", receive];
        let out = run_with_stdin(&args, b"1,a\n");
        assert_exit(&out, 2);
        assert!(
            text(&out.stderr).contains(said),
            "{receive}: {}",
            text(&out.stderr)
        );
        assert_eq!(count(&c.dest[0], &d1, "t"), 0);
    }
    // Under --keep-going that destination is left out, the others copied (exit 4).
    let d2 = database(&c.dest[1], "CREATE TABLE t (id int, v text);");
    let to2 = c.dest[1].conninfo(&d2);
    let (receive, more) = ("COPY nosuch FROM STDIN", "COPY t FROM STDIN");
    let extra = ["--to", &to2, "--receive", more, "--keep-going"];
    let out = copy_between(&from, "COPY t TO STDOUT", &to, receive, &extra);
    assert_exit(&out, 4);
    assert!(text(&out.stderr).contains("42P01"), "{}", text(&out.stderr));
    assert_eq!(count(&c.dest[1], &d2, "t"), 1);
    // None left: the command's error all the same, with its hint (recheck66 F11: exit 1).
    let out = copy_between(&from, "COPY t TO STDOUT", &to, receive, &["--keep-going"]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("pg_dump"),
        "{}",
        text(&out.stderr)
    );
    for (send, receive, said) in [
        ("COPY t TO STDOUT", "COPY t (id) FROM STDIN", "22P04"),
        // A query's columns, as the source describes them (types36 F10: exit 0).
        (
            "COPY (SELECT id, v, 1 AS x FROM t) TO STDOUT",
            "COPY t FROM STDIN",
            "the --send writes 3 columns and its --receive reads 2 columns",
        ),
        (
            "COPY (SELECT id FROM t) TO STDOUT",
            "COPY t FROM STDIN",
            "22P04",
        ),
    ] {
        let out = dry(send, receive);
        assert_exit(&out, 1);
        assert!(
            text(&out.stderr).contains(said),
            "{send} → {receive}: {}",
            text(&out.stderr)
        );
    }
    assert_exit(&dry("COPY t (v) TO STDOUT", "COPY t (v) FROM STDIN"), 0);
    assert_exit(
        &dry("COPY (SELECT id, v FROM t) TO STDOUT", "COPY t FROM STDIN"),
        0,
    );
    // A role that may INSERT and not SELECT: its COPY FROM runs, so does its dry run (the
    // probe's 42501 is no failure of the run's).
    let role = format!("inserter_{d1}");
    c.dest[0]
        .connect(&d1)
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN; GRANT INSERT ON t TO {role};"
        ))
        .unwrap();
    let as_role = to.replace("user=postgres", &format!("user={role}"));
    for extra in [&["--dry-run"][..], &[]] {
        let mut args = vec!["copy", "--from", &from, "--send", "COPY t TO STDOUT"];
        args.extend(["--to", &as_role, "--receive", "COPY t FROM STDIN"]);
        args.extend(extra);
        assert_exit(&run(&args), 0);
    }
    assert_eq!(count(&c.dest[0], &d1, "t"), 1);
}

/// A `--receive` whose column list leaves out a column that a row cannot fill (NOT NULL
/// without a default): every row failed at the first (23502) where table mode's `--columns`
/// refuses it while planning, and a dry run said OK (types41 F6). Refused before any row,
/// dry run or not, naming the column; one with a default may be left out.
#[test]
fn copy_mode_refuses_a_receive_list_leaving_out_a_column_no_row_can_fill() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE t1 (id int, name text); INSERT INTO t1 VALUES (1, 'a'), (2, 'b');",
    );
    let dst = database(
        &c.dest[0],
        "CREATE TABLE nc (id int, name text, must int NOT NULL, dflt int NOT NULL DEFAULT 7);",
    );
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
    let copy = |receive: &str, extra: &[&str]| {
        copy_between(&from, "COPY t1 (id, name) TO STDOUT", &to, receive, extra)
    };
    for extra in [&["--dry-run"][..], &[]] {
        let out = copy("COPY nc (id, name) FROM STDIN", extra);
        assert_exit(&out, 2);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("the --receive's column list leaves out \"must\" of destination 1")
                && !stderr.contains("\"dflt\""),
            "{extra:?}: {stderr}"
        );
    }
    assert_eq!(count(&c.dest[0], &dst, "nc"), 0);
    // An INSERT trigger there may fill it: not refused (recheck41b F1).
    c.dest[0]
        .connect(&dst)
        .batch_execute(
            "CREATE TABLE tf (id int, name text, must int NOT NULL);
             CREATE FUNCTION fill() RETURNS trigger LANGUAGE plpgsql AS
               $$ BEGIN NEW.must := 1; RETURN NEW; END $$;
             CREATE TRIGGER fill BEFORE INSERT ON tf FOR EACH ROW EXECUTE FUNCTION fill();",
        )
        .unwrap();
    assert_exit(&copy("COPY tf (id, name) FROM STDIN", &[]), 0);
    assert_eq!(count(&c.dest[0], &dst, "tf"), 2);
    c.dest[0]
        .connect(&dst)
        .batch_execute("ALTER TABLE nc ALTER must SET DEFAULT 0")
        .unwrap();
    assert_exit(&copy("COPY nc (id, name) FROM STDIN", &[]), 0);
    assert_eq!(count(&c.dest[0], &dst, "nc"), 2);
    // A conversion into a column of another name says that column (it named the --send's
    // only, which the destination may not have).
    c.dest[0]
        .connect(&dst)
        .batch_execute("CREATE TABLE mo (id int, m varchar(1))")
        .unwrap();
    let out = copy("COPY mo (id, m) FROM STDIN", &["--dry-run"]);
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "column \"name\" is text on the source but character varying(1) on destination 1"
        ) && stderr.contains("where it lands in column \"m\"")
            && !stderr.contains("--verify"),
        "{stderr}"
    );
}

/// A `--send` naming a table or a column the source does not have, or a view as a table: found
/// while planning, exit 2 as table mode says it (it was exit 1, "copy failed", and the
/// destination said rolled back, copy44 F3); a leading `--` comment is a statement's, not an
/// option (copy44 F2).
#[test]
fn copy_mode_refuses_a_send_table_the_source_has_not_before_copying() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE t1 (id int); INSERT INTO t1 VALUES (1); CREATE VIEW v1 AS SELECT * FROM t1;",
    );
    let dst = database(&c.dest[0], "CREATE TABLE t1 (id int);");
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
    for (send, said) in [
        ("COPY nosuch TO STDOUT", "SQLSTATE 42P01"),
        ("COPY nosuch.t1 TO STDOUT", "SQLSTATE 3F000"),
        ("COPY t1 (id, nosuch) TO STDOUT", "SQLSTATE 42703"),
        ("COPY v1 TO STDOUT", "COPY cannot read it as a table"),
        // A query naming what the source has not (recheck44 F3).
        ("COPY (SELECT * FROM nosuch) TO STDOUT", "SQLSTATE 42P01"),
        ("COPY (SELECT nocol FROM t1) TO STDOUT", "SQLSTATE 42703"),
    ] {
        let out = copy_between(&from, send, &to, "COPY t1 FROM STDIN", &[]);
        assert_exit(&out, 2);
        let stderr = text(&out.stderr);
        assert!(stderr.contains(said), "{send}: {stderr}");
    }
    let out = copy_between(
        &from,
        "-- nightly\nCOPY t1 TO STDOUT",
        &to,
        "-- load\nCOPY t1 FROM STDIN",
        &[],
    );
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[0], &dst, "t1"), 1);
}

/// A `--receive` with HEADER MATCH, fed a header that names other columns (a query renaming
/// one): COPY refused the first line (22P04) where the dry run said OK (types41 F5). Said
/// before any row; a header that matches copies.
#[test]
fn copy_mode_checks_a_header_match_against_the_columns_sent() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE t1 (id int, name text); INSERT INTO t1 VALUES (1, 'a'), (2, 'b');",
    );
    let dst = database(&c.dest[0], "CREATE TABLE cm (id int, name text);");
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
    let copy = |select: &str, extra: &[&str]| {
        let send = format!("COPY ({select}) TO STDOUT (FORMAT csv, HEADER)");
        let receive = "COPY cm FROM STDIN (FORMAT csv, HEADER MATCH)";
        copy_between(&from, &send, &to, receive, extra)
    };
    for extra in [&["--dry-run"][..], &[]] {
        let out = copy("SELECT id AS foo, name FROM t1", extra);
        assert_exit(&out, 2);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("HEADER MATCH reads a header naming destination 1")
                && stderr.contains("(id, name)")
                && stderr.contains("writes the header (foo, name)"),
            "{extra:?}: {stderr}"
        );
    }
    assert_eq!(count(&c.dest[0], &dst, "cm"), 0);
    assert_exit(&copy("SELECT id, name FROM t1", &[]), 0);
    assert_eq!(count(&c.dest[0], &dst, "cm"), 2);
    // A file without a header: refused as not matching, not said skipped (files67 F3).
    let receive = "COPY cm FROM STDIN (FORMAT csv, HEADER MATCH)";
    let args = ["copy", "--from", "-", "--to", &to, "--receive", receive];
    let out = run_with_stdin(&args, b"1,alice\n2,bob\n");
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("names none of the columns (id, name)")
            && stderr.contains("HEADER MATCH requires")
            && !stderr.contains("skipped"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &dst, "cm"), 2);
    // Two columns of one name, described under the --receive's list: the header it writes is
    // still its own (recheck43 F8: the check was skipped, the server refused line 1).
    let send = "COPY (SELECT id, name, name FROM t1) TO STDOUT (FORMAT csv, HEADER)";
    let receive = "COPY cm (id, name, extra) FROM STDIN (FORMAT csv, HEADER MATCH)";
    c.dest[0]
        .connect(&dst)
        .batch_execute("ALTER TABLE cm ADD COLUMN extra text")
        .unwrap();
    let out = copy_between(&from, send, &to, receive, &["--dry-run"]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("(id, name, extra)")
            && stderr.contains("writes the header (id, name, name)"),
        "{stderr}"
    );
}

/// A query's columns and a `--receive`'s list naming the same columns in another order
/// (`COPY (SELECT email, name …)` into `COPY people (name, email)`): every row was stored in the
/// wrong columns, exit 0, where the same header from a file, or a --receive without a list, is
/// refused (copy41 F7). Refused; renaming with AS says a swap is meant.
#[test]
fn copy_mode_refuses_listed_columns_naming_each_other_in_another_order() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE customers (name text, email text);
         INSERT INTO customers VALUES ('Ada', 'ada@example.com');",
    );
    let dst = database(&c.dest[0], "CREATE TABLE people (name text, email text);");
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
    let receive = "COPY people (name, email) FROM STDIN";
    let copy = |send: &str| copy_between(&from, send, &to, receive, &[]);
    // (A table's column list written out against the --receive's is a swap said as a table's
    // COPY can: copy_with_both_column_lists_written_out_copies_as_written.)
    for send in [
        "COPY (SELECT email, name FROM customers) TO STDOUT",
        "COPY (SELECT * FROM (SELECT email, name FROM customers) s) TO STDOUT",
        // Told apart by case only (recheck41b F3).
        "COPY (SELECT email AS \"Email\", name AS \"Name\" FROM customers) TO STDOUT",
    ] {
        let out = copy(send);
        assert_exit(&out, 2);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("reads the same columns in another order (name, email)")
                && stderr.contains("say so in the --send with AS"),
            "{send}: {stderr}"
        );
    }
    assert_eq!(count(&c.dest[0], &dst, "people"), 0);
    assert_exit(
        &copy("COPY (SELECT email AS name, name AS email FROM customers) TO STDOUT"),
        0,
    );
    assert_eq!(
        c.dest[0].psql(&dst, "SELECT name FROM people").trim(),
        "ada@example.com"
    );
}

/// A query with two columns of one name (`SELECT c.id, o.id`) cannot be described as a view
/// (42701): the refusals that follow from it give the way that lets it be described, AS
/// (copy41 F9); and psql's `\copy`, which no server reads, is refused as such before
/// connecting (it passed as a COPY, the server then saying only "syntax error", copy41 F5).
#[test]
fn copy_mode_says_the_way_out_of_a_query_with_two_columns_of_one_name() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE a (id int); CREATE TABLE b (id int);
         INSERT INTO a VALUES (1); INSERT INTO b VALUES (1);",
    );
    let dst = database(&c.dest[0], "CREATE TABLE ab (x int, y int);");
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
    let send = "COPY (SELECT a.id, b.id FROM a JOIN b USING (id)) TO STDOUT (FORMAT binary)";
    let out = copy_between(&from, send, &to, "COPY ab FROM STDIN (FORMAT binary)", &[]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("give each of its columns its own name with AS"),
        "{}",
        text(&out.stderr)
    );
    // Listed in the --receive, its columns are described under the list's names, by position,
    // and checked as any query's: a composite whose fields are in another order there is
    // refused (copied with its fields swapped, exit 0, types43 F1); named apart, the same.
    let composite = "CREATE TYPE kv AS (k text, v text); CREATE TABLE c (id int, p kv);
                     INSERT INTO c VALUES (1, ROW('key', 'val'));";
    c.source.connect(&src).batch_execute(composite).unwrap();
    c.dest[0]
        .connect(&dst)
        .batch_execute("CREATE TYPE kv AS (v text, k text); CREATE TABLE c (id int, p kv, q kv);")
        .unwrap();
    for send in [
        "COPY (SELECT id, p, p FROM c) TO STDOUT",
        "COPY (SELECT id, p, p AS q FROM c) TO STDOUT",
    ] {
        let out = copy_between(&from, send, &to, "COPY c (id, p, q) FROM STDIN", &[]);
        assert_exit(&out, 2);
        assert!(
            text(&out.stderr).contains("COPY fills a composite's fields by position"),
            "{send}: {}",
            text(&out.stderr)
        );
    }
    assert_eq!(count(&c.dest[0], &dst, "c"), 0);
    // To a file there are no columns to check: nothing said of it (docs43 F10).
    let file = TempPath::new("two-ids.txt");
    let send = "COPY (SELECT a.id, b.id FROM a JOIN b USING (id)) TO STDOUT";
    let out = run(&["copy", "--from", &from, "--send", send, "--to", file.arg()]);
    assert_exit(&out, 0);
    assert!(
        !text(&out.stderr).contains("could not be described"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&file.0).unwrap(), "1\t1\n");
    let send = "\\copy a to stdout";
    let out = copy_between(&from, send, &to, "COPY ab (x) FROM STDIN", &["--dry-run"]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("psql's \\copy meta-command"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &dst, "ab"), 0);
    // Unnamed columns only (`SELECT 2, 3`): no name to tell apart, so described by place and
    // checked as any query (refused quoting the view's 42701 as the source's, recheck65 F1).
    let send = "COPY (SELECT 2::int8 + 0, 3) TO STDOUT (FORMAT binary)";
    let out = copy_between(&from, send, &to, "COPY ab FROM STDIN (FORMAT binary)", &[]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("\"?column? (field 1)\" is bigint"),
        "{stderr}"
    );
    assert!(!stderr.contains("42701"), "{stderr}");
    let out = copy_between(
        &from,
        "COPY (SELECT 2, 3) TO STDOUT",
        &to,
        "COPY ab FROM STDIN",
        &[],
    );
    assert_exit(&out, 0);
    assert!(
        !text(&out.stderr).contains("42701"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(c.dest[0].psql(&dst, "SELECT x + y FROM ab").trim(), "5");
}

/// A `--receive` writing an identity column: `copy` does not advance its sequence (table mode
/// does), and the next INSERT there collided without a word (copy41 F8). Said.
#[test]
fn copy_mode_says_a_sequence_it_does_not_advance() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE t (id int, name text); INSERT INTO t VALUES (1, 'a'), (2, 'b');",
    );
    let dst = database(
        &c.dest[0],
        "CREATE TABLE idpk (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text);",
    );
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
    let receive = "COPY idpk (id, name) FROM STDIN";
    let out = copy_between(&from, "COPY t TO STDOUT", &to, receive, &[]);
    assert_exit(&out, 0);
    assert!(
        text(&out.stderr)
            .contains("the --receive writes \"id\", whose values come from a sequence"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &dst, "idpk"), 2);
}

/// A file read by a `--receive` with an ENCODING of its own is read in that: a 22021 said "the
/// file is read as LATIN1 (--encoding)" of a file the server read as UTF8 (copy41 F13). And an
/// `--encoding` that a statement reading or writing the file contradicts is refused before
/// anything (the statement's would win silently: a file written in UTF-8 under `--encoding
/// LATIN1`).
#[test]
fn a_receives_own_encoding_is_the_one_said_with_a_bad_byte() {
    let c = clusters();
    let dst = database(&c.dest[0], "CREATE TABLE e (id int, s text);");
    let file = TempPath::new("latin1-own.csv");
    std::fs::write(&file.0, b"1,Zo\xeb\n").unwrap();
    let to = c.dest[0].conninfo(&dst);
    let receive = "COPY e FROM STDIN (FORMAT csv, ENCODING 'UTF8')";
    let out = run(&[
        "copy",
        "--from",
        file.arg(),
        "--to",
        &to,
        "--receive",
        receive,
    ]);
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("is read as UTF8, the --receive's ENCODING"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &dst, "e"), 0);

    let (latin1, refusal) = (
        ["--encoding", "latin-1", "--dry-run"],
        "--encoding latin-1 says the file and stdin endpoints are in LATIN1, but",
    );
    let mut args = vec![
        "copy",
        "--from",
        file.arg(),
        "--to",
        &to,
        "--receive",
        receive,
    ];
    args.extend(latin1);
    let out = run(&args);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{refusal} the --receive of destination 1 names ENCODING 'UTF8'"
        )),
        "{stderr}"
    );
    let written = TempPath::new("latin1-written.csv");
    let send = "COPY e TO STDOUT (FORMAT csv, ENCODING 'UTF8')";
    let mut args = vec!["copy", "--from", &to, "--send", send, "--to", written.arg()];
    args.extend(latin1);
    let out = run(&args);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("{refusal} the --send names ENCODING 'UTF8'")),
        "{stderr}"
    );
    assert!(!written.0.exists());
}

/// Sessions of differing client_encoding were refused ("the COPY data would be read in another
/// encoding") even where both statements name one ENCODING, which decides what the data is in
/// (recheck41b F4): copied, the characters as they were. One statement without it is refused
/// as before.
#[test]
fn both_statements_naming_one_encoding_copy_between_sessions_of_others() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE enc (id int, s text); INSERT INTO enc VALUES (1, 'é'), (2, 'plain');",
    );
    let dst = database(&c.dest[0], "CREATE TABLE enc (id int, s text);");
    let from = c.source.conninfo(&src);
    let to = format!("{} client_encoding=LATIN1", c.dest[0].conninfo(&dst));
    let copy = |send: &str, receive: &str| {
        run(&[
            "copy",
            "--from",
            &from,
            "--send",
            send,
            "--to",
            &to,
            "--receive",
            receive,
        ])
    };
    let out = copy(
        "COPY enc TO STDOUT",
        "COPY enc FROM STDIN (ENCODING 'UTF8')",
    );
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("client_encoding differs between"),
        "{}",
        text(&out.stderr)
    );
    let out = copy(
        "COPY enc TO STDOUT (ENCODING 'UTF8')",
        "COPY enc FROM STDIN (ENCODING 'UTF8')",
    );
    assert_exit(&out, 0);
    assert_eq!(
        c.dest[0]
            .psql(&dst, "SELECT s FROM enc WHERE id = 1")
            .trim(),
        "é"
    );
}

/// COPY options the server refuses together (FORCE_QUOTE in text or in a COPY FROM, HEADER
/// MATCH in a COPY TO, a two-byte DELIMITER, …) are refused before connecting, a dry run too,
/// exit 2, in the server's own words — checked here against the server: each statement refused
/// is refused by it with that message, and each one passed starts there (copy41 F6).
#[test]
fn options_the_server_refuses_are_refused_before_connecting() {
    let c = clusters();
    let db = database(&c.source, "CREATE TABLE t (a int, b text)");
    let refused = [
        (
            "COPY t TO STDOUT (FORCE_QUOTE *)",
            "COPY force quote available only in CSV mode",
        ),
        (
            "COPY t TO STDOUT (HEADER MATCH)",
            "cannot use \"match\" with HEADER in COPY TO",
        ),
        (
            "COPY t TO STDOUT (DELIMITER '||')",
            "COPY delimiter must be a single one-byte character",
        ),
        (
            "COPY t TO STDOUT (DELIMITER 'x')",
            "COPY delimiter cannot be \"x\"",
        ),
        (
            "COPY t TO STDOUT (FORMAT binary, NULL 'x')",
            "cannot specify NULL in BINARY mode",
        ),
        (
            "COPY t TO STDOUT (FORMAT binary, HEADER)",
            "cannot specify HEADER in BINARY mode",
        ),
        (
            "COPY t TO STDOUT (QUOTE '''')",
            "COPY quote available only in CSV mode",
        ),
        (
            "COPY t TO STDOUT (FORMAT csv, QUOTE ',')",
            "COPY delimiter and quote must be different",
        ),
        (
            "COPY t TO STDOUT (FORMAT csv, FORCE_NULL (a))",
            "COPY force null only available using COPY FROM",
        ),
        (
            "COPY t FROM STDIN (FORMAT csv, FORCE_QUOTE *)",
            "COPY force quote only available using COPY TO",
        ),
        (
            "COPY t FROM STDIN CSV FORCE QUOTE a",
            "COPY force quote only available using COPY TO",
        ),
        (
            "COPY t FROM STDIN (FORCE_NOT_NULL (a))",
            "COPY force not null available only in CSV mode",
        ),
        (
            "COPY t FROM STDIN (NULL 'a|b', DELIMITER '|')",
            "COPY delimiter must not appear in the NULL specification",
        ),
        (
            "COPY t FROM STDIN (FORMAT csv, NULL '\"')",
            "CSV quote character must not appear in the NULL specification",
        ),
        (
            "COPY t FROM STDIN (FORMAT csv, ESCAPE '')",
            "COPY escape must be a single one-byte character",
        ),
    ];
    let passed = [
        "COPY t TO STDOUT (FORMAT csv, FORCE_QUOTE *)",
        "COPY t TO STDOUT CSV FORCE QUOTE a, b",
        "COPY t TO STDOUT (FORMAT csv, HEADER, DELIMITER ';', QUOTE '''', ESCAPE '\\')",
        "COPY t FROM STDIN (FORMAT csv, FORCE_NULL (a), FORCE_NOT_NULL (b))",
        "COPY t FROM STDIN (DELIMITER 'X', NULL '')",
        "COPY t TO STDOUT (FORMAT binary)",
    ];
    // A session of its own for each (a refused COPY FROM leaves postgres's client out of step).
    let server_says = |sql: &str| -> Option<String> {
        let mut client = c.source.connect(&db);
        let said = if sql.contains("TO STDOUT") {
            client.copy_out(sql).map(|mut r| {
                std::io::Read::read_to_end(&mut r, &mut Vec::new()).unwrap();
            })
        } else {
            client.copy_in(sql).and_then(|w| w.finish().map(|_| ()))
        };
        said.err().map(|e| {
            e.as_db_error()
                .map_or_else(|| e.to_string(), |e| e.message().to_owned())
        })
    };
    for (sql, refusal) in refused {
        assert_eq!(server_says(sql).as_deref(), Some(refusal), "{sql}");
        let (send, receive) = if sql.contains("TO STDOUT") {
            (sql, "COPY t FROM STDIN")
        } else {
            ("COPY t TO STDOUT", sql)
        };
        let out = copy_between(
            "host=/nonexistent/source dbname=x",
            send,
            "host=/nonexistent/dest dbname=x",
            receive,
            &["--dry-run"],
        );
        assert_exit(&out, 2);
        let err = text(&out.stderr);
        assert!(
            err.contains(&format!("the server refuses its options: {refusal}")),
            "{sql}: {err}"
        );
    }
    for sql in passed {
        assert_eq!(server_says(sql), None, "{sql}");
        let direction = if sql.contains("TO STDOUT") {
            copyman_core::statement::Direction::ToStdout
        } else {
            copyman_core::statement::Direction::FromStdin
        };
        assert_eq!(
            copyman_core::statement::refused_options(sql, direction),
            None,
            "{sql}"
        );
    }
}

/// A move whose rows a destination does not all store, under `--allow-count-mismatch` (a
/// `--receive … WHERE`, here behind a function the statement's words do not show): the rest
/// would be taken from the source and stored nowhere, exit 0 (recheck44 F1). Nothing commits;
/// the source keeps its rows.
#[test]
fn a_move_a_destination_does_not_wholly_store_commits_nothing() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE queue (id int, v text);
         INSERT INTO queue SELECT g, 'p' || g FROM generate_series(1, 100) g;
         CREATE FUNCTION pop_queue() RETURNS SETOF queue LANGUAGE sql AS
           $$ DELETE FROM queue RETURNING * $$;",
    );
    let dst = database(&c.dest[0], "CREATE TABLE queue (id int, v text);");
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
    let out = copy_between(
        &from,
        "COPY (SELECT * FROM pop_queue()) TO STDOUT",
        &to,
        "COPY queue FROM STDIN WHERE id % 2 = 0",
        &["--allow-count-mismatch"],
    );
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("changed data on the source")
            && stderr.contains("destination 1: 50 rows of the 100 rows"),
        "{stderr}"
    );
    assert_eq!(count(&c.source, &src, "queue"), 100);
    assert_eq!(count(&c.dest[0], &dst, "queue"), 0);
    // Every row stored: moved.
    let out = copy_between(
        &from,
        "COPY (SELECT * FROM pop_queue()) TO STDOUT",
        &to,
        "COPY queue FROM STDIN",
        &["--allow-count-mismatch"],
    );
    assert_exit(&out, 0);
    assert_eq!(count(&c.source, &src, "queue"), 0);
    assert_eq!(count(&c.dest[0], &dst, "queue"), 100);
}
