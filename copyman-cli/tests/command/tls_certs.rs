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
    CLUSTER.get_or_init(|| self_signed("prime256v1", ""))
}

/// A TLS cluster whose server certificate is self-signed, of an EC key on `curve`, `hba` after
/// its `pg_hba.conf`'s lines, and the certificate's file.
fn self_signed(curve: &str, hba: &str) -> (Cluster, PathBuf) {
    {
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
            .args(["-newkey", "ec", "-pkeyopt"])
            .arg(format!("ec_paramgen_curve:{curve}"))
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
        let conf = cluster.data_dir().join("pg_hba.conf");
        let lines = fs::read_to_string(&conf).unwrap();
        fs::write(&conf, format!("{lines}{hba}")).unwrap();
        cluster.start_again();
        (cluster, cert)
    }
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

/// A server whose TLS copyman's cannot agree with (a P-521 certificate, which psql's OpenSSL
/// takes): under `sslmode=prefer` copyman goes on without TLS as libpq does when TLS fails —
/// and says that its sessions are not encrypted (conn50 F1: not a word); under `require` the
/// failure says what copyman's TLS speaks (it said "received fatal alert: HandshakeFailure").
#[test]
fn tls_given_up_under_prefer_is_said_and_a_handshake_with_nothing_in_common_explained() {
    // Connections without TLS taken too, as a server with `ssl = on` takes them by default.
    let plain = "host all all 127.0.0.1/32 scram-sha-256\n";
    let (cluster, _) = &self_signed("secp521r1", plain);
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE t (i int8); INSERT INTO t VALUES (1), (2)",
    );
    let dest = database(cluster, "CREATE TABLE t (i int8)");
    let copy = |tls: &str| {
        run(&[
            "table",
            "t",
            "--from",
            &c.source.conninfo(&src),
            "--to",
            &conninfo(cluster, &dest, tls),
        ])
    };
    let out = copy("host=localhost sslmode=require");
    assert_exit(&out, 3);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("failed: the server and copyman share no key exchange group or signature")
            && stderr.contains("not a P-521"),
        "{stderr}"
    );
    assert!(!stderr.contains(cluster.password()), "{stderr}");
    let out = copy("host=localhost sslmode=prefer");
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    let said = "its sessions are not encrypted: the attempt with TLS failed (TLS handshake with";
    assert_eq!(stderr.matches(said).count(), 1, "said once: {stderr}");
    assert!(
        stderr.contains("sslmode=prefer went on without it (sslmode=require refuses to)"),
        "{stderr}"
    );
    assert_eq!(count(cluster, &dest, "t"), 2);
    // A server that takes copyman's TLS: nothing said.
    let out = copy("host=127.0.0.1 sslmode=disable");
    assert_exit(&out, 0);
    assert!(!text(&out.stderr).contains("not encrypted"));
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
    // In libpq's words the names compared (its subjectAltName's, then its common name, which
    // libpq compares with an address where no iPAddress entry is there).
    assert!(
        stderr.contains(
            "the server's certificate is not valid for host 127.0.0.1 (certificate verify \
             failed: certificate not valid for name \"127.0.0.1\"; server certificate for \
             \"localhost\""
        ) && stderr.contains("does not match host name \"127.0.0.1\")"),
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
             refused; could not connect to 127.0.0.1:{b}: Connection refused"
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
             127.0.0.1:{a}: Connection refused; 127.0.0.1:{}: FATAL:  28P01: \
             password authentication failed for user \"postgres\"",
            cluster.port()
        )),
        "{stderr}"
    );
    assert_eq!(json(&out)["exit_code"], 3);

    // The first host refuses the login: libpq tries no other, and its error is said with the
    // host that said it (recheck64 F2: "SQLSTATE 28P01: password authentication failed" named
    // no host of the list), the server's SQLSTATE kept.
    let first = format!(
        "host=127.0.0.1,127.0.0.1 port={},{a} user=postgres password=wrong-pass-5521 \
         dbname=postgres",
        cluster.port()
    );
    let out = run(&["table", "t", "--from", &first, "--to", &to, "--json"]);
    assert_exit(&out, 3);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "SQLSTATE 28P01: password authentication failed for user \"postgres\" (said by \
             127.0.0.1:{}, the first of the CONN's hosts: as libpq, no other is tried",
            cluster.port()
        )) && !stderr.contains("attempts failed")
            && !stderr.contains("wrong-pass-5521"),
        "{stderr}"
    );
    assert_eq!(json(&out)["sqlstate"], "28P01");

    // One host: its own error, as before.
    let one = format!("host=127.0.0.1 port={a} user=postgres dbname=postgres");
    let out = run(&["table", "t", "--from", &one, "--to", &to]);
    assert_exit(&out, 3);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "could not connect to 127.0.0.1:{a}: Connection refused (is the server running on \
             that host and accepting TCP/IP connections?)"
        )) && !stderr.contains("attempts failed"),
        "{stderr}"
    );
    // A host name is said as given, beside the address it reached, without Rust's
    // "(os error 111)" (conn64 F1: the refused `localhost` said as 127.0.0.1 alone).
    let named = format!("host=localhost hostaddr=127.0.0.1 port={a} user=postgres dbname=postgres");
    let out = run(&["table", "t", "--from", &named, "--to", &to]);
    assert_exit(&out, 3);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "could not connect to localhost (127.0.0.1:{a}): Connection refused"
        )) && !stderr.contains("os error"),
        "{stderr}"
    );
    assert_eq!(count(cluster, &dest, "t"), 0);
}

