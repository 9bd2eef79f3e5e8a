//! Which server and database a session is on, as the server itself names them: asked once,
//! here, for every use.
//!
//! Connection strings cannot tell (`host=/run/postgresql` and `host=127.0.0.1` may be one
//! server), so the server is asked:
//!
//! * the server: `system_identifier` from `pg_control_system()` ([`sql::SYSTEM_IDENTIFIER`]:
//!   unique per cluster, readable by every role since PostgreSQL 10 unless revoked); where that
//!   fails, the postmaster's start time and port ([`sql::START_TIME_AND_PORT`]), which tell
//!   servers apart just as well in practice (a cluster restarted between two connections would
//!   not be seen as itself, but one run connects to all endpoints within moments);
//! * the database: its oid;
//! * when a table is named, the table: the oid `to_regclass` finds for the name as the server's
//!   scanner reads it ([`sql::relation_oid_query`]: `U&"…"`, quotes and case folding), so that
//!   one table spelled two ways is one, and a different `search_path` naming another table is
//!   not taken for the same one.
//!
//! Two uses: `copyman` refuses one database given twice before anything is sent (two COPYs into
//! one table from two sessions of one copy wait on each other), and a job's state file names
//! each destination by [`Identity::state_key`], so that a resume recognises it however it is
//! spelled.

use std::fmt;

use copyman_sync::Connection;

use crate::sql;
use crate::state;

/// A server and database (and perhaps a table), as the server itself names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The server: its system identifier, or the fallback.
    server: String,
    /// Which of the two the server is.
    how: How,
    /// The running server: its postmaster's start time and port. A clone (a copied data
    /// directory, `pg_basebackup`, a restore) has its origin's system identifier, but not its
    /// postmaster: two clones running side by side are two servers.
    instance: String,
    /// The database's oid.
    database: String,
    /// The table's oid (when one was named and it exists).
    table: Option<String>,
    /// The oids of the relations a COPY of the table reads, for a view every relation its query
    /// reads (its rows or a condition on them), and of those it writes rows into: itself and
    /// its partitions ([`sql::relations_query`]); empty where they cannot be asked (before
    /// PostgreSQL 10).
    reads: Vec<String>,
    writes: Vec<String>,
    /// The server is a standby (`pg_is_in_recovery()`): it takes no writes.
    in_recovery: bool,
    /// The session's `session_replication_role` is `replica`: where that is set.
    replica_by: Option<String>,
    /// What a standby shares with its primary, for a server that cannot say its system
    /// identifier ([`sql::catalog_fingerprint_query`]).
    fingerprint: Option<String>,
    /// The session's transactions are read-only by default (`default_transaction_read_only`,
    /// a soft freeze: its writes fail as a standby's): where that is set (`pg_settings.source`).
    read_only: Option<String>,
    /// Where the server listens: its port, the address this session reached (empty over a
    /// Unix socket), its socket directories where its role may read them.
    listens: (String, String, Vec<String>),
    /// A standby's WAL receiver's sender, `(host, port)`, where its role may see it.
    streams_from: Option<(String, String)>,
}

/// How the server was identified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum How {
    /// `pg_control_system()`.
    SystemIdentifier,
    /// Postmaster start time and port.
    StartTimeAndPort,
}

