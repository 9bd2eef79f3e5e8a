//! A raw connection's socket is non-blocking from its connect on, and every call that must wait
//! waits with `poll(2)`: over TCP, TLS over TCP and a Unix socket alike, blocking calls still
//! move everything (statements larger than the socket buffers, the endpoints' `next_chunk` and
//! `transmit`), `set_timeout` still bounds a wait in which nothing moves (an error core's stall
//! rule names a stall), a destination whose server ended it still faults with the server's
//! SQLSTATE, and a connect still expires as libpq says, in the TLS handshake too.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::OnceLock;
use std::time::Duration;

use copyman_core::stall::{self, EndpointId, Stalled};
use copyman_sync::StatementReceiver;
use copyman_sync::{Connection, Data, Error, Producer, Receiver, StatementProducer};
use copyman_testkit::proxy::{Direction, Fault as Net, Proxy};
use copyman_testkit::{Auth, Cluster, chain, shared};

/// The TLS-only cluster of this binary.
fn tls_cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| Cluster::builder().auth(Auth::ScramSha256).tls().start())
}

/// The three kinds of raw connection, each to a fresh database: its name, the cluster and the
/// conninfo.
fn kinds() -> Vec<(&'static str, &'static Cluster, String)> {
    let plain = shared();
    let tls = tls_cluster();
    let unix = |db: &str| {
        plain.conninfo(db).replace(
            "host=127.0.0.1",
            &format!("host={}", plain.socket_dir().display()),
        )
    };
    vec![
        ("tcp", plain, plain.conninfo(&plain.create_database())),
        ("tls", tls, tls.conninfo(&tls.create_database())),
        ("unix", plain, unix(&plain.create_database())),
    ]
}

fn connect(kind: &str, conninfo: &str) -> Connection {
    let conn = Connection::connect_str(conninfo).unwrap_or_else(|e| panic!("[{kind}] {e}"));
    assert_eq!(conn.is_tls(), kind == "tls", "[{kind}] {conninfo}");
    conn
}

/// The database of a conninfo.
fn dbname(conninfo: &str) -> &str {
    conninfo
        .split_whitespace()
        .find_map(|p| p.strip_prefix("dbname="))
        .expect("a dbname")
}

/// One CopyData message carrying `rows`.
fn frame(rows: &[u8]) -> Vec<u8> {
    let mut m = vec![b'd'];
    m.extend_from_slice(&u32::try_from(rows.len() + 4).unwrap().to_be_bytes());
    m.extend_from_slice(rows);
    m
}

/// Whether `fd` of this process is in non-blocking mode (`O_NONBLOCK` in its flags, which
/// `/proc/self/fdinfo` gives in octal).
fn is_nonblocking(fd: std::os::fd::RawFd) -> bool {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).unwrap();
    let flags = info
        .lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .expect("flags in fdinfo");
    u32::from_str_radix(flags.trim(), 8).unwrap() & 0o4000 != 0
}

#[test]
fn the_socket_is_non_blocking_from_its_connect_on_and_stays_so() {
    for (kind, _, conninfo) in kinds() {
        let mut conn = connect(kind, &conninfo);
        let fd = {
            let producer = StatementProducer::new(&mut conn, "COPY (SELECT 1) TO STDOUT");
            producer
                .poll_socket()
                .expect("a raw connection's socket")
                .fd
        };
        assert!(is_nonblocking(fd), "[{kind}] right after the connect");
        {
            // A copy out read with the blocking calls, its producer then dropped.
            let mut producer =
                StatementProducer::new(&mut conn, "COPY (SELECT generate_series(1, 3)) TO STDOUT");
            producer.start(false).unwrap();
            while producer.next_chunk().unwrap().is_some() {}
        }
        assert_eq!(conn.execute("SELECT 1").unwrap(), 1, "[{kind}]");
        assert!(is_nonblocking(fd), "[{kind}] after a copy and a statement");
    }
}

#[test]
fn statements_larger_than_the_socket_buffers_go_out_whole() {
    for (kind, _, conninfo) in kinds() {
        let mut conn = connect(kind, &conninfo);
        conn.set_timeout(Some(Duration::from_secs(60))).unwrap();
        // 4 MiB of SQL: many waits for the socket to take more, then (under TLS) the records
        // rustls holds, before the answer is waited for.
        let sql = format!("SELECT length('{}')", "x".repeat(4 << 20));
        let rows = conn.query(&sql).unwrap_or_else(|e| panic!("[{kind}] {e}"));
        assert_eq!(rows, [[Some((4 << 20).to_string())]], "[{kind}]");
        assert!(conn.is_ready(), "[{kind}]");
    }
}

