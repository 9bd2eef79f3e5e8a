//! What the first bytes of an input file mean for a copy, decided before anything is sent.
//!
//! A file (or stdin) given to `COPY … FROM STDIN` is read by every destination as its statement
//! says. Three things at its start change what it loads, and none of them makes a server fail:
//!
//! * **A header line** (`HEADER`): the server skips it, as psql's `\copy` does, and loads the
//!   fields after it by position. A header that names the columns in another order than the
//!   COPY reads them (`b,a` for a table `(a, b)`) loads every value into the wrong column.
//!   [`check_header`] refuses it when a field is exactly the name of one of the COPY's columns
//!   at another position, or when the header has another number of fields than the COPY reads
//!   and one of them names a column. Labels that name no column (`Customer ID`) pass, as with
//!   psql.
//! * **A UTF-8 byte order mark** (EF BB BF) in a file read as UTF-8: the server takes it as part
//!   of the first value (22P02 for an integer, a silent invisible character in text). The file
//!   is UTF-8 by declaration, so the mark says nothing: [`Start::bom`] tells the caller to drop
//!   it, before the header line and the row count.
//! * **A compressed file** (gzip, zstd, bzip2, xz): COPY would read the compressed bytes as
//!   rows. [`Compression::of`] tells it by its signature, for the caller to refuse; so are
//!   UTF-16 or UTF-32 text by its byte order mark, which no server encoding reads, and pg_dump's
//!   archives and scripts ([`Foreign::of`]).
//! * **The binary COPY signature** (`PGCOPY\n\377\r\n\0`): a file that starts with it is binary
//!   COPY data, which text or CSV would read as garbage; one that does not is no binary data.
//!   [`check_format`] reads a file given without a format as what it is, and refuses one whose
//!   declared format it contradicts.
//!
//! [`examine`] says, from the bytes read so far, whether it has seen enough ([`Peek`]); the
//! caller reads more until it has, and keeps the bytes to hand them to the copy afterwards
//! (nothing is read twice: stdin cannot seek back). No IO here.

use std::fmt;

use copyman_wire::eod::BINARY_SIGNATURE;

/// The UTF-8 byte order mark.
pub const UTF8_BOM: [u8; 3] = [0xef, 0xbb, 0xbf];

/// How long a header line may be before [`examine`] stops looking for its end (and leaves the
/// header unchecked): more than any list of column names.
pub const MAX_HEADER: usize = 1 << 20;

/// How the destinations will read the file, as far as its start matters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    /// The format the copy declares.
    pub declared: Declared,
    /// How a header line's fields are split (the declared format's, or the format read when
    /// none is declared).
    pub layout: Layout,
    /// The first line is a header (`HEADER`).
    pub header: bool,
    /// The data is read as UTF-8 (the sessions' `client_encoding`, or the COPY's `ENCODING`).
    pub utf8: bool,
    /// The data's encoding, as the servers read it: a header's labels are decoded in it
    /// ([`statement::decode_text`](crate::statement::decode_text): LATIN1 byte for byte, another
    /// encoding's characters beyond ASCII as U+FFFD, which name no column).
    pub encoding: String,
}

/// The format a copy declares for its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Declared {
    /// None was given: the file's own signature decides between binary and the layout's format.
    Detect,
    /// Text, explicitly.
    Text,
    /// CSV, explicitly.
    Csv,
    /// Binary, explicitly.
    Binary,
    /// A format that cannot be told (an option copyman does not read): nothing is decided.
    Unknown,
}

impl Declared {
    /// The format's name as COPY spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Detect | Self::Text => "text",
            Self::Csv => "csv",
            Self::Binary => "binary",
            Self::Unknown => "unknown",
        }
    }
}

/// How a line of text or CSV is split into fields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Layout {
    /// PostgreSQL's text format: `delimiter` between fields, backslash escapes.
    Text {
        /// DELIMITER (a tab by default).
        delimiter: u8,
        /// NULL as written (`\N` by default): a field that is exactly this names nothing.
        null: Vec<u8>,
    },
    /// CSV.
    Csv {
        /// DELIMITER (`,` by default).
        delimiter: u8,
        /// QUOTE (`"` by default).
        quote: u8,
        /// ESCAPE (the QUOTE by default).
        escape: u8,
        /// NULL as written (empty by default): an unquoted field that is exactly this names
        /// nothing.
        null: Vec<u8>,
    },
    /// Lines that cannot be split (binary, or options not known): no header is read.
    Opaque,
}

impl Layout {
    /// PostgreSQL's default text layout.
    pub fn text() -> Self {
        Self::Text {
            delimiter: b'\t',
            null: b"\\N".to_vec(),
        }
    }

    /// PostgreSQL's default CSV layout.
    pub fn csv() -> Self {
        Self::Csv {
            delimiter: b',',
            quote: b'"',
            escape: b'"',
            null: Vec::new(),
        }
    }
}

/// What the start of a file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    /// It starts with a UTF-8 byte order mark to drop (3 bytes), in a file read as UTF-8 and
    /// not declared binary.
    pub bom: bool,
    /// It starts with the binary COPY signature.
    pub binary: bool,
    /// The header line's fields, as the server splits them (after the mark); `None` for a field
    /// that is the NULL string. `None` when no header is read, the line could not be split, or
    /// it was longer than [`MAX_HEADER`].
    pub header: Option<Vec<Option<String>>>,
    /// Without a header: the first line's fields, as the server splits them (`None` as for
    /// `header`): a first line that names the columns is a header read as a row
    /// ([`names_columns`]).
    pub first_line: Option<Vec<Option<String>>>,
}

/// Whether the bytes read so far tell enough.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Peek {
    /// Read more (unless the input ended: then call again with `ended`).
    NeedMore,
    /// Enough was read.
    Ready(Start),
}

/// Looks at the first bytes of a file, `data` (all of them read so far; `ended`: there are no
/// more), read as `reading` says.
///
/// ```
/// use copyman_core::file_start::{Declared, Layout, Peek, Reading, examine};
///
/// let reading = Reading { declared: Declared::Csv, layout: Layout::csv(), header: true, utf8: true,
///     encoding: "UTF8".into() };
/// assert_eq!(examine(b"\xef\xbb\xbfb,", false, &reading), Peek::NeedMore);
/// let Peek::Ready(start) = examine(b"\xef\xbb\xbfb,\"a\"\n1,2\n", false, &reading) else {
///     unreachable!()
/// };
/// assert!(start.bom && !start.binary);
/// assert_eq!(start.header, Some(vec![Some("b".to_owned()), Some("a".to_owned())]));
/// ```
pub fn examine(data: &[u8], ended: bool, reading: &Reading) -> Peek {
    let prefix_of = |whole: &[u8]| data.len() < whole.len() && whole.starts_with(data);
    if !ended && (prefix_of(BINARY_SIGNATURE) || prefix_of(&UTF8_BOM)) {
        return Peek::NeedMore;
    }
    let binary = data.starts_with(BINARY_SIGNATURE);
    let bom = reading.utf8
        && !binary
        && reading.declared != Declared::Binary
        && data.starts_with(&UTF8_BOM);
    let body = if bom { &data[UTF8_BOM.len()..] } else { data };
    let line = if binary || reading.layout == Layout::Opaque {
        None
    } else {
        match first_line(body, &reading.layout) {
            Some(line) => split(line, &reading.layout, &reading.encoding),
            None if ended => split(body, &reading.layout, &reading.encoding),
            None if body.len() <= MAX_HEADER => return Peek::NeedMore,
            None => None,
        }
    };
    let (header, first_line) = if reading.header {
        (line, None)
    } else {
        (None, line)
    };
    Peek::Ready(Start {
        bom,
        binary,
        header,
        first_line,
    })
}

/// The first line of `data` as the server reads lines (without its line end), when it ended:
/// text steps over a backslash's next byte, CSV over quoted line ends.
fn first_line<'d>(data: &'d [u8], layout: &Layout) -> Option<&'d [u8]> {
    let mut in_quote = false;
    let mut i = 0;
    while let Some(&c) = data.get(i) {
        match layout {
            Layout::Text { .. } if c == b'\\' => {
                i += 2;
                continue;
            }
            Layout::Csv { quote, escape, .. } if in_quote => {
                if c == *escape && data.get(i + 1).is_some_and(|n| n == quote || n == escape) {
                    i += 2;
                    continue;
                }
                if c == *quote {
                    in_quote = false;
                }
            }
            Layout::Csv { quote, .. } if c == *quote => in_quote = true,
            _ if c == b'\n' || c == b'\r' => return Some(&data[..i]),
            _ => {}
        }
        i += 1;
    }
    None
}