impl Identity {
    /// Asks the server behind `conn`; `table` is a table's name as a statement spells it
    /// (quoted or not, schema-qualified or not, `U&"…"`), whose oid is asked too: resolved by
    /// the server as that statement would resolve it ([`sql::relation_oid_query`]). A table the
    /// role cannot look up (no `USAGE` on its schema) is taken as not found: the server is
    /// identified all the same (a database given twice is still told), and the copy says the
    /// lookup's error where it meets it.
    ///
    /// # Errors
    /// The server's, for the queries every role may run (the database's oid, the fallback's
    /// start time and port).
    pub fn of(conn: &mut Connection, table: Option<&str>) -> Result<Self, copyman_sync::Error> {
        let instance = first_value(conn, sql::START_TIME_AND_PORT)?.unwrap_or_default();
        let (server, how) = match first_value(conn, sql::SYSTEM_IDENTIFIER) {
            Ok(Some(id)) => (id, How::SystemIdentifier),
            _ => (instance.clone(), How::StartTimeAndPort),
        };
        let database = first_value(conn, sql::DATABASE_OID)?.unwrap_or_default();
        let table = match table {
            Some(name) => first_value(conn, &sql::relation_oid_query(name))
                .ok()
                .flatten(),
            None => None,
        };
        let relations = |conn: &mut Connection, read: bool| -> Vec<String> {
            let query = table
                .as_deref()
                .and_then(|oid| sql::relations_query(oid, read));
            query
                .and_then(|query| first_value(conn, &query).ok().flatten())
                .map(|list| list.split(',').map(str::to_owned).collect())
                .unwrap_or_default()
        };
        let (reads, writes) = (relations(conn, true), relations(conn, false));
        let fingerprint = first_value(conn, &sql::catalog_fingerprint_query(table.as_deref()))
            .ok()
            .flatten();
        let in_recovery = first_value(conn, sql::IN_RECOVERY)
            .ok()
            .flatten()
            .is_some_and(|v| v == "true");
        let read_only = first_value(conn, sql::DEFAULT_READ_ONLY).ok().flatten();
        let replica_by = first_value(conn, sql::REPLICA_ROLE).ok().flatten();
        let listens = first_value(conn, sql::LISTENS)
            .ok()
            .flatten()
            .unwrap_or_default();
        let (port, addr) = listens.split_once('|').unwrap_or_default();
        let dirs = first_value(conn, sql::SOCKET_DIRECTORIES)
            .ok()
            .flatten()
            .map(|dirs| dirs.split(',').map(|d| d.trim().to_owned()).collect())
            .unwrap_or_default();
        let listens = (port.to_owned(), addr.to_owned(), dirs);
        let streams_from = if in_recovery {
            first_value(conn, sql::STREAMS_FROM)
                .ok()
                .flatten()
                .and_then(|s| {
                    let (host, port) = s.split_once('|')?;
                    (!host.is_empty() && !port.is_empty())
                        .then(|| (host.to_owned(), port.to_owned()))
                })
        } else {
            None
        };
        Ok(Self {
            server,
            how,
            instance,
            database,
            table,
            reads,
            writes,
            in_recovery,
            fingerprint,
            replica_by,
            read_only,
            listens,
            streams_from,
        })
    }

    /// Whether both are the same database of the same running server (clones of one server,
    /// which share its system identifier and oids, are not). Where one session could read the
    /// system identifier and the other could not (`pg_control_system()` revoked from one of
    /// the two roles), the running server (its postmaster's start time and port) tells.
    pub fn same_database(&self, other: &Self) -> bool {
        let servers = match (self.how, other.how) {
            (How::SystemIdentifier, How::SystemIdentifier) => self.server == other.server,
            _ => !self.instance.is_empty(),
        };
        servers && self.instance == other.instance && self.database == other.database
    }

    /// Whether both are the same table: the same database, and the same table oid (or a table
    /// not found on either side, which fails elsewhere anyway).
    pub fn same_table(&self, other: &Self) -> bool {
        self.same_database(other)
            && match (&self.table, &other.table) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }

    /// The oids of the relations a COPY into its table writes rows into: itself and its
    /// partitions (empty where they cannot be asked, or no table was found).
    pub fn written(&self) -> &[String] {
        &self.writes
    }

    /// Whether a COPY of this table reads rows that a COPY into `target` writes, another table
    /// of the same database: this a partition of `target` or its partitioned parent (at any
    /// level). Its rows would be copied into the table they are read from.
    pub fn feeds(&self, target: &Self) -> bool {
        self.same_database(target) && self.writes.iter().any(|oid| target.writes.contains(oid))
    }

    /// Whether this is a view whose query reads `target` (or one of its partitions), another
    /// table of the same database, and it does not [`feed`](Self::feeds) it: the rows it returns
    /// may be `target`'s own, or only filtered by it (`WHERE NOT EXISTS (… target …)`), which
    /// the catalog cannot tell.
    pub fn mentions(&self, target: &Self) -> bool {
        self.same_database(target)
            && !self.feeds(target)
            && self.reads.iter().any(|oid| target.writes.contains(oid))
    }

