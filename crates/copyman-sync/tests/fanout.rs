//! Fan-out against real clusters: the seed's examples and every destination verified.

mod common;

use common::{clusters, digest, fresh};
use copyman_sync::{
    CopyManager, Receiver, ReceiverOutcome, StatementProducer, StatementReceiver, transfer,
};

const SEED_QUERY: &str = "COPY (SELECT i FROM generate_series(1, 1000000) AS g(i)) TO STDOUT";

#[test]
fn seed_transfer_into_temp_tables_of_three_destinations() {
    let c = clusters();
    let (_, mut source) = fresh(&c.source);
    let mut dests: Vec<_> = c
        .destinations
        .iter()
        .map(fresh)
        .map(|(_, conn)| conn)
        .collect();
    for d in &mut dests {
        d.execute("BEGIN").unwrap();
        d.execute("CREATE TEMP TABLE loading_table (i int8)")
            .unwrap();
    }
    let receivers: Vec<Box<dyn Receiver + '_>> = dests
        .iter_mut()
        .map(|d| Box::new(StatementReceiver::new(d, "COPY loading_table FROM STDIN")) as _)
        .collect();
    let (rows, bytes) =
        transfer(StatementProducer::new(&mut source, SEED_QUERY), receivers).unwrap();
    assert_eq!(rows, 1_000_000);
    // Text rows "1\n" … "1000000\n".
    let expected_bytes: u64 = (1..=1_000_000u64)
        .map(|i| i.to_string().len() as u64 + 1)
        .sum();
    assert_eq!(bytes, expected_bytes);

    let (_, mut reference) = fresh(&c.source);
    reference.execute("CREATE TEMP TABLE loading_table AS SELECT i::int8 AS i FROM generate_series(1, 1000000) AS g(i)").unwrap();
    let expected = digest(&mut reference, "loading_table");
    for d in &mut dests {
        assert_eq!(digest(d, "loading_table"), expected);
        d.execute("COMMIT").unwrap();
    }
    // The source connection is usable after the copy.
    assert_eq!(
        source.query("SELECT 1").unwrap(),
        vec![vec![Some("1".to_owned())]]
    );
}

#[test]
fn seed_copy_manager_loop_with_progress() {
    let c = clusters();
    let (_, mut source) = fresh(&c.source);
    let (_, mut dest) = fresh(&c.destinations[0]);
    dest.execute("CREATE TABLE loading_table (i int8)").unwrap();
    let producer = StatementProducer::new(&mut source, SEED_QUERY).buffer_size(11);
    let receiver = StatementReceiver::new(&mut dest, "COPY loading_table FROM STDIN");
    let mut copy =
        CopyManager::start(producer.buffer_size(16 * 1024), vec![Box::new(receiver)]).unwrap();
    let (mut messages, mut cycles) = (0, 0);
    for progress in &mut copy {
        let (m, _) = progress.unwrap();
        messages += m;
        cycles += 1;
    }
    assert_eq!(messages, 1_000_000);
    assert!(
        cycles > 10,
        "a 16 KiB buffer takes many cycles, got {cycles}"
    );
    let summary = copy.finish().unwrap();
    assert_eq!(summary.producer_count, Some(1_000_000));
    assert!(matches!(
        summary.receivers[0].1,
        ReceiverOutcome::Completed(Some(1_000_000))
    ));
    assert_eq!(digest(&mut dest, "loading_table").0, 1_000_000);
}