/// A directory of the test's own, removed when dropped.
struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn openssl(args: &[&str], dir: &Path) {
    let made = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl");
    assert!(made.success(), "openssl {args:?} failed");
}

/// A client certificate for the cluster's certificate user, made as PostgreSQL's docs make
/// one ("Creating Certificates": `openssl req -new -nodes -text -out client.csr -keyout
/// client.key -subj /CN=…`, then `openssl x509 -req -in client.csr -text -CA root.crt -CAkey
/// root.key -CAcreateserial -out client.crt`): an RSA key, and with OpenSSL 3.0, an X.509
/// version 1 certificate. Signed by the cluster's CA (copied first: `-CAcreateserial` writes
/// beside it). The directory, the certificate and its key (mode 0600, as openssl writes it).
fn documented_client_certificate(cluster: &Cluster) -> (Dir, PathBuf, PathBuf) {
    let files = cluster.tls_files().expect("a TLS cluster");
    let dir = Dir(std::env::temp_dir().join(format!(
        "copyman-cli-v1-client-{}-{}",
        std::process::id(),
        cluster.port()
    )));
    fs::create_dir_all(&dir.0).unwrap();
    fs::copy(&files.ca_cert, dir.0.join("root.crt")).unwrap();
    fs::copy(
        files.ca_cert.with_file_name("ca.key"),
        dir.0.join("root.key"),
    )
    .unwrap();
    let subject = format!("/CN={}", copyman_testkit::CERT_USER);
    openssl(
        &[
            "req",
            "-new",
            "-nodes",
            "-text",
            "-out",
            "client.csr",
            "-keyout",
            "client.key",
            "-subj",
            &subject,
        ],
        &dir.0,
    );
    openssl(
        &[
            "x509",
            "-req",
            "-in",
            "client.csr",
            "-text",
            "-days",
            "2",
            "-CA",
            "root.crt",
            "-CAkey",
            "root.key",
            "-CAcreateserial",
            "-out",
            "client.crt",
        ],
        &dir.0,
    );
    let (cert, key) = (dir.0.join("client.crt"), dir.0.join("client.key"));
    let shown = Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(
        text(&shown.stdout).contains("Version: 1 (0x0)"),
        "the documented recipe no longer makes a version 1 certificate"
    );
    (dir, cert, key)
}

/// `copyman copy` of the session's user name from `conn` to stdout.
fn current_user(conn: &str) -> std::process::Output {
    run(&[
        "copy",
        "--from",
        conn,
        "--send",
        "COPY (SELECT current_user) TO STDOUT",
        "--to",
        "-",
    ])
}

