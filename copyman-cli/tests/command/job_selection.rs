//! `copyman table` with many tables: what a selection takes (every row once, a partition with its
//! partitioned table; a table the source's role cannot read is refused, never left out), and a
//! resume that recognises a destination however it is spelled.

use crate::common;

use std::fs;
use std::process::Output;

use common::*;
use copyman_testkit::Cluster;

/// `parts` (3000 rows) by range: `parts_1` a leaf (1000 rows), `parts_2` itself partitioned by
/// list into `parts_2_a` and `parts_2_b` (1000 rows each).
const PARTS: &str = "
    CREATE TABLE parts (id int, note text) PARTITION BY RANGE (id);
    CREATE TABLE parts_1 PARTITION OF parts FOR VALUES FROM (1) TO (1001);
    CREATE TABLE parts_2 PARTITION OF parts FOR VALUES FROM (1001) TO (3001)
        PARTITION BY RANGE (id);
    CREATE TABLE parts_2_a PARTITION OF parts_2 FOR VALUES FROM (1001) TO (2001);
    CREATE TABLE parts_2_b PARTITION OF parts_2 FOR VALUES FROM (2001) TO (3001);
    CREATE TABLE other (id int);
";

fn job(from: &str, to: &[String], extra: &[&str]) -> Output {
    let mut args = vec!["table", "--from", from];
    for t in to {
        args.extend(["--to", t.as_str()]);
    }
    args.extend(extra);
    run(&args)
}

#[test]
fn job_selection_a_partition_selected_with_its_partitioned_table_is_copied_once() {
    let c = clusters();
    let src = database(
        &c.source,
        &format!(
            "{PARTS} INSERT INTO parts SELECT g, 'n' || g FROM generate_series(1, 3000) g;
             INSERT INTO other SELECT generate_series(1, 7);"
        ),
    );
    let dsts = [database(&c.dest[0], PARTS), database(&c.dest[1], PARTS)];
    let from = c.source.conninfo(&src);
    let to: Vec<String> = c
        .dest
        .iter()
        .zip(&dsts)
        .map(|(cl, db)| cl.conninfo(db))
        .collect();
    let expected = digest(&c.source, &src, "parts");
    assert_eq!(expected.0, 3000);
    let state = TempPath::new("parts.state");
    // Each selection names parts' rows through two names (or more): every row must land once.
    // (--truncate: each run starts from empty destination tables.)
    // The rows committed: 3000 to each destination (and `other`'s 7 with --schema public).
    let selections: [(&[&str], &[&str], &str); 6] = [
        (&["parts", "parts_1"], &["parts_1"], "6,000"),
        (&["--schema", "public", "parts_1"], &["parts_1"], "6,014"),
        (&["--table", "part*", "parts_2_a"], &["parts_2_a"], "6,000"),
        (
            &["parts_2_a", "parts_2", "parts"],
            &["parts_2", "parts_2_a"],
            "6,000",
        ),
        (&["parts", "parts"], &[], "6,000"),
        (&["parts", "public.parts"], &[], "6,000"),
    ];
    for (selection, left_out, rows) in selections {
        // (Each a job of its own: one of another selection does not replace its record.)
        let _ = fs::remove_file(&state.0);
        let mut extra = vec!["--truncate", "--state", state.arg()];
        extra.extend(selection);
        let out = job(&from, &to, &extra);
        assert_exit(&out, 0);
        let stderr = text(&out.stderr);
        for (cl, db) in c.dest.iter().zip(&dsts) {
            assert_eq!(
                digest(cl, db, "parts"),
                expected,
                "{selection:?}: every row of parts once on {db}\n{stderr}"
            );
        }
        assert!(
            stderr.contains(&format!(" {rows} rows committed")),
            "{selection:?}: {stderr}"
        );
        // (Several partitions alike in one note, naming each.)
        for partition in left_out {
            assert!(
                stderr.lines().any(|l| l.starts_with("copyman: note: ")
                    && l.contains(&format!("\"public\".\"{partition}\""))
                    && l.contains("copied with its partitioned table \"public\".\"parts\"")),
                "{selection:?}: the plan says why {partition} is not copied by itself: {stderr}"
            );
        }
    }
    // A partition excluded while its partitioned table is selected: its rows come with it, and
    // the plan says so.
    let _ = fs::remove_file(&state.0);
    let out = job(
        &from,
        &to,
        &[
            "--truncate",
            "--state",
            state.arg(),
            "--table",
            "parts",
            "--exclude-table",
            "parts_2*",
        ],
    );
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    // One note for the three, naming them.
    assert!(
        stderr.contains(
            "note: 3 tables (\"public\".\"parts_2\", \"public\".\"parts_2_a\", \
             \"public\".\"parts_2_b\"): matches --exclude-table, but its rows are copied with \
             its partitioned table \"public\".\"parts\""
        ),
        "{stderr}"
    );
    for (cl, db) in c.dest.iter().zip(&dsts) {
        assert_eq!(digest(cl, db, "parts"), expected, "{stderr}");
    }
    // A sub-partitioned partition named with one of its own partitions: through it, once; the
    // dry run says so too. (A new job: the state file of the last would refuse it.)
    fs::remove_file(&state.0).unwrap();
    let out = job(
        &from,
        &to,
        &["--dry-run", "--state", state.arg(), "parts_2_b", "parts_2"],
    );
    assert_exit(&out, 0);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("1 table,")
            && stdout.contains(
                "note: \"public\".\"parts_2_b\": copied with its partitioned table \
                 \"public\".\"parts_2\""
            ),
        "{stdout}"
    );
    let out = job(
        &from,
        &to,
        &[
            "--json",
            "--truncate",
            "--state",
            state.arg(),
            "parts_2_b",
            "parts_2",
        ],
    );
    assert_exit(&out, 0);
    assert_eq!(
        json(&out)["notes"][0],
        "\"public\".\"parts_2_b\": copied with its partitioned table \"public\".\"parts_2\", \
         not by itself"
    );
    for (cl, db) in c.dest.iter().zip(&dsts) {
        assert_eq!(count(cl, db, "parts_2"), 2000, "{}", text(&out.stderr));
        assert_eq!(digest(cl, db, "parts"), expected, "parts_1 untouched");
    }
}

/// A role of `cluster` that may log in, created once per name.
/// A job that names an old-style partitioned table (inheritance) and not its children says that
/// only its own rows are copied, naming the children it leaves out: it copied none of their
/// rows, exit 0, verified, without a word (jobs67 F6), where one table's copy warned.
#[test]
fn job_selection_inheritance_children_left_out_are_said() {
    let c = clusters();
    let schema = "CREATE TABLE legacy (id int, d date);
        CREATE TABLE legacy_2023 (CHECK (d < '2024-01-01')) INHERITS (legacy);
        CREATE TABLE legacy_2024 (CHECK (d >= '2024-01-01')) INHERITS (legacy);
        CREATE TABLE other (id int);";
    let src = database(
        &c.source,
        &format!(
            "{schema} INSERT INTO legacy_2023 VALUES (1, '2023-05-01');
             INSERT INTO legacy_2024 VALUES (2, '2024-05-01');"
        ),
    );
    let dest = database(&c.dest[0], schema);
    let (from, to) = (c.source.conninfo(&src), [c.dest[0].conninfo(&dest)]);
    let out = job(&from, &to, &["legacy", "other", "--dry-run"]);
    assert_exit(&out, 0);
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        said.contains(
            "\"public\".\"legacy\": only its own rows are copied (as COPY and pg_dump read \
             them): 2 inheritance children (\"public\".\"legacy_2023\", \
             \"public\".\"legacy_2024\") are not in the job"
        ),
        "{said}"
    );
    let out = job(&from, &to, &["legacy", "legacy_2023", "--dry-run"]);
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        said.contains("1 inheritance child (\"public\".\"legacy_2024\") is not in the job"),
        "{said}"
    );
    let out = job(&from, &to, &["-t", "legacy*", "--dry-run"]);
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(!said.contains("inheritance"), "{said}");
}

