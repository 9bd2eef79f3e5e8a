//! Over TLS the blocking adapter multiplexes its destinations with `poll(2)` as it does plain
//! sockets: rustls takes what it can, its records go out as the socket takes them, and a
//! destination whose socket stays full is given up by the stall timeout while the others
//! complete.

use std::time::Duration;

use copyman_sync::{
    Connection, CopyManager, Fault, Options, Receiver, ReceiverId, ReceiverOutcome, Stalled,
    StatementProducer, StatementReceiver,
};
use copyman_testkit::{Auth, Cluster};

use crate::Stopped;

const ROWS: u64 = 200_000;

fn rows(cluster: &Cluster, db: &str) -> i64 {
    cluster
        .connect(db)
        .query_one("SELECT count(*) FROM t", &[])
        .unwrap()
        .get(0)
}

#[test]
fn a_tls_destination_whose_backend_stops_is_given_up_while_the_other_completes() {
    let cluster = Cluster::builder().auth(Auth::ScramSha256).tls().start();
    let source_db = cluster.create_database();
    let dbs = [cluster.create_database(), cluster.create_database()];
    for db in &dbs {
        cluster
            .connect(db)
            .batch_execute("CREATE TABLE t (i int8, pad text)")
            .unwrap();
    }
    let mut source = Connection::connect_str(&cluster.conninfo(&source_db)).unwrap();
    let mut a = Connection::connect_str(&cluster.conninfo(&dbs[0])).unwrap();
    let mut b = Connection::connect_str(&cluster.conninfo(&dbs[1])).unwrap();
    assert!(a.is_tls() && b.is_tls(), "the cluster takes TLS only");
    let a_pid = a.session().backend_key().expect("a backend key").0;
    // About 45 MB: far more than a stopped backend's socket buffers take.
    let sql = format!(
        "COPY (SELECT i, repeat('x', 200) FROM generate_series(1, {ROWS}) AS g(i)) TO STDOUT"
    );
    let receivers = [
        StatementReceiver::new(&mut a, "COPY t FROM STDIN"),
        StatementReceiver::new(&mut b, "COPY t FROM STDIN"),
    ];
    assert!(
        receivers.iter().all(|r| r.poll_socket().is_some()),
        "TLS receivers are multiplexed, not written with blocking calls"
    );
    let mut copy = CopyManager::builder(StatementProducer::new(&mut source, sql))
        .to_all(receivers)
        .options(Options::default().with_stall_timeout(Duration::from_secs(2)))
        .start()
        .expect("the copy starts");
    // Destination 0's backend stops reading: its socket fills and stays full.
    let stopped = Stopped::stop(a_pid);
    let mut faults = Vec::new();
    for progress in &mut copy {
        if let Err(Fault::Receiver(fault)) = progress {
            faults.extend(fault.faults);
        }
    }
    assert_eq!(faults.len(), 1, "{faults:?}");
    let (id, error) = &faults[0];
    assert_eq!(*id, ReceiverId(0));
    assert!(error.is::<Stalled>(), "the stall timeout, named: {error}");
    drop(stopped);
    let summary = copy.finish().expect("destination 1 completes");
    assert!(matches!(
        summary.receivers[1].1,
        ReceiverOutcome::Completed(Some(ROWS))
    ));
    assert!(matches!(
        summary.receivers[0].1,
        ReceiverOutcome::Faulted(_)
    ));
    drop((a, b, source));
    assert_eq!(
        rows(&cluster, &dbs[0]),
        0,
        "the stalled destination kept nothing"
    );
    assert_eq!(rows(&cluster, &dbs[1]), ROWS as i64);
}
