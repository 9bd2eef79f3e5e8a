//! Checking a COPY statement before anything is sent.
//!
//! A producer must run exactly one `COPY … TO STDOUT` and a receiver exactly one
//! `COPY … FROM STDIN`. The server would refuse the other statements too, but only after running
//! them (a `SELECT` scans its table, a `COPY … TO STDOUT` given to a receiver streams until
//! cancelled), so copyman checks first. The check reads the statement's top-level words the way
//! PostgreSQL's lexer splits them — strings, quoted identifiers, dollar quotes, comments and
//! parentheses are skipped — and never interprets anything else. [`representation`] reads, the
//! same way, the options that say what the data's bytes mean, so that the two ends of a copy can
//! be compared before anything is sent.

use std::fmt;

/// Which way a COPY moves data, seen from the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `COPY … TO STDOUT`: the server sends, a producer reads.
    ToStdout,
    /// `COPY … FROM STDIN`: the server receives, a receiver writes.
    FromStdin,
}

impl Direction {
    fn describe(self) -> &'static str {
        match self {
            Self::ToStdout => "COPY TO STDOUT",
            Self::FromStdin => "COPY FROM STDIN",
        }
    }
}

/// Why a statement is not the COPY an endpoint needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StatementError {
    /// Nothing but blanks and comments.
    #[error("the statement is empty; expected {expected}")]
    Empty {
        /// The COPY expected.
        expected: &'static str,
    },
    /// The statement is not a COPY.
    #[error("the statement is not a COPY: {statement}; expected {expected}")]
    NotCopy {
        /// The COPY expected.
        expected: &'static str,
        /// The statement (its first 60 characters).
        statement: String,
    },
    /// A COPY of the other direction.
    #[error("expected a {expected}, got a {got}")]
    WrongDirection {
        /// The COPY expected.
        expected: &'static str,
        /// The COPY given.
        got: &'static str,
    },
    /// A COPY to or from a server file or program, which copyman cannot stream.
    #[error("expected a {expected}, got a COPY {word} a file or program on the server")]
    NotStdio {
        /// The COPY expected.
        expected: &'static str,
        /// `TO` or `FROM`.
        word: &'static str,
    },
    /// More than one statement.
    #[error("expected a single {expected}, got several statements")]
    Several {
        /// The COPY expected.
        expected: &'static str,
    },
    /// A string, identifier, comment or parenthesis left open.
    #[error("the statement has an unterminated {what}")]
    Unterminated {
        /// What was left open.
        what: &'static str,
    },
}

/// Checks that `sql` is one COPY moving data in `direction` through the connection.
///
/// ```
/// use copyman_core::statement::{Direction, check};
///
/// assert!(check("COPY (SELECT 'to stdin' FROM t) TO STDOUT", Direction::ToStdout).is_ok());
/// assert!(check("copy t from stdin with (format csv)", Direction::FromStdin).is_ok());
/// assert!(check("SELECT 1", Direction::ToStdout).is_err());
/// assert!(check("COPY t FROM STDIN", Direction::ToStdout).is_err());
/// assert!(check("COPY t TO '/etc/passwd'", Direction::ToStdout).is_err());
/// ```
///
/// # Errors
/// [`StatementError`] naming what is wrong.
pub fn check(sql: &str, direction: Direction) -> Result<(), StatementError> {
    check_with(sql, direction, true)
}

