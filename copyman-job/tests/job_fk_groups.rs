//! An FK-linked group under `truncate`, as the library's caller sees it: the plan holds the
//! group (parents first), and the run tells every member of each commit step (a caller that
//! must exit during the group's commit says each member may have committed) and finishes every
//! member, all committed together. Real clusters.

mod common;

use std::sync::Mutex;

use common::*;
use copyman_job::commit::Action;
use copyman_job::job::{self, Event, Options, Status};
use copyman_job::select::Selection;

const SCHEMA: &str = "
    CREATE TABLE up (id int PRIMARY KEY);
    CREATE TABLE down (id int PRIMARY KEY, up int REFERENCES up);";

#[test]
fn every_member_of_a_group_hears_its_commit_and_finishes_committed() {
    let (source, dests, _, _) = setup(
        &format!(
            "{SCHEMA} INSERT INTO up SELECT generate_series(1, 10);
             INSERT INTO down SELECT g, 1 + g % 10 FROM generate_series(1, 500) g;"
        ),
        &format!("{SCHEMA} INSERT INTO up VALUES (7); INSERT INTO down VALUES (1, 7);"),
        2,
    );
    let options = Options {
        truncate: true,
        ..Options::new(state_path("fk-groups"))
    };
    let plan = job::plan(&source, &dests, &Selection::default(), &options).unwrap();
    assert_eq!(plan.groups.len(), 1, "{:?}", plan.groups);
    let order: Vec<String> = plan.groups[0]
        .members
        .iter()
        .map(|&m| plan.tables[m].table.to_string())
        .collect();
    assert_eq!(
        order,
        [r#""public"."up""#, r#""public"."down""#],
        "parents first"
    );
    assert!(plan.groups[0].truncate_together.iter().all(|&t| t));

    let commits = Mutex::new(Vec::new());
    let finished = Mutex::new(Vec::new());
    let events = |event: Event| match event {
        Event::CommitStep {
            table,
            destination,
            action: Action::Commit,
            answer: job::Answer::TookEffect,
            ..
        } => commits
            .lock()
            .unwrap()
            .push((table.to_string(), destination)),
        Event::TableFinished { report, .. } => finished.lock().unwrap().push(report),
        _ => {}
    };
    let report = job::run(plan, &source, &dests, &options, &events).unwrap();
    assert!(report.succeeded(), "{report:#?}");
    let mut commits = commits.into_inner().unwrap();
    commits.sort();
    assert_eq!(
        commits,
        [
            (r#""public"."down""#.to_owned(), 0),
            (r#""public"."down""#.to_owned(), 1),
            (r#""public"."up""#.to_owned(), 0),
            (r#""public"."up""#.to_owned(), 1),
        ],
        "one COMMIT per destination, told for each member"
    );
    let finished = finished.into_inner().unwrap();
    assert_eq!(finished.len(), 2);
    for t in &finished {
        for d in &t.destinations {
            assert_eq!(d.status, Status::Committed, "{t:#?}");
        }
    }
    let down = table(&report, "down");
    assert_eq!(down.destinations[0].rows, Some(500));
}
