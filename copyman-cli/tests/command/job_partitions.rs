//! `copyman table` and partitions that live apart from their partitioned table: a pattern or a
//! schema selects a partition as any table when its partitioned table is not selected, through
//! that table, once, when it is, and leaves it out with that table when `--exclude-table` does.

use crate::common;

use common::*;

/// `app.pt` (3000 rows) by range, its partitions in schema `parts`: `parts.pt_1` (1000 rows),
/// `parts.pt_2` (2000 rows); and `shape.s` (7 rows), a table of its own.
const SCHEMA: &str = "
    CREATE SCHEMA app;
    CREATE SCHEMA parts;
    CREATE SCHEMA shape;
    CREATE TABLE app.pt (id int, note text) PARTITION BY RANGE (id);
    CREATE TABLE parts.pt_1 PARTITION OF app.pt FOR VALUES FROM (1) TO (1001);
    CREATE TABLE parts.pt_2 PARTITION OF app.pt FOR VALUES FROM (1001) TO (3001);
    CREATE TABLE shape.s (id int);
";

const FILL: &str = "
    INSERT INTO app.pt SELECT g, 'n' || g FROM generate_series(1, 3000) g;
    INSERT INTO shape.s SELECT generate_series(1, 7);
";

#[test]
fn job_partitions_a_partition_apart_from_its_partitioned_table_is_selected_by_pattern_and_schema() {
    let c = clusters();
    let src = database(&c.source, &format!("{SCHEMA}{FILL}"));
    let from = c.source.conninfo(&src);
    let source = |table: &str| digest(&c.source, &src, table);
    let (pt_1, pt_2) = (source("parts.pt_1"), source("parts.pt_2"));
    assert_eq!((pt_1.0, pt_2.0), (1000, 2000));
    let empty = (0, String::new());
    // Each selection: what each destination must hold after it (parts.pt_1, parts.pt_2, and
    // shape.s's count, which tells a schema left out), from empty destinations.
    type Want = ((i64, String), (i64, String), i64);
    let selections: [(&[&str], Want); 7] = [
        (&["--table", "parts.pt_1"], (pt_1.clone(), empty.clone(), 0)),
        (&["--table", "parts.*"], (pt_1.clone(), pt_2.clone(), 0)),
        (&["--schema", "parts"], (pt_1.clone(), pt_2.clone(), 0)),
        (
            &["--schema", "parts", "--schema", "shape"],
            (pt_1.clone(), pt_2.clone(), 7),
        ),
        // The partitioned table selected too: its partitions through it, once.
        (
            &["--schema", "app", "--schema", "parts"],
            (pt_1.clone(), pt_2.clone(), 0),
        ),
        // The partitioned table excluded: its partitions go with it, unless named.
        (
            &[
                "--schema",
                "parts",
                "--schema",
                "shape",
                "--exclude-table",
                "app.pt",
            ],
            (empty.clone(), empty.clone(), 7),
        ),
        (
            &[
                "parts.pt_2",
                "--schema",
                "shape",
                "--exclude-table",
                "app.pt",
            ],
            (empty.clone(), pt_2.clone(), 7),
        ),
    ];
    for (selection, (want_1, want_2, want_s)) in selections {
        let dsts = [database(&c.dest[0], SCHEMA), database(&c.dest[1], SCHEMA)];
        let state = TempPath::new("partitions.state");
        let mut args = vec!["table", "--from", &from];
        let to: Vec<String> = c
            .dest
            .iter()
            .zip(&dsts)
            .map(|(cl, db)| cl.conninfo(db))
            .collect();
        for t in &to {
            args.extend(["--to", t.as_str()]);
        }
        args.extend(["--state", state.arg()]);
        args.extend(selection);
        let out = run(&args);
        let stderr = text(&out.stderr);
        assert_exit(&out, 0);
        for (cl, db) in c.dest.iter().zip(&dsts) {
            // Every row once: the partitions' counts and digests, and their sum through the
            // partitioned table (a row copied twice would show in both).
            assert_eq!(
                digest(cl, db, "parts.pt_1"),
                want_1,
                "{selection:?}: parts.pt_1 on {db}\n{stderr}"
            );
            assert_eq!(
                digest(cl, db, "parts.pt_2"),
                want_2,
                "{selection:?}: parts.pt_2 on {db}\n{stderr}"
            );
            assert_eq!(
                count(cl, db, "app.pt"),
                want_1.0 + want_2.0,
                "{selection:?}: app.pt on {db}\n{stderr}"
            );
            assert_eq!(
                count(cl, db, "shape.s"),
                want_s,
                "{selection:?}: shape.s on {db}\n{stderr}"
            );
        }
        let rows = 2 * (want_1.0 + want_2.0 + want_s);
        assert!(
            stderr.contains(&format!(" {} rows committed", group(rows))),
            "{selection:?}: {rows} rows committed: {stderr}"
        );
    }
}

