//! The end of a copy, against real clusters: a COMMIT that fails stops the rest and the report
//! says exactly what committed; the source's own statement changes nothing unless every
//! destination committed.

use crate::common;

use common::*;

const ROWS: &str = "CREATE TABLE m (id int8 PRIMARY KEY, v text);
    INSERT INTO m SELECT g, 'v' || g FROM generate_series(1, 1000) AS g;";

/// The pid of the one backend of database `db` (copyman's, while it is paused).
fn copyman_backend(cluster: &copyman_testkit::Cluster, db: &str) -> i32 {
    let rows = cluster
        .connect("postgres")
        .query(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&db],
        )
        .unwrap();
    assert_eq!(rows.len(), 1, "one backend of {db}");
    rows[0].get(0)
}

#[test]
fn a_failed_commit_stops_the_rest_and_says_exactly_what_committed() {
    let c = clusters();
    let src = database(&c.source, ROWS);
    let empty = "CREATE TABLE m (id int8 PRIMARY KEY, v text)";
    let d1 = database(&c.dest[0], empty);
    let d2 = database(&c.dest[1], empty);
    let d3 = database(&c.dest[0], empty);
    let (u1, u2, u3) = (c.dest[0].url(&d1), c.dest[1].url(&d2), c.dest[0].url(&d3));
    let args = [
        "table",
        "m",
        "--from",
        &c.source.url(&src),
        "--to",
        &u1,
        "--to",
        &u2,
        "--to",
        &u3,
        "--json",
    ];
    // Every destination passed its final checks; then destination 2's backend is terminated
    // (an administrator, a failover) before its COMMIT.
    let paused = Paused::start(&args, "checked:3");
    assert!(c.dest[1].terminate_backend(copyman_backend(&c.dest[1], &d2)));
    let out = paused.resume();
    let stderr = text(&out.stderr);

    assert_exit(&out, 4);
    assert_eq!(count(&c.dest[0], &d1, "m"), 1000, "destination 1 committed");
    assert_eq!(count(&c.dest[1], &d2, "m"), 0, "destination 2 died");
    assert_eq!(
        count(&c.dest[0], &d3, "m"),
        0,
        "destination 3 rolled back: the rest stop"
    );
    let summary = json(&out);
    assert_eq!(summary["status"], "partial");
    assert_eq!(summary["committed"], 1);
    assert_eq!(summary["destinations"][0]["status"], "committed");
    assert_eq!(summary["destinations"][1]["status"], "failed");
    assert_eq!(summary["destinations"][2]["status"], "rolled back");
    // The server's words, not the socket's.
    assert_eq!(
        summary["destinations"][1]["error"]["sqlstate"], "57P01",
        "{summary}"
    );
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
    assert!(
        stderr.contains("PARTIAL: 1 of 3 destinations committed"),
        "{stderr}"
    );
    assert!(!stderr.contains("nothing committed"), "{stderr}");
    for (cluster, db) in [(&c.dest[0], &d1), (&c.dest[1], &d2), (&c.dest[0], &d3)] {
        assert_eq!(settle_backends(cluster, db), Vec::<String>::new());
    }
    assert!(prepared_xacts(&c.dest[0]).is_empty());
}

