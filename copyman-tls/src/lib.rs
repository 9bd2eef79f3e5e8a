//! libpq's TLS settings on rustls, for copyman's raw sessions: what both adapters share.
//!
//! A PostgreSQL connection starts TLS in the middle of its protocol: the client sends an
//! [`SSL_REQUEST`], the server answers one byte — `S` (go ahead) or `N` (no TLS here) — and only
//! after `S` does the TLS handshake begin, on the same socket, before the StartupMessage. This
//! crate holds everything about that which is not a socket:
//!
//! - [`SslMode`] and [`TlsSettings`] (`sslmode`, `sslrootcert`, `sslcert`, `sslkey`, and the
//!   [`TlsVersion`] bounds `ssl_min_protocol_version`/`ssl_max_protocol_version`) with libpq's
//!   meanings, taken out of a connection string ([`TlsSettings::take_from`], the first four) and
//!   turned into a rustls [`ClientConfig`](rustls::ClientConfig) ([`TlsSettings::client_config`]);
//! - [`negotiate`], which reads the server's answer to the SSLRequest under a mode;
//! - [`server_end_point`], the channel binding data for SCRAM-SHA-256-PLUS;
//! - [`read_settings_file`], the files those settings name, a pipe read once per process;
//! - [`TlsClient`] ([`nonblocking`]), rustls' session over a socket the adapters lend it: the
//!   rules of TLS IO on a socket that may not block, written once for both adapters.
//!
//! Connection strings themselves are read by `copyman-conninfo`.
//!
//! The adapters (`copyman-sync`, `copyman-async`) own the sockets and wait on them: rustls is
//! sans-IO itself, and this crate opens no socket.
//! TLS is only spoken over TCP: for Unix sockets `sslmode` is ignored, as in libpq.

mod binding;
mod files;
mod mode;
pub mod nonblocking;
mod settings;
mod verify;

use std::path::PathBuf;

pub use binding::server_end_point;
pub use files::read_settings_file;
pub use mode::{Encryption, SslMode};
pub use nonblocking::TlsClient;
pub use settings::{PARAMETERS, TlsSettings, TlsVersion, server_name};

/// The rustls crate, for the types in this crate's API.
pub use rustls;

/// The SSLRequest message: length 8, then the request code 80877103.
pub const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The settings are wrong or contradict each other.
    #[error("{0}")]
    Settings(String),
    /// The connection string could not be read to take the settings out of it (a quote left
    /// open, a word without `=`): what was wrong. Not a TLS matter; the adapters say it as an
    /// invalid connection string.
    #[error("invalid connection string: {0}")]
    Conninfo(String),
    /// A certificate or key file could not be read.
    #[error("{what} \"{}\": {reason}", path.display())]
    File {
        /// Which file it was meant to be.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why it could not be used.
        reason: String,
    },
    /// `verify-ca`/`verify-full` without root certificates to verify against.
    #[error(
        "root certificate file \"{}\" does not exist; either provide the file, use the system's \
         trusted roots with sslrootcert=system, or change sslmode to disable server certificate \
         verification",
        path.display()
    )]
    NoRootCertificate {
        /// Where the file was looked for.
        path: PathBuf,
    },
    /// The server answered the SSLRequest with `N` and the mode requires TLS.
    #[error("server {target} does not support SSL, but SSL was required (sslmode={mode})")]
    NotSupported {
        /// The server.
        target: String,
        /// The mode that required TLS.
        mode: SslMode,
    },
    /// The server answered the SSLRequest with neither `S` nor `N`: with `E`, an error (what a
    /// server that could not start a backend for the connection sends, its words after it).
    #[error("{}", bad_response(target, *byte))]
    BadResponse {
        /// The server.
        target: String,
        /// What it sent.
        byte: u8,
    },
    /// The TLS handshake failed: a certificate that does not verify, a name that does not match,
    /// a protocol error.
    #[error("TLS handshake with {target} failed: {reason}")]
    Handshake {
        /// The server.
        target: String,
        /// What went wrong: a refused certificate in words (rustls' error after them in
        /// parentheses), else what rustls said.
        reason: String,
    },
}

