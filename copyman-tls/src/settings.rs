//! The TLS parameters of a connection and the rustls configuration they make.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, ServerName};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{ClientConfig, RootCertStore};

use crate::binding::tlv;
use crate::verify::{Rooted, SetupFailed, Unverified, subject_public_key_info};
use crate::{SslMode, TlsError};

/// The connection-string parameters [`TlsSettings`] reads, in the order
/// [`TlsSettings::take_from`] reads them.
pub const PARAMETERS: [&str; 4] = ["sslmode", "sslrootcert", "sslcert", "sslkey"];

/// A connection's TLS parameters, named and meant as libpq's: `sslmode`, `sslrootcert`,
/// `sslcert`, `sslkey`, `ssl_min_protocol_version`, `ssl_max_protocol_version`.
///
/// Files default as in libpq: the root certificates `~/.postgresql/root.crt`, the client
/// certificate `~/.postgresql/postgresql.crt` and its key `~/.postgresql/postgresql.key`, each used
/// if it exists, and the certificate revocation list `~/.postgresql/root.crl`, checked wherever
/// root certificates are (every certificate of the chain must be covered, and an expired list
/// fails, as under libpq). A root certificate file that does not exist (named or not) is an error only
/// under `verify-ca`/`verify-full`; under `allow`/`prefer`/`require` the server's certificate is
/// then not verified, as libpq does (`initialize_SSL` in `fe-secure-openssl.c`). A client
/// certificate file that does not exist, named or not, is not used: the connection goes on
/// without a client certificate, as libpq's does ("server might or might not accept the
/// connection"), and its key is not looked at. `sslrootcert=system` trusts the system's root
/// certificates; as in libpq 16+, it makes `verify-full` the default `sslmode`
/// ([`TlsSettings::default_mode`]) and any other mode given is refused
/// ([`TlsSettings::check_sslmode`]).
///
/// The private key of a client certificate must be a regular file without group or world access
/// (0600 or less; 0640 or less if root owns it), as libpq requires
/// ([`TlsSettings::check_client_key`]).
///
/// As libpq reads these files only once the server agreed to TLS, and under `allow`/`prefer` a
/// TLS attempt that fails is followed by a plain one (`prefer`) or was the last (`allow`), a file
/// that cannot be used (a root file that cannot be read, a certificate or key that cannot, a key
/// others may read) does not stop [`TlsSettings::client_config`] under those modes: the TLS
/// attempt fails with its error, and only then. Under `require`, `verify-ca` and `verify-full`
/// TLS is the only way, and such a file is an error at once.
///
/// ```
/// use copyman_tls::{SslMode, TlsSettings};
///
/// let (rest, tls) = TlsSettings::take_from(
///     "host=db.example.com user=app sslmode=verify-full sslrootcert=/etc/ssl/db-ca.pem",
/// )?;
/// assert_eq!(tls.mode, SslMode::VerifyFull);
/// assert_eq!(tls.root_cert.as_deref(), Some(std::path::Path::new("/etc/ssl/db-ca.pem")));
/// // The rest is for `postgres::Config`, which knows none of these.
/// assert_eq!(rest.split_whitespace().collect::<Vec<_>>(), ["host=db.example.com", "user=app"]);
/// # Ok::<(), copyman_tls::TlsError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// Whether to use TLS and what to check.
    pub mode: SslMode,
    /// `sslrootcert`: a PEM file of trusted root certificates, or `system`. A path, as the
    /// other files: its bytes need not be UTF-8.
    pub root_cert: Option<PathBuf>,
    /// `sslcert`: the client certificate (PEM), for `cert` authentication.
    pub cert: Option<PathBuf>,
    /// `sslkey`: the client certificate's private key (PEM, unencrypted).
    pub key: Option<PathBuf>,
    /// `ssl_min_protocol_version`: the oldest TLS version to accept; `None` is libpq's default,
    /// TLSv1.2.
    pub min_version: Option<TlsVersion>,
    /// `ssl_max_protocol_version`: the newest TLS version to offer; `None` is the newest known.
    pub max_version: Option<TlsVersion>,
}

/// A TLS protocol version, as libpq's `ssl_min_protocol_version` and `ssl_max_protocol_version`
/// name it: `TLSv1`, `TLSv1.1`, `TLSv1.2`, `TLSv1.3`, in any case. rustls speaks TLSv1.2 and
/// TLSv1.3; the older two can bound a range, never be spoken.
///
/// ```
/// use copyman_tls::TlsVersion;
///
/// assert_eq!("tlsv1.3".parse::<TlsVersion>().unwrap(), TlsVersion::Tls1_3);
/// assert!(TlsVersion::Tls1_2 < TlsVersion::Tls1_3);
/// assert!("SSLv3".parse::<TlsVersion>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum TlsVersion {
    /// `TLSv1` (1.0).
    Tls1_0,
    /// `TLSv1.1`.
    Tls1_1,
    /// `TLSv1.2`.
    Tls1_2,
    /// `TLSv1.3`.
    Tls1_3,
}

impl std::str::FromStr for TlsVersion {
    type Err = TlsError;

