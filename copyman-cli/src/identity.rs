//! Which server and database each endpoint reached, so that one database given twice is refused
//! before anything is sent. The servers are asked by [`Identity::of`], the query a job's state
//! file names its destinations by too.
//!
//! Two COPYs into one table from two sessions of one copy wait on each other as soon as their
//! rows meet in a unique index (the second waits for the first's transaction, which waits for
//! copyman, which waits for the second): a hang that holds locks other users need. Connection
//! strings cannot tell (`host=/run/postgresql` and `host=127.0.0.1` may be one server), so the
//! servers are asked, right after connecting:
//!
//! * the server: `system_identifier` from `pg_control_system()` (unique per cluster, readable by
//!   every role since PostgreSQL 10 unless revoked); where that fails, the postmaster's start time
//!   and port (`pg_postmaster_start_time()`, `current_setting('port')`), which tell servers apart
//!   just as well in practice (a cluster restarted between two connections would not be seen as
//!   itself, but one run connects to all endpoints within moments);
//! * the database: its oid;
//! * the table (table mode, and the tables copy-mode statements name): the server reads the
//!   name as spelled with its own scanner and resolves it with `to_regclass`
//!   ([`copyman_job::sql::relation_oid_query`]), so that one table spelled two ways is one, and
//!   a different `search_path` naming another table is not taken for the same one.
//!
//! Refused (exit 2): a destination on a standby (in recovery) or read-only by default: it takes
//! no writes (under `--keep-going` left out, unless none is left); two
//! destinations on one database in table mode, or in copy mode with
//! `--receive` statements that name one table (`t`, `public."t"` and `U&"\0074"`, as each
//! session's server reads and resolves them; the same statement when its table cannot be told);
//! a destination that is the source's own table (in copy mode: a `--receive` naming the table
//! `--send` reads, `COPY t TO STDOUT`, on the source's database). Only warned about: copy-mode
//! destinations on one database with different statements, and a copy mode destination on the
//! source's database otherwise (the statements may name different tables).
//!
//! `--dry-run` refuses what the run refuses: it calls [`check`] too.

use std::sync::{Mutex, PoisonError};

use copyman_core::statement;
use copyman_job::identity::Identity;
use copyman_sync::Connection;

use crate::args::{Statements, Transfer};
use crate::dest::Dest;
use crate::limits::{Encodings, refuse_lossy_encodings};
use crate::report::{self, ErrorInfo, Exit, Fatal};
use crate::run::Unreachable;

