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
    /// `COPY TO STDOUT` or `COPY FROM STDIN`.
    pub fn describe(self) -> &'static str {
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
    /// psql's `\copy` meta-command, which no server reads (it slipped through as a COPY, the
    /// server then saying only "syntax error at or near \"\\\"").
    #[error(
        "the statement is psql's \\copy meta-command, which no server reads; expected \
         {expected}: write COPY (copyman does the client's side: a file on this machine is \
         --from FILE or --to FILE)"
    )]
    MetaCommand {
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
    /// `TO`/`FROM` followed by a bare word other than `STDOUT`/`STDIN` (`FROM STIDN`, psql's
    /// `pstdin`): no server file either, whose name is a quoted string — a typo.
    #[error(
        "expected a {expected}, got COPY {word} {target}: did you mean {stdio}? (a file on the \
         server is named by a 'quoted string', a program by PROGRAM '…')"
    )]
    Misspelt {
        /// The COPY expected.
        expected: &'static str,
        /// `TO` or `FROM`.
        word: &'static str,
        /// The word given.
        target: String,
        /// `STDOUT` or `STDIN`.
        stdio: &'static str,
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
    /// A `COPY (DELETE … RETURNING …) TO STDOUT` (a query that changes data) on a session in no
    /// transaction: its change commits as soon as its rows are read, before any receiver
    /// commits, and a copy that fails then leaves those rows nowhere. Refused from its words,
    /// or by its server (`said`): such a COPY runs in a read-only transaction, where a change
    /// the words do not show (a function that deletes) fails (lib49 F3: a dequeue function's
    /// rows were deleted and stored nowhere).
    #[error(
        "the COPY's query changes data{} and its session is in no transaction: the change would \
         commit as soon as its rows are read, before any receiver commits, and a failed copy \
         would leave them nowhere; BEGIN on the source first, and COMMIT it once every receiver \
         committed (copyman_core::commit orders that)",
        said.as_ref().map(|s| format!(" (its server said: {s}; copyman runs such a COPY read only)")).unwrap_or_default()
    )]
    WritesOutsideTransaction {
        /// The server's words, where it refused the change (SQLSTATE 25006).
        said: Option<String>,
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
/// // A `;` inside the query too (the server refuses it; a description of the query would run
/// // what follows it).
/// let inside = "COPY (SELECT 1; COMMIT; DELETE FROM t) TO STDOUT";
/// assert!(check_with(inside, Direction::ToStdout, true).is_err());
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
    if sql.trim_start().starts_with('\\') {
        return Err(StatementError::MetaCommand { expected });
    }
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
    // A bare word is neither a server file ('…', E'…') nor PROGRAM: a misspelt STDIN/STDOUT.
    let bare = target.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && !target.contains('\'')
        && !target.eq_ignore_ascii_case("program");
    let got = match (to, target.to_ascii_lowercase().as_str()) {
        (true, "stdout") => Direction::ToStdout,
        (false, "stdin") => Direction::FromStdin,
        (to, _) if bare => {
            let (word, stdio) = if to {
                ("TO", "STDOUT")
            } else {
                ("FROM", "STDIN")
            };
            return Err(StatementError::Misspelt {
                expected,
                word,
                target: target.to_owned(),
                stdio,
            });
        }
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

/// How a COPY statement writes or reads its rows: the options that change what the bytes mean,
/// each at its effective value (the value given, decoded, else the format's default), so that
/// two spellings of one representation are equal. Two ends of one copy must agree on every one
/// of them, or the rows are read as something else (a text `\N` taken for a CSV string, CSV's
/// empty string for text's NULL, …).
///
/// An option the format does not read is left empty (or `None`): the server refuses it (text's
/// QUOTE and ESCAPE, binary's DELIMITER and NULL) or ignores it (binary's ENCODING).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Representation {
    /// `text`, `csv` or `binary`.
    pub format: String,
    /// DELIMITER: a tab in text, `,` in csv, unless given; empty in binary.
    pub delimiter: String,
    /// NULL: `\N` in text, empty in csv, unless given; empty in binary.
    pub null: String,
    /// QUOTE: `"` in csv unless given; empty in text and binary.
    pub quote: String,
    /// ESCAPE: QUOTE's value in csv unless given; empty in text and binary.
    pub escape: String,
    /// ENCODING, as the server names the encoding it reads as ([`encoding_name`]: `'latin-1'`
    /// and `'ISO_8859_1'` are `LATIN1`, `'unicode'` is `UTF8`); `None` when not given (the
    /// session's `client_encoding`, see [`Representation::in_session`]) and in binary.
    pub encoding: Option<String>,
    /// HEADER (or HEADER MATCH): the first line is a header, no row (text and csv). Two ends
    /// must agree on it ([`Representation::agrees_with`]): a COPY TO's header is a line only a
    /// COPY FROM with HEADER skips, and a COPY FROM with HEADER skips the first row of data
    /// written without one.
    pub header: bool,
    /// FORCE_NULL and FORCE_NOT_NULL (csv, COPY FROM), each with its columns (`FORCE_NULL (v)`,
    /// sorted): values read otherwise than they were written (a quoted empty string as NULL, a
    /// NULL as an empty string).
    pub forced_nulls: Vec<String>,
}

/// PostgreSQL's encoding names and aliases (`pg_encname_tbl` in its `src/common/encnames.c`), as
/// the server looks them up (letters and digits, lower-case), sorted, each with the name the
/// server gives that encoding (its `pg_enc2name_tbl`, what `client_encoding` reports).
const ENCODINGS: &[(&str, &str)] = &[
    ("abc", "WIN1258"),
    ("alt", "WIN866"),
    ("big5", "BIG5"),
    ("euccn", "EUC_CN"),
    ("eucjis2004", "EUC_JIS_2004"),
    ("eucjp", "EUC_JP"),
    ("euckr", "EUC_KR"),
    ("euctw", "EUC_TW"),
    ("gb18030", "GB18030"),
    ("gbk", "GBK"),
    ("iso88591", "LATIN1"),
    ("iso885910", "LATIN6"),
    ("iso885913", "LATIN7"),
    ("iso885914", "LATIN8"),
    ("iso885915", "LATIN9"),
    ("iso885916", "LATIN10"),
    ("iso88592", "LATIN2"),
    ("iso88593", "LATIN3"),
    ("iso88594", "LATIN4"),
    ("iso88595", "ISO_8859_5"),
    ("iso88596", "ISO_8859_6"),
    ("iso88597", "ISO_8859_7"),
    ("iso88598", "ISO_8859_8"),
    ("iso88599", "LATIN5"),
    ("johab", "JOHAB"),
    ("koi8", "KOI8R"),
    ("koi8r", "KOI8R"),
    ("koi8u", "KOI8U"),
    ("latin1", "LATIN1"),
    ("latin10", "LATIN10"),
    ("latin2", "LATIN2"),
    ("latin3", "LATIN3"),
    ("latin4", "LATIN4"),
    ("latin5", "LATIN5"),
    ("latin6", "LATIN6"),
    ("latin7", "LATIN7"),
    ("latin8", "LATIN8"),
    ("latin9", "LATIN9"),
    ("mskanji", "SJIS"),
    ("muleinternal", "MULE_INTERNAL"),
    ("shiftjis", "SJIS"),
    ("shiftjis2004", "SHIFT_JIS_2004"),
    ("sjis", "SJIS"),
    ("sqlascii", "SQL_ASCII"),
    ("tcvn", "WIN1258"),
    ("tcvn5712", "WIN1258"),
    ("uhc", "UHC"),
    ("unicode", "UTF8"),
    ("utf8", "UTF8"),
    ("vscii", "WIN1258"),
    ("win", "WIN1251"),
    ("win1250", "WIN1250"),
    ("win1251", "WIN1251"),
    ("win1252", "WIN1252"),
    ("win1253", "WIN1253"),
    ("win1254", "WIN1254"),
    ("win1255", "WIN1255"),
    ("win1256", "WIN1256"),
    ("win1257", "WIN1257"),
    ("win1258", "WIN1258"),
    ("win866", "WIN866"),
    ("win874", "WIN874"),
    ("win932", "SJIS"),
    ("win936", "GBK"),
    ("win949", "UHC"),
    ("win950", "BIG5"),
    ("windows1250", "WIN1250"),
    ("windows1251", "WIN1251"),
    ("windows1252", "WIN1252"),
    ("windows1253", "WIN1253"),
    ("windows1254", "WIN1254"),
    ("windows1255", "WIN1255"),
    ("windows1256", "WIN1256"),
    ("windows1257", "WIN1257"),
    ("windows1258", "WIN1258"),
    ("windows866", "WIN866"),
    ("windows874", "WIN874"),
    ("windows932", "SJIS"),
    ("windows936", "GBK"),
    ("windows949", "UHC"),
    ("windows950", "BIG5"),
];

/// The encoding `name` names, as PostgreSQL reads an encoding name (`pg_char_to_encoding`): its
/// letters and digits, lower-case, looked up among the server's names and aliases, and given as
/// the server names that encoding — so that two spellings of one encoding are equal. A name the
/// server does not know (it refuses the statement) comes back cleaned, lower-case.
///
/// ```
/// use copyman_core::statement::encoding_name;
///
/// assert_eq!(encoding_name("Latin-1"), "LATIN1");
/// assert_eq!(encoding_name("ISO_8859_1"), "LATIN1");
/// assert_eq!(encoding_name("unicode"), encoding_name("UTF8"));
/// assert_eq!(encoding_name("Windows-1252"), "WIN1252");
/// assert_eq!(encoding_name("no such"), "nosuch");
/// ```
pub fn encoding_name(name: &str) -> String {
    known_encoding(name).map_or_else(|| alias_key(name), str::to_owned)
}

/// The name PostgreSQL gives the encoding `name` (any spelling of its names and aliases), or
/// `None` when it knows no such encoding (a server refuses it: 22023).
///
/// ```
/// use copyman_core::statement::known_encoding;
///
/// assert_eq!(known_encoding("latin-1"), Some("LATIN1"));
/// assert_eq!(known_encoding("bogus"), None);
/// ```
pub fn known_encoding(name: &str) -> Option<&'static str> {
    let key = alias_key(name);
    let i = ENCODINGS
        .binary_search_by(|(alias, _)| (*alias).cmp(&key))
        .ok()?;
    Some(ENCODINGS[i].1)
}

