//! The library API of issue 13 (typed faults, outcomes, the connect plan, the one-call form)
//! against a real cluster. One cluster for the binary, a fresh database per test.

use crate::common;

use common::runtime;
use copyman_async::{Connection, Error};
use copyman_testkit::shared;

/// A host name that does not resolve is reported as that, not as "no host could be resolved";
/// the plan then goes on to the next host, as libpq does.
#[test]
fn connect_plan_reports_dns_errors_and_moves_on() {
    runtime().block_on(async {
        let err = Connection::connect_str("host=copyman-no-such-host.invalid user=postgres")
            .await
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
        let mut conn = Connection::connect_str(&conninfo)
            .await
            .expect("the second host connects");
        assert_eq!(conn.execute("SELECT 1").await.unwrap(), 1);
        // A refused connection is said with why, not only in its source (lib44 F1).
        let port = copyman_testkit::closed_port();
        let err = Connection::connect_str(&format!("host=127.0.0.1 port={port} user=postgres"))
            .await
            .expect_err("nothing listens there");
        assert!(
            err.to_string()
                .starts_with(&format!("could not connect to 127.0.0.1:{port}: "))
                && err.to_string().contains("refused"),
            "{err}"
        );
    });
}

/// A receiver's SQLSTATE comes straight off the copy's failure, no downcasting.
#[test]
fn typed_faults_give_each_receivers_sqlstate() {
    use copyman_async::{CopyManager, StatementProducer, StatementReceiver};

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
    runtime().block_on(async {
        let mut source = Connection::connect_str(&cluster.conninfo(&db))
            .await
            .unwrap();
        let mut a = Connection::connect_str(&cluster.conninfo(&db))
            .await
            .unwrap();
        let mut b = Connection::connect_str(&cluster.conninfo(&db))
            .await
            .unwrap();
        let fail = CopyManager::builder(StatementProducer::new(&mut source, "COPY src TO STDOUT"))
            .to(StatementReceiver::new(&mut a, "COPY dst FROM STDIN"))
            .to(StatementReceiver::new(&mut b, "COPY dst FROM STDIN"))
            .run()
            .await
            .expect_err("every receiver violates the check constraint");
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
        assert!(a.is_ready() && b.is_ready());
    });
    let rows: i64 = admin
        .query_one("SELECT count(*) FROM dst", &[])
        .unwrap()
        .get(0);
    assert_eq!(rows, 0);
}

/// The one-call form with the same options as copyman-sync, returning the `Summary`.
#[test]
fn builder_runs_a_copy_and_returns_the_summary() {
    use copyman_async::StatementReceiver;
    use copyman_async::{CopyManager, Options, ReceiverOutcome, StatementProducer};
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
    runtime().block_on(async {
        let mut source = Connection::connect_str(&cluster.conninfo(&db))
            .await
            .unwrap();
        let mut dests = Vec::new();
        for _ in 0..2 {
            dests.push(
                Connection::connect_str(&cluster.conninfo(&db))
                    .await
                    .unwrap(),
            );
        }
        let options = Options::default()
            .with_window(2)
            .with_buffer_size(1024)
            .with_stall_timeout(Duration::from_secs(60));
        let summary =
            CopyManager::builder(StatementProducer::new(&mut source, "COPY src TO STDOUT"))
                .to_all(
                    dests.iter_mut().zip(["a", "b"]).map(|(conn, t)| {
                        StatementReceiver::new(conn, format!("COPY {t} FROM STDIN"))
                    }),
                )
                .options(options)
                .run()
                .await
                .expect("the copy");
        assert_eq!(summary.messages, 5000);
        for (_, outcome) in &summary.receivers {
            assert!(
                matches!(outcome, ReceiverOutcome::Completed(Some(5000))),
                "{outcome:?}"
            );
        }
    });
    for t in ["a", "b"] {
        let rows: i64 = admin
            .query_one(&format!("SELECT count(*) FROM {t}"), &[])
            .unwrap()
            .get(0);
        assert_eq!(rows, 5000);
    }
}

/// A `tokio_postgres::Config` setting the raw connection cannot honour is refused, naming it.
#[test]
fn unhonoured_config_fields_are_errors_naming_them() {
    let cluster = shared();
    let db = cluster.create_database();
    runtime().block_on(async {
        for (extra, parameter) in [
            ("load_balance_hosts=random", "load_balance_hosts"),
            ("sslnegotiation=direct", "sslnegotiation"),
        ] {
            let err = Connection::connect_str(&format!("{} {extra}", cluster.conninfo(&db)))
                .await
                .expect_err(extra);
            assert!(
                matches!(err, Error::Unsupported { parameter: p, .. } if p == parameter),
                "{extra}: {err}"
            );
            // The value as written, not the client's name for it.
            assert!(err.to_string().contains(extra), "{err}");
        }
        // target_session_attrs is honoured (conn40 F3), as in copyman-sync.
        let conninfo =
            |attrs: &str| format!("{} target_session_attrs={attrs}", cluster.conninfo(&db));
        Connection::connect_str(&conninfo("read-write"))
            .await
            .expect("a writable server is read-write");
        let err = Connection::connect_str(&conninfo("read-only"))
            .await
            .expect_err("not read-only");
        assert!(matches!(err, Error::WrongSession(_)), "{err:?}");
        assert_eq!(err.to_string(), "session is not read-only");
        // The kinds the crate's parser does not know, as in copyman-sync (lib46 F1).
        for kind in ["primary", "prefer-standby", "''"] {
            Connection::connect_str(&conninfo(kind)).await.expect(kind);
        }
        let err = Connection::connect_str(&conninfo("standby"))
            .await
            .expect_err("no standby");
        assert_eq!(err.to_string(), "server is not in hot standby mode");
        let err = Connection::connect_str(&conninfo("bogus"))
            .await
            .expect_err("no such kind");
        assert_eq!(
            err.to_string(),
            "invalid connection parameters: invalid target_session_attrs value: \"bogus\""
        );
    });
}