fn role(cluster: &Cluster, name: &str) {
    cluster
        .connect("postgres")
        .batch_execute(&format!(
            "DO $$ BEGIN
                 IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{name}') THEN
                     CREATE ROLE {name} LOGIN;
                 END IF;
             END $$"
        ))
        .expect("create role");
}

#[test]
fn job_selection_a_table_the_source_role_cannot_read_is_refused_by_name_never_left_out() {
    let c = clusters();
    role(&c.source, "job_reader");
    const ODD: &str = "
        CREATE SCHEMA odd;
        CREATE TABLE odd.open (id int);
        CREATE TABLE odd.secret (id int);
        CREATE TABLE odd.cols (id int, note text,
            twice int GENERATED ALWAYS AS (id * 2) STORED);
    ";
    let src = database(
        &c.source,
        &format!(
            "{ODD}
             INSERT INTO odd.open SELECT generate_series(1, 10);
             INSERT INTO odd.secret SELECT generate_series(1, 20);
             INSERT INTO odd.cols SELECT g, 'c' FROM generate_series(1, 5) g;
             GRANT USAGE ON SCHEMA odd TO job_reader;
             GRANT SELECT ON odd.open TO job_reader;
             GRANT SELECT (id, note) ON odd.cols TO job_reader;"
        ),
    );
    let dsts = [database(&c.dest[0], ODD), database(&c.dest[1], ODD)];
    // The source as the role that may not read odd.secret (the clusters trust local TCP).
    let from = format!(
        "host={} port={} user=job_reader dbname={src}",
        c.source.host(),
        c.source.port()
    );
    let to: Vec<String> = c
        .dest
        .iter()
        .zip(&dsts)
        .map(|(cl, db)| cl.conninfo(db))
        .collect();
    let state = TempPath::new("secret.state");
    for selection in [
        &["--schema", "odd"][..],
        &["--table", "odd.*"],
        &["--table", "odd.s*", "odd.open"],
        &["odd.secret", "odd.open"],
        &[],
    ] {
        let mut extra = vec!["--state", state.arg()];
        extra.extend(selection);
        let out = job(&from, &to, &extra);
        let stderr = text(&out.stderr);
        assert_exit(&out, 1);
        assert!(
            stderr.contains("permission denied")
                && stderr.contains("\"odd\".\"secret\"")
                && stderr.contains("SELECT")
                && !stderr.contains("\"odd\".\"cols\""),
            "{selection:?}: the refusal names the table and the privilege: {stderr}"
        );
        for (cl, db) in c.dest.iter().zip(&dsts) {
            for table in ["odd.open", "odd.secret", "odd.cols"] {
                assert_eq!(
                    count(cl, db, table),
                    0,
                    "{selection:?}: nothing copied to {db}"
                );
            }
        }
    }
    // Left out by the user, the rest is copied (odd.cols through its column grants, which need
    // not cover its generated column: never copied, it was refused for it).
    let out = job(
        &from,
        &to,
        &[
            "--state",
            state.arg(),
            "--schema",
            "odd",
            "--exclude-table",
            "odd.secret",
        ],
    );
    assert_exit(&out, 0);
    for (cl, db) in c.dest.iter().zip(&dsts) {
        assert_eq!(count(cl, db, "odd.open"), 10);
        assert_eq!(count(cl, db, "odd.cols"), 5);
        assert_eq!(count(cl, db, "odd.secret"), 0);
    }
}

