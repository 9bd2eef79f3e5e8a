//! What a name given as a table stands for on each server, refused while planning (a dry run
//! too) where a copy cannot keep its promise: a server's own catalog as a destination, a source
//! relation that holds no rows (an index, a composite type) or cannot be read yet (a
//! materialized view never populated); and what a source view that writes is told.

use crate::common;

use common::*;

/// `copyman table NAME` from the source to the first destination, with `extra` after.
fn table(c: &Clusters, src: &str, dest: &str, name: &str, extra: &[&str]) -> std::process::Output {
    let (from, to) = (c.source.conninfo(src), c.dest[0].conninfo(dest));
    let mut args = vec!["table", name, "--from", &from, "--to", &to];
    args.extend(extra);
    run(&args)
}

/// A system catalog named as the table (here a DBA's `public.pg_event_trigger` given without its
/// schema: `pg_catalog` is searched first unless the search path puts it later) is refused as a
/// destination, a dry
/// run too: nothing is written into the destination's catalog (names52 F1: its rows were, as a
/// superuser's, and every DDL there failed after, exit 0). Named with its schema, the user's
/// table is copied.
#[test]
fn a_system_catalog_is_never_written_as_a_destination() {
    let c = clusters();
    let ddl = "CREATE TABLE public.pg_event_trigger (id int);";
    let trigger =
        "CREATE FUNCTION noop() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN END $$;
                   CREATE EVENT TRIGGER noop ON ddl_command_start EXECUTE FUNCTION noop();";
    let src = database(
        &c.source,
        &format!("{ddl} INSERT INTO public.pg_event_trigger VALUES (1), (2); {trigger}"),
    );
    // A source where the name is the catalog's only.
    let catalog_only = database(&c.source, trigger);
    let dest = database(&c.dest[0], ddl);
    let catalog = "(SELECT 1 FROM pg_catalog.pg_event_trigger)";
    for extra in [&["--dry-run"][..], &[]] {
        let out = table(c, &catalog_only, &dest, "pg_event_trigger", extra);
        // (As a destination relation of any other kind COPY cannot write into.)
        assert_exit(&out, 1);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(
                "is a system catalog there: copyman does not write into a server's own catalogs"
            ) && stderr.contains("in another schema, is named with its schema"),
            "{stderr}"
        );
        assert_eq!(count(&c.dest[0], &dest, catalog), 0);
    }
    c.dest[0]
        .connect(&dest)
        .batch_execute("CREATE TABLE after_the_refusal (id int)")
        .unwrap();
    let out = table(c, &src, &dest, "public.pg_event_trigger", &[]);
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[0], &dest, "public.pg_event_trigger"), 2);
    // The source's name without its schema, where a table of the user's has it: the catalog's,
    // refused with both names (recheck52 F4: the catalog's rows were copied into the user's
    // table, exit 0).
    for extra in [
        &["--dry-run"][..],
        &["--target-table", "public.pg_event_trigger"],
    ] {
        let out = table(c, &src, &dest, "pg_event_trigger", extra);
        assert_exit(&out, 2);
        assert!(
            text(&out.stderr).contains(
                "it is the system catalog pg_catalog.pg_event_trigger on the source (pg_catalog \
                 is searched first unless the search_path puts it later), while \
                 public.pg_event_trigger is a table of that name there"
            ),
            "{}",
            text(&out.stderr)
        );
    }
    assert_eq!(count(&c.dest[0], &dest, "public.pg_event_trigger"), 2);
    // A job that names it alike is refused too (its destination's is the catalog: a job has
    // no --target-table).
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dest));
    let state = TempPath::new("catalog-job.state");
    let out = run(&[
        "table",
        "pg_event_trigger",
        "public.pg_event_trigger",
        "--from",
        &from,
        "--to",
        &to,
        "--state",
        state.arg(),
        "--truncate",
    ]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("is a system catalog there"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &dest, catalog), 0);
    // The ways said around a catalog lead to no refusal (recheck52 F6): a pattern's note gives
    // --target-table, and a destination that finds the name in a schema of the user's first
    // is offered that one only.
    let out = run(&[
        "table",
        "-t",
        "pg_catalog.pg_event_trigger",
        "--from",
        &from,
        "--to",
        &to,
        "--dry-run",
    ]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("with --target-table naming a table of yours"),
        "{}",
        text(&out.stderr)
    );
    let user_first = format!("{to} options='-c search_path=public,pg_catalog'");
    let from_catalog = c.source.conninfo(&catalog_only);
    let out = run(&[
        "table",
        "pg_event_trigger",
        "--from",
        &from_catalog,
        "--to",
        &user_first,
        "--dry-run",
    ]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains(
            r#"--target-table ('"public"."pg_event_trigger"' (the other is a system catalog))"#
        ),
        "{}",
        text(&out.stderr)
    );
    // Copy mode's --receive into a catalog, qualified or not, from the source or a file
    // (recheck52 F1: written, exit 0).
    let file = TempPath::new("catalog-rows.tsv");
    std::fs::write(&file.0, "1\tnoop\n").unwrap();
    for receive in [
        "COPY pg_catalog.pg_event_trigger FROM STDIN",
        "COPY pg_event_trigger FROM STDIN",
    ] {
        let out = run(&[
            "copy",
            "--from",
            &from,
            "--send",
            "COPY pg_catalog.pg_event_trigger TO STDOUT",
            "--to",
            &to,
            "--receive",
            receive,
        ]);
        assert_ne!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains("is a system catalog there"),
            "{}",
            text(&out.stderr)
        );
    }
    let out = run(&[
        "copy",
        "--from",
        file.arg(),
        "--to",
        &to,
        "--receive",
        "COPY pg_description (objoid, description) FROM STDIN",
    ]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("is a system catalog there"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &dest, catalog), 0);
}

