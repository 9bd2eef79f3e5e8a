//! The job layer's faults against real clusters: a lock held on one destination while the job
//! is planned, a range of a split table that fails, a `--verify` mismatch and its resume.

mod common;

use std::sync::Mutex;
use std::thread;
use std::time::Duration;

use common::*;
use copyman_job::job::{self, DestPlan, Event, Options, Status};
use copyman_job::select::Selection;
use copyman_testkit::Cluster;

/// Backends of `db` (but `except`) that are not idle, once those that are going have gone
/// (a cancel is asynchronous: bounded wait, 10 s).
fn busy_backends(cluster: &Cluster, db: &str, except: &[i32]) -> Vec<String> {
    let mut client = cluster.connect("postgres");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let busy: Vec<String> = client
            .query(
                "SELECT pid::text || ' ' || coalesce(state, '') || ' ' || \
                 coalesce(wait_event_type, '') || ': ' || query FROM pg_stat_activity \
                 WHERE datname = $1 AND pid <> pg_backend_pid() AND pid <> ALL($2) \
                 AND state <> 'idle'",
                &[&db, &except],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        if busy.is_empty() || std::time::Instant::now() > deadline {
            return busy;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_lock_held_on_one_destination_while_planning_fails_only_that_table_there() {
    let schema = "CREATE TABLE a (id int); CREATE TABLE b (id int);";
    let stall = Duration::from_secs(2);
    let (source, dests, _, dbs) = setup_timed(
        &format!(
            "{schema} INSERT INTO a SELECT generate_series(1, 100);
             INSERT INTO b SELECT generate_series(1, 50);"
        ),
        schema,
        2,
        Some(stall),
    );
    let c = clusters();
    // Another session holds a on destination 2 for the whole job.
    let mut holder = c.dest[1].connect(&dbs[1]);
    let holder_pid: i32 = holder
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    let mut tx = holder.transaction().unwrap();
    tx.batch_execute("LOCK TABLE a IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let options = Options {
        keep_going: true,
        stall_timeout: Some(stall),
        ..Options::new(state_path("planning-lock"))
    };
    let plan = job::plan(&source, &dests, &Selection::default(), &options).unwrap();
    let planned = |name: &str| {
        plan.tables
            .iter()
            .find(|t| t.table.name.as_str() == name)
            .unwrap()
            .destinations
            .clone()
    };
    // a cannot be planned on destination 2 (its lookup waited for the lock); b can.
    assert!(matches!(planned("a")[0], DestPlan::Copy { .. }));
    let DestPlan::Refused(error) = &planned("a")[1] else {
        panic!("{:?}", planned("a"))
    };
    assert!(
        error.message.contains("stalled")
            && error
                .message
                .contains(&format!("held by backend {holder_pid}"))
            && error.message.contains("cancelled"),
        "{error}"
    );
    assert!(
        planned("b")
            .iter()
            .all(|d| matches!(d, DestPlan::Copy { .. })),
        "{:?}",
        planned("b")
    );
    // The lookup given up does not wait on: no session of the job is left busy there.
    assert_eq!(
        busy_backends(&c.dest[1], &dbs[1], &[holder_pid]),
        Vec::<String>::new()
    );

    let report = job::run(plan, &source, &dests, &options, &|_| {}).unwrap();
    // A partial job: something committed, not everything.
    assert!(!report.succeeded() && report.committed_any(), "{report:#?}");
    let a = table(&report, "a");
    assert_eq!(a.destinations[0].status, Status::Committed, "{a:#?}");
    assert_eq!(a.destinations[1].status, Status::Failed, "{a:#?}");
    let error = a.destinations[1].error.as_ref().unwrap();
    assert!(
        error.message.contains("waiting for a lock (relation)"),
        "{error}"
    );
    let b = table(&report, "b");
    assert!(
        b.destinations.iter().all(|d| d.status == Status::Committed),
        "{b:#?}"
    );
    // After the job, nothing of it runs on destination 2.
    assert_eq!(
        busy_backends(&c.dest[1], &dbs[1], &[holder_pid]),
        Vec::<String>::new()
    );
    tx.rollback().unwrap();
    assert_eq!(digest(&c.dest[0], &dbs[0], "a").0, 100);
    assert_eq!(digest(&c.dest[1], &dbs[1], "a").0, 0);
    for (d, db) in c.dest.iter().zip(&dbs) {
        assert_eq!(digest(d, db, "b").0, 50);
    }
    let _ = std::fs::remove_file(&options.state);
}

#[test]
fn a_range_that_fails_stops_its_sibling_ranges_and_nothing_of_the_table_commits() {
    let schema = "CREATE TABLE big (id int PRIMARY KEY, pad text);";
    let rows = 200_000;
    let (source, dests, _, dbs) = setup(
        &format!(
            "{schema}
             INSERT INTO big SELECT g, repeat('r', 100) FROM generate_series(1, {rows}) g;"
        ),
        schema,
        2,
    );
    let c = clusters();
    // Destination 2 refuses the table's fifth row: in its first range (the lowest pages).
    c.dest[1]
        .connect(&dbs[1])
        .batch_execute("ALTER TABLE big ADD CHECK (id <> 5)")
        .unwrap();
    let options = Options {
        jobs: 4,
        split_larger_than: Some(1 << 20),
        // Slow enough that ranges streaming to their end would carry the whole table.
        max_rate: Some(8 << 20),
        ..Options::new(state_path("split-sibling"))
    };
    let plan = job::plan(&source, &dests, &Selection::default(), &options).unwrap();
    assert_eq!(plan.tables[0].table.name.as_str(), "big");
    let n = plan.tables[0].ranges.len();
    assert_eq!(n, 4, "{:?}", plan.tables[0].ranges);
    // The rows the big table's ranges moved, as its worker's progress said them.
    let moved = Mutex::new(0u64);
    let big_worker = Mutex::new(None);
    let report = job::run(plan, &source, &dests, &options, &|event| match event {
        Event::TableStarted { worker, table, .. } if table.name.as_str() == "big" => {
            *big_worker.lock().unwrap() = Some(worker);
        }
        Event::Progress { worker, rows, .. } if *big_worker.lock().unwrap() == Some(worker) => {
            let mut moved = moved.lock().unwrap();
            *moved = (*moved).max(rows);
        }
        _ => {}
    })
    .unwrap();
    assert!(
        !report.succeeded() && !report.committed_any(),
        "{report:#?}"
    );
    let big = table(&report, "big");
    // Destination 2 says which range failed and why; destination 1 was rolled back.
    assert_eq!(big.destinations[1].status, Status::Failed, "{big:#?}");
    let error = big.destinations[1].error.as_ref().unwrap();
    assert_eq!(error.sqlstate.as_deref(), Some("23514"), "{error}");
    assert!(
        error.message.starts_with(&format!("range 1 of {n}: ")),
        "{error}"
    );
    assert_eq!(big.destinations[0].status, Status::RolledBack, "{big:#?}");
    let stopped = report.stopped.clone().unwrap();
    assert!(
        stopped.contains("range 1 of") && stopped.contains("23514"),
        "{stopped}"
    );
    // The sibling ranges stopped: far from every row of the table went.
    let moved = moved.into_inner().unwrap();
    assert!(
        moved < rows / 2,
        "the ranges moved {moved} of {rows} rows after one of them failed"
    );
    // Nothing of it anywhere, and no session left behind in a COPY or a transaction.
    for (d, db) in c.dest.iter().zip(&dbs) {
        assert_eq!(digest(d, db, "big").0, 0, "on {db}");
        assert_eq!(busy_backends(d, db, &[]), Vec::<String>::new(), "on {db}");
    }
    let recorded = copyman_job::state::read(&options.state).unwrap();
    assert!(recorded.done.is_empty(), "{recorded:?}");
    let _ = std::fs::remove_file(&options.state);
}

#[test]
fn a_verify_mismatch_is_not_recorded_done_and_a_resume_copies_it_again_without_duplicates() {
    let schema = "CREATE TABLE t (id int PRIMARY KEY, v text); CREATE TABLE big (id int, v text);";
    let (source, dests, src_db, dbs) = setup(
        &format!(
            "{schema}
             INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 1000) g;
             INSERT INTO big SELECT g, repeat('b', 100) FROM generate_series(1, 20000) g;"
        ),
        schema,
        2,
    );
    let c = clusters();
    // Destination 2 changes a value of each table on insert: the checksums differ there.
    c.dest[1]
        .connect(&dbs[1])
        .batch_execute(
            "CREATE FUNCTION change() RETURNS trigger LANGUAGE plpgsql AS
               $$ BEGIN IF NEW.id = 1 THEN NEW.v := 'changed'; END IF; RETURN NEW; END $$;
             CREATE TRIGGER change BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION change();
             CREATE TRIGGER change BEFORE INSERT ON big FOR EACH ROW EXECUTE FUNCTION change();",
        )
        .unwrap();
    let options = Options {
        jobs: 2,
        verify: true,
        // (So that t failing in the first resume leaves big to go on.)
        keep_going: true,
        split_larger_than: Some(1 << 20),
        ..Options::new(state_path("verify-mismatch"))
    };
    let plan = job::plan(&source, &dests, &Selection::default(), &options).unwrap();
    assert_eq!(plan.tables[0].table.name.as_str(), "big");
    assert!(!plan.tables[0].ranges.is_empty(), "big is split");
    assert!(plan.tables[1].ranges.is_empty(), "t is not");
    // The state file names each destination by its identity.
    let keys = plan.keys.clone();
    let report = job::run(plan, &source, &dests, &options, &|_| {}).unwrap();
    // Committed everywhere, but different on destination 2: a partial job.
    assert!(!report.succeeded() && report.committed_any(), "{report:#?}");
    for name in ["t", "big"] {
        let r = table(&report, name);
        assert_eq!(r.destinations[0].status, Status::Committed, "{r:#?}");
        assert_eq!(r.destinations[0].verified, Some(true), "{r:#?}");
        assert_eq!(r.destinations[1].status, Status::Committed, "{r:#?}");
        assert_eq!(r.destinations[1].verified, Some(false), "{r:#?}");
        let error = r.destinations[1].error.as_ref().unwrap();
        assert!(
            error.message.contains("checksum differs")
                && error.message.contains("not recorded as done"),
            "{error}"
        );
    }
    // The state file: done on destination 1; on destination 2, a mismatch, not done.
    let recorded = copyman_job::state::read(&options.state).unwrap();
    for name in [r#""public"."t""#, r#""public"."big""#] {
        assert!(recorded.done(name, &keys[0]).is_some(), "{recorded:?}");
        assert_eq!(recorded.done(name, &keys[1]), None, "{recorded:?}");
        assert!(
            recorded.mismatched(name, &keys[1]).is_some(),
            "{recorded:?}"
        );
    }

    // A resume with --truncate takes both up again on destination 2, emptying them first. t
    // cannot be emptied there now (rows of r, not in the job, refer to it): it is refused while
    // planning, saying what to do.
    c.dest[1]
        .connect(&dbs[1])
        .batch_execute("CREATE TABLE r (t_id int REFERENCES t (id)); INSERT INTO r VALUES (1);")
        .unwrap();
    // Not without --truncate: the tables may hold rows the job did not write, which emptying
    // them would delete. A resume that verifies (as this job's must) compares them again there
    // instead, not copied (sweep58 F2: mended by hand, they are done once they match).
    let append = Options {
        resume: true,
        ..options.clone()
    };
    let again = job::plan(&source, &dests, &Selection::default(), &append).unwrap();
    for t in &again.tables {
        assert!(
            matches!(t.destinations[1], DestPlan::Done(_)),
            "{:?}",
            t.destinations
        );
    }
    assert!(
        again
            .notes
            .iter()
            .any(|n| n.contains("compared again (--verify), not copied")),
        "{:?}",
        again.notes
    );
    let resume = Options {
        resume: true,
        truncate: true,
        ..options.clone()
    };
    let plan = job::plan(&source, &dests, &Selection::default(), &resume).unwrap();
    for t in &plan.tables {
        assert!(matches!(t.destinations[0], DestPlan::Done(_)), "{t:?}");
        match &t.destinations[1] {
            DestPlan::Refused(error) if t.table.name.as_str() == "t" => {
                assert_eq!(error.sqlstate.as_deref(), Some("23503"), "{error}");
                // r is the destination's own (the source has none): not advised into the job.
                assert!(
                    error.message.contains(
                        r#"rows of "public"."r" there, a table of that destination's own"#
                    ) && !error.message.contains("to the job"),
                    "{error}"
                );
            }
            DestPlan::Copy { truncate: true, .. } if t.table.name.as_str() == "big" => {}
            other => panic!("{}: {other:?}", t.table),
        }
    }
    // Mended by hand: r's row deleted there. t is emptied (a DELETE, which the foreign key
    // checks) and copied again; so is big: once, still different (the trigger is there).
    c.dest[1]
        .connect(&dbs[1])
        .batch_execute("DELETE FROM r")
        .unwrap();
    let plan = job::plan(&source, &dests, &Selection::default(), &resume).unwrap();
    let report = job::run(plan, &source, &dests, &resume, &|_| {}).unwrap();
    assert!(!report.succeeded(), "{report:#?}");
    for name in ["t", "big"] {
        let r = table(&report, name);
        assert_eq!(r.destinations[0].status, Status::AlreadyDone, "{r:#?}");
        assert_eq!(r.destinations[1].status, Status::Committed, "{r:#?}");
        assert_eq!(r.destinations[1].verified, Some(false), "{r:#?}");
    }
    assert_eq!(digest(&c.dest[1], &dbs[1], "big").0, 20000);
    assert_eq!(digest(&c.dest[1], &dbs[1], "t").0, 1000);

    // With the destination mended, a resume copies both again there, and they match.
    c.dest[1]
        .connect(&dbs[1])
        .batch_execute("DROP TABLE r; DROP TRIGGER change ON t; DROP TRIGGER change ON big;")
        .unwrap();
    let plan = job::plan(&source, &dests, &Selection::default(), &resume).unwrap();
    let report = job::run(plan, &source, &dests, &resume, &|_| {}).unwrap();
    assert!(report.succeeded(), "{report:#?}");
    for name in ["t", "big"] {
        let r = table(&report, name);
        assert_eq!(r.destinations[0].status, Status::AlreadyDone, "{r:#?}");
        assert_eq!(r.destinations[1].status, Status::Committed, "{r:#?}");
        assert_eq!(r.destinations[1].verified, Some(true), "{r:#?}");
        let expected = digest(&c.source, &src_db, name);
        for (d, db) in c.dest.iter().zip(&dbs) {
            assert_eq!(digest(d, db, name), expected, "{name} on {db}");
        }
    }
    let recorded = copyman_job::state::read(&options.state).unwrap();
    for name in [r#""public"."t""#, r#""public"."big""#] {
        for key in &keys {
            assert!(recorded.done(name, key).is_some(), "{recorded:?}");
        }
    }
    let _ = std::fs::remove_file(&options.state);
}

#[test]
fn a_copy_that_stalls_on_a_lock_is_cancelled_and_its_session_replaced() {
    let schema = "CREATE TABLE a (id int); CREATE TABLE b (id int);";
    let stall = Duration::from_secs(2);
    let (source, dests, _, dbs) = setup(
        &format!(
            "{schema} INSERT INTO a SELECT generate_series(1, 100);
             INSERT INTO b SELECT generate_series(1, 50);"
        ),
        schema,
        2,
    );
    let c = clusters();
    let options = Options {
        keep_going: true,
        jobs: 1,
        stall_timeout: Some(stall),
        ..Options::new(state_path("copy-lock"))
    };
    let plan = job::plan(&source, &dests, &Selection::default(), &options).unwrap();
    // Planned, then another session takes a on destination 2: the COPY waits for the lock.
    let mut holder = c.dest[1].connect(&dbs[1]);
    let holder_pid: i32 = holder
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    let mut tx = holder.transaction().unwrap();
    tx.batch_execute("LOCK TABLE a IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let report = job::run(plan, &source, &dests, &options, &|_| {}).unwrap();
    assert!(!report.succeeded() && report.committed_any(), "{report:#?}");
    let a = table(&report, "a");
    assert_eq!(a.destinations[0].status, Status::Committed, "{a:#?}");
    assert_eq!(a.destinations[1].status, Status::Failed, "{a:#?}");
    let error = a.destinations[1].error.as_ref().unwrap();
    // The COPY's start stalled (the stall rule times a start too, and the endpoint cancels the
    // abandoned start itself, so the session is usable at once; the `copyman` command's watch
    // says whose lock it waited for while it waits).
    assert!(
        error.message.contains("stalled") && error.message.contains("no byte moved"),
        "{error}"
    );
    // The same worker copied b there next, on a new session.
    let b = table(&report, "b");
    assert!(
        b.destinations.iter().all(|d| d.status == Status::Committed),
        "{b:#?}"
    );
    assert_eq!(
        busy_backends(&c.dest[1], &dbs[1], &[holder_pid]),
        Vec::<String>::new()
    );
    tx.rollback().unwrap();
    assert_eq!(digest(&c.dest[1], &dbs[1], "a").0, 0);
    assert_eq!(digest(&c.dest[1], &dbs[1], "b").0, 50);
    let _ = std::fs::remove_file(&options.state);
}

/// `--truncate` on a table large enough to split copies it whole, its TRUNCATE and COPY in one
/// transaction: a failure leaves every destination's old rows as they were (a TRUNCATE committed
/// ahead of the ranges would have left the table empty; a DELETE in one range's transaction would
/// have made the others wait for it on every key it frees, for ever). When the copy succeeds the
/// old rows are gone and the source's are there once.
#[test]
fn a_table_replaced_with_truncate_is_not_split_and_keeps_its_old_rows_when_it_fails() {
    let schema = "CREATE TABLE big (id int PRIMARY KEY, pad text);";
    let rows = 20_000;
    let (source, dests, src_db, dbs) = setup(
        &format!(
            "{schema}
             INSERT INTO big SELECT g, repeat('r', 100) FROM generate_series(1, {rows}) g;"
        ),
        schema,
        2,
    );
    let c = clusters();
    // Old rows on both destinations, keys the source has too all through the table.
    for (d, db) in c.dest.iter().zip(&dbs) {
        d.connect(db)
            .batch_execute(&format!(
                "INSERT INTO big SELECT g, 'old' FROM generate_series(1, {rows}, 7) g"
            ))
            .unwrap();
    }
    let old: Vec<_> = c
        .dest
        .iter()
        .zip(&dbs)
        .map(|(d, db)| digest(d, db, "big"))
        .collect();
    // Destination 2 refuses one of the source's last rows (not among its old ones).
    c.dest[1]
        .connect(&dbs[1])
        .batch_execute(&format!("ALTER TABLE big ADD CHECK (id <> {})", rows - 1))
        .unwrap();
    let options = Options {
        jobs: 4,
        truncate: true,
        split_larger_than: Some(256 << 10),
        ..Options::new(state_path("split-truncate"))
    };
    let plan = job::plan(&source, &dests, &Selection::default(), &options).unwrap();
    assert!(
        plan.tables[0].ranges.is_empty(),
        "{:?}",
        plan.tables[0].ranges
    );
    // And the plan says so (it said nothing, where the README said it would).
    assert!(
        plan.notes
            .iter()
            .any(|n| n.contains("copied whole, not split: it is emptied first")),
        "{:?}",
        plan.notes
    );
    assert!(
        plan.tables[0].destinations.iter().all(|d| matches!(
            d,
            DestPlan::Copy {
                truncate: true,
                freeze: true,
                ..
            }
        )),
        "{:?}",
        plan.tables[0].destinations
    );
    let report = job::run(plan, &source, &dests, &options, &|_| {}).unwrap();
    assert!(
        !report.succeeded() && !report.committed_any(),
        "{report:#?}"
    );
    let big = table(&report, "big");
    assert_eq!(big.destinations[1].status, Status::Failed, "{big:#?}");
    for ((d, db), old) in c.dest.iter().zip(&dbs).zip(&old) {
        assert_eq!(&digest(d, db, "big"), old, "the old rows on {db}");
        assert_eq!(busy_backends(d, db, &[]), Vec::<String>::new(), "on {db}");
    }
    let _ = std::fs::remove_file(&options.state);

    // Without the refusal the table is replaced on both.
    c.dest[1]
        .connect(&dbs[1])
        .batch_execute("ALTER TABLE big DROP CONSTRAINT big_id_check")
        .unwrap();
    let plan = job::plan(&source, &dests, &Selection::default(), &options).unwrap();
    let report = job::run(plan, &source, &dests, &options, &|_| {}).unwrap();
    assert!(report.succeeded(), "{report:#?}");
    let expected = digest(&c.source, &src_db, "big");
    for (d, db) in c.dest.iter().zip(&dbs) {
        assert_eq!(digest(d, db, "big"), expected, "on {db}");
    }
    let _ = std::fs::remove_file(&options.state);
}

/// A split table's records name its destinations as every other record does (by identity):
/// a resume of one that began and is not recorded done (its ranges committed, the job killed
/// before its `done` lines) asks each destination about the transactions of its ranges (its
/// `commit` line), finds them committed, and records it done: never copied a second time.
#[test]
fn a_resumed_split_table_whose_ranges_committed_is_not_copied_twice() {
    let schema = "CREATE TABLE big (id int PRIMARY KEY, pad text);";
    let (source, dests, src_db, dbs) = setup(
        &format!(
            "{schema}
             INSERT INTO big SELECT g, repeat('r', 100) FROM generate_series(1, 20000) g;"
        ),
        schema,
        2,
    );
    let c = clusters();
    let options = Options {
        jobs: 4,
        split_larger_than: Some(256 << 10),
        ..Options::new(state_path("split-begun"))
    };
    let plan = job::plan(&source, &dests, &Selection::default(), &options).unwrap();
    assert!(
        plan.tables[0].ranges.len() > 1,
        "{:?}",
        plan.tables[0].ranges
    );
    let report = job::run(plan, &source, &dests, &options, &|_| {}).unwrap();
    assert!(report.succeeded(), "{report:#?}");
    // As if killed after the ranges committed, before their `done` lines.
    let state = std::fs::read_to_string(&options.state).unwrap();
    let begun: String = state
        .lines()
        .filter(|l| !l.starts_with("done"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&options.state, begun).unwrap();
    let resume = Options {
        resume: true,
        ..options.clone()
    };
    let plan = job::plan(&source, &dests, &Selection::default(), &resume).unwrap();
    assert!(
        plan.tables[0]
            .destinations
            .iter()
            .all(|d| matches!(d, DestPlan::Done(20000))),
        "{:?}",
        plan.tables[0].destinations
    );
    let report = job::run(plan, &source, &dests, &resume, &|_| {}).unwrap();
    assert!(report.succeeded(), "{report:#?}");
    let expected = digest(&c.source, &src_db, "big");
    for (d, db) in c.dest.iter().zip(&dbs) {
        assert_eq!(digest(d, db, "big"), expected, "on {db}");
    }
    // Recorded done now: the next resume does not ask again.
    let state = std::fs::read_to_string(&options.state).unwrap();
    assert_eq!(
        state.lines().filter(|l| l.starts_with("done")).count(),
        2,
        "{state}"
    );
    let _ = std::fs::remove_file(&options.state);
}

/// An append (no `--truncate`) whose split table committed some of its ranges on a destination
/// and not the others: its resume refuses the table there, never empties it — emptying it
/// deleted rows the destination held before the job (the tester's 2 rows, gone, exit 0).
#[test]
fn a_resumed_append_of_a_partly_committed_split_table_is_refused_never_emptied() {
    let schema = "CREATE TABLE big (id int PRIMARY KEY, pad text);";
    let (source, dests, src_db, dbs) = setup(
        &format!(
            "{schema}
             INSERT INTO big SELECT g, repeat('r', 100) FROM generate_series(1, 20000) g;"
        ),
        schema,
        1,
    );
    let c = clusters();
    // A row of the destination's own, before the job.
    c.dest[0]
        .connect(&dbs[0])
        .batch_execute("INSERT INTO big VALUES (1000001, 'mine')")
        .unwrap();
    let options = Options {
        jobs: 4,
        split_larger_than: Some(256 << 10),
        ..Options::new(state_path("split-partial"))
    };
    let plan = job::plan(&source, &dests, &Selection::default(), &options).unwrap();
    assert!(
        plan.tables[0].ranges.len() > 1,
        "{:?}",
        plan.tables[0].ranges
    );
    let report = job::run(plan, &source, &dests, &options, &|_| {}).unwrap();
    assert!(report.succeeded(), "{report:#?}");
    // As if the job died between its ranges' COMMITs: the first range's transaction stands for
    // one that rolled back there, and no `done` line was written.
    let aborted: i64 = {
        let mut client = c.dest[0].connect(&dbs[0]);
        let mut tx = client.transaction().unwrap();
        let xid: i64 = tx.query_one("SELECT txid_current()", &[]).unwrap().get(0);
        tx.rollback().unwrap();
        xid
    };
    let state = std::fs::read_to_string(&options.state).unwrap();
    let mut first = None;
    let partial: String = state
        .lines()
        .filter(|l| !l.starts_with("done"))
        .map(|l| match l.strip_prefix("commit\t") {
            Some(rest) => {
                let (head, xids) = rest.rsplit_once('\t').unwrap();
                let mut xids = xids.split(',');
                first = xids.next().and_then(|x| x.parse::<u64>().ok());
                let rest_xids: Vec<&str> = xids.collect();
                assert!(!rest_xids.is_empty(), "one xid per range: {l}");
                format!("commit\t{head}\t{aborted},{}\n", rest_xids.join(","))
            }
            None => format!("{l}\n"),
        })
        .collect();
    std::fs::write(&options.state, partial).unwrap();
    // And its rows gone, as a range that rolled back leaves none.
    let first = first.expect("a commit line") & 0xFFFF_FFFF;
    c.dest[0]
        .connect(&dbs[0])
        .batch_execute(&format!("DELETE FROM big WHERE xmin = '{first}'"))
        .unwrap();
    let resume = Options {
        resume: true,
        ..options.clone()
    };
    let refused = job::plan(&source, &dests, &Selection::default(), &resume)
        .expect_err("an append's partly committed table is not emptied");
    let said = refused.to_string();
    assert!(
        said.contains("some of the ranges")
            && said.contains(
                "--truncate, which empties every table of the job not done yet, on every \
                 destination"
            ),
        "{said}"
    );
    // Nothing was emptied: the destination's own row is there.
    let own_row = || {
        digest(
            &c.dest[0],
            &dbs[0],
            "(SELECT * FROM big WHERE id > 1000000)",
        )
        .0
    };
    assert_eq!(own_row(), 1, "the destination's own row");
    // The way out it names: the rows of the ranges that committed deleted (by their xmin),
    // the resume copies it again, appended beside the destination's own row. It refused for
    // ever, whatever was deleted, and --truncate emptied every other table not done too.
    let delete = said
        .split_once("(DELETE FROM ")
        .and_then(|(_, rest)| rest.split_once("')"))
        .map(|(statement, _)| format!("DELETE FROM {statement}')"))
        .unwrap_or_else(|| panic!("no DELETE said: {said}"));
    c.dest[0].connect(&dbs[0]).batch_execute(&delete).unwrap();
    assert_eq!(own_row(), 1, "{delete} deletes only what the job wrote");
    let plan = job::plan(&source, &dests, &Selection::default(), &resume).unwrap();
    assert!(
        plan.notes
            .iter()
            .any(|n| n.contains("were deleted there since")),
        "{:?}",
        plan.notes
    );
    let report = job::run(plan, &source, &dests, &resume, &|_| {}).unwrap();
    assert!(report.succeeded(), "{report:#?}");
    assert_eq!(own_row(), 1);
    assert_eq!(
        digest(
            &c.dest[0],
            &dbs[0],
            "(SELECT * FROM big WHERE id <= 1000000)"
        ),
        digest(&c.source, &src_db, "big")
    );
    let _ = std::fs::remove_file(&options.state);
}

/// A worker that panics (here the caller's own `events` callback, when the referenced table
/// starts) stops the job: the worker waiting for that table to finish before it starts the
/// table that references it ends instead of waiting for ever, the panic reaches `run`'s caller,
/// and nothing was committed.
#[test]
fn a_worker_that_panics_stops_the_job_instead_of_leaving_the_others_waiting() {
    let schema = "CREATE TABLE up (id int PRIMARY KEY);
                  CREATE TABLE down (id int PRIMARY KEY, up int REFERENCES up);";
    let (source, dests, _, dbs) = setup(
        &format!(
            "{schema} INSERT INTO up SELECT generate_series(1, 10);
             INSERT INTO down SELECT g, 1 + g % 10 FROM generate_series(1, 5000) g;"
        ),
        schema,
        1,
    );
    let options = Options {
        jobs: 2,
        ..Options::new(state_path("worker-panics"))
    };
    let plan = job::plan(&source, &dests, &Selection::default(), &options).unwrap();
    let (done, ended) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let events = |event: Event| {
            if let Event::TableStarted { table, .. } = event
                && table.name.as_str() == "up"
            {
                panic!("the caller's callback fails on {table}");
            }
        };
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            job::run(plan, &source, &dests, &options, &events)
        }));
        let _ = done.send(run.is_err());
    });
    // A bound on a hang, not a timing: the job either ends or never does.
    let panicked = ended
        .recv_timeout(Duration::from_secs(120))
        .expect("the job never ended: a worker waits for a table a panicked worker held");
    assert!(panicked, "the worker's panic reaches run's caller");
    let c = clusters();
    for table in ["up", "down"] {
        assert_eq!(digest(&c.dest[0], &dbs[0], table).0, 0, "{table} committed");
    }
}