#[test]
fn a_wait_in_which_nothing_moves_for_the_timeout_fails_timed_out_and_is_a_stall() {
    for (kind, _, conninfo) in kinds() {
        let mut conn = connect(kind, &conninfo);
        let limit = Duration::from_millis(200);
        conn.set_timeout(Some(limit)).unwrap();
        assert_eq!(conn.execute("SELECT 1").unwrap(), 1, "[{kind}]");
        let error = conn
            .execute("SELECT pg_sleep(5)")
            .expect_err("the server answers nothing for longer than the timeout");
        let Error::Io(io) = &error else {
            panic!("[{kind}] an IO error expected: {error:?}");
        };
        assert_eq!(io.kind(), std::io::ErrorKind::TimedOut, "[{kind}] {io}");
        // Its own words say the cause, as rust-postgres's IO errors do (an application that
        // logs `{error}` learns what happened), and a chain of causes says it once.
        assert_eq!(
            error.to_string(),
            format!("i/o error on the connection: {io}"),
            "[{kind}]"
        );
        assert_eq!(chain(&error), error.to_string(), "[{kind}]");
        assert!(
            stall::is_timeout(io),
            "[{kind}] core takes it for a timeout"
        );
        let named = stall::classify(Box::new(error), EndpointId::Producer, Some(limit));
        let stalled = named
            .downcast_ref::<Stalled>()
            .unwrap_or_else(|| panic!("[{kind}] core's stall rule names it a stall: {named}"));
        assert_eq!(stalled.timeout, limit, "[{kind}]");
    }
}

/// A source whose `set_timeout` runs out before its COPY starts fails the copy with a one-line
/// message that says why: the cause is the listed error's source, which no one printed
/// ("could not start the COPY operation; producer: i/o error on the connection").
#[test]
fn a_copy_failed_by_a_timeout_says_the_timeout_on_its_one_line() {
    let plain = shared();
    let db = plain.create_database();
    let mut source = Connection::connect_str(&plain.conninfo(&db)).unwrap();
    let mut dest = Connection::connect_str(&plain.conninfo(&db)).unwrap();
    dest.execute("CREATE TABLE t (i int)").unwrap();
    source
        .set_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let fail = copyman_sync::CopyManager::builder(StatementProducer::new(
        &mut source,
        "COPY (SELECT 1 FROM pg_sleep(3)) TO STDOUT",
    ))
    .to(StatementReceiver::new(&mut dest, "COPY t FROM STDIN"))
    .run()
    .expect_err("the source says nothing within its timeout");
    let said = fail.to_string();
    assert!(
        said.ends_with("producer: i/o error on the connection: the server sent nothing for 200ms"),
        "{said}"
    );
    assert_eq!(
        dest.query("SELECT count(*) FROM t").unwrap(),
        [[Some("0".to_owned())]]
    );
}

/// A copy arms its stall timeout in place of the caller's, lifts every timeout while a COPY
/// completes (only the server's answer says whether it committed), and gives the caller's back
/// for what follows (a job's ROLLBACK or COMMIT).
#[test]
fn a_copy_completes_untimed_and_gives_the_callers_timeout_back() {
    let plain = shared();
    let db = plain.create_database();
    let mut source = Connection::connect_str(&plain.conninfo(&db)).unwrap();
    let mut dest = Connection::connect_str(&plain.conninfo(&db)).unwrap();
    // The COPY's end keeps the server silent for longer than the caller's timeout.
    dest.execute(
        "CREATE TABLE t (i int); \
         CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN PERFORM pg_sleep(1); RETURN NULL; END $$; \
         CREATE TRIGGER slow AFTER INSERT ON t FOR EACH STATEMENT EXECUTE FUNCTION slow();",
    )
    .unwrap();
    // A zero timeout is refused, as a socket refuses it.
    assert!(dest.set_timeout(Some(Duration::ZERO)).is_err());
    let caller = Duration::from_millis(300);
    dest.set_timeout(Some(caller)).unwrap();
    let options = copyman_sync::Options::default().with_stall_timeout(Duration::from_secs(30));
    let summary = copyman_sync::CopyManager::builder(StatementProducer::new(
        &mut source,
        "COPY (SELECT generate_series(1, 10)) TO STDOUT",
    ))
    .to(StatementReceiver::new(&mut dest, "COPY t FROM STDIN"))
    .options(options)
    .run()
    .expect("the completion waits for the server, whatever the timeouts");
    assert_eq!(summary.producer_count, Some(10));
    let error = dest
        .execute("SELECT pg_sleep(1)")
        .expect_err("the caller's timeout is back after the copy");
    let Error::Io(io) = &error else {
        panic!("an IO error expected: {error:?}");
    };
    assert_eq!(io.kind(), std::io::ErrorKind::TimedOut, "{io}");
}

