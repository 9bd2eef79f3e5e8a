//! Fan-out: every destination receives exactly the source's rows, whatever the format and size.

use super::Clusters;
use super::check::{count, digest, drain, exec, open, select_one};
use super::driver::{
    CopyDriver, CopyPlan, DestinationSpec, Endpoint, ReceiverEnd, RunningCopy, SourceSpec,
    StatementSpec, SummaryInfo,
};

/// Rows of the `items` table.
const ITEMS: u64 = 100_000;

/// A table of many types and awkward values.
const ITEMS_DDL: &str = "CREATE TABLE items (
    id int8 NOT NULL,
    label text,
    at timestamptz,
    amount numeric(20, 6),
    flag boolean,
    blob bytea,
    note text
)";

/// Fills `items` with tabs, newlines, carriage returns, backslashes, `\N` as text, quotes, CSV
/// delimiters, non-ASCII text, NULLs in every column but `id`, and empty strings beside NULLs.
fn items_fill(rows: u64) -> String {
    format!(
        r#"INSERT INTO items
SELECT i,
    CASE i % 7
        WHEN 0 THEN NULL
        WHEN 1 THEN E'tab\there\tand there'
        WHEN 2 THEN E'new\nline\r\nand CR\r'
        WHEN 3 THEN E'back\\slash \\N \\. not null'
        WHEN 4 THEN 'quotes '' " , ; | ' || i
        WHEN 5 THEN 'unicode ü € 𝄞 日本語 ' || i
        ELSE 'plain ' || i
    END,
    CASE WHEN i % 11 = 0 THEN NULL
         ELSE timestamptz '2000-01-01 00:00:00+00' + i * interval '1 minute 1.25 second' END,
    CASE WHEN i % 13 = 0 THEN NULL ELSE (i * 1.000001 - 50000)::numeric(20, 6) END,
    CASE i % 3 WHEN 0 THEN NULL WHEN 1 THEN true ELSE false END,
    CASE WHEN i % 5 = 0 THEN NULL ELSE decode(md5(i::text), 'hex') END,
    CASE WHEN i % 17 = 0 THEN '' WHEN i % 17 = 1 THEN E'"\n"' ELSE NULL END
FROM generate_series(1, {rows}) AS g(i)"#
    )
}

/// Copies `items` with `options` (e.g. `(FORMAT csv)`) from a fresh source database to a fresh
/// database on each of the three destinations, then compares counts and checksums.
fn fanout<D: CopyDriver>(driver: &D, clusters: &Clusters, options: &str) -> SummaryInfo {
    let source_db = clusters.source.create_database();
    exec(
        &clusters.source,
        &source_db,
        &format!("{ITEMS_DDL}; {}", items_fill(ITEMS)),
    );
    let dest_dbs: Vec<String> = clusters
        .destinations
        .iter()
        .map(|d| {
            let db = d.create_database();
            exec(d, &db, ITEMS_DDL);
            db
        })
        .collect();
    let plan = CopyPlan {
        source: SourceSpec::Statement(StatementSpec::new(
            clusters.source.conninfo(&source_db),
            format!("COPY items TO STDOUT {options}"),
        )),
        destinations: clusters
            .destinations
            .iter()
            .zip(&dest_dbs)
            .map(|(d, db)| {
                DestinationSpec::Statement(StatementSpec::new(
                    d.conninfo(db),
                    format!("COPY items FROM STDIN {options}"),
                ))
            })
            .collect(),
    };
    let mut copy = open(driver, plan);
    copy.start()
        .unwrap_or_else(|e| panic!("[{}] start: {e}", driver.name()));
    let messages = drain(&mut copy, options);
    let summary = copy
        .finish()
        .unwrap_or_else(|e| panic!("[{}] finish {options}: {e}", driver.name()));
    assert_eq!(messages, summary.messages);
    assert_eq!(summary.producer_count, Some(ITEMS), "{options}");
    for (i, end) in summary.receivers.iter().enumerate() {
        assert!(
            matches!(end, ReceiverEnd::Completed(Some(ITEMS))),
            "receiver {i} {options}: {end:?}"
        );
    }
    let expected = digest(&clusters.source, &source_db, "items");
    assert_eq!(expected.0, ITEMS as i64);
    for (d, db) in clusters.destinations.iter().zip(&dest_dbs) {
        assert_eq!(
            digest(d, db, "items"),
            expected,
            "destination {db} {options}"
        );
    }
    // NULLs stayed NULLs and empty strings empty: the checksum covers it, but say it plainly.
    let nulls = "SELECT count(*) FILTER (WHERE note IS NULL), count(*) FILTER (WHERE note = '') \
                 FROM items";
    let source_nulls = clusters
        .source
        .connect(&source_db)
        .query_one(nulls, &[])
        .unwrap();
    let dest_nulls = clusters.destinations[0]
        .connect(&dest_dbs[0])
        .query_one(nulls, &[])
        .unwrap();
    for col in 0..2 {
        assert_eq!(
            source_nulls.get::<_, i64>(col),
            dest_nulls.get::<_, i64>(col),
            "{options}"
        );
    }
    select_one(&mut copy, Endpoint::Source);
    summary
}

