//! SQL text copyman builds: identifiers and literals are always quoted, never pasted.
//!
//! Table and column names come from the command line in SQL syntax (`app.items`,
//! `"My Schema"."Odd ""Name"""`), are parsed into their parts exactly as PostgreSQL reads them
//! (unquoted parts fold to lower case, quoted parts keep case and `""`), and are written back
//! always double-quoted. The only user text that goes into a statement unparsed is `--where`,
//! which is SQL by definition; it is checked to stay inside its parentheses; and the table a
//! user's own `COPY` statement names, which the server is given to read as that statement spells
//! it ([`relation_oid_query`]) on the session that runs the statement.

use std::fmt;

use copyman_core::statement;

/// A name given on the command line could not be read as SQL identifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameError(String);

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NameError {}

/// One SQL identifier, as the server stores it (already case-folded, unquoted).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ident(String);

impl Ident {
    /// An identifier exactly as the catalog holds it (no folding, no quotes to remove).
    pub fn new(name: impl Into<String>) -> Self {
        Self(name.into())
    }

    /// The identifier as the catalog holds it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Ident {
    /// Always double-quoted, `"` doubled, in Unicode escapes where it holds a control character
    /// ([`statement::quoted_identifier`]): safe for any name, in SQL and on a terminal.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&statement::quoted_identifier(&self.0))
    }
}

/// A table name, optionally schema-qualified.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableName {
    /// The schema, if given.
    pub schema: Option<Ident>,
    /// The table.
    pub name: Ident,
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
    /// The name as a `regclass` input (`to_regclass`, `::regclass`) reads it, as an SQL string
    /// literal: each part double-quoted, control characters as they are — the Unicode escapes
    /// of its [`Display`](fmt::Display) form are SQL syntax, which a `regclass` input does not read.
    pub fn regclass_literal(&self) -> String {
        let part = |ident: &Ident| format!("\"{}\"", ident.0.replace('"', "\"\""));
        literal(&match &self.schema {
            Some(schema) => format!("{}.{}", part(schema), part(&self.name)),
            None => part(&self.name),
        })
    }

    /// A name from its parts as the catalog holds them.
    pub fn from_parts(schema: Option<String>, name: String) -> Self {
        Self {
            schema: schema.map(Ident),
            name: Ident(name),
        }
    }

    /// Parses `table`, `schema.table`, with quoted parts where needed.
    pub fn parse(text: &str) -> Result<Self, NameError> {
        let mut parser = Parser::new(text);
        let mut parts = vec![parser.ident()?];
        while parser.eat('.') {
            parts.push(parser.ident()?);
        }
        parser.end('.')?;
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
pub fn parse_columns(text: &str) -> Result<Vec<Ident>, NameError> {
    let mut parser = Parser::new(text);
    let mut columns = vec![parser.ident()?];
    while parser.eat(',') {
        let column = parser.ident()?;
        // As the server refuses it (42701), but before anything is sent.
        if columns.contains(&column) {
            return Err(NameError(format!(
                "column {column} is named twice in {text:?}"
            )));
        }
        columns.push(column);
    }
    parser.end(',')?;
    Ok(columns)
}

/// The longest name PostgreSQL keeps, in bytes (`NAMEDATALEN` - 1): its scanner cuts a longer
/// one there, at a character's boundary, with a NOTICE.
const NAME_LIMIT: usize = 63;

/// PostgreSQL's NOTICE for each name in `text` (a table name `schema.table`, or a column list
/// `a, b`) longer than it keeps: `identifier "…" will be truncated to "…"` — the name the
/// server (and copyman, reading it as the server does) takes. Empty when none is, or `text`
/// cannot be read.
///
/// ```
/// use copyman_job::sql::truncated_names;
///
/// let long = "t".repeat(70);
/// assert_eq!(
///     truncated_names(&format!("public.{long}")),
///     [format!("identifier \"{long}\" will be truncated to \"{}\"", "t".repeat(63))]
/// );
/// assert!(truncated_names("public.t").is_empty());
/// ```
pub fn truncated_names(text: &str) -> Vec<String> {
    let mut parser = Parser::new(text);
    while parser.ident().is_ok() && (parser.eat('.') || parser.eat(',')) {}
    parser.truncated
}

/// Reads identifiers as PostgreSQL's scanner does.
struct Parser<'a> {
    text: &'a str,
    pos: usize,
    /// The NOTICE for each name cut to [`NAME_LIMIT`] bytes.
    truncated: Vec<String>,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            text,
            pos: 0,
            truncated: Vec::new(),
        }
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

    /// Nothing left but white space; else an error, which for a word after a word (a name
    /// holding a space, unquoted) shows the `parts`-separated parts quoted (types62 F5).
    fn end(&mut self, parts: char) -> Result<(), NameError> {
        self.skip_ws();
        let Some(c) = self.rest().chars().next() else {
            return Ok(());
        };
        let after_space = self.text[..self.pos].ends_with(char::is_whitespace);
        let hint = if after_space && (c.is_alphabetic() || c == '_') && !self.text.contains('"') {
            let quoted: Vec<String> = (self.text.split(parts))
                .map(|p| format!("\"{}\"", p.trim()))
                .collect();
            format!(
                " (a name holding a space is written in double quotes: '{}')",
                quoted.join(&parts.to_string())
            )
        } else {
            String::new()
        };
        Err(NameError(format!(
            "unexpected {c:?} at character {} of {:?}{hint}",
            self.pos + 1,
            self.text
        )))
    }

    fn ident(&mut self) -> Result<Ident, NameError> {
        self.skip_ws();
        // `U&"d\0061t\+000061"`: a quoted name with Unicode escapes (no `UESCAPE` read here).
        let unicode = self
            .rest()
            .get(..3)
            .is_some_and(|p| p.eq_ignore_ascii_case("u&\""));
        if unicode {
            self.pos += 2;
        }
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
            if unicode {
                unescape_unicode(&name).ok_or_else(|| {
                    NameError(format!("invalid Unicode escape in {:?}", self.text))
                })?
            } else {
                name
            }
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
        // Cut as the server cuts it: the name it takes (two longer names alike in their first
        // 63 bytes are one table there).
        let mut ident = ident;
        if ident.len() > NAME_LIMIT {
            let mut end = NAME_LIMIT;
            while !ident.is_char_boundary(end) {
                end -= 1;
            }
            let cut = ident[..end].to_owned();
            self.truncated.push(format!(
                "identifier \"{ident}\" will be truncated to \"{cut}\""
            ));
            ident = cut;
        }
        Ok(Ident(ident))
    }
}

/// The name a `U&"…"` identifier's quoted text stands for: `\\` a backslash, `\XXXX` and
/// `\+XXXXXX` the code point of those hex digits (`None`: an escape PostgreSQL refuses, or a
/// surrogate, which it reads only as a pair).
pub(crate) fn unescape_unicode(quoted: &str) -> Option<String> {
    let mut name = String::new();
    let mut rest = quoted;
    while let Some(at) = rest.find('\\') {
        name.push_str(&rest[..at]);
        rest = &rest[at + 1..];
        if let Some(after) = rest.strip_prefix('\\') {
            name.push('\\');
            rest = after;
            continue;
        }
        let digits = if rest.starts_with('+') { 6 } else { 4 };
        let start = usize::from(rest.starts_with('+'));
        let hex = rest.get(start..start + digits)?;
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        name.push(char::from_u32(u32::from_str_radix(hex, 16).ok()?)?);
        rest = &rest[start + digits..];
    }
    name.push_str(rest);
    Some(name)
}

/// `WHERE (condition)`, the user's `--where` in parentheses: on a line of their own where it
/// holds `--`, so that a `-- comment` ending it does not swallow the closing one.
///
/// ```
/// use copyman_job::sql::where_clause;
///
/// assert_eq!(where_clause("a > 1"), "WHERE (a > 1)");
/// assert_eq!(where_clause("a > 1 -- recent"), "WHERE (a > 1 -- recent\n)");
/// ```
pub fn where_clause(condition: &str) -> String {
    if condition.contains("--") {
        format!("WHERE ({condition}\n)")
    } else {
        format!("WHERE ({condition})")
    }
}

/// A string literal for `text`: `'…'` with `'` doubled, or `E'…'` when it holds a backslash (as
/// PostgreSQL's `quote_literal` does), so it reads the same whatever
/// `standard_conforming_strings` is.
pub fn literal(text: &str) -> String {
    let doubled = text.replace('\'', "''");
    if text.contains('\\') {
        format!("E'{}'", doubled.replace('\\', "\\\\"))
    } else {
        format!("'{doubled}'")
    }
}

/// Where the server's WAL stands: the WAL file name of its current LSN (its first 8 hex digits
/// the timeline) and the LSN, and when the server started, as text
/// ([`crate::state::Position`]). PostgreSQL 10 on; a standby refuses it.
pub const WAL_POSITION: &str = "SELECT pg_catalog.pg_walfile_name(pg_catalog.pg_current_wal_lsn()), \
     pg_catalog.pg_current_wal_lsn()::text, \
     (extract(epoch FROM pg_catalog.pg_postmaster_start_time()) * 1000000)::int8::text, \
     (SELECT (extract(epoch FROM stats_reset) * 1000000)::int8::text \
       FROM pg_catalog.pg_stat_bgwriter)";

/// When the server started (`pg_postmaster_start_time()`, microseconds since 1970) and when its
/// statistics were last reset (`pg_stat_bgwriter.stats_reset`), as [`WAL_POSITION`] reads them.
pub const SERVER_STARTED: &str = "SELECT (extract(epoch FROM pg_catalog.pg_postmaster_start_time()) * 1000000)::int8::text, \
     (SELECT (extract(epoch FROM stats_reset) * 1000000)::int8::text \
       FROM pg_catalog.pg_stat_bgwriter)";

/// Whether the bgwriter's statistics were reset after the moment `{}` (microseconds since 1970,
/// as [`WAL_POSITION`] reads `stats_reset`) together with the archiver's, at the very same
/// moment: a crash recovery resets every kind of statistics at once, stamped alike; a
/// `pg_stat_reset_shared()` of one kind resets that kind, stamped apart from another's
/// (recheck54b F2: two such resets read as a crash).
pub const RESET_SINCE: &str = "SELECT ((extract(epoch FROM b.stats_reset) * 1000000)::int8 > {} \
     AND a.stats_reset = b.stats_reset)::text \
     FROM pg_catalog.pg_stat_bgwriter b, pg_catalog.pg_stat_archiver a";

/// Whether a crash may have taken rows prepared transaction `{}` (its gid, a [`literal`])
/// wrote: one row when its server's statistics (the bgwriter's or the archiver's) were reset
/// since it was prepared, as crash recovery resets them (either: a reset by hand of one kind
/// since the crash restamps it alone, commit55 F1) — its transaction id and the tables it
/// wrote (those its locks that write name: `RowExclusiveLock` of a COPY or an INSERT,
/// `AccessExclusiveLock` of a TRUNCATE), the UNLOGGED ones as oids then names (a crash empties them, and the prepared
/// transaction survives it), the others by name. No row when there was no reset since or it
/// is not prepared here. A prepared transaction's locks are held by no process (`pid` null)
/// under its session's virtual id until a restart, `-1/xid` after. Reads no table: it asks
/// while the transaction holds its locks.
pub const CRASH_SINCE_PREPARED: &str = "SELECT p.transaction::text, \
     coalesce(pg_catalog.string_agg(DISTINCT c.oid::text, ',') \
     FILTER (WHERE c.relpersistence = 'u'), ''), \
     coalesce(pg_catalog.string_agg(DISTINCT c.oid::pg_catalog.regclass::text, ', ') \
     FILTER (WHERE c.relpersistence = 'u'), ''), \
     coalesce(pg_catalog.string_agg(DISTINCT c.oid::pg_catalog.regclass::text, ', ') \
     FILTER (WHERE c.relpersistence <> 'u'), '') \
     FROM pg_catalog.pg_prepared_xacts p \
     JOIN pg_catalog.pg_locks l ON l.locktype = 'relation' AND l.pid IS NULL \
     AND l.database = (SELECT oid FROM pg_catalog.pg_database \
     WHERE datname = pg_catalog.current_database()) \
     AND l.mode IN ('RowExclusiveLock', 'AccessExclusiveLock') \
     AND l.virtualtransaction IN ('-1/' || p.transaction, (SELECT x.virtualtransaction \
     FROM pg_catalog.pg_locks x WHERE x.locktype = 'transactionid' \
     AND x.transactionid = p.transaction AND x.pid IS NULL LIMIT 1)) \
     JOIN pg_catalog.pg_class c ON c.oid = l.relation AND c.relkind = 'r', \
     pg_catalog.pg_stat_bgwriter b, pg_catalog.pg_stat_archiver a \
     WHERE p.gid = {} AND (b.stats_reset > p.prepared OR a.stats_reset > p.prepared) \
     GROUP BY p.transaction::text, p.prepared, b.stats_reset, a.stats_reset";

/// Whether table `{}` (its name) holds none of the rows of transaction `{}` (its id),
/// committed ([`CRASH_SINCE_PREPARED`]: a prepared transaction's rows are read once committed).
pub const HOLDS_NONE_OF: &str = "SELECT (NOT EXISTS (SELECT 1 FROM ONLY {} \
     WHERE xmin = '{}'::pg_catalog.xid))::text";

/// Whether the server's cumulative statistics were reset since it started: crash recovery (or an
/// immediate stop's) discards them and stamps the shared ones' `stats_reset` as the server comes
/// up; a clean restart keeps them, stamp and all (a `pg_stat_reset_shared('bgwriter')` since the
/// start reads the same).
pub const STARTED_AFTER_A_CRASH: &str = "SELECT (stats_reset >= pg_catalog.pg_postmaster_start_time())::text \
     FROM pg_catalog.pg_stat_bgwriter";

/// The server's system identifier (`pg_control_system()`: unique per cluster, readable by every
/// role since PostgreSQL 10 unless revoked), as text ([`crate::identity`]).
pub const SYSTEM_IDENTIFIER: &str =
    "SELECT system_identifier::text FROM pg_catalog.pg_control_system()";

/// Where [`SYSTEM_IDENTIFIER`] cannot be read: the postmaster's start time and port, which tell
/// servers apart just as well in practice ([`crate::identity`]). The time in UTC and a fixed
/// form, whatever the session's `TimeZone` and `DateStyle` (as text in each session's zone, one
/// server reached by sessions of two zones was taken for two: its rows copied twice).
pub const START_TIME_AND_PORT: &str = "SELECT pg_catalog.to_char(\
     pg_catalog.pg_postmaster_start_time() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') \
     || ' UTC port ' || pg_catalog.current_setting('port')";

