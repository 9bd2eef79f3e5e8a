//! Bad input: clear errors that name the problem (and the SQLSTATE where the server spoke),
//! nothing copied, and every connection that exists still usable.

use super::Clusters;
use super::check::{count, exec, open, select_one, series};
use super::driver::{
    CopyDriver, CopyPlan, DestinationSpec, Endpoint, ErrorInfo, FailInfo, ReceiverEnd, RunningCopy,
    SourceSpec, StatementSpec,
};
use crate::{Auth, Cluster};

/// Starts a copy from `source_copy` on the source to two destinations (`COPY t FROM STDIN` and
/// `dest1_copy`), expecting the start to fail; checks that nothing was copied and that every
/// session is usable, and returns the failure.
fn failed_start<D: CopyDriver>(
    driver: &D,
    clusters: &Clusters,
    source_copy: &str,
    dest1_copy: &str,
) -> FailInfo {
    failed_start_of(
        driver,
        clusters,
        source_copy,
        ["COPY t FROM STDIN", dest1_copy],
    )
}

/// [`failed_start`] with each destination's statement given.
fn failed_start_of<D: CopyDriver>(
    driver: &D,
    clusters: &Clusters,
    source_copy: &str,
    [dest0_copy, dest1_copy]: [&str; 2],
) -> FailInfo {
    let source_db = clusters.source.create_database();
    exec(&clusters.source, &source_db, "CREATE TABLE t (i int8)");
    let dests: Vec<(&Cluster, String)> = clusters.destinations[..2]
        .iter()
        .map(|c| {
            let db = c.create_database();
            exec(c, &db, "CREATE TABLE t (i int8)");
            (c, db)
        })
        .collect();
    let plan = CopyPlan {
        source: SourceSpec::Statement(StatementSpec::new(
            clusters.source.conninfo(&source_db),
            source_copy,
        )),
        destinations: vec![
            DestinationSpec::Statement(StatementSpec::new(
                dests[0].0.conninfo(&dests[0].1),
                dest0_copy,
            )),
            DestinationSpec::Statement(StatementSpec::new(
                dests[1].0.conninfo(&dests[1].1),
                dest1_copy,
            )),
        ],
    };
    let mut copy = open(driver, plan);
    let fail = match copy.start() {
        Err(fail) => fail,
        Ok(()) => panic!(
            "[{}] {source_copy:?} → {dest1_copy:?} started",
            driver.name()
        ),
    };
    for (i, (c, db)) in dests.iter().enumerate() {
        assert_eq!(count(c, db, "t"), 0, "destination {i} holds rows");
        select_one(&mut copy, Endpoint::Destination(i));
    }
    select_one(&mut copy, Endpoint::Source);
    fail
}

/// The producer's error of a failed start.
fn producer_error(fail: &FailInfo) -> &ErrorInfo {
    assert!(fail.receiver_faults.is_empty(), "{fail}");
    fail.producer_fault
        .as_ref()
        .unwrap_or_else(|| panic!("the producer's error: {fail}"))
}

/// Receiver 1's error of a failed start.
fn receiver_error(fail: &FailInfo) -> &ErrorInfo {
    assert!(fail.receiver_fault(0).is_none(), "{fail}");
    fail.receiver_fault(1)
        .unwrap_or_else(|| panic!("receiver 1's error: {fail}"))
}

/// Asserts that `text` contains every one of `words`.
fn names(text: &str, words: &[&str]) {
    for word in words {
        assert!(text.contains(word), "{word:?} should be in: {text}");
    }
}

/// A statement that is not a COPY (`SELECT 1`), given to the producer and to a receiver.
pub fn not_a_copy_statement<D: CopyDriver>(driver: &D, clusters: &Clusters) {
    let fail = failed_start(driver, clusters, "SELECT 1", "COPY t FROM STDIN");
    let error = producer_error(&fail);
    names(&error.text, &["not a COPY", "SELECT 1"]);
    names(&fail.text, &["not a COPY"]);
    assert_eq!(error.sqlstate, None);

    let fail = failed_start(driver, clusters, &series(10), "SELECT 1");
    let error = receiver_error(&fail);
    names(&error.text, &["not a COPY", "SELECT 1"]);
    names(&fail.text, &["not a COPY"]);
}

