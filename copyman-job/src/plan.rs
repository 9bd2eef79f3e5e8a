//! The plan of one table's copy, shared by `copyman table` and the job: the relation as each
//! server's catalog describes it, the columns copied (by name, generated ones left out), and the
//! format (binary only when every copied column's type matches on every side).

use std::collections::HashMap;

use copyman_core::session::TransactionStatus;
use copyman_sync::Connection;

use crate::sql::{self, Column, Format, Ident, Leaf, Relation, TableName};

/// Why a table could not be looked up.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// The server refused the catalog query (`42P01` for a missing table, `42501` for no
    /// permission on its schema).
    #[error(transparent)]
    Server(#[from] copyman_sync::Error),
    /// The catalog's answer could not be read.
    #[error("{0}")]
    Catalog(String),
}

/// What the role of `conn` may not do of a copy into `table` there, said for a plan, with the
/// SQLSTATE its server would have given: `INSERT` into some of `columns` (the copied ones: a
/// grant on the table, or on each of them) and `empty` (`TRUNCATE`, or `DELETE` for a table a
/// foreign key references), the privilege that emptying it first takes, or `USAGE` on a
/// sequence whose `nextval` a default of a column not copied calls (42501); or a COPY into
/// a table whose row-level security applies to the role (0A000: COPY FROM does not support it).
/// `None` when nothing stands in the way, or the question was not answered (the COPY then says
/// what the server says). Asked while planning, so that a dry run finds it and a job refuses the
/// table there before copying others (the COPY's own error, at the table's turn, named neither
/// the privilege nor the statement).
pub fn write_refusal(
    conn: &mut Connection,
    table: &TableName,
    columns: &[&Ident],
    empty: Option<&str>,
) -> Option<(&'static str, String)> {
    write_refusals(conn, &[(table, columns, empty)])?
        .pop()
        .flatten()
}

/// [`write_refusal`] of each of `tables` (a table, its copied columns, the privilege that
/// empties it), asked in one question: `None` when it was not answered.
pub fn write_refusals(
    conn: &mut Connection,
    tables: &[sql::Written<'_>],
) -> Option<Vec<Option<(&'static str, String)>>> {
    let rows = conn.query(&sql::privileges_query(tables)).ok()?;
    let refusals = tables.iter().enumerate().map(|(i, (_, columns, empty))| {
        let position = i.to_string();
        let own = rows
            .iter()
            .filter(|row| row.first().cloned().flatten().as_deref() == Some(&position));
        refusal(own, columns, *empty)
    });
    Some(refusals.collect())
}

/// What the rows of [`sql::privileges_query`] about one table (its copied `columns`, emptied
/// with `empty`) say it may not do, in words.
fn refusal<'r>(
    rows: impl Iterator<Item = &'r copyman_core::endpoint::Row>,
    columns: &[&Ident],
    empty: Option<&str>,
) -> Option<(&'static str, String)> {
    let (mut quoted, mut sequences) = (Vec::new(), Vec::new());
    let (mut may_not_empty, mut row_security) = (false, false);
    for row in rows {
        match (
            row.get(1).cloned().flatten().as_deref(),
            row.get(2).cloned().flatten(),
        ) {
            (Some("column"), Some(name)) => quoted.push(Ident::new(name).to_string()),
            (Some("empty"), _) => may_not_empty = true,
            (Some("sequence"), Some(name)) => sequences.push(name),
            (Some("rls"), _) => row_security = true,
            _ => {}
        }
    }
    // What it may not do, and what it needs for it.
    let mut lacks: Vec<(String, String)> = Vec::new();
    if !quoted.is_empty() {
        let plural = if quoted.len() == 1 { "" } else { "s" };
        lacks.push((
            format!("INSERT into column{plural} {}", quoted.join(", ")),
            "INSERT on the table or on each copied column".to_owned(),
        ));
    }
    if let (true, Some(empty)) = (may_not_empty, empty) {
        lacks.push(match empty {
            "DELETE" => (
                "DELETE from it (a foreign key references it: it is emptied first with DELETE)"
                    .to_owned(),
                "DELETE on the table".to_owned(),
            ),
            other => (
                format!("{other} it (to empty it first)"),
                format!("{other} on the table"),
            ),
        });
    }
    if !sequences.is_empty() {
        let plural = if sequences.len() == 1 { "" } else { "s" };
        lacks.push((
            format!(
                "take values of sequence{plural} {} (a default of a column not copied calls \
                 nextval)",
                sequences.join(", ")
            ),
            format!("USAGE on the sequence{plural}, or the column copied"),
        ));
    }
    // The columns it may write, as the source's refusal names those it may read (types44 F2).
    let writable: Vec<String> = (columns.iter())
        .filter(|c| !quoted.contains(&c.to_string()))
        .map(|c| copyman_core::file_start::column_name(c.as_str()))
        .collect();
    let way = match (quoted.is_empty(), writable.is_empty()) {
        (false, false) => format!(
            "; grant it, or copy only the columns it may write (--columns {} in a one-table \
             copy), the others taking their defaults there",
            writable.join(",")
        ),
        _ => String::new(),
    };
    if !lacks.is_empty() {
        let (what, needs): (Vec<String>, Vec<String>) = lacks.into_iter().unzip();
        return Some((
            "42501",
            format!(
                "permission denied: the role there may not {} (it needs {}){way}",
                what.join(", nor "),
                needs.join(", and ")
            ),
        ));
    }
    row_security.then(|| {
        (
            "0A000",
            "row-level security applies to the role there, and COPY FROM does not support it: \
             copy as a role with BYPASSRLS (or the table's owner, unless the table forces row \
             security on it), or disable its row security there"
                .to_owned(),
        )
    })
}

/// A relation a query reads ([`relations_read`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    /// Its oid, as text.
    pub oid: String,
    /// Its name as statements spell it (`"schema"."name"`).
    pub name: TableName,
    /// Its `pg_class.relkind`.
    pub kind: String,
    /// Whether the role may lock it (`SELECT` on it, not on some columns only).
    pub may_lock: bool,
}

/// The relations `query` (a `SELECT`) reads, directly or through views, asked on `conn` (idle)
/// without running it: a temporary view of it, in a transaction rolled back at once, and the
/// relations its rule depends on, and theirs for a view. `None` where that cannot be told (a
/// session in a transaction, a standby, a role without `TEMP`, a query a view cannot be, or,
/// with `lock_wait`, a relation it reads locked by another session for longer than that: the
/// view's creation waits for it, which before any watch or lock timeout stands would be a
/// silent wait).
pub fn relations_read(
    conn: &mut Connection,
    query: &str,
    lock_wait: Option<std::time::Duration>,
) -> Option<Vec<Read>> {
    if conn.session().transaction_status() != TransactionStatus::Idle {
        return None;
    }
    conn.execute("BEGIN READ WRITE").ok()?;
    if let Some(wait) = lock_wait
        && conn
            .execute(&format!(
                "SET LOCAL lock_timeout = '{}ms'",
                wait.as_millis().max(1)
            ))
            .is_err()
    {
        let _ = conn.execute("ROLLBACK");
        return None;
    }
    // The query ends its line: a `-- comment` on its last line ends there.
    let read = conn
        .execute(&format!(
            "CREATE TEMPORARY VIEW pg_temp.copyman_reads AS {query}\n"
        ))
        .ok()
        .and_then(|_| {
            // Through views too, theirs in turn (a view that reads the table).
            conn.query(&format!(
                "WITH RECURSIVE read(oid) AS ( \
                   SELECT d.refobjid FROM pg_catalog.pg_depend d \
                     JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid \
                   WHERE d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass \
                     AND r.ev_class = 'pg_temp.copyman_reads'::pg_catalog.regclass \
                     AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass \
                     AND d.refobjid <> r.ev_class \
                   UNION SELECT d.refobjid FROM read \
                     JOIN pg_catalog.pg_rewrite r ON r.ev_class = read.oid \
                     JOIN pg_catalog.pg_depend d ON d.objid = r.oid \
                       AND d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass \
                       AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass \
                       AND d.refobjid <> r.ev_class) \
                 SELECT DISTINCT c.oid::pg_catalog.text, {}, c.relkind::pg_catalog.text, \
                   pg_catalog.has_table_privilege(c.oid, 'SELECT')::pg_catalog.text \
                 FROM read JOIN pg_catalog.pg_class c ON c.oid = read.oid \
                   JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')",
                sql::quoted_relation("n", "c")
            ))
            .ok()
        });
    let _ = conn.execute("ROLLBACK");
    Some(
        read?
            .into_iter()
            .filter_map(|row| {
                let mut row = row.into_iter().map(Option::unwrap_or_default);
                let (oid, name, kind, may) = (row.next()?, row.next()?, row.next()?, row.next()?);
                Some(Read {
                    oid,
                    name: TableName::parse(&name).ok()?,
                    kind,
                    may_lock: may == "true",
                })
            })
            .collect(),
    )
}

/// A table on `conn`'s server other than `table` itself whose foreign key references it (named
/// as [`TableName`] spells it, `"schema"."name"`), with the key's name (quoted as statements
/// spell it): a `TRUNCATE` of `table` alone is then refused (0A000, however empty that table),
/// and copyman never truncates with `CASCADE`. `None` when none does, or the question cannot be
/// asked.
pub fn referenced_by_another(conn: &mut Connection, table: &TableName) -> Option<(String, String)> {
    // A key to one of its partitions too (PostgreSQL 12: pg_partition_root), said with the
    // partition: its TRUNCATE is refused all the same (recheck64 F3: planned, then refused).
    let rows = conn
        .query(&format!(
            "SELECT {}, pg_catalog.quote_ident(k.conname::pg_catalog.text) || CASE WHEN \
               k.confrelid <> t.oid THEN ', to its partition ' || {} ELSE '' END \
             FROM pg_catalog.pg_constraint k \
             JOIN pg_catalog.pg_class c ON c.oid = k.conrelid \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             JOIN pg_catalog.pg_class p ON p.oid = k.confrelid \
             JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace \
             CROSS JOIN (SELECT pg_catalog.to_regclass({})::pg_catalog.oid AS oid) t \
             WHERE k.contype = 'f' AND {} = t.oid AND {} <> t.oid \
             ORDER BY k.confrelid <> t.oid, 1, 2 LIMIT 1",
            sql::quoted_relation("n", "c"),
            sql::quoted_relation("pn", "p"),
            table.regclass_literal(),
            partition_root(conn, "k.confrelid"),
            partition_root(conn, "k.conrelid"),
        ))
        .ok()?;
    let row = rows.first()?;
    Some((row.first()?.clone()?, row.get(1)?.clone()?))
}

/// The root of the partition tree `relation` (an SQL expression of a relation's oid) is in, on
/// `conn`'s server: itself where it is in none, or before PostgreSQL 12 (no
/// `pg_partition_root`: a partition is then taken for a table of its own).
fn partition_root(conn: &Connection, relation: &str) -> String {
    match conn.session().server_version_num() >= Some(120_000) {
        true => format!("coalesce(pg_catalog.pg_partition_root({relation}), {relation})"),
        false => relation.to_owned(),
    }
}

/// Whether `conn`'s server has a relation named `name` (quoted as statements spell it): `true`
/// where that cannot be asked. A table that references a copied one on a destination and that
/// the source lacks is the destination's own: no server holds a copy of its rows.
pub fn has_relation(conn: &mut Connection, name: &str) -> bool {
    conn.query(&format!(
        "SELECT pg_catalog.to_regclass({}) IS NOT NULL",
        sql::literal(name)
    ))
    .ok()
    .and_then(|rows| rows.first().and_then(|r| r.first().cloned().flatten()))
    .is_none_or(|v| v == "t" || v == "true")
}

/// Every table on `conn`'s server that references `table` through foreign keys, at any depth
/// (a table that references one that references it …), `table` itself left out, nearest
/// first, each named as [`TableName`] spells it (`"schema"."name"`) with its kind (`relkind`:
/// `p` a partitioned table, which a `TRUNCATE ONLY` refuses): a `TRUNCATE` of `table` must name
/// them all (without `CASCADE`, which copyman never uses), however empty they are. Empty when
/// none does, or the question cannot be asked.
pub fn referencing_tables(conn: &mut Connection, table: &str) -> Vec<(String, String)> {
    let table = sql::literal(table);
    // (Referencing one of its partitions too: recheck64 F3.)
    let referenced = partition_root(conn, "k.confrelid");
    // A key's clones on partitions (conparentid set) are the key of their partitioned table.
    let sql = format!(
        "WITH RECURSIVE r(oid, depth) AS ( \
           SELECT pg_catalog.to_regclass({table})::pg_catalog.oid, 0 \
           UNION \
           SELECT k.conrelid, r.depth + 1 FROM pg_catalog.pg_constraint k \
           JOIN r ON {referenced} = r.oid \
           WHERE k.contype = 'f' AND k.conparentid = 0 AND r.depth < 32) \
         SELECT {}, c.relkind::pg_catalog.text \
         FROM r JOIN pg_catalog.pg_class c ON c.oid = r.oid \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE r.oid <> pg_catalog.to_regclass({table}) \
         GROUP BY n.nspname, c.relname, c.relkind ORDER BY pg_catalog.min(r.depth), 1",
        sql::quoted_relation("n", "c")
    );
    let Ok(rows) = conn.query(&sql) else {
        return Vec::new();
    };
    rows.into_iter()
        .filter_map(|row| {
            let mut row = row.into_iter();
            Some((row.next().flatten()?, row.next().flatten()?))
        })
        .collect()
}

/// The foreign tables among the partitions of `table` (a partitioned table: `kind` `p`) on one
/// server, named as statements spell them, or `None` when it has none (or the question cannot
/// be asked). Their rows live on another server: a copy through the partitioned table reads
/// them there on the source, and writes the rows routed into one on a destination, and a
/// `TRUNCATE` of it, to that other server — neither the source nor a destination (an archive's
/// rows read and written back there twice). pg_dump leaves their data out; copyman refuses the
/// table, naming them ([`foreign_partitions_refusal`]).
pub fn foreign_partitions(conn: &mut Connection, table: &TableName, kind: &str) -> Option<String> {
    if kind != "p" {
        return None;
    }
    let sql = format!(
        "SELECT pg_catalog.string_agg(pg_catalog.quote_ident(n.nspname::pg_catalog.text) || '.' \
             || pg_catalog.quote_ident(c.relname::pg_catalog.text), ', ' ORDER BY c.oid) \
         FROM pg_catalog.pg_partition_tree(pg_catalog.to_regclass({})) t \
         JOIN pg_catalog.pg_class c ON c.oid = t.relid \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind = 'f'",
        table.regclass_literal()
    );
    let rows = conn.query(&sql).ok()?;
    rows.first()?.first()?.clone()
}

/// Why a destination's `table` (a relation of `kind` there, on `conn`) is refused for rows that
/// live on another server: a foreign table itself, or a partitioned table with foreign
/// partitions ([`foreign_partitions`]). A copy into it would write them to that server, and
/// `--truncate` empty them there — a server neither the source nor a destination (an archive's
/// rows emptied, or stored twice where the source read them through a foreign table too), as
/// pg_dump never does. `None` otherwise.
pub fn foreign_destination(conn: &mut Connection, table: &TableName, kind: &str) -> Option<String> {
    if kind == "f" {
        return Some(
            "is a foreign table there, whose rows live on another server: the copy would write \
             them there, and --truncate empty it, as pg_dump never does; copy into that \
             server's table directly"
                .to_owned(),
        );
    }
    let foreign = foreign_partitions(conn, table, kind)?;
    Some(foreign_partitions_refusal("it there", &foreign))
}

/// Where tables of the name a server's 42P01 `message` names (`relation "orders" does not
/// exist`, a name without a schema) are on `conn`'s database, if in schemas off the search
/// path: " (off the search path: sales.orders; …)" to add to it, or nothing.
pub fn off_the_search_path(conn: &mut Connection, message: &str) -> String {
    let name = message
        .strip_prefix("relation \"")
        .and_then(|rest| rest.split_once("\" does not exist"))
        .map(|(name, _)| name)
        .filter(|name| !name.contains('.'));
    let Some(name) = name else {
        return String::new();
    };
    let found = conn
        .query(&format!(
            "SELECT pg_catalog.string_agg(pg_catalog.format('%I.%I', n.nspname, c.relname), ', ' \
                 ORDER BY n.nspname) \
               FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
              WHERE c.relname = {} AND c.relkind IN ('r', 'p', 'v', 'm', 'f')",
            sql::literal(name)
        ))
        .ok()
        .and_then(|rows| rows.first()?.first()?.clone());
    found.map_or_else(String::new, |found| {
        format!(
            " (off the search path: {found}; name it with its schema, or select it with \
             --schema)"
        )
    })
}

/// Why a source `table` named without its schema is refused where it is a server's own catalog
/// (`rel`: `pg_catalog` is searched first unless the search path puts it later) while another
/// schema on `conn`'s database holds a table of that name, the user's (recheck52 F4: a DBA's
/// `public.pg_description` given so was read as the catalog, 5 136 rows of it copied, exit 0).
pub fn shadowed_by_a_catalog(
    conn: &mut Connection,
    table: &TableName,
    rel: &Relation,
) -> Option<String> {
    if !rel.system || table.schema.is_some() {
        return None;
    }
    let found = conn
        .query(&format!(
            "SELECT pg_catalog.string_agg(pg_catalog.format('%I.%I', n.nspname, c.relname), ', ' \
                 ORDER BY n.nspname) \
               FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
              WHERE c.relname = {} AND c.relkind IN ('r', 'p', 'v', 'm', 'f') \
                AND NOT {}",
            sql::literal(table.name.as_str()),
            sql::SYSTEM_SCHEMA
        ))
        .ok()
        .and_then(|rows| rows.first()?.first()?.clone())?;
    Some(format!(
        "it is the system catalog pg_catalog.{} on the source (pg_catalog is searched first \
         unless the search_path puts it later), while {found} is a table of that name there: \
         name the one to copy with its schema",
        table.name.as_str()
    ))
}

/// Where `table` was not found (`message` the server's: a relation or schema that does not
/// exist), what the source has of its name but for case, to quote (schema45 F4: `copyman table
/// Sales.Orders` said only `schema "sales" does not exist`, where a job's pattern says how to
/// spell `"Sales"."Orders"`). Empty where it has none.
pub fn spelled_in_capitals(conn: &mut Connection, table: &TableName, message: &str) -> String {
    if !message.ends_with("does not exist") {
        return String::new();
    }
    let folded = |column: &str, ident: &Ident| {
        format!(
            "pg_catalog.lower({column} COLLATE \"default\") = pg_catalog.lower({})",
            sql::literal(ident.as_str())
        )
    };
    let schema = table
        .schema
        .as_ref()
        .map_or_else(|| "true".to_owned(), |schema| folded("n.nspname", schema));
    // Only a relation spelled otherwise: one of this very spelling is off the search path, not
    // folded (conn46 F1: the hint came for a name typed in lower case).
    let spelled_otherwise = match &table.schema {
        Some(schema) => format!(
            "(c.relname <> {} OR n.nspname <> {})",
            sql::literal(table.name.as_str()),
            sql::literal(schema.as_str())
        ),
        None => format!("c.relname <> {}", sql::literal(table.name.as_str())),
    };
    let found = conn
        .query(&format!(
            "SELECT pg_catalog.format('%I.%I', n.nspname, c.relname) \
               FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
              WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND {} AND {schema} \
                AND {spelled_otherwise} \
              ORDER BY n.nspname = 'public' DESC LIMIT 1",
            folded("c.relname", &table.name)
        ))
        .ok()
        .and_then(|rows| rows.first()?.first()?.clone());
    found.map_or_else(String::new, |found| {
        format!(
            " (a name's letters fold to lower case unless it is quoted: the source has {found}; \
             give '{found}')"
        )
    })
}

/// What a plan says of a partitioned table with `foreign` partitions ([`foreign_partitions`])
/// on `whose` side ("the source", "destination 2"): refused, with the way to copy its own rows.
pub fn foreign_partitions_refusal(whose: &str, foreign: &str) -> String {
    format!(
        "its partitions {foreign} on {whose} are foreign tables, whose rows live on another \
         server: copied through it, they would be read from that server (on the source) or \
         written, and emptied by --truncate, there (on a destination), as pg_dump never does; \
         copy its other partitions by name instead"
    )
}

/// Looks `table` up on one server: `None` when the catalog has no such relation.
///
/// # Errors
/// The server's, or an unreadable answer.
pub fn lookup(conn: &mut Connection, table: &TableName) -> Result<Option<Relation>, LookupError> {
    let version = conn.session().server_version_num();
    let rows = conn.query(&sql::catalog_query(table, version))?;
    if rows.is_empty() {
        return Ok(None);
    }
    let mut relation = Relation::from_rows(&rows).map_err(LookupError::Catalog)?;
    if let Some(why) = column_not_utf8(conn, table, &relation) {
        return Err(LookupError::Catalog(why));
    }
    nulls_checked(conn, &mut relation);
    Ok(Some(relation))
}

/// Why `relation` (`table` on `conn`'s server) cannot be copied where the name of a column of
/// it is not UTF-8 ([`sql::not_utf8`]: recheck63 F9, said dropped or renamed at its COPY).
fn column_not_utf8(conn: &Connection, table: &TableName, relation: &Relation) -> Option<String> {
    let column = (relation.columns.iter()).find(|c| sql::not_utf8(conn, c.name.as_str()))?;
    Some(format!(
        "the name of its column {} {}: rename the column there, or leave the table out ({})",
        column.name,
        sql::NAME_NOT_UTF8,
        sql::as_pattern(table)
    ))
}