/// The fields of `line` as the server splits them (PostgreSQL's `CopyReadAttributesText` and
/// `CopyReadAttributesCSV`); `None` for a layout that cannot be split.
fn split(line: &[u8], layout: &Layout, encoding: &str) -> Option<Vec<Option<String>>> {
    let text = |bytes: &[u8]| crate::statement::decode_text(bytes, encoding);
    match layout {
        Layout::Opaque => None,
        Layout::Text { delimiter, null } => Some(
            split_text(line, *delimiter)
                .into_iter()
                .map(|raw| (raw != *null).then(|| text(&unescape_text(raw))))
                .collect(),
        ),
        Layout::Csv {
            delimiter,
            quote,
            escape,
            null,
        } => {
            let mut fields = Vec::new();
            let mut value = Vec::new();
            let (mut quoted, mut in_quote) = (false, false);
            let mut i = 0;
            let mut end_field = |value: &mut Vec<u8>, quoted: &mut bool| {
                let field = (*quoted || value != null).then(|| text(value));
                fields.push(field);
                value.clear();
                *quoted = false;
            };
            while let Some(&c) = line.get(i) {
                i += 1;
                if in_quote {
                    if c == *escape && line.get(i).is_some_and(|n| n == quote || n == escape) {
                        value.push(line[i]);
                        i += 1;
                    } else if c == *quote {
                        in_quote = false;
                    } else {
                        value.push(c);
                    }
                } else if c == *delimiter {
                    end_field(&mut value, &mut quoted);
                } else if c == *quote {
                    in_quote = true;
                    quoted = true;
                } else {
                    value.push(c);
                }
            }
            end_field(&mut value, &mut quoted);
            Some(fields)
        }
    }
}

/// A text line's raw fields: split at each delimiter not escaped by a backslash.
fn split_text(line: &[u8], delimiter: u8) -> Vec<&[u8]> {
    let mut fields = Vec::new();
    let (mut start, mut i) = (0, 0);
    while let Some(&c) = line.get(i) {
        if c == b'\\' {
            i += 2;
            continue;
        }
        if c == delimiter {
            fields.push(&line[start..i]);
            start = i + 1;
        }
        i += 1;
    }
    fields.push(line.get(start..).unwrap_or_default());
    fields
}

/// A text field's value: its backslash escapes decoded as the server decodes them.
fn unescape_text(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while let Some(&c) = raw.get(i) {
        i += 1;
        if c != b'\\' {
            out.push(c);
            continue;
        }
        let Some(&e) = raw.get(i) else {
            break;
        };
        i += 1;
        let digits = |from: usize, radix: u32, max: usize| {
            raw.get(from..)
                .unwrap_or_default()
                .iter()
                .take(max)
                .map_while(|&b| char::from(b).to_digit(radix))
                .fold((0u32, 0usize), |(v, n), d| (v * radix + d, n + 1))
        };
        out.push(match e {
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'v' => 0x0b,
            b'0'..=b'7' => {
                let (value, n) = digits(i - 1, 8, 3);
                i += n - 1;
                u8::try_from(value & 0xff).unwrap_or_default()
            }
            b'x' if digits(i, 16, 2).1 > 0 => {
                let (value, n) = digits(i, 16, 2);
                i += n;
                u8::try_from(value & 0xff).unwrap_or_default()
            }
            other => other,
        });
    }
    out
}

/// How the file is to be read, once its start is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// As the copy declares (or its default, text or CSV).
    AsDeclared,
    /// As binary COPY data: no format was declared and the file has the signature.
    Binary,
}

/// A file whose start contradicts the format the copy declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// Binary COPY data declared as text or CSV.
    #[error(
        "it is binary COPY data (it starts with the PGCOPY signature), which FORMAT {declared} \
         would misread"
    )]
    BinaryData {
        /// The declared format: `text` or `csv`.
        declared: &'static str,
    },
    /// Binary declared, and the file does not start with the signature.
    #[error("binary COPY data starts with the PGCOPY signature, and this file does not")]
    NotBinary,
}

/// How a file that starts as `start` says is read, given the `declared` format.
///
/// ```
/// use copyman_core::file_start::{Declared, FormatError, Start, Verdict, check_format};
///
/// let pgcopy = Start { bom: false, binary: true, header: None, first_line: None };
/// assert_eq!(check_format(Declared::Detect, &pgcopy), Ok(Verdict::Binary));
/// assert_eq!(
///     check_format(Declared::Csv, &pgcopy),
///     Err(FormatError::BinaryData { declared: "csv" })
/// );
/// let csv = Start { binary: false, ..pgcopy };
/// assert_eq!(check_format(Declared::Binary, &csv), Err(FormatError::NotBinary));
/// ```
pub fn check_format(declared: Declared, start: &Start) -> Result<Verdict, FormatError> {
    match (declared, start.binary) {
        (Declared::Detect, true) => Ok(Verdict::Binary),
        (Declared::Text | Declared::Csv, true) => Err(FormatError::BinaryData {
            declared: declared.name(),
        }),
        (Declared::Binary, false) => Err(FormatError::NotBinary),
        _ => Ok(Verdict::AsDeclared),
    }
}

/// A header whose fields would load into other columns than they name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderMismatch {
    /// The first mismatch.
    pub kind: Mismatch,
    /// The COPY's columns, in the order it reads them.
    pub columns: Vec<String>,
    /// The column list that reads the file by its header: the header's fields, when every one
    /// names a different column of the COPY's.
    pub by_header: Option<Vec<String>>,
}

/// The first mismatch of a header with the COPY's columns.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mismatch {
    /// A field names a column the COPY reads at another position.
    Moved {
        /// The field's position (1-based).
        field: usize,
        /// The column it names.
        name: String,
        /// That column's position in the COPY (1-based).
        column: usize,
    },
    /// The header has another number of fields than the COPY reads, and one names a column.
    Count {
        /// The header's fields.
        fields: usize,
        /// The first field that names a column (1-based), and its name.
        named: (usize, String),
    },
}

impl fmt::Display for HeaderMismatch {
    /// `header field 1 is "b", but the COPY loads field 1 into column "a" …`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let columns = self.columns.join(", ");
        match &self.kind {
            Mismatch::Moved {
                field,
                name,
                column,
            } => write!(
                f,
                "header field {field} is \"{name}\", but the COPY loads field {field} into \
                 column \"{}\" and column \"{}\" from field {column} (it reads {columns})",
                self.columns.get(field - 1).map_or("(none)", String::as_str),
                self.columns
                    .get(column - 1)
                    .map_or(name.as_str(), String::as_str),
            ),
            Mismatch::Count {
                fields,
                named: (field, name),
            } => write!(
                f,
                "the header has {fields} field{} and names column \"{name}\" (field {field}), \
                 but the COPY reads {} column{} ({columns})",
                if *fields == 1 { "" } else { "s" },
                self.columns.len(),
                if self.columns.len() == 1 { "" } else { "s" },
            ),
        }
    }
}