/// [`check`] for a server whose `standard_conforming_strings` is `standard_strings`: when it is
/// off, a backslash escapes the next character in every `'…'` string, not only in `E'…'`, and
/// the statement must be read that way to find where its strings end.
///
/// ```
/// use copyman_core::statement::{Direction, check_with};
///
/// let sql = r"COPY (SELECT 'a\', ') TO STDOUT; DROP TABLE t; --' ) TO STDOUT";
/// assert!(check_with(sql, Direction::ToStdout, true).is_ok()); // one statement, to this server
/// assert!(check_with(sql, Direction::ToStdout, false).is_err()); // two, to that one
/// ```
///
/// # Errors
/// As [`check`].
pub fn check_with(
    sql: &str,
    direction: Direction,
    standard_strings: bool,
) -> Result<(), StatementError> {
    let expected = direction.describe();
    let words = top_level_words(sql, standard_strings)?;
    let not_copy = || StatementError::NotCopy {
        expected,
        statement: shortened(sql),
    };
    let Some(first) = words.first() else {
        return Err(StatementError::Empty { expected });
    };
    if !first.eq_ignore_ascii_case("copy") {
        return Err(not_copy());
    }
    if words.iter().any(|w| w == ";") {
        return Err(StatementError::Several { expected });
    }
    // The first top-level TO or FROM after the table (or the parenthesized query) says where the
    // data goes; what follows it says whether that is the connection.
    let position = words
        .iter()
        .position(|w| w.eq_ignore_ascii_case("to") || w.eq_ignore_ascii_case("from"));
    let Some(i) = position else {
        return Err(not_copy());
    };
    let to = words[i].eq_ignore_ascii_case("to");
    let target = words.get(i + 1).map(String::as_str).unwrap_or_default();
    let got = match (to, target.to_ascii_lowercase().as_str()) {
        (true, "stdout") => Direction::ToStdout,
        (false, "stdin") => Direction::FromStdin,
        (true, _) => {
            return Err(StatementError::NotStdio {
                expected,
                word: "TO",
            });
        }
        (false, _) => {
            return Err(StatementError::NotStdio {
                expected,
                word: "FROM",
            });
        }
    };
    if got == direction {
        Ok(())
    } else {
        Err(StatementError::WrongDirection {
            expected,
            got: got.describe(),
        })
    }
}

/// How a COPY statement writes or reads its rows: the options that change what the bytes mean.
/// Two ends of one copy must agree on every one of them, or the rows are read as something else
/// (a text `\N` taken for a CSV string, CSV's empty string for text's NULL, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Representation {
    /// `text`, `csv` or `binary`.
    pub format: String,
    /// `DELIMITER`, `NULL`, `QUOTE`, `ESCAPE`, `ENCODING` (lower-case names) with their values
    /// as written (`','`), in that order; options left at their default are not listed.
    pub options: Vec<(String, String)>,
}

impl fmt::Display for Representation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FORMAT {}", self.format)?;
        for (name, value) in &self.options {
            write!(f, ", {} {value}", name.to_ascii_uppercase())?;
        }
        Ok(())
    }
}

/// The data representation of a COPY statement that [`check`] accepted: its format and the
/// options that change what the bytes mean, in the new (`WITH (FORMAT csv, NULL '')`) and the
/// old (`WITH CSV NULL AS ''`, `COPY BINARY t`) syntax alike. `None` when it cannot be told
/// (an option's value given in a form copyman does not read).
///
/// ```
/// use copyman_core::statement::representation;
///
/// let send = representation("COPY t TO STDOUT").unwrap();
/// let receive = representation("COPY t FROM STDIN (FORMAT csv)").unwrap();
/// assert_ne!(send, receive);
/// assert_eq!(send, representation("copy (select 1) to stdout with (format 'text')").unwrap());
/// assert_eq!(
///     representation("COPY t FROM STDIN WITH CSV DELIMITER AS ';'").unwrap().to_string(),
///     "FORMAT csv, DELIMITER ';'"
/// );
/// ```
pub fn representation(sql: &str) -> Option<Representation> {
    let tokens = tokens(sql, true).ok()?;
    let top: Vec<&Token> = tokens.iter().filter(|t| t.depth == 0).collect();
    let at = top.iter().position(|t| {
        !t.literal && (t.text.eq_ignore_ascii_case("to") || t.text.eq_ignore_ascii_case("from"))
    })?;
    let mut format = None;
    // `COPY BINARY t …` (before 7.4's syntax, still read).
    if top
        .get(1)
        .is_some_and(|t| t.text.eq_ignore_ascii_case("binary"))
    {
        format = Some("binary".to_owned());
    }
    let mut options: Vec<(String, String)> = Vec::new();
    // After `TO STDOUT` / `FROM STDIN`: the options, as words (old syntax) or in parentheses.
    let start = tokens
        .iter()
        .position(|t| std::ptr::eq(t, top[at]))
        .map(|i| i + 2)?;
    let rest = tokens.get(start..).unwrap_or_default();
    let mut i = 0;
    while i < rest.len() {
        let t = &rest[i];
        let word = t.text.to_ascii_lowercase();
        let value = |i: usize| -> Option<(String, usize)> {
            // An optional AS (old syntax), then the value.
            let mut j = i + 1;
            if rest
                .get(j)
                .is_some_and(|v| v.text.eq_ignore_ascii_case("as"))
            {
                j += 1;
            }
            let v = rest.get(j).filter(|v| v.text != ",")?;
            Some((v.text.clone(), j))
        };
        match word.as_str() {
            // `FROM STDIN … WHERE condition`: the condition's words are not options.
            "where" if !t.literal && t.depth == 0 => break,
            "binary" | "csv" if !t.literal => format = Some(word),
            "format" => {
                let (v, j) = value(i)?;
                format = Some(unquote(&v)?.to_ascii_lowercase());
                i = j;
            }
            "delimiter" | "null" | "quote" | "escape" | "encoding" if !t.literal => {
                let (v, j) = value(i)?;
                options.retain(|(name, _)| *name != word);
                options.push((word, v));
                i = j;
            }
            // Old syntax: FORCE QUOTE cols, FORCE NOT NULL cols (no representation options).
            "force" if !t.literal => {
                i += 1;
                if rest
                    .get(i)
                    .is_some_and(|t| t.text.eq_ignore_ascii_case("not"))
                {
                    i += 1;
                }
            }
            // FORCE_QUOTE/FORCE_NULL's column lists, HEADER's value: skipped by the loop.
            _ => {}
        }
        i += 1;
    }
    let order = ["delimiter", "null", "quote", "escape", "encoding"];
    options.sort_by_key(|(name, _)| order.iter().position(|o| o == name));
    Some(Representation {
        format: format.unwrap_or_else(|| "text".to_owned()),
        options,
    })
}