#[test]
fn a_data_modifying_source_statement_commits_only_with_every_destination() {
    let c = clusters();
    let send = "COPY (DELETE FROM m RETURNING id, v) TO STDOUT";
    // A destination refuses one row: the copy fails, and the source deleted nothing.
    let src = database(&c.source, ROWS);
    let d1 = database(&c.dest[0], "CREATE TABLE m (id int8, v text)");
    let d2 = database(
        &c.dest[1],
        "CREATE TABLE m (id int8 CHECK (id <> 500), v text)",
    );
    let out = run(&[
        "copy",
        "--from",
        &c.source.url(&src),
        "--send",
        send,
        "--to",
        &c.dest[0].url(&d1),
        "--to",
        &c.dest[1].url(&d2),
        "--receive",
        "COPY m FROM STDIN",
    ]);
    assert_exit(&out, 1);
    assert!(
        text(&out.stderr).contains("nothing committed"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        count(&c.source, &src, "m"),
        1000,
        "the source's DELETE rolled back"
    );
    assert_eq!(count(&c.dest[0], &d1, "m"), 0);
    assert_eq!(count(&c.dest[1], &d2, "m"), 0);
    assert_eq!(settle_backends(&c.source, &src), Vec::<String>::new());

    // Under --keep-going destination 1 commits and the source's DELETE rolls back: the rows
    // are in both places, said so (commit42 F3: "the rows it wrote are on the source").
    let kept = database(&c.dest[0], "CREATE TABLE m (id int8, v text)");
    let out = run(&[
        "copy",
        "--keep-going",
        "--from",
        &c.source.url(&src),
        "--send",
        send,
        "--to",
        &c.dest[0].url(&kept),
        "--to",
        &c.dest[1].url(&d2),
        "--receive",
        "COPY m FROM STDIN",
    ]);
    assert_exit(&out, 4);
    assert!(
        text(&out.stderr).contains(
            "the source is as it was (the rows a DELETE … RETURNING moved are still there), and \
             the destinations that committed hold the rows it sent too — both places now"
        ),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.source, &src, "m"), 1000);
    assert_eq!(count(&c.dest[0], &kept, "m"), 1000);

    // Every destination takes the rows: then the source's statement commits, last.
    let d2 = database(&c.dest[1], "CREATE TABLE m (id int8, v text)");
    let out = run(&[
        "copy",
        "--from",
        &c.source.url(&src),
        "--send",
        send,
        "--to",
        &c.dest[0].url(&d1),
        "--to",
        &c.dest[1].url(&d2),
        "--receive",
        "COPY m FROM STDIN",
        "-v",
    ]);
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    let commits: Vec<&str> = stderr.lines().filter(|l| l.contains("COMMIT")).collect();
    assert!(
        commits.last().is_some_and(|l| l.contains("source")),
        "the source commits last: {commits:?}"
    );
    assert_eq!(count(&c.source, &src, "m"), 0, "moved");
    assert_eq!(count(&c.dest[0], &d1, "m"), 1000);
    assert_eq!(count(&c.dest[1], &d2, "m"), 1000);
}

#[test]
fn a_table_is_read_from_one_snapshot_in_a_read_only_transaction() {
    let c = clusters();
    let src = database(&c.source, ROWS);
    let d1 = database(&c.dest[0], "CREATE TABLE m (id int8, v text)");
    let out = run(&[
        "table",
        "m",
        "--from",
        &c.source.url(&src),
        "--to",
        &c.dest[0].url(&d1),
        "-v",
    ]);
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("source: BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"),
        "{stderr}"
    );
    assert_eq!(digest(&c.source, &src, "m"), digest(&c.dest[0], &d1, "m"));
}

