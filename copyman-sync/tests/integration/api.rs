//! The library API of issue 13 (typed faults, outcomes, the connect plan, the one-call form)
//! against a real cluster. One cluster for the binary, a fresh database per test.

use copyman_sync::{Connection, Error};
use copyman_testkit::shared;

/// A host name that does not resolve is reported as that, not as "no host could be resolved";
/// the plan then goes on to the next host, as libpq does.
#[test]
fn connect_plan_reports_dns_errors_and_moves_on() {
    let err = Connection::connect_str("host=copyman-no-such-host.invalid user=postgres")
        .expect_err("the name does not resolve");
    assert!(
        matches!(err, Error::Resolve { ref host, .. } if host == "copyman-no-such-host.invalid")
    );
    assert_eq!(
        err.to_string(),
        "could not translate host name \"copyman-no-such-host.invalid\" to address"
    );
    let cluster = shared();
    let db = cluster.create_database();
    let conninfo = format!(
        "host=copyman-no-such-host.invalid,{} port={} user={} dbname={db}",
        cluster.host(),
        cluster.port(),
        cluster.user()
    );
    let mut conn = Connection::connect_str(&conninfo).expect("the second host connects");
    assert_eq!(conn.execute("SELECT 1").unwrap(), 1);
    // A refused connection is said with why, not only in its source (lib44 F1).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = Connection::connect_str(&format!("host=127.0.0.1 port={port} user=postgres"))
        .expect_err("nothing listens there");
    assert!(
        err.to_string()
            .starts_with(&format!("could not connect to 127.0.0.1:{port}: "))
            && err.to_string().contains("refused"),
        "{err}"
    );
}

/// A receiver's SQLSTATE comes straight off the fault, for a raw-session receiver and a
/// client-bound one alike (one `DbError`, no downcasting), and the fault says the connection is
/// still usable.
#[test]
fn typed_faults_give_each_receivers_sqlstate() {
    use copyman_sync::{ClientReceiver, CopyManager, Receiver, StatementProducer};
    use copyman_sync::{StatementReceiver, Summary};

    let cluster = shared();
    let db = cluster.create_database();
    let mut admin = cluster.connect(&db);
    admin
        .batch_execute(
            "CREATE TABLE src (i int8);
             INSERT INTO src SELECT generate_series(1, 1000);
             CREATE TABLE dst (i int8 CHECK (i < 500));",
        )
        .unwrap();
    let mut source = Connection::connect_str(&cluster.conninfo(&db)).unwrap();
    let mut raw = Connection::connect_str(&cluster.conninfo(&db)).unwrap();
    let mut client = cluster.connect(&db);
    let mut tx = client.transaction().unwrap();
    let result: Result<Summary, _> = {
        let receivers: Vec<Box<dyn Receiver + '_>> = vec![
            Box::new(StatementReceiver::new(&mut raw, "COPY dst FROM STDIN")),
            Box::new(ClientReceiver::new(&mut tx, "COPY dst FROM STDIN").unwrap()),
        ];
        CopyManager::start(
            StatementProducer::new(&mut source, "COPY src TO STDOUT"),
            receivers,
        )
        .unwrap()
        .run()
    };
    let fail = result.expect_err("every receiver violates the check constraint");
    // Every receiver's outcome: the one that hit the bad row first faulted; the other
    // faulted too, or was dropped when the copy failed. An error, wherever it is, has the
    // server's SQLSTATE at hand, from a raw session or a client-bound endpoint alike.
    let errors: Vec<_> = fail
        .receivers
        .iter()
        .filter_map(|(_, o)| o.error())
        .collect();
    assert!(!errors.is_empty(), "{fail:?}");
    for error in errors {
        assert_eq!(error.code(), Some("23514"), "{error}");
        assert_eq!(error.db_error().unwrap().table.as_deref(), Some("dst"));
        assert!(!error.is_closed(), "{error}");
    }
    assert!(raw.is_ready());
    let rows: i64 = admin
        .query_one("SELECT count(*) FROM dst", &[])
        .unwrap()
        .get(0);
    assert_eq!(rows, 0);
}