/// A destination trigger that turns `synchronous_commit` off for its transaction
/// (`set_config(…, true)`, which outlives the session's `local` to the COMMIT): the COMMIT was
/// answered before it was on disk, and a crash lost a table a job had recorded done. The check
/// every commit runs first on a party that writes ([`Participant`] for a connection, one
/// table's and a job's alike) makes it durable after the deferred triggers it fires (one of
/// them turning it off too), so that the statement sent next is the COMMIT itself.
#[test]
fn a_commit_is_durable_whatever_a_trigger_set() {
    use copyman_job::commit::{Action, Participant};
    let c = clusters();
    let db = c.dest[0].create_database();
    c.dest[0]
        .connect(&db)
        .batch_execute(
            "CREATE TABLE t (id int); CREATE TABLE seen (setting text);
             CREATE FUNCTION quick() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
                 PERFORM set_config('synchronous_commit', 'off', true); RETURN NULL; END $$;
             CREATE TRIGGER quick AFTER INSERT ON t FOR EACH STATEMENT EXECUTE FUNCTION quick();
             CREATE FUNCTION note() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
                 INSERT INTO seen VALUES (current_setting('synchronous_commit')); RETURN NULL;
             END $$;
             CREATE CONSTRAINT TRIGGER note AFTER INSERT ON t DEFERRABLE INITIALLY DEFERRED
                 FOR EACH ROW EXECUTE FUNCTION note();",
        )
        .unwrap();
    let mut conn = copyman_sync::Connection::connect_str(&c.dest[0].conninfo(&db)).unwrap();
    conn.execute("BEGIN").unwrap();
    conn.execute("INSERT INTO t VALUES (1)").unwrap();
    Participant::run(&mut conn, &Action::CheckConstraints).unwrap();
    let rows = conn.query("SELECT setting FROM seen").unwrap();
    assert_eq!(
        rows,
        [[Some("off".to_owned())]],
        "the deferred trigger ran in the check"
    );
    let now = conn
        .query("SELECT current_setting('synchronous_commit')")
        .unwrap();
    assert_eq!(now, [[Some("local".to_owned())]], "durable for the COMMIT");
    Participant::run(&mut conn, &Action::Commit).unwrap();
    let rows = c.dest[0]
        .connect(&db)
        .query("SELECT count(*) FROM t", &[])
        .unwrap();
    assert_eq!(rows[0].get::<_, i64>(0), 1);
}