/// A source query that changes data (`COPY (DELETE … RETURNING *) TO STDOUT`) on a session in
/// no transaction: it would commit as soon as its rows are read, before any receiver, and a
/// failed copy left them nowhere (lib44 F3). Refused before it is sent: the source's rows stay.
pub fn a_writing_source_query_outside_a_transaction_is_refused<D: CopyDriver>(
    driver: &D,
    clusters: &Clusters,
) {
    let source_db = clusters.source.create_database();
    exec(
        &clusters.source,
        &source_db,
        "CREATE TABLE t AS SELECT g::int8 AS i FROM generate_series(1, 10) g",
    );
    let d = &clusters.destinations[0];
    let db = d.create_database();
    exec(d, &db, "CREATE TABLE t (i int8)");
    let plan = CopyPlan {
        source: SourceSpec::Statement(StatementSpec::new(
            clusters.source.conninfo(&source_db),
            "COPY (DELETE FROM t RETURNING *) TO STDOUT",
        )),
        destinations: vec![DestinationSpec::Statement(StatementSpec::new(
            d.conninfo(&db),
            "COPY t FROM STDIN",
        ))],
    };
    let mut copy = open(driver, plan);
    let fail = match copy.start() {
        Err(fail) => fail,
        Ok(()) => panic!("[{}] a DELETE outside a transaction started", driver.name()),
    };
    let error = producer_error(&fail);
    names(&error.text, &["changes data", "in no transaction", "BEGIN"]);
    assert_eq!(count(&clusters.source, &source_db, "t"), 10);
    assert_eq!(count(d, &db, "t"), 0);
    select_one(&mut copy, Endpoint::Source);
    select_one(&mut copy, Endpoint::Destination(0));
    drop(copy);

    // A change the words do not show (a dequeue function, a view over it) fails in the
    // read-only transaction such a COPY runs in, before anything is lost (lib49 F3: the
    // source's rows were deleted and committed, and the failed copy stored them nowhere).
    exec(
        &clusters.source,
        &source_db,
        "CREATE FUNCTION dequeue() RETURNS SETOF t LANGUAGE sql AS 'DELETE FROM t RETURNING *';
         CREATE VIEW queue AS SELECT * FROM dequeue();",
    );
    for sql in [
        "COPY (SELECT * FROM dequeue()) TO STDOUT",
        "COPY (SELECT * FROM queue) TO STDOUT",
    ] {
        let plan = CopyPlan {
            source: SourceSpec::Statement(StatementSpec::new(
                clusters.source.conninfo(&source_db),
                sql,
            )),
            destinations: vec![DestinationSpec::Statement(StatementSpec::new(
                d.conninfo(&db),
                "COPY t FROM STDIN",
            ))],
        };
        let mut copy = open(driver, plan);
        let fail = match copy.run() {
            Err(fail) => fail,
            Ok(summary) => panic!("[{}] {sql}: {summary:?}", driver.name()),
        };
        let error = producer_error(&fail);
        assert!(
            error.text.contains("read-only transaction"),
            "[{}] {sql}: {}",
            driver.name(),
            error.text
        );
        assert_eq!(count(&clusters.source, &source_db, "t"), 10, "{sql}");
        assert_eq!(count(d, &db, "t"), 0, "{sql}");
        select_one(&mut copy, Endpoint::Source);
    }
}

