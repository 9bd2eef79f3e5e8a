//! Which tables a job copies: names, schemas and pg_dump-style patterns, turned into one catalog
//! query on the source.
//!
//! Patterns follow pg_dump's `processSQLNamePattern`: outside double quotes letters fold to lower
//! case, `*` matches any run of characters, `?` any one character, and a `.` separates the
//! schema's pattern from the table's; inside double quotes every character stands for itself (a
//! doubled `""` for one `"`). Other regular-expression characters outside quotes pass through as
//! regular expressions (pg_dump's escape hatch), and `$` always matches itself. A pattern without
//! a schema matches the tables visible on the search path (`pg_table_is_visible`), as pg_dump's
//! `-t` does.
//!
//! What is selected:
//! * every `TABLE` named (any relation: a view, a foreign table or a materialized view too, and a
//!   partition by itself);
//! * every ordinary or partitioned table in a `--schema` (a pattern) or matching a `--table`
//!   pattern, a partition as any table (pg_dump's `-n` and `-t` dump a partition's rows too);
//! * with none of these, every ordinary and partitioned table outside the system schemas;
//! * minus every table matching an `--exclude-table` pattern, and every partition a pattern, a
//!   schema or the default took under a partitioned table matching one (its rows are left out
//!   with that table's; a partition named is copied all the same);
//! * minus every partition (at any depth) whose partitioned ancestor is selected too: its rows are
//!   copied with that ancestor's, and selecting it as well would copy them twice. The query
//!   still lists a partition named so, with the ancestor ([`Selected::within`]), so that the
//!   plan can say so (one a pattern or a schema matched, not: every partition of a partitioned
//!   table in a `--schema` would be a note); and it lists a partition matching an
//!   `--exclude-table` pattern whose ancestor is selected ([`Selected::excluded`]): its rows come
//!   with the ancestor's all the same. A partition whose ancestors are all left out is copied by
//!   itself, as any table.
//!
//! A table is selected whether or not the source's role may read it: the query says which it
//! cannot ([`Selected::readable`]: `SELECT` on the table or on each of its columns, `USAGE` on its
//! schema), and the plan refuses them by name, as pg_dump fails on them, rather than leave a
//! table out without a word.

use std::fmt;

use crate::sql::{TableName, literal};

/// A pattern that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PatternError(String);

/// A pattern as regular expressions, ready for the catalog query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamePattern {
    /// The schema's regular expression (anchored), when the pattern names one.
    pub schema: Option<String>,
    /// The name's regular expression (anchored).
    pub name: String,
    /// The name itself, when its part has no wildcard (`*`, `?`): matched by equality, which
    /// the catalog's index on names serves and a list of many compares at once (a regular
    /// expression per pattern was evaluated on every relation: 1 000 `--exclude-table` names
    /// took a minute and a half over 8 000 tables).
    pub literal: Option<String>,
}

/// `pattern` with each `U&"…"` part outside quotes (as copyman writes a name holding a
/// control character) written as the quoted name it spells: its escapes are no pattern syntax
/// (`-t 'w.U&"new\000aline"'` matched nothing: recheck43 F1).
fn unicode_quotes(pattern: &str) -> Result<String, PatternError> {
    let mut out = String::with_capacity(pattern.len());
    let mut in_quotes = false;
    let mut rest = pattern;
    while let Some(c) = rest.chars().next() {
        let unicode = !in_quotes
            && rest
                .get(..3)
                .is_some_and(|p| p.eq_ignore_ascii_case("u&\""));
        if !unicode {
            if c == '"' {
                in_quotes = !in_quotes;
            }
            out.push(c);
            rest = &rest[c.len_utf8()..];
            continue;
        }
        // The quoted part, its `""` kept for the pattern's own reading.
        let body = &rest[3..];
        let mut end = None;
        let mut i = 0;
        while let Some(at) = body[i..].find('"') {
            let at = i + at;
            if body[at + 1..].starts_with('"') {
                i = at + 2;
            } else {
                end = Some(at);
                break;
            }
        }
        let Some(end) = end else {
            return Err(PatternError(format!(
                "pattern {pattern:?} has an unterminated quote"
            )));
        };
        // Each piece between doubled quotes unescaped, a quote it spells doubled too.
        let pieces: Option<Vec<String>> = (body[..end].split("\"\""))
            .map(|piece| crate::sql::unescape_unicode(piece).map(|p| p.replace('"', "\"\"")))
            .collect();
        let pieces = pieces
            .filter(|pieces| !pieces.iter().any(|p| p.contains('\0')))
            .ok_or_else(|| {
                PatternError(format!(
                    "pattern {pattern:?} has an invalid Unicode escape (a name holds no NUL)"
                ))
            })?;
        out.push('"');
        out.push_str(&pieces.join("\"\""));
        out.push('"');
        rest = &body[end + 1..];
    }
    Ok(out)
}