/// An encoding name as the server looks it up: its letters and digits, lower-case.
fn alias_key(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// WIN1252's characters at 0x80–0x9F (0: none there).
const WIN1252_80_9F: [u16; 32] = [
    0x20AC, 0, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039,
    0x0152, 0, 0x017D, 0, 0, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC,
    0x2122, 0x0161, 0x203A, 0x0153, 0, 0x017E, 0x0178,
];

/// Text in `encoding` (any spelling [`encoding_name`] reads) as a string: UTF8's and SQL_ASCII's
/// read as UTF-8 (invalid sequences as U+FFFD), LATIN1's byte for byte (each byte is the
/// character of its number), WIN1252's as LATIN1's but for its own 0x80–0x9F (`€`, `’` …);
/// another encoding's bytes beyond ASCII as U+FFFD each, which names nothing (a header label, a
/// column name), rather than as other characters.
///
/// ```
/// use copyman_core::statement::decode_text;
///
/// assert_eq!(decode_text(b"caf\xc3\xa9", "UTF8"), "café");
/// assert_eq!(decode_text(b"caf\xe9", "latin1"), "café");
/// assert_eq!(decode_text(b"\x80 caf\xe9", "WIN1252"), "€ café");
/// assert_eq!(decode_text(b"caf\x82\xa0", "SJIS"), "caf\u{fffd}\u{fffd}");
/// ```
pub fn decode_text(bytes: &[u8], encoding: &str) -> String {
    // As every server reports a UTF8 client_encoding: no name to normalize for each value.
    if encoding == "UTF8" {
        return String::from_utf8_lossy(bytes).into_owned();
    }
    match encoding_name(encoding).as_str() {
        "UTF8" | "SQL_ASCII" => String::from_utf8_lossy(bytes).into_owned(),
        "LATIN1" => bytes.iter().map(|&b| char::from(b)).collect(),
        "WIN1252" => bytes
            .iter()
            .map(|&b| match b {
                0x80..=0x9f => char::from_u32(u32::from(WIN1252_80_9F[usize::from(b - 0x80)]))
                    .filter(|c| *c != '\0')
                    .unwrap_or('\u{fffd}'),
                b => char::from(b),
            })
            .collect(),
        _ => bytes
            .iter()
            .map(|&b| {
                if b.is_ascii() {
                    char::from(b)
                } else {
                    '\u{fffd}'
                }
            })
            .collect(),
    }
}

/// What a value comes back as when PostgreSQL converts it from UTF8 into `encoding` and back,
/// where that is another value: `None` for an encoding whose conversions are one-to-one.
/// PostgreSQL 15 maps several Unicode characters to one code in these three (measured over
/// U+0080–U+2FFFF: SJIS 8 characters, SHIFT_JIS_2004 2, EUC_JP 1; every other client encoding
/// converts each character it holds back to itself, and refuses one it lacks). Data that passes
/// between two servers through such a `client_encoding` is changed without a word.
///
/// ```
/// use copyman_core::statement::changes_on_the_way_back;
///
/// assert!(changes_on_the_way_back("Shift-JIS").is_some());
/// assert!(changes_on_the_way_back("LATIN1").is_none());
/// ```
pub fn changes_on_the_way_back(encoding: &str) -> Option<&'static str> {
    match encoding_name(encoding).as_str() {
        "SJIS" => {
            Some("¥ comes back as \\, 〜 as ～, − as －, ‖ as ∥, ¬ as ￢, ¢ as ￠, £ as ￡, ‾ as ~")
        }
        "SHIFT_JIS_2004" => Some("¥ comes back as \\, ‾ as ~"),
        "EUC_JP" => Some("¦ comes back as ￤"),
        _ => None,
    }
}

/// What a server encoding's text comes back as when PostgreSQL converts it to UTF8 and back,
/// where that is other bytes: `None` for a server encoding whose conversions are one-to-one.
/// Data that passes between two databases of such an encoding through UTF8 (a `client_encoding`
/// UTF8, or another destination that takes the data in UTF8) arrives changed on the second.
///
/// ```
/// use copyman_core::statement::changes_through_utf8;
///
/// assert!(changes_through_utf8("EUC_JP").is_some());
/// assert!(changes_through_utf8("LATIN1").is_none());
/// ```
pub fn changes_through_utf8(server_encoding: &str) -> Option<&'static str> {
    match encoding_name(server_encoding).as_str() {
        "EUC_JP" => Some(
            "EUC_JP's NEC and IBM duplicates come back as their canonical codes (NEC's ∵ 0xADFA \
             as 0xA2E8)",
        ),
        _ => None,
    }
}

/// Whether `sql` (a statement, or a condition such as `--where`'s) reads otherwise on a server
/// whose `standard_conforming_strings` is off: a `'…'` string with a backslash in it, which such a
/// server reads as an escape (`'C:\\dir'` is `C:\dir` there, `C:\\dir` elsewhere). An `E'…'`
/// or dollar-quoted string reads alike under either setting. Text whose strings do not end
/// where standard SQL ends them (`'it\'s'`) counts as reading otherwise.
///
/// ```
/// use copyman_core::statement::reads_otherwise_without_standard_strings;
///
/// assert!(reads_otherwise_without_standard_strings(r"v <> 'C:\\dir'"));
/// assert!(reads_otherwise_without_standard_strings(r"v = 'it\'s'"));
/// assert!(!reads_otherwise_without_standard_strings(r"v <> E'C:\\dir' AND w = $$a\b$$"));
/// assert!(!reads_otherwise_without_standard_strings("v = 'plain'"));
/// ```
pub fn reads_otherwise_without_standard_strings(sql: &str) -> bool {
    match tokens(sql, true) {
        Ok(tokens) => tokens
            .iter()
            .any(|t| t.literal && t.text.starts_with('\'') && t.text.contains('\\')),
        Err(_) => true,
    }
}

/// The string constants of `sql` (a statement, or a condition such as `--where`'s), each as
/// written (quotes and an `E` prefix included), in order: the text a server reads in its
/// session's settings where the string is cast (`'-1 2:00:00'` an interval, `'12,34'` an
/// amount). Constants that SQL joins into one (separated by white space holding a line break,
/// comments too: `'-1 '` and `'2:00:00'` on the next line are `'-1 2:00:00'`) are one, as
/// written. Empty where
/// `sql` does not scan.
///
/// ```
/// use copyman_core::statement::string_constants;
///
/// assert_eq!(
///     string_constants("iv = interval '-1 2:00' AND n <> E'a\\'' AND m = $$3$$ AND id > 4"),
///     ["'-1 2:00'", "E'a\\''", "$$3$$"]
/// );
/// assert_eq!(string_constants("iv = '-1 '\n  '2:00' OR 'a' 'b'"), ["'-1 '\n  '2:00'", "'a'", "'b'"]);
/// assert_eq!(string_constants(r"iv = U&'\002d1 2:00'"), [r"U&'\002d1 2:00'"]);
/// assert_eq!(string_constants("iv = '-1 ' -- c\n'2:00'"), ["'-1 ' -- c\n'2:00'"]);
/// ```
pub fn string_constants(sql: &str) -> Vec<String> {
    // What lies between two constants SQL joins: white space and comments with a line break.
    let joins = |gap: &str| {
        let mut rest = gap;
        let mut broke = false;
        loop {
            let trimmed = rest.trim_start();
            broke |= rest[..rest.len() - trimmed.len()].contains('\n');
            if let Some(comment) = trimmed.strip_prefix("--") {
                let Some(end) = comment.find('\n') else {
                    return false;
                };
                rest = &comment[end..];
            } else if let Some(comment) = trimmed.strip_prefix("/*") {
                let Some(end) = comment.find("*/") else {
                    return false;
                };
                rest = &comment[end + 2..];
            } else {
                return trimmed.is_empty() && broke;
            }
        }
    };
    let Ok(tokens) = tokens(sql, true) else {
        return Vec::new();
    };
    // Each constant's start and end in `sql`.
    let mut spans: Vec<(usize, usize)> = Vec::new();
    let mut previous_literal = false;
    for t in tokens {
        let end = t.at + t.text.len();
        if !t.literal {
            previous_literal = false;
            continue;
        }
        // A Unicode escape string (`U&'\0041'`): its prefix is the constant's.
        let at = match sql[..t.at].get(t.at.saturating_sub(2)..) {
            Some(prefix) if prefix.eq_ignore_ascii_case("u&") => t.at - 2,
            _ => t.at,
        };
        match spans.last_mut() {
            Some((_, last_end)) if previous_literal && joins(&sql[*last_end..t.at]) => {
                *last_end = end;
            }
            _ => spans.push((at, end)),
        }
        previous_literal = true;
    }
    spans
        .into_iter()
        .map(|(start, end)| sql[start..end].to_owned())
        .collect()
}

