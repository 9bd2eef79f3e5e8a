//! The server-certificate checks libpq's modes need, on rustls' webpki verifier: `require`
//! without root certificates checks nothing ([`Unverified`]); with them every mode checks the
//! chain, and `verify-full` the name too ([`Rooted`]).
//!
//! What differs from webpki, as libpq (OpenSSL) does it:
//!
//! - A server certificate that is itself one of the trusted roots (byte for byte) is trusted as
//!   it stands: PostgreSQL's documented self-signed server certificate is `CA:TRUE`, which webpki
//!   refuses as an end entity. Its validity period is still checked, and under `verify-full` its
//!   name. Every other certificate goes through webpki unchanged.
//! - A refused certificate is said in words a DBA reads ([`Refused`]), rustls' own error after
//!   them in parentheses.
//! - Under `verify-full`, a name webpki refuses (it reads only the subjectAltName entries of the
//!   host's kind) is compared as libpq compares it ([`by_libpq_rules`]): a certificate without a
//!   subjectAltName is valid for the host its common name names, a host name or an address; a
//!   refusal says the names compared, in libpq's words ([`NameMismatch`]).
//! - Under `require`, an X.509 version 1 certificate (webpki reads only version 3; PostgreSQL's
//!   documented CA recipe makes one) is taken too: the handshake's signature is checked against
//!   its public key ([`by_key_if_v1`]). Under the `verify-*` modes it is refused, in words.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::fmt;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, Error, OtherError, SignatureScheme};

use crate::binding::tlv;