/// Looks `tables` up on one server in one catalog query ([`sql::catalog_batch_query`]): the
/// relations found, by name (`TableName`'s text). What the answer lacks — a table not found, or
/// one whose rows cannot be read — is for [`lookup`] to look up alone, which says why; so is
/// every table of a server older than 9.6.
///
/// # Errors
/// The server's (a lock waited for too long, a schema the role may not use): its tables are
/// then for [`lookup`] too.
pub fn lookup_many(
    conn: &mut Connection,
    tables: &[&TableName],
) -> Result<HashMap<String, Relation>, copyman_sync::Error> {
    let version = conn.session().server_version_num();
    if tables.is_empty() || version.is_none_or(|v| v < 90_600) {
        return Ok(HashMap::new());
    }
    // Its estimated cost, summed over the tables, crosses the JIT thresholds: compiling it took
    // seconds (200 tables: 2.6 s with the JIT, 0.06 s without). The session's own setting comes
    // back after it, failed or not.
    let jit = version.is_some_and(|v| v >= 110_000);
    if jit {
        conn.execute("SET jit = off")?;
    }
    let rows = conn.query(&sql::catalog_batch_query(tables, version));
    if jit && conn.is_ready() {
        conn.execute("RESET jit")?;
    }
    let rows = rows?;
    let mut found = HashMap::new();
    // Each table's rows come together, behind its place in `tables`.
    for table_rows in rows.chunk_by(|a, b| a.first() == b.first()) {
        let Some(table) = table_rows[0]
            .first()
            .cloned()
            .flatten()
            .and_then(|i| i.parse::<usize>().ok())
            .and_then(|i| tables.get(i.checked_sub(1)?))
        else {
            continue;
        };
        let rows: Vec<Vec<Option<String>>> = table_rows.iter().map(|r| r[1..].to_vec()).collect();
        // (One whose column name is not UTF-8: for `lookup` to say.)
        if let Ok(mut relation) = Relation::from_rows(&rows)
            && column_not_utf8(conn, table, &relation).is_none()
        {
            nulls_checked(conn, &mut relation);
            found.insert(table.to_string(), relation);
        }
    }
    Ok(found)
}

/// A column of a domain with CHECK constraints takes NULL if they accept it: asked (a cast
/// checks them), outside a transaction only, which a failed cast would abort (inside one it is
/// taken not to).
fn nulls_checked(conn: &mut Connection, relation: &mut Relation) {
    let idle = conn.session().transaction_status() == TransactionStatus::Idle;
    for column in relation
        .columns
        .iter_mut()
        .filter(|c| c.null_checked && idle)
    {
        let probe = format!("SELECT NULL::{}", column.type_name);
        column.fills_itself = conn.query(&probe).is_ok();
    }
}

/// The copied columns (`columns`, else every stored column) that hold large object references,
/// said: of type `oid`, or the `lo` extension's domain over it, as an application stores the
/// OID of a large object. copyman copies the numbers, not the large objects (as `pg_dump
/// --large-objects` and pgcopydb do): on a destination they name nothing, or another large
/// object of the same OID. `None` when no destination reads such a column.
pub fn large_object_columns(
    dests: &[(&str, &Relation)],
    columns: Option<&[Ident]>,
) -> Option<String> {
    // By its base type: `lo` (contrib's) is a domain over oid, its name schema-qualified
    // (`public.lo`: its columns were left out, dump63 F1).
    let found = copied_of_type(dests, columns, |c| c.base_name() == "oid");
    if found.is_empty() {
        return None;
    }
    Some(format!(
        "column{} {} of type oid (or lo) usually hold{} large object OIDs: copyman copies the \
         numbers, not the large objects, which on a destination then name nothing or another \
         large object (pg_dump --large-objects copies them)",
        if found.len() == 1 { "" } else { "s" },
        found.join(", "),
        if found.len() == 1 { "s" } else { "" },
    ))
}

/// The names of the copied columns (`columns`, else every stored column) whose type on some
/// destination `of_type` takes, each once.
fn copied_of_type(
    dests: &[(&str, &Relation)],
    columns: Option<&[Ident]>,
    of_type: impl Fn(&Column) -> bool,
) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for (_, rel) in dests {
        for column in &rel.columns {
            let copied = columns.is_none_or(|cols| cols.contains(&column.name));
            let name = column.name.to_string();
            if copied && of_type(column) && !found.contains(&name) {
                found.push(name);
            }
        }
    }
    found
}

/// A file's values for `name` or `"char"` columns (`columns`, else every stored column) of the
/// destinations, said: the server cuts a longer one to 63 bytes, or to its first byte, without a
/// word (between servers copyman measures the source's values first and refuses; a file's are
/// not measured). `None` when no destination reads such a column.
pub fn cut_columns_from_a_file(
    dests: &[(&str, &Relation)],
    columns: Option<&[Ident]>,
) -> Option<String> {
    let names = copied_of_type(dests, columns, |c| c.type_name == "name");
    let chars = copied_of_type(dests, columns, |c| c.type_name == "\"char\"");
    let mut said = Vec::new();
    if !names.is_empty() {
        said.push(format!(
            "the destinations read {} as type name, which the server cuts to 63 bytes without a \
             word",
            names.join(", ")
        ));
    }
    if !chars.is_empty() {
        said.push(format!(
            "the destinations read {} as type \"char\", which keeps only the first byte of a \
             longer value without a word",
            chars.join(", ")
        ));
    }
    (!said.is_empty()).then(|| {
        format!(
            "{}: a longer value in the file is stored cut",
            said.join("; ")
        )
    })
}

/// What a plan says of the destinations whose table has rules on INSERT ([`Relation::insert_rules`]):
/// a `COPY … FROM` runs none, and stores each row in the table itself where an application's
/// INSERT is rewritten by them (types69 F6: said of triggers, not of rules). `None` without any.
pub fn insert_rules(dests: &[(&str, &Relation)]) -> Option<String> {
    let each: Vec<(&str, &str)> = dests
        .iter()
        .filter_map(|(label, rel)| Some((*label, rel.insert_rules.as_deref()?)))
        .collect();
    let who = match each.as_slice() {
        [] => return None,
        [(label, names)] => format!("{label} has rules on INSERT into it ({names})"),
        _ => {
            let each: Vec<String> = each.iter().map(|(l, n)| format!("{l} ({n})")).collect();
            format!("rules on INSERT into it are on {}", each.join(", "))
        }
    };
    Some(format!(
        "{who}: a COPY runs none of them, and stores each row in the table itself, where an \
         INSERT of it would be rewritten by them"
    ))
}

/// The destinations whose table runs triggers on INSERT ([`Relation::insert_triggers`]), said:
/// what they do to a copied row is the destination's own, and neither COPY's count nor copyman
/// sees it (an AFTER trigger that moves the row elsewhere, a BEFORE trigger that sets a value);
/// `None` when no destination has any; `in_a_job`, also that what they write into other tables
/// may change one the job copied before (its `--verify` compares again). A view's INSTEAD OF
/// trigger is [`Relation::counts_unchecked`]'s.
///
/// ```
/// use copyman_job::plan::insert_triggers;
/// use copyman_job::sql::Relation;
///
/// let rel = |triggers: Option<&str>| Relation {
///     kind: "r".into(),
///     estimate: None,
///     columns: Vec::new(),
///     children: 0,
///     view_takes_inserts: true,
///     insert_triggers: triggers.map(str::to_owned),
///     truncate_triggers: None,
///     quiet_delete: true,
///     system: false,
///     populated: true,
///     insert_rules: None,
/// };
/// let (plain, audited) = (rel(None), rel(Some("audit, route")));
/// assert_eq!(insert_triggers(&[("destination 1", &plain)], false), None);
/// let both = [("destination 1", &plain), ("destination 2", &audited)];
/// let said = insert_triggers(&both, false).unwrap();
/// assert!(said.starts_with("destination 2 runs INSERT triggers on it (audit, route)"), "{said}");
/// ```
pub fn insert_triggers(dests: &[(&str, &Relation)], in_a_job: bool) -> Option<String> {
    let each: Vec<(&str, &str)> = dests
        .iter()
        .filter_map(|(label, rel)| Some((*label, rel.insert_triggers.as_deref()?)))
        .collect();
    let who = match each.as_slice() {
        [] => return None,
        [(label, names)] => format!("{label} runs INSERT triggers on it ({names})"),
        _ => {
            let each: Vec<String> = each.iter().map(|(l, n)| format!("{l} ({n})")).collect();
            format!("INSERT triggers run on it on {}", each.join(", "))
        }
    };
    // session_replication_role=replica keeps a trigger enabled ALWAYS running and is what
    // runs one enabled REPLICA (names52 F3: advised for those, rows doubled, exit 0).
    let replica_stops_them = (each.iter())
        .flat_map(|(_, names)| names.split(", "))
        .all(|n| !n.ends_with(sql::ENABLED_ALWAYS) && !n.ends_with(sql::ENABLED_REPLICA));
    let way = match replica_stops_them {
        true => {
            "options='-c session_replication_role=replica' in the destination's CONN keeps \
             them from running again (pg_dump's --disable-triggers)"
        }
        false => {
            "ALTER TABLE … DISABLE TRIGGER … there keeps them from running again while the \
             copy runs, as pg_dump's --disable-triggers does (session_replication_role=replica \
             does not stop a trigger enabled always, and is what runs one enabled replica)"
        }
    };
    Some(format!(
        "{who}: they run as the rows are copied (a row trigger for each row, a statement \
         trigger once, a deferred constraint trigger at the end of the transaction), and a \
         value they set or a row they move or delete after storing it makes the table differ \
         from the source's without an error (COPY counts the rows it stored, not what the \
         triggers did with them){}, {way}",
        if in_a_job {
            " — as does what they write into other tables, which the job may have copied \
             before this one (its --verify compares the tables there again once its writes \
             are over); where the destination's triggers are the source's own, already \
             applied to its rows"
        } else {
            "; where they are the source's own, already applied to its rows"
        }
    ))
}

/// What a plan says of a destination table emptied first (`--truncate`) that has enabled
/// `TRUNCATE` triggers of the user's there (on `conn`): they fire with the emptying and may
/// change other tables, one a job copied and checked before this one among them, without an
/// error. `None` without any, or where it cannot be asked.
pub fn truncate_triggers(conn: &mut Connection, table: &TableName) -> Option<String> {
    let version = conn.session().server_version_num().unwrap_or(0);
    let tree = sql::truncated_tree(
        &format!("pg_catalog.to_regclass({})", table.regclass_literal()),
        version,
    );
    let sql = format!(
        "SELECT pg_catalog.string_agg(DISTINCT \
             pg_catalog.quote_ident(g.tgname::pg_catalog.text), ', ') \
         FROM ({tree}) tree JOIN pg_catalog.pg_trigger g ON g.tgrelid = tree.oid \
           WHERE NOT g.tgisinternal AND {} AND g.tgtype & 32 <> 0",
        sql::TRIGGER_FIRES
    );
    let rows = conn.query(&sql).ok()?;
    let names = rows.first()?.first()?.clone()?;
    Some(truncate_triggers_note(&names))
}

/// What [`truncate_triggers`] says of the triggers `names` (as a job's plan reads them from
/// [`Relation::truncate_triggers`]).
pub fn truncate_triggers_note(names: &str) -> String {
    format!(
        "TRUNCATE triggers fire on it there (or on its partitions) as --truncate empties it \
         ({names}): what they do to \
         other tables (one the job copied before, among them) happens without an error (a \
         job's --verify compares the tables there again once its writes are over)"
    )
}

/// Whether `table` (`rel` on `conn`'s server) holds rows: a copy that does not empty it first
/// appends to them. Asked only where the catalog's estimate says it may (a table never filled
/// or emptied by `TRUNCATE` has no pages), and only of a table or a partitioned one (a view's
/// rows are its query's); `false` where the question cannot be asked (no `SELECT` on it).
///
/// A one-table run keeps no record a later job could read (dup67 F8: a job after
/// `copyman table t` appended every row again without a word): the job says what it appends
/// to.
pub fn holds_rows(conn: &mut Connection, table: &TableName, rel: &Relation) -> bool {
    if rel.estimate.is_none() || !matches!(rel.kind.as_str(), "r" | "p") {
        return false;
    }
    conn.query(&format!("SELECT EXISTS (SELECT FROM {table})"))
        .ok()
        .and_then(|rows| rows.first()?.first().cloned().flatten())
        .is_some_and(|v| v == "t" || v == "true")
}

/// What a copy that appends says of a table that holds rows on `dests` (their 1-based
/// numbers) already ([`holds_rows`]).
pub fn appends_note(dests: &[usize]) -> String {
    let (name, verb) = match dests.len() {
        1 => ("destination", "holds"),
        _ => ("destinations", "hold"),
    };
    let list: Vec<String> = dests.iter().map(usize::to_string).collect();
    format!(
        "{name} {} {verb} rows already: the source's rows are added to them (--truncate \
         empties the table first)",
        list.join(", ")
    )
}

/// The `name` type's OID: a server cuts a longer value to 63 bytes without an error.
const NAME: u32 = 19;

/// `int2`, `int4`, `int8`.
const INTEGERS: [u32; 3] = [21, 23, 20];

/// `text` and `varchar` (`character varying`).
const TEXT: u32 = 25;
const VARCHAR: u32 = 1043;

/// The `"char"` type's OID: a server keeps the first byte of a longer value without an error.
const CHAR: u32 = 18;

/// The encoding a destination's values are measured in ([`values_cut`]): its server's, but for
/// a SQL_ASCII one, which stores the bytes it gets as they come, the encoding the data passes
/// in (`passes`: a LATIN1 source's `é` arrives there as two UTF-8 bytes, recheck41 F3).
///
/// ```
/// use copyman_job::plan::measured_in;
///
/// assert_eq!(measured_in("LATIN1", "UTF8"), "LATIN1");
/// assert_eq!(measured_in("SQL_ASCII", "UTF8"), "UTF8");
/// ```
pub fn measured_in(server_encoding: &str, passes: &str) -> String {
    match server_encoding {
        "SQL_ASCII" => passes.to_owned(),
        other => other.to_owned(),
    }
}

/// Where the source's rows are read for [`values_cut`]: a table's rows (those of a `--where`
/// when one is given).
pub fn table_rows(table: &TableName, condition: Option<&str>) -> String {
    match condition {
        Some(condition) => format!("{table} {}", sql::where_clause(condition)),
        None => table.to_string(),
    }
}

/// Where the source's rows are read for [`values_cut`]: a `--send`'s query's, as a subquery
/// (run in a read-only transaction: one that would write fails there and is not measured), its
/// columns named `columns` by position (as it was described: two columns of one name renamed).
pub fn query_rows(query: &str, columns: &[Ident]) -> String {
    let names: Vec<String> = columns.iter().map(ToString::to_string).collect();
    format!("({query}\n) AS copyman_sent ({})", names.join(", "))
}

/// Where a destination column holds a type that cuts text input without an error — `name`
/// (63 bytes) or `"char"` (its first byte) — anywhere in its values: its own type, a domain
/// over it, an array's elements, a composite's fields (an array of composites' too). Text COPY
/// input longer than that is cut (binary input fails, 42622). A value the source holds in
/// another type, or in `name` under another encoding (63 LATIN1 `é` take 126 bytes in UTF8),
/// may be longer there: the source's values at that place (`rows`: [`table_rows`] or
/// [`query_rows`]) are measured in each destination's `server_encoding` (a value its encoding
/// cannot hold fails the COPY anyway, and is not asked about here). `dests` gives each
/// destination's label, relation (its columns named as the source's they take) and
/// `server_encoding` (for a SQL_ASCII one, which stores what it gets, the encoding the data
/// passes in). A place the source's value has no like of (text into a composite, a range's
/// bounds) is not measured. Where the rows cannot be read (`rows` is why: a `--send` that
/// writes, which a measure must not run again), or the measure fails, nothing is passed over:
/// the column is refused with why (recheck41 F2).
///
/// Returns whether any value was measured: a measure taken in another snapshot than the copy's
/// is to be taken again in the copy's own (a longer value committed in between arrives cut).
///
/// # Errors
/// The first column whose values would be cut on a destination: how many, an example, and what
/// to do; or whose values could not be measured.
pub fn values_cut(
    source: &mut Connection,
    rows: Result<&str, &str>,
    columns: &[Ident],
    source_rel: &Relation,
    dests: &[(&str, &Relation, String)],
) -> Result<bool, String> {
    let mut measured = false;
    // Each measure once, however many destinations ask it (a --send's query runs again for
    // each: signals45 F1, a 2-s query to 3 destinations took 27 s).
    let mut asked: HashMap<String, Vec<Vec<Option<String>>>> = HashMap::new();
    let encoding = source
        .session()
        .parameter("server_encoding")
        .unwrap_or_default()
        .to_owned();
    // A composite's fields at a path, `/b` (a domain's base) left out as in a leaf's path.
    let fields_at = |column: &Column, at: &str| {
        (column.composites.iter())
            .find(|(path, _)| {
                path.split('/')
                    .filter(|p| *p != "b")
                    .collect::<Vec<_>>()
                    .join("/")
                    == at
            })
            .map(|(_, fields)| fields.clone())
    };
    for name in columns {
        let Some(from) = source_rel.column(name) else {
            continue;
        };
        for (label, rel, dest_encoding) in dests {
            let Some(to) = rel.column(name) else {
                continue;
            };
            if let Some((width, array)) = narrower_varchar(&from.type_name, &to.type_name) {
                let Ok(rows) = rows else {
                    // (A writing --send, not run again: cast there, and the types are alike.)
                    return Err(format!(
                        "column {name} is {} on {label}, which cuts a longer value's trailing \
                         spaces without an error, and the source's values could not be \
                         measured: cast it in the --send's query (…::varchar({width})) to take \
                         the cut as yours",
                        to.type_name
                    ));
                };
                // (An array's elements each.)
                let value = match array {
                    true => format!("pg_catalog.unnest({name})::text"),
                    false => format!("{name}::text"),
                };
                let query = format!(
                    "SELECT count(*)::text, min(v) FROM (SELECT {value} AS v FROM {rows}) q \
                     WHERE pg_catalog.char_length(v) > {width} \
                     AND pg_catalog.char_length(pg_catalog.rtrim(v, ' ')) <= {width}"
                );
                let found = source.query(&query).map_err(|e| {
                    format!(
                        "column {name} is {} on {label}, which cuts a longer value's trailing \
                         spaces without an error, and the source's values could not be \
                         measured ({}): widen it there, or cast it in a `copy` --send query \
                         (…::varchar({width})) to take the cut as yours",
                        to.type_name,
                        crate::job::describe(&e)
                    )
                })?;
                measured = true;
                let field = |i: usize| found.first().and_then(|r| r.get(i).cloned().flatten());
                if let (Some(n), Some(example)) = (field(0), field(1)) {
                    return Err(format!(
                        "column {name} is {} on the source but {} on {label}, which cuts a \
                         longer value's trailing spaces without an error: {n} of the source's \
                         values would lose some, e.g. '{}'; widen it there, or trim them in a \
                         `copy` --send query (rtrim) to take the cut as yours",
                        from.type_name,
                        to.type_name,
                        example.chars().take(20 + width).collect::<String>()
                    ));
                }
            }
            for leaf in to.leaves.iter().filter(|l| [NAME, CHAR].contains(&l.oid)) {
                // The same type at the same place on the source (and, for a name, the same
                // encoding): its values fit.
                let alike = from
                    .leaves
                    .iter()
                    .any(|l| l.at == leaf.at && l.oid == leaf.oid);
                if alike && (leaf.oid == CHAR || *dest_encoding == encoding) {
                    continue;
                }
                // The source's values at that place: an element of each array, a field of
                // each composite (by the source's field name at that position).
                let rows = match rows {
                    Ok(rows) => rows,
                    Err(why) => {
                        return Err(format!(
                            "column {name} is {} on {label}, which cuts a longer text value \
                             without an error, and the source's values could not be measured \
                             ({why}): cast it in the --send's query as the destination's type \
                             to take the cut as yours, or copy it into a text column there",
                            to.type_name
                        ));
                    }
                };
                let mut values = format!("SELECT {name} AS v FROM {rows}");
                let mut place = Vec::new();
                let mut at = String::new();
                let mut measurable = true;
                for step in leaf.at.split('/').filter(|s| !s.is_empty()) {
                    let field = step.parse::<usize>().ok();
                    values = match (step, field) {
                        ("e", _) => {
                            place.push("element".to_owned());
                            format!("SELECT pg_catalog.unnest(v) AS v FROM ({values}) q")
                        }
                        (_, Some(n)) => {
                            let (Some(source_field), Some(dest_field)) = (
                                fields_at(from, &at).and_then(|f| f.get(n - 1).cloned()),
                                fields_at(to, &at).and_then(|f| f.get(n - 1).cloned()),
                            ) else {
                                measurable = false;
                                break;
                            };
                            place.push(format!("field {}", Ident::new(dest_field)));
                            format!(
                                "SELECT (v).{} AS v FROM ({values}) q",
                                Ident::new(source_field)
                            )
                        }
                        _ => {
                            measurable = false;
                            break;
                        }
                    };
                    at.push('/');
                    at.push_str(step);
                }
                if !measurable {
                    continue;
                }
                let (limit, cut_if) = if leaf.oid == NAME {
                    ("63 bytes and cuts a longer text value", "> 63".to_owned())
                } else {
                    // PostgreSQL 15's `"char"` reads `\ooo` as one byte.
                    (
                        "one byte and keeps only the first of a longer text value",
                        format!("> 1 AND v !~ {}", sql::literal(r"^\\[0-7]{3}$")),
                    )
                };
                let kind = if leaf.oid == NAME { "name" } else { "\"char\"" };
                let unmeasured = |why: &str| {
                    format!(
                        "column {name} is {} on {label}, which holds {limit} without an error \
                         ({kind}), and the source's values could not be measured ({why}): a \
                         longer one would arrive cut; cast the value to the destination's type \
                         in the `copy` --send query (…::{kind}) to take the cut as yours, or \
                         copy it into a text column there",
                        to.type_name
                    )
                };
                // Through UTF8, as the data passes: PostgreSQL has no conversion between some
                // pairs of encodings (LATIN1 to LATIN9: 42883, types69 F14), and every one to and
                // from UTF8.
                let query = format!(
                    "SELECT count(*)::text, min(v) FROM (SELECT v::text AS v FROM ({values}) q) q \
                     WHERE pg_catalog.octet_length(pg_catalog.convert(pg_catalog.convert_to(v, \
                     'UTF8'), 'UTF8', {})) {cut_if}",
                    sql::literal(dest_encoding)
                );
                let answer = match asked.get(&query) {
                    Some(rows) => Ok(rows.clone()),
                    None => source.query(&query),
                };
                let rows = match answer {
                    Ok(rows) => {
                        asked.insert(query, rows.clone());
                        rows
                    }
                    // The read-only transaction is the measure's own: the query writes
                    // (nextval(), a function that writes, a data-modifying WITH), not the
                    // server (recheck41b F5).
                    Err(e) if matches!(e.code(), Some("25006" | "0A000")) => {
                        return Err(unmeasured(
                            "the --send's query writes, and is not run again to measure them",
                        ));
                    }
                    // A character the destination's encoding has not: the copy would fail on it
                    // there (22P05), whatever its length — that is what to say (recheck71 F4:
                    // "could not be measured", and a cast that would not help).
                    Err(e) if e.code() == Some("22P05") => {
                        return Err(format!(
                            "column {name}: a source value holds a character {label}'s encoding \
                             ({dest_encoding}) cannot hold ({}): the copy would fail on it there; \
                             leave that row out (--where) or change the value on the source",
                            crate::job::describe(&e)
                        ));
                    }
                    Err(e) => return Err(unmeasured(&crate::job::describe(&e).to_string())),
                };
                measured = true;
                let field = |i: usize| rows.first().and_then(|r| r.get(i).cloned().flatten());
                let (Some(n), Some(example)) = (field(0), field(1)) else {
                    continue;
                };
                // Shortened to 20 characters, said so where it was (recheck44 F6).
                let cut = if example.chars().count() > 20 {
                    "…"
                } else {
                    ""
                };
                let example: String = example.chars().take(20).collect::<String>() + cut;
                // Said where a field holds it (an array's own elements are its type's name).
                let whose = match place.iter().any(|p| p != "element") {
                    true => format!(", whose {} is {kind}", place.join("'s ")),
                    false => String::new(),
                };
                return Err(format!(
                    "column {name} is {} on {label}{whose}, which holds {limit} without an \
                     error: {n} of the source's values take more in its encoding \
                     ({dest_encoding}; the source's is {encoding}), e.g. '{example}', and would \
                     arrive cut; copy it into a text column there, or shorten them",
                    to.type_name
                ));
            }
        }
    }
    Ok(measured)
}

