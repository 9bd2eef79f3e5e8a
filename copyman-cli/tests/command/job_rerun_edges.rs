//! Reruns of a job and copies that wait on themselves: the state file names a destination as it
//! always has (an earlier run's file still resumes), a pattern spelled in capitals is the same
//! selection on `--resume`, "run again with --resume" is said only when a rerun can finish the
//! job (otherwise what to mend first), and a session of a copy waiting for a lock another
//! session of the same copy holds is cancelled at once instead of waiting for ever. Real
//! clusters, shared by the binary; a fresh database per test.

use crate::common;

use std::fs;

use common::*;

/// `system SYSID database OID` of `db` on `cluster`, asked directly.
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

// Point 1: one identity query; the state file's key byte for byte as before.

#[test]
fn a_state_file_written_by_an_earlier_copyman_still_resumes() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE a (id int); CREATE TABLE b (id int);
         INSERT INTO a SELECT generate_series(1, 300); INSERT INTO b SELECT generate_series(1, 70);",
    );
    // a is on the destination already (an earlier run committed it), b is not.
    let d1 = database(
        &c.dest[0],
        "CREATE TABLE a (id int); CREATE TABLE b (id int);
         INSERT INTO a SELECT generate_series(1, 300);",
    );
    let key = identity_key(&c.dest[0], &d1);
    // What copyman wrote before the identity query was shared (format 2, `system … database …`).
    let state = TempPath::new("earlier.state");
    fs::write(
        &state.0,
        format!(
            "copyman-job 2\nselection\t--table a --table b\nbegin\t\"public\".\"a\"\t{key}\n\
             done\t\"public\".\"a\"\t{key}\t300\n"
        ),
    )
    .unwrap();
    let out = run(&[
        "table",
        "--table",
        "a",
        "--table",
        "b",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&d1),
        "--state",
        state.arg(),
        "--resume",
    ]);
    assert_exit(&out, 0);
    // a was recognised as done on this destination (not copied twice); b was copied.
    assert_eq!(count(&c.dest[0], &d1, "a"), 300, "a not copied twice");
    assert_eq!(digest(&c.dest[0], &d1, "b"), digest(&c.source, &src, "b"));
    // The records this run appended name the destination by the same key, byte for byte.
    let written = fs::read_to_string(&state.0).unwrap();
    assert!(
        written.contains(&format!("done\t\"public\".\"b\"\t{key}\t70\n")),
        "{written}"
    );
}

// Point 2: a pattern spelled otherwise is the same selection on --resume.

#[test]
fn resume_with_a_pattern_in_capitals_resumes_the_same_selection() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE bulk (id int); CREATE TABLE odd (id int);
         INSERT INTO bulk SELECT generate_series(1, 1000); INSERT INTO odd SELECT generate_series(1, 10);",
    );
    let cache = TempPath::new("spelling-cache");
    fs::create_dir_all(&cache.0).unwrap();
    let state = TempPath::new("spelling.state");
    // With an explicit --state, then with the default state file (named for the selection).
    for explicit in [true, false] {
        // odd is missing on the destination: the first run copies bulk only.
        let d1 = database(&c.dest[0], "CREATE TABLE bulk (id int);");
        let job = |tables: [&str; 2], resume: bool| {
            let mut cmd = copyman();
            cmd.env("XDG_CACHE_HOME", &cache.0).args([
                "table",
                "--table",
                tables[0],
                "--table",
                tables[1],
                "--from",
                &c.source.conninfo(&src),
                "--to",
                &c.dest[0].conninfo(&d1),
                "--keep-going",
            ]);
            if explicit {
                cmd.args(["--state", state.arg()]);
            }
            if resume {
                cmd.arg("--resume");
            }
            cmd.output().unwrap()
        };
        let first = job(["bulk", "odd"], false);
        assert_exit(&first, 4);
        assert_eq!(count(&c.dest[0], &d1, "bulk"), 1000);
        c.dest[0]
            .connect(&d1)
            .batch_execute("CREATE TABLE odd (id int)")
            .unwrap();
        // BULK and "odd" name what bulk and odd name: the same selection.
        let again = job(["BULK", "\"odd\""], true);
        assert_exit(&again, 0);
        let stderr = text(&again.stderr);
        assert!(!stderr.contains("another selection"), "{stderr}");
        assert_eq!(
            count(&c.dest[0], &d1, "bulk"),
            1000,
            "bulk not copied twice"
        );
        assert_eq!(count(&c.dest[0], &d1, "odd"), 10);
        let _ = fs::remove_file(&state.0);
    }
}

// Point 3: "run again with --resume" only where a rerun can finish the job.

#[test]
fn a_table_missing_on_a_destination_is_said_to_be_mended_first_then_resume_finishes() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE here (id int); CREATE TABLE gone (id int);
         INSERT INTO here SELECT generate_series(1, 50); INSERT INTO gone SELECT generate_series(1, 5);",
    );
    let d1 = database(&c.dest[0], "CREATE TABLE here (id int);");
    let state = TempPath::new("missing.state");
    let job = |extra: &[&str]| {
        run(&[
            &[
                "table",
                "here",
                "gone",
                "--from",
                &c.source.conninfo(&src),
                "--to",
                &c.dest[0].conninfo(&d1),
                "--state",
                state.arg(),
            ][..],
            extra,
        ]
        .concat())
    };
    // The default policy: the plan finds gone missing and the job stops before copying.
    let out = job(&[]);
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("failed with an error a rerun meets again until it is mended")
            && stderr.contains("until it is mended (destination 1")
            && stderr.contains(": \"public\".\"gone\")")
            && stderr.contains("mend it first"),
        "{stderr}"
    );
    assert!(
        !stderr.contains(": run again with --resume to copy what is missing"),
        "advice a rerun cannot follow: {stderr}"
    );
    assert_eq!(count(&c.dest[0], &d1, "here"), 0, "nothing committed");
    // Mended as said, the resume finishes the job.
    c.dest[0]
        .connect(&d1)
        .batch_execute("CREATE TABLE gone (id int)")
        .unwrap();
    assert_exit(&job(&["--resume"]), 0);
    assert_eq!(count(&c.dest[0], &d1, "here"), 50);
    assert_eq!(count(&c.dest[0], &d1, "gone"), 5);
}

/// A job of every table of `public` from `from` to each of `to`, `--keep-going`, with its state
/// in `state`, and `extra` after.
fn every_table(
    from: &str,
    to: &[String],
    state: &TempPath,
    extra: &[&str],
) -> std::process::Output {
    let mut args = vec!["table", "-t", "public.*", "--from", from];
    for to in to {
        args.extend(["--to", to.as_str()]);
    }
    args.extend(["--state", state.arg(), "--keep-going"]);
    args.extend(extra);
    run(&args)
}

/// A table renamed on the source after a run that did not begin it (missing on the destination,
/// created there under the new name): the resume copies it under its new name, and a resume
/// after that finds nothing to copy (jobs49 F1: the old name, taken for a partition attached
/// since, was looked up and every later resume failed, 42P01, exit 4).
#[test]
fn a_table_renamed_between_resumes_leaves_the_job_resumable() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE a (id int); CREATE TABLE b (id int);
         INSERT INTO a SELECT generate_series(1, 50); INSERT INTO b SELECT generate_series(1, 5);",
    );
    let d1 = database(&c.dest[0], "CREATE TABLE a (id int);");
    let state = TempPath::new("renamed-between.state");
    let to = [c.dest[0].conninfo(&d1)];
    let job = |extra: &[&str]| every_table(&c.source.conninfo(&src), &to, &state, extra);
    assert_exit(&job(&[]), 4);
    c.source
        .connect(&src)
        .batch_execute("ALTER TABLE b RENAME TO b2")
        .unwrap();
    c.dest[0]
        .connect(&d1)
        .batch_execute("CREATE TABLE b2 (id int)")
        .unwrap();
    let out = job(&["--resume"]);
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[0], &d1, "b2"), 5);
    for extra in [&["--resume"][..], &["--resume", "--verify"][..]] {
        let out = job(extra);
        assert_exit(&out, 0);
    }
    assert_eq!(count(&c.dest[0], &d1, "a"), 50);
    assert_eq!(count(&c.dest[0], &d1, "b2"), 5);
}