/// Checks a header line's `fields` against the `columns` the COPY reads, in its order (see the
/// module): a field that is the name of one of them (exactly, or of only one but for ASCII case
/// and blanks around it) must be at that column's position, and a header that names any of them
/// must have as many fields as the COPY reads.
///
/// ```
/// use copyman_core::file_start::check_header;
///
/// let field = |s: &str| Some(s.to_owned());
/// assert!(check_header(&[field("a"), field("b")], &["a", "b"]).is_ok());
/// assert!(check_header(&[field("Customer ID"), field("Name")], &["a", "b"]).is_ok());
/// // A name but for its case is that column's.
/// let refused = check_header(&[field("Email"), field("Name")], &["name", "email"]).unwrap_err();
/// assert_eq!(refused.by_header, Some(vec!["email".to_owned(), "name".to_owned()]));
/// assert!(check_header(&[field("Name"), field(" Email ")], &["name", "email"]).is_ok());
/// // Blanks aside, a name is that column's before one that differs by case.
/// let swapped = [field(" email "), field(" Email ")];
/// assert!(check_header(&swapped, &["Email", "email"]).is_err());
/// let refused = check_header(&[field("b"), field("a")], &["a", "b"]).unwrap_err();
/// assert_eq!(refused.by_header, Some(vec!["b".to_owned(), "a".to_owned()]));
/// ```
pub fn check_header(
    fields: &[Option<String>],
    columns: &[impl AsRef<str>],
) -> Result<(), HeaderMismatch> {
    let columns: Vec<&str> = columns.iter().map(AsRef::as_ref).collect();
    let position = |name: &str| column_named(name, &columns);
    let named: Vec<(usize, &str, usize)> = fields
        .iter()
        .enumerate()
        .filter_map(|(i, f)| {
            let name = f.as_deref()?;
            Some((i, name, position(name)?))
        })
        .collect();
    let kind = if let Some(&(i, name, at)) = named.iter().find(|(i, _, at)| i != at) {
        Mismatch::Moved {
            field: i + 1,
            name: name.to_owned(),
            column: at + 1,
        }
    } else if let Some(&(i, name, _)) = named.first().filter(|_| fields.len() != columns.len()) {
        Mismatch::Count {
            fields: fields.len(),
            named: (i + 1, name.to_owned()),
        }
    } else {
        return Ok(());
    };
    let mut seen: Vec<usize> = named.iter().map(|(_, _, at)| *at).collect();
    seen.sort_unstable();
    seen.dedup();
    let by_header = (named.len() == fields.len() && seen.len() == fields.len()).then(|| {
        named
            .iter()
            .map(|&(_, _, at)| columns[at].to_owned())
            .collect()
    });
    Err(HeaderMismatch {
        kind,
        columns: columns.iter().map(|c| (*c).to_owned()).collect(),
        by_header,
    })
}

/// The position among `columns` of the one a header's label names: its name exactly (blanks
/// around it aside), else only one column's but for ASCII case (a spreadsheet's `Email` for
/// `email`), else, as loosely, its last dotted part (`person.last_name`, as SQL clients and BI
/// tools write a column with its table) or its words joined by `_` (`Last Name`, as spreadsheets
/// write `last_name`). Each looser reading counts only where it names one column alone: those
/// headers, in another order, loaded every value into another column (said to name none).
///
/// ```
/// use copyman_core::file_start::column_named;
///
/// let columns = ["first_name", "last_name", "Email", "email"];
/// assert_eq!(column_named("last_name", &columns), Some(1));
/// assert_eq!(column_named(" LAST_NAME ", &columns), Some(1));
/// assert_eq!(column_named("person.last_name", &columns), Some(1));
/// assert_eq!(column_named("Last Name", &columns), Some(1));
/// assert_eq!(column_named(" email ", &columns), Some(3));
/// assert_eq!(column_named("EMAIL", &columns), None);
/// assert_eq!(column_named("Customer ID", &columns), None);
/// ```
pub fn column_named(label: &str, columns: &[impl AsRef<str>]) -> Option<usize> {
    let columns: Vec<&str> = columns.iter().map(AsRef::as_ref).collect();
    let loose = label.trim();
    // Exactly, blanks aside, before any case (` email ` is `email`, not `Email`).
    let exact = |name: &str| columns.iter().position(|c| *c == name);
    let alone = |matches: &dyn Fn(&str) -> bool| {
        let mut matching = (columns.iter().enumerate()).filter(|(_, c)| matches(c));
        match (matching.next(), matching.next()) {
            (Some((at, _)), None) => Some(at),
            _ => None,
        }
    };
    let unqualified = loose.rsplit('.').next().unwrap_or(loose).trim();
    let words = |name: &str| -> String {
        (name.split(|c: char| c.is_whitespace() || c == '_' || c == '-'))
            .filter(|w| !w.is_empty())
            .map(str::to_ascii_lowercase)
            .collect::<Vec<_>>()
            .join("_")
    };
    exact(label)
        .or_else(|| exact(loose))
        .or_else(|| alone(&|c| c.eq_ignore_ascii_case(loose)))
        .or_else(|| {
            (unqualified != loose)
                .then(|| {
                    exact(unqualified).or_else(|| alone(&|c| c.eq_ignore_ascii_case(unqualified)))
                })
                .flatten()
        })
        .or_else(|| {
            let folded = words(unqualified);
            (!folded.is_empty())
                .then(|| alone(&|c| words(c) == folded))
                .flatten()
        })
}

/// Whether a line's `fields` name the `columns` a COPY reads, each a different one (by name, or
/// but for ASCII case and blanks around it, as [`check_header`] reads names): all of them, or
/// two or more (a file without the table's defaulted columns, whose line read as a row fails
/// for its missing fields anyway). A header, which read as a row is loaded as data (or fails on
/// its first typed column).
///
/// ```
/// use copyman_core::file_start::names_columns;
///
/// let fields = |v: &[&str]| v.iter().map(|s| Some(s.to_string())).collect::<Vec<_>>();
/// assert!(names_columns(&fields(&["Name", "email"]), &["name", "email"]));
/// assert!(names_columns(&fields(&["email", "name"]), &["name", "email"]));
/// assert!(!names_columns(&fields(&["Ann", "ann@example.com"]), &["name", "email"]));
/// assert!(names_columns(&fields(&["email", "name"]), &["id", "name", "email"]));
/// assert!(!names_columns(&fields(&["name"]), &["name", "email"]));
/// ```
pub fn names_columns(fields: &[Option<String>], columns: &[impl AsRef<str>]) -> bool {
    let columns: Vec<&str> = columns.iter().map(AsRef::as_ref).collect();
    let mut named = Vec::with_capacity(fields.len());
    for field in fields {
        let Some(name) = field.as_deref() else {
            return false;
        };
        let Some(at) = column_named(name, &columns) else {
            return false;
        };
        named.push(at);
    }
    named.sort_unstable();
    named.dedup();
    !fields.is_empty()
        && named.len() == fields.len()
        && (fields.len() == columns.len() || fields.len() >= 2)
}

/// PostgreSQL's reserved and type/function-name keywords: a column so named must be quoted in a
/// column list.
const KEYWORDS: &[&str] = &[
    "all",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "asymmetric",
    "authorization",
    "binary",
    "both",
    "case",
    "cast",
    "check",
    "collate",
    "collation",
    "column",
    "concurrently",
    "constraint",
    "create",
    "cross",
    "current_catalog",
    "current_date",
    "current_role",
    "current_schema",
    "current_time",
    "current_timestamp",
    "current_user",
    "default",
    "deferrable",
    "desc",
    "distinct",
    "do",
    "else",
    "end",
    "except",
    "false",
    "fetch",
    "for",
    "foreign",
    "freeze",
    "from",
    "full",
    "grant",
    "group",
    "having",
    "ilike",
    "in",
    "initially",
    "inner",
    "intersect",
    "into",
    "is",
    "isnull",
    "join",
    "lateral",
    "leading",
    "left",
    "like",
    "limit",
    "localtime",
    "localtimestamp",
    "natural",
    "not",
    "notnull",
    "null",
    "offset",
    "on",
    "only",
    "or",
    "order",
    "outer",
    "overlaps",
    "placing",
    "primary",
    "references",
    "returning",
    "right",
    "select",
    "session_user",
    "similar",
    "some",
    "symmetric",
    "table",
    "tablesample",
    "then",
    "to",
    "trailing",
    "true",
    "union",
    "unique",
    "user",
    "using",
    "variadic",
    "verbose",
    "when",
    "where",
    "window",
    "with",
];

/// `name` as a column list writes it: as it is when PostgreSQL reads it back unchanged (lower
/// case letters, digits, `_`, not a reserved word), else double-quoted — with Unicode escapes
/// (`U&"…"`) when it holds a control character (a line break), so that it stays on one line.
///
/// ```
/// use copyman_core::file_start::column_name;
///
/// assert_eq!(column_name("customer_id"), "customer_id");
/// assert_eq!(column_name("Customer ID"), "\"Customer ID\"");
/// assert_eq!(column_name("user"), "\"user\"");
/// assert_eq!(column_name("e\nf \\ \"g\""), r#"U&"e\000af \\ ""g""""#);
/// ```
pub fn column_name(name: &str) -> String {
    let plain = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !KEYWORDS.contains(&name);
    if plain {
        name.to_owned()
    } else {
        crate::statement::quoted_identifier(name)
    }
}

