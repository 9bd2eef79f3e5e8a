//! `sslmode`: whether to use TLS and how much to check, with libpq's meanings.

use std::fmt;
use std::str::FromStr;

use crate::TlsError;

/// libpq's `sslmode`.
///
/// | mode | TLS | server certificate |
/// |---|---|---|
/// | `disable` | never | — |
/// | `allow` | only if a plain connection is refused | as `require` |
/// | `prefer` (default) | if the server offers it, else plain | as `require` |
/// | `require` | always | not checked, unless a root certificate is at hand: then as `verify-ca` |
/// | `verify-ca` | always | signed by a trusted root |
/// | `verify-full` | always | signed by a trusted root and issued for the host name |
///
/// ```
/// use copyman_tls::SslMode;
///
/// let mode: SslMode = "verify-full".parse().unwrap();
/// assert!(mode.requires_tls());
/// assert_eq!(mode.to_string(), "verify-full");
/// assert!("verify".parse::<SslMode>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    /// Never TLS.
    Disable,
    /// Plain first; TLS only when the server refuses the plain connection.
    Allow,
    /// TLS when the server supports it, plain otherwise.
    #[default]
    Prefer,
    /// TLS always; the certificate is not checked unless a root certificate is given or in
    /// `~/.postgresql/root.crt`.
    Require,
    /// TLS always, with a certificate chaining to a trusted root.
    VerifyCa,
    /// TLS always, with a certificate chaining to a trusted root and naming the host.
    VerifyFull,
}

/// One way of talking to the server, tried in the order [`SslMode::attempts`] gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encryption {
    /// The plain PostgreSQL protocol.
    Plain,
    /// An SSLRequest, then TLS (or, under `allow`/`prefer`, plain on the same socket if the
    /// server says it has no TLS).
    Tls,
}

impl SslMode {
    /// The mode's name as libpq spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Allow => "allow",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }

    /// Whether a connection without TLS is refused.
    pub fn requires_tls(self) -> bool {
        matches!(self, Self::Require | Self::VerifyCa | Self::VerifyFull)
    }

    /// The connection attempts to make on one TCP host, in order: the next is tried when the
    /// server refuses the one before it (an error during startup, as libpq does).
    pub fn attempts(self) -> &'static [Encryption] {
        match self {
            Self::Disable => &[Encryption::Plain],
            Self::Allow => &[Encryption::Plain, Encryption::Tls],
            Self::Prefer => &[Encryption::Tls, Encryption::Plain],
            Self::Require | Self::VerifyCa | Self::VerifyFull => &[Encryption::Tls],
        }
    }
}

impl FromStr for SslMode {
    type Err = TlsError;

    fn from_str(s: &str) -> Result<Self, TlsError> {
        Ok(match s {
            "disable" => Self::Disable,
            "allow" => Self::Allow,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            other => {
                return Err(TlsError::Settings(format!(
                    "invalid sslmode {other:?}: expected disable, allow, prefer, require, \
                     verify-ca or verify-full"
                )));
            }
        })
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
