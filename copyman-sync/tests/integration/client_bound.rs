//! The client-bound endpoints against a real server: `ClientProducer` over `copy_out` and
//! `ClientReceiver` over `copy_in` of a `postgres::Client` or one of its `Transaction`s (their
//! types are the blocking client's, so these tests are this adapter's own).

use crate::common;

use bytes::Bytes;
use copyman_sync::{
    CallReceiver, ClientProducer, ClientReceiver, Connection, CopyManager, Receiver,
    ReceiverOutcome, StatementProducer, StatementReceiver, transfer,
};
use copyman_testkit::Cluster;
use copyman_testkit::scenarios::{digest, exec};

const ROWS: u64 = 100_000;

/// A source database holding `src (i int8, s text)` with `ROWS` rows, and its digest.
fn source(cluster: &Cluster) -> (String, (i64, String)) {
    let db = cluster.create_database();
    exec(
        cluster,
        &db,
        &format!(
            "CREATE TABLE src (i int8, s text);
             INSERT INTO src SELECT i, CASE WHEN i % 9 = 0 THEN NULL ELSE E'x\\ty ' || i END
                 FROM generate_series(1, {ROWS}) AS g(i);"
        ),
    );
    let expected = digest(cluster, &db, "src");
    (db, expected)
}

/// A destination database holding an empty `dst (i int8, s text)`.
fn destination(cluster: &Cluster) -> String {
    let db = cluster.create_database();
    exec(cluster, &db, "CREATE TABLE dst (i int8, s text)");
    db
}

fn select_one(client: &mut postgres::Client) {
    let one: i32 = client.query_one("SELECT 1", &[]).expect("SELECT 1").get(0);
    assert_eq!(one, 1);
}

#[test]
fn client_producer_over_client_into_statement_and_call_receivers() {
    let cluster = copyman_testkit::shared();
    let (src_db, expected) = source(cluster);
    let dst_db = destination(cluster);
    let mut client = cluster.connect(&src_db);
    let mut dest = Connection::connect_str(&cluster.conninfo(&dst_db)).unwrap();
    let mut lines = 0u64;
    {
        let producer = ClientProducer::new(&mut client, "COPY src TO STDOUT").unwrap();
        let receivers: Vec<Box<dyn Receiver + '_>> = vec![
            Box::new(StatementReceiver::new(&mut dest, "COPY dst FROM STDIN")),
            Box::new(CallReceiver::new(|chunk: &[Bytes]| {
                lines += chunk.len() as u64;
                Ok(())
            })),
        ];
        let summary = CopyManager::start(producer, receivers)
            .unwrap()
            .run()
            .unwrap();
        assert_eq!(summary.messages, ROWS);
        assert!(matches!(
            summary.receivers[0].1,
            ReceiverOutcome::Completed(Some(ROWS))
        ));
    }
    assert_eq!(lines, ROWS);
    assert_eq!(digest(cluster, &dst_db, "dst"), expected);
    select_one(&mut client);
    assert!(dest.is_ready());
}

#[test]
fn statement_producer_into_client_receiver_in_a_transaction() {
    let cluster = copyman_testkit::shared();
    let (src_db, expected) = source(cluster);
    let dst_db = destination(cluster);
    let mut source = Connection::connect_str(&cluster.conninfo(&src_db)).unwrap();
    let mut client = cluster.connect(&dst_db);
    let mut tx = client.transaction().unwrap();
    let summary = CopyManager::start(
        StatementProducer::new(&mut source, "COPY src TO STDOUT"),
        vec![Box::new(
            ClientReceiver::new(&mut tx, "COPY dst FROM STDIN").unwrap(),
        )],
    )
    .unwrap()
    .run()
    .unwrap();
    // The producer's COPY n was checked against the client's.
    assert_eq!(summary.producer_count, Some(ROWS));
    assert!(matches!(
        summary.receivers[0].1,
        ReceiverOutcome::Completed(Some(ROWS))
    ));
    // Not visible outside the transaction until it commits.
    assert_eq!(digest(cluster, &dst_db, "dst").0, 0);
    tx.commit().unwrap();
    assert_eq!(digest(cluster, &dst_db, "dst"), expected);
    select_one(&mut client);
    assert_eq!(
        source.query("SELECT 1").unwrap(),
        vec![vec![Some("1".into())]]
    );
}