/// A cancel whose server never takes the request (its connection stalls) fails within
/// `connect_timeout` instead of waiting for ever: a producer dropped mid-COPY cancels this way.
/// (2 s, not 1: the timeout also bounds this connect through the proxy on a busy machine.)
#[test]
fn a_cancel_the_server_never_takes_fails_within_the_connect_timeout() {
    let cluster = shared();
    let proxy = Proxy::for_cluster(cluster);
    let info = format!(
        "{} connect_timeout=2",
        proxy.conninfo(cluster, &cluster.create_database())
    );
    let conn = Connection::connect_str(&info).unwrap();
    proxy.set(Direction::ClientToServer, Net::Stall);
    let error = conn
        .cancel()
        .expect_err("the server never took the request");
    let Error::Io(io) = &error else {
        panic!("an IO error expected: {error:?}");
    };
    assert_eq!(io.kind(), std::io::ErrorKind::TimedOut, "{io}");
}

/// Under a long `connect_timeout`, a cancel the server never takes fails after
/// [`copyman_core::connect::CANCEL_TIMEOUT`]: what waits for the cancel (a job's stop on a
/// signal) is not held for the connect's 300 s.
#[test]
fn a_cancel_is_given_up_within_its_own_bound_under_a_long_connect_timeout() {
    let cluster = shared();
    let proxy = Proxy::for_cluster(cluster);
    let info = format!(
        "{} connect_timeout=300",
        proxy.conninfo(cluster, &cluster.create_database())
    );
    let conn = Connection::connect_str(&info).unwrap();
    proxy.set(Direction::ClientToServer, Net::Stall);
    let started = std::time::Instant::now();
    let error = conn
        .cancel()
        .expect_err("the server never took the request");
    assert!(
        started.elapsed() < copyman_core::connect::CANCEL_TIMEOUT * 3,
        "{:?}: {error}",
        started.elapsed()
    );
}

#[test]
fn blocking_endpoints_copy_every_row() {
    const ROWS: u64 = 50_000;
    for (kind, _, conninfo) in kinds() {
        let mut source = connect(kind, &conninfo);
        let mut destination = connect(kind, &conninfo);
        source
            .execute(&format!(
                "CREATE TABLE src AS SELECT i, repeat('x', 200) AS pad \
                 FROM generate_series(1, {ROWS}) AS g(i);
                 CREATE TABLE dst (i int8, pad text)"
            ))
            .unwrap();
        {
            let mut producer = StatementProducer::new(&mut source, "COPY src TO STDOUT");
            let mut receiver = StatementReceiver::new(&mut destination, "COPY dst FROM STDIN");
            producer.start(false).unwrap();
            receiver.start().unwrap();
            // The waits are bounded, and nothing stalls.
            producer
                .set_stall_timeout(Some(Duration::from_secs(60)))
                .unwrap();
            receiver
                .set_stall_timeout(Some(Duration::from_secs(60)))
                .unwrap();
            while let Some(chunk) = producer
                .next_chunk()
                .unwrap_or_else(|e| panic!("[{kind}] read: {e}"))
            {
                receiver
                    .transmit(&chunk.data)
                    .unwrap_or_else(|e| panic!("[{kind}] transmit: {}", e.error));
            }
            assert_eq!(producer.count(), Some(ROWS), "[{kind}]");
            assert_eq!(receiver.complete().unwrap(), Some(ROWS), "[{kind}]");
        }
        let digest = "SELECT count(*), sum(i), sum(length(pad))";
        assert_eq!(
            destination.query(&format!("{digest} FROM dst")).unwrap(),
            source.query(&format!("{digest} FROM src")).unwrap(),
            "[{kind}]"
        );
    }
}