/// A COPY going the wrong way: `COPY … FROM STDIN` given to the producer, `COPY … TO STDOUT`
/// given to a receiver.
pub fn wrong_direction<D: CopyDriver>(driver: &D, clusters: &Clusters) {
    let fail = failed_start(driver, clusters, "COPY t FROM STDIN", "COPY t FROM STDIN");
    let error = producer_error(&fail);
    names(&error.text, &["COPY FROM STDIN", "COPY TO STDOUT"]);

    let fail = failed_start(
        driver,
        clusters,
        &series(10),
        "COPY (SELECT i FROM generate_series(1, 100000) AS g(i)) TO STDOUT",
    );
    let error = receiver_error(&fail);
    names(&error.text, &["COPY TO STDOUT", "COPY FROM STDIN"]);
}

/// A receiver whose COPY takes binary data while the producer's sends text: refused once every
/// COPY started (from the formats the servers announced), before any data is sent — not by the
/// server, which would have seen the data (22P04, "COPY file signature not recognized").
pub fn mismatched_formats<D: CopyDriver>(driver: &D, clusters: &Clusters) {
    let fail = failed_start(
        driver,
        clusters,
        &series(10),
        "COPY t FROM STDIN (FORMAT binary)",
    );
    let error = receiver_error(&fail);
    names(&error.text, &["takes binary data", "sends text data"]);
    assert_eq!(error.sqlstate, None, "{error}");
}

/// A receiver whose COPY reads CSV while the producer's writes text: the servers announce the
/// same overall format, and the server would load the rows (a text `\N` as a string), so it is
/// refused from the statements' representations once every COPY started, before any data is
/// sent, in the words the `copyman` command uses; so is one whose options copyman cannot read.
pub fn mismatched_representations<D: CopyDriver>(driver: &D, clusters: &Clusters) {
    let fail = failed_start(
        driver,
        clusters,
        &series(10),
        "COPY t FROM STDIN (FORMAT csv)",
    );
    let error = receiver_error(&fail);
    names(
        &error.text,
        &[
            "the COPY FROM STDIN reads FORMAT csv, but the COPY TO STDOUT writes FORMAT text",
            "give both ends the same FORMAT and options",
        ],
    );
    assert_eq!(error.sqlstate, None, "{error}");
    // Options copyman cannot read (a dollar-quoted NULL): whether they agree cannot be told,
    // and the string `x` was stored for every NULL. Refused before any data moves.
    let fail = failed_start(
        driver,
        clusters,
        &series(10),
        "COPY t FROM STDIN WITH NULL AS $$x$$",
    );
    let error = receiver_error(&fail);
    names(
        &error.text,
        &["copyman cannot read the options of the COPY FROM STDIN"],
    );
    // Both ends alike, with a NULL string that is a value's spelling in text (the value `x`
    // stored as NULL, `Ok`: lib67 F12), or the end-of-data marker in CSV (a row ending in a
    // NULL stops the reader): every receiver refused, as the command refuses them.
    let csv_marker = ("(FORMAT csv, NULL '\\.')", "end-of-data marker");
    for (options, said) in [("(NULL 'x')", "would arrive as NULLs"), csv_marker] {
        let receive = format!("COPY t FROM STDIN {options}");
        let fail = failed_start_of(
            driver,
            clusters,
            &format!("{} {options}", series(10)),
            [&receive, &receive],
        );
        for r in 0..2 {
            let error = (fail.receiver_fault(r)).unwrap_or_else(|| panic!("receiver {r}: {fail}"));
            names(&error.text, &["the COPY TO STDOUT writes FORMAT", said]);
        }
    }
}