/// The table a `COPY table [(columns)] FROM STDIN` (or `TO STDOUT`) names, as written
/// (`public."T"`): `None` for a `COPY (query) TO STDOUT`, or a statement [`check`] refuses.
///
/// ```
/// use copyman_core::statement::copy_table;
///
/// assert_eq!(copy_table("COPY public.t (a, b) FROM STDIN (FORMAT csv)"), Some("public.t"));
/// assert_eq!(copy_table(r#"copy "My ""T""" from stdin"#), Some(r#""My ""T""""#));
/// assert_eq!(copy_table("COPY BINARY t FROM STDIN"), Some("t"));
/// assert_eq!(copy_table("COPY (SELECT 1) TO STDOUT"), None);
/// ```
pub fn copy_table(sql: &str) -> Option<&str> {
    let tokens = tokens(sql, true).ok()?;
    if !tokens.first()?.text.eq_ignore_ascii_case("copy") {
        return None;
    }
    let mut name = tokens.iter().skip(1).peekable();
    // `COPY BINARY t` (the old syntax), not a table named binary.
    let second_is_name = tokens.get(2).is_some_and(|t| {
        t.depth == 0 && !matches!(t.text.to_ascii_lowercase().as_str(), "from" | "to")
    });
    if second_is_name
        && name
            .peek()
            .is_some_and(|t| t.text.eq_ignore_ascii_case("binary"))
    {
        name.next();
    }
    let first = name.next().filter(|t| t.depth == 0 && !t.literal)?;
    let mut end = first.at + first.text.len();
    for t in name {
        let word = t.text.to_ascii_lowercase();
        if t.depth > 0 || word == "from" || word == "to" {
            break;
        }
        end = t.at + t.text.len();
    }
    Some(&sql[first.at..end])
}

/// A value as written: a plain `'…'` string's text, or a word; `None` for other literals.
fn unquote(value: &str) -> Option<String> {
    match value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
        Some(inner) => Some(inner.replace("''", "'")),
        None if value.starts_with(['E', 'e', '$']) && value.len() > 1 => None,
        None => Some(value.to_owned()),
    }
}

/// `sql` on one line, cut to 60 characters, for messages.
fn shortened(sql: &str) -> String {
    let one_line = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(60) {
        Some((at, _)) => format!("{}…", &one_line[..at]),
        None => one_line,
    }
}

/// The words of `sql` outside strings, quoted identifiers, comments and parentheses; a `;`
/// followed by anything but blanks and comments is kept as a word of its own, and literals stand
/// as `'…'`.
fn top_level_words(sql: &str, standard_strings: bool) -> Result<Vec<String>, StatementError> {
    Ok(tokens(sql, standard_strings)?
        .into_iter()
        .filter(|t| t.depth == 0 && t.text != ",")
        .map(|t| match (t.literal, t.text.starts_with('"')) {
            (true, _) => "'…'".to_owned(),
            (false, true) => "\"…\"".to_owned(),
            (false, false) => t.text,
        })
        .collect())
}