/// `require` without a root certificate: any certificate is taken (as libpq does), but the
/// handshake's signatures are still checked, so the session's keys belong to that certificate —
/// which is what channel binding then pins.
#[derive(Debug)]
pub(crate) struct Unverified {
    pub(crate) algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        let verified = verify_tls12_signature(message, cert, dss, &self.algorithms);
        by_key_if_v1(verified, message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        let verified = verify_tls13_signature(message, cert, dss, &self.algorithms);
        by_key_if_v1(verified, message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Under `allow`/`prefer`, TLS settings whose files could not be used (a client key others may
/// read, a root file that cannot be read, …): as libpq, whose `initialize_SSL` reads them only
/// once the server agreed to TLS, that is no error until TLS is attempted — a server without TLS
/// never sees it — and then it is that attempt's error (after which `prefer` goes on without
/// TLS).
/// Every server certificate is refused with it, before the client sends anything of its own;
/// [`TlsError::handshake`](crate::TlsError::handshake) says it as it is.
#[derive(Debug)]
pub(crate) struct SetupFailed {
    /// The settings' error, in its words.
    pub(crate) error: String,
    pub(crate) algorithms: WebPkiSupportedAlgorithms,
}

impl SetupFailed {
    fn refuse(&self) -> Error {
        Error::Other(OtherError(Arc::new(SetupError(self.error.clone()))))
    }
}

impl ServerCertVerifier for SetupFailed {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Err(self.refuse())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        Err(self.refuse())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        Err(self.refuse())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The error of TLS settings that could not be used ([`SetupFailed`]), as it travels inside
/// rustls' error.
#[derive(Debug)]
pub(crate) struct SetupError(pub(crate) String);

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SetupError {}

/// Whether rustls refused `error`'s certificate for being X.509 version 1 (webpki reads only
/// version 3): PostgreSQL's documented recipe for a CA-signed server certificate makes one with
/// OpenSSL 3.0 (`openssl x509 -req` without extensions), which libpq takes.
fn is_v1(error: &Error) -> bool {
    matches!(
        error,
        Error::InvalidCertificate(CertificateError::Other(OtherError(e)))
            if format!("{e:?}") == "UnsupportedCertVersion"
    )
}

/// rustls' check of the handshake's signature, `verified`; where it could not read the
/// certificate only because it is X.509 version 1, the signature checked against the
/// certificate's public key itself (its `subjectPublicKeyInfo`), as rustls would have: the
/// session's keys still belong to that certificate.
fn by_key_if_v1(
    verified: Result<HandshakeSignatureValid, Error>,
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
    algorithms: &WebPkiSupportedAlgorithms,
) -> Result<HandshakeSignatureValid, Error> {
    match verified {
        Err(error) if is_v1(&error) => {
            let (algorithm, key) = public_key(cert.as_ref()).ok_or(error)?;
            let candidates = algorithms
                .mapping
                .iter()
                .find(|(scheme, _)| *scheme == dss.scheme)
                .map_or(&[][..], |(_, candidates)| *candidates);
            let alg = candidates
                .iter()
                .find(|alg| alg.public_key_alg_id().as_ref() == algorithm)
                .ok_or(Error::InvalidCertificate(CertificateError::BadSignature))?;
            alg.verify_signature(key, message, dss.signature())
                .map(|()| HandshakeSignatureValid::assertion())
                .map_err(|_| Error::InvalidCertificate(CertificateError::BadSignature))
        }
        other => other,
    }
}

/// libpq's rules for the host name under `verify-full` (`fe-secure-common.c`,
/// `pgtls_verify_peer_name_matches_certificate_guts`), for a certificate webpki refused for the
/// name (webpki reads only subjectAltName entries of the host's own kind): every dNSName and
/// iPAddress entry of the subjectAltName is compared with the host — a dNSName as a name (without
/// case, a leading `*.` standing for one label; a host written as an address is compared as
/// written), an iPAddress with the host read as an address —, and the subject's (first) common
/// name is compared as a name too unless the subjectAltName has an entry of the host's kind
/// (dNSName for a host name, iPAddress for an address). So a certificate without a
/// subjectAltName, such as PostgreSQL's documented self-signed recipe makes, is valid for the host
/// its common name names, an address too (`-subj "/CN=10.0.0.5"` for `host=10.0.0.5`).
///
/// A refusal ([`NameMismatch`]) says the names compared, in libpq's words.
fn by_libpq_rules(der: &[u8], host: &ServerName<'_>) -> Result<(), Error> {
    let names =
        certificate_names(der).ok_or(Error::InvalidCertificate(CertificateError::BadEncoding))?;
    let host = host.to_str();
    let host_ip = host.parse::<IpAddr>().ok();
    let mut check_cn = true;
    let mut compared = Vec::new();
    for alt in &names.alt {
        let matched = match alt {
            AltName::Dns(name) => {
                check_cn &= host_ip.is_some();
                compared.push(name.clone());
                name_matches(name, &host)
            }
            AltName::Ip(octets) => {
                check_cn &= host_ip.is_none();
                compared.push(address(octets));
                host_ip.is_some_and(|ip| match ip {
                    IpAddr::V4(ip) => ip.octets()[..] == octets[..],
                    IpAddr::V6(ip) => ip.octets()[..] == octets[..],
                })
            }
        };
        if matched {
            return Ok(());
        }
    }
    if check_cn && let Some(name) = names.common_name {
        if name_matches(&name, &host) {
            return Ok(());
        }
        compared.push(name);
    }
    Err(Error::InvalidCertificate(CertificateError::Other(
        OtherError(Arc::new(NameMismatch {
            host: host.into_owned(),
            names: compared,
        })),
    )))
}

/// libpq's `pq_verify_peer_name_matches_certificate_name`: the name equal to the host without
/// case, or a leading `*.` standing for one (non-empty) label of it. A trailing dot of the host
/// does not count; a name with a NUL in it matches nothing.
fn name_matches(name: &str, host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let name = name.to_ascii_lowercase();
    if name.contains('\0') {
        return false;
    }
    match name.strip_prefix("*.") {
        Some(suffix) => host
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix),
        None => name == host,
    }
}

/// An iPAddress entry as libpq shows it.
fn address(octets: &[u8]) -> String {
    match <[u8; 4]>::try_from(octets) {
        Ok(v4) => Ipv4Addr::from(v4).to_string(),
        Err(_) => match <[u8; 16]>::try_from(octets) {
            Ok(v6) => Ipv6Addr::from(v6).to_string(),
            Err(_) => format!("(an address of {} bytes)", octets.len()),
        },
    }
}

/// The host names a server certificate did not match, by libpq's rules ([`by_libpq_rules`]): in
/// rustls' words, then libpq's (`pq_verify_peer_name_matches_certificate`): the first name
/// compared and how many others were.
#[derive(Debug)]
pub(crate) struct NameMismatch {
    host: String,
    names: Vec<String>,
}

impl fmt::Display for NameMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = &self.host;
        // rustls' first words for it, then libpq's rather than rustls' (which cite a
        // subjectAltName the certificate may not have).
        write!(f, "certificate not valid for name \"{host}\"; ")?;
        match self.names.as_slice() {
            [] => f.write_str("could not get server's host name from server certificate"),
            [name] => write!(
                f,
                "server certificate for \"{name}\" does not match host name \"{host}\""
            ),
            [name, others @ ..] => write!(
                f,
                "server certificate for \"{name}\" (and {} other name{}) does not match host \
                 name \"{host}\"",
                others.len(),
                if others.len() == 1 { "" } else { "s" }
            ),
        }
    }
}

impl std::error::Error for NameMismatch {}

/// A subjectAltName entry that names a host.
#[derive(Debug, Clone, PartialEq, Eq)]
enum AltName {
    /// dNSName.
    Dns(String),
    /// iPAddress: 4 or 16 octets.
    Ip(Vec<u8>),
}

/// The names of a certificate that may name a host.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Names {
    /// The subject's first common name (libpq's `X509_NAME_get_index_by_NID(…, -1)`).
    common_name: Option<String>,
    /// The subjectAltName's dNSName and iPAddress entries, in order (none without one).
    alt: Vec<AltName>,
}

/// A certificate's [`Names`], of any X.509 version.
fn certificate_names(der: &[u8]) -> Option<Names> {
    /// `2.5.4.3` (commonName) and `2.5.29.17` (subjectAltName), DER-encoded.
    const CN: &[u8] = &[0x55, 0x04, 0x03];
    const SAN: &[u8] = &[0x55, 0x1d, 0x11];
    // After serialNumber, signature, issuer, validity.
    let (0x30, mut subject, rest) = tlv(tbs_fields(der, 4)?)? else {
        return None;
    };
    let mut common_name = None;
    while !subject.is_empty() {
        let (0x31, mut set, after) = tlv(subject)? else {
            return None;
        };
        subject = after;
        while !set.is_empty() {
            let (0x30, attribute, after) = tlv(set)? else {
                return None;
            };
            set = after;
            let (0x06, oid, value) = tlv(attribute)? else {
                return None;
            };
            let (_, value, _) = tlv(value)?;
            if oid == CN && common_name.is_none() {
                common_name = Some(String::from_utf8_lossy(value).into_owned());
            }
        }
    }
    // subjectPublicKeyInfo, then issuerUniqueID [1], subjectUniqueID [2], extensions [3].
    let mut rest = tlv(rest)?.2;
    let mut alt = Vec::new();
    while let Some((tag, value, after)) = tlv(rest) {
        rest = after;
        if tag != 0xa3 {
            continue;
        }
        let (0x30, mut extensions, _) = tlv(value)? else {
            return None;
        };
        while !extensions.is_empty() {
            let (0x30, extension, after) = tlv(extensions)? else {
                return None;
            };
            extensions = after;
            let (0x06, oid, mut value) = tlv(extension)? else {
                return None;
            };
            if oid != SAN {
                continue;
            }
            // critical BOOLEAN DEFAULT FALSE, then extnValue OCTET STRING of GeneralNames.
            if value.first() == Some(&0x01) {
                value = tlv(value)?.2;
            }
            let (0x04, general_names, _) = tlv(value)? else {
                return None;
            };
            let (0x30, mut general_names, _) = tlv(general_names)? else {
                return None;
            };
            while !general_names.is_empty() {
                let (tag, name, after) = tlv(general_names)?;
                general_names = after;
                match tag {
                    // dNSName [2] IA5String, iPAddress [7] OCTET STRING (IMPLICIT).
                    0x82 => alt.push(AltName::Dns(String::from_utf8_lossy(name).into_owned())),
                    0x87 => alt.push(AltName::Ip(name.to_vec())),
                    _ => {}
                }
            }
        }
    }
    Some(Names { common_name, alt })
}

/// The contents of a certificate's `subjectPublicKeyInfo` SEQUENCE (RFC 5280 4.1.2.7), of any
/// X.509 version.
pub(crate) fn subject_public_key_info(der: &[u8]) -> Option<&[u8]> {
    // After serialNumber, signature, issuer, validity, subject.
    let (0x30, spki, _) = tlv(tbs_fields(der, 5)?)? else {
        return None;
    };
    Some(spki)
}

/// A certificate's `subjectPublicKeyInfo` (RFC 5280 4.1.2.7): its algorithm (the
/// AlgorithmIdentifier's contents) and its key (the BIT STRING's bits).
fn public_key(der: &[u8]) -> Option<(&[u8], &[u8])> {
    let spki = subject_public_key_info(der)?;
    let (0x30, algorithm, rest) = tlv(spki)? else {
        return None;
    };
    let (0x03, bits, _) = tlv(rest)? else {
        return None;
    };
    // No unused bits in a key.
    let (0, key) = bits.split_first()? else {
        return None;
    };
    Some((algorithm, key))
}

/// Root certificates at hand: the chain must lead to one of them; under `verify-full`
/// (`check_name`) the certificate must name the host too.
#[derive(Debug)]
pub(crate) struct Rooted {
    pub(crate) webpki: Arc<WebPkiServerVerifier>,
    /// The trusted roots as read (DER), to know a server certificate that is one of them.
    pub(crate) roots: Vec<CertificateDer<'static>>,
    /// Where the roots came from, for the words of a refusal: `sslrootcert=FILE`.
    pub(crate) source: String,
    /// `verify-full`: the certificate must be valid for the host name.
    pub(crate) check_name: bool,
}

impl Rooted {
    /// The checks, before a refusal is put in words.
    fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        if self
            .roots
            .iter()
            .any(|root| root.as_ref() == end_entity.as_ref())
        {
            // Trusted as it stands (OpenSSL's chain of one trust anchor): its dates, and its
            // name under verify-full, are all that is left to check.
            check_validity(end_entity, now)?;
            if self.check_name {
                let named = ParsedCertificate::try_from(end_entity)
                    .and_then(|parsed| rustls::client::verify_server_name(&parsed, server_name));
                if named.is_err() {
                    by_libpq_rules(end_entity, server_name)?;
                }
            }
            return Ok(ServerCertVerified::assertion());
        }
        // webpki checks the name only after the chain verified.
        match self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => by_libpq_rules(end_entity, server_name).map(|()| ServerCertVerified::assertion()),
            other => other,
        }
    }
}