#[test]
fn a_documented_version_1_client_certificate_logs_in_and_its_key_is_checked_as_in_libpq() {
    use std::os::unix::fs::PermissionsExt;

    let cluster = tls_cluster();
    let (_dir, cert, key) = documented_client_certificate(cluster);
    let conn = |cert: &Path, key: &Path| {
        format!(
            "host=127.0.0.1 port={} user={} dbname=postgres connect_timeout=10 sslcert={} \
             sslkey={}",
            cluster.port(),
            copyman_testkit::CERT_USER,
            arg(cert),
            arg(key)
        )
    };

    // Logs in by `cert` authentication, as with libpq: the server verifies the certificate.
    assert!(libpq_connects(&conn(&cert, &key)), "libpq refuses it");
    for tls in ["", " sslmode=require", " sslmode=verify-ca sslrootcert="] {
        let mut c = conn(&cert, &key) + tls;
        if tls.ends_with('=') {
            c.push_str(arg(&cluster.tls_files().unwrap().ca_cert));
        }
        let out = current_user(&c);
        assert_exit(&out, 0);
        assert_eq!(
            text(&out.stdout),
            format!("{}\n", copyman_testkit::CERT_USER),
            "{tls}"
        );
    }

    // Another key than the certificate's (the cluster's own client key, EC): refused, naming
    // both files, before the server is asked.
    let other = &cluster.tls_files().unwrap().client_key;
    assert!(!libpq_connects(&conn(&cert, other)));
    // Under the default prefer, the TLS attempt's error (the plain one refused by this
    // TLS-only server): exit 3; where TLS is certain (require), a local file to mend, found
    // before connecting: exit 2, as a key others may read (it was 3: conn40 F4).
    for (tls, exit) in [("", 3), (" sslmode=require", 2)] {
        let out = current_user(&(conn(&cert, other) + tls));
        assert_exit(&out, exit);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(&format!(
                "client certificate \"{}\" does not match private key file \"{}\"",
                arg(&cert),
                arg(other)
            )),
            "{tls}: {stderr}"
        );
    }

    // A key group or world may read: refused as libpq refuses it, in its words — where TLS is
    // certain (sslmode=require) before connecting, a setting refused: exit 2; under the default
    // prefer as the TLS attempt's error, the plain attempt after it refused by this TLS-only
    // server, as libpq's: exit 3.
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
    let readable = format!(
        "private key file \"{}\" has group or world access; file must have permissions u=rw \
         (0600) or less if owned by the current user, or permissions u=rw,g=r (0640) or less if \
         owned by root",
        arg(&key)
    );
    for (tls, code) in [(" sslmode=require", 2), ("", 3)] {
        let c = conn(&cert, &key) + tls;
        assert!(!libpq_connects(&c));
        let out = current_user(&c);
        assert_exit(&out, code);
        let stderr = text(&out.stderr);
        assert!(stderr.contains(&readable), "{tls}: {stderr}");
        // (Refused before the run or failed in it: the mark of no data, recheck68 F2.)
        assert_eq!(out.stdout, unsent(), "{tls}");
    }
}

/// A client certificate the server does not trust (self-signed, not by its `ssl_ca_file`) is
/// said for what it is: it was "i/o error on the connection: received fatal alert: UnknownCA",
/// read as a network fault (conn42 F5).
#[test]
fn a_client_certificate_the_server_does_not_trust_is_said_so() {
    let cluster = tls_cluster();
    let dir = Dir(std::env::temp_dir().join(format!(
        "copyman-cli-self-signed-client-{}",
        std::process::id()
    )));
    fs::create_dir_all(&dir.0).unwrap();
    let subject = format!("/CN={}", copyman_testkit::CERT_USER);
    openssl(
        &[
            "req", "-x509", "-new", "-nodes", "-days", "2", "-subj", &subject, "-keyout",
            "self.key", "-out", "self.crt",
        ],
        &dir.0,
    );
    let conn = format!(
        "host=127.0.0.1 port={} user={} dbname=postgres connect_timeout=10 sslmode=require \
         sslcert={} sslkey={}",
        cluster.port(),
        copyman_testkit::CERT_USER,
        arg(&dir.0.join("self.crt")),
        arg(&dir.0.join("self.key"))
    );
    assert!(!libpq_connects(&conn), "libpq logs in with it");
    let out = current_user(&conn);
    assert_exit(&out, 3);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "the server refused the client certificate (sslcert): it is not signed by a CA the \
             server trusts"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("i/o error"), "{stderr}");
}

