//! TLS against a real server with `ssl = on`, certificates made by the testkit and TCP
//! connections accepted over TLS only (`hostssl`): every `sslmode`, root and client certificates,
//! SCRAM-SHA-256-PLUS, and the clear errors when something does not fit.

use std::sync::OnceLock;

use copyman_sync::{Connection, Error, StatementProducer, StatementReceiver, transfer};
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
    Connection::connect_str(&conninfo(extra))
}

/// `host=localhost` instead of 127.0.0.1: the name the server certificate is issued for.
fn conninfo_localhost(extra: &str) -> String {
    conninfo(extra).replace("host=127.0.0.1", "host=localhost")
}

#[test]
fn require_encrypts_and_binds_scram_to_the_channel() {
    let mut conn = connect("sslmode=require").expect("sslmode=require connects");
    assert!(conn.is_tls());
    assert!(
        conn.session().channel_bound(),
        "SCRAM-SHA-256-PLUS when TLS is on and the server offers it"
    );
    let ssl = conn
        .query("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .unwrap();
    assert_eq!(
        ssl[0][0].as_deref(),
        Some("t"),
        "the server sees TLS: {ssl:?}"
    );
}

#[test]
fn prefer_is_the_default_and_uses_tls_when_offered() {
    let conn = connect("").expect("the default sslmode (prefer) connects");
    assert!(conn.is_tls());
}

#[test]
fn channel_binding_require_is_met_over_tls() {
    let conn = connect("channel_binding=require").expect("bound");
    assert!(conn.session().channel_bound());
    // And disable turns binding off while keeping TLS.
    let conn = connect("channel_binding=disable").expect("unbound");
    assert!(conn.is_tls());
    assert!(!conn.session().channel_bound());
}

#[test]
fn verify_full_accepts_the_host_the_certificate_names() {
    let ca = files().ca_cert.display().to_string();
    let conn = Connection::connect_str(&conninfo_localhost(&format!(
        "sslmode=verify-full sslrootcert={ca}"
    )))
    .expect("verify-full with the right CA and host name");
    assert!(conn.is_tls());
}

#[test]
fn verify_full_rejects_a_wrong_host_name() {
    let ca = files().ca_cert.display().to_string();
    let err = connect(&format!("sslmode=verify-full sslrootcert={ca}"))
        .expect_err("the certificate names localhost, not 127.0.0.1");
    assert!(
        matches!(&err, Error::Tls(TlsError::Handshake { reason, .. }) if reason.contains("not valid for name")),
        "{err}"
    );
    assert!(err.to_string().contains("127.0.0.1"), "{err}");
}

#[test]
fn verify_ca_checks_the_chain_but_not_the_name() {
    let ca = files().ca_cert.display().to_string();
    let conn = connect(&format!("sslmode=verify-ca sslrootcert={ca}")).expect("right CA");
    assert!(conn.is_tls());
    let other = files().other_ca_cert.display().to_string();
    for mode in ["verify-ca", "verify-full", "require"] {
        // Under require, a root certificate at hand means verify-ca (libpq's rule).
        let err = connect(&format!("sslmode={mode} sslrootcert={other}"))
            .expect_err("a certificate from an unrelated CA");
        assert!(
            matches!(&err, Error::Tls(TlsError::Handshake { reason, .. }) if reason.contains("UnknownIssuer")),
            "{mode}: {err}"
        );
    }
}

#[test]
fn missing_root_certificate_file_is_named_before_connecting() {
    let err = connect("sslmode=verify-ca sslrootcert=/nonexistent/root.crt").unwrap_err();
    assert!(
        matches!(&err, Error::Tls(TlsError::NoRootCertificate { .. }))
            && err.to_string().contains("/nonexistent/root.crt"),
        "{err}"
    );
    let err = connect("sslmode=require sslrootcert=system").unwrap_err();
    assert!(err.to_string().contains("verify-full"), "{err}");
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
    let base = format!(
        "host={} port={} user={CERT_USER} dbname={db}",
        cluster.host(),
        cluster.port()
    );
    let f = files();
    let mut conn = Connection::connect_str(&format!(
        "{base} sslmode=require sslcert={} sslkey={}",
        f.client_cert.display(),
        f.client_key.display()
    ))
    .expect("cert authentication with the client certificate");
    assert_eq!(
        conn.query("SELECT current_user").unwrap()[0][0].as_deref(),
        Some(CERT_USER)
    );
    let err = Connection::connect_str(&format!("{base} sslmode=require"))
        .expect_err("no client certificate");
    assert_eq!(err.code(), Some("28000"), "{err}");
    // A certificate without its key is a settings error, before connecting.
    let err = Connection::connect_str(&format!(
        "{base} sslmode=require sslcert={} sslkey=/nonexistent.key",
        f.client_cert.display()
    ))
    .unwrap_err();
    assert!(err.to_string().contains("/nonexistent.key"), "{err}");
}

#[test]
fn require_against_a_server_without_tls_is_refused() {
    let plain = copyman_testkit::shared();
    let conninfo = plain.conninfo(&plain.create_database());
    let err = Connection::connect_str(&format!("{conninfo} sslmode=require")).unwrap_err();
    assert!(
        matches!(&err, Error::Tls(TlsError::NotSupported { .. })),
        "{err}"
    );
    // prefer falls back to plain there; channel_binding=require then cannot be met.
    let conn = Connection::connect_str(&format!("{conninfo} sslmode=prefer")).unwrap();
    assert!(!conn.is_tls());
    let err = Connection::connect_str(&format!("{conninfo} channel_binding=require")).unwrap_err();
    assert!(
        err.to_string()
            .contains("channel binding required, but SSL not in use"),
        "{err}"
    );
}

#[test]
fn connect_tls_takes_settings_apart_from_the_config() {
    let config: postgres::Config = conninfo("").parse().unwrap();
    let mut tls = TlsSettings::new(SslMode::VerifyCa);
    tls.root_cert = Some(files().ca_cert.clone());
    assert!(Connection::connect_tls(&config, &tls).unwrap().is_tls());
    // The config's own ssl_mode is honoured by `connect`.
    let mut config = config;
    config.ssl_mode(postgres::config::SslMode::Disable);
    let err = Connection::connect(&config).unwrap_err();
    assert_eq!(err.code(), Some("28000"), "{err}");
}

#[test]
fn a_fan_out_over_tls_moves_every_row_and_cancels_cleanly() {
    let cluster = tls_cluster();
    let source_db = cluster.create_database();
    let dest_dbs = [cluster.create_database(), cluster.create_database()];
    for db in &dest_dbs {
        cluster
            .connect(db)
            .batch_execute("CREATE TABLE t (i int8, pad text)")
            .unwrap();
    }
    let info = |db: &str| format!("{} sslmode=require", cluster.conninfo(db));
    let rows = 100_000u64;
    let mut source = Connection::connect_str(&info(&source_db)).unwrap();
    let mut dests: Vec<Connection> = dest_dbs
        .iter()
        .map(|db| Connection::connect_str(&info(db)).unwrap())
        .collect();
    let statement = format!(
        "COPY (SELECT i, repeat(md5(i::text), 4) FROM generate_series(1, {rows}) i) TO STDOUT"
    );
    let receivers = dests
        .iter_mut()
        .map(|c| Box::new(StatementReceiver::new(c, "COPY t FROM STDIN")) as Box<_>)
        .collect();
    let (messages, _bytes) = transfer(
        StatementProducer::new(&mut source, statement.as_str()),
        receivers,
    )
    .unwrap();
    assert_eq!(messages, rows);
    for db in &dest_dbs {
        let row = cluster
            .connect(db)
            .query_one("SELECT count(*)::text, sum(i)::text FROM t", &[])
            .unwrap();
        assert_eq!(row.get::<_, String>(0), rows.to_string());
        assert_eq!(row.get::<_, String>(1), (rows * (rows + 1) / 2).to_string());
    }
    // Abort mid-stream: the producer's COPY is cancelled (the cancel request goes in plain, as
    // libpq sends it) and every connection is usable again.
    {
        let receivers = dests
            .iter_mut()
            .map(|c| Box::new(StatementReceiver::new(c, "COPY t FROM STDIN")) as Box<_>)
            .collect();
        let mut copy = copyman_sync::CopyManager::start(
            StatementProducer::new(&mut source, statement.as_str()),
            receivers,
        )
        .unwrap();
        let _ = copy.next();
        let fail = copy.abort("stop");
        assert_eq!(fail.reason, "stop");
    }
    for conn in [&mut source].into_iter().chain(dests.iter_mut()) {
        assert!(conn.is_ready());
        assert_eq!(conn.query("SELECT 1").unwrap()[0][0].as_deref(), Some("1"));
    }
    for db in &dest_dbs {
        let n: i64 = cluster
            .connect(db)
            .query_one("SELECT count(*) FROM t", &[])
            .unwrap()
            .get(0);
        assert_eq!(n, rows as i64, "the aborted copy committed nothing");
    }
}

#[test]
fn a_server_gone_mid_handshake_or_mid_tls_startup_is_a_clear_error() {
    use copyman_testkit::proxy::{Direction, Fault, Proxy};
    use std::time::{Duration, Instant};

    let cluster = tls_cluster();
    let proxy = Proxy::for_cluster(cluster);
    let conninfo = format!(
        "{} sslmode=require connect_timeout=5",
        proxy.conninfo(cluster, "postgres")
    );
    let conn = Connection::connect_str(&conninfo).expect("through the proxy");
    assert!(conn.is_tls());
    let total = proxy.bytes(Direction::ServerToClient);
    drop(conn);
    // Cuts in the SSL answer, the server's handshake messages, and the encrypted startup. Not the
    // very last byte: the server's ECDSA signature varies by a few bytes between handshakes, so a
    // cut there may fall past the end of the next connection; 16 bytes before it lies inside the
    // last TLS record (whose AEAD tag alone is 16 bytes) whatever the signature's length.
    for cut in [0, 1, 2, 40, 200, 700, total / 2, total - 16] {
        assert!(
            proxy.wait_closed(Duration::from_secs(30)),
            "the last connection closes"
        );
        proxy.after_bytes(Direction::ServerToClient, cut, Fault::Drop);
        let started = Instant::now();
        let err = Connection::connect_str(&conninfo).expect_err("the server went away");
        proxy.set(Direction::ServerToClient, Fault::Pass);
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "cut at {cut}: hung"
        );
        let text = err.to_string();
        assert!(
            matches!(err, Error::Tls(_) | Error::Io(_) | Error::Session(_)),
            "cut at {cut}: {text}"
        );
    }
    // Garbage instead of the server's handshake: a TLS error naming the server.
    assert!(
        proxy.wait_closed(Duration::from_secs(30)),
        "the last connection closes"
    );
    proxy.after_bytes(
        Direction::ServerToClient,
        1,
        Fault::Garbage(b"\x16\x03\x03\x00\x05hello, not TLS".to_vec()),
    );
    let err = Connection::connect_str(&conninfo).expect_err("garbage handshake");
    proxy.set(Direction::ServerToClient, Fault::Pass);
    assert!(
        matches!(&err, Error::Tls(TlsError::Handshake { .. })),
        "{err}"
    );
}

/// A server limited to TLS 1.2 (`ssl_max_protocol_version`, or an older OpenSSL): its Finished
/// ends the handshake after the client's, with nothing more to read. Bounded by
/// `connect_timeout`, so a handshake waiting for a server that waits for it fails, not hangs.
#[test]
fn a_server_limited_to_tls_1_2_connects_and_copies() {
    let (_cluster, info) = copyman_testkit::tls_1_2();
    let mut source = Connection::connect_str(&info).expect("connects over TLS 1.2");
    let version = source
        .query("SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .unwrap();
    assert_eq!(version[0][0].as_deref(), Some("TLSv1.2"));
    let mut dest = Connection::connect_str(&info).unwrap();
    dest.execute("CREATE TABLE t (i int)").unwrap();
    let (rows, _) = transfer(
        StatementProducer::new(
            &mut source,
            "COPY (SELECT generate_series(1, 1000)) TO STDOUT",
        ),
        vec![Box::new(StatementReceiver::new(
            &mut dest,
            "COPY t FROM STDIN",
        ))],
    )
    .unwrap();
    assert_eq!(rows, 1000);
}