impl ServerCertVerifier for Rooted {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        self.check(end_entity, intermediates, server_name, ocsp_response, now)
            .map_err(|e| match e {
                Error::InvalidCertificate(ref kind) => match words(kind, &self.source, server_name)
                {
                    Some(words) => {
                        // A name refused by libpq's rules says so in libpq's words; rustls'
                        // would cite a subjectAltName the certificate may not have.
                        let detail = match kind {
                            CertificateError::Other(OtherError(other))
                                if other.is::<NameMismatch>() =>
                            {
                                format!("certificate verify failed: {other}")
                            }
                            _ => format!("certificate verify failed: {e}"),
                        };
                        Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(
                            Refused { words, detail },
                        ))))
                    }
                    None => e,
                },
                other => other,
            })
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// A server certificate refused, in a DBA's words, with rustls' error (or libpq's words for a
/// name, [`NameMismatch`]) for the detail.
///
/// It travels inside rustls' error as [`CertificateError::Other`] (so the alert sent is
/// `certificate_unknown`), and [`TlsError::handshake`](crate::TlsError::handshake) takes it out.
#[derive(Debug)]
pub(crate) struct Refused {
    words: String,
    detail: String,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.words, self.detail)
    }
}

// Display says the detail: no source, or it would be said twice.
impl std::error::Error for Refused {}