/// A table whose copy failed and rolled back, renamed since on every server: the resume asks
/// the destination whether that copy committed, and copies the table under its new name (jobs49
/// F4: it was refused as "copied to destination 1 by the earlier run", though nothing of it
/// committed anywhere).
#[test]
fn a_table_rolled_back_then_renamed_is_copied_by_the_resume() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE a (id int); CREATE TABLE b (id int);
         INSERT INTO a SELECT generate_series(1, 50); INSERT INTO b SELECT generate_series(1, 5);",
    );
    // b's copy fails there (a CHECK no row meets), and rolls back.
    let d1 = database(
        &c.dest[0],
        "CREATE TABLE a (id int); CREATE TABLE b (id int CHECK (id > 100));",
    );
    let state = TempPath::new("rolled-back-renamed.state");
    let to = [c.dest[0].conninfo(&d1)];
    let job = |extra: &[&str]| every_table(&c.source.conninfo(&src), &to, &state, extra);
    assert_exit(&job(&[]), 4);
    assert_eq!(count(&c.dest[0], &d1, "b"), 0);
    c.source
        .connect(&src)
        .batch_execute("ALTER TABLE b RENAME TO b2")
        .unwrap();
    c.dest[0]
        .connect(&d1)
        .batch_execute("ALTER TABLE b RENAME TO b2; ALTER TABLE b2 DROP CONSTRAINT b_id_check")
        .unwrap();
    let out = job(&["--resume"]);
    assert_exit(&out, 0);
    assert!(
        !text(&out.stderr).contains("rows would be there twice"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &d1, "b2"), 5);
    assert_eq!(count(&c.dest[0], &d1, "a"), 50);
    assert_exit(&job(&["--resume", "--verify"]), 0);
}

/// A table committed on one destination and rolled back on the other, renamed since on every
/// server: the resume takes it as done where it committed and copies it where it did not
/// (recheck50 F1: every resume refused, "its rows would be there twice").
#[test]
fn a_table_committed_on_one_destination_then_renamed_is_finished_by_the_resume() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE a (id int); CREATE TABLE b (id int);
         INSERT INTO a SELECT generate_series(1, 50); INSERT INTO b SELECT generate_series(1, 5);",
    );
    let d1 = database(
        &c.dest[0],
        "CREATE TABLE a (id int); CREATE TABLE b (id int);",
    );
    let d2 = database(
        &c.dest[1],
        "CREATE TABLE a (id int); CREATE TABLE b (id int CHECK (id > 100));",
    );
    let state = TempPath::new("committed-once-renamed.state");
    let to = [c.dest[0].conninfo(&d1), c.dest[1].conninfo(&d2)];
    let job = |extra: &[&str]| every_table(&c.source.conninfo(&src), &to, &state, extra);
    assert_exit(&job(&[]), 4);
    assert_eq!(
        (count(&c.dest[0], &d1, "b"), count(&c.dest[1], &d2, "b")),
        (5, 0)
    );
    let rename = "ALTER TABLE b RENAME TO b2";
    c.source.connect(&src).batch_execute(rename).unwrap();
    c.dest[0].connect(&d1).batch_execute(rename).unwrap();
    (c.dest[1].connect(&d2))
        .batch_execute(&format!(
            "{rename}; ALTER TABLE b2 DROP CONSTRAINT b_id_check"
        ))
        .unwrap();
    let out = job(&["--resume"]);
    assert_exit(&out, 0);
    assert!(
        text(&out.stderr).contains("on destination 1: done there, not copied again"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        (count(&c.dest[0], &d1, "b2"), count(&c.dest[1], &d2, "b2")),
        (5, 5)
    );
    assert_exit(&job(&["--resume", "--verify"]), 0);
    assert_eq!(
        (count(&c.dest[0], &d1, "b2"), count(&c.dest[1], &d2, "b2")),
        (5, 5)
    );
}

/// A table committed on one destination and rolled back on the other, then rotated on every
/// server (renamed, and a new table made under its name): the resume takes the renamed one as
/// done where it committed and copies it where it did not, and copies the new one everywhere —
/// and a later resume still knows the old name's records for the renamed table's (recheck50b
/// F5: every resume refused, "its rows would be there twice").
#[test]
fn a_table_rotated_on_every_server_is_finished_by_the_resume() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE a (id int); CREATE TABLE b (id int);
         INSERT INTO a SELECT generate_series(1, 50); INSERT INTO b SELECT generate_series(1, 5);",
    );
    let tables = "CREATE TABLE a (id int); CREATE TABLE b (id int CHECK (id > 100));";
    let d1 = database(
        &c.dest[0],
        "CREATE TABLE a (id int); CREATE TABLE b (id int);",
    );
    let d2 = database(&c.dest[1], tables);
    let state = TempPath::new("rotated.state");
    let to = [c.dest[0].conninfo(&d1), c.dest[1].conninfo(&d2)];
    let job = |extra: &[&str]| every_table(&c.source.conninfo(&src), &to, &state, extra);
    assert_exit(&job(&[]), 4);
    let rotate = "ALTER TABLE b RENAME TO b_old; CREATE TABLE b (id int);";
    (c.source.connect(&src))
        .batch_execute(&format!("{rotate} INSERT INTO b VALUES (7), (8), (9);"))
        .unwrap();
    // The new table's copy fails on destination 1 this time.
    (c.dest[0].connect(&d1))
        .batch_execute(&format!("{rotate} ALTER TABLE b ADD CHECK (id < 8);"))
        .unwrap();
    (c.dest[1].connect(&d2))
        .batch_execute(&format!(
            "{rotate} ALTER TABLE b_old DROP CONSTRAINT b_id_check;"
        ))
        .unwrap();
    let out = job(&["--resume"]);
    assert_exit(&out, 4);
    let counts = |table: &str| (count(&c.dest[0], &d1, table), count(&c.dest[1], &d2, table));
    assert_eq!((counts("b_old"), counts("b")), ((5, 5), (0, 3)));
    // Its records are the new table's now: not done on destination 1 by the old name's.
    (c.dest[0].connect(&d1))
        .batch_execute("ALTER TABLE b DROP CONSTRAINT b_id_check")
        .unwrap();
    assert_exit(&job(&["--resume"]), 0);
    assert_eq!((counts("b_old"), counts("b")), ((5, 5), (3, 3)));
    assert_exit(&job(&["--resume", "--verify"]), 0);
}