/// The width of a destination column `to` of type `character varying(n)` or `character(n)` (or
/// an array of either) narrower than the source's `from` (`text`, `character varying`
/// unbounded or wider, or an array of it): a longer value whose excess is spaces is cut to it
/// without an error (the SQL standard's rule), a longer one fails (types74 F3, recheck75 F2:
/// `'ab   '` arrived as `'ab'`, exit 0). A domain over one, or a composite's field, is not
/// measured here.
///
/// ```
/// use copyman_job::plan::narrower_varchar;
///
/// assert_eq!(narrower_varchar("text", "character varying(2)"), Some((2, false)));
/// assert_eq!(narrower_varchar("character varying(10)", "character varying(2)"), Some((2, false)));
/// assert_eq!(narrower_varchar("character varying", "character varying(5)"), Some((5, false)));
/// assert_eq!(narrower_varchar("character varying(2)", "character varying(5)"), None);
/// assert_eq!(narrower_varchar("integer", "character varying(2)"), None);
/// assert_eq!(narrower_varchar("text", "text"), None);
/// // An array's elements, and character(n) from a type whose trailing spaces count.
/// assert_eq!(narrower_varchar("text[]", "character varying(2)[]"), Some((2, true)));
/// assert_eq!(narrower_varchar("text", "character(2)"), Some((2, false)));
/// assert_eq!(narrower_varchar("character(5)", "character(2)"), None);
/// ```
///
/// Returns the width, and whether the values are an array's elements.
pub fn narrower_varchar(from: &str, to: &str) -> Option<(usize, bool)> {
    let (from, to, array) = match (from.strip_suffix("[]"), to.strip_suffix("[]")) {
        (Some(from), Some(to)) => (from, to, true),
        (None, None) => (from, to, false),
        _ => return None,
    };
    let width = |t: &str| {
        (t.strip_prefix("character varying("))
            .or_else(|| t.strip_prefix("character("))?
            .strip_suffix(')')?
            .parse::<usize>()
            .ok()
    };
    let to = width(to)?;
    // (character(n)'s own trailing spaces count for nothing: cut from one, nothing is lost.)
    match from {
        "text" | "character varying" => Some((to, array)),
        from if from.starts_with("character varying(") => {
            width(from).filter(|&w| w > to).map(|_| (to, array))
        }
        _ => None,
    }
}

/// A measure of the source's values for a destination column that cuts them without an error
/// ([`values_cut`]), kept to be taken again in the source's transaction just before its COPY, in
/// the snapshot the COPY reads: the plan's was taken in another, and a longer value committed in
/// between arrived cut, exit 0 (copy44 F1). One table's, a `copy` query's, a job's table's.
#[derive(Debug, Clone)]
pub struct Measure {
    /// Where the values are read ([`table_rows`] or [`query_rows`]).
    pub rows: String,
    columns: Vec<Ident>,
    source: Relation,
    /// Each destination's label, relation and encoding, as [`values_cut`] takes them.
    dests: Vec<(String, Relation, String)>,
    /// A `--send`'s query: run again read-only, in a savepoint (the transaction is the copy's).
    query: bool,
}

impl Measure {
    /// What [`values_cut`] was given (`query`: `rows` are a query's, run again read-only).
    pub fn new(
        rows: String,
        columns: &[Ident],
        source: &Relation,
        dests: &[(&str, &Relation, String)],
        query: bool,
    ) -> Self {
        Self {
            rows,
            columns: columns.to_vec(),
            source: source.clone(),
            dests: (dests.iter())
                .map(|(label, rel, encoding)| {
                    ((*label).to_owned(), (*rel).clone(), encoding.clone())
                })
                .collect(),
            query,
        }
    }

    /// Measures again on `source`, in its transaction.
    ///
    /// # Errors
    /// A value that would arrive cut, or that could not be measured, said as [`values_cut`]
    /// says it.
    pub fn again(&self, source: &mut Connection) -> Result<(), String> {
        let dests: Vec<(&str, &Relation, String)> = (self.dests.iter())
            .map(|(label, rel, encoding)| (label.as_str(), rel, encoding.clone()))
            .collect();
        let measure = |source: &mut Connection| {
            values_cut(source, Ok(&self.rows), &self.columns, &self.source, &dests).map(|_| ())
        };
        if !self.query {
            return measure(source);
        }
        let step = |source: &mut Connection, sql: &str| {
            source.execute(sql).map(|_| ()).map_err(|e| {
                format!(
                    "the source could not measure its values again: {}",
                    crate::job::describe(&e)
                )
            })
        };
        step(source, "SAVEPOINT copyman_measure")?;
        step(source, "SET LOCAL transaction_read_only = on")?;
        let measured = measure(source);
        step(source, "ROLLBACK TO SAVEPOINT copyman_measure")?;
        step(source, "RELEASE SAVEPOINT copyman_measure")?;
        measured
    }
}

/// The major version of a `server_version_num`.
pub fn major(version: u32) -> u32 {
    if version >= 100_000 {
        version / 10_000
    } else {
        version / 100
    }
}

/// The format chosen for a table, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatChoice {
    /// The format.
    pub format: Format,
    /// Why it was chosen, for the log and `--dry-run`.
    pub reason: String,
    /// A warning for the user: binary was forced over columns it does not carry faithfully.
    pub warning: Option<String>,
}

/// Chooses the format: `forced` if given (with a warning when it is binary over columns whose
/// binary form copyman cannot vouch for); else, between servers of one major version
/// (`all_servers`, `same_major`), binary when every copied column has the same trusted type on
/// every side, text otherwise.
///
/// # Errors
/// `--format binary` over a column that binary COPY would misread on a destination (see
/// [`binary_misreads`]): the values would be stored wrong, without an error.
pub fn choose_format(
    forced: Option<Format>,
    columns: Option<&[Ident]>,
    source: Option<&Relation>,
    dests: &[(&str, &Relation)],
    all_servers: bool,
    same_major: bool,
) -> Result<FormatChoice, String> {
    Ok(match (forced, columns, source) {
        (Some(format), _, _) => {
            let mut warning = None;
            if let (Some(columns), Some(source)) = (columns, source) {
                if format != Format::Binary {
                    warning = conversions(columns, source, dests, true);
                } else if let Err(why) = binary_misreads(columns, source, dests) {
                    return Err(why);
                } else if let Some(why) = no_binary_input(dests) {
                    return Err(format!("--format binary: {why}; give --format text"));
                } else {
                    // What would round or cut is said as under text (the server applies a
                    // destination's modifiers to binary input as to text), and a binary form
                    // copyman cannot vouch for, besides.
                    let said = conversions(columns, source, dests, true);
                    let untrusted = binary_types(columns, source, dests)
                        .err()
                        .filter(|why| !said.as_ref().is_some_and(|s| s.contains(why.as_str())))
                        .map(|why| {
                            format!(
                                "--format binary, but {why} (--format text converts each value)"
                            )
                        });
                    warning = match (said, untrusted) {
                        (Some(a), Some(b)) => Some(format!("{a}; {b}")),
                        (a, b) => a.or(b),
                    };
                }
            }
            let given = match format {
                Format::Csv => "--format csv, --header or a *.csv file",
                Format::Text => "--format text",
                Format::Binary => "--format binary",
            };
            FormatChoice {
                format,
                reason: format!("given: {given}"),
                warning,
            }
        }
        (None, Some(columns), Some(source)) if all_servers => {
            let (format, reason) = if !same_major {
                (
                    Format::Text,
                    "the servers' major versions differ".to_owned(),
                )
            } else {
                match binary_types(columns, source, dests) {
                    Ok(()) => (
                        Format::Binary,
                        "every copied column has the same type on every server".to_owned(),
                    ),
                    Err(why) => (Format::Text, why),
                }
            };
            FormatChoice {
                format,
                reason,
                warning: conversions(columns, source, dests, true),
            }
        }
        (None, _, _) => FormatChoice {
            format: Format::Text,
            reason: "a file or stdin is at one end".to_owned(),
            warning: None,
        },
    })
}

/// The built-in types whose binary form is an OID naming an object of the server that sent it
/// (`regclass` and its kin): on another server the same number names another object, or none.
const OID_ALIAS_NAMES: [&str; 11] = [
    "regproc",
    "regprocedure",
    "regoper",
    "regoperator",
    "regclass",
    "regtype",
    "regconfig",
    "regdictionary",
    "regnamespace",
    "regrole",
    "regcollation",
];

/// A type's name without its modifiers: `numeric(12,2)` → `numeric`, `timestamp(3) with time
/// zone` → `timestamp with time zone`, `character varying(10)[]` → `character varying[]`.
fn base_type(type_name: &str) -> String {
    let mut base = String::with_capacity(type_name.len());
    let mut depth = 0usize;
    for c in type_name.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            _ if depth == 0 => base.push(c),
            _ => {}
        }
    }
    base.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether two types (without modifiers) have one binary form: the same type, or two of the
/// string types (`text`, `character varying`, `character`: the string's bytes).
fn one_binary_form(a: &str, b: &str) -> bool {
    let strings = ["text", "character varying", "character"];
    // An interval's fields (`interval year to month`) are a modifier, applied on receipt.
    let interval = |t: &str| t == "interval" || t.starts_with("interval ");
    a == b || (strings.contains(&a) && strings.contains(&b)) || (interval(a) && interval(b))
}

/// How binary COPY would store a source column's values wrong in a destination column without an
/// error ([`binary_misread`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryMisread {
    /// The values are OIDs (`regclass` and its kin), which name other objects, or none, on
    /// another server.
    Oid,
    /// The destination's type is another than the source's: a receive function reads the bytes
    /// it is given as its own type (an `int4`'s four bytes are a valid `text`).
    OtherType,
    /// A type of one name is made of other types on each side (a domain, range or multirange
    /// over other base types, an enum here and a range there, composite fields of other types).
    OtherForm,
}

impl BinaryMisread {
    /// What is wrong, for column `column` of type `from` on the source and `to` on `label`.
    pub fn describe(self, column: &str, from: &Column, to: &Column, label: &str) -> String {
        match self {
            Self::Oid => format!(
                "column {column} is of type {}, whose binary form is an OID of the source's",
                from.type_name
            ),
            Self::OtherType => format!(
                "column {column} is {} on the source but {} on {label}",
                from.type_name, to.type_name
            ),
            Self::OtherForm => format!(
                "column {column} is of type {}, whose binary form differs on {label} (other \
                 base types, or type OIDs that server would refuse)",
                from.type_name
            ),
        }
    }
}

/// Whether binary COPY would store the values of source column `from` wrong in destination
/// column `to` without an error, and how. Types that differ only in their modifiers
/// (`numeric(12,2)` and `numeric(10,2)`) and the string types among themselves read each other's
/// bytes: the receiving side applies its modifier to binary input as to text.
pub fn binary_misread(from: &Column, to: &Column) -> Option<BinaryMisread> {
    let from_base = base_type(&from.type_name);
    if OID_ALIAS_NAMES.contains(&from_base.trim_end_matches("[]")) {
        return Some(BinaryMisread::Oid);
    }
    // A domain over the other's type (binary keys vouched for: no OID alias underneath).
    if from.same_base(to) && from.binary.is_some() && to.binary.is_some() {
        return None;
    }
    let to_base = base_type(&to.type_name);
    if !one_binary_form(&from_base, &to_base) {
        return Some(BinaryMisread::OtherType);
    }
    // Keys are compared when one side has one: a type of one name that copyman trusts on one
    // side and not on the other is made of other types.
    let known = from.binary.is_some() || to.binary.is_some();
    (to_base == from_base && known && from.binary != to.binary).then_some(BinaryMisread::OtherForm)
}

/// Whether two columns that read one binary file read its bytes as other values: both have a
/// binary form copyman vouches for ([`Column::binary`](crate::sql::Column)), and those differ
/// once domains are seen as their base types (a domain over `int4` reads an `int4`'s bytes as
/// the `int4` does). Where either form is not vouched for, `false`: it cannot be told.
pub fn binary_forms_differ(one: &Column, other: &Column) -> bool {
    let form = |key: &str| {
        let mut parts: Vec<String> = key
            .split_whitespace()
            .filter(|part| !part.starts_with("d@"))
            .map(|part| {
                let part = part.replace("/b", "");
                part.trim_end_matches('@').to_owned()
            })
            .collect();
        parts.sort();
        parts
    };
    match (&one.binary, &other.binary) {
        (Some(a), Some(b)) => form(a) != form(b),
        _ => false,
    }
}

/// A column's [`Column::parts`] (`/b numeric(12,4), /2 timestamp(0)`) in words: each type
/// with where it is in the value, a domain's base type being the value itself.
///
/// ```
/// use copyman_job::plan::parts_words;
///
/// assert_eq!(parts_words("/b numeric(5,2)"), "numeric(5,2)");
/// assert_eq!(
///     parts_words("/b/1 numeric(4,1), /2/e timestamp(0) without time zone"),
///     "numeric(4,1) (field 1), timestamp(0) without time zone (field 2's elements)"
/// );
/// ```
pub fn parts_words(parts: &str) -> String {
    let words: Vec<String> = parts
        .split(", /")
        .map(|part| {
            let (path, type_name) = part
                .trim_start_matches('/')
                .split_once(' ')
                .unwrap_or(("", part));
            let place: Vec<String> = path
                .split('/')
                .filter_map(|step| match step {
                    "" | "b" => None,
                    "e" => Some("elements".to_owned()),
                    "s" => Some("subtype".to_owned()),
                    "m" => Some("ranges".to_owned()),
                    n => Some(format!("field {n}")),
                })
                .collect();
            match place.as_slice() {
                [] => type_name.to_owned(),
                _ => format!("{type_name} ({})", place.join("'s ")),
            }
        })
        .collect();
    words.join(", ")
}

/// Whether binary COPY would store a copied column's values wrong on a destination without an
/// error ([`binary_misread`]), which `--format binary` must then refuse.
///
/// # Errors
/// The first such column, its types and the destination's label, with the way out.
pub fn binary_misreads(
    columns: &[Ident],
    source: &Relation,
    dests: &[(&str, &Relation)],
) -> Result<(), String> {
    for name in columns {
        let Some(from) = source.column(name) else {
            continue;
        };
        for (label, rel) in dests {
            let Some(to) = rel.column(name) else { continue };
            if let Some(how) = binary_misread(from, to) {
                return Err(format!(
                    "--format binary: {}; binary COPY does not convert values, so they would be \
                     stored wrong without an error (--format text converts each value)",
                    how.describe(&name.to_string(), from, to, label)
                ));
            }
        }
    }
    Ok(())
}

/// Whether a destination relation whose `COPY n` does not count the rows it stores
/// ([`Relation::counts_unchecked`]: a view with an INSTEAD OF trigger) may be copied into:
/// refused (the error) unless the caller lets counts go unchecked (`--allow-count-mismatch`),
/// and then said (the warning). One rule for one table, `copy` and a job.
///
/// # Errors
/// Its count would go unchecked, and the caller did not allow it.
pub fn uncounted(rel: &Relation, allow_count_mismatch: bool) -> Result<Option<String>, String> {
    match rel.counts_unchecked() {
        None => Ok(None),
        Some(why) if allow_count_mismatch => Ok(Some(format!(
            "{why}: its rows are not counted (--allow-count-mismatch)"
        ))),
        Some(why) => Err(format!(
            "{why} (--allow-count-mismatch copies into it unchecked)"
        )),
    }
}

/// The built-in types whose values carry a time zone: `timestamptz` and `timetz`.
const ZONED: [u32; 2] = [1184, 1266];
/// The built-in types whose text is read in `DateStyle`'s order: `date`, `timestamp`,
/// `timestamptz`.
const DATED: [u32; 3] = [1082, 1114, 1184];
/// `interval`, whose text is read in `IntervalStyle`.
const INTERVAL: [u32; 1] = [1186];

/// How `--verify` reads back a destination's column `here` that holds the source's column
/// `theirs` in another type: in the source's type, through its text (`{}` the column). A time
/// that has a zone on one side only is its wall clock in the zone the copy read or wrote it in
/// (`zones`: the source session's `TimeZone`, the destination's): a `timestamp` or `date` the
/// destination read into a `timestamptz` in its zone, a `timestamptz` the source wrote into a
/// `timestamp` in its own. The checksum prints times in UTC, and read back in UTC those were
/// another wall clock than the source's (a faithful copy said to differ, for ever).
pub fn read_back(theirs: &Column, here: &Column, zones: (Option<&str>, Option<&str>)) -> String {
    const STAMP: u32 = 1114;
    const DATE: u32 = 1082;
    const STAMPTZ: u32 = 1184;
    // A domain as its base type, which holds the same values and which the destination has
    // (types69 F13: read back in the source's domain, 42704 there, a faithful copy failed
    // --verify for ever).
    let base = |c: &Column| c.base.as_ref().map(|(oid, _)| *oid).or(c.type_oid());
    let ty = theirs.base_name();
    let zone = match (base(theirs), base(here)) {
        (Some(STAMP | DATE), Some(STAMPTZ)) => zones.1,
        (Some(STAMPTZ), Some(STAMP)) => zones.0,
        _ => None,
    };
    match zone {
        Some(zone) => format!("CAST(({{}} AT TIME ZONE {}) AS {ty})", sql::literal(zone)),
        None => format!("CAST(CAST({{}} AS text) AS {ty})"),
    }
}

/// The form in which `--verify` reads a column of a type of the source's own (an enum, a
/// domain, an extension's type like `citext`) held on a destination in `text`, `varchar` or a
/// type of its own (the same extension's type in another schema), on every side: as `text`.
/// Read back in the source's type, the destination would need that type, which it may not have
/// (42704, for ever); the text the copy stored is the source's text form, which no setting
/// changes where the types hold no date, time, float, money, bytea, interval or object name.
/// `None` otherwise.
pub fn compared_as_text(theirs: &Column, here: &Column) -> Option<&'static str> {
    // Beside the dates, times, intervals, money and object names: `time`, the floats
    // (`extra_float_digits`) and `bytea` (`bytea_output`).
    const PRINTED_AS_SET: [u32; 4] = [1083, 700, 701, 17];
    let user_type = |c: &Column| c.type_oid().is_some_and(|oid| oid >= 16_384);
    let settled = |c: &Column| {
        [
            &DATED[..],
            &ZONED,
            &INTERVAL,
            &MONEY,
            &NAMED_ON_SEARCH_PATH,
            &PRINTED_AS_SET,
        ]
        .iter()
        .all(|oids| !c.holds(oids))
    };
    let string = here.type_name == "text" || here.type_name.starts_with("character varying");
    let into = string || (user_type(here) && settled(here));
    (user_type(theirs) && settled(theirs) && into).then_some("CAST({} AS pg_catalog.text)")
}

