//! Clones of one server (a copied data directory, `pg_basebackup`, a restore) share its system
//! identifier and oids. Running side by side they are two destinations: not refused as one
//! database given twice, and a job's state file tells them apart, so a resume never takes one's
//! records for the other's. Real clusters: a destination and its clone, made for this binary.

use crate::common;

use common::*;
use copyman_testkit::Cluster;

const TABLES: &str = "CREATE TABLE t (id int PRIMARY KEY, v text); CREATE TABLE u (id int);";

/// Tester P's false refusal and the review's resume: the clone fails its table (a CHECK the
/// original has not), is mended, and `--resume` copies it there (it skipped the clone, whose
/// records it took the original's for, and exited 0 with 0 rows on it).
#[test]
fn clones_are_two_destinations_and_a_resume_tells_them_apart() {
    let c = clusters();
    let src = database(
        &c.source,
        &format!(
            "{TABLES} INSERT INTO t SELECT g, 'v' FROM generate_series(1, 1000) g;
             INSERT INTO u VALUES (1);"
        ),
    );
    let original = Cluster::start();
    let db = database(&original, TABLES);
    let clone = original.clone_data();
    clone
        .connect(&db)
        .batch_execute("ALTER TABLE t ADD CONSTRAINT small CHECK (id < 500)")
        .unwrap();
    let state = TempPath::new("clones.state");
    let (from, to1, to2) = (
        c.source.conninfo(&src),
        original.conninfo(&db),
        clone.conninfo(&db),
    );
    let args = |resume: bool| {
        let mut args = vec![
            "table",
            "public.t",
            "public.u",
            "--from",
            &from,
            "--to",
            &to1,
            "--to",
            &to2,
            "--keep-going",
            "--state",
            state.arg(),
        ];
        if resume {
            args.push("--resume");
        }
        run(&args)
    };
    let first = args(false);
    assert_exit(&first, 4);
    assert_eq!(count(&original, &db, "t"), 1000);
    assert_eq!(count(&clone, &db, "t"), 0);
    clone
        .connect(&db)
        .batch_execute("ALTER TABLE t DROP CONSTRAINT small")
        .unwrap();
    let resumed = args(true);
    assert_exit(&resumed, 0);
    for server in [&original, &clone] {
        assert_eq!(count(server, &db, "t"), 1000);
        assert_eq!(count(server, &db, "u"), 1);
    }

    // A job to the original alone, resumed with its clone added: refused, saying why as it is
    // (it said pg_control_system() was not readable there).
    let alone = TempPath::new("clones-added.state");
    let job = |to: &[&str], resume: bool| {
        let mut args = vec![
            "table",
            "public.t",
            "public.u",
            "--from",
            &from,
            "--truncate",
        ];
        for to in to {
            args.extend(["--to", to]);
        }
        args.extend(["--state", alone.arg()]);
        if resume {
            args.push("--resume");
        }
        run(&args)
    };
    assert_exit(&job(&[&to1], false), 0);
    let out = job(&[&to1, &to2], true);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("a clone: one system identifier and database oid")
            && !stderr.contains("pg_control_system() is not readable"),
        "{stderr}"
    );
}