/// Names shifted on every server between runs, as a log rotation shifts them (`t_1` → `t_2`,
/// `t` → `t_1`, a new `t`): each resume takes the renamed tables as done and copies the new one
/// (recheck51 F5: the second shift was refused, "its rows would be there twice").
#[test]
fn names_shifted_on_every_server_are_followed_by_each_resume() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 10);",
    );
    let d1 = database(&c.dest[0], "CREATE TABLE t (id int);");
    let d2 = database(&c.dest[1], "CREATE TABLE t (id int);");
    let state = TempPath::new("shifted.state");
    let to = [c.dest[0].conninfo(&d1), c.dest[1].conninfo(&d2)];
    let job = |extra: &[&str]| every_table(&c.source.conninfo(&src), &to, &state, extra);
    assert_exit(&job(&[]), 0);
    let shift = "ALTER TABLE IF EXISTS t_1 RENAME TO t_2; ALTER TABLE t RENAME TO t_1; \
                 CREATE TABLE t (id int);";
    for generation in 1..=2 {
        (c.source.connect(&src))
            .batch_execute(&format!(
                "{shift} INSERT INTO t SELECT generate_series(1, {});",
                10 + generation
            ))
            .unwrap();
        c.dest[0].connect(&d1).batch_execute(shift).unwrap();
        c.dest[1].connect(&d2).batch_execute(shift).unwrap();
        let out = job(&["--resume"]);
        assert_exit(&out, 0);
        for (cluster, db) in [(&c.dest[0], &d1), (&c.dest[1], &d2)] {
            assert_eq!(
                count(cluster, db, "t"),
                10 + generation,
                "{}",
                text(&out.stderr)
            );
            assert_eq!(count(cluster, db, "t_1"), 10 + generation - 1);
        }
    }
    assert_eq!(
        (count(&c.dest[0], &d1, "t_2"), count(&c.dest[1], &d2, "t_2")),
        (10, 10)
    );
    assert_exit(&job(&["--resume", "--verify"]), 0);
}

/// Two tables' names swapped on every server after a run that committed one on a single
/// destination: the resume takes each as done where it committed under the other's name and
/// copies the rest, and a later resume reads the records so too (recheck51b F5: refused, with
/// advice to do on the destinations what had been done).
#[test]
fn names_swapped_on_every_server_are_followed_by_the_resume() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE a (id int); CREATE TABLE b (id int);
         INSERT INTO a SELECT generate_series(1, 10); INSERT INTO b SELECT generate_series(1, 5);",
    );
    let d1 = database(
        &c.dest[0],
        "CREATE TABLE a (id int); CREATE TABLE b (id int);",
    );
    let d2 = database(
        &c.dest[1],
        "CREATE TABLE a (id int); CREATE TABLE b (id int CHECK (id > 100));",
    );
    let state = TempPath::new("swapped.state");
    let to = [c.dest[0].conninfo(&d1), c.dest[1].conninfo(&d2)];
    let job = |extra: &[&str]| every_table(&c.source.conninfo(&src), &to, &state, extra);
    assert_exit(&job(&[]), 4);
    let swap = "ALTER TABLE a RENAME TO tmp; ALTER TABLE b RENAME TO a; \
                ALTER TABLE tmp RENAME TO b;";
    c.source.connect(&src).batch_execute(swap).unwrap();
    c.dest[0].connect(&d1).batch_execute(swap).unwrap();
    (c.dest[1].connect(&d2))
        .batch_execute(&format!("{swap} ALTER TABLE a DROP CONSTRAINT b_id_check;"))
        .unwrap();
    let out = job(&["--resume"]);
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            r#""public"."b": the earlier run committed it on every destination as "public"."a""#
        ),
        "{stderr}"
    );
    let counts = |table: &str| (count(&c.dest[0], &d1, table), count(&c.dest[1], &d2, table));
    assert_eq!((counts("a"), counts("b")), ((5, 5), (10, 10)), "{stderr}");
    // Read again from the state file, the records are the swapped names' too.
    assert_exit(&job(&["--resume", "--verify"]), 0);
    assert_eq!((counts("a"), counts("b")), ((5, 5), (10, 10)));
}

/// Two names swapped on the source only: the resume refuses, naming the destination that was
/// not renamed, and touches nothing (recheck52 F3: taken as renamed everywhere — done, exit 0,
/// every destination's `a` holding the source's `b`'s rows' counterpart, or one's rows copied
/// on top of the other's where a destination had failed).
#[test]
fn names_swapped_on_the_source_only_are_refused_by_the_resume() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE a (id int); CREATE TABLE b (id int);
         INSERT INTO a SELECT generate_series(1, 10); INSERT INTO b SELECT generate_series(1, 5);",
    );
    let d1 = database(
        &c.dest[0],
        "CREATE TABLE a (id int); CREATE TABLE b (id int);",
    );
    let d2 = database(
        &c.dest[1],
        "CREATE TABLE a (id int); CREATE TABLE b (id int CHECK (id > 100));",
    );
    let state = TempPath::new("swapped-on-source.state");
    let to = [c.dest[0].conninfo(&d1), c.dest[1].conninfo(&d2)];
    let job = |extra: &[&str]| every_table(&c.source.conninfo(&src), &to, &state, extra);
    assert_exit(&job(&[]), 4);
    (c.source.connect(&src))
        .batch_execute(
            "ALTER TABLE a RENAME TO tmp; ALTER TABLE b RENAME TO a; ALTER TABLE tmp RENAME TO b;",
        )
        .unwrap();
    (c.dest[1].connect(&d2))
        .batch_execute("ALTER TABLE b DROP CONSTRAINT b_id_check")
        .unwrap();
    let out = job(&["--resume"]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("renamed on the source only? do the same there"),
        "{stderr}"
    );
    let counts = |table: &str| (count(&c.dest[0], &d1, table), count(&c.dest[1], &d2, table));
    assert_eq!((counts("a"), counts("b")), ((10, 10), (5, 0)));
}

/// Two tables of a foreign-key cycle (copied as one unit: one transaction on each destination)
/// swapped on the source only: the resume refuses (recheck52b F2: each destination's table of
/// the other name held rows of that transaction, and the swap was taken as made everywhere,
/// exit 0).
#[test]
fn a_cycles_names_swapped_on_the_source_only_are_refused_by_the_resume() {
    let c = clusters();
    let tables = "CREATE TABLE a (id int PRIMARY KEY, ref int); CREATE TABLE b (id int PRIMARY KEY, ref int);
         ALTER TABLE a ADD FOREIGN KEY (ref) REFERENCES b DEFERRABLE;
         ALTER TABLE b ADD FOREIGN KEY (ref) REFERENCES a DEFERRABLE;";
    let src = database(
        &c.source,
        &format!(
            "{tables} INSERT INTO a SELECT generate_series(1, 10);
             INSERT INTO b SELECT generate_series(1, 5);"
        ),
    );
    let d1 = database(&c.dest[0], tables);
    let d2 = database(&c.dest[1], tables);
    let state = TempPath::new("cycle-swapped-on-source.state");
    let to = [c.dest[0].conninfo(&d1), c.dest[1].conninfo(&d2)];
    let job = |extra: &[&str]| every_table(&c.source.conninfo(&src), &to, &state, extra);
    assert_exit(&job(&[]), 0);
    (c.source.connect(&src))
        .batch_execute(
            "ALTER TABLE a RENAME TO tmp; ALTER TABLE b RENAME TO a; ALTER TABLE tmp RENAME TO b;",
        )
        .unwrap();
    let out = job(&["--resume"]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("renamed on the source only? do the same there"),
        "{}",
        text(&out.stderr)
    );
    let counts = |table: &str| (count(&c.dest[0], &d1, table), count(&c.dest[1], &d2, table));
    assert_eq!((counts("a"), counts("b")), ((10, 10), (5, 5)));
}