/// The form in which `--verify` reads a column the source holds as `text` or `varchar` and a
/// destination as a built-in type: in that type on every side, the source's text cast to it.
/// Read back as text, the destination's canonical form (`a0ee…` of `A0EE…`, `t` of `TRUE`,
/// `1000` of `1e3`, `[5,16)` of `[5,15]`, `12:00:00` of `12:00`) differed from every faithful
/// copy's source, exit 4 for ever (types44 F1, types46 F3). A numeric is read without its
/// modifier: one the destination rounded still differs.
///
/// With the form, the settings the destinations read such text in, which the source's cast is
/// made in too ([`checksum_reads`]): none for the types whose text every session reads alike
/// (numbers, uuids, network addresses, JSON, ranges of those, …: copyman's sessions pin the
/// float and money forms); a date's or timestamp's `DateStyle` order, a zone's `TimeZone`, an
/// interval's `IntervalStyle`, an array's `array_nulls` (`{NULL}` is a NULL element or the
/// string) for the others: cast in the source's own, the text could read as another value than
/// the destination stored (types50 F2, F3: faithful copies differed for ever). `None`
/// otherwise.
pub fn compared_in_destination_type(
    theirs: &Column,
    here: &Column,
) -> Option<(&'static str, &'static [&'static str])> {
    // (`character(n)` and `name` too: recheck51 F3.)
    // A string, a domain over one or an array of them (recheck52 F2); `citext` too, in
    // whichever schema: its text is a string's (recheck51b F3).
    const STRINGS: [u32; 4] = [25, 1043, 1042, 19];
    let at = |at: &str| (theirs.leaves.iter()).any(|l| l.at == at && STRINGS.contains(&l.oid));
    let citext = |name: &str| name == "citext" || name.ends_with(".citext");
    let string = at("")
        || at("/e")
        || [&theirs.type_name, theirs.base_name()]
            .iter()
            .any(|name| citext(name) || name.strip_suffix("[]").is_some_and(citext))
        || matches!(theirs.type_oid(), Some(25 | 1043 | 1042 | 19));
    // A number into money (12.50 as $12.50), compared as numbers, so that one the money rounded
    // (12.505 as $12.51) differs as a numeric's rounding does; an integer into a boolean as
    // what the destination made of it (types50 F4, recheck50b F1: the other integers and the
    // floats could not be compared at all).
    let number = matches!(theirs.type_oid(), Some(20 | 21 | 23 | 700 | 701 | 1700));
    match here.type_oid()? {
        790 if number => {
            return Some(("pg_catalog.trim_scale(CAST({} AS pg_catalog.numeric))", &[]));
        }
        16 if matches!(theirs.type_oid(), Some(20 | 21 | 23)) => {
            return Some(("CAST(CAST({} AS pg_catalog.int4) AS pg_catalog.bool)", &[]));
        }
        _ => {}
    }
    const DATED: &[&str] = &["DateStyle", "TimeZone"];
    const DATED_ARRAY: &[&str] = &["DateStyle", "TimeZone", "array_nulls"];
    // A zone written as an abbreviation (`IST`) is read as `timezone_abbreviations` says.
    const IN_ZONES: &[&str] = &["DateStyle", "TimeZone", "timezone_abbreviations"];
    const IN_ZONES_ARRAY: &[&str] = &[
        "DateStyle",
        "TimeZone",
        "timezone_abbreviations",
        "array_nulls",
    ];
    const ARRAY: &[&str] = &["array_nulls"];
    const NONE: &[&str] = &[];
    const INTERVAL_STYLE: &[&str] = &["IntervalStyle"];
    const INTERVAL_ARRAY: &[&str] = &["IntervalStyle", "array_nulls"];
    // A domain as its base type (recheck51 F3): the cast reads the text as the domain's input
    // does, and a value of the domain casts to its base; an array of a domain as its base's
    // array (recheck51b F3).
    let built_in = |at: &str| (here.leaves.iter()).find(|l| l.at == at && l.oid < 16_384);
    let oid = match here.type_oid()? {
        oid if oid >= 16_384 => match built_in("") {
            Some(base) => base.oid,
            None => {
                let element = built_in("/e").filter(|e| !e.array)?.oid;
                (ARRAY_OF.iter()).find(|(e, _)| *e == element)?.1
            }
        },
        oid => oid,
    };
    let form = match oid {
        16 => ("CAST({} AS pg_catalog.bool)", NONE),
        // (types50 F4: these were compared as the source's text, and differed for ever.)
        790 => ("CAST({} AS pg_catalog.money)", NONE),
        26 => ("CAST({} AS pg_catalog.oid)", NONE),
        3615 => ("CAST({} AS pg_catalog.tsquery)", NONE),
        791 => ("CAST({} AS pg_catalog.money[])", ARRAY),
        1028 => ("CAST({} AS pg_catalog.oid[])", ARRAY),
        2206 => ("CAST({} AS pg_catalog.regtype)", NONE),
        3220 => ("CAST({} AS pg_catalog.pg_lsn)", NONE),
        4451 => ("CAST({} AS pg_catalog.int4multirange)", NONE),
        4536 => ("CAST({} AS pg_catalog.int8multirange)", NONE),
        4532 => ("CAST({} AS pg_catalog.nummultirange)", NONE),
        21 => ("CAST({} AS pg_catalog.int2)", NONE),
        23 => ("CAST({} AS pg_catalog.int4)", NONE),
        20 => ("CAST({} AS pg_catalog.int8)", NONE),
        1700 => (
            "pg_catalog.trim_scale(CAST({} AS pg_catalog.numeric))",
            NONE,
        ),
        700 => ("CAST({} AS pg_catalog.float4)", NONE),
        701 => ("CAST({} AS pg_catalog.float8)", NONE),
        2950 => ("CAST({} AS pg_catalog.uuid)", NONE),
        869 => ("CAST({} AS pg_catalog.inet)", NONE),
        650 => ("CAST({} AS pg_catalog.cidr)", NONE),
        829 => ("CAST({} AS pg_catalog.macaddr)", NONE),
        774 => ("CAST({} AS pg_catalog.macaddr8)", NONE),
        3802 => ("CAST({} AS pg_catalog.jsonb)", NONE),
        3614 => ("CAST({} AS pg_catalog.tsvector)", NONE),
        600 => ("CAST({} AS pg_catalog.point)", NONE),
        1083 => ("CAST({} AS pg_catalog.time)", NONE),
        3904 => ("CAST({} AS pg_catalog.int4range)", NONE),
        3926 => ("CAST({} AS pg_catalog.int8range)", NONE),
        3906 => ("CAST({} AS pg_catalog.numrange)", NONE),
        1000 => ("CAST({} AS pg_catalog.bool[])", ARRAY),
        1005 => ("CAST({} AS pg_catalog.int2[])", ARRAY),
        1007 => ("CAST({} AS pg_catalog.int4[])", ARRAY),
        1016 => ("CAST({} AS pg_catalog.int8[])", ARRAY),
        1021 => ("CAST({} AS pg_catalog.float4[])", ARRAY),
        1022 => ("CAST({} AS pg_catalog.float8[])", ARRAY),
        1009 => ("CAST({} AS pg_catalog.text[])", ARRAY),
        2951 => ("CAST({} AS pg_catalog.uuid[])", ARRAY),
        3807 => ("CAST({} AS pg_catalog.jsonb[])", ARRAY),
        // Read in the session's DateStyle and TimeZone, or IntervalStyle.
        1082 => ("CAST({} AS pg_catalog.date)", DATED),
        1114 => ("CAST({} AS pg_catalog.timestamp)", DATED),
        1184 => ("CAST({} AS pg_catalog.timestamptz)", IN_ZONES),
        1266 => ("CAST({} AS pg_catalog.timetz)", IN_ZONES),
        1186 => ("CAST({} AS pg_catalog.interval)", INTERVAL_STYLE),
        3912 => ("CAST({} AS pg_catalog.daterange)", DATED),
        3908 => ("CAST({} AS pg_catalog.tsrange)", DATED),
        3910 => ("CAST({} AS pg_catalog.tstzrange)", IN_ZONES),
        4535 => ("CAST({} AS pg_catalog.datemultirange)", DATED),
        4533 => ("CAST({} AS pg_catalog.tsmultirange)", DATED),
        4534 => ("CAST({} AS pg_catalog.tstzmultirange)", IN_ZONES),
        1182 => ("CAST({} AS pg_catalog.date[])", DATED_ARRAY),
        1115 => ("CAST({} AS pg_catalog.timestamp[])", DATED_ARRAY),
        1185 => ("CAST({} AS pg_catalog.timestamptz[])", IN_ZONES_ARRAY),
        1270 => ("CAST({} AS pg_catalog.timetz[])", IN_ZONES_ARRAY),
        3913 => ("CAST({} AS pg_catalog.daterange[])", DATED_ARRAY),
        3909 => ("CAST({} AS pg_catalog.tsrange[])", DATED_ARRAY),
        3911 => ("CAST({} AS pg_catalog.tstzrange[])", IN_ZONES_ARRAY),
        1187 => ("CAST({} AS pg_catalog.interval[])", INTERVAL_ARRAY),
        // (recheck51 F3: these differed for ever.)
        1183 => ("CAST({} AS pg_catalog.time[])", ARRAY),
        1231 => (sql::NUMBERS_TRIMMED, ARRAY),
        1041 => ("CAST({} AS pg_catalog.inet[])", ARRAY),
        651 => ("CAST({} AS pg_catalog.cidr[])", ARRAY),
        1040 => ("CAST({} AS pg_catalog.macaddr[])", ARRAY),
        3905 => ("CAST({} AS pg_catalog.int4range[])", ARRAY),
        3927 => ("CAST({} AS pg_catalog.int8range[])", ARRAY),
        3907 => ("CAST({} AS pg_catalog.numrange[])", ARRAY),
        17 => ("CAST({} AS pg_catalog.bytea)", NONE),
        // (recheck51b F3: these too.)
        1001 => ("CAST({} AS pg_catalog.bytea[])", ARRAY),
        775 => ("CAST({} AS pg_catalog.macaddr8[])", ARRAY),
        143 => ("CAST({} AS pg_catalog.xml[])", ARRAY),
        // A `character(n)` element's padding is not its value, as a `character(n)`'s is not.
        1014 => (
            "CAST(CAST({} AS pg_catalog.bpchar[]) AS pg_catalog.text[])",
            ARRAY,
        ),
        _ => return None,
    };
    // An array's text the source's own array output wrote (quoting a string `NULL`), cast
    // element by element: no `array_nulls` reads it (recheck52 F2: a `citext[]` into `date[]`
    // was left to a cast to the source's type, which the destination lacks).
    let (form, reading) = form;
    let reading = match (theirs.leaves.iter()).any(|l| l.at.is_empty() && l.array) {
        false => reading,
        true if reading == DATED_ARRAY => DATED,
        true if reading == IN_ZONES_ARRAY => IN_ZONES,
        true if reading == INTERVAL_ARRAY => INTERVAL_STYLE,
        true if reading == ARRAY => NONE,
        true => reading,
    };
    string.then_some((form, reading))
}

/// The array types of the built-in element types [`compared_in_destination_type`] compares an
/// array of in: an array of a domain over one is compared as that array.
const ARRAY_OF: [(u32, u32); 31] = [
    (16, 1000),
    (21, 1005),
    (23, 1007),
    (20, 1016),
    (700, 1021),
    (701, 1022),
    (1700, 1231),
    (25, 1009),
    (1042, 1014),
    (2950, 2951),
    (3802, 3807),
    (1082, 1182),
    (1114, 1115),
    (1184, 1185),
    (1266, 1270),
    (1083, 1183),
    (1186, 1187),
    (3912, 3913),
    (3908, 3909),
    (3910, 3911),
    (3904, 3905),
    (3926, 3927),
    (3906, 3907),
    (869, 1041),
    (650, 651),
    (829, 1040),
    (774, 775),
    (17, 1001),
    (142, 143),
    (790, 791),
    (26, 1028),
];

/// The settings every side's `--verify` checksum is to read text in, where a column is
/// compared in a destination's type ([`compared_in_destination_type`]) that is read in the
/// settings `reading`: those every destination compared (`dests`) reads the copy in, the
/// source's cast made in them too. `None` where those differ between destinations or are not
/// known ([`read_otherwise`] refuses a copy where they differ), or the zone is a host's own.
///
/// The checksum's output stays ISO and one zone on every side: one instant is one text.
pub fn checksum_reads(
    reading: &[&'static str],
    dests: &[&ReadSettings],
) -> Option<Vec<(&'static str, String)>> {
    let (first, others) = dests.split_first()?;
    let mut sets: Vec<(&'static str, String)> = Vec::new();
    for &setting in reading {
        let value_of = |s: &ReadSettings| match setting {
            "DateStyle" => s
                .date_style
                .as_deref()
                .map(|d| format!("ISO, {}", date_order(d))),
            "TimeZone" => s.time_zone.clone(),
            // `postgres`, `postgres_verbose` and `iso_8601` read an interval alike.
            "IntervalStyle" => (s.interval_style.as_deref())
                .map(|i| if i == "sql_standard" { i } else { "postgres" }.to_owned()),
            "array_nulls" => s.array_nulls.clone(),
            "timezone_abbreviations" => s.zone_abbreviations.clone(),
            _ => None,
        };
        let value = value_of(first)?;
        // Two names of UTC are one zone; a host's own zone (`localtime`) is not even itself.
        let alike = |v: &str| match setting {
            "TimeZone" => same_zone(&value, v),
            _ => v == value,
        };
        if !alike(&value)
            || !others
                .iter()
                .all(|s| value_of(s).is_some_and(|v| alike(&v)))
        {
            return None;
        }
        if !sets.iter().any(|(name, _)| *name == setting) {
            sets.push((setting, value));
        }
    }
    Some(sets)
}

/// The settings a destination reads text as a date, a time, an interval or an array in, as its
/// session reported them (or, where it does not report them, answered).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadSettings {
    /// `TimeZone`: the zone of a time written without one.
    pub time_zone: Option<String>,
    /// `DateStyle`: the order of a date's fields.
    pub date_style: Option<String>,
    /// `IntervalStyle`: `sql_standard` applies a leading sign to the whole interval.
    pub interval_style: Option<String>,
    /// `timezone_abbreviations`: what a zone written as an abbreviation (`IST`) means. Not
    /// reported by the server: asked ([`ReadSettings::asked`]) where it matters.
    pub zone_abbreviations: Option<String>,
    /// `array_nulls`: whether an unquoted `NULL` element of an array's text is a NULL. Not
    /// reported by the server: asked ([`ReadSettings::asked`]) where it matters.
    pub array_nulls: Option<String>,
}

impl ReadSettings {
    /// The settings `session` reads in.
    pub fn of(session: &copyman_core::session::Session) -> Self {
        let setting = |name| session.parameter(name).map(str::to_owned);
        Self {
            time_zone: setting("TimeZone"),
            date_style: setting("DateStyle"),
            interval_style: setting("IntervalStyle"),
            zone_abbreviations: None,
            array_nulls: None,
        }
    }

    /// [`ReadSettings::of`] `conn`'s session, with what it does not report asked where a copied
    /// column (of `columns`) needs it: `timezone_abbreviations` where one is read into a time
    /// with a zone from something else (text: `'12:00 IST'` is India's or Israel's noon as that
    /// setting says), `array_nulls` where one is read into an array from something else (text:
    /// `{NULL}` is a NULL element or the string as that setting says).
    pub fn asked(
        conn: &mut Connection,
        source: &Relation,
        columns: &[Ident],
        rel: &Relation,
    ) -> Self {
        let read_into = |into: fn(&Column) -> bool| {
            columns.iter().any(|name| {
                source.column(name).is_some_and(|c| !into(c)) && rel.column(name).is_some_and(into)
            })
        };
        let zoned = read_into(|c| c.holds(&ZONED));
        Self::asked_if(conn, zoned, read_into(Column::holds_array))
    }

    /// [`ReadSettings::asked`] where what the source writes is not known yet (`copy` mode's
    /// `--receive` tables): asked wherever `rel` has a column of a zoned time, or an array.
    pub fn asked_of(conn: &mut Connection, rel: &Relation) -> Self {
        let zoned = rel.columns.iter().any(|c| c.holds(&ZONED));
        Self::asked_if(conn, zoned, rel.columns.iter().any(Column::holds_array))
    }

    fn asked_if(conn: &mut Connection, zones: bool, arrays: bool) -> Self {
        let mut settings = Self::of(conn.session());
        let mut ask = |name: &str| {
            let sql = format!("SELECT pg_catalog.current_setting('{name}')");
            conn.query(&sql)
                .ok()
                .and_then(|rows| rows.first()?.first().cloned().flatten())
        };
        if zones {
            settings.zone_abbreviations = ask("timezone_abbreviations");
        }
        if arrays {
            settings.array_nulls = ask("array_nulls");
        }
        settings
    }
}

/// The order `style` (a `DateStyle`) reads a date's fields in: `DMY` (`EURO`, `European`),
/// `YMD`, else `MDY` (`04/03/2024` is the 3rd of April).
///
/// ```
/// use copyman_job::plan::date_order;
///
/// assert_eq!(date_order("ISO, DMY"), "DMY");
/// assert_eq!(date_order("SQL, European"), "DMY");
/// assert_eq!(date_order("Postgres"), "MDY");
/// ```
pub fn date_order(style: &str) -> &'static str {
    let style = style.to_ascii_uppercase();
    ["DMY", "YMD"]
        .into_iter()
        .find(|o| style.contains(o) || (*o == "DMY" && style.contains("EURO")))
        .unwrap_or("MDY")
}

/// The names PostgreSQL knows for UTC (and GMT, the same offset for ever).
const UTC_NAMES: [&str; 18] = [
    "utc",
    "etc/utc",
    "uct",
    "etc/uct",
    "universal",
    "etc/universal",
    "zulu",
    "etc/zulu",
    "gmt",
    "etc/gmt",
    "gmt0",
    "etc/gmt0",
    "gmt+0",
    "etc/gmt+0",
    "gmt-0",
    "etc/gmt-0",
    "greenwich",
    "etc/greenwich",
];

/// The zone names whose rules are each host's own (`localtime` is a link to the host's
/// `/etc/localtime` where PostgreSQL uses the system's zone data; `posixrules` the rules a
/// POSIX zone string takes its transitions from): one name, other zones on other servers.
const HOST_ZONES: [&str; 2] = ["localtime", "posixrules"];

/// Whether two `TimeZone` settings read a time without a zone alike: the same name (but one
/// of the host's own, [`HOST_ZONES`]), or two names of UTC.
fn same_zone(a: &str, b: &str) -> bool {
    let utc = |z: &str| UTC_NAMES.contains(&z.to_ascii_lowercase().as_str());
    let host = |z: &str| HOST_ZONES.iter().any(|h| z.eq_ignore_ascii_case(h));
    (a.eq_ignore_ascii_case(b) && !host(a)) || (utc(a) && utc(b))
}

/// Between servers, where destinations would store different values for one source row: a
/// copied column holds text on the source that each destination reads in a setting of its own,
/// and those settings differ:
/// - no time zone on the source (a `timestamp`, a `date`, text), one there (`timestamptz`,
///   `timetz`): read in each `TimeZone`, another instant;
/// - no date on the source (text), a date there (`date`, `timestamp`, `timestamptz`): read in
///   each `DateStyle`'s order (`DMY`, `MDY`, `YMD`), another day (`04/03/2024`);
/// - no interval on the source (text), an interval there: read in each `IntervalStyle`,
///   `sql_standard` applying a leading sign to the whole value (`-1 2:00`);
/// - no array on the source (text), an array there: read in each `array_nulls` (`{NULL}` a NULL
///   element, or the string).
///
/// Each destination is given with its label, relation and settings; domains, arrays, ranges and
/// composites of those types count as them. (A date or an interval the source writes itself is
/// ISO or `postgres` style, which every setting reads alike.)
pub fn read_otherwise(
    source: &Relation,
    columns: &[Ident],
    dests: &[(&str, &Relation, &ReadSettings)],
) -> Option<String> {
    struct Rule {
        holds: fn(&Column) -> bool,
        setting: &'static str,
        value_of: fn(&ReadSettings) -> Option<&str>,
        alike: fn(&str, &str) -> bool,
        how: &'static str,
        what: &'static str,
        given_by: &'static str,
    }
    let rules = [
        Rule {
            holds: |c| c.holds(&ZONED),
            setting: "TimeZone",
            value_of: |s| s.time_zone.as_deref(),
            alike: same_zone,
            how: "no time zone on the source but one on the destinations, which read it in \
                  their own TimeZone",
            what: "instant",
            given_by: "PGTZ or the CONN's options",
        },
        Rule {
            holds: |c| c.holds(&ZONED),
            setting: "timezone_abbreviations",
            value_of: |s| s.zone_abbreviations.as_deref(),
            alike: |a, b| a == b,
            how: "no time zone on the source but one on the destinations, which read a zone \
                  written as an abbreviation (IST) as their own timezone_abbreviations say",
            what: "instant",
            given_by: "the CONN's options",
        },
        Rule {
            holds: |c| c.holds(&DATED),
            setting: "DateStyle",
            value_of: |s| s.date_style.as_deref(),
            alike: |a, b| date_order(a) == date_order(b),
            how: "text on the source but a date (or a timestamp) on the destinations, which \
                  read it in their own DateStyle's order of a date's fields",
            what: "date",
            given_by: "PGDATESTYLE or the CONN's options",
        },
        Rule {
            holds: |c| c.holds(&INTERVAL),
            setting: "IntervalStyle",
            value_of: |s| s.interval_style.as_deref(),
            alike: |a, b| (a == "sql_standard") == (b == "sql_standard"),
            how: "text on the source but an interval on the destinations, which read it in \
                  their own IntervalStyle (sql_standard applies a leading sign to the whole \
                  value)",
            what: "interval",
            given_by: "the CONN's options",
        },
        // (recheck51b F4: `{NULL,a}` a NULL element on one destination, the string on
        // another, exit 0.)
        Rule {
            holds: Column::holds_array,
            setting: "array_nulls",
            value_of: |s| s.array_nulls.as_deref(),
            alike: |a, b| a == b,
            how: "text on the source but an array on the destinations, which read an unquoted \
                  NULL element as their own array_nulls says (a NULL, or the string NULL)",
            what: "array",
            given_by: "the CONN's options",
        },
    ];
    for rule in rules {
        // Every copied column the rule takes (types43 F9: one a run, four runs for four).
        let hit: Vec<&Ident> = (columns.iter())
            .filter(|name| {
                source.column(name).is_some_and(|c| !(rule.holds)(c))
                    && (dests.iter())
                        .any(|(_, rel, _)| rel.column(name).is_some_and(|c| (rule.holds)(c)))
            })
            .collect();
        if hit.is_empty() {
            continue;
        }
        let mut seen: Option<(&str, &str)> = None;
        for (label, rel, settings) in dests {
            if !hit
                .iter()
                .any(|name| rel.column(name).is_some_and(|c| (rule.holds)(c)))
            {
                continue;
            }
            let Some(value) = (rule.value_of)(settings) else {
                continue;
            };
            match seen {
                None => seen = Some((label, value)),
                Some((first, first_value)) if !(rule.alike)(first_value, value) => {
                    let Rule {
                        setting,
                        how,
                        what,
                        given_by,
                        ..
                    } = rule;
                    let host = if first_value.eq_ignore_ascii_case(value) {
                        " (the zone of each server's host, which may be another on each)"
                    } else {
                        ""
                    };
                    // Two names of one zone (US/Eastern, America/New_York) read alike: what
                    // copyman cannot compare is said as such (types43 F10).
                    let differ = if setting == "TimeZone" {
                        "wherever those zones' rules differ (copyman does not compare them)"
                    } else {
                        ""
                    };
                    let names: Vec<String> = hit.iter().map(ToString::to_string).collect();
                    let columns = match names.as_slice() {
                        [one] => format!("column {one} holds"),
                        many => format!("columns {} hold", many.join(", ")),
                    };
                    // Text may carry its zone in each value: said as text, not as holding none
                    // (types46 F2: a column whose every value had its offset).
                    let text = hit.iter().all(|name| {
                        source.column(name).is_some_and(|c| {
                            c.type_name == "text" || c.type_name.starts_with("character varying")
                        })
                    });
                    let how = match (text, setting) {
                        (true, "TimeZone") => {
                            "text on the source (a value without a UTC offset the destinations \
                             read in their own TimeZone)"
                        }
                        _ => how,
                    };
                    return Some(format!(
                        "{columns} {how}, and those differ: {first} has {setting} \
                         {first_value}, {label} has {value}{host}; each would store another \
                         {what} for the same row{}{differ}: give them the same {setting} \
                         ({given_by}), or copy into each alone",
                        if differ.is_empty() { "" } else { " " }
                    ));
                }
                Some(_) => {}
            }
        }
    }
    None
}

/// `xml`.
const XML: [u32; 1] = [142];

/// Why binary would change the `xml` values of `columns` where the data passes in `encoding`
/// (a `client_encoding` other than UTF8): `xml_send` writes each value with an XML declaration
/// of that encoding, which `xml_recv` stores (`<?xml version="1.0" encoding="LATIN1"?><a/>`
/// for `<a/>`); text writes the value as it is. `None` in UTF8 or SQL_ASCII (which
/// `xml_send` declares no encoding for), or without `xml`.
///
/// ```
/// use copyman_job::plan::xml_declared;
///
/// assert!(xml_declared(Some("UTF8"), std::iter::empty()).is_none());
/// ```
pub fn xml_declared<'c>(
    encoding: Option<&str>,
    mut columns: impl Iterator<Item = &'c Column>,
) -> Option<String> {
    let plain = |e: &str| {
        ["UTF8", "SQL_ASCII"]
            .iter()
            .any(|p| e.eq_ignore_ascii_case(p))
    };
    let encoding = encoding.filter(|e| !plain(e))?;
    let column = columns.find(|c| c.holds(&XML))?;
    Some(format!(
        "column {} holds xml, whose binary form carries an XML declaration of the sessions' \
         client_encoding {encoding}, which the destinations would store in each value",
        column.name
    ))
}