/// Reads `pattern` as pg_dump reads a `-t` pattern: `[schema.]name`.
///
/// # Errors
/// Empty, an unterminated quote, or more than two dot-separated parts.
pub fn parse_pattern(pattern: &str) -> Result<NamePattern, PatternError> {
    let given = pattern;
    let unescaped = unicode_quotes(pattern)?;
    let pattern = unescaped.as_str();
    let mut parts = vec![String::new()];
    // Each part as the name it stands for, `None` once it has a wildcard.
    let mut names = vec![Some(String::new())];
    let mut in_quotes = false;
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        let part = parts.last_mut().expect("one part at least");
        let name = names.last_mut().expect("one part at least");
        let mut literally = |c: char| {
            if let Some(name) = name {
                name.push(c);
            }
        };
        match c {
            '"' if in_quotes && chars.peek() == Some(&'"') => {
                chars.next();
                part.push('"');
                literally('"');
            }
            '"' => in_quotes = !in_quotes,
            '*' if !in_quotes => {
                part.push_str(".*");
                *name = None;
            }
            '?' if !in_quotes => {
                part.push('.');
                *name = None;
            }
            '.' if !in_quotes => {
                parts.push(String::new());
                names.push(Some(String::new()));
            }
            '$' => {
                part.push_str("\\$");
                literally('$');
            }
            c if !in_quotes && c.is_ascii_uppercase() => {
                part.push(c.to_ascii_lowercase());
                literally(c.to_ascii_lowercase());
            }
            // Outside quotes a regular expression's character means what it means there (but
            // `[]`, as pg_dump reads it: `int[]`'s brackets, escaped below; a `]` alone is
            // itself).
            c if !in_quotes
                && "|+()[{}^\\".contains(c)
                && !(c == '[' && chars.peek() == Some(&']')) =>
            {
                part.push(c);
                *name = None;
            }
            c => {
                let special = in_quotes && "|*+?()[]{}.^\\".contains(c);
                if special || (c == '[' && chars.peek() == Some(&']')) {
                    part.push('\\');
                }
                part.push(c);
                literally(c);
            }
        }
    }
    if in_quotes {
        return Err(PatternError(format!(
            "pattern {given:?} has an unterminated quote"
        )));
    }
    if parts.iter().any(String::is_empty) {
        return Err(PatternError(format!("pattern {given:?} has an empty part")));
    }
    let anchored = |re: &str| format!("^({re})$");
    let literal = names.pop().flatten();
    match parts.len() {
        1 => Ok(NamePattern {
            schema: None,
            name: anchored(&parts[0]),
            literal,
        }),
        2 => Ok(NamePattern {
            schema: Some(anchored(&parts[0])),
            name: anchored(&parts[1]),
            literal,
        }),
        n => Err(PatternError(format!(
            "pattern {given:?} has {n} dot-separated parts: give `table` or `schema.table` \
             (quote a dot that is part of a name)"
        ))),
    }
}

/// `pattern` spelled one way, meaning what it meant ([`parse_pattern`]'s reading): letters
/// outside double quotes folded to lower case, as PostgreSQL folds unquoted names; a quoted
/// part written without its quotes when they change nothing (only lower-case letters, digits,
/// `_` and `$`: `"items"` is `items`); every other quoted part kept quoted, as it is. A pattern
/// that cannot be read is returned as it is (the selection refuses it anyway).
pub fn canonical_pattern(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '"' {
            out.push(c.to_ascii_lowercase());
            continue;
        }
        // A quoted part, `""` standing for one `"`.
        let mut quoted = String::new();
        loop {
            match chars.next() {
                Some('"') if chars.peek() == Some(&'"') => {
                    chars.next();
                    quoted.push('"');
                }
                Some('"') => break,
                Some(c) => quoted.push(c),
                None => return pattern.to_owned(),
            }
        }
        let plain = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$';
        if !quoted.is_empty() && quoted.chars().all(plain) {
            out.push_str(&quoted);
        } else {
            out.push('"');
            out.push_str(&quoted.replace('"', "\"\""));
            out.push('"');
        }
    }
    out
}

/// A schema pattern (`--schema`): one part, the schema's name.
///
/// # Errors
/// As [`parse_pattern`], or a dot outside quotes.
pub fn parse_schema_pattern(pattern: &str) -> Result<String, PatternError> {
    match parse_pattern(pattern)? {
        NamePattern {
            schema: None, name, ..
        } => Ok(name),
        _ => Err(PatternError(format!(
            "schema pattern {pattern:?} has a dot: quote a dot that is part of a name"
        ))),
    }
}

/// What the user asked to copy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Tables named exactly (`TABLE` arguments).
    pub tables: Vec<TableName>,
    /// `--schema` patterns.
    pub schemas: Vec<String>,
    /// `--table` patterns.
    pub include: Vec<String>,
    /// `--exclude-table` patterns.
    pub exclude: Vec<String>,
}

impl Selection {
    /// The selection as a state file records it: its parts in one order whatever order they
    /// were given in, and each pattern spelled one way whatever way it was given in
    /// ([`canonical_pattern`]: `--table BULK` and `--table bulk` select the same tables), so
    /// that a resume can tell it is the same selection.
    pub fn key(&self) -> String {
        self.key_with(canonical_pattern)
    }

    /// The key as copyman wrote it before patterns were spelled one way (each as given): a
    /// state file written then records this one.
    pub fn spelled_key(&self) -> String {
        self.key_with(str::to_owned)
    }

    /// Whether a state file's `selection` record (`recorded`) is this selection's: its
    /// [`key`](Self::key), or its [`spelled_key`](Self::spelled_key) in a file written before.
    pub fn is_recorded_as(&self, recorded: &str) -> bool {
        recorded == self.key() || recorded == self.spelled_key()
    }

    /// This selection as a state file's recorded one (`recorded`) with `--exclude-table`
    /// patterns added: that selection, and the patterns added (a resume that leaves out a table
    /// new on the source since, which the earlier run recorded nothing of). `None` when it is
    /// the recorded one, or differs otherwise.
    pub fn narrowing(&self, recorded: &str) -> Option<(Self, Vec<String>)> {
        // A pattern the record holds is kept (a part of the key, between spaces); a wrong
        // guess (a pattern with a space in it) keeps an added one, and the key then differs:
        // no narrowing, as for any other selection.
        let holds = |part: String| {
            recorded == part
                || recorded.starts_with(&format!("{part} "))
                || recorded.ends_with(&format!(" {part}"))
                || recorded.contains(&format!(" {part} "))
        };
        let (kept, added): (Vec<String>, Vec<String>) =
            self.exclude.iter().cloned().partition(|pattern| {
                [canonical_pattern(pattern), pattern.clone()]
                    .into_iter()
                    .any(|spelled| holds(format!("--exclude-table {spelled}")))
            });
        let recorded_selection = Self {
            exclude: kept,
            ..self.clone()
        };
        (!added.is_empty() && recorded_selection.is_recorded_as(recorded))
            .then_some((recorded_selection, added))
    }

    fn key_with(&self, spell: impl Fn(&str) -> String) -> String {
        let mut parts: Vec<String> = self.tables.iter().map(ToString::to_string).collect();
        parts.extend(
            self.schemas
                .iter()
                .map(|s| format!("--schema {}", spell(s))),
        );
        parts.extend(self.include.iter().map(|s| format!("--table {}", spell(s))));
        parts.extend(
            self.exclude
                .iter()
                .map(|s| format!("--exclude-table {}", spell(s))),
        );
        parts.sort_unstable();
        parts.dedup();
        parts.join(" ")
    }