/// A word, literal or comma of a statement, at its depth of parentheses.
#[derive(Debug)]
struct Token {
    depth: usize,
    /// Where it starts in the statement.
    at: usize,
    /// The word, the literal as written (quotes included), or `,`.
    text: String,
    literal: bool,
}

/// The tokens of `sql` (see [`top_level_words`]; literals kept as written).
fn tokens(sql: &str, standard_strings: bool) -> Result<Vec<Token>, StatementError> {
    let bytes = sql.as_bytes();
    let mut words: Vec<Token> = Vec::new();
    let push = |words: &mut Vec<Token>, depth, at: usize, text: &str, literal| {
        words.push(Token {
            depth,
            at,
            text: text.to_owned(),
            literal,
        });
    };
    let mut depth = 0usize;
    let mut i = 0;
    let mut ended = false;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' => i += 1,
            // A line comment ends at a newline or a carriage return, as in the server's lexer.
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                i = bytes[i..]
                    .iter()
                    .position(|&b| b == b'\n' || b == b'\r')
                    .map_or(bytes.len(), |n| i + n + 1);
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => i = skip_block_comment(bytes, i)?,
            _ if ended => {
                // Something after a `;`: a second statement.
                push(&mut words, 0, i, ";", false);
                return Ok(words);
            }
            b';' if depth == 0 => {
                ended = true;
                i += 1;
            }
            b'(' => {
                depth += 1;
                i += 1;
            }
            b')' => {
                depth = depth.checked_sub(1).ok_or(StatementError::Unterminated {
                    what: "parenthesis",
                })?;
                i += 1;
            }
            b'\'' => {
                let escapes = !standard_strings
                    || (i > 0
                        && matches!(bytes[i - 1], b'e' | b'E')
                        && is_word_start(bytes, i - 1));
                let start = i;
                i = skip_quoted(bytes, i, b'\'', escapes, "string")?;
                // An `E` prefix was read as a word: it belongs to the literal.
                let start = match words.last() {
                    Some(w) if escapes && standard_strings && w.text.eq_ignore_ascii_case("e") => {
                        words.pop();
                        start - 1
                    }
                    _ => start,
                };
                push(&mut words, depth, start, &sql[start..i], true);
            }
            b'"' => {
                let start = i;
                i = skip_quoted(bytes, i, b'"', false, "quoted identifier")?;
                push(&mut words, depth, start, &sql[start..i], false);
            }
            b',' => {
                push(&mut words, depth, i, ",", false);
                i += 1;
            }
            b'$' if dollar_tag(bytes, i).is_some() => {
                let tag = dollar_tag(bytes, i).expect("checked just above");
                let body = i + tag.len();
                let end = find(&bytes[body..], tag).ok_or(StatementError::Unterminated {
                    what: "dollar-quoted string",
                })?;
                push(&mut words, depth, i, &sql[i..body + end + tag.len()], true);
                i = body + end + tag.len();
            }
            _ if c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80 => {
                let start = i;
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric()
                        || matches!(bytes[i], b'_' | b'$')
                        || bytes[i] >= 0x80)
                {
                    i += 1;
                }
                // A word may end inside a multi-byte character only at a byte >= 0x80, which
                // the loop includes: the slice is on character boundaries.
                push(&mut words, depth, start, &sql[start..i], false);
            }
            _ => {
                // Operators and punctuation: not words; the check never needs them.
                i += 1;
            }
        }
    }
    if depth > 0 {
        return Err(StatementError::Unterminated {
            what: "parenthesis",
        });
    }
    Ok(words)
}

fn is_word_start(bytes: &[u8], i: usize) -> bool {
    // Identifiers also continue with `$` and any non-ASCII byte.
    i == 0
        || !(bytes[i - 1].is_ascii_alphanumeric() || matches!(bytes[i - 1], b'_' | b'$' | 0x80..))
}

/// Past the closing quote of the quoted text opening at `start`.
fn skip_quoted(
    bytes: &[u8],
    start: usize,
    quote: u8,
    escapes: bool,
    what: &'static str,
) -> Result<usize, StatementError> {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if escapes => i += 2,
            c if c == quote => {
                if bytes.get(i + 1) == Some(&quote) {
                    i += 2; // A doubled quote stands for itself.
                } else {
                    return Ok(i + 1);
                }
            }
            _ => i += 1,
        }
    }
    Err(StatementError::Unterminated { what })
}