    /// Whether this is a standby (in recovery) of a cluster with `other`'s system identifier,
    /// and the same database: a streaming standby of `other` (a copy from it into `other`
    /// writes `other`'s own rows a second time), or of a clone of it (two servers, as clones
    /// are) — the servers cannot tell which. Where either cannot say its system identifier
    /// (`pg_control_system()` revoked), by the catalog rows a standby shares with its primary
    /// ([`sql::catalog_fingerprint_query`]: a copy from the standby into its primary wrote
    /// every row a second time, exit 0).
    pub fn standby_of(&self, other: &Self) -> bool {
        let one_cluster = match (self.how, other.how) {
            (How::SystemIdentifier, How::SystemIdentifier) => self.server == other.server,
            _ => self.fingerprint.is_some() && self.fingerprint == other.fingerprint,
        };
        self.in_recovery
            && one_cluster
            && self.instance != other.instance
            && self.database == other.database
    }

    /// Whether this is a standby of `other` ([`Identity::standby_of`]) whose WAL receiver
    /// streams from `other`'s server itself, as far as the servers say: the sender's port is
    /// the one `other` listens on, and its host the address this run reached `other` at, or
    /// one of its socket directories. Not where either cannot be read (a role without the
    /// privileges): then it cannot be told from a standby of a clone.
    pub fn streams_from(&self, other: &Self) -> bool {
        let Some((host, port)) = &self.streams_from else {
            return false;
        };
        let (their_port, addr, dirs) = &other.listens;
        self.standby_of(other)
            && port == their_port
            && ((!addr.is_empty() && host == addr) || dirs.iter().any(|d| d == host))
    }

    /// Whether this is a standby of `other` ([`Identity::standby_of`]) read from the table a copy
    /// writes into there, or from one whose rows that table holds (a partition, its parent): a
    /// physical standby has its primary's oids, so its rows are that table's own, written a
    /// second time — through a relay standby too, which [`Identity::streams_from`] cannot see —
    /// and a standby of a clone holds the rows the clone shares with `other` up to where they
    /// parted.
    pub fn standby_feeds(&self, other: &Self) -> bool {
        let same = matches!((&self.table, &other.table), (Some(a), Some(b)) if a == b);
        self.standby_of(other) && (same || self.writes.iter().any(|oid| other.writes.contains(oid)))
    }

    /// Whether this is a standby of `other` ([`Identity::standby_of`]) read through a view whose
    /// query reads the table a copy writes into there ([`Identity::mentions`], across the two).
    pub fn standby_mentions(&self, other: &Self) -> bool {
        self.standby_of(other)
            && !self.standby_feeds(other)
            && self.reads.iter().any(|oid| other.writes.contains(oid))
    }

    /// Whether the server is a standby (in recovery): a destination there fails at its first
    /// write (SQLSTATE 25006, "cannot execute … in a read-only transaction"), and so would a
    /// resume.
    pub fn is_standby(&self) -> bool {
        self.in_recovery
    }

    /// Where the session's transactions are made read-only by default
    /// (`default_transaction_read_only` on), as `pg_settings.source` says (`client`: the CONN's
    /// options or PGOPTIONS; `user`, `database`, `database user`, `configuration file` …);
    /// `None` where they are not: a destination there fails at its first write (25006) as on a
    /// standby.
    pub fn read_only_by(&self) -> Option<&str> {
        self.read_only.as_deref()
    }

    /// Where the session's `session_replication_role` is set to `replica`
    /// (`pg_settings.source`), if it is: a destination's triggers and foreign keys do not run
    /// for what it writes.
    pub fn replica_by(&self) -> Option<&str> {
        self.replica_by.as_deref()
    }

    /// The oid of the table named, where it was found.
    pub fn table_oid(&self) -> Option<&str> {
        self.table.as_deref()
    }

    /// Whether a table was named and found.
    pub fn has_table(&self) -> bool {
        self.table.is_some()
    }

    /// How a job's state file names this destination: `system SYSID database OID`
    /// ([`state::identity_key`]); `None` when the server did not give its system identifier
    /// (the state file then names it by its connection string).
    pub fn state_key(&self) -> Option<String> {
        (self.how == How::SystemIdentifier && !self.server.is_empty() && !self.database.is_empty())
            .then(|| state::identity_key(&self.server, &self.database))
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.how {
            How::SystemIdentifier => write!(f, "system identifier {}", self.server)?,
            How::StartTimeAndPort => write!(f, "server started {}", self.server)?,
        }
        write!(f, ", database oid {}", self.database)
    }
}