#[test]
fn client_certificate_files_matter_only_once_tls_is_set_up_as_in_libpq() {
    use std::os::unix::fs::PermissionsExt;

    // The tester's F2: a client certificate file that does not exist failed every TCP
    // connection, a key others may read (or a certificate without its key) every one under
    // prefer — to a server without TLS too. libpq goes on without a certificate that is not
    // there, and looks at the files only once the server agreed to TLS.
    let dir =
        Dir(std::env::temp_dir().join(format!("copyman-cli-client-files-{}", std::process::id())));
    fs::create_dir_all(&dir.0).unwrap();
    let tls = tls_cluster();
    let files = tls.tls_files().expect("a TLS cluster");
    let (cert, key) = (dir.0.join("client.crt"), dir.0.join("client.key"));
    fs::copy(&files.client_cert, &cert).unwrap();
    fs::copy(&files.client_key, &key).unwrap();
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
    let (missing_cert, missing_key) = (dir.0.join("no-such.crt"), dir.0.join("no-such.key"));
    let connects = |conn: &str, env: &[(&str, &str)]| {
        let out = copyman()
            .envs(env.iter().copied())
            .args(["copy", "--from", conn])
            .args(["--send", "COPY (SELECT 'connected') TO STDOUT", "--to", "-"])
            .output()
            .unwrap();
        assert_exit(&out, 0);
        assert_eq!(text(&out.stdout), "connected\n", "{conn} {env:?}");
    };
    let on = |cluster: &Cluster, extra: &str| {
        format!(
            "host=127.0.0.1 port={} user=postgres password={} dbname=postgres \
             connect_timeout=10 {extra}",
            cluster.port(),
            cluster.password()
        )
    };

    // A TLS server (a password over TLS): a certificate named in the CONN or by PGSSLCERT that
    // is not there is not used, in every mode.
    for mode in ["prefer", "require"] {
        let named = on(
            tls,
            &format!("sslmode={mode} sslcert={}", arg(&missing_cert)),
        );
        assert!(libpq_connects(&named), "libpq refuses {named}");
        connects(&named, &[]);
        let mode = format!("sslmode={mode}");
        connects(&on(tls, &mode), &[("PGSSLCERT", arg(&missing_cert))]);
    }

    // A server without TLS, sslmode prefer (the default) or allow: nothing of the client's
    // certificate files is looked at.
    let plain = scram_cluster();
    for files in [
        format!("sslcert={}", arg(&missing_cert)),
        format!("sslcert={} sslkey={}", arg(&cert), arg(&key)),
        format!("sslcert={} sslkey={}", arg(&cert), arg(&missing_key)),
    ] {
        for mode in ["", " sslmode=allow"] {
            let conn = on(plain, &(files.clone() + mode));
            assert!(libpq_connects(&conn), "libpq refuses {conn}");
            connects(&conn, &[]);
        }
    }

    // Where TLS is certain, a certificate without its key is refused before connecting, as
    // libpq refuses it (exit 2, a setting).
    let out = run(&[
        "copy",
        "--from",
        &on(
            plain,
            &format!(
                "sslmode=require sslcert={} sslkey={}",
                arg(&cert),
                arg(&missing_key)
            ),
        ),
        "--send",
        "COPY (SELECT 1) TO STDOUT",
        "--to",
        "-",
    ]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "certificate present, but not private key file \"{}\"",
            arg(&missing_key)
        )),
        "{stderr}"
    );
}