/// A source index or composite type is refused as the source's, before any destination is
/// looked at, a dry run alike (names52 F4: planned as a table, the run failed at the source, or
/// blamed the destination and sent the DBA to pg_dump); a materialized view never populated is
/// refused with the way (names52 F2: the dry run passed, the run failed at its COPY; a job
/// rolled back its other tables and advised a resume that failed alike).
#[test]
fn a_source_relation_without_rows_to_read_is_refused_while_planning() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE items (id int); CREATE INDEX items_id_idx ON items (id);
         CREATE TYPE ct AS (a int, b text); INSERT INTO items VALUES (1);
         CREATE MATERIALIZED VIEW mv AS SELECT id FROM items WITH NO DATA;",
    );
    let dest = database(
        &c.dest[0],
        "CREATE TABLE items (id int); CREATE TABLE mv (id int);",
    );
    for extra in [&["--dry-run"][..], &[]] {
        for (name, what) in [
            ("items_id_idx", "is an index"),
            ("ct", "is a composite type"),
        ] {
            let out = table(c, &src, &dest, name, extra);
            assert_exit(&out, 2);
            let stderr = text(&out.stderr);
            assert!(
                stderr.contains(&format!(
                    r#"source table "{name}": SQLSTATE 42809: {what} on the source"#
                )),
                "{stderr}"
            );
        }
        let out = table(c, &src, &dest, "mv", extra);
        assert_exit(&out, 1);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("SQLSTATE 55000: is a materialized view that has not been populated on the source: REFRESH MATERIALIZED VIEW it there first"),
            "{stderr}"
        );
    }
    // A job: refused while planning (as a job's other refusals), nothing begun.
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dest));
    let state = TempPath::new("unpopulated-job.state");
    let out = run(&[
        "table",
        "items",
        "mv",
        "--from",
        &from,
        "--to",
        &to,
        "--state",
        state.arg(),
    ]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains(
            r#"table "public"."mv": SQLSTATE 55000: is a materialized view that has not been populated"#
        ),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &dest, "items"), 0);
    c.source
        .connect(&src)
        .batch_execute("REFRESH MATERIALIZED VIEW mv")
        .unwrap();
    assert_exit(&table(c, &src, &dest, "mv", &[]), 0);
    assert_eq!(count(&c.dest[0], &dest, "mv"), 1);
}

/// A source view that writes (calls `nextval()`) fails in the read-only transaction copyman
/// reads a table in: said so, with the way that reads it (`copy --send`), which copies it
/// (names52 F5: blamed on a standby or default_transaction_read_only, with a way out that
/// changed nothing).
#[test]
fn a_source_view_that_writes_is_told_with_the_way_that_reads_it() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE SEQUENCE sq; CREATE TABLE b (v text); INSERT INTO b VALUES ('x'), ('y');
         CREATE VIEW vn AS SELECT nextval('sq') AS id, v FROM b;",
    );
    let dest = database(
        &c.dest[0],
        "CREATE TABLE vn (id bigint, v text); CREATE TABLE b (v text);",
    );
    let out = table(c, &src, &dest, "vn", &[]);
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("SQLSTATE 25006")
            && stderr.contains("what the copy reads writes")
            && stderr.contains("copyman copy --send"),
        "{stderr}"
    );
    assert!(!stderr.contains("its session is read-only"), "{stderr}");
    assert_eq!(count(&c.dest[0], &dest, "vn"), 0);
    // A job: closed as an error a rerun meets again (recheck52 F5: "run again with --resume",
    // which failed alike, for ever).
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dest));
    let state = TempPath::new("writing-view.state");
    let out = run(&[
        "table",
        "vn",
        "b",
        "--from",
        &from,
        "--to",
        &to,
        "--state",
        state.arg(),
    ]);
    // (1 or 4: as `b` was rolled back with it or committed before it.)
    assert!(matches!(out.status.code(), Some(1 | 4)), "{out:?}");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("failed with an error a rerun meets again until it is mended"),
        "{stderr}"
    );
    let out = run(&[
        "copy",
        "--from",
        &from,
        "--send",
        "COPY (SELECT * FROM vn) TO STDOUT",
        "--to",
        &to,
        "--receive",
        "COPY vn FROM STDIN",
    ]);
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[0], &dest, "vn"), 2);
}

/// A destination database whose transactions are SERIALIZABLE by default gets a READ
/// COMMITTED copy, one table and a job alike (live52 F4: the load took a predicate lock per
/// page and ran the server out of them, exit 1, an application's transactions failing beside
/// it).
#[test]
fn a_destination_serializable_by_default_is_loaded_read_committed() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 3);",
    );
    let dest = database(
        &c.dest[0],
        "CREATE TABLE t (id int, iso text DEFAULT current_setting('transaction_isolation'));",
    );
    c.dest[0]
        .connect(&dest)
        .batch_execute(&format!(
            "ALTER DATABASE {dest} SET default_transaction_isolation = serializable"
        ))
        .unwrap();
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dest));
    let state = TempPath::new("serializable.state");
    assert_exit(&table(c, &src, &dest, "t", &["--columns", "id"]), 0);
    let out = run(&[
        "table",
        "t",
        "--from",
        &from,
        "--to",
        &to,
        "--state",
        state.arg(),
    ]);
    // (A job copies whole tables: the column the source lacks takes its default.)
    assert_exit(&out, 0);
    let read_committed = "(SELECT 1 FROM t WHERE iso = 'read committed')";
    assert_eq!(count(&c.dest[0], &dest, read_committed), 6);
}