    /// Whether it names exactly one table and nothing else: `copyman table`'s single-table copy.
    pub fn is_single_table(&self) -> bool {
        self.tables.len() == 1
            && self.schemas.is_empty()
            && self.include.is_empty()
            && self.exclude.is_empty()
    }
}

impl fmt::Display for Selection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut said = Vec::new();
        said.extend(self.tables.iter().map(ToString::to_string));
        said.extend(self.schemas.iter().map(|s| format!("--schema {s}")));
        said.extend(self.include.iter().map(|s| format!("--table {s}")));
        said.extend(self.exclude.iter().map(|s| format!("--exclude-table {s}")));
        if said.is_empty() {
            f.write_str("every table")
        } else {
            f.write_str(&said.join(" "))
        }
    }
}

fn matches(column: &str, re: &str) -> String {
    format!(
        "{column} OPERATOR(pg_catalog.~) {} COLLATE pg_catalog.default",
        literal(re)
    )
}

fn pattern_sql(p: &NamePattern) -> String {
    in_schema(&name_sql(p), p.schema.as_deref())
}

/// The condition on `c.relname` of a pattern's table part.
fn name_sql(p: &NamePattern) -> String {
    // As `name` (the catalog's index) and as text: a name longer than a `name` holds is cut to
    // 63 bytes by the cast, and would match the table named by its first 63.
    match &p.literal {
        Some(name) => format!(
            "c.relname = {0}::pg_catalog.name AND c.relname::pg_catalog.text = {0}",
            literal(name)
        ),
        None => matches("c.relname", &p.name),
    }
}

/// The catalog query that lists the tables a `--table` pattern without a schema part would
/// match in the schemas the source's search path does not make visible (`app.events` for
/// `events` where the path is `public`): the quoted schema and table, a row each, at most seven. A
/// pattern without a schema looks only on the search path, as pg_dump's `-t` does; these are
/// the tables such a pattern's user likely meant. `None` for a pattern with a schema part.
///
/// # Errors
/// A pattern that cannot be read.
pub fn off_path_query(pattern: &str) -> Result<Option<String>, PatternError> {
    let p = parse_pattern(pattern)?;
    if p.schema.is_some() {
        return Ok(None);
    }
    Ok(Some(format!(
        "SELECT pg_catalog.quote_ident(n.nspname), pg_catalog.quote_ident(c.relname) \
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('r', 'p') AND n.nspname <> 'information_schema' \
         AND n.nspname !~ '^pg_' AND NOT pg_catalog.pg_table_is_visible(c.oid) AND {} \
         ORDER BY 1, 2 LIMIT 7",
        name_sql(&p)
    )))
}

/// The catalog query that lists what a `--table` pattern matches that patterns never select —
/// views, materialized views, foreign tables — where it would look for tables: the quoted
/// schema and name, and the kind (`v`, `m`, `f`), a row each, at most seven. A pattern that
/// matched no table is said with them (jobs66 F7: `-t 'v_*'` said only "no table matches",
/// `-t v_orders` that it is a view).
///
/// # Errors
/// A pattern that cannot be read.
pub fn other_kinds_query(pattern: &str) -> Result<String, PatternError> {
    let p = parse_pattern(pattern)?;
    Ok(format!(
        "SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname), \
         c.relkind::text \
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('v', 'm', 'f') AND n.nspname <> 'information_schema' \
         AND n.nspname !~ '^pg_' AND {} ORDER BY 1 LIMIT 7",
        pattern_sql(&p)
    ))
}

/// `name` (a condition on `c.relname`) in the schemas `schema` matches, or in one the search
/// path makes visible.
fn in_schema(name: &str, schema: Option<&str>) -> String {
    match schema {
        Some(schema) => format!("({} AND {name})", matches("n.nspname", schema)),
        None => format!("({name} AND pg_catalog.pg_table_is_visible(c.oid))"),
    }
}

/// The conditions of `patterns`, any of which matches: the names without a wildcard in one list
/// per schema part (`c.relname = ANY (…)`, hashed by the server), the others one each.
fn patterns_sql(patterns: &[NamePattern]) -> Vec<String> {
    let mut lists: Vec<(Option<&str>, Vec<String>)> = Vec::new();
    let mut each = Vec::new();
    for p in patterns {
        let Some(name) = &p.literal else {
            each.push(pattern_sql(p));
            continue;
        };
        let schema = p.schema.as_deref();
        match lists.iter_mut().find(|(s, _)| *s == schema) {
            Some((_, names)) => names.push(literal(name)),
            None => lists.push((schema, vec![literal(name)])),
        }
    }
    for (schema, names) in lists {
        // As text too, as in `pattern_sql`.
        let any = format!(
            "c.relname = ANY (ARRAY[{0}]::pg_catalog.name[]) \
             AND c.relname::pg_catalog.text = ANY (ARRAY[{0}]::pg_catalog.text[])",
            names.join(", ")
        );
        each.push(in_schema(&any, schema));
    }
    each
}

/// The catalog query that says which of the selection's patterns match nothing on the source:
/// one row per such pattern, `--schema`, `--table` or `--exclude-table` and the pattern as
/// given (`None` when the selection has no pattern). A `--schema` pattern matches a schema, a
/// `--table` one an ordinary or partitioned table outside the system schemas (as the selection
/// takes them), an `--exclude-table` one any relation. An exclusion that matches nothing leaves
/// in what it was meant to leave out (a misspelt name, under `--truncate` a destination's table
/// emptied): the plan says so, as pg_dump's `--strict-names` would for its inclusions.
///
/// # Errors
/// A pattern that cannot be read.
pub fn unmatched_query(selection: &Selection) -> Result<Option<String>, PatternError> {
    let from = "FROM pg_catalog.pg_class c \
                JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE";
    let mut checks = Vec::new();
    for schema in &selection.schemas {
        let re = matches("n.nspname", &parse_schema_pattern(schema)?);
        checks.push((
            "--schema",
            schema,
            format!("FROM pg_catalog.pg_namespace n WHERE {re}"),
        ));
    }
    for pattern in &selection.include {
        let re = pattern_sql(&parse_pattern(pattern)?);
        checks.push((
            "--table",
            pattern,
            format!(
                "{from} c.relkind IN ('r', 'p') AND n.nspname <> 'information_schema' \
                 AND n.nspname !~ '^pg_' AND {re}"
            ),
        ));
    }
    for pattern in &selection.exclude {
        let re = pattern_sql(&parse_pattern(pattern)?);
        checks.push(("--exclude-table", pattern, format!("{from} {re}")));
    }
    if checks.is_empty() {
        return Ok(None);
    }
    let checks: Vec<String> = checks
        .into_iter()
        .map(|(flag, pattern, query)| {
            format!(
                "SELECT {}, {} WHERE NOT EXISTS (SELECT {query})",
                literal(flag),
                literal(pattern)
            )
        })
        .collect();
    Ok(Some(checks.join(" UNION ALL ")))
}

