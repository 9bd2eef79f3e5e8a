//! Which server and database each endpoint reached, so that one database given twice is refused
//! before anything is sent.
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
//! * in table mode, the table: `to_regclass(name)`, so that a different `search_path` naming
//!   another table is not taken for the same one.
//!
//! Refused (exit 2): two destinations on one database in table mode, or in copy mode with
//! `--receive` statements that name one table (`t` and `public."t"`, as each session resolves
//! them; the same statement when its table cannot be told); a table-mode destination that is the
//! source's own table. Only
//! warned about: copy-mode destinations on one database with different statements, and a copy
//! mode destination on the source's database (the statements may name different tables).

use std::fmt;

use copyman_core::statement;
use copyman_sync::Connection;

use crate::args::{Statements, Transfer};
use crate::dest::Dest;
use crate::report::{self, Exit, Fatal};

/// A server and database, as the server itself names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    /// The server: its system identifier, or the fallback.
    server: String,
    /// Which of the two the server is.
    how: How,
    /// The database's oid.
    database: String,
    /// The table's oid (table mode, when it exists).
    table: Option<String>,
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
    /// Asks the server behind `conn`; `table` is the table of table mode, quoted.
    ///
    /// # Errors
    /// The server's, for the queries every role may run.
    pub(crate) fn of(
        conn: &mut Connection,
        table: Option<&str>,
    ) -> Result<Self, copyman_sync::Error> {
        let (server, how) = match first_value(
            conn,
            "SELECT system_identifier::text FROM pg_control_system()",
        ) {
            Ok(Some(id)) => (id, How::SystemIdentifier),
            _ => {
                let fallback = first_value(
                    conn,
                    "SELECT pg_postmaster_start_time()::text || ' port ' || \
                         current_setting('port')",
                )?;
                (fallback.unwrap_or_default(), How::StartTimeAndPort)
            }
        };
        let database = first_value(
            conn,
            "SELECT oid::text FROM pg_database WHERE datname = current_database()",
        )?
        .unwrap_or_default();
        let table = match table {
            Some(name) => first_value(
                conn,
                &format!("SELECT to_regclass({})::oid::text", literal(name)),
            )?,
            None => None,
        };
        Ok(Self {
            server,
            how,
            database,
            table,
        })
    }

    pub(crate) fn same_database(&self, other: &Self) -> bool {
        self.server == other.server && self.how == other.how && self.database == other.database
    }

    fn same_table(&self, other: &Self) -> bool {
        self.same_database(other)
            && match (&self.table, &other.table) {
                (Some(a), Some(b)) => a == b,
                // A table that is not there yet: the plan fails on it anyway.
                _ => true,
            }
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

/// A string as an SQL literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn first_value(conn: &mut Connection, sql: &str) -> Result<Option<String>, copyman_sync::Error> {
    Ok(conn
        .query(sql)?
        .into_iter()
        .next()
        .and_then(|row| row.into_iter().next().flatten()))
}

