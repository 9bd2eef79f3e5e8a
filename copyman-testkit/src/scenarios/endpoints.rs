//! The seed's other endpoints against real servers: `IteratorProducer` and `CallReceiver`.

use super::Clusters;
use super::check::{digest, drain, exec, open};
use super::driver::{
    CopyDriver, CopyPlan, DestinationSpec, ReceiverEnd, RunningCopy, SourceSpec, StatementSpec,
};

/// Lines of COPY text: `i\tline i\n`, with a NULL (`\N`) and an escaped tab here and there.
fn line(i: u64) -> Vec<u8> {
    match i % 10 {
        0 => format!("{i}\t\\N\n"),
        5 => format!("{i}\ttab\\there {i}\n"),
        _ => format!("{i}\tline {i}\n"),
    }
    .into_bytes()
}

/// An `IteratorProducer` of chunks of lines feeds a `StatementReceiver` (and a `CallReceiver`
/// beside it): the table holds exactly those rows, the callback got exactly those lines, and the
/// receiver's `COPY n` is the number of lines.
pub fn iterator_producer_into_statement_receiver<D: CopyDriver>(driver: &D, clusters: &Clusters) {
    const ROWS: u64 = 100_000;
    let d = &clusters.destinations[0];
    let db = d.create_database();
    exec(d, &db, "CREATE TABLE t (i int8, s text)");
    let lines: Vec<Vec<u8>> = (1..=ROWS).map(line).collect();
    let chunks: Vec<Vec<Vec<u8>>> = lines.chunks(997).map(<[_]>::to_vec).collect();
    let plan = CopyPlan {
        source: SourceSpec::Lines(chunks.clone()),
        destinations: vec![
            DestinationSpec::Statement(StatementSpec::new(d.conninfo(&db), "COPY t FROM STDIN")),
            DestinationSpec::Collect,
        ],
    };
    let mut copy = open(driver, plan);
    copy.start()
        .unwrap_or_else(|e| panic!("[{}] start: {e}", driver.name()));
    let mut cycles = 0;
    while let Some(progress) = copy.next() {
        let (messages, _) = progress.unwrap_or_else(|f| panic!("fault: {f}"));
        assert_eq!(messages, chunks[cycles].len() as u64, "one chunk a cycle");
        cycles += 1;
    }
    assert_eq!(cycles, chunks.len());
    let summary = copy
        .finish()
        .unwrap_or_else(|e| panic!("[{}] finish: {e}", driver.name()));
    assert_eq!(summary.messages, ROWS);
    assert_eq!(
        summary.bytes,
        lines.iter().map(|l| l.len() as u64).sum::<u64>()
    );
    assert!(
        matches!(summary.receivers[0], ReceiverEnd::Completed(Some(ROWS))),
        "{summary:?}"
    );
    assert!(matches!(summary.receivers[1], ReceiverEnd::Completed(_)));
    assert_eq!(
        copy.collected(1),
        lines,
        "the callback got the lines as given"
    );
    let expected = digest(
        d,
        &db,
        &format!(
            "(SELECT i::int8, CASE i % 10 WHEN 0 THEN NULL WHEN 5 THEN E'tab\\there ' || i \
             ELSE 'line ' || i END AS s FROM generate_series(1, {ROWS}) AS g(i))"
        ),
    );
    assert_eq!(digest(d, &db, "t"), expected);
}

/// A `StatementProducer` feeds a `CallReceiver` (beside a `StatementReceiver`): the callback gets
/// exactly the source's rows as lines, one line a row, in order, in text and in CSV (where a
/// quoted field holds a newline, the row is still one line).
pub fn statement_producer_into_call_receiver<D: CopyDriver>(driver: &D, clusters: &Clusters) {
    const ROWS: u64 = 100_000;
    let source_db = clusters.source.create_database();
    let d = &clusters.destinations[1];
    let db = d.create_database();
    exec(d, &db, "CREATE TABLE t (i int8, s text)");
    for (options, expect) in [
        (
            "",
            Box::new(|i: u64| format!("{i}\tx{i}\\t\\\\\n").into_bytes())
                as Box<dyn Fn(u64) -> Vec<u8>>,
        ),
        (
            "(FORMAT csv)",
            Box::new(|i: u64| format!("{i},\"x{i}\t\\\n\"\n").into_bytes()),
        ),
    ] {
        let value = if options.is_empty() {
            r"E'\t\\'"
        } else {
            r"E'\t\\\n'"
        };
        let plan = CopyPlan {
            source: SourceSpec::Statement(
                StatementSpec::new(
                    clusters.source.conninfo(&source_db),
                    format!(
                        "COPY (SELECT i::int8, 'x' || i || {value} FROM generate_series(1, {ROWS}) \
                         AS g(i)) TO STDOUT {options}"
                    ),
                )
                .buffer_size(8 * 1024),
            ),
            destinations: vec![
                DestinationSpec::Collect,
                DestinationSpec::Statement(StatementSpec::new(
                    d.conninfo(&db),
                    format!("COPY t FROM STDIN {options}"),
                )),
            ],
        };
        let mut copy = open(driver, plan);
        copy.start()
            .unwrap_or_else(|e| panic!("[{}] start: {e}", driver.name()));
        let messages = drain(&mut copy, options);
        assert_eq!(messages, ROWS);
        let summary = copy
            .finish()
            .unwrap_or_else(|e| panic!("[{}] finish {options}: {e}", driver.name()));
        assert_eq!(summary.producer_count, Some(ROWS));
        assert!(
            matches!(summary.receivers[1], ReceiverEnd::Completed(Some(ROWS))),
            "{summary:?}"
        );
        let lines = copy.collected(0);
        assert_eq!(lines.len() as u64, ROWS, "{options}");
        for (i, got) in (1..=ROWS).zip(&lines) {
            let want = expect(i);
            assert_eq!(
                got,
                &want,
                "{options} row {i}: {:?} != {:?}",
                String::from_utf8_lossy(got),
                String::from_utf8_lossy(&want)
            );
        }
        exec(d, &db, "TRUNCATE t");
    }
}
