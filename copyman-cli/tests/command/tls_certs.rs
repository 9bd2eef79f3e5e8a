//! Server certificates and connection failures as a DBA meets them: PostgreSQL's documented
//! self-signed server certificate under verify-ca / verify-full (libpq takes it), refused
//! certificates said in words, and every host of a multi-host CONN named when none connects.

use crate::common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use common::*;
use copyman_testkit::{Auth, Cluster};

/// A TLS cluster whose server certificate is self-signed as PostgreSQL's docs make it ("Creating
/// Certificates": `openssl req -new -x509 -nodes -subj /CN=localhost -addext
/// subjectAltName=DNS:localhost,IP:127.0.0.1`, so `CA:TRUE`), and the certificate's file: the
/// client's `sslrootcert`.
fn self_signed_cluster() -> &'static (Cluster, PathBuf) {
    static CLUSTER: OnceLock<(Cluster, PathBuf)> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        let cluster = Cluster::builder().auth(Auth::ScramSha256).tls().start();
        let dir = cluster
            .tls_files()
            .expect("a TLS cluster")
            .ca_cert
            .parent()
            .expect("the certificates' directory")
            .to_owned();
        let (cert, key) = (dir.join("self-signed.crt"), dir.join("self-signed.key"));
        let made = Command::new("openssl")
            .args(["req", "-new", "-x509", "-nodes", "-days", "2"])
            .args(["-subj", "/CN=localhost"])
            .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
            .args(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stderr(Stdio::null())
            .status()
            .expect("openssl");
        assert!(made.success(), "openssl req failed");
        let text = fs::read_to_string(&cert).unwrap();
        assert!(!text.is_empty());
        // The server's own files, overwritten in place (their owner and mode stay the server's),
        // read again by a restart.
        cluster.stop_immediate();
        for (from, to) in [(&cert, "server.crt"), (&key, "server.key")] {
            fs::write(cluster.data_dir().join(to), fs::read(from).unwrap()).unwrap();
        }
        cluster.start_again();
        (cluster, cert)
    })
}

/// A conninfo to `db` on `cluster`, with `extra` (host, TLS) after it.
fn conninfo(cluster: &Cluster, db: &str, extra: &str) -> String {
    format!(
        "port={} user=postgres password={} dbname={db} connect_timeout=10 {extra}",
        cluster.port(),
        cluster.password()
    )
}

/// Whether libpq (psql) connects with `conninfo`: the reference copyman follows.
fn libpq_connects(conninfo: &str) -> bool {
    let mut psql = Command::new("psql");
    for (var, _) in std::env::vars_os() {
        if var.to_string_lossy().starts_with("PG") {
            psql.env_remove(var);
        }
    }
    psql.args(["-XAtc", "SELECT 1", conninfo])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("psql")
        .success()
}

fn arg(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

#[test]
fn self_signed_server_certificate_as_sslrootcert_verifies_as_in_libpq() {
    let (cluster, cert) = self_signed_cluster();
    let src = database(
        cluster,
        "CREATE TABLE t (i int8, s text); \
         INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 1000) g",
    );
    let expected = digest(cluster, &src, "t");
    for (mode, host) in [
        ("verify-full", "localhost"),
        ("verify-full", "127.0.0.1"),
        ("verify-ca", "localhost"),
        ("verify-ca", "127.0.0.1"),
    ] {
        let dest = database(cluster, "CREATE TABLE t (i int8, s text)");
        let tls = format!("host={host} sslmode={mode} sslrootcert={}", arg(cert));
        assert!(
            libpq_connects(&conninfo(cluster, &src, &tls)),
            "libpq refuses {tls}"
        );
        let out = run(&[
            "table",
            "t",
            "--from",
            &conninfo(cluster, &src, &tls),
            "--to",
            &conninfo(cluster, &dest, &tls),
        ]);
        assert_exit(&out, 0);
        assert_eq!(digest(cluster, &dest, "t"), expected, "{mode} to {host}");
    }

    // verify-full still checks the name: the certificate names localhost and 127.0.0.1 only.
    let dest = database(cluster, "CREATE TABLE t (i int8, s text)");
    let other = format!(
        "host=db.example.com hostaddr=127.0.0.1 sslmode=verify-full sslrootcert={}",
        arg(cert)
    );
    assert!(!libpq_connects(&conninfo(cluster, &src, &other)));
    let out = run(&[
        "table",
        "t",
        "--from",
        &conninfo(cluster, &src, &other),
        "--to",
        &conninfo(cluster, &dest, "host=127.0.0.1 sslmode=require"),
    ]);
    assert_exit(&out, 3);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "the server's certificate is not valid for host db.example.com (certificate verify \
             failed: "
        ),
        "{stderr}"
    );
    assert_eq!(count(cluster, &dest, "t"), 0);
}