/// Identifies every server endpoint and refuses a database given twice (see the module).
///
/// # Errors
/// [`Fatal`] with exit 2 for a duplicate.
pub(crate) fn check(
    t: &Transfer,
    source: Option<&mut Connection>,
    dests: &mut [Dest<'_>],
) -> Result<(), Fatal> {
    // The source reads its table; the destinations write theirs (`--target-table`).
    let (table, target) = match &t.statements {
        Statements::Table { copy, .. } => (
            Some(copy.table.to_string()),
            Some(copy.target().to_string()),
        ),
        Statements::Raw { .. } => (None, None),
    };
    // A server that cannot say who it is (not PostgreSQL itself, a pooler) is not refused: the
    // check is skipped for it, and --lock-timeout / --stall-timeout still bound a wait.
    let identify =
        |conn: &mut Connection, role: &str, table: Option<&str>| match Identity::of(conn, table) {
            Ok(id) => Some(id),
            Err(e) => {
                report::warn(format_args!(
                    "cannot identify the {role}'s server ({}): a database given twice cannot be \
                 detected",
                    report::describe(&e)
                ));
                None
            }
        };
    let source = source.and_then(|conn| identify(conn, "source", table.as_deref()));
    let mut seen: Vec<(usize, Identity)> = Vec::new();
    for (i, dest) in dests.iter_mut().enumerate() {
        let Some(conn) = dest.conn.as_mut() else {
            continue;
        };
        // In copy mode, the table its --receive names, as its session resolves it.
        let receives = match &t.statements {
            Statements::Raw { receive, .. } => receive.get(i).cloned().flatten(),
            Statements::Table { .. } => None,
        };
        let target = target
            .as_deref()
            .or_else(|| receives.as_deref().and_then(statement::copy_table));
        let Some(id) = identify(conn, &format!("destination {}", i + 1), target) else {
            continue;
        };
        report::log(format_args!("destination {}: {id}", i + 1));
        let name = dest.endpoint.display();
        if let Some(source) = &source {
            if table.is_some() && id.same_table(source) {
                return Err(Fatal {
                    exit: Exit::Usage,
                    message: format!(
                        "destination {} ({name}) is the source's own table ({id}): copying a \
                         table into itself",
                        i + 1
                    ),
                });
            }
            if table.is_none() && id.same_database(source) {
                report::warn(format_args!(
                    "destination {} ({name}) is the source's database ({id}): if --receive \
                     names the table --send reads, the copy can wait on itself (--lock-timeout \
                     bounds the wait)",
                    i + 1
                ));
            }
        }
        for (j, other) in &seen {
            if !id.same_database(other) {
                continue;
            }
            let same_statement = match &t.statements {
                Statements::Table { .. } => id.same_table(other),
                // Both --receive name a table each session found: the same one or not.
                Statements::Raw { .. } if id.table.is_some() && other.table.is_some() => {
                    id.same_table(other)
                }
                Statements::Raw { receive, .. } => {
                    let statement = |k: usize| receive.get(k).cloned().flatten();
                    statement(i).map(|s| s.trim().to_owned())
                        == statement(*j).map(|s| s.trim().to_owned())
                }
            };
            if same_statement {
                return Err(Fatal {
                    exit: Exit::Usage,
                    message: format!(
                        "destinations {} and {} are the same database ({id}): a copy into one \
                         table twice would wait on itself",
                        j + 1,
                        i + 1
                    ),
                });
            }
            report::warn(format_args!(
                "destinations {} and {} are the same database ({id}); their --receive \
                 statements differ, but if they reach the same table the copy can wait on \
                 itself (--lock-timeout bounds the wait)",
                j + 1,
                i + 1
            ));
        }
        seen.push((i, id));
    }
    Ok(())
}

/// For a job of many tables: refuses, before anything is planned or sent, a destination database
/// given twice and a destination that is the source's database (every table would be copied
/// into itself). A server that cannot say who it is gets a warning, as in [`check`].
///
/// # Errors
/// [`Fatal`] with exit 2 naming both; a server that cannot be reached, exit 3.
pub(crate) fn check_job(
    source: &copyman_job::job::Server,
    dests: &[copyman_job::job::Server],
) -> Result<(), Fatal> {
    let identify = |server: &copyman_job::job::Server,
                    role: &str|
     -> Result<Option<Identity>, Fatal> {
        let mut conn = (server.connect)().map_err(|e| Fatal {
            exit: Exit::Connect,
            message: format!(
                "cannot connect to {role} {}: {}",
                server.name,
                report::describe(&e)
            ),
        })?;
        Ok(match Identity::of(&mut conn, None) {
            Ok(id) => Some(id),
            Err(e) => {
                report::warn(format_args!(
                    "cannot identify the {role}'s server ({}): a database given twice cannot be \
                     detected",
                    report::describe(&e)
                ));
                None
            }
        })
    };
    let source_id = identify(source, "source")?;
    let mut seen: Vec<(usize, Identity)> = Vec::new();
    for (i, dest) in dests.iter().enumerate() {
        let Some(id) = identify(dest, &format!("destination {}", i + 1))? else {
            continue;
        };
        if source_id.as_ref().is_some_and(|s| s.same_database(&id)) {
            return Err(Fatal {
                exit: Exit::Usage,
                message: format!(
                    "destination {} ({}) is the source's database ({id}): every table would be \
                     copied into itself",
                    i + 1,
                    dest.name
                ),
            });
        }
        if let Some((j, _)) = seen.iter().find(|(_, other)| other.same_database(&id)) {
            return Err(Fatal {
                exit: Exit::Usage,
                message: format!(
                    "destinations {} and {} are the same database ({id}): a copy into one table \
                     twice would wait on itself",
                    j + 1,
                    i + 1
                ),
            });
        }
        seen.push((i, id));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(server: &str, database: &str, table: Option<&str>) -> Identity {
        Identity {
            server: server.into(),
            how: How::SystemIdentifier,
            database: database.into(),
            table: table.map(Into::into),
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
        assert_eq!(literal("a'b"), "'a''b'");
        assert_eq!(a.to_string(), "system identifier 1, database oid 5");
    }
}
