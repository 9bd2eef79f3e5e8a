//! What only the tokio adapter does, against a real cluster: concurrent fan-out under a bounded
//! window, backpressure, the stall timeout, dropping a copy midway, the async endpoints (streams,
//! readers, sinks, writers, `tokio-postgres` clients) and the raw connection itself.

use crate::common;

use std::future::pending;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use common::runtime;
use copyman_async::{
    BoxError, ClientProducer, ClientReceiver, Completion, Connection, CopyManager, Data, Error,
    Fault, Options, Protocol, ReaderProducer, Receiver, ReceiverId, ReceiverOutcome, SinkReceiver,
    StatementProducer, StatementReceiver, StreamProducer, WriterReceiver, Written,
};
use copyman_testkit::Cluster;
use copyman_testkit::scenarios::{digest, exec};
use futures_util::StreamExt;

/// The largest chunk a statement producer with `buffer` bytes of buffer hands in: one re-blocked
/// frame, its 5-byte header included.
fn chunk_bound(buffer: usize) -> usize {
    buffer + 5
}

/// A fresh database with `CREATE TABLE t (i int8, pad text)`.
fn table(cluster: &Cluster) -> String {
    let db = cluster.create_database();
    exec(cluster, &db, "CREATE TABLE t (i int8, pad text)");
    db
}

/// `COPY` of `rows` rows of about 40 bytes.
fn rows_query(rows: u64) -> String {
    format!(
        "COPY (SELECT i::int8, repeat('x', 30) FROM generate_series(1, {rows}) AS g(i)) TO STDOUT"
    )
}

fn rows_digest(cluster: &Cluster, db: &str, rows: u64) -> (i64, String) {
    digest(
        cluster,
        db,
        &format!(
            "(SELECT i::int8 AS i, repeat('x', 30) AS pad FROM generate_series(1, {rows}) AS g(i))"
        ),
    )
}

fn count(cluster: &Cluster, db: &str) -> i64 {
    digest(cluster, db, "t").0
}

async fn connect(cluster: &Cluster, db: &str) -> Connection {
    Connection::connect_str(&cluster.conninfo(db))
        .await
        .expect("connect")
}

async fn select_one(conn: &mut Connection) {
    assert_eq!(
        conn.query("SELECT 1")
            .await
            .expect("the connection is usable"),
        vec![vec![Some("1".to_owned())]]
    );
}

/// A receiver that waits `delay` before each transmit of the receiver it wraps.
struct Slow<R> {
    inner: R,
    delay: Duration,
}

#[async_trait]
impl<R: Receiver> Receiver for Slow<R> {
    fn protocol(&self) -> Protocol {
        self.inner.protocol()
    }

    async fn start(&mut self) -> Result<(), BoxError> {
        self.inner.start().await
    }

    async fn transmit(&mut self, data: &Data, written: &Written) -> Result<(), BoxError> {
        tokio::time::sleep(self.delay).await;
        self.inner.transmit(data, written).await
    }

    async fn complete(&mut self) -> Result<Option<u64>, BoxError> {
        self.inner.complete().await
    }

    async fn fail(&mut self, reason: &str, completion: &Completion) -> Result<(), BoxError> {
        self.inner.fail(reason, completion).await
    }
}

/// A receiver whose transmit number `after` (from 0) never completes: a stuck destination.
struct Stuck<R> {
    inner: R,
    after: usize,
    transmits: Arc<AtomicUsize>,
}

#[async_trait]
impl<R: Receiver> Receiver for Stuck<R> {
    fn protocol(&self) -> Protocol {
        self.inner.protocol()
    }

    async fn start(&mut self) -> Result<(), BoxError> {
        self.inner.start().await
    }

    async fn transmit(&mut self, data: &Data, written: &Written) -> Result<(), BoxError> {
        if self.transmits.fetch_add(1, Ordering::SeqCst) == self.after {
            pending::<()>().await;
        }
        self.inner.transmit(data, written).await
    }

    async fn complete(&mut self) -> Result<Option<u64>, BoxError> {
        self.inner.complete().await
    }

    async fn fail(&mut self, reason: &str, completion: &Completion) -> Result<(), BoxError> {
        self.inner.fail(reason, completion).await
    }
}

/// The stall timeout turns a stuck receiver into a ReceiverFault (an error of kind `TimedOut`)
/// while the others complete with every row; memory stays within the window meanwhile; the stuck
/// one's COPY is failed (nothing committed) and its connection is usable.
#[test]
fn stall_timeout_faults_a_stuck_receiver_while_others_complete() {
    // The stall timeout bounds the healthy endpoints too: 2 s, which no pause of a loaded
    // machine reaches, while the stuck one waits for ever.
    const ROWS: u64 = 300_000;
    const WINDOW: usize = 4;
    let cluster = copyman_testkit::shared();
    let source_db = cluster.create_database();
    let dbs: Vec<String> = (0..3).map(|_| table(cluster)).collect();
    let rt = runtime();
    let (summary, faults) = rt.block_on(async {
        let mut source = connect(cluster, &source_db).await;
        let mut a = connect(cluster, &dbs[0]).await;
        let mut b = connect(cluster, &dbs[1]).await;
        let mut c = connect(cluster, &dbs[2]).await;
        let started = Instant::now();
        let mut copy = CopyManager::start_with(
            StatementProducer::new(&mut source, rows_query(ROWS)),
            vec![
                Box::new(StatementReceiver::new(&mut a, "COPY t FROM STDIN")),
                Box::new(StatementReceiver::new(&mut b, "COPY t FROM STDIN")),
                Box::new(Stuck {
                    inner: StatementReceiver::new(&mut c, "COPY t FROM STDIN"),
                    after: 5,
                    transmits: Arc::default(),
                }),
            ],
            Options::default()
                .with_window(WINDOW)
                .with_stall_timeout(Duration::from_secs(2)),
        )
        .await
        .expect("start");
        let mut faults = Vec::new();
        while let Some(progress) = copy.next().await {
            if let Err(fault) = progress {
                faults.push(fault);
            }
        }
        assert!(
            copy.peak_buffered() <= WINDOW * chunk_bound(copyman_async::DEFAULT_BUFFER_SIZE),
            "peak {} bytes",
            copy.peak_buffered()
        );
        assert_eq!(copy.live_receivers(), vec![ReceiverId(0), ReceiverId(1)]);
        let summary = copy.finish().await.expect("the others complete");
        assert!(started.elapsed() < Duration::from_secs(30));
        for conn in [&mut source, &mut a, &mut b, &mut c] {
            select_one(conn).await;
        }
        (summary, faults)
    });
    assert_eq!(faults.len(), 1, "{faults:?}");
    let Fault::Receiver(fault) = &faults[0] else {
        panic!("a receiver fault: {:?}", faults[0]);
    };
    let error = fault
        .get(ReceiverId(2))
        .expect("the stuck receiver faulted");
    let error = error
        .downcast_ref::<copyman_async::Stalled>()
        .expect("core's stall error");
    assert_eq!(
        error.to_string(),
        "receiver 2 stalled: no byte moved for 2s",
        "{error}"
    );
    let io = std::error::Error::source(error)
        .and_then(|e| e.downcast_ref::<std::io::Error>())
        .expect("a timeout underneath");
    assert_eq!(io.kind(), std::io::ErrorKind::TimedOut);
    assert_eq!(summary.producer_count, Some(ROWS));
    assert!(matches!(
        summary.receivers[0].1,
        ReceiverOutcome::Completed(Some(ROWS))
    ));
    assert!(matches!(
        summary.receivers[1].1,
        ReceiverOutcome::Completed(Some(ROWS))
    ));
    assert!(matches!(
        summary.receivers[2].1,
        ReceiverOutcome::Faulted(_)
    ));
    let expected = rows_digest(cluster, &source_db, ROWS);
    assert_eq!(digest(cluster, &dbs[0], "t"), expected);
    assert_eq!(digest(cluster, &dbs[1], "t"), expected);
    assert_eq!(count(cluster, &dbs[2]), 0);
}