/// Whether `sql` names `word` (case aside) outside its string constants and quoted
/// identifiers, at any depth: `money` in `m > 5::money`, not in `'money'`.
///
/// ```
/// use copyman_core::statement::names_word;
///
/// assert!(names_word("m > (5::MONEY)", "money"));
/// assert!(!names_word("t = 'money' AND \"money\" > 1", "money"));
/// ```
pub fn names_word(sql: &str, word: &str) -> bool {
    tokens(sql, true).is_ok_and(|tokens| {
        (tokens.iter())
            .any(|t| !t.literal && !t.text.starts_with('"') && t.text.eq_ignore_ascii_case(word))
    })
}

/// Whether `sql` (a statement, or a condition such as `--where`'s) casts something other than
/// a string constant to the type named `type_name` (`interval`, `money`): `s::interval`,
/// `CAST(s AS interval)`, `(a || b)::money` — text from the data, read in the session's
/// settings. A typed or cast string constant (`interval '1 day'`, `'5'::money`) is not: its
/// reading can be checked ([`string_constants`]). Text that does not scan counts as casting.
///
/// ```
/// use copyman_core::statement::casts_to;
///
/// assert!(casts_to("COPY (SELECT s::interval FROM raw) TO STDOUT", "interval"));
/// assert!(casts_to("x = CAST(a || b AS Interval)", "interval"));
/// assert!(!casts_to("at > now() - interval '1 day' AND d < '2 days'::interval", "interval"));
/// assert!(!casts_to("CAST('5' AS money) < m", "money"));
/// assert!(!casts_to("m > 12.34::numeric::money AND n < s::int8::money", "money"));
/// assert!(casts_to("m > s2::money", "money"));
/// assert!(!casts_to("m > 5", "money"));
/// // However the type is written (types69 F8: these passed).
/// assert!(casts_to("s::pg_catalog.money", "money") && casts_to("s::\"money\"", "money"));
/// assert!(casts_to("CAST(s AS \"pg_catalog\" . Interval)", "interval"));
/// assert!(!casts_to("s::myschema.money", "money"));
/// assert!(!casts_to("s::pg_catalog.numeric::pg_catalog.money", "money"));
/// ```
pub fn casts_to(sql: &str, type_name: &str) -> bool {
    let Ok(tokens) = tokens(sql, true) else {
        return true;
    };
    fn ends_with_word<'a>(text: &'a str, word: &str) -> Option<&'a str> {
        let cut = text.len().checked_sub(word.len())?;
        let (rest, end) = (text.get(..cut)?, text.get(cut..)?);
        let whole = !rest.ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_');
        (end.eq_ignore_ascii_case(word) && whole).then_some(rest)
    }
    tokens.iter().any(|t| {
        let name = (t.text.strip_prefix('"').and_then(|n| n.strip_suffix('"'))).unwrap_or(&t.text);
        if t.literal || !name.eq_ignore_ascii_case(type_name) {
            return false;
        }
        let mut before = sql[..t.at].trim_end();
        // Qualified by its schema: `pg_catalog.money`, `"pg_catalog"."money"` (another
        // schema's type of that name is another type).
        if let Some(qualified) = before.strip_suffix('.') {
            let qualified = qualified.trim_end();
            match (qualified.strip_suffix("\"pg_catalog\""))
                .or_else(|| ends_with_word(qualified, "pg_catalog"))
            {
                Some(rest) => before = rest.trim_end(),
                None => return false,
            }
        }
        if let Some(cast) = before.strip_suffix("::") {
            return casts_text(cast);
        }
        // CAST(x AS type): what comes before `AS` is what is cast.
        ends_with_word(before, "as").is_some_and(casts_text)
    })
}

/// Whether what ends `cast` (the text before a `::type` or a CAST's `AS`) may be text: not a
/// string constant (its reading is checked), a number constant (`12.34`), nor a cast to a
/// number type (`s::numeric`): those read alike in every setting.
fn casts_text(cast: &str) -> bool {
    const NUMBER_TYPES: [&str; 12] = [
        "numeric", "decimal", "int", "int2", "int4", "int8", "integer", "bigint", "smallint",
        "float4", "float8", "real",
    ];
    let cast = cast.trim_end();
    if cast.ends_with('\'') || cast.ends_with('$') {
        return false;
    }
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.';
    let start = cast.rfind(|c: char| !word(c)).map_or(0, |at| at + 1);
    let tail = &cast[start..];
    let number = tail.starts_with(|c: char| c.is_ascii_digit()) && tail.parse::<f64>().is_ok();
    let bare = match tail.split_once('.') {
        Some((schema, name)) if schema.eq_ignore_ascii_case("pg_catalog") => name,
        _ => tail,
    };
    let to_number = cast[..start].trim_end().ends_with("::")
        && NUMBER_TYPES.iter().any(|t| t.eq_ignore_ascii_case(bare));
    !(number || to_number)
}

/// The values given for DELIMITER, NULL, QUOTE, ESCAPE and ENCODING, in that order.
type Given = [Option<String>; 5];
const OPTIONS: [&str; 5] = ["delimiter", "null", "quote", "escape", "encoding"];

impl Representation {
    /// The representation of `format` with the options `given`; `None` for a format the server
    /// does not know (it refuses the statement).
    fn resolve(format: &str, given: Given) -> Option<Self> {
        let [delimiter, null, quote, escape, encoding] = given;
        let or = |value: Option<String>, default: &str| value.unwrap_or_else(|| default.to_owned());
        let encoding = encoding.map(|name| encoding_name(&name));
        Some(match format {
            "text" => Self {
                format: "text".to_owned(),
                delimiter: or(delimiter, "\t"),
                null: or(null, "\\N"),
                quote: String::new(),
                escape: String::new(),
                encoding,
                header: false,
                forced_nulls: Vec::new(),
            },
            "csv" => {
                let quote = or(quote, "\"");
                Self {
                    format: "csv".to_owned(),
                    delimiter: or(delimiter, ","),
                    null: or(null, ""),
                    escape: or(escape, &quote),
                    quote,
                    encoding,
                    header: false,
                    forced_nulls: Vec::new(),
                }
            }
            "binary" => Self {
                format: "binary".to_owned(),
                delimiter: String::new(),
                null: String::new(),
                quote: String::new(),
                escape: String::new(),
                encoding: None,
                header: false,
                forced_nulls: Vec::new(),
            },
            _ => return None,
        })
    }
}

impl Representation {
    /// This representation as a session reads it: an ENCODING left out is the session's
    /// `client_encoding` (`client_encoding`, as the server reported it; copyman's raw
    /// connections set UTF8 unless told otherwise; with `SQL_ASCII`, no conversion, the
    /// server's own). Binary data too: its text fields are sent and read in the client
    /// encoding (`textsend`, `textrecv`).
    ///
    /// ```
    /// use copyman_core::statement::representation;
    ///
    /// let none = representation("COPY t TO STDOUT").unwrap();
    /// let utf8 = representation("COPY t FROM STDIN (ENCODING 'unicode')").unwrap();
    /// assert_ne!(none, utf8);
    /// assert_eq!(none.clone().in_session(Some("UTF8")), utf8);
    /// assert_ne!(none.in_session(Some("LATIN1")), utf8);
    /// ```
    #[must_use]
    pub fn in_session(mut self, client_encoding: Option<&str>) -> Self {
        if self.encoding.is_none() {
            self.encoding = client_encoding.map(encoding_name);
        }
        self
    }

    /// Whether data written in this representation is read alike in `other`: every option the
    /// same, and the encoding too when both ends know theirs (an ENCODING left out is the
    /// session's `client_encoding`, which only the session knows: compare
    /// [`in_session`](Self::in_session) representations to decide on it).
    ///
    /// ```
    /// use copyman_core::statement::representation;
    ///
    /// let rep = |sql| representation(sql).unwrap();
    /// assert!(rep("COPY t TO STDOUT").agrees_with(&rep("COPY t FROM STDIN (ENCODING 'UTF8')")));
    /// assert!(!rep("COPY t TO STDOUT").agrees_with(&rep("COPY t FROM STDIN CSV")));
    /// assert!(!rep("COPY t TO STDOUT (ENCODING 'latin1')")
    ///     .agrees_with(&rep("COPY t FROM STDIN (ENCODING 'UTF8')")));
    /// ```
    pub fn agrees_with(&self, other: &Self) -> bool {
        let encodings = match (&self.encoding, &other.encoding) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        };
        encodings
            && self.format == other.format
            && self.delimiter == other.delimiter
            && self.null == other.null
            && self.quote == other.quote
            && self.escape == other.escape
            && self.header == other.header
            && self.forced_nulls == other.forced_nulls
    }

    /// Whether, in text, a value's field can be its NULL string: `COPY … TO` writes a value as it
    /// is but for the characters it escapes (`\\`, `\t`, `\n`, `\r`, `\b`, `\f`, `\v`, a
    /// backslash before the delimiter), and `COPY … FROM` compares the field with the NULL
    /// string before reading its escapes: a NULL string made only of characters and escapes a
    /// value can be written as (`''`, `'NULL'`, `'\t'`, `'\\'`) reads such values back as NULL.
    /// `\N` cannot be a value's field (a backslash in one is written `\\`). `false` in csv (a
    /// value equal to the NULL string is quoted) and binary.
    ///
    /// ```
    /// use copyman_core::statement::representation;
    ///
    /// let collides = |sql: &str| representation(sql).unwrap().null_collides();
    /// assert!(!collides("COPY t TO STDOUT"));
    /// assert!(collides("COPY t TO STDOUT (NULL 'NULL')"));
    /// assert!(collides("COPY t TO STDOUT (NULL '')"));
    /// assert!(collides(r"COPY t TO STDOUT (NULL E'\\t')"));
    /// assert!(collides(r"COPY t TO STDOUT (NULL E'\\null')")); // a newline, then "ull"
    /// assert!(!collides(r"COPY t TO STDOUT (NULL E'\\Z')"));
    /// assert!(!collides("COPY t TO STDOUT (FORMAT csv, NULL 'NULL')"));
    /// ```
    pub fn null_collides(&self) -> bool {
        if self.format != "text" {
            return false;
        }
        let delimiter = self.delimiter.chars().next().unwrap_or('\t');
        let mut chars = self.null.chars();
        while let Some(c) = chars.next() {
            match c {
                // An escape COPY writes, or a backslash before something it never escapes.
                '\\' => match chars.next() {
                    Some('\\' | 'b' | 'f' | 'n' | 'r' | 't' | 'v') => {}
                    Some(d) if d == delimiter => {}
                    _ => return false,
                },
                // Characters COPY never writes as they are.
                '\n' | '\r' | '\t' | '\x08' | '\x0b' | '\x0c' => return false,
                c if c == delimiter => return false,
                _ => {}
            }
        }
        true
    }
}