#[test]
fn client_producer_over_a_transaction_into_client_receiver() {
    let cluster = copyman_testkit::shared();
    let (src_db, expected) = source(cluster);
    let dst_db = destination(cluster);
    let mut src_client = cluster.connect(&src_db);
    let mut dst_client = cluster.connect(&dst_db);
    let mut tx = src_client.transaction().unwrap();
    let mut dst_tx = dst_client.transaction().unwrap();
    let (rows, _) = transfer(
        ClientProducer::new(&mut tx, "COPY src TO STDOUT (FORMAT csv)").unwrap(),
        vec![Box::new(
            ClientReceiver::new(&mut dst_tx, "COPY dst FROM STDIN (FORMAT csv)").unwrap(),
        )],
    )
    .unwrap();
    assert_eq!(rows, ROWS);
    tx.commit().unwrap();
    dst_tx.commit().unwrap();
    assert_eq!(digest(cluster, &dst_db, "dst"), expected);
    select_one(&mut src_client);
    select_one(&mut dst_client);
}

#[test]
fn client_receiver_stopped_early_commits_nothing() {
    let cluster = copyman_testkit::shared();
    let (src_db, _) = source(cluster);
    let dst_db = destination(cluster);
    let mut source = Connection::connect_str(&cluster.conninfo(&src_db)).unwrap();
    let mut client = cluster.connect(&dst_db);
    let mut tx = client.transaction().unwrap();
    let mut copy = CopyManager::start(
        StatementProducer::new(&mut source, "COPY src TO STDOUT").buffer_size(4096),
        vec![Box::new(
            ClientReceiver::new(&mut tx, "COPY dst FROM STDIN").unwrap(),
        )],
    )
    .unwrap();
    for _ in 0..3 {
        copy.next().unwrap().unwrap();
    }
    let fail = copy.finish().unwrap_err();
    assert_eq!(fail.reason, "copy stopped before the producer's end");
    // Its COPY failed: the transaction can only roll back.
    drop(tx);
    assert_eq!(digest(cluster, &dst_db, "dst").0, 0);
    select_one(&mut client);
    assert_eq!(
        source.query("SELECT 1").unwrap(),
        vec![vec![Some("1".into())]]
    );
}

#[test]
fn client_receiver_rejecting_a_row_fails_the_copy_with_its_sqlstate() {
    let cluster = copyman_testkit::shared();
    let (src_db, _) = source(cluster);
    let dst_db = destination(cluster);
    exec(
        cluster,
        &dst_db,
        "ALTER TABLE dst ADD CONSTRAINT no_77 CHECK (i <> 77)",
    );
    let mut source = Connection::connect_str(&cluster.conninfo(&src_db)).unwrap();
    let mut client = cluster.connect(&dst_db);
    let mut tx = client.transaction().unwrap();
    let fail = CopyManager::start(
        StatementProducer::new(&mut source, "COPY src TO STDOUT"),
        vec![Box::new(
            ClientReceiver::new(&mut tx, "COPY dst FROM STDIN").unwrap(),
        )],
    )
    .unwrap()
    .run()
    .unwrap_err();
    drop(tx);
    // The client reports the server's error only when the COPY ends.
    let error = fail
        .receiver_fault(copyman_sync::ReceiverId(0))
        .unwrap_or_else(|| panic!("receiver 0's error: {fail}"));
    assert_eq!(
        common::sqlstate(&**error).as_deref(),
        Some("23514"),
        "{fail}"
    );
    assert!(fail.to_string().contains("no_77"), "{fail}");
    assert!(
        fail.to_string().contains("23514"),
        "the SQLSTATE is shown: {fail}"
    );
    assert_eq!(digest(cluster, &dst_db, "dst").0, 0);
    select_one(&mut client);
    assert_eq!(
        source.query("SELECT 1").unwrap(),
        vec![vec![Some("1".into())]]
    );
}

#[test]
fn client_endpoints_refuse_other_statements_before_running_them() {
    let cluster = copyman_testkit::shared();
    let db = destination(cluster);
    let mut client = cluster.connect(&db);
    client
        .batch_execute("CREATE TABLE victim (i int); INSERT INTO victim VALUES (1)")
        .unwrap();
    let err = ClientProducer::new(&mut client, "DELETE FROM victim").unwrap_err();
    assert!(err.to_string().contains("COPY"), "{err}");
    let err = ClientReceiver::new(&mut client, "DELETE FROM victim").unwrap_err();
    assert!(err.to_string().contains("COPY"), "{err}");
    let err = ClientReceiver::new(&mut client, "COPY victim TO STDOUT").unwrap_err();
    assert!(err.to_string().contains("FROM STDIN"), "{err}");
    // A move outside a transaction block: its DELETE would commit as its rows are read
    // (recheck49 F4: a failed copy lost them).
    let moving = "COPY (DELETE FROM victim RETURNING *) TO STDOUT";
    let err = ClientProducer::new(&mut client, moving).unwrap_err();
    assert!(err.to_string().contains("in no transaction"), "{err}");
    let n: i64 = client
        .query_one("SELECT count(*) FROM victim", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 1, "nothing was run");
}