/// Two tables' names swapped on one destination only, the source unchanged: the resume refuses,
/// naming the table whose rows that destination's table holds (recheck52b F3: both taken as
/// done, exit 0, the destination's `a` holding `b`'s rows — only the last table done there was
/// looked at); the names given back, it finishes.
#[test]
fn names_swapped_on_a_destination_only_are_refused_by_the_resume() {
    let c = clusters();
    let tables = "CREATE TABLE a (id int); CREATE TABLE b (id int); CREATE TABLE c (id int);
                  CREATE TABLE d (id int);";
    let src = database(
        &c.source,
        &format!(
            "{tables} INSERT INTO a SELECT generate_series(1, 10);
             INSERT INTO b SELECT generate_series(1, 5); INSERT INTO c VALUES (1);
             INSERT INTO d VALUES (-1);"
        ),
    );
    // d, refused on destination 1, keeps the job unfinished.
    let d1 = database(
        &c.dest[0],
        &tables.replace("d (id int)", "d (id int CHECK (id > 0))"),
    );
    let d2 = database(&c.dest[1], tables);
    let state = TempPath::new("swapped-on-a-destination.state");
    let to = [c.dest[0].conninfo(&d1), c.dest[1].conninfo(&d2)];
    let job = |extra: &[&str]| every_table(&c.source.conninfo(&src), &to, &state, extra);
    assert_exit(&job(&["--jobs", "1"]), 4);
    let swap =
        "ALTER TABLE a RENAME TO tmp; ALTER TABLE b RENAME TO a; ALTER TABLE tmp RENAME TO b;";
    c.dest[1].connect(&d2).batch_execute(swap).unwrap();
    let out = job(&["--resume"]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "'s \"public\".\"a\", which the state file records done with 10 rows, \
             holds none of the rows"
        ) && stderr.contains("but rows the earlier run copied into \"public\".\"b\" there")
            && stderr.contains("destination 2 ("),
        "{stderr}"
    );
    let counts = |table: &str| (count(&c.dest[0], &d1, table), count(&c.dest[1], &d2, table));
    let all = || [counts("a"), counts("b"), counts("c"), counts("d")];
    assert_eq!(all(), [(10, 5), (5, 10), (1, 1), (0, 1)]);
    c.dest[1].connect(&d2).batch_execute(swap).unwrap();
    c.dest[0]
        .connect(&d1)
        .batch_execute("ALTER TABLE d DROP CONSTRAINT d_id_check")
        .unwrap();
    assert_exit(&job(&["--resume"]), 0);
    assert_eq!(all(), [(10, 10), (5, 5), (1, 1), (1, 1)]);
}

/// A table that failed on a destination, swapped there with a table the job committed: the
/// resume refuses to append to it, naming the table whose rows it holds (recheck53 F1: the
/// source's rows were appended to the other table's, mixed, exit 0); the names given back, it
/// finishes.
#[test]
fn a_table_to_append_to_that_holds_another_tables_copy_is_refused_by_the_resume() {
    let c = clusters();
    let tables = "CREATE TABLE a (id int); CREATE TABLE b (id int); CREATE TABLE c (id int);";
    let src = database(
        &c.source,
        &format!(
            "{tables} INSERT INTO a SELECT generate_series(1, 10);
             INSERT INTO b SELECT generate_series(1, 5); INSERT INTO c VALUES (1);"
        ),
    );
    let d1 = database(&c.dest[0], tables);
    let d2 = database(
        &c.dest[1],
        &tables.replace("a (id int)", "a (id int CHECK (id > 10))"),
    );
    let state = TempPath::new("append-to-a-swapped-table.state");
    let to = [c.dest[0].conninfo(&d1), c.dest[1].conninfo(&d2)];
    let job = |extra: &[&str]| every_table(&c.source.conninfo(&src), &to, &state, extra);
    assert_exit(&job(&["--jobs", "1"]), 4);
    let swap = "ALTER TABLE a DROP CONSTRAINT a_id_check; ALTER TABLE a RENAME TO tmp;
                ALTER TABLE b RENAME TO a; ALTER TABLE tmp RENAME TO b;";
    c.dest[1].connect(&d2).batch_execute(swap).unwrap();
    let out = job(&["--resume"]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "'s \"public\".\"a\", which this resume would append to, holds rows the earlier run \
             copied into \"public\".\"b\" there: renamed or swapped"
        ),
        "{stderr}"
    );
    let counts = |table: &str| (count(&c.dest[0], &d1, table), count(&c.dest[1], &d2, table));
    assert_eq!((counts("a"), counts("b")), ((10, 5), (5, 0)));
    c.dest[1]
        .connect(&d2)
        .batch_execute(
            "ALTER TABLE a RENAME TO tmp; ALTER TABLE b RENAME TO a; ALTER TABLE tmp RENAME TO b;",
        )
        .unwrap();
    assert_exit(&job(&["--resume"]), 0);
    assert_eq!((counts("a"), counts("b")), ((10, 10), (5, 5)));
}

/// The last table a job committed on a destination, swapped there with another it committed: the
/// resume says so, as of any other table (recheck53 F3: said as a restore of an older copy,
/// whose advice, `--resume --verify`, struck both tables from done).
#[test]
fn the_last_table_done_swapped_on_a_destination_is_said_swapped() {
    let c = clusters();
    let tables = "CREATE TABLE a (id int); CREATE TABLE b (id int); CREATE TABLE z (id int);";
    let src = database(
        &c.source,
        &format!(
            "{tables} INSERT INTO a SELECT generate_series(1, 30);
             INSERT INTO b SELECT generate_series(1, 20); INSERT INTO z VALUES (-1);"
        ),
    );
    let d1 = database(
        &c.dest[0],
        &tables.replace("z (id int)", "z (id int CHECK (id > 0))"),
    );
    let state = TempPath::new("last-swapped.state");
    let to = [c.dest[0].conninfo(&d1)];
    let job = |extra: &[&str]| every_table(&c.source.conninfo(&src), &to, &state, extra);
    assert_exit(&job(&["--jobs", "1"]), 4);
    let swap =
        "ALTER TABLE a RENAME TO tmp; ALTER TABLE b RENAME TO a; ALTER TABLE tmp RENAME TO b;";
    c.dest[0].connect(&d1).batch_execute(swap).unwrap();
    let out = job(&["--resume"]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("renamed or swapped with it there since?")
            && !stderr.contains("is not where the earlier run left it"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &d1, "a"), 20);
}