/// Fan-out to three destinations in text format: counts and checksums equal the source's.
pub fn fanout_text<D: CopyDriver>(driver: &D, clusters: &Clusters) {
    fanout(driver, clusters, "");
}

/// Fan-out to three destinations in CSV format (quoted newlines, `""` beside NULL).
pub fn fanout_csv<D: CopyDriver>(driver: &D, clusters: &Clusters) {
    fanout(driver, clusters, "(FORMAT csv)");
}

/// Fan-out to three destinations in binary format.
pub fn fanout_binary<D: CopyDriver>(driver: &D, clusters: &Clusters) {
    let summary = fanout(driver, clusters, "(FORMAT binary)");
    // Binary payload: a 19-byte header, per tuple a 2-byte field count and 4-byte lengths, and a
    // 2-byte trailer, so more bytes than rows.
    assert!(summary.bytes > ITEMS * 6, "{summary:?}");
}

/// The producer's `COPY n` equals every receiver's `COPY n` in the summary: text, CSV and
/// binary, a copy of no rows at all (binary: only the header and trailer travel), two receivers.
pub fn counts_match_in_summary<D: CopyDriver>(driver: &D, clusters: &Clusters) {
    let source_db = clusters.source.create_database();
    let dests: Vec<_> = clusters.destinations[..2]
        .iter()
        .map(|d| {
            let db = d.create_database();
            exec(d, &db, "CREATE TABLE t (i int8, s text)");
            (d, db)
        })
        .collect();
    let cases = [
        (12_345_u64, ""),
        (12_345, "(FORMAT binary)"),
        (0, ""),
        (0, "(FORMAT binary)"),
        (1, "(FORMAT csv)"),
    ];
    let mut total = 0;
    for (rows, options) in cases {
        let plan = CopyPlan {
            source: SourceSpec::Statement(StatementSpec::new(
                clusters.source.conninfo(&source_db),
                format!(
                    "COPY (SELECT i::int8, 'row ' || i FROM generate_series(1, {rows}) AS g(i)) \
                     TO STDOUT {options}"
                ),
            )),
            destinations: dests
                .iter()
                .map(|(d, db)| {
                    DestinationSpec::Statement(StatementSpec::new(
                        d.conninfo(db),
                        format!("COPY t FROM STDIN {options}"),
                    ))
                })
                .collect(),
        };
        let mut copy = open(driver, plan);
        let summary = copy
            .run()
            .unwrap_or_else(|e| panic!("[{}] {rows} rows {options}: {e}", driver.name()));
        // Messages are CopyData frames: one a row, and in binary format one more for the
        // trailer (the header rides in the first row's).
        let frames = if options.contains("binary") {
            rows + 1
        } else {
            rows
        };
        assert_eq!(
            summary.messages, frames,
            "{rows} rows {options}: {summary:?}"
        );
        assert_eq!(summary.producer_count, Some(rows), "{options}: {summary:?}");
        for end in &summary.receivers {
            match end {
                ReceiverEnd::Completed(Some(n)) => {
                    assert_eq!(Some(*n), summary.producer_count, "{options}: {summary:?}");
                }
                other => panic!("{rows} rows {options}: {other:?}"),
            }
        }
        total += rows as i64;
        for (d, db) in &dests {
            assert_eq!(count(d, db, "t"), total, "{rows} rows {options}");
        }
    }
}