/// The one-call form: receivers without boxing, options (window, stall timeout, buffer size)
/// as in copyman-async, and the `Summary` back with each receiver's `COPY n`.
#[test]
fn builder_runs_a_copy_and_returns_the_summary() {
    use copyman_sync::{CopyManager, Options, ReceiverOutcome, StatementProducer};
    use copyman_sync::{StatementReceiver, transfer};
    use std::time::Duration;

    let cluster = shared();
    let db = cluster.create_database();
    let mut admin = cluster.connect(&db);
    admin
        .batch_execute(
            "CREATE TABLE src (i int8, s text);
             INSERT INTO src SELECT i, 'row ' || i FROM generate_series(1, 5000) AS g(i);
             CREATE TABLE a (i int8, s text); CREATE TABLE b (i int8, s text);",
        )
        .unwrap();
    let mut source = Connection::connect_str(&cluster.conninfo(&db)).unwrap();
    let mut dests: Vec<Connection> = (0..2)
        .map(|_| Connection::connect_str(&cluster.conninfo(&db)).unwrap())
        .collect();
    let options = Options::default()
        .with_window(2)
        .with_buffer_size(1024)
        .with_stall_timeout(Duration::from_secs(60));
    let summary = CopyManager::builder(StatementProducer::new(&mut source, "COPY src TO STDOUT"))
        .to_all(
            dests
                .iter_mut()
                .zip(["a", "b"])
                .map(|(conn, t)| StatementReceiver::new(conn, format!("COPY {t} FROM STDIN"))),
        )
        .options(options)
        .run()
        .expect("the copy");
    assert_eq!(summary.messages, 5000);
    assert_eq!(summary.producer_count, Some(5000));
    assert_eq!(summary.receivers.len(), 2);
    for (_, outcome) in &summary.receivers {
        assert!(
            matches!(outcome, ReceiverOutcome::Completed(Some(5000))),
            "{outcome:?}"
        );
    }
    for t in ["a", "b"] {
        let rows: i64 = admin
            .query_one(&format!("SELECT count(*) FROM {t}"), &[])
            .unwrap()
            .get(0);
        assert_eq!(rows, 5000);
    }
    // The py-postgresql-shaped shorthand still works.
    let (rows, _) = transfer(
        StatementProducer::new(&mut source, "COPY src TO STDOUT"),
        vec![Box::new(StatementReceiver::new(
            &mut dests[0],
            "COPY a FROM STDIN",
        ))],
    )
    .unwrap();
    assert_eq!(rows, 5000);
}

/// A `postgres::Config` setting the raw connection cannot honour is refused, naming it.
#[test]
fn unhonoured_config_fields_are_errors_naming_them() {
    let cluster = shared();
    let db = cluster.create_database();
    for (extra, parameter) in [
        ("load_balance_hosts=random", "load_balance_hosts"),
        ("sslnegotiation=direct", "sslnegotiation"),
    ] {
        let err = Connection::connect_str(&format!("{} {extra}", cluster.conninfo(&db)))
            .expect_err(extra);
        assert!(
            matches!(err, Error::Unsupported { parameter: p, .. } if p == parameter),
            "{extra}: {err}"
        );
        assert!(err.to_string().contains(parameter), "{err}");
        // The value as written, not the client's name for it.
        assert!(err.to_string().contains(extra), "{err}");
    }
    // target_session_attrs is honoured (conn40 F3): a writable server is read-write, not
    // read-only, as libpq says it.
    let conninfo = |attrs: &str| format!("{} target_session_attrs={attrs}", cluster.conninfo(&db));
    Connection::connect_str(&conninfo("read-write")).expect("a writable server is read-write");
    let err = Connection::connect_str(&conninfo("read-only")).expect_err("not read-only");
    assert!(matches!(err, Error::WrongSession(_)), "{err:?}");
    assert_eq!(err.to_string(), "session is not read-only");
    // The kinds the crate's parser does not know, from the string too (lib46 F1: refused as
    // an invalid value), and a word libpq does not know said in its words.
    Connection::connect_str(&conninfo("primary")).expect("a primary");
    Connection::connect_str(&conninfo("prefer-standby")).expect("no standby: any");
    let err = Connection::connect_str(&conninfo("standby")).expect_err("no standby");
    assert_eq!(err.to_string(), "server is not in hot standby mode");
    // An empty one is none given (the command reads it so).
    Connection::connect_str(&conninfo("''")).expect("an empty target_session_attrs");
    let err = Connection::connect_str(&conninfo("bogus")).expect_err("no such kind");
    assert_eq!(
        err.to_string(),
        "invalid connection parameters: invalid target_session_attrs value: \"bogus\""
    );
}