/// Where the session's server listens, as `PORT|ADDRESS` (the address empty over a Unix
/// socket).
pub const LISTENS: &str = "SELECT pg_catalog.current_setting('port') || '|' || \
     coalesce(pg_catalog.host(pg_catalog.inet_server_addr()), '')";

/// The server's Unix socket directories (comma-separated), where its role may read them.
pub const SOCKET_DIRECTORIES: &str = "SELECT pg_catalog.current_setting('unix_socket_directories')";

/// Where a standby's WAL receiver streams from, as `HOST|PORT`; empty parts where its role may
/// not see them, no row where it streams from none.
pub const STREAMS_FROM: &str = "SELECT coalesce(sender_host, '') || '|' || \
     coalesce(sender_port::text, '') FROM pg_catalog.pg_stat_wal_receiver";

/// Whether the server is a standby, as text (`true`: in recovery, it takes no writes).
pub const IN_RECOVERY: &str = "SELECT pg_catalog.pg_is_in_recovery()::text";

/// Where the session's `default_transaction_read_only` comes from when it is on
/// (`pg_settings.source`: `client` for the CONN's options or PGOPTIONS, `user`, `database`,
/// `database user`, `configuration file` …); no row when it is off.
pub const DEFAULT_READ_ONLY: &str = "SELECT source FROM pg_catalog.pg_settings \
     WHERE name = 'default_transaction_read_only' AND setting = 'on'";

/// Where the session's `session_replication_role` is `replica` is set, if it is: a
/// destination's triggers and foreign keys then do not run for the copy.
pub const REPLICA_ROLE: &str = "SELECT source FROM pg_catalog.pg_settings \
     WHERE name = 'session_replication_role' AND setting = 'replica'";

/// The form in which `--verify` reads a column whose type is `source` on the source and `other`
/// on a destination, on every side, where one form shows their values alike: numbers (integers,
/// `numeric` of any scale, `real`, `double precision`) as a `numeric` with its scale trimmed
/// (PostgreSQL 13's `trim_scale`), `json` and `jsonb` as `jsonb`; `{}` is the column. `None`
/// for other pairs (the destination's column is read back in the source's type).
///
/// ```
/// use copyman_job::sql::comparison_form;
///
/// assert!(comparison_form("integer", "numeric(10,2)").unwrap().contains("trim_scale"));
/// assert!(comparison_form("json", "jsonb").unwrap().contains("jsonb"));
/// assert_eq!(comparison_form("text", "character varying(10)"), None);
/// ```
pub fn comparison_form(source: &str, other: &str) -> Option<&'static str> {
    // (Not `numeric(4,1)[]`, an array: recheck52 F2, cast as one number.)
    let number = |t: &str| {
        matches!(
            t,
            "smallint" | "integer" | "bigint" | "real" | "double precision" | "numeric"
        ) || (t.starts_with("numeric(") && !t.ends_with("[]"))
    };
    let numbers = |t: &str| t.strip_suffix("[]").is_some_and(number);
    let json = |t: &str| matches!(t, "json" | "jsonb");
    if number(source) && number(other) {
        // Through its text (`extra_float_digits = 3`: a `real`'s shortest exact digits): a
        // `real` cast to `numeric` keeps 6 digits, not what the destination read.
        Some("pg_catalog.trim_scale(CAST(CAST({} AS pg_catalog.text) AS pg_catalog.numeric))")
    } else if numbers(source) && numbers(other) {
        // (recheck52 F2: `{1.5}` and `{1.50}`, or `{1}` and `{1.00}`, differed for ever.)
        Some(NUMBERS_TRIMMED)
    } else if json(source) && json(other) {
        Some("CAST({} AS pg_catalog.jsonb)")
    } else {
        None
    }
}

/// An array of numbers (or its text) compared as `numeric[]`, each element without the zeros a
/// scale adds, as `trim_scale` does to one numeric: a faithful `{1.5}` is `{1.50}` in a
/// `numeric(5,2)[]`, `{1}` of an `int[]` too.
pub const NUMBERS_TRIMMED: &str = "pg_catalog.regexp_replace(pg_catalog.regexp_replace(\
     CAST(CAST(CAST({} AS pg_catalog.text) AS pg_catalog.numeric[]) AS pg_catalog.text), \
     '(?<=[.][0-9]*[1-9])0+(?=[,}])', '', 'g'), '[.]0+(?=[,}])', '', 'g')";

/// The session's database's oid, as text.
pub const DATABASE_OID: &str = "SELECT oid::text FROM pg_catalog.pg_database \
     WHERE datname = pg_catalog.current_database()";

/// What a physical standby shares with its primary that every role may read, where neither
/// can say its system identifier: the database's catalog row (the transaction that wrote it,
/// its oldest unfrozen transaction id) and, with `table` (an oid), the table's (the transaction
/// that wrote it, its file node). A standby has its primary's catalog rows as they are; another
/// cluster's differ (made by other transactions).
pub fn catalog_fingerprint_query(table: Option<&str>) -> String {
    let table = table
        .filter(|oid| !oid.is_empty() && oid.bytes().all(|b| b.is_ascii_digit()))
        .map(|oid| {
            format!(
                " || ':' || coalesce((SELECT c.xmin::pg_catalog.text || ':' || \
                 c.relfilenode::pg_catalog.text FROM pg_catalog.pg_class c WHERE c.oid = {oid}), '')"
            )
        })
        .unwrap_or_default();
    format!(
        "SELECT d.xmin::pg_catalog.text || ':' || d.datfrozenxid::pg_catalog.text{table} \
         FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database()"
    )
}

/// The oid (as text) of the relation `name` names on the session's `search_path`, as a
/// statement naming it would find it; NULL when there is none. `name` is spelled as in a
/// statement (`t`, `public."T"`, `U&"t\0061ble" UESCAPE '!'`, comments and all): the server reads
/// it, not copyman. Each dot-separated part ([`statement::name_parts`]) becomes a column alias
/// of a one-row query, so the server's own scanner folds its case, applies its escapes and
/// truncates it; the decoded parts come back as the row's JSON keys, in order, and
/// `to_regclass` resolves them quoted, on the `search_path` (and `pg_temp`) as COPY would.
/// A name that cannot be split is given to `to_regclass` as it is.
pub fn relation_oid_query(name: &str) -> String {
    format!("SELECT {}::oid::text", relation_regclass(name))
}

/// The relation `name` names as [`relation_oid_query`] finds it, as an SQL expression of type
/// `regclass` (NULL where there is none), for a query that asks about it.
pub fn relation_regclass(name: &str) -> String {
    let Some(parts) = statement::name_parts(name) else {
        return format!("pg_catalog.to_regclass({})", literal(name));
    };
    // Each part on a line of its own: a `--` comment in it ends there.
    let aliases: Vec<String> = parts
        .iter()
        .enumerate()
        .map(|(i, part)| format!("{i} AS {part}\n"))
        .collect();
    format!(
        "(SELECT pg_catalog.to_regclass((\
           SELECT pg_catalog.string_agg(pg_catalog.quote_ident(e.key), '.' ORDER BY e.n) \
           FROM pg_catalog.json_each(pg_catalog.row_to_json(r.*)) WITH ORDINALITY \
             AS e(key, value, n))) \
         FROM (SELECT {}) AS r)",
        aliases.join(", ")
    )
}

/// The oids (comma-separated) of the relations whose rows a COPY of the relation of oid `oid`
/// reads (`read`: itself, its partitions at every level, and for a view the relations its query
/// reads, theirs in turn) or writes into (itself and its partitions). An inheritance child is
/// neither: copyman reads and writes a parent's own rows. `None` for an oid that is not one
/// (it came from the server, as digits).
pub fn relations_query(oid: &str, read: bool) -> Option<String> {
    if !is_oid(oid) {
        return None;
    }
    let views = if read {
        "UNION SELECT d.refobjid FROM base AS b \
           JOIN pg_catalog.pg_rewrite AS r ON r.ev_class = b.oid \
           JOIN pg_catalog.pg_depend AS d \
             ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid = r.oid \
             AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass \
             AND d.refobjid <> b.oid"
    } else {
        ""
    };
    // The partitions by pg_inherits, not pg_partition_tree, which locks each of them: a
    // partition a session held (a TRUNCATE and reload) kept this question waiting in silence,
    // before any lock timeout or watch stood.
    Some(format!(
        "WITH RECURSIVE base(oid) AS (SELECT {oid}::pg_catalog.oid {views}), \
           tree(relid) AS (SELECT oid FROM base \
             UNION SELECT i.inhrelid FROM pg_catalog.pg_inherits AS i \
               JOIN tree ON i.inhparent = tree.relid \
               JOIN pg_catalog.pg_class AS c ON c.oid = i.inhrelid AND c.relispartition) \
         SELECT pg_catalog.string_agg(DISTINCT relid::pg_catalog.text, ',') FROM tree"
    ))
}

/// The oids (one per row, as text) of the relations of `oids` and of every partition and
/// inheritance child below them, at any level: what a query reading them returns rows of.
/// `None` for an oid that is not one (they come from the server, as digits).
///
/// ```
/// let q = copyman_job::sql::descendants_query(&["16384", "16390"]).unwrap();
/// assert!(q.contains("'{16384,16390}'::pg_catalog.oid[]"), "{q}");
/// assert!(copyman_job::sql::descendants_query(&["1); DROP"]).is_none());
/// ```
pub fn descendants_query(oids: &[&str]) -> Option<String> {
    if !oids.iter().all(|oid| is_oid(oid)) {
        return None;
    }
    Some(format!(
        "WITH RECURSIVE tree(oid) AS ( \
           SELECT unnest('{{{}}}'::pg_catalog.oid[]) \
           UNION SELECT i.inhrelid FROM pg_catalog.pg_inherits i \
             JOIN tree ON i.inhparent = tree.oid) \
         SELECT oid::text FROM tree",
        oids.join(",")
    ))
}

/// Whether the relations of oids `a` and `b` are a parent and its child (`INHERITS`, or a
/// partition), at any level, either way: one `true` or `false`. `None` for an oid that is not
/// one.
///
/// ```
/// assert!(copyman_job::sql::family_query("16384", "16390").is_some());
/// assert!(copyman_job::sql::family_query("16384", "x").is_none());
/// ```
pub fn family_query(a: &str, b: &str) -> Option<String> {
    if !is_oid(a) || !is_oid(b) {
        return None;
    }
    let up = |from: &str, to: &str| {
        format!(
            "{to}::pg_catalog.oid IN (WITH RECURSIVE up(oid) AS (SELECT {from}::pg_catalog.oid \
               UNION SELECT i.inhparent FROM pg_catalog.pg_inherits i \
                 JOIN up ON i.inhrelid = up.oid) SELECT oid FROM up)"
        )
    };
    Some(format!("SELECT {} OR {}", up(a, b), up(b, a)))
}

/// Whether `oid` is one, as the server writes it: digits.
fn is_oid(oid: &str) -> bool {
    !oid.is_empty() && oid.bytes().all(|b| b.is_ascii_digit())
}

/// The schema and name (as the catalog holds them) of the relation `name` names on the
/// session's `search_path`, resolved by the server as [`relation_oid_query`] resolves it (`U&"…"`,
/// quotes, case folding); no row when there is none.
pub fn relation_name_query(name: &str) -> String {
    format!(
        "SELECT n.nspname, c.relname FROM pg_catalog.pg_class c \
           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.oid = ({})::oid",
        relation_oid_query(name)
    )
}

/// Whether a relation of `kind` (`pg_class.relkind`) on a server of `server_version_num` is
/// locked before a snapshot reads it: an ordinary or partitioned table (a partitioned table's
/// lock covers its partitions), and from PostgreSQL 11 a view (its lock covers the tables it
/// reads, recursively). A TRUNCATE or a table-rewriting ALTER TABLE is not MVCC-safe: committed
/// after a snapshot was taken, it shows that snapshot the table empty. Foreign tables and
/// materialized views are not (a `REFRESH` is read as its result).
pub fn lockable(kind: &str, server_version_num: Option<u32>) -> bool {
    match kind {
        "r" | "p" => true,
        "v" => server_version_num.is_some_and(|v| v >= 110_000),
        _ => false,
    }
}

/// The files that hold `table`'s rows, its partitions' and its inheritance children's, as one
/// text (oid and file node of each): a TRUNCATE or a table-rewriting ALTER TABLE, VACUUM FULL or
/// CLUSTER gives a relation a new file. Where the role may not lock a table before the snapshot
/// that reads it (`SELECT` on its columns only), it is asked before that snapshot and again once
/// the COPY read it: a file node is the latest, whatever the snapshot. Other files than
/// before mean the snapshot may have read the table empty. The partitions as they are now too
/// (`pg_partition_tree`, from PostgreSQL 12, which reads the catalog as it is, where a query of
/// `pg_inherits` in the copy's snapshot saw the tree as it was): a partition detached or
/// attached meanwhile, which a partitioned table's COPY then read or not (its rows copied by
/// nobody, or twice), changes them.
pub fn files_query(table: &TableName, server_version_num: Option<u32>) -> String {
    let table = table.regclass_literal();
    let now = if server_version_num.is_some_and(|v| v >= 120_000) {
        format!(
            " || '|' || coalesce((SELECT pg_catalog.string_agg(\
               p.relid::pg_catalog.oid::pg_catalog.text, ',' ORDER BY p.relid::pg_catalog.oid) \
               FROM pg_catalog.pg_partition_tree(\
               pg_catalog.to_regclass({table})) p), '')"
        )
    } else {
        String::new()
    };
    format!(
        "WITH RECURSIVE tree(oid) AS ( \
           SELECT pg_catalog.to_regclass({table})::pg_catalog.oid \
           UNION SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN tree ON i.inhparent = tree.oid) \
         SELECT pg_catalog.string_agg(tree.oid::pg_catalog.text || ':' \
           || coalesce(pg_catalog.pg_relation_filenode(tree.oid)::pg_catalog.text, '-'), ',' \
           ORDER BY tree.oid){now} FROM tree"
    )
}