/// The catalog query that lists, on the source, what a job over whole schemas leaves behind
/// that pg_dump's data would bring: each materialized view of the `--schema`s (or, selecting
/// by default, of every schema outside the system's), and each sequence there that no column
/// owns (a serial's or an identity's goes with its table): rows `schema`, `name`, `relkind`
/// (`m` or `S`), and for a sequence each table whose column default takes its values from it
/// (its `schema` and `name`, a row each; null for none): a job that copies that table carries
/// it. `--exclude-table` leaves them out as it leaves out tables; what belongs to an extension
/// is not listed. `None` for a selection by names or `--table` patterns only.
///
/// # Errors
/// A pattern that cannot be read.
pub fn uncopied_query(selection: &Selection) -> Result<Option<String>, PatternError> {
    let scope = if !selection.schemas.is_empty() {
        let mut each = Vec::new();
        for schema in &selection.schemas {
            each.push(matches("n.nspname", &parse_schema_pattern(schema)?));
        }
        each.join(" OR ")
    } else if selection.tables.is_empty() && selection.include.is_empty() {
        "true".to_owned()
    } else {
        return Ok(None);
    };
    let exclude: Vec<NamePattern> = (selection.exclude.iter())
        .map(|p| parse_pattern(p))
        .collect::<Result<_, _>>()?;
    let exclude = patterns_sql(&exclude);
    let excluded = if exclude.is_empty() {
        "false".to_owned()
    } else {
        exclude.join(" OR ")
    };
    Ok(Some(format!(
        "SELECT n.nspname::text, c.relname::text, c.relkind::text, un.nspname::text, \
             u.relname::text \
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         LEFT JOIN pg_catalog.pg_depend d ON c.relkind = 'S' \
           AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid = c.oid \
           AND d.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass \
         LEFT JOIN pg_catalog.pg_attrdef ad ON ad.oid = d.objid \
         LEFT JOIN pg_catalog.pg_class u ON u.oid = ad.adrelid \
         LEFT JOIN pg_catalog.pg_namespace un ON un.oid = u.relnamespace \
         WHERE c.relkind IN ('m', 'S') AND n.nspname <> 'information_schema' \
           AND n.nspname !~ '^pg_' AND ({scope}) AND NOT ({excluded}) \
           AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend e \
             WHERE e.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND e.objid = c.oid \
               AND (e.deptype = 'e' OR (c.relkind = 'S' AND e.deptype IN ('a', 'i') \
                 AND e.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass))) \
         ORDER BY 3, 1, 2"
    )))
}

/// The SQL conditions a selection is made of, on `pg_class c` joined with its `pg_namespace n`.
struct Scope {
    /// A table named (`TABLE` arguments).
    named: String,
    /// Matched by a `--schema` or a `--table` pattern (or, with neither and no name, every
    /// table).
    by_pattern: String,
    /// Matched by an `--exclude-table` pattern.
    excluded: String,
    /// Whether there is an `--exclude-table` pattern.
    excludes: bool,
}

impl Scope {
    fn of(selection: &Selection) -> Result<Self, PatternError> {
        let mut include = Vec::new();
        for schema in &selection.schemas {
            include.push(matches("n.nspname", &parse_schema_pattern(schema)?));
        }
        let parse_all = |patterns: &[String]| -> Result<Vec<NamePattern>, PatternError> {
            patterns.iter().map(|p| parse_pattern(p)).collect()
        };
        include.extend(patterns_sql(&parse_all(&selection.include)?));
        let exclude = patterns_sql(&parse_all(&selection.exclude)?);
        let by_pattern = if include.is_empty() && !selection.tables.is_empty() {
            "false".to_owned()
        } else if include.is_empty() {
            "true".to_owned()
        } else {
            include.join(" OR ")
        };
        let named = if selection.tables.is_empty() {
            "false".to_owned()
        } else {
            let list: Vec<String> = selection
                .tables
                .iter()
                .map(|t| format!("{}::pg_catalog.regclass", t.regclass_literal()))
                .collect();
            format!("c.oid IN ({})", list.join(", "))
        };
        let excluded = if exclude.is_empty() {
            "false".to_owned()
        } else {
            exclude.join(" OR ")
        };
        Ok(Self {
            named,
            by_pattern,
            excluded,
            excludes: !exclude.is_empty(),
        })
    }

    /// A table a pattern or a schema (or the default) takes: ordinary or partitioned, outside
    /// the system schemas and extensions.
    fn taken(&self) -> String {
        format!(
            "c.relkind IN ('r', 'p') AND n.nspname <> 'information_schema' \
             AND n.nspname !~ '^pg_' AND ({}) \
             AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend e \
               WHERE e.classid = 'pg_catalog.pg_class'::pg_catalog.regclass \
                 AND e.objid = c.oid AND e.deptype = 'e')",
            self.by_pattern
        )
    }
}

