//! Channel binding data for SCRAM-SHA-256-PLUS: `tls-server-end-point` (RFC 5929 §4.1), the hash
//! of the server's certificate.

use sha2::{Digest, Sha224, Sha256, Sha384, Sha512};

/// The `tls-server-end-point` channel binding data of a server certificate (DER): its hash with
/// the hash function of the certificate's signature algorithm, SHA-256 where that is MD5 or SHA-1.
///
/// `None` when the signature algorithm names no single hash (RSA-PSS, Ed25519, unknown ones) or
/// the certificate cannot be read: binding is then impossible, as in libpq. The server computes
/// the same value from its own certificate; a man in the middle, holding another certificate,
/// cannot.
///
/// ```
/// // A certificate is too long for an example; anything unreadable has no binding.
/// assert_eq!(copyman_tls::server_end_point(b"not DER"), None);
/// ```
pub fn server_end_point(certificate: &[u8]) -> Option<Vec<u8>> {
    let hash = signature_hash(certificate)?;
    Some(match hash {
        Hash::Sha224 => Sha224::digest(certificate).to_vec(),
        Hash::Sha256 => Sha256::digest(certificate).to_vec(),
        Hash::Sha384 => Sha384::digest(certificate).to_vec(),
        Hash::Sha512 => Sha512::digest(certificate).to_vec(),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hash {
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

/// `1.2.840.113549.1.1.x`: the PKCS #1 signature algorithms, DER-encoded without the last arc.
const PKCS1: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01];
/// `1.2.840.10045.4`: ECDSA signature algorithms.
const ECDSA: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04];

/// The hash to use for the certificate's `signatureAlgorithm`.
fn signature_hash(certificate: &[u8]) -> Option<Hash> {
    // Certificate ::= SEQUENCE { tbsCertificate SEQUENCE, signatureAlgorithm SEQUENCE
    // { algorithm OBJECT IDENTIFIER, parameters ANY OPTIONAL }, signatureValue BIT STRING }
    let (0x30, certificate, _) = tlv(certificate)? else {
        return None;
    };
    let (0x30, _, rest) = tlv(certificate)? else {
        return None;
    };
    let (0x30, algorithm, _) = tlv(rest)? else {
        return None;
    };
    let (0x06, oid, _) = tlv(algorithm)? else {
        return None;
    };
    match oid {
        // md5, sha1, sha256, sha384, sha512, sha224 WithRSAEncryption
        [prefix @ .., last] if prefix == PKCS1 => match last {
            0x04 | 0x05 | 0x0b => Some(Hash::Sha256),
            0x0c => Some(Hash::Sha384),
            0x0d => Some(Hash::Sha512),
            0x0e => Some(Hash::Sha224),
            _ => None,
        },
        // ecdsa-with-SHA1
        [prefix @ .., 0x01] if prefix == ECDSA => Some(Hash::Sha256),
        // ecdsa-with-SHA224 … SHA512 (1.2.840.10045.4.3.1 … 4)
        [prefix @ .., 0x03, last] if prefix == ECDSA => match last {
            0x01 => Some(Hash::Sha224),
            0x02 => Some(Hash::Sha256),
            0x03 => Some(Hash::Sha384),
            0x04 => Some(Hash::Sha512),
            _ => None,
        },
        _ => None,
    }
}

/// Reads one DER tag-length-value: the tag, the value, and what follows it.
pub(crate) fn tlv(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |len, &b| (len << 8) | usize::from(b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A skeleton certificate: empty tbsCertificate, the given algorithm OID, empty signature.
    fn skeleton(oid: &[u8]) -> Vec<u8> {
        let mut algorithm = vec![0x06, oid.len() as u8];
        algorithm.extend_from_slice(oid);
        let mut body = vec![0x30, 0x00, 0x30, algorithm.len() as u8];
        body.extend_from_slice(&algorithm);
        body.extend_from_slice(&[0x03, 0x01, 0x00]);
        let mut der = vec![0x30, body.len() as u8];
        der.extend_from_slice(&body);
        der
    }

    #[test]
    fn hash_follows_the_signature_algorithm() {
        let rsa = |last| [PKCS1, &[last]].concat();
        let ec = |tail: &[u8]| [ECDSA, tail].concat();
        for (oid, hash) in [
            (rsa(0x04), Some(Hash::Sha256)),
            (rsa(0x05), Some(Hash::Sha256)),
            (rsa(0x0b), Some(Hash::Sha256)),
            (rsa(0x0c), Some(Hash::Sha384)),
            (rsa(0x0d), Some(Hash::Sha512)),
            (rsa(0x0a), None), // RSA-PSS: the hash is in the parameters; libpq refuses too
            (ec(&[0x01]), Some(Hash::Sha256)),
            (ec(&[0x03, 0x02]), Some(Hash::Sha256)),
            (ec(&[0x03, 0x03]), Some(Hash::Sha384)),
            (ec(&[0x03, 0x04]), Some(Hash::Sha512)),
            (vec![0x2b, 0x65, 0x70], None), // Ed25519
        ] {
            assert_eq!(signature_hash(&skeleton(&oid)), hash, "{oid:02x?}");
        }
    }

    #[test]
    fn the_digest_covers_the_whole_certificate() {
        let der = skeleton(&[PKCS1, &[0x0c]].concat());
        assert_eq!(
            server_end_point(&der).unwrap(),
            Sha384::digest(&der).to_vec()
        );
    }

    #[test]
    fn truncated_or_long_form_lengths() {
        let der = skeleton(&[PKCS1, &[0x0b]].concat());
        for cut in 0..der.len() {
            assert_eq!(signature_hash(&der[..cut]), None, "cut at {cut}");
        }
        // The same certificate with a long-form outer length.
        let mut long = vec![0x30, 0x81, der[1]];
        long.extend_from_slice(&der[2..]);
        assert_eq!(signature_hash(&long), Some(Hash::Sha256));
    }
}