/// Run in a transaction with the check of its constraints, the statement before its COMMIT (or
/// PREPARE TRANSACTION) (by [`Participant`](crate::commit::Participant) for a connection): a
/// `synchronous_commit` turned `off` inside it (a
/// trigger's `set_config(…, true)`, which outlives the session's own setting to the COMMIT) is
/// made `local` again, so that the COMMIT copyman reports, and a job records done, is on the
/// server's disk when it answers (a server crash just after lost a table recorded done).
pub const DURABLE_COMMIT: &str = "SELECT CASE WHEN \
     pg_catalog.current_setting('synchronous_commit') = 'off' \
     THEN pg_catalog.set_config('synchronous_commit', 'local', true) END";

/// `LOCK TABLE … IN ACCESS SHARE MODE` of `tables` (name, `relkind`; those [`lockable`]), for a
/// job's snapshot (as pg_dump locks what it dumps); `None` when there is none.
pub fn lock_for_snapshot<'a>(
    tables: impl Iterator<Item = (&'a TableName, &'a str)>,
) -> Option<String> {
    let names: Vec<String> = tables
        .filter(|(_, kind)| matches!(*kind, "r" | "p" | "v"))
        .map(|(t, _)| t.to_string())
        .collect();
    (!names.is_empty()).then(|| format!("LOCK TABLE {} IN ACCESS SHARE MODE", names.join(", ")))
}

/// A worker's `LOCK TABLE … IN ACCESS SHARE MODE` of `tables` (name, `relkind`; those
/// [`lockable`]): a table alone (`ONLY`: its COPY reads no inheritance child), a partitioned one
/// with its partitions, a view with the tables it reads. Under the job's snapshot, whose session
/// holds them locked ([`lock_for_snapshot`]), `nowait`: a DDL on the source (an `ALTER TABLE`,
/// a `TRUNCATE`) queued behind the job's own lock would make the worker wait for it, and it for
/// the job, a deadlock no server sees. Without it (`--no-snapshot`), before the worker's own
/// snapshot, which then sees what such a DDL left. `None` when there is none.
pub fn lock_as_worker<'a>(
    tables: impl Iterator<Item = (&'a TableName, &'a str)>,
    nowait: bool,
) -> Option<String> {
    let names: Vec<String> = tables
        .filter_map(|(t, kind)| match kind {
            "r" => Some(format!("ONLY {t}")),
            "p" | "v" => Some(t.to_string()),
            _ => None,
        })
        .collect();
    (!names.is_empty()).then(|| {
        format!(
            "LOCK TABLE {} IN ACCESS SHARE MODE{}",
            names.join(", "),
            if nowait { " NOWAIT" } else { "" }
        )
    })
}

/// Those of `tables` the session's role may SELECT from as a whole (not only some of its
/// columns): one row each, its name as [`TableName`] shows it.
pub fn readable_tables_query(tables: &[&TableName]) -> String {
    let rows: Vec<String> = tables
        .iter()
        .map(|t| format!("({}, {})", literal(&t.to_string()), t.regclass_literal()))
        .collect();
    format!(
        "SELECT v.n FROM (VALUES {}) AS v(n, r) \
         WHERE pg_catalog.has_table_privilege(v.r, 'SELECT')",
        if rows.is_empty() {
            "(NULL, NULL)".to_owned()
        } else {
            rows.join(", ")
        }
    )
}

/// The columns of `table` among `columns` that the session's role may not SELECT (on the table,
/// nor on the column), in the table's order: one row each, its name.
///
/// ```
/// use copyman_job::sql::{TableName, parse_columns, unreadable_columns_query};
///
/// let a = parse_columns("a").unwrap();
/// let q = unreadable_columns_query(&TableName::parse("s.t").unwrap(), &[&a[0]]);
/// assert!(q.contains("has_column_privilege") && q.contains("ARRAY['a']"));
/// ```
pub fn unreadable_columns_query(table: &TableName, columns: &[&Ident]) -> String {
    let names: Vec<String> = columns.iter().map(|c| literal(c.as_str())).collect();
    format!(
        "SELECT a.attname::pg_catalog.text FROM pg_catalog.pg_attribute a \
         WHERE a.attrelid = pg_catalog.to_regclass({}) AND a.attnum > 0 AND NOT a.attisdropped \
           AND a.attname::pg_catalog.text = ANY (ARRAY[{}]::pg_catalog.text[]) \
           AND NOT pg_catalog.has_column_privilege(a.attrelid, a.attnum, 'SELECT') \
         ORDER BY a.attnum",
        table.regclass_literal(),
        names.join(", ")
    )
}

/// Those of `tables` whose columns given beside each (those a `--verify` checksum reads: the
/// copied ones) the session's role may SELECT (on the table, or on each column): one row each,
/// its name as given.
pub fn readable_columns_query(tables: &[(&TableName, &[Ident])]) -> String {
    let rows: Vec<String> = tables
        .iter()
        .map(|(table, columns)| {
            let names: Vec<String> = columns.iter().map(|c| literal(c.as_str())).collect();
            format!(
                "({}, {}, ARRAY[{}]::pg_catalog.text[])",
                literal(&table.to_string()),
                table.regclass_literal(),
                names.join(", ")
            )
        })
        .collect();
    format!(
        "SELECT v.n FROM (VALUES {}) AS v(n, r, c) \
         WHERE pg_catalog.has_table_privilege(v.r, 'SELECT') \
           OR NOT EXISTS (SELECT FROM pg_catalog.pg_attribute a \
             WHERE a.attrelid = pg_catalog.to_regclass(v.r) AND a.attnum > 0 \
               AND NOT a.attisdropped AND a.attname::pg_catalog.text = ANY (v.c) \
               AND NOT pg_catalog.has_column_privilege(a.attrelid, a.attnum, 'SELECT'))",
        if rows.is_empty() {
            "(NULL, NULL, NULL::pg_catalog.text[])".to_owned()
        } else {
            rows.join(", ")
        }
    )
}

/// How a source reads a table as pg_dump does: with no schema on the search_path, values that
/// name objects (`regclass`, `regtype`, `regproc` …) are written schema-qualified, so a
/// destination reads them as the same objects whatever its own search_path. In the reading
/// transaction, before its COPY; only for a relation [`reads_pinned`] says.
pub const PIN_SEARCH_PATH: &str = "SET LOCAL search_path = ''";

/// Whether a relation of `kind` (`pg_class.relkind`), named schema-qualified, is read under
/// [`PIN_SEARCH_PATH`]: a table (ordinary or partitioned) reads no function of the user's,
/// while a view's may depend on the search_path.
pub fn reads_pinned(kind: &str) -> bool {
    matches!(kind, "r" | "p")
}

/// What one server accepts for a job's sessions, asked before `--jobs` is settled: its key (the
/// postmaster's start time and port: two endpoints on one server share its connections), how
/// many more connections it accepts now besides this one, and the limit that says so
/// (`max_connections 30`, `the role's CONNECTION LIMIT 3`, `the database's CONNECTION LIMIT 5`).
/// The fewest of: `max_connections`, less its reserved slots (for a superuser too: a job leaves
/// them free, so that the DBA can still connect to look at it or cancel it, as
/// `superuser_reserved_connections` means, unless not one worker fits without them), less the backends connected to any database
/// (`pg_stat_database`, which every role sees whole: `pg_stat_activity` hides other roles'
/// backend types); the role's `CONNECTION LIMIT` less its sessions; the database's less its
/// backends (those two not for a superuser). Then the reserved slots left free, and whether the
/// role is a superuser (who may take them).
pub const CAPACITY: &str = "SELECT key, LEAST(server, rol, db),
        CASE WHEN rol IS NOT NULL AND rol <= server AND (db IS NULL OR rol <= db)
               THEN 'the role''s CONNECTION LIMIT ' || rolconnlimit
             WHEN db IS NOT NULL AND db <= server
               THEN 'the database''s CONNECTION LIMIT ' || datconnlimit
             ELSE 'max_connections ' || pg_catalog.current_setting('max_connections') END,
        reserved, rolsuper
   FROM (SELECT pg_catalog.to_char(pg_catalog.pg_postmaster_start_time() AT TIME ZONE 'UTC',
                                   'YYYY-MM-DD HH24:MI:SS.US') || ':'
                  || pg_catalog.current_setting('port') AS key,
                pg_catalog.current_setting('max_connections')::pg_catalog.int4
                  - reserved
                  - ((SELECT pg_catalog.sum(numbackends) FROM pg_catalog.pg_stat_database)::pg_catalog.int4
                     - 1) AS server,
                CASE WHEN r.rolsuper OR r.rolconnlimit < 0 THEN NULL
                     ELSE r.rolconnlimit - ((SELECT pg_catalog.count(*) FROM pg_catalog.pg_stat_activity a
                                              WHERE a.usesysid = r.oid)::pg_catalog.int4 - 1)
                END AS rol,
                CASE WHEN r.rolsuper OR d.datconnlimit < 0 THEN NULL
                     ELSE d.datconnlimit - ((SELECT numbackends FROM pg_catalog.pg_stat_database s
                                              WHERE s.datid = d.oid) - 1)
                END AS db,
                r.rolconnlimit, d.datconnlimit, reserved, r.rolsuper
           FROM pg_catalog.pg_roles r, pg_catalog.pg_database d,
                (SELECT pg_catalog.current_setting('superuser_reserved_connections')::pg_catalog.int4
                          + coalesce(pg_catalog.current_setting('reserved_connections', true),
                                     '0')::pg_catalog.int4 AS reserved) res
          WHERE r.rolname = session_user AND d.datname = pg_catalog.current_database()) AS limits";

/// A data format of COPY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// PostgreSQL's text format.
    Text,
    /// CSV.
    Csv,
    /// PostgreSQL's binary format (same major version on both sides).
    Binary,
}

impl Format {
    /// The name COPY's `FORMAT` option takes.
    pub fn name(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Csv => "csv",
            Self::Binary => "binary",
        }
    }

    /// The rows a server's COPY in this format sent, from its CopyData `messages` so far: binary
    /// data ends with a message of its own, its trailer, which is no row (live counts said a row
    /// too many per table and per range, and took it back as each finished). One short until a
    /// binary copy's second row (its header rides with the first), never one too many.
    pub fn rows_of(self, messages: u64) -> u64 {
        match self {
            Self::Binary => messages.saturating_sub(1),
            Self::Text | Self::Csv => messages,
        }
    }
}