impl fmt::Display for Representation {
    /// `FORMAT csv, DELIMITER ';'`: the format, then the options not at their default.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FORMAT {}", self.format)?;
        let defaults = Self::resolve(&self.format, Given::default()).map(|d| {
            // ESCAPE's default is this QUOTE, not the default QUOTE (in csv, the one with both).
            let escape = if d.escape.is_empty() {
                d.escape
            } else {
                self.quote.clone()
            };
            [d.delimiter, d.null, d.quote, escape]
        });
        let values = [&self.delimiter, &self.null, &self.quote, &self.escape];
        for (i, (name, value)) in OPTIONS.iter().zip(values).enumerate() {
            if defaults.as_ref().is_none_or(|d| d[i] != *value) {
                write!(f, ", {} {}", name.to_ascii_uppercase(), sql_string(value))?;
            }
        }
        if let Some(encoding) = &self.encoding {
            write!(f, ", ENCODING {}", sql_string(encoding))?;
        }
        if self.header {
            f.write_str(", HEADER")?;
        }
        for forced in &self.forced_nulls {
            write!(f, ", {forced}")?;
        }
        Ok(())
    }
}

/// The data representation of a COPY statement that [`check`] accepted: its format and the
/// options that change what the bytes mean, in the new (`WITH (FORMAT csv, NULL '')`) and the
/// old (`WITH CSV NULL AS ''`, `COPY BINARY t`) syntax alike, at their effective values (see
/// [`Representation`]). `None` when it cannot be told: an option's value given in a form
/// copyman does not read (a dollar quote, a `U&'…'` string, an `E'…'` escape other than `\t`
/// `\n` `\r` `\b` `\f` `\\` `\'` `\xHH` and octal), or a format the server does not know.
///
/// ```
/// use copyman_core::statement::representation;
///
/// let send = representation("COPY t TO STDOUT").unwrap();
/// let receive = representation("COPY t FROM STDIN (FORMAT csv)").unwrap();
/// assert_ne!(send, receive);
/// assert_eq!(send, representation("copy (select 1) to stdout with (format 'text')").unwrap());
/// assert_eq!(receive, representation("COPY u FROM STDIN CSV DELIMITER ',' QUOTE '\"'").unwrap());
/// assert_eq!(
///     representation("COPY t FROM STDIN WITH CSV DELIMITER AS ';'").unwrap().to_string(),
///     "FORMAT csv, DELIMITER ';'"
/// );
/// ```
pub fn representation(sql: &str) -> Option<Representation> {
    read_options(sql).map(|read| read.representation)
}

/// The ENCODING a binary COPY statement gives, as the server names it ([`encoding_name`]): one
/// the server ignores, a binary COPY's text values being in the session's `client_encoding`.
/// `None` where the statement is not binary, gives none, or cannot be read.
///
/// ```
/// use copyman_core::statement::binary_encoding;
///
/// let sql = "COPY t FROM STDIN (FORMAT binary, ENCODING 'latin1')";
/// assert_eq!(binary_encoding(sql).as_deref(), Some("LATIN1"));
/// assert_eq!(binary_encoding("COPY t FROM STDIN (ENCODING 'latin1')"), None);
/// ```
pub fn binary_encoding(sql: &str) -> Option<String> {
    let read = read_options(sql)?;
    let [.., encoding] = &read.given;
    (read.representation.format == "binary").then_some(())?;
    encoding.as_deref().map(encoding_name)
}

/// What [`read_options`] reads of a COPY statement's options.
struct ReadOptions {
    /// The representation they make.
    representation: Representation,
    /// DELIMITER, NULL, QUOTE, ESCAPE and ENCODING as given (`None` where left out).
    given: Given,
    /// FORCE_QUOTE given (its columns or `*`).
    force_quote: bool,
}

/// A COPY statement's options, as [`representation`] reads them: `None` when they cannot be
/// read.
fn read_options(sql: &str) -> Option<ReadOptions> {
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
    let mut given = Given::default();
    let mut forced_nulls: Vec<String> = Vec::new();
    let mut force_quote = false;
    // After `TO STDOUT` / `FROM STDIN`: the options, as words at depth 0 (old syntax) or in
    // parentheses at depth 1 (deeper: an option's column list).
    let start = tokens
        .iter()
        .position(|t| std::ptr::eq(t, top[at]))
        .map(|i| i + 2)?;
    let rest = tokens.get(start..).unwrap_or_default();
    let mut i = 0;
    while let Some(t) = rest.get(i) {
        i += 1;
        if t.depth > 1 || t.literal {
            continue;
        }
        // An option's name is an identifier: `"null"` is NULL (a quoted name as it is); a
        // `U&"…"` one is not read here: the representation cannot be told.
        let quoted = t.depth == 1 && t.text.starts_with('"');
        if quoted && sql.get(..t.at).is_some_and(|before| before.ends_with('&')) {
            return None;
        }
        let word = if quoted {
            decode(t)?
        } else {
            t.text.to_ascii_lowercase()
        };
        // HEADER is read by `has_header`, from its unquoted name: a quoted one cannot be told.
        if quoted && word == "header" {
            return None;
        }
        match word.as_str() {
            // `FROM STDIN … WHERE condition`: the condition's words are not options.
            "where" if t.depth == 0 => break,
            "force_null" | "force_not_null" if t.depth == 1 => {
                // Its columns (depth 2), or `*` (no token).
                let mut columns = Vec::new();
                while let Some(c) = rest.get(i).filter(|c| c.depth == 2) {
                    if c.text != "," {
                        columns.push(decode(c)?);
                    }
                    i += 1;
                }
                if columns.is_empty() {
                    columns.push("*".to_owned());
                }
                // A set of columns: their order says nothing.
                columns.sort();
                forced_nulls.push(format!(
                    "{} ({})",
                    word.to_ascii_uppercase(),
                    columns.join(", ")
                ));
            }
            "binary" | "csv" if t.depth == 0 => format = Some(word),
            "format" => {
                let (value, next) = option_value(rest, i - 1)?;
                format = Some(value);
                i = next;
            }
            _ if OPTIONS.contains(&word.as_str()) => {
                let (value, next) = option_value(rest, i - 1)?;
                let slot = OPTIONS.iter().position(|o| *o == word)?;
                *given.get_mut(slot)? = Some(value);
                i = next;
            }
            // Old syntax: FORCE QUOTE cols, FORCE NOT NULL cols, FORCE NULL cols: past the
            // list, whose columns may be named like options.
            "force" if t.depth == 0 => {
                let is = |i: usize, word: &str| {
                    rest.get(i)
                        .is_some_and(|t| t.depth == 0 && t.text.eq_ignore_ascii_case(word))
                };
                let not = is(i, "not");
                if not {
                    i += 1;
                }
                force_quote |= is(i, "quote");
                if is(i, "null") {
                    // Its columns: a name, then `, name` …
                    let mut columns = Vec::new();
                    let mut at = i + 1;
                    while let Some(c) = rest.get(at).filter(|c| c.depth == 0) {
                        columns.push(decode(c)?);
                        if !is(at + 1, ",") {
                            break;
                        }
                        at += 2;
                    }
                    columns.sort();
                    let name = if not { "FORCE_NOT_NULL" } else { "FORCE_NULL" };
                    forced_nulls.push(format!("{name} ({})", columns.join(", ")));
                }
                // QUOTE or NULL, then `*` (not a token) or the columns.
                let star = rest
                    .get(i)
                    .zip(rest.get(i + 1))
                    .is_some_and(|(word, next)| {
                        sql.get(word.at + word.text.len()..next.at)
                            .is_some_and(|between| between.contains('*'))
                    });
                i += if star { 1 } else { 2 };
                while is(i, ",") {
                    i += 2;
                }
            }
            // Its column list (depth 2) is skipped by the loop.
            "force_quote" if t.depth == 1 => force_quote = true,
            // HEADER's and FREEZE's values: skipped by the loop.
            _ => {}
        }
    }
    let mut rep = Representation::resolve(format.as_deref().unwrap_or("text"), given.clone())?;
    rep.header = rep.format != "binary" && has_header(sql) == Some(true);
    forced_nulls.sort();
    rep.forced_nulls = forced_nulls;
    Some(ReadOptions {
        representation: rep,
        given,
        force_quote,
    })
}