#[test]
fn a_blocking_transmit_to_a_terminated_server_faults_with_its_sqlstate() {
    let payload = frame(&b"1\n".repeat(32 << 10));
    for (kind, cluster, conninfo) in kinds() {
        let mut destination = connect(kind, &conninfo);
        destination.execute("CREATE TABLE t (i int8)").unwrap();
        let pid = destination
            .session()
            .backend_key()
            .expect("a backend key")
            .0;
        let mut receiver = StatementReceiver::new(&mut destination, "COPY t FROM STDIN");
        receiver.start().unwrap();
        let data = Data::PQv3(payload.clone().into());
        receiver.transmit(&data).unwrap();

        // The server ends the backend: its FATAL error, then the socket closes.
        let mut admin = cluster.connect(dbname(&conninfo));
        admin
            .execute("SELECT pg_terminate_backend($1)", &[&pid])
            .unwrap();
        while admin
            .query("SELECT 1 FROM pg_stat_activity WHERE pid = $1", &[&pid])
            .unwrap()
            .len()
            == 1
        {
            std::thread::sleep(Duration::from_millis(20));
        }

        // Writes are refused sooner or later; the fault is the server's words all the same.
        let error = (0..10_000)
            .find_map(|_| receiver.transmit(&data).err())
            .unwrap_or_else(|| panic!("[{kind}] a terminated server takes data for ever"));
        let code = error
            .error
            .downcast_ref::<Error>()
            .and_then(Error::code)
            .map(str::to_owned);
        assert_eq!(
            code.as_deref(),
            Some("57P01"),
            "[{kind}] {}",
            chain(&*error.error)
        );
    }
}

#[test]
fn a_tls_handshake_the_server_leaves_unanswered_expires_as_libpq_says() {
    // A server that agrees to TLS, then says nothing more.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut socket, _) = listener.accept().unwrap();
        let mut request = [0u8; 8];
        socket.read_exact(&mut request).unwrap();
        socket.write_all(b"S").unwrap();
        // Holds the socket until the client gives up.
        let _ = std::io::copy(&mut socket, &mut std::io::sink());
    });
    let error = Connection::connect_str(&format!(
        "host=127.0.0.1 port={port} user=nobody dbname=nothing sslmode=require connect_timeout=1"
    ))
    .expect_err("a silent handshake cannot succeed");
    let said = chain(&error);
    assert!(matches!(error, Error::Connect { .. }), "{error:?}");
    assert!(
        said.contains("timeout expired") && said.contains(&format!("127.0.0.1:{port}")),
        "{said}"
    );
    server.join().unwrap();
}

/// A receiver fed with the blocking `transmit` (its driver has no socket to poll: here a
/// wrapper that hides it, as an application's own receiver around a `StatementReceiver` does)
/// into a destination whose trigger raises a notice per row: the server, blocked writing its
/// notices, reads nothing more until they are read, so a write that only waited for the socket
/// to take bytes waited for ever, and the server too (a stall here). Every wait to write reads
/// what the server says meanwhile; the copy completes with every row.
#[test]
fn a_blocking_transmit_reads_what_the_server_says_while_it_waits_to_write() {
    struct Blocking<'a>(StatementReceiver<'a>);
    impl Receiver for Blocking<'_> {
        fn protocol(&self) -> copyman_sync::Protocol {
            self.0.protocol()
        }
        fn format(&self) -> Option<copyman_core::start::DataFormat> {
            self.0.format()
        }
        fn start(&mut self) -> Result<(), copyman_core::BoxError> {
            self.0.start()
        }
        fn transmit(&mut self, data: &Data) -> Result<(), copyman_sync::TransmitError> {
            self.0.transmit(data)
        }
        fn set_stall_timeout(&mut self, t: Option<Duration>) -> Result<(), copyman_core::BoxError> {
            self.0.set_stall_timeout(t)
        }
        fn complete(&mut self) -> Result<Option<u64>, copyman_core::BoxError> {
            self.0.complete()
        }
        fn fail(
            &mut self,
            reason: &str,
            completion: &copyman_wire::realign::Completion,
        ) -> Result<(), copyman_core::BoxError> {
            self.0.fail(reason, completion)
        }
    }
    const ROWS: i64 = 200_000;
    for (kind, _, conninfo) in kinds() {
        let mut dst = connect(kind, &conninfo);
        dst.execute(
            "CREATE TABLE t (n int8);
             CREATE FUNCTION said() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
                 RAISE NOTICE 'row % arrived %', NEW.n, repeat('z', 150); RETURN NEW; END $$;
             CREATE TRIGGER said BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION said();",
        )
        .unwrap_or_else(|e| panic!("[{kind}] {e}"));
        let mut src = connect(kind, &conninfo);
        let producer = StatementProducer::new(
            &mut src,
            format!("COPY (SELECT generate_series(1, {ROWS})) TO STDOUT"),
        );
        // A deadlock shows as a stall, not as a test that never ends.
        let options = copyman_sync::Options::default().with_stall_timeout(Duration::from_secs(20));
        let summary = copyman_sync::CopyManager::builder(producer)
            .to(Blocking(StatementReceiver::new(
                &mut dst,
                "COPY t FROM STDIN",
            )))
            .options(options)
            .run()
            .unwrap_or_else(|e| panic!("[{kind}] {e}"));
        assert!(summary.all_completed(), "[{kind}] {summary:?}");
        assert_eq!(summary.producer_count, Some(ROWS as u64), "[{kind}]");
        let notices = dst.take_notices();
        assert!(!notices.is_empty(), "[{kind}]");
        let count = dst.query("SELECT count(*) FROM t").unwrap();
        assert_eq!(count[0][0].as_deref(), Some("200000"), "[{kind}]");
    }
}