/// A `ROLLBACK PREPARED` sent again on a new session, while the backend of the session whose
/// `PREPARE TRANSACTION` answer was lost still holds that transaction (its wait for a
/// synchronous standby not cancelled yet: busy, 55000), waits for it to let go and rolls it
/// back: it was refused there, and the transaction was left prepared, said in doubt (CI: a
/// job stopped while its PREPAREs waited for a standby, the cancel sent as their sessions were
/// given up taken a moment after the new session's ROLLBACK PREPARED).
#[test]
fn a_rollback_prepared_waits_for_the_lost_sessions_backend_to_let_go_of_its_transaction() {
    use copyman_job::commit::{self, Action, Failure, Participant};
    let sync = Cluster::builder()
        .setting("synchronous_standby_names", "nosuch")
        .setting("synchronous_commit", "local")
        .setting("max_prepared_transactions", "10")
        .start();
    let db = sync.create_database();
    sync.connect(&db)
        .batch_execute("CREATE TABLE t (id int)")
        .unwrap();
    let mut lost = copyman_sync::Connection::connect_str(&sync.conninfo(&db)).unwrap();
    lost.execute("SET synchronous_commit = on").unwrap();
    lost.execute("BEGIN").unwrap();
    lost.execute("INSERT INTO t VALUES (1)").unwrap();
    lost.set_timeout(Some(Duration::from_millis(500))).unwrap();
    let gid = "copyman:1-2-3:1";
    let prepare = Participant::run(&mut lost, &Action::Prepare(gid.into()));
    assert!(matches!(prepare, Err(Failure::Lost(_))), "{prepare:?}");
    let (pid, _) = lost.session().backend_key().unwrap();
    // Its backend lets go of the transaction once it takes a cancel, a moment later.
    let admin = sync.conninfo("postgres");
    let canceller = thread::spawn(move || {
        thread::sleep(Duration::from_secs(1));
        let mut admin = copyman_sync::Connection::connect_str(&admin).unwrap();
        admin
            .query(&format!("SELECT pg_cancel_backend({pid})"))
            .unwrap()
    });
    let conninfo = sync.conninfo(&db);
    let rollback = Action::RollbackPrepared(gid.into());
    let result = commit::run_on_a_live_session(&mut lost, &rollback, &|| {
        copyman_sync::Connection::connect_str(&conninfo)
    });
    assert_eq!(canceller.join().unwrap(), [[Some("t".to_owned())]]);
    assert!(result.is_ok(), "{result:?}");
    let left = sync
        .connect("postgres")
        .query("SELECT gid FROM pg_prepared_xacts", &[])
        .unwrap();
    assert!(left.is_empty(), "left prepared");
    let rows = sync.connect(&db).query("SELECT 1 FROM t", &[]).unwrap();
    assert!(rows.is_empty(), "the row was rolled back");
}