/// A backend the server terminated: the connection knows it is closed once a call read it, not
/// only when copyman closed it.
#[test]
fn a_terminated_backend_is_closed() {
    let cluster = shared();
    let db = cluster.create_database();
    runtime().block_on(async {
        let mut conn = Connection::connect_str(&cluster.conninfo(&db))
            .await
            .unwrap();
        let pid = conn.session().backend_key().expect("a backend key").0;
        let mut admin = Connection::connect_str(&cluster.conninfo("postgres"))
            .await
            .unwrap();
        admin
            .execute(&format!("SELECT pg_terminate_backend({pid})"))
            .await
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(!conn.is_closed(), "nothing read it yet");
        assert!(conn.query("SELECT 1").await.is_err());
        assert!(conn.is_closed());
        // Asked again, it says the server's FATAL, as the call that read it did.
        let err = conn.check().await.expect_err("closed");
        assert_eq!(err.code(), Some("57P01"), "{err}");
    });
}

/// A connection string the client crate refuses says which parameter was wrong, as in
/// copyman-sync.
#[test]
fn a_bad_connection_string_names_the_parameter() {
    runtime().block_on(async {
        let err = Connection::connect_str("host=127.0.0.1 port=notaport")
            .await
            .expect_err("a bad port");
        assert!(matches!(err, Error::Config(_)), "{err:?}");
        let said = err.to_string();
        assert!(
            said.starts_with("invalid connection string: ") && said.contains("port"),
            "{said}"
        );
        // One copyman reads itself (a quote left open): an invalid connection string too, not
        // a TLS error (lib40 F5), and without the password.
        let err = Connection::connect_str("host=127.0.0.1 password='S3cretPW dbname=x")
            .await
            .expect_err("a quote left open");
        assert!(matches!(err, Error::Conninfo(_)), "{err:?}");
        assert_eq!(
            err.to_string(),
            "invalid connection string: unterminated quoted value of \"password\""
        );
        assert!(!format!("{err:?}").contains("S3cret"), "{err:?}");
    });
}

/// A byte stream that fails in the middle of a row (an upload reset) cannot be read again: the
/// iteration ends at its fault, so that a caller going on as it may past a resumable producer's
/// fault does not store the row cut where the stream broke (lib38 F5).
#[test]
fn a_failed_byte_stream_is_not_read_again() {
    use bytes::Bytes;
    use copyman_async::{CopyManager, Producer, StatementReceiver, StreamProducer};
    use futures_util::StreamExt;

    let cluster = shared();
    let db = cluster.create_database();
    runtime().block_on(async {
        let mut conn = Connection::connect_str(&cluster.conninfo(&db))
            .await
            .unwrap();
        conn.execute("CREATE TABLE t (id int, v text)")
            .await
            .unwrap();
        let items = vec![
            Ok(Bytes::from_static(b"1\tfirst row\n2\tsecond row, cut")),
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "reset",
            )),
        ];
        let producer = StreamProducer::new(futures_util::stream::iter(items));
        assert!(!producer.resumable());
        let mut copy = CopyManager::builder(producer)
            .to(StatementReceiver::new(&mut conn, "COPY t FROM STDIN"))
            .start()
            .await
            .unwrap();
        let mut faults = 0;
        while let Some(step) = copy.next().await {
            if let Err(fault) = step {
                faults += 1;
                assert!(copy.ends_copy(&fault), "{fault}");
            }
        }
        assert_eq!(faults, 1);
        assert!(
            copy.finish().await.is_err(),
            "a failed stream fails the copy"
        );
        let rows = conn.query("SELECT count(*) FROM t").await.unwrap();
        assert_eq!(rows[0][0].as_deref(), Some("0"), "nothing stored");
    });
}

/// The types the API hands out are named from copyman-async alone (lib40 F4): a connection's
/// `Session` and `TransactionStatus`, a copy's `UnderWay`, a connect's `Attempted`, a
/// client-bound endpoint's `ClientError`; and copyman-core itself.
#[test]
fn the_types_the_api_hands_out_are_named_here() {
    use copyman_async::copyman_core::session::KEPT_MESSAGES;
    use copyman_async::{Attempted, ClientError, Session, TransactionStatus, UnderWay};
    fn status(session: &Session) -> TransactionStatus {
        session.transaction_status()
    }
    fn said(error: &ClientError) -> String {
        error.to_string()
    }
    fn _named(_: Option<(UnderWay, Attempted<Error>)>) {}
    runtime().block_on(async {
        let cluster = shared();
        let db = cluster.create_database();
        let mut conn = Connection::connect_str(&cluster.conninfo(&db))
            .await
            .unwrap();
        assert_eq!(status(conn.session()), TransactionStatus::Idle);
        assert!(conn.session().notices().len() < KEPT_MESSAGES);
        conn.execute("BEGIN").await.unwrap();
        assert_eq!(status(conn.session()), TransactionStatus::InTransaction);
    });
    let _ = said;
}
