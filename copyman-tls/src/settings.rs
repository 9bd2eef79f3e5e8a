//! The TLS parameters of a connection and the rustls configuration they make.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};

use crate::verify::{Rooted, Unverified};
use crate::{SslMode, TlsError};

/// The connection-string parameters [`TlsSettings`] reads, in the order
/// [`TlsSettings::take_from`] reads them.
pub const PARAMETERS: [&str; 4] = ["sslmode", "sslrootcert", "sslcert", "sslkey"];

/// A connection's TLS parameters, named and meant as libpq's: `sslmode`, `sslrootcert`,
/// `sslcert`, `sslkey`, `ssl_min_protocol_version`, `ssl_max_protocol_version`.
///
/// Files default as in libpq: the root certificates `~/.postgresql/root.crt`, the client
/// certificate `~/.postgresql/postgresql.crt` and its key `~/.postgresql/postgresql.key`, each used
/// if it exists. A root certificate file that does not exist (named or not) is an error only
/// under `verify-ca`/`verify-full`; under `allow`/`prefer`/`require` the server's certificate is
/// then not verified, as libpq does (`initialize_SSL` in `fe-secure-openssl.c`). A root file that
/// exists but cannot be read, and a named client certificate that is missing, are errors in
/// every mode. `sslrootcert=system` trusts the system's root certificates and needs
/// `verify-full`, as in libpq.
///
/// ```
/// use copyman_tls::{SslMode, TlsSettings};
///
/// let (rest, tls) = TlsSettings::take_from(
///     "host=db.example.com user=app sslmode=verify-full sslrootcert=/etc/ssl/db-ca.pem",
/// )?;
/// assert_eq!(tls.mode, SslMode::VerifyFull);
/// assert_eq!(tls.root_cert.as_deref(), Some("/etc/ssl/db-ca.pem"));
/// // The rest is for `postgres::Config`, which knows none of these.
/// assert_eq!(rest.split_whitespace().collect::<Vec<_>>(), ["host=db.example.com", "user=app"]);
/// # Ok::<(), copyman_tls::TlsError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// Whether to use TLS and what to check.
    pub mode: SslMode,
    /// `sslrootcert`: a PEM file of trusted root certificates, or `system`.
    pub root_cert: Option<String>,
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

    /// Takes the [`PARAMETERS`] out of a connection string (URL or `key=value`): returns the
    /// rest, for the `postgres` crate's parser, and the settings (`sslmode` defaults to
    /// `prefer`).
    ///
    /// # Errors
    /// An unreadable string, an unknown `sslmode`.
    pub fn take_from(conninfo: &str) -> Result<(String, Self), TlsError> {
        let (rest, taken) = copyman_conninfo::take(conninfo, &PARAMETERS)
            .map_err(|e| TlsError::Settings(format!("invalid connection string: {e}")))?;
        let [mode, root_cert, cert, key]: [Option<String>; 4] =
            taken.try_into().expect("one value per parameter");
        Ok((
            rest,
            Self {
                mode: mode.as_deref().map_or(Ok(SslMode::Prefer), str::parse)?,
                root_cert,
                cert: cert.map(PathBuf::from),
                key: key.map(PathBuf::from),
                ..Self::default()
            },
        ))
    }

    /// The rustls configuration these settings make, `None` under `disable`. Build it once and
    /// use it for every connection attempt.
    ///
    /// # Errors
    /// A file that cannot be read or holds no certificate or key, `verify-ca`/`verify-full`
    /// without root certificates, `sslrootcert=system` with a mode below `verify-full`.
    pub fn client_config(&self) -> Result<Option<Arc<ClientConfig>>, TlsError> {
        if self.mode == SslMode::Disable {
            return Ok(None);
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier: Arc<dyn ServerCertVerifier> = match self.roots()? {
            Some(Roots {
                store,
                certs,
                source,
            }) => {
                let webpki = WebPkiServerVerifier::builder_with_provider(
                    Arc::new(store),
                    Arc::clone(&provider),
                )
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
        let builder = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&self.protocol_versions()?)
            .map_err(|e| TlsError::Settings(format!("TLS versions: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let mut config = match self.client_certificate()? {
            Some((certs, key)) => builder.with_client_auth_cert(certs, key).map_err(|e| {
                TlsError::Settings(format!("client certificate and key do not match: {e}"))
            })?,
            None => builder.with_no_client_auth(),
        };
        // What PostgreSQL 17's direct TLS expects; older servers ignore it.
        config.alpn_protocols = vec![b"postgresql".to_vec()];
        Ok(Some(Arc::new(config)))
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

    /// The trusted roots: `None` when there are none to check against.
    fn roots(&self) -> Result<Option<Roots>, TlsError> {
        let verifying = matches!(self.mode, SslMode::VerifyCa | SslMode::VerifyFull);
        let path = match self.root_cert.as_deref() {
            Some("system") => {
                if self.mode != SslMode::VerifyFull {
                    return Err(TlsError::Settings(format!(
                        "weak sslmode \"{}\" may not be used with sslrootcert=system (use \
                         \"verify-full\")",
                        self.mode
                    )));
                }
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

    /// The client certificate chain and key, if one is named or at its default place.
    #[allow(clippy::type_complexity)]
    fn client_certificate(
        &self,
    ) -> Result<Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>, TlsError> {
        let cert = match &self.cert {
            Some(path) => path.clone(),
            None => match default_file("postgresql.crt") {
                Some(path) if path.exists() => path,
                _ => return Ok(None),
            },
        };
        let certs = read_certificates(&cert, "client certificate file")?;
        let key_path = self
            .key
            .clone()
            .or_else(|| default_file("postgresql.key"))
            .ok_or_else(|| {
                TlsError::Settings(format!(
                    "certificate present, but not private key file (sslkey) for \"{}\"",
                    cert.display()
                ))
            })?;
        let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| TlsError::File {
            what: "private key file",
            path: key_path.clone(),
            reason: pem_reason(&e),
        })?;
        Ok(Some((certs, key)))
    }
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
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(pem_reason(&e)))?
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
            root_cert: root_cert.map(str::to_owned),
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
    fn named_client_certificates_must_exist_and_be_named_in_the_error() {
        // No root certificate asked for here.
        let mut s = settings(SslMode::Require, None);
        s.root_cert = None;
        if default_file("root.crt").is_none_or(|p| !p.exists()) {
            let err = s.client_config().unwrap_err();
            assert!(err.to_string().contains("no-client.crt"), "{err}");
        }
    }

    #[test]
    fn system_roots_need_verify_full() {
        for mode in [SslMode::Prefer, SslMode::Require, SslMode::VerifyCa] {
            let err = settings(mode, Some("system")).client_config().unwrap_err();
            assert!(err.to_string().contains("verify-full"), "{mode}: {err}");
        }
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