/// A receiver failed while its server, blocked on a row lock, reads nothing: the CopyFail waits
/// to be written, and the server's error and ReadyForQuery come while it waits (the lock's holder
/// commits, the row is a duplicate; the server ends the COPY at once and drops what follows). The
/// wait to write reads them, which ends the failure: it must not then wait to read the answer it
/// already has (it waited for the timeout, or for ever without one).
#[test]
fn a_failure_answered_while_its_copyfail_waits_to_be_written_ends_at_once() {
    for (kind, _, conninfo) in kinds() {
        let mut holder = connect(kind, &conninfo);
        for sql in [
            "CREATE TABLE u (n int8 PRIMARY KEY)",
            "BEGIN",
            "INSERT INTO u VALUES (1)",
        ] {
            holder
                .execute(sql)
                .unwrap_or_else(|e| panic!("[{kind}] {e}"));
        }
        let mut dst = connect(kind, &conninfo);
        let pid = dst.query("SELECT pg_backend_pid()").unwrap()[0][0]
            .clone()
            .unwrap();
        // A wait for an answer that never comes shows as this timeout, not as a test that hangs.
        dst.set_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut receiver = StatementReceiver::new(&mut dst, "COPY u FROM STDIN");
        receiver.start().unwrap_or_else(|e| panic!("[{kind}] {e}"));
        // Row 1 waits for the holder's; far more rows than the socket buffers hold follow.
        let mut stream = frame(b"1\n");
        for first in (2..4_000_000).step_by(1000) {
            let rows: String = (first..first + 1000).map(|n| format!("{n}\n")).collect();
            stream.extend(frame(rows.as_bytes()));
        }
        let mut written = 0;
        let mut waiting = false;
        loop {
            match receiver.try_write(&stream[written..]).unwrap() {
                0 if waiting => break,
                0 => {
                    // The server stopped reading: once it waits for the lock, fill what is left.
                    let waits = format!(
                        "SELECT 1 FROM pg_stat_activity WHERE pid = {pid} AND wait_event_type = 'Lock'"
                    );
                    while holder.query(&waits).unwrap().is_empty() {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    waiting = true;
                }
                n => written += n,
            }
            assert!(
                written < stream.len(),
                "[{kind}] the server read everything"
            );
        }
        let mut framer = copyman_wire::Framer::new();
        let _ = framer.advance(&stream[..written]).unwrap();
        let completion = copyman_wire::realign::completion(framer.position());
        let unlock = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(500));
            holder.execute("COMMIT").unwrap();
            holder
        });
        let failed = receiver.fail("the copy failed elsewhere", &completion);
        let mut holder = unlock.join().unwrap();
        if let Err(e) = &failed {
            // The server's own error (the duplicate) may be said; a timeout may not.
            let said = e.downcast_ref::<Error>().and_then(Error::code);
            assert_eq!(said, Some("23505"), "[{kind}] {e}");
        }
        drop(receiver);
        assert_eq!(
            dst.query("SELECT count(*) FROM u").unwrap()[0][0].as_deref(),
            Some("1"),
            "[{kind}]"
        );
        assert!(dst.is_ready(), "[{kind}]");
        holder.execute("DROP TABLE u").unwrap();
    }
}