/// The server's refusal of a COPY statement's options, in PostgreSQL 15's words (its
/// `ProcessCopyOptions`, in its order), when the statement [`check`] accepted for `direction`
/// names options that cannot go together: FORCE_QUOTE outside csv or in a COPY FROM, HEADER
/// MATCH in a COPY TO, a DELIMITER of more than one byte, QUOTE in text, … The server refuses
/// such a COPY at once, before a row moves; said before connecting, a dry run says it too.
/// `None` when the server takes them, or they cannot be read ([`representation`]).
///
/// ```
/// use copyman_core::statement::{Direction, refused_options};
///
/// let to = |sql| refused_options(sql, Direction::ToStdout);
/// assert_eq!(to("COPY t TO STDOUT (FORMAT csv, FORCE_QUOTE *)"), None);
/// assert_eq!(
///     to("COPY t TO STDOUT (FORCE_QUOTE *)").as_deref(),
///     Some("COPY force quote available only in CSV mode")
/// );
/// assert_eq!(
///     to("COPY t TO STDOUT (DELIMITER '||')").as_deref(),
///     Some("COPY delimiter must be a single one-byte character")
/// );
/// assert_eq!(
///     refused_options("COPY t FROM STDIN CSV FORCE QUOTE *", Direction::FromStdin).as_deref(),
///     Some("COPY force quote only available using COPY TO")
/// );
/// // One character beyond ASCII is one byte in a LATIN1 database: the server's to say.
/// assert_eq!(to("COPY t TO STDOUT (DELIMITER 'é')"), None);
/// ```
pub fn refused_options(sql: &str, direction: Direction) -> Option<String> {
    let ReadOptions {
        representation: rep,
        given,
        force_quote,
    } = read_options(sql)?;
    let [delimiter, null, quote, escape, _] = &given;
    let (csv, binary) = (rep.format == "csv", rep.format == "binary");
    let from = direction == Direction::FromStdin;
    let forced = |kind: &str| {
        rep.forced_nulls
            .iter()
            .any(|f| f.starts_with(&format!("{kind} (")))
    };
    // In binary the server's defaults stand in for the options it refuses there.
    let delim = if binary { "\t" } else { rep.delimiter.as_str() };
    let null_print = if binary { "\\N" } else { rep.null.as_str() };
    let first = |s: &str| s.chars().next().unwrap_or_default();
    // Not one byte in any encoding: no character, or more than one. One character beyond
    // ASCII is one byte in a LATIN1 database (the server counts in its own encoding,
    // recheck42 F1): left to the server.
    let not_one_byte = |s: &str| s.chars().count() != 1;
    let refusal = if !from && header_value(sql).flatten().as_deref() == Some("match") {
        "cannot use \"match\" with HEADER in COPY TO".to_owned()
    } else if binary && delimiter.is_some() {
        "cannot specify DELIMITER in BINARY mode".to_owned()
    } else if binary && null.is_some() {
        "cannot specify NULL in BINARY mode".to_owned()
    } else if not_one_byte(delim) {
        "COPY delimiter must be a single one-byte character".to_owned()
    } else if matches!(delim, "\n" | "\r") {
        "COPY delimiter cannot be newline or carriage return".to_owned()
    } else if null_print.contains(['\n', '\r']) {
        "COPY null representation cannot use newline or carriage return".to_owned()
    } else if !csv && "\\.abcdefghijklmnopqrstuvwxyz0123456789".contains(delim) {
        format!("COPY delimiter cannot be \"{delim}\"")
    } else if binary && header_value(sql).flatten().is_some() {
        "cannot specify HEADER in BINARY mode".to_owned()
    } else if !csv && quote.is_some() {
        "COPY quote available only in CSV mode".to_owned()
    } else if csv && not_one_byte(&rep.quote) {
        "COPY quote must be a single one-byte character".to_owned()
    } else if csv && delim == rep.quote {
        "COPY delimiter and quote must be different".to_owned()
    } else if !csv && escape.is_some() {
        "COPY escape available only in CSV mode".to_owned()
    } else if csv && not_one_byte(&rep.escape) {
        "COPY escape must be a single one-byte character".to_owned()
    } else if !csv && force_quote {
        "COPY force quote available only in CSV mode".to_owned()
    } else if force_quote && from {
        "COPY force quote only available using COPY TO".to_owned()
    } else if !csv && forced("FORCE_NOT_NULL") {
        "COPY force not null available only in CSV mode".to_owned()
    } else if !from && forced("FORCE_NOT_NULL") {
        "COPY force not null only available using COPY FROM".to_owned()
    } else if !csv && forced("FORCE_NULL") {
        "COPY force null available only in CSV mode".to_owned()
    } else if !from && forced("FORCE_NULL") {
        "COPY force null only available using COPY FROM".to_owned()
    } else if null_print.contains(first(delim)) {
        "COPY delimiter must not appear in the NULL specification".to_owned()
    } else if csv && null_print.contains(first(&rep.quote)) {
        "CSV quote character must not appear in the NULL specification".to_owned()
    } else {
        return None;
    };
    Some(refusal)
}

/// The decoded value of the option named at `rest[name]`, and where the value's token is
/// followed; `None` when there is none or it cannot be read.
/// The `FORMAT` a COPY statement names when it is none the server knows (`FORMAT cvs`: the
/// server refuses it, 22023), which [`representation`] cannot read either: said as such rather
/// than as options copyman cannot read.
///
/// ```
/// use copyman_core::statement::unknown_format;
///
/// assert_eq!(unknown_format("COPY t FROM STDIN (FORMAT cvs)").as_deref(), Some("cvs"));
/// assert_eq!(unknown_format("COPY t FROM STDIN (FORMAT 'CSV')").as_deref(), Some("CSV"));
/// assert_eq!(unknown_format("COPY t FROM STDIN (FORMAT csv, HEADER)"), None);
/// assert_eq!(unknown_format("COPY t FROM STDIN"), None);
/// ```
pub fn unknown_format(sql: &str) -> Option<String> {
    let tokens = tokens(sql, true).ok()?;
    let at = tokens
        .iter()
        .position(|t| t.depth == 1 && !t.literal && t.text.eq_ignore_ascii_case("format"))?;
    let (value, _) = option_value(&tokens, at)?;
    (!matches!(value.as_str(), "text" | "csv" | "binary")).then_some(value)
}

fn option_value(rest: &[Token], name: usize) -> Option<(String, usize)> {
    let depth = rest.get(name)?.depth;
    let at_depth = |i: usize| rest.get(i).filter(|t| t.depth == depth);
    // An optional AS (old syntax), then the value.
    let mut i = name + 1;
    if at_depth(i).is_some_and(|t| !t.literal && t.text.eq_ignore_ascii_case("as")) {
        i += 1;
    }
    let value = at_depth(i).filter(|t| t.text != ",")?;
    // A literal right after: a prefix read as a word (`U&'…'`, `N'…'`) or a string continued
    // on the next line; not read.
    if at_depth(i + 1).is_some_and(|t| t.literal) {
        return None;
    }
    Some((decode(value)?, i + 1))
}

/// The value a token stands for: a `'…'` string's text, an `E'…'` string's decoded text, a
/// quoted identifier's name, a word folded to lower case as the server folds it; `None` for
/// other literals and escapes.
fn decode(token: &Token) -> Option<String> {
    let text = token.text.as_str();
    let inside = |prefix: &str, quote: char| {
        text.strip_prefix(prefix)
            .and_then(|t| t.strip_prefix(quote))
            .and_then(|t| t.strip_suffix(quote))
    };
    if let Some(body) = inside("", '\'') {
        Some(body.replace("''", "'"))
    } else if let Some(body) = inside("E", '\'').or_else(|| inside("e", '\'')) {
        unescape(body)
    } else if let Some(body) = inside("", '"') {
        Some(body.replace("\"\"", "\""))
    } else if token.literal {
        None
    } else {
        Some(text.to_ascii_lowercase())
    }
}

/// The text of an `E'…'` string's `body`: `\t` `\n` `\r` `\b` `\f` `\\` `\'` `\xHH`, octal
/// `\ooo` and `''` decoded; `None` for any other escape, or text that is not UTF-8 or holds a
/// NUL (the server refuses both).
fn unescape(body: &str) -> Option<String> {
    let bytes = body.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    // Up to `max` digits of `radix` from `at`: their value and how many there were.
    let number = |at: usize, radix: u32, max: usize| -> (u32, usize) {
        let digits = bytes
            .get(at..)
            .unwrap_or_default()
            .iter()
            .take(max)
            .map_while(|&b| char::from(b).to_digit(radix));
        digits.fold((0, 0), |(value, n), d| (value * radix + d, n + 1))
    };
    let mut i = 0;
    while let Some(&c) = bytes.get(i) {
        i += 1;
        match c {
            b'\'' => {
                // Only a doubled quote is inside the string.
                (bytes.get(i) == Some(&b'\'')).then_some(())?;
                i += 1;
                out.push(b'\'');
            }
            b'\\' => {
                let e = *bytes.get(i)?;
                i += 1;
                let byte = match e {
                    b't' => b'\t',
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b'b' => 0x08,
                    b'f' => 0x0c,
                    b'\\' | b'\'' => e,
                    b'x' => {
                        let (value, n) = number(i, 16, 2);
                        (n > 0).then_some(())?;
                        i += n;
                        u8::try_from(value).ok()?
                    }
                    b'0'..=b'7' => {
                        let (value, n) = number(i - 1, 8, 3);
                        i += n - 1;
                        u8::try_from(value).ok()?
                    }
                    _ => return None,
                };
                out.push(byte);
            }
            _ => out.push(c),
        }
    }
    String::from_utf8(out).ok().filter(|s| !s.contains('\0'))
}