/// `money`.
const MONEY: [u32; 1] = [790];

/// The built-in number types (`int2`, `int4`, `int8`, `float4`, `float8`, `numeric`): their text
/// is a plain number, which every `lc_monetary` reads as the same amount where it counts in the
/// same fraction.
const NUMBERS: [u32; 6] = [20, 21, 23, 700, 701, 1700];

/// How a session writes and reads the text of the values whose form copyman's sessions pin
/// (`lc_monetary=C`, `array_nulls=on`): asked of a copy's session and of one in its database's
/// own settings ([`ServerForms`]), the two say where a source's free text would be read
/// otherwise than psql reads it there.
///
/// A `money` value is stored as a whole number of its database's smallest unit — cents where
/// `lc_monetary` is `C` or `en_US`, yen where it is `ja_JP` — and copyman copies that number
/// (binary; text written and read in the C locale by every copy session): between databases
/// whose locales count in other fractions, `$12.34` (1234 cents) is stored as `¥1,234`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextForms {
    /// The session's `lc_monetary`.
    pub locale: String,
    /// The digits of its amounts after the decimal point (2 for `C`, 0 for `ja_JP`).
    pub digits: u32,
    /// How it writes an amount of −1234.56: `-$1,234.56` in the C locale, `-1.234,56 €` under
    /// `de_DE` (its separators are how it reads one).
    pub money: String,
    /// Its `array_nulls`: whether an unquoted `NULL` in an array's text is a NULL element
    /// (`on`) or the string `NULL`.
    pub array_nulls: bool,
}

impl TextForms {
    /// Asked of `conn`. `None` where the server does not answer.
    pub fn of(conn: &mut Connection) -> Option<Self> {
        let rows = conn
            .query(
                "SELECT pg_catalog.current_setting('lc_monetary'), \
                 pg_catalog.scale('1'::pg_catalog.money::pg_catalog.numeric), \
                 (-1234.56)::pg_catalog.numeric::pg_catalog.money::pg_catalog.text, \
                 pg_catalog.current_setting('array_nulls')",
            )
            .ok()?;
        let row = rows.first()?;
        Some(Self {
            locale: row.first()?.clone()?,
            digits: row.get(1)?.as_deref()?.parse().ok()?,
            money: row.get(2)?.clone()?,
            array_nulls: row.get(3)?.as_deref()? == "on",
        })
    }

    /// Whether it reads a plain number's text (`1234.5`, as numbers are written) as that
    /// amount: its decimal point is `.` (not `es_AR`'s `,`, where `.` separates thousands and
    /// `12.34` is 1234.00), or its amounts have no decimals (yen: rounded, as psql reads it).
    pub fn reads_numbers(&self) -> bool {
        let chars: Vec<char> = self.money.chars().collect();
        let point = chars
            .iter()
            .rposition(char::is_ascii_digit)
            .and_then(|last| (last + 1).checked_sub(self.digits as usize + 1))
            .and_then(|at| chars.get(at));
        self.digits == 0 || point == Some(&'.')
    }
}

/// What a server's sessions make of text: its database's own forms (asked on a session in its
/// own settings) and its copy session's (the C locale's money and `array_nulls=on`, unless the
/// CONN names them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerForms {
    /// The database's ([`TextForms::of`] on a session in its own settings).
    pub database: TextForms,
    /// The copy's session's.
    pub session: TextForms,
}

impl ServerForms {
    /// Asked of `session` (a copy's) and of a session `own` opens in its database's own
    /// settings (`None`: the CONN names the settings, its word for the database's: none
    /// needed).
    ///
    /// # Errors
    /// Why the database's forms cannot be asked (a role's `CONNECTION LIMIT`: the session does
    /// not open), naming `whom`, with `way` on — refused, not passed over, by the callers:
    /// passed over, `'12,34'` was stored as 1234.00.
    pub fn ask<E: std::fmt::Display>(
        whom: &str,
        way: &str,
        session: &mut Connection,
        own: Option<impl FnOnce() -> Result<Connection, E>>,
    ) -> Result<Self, String> {
        let cannot = |why: &str| {
            format!(
                "cannot ask {whom}'s database how it reads money and arrays from text (on a \
                 session of its own settings: {why}), which a copied column needs; {way}"
            )
        };
        let session =
            TextForms::of(session).ok_or_else(|| cannot("the copy's session did not answer"))?;
        let Some(own) = own else {
            let database = session.clone();
            return Ok(Self { database, session });
        };
        let mut own = own().map_err(|e| cannot(&e.to_string()))?;
        let database = TextForms::of(&mut own).ok_or_else(|| cannot("it did not answer"))?;
        Ok(Self { database, session })
    }
}

/// Where a copied column (of `columns`) holds `money` (a domain, an array or a composite of it
/// too) between the source and one destination: on both sides its stored count carries over as
/// it is, in each database's unit; on one side only it goes through text, written or read in
/// that side's session's money form ([`TextForms`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MoneySides {
    /// A column of money on both sides.
    pub both: bool,
    /// A column of money on the source only (text, numeric … on the destination).
    pub source_only: bool,
    /// A column of money on the destination only.
    pub destination_only: bool,
    /// A column of money on the destination only where the source writes free text (`text`,
    /// `varchar` …, a composite's field of them), whose money reading depends on the reader's
    /// locale (`12,34` is 1234.00 in the C locale, 12.34 under `de_DE`).
    pub destination_only_text: bool,
    /// A column of money on the destination only where the source writes a number.
    pub destination_only_number: bool,
}

impl MoneySides {
    /// How `columns` meet money between `source` and `rel`.
    pub fn of(source: &Relation, columns: &[Ident], rel: &Relation) -> Self {
        let mut sides = Self::default();
        for name in columns {
            let (Some(from), Some(to)) = (source.column(name), rel.column(name)) else {
                continue;
            };
            // Place by place (a composite's field, an array's element): what the destination
            // reads there from what the source writes at the same place.
            for leaf in to.leaves.iter().filter(|l| MONEY.contains(&l.oid)) {
                let written: Vec<u32> = written_at(from, &leaf.at).map(|l| l.oid).collect();
                if written.iter().any(|oid| MONEY.contains(oid)) {
                    sides.both = true;
                } else {
                    sides.destination_only = true;
                    let number = written.iter().any(|oid| NUMBERS.contains(oid));
                    sides.destination_only_number |= number;
                    sides.destination_only_text |= !number;
                }
            }
            for leaf in from.leaves.iter().filter(|l| MONEY.contains(&l.oid)) {
                sides.source_only |= !written_at(to, &leaf.at).any(|l| MONEY.contains(&l.oid));
            }
        }
        sides
    }

    /// Whether any copied column holds money on either side.
    pub fn any(self) -> bool {
        self.both || self.source_only || self.destination_only
    }
}

/// Where a copied column (of `columns`) holds an array on a destination only (read from the
/// source's text: `{a,NULL}` in a text column): its destination session reads an unquoted
/// `NULL` element as its `array_nulls` says; or an array on both sides, whose source writes a
/// NULL element as an unquoted `NULL` (and a string `NULL` quoted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArraySides {
    /// An array on the destination only.
    pub from_text: bool,
    /// An array on both sides.
    pub both: bool,
}

impl ArraySides {
    /// How `columns` meet arrays between `source` and `rel`.
    pub fn of(source: &Relation, columns: &[Ident], rel: &Relation) -> Self {
        let mut sides = Self::default();
        for name in columns {
            let (Some(from), Some(to)) = (source.column(name), rel.column(name)) else {
                continue;
            };
            for leaf in to.leaves.iter().filter(|l| l.array) {
                if written_at(from, &leaf.at).any(|l| l.array) {
                    sides.both = true;
                } else {
                    sides.from_text = true;
                }
            }
        }
        sides
    }

    /// Whether a destination's `array_nulls` matters to a copied column.
    pub fn any(self) -> bool {
        self.from_text || self.both
    }
}

/// The types `column`'s values are made of at place `at` ([`Leaf::at`]).
fn written_at<'a>(column: &'a Column, at: &'a str) -> impl Iterator<Item = &'a Leaf> {
    column.leaves.iter().filter(move |l| l.at == at)
}

/// The currency of a money form ([`TextForms::money`]): what is left of it without its digits,
/// signs, separators and spaces — `$` for `-$1,234.56`, `€` for `-1.234,56 €`.
fn currency(money: &str) -> String {
    money
        .chars()
        .filter(|c| !c.is_ascii_digit() && !c.is_whitespace() && !"-+.,()'’".contains(*c))
        .collect()
}

/// `count` (of a money's smallest unit) as an amount of `digits` decimals: 1234 is `12.34` in
/// cents, `1234` in yen.
fn amount(count: u64, digits: u32) -> String {
    match digits {
        0 => count.to_string(),
        d => {
            let scale = 10u64.pow(d.min(9));
            let width = d as usize;
            format!("{}.{:0width$}", count / scale, count % scale)
        }
    }
}

/// Between servers, where a destination would store another amount than the source's:
/// - a `money` column on both sides, into a database whose `lc_monetary` counts in another
///   fraction: the stored count carries over (`$12.34` arrived as `¥1,234`, exit 0; pg_dump's
///   text is refused there);
/// - a `money` column on the source only, whose session writes it in another fraction than its
///   database counts in (`¥1,234` written as `$12.34` into a text column);
/// - a `money` column on a destination only, whose session reads text in another fraction than
///   its database counts in (`12.34` stored as `¥1,234`; psql stores `¥12`), or reads a
///   source's free text with other separators than its database (`12,34` stored as 1234.00
///   under the C locale's, where a `de_DE` database and psql read 12.34).
///
/// `source`: its forms, if asked; `dests`: each destination's label, how its columns meet money
/// ([`MoneySides`]) and its forms, if asked.
pub fn money_meant_otherwise(
    source: Option<&ServerForms>,
    dests: &[(&str, MoneySides, Option<&ServerForms>)],
) -> Option<String> {
    let lc = |unit: &TextForms| format!("lc_monetary '{}' ({} decimals)", unit.locale, unit.digits);
    for (label, sides, forms) in dests {
        if let (true, Some(src), Some(dst)) = (sides.both, source, forms)
            && src.database.digits != dst.database.digits
        {
            return Some(format!(
                "a money value is stored as a count of the smallest unit of the lc_monetary its \
                 session reads it in (its database's, its role's or its CONN's setting), and \
                 copied as that count: the source's is {}, {label}'s {}: an amount of {} on the \
                 source would be {} there; give both one lc_monetary (ALTER DATABASE … SET \
                 lc_monetary; or where a role or a CONN sets it, there), or leave the money \
                 columns out",
                lc(&src.database),
                lc(&dst.database),
                amount(1234, src.database.digits),
                amount(1234, dst.database.digits),
            ));
        }
        // In another currency: the count carries over, its currency does not (types69 F2:
        // `$12.34` became `£12.34` and `12,34 €`, exit 0; pg_dump's data fails to load there).
        if let (true, Some(src), Some(dst)) = (sides.both, source, forms)
            && currency(&src.database.money) != currency(&dst.database.money)
        {
            return Some(format!(
                "a money value is copied as a count of its smallest unit, without its currency, \
                 which the lc_monetary its session reads it in names (its database's, its \
                 role's or its CONN's setting): the source's is lc_monetary '{}' ({}), \
                 {label}'s '{}' ({}): an amount of {} on the source would be {} there; give \
                 both one lc_monetary (ALTER DATABASE … SET lc_monetary; or where a role or a \
                 CONN sets it, there), leave the money columns out, or convert them to numeric \
                 on the source (copyman copy --send); a destination's CONN that names the \
                 source's locale (options='-c lc_monetary={}') is taken at its word",
                src.database.locale,
                src.database.money,
                dst.database.locale,
                dst.database.money,
                src.database.money,
                dst.database.money,
                src.database.locale,
            ));
        }
        if let (true, Some(src)) = (sides.source_only, source)
            && src.session.digits != src.database.digits
        {
            return Some(format!(
                "a source money column goes to {label} as text, written in its session's {}, \
                 while its database counts in {}: an amount of {} there would be written as {}; \
                 say the database's locale in the source's CONN (options='-c \
                 lc_monetary={}'), or copy the column as numeric",
                lc(&src.session),
                lc(&src.database),
                amount(1234, src.database.digits),
                amount(1234, src.session.digits),
                src.database.locale,
            ));
        }
        // Money on both sides goes as the source's session writes it when the copy is in text:
        // read in another form (a CONN's lc_monetary on one side only), another amount.
        if let (true, Some(src), Some(dst)) = (sides.both, source, forms)
            && src.session.money != dst.session.money
        {
            return Some(format!(
                "the source's session writes money as {} (lc_monetary '{}') and {label}'s \
                 session reads it as {} (lc_monetary '{}'): a money column copied as text \
                 would be read as another amount there, or fail; name one lc_monetary in both \
                 CONNs, or in neither",
                src.session.money, src.session.locale, dst.session.money, dst.session.locale,
            ));
        }
        let Some(dst) = forms.filter(|_| sides.destination_only) else {
            continue;
        };
        if dst.session.digits != dst.database.digits {
            return Some(format!(
                "{label} reads its money column from text in its session's {}, while its \
                 database counts in {}: a source's {} would be stored as an amount of {} \
                 there; say the database's locale in that destination's CONN (options='-c \
                 lc_monetary={}'), which reads text as psql would",
                lc(&dst.session),
                lc(&dst.database),
                amount(1234, dst.session.digits),
                amount(1234, dst.database.digits),
                dst.database.locale,
            ));
        }
        if sides.destination_only_text && dst.session.money != dst.database.money {
            return Some(format!(
                "{label} reads its money column from the source's text in its session's \
                 lc_monetary '{}', which writes an amount as {}, while its database's '{}' \
                 writes it as {} and psql reads text there so: a text such as '12,34', \
                 '1.234' or '$5' means another amount to each (or fails in one); say in that \
                 destination's CONN which locale the source's text is written in (options='-c \
                 lc_monetary={}' reads it as psql would, options='-c lc_monetary=C' as copyman \
                 does: either reads every money value it gets as text so, a number's or the \
                 source's money too), or convert it to numeric on the source (copyman copy \
                 --send)",
                dst.session.locale,
                dst.session.money,
                dst.database.locale,
                dst.database.money,
                dst.database.locale,
            ));
        }
        if sides.destination_only_number && !dst.session.reads_numbers() {
            return Some(format!(
                "{label} reads its money column from the source's numbers in its session's \
                 lc_monetary '{}' (its CONN's), where a number's text (12.34) is another amount \
                 ({}'s separators): copy the number columns without that option in the CONN \
                 (copyman table … --columns), or convert them on the source",
                dst.session.locale, dst.session.money,
            ));
        }
    }
    None
}

/// Between servers, where the source writes a `money` column into a destination's text (or
/// any type it reads from text) in its session's form, and its database's form is another
/// (`$1,234.56` written where its database and psql write `1.234,56 €`): the amount is the
/// same, the text is not the source's own. A warning naming the way to write it in the
/// database's form, or `None`.
pub fn money_written_otherwise(
    source: Option<&ServerForms>,
    dests: &[(&str, MoneySides)],
) -> Option<String> {
    let src = source?;
    if src.session.money == src.database.money || src.session.digits != src.database.digits {
        return None;
    }
    let (label, _) = dests.iter().find(|(_, sides)| sides.source_only)?;
    Some(format!(
        "a source money column goes to {label} as text in its session's lc_monetary '{}' \
         ({}), where its database's '{}' writes {} (as psql and the source's own ::text do): \
         say the database's locale in the source's CONN (options='-c lc_monetary={}') to \
         write the source's own form",
        src.session.locale,
        src.session.money,
        src.database.locale,
        src.database.money,
        src.database.locale,
    ))
}

/// Between servers, where a destination would read an array's text otherwise than meant:
/// - an array on the destination only, read from the source's free text (`{a,NULL}` in a text
///   column) by a session whose `array_nulls` is not its database's: a NULL element where its
///   database and psql read the string `NULL` (`array_nulls = off`), or the other way round;
/// - an array on both sides, read by a session whose `array_nulls` is off (a CONN that says
///   so): the source writes a NULL element as an unquoted `NULL`, stored as the string.
///
/// `dests`: each destination's label, how its columns meet arrays ([`ArraySides`]) and its
/// forms, if asked.
pub fn arrays_read_otherwise(dests: &[(&str, ArraySides, Option<&ServerForms>)]) -> Option<String> {
    let on_off = |on: bool| if on { "on" } else { "off" };
    let element = |on: bool| {
        if on {
            "a NULL element"
        } else {
            "the string NULL"
        }
    };
    for (label, sides, forms) in dests {
        let Some(forms) = forms else { continue };
        if sides.from_text && forms.session.array_nulls != forms.database.array_nulls {
            return Some(format!(
                "{label} reads an array column from the source's text with array_nulls {} in \
                 its session, where its database (and psql there) has array_nulls {}: an \
                 unquoted NULL element ('{{a,NULL}}') would be {} instead of {}; say in that \
                 destination's CONN how the source's text is meant: options='-c \
                 array_nulls={}' reads it as psql would there{}, options='-c array_nulls={}' as \
                 copyman does",
                on_off(forms.session.array_nulls),
                on_off(forms.database.array_nulls),
                element(forms.session.array_nulls),
                element(forms.database.array_nulls),
                on_off(forms.database.array_nulls),
                if sides.both && !forms.database.array_nulls {
                    " (not with an array column copied from the source's arrays too, whose NULL \
                     elements would become strings: copy those columns apart with --columns)"
                } else {
                    ""
                },
                on_off(forms.session.array_nulls),
            ));
        }
        if sides.both && !forms.session.array_nulls {
            return Some(format!(
                "{label}'s session has array_nulls off, and the source writes an array's NULL \
                 element as an unquoted NULL: it would be stored as the string NULL; leave \
                 array_nulls out of that destination's CONN"
            ));
        }
    }
    None
}

/// The built-in types whose values name an object of a schema and are written as the reading
/// session's `search_path` shows it (its schema left out where it is on it): `regproc`,
/// `regprocedure`, `regoper`, `regoperator`, `regclass`, `regtype`, `regconfig`,
/// `regdictionary`, `regcollation` (not `regnamespace` nor `regrole`).
const NAMED_ON_SEARCH_PATH: [u32; 9] = [24, 2202, 2203, 2204, 2205, 2206, 3734, 3769, 4191];

/// Where a source is read on its own `search_path` (a `--where`, a view, a `--send`), not the
/// empty one a table is read with: the copied columns whose values name objects as that
/// `search_path` shows them (`app.r` written `r` where `app` is on it), which each destination
/// reads on its own — it may name another object there. A warning naming them, or `None`.
pub fn named_on_search_path(source: &Relation, columns: &[Ident]) -> Option<String> {
    let named: Vec<String> = columns
        .iter()
        .filter_map(|name| {
            let column = source.column(name)?;
            column
                .holds(&NAMED_ON_SEARCH_PATH)
                .then(|| format!("{name} ({})", column.type_name))
        })
        .collect();
    (!named.is_empty()).then(|| {
        format!(
            "{}: read on the source's own search_path (a --where, a view, a --send query), \
             values naming objects are written as it shows them, without their schema where it \
             is on it, and each destination reads such a name on its own search_path, where it \
             may name another object (a table copied without --where is read with an empty \
             search_path; or give the source one: options='-c search_path=', and qualify the \
             names the statement uses)",
            named.join(", ")
        )
    })
}

/// Whether the role of `conn` (idle) may lock the view `view`: a view's lock takes the tables it
/// reads too, with its owner's rights, or the role's own for a `security_invoker` view (a role
/// that reads the view but only some columns of a table under it may not). Tried in a
/// transaction rolled back at once, without waiting for a lock held elsewhere.
pub fn may_lock_view(conn: &mut Connection, view: &TableName) -> bool {
    if conn.session().transaction_status() != TransactionStatus::Idle
        || conn.execute("BEGIN").is_err()
    {
        return false;
    }
    let tried = conn.execute(&format!("LOCK TABLE {view} IN ACCESS SHARE MODE NOWAIT"));
    let _ = conn.execute("ROLLBACK");
    match tried {
        Ok(_) => true,
        // Held by another: the rights are there, the lock comes later.
        Err(e) => e.db_error().is_some_and(|db| db.code == "55P03"),
    }
}

/// Why a read of the view `view` on `conn` would fail for row-level security (42501): a table
/// under it has policies that apply to the role it is read as — the view's owner, or the
/// caller for a `security_invoker` view — and the session reads with `row_security` off
/// (`row_security_active` says nothing of a view's tables). Asked by planning the read
/// (`EXPLAIN`, which applies the policies and runs nothing); `None` if it plans, or fails for
/// another reason (the COPY then says what the server says).
pub fn view_row_security(conn: &mut Connection, view: &TableName) -> Option<String> {
    let planned = conn.execute(&format!("EXPLAIN (COSTS OFF) SELECT * FROM {view}"));
    let said = planned.err()?;
    let db = said.db_error()?;
    (db.code == "42501" && db.message.contains("row-level security")).then(|| {
        format!(
            "{view} reads a table whose row-level security applies to the role it reads it as \
             (its owner, or the caller for a security_invoker view; the server: {}); copyman \
             reads with row_security off, as pg_dump does, so the COPY would fail rather than copy only \
             the rows the policies show: give the view to a role with BYPASSRLS (or the \
             table's owner), or give the source CONN options='-c row_security=on' to copy the \
             rows the policies show, or leave it out",
            db.message
        )
    })
}

/// Whether the source is read with `COPY (SELECT …)`: a view, a partitioned or foreign table or
/// a materialized view needs it, as does a generated column (which COPY's column list refuses).
pub fn needs_select(source: &Relation, columns: Option<&[Ident]>) -> bool {
    source.kind != "r"
        || columns
            .into_iter()
            .flatten()
            .any(|c| source.column(c).is_some_and(|c| c.generated))
}

