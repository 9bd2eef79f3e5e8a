//! A table split into ranges without the job's snapshot (`--no-snapshot`): its ranges and its
//! count read one snapshot of the table's own, whatever commits on the source meanwhile.

mod common;

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use common::*;
use copyman_job::job::{self, Event, Options, Side, Status};
use copyman_job::select::Selection;

const SPLIT: &str = "CREATE TABLE big (id int PRIMARY KEY, pad text);";

/// The source changes between the moment a split table is counted and the moment its first
/// range begins reading (the test's writer runs in the event that announces that range's
/// session, so the range cannot begin before it committed): rows deleted in every range's pages,
/// rows moved by an update to pages at the end of the table. In snapshots of their own, the
/// ranges would read rows the count did not see and miss others; in the table's one snapshot,
/// every destination gets exactly the rows the count saw.
#[test]
fn a_split_table_without_the_jobs_snapshot_reads_its_ranges_in_one_snapshot() {
    let (source, dests, src_db, dbs) = setup(
        &format!(
            "{SPLIT} INSERT INTO big SELECT g, repeat('r', 200) FROM generate_series(1, 4000) g;"
        ),
        SPLIT,
        2,
    );
    let c = clusters();
    let before = digest(&c.source, &src_db, "big");
    assert_eq!(before.0, 4000);
    let options = Options {
        jobs: 4,
        snapshot: false,
        verify: true,
        split_larger_than: Some(100_000),
        ..Options::new(state_path("split-no-snapshot"))
    };
    let plan = job::plan(&source, &dests, &Selection::default(), &options).unwrap();
    assert!(plan.snapshot.is_none());
    assert_eq!(
        plan.tables[0].ranges.len(),
        4,
        "{:?}",
        plan.tables[0].ranges
    );

    // The first source session announced is the one that counts the table; the next, a range's.
    let counting = Mutex::new(None);
    let written = AtomicBool::new(false);
    let events = |e: Event| {
        let Event::Backend {
            side: Side::Source,
            pid,
            ..
        } = e
        else {
            return;
        };
        let mut counting = counting.lock().unwrap();
        if counting.is_none() {
            *counting = Some(pid);
        } else if *counting != Some(pid) && !written.swap(true, Ordering::SeqCst) {
            c.source
                .connect(&src_db)
                .batch_execute(
                    "DELETE FROM big WHERE id % 10 = 0;
                     UPDATE big SET pad = repeat('m', 200) WHERE id % 10 = 1;",
                )
                .unwrap();
        }
    };
    let report = job::run(plan, &source, &dests, &options, &events).unwrap();
    assert!(
        written.load(Ordering::SeqCst),
        "a range's session was announced"
    );
    // The writer committed during the copy: the source holds other rows now.
    let after = digest(&c.source, &src_db, "big");
    assert_eq!(after.0, 3600);
    assert!(report.succeeded(), "{report:#?}");
    let big = &report.tables[0];
    assert_eq!(big.source_rows, Some(4000));
    for (d, (cluster, db)) in c.dest[..2].iter().zip(&dbs).enumerate() {
        assert_eq!(big.destinations[d].status, Status::Committed, "{big:#?}");
        assert_eq!(big.destinations[d].rows, Some(4000));
        assert_eq!(big.destinations[d].verified, Some(true));
        assert_eq!(
            digest(cluster, db, "big"),
            before,
            "on {db}: the rows of the snapshot the table was counted in"
        );
    }
}
