//! SQL text copyman builds: identifiers and literals are always quoted, never pasted.
//!
//! Table and column names come from the command line in SQL syntax (`app.items`,
//! `"My Schema"."Odd ""Name"""`), are parsed into their parts exactly as PostgreSQL reads them
//! (unquoted parts fold to lower case, quoted parts keep case and `""`), and are written back
//! always double-quoted. The only user text that goes into a statement unparsed is `--where`,
//! which is SQL by definition; it is checked to stay inside its parentheses.

use std::fmt;

/// A name given on the command line could not be read as SQL identifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NameError(String);

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NameError {}

/// One SQL identifier, as the server stores it (already case-folded, unquoted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ident(String);

impl Ident {
    /// The identifier as the catalog holds it.
    #[cfg(test)]
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Ident {
    /// Always double-quoted, `"` doubled: safe for any name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.0.replace('"', "\"\""))
    }
}

/// A table name, optionally schema-qualified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TableName {
    /// The schema, if given.
    pub(crate) schema: Option<Ident>,
    /// The table.
    pub(crate) name: Ident,
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.schema {
            Some(schema) => write!(f, "{schema}.{}", self.name),
            None => write!(f, "{}", self.name),
        }
    }
}

impl TableName {
    /// Parses `table`, `schema.table`, with quoted parts where needed.
    pub(crate) fn parse(text: &str) -> Result<Self, NameError> {
        let mut parser = Parser::new(text);
        let mut parts = vec![parser.ident()?];
        while parser.eat('.') {
            parts.push(parser.ident()?);
        }
        parser.end()?;
        match parts.len() {
            1 => Ok(Self {
                schema: None,
                name: parts.remove(0),
            }),
            2 => {
                let name = parts.remove(1);
                Ok(Self {
                    schema: Some(parts.remove(0)),
                    name,
                })
            }
            n => Err(NameError(format!(
                "table name {text:?} has {n} dot-separated parts: give `table` or `schema.table` \
                 (quote a name holding a dot: \"a.b\")"
            ))),
        }
    }
}

/// Parses a comma-separated list of column names (`a, "B c", d`).
pub(crate) fn parse_columns(text: &str) -> Result<Vec<Ident>, NameError> {
    let mut parser = Parser::new(text);
    let mut columns = vec![parser.ident()?];
    while parser.eat(',') {
        columns.push(parser.ident()?);
    }
    parser.end()?;
    Ok(columns)
}

/// Reads identifiers as PostgreSQL's scanner does.
struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Self { text, pos: 0 }
    }

    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    fn skip_ws(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start().len();
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_ws();
        if self.rest().starts_with(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn end(&mut self) -> Result<(), NameError> {
        self.skip_ws();
        match self.rest().chars().next() {
            None => Ok(()),
            Some(c) => Err(NameError(format!(
                "unexpected {c:?} at character {} of {:?}",
                self.pos + 1,
                self.text
            ))),
        }
    }

    fn ident(&mut self) -> Result<Ident, NameError> {
        self.skip_ws();
        let rest = self.rest();
        let ident = if let Some(quoted) = rest.strip_prefix('"') {
            let mut name = String::new();
            let mut chars = quoted.char_indices();
            let end = loop {
                match chars.next() {
                    Some((i, '"')) => {
                        if quoted[i + 1..].starts_with('"') {
                            name.push('"');
                            chars.next();
                        } else {
                            break i + 1;
                        }
                    }
                    Some((_, c)) => name.push(c),
                    None => {
                        return Err(NameError(format!(
                            "unterminated quoted identifier in {:?}",
                            self.text
                        )));
                    }
                }
            };
            if name.is_empty() {
                return Err(NameError(format!(
                    "zero-length quoted identifier in {:?}",
                    self.text
                )));
            }
            self.pos += 1 + end;
            name
        } else {
            let len = rest
                .char_indices()
                .find(|&(i, c)| {
                    let ok = c == '_'
                        || c.is_alphabetic()
                        || !c.is_ascii()
                        || (i > 0 && (c.is_ascii_digit() || c == '$'));
                    !ok
                })
                .map_or(rest.len(), |(i, _)| i);
            if len == 0 {
                return Err(NameError(match rest.chars().next() {
                    Some(c) => format!(
                        "expected a name at character {} of {:?}, found {c:?}",
                        self.pos + 1,
                        self.text
                    ),
                    None => format!("expected a name in {:?}", self.text),
                }));
            }
            self.pos += len;
            // PostgreSQL folds unquoted ASCII letters to lower case and keeps other characters.
            rest[..len].to_ascii_lowercase()
        };
        if ident.contains('\0') {
            return Err(NameError("a name cannot contain a NUL character".into()));
        }
        Ok(Ident(ident))
    }
}

/// A string literal for `text`: `'…'` with `'` doubled, or `E'…'` when it holds a backslash (as
/// PostgreSQL's `quote_literal` does), so it reads the same whatever
/// `standard_conforming_strings` is.
pub(crate) fn literal(text: &str) -> String {
    let doubled = text.replace('\'', "''");
    if text.contains('\\') {
        format!("E'{}'", doubled.replace('\\', "\\\\"))
    } else {
        format!("'{doubled}'")
    }
}

/// A data format of COPY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// PostgreSQL's text format.
    Text,
    /// CSV.
    Csv,
    /// PostgreSQL's binary format (same major version on both sides).
    Binary,
}