/// `name` as an SQL identifier that any server reads back as it is, and that stays on one line
/// and prints literally: double-quoted with `"` doubled — or, when it holds a control character
/// (a line break, a tab, an ESC), with Unicode escapes (`U&"…"`, `\` doubled), where PostgreSQL's
/// own `quote_ident` leaves them raw.
///
/// ```
/// use copyman_core::statement::quoted_identifier;
///
/// assert_eq!(quoted_identifier("Odd \"Name\""), r#""Odd ""Name""""#);
/// assert_eq!(quoted_identifier("new\nline\\"), r#"U&"new\000aline\\""#);
/// assert_eq!(quoted_identifier("red\x1b[31m"), r#"U&"red\001b[31m""#);
/// ```
pub fn quoted_identifier(name: &str) -> String {
    if !name.contains(char::is_control) {
        return format!("\"{}\"", name.replace('"', "\"\""));
    }
    let mut escaped = String::from("U&\"");
    for c in name.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\"\""),
            c if c.is_control() => escaped.push_str(&format!("\\{:04x}", u32::from(c))),
            c => escaped.push(c),
        }
    }
    escaped.push('"');
    escaped
}

/// `value` as an SQL string for messages: `'…'`, or `E'…'` when it holds control characters.
fn sql_string(value: &str) -> String {
    if !value.chars().any(char::is_control) {
        return format!("'{}'", value.replace('\'', "''"));
    }
    let mut out = String::from("E'");
    for c in value.chars() {
        match c {
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            c if c.is_ascii_control() => out.push_str(&format!("\\x{:02X}", u32::from(c))),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// Whether a COPY statement that [`check`] accepted says its data's first line is a header
/// (`HEADER`, `HEADER true`/`on`/`1`/`match` in either syntax; `HEADER false`/`off`/`0` is none):
/// `None` when it cannot be told.
///
/// ```
/// use copyman_core::statement::has_header;
///
/// assert_eq!(has_header("COPY t FROM STDIN (FORMAT csv, HEADER)"), Some(true));
/// assert_eq!(has_header("COPY t FROM STDIN WITH CSV HEADER"), Some(true));
/// assert_eq!(has_header("COPY header_log FROM STDIN (HEADER off)"), Some(false));
/// assert_eq!(has_header("COPY t FROM STDIN WHERE header IS NULL"), Some(false));
/// ```
pub fn has_header(sql: &str) -> Option<bool> {
    header_value(sql).map(|value| value.is_some())
}

/// Whether a COPY … FROM statement that [`check`] accepted asks its header to match its columns
/// (`HEADER MATCH`, PostgreSQL 15): the first line's fields must be the columns' names, in
/// order, or the COPY fails at it (22P04).
///
/// ```
/// use copyman_core::statement::header_must_match;
///
/// assert!(header_must_match("COPY t FROM STDIN (FORMAT csv, HEADER MATCH)"));
/// assert!(header_must_match("COPY t FROM STDIN (FORMAT csv, header 'match')"));
/// assert!(!header_must_match("COPY t FROM STDIN (FORMAT csv, HEADER)"));
/// ```
pub fn header_must_match(sql: &str) -> bool {
    header_value(sql).flatten().as_deref() == Some("match")
}

/// A COPY statement's HEADER option: `None` when it cannot be told, `Some(None)` without a
/// header, `Some(Some(value))` with one (its value in lower case, `true` when none is given).
fn header_value(sql: &str) -> Option<Option<String>> {
    let tokens = tokens(sql, true).ok()?;
    let at = tokens.iter().position(|t| {
        t.depth == 0
            && !t.literal
            && (t.text.eq_ignore_ascii_case("to") || t.text.eq_ignore_ascii_case("from"))
    })?;
    let rest = tokens.get(at + 2..).unwrap_or_default();
    let mut header = None;
    for (i, t) in rest.iter().enumerate() {
        if t.literal || t.depth > 1 {
            continue;
        }
        if t.depth == 0 && t.text.eq_ignore_ascii_case("where") {
            break;
        }
        if t.text.eq_ignore_ascii_case("header") {
            let value = rest
                .get(i + 1)
                .filter(|v| v.depth == t.depth && v.text != ",")
                .map_or_else(
                    || "true".to_owned(),
                    |v| v.text.trim_matches('\'').to_ascii_lowercase(),
                );
            header = (!matches!(value.as_str(), "false" | "off" | "0")).then_some(value);
        }
    }
    Some(header)
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

/// The query of a `COPY (query) TO STDOUT …`, as written between its parentheses: `None` for a
/// `COPY table …`, or a statement whose parentheses or quotes do not close.
///
/// ```
/// use copyman_core::statement::copy_query;
///
/// assert_eq!(
///     copy_query("COPY (SELECT a, ')' FROM t WHERE (b)) TO STDOUT (FORMAT csv)"),
///     Some("SELECT a, ')' FROM t WHERE (b)")
/// );
/// assert_eq!(copy_query("copy /* ( */ ( table t ) to stdout"), Some("table t"));
/// assert_eq!(copy_query("COPY t (a) TO STDOUT"), None);
/// ```
pub fn copy_query(sql: &str) -> Option<&str> {
    let (words, groups) = scan(sql, true).ok()?;
    if !words.first()?.text.eq_ignore_ascii_case("copy") {
        return None;
    }
    let &(open, close) = groups.first()?;
    // The group is the query only where it comes right after `COPY` (a table's column list
    // comes after its name).
    let named = words.get(1).is_some_and(|t| t.depth == 0 && t.at < open);
    (!named).then(|| sql[open + 1..close].trim())
}

/// Whether a `COPY (query) TO STDOUT`'s `query` changes data: a `DELETE`, `UPDATE`, `INSERT`
/// or `MERGE` (with `RETURNING`), or one inside a `WITH` — by its words, outside string
/// constants, comments and quoted names (a function that writes is not seen); a locking read's
/// `FOR UPDATE` or `FOR NO KEY UPDATE` changes nothing.
///
/// ```
/// use copyman_core::statement::query_writes;
///
/// assert!(query_writes("DELETE FROM q WHERE id < 10 RETURNING *"));
/// assert!(query_writes("WITH d AS (delete from q RETURNING *) SELECT * FROM d"));
/// assert!(!query_writes("SELECT 'delete', \"update\" FROM t"));
/// assert!(!query_writes("SELECT * FROM q FOR UPDATE SKIP LOCKED"));
/// assert!(!query_writes("SELECT * FROM q FOR NO KEY UPDATE"));
/// ```
pub fn query_writes(query: &str) -> bool {
    let Ok(tokens) = tokens(query, true) else {
        return false;
    };
    let word = |t: &Token| (!t.literal && !t.text.starts_with('"')).then(|| t.text.to_lowercase());
    let words: Vec<Option<String>> = tokens.iter().map(word).collect();
    words.iter().enumerate().any(|(i, w)| match w.as_deref() {
        Some("delete" | "insert" | "merge") => true,
        // `FOR UPDATE`, `FOR NO KEY UPDATE`: a lock, not a change.
        Some("update") => !matches!(
            i.checked_sub(1).and_then(|p| words[p].as_deref()),
            Some("for" | "key")
        ),
        _ => false,
    })
}

/// Whether the COPY `sql` reads a query that changes data, by its words ([`copy_query`],
/// [`query_writes`]): a move, `COPY (DELETE FROM q RETURNING *) TO STDOUT`.
///
/// ```
/// use copyman_core::statement::copy_writes;
///
/// assert!(copy_writes("COPY (DELETE FROM q RETURNING *) TO STDOUT"));
/// assert!(!copy_writes("COPY q TO STDOUT"));
/// ```
pub fn copy_writes(sql: &str) -> bool {
    copy_query(sql).is_some_and(query_writes)
}

/// The dot-separated parts of a qualified name as a statement spells it, each as written
/// (`public.U&"t\0061ble" UESCAPE '!'` gives `public` and `U&"t\0061ble" UESCAPE '!'`): split
/// at the dots outside quoted identifiers, strings (a `UESCAPE` character) and comments, and
/// neither decoded nor case folded, so that a server can read each part with its own scanner.
/// `None` for a part without a name, or something left unterminated.
///
/// ```
/// use copyman_core::statement::name_parts;
///
/// assert_eq!(name_parts("public.t"), Some(vec!["public", "t"]));
/// assert_eq!(name_parts(r#""a.b" . U&"\0074""#), Some(vec![r#""a.b" "#, r#" U&"\0074""#]));
/// assert_eq!(name_parts("s./* . */t"), Some(vec!["s", "/* . */t"]));
/// assert_eq!(name_parts("s..t"), None);
/// ```
pub fn name_parts(name: &str) -> Option<Vec<&str>> {
    let bytes = name.as_bytes();
    let mut parts = Vec::new();
    let (mut start, mut i) = (0, 0);
    // Whether the part read so far holds something else than blanks and comments.
    let mut named = false;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i = skip_quoted(bytes, i, b'"', false, "quoted identifier").ok()?;
                named = true;
            }
            b'\'' => i = skip_quoted(bytes, i, b'\'', false, "string").ok()?,
            b'/' if bytes.get(i + 1) == Some(&b'*') => i = skip_block_comment(bytes, i).ok()?,
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                i = bytes[i..]
                    .iter()
                    .position(|&b| b == b'\n' || b == b'\r')
                    .map_or(bytes.len(), |n| i + n + 1);
            }
            b'.' => {
                if !named {
                    return None;
                }
                parts.push(&name[start..i]);
                i += 1;
                start = i;
                named = false;
            }
            b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' => i += 1,
            _ => {
                i += 1;
                named = true;
            }
        }
    }
    if !named {
        return None;
    }
    parts.push(&name[start..]);
    Some(parts)
}