/// The words for the common refusals; `None` keeps rustls' text.
fn words(kind: &CertificateError, roots: &str, host: &ServerName<'_>) -> Option<String> {
    let host = host.to_str();
    Some(match kind {
        // The words libpq users know from OpenSSL go with rustls' in the parentheses.
        CertificateError::UnknownIssuer => {
            format!("the server's certificate is not signed by a root in {roots}")
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            format!("the server's certificate is not valid for host {host}")
        }
        CertificateError::ExpiredContext { not_after, .. } => format!(
            "the server's certificate expired at {}",
            utc(not_after.as_secs())
        ),
        CertificateError::Expired => "the server's certificate has expired".to_owned(),
        CertificateError::NotValidYetContext { not_before, .. } => format!(
            "the server's certificate is not valid before {}",
            utc(not_before.as_secs())
        ),
        CertificateError::NotValidYet => "the server's certificate is not valid yet".to_owned(),
        CertificateError::Revoked => {
            "the server's certificate is revoked (by ~/.postgresql/root.crl)".to_owned()
        }
        CertificateError::UnknownRevocationStatus => "the revocation list \
            ~/.postgresql/root.crl has no list from the issuer of a certificate of the server's \
            chain: its revocation cannot be checked (libpq refuses it too): add that issuer's \
            list to it, or remove it"
            .to_owned(),
        CertificateError::ExpiredRevocationListContext { next_update, .. } => format!(
            "the revocation list ~/.postgresql/root.crl expired at {}: renew it (or remove it)",
            utc(next_update.as_secs())
        ),
        CertificateError::ExpiredRevocationList => {
            "the revocation list ~/.postgresql/root.crl has expired: renew it (or remove it)"
                .to_owned()
        }
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            "the server's certificate is not meant for a TLS server (extended key usage)".to_owned()
        }
        CertificateError::BadSignature => format!(
            "the server's certificate chain has a bad signature (certificate verify failed \
             against {roots})"
        ),
        CertificateError::Other(OtherError(e)) if e.is::<NameMismatch>() => {
            format!("the server's certificate is not valid for host {host}")
        }
        // webpki's own errors, which rustls passes on as they are; their Debug text is their name
        // (rustls-webpki is not a dependency of this crate to match on them).
        CertificateError::Other(OtherError(e)) => match format!("{e:?}").as_str() {
            "CaUsedAsEndEntity" => format!(
                "the server's certificate is a CA certificate (CA:TRUE) that is not itself one of \
                 the roots in {roots}"
            ),
            // (Not "or sslmode=require": that verifies no server at all, and with a root file
            // it checks the chain all the same: conn48 F5.)
            "UnsupportedCertVersion" => "the server's certificate is X.509 version 1, which \
                copyman cannot verify against roots (libpq can: PostgreSQL's documented openssl \
                recipe makes one): reissue it as version 3 (`openssl x509 -req … -extfile FILE`, \
                FILE naming its subjectAltName), as the server's certificate"
                .to_owned(),
            _ => return None,
        },
        _ => return None,
    })
}