/// A backend the server terminated: once a call read it, the connection is closed, and asked
/// again it says the server's FATAL, as copyman-async's.
#[test]
fn a_terminated_backend_is_closed() {
    let cluster = shared();
    let db = cluster.create_database();
    let mut conn = Connection::connect_str(&cluster.conninfo(&db)).unwrap();
    let pid = conn.session().backend_key().expect("a backend key").0;
    let mut admin = Connection::connect_str(&cluster.conninfo("postgres")).unwrap();
    admin
        .execute(&format!("SELECT pg_terminate_backend({pid})"))
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(conn.query("SELECT 1").is_err());
    assert!(conn.is_closed());
    // (A second call after the first took its news, as a ROLLBACK after a failed copy.)
    let _ = conn.execute("ROLLBACK");
    let err = conn.check().expect_err("closed");
    assert_eq!(err.code(), Some("57P01"), "{err}");
}

/// A connection string the client crate refuses says which parameter was wrong (it said only
/// "invalid connection string", the parameter three causes down).
#[test]
fn a_bad_connection_string_names_the_parameter() {
    let err = Connection::connect_str("host=127.0.0.1 port=notaport").expect_err("a bad port");
    assert!(matches!(err, Error::Config(_)), "{err:?}");
    let said = err.to_string();
    assert!(
        said.starts_with("invalid connection string: ") && said.contains("port"),
        "{said}"
    );
    // One copyman reads itself (a quote left open): an invalid connection string too, not a
    // TLS error (lib40 F5), and without the password.
    let err = Connection::connect_str("host=127.0.0.1 password='S3cretPW dbname=x")
        .expect_err("a quote left open");
    assert!(matches!(err, Error::Conninfo(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "invalid connection string: unterminated quoted value of \"password\""
    );
    assert!(!format!("{err:?}").contains("S3cret"), "{err:?}");
}

/// A caller's own Producer and Receiver are written with copyman-sync's names (and the `bytes`
/// crate's `Bytes`): the types their methods take and give (`BoxError`, `Chunk`, `Completion`)
/// are re-exported, as copyman-async re-exports them (the caller had to depend on copyman-core
/// and copyman-wire).
#[test]
fn a_callers_own_endpoints_need_no_other_crate() {
    use copyman_sync::{
        BoxError, Chunk, Completion, CopyManager, Data, Producer, Protocol, Receiver, TransmitError,
    };
    struct Lines(Vec<&'static str>);
    impl Producer for Lines {
        fn protocol(&self) -> Protocol {
            Protocol::Chunks
        }
        fn next_chunk(&mut self) -> Result<Option<Chunk>, BoxError> {
            let line = self
                .0
                .pop()
                .map(|l| bytes::Bytes::from_static(l.as_bytes()));
            Ok(line.map(|line| Chunk::lines(vec![line])))
        }
    }
    #[derive(Default)]
    struct Kept(usize, bool);
    impl Receiver for &mut Kept {
        fn protocol(&self) -> Protocol {
            Protocol::Chunks
        }
        fn transmit(&mut self, data: &Data) -> Result<(), TransmitError> {
            if let Data::Lines(lines) = data {
                self.0 += lines.len();
            }
            Ok(())
        }
        fn complete(&mut self) -> Result<Option<u64>, BoxError> {
            Ok(None)
        }
        fn fail(&mut self, _reason: &str, _completion: &Completion) -> Result<(), BoxError> {
            self.1 = true;
            Ok(())
        }
    }
    let mut kept = Kept::default();
    CopyManager::builder(Lines(vec!["1\n", "2\n", "3\n"]))
        .to(&mut kept)
        .run()
        .unwrap();
    assert_eq!((kept.0, kept.1), (3, false));
}

/// A `CancelToken`'s `Debug` names where it goes, never the CancelRequest: that holds the
/// backend's secret key, with which anyone who reads a log may cancel its statements (as
/// copyman-async's already did).
#[test]
fn a_cancel_tokens_debug_keeps_the_secret_key_out() {
    let cluster = shared();
    let conn = Connection::connect_str(&cluster.conninfo("postgres")).unwrap();
    let said = format!("{:?}", conn.cancel_token().unwrap());
    assert!(
        said.starts_with("CancelToken") && !said.contains("request"),
        "{said}"
    );
    let (_, secret) = conn.session().backend_key().unwrap();
    assert!(!said.contains(&secret.to_string()), "{said}");
}

/// The types the API hands out are named from copyman-sync alone (lib40 F4): a connection's
/// `Session` and `TransactionStatus`, a copy's `UnderWay`, a connect's `Attempted`, a
/// client-bound endpoint's `ClientError`, `Config` and `Written`; and copyman-core itself.
#[test]
fn the_types_the_api_hands_out_are_named_here() {
    use copyman_sync::copyman_core::session::KEPT_MESSAGES;
    use copyman_sync::{
        Attempted, ClientError, Config, Session, TransactionStatus, UnderWay, Written,
    };
    fn status(session: &Session) -> TransactionStatus {
        session.transaction_status()
    }
    fn said(error: &ClientError) -> String {
        error.to_string()
    }
    fn _named(_: Option<(UnderWay, Attempted<Error>, Config, Written)>) {}
    let cluster = shared();
    let db = cluster.create_database();
    let mut conn = Connection::connect_str(&cluster.conninfo(&db)).unwrap();
    assert_eq!(status(conn.session()), TransactionStatus::Idle);
    assert!(conn.session().notices().len() < KEPT_MESSAGES);
    conn.execute("BEGIN").unwrap();
    assert_eq!(status(conn.session()), TransactionStatus::InTransaction);
    let _ = said;
}

/// A postmaster that cannot start a backend answers in the old protocol's form (`E`, its text,
/// a NUL), to the SSLRequest and to the startup packet alike: said in its words, as libpq says
/// them — it was "protocol violation by the server: message 'E' announces 1668249964 bytes"
/// (conn40 F5).
#[test]
fn a_server_that_cannot_fork_a_backend_is_said_in_its_words() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        // The TLS attempt, then the plain one (sslmode=prefer).
        for _ in 0..2 {
            let (mut socket, _) = listener.accept().unwrap();
            let mut packet = [0u8; 8];
            let _ = socket.read(&mut packet);
            let said = b"Ecould not fork new process for connection: Resource temporarily \
                         unavailable\n\0";
            let _ = socket.write_all(said);
        }
    });
    let err = Connection::connect_str(&format!("host=127.0.0.1 port={port} user=u dbname=d"))
        .expect_err("no backend");
    server.join().unwrap();
    // (Its old form has no SQLSTATE: none, not an empty one.)
    assert_eq!(err.code(), None, "{err:?}");
    let said = err.to_string();
    assert!(
        said.contains("answered the SSL negotiation with an error")
            && said.contains(
                "FATAL:  could not fork new process for connection: Resource temporarily \
                 unavailable"
            ),
        "{said}"
    );
}