/// The catalog query that lists, on the source, what the `--exclude-table` patterns leave out
/// beyond the tables they match (pg_dump's `-T` leaves out those alone): each partition a
/// pattern, a schema or the default took whose partitioned ancestor an `--exclude-table`
/// pattern matches, and which is not named itself: rows `schema`, `name`, and the ancestor's
/// `schema`, `name` (the topmost excluded). Its rows go with that table's, left out — said, or
/// a job over a schema loses them without a word. `None` without exclusions.
///
/// # Errors
/// A pattern that cannot be read.
pub fn left_out_with_query(selection: &Selection) -> Result<Option<String>, PatternError> {
    let scope = Scope::of(selection)?;
    if !scope.excludes {
        return Ok(None);
    }
    let (named, excluded, taken) = (&scope.named, &scope.excluded, scope.taken());
    Ok(Some(format!(
        "WITH ex AS (SELECT c.oid, n.nspname, c.relname \
           FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
           WHERE c.relkind = 'p' AND ({excluded})) \
         SELECT DISTINCT ON (n.nspname, c.relname) n.nspname::text, c.relname::text, \
             ex.nspname::text, ex.relname::text \
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         CROSS JOIN LATERAL pg_catalog.pg_partition_ancestors(c.oid) WITH ORDINALITY AS a(relid, depth) \
         JOIN ex ON ex.oid = a.relid \
         WHERE c.relispartition AND a.relid <> c.oid AND {taken} \
           AND NOT ({excluded}) AND NOT ({named}) \
         ORDER BY n.nspname, c.relname, a.depth DESC"
    )))
}

/// The catalog query that lists each `--exclude-table` pattern that matches relations on the
/// source but none in the selection's scope (a name, a pattern, a schema — a materialized
/// view or a sequence there too, whose note it leaves out: an unqualified `t1` matching
/// `public.t1` beside `--schema sales` does not), with up to three of those it matches: rows
/// `pattern`, `names` (comma-separated, quoted). Such an exclusion leaves out nothing
/// it was meant to (a pattern matching no relation at all is [`unmatched_query`]'s). A pattern
/// matching a partition is left out of it (a partition's rows may come with its ancestor's,
/// said otherwise). `None` without exclusions.
///
/// # Errors
/// A pattern that cannot be read.
pub fn idle_exclusions_query(selection: &Selection) -> Result<Option<String>, PatternError> {
    let scope = Scope::of(selection)?;
    if !scope.excludes {
        return Ok(None);
    }
    // Any relation in the selection's scope, of any kind: an exclusion of a schema's
    // materialized view or sequence leaves out its note.
    let (named, by_pattern) = (&scope.named, &scope.by_pattern);
    let taken =
        format!("n.nspname <> 'information_schema' AND n.nspname !~ '^pg_' AND ({by_pattern})");
    let from = "FROM pg_catalog.pg_class c \
                JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE";
    let mut checks = Vec::new();
    for pattern in &selection.exclude {
        let re = pattern_sql(&parse_pattern(pattern)?);
        checks.push(format!(
            "SELECT {}, (SELECT pg_catalog.string_agg(x.name, ', ') FROM (SELECT \
                 pg_catalog.chr(34) || pg_catalog.replace(n.nspname, pg_catalog.chr(34), \
                   pg_catalog.repeat(pg_catalog.chr(34), 2)) || pg_catalog.chr(34) || '.' || \
                 pg_catalog.chr(34) || pg_catalog.replace(c.relname, pg_catalog.chr(34), \
                   pg_catalog.repeat(pg_catalog.chr(34), 2)) || pg_catalog.chr(34) \
                 AS name {from} {re} ORDER BY 1 LIMIT 3) x) \
             WHERE EXISTS (SELECT {from} {re}) \
               AND NOT EXISTS (SELECT {from} ({re}) AND (c.relispartition OR {named} OR ({taken})))",
            literal(pattern)
        ));
    }
    Ok(Some(checks.join(" UNION ALL ")))
}

/// The catalog query that lists, for the partitioned tables `partitioned` a job over
/// `--schema`s copies (whole), each of their partitions in a schema no `--schema` pattern
/// matches: rows `table` (as given), `schema`, `name`. pg_dump's `-n` copies a partition's rows
/// with its own schema; a job copies them with the partitioned table's, which two jobs split by
/// schema would copy twice: said. `None` without `--schema` or such tables.
///
/// # Errors
/// A pattern that cannot be read.
pub fn outside_schemas_query(
    selection: &Selection,
    partitioned: &[TableName],
) -> Result<Option<String>, PatternError> {
    if selection.schemas.is_empty() || partitioned.is_empty() {
        return Ok(None);
    }
    let mut schemas = Vec::new();
    for schema in &selection.schemas {
        schemas.push(matches("n.nspname", &parse_schema_pattern(schema)?));
    }
    let each: Vec<String> = (partitioned.iter())
        .map(|t| {
            let name = t.regclass_literal();
            format!(
                "SELECT {}, n.nspname::text, c.relname::text \
                 FROM pg_catalog.pg_partition_tree({name}::pg_catalog.regclass) t \
                 JOIN pg_catalog.pg_class c ON c.oid = t.relid \
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                 WHERE t.level > 0 AND NOT ({})",
                literal(&t.to_string()),
                schemas.join(" OR ")
            )
        })
        .collect();
    Ok(Some(each.join(" UNION ALL ")))
}