/// Spellings of one encoding are one encoding, and an ENCODING left out is the session's
/// client_encoding (UTF8 on copyman's connections): `ENCODING 'unicode'` on the source,
/// `ENCODING 'UTF8'` and none on the destinations copy every row.
pub fn encoding_spellings_agree<D: CopyDriver>(driver: &D, clusters: &Clusters) {
    const ROWS: u64 = 100;
    let source_db = clusters.source.create_database();
    let statements = ["COPY t FROM STDIN (ENCODING 'UTF8')", "COPY t FROM STDIN"];
    let dests: Vec<(&Cluster, String)> = clusters.destinations[..2]
        .iter()
        .map(|c| {
            let db = c.create_database();
            exec(c, &db, "CREATE TABLE t (i int8)");
            (c, db)
        })
        .collect();
    let plan = CopyPlan {
        source: SourceSpec::Statement(StatementSpec::new(
            clusters.source.conninfo(&source_db),
            format!("{} (ENCODING 'unicode')", series(ROWS)),
        )),
        destinations: dests
            .iter()
            .zip(statements)
            .map(|((c, db), copy)| {
                DestinationSpec::Statement(StatementSpec::new(c.conninfo(db), copy))
            })
            .collect(),
    };
    let mut copy = open(driver, plan);
    let summary = copy
        .run()
        .unwrap_or_else(|e| panic!("[{}] run: {e}", driver.name()));
    assert_eq!(summary.messages, ROWS);
    for (c, db) in &dests {
        assert_eq!(count(c, db, "t"), ROWS as i64);
    }
}

/// A missing table on either side: the server's 42P01 with its message.
pub fn missing_table<D: CopyDriver>(driver: &D, clusters: &Clusters) {
    let fail = failed_start(
        driver,
        clusters,
        "COPY no_such_table TO STDOUT",
        "COPY t FROM STDIN",
    );
    let error = producer_error(&fail);
    assert_eq!(error.sqlstate.as_deref(), Some("42P01"), "{error}");
    names(&error.text, &["no_such_table", "does not exist", "42P01"]);
    names(&fail.text, &["no_such_table", "42P01"]);

    let fail = failed_start(
        driver,
        clusters,
        &series(10),
        "COPY no_such_table FROM STDIN",
    );
    let error = receiver_error(&fail);
    assert_eq!(error.sqlstate.as_deref(), Some("42P01"), "{error}");
    names(&error.text, &["no_such_table", "does not exist", "42P01"]);
}

/// A wrong password (a private SCRAM cluster): the server's 28P01, for the source and for a
/// destination; the right password copies.
pub fn wrong_password<D: CopyDriver>(driver: &D, clusters: &Clusters) {
    let scram = Cluster::builder().auth(Auth::ScramSha256).start();
    let scram_db = scram.create_database();
    exec(&scram, &scram_db, "CREATE TABLE t (i int8)");
    let good = scram.conninfo(&scram_db);
    let bad = good.replace(scram.password(), "not-the-password");
    assert_ne!(good, bad);
    let dest_db = clusters.destinations[0].create_database();
    exec(
        &clusters.destinations[0],
        &dest_db,
        "CREATE TABLE t (i int8)",
    );
    let dest = clusters.destinations[0].conninfo(&dest_db);
    let plan = |source: &str, dest: &str| CopyPlan {
        source: SourceSpec::Statement(StatementSpec::new(source, series(1000))),
        destinations: vec![DestinationSpec::Statement(StatementSpec::new(
            dest,
            "COPY t FROM STDIN",
        ))],
    };

    for (source, destination, endpoint) in [
        (&bad, &dest, Endpoint::Source),
        (&dest, &bad, Endpoint::Destination(0)),
    ] {
        let plan = plan(source, destination);
        let error = match driver.open(plan) {
            Err(e) => e,
            Ok(_) => panic!("[{}] a wrong password was accepted", driver.name()),
        };
        assert_eq!(error.endpoint, endpoint, "{error}");
        assert_eq!(error.statement, None, "{error}");
        assert_eq!(error.error.sqlstate.as_deref(), Some("28P01"), "{error}");
        names(
            &error.error.text,
            &["password authentication failed", "28P01"],
        );
    }
    assert_eq!(count(&scram, &scram_db, "t"), 0);
    assert_eq!(count(&clusters.destinations[0], &dest_db, "t"), 0);

    // The right password: SCRAM authentication works, as source and as destination.
    let mut copy = open(driver, plan(&good, &dest));
    let summary = copy
        .run()
        .unwrap_or_else(|e| panic!("[{}] copy from a SCRAM cluster: {e}", driver.name()));
    assert!(matches!(
        summary.receivers[..],
        [ReceiverEnd::Completed(Some(1000))]
    ));
    let mut copy = open(driver, plan(&dest, &good));
    let summary = copy
        .run()
        .unwrap_or_else(|e| panic!("[{}] copy to a SCRAM cluster: {e}", driver.name()));
    assert!(matches!(
        summary.receivers[..],
        [ReceiverEnd::Completed(Some(1000))]
    ));
    assert_eq!(count(&scram, &scram_db, "t"), 1000);
    select_one(&mut copy, Endpoint::Destination(0));
}