impl Format {
    /// The name COPY's `FORMAT` option takes.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Csv => "csv",
            Self::Binary => "binary",
        }
    }
}

/// Checks that a `--where` condition stays inside `WHERE ( … )`: parentheses balance and no `;`
/// outside string literals, quoted identifiers and comments. Not a security boundary (whoever
/// writes it can run any SQL on the source anyway), a guard against a truncated or mistyped
/// condition turning into a different statement.
pub(crate) fn check_condition(sql: &str) -> Result<(), NameError> {
    let bytes = sql.as_bytes();
    let mut depth: i64 = 0;
    let mut i = 0;
    let fail = |what: &str| Err(NameError(format!("--where {what}: {sql:?}")));
    while i < bytes.len() {
        match bytes[i] {
            b'\'' | b'"' => {
                let quote = bytes[i];
                i += 1;
                loop {
                    match bytes.get(i) {
                        None => return fail("has an unterminated quote"),
                        Some(&b) if b == quote => {
                            if bytes.get(i + 1) == Some(&quote) {
                                i += 2;
                            } else {
                                break;
                            }
                        }
                        // E'…' strings escape with backslashes; skipping the next byte is safe
                        // for plain strings too (it only ever over-accepts a lone backslash).
                        Some(b'\\') if quote == b'\'' => i += 2,
                        Some(_) => i += 1,
                    }
                }
            }
            // A line comment ends at a newline or a carriage return, as in the server's lexer.
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && !matches!(bytes[i], b'\n' | b'\r') {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => match sql[i + 2..].find("*/") {
                Some(end) => i += 2 + end + 1,
                None => return fail("has an unterminated comment"),
            },
            b'$' => {
                // A dollar-quoted string: $$…$$ or $tag$…$tag$.
                let tag_len = sql[i + 1..]
                    .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .unwrap_or(sql.len() - i - 1);
                if sql[i + 1 + tag_len..].starts_with('$') {
                    let tag = &sql[i..i + 2 + tag_len];
                    match sql[i + tag.len()..].find(tag) {
                        Some(end) => i += tag.len() + end + tag.len() - 1,
                        None => return fail("has an unterminated dollar-quoted string"),
                    }
                }
            }
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth < 0 {
                    return fail("closes a parenthesis it did not open");
                }
            }
            b';' => return fail("must be one condition, without `;`"),
            _ => {}
        }
        i += 1;
    }
    if depth != 0 {
        return fail("leaves a parenthesis open");
    }
    if sql.trim().is_empty() {
        return fail("is empty");
    }
    Ok(())
}

/// What a `copyman table` copy reads and writes.
#[derive(Debug, Clone)]
pub(crate) struct TableCopy {
    /// The table.
    pub(crate) table: TableName,
    /// The columns, or every column.
    pub(crate) columns: Vec<Ident>,
    /// The `--where` condition.
    pub(crate) condition: Option<String>,
    /// Whether CSV data has a header line.
    pub(crate) header: bool,
}