/// A `ClientProducer` whose COPY fails midway (a division by zero in its query): its reader
/// hands the `postgres::Error` over inside an `io::Error`, whose `source()` skips it, so the
/// fault said "db error" with no SQLSTATE (copyman-async's said 22012). The producer fault
/// carries the server's error, and the client is usable after.
#[test]
fn client_producer_failing_midway_carries_the_servers_error() {
    let cluster = copyman_testkit::shared();
    let (src_db, _) = source(cluster);
    let dst_db = destination(cluster);
    let mut client = cluster.connect(&src_db);
    let mut dest = Connection::connect_str(&cluster.conninfo(&dst_db)).unwrap();
    let producer = ClientProducer::new(
        &mut client,
        "COPY (SELECT i, (1 / (i - 5000))::text FROM generate_series(1, 10000) i) TO STDOUT",
    )
    .unwrap();
    let fail = CopyManager::builder(producer)
        .to(StatementReceiver::new(&mut dest, "COPY dst FROM STDIN"))
        .run()
        .unwrap_err();
    let error = fail
        .producer_fault
        .as_ref()
        .unwrap_or_else(|| panic!("the producer's error: {fail}"));
    assert_eq!(error.code(), Some("22012"), "{fail}");
    assert!(
        error
            .db_error()
            .is_some_and(|e| e.message.contains("division by zero")),
        "{fail}"
    );
    assert_eq!(digest(cluster, &dst_db, "dst").0, 0);
    select_one(&mut client);
    assert!(dest.is_ready());
}

/// A `ClientProducer` whose backend is terminated midway: its fault says the connection is gone
/// (`is_closed`), as copyman-async's does and as the client itself says (it said not, the
/// client's error being its socket's reset or the server's FATAL rather than its "closed").
#[test]
fn client_producer_whose_backend_is_terminated_is_closed() {
    let cluster = copyman_testkit::shared();
    let (src_db, _) = source(cluster);
    let dst_db = destination(cluster);
    let mut client = cluster.connect(&src_db);
    let mut dest = Connection::connect_str(&cluster.conninfo(&dst_db)).unwrap();
    let producer = ClientProducer::new(
        &mut client,
        "COPY (SELECT i, CASE WHEN i = 50000 THEN pg_terminate_backend(pg_backend_pid())::text END \
         FROM generate_series(1, 100000) i) TO STDOUT",
    )
    .unwrap();
    let fail = CopyManager::builder(producer)
        .to(StatementReceiver::new(&mut dest, "COPY dst FROM STDIN"))
        .run()
        .unwrap_err();
    let error = fail
        .producer_fault
        .as_ref()
        .unwrap_or_else(|| panic!("the producer's error: {fail}"));
    assert!(error.is_closed(), "{fail}");
    assert!(client.is_closed());
    assert_eq!(digest(cluster, &dst_db, "dst").0, 0);
    assert!(dest.is_ready());
}

/// A `ClientReceiver` on a client outside a transaction block is refused before its COPY
/// starts, saying why and what to do: the `postgres` crate returns the COPY's `COPY n` before
/// its implicit transaction commits, so a commit that failed (here a deferred foreign key) was
/// reported nowhere — the copy said every row was there, and none was (lib38 F6). In a
/// transaction, the caller's COMMIT says it.
#[test]
fn client_receiver_outside_a_transaction_is_refused_and_its_commit_failure_said_in_one() {
    let cluster = copyman_testkit::shared();
    let db = cluster.create_database();
    exec(
        cluster,
        &db,
        "CREATE TABLE parent (id int PRIMARY KEY); INSERT INTO parent VALUES (1);
         CREATE TABLE child (parent int REFERENCES parent DEFERRABLE INITIALLY DEFERRED);",
    );
    let mut client = cluster.connect(&db);
    let err = ClientReceiver::new(&mut client, "COPY child FROM STDIN").unwrap_err();
    assert!(
        err.to_string()
            .contains("needs its client in a transaction"),
        "{err}"
    );
    select_one(&mut client);
    let mut tx = client.transaction().unwrap();
    let lines = vec![
        vec![Bytes::from_static(b"1\n")],
        vec![Bytes::from_static(b"2\n")],
    ];
    let summary = CopyManager::builder(copyman_sync::IteratorProducer::new(lines))
        .to(ClientReceiver::new(&mut tx, "COPY child FROM STDIN").unwrap())
        .run()
        .unwrap();
    assert!(summary.all_completed());
    let refused = tx
        .commit()
        .expect_err("the deferred foreign key fails the commit");
    assert_eq!(refused.code().map(|c| c.code()), Some("23503"), "{refused}");
    assert_eq!(digest(cluster, &db, "child").0, 0);
    select_one(&mut client);
}

