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

/// An `IteratorProducer`'s rows are counted as the receivers' servers read them, and each
/// receiver's `COPY n` is checked against that count, as against a server producer's: a
/// receiver whose trigger dropped rows fails the copy (it was reported a success, with nothing
/// to compare its count with). A CSV header line is no row; `\.` before the end is refused.
pub fn chunk_producer_rows_are_counted<D: CopyDriver>(driver: &D, clusters: &Clusters) {
    let d = &clusters.destinations[0];
    let db = d.create_database();
    exec(
        d,
        &db,
        "CREATE TABLE t (i int8, s text);
         CREATE FUNCTION drop_tenth() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN IF NEW.i % 10 = 0 THEN RETURN NULL; END IF; RETURN NEW; END $$;
         CREATE TABLE dropping (i int8, s text);
         CREATE TRIGGER drop_tenth BEFORE INSERT ON dropping
           FOR EACH ROW EXECUTE FUNCTION drop_tenth();",
    );
    let lines: Vec<Vec<u8>> = (1..=1000).map(line).collect();
    // The driver's own result, as `finish` gives it.
    #[allow(clippy::result_large_err)]
    let run = |lines: Vec<Vec<u8>>, statement: &str| {
        let plan = CopyPlan {
            source: SourceSpec::Lines(lines.chunks(97).map(<[_]>::to_vec).collect()),
            destinations: vec![DestinationSpec::Statement(StatementSpec::new(
                d.conninfo(&db),
                statement,
            ))],
        };
        let mut copy = open(driver, plan);
        copy.start()
            .unwrap_or_else(|e| panic!("[{}] start: {e}", driver.name()));
        while let Some(progress) = copy.next() {
            if progress.is_err() {
                break;
            }
        }
        copy.finish()
    };
    let summary = run(lines.clone(), "COPY t FROM STDIN")
        .unwrap_or_else(|e| panic!("[{}] finish: {e}", driver.name()));
    assert_eq!(summary.producer_count, Some(1000), "[{}]", driver.name());
    let fail = run(lines, "COPY dropping FROM STDIN").expect_err("900 rows stored of 1000");
    assert!(
        fail.text
            .contains("the producer sent 1000 rows, the receiver stored 900")
            && fail
                .text
                .contains("Options::with_check_counts(false) keeps"),
        "[{}] {}",
        driver.name(),
        fail.text
    );
    // CSV with a header line: three rows.
    let csv: Vec<Vec<u8>> = ["i,s\n", "1,a\n", "2,\"two\nlines\"\n", "3,c\n"]
        .iter()
        .map(|l| l.as_bytes().to_vec())
        .collect();
    let summary = run(csv, "COPY t FROM STDIN (FORMAT csv, HEADER)")
        .unwrap_or_else(|e| panic!("[{}] csv: {e}", driver.name()));
    assert_eq!(summary.producer_count, Some(3), "[{}]", driver.name());
    // A line that is exactly `\.` with rows after it: refused, not a quiet stop.
    let marked: Vec<Vec<u8>> = ["1\ta\n", "\\.\n", "2\tb\n"]
        .iter()
        .map(|l| l.as_bytes().to_vec())
        .collect();
    let fail = run(marked, "COPY t FROM STDIN").expect_err("the marker is refused");
    assert!(
        fail.text.contains("line 2 of the data is `\\.`"),
        "[{}] {}",
        driver.name(),
        fail.text
    );
}

/// A producer of the caller's whose read fails once, transiently: its ProducerFault is given
/// once, and a caller that goes on gets every chunk after it — py-postgresql's copyman: "the
/// Manager makes no state changes when a Producer faults … if it's safe to continue, the
/// Manager's iterator should continue to be processed" (the iteration ended at the fault) —
/// and the copy completes with every row. `run()`, which only fails, fails on it.
pub fn a_transient_producer_fault_can_be_gone_past<D: CopyDriver>(driver: &D, clusters: &Clusters) {
    let d = &clusters.destinations[0];
    let db = d.create_database();
    exec(d, &db, "CREATE TABLE t (i int8, s text)");
    let lines: Vec<Vec<u8>> = (1..=100).map(line).collect();
    let plan = || CopyPlan {
        source: SourceSpec::FlakyLines {
            chunks: lines.chunks(10).map(<[_]>::to_vec).collect(),
            fails_before: 3,
        },
        destinations: vec![DestinationSpec::Statement(StatementSpec::new(
            d.conninfo(&db),
            "COPY t FROM STDIN",
        ))],
    };
    let mut copy = open(driver, plan());
    copy.start()
        .unwrap_or_else(|e| panic!("[{}] start: {e}", driver.name()));
    let (mut faults, mut cycles) = (0, 0);
    while let Some(progress) = copy.next() {
        match progress {
            Ok(_) => cycles += 1,
            Err(fault) => {
                let said = fault.producer().map(ToString::to_string);
                assert!(
                    said.as_deref()
                        .is_some_and(|s| s.contains("a transient failure")),
                    "[{}] {fault}",
                    driver.name()
                );
                faults += 1;
            }
        }
    }
    assert_eq!((faults, cycles), (1, 10), "[{}]", driver.name());
    let summary = copy
        .finish()
        .unwrap_or_else(|e| panic!("[{}] finish: {e}", driver.name()));
    assert_eq!(summary.messages, 100, "[{}]", driver.name());
    assert_eq!(digest(d, &db, "t").0, 100, "[{}]", driver.name());
    exec(d, &db, "TRUNCATE t");
    let fail = open(driver, plan())
        .run()
        .expect_err("run() fails on a producer fault");
    assert!(
        fail.text.contains("a transient failure"),
        "[{}] {}",
        driver.name(),
        fail.text
    );
    assert_eq!(digest(d, &db, "t").0, 0, "[{}]", driver.name());
}