/// A done table whose every row an application rewrote on a destination (an UPDATE that
/// changes nothing), UNLOGGED there or not, is taken as done, said, not copied again: the
/// resume refused it (recheck53 F2), or, UNLOGGED, took it for emptied by a crash — its server
/// never restarted — and appended it again (recheck53 F5: rows twice, exit 0).
#[test]
fn a_done_table_whose_rows_were_all_rewritten_is_taken_as_done() {
    let c = clusters();
    let tables = "CREATE TABLE a (id int); CREATE TABLE b (id int); CREATE TABLE c (id int);
                  CREATE TABLE d (id int);";
    let src = database(
        &c.source,
        &format!(
            "{tables} INSERT INTO a SELECT generate_series(1, 30);
             INSERT INTO b SELECT generate_series(1, 20); INSERT INTO c VALUES (1);
             INSERT INTO d VALUES (-1);"
        ),
    );
    let d1 = database(
        &c.dest[0],
        &tables
            .replace("TABLE b", "UNLOGGED TABLE b")
            .replace("d (id int)", "d (id int CHECK (id > 0))"),
    );
    let state = TempPath::new("rewritten.state");
    let to = [c.dest[0].conninfo(&d1)];
    let job = |extra: &[&str]| every_table(&c.source.conninfo(&src), &to, &state, extra);
    assert_exit(&job(&["--jobs", "1"]), 4);
    (c.dest[0].connect(&d1))
        .batch_execute(
            "UPDATE a SET id = id; UPDATE b SET id = id; ALTER TABLE d DROP CONSTRAINT d_id_check;",
        )
        .unwrap();
    let out = job(&["--resume"]);
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    for table in ["a", "b"] {
        assert!(
            stderr.contains(&format!(
                "\"public\".\"{table}\": destination 1's table holds none of the"
            )) && stderr.contains("every row rewritten since"),
            "{stderr}"
        );
    }
    assert!(!stderr.contains("a crash"), "{stderr}");
    let counts = || -> Vec<i64> {
        ["a", "b", "c", "d"]
            .iter()
            .map(|t| count(&c.dest[0], &d1, t))
            .collect()
    };
    assert_eq!(counts(), [30, 20, 1, 1]);
    // Emptied there and a row written since: not as many rows — refused, not taken as done
    // (recheck53b F4: 1 row of 30, exit 0).
    (c.dest[0].connect(&d1))
        .batch_execute("TRUNCATE a; INSERT INTO a VALUES (100);")
        .unwrap();
    let out = job(&["--resume"]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("but 1 other row: emptied there since")
            && text(&out.stderr).contains("resume with --verify to compare it"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(counts(), [1, 20, 1, 1]);
    // The way it gives: --verify compares it (it differs), and a resume with --truncate
    // replaces it; later resumes find the job done (recheck53c F3: every later resume was
    // refused the same way).
    let out = job(&["--resume", "--verify"]);
    assert_exit(&out, 4);
    assert!(
        text(&out.stderr).contains("resume with --truncate to replace it"),
        "{}",
        text(&out.stderr)
    );
    assert_exit(&job(&["--resume", "--truncate"]), 0);
    assert_eq!(counts(), [30, 20, 1, 1]);
    assert_exit(&job(&["--resume"]), 0);
    assert_eq!(counts(), [30, 20, 1, 1]);
}

/// A table the job found empty on the source, swapped on a destination with one it copied rows
/// into: refused, naming it (recheck53b F8: the other table, found empty there, was copied
/// again, its rows there twice, exit 0).
#[test]
fn a_table_empty_on_the_source_swapped_with_another_is_refused() {
    let c = clusters();
    let tables = "CREATE TABLE a (id int); CREATE TABLE e (id int); CREATE TABLE b (id int);
                  CREATE TABLE z (id int);";
    let src = database(
        &c.source,
        &format!(
            "{tables} INSERT INTO a SELECT generate_series(1, 10); INSERT INTO b VALUES (1);
             INSERT INTO z VALUES (-1);"
        ),
    );
    let d1 = database(
        &c.dest[0],
        &tables.replace("z (id int)", "z (id int CHECK (id > 0))"),
    );
    let state = TempPath::new("swapped-with-empty.state");
    let to = [c.dest[0].conninfo(&d1)];
    let job = |extra: &[&str]| every_table(&c.source.conninfo(&src), &to, &state, extra);
    assert_exit(&job(&["--jobs", "1"]), 4);
    let swap =
        "ALTER TABLE a RENAME TO tmp; ALTER TABLE e RENAME TO a; ALTER TABLE tmp RENAME TO e;";
    c.dest[0].connect(&d1).batch_execute(swap).unwrap();
    let out = job(&["--resume"]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains(
            "'s \"public\".\"a\", which the state file records done with 10 rows, holds none, \
             and \"public\".\"e\" holds its copy's: renamed or swapped"
        ),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &d1, "e"), 10);
    assert_eq!(count(&c.dest[0], &d1, "a"), 0);
}

/// A trigger on a destination writing into another table of the job (rows of the first table's
/// transaction there) is no swap: that table, failed there first, is appended to by the resume
/// (recheck53b F3: said "renamed or swapped", which nothing was).
#[test]
fn a_triggers_rows_in_another_table_of_the_job_are_not_a_swap() {
    let c = clusters();
    let tables = "CREATE TABLE a (id int); CREATE TABLE e (id int); CREATE TABLE z (id int);
                  CREATE TABLE b (id int);";
    let src = database(
        &c.source,
        &format!(
            "{tables} INSERT INTO a SELECT generate_series(1, 10); INSERT INTO z VALUES (-1), (2);
             INSERT INTO b VALUES (1);"
        ),
    );
    let d1 = database(
        &c.dest[0],
        &format!(
            "{} CREATE FUNCTION audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
                 INSERT INTO z VALUES (NEW.id + 1000); RETURN NEW; END $$;
             CREATE TRIGGER audit AFTER INSERT ON a FOR EACH ROW EXECUTE FUNCTION audit();",
            tables.replace("z (id int)", "z (id int CHECK (id > 0))")
        ),
    );
    let state = TempPath::new("trigger-rows.state");
    let to = [c.dest[0].conninfo(&d1)];
    let job = |extra: &[&str]| every_table(&c.source.conninfo(&src), &to, &state, extra);
    assert_exit(&job(&["--jobs", "1"]), 4);
    // The trigger's rows are in z, written by a's transaction; z's own copy failed.
    assert_eq!(count(&c.dest[0], &d1, "z"), 10);
    (c.dest[0].connect(&d1))
        .batch_execute("ALTER TABLE z DROP CONSTRAINT z_id_check")
        .unwrap();
    let out = job(&["--resume"]);
    assert_exit(&out, 0);
    let counts: Vec<i64> = ["a", "e", "z"]
        .iter()
        .map(|t| count(&c.dest[0], &d1, t))
        .collect();
    assert_eq!(counts, [10, 0, 12], "{}", text(&out.stderr));
}

/// A table dropped and made again on the source under a name an earlier run committed on a
/// destination that still holds those rows — updated since there, too (recheck51 F4: taken as
/// gone, and the new table's rows appended) —: the resume is refused, naming that destination
/// (the new table's rows were skipped there as done, exit 0); emptied there as the refusal
/// says, the resume copies the new table everywhere.
#[test]
fn a_table_made_again_on_the_source_is_refused_where_its_old_rows_are() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 20);",
    );
    let d1 = database(&c.dest[0], "CREATE TABLE t (id int);");
    let d2 = database(&c.dest[1], "CREATE TABLE t (id int CHECK (id > 100));");
    let state = TempPath::new("made-again.state");
    let to = [c.dest[0].conninfo(&d1), c.dest[1].conninfo(&d2)];
    let job = |extra: &[&str]| every_table(&c.source.conninfo(&src), &to, &state, extra);
    assert_exit(&job(&[]), 4);
    (c.source.connect(&src))
        .batch_execute("DROP TABLE t; CREATE TABLE t (id int); INSERT INTO t VALUES (200), (201);")
        .unwrap();
    c.dest[0]
        .connect(&d1)
        .batch_execute("UPDATE t SET id = id")
        .unwrap();
    let out = job(&["--resume"]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("is another table on the source than the earlier run copied")
            && stderr.contains("its table on destination 1 holds rows"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &d1, "t"), 20);
    c.dest[0].connect(&d1).batch_execute("TRUNCATE t").unwrap();
    assert_exit(&job(&["--resume"]), 0);
    assert_eq!(
        (count(&c.dest[0], &d1, "t"), count(&c.dest[1], &d2, "t")),
        (2, 2)
    );
}

/// A table attached as a partition of another between a run that copied neither and its
/// resume, which copies the partitioned table whole (its rows among them): a resume after that
/// finds the job done (jobs49 F3: the attached table was taken for one attached after its
/// partitioned table's copy, to be copied by itself again — refused, exit 2, every resume
/// after).
#[test]
fn a_table_attached_before_its_parents_copy_leaves_the_job_resumable() {
    let c = clusters();
    let schema = "CREATE TABLE m (k int, v int) PARTITION BY RANGE (k);
         CREATE TABLE m1 PARTITION OF m FOR VALUES FROM (0) TO (100);
         CREATE TABLE m2 (k int, v int);";
    let src = database(
        &c.source,
        &format!(
            "{schema} CREATE TABLE a (id int); INSERT INTO a SELECT generate_series(1, 50);
             INSERT INTO m SELECT g, g FROM generate_series(0, 99) g;
             INSERT INTO m2 SELECT g, g FROM generate_series(100, 129) g;"
        ),
    );
    // Neither m nor m2 is there yet: the first run copies a only.
    let d1 = database(&c.dest[0], "CREATE TABLE a (id int);");
    let state = TempPath::new("attached-before.state");
    let to = [c.dest[0].conninfo(&d1)];
    let job = |extra: &[&str]| every_table(&c.source.conninfo(&src), &to, &state, extra);
    assert_exit(&job(&[]), 4);
    let attach = "ALTER TABLE m ATTACH PARTITION m2 FOR VALUES FROM (100) TO (200)";
    c.source.connect(&src).batch_execute(attach).unwrap();
    (c.dest[0].connect(&d1))
        .batch_execute(&format!("{schema} {attach}"))
        .unwrap();
    let out = job(&["--resume"]);
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[0], &d1, "m"), 130);
    assert_eq!(count(&c.dest[0], &d1, "m2"), 30);
    for extra in [&["--resume"][..], &["--resume", "--verify"][..]] {
        let out = job(extra);
        assert_exit(&out, 0);
    }
    assert_eq!(count(&c.dest[0], &d1, "m"), 130);
    assert_eq!(count(&c.dest[0], &d1, "a"), 50);
}