/// A destination server that stalls mid-copy (a row trigger sleeps) holds the producer back:
/// copyman buffers no more than the window while the socket buffers fill; with a stall timeout
/// it is faulted and the others complete. Its COPY commits nothing.
#[test]
fn stalled_destination_server_is_faulted_with_bounded_memory() {
    const ROWS: u64 = 600_000; // ~24 MB: more than the socket buffers hold.
    const WINDOW: usize = 4;
    const BUFFER: usize = 32 * 1024;
    let cluster = copyman_testkit::shared();
    let source_db = cluster.create_database();
    let dbs: Vec<String> = (0..2).map(|_| table(cluster)).collect();
    exec(
        cluster,
        &dbs[1],
        "CREATE FUNCTION stall() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN PERFORM pg_sleep(6); RETURN NEW; END $$;
         CREATE TRIGGER stall BEFORE INSERT ON t FOR EACH ROW WHEN (NEW.i = 1000)
             EXECUTE FUNCTION stall();",
    );
    let rt = runtime();
    let (summary, faults, peak) = rt.block_on(async {
        let mut source = connect(cluster, &source_db).await;
        let mut fast = connect(cluster, &dbs[0]).await;
        let mut stalled = connect(cluster, &dbs[1]).await;
        let mut copy = CopyManager::start_with(
            StatementProducer::new(&mut source, rows_query(ROWS)).buffer_size(BUFFER),
            vec![
                Box::new(StatementReceiver::new(&mut fast, "COPY t FROM STDIN")),
                Box::new(StatementReceiver::new(&mut stalled, "COPY t FROM STDIN")),
            ],
            Options::default()
                .with_window(WINDOW)
                .with_stall_timeout(Duration::from_secs(1)),
        )
        .await
        .expect("start");
        let mut faults = Vec::new();
        while let Some(progress) = copy.next().await {
            if let Err(fault) = progress {
                faults.push(fault);
            }
            assert!(copy.buffered_bytes() <= WINDOW * chunk_bound(BUFFER));
        }
        let peak = copy.peak_buffered();
        let summary = copy.finish().await.expect("the fast one completes");
        select_one(&mut source).await;
        select_one(&mut fast).await;
        (summary, faults, peak)
    });
    assert!(peak <= WINDOW * chunk_bound(BUFFER), "peak {peak} bytes");
    assert!(peak > 0);
    assert_eq!(faults.len(), 1, "{faults:?}");
    assert!(
        matches!(&faults[0], Fault::Receiver(f) if f.get(ReceiverId(1)).is_some()),
        "{:?}",
        faults[0]
    );
    assert!(matches!(
        summary.receivers[0].1,
        ReceiverOutcome::Completed(Some(ROWS))
    ));
    assert!(matches!(
        summary.receivers[1].1,
        ReceiverOutcome::Faulted(_)
    ));
    assert_eq!(
        digest(cluster, &dbs[0], "t"),
        rows_digest(cluster, &source_db, ROWS)
    );
    assert_eq!(count(cluster, &dbs[1]), 0);
}

/// A slow receiver applies backpressure: the producer is read only as fast as the slowest
/// receiver takes data, memory stays within the window, and every row arrives.
#[test]
fn slow_receiver_applies_backpressure() {
    const ROWS: u64 = 200_000; // ~8 MB
    const WINDOW: usize = 2;
    const BUFFER: usize = 64 * 1024;
    let cluster = copyman_testkit::shared();
    let source_db = cluster.create_database();
    let dbs: Vec<String> = (0..2).map(|_| table(cluster)).collect();
    let rt = runtime();
    let peak = rt.block_on(async {
        let mut source = connect(cluster, &source_db).await;
        let mut fast = connect(cluster, &dbs[0]).await;
        let mut slow = connect(cluster, &dbs[1]).await;
        let mut copy = CopyManager::start_with(
            StatementProducer::new(&mut source, rows_query(ROWS)).buffer_size(BUFFER),
            vec![
                Box::new(StatementReceiver::new(&mut fast, "COPY t FROM STDIN")),
                Box::new(Slow {
                    inner: StatementReceiver::new(&mut slow, "COPY t FROM STDIN"),
                    delay: Duration::from_millis(2),
                }),
            ],
            Options::default().with_window(WINDOW),
        )
        .await
        .expect("start");
        while let Some(progress) = copy.next().await {
            progress.expect("no fault");
            assert!(copy.buffered_bytes() <= WINDOW * chunk_bound(BUFFER));
        }
        let peak = copy.peak_buffered();
        let summary = copy.finish().await.expect("finish");
        assert_eq!(summary.producer_count, Some(ROWS));
        peak
    });
    assert!(peak <= WINDOW * chunk_bound(BUFFER), "peak {peak} bytes");
    let expected = rows_digest(cluster, &source_db, ROWS);
    for db in &dbs {
        assert_eq!(digest(cluster, db, "t"), expected);
    }
}

