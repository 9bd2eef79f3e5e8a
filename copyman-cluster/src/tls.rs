//! Certificates for clusters with TLS, made with the `openssl` command: a certificate authority,
//! a server certificate it signs for `localhost` only, a client certificate for [`CERT_USER`], and
//! an unrelated second authority to fail verification with.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::process::run;

/// The role a TLS cluster lets in by client certificate alone (`cert` authentication); it is a
/// superuser, and [`TlsFiles::client_cert`] is issued to it.
pub const CERT_USER: &str = "copyman_cert";

/// The certificate files of a cluster with TLS ([`Builder::tls`](crate::Builder::tls)). The
/// server certificate names `localhost` (DNS) and nothing else, so connecting to `127.0.0.1` with
/// `sslmode=verify-full` fails on the name while `verify-ca` passes.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The authority that signed the server and client certificates (PEM).
    pub ca_cert: PathBuf,
    /// Another authority, which signed nothing of this cluster's (PEM).
    pub other_ca_cert: PathBuf,
    /// A client certificate for [`CERT_USER`], signed by [`ca_cert`](Self::ca_cert) (PEM).
    pub client_cert: PathBuf,
    /// Its private key (PEM, unencrypted).
    pub client_key: PathBuf,
    /// The server's certificate (PEM), e.g. to compute its channel-binding hash.
    pub server_cert: PathBuf,
    pub(crate) server_key: PathBuf,
}

impl TlsFiles {
    /// Makes every file in `dir` (which must exist).
    pub(crate) fn make(dir: &Path) -> Self {
        let files = Self {
            ca_cert: dir.join("ca.crt"),
            other_ca_cert: dir.join("other-ca.crt"),
            client_cert: dir.join("client.crt"),
            client_key: dir.join("client.key"),
            server_cert: dir.join("server.crt"),
            server_key: dir.join("server.key"),
        };
        let ca_key = dir.join("ca.key");
        authority(&files.ca_cert, &ca_key, "copyman-cluster CA");
        authority(
            &files.other_ca_cert,
            &dir.join("other-ca.key"),
            "copyman-cluster unrelated CA",
        );
        issue(
            dir,
            (&files.ca_cert, &ca_key),
            (&files.server_cert, &files.server_key),
            "localhost",
            "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n",
        );
        issue(
            dir,
            (&files.ca_cert, &ca_key),
            (&files.client_cert, &files.client_key),
            CERT_USER,
            "extendedKeyUsage=clientAuth\n",
        );
        files
    }
}

/// A self-signed authority certificate and its key.
fn authority(cert: &Path, key: &Path, name: &str) {
    openssl(
        Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .args([
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "2",
                "-subj",
            ])
            .arg(format!("/CN={name}"))
            .args(["-addext", "basicConstraints=critical,CA:TRUE"])
            .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
            .arg("-keyout")
            .arg(key)
            .arg("-out")
            .arg(cert),
    );
}

/// A certificate for `common_name` with `extensions`, signed by `ca`.
fn issue(dir: &Path, ca: (&Path, &Path), out: (&Path, &Path), common_name: &str, extensions: &str) {
    let request = dir.join(format!("{common_name}.csr"));
    let ext_file = dir.join(format!("{common_name}.ext"));
    fs::write(
        &ext_file,
        format!("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n{extensions}"),
    )
    .unwrap_or_else(|e| panic!("copyman-cluster: cannot write {}: {e}", ext_file.display()));
    openssl(
        Command::new("openssl")
            .args(["req", "-new", "-newkey", "ec", "-pkeyopt"])
            .args(["ec_paramgen_curve:prime256v1", "-nodes", "-subj"])
            .arg(format!("/CN={common_name}"))
            .arg("-keyout")
            .arg(out.1)
            .arg("-out")
            .arg(&request),
    );
    openssl(
        Command::new("openssl")
            .args(["x509", "-req", "-days", "2", "-in"])
            .arg(&request)
            .arg("-CA")
            .arg(ca.0)
            .arg("-CAkey")
            .arg(ca.1)
            .arg("-set_serial")
            .arg(format!("{}", rand_serial()))
            .arg("-extfile")
            .arg(&ext_file)
            .arg("-out")
            .arg(out.0),
    );
}

fn openssl(cmd: &mut Command) {
    if let Err(e) = run(cmd) {
        panic!(
            "copyman-cluster: making TLS certificates failed (is the `openssl` command \
             installed? `apt-get install openssl`): {e}"
        );
    }
}

/// A serial number unlikely to repeat between certificates of one authority.
fn rand_serial() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.finish() >> 1
}