#[test]
fn job_selection_a_resume_recognises_a_destination_spelled_otherwise() {
    let c = clusters();
    const ODD: &str = "
        CREATE SCHEMA odd;
        CREATE TABLE odd.a (id int);
        CREATE TABLE odd.b (id int);
    ";
    let src = database(
        &c.source,
        &format!(
            "{ODD}
             INSERT INTO odd.a SELECT generate_series(1, 100);
             INSERT INTO odd.b SELECT generate_series(1, 50);"
        ),
    );
    let dsts = [database(&c.dest[0], ODD), database(&c.dest[1], ODD)];
    let from = c.source.conninfo(&src);
    let d2 = c.dest[1].conninfo(&dsts[1]);
    let d1 = c.dest[0].conninfo(&dsts[0]);
    // D1 again, spelled otherwise: over its socket directory with a trailing slash, user and
    // database from the environment.
    let d1_other = format!(
        "host={}/ port={}",
        c.dest[0].socket_dir().display(),
        c.dest[0].port()
    );
    let env = [("PGUSER", "postgres"), ("PGDATABASE", dsts[0].as_str())];
    let check = |what: &str| {
        for (cl, db) in c.dest.iter().zip(&dsts) {
            assert_eq!(count(cl, db, "odd.a"), 100, "{what}: odd.a once on {db}");
            assert_eq!(count(cl, db, "odd.b"), 50, "{what}: odd.b once on {db}");
        }
    };
    let cache = TempPath::new("cache");
    let run_job = |to1: &str, extra: &[&str], env: &[(&str, &str)]| {
        copyman()
            .env("XDG_CACHE_HOME", &cache.0)
            .envs(env.iter().copied())
            .args([
                "--json", "table", "--schema", "odd", "--from", &from, "--to", to1, "--to", &d2,
            ])
            .args(extra)
            .output()
            .unwrap()
    };

    // An explicit state file.
    let state = TempPath::new("spelling.state");
    let out = run_job(&d1, &["--state", state.arg()], &[]);
    assert_exit(&out, 0);
    check("first run");
    let out = run_job(&d1_other, &["--state", state.arg(), "--resume"], &env);
    assert_exit(&out, 0);
    check("resumed with D1 spelled otherwise");
    let report = json(&out);
    assert!(
        report["tables"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "already done"),
        "{report}"
    );

    // The default state file: named for what the servers are, so the resume finds it.
    let out = run_job(&d1, &["--truncate"], &[]);
    assert_exit(&out, 0);
    check("first run, default state file");
    let out = run_job(&d1_other, &["--resume"], &env);
    assert_exit(&out, 0);
    check("resumed with D1 spelled otherwise, default state file");
    assert!(
        json(&out)["tables"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "already done"),
        "{}",
        text(&out.stdout)
    );
    // The destinations given in the other order: the same job, the same file.
    let out = copyman()
        .env("XDG_CACHE_HOME", &cache.0)
        .args([
            "--json", "table", "--schema", "odd", "--from", &from, "--to", &d2, "--to", &d1,
            "--resume",
        ])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    check("resumed with the destinations in the other order, default state file");
    assert!(
        json(&out)["tables"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "already done"),
        "{}",
        text(&out.stdout)
    );

    // Nothing to resume from: refused, naming where it looked, nothing copied.
    let missing = TempPath::new("missing.state");
    let out = run_job(&d1, &["--state", missing.arg(), "--resume"], &[]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("no state file at") && stderr.contains(missing.arg()),
        "{stderr}"
    );
    check("a resume without a state file");
    assert!(!missing.0.exists(), "no state file made up");

    // A state file of the older format (destinations by connection string): refused.
    fs::write(
        &missing.0,
        format!("copyman-job 1\nbegin\t\"odd\".\"a\"\t{d2}\ndone\t\"odd\".\"a\"\t{d2}\t100\n"),
    )
    .unwrap();
    let out = run_job(&d1, &["--state", missing.arg(), "--resume"], &[]);
    assert!(!out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("older copyman"),
        "{}",
        text(&out.stderr)
    );
    check("a resume from an older state file");

    // An empty state file (a `> file`, a full disk) records nothing: refused as a missing one
    // (every table was appended again, exit 0).
    fs::write(&missing.0, "").unwrap();
    let out = run_job(&d1, &["--state", missing.arg(), "--resume"], &[]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("the state file is empty at"),
        "{}",
        text(&out.stderr)
    );
    check("a resume from an empty state file");

    // A user's file as --state: never written over (it was, exit 0), nor resumed from.
    let precious = TempPath::new("items.csv");
    fs::write(&precious.0, "id,name\n1,precious\n").unwrap();
    for extra in [&[][..], &["--resume"][..], &["--truncate"][..]] {
        let mut args = vec!["--state", precious.arg()];
        args.extend(extra);
        let out = run_job(&d1, &args, &[]);
        assert_exit(&out, 2);
        assert!(
            text(&out.stderr).contains("not a copyman state file"),
            "{extra:?}: {}",
            text(&out.stderr)
        );
    }
    assert_eq!(
        fs::read_to_string(&precious.0).unwrap(),
        "id,name\n1,precious\n"
    );
    check("a user's file as --state");

    // A first line like a state file's that is none this copyman reads (a CR after it, a
    // version it does not know): refused as a user's file is (it was exit 1).
    for head in ["copyman-job 3\r\n", "copyman-job 99\n"] {
        fs::write(&precious.0, head).unwrap();
        let out = run_job(&d1, &["--state", precious.arg(), "--resume"], &[]);
        assert_exit(&out, 2);
        assert!(
            text(&out.stderr).contains("not a copyman state file"),
            "{head:?}: {}",
            text(&out.stderr)
        );
    }
    // A state file given as --atomic's decision log: refused (decisions were appended to it).
    fs::write(&precious.0, "copyman-job 3\n").unwrap();
    let out = run_job(&d1, &["--atomic", "--decision-log", precious.arg()], &[]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("that is a job's state file, not a decision log"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(fs::read_to_string(&precious.0).unwrap(), "copyman-job 3\n");
    check("a state file as the decision log");
    // A user's file as the decision log: refused, not cut back to its last line end and
    // appended to (files67 F18: its last row lost, exit 0).
    fs::write(&precious.0, "id,name\n1,precious").unwrap();
    let out = run_job(&d1, &["--atomic", "--decision-log", precious.arg()], &[]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("is not a copyman decision log (its first line (id,name)"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        fs::read_to_string(&precious.0).unwrap(),
        "id,name\n1,precious"
    );
    check("a user's file as the decision log");

    // A device as --state: refused before anything (it planned, then failed writing: exit 1).
    for extra in [&[][..], &["--resume"][..]] {
        let mut args = vec!["--state", "/dev/null"];
        args.extend(extra);
        let out = run_job(&d1, &args, &[]);
        assert_exit(&out, 2);
        assert!(
            text(&out.stderr).contains("--state /dev/null is not a regular file"),
            "{extra:?}: {}",
            text(&out.stderr)
        );
    }
    check("a device as --state");

    // One file as --state and --decision-log: refused (it waited for ever on its own lock, the
    // destinations' transactions open).
    let both = TempPath::new("both.log");
    let out = run_job(
        &d1,
        &[
            "--state",
            both.arg(),
            "--atomic",
            "--decision-log",
            both.arg(),
            "--truncate",
        ],
        &[],
    );
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("--state and --decision-log name one file"),
        "{}",
        text(&out.stderr)
    );
    check("one file as --state and --decision-log");
}

/// `fk.child` (the largest) references `fk.parent`; `fk.a` and `fk.b` reference each other (a
/// cycle, whose rows reference nothing: it must not hold the job up).
const FK: &str = "
    CREATE SCHEMA fk;
    CREATE TABLE fk.parent (id int PRIMARY KEY, note text);
    CREATE TABLE fk.child (id int PRIMARY KEY, parent_id int NOT NULL REFERENCES fk.parent,
        pad text);
    CREATE TABLE fk.a (id int PRIMARY KEY, b_id int);
    CREATE TABLE fk.b (id int PRIMARY KEY, a_id int REFERENCES fk.a);
    ALTER TABLE fk.a ADD FOREIGN KEY (b_id) REFERENCES fk.b;
";

const FK_FILL: &str = "
    INSERT INTO fk.parent SELECT g, 'p' FROM generate_series(1, 100) g;
    INSERT INTO fk.child SELECT g, 1 + g % 100, repeat('c', 200) FROM generate_series(1, 5000) g;
    INSERT INTO fk.a SELECT g, NULL FROM generate_series(1, 10) g;
    INSERT INTO fk.b SELECT g, NULL FROM generate_series(1, 10) g;
";

#[test]
fn job_selection_a_referenced_table_commits_before_the_tables_that_reference_it() {
    let c = clusters();
    let src = database(&c.source, &format!("{FK}{FK_FILL}"));
    let dsts = [database(&c.dest[0], FK), database(&c.dest[1], FK)];
    let from = c.source.conninfo(&src);
    let to: Vec<String> = c
        .dest
        .iter()
        .zip(&dsts)
        .map(|(cl, db)| cl.conninfo(db))
        .collect();
    let state = TempPath::new("fk.state");
    // The dry run lists the tables largest first, and says which starts after which (it said
    // "largest first" only, and the run took them in another order: jobs64 F5).
    let dry = |extra: &[&str]| {
        let mut args = vec!["--schema", "fk", "--state", state.arg(), "--dry-run"];
        args.extend(extra);
        job(&from, &to, &args)
    };
    let out = dry(&[]);
    assert_exit(&out, 0);
    let plan = text(&out.stdout);
    assert!(
        plan.contains("largest first, each after the tables it references")
            && plan.contains(r#"binary; after "fk"."parent")"#),
        "{plan}"
    );
    let out = dry(&["--json"]);
    let tables = json(&out)["tables"].clone();
    let child = (tables.as_array().unwrap().iter())
        .find(|t| t["table"] == r#""fk"."child""#)
        .unwrap();
    assert_eq!(
        child["after"],
        serde_json::json!([r#""fk"."parent""#]),
        "{tables}"
    );
    // One job at a time: largest first would take fk.child before fk.parent (23503); two at
    // a time, fk.child's rows would not find fk.parent's uncommitted ones.
    for jobs in ["1", "2"] {
        for db in &dsts {
            let cl = if db == &dsts[0] {
                &c.dest[0]
            } else {
                &c.dest[1]
            };
            cl.connect(db)
                .batch_execute("TRUNCATE fk.parent, fk.child, fk.a, fk.b")
                .unwrap();
        }
        // A new job each time (the last one's state file would refuse it).
        let _ = fs::remove_file(&state.0);
        let out = job(
            &from,
            &to,
            &["--schema", "fk", "--jobs", jobs, "--state", state.arg()],
        );
        assert_exit(&out, 0);
        for table in ["fk.parent", "fk.child", "fk.a", "fk.b"] {
            let expected = digest(&c.source, &src, table);
            for (cl, db) in c.dest.iter().zip(&dsts) {
                assert_eq!(
                    digest(cl, db, table),
                    expected,
                    "--jobs {jobs}: {table} on {db}"
                );
            }
        }
    }
}

/// A referenced table and the table that references it, both in the job and emptied first
/// (`--truncate`), are emptied together with one `TRUNCATE` (a `TRUNCATE` of the parent alone is
/// refused, 0A000; its `DELETE` fails, 23503, where the child's rows reference it): copied
/// into empty tables, and again over the rows the first copy left, with or without
/// `--keep-going`. (The group in depth: `job_fk_refresh.rs`.)
#[test]
fn job_selection_a_referenced_table_and_its_referencing_table_are_emptied_together() {
    let c = clusters();
    let src = database(&c.source, &format!("{FK}{FK_FILL}"));
    let dsts = [database(&c.dest[0], FK), database(&c.dest[1], FK)];
    let from = c.source.conninfo(&src);
    let to: Vec<String> = c
        .dest
        .iter()
        .zip(&dsts)
        .map(|(cl, db)| cl.conninfo(db))
        .collect();
    let state = TempPath::new("fk-truncate.state");
    let all_copied = || {
        for (cl, db) in c.dest.iter().zip(&dsts) {
            for table in ["fk.parent", "fk.child"] {
                assert_eq!(
                    digest(cl, db, table),
                    digest(&c.source, &src, table),
                    "{table}"
                );
            }
        }
    };
    // --truncate into empty tables: nothing references the parent's rows.
    let args = [
        "fk.parent",
        "fk.child",
        "--truncate",
        "--state",
        state.arg(),
    ];
    let out = job(&from, &to, &args);
    assert_exit(&out, 0);
    all_copied();
    // Again, twice: the children's rows (copied above) reference the parent's, on both
    // destinations; emptied together, both are copied again.
    for extra in [&["--keep-going"][..], &[][..]] {
        let out = job(&from, &to, &[&args[..], extra].concat());
        assert_exit(&out, 0);
        all_copied();
    }
}

#[test]
fn job_selection_a_resume_refuses_a_destination_that_cannot_say_who_it_is_spelled_otherwise() {
    let c = clusters();
    role(&c.dest[0], "job_writer");
    const ODD: &str = "CREATE SCHEMA odd; CREATE TABLE odd.a (id int);";
    let src = database(
        &c.source,
        &format!("{ODD} INSERT INTO odd.a SELECT generate_series(1, 100);"),
    );
    // Destination 1 as a role that may not read pg_control_system() there.
    let dst = database(
        &c.dest[0],
        &format!(
            "{ODD}
             REVOKE EXECUTE ON FUNCTION pg_catalog.pg_control_system() FROM PUBLIC;
             GRANT USAGE ON SCHEMA odd TO job_writer;
             GRANT SELECT, INSERT, TRUNCATE ON odd.a TO job_writer;"
        ),
    );
    let d2db = database(&c.dest[1], ODD);
    let (from, d2) = (c.source.conninfo(&src), c.dest[1].conninfo(&d2db));
    let tcp = format!(
        "host={} port={} user=job_writer dbname={dst}",
        c.dest[0].host(),
        c.dest[0].port()
    );
    let socket = format!(
        "host={} port={} user=job_writer dbname={dst}",
        c.dest[0].socket_dir().display(),
        c.dest[0].port()
    );
    let state = TempPath::new("unidentified.state");
    let job = |d1: &str, resume: bool| {
        let mut args = vec![
            "--json", "table", "--schema", "odd", "--from", &from, "--to", d1, "--to", &d2,
            "--state",
        ];
        args.push(state.arg());
        if resume {
            args.push("--resume");
        }
        run(&args)
    };
    assert_exit(&job(&tcp, false), 0);
    // Spelled otherwise, it could be a destination the file records: refused, nothing copied.
    let out = job(&socket, true);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("cannot say which server it is") && stderr.contains("pg_control_system"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &dst, "odd.a"), 100);
    assert_eq!(count(&c.dest[1], &d2db, "odd.a"), 100);
    // Spelled as before, it is resumed.
    let out = job(&tcp, true);
    assert_exit(&out, 0);
    assert!(
        json(&out)["tables"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "already done"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(count(&c.dest[0], &dst, "odd.a"), 100);
    // Now it can say which server it is: its records, under its connection string, no longer
    // match it, and a resume would copy its tables again: refused, nothing copied.
    c.dest[0]
        .connect(&dst)
        .batch_execute("GRANT EXECUTE ON FUNCTION pg_catalog.pg_control_system() TO PUBLIC")
        .unwrap();
    let out = job(&tcp, true);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("records a destination by its connection string"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &dst, "odd.a"), 100);
}

/// A resume is of the same selection, in whatever order it is given: the partitions of a table,
/// then the partitioned table itself, would be its rows twice (what the first recorded done
/// does not name the second's tables).
#[test]
fn job_selection_a_resume_of_another_selection_is_refused() {
    let c = clusters();
    let src = database(
        &c.source,
        &format!("{PARTS} INSERT INTO parts SELECT g, 'n' || g FROM generate_series(1, 3000) g;"),
    );
    let dst = database(&c.dest[0], PARTS);
    let (from, to) = (c.source.conninfo(&src), vec![c.dest[0].conninfo(&dst)]);
    let state = TempPath::new("selection.state");
    let out = job(&from, &to, &["parts_1", "parts_2", "--state", state.arg()]);
    assert_exit(&out, 0);
    // The same selection in another order: resumed, nothing copied again.
    let out = job(
        &from,
        &to,
        &["parts_2", "parts_1", "--state", state.arg(), "--resume"],
    );
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[0], &dst, "parts"), 3000);
    // The partitioned table: refused, nothing copied.
    let out = job(&from, &to, &["parts", "--state", state.arg(), "--resume"]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("was written for another selection"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &dst, "parts"), 3000);
    // A job of every table is said so, not as "()" (jobs41 F3).
    let every = TempPath::new("every-table.state");
    let dst = database(&c.dest[0], PARTS);
    let to = vec![c.dest[0].conninfo(&dst)];
    assert_exit(&job(&from, &to, &["--state", every.arg()]), 0);
    let out = job(&from, &to, &["parts", "--state", every.arg(), "--resume"]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("another selection (every table: no TABLE nor pattern), not "),
        "{}",
        text(&out.stderr)
    );
}

/// A resume may add `--exclude-table` patterns to leave out a table the earlier run did not
/// begin (one created on the source since, in a selected schema: the resume failed on it, and
/// leaving it out was refused as another selection, a dead end) or committed everywhere — not one
/// it began and did not finish, and the state file keeps the earlier selection.
#[test]
fn job_selection_a_resume_may_leave_out_a_table_the_earlier_run_did_not_begin() {
    let c = clusters();
    let schema = "CREATE SCHEMA app; CREATE TABLE app.t1 (id int); CREATE TABLE app.t2 (id int);";
    let src = database(
        &c.source,
        &format!(
            "{schema} INSERT INTO app.t1 SELECT generate_series(1, 300);
             INSERT INTO app.t2 SELECT generate_series(1, 200);"
        ),
    );
    let dst = database(
        &c.dest[0],
        &format!("{schema} ALTER TABLE app.t2 ADD CONSTRAINT nope CHECK (id < 0);"),
    );
    let (from, to) = (c.source.conninfo(&src), vec![c.dest[0].conninfo(&dst)]);
    let state = TempPath::new("narrowed.state");
    let args = ["--schema", "app", "--jobs", "1", "--state", state.arg()];
    let out = job(&from, &to, &args);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(count(&c.dest[0], &dst, "app.t1"), 300);
    c.dest[0]
        .connect(&dst)
        .batch_execute("ALTER TABLE app.t2 DROP CONSTRAINT nope")
        .unwrap();
    // Someone's scratch table, on the source only.
    c.source
        .connect(&src)
        .batch_execute("CREATE TABLE app.scratch (id int); INSERT INTO app.scratch VALUES (1)")
        .unwrap();
    let resume = |extra: &[&str]| {
        let mut all = args.to_vec();
        all.extend(extra);
        all.push("--resume");
        job(&from, &to, &all)
    };
    // The table the earlier run began and did not finish: refused, nothing copied.
    let out = resume(&[
        "--exclude-table",
        "app.t2",
        "--exclude-table",
        "app.scratch",
    ]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("leaves out \"app\".\"t2\", which the earlier run began"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &dst, "app.t2"), 0);
    // The new table and a done one left out: the rest copied, each left out said.
    let out = resume(&[
        "--exclude-table",
        "app.scratch",
        "--exclude-table",
        "APP.T1",
    ]);
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("\"app\".\"scratch\": left out by --exclude-table on this resume (the earlier run did not begin it)")
            && stderr.contains("\"app\".\"t1\": left out by --exclude-table on this resume (the earlier run committed it on every destination)"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &dst, "app.t1"), 300);
    assert_eq!(count(&c.dest[0], &dst, "app.t2"), 200);
    // The state file keeps the earlier selection: resumed as it was given first, the scratch
    // table is the one left to copy (it fails: it is on the source only).
    let out = resume(&[]);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("app.scratch\" does not exist"), "{stderr}");
    assert_eq!(count(&c.dest[0], &dst, "app.t1"), 300);
    assert_eq!(count(&c.dest[0], &dst, "app.t2"), 200);
}

/// A table named in a schema that does not exist is a usage error naming it (exit 2), as one
/// that does not exist in a schema that does (it exited 1) — one table named as several (one
/// table alone exited 1, two exited 2).
#[test]
fn job_selection_a_table_in_a_missing_schema_is_a_usage_error() {
    let c = clusters();
    let src = database(&c.source, "CREATE TABLE a (i int);");
    let dst = database(&c.dest[0], "CREATE TABLE a (i int);");
    for (tables, named) in [
        (&["nosuchschema.t", "a"][..], "nosuchschema"),
        (&["nosuchschema.t"][..], "nosuchschema"),
        (&["itemz", "a"][..], "\"itemz\""),
        (&["itemz"][..], "\"itemz\""),
    ] {
        let mut args = vec!["table"];
        args.extend(tables);
        let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
        args.extend(["--from", &from, "--to", &to]);
        let out = run(&args);
        assert_exit(&out, 2);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(named)
                && (stderr.contains("source table") || stderr.contains("not on the source")),
            "{tables:?}: {stderr}"
        );
    }
}

/// A destination relation COPY cannot write into (a materialized view, a view without an
/// `INSTEAD OF INSERT` trigger) is refused while planning, naming it and the server's 42809:
/// the job stops before anything is copied (it was found only at that table's COPY, after the
/// others had committed: partial, exit 4). A view with such a trigger takes the rows.
#[test]
fn job_selection_a_destination_matview_or_plain_view_is_refused_before_anything_is_copied() {
    let c = clusters();
    let tables = "CREATE TABLE big (id int); CREATE TABLE m (id int); CREATE TABLE v (id int); \
                  CREATE TABLE w (id int);";
    let src = database(
        &c.source,
        &format!(
            "{tables} INSERT INTO big SELECT generate_series(1, 5000); \
             INSERT INTO m VALUES (1), (2); INSERT INTO v VALUES (3); INSERT INTO w VALUES (4);"
        ),
    );
    // Destination 1: tables, and `w` a view that writes through its INSTEAD OF trigger.
    // Destination 2: `m` a materialized view and `v` a plain view.
    let through = "CREATE TABLE big (id int); CREATE TABLE m (id int); CREATE TABLE v (id int); \
                   CREATE TABLE w_rows (id int); CREATE VIEW w AS SELECT id FROM w_rows; \
                   CREATE FUNCTION w_insert() RETURNS trigger LANGUAGE plpgsql AS \
                   $$ BEGIN INSERT INTO w_rows VALUES (NEW.id); RETURN NEW; END $$; \
                   CREATE TRIGGER w_insert INSTEAD OF INSERT ON w \
                   FOR EACH ROW EXECUTE FUNCTION w_insert();";
    let d1 = database(&c.dest[0], through);
    let d2 = database(
        &c.dest[1],
        "CREATE TABLE big (id int); CREATE TABLE w (id int); \
         CREATE MATERIALIZED VIEW m AS SELECT 1::int AS id; CREATE VIEW v AS SELECT 1::int AS id;",
    );
    let from = c.source.conninfo(&src);
    let to = [c.dest[0].conninfo(&d1), c.dest[1].conninfo(&d2)];
    let out = job(&from, &to, &["big", "m", "v", "w", "--json"]);
    let stderr = text(&out.stderr);
    assert_exit(&out, 1);
    for (table, what) in [
        ("m", "is a materialized view there"),
        ("v", "is a view without an INSTEAD OF INSERT trigger there"),
    ] {
        assert!(
            stderr.lines().any(|line| line.contains(&format!("\"public\".\"{table}\" → destination 2"))
                && line.contains(&format!("SQLSTATE 42809: table \"public\".\"{table}\": {what}: COPY cannot write into it"))),
            "{table}: {stderr}"
        );
    }
    // The trigger's view takes rows, but its COPY counts every row handed to the trigger: a
    // row the trigger skips would go unnoticed, so it is refused without --allow-count-mismatch.
    assert!(
        stderr.contains("its COPY counts the rows it hands to its INSTEAD OF INSERT trigger"),
        "{stderr}"
    );
    // Nothing copied anywhere.
    assert_eq!(count(&c.dest[0], &d1, "big"), 0, "{stderr}");
    assert_eq!(count(&c.dest[1], &d2, "big"), 0, "{stderr}");
    // Under --keep-going the rest is copied, the trigger's view included; exit 4.
    let out = job(
        &from,
        &to,
        &[
            "big",
            "m",
            "v",
            "w",
            "--keep-going",
            "--allow-count-mismatch",
        ],
    );
    let stderr = text(&out.stderr);
    assert_exit(&out, 4);
    // Copied into unchecked, and said so.
    assert!(stderr.contains("its rows are not counted"), "{stderr}");
    assert_eq!(count(&c.dest[0], &d1, "big"), 5000, "{stderr}");
    assert_eq!(count(&c.dest[1], &d2, "big"), 5000, "{stderr}");
    assert_eq!(count(&c.dest[0], &d1, "w_rows"), 1, "{stderr}");
    assert_eq!(count(&c.dest[0], &d1, "m"), 2, "{stderr}");
    // Emptied first, the trigger's view cannot be: refused while planning (TRUNCATE failed at
    // its turn, after other tables committed), in a job and for one table.
    let out = job(&from, &to, &["big", "w", "--truncate", "--dry-run"]);
    // As the run ends: refused while planning, nothing copied (exit 1).
    assert_exit(&out, 1);
    assert!(
        text(&out.stdout).contains("is a view there: it cannot be emptied first"),
        "{}",
        text(&out.stdout)
    );
    // And says so last on stderr, naming what is refused where (stderr was empty at exit 1).
    let last = text(&out.stderr)
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned();
    assert!(
        last.starts_with("copyman: the run would fail (exit 1): 1 table copy refused; destination")
            && last.contains("\"public\".\"w\""),
        "{last}"
    );
    let out = job(&from, &to[..1], &["w", "--truncate"]);
    assert_exit(&out, 1);
    assert!(
        text(&out.stderr).contains("is a view there: --truncate cannot empty it"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &d1, "w_rows"), 1);
}

/// One table into a destination materialized view is refused before any COPY starts, with the
/// server's 42809 (exit 1, nothing anywhere).
#[test]
fn job_selection_one_table_into_a_destination_matview_is_refused_by_planning() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE m (id int); INSERT INTO m VALUES (1);",
    );
    let d1 = database(&c.dest[0], "CREATE TABLE m (id int);");
    let d2 = database(
        &c.dest[1],
        "CREATE MATERIALIZED VIEW m AS SELECT 1::int AS id;",
    );
    let from = c.source.conninfo(&src);
    let to = [c.dest[0].conninfo(&d1), c.dest[1].conninfo(&d2)];
    let out = job(&from, &to, &["m", "--json"]);
    let stderr = text(&out.stderr);
    assert_exit(&out, 1);
    assert!(
        stderr.contains("destination 2") && stderr.contains("is a materialized view there"),
        "{stderr}"
    );
    let doc = json(&out);
    assert_eq!(doc["sqlstate"], "42809", "{stderr}");
    assert_eq!(doc["server"], "destination 2", "{doc}");
    assert!(
        doc["endpoint"].as_str().is_some_and(|e| e.contains(&d2)),
        "{doc}"
    );
    assert_eq!(count(&c.dest[0], &d1, "m"), 0, "{stderr}");
}