/// `n` as the CLI prints a count: thousands separated by commas.
fn group(n: i64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A partition detached from its partitioned table while the job plans (the table already
/// selected, its partitions to come with it) would be copied by nobody, and one attached would
/// come twice (by itself and with its new parent): the job checks the trees again once its
/// tables are locked, and refuses, nothing copied (it exited 0, 1000 rows missing).
#[test]
fn a_partition_tree_changed_while_the_job_plans_is_refused() {
    let c = clusters();
    let src = database(&c.source, &format!("{SCHEMA}{FILL}"));
    let dst = database(&c.dest[0], SCHEMA);
    let from = c.source.conninfo(&src);
    let to = c.dest[0].conninfo(&dst);
    let state = TempPath::new("tree-changed.state");
    let args = [
        "table",
        "app.pt",
        "shape.s",
        "--from",
        &from,
        "--to",
        &to,
        "--state",
        state.arg(),
        "--json",
    ];
    let paused = Paused::start(&args, "planning:1");
    c.source
        .connect(&src)
        .batch_execute("ALTER TABLE app.pt DETACH PARTITION parts.pt_2")
        .unwrap();
    let out = paused.resume();
    assert_exit(&out, 1);
    let said = text(&out.stderr);
    assert!(
        said.contains("changed while the job planned") && said.contains("app"),
        "{said}"
    );
    assert_eq!(count(&c.dest[0], &dst, "app.pt"), 0);
    assert_eq!(count(&c.dest[0], &dst, "shape.s"), 0);
}

/// A column added on the source while the job plans (after it read the table's columns, before
/// it locked the table): refused once the tables are locked, nothing copied (the copy left the
/// column out, NULL on a destination that has it, exit 0, and --verify agreed; jobs37 F12).
#[test]
fn a_column_added_while_the_job_plans_is_refused() {
    let c = clusters();
    let tables = "CREATE TABLE ca (id int); CREATE TABLE cb (id int);";
    let src = database(
        &c.source,
        &format!("{tables} INSERT INTO ca VALUES (1); INSERT INTO cb VALUES (1);"),
    );
    let dst = database(
        &c.dest[0],
        "CREATE TABLE ca (id int, extra int); CREATE TABLE cb (id int, extra int);",
    );
    let state = TempPath::new("column-added.state");
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
    let args = [
        "table",
        "ca",
        "cb",
        "--from",
        &from,
        "--to",
        &to,
        "--state",
        state.arg(),
    ];
    let paused = Paused::start(&args, "planning:1");
    c.source
        .connect(&src)
        .batch_execute("ALTER TABLE ca ADD COLUMN extra int DEFAULT 5; ALTER TABLE cb ADD COLUMN extra int DEFAULT 5")
        .unwrap();
    let out = paused.resume();
    assert_exit(&out, 1);
    let said = text(&out.stderr);
    assert!(
        said.contains("columns changed on the source while the job planned"),
        "{said}"
    );
    assert_eq!(count(&c.dest[0], &dst, "ca"), 0);
    assert_eq!(count(&c.dest[0], &dst, "cb"), 0);
}

/// Under `--no-snapshot` each table is locked at its turn: a column added, or a partition
/// detached, after planning and before then fails that table once locked (the column was left
/// out, NULL on a destination that has it; the partition's rows copied by nobody; exit 0), and
/// `--resume` copies it as it is then.
#[test]
fn under_no_snapshot_a_table_changed_since_planning_fails_at_its_turn() {
    let c = clusters();
    for change in [
        "ALTER TABLE nt ADD COLUMN extra int DEFAULT 5",
        "ALTER TABLE nt DETACH PARTITION nt_2",
    ] {
        let tree = "CREATE TABLE nt (id int) PARTITION BY RANGE (id);
            CREATE TABLE nt_1 PARTITION OF nt FOR VALUES FROM (0) TO (100);
            CREATE TABLE nt_2 PARTITION OF nt FOR VALUES FROM (100) TO (200);";
        let src = database(
            &c.source,
            &format!("{tree} INSERT INTO nt SELECT generate_series(0, 199);"),
        );
        let dst = database(
            &c.dest[0],
            &format!("{tree} ALTER TABLE nt ADD COLUMN extra int;"),
        );
        let state = TempPath::new("no-snapshot-changed.state");
        let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
        let args = [
            "table",
            "nt",
            "--from",
            &from,
            "--to",
            &to,
            "--state",
            state.arg(),
            "--no-snapshot",
        ];
        let paused = Paused::start(&args, "planned");
        c.source.connect(&src).batch_execute(change).unwrap();
        let out = paused.resume();
        assert_exit(&out, 1);
        let said = text(&out.stderr);
        assert!(
            said.contains("changed since the job planned"),
            "{change}: {said}"
        );
        assert_eq!(count(&c.dest[0], &dst, "nt"), 0, "{change}");
    }
    // A plain table renamed away and another made under its name: said as that, once "source:"
    // (schema45 F2: "source: source: … (a partition attached or detached)").
    let src = database(
        &c.source,
        "CREATE TABLE pt (id int); INSERT INTO pt VALUES (1);",
    );
    let dst = database(&c.dest[0], "CREATE TABLE pt (id int);");
    let state = TempPath::new("no-snapshot-replaced.state");
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
    let args = [
        "table",
        "pt",
        "--from",
        &from,
        "--to",
        &to,
        "--state",
        state.arg(),
        "--no-snapshot",
    ];
    let paused = Paused::start(&args, "planned");
    let replace = "ALTER TABLE pt RENAME TO pt_gone; CREATE TABLE pt (id int);";
    c.source.connect(&src).batch_execute(replace).unwrap();
    let out = paused.resume();
    assert_exit(&out, 1);
    let said = text(&out.stderr);
    assert!(
        said.contains(
            "source: \"public\".\"pt\" changed since the job planned (another table of its \
             name now: renamed, or dropped and made again)"
        ) && !said.contains("source: source:"),
        "{said}"
    );
    assert_eq!(count(&c.dest[0], &dst, "pt"), 0);
}

/// Under `--no-snapshot`, a table dropped on the source after planning fails as the source's
/// (it was said under destination 1, with advice to create it there from the source).
#[test]
fn under_no_snapshot_a_table_dropped_on_the_source_is_the_sources_failure() {
    let c = clusters();
    let tables = "CREATE TABLE keep (id int); CREATE TABLE gone (id int);";
    let src = database(
        &c.source,
        &format!("{tables} INSERT INTO keep VALUES (1); INSERT INTO gone VALUES (1);"),
    );
    let dst = database(&c.dest[0], tables);
    let state = TempPath::new("no-snapshot-dropped.state");
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
    let args = [
        "table",
        "keep",
        "gone",
        "--from",
        &from,
        "--to",
        &to,
        "--state",
        state.arg(),
        "--no-snapshot",
        "--keep-going",
    ];
    let paused = Paused::start(&args, "planned");
    c.source
        .connect(&src)
        .batch_execute("DROP TABLE gone")
        .unwrap();
    let out = paused.resume();
    assert_exit(&out, 4);
    let said = text(&out.stderr);
    assert!(
        said.contains("the source, SQLSTATE 42P01")
            && said.contains("a table gone from the source since the job planned")
            && !said.contains("pg_dump --section=pre-data of the source into it"),
        "{said}"
    );
    assert_eq!(count(&c.dest[0], &dst, "keep"), 1);
}

/// Copies every table of [`SCHEMA`] to a fresh destination database, runs `change` on the source
/// and the destination, then resumes: the resume's output, and the destination database.
fn resume_after(change: &str) -> (std::process::Output, String) {
    let c = clusters();
    let src = database(&c.source, &format!("{SCHEMA}{FILL}"));
    let dst = database(&c.dest[0], SCHEMA);
    let from = c.source.conninfo(&src);
    let to = c.dest[0].conninfo(&dst);
    let state = TempPath::new("changed-since.state");
    let args = [
        "table",
        "--from",
        &from,
        "--to",
        &to,
        "--state",
        state.arg(),
    ];
    assert_exit(&run(&args), 0);
    for (cluster, db) in [(&c.source, &src), (&c.dest[0], &dst)] {
        cluster.connect(db).batch_execute(change).unwrap();
    }
    (copyman().args(args).arg("--resume").output().unwrap(), dst)
}

/// A resume knows a table by what it is on the source, not only by its name: a partition the
/// earlier run copied with its partitioned table, detached since (on every server), is refused
/// rather than copied again as a new table (its rows were there twice, exit 0).
#[test]
fn a_resume_refuses_a_partition_detached_since_the_earlier_run() {
    let (resumed, dst) = resume_after("ALTER TABLE app.pt DETACH PARTITION parts.pt_2");
    assert_exit(&resumed, 2);
    let said = text(&resumed.stderr);
    assert!(said.contains("pt_2") && said.contains("app"), "{said}");
    assert_eq!(
        count(&clusters().dest[0], &dst, "parts.pt_2"),
        2000,
        "not copied twice"
    );
}

/// A table renamed (on every server) since the earlier run committed it everywhere: done under
/// its new name, said, not copied again as a new table (refused, it left the job no way on).
#[test]
fn a_resume_takes_a_table_renamed_since_the_earlier_run_as_done() {
    let (resumed, dst) = resume_after("ALTER TABLE shape.s RENAME TO s2");
    assert_exit(&resumed, 0);
    assert!(
        text(&resumed.stderr).contains(r#""shape"."s2": the earlier run committed it"#),
        "{}",
        text(&resumed.stderr)
    );
    assert_eq!(
        count(&clusters().dest[0], &dst, "shape.s2"),
        7,
        "not copied twice"
    );
}

/// Two tables of a job that are one partition tree on the destination (`pb` a partition of the
/// partitioned `pa` there, plain tables on the source): with `--truncate`, `pa`'s TRUNCATE
/// emptied the `pb` the job had committed and recorded done (or `pb`'s took the rows `pa`
/// routed into it), exit 0, `--verify` agreeing. Refused while planning, naming both, dry run
/// too; without emptying, both are copied.
#[test]
fn a_job_that_would_empty_a_partition_tree_twice_on_a_destination_is_refused() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE pa (id int, v text); CREATE TABLE pb (id int, v text);
         INSERT INTO pa SELECT g, 'a' FROM generate_series(1, 100) g;
         INSERT INTO pb SELECT g, 'b' FROM generate_series(1001, 3000) g;",
    );
    let dst = database(
        &c.dest[0],
        "CREATE TABLE pa (id int, v text) PARTITION BY RANGE (id);
         CREATE TABLE pa_low PARTITION OF pa FOR VALUES FROM (0) TO (1000);
         CREATE TABLE pb PARTITION OF pa FOR VALUES FROM (1000) TO (100000);
         INSERT INTO pa SELECT g, 'kept' FROM generate_series(1, 10) g;",
    );
    let from = c.source.conninfo(&src);
    let to = c.dest[0].conninfo(&dst);
    let state = TempPath::new("partition-tree-emptied.state");
    let job = |extra: &[&str]| {
        copyman()
            .args(["table", "pa", "pb", "--from", &from, "--to", &to])
            .args(["--state", state.arg()])
            .args(extra)
            .output()
            .unwrap()
    };
    for extra in [&["--truncate"][..], &["--truncate", "--dry-run"][..]] {
        let out = job(extra);
        assert_exit(&out, 2);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(
                "on destination 1, \"public\".\"pb\" is a partition of \"public\".\"pa\""
            ),
            "{extra:?}: {stderr}"
        );
        assert_eq!(
            count(&c.dest[0], &dst, "pa"),
            10,
            "{extra:?}: nothing emptied"
        );
    }
    let out = job(&[]);
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[0], &dst, "pb"), 2000);
    assert_eq!(count(&c.dest[0], &dst, "pa_low"), 110);
    // A resume that would empty `pa` where `pb`, done, is its partition: refused as well (it
    // wiped the rows `pb` committed and recorded done, exit 0, "verified": jobs66 F8).
    c.dest[0]
        .connect(&dst)
        .batch_execute(
            "TRUNCATE pa; CREATE FUNCTION no() RETURNS trigger LANGUAGE plpgsql AS
               $$BEGIN RAISE EXCEPTION 'not now'; END$$;
             CREATE TRIGGER no BEFORE INSERT ON pa_low FOR EACH ROW EXECUTE FUNCTION no();",
        )
        .unwrap();
    let resumed = TempPath::new("partition-tree-resumed.state");
    let job = |extra: &[&str]| {
        let mut args = vec!["table", "pa", "pb", "--from", &from, "--to", &to];
        args.extend(["--jobs", "1", "--state", resumed.arg()]);
        args.extend(extra);
        run(&args)
    };
    assert_exit(&job(&[]), 4);
    assert_eq!(count(&c.dest[0], &dst, "pb"), 2000);
    c.dest[0]
        .connect(&dst)
        .batch_execute("DROP TRIGGER no ON pa_low")
        .unwrap();
    let out = job(&["--resume", "--truncate"]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("on destination 1, \"public\".\"pb\" is a partition of \"public\".\"pa\""),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &dst, "pb"), 2000, "not emptied");
}