/// What a handshake that found nothing in common means: copyman's TLS (rustls, with the ring
/// provider) offers fewer key exchange groups and signature schemes than OpenSSL, which libpq
/// and psql use.
const NOTHING_IN_COMMON: &str = "the server and copyman share no key exchange group or \
    signature scheme: copyman's TLS speaks the X25519, P-256 and P-384 groups and ECDSA \
    P-256/P-384, RSA and Ed25519 certificates, not a P-521, RSA-PSS-key or Ed448 certificate \
    nor ssl_ecdh_curve = secp521r1 alone nor TLS 1.2 with DHE ciphers only (psql's OpenSSL \
    does): give the server a certificate of a kind listed (and ssl_ecdh_curve = prime256v1, \
    ssl_ciphers their defaults)";

impl TlsError {
    /// A handshake error from the IO error rustls' IO helpers return (which wraps its own
    /// error). A server certificate the verifier refused is said in words, rustls' own error
    /// after them in parentheses. Under `allow`/`prefer`, TLS settings whose files could not be
    /// used fail the handshake with their own error ([`TlsSettings::client_config`]): that is
    /// [`TlsError::Settings`], in its words. A handshake that found nothing in common with
    /// the server is said as that, with what copyman's TLS speaks.
    ///
    /// ```
    /// use copyman_tls::TlsError;
    ///
    /// let alert = rustls::Error::AlertReceived(rustls::AlertDescription::HandshakeFailure);
    /// let io = std::io::Error::new(std::io::ErrorKind::InvalidData, alert);
    /// let said = TlsError::handshake("db:5432", &io).to_string();
    /// assert!(said.starts_with("TLS handshake with db:5432 failed: the server and copyman share no"));
    /// assert!(said.ends_with("(received fatal alert: HandshakeFailure)"));
    /// ```
    pub fn handshake(target: impl Into<String>, error: &std::io::Error) -> Self {
        if let Some(rustls::Error::Other(rustls::OtherError(other))) = error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            && other.is::<verify::SetupError>()
        {
            return Self::Settings(other.to_string());
        }
        let reason = match error.get_ref() {
            Some(inner) => match inner.downcast_ref::<rustls::Error>() {
                Some(rustls::Error::InvalidCertificate(rustls::CertificateError::Other(
                    rustls::OtherError(other),
                ))) if other.is::<verify::Refused>() => other.to_string(),
                // Nothing in common (conn50 F1: the bare alert, where psql's OpenSSL agreed).
                Some(
                    rustls::Error::AlertReceived(rustls::AlertDescription::HandshakeFailure)
                    | rustls::Error::PeerIncompatible(_),
                ) => format!("{NOTHING_IN_COMMON} ({inner})"),
                _ => inner.to_string(),
            },
            None => error.to_string(),
        };
        Self::Handshake {
            target: target.into(),
            reason,
        }
    }
}