/// The columns to copy, by name, or `None` for "as the destination has them" (a file source
/// without `--columns`).
///
/// # Errors
/// A message listing, per destination, the columns missing or extra (without `--columns`) or
/// the requested columns a side lacks.
pub fn resolve_columns(
    requested: &[Ident],
    source: Option<&Relation>,
    dests: &[(&str, &Relation)],
) -> Result<Option<Vec<Ident>>, String> {
    let columns: Vec<Ident> = if !requested.is_empty() {
        if let Some(source) = source {
            let missing: Vec<String> = requested
                .iter()
                .filter(|c| source.column(c).is_none())
                .map(ToString::to_string)
                .collect();
            if !missing.is_empty() {
                // A name folded to lower case where the table has it in capitals (`Email`):
                // its quoted form, as a table name's is given (types66 F5).
                let folded = |c: &Ident| {
                    (source.column(c).is_none())
                        .then(|| {
                            (source.columns.iter()).find(|s| {
                                s.name.as_str().to_lowercase() == c.as_str().to_lowercase()
                            })
                        })
                        .flatten()
                };
                let hint = match requested.iter().any(|c| folded(c).is_some()) {
                    false => String::new(),
                    true => {
                        let given: Vec<String> = (requested.iter())
                            .map(|c| folded(c).map_or(c, |s| &s.name))
                            .map(|c| copyman_core::file_start::column_name(c.as_str()))
                            .collect();
                        format!(
                            " (a name's letters fold to lower case unless it is quoted: give \
                             --columns '{}')",
                            given.join(",")
                        )
                    }
                };
                return Err(format!(
                    "--columns: the source table has no column {}{hint}",
                    missing.join(", ")
                ));
            }
        }
        requested.to_vec()
    } else if let Some(source) = source {
        source
            .columns
            .iter()
            .filter(|c| !c.generated)
            .map(|c| c.name.clone())
            .collect()
    } else {
        // A file's fields are positional: each destination's own columns, in its order — which
        // must then be the same everywhere, or one file would load differently into each.
        let order = |rel: &Relation| -> Vec<Ident> {
            let stored = rel.columns.iter().filter(|c| !c.generated);
            stored.map(|c| c.name.clone()).collect()
        };
        let Some(((first_label, first), rest)) = dests.split_first() else {
            return Ok(None);
        };
        let expected = order(first);
        if let Some((label, rel)) = rest.iter().find(|(_, rel)| order(rel) != expected) {
            let show = |columns: &[Ident]| {
                let names: Vec<String> = columns.iter().map(ToString::to_string).collect();
                names.join(", ")
            };
            return Err(format!(
                "a file's fields are read by position, and the destinations' columns differ: \
                 {first_label} has ({}), {label} has ({})",
                show(&expected),
                show(&order(rel))
            ));
        }
        return Ok(None);
    };
    let mut problems = Vec::new();
    for (label, rel) in dests {
        let (mut missing, mut generated_there) = (Vec::new(), Vec::new());
        for name in &columns {
            match rel.column(name) {
                // A column there of that name but for its case is another column to the server
                // (a quoted "ID" is not id): said, since no --columns maps one onto the other.
                None => match rel
                    .columns
                    .iter()
                    .find(|c| c.name.as_str().eq_ignore_ascii_case(name.as_str()))
                {
                    Some(c) => missing.push(format!(
                        "{name} (it has {}, another name to the server: `copy` with column \
                         lists in --send and --receive maps them)",
                        c.name
                    )),
                    None => missing.push(name.to_string()),
                },
                Some(c) if c.generated => generated_there.push(name.to_string()),
                Some(_) => {}
            }
        }
        let (mut extra, mut generated) = (Vec::new(), Vec::new());
        if requested.is_empty() {
            // A column the source has not, which takes its default (or NULL) for every row,
            // loses nothing: the copy goes on without it (an audit column, a column added on
            // one side first).
            // Not one the source generates: its values would be left behind (the destination
            // taking NULL or its default for every row).
            for c in rel.columns.iter().filter(|c| !c.generated) {
                let generated_at_source = source
                    .and_then(|s| s.column(&c.name))
                    .is_some_and(|s| s.generated);
                if columns.contains(&c.name) {
                    continue;
                }
                // (Not where an INSERT trigger of the table may fill it, as in copy mode: a
                // tenant id or an audit user set by a BEFORE trigger was refused, types43 F8;
                // the trigger is said as such.)
                if generated_at_source {
                    generated.push(c.name.to_string());
                } else if !c.fills_itself && rel.insert_triggers.is_none() {
                    extra.push(c.name.to_string());
                }
            }
        }
        // A column --columns leaves out gets its default, or NULL: one that takes neither (NOT
        // NULL, or a domain that refuses NULL, which COPY does not check) is refused here.
        let left_out: Vec<String> = if requested.is_empty() {
            Vec::new()
        } else {
            rel.columns
                .iter()
                .filter(|c| !c.generated && !c.fills_itself && !columns.contains(&c.name))
                .filter(|_| rel.insert_triggers.is_none())
                .map(|c| c.name.to_string())
                .collect()
        };
        let mut said = Vec::new();
        if !missing.is_empty() {
            said.push(format!("lacks {}", missing.join(", ")));
        }
        // It has them, generated: COPY cannot write them (it said "lacks", with advice for
        // the other way round, dump63 F2).
        if !generated_there.is_empty() {
            said.push(format!(
                "generates {}, which the source stores: COPY cannot write a generated column, \
                 whose values would be computed there, not copied (make it a plain column \
                 there, or leave it out with --columns)",
                generated_there.join(", ")
            ));
        }
        for name in &columns {
            let (Some(from), Some(to)) = (source.and_then(|s| s.column(name)), rel.column(name))
            else {
                continue;
            };
            if let Some(why) = lands_otherwise(from, to) {
                // The source's type too where it is named otherwise (another schema's type of
                // the same name: names42 F3 said the fields were the destination type's).
                let types = if from.type_name == to.type_name {
                    format!("of {}", to.type_name)
                } else {
                    format!("of {} ({} on the source)", to.type_name, from.type_name)
                };
                said.push(format!("has column {name} {types}: {why}"));
            }
        }
        if !extra.is_empty() {
            said.push(format!(
                "has {} that the source has not and that takes no default and refuses NULL \
                 (give it a DEFAULT there, or DROP NOT NULL)",
                extra.join(", ")
            ));
        }
        if !left_out.is_empty() {
            said.push(format!(
                "has {} that --columns leaves out and that takes no default and refuses NULL \
                 (NOT NULL, or of a domain that does)",
                left_out.join(", ")
            ));
        }
        if !generated.is_empty() {
            said.push(format!(
                "has {} that the source generates, whose values would be left behind \
                 (--columns naming them copies them)",
                generated.join(", ")
            ));
        }
        // Each item a clause of its own (two composites' reasons read as one, recheck42 F9).
        if !said.is_empty() {
            problems.push(format!("{label} {}", said.join("; and ")));
        }
    }
    // COPY cannot name an empty column list: with nothing to copy, a destination with columns
    // would read each empty row as its own columns ('' or NULL, not their defaults).
    if columns.is_empty()
        && let Some((label, _)) = dests
            .iter()
            .find(|(_, rel)| rel.columns.iter().any(|c| !c.generated))
    {
        return Err(format!(
            "the source has no column to copy, and COPY cannot name an empty column list: \
             {label} would read each row as its own columns ('' or NULL rather than their \
             defaults); give the source table the columns, or insert the rows otherwise"
        ));
    }
    if problems.is_empty() {
        return Ok(Some(columns));
    }
    let what = if requested.is_empty() {
        "the source's and the destinations' columns differ (table mode copies by name)"
    } else {
        "the columns --columns copies do not fit a destination"
    };
    Err(format!("{what}: {}", problems.join("; ")))
}

/// Whether choosing the columns to copy (`--columns`) is a way out of [`resolve_columns`]'s
/// refusal `why`: a column a destination lacks, holds otherwise or generates can be left out;
/// one the source has not that takes no default and refuses NULL cannot (types46 F1: the advice
/// led to a second refusal).
pub fn columns_may_mend(why: &str) -> bool {
    [
        "lacks ",
        "has column ",
        "that the source generates",
        "which the source stores",
    ]
    .iter()
    .any(|said| why.contains(said))
}

/// Why a column's values would be stored as others on the destination `to` though its type is
/// named alike: its composites' fields in another order ([`composite_reordered`]), its
/// ranges' subtypes ordered otherwise ([`range_reordered`]).
pub fn lands_otherwise(from: &Column, to: &Column) -> Option<String> {
    composite_reordered(from, to).or_else(|| range_reordered(from, to))
}

/// Why a column's range or multirange values would be stored as others on the destination
/// `to`: a range type they are made of (at the same place in the value) whose subtype orders
/// its values otherwise there — an enum's labels in another order, text of another collation
/// (a database's default one included) or operator class. Multirange input sorts its ranges
/// and merges those that overlap by that order, in text as in binary: `{[low,mid],[high,max]}`
/// stored `{[low,max]}`, without an error. Range input checks its bounds by it: bounds equal
/// there (a nondeterministic collation's `A` and `a`) make `(A,a)` empty, without an error;
/// bounds in the other order fail the copy once it began.
pub fn range_reordered(from: &Column, to: &Column) -> Option<String> {
    from.range_orders.iter().find_map(|(path, here)| {
        let (_, there) = to.range_orders.iter().find(|(p, _)| p == path)?;
        // Ranges over other subtypes are other types (converted in text, refused in binary).
        let (subtype, order) = here.split_once('\u{1f}')?;
        let (its, there) = there.split_once('\u{1f}')?;
        (its == subtype && there != order).then(|| {
            if path.ends_with("/m") {
                format!(
                    "a multirange whose ranges' subtype orders its values otherwise there (the \
                     source: {order}; there: {there}), and multirange input sorts and merges \
                     its ranges by that order: its values would be stored as other ranges"
                )
            } else {
                format!(
                    "a range whose subtype orders its values otherwise there (the source: \
                     {order}; there: {there}), and range input checks its bounds by that \
                     order: a range whose bounds are equal there would be stored empty, one \
                     whose bounds are in the other order there would fail the copy"
                )
            }
        })
    })
}

/// Why a column's composite values would land in other fields on the destination `to`: a
/// composite type (at the same place in the value) whose fields, by name, stand in another
/// order there (`(street, city)` against `(city, street)`). COPY fills a composite's fields by
/// position, in text as in binary, so the values would be swapped without an error. Or one of
/// another number of fields there: every value would fail (22P02, "too few columns"), said
/// before any row (it was called "made of other types", types41 F5). `None` when every field
/// both sides name is at the same position, and they have as many.
pub fn composite_reordered(from: &Column, to: &Column) -> Option<String> {
    for (path, fields) in &from.composites {
        let Some((_, there)) = to.composites.iter().find(|(p, _)| p == path) else {
            continue;
        };
        let moved = fields
            .iter()
            .enumerate()
            .any(|(i, f)| there.iter().position(|g| g == f).is_some_and(|j| j != i));
        let show = |f: &[String]| {
            let quoted: Vec<String> = f
                .iter()
                .map(|n| Ident::new(n.clone()).to_string())
                .collect();
            quoted.join(", ")
        };
        let at = if path.is_empty() {
            String::new()
        } else {
            format!(" ({})", place_in_value(path))
        };
        if fields.len() != there.len() {
            return Some(format!(
                "a composite type{at} of {} fields on the source ({}) and {} there ({}): COPY \
                 reads a composite's value field by field and refuses one with too few or too \
                 many (22P02), so every row holding a value would fail",
                fields.len(),
                show(fields),
                there.len(),
                show(there)
            ));
        }
        if moved {
            return Some(format!(
                "a composite type{at} whose fields are ({}) on the source and ({}) there, and COPY \
                 fills a composite's fields by position: its values would land in the wrong \
                 fields",
                show(fields),
                show(there)
            ));
        }
    }
    None
}

/// Why a column's composite values would land in fields of other names on the destination `to`:
/// a composite type (at the same place in the value) of as many fields there, none moved (that
/// is [`composite_reordered`]'s), some named otherwise (`(street, city)` against `(road, town)`).
/// COPY fills them by position: `street` into `road`, which may be what a renamed type meant,
/// or not (types64 F5: it was copied without a word). `None` when every field is named alike.
pub fn composite_renamed(from: &Column, to: &Column) -> Option<String> {
    if composite_reordered(from, to).is_some() {
        return None;
    }
    from.composites.iter().find_map(|(path, fields)| {
        let (_, there) = to.composites.iter().find(|(p, _)| p == path)?;
        let pairs: Vec<String> = (fields.iter().zip(there))
            .filter(|(f, g)| f != g)
            .map(|(f, g)| format!("{} into {}", Ident::new(f.clone()), Ident::new(g.clone())))
            .collect();
        let at = if path.is_empty() {
            String::new()
        } else {
            format!(" ({})", place_in_value(path))
        };
        (!pairs.is_empty()).then(|| {
            format!(
                "a composite type{at} whose fields are named otherwise there, and COPY fills a \
                 composite's fields by position: {}",
                pairs.join(", ")
            )
        })
    })
}

/// Where in a column's value a [`Leaf`] path points, in words: `/b/e/2` is
/// "field 2 of the array elements of its domain's base".
///
/// ```
/// use copyman_job::plan::place_in_value;
///
/// assert_eq!(place_in_value("/e"), "its array elements");
/// assert_eq!(place_in_value("/1/e"), "array elements of its field 1");
/// assert_eq!(place_in_value("/b/e/2"), "field 2 of the array elements of its domain's base");
/// ```
pub fn place_in_value(path: &str) -> String {
    let nouns: Vec<String> = (path.split('/').filter(|s| !s.is_empty()))
        .map(|step| match step {
            "e" => "array elements".to_owned(),
            "b" => "domain's base".to_owned(),
            "s" => "range bounds".to_owned(),
            "m" => "multirange's ranges".to_owned(),
            n => format!("field {n}"),
        })
        .rev()
        .collect();
    match nouns.split_last() {
        None => "its value".to_owned(),
        Some((last, [])) => format!("its {last}"),
        Some((last, [first, between @ ..])) => {
            let mut words = first.clone();
            for noun in between {
                words.push_str(&format!(" of the {noun}"));
            }
            format!("{words} of its {last}")
        }
    }
}

/// Whether binary COPY carries every copied column faithfully: the same type (name and
/// modifier) on every side, of a kind whose binary form is safe between servers.
///
/// # Errors
/// Why not, naming the first column and side that differ.
pub fn binary_types(
    columns: &[Ident],
    source: &Relation,
    dests: &[(&str, &Relation)],
) -> Result<(), String> {
    for name in columns {
        let Some(from) = source.column(name) else {
            return Err(format!("column {name} is not on the source"));
        };
        let Some(key) = &from.binary else {
            return Err(format!(
                "column {name} is of type {}, whose binary form copyman does not trust between \
                 servers",
                from.type_name
            ));
        };
        for (label, rel) in dests {
            let Some(to) = rel.column(name) else {
                return Err(format!("column {name} is not on {label}"));
            };
            // A domain over the other's type: `domain_recv` reads its base type's binary form.
            if from.same_base(to) && to.binary.is_some() {
                continue;
            }
            // `text` and `varchar` are one binary form (`textrecv` and `varchar_recv` read the
            // same bytes; a length the destination's modifier refuses fails): nothing to say
            // (types43 F4: a warning with no predicate of a pair binary carries alike).
            let text_like = |c: &Column| {
                c.base
                    .as_ref()
                    .is_some_and(|(oid, _)| [TEXT, VARCHAR].contains(oid))
            };
            if to.type_name != from.type_name && !(text_like(from) && text_like(to)) {
                return Err(format!(
                    "column {name} is {} on the source but {} on {label}",
                    from.type_name, to.type_name
                ));
            }
            if to.parts != from.parts {
                return Err(format!(
                    "column {name} is of type {}, made of other modifiers on {label}",
                    from.type_name
                ));
            }
            if to.binary.as_ref() != Some(key) {
                // Made of other types there (a domain or range over another base type), or of
                // the same with other OIDs (an array's, a composite's fields): said as either
                // (types46 F5: a domain's was said to carry OIDs, which it does not).
                return Err(format!(
                    "column {name} is of type {}, whose binary form differs on {label} \
                     (another base type there, or type OIDs that differ)",
                    from.type_name
                ));
            }
        }
    }
    no_binary_input(dests).map_or(Ok(()), Err)
}

/// A destination column of a type without binary input, copied or not: binary `COPY … FROM`
/// looks up every column's receive function and fails at once (`42883`) for such a table.
fn no_binary_input(dests: &[(&str, &Relation)]) -> Option<String> {
    dests.iter().find_map(|(label, rel)| {
        let column = rel.columns.iter().find(|c| !c.binary_input)?;
        Some(format!(
            "{label} has column {} of type {}, which has no binary input; binary COPY FROM \
             needs it for every column of the table, copied or not",
            column.name, column.type_name
        ))
    })
}

/// One file into destinations whose copied `columns` are of other types there (`numeric(10,3)`
/// here and `numeric(10,2)` there, `varchar(10)` and `varchar(3)`, `timestamp` and `date`):
/// each reads the file's text as its own type does, and they hold other values for one row —
/// as psql's `\copy` into each would, but a fan-out is read as one copy (it was said between
/// servers, not from a file). One warning naming them, or `None`.
pub fn file_read_as_other_types(columns: &[Ident], dests: &[(&str, &Relation)]) -> Option<String> {
    let mut said = Vec::new();
    for name in columns {
        let mut first: Option<(&str, &str)> = None;
        for (label, rel) in dests {
            let Some(column) = rel.column(name) else {
                continue;
            };
            match first {
                None => first = Some((label, column.type_name.as_str())),
                Some((at, type_name)) if type_name != column.type_name => {
                    said.push(format!(
                        "column {name} is {type_name} on {at} but {} on {label}",
                        column.type_name
                    ));
                    break;
                }
                Some(_) => {}
            }
        }
    }
    (!said.is_empty()).then(|| {
        format!(
            "{}: each destination reads the file's text as its own type does (rounded, refused or \
             read otherwise), and they may hold other values for the same row",
            said.join("; ")
        )
    })
}

/// What a conversion from type `from` to `to` loses or depends on that its note should say
/// (many60 F1, F4: a json's duplicate keys dropped, verified as equal; a time's value set by a
/// TimeZone the note did not name), after a comma; empty for the others.
fn conversion_words(from: &str, to: &str) -> &'static str {
    let zoned = |t: &str| t.starts_with("timestamp") && t.ends_with("with time zone");
    // Zoned times anywhere in the value: an array's elements, a range's bounds (recheck63 F6:
    // said of a timestamptz only).
    let holds_zoned = |t: &str| {
        let t = t.trim_end_matches("[]");
        zoned(t) || matches!(t, "tstzrange" | "tstzmultirange")
    };
    let unzoned = |t: &str| t.starts_with("timestamp") && t.ends_with("without time zone");
    // What a string's text becomes, said where --verify cannot see it: it compares the
    // source's text read as the destination's type (types64 F2, F3, F4).
    let string = |t: &str| {
        matches!(
            t,
            "text" | "name" | "citext" | "character" | "character varying"
        ) || t.starts_with("character(")
            || t.starts_with("character varying(")
    };
    let padded = |t: &str| t == "character" || t.starts_with("character(");
    let varying = |t: &str| t == "text" || t.starts_with("character varying");
    match (from, to) {
        ("json", "jsonb") => {
            " (jsonb keeps the last value of a key given twice in one object, and --verify \
             compares the values as jsonb: a value dropped so is not seen)"
        }
        (f, t) if padded(f) && varying(t) => {
            " (its blank padding arrives as trailing blanks, which count there, and --verify \
             does not see them; copyman copy with --send 'COPY (SELECT …, rtrim(col) …) TO \
             STDOUT' drops them)"
        }
        (f, "real" | "double precision") if string(f) => {
            " (its digits are rounded to the float's precision, and --verify compares the \
             source's text read as that type: a rounding is not seen)"
        }
        (f, "jsonb") if string(f) => {
            " (jsonb keeps the last value of a key given twice in one object, and --verify \
             compares the values as jsonb: a value dropped so is not seen)"
        }
        (f, "tsvector") if string(f) => {
            " (a tsvector sorts its words and drops the repeated, and --verify compares them as \
             tsvector)"
        }
        (f, "bytea") if string(f) => {
            " (the text is read as bytea's input: \\x41 is one byte, and --verify compares so)"
        }
        (f, "date") if string(f) => " (each value is read in the destination session's DateStyle)",
        ("time without time zone", "time with time zone") => {
            " (each value is given the offset of the destination session's TimeZone on the day \
             of the copy)"
        }
        (f, t) if zoned(f) && unzoned(t) => {
            " (each value is written as the wall-clock time of the source session's TimeZone)"
        }
        // (A date too: read as its midnight there, types69 F17.)
        (f, t) if (unzoned(f) || f == "date") && zoned(t) => {
            " (each value is read as a time of the destination session's TimeZone)"
        }
        // `oidin` wraps a negative number (types69 F19: -1 stored as 4294967295).
        ("smallint" | "integer" | "bigint", "oid" | "xid" | "regclass" | "regproc" | "regtype") => {
            " (a negative number is read as 2^32 plus it: -1 as 4294967295)"
        }
        (f, "text") if holds_zoned(f) => {
            " (each value is written as the wall-clock time and offset of the source session's \
             TimeZone: a run under another TimeZone stores other text for the same instant)"
        }
        _ => "",
    }
}