/// Checks that a `--where` condition stays inside `WHERE ( … )`: parentheses balance and no `;`
/// outside string literals, quoted identifiers and comments. Not a security boundary (whoever
/// writes it can run any SQL on the source anyway), a guard against a truncated or mistyped
/// condition turning into a different statement.
pub fn check_condition(sql: &str) -> Result<(), NameError> {
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

/// The `FROM` item that reads the rows of `table`, a relation of `kind` (`pg_class.relkind`;
/// empty when not known), as `COPY table TO` reads them: an ordinary table from `ONLY` itself,
/// its own rows, not those of tables that inherit from it (copied as tables of their own); any
/// other kind as it is (a partitioned table: the rows of its partitions). What a copy reads and
/// what a check of it counts must be the same rows: both take it from here.
pub fn own_rows(table: &TableName, kind: &str) -> String {
    if kind == "r" {
        format!("ONLY {table}")
    } else {
        table.to_string()
    }
}

/// The statement that empties `table`, a relation of `kind` (`pg_class.relkind`) on the server
/// that runs it, before a copy into it (in the copy's transaction): its own rows only, never
/// those of the tables that inherit from it (`ONLY`: copied, or not, as tables of their own; a
/// partitioned table's partitions are its rows). `TRUNCATE`, unless other tables `referenced` it
/// by a foreign key: a `TRUNCATE` of it alone is refused there (0A000), so `DELETE`, which the
/// foreign keys check row by row — it succeeds where no row of another table references it (a
/// table being copied again before the tables that reference it), and names the constraint
/// where one does (23503). Only where a `DELETE` touches nothing else
/// ([`delete_is_quiet_query`]): the caller passes `referenced` false otherwise, and the
/// `TRUNCATE` is refused. (`COPY … FREEZE` needs the `TRUNCATE`.) The `DELETE` is refused
/// (55000) where `session_replication_role` is `replica`: foreign keys are not checked there,
/// and the rows referencing the deleted ones would be left referencing nothing.
///
/// ```
/// use copyman_job::sql::{TableName, emptying};
///
/// let t = TableName::parse("app.t").unwrap();
/// assert_eq!(emptying(&t, "r", false), r#"TRUNCATE ONLY "app"."t""#);
/// assert_eq!(emptying(&t, "p", false), r#"TRUNCATE "app"."t""#);
/// assert!(emptying(&t, "r", true).ends_with(
///     r#"LOCK TABLE ONLY "app"."t" IN EXCLUSIVE MODE; DELETE FROM ONLY "app"."t""#
/// ));
/// ```
pub fn emptying(table: &TableName, kind: &str, referenced: bool) -> String {
    if referenced {
        // As a TRUNCATE's lock would, the table's writers wait until the copy commits: rows
        // another session adds meanwhile do not end up beside the copied ones.
        let rows = own_rows(table, kind);
        format!("{CHECKED_DELETE}; LOCK TABLE {rows} IN EXCLUSIVE MODE; DELETE FROM {rows}")
    } else {
        format!("TRUNCATE {}", own_rows(table, kind))
    }
}

/// The statements that make sure, in a binary copy's transaction on one endpoint, that the
/// copied columns of `table` (a relation of `kind`) are still of the types the plan chose the
/// binary format for (`columns`: each column and its type's OID there): binary data carries no
/// type, so a column whose type changed after the catalog was read (an `ALTER TABLE … ALTER
/// COLUMN … TYPE` that held the table while copyman waited) would be read as the other type —
/// an `int8` as the `float8` of the same bits, a `timestamp` as UTC. The table is held first as
/// `hold` says (in the mode its COPY would take: `ACCESS SHARE` to read, `ROW EXCLUSIVE` to
/// write), and the types are asked as the server parses an expression, after that (the catalog
/// as it is now, not as a transaction's snapshot saw it). A type that differs fails the
/// statement, SQLSTATE 55000, naming the column and both types; a column dropped or renamed
/// since, 42703, in words of its own. Only ordinary and partitioned
/// tables and views (a view's lock covers the tables it reads, from PostgreSQL 11:
/// [`Relation::types_unchanged`] asks for its server's version): `None` for any other kind, or
/// no column.
///
/// ```
/// use copyman_job::sql::{Hold, Ident, TableName, types_unchanged};
///
/// let t = TableName::parse("app.t").unwrap();
/// let v = Ident::new("v");
/// let sql = types_unchanged(&t, "r", Hold::Lock("ACCESS SHARE"), &[(&v, 20)]).unwrap();
/// assert!(sql.starts_with(r#"LOCK TABLE ONLY "app"."t" IN ACCESS SHARE MODE; DO"#));
/// assert!(sql.contains(r#"pg_catalog.pg_typeof((NULL::"app"."t")."v")::pg_catalog.oid <> 20"#));
/// let sql = types_unchanged(&t, "r", Hold::LockIfAllowed("ROW EXCLUSIVE"), &[(&v, 20)]);
/// assert!(sql.unwrap().contains("EXCEPTION WHEN insufficient_privilege"));
/// assert!(types_unchanged(&t, "v", Hold::Held, &[(&v, 20)]).is_some());
/// assert_eq!(types_unchanged(&t, "m", Hold::Held, &[(&v, 20)]), None);
/// ```
pub fn types_unchanged(
    table: &TableName,
    kind: &str,
    hold: Hold,
    columns: &[(&Ident, u32)],
) -> Option<String> {
    if !matches!(kind, "r" | "p" | "v") || columns.is_empty() {
        return None;
    }
    let (lock, lock_inside) = match hold {
        Hold::Held => (String::new(), String::new()),
        Hold::Lock(mode) => (format!("{}; ", lock_itself(table, mode)), String::new()),
        Hold::LockIfAllowed(mode) => (
            String::new(),
            format!(
                "BEGIN {}; EXCEPTION WHEN insufficient_privilege THEN NULL; END; ",
                lock_itself(table, mode)
            ),
        ),
    };
    let checks: String = columns
        .iter()
        .map(|(column, oid)| {
            let now = format!("pg_catalog.pg_typeof((NULL::{table}).{column})");
            // format()'s placeholders are the types; a `%` in a name is itself.
            let (c, t) = (
                column.to_string().replace('%', "%%"),
                table.to_string().replace('%', "%%"),
            );
            let changed = literal(&format!(
                "column {c} of {t} changed type after copyman read the catalog (an ALTER TABLE \
                 while copyman waited for the table?): it is %s now, the binary copy was \
                 planned for %s; nothing of it is copied: run again"
            ));
            // Dropped or renamed since: said so (it was the server's words for copyman's own
            // DO block, "column … not found in data type …").
            let gone = literal(&format!(
                "column {} of {} was dropped or renamed after copyman read the catalog (an \
                 ALTER TABLE while copyman waited for the table?): nothing of it is copied: \
                 make its columns fit the source's there, then run again",
                column, table
            ));
            format!(
                "BEGIN IF {now}::pg_catalog.oid <> {oid} THEN RAISE EXCEPTION USING ERRCODE = \
                 '55000', MESSAGE = pg_catalog.format({changed}, {now}, \
                 {oid}::pg_catalog.regtype); END IF; EXCEPTION WHEN undefined_column THEN RAISE \
                 EXCEPTION USING ERRCODE = '42703', MESSAGE = {gone}; END; "
            )
        })
        .collect();
    Some(format!(
        "{lock}DO $copyman$BEGIN {lock_inside}{checks}END$copyman$"
    ))
}

/// `LOCK TABLE ONLY table IN mode MODE`: the table itself (an ALTER of a partitioned table's
/// column locks it before its partitions, and its partitions need not all be locked: a COPY
/// locks those it reaches), as its COPY would hold it.
pub fn lock_itself(table: &TableName, mode: &str) -> String {
    format!("LOCK TABLE ONLY {table} IN {mode} MODE")
}

/// How [`types_unchanged`] holds its table before it asks the columns' types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// The transaction holds it already (a job's table locked by the job).
    Held,
    /// A `LOCK TABLE` in this mode, a statement before the check: a transaction whose snapshot
    /// is taken by its first query (`REPEATABLE READ`) then takes it after the lock, and sees
    /// the table as whatever held it left it. The role must be allowed the lock (`SELECT` on
    /// the table for `ACCESS SHARE`).
    Lock(&'static str),
    /// A `LOCK TABLE` in this mode inside the check, skipped where the role may not take it
    /// (privileges on some columns only): the check then runs before the COPY's own lock.
    LockIfAllowed(&'static str),
}

/// Refuses a `DELETE` that counts on the foreign keys' checks where they do not run.
const CHECKED_DELETE: &str = "DO $copyman$BEGIN \
    IF pg_catalog.current_setting('session_replication_role') = 'replica' THEN \
    RAISE EXCEPTION USING ERRCODE = '55000', MESSAGE = 'this table is referenced by a \
    foreign key, so copyman empties it with a DELETE that the foreign keys check; with \
    session_replication_role = replica they are not checked: rows referencing it would be \
    left referencing nothing', HINT = 'select the tables that reference it too (they are \
    then emptied together), or set session_replication_role = origin for copyman''s role'; \
    END IF; END$copyman$";

/// What a foreign-key group's transaction runs first on each destination
/// ([`crate::plan::Group`]): its `DEFERRABLE` constraints (a cycle's keys, the members' own)
/// are checked when the copy ends, not at each row or `DELETE` — so a cycle's rows load in any
/// order and its members empty one by one — and before any COMMIT (core's commit checks
/// deferred constraints everywhere first: a violation rolls the group back).
pub const GROUP_DEFERS: &str = "SET CONSTRAINTS ALL DEFERRED";

/// The one statement that empties an FK-linked group of tables together
/// ([`crate::plan::Group`]), each a relation of its `kind` on the server that runs it, its own
/// rows only ([`own_rows`]): PostgreSQL truncates a referenced table when every table that
/// references it is truncated in the same statement.
///
/// ```
/// use copyman_job::sql::{TableName, emptying_together};
///
/// let a = TableName::parse("app.a").unwrap();
/// let b = TableName::parse("app.b").unwrap();
/// assert_eq!(
///     emptying_together(&[(&a, "r"), (&b, "p")]),
///     r#"TRUNCATE ONLY "app"."a", "app"."b""#
/// );
/// ```
pub fn emptying_together(tables: &[(&TableName, &str)]) -> String {
    let list: Vec<String> = tables.iter().map(|(t, k)| own_rows(t, k)).collect();
    format!("TRUNCATE {}", list.join(", "))
}

/// What is said of a name a `SQL_ASCII` database holds that is not UTF-8 ([`not_utf8`]).
pub const NAME_NOT_UTF8: &str = "is not UTF-8: its database is SQL_ASCII, which takes names of \
    any bytes, and copyman reads and writes names as UTF-8, so no statement of its can name it";

/// Whether `name`, read from `conn`'s server, is one whose bytes are not UTF-8: its database
/// is `SQL_ASCII` (which takes any bytes) and the name came with bytes replaced (U+FFFD).
pub fn not_utf8(conn: &copyman_sync::Connection, name: &str) -> bool {
    name.contains('\u{FFFD}') && conn.session().parameter("server_encoding") == Some("SQL_ASCII")
}

/// The `--exclude-table` that selects `table`, whose replaced bytes (U+FFFD) each stand for a
/// byte (`?`), the rest of each part quoted where a pattern would fold or read it otherwise, as
/// pg_dump reads patterns (`public.caf?`, `"Caf"?`).
pub fn as_pattern(table: &TableName) -> String {
    let part = |ident: &Ident| -> String {
        let segments: Vec<String> = (ident.as_str().split('\u{FFFD}'))
            .map(|s| {
                let plain = s
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
                match plain {
                    true => s.to_owned(),
                    false => format!("\"{}\"", s.replace('"', "\"\"")),
                }
            })
            .collect();
        segments.join("?")
    };
    let schema = table
        .schema
        .as_ref()
        .map(|s| format!("{}.", part(s)))
        .unwrap_or_default();
    format!("--exclude-table '{schema}{}'", part(&table.name))
}

/// A query whose one boolean says whether emptying `table` with a `DELETE` touches nothing but
/// its rows: no foreign key into it acts on delete (`CASCADE`, `SET NULL`, `SET DEFAULT`: they
/// would change another table's rows), no trigger or rule of its own fires on `DELETE`, and it is
/// an ordinary table (a partitioned one's partitions may have triggers of their own). Where it
/// says no, a referenced table is not emptied at all ([`emptying`]'s `TRUNCATE` is refused).
pub fn delete_is_quiet_query(table: &TableName) -> String {
    let t = format!("{}::pg_catalog.regclass", table.regclass_literal());
    format!("SELECT {}", delete_is_quiet(&t))
}

/// A query whose rows are what a `DELETE` of `table`'s rows would do besides emptying it, as
/// [`delete_is_quiet_query`] says it does none: `partitioned` (its relkind), `key` (a foreign
/// key acting on delete: its name, its table, its action letter), `trigger` and `rule` (their
/// names), names quoted.
pub fn delete_effects_query(table: &TableName) -> String {
    let t = format!("{}::pg_catalog.regclass", table.regclass_literal());
    let on = quoted_relation("n", "r");
    format!(
        "SELECT 'partitioned', c.relkind::text, NULL, NULL FROM pg_catalog.pg_class c \
           WHERE c.oid = {t} AND c.relkind <> 'r' \
         UNION ALL SELECT 'key', pg_catalog.quote_ident(k.conname), {on}, \
           k.confdeltype::text \
           FROM pg_catalog.pg_constraint k JOIN pg_catalog.pg_class r ON r.oid = k.conrelid \
           JOIN pg_catalog.pg_namespace n ON n.oid = r.relnamespace \
           WHERE k.contype = 'f' AND k.confrelid = {t} AND k.confdeltype NOT IN ('a', 'r') \
         UNION ALL SELECT 'trigger', pg_catalog.quote_ident(g.tgname), NULL, NULL \
           FROM pg_catalog.pg_trigger g WHERE g.tgrelid = {t} AND NOT g.tgisinternal \
           AND {TRIGGER_FIRES} AND (g.tgtype & 8) <> 0 \
         UNION ALL SELECT 'rule', pg_catalog.quote_ident(w.rulename), NULL, NULL \
           FROM pg_catalog.pg_rewrite w WHERE w.ev_class = {t} AND w.ev_type = '4'"
    )
}

/// The relations a `TRUNCATE` of the relation `t` (an oid expression) empties, each a row `oid`:
/// it and, partitioned, every partition at every level (PostgreSQL 12's `pg_partition_tree`),
/// whose own TRUNCATE triggers fire too.
pub fn truncated_tree(t: &str, version: u32) -> String {
    if version >= 120_000 {
        // A table in no partition tree has none: itself, then.
        format!("SELECT {t} AS oid UNION SELECT p.relid FROM pg_catalog.pg_partition_tree({t}) p")
    } else {
        format!("SELECT {t} AS oid")
    }
}

/// [`delete_is_quiet_query`]'s condition on the relation `t` (an oid expression). The foreign
/// keys that act on delete are one set, hashed once per query (`pg_constraint.confrelid` has no
/// index: asked per table, each scanned the whole catalog, 2 ms a table at 11 000 constraints).
fn delete_is_quiet(t: &str) -> String {
    format!(
        "((SELECT c.relkind = 'r' FROM pg_catalog.pg_class c WHERE c.oid = {t}) \
           AND {t} NOT IN (SELECT k.confrelid FROM pg_catalog.pg_constraint k \
             WHERE k.contype = 'f' AND k.confdeltype NOT IN ('a', 'r')) \
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger g WHERE g.tgrelid = {t} \
             AND NOT g.tgisinternal AND {TRIGGER_FIRES} AND (g.tgtype & 8) <> 0) \
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_rewrite r WHERE r.ev_class = {t} \
             AND r.ev_type = '4'))"
    )
}

/// One table a role is to copy into, for [`privileges_query`]: its name, the columns copied and
/// the privilege that empties it first, if it is emptied (`TRUNCATE` or `DELETE`).
pub type Written<'a> = (&'a TableName, &'a [&'a Ident], Option<&'a str>);

/// The privileges the session's role lacks to copy into each of `tables` (asked while planning,
/// as [`crate::plan::write_refusals`] reads it; one question for many tables: a job of
/// thousands asked one per table and destination, for minutes), each row beginning with the
/// table's position in `tables`: a row `column` with the name of each copied column it may not
/// `INSERT` into (neither on the table nor on the column) and its number, a row `empty` if it
/// may not empty it, a row `sequence` with each sequence whose `nextval` a default of a column
/// not copied takes and whose `USAGE` (or `UPDATE`) it lacks (the COPY fails 42501 at its first
/// row; an identity's own sequence needs none), and a row `rls` if row-level security applies
/// to the role there (COPY FROM refuses such a table, 0A000).
pub fn privileges_query(tables: &[Written<'_>]) -> String {
    let values: Vec<String> = tables
        .iter()
        .enumerate()
        .map(|(i, (table, columns, empty))| {
            let names: Vec<String> = columns.iter().map(|c| literal(c.as_str())).collect();
            format!(
                "({i}, {}, ARRAY[{}]::pg_catalog.text[], {}::pg_catalog.text)",
                table.regclass_literal(),
                names.join(", "),
                empty.map_or("NULL".to_owned(), literal),
            )
        })
        .collect();
    format!(
        "WITH r AS (SELECT v.i, pg_catalog.to_regclass(v.name) AS oid, v.cols, v.empty \
           FROM (VALUES {}) v(i, name, cols, empty)) \
         SELECT r.i, 'column', a.attname::pg_catalog.text, a.attnum \
             FROM r JOIN pg_catalog.pg_attribute a ON a.attrelid = r.oid \
             WHERE a.attnum > 0 AND NOT a.attisdropped \
               AND a.attname::pg_catalog.text = ANY (r.cols) \
               AND NOT pg_catalog.has_column_privilege(r.oid, a.attnum, 'INSERT') \
         UNION ALL SELECT r.i, 'empty', NULL::pg_catalog.text, NULL::pg_catalog.int2 FROM r \
           WHERE r.oid IS NOT NULL AND r.empty IS NOT NULL \
             AND NOT pg_catalog.has_table_privilege(r.oid, r.empty) \
         UNION ALL SELECT DISTINCT r.i, 'sequence', \
               s.oid::pg_catalog.regclass::pg_catalog.text, NULL::pg_catalog.int2 \
             FROM r JOIN pg_catalog.pg_attribute a ON a.attrelid = r.oid \
             JOIN pg_catalog.pg_attrdef f ON f.adrelid = r.oid AND f.adnum = a.attnum \
             JOIN pg_catalog.pg_depend d ON d.objid = f.oid \
               AND d.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass \
               AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass \
             JOIN pg_catalog.pg_class s ON s.oid = d.refobjid AND s.relkind = 'S' \
             WHERE a.attnum > 0 AND NOT a.attisdropped \
               AND a.attname::pg_catalog.text <> ALL (r.cols) \
               AND CASE WHEN s.relkind = 'S' THEN \
                 NOT pg_catalog.has_sequence_privilege(s.oid, 'USAGE') \
                 AND NOT pg_catalog.has_sequence_privilege(s.oid, 'UPDATE') END \
         UNION ALL SELECT r.i, 'rls', NULL::pg_catalog.text, NULL::pg_catalog.int2 FROM r \
           WHERE r.oid IS NOT NULL AND pg_catalog.row_security_active(r.oid) \
         ORDER BY 1, 2, 4, 3",
        values.join(", ")
    )
}

/// What a `copyman table` copy reads and writes.
#[derive(Debug, Clone)]
pub struct TableCopy {
    /// The source's table.
    pub table: TableName,
    /// The destinations' table (`--target-table`), when its name differs from the source's.
    pub target: Option<TableName>,
    /// The columns, or every column.
    pub columns: Vec<Ident>,
    /// The `--where` condition.
    pub condition: Option<String>,
    /// Whether the data (CSV, or text from PostgreSQL 15) has a header line.
    pub header: bool,
    /// The data's encoding where it is not the sessions' (a file's: `--encoding`), said in each
    /// COPY (its `ENCODING` option): the sessions stay in their own `client_encoding`, in which
    /// names and conditions beyond ASCII read as written.
    pub encoding: Option<String>,
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
        let mut options = vec![format!("FORMAT {}", format.name())];
        if format != Format::Binary {
            if self.header {
                options.push("HEADER".to_owned());
            }
            if let Some(encoding) = &self.encoding {
                options.push(format!("ENCODING {}", literal(encoding)));
            }
        }
        format!("({})", options.join(", "))
    }

    /// The source's statement for a relation of `kind` (`pg_class.relkind`: `r` an ordinary
    /// table, `p` partitioned, `v` a view, …; empty when not known). `select` asks for the
    /// `COPY (SELECT …)` form, which views and partitioned tables need; a condition implies it.
    /// The rows selected are those [`own_rows`] reads.
    pub fn copy_out(&self, format: Format, select: bool, kind: &str) -> String {
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
            Some(condition) => format!(" {}", where_clause(condition)),
            None => String::new(),
        };
        format!(
            "COPY (SELECT {columns} FROM {}{condition}) TO STDOUT {options}",
            own_rows(&self.table, kind)
        )
    }

    /// The destinations' table: `--target-table`, else the source's name.
    pub fn target(&self) -> &TableName {
        self.target.as_ref().unwrap_or(&self.table)
    }

    /// A destination's statement.
    pub fn copy_in(&self, format: Format) -> String {
        let columns = if self.columns.is_empty() {
            String::new()
        } else {
            format!(" ({})", self.column_list())
        };
        format!(
            "COPY {}{columns} FROM STDIN {}",
            self.target(),
            self.options(format)
        )
    }

    /// The destination's `TRUNCATE` of its table, a relation of `kind` there (see [`emptying`]).
    pub fn truncate(&self, kind: &str) -> String {
        emptying(self.target(), kind, false)
    }
}