/// A resume from another source than the run it resumes (a mistyped host, a staging copy of the
/// schema) copied the rest from there: one table from each server, exit 0. The state file names
/// the source as it names destinations; a resume from another is refused, from the same one
/// goes on.
#[test]
fn job_selection_a_resume_from_another_source_is_refused() {
    let c = clusters();
    let ddl = "CREATE TABLE a (id int, v text); CREATE TABLE b (id int)";
    let src = database(
        &c.source,
        &format!("{ddl}; INSERT INTO a SELECT g, 'first' FROM generate_series(1, 10) g"),
    );
    let other = database(
        &c.dest[1],
        &format!(
            "{ddl}; INSERT INTO a SELECT g, 'other' FROM generate_series(1, 7) g;
                  INSERT INTO b VALUES (2), (3)"
        ),
    );
    // `b` fails on the destination the first time (a trigger), and is left for a resume.
    let dst = database(
        &c.dest[0],
        &format!(
            "{ddl}; CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS
               $$ BEGIN RAISE EXCEPTION 'disk full' USING ERRCODE = '53100'; END $$;
             CREATE TRIGGER t BEFORE INSERT ON b FOR EACH ROW EXECUTE FUNCTION boom();"
        ),
    );
    c.source
        .connect(&src)
        .batch_execute("INSERT INTO b VALUES (1)")
        .unwrap();
    let state = TempPath::new("sources.state");
    let job = |from: &str, resume: bool| {
        let to = c.dest[0].conninfo(&dst);
        let mut args = vec![
            "table",
            "a",
            "b",
            "--from",
            from,
            "--to",
            &to,
            "--state",
            state.arg(),
            "--keep-going",
        ];
        if resume {
            args.push("--resume");
        }
        run(&args)
    };
    assert_exit(&job(&c.source.conninfo(&src), false), 4);
    c.dest[0]
        .connect(&dst)
        .batch_execute("DROP TRIGGER t ON b")
        .unwrap();
    let out = job(&c.dest[1].conninfo(&other), true);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("was written by a run from another source"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &dst, "b"), 0);
    assert_exit(&job(&c.source.conninfo(&src), true), 0);
    assert_eq!(
        count(&c.dest[0], &dst, "(SELECT 1 FROM a WHERE v = 'first')"),
        10
    );
    assert_eq!(count(&c.dest[0], &dst, "(SELECT 1 FROM b WHERE id = 1)"), 1);
    assert_eq!(count(&c.dest[0], &dst, "b"), 1);
}