/// A 1-byte row and a 16 MiB bytea row arrive intact (md5 compared on both sides), in text
/// (a 32 MiB line, one CopyData message of the server's, far beyond any buffer: 512 reads of
/// 64 KiB) and binary format. (It was 50 MiB: four times the time, under four lists, for no
/// boundary more.)
pub fn tiny_and_huge_rows<D: CopyDriver>(driver: &D, clusters: &Clusters) {
    let source_db = clusters.source.create_database();
    exec(
        &clusters.source,
        &source_db,
        "CREATE TABLE big (id int, b bytea);
         INSERT INTO big VALUES (1, '\\x41');
         INSERT INTO big SELECT 2, decode(string_agg(md5(i::text), '' ORDER BY i), 'hex')
             FROM generate_series(1, 1048576) AS g(i);",
    );
    let md5s = |cluster: &crate::Cluster, db: &str| -> Vec<(i32, i32, String)> {
        cluster
            .connect(db)
            .query("SELECT id, length(b), md5(b) FROM big ORDER BY id", &[])
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect()
    };
    let expected = md5s(&clusters.source, &source_db);
    assert_eq!(expected[0].1, 1);
    assert_eq!(expected[1].1, 16 * 1024 * 1024);

    for (d, options) in [
        (&clusters.destinations[0], ""),
        (&clusters.destinations[1], "(FORMAT binary)"),
    ] {
        let db = d.create_database();
        exec(d, &db, "CREATE TABLE big (id int, b bytea)");
        let plan = CopyPlan {
            source: SourceSpec::Statement(StatementSpec::new(
                clusters.source.conninfo(&source_db),
                format!("COPY big TO STDOUT {options}"),
            )),
            destinations: vec![DestinationSpec::Statement(StatementSpec::new(
                d.conninfo(&db),
                format!("COPY big FROM STDIN {options}"),
            ))],
        };
        let summary = open(driver, plan)
            .run()
            .unwrap_or_else(|e| panic!("[{}] big rows {options}: {e}", driver.name()));
        assert_eq!(summary.producer_count, Some(2));
        assert_eq!(md5s(d, &db), expected, "{options}");
    }

    // A row of one byte on the wire: the empty string's line is just its newline.
    let d = &clusters.destinations[2];
    let db = d.create_database();
    exec(d, &db, "CREATE TABLE tiny (s text)");
    let plan = CopyPlan {
        source: SourceSpec::Statement(StatementSpec::new(
            clusters.source.conninfo(&source_db),
            "COPY (SELECT '') TO STDOUT",
        )),
        destinations: vec![DestinationSpec::Statement(StatementSpec::new(
            d.conninfo(&db),
            "COPY tiny FROM STDIN",
        ))],
    };
    let mut copy = open(driver, plan);
    let summary = copy
        .run()
        .unwrap_or_else(|e| panic!("[{}] 1-byte row: {e}", driver.name()));
    assert_eq!((summary.messages, summary.bytes), (1, 1), "{summary:?}");
    let rows = copy
        .sql(Endpoint::Destination(0), "SELECT s, md5(s) FROM tiny")
        .expect("query");
    assert_eq!(
        rows,
        vec![vec![
            Some(String::new()),
            Some("d41d8cd98f00b204e9800998ecf8427e".into())
        ]]
    );
}
