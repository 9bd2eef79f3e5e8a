//! `copyman recover` never says "nothing pending" (exit 0) while a transaction of copyman's is
//! still prepared somewhere it can name: the source's transaction of a run decided commit, a
//! transaction in another database of a server given; and a copy blocked by a prepared
//! transaction says which one. Against real clusters that allow prepared transactions, copyman
//! killed (SIGKILL) at a point of its commit.

mod common;

use std::process::Stdio;
use std::sync::{Mutex, MutexGuard};

use common::*;
use serde_json::Value;

const Q: &str = "CREATE TABLE q (id int PRIMARY KEY, v text);";
const FILL: &str = "INSERT INTO q SELECT g, 'v' || g FROM generate_series(1, 100) AS g;";
const SEND: &str = "COPY (DELETE FROM q WHERE id <= 20 RETURNING *) TO STDOUT";
const RECEIVE: &str = "COPY q FROM STDIN";

/// One test at a time: each leaves prepared transactions that a recover of another, on the same
/// servers, rightly counts as pending (in another database).
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `table q --from SRC --to D1 --to D2 --atomic --decision-log LOG`.
fn atomic_copy<'a>(src: &'a str, to: [&'a str; 2], log: &'a TempPath) -> [&'a str; 11] {
    [
        "table",
        "q",
        "--from",
        src,
        "--to",
        to[0],
        "--to",
        to[1],
        "--atomic",
        "--decision-log",
        log.arg(),
    ]
}

fn recover(to: &[String], log: &TempPath) -> std::process::Output {
    let mut args = vec!["recover".to_owned()];
    for url in to {
        args.extend(["--to".to_owned(), url.clone()]);
    }
    args.extend([
        "--decision-log".to_owned(),
        log.arg().to_owned(),
        "--json".to_owned(),
    ]);
    copyman().args(&args).output().expect("run copyman recover")
}

/// Point 1: killed after both destinations committed and before the source's COMMIT PREPARED,
/// a `--send` that deletes leaves the source's `copyman:RUN:0` prepared (its DELETE pending, its
/// rows locked). `recover` given only the destinations names it, leaves it, and exits 1; given
/// the source too, it commits it; after that, the destinations alone are "nothing pending".
#[test]
fn recover_without_the_source_names_the_sources_prepared_transaction_and_exits_1() {
    let _serial = serial();
    let s = two_phase_clusters();
    let src = database(&s.source, &format!("{Q} {FILL}"));
    let dbs = [database(&s.dest[0], Q), database(&s.dest[1], Q)];
    let dest_urls: Vec<String> = s.dest.iter().zip(&dbs).map(|(c, d)| c.url(d)).collect();
    let log = TempPath::new("decisions.log");
    let src_url = s.source.url(&src);
    let mut copy = vec!["copy", "--from", &src_url, "--send", SEND];
    for url in &dest_urls {
        copy.extend(["--to", url]);
    }
    copy.extend([
        "--receive",
        RECEIVE,
        "--atomic",
        "--decision-log",
        log.arg(),
    ]);
    Paused::start(&copy, "commit-prepared:2").kill();

    for (cluster, db) in s.dest.iter().zip(&dbs) {
        assert_eq!(count(cluster, db, "q"), 20, "{db} committed");
        assert_eq!(prepared_in(cluster, db), Vec::<String>::new());
    }
    let source_gids = prepared_in(&s.source, &src);
    assert_eq!(source_gids.len(), 1, "{source_gids:?}");
    let gid = &source_gids[0];
    assert!(gid.starts_with("copyman:") && gid.ends_with(":0"), "{gid}");
    assert_eq!(count(&s.source, &src, "q"), 100, "the DELETE is pending");

    // The destinations only: the source's transaction is named, left alone, exit 1.
    let out = recover(&dest_urls, &log);
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "the source's transaction {gid} was decided commit: give the source's CONN too"
        )),
        "{stderr}"
    );
    let report = json(&out);
    assert_eq!(report["status"], "pending", "{report}");
    let listed: Vec<&Value> = report["prepared"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["gid"] == gid.as_str())
        .collect();
    assert_eq!(listed.len(), 1, "{report}");
    assert_eq!(listed[0]["database"], src.as_str(), "{report}");
    assert_eq!(
        prepared_in(&s.source, &src),
        vec![gid.clone()],
        "left alone"
    );
    assert_eq!(count(&s.source, &src, "q"), 100);

    // With the source: committed, the rows moved exactly once.
    let mut all = dest_urls.clone();
    all.push(src_url.clone());
    let out = recover(&all, &log);
    assert_exit(&out, 0);
    assert_eq!(json(&out)["status"], "ok");
    assert_eq!(prepared_in(&s.source, &src), Vec::<String>::new());
    assert_eq!(count(&s.source, &src, "q"), 80, "moved by recovery");
    for (cluster, db) in s.dest.iter().zip(&dbs) {
        assert_eq!(count(cluster, db, "q"), 20);
    }

    // Finished: the destinations alone are nothing pending now.
    let out = recover(&dest_urls, &log);
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("nothing pending") && !stderr.contains("give the source"),
        "{stderr}"
    );
}