/// Whether the sessions `a` and `b` are on one database, asked where their servers cannot say
/// who they are ([`Identity::of`] failed: `pg_control_system()` and `pg_postmaster_start_time()`
/// revoked, as some sites harden): `a` takes a session advisory lock on a random key, which `b`
/// can take too only on another database (advisory locks are the database's), then both let
/// it go. Any role may take one. Where the advisory lock functions are revoked too, `b` looks
/// for `a`'s session in `pg_stat_activity` ([`one_database_by_sessions`]; dups49 F4: every row
/// stored twice, exit 0). `None` where neither can be asked (a session in a failed
/// transaction). Call only outside a transaction block: a refused function would abort it.
pub fn one_database(a: &mut Connection, b: &mut Connection) -> Option<bool> {
    one_database_by_lock(a, b).or_else(|| one_database_by_sessions(a, b))
}

/// Whether `b`'s server shows `a`'s session, on `b`'s database: `a` takes a random
/// `application_name` for a moment, which every role sees of every session in
/// `pg_stat_activity` with its process id and database (a session's start, which it hides from
/// other roles, was compared: two roles' sessions could not be told, recheck49 F3); then `a`'s
/// own name is set back. `None` where that cannot be asked.
pub fn one_database_by_sessions(a: &mut Connection, b: &mut Connection) -> Option<bool> {
    use std::hash::{BuildHasher, Hasher};
    let own = first_value(
        a,
        "SELECT pid::text || ' ' || datid::text || ' ' || \
         pg_catalog.current_setting('application_name') \
         FROM pg_catalog.pg_stat_activity WHERE pid = pg_catalog.pg_backend_pid()",
    )
    .ok()
    .flatten()?;
    let mut words = own.splitn(3, ' ');
    let (pid, datid, name) = (words.next()?, words.next()?, words.next().unwrap_or(""));
    let (pid, datid): (i32, u32) = (pid.parse().ok()?, datid.parse().ok()?);
    let mut h = std::hash::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    let token = format!("copyman-twin-{:016x}", h.finish());
    let set = |conn: &mut Connection, value: &str| {
        first_value(
            conn,
            &format!(
                "SELECT pg_catalog.set_config('application_name', {}, false)",
                sql::literal(value)
            ),
        )
        .ok()
    };
    set(a, &token)?;
    let seen = first_value(
        b,
        &format!(
            "SELECT count(*)::text FROM pg_catalog.pg_stat_activity WHERE pid = {pid} \
             AND datid = {datid} AND application_name = {} AND datid = (SELECT oid FROM \
             pg_catalog.pg_database WHERE datname = pg_catalog.current_database())",
            sql::literal(&token)
        ),
    );
    let _ = set(a, name);
    match seen.ok().flatten()?.as_str() {
        "0" => Some(false),
        _ => Some(true),
    }
}

fn one_database_by_lock(a: &mut Connection, b: &mut Connection) -> Option<bool> {
    use std::hash::{BuildHasher, Hasher};
    let taken = |conn: &mut Connection, sql: &str| {
        first_value(conn, sql)
            .ok()
            .flatten()
            .map(|v| v == "t" || v == "true")
    };
    // A key nobody else holds: random (RandomState's keys are), a few tries.
    for attempt in 0..4u32 {
        let mut h = std::hash::RandomState::new().build_hasher();
        h.write_u32(attempt);
        h.write_u32(std::process::id());
        let key = h.finish() as i64;
        if !taken(a, &format!("SELECT pg_catalog.pg_try_advisory_lock({key})"))? {
            continue;
        }
        let other = taken(b, &format!("SELECT pg_catalog.pg_try_advisory_lock({key})"));
        if other == Some(true) {
            let _ = first_value(b, &format!("SELECT pg_catalog.pg_advisory_unlock({key})"));
        }
        let _ = first_value(a, &format!("SELECT pg_catalog.pg_advisory_unlock({key})"));
        return other.map(|took| !took);
    }
    None
}

fn first_value(conn: &mut Connection, sql: &str) -> Result<Option<String>, copyman_sync::Error> {
    Ok(conn
        .query(sql)?
        .into_iter()
        .next()
        .and_then(|row| row.into_iter().next().flatten()))
}

/// A transaction id the server of `conn` gives now (with its epoch, as `txid_current()`
/// counts): above every one it gave before, whether those ended or not (a snapshot's `xmax`
/// is not: transactions still running may have higher ones). It takes one, in a transaction of
/// its own; `None` where it cannot (a standby) or where `conn` is in a transaction.
pub fn next_xid(conn: &mut Connection) -> Option<u64> {
    if conn.session().transaction_status() != copyman_core::session::TransactionStatus::Idle {
        return None;
    }
    let rows = conn.query("SELECT pg_catalog.txid_current()").ok()?;
    rows.first()?.first()?.as_deref()?.parse().ok()
}