/// The catalog query for `table` on a server of version `version` (`server_version_num`): one
/// row per column that is stored (`attnum > 0`, not dropped), in `attnum` order, each with the
/// relation's kind and row estimate; a table without columns gives one row of NULL columns.
///
/// The columns of a row: `relkind`, the row estimate (see below), `attname`,
/// `format_type(atttypid, atttypmod)`, a generated column's expression (NULL for others), and
/// the types its values are made of (see [`binary_key`]), its sequence, whether it fills
/// itself, and how many
/// inheritance children the table has, its composites' fields, and whether a view has an
/// `INSTEAD OF INSERT` row trigger (true for any other relation).
///
/// The estimate sums, over the relation and the leaves of its partition tree, `reltuples` where
/// the relation was analyzed, scaled to its size now as the planner does (rows per page then,
/// times its pages now: statistics taken before a bulk load counted a fraction of its rows),
/// and its size divided by an estimated row width where it never was (`reltuples` is -1 from
/// PostgreSQL 14 on, 0 with pages on disk before).
pub fn catalog_query(table: &TableName, version: Option<u32>) -> String {
    let relation = format!(
        "{}::pg_catalog.regclass::pg_catalog.oid",
        table.regclass_literal()
    );
    catalog_of(&relation, version)
}

/// The catalog query of many tables at once ([`catalog_query`] for each, planned once): each
/// row is one of `catalog_query`'s with the table's 1-based place in `tables` in front (as
/// text), the rows of each table together, in `tables`' order. A table the server does not find
/// has no row (`to_regclass`), where `catalog_query` would fail; a schema the role may not use
/// fails it all. Needs PostgreSQL 9.6 (`to_regclass` of text).
///
/// One query instead of one per table: planning the query takes most of its time (about 8 ms
/// against 2 ms of running it for a table), which thousands of tables paid once each.
pub fn catalog_batch_query(tables: &[&TableName], version: Option<u32>) -> String {
    let names: Vec<String> = tables.iter().map(|t| t.regclass_literal()).collect();
    format!(
        "SELECT k.i::text, q.* FROM pg_catalog.unnest(ARRAY[{}]::text[]) WITH ORDINALITY \
           AS k(name, i) CROSS JOIN LATERAL ({}) q",
        names.join(", "),
        catalog_of("pg_catalog.to_regclass(k.name)::pg_catalog.oid", version)
    )
}

/// What the catalog query knows of each column's types, within a subquery of the column's: the
/// types its values are made of (`typ`), whether each is an element of another (`elem`), its
/// path within the value (`path`) and its type modifier (`md`) — one row each, unnested from
/// the column's arrays (`b`, its row of `byatt`: a scan of the whole recursive `reach` for each
/// column made the query quadratic in the columns, 12 s for 1 600: files50 F2).
const ITEMS: &str = "ROWS FROM (pg_catalog.unnest(b.typ), pg_catalog.unnest(b.elem), \
     pg_catalog.unnest(b.path), pg_catalog.unnest(b.md)) AS r(typ, elem, path, md)";

/// [`catalog_query`]'s text, for the relation whose oid `relation` gives.
fn catalog_of(relation: &str, version: Option<u32>) -> String {
    let version = version.unwrap_or(0);
    // attgenerated is from PostgreSQL 12, as pg_partition_tree.
    let generated = if version >= 120_000 {
        "(SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid) FROM pg_catalog.pg_attrdef d \
          WHERE a.attgenerated <> '' AND d.adrelid = a.attrelid AND d.adnum = a.attnum)"
    } else {
        "NULL::text"
    };
    // attidentity is from PostgreSQL 10.
    let identity = if version >= 100_000 {
        "a.attidentity <> ''"
    } else {
        "false"
    };
    // The relation and its leaves, each looked up in pg_class by oid (its index; `OFFSET 0`
    // keeps the planner from hashing all of pg_class): an `IN (…)` of them scanned all of
    // pg_class, for every table of a job (seconds per hundred tables).
    // A composite's field is where it stands among the fields not dropped (as record_send
    // sends them), not its attnum: a composite with a dropped field is made of the same fields
    // as one created without it.
    // A multirange is sent as its ranges, each in its range type's form (pg_range knows its
    // multirange from PostgreSQL 14).
    let multirange = if version >= 140_000 {
        "UNION ALL SELECT g.rngtypid, false, 'm', -1 FROM pg_catalog.pg_range g \
          WHERE g.rngmultitypid = t.oid "
    } else {
        ""
    };
    // A column's sequence: the one it owns (serial, identity), else the one its default takes
    // `nextval` of (a sequence of several tables', a partition's or an inheritance child's
    // copy of its parent's default), else a partition's partitioned ancestor's identity
    // (PostgreSQL 12's pg_partition_ancestors; partitions have no identity of their own).
    let ancestors = if version >= 120_000 {
        ", (SELECT d.objid::text \
            FROM pg_catalog.pg_partition_ancestors(c.oid) WITH ORDINALITY u(relid, n) \
            JOIN pg_catalog.pg_attribute pa ON pa.attrelid = u.relid AND pa.attname = a.attname \
            JOIN pg_catalog.pg_depend d ON d.refobjid = u.relid AND d.refobjsubid = pa.attnum \
             AND d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass \
             AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass \
             AND d.deptype IN ('a', 'i') \
            JOIN pg_catalog.pg_class s ON s.oid = d.objid AND s.relkind = 'S' \
           WHERE c.relispartition AND u.relid <> c.oid ORDER BY u.n, d.objid LIMIT 1)"
    } else {
        ""
    };
    let orders = range_orders(version);
    let items = ITEMS;
    let quiet = delete_is_quiet("rel.oid");
    let tree = truncated_tree("rel.oid", version);
    // (A partition's tree holds itself: counted once, not twice, jobs64 F1.)
    let parts = if version >= 120_000 {
        "SELECT rel.oid FROM rel UNION ALL \
         SELECT t.relid FROM rel, pg_catalog.pg_partition_tree(rel.oid) t \
          WHERE t.isleaf AND t.relid <> rel.oid"
    } else {
        "SELECT rel.oid FROM rel"
    };
    format!(
        "WITH RECURSIVE rel AS (SELECT {relation} AS oid), \
         reach(attnum, typ, elem, path, md) AS ( \
           SELECT a.attnum, a.atttypid, false, ''::text, -1 FROM pg_catalog.pg_attribute a, rel \
            WHERE a.attrelid = rel.oid AND a.attnum > 0 AND NOT a.attisdropped \
           UNION \
           SELECT r.attnum, n.typ, n.elem, r.path || '/' || n.pos, n.md FROM reach r \
             CROSS JOIN LATERAL (SELECT t.* FROM pg_catalog.pg_type t \
              WHERE t.oid = r.typ OFFSET 0) t \
             CROSS JOIN LATERAL (VALUES (t.typbasetype, false, 'b'::text, t.typtypmod), \
               (CASE WHEN t.typlen = -1 THEN t.typelem ELSE 0 END, true, 'e', -1), \
               (coalesce((SELECT g.rngsubtype FROM pg_catalog.pg_range g \
                  WHERE g.rngtypid = t.oid), 0), false, 's', -1) \
               UNION ALL SELECT f.atttypid, true, (SELECT count(*) FROM pg_catalog.pg_attribute p \
                  WHERE p.attrelid = f.attrelid AND p.attnum > 0 AND p.attnum <= f.attnum \
                    AND NOT p.attisdropped)::text, f.atttypmod \
                FROM pg_catalog.pg_attribute f \
                WHERE t.typtype = 'c' AND f.attrelid = t.typrelid AND f.attnum > 0 \
                  AND NOT f.attisdropped {multirange}) AS n(typ, elem, pos, md) \
            WHERE n.typ <> 0), \
         byatt AS (SELECT attnum, pg_catalog.array_agg(typ) AS typ, \
           pg_catalog.array_agg(elem) AS elem, pg_catalog.array_agg(path) AS path, \
           pg_catalog.array_agg(md) AS md FROM reach GROUP BY attnum), \
         parts AS ({parts}), \
         width AS (SELECT 28 + coalesce(sum(CASE WHEN a.attlen > 0 THEN a.attlen ELSE 32 END), 0) AS w \
           FROM pg_catalog.pg_attribute a, rel \
           WHERE a.attrelid = rel.oid AND a.attnum > 0 AND NOT a.attisdropped), \
         estimate AS (SELECT sum(CASE \
             WHEN p.reltuples > 0 AND p.relpages > 0 \
             THEN p.reltuples / p.relpages * (pg_catalog.pg_relation_size(p.oid) \
               / pg_catalog.current_setting('block_size')::float8) \
             WHEN p.reltuples < 0 OR (p.reltuples = 0 AND pg_catalog.pg_relation_size(p.oid) > 0) \
             THEN pg_catalog.pg_relation_size(p.oid) / width.w ELSE p.reltuples END)::int8 AS n \
           FROM parts CROSS JOIN width CROSS JOIN LATERAL (SELECT p.oid, p.reltuples, p.relpages \
             FROM pg_catalog.pg_class p WHERE p.oid = parts.oid AND p.relkind <> 'p' \
             OFFSET 0) p), \
         fires AS (SELECT pg_catalog.string_agg(DISTINCT \
             pg_catalog.quote_ident(g.tgname::text), ', ') AS names \
           FROM rel CROSS JOIN LATERAL ({tree}) tree \
             JOIN pg_catalog.pg_trigger g ON g.tgrelid = tree.oid \
           WHERE NOT g.tgisinternal AND {TRIGGER_FIRES} AND g.tgtype & 32 <> 0), \
         quiet AS (SELECT {quiet} AS delete FROM rel) \
         SELECT c.relkind::text, estimate.n, a.attname::text, \
           pg_catalog.format_type(a.atttypid, a.atttypmod), {generated}, \
           (SELECT pg_catalog.string_agg(t.typtype::text || ',' || t.oid::text || ',' || \
              (t.oid < 16384)::text || ',' || (t.typlen = -1 AND t.typelem <> 0)::text || ',' || \
              r.elem::text || ',' || (t.typsend <> 0 AND t.typreceive <> 0)::text || ',' || \
              r.path, ' ' ORDER BY r.path, t.oid) \
            FROM {items} CROSS JOIN LATERAL (SELECT t.* FROM pg_catalog.pg_type t \
              WHERE t.oid = r.typ OFFSET 0) t), \
           coalesce((SELECT d.objid::text FROM pg_catalog.pg_depend d \
             JOIN pg_catalog.pg_class s ON s.oid = d.objid AND s.relkind = 'S' \
            WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass \
              AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass \
              AND d.refobjid = c.oid AND d.refobjsubid = a.attnum AND d.deptype IN ('a', 'i') \
            ORDER BY d.objid LIMIT 1), \
           (SELECT d.refobjid::text FROM pg_catalog.pg_attrdef ad \
             JOIN pg_catalog.pg_depend d ON d.objid = ad.oid \
              AND d.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass \
              AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass \
             JOIN pg_catalog.pg_class s ON s.oid = d.refobjid AND s.relkind = 'S' \
            WHERE ad.adrelid = c.oid AND ad.adnum = a.attnum ORDER BY d.refobjid LIMIT 1){ancestors}), \
           CASE WHEN a.atthasdef OR {identity} \
               OR EXISTS (SELECT 1 FROM {items} JOIN pg_catalog.pg_type d ON d.oid = r.typ \
                 WHERE r.path ~ '^(/b)*$' AND d.typtype = 'd' \
                   AND d.typdefaultbin IS NOT NULL) THEN 't' \
             WHEN a.attnotnull OR EXISTS (SELECT 1 FROM {items} \
                 JOIN pg_catalog.pg_type d ON d.oid = r.typ \
                 WHERE r.path ~ '^(/b)*$' AND d.typtype = 'd' \
                   AND d.typnotnull) THEN 'f' \
             WHEN EXISTS (SELECT 1 FROM {items} JOIN pg_catalog.pg_type d ON d.oid = r.typ \
                 WHERE r.path ~ '^(/b)*$' AND d.typtype = 'd' \
                   AND EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k \
                     WHERE k.contypid = d.oid)) THEN 'c' \
             ELSE 't' END, \
           (SELECT count(*) FROM pg_catalog.pg_inherits i \
             WHERE i.inhparent = c.oid AND c.relkind = 'r'), \
           (SELECT pg_catalog.string_agg(r.path || chr(29) || \
              (SELECT pg_catalog.string_agg(f.attname::text, chr(31) ORDER BY f.attnum) \
                FROM pg_catalog.pg_attribute f \
               WHERE f.attrelid = t.typrelid AND f.attnum > 0 AND NOT f.attisdropped), \
              chr(30) ORDER BY r.path) \
            FROM {items} CROSS JOIN LATERAL (SELECT t.* FROM pg_catalog.pg_type t \
              WHERE t.oid = r.typ OFFSET 0) t \
            WHERE t.typtype = 'c'), \
           c.relkind <> 'v' OR EXISTS (SELECT FROM pg_catalog.pg_trigger g \
             WHERE g.tgrelid = c.oid AND g.tgtype & 69 = 69), \
           (SELECT pg_catalog.string_agg(r.path || ' ' || \
              pg_catalog.format_type(r.typ, r.md), ', ' ORDER BY r.path) \
            FROM {items} WHERE r.md <> -1), \
           (SELECT pg_catalog.string_agg(DISTINCT pg_catalog.quote_ident(g.tgname::text) || \
              CASE g.tgenabled WHEN 'A' THEN '{ENABLED_ALWAYS}' \
                WHEN 'R' THEN '{ENABLED_REPLICA}' ELSE '' END, ', ') \
            FROM parts JOIN pg_catalog.pg_trigger g ON g.tgrelid = parts.oid \
            WHERE NOT g.tgisinternal AND {TRIGGER_FIRES} AND g.tgtype & 68 = 4), \
           (SELECT pg_catalog.quote_ident(n.nspname) FROM pg_catalog.pg_type t \
              JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace \
            WHERE t.oid = a.atttypid AND n.nspname <> 'pg_catalog'), \
           {orders}, fires.names, quiet.delete::text, \
           (SELECT r.typ::text || ' ' || pg_catalog.format_type(r.typ, \
              CASE WHEN r.path IN ('', '/e') THEN a.atttypmod ELSE r.md END) \
              || CASE WHEN r.path ~ '/e' THEN '[]' ELSE '' END \
            FROM {items} WHERE r.path ~ '^(/b)*(/e(/b)*)?$' \
            ORDER BY pg_catalog.length(r.path) DESC LIMIT 1), \
           (SELECT pg_catalog.string_agg(r.path || chr(29) || \
              (SELECT pg_catalog.string_agg(e.enumlabel::text, chr(31) ORDER BY e.enumsortorder) \
                FROM pg_catalog.pg_enum e WHERE e.enumtypid = r.typ), chr(30) ORDER BY r.path) \
            FROM {items} \
              WHERE EXISTS (SELECT FROM pg_catalog.pg_enum e WHERE e.enumtypid = r.typ)), \
           (SELECT pg_catalog.string_agg(DISTINCT checks.def, chr(31)) FROM ( \
              SELECT CASE WHEN k.oid IS NULL THEN 'NOT NULL' \
                  ELSE pg_catalog.pg_get_constraintdef(k.oid) END AS def \
                FROM {items} JOIN pg_catalog.pg_type d ON d.oid = r.typ \
                LEFT JOIN pg_catalog.pg_constraint k ON k.contypid = d.oid AND k.contype = 'c' \
               WHERE r.path ~ '^(/b)*(/e(/b)*)?$' AND d.typtype = 'd' \
                 AND (k.oid IS NOT NULL OR d.typnotnull) \
              UNION SELECT 'NOT NULL' FROM {items} JOIN pg_catalog.pg_type d ON d.oid = r.typ \
               WHERE r.path ~ '^(/b)*(/e(/b)*)?$' AND d.typtype = 'd' \
                 AND d.typnotnull) checks), \
           (SELECT CASE WHEN {SYSTEM_SCHEMA} THEN 'system' \
               WHEN c.relkind = 'm' AND NOT c.relispopulated THEN 'unpopulated' END \
             FROM pg_catalog.pg_namespace n WHERE n.oid = c.relnamespace), \
           (SELECT pg_catalog.string_agg(DISTINCT \
              pg_catalog.quote_ident(w.rulename::text), ', ') \
            FROM parts JOIN pg_catalog.pg_rewrite w ON w.ev_class = parts.oid \
            WHERE w.ev_type = '3' AND w.ev_enabled <> 'D') \
         FROM rel JOIN pg_catalog.pg_class c ON c.oid = rel.oid CROSS JOIN estimate \
           CROSS JOIN fires CROSS JOIN quiet \
         LEFT JOIN pg_catalog.pg_attribute a \
           ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
         LEFT JOIN byatt b ON b.attnum = a.attnum \
         ORDER BY a.attnum"
    )
}