/// A table the earlier run committed, attached since as a partition of a partitioned table that
/// run did not finish: the resume copied the partitioned table whole, that partition's rows a
/// second time (exit 0, "done"). Refused by name, as a partition detached since is.
#[test]
fn a_resume_refuses_a_table_done_that_was_attached_since_to_one_not_done() {
    let c = clusters();
    let schema = "CREATE TABLE sales (id int, v text) PARTITION BY RANGE (id);
                  CREATE TABLE sales_1 PARTITION OF sales FOR VALUES FROM (0) TO (100);
                  CREATE TABLE sales_2 (id int, v text);";
    let src = database(
        &c.source,
        &format!(
            "{schema} INSERT INTO sales SELECT g % 100, 'a' FROM generate_series(1, 1000) g;
             INSERT INTO sales_2 SELECT 100 + g % 100, 'b' FROM generate_series(1, 2000) g;"
        ),
    );
    let dst = database(
        &c.dest[0],
        &format!(
            "{schema} CREATE FUNCTION no() RETURNS trigger LANGUAGE plpgsql AS
               $$BEGIN RAISE EXCEPTION 'not now'; END$$;
             CREATE TRIGGER no BEFORE INSERT ON sales_1 FOR EACH ROW EXECUTE FUNCTION no();"
        ),
    );
    let state = TempPath::new("attached-since.state");
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
    let job = |extra: &[&str]| {
        let mut args = vec!["table", "--table", "sales*", "--from", &from, "--to", &to];
        args.extend(["--jobs", "1", "--state", state.arg()]);
        args.extend(extra);
        run(&args)
    };
    assert_exit(&job(&[]), 4);
    assert_eq!(count(&c.dest[0], &dst, "sales_2"), 2000);
    let attach = "ALTER TABLE sales ATTACH PARTITION sales_2 FOR VALUES FROM (100) TO (200)";
    for (cluster, db) in [(&c.source, &src), (&c.dest[0], &dst)] {
        cluster.connect(db).batch_execute(attach).unwrap();
    }
    c.dest[0]
        .connect(&dst)
        .batch_execute("DROP TRIGGER no ON sales_1")
        .unwrap();
    let out = job(&["--resume"]);
    assert_exit(&out, 2);
    let said = text(&out.stderr);
    assert!(
        said.contains(r#"table "public"."sales_2", which the earlier run committed"#)
            && said.contains(r#"is now (a part of) "public"."sales", which it did not"#),
        "{said}"
    );
    assert_eq!(count(&c.dest[0], &dst, "sales_2"), 2000, "not copied twice");
}

/// A partitioned table with a foreign partition (its rows on another server, an archive's) is
/// refused, on the source and on a destination, in one table and in a job, naming the
/// partition: copied through it, the archive's rows were read from there and written back there
/// through the destination's foreign partition (every archived row twice, exit 0). Its other
/// partitions copy by name.
#[test]
fn a_partitioned_table_with_a_foreign_partition_is_refused() {
    let c = clusters();
    // A wrapper without a handler: the foreign table exists, nothing can read or write it.
    const FDW: &str =
        "CREATE FOREIGN DATA WRAPPER nothing; CREATE SERVER archive FOREIGN DATA WRAPPER nothing;";
    const LOCAL: &str = "CREATE TABLE p (id int, y int) PARTITION BY RANGE (y);
        CREATE TABLE p_cur PARTITION OF p FOR VALUES FROM (2000) TO (3000);";
    const ARCHIVED: &str = "CREATE FOREIGN TABLE p_arch PARTITION OF p
        FOR VALUES FROM (1000) TO (2000) SERVER archive;";
    let src = database(
        &c.source,
        &format!(
            "{FDW} {LOCAL} {ARCHIVED} INSERT INTO p_cur SELECT g, 2024 FROM generate_series(1, 5) g;"
        ),
    );
    let dst = database(&c.dest[0], &format!("{FDW} {LOCAL} {ARCHIVED}"));
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
    let state = TempPath::new("foreign-partitions.state");
    for args in [
        vec!["table", "p", "--from", &from, "--to", &to],
        vec![
            "table",
            "--from",
            &from,
            "--to",
            &to,
            "--state",
            state.arg(),
        ],
    ] {
        let out = run(&args);
        assert_exit(&out, 2);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("its partitions public.p_arch on the source are foreign tables"),
            "{args:?}: {stderr}"
        );
    }
    // A destination whose partition is foreign, the source's all local.
    let local = database(
        &c.source,
        &format!("{LOCAL} INSERT INTO p SELECT g, 2024 FROM generate_series(1, 5) g;"),
    );
    let from = c.source.conninfo(&local);
    for args in [
        vec!["table", "p", "--from", &from, "--to", &to],
        vec![
            "table",
            "p",
            "--from",
            &from,
            "--to",
            &to,
            "--state",
            state.arg(),
        ],
    ] {
        let out = run(&args);
        assert_exit(&out, 1);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("its partitions public.p_arch on it there are foreign tables"),
            "{args:?}: {stderr}"
        );
    }
    // Its local partitions by name.
    let out = run(&["table", "p_cur", "--from", &from, "--to", &to]);
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[0], &dst, "p_cur"), 5);
    // A destination table that is itself a foreign table (moved to the archive there): its rows
    // went to the archive, and --truncate emptied the archive's table. (A job refused while
    // planning began nothing: its state file does not hold back another selection's job.)
    c.source
        .connect(&local)
        .batch_execute("CREATE TABLE lt (id int); INSERT INTO lt VALUES (1);")
        .unwrap();
    c.dest[0]
        .connect(&dst)
        .batch_execute("CREATE FOREIGN TABLE lt (id int) SERVER archive;")
        .unwrap();
    let state = TempPath::new("foreign-destination.state");
    for args in [
        vec!["table", "lt", "--truncate", "--from", &from, "--to", &to],
        vec![
            "table",
            "--table",
            "lt",
            "--truncate",
            "--from",
            &from,
            "--to",
            &to,
        ],
        vec![
            "table",
            "--table",
            "lt",
            "--truncate",
            "--from",
            &from,
            "--to",
            &to,
        ],
    ] {
        let mut args = args;
        args.extend(["--state", state.arg()]);
        let out = run(&args);
        assert_exit(&out, 1);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("is a foreign table there, whose rows live on another server"),
            "{args:?}: {stderr}"
        );
    }
}