/// A certificate's validity period checked at `now`, with webpki's errors.
fn check_validity(der: &[u8], now: UnixTime) -> Result<(), Error> {
    let (not_before, not_after) =
        validity(der).ok_or(Error::InvalidCertificate(CertificateError::BadEncoding))?;
    let time = now.as_secs();
    if time < not_before {
        return Err(CertificateError::NotValidYetContext {
            time: now,
            not_before: UnixTime::since_unix_epoch(std::time::Duration::from_secs(not_before)),
        }
        .into());
    }
    if time > not_after {
        return Err(CertificateError::ExpiredContext {
            time: now,
            not_after: UnixTime::since_unix_epoch(std::time::Duration::from_secs(not_after)),
        }
        .into());
    }
    Ok(())
}

/// A certificate's tbsCertificate (RFC 5280 4.1) from its serialNumber on, `skip` fields passed
/// over: the version [0] EXPLICIT, absent in version 1, is skipped first.
fn tbs_fields(der: &[u8], skip: usize) -> Option<&[u8]> {
    let (0x30, certificate, _) = tlv(der)? else {
        return None;
    };
    let (0x30, mut rest, _) = tlv(certificate)? else {
        return None;
    };
    if rest.first() == Some(&0xa0) {
        rest = tlv(rest)?.2;
    }
    for _ in 0..skip {
        rest = tlv(rest)?.2;
    }
    Some(rest)
}

/// A certificate's `notBefore` and `notAfter` (RFC 5280 4.1.2.5), in seconds since the epoch.
/// Times before 1970 count as 0.
fn validity(der: &[u8]) -> Option<(u64, u64)> {
    // After serialNumber, signature, issuer.
    let (0x30, validity, _) = tlv(tbs_fields(der, 3)?)? else {
        return None;
    };
    let (tag, not_before, rest) = tlv(validity)?;
    let not_before = time(tag, not_before)?;
    let (tag, not_after, _) = tlv(rest)?;
    Some((not_before, time(tag, not_after)?))
}