/// The catalog query that lists the selection on the source: one row per table, `schema`,
/// `name`, `relkind`, its heap's size in bytes (`pg_relation_size`, summed over a partitioned
/// table's partitions), … and its size with its TOAST (`pg_table_size`, likewise), largest
/// first by that.
///
/// # Errors
/// A pattern that cannot be read.
pub fn selection_query(selection: &Selection) -> Result<String, PatternError> {
    let scope = Scope::of(selection)?;
    let (named, excluded, taken) = (&scope.named, &scope.excluded, scope.taken());
    let exclude = scope.excludes;
    // A partition under a partitioned table that `--exclude-table` leaves out (`ex`).
    let under_excluded = if !exclude {
        "false"
    } else {
        "c.relispartition AND EXISTS (SELECT FROM pg_catalog.pg_partition_ancestors(c.oid) a \
           WHERE a.relid <> c.oid AND a.relid IN (SELECT oid FROM ex))"
    };
    // The rule, once: a name, a pattern or a schema selects a partition as any table (`sel`,
    // `named`: by its name), except that a pattern or a schema leaves out one whose partitioned
    // ancestor `--exclude-table` leaves out (its rows go with it). A partition whose partitioned
    // ancestor (at any depth) is in `sel` comes out with that ancestor (the topmost one
    // selected), so that it is copied once, through it; one that was named is listed so (the
    // plan says so), one that a pattern, a schema or the default matched is not (that would be
    // a note for each partition of every partitioned table `--schema` takes). A partition whose
    // ancestors are all left out is copied by itself. A table that belongs to an extension is
    // selected only by its name, as pg_dump leaves it to `CREATE EXTENSION` (its rows copied
    // into the one the extension made there were stored twice, or failed the job). `readable`: whether the role may `SELECT`
    // every column it copies (a table-wide grant, or one per column: generated columns, never
    // copied, need none) in a schema it may use. Last, whether row security applies to the role
    // there ([`RowSecurity`]). Each partition's topmost selected ancestor (`top`) is found for
    // every partition at once, by one join of their ancestors with `sel`: asked per partition, it
    // scanned `sel` once each, quadratic (12 s for 8 000 tables and 8 000 partitions).
    let row_security = row_security_sql("l.oid");
    Ok(format!(
        "WITH ex AS (SELECT c.oid \
           FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
           WHERE c.relkind = 'p' AND ({excluded})), \
         sel AS (SELECT c.oid, c.relnamespace, n.nspname, c.relname, c.relkind, \
             ({named}) AS named, c.relispartition \
           FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
           WHERE ({named} OR ({taken} AND NOT ({under_excluded}))) AND NOT ({excluded})), \
         listed AS (SELECT sel.*, false AS excluded FROM sel UNION ALL \
           SELECT c.oid, c.relnamespace, n.nspname, c.relname, c.relkind, false, true, true \
           FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
           WHERE c.relispartition AND ({excluded}) AND c.oid NOT IN (SELECT oid FROM sel)), \
         top AS (SELECT DISTINCT ON (a.part) a.part, up.nspname, up.relname \
           FROM (SELECT l.oid AS part, x.relid, x.depth FROM listed l \
             CROSS JOIN LATERAL pg_catalog.pg_partition_ancestors(l.oid) \
               WITH ORDINALITY AS x(relid, depth) \
             WHERE l.relispartition AND x.relid <> l.oid) a \
           JOIN sel up ON up.oid = a.relid \
           ORDER BY a.part, a.depth DESC) \
         SELECT l.nspname::text, l.relname::text, l.relkind::text, s.bytes::text, \
             w.nspname::text, w.relname::text, \
             (pg_catalog.has_schema_privilege(l.relnamespace, 'USAGE') \
              AND (pg_catalog.has_table_privilege(l.oid, 'SELECT') \
                OR NOT EXISTS (SELECT FROM pg_catalog.pg_attribute a WHERE a.attrelid = l.oid \
                  AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '' \
                  AND NOT pg_catalog.has_column_privilege(l.oid, a.attnum, 'SELECT'))))::text, \
             l.excluded::text, {row_security}, s.total::text \
         FROM listed l \
         CROSS JOIN LATERAL (SELECT CASE WHEN l.relkind = 'p' THEN \
             (SELECT coalesce(sum(pg_catalog.pg_relation_size(t.relid)), 0) \
                FROM pg_catalog.pg_partition_tree(l.oid) t) \
             ELSE pg_catalog.pg_relation_size(l.oid) END::int8 AS bytes, \
           CASE WHEN l.relkind = 'p' THEN \
             (SELECT coalesce(sum(pg_catalog.pg_table_size(t.relid)), 0) \
                FROM pg_catalog.pg_partition_tree(l.oid) t) \
             ELSE pg_catalog.pg_table_size(l.oid) END::int8 AS total) s \
         LEFT JOIN top w ON w.part = l.oid \
         WHERE CASE WHEN w.relname IS NULL THEN NOT l.excluded \
             ELSE l.named OR l.excluded END \
         ORDER BY s.total DESC, 1, 2"
    ))
}

/// A selected table, as the source's catalog lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected {
    /// Its name, schema-qualified.
    pub table: TableName,
    /// `pg_class.relkind`.
    pub kind: String,
    /// Its heap's size on disk in bytes (its partitions' for a partitioned table; 0 for a
    /// view): what its ranges split (`--split-larger-than`).
    pub size: u64,
    /// Its size with its TOAST (`pg_table_size`: a table of large values holds most of its
    /// data there, 160 MB behind a 1.5 MB heap): what its copy reads, its weight in the job's
    /// progress and its place in the job's order (largest first).
    pub bytes: u64,
    /// A partition whose partitioned ancestor is selected too: that ancestor (the topmost
    /// selected), through which its rows are copied. It is not copied by itself.
    pub within: Option<TableName>,
    /// Whether the source's role may read it (`SELECT` on the table or on every column, `USAGE`
    /// on its schema).
    pub readable: bool,
    /// A partition that matches an `--exclude-table` pattern whose partitioned ancestor
    /// ([`Self::within`]) is selected: its rows are copied with that table's all the same (a
    /// partitioned table is copied whole), which the plan says.
    pub excluded: bool,
    /// Whether row-level security applies to the source's role on it.
    pub row_security: RowSecurity,
}

/// Whether row-level security applies to the source's role on a table: it has policies
/// enabled, and the role neither owns it (or the table forces them on its owner too) nor has
/// `BYPASSRLS` (`row_security_active`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowSecurity {
    /// It does not: every row is read.
    None,
    /// It does, and the session's `row_security` is off (copyman's default, as pg_dump's): the
    /// COPY fails (42501) rather than read a subset.
    Refused,
    /// It does, with `row_security` on (the CONN's choice): only the rows the policies show the
    /// role are read.
    Filtered,
}

impl RowSecurity {
    /// Reads the answer of [`row_security_sql`] (unknown: none, the COPY then says what the
    /// server says).
    pub fn from_answer(answer: Option<&str>) -> Self {
        match answer {
            Some("refused") => Self::Refused,
            Some("filtered") => Self::Filtered,
            _ => Self::None,
        }
    }