/// The files that hold `table`'s rows on the server of `conn` ([`sql::files_query`]), as the
/// catalog says now; `None` where they cannot be asked.
pub fn table_files(conn: &mut Connection, table: &sql::TableName) -> Option<String> {
    let version = conn.session().server_version_num();
    let rows = conn.query(&sql::files_query(table, version)).ok()?;
    rows.into_iter().next()?.into_iter().next().flatten()
}

/// How many rows of `table` on the server of `conn` one of the transactions `xids` inserted
/// (`txid_current()`'s, with epoch: its `xmin`, which freezing keeps). `None` where it cannot be
/// asked (no SELECT on the table, the table gone, `conn` in a transaction).
pub fn rows_of(conn: &mut Connection, table: &str, xids: &[u64]) -> Option<u64> {
    if conn.session().transaction_status() != copyman_core::session::TransactionStatus::Idle {
        return None;
    }
    // `xmin` is the id without its epoch.
    let list: Vec<String> = xids.iter().map(|x| (x & 0xFFFF_FFFF).to_string()).collect();
    let sql = format!(
        "SELECT count(*)::text FROM {table} WHERE xmin = ANY ('{{{}}}'::pg_catalog.xid[])",
        list.join(",")
    );
    let rows = conn.query(&sql).ok()?;
    rows.first()?.first()?.as_deref()?.parse().ok()
}

/// Whether `table` on the server of `conn` holds at least `rows` rows (read no further than
/// that many); `None` where it cannot be asked.
pub fn holds_at_least(conn: &mut Connection, table: &str, rows: u64) -> Option<bool> {
    if conn.session().transaction_status() != copyman_core::session::TransactionStatus::Idle {
        return None;
    }
    let sql = format!(
        "SELECT (pg_catalog.count(*) >= {rows})::text FROM (SELECT 1 FROM {table} LIMIT {rows}) s"
    );
    let rows = conn.query(&sql).ok()?;
    Some(rows.first()?.first()?.as_deref()? == "true")
}

/// Whether `table` on the server of `conn` holds a row that one of the transactions `xids`
/// (`txid_current()`'s, with epoch) inserted: its `xmin`, which freezing keeps. `None` where it
/// cannot be asked (no SELECT on the table, the table gone, `conn` in a transaction).
pub fn holds_rows_of(conn: &mut Connection, table: &str, xids: &[u64]) -> Option<bool> {
    if conn.session().transaction_status() != copyman_core::session::TransactionStatus::Idle {
        return None;
    }
    // `xmin` is the id without its epoch.
    let list: Vec<String> = xids.iter().map(|x| (x & 0xFFFF_FFFF).to_string()).collect();
    let theirs = format!("xmin = ANY ('{{{}}}'::pg_catalog.xid[])", list.join(","));
    let exists = |conn: &mut Connection, range: &str| -> Option<bool> {
        let sql = format!("SELECT EXISTS (SELECT 1 FROM {table} WHERE {range}{theirs})::text");
        let rows = conn.query(&sql).ok()?;
        Some(rows.first()?.first()?.as_deref()? == "true")
    };
    // Read from its end back, in spans that double: a copy's rows were appended, after the rows
    // the table held before, which a scan from its start reads first (0.4 s for 5 M narrow rows
    // held before; minutes for a 100 GB table, on every resume). Each span once: the last one
    // asked reaches the first block.
    let Some(blocks) = tail_first_blocks(conn, table) else {
        return exists(conn, "");
    };
    let (mut to, mut span) = (None::<u64>, TAIL_SPAN);
    loop {
        let from = to.unwrap_or(blocks).saturating_sub(span);
        let range = match to {
            None => format!("ctid >= '({from},0)'::pg_catalog.tid AND "),
            Some(to) => format!(
                "ctid >= '({from},0)'::pg_catalog.tid AND ctid < '({to},0)'::pg_catalog.tid AND "
            ),
        };
        if exists(conn, &range)? {
            return Some(true);
        }
        if from == 0 {
            return Some(false);
        }
        (to, span) = (Some(from), span.saturating_mul(2));
    }
}