/// A client-bound end whose statement reads the data otherwise than the other end writes it
/// (text into CSV): between raw ends refused before any data moves, it was copied (a NULL
/// stored as the string `\N`, exit Ok). Its statement's representation is compared too, both
/// ways.
#[test]
fn client_endpoints_of_another_representation_are_refused() {
    let cluster = copyman_testkit::shared();
    let (src_db, _) = source(cluster);
    let dst_db = destination(cluster);
    let mut client = cluster.connect(&src_db);
    let mut dest = Connection::connect_str(&cluster.conninfo(&dst_db)).unwrap();
    let producer = ClientProducer::new(&mut client, "COPY src TO STDOUT").unwrap();
    let fail = CopyManager::builder(producer)
        .to(StatementReceiver::new(
            &mut dest,
            "COPY dst FROM STDIN (FORMAT csv)",
        ))
        .run()
        .unwrap_err();
    assert!(fail.to_string().contains("reads FORMAT csv"), "{fail}");
    assert_eq!(digest(cluster, &dst_db, "dst").0, 0);
    select_one(&mut client);
    // The client's own DateStyle, set since it connected: `SQL, DMY` writes 02/12/2026, which
    // an ISO session reads as the 12th of February. Compared as a raw end's.
    client.batch_execute("SET DateStyle = 'SQL, DMY'").unwrap();
    let producer = ClientProducer::new(
        &mut client,
        "COPY (SELECT 1, DATE '2026-12-02'::text) TO STDOUT",
    )
    .unwrap();
    let fail = CopyManager::builder(producer)
        .to(StatementReceiver::new(&mut dest, "COPY dst FROM STDIN"))
        .run()
        .unwrap_err();
    assert!(
        fail.to_string().contains("writes in DateStyle 'SQL, DMY'"),
        "{fail}"
    );
    assert_eq!(digest(cluster, &dst_db, "dst").0, 0);
    select_one(&mut client);
    // Options copyman cannot read (a dollar-quoted NULL: the string x stored for every NULL).
    let producer = ClientProducer::new(&mut client, "COPY src TO STDOUT (NULL $$x$$)").unwrap();
    let fail = CopyManager::builder(producer)
        .to(StatementReceiver::new(&mut dest, "COPY dst FROM STDIN"))
        .run()
        .unwrap_err();
    assert!(
        fail.to_string().contains("cannot read the options"),
        "{fail}"
    );
    select_one(&mut client);

    let mut source = Connection::connect_str(&cluster.conninfo(&src_db)).unwrap();
    let mut dest_client = cluster.connect(&dst_db);
    // A client reading in LATIN1 what a UTF8 session writes (café stored as cafÃ©).
    dest_client
        .batch_execute("SET client_encoding = 'LATIN1'")
        .unwrap();
    let mut tx = dest_client.transaction().unwrap();
    let receiver = ClientReceiver::new(&mut tx, "COPY dst FROM STDIN");
    let fail = CopyManager::builder(StatementProducer::new(&mut source, "COPY src TO STDOUT"))
        .to(receiver.unwrap())
        .run()
        .unwrap_err();
    assert!(fail.to_string().contains("LATIN1"), "{fail}");
    drop(tx);
    assert_eq!(digest(cluster, &dst_db, "dst").0, 0);
    dest_client.batch_execute("RESET client_encoding").unwrap();
    let mut tx = dest_client.transaction().unwrap();
    let receiver = ClientReceiver::new(&mut tx, "COPY dst FROM STDIN (FORMAT csv)");
    let fail = CopyManager::builder(StatementProducer::new(&mut source, "COPY src TO STDOUT"))
        .to(receiver.unwrap())
        .run()
        .unwrap_err();
    assert!(fail.to_string().contains("reads FORMAT csv"), "{fail}");
    drop(tx);
    assert_eq!(digest(cluster, &dst_db, "dst").0, 0);
    select_one(&mut dest_client);
    assert!(source.is_ready());
}