/// Point 1, a destination left out: killed after the decision and before any COMMIT PREPARED,
/// `recover` given one destination commits it and names the other destination's transaction
/// (where it is, as the decision recorded), exit 1.
#[test]
fn recover_names_a_decided_destination_it_was_not_given() {
    let _serial = serial();
    let s = two_phase_clusters();
    let src = database(&s.source, &format!("{Q} {FILL}"));
    let dbs = [database(&s.dest[0], Q), database(&s.dest[1], Q)];
    let dest_urls: Vec<String> = s.dest.iter().zip(&dbs).map(|(c, d)| c.url(d)).collect();
    let log = TempPath::new("decisions.log");
    let src_url = s.source.url(&src);
    let copy = [
        "table",
        "q",
        "--from",
        &src_url,
        "--to",
        &dest_urls[0],
        "--to",
        &dest_urls[1],
        "--atomic",
        "--decision-log",
        log.arg(),
    ];
    Paused::start(&copy, "recorded").kill();
    let second = prepared_in(&s.dest[1], &dbs[1]);
    assert_eq!(second.len(), 1, "{second:?}");

    let out = recover(&dest_urls[..1], &log);
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("{} (the run's destination 2 ", second[0]))
            && stderr
                .contains("was decided commit and is not on the servers given: give its CONN too"),
        "{stderr}"
    );
    assert_eq!(json(&out)["status"], "pending");
    assert_eq!(count(&s.dest[0], &dbs[0], "q"), 100, "committed");
    assert_eq!(prepared_in(&s.dest[1], &dbs[1]), second, "left alone");

    let out = recover(&dest_urls, &log);
    assert_exit(&out, 0);
    for (cluster, db) in s.dest.iter().zip(&dbs) {
        assert_eq!(count(cluster, db, "q"), 100);
        assert_eq!(prepared_in(cluster, db), Vec::<String>::new());
    }
}

/// Point 2: a run to D1/app and D2/other, killed while both are prepared (no decision). Recover
/// given D1/app and D2/app rolls back D1's and counts D2/other's as pending: exit 1, listed in
/// the JSON with its database, status not "ok". Given D2/other, it rolls that back too.
#[test]
fn recover_counts_a_transaction_in_another_database_as_pending() {
    let _serial = serial();
    let s = two_phase_clusters();
    let src = database(&s.source, &format!("{Q} {FILL}"));
    let app1 = database(&s.dest[0], Q);
    let app2 = database(&s.dest[1], Q);
    let other = database(&s.dest[1], Q);
    let log = TempPath::new("decisions.log");
    let (src_url, d1, d2_other) = (
        s.source.url(&src),
        s.dest[0].url(&app1),
        s.dest[1].url(&other),
    );
    let copy = atomic_copy(&src_url, [&d1, &d2_other], &log);
    Paused::start(&copy, "prepared:2").kill();
    let elsewhere = prepared_in(&s.dest[1], &other);
    assert_eq!(elsewhere.len(), 1, "{elsewhere:?}");

    let out = recover(&[d1.clone(), s.dest[1].url(&app2)], &log);
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "1 more in other databases of this server ({other}): give a CONN for each"
        )),
        "{stderr}"
    );
    let report = json(&out);
    assert_eq!(report["status"], "pending", "{report}");
    let listed: Vec<&Value> = report["prepared"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["gid"] == elsewhere[0].as_str())
        .collect();
    assert_eq!(listed.len(), 1, "{report}");
    assert_eq!(listed[0]["database"], other.as_str());
    assert_eq!(
        prepared_in(&s.dest[0], &app1),
        Vec::<String>::new(),
        "rolled back"
    );
    assert_eq!(prepared_in(&s.dest[1], &other), elsewhere, "left alone");

    let out = recover(&[d1, d2_other], &log);
    assert_exit(&out, 0);
    assert_eq!(json(&out)["status"], "ok");
    assert_eq!(prepared_in(&s.dest[1], &other), Vec::<String>::new());
    assert_eq!(count(&s.dest[0], &app1, "q"), 0);
    assert_eq!(count(&s.dest[1], &other, "q"), 0);
}