    /// libpq's `sslVerifyProtocolVersion`: the four names, in any case.
    fn from_str(s: &str) -> Result<Self, TlsError> {
        match s.to_ascii_lowercase().as_str() {
            "tlsv1" => Ok(Self::Tls1_0),
            "tlsv1.1" => Ok(Self::Tls1_1),
            "tlsv1.2" => Ok(Self::Tls1_2),
            "tlsv1.3" => Ok(Self::Tls1_3),
            _ => Err(TlsError::Settings(format!(
                "invalid TLS protocol version \"{s}\" (TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3)"
            ))),
        }
    }
}

impl std::fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Tls1_0 => "TLSv1",
            Self::Tls1_1 => "TLSv1.1",
            Self::Tls1_2 => "TLSv1.2",
            Self::Tls1_3 => "TLSv1.3",
        })
    }
}

impl TlsSettings {
    /// Settings with `mode` and every file at its default.
    pub fn new(mode: SslMode) -> Self {
        Self {
            mode,
            ..Self::default()
        }
    }

    /// The `sslmode` where none is given, as libpq 16+: `verify-full` under
    /// `sslrootcert=system`, else `prefer`.
    ///
    /// ```
    /// use copyman_tls::{SslMode, TlsSettings};
    ///
    /// assert_eq!(TlsSettings::default_mode(None), SslMode::Prefer);
    /// assert_eq!(TlsSettings::default_mode(Some("/ca.pem".as_ref())), SslMode::Prefer);
    /// assert_eq!(TlsSettings::default_mode(Some("system".as_ref())), SslMode::VerifyFull);
    /// ```
    pub fn default_mode(root_cert: Option<&Path>) -> SslMode {
        match root_cert {
            Some(system) if system == Path::new("system") => SslMode::VerifyFull,
            _ => SslMode::Prefer,
        }
    }

    /// Takes the [`PARAMETERS`] out of a connection string (URL or `key=value`): returns the
    /// rest, for the `postgres` crate's parser, and the settings (`sslmode` defaults to
    /// [`TlsSettings::default_mode`]).
    ///
    /// # Errors
    /// An unreadable string ([`TlsError::Conninfo`]), an unknown `sslmode`.
    pub fn take_from(conninfo: &str) -> Result<(String, Self), TlsError> {
        let (rest, taken) = copyman_conninfo::take(conninfo, &PARAMETERS)
            .map_err(|e| TlsError::Conninfo(e.to_string()))?;
        let [mode, root_cert, cert, key]: [Option<String>; 4] =
            taken.try_into().expect("one value per parameter");
        Ok((
            rest,
            Self {
                mode: mode.as_deref().map_or_else(
                    || Ok(Self::default_mode(root_cert.as_deref().map(Path::new))),
                    str::parse,
                )?,
                root_cert: root_cert.map(PathBuf::from),
                cert: cert.map(PathBuf::from),
                key: key.map(PathBuf::from),
                ..Self::default()
            },
        ))
    }