/// The column list of a `COPY table (columns) FROM STDIN`, each name as the server reads it
/// (unquoted names folded to lower case): `Some(None)` when it has none (the table's columns),
/// `None` when it cannot be told (a `COPY (query)`, a name written in a form not read here).
///
/// ```
/// use copyman_core::file_start::copy_columns;
///
/// let names = |v: &[&str]| Some(Some(v.iter().map(|s| s.to_string()).collect::<Vec<_>>()));
/// assert_eq!(copy_columns("COPY t (B, \"a\") FROM STDIN"), names(&["b", "a"]));
/// assert_eq!(copy_columns("COPY public.t FROM STDIN (FORMAT csv)"), Some(None));
/// ```
pub fn copy_columns(sql: &str) -> Option<Option<Vec<String>>> {
    let (_, after) = column_list_span(sql)?;
    let Some((open, close)) = after else {
        return Some(None);
    };
    split_names(&sql[open + 1..close]).map(Some)
}

/// `sql` (a `COPY table [(columns)] FROM STDIN …`) with `columns` as its column list, in place
/// of the one it has: the statement that reads a file's fields into those columns.
///
/// ```
/// use copyman_core::file_start::with_columns;
///
/// assert_eq!(
///     with_columns("COPY t FROM STDIN (FORMAT csv, HEADER)", &["b".into(), "a".into()]).unwrap(),
///     "COPY t (b, a) FROM STDIN (FORMAT csv, HEADER)"
/// );
/// assert_eq!(
///     with_columns("copy t(a,b) from stdin csv header", &["b".into(), "a".into()]).unwrap(),
///     "copy t (b, a) from stdin csv header"
/// );
/// ```
pub fn with_columns(sql: &str, columns: &[String]) -> Option<String> {
    let (table_end, list) = column_list_span(sql)?;
    let rest = match list {
        Some((_, close)) => &sql[close + 1..],
        None => &sql[table_end..],
    };
    let names: Vec<String> = columns.iter().map(|c| column_name(c)).collect();
    Some(format!(
        "{} ({}) {}",
        &sql[..table_end],
        names.join(", "),
        rest.trim_start()
    ))
}

/// Where a COPY's table name ends, and its column list's parentheses (their offsets) if it has
/// one.
fn column_list_span(sql: &str) -> Option<(usize, Option<(usize, usize)>)> {
    let table = crate::statement::copy_table(sql)?;
    // `copy_table` gives a part of `sql`: where it ends there.
    let table_end = (table.as_ptr() as usize)
        .checked_sub(sql.as_ptr() as usize)?
        .checked_add(table.len())?;
    let after = sql.get(table_end..)?;
    let skipped = after.len() - after.trim_start().len();
    let open = table_end + skipped;
    if !sql[open..].starts_with('(') {
        return Some((table_end, None));
    }
    // The list holds names only: its `)` is the first one outside double quotes.
    let mut in_quote = false;
    for (i, c) in sql[open + 1..].char_indices() {
        match c {
            '"' => in_quote = !in_quote,
            ')' if !in_quote => return Some((table_end, Some((open, open + 1 + i)))),
            _ => {}
        }
    }
    None
}

/// The names of a column list's inside (`a, "B"`); `None` for anything but names and commas.
fn split_names(list: &str) -> Option<Vec<String>> {
    let mut names = Vec::new();
    let mut chars = list.trim().chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut name = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next()? {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        name.push('"');
                    }
                    '"' => break,
                    c => name.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_alphanumeric() || c == '_' || c == '$' {
                    name.push(c.to_ascii_lowercase());
                    chars.next();
                } else {
                    break;
                }
            }
            if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit() || c == '$') {
                return None;
            }
        }
        names.push(name);
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.next() {
            None => return Some(names),
            Some(',') => {}
            Some(_) => return None,
        }
    }
}

/// A compressed format, told by the signature its data starts with ([`Compression::of`]).
/// COPY reads bytes as they come: compressed data would reach the servers as rows of garbage
/// (22021 invalid byte sequence, or worse, rows), so a caller refuses it before anything is
/// sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Compression {
    /// gzip (`1f 8b`, deflate).
    Gzip,
    /// Zstandard.
    Zstd,
    /// bzip2.
    Bzip2,
    /// xz.
    Xz,
    /// A zip archive (`PK`, then a local file header's `03 04` or an empty archive's `05 06`):
    /// an `.xlsx` or `.ods` workbook is one.
    Zip,
    /// LZ4's frame format (`04 22 4d 18`): what `lz4`, pg_dump and pg_basebackup's
    /// `--compress=lz4` and pgBackRest write.
    Lz4,
    /// The legacy `.lzma` format (`5d 00 00`: its usual properties byte and dictionary size).
    Lzma,
    /// Unix `compress`'s `.Z` (`1f 9d`).
    Compress,
}

impl Compression {
    /// The most bytes [`Self::of`] looks at.
    pub const LONGEST: usize = 10;

    /// Each format's signatures, as byte ranges: gzip's `1f 8b` and its only method, deflate
    /// (`08`); zstd's frame magic `28 b5 2f fd`; bzip2's `BZh`, a block size `1`–`9`, then a
    /// block's magic (π, `31 41 59 26 53 59`) or, for empty data, the end of stream's (√π,
    /// `17 72 45 38 50 90`) — text that starts with `BZh` is not taken for it; xz's
    /// `fd 37 7a 58 5a 00`; zip's `PK 03 04` (a local file header) or `PK 05 06` (an empty
    /// archive); LZ4's frame magic `04 22 4d 18`; `.lzma`'s `5d 00 00`; compress's `1f 9d`.
    /// (Text holds no NUL and no such control bytes at its start.)
    const SIGNATURES: [(Self, &'static [(u8, u8)]); 10] = [
        (Self::Gzip, &[(0x1f, 0x1f), (0x8b, 0x8b), (0x08, 0x08)]),
        (
            Self::Zstd,
            &[(0x28, 0x28), (0xb5, 0xb5), (0x2f, 0x2f), (0xfd, 0xfd)],
        ),
        (
            Self::Bzip2,
            &[
                (b'B', b'B'),
                (b'Z', b'Z'),
                (b'h', b'h'),
                (b'1', b'9'),
                (0x31, 0x31),
                (0x41, 0x41),
                (0x59, 0x59),
                (0x26, 0x26),
                (0x53, 0x53),
                (0x59, 0x59),
            ],
        ),
        (
            Self::Bzip2,
            &[
                (b'B', b'B'),
                (b'Z', b'Z'),
                (b'h', b'h'),
                (b'1', b'9'),
                (0x17, 0x17),
                (0x72, 0x72),
                (0x45, 0x45),
                (0x38, 0x38),
                (0x50, 0x50),
                (0x90, 0x90),
            ],
        ),
        (Self::Zip, &[(b'P', b'P'), (b'K', b'K'), (3, 3), (4, 4)]),
        (Self::Zip, &[(b'P', b'P'), (b'K', b'K'), (5, 5), (6, 6)]),
        (
            Self::Xz,
            &[
                (0xfd, 0xfd),
                (0x37, 0x37),
                (0x7a, 0x7a),
                (0x58, 0x58),
                (0x5a, 0x5a),
                (0x00, 0x00),
            ],
        ),
        (
            Self::Lz4,
            &[(0x04, 0x04), (0x22, 0x22), (0x4d, 0x4d), (0x18, 0x18)],
        ),
        (Self::Lzma, &[(0x5d, 0x5d), (0x00, 0x00), (0x00, 0x00)]),
        (Self::Compress, &[(0x1f, 0x1f), (0x9d, 0x9d)]),
    ];

    /// What the input's first bytes `start` say (`ended`: they are all of it): `Some(Some(c))`
    /// compressed with `c`, `Some(None)` not compressed, `None` when more bytes are needed to
    /// tell.
    pub fn of(start: &[u8], ended: bool) -> Option<Option<Self>> {
        let mut undecided = false;
        for (format, signature) in Self::SIGNATURES {
            let seen = start.len().min(signature.len());
            let agrees = start[..seen]
                .iter()
                .zip(signature)
                .all(|(b, (lo, hi))| (lo..=hi).contains(&b));
            if !agrees {
                continue;
            }
            if seen == signature.len() {
                return Some(Some(format));
            }
            undecided |= !ended;
        }
        (!undecided).then_some(None)
    }

    /// The format a file name's extension names (`gz`, `tgz`, `zst`, `bz2`, `xz`, `zip`, `lz4`,
    /// `lzma`, `Z`, and the tools' names `gzip`, `zstd`, `bzip2`; any case), as its tool names
    /// the files it writes.
    ///
    /// ```
    /// use copyman_core::file_start::Compression;
    ///
    /// assert_eq!(Compression::of_extension("GZ"), Some(Compression::Gzip));
    /// assert_eq!(Compression::of_extension("csv"), None);
    /// ```
    pub fn of_extension(extension: &str) -> Option<Self> {
        match extension.to_ascii_lowercase().as_str() {
            "gz" | "tgz" | "gzip" => Some(Self::Gzip),
            "zst" | "zstd" | "tzst" => Some(Self::Zstd),
            "bz2" | "bzip2" => Some(Self::Bzip2),
            "xz" | "txz" => Some(Self::Xz),
            "zip" => Some(Self::Zip),
            "lz4" => Some(Self::Lz4),
            "lzma" => Some(Self::Lzma),
            "z" => Some(Self::Compress),
            _ => None,
        }
    }

    /// The format's name, as its tool is named.
    pub fn name(self) -> &'static str {
        match self {
            Self::Gzip => "gzip",
            Self::Zstd => "zstd",
            Self::Bzip2 => "bzip2",
            Self::Xz => "xz",
            Self::Zip => "zip",
            Self::Lz4 => "lz4",
            Self::Lzma => "lzma",
            Self::Compress => "compress",
        }
    }