/// A `SET DateStyle` on the source's session since it connected (`SQL, DMY`): its text COPY
/// wrote `02/12/2026`, which the destination's ISO session stored as the 12th of February,
/// without an error. Refused before any data moves, naming both styles; the same style or field
/// order on both sessions, and binary, copy the day as it is.
pub fn styles_set_since_connecting_are_compared<D: CopyDriver>(driver: &D, clusters: &Clusters) {
    let source_db = clusters.source.create_database();
    exec(
        &clusters.source,
        &source_db,
        "CREATE TABLE d (d date); INSERT INTO d VALUES ('2026-12-02')",
    );
    let dest = &clusters.destinations[0];
    let set = "SET DateStyle = 'SQL, DMY'";
    let attempt = |source_copy: &str, dest_copy: &str, dest_set: Option<&str>| {
        let db = dest.create_database();
        exec(dest, &db, "CREATE TABLE d (d date)");
        let mut receiving = StatementSpec::new(dest.conninfo(&db), dest_copy);
        if let Some(sql) = dest_set {
            receiving = receiving.before(sql);
        }
        let plan = CopyPlan {
            source: SourceSpec::Statement(
                StatementSpec::new(clusters.source.conninfo(&source_db), source_copy).before(set),
            ),
            destinations: vec![DestinationSpec::Statement(receiving)],
        };
        let result = open(driver, plan).run();
        let stored = dest.psql(&db, "SELECT string_agg(d::text, ',') FROM d");
        let stored = stored.trim().to_owned();
        (result, stored)
    };
    let (result, stored) = attempt("COPY d TO STDOUT", "COPY d FROM STDIN", None);
    let fail = result.expect_err("refused");
    assert!(
        fail.text.contains("writes in DateStyle 'SQL, DMY'")
            && fail.text.contains("reads in 'ISO, MDY'"),
        "[{}] {fail}",
        driver.name()
    );
    assert_eq!(stored, "", "[{}]", driver.name());
    // The same style, the same field order in another style (every DMY reader reads
    // 02/12/2026 as the 2nd of December), binary.
    for (source_copy, dest_copy, dest_set) in [
        ("COPY d TO STDOUT", "COPY d FROM STDIN", Some(set)),
        (
            "COPY d TO STDOUT",
            "COPY d FROM STDIN",
            Some("SET DateStyle = 'ISO, DMY'"),
        ),
        (
            "COPY d TO STDOUT (FORMAT binary)",
            "COPY d FROM STDIN (FORMAT binary)",
            None,
        ),
    ] {
        let (result, stored) = attempt(source_copy, dest_copy, dest_set);
        result.unwrap_or_else(|e| panic!("[{}] {source_copy}: {e}", driver.name()));
        assert_eq!(stored, "2026-12-02", "[{}] {source_copy}", driver.name());
    }
}