/// A table the earlier run did not commit, attached since as a partition of a partitioned table
/// that run committed: the resume dropped it as "copied with its partitioned table", which was
/// done and not copied again (its rows reached no destination, exit 0). It is copied by itself,
/// as that run planned.
#[test]
fn a_resume_copies_a_table_not_done_that_was_attached_since_to_one_done() {
    let c = clusters();
    let schema = "CREATE TABLE sales (id int, v text) PARTITION BY RANGE (id);
                  CREATE TABLE sales_1 PARTITION OF sales FOR VALUES FROM (0) TO (100);
                  CREATE TABLE sales_2 (id int, v text);";
    let src = database(
        &c.source,
        &format!(
            "{schema} INSERT INTO sales SELECT g % 100, 'a' FROM generate_series(1, 1000) g;
             INSERT INTO sales_2 SELECT 100 + g % 100, 'b' FROM generate_series(1, 2000) g;"
        ),
    );
    let dst = database(
        &c.dest[0],
        &format!(
            "{schema} CREATE FUNCTION no() RETURNS trigger LANGUAGE plpgsql AS
               $$BEGIN RAISE EXCEPTION 'not now'; END$$;
             CREATE TRIGGER no BEFORE INSERT ON sales_2 FOR EACH ROW EXECUTE FUNCTION no();"
        ),
    );
    let state = TempPath::new("attached-to-done.state");
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
    let job = |extra: &[&str]| {
        let mut args = vec!["table", "--table", "sales*", "--from", &from, "--to", &to];
        args.extend(["--jobs", "1", "--keep-going", "--state", state.arg()]);
        args.extend(extra);
        run(&args)
    };
    assert_exit(&job(&[]), 4);
    assert_eq!(count(&c.dest[0], &dst, "sales"), 1000);
    assert_eq!(count(&c.dest[0], &dst, "sales_2"), 0);
    c.dest[0]
        .connect(&dst)
        .batch_execute("DROP TRIGGER no ON sales_2")
        .unwrap();
    let attach = "ALTER TABLE sales ATTACH PARTITION sales_2 FOR VALUES FROM (100) TO (200)";
    for (cluster, db) in [(&c.source, &src), (&c.dest[0], &dst)] {
        cluster.connect(db).batch_execute(attach).unwrap();
    }
    let out = job(&["--resume"]);
    assert_exit(&out, 0);
    let said = text(&out.stderr);
    assert!(
        said.contains(r#""public"."sales_2": attached since the earlier run as a partition"#)
            && !said.contains("copied with its partitioned table"),
        "{said}"
    );
    assert_eq!(count(&c.dest[0], &dst, "sales_2"), 2000);
    assert_eq!(count(&c.dest[0], &dst, "sales"), 3000);
}

/// A table the earlier run committed everywhere, renamed since on every server (a deploy): the
/// resume refused it as copied "under another name" and offered ways that copied it again. It
/// is done under its new name (the same relation on the source), said in a note; nothing twice.
#[test]
fn a_resume_takes_a_table_renamed_since_as_done() {
    let c = clusters();
    let schema = "CREATE TABLE big (id int); CREATE TABLE small (id int);";
    let src = database(
        &c.source,
        &format!(
            "{schema} INSERT INTO big SELECT generate_series(1, 3000);
             INSERT INTO small SELECT generate_series(1, 10);"
        ),
    );
    let dst = database(
        &c.dest[0],
        &format!(
            "{schema} CREATE FUNCTION no() RETURNS trigger LANGUAGE plpgsql AS
               $$BEGIN RAISE EXCEPTION 'not now'; END$$;
             CREATE TRIGGER no BEFORE INSERT ON small FOR EACH ROW EXECUTE FUNCTION no();"
        ),
    );
    let state = TempPath::new("renamed-since.state");
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
    let job = |extra: &[&str]| {
        let mut args = vec!["table", "--schema", "public", "--from", &from, "--to", &to];
        args.extend(["--jobs", "1", "--keep-going", "--state", state.arg()]);
        args.extend(extra);
        run(&args)
    };
    assert_exit(&job(&[]), 4);
    assert_eq!(count(&c.dest[0], &dst, "big"), 3000);
    for (cluster, db) in [(&c.source, &src), (&c.dest[0], &dst)] {
        cluster
            .connect(db)
            .batch_execute("ALTER TABLE big RENAME TO big_archive")
            .unwrap();
    }
    c.dest[0]
        .connect(&dst)
        .batch_execute("DROP TRIGGER no ON small")
        .unwrap();
    let out = job(&["--resume"]);
    assert_exit(&out, 0);
    let said = text(&out.stderr);
    assert!(
        said.contains(r#""public"."big_archive": the earlier run committed it on every destination as "public"."big""#),
        "{said}"
    );
    assert_eq!(count(&c.dest[0], &dst, "big_archive"), 3000, "not twice");
    assert_eq!(count(&c.dest[0], &dst, "small"), 10);
}

/// A partitioned table larger than `--split-larger-than` is copied whole through its parent,
/// said with the way to copy its partitions side by side (jobs46 F4.4: nothing was said).
#[test]
fn a_partitioned_table_over_the_split_size_is_said_copied_whole() {
    let c = clusters();
    let schema = "CREATE TABLE meas (id int, at date) PARTITION BY RANGE (at);
         CREATE TABLE meas_1 PARTITION OF meas FOR VALUES FROM ('2026-01-01') TO ('2026-07-01');
         CREATE TABLE meas_2 PARTITION OF meas FOR VALUES FROM ('2026-07-01') TO ('2027-01-01');";
    let src = database(
        &c.source,
        &format!(
            "{schema} INSERT INTO meas SELECT g, '2026-01-01'::date + g % 360 \
             FROM generate_series(1, 20000) g;"
        ),
    );
    let d1 = database(&c.dest[0], schema);
    let out = run(&[
        "table",
        "-t",
        "meas",
        "--split-larger-than",
        "8k",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&d1),
    ]);
    assert_exit(&out, 0);
    let said = text(&out.stderr) + &text(&out.stdout);
    assert!(
        said.contains("copied whole, not split: --split-larger-than splits an ordinary table")
            && said.contains("select its partitions instead of it"),
        "{said}"
    );
    assert_eq!(count(&c.dest[0], &d1, "meas"), 20000);
}

/// A partitioned table emptied first (`--truncate`) whose destination has a partition the
/// source has not: the plan says `--truncate` empties it with the table (emptying63 F5: its
/// rows went without a word).
#[test]
fn a_partition_only_a_destination_has_is_said_emptied_with_its_table() {
    let c = clusters();
    let schema = "CREATE TABLE pu (id int) PARTITION BY RANGE (id);
                  CREATE TABLE pu_1 PARTITION OF pu FOR VALUES FROM (0) TO (100);";
    let src = database(
        &c.source,
        &format!("{schema} INSERT INTO pu SELECT generate_series(1, 50);"),
    );
    let dst = database(
        &c.dest[0],
        &format!(
            "{schema} CREATE TABLE pu_extra PARTITION OF pu FOR VALUES FROM (100) TO (200);
             INSERT INTO pu VALUES (150);"
        ),
    );
    let state = TempPath::new("own-partition.state");
    let out = run(&[
        "table",
        "pu",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&dst),
        "--truncate",
        "--state",
        state.arg(),
    ]);
    assert_exit(&out, 0);
    assert!(
        text(&out.stderr).contains(
            r#""public"."pu": on destination 1 its partition "public"."pu_extra" is not the source's: --truncate empties it with it"#
        ),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &dst, "pu"), 50);
}