/// A condition on a `pg_namespace n` row: it is a schema of the server's own catalogs
/// (`pg_catalog`, `information_schema`, a `pg_toast` one), which copyman never writes into
/// ([`Relation::system`]; [`is_system_schema`] says it of a name).
pub const SYSTEM_SCHEMA: &str =
    "(n.nspname IN ('pg_catalog', 'information_schema') OR n.nspname ~ '^pg_toast')";

/// Whether `schema` is one of the server's own catalogs' ([`SYSTEM_SCHEMA`]).
///
/// ```
/// use copyman_job::sql::is_system_schema;
///
/// assert!(is_system_schema("pg_catalog") && is_system_schema("pg_toast_temp_3"));
/// assert!(!is_system_schema("public") && !is_system_schema("pg_temp_3"));
/// ```
pub fn is_system_schema(schema: &str) -> bool {
    matches!(schema, "pg_catalog" | "information_schema") || schema.starts_with("pg_toast")
}

/// What [`Relation::insert_triggers`] says after the name of a trigger enabled `ALWAYS`, which
/// runs under every `session_replication_role`.
pub const ENABLED_ALWAYS: &str = " (enabled always)";
/// What it says after the name of a trigger enabled `REPLICA`, which runs under
/// `session_replication_role = replica` only.
pub const ENABLED_REPLICA: &str = " (enabled replica)";

/// A condition on a `pg_trigger g` row: the trigger fires in the session that asks, enabled
/// always (`A`) or as its `session_replication_role` says (`O` under `origin` and `local`, `R`
/// under `replica`: a CONN's `options='-c session_replication_role=replica'` turns the ordinary
/// ones off, as pg_restore's `--disable-triggers` users and pgcopydb do).
pub const TRIGGER_FIRES: &str = "g.tgenabled::pg_catalog.text IN ('A', \
     CASE pg_catalog.current_setting('session_replication_role') WHEN 'replica' THEN 'R' \
     ELSE 'O' END)";

/// The catalog query's column that says, for each range type a column's values are made of (at
/// its path: in a multirange, one that ends in `/m`), its subtype and what orders its values: the collation
/// (`C` for C and POSIX; else its provider, `c` libc or `i` ICU, and its locale — the default
/// one the database's), an enum's labels in their order, and the operator class. The ICU
/// locale columns are from PostgreSQL 15 (`datlocale`, `colllocale` from 17).
fn range_orders(version: u32) -> String {
    let (db_provider, db_locale, coll_locale) = match version {
        170_000.. => ("d.datlocprovider::text", "d.datlocale", "l.colllocale"),
        150_000.. => (
            "d.datlocprovider::text",
            "d.daticulocale",
            "l.colliculocale",
        ),
        _ => ("'c'", "NULL::text", "NULL::text"),
    };
    format!(
        "(SELECT pg_catalog.string_agg(r.path || chr(29) || \
            (SELECT pg_catalog.format_type(g.rngsubtype, NULL) || chr(31) || \
               pg_catalog.concat_ws(', ', \
               'collation ' || CASE WHEN g.rngcollation = 0 THEN NULL \
                 WHEN g.rngcollation = 100 THEN (SELECT CASE \
                   WHEN {db_provider} = 'c' AND d.datcollate::text IN ('C', 'POSIX') THEN 'C' \
                   ELSE {db_provider} || ':' || d.datcollate::text || ':' || \
                     coalesce({db_locale}, '') END \
                   FROM pg_catalog.pg_database d \
                   WHERE d.datname = pg_catalog.current_database()) \
                 ELSE (SELECT CASE \
                   WHEN l.collprovider = 'c' AND l.collcollate::text IN ('C', 'POSIX') THEN 'C' \
                   ELSE l.collprovider::text || ':' || coalesce(l.collcollate::text, '') || ':' \
                     || coalesce({coll_locale}, '') END \
                   FROM pg_catalog.pg_collation l WHERE l.oid = g.rngcollation) END, \
               'labels (' || (SELECT pg_catalog.string_agg(e.enumlabel::text, ', ' \
                   ORDER BY e.enumsortorder) \
                 FROM pg_catalog.pg_enum e WHERE e.enumtypid = g.rngsubtype) || ')', \
               'operator class ' || (SELECT o.opcname::text FROM pg_catalog.pg_opclass o \
                 WHERE o.oid = g.rngsubopc)) \
             FROM pg_catalog.pg_range g WHERE g.rngtypid = r.typ), \
            chr(30) ORDER BY r.path) \
          FROM {ITEMS} JOIN pg_catalog.pg_type t ON t.oid = r.typ \
          WHERE t.typtype = 'r')"
    )
}

/// A column, as a server's catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Its name.
    pub name: Ident,
    /// `format_type(atttypid, atttypmod)`: `numeric(12,2)`, `timestamp with time zone`.
    pub type_name: String,
    /// A generated column (`GENERATED ALWAYS AS … STORED`): never copied into.
    pub generated: bool,
    /// A generated column's expression, as its server deparses it (`(a * 2)`).
    pub generation: Option<String>,
    /// What binary COPY needs to match besides the type's name, `None` when copyman does not
    /// trust the binary format of this type between servers (see [`binary_key`]).
    pub binary: Option<String>,
    /// Its own type has binary send and receive functions. Binary `COPY … FROM` looks the
    /// receive function up for every column of its table, copied or not (an `isbn13` column
    /// left to its default fails it).
    pub binary_input: bool,
    /// The OID of the sequence the column's values come from: the one it owns (`serial`, or
    /// `GENERATED … AS IDENTITY`, as `pg_get_serial_sequence` finds it), else the one its
    /// default takes `nextval` of (a sequence shared by tables, a partition's or inheritance
    /// child's copy of its parent's default), else, for a partition, its partitioned
    /// ancestor's identity: carried forward after a copy ([`crate::sequences`]).
    pub sequence: Option<u32>,
    /// It takes NULL but for its domain's CHECK constraints, which may or may not accept NULL:
    /// [`crate::plan::lookup`] asks its server (`SELECT NULL::type`) and sets
    /// [`Column::fills_itself`] by the answer.
    pub null_checked: bool,
    /// A row that does not give it a value still gets one: it has a default (its own or its
    /// domain's, or is an identity column), or it takes NULL (not under NOT NULL, nor of a
    /// domain with NOT NULL or a CHECK: COPY gives an omitted column NULL without checking its
    /// domain). A destination may have such columns the source has not.
    pub fills_itself: bool,
    /// Each composite type its values are made of, where in the value (the path of
    /// [`binary_key`]'s `reached`) with its fields' names in order: COPY fills a composite's
    /// fields by position, in text as in binary.
    pub composites: Vec<(String, Vec<String>)>,
    /// Each range type its values are made of (a range's, a multirange's ranges' at a path
    /// ending in `/m`), where in the value, with its subtype and what orders the subtype's
    /// values there (collation, an enum's labels, operator class), `\u{1f}` between them: range
    /// input checks its bounds by it, multirange input sorts and merges its ranges by it.
    pub range_orders: Vec<(String, String)>,
    /// The parts of its type that carry modifiers of their own, each with where it is in the value:
    /// a domain's base type (`/b numeric(12,4)`), a composite's fields (`/1 timestamp(0)`). Two
    /// types of one name whose parts differ here round or cut values otherwise.
    pub parts: String,
    /// The OID of every type its values are made of: its own, a domain's base, an array's
    /// element, a range's subtype, a composite's fields' (what a setting that changes how a
    /// `date` or `money` is read reaches, wherever it is in the value).
    pub reached: Vec<u32>,
    /// Each type its values are made of, where in the value ([`Leaf`]): what a destination
    /// reads at a place from what the source writes at the same place (a composite's text
    /// field into money, beside a number).
    pub leaves: Vec<Leaf>,
    /// Its type once domains are seen through: the innermost base type's OID and its name with
    /// the modifier that applies (`numeric(10,2)` for a domain over it; the column's own type
    /// when it is no domain); an array's, its element's so seen, with `[]` (`integer[]` for an
    /// array of a domain over `integer`, and for `integer[]`). `None` where the catalog did not
    /// say.
    pub base: Option<(u32, String)>,
    /// Each enum type its values are made of, where in the value (a [`Leaf`]'s path), with
    /// its labels: a destination whose enum lacks a label the source's has fails a row that
    /// holds it (22P02).
    pub enums: Vec<(String, Vec<String>)>,
    /// What the domains its type is (a domain, a domain it is over, its elements' domain in an
    /// array: types50 F5) hold each value to, as its server deparses it: each CHECK (`CHECK
    /// (VALUE > 0)`) and `NOT NULL`. A destination whose domain of one name checks more refuses
    /// rows the source holds (23514).
    pub domain_checks: Vec<String>,
}