    /// The rustls configuration these settings make, `None` under `disable`. Build it once and
    /// use it for every connection attempt.
    ///
    /// Under `allow`/`prefer`, the files' errors are the TLS attempt's (see [`TlsSettings`]): the
    /// configuration made then refuses every handshake with the error, said by
    /// [`TlsError::handshake`] as it is, before anything of the client's is sent.
    ///
    /// # Errors
    /// `sslrootcert=system` with a mode below `verify-full` (in every mode, as libpq checks it),
    /// a TLS version range that holds none rustls speaks; under `require`, `verify-ca` and
    /// `verify-full`: a file that cannot be read or holds no certificate or key,
    /// `verify-ca`/`verify-full` without root certificates, a client key file others may read, a
    /// client certificate that is not the key's.
    pub fn client_config(&self) -> Result<Option<Arc<ClientConfig>>, TlsError> {
        self.check_sslmode()?;
        if self.mode == SslMode::Disable {
            return Ok(None);
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions = self.protocol_versions()?;
        let (verifier, client_key) = match self.verifier_and_client_key(&provider) {
            Ok(both) => both,
            // As libpq's initialize_SSL, run only once the server said `S`: under allow/prefer
            // its failure is that TLS attempt's, and prefer then goes on without TLS.
            Err(error) if !self.mode.requires_tls() => {
                let failed: Arc<dyn ServerCertVerifier> = Arc::new(SetupFailed {
                    error: error.to_string(),
                    algorithms: provider.signature_verification_algorithms,
                });
                (failed, None)
            }
            Err(error) => return Err(error),
        };
        let builder = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&versions)
            .map_err(|e| TlsError::Settings(format!("TLS versions: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let mut config = match client_key {
            // Not `with_client_auth_cert`: its check that the two match parses the certificate
            // with webpki, which refuses X.509 version 1 ([`Self::client_certificate`] checks).
            Some(key) => builder.with_client_cert_resolver(Arc::new(SingleCertAndKey::from(key))),
            None => builder.with_no_client_auth(),
        };
        // What PostgreSQL 17's direct TLS expects; older servers ignore it.
        config.alpn_protocols = vec![b"postgresql".to_vec()];
        Ok(Some(Arc::new(config)))
    }

    /// What the files make, as libpq's `initialize_SSL` reads them: the server certificate's
    /// verifier (by the root certificates, if any) and the client certificate with its key.
    fn verifier_and_client_key(
        &self,
        provider: &Arc<CryptoProvider>,
    ) -> Result<(Arc<dyn ServerCertVerifier>, Option<CertifiedKey>), TlsError> {
        let verifier: Arc<dyn ServerCertVerifier> = match self.roots()? {
            Some(Roots {
                store,
                certs,
                source,
            }) => {
                let mut builder = WebPkiServerVerifier::builder_with_provider(
                    Arc::new(store),
                    Arc::clone(provider),
                );
                // libpq's default revocation list, read wherever root certificates are
                // (a revoked server certificate was trusted): as OpenSSL under libpq's flags,
                // every certificate of the chain must be covered, and an expired list fails.
                if let Some(crls) = default_crls()? {
                    builder = builder.with_crls(crls).enforce_revocation_expiration();
                }
                let webpki = builder
                    .build()
                    .map_err(|e| TlsError::Settings(format!("root certificates: {e}")))?;
                // As libpq: with root certificates at hand every mode checks the chain; only
                // verify-full checks the name too.
                Arc::new(Rooted {
                    webpki,
                    roots: certs,
                    source,
                    check_name: self.mode == SslMode::VerifyFull,
                })
            }
            None => Arc::new(Unverified {
                algorithms: provider.signature_verification_algorithms,
            }),
        };
        Ok((verifier, self.client_certificate(provider)?))
    }

    /// The TLS versions to offer: those rustls speaks (TLSv1.2, TLSv1.3) between
    /// [`TlsSettings::min_version`] (TLSv1.2 by default, as libpq's) and
    /// [`TlsSettings::max_version`].
    ///
    /// [`TlsSettings::client_config`] offers these; a caller may check them earlier, as libpq
    /// checks the range before connecting.
    ///
    /// # Errors
    /// A minimum above the maximum (libpq's words), or a range holding neither version.
    pub fn protocol_versions(
        &self,
    ) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, TlsError> {
        let min = self.min_version.unwrap_or(TlsVersion::Tls1_2);
        let max = self.max_version.unwrap_or(TlsVersion::Tls1_3);
        if min > max {
            return Err(TlsError::Settings(format!(
                "invalid SSL protocol version range: ssl_min_protocol_version={min} is above \
                 ssl_max_protocol_version={max}"
            )));
        }
        // Newest first, as rustls' own defaults.
        let versions: Vec<_> = [
            (TlsVersion::Tls1_3, &rustls::version::TLS13),
            (TlsVersion::Tls1_2, &rustls::version::TLS12),
        ]
        .into_iter()
        .filter(|(version, _)| (min..=max).contains(version))
        .map(|(_, supported)| supported)
        .collect();
        if versions.is_empty() {
            return Err(TlsError::Settings(format!(
                "ssl_max_protocol_version={max}: copyman speaks TLSv1.2 and TLSv1.3 only"
            )));
        }
        Ok(versions)
    }

    /// libpq 16+'s rule for `sslrootcert=system`: only `verify-full` may go with it (the
    /// default there, [`TlsSettings::default_mode`]; any other mode is one given, and refused in
    /// libpq's words). Checked in every mode, before anything is read, as libpq checks it.
    ///
    /// [`TlsSettings::client_config`] checks it; a caller may check it earlier, before
    /// connecting.
    ///
    /// # Errors
    /// `sslrootcert=system` with a mode other than `verify-full`.
    pub fn check_sslmode(&self) -> Result<(), TlsError> {
        if self.root_cert.as_deref() == Some(Path::new("system"))
            && self.mode != SslMode::VerifyFull
        {
            return Err(TlsError::Settings(format!(
                "weak sslmode \"{}\" may not be used with sslrootcert=system (use \
                 \"verify-full\")",
                self.mode
            )));
        }
        Ok(())
    }

    /// libpq's checks of the client's private key file (`initialize_SSL` in
    /// `fe-secure-openssl.c`), made where a client certificate file exists (named, or at its
    /// default place) and before the key is read: the key file must exist, be a regular file,
    /// and give no access to group or world — unless root owns it, when group read is allowed
    /// (mode 0640 or less), for system-wide keys read through a supplementary group. As libpq,
    /// the owner is not compared with the current user: a file with such a mode that can be
    /// read at all is the user's or root's. Without a client certificate there is nothing to
    /// check (the key is not used).
    ///
    /// [`TlsSettings::client_config`] checks it (under `allow`/`prefer`, as the TLS attempt's
    /// error); a caller may check it earlier, before connecting, where TLS will certainly be
    /// used (`require` and stronger, on TCP): libpq checks it only once TLS is being set up, so
    /// under `allow`/`prefer` a server without TLS, or a plain attempt after a failed TLS one,
    /// never sees it.
    ///
    /// # Errors
    /// A key file missing, not a regular file, or readable by others, in libpq's words; a
    /// certificate file that exists but cannot be looked at.
    pub fn check_client_key(&self) -> Result<(), TlsError> {
        match self.client_files()? {
            Some((_, key)) => check_key_file(&key),
            None => Ok(()),
        }
    }

    /// The trusted roots: `None` when there are none to check against.
    fn roots(&self) -> Result<Option<Roots>, TlsError> {
        let verifying = matches!(self.mode, SslMode::VerifyCa | SslMode::VerifyFull);
        let path = match self.root_cert.as_deref() {
            Some(system) if system == Path::new("system") => {
                // verify-full: [`Self::check_sslmode`] refused any other mode.
                let certs = system_roots()?;
                return Ok(Some(Roots {
                    store: store(&certs),
                    certs,
                    source: "the system's root certificates (sslrootcert=system)".to_owned(),
                }));
            }
            // As libpq: a root file that is not there (stat fails) is an error only when
            // verifying; otherwise the certificate goes unchecked. One that is there must be
            // readable whatever the mode.
            Some(path) if std::fs::metadata(path).is_ok() => PathBuf::from(path),
            Some(path) if verifying => {
                return Err(TlsError::NoRootCertificate {
                    path: PathBuf::from(path),
                });
            }
            Some(_) => return Ok(None),
            None => match default_file("root.crt") {
                Some(path) if path.exists() => path,
                other if verifying => {
                    return Err(TlsError::NoRootCertificate {
                        path: other.unwrap_or_else(|| PathBuf::from("~/.postgresql/root.crt")),
                    });
                }
                _ => return Ok(None),
            },
        };
        let certs = read_certificates(&path, "root certificate file")?;
        let roots = store(&certs);
        if roots.is_empty() {
            return Err(TlsError::File {
                what: "root certificate file",
                path,
                reason: format!("no usable certificate ({} could not be read)", certs.len()),
            });
        }
        Ok(Some(Roots {
            store: roots,
            certs,
            source: format!("sslrootcert={}", path.display()),
        }))
    }

    /// The client certificate file and its key file, if the certificate file (named, else
    /// libpq's default) exists: as libpq, one that does not (`ENOENT`, `ENOTDIR`) means no client
    /// certificate, and its key is not looked at.
    fn client_files(&self) -> Result<Option<(PathBuf, PathBuf)>, TlsError> {
        let named = |path: &Option<PathBuf>| {
            path.as_ref()
                .filter(|path| !path.as_os_str().is_empty())
                .cloned()
        };
        let Some(cert) = named(&self.cert).or_else(|| default_file("postgresql.crt")) else {
            return Ok(None);
        };
        match std::fs::metadata(&cert) {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                return Ok(None);
            }
            Err(e) => {
                return Err(TlsError::Settings(format!(
                    "could not open certificate file \"{}\": {e}",
                    cert.display()
                )));
            }
        }
        let key = named(&self.key)
            .or_else(|| default_file("postgresql.key"))
            .ok_or_else(|| {
                TlsError::Settings(format!(
                    "certificate present, but not private key file (sslkey) for \"{}\"",
                    cert.display()
                ))
            })?;
        Ok(Some((cert, key)))
    }

    /// The client certificate chain with its key, if one is named or at its default place, the
    /// key checked as libpq checks it ([`Self::check_client_key`]) and checked to be the
    /// certificate's.
    fn client_certificate(
        &self,
        provider: &CryptoProvider,
    ) -> Result<Option<CertifiedKey>, TlsError> {
        let Some((cert_path, key_path)) = self.client_files()? else {
            return Ok(None);
        };
        let certs = read_certificates(&cert_path, "client certificate file")?;
        check_key_file(&key_path)?;
        let key_error = |reason: String| TlsError::File {
            what: "private key file",
            path: key_path.clone(),
            reason,
        };
        let key = read_private_key(&key_path)?;
        let key = provider.key_provider.load_private_key(key).map_err(|e| {
            // A key of a kind ring cannot sign with reads as one it cannot parse (conn50
            // F1: "failed to parse", of a P-521 key psql uses): both said.
            key_error(format!(
                "{e}: a damaged file, or a key of a kind copyman's TLS cannot sign with (it \
                     signs with RSA, ECDSA P-256/P-384 and Ed25519 keys, not P-521 or Ed448 \
                     ones)"
            ))
        })?;
        // The server verifies a client certificate (and that the client holds its key: the
        // handshake's CertificateVerify is signed with it); this check only says a mismatch
        // before the server refuses it with a handshake alert that does not. rustls'
        // `CertifiedKey::keys_match` would do it, but it reads the certificate with webpki,
        // which refuses X.509 version 1 — what PostgreSQL's documented openssl recipe makes,
        // which libpq uses. So the certificate's subjectPublicKeyInfo is read by the same DER
        // walk as a version 1 server certificate's (any version: the walk only steps over
        // fields) and compared, as rustls compares it, with the public key of the private key.
        // A key whose public half the provider cannot give (none of ring's) is not compared, as
        // rustls does not.
        let ours = certs
            .first()
            .and_then(|cert| subject_public_key_info(cert.as_ref()))
            .ok_or_else(|| TlsError::File {
                what: "client certificate file",
                path: cert_path.clone(),
                reason: "its first certificate is not an X.509 certificate".to_owned(),
            })?;
        if let Some(spki) = key.public_key()
            && tlv(spki.as_ref()).map(|(_, contents, _)| contents) != Some(ours)
        {
            return Err(TlsError::Settings(format!(
                "client certificate \"{}\" does not match private key file \"{}\"",
                cert_path.display(),
                key_path.display()
            )));
        }
        Ok(Some(CertifiedKey::new(certs, key)))
    }
}

/// A client's private key file (PEM, unencrypted). An encrypted one (`BEGIN ENCRYPTED PRIVATE
/// KEY`, or OpenSSL's traditional `Proc-Type: 4,ENCRYPTED` header) is said to be so: copyman has
/// no passphrase to decrypt it with (`sslpassword` is refused by name).
fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let error = |reason: String| TlsError::File {
        what: "private key file",
        path: path.to_owned(),
        reason,
    };
    let pem = crate::read_settings_file(path).map_err(|e| error(e.to_string()))?;
    let has = |marker: &[u8]| pem.windows(marker.len()).any(|w| w == marker);
    if has(b"-----BEGIN ENCRYPTED PRIVATE KEY-----") || has(b"Proc-Type: 4,ENCRYPTED") {
        return Err(error(format!(
            "the key is encrypted (passphrase-protected), and copyman cannot read encrypted \
             client keys: give sslkey an unencrypted key file (`openssl pkey -in {} -out \
             NEW.key`, then `chmod 600 NEW.key`)",
            path.display()
        )));
    }
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| error(pem_reason(&e)))
}