/// A pattern that matches nothing is said, and in `--json`'s notes: above all an
/// `--exclude-table` (a misspelt one leaves in the table it was meant to leave out: under
/// `--truncate`, the destination's own table emptied and written over, without a word). The
/// job goes on with what the other patterns select. Said under `--quiet` too, as its help
/// promises (it hid a job's notes: a cron job's misspelt exclusion said nothing).
#[test]
fn job_selection_a_pattern_that_matches_nothing_is_said() {
    let c = clusters();
    let schema = "CREATE TABLE keep (i int); CREATE TABLE audit_log (i int);";
    let src = database(
        &c.source,
        &format!("{schema} INSERT INTO keep VALUES (1); INSERT INTO audit_log VALUES (2);"),
    );
    let dst = database(&c.dest[0], schema);
    let out = run(&[
        "table",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&dst),
        "--table",
        "k*",
        "--table",
        "a*",
        "--table",
        "nomatch*",
        "--schema",
        "nosuchschema",
        "--exclude-table",
        "audit_logs",
        "--exclude-table",
        "audit_lo?",
        "--json",
        "--quiet",
    ]);
    assert_exit(&out, 0);
    let said = text(&out.stderr);
    for expected in [
        "--exclude-table audit_logs matches no relation on the source: it leaves nothing out",
        "--table nomatch* matches no table on the source",
        "--schema nosuchschema matches no schema on the source",
    ] {
        assert!(said.contains(expected), "{expected}: {said}");
        assert!(text(&out.stdout).contains(expected), "--json: {expected}");
    }
    // Patterns that match are not said.
    assert!(
        !said.contains("audit_lo?") && !said.contains("--table k*"),
        "{said}"
    );
    assert_eq!(count(&c.dest[0], &dst, "keep"), 1);
    assert_eq!(count(&c.dest[0], &dst, "audit_log"), 0);
    // Under a schema on the search path, the note gives no other name to try: the pattern saw
    // its tables (it said "say public.nosuch", jobs41 F6).
    let fresh = database(&c.dest[0], schema);
    let out = run(&[
        "table",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&fresh),
        "--schema",
        "public",
        "--exclude-table",
        "nosuch",
        "--dry-run",
    ]);
    assert_exit(&out, 0);
    let said = text(&out.stderr) + &text(&out.stdout);
    assert!(
        said.contains("public among them: none of its tables is named so")
            && !said.contains("say public.nosuch"),
        "{said}"
    );
}

