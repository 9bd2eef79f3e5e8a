//! libpq connection strings, as far as copyman must read them itself: the `key=value` tokenizer,
//! URL query decoding, and taking out the parameters the `postgres` crate does not know.
//!
//! The `postgres` crates parse connection strings into their `Config`s, but they refuse keys they
//! do not know (`sslrootcert`, `sslcert`, …) and keep no spans: copyman-tls takes libpq's TLS keys
//! out with [`take`] before handing the rest over, and the `copyman` command reads whole strings
//! with [`parse`] / [`parse_url`] to resolve them as libpq does. No IO, no dependencies.
#![forbid(unsafe_code)]

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
/// let params = copyman_conninfo::tokenize("host=db1 password='a b\\'c'").unwrap();
/// assert_eq!(params[1].key, "password");
/// assert_eq!(params[1].value, "a b'c");
/// // The same pairs the postgres crate sees, whatever the whitespace.
/// let params = copyman_conninfo::tokenize("host=h\u{2003}password=x").unwrap();
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

/// Reads a connection string of either form into its parameters, in the order given: a
/// `postgresql://` URL ([`parse_url`]) or `key=value` pairs ([`tokenize`]).
///
/// # Errors
/// What is malformed; the message never quotes a value.
pub fn parse(text: &str) -> Result<Vec<Param>, String> {
    if is_url(text) {
        parse_url(text)
    } else {
        tokenize(text)
    }
}