/// A schema missing on a destination (3F000) is mended first, as a table missing is: its job
/// said "run again with --resume", which failed the same way (firsthour36 F9); the way that
/// creates them is said.
#[test]
fn a_schema_missing_on_a_destination_is_said_to_be_mended_first() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE SCHEMA sales; CREATE TABLE sales.a (id int); INSERT INTO sales.a VALUES (1);",
    );
    let d1 = database(&c.dest[0], "");
    let state = TempPath::new("no-schema.state");
    let out = run(&[
        "table",
        "--schema",
        "sales",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&d1),
        "--state",
        state.arg(),
    ]);
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("until it is mended (destination 1, SQLSTATE 3F000")
            && stderr.contains("pg_dump --section=pre-data of the source into it")
            && !stderr.contains(": run again with --resume to copy what is missing"),
        "{stderr}"
    );
}

/// Many tables failing alike on one destination are said as one group with their first names
/// (500 tables missing there made a line of 24 000 characters, listing each).
#[test]
fn tables_failing_alike_on_a_destination_are_said_as_one_group() {
    let c = clusters();
    let tables: String = (1..=6)
        .map(|n| format!("CREATE TABLE m{n} (id int);"))
        .collect();
    let src = database(
        &c.source,
        &format!("CREATE SCHEMA many; SET search_path = many; {tables}"),
    );
    let d1 = database(&c.dest[0], "CREATE SCHEMA many;");
    let state = TempPath::new("many-missing.state");
    let out = run(&[
        "table",
        "--schema",
        "many",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&d1),
        "--state",
        state.arg(),
        "--keep-going",
    ]);
    assert_ne!(out.status.code(), Some(0));
    let stderr = text(&out.stderr);
    let advice = stderr
        .lines()
        .find(|l| l.contains("a rerun meets again"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(
        advice.contains("6 table copies failed")
            && advice.contains("(destination 1, SQLSTATE 42P01: ")
            && advice.contains(" and 3 more)"),
        "{advice}"
    );
    // Each failure was said as it happened too, the job going on.
    assert_eq!(
        stderr.matches("; the job goes on (--keep-going)").count(),
        6,
        "{stderr}"
    );
}

#[test]
fn a_view_named_as_a_table_gets_no_advice_to_resume() {
    let c = clusters();
    let view = "CREATE TABLE t (id int); CREATE VIEW v AS SELECT id FROM t;";
    let src = database(
        &c.source,
        &format!("{view} INSERT INTO t SELECT generate_series(1, 20);"),
    );
    let d1 = database(&c.dest[0], view);
    let state = TempPath::new("view.state");
    let out = run(&[
        "table",
        "t",
        "v",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&d1),
        "--state",
        state.arg(),
        "--keep-going",
    ]);
    assert_exit(&out, 4);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("(destination 1, SQLSTATE 42809: \"public\".\"v\")")
            && stderr.contains("mend it first"),
        "{stderr}"
    );
    assert!(
        !stderr.contains(": run again with --resume to copy what is missing"),
        "{stderr}"
    );
    // t (20 rows) committed; v took nothing.
    assert_eq!(count(&c.dest[0], &d1, "t"), 20);
}

#[test]
fn a_table_that_met_a_lock_timeout_gets_the_advice_to_resume_and_resume_finishes() {
    let c = clusters();
    let tables = "CREATE TABLE free (id int); CREATE TABLE held (id int);";
    let src = database(
        &c.source,
        &format!(
            "{tables} INSERT INTO free SELECT generate_series(1, 40);
             INSERT INTO held SELECT generate_series(1, 30);"
        ),
    );
    let d1 = database(&c.dest[0], tables);
    let state = TempPath::new("lock.state");
    let job = |extra: &[&str]| {
        run(&[
            &[
                "table",
                "free",
                "held",
                "--from",
                &c.source.conninfo(&src),
                "--to",
                &c.dest[0].conninfo(&d1),
                "--state",
                state.arg(),
                "--keep-going",
                "--lock-timeout",
                "1s",
            ][..],
            extra,
        ]
        .concat())
    };
    let mut holder = c.dest[0].connect(&d1);
    holder
        .batch_execute("BEGIN; LOCK TABLE held IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let out = job(&[]);
    assert_exit(&out, 4);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("55P03"), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "state file {}: run again with --resume to copy what is missing",
            state.arg()
        )) && !stderr.contains("mend it first"),
        "{stderr}"
    );
    // The lock is gone: the resume the advice names finishes the job.
    holder.batch_execute("ROLLBACK").unwrap();
    assert_exit(&job(&["--resume"]), 0);
    assert_eq!(count(&c.dest[0], &d1, "free"), 40, "free not copied twice");
    assert_eq!(count(&c.dest[0], &d1, "held"), 30);
}

// Point 4: a copy waiting on itself is cancelled at once.

/// A source table of 50 000 rows, for a copy waiting on itself.
const SELF_WAIT_SOURCE: &str = "CREATE TABLE s (id int8, v text);
    INSERT INTO s SELECT g, 'x' FROM generate_series(1, 50000) g;";

/// A partition whose rows reach it twice, through a trigger of another table (`side`) and
/// directly: the second COPY waits for the first's transaction on the primary key, which waits
/// for copyman.
const SELF_WAIT_DESTINATION: &str =
    "CREATE TABLE pt (id int8 PRIMARY KEY, v text) PARTITION BY RANGE (id);
    CREATE TABLE pt_1 PARTITION OF pt FOR VALUES FROM (1) TO (100001);
    CREATE TABLE side (id int8, v text);
    CREATE FUNCTION fwd() RETURNS trigger LANGUAGE plpgsql AS
      $$BEGIN INSERT INTO pt VALUES (NEW.id, NEW.v); RETURN NULL; END$$;
    CREATE TRIGGER fwd AFTER INSERT ON side FOR EACH ROW EXECUTE FUNCTION fwd();";