/// A run still in progress holds prepared transactions in databases recover is not given a CONN
/// of: recover says them, left alone, and exits 1 (it said "nothing pending", exit 0, status
/// ok, while they held their locks). Once the run has ended, nothing is pending.
#[test]
fn recover_says_a_live_runs_transactions_in_another_database() {
    let _serial = serial();
    let s = two_phase_clusters();
    let src = database(&s.source, &format!("{Q} {FILL}"));
    let (run1, run2) = (database(&s.dest[0], Q), database(&s.dest[1], Q));
    let (given1, given2) = (database(&s.dest[0], Q), database(&s.dest[1], Q));
    let log = TempPath::new("decisions.log");
    let (src_url, d1, d2) = (
        s.source.url(&src),
        s.dest[0].url(&run1),
        s.dest[1].url(&run2),
    );
    let copy = atomic_copy(&src_url, [&d1, &d2], &log);
    let paused = Paused::start(&copy, "prepared:2");
    assert_eq!(prepared_in(&s.dest[0], &run1).len(), 1);
    assert_eq!(prepared_in(&s.dest[1], &run2).len(), 1);
    let given = [s.dest[0].url(&given1), s.dest[1].url(&given2)];
    let out = recover(&given, &log);
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    for db in [&run1, &run2] {
        assert!(
            stderr.contains(&format!(
                "1 more in other databases of this server ({db}), of a run still in progress: \
                 left alone"
            )),
            "{stderr}"
        );
    }
    assert!(!stderr.contains("nothing pending"), "{stderr}");
    let report = json(&out);
    assert_eq!(report["status"], "pending", "{report}");
    assert_eq!(
        report["prepared"].as_array().map(Vec::len),
        Some(2),
        "{report}"
    );
    // Left alone: the run goes on and commits.
    assert_exit(&paused.resume(), 0);
    assert_eq!(count(&s.dest[0], &run1, "q"), 100);
    assert_eq!(count(&s.dest[1], &run2, "q"), 100);
    let out = recover(&given, &log);
    assert_exit(&out, 0);
    assert_eq!(json(&out)["status"], "ok");
}

/// Point 3: a copy blocked by a prepared transaction (an earlier run killed after it prepared)
/// says which one holds the lock and how to finish it, not "held by backend 0"; released, the
/// copy goes on.
#[test]
fn a_lock_held_by_a_prepared_transaction_is_named_with_its_gid() {
    let _serial = serial();
    let s = two_phase_clusters();
    let src = database(&s.source, &format!("{Q} {FILL}"));
    let db = database(&s.dest[0], Q);
    let gid = "copyman:1700000000-4242-beef:1";
    s.dest[0]
        .connect(&db)
        .batch_execute(&format!(
            "BEGIN; LOCK TABLE q IN ACCESS EXCLUSIVE MODE; PREPARE TRANSACTION '{gid}'"
        ))
        .unwrap();
    let mut child = copyman()
        .args([
            "table",
            "q",
            "--from",
            &s.source.url(&src),
            "--to",
            &s.dest[0].url(&db),
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = StderrLines::take(&mut child);
    let line = stderr.wait_for("waiting for lock on destination 1 (");
    // Released whatever was said, so that the copy ends.
    s.dest[0]
        .connect(&db)
        .batch_execute(&format!("ROLLBACK PREPARED '{gid}'"))
        .unwrap();
    let line = line.unwrap_or_else(|| panic!("never said it waits:\n{}", stderr.seen()));
    assert!(
        line.contains(&format!(
            "held by the prepared transaction {gid} (run `copyman recover --to CONN`"
        )),
        "{line}"
    );
    assert!(!line.contains("backend 0"), "{line}");
    let rest = stderr.unseen();
    assert_eq!(child.wait().unwrap().code(), Some(0), "{rest}");
    assert_eq!(count(&s.dest[0], &db, "q"), 100);
    assert_eq!(prepared_in(&s.dest[0], &db), Vec::<String>::new());
}

/// Point 3 in a job of many tables (as a `--resume` after a killed run): the job's watch names
/// the prepared transaction that holds the lock a table's COPY waits for.
#[test]
fn a_job_blocked_by_a_prepared_transaction_names_it() {
    let _serial = serial();
    let s = two_phase_clusters();
    let r = "CREATE TABLE r (id int PRIMARY KEY);";
    let src = database(
        &s.source,
        &format!("{Q} {FILL} {r} INSERT INTO r SELECT generate_series(1, 10);"),
    );
    let db = database(&s.dest[0], &format!("{Q} {r}"));
    let gid = "copyman:1700000000-4243-beef:1";
    s.dest[0]
        .connect(&db)
        .batch_execute(&format!(
            "BEGIN; LOCK TABLE r IN SHARE MODE; PREPARE TRANSACTION '{gid}'"
        ))
        .unwrap();
    let state = TempPath::new("job.state");
    let mut child = copyman()
        .args([
            "table",
            "q",
            "r",
            "--from",
            &s.source.url(&src),
            "--to",
            &s.dest[0].url(&db),
            "--state",
            state.arg(),
            "--jobs",
            "1",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = StderrLines::take(&mut child);
    let line = stderr.wait_for("waiting for lock on destination 1 (");
    s.dest[0]
        .connect(&db)
        .batch_execute(&format!("ROLLBACK PREPARED '{gid}'"))
        .unwrap();
    let line = line.unwrap_or_else(|| panic!("never said it waits:\n{}", stderr.seen()));
    assert!(
        line.contains(&format!(
            "held by the prepared transaction {gid} (run `copyman recover --to CONN`"
        )),
        "{line}"
    );
    let rest = stderr.unseen();
    assert_eq!(child.wait().unwrap().code(), Some(0), "{rest}");
    assert_eq!(count(&s.dest[0], &db, "q"), 100);
    assert_eq!(count(&s.dest[0], &db, "r"), 10);
}