    /// The command that writes the data of a file in this format to stdout, its name to
    /// follow (`unzip -p` writes every member of an archive, one after another).
    pub fn decompress(self) -> &'static str {
        match self {
            Self::Gzip => "gzip -dc",
            Self::Zstd => "zstd -dc",
            Self::Bzip2 => "bzip2 -dc",
            Self::Xz => "xz -dc",
            Self::Zip => "unzip -p",
            Self::Lz4 => "lz4 -dc",
            Self::Lzma => "xz --format=lzma -dc",
            // gzip reads compress's format too.
            Self::Compress => "gzip -dc",
        }
    }

    /// The command that compresses stdin to stdout in this format (`zip -q - -`: an archive
    /// of one member, named `-`).
    pub fn compress(self) -> &'static str {
        match self {
            Self::Zip => "zip -q - -",
            Self::Lz4 => "lz4 -c",
            Self::Lzma => "xz --format=lzma -c",
            Self::Compress => "compress -c",
            other => other.name(),
        }
    }

    /// The command that decompresses this format from stdin to stdout (`funzip`: a zip
    /// archive's first member).
    pub fn decompress_stdin(self) -> &'static str {
        match self {
            Self::Zip => "funzip",
            other => other.decompress(),
        }
    }
}

/// What in a file's first bytes `data` shows text COPY data, where it would be read as CSV for
/// its name (psql's `\\copy t to 't.csv'` without `csv` writes text): a line that is `\N`, text's
/// NULL (CSV writes a NULL as nothing), or, for a COPY of `columns` columns (more than one), a
/// line without quotes that tabs split into as many fields. Read as CSV its NULLs became the
/// string `\N`, its empty strings NULL, its escapes doubled, exit 0. Unless another line is CSV
/// as text is not: a quoted field, or commas (not tabs) splitting it into the table's columns —
/// CSV holds a tab or a `\N` unquoted (types43 F7: a CSV file copyman wrote was refused on its
/// way back). Complete lines only (the last, where the bytes stop mid-line, is not looked at);
/// `None` where nothing says text.
///
/// ```
/// use copyman_core::file_start::text_sign;
///
/// assert!(text_sign(b"a\n\\N\nb\n", 1).is_some());
/// assert!(text_sign(b"1\tSmith, John\n2\tDoe, Jane\n", 2).is_some());
/// assert!(text_sign(b"1,\"Smith, John\"\n2,Doe\n", 2).is_none());
/// // A tab within a quoted CSV field is no text.
/// assert!(text_sign(b"\"a\tb\",c\n", 2).is_none());
/// assert!(text_sign(b"C:\\dir,1\n", 2).is_none());
/// // CSV as PostgreSQL writes it: a tab or a `\N` unquoted, beside lines only CSV reads so.
/// assert!(text_sign(b"1,note\n2,a\tb\n", 2).is_none());
/// assert!(text_sign(b"a\n\\N\n\n\"\"\n", 1).is_none());
/// // Every line split into the columns on tabs and on commas alike: said as either.
/// assert!(text_sign(b"1,x\ty 1\n2,x\ty 2\n", 2).is_some_and(|s| s.contains("either way")));
/// ```
pub fn text_sign(data: &[u8], columns: usize) -> Option<&'static str> {
    let complete = match data.iter().rposition(|b| *b == b'\n') {
        Some(end) => &data[..end],
        None => return None,
    };
    let lines = || {
        complete
            .split(|b| *b == b'\n')
            .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
    };
    let tab_fields = |line: &[u8]| line.split(|b| *b == b'\t').count();
    let csv_only = |line: &[u8]| match csv_fields(line) {
        Some((fields, quoted)) => {
            fields == columns && (quoted || (columns > 1 && tab_fields(line) != columns))
        }
        None => false,
    };
    if lines().any(csv_only) {
        return None;
    }
    // A line that commas split into the columns as well may be either: said so.
    let ambiguous = |line: &[u8]| csv_fields(line).is_some_and(|(fields, _)| fields == columns);
    let tabbed = |line: &[u8]| columns > 1 && !line.contains(&b'"') && tab_fields(line) == columns;
    if lines().any(|line| tabbed(line) && !ambiguous(line)) {
        return Some("lines that tabs split into the table's columns");
    }
    lines().find_map(|line| {
        if line == b"\\N" {
            Some("a line that is \\N, text COPY's NULL")
        } else if tabbed(line) {
            Some(
                "lines that tabs split into the table's columns (and commas too: each line may \
                 be read either way)",
            )
        } else {
            None
        }
    })
}