/// A UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`), as RFC 5280 writes them.
fn time(tag: u8, value: &[u8]) -> Option<u64> {
    let digits = |s: &[u8]| -> Option<i64> {
        s.iter().try_fold(0i64, |n, &b| {
            b.is_ascii_digit().then(|| n * 10 + i64::from(b - b'0'))
        })
    };
    let (year, rest) = match (tag, value.len()) {
        // RFC 5280: YY >= 50 is 19YY, else 20YY.
        (0x17, 13) => {
            let yy = digits(&value[..2])?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &value[2..])
        }
        (0x18, 15) => (digits(&value[..4])?, &value[4..]),
        _ => return None,
    };
    if rest[10] != b'Z' {
        return None;
    }
    let field = |i: usize| digits(&rest[i..i + 2]);
    let (month, day) = (field(0)?, field(2)?);
    let (hour, minute, second) = (field(4)?, field(6)?, field(8)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    Some(u64::try_from(seconds).unwrap_or(0))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Seconds since the epoch as `YYYY-MM-DD HH:MM:SS UTC` (Howard Hinnant's `civil_from_days`).
pub(crate) fn utc(secs: u64) -> String {
    let secs = i64::try_from(secs).unwrap_or(i64::MAX);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rustls::pki_types::pem::PemObject;

    use super::*;

    const SELF_SIGNED: &str = include_str!("../testdata/self-signed.pem");
    const CA: &str = include_str!("../testdata/ca.pem");

    fn der(pem: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
    }

    /// The verifier `verify-full` (or `verify-ca`) makes with `roots`.
    fn rooted(roots: &[&str], check_name: bool) -> Rooted {
        let certs: Vec<_> = roots.iter().map(|pem| der(pem)).collect();
        let mut store = rustls::RootCertStore::empty();
        store.add_parsable_certificates(certs.iter().cloned());
        let webpki = WebPkiServerVerifier::builder_with_provider(
            Arc::new(store),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .unwrap();
        Rooted {
            webpki,
            roots: certs,
            source: "sslrootcert=root.crt".into(),
            check_name,
        }
    }

    fn at(secs: u64) -> UnixTime {
        UnixTime::since_unix_epoch(Duration::from_secs(secs))
    }

    fn verify(v: &Rooted, cert: &str, host: &str, now: UnixTime) -> Result<(), String> {
        let name = ServerName::try_from(host.to_owned()).unwrap();
        v.verify_server_cert(&der(cert), &[], &name, &[], now)
            .map(|_| ())
            .map_err(|e| match e {
                Error::InvalidCertificate(CertificateError::Other(OtherError(e))) => e.to_string(),
                e => format!("{e:?}"),
            })
    }

    #[test]
    fn the_validity_period_is_read_from_the_certificate() {
        // openssl x509 -dates: notBefore=Nov 30 16:52:33 2026 GMT, notAfter=Nov 6 16:52:33 2126
        let (not_before, not_after) = validity(&der(SELF_SIGNED)).unwrap();
        assert_eq!(utc(not_before), "2026-11-30 16:52:33 UTC");
        assert_eq!(utc(not_after), "2126-11-06 16:52:33 UTC");
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_825_599), "2000-02-29 11:59:59 UTC");
        assert_eq!(time(0x17, b"491231235959Z"), Some(2_524_607_999));
        assert_eq!(time(0x17, b"500101000000Z"), Some(0));
        assert_eq!(time(0x18, b"20000229115959Z"), Some(951_825_599));
        assert_eq!(time(0x17, b"0001010000Z"), None);
        assert_eq!(time(0x18, b"2000022911595+Z"), None);
        assert_eq!(validity(b"\x30\x03\x30\x01\x00"), None);
    }

    #[test]
    fn a_server_certificate_that_is_a_trusted_root_is_checked_for_its_dates_and_name() {
        let (not_before, not_after) = validity(&der(SELF_SIGNED)).unwrap();
        let now = at(not_before + 60);
        for check_name in [false, true] {
            let v = rooted(&[CA, SELF_SIGNED], check_name);
            verify(&v, SELF_SIGNED, "localhost", now).unwrap();
            verify(&v, SELF_SIGNED, "127.0.0.1", now).unwrap();
            assert_eq!(
                verify(&v, SELF_SIGNED, "localhost", at(not_after + 1)).unwrap_err(),
                "the server's certificate expired at 2126-11-06 16:52:33 UTC (certificate verify \
                 failed: invalid peer certificate: certificate expired: verification time \
                 4949657554 (UNIX), but certificate is not valid after 4949657553 (1 seconds \
                 ago))"
            );
            let early = verify(&v, SELF_SIGNED, "localhost", at(not_before - 1)).unwrap_err();
            assert!(
                early.starts_with(
                    "the server's certificate is not valid before 2026-11-30 16:52:33 UTC \
                     (certificate verify failed: "
                ),
                "{early}"
            );
        }
        // The name: verify-full only.
        verify(
            &rooted(&[SELF_SIGNED], false),
            SELF_SIGNED,
            "db.example.com",
            now,
        )
        .unwrap();
        let said = verify(
            &rooted(&[SELF_SIGNED], true),
            SELF_SIGNED,
            "db.example.com",
            now,
        )
        .unwrap_err();
        assert!(
            said.starts_with(
                "the server's certificate is not valid for host db.example.com (certificate \
                 verify failed: certificate not valid for name \"db.example.com\"; server \
                 certificate for \"localhost\" (and 1 other name) does not match host name"
            ),
            "{said}"
        );
    }

    #[test]
    fn a_ca_certificate_that_is_not_itself_a_root_still_goes_through_webpki() {
        // The CA certificate presented as the server's, with only the self-signed one trusted.
        let v = rooted(&[SELF_SIGNED], true);
        let now = at(validity(&der(SELF_SIGNED)).unwrap().0 + 60);
        let said = verify(&v, CA, "localhost", now).unwrap_err();
        assert_eq!(
            said,
            "the server's certificate is a CA certificate (CA:TRUE) that is not itself one of the \
             roots in sslrootcert=root.crt (certificate verify failed: invalid peer certificate: \
             Other(OtherError(CaUsedAsEndEntity)))"
        );
    }

    #[test]
    fn certificate_names_and_the_public_key_are_read_of_any_version() {
        let with_san = der(include_str!("../testdata/self-signed.pem"));
        let cn_only = der(include_str!("../testdata/cn-only.pem"));
        let v1 = der(include_str!("../testdata/v1-server.pem"));
        let names = |common_name: &str, alt: Vec<AltName>| {
            Some(Names {
                common_name: Some(common_name.to_owned()),
                alt,
            })
        };
        assert_eq!(
            certificate_names(&with_san),
            names(
                "localhost",
                vec![
                    AltName::Dns("localhost".to_owned()),
                    AltName::Ip(vec![127, 0, 0, 1])
                ]
            )
        );
        assert_eq!(certificate_names(&cn_only), names("localhost", vec![]));
        assert_eq!(certificate_names(&v1), names("localhost", vec![]));
        assert!(public_key(&v1).is_some_and(|(_, key)| key.len() == 65));
        // The subjectPublicKeyInfo read as webpki reads it (version 3), and of version 1 too.
        let v3 = der(include_str!("../testdata/server.pem"));
        let parsed = ParsedCertificate::try_from(&v3).unwrap();
        let webpki_spki = parsed.subject_public_key_info();
        assert_eq!(
            subject_public_key_info(&v3),
            tlv(webpki_spki.as_ref()).map(|(_, contents, _)| contents)
        );
        assert!(ParsedCertificate::try_from(&v1).is_err());
        assert!(subject_public_key_info(&v1).is_some_and(|spki| spki.len() == 89));
        assert_eq!(certificate_names(b"not DER"), None);
    }

    #[test]
    fn host_names_are_matched_by_libpqs_rules() {
        let with_san = der(include_str!("../testdata/self-signed.pem"));
        let cn_only = der(include_str!("../testdata/cn-only.pem"));
        // CN=127.0.0.1 without a subjectAltName (the documented self-signed recipe for a server
        // reached by address); the same with a dNSName; CN=localhost with an iPAddress.
        let cn_ip = der(include_str!("../testdata/cn-ip.pem"));
        let cn_ip_dns = der(include_str!("../testdata/cn-ip-dns-san.pem"));
        let cn_name_ip = der(include_str!("../testdata/cn-name-ip-san.pem"));
        let check = |cert: &CertificateDer<'_>, h: &str| {
            by_libpq_rules(cert, &ServerName::try_from(h.to_owned()).unwrap()).map_err(
                |e| match e {
                    Error::InvalidCertificate(CertificateError::Other(OtherError(e))) => {
                        e.to_string()
                    }
                    e => format!("{e:?}"),
                },
            )
        };
        // No subjectAltName: the common name, for a host name or an address.
        check(&cn_only, "localhost").unwrap();
        check(&cn_only, "Localhost.").unwrap();
        check(&cn_ip, "127.0.0.1").unwrap();
        assert_eq!(
            check(&cn_ip, "127.0.0.2").unwrap_err(),
            "certificate not valid for name \"127.0.0.2\"; \
             server certificate for \"127.0.0.1\" does not match host name \"127.0.0.2\""
        );
        assert_eq!(
            check(&cn_only, "127.0.0.1").unwrap_err(),
            "certificate not valid for name \"127.0.0.1\"; \
             server certificate for \"localhost\" does not match host name \"127.0.0.1\""
        );
        // A subjectAltName of the host's kind: its common name does not count.
        check(&with_san, "localhost").unwrap();
        check(&with_san, "127.0.0.1").unwrap();
        assert_eq!(
            check(&with_san, "db.example.com").unwrap_err(),
            "certificate not valid for name \"db.example.com\"; \
             server certificate for \"localhost\" (and 1 other name) does not match host name \
             \"db.example.com\""
        );
        check(&cn_ip_dns, "db.example.com").unwrap();
        check(&cn_name_ip, "10.0.0.1").unwrap();
        assert_eq!(
            check(&cn_name_ip, "127.0.0.1").unwrap_err(),
            "certificate not valid for name \"127.0.0.1\"; \
             server certificate for \"10.0.0.1\" does not match host name \"127.0.0.1\""
        );
        // Of the other kind only: the common name counts too (libpq's rule, which RFC 6125 would
        // not have for a DNS-ID).
        check(&cn_ip_dns, "127.0.0.1").unwrap();
        check(&cn_name_ip, "localhost").unwrap();
        assert_eq!(
            check(&cn_ip_dns, "localhost").unwrap_err(),
            "certificate not valid for name \"localhost\"; \
             server certificate for \"db.example.com\" does not match host name \"localhost\""
        );
        assert_eq!(
            check(&cn_name_ip, "db.example.com").unwrap_err(),
            "certificate not valid for name \"db.example.com\"; \
             server certificate for \"10.0.0.1\" (and 1 other name) does not match host name \
             \"db.example.com\""
        );
        // Wildcards: one label, not empty.
        assert!(name_matches("*.example.com", "DB.example.com"));
        assert!(!name_matches("*.example.com", "a.db.example.com"));
        assert!(!name_matches("*.example.com", "example.com"));
        assert!(!name_matches("db\0.example.com", "db"));
    }

    #[test]
    fn verify_full_takes_a_common_name_that_is_the_hosts_address() {
        // The tester's F3: CN=127.0.0.1, no subjectAltName, reached as 127.0.0.1 — libpq
        // connects; copyman refused, citing a subjectAltName the certificate does not have.
        const CN_IP: &str = include_str!("../testdata/cn-ip.pem");
        let now = at(validity(&der(CN_IP)).unwrap().0 + 60);
        let v = rooted(&[CN_IP], true);
        verify(&v, CN_IP, "127.0.0.1", now).unwrap();
        assert_eq!(
            verify(&v, CN_IP, "10.0.0.9", now).unwrap_err(),
            "the server's certificate is not valid for host 10.0.0.9 (certificate verify failed: \
             certificate not valid for name \"10.0.0.9\"; server certificate for \"127.0.0.1\" \
             does not match host name \"10.0.0.9\")"
        );
        // Signed by a root rather than the root itself: webpki's refusal, then libpq's rules.
        let signed = rooted(&[CA], true);
        let server = include_str!("../testdata/server.pem");
        let now = at(validity(&der(server)).unwrap().0 + 60);
        verify(&signed, server, "localhost", now).unwrap();
        let said = verify(&signed, server, "db.example.com", now).unwrap_err();
        assert!(
            said.starts_with(
                "the server's certificate is not valid for host db.example.com (certificate \
                 verify failed: certificate not valid for name \"db.example.com\"; server \
                 certificate for \"localhost\""
            ),
            "{said}"
        );
    }
}