/// Past the end of the (nestable) block comment opening at `start`.
fn skip_block_comment(bytes: &[u8], start: usize) -> Result<usize, StatementError> {
    let mut depth = 0usize;
    let mut i = start;
    while i + 1 < bytes.len() {
        match (bytes[i], bytes[i + 1]) {
            (b'/', b'*') => {
                depth += 1;
                i += 2;
            }
            (b'*', b'/') => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return Ok(i);
                }
            }
            _ => i += 1,
        }
    }
    Err(StatementError::Unterminated { what: "comment" })
}

/// The `$tag$` opening at `i`, if one does (`$` then an optional identifier then `$`).
fn dollar_tag(bytes: &[u8], i: usize) -> Option<&[u8]> {
    if i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_') {
        return None; // `$` inside an identifier, or a parameter like `$1` after a word.
    }
    let rest = &bytes[i + 1..];
    let len = rest.iter().position(|&b| b == b'$')?;
    let tag = &rest[..len];
    let valid = tag.first().is_none_or(|b| !b.is_ascii_digit())
        && tag
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80);
    valid.then(|| &bytes[i..i + len + 2])
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn representations_are_read_in_both_syntaxes() {
        let rep = |sql: &str| representation(sql).map(|r| r.to_string());
        let text = Some("FORMAT text".to_owned());
        assert_eq!(rep("COPY t TO STDOUT"), text);
        assert_eq!(rep("COPY (SELECT 'csv', format FROM t) TO STDOUT"), text);
        assert_eq!(rep("COPY t (a, \"csv\") FROM STDIN (HEADER false)"), text);
        assert_eq!(
            rep("COPY t TO STDOUT WITH (FORMAT csv, HEADER, FORCE_QUOTE (a, b))"),
            Some("FORMAT csv".to_owned())
        );
        assert_eq!(
            rep("copy t from stdin csv header delimiter as ';' force not null a, b quote '\"'"),
            Some("FORMAT csv, DELIMITER ';', QUOTE '\"'".to_owned())
        );
        assert_eq!(
            rep("COPY t FROM STDIN (NULL '', FORMAT 'csv', ENCODING 'LATIN1', DELIMITER E'\\t')"),
            Some("FORMAT csv, DELIMITER E'\\t', NULL '', ENCODING 'LATIN1'".to_owned())
        );
        assert_eq!(
            rep("COPY BINARY t TO STDOUT"),
            Some("FORMAT binary".to_owned())
        );
        assert_eq!(
            rep("COPY t TO STDOUT WITH BINARY"),
            Some("FORMAT binary".to_owned())
        );
        // A format given as an escape string or a dollar quote: cannot be told.
        assert_eq!(rep("COPY t TO STDOUT (FORMAT $$csv$$)"), None);
    }

    #[test]
    fn words_after_where_are_not_options() {
        let rep = |sql: &str| representation(sql).map(|r| r.to_string());
        assert_eq!(
            rep("COPY t FROM STDIN WHERE note IS NULL AND x > 0"),
            Some("FORMAT text".to_owned())
        );
        assert_eq!(
            rep("copy t from stdin csv where format = 'x' and delimiter is null"),
            Some("FORMAT csv".to_owned())
        );
        assert_eq!(
            rep("COPY t FROM STDIN (FORMAT csv) WHERE (a IS NULL) OR binary_col IS NULL"),
            Some("FORMAT csv".to_owned())
        );
        // A quoted "where" is a column name, not the keyword.
        assert_eq!(
            rep("COPY t (\"where\") FROM STDIN (NULL 'x')"),
            Some("FORMAT text, NULL 'x'".to_owned())
        );
    }

    #[test]
    fn copy_out_forms_are_accepted() {
        for sql in [
            "COPY t TO STDOUT",
            "copy public.\"Odd \"\"Name\"\"\" (a, b) to stdout with (format binary)",
            "COPY (SELECT i FROM generate_series(1, 1000000) AS g(i)) TO STDOUT",
            "  -- a comment\n /* and /* nested */ one */ COPY (SELECT 'FROM STDIN' , $$ to stdin $$) TO STDOUT;",
            "COPY (SELECT $x$ a ; b $x$) TO STDOUT (FORMAT csv, HEADER)",
            "COPY (SELECT E'it\\'s' ) TO STDOUT",
        ] {
            assert_eq!(check(sql, Direction::ToStdout), Ok(()), "{sql}");
        }
    }

    #[test]
    fn hidden_second_statements_are_found_as_the_server_would_read_them() {
        use StatementError as E;
        let out = Direction::ToStdout;
        // A line comment ends at a carriage return too.
        assert!(matches!(
            check("COPY t TO STDOUT --\r; DROP TABLE t", out),
            Err(E::Several { .. })
        ));
        // With standard_conforming_strings off, `\'` does not end a plain string.
        let sneaky = r"COPY (SELECT 'a\', ') TO STDOUT; DROP TABLE t; --' ) TO STDOUT";
        assert_eq!(check_with(sneaky, out, true), Ok(()));
        assert!(matches!(
            check_with(sneaky, out, false),
            Err(E::Several { .. })
        ));
        // `x$E'…'` is an identifier then a plain string, not an escape string.
        let dollar = r"COPY (SELECT 1 AS x$E'\') TO STDOUT; DROP TABLE t; --') TO STDOUT";
        assert!(
            matches!(check(dollar, out), Err(E::Several { .. })),
            "{dollar}"
        );
    }

    #[test]
    fn copy_in_forms_are_accepted() {
        for sql in [
            "COPY t FROM STDIN",
            "copy s.t (a) from stdin (format csv) where a > 'to stdout'",
        ] {
            assert_eq!(check(sql, Direction::FromStdin), Ok(()), "{sql}");
        }
    }

    #[test]
    fn each_wrong_statement_gets_its_own_error() {
        use StatementError as E;
        let out = Direction::ToStdout;
        assert!(matches!(check("", out), Err(E::Empty { .. })));
        assert!(matches!(check(" -- nothing", out), Err(E::Empty { .. })));
        assert!(
            matches!(check("SELECT 1", out), Err(E::NotCopy { statement, .. }) if statement == "SELECT 1")
        );
        assert!(matches!(
            check("COPY t FROM STDIN", out),
            Err(E::WrongDirection { .. })
        ));
        assert!(matches!(
            check("COPY t TO STDOUT", Direction::FromStdin),
            Err(E::WrongDirection { .. })
        ));
        assert!(matches!(
            check("COPY t TO '/tmp/x'", out),
            Err(E::NotStdio { word: "TO", .. })
        ));
        assert!(matches!(
            check("COPY t FROM PROGRAM 'cat'", Direction::FromStdin),
            Err(E::NotStdio { .. })
        ));
        assert!(matches!(
            check("COPY t TO STDOUT; DROP TABLE t", out),
            Err(E::Several { .. })
        ));
        assert!(matches!(
            check("COPY (SELECT 'x) TO STDOUT", out),
            Err(E::Unterminated { what: "string" })
        ));
        assert!(matches!(
            check("COPY (SELECT 1 TO STDOUT", out),
            Err(E::Unterminated {
                what: "parenthesis"
            })
        ));
        assert!(matches!(
            check("COPY t TO STDOUT /* open", out),
            Err(E::Unterminated { what: "comment" })
        ));
        assert!(matches!(check("COPY t", out), Err(E::NotCopy { .. })));
    }

    #[test]
    fn messages_name_the_problem() {
        let e = check("COPY t FROM STDIN", Direction::ToStdout).unwrap_err();
        assert_eq!(
            e.to_string(),
            "expected a COPY TO STDOUT, got a COPY FROM STDIN"
        );
        let e = check("select\n  1", Direction::FromStdin).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the statement is not a COPY: select 1; expected COPY FROM STDIN"
        );
        let long = format!("SELECT {}", "x, ".repeat(40));
        let e = check(&long, Direction::FromStdin).unwrap_err();
        assert!(e.to_string().contains(", x,…; expected"), "{e}");
    }

    proptest::proptest! {
        #[test]
        fn never_panics(sql in ".{0,80}") {
            let _ = check(&sql, Direction::ToStdout);
            let _ = check(&sql, Direction::FromStdin);
        }

        #[test]
        fn never_panics_on_sql_like_input(parts in proptest::collection::vec(
            proptest::sample::select(vec![
                "COPY", "copy", "TO", "FROM", "STDOUT", "STDIN", "(", ")", "'", "''", "\"", "$$",
                "$a$", "--", "\n", "/*", "*/", ";", " ", "E'", "\\", "é", "x",
            ]), 0..24)) {
            let sql: String = parts.concat();
            let _ = check(&sql, Direction::ToStdout);
        }
    }
}