/// The copied columns whose type differs between the source and a destination in a way that
/// may change values — the destination reads each value as its own type does (a `numeric`
/// rounded to its scale, a `float8` to a `real`, a `timestamptz` without its offset, a `json`
/// object's duplicate keys dropped): one warning naming them, or `None` where every value reads
/// back unchanged (the same type, a wider one, or `text`). A row that would fail is said too:
/// an enum there lacking a label, a domain there checking what the source's column is not held
/// to. `verify` adds that `--verify` compares what was loaded (table mode and jobs have it;
/// `copy` has not).
pub fn conversions(
    columns: &[Ident],
    source: &Relation,
    dests: &[(&str, &Relation)],
    verify: bool,
) -> Option<String> {
    let mut said = Vec::new();
    let mut unreadable = Vec::new();
    for name in columns {
        let Some(from) = source.column(name) else {
            continue;
        };
        for (label, rel) in dests {
            // A domain there that checks what the source's column is not held to (one name,
            // `CHECK (VALUE > 10)` there, `> 0` here; NOT NULL): a row it refuses fails the
            // copy (types43 F6: "the same type on every server" was all the plan said).
            let stricter: Vec<&str> = (rel.column(name).into_iter())
                .flat_map(|to| &to.domain_checks)
                .filter(|check| !from.domain_checks.contains(check))
                .map(String::as_str)
                .collect();
            if let (false, Some(to)) = (stricter.is_empty(), rel.column(name)) {
                unreadable.push(format!(
                    "column {name} is {} on {label}, whose domain checks {}, which the source's \
                     column is not held to: a row it refuses would fail the copy ({})",
                    to.type_name,
                    stricter.join(" and "),
                    if stricter.iter().all(|c| *c == "NOT NULL") {
                        "23502"
                    } else {
                        "23514"
                    }
                ));
            }
            // A composite whose fields are named otherwise there: filled by position.
            if let Some((to, why)) =
                (rel.column(name)).and_then(|to| composite_renamed(from, to).map(|why| (to, why)))
            {
                unreadable.push(format!(
                    "column {name} is {} on {label}, {why}",
                    to.type_name
                ));
            }
            let Some(to) = rel.column(name).filter(|to| !from.same_base(to)) else {
                continue;
            };
            // An enum there without some of the source's labels, at one place in the value: a
            // row holding one fails (types41 F1: the plan said the types were the same).
            for (at, labels) in &from.enums {
                let Some((_, there)) = to.enums.iter().find(|(p, _)| p == at) else {
                    continue;
                };
                let lacking: Vec<&str> = (labels.iter())
                    .filter(|l| !there.contains(l))
                    .map(String::as_str)
                    .collect();
                if !lacking.is_empty() {
                    unreadable.push(format!(
                        "column {name} is {} on {label}, whose enum lacks the source's label{} \
                         {}: a row holding one would fail (22P02)",
                        to.type_name,
                        if lacking.len() == 1 { "" } else { "s" },
                        lacking.join(", ")
                    ));
                }
            }
            // Money is written with its symbol and separators (`$1,234.56`), which no type
            // but money and the strings reads: every value would fail (types41 F3).
            let money = |c: &Column| c.base.as_ref().is_some_and(|(oid, _)| MONEY.contains(oid));
            let reads_words = |c: &Column| {
                (c.base.as_ref()).is_some_and(|(oid, _)| [790, 25, 1043, 1042].contains(oid))
            };
            if money(from) && to.base.is_some() && !reads_words(to) {
                unreadable.push(format!(
                    "column {name} is money on the source but {} on {label}, which cannot read \
                     money's words ($1,234.56): every row holding a value would fail (22P02); \
                     copyman copy with --send 'COPY (SELECT …, {name}::numeric …) TO STDOUT' \
                     sends it as a number",
                    to.type_name
                ));
                continue;
            }
            // A number with a fraction into an integer: the integer types' input reads no
            // decimal point, so a value written with one fails, none is rounded — a
            // numeric(p,s>0) writes it always (types43 F3: "may be rounded" was said).
            let integer = |c: &Column| {
                c.base
                    .as_ref()
                    .is_some_and(|(oid, _)| INTEGERS.contains(oid))
            };
            let fraction = from.base.as_ref().and_then(|(oid, shown)| {
                let scale = (shown
                    .strip_prefix("numeric(")
                    .and_then(|r| r.strip_suffix(')')))
                .and_then(|r| r.split_once(','))
                .and_then(|(_, s)| s.trim().parse::<u32>().ok());
                match (*oid, scale) {
                    (1700, Some(scale)) if scale > 0 => Some("every row holding a value"),
                    (1700 | 700 | 701, _) => Some("a row holding a value with a fraction"),
                    _ => None,
                }
            });
            if let Some(which) = fraction.filter(|_| integer(to)) {
                unreadable.push(format!(
                    "column {name} is {} on the source but {} on {label}, whose input reads no \
                     decimal point: {which} would fail (22P02), none is rounded; copyman copy \
                     with --send 'COPY (SELECT …, round({name})::bigint …) TO STDOUT' rounds it",
                    from.type_name, to.type_name
                ));
                continue;
            }
            // A domain over `character(n)` or `bytea` into text: its base's padding or hex
            // digits, as the bare type's (it was not said).
            let base_changes = to.type_name == "text"
                && from.type_name != "text"
                && (from.leaves.iter()).any(|l| l.at.is_empty() && matches!(l.oid, 17 | 1042));
            if base_changes || !keeps_values(&from.type_name, &to.type_name) {
                said.push(format!(
                    "column {name} is {} on the source but {} on {label}{}",
                    from.type_name,
                    to.type_name,
                    conversion_words(&from.type_name, &to.type_name)
                ));
            } else if from.type_name == to.type_name
                && let (Some(a), Some(b)) = (&from.binary, &to.binary)
                && built_in_part(a) != built_in_part(b)
            {
                // One name over other types (a domain over int4 here, float4 there).
                said.push(format!(
                    "column {name} is {} on both sides, but made of other types on {label}",
                    from.type_name
                ));
            } else if from.type_name == to.type_name && from.parts != to.parts {
                // One name over other modifiers (a domain over numeric(12,4) here, (10,2) there).
                said.push(format!(
                    "column {name} is {} on both sides, but made of {} on the source and {} on \
                     {label}",
                    from.type_name,
                    parts_words(&from.parts),
                    parts_words(&to.parts)
                ));
            }
        }
    }
    let converted = (!said.is_empty()).then(|| {
        format!(
            "{}: the destination converts each value to its type (it may be rounded, refused or \
             read otherwise{})",
            said.join("; "),
            if verify {
                "; --verify compares the source's values as the destination's type reads them"
            } else {
                ""
            }
        )
    });
    let converted = match (converted, unreadable.is_empty()) {
        (converted, true) => converted,
        (None, false) => Some(unreadable.join("; ")),
        (Some(converted), false) => Some(format!("{}; {converted}", unreadable.join("; "))),
    };
    // A generated column is not copied: each destination computes it, by its own expression.
    let mut recomputed = Vec::new();
    for from in source.columns.iter().filter(|c| c.generated) {
        for (label, rel) in dests {
            if let Some(to) = rel.column(&from.name).filter(|to| to.generated)
                && to.generation != from.generation
            {
                recomputed.push(format!(
                    "column {} is generated as {} on the source but as {} on {label}",
                    from.name,
                    from.generation.as_deref().unwrap_or_default(),
                    to.generation.as_deref().unwrap_or_default()
                ));
            }
        }
    }
    let recomputed = (!recomputed.is_empty()).then(|| {
        format!(
            "{}: a generated column is computed by each destination, not copied (its values \
             will differ from the source's)",
            recomputed.join("; ")
        )
    });
    match (converted, recomputed) {
        (Some(a), Some(b)) => Some(format!("{a}; {b}")),
        (a, b) => a.or(b),
    }
}

/// The built-in types of a binary key ([`crate::sql::binary_key`]) and where they are in the
/// value: what a type of one name is made of, whatever OIDs the server gave its user-defined
/// parts (an enum's, a composite's).
fn built_in_part(key: &str) -> Vec<&str> {
    key.split_whitespace()
        .filter(|item| {
            let oid = item.split('@').next().unwrap_or_default();
            oid.parse::<u32>().is_ok_and(|oid| oid < 16_384)
        })
        .collect()
}

/// Whether every value of the type `format_type` names `from` reads back unchanged as `to`:
/// the destination prints each as the source printed it, the text the copy moves and `--verify`
/// compares. (A `real` read as `double precision` prints the same shortest decimal, though the
/// float8 stored is that decimal's nearest, not the float4 widened as a cast would widen it.)
fn keeps_values(from: &str, to: &str) -> bool {
    if from == to {
        return true;
    }
    if to == "text" {
        // Every value as its text, but a `character(n)` keeps its padding ('ab   ' no longer
        // equals 'ab'), a `bytea` becomes its hex digits (`\x0102`), not its characters, and a
        // `timestamptz` the source session's wall clock and offset, which its `TimeZone` sets
        // (types62 F2: two runs stored two texts, not a word).
        // The same of an array of them, and of a range of zoned times (recheck63 F6).
        return !matches!(
            modifiers(from.trim_end_matches("[]")).0.as_str(),
            "character" | "bytea" | "timestamp with time zone" | "tstzrange" | "tstzmultirange"
        );
    }
    if let (Some(from), Some(to)) = (from.strip_suffix("[]"), to.strip_suffix("[]")) {
        return keeps_values(from, to);
    }
    let (from_base, from_mod) = modifiers(from);
    let (to_base, to_mod) = modifiers(to);
    // An integer's digits: into a numeric of as many whole digits it reads back unchanged.
    let digits = |base: &str| match base {
        "smallint" => Some(5),
        "integer" => Some(10),
        "bigint" => Some(19),
        _ => None,
    };
    match (from_base.as_str(), to_base.as_str()) {
        // A length or precision kept or raised (or dropped: unlimited).
        (
            "character varying"
            | "bit varying"
            | "timestamp without time zone"
            | "timestamp with time zone"
            | "time without time zone"
            | "time with time zone"
            | "interval",
            _,
        ) if from_base == to_base => match (&from_mod[..], &to_mod[..]) {
            (_, []) => true,
            ([n], [m]) => m >= n,
            _ => false,
        },
        ("text", "character varying") | ("bit", "bit varying") => {
            match (&from_mod[..], &to_mod[..]) {
                (_, []) => true,
                ([n], [m]) => m >= n,
                _ => false,
            }
        }
        (int, "numeric") if digits(int).is_some() => match &to_mod[..] {
            [] => true,
            [p, s] => digits(int).is_some_and(|d| p - s >= d),
            _ => false,
        },
        ("numeric", "numeric") => match (&from_mod[..], &to_mod[..]) {
            (_, []) => true,
            ([p, s], [q, t]) => t >= s && q - t >= p - s,
            _ => false,
        },
        ("smallint", "integer" | "bigint" | "real" | "double precision")
        | ("integer", "bigint" | "double precision")
        | ("real", "double precision") => to_mod.is_empty(),
        _ => false,
    }
}