#[test]
fn a_commit_refused_with_40001_under_serializable_stops_the_rest() {
    let c = clusters();
    let src = database(&c.source, ROWS);
    let plain = "CREATE TABLE m (id int8 PRIMARY KEY, v text)";
    // Destination 2 copies under SERIALIZABLE (its CONN asks for it: a database's default
    // alone is not taken, live52 F4), and each copied row reads table x (a trigger): a
    // concurrent transaction that reads m and writes x makes a read/write cycle, which the
    // server breaks by refusing copyman's COMMIT with 40001.
    let d1 = database(&c.dest[0], plain);
    let d2 = database(
        &c.dest[1],
        "CREATE TABLE m (id int8 PRIMARY KEY, v text);
         CREATE TABLE x (n int);
         CREATE FUNCTION look() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN PERFORM count(*) FROM x; RETURN NEW; END $$;
         CREATE TRIGGER look BEFORE INSERT ON m FOR EACH ROW EXECUTE FUNCTION look();",
    );
    c.dest[1]
        .connect(&d2)
        .batch_execute(&format!(
            "ALTER DATABASE {d2} SET default_transaction_isolation = 'serializable'"
        ))
        .unwrap();
    let d3 = database(&c.dest[0], plain);
    let (u1, u3) = (c.dest[0].url(&d1), c.dest[0].url(&d3));
    let u2 = format!(
        "{}?options=-c%20default_transaction_isolation%3Dserializable",
        c.dest[1].url(&d2)
    );
    let args = [
        "table",
        "m",
        "--from",
        &c.source.url(&src),
        "--to",
        &u1,
        "--to",
        &u2,
        "--to",
        &u3,
        "--json",
    ];
    let paused = Paused::start(&args, "checked:3");
    let mut other = c.dest[1].connect(&d2);
    other
        .batch_execute(
            "BEGIN ISOLATION LEVEL SERIALIZABLE;
             SELECT count(*) FROM m;
             INSERT INTO x VALUES (1);
             COMMIT",
        )
        .unwrap();
    drop(other);
    let out = paused.resume();

    assert_exit(&out, 4);
    let summary = json(&out);
    assert_eq!(summary["destinations"][0]["status"], "committed");
    assert_eq!(summary["destinations"][1]["status"], "failed");
    assert_eq!(
        summary["destinations"][1]["error"]["sqlstate"], "40001",
        "{summary}"
    );
    assert_eq!(summary["destinations"][2]["status"], "rolled back");
    assert_eq!(count(&c.dest[0], &d1, "m"), 1000);
    assert_eq!(count(&c.dest[1], &d2, "m"), 0);
    assert_eq!(count(&c.dest[0], &d3, "m"), 0);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("PARTIAL: 1 of 3"), "{stderr}");
    // Said as its transaction's end, not its COPY's; and the way to bring the others level
    // (commit42 F1: the same command again failed on destination 1, 23505).
    assert!(
        stderr.contains("SQLSTATE 40001: its transaction did not commit: could not serialize"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "copyman: destination 1 committed and destinations 2, 3 did not: to bring them \
             level, run again with only the --to of destinations 2, 3 (mend what failed first)\n"
        ),
        "{stderr}"
    );
    for (cluster, db) in [(&c.dest[0], &d1), (&c.dest[1], &d2), (&c.dest[0], &d3)] {
        assert_eq!(settle_backends(cluster, db), Vec::<String>::new());
    }
    // Followed: the others only.
    let out = run(&[
        "table",
        "m",
        "--from",
        &c.source.url(&src),
        "--to",
        &u2,
        "--to",
        &u3,
    ]);
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[1], &d2, "m"), 1000);
    assert_eq!(count(&c.dest[0], &d3, "m"), 1000);
}

/// A source that wrote nothing (a table's snapshot) whose backend freezes once every destination
/// committed: its COMMIT commits nothing, so --stall-timeout still bounds it and the run ends,
/// every destination committed (recheck42b F1: it waited for ever, past --stall-timeout).
#[test]
fn a_frozen_read_only_source_does_not_hold_a_run_whose_destinations_committed() {
    let c = clusters();
    let src = database(&c.source, ROWS);
    let empty = "CREATE TABLE m (id int8 PRIMARY KEY, v text)";
    let (d1, d2) = (database(&c.dest[0], empty), database(&c.dest[1], empty));
    let args = [
        "table",
        "m",
        "--from",
        &c.source.url(&src),
        "--to",
        &c.dest[0].url(&d1),
        "--to",
        &c.dest[1].url(&d2),
        "--stall-timeout",
        "2s",
    ];
    let paused = Paused::start(&args, "committed:2");
    let pid = copyman_backend(&c.source, &src).to_string();
    let signal = |sig: &str| {
        std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
    };
    signal("-STOP");
    let (tx, rx) = std::sync::mpsc::channel();
    let resumed = paused.resume_in_background();
    std::thread::spawn(move || {
        let _ = tx.send(resumed.join().unwrap());
    });
    let ended = rx.recv_timeout(std::time::Duration::from_secs(60));
    signal("-CONT");
    let out = ended.expect("the run ended while the source's backend was frozen");
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[0], &d1, "m"), 1000);
    assert_eq!(count(&c.dest[1], &d2, "m"), 1000);
}