/// One type a column's values are made of, and where in the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leaf {
    /// Where: empty for the value itself, `/2` a composite's second field, `/e` an array's
    /// element, `/s` a range's subtype, `/m` a multirange's range; a domain's base type is where
    /// its domain is (`/b` left out), so that a domain over money here and money there meet.
    pub at: String,
    /// The type's OID.
    pub oid: u32,
    /// It is an array type.
    pub array: bool,
}

impl Leaf {
    /// The leaves of `reached` (the catalog query's list, see [`binary_key`]).
    fn of(reached: &str) -> Vec<Self> {
        reached
            .split_whitespace()
            .filter_map(|item| {
                let parts: Vec<&str> = item.split(',').collect();
                let path = parts.get(6).copied().unwrap_or("");
                Some(Self {
                    at: path
                        .split('/')
                        .filter(|p| *p != "b")
                        .collect::<Vec<_>>()
                        .join("/"),
                    oid: parts.get(1)?.parse().ok()?,
                    array: parts.get(3) == Some(&"true"),
                })
            })
            .collect()
    }
}

impl Column {
    /// Whether it and `other` hold one built-in type with one modifier once domains are seen
    /// through (`integer` and a domain over `integer`, two domains over `numeric(10,2)`): text
    /// and binary input alike take the other's values as they are, and only a domain's
    /// constraints apply (they fail loudly).
    pub fn same_base(&self, other: &Self) -> bool {
        match (&self.base, &other.base) {
            (Some((oid, name)), Some(theirs)) => {
                *oid < 16384 && (oid, name) == (&theirs.0, &theirs.1)
            }
            _ => false,
        }
    }

    /// Its type's name as its domains' base type ([`Column::base`]'s), else its own.
    pub fn base_name(&self) -> &str {
        self.base.as_ref().map_or(&self.type_name, |(_, name)| name)
    }

    /// Its type's OID (the first of [`Column::reached`]).
    pub fn type_oid(&self) -> Option<u32> {
        self.reached.first().copied()
    }

    /// Whether its values hold an array somewhere (its own type, a domain's base, a
    /// composite's field): text read into it reads an unquoted `NULL` element as the reader's
    /// `array_nulls` says.
    pub fn holds_array(&self) -> bool {
        self.leaves.iter().any(|l| l.array)
    }

    /// Whether its values hold one of the built-in types `oids` anywhere (a domain over it, an
    /// array or range of it, a composite with such a field).
    pub fn holds(&self, oids: &[u32]) -> bool {
        self.reached.iter().any(|oid| oids.contains(oid))
    }
}

/// A column's type as `format_type` printed it, with its schema (`schema`, quoted as needed;
/// `None` for `pg_catalog`'s) in front where the session's search_path left it out: `mood` in
/// one database and `public.mood` in another (whose search_path lacks `public`) are one name.
///
/// ```
/// use copyman_job::sql::qualified_type;
///
/// assert_eq!(qualified_type("mood[]".into(), Some("public".into())), "public.mood[]");
/// assert_eq!(qualified_type("public.mood".into(), Some("public".into())), "public.mood");
/// assert_eq!(qualified_type("numeric(12,2)".into(), None), "numeric(12,2)");
/// ```
pub fn qualified_type(type_name: String, schema: Option<String>) -> String {
    match schema {
        Some(schema) if !type_name.starts_with(&format!("{schema}.")) => {
            format!("{schema}.{type_name}")
        }
        _ => type_name,
    }
}

/// The SQL expression naming the relation `class` (an alias of `pg_class`) of the schema
/// `namespace` (an alias of `pg_namespace`) as [`TableName`] spells it, `"schema"."name"`, so a
/// message names a table the server found as it names the tables the user gave.
///
/// ```
/// use copyman_job::sql::quoted_relation;
///
/// assert!(quoted_relation("n", "c").contains("n.nspname"));
/// ```
pub fn quoted_relation(namespace: &str, class: &str) -> String {
    format!(
        "'\"' || pg_catalog.replace({namespace}.nspname::pg_catalog.text, '\"', '\"\"') || '\".\"' \
         || pg_catalog.replace({class}.relname::pg_catalog.text, '\"', '\"\"') || '\"'"
    )
}

/// A relation, as a server's catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    /// `pg_class.relkind`: `r` a table, `p` partitioned, `v` a view, `f` foreign, …
    pub kind: String,
    /// About how many rows it holds, when the catalog can tell.
    pub estimate: Option<u64>,
    /// Its stored columns, in order.
    pub columns: Vec<Column>,
    /// How many tables inherit from it (`INHERITS`; partitions are not counted): a table's
    /// COPY reads its own rows, not theirs.
    pub children: u64,
    /// A view with an `INSTEAD OF INSERT` row trigger, which a `COPY … FROM` can write through
    /// (`true` for every relation that is not a view).
    pub view_takes_inserts: bool,
    /// The triggers that fire on INSERT in the session that asked, as its
    /// `session_replication_role` says (row or statement, BEFORE or AFTER, a constraint
    /// trigger; not INSTEAD OF, not disabled, not the server's own for foreign keys) on it or
    /// its partitions, by name, comma-separated, each enabled `ALWAYS` or `REPLICA` said so
    /// ([`ENABLED_ALWAYS`], [`ENABLED_REPLICA`]): they run for every row a `COPY … FROM`
    /// stores.
    pub insert_triggers: Option<String>,
    /// The triggers that fire on `TRUNCATE` of it in such a session, by name, comma-separated:
    /// they run as `--truncate` empties it.
    pub truncate_triggers: Option<String>,
    /// Whether emptying it with a `DELETE` touches nothing but its rows
    /// ([`delete_is_quiet_query`]).
    pub quiet_delete: bool,
    /// It is one of its server's own catalogs (in `pg_catalog`, `information_schema` or a
    /// `pg_toast` schema).
    pub system: bool,
    /// Its rows can be read: `false` for a materialized view not populated yet (`WITH NO
    /// DATA`), whose COPY fails (55000) until it is refreshed.
    pub populated: bool,
    /// The rules on INSERT of it or its partitions, by name, comma-separated: a `COPY … FROM`
    /// runs none of them.
    pub insert_rules: Option<String>,
}

impl Relation {
    /// Reads the rows of [`catalog_query`].
    pub fn from_rows(rows: &[Vec<Option<String>>]) -> Result<Self, String> {
        let field = |row: &[Option<String>], i: usize| row.get(i).cloned().flatten();
        let first = rows
            .first()
            .ok_or_else(|| "the catalog has no such relation".to_owned())?;
        let kind = field(first, 0).ok_or_else(|| "the catalog gave no relkind".to_owned())?;
        let estimate = field(first, 1)
            .and_then(|n| n.parse::<i64>().ok())
            .filter(|&n| n > 0)
            .map(i64::unsigned_abs);
        let mut columns = Vec::new();
        for row in rows {
            let Some(name) = field(row, 2) else { continue };
            columns.push(Column {
                name: Ident(name),
                type_name: qualified_type(field(row, 3).unwrap_or_default(), field(row, 13)),
                generated: field(row, 4).is_some(),
                generation: field(row, 4),
                binary: binary_key(&field(row, 5).unwrap_or_default()),
                // The column's own type comes first, at the empty path.
                binary_input: field(row, 5).is_some_and(|reached| {
                    reached
                        .split_whitespace()
                        .next()
                        .is_some_and(|own| own.split(',').nth(5) == Some("true"))
                }),
                reached: field(row, 5)
                    .unwrap_or_default()
                    .split_whitespace()
                    .filter_map(|item| item.split(',').nth(1)?.parse().ok())
                    .collect(),
                leaves: Leaf::of(&field(row, 5).unwrap_or_default()),
                sequence: field(row, 6).and_then(|oid| oid.parse().ok()),
                fills_itself: field(row, 7).as_deref() == Some("t"),
                null_checked: field(row, 7).as_deref() == Some("c"),
                parts: field(row, 11).unwrap_or_default(),
                composites: field(row, 9)
                    .unwrap_or_default()
                    .split('\u{1e}')
                    .filter_map(|c| {
                        let (path, fields) = c.split_once('\u{1d}')?;
                        Some((
                            path.to_owned(),
                            fields.split('\u{1f}').map(str::to_owned).collect(),
                        ))
                    })
                    .collect(),
                range_orders: field(row, 14)
                    .unwrap_or_default()
                    .split('\u{1e}')
                    .filter_map(|c| {
                        let (path, order) = c.split_once('\u{1d}')?;
                        Some((path.to_owned(), order.to_owned()))
                    })
                    .collect(),
                base: field(row, 17).and_then(|base| {
                    let (oid, name) = base.split_once(' ')?;
                    Some((oid.parse().ok()?, name.to_owned()))
                }),
                enums: field(row, 18)
                    .unwrap_or_default()
                    .split('\u{1e}')
                    .filter_map(|e| {
                        let (path, labels) = e.split_once('\u{1d}')?;
                        let at = path.split('/').filter(|p| *p != "b");
                        Some((
                            at.collect::<Vec<_>>().join("/"),
                            labels.split('\u{1f}').map(str::to_owned).collect(),
                        ))
                    })
                    .collect(),
                domain_checks: field(row, 19)
                    .map(|checks| checks.split('\u{1f}').map(str::to_owned).collect())
                    .unwrap_or_default(),
            });
        }
        let children = field(first, 8).and_then(|n| n.parse().ok()).unwrap_or(0);
        Ok(Self {
            kind,
            estimate,
            columns,
            children,
            view_takes_inserts: field(first, 10).as_deref() != Some("f"),
            insert_triggers: field(first, 12),
            truncate_triggers: field(first, 15),
            quiet_delete: field(first, 16).as_deref() == Some("true"),
            system: field(first, 20).as_deref() == Some("system"),
            populated: field(first, 20).as_deref() != Some("unpopulated"),
            insert_rules: field(first, 21),
        })
    }

    /// [`types_unchanged`] for `columns` of it, named `table` on its server (of
    /// `server_version_num`, which says whether a view may be locked: [`lockable`]), each with
    /// its type there: what a binary copy's transaction runs before its COPY.
    pub fn types_unchanged(
        &self,
        table: &TableName,
        hold: Hold,
        columns: &[Ident],
        server_version_num: Option<u32>,
    ) -> Option<String> {
        if !lockable(&self.kind, server_version_num) {
            return None;
        }
        let typed: Vec<(&Ident, u32)> = columns
            .iter()
            .filter_map(|c| {
                let column = self.columns.iter().find(|k| k.name == *c)?;
                Some((c, column.type_oid()?))
            })
            .collect();
        types_unchanged(table, &self.kind, hold, &typed)
    }

    /// Why its `COPY n` would not count the rows it stores, when it would not: a view takes rows
    /// through its INSTEAD OF INSERT trigger, and its server counts every row handed to the
    /// trigger, stored or not (a BEFORE trigger that skips a row on a table lowers the count; an
    /// INSTEAD OF trigger that skips it does not). copyman then cannot tell that every row
    /// arrived: refused unless the caller lets counts go unchecked.
    pub fn counts_unchecked(&self) -> Option<&'static str> {
        (self.kind == "v" && self.view_takes_inserts).then_some(
            "is a view there: its COPY counts the rows it hands to its INSTEAD OF INSERT \
             trigger, not the rows the trigger stores, so a row it skips would go unnoticed",
        )
    }

    /// Why a copy does not write into it, as a destination (`"is a materialized view there:
    /// COPY cannot write into it"`): what its server would refuse (42809) at the COPY's start,
    /// told while planning, before anything is copied anywhere. A table (ordinary,
    /// partitioned, foreign) and a view with an `INSTEAD OF INSERT` trigger take rows — but
    /// not a server's own catalog, which a superuser's COPY writes into (names52 F1: a
    /// catalog's rows copied into another server's catalog broke every DDL there, exit 0; a
    /// table named as one of them without its schema is the catalog, `pg_catalog` being
    /// first on every search path).
    pub fn copy_in_refusal(&self) -> Option<String> {
        if self.system {
            return Some(
                "is a system catalog there: copyman does not write into a server's own \
                 catalogs (a table of yours of that name, in another schema, is named with its \
                 schema, e.g. public.NAME: unnamed, pg_catalog is searched first unless the \
                 search_path puts it later)"
                    .to_owned(),
            );
        }
        let what = self.refuses_copy_in()?;
        Some(format!("is {what} there: COPY cannot write into it"))
    }

    /// Why a copy cannot read it, as the source: an index, a composite type or a TOAST table
    /// (names52 F4: planned as a table, then refused by the source, or blamed on a
    /// destination), or a materialized view not populated (names52 F2: a dry run passed it,
    /// the run failed at its COPY, 55000). With the SQLSTATE its COPY would fail with.
    pub fn copy_out_refusal(&self) -> Option<(&'static str, String)> {
        let what = match self.kind.as_str() {
            "m" if !self.populated => {
                return Some((
                    "55000",
                    "is a materialized view that has not been populated on the source: \
                     REFRESH MATERIALIZED VIEW it there first"
                        .to_owned(),
                ));
            }
            "i" | "I" => "an index",
            "c" => "a composite type",
            "t" => "a TOAST table",
            _ => return None,
        };
        Some((
            "42809",
            format!(
                "is {what} on the source, not a table copyman copies: name a table, a view, a \
                 materialized view or a foreign table"
            ),
        ))
    }

    /// What it is when a `COPY … FROM` cannot write into it ("a materialized view"), as its
    /// server would refuse it (42809) at the COPY's start ([`Relation::copy_in_refusal`]). A
    /// table (ordinary, partitioned, foreign) and a view with an `INSTEAD OF INSERT` trigger
    /// take rows.
    fn refuses_copy_in(&self) -> Option<String> {
        let what = match self.kind.as_str() {
            "r" | "p" | "f" => return None,
            "v" if self.view_takes_inserts => return None,
            "v" => "a view without an INSTEAD OF INSERT trigger",
            "m" => "a materialized view",
            "S" => "a sequence",
            "c" => "a composite type",
            "i" | "I" => "an index",
            other => return Some(format!("a relation of kind '{other}'")),
        };
        Some(what.to_owned())
    }

    /// What it is when a `COPY name TO STDOUT` cannot read it ("a partitioned table"), as its
    /// server would refuse it (42809) at the COPY's start: only a plain table can be read so,
    /// the others through a query (`COPY (SELECT * FROM name) TO STDOUT`).
    pub fn refuses_copy_out(&self) -> Option<String> {
        let what = match self.kind.as_str() {
            "r" => return None,
            "p" => "a partitioned table",
            "v" => "a view",
            "m" => "a materialized view",
            "f" => "a foreign table",
            "S" => "a sequence",
            other => return Some(format!("a relation of kind '{other}'")),
        };
        Some(what.to_owned())
    }

    /// What it is when it takes rows but cannot be emptied first (`--truncate`): a view, which
    /// takes them through its `INSTEAD OF INSERT` trigger while `TRUNCATE` takes tables only.
    pub fn refuses_emptying(&self) -> Option<&'static str> {
        (self.kind == "v").then_some("a view")
    }

    /// A column by name.
    pub fn column(&self, name: &Ident) -> Option<&Column> {
        self.columns.iter().find(|c| &c.name == name)
    }
}