/// `sql` on one line, cut to 60 characters, for messages.
fn shortened(sql: &str) -> String {
    // A statement's closing `;` is left out: the words go on with one of their own.
    let sql = sql.trim_end_matches(|c: char| c == ';' || c.is_whitespace());
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
    scan(sql, standard_strings).map(|(words, _)| words)
}

/// Where a parenthesised group at a statement's top level opens and closes (the bytes of its `(`
/// and `)`).
type Group = (usize, usize);

/// The tokens of `sql`, and its parenthesised groups at the top level.
fn scan(sql: &str, standard_strings: bool) -> Result<(Vec<Token>, Vec<Group>), StatementError> {
    let bytes = sql.as_bytes();
    let mut words: Vec<Token> = Vec::new();
    let mut groups = Vec::new();
    let mut opened = 0;
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
                return Ok((words, groups));
            }
            b';' if depth == 0 => {
                ended = true;
                i += 1;
            }
            // Inside parentheses a `;` ends nothing the server would take (it refuses it): read
            // as a second statement, which a statement sent whole — a view's description of the
            // query — would run.
            b';' => {
                push(&mut words, 0, i, ";", false);
                return Ok((words, groups));
            }
            b'(' => {
                if depth == 0 {
                    opened = i;
                }
                depth += 1;
                i += 1;
            }
            b')' => {
                depth = depth.checked_sub(1).ok_or(StatementError::Unterminated {
                    what: "parenthesis",
                })?;
                if depth == 0 {
                    groups.push((opened, i));
                }
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
    Ok((words, groups))
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
            Some("FORMAT csv, HEADER".to_owned())
        );
        assert_eq!(
            rep("copy t from stdin csv header delimiter as ';' force not null a, b quote '\"'"),
            Some("FORMAT csv, DELIMITER ';', HEADER, FORCE_NOT_NULL (a, b)".to_owned())
        );
        assert_eq!(
            rep("COPY t FROM STDIN (NULL '', FORMAT 'csv', ENCODING 'LATIN1', DELIMITER E'\\t')"),
            Some("FORMAT csv, DELIMITER E'\\t', ENCODING 'LATIN1'".to_owned())
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
    fn headers_and_forced_nulls_must_agree() {
        let rep = |sql: &str| representation(sql).unwrap();
        let csv = rep("COPY t TO STDOUT (FORMAT csv)");
        let with_header = rep("COPY t TO STDOUT (FORMAT csv, HEADER)");
        // A header written is a line only a HEADER skips; a HEADER skips a row written without.
        assert!(!csv.agrees_with(&rep("COPY t FROM STDIN (FORMAT csv, HEADER)")));
        assert!(!with_header.agrees_with(&rep("COPY t FROM STDIN (FORMAT csv)")));
        assert!(with_header.agrees_with(&rep("COPY t FROM STDIN CSV HEADER")));
        assert_eq!(with_header.to_string(), "FORMAT csv, HEADER");
        // FORCE_NULL and FORCE_NOT_NULL read values otherwise than they were written.
        for forced in [
            "COPY t FROM STDIN (FORMAT csv, FORCE_NULL (v))",
            "COPY t FROM STDIN (FORMAT csv, force_not_null (a, b))",
            "COPY t FROM STDIN CSV FORCE NOT NULL v",
        ] {
            let forced = rep(forced);
            assert!(
                !forced.forced_nulls.is_empty() && !csv.agrees_with(&forced),
                "{forced}"
            );
        }
        // Each option with its columns: two ends that force other columns, or the other way,
        // disagree; the same options in another order or spelling agree.
        let null_v = rep("COPY t FROM STDIN (FORMAT csv, FORCE_NULL (v))");
        assert!(!null_v.agrees_with(&rep("COPY t FROM STDIN (FORMAT csv, FORCE_NOT_NULL (v))")));
        assert!(!null_v.agrees_with(&rep("COPY t FROM STDIN (FORMAT csv, FORCE_NULL (w))")));
        assert!(null_v.agrees_with(&rep(
            r#"COPY t FROM STDIN (FORMAT csv, "force_null" ("v"))"#
        )));
        let both = rep("COPY t FROM STDIN (FORMAT csv, FORCE_NULL (a, v))");
        assert!(both.agrees_with(&rep("COPY t FROM STDIN (FORMAT csv, FORCE_NULL (v, a))")));
        assert_eq!(
            representation(r#"COPY t FROM STDIN (FORMAT csv, "header")"#),
            None
        );
        assert_eq!(null_v.to_string(), "FORMAT csv, FORCE_NULL (v)");
        // A column named like the option is not the option.
        assert!(
            rep("COPY t (force_null) FROM STDIN (FORMAT csv)")
                .forced_nulls
                .is_empty()
        );
        assert!(
            rep("COPY t TO STDOUT (FORMAT csv, FORCE_QUOTE (v))")
                .forced_nulls
                .is_empty()
        );
        // Option names quoted are the options.
        let quoted = rep(r#"COPY t FROM STDIN (FORMAT csv, "null" 'x', "quote" '|')"#);
        assert_eq!((quoted.null.as_str(), quoted.quote.as_str()), ("x", "|"));
        assert!(!csv.agrees_with(&quoted));
        assert_eq!(
            representation(r#"COPY t FROM STDIN (FORMAT csv, U&"null" 'x')"#),
            None
        );
    }

    #[test]
    fn encoding_names_are_compared_as_the_server_compares_them() {
        let rep = |sql: &str| representation(sql).unwrap();
        let latin1 = rep("COPY t FROM STDIN (ENCODING 'latin1')");
        assert_eq!(latin1, rep("COPY t TO STDOUT (ENCODING 'LATIN1')"));
        assert_eq!(latin1, rep("COPY t TO STDOUT WITH ENCODING 'Latin-1'"));
        assert_eq!(latin1, rep("COPY t TO STDOUT (encoding LATIN1)"));
        assert_eq!(latin1.encoding.as_deref(), Some("LATIN1"));
        assert_eq!(latin1.to_string(), "FORMAT text, ENCODING 'LATIN1'");
        assert_ne!(latin1, rep("COPY t TO STDOUT (ENCODING 'UTF8')"));
        // Aliases the server takes for one encoding are that encoding.
        assert_eq!(latin1, rep("COPY t TO STDOUT (ENCODING 'iso88591')"));
        assert_eq!(latin1, rep("COPY t TO STDOUT (ENCODING 'ISO-8859-1')"));
        let utf8 = rep("COPY t FROM STDIN (ENCODING 'utf8')");
        assert_eq!(utf8, rep("COPY t TO STDOUT (ENCODING 'Unicode')"));
        assert_eq!(utf8.encoding.as_deref(), Some("UTF8"));
        assert_eq!(
            rep("COPY t TO STDOUT (ENCODING 'win932')"),
            rep("COPY t FROM STDIN (ENCODING 'Shift_JIS')")
        );
        assert_ne!(
            rep("COPY t TO STDOUT (ENCODING 'SJIS')"),
            rep("COPY t FROM STDIN (ENCODING 'SHIFT_JIS_2004')")
        );
        // Not given: the session's client_encoding, which may be another.
        let none = rep("COPY t TO STDOUT");
        assert_ne!(latin1, none);
        assert!(none.agrees_with(&latin1), "only the session can tell");
        assert!(none.agrees_with(&utf8));
        assert_eq!(none.clone().in_session(Some("UTF8")), utf8);
        assert!(!none.clone().in_session(Some("UTF8")).agrees_with(&latin1));
        assert_eq!(none.clone().in_session(Some("latin1")), latin1);
        assert_eq!(none.clone().in_session(None), none);
        // Binary data is not transcoded by COPY's ENCODING: it changes nothing. Its text
        // fields are in the session's client_encoding (textsend, textrecv).
        assert_eq!(
            rep("COPY t TO STDOUT (FORMAT binary, ENCODING 'latin1')"),
            rep("COPY BINARY t FROM STDIN")
        );
        let binary = rep("COPY BINARY t FROM STDIN");
        assert!(
            !binary
                .clone()
                .in_session(Some("UTF8"))
                .agrees_with(&binary.clone().in_session(Some("LATIN1")))
        );
        assert!(
            binary
                .clone()
                .in_session(Some("utf8"))
                .agrees_with(&binary.in_session(Some("UTF8")))
        );
    }

    #[test]
    fn escape_strings_are_decoded() {
        let tab = representation("COPY t TO STDOUT (DELIMITER '\t', NULL '')").unwrap();
        assert_eq!(tab.delimiter, "\t");
        for same in [
            r"COPY t FROM STDIN (DELIMITER E'\t', NULL E'')",
            r"copy t from stdin delimiter as e'\x09' null as ''",
            r"COPY t FROM STDIN (DELIMITER E'\011', NULL '')",
            r"COPY t FROM STDIN (DELIMITER E'\11', NULL '')",
        ] {
            assert_eq!(representation(same).as_ref(), Some(&tab), "{same}");
        }
        let quote = |value: &str| {
            representation(&format!("COPY t FROM STDIN (FORMAT csv, QUOTE {value})"))
                .map(|r| r.quote)
        };
        for (value, text) in [
            (r"E'\''", "'"),
            (r"E''''", "'"),
            (r"E'\\'", r"\"),
            (r"E'\n\r\b\f'", "\n\r\x08\x0c"),
            (r"E'\x7C'", "|"),
            (r"E'\x7c0'", "|0"),
            (r"E'\1740'", "|0"),
            (r"e'\xc3\xa9'", "é"),
            (r"'\x7c'", r"\x7c"),
        ] {
            assert_eq!(quote(value).as_deref(), Some(text), "{value}");
        }
        // Escapes copyman does not read, or text the server refuses: cannot be told.
        for value in [
            r"E'\u007c'",
            r"E'\q'",
            r"E'\xg'",
            r"E'\777'",
            r"E'\xc3'",
            r"E'\0'",
            r"U&'\007c'",
            "'|'\n'|'",
            "$$|$$",
        ] {
            assert_eq!(quote(value), None, "{value}");
        }
    }

    #[test]
    fn options_at_their_format_default_are_as_if_left_out() {
        let rep = |sql: &str| representation(sql).unwrap();
        let text = rep("COPY t TO STDOUT");
        assert_eq!(
            text,
            rep(r"COPY t FROM STDIN (FORMAT text, DELIMITER E'\t', NULL '\N')")
        );
        assert_eq!(text, rep("COPY t FROM STDIN DELIMITER '\t' NULL AS '\\N'"));
        let csv = rep("COPY t TO STDOUT (FORMAT csv)");
        for same in [
            "COPY t FROM STDIN (FORMAT csv, DELIMITER ',')",
            r#"COPY t FROM STDIN (FORMAT csv, NULL '', QUOTE '"', ESCAPE '"')"#,
            r#"copy t from stdin csv delimiter ',' null '' quote as '"' escape as '"'"#,
            r#"COPY t FROM STDIN (FORMAT "csv", ESCAPE E'\x22')"#,
        ] {
            assert_eq!(rep(same), csv, "{same}");
        }
        // HEADER is read, and is an option two ends must agree on.
        let header = rep("COPY t FROM STDIN (FORMAT csv, HEADER)");
        assert!(header.header && !csv.header && !header.agrees_with(&csv));
        assert!(rep("COPY t FROM STDIN (FORMAT text, HEADER MATCH)").header);
        // ESCAPE's default is QUOTE's value.
        let single = rep("COPY t TO STDOUT (FORMAT csv, QUOTE '''')");
        assert_eq!(single, rep("COPY t FROM STDIN CSV QUOTE '''' ESCAPE ''''"));
        assert_eq!(single.to_string(), "FORMAT csv, QUOTE ''''");
        let other = rep(r#"COPY t FROM STDIN CSV QUOTE '''' ESCAPE '"'"#);
        assert_ne!(single, other);
        assert_eq!(other.to_string(), r#"FORMAT csv, QUOTE '''', ESCAPE '"'"#);
        // Each format has its own defaults: text's NULL is not csv's.
        assert_ne!(csv, rep(r"COPY t FROM STDIN (FORMAT csv, NULL '\N')"));
        assert_ne!(text, rep("COPY t FROM STDIN (DELIMITER ',')"));
        assert_eq!(
            rep("COPY t FROM STDIN (FORMAT text, DELIMITER ',', NULL '')").to_string(),
            "FORMAT text, DELIMITER ',', NULL ''"
        );
        assert_eq!(
            rep(r"COPY t FROM STDIN (FORMAT csv, DELIMITER E'\t', NULL '\N')").to_string(),
            r"FORMAT csv, DELIMITER E'\t', NULL '\N'"
        );
        // A format the server does not know (it takes FORMAT's string as written).
        assert_eq!(representation("COPY t TO STDOUT (FORMAT 'CSV')"), None);
        assert_eq!(representation("COPY t TO STDOUT (FORMAT json)"), None);
    }

    #[test]
    fn columns_named_like_options_are_not_options() {
        let rep = |sql: &str| representation(sql).map(|r| r.to_string());
        let csv = Some("FORMAT csv".to_owned());
        let semicolon = Some("FORMAT csv, DELIMITER ';'".to_owned());
        assert_eq!(
            rep("COPY t TO STDOUT (FORMAT csv, FORCE_QUOTE (delimiter, quote))"),
            csv
        );
        assert_eq!(
            rep("COPY t FROM STDIN CSV FORCE NOT NULL delimiter, escape"),
            Some("FORMAT csv, FORCE_NOT_NULL (delimiter, escape)".to_owned())
        );
        assert_eq!(
            rep("COPY t FROM STDIN CSV FORCE NULL encoding"),
            Some("FORMAT csv, FORCE_NULL (encoding)".to_owned())
        );
        assert_eq!(
            rep("COPY t TO STDOUT CSV FORCE QUOTE * DELIMITER ';'"),
            semicolon
        );
        assert_eq!(
            rep("COPY t TO STDOUT CSV FORCE QUOTE quote DELIMITER ';'"),
            semicolon
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
        assert!(
            matches!(check("select 1 ; ", out), Err(E::NotCopy { statement, .. }) if statement == "select 1")
        );
        assert!(
            matches!(check("select 1 ;  ;", out), Err(E::NotCopy { statement, .. }) if statement == "select 1")
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
        // A bare word is no server file: a misspelt STDIN, said so (files40 F3).
        for (sql, direction, stdio) in [
            ("COPY t FROM STIDN", Direction::FromStdin, "STDIN"),
            ("COPY t FROM pstdin", Direction::FromStdin, "STDIN"),
            ("COPY t TO stdin", out, "STDOUT"),
        ] {
            let error = check(sql, direction).unwrap_err();
            assert!(matches!(error, E::Misspelt { .. }), "{sql}: {error:?}");
            assert!(
                error
                    .to_string()
                    .contains(&format!("did you mean {stdio}?")),
                "{error}"
            );
        }
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
        // psql's \copy is said as such (it passed as a COPY: copy41 F5).
        let e = check(" \\copy t to stdout", Direction::ToStdout).unwrap_err();
        assert!(matches!(e, StatementError::MetaCommand { .. }), "{e}");
        assert!(
            e.to_string()
                .starts_with("the statement is psql's \\copy meta-command"),
            "{e}"
        );
    }

    #[test]
    fn the_encoding_table_is_sorted_and_names_itself() {
        assert!(ENCODINGS.windows(2).all(|w| w[0].0 < w[1].0));
        // Every name the server gives an encoding is one of its names.
        for (_, name) in ENCODINGS {
            assert_eq!(encoding_name(name), *name);
        }
    }

    proptest::proptest! {
        /// Any spelling of an encoding name the server reads alike (case, punctuation) is the
        /// same encoding.
        #[test]
        fn encoding_spellings_are_one_encoding(
            i in 0..ENCODINGS.len(),
            upper in proptest::collection::vec(proptest::bool::ANY, 16),
            gaps in proptest::collection::vec(proptest::sample::select(vec!["", "-", "_", " ", "."]), 16),
        ) {
            let (alias, name) = ENCODINGS[i];
            let spelled: String = alias
                .chars()
                .zip(upper.iter().cycle().zip(gaps.iter().cycle()))
                .map(|(c, (&up, gap))| {
                    let c = if up { c.to_ascii_uppercase() } else { c };
                    format!("{gap}{c}")
                })
                .collect();
            proptest::prop_assert_eq!(encoding_name(&spelled), name);
            let sql = format!("COPY t FROM STDIN (ENCODING '{spelled}')");
            let rep = representation(&sql).unwrap();
            proptest::prop_assert_eq!(rep.encoding.as_deref(), Some(name));
            proptest::prop_assert!(representation("COPY t TO STDOUT")
                .unwrap()
                .in_session(Some(name))
                .agrees_with(&rep));
        }

        #[test]
        fn never_panics(sql in ".{0,80}") {
            let _ = check(&sql, Direction::ToStdout);
            let _ = check(&sql, Direction::FromStdin);
            let _ = representation(&sql).map(|r| r.to_string());
            let _ = copy_table(&sql);
            let _ = name_parts(&sql);
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
        #[test]
        fn representation_never_panics_on_copy_like_input(parts in proptest::collection::vec(
            proptest::sample::select(vec![
                "COPY t TO STDOUT", "COPY BINARY t FROM STDIN", "(", ")", ",", " ", "'", "''",
                "E'", r"e'\x", r"\", r"\0", r"\7", r"\x", r"\xF", r"\u", "\u{85}", "7", "f", "\"",
                "$$", "*", "\n", "FORMAT", "csv", "binary", "text", "DELIMITER", "NULL", "QUOTE",
                "ESCAPE", "ENCODING", "AS", "FORCE", "NOT", "WHERE", "HEADER", "U&", "é",
                "FORCE_QUOTE", "MATCH",
            ]), 0..24)) {
            let sql: String = parts.concat();
            let _ = representation(&sql).map(|r| r.to_string());
            let _ = refused_options(&sql, Direction::ToStdout);
            let _ = refused_options(&sql, Direction::FromStdin);
            let _ = copy_table(&sql);
            let _ = name_parts(&sql);
        }

        /// A name's parts, each spelled any way a statement may (quoted with dots, `U&` with
        /// `UESCAPE`, comments holding dots), joined by dots: split back as they were.
        #[test]
        fn name_parts_split_at_the_dots_between_parts(parts in proptest::collection::vec(
            proptest::sample::select(vec![
                "t", " T ", r#""a.b""#, r#""a"".b""#, r#"U&"\0074""#, r#"U&"d.!0061" UESCAPE '.'"#,
                "/* . */ s", "s -- .\n", "é", "\"\"\"\"",
            ]), 1..4)) {
            let name = parts.join(".");
            proptest::prop_assert_eq!(name_parts(&name), Some(parts.clone()));
        }
    }
}