#[test]
fn sslrootcert_system_defaults_to_verify_full_and_a_weaker_sslmode_given_is_a_usage_error() {
    // No server: port 1 refuses, after the settings were taken.
    let url = "postgresql://u@127.0.0.1:1/db?connect_timeout=5&sslrootcert=system";
    let send = ["--send", "COPY (SELECT 1) TO STDOUT", "--to", "-"];
    let out = run(&[&["copy", "--from", url][..], &send].concat());
    assert_exit(&out, 3);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("could not connect to 127.0.0.1:1") && !stderr.contains("weak sslmode"),
        "{stderr}"
    );
    let out = copyman()
        .env("PGSSLROOTCERT", "system")
        .args(["copy", "--from", "postgresql://u@127.0.0.1:1/db"])
        .args(send)
        .output()
        .unwrap();
    assert_exit(&out, 3);
    assert!(
        !text(&out.stderr).contains("weak sslmode"),
        "{}",
        text(&out.stderr)
    );

    // A weaker sslmode given, in the CONN or by PGSSLMODE: refused before connecting, exit 2.
    let weak = format!("{url}&sslmode=require");
    let out = run(&[&["copy", "--from", weak.as_str()][..], &send].concat());
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "weak sslmode \"require\" may not be used with sslrootcert=system (use \
             \"verify-full\")"
        ),
        "{stderr}"
    );
    let out = copyman()
        .env("PGSSLMODE", "prefer")
        .args(["copy", "--from", url])
        .args(send)
        .output()
        .unwrap();
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "weak sslmode \"prefer\" may not be used with sslrootcert=system (use \
             \"verify-full\") (sslmode from PGSSLMODE)"
        ),
        "{stderr}"
    );
}

/// A server that asks for a password none was given for: said with the ways to give one (psql
/// prompts; the error alone named none), exit 3, nothing copied.
#[test]
fn a_password_none_was_given_for_is_said_with_the_ways_to_give_one() {
    let (cluster, _) = self_signed_cluster();
    let c = clusters();
    let src = database(&c.source, "CREATE TABLE t (id int);");
    let without = format!(
        "host=127.0.0.1 port={} user=postgres dbname=postgres sslmode=require",
        cluster.port()
    );
    let out = run(&[
        "table",
        "t",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &without,
    ]);
    assert_exit(&out, 3);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("but none given")
            && stderr
                .contains("the server asks for a password: give it in PGPASSWORD, a password file")
            && stderr.contains("or give -W to be asked for it"),
        "{stderr}"
    );
}

/// A server that accepts the login over TLS and then refuses the session (no such database,
/// too many connections): under `sslmode=prefer` that is its answer, as in libpq — copyman
/// logged in again without TLS (a `password` method's password sent in clear) and reported
/// the second attempt's SQLSTATE. One attempt, its own error (3D000), and one login in the
/// server's log.
#[test]
fn a_refusal_after_the_login_over_tls_is_not_retried_without_it() {
    let cluster = tls_cluster();
    let dest = database(cluster, "CREATE TABLE t (i int8)");
    let missing = format!("{dest}_missing");
    let from = conninfo(cluster, &missing, "host=127.0.0.1 sslmode=prefer");
    let logged_in = || {
        fs::read_to_string(cluster.log_file())
            .unwrap_or_default()
            .matches(&format!("database \"{missing}\" does not exist"))
            .count()
    };
    let before = logged_in();
    let out = run(&[
        "table",
        "t",
        "--from",
        &from,
        "--to",
        &cluster.url(&dest),
        "--json",
    ]);
    assert_exit(&out, 3);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("SQLSTATE 3D000") && !stderr.contains("attempts failed"),
        "{stderr}"
    );
    assert_eq!(json(&out)["sqlstate"], "3D000");
    assert!(!stderr.contains(cluster.password()), "{stderr}");
    // The server refused one session, not two.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while logged_in() == before && std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(logged_in() - before, 1, "one attempt");
}

