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
//! - Under `verify-full`, a certificate without a subjectAltName is valid for the host its
//!   common name names ([`by_common_name`]; webpki reads only the subjectAltName).
//! - Under `require`, an X.509 version 1 certificate (webpki reads only version 3; PostgreSQL's
//!   documented CA recipe makes one) is taken too: the handshake's signature is checked against
//!   its public key ([`by_key_if_v1`]). Under the `verify-*` modes it is refused, in words.

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

/// A name refused by webpki (`error`), which reads only the subjectAltName: as libpq, a
/// certificate without one is valid for the host its subject's common name names (PostgreSQL's
/// documented self-signed recipe, `-subj "/CN=dbhost.yourdomain.com"`, makes such a one): the
/// name compared without case, a leading `*.` standing for one label. An IP address is never
/// matched so.
fn by_common_name(error: Error, der: &[u8], host: &ServerName<'_>) -> Result<(), Error> {
    let ServerName::DnsName(host) = host else {
        return Err(error);
    };
    let host = host.as_ref().trim_end_matches('.').to_ascii_lowercase();
    let Some((names, has_san)) = subject_names(der) else {
        return Err(error);
    };
    let matches = |name: &String| {
        let name = name.to_ascii_lowercase();
        match name.strip_prefix("*.") {
            Some(suffix) => host
                .split_once('.')
                .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix),
            None => name == host,
        }
    };
    match has_san || !names.iter().any(matches) {
        true => Err(error),
        false => Ok(()),
    }
}

/// A certificate's subject common names, and whether it has a subjectAltName extension.
fn subject_names(der: &[u8]) -> Option<(Vec<String>, bool)> {
    /// `2.5.4.3` (commonName) and `2.5.29.17` (subjectAltName), DER-encoded.
    const CN: &[u8] = &[0x55, 0x04, 0x03];
    const SAN: &[u8] = &[0x55, 0x1d, 0x11];
    // After serialNumber, signature, issuer, validity.
    let (0x30, mut subject, rest) = tlv(tbs_fields(der, 4)?)? else {
        return None;
    };
    let mut names = Vec::new();
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
            if oid == CN {
                names.push(String::from_utf8_lossy(value).into_owned());
            }
        }
    }
    // subjectPublicKeyInfo, then issuerUniqueID [1], subjectUniqueID [2], extensions [3].
    let mut rest = tlv(rest)?.2;
    let mut has_san = false;
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
            has_san |= matches!(tlv(extension), Some((0x06, SAN, _)));
        }
    }
    Some((names, has_san))
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
                let parsed = ParsedCertificate::try_from(end_entity)?;
                let named = rustls::client::verify_server_name(&parsed, server_name);
                named.or_else(|e| by_common_name(e, end_entity, server_name))?;
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
            Err(
                e @ Error::InvalidCertificate(
                    CertificateError::NotValidForName
                    | CertificateError::NotValidForNameContext { .. },
                ),
            ) => {
                by_common_name(e, end_entity, server_name).map(|()| ServerCertVerified::assertion())
            }
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
                    Some(words) => Error::InvalidCertificate(CertificateError::Other(OtherError(
                        Arc::new(Refused { words, detail: e }),
                    ))),
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

/// A server certificate refused, in a DBA's words, with rustls' error for the detail.
///
/// It travels inside rustls' error as [`CertificateError::Other`] (so the alert sent is
/// `certificate_unknown`), and [`TlsError::handshake`](crate::TlsError::handshake) takes it out.
#[derive(Debug)]
pub(crate) struct Refused {
    words: String,
    detail: Error,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (certificate verify failed: {})",
            self.words, self.detail
        )
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
        CertificateError::Revoked => "the server's certificate is revoked".to_owned(),
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            "the server's certificate is not meant for a TLS server (extended key usage)".to_owned()
        }
        CertificateError::BadSignature => format!(
            "the server's certificate chain has a bad signature (certificate verify failed \
             against {roots})"
        ),
        // webpki's own errors, which rustls passes on as they are; their Debug text is their name
        // (rustls-webpki is not a dependency of this crate to match on them).
        CertificateError::Other(OtherError(e)) => match format!("{e:?}").as_str() {
            "CaUsedAsEndEntity" => format!(
                "the server's certificate is a CA certificate (CA:TRUE) that is not itself one of \
                 the roots in {roots}"
            ),
            "UnsupportedCertVersion" => "the server's certificate is X.509 version 1, which \
                copyman cannot verify against roots (libpq can): reissue it as version 3 (`openssl \
                x509 -req … -extfile` naming its subjectAltName), or connect with sslmode=require"
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
                 verify failed: "
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
    fn subject_names_and_whether_a_subject_alt_name_names_the_host() {
        let with_san = der(include_str!("../testdata/self-signed.pem"));
        let cn_only = der(include_str!("../testdata/cn-only.pem"));
        let v1 = der(include_str!("../testdata/v1-server.pem"));
        assert_eq!(
            subject_names(&with_san),
            Some((vec!["localhost".to_owned()], true))
        );
        assert_eq!(
            subject_names(&cn_only),
            Some((vec!["localhost".to_owned()], false))
        );
        assert_eq!(
            subject_names(&v1),
            Some((vec!["localhost".to_owned()], false))
        );
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
        assert_eq!(subject_names(b"not DER"), None);
        // With a subjectAltName, its common name does not count (libpq's rule).
        let refused = || Error::InvalidCertificate(CertificateError::NotValidForName);
        let host = |h: &'static str| ServerName::try_from(h).unwrap();
        assert!(by_common_name(refused(), &with_san, &host("localhost")).is_err());
        assert!(by_common_name(refused(), &cn_only, &host("localhost")).is_ok());
        assert!(by_common_name(refused(), &cn_only, &host("Localhost.")).is_ok());
        assert!(by_common_name(refused(), &cn_only, &host("127.0.0.1")).is_err());
    }
}