/// A copy whose future is dropped midway (a timeout around `run`) while data streams commits
/// nothing. A receiver whose socket took its CopyFail at once is usable afterwards; one whose
/// socket was full (its server behind) was closed. The producer's connection is usable: its
/// cancel ran in the background and it read the rest of the COPY.
#[test]
fn dropped_copy_future_commits_nothing() {
    const ROWS: u64 = 3_000_000;
    let cluster = copyman_testkit::shared();
    let source_db = cluster.create_database();
    let dbs: Vec<String> = (0..2).map(|_| table(cluster)).collect();
    let rt = runtime();
    rt.block_on(async {
        let mut source = connect(cluster, &source_db).await;
        let mut a = connect(cluster, &dbs[0]).await;
        let mut b = connect(cluster, &dbs[1]).await;
        let run = async {
            CopyManager::start(
                StatementProducer::new(&mut source, rows_query(ROWS)),
                vec![
                    Box::new(StatementReceiver::new(&mut a, "COPY t FROM STDIN")),
                    Box::new(StatementReceiver::new(&mut b, "COPY t FROM STDIN")),
                ],
            )
            .await
            .expect("start")
            .run()
            .await
        };
        let outcome = tokio::time::timeout(Duration::from_millis(300), run).await;
        assert!(outcome.is_err(), "the copy should still run: {outcome:?}");
        for conn in [&mut a, &mut b] {
            if conn.is_closed() {
                let error = conn.query("SELECT 1").await.expect_err("closed");
                assert!(matches!(error, Error::Closed { .. }), "{error}");
            } else {
                select_one(conn).await;
            }
        }
        assert!(!source.is_closed());
        let started = Instant::now();
        select_one(&mut source).await;
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the cancel stopped the source early"
        );
    });
    for db in &dbs {
        assert_eq!(count(cluster, db), 0);
    }
}