/// Whether a file's first bytes `data`, to be read as text COPY data for a COPY of `columns`
/// columns (more than one), are CSV: every complete line (one at least) without a tab, and
/// commas splitting it into the table's columns — as text, each would fail at its first field
/// (22P02), said with no word of CSV (cli43 F6).
///
/// ```
/// use copyman_core::file_start::csv_sign;
///
/// assert!(csv_sign(b"1,a\n2,\"b, c\"\n", 2));
/// assert!(!csv_sign(b"1\ta\n2\tb\n", 2));
/// assert!(!csv_sign(b"1,a\n2\tb\n", 2));
/// assert!(!csv_sign(b"a,b\n", 1));
/// ```
///
/// For one column, where any line is one text value and commas split none: every value is
/// CSV of one field, and one at least is quoted as only CSV quotes (a `""` inside, a comma, a
/// line break: as text its quotes were stored in the value, and its lines split into rows;
/// types74 F2) or is `""`, CSV's empty string.
///
/// ```
/// use copyman_core::file_start::csv_sign;
///
/// assert!(csv_sign(b"plain\n\"a,b\"\n\n", 1));
/// assert!(csv_sign(b"\"x\"\"y\"\n", 1));
/// assert!(csv_sign(b"\"multi\nline\"\nnext\n", 1));
/// assert!(csv_sign(b"\"\"\n", 1));
/// // Quotes a text value may hold: not CSV's.
/// assert!(!csv_sign(b"say \"hi\"\n", 1));
/// assert!(!csv_sign(b"\"quoted\"\n", 1));
/// assert!(!csv_sign(b"\"a,b\"\nx,y\n", 1));
/// ```
pub fn csv_sign(data: &[u8], columns: usize) -> bool {
    let Some(end) = data.iter().rposition(|b| *b == b'\n') else {
        return false;
    };
    if columns == 1 {
        return one_column_csv(&data[..=end]);
    }
    let mut lines = data[..end]
        .split(|b| *b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .peekable();
    columns > 1
        && lines.peek().is_some()
        && lines.all(|line| {
            !line.contains(&b'\t') && csv_fields(line).is_some_and(|(n, _)| n == columns)
        })
}

/// Whether `data` (whole lines) is CSV of one column quoted as only CSV quotes ([`csv_sign`]):
/// each record one field, its quotes closing at its end, one at least holding `""`, a comma
/// or a line break inside its quotes, or being `""`.
fn one_column_csv(data: &[u8]) -> bool {
    let (mut i, mut telling) = (0, false);
    while i < data.len() {
        if data[i] != b'"' {
            // An unquoted value: up to its line's end, no quote nor comma in it.
            let line_end = data[i..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(data.len(), |n| i + n);
            if data[i..line_end].iter().any(|&b| b == b'"' || b == b',') {
                return false;
            }
            i = line_end + 1;
            continue;
        }
        // A quoted value: to its closing quote, which ends the line.
        let start = i + 1;
        i = start;
        let mut inner_quote = false;
        loop {
            match data.get(i) {
                None => return false,
                Some(b'"') if data.get(i + 1) == Some(&b'"') => {
                    inner_quote = true;
                    i += 2;
                }
                Some(b'"') => break,
                Some(_) => i += 1,
            }
        }
        let value = &data[start..i];
        telling |=
            inner_quote || value.is_empty() || value.iter().any(|&b| b == b',' || b == b'\n');
        i += 1;
        match data.get(i) {
            Some(b'\n') => i += 1,
            Some(b'\r') if data.get(i + 1) == Some(&b'\n') => i += 2,
            None => {}
            Some(_) => return false,
        }
    }
    telling
}

/// How many fields a CSV line (comma-separated, `"` quoting, `""` a quote within) holds, and
/// whether one was quoted; `None` where its quotes do not close on it (a quoted field going
/// on to the next line) or stand inside an unquoted field.
fn csv_fields(line: &[u8]) -> Option<(usize, bool)> {
    let (mut fields, mut quoted, mut i) = (1, false, 0);
    while i < line.len() {
        if line[i] == b'"' {
            quoted = true;
            i += 1;
            loop {
                match line.get(i) {
                    None => return None,
                    Some(b'"') if line.get(i + 1) == Some(&b'"') => i += 2,
                    Some(b'"') => break,
                    Some(_) => i += 1,
                }
            }
            i += 1;
            match line.get(i) {
                None => break,
                Some(b',') => {}
                Some(_) => return None,
            }
        } else {
            while i < line.len() && line[i] != b',' {
                if line[i] == b'"' {
                    return None;
                }
                i += 1;
            }
            if i == line.len() {
                break;
            }
        }
        fields += 1;
        i += 1;
    }
    Some((fields, quoted))
}

/// Whether `data`, read as LATIN1 (`encoding`, as the servers name it), holds bytes 0x80–0x9F:
/// control characters in LATIN1 that real LATIN1 text never holds, and WIN1252's `€`, `“ ”`,
/// `–` — a file from Windows, which loaded as invisible controls (as psql's `\\copy` loads it).
///
/// ```
/// use copyman_core::file_start::windows_bytes_in_latin1;
///
/// assert!(windows_bytes_in_latin1(b"1,\x80 euro\n", "LATIN1"));
/// assert!(!windows_bytes_in_latin1(b"1,caf\xe9\n", "LATIN1"));
/// assert!(!windows_bytes_in_latin1(b"1,\x80\n", "WIN1252"));
/// ```
pub fn windows_bytes_in_latin1(data: &[u8], encoding: &str) -> bool {
    encoding_key(encoding) == "latin1" && data.iter().any(|b| (0x80..=0x9f).contains(b))
}

/// An encoding's name as PostgreSQL matches it (`clean_encoding_name`: its letters and digits,
/// lower case), its ISO 8859 aliases as the LATIN names they are: `ISO-8859-1`, `iso88591`,
/// `latin-1` and `LATIN1` are one (input75 F3: only some spellings were warned of).
///
/// ```
/// use copyman_core::file_start::encoding_key;
///
/// for name in ["LATIN1", "latin-1", "ISO-8859-1", "iso88591", "ISO_8859_1"] {
///     assert_eq!(encoding_key(name), "latin1");
/// }
/// assert_eq!(encoding_key("ISO-8859-15"), "latin9");
/// assert_eq!(encoding_key("ISO_8859_5"), "iso88595");
/// assert_eq!(encoding_key("Windows-1252"), "win1252");
/// ```
pub fn encoding_key(name: &str) -> String {
    let clean: String = (name.chars())
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let latin = [
        ("iso88591", "latin1"),
        ("iso88592", "latin2"),
        ("iso88593", "latin3"),
        ("iso88594", "latin4"),
        ("iso88599", "latin5"),
        ("iso885910", "latin6"),
        ("iso885913", "latin7"),
        ("iso885914", "latin8"),
        ("iso885915", "latin9"),
        ("iso885916", "latin10"),
    ];
    match latin.iter().find(|(iso, _)| *iso == clean) {
        Some((_, name)) => (*name).to_owned(),
        None => match clean.strip_prefix("windows") {
            Some(page) => format!("win{page}"),
            None => clean,
        },
    }
}

/// Whether `data` (the input's first bytes) read in the single-byte `encoding` (`LATIN1`,
/// `WIN1252`, `ISO_8859_5`, `KOI8R` …) looks like UTF-8: its bytes past ASCII, some there, all
/// form UTF-8 characters (the last may be cut where the bytes stop). Read as `encoding`, each
/// of them becomes two or three characters (`é` as `Ã©`), without an error — the commonest
/// mistake with `--encoding`, which text in those encodings almost never passes for.
///
/// ```
/// use copyman_core::file_start::utf8_read_as_single_byte;
///
/// assert!(utf8_read_as_single_byte("1\tcafé\n".as_bytes(), "LATIN1"));
/// assert!(!utf8_read_as_single_byte(b"1\tcaf\xe9\n", "LATIN1"));
/// assert!(!utf8_read_as_single_byte(b"1\tcafe\n", "LATIN1"));
/// assert!(!utf8_read_as_single_byte("1\tcafé\n".as_bytes(), "SJIS"));
/// ```
pub fn utf8_read_as_single_byte(data: &[u8], encoding: &str) -> bool {
    let key = encoding_key(encoding);
    let single_byte = ["latin", "win", "iso8859", "koi8"]
        .iter()
        .any(|prefix| key.starts_with(prefix));
    let valid = match std::str::from_utf8(data) {
        Ok(text) => text,
        // Cut in the middle of a character where the bytes stop: what came before.
        Err(e) if e.error_len().is_none() => {
            std::str::from_utf8(&data[..e.valid_up_to()]).unwrap_or_default()
        }
        Err(_) => return false,
    };
    single_byte && !valid.is_ascii()
}

/// Input that is no COPY data, told by its first bytes, for the caller to refuse with the way
/// in: every server would read it as rows (or fail on its first bytes) where it is something
/// else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Foreign {
    /// UTF-32 (`FF FE 00 00`, `00 00 FE FF`) or UTF-16 (`FF FE`, `FE FF`) text, by its byte order
    /// mark — what a spreadsheet's "Unicode text" and PowerShell's `>` write, in no encoding
    /// PostgreSQL reads: its NUL bytes fail the copy (22021) and a header's labels name no
    /// column. The encoding's name, as `iconv` takes it.
    WideText(&'static str),
    /// A pg_dump archive (custom or tar format's `PGDMP`): read as rows, it failed on a NUL byte.
    PgDumpArchive,
    /// A pg_dump or pg_dumpall plain script (`--\n-- PostgreSQL database dump`, `… database
    /// cluster dump`): its SQL loaded as rows.
    PgDumpScript,
    /// A pg_dump script's section cut out with its statement, its first line `COPY … FROM
    /// stdin;`: loaded as a row of a one-column table (input75 F10), a 22P02 of another.
    CopyStatement,
    /// UTF-16 text without a byte order mark (every other byte NUL, from its start): the
    /// encoding's name, as `iconv` takes it (`UTF-16LE`, `UTF-16BE`).
    WideTextUnmarked(&'static str),
    /// Bytes that are no text at all: a NUL byte (at `at`), which PostgreSQL text holds in no
    /// encoding — a database file, a spreadsheet, an archive, a program — what it is where its
    /// signature tells (`kind`, with the way to its rows): sent, it was diagnosed as a quote
    /// inside a field or a wrong encoding, after connecting everywhere (files67 F1).
    NotText {
        /// The first NUL byte's offset.
        at: usize,
        /// What it is, and how its rows are had, where its signature says.
        kind: Option<&'static str>,
    },
}

/// Whether `start`'s first line is a `COPY … FROM stdin;` statement, as pg_dump writes one.
fn copy_statement_first(start: &[u8]) -> bool {
    let Some(end) = start.iter().position(|&b| b == b'\n') else {
        return false;
    };
    let line = start[..end].strip_suffix(b"\r").unwrap_or(&start[..end]);
    let upper = line.to_ascii_uppercase();
    upper.starts_with(b"COPY ") && upper.ends_with(b" FROM STDIN;")
}

impl Foreign {
    /// How many first bytes [`Foreign::of`] looks at (a tar archive's signature is at 257).
    pub const LONGEST: usize = 512;

    /// What the input's first bytes `start` are, where they are no COPY data.
    ///
    /// ```
    /// use copyman_core::file_start::Foreign;
    ///
    /// assert_eq!(Foreign::of(b"\xff\xfea\x00,\x00"), Some(Foreign::WideText("UTF-16")));
    /// assert_eq!(Foreign::of(b"\xff\xfe\x00\x00a\x00\x00\x00"), Some(Foreign::WideText("UTF-32")));
    /// assert_eq!(Foreign::of(b"PGDMP\x01\x0e"), Some(Foreign::PgDumpArchive));
    /// assert_eq!(Foreign::of(b"--\n-- PostgreSQL database dump\n--\n"), Some(Foreign::PgDumpScript));
    /// assert_eq!(Foreign::of(b"--\r\n-- PostgreSQL database cluster dump"), Some(Foreign::PgDumpScript));
    /// assert_eq!(Foreign::of(b"COPY public.one (v) FROM stdin;\na\n"), Some(Foreign::CopyStatement));
    /// assert_eq!(Foreign::of(b"COPY is a word\n"), None);
    /// assert_eq!(Foreign::of(b"\xef\xbb\xbfa,b"), None);
    /// assert_eq!(Foreign::of(b"i\x00d\x00,\x00v\x00"), Some(Foreign::WideTextUnmarked("UTF-16LE")));
    /// assert!(matches!(
    ///     Foreign::of(b"SQLite format 3\x00\x10\x00"),
    ///     Some(Foreign::NotText { at: 15, kind: Some(_) })
    /// ));
    /// assert_eq!(Foreign::of(b"PGCOPY\n\xff\r\n\x00\x00"), None);
    /// ```
    pub fn of(start: &[u8]) -> Option<Self> {
        let start = &start[..start.len().min(Self::LONGEST)];
        match start {
            [0xff, 0xfe, 0, 0, ..] | [0, 0, 0xfe, 0xff, ..] => Some(Self::WideText("UTF-32")),
            [0xff, 0xfe, ..] | [0xfe, 0xff, ..] => Some(Self::WideText("UTF-16")),
            _ if start.starts_with(b"PGDMP") => Some(Self::PgDumpArchive),
            _ if PG_DUMP_SCRIPTS.iter().any(|s| start.starts_with(s)) => Some(Self::PgDumpScript),
            _ if copy_statement_first(start) => Some(Self::CopyStatement),
            // Binary COPY data holds NUL bytes, after its signature.
            _ if start.starts_with(&PGCOPY[..start.len().min(PGCOPY.len())]) => None,
            _ => {
                let at = start.iter().position(|&b| b == 0)?;
                // Every other byte NUL from the start, the others not: UTF-16 without its mark.
                let head = &start[..start.len().min(64) & !1];
                let nul_at = |odd: usize| {
                    head.len() >= 4
                        && head.iter().skip(odd).step_by(2).all(|&b| b == 0)
                        && head.iter().skip(1 - odd).step_by(2).all(|&b| b != 0)
                };
                if nul_at(1) {
                    return Some(Self::WideTextUnmarked("UTF-16LE"));
                }
                if nul_at(0) {
                    return Some(Self::WideTextUnmarked("UTF-16BE"));
                }
                let kind = match start {
                    _ if start.starts_with(b"SQLite format 3\0") => Some(
                        "an SQLite database (its rows as CSV: sqlite3 -csv -header FILE 'SELECT * \
                         FROM t')",
                    ),
                    [0xd0, 0xcf, 0x11, 0xe0, ..] => {
                        Some("an Excel 97-2003 workbook or another OLE2 document (save it as CSV)")
                    }
                    _ if start.starts_with(b"PAR1") => {
                        Some("a Parquet file (its rows as CSV with a tool that reads Parquet)")
                    }
                    _ if start.starts_with(b"\x7fELF") => Some("a program (ELF)"),
                    _ if start.get(257..262) == Some(b"ustar") => Some(
                        "a tar archive (one file of it on its way in: tar -xOf ARCHIVE MEMBER | \
                         copyman … --from -)",
                    ),
                    _ => None,
                };
                Some(Self::NotText { at, kind })
            }
        }
    }
}

/// The signature binary COPY data begins with.
const PGCOPY: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// How pg_dump and pg_dumpall begin a plain script (`database dump`, `database cluster dump`),
/// with its line ends as written (a script passed through Windows has `\r\n`).
const PG_DUMP_SCRIPTS: [&[u8]; 2] = [
    b"--\n-- PostgreSQL database ",
    b"--\r\n-- PostgreSQL database ",
];

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn csv(header: bool) -> Reading {
        Reading {
            declared: Declared::Csv,
            layout: Layout::csv(),
            header,
            utf8: true,
            encoding: "UTF8".to_owned(),
        }
    }

    fn ready(peek: Peek) -> Start {
        match peek {
            Peek::Ready(start) => start,
            Peek::NeedMore => panic!("needs more"),
        }
    }

    fn fields(v: &[&str]) -> Vec<Option<String>> {
        v.iter().map(|s| Some((*s).to_owned())).collect()
    }

    #[test]
    fn the_start_is_read_until_it_is_decided() {
        // A prefix of the signature or of the mark: more is needed, unless the input ended.
        assert_eq!(examine(b"PGC", false, &csv(false)), Peek::NeedMore);
        assert_eq!(examine(b"\xef\xbb", false, &csv(false)), Peek::NeedMore);
        assert!(!ready(examine(b"PGC", true, &csv(false))).binary);
        // Without a header, the first line is read too (it may be a header all the same).
        assert_eq!(examine(b"b", false, &csv(false)), Peek::NeedMore);
        assert_eq!(
            ready(examine(b"b,c\n1,2\n", false, &csv(false))),
            Start {
                bom: false,
                binary: false,
                header: None,
                first_line: Some(fields(&["b", "c"])),
            }
        );
        // A header needs its line end, or the end of the input.
        assert_eq!(examine(b"a,b", false, &csv(true)), Peek::NeedMore);
        assert_eq!(
            ready(examine(b"a,b", true, &csv(true))).header,
            Some(fields(&["a", "b"]))
        );
        // A quoted line end is inside the line.
        assert_eq!(examine(b"\"a\nb\",c\n", false, &csv(true)), {
            Peek::Ready(Start {
                bom: false,
                binary: false,
                header: Some(fields(&["a\nb", "c"])),
                first_line: None,
            })
        });
        let binary = ready(examine(b"PGCOPY\n\xff\r\n\0rest", false, &csv(true)));
        assert!(binary.binary && binary.header.is_none());
        // A line longer than any header is left unchecked rather than read to its end.
        let long = vec![b'x'; MAX_HEADER + 1];
        assert_eq!(ready(examine(&long, false, &csv(true))).header, None);
    }

    #[test]
    fn the_byte_order_mark_only_in_utf8_and_not_in_binary() {
        let data = b"\xef\xbb\xbfid\n1\n";
        assert!(ready(examine(data, false, &csv(true))).bom);
        assert_eq!(
            ready(examine(data, false, &csv(true))).header,
            Some(fields(&["id"]))
        );
        let latin1 = Reading {
            utf8: false,
            encoding: "LATIN1".to_owned(),
            ..csv(false)
        };
        assert!(!ready(examine(data, false, &latin1)).bom);
        let binary = Reading {
            declared: Declared::Binary,
            layout: Layout::Opaque,
            ..csv(false)
        };
        assert!(!ready(examine(data, false, &binary)).bom);
    }

    #[test]
    fn csv_fields_are_split_as_the_server_splits_them() {
        let split_csv = |line: &[u8]| split(line, &Layout::csv(), "UTF8").unwrap();
        assert_eq!(
            split_csv(b"a,\"b,c\",\"d\"\"e\""),
            fields(&["a", "b,c", "d\"e"])
        );
        // The empty unquoted field is the NULL string; a quoted one is a name.
        assert_eq!(split_csv(b",\"\""), vec![None, Some(String::new())]);
        // Blanks are kept: ` a` names no column `a`.
        assert_eq!(split_csv(b" a,b "), fields(&[" a", "b "]));
        let escaped = Layout::Csv {
            delimiter: b';',
            quote: b'\'',
            escape: b'\\',
            null: b"NULL".to_vec(),
        };
        assert_eq!(
            split(b"'a\\'b';NULL;'NULL'", &escaped, "UTF8").unwrap(),
            vec![Some("a'b".to_owned()), None, Some("NULL".to_owned())]
        );
    }

    #[test]
    fn text_fields_are_split_and_unescaped() {
        let split_text = |line: &[u8]| split(line, &Layout::text(), "UTF8").unwrap();
        assert_eq!(split_text(b"a\tb"), fields(&["a", "b"]));
        assert_eq!(split_text(b"a\\tb\tc"), fields(&["a\tb", "c"]));
        assert_eq!(
            split_text(b"\\N\t\\x41\\102"),
            vec![None, Some("AB".to_owned())]
        );
        // An escaped delimiter is data.
        assert_eq!(split_text(b"a\\\tb"), fields(&["a\tb"]));
        assert_eq!(
            first_line(b"a\\\nb\nc", &Layout::text()),
            Some(&b"a\\\nb"[..])
        );
    }

    #[test]
    fn headers_are_checked_against_the_columns() {
        let cols = ["a", "b", "c"];
        assert!(check_header(&fields(&["a", "b", "c"]), &cols).is_ok());
        // Labels that name no column, or some columns in place.
        assert!(check_header(&fields(&["A", "B", "C"]), &cols).is_ok());
        assert!(check_header(&fields(&["a", "x", "c"]), &cols).is_ok());
        assert!(check_header(&fields(&["x", "y"]), &cols).is_ok());
        assert!(check_header(&[None, None, None], &cols).is_ok());
        // A name elsewhere.
        let moved = check_header(&fields(&["a", "c", "b"]), &cols).unwrap_err();
        assert_eq!(
            moved.kind,
            Mismatch::Moved {
                field: 2,
                name: "c".to_owned(),
                column: 3
            }
        );
        assert_eq!(
            moved.by_header,
            Some(vec!["a".to_owned(), "c".to_owned(), "b".to_owned()])
        );
        assert!(moved.to_string().contains("header field 2 is \"c\""));
        // Another count, naming a column.
        let short = check_header(&fields(&["a", "b"]), &cols).unwrap_err();
        assert!(matches!(short.kind, Mismatch::Count { fields: 2, .. }));
        assert_eq!(short.by_header, Some(vec!["a".to_owned(), "b".to_owned()]));
        // A label among names: no column list can be suggested.
        let mixed = check_header(&fields(&["b", "x", "a"]), &cols).unwrap_err();
        assert_eq!(mixed.by_header, None);
        // A name twice.
        let twice = check_header(&fields(&["a", "a", "c"]), &cols).unwrap_err();
        assert_eq!(twice.by_header, None);
    }

    #[test]
    fn column_lists_are_read_and_replaced() {
        assert_eq!(copy_columns("COPY (SELECT 1) TO STDOUT"), None);
        assert_eq!(copy_columns("COPY t (a b) FROM STDIN"), None);
        assert_eq!(
            copy_columns("COPY \"T\" ( \"x\"\"y\" ,z ) FROM STDIN"),
            Some(Some(vec!["x\"y".to_owned(), "z".to_owned()]))
        );
        assert_eq!(
            with_columns("COPY s.t (a) FROM STDIN", &["Odd".into(), "user".into()]).unwrap(),
            "COPY s.t (\"Odd\", \"user\") FROM STDIN"
        );
    }

    /// Column names: distinct, as catalogs have them.
    fn columns() -> impl Strategy<Value = Vec<String>> {
        proptest::collection::btree_set("[a-zA-Z_ ][a-zA-Z0-9_ ]{0,6}", 2..8)
            .prop_map(|set| set.into_iter().collect::<Vec<_>>())
            .prop_shuffle()
    }

    proptest! {
        #[test]
        fn a_header_equal_to_the_columns_passes(columns in columns()) {
            let header: Vec<Option<String>> = columns.iter().cloned().map(Some).collect();
            prop_assert!(check_header(&header, &columns).is_ok());
            // And so it is read from a CSV line the way a writer quotes it.
            let line: Vec<String> = columns.iter().map(|c| format!("\"{c}\"")).collect();
            let data = format!("{}\n1\n", line.join(","));
            let reading = csv(true);
            let Peek::Ready(start) = examine(data.as_bytes(), false, &reading) else {
                return Err(TestCaseError::fail("needs more"));
            };
            prop_assert_eq!(start.header, Some(header));
        }

        #[test]
        fn any_transposition_of_two_named_columns_is_refused(
            columns in columns(),
            picks in (any::<prop::sample::Index>(), any::<prop::sample::Index>()),
        ) {
            let (i, j) = (picks.0.index(columns.len()), picks.1.index(columns.len()));
            prop_assume!(i != j);
            let mut header: Vec<Option<String>> = columns.iter().cloned().map(Some).collect();
            header.swap(i, j);
            let refused = check_header(&header, &columns);
            prop_assert!(refused.is_err());
            let refused = refused.unwrap_err();
            let by_header: Vec<String> = header.iter().flatten().cloned().collect();
            prop_assert_eq!(refused.by_header, Some(by_header));
        }
    }

    #[test]
    fn compressed_input_is_told_by_its_first_bytes() {
        let of = Compression::of;
        assert_eq!(
            of(b"\x1f\x8b\x08\x00", false),
            Some(Some(Compression::Gzip))
        );
        assert_eq!(
            of(b"\x28\xb5\x2f\xfd\x04", true),
            Some(Some(Compression::Zstd))
        );
        assert_eq!(of(b"BZh91AY&SY\x10", false), Some(Some(Compression::Bzip2)));
        // Empty data compressed: the end of stream's magic.
        assert_eq!(
            of(b"BZh9\x17\x72\x45\x38\x50\x90", true),
            Some(Some(Compression::Bzip2))
        );
        assert_eq!(of(b"\xfd7zXZ\x00\x00", false), Some(Some(Compression::Xz)));
        assert_eq!(
            of(b"PK\x03\x04\x14\x00", false),
            Some(Some(Compression::Zip))
        );
        assert_eq!(of(b"PK\x05\x06", true), Some(Some(Compression::Zip)));
        // lz4's frame, .lzma, compress's .Z (they were read as text: "give its encoding").
        assert_eq!(
            of(b"\x04\x22\x4d\x18\x64", true),
            Some(Some(Compression::Lz4))
        );
        assert_eq!(
            of(b"\x5d\x00\x00\x80\x00", true),
            Some(Some(Compression::Lzma))
        );
        assert_eq!(of(b"\x1f\x9d\x90", true), Some(Some(Compression::Compress)));
        assert_eq!(of(b"]\tbracket\n", true), Some(None));
        assert_eq!(Compression::of_extension("lz4"), Some(Compression::Lz4));
        assert_eq!(Compression::of_extension("Z"), Some(Compression::Compress));
        assert_eq!(Compression::of_extension("zstd"), Some(Compression::Zstd));
        // Text that starts with `PK` is text.
        assert_eq!(of(b"PK,name\n", true), Some(None));
        assert_eq!(of(b"PK", false), None);
        // Not yet told: a start that may still become a signature.
        assert_eq!(of(b"", false), None);
        assert_eq!(of(b"\x1f", false), None);
        assert_eq!(of(b"BZh9", false), None);
        // Told: ended before a signature was whole, or disagreeing with every one.
        assert_eq!(of(b"\x1f", true), Some(None));
        assert_eq!(of(b"", true), Some(None));
        assert_eq!(of(b"1\tone\n", false), Some(None));
        assert_eq!(of(b"BZh9 is a row\n", false), Some(None));
        assert_eq!(of(b"PGCOPY\n\xff\r\n\x00", false), Some(None));
        assert_eq!(of(b"\xef\xbb\xbf1\tone\n", false), Some(None));
    }
}