/// Reads a `postgresql://` (or `postgres://`) URL into `key=value` parameters as libpq's
/// `conninfo_uri_parse_options` does: `user`, `password`, `host` and `port` (comma-separated
/// lists, an entry empty where the URL leaves it out: `postgresql://:5433` names a port only),
/// `dbname`, then the query's parameters (`ssl=true` meaning `sslmode=require`). Every value is
/// percent-decoded; a part the URL leaves out is not a parameter at all, so the environment and
/// the defaults can fill it in.
///
/// ```
/// use copyman_conninfo::parse_url;
///
/// let params = parse_url("postgresql://al%40x:pw@[::1]:5433,h2/db?sslmode=require").unwrap();
/// let pairs: Vec<(&str, &str)> =
///     params.iter().map(|p| (p.key.as_str(), p.value.as_str())).collect();
/// assert_eq!(
///     pairs,
///     [("user", "al@x"), ("password", "pw"), ("host", "::1,h2"), ("port", "5433,"),
///      ("dbname", "db"), ("sslmode", "require")]
/// );
/// let params = parse_url("postgresql://:5433").unwrap();
/// assert_eq!((params[0].key.as_str(), params[0].value.as_str()), ("port", "5433"));
/// ```
///
/// # Errors
/// A malformed URL (an unclosed `[`, a query item without `=` or with two, a bad `%` escape, a
/// port that is not a number, an `@` after the user info: a password's `@`, `/` or `:` not
/// percent-encoded), by position or parameter name: the message never quotes a value.
pub fn parse_url(text: &str) -> Result<Vec<Param>, String> {
    let start = ["postgresql://", "postgres://"]
        .iter()
        .find(|prefix| text.starts_with(*prefix))
        .map(|prefix| prefix.len())
        .ok_or("a URL must start with \"postgresql://\" or \"postgres://\"")?;
    let b = text.as_bytes();
    let at = |i: usize| b.get(i).copied();
    let mut params = Vec::new();
    let mut push = |key: &str, span: Range<usize>, value: String| {
        params.push(Param {
            key: key.to_owned(),
            value,
            span: span.clone(),
            value_span: span,
        });
    };

    // User info: up to the first `@`, if one comes before any `/`.
    let mut p = start;
    let userinfo_end = text[start..].find(['@', '/']).map(|i| start + i);
    if let Some(end) = userinfo_end.filter(|&end| b[end] == b'@') {
        let userinfo = &text[start..end];
        let (user, password) = match userinfo.find(':') {
            Some(colon) => (start..start + colon, Some(start + colon + 1..end)),
            None => (start..end, None),
        };
        if !user.is_empty() {
            push("user", user.clone(), uri_decode(&text[user], "user")?);
        }
        if let Some(password) = password.filter(|p| !p.is_empty()) {
            push(
                "password",
                password.clone(),
                uri_decode(&text[password], "password")?,
            );
        }
        p = end + 1;
    }

    // A password with a raw `@`, `/` or `:` is read by libpq as host, port or database name,
    // and would then be shown in an error: an `@` after the user info (before the query: a
    // database name's `@` is written %40), or a port that is not a number, is refused without
    // quoting anything.
    let path_end = text[p..].find('?').map_or(b.len(), |i| p + i);
    if text[p..path_end].contains('@') {
        return Err(format!(
            "an \"@\" after the user info of the URL; {ENCODE_PASSWORD}"
        ));
    }

    // Hosts and ports: `host[:port]` or `[ipv6][:port]`, separated by commas.
    let hosts_start = p;
    let mut hosts = String::new();
    let mut ports = String::new();
    let mut term;
    loop {
        if at(p) == Some(b',') {
            p += 1;
        }
        let host;
        if at(p) == Some(b'[') {
            let open = p;
            let close = text[open..]
                .find(']')
                .map(|i| open + i)
                .ok_or("an IPv6 host address in the URL has no closing \"]\"")?;
            if close == open + 1 {
                return Err("an IPv6 host address in the URL is empty".to_owned());
            }
            host = &text[open + 1..close];
            p = close + 1;
            if !matches!(at(p), None | Some(b':' | b'/' | b'?' | b',')) {
                return Err(format!(
                    "unexpected character at position {} of the URL (expected \":\" or \"/\")",
                    text[..p].chars().count() + 1
                ));
            }
        } else {
            let begin = p;
            while !matches!(at(p), None | Some(b':' | b'/' | b'?' | b',')) {
                p += 1;
            }
            host = &text[begin..p];
        }
        hosts.push_str(host);
        term = at(p);
        if term == Some(b':') {
            p += 1;
            let begin = p;
            while !matches!(at(p), None | Some(b'/' | b'?' | b',')) {
                p += 1;
            }
            // Digits only (percent-encoded digits are digits too): anything else may be a
            // password's piece, and is not quoted.
            if !uri_decode(&text[begin..p], "port")
                .is_ok_and(|port| port.bytes().all(|c| c.is_ascii_digit()))
            {
                return Err(format!("invalid port number in the URL; {ENCODE_PASSWORD}"));
            }
            ports.push_str(&text[begin..p]);
            term = at(p);
        }
        if term != Some(b',') {
            break;
        }
        p += 1;
        hosts.push(',');
        ports.push(',');
    }
    let netloc = hosts_start..p;
    if !hosts.is_empty() {
        push("host", netloc.clone(), uri_decode(&hosts, "host")?);
    }
    if !ports.is_empty() {
        push("port", netloc, uri_decode(&ports, "port")?);
    }

    // The database name, after a `/`.
    if term.is_some() && term != Some(b'?') {
        p += 1;
        let begin = p;
        while !matches!(at(p), None | Some(b'?')) {
            p += 1;
        }
        if p > begin {
            push("dbname", begin..p, uri_decode(&text[begin..p], "dbname")?);
        }
        term = at(p);
    }

    // The query: `key=value` items separated by `&`.
    if term.is_some() {
        p += 1;
        let mut n = 0;
        while p < b.len() {
            n += 1;
            let item_end = text[p..].find('&').map_or(b.len(), |i| p + i);
            let item = &text[p..item_end];
            let Some(eq) = item.find('=') else {
                return Err(format!(
                    "URL query parameter number {n} has no \"=\" between key and value"
                ));
            };
            let key = uri_decode(&item[..eq], "a query parameter's key")?;
            if item[eq + 1..].contains('=') {
                return Err(format!(
                    "URL query parameter \"{key}\" has a second \"=\" (write it %3D)"
                ));
            }
            let value_span = p + eq + 1..item_end;
            let value = uri_decode(&text[value_span.clone()], &key)?;
            let (key, value) = if key == "ssl" && value == "true" {
                ("sslmode".to_owned(), "require".to_owned())
            } else {
                (key, value)
            };
            params.push(Param {
                key,
                value,
                span: p..item_end,
                value_span,
            });
            p = item_end + 1;
        }
    }
    Ok(params)
}