/// A copy whose future is dropped during its finish, after its receiver's CopyDone went out
/// (a statement trigger still runs): the receiver's next call waits for the COPY's end, and the
/// connection then tells what became of it — its count (committed: autocommit), or the error
/// that failed it (lib62 F1: read and thrown away, the caller could not tell the two apart).
#[test]
fn a_copy_dropped_during_its_finish_tells_its_end_afterwards() {
    let cluster = copyman_testkit::shared();
    let source_db = cluster.create_database();
    let rt = runtime();
    for fails in [false, true] {
        let db = table(cluster);
        exec(
            cluster,
            &db,
            &format!(
                "CREATE FUNCTION slow_end() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
                   PERFORM pg_sleep(2);
                   IF {fails} THEN RAISE EXCEPTION 'refused at the end'; END IF;
                   RETURN NULL; END $$;
                 CREATE TRIGGER slow_end AFTER INSERT ON t FOR EACH STATEMENT
                   EXECUTE FUNCTION slow_end();"
            ),
        );
        rt.block_on(async {
            let mut source = connect(cluster, &source_db).await;
            let mut b = connect(cluster, &db).await;
            let mut admin = connect(cluster, "postgres").await;
            let run = CopyManager::builder(StatementProducer::new(&mut source, rows_query(100)))
                .to(StatementReceiver::new(&mut b, "COPY t FROM STDIN"))
                .run();
            // Dropped once the receiver's COPY ended and its trigger runs.
            let in_trigger = async {
                let sleeping = format!(
                    "SELECT 1 FROM pg_stat_activity WHERE datname = '{db}' \
                     AND wait_event = 'PgSleep'"
                );
                while admin.query(&sleeping).await.expect("activity").is_empty() {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            };
            tokio::select! {
                ended = run => panic!("the copy ended before its drop: {ended:?}"),
                () = in_trigger => {}
            }
            select_one(&mut b).await;
            match (b.take_abandoned(), fails) {
                (Some(Ok(Some(100))), false) => {}
                (Some(Err(e)), true) => assert_eq!(e.code(), Some("P0001"), "{e}"),
                (other, _) => panic!("fails {fails}: {other:?}"),
            }
            assert!(b.take_abandoned().is_none());
        });
        assert_eq!(count(cluster, &db), if fails { 0 } else { 100 });
    }
}

/// A copy dropped while its receivers are idle (the producer has nothing more yet): each
/// receiver writes its CopyFail at once, nothing commits, and every connection stays usable.
#[test]
fn dropped_idle_copy_leaves_receivers_usable() {
    let cluster = copyman_testkit::shared();
    let dbs: Vec<String> = (0..2).map(|_| table(cluster)).collect();
    let rt = runtime();
    rt.block_on(async {
        let mut a = connect(cluster, &dbs[0]).await;
        let mut b = connect(cluster, &dbs[1]).await;
        // One chunk, then nothing for ever.
        let items = futures_util::stream::iter([Ok::<_, Error>(Bytes::from_static(b"1\tx\n2\t"))])
            .chain(futures_util::stream::pending());
        let run = async {
            CopyManager::start(
                StreamProducer::new(items),
                vec![
                    Box::new(StatementReceiver::new(&mut a, "COPY t FROM STDIN")),
                    Box::new(StatementReceiver::new(&mut b, "COPY t FROM STDIN")),
                ],
            )
            .await
            .expect("start")
            .run()
            .await
        };
        let outcome = tokio::time::timeout(Duration::from_millis(300), run).await;
        assert!(outcome.is_err(), "the copy waits for its producer");
        for conn in [&mut a, &mut b] {
            assert!(!conn.is_closed(), "an idle socket takes a CopyFail at once");
            select_one(conn).await;
        }
    });
    for db in &dbs {
        assert_eq!(count(cluster, db), 0);
    }
}

/// The async endpoints: a `Stream` of byte buffers split mid-row feeds a statement receiver, a
/// `Sink` and an `AsyncWrite`; an `AsyncRead` feeds a statement receiver in small reads.
#[test]
fn stream_reader_sink_and_writer_endpoints() {
    let cluster = copyman_testkit::shared();
    let db = cluster.create_database();
    exec(
        cluster,
        &db,
        "CREATE TABLE s (i int8, t text); CREATE TABLE r (i int8, t text)",
    );
    let data: Vec<u8> = (1..=20_000)
        .flat_map(|i| format!("{i}\trow {i}\n").into_bytes())
        .collect();
    // Pieces of 7 bytes: boundaries fall anywhere in the rows.
    let pieces: Vec<Bytes> = data.chunks(7).map(Bytes::copy_from_slice).collect();
    let rt = runtime();
    let (sunk, written) = rt.block_on(async {
        let mut conn = connect(cluster, &db).await;
        let mut sunk: Vec<Bytes> = Vec::new();
        let mut written: Vec<u8> = Vec::new();
        let items = futures_util::stream::iter(pieces.clone().into_iter().map(Ok::<_, Error>));
        let summary = CopyManager::start(
            StreamProducer::new(items),
            vec![
                Box::new(StatementReceiver::new(&mut conn, "COPY s FROM STDIN")),
                Box::new(SinkReceiver::new(&mut sunk)),
                Box::new(WriterReceiver::new(&mut written)),
            ],
        )
        .await
        .expect("start")
        .run()
        .await
        .expect("run");
        assert_eq!(
            summary.messages,
            pieces.len() as u64,
            "one message per item"
        );
        assert_eq!(summary.bytes, data.len() as u64);
        assert!(matches!(
            summary.receivers[0].1,
            ReceiverOutcome::Completed(Some(20_000))
        ));

        let summary = CopyManager::start(
            ReaderProducer::new(&data[..]).buffer_size(4096),
            vec![Box::new(StatementReceiver::new(
                &mut conn,
                "COPY r FROM STDIN",
            ))],
        )
        .await
        .expect("start")
        .run()
        .await
        .expect("run");
        assert_eq!(summary.bytes, data.len() as u64);
        assert!(matches!(
            summary.receivers[0].1,
            ReceiverOutcome::Completed(Some(20_000))
        ));
        (sunk, written)
    });
    assert_eq!(sunk.concat(), data);
    assert_eq!(written, data);
    let expected = digest(
        cluster,
        &db,
        "(SELECT i::int8 AS i, 'row ' || i AS t FROM generate_series(1, 20000) AS g(i))",
    );
    assert_eq!(digest(cluster, &db, "s"), expected);
    assert_eq!(digest(cluster, &db, "r"), expected);
}

/// The client-bound endpoints: a `tokio-postgres` client's `copy_out` feeds a raw receiver and
/// a `copy_in` inside a transaction; an aborted copy into a client commits nothing and leaves the
/// client usable.
#[test]
fn tokio_postgres_client_endpoints() {
    const ROWS: u64 = 50_000;
    let cluster = copyman_testkit::shared();
    let source_db = cluster.create_database();
    let dbs: Vec<String> = (0..2).map(|_| table(cluster)).collect();
    let rt = runtime();
    rt.block_on(async {
        let (source, connection) =
            tokio_postgres::connect(&cluster.conninfo(&source_db), tokio_postgres::NoTls)
                .await
                .expect("connect the source client");
        tokio::spawn(connection);
        let (mut dest, connection) =
            tokio_postgres::connect(&cluster.conninfo(&dbs[1]), tokio_postgres::NoTls)
                .await
                .expect("connect the destination client");
        tokio::spawn(connection);
        let mut raw = connect(cluster, &dbs[0]).await;

        let transaction = dest.transaction().await.expect("begin");
        let producer = ClientProducer::new(&source, &rows_query(ROWS))
            .await
            .expect("copy_out");
        let receiver = ClientReceiver::new(&transaction, "COPY t FROM STDIN")
            .await
            .expect("copy_in");
        let summary = CopyManager::start(
            producer,
            vec![
                Box::new(StatementReceiver::new(&mut raw, "COPY t FROM STDIN")),
                Box::new(receiver),
            ],
        )
        .await
        .expect("start")
        .run()
        .await
        .expect("run");
        assert_eq!(summary.messages, ROWS);
        assert!(matches!(
            summary.receivers[1].1,
            ReceiverOutcome::Completed(Some(ROWS))
        ));
        transaction.commit().await.expect("commit");

        // Outside a transaction block: refused, saying why (its commit's failure would be
        // reported nowhere: lib38 F6).
        let refused = ClientReceiver::new(&dest, "COPY t FROM STDIN").await;
        let refused = refused.expect_err("a client outside a transaction");
        assert!(
            refused
                .to_string()
                .contains("needs its client in a transaction"),
            "{refused}"
        );

        // A move outside a transaction block: refused before it is sent (recheck49 F4: its
        // DELETE committed as its rows were read, and a failed copy lost them).
        let moving = "COPY (DELETE FROM t RETURNING *) TO STDOUT";
        let refused = ClientProducer::new(&dest, moving).await;
        let refused = refused.expect_err("a move outside a transaction");
        assert!(
            refused.to_string().contains("in no transaction"),
            "{refused}"
        );
        let row = dest.query_one("SELECT count(*) FROM t", &[]).await.unwrap();
        assert_eq!(row.get::<_, i64>(0), ROWS as i64, "nothing was run");

        // Aborted: nothing more arrives, and the client goes on.
        let transaction = dest.transaction().await.expect("begin");
        let receiver = ClientReceiver::new(&transaction, "COPY t FROM STDIN")
            .await
            .expect("copy_in");
        let lines = (0..100).map(|i| vec![Bytes::from(format!("{i}\tx\n"))]);
        let copy = CopyManager::start(
            copyman_async::IteratorProducer::new(lines),
            vec![Box::new(receiver)],
        )
        .await
        .expect("start");
        let fail = copy.abort("changed my mind").await;
        assert_eq!(fail.reason, "changed my mind");
        transaction.rollback().await.expect("rollback");
        let row = dest.query_one("SELECT 1", &[]).await.expect("usable");
        assert_eq!(row.get::<_, i32>(0), 1);

        // A producer whose COPY fails midway: its fault carries the server's error (as
        // copyman-sync's does), and the client goes on.
        let producer = ClientProducer::new(
            &source,
            "COPY (SELECT i, (1 / (i - 5000))::text FROM generate_series(1, 10000) i) TO STDOUT",
        )
        .await
        .expect("copy_out");
        let fail = CopyManager::builder(producer)
            .to(StatementReceiver::new(&mut raw, "COPY t FROM STDIN"))
            .run()
            .await
            .unwrap_err();
        let error = fail.producer_fault.as_ref().expect("the producer's error");
        assert_eq!(error.code(), Some("22012"), "{fail}");
        let row = source.query_one("SELECT 1", &[]).await.expect("usable");
        assert_eq!(row.get::<_, i32>(0), 1);

        // Its statement's representation is compared with the other ends' (text into CSV was
        // copied, a NULL stored as the string \N), as copyman-sync's are.
        let producer = ClientProducer::new(&source, &rows_query(10))
            .await
            .expect("copy_out");
        let fail = CopyManager::builder(producer)
            .to(StatementReceiver::new(
                &mut raw,
                "COPY t FROM STDIN (FORMAT csv)",
            ))
            .run()
            .await
            .unwrap_err();
        assert!(fail.to_string().contains("reads FORMAT csv"), "{fail}");
        // And its client's DateStyle, set since it connected (SQL, DMY writes 02/12/2026).
        source
            .batch_execute("SET DateStyle = 'SQL, DMY'")
            .await
            .expect("set");
        let producer = ClientProducer::new(&source, &rows_query(10))
            .await
            .expect("copy_out");
        let fail = CopyManager::builder(producer)
            .to(StatementReceiver::new(&mut raw, "COPY t FROM STDIN"))
            .run()
            .await
            .unwrap_err();
        assert!(
            fail.to_string().contains("writes in DateStyle 'SQL, DMY'"),
            "{fail}"
        );
    });
    let expected = rows_digest(cluster, &source_db, ROWS);
    assert_eq!(digest(cluster, &dbs[0], "t"), expected);
    assert_eq!(digest(cluster, &dbs[1], "t"), expected);
}

/// The raw connection: TCP and Unix sockets, the defaults it sets, SQL before and after, server
/// errors with their SQLSTATE, and cancelling a running statement from another task.
#[test]
fn raw_connection() {
    let cluster = copyman_testkit::shared();
    let db = cluster.create_database();
    let rt = runtime();
    rt.block_on(async {
        let mut hosts = tokio_postgres::Config::new();
        hosts
            .host_path(cluster.socket_dir())
            .port(cluster.port())
            .user(copyman_testkit::SUPERUSER)
            .password(cluster.password())
            .dbname(&db)
            .connect_timeout(Duration::from_secs(5));
        let mut unix = Connection::connect(&hosts).await.expect("unix socket");
        let mut tcp = Connection::connect_str(&cluster.url(&db)).await.expect("url");
        for conn in [&mut unix, &mut tcp] {
            let rows = conn
                .query("SHOW application_name; SHOW DateStyle; SHOW IntervalStyle; SHOW extra_float_digits; SHOW client_encoding")
                .await
                .expect("settings");
            let values: Vec<_> = rows.into_iter().map(|r| r[0].clone().unwrap()).collect();
            assert_eq!(values, ["copyman", "ISO, MDY", "postgres", "3", "UTF8"]);
        }
        assert_eq!(
            tcp.execute("CREATE TABLE n (i int); INSERT INTO n SELECT generate_series(1, 7)")
                .await
                .expect("execute"),
            7
        );
        let error = tcp.execute("SELECT 1/0").await.expect_err("division by zero");
        assert_eq!(error.code(), Some("22012"), "{error}");
        select_one(&mut tcp).await;

        // Cancel a statement running on the Unix connection from a TCP-side task.
        let token = unix.cancel_token().expect("a backend key");
        let started = Instant::now();
        let (slept, cancelled) = tokio::join!(unix.execute("SELECT pg_sleep(30)"), async {
            // Once the statement runs: a cancel that comes before it is not for it.
            let running = "SELECT 1 FROM pg_stat_activity \
                           WHERE query = 'SELECT pg_sleep(30)' AND state = 'active' \
                           AND datname = current_database()";
            for _ in 0..1500 {
                if !tcp.query(running).await.expect("activity").is_empty() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            token.cancel().await
        });
        cancelled.expect("cancel sent");
        let error = slept.expect_err("the statement was cancelled");
        assert_eq!(error.code(), Some("57014"), "{error}");
        assert!(started.elapsed() < Duration::from_secs(30));
        select_one(&mut unix).await;

        let missing = Connection::connect_str(&cluster.conninfo("no_such_database")).await;
        assert_eq!(
            missing.expect_err("no such database").code(),
            Some("3D000")
        );
    });
}

/// A statement receiver whose server rejects a row ends its transmit at once with the server's
/// error (read while writing), and only its own copy fails.
#[test]
fn server_error_ends_a_transmit_promptly() {
    let cluster = copyman_testkit::shared();
    let source_db = cluster.create_database();
    let dbs: Vec<String> = (0..2).map(|_| table(cluster)).collect();
    exec(
        cluster,
        &dbs[1],
        "ALTER TABLE t ADD CONSTRAINT early CHECK (i <> 2000)",
    );
    let rt = runtime();
    rt.block_on(async {
        let mut source = connect(cluster, &source_db).await;
        let mut a = connect(cluster, &dbs[0]).await;
        let mut b = connect(cluster, &dbs[1]).await;
        let mut copy = CopyManager::start(
            StatementProducer::new(&mut source, rows_query(500_000)),
            vec![
                Box::new(StatementReceiver::new(&mut a, "COPY t FROM STDIN")),
                Box::new(StatementReceiver::new(&mut b, "COPY t FROM STDIN")),
            ],
        )
        .await
        .expect("start");
        let mut fault = None;
        let mut after = 0;
        while let Some(progress) = copy.next().await {
            match progress {
                Ok((messages, _)) if fault.is_some() => after += messages,
                Ok(_) => {}
                Err(f) => fault = Some(f),
            }
        }
        let Some(Fault::Receiver(fault)) = fault else {
            panic!("a receiver fault");
        };
        let error = fault.get(ReceiverId(1)).expect("receiver 1");
        let error = error.downcast_ref::<Error>().expect("the adapter's error");
        assert_eq!(error.code(), Some("23514"), "{error}");
        assert!(after > 0, "the copy went on after the fault");
        copy.finish().await.expect("receiver 0 completes");
        select_one(&mut b).await;
    });
    assert_eq!(count(cluster, &dbs[0]), 500_000);
    assert_eq!(count(cluster, &dbs[1]), 0);
}

/// Faults and progress come as a `Stream` too: `collect` works on a copy.
#[test]
fn copy_is_a_stream() {
    let cluster = copyman_testkit::shared();
    let db = table(cluster);
    let rt = runtime();
    rt.block_on(async {
        let mut conn = connect(cluster, &db).await;
        let lines = (1..=1000).map(|i| Bytes::from(format!("{i}\tx\n")));
        let chunks: Vec<Vec<Bytes>> = lines
            .collect::<Vec<_>>()
            .chunks(100)
            .map(<[Bytes]>::to_vec)
            .collect();
        let mut copy = CopyManager::start(
            copyman_async::IteratorProducer::new(chunks),
            vec![Box::new(StatementReceiver::new(
                &mut conn,
                "COPY t FROM STDIN",
            ))],
        )
        .await
        .expect("start");
        let progress: Vec<_> = (&mut copy).collect().await;
        assert_eq!(progress.len(), 10);
        assert!(progress.iter().all(|p| matches!(p, Ok((100, _)))));
        let summary = copy.finish().await.expect("finish");
        assert_eq!(summary.messages, 1000);
    });
    assert_eq!(count(cluster, &db), 1000);
}

/// A receiver that takes each transmit slowly but steadily: a few bytes every `step`, reported
/// through `written`, for longer in all than the stall timeout.
struct Trickle {
    steps: usize,
    step: Duration,
    lines: Arc<AtomicUsize>,
}

#[async_trait]
impl Receiver for Trickle {
    fn protocol(&self) -> Protocol {
        Protocol::Chunks
    }

    async fn start(&mut self) -> Result<(), BoxError> {
        Ok(())
    }

    async fn transmit(&mut self, data: &Data, written: &Written) -> Result<(), BoxError> {
        for _ in 0..self.steps {
            tokio::time::sleep(self.step).await;
            written.add(1);
        }
        if let Data::Lines(lines) = data {
            self.lines.fetch_add(lines.len(), Ordering::SeqCst);
        }
        Ok(())
    }

    async fn complete(&mut self) -> Result<Option<u64>, BoxError> {
        Ok(None)
    }

    async fn fail(&mut self, _reason: &str, _completion: &Completion) -> Result<(), BoxError> {
        Ok(())
    }
}

/// Core's stall rule is "no byte moved for the timeout", the same in both adapters: a transmit
/// that takes three times the stall timeout but moves bytes all along is not a stall.
#[test]
fn a_slow_transmit_whose_bytes_move_is_not_a_stall() {
    let lines = Arc::new(AtomicUsize::new(0));
    // 100 ms steps against a 1 s stall timeout: slack for a loaded machine's late wake-ups.
    let receiver = Trickle {
        steps: 30,
        step: Duration::from_millis(100),
        lines: Arc::clone(&lines),
    };
    let summary = runtime()
        .block_on(
            CopyManager::builder(copyman_async::IteratorProducer::new([vec!["1\n", "2\n"]]))
                .to(receiver)
                .options(Options::default().with_stall_timeout(Duration::from_secs(1)))
                .run(),
        )
        .expect("no stall: bytes moved every 100 ms");
    assert_eq!(summary.messages, 2);
    assert_eq!(lines.load(Ordering::SeqCst), 2);
}

/// A copy whose every IO is ready at once (a source always ready, a receiver of the caller's
/// that takes its time over each chunk) yields to the runtime now and then: another task on a
/// current-thread runtime runs during it, and a `timeout` around it stops it midway, nothing of
/// the rest delivered (it ran to its end in one poll: the timeout fired only after, the ticker
/// never ran).
#[tokio::test(flavor = "current_thread")]
async fn a_copy_whose_io_is_always_ready_yields_to_the_runtime() {
    use std::sync::atomic::{AtomicU64, Ordering};
    const CHUNKS: u64 = 2_000;
    let ticks = Arc::new(AtomicU64::new(0));
    let ticker = tokio::spawn({
        let ticks = ticks.clone();
        async move {
            loop {
                ticks.fetch_add(1, Ordering::Relaxed);
                tokio::task::yield_now().await;
            }
        }
    });
    let chunks = (0..CHUNKS).map(|i| vec![Bytes::from(format!("{i}\n"))]);
    let (mut seen, mut ticks_during) = (0u64, 0u64);
    let receiver = copyman_async::CallReceiver::new(|lines: &[Bytes]| {
        seen += lines.len() as u64;
        ticks_during = ticks.load(Ordering::Relaxed);
        std::thread::sleep(Duration::from_micros(200));
        Ok(())
    });
    let copy = CopyManager::builder(copyman_async::IteratorProducer::new(chunks))
        .to(receiver)
        .run();
    let stopped = tokio::time::timeout(Duration::from_millis(20), copy).await;
    ticker.abort();
    assert!(stopped.is_err(), "the timeout stops the copy midway");
    assert!(
        seen < CHUNKS,
        "stopped before its end: {seen} of {CHUNKS} lines"
    );
    assert!(ticks_during > 0, "the other task ran during the copy");
}

/// A copy dropped while a receiver's COPY statement waits for a lock (its start in flight):
/// once the lock is released the server would start that COPY and wait for data for as long as
/// the connection was not used again, holding its lock and transaction (another session's
/// TRUNCATE waited on it). The connection is closed instead: its backend ends.
#[test]
fn dropped_while_a_receivers_copy_waits_to_start_leaves_no_session_in_copy() {
    let cluster = copyman_testkit::shared();
    let source_db = cluster.create_database();
    let db = table(cluster);
    let mut locker = cluster.connect(&db);
    locker.batch_execute("BEGIN; LOCK TABLE t").unwrap();
    let rt = runtime();
    let (dest, pid) = rt.block_on(async {
        let mut source = connect(cluster, &source_db).await;
        let mut dest = connect(cluster, &db).await;
        let pid = dest.query("SELECT pg_backend_pid()").await.unwrap()[0][0].clone();
        let copy = CopyManager::builder(StatementProducer::new(&mut source, rows_query(10)))
            .to(StatementReceiver::new(&mut dest, "COPY t FROM STDIN"))
            .run();
        let outcome = tokio::time::timeout(Duration::from_millis(300), copy).await;
        assert!(outcome.is_err(), "the COPY waits for the lock: {outcome:?}");
        select_one(&mut source).await;
        (dest, pid.unwrap())
    });
    locker.batch_execute("COMMIT").unwrap();
    // Asked until its backend is gone (it lingered in COPY for as long as `dest` was kept).
    let mut monitor = cluster.connect("postgres");
    let lingering = (0..100).all(|_| {
        let rows = monitor
            .query(
                "SELECT 1 FROM pg_stat_activity WHERE pid::text = $1",
                &[&pid],
            )
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        !rows.is_empty()
    });
    assert!(!lingering, "the destination's backend stayed in its COPY");
    assert!(dest.is_closed());
    assert_eq!(count(cluster, &db), 0);
}

/// The same with a receiver that blocks long in each call: the copy yields after a few of them
/// too, not only after 128 (40 calls of 30 ms had held the runtime for 1.2 s before a timeout
/// of 20 ms could fire).
#[tokio::test(flavor = "current_thread")]
async fn a_copy_whose_receiver_blocks_long_yields_after_a_few_calls() {
    const CHUNKS: u64 = 40;
    let chunks = (0..CHUNKS).map(|i| vec![Bytes::from(format!("{i}\n"))]);
    let mut seen = 0u64;
    let receiver = copyman_async::CallReceiver::new(|lines: &[Bytes]| {
        seen += lines.len() as u64;
        std::thread::sleep(Duration::from_millis(30));
        Ok(())
    });
    let copy = CopyManager::builder(copyman_async::IteratorProducer::new(chunks))
        .to(receiver)
        .run();
    let stopped = tokio::time::timeout(Duration::from_millis(20), copy).await;
    assert!(stopped.is_err(), "the timeout stops the copy midway");
    assert!(seen < CHUNKS / 2, "stopped early: {seen} of {CHUNKS} lines");
}

/// A receiver whose backend waits on another session's lock mid-COPY (a row trigger takes an
/// advisory lock another session holds) is given up at the stall timeout and its connection
/// closed: its backend is sent a cancel too, so its COPY, transaction and locks end then — it
/// stayed in its COPY, holding them, until the other session let the lock go (a TRUNCATE of the
/// table waited on it meanwhile).
#[test]
fn a_receiver_stalled_on_a_lock_is_cancelled_when_given_up() {
    let cluster = copyman_testkit::shared();
    let source_db = cluster.create_database();
    let (kept, stuck) = (table(cluster), table(cluster));
    exec(
        cluster,
        &stuck,
        "CREATE FUNCTION wait_lock() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN IF NEW.i = 1000 THEN PERFORM pg_advisory_lock(42); END IF; RETURN NEW; END $$;
         CREATE TRIGGER w BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION wait_lock();",
    );
    let mut holder = cluster.connect(&stuck);
    holder.batch_execute("SELECT pg_advisory_lock(42)").unwrap();
    // The lock stays held: only a cancel can end the given-up backend's COPY. (The cancel goes
    // out on the runtime, kept running meanwhile, as an application's is.)
    let left = runtime().block_on(async {
        let mut source = connect(cluster, &source_db).await;
        let mut a = connect(cluster, &kept).await;
        let mut b = connect(cluster, &stuck).await;
        let mut copy = CopyManager::start_with(
            StatementProducer::new(&mut source, rows_query(200_000)),
            vec![
                Box::new(StatementReceiver::new(&mut a, "COPY t FROM STDIN")),
                Box::new(StatementReceiver::new(&mut b, "COPY t FROM STDIN")),
            ],
            Options::default()
                .with_keep_going(true)
                .with_stall_timeout(Duration::from_secs(1)),
        )
        .await
        .expect("start");
        while copy.next().await.is_some() {}
        let summary = copy.finish().await.expect("the other completes");
        assert!(matches!(
            summary.receivers[1].1,
            ReceiverOutcome::Faulted(_)
        ));
        let mut watch = connect(cluster, "postgres").await;
        let query = format!(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = '{stuck}' \
             AND query LIKE 'COPY%' AND state = 'active'"
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let rows = watch.query(&query).await.expect("pg_stat_activity");
            let left = rows[0][0].clone().unwrap_or_default();
            if left == "0" || Instant::now() >= deadline {
                break left;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    holder
        .batch_execute("SELECT pg_advisory_unlock(42)")
        .unwrap();
    assert_eq!(
        left, "0",
        "the given-up backend kept its COPY and its locks"
    );
    assert_eq!(count(cluster, &kept), 200_000);
    assert_eq!(count(cluster, &stuck), 0);
}

/// A writer whose flush fails, and a `ClientReceiver`: the client's COPY ends only once the
/// writer completed, so the writer's failure fails it (all or nothing). It completed beside the
/// writer, taken for a receiver without a server (it takes lines), and in autocommit committed
/// every row of the failed copy (lib38 F2).
#[test]
fn a_client_receiver_completes_after_the_receivers_without_a_server() {
    struct FailingFlush;
    impl tokio::io::AsyncWrite for FailingFlush {
        fn poll_write(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            std::task::Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Err(std::io::Error::other("disk quota exceeded")))
        }
        fn poll_shutdown(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }

    let cluster = copyman_testkit::shared();
    let db = table(cluster);
    runtime().block_on(async {
        let (client, connection) =
            tokio_postgres::connect(&cluster.conninfo(&db), tokio_postgres::NoTls)
                .await
                .expect("connect the client");
        tokio::spawn(connection);
        let mut client = client;
        let transaction = client.transaction().await.expect("begin");
        let receiver = ClientReceiver::new(&transaction, "COPY t FROM STDIN")
            .await
            .expect("copy_in");
        assert!(receiver.completes_a_server());
        let lines = (0..1000).map(|i| vec![Bytes::from(format!("{i}\tx\n"))]);
        // The client first: the order they are given in does not matter.
        let fail = CopyManager::builder(copyman_async::IteratorProducer::new(lines))
            .to(receiver)
            .to(WriterReceiver::new(FailingFlush))
            .run()
            .await
            .expect_err("the writer's flush fails the copy");
        assert!(!fail.any_completed(), "{fail}");
        // The writer's own words: no connection failed (lib38 F1).
        let text = fail.to_string();
        assert!(
            text.contains("receiver 1: disk quota exceeded") && !text.contains("connection"),
            "{text}"
        );
        // Its COPY failed: the transaction can only roll back.
        transaction.rollback().await.expect("rollback");
        let row = client.query_one("SELECT 1", &[]).await.expect("usable");
        assert_eq!(row.get::<_, i32>(0), 1);
    });
    assert_eq!(
        count(cluster, &db),
        0,
        "nothing of the failed copy committed"
    );
}

/// A writer whose final flush never ends (a pipe whose reader stopped reading, the data all in
/// a `BufWriter`) is under the stall timeout like its transmits: it stalls, the copy ends
/// within the timeout's bound instead of hanging without a word, and under keep-going the other
/// receiver completes (lib38 F3).
#[test]
fn a_writer_whose_flush_never_ends_stalls() {
    struct FrozenFlush;
    impl tokio::io::AsyncWrite for FrozenFlush {
        fn poll_write(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            std::task::Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Pending
        }
        fn poll_shutdown(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Pending
        }
    }

    runtime().block_on(async {
        let lines = (0..1000).map(|i| vec![Bytes::from(format!("{i}\tx\n"))]);
        let options = Options::default()
            .with_stall_timeout(Duration::from_millis(500))
            .with_keep_going(true);
        let copy = CopyManager::builder(copyman_async::IteratorProducer::new(lines))
            .to(WriterReceiver::new(FrozenFlush))
            .to(copyman_async::NullReceiver)
            .options(options)
            .run();
        let summary = tokio::time::timeout(Duration::from_secs(60), copy)
            .await
            .expect("the frozen flush stalled")
            .expect("keep-going: the survivor completes");
        let (_, writer) = &summary.receivers[0];
        let error = writer.error().unwrap_or_else(|| panic!("{summary:?}"));
        assert!(error.is::<copyman_async::Stalled>(), "{summary:?}");
        assert!(
            matches!(summary.receivers[1].1, ReceiverOutcome::Completed(_)),
            "{summary:?}"
        );
    });
}

/// A writer that takes a few bytes at a time, slowly but steadily (a pipe read a little at a
/// time), is not stalled while its bytes move, though one transmit takes many times the stall
/// timeout (lib38 F11: it was "stalled: no byte moved").
#[test]
fn a_slow_writer_whose_bytes_move_is_not_stalled() {
    /// Takes 10 KiB every 100 ms.
    struct Trickle(Option<Instant>);
    impl tokio::io::AsyncWrite for Trickle {
        fn poll_write(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            let now = Instant::now();
            let next = *self.0.get_or_insert(now + Duration::from_millis(100));
            if now < next {
                let waker = cx.waker().clone();
                std::thread::spawn(move || {
                    std::thread::sleep(next - now);
                    waker.wake();
                });
                return std::task::Poll::Pending;
            }
            self.0 = Some(now + Duration::from_millis(100));
            std::task::Poll::Ready(Ok(buf.len().min(10 * 1024)))
        }
        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
        fn poll_shutdown(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }

    runtime().block_on(async {
        // 300 KiB in one chunk: 30 writes, 100 ms apart, 3 s in all, against a stall timeout of
        // 1 s (slack for a loaded machine's late wake-ups).
        let line = Bytes::from(format!("{}\n", "x".repeat(1023)));
        let lines = std::iter::once(vec![line; 300]);
        let options = Options::default().with_stall_timeout(Duration::from_secs(1));
        let summary = CopyManager::builder(copyman_async::IteratorProducer::new(lines))
            .to(WriterReceiver::new(Trickle(None)))
            .options(options)
            .run()
            .await
            .expect("bytes moved all along");
        assert!(summary.all_completed(), "{summary:?}");
    });
}

/// A writer reconciled after a stall (its reader stopped reading for a while) goes on after the
/// bytes it took: every byte once in its output. The cut cycle was written again from its
/// start, rows twice and one cut short, and the copy said it completed (lib67 F16).
#[test]
fn a_writer_reconciled_after_a_stall_gets_each_byte_once() {
    use std::sync::Mutex;
    /// Takes 10 KiB a write, and nothing for 1.5 s once it has 50 KiB.
    struct Pausing {
        got: Arc<Mutex<Vec<u8>>>,
        until: Option<Instant>,
    }
    impl tokio::io::AsyncWrite for Pausing {
        fn poll_write(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            let now = Instant::now();
            let full = self.got.lock().unwrap().len() >= 50 * 1024;
            let until = match (full, self.until) {
                (true, None) => *self.until.insert(now + Duration::from_millis(1500)),
                (_, until) => until.unwrap_or(now),
            };
            if now < until {
                let waker = cx.waker().clone();
                std::thread::spawn(move || {
                    std::thread::sleep(until - now);
                    waker.wake();
                });
                return std::task::Poll::Pending;
            }
            let n = buf.len().min(10 * 1024);
            self.got.lock().unwrap().extend_from_slice(&buf[..n]);
            std::task::Poll::Ready(Ok(n))
        }
        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
        fn poll_shutdown(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }

    runtime().block_on(async {
        // 3 cycles of 100 lines of 1 KiB; the pause comes in the first, midway.
        let lines: Vec<Vec<Bytes>> = (0..3)
            .map(|c| {
                (0..100)
                    .map(|i| Bytes::from(format!("{c:03}{i:04}{}\n", "x".repeat(1016))))
                    .collect()
            })
            .collect();
        let sent: Vec<u8> = lines.iter().flatten().flatten().copied().collect();
        let got = Arc::new(Mutex::new(Vec::new()));
        let writer = Pausing {
            got: Arc::clone(&got),
            until: None,
        };
        let options = Options::default().with_stall_timeout(Duration::from_millis(500));
        let mut copy = CopyManager::builder(copyman_async::IteratorProducer::new(lines))
            .to(WriterReceiver::new(writer))
            .options(options)
            .start()
            .await
            .expect("started");
        let mut reconciled = 0;
        while let Some(step) = copy.next().await {
            if step.is_err() {
                // Past the pause: it writes again.
                tokio::time::sleep(Duration::from_millis(1500)).await;
                copy.reconcile(ReceiverId(0)).await.expect("reconciled");
                reconciled += 1;
            }
        }
        let summary = copy.finish().await.expect("the copy completes");
        assert!(summary.all_completed(), "{summary:?}");
        assert_eq!(reconciled, 1, "it stalled once");
        let got = got.lock().unwrap().clone();
        assert_eq!(got.len(), sent.len(), "every byte once");
        assert!(got == sent, "the output is the data, in order");
    });
}