#[test]
fn a_copy_into_a_table_and_one_its_trigger_fills_waiting_on_itself_fails_at_once() {
    let c = clusters();
    let src = database(&c.source, SELF_WAIT_SOURCE);
    // The partition's rows reach it twice, through a trigger of another table and directly:
    // the second COPY waits for the first's transaction on the primary key, which waits for
    // copyman. (A partitioned table and its partition named by two --receive are refused
    // before anything is sent: the same storage.)
    let d1 = database(&c.dest[0], SELF_WAIT_DESTINATION);
    let to = c.dest[0].conninfo(&d1);
    // No --lock-timeout: without the watch's cancel, this would wait for ever.
    let from = c.source.conninfo(&src);
    let copy = |extra: &[&str]| {
        let mut args = vec![
            "copy",
            "--from",
            &from,
            "--send",
            "COPY s TO STDOUT",
            "--to",
            &to,
            "--receive",
            "COPY side FROM STDIN",
            "--to",
            &to,
            "--receive",
            "COPY pt_1 FROM STDIN",
        ];
        args.extend(extra);
        run(&args)
    };
    let out = copy(&[]);
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    assert!(
        // Either COPY may be the one that waits.
        stderr.contains(
            "was cancelled by copyman: it waited for a row's lock (the end of the transaction \
             that holds or wrote the row) that destination "
        ) && stderr.contains("another session of this same copy")
            && stderr.contains("COPY pt_1 FROM STDIN")
            && stderr.contains("COPY side FROM STDIN")
            && stderr.contains("57014")
            && stderr.contains("nothing committed"),
        "{stderr}"
    );
    assert!(!stderr.contains("55P03"), "not a lock timeout: {stderr}");
    // Nothing committed anywhere, no backend left in COPY.
    assert_eq!(count(&c.dest[0], &d1, "pt"), 0);
    assert_eq!(count(&c.dest[0], &d1, "pt_1"), 0);
    assert_eq!(copy_backends(&c.dest[0], &d1), 0);
    assert_eq!(copy_backends(&c.source, &src), 0);
    assert_eq!(count(&c.source, &src, "s"), 50000);
    // Under --keep-going the cancelled one is left out and the other commits: said so (it
    // said nothing of the copy was committed: dupes47 F4).
    let out = copy(&["--keep-going"]);
    assert_exit(&out, 4);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("its copy fails there, and is left out (--keep-going): the others go on")
            && !stderr.contains("nothing of it is committed"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &d1, "pt"), 50000);
}

/// The same copy waiting on itself with its two destinations reached as two roles that may
/// not see each other's backends whole (their start hidden): cancelled at once as well (it
/// waited for ever, said every 10 s; conn37 F12).
#[test]
fn a_copy_waiting_on_itself_as_two_roles_fails_at_once() {
    let c = clusters();
    let src = database(&c.source, SELF_WAIT_SOURCE);
    let d1 = database(&c.dest[0], SELF_WAIT_DESTINATION);
    let (one, two) = (format!("one_{d1}"), format!("two_{d1}"));
    c.dest[0]
        .connect(&d1)
        .batch_execute(&format!(
            "CREATE ROLE {one} LOGIN; CREATE ROLE {two} LOGIN;
             GRANT SELECT, INSERT ON side, pt, pt_1 TO {one}, {two};"
        ))
        .unwrap();
    let to = c.dest[0].conninfo(&d1);
    let (to_one, to_two) = (
        to.replace("user=postgres", &format!("user={one}")),
        to.replace("user=postgres", &format!("user={two}")),
    );
    let out = run(&[
        "copy",
        "--from",
        &c.source.conninfo(&src),
        "--send",
        "COPY s TO STDOUT",
        "--to",
        &to_one,
        "--receive",
        "COPY side FROM STDIN",
        "--to",
        &to_two,
        "--receive",
        "COPY pt_1 FROM STDIN",
        // Bounded, should the watch not see it (it waited for ever).
        "--lock-timeout",
        "60s",
    ]);
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("was cancelled by copyman: it waited for")
            && stderr.contains("another session of this same copy")
            && !stderr.contains("55P03"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &d1, "pt"), 0);
    assert_eq!(copy_backends(&c.dest[0], &d1), 0);
}

#[test]
fn a_split_table_whose_ranges_wait_on_each_other_fails_at_once_and_says_to_mend_it() {
    let c = clusters();
    // Every id twice, far apart: two ranges of the table bring the same key to the
    // destination's primary key, and one range's session waits for the other's transaction,
    // which commits only with the whole table.
    let src = database(
        &c.source,
        "CREATE TABLE big (id int8, v text);
         INSERT INTO big SELECT g, repeat('x', 100) FROM generate_series(1, 20000) g;
         INSERT INTO big SELECT g, repeat('y', 100) FROM generate_series(1, 20000) g;",
    );
    let d1 = database(
        &c.dest[0],
        "CREATE TABLE big (id int8 PRIMARY KEY, v text);",
    );
    let state = TempPath::new("split-itself.state");
    // No --lock-timeout: without the watch's cancel, this would wait for ever.
    let out = run(&[
        "table",
        "big",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&d1),
        "--split-larger-than",
        "64k",
        "--jobs",
        "4",
        "--state",
        state.arg(),
    ]);
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    // The cancel's 57014, or PostgreSQL's 40P01 when the other ranges still formed a cycle it
    // saw first: a rerun meets either again.
    assert!(
        stderr.contains("another session of this same copy")
            && (stderr.contains("(destination 1, SQLSTATE 57014: \"public\".\"big\")")
                || stderr.contains("(destination 1, SQLSTATE 40P01: \"public\".\"big\")"))
            && stderr.contains("mend it first"),
        "{stderr}"
    );
    assert!(
        !stderr.contains(": run again with --resume to copy what is missing"),
        "a rerun would wait on itself again: {stderr}"
    );
    assert_eq!(count(&c.dest[0], &d1, "big"), 0, "nothing committed");
    assert_eq!(copy_backends(&c.dest[0], &d1), 0);
    assert_eq!(copy_backends(&c.source, &src), 0);
}

/// A resume given fewer destinations than the run it resumes says that the state file records
/// one where tables are not done: they stay so until a resume is given it (it exited 0 without
/// a word).
#[test]
fn a_resume_without_a_destination_that_has_tables_to_do_says_so() {
    let c = clusters();
    let schema = "CREATE TABLE a (id int); CREATE TABLE b (id int);";
    let src = database(
        &c.source,
        &format!("{schema} INSERT INTO a VALUES (1); INSERT INTO b VALUES (2);"),
    );
    let d1 = database(&c.dest[0], schema);
    let d2 = database(&c.dest[1], "CREATE TABLE a (id int);");
    let state = TempPath::new("fewer.state");
    let (from, to1, to2) = (
        c.source.conninfo(&src),
        c.dest[0].conninfo(&d1),
        c.dest[1].conninfo(&d2),
    );
    let out = run(&[
        "table",
        "a",
        "b",
        "--from",
        &from,
        "--to",
        &to1,
        "--to",
        &to2,
        "--state",
        state.arg(),
        "--keep-going",
    ]);
    assert_exit(&out, 4);
    let out = run(&[
        "table",
        "a",
        "b",
        "--from",
        &from,
        "--to",
        &to1,
        "--state",
        state.arg(),
        "--resume",
    ]);
    assert_exit(&out, 0);
    assert!(
        text(&out.stderr).contains("also records a destination this resume is not given"),
        "{}",
        text(&out.stderr)
    );
    // By its name, not only its system identifier (jobs44 F3c).
    assert!(
        text(&out.stderr).contains("not done (postgres@127.0.0.1:"),
        "{}",
        text(&out.stderr)
    );
}

/// A `--resume` with no state file is refused before the job is planned: it planned first —
/// waiting on a source table's lock, here — and refused only then.
#[test]
fn a_resume_without_a_state_file_is_refused_before_planning() {
    let c = clusters();
    let src = database(&c.source, "CREATE TABLE t (id int);");
    let dst = database(&c.dest[0], "CREATE TABLE t (id int);");
    let mut holder = c.source.connect(&src);
    holder
        .batch_execute("BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let state = TempPath::new("never-written.state");
    let out = run(&[
        "table",
        "t",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&dst),
        "--state",
        state.arg(),
        "--resume",
        "--lock-timeout",
        "20s",
    ]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("--resume: there is no state file at")
            && !stderr.contains("waiting for lock"),
        "{stderr}"
    );
    holder.batch_execute("ROLLBACK").unwrap();
}

