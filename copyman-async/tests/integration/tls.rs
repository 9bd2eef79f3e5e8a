//! TLS on tokio against a real server with `ssl = on`, certificates made by the testkit and TCP
//! connections accepted over TLS only (`hostssl`): the modes, root and client certificates,
//! SCRAM-SHA-256-PLUS, the clear errors, and a concurrent fan-out through rustls.

use crate::common;

use std::sync::OnceLock;

use common::runtime;
use copyman_async::{Connection, Error, StatementProducer, StatementReceiver, transfer};
use copyman_testkit::{Auth, CERT_USER, Cluster, TlsFiles};
use copyman_tls::{SslMode, TlsError, TlsSettings};

/// The TLS-only cluster of this binary (SCRAM passwords, so TLS connections bind SCRAM).
fn tls_cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| Cluster::builder().auth(Auth::ScramSha256).tls().start())
}

fn files() -> &'static TlsFiles {
    tls_cluster().tls_files().expect("built with TLS")
}

/// The cluster's conninfo for a fresh database, with `extra` parameters appended.
fn conninfo(extra: &str) -> String {
    let cluster = tls_cluster();
    format!("{} {extra}", cluster.conninfo(&cluster.create_database()))
}

fn connect(extra: &str) -> Result<Connection, Error> {
    runtime().block_on(Connection::connect_str(&conninfo(extra)))
}

#[test]
fn require_encrypts_and_binds_scram_to_the_channel() {
    let conninfo = conninfo("sslmode=require");
    runtime().block_on(async {
        let mut conn = Connection::connect_str(&conninfo)
            .await
            .expect("sslmode=require");
        assert!(conn.is_tls());
        assert!(conn.session().channel_bound());
        let ssl = conn
            .query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .await
            .unwrap();
        assert_eq!(ssl[0][0].as_deref(), Some("t"), "the server sees TLS");
    });
    assert!(
        connect("").unwrap().is_tls(),
        "prefer, the default, uses TLS"
    );
}

#[test]
fn verify_full_checks_the_host_name_and_verify_ca_the_chain() {
    let ca = files().ca_cert.display().to_string();
    let right = conninfo(&format!("sslmode=verify-full sslrootcert={ca}"))
        .replace("host=127.0.0.1", "host=localhost");
    let conn = runtime().block_on(Connection::connect_str(&right)).unwrap();
    assert!(conn.is_tls());
    let err = connect(&format!("sslmode=verify-full sslrootcert={ca}"))
        .expect_err("the certificate names localhost, not 127.0.0.1");
    assert!(
        matches!(&err, Error::Tls(TlsError::Handshake { reason, .. }) if reason.contains("not valid for name")),
        "{err}"
    );
    assert!(connect(&format!("sslmode=verify-ca sslrootcert={ca}")).is_ok());
    let other = files().other_ca_cert.display().to_string();
    let err = connect(&format!("sslmode=verify-ca sslrootcert={other}")).unwrap_err();
    assert!(
        matches!(&err, Error::Tls(TlsError::Handshake { reason, .. }) if reason.contains("UnknownIssuer")),
        "{err}"
    );
}

#[test]
fn disable_against_a_hostssl_only_server_fails_with_the_servers_words() {
    let err = connect("sslmode=disable").expect_err("plain TCP is refused by pg_hba.conf");
    assert_eq!(err.code(), Some("28000"), "{err}");
    let message = &err.db_error().expect("the server said why").message;
    assert!(message.contains("no pg_hba.conf entry"), "{message}");
    assert!(message.contains("no encryption"), "{message}");
}

#[test]
fn client_certificate_logs_in_without_password() {
    let cluster = tls_cluster();
    let db = cluster.create_database();
    let f = files();
    let config: tokio_postgres::Config = format!(
        "host={} port={} user={CERT_USER} dbname={db}",
        cluster.host(),
        cluster.port()
    )
    .parse()
    .unwrap();
    let mut tls = TlsSettings::new(SslMode::Require);
    tls.cert = Some(f.client_cert.clone());
    tls.key = Some(f.client_key.clone());
    let rt = runtime();
    let mut conn = rt.block_on(Connection::connect_tls(&config, &tls)).unwrap();
    assert_eq!(
        rt.block_on(conn.query("SELECT current_user")).unwrap()[0][0].as_deref(),
        Some(CERT_USER)
    );
    let err = rt
        .block_on(Connection::connect_tls(
            &config,
            &TlsSettings::new(SslMode::Require),
        ))
        .expect_err("no client certificate");
    assert_eq!(err.code(), Some("28000"), "{err}");
}