/// libpq's checks of a private key file, in its words (`initialize_SSL`): it exists, is a
/// regular file, and gives no access to group or world (root's: group read allowed).
fn check_key_file(path: &Path) -> Result<(), TlsError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(TlsError::Settings(format!(
                "certificate present, but not private key file \"{}\"",
                path.display()
            )));
        }
        Err(e) => {
            return Err(TlsError::Settings(format!(
                "could not stat private key file \"{}\": {e}",
                path.display()
            )));
        }
    };
    if !meta.is_file() {
        return Err(TlsError::Settings(format!(
            "private key file \"{}\" is not a regular file",
            path.display()
        )));
    }
    let mode = meta.permissions().mode();
    // Root's: no group write or execute, nothing for others; anyone else's: nothing for group
    // or others.
    let forbidden = if meta.uid() == 0 { 0o037 } else { 0o077 };
    if mode & forbidden != 0 {
        return Err(TlsError::Settings(format!(
            "private key file \"{}\" has group or world access; file must have permissions \
             u=rw (0600) or less if owned by the current user, or permissions u=rw,g=r (0640) or \
             less if owned by root",
            path.display()
        )));
    }
    Ok(())
}

/// The name to check the server's certificate against (and to send as SNI): a DNS name, or an
/// IP address when the host is written as one.
///
/// # Errors
/// A host that is neither.
pub fn server_name(host: &str) -> Result<ServerName<'static>, TlsError> {
    ServerName::try_from(host.to_owned())
        .map_err(|_| TlsError::Settings(format!("host {host:?} is not a valid TLS server name")))
}