/// A table created in a selected schema while the job plans (after the job listed its tables,
/// inside its snapshot) was neither copied nor mentioned: "2 of 2 tables done", exit 0. It is
/// said, by name; the tables listed are copied.
#[test]
fn job_selection_a_table_created_while_the_job_plans_is_said() {
    let c = clusters();
    let schema = "CREATE SCHEMA s; CREATE TABLE s.a (id int); CREATE TABLE s.b (id int);";
    let src = database(
        &c.source,
        &format!("{schema} INSERT INTO s.a VALUES (1); INSERT INTO s.b VALUES (2);"),
    );
    let dst = database(&c.dest[0], schema);
    let from = c.source.conninfo(&src);
    let to = c.dest[0].conninfo(&dst);
    let state = TempPath::new("created-while-planning.state");
    let args = [
        "table",
        "--schema",
        "s",
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
        .batch_execute("CREATE TABLE s.late (id int); INSERT INTO s.late VALUES (5);")
        .unwrap();
    let out = paused.resume();
    assert_exit(&out, 0);
    let said = text(&out.stderr);
    assert!(
        said.contains("late") && said.contains("created while the job planned: not copied"),
        "{said}"
    );
    assert_eq!(count(&c.dest[0], &dst, "s.a"), 1);
    assert_eq!(count(&c.dest[0], &dst, "s.b"), 1);
}

/// A table that belongs to an extension is left to `CREATE EXTENSION`, as pg_dump leaves it:
/// the default selection, `--schema` and patterns pass it by; named, it is copied. (Its rows
/// were appended to the ones the extension made there: every row twice, or a unique key
/// failed the job.) `plpgsql`, in every database, stands for the extension.
#[test]
fn job_selection_leaves_an_extensions_tables_to_the_extension_unless_named() {
    let c = clusters();
    const SCHEMA: &str = "CREATE TABLE app (id int); CREATE TABLE ext_t (id int);";
    let src = database(
        &c.source,
        &format!(
            "{SCHEMA} INSERT INTO app SELECT generate_series(1, 5);
             INSERT INTO ext_t SELECT generate_series(1, 3);
             ALTER EXTENSION plpgsql ADD TABLE ext_t;"
        ),
    );
    // What the extension's script made there (a row more than the source's: told apart).
    let dst = database(
        &c.dest[0],
        &format!("{SCHEMA} INSERT INTO ext_t SELECT generate_series(1, 4);"),
    );
    let (from, to) = (c.source.conninfo(&src), vec![c.dest[0].conninfo(&dst)]);
    let state = TempPath::new("extension-tables.state");
    for selection in [&[][..], &["--schema", "public"], &["--table", "*"]] {
        // (The default selection appends into the empty table: --truncate needs a selection.)
        let mut extra = vec!["--state", state.arg()];
        if !selection.is_empty() {
            extra.push("--truncate");
        }
        extra.extend(selection);
        let out = job(&from, &to, &extra);
        assert_exit(&out, 0);
        assert_eq!(count(&c.dest[0], &dst, "app"), 5, "{selection:?}");
        assert_eq!(
            count(&c.dest[0], &dst, "ext_t"),
            4,
            "{selection:?}: left alone"
        );
        let _ = fs::remove_file(&state.0);
    }
    let out = job(&from, &to, &["ext_t", "--state", state.arg(), "--truncate"]);
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[0], &dst, "ext_t"), 3);
}

