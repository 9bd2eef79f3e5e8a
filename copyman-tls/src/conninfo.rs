//! libpq connection strings, as far as copyman must read them itself: the `key=value` tokenizer,
//! URL query decoding, and taking out the parameters the `postgres` crate does not know.

use std::ops::Range;

/// One `key=value` of a conninfo string. Its `Debug` leaves the value out: it may be a password.
#[derive(Clone, PartialEq, Eq)]
pub struct Param {
    /// The key.
    pub key: String,
    /// The value, unquoted and unescaped.
    pub value: String,
    /// Where the whole `key=value` is in the text.
    pub span: Range<usize>,
    /// Where the value is in the text, as written (quotes included).
    pub value_span: Range<usize>,
}

impl std::fmt::Debug for Param {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Param")
            .field("key", &self.key)
            .field("span", &self.span)
            .finish_non_exhaustive()
    }
}

/// Whether `text` is a `postgresql://` (or `postgres://`) URL rather than `key=value` pairs.
pub fn is_url(text: &str) -> bool {
    text.starts_with("postgresql://") || text.starts_with("postgres://")
}

/// Splits a `key=value` conninfo string as the `postgres` crate does (and libpq, but for what
/// it counts as whitespace): values are bare (up to whitespace, any Unicode whitespace as that
/// crate has it) or single-quoted, `\` escapes the next character in both.
///
/// ```
/// let params = copyman_tls::conninfo::tokenize("host=db1 password='a b\\'c'").unwrap();
/// assert_eq!(params[1].key, "password");
/// assert_eq!(params[1].value, "a b'c");
/// // The same pairs the postgres crate sees, whatever the whitespace.
/// let params = copyman_tls::conninfo::tokenize("host=h\u{2003}password=x").unwrap();
/// assert_eq!(params[1].key, "password");
/// ```
///
/// # Errors
/// What is malformed (a word without `=`, an unterminated quote), by position: the message
/// never quotes the text, which may hold a password.
pub fn tokenize(text: &str) -> Result<Vec<Param>, String> {
    let mut chars = text.char_indices().peekable();
    let mut params = Vec::new();
    let skip_ws = |chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>| {
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
    };
    loop {
        skip_ws(&mut chars);
        let Some(&(start, _)) = chars.peek() else {
            return Ok(params);
        };
        while chars
            .next_if(|&(_, c)| c != '=' && !c.is_whitespace())
            .is_some()
        {}
        let key_end = chars.peek().map_or(text.len(), |&(i, _)| i);
        let key = text[start..key_end].to_owned();
        skip_ws(&mut chars);
        if chars.next_if(|&(_, c)| c == '=').is_none() {
            return Err(format!(
                "a word without \"=\" at character {}",
                text[..start].chars().count() + 1
            ));
        }
        skip_ws(&mut chars);
        let value_start = chars.peek().map_or(text.len(), |&(i, _)| i);
        let mut value = String::new();
        if chars.next_if(|&(_, c)| c == '\'').is_some() {
            loop {
                match chars.next() {
                    None => return Err(format!("unterminated quoted value of {key:?}")),
                    Some((_, '\'')) => break,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, c)) => value.push(c),
                        None => return Err(format!("unterminated quoted value of {key:?}")),
                    },
                    Some((_, c)) => value.push(c),
                }
            }
        } else {
            while let Some((_, c)) = chars.next_if(|(_, c)| !c.is_whitespace()) {
                match c {
                    '\\' => {
                        if let Some((_, next)) = chars.next() {
                            value.push(next);
                        }
                    }
                    c => value.push(c),
                }
            }
        }
        let end = chars.peek().map_or(text.len(), |&(i, _)| i);
        params.push(Param {
            key,
            value,
            span: start..end,
            value_span: value_start..end,
        });
    }
}