/// The built-in OID alias types: `regproc`, `regprocedure`, `regoper`, `regoperator`,
/// `regclass`, `regtype`, `regconfig`, `regdictionary`, `regnamespace`, `regrole`,
/// `regcollation` (their binary form is the OID; their text form, the name).
const OID_ALIASES: [&str; 11] = [
    "24", "2202", "2203", "2204", "2205", "2206", "3734", "3769", "4089", "4096", "4191",
];

/// Whether binary COPY can carry a column's values between servers, and what must match for it
/// to: `None` when copyman does not trust it; else a key that must be equal on every side (with
/// the type's name).
///
/// `reached` lists the types a column's values are made of (the type, a domain's base types, an
/// array's element types, a composite type's fields' types), each as
/// `typtype,oid,builtin,is_array,as_element,binary_io,path` (`path`: where in the value, `/b` a
/// domain's base, `/e` an array's element, `/s` a range's subtype, `/m` a multirange's range,
/// `/N` a composite's field N; empty at the top):
/// * a type without binary send and receive functions (`aclitem`) cannot be sent in binary;
/// * the OID alias types (`regclass`, `regtype`, `regproc`, …) are sent as the bare OID, which
///   names another object, or none, on another server: never binary;
/// * other built-in types (OID below 16384, the same on every server) are in the key: a domain
///   of one name over `int8` here and `float8` there, or a composite whose field is such a
///   domain, must not be read bit for bit as the other;
/// * enums are sent as their labels, domains as their base type, ranges as their bounds in
///   their subtype's form (which the key holds);
/// * a composite type's binary form carries its fields' type OIDs and an array's its element
///   type's OID, which the receiving server checks against its own: those OIDs must be equal;
/// * enums, domains, ranges and multiranges are marked in the key where they are in the value
///   (`d@`, `r@/b`): a type of one name that is an enum here and a range over an enum there is
///   not read bit for bit as the other;
/// * other user-defined types (extension base types, pseudo-types) have a binary form copyman
///   cannot vouch for: text.
pub fn binary_key(reached: &str) -> Option<String> {
    let mut oids = Vec::new();
    for item in reached.split_whitespace() {
        let parts: Vec<&str> = item.split(',').collect();
        let (typtype, oid, builtin, array, elem, binary_io, path) = match parts[..] {
            [typtype, oid, builtin, array, elem, binary_io] => {
                (typtype, oid, builtin, array, elem, binary_io, "")
            }
            [typtype, oid, builtin, array, elem, binary_io, path] => {
                (typtype, oid, builtin, array, elem, binary_io, path)
            }
            _ => return None,
        };
        let (builtin, array, elem) = (builtin == "true", array == "true", elem == "true");
        if typtype == "p" || binary_io != "true" || (builtin && OID_ALIASES.contains(&oid)) {
            return None;
        }
        // A string is its bytes in text, varchar and char alike (a domain over one here and
        // another there sends the same), except where the receiver checks the OID itself (an
        // array's element, a composite's field).
        let oid = if builtin && !elem && matches!(oid, "1042" | "1043") {
            "25"
        } else {
            oid
        };
        if builtin || typtype == "c" || elem {
            // Where in the value it is, too: a composite of two domain fields over int4 and
            // float4 is not one whose fields are the other way round.
            oids.push(if path.is_empty() {
                oid.to_owned()
            } else {
                format!("{oid}@{path}")
            });
            continue;
        }
        match typtype {
            // An enum is sent as its label, a domain as its base type, a range as its flags and
            // its bounds in its subtype's form (which the key holds, at `/s`), a multirange as
            // its ranges (at `/m`): what kind of type stands where is in the key (an enum here
            // and a range over an enum there send other bytes).
            "e" | "d" | "r" | "m" => oids.push(format!("{typtype}@{path}")),
            "b" if array => {}
            _ => return None,
        }
    }
    oids.sort();
    oids.dedup();
    Some(oids.join(" "))
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
    fn control_characters_are_shown_as_unicode_escapes_and_read_back() {
        let t = TableName::from_parts(Some("s\\".into()), "new\nline \u{1b}[0m \"q\"".into());
        let shown = t.to_string();
        assert_eq!(shown, r#""s\".U&"new\000aline \001b[0m ""q""""#);
        assert_eq!(TableName::parse(&shown).unwrap(), t);
        // A regclass input does not read U&: the parts quoted, their characters as they are.
        assert_eq!(
            t.regclass_literal(),
            "E'\"s\\\\\".\"new\nline \u{1b}[0m \"\"q\"\"\"'"
        );
    }

    /// A name holding a space, unquoted, is refused with its parts quoted (types62 F5).
    #[test]
    fn a_name_holding_a_space_is_shown_quoted() {
        let said = TableName::parse("Sales Dept.Quarter Q1")
            .unwrap_err()
            .to_string();
        assert!(
            said.contains(r#"written in double quotes: '"Sales Dept"."Quarter Q1"'"#),
            "{said}"
        );
        let said = parse_columns("id, two words").unwrap_err().to_string();
        assert!(said.contains(r#"'"id","two words"'"#), "{said}");
        // Not where the next character starts no name, nor inside quotes.
        for other in ["items; DROP TABLE x", r#""a b" c"#] {
            let said = TableName::parse(other).unwrap_err().to_string();
            assert!(!said.contains("double quotes"), "{other}: {said}");
        }
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
        for twice in ["id,id", "id, ID", r#"id,"id""#] {
            let err = parse_columns(twice).unwrap_err().to_string();
            assert!(err.contains(r#"column "id" is named twice"#), "{err}");
        }
        assert!(parse_columns("a b").is_err());
        assert!(parse_columns("").is_err());
        // Unicode escapes, as PostgreSQL reads them; what a suggestion writes reads back.
        let columns = parse_columns(r#"U&"e\000af", u&"d\0061t\+000061 \\""#).unwrap();
        assert_eq!(columns[0].0, "e\nf");
        assert_eq!(columns[1].0, "data \\");
        for bad in [
            r#"U&"\00"#,
            r#"U&"\zzzz""#,
            r#"U&"\d800""#,
            r#"U&"\+11ffff""#,
        ] {
            assert!(parse_columns(bad).is_err(), "{bad}");
        }
        for name in ["e\nf", "tab\there \\ \"q\"", "Plain", "x\u{7f}"] {
            let written = copyman_core::file_start::column_name(name);
            assert!(!written.contains(char::is_control), "{written}");
            assert_eq!(parse_columns(&written).unwrap()[0].0, name, "{written}");
        }
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
            target: None,
            columns: Vec::new(),
            condition: None,
            header: false,
            encoding: None,
        };
        assert_eq!(
            copy.copy_out(Format::Binary, false, "r"),
            r#"COPY "s"."T" TO STDOUT (FORMAT binary)"#
        );
        assert_eq!(
            copy.copy_out(Format::Text, true, "p"),
            r#"COPY (SELECT * FROM "s"."T") TO STDOUT (FORMAT text)"#
        );
        assert_eq!(
            copy.copy_out(Format::Text, true, "r"),
            r#"COPY (SELECT * FROM ONLY "s"."T") TO STDOUT (FORMAT text)"#
        );
        assert_eq!(
            copy.copy_in(Format::Text),
            r#"COPY "s"."T" FROM STDIN (FORMAT text)"#
        );
        assert_eq!(copy.truncate("r"), r#"TRUNCATE ONLY "s"."T""#);
        copy.columns = parse_columns("a, B").unwrap();
        copy.condition = Some("a > 1".into());
        copy.header = true;
        assert_eq!(
            copy.copy_out(Format::Csv, false, ""),
            r#"COPY (SELECT "a", "b" FROM "s"."T" WHERE (a > 1)) TO STDOUT (FORMAT csv, HEADER)"#
        );
        assert_eq!(
            copy.copy_in(Format::Csv),
            r#"COPY "s"."T" ("a", "b") FROM STDIN (FORMAT csv, HEADER)"#
        );
        copy.target = Some(table("other"));
        assert_eq!(
            copy.copy_in(Format::Text),
            r#"COPY "other" ("a", "b") FROM STDIN (FORMAT text, HEADER)"#
        );
        assert_eq!(
            copy.copy_in(Format::Binary),
            r#"COPY "other" ("a", "b") FROM STDIN (FORMAT binary)"#
        );
        copy.encoding = Some("LATIN1".into());
        assert_eq!(
            copy.copy_in(Format::Csv),
            r#"COPY "other" ("a", "b") FROM STDIN (FORMAT csv, HEADER, ENCODING 'LATIN1')"#
        );
        assert_eq!(
            copy.copy_in(Format::Binary),
            r#"COPY "other" ("a", "b") FROM STDIN (FORMAT binary)"#
        );
        copy.encoding = None;
        assert_eq!(copy.truncate("p"), r#"TRUNCATE "other""#);
        assert!(
            catalog_query(&table(r#"s."T""#), Some(150_000))
                .contains(r#"'"s"."T"'::pg_catalog.regclass"#)
        );
    }

    #[test]
    fn binary_keys_tell_where_each_type_is_in_the_value() {
        // cpx(a da, b db): da over int4 and db over float4 here, the other way round there.
        let here = "c,16390,false,false,false,true, d,16385,false,false,true,true,/1 \
                    b,23,true,false,false,true,/1/b d,16387,false,false,true,true,/2 \
                    b,700,true,false,false,true,/2/b";
        let there = "c,16390,false,false,false,true, d,16385,false,false,true,true,/1 \
                     b,700,true,false,false,true,/1/b d,16387,false,false,true,true,/2 \
                     b,23,true,false,false,true,/2/b";
        assert!(binary_key(here).is_some());
        assert_ne!(binary_key(here), binary_key(there));
        assert_eq!(binary_key(here), binary_key(here));
    }

    #[test]
    fn binary_keys() {
        // As the catalog query reports them (PostgreSQL 15).
        let key = |reached: &str| binary_key(reached);
        assert_eq!(key("b,20,true,false,false,true"), Some("20".to_owned()));
        assert_eq!(
            key("b,25,true,false,true,true b,1009,true,true,false,true"),
            Some("1009 25".to_owned())
        );
        assert_eq!(key("r,3904,true,false,false,true"), Some("3904".to_owned()));
        // An enum travels as its label, a domain as its base type: one domain name over two
        // base types has two keys.
        assert_eq!(key("e,16385,false,false,false,true"), Some("e@".to_owned()));
        assert_eq!(
            key("b,23,true,false,false,true d,16390,false,false,false,true"),
            Some("23 d@".to_owned())
        );
        assert_ne!(
            key("b,20,true,false,false,true d,16390,false,false,false,true"),
            key("b,701,true,false,false,true d,16390,false,false,false,true"),
        );
        // A composite's fields are reached as elements: a domain field's OID is in its binary
        // form, its base type in the key; an OID alias field makes it text.
        assert_eq!(
            key(
                "b,20,true,false,false,true c,16394,false,false,false,true d,16390,false,false,true,true"
            ),
            Some("16390 16394 20".to_owned())
        );
        assert_eq!(
            key(
                "b,23,true,false,true,true b,2205,true,false,true,true c,16394,false,false,false,true"
            ),
            None
        );
        // Arrays of user-defined types and composites carry OIDs.
        assert_eq!(
            key("b,16384,false,true,false,true e,16385,false,false,true,true"),
            Some("16385".to_owned())
        );
        assert_eq!(
            key("c,16394,false,false,false,true"),
            Some("16394".to_owned())
        );
        assert_eq!(
            key("b,16393,false,true,false,true c,16394,false,false,true,true"),
            Some("16394".to_owned())
        );
        // Extension base types, anything unreadable: not trusted. A user-defined range is its
        // subtype's values: over int8 here and timestamp there, two keys.
        assert_eq!(key("b,16500,false,false,false,true"), None);
        assert_eq!(
            key("r,16600,false,false,false,true, b,20,true,false,false,true,/s"),
            Some("20@/s r@".to_owned())
        );
        // A multirange over such a range: its ranges' subtype is in the key.
        assert_ne!(
            key(
                "m,16601,false,false,false,true r,16600,false,false,false,true,/m \
                 b,20,true,false,false,true,/m/s"
            ),
            key(
                "m,16601,false,false,false,true r,16600,false,false,false,true,/m \
                 b,1114,true,false,false,true,/m/s"
            ),
        );
        // An enum and a range over an enum send other bytes.
        assert_ne!(
            key("e,16385,false,false,false,true"),
            key("r,16600,false,false,false,true, e,16385,false,false,false,true,/s"),
        );
        assert_ne!(
            key("r,16600,false,false,false,true, b,20,true,false,false,true,/s"),
            key("r,16600,false,false,false,true, b,1114,true,false,false,true,/s"),
        );
        assert_eq!(
            key("r,16600,false,false,false,true, b,16500,false,false,false,true,/s"),
            None
        );
        assert_eq!(key("b,20"), None);
        // OID aliases travel as bare OIDs; aclitem has no binary form; nor has an array of it.
        assert_eq!(key("b,2205,true,false,false,true"), None);
        assert_eq!(
            key("b,2206,true,false,true,true b,2211,true,true,false,true"),
            None
        );
        assert_eq!(key("b,1033,true,false,false,false"), None);
        assert_eq!(
            key("b,1033,true,false,true,false b,1034,true,true,false,true"),
            None
        );
        assert_eq!(key("b,26,true,false,false,true"), Some("26".to_owned()));
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