/// The blocks [`holds_rows_of`] reads first, from a table's end: 8 MB of 8 kB blocks.
const TAIL_SPAN: u64 = 1024;

/// How many blocks `table` on the server of `conn` has, where it can be read from its end back
/// by block ranges: a table of its own (no inheriting tables, not partitioned) on PostgreSQL 14
/// or later, whose TID range scans read only the blocks asked (before, a range is a filter on a
/// whole scan). `None` elsewhere.
fn tail_first_blocks(conn: &mut Connection, table: &str) -> Option<u64> {
    if conn.session().server_version_num()? < 140_000 {
        return None;
    }
    let sql = format!(
        "SELECT (pg_catalog.pg_relation_size(c.oid) \
           / pg_catalog.current_setting('block_size')::int8)::text \
         FROM pg_catalog.pg_class c WHERE c.oid = {} AND c.relkind = 'r' \
           AND NOT c.relhassubclass",
        sql::relation_regclass(table)
    );
    first_value(conn, &sql).ok().flatten()?.parse().ok()
}

/// Which of the transactions `xids` (`txid_current()`'s, with epoch) inserted rows that `table`
/// on the server of `conn` holds as its own (not those of a table inheriting from it; a
/// partitioned table's are its partitions'), as `xmin` (the id without its epoch) names them.
/// `None` where it cannot be asked.
pub fn inserted_by(conn: &mut Connection, table: &str, xids: &[u64]) -> Option<Vec<u64>> {
    if conn.session().transaction_status() != copyman_core::session::TransactionStatus::Idle {
        return None;
    }
    let list: Vec<String> = xids.iter().map(|x| (x & 0xFFFF_FFFF).to_string()).collect();
    let sql = format!(
        "SELECT DISTINCT xmin::text FROM (SELECT xmin FROM ONLY {table} UNION ALL \
         SELECT xmin FROM {table} WHERE (SELECT c.relkind FROM pg_catalog.pg_class c \
         WHERE c.oid = {}) = 'p') AS own WHERE xmin = ANY ('{{{}}}'::pg_catalog.xid[])",
        sql::relation_regclass(table),
        list.join(",")
    );
    let rows = conn.query(&sql).ok()?;
    let held: Vec<u64> = (rows.iter())
        .filter_map(|r| r.first()?.as_deref()?.parse().ok())
        .collect();
    Some(
        (xids.iter().copied())
            .filter(|x| held.contains(&(x & 0xFFFF_FFFF)))
            .collect(),
    )
}

/// Whether `table` (a name as a statement spells it) on the server of `conn` is UNLOGGED, or
/// has UNLOGGED partitions below it: a crash of its server empties those, whatever was written
/// there since. `false` where it cannot be asked.
pub fn unlogged_within(conn: &mut Connection, table: &str) -> bool {
    unlogged(
        conn,
        table,
        "EXISTS (SELECT FROM tree JOIN pg_catalog.pg_class c ON c.oid = tree.oid \
         WHERE c.relpersistence = 'u')",
    )
}

/// Whether `table` on the server of `conn` is UNLOGGED in every part that holds rows (itself,
/// or every partition below it): a crash of its server empties all of it. `false` where it
/// cannot be asked.
pub fn unlogged_entirely(conn: &mut Connection, table: &str) -> bool {
    unlogged(
        conn,
        table,
        "NOT EXISTS (SELECT FROM tree JOIN pg_catalog.pg_class c \
         ON c.oid = tree.oid WHERE c.relkind IN ('r', 'm') AND c.relpersistence <> 'u')",
    )
}

/// `table`'s partition tree (itself and its partitions, as `tree(oid)`) asked `question`.
fn unlogged(conn: &mut Connection, table: &str, question: &str) -> bool {
    let sql = format!(
        "WITH RECURSIVE tree(oid) AS (SELECT {}::pg_catalog.oid \
           UNION SELECT i.inhrelid FROM pg_catalog.pg_inherits i \
             JOIN tree ON i.inhparent = tree.oid \
             JOIN pg_catalog.pg_class k ON k.oid = i.inhrelid AND k.relispartition) \
         SELECT ({question})::text",
        sql::relation_regclass(table)
    );
    first_value(conn, &sql).ok().flatten().as_deref() == Some("true")
}