/// The hint of every error a URL's password written raw can cause.
const ENCODE_PASSWORD: &str = "a `@`, `/` or `:` in a password must be percent-encoded";

/// libpq's `conninfo_uri_decode`: `%XX` escapes decoded, a malformed one or `%00` refused.
fn uri_decode(text: &str, what: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let byte = text
                .get(i + 1..i + 3)
                .filter(|hex| hex.bytes().all(|c| c.is_ascii_hexdigit()))
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .ok_or_else(|| format!("invalid percent-encoded token in the URL's {what}"))?;
            if byte == 0 {
                return Err(format!("forbidden value %00 in the URL's {what}"));
            }
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("the URL's {what} is not UTF-8 once decoded"))
}

/// Decodes `%XX` escapes (and leaves malformed ones as they are).
///
/// ```
/// assert_eq!(copyman_conninfo::percent_decode("a%20b%zz"), "a b%zz");
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
/// use copyman_conninfo::take;
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

/// The settings the `options` connection parameter gives the server, as the server reads them:
/// the text split as `pg_split_opts` splits it (whitespace between words; a backslash takes the
/// next character as it is), then each `-c NAME=VALUE`, `-cNAME=VALUE` and `--NAME=VALUE`, the
/// name as the server looks it up (lower case, `-` read as `_`). Other switches are left out.
/// What a caller asks to know whether a CONN sets a parameter itself (`row_security`), where a
/// search of the text would take `-c app.row_security_tenant=42` for it.
///
/// ```
/// use copyman_conninfo::option_settings;
///
/// let set = option_settings(r"-c row_security=on --Lock-Timeout=5s -capp.note=a\ b");
/// assert_eq!(
///     set,
///     [
///         ("row_security".to_owned(), "on".to_owned()),
///         ("lock_timeout".to_owned(), "5s".to_owned()),
///         ("app.note".to_owned(), "a b".to_owned()),
///     ]
/// );
/// assert!(option_settings("-c app.row_security_tenant=42").iter().all(|(n, _)| n != "row_security"));
/// ```
pub fn option_settings(options: &str) -> Vec<(String, String)> {
    // pg_split_opts: words between whitespace, a backslash escaping the next character.
    let mut words = Vec::new();
    let mut chars = options.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_ascii_whitespace()).is_some() {}
        if chars.peek().is_none() {
            break;
        }
        let mut word = String::new();
        while let Some(c) = chars.next_if(|c| !c.is_ascii_whitespace()) {
            match c {
                '\\' => word.extend(chars.next()),
                c => word.push(c),
            }
        }
        words.push(word);
    }
    let mut settings = Vec::new();
    let mut words = words.into_iter();
    while let Some(word) = words.next() {
        let setting = if let Some(long) = word.strip_prefix("--") {
            Some(long.to_owned())
        } else if word == "-c" {
            words.next()
        } else {
            word.strip_prefix("-c").map(str::to_owned)
        };
        // ParseLongOption: NAME=VALUE, '-' in the name read as '_'.
        if let Some((name, value)) = setting.as_deref().and_then(|s| s.split_once('=')) {
            let name = name.replace('-', "_").to_ascii_lowercase();
            settings.push((name, value.to_owned()));
        }
    }
    settings
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

    fn pairs(text: &str) -> Vec<(String, String)> {
        parse_url(text)
            .unwrap()
            .into_iter()
            .map(|p| (p.key, p.value))
            .collect()
    }

    #[test]
    fn urls_are_read_as_libpq_reads_them() {
        let kv = |list: &[(&str, &str)]| -> Vec<(String, String)> {
            list.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        assert_eq!(pairs("postgresql://"), kv(&[]));
        assert_eq!(pairs("postgres://h"), kv(&[("host", "h")]));
        assert_eq!(pairs("postgresql:///db"), kv(&[("dbname", "db")]));
        assert_eq!(pairs("postgresql://u@"), kv(&[("user", "u")]));
        assert_eq!(
            pairs("postgresql://:pw@h"),
            kv(&[("password", "pw"), ("host", "h")])
        );
        assert_eq!(
            pairs("postgresql://%2Fvar%2Frun%2Fpostgresql:5433/db"),
            kv(&[
                ("host", "/var/run/postgresql"),
                ("port", "5433"),
                ("dbname", "db")
            ])
        );
        assert_eq!(
            pairs("postgresql://h1:1,h2,[::1]:3?application_name=a%20b"),
            kv(&[
                ("host", "h1,h2,::1"),
                ("port", "1,,3"),
                ("application_name", "a b")
            ])
        );
        // The password of a URL is its value span, for redaction.
        let params = parse_url("postgresql://u:s3cret@h/db").unwrap();
        assert_eq!(params[1].key, "password");
        assert_eq!(
            &"postgresql://u:s3cret@h/db"[params[1].value_span.clone()],
            "s3cret"
        );
    }

    #[test]
    fn malformed_urls_are_refused_without_their_values() {
        for url in [
            "postgresql://[::1",
            "postgresql://[]/db",
            "postgresql://[::1]x/db",
            "postgresql://h/db?s3cret",
            "postgresql://h/db?password=s3cret=x",
            "postgresql://u:s3cret%zz@h/db",
            "postgresql://u:s3cret%00@h/db",
            "postgresql://h/db?password=s3cret%ff",
        ] {
            let err = parse_url(url).unwrap_err();
            assert!(!err.contains("s3cret"), "{url}: {err}");
        }
        assert!(parse_url("postgresql:/h/db").is_err());
    }

    #[test]
    fn a_password_with_a_raw_at_or_slash_is_refused_without_its_pieces() {
        for (url, said) in [
            (
                "postgresql://postgres:sec@retXX@127.0.0.1:56012/app",
                "an \"@\" after the user info",
            ),
            (
                "postgresql://postgres:sec/retXX@127.0.0.1:56012/app",
                "an \"@\" after the user info",
            ),
            (
                "postgresql://postgres:@/retXX@127.0.0.1:56012/app",
                "an \"@\" after the user info",
            ),
            ("postgresql://h:sec/retXX", "invalid port number in the URL"),
            (
                "postgresql://postgres:123/retXX@127.0.0.1:56012/app",
                "an \"@\" after the user info",
            ),
            (
                "postgresql://postgres:sec:retXX@127.0.0.1:sec/app",
                "invalid port number in the URL",
            ),
        ] {
            let err = parse_url(url).unwrap_err();
            assert!(err.contains(said), "{url}: {err}");
            assert!(err.contains("must be percent-encoded"), "{url}: {err}");
            assert!(
                !err.contains("sec") && !err.contains("retXX"),
                "{url}: {err}"
            );
        }
        // Encoded, the same password is read whole; an `@` in the query is a value's.
        let params = parse_url("postgresql://postgres:sec%40retXX@127.0.0.1:56012/app").unwrap();
        assert_eq!(params[1].value, "sec@retXX");
        assert!(parse_url("postgresql://h/db?user=alice@corp").is_ok());
        assert!(parse_url("postgresql://h:%35%34/db").is_ok());
    }

    proptest::proptest! {
        /// Whatever a password holds, written raw into a URL, no piece of it is ever in an
        /// error, nor in any parameter but the password (a host, port or database name is
        /// shown in messages).
        #[test]
        fn no_piece_of_a_raw_password_leaks(
            pieces in proptest::collection::vec("[A-Z]{4}", 1..4),
            seps in proptest::collection::vec("[@/:#&=%, ]{1,2}", 0..4),
            digits in "[0-9]{0,3}",
        ) {
            let mut password = digits.clone();
            for (i, piece) in pieces.iter().enumerate() {
                if let Some(sep) = seps.get(i) {
                    password.push_str(sep);
                }
                password.push_str(piece);
            }
            for url in [
                format!("postgresql://postgres:{password}@127.0.0.1:56012/app"),
                format!("postgres://postgres:{password}@db1/app?sslmode=prefer"),
                format!("postgresql://postgres:{password}@db1,db2:5433"),
            ] {
                match parse_url(&url) {
                    Err(err) => {
                        for piece in &pieces {
                            proptest::prop_assert!(!err.contains(piece.as_str()), "{url}: {err}");
                        }
                    }
                    Ok(params) => {
                        for param in params.iter().filter(|p| p.key != "password") {
                            for piece in &pieces {
                                proptest::prop_assert!(
                                    !param.value.contains(piece.as_str()),
                                    "{url}: {} = {}", param.key, param.value
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}