/// Decodes `%XX` escapes (and leaves malformed ones as they are).
///
/// ```
/// assert_eq!(copyman_tls::conninfo::percent_decode("a%20b%zz"), "a b%zz");
/// ```
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) = text
                .get(i + 1..i + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Takes the parameters named in `keys` out of a connection string (URL or `key=value`): returns
/// the rest, to be parsed by the `postgres` crate, and the values taken, in the order of `keys`
/// (the last occurrence of a key wins, as in libpq).
///
/// ```
/// use copyman_tls::conninfo::take;
///
/// let (rest, taken) = take("host=a sslmode=verify-full dbname=b", &["sslmode", "sslcert"]).unwrap();
/// assert_eq!(rest.split_whitespace().collect::<Vec<_>>(), ["host=a", "dbname=b"]);
/// assert_eq!(taken, [Some("verify-full".to_owned()), None]);
///
/// let (rest, taken) = take("postgresql://a/b?sslmode=require&user=c", &["sslmode"]).unwrap();
/// assert_eq!(rest, "postgresql://a/b?user=c");
/// assert_eq!(taken, [Some("require".to_owned())]);
/// ```
///
/// # Errors
/// A `key=value` string that cannot be read (see [`tokenize`]).
pub fn take(text: &str, keys: &[&str]) -> Result<(String, Vec<Option<String>>), String> {
    let mut taken = vec![None; keys.len()];
    if is_url(text) {
        let Some(q) = text.find('?') else {
            return Ok((text.to_owned(), taken));
        };
        let mut kept = Vec::new();
        for item in text[q + 1..].split('&') {
            let (key, value) = item.split_once('=').unwrap_or((item, ""));
            let key = percent_decode(key);
            match keys.iter().position(|k| *k == key) {
                Some(slot) => taken[slot] = Some(percent_decode(value)),
                None if !item.is_empty() => kept.push(item),
                None => {}
            }
        }
        let mut rest = text[..q].to_owned();
        if !kept.is_empty() {
            rest.push('?');
            rest.push_str(&kept.join("&"));
        }
        Ok((rest, taken))
    } else {
        let params = tokenize(text)?;
        let mut rest = text.to_owned();
        // Back to front, so earlier spans stay valid; the last occurrence wins.
        for param in params.iter().rev() {
            if let Some(slot) = keys.iter().position(|k| *k == param.key) {
                if taken[slot].is_none() {
                    taken[slot] = Some(param.value.clone());
                }
                rest.replace_range(param.span.clone(), " ");
            }
        }
        Ok((rest, taken))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_occurrence_wins_and_quotes_are_read() {
        let (rest, taken) = take(
            "sslmode=require host=a sslrootcert='/x y/root.crt' sslmode=disable",
            &["sslmode", "sslrootcert"],
        )
        .unwrap();
        assert_eq!(rest.trim(), "host=a");
        assert_eq!(
            taken,
            [Some("disable".to_owned()), Some("/x y/root.crt".to_owned())]
        );
    }

    #[test]
    fn url_queries_are_decoded() {
        let (rest, taken) = take(
            "postgres://u@h/db?sslrootcert=%2Ftmp%2Fca.pem&application_name=x&sslkey=k",
            &["sslrootcert", "sslkey", "sslcert"],
        )
        .unwrap();
        assert_eq!(rest, "postgres://u@h/db?application_name=x");
        assert_eq!(
            taken,
            [Some("/tmp/ca.pem".to_owned()), Some("k".to_owned()), None]
        );
        let (rest, taken) = take("postgres://h/db?sslmode=require", &["sslmode"]).unwrap();
        assert_eq!(rest, "postgres://h/db");
        assert_eq!(taken, [Some("require".to_owned())]);
    }

    #[test]
    fn malformed_strings_are_refused_without_their_values() {
        let err = take("password='s3cret", &["sslmode"]).unwrap_err();
        assert!(!err.contains("s3cret"), "{err}");
        assert!(take("host", &["sslmode"]).is_err());
        // A password with spaces, unquoted: the words after the first are not echoed.
        let err = tokenize("host=h password=correct horse battery").unwrap_err();
        assert!(!err.contains("horse"), "{err}");
        assert!(err.contains("character 25"), "{err}");
    }

    #[test]
    fn every_whitespace_the_postgres_crate_knows_separates() {
        for ws in ["\u{2003}", "\u{a0}", "\u{b}", "\n", "\t"] {
            let text = format!("host=h{ws}password=s3cret{ws}sslmode=require");
            let params = tokenize(&text).unwrap();
            let keys: Vec<&str> = params.iter().map(|p| p.key.as_str()).collect();
            assert_eq!(keys, ["host", "password", "sslmode"], "{ws:?}");
            assert_eq!(&text[params[1].value_span.clone()], "s3cret");
            let (rest, taken) = take(&text, &["sslmode"]).unwrap();
            assert_eq!(taken, [Some("require".to_owned())], "{ws:?}");
            assert!(!rest.contains("sslmode"), "{rest:?}");
        }
        // Escapes and quotes keep their meaning.
        let params = tokenize(r"a=x\ y b='p q\'r' c=").unwrap();
        let values: Vec<&str> = params.iter().map(|p| p.value.as_str()).collect();
        assert_eq!(values, ["x y", "p q'r", ""]);
    }
}