/// A resume whose state file is not there names the state files beside it of jobs to its
/// destinations (ux70 F4: a resume given one destination of two has another default file, and
/// "give the earlier run's --state" left the user among dozens of hash-named files).
#[test]
fn a_resume_without_its_state_file_names_those_of_jobs_to_its_destinations() {
    let c = clusters();
    let src = database(&c.source, "CREATE TABLE t (id int);");
    let (d1, d2) = (
        database(&c.dest[0], "CREATE TABLE t (id int);"),
        database(&c.dest[1], "CREATE TABLE t (id int);"),
    );
    let (from, to1, to2) = (
        c.source.conninfo(&src),
        c.dest[0].conninfo(&d1),
        c.dest[1].conninfo(&d2),
    );
    let earlier = TempPath::new("both-destinations.state");
    let job = [
        "table", "-t", "t", "--from", &from, "--to", &to1, "--to", &to2,
    ];
    assert_exit(&run(&[&job[..], &["--state", earlier.arg()]].concat()), 0);
    let missing = TempPath::new("second-only.state");
    let out = run(&[
        "table",
        "-t",
        "t",
        "--from",
        &from,
        "--to",
        &to2,
        "--state",
        missing.arg(),
        "--resume",
    ]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("there is no state file at")
            && stderr.contains(&format!(
                "of jobs to this destination: --state {}",
                earlier.arg()
            )),
        "{stderr}"
    );
}

/// A state file restored from a copy taken while its job ran (whole lines: nothing torn) lacks
/// the `commit` line of a table that committed after the copy was taken: the resume asks the
/// destination about the transaction the file records it began in, finds it committed, and
/// takes the table as done — it appended it a second time, exit 0 (jobs46 F1). A table whose
/// transaction had not committed is copied as before.
#[test]
fn a_resume_from_a_state_file_copied_mid_run_does_not_copy_a_committed_table_twice() {
    let c = clusters();
    let tables = "CREATE TABLE a (id int); CREATE TABLE b (id int); CREATE TABLE z (id int);";
    let src = database(
        &c.source,
        &format!(
            "{tables} INSERT INTO a SELECT generate_series(1, 300); \
             INSERT INTO b SELECT generate_series(1, 70); INSERT INTO z SELECT 1;"
        ),
    );
    let d1 = database(&c.dest[0], tables);
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&d1));
    let state = TempPath::new("mid-run-copy.state");
    let job = |extra: &[&str]| {
        let mut args = vec![
            "table", "-t", "a", "-t", "b", "-t", "z", "--jobs", "1", "--from", &from, "--to", &to,
            "--state",
        ];
        args.push(state.arg());
        args.extend(extra);
        run(&args)
    };
    assert_exit(&job(&[]), 0);
    // The file as a copy taken just before b's `commit` line was written would hold it.
    let written = fs::read_to_string(&state.0).unwrap();
    let lines: Vec<&str> = written.lines().collect();
    let cut = lines
        .iter()
        .position(|l| l.starts_with("commit") && l.contains("\"b\""))
        .expect(&written);
    assert!(
        lines[..cut]
            .iter()
            .any(|l| l.starts_with("transaction") && l.contains("\"b\"")),
        "{written}"
    );
    fs::write(&state.0, lines[..cut].join("\n") + "\n").unwrap();
    // And z, copied after, is undone on the destination (its rows deleted by hand: as if the
    // copy had stopped before it).
    c.dest[0]
        .connect(&d1)
        .batch_execute("DELETE FROM z")
        .unwrap();
    let out = job(&["--resume"]);
    assert_exit(&out, 0);
    let said = text(&out.stderr) + &text(&out.stdout);
    assert_eq!(count(&c.dest[0], &d1, "a"), 300, "{said}");
    assert_eq!(count(&c.dest[0], &d1, "b"), 70, "{said}");
    assert_eq!(count(&c.dest[0], &d1, "z"), 1, "{said}");
    assert!(
        said.contains("without recording it done") && said.contains("\"b\""),
        "{said}"
    );
}

/// A foreign-key group copied in one transaction (`--truncate`), its child emptied on a
/// destination since: copied again as an emptied table is, not refused as "renamed or swapped"
/// with its parent and sibling, whose own rows are of the same transaction (recheck53c F1).
#[test]
fn a_group_child_emptied_on_a_destination_is_copied_again() {
    let c = clusters();
    let tables = "CREATE TABLE p (id int PRIMARY KEY);
                  CREATE TABLE a (id int, pid int REFERENCES p);
                  CREATE TABLE b (id int, pid int REFERENCES p); CREATE TABLE z (id int);";
    let src = database(
        &c.source,
        &format!(
            "{tables} INSERT INTO p VALUES (1);
             INSERT INTO a SELECT g, 1 FROM generate_series(1, 100) g;
             INSERT INTO b SELECT g, 1 FROM generate_series(1, 50) g;
             INSERT INTO z SELECT generate_series(1, 30);"
        ),
    );
    let d1 = database(&c.dest[0], tables);
    let state = TempPath::new("group-child.state");
    let to = [c.dest[0].conninfo(&d1)];
    let job = |extra: &[&str]| {
        every_table(
            &c.source.conninfo(&src),
            &to,
            &state,
            &[&["--truncate", "--jobs", "1"], extra].concat(),
        )
    };
    assert_exit(&job(&[]), 0);
    (c.dest[0].connect(&d1))
        .batch_execute("TRUNCATE a")
        .unwrap();
    let out = job(&["--resume"]);
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("swapped"), "{stderr}");
    let counts: Vec<i64> = ["p", "a", "b", "z"]
        .iter()
        .map(|t| count(&c.dest[0], &d1, t))
        .collect();
    assert_eq!(counts, [1, 100, 50, 30], "{stderr}");
}

/// A `--truncate` job's last table, every row of it updated on a destination: the plain resume
/// is refused (the restore check finds none of its copy's rows), `--resume --verify` finds it
/// differing and says the next resume copies it again — which it then does: that resume was
/// refused by the same restore check, word for word (recheck54 F7).
#[test]
fn a_last_table_found_differing_is_copied_again_by_the_next_resume() {
    let c = clusters();
    let tables = "CREATE TABLE a (id int, tag text); CREATE TABLE b (id int, tag text);
                  CREATE TABLE z (id int, tag text);";
    let src = database(
        &c.source,
        &format!(
            "{tables} INSERT INTO a SELECT g, 'a' FROM generate_series(1, 100) g;
             INSERT INTO b SELECT g, 'b' FROM generate_series(1, 50) g;
             INSERT INTO z SELECT g, 'z' FROM generate_series(1, 30) g;"
        ),
    );
    let d1 = database(&c.dest[0], tables);
    let state = TempPath::new("last-differs.state");
    let to = [c.dest[0].conninfo(&d1)];
    let job = |extra: &[&str]| {
        let args = [&["--truncate", "--jobs", "1"], extra].concat();
        every_table(&c.source.conninfo(&src), &to, &state, &args)
    };
    assert_exit(&job(&[]), 0);
    (c.dest[0].connect(&d1))
        .batch_execute("UPDATE z SET tag = 'x'")
        .unwrap();
    let out = job(&["--resume"]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("is not where the earlier run left it"),
        "{}",
        text(&out.stderr)
    );
    let out = job(&["--resume", "--verify"]);
    assert_exit(&out, 4);
    assert!(
        text(&out.stderr).contains("--resume empties it there and copies it again"),
        "{}",
        text(&out.stderr)
    );
    let out = job(&["--resume"]);
    assert_exit(&out, 0);
    let tags: i64 = (c.dest[0].connect(&d1))
        .query_one("SELECT count(*) FROM z WHERE tag = 'z'", &[])
        .unwrap()
        .get(0);
    assert_eq!(
        (count(&c.dest[0], &d1, "z"), tags),
        (30, 30),
        "{}",
        text(&out.stderr)
    );
}