/// Why an UNLOGGED `table` (a name as a statement spells it) on the server of `conn` may have
/// lost rows a run committed there, where it is one: a crash (or an immediate stop) of its
/// server empties it in recovery, which a resume would otherwise put down to a restore or a
/// clone. `None` for a logged table, or where it cannot be asked.
pub fn unlogged_note(conn: &mut Connection, table: &str) -> Option<&'static str> {
    let sql = format!(
        "SELECT (relpersistence = 'u')::text FROM pg_catalog.pg_class \
         WHERE oid = {}",
        sql::relation_regclass(table)
    );
    let rows = conn.query(&sql).ok()?;
    (rows.first()?.first()?.as_deref()? == "true").then_some(
        "it is UNLOGGED there, and a crash or an immediate stop of its server since would have \
         emptied it (crash recovery), unless its rows were deleted",
    )
}

/// Whether the server of `conn` came up from a crash (or an immediate stop) when it last started
/// ([`sql::STARTED_AFTER_A_CRASH`]): what empties its UNLOGGED tables. `false` where it cannot
/// be told.
pub fn started_after_a_crash(conn: &mut Connection) -> bool {
    first_value(conn, sql::STARTED_AFTER_A_CRASH)
        .ok()
        .flatten()
        .as_deref()
        == Some("true")
}

/// Where the server of `conn` stands in its WAL ([`state::Position`]), asked on `conn` (which
/// must not be in a transaction a failed query would abort): `None` before PostgreSQL 10, on a
/// standby, or where it cannot be read.
pub fn wal_position(conn: &mut Connection) -> Option<state::Position> {
    if conn
        .session()
        .server_version_num()
        .is_none_or(|v| v < 100_000)
    {
        return None;
    }
    let rows = conn.query(sql::WAL_POSITION).ok()?;
    let row = rows.first()?;
    let mut at = state::Position::parse(row.first()?.as_deref()?, row.get(1)?.as_deref()?)?;
    let field = |i: usize| row.get(i).cloned().flatten().and_then(|s| s.parse().ok());
    (at.started, at.reset) = (field(2), field(3));
    Some(at)
}

/// Whether the server of `conn` started, or ran crash recovery, since it had started at
/// `started` with its statistics last reset at `reset` (microseconds since 1970, as a
/// [`state::Position`] records them: [`sql::SERVER_STARTED`]): either moment other now.
/// `None` where it cannot be told (neither recorded, or not asked).
pub fn restarted_since(
    conn: &mut Connection,
    started: Option<i64>,
    reset: Option<i64>,
) -> Option<bool> {
    if started.is_none() && reset.is_none() {
        return None;
    }
    let rows = conn.query(sql::SERVER_STARTED).ok()?;
    let row = rows.first()?;
    let field = |i: usize| -> Option<i64> { row.get(i)?.as_deref()?.parse().ok() };
    let (now_started, now_reset) = (field(0)?, field(1));
    Some(started.is_some_and(|s| s != now_started) || reset.is_some_and(|r| Some(r) != now_reset))
}