/// libpq's default certificate revocation list, `~/.postgresql/root.crl`, is checked wherever
/// root certificates are (here `~/.postgresql/root.crt`): a server certificate it revokes is
/// refused under verify-full (it was trusted, exit 0, where psql refuses it), and one a list
/// does not revoke is taken.
#[test]
fn the_default_revocation_list_is_checked_as_libpq_checks_it() {
    let cluster = tls_cluster();
    let files = cluster.tls_files().expect("a TLS cluster");
    let home = Dir(std::env::temp_dir().join(format!("copyman-cli-crl-{}", std::process::id())));
    let ca = home.0.join("ca");
    let pg = home.0.join(".postgresql");
    fs::create_dir_all(&ca).unwrap();
    fs::create_dir_all(&pg).unwrap();
    fs::copy(&files.ca_cert, ca.join("ca.crt")).unwrap();
    fs::copy(files.ca_cert.with_file_name("ca.key"), ca.join("ca.key")).unwrap();
    fs::copy(&files.server_cert, ca.join("server.crt")).unwrap();
    fs::copy(&files.ca_cert, pg.join("root.crt")).unwrap();
    fs::write(
        ca.join("ca.cnf"),
        format!(
            "[ ca ]\ndefault_ca = theca\n[ theca ]\ndatabase = {0}/index.txt\ncrlnumber = \
             {0}/crlnumber\ndefault_md = sha256\ndefault_crl_days = 30\n",
            ca.display()
        ),
    )
    .unwrap();
    fs::write(ca.join("index.txt"), "").unwrap();
    fs::write(ca.join("crlnumber"), "01\n").unwrap();
    let crl = |name: &str| {
        let args = [
            "ca", "-config", "ca.cnf", "-keyfile", "ca.key", "-cert", "ca.crt", "-gencrl", "-out",
            name,
        ];
        openssl(&args, &ca);
    };
    crl("clean.crl");
    // A list of another authority only: the server's certificate's revocation cannot be told.
    fs::copy(&files.other_ca_cert, ca.join("other.crt")).unwrap();
    fs::copy(
        files.other_ca_cert.with_file_name("other-ca.key"),
        ca.join("other.key"),
    )
    .unwrap();
    let other = [
        "ca",
        "-config",
        "ca.cnf",
        "-keyfile",
        "other.key",
        "-cert",
        "other.crt",
        "-gencrl",
        "-out",
        "other.crl",
    ];
    openssl(&other, &ca);
    let revoke = [
        "ca",
        "-config",
        "ca.cnf",
        "-keyfile",
        "ca.key",
        "-cert",
        "ca.crt",
        "-revoke",
        "server.crt",
    ];
    openssl(&revoke, &ca);
    crl("revoked.crl");
    let src = database(cluster, "CREATE TABLE t (i int); INSERT INTO t VALUES (1)");
    let copy = |list: &str| {
        fs::copy(ca.join(list), pg.join("root.crl")).unwrap();
        let dest = database(cluster, "CREATE TABLE t (i int)");
        let out = copyman()
            .env("HOME", &home.0)
            .args(["table", "t", "--from"])
            .arg(conninfo(
                cluster,
                &src,
                "host=localhost sslmode=verify-full",
            ))
            .arg("--to")
            .arg(conninfo(
                cluster,
                &dest,
                "host=localhost sslmode=verify-full",
            ))
            .output()
            .unwrap();
        (out, dest)
    };
    let (out, dest) = copy("clean.crl");
    assert_exit(&out, 0);
    assert_eq!(count(cluster, &dest, "t"), 1);
    let (out, dest) = copy("revoked.crl");
    assert_exit(&out, 3);
    assert!(
        text(&out.stderr).contains("the server's certificate is revoked"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(cluster, &dest, "t"), 0);
    let (out, _) = copy("other.crl");
    assert_exit(&out, 3);
    assert!(
        text(&out.stderr).contains("has no list from the issuer of a certificate"),
        "{}",
        text(&out.stderr)
    );
}