/// A type name and its modifiers: `numeric(12,2)` is `numeric` and `[12, 2]`,
/// `timestamp(3) with time zone` is `timestamp with time zone` and `[3]`; a name without them
/// is itself and none.
fn modifiers(name: &str) -> (String, Vec<i64>) {
    if let Some((base, rest)) = name.split_once('(')
        && let Some((inner, after)) = rest.split_once(')')
        && let Ok(mods) = inner.split(',').map(|m| m.trim().parse()).collect()
    {
        return (format!("{base}{after}"), mods);
    }
    (name.to_owned(), Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::{Column, parse_columns};

    /// A json's duplicate keys and a time's TimeZone are said where a conversion depends on
    /// them (many60 F1, F4), nothing for the others.
    #[test]
    fn conversions_say_what_they_drop_or_depend_on() {
        assert!(conversion_words("json", "jsonb").contains("a value dropped so is not seen"));
        let tz = "timestamp(3) with time zone";
        let plain = "timestamp without time zone";
        assert!(conversion_words(tz, plain).contains("the source session's TimeZone"));
        assert!(conversion_words(plain, tz).contains("the destination session's TimeZone"));
        assert!(conversion_words("date", tz).contains("the destination session's TimeZone"));
        assert!(conversion_words("integer", "oid").contains("-1 as 4294967295"));
        assert!(conversion_words(tz, "text").contains("offset of the source session's TimeZone"));
        // In an array or a range too (recheck63 F6).
        for zoned in [
            "timestamp with time zone[]",
            "tstzrange",
            "tstzmultirange[]",
        ] {
            assert!(conversion_words(zoned, "text").contains("source session's TimeZone"));
            assert!(!keeps_values(zoned, "text"), "{zoned}");
        }
        assert!(keeps_values("integer[]", "text") && keeps_values("tsrange", "text"));
        // What a string becomes where --verify cannot see it (types64 F2, F3, F4).
        for (from, to, said) in [
            ("text", "real", "a rounding is not seen"),
            (
                "character varying(20)",
                "double precision",
                "a rounding is not seen",
            ),
            ("text", "jsonb", "a value dropped so is not seen"),
            ("text", "tsvector", "drops the repeated"),
            ("text", "bytea", "is one byte"),
            ("character(5)", "text", "arrives as trailing blanks"),
            (
                "character(5)",
                "character varying(5)",
                "arrives as trailing blanks",
            ),
            ("text", "date", "destination session's DateStyle"),
            (
                "time without time zone",
                "time with time zone",
                "on the day of the copy",
            ),
        ] {
            assert!(conversion_words(from, to).contains(said), "{from} to {to}");
        }
        for (from, to) in [
            ("jsonb", "json"),
            ("integer", "bigint"),
            (tz, tz),
            ("text", "json"),
        ] {
            assert_eq!(conversion_words(from, to), "", "{from} to {to}");
        }
    }

    /// The destinations' settings, where they share them: a date's order with ISO output, two
    /// names of UTC as one, an interval style that reads alike as `postgres`; none where they
    /// differ, are not known, or the zone is each host's own.
    #[test]
    fn checksum_reads_the_destinations_shared_settings() {
        let reads = |style: &str, zone: &str, interval: &str, nulls: Option<&str>| ReadSettings {
            time_zone: Some(zone.into()),
            date_style: Some(style.into()),
            interval_style: Some(interval.into()),
            zone_abbreviations: None,
            array_nulls: nulls.map(Into::into),
        };
        let dmy = reads("SQL, DMY", "UTC", "sql_standard", Some("off"));
        let iso_dmy = reads("ISO, DMY", "Etc/UTC", "sql_standard", Some("off"));
        let all = ["DateStyle", "TimeZone", "IntervalStyle", "array_nulls"];
        assert_eq!(
            checksum_reads(&all, &[&dmy, &iso_dmy]),
            Some(vec![
                ("DateStyle", "ISO, DMY".to_owned()),
                ("TimeZone", "UTC".to_owned()),
                ("IntervalStyle", "sql_standard".to_owned()),
                ("array_nulls", "off".to_owned()),
            ])
        );
        let mdy = reads("ISO, MDY", "UTC", "iso_8601", None);
        assert_eq!(checksum_reads(&["DateStyle"], &[&dmy, &mdy]), None);
        assert_eq!(checksum_reads(&["array_nulls"], &[&dmy, &mdy]), None);
        assert_eq!(
            checksum_reads(&["IntervalStyle"], &[&mdy]),
            Some(vec![("IntervalStyle", "postgres".to_owned())])
        );
        assert_eq!(checksum_reads(&[], &[&dmy, &mdy]), Some(vec![]));
        let host = reads("ISO, MDY", "localtime", "postgres", None);
        assert_eq!(checksum_reads(&["TimeZone"], &[&host]), None);
        assert_eq!(checksum_reads(&["TimeZone"], &[]), None);
    }

    fn rel(columns: &[(&str, &str, bool, Option<&str>)]) -> Relation {
        Relation {
            kind: "r".into(),
            estimate: None,
            children: 0,
            view_takes_inserts: true,
            insert_triggers: None,
            truncate_triggers: None,
            quiet_delete: true,
            system: false,
            populated: true,
            insert_rules: None,
            columns: columns
                .iter()
                .map(|&(name, type_name, generated, binary)| Column {
                    name: parse_columns(&format!("\"{name}\"")).unwrap().remove(0),
                    type_name: type_name.into(),
                    generated,
                    generation: generated.then(|| "(a * 2)".to_owned()),
                    binary: binary.map(str::to_owned),
                    binary_input: true,
                    sequence: None,
                    fills_itself: false,
                    composites: Vec::new(),
                    range_orders: Vec::new(),
                    null_checked: false,
                    parts: String::new(),
                    reached: Vec::new(),
                    leaves: Vec::new(),
                    base: None,
                    enums: Vec::new(),
                    domain_checks: Vec::new(),
                })
                .collect(),
        }
    }

    /// A domain over the other side's type is no conversion, and binary COPY carries it
    /// (`domain_recv` reads its base type's form): it was said "may be rounded, cut", text was
    /// chosen, and a forced binary refused as "stored wrong" (types41 F7). Another modifier
    /// underneath is still said.
    #[test]
    fn a_domain_over_the_same_type_is_no_conversion() {
        let column = |type_name: &str, base: &str| Column {
            base: Some((
                if base.starts_with("numeric") {
                    1700
                } else {
                    23
                },
                base.to_owned(),
            )),
            ..rel(&[("v", type_name, false, Some("23"))])
                .columns
                .remove(0)
        };
        let with = |c: Column| Relation {
            columns: vec![c],
            ..rel(&[])
        };
        let plain = with(column("integer", "integer"));
        let domain = with(column("public.plainint", "integer"));
        let cols = [Ident::new("v")];
        let dests = [("destination 1", &domain)];
        assert_eq!(conversions(&cols, &plain, &dests, true), None);
        assert_eq!(binary_types(&cols, &plain, &dests), Ok(()));
        assert_eq!(binary_misread(&plain.columns[0], &domain.columns[0]), None);
        let chosen = choose_format(None, Some(&cols), Some(&plain), &dests, true, true).unwrap();
        assert_eq!(chosen.format, Format::Binary, "{}", chosen.reason);
        let wide = with(column("numeric(12,2)", "numeric(12,2)"));
        let narrow = with(column("public.money2", "numeric(10,2)"));
        let said = conversions(&cols, &wide, &[("destination 1", &narrow)], true).unwrap();
        assert!(said.contains("may be rounded"), "{said}");
        // Money's words are read by money and the strings only: said as failing, not converted
        // (types41 F3).
        let typed_as = |type_name: &str, oid: u32| Column {
            base: Some((oid, type_name.to_owned())),
            ..rel(&[("v", type_name, false, None)]).columns.remove(0)
        };
        let money = with(typed_as("money", 790));
        let said = conversions(
            &cols,
            &money,
            &[("destination 1", &with(typed_as("numeric", 1700)))],
            true,
        )
        .unwrap();
        assert!(said.contains("which cannot read money's words"), "{said}");
        let said = conversions(
            &cols,
            &money,
            &[("destination 1", &with(typed_as("text", 25)))],
            true,
        );
        assert!(said.is_none_or(|s| !s.contains("money's words")));
        // A user-defined base is not vouched for by its name.
        let mut mood = column("public.mood", "public.mood");
        mood.base = Some((16400, "public.mood".to_owned()));
        assert!(!mood.same_base(&mood.clone()));
    }

    fn names(columns: &[Ident]) -> Vec<&str> {
        columns.iter().map(Ident::as_str).collect()
    }

    /// A column `t` of `type_name`, made of the types `reached` (its own first).
    fn typed(type_name: &str, reached: &[u32]) -> Column {
        let mut column = rel(&[("t", type_name, false, None)]).columns.remove(0);
        column.reached = reached.to_vec();
        column
    }

    #[test]
    fn a_time_with_a_zone_on_one_side_only_is_read_back_in_the_copys_zone() {
        let stamp = typed("timestamp without time zone", &[1114]);
        let zoned = typed("timestamp with time zone", &[1184]);
        let date = typed("date", &[1082]);
        let zones = (Some("Asia/Tokyo"), Some("Europe/Paris"));
        // Read by the destination in its zone.
        assert_eq!(
            read_back(&stamp, &zoned, zones),
            "CAST(({} AT TIME ZONE 'Europe/Paris') AS timestamp without time zone)"
        );
        assert_eq!(
            read_back(&date, &zoned, zones),
            "CAST(({} AT TIME ZONE 'Europe/Paris') AS date)"
        );
        // Written by the source in its zone.
        assert_eq!(
            read_back(&zoned, &stamp, zones),
            "CAST(({} AT TIME ZONE 'Asia/Tokyo') AS timestamp with time zone)"
        );
        // Others through their text; a zone not known, too.
        assert_eq!(
            read_back(&typed("real", &[700]), &typed("numeric", &[1700]), zones),
            "CAST(CAST({} AS text) AS real)"
        );
        assert_eq!(
            read_back(&stamp, &zoned, (None, None)),
            "CAST(CAST({} AS text) AS timestamp without time zone)"
        );
        // A domain of the source's as its base type, which the destination has.
        let mut dated = typed("public.dd1", &[16_400, 1082]);
        dated.base = Some((1082, "date".to_owned()));
        assert_eq!(
            read_back(&dated, &date, (None, None)),
            "CAST(CAST({} AS text) AS date)"
        );
        assert_eq!(
            read_back(&dated, &zoned, zones),
            "CAST(({} AT TIME ZONE 'Europe/Paris') AS date)"
        );
    }

    #[test]
    fn a_type_of_the_sources_own_in_text_is_compared_as_text_where_no_setting_prints_it() {
        let text = typed("text", &[25]);
        let mood = typed("public.mood", &[16_390]);
        assert_eq!(
            compared_as_text(&mood, &text),
            Some("CAST({} AS pg_catalog.text)")
        );
        assert!(compared_as_text(&mood, &typed("character varying(20)", &[1043])).is_some());
        // The same extension's type in another schema there.
        assert!(compared_as_text(&mood, &typed("ext.mood", &[16_500])).is_some());
        // Not a built-in type (the destination has it), nor into another type than text, nor
        // a type holding a time (printed in the checksum's settings, not the copy's).
        assert_eq!(compared_as_text(&typed("uuid", &[2950]), &text), None);
        assert_eq!(compared_as_text(&mood, &typed("integer", &[23])), None);
        let stamped = typed("public.stamped", &[16_400, 1114]);
        assert_eq!(compared_as_text(&stamped, &text), None);
    }

    #[test]
    fn utc_by_any_name_is_one_zone() {
        assert!(same_zone("UTC", "Etc/UTC"));
        assert!(same_zone("GMT", "utc"));
        assert!(same_zone("Asia/Tokyo", "asia/tokyo"));
        assert!(!same_zone("UTC", "Asia/Tokyo"));
        assert!(!same_zone("Europe/Paris", "Europe/Berlin"));
        // The host's own zone, by one name: another on each host.
        assert!(!same_zone("localtime", "localtime"));
        assert!(!same_zone("posixrules", "PosixRules"));
    }

    #[test]
    fn a_column_the_source_generates_is_not_left_behind_silently() {
        let source = rel(&[
            ("a", "integer", false, Some("")),
            ("b", "integer", true, Some("")),
        ]);
        let mut dest = rel(&[
            ("a", "integer", false, Some("")),
            ("b", "integer", false, Some("")),
        ]);
        // Nullable or with a default, it would take NULL or the default for every row.
        dest.columns[1].fills_itself = true;
        let err = resolve_columns(&[], Some(&source), &[("destination 1", &dest)]).unwrap_err();
        assert!(
            err.contains(r#"has "b" that the source generates"#) && err.contains("--columns"),
            "{err}"
        );
        let chosen = parse_columns("a, b").unwrap();
        let columns = resolve_columns(&chosen, Some(&source), &[("destination 1", &dest)]);
        assert_eq!(names(&columns.unwrap().unwrap()), ["a", "b"]);
    }

    #[test]
    fn conversions_that_may_change_values_are_named() {
        let pairs = [
            ("integer", "bigint", true),
            ("integer[]", "bigint[]", true),
            ("numeric(6,2)", "numeric(8,3)", true),
            ("numeric(6,2)", "numeric", true),
            ("character varying(3)", "character varying(5)", true),
            ("timestamp with time zone", "text", false),
            ("timestamp without time zone", "text", true),
            ("character(5)", "text", false),
            ("bytea", "text", false),
            ("numeric", "numeric(6,2)", false),
            ("numeric(6,2)", "numeric(6,3)", false),
            ("double precision", "real", false),
            ("bigint", "integer", false),
            ("json", "jsonb", false),
            (
                "timestamp with time zone",
                "timestamp without time zone",
                false,
            ),
            ("character varying(5)", "character varying(3)", false),
            ("text", "character varying(3)", false),
            // Widenings that keep every value (they were warned as conversions).
            ("text", "character varying", true),
            (
                "timestamp(3) without time zone",
                "timestamp without time zone",
                true,
            ),
            (
                "timestamp(0) with time zone",
                "timestamp(3) with time zone",
                true,
            ),
            ("time(2) without time zone", "time without time zone", true),
            ("interval(3)", "interval", true),
            ("bit(4)", "bit varying", true),
            ("integer", "numeric(20,0)", true),
            ("integer", "numeric(10,0)", true),
            ("bigint", "numeric(20,2)", false),
            (
                "timestamp without time zone",
                "timestamp(3) without time zone",
                false,
            ),
            ("interval", "interval(0)", false),
            ("bit varying(8)", "bit varying(4)", false),
        ];
        for (from, to, keeps) in pairs {
            assert_eq!(keeps_values(from, to), keeps, "{from} -> {to}");
            let source = rel(&[("v", from, false, None)]);
            let dest = rel(&[("v", to, false, None)]);
            let said = conversions(
                &parse_columns("v").unwrap(),
                &source,
                &[("d1", &dest)],
                true,
            );
            assert_eq!(said.is_none(), keeps, "{from} -> {to}: {said:?}");
            if let Some(said) = said {
                assert!(said.contains(&format!("is {from} on the source but {to} on d1")));
            }
        }
    }

    #[test]
    fn columns_go_by_name_and_leave_generated_ones_out() {
        let source = rel(&[
            ("price", "numeric", false, Some("")),
            ("qty", "integer", false, Some("")),
            ("total", "numeric", true, Some("")),
        ]);
        let dest = rel(&[
            ("qty", "integer", false, Some("")),
            ("total", "numeric", true, Some("")),
            ("price", "numeric", false, Some("")),
        ]);
        let columns = resolve_columns(&[], Some(&source), &[("destination 1", &dest)])
            .unwrap()
            .unwrap();
        assert_eq!(names(&columns), ["price", "qty"]);
        assert_eq!(binary_types(&columns, &source, &[("d", &dest)]), Ok(()));
    }

    #[test]
    fn differing_column_sets_are_listed_per_destination() {
        let source = rel(&[("a", "int", false, Some("")), ("b", "int", false, Some(""))]);
        let d1 = rel(&[("a", "int", false, Some("")), ("c", "int", false, Some(""))]);
        let d2 = rel(&[("a", "int", false, Some("")), ("b", "int", true, Some(""))]);
        let ok = rel(&[("b", "int", false, Some("")), ("a", "int", false, Some(""))]);
        let err = resolve_columns(
            &[],
            Some(&source),
            &[
                ("destination 1", &d1),
                ("destination 2", &d2),
                ("destination 3", &ok),
            ],
        )
        .unwrap_err();
        assert!(
            err.contains(
                r#"destination 1 lacks "b"; and has "c" that the source has not and that takes no default and refuses NULL (give it a DEFAULT there, or DROP NOT NULL); destination 2 generates "b", which the source stores: COPY cannot write a generated column, whose values would be computed there, not copied (make it a plain column there, or leave it out with --columns)"#
            ),
            "{err}"
        );
        assert!(!err.contains("destination 3"), "{err}");
        // --columns picks what both sides have; what it leaves out must take a default or NULL.
        let picked = parse_columns("a").unwrap();
        let err = resolve_columns(&picked, Some(&source), &[("d1", &d1)]).unwrap_err();
        assert!(err.contains("that --columns leaves out"), "{err}");
        let filling = |rel: &Relation| {
            let mut rel = rel.clone();
            for c in &mut rel.columns {
                c.fills_itself = true;
            }
            rel
        };
        let (d1, d2) = (filling(&d1), filling(&d2));
        let columns = resolve_columns(&picked, Some(&source), &[("d1", &d1), ("d2", &d2)])
            .unwrap()
            .unwrap();
        assert_eq!(names(&columns), ["a"]);
        // … and must exist everywhere.
        let err = resolve_columns(&parse_columns("b").unwrap(), Some(&source), &[("d1", &d1)])
            .unwrap_err();
        assert!(err.contains(r#"d1 lacks "b""#), "{err}");
        // A column there but for its case is named, with what maps it.
        let cased = rel(&[("a", "int", false, Some("")), ("B", "int", false, Some(""))]);
        let err = resolve_columns(&[], Some(&source), &[("d1", &cased)]).unwrap_err();
        assert!(err.contains(r#""b" (it has "B", another name"#), "{err}");
        let err = resolve_columns(&parse_columns("zz").unwrap(), Some(&source), &[]).unwrap_err();
        assert!(err.contains(r#"no column "zz""#), "{err}");
        // A destination's column the source has not that takes its default: copied without it.
        let mut with_default = rel(&[("a", "int", false, Some("")), ("b", "int", false, Some(""))]);
        with_default.columns.push(Column {
            fills_itself: true,
            ..rel(&[("audit", "timestamptz", false, Some(""))])
                .columns
                .remove(0)
        });
        let columns = resolve_columns(&[], Some(&source), &[("d", &with_default)])
            .unwrap()
            .unwrap();
        assert_eq!(names(&columns), ["a", "b"]);
        // A file source without --columns: the destination's own columns, the same everywhere.
        assert_eq!(resolve_columns(&[], None, &[("d1", &d1)]), Ok(None));
        assert_eq!(
            resolve_columns(&[], None, &[("d1", &d1), ("d2", &d1)]),
            Ok(None)
        );
        let err = resolve_columns(&[], None, &[("d1", &source), ("d2", &ok)]).unwrap_err();
        assert!(
            err.contains(r#"d1 has ("a", "b"), d2 has ("b", "a")"#),
            "{err}"
        );
        // Generated columns are not fields of the file.
        assert_eq!(
            resolve_columns(
                &[],
                None,
                &[("d2", &d2), ("x", &rel(&[("a", "int", false, Some(""))]))]
            ),
            Ok(None)
        );
    }

    #[test]
    fn binary_needs_the_same_trusted_types() {
        let source = rel(&[
            ("at", "timestamp with time zone", false, Some("")),
            ("p", "pair", false, Some("16390")),
            ("x", "geometry", false, None),
        ]);
        let dest = rel(&[
            ("at", "bigint", false, Some("")),
            ("p", "pair", false, Some("16400")),
            ("x", "geometry", false, None),
        ]);
        let cols = |text: &str| parse_columns(text).unwrap();
        let err = binary_types(&cols("at"), &source, &[("destination 1", &dest)]).unwrap_err();
        assert_eq!(
            err,
            r#"column "at" is timestamp with time zone on the source but bigint on destination 1"#
        );
        let err = binary_types(&cols("p"), &source, &[("destination 1", &dest)]).unwrap_err();
        assert!(err.contains("type OIDs"), "{err}");
        let err = binary_types(&cols("x"), &source, &[("destination 1", &dest)]).unwrap_err();
        assert!(err.contains("does not trust"), "{err}");
    }

    #[test]
    fn one_type_name_over_other_built_in_types_is_a_conversion() {
        // A domain of one name over int4 here and float4 there; an enum array whose enum has
        // another OID there (its values read back the same: no warning).
        let source = rel(&[
            ("d", "da", false, Some("23@/b")),
            ("m", "mood[]", false, Some("16385@/e")),
        ]);
        let dest = rel(&[
            ("d", "da", false, Some("700@/b")),
            ("m", "mood[]", false, Some("16400@/e")),
        ]);
        let cols = parse_columns("d, m").unwrap();
        let said = conversions(&cols, &source, &[("destination 1", &dest)], true).unwrap();
        assert!(
            said.contains(r#"column "d" is da on both sides, but made of other types"#),
            "{said}"
        );
        assert!(!said.contains(r#"column "m""#), "{said}");
    }

    #[test]
    fn forced_binary_refuses_what_it_would_misread() {
        let source = rel(&[
            ("n", "integer", false, Some("23")),
            ("s", "character varying(10)", false, Some("1043")),
            ("m", "numeric(12,2)", false, Some("1700")),
            ("d", "money_like", false, Some("20")),
            ("r", "regclass", false, None),
            ("x", "geometry", false, None),
        ]);
        let dest = rel(&[
            ("n", "text", false, Some("25")),
            ("s", "text", false, Some("25")),
            ("m", "numeric(10,2)", false, Some("1700")),
            ("d", "money_like", false, Some("701")),
            ("r", "regclass", false, None),
            ("x", "geometry", false, None),
        ]);
        let cols = |text: &str| parse_columns(text).unwrap();
        let dests = [("destination 1", &dest)];
        let misreads = |c: &str| binary_misreads(&cols(c), &source, &dests);
        // An int4's four bytes are a valid text: refused, naming column, types, side, way out.
        let err = misreads("n").unwrap_err();
        assert!(
            err.contains(r#"column "n" is integer on the source but text on destination 1"#)
                && err.contains("--format text"),
            "{err}"
        );
        // A domain of one name over other base types; OIDs that name other objects.
        assert!(
            misreads("d")
                .unwrap_err()
                .contains("binary form differs on destination 1")
        );
        assert!(misreads("r").unwrap_err().contains("OID"));
        // One binary form (varchar → text), a modifier only (the receiver applies it), a type
        // copyman does not vouch for but the same on both sides (warned, not refused).
        assert_eq!(misreads("s, m, x"), Ok(()));
        let forced = |c: &str| {
            choose_format(
                Some(Format::Binary),
                Some(&cols(c)),
                Some(&source),
                &dests,
                true,
                true,
            )
        };
        assert!(forced("n").is_err());
        let choice = forced("x").unwrap();
        assert_eq!(choice.format, Format::Binary);
        assert!(choice.warning.unwrap().contains("does not trust"));
        // Not forced: text, as before.
        let chosen = choose_format(None, Some(&cols("n")), Some(&source), &dests, true, true);
        assert_eq!(chosen.unwrap().format, Format::Text);
        // A destination column without binary input, not copied: binary COPY FROM fails on it.
        let mut acl = rel(&[("s", "character varying(10)", false, Some("1043"))]);
        acl.columns.push(Column {
            binary_input: false,
            ..rel(&[("acl", "aclitem", false, None)]).columns.remove(0)
        });
        let dests = [("destination 1", &acl)];
        let choose =
            |forced| choose_format(forced, Some(&cols("s")), Some(&source), &dests, true, true);
        let err = choose(Some(Format::Binary)).unwrap_err();
        assert!(err.contains(r#"has column "acl" of type aclitem"#), "{err}");
        let chosen = choose(None).unwrap();
        assert_eq!(chosen.format, Format::Text);
        assert!(
            chosen.reason.contains("no binary input"),
            "{}",
            chosen.reason
        );
    }
}

/// The tables of a job copied as one unit: an FK-linked group of tables that are emptied first,
/// or that reference each other in a cycle.
///
/// PostgreSQL refuses a `TRUNCATE` of a table that another table references unless that table
/// is truncated in the same statement (0A000), and a `DELETE` of a referenced table's rows fails
/// while the referencing rows are there (23503). So tables that are emptied first (`--truncate`,
/// or a resume taking them up again) and linked by a foreign key between them (either way, over
/// any number of links, cycles included) are copied together: on each destination one
/// transaction empties them all with one statement (`TRUNCATE ONLY a, ONLY b, …`), copies each in
/// [`Group::members`]' order and commits once. Tables of a foreign-key cycle that are not emptied
/// (an append job's) are copied so too, without emptying: side by side, each committed alone,
/// a row that references one of the other's not committed yet failed every run (23503), even
/// where the cycle's keys are `DEFERRABLE` (its one transaction defers them). Decisions,
/// documented for the user:
/// * only there: tables not emptied first, or with no foreign key to another emptied table of
///   the job, are copied one by one, side by side (`--jobs`), as before;
/// * a group is never split into ctid ranges (a table emptied first never is): one session per
///   destination carries the whole group;
/// * a member that a table outside the group references (not selected, or not emptied) cannot
///   be truncated with the others: the group then empties with one `TRUNCATE` the members that
///   no table references but one of them, then the others one by one, children first, each as
///   a table alone would be ([`crate::sql::emptying`]: a `DELETE` where that touches nothing
///   else, which fails with 23503 while that outside table's rows reference its rows), still
///   in the group's one transaction ([`Group::truncate_together`] false).
///   That is decided on each destination: a destination's own table that references a member
///   does not keep the others from their one `TRUNCATE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// The members (indexes into the plan's tables), referenced tables first (on a cycle, in
    /// the plan's order).
    pub members: Vec<usize>,
    /// For each destination, whether no table outside the group references a member there:
    /// then one `TRUNCATE` empties them all there.
    pub truncate_together: Vec<bool>,
}

/// Forms the [`Group`]s of a job: `names` are its tables (schema-qualified and quoted, in the
/// plan's order: largest first), `emptied` whether each is emptied first on some destination,
/// `cyclic` whether each is in a foreign-key cycle, `after` the foreign keys kept for ordering
/// (each table's referenced tables, cycles left out) and `edges_on` every foreign key
/// `(referencing, referenced)` on each destination. A group has at least two members; a table
/// is in one group at most.
pub fn fk_groups(
    names: &[String],
    (emptied, cyclic): (&[bool], &[bool]),
    after: &[Vec<usize>],
    edges_on: &[Vec<(String, String)>],
) -> Vec<Group> {
    let index: HashMap<&str, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    let links: Vec<(usize, usize)> = edges_on
        .iter()
        .flatten()
        .filter_map(|(c, p)| Some((*index.get(c.as_str())?, *index.get(p.as_str())?)))
        .filter(|&(c, p)| c != p && ((emptied[c] && emptied[p]) || (cyclic[c] && cyclic[p])))
        .collect();
    // Connected components (union-find) over the links.
    let mut root: Vec<usize> = (0..names.len()).collect();
    fn find(root: &mut [usize], mut i: usize) -> usize {
        while root[i] != i {
            root[i] = root[root[i]];
            i = root[i];
        }
        i
    }
    for &(c, p) in &links {
        let (a, b) = (find(&mut root, c), find(&mut root, p));
        if a != b {
            root[a.max(b)] = a.min(b);
        }
    }
    let mut groups = Vec::new();
    for first in 0..names.len() {
        if find(&mut root, first) != first {
            continue;
        }
        let set: Vec<usize> = (0..names.len())
            .filter(|&i| find(&mut root, i) == first)
            .collect();
        if set.len() < 2 {
            continue;
        }
        // Parents first: repeatedly the first (plan order) whose kept references are placed.
        let mut members = Vec::with_capacity(set.len());
        let mut left = set.clone();
        while !left.is_empty() {
            let at = left
                .iter()
                .position(|&i| {
                    after[i]
                        .iter()
                        .all(|p| !set.contains(p) || members.contains(p))
                })
                .unwrap_or(0);
            members.push(left.remove(at));
        }
        let member = |n: &str| index.get(n).is_some_and(|i| set.contains(i));
        let truncate_together = edges_on
            .iter()
            .map(|edges| !edges.iter().any(|(c, p)| member(p) && !member(c) && c != p))
            .collect();
        groups.push(Group {
            members,
            truncate_together,
        });
    }
    groups
}

#[cfg(test)]
mod group_tests {
    use super::*;

    fn n(s: &str) -> String {
        format!(r#""s"."{s}""#)
    }

    #[test]
    fn fk_linked_emptied_tables_form_one_group_parents_first() {
        // Plan order (largest first): child, grand, parent, lone, kept.
        let names: Vec<String> = ["child", "grand", "parent", "lone", "kept"]
            .iter()
            .map(|s| n(s))
            .collect();
        let edges = vec![
            (n("child"), n("parent")),
            (n("parent"), n("grand")),
            (n("kept"), n("lone")),
        ];
        let after = vec![vec![2], vec![], vec![1], vec![], vec![3]];
        // `kept` is not emptied: `lone` and `kept` stay tables of their own.
        let emptied = [true, true, true, true, false];
        let none = [false; 5];
        let groups = fk_groups(
            &names,
            (&emptied, &none),
            &after,
            std::slice::from_ref(&edges),
        );
        assert_eq!(
            groups,
            vec![Group {
                members: vec![1, 2, 0],
                truncate_together: vec![true]
            }]
        );
        // Nothing emptied: no group, the job keeps its parallelism.
        assert!(fk_groups(&names, (&none, &none), &after, std::slice::from_ref(&edges)).is_empty());
        // A cycle not emptied (an append job's): one unit.
        let cycle = vec![(n("grand"), n("parent")), (n("parent"), n("grand"))];
        let cyclic = [false, true, true, false, false];
        let groups = fk_groups(&names, (&none, &cyclic), &after, &[cycle]);
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].members.len(), 2);
    }

    #[test]
    fn a_group_referenced_from_outside_is_not_truncated_together_there() {
        let names: Vec<String> = ["a", "b"].iter().map(|s| n(s)).collect();
        // Destination 2 has a table of its own that references `a`; destination 1 has not.
        let edges_on = [
            vec![(n("b"), n("a"))],
            vec![(n("b"), n("a")), (n("other"), n("a"))],
        ];
        let both = [true, true];
        let groups = fk_groups(
            &names,
            (&both, &[false, false]),
            &[vec![], vec![0]],
            &edges_on,
        );
        assert_eq!(
            groups,
            vec![Group {
                members: vec![0, 1],
                truncate_together: vec![true, false]
            }]
        );
    }

    /// Money between databases of one fraction and other currencies is refused: its count
    /// carries over, its currency does not (types69 F2: `$12.34` became `£12.34`); of one
    /// currency written otherwise (separators, the symbol's place), it goes.
    #[test]
    fn money_into_another_currency_is_refused() {
        assert_eq!(currency("-$1,234.56"), "$");
        assert_eq!(currency("-$ 1.234,56"), "$");
        assert_eq!(currency("-1\u{202f}234,56 €"), "€");
        assert_eq!(currency("-1.234,56 €"), "€");
        assert_eq!(currency("-￥1,235"), "￥");
        let both = MoneySides {
            both: true,
            ..MoneySides::default()
        };
        let server = |f: TextForms| ServerForms {
            database: f.clone(),
            session: forms("C", "-$1,234.56", true),
        };
        let us = server(forms("en_US.UTF-8", "-$1,234.56", true));
        let de = server(forms("de_DE.UTF-8", "-1.234,56 €", true));
        let fr = server(forms("fr_FR.UTF-8", "-1\u{202f}234,56 €", true));
        let ar = server(forms("es_AR.UTF-8", "-$ 1.234,56", true));
        let why = money_meant_otherwise(Some(&us), &[("destination 1", both, Some(&de))]);
        assert!(
            why.as_deref().is_some_and(|w| w.contains(
                "the source's is lc_monetary 'en_US.UTF-8' (-$1,234.56), destination \
                 1's 'de_DE.UTF-8' (-1.234,56 €)"
            )),
            "{why:?}"
        );
        assert_eq!(
            money_meant_otherwise(Some(&de), &[("destination 1", both, Some(&fr))]),
            None
        );
        assert_eq!(
            money_meant_otherwise(Some(&us), &[("destination 1", both, Some(&ar))]),
            None
        );
    }

    fn forms(locale: &str, money: &str, array_nulls: bool) -> TextForms {
        TextForms {
            locale: locale.into(),
            digits: 2,
            money: money.into(),
            array_nulls,
        }
    }

    /// Free text into money is refused where the destination's database reads amounts with
    /// other separators than its session (a number's text is not), and money into text of a
    /// database of another form is warned of; an array's text read in another `array_nulls`
    /// than its database's is refused, as an array read with it off.
    #[test]
    fn text_read_in_pinned_forms_otherwise_than_the_database() {
        let c = forms("C", "-$1,234.56", true);
        let es = forms("es_AR.UTF-8", "-$ 1.234,56", true);
        assert!(c.reads_numbers() && !es.reads_numbers());
        assert!(!forms("fr_FR.UTF-8", "-1\u{202f}234,56 €", true).reads_numbers());
        let yen = TextForms {
            digits: 0,
            ..forms("ja_JP.UTF-8", "-￥1,235", true)
        };
        assert!(yen.reads_numbers());
        let dst = ServerForms {
            database: es.clone(),
            session: c.clone(),
        };
        let from_text = MoneySides {
            destination_only: true,
            destination_only_text: true,
            ..MoneySides::default()
        };
        let why = money_meant_otherwise(None, &[("destination 1", from_text, Some(&dst))]);
        assert!(why.unwrap().contains("writes it as -$ 1.234,56"));
        let from_number = MoneySides {
            destination_only_text: false,
            ..from_text
        };
        assert_eq!(
            money_meant_otherwise(None, &[("destination 1", from_number, Some(&dst))]),
            None
        );
        let told = ServerForms {
            database: es.clone(),
            session: es.clone(),
        };
        assert_eq!(
            money_meant_otherwise(None, &[("destination 1", from_text, Some(&told))]),
            None
        );
        let to_text = MoneySides {
            source_only: true,
            ..MoneySides::default()
        };
        let warned = money_written_otherwise(Some(&dst), &[("destination 2", to_text)]);
        assert!(warned.unwrap().contains("destination 2"));
        assert_eq!(
            money_written_otherwise(Some(&told), &[("d", to_text)]),
            None
        );

        let off = ServerForms {
            database: forms("C", "-$1,234.56", false),
            session: c.clone(),
        };
        let text = ArraySides {
            from_text: true,
            both: false,
        };
        let arrays = ArraySides {
            from_text: false,
            both: true,
        };
        assert!(arrays_read_otherwise(&[("d", text, Some(&off))]).is_some());
        assert_eq!(arrays_read_otherwise(&[("d", arrays, Some(&off))]), None);
        let said_off = ServerForms {
            database: off.database.clone(),
            session: off.database.clone(),
        };
        assert_eq!(arrays_read_otherwise(&[("d", text, Some(&said_off))]), None);
        assert!(arrays_read_otherwise(&[("d", arrays, Some(&said_off))]).is_some());
    }
}