/// Patterns without a wildcard are matched as the names they are: `x[]` as pg_dump reads it
/// (its brackets escaped: it failed the job with an invalid regular expression), a name longer
/// than the 63 bytes a table name holds matches nothing (it matched the table named by its
/// first 63), and a pattern the server cannot read as a regular expression is a usage error.
#[test]
fn job_selection_names_without_wildcards_match_exactly_what_they_say() {
    let c = clusters();
    let long = "l".repeat(63);
    let tables = format!(
        r#"CREATE TABLE "x[]" (i int); CREATE TABLE {long} (i int); CREATE TABLE b (i int);"#
    );
    let src = database(&c.source, &tables);
    let dst = database(&c.dest[0], &tables);
    let (from, to) = (c.source.conninfo(&src), vec![c.dest[0].conninfo(&dst)]);
    let planned = |extra: &[&str]| -> Vec<String> {
        let out = job(&from, &to, &[&["--json", "--dry-run"][..], extra].concat());
        assert_exit(&out, 0);
        let plan = json(&out);
        plan["tables"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["table"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(planned(&["--table", "x[]"]), [r#""public"."x[]""#]);
    let mut left = planned(&["--exclude-table", "x[]"]);
    left.sort();
    assert_eq!(
        left,
        [
            r#""public"."b""#.to_owned(),
            format!(r#""public"."{long}""#)
        ]
    );
    let too_long = format!("{long}_archive");
    let out = job(&from, &to, &["--dry-run", "--table", &too_long]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("no table matches"),
        "{}",
        text(&out.stderr)
    );
    let out = job(&from, &to, &["--dry-run", "--table", "x["]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("invalid regular expression"),
        "{}",
        text(&out.stderr)
    );
}

/// A table named without its schema that is off the search path (`orders`, in `sales`): one
/// table and a job each say the source's 42P01 and where tables of that name are; the job
/// names the source, and `--json` carries the SQLSTATE and the server (it said a bare
/// "relation … does not exist", neither in `--json`).
#[test]
fn job_selection_a_table_off_the_search_path_is_said_with_its_schema() {
    let c = clusters();
    let schema =
        "CREATE SCHEMA sales; CREATE TABLE sales.orders (a int); CREATE TABLE items (a int);";
    let src = database(&c.source, schema);
    let d = database(&c.dest[0], schema);
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&d));
    for tables in [&["orders"][..], &["orders", "items"]] {
        let mut args = vec!["--json", "table"];
        args.extend(tables);
        args.extend(["--from", &from, "--to", &to]);
        let out = run(&args);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("SQLSTATE 42P01")
                && stderr.contains("off the search path: sales.orders")
                // Typed in lower case: nothing folded (conn46 F1).
                && !stderr.contains("fold to lower case"),
            "{tables:?}: {stderr}"
        );
        let doc = json(&out);
        assert_eq!(doc["sqlstate"], "42P01", "{tables:?}: {doc}");
        assert_eq!(doc["server"], "source", "{tables:?}: {doc}");
        assert_eq!(count(&c.dest[0], &d, "items"), 0);
    }
}

/// One table named without the quotes its capitals need (`Sales.Orders` for `"Sales"."Orders"`)
/// is told how to spell it, as a job's pattern is (schema45 F4: only `schema "sales" does not
/// exist`); exit 2.
#[test]
fn one_table_named_without_its_quotes_is_told_how_to_spell_it() {
    let c = clusters();
    let schema = r#"CREATE SCHEMA "Sales"; CREATE TABLE "Sales"."Orders" (a int);"#;
    let src = database(&c.source, schema);
    let d = database(&c.dest[0], schema);
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&d));
    let out = run(&["table", "Sales.Orders", "--from", &from, "--to", &to]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            r#"schema "sales" does not exist (a name's letters fold to lower case unless it is quoted: the source has "Sales"."Orders"; give '"Sales"."Orders"')"#
        ),
        "{stderr}"
    );
}

/// One table to a file with a job's option (`--max-rate`, `--verify`): it said "a job of many
/// tables copies between servers" for the one table given. It says which option made a job.
#[test]
fn one_table_to_a_file_with_a_jobs_option_names_the_option() {
    let c = clusters();
    let src = database(&c.source, "CREATE TABLE a (i int);");
    let from = c.source.conninfo(&src);
    for (option, value) in [("--max-rate", Some("1M")), ("--verify", None)] {
        let mut args = vec!["table", "a", "--from", &from, "--to", "-", option];
        args.extend(value);
        let out = run(&args);
        assert_exit(&out, 2);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(&format!(
                "{option} given: a job's options copy between servers"
            )) && !stderr.contains("many tables"),
            "{stderr}"
        );
    }
}

/// A table whose values live in TOAST weighs what its copy reads: its size with its TOAST
/// (`pg_table_size`), not its heap's — in the job's order (largest first), its dry run and its
/// progress (a 5 MB table of large values listed as 8 KiB, after a table of 700 kB, and its
/// bar at 100% while its data went through).
#[test]
fn a_tables_toast_counts_in_its_size_and_the_jobs_order() {
    let c = clusters();
    let schema = "CREATE TABLE toasty (id int, v text); CREATE TABLE heapy (id int);";
    let src = database(
        &c.source,
        &format!(
            "{schema} ALTER TABLE toasty ALTER v SET STORAGE EXTERNAL; \
             INSERT INTO toasty SELECT g, repeat(md5(g::text), 3000) FROM generate_series(1, 50) g; \
             INSERT INTO heapy SELECT generate_series(1, 20000);"
        ),
    );
    let dst = database(&c.dest[0], schema);
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
    let out = run(&[
        "--json",
        "table",
        "toasty",
        "heapy",
        "--from",
        &from,
        "--to",
        &to,
        "--dry-run",
    ]);
    assert_exit(&out, 0);
    let doc = json(&out);
    let tables = doc["tables"].as_array().expect("tables");
    assert_eq!(tables[0]["table"], "\"public\".\"toasty\"", "{doc}");
    let size = |i: usize| tables[i]["size"].as_u64().unwrap_or_default();
    assert!(size(0) > 4_000_000 && size(0) > size(1), "{doc}");
    // Its rows too, as the source's statistics count them (progress62 F10: sizes only).
    c.source.connect(&src).batch_execute("ANALYZE").unwrap();
    let mut args = vec![
        "table",
        "heapy",
        "toasty",
        "--from",
        &from,
        "--to",
        &to,
        "--dry-run",
    ];
    let out = run(&args);
    assert_exit(&out, 0);
    let plan = text(&out.stdout);
    assert!(
        plan.contains(" (") && plan.contains(", about 20,000 rows, "),
        "{plan}"
    );
    args.insert(0, "--json");
    let doc = json(&run(&args));
    assert_eq!(doc["tables"][1]["estimated_rows"], 20_000, "{doc}");
}