/// `~/.postgresql/<name>`, where libpq looks for its TLS files.
/// libpq's default certificate revocation list, `~/.postgresql/root.crl`, where it exists
/// (libpq reads it whenever it verifies against root certificates and no `sslcrl` or
/// `sslcrldir` is given; copyman refuses those): its lists, PEM as libpq reads it.
fn default_crls() -> Result<Option<Vec<CertificateRevocationListDer<'static>>>, TlsError> {
    let Some(path) = default_file("root.crl").filter(|path| path.exists()) else {
        return Ok(None);
    };
    let file_error = |reason: String| TlsError::File {
        what: "certificate revocation list",
        path: path.clone(),
        reason,
    };
    let pem = crate::read_settings_file(&path).map_err(|e| file_error(e.to_string()))?;
    let crls = CertificateRevocationListDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(pem_reason(&e)))?;
    if crls.is_empty() {
        return Err(file_error("no PEM revocation list in it".to_owned()));
    }
    Ok(Some(crls))
}

fn default_file(name: &str) -> Option<PathBuf> {
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
    Some(Path::new(&home).join(".postgresql").join(name))
}

fn read_certificates(
    path: &Path,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let file_error = |reason: String| TlsError::File {
        what,
        path: path.to_owned(),
        reason,
    };
    let pem = crate::read_settings_file(path).map_err(|e| file_error(e.to_string()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(pem_reason(&e)))?;
    if certs.is_empty() {
        return Err(file_error("no PEM certificate in it".to_owned()));
    }
    Ok(certs)
}

/// Trusted root certificates: webpki's store of them, the certificates as read, and where they
/// came from.
struct Roots {
    store: RootCertStore,
    certs: Vec<CertificateDer<'static>>,
    source: String,
}

/// The trust anchors of the certificates that parse as such.
fn store(certs: &[CertificateDer<'static>]) -> RootCertStore {
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(certs.iter().cloned());
    roots
}

fn system_roots() -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let found = rustls_native_certs::load_native_certs();
    if store(&found.certs).is_empty() {
        let errors: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
        return Err(TlsError::Settings(format!(
            "sslrootcert=system: no system root certificates found{}",
            if errors.is_empty() {
                String::new()
            } else {
                format!(" ({})", errors.join("; "))
            }
        )));
    }
    Ok(found.certs)
}

fn pem_reason(error: &rustls::pki_types::pem::Error) -> String {
    match error {
        rustls::pki_types::pem::Error::Io(e) => e.to_string(),
        rustls::pki_types::pem::Error::NoItemsFound => "no PEM item of the expected kind".into(),
        // Never the file's contents: a key file's lines are secret.
        _ => "not valid PEM".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(mode: SslMode, root_cert: Option<&str>) -> TlsSettings {
        TlsSettings {
            mode,
            root_cert: root_cert.map(PathBuf::from),
            cert: Some(PathBuf::from("/nonexistent/no-client.crt")),
            ..TlsSettings::default()
        }
    }

    #[test]
    fn protocol_versions_are_bounded_as_libpq_bounds_them() {
        let bounded = |min: Option<TlsVersion>, max: Option<TlsVersion>| {
            let tls = TlsSettings {
                min_version: min,
                max_version: max,
                ..TlsSettings::new(SslMode::Require)
            };
            tls.protocol_versions().map(|versions| {
                versions
                    .iter()
                    .map(|v| format!("{:?}", v.version))
                    .collect::<Vec<_>>()
            })
        };
        use TlsVersion::*;
        assert_eq!(bounded(None, None).unwrap(), ["TLSv1_3", "TLSv1_2"]);
        assert_eq!(bounded(Some(Tls1_0), None).unwrap(), ["TLSv1_3", "TLSv1_2"]);
        assert_eq!(bounded(Some(Tls1_3), None).unwrap(), ["TLSv1_3"]);
        assert_eq!(bounded(None, Some(Tls1_2)).unwrap(), ["TLSv1_2"]);
        let err = bounded(Some(Tls1_3), Some(Tls1_2)).unwrap_err().to_string();
        assert!(
            err.starts_with("invalid SSL protocol version range"),
            "{err}"
        );
        let err = bounded(Some(Tls1_0), Some(Tls1_1)).unwrap_err().to_string();
        assert!(err.contains("TLSv1.2 and TLSv1.3 only"), "{err}");
        // A configuration is made with TLS 1.3 alone.
        let tls = TlsSettings {
            min_version: Some(Tls1_3),
            ..TlsSettings::new(SslMode::Require)
        };
        assert!(tls.client_config().unwrap().is_some());
    }

    #[test]
    fn disable_makes_no_configuration() {
        assert!(
            TlsSettings::new(SslMode::Disable)
                .client_config()
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_missing_root_file_is_an_error_only_when_verifying() {
        // As libpq: under allow/prefer/require the certificate then goes unchecked.
        for mode in [SslMode::Allow, SslMode::Prefer, SslMode::Require] {
            let mut s = settings(mode, Some("/nonexistent/root.crt"));
            s.cert = None;
            if default_file("postgresql.crt").is_none_or(|p| !p.exists()) {
                assert!(s.client_config().unwrap().is_some(), "{mode}");
            }
            assert!(s.roots().unwrap().is_none(), "{mode}");
        }
        for mode in [SslMode::VerifyCa, SslMode::VerifyFull] {
            let err = settings(mode, Some("/nonexistent/root.crt"))
                .client_config()
                .unwrap_err();
            assert!(
                matches!(&err, TlsError::NoRootCertificate { path } if path.to_str() == Some("/nonexistent/root.crt")),
                "{mode}: {err}"
            );
            assert!(
                err.to_string()
                    .starts_with("root certificate file \"/nonexistent/root.crt\" does not exist"),
                "{err}"
            );
        }
    }

    #[test]
    fn a_client_certificate_file_that_does_not_exist_is_not_used_as_libpq() {
        // The tester's F2: libpq's initialize_SSL "If file is not present, just go on without a
        // client cert; server might or might not accept the connection" — a named one too (a
        // PGSSLCERT exported for some servers), and then its key is not looked at.
        let dir = TempDir::new("no-client-cert");
        let readable_key = dir.file("client.key", V3_KEY, 0o644);
        let not_a_dir = dir.file("file", "", 0o644);
        for cert in [dir.0.join("none.crt"), not_a_dir.join("client.crt")] {
            for key in [
                None,
                Some(readable_key.clone()),
                Some(dir.0.join("none.key")),
            ] {
                for mode in [SslMode::Allow, SslMode::Prefer, SslMode::Require] {
                    let tls = TlsSettings {
                        cert: Some(cert.clone()),
                        key: key.clone(),
                        root_cert: Some("/nonexistent/root.crt".into()),
                        ..TlsSettings::new(mode)
                    };
                    tls.check_client_key().unwrap();
                    let config = tls.client_config().unwrap().unwrap();
                    assert!(!config.client_auth_cert_resolver.has_certs(), "{mode}");
                }
            }
        }
        // One that exists but cannot be looked at is an error, in libpq's words.
        if std::fs::metadata("/root").is_ok_and(|m| {
            use std::os::unix::fs::PermissionsExt;
            m.permissions().mode() & 0o001 == 0
        }) && std::fs::read_dir("/root").is_err()
        {
            let tls = TlsSettings {
                cert: Some(PathBuf::from("/root/client.crt")),
                ..TlsSettings::new(SslMode::Require)
            };
            let err = tls.check_client_key().unwrap_err().to_string();
            assert!(
                err.starts_with("could not open certificate file \"/root/client.crt\": "),
                "{err}"
            );
        }
    }

    #[test]
    fn under_allow_and_prefer_unusable_files_are_the_tls_attempts_error() {
        // The tester's F2: a client key others may read (or a certificate without its key)
        // stopped every connection under prefer, to a server without TLS too; libpq reads them
        // only once the server agreed to TLS, and under prefer then tries without TLS.
        let dir = TempDir::new("deferred");
        let cert = dir.file("client.crt", V3_CERT, 0o644);
        let readable = dir.file("client.key", V3_KEY, 0o644);
        let missing = dir.0.join("none.key");
        for key in [&readable, &missing] {
            let require = with_client(&cert, key);
            let said = require.client_config().unwrap_err().to_string();
            assert_eq!(require.check_client_key().unwrap_err().to_string(), said);
            for mode in [SslMode::Allow, SslMode::Prefer] {
                let tls = TlsSettings {
                    mode,
                    ..require.clone()
                };
                // Made, to refuse the handshake with the error (the TLS tests of nonblocking
                // see it said), and never with the client certificate.
                let config = tls.client_config().unwrap().unwrap();
                assert!(!config.client_auth_cert_resolver.has_certs(), "{mode}");
            }
        }
        // What libpq checks before connecting still fails at once, in every mode.
        let inverted = TlsSettings {
            min_version: Some(TlsVersion::Tls1_3),
            max_version: Some(TlsVersion::Tls1_2),
            ..with_client(&cert, &readable)
        };
        for mode in [SslMode::Allow, SslMode::Prefer] {
            let tls = TlsSettings {
                mode,
                ..inverted.clone()
            };
            assert!(tls.client_config().is_err(), "{mode}");
        }
    }

    #[test]
    fn system_roots_need_verify_full() {
        // Any mode given but verify-full is refused, in every mode (disable too), as libpq 16+.
        for mode in [
            SslMode::Disable,
            SslMode::Allow,
            SslMode::Prefer,
            SslMode::Require,
            SslMode::VerifyCa,
        ] {
            let s = settings(mode, Some("system"));
            let err = s.check_sslmode().unwrap_err().to_string();
            assert_eq!(
                err,
                format!(
                    "weak sslmode \"{mode}\" may not be used with sslrootcert=system (use \
                     \"verify-full\")"
                )
            );
            assert_eq!(s.client_config().unwrap_err().to_string(), err);
        }
        settings(SslMode::VerifyFull, Some("system"))
            .check_sslmode()
            .unwrap();
        settings(SslMode::Prefer, Some("/ca.pem"))
            .check_sslmode()
            .unwrap();
    }

    #[test]
    fn system_roots_make_verify_full_the_default_sslmode() {
        // libpq 16+: "When using sslrootcert=system, the default sslmode is changed to
        // verify-full, and any weaker setting will result in an error".
        let mode = |conn: &str| TlsSettings::take_from(conn).map(|(_, tls)| tls.mode);
        assert_eq!(
            mode("host=h sslrootcert=system").unwrap(),
            SslMode::VerifyFull
        );
        assert_eq!(
            mode("postgresql://u@h/db?sslrootcert=system").unwrap(),
            SslMode::VerifyFull
        );
        assert_eq!(mode("host=h").unwrap(), SslMode::Prefer);
        assert_eq!(mode("host=h sslrootcert=/ca.pem").unwrap(), SslMode::Prefer);
        // Given, a weaker mode stays what it is, and is refused.
        let (_, given) =
            TlsSettings::take_from("host=h sslmode=prefer sslrootcert=system").unwrap();
        assert_eq!(given.mode, SslMode::Prefer);
        assert!(given.check_sslmode().is_err());
    }

    /// A directory of its own under the temporary directory, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let unique = std::hash::BuildHasher::hash_one(
                &std::collections::hash_map::RandomState::new(),
                name,
            );
            let dir = std::env::temp_dir().join(format!("copyman-tls-{name}-{unique:x}"));
            std::fs::create_dir(&dir).unwrap();
            Self(dir)
        }

        /// `contents` written to `name` in the directory, with `mode`.
        fn file(&self, name: &str, contents: &str, mode: u32) -> PathBuf {
            use std::os::unix::fs::PermissionsExt;
            let path = self.0.join(name);
            std::fs::write(&path, contents).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            path
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    const V1_CERT: &str = include_str!("../testdata/v1-server.pem");
    const V1_KEY: &str = include_str!("../testdata/v1-server-key.pem");
    const V3_CERT: &str = include_str!("../testdata/server.pem");
    const V3_KEY: &str = include_str!("../testdata/server-key.pem");

    /// Settings under `require` (no root certificate) with this client certificate and key.
    fn with_client(cert: &Path, key: &Path) -> TlsSettings {
        TlsSettings {
            root_cert: Some("/nonexistent/root.crt".into()),
            cert: Some(cert.to_owned()),
            key: Some(key.to_owned()),
            ..TlsSettings::new(SslMode::Require)
        }
    }

    #[test]
    fn a_client_key_others_may_read_is_refused_as_libpq_refuses_it() {
        use std::os::unix::fs::MetadataExt;

        let dir = TempDir::new("key-modes");
        let cert = dir.file("client.crt", V3_CERT, 0o644);
        let key = dir.file("client.key", V3_KEY, 0o600);
        let tls = with_client(&cert, &key);
        tls.check_client_key().unwrap();
        assert!(tls.client_config().unwrap().is_some());
        for mode in [0o400, 0o700] {
            std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(mode))
                .unwrap();
            tls.check_client_key().unwrap();
        }

        let refused = format!(
            "private key file \"{}\" has group or world access; file must have permissions \
             u=rw (0600) or less if owned by the current user, or permissions u=rw,g=r (0640) or \
             less if owned by root",
            key.display()
        );
        let set = |mode: u32| {
            std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(mode))
                .unwrap();
        };
        for mode in [0o644, 0o604, 0o660, 0o620, 0o610, 0o601] {
            set(mode);
            assert_eq!(
                tls.check_client_key().unwrap_err().to_string(),
                refused,
                "{mode:o}"
            );
            assert_eq!(
                tls.client_config().unwrap_err().to_string(),
                refused,
                "{mode:o}"
            );
        }
        // Group read: root's key only (system-wide keys read through a group).
        set(0o640);
        let owned_by_root = std::fs::metadata(&key).unwrap().uid() == 0;
        match tls.check_client_key() {
            Ok(()) => assert!(owned_by_root),
            Err(e) => assert!(!owned_by_root && e.to_string() == refused, "{e}"),
        }

        // Not checked without a certificate: the key is not used.
        let no_cert = with_client(&dir.0.join("none.crt"), &key);
        set(0o644);
        no_cert.check_client_key().unwrap();
        // Under disable nothing is read.
        let disabled = TlsSettings {
            mode: SslMode::Disable,
            ..tls.clone()
        };
        assert!(disabled.client_config().unwrap().is_none());

        // A key that is not there, or not a file: libpq's words.
        let missing = with_client(&cert, &dir.0.join("none.key"));
        assert_eq!(
            missing.check_client_key().unwrap_err().to_string(),
            format!(
                "certificate present, but not private key file \"{}\"",
                dir.0.join("none.key").display()
            )
        );
        let directory = with_client(&cert, &dir.0);
        assert_eq!(
            directory.client_config().unwrap_err().to_string(),
            format!(
                "private key file \"{}\" is not a regular file",
                dir.0.display()
            )
        );
    }

    #[test]
    fn a_version_1_client_certificate_is_used_and_a_key_mismatch_said() {
        let dir = TempDir::new("client-certs");
        let v1 = dir.file("v1.crt", V1_CERT, 0o644);
        let v1_key = dir.file("v1.key", V1_KEY, 0o600);
        let v3 = dir.file("v3.crt", V3_CERT, 0o644);
        let v3_key = dir.file("v3.key", V3_KEY, 0o600);
        // PostgreSQL's documented recipe makes a version 1 certificate, which webpki refuses:
        // used as libpq uses it, and so is a version 3 one.
        assert!(with_client(&v1, &v1_key).client_config().unwrap().is_some());
        assert!(with_client(&v3, &v3_key).client_config().unwrap().is_some());
        // Another key than the certificate's, either version.
        for (cert, key) in [(&v1, &v3_key), (&v3, &v1_key)] {
            let err = with_client(cert, key).client_config().unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "client certificate \"{}\" does not match private key file \"{}\"",
                    cert.display(),
                    key.display()
                )
            );
        }
        // A certificate file whose PEM block is no certificate.
        let junk = dir.file(
            "junk.crt",
            "-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n",
            0o644,
        );
        let err = with_client(&junk, &v1_key).client_config().unwrap_err();
        assert!(
            err.to_string()
                .ends_with("its first certificate is not an X.509 certificate"),
            "{err}"
        );
    }

    #[test]
    fn an_encrypted_client_key_is_said_to_be_encrypted() {
        // The tester's F7: "no PEM item of the expected kind" for a passphrase-protected key.
        let dir = TempDir::new("encrypted-keys");
        let cert = dir.file("client.crt", V3_CERT, 0o644);
        for (name, pem) in [
            ("pkcs8.key", include_str!("../testdata/encrypted-key.pem")),
            (
                "legacy.key",
                include_str!("../testdata/encrypted-legacy-key.pem"),
            ),
        ] {
            let key = dir.file(name, pem, 0o600);
            let err = with_client(&cert, &key).client_config().unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "private key file \"{key}\": the key is encrypted (passphrase-protected), and \
                     copyman cannot read encrypted client keys: give sslkey an unencrypted key \
                     file (`openssl pkey -in {key} -out NEW.key`, then `chmod 600 NEW.key`)",
                    key = key.display()
                )
            );
        }
        // Not a key at all: as before.
        let junk = dir.file("junk.key", "not a key\n", 0o600);
        let err = with_client(&cert, &junk).client_config().unwrap_err();
        assert!(
            err.to_string()
                .ends_with("no PEM item of the expected kind"),
            "{err}"
        );
    }

    #[test]
    fn a_file_without_certificates_is_refused() {
        let unique = std::hash::BuildHasher::hash_one(
            &std::collections::hash_map::RandomState::new(),
            "copyman-tls",
        );
        let path = std::env::temp_dir().join(format!("copyman-tls-empty-{unique:x}.pem"));
        std::fs::write(&path, "not a certificate\n").unwrap();
        let err = settings(SslMode::VerifyCa, Some(path.to_str().unwrap()))
            .client_config()
            .unwrap_err();
        let _ = std::fs::remove_file(&path);
        assert!(err.to_string().contains("no PEM certificate"), "{err}");
    }
}