/// A `SET` since connecting of a setting copyman pins and its server does not report, which
/// shapes text data (lib67 F1): `extra_float_digits = 0` on the producer (floats written with
/// fewer digits), `array_nulls = off` on a receiver (an array's `NULL` element stored as the
/// string `"NULL"`). Refused before any row, naming the setting and its value; binary data, or a
/// setting set back to its pin, copies.
pub fn pinned_settings_set_since_connecting_are_refused<D: CopyDriver>(
    driver: &D,
    clusters: &Clusters,
) {
    let source_db = clusters.source.create_database();
    exec(
        &clusters.source,
        &source_db,
        "CREATE TABLE f (x float8, a text[]); INSERT INTO f VALUES (0.1::float8 + 0.2, '{x,NULL}')",
    );
    let dest = &clusters.destinations[0];
    let attempt = |source_set: &[&str], dest_set: &[&str], binary: bool| {
        let db = dest.create_database();
        exec(dest, &db, "CREATE TABLE f (x float8, a text[])");
        let format = if binary { " (FORMAT binary)" } else { "" };
        let mut sending = StatementSpec::new(
            clusters.source.conninfo(&source_db),
            format!("COPY f TO STDOUT{format}"),
        );
        for sql in source_set {
            sending = sending.before(*sql);
        }
        let mut receiving =
            StatementSpec::new(dest.conninfo(&db), format!("COPY f FROM STDIN{format}"));
        for sql in dest_set {
            receiving = receiving.before(*sql);
        }
        let plan = CopyPlan {
            source: SourceSpec::Statement(sending),
            destinations: vec![DestinationSpec::Statement(receiving)],
        };
        let result = open(driver, plan).run();
        let stored = dest.psql(
            &db,
            "SELECT string_agg(x::text || ' ' || a::text || ' ' || (a[2] IS NULL)::text, ',') FROM f",
        );
        (result, stored.trim().to_owned())
    };
    let (result, stored) = attempt(&["SET extra_float_digits = 0"], &[], false);
    let fail = result.expect_err("refused");
    assert!(
        fail.text.contains("extra_float_digits is 0, not 3")
            && fail.text.contains("written otherwise"),
        "[{}] {fail}",
        driver.name()
    );
    assert_eq!(stored, "", "[{}]", driver.name());
    let (result, stored) = attempt(&[], &["SET array_nulls = off"], false);
    let fail = result.expect_err("refused");
    assert!(
        fail.text.contains("array_nulls is off, not on") && fail.text.contains("read otherwise"),
        "[{}] {fail}",
        driver.name()
    );
    assert_eq!(stored, "", "[{}]", driver.name());
    let whole = "0.30000000000000004 {x,NULL} true";
    for (source_set, dest_set, binary) in [
        (
            &["SET extra_float_digits = 0"][..],
            &["SET array_nulls = off"][..],
            true,
        ),
        (
            &["SET extra_float_digits = 0", "RESET extra_float_digits"][..],
            &["SELECT set_config('array_nulls', 'on', false)"][..],
            false,
        ),
    ] {
        let (result, stored) = attempt(source_set, dest_set, binary);
        result.unwrap_or_else(|e| panic!("[{}] {source_set:?} {dest_set:?}: {e}", driver.name()));
        assert_eq!(
            stored,
            whole,
            "[{}] {source_set:?} {dest_set:?}",
            driver.name()
        );
    }
    // Set by the COPY's own query (a function it runs), which no question before it sees: asked
    // after it, in its Query, and the copy given up (recheck70 F1: floats stored rounded).
    let db = dest.create_database();
    exec(dest, &db, "CREATE TABLE f (x float8, a text[])");
    let plan = CopyPlan {
        source: SourceSpec::Statement(StatementSpec::new(
            clusters.source.conninfo(&source_db),
            "COPY (SELECT f.* FROM f, pg_catalog.set_config('extra_float_digits', '0', false) s) \
             TO STDOUT",
        )),
        destinations: vec![DestinationSpec::Statement(StatementSpec::new(
            dest.conninfo(&db),
            "COPY f FROM STDIN",
        ))],
    };
    let fail = open(driver, plan).run().expect_err("refused");
    assert!(
        fail.text
            .contains("extra_float_digits changed to '0' during its COPY"),
        "[{}] {fail}",
        driver.name()
    );
    assert_eq!(
        dest.psql(&db, "SELECT count(*) FROM f").trim(),
        "0",
        "[{}]",
        driver.name()
    );
}