impl TableCopy {
    fn column_list(&self) -> String {
        self.columns
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn options(&self, format: Format) -> String {
        if self.header && format == Format::Csv {
            format!("(FORMAT {}, HEADER)", format.name())
        } else {
            format!("(FORMAT {})", format.name())
        }
    }

    /// The source's statement. `select` asks for the `COPY (SELECT …)` form, which views and
    /// partitioned tables need; a condition implies it.
    pub(crate) fn copy_out(&self, format: Format, select: bool) -> String {
        let options = self.options(format);
        if self.condition.is_none() && !select {
            let columns = if self.columns.is_empty() {
                String::new()
            } else {
                format!(" ({})", self.column_list())
            };
            return format!("COPY {}{columns} TO STDOUT {options}", self.table);
        }
        let columns = if self.columns.is_empty() {
            "*".to_owned()
        } else {
            self.column_list()
        };
        let condition = match &self.condition {
            Some(condition) => format!(" WHERE ({condition})"),
            None => String::new(),
        };
        format!(
            "COPY (SELECT {columns} FROM {}{condition}) TO STDOUT {options}",
            self.table
        )
    }

    /// A destination's statement.
    pub(crate) fn copy_in(&self, format: Format) -> String {
        let columns = if self.columns.is_empty() {
            String::new()
        } else {
            format!(" ({})", self.column_list())
        };
        format!(
            "COPY {}{columns} FROM STDIN {}",
            self.table,
            self.options(format)
        )
    }

    /// The destination's `TRUNCATE`.
    pub(crate) fn truncate(&self) -> String {
        format!("TRUNCATE {}", self.table)
    }

    /// The source's catalog query: relation kind and row estimate (`reltuples`, -1 or 0 when
    /// never analyzed).
    pub(crate) fn estimate_query(&self) -> String {
        format!(
            "SELECT c.relkind, c.reltuples::int8 FROM pg_catalog.pg_class c \
             WHERE c.oid = {}::pg_catalog.regclass",
            literal(&self.table.to_string())
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> TableName {
        TableName::parse(text).unwrap()
    }

    #[test]
    fn unquoted_names_fold_to_lower_case() {
        let t = table("App.Items");
        assert_eq!(t.schema.as_ref().unwrap().as_str(), "app");
        assert_eq!(t.name.as_str(), "items");
        assert_eq!(t.to_string(), r#""app"."items""#);
        assert_eq!(table(" items_2$ ").to_string(), r#""items_2$""#);
    }

    #[test]
    fn quoted_names_keep_case_and_doubled_quotes() {
        let t = table(r#""Mixed Schema"."Odd ""Name""""#);
        assert_eq!(t.schema.as_ref().unwrap().as_str(), "Mixed Schema");
        assert_eq!(t.name.as_str(), r#"Odd "Name""#);
        assert_eq!(t.to_string(), r#""Mixed Schema"."Odd ""Name""""#);
        assert_eq!(table(r#""a.b""#).name.as_str(), "a.b");
        assert_eq!(table(r#"s."x;y""#).to_string(), r#""s"."x;y""#);
    }

    #[test]
    fn bad_names_are_refused() {
        for bad in [
            "",
            "a.b.c",
            "items; DROP TABLE x",
            r#""open"#,
            r#""""#,
            "1abc",
            "a.",
            "a b",
            "t--",
            "\"a\0\"",
        ] {
            assert!(TableName::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn column_lists() {
        let columns = parse_columns(r#"id, "Name", "a,b" ,note"#).unwrap();
        let shown: Vec<String> = columns.iter().map(ToString::to_string).collect();
        assert_eq!(shown, [r#""id""#, r#""Name""#, r#""a,b""#, r#""note""#]);
        assert!(parse_columns("a,,b").is_err());
        assert!(parse_columns("a b").is_err());
        assert!(parse_columns("").is_err());
    }

    #[test]
    fn literals() {
        assert_eq!(literal("it's"), "'it''s'");
        assert_eq!(literal(r"a\b'"), r"E'a\\b'''");
    }

    #[test]
    fn statements() {
        let mut copy = TableCopy {
            table: table(r#"s."T""#),
            columns: Vec::new(),
            condition: None,
            header: false,
        };
        assert_eq!(
            copy.copy_out(Format::Binary, false),
            r#"COPY "s"."T" TO STDOUT (FORMAT binary)"#
        );
        assert_eq!(
            copy.copy_out(Format::Text, true),
            r#"COPY (SELECT * FROM "s"."T") TO STDOUT (FORMAT text)"#
        );
        assert_eq!(
            copy.copy_in(Format::Text),
            r#"COPY "s"."T" FROM STDIN (FORMAT text)"#
        );
        assert_eq!(copy.truncate(), r#"TRUNCATE "s"."T""#);
        copy.columns = parse_columns("a, B").unwrap();
        copy.condition = Some("a > 1".into());
        copy.header = true;
        assert_eq!(
            copy.copy_out(Format::Csv, false),
            r#"COPY (SELECT "a", "b" FROM "s"."T" WHERE (a > 1)) TO STDOUT (FORMAT csv, HEADER)"#
        );
        assert_eq!(
            copy.copy_in(Format::Csv),
            r#"COPY "s"."T" ("a", "b") FROM STDIN (FORMAT csv, HEADER)"#
        );
        assert_eq!(
            copy.estimate_query(),
            "SELECT c.relkind, c.reltuples::int8 FROM pg_catalog.pg_class c \
             WHERE c.oid = '\"s\".\"T\"'::pg_catalog.regclass"
        );
    }

    #[test]
    fn conditions_stay_inside_their_parentheses() {
        for good in [
            "a > 1",
            "name = 'x;)'",
            "\"odd)\" = 1",
            "f(a, (b)) -- trailing ; comment",
            "a = $$;)$$ AND b = $t$)$t$",
            "/* ; ) */ true",
            r"s = E'\';'",
        ] {
            assert_eq!(check_condition(good), Ok(()), "{good:?}");
        }
        for bad in [
            "",
            "1=1) TO STDOUT; DROP TABLE t; --",
            "a > 1; SELECT 1",
            "(a > 1",
            "a = 'open",
            "/* open",
            "$$ open",
            // The comment ends at the \r for the server: what follows is live.
            "true --\r)) TO STDOUT; DROP TABLE victim; COPY (SELECT (1 --\n",
        ] {
            assert!(check_condition(bad).is_err(), "{bad:?} accepted");
        }
    }
}