    /// What a plan says of `tables` that row security refuses (one table or a job's): which,
    /// why, and the ways out.
    pub fn refusal(tables: &[String]) -> String {
        format!(
            "row-level security applies to the source's role on {}: its policies decide which \
             rows the role sees, and copyman reads with row_security off, as pg_dump does, so \
             the COPY would fail rather than copy only those: copy as a role with BYPASSRLS (or \
             the table's owner, unless the table forces row security on it), or give the source \
             CONN options='-c row_security=on' to copy the rows the policies show (they then run \
             with an empty search_path), or leave {} out",
            tables.join(", "),
            if tables.len() == 1 { "it" } else { "them" },
        )
    }

    /// What a plan says of a `table` whose rows the policies filter.
    pub fn filtered_note(table: &str) -> String {
        format!(
            "{table}: row-level security applies to the source's role (row_security is on in \
             its CONN): only the rows its policies show are copied"
        )
    }
}

/// SQL: the [`RowSecurity`] of the relation `oid` (an SQL expression) for the session, as
/// `none`, `refused` or `filtered` (`row_security_active`, PostgreSQL 9.5, says whether policies
/// apply to the role, whatever `row_security` is).
pub fn row_security_sql(oid: &str) -> String {
    format!(
        "CASE WHEN NOT pg_catalog.row_security_active({oid}) THEN 'none' \
              WHEN pg_catalog.current_setting('row_security') = 'off' THEN 'refused' \
              ELSE 'filtered' END"
    )
}

