//! A producer's read still pending when no receiver is left to take its data is left, as
//! copyman-sync leaves it (core's `Manager::abandons_read`): a copy whose receivers all failed
//! ends at once, even over a stream that never yields again. One cluster for the binary, a fresh
//! database per test.

use crate::common;

use std::time::Duration;

use bytes::Bytes;
use common::runtime;
use copyman_async::{Connection, CopyManager, StatementReceiver, StreamProducer};
use copyman_testkit::shared;
use futures_util::stream::{self, StreamExt};

/// Waits until both destination sessions (application names `left_a`, `left_b`) are idle again:
/// their servers refused the COPY and said so.
async fn until_both_refused(conninfo: &str) {
    let mut watcher = Connection::connect_str(conninfo).await.unwrap();
    loop {
        let rows = watcher
            .query(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE application_name IN ('left_a', 'left_b') AND state = 'idle'",
            )
            .await
            .unwrap();
        if rows[0][0].as_deref() == Some("2") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Both destinations refuse row 2; the stream's next chunk (a large one, so that each
/// receiver's transmit meets its server's error) comes only once both said so, and after it the
/// stream never yields again. The copy fails at once with both faults, nothing is loaded, and
/// every connection is usable. Without leaving the read, the copy would wait for ever; the
/// timeout only turns that hang into a failure.
#[test]
fn a_stream_that_never_yields_again_does_not_hold_a_copy_whose_receivers_all_failed() {
    let cluster = shared();
    let db = cluster.create_database();
    cluster
        .connect(&db)
        .batch_execute("CREATE TABLE t (i int8)")
        .unwrap();
    let conninfo = cluster.conninfo(&db);
    runtime().block_on(async {
        let mut a = Connection::connect_str(&conninfo).await.unwrap();
        let mut b = Connection::connect_str(&conninfo).await.unwrap();
        a.execute("SET application_name = 'left_a'").await.unwrap();
        b.execute("SET application_name = 'left_b'").await.unwrap();
        let watcher = conninfo.clone();
        let bad = stream::iter([Ok(Bytes::from_static(b"1\nnot a number\n"))]);
        let after = stream::once(Box::pin(async move {
            until_both_refused(&watcher).await;
            Ok::<_, std::io::Error>(Bytes::from("3\n".repeat(1 << 20)))
        }));
        let producer = StreamProducer::new(bad.chain(after).chain(stream::pending()));
        let copy = CopyManager::builder(producer)
            .to(StatementReceiver::new(&mut a, "COPY t FROM STDIN"))
            .to(StatementReceiver::new(&mut b, "COPY t FROM STDIN"))
            .run();
        let result = tokio::time::timeout(Duration::from_secs(600), copy)
            .await
            .expect("the copy ended without the stream's next chunk");
        let fail = result.expect_err("both receivers refused row 2");
        assert!(!fail.any_completed(), "{fail}");
        assert_eq!(fail.receivers.len(), 2, "{fail}");
        for (id, outcome) in &fail.receivers {
            let error = outcome
                .error()
                .unwrap_or_else(|| panic!("{id}: {outcome:?}"));
            assert_eq!(error.code(), Some("22P02"), "{id}: {error}");
        }
        assert!(!fail.producer_ended, "the stream's end was never read");
        for conn in [&mut a, &mut b] {
            assert_eq!(
                conn.query("SELECT 1").await.unwrap()[0][0].as_deref(),
                Some("1")
            );
        }
    });
    let rows: i64 = cluster
        .connect(&db)
        .query_one("SELECT count(*) FROM t", &[])
        .unwrap()
        .get(0);
    assert_eq!(rows, 0, "nothing loaded");
}