/// Identifies every server endpoint and refuses a database given twice (see the module).
///
/// # Errors
/// [`Fatal`] with exit 2 for a duplicate.
pub(crate) fn check(
    t: &Transfer,
    source: Option<&mut Connection>,
    dests: &mut [Dest<'_>],
) -> Result<(), Fatal> {
    // The source reads its table; the destinations write theirs (`--target-table`). In copy
    // mode, the tables the statements name (a `--send` of a query names none), as spelled: each
    // server reads the name as the statement would.
    let table_mode = matches!(t.statements, Statements::Table { .. });
    let (table, target) = match &t.statements {
        Statements::Table { copy, .. } => (
            Some(copy.table.to_string()),
            Some(copy.target().to_string()),
        ),
        Statements::Raw { send, .. } => (
            send.as_deref()
                .and_then(statement::copy_table)
                .map(str::to_owned),
            None,
        ),
    };
    // A server that cannot say who it is (not PostgreSQL itself, a pooler) is not refused: the
    // check is skipped for it, and --lock-timeout / --stall-timeout still bound a wait.
    let identify =
        |conn: &mut Connection, role: &str, table: Option<&str>| match Identity::of(conn, table) {
            Ok(id) => Some(id),
            Err(e) => {
                report::warn(format_args!(
                    "cannot identify the {role}'s server ({}): a database given twice is told by \
                 an advisory lock or its sessions in pg_stat_activity instead",
                    report::describe(&e)
                ));
                None
            }
        };
    let mut source_conn = source;
    let source =
        (source_conn.as_deref_mut()).and_then(|conn| identify(conn, "source", table.as_deref()));
    *SOURCE_KEY.lock().unwrap_or_else(PoisonError::into_inner) =
        source.as_ref().and_then(Identity::state_key);
    // Endpoints whose server could not say who it is (0 the source, then each destination):
    // told apart from the others by an advisory lock, below.
    let mut unknown: Vec<usize> = Vec::new();
    if source_conn.is_some() && source.is_none() {
        unknown.push(0);
    }
    let mut seen: Vec<(usize, Identity, String)> = Vec::new();
    // Left out under --keep-going: when none is left, the first is the run's refusal.
    let mut left_out: Vec<String> = Vec::new();
    // Destinations that repeat one before them, said together: by the first of each database
    // (its number, its name and identity), those that repeat it.
    let mut twice: Vec<Twice> = Vec::new();
    for (i, dest) in dests.iter_mut().enumerate() {
        let Some(conn) = dest.conn.as_mut() else {
            continue;
        };
        let mut repeated = false;
        // In copy mode, the table its --receive names, as its session resolves it.
        let receives = match &t.statements {
            Statements::Raw { receive, .. } => receive.get(i).cloned().flatten(),
            Statements::Table { .. } => None,
        };
        let target = target
            .as_deref()
            .or_else(|| receives.as_deref().and_then(statement::copy_table));
        let Some(id) = identify(conn, &format!("destination {}", i + 1), target) else {
            unknown.push(i + 1);
            continue;
        };
        report::log(format_args!("destination {}: {id}", i + 1));
        dest.identity = id.state_key();
        let name = dest.endpoint.display();
        replica_by_default(&id, i, &name);
        if let Some(why) = takes_no_writes(&id, conn, &name) {
            if !t.keep_going {
                return Err(refused(format!("destination {} ({name}) {why}", i + 1)));
            }
            dest.leave_out(
                i,
                ErrorInfo {
                    sqlstate: Some("25006".to_owned()),
                    message: why.to_owned(),
                },
            );
            left_out.push(format!("destination {} ({name}) {why}", i + 1));
            continue;
        }
        if let Some(source) = &source {
            // Table mode names a table on both sides: the same where both were found as one, or
            // both are one name (neither found: it fails as missing elsewhere) — a
            // --target-table not created yet is another table, missing (it was said "the
            // source's own table"); copy mode only where both statements name one that their
            // sessions found.
            let found = id.has_table() && source.has_table();
            let own_table = if table_mode {
                id.same_table(source) && (found || table.as_deref() == target)
            } else {
                source.has_table() && id.has_table() && id.same_table(source)
            };
            if own_table {
                return Err(Fatal {
                    exit: Exit::Usage,
                    server: None,
                    message: format!(
                        "destination {} ({name}) is the source's own table ({id}): copying a \
                         table into itself",
                        i + 1
                    ),
                });
            }
            // Another table of the database that the rows read would land in (a partition
            // and its partitioned parent): copied twice into it.
            if found && source.feeds(&id) {
                return Err(Fatal {
                    exit: Exit::Usage,
                    server: None,
                    message: format!(
                        "destination {} ({name}): its table holds rows the source reads (it is \
                         a partition of the source's table, or its partitioned parent; {id}): \
                         the rows would be copied into the table they are read from",
                        i + 1
                    ),
                });
            }
            // An inheritance parent and its child (at any level), one the source's and the
            // other the destination's: the rows copied are read twice through the parent
            // (dupes47 F3: 500 rows read twice, exit 0; a partition's pair was refused).
            if found
                && table_mode
                && id.same_database(source)
                && let (Some(a), Some(b)) = (source.table_oid(), id.table_oid())
                && let Some(conn) = source_conn.as_deref_mut()
                && inherits(conn, a, b) == Some(true)
            {
                return Err(Fatal {
                    exit: Exit::Usage,
                    server: None,
                    message: format!(
                        "destination {} ({name}): its table and the source's are a parent and \
                         its child (INHERITS), in the source's database ({id}): the rows copied \
                         would be read twice through the parent",
                        i + 1
                    ),
                });
            }
            // A view that reads the destination's table: its rows may be that table's own
            // (copied a second time), or only filtered by it; the catalog cannot tell, and copy
            // mode refuses such a query (it was a warning here, every row twice, exit 0:
            // dupes47 F2).
            if found && source.mentions(&id) {
                return Err(Fatal {
                    exit: Exit::Usage,
                    server: None,
                    message: format!(
                        "destination {} ({name}): its table is one the source's view reads, in \
                         the source's database ({id}): the rows the view returns may be that \
                         table's own, stored into it a second time (within one database, \
                         INSERT … SELECT copies in one statement)",
                        i + 1
                    ),
                });
            }
            let emptied = matches!(t.statements, Statements::Table { truncate: true, .. });
            refuse_standby_of(source, &id, i, &name, false, emptied)?;
            // A --send query that reads the --receive's table (or a partition of it): every
            // row stored a second time into the table it is read from (it was the warning
            // below, exit 0).
            let query = match &t.statements {
                Statements::Raw {
                    send: Some(send), ..
                } => statement::copy_query(send),
                _ => None,
            };
            let reads = match (query, source_conn.as_deref_mut()) {
                (Some(query), Some(conn)) if !table_mode && id.same_database(source) => {
                    query_reads(conn, query, id.written())
                }
                _ => None,
            };
            if reads == Some(true) {
                return Err(Fatal {
                    exit: Exit::Usage,
                    server: None,
                    message: format!(
                        // (Not "every row a second time": a query that filters or changes
                        // them is meant so, and has its statement: conn64 F3.)
                        "destination {} ({name}): its --receive table is one the --send query \
                         reads, in the source's database ({id}): the rows it returns would be \
                         stored into the table they are read from, by a copy that can wait on \
                         itself; within one database one statement does that: INSERT INTO \
                         table SELECT …",
                        i + 1
                    ),
                });
            }
            // (Not where the query was found not to read it: dup65 F2.)
            if !table_mode && id.same_database(source) && reads.is_none() {
                report::warn(format_args!(
                    "destination {} ({name}) is the source's database ({id}): if --receive \
                     names the table --send reads, the copy can wait on itself (--lock-timeout \
                     bounds the wait)",
                    i + 1
                ));
            }
        }
        for (j, other, other_name) in &seen {
            if !id.same_database(other) {
                continue;
            }
            // Two destination tables of one database where one is a partition of the other (at
            // any level): every row stored there twice (it was a warning, exit 0; in table mode
            // too, each destination's search_path finding another: dupes47 F1).
            if id.feeds(other) && !id.same_table(other) {
                let whose = match t.statements {
                    Statements::Raw { .. } => "one --receive's table",
                    Statements::Table { .. } => "one's table",
                };
                return Err(Fatal {
                    exit: Exit::Usage,
                    server: None,
                    message: format!(
                        "destinations {} ({other_name}) and {} ({name}) write into one table of \
                         the same database ({whose} is a partition of the other's; {id}): every \
                         row would be stored there twice; give one of them",
                        j + 1,
                        i + 1
                    ),
                });
            }
            // An inheritance parent and its child (at any level): every row read twice through
            // the parent, as a partition tree's stored twice (recheck47b F5: only warned).
            if id.has_table()
                && other.has_table()
                && !id.same_table(other)
                && let (Some(a), Some(b)) = (id.table_oid(), other.table_oid())
                && inherits(conn, a, b) == Some(true)
            {
                return Err(Fatal {
                    exit: Exit::Usage,
                    server: None,
                    message: format!(
                        "destinations {} ({other_name}) and {} ({name}) write into an inheritance \
                         parent and its child of the same database ({id}): every row would be \
                         read twice through the parent; give one of them",
                        j + 1,
                        i + 1
                    ),
                });
            }
            let same_statement = match &t.statements {
                Statements::Table { .. } => id.same_table(other),
                // Both --receive name a table each session found: the same one or not.
                Statements::Raw { .. } if id.has_table() && other.has_table() => {
                    id.same_table(other)
                }
                Statements::Raw { receive, .. } => {
                    let statement = |k: usize| receive.get(k).cloned().flatten();
                    statement(i).map(|s| s.trim().to_owned())
                        == statement(*j).map(|s| s.trim().to_owned())
                }
            };
            // Every such pair said at once, each destination with the first it repeats (dup65
            // F13: the second pair was found only by the next run).
            if same_statement {
                match twice.iter_mut().find(|(first, ..)| *first == *j) {
                    Some((.., again)) => again.push((i, name.clone())),
                    None => twice.push((
                        *j,
                        other_name.clone(),
                        id.to_string(),
                        vec![(i, name.clone())],
                    )),
                }
                repeated = true;
                break;
            }
            // Table mode found both tables, other ones: said as what it is (it spoke of
            // --receive statements table mode has not, "if they reach the same table": dupes47
            // F11).
            if id.has_table() && other.has_table() {
                let each = match table_mode {
                    true => "their sessions find another table each (their search_paths differ)",
                    false => "their --receive statements name another table each",
                };
                report::warn(format_args!(
                    "destinations {} and {} are the same database ({id}), and {each}: both \
                     copies are stored in it",
                    j + 1,
                    i + 1
                ));
                continue;
            }
            report::warn(format_args!(
                "destinations {} and {} are the same database ({id}); their --receive \
                 statements differ, and both copies are stored in it (if they reach the same \
                 table, every row twice, and the copy can wait on itself: --lock-timeout bounds \
                 the wait)",
                j + 1,
                i + 1
            ));
        }
        if !repeated {
            seen.push((i, id, name));
        }
    }
    if !twice.is_empty() {
        return Err(Fatal {
            exit: Exit::Usage,
            server: None,
            message: format!("{}; give each once", said_twice(&twice)),
        });
    }
    refuse_unidentified_twins(t, source_conn, dests, &unknown, (&table, &target))?;
    match left_out.into_iter().next() {
        Some(first) if dests.iter().all(|d| d.error.is_some()) => Err(refused(first)),
        _ => Ok(()),
    }
}

/// A database given as several destinations: the first (its number and name), its identity,
/// and those that repeat it.
type Twice = (usize, String, String, Vec<(usize, String)>);

/// Destinations that are one database, each group in one clause (dup67 F7: three spellings
/// of one database were said as two pairs, each with the whole explanation): "destinations 1
/// (a), 3 (b) and 5 (c) are the same database (…): its rows would be copied into one table 3
/// times".
fn said_twice(groups: &[Twice]) -> String {
    let clauses: Vec<String> = groups
        .iter()
        .map(|(first, first_name, id, again)| {
            let mut named: Vec<String> = std::iter::once(format!("{} ({first_name})", first + 1))
                .chain(again.iter().map(|(i, name)| format!("{} ({name})", i + 1)))
                .collect();
            let last = named.pop().unwrap_or_default();
            let times = match named.len() + 1 {
                2 => "twice".to_owned(),
                n => format!("{n} times"),
            };
            format!(
                "destinations {} and {last} are the same database ({id}): its rows would be \
                 copied into one table {times}",
                named.join(", ")
            )
        })
        .collect();
    clauses.join("; ")
}

/// Whether `query` (a `--send`'s `COPY (query) TO STDOUT`) reads one of the relations
/// `written` (oids), asked on the source's session `conn` (idle) without running it
/// ([`copyman_job::plan::relations_read`]). `None` where that cannot be told.
fn query_reads(conn: &mut Connection, query: &str, written: &[String]) -> Option<bool> {
    if written.is_empty() {
        return None;
    }
    // Asked before any lock timeout or watch stands: a relation the query reads that another
    // session holds is not waited for (it cannot be told then, and the copy's own wait is
    // watched).
    let read =
        copyman_job::plan::relations_read(conn, query, Some(std::time::Duration::from_secs(2)))?;
    if read.iter().any(|r| written.contains(&r.oid)) {
        return Some(true);
    }
    // A relation read returns its partitions' and inheritance children's rows too: a query of
    // a partitioned table writing into one of its partitions stored that partition's rows
    // twice, exit 0 (dupes47 F10).
    let oids: Vec<&str> = read.iter().map(|r| r.oid.as_str()).collect();
    if oids.is_empty() {
        return Some(false);
    }
    let below = conn
        .query(&copyman_job::sql::descendants_query(&oids)?)
        .ok()?;
    Some(
        below
            .iter()
            .filter_map(|row| row.first().cloned().flatten())
            .any(|oid| written.contains(&oid)),
    )
}

/// The pairs `(x, y)`, `x` < `y`, of `sessions` (0 the source, then each destination; `None`
/// for one without a session, or left out) that are one database, one of each pair a server
/// that could not say who it is (`unknown`): told by an advisory lock
/// ([`copyman_job::identity::one_database`]), each pair asked once.
fn unidentified_twins(
    sessions: &mut [Option<&mut Connection>],
    unknown: &[usize],
    name: &dyn Fn(usize) -> String,
) -> Vec<(usize, usize)> {
    let mut twins = Vec::new();
    for &u in unknown {
        for other in (0..sessions.len()).filter(|o| *o != u && !(unknown.contains(o) && *o < u)) {
            let (x, y) = (u.min(other), u.max(other));
            let (before, from) = sessions.split_at_mut(y);
            let (Some(a), Some(b)) = (before[x].as_deref_mut(), from[0].as_deref_mut()) else {
                continue;
            };
            match copyman_job::identity::one_database(a, b) {
                Some(true) => twins.push((x, y)),
                Some(false) => {}
                // Said, not passed over in silence (dups49 F4: the warning promised a check
                // that could not be made).
                None => report::warn(format_args!(
                    "cannot tell whether {} and {} are one database (their servers cannot say \
                     who they are, and neither an advisory lock nor pg_stat_activity tells it \
                     to this role): if they are, every row is stored there twice",
                    name(x),
                    name(y)
                )),
            }
        }
    }
    twins
}

/// A database given twice where a server could not say who it is (`unknown`: 0 the source,
/// then each destination; [`Identity::of`] failed, `pg_control_system()` and
/// `pg_postmaster_start_time()` revoked): each such endpoint is told apart from every other by
/// an advisory lock ([`copyman_job::identity::one_database`]), and refused as [`check`]
/// refuses one identified (it was a warning, and every row was stored twice, exit 0). Where
/// even that cannot be asked, the warning stands.
fn refuse_unidentified_twins(
    t: &Transfer,
    source: Option<&mut Connection>,
    dests: &mut [Dest<'_>],
    unknown: &[usize],
    (table, target): (&Option<String>, &Option<String>),
) -> Result<(), Fatal> {
    let names: Vec<String> = std::iter::once("the source".to_owned())
        .chain(
            (dests.iter().enumerate())
                .map(|(i, d)| format!("destination {} ({})", i + 1, d.endpoint.display())),
        )
        .collect();
    let name = |k: usize| names[k].clone();
    let how = "(their servers cannot say who they are, but a session on one is seen on the \
               other)";
    let mut sessions: Vec<Option<&mut Connection>> = std::iter::once(source)
        .chain(dests.iter_mut().map(|d| match d.error {
            Some(_) => None,
            None => d.conn.as_mut(),
        }))
        .collect();
    for (x, y) in unidentified_twins(&mut sessions, unknown, &name) {
        let twice = || {
            format!(
                "{} and {} are the same database {how}: its rows would be copied into one table \
                 twice; give it once",
                name(x),
                name(y)
            )
        };
        let refusal = match (&t.statements, x) {
            (Statements::Table { .. }, 0) if table == target => Some(format!(
                "{} is the source's own database {how}: copying a table into itself",
                name(y)
            )),
            // Another table there, which may hold the rows the source reads (a partition, its
            // parent, the table a view reads), asked of the relations as an identified server's
            // are (it was a warning, every row twice, exit 0: dupes47 F7).
            (Statements::Table { .. }, 0) => {
                let (before, from) = sessions.split_at_mut(y);
                let (read, written) = match (before[0].as_deref_mut(), from[0].as_deref_mut()) {
                    (Some(source), Some(dest)) => (
                        relations_of(source, table.as_deref(), true),
                        relations_of(dest, target.as_deref(), false),
                    ),
                    _ => (None, None),
                };
                let holds = (read.zip(written))
                    .is_some_and(|(read, written)| read.iter().any(|r| written.contains(r)));
                holds.then(|| {
                    format!(
                        "{}: its table holds rows the source reads, in the source's database \
                         {how} (a partition of the source's table, its partitioned parent, or \
                         a table the source's view reads): the rows would be stored into the \
                         table they are read from",
                        name(y)
                    )
                })
            }
            (Statements::Table { .. }, _) => Some(twice()),
            (Statements::Raw { receive, .. }, _) if x > 0 => {
                let statement = |k: usize| {
                    let receive = receive.get(k - 1).cloned().flatten();
                    receive.map(|s| s.trim().to_owned())
                };
                (statement(x) == statement(y)).then(twice)
            }
            (Statements::Raw { .. }, _) => None,
        };
        if let Some(message) = refusal {
            return Err(Fatal {
                exit: Exit::Usage,
                server: None,
                message,
            });
        }
        report::warn(format_args!(
            "{} and {} are the same database {how}: if their statements reach the same table, \
             every row is stored there twice, and the copy can wait on itself (--lock-timeout \
             bounds the wait)",
            name(x),
            name(y)
        ));
    }
    Ok(())
}

/// Whether the tables of oids `a` and `b` are an inheritance parent and its child, at any
/// level, either way, asked on `conn` ([`copyman_job::sql::family_query`]); `None` where that
/// cannot be told.
fn inherits(conn: &mut Connection, a: &str, b: &str) -> Option<bool> {
    let rows = conn.query(&copyman_job::sql::family_query(a, b)?).ok()?;
    Some(rows.first()?.first()?.as_deref()? == "t")
}

/// The oids of the relations a COPY of table `name` (as `conn`'s session resolves it) reads
/// (`read`) or writes ([`copyman_job::sql::relations_query`]); `None` where it cannot be told.
fn relations_of(conn: &mut Connection, name: Option<&str>, read: bool) -> Option<Vec<String>> {
    let first = |conn: &mut Connection, sql: &str| {
        let rows = conn.query(sql).ok()?;
        rows.into_iter().next()?.into_iter().next()?
    };
    let oid = first(conn, &copyman_job::sql::relation_oid_query(name?))?;
    let list = first(conn, &copyman_job::sql::relations_query(&oid, read)?)?;
    Some(list.split(',').map(str::to_owned).collect())
}

/// The one-table run's source as a state file names a server ([`Identity::state_key`]), once
/// [`check`] asked it.
static SOURCE_KEY: Mutex<Option<String>> = Mutex::new(None);

/// [`SOURCE_KEY`].
pub(crate) fn source_key() -> Option<String> {
    SOURCE_KEY
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

/// A refusal before anything is sent: exit 2.
fn refused(message: String) -> Fatal {
    Fatal {
        exit: Exit::Usage,
        server: None,
        message,
    }
}

/// Why a destination takes no writes: on a standby, or read-only by default. Its first write
/// would fail (SQLSTATE 25006) after the other destinations had begun — a resume, too: said
/// while planning, so that a dry run exits as the run would. `None` where it takes them.
fn takes_no_writes(id: &Identity, conn: &Connection, name: &str) -> Option<String> {
    if id.is_standby() {
        // One host of a CONN naming several (`host=a,b`): libpq's target_session_attrs takes
        // the primary among them (conn48 F4: "give its primary" of a list that held it). The
        // name is `user@HOSTS/database`, a socket directory's host a path (recheck59 F6: the
        // list was looked for before its first `/`, and a list of sockets never found).
        let several = name
            .rsplit_once('/')
            .is_some_and(|(hosts, _)| hosts.contains(','));
        let way = match (several, conn.peer_addr()) {
            // (Said as what to write, whatever its CONN asked: conn64 F2, `standby` read as
            // described.)
            (true, Some(reached)) => format!(
                "its sessions reached {reached} of its CONN's hosts; a destination is written \
                 to: target_session_attrs=read-write (or primary) in its CONN takes the primary \
                 among them"
            ),
            (true, None) => "a destination is written to: target_session_attrs=read-write (or \
                             primary) in its CONN takes the primary among its hosts"
                .to_owned(),
            (false, _) => "give its primary".to_owned(),
        };
        return Some(format!(
            "is a standby (its server is in recovery: pg_is_in_recovery()): it takes no writes; \
             {way}"
        ));
    }
    // A soft freeze: its first write failed (25006) once the others had begun, and a dry run
    // exited 0. Said with where it is set (the server's `pg_settings.source`).
    let by = id.read_only_by()?;
    // Set elsewhere than its CONN, its CONN may lift it for this copy.
    let way = match by {
        "client" => "take it out of them to copy there",
        _ => {
            "copy there once it is off (or with options='-c default_transaction_read_only=off' \
             in its CONN, if the freeze is not meant for this copy)"
        }
    };
    Some(format!(
        "takes no writes: its transactions are read-only by default: \
         default_transaction_read_only is on, set by {}; {way}",
        set_by(by)
    ))
}

/// Where a setting `pg_settings.source` names was set, in words.
fn set_by(source: &str) -> &str {
    match source {
        "client" => "its CONN's options (or PGOPTIONS)",
        "user" => "its role (ALTER ROLE … SET)",
        "database" => "its database (ALTER DATABASE … SET)",
        "database user" => "its role in its database (ALTER ROLE … IN DATABASE … SET)",
        "configuration file" => "its server's configuration (postgresql.conf, ALTER SYSTEM)",
        other => other,
    }
}

/// A destination whose sessions are `session_replication_role = replica` by a setting of its
/// role, database or server (not its CONN's, which asks for it): its triggers and foreign keys
/// do not run for the copy, without a word (a child table's rows loaded with no parent, a
/// trigger that refuses every row never ran). Said, with where it is set.
fn replica_by_default(id: &Identity, i: usize, name: &str) {
    if let Some(by) = id.replica_by().filter(|by| *by != "client") {
        report::warn(format_args!(
            "destination {} ({name}): its sessions are session_replication_role = replica, set \
             by {}: its triggers and foreign keys do not run for what the copy writes there \
             (a superuser's RESET of it there lets them run)",
            i + 1,
            set_by(by)
        ));
    }
}

/// Refuses, or warns about, a source that is a standby with destination `i`'s system
/// identifier and database (`id`): a physical standby of it (streaming from it, or through a
/// relay standby), or of a clone of it, which the servers cannot tell apart. Its rows are that
/// database's own (or, for a clone's, were up to where the two parted): copied into the table
/// they are read from (`job`: every table, into itself) they are written there a second time —
/// refused (the relay's case was only warned about, and the rows doubled, exit 0); into another
/// table they are copied as from the primary; emptied first (`emptied`: `--truncate`), as from
/// the primary too, but from a standby that streams from the destination itself.
fn refuse_standby_of(
    source: &Identity,
    id: &Identity,
    i: usize,
    name: &str,
    job: bool,
    emptied: bool,
) -> Result<(), Fatal> {
    // Emptied first (`--truncate`), the table holds the source's rows once, not twice: copied,
    // but from a standby streaming from the destination itself (its replay of the TRUNCATE
    // would wait on, or cancel, the source's own read).
    if !source.standby_of(id) || (emptied && !source.streams_from(id)) {
        return Ok(());
    }
    let n = i + 1;
    let what = if source.streams_from(id) {
        format!("a standby that streams from destination {n} ({name}, {id})")
    } else {
        format!(
            "a standby (in recovery) of destination {n}'s cluster and database ({name}, {id}), \
             or of a clone of it"
        )
    };
    let refused = |into: &str| Fatal {
        exit: Exit::Usage,
        server: None,
        message: format!(
            "the source is {what}: the rows it holds are that database's own (or were, up to \
             where a clone parted from it), and copying them into {into} would write them a \
             second time; read them from the primary of a clone that parted, or copy into \
             another table"
        ),
    };
    if job {
        return Err(refused("the tables they are read from"));
    }
    if source.standby_feeds(id) {
        return Err(refused("the table they are read from there"));
    }
    if source.standby_mentions(id) {
        report::warn(format_args!(
            "destination {n} ({name}): its table is read by the source's view, and the source is \
             {what}: if the rows the view returns are that table's own, they are copied into it \
             a second time"
        ));
    } else if !(source.has_table() && id.has_table()) {
        // A query's relations, or a table not found: not known to be another table.
        report::warn(format_args!(
            "the source is {what}: if what it reads is destination {n}'s table, its rows are \
             written there a second time"
        ));
    }
    Ok(())
}

/// The destinations a job leaves out under `--keep-going`, by position, with why.
pub(crate) type LeftOut = Vec<(usize, String)>;

/// Destinations a job could not connect to, by position, with the error: passed over by the
/// job's later steps ([`Options::unreachable`](copyman_job::job::Options::unreachable)).
pub(crate) type Unreached = Vec<(usize, copyman_job::job::TableError)>;

/// A server a job could not connect to: as the command says it, and as the job does.
type NotReached = Box<(Unreachable, copyman_job::job::TableError)>;

/// For a job of many tables: refuses, before anything is planned or sent, a destination on a
/// standby, a destination database given twice and a destination that is the source's database
/// (every table would be copied into itself), and a `client_encoding` that would change the data
/// on its way
/// ([`refuse_lossy_encodings`]). A server that cannot say who it is gets a warning, as in
/// [`check`]. Under `keep_going` a destination that cannot be reached is passed over here: the
/// job leaves it out (returned with its error, [`Unreached`], so that no later step waits for it
/// again), and so is one that takes no writes: returned, with why, for the job's
/// [`Options::left_out`](copyman_job::job::Options::left_out).
///
/// # Errors
/// [`Fatal`] with exit 2 naming what; a server that cannot be reached ([`Unreachable`], exit 3).
pub(crate) fn check_job(
    source: &copyman_job::job::Server,
    dests: &[copyman_job::job::Server],
    keep_going: bool,
    truncate: bool,
) -> anyhow::Result<(Vec<String>, LeftOut, Unreached)> {
    let identify = |server: &copyman_job::job::Server,
                    role: &str|
     -> Result<(Option<Identity>, Encodings, Connection), NotReached> {
        // A signal while it connects names it, as a one-table run's does (signals65 F3).
        crate::signals::connecting_to(role, &server.name);
        let mut conn = (server.connect)().map_err(|e| {
            let unreachable = Unreachable {
                role: role.to_owned(),
                endpoint: server.name.clone(),
                error: report::describe(&e),
            };
            Box::new((unreachable, copyman_job::job::describe(&e)))
        })?;
        let encodings = Encodings::of(role.to_owned(), &conn);
        let id = match Identity::of(&mut conn, None) {
            Ok(id) => Some(id),
            Err(e) => {
                report::warn(format_args!(
                    "cannot identify the {role}'s server ({}): a database given twice is told \
                     by an advisory lock or its sessions in pg_stat_activity instead",
                    report::describe(&e)
                ));
                None
            }
        };
        Ok((id, encodings, conn))
    };
    let (source_id, source_encodings, source_conn) =
        identify(source, "source").map_err(|failed| failed.0)?;
    let mut unreached = Vec::new();
    let mut encodings = vec![source_encodings];
    let mut seen: Vec<(usize, Identity)> = Vec::new();
    let mut left_out = Vec::new();
    // The sessions of the servers that could not say who they are (0 the source, then each
    // destination), and every other, for the advisory lock that tells them apart.
    let mut unknown: Vec<usize> = Vec::new();
    if source_id.is_none() {
        unknown.push(0);
    }
    let mut conns: Vec<Option<Connection>> = vec![Some(source_conn)];
    for (i, dest) in dests.iter().enumerate() {
        let id = match identify(dest, &format!("destination {}", i + 1)) {
            Ok((id, dest_encodings, conn)) => {
                encodings.push(dest_encodings);
                conns.push(Some(conn));
                match id {
                    Some(id) => id,
                    None => {
                        unknown.push(i + 1);
                        continue;
                    }
                }
            }
            Err(failed) if keep_going => {
                unreached.push((i, failed.1));
                conns.push(None);
                continue;
            }
            Err(failed) => return Err(failed.0.into()),
        };
        replica_by_default(&id, i, &dest.name);
        let conn = conns[i + 1].as_ref().expect("pushed above");
        if let Some(why) = takes_no_writes(&id, conn, &dest.name) {
            if !keep_going {
                return Err(refused(format!("destination {} ({}) {why}", i + 1, dest.name)).into());
            }
            left_out.push((i, why.to_owned()));
            conns[i + 1] = None;
            continue;
        }
        if let Some(source) = &source_id {
            refuse_standby_of(source, &id, i, &dest.name, true, truncate)?;
        }
        if source_id.as_ref().is_some_and(|s| s.same_database(&id)) {
            return Err(Fatal {
                exit: Exit::Usage,
                server: None,
                message: format!(
                    "destination {} ({}) is the source's database ({id}): every table would be \
                     copied into itself",
                    i + 1,
                    dest.name
                ),
            }
            .into());
        }
        if let Some((j, _)) = seen.iter().find(|(_, other)| other.same_database(&id)) {
            return Err(Fatal {
                exit: Exit::Usage,
                server: None,
                message: format!(
                    "destinations {} ({}) and {} ({}) are the same database ({id}): every table \
                     would be copied into it twice; give it once",
                    j + 1,
                    dests[*j].name,
                    i + 1,
                    dest.name
                ),
            }
            .into());
        }
        seen.push((i, id));
    }
    // A database given twice where a server could not say who it is: told by an advisory lock,
    // or by its sessions.
    let how = "(their servers cannot say who they are, but a session on one is seen on the \
               other)";
    let mut sessions: Vec<Option<&mut Connection>> = conns.iter_mut().map(Option::as_mut).collect();
    let name = |k: usize| match k {
        0 => "the source".to_owned(),
        k => format!("destination {k} ({})", dests[k - 1].name),
    };
    if let Some((x, y)) = unidentified_twins(&mut sessions, &unknown, &name)
        .into_iter()
        .next()
    {
        let message = match x {
            0 => format!(
                "destination {y} ({}) is the source's database {how}: every table would be \
                 copied into itself",
                dests[y - 1].name
            ),
            x => format!(
                "destinations {x} ({}) and {y} ({}) are the same database {how}: every table \
                 would be copied into it twice; give it once",
                dests[x - 1].name,
                dests[y - 1].name
            ),
        };
        return Err(Fatal {
            exit: Exit::Usage,
            server: None,
            message,
        }
        .into());
    }
    refuse_lossy_encodings(&encodings)?;
    Ok((
        encodings.into_iter().map(|e| e.server).collect(),
        left_out,
        unreached,
    ))
}