/// Reads the rows of [`selection_query`].
///
/// # Errors
/// A row that is not one.
pub fn read_selection(rows: &[Vec<Option<String>>]) -> Result<Vec<Selected>, String> {
    rows.iter()
        .map(|row| {
            let field = |i: usize| row.get(i).cloned().flatten();
            let (Some(schema), Some(name), Some(kind)) = (field(0), field(1), field(2)) else {
                return Err("the catalog gave a table without a name".to_owned());
            };
            Ok(Selected {
                table: TableName::from_parts(Some(schema), name),
                kind,
                size: field(3).and_then(|s| s.parse().ok()).unwrap_or(0),
                bytes: field(9)
                    .or(field(3))
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0),
                within: field(4)
                    .zip(field(5))
                    .map(|(schema, name)| TableName::from_parts(Some(schema), name)),
                // Unknown counts as readable: the copy then says what the server says.
                readable: field(6).is_none_or(|r| r != "false"),
                excluded: field(7).is_some_and(|e| e == "true"),
                row_security: RowSecurity::from_answer(field(8).as_deref()),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_selection_narrowed_by_exclusions_is_told_from_another() {
        let recorded = Selection {
            schemas: vec!["app".into()],
            exclude: vec!["app.log*".into()],
            ..Selection::default()
        };
        let key = recorded.key();
        let narrowed = Selection {
            exclude: vec!["APP.LOG*".into(), "app.scratch".into(), "app.tmp".into()],
            ..recorded.clone()
        };
        let (base, added) = narrowed.narrowing(&key).expect("a narrowing");
        assert!(base.is_recorded_as(&key));
        assert_eq!(added, ["app.scratch", "app.tmp"]);
        // The recorded selection itself, another schema, or an exclusion taken away: none.
        assert_eq!(recorded.narrowing(&key), None);
        let other = Selection {
            schemas: vec!["web".into()],
            ..narrowed.clone()
        };
        assert_eq!(other.narrowing(&key), None);
        let fewer = Selection {
            exclude: vec!["app.scratch".into()],
            ..recorded.clone()
        };
        assert_eq!(fewer.narrowing(&key), None);
        // A prefix of a recorded pattern is an added one.
        let prefix = Selection {
            exclude: vec!["app.log*".into(), "app.lo".into()],
            ..recorded
        };
        assert_eq!(
            prefix.narrowing(&key).map(|n| n.1),
            Some(vec!["app.lo".into()])
        );
    }

    #[test]
    fn a_pattern_is_spelled_one_way_meaning_what_it_meant() {
        for (given, canonical) in [
            ("BULK", "bulk"),
            ("\"bulk\"", "bulk"),
            ("App.\"Items\"", "app.\"Items\""),
            ("\"a.b\"", "\"a.b\""),
            ("\"x*\"", "\"x*\""),
            ("\"say \"\"hi\"\"\"", "\"say \"\"hi\"\"\""),
            ("T_*", "t_*"),
            ("\"open", "\"open"),
        ] {
            assert_eq!(canonical_pattern(given), canonical, "{given}");
            // The same meaning: the same regular expressions.
            if let Ok(p) = parse_pattern(given) {
                assert_eq!(parse_pattern(canonical).unwrap(), p, "{given}");
            }
        }
        let upper = Selection {
            include: vec!["BULK".into()],
            ..Selection::default()
        };
        let lower = Selection {
            include: vec!["bulk".into()],
            ..Selection::default()
        };
        assert_eq!(upper.key(), lower.key());
        assert_eq!(
            lower.key(),
            lower.spelled_key(),
            "unchanged for a lower-case pattern"
        );
        assert!(
            upper.is_recorded_as("--table BULK"),
            "a file written before"
        );
        assert!(upper.is_recorded_as("--table bulk"));
        assert!(!upper.is_recorded_as("--table bulks"));
    }

    fn p(text: &str) -> (Option<String>, String) {
        let p = parse_pattern(text).unwrap();
        (p.schema, p.name)
    }

    #[test]
    fn patterns_read_as_pg_dump_reads_them() {
        assert_eq!(p("Items"), (None, "^(items)$".into()));
        assert_eq!(p("app.ord*"), (Some("^(app)$".into()), "^(ord.*)$".into()));
        assert_eq!(p("t?"), (None, "^(t.)$".into()));
        assert_eq!(p("*.*"), (Some("^(.*)$".into()), "^(.*)$".into()));
        // Quoted: case kept, wildcards and dots literal, "" is one quote.
        assert_eq!(
            p(r#""My Schema"."A*b.c""#),
            (Some("^(My Schema)$".into()), r"^(A\*b\.c)$".into())
        );
        assert_eq!(p(r#""say ""hi""""#), (None, r#"^(say "hi")$"#.into()));
        // Mixed quoting within one part.
        assert_eq!(p(r#"Pre"FIX"*"#), (None, "^(preFIX.*)$".into()));
        // $ always literal; regex characters pass through outside quotes.
        assert_eq!(p("a$b"), (None, r"^(a\$b)$".into()));
        assert_eq!(p("(a|b)x"), (None, "^((a|b)x)$".into()));
        assert_eq!(p(r#""(a|b)""#), (None, r"^(\(a\|b\))$".into()));
        // A `U&"…"` part as copyman writes a name with a control character: the name it spells
        // (recheck43 F1), a quote it spells or doubles a quote still.
        let literal = |text: &str| parse_pattern(text).unwrap().literal;
        assert_eq!(literal(r#"w.U&"new\000aline""#), Some("new\nline".into()));
        assert_eq!(literal(r#"u&"a\0022b""c""#), Some(r#"a"b"c"#.into()));
        assert_eq!(p(r#"U&"x*\0009""#), (None, "^(x\\*\t)$".into()));
        assert!(parse_pattern(r#"U&"\zz""#).is_err());
        // No name holds a NUL: a usage error, not the source's (recheck43b F3).
        assert!(parse_pattern(r#"U&"a\0000b""#).is_err());
    }

    #[test]
    fn a_name_without_a_wildcard_is_matched_as_itself() {
        let literal = |text: &str| parse_pattern(text).unwrap().literal;
        assert_eq!(literal("Items"), Some("items".into()));
        assert_eq!(
            literal("s*.T1"),
            Some("t1".into()),
            "the schema part may have one"
        );
        assert_eq!(
            literal(r#""A*b.c""#),
            Some("A*b.c".into()),
            "quoted: literal"
        );
        assert_eq!(literal(r#""say ""hi""""#), Some(r#"say "hi""#.into()));
        assert_eq!(literal("a$b"), Some("a$b".into()));
        assert_eq!(
            literal("x[]"),
            Some("x[]".into()),
            "pg_dump's `int[]` escape"
        );
        assert_eq!(p("x[]"), (None, r"^(x\[])$".into()));
        for wild in ["t?", "ord*", "(a|b)x", "a+", "x[12]", "app.ord*"] {
            assert_eq!(literal(wild), None, "{wild}");
        }
    }

    #[test]
    fn bad_patterns_are_refused() {
        for bad in ["", "a.b.c", r#""open"#, "a.", ".a"] {
            assert!(parse_pattern(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse_schema_pattern("a.b").is_err());
        assert_eq!(parse_schema_pattern("App").unwrap(), "^(app)$");
    }

    #[test]
    fn the_query_combines_names_patterns_schemas_and_exclusions() {
        let everything = selection_query(&Selection::default()).unwrap();
        assert!(everything.contains("AND (true)"), "{everything}");
        assert!(everything.contains("AND NOT (false)"), "{everything}");
        assert!(everything.contains("AND NOT (false)"));
        let named = Selection {
            tables: vec![TableName::parse("app.v").unwrap()],
            ..Selection::default()
        };
        let q = selection_query(&named).unwrap();
        assert!(
            q.contains(r#"c.oid IN ('"app"."v"'::pg_catalog.regclass)"#),
            "{q}"
        );
        assert!(
            q.contains("AND (false)"),
            "a name alone selects no more: {q}"
        );
        let mixed = Selection {
            tables: Vec::new(),
            schemas: vec!["sales".into()],
            include: vec!["public.t*".into()],
            exclude: vec!["t_old".into()],
        };
        let q = selection_query(&mixed).unwrap();
        assert!(
            q.contains(
                "n.nspname OPERATOR(pg_catalog.~) '^(sales)$' COLLATE pg_catalog.default OR \
                 (n.nspname OPERATOR(pg_catalog.~) '^(public)$'"
            ),
            "{q}"
        );
        assert!(
            q.contains(
                "NOT ((c.relname = ANY (ARRAY['t_old']::pg_catalog.name[]) \
                 AND c.relname::pg_catalog.text = ANY (ARRAY['t_old']::pg_catalog.text[]) \
                 AND pg_catalog.pg_table_is_visible(c.oid)))"
            ),
            "{q}"
        );
        // Names without a wildcard are one list per schema part; the others one each.
        let q = selection_query(&Selection {
            exclude: vec!["s*.t1".into(), "s*.T2".into(), "t3".into(), "s*.t4?".into()],
            ..Selection::default()
        })
        .unwrap();
        assert!(
            q.contains(
                "(n.nspname OPERATOR(pg_catalog.~) '^(s.*)$' COLLATE pg_catalog.default AND \
                 c.relname = ANY (ARRAY['t1', 't2']::pg_catalog.name[]) AND c.relname::pg_catalog.text \
                 = ANY (ARRAY['t1', 't2']::pg_catalog.text[]))"
            ) && q.contains("c.relname = ANY (ARRAY['t3']::pg_catalog.name[]) AND c.relname")
                && q.contains("c.relname OPERATOR(pg_catalog.~) '^(t4.)$'"),
            "{q}"
        );
        // Quotes in a pattern cannot break out of the literal.
        let q = selection_query(&Selection {
            include: vec![r#""x'; DROP""#.into()],
            ..Selection::default()
        })
        .unwrap();
        assert!(q.contains(r"ARRAY['x''; DROP']"), "{q}");
    }

    #[test]
    fn rows_become_tables() {
        let rows = vec![vec![
            Some("Odd Schema".into()),
            Some("t".into()),
            Some("p".into()),
            Some("8192".into()),
        ]];
        let read = read_selection(&rows).unwrap();
        assert_eq!(read[0].table.to_string(), r#""Odd Schema"."t""#);
        assert_eq!(read[0].size, 8192);
        assert_eq!(read[0].kind, "p");
        assert_eq!(read[0].within, None);
        assert!(read[0].readable);
        assert!(Selection::default().to_string() == "every table");
        // A partition under a selected ancestor, and a table the role may not read.
        let rows = vec![vec![
            Some("public".into()),
            Some("parts_1".into()),
            Some("r".into()),
            Some("0".into()),
            Some("public".into()),
            Some("parts".into()),
            Some("false".into()),
        ]];
        let read = read_selection(&rows).unwrap();
        assert_eq!(
            read[0].within.as_ref().map(ToString::to_string).as_deref(),
            Some(r#""public"."parts""#)
        );
        assert!(!read[0].readable);
    }
}