/// Whether the server of `conn` ran crash recovery since its statistics were last reset at
/// `reset` (microseconds since 1970, as a [`state::Position`] records it): every kind of its
/// statistics reset since ([`sql::RESET_SINCE`]) — a crash, an immediate stop, a backend
/// killed — which empties its UNLOGGED tables. `false` where it cannot be told.
pub fn crash_recovery_since(conn: &mut Connection, reset: i64) -> bool {
    let sql = sql::RESET_SINCE.replace("{}", &reset.to_string());
    first_value(conn, &sql).ok().flatten().as_deref() == Some("true")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(server: &str, database: &str, table: Option<&str>) -> Identity {
        Identity {
            server: server.into(),
            how: How::SystemIdentifier,
            instance: "2026-11-30 10:00:00+00 port 5432".into(),
            database: database.into(),
            table: table.map(Into::into),
            reads: table.into_iter().map(Into::into).collect(),
            writes: table.into_iter().map(Into::into).collect(),
            in_recovery: false,
            fingerprint: None,
            replica_by: None,
            read_only: None,
            listens: Default::default(),
            streams_from: None,
        }
    }

    #[test]
    fn sameness() {
        let a = id("1", "5", Some("100"));
        assert!(a.same_table(&id("1", "5", Some("100"))));
        assert!(!a.same_table(&id("1", "5", Some("101"))));
        assert!(a.same_table(&id("1", "5", None)));
        assert!(!a.same_database(&id("2", "5", Some("100"))));
        assert!(!a.same_database(&id("1", "6", Some("100"))));
        assert_eq!(a.to_string(), "system identifier 1, database oid 5");
        // A clone: the same system identifier and oids, another postmaster.
        let clone = Identity {
            instance: "2026-11-30 11:00:00+00 port 5433".into(),
            ..id("1", "5", Some("100"))
        };
        assert!(!a.same_database(&clone) && !a.same_table(&clone));
    }

    #[test]
    fn state_key_is_the_system_identifier_and_the_database_oid() {
        // Byte for byte what state files have recorded since format 2.
        assert_eq!(
            id("7301847126395823112", "16384", None)
                .state_key()
                .as_deref(),
            Some("system 7301847126395823112 database 16384")
        );
        let fallback = Identity {
            how: How::StartTimeAndPort,
            instance: "2026-01-01 00:00:00+00 port 5432".into(),
            ..id("2026-01-01 00:00:00+00 port 5432", "16384", None)
        };
        assert_eq!(fallback.state_key(), None);
        assert!(!fallback.same_database(&id("2026-01-01 00:00:00+00 port 5432", "16384", None)));
    }

    #[test]
    fn a_table_feeds_a_target_that_writes_what_it_reads() {
        let (p, p1, p2) = ("100", "101", "102");
        let read = |table: &str, reads: &[&str]| Identity {
            reads: reads.iter().map(|s| (*s).to_owned()).collect(),
            ..id("1", "5", Some(table))
        };
        let write = |table: &str, writes: &[&str]| Identity {
            writes: writes.iter().map(|s| (*s).to_owned()).collect(),
            ..id("1", "5", Some(table))
        };
        // A partition into its partitioned parent, and the parent into a partition.
        assert!(write(p1, &[p1]).feeds(&write(p, &[p, p1, p2])));
        assert!(write(p, &[p, p1, p2]).feeds(&write(p1, &[p1])));
        // A view into a table it reads: mentioned, not fed (its rows may come from elsewhere).
        let view = Identity {
            writes: vec!["200".into()],
            ..read("200", &["200", "201"])
        };
        assert!(!view.feeds(&write("201", &["201"])) && view.mentions(&write("201", &["201"])));
        assert!(!view.mentions(&write("202", &["202"])));
        // A sibling partition, another database: not.
        assert!(!write(p1, &[p1]).feeds(&write(p2, &[p2])));
        let other = Identity {
            database: "6".into(),
            ..write(p, &[p, p1, p2])
        };
        assert!(!write(p1, &[p1]).feeds(&other));
    }

    /// A standby read as a role that may not call `pg_control_system()`: told from its
    /// primary by the catalog rows they share, not from another cluster's.
    #[test]
    fn a_standby_without_the_system_identifier_is_told_by_its_catalog_rows() {
        let primary = Identity {
            how: How::StartTimeAndPort,
            fingerprint: Some("731:716:745:16457".into()),
            ..id("primary start", "5", Some("16457"))
        };
        let standby = Identity {
            in_recovery: true,
            instance: "another start".into(),
            ..primary.clone()
        };
        assert!(standby.standby_of(&primary));
        let elsewhere = Identity {
            fingerprint: Some("751:716:745:16457".into()),
            ..primary.clone()
        };
        assert!(!standby.standby_of(&elsewhere));
        assert!(!standby.standby_of(&Identity {
            fingerprint: None,
            ..primary
        }));
    }

    /// One role may read the system identifier, the other not: the same running server and
    /// database are the same all the same (rows were copied twice, exit 0).
    #[test]
    fn a_session_without_the_system_identifier_is_told_by_its_running_server() {
        let known = id("7301847126395823112", "16384", Some("100"));
        let fallback = Identity {
            server: known.instance.clone(),
            how: How::StartTimeAndPort,
            ..known.clone()
        };
        assert!(known.same_database(&fallback) && fallback.same_database(&known));
        assert!(known.same_table(&fallback));
        let elsewhere = Identity {
            instance: "2026-11-30 11:00:00+00 port 5433".into(),
            server: "2026-11-30 11:00:00+00 port 5433".into(),
            ..fallback.clone()
        };
        assert!(!known.same_database(&elsewhere) && !elsewhere.same_database(&known));
        assert!(!fallback.same_database(&Identity {
            database: "16385".into(),
            ..fallback.clone()
        }));
    }
}