#[test]
fn refused_server_certificates_are_said_in_words() {
    let cluster = tls_cluster();
    let files = cluster.tls_files().expect("a TLS cluster");
    let src = database(cluster, "CREATE TABLE t (i int8); INSERT INTO t VALUES (1)");
    let dest = database(cluster, "CREATE TABLE t (i int8)");
    let to = conninfo(cluster, &dest, "host=localhost sslmode=require");
    let refused = |tls: &str| {
        let out = run(&[
            "table",
            "t",
            "--from",
            &conninfo(cluster, &src, tls),
            "--to",
            &to,
        ]);
        assert_exit(&out, 3);
        assert!(!libpq_connects(&conninfo(cluster, &src, tls)), "{tls}");
        let stderr = text(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(!stderr.contains(cluster.password()), "{stderr}");
        stderr
    };

    // Signed by a root that is not in sslrootcert.
    let other = arg(&files.other_ca_cert);
    let stderr = refused(&format!(
        "host=localhost sslmode=verify-ca sslrootcert={other}"
    ));
    assert!(
        stderr.contains(&format!(
            "the server's certificate is not signed by a root in sslrootcert={other} \
             (certificate verify failed: invalid peer certificate: UnknownIssuer)"
        )),
        "{stderr}"
    );

    // Another host's name: the certificate names localhost only.
    let ca = arg(&files.ca_cert);
    let stderr = refused(&format!(
        "host=127.0.0.1 sslmode=verify-full sslrootcert={ca}"
    ));
    assert!(
        stderr.contains(
            "the server's certificate is not valid for host 127.0.0.1 (certificate verify \
             failed: invalid peer certificate: certificate not valid for name \"127.0.0.1\"; \
             certificate is only valid for"
        ),
        "{stderr}"
    );
    assert_eq!(count(cluster, &dest, "t"), 0);
}

#[test]
fn every_host_of_a_multi_host_conn_that_failed_is_named() {
    let cluster = scram_cluster();
    let dest = database(cluster, "CREATE TABLE t (i int8)");
    let to = cluster.url(&dest);
    let (a, b) = (closed_port(), closed_port());

    // Both hosts down: both attempts, with why.
    let down = format!("host=127.0.0.1,127.0.0.1 port={a},{b} user=postgres dbname=postgres");
    let out = run(&["table", "t", "--from", &down, "--to", &to]);
    assert_exit(&out, 3);
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains(&format!(
            "all 2 connection attempts failed: could not connect to 127.0.0.1:{a}: Connection \
             refused (os error 111); could not connect to 127.0.0.1:{b}: Connection refused (os \
             error 111)"
        )),
        "{stderr}"
    );

    // A host down, then a server that refuses the password: both, and the server's SQLSTATE.
    // The server has no TLS: under sslmode=prefer its `N` led to the plain session it refused,
    // which is not tried a second time (libpq retries without TLS only after TLS was in use).
    let refusing = format!(
        "host=127.0.0.1,127.0.0.1 port={a},{} user=postgres password=wrong-pass-5521 \
         dbname=postgres sslmode=prefer",
        cluster.port()
    );
    let out = run(&["table", "t", "--from", &refusing, "--to", &to, "--json"]);
    assert_exit(&out, 3);
    let all = text(&out.stdout) + &text(&out.stderr);
    assert!(!all.contains("wrong-pass-5521"), "{all}");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "SQLSTATE 28P01: all 2 connection attempts failed: could not connect to \
             127.0.0.1:{a}: Connection refused (os error 111); 127.0.0.1:{}: FATAL:  28P01: \
             password authentication failed for user \"postgres\"",
            cluster.port()
        )),
        "{stderr}"
    );
    assert_eq!(json(&out)["exit_code"], 3);

    // One host: its own error, as before.
    let one = format!("host=127.0.0.1 port={a} user=postgres dbname=postgres");
    let out = run(&["table", "t", "--from", &one, "--to", &to]);
    assert_exit(&out, 3);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "could not connect to 127.0.0.1:{a}: Connection refused"
        )) && !stderr.contains("attempts failed"),
        "{stderr}"
    );
    assert_eq!(count(cluster, &dest, "t"), 0);
}