/// An IO error of a connection in words: a fatal TLS alert the server sent is said for what it
/// means — most often the client certificate refused once the handshake ended (TLS 1.3 says it
/// on the first read: "received fatal alert: UnknownCA" read as a network fault, conn42 F5) —
/// else the error's own words after "i/o error on the connection".
///
/// ```
/// use copyman_tls::io_error_words;
///
/// let alert = rustls::Error::AlertReceived(rustls::AlertDescription::UnknownCA);
/// let error = std::io::Error::new(std::io::ErrorKind::InvalidData, alert);
/// assert!(io_error_words(&error).starts_with("the server refused the client certificate"));
/// let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
/// assert!(io_error_words(&reset).starts_with("i/o error on the connection: "));
/// let reset = std::io::Error::from_raw_os_error(104);
/// assert_eq!(io_error_words(&reset), "i/o error on the connection: Connection reset by peer");
/// ```
pub fn io_error_words(error: &std::io::Error) -> String {
    use rustls::AlertDescription as A;
    let alert = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .and_then(|e| match e {
            rustls::Error::AlertReceived(alert) => Some(*alert),
            _ => None,
        });
    let refused = "the server refused the client certificate (sslcert)";
    match alert {
        // Its words as libpq says them, without Rust's "(os error N)" (recheck64 F2).
        None => {
            let words = error.to_string();
            let code = error
                .raw_os_error()
                .map(|code| format!(" (os error {code})"));
            let words = code
                .and_then(|code| words.strip_suffix(&code).map(str::to_owned))
                .unwrap_or(words);
            format!("i/o error on the connection: {words}")
        }
        Some(A::UnknownCA) => format!(
            "{refused}: it is not signed by a CA the server trusts (its ssl_ca_file) (TLS \
             alert unknown_ca)"
        ),
        Some(A::CertificateExpired) => format!("{refused}: it has expired (TLS alert)"),
        Some(A::CertificateRevoked) => format!("{refused}: it is revoked (TLS alert)"),
        Some(A::BadCertificate | A::UnsupportedCertificate | A::CertificateUnknown) => {
            format!(
                "{refused} (TLS alert {alert:?})",
                alert = alert.unwrap_or(A::BadCertificate)
            )
        }
        Some(A::CertificateRequired) => "the server asks for a client certificate and none was \
             given (sslcert, sslkey) (TLS alert certificate_required)"
            .to_owned(),
        Some(other) => format!("the server ended TLS: received fatal alert {other:?}"),
    }
}

/// The socket address of a name in Linux's abstract namespace (libpq's `host=@name`, which
/// copyman-core's `connect::abstract_name` reads), for both adapters' Unix sockets.
///
/// # Errors
/// A name too long for a socket address; an operating system other than Linux
/// ([`std::io::ErrorKind::Unsupported`]).
pub fn abstract_address(name: &[u8]) -> std::io::Result<std::os::unix::net::SocketAddr> {
    #[cfg(target_os = "linux")]
    {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(name)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = name;
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "abstract Unix sockets (host=@name) exist only on Linux",
        ))
    }
}

/// What reading the answer to the [`SSL_REQUEST`] fails with when the server closed the
/// connection first, in libpq's words (it was Rust's "failed to fill whole buffer").
pub fn closed_before_answer() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        "server closed the connection unexpectedly, before it answered the SSL negotiation",
    )
}

/// [`TlsError::BadResponse`]'s words.
fn bad_response(target: &str, byte: u8) -> String {
    match byte {
        b'E' => format!(
            "server {target} answered the SSL negotiation with an error: it could not start a \
             backend for the connection (out of processes or memory? its log says why)"
        ),
        byte => {
            let shown = if byte.is_ascii_graphic() {
                format!(" ('{}')", char::from(byte))
            } else {
                String::new()
            };
            format!(
                "received invalid response to SSL negotiation from {target}: byte \
                 0x{byte:02x}{shown}: not a PostgreSQL server, or another service on that port"
            )
        }
    }
}

/// Reads the server's one-byte answer to the [`SSL_REQUEST`]: `Ok(true)` to start the TLS
/// handshake, `Ok(false)` to go on without TLS on the same socket (the server has none and
/// `mode` allows that).
///
/// ```
/// use copyman_tls::{SslMode, negotiate};
///
/// assert!(negotiate(b'S', "db:5432", SslMode::Require).unwrap());
/// assert!(!negotiate(b'N', "db:5432", SslMode::Prefer).unwrap());
/// assert!(negotiate(b'N', "db:5432", SslMode::Require).is_err());
/// assert!(negotiate(b'E', "db:5432", SslMode::Prefer).is_err());
/// ```
///
/// # Errors
/// [`TlsError::NotSupported`], [`TlsError::BadResponse`].
pub fn negotiate(answer: u8, target: &str, mode: SslMode) -> Result<bool, TlsError> {
    match answer {
        b'S' => Ok(true),
        b'N' if mode.requires_tls() => Err(TlsError::NotSupported {
            target: target.to_owned(),
            mode,
        }),
        b'N' => Ok(false),
        byte => Err(TlsError::BadResponse {
            target: target.to_owned(),
            byte,
        }),
    }
}