#[test]
fn require_against_a_server_without_tls_is_refused() {
    let plain = copyman_testkit::shared();
    let conninfo = plain.conninfo(&plain.create_database());
    let rt = runtime();
    let err = rt
        .block_on(Connection::connect_str(&format!(
            "{conninfo} sslmode=require"
        )))
        .unwrap_err();
    assert!(
        matches!(&err, Error::Tls(TlsError::NotSupported { .. })),
        "{err}"
    );
    let conn = rt.block_on(Connection::connect_str(&conninfo)).unwrap();
    assert!(!conn.is_tls(), "prefer falls back to plain");
}

#[test]
fn a_concurrent_fan_out_over_tls_moves_every_row() {
    let cluster = tls_cluster();
    let source_db = cluster.create_database();
    let dest_dbs = [
        cluster.create_database(),
        cluster.create_database(),
        cluster.create_database(),
    ];
    for db in &dest_dbs {
        cluster
            .connect(db)
            .batch_execute("CREATE TABLE t (i int8, pad text)")
            .unwrap();
    }
    let info = |db: &str| format!("{} sslmode=require", cluster.conninfo(db));
    let rows = 100_000u64;
    let statement = format!(
        "COPY (SELECT i, repeat(md5(i::text), 4) FROM generate_series(1, {rows}) i) TO STDOUT"
    );
    let rt = runtime();
    rt.block_on(async {
        let mut source = Connection::connect_str(&info(&source_db)).await.unwrap();
        let mut dests = Vec::new();
        for db in &dest_dbs {
            dests.push(Connection::connect_str(&info(db)).await.unwrap());
        }
        let receivers = dests
            .iter_mut()
            .map(|c| Box::new(StatementReceiver::new(c, "COPY t FROM STDIN")) as Box<_>)
            .collect();
        let (messages, _) = transfer(
            StatementProducer::new(&mut source, statement.as_str()),
            receivers,
        )
        .await
        .unwrap();
        assert_eq!(messages, rows);
        for conn in [&mut source].into_iter().chain(dests.iter_mut()) {
            assert!(conn.is_ready());
            assert!(conn.is_tls());
        }
    });
    for db in &dest_dbs {
        let row = cluster
            .connect(db)
            .query_one("SELECT count(*)::text, sum(i)::text FROM t", &[])
            .unwrap();
        assert_eq!(row.get::<_, String>(0), rows.to_string());
        assert_eq!(row.get::<_, String>(1), (rows * (rows + 1) / 2).to_string());
    }
}

/// A server limited to TLS 1.2 (`ssl_max_protocol_version`, or an older OpenSSL): its Finished
/// ends the handshake after the client's, with nothing more to read. Bounded by
/// `connect_timeout`, so a handshake waiting for a server that waits for it fails, not hangs.
#[test]
fn a_server_limited_to_tls_1_2_connects_and_copies() {
    let (_cluster, info) = copyman_testkit::tls_1_2();
    runtime().block_on(async {
        let mut source = Connection::connect_str(&info)
            .await
            .expect("connects over TLS 1.2");
        let version = source
            .query("SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .await
            .unwrap();
        assert_eq!(version[0][0].as_deref(), Some("TLSv1.2"));
        let mut dest = Connection::connect_str(&info).await.unwrap();
        dest.execute("CREATE TABLE t (i int)").await.unwrap();
        let producer = StatementProducer::new(
            &mut source,
            "COPY (SELECT generate_series(1, 1000)) TO STDOUT",
        );
        let receiver = StatementReceiver::new(&mut dest, "COPY t FROM STDIN");
        let (rows, _) = transfer(producer, vec![Box::new(receiver)]).await.unwrap();
        assert_eq!(rows, 1000);
    });
}