/// A table name's control characters are written as SQL's Unicode escapes (`U&"…"`), in the
/// dry run's plan and in a run's summary alike: an escape sequence in a name reached the terminal
/// (jobs37 F2); then a line break broke the one-line-per-table plan and summary, and an ESC was
/// shown `\x1b` inside a quoted name, which names another table when pasted into psql (names42
/// F5). The names then still reach the server as the tables they are: copied, verified, resumed.
#[test]
fn control_characters_in_names_are_written_as_unicode_escapes() {
    let c = clusters();
    let tables = "CREATE TABLE \"esc\u{1b}[31mred\" (id int); CREATE TABLE \"new\nline\" (id int);
                  CREATE TABLE plain (id int);";
    let src = database(
        &c.source,
        &format!("{tables} INSERT INTO \"new\nline\" SELECT generate_series(1, 5);"),
    );
    let d = database(&c.dest[0], tables);
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&d));
    let state = TempPath::new("control.state");
    let job = |extra: &[&str]| {
        let mut args = vec!["table", "--schema", "public", "--from", &from, "--to", &to];
        args.extend(extra);
        run(&args)
    };
    let out = job(&["--dry-run"]);
    assert_exit(&out, 0);
    let plan = text(&out.stdout);
    assert!(
        !plan.contains('\u{1b}')
            && plan.contains(r#""public".U&"esc\001b[31mred""#)
            && plan.contains(r#"COPY "public".U&"new\000aline""#),
        "{plan:?}"
    );
    let out = job(&["--verify", "-v", "--state", state.arg()]);
    assert_exit(&out, 0);
    let said = text(&out.stderr);
    assert!(
        said.contains(r#""public".U&"new\000aline" → destination 1"#)
            && said.contains("committed, 5 rows, verified")
            && !said.contains('\u{1b}'),
        "{said}"
    );
    assert_eq!(count(&c.dest[0], &d, "\"new\nline\""), 5);
    let out = job(&["--resume", "--state", state.arg()]);
    assert_exit(&out, 0);
    assert!(
        text(&out.stderr).contains("3 of 3 tables"),
        "{}",
        text(&out.stderr)
    );
    // The name as printed, given back as a pattern: that table (it matched nothing: recheck43
    // F1).
    let out = run(&[
        "table",
        "-t",
        r#"public.U&"new\000aline""#,
        "-t",
        "plain",
        "--from",
        &from,
        "--to",
        &to,
        "--dry-run",
    ]);
    assert_exit(&out, 0);
    let plan = text(&out.stdout);
    assert!(
        plan.contains(r#"COPY "public".U&"new\000aline""#) && !plan.contains("esc"),
        "{plan}"
    );
}

/// A pattern that misses only for case folding or a dot taken as pattern syntax says the name
/// the source has and the quoting that selects it (it said only "no table matches"; jobs37 F4).
#[test]
fn a_pattern_that_misses_by_case_or_a_dot_says_the_name_and_its_quoting() {
    let c = clusters();
    let tables = "CREATE SCHEMA \"Mixed Case\"; CREATE TABLE \"Mixed Case\".t (id int);
                  CREATE TABLE \"dot.table\" (id int);";
    let src = database(&c.source, tables);
    let d = database(&c.dest[0], tables);
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&d));
    let refused = |flag: &str, pattern: &str| {
        let out = run(&[
            "table",
            flag,
            pattern,
            "--from",
            &from,
            "--to",
            &to,
            "--dry-run",
        ]);
        assert_exit(&out, 2);
        text(&out.stderr)
    };
    let said = refused("--schema", "Mixed Case");
    assert!(
        said.contains("no table matches the selection")
            && said.contains("--schema '\"Mixed Case\"'"),
        "{said}"
    );
    let said = refused("--table", "dot.table");
    assert!(said.contains("--table 'public.\"dot.table\"'"), "{said}");
    // The quoting it says selects it.
    let out = run(&[
        "table",
        "--schema",
        "\"Mixed Case\"",
        "--from",
        &from,
        "--to",
        &to,
        "--dry-run",
    ]);
    assert_exit(&out, 0);
}

/// What exclusions and schemas do beyond the tables they name is said (names42 F2, F4, F8):
/// partitions a schema took left out with their excluded partitioned table (pg_dump's -T keeps
/// them), an exclusion that matches only tables the selection does not take, a partitioned
/// table copied whole with a partition in a schema `--schema` does not take (pg_dump's -n
/// leaves its rows out; two jobs split by schema copied them twice), and a selection emptied by
/// an exclusion's partitions says why.
#[test]
fn job_selection_what_exclusions_and_schemas_take_beyond_their_names_is_said() {
    let c = clusters();
    let schema = "CREATE SCHEMA sales;
        CREATE TABLE parts (id int) PARTITION BY RANGE (id);
        CREATE TABLE parts_1 PARTITION OF parts FOR VALUES FROM (1) TO (101);
        CREATE TABLE sales.parts_x PARTITION OF parts FOR VALUES FROM (101) TO (201);
        CREATE TABLE t1 (i int); CREATE TABLE sales.t1 (i int);";
    let src = database(
        &c.source,
        &format!("{schema} INSERT INTO parts SELECT generate_series(1, 200);"),
    );
    let dst = database(&c.dest[0], schema);
    let to = [c.dest[0].conninfo(&dst)];
    let from = c.source.conninfo(&src);
    let said = |extra: &[&str], exit: i32| {
        let mut args = extra.to_vec();
        args.push("--dry-run");
        let out = job(&from, &to, &args);
        assert_exit(&out, exit);
        text(&out.stderr) + &text(&out.stdout)
    };
    let out = said(&["--schema", "public"], 0);
    assert!(
        out.contains(
            "\"public\".\"parts\": copied whole, with its partition \"sales\".\"parts_x\" in a \
             schema --schema does not take"
        ),
        "{out}"
    );
    let out = said(
        &["--schema", "public", "--exclude-table", "public.parts"],
        0,
    );
    assert!(
        out.contains(
            "\"public\".\"parts_1\": left out with its partitioned table \"public\".\"parts\", \
             which --exclude-table leaves out (pg_dump's -T would keep its rows): name it as a \
             TABLE"
        ),
        "{out}"
    );
    let out = said(&["--schema", "sales", "--exclude-table", "t1"], 0);
    assert!(
        out.contains(
            "--exclude-table t1 matches only \"public\".\"t1\", which the selection does not \
             take: it leaves nothing out (say sales.t1 for that schema's)"
        ),
        "{out}"
    );
    let out = said(&["--table", "parts*", "--exclude-table", "parts"], 2);
    assert!(
        out.contains("no table matches the selection")
            && out.contains(
                "\"public\".\"parts_1\": left out with its partitioned table \"public\".\"parts\""
            ),
        "{out}"
    );
    // --schema and --table together take what either takes, which pg_dump does not
    // (recheck42 F6).
    let out = said(&["-n", "sales", "-t", "public.t1"], 0);
    assert!(
        out.contains("--schema and --table select together")
            && out.contains("\"public\".\"t1\"")
            && out.contains("\"sales\".\"t1\""),
        "{out}"
    );
    // Nothing said where the exclusion takes what it names only.
    let out = said(&["--schema", "sales", "--exclude-table", "sales.t1"], 0);
    assert!(
        !out.contains("leaves nothing out") && !out.contains("left out with"),
        "{out}"
    );
    assert_eq!(count(&c.dest[0], &dst, "parts"), 0);
}

/// A pattern matching nothing is told why where the source has the name: its spelling (case,
/// a dot), or what patterns never select (a view, a system catalog) — which the hint had said
/// "does", advising the very pattern that was refused (names42 F1).
#[test]
fn job_selection_a_pattern_that_matches_nothing_is_told_why() {
    let c = clusters();
    let schema = r#"CREATE TABLE "Mixed" (i int); CREATE VIEW v_parts AS SELECT 1 AS i;
        CREATE SCHEMA app; CREATE SCHEMA audit; CREATE TABLE app.events (i int);
        CREATE TABLE audit.events (i int); CREATE TABLE app.small_01 (i int);
        CREATE TABLE app.small_02 (i int);"#;
    let src = database(&c.source, schema);
    let dst = database(&c.dest[0], schema);
    let to = [c.dest[0].conninfo(&dst)];
    let from = c.source.conninfo(&src);
    for (pattern, hint) in [
        (
            "Mixed",
            r#"public."Mixed" does (a pattern's letters fold to lower case"#,
        ),
        (
            "public.v_parts",
            "public.v_parts is a view, which patterns and schemas never select: name it as a \
             TABLE argument to copy its rows",
        ),
        ("pg_class", "pg_catalog.pg_class is a system catalog"),
        // A wildcard matching only a view (jobs66 F7: "no table matches", nothing more).
        (
            "v_*",
            "public.v_parts is a view, which patterns and schemas never select: name it as a \
             TABLE argument to copy its rows",
        ),
        // Off the search path, where a pattern without a schema never looks: every table it
        // would match there, not one of them blamed on case and dots (jobs49 F5).
        (
            "events",
            "app.events, audit.events match it off the source's search path (public), and a \
             pattern without a schema looks on the search path only, as pg_dump's -t: --table \
             'app.events' for one schema, --table '*.events' for all",
        ),
        (
            "small_0*",
            "app.small_01, app.small_02 match it off the source's search path (public), and a \
             pattern without a schema looks on the search path only, as pg_dump's -t: --table \
             'app.small_0*'",
        ),
    ] {
        let out = job(&from, &to, &["--table", pattern, "--dry-run"]);
        assert_exit(&out, 2);
        let said = text(&out.stderr);
        assert!(
            said.contains("no table matches the selection") && said.contains(hint),
            "{pattern}: {said}"
        );
    }
}
