//! Step 2 of a run: the statements each side runs, the format, and what the progress bar can
//! know in advance.
//!
//! `copyman table` reads the catalog of every server once, before any data moves (one query per
//! server: the relation's kind, its row estimate and its stored columns with their types), and
//! copies **by column name**: both sides get the same explicit column list, generated columns
//! are left out, and differing column sets are refused (exit 2) unless `--columns` says what to
//! copy. The binary format is chosen only when every copied column has the same type on every
//! side and that type's binary form can be trusted between servers ([`sql::binary_key`]);
//! otherwise text, which converts values through their text form and fails loudly where they
//! do not fit.

use std::fs;

use copyman_sync::Connection;
use serde_json::{Value, json};

use crate::args::{Endpoint, Output, Statements, Transfer};
use crate::dest::Dest;
use crate::progress::Estimate;
use crate::report::{self, ErrorInfo, Exit, Fatal, RunReport};
use crate::run::{connect_all, describe_sync};
use copyman_job::plan::{
    ArraySides, FormatChoice, LookupError, MoneySides, ReadSettings, ServerForms, TextForms,
    choose_format, major, needs_select, resolve_columns, uncounted,
};
use copyman_job::select::{RowSecurity, row_security_sql};
use copyman_job::sequences::Carry;

use crate::sql::{self, Column, Format, Hold, Ident, Relation, TableCopy, TableName};
use copyman_core::statement;

/// The statements and what the bar can know in advance.
pub(crate) struct Plan {
    pub(crate) send: Option<String>,
    pub(crate) receive: Vec<Option<String>>,
    /// A COPY statement of the data's representation, where it is known: the `--send`'s, else
    /// a `--receive`'s, else (`table`, from a file) the one a destination server would read it
    /// with — what follows a cut on stdout or a pipe ([`crate::dest::Cut`]; recheck68 F12: a
    /// file's data cut there was never marked).
    pub(crate) data: Option<String>,
    /// Per destination, `--truncate`'s statement (as its table's kind there says).
    pub(crate) truncate: Vec<Option<String>>,
    /// Per destination, and on the source, a binary copy's check in its transaction before the
    /// COPY that the copied columns still have the types read here (the table locked first:
    /// `copyman_job::sql::types_unchanged`).
    pub(crate) guards: Vec<Option<String>>,
    pub(crate) source_guard: Option<String>,
    pub(crate) format: Option<Format>,
    pub(crate) estimate: Estimate,
    /// Why this format (`table` only).
    pub(crate) format_reason: Option<String>,
    /// The columns copied, by name (`table` only; `None`: the destination's own, positionally,
    /// for a file source without `--columns`).
    pub(crate) columns: Option<Vec<Ident>>,
    /// Per destination, the copied columns' sequences advanced there to the source's before
    /// its COMMIT (`table` between servers only).
    pub(crate) sequences: Vec<Vec<Carry>>,
    /// The columns a file's fields load into, in order (`table` only): `--columns`, else the
    /// destinations' own (the same everywhere). A header line is checked against them.
    pub(crate) file_columns: Option<Vec<String>>,
    /// The destination's generated columns, which COPY never loads, each with its place among
    /// the table's columns (1-based): `table` from a file without `--columns` only.
    pub(crate) generated: Vec<(usize, String)>,
    /// The source reads with an empty search_path, as pg_dump does (values that name objects,
    /// `regclass` …, then written schema-qualified): a table named with its schema, read as
    /// such (no `--where`, not a view whose functions may depend on the search_path).
    pub(crate) pinned_search_path: bool,
    /// A source table its role may not lock before the snapshot (`SELECT` on its columns only):
    /// its files are asked before the snapshot and once the COPY read it
    /// (`copyman_job::identity::table_files`).
    pub(crate) source_files: Option<TableName>,
    /// The table copied (`table` only), schema-qualified as the source resolved a name given
    /// without its schema (a file's: as given).
    pub(crate) table: Option<TableName>,
    /// The source's values measured for a destination column that would cut them, to be
    /// measured again in the copy's own snapshot.
    pub(crate) measure: Option<copyman_job::plan::Measure>,
}

pub(crate) fn plan(
    t: &Transfer,
    source: Option<&mut Connection>,
    dests: &mut [Dest<'_>],
) -> anyhow::Result<Plan> {
    let file_estimate = match &t.source {
        Endpoint::File(path) => fs::metadata(path)
            .ok()
            .filter(fs::Metadata::is_file)
            .map_or(Estimate::Unknown, |m| Estimate::Bytes(m.len())),
        _ => Estimate::Unknown,
    };
    prepared_left(t, dests)?;
    beyond_ascii(t, source.as_deref(), dests)?;
    match &t.statements {
        Statements::Raw { send, receive } => {
            named_twice(send.as_deref(), receive)?;
            receive_lacking(t, receive, dests)?;
            let mut guards = (vec![None; dests.len()], None);
            let mut measure = None;
            let refused = match (send, source) {
                (Some(send), Some(conn)) => {
                    raw_misreads(send, t, conn, receive, dests, &mut guards, &mut measure)?
                }
                _ if !t.source.is_server() => {
                    raw_file_read_otherwise(&data_name(&t.source), receive, dests, t)
                }
                _ => None,
            };
            if let Some(message) = refused {
                return Err(Fatal {
                    exit: Exit::Usage,
                    message,
                    server: None,
                }
                .into());
            }
            Ok(Plan {
                send: send.clone(),
                receive: receive.clone(),
                // A file or stdin passed through with no statement: COPY's default, text, unless
                // it starts with the binary signature (recheck69 F3: a stdin cut short was
                // written to a pipe unmarked, and its reader committed the rows before the cut).
                data: send
                    .clone()
                    .or_else(|| receive.iter().flatten().next().cloned())
                    .or_else(|| {
                        let binary = reads_binary(t, None);
                        (!t.source.is_server()).then(|| match binary {
                            true => "COPY data FROM STDIN (FORMAT binary)".to_owned(),
                            false => "COPY data FROM STDIN".to_owned(),
                        })
                    }),
                truncate: vec![None; dests.len()],
                guards: guards.0,
                source_guard: guards.1,
                format: None,
                estimate: file_estimate,
                format_reason: None,
                columns: None,
                // One (empty) list per destination: the plan's report goes through them.
                sequences: vec![Vec::new(); dests.len()],
                file_columns: None,
                generated: Vec::new(),
                pinned_search_path: false,
                source_files: None,
                table: None,
                measure,
            })
        }
        Statements::Table {
            copy,
            truncate,
            format,
            ..
        } => {
            let mut plan = table_plan(t, copy, *format, *truncate, source, dests)?;
            if plan.estimate == Estimate::Unknown {
                plan.estimate = file_estimate;
            }
            Ok(plan)
        }
    }
}

/// A statement of the user's (`--send`, a `--receive`, `--where`) beyond ASCII where its
/// server's session would read it as other characters: refused before anything is sent, as a
/// usage error (it said the --send "failed on the source", exit 1: docs43 F9).
fn beyond_ascii(
    t: &Transfer,
    source: Option<&Connection>,
    dests: &[Dest<'_>],
) -> Result<(), Fatal> {
    let labels = dest_labels(dests);
    // Each text the servers read, whose, and what it is.
    let mut given: Vec<(String, Option<&Connection>, String)> = Vec::new();
    match &t.statements {
        Statements::Raw { send, receive } => {
            given.extend(send.clone().map(|sql| ("--send".to_owned(), source, sql)));
            for (i, sql) in receive.iter().enumerate() {
                if let Some(sql) = sql {
                    let what = format!("the --receive of {}", labels[i]);
                    given.push((what, dests[i].conn.as_ref(), sql.clone()));
                }
            }
        }
        Statements::Table { copy, .. } => {
            given.extend(
                copy.condition
                    .clone()
                    .map(|sql| ("--where".to_owned(), source, sql)),
            );
            // The names too, which its statements carry (recheck43b F6: exit 1, said as the
            // server's failure).
            given.push(("TABLE".to_owned(), source, copy.table.to_string()));
            for (i, dest) in dests.iter().enumerate() {
                let what = format!("the table on {}", labels[i]);
                given.push((what, dest.conn.as_ref(), copy.target().to_string()));
            }
        }
    }
    for (what, conn, sql) in given {
        if let (false, Some(conn)) = (sql.is_ascii(), conn)
            && let Err(e) = conn.session().reads_statements_as_utf8()
        {
            return Err(Fatal {
                exit: Exit::Usage,
                message: format!("{what}: {e}"),
                server: None,
            });
        }
    }
    Ok(())
}

/// A prepared transaction of copyman's in a destination's database, left by an earlier run
/// (killed between its commit decision and its COMMIT PREPARED, or during its PREPARE): said
/// before copying — it holds its locks, and a run again into the same tables adds its rows to
/// those it will commit when recover finishes it (a table without a unique key held them twice,
/// exit 0 without a word: signals43 F8). One that wrote into the table a `table` run writes is
/// refused (the warning was passed over: commit48 F4).
///
/// # Errors
/// [`Fatal`] (exit 2) where a destination's prepared transaction wrote into the run's table.
fn prepared_left(t: &Transfer, dests: &mut [Dest<'_>]) -> Result<(), Fatal> {
    use copyman_job::commit::{prepared_here, prepared_here_warning, prepared_holding};
    let labels = dest_labels(dests);
    // The table each destination writes: a table's, or the one its --receive names, as written
    // (recheck48b F2: a copy's rerun after a kill only warned, and its rows came twice).
    let written = |i: usize| match &t.statements {
        Statements::Table { copy, .. } => Some(
            copy.target
                .as_ref()
                .unwrap_or(&copy.table)
                .regclass_literal(),
        ),
        Statements::Raw { receive, .. } => (receive.get(i).and_then(Option::as_deref))
            .and_then(statement::copy_table)
            .map(copyman_job::sql::literal),
    };
    for (i, (dest, label)) in dests.iter_mut().zip(&labels).enumerate() {
        let Some(conn) = dest.conn.as_mut() else {
            continue;
        };
        if let Some(table) = written(i) {
            let held = prepared_holding(conn, &[table]);
            if let Some(message) = copyman_job::commit::prepared_holding_refusal(label, &held) {
                return Err(Fatal {
                    exit: Exit::Usage,
                    server: None,
                    message,
                });
            }
        }
        let here = prepared_here(conn);
        if let Some(warning) = prepared_here_warning(label, &here) {
            report::warn(warning);
        }
    }
    Ok(())
}

/// A table a job's state file in the default directory records committed on a destination: one
/// table's append of it there stores its rows twice (first47 F2: `copyman table -t t` refused
/// it, `copyman table t` appended, exit 0). Refused as the job refuses it; `--truncate`
/// replaces them. Only between servers (a file's rows are other rows), for destinations that
/// said who they are, and holding rows that job's transactions inserted (emptied since, they
/// are copied: live52 F3).
///
/// # Errors
/// [`Fatal`] (exit 2) naming the state file, the table and the destination.
pub(crate) fn refuse_rows_of_jobs(
    t: &Transfer,
    plan: &Plan,
    mut source: Option<&mut Connection>,
    dests: &mut [Dest<'_>],
) -> Result<(), Fatal> {
    let Statements::Table {
        truncate: false,
        copy,
        ..
    } = &t.statements
    else {
        return Ok(());
    };
    // (A --where load beside what a job copied selects other rows: a batch appended on purpose.)
    if copy.condition.is_some() {
        return Ok(());
    }
    let dir = crate::job::default_state_dir(&crate::conn::Env::from_process());
    let (Some(table), Some(dir), true) = (&plan.table, dir, t.source.is_server()) else {
        return Ok(());
    };
    // Into a --target-table, another table than the one a job copies — unless it is that very
    // table, as each destination resolves it (dup67 F2: `--target-table public.nokey` for
    // `nokey` appended the job's rows again, exit 0).
    if let Some(target) = &copy.target {
        let same = |there: &TableName| there.name == table.name && there.schema == table.schema;
        let into_it = match &target.schema {
            Some(_) => same(target),
            None => (dests.iter_mut().filter_map(|d| d.conn.as_mut()))
                .any(|conn| qualified(conn, target).is_some_and(|there| same(&there))),
        };
        // Or into its partitioned table, as the source names it (recheck67 F5: a partition
        // poured into the parent a job copied, every row twice, exit 0).
        let mut into_parent = || {
            (source.as_deref_mut())
                .is_some_and(|src| copyman_job::job::covered_by(src, table, target))
        };
        if !into_it && !into_parent() {
            return Ok(());
        }
    }
    // (One that could not say who it is matches no record.)
    let keys: Vec<String> = dests
        .iter()
        .map(|d| d.identity.clone().unwrap_or_default())
        .collect();
    let labels = dest_labels(dests);
    let source_key = crate::identity::source_key();
    let mut conns: Vec<Option<&mut Connection>> =
        dests.iter_mut().map(|d| d.conn.as_mut()).collect();
    copyman_job::job::refuse_rows_of_jobs(
        &dir,
        table,
        (&keys, &labels),
        (source_key.as_ref(), source),
        &mut conns,
    )
    .map_err(|e| Fatal {
        exit: Exit::Usage,
        server: None,
        message: e.to_string(),
    })
}

/// Whether the session's role may read the whole of `table` (`SELECT` on the table, not on
/// some of its columns only), and so lock it as its COPY would; `false` when that cannot be
/// asked.
fn may_read_whole(conn: &mut Connection, table: &TableName) -> bool {
    let sql = format!(
        "SELECT pg_catalog.has_table_privilege(pg_catalog.to_regclass({}), 'SELECT')",
        table.regclass_literal()
    );
    conn.query(&sql)
        .ok()
        .and_then(|rows| rows.first().and_then(|r| r.first().cloned().flatten()))
        .as_deref()
        == Some("t")
}

/// Looks `table` up on one server.
fn lookup(conn: &mut Connection, table: &TableName) -> Result<Option<Relation>, ErrorInfo> {
    copyman_job::plan::lookup(conn, table).map_err(|e| match e {
        LookupError::Server(e) => describe_sync(&e),
        LookupError::Catalog(message) => ErrorInfo {
            sqlstate: None,
            message,
        },
    })
}

fn table_plan(
    t: &Transfer,
    copy: &TableCopy,
    forced: Option<Format>,
    truncate: bool,
    source: Option<&mut Connection>,
    dests: &mut [Dest<'_>],
) -> anyhow::Result<Plan> {
    // The catalogs: once per server, before anything else is sent.
    let mut source_version = None;
    let mut source_rel = None;
    let mut source_qualified = None;
    let mut source_may_lock = false;
    let mut source = source;
    if let Some(conn) = source.as_deref_mut() {
        source_version = conn.session().server_version_num();
        let rel = lookup(conn, &copy.table).map_err(|e| Fatal {
            // A table (or schema) named that does not exist: a usage error, as a job's.
            exit: match e.sqlstate.as_deref() {
                Some("42P01" | "3F000") => Exit::Usage,
                _ => Exit::CopyFailed,
            },
            message: match e.sqlstate.as_deref() {
                // A name of its catalog (a column's) that is not UTF-8, not its data: the
                // advice for data (client_encoding) was refused (recheck63 F9).
                Some("22021")
                    if conn.session().parameter("server_encoding") == Some("SQL_ASCII") =>
                {
                    format!(
                        "source table {}: SQLSTATE 22021: {}: a name of it (its schema's or a \
                         column's) {}: rename it there",
                        copy.table,
                        e.message.split(" (").next().unwrap_or(&e.message),
                        copyman_job::sql::NAME_NOT_UTF8
                    )
                }
                _ => format!(
                    "source table {}: {e}{}{}",
                    copy.table,
                    copyman_job::plan::off_the_search_path(conn, &e.message),
                    copyman_job::plan::spelled_in_capitals(conn, &copy.table, &e.message)
                ),
            },
            server: Some(("source".to_owned(), e)),
        })?;
        let rel = rel.ok_or_else(|| Fatal {
            exit: Exit::Usage,
            server: None,
            message: format!("source table {} not found", copy.table),
        })?;
        if let Some(why) = copyman_job::plan::shadowed_by_a_catalog(conn, &copy.table, &rel) {
            return Err(Fatal {
                exit: Exit::Usage,
                server: None,
                message: format!("source table {}: {why}", copy.table),
            }
            .into());
        }
        if let Some((code, why)) = rel.copy_out_refusal() {
            let refusal = ErrorInfo {
                sqlstate: Some(code.to_owned()),
                message: why,
            };
            return Err(Fatal {
                // Not a relation with rows: a usage error, as a missing table.
                exit: match code {
                    "42809" => Exit::Usage,
                    _ => Exit::CopyFailed,
                },
                message: format!("source table {}: {refusal}", copy.table),
                server: Some(("source".to_owned(), refusal)),
            }
            .into());
        }
        if let Some(foreign) = copyman_job::plan::foreign_partitions(conn, &copy.table, &rel.kind) {
            // Refused as a job refuses it (exit 2).
            return Err(Fatal {
                exit: Exit::Usage,
                server: None,
                message: format!(
                    "source table {}: {}",
                    copy.table,
                    copyman_job::plan::foreign_partitions_refusal("the source", &foreign)
                ),
            }
            .into());
        }
        if rel.children > 0 {
            report::warn(format_args!(
                "{} has {} inheritance {}: only its own rows are copied, as COPY and pg_dump \
                 read them (name the children to copy theirs)",
                copy.table,
                rel.children,
                if rel.children == 1 {
                    "child"
                } else {
                    "children"
                }
            ));
        }
        source_may_lock = may_read_whole(conn, &copy.table)
            && (rel.kind != "v" || copyman_job::plan::may_lock_view(conn, &copy.table));
        // Row security that would fail the COPY (42501) refused while planning (a dry run too),
        // with the ways out; turned on by the CONN, said.
        let name = copy.table.to_string();
        let regclass = format!("pg_catalog.to_regclass({})", copy.table.regclass_literal());
        let asked = conn.query(&format!("SELECT {}", row_security_sql(&regclass)));
        let answer = asked
            .ok()
            .and_then(|rows| rows.first()?.first().cloned().flatten());
        match RowSecurity::from_answer(answer.as_deref()) {
            RowSecurity::None => {}
            RowSecurity::Refused => {
                // With the SQLSTATE the source would have refused its COPY with, as before.
                let refusal = ErrorInfo {
                    sqlstate: Some("42501".to_owned()),
                    message: RowSecurity::refusal(&[name]),
                };
                return Err(Fatal {
                    exit: Exit::CopyFailed,
                    message: format!("source: {refusal}"),
                    server: Some(("source".to_owned(), refusal)),
                }
                .into());
            }
            RowSecurity::Filtered => report::warn(RowSecurity::filtered_note(&name)),
        }
        // A view's policies are its tables', as it reads them.
        if let Some(why) = (rel.kind == "v")
            .then(|| copyman_job::plan::view_row_security(conn, &copy.table))
            .flatten()
        {
            let refusal = ErrorInfo {
                sqlstate: Some("42501".to_owned()),
                message: why,
            };
            return Err(Fatal {
                exit: Exit::CopyFailed,
                message: format!("source: {refusal}"),
                server: Some(("source".to_owned(), refusal)),
            }
            .into());
        }
        // Columns its role may not read: the COPY would fail at its start (42501, naming
        // neither the column nor a way), after the destinations began; refused here, dry run
        // too, as a job refuses such a table.
        if let Some(refusal) = unreadable_columns(conn, &copy.table, &copy.columns, &rel) {
            return Err(Fatal {
                exit: Exit::CopyFailed,
                message: format!("source: {refusal}"),
                server: Some(("source".to_owned(), refusal)),
            }
            .into());
        }
        source_rel = Some(rel);
        if copy.table.schema.is_none() {
            source_qualified = qualified(conn, &copy.table);
        }
    }
    let mut dest_rels: Vec<(usize, Relation)> = Vec::new();
    // (--keep-going) The first destination without the table, and how many lack it.
    let mut missing_everywhere: Option<(String, String, ErrorInfo)> = None;
    let mut lacking = 0;
    for (i, dest) in dests.iter_mut().enumerate() {
        let Some(conn) = dest.conn.as_mut() else {
            continue;
        };
        let found = lookup(conn, copy.target()).and_then(|rel| match rel {
            None => Err(ErrorInfo {
                sqlstate: None,
                message: "not found".to_owned(),
            }),
            // Refused as its server would refuse the COPY, before any copy starts.
            Some(rel) => match rel.copy_in_refusal() {
                Some(why) => Err(ErrorInfo {
                    sqlstate: Some("42809".to_owned()),
                    message: why,
                }),
                None => match rel.refuses_emptying().filter(|_| truncate) {
                    Some(what) => Err(ErrorInfo {
                        sqlstate: Some("42809".to_owned()),
                        message: format!("is {what} there: --truncate cannot empty it"),
                    }),
                    None => match uncounted(&rel, t.safety.allow_count_mismatch) {
                        Err(message) => Err(ErrorInfo {
                            sqlstate: None,
                            message,
                        }),
                        Ok(warning) => {
                            if let Some(warning) = warning {
                                report::warn(format_args!(
                                    "destination {} ({}): table {} {warning}",
                                    i + 1,
                                    dest.endpoint.display(),
                                    copy.target()
                                ));
                            }
                            Ok(rel)
                        }
                    },
                },
            },
        });
        // A partitioned table whose foreign partitions there would take rows to another
        // server; what its role there may not do of the copy (INSERT on a copied column, the
        // TRUNCATE of --truncate): found while planning, a dry run says it, and the COPY's own
        // error named neither the privilege nor the statement.
        let found = found.and_then(|rel| {
            let foreign = copyman_job::plan::foreign_destination(conn, copy.target(), &rel.kind);
            if let Some(message) = foreign {
                return Err(ErrorInfo {
                    sqlstate: None,
                    message,
                });
            }
            let names: Vec<&Ident> = if copy.columns.is_empty() {
                let columns = &source_rel.as_ref().unwrap_or(&rel).columns;
                columns
                    .iter()
                    .filter(|c| !c.generated)
                    .map(|c| &c.name)
                    .collect()
            } else {
                copy.columns.iter().collect()
            };
            let empty = truncate.then_some("TRUNCATE");
            let referenced = truncate
                .then(|| copyman_job::plan::referenced_by_another(conn, copy.target()))
                .flatten();
            if let Some((other, key)) = referenced {
                // Every table referencing it at any depth: a TRUNCATE must name them all.
                let all = copyman_job::plan::referencing_tables(conn, &copy.target().to_string());
                let names: Vec<String> = all.into_iter().map(|(name, _)| name).collect();
                // Those the source lacks are the destination's own: a job cannot copy them,
                // and their rows are nowhere else.
                let own: Vec<&str> = match source.as_deref_mut() {
                    Some(src) => (names.iter())
                        .filter(|n| !copyman_job::plan::has_relation(src, n))
                        .map(String::as_str)
                        .collect(),
                    None => Vec::new(),
                };
                if !own.is_empty() {
                    return Err(ErrorInfo {
                        sqlstate: Some("0A000".to_owned()),
                        message: format!(
                            "{other} there references it (foreign key {key}): a TRUNCATE of it \
                             alone is refused, and copyman never truncates with CASCADE; {} \
                             that destination's own (the source has none), and emptied with it \
                             its rows would go where no server holds a copy of them; copy \
                             without --truncate, or drop or change that foreign key there (or \
                             empty them together there yourself, if those rows may go)",
                            match own.as_slice() {
                                [one] => format!("{one} is"),
                                several => format!("{} are", several.join(", ")),
                            }
                        ),
                    });
                }
                let all = if names.is_empty() {
                    other.clone()
                } else {
                    names.join(" ")
                };
                // From a file or stdin no job can copy them (it copies between servers: its
                // advice could not be followed, first47 F3).
                if source.is_none() {
                    return Err(ErrorInfo {
                        sqlstate: Some("0A000".to_owned()),
                        message: format!(
                            "{other} there references it (foreign key {key}): a TRUNCATE of it \
                             alone is refused, and copyman never truncates with CASCADE (the \
                             tables that reference it would lose their rows); copy without \
                             --truncate, or empty them together there yourself if their rows \
                             may go (TRUNCATE {}, {}), then copy without --truncate",
                            copy.target(),
                            match names.is_empty() {
                                true => other.clone(),
                                false => names.join(", "),
                            }
                        ),
                    });
                }
                return Err(ErrorInfo {
                    sqlstate: Some("0A000".to_owned()),
                    message: format!(
                        "{other} there references it (foreign key {key}): a TRUNCATE of it \
                         alone is refused, and copyman never truncates with CASCADE (the \
                         tables that reference it would lose their rows); copy them as a job \
                         (`copyman table {} {all} --truncate`: emptied together), or empty \
                         them together there yourself and copy without --truncate",
                        copy.target()
                    ),
                });
            }
            match copyman_job::plan::write_refusal(conn, copy.target(), &names, empty) {
                // With the SQLSTATE its server would have refused it with.
                Some((code, message)) => Err(ErrorInfo {
                    sqlstate: Some(code.to_owned()),
                    message,
                }),
                None => Ok(rel),
            }
        });
        match found {
            Ok(rel) => {
                // A name without its schema is each server's to resolve, on its search_path:
                // where a destination finds it in another schema than the source, say so (a
                // --truncate empties that table).
                if copy.target().schema.is_none()
                    && let Some(there) = qualified(conn, copy.target())
                {
                    report::log(format_args!(
                        "destination {}: table {} is {there}",
                        i + 1,
                        copy.target()
                    ));
                    if let Some(here) = source_qualified
                        .as_ref()
                        .filter(|here| copy.target.is_none() && here.schema != there.schema)
                    {
                        if qualified(conn, here).is_some() {
                            // It holds the source's table too: which one was meant is not
                            // copyman's to guess (a job writes the source's; psql's each
                            // server's own) — but for a catalog, never written (recheck52
                            // F6: offered, then refused).
                            let catalog = (here.schema.as_ref())
                                .is_some_and(|s| copyman_job::sql::is_system_schema(s.as_str()));
                            // Or each destination's own, unqualified: where destinations are one
                            // database reached with two search_paths, the only way that writes
                            // both (dup67 F3: the two offered were both refused as the same
                            // database twice).
                            let choice = match catalog {
                                true => format!("'{there}' (the other is a system catalog)"),
                                false => format!(
                                    "'{here}' or '{there}'; or '{}', which each destination \
                                     finds on its own search_path",
                                    copy.target()
                                ),
                            };
                            return Err(Fatal {
                                exit: Exit::Usage,
                                server: None,
                                message: format!(
                                    "destination {} ({}): {} is {there} there (on its \
                                     search_path), {here} on the source, and it holds {here} \
                                     too: name the one to write with --target-table ({choice})",
                                    i + 1,
                                    dest.endpoint.display(),
                                    copy.target()
                                ),
                            }
                            .into());
                        }
                        report::warn(format_args!(
                            "destination {} ({}): {} is {there} there (on its search_path), \
                             {here} on the source; name the schema (with --target-table) to \
                             write another",
                            i + 1,
                            dest.endpoint.display(),
                            copy.target()
                        ));
                    }
                }
                dest_rels.push((i, rel));
            }
            Err(error) => {
                // A table or schema it lacks: a usage error, as a column it lacks (cli51 F2:
                // exit 1, "the copy failed"), with what creates it, as a job says.
                let missing = matches!(error.sqlstate.as_deref(), Some("42P01" | "3F000"))
                    || error.message == "not found";
                // Not on its search_path there, but the source's table (found on the source's)
                // is there under its schema (recheck59 F4: "create it there", of a table it
                // held).
                let theirs = (source_qualified.as_ref())
                    .filter(|_| missing && copy.target().schema.is_none() && copy.target.is_none())
                    .filter(|here| qualified(conn, here).is_some());
                let create = match (missing, theirs) {
                    (true, Some(here)) => format!(
                        " ({here}, the source's table (on the source's search_path), is there, \
                         off its search_path: write it with --target-table '{here}')"
                    ),
                    // pg_dump --table writes no CREATE SCHEMA (recheck66 F13: the hint,
                    // followed, failed again).
                    (true, None) if error.sqlstate.as_deref() == Some("3F000") => {
                        schema_hint(&copy.target().to_string())
                    }
                    (true, None) => " (create it there from the source's definition first, \
                                     e.g. pg_dump --section=pre-data --table of the source into \
                                     it)"
                    .to_owned(),
                    (false, _) => String::new(),
                };
                let message = format!(
                    "destination {} ({}): table {}: {error}{create}",
                    i + 1,
                    dest.endpoint.display(),
                    copy.target()
                );
                if !t.keep_going {
                    let whom = format!("destination {} ({})", i + 1, dest.endpoint.display());
                    return Err(Fatal {
                        exit: if missing {
                            Exit::Usage
                        } else {
                            Exit::CopyFailed
                        },
                        message,
                        server: Some((whom, error)),
                    }
                    .into());
                }
                report::log(&message);
                if missing {
                    let whom = format!("destination {} ({})", i + 1, dest.endpoint.display());
                    missing_everywhere.get_or_insert((whom, message, error.clone()));
                    lacking += 1;
                }
                dest.fail_with(ErrorInfo {
                    sqlstate: error.sqlstate,
                    message: format!("table {}: {}", copy.target(), error.message),
                });
            }
        }
    }
    // Under --keep-going, no destination left because none has the table: the usage error
    // one destination's lack is, with what creates it (recheck51 F7: exit 1, "copy failed").
    if let Some((whom, message, error)) = missing_everywhere
        && lacking == dests.len()
    {
        return Err(Fatal {
            exit: Exit::Usage,
            message,
            server: Some((whom, error)),
        }
        .into());
    }
    let labels = dest_labels(dests);
    // Under --keep-going a destination whose table's columns do not match the source's is left
    // out, as one without the table is, while another is left to copy to. (A file's fields are
    // positional: which destination's columns are the odd ones is not known.)
    if t.keep_going && source_rel.is_some() {
        let mismatched: Vec<(usize, String)> = (dest_rels.iter())
            .filter_map(|(i, rel)| {
                let this = [(labels[*i].as_str(), rel)];
                let columns = resolve_columns(&copy.columns, source_rel.as_ref(), &this);
                columns.err().map(|why| (*i, why))
            })
            .collect();
        let live = dests.iter().filter(|d| d.error.is_none()).count();
        if !mismatched.is_empty() && mismatched.len() < live {
            for (i, why) in mismatched {
                dests[i].leave_out(
                    i,
                    ErrorInfo {
                        sqlstate: None,
                        message: why,
                    },
                );
                dest_rels.retain(|(j, _)| *j != i);
            }
        }
    }
    let dest_view: Vec<(&str, &Relation)> = dest_rels
        .iter()
        .map(|(i, rel)| (labels[*i].as_str(), rel))
        .collect();

    let columns =
        resolve_columns(&copy.columns, source_rel.as_ref(), &dest_view).map_err(|message| {
            // A file's header names its fields: the list to give (files42 F7).
            let hint = match (copy.columns.is_empty(), t.source.is_server(), copy.header) {
                (false, ..) => "",
                (true, false, true) => {
                    "; give --columns the file's fields in its order, as its header names them"
                }
                (true, ..) if copyman_job::plan::columns_may_mend(&message) => {
                    "; choose the columns to copy with --columns"
                }
                (true, ..) => "",
            };
            let renamed = match hint.is_empty() {
                true => String::new(),
                false => renamed_hint(source_rel.as_ref(), &dest_view, &copy.table, copy.target()),
            };
            Fatal {
                exit: Exit::Usage,
                server: None,
                message: format!("{message}{hint}{renamed}"),
            }
        })?;

    // Binary data carries values, not text read in the destinations' settings. Only the
    // columns copied are read (`--columns`).
    let copied_rels: Vec<(usize, Relation)> = dest_rels
        .iter()
        .map(|(i, rel)| {
            let mut rel = rel.clone();
            if !copy.columns.is_empty() {
                rel.columns.retain(|c| copy.columns.contains(&c.name));
            }
            (*i, rel)
        })
        .collect();
    if !t.source.is_server()
        && !reads_binary(t, forced)
        && let Some(message) = read_otherwise(dests, &copied_rels, &labels)
            .or_else(|| money_misread(dests, &copied_rels, &labels))
            .or_else(|| arrays_misread(dests, &copied_rels, &labels))
            .or_else(|| abbreviations_differ(dests, &copied_rels, &labels))
    {
        return Err(Fatal {
            exit: Exit::Usage,
            server: None,
            message,
        }
        .into());
    }
    // Under --keep-going a destination that would read the source's text otherwise is left
    // out, as one whose columns differ is, while another is left to copy to (types69 F15: the
    // run was refused, a job left it out).
    if t.keep_going
        && dest_rels.len() > 1
        && let (Some(rel), Some(columns)) = (&source_rel, &columns)
    {
        let mut refused = Vec::new();
        for (i, to) in &dest_rels {
            let one = [(*i, to.clone())];
            let why = servers_read_otherwise(rel, columns, dests, &one, &labels).or_else(|| {
                let source = (&t.source, source.as_deref_mut(), rel);
                text_read_otherwise(source, columns, dests, &[(*i, to)], &labels, false)
            });
            refused.extend(why.map(|why| (*i, why)));
        }
        if !refused.is_empty() && refused.len() < dest_rels.len() {
            for (i, why) in refused {
                // (Said after its name already.)
                let named = format!("{} ", labels[i]);
                let error = ErrorInfo {
                    sqlstate: None,
                    message: why.strip_prefix(&named).map_or(why.clone(), str::to_owned),
                };
                dests[i].leave_out(i, error);
                dest_rels.retain(|(j, _)| *j != i);
            }
        }
    }
    let dest_view: Vec<(&str, &Relation)> = dest_rels
        .iter()
        .map(|(i, rel)| (labels[*i].as_str(), rel))
        .collect();
    if let (Some(rel), Some(columns)) = (&source_rel, &columns)
        && let Some(message) = servers_read_otherwise(rel, columns, dests, &dest_rels, &labels)
            .or_else(|| {
                let pairs: Vec<(usize, &Relation)> =
                    dest_rels.iter().map(|(i, to)| (*i, to)).collect();
                let source = (&t.source, source.as_deref_mut(), rel);
                text_read_otherwise(source, columns, dests, &pairs, &labels, true)
            })
    {
        return Err(Fatal {
            exit: Exit::Usage,
            server: None,
            message,
        }
        .into());
    }

    let all_servers = t.source.is_server() && t.destinations.iter().all(Endpoint::is_server);
    let same_major = same_major(source_version, dests);
    let FormatChoice {
        mut format,
        mut reason,
        warning,
    } = choose_format(
        forced,
        columns.as_deref(),
        source_rel.as_ref(),
        &dest_view,
        all_servers,
        same_major,
    )
    .map_err(|message| Fatal {
        exit: Exit::Usage,
        server: None,
        message,
    })?;
    if let Some(warning) = warning {
        report::warn(warning);
    }
    // A file read as binary for its signature (planned again so): not given.
    let format_given = matches!(
        t.statements,
        Statements::Table {
            format_given: true,
            ..
        }
    );
    if format == Format::Binary && !format_given && !t.source.is_server() {
        reason = "read as binary: it starts with the PGCOPY signature".to_owned();
    }
    // CSV for one reason of three: the one that applied.
    if format == Format::Csv && forced == Some(Format::Csv) {
        let header = matches!(&t.statements, Statements::Table { copy, .. } if copy.header);
        let file = (std::iter::once(&t.source).chain(&t.destinations))
            .enumerate()
            .find(|(_, e)| e.is_csv_file());
        reason = match (format_given, header, file) {
            (true, false, _) => "given: --format csv".to_owned(),
            (true, true, _) => "given: --header".to_owned(),
            (false, _, Some((0, e))) => format!("the source is a *.csv file: {}", e.display()),
            (false, _, Some((i, e))) => format!(
                "destination {i} is a *.csv file: {}, and every destination is written so",
                e.display()
            ),
            (false, _, None) => reason,
        };
    }
    if format == Format::Binary
        && let (Some(rel), Some(columns)) = (&source_rel, &columns)
    {
        let conns =
            (source.as_deref().into_iter()).chain(dests.iter().filter_map(|d| d.conn.as_ref()));
        if let Some(why) = xml_declared(t, conns, columns.iter().filter_map(|c| rel.column(c))) {
            if forced == Some(Format::Binary) {
                return Err(Fatal {
                    exit: Exit::Usage,
                    server: None,
                    message: format!("--format binary: {why}; give --format text"),
                }
                .into());
            }
            (format, reason) = (Format::Text, why);
        }
    }
    // `--encoding` is said as each COPY's ENCODING, which a binary COPY ignores: its text
    // values stay in the sessions' client_encoding (a file asked for in LATIN1 got UTF-8).
    if format == Format::Binary
        && let Some(encoding) = &t.safety.encoding
        && statement::encoding_name(encoding) != "UTF8"
    {
        return Err(Fatal {
            exit: Exit::Usage,
            server: None,
            message: format!(
                "--encoding {encoding} does not apply to binary COPY data, whose text values are \
                 in the session's client_encoding (UTF8 unless asked): for binary data in \
                 {encoding}, say client_encoding={encoding} in the file's server's CONN (or \
                 PGCLIENTENCODING={encoding}) instead; for text, give --format text or csv"
            ),
        }
        .into());
    }
    // A destination `name` or `"char"` that would cut the source's values.
    let mut measure = None;
    if let (Some(conn), Some(rel), Some(columns)) = (source.as_deref_mut(), &source_rel, &columns) {
        let passes = passing_encoding(t, conn, dests);
        let (mut encoded, mut whose): (Vec<(&str, &Relation, String)>, Vec<usize>) = dest_rels
            .iter()
            .filter_map(|(i, r)| {
                let encoding = dests[*i]
                    .conn
                    .as_ref()?
                    .session()
                    .parameter("server_encoding");
                let measured = copyman_job::plan::measured_in(encoding?, &passes);
                Some(((labels[*i].as_str(), r, measured), *i))
            })
            .unzip();
        let rows = copyman_job::plan::table_rows(&copy.table, copy.condition.as_deref());
        let usage = |message| Fatal {
            exit: Exit::Usage,
            server: None,
            message,
        };
        let mut values_cut =
            |encoded: &[_]| copyman_job::plan::values_cut(conn, Ok(&rows), columns, rel, encoded);
        let measured = if t.keep_going && encoded.len() > 1 {
            // Each destination on its own: one whose column would cut the values is left
            // out, as one whose columns differ is, and the others copied (types66 F16: none
            // was). Refused where every one would.
            let mut measured = false;
            let mut cut = Vec::new();
            for (k, one) in encoded.iter().enumerate() {
                match values_cut(std::slice::from_ref(one)) {
                    Ok(m) => measured |= m,
                    Err(message) => cut.push((k, message)),
                }
            }
            if cut.len() == encoded.len() {
                return Err(usage(cut.swap_remove(0).1).into());
            }
            for (k, message) in cut.into_iter().rev() {
                report::log(&message);
                dests[whose[k]].fail_with(ErrorInfo {
                    sqlstate: None,
                    message,
                });
                encoded.remove(k);
                whose.remove(k);
            }
            measured
        } else {
            values_cut(&encoded).map_err(usage)?
        };
        measure =
            measured.then(|| copyman_job::plan::Measure::new(rows, columns, rel, &encoded, false));
    }
    if let Some(warning) = copyman_job::plan::insert_triggers(&dest_view, false) {
        report::warn(warning);
    }
    if let Some(warning) = copyman_job::plan::insert_rules(&dest_view) {
        report::warn(warning);
    }
    if let Some(warning) = copyman_job::plan::large_object_columns(&dest_view, columns.as_deref()) {
        report::warn(warning);
    }
    if !t.source.is_server()
        && let Some(warning) =
            copyman_job::plan::cut_columns_from_a_file(&dest_view, columns.as_deref())
    {
        report::warn(warning);
    }
    // A binary file holds no column types: each value is read as the destination's column's
    // type, whatever it was written from (an int8 read as a float8, a jsonb as text with its
    // version byte), without an error; psql's \copy reads it so too. Said, with the types.
    // (Not a file given as binary without the signature: refused as that once its start is
    // read, it was said to be binary data first.)
    if format == Format::Binary
        && !t.source.is_server()
        && !dest_rels.is_empty()
        && starts_signed(t) != Some(false)
    {
        // Each destination's columns as its COPY reads them, in the COPY's order.
        let copied: Vec<(usize, Relation)> = dest_rels
            .iter()
            .map(|(i, rel)| {
                let mut rel = rel.clone();
                rel.columns = match &columns {
                    Some(cols) => cols.iter().filter_map(|c| rel.column(c).cloned()).collect(),
                    None => rel
                        .columns
                        .iter()
                        .filter(|c| !c.generated)
                        .cloned()
                        .collect(),
                };
                (*i, rel)
            })
            .collect();
        if let Some(message) = binary_read_otherwise(&data_name(&t.source), &copied, &labels) {
            return Err(Fatal {
                exit: Exit::Usage,
                server: None,
                message,
            }
            .into());
        }
    }
    report::log(format_args!("format: {} ({reason})", format.name()));
    if let Some(columns) = &columns {
        report::log(format_args!("columns: {}", show_columns(columns)));
    }

    let select = source_rel
        .as_ref()
        .is_some_and(|r| needs_select(r, columns.as_deref()));
    let mut resolved = copy.clone();
    resolved.columns = columns.clone().unwrap_or_default();
    // A source table named without its schema is read by the name its server resolves it to
    // (the destinations keep resolving theirs): with its schema it is read with an empty
    // search_path, so that values naming objects (`regclass` …) are written schema-qualified.
    if let Some(qualified) = source_qualified.filter(|_| copy.table.schema.is_none()) {
        resolved.target = Some(copy.target().clone());
        resolved.table = qualified;
    }
    // Measured again in the source's transaction, whose search_path may be empty.
    if let Some(measure) = &mut measure {
        measure.rows = copyman_job::plan::table_rows(&resolved.table, copy.condition.as_deref());
    }
    let pinned_search_path = resolved.table.schema.is_some()
        && copy.condition.is_none()
        && source_rel
            .as_ref()
            .is_some_and(|rel| sql::reads_pinned(&rel.kind));
    // Not read with an empty search_path: values that name objects lose their schema.
    if let (false, Some(source), Some(columns)) = (pinned_search_path, &source_rel, &columns)
        && t.source.is_server()
        && let Some(warning) = copyman_job::plan::named_on_search_path(source, columns)
    {
        report::warn(warning);
    }
    let send = t.source.is_server().then(|| {
        let kind = source_rel.as_ref().map_or("", |r| r.kind.as_str());
        resolved.copy_out(format, select, kind)
    });
    let receive = dests
        .iter()
        .map(|d| d.endpoint.is_server().then(|| resolved.copy_in(format)))
        .collect();
    let estimate = match (&source_rel, &copy.condition) {
        (Some(rel), None) => rel.estimate.map_or(Estimate::Unknown, Estimate::Rows),
        _ => Estimate::Unknown,
    };
    // Said where the copy appends to rows there: a one-table run keeps no record a rerun could
    // read (dup67 F8). Not with --where, whose rows are meant to be added.
    let holding: Vec<usize> = (dests.iter_mut().enumerate())
        .filter(|_| !truncate && copy.condition.is_none())
        .filter_map(|(i, dest)| {
            let (_, rel) = dest_rels.iter().find(|(d, _)| *d == i)?;
            let conn = dest.conn.as_mut()?;
            copyman_job::plan::holds_rows(conn, copy.target(), rel).then_some(i + 1)
        })
        .collect();
    if !holding.is_empty() {
        report::warn(format_args!(
            "table {}: {}",
            copy.target(),
            copyman_job::plan::appends_note(&holding)
        ));
    }
    let truncate: Vec<Option<String>> = dests
        .iter_mut()
        .enumerate()
        .map(|(i, dest)| {
            let (_, rel) = dest_rels.iter().find(|(d, _)| *d == i)?;
            if truncate
                && let Some(conn) = dest.conn.as_mut()
                && let Some(note) = copyman_job::plan::truncate_triggers(conn, copy.target())
            {
                report::warn(format_args!(
                    "destination {} ({}): table {}: {note}",
                    i + 1,
                    dest.endpoint.display(),
                    copy.target()
                ));
            }
            truncate.then(|| copy.truncate(&rel.kind))
        })
        .collect();
    if truncate.iter().any(Option::is_some)
        && let Some(condition) = &copy.condition
    {
        report::warn(format_args!(
            "--truncate empties each destination's whole table, and --where copies back only \
             the rows where {condition}: the destinations keep no other row of it"
        ));
    }
    // As --where's rows, --columns' columns: the others lose every value they held.
    if !copy.columns.is_empty() {
        for (i, rel) in &dest_rels {
            let left: Vec<String> = (rel.columns.iter())
                .filter(|c| !c.generated && !copy.columns.contains(&c.name))
                .map(|c| c.name.to_string())
                .collect();
            if truncate.get(*i).is_some_and(Option::is_some) && !left.is_empty() {
                report::warn(format_args!(
                    "--truncate empties {}'s whole table, and --columns copies back only {}: \
                     its other columns ({}) take their defaults (NULL where they have none) in \
                     every row",
                    labels[*i],
                    show_columns(&copy.columns),
                    left.join(", ")
                ));
            }
        }
    }
    // Binary data carries no type: each side checks, once it holds the table, that the columns
    // still have the types read here.
    let binary = format == Format::Binary;
    let guards = (0..dests.len())
        .map(|i| {
            let (_, rel) = dest_rels.iter().find(|(d, _)| *d == i)?;
            let columns = columns.as_ref().filter(|_| binary)?;
            let version = dests[i].conn.as_ref()?.session().server_version_num();
            let hold = Hold::LockIfAllowed("ROW EXCLUSIVE");
            rel.types_unchanged(copy.target(), hold, columns, version)
        })
        .collect();
    // The source's table locked before the transaction's snapshot is taken (its first query):
    // a TRUNCATE or a table-rewriting ALTER TABLE that held it while copyman waited is not
    // MVCC-safe, and a snapshot older than it read the table empty.
    let source_guard = source_rel.as_ref().and_then(|rel| {
        let hold = if source_may_lock {
            Hold::Lock("ACCESS SHARE")
        } else {
            Hold::LockIfAllowed("ACCESS SHARE")
        };
        // (A view on a server that cannot lock one is not checked so.)
        match &columns {
            Some(columns) if binary => {
                rel.types_unchanged(&resolved.table, hold, columns, source_version)
            }
            _ => None,
        }
        .or_else(|| {
            (source_may_lock && sql::lockable(&rel.kind, source_version))
                .then(|| sql::lock_itself(&resolved.table, "ACCESS SHARE"))
        })
    });
    // A --where the source cannot read (a column misspelt, a syntax error, a constant of the
    // wrong type): the command's, said as --where's before anything is opened (ux70 F3: exit
    // 1, "source: …", after the destinations began and rolled back).
    if let (Some(condition), Some(conn), Some(_)) =
        (&copy.condition, source.as_deref_mut(), &source_rel)
        && let Some(error) = where_refused(conn, &resolved.table, condition)
    {
        return Err(Fatal {
            exit: Exit::Usage,
            message: format!("--where: the source cannot read it: {error}"),
            server: Some(("source".to_owned(), error)),
        }
        .into());
    }
    // The relations a --where reads, locked before the snapshot as the table is (a lookup
    // table's TRUNCATE and reload, waited for, was read empty by the older snapshot: no row
    // copied, exit 0); those the role may lock.
    let where_locks = match (&copy.condition, source.as_deref_mut()) {
        (Some(condition), Some(conn)) if source_rel.is_some() => {
            let query = format!(
                "SELECT 1 FROM {} {}",
                resolved.table,
                sql::where_clause(condition)
            );
            // (Watched, and bounded by --lock-timeout, as every question of the plan.)
            let read = copyman_job::plan::relations_read(conn, &query, None).unwrap_or_default();
            let lockable = read
                .iter()
                .filter(|r| r.may_lock && sql::lockable(&r.kind, source_version));
            sql::lock_for_snapshot(lockable.map(|r| (&r.name, r.kind.as_str())))
        }
        _ => None,
    };
    // The locks first: the guard's statements may take the snapshot.
    let source_guard = match (where_locks, source_guard) {
        (Some(locks), Some(guard)) => Some(format!("{locks}; {guard}")),
        (locks, guard) => locks.or(guard),
    };
    let mut sequences = vec![Vec::new(); dests.len()];
    // From a file, destinations of other types each read its text as theirs do: said.
    // (Its columns: those named, else the first destination's.)
    let loaded = |rel: &Relation| -> Vec<Ident> {
        match &columns {
            Some(columns) => columns.clone(),
            None => (rel.columns.iter())
                .filter(|c| !c.generated)
                .map(|c| c.name.clone())
                .collect(),
        }
    };
    if let (None, false, Some((_, first))) = (&source_rel, t.source.is_server(), dest_rels.first())
        && let Some(warning) =
            copyman_job::plan::file_read_as_other_types(&loaded(first), &dest_view)
    {
        report::warn(format_args!("{}: {warning}", data_name(&t.source)));
    }
    // From a file, a destination's sequence is left where it stands: said.
    if source_rel.is_none() && !t.source.is_server() {
        for (i, rel) in &dest_rels {
            let table = copy.target().to_string();
            if let Some(warning) =
                copyman_job::sequences::from_file_warning(&table, &labels[*i], &loaded(rel), rel)
            {
                report::warn(warning);
            }
        }
    }
    if let (Some(columns), Some(source_rel)) = (&columns, &source_rel) {
        for (i, rel) in &dest_rels {
            sequences[*i] = copyman_job::sequences::carried(columns, source_rel, rel);
            let table = copy.target().to_string();
            // Those its role may not advance: said now, not promised.
            if let Some(conn) = dests[*i].conn.as_mut() {
                let oids = sequences[*i].iter().map(|c| c.destination);
                let denied = copyman_job::sequences::unadvanceable(conn, oids);
                if let Some(warning) = copyman_job::sequences::unadvanceable_warning(
                    &table,
                    &labels[*i],
                    &mut sequences[*i],
                    &denied,
                ) {
                    report::warn(warning);
                }
                // One the source's already stands beyond: its setval would fail the copy.
                if let Some(src) = source.as_deref_mut() {
                    let beyond = copyman_job::sequences::beyond_bounds(src, conn, &sequences[*i]);
                    if let Some(why) = beyond.into_values().next() {
                        // With the SQLSTATE its setval would have failed with.
                        let said = ErrorInfo {
                            sqlstate: Some("22003".to_owned()),
                            message: format!("{table} on {}: {why}", labels[*i]),
                        };
                        // Under --keep-going left out, as one whose columns differ (types66
                        // F16: the others got nothing).
                        if t.keep_going && dests.iter().filter(|d| d.error.is_none()).count() > 1 {
                            report::log(&said.message);
                            dests[*i].fail_with(said);
                            sequences[*i].clear();
                            continue;
                        }
                        return Err(Fatal {
                            exit: Exit::CopyFailed,
                            message: said.to_string(),
                            server: Some((format!("destination {}", i + 1), said)),
                        }
                        .into());
                    }
                }
            }
            let uncarried = copyman_job::sequences::uncarried(columns, source_rel, rel);
            if let Some(warning) =
                copyman_job::sequences::uncarried_warning(&table, &labels[*i], &uncarried)
            {
                report::warn(warning);
            }
        }
    }
    let file_columns = match (&columns, dest_rels.first()) {
        (Some(columns), _) => Some(columns.iter().map(|c| c.as_str().to_owned()).collect()),
        (None, Some((_, rel))) => Some(
            rel.columns
                .iter()
                .filter(|c| !c.generated)
                .map(|c| c.name.as_str().to_owned())
                .collect(),
        ),
        (None, None) => None,
    };
    let generated = match (&columns, dest_rels.first()) {
        (None, Some((_, rel))) => (rel.columns.iter().enumerate())
            .filter(|(_, c)| c.generated)
            .map(|(i, c)| (i + 1, c.name.as_str().to_owned()))
            .collect(),
        _ => Vec::new(),
    };
    let data = send.clone().or_else(|| Some(resolved.copy_in(format)));
    Ok(Plan {
        send,
        receive,
        data,
        truncate,
        guards,
        source_guard,
        format: Some(format),
        estimate,
        format_reason: Some(reason),
        columns,
        sequences,
        file_columns,
        generated,
        source_files: source_rel
            .as_ref()
            .filter(|rel| !source_may_lock && matches!(rel.kind.as_str(), "r" | "p"))
            .map(|_| resolved.table.clone()),
        pinned_search_path,
        table: Some(resolved.table),
        measure,
    })
}

/// Built-in type OIDs whose text form a session's settings change.
const DATE: u32 = 1082;
const TIMESTAMP: u32 = 1114;
const TIMESTAMPTZ: u32 = 1184;
const INTERVAL: u32 = 1186;
const TIMETZ: u32 = 1266;
const MONEY: u32 = 790;

/// Where one file would load differently into each destination: its values are read in each
/// server's own settings (as psql's `\copy` reads them), and for the columns copied those
/// differ: the order of a date's fields (`DateStyle`'s `DMY`, `MDY`, `YMD`: `04/03/2024`),
/// whether an interval's leading sign is the whole value's (`IntervalStyle` `sql_standard`),
/// the time zone of a `timestamptz` written without one. Columns are matched by the built-in
/// types their values are made of (domains, arrays, ranges and composites of them too).
fn read_otherwise(
    dests: &[Dest<'_>],
    dest_rels: &[(usize, Relation)],
    labels: &[String],
) -> Option<String> {
    // By the built-in types the values are made of: a domain over `date`, an array or a range
    // of it, a composite with such a field are read in the setting too.
    let has = |rel: &Relation, kinds: &[u32]| rel.columns.iter().any(|c| c.holds(kinds));
    let order = |style: &str| copyman_job::plan::date_order(style).to_owned();
    // The setting, the column types it reads, what of its value counts, what that is.
    type Rule<'a> = (&'a str, &'a [u32], &'a dyn Fn(&str) -> String, &'a str);
    let rules: [Rule<'_>; 3] = [
        (
            "DateStyle",
            &[DATE, TIMESTAMP, TIMESTAMPTZ],
            &order,
            "the order of a date's fields",
        ),
        (
            "IntervalStyle",
            &[INTERVAL],
            &|style: &str| (style == "sql_standard").to_string(),
            "what an interval's leading sign applies to",
        ),
        (
            "TimeZone",
            &[TIMESTAMPTZ, TIMETZ],
            &str::to_owned,
            "the time zone of a time written without one",
        ),
    ];
    // Every setting that differs, said in one error (types74 F1: a file refused three times,
    // a setting a run).
    let (mut differ, mut fixes, mut ways) = (Vec::new(), Vec::new(), String::new());
    for (setting, kinds, meaning, what) in rules {
        let mut seen: Option<(&str, String, String)> = None;
        for (i, rel) in dest_rels {
            let Some(value) = dests[*i]
                .conn
                .as_ref()
                .and_then(|c| c.session().parameter(setting))
            else {
                continue;
            };
            if !has(rel, kinds) {
                continue;
            }
            match &seen {
                None => seen = Some((&labels[*i], value.to_owned(), meaning(value))),
                Some((first, first_value, means)) if *means != meaning(value) => {
                    // A file of ISO dates (as copyman writes them) reads alike under every
                    // order: said with the setting that gives every destination one (files44
                    // F6; types74 F1: `PGDATESTYLE=ISO` alone keeps each server's order).
                    if setting == "DateStyle" {
                        ways = format!(
                            "; a file of ISO dates (2024-01-02, as copyman writes them) reads \
                             alike under any order, but each destination needs the same one, \
                             the order the file's dates are written in (DMY, MDY or YMD): \
                             PGDATESTYLE='ISO, {means}' if {means}"
                        );
                    }
                    // What sets it for a session (files48 F3: PGDATESTYLE and PGTZ were said
                    // of IntervalStyle, which neither sets).
                    fixes.push(match setting {
                        "DateStyle" => "PGDATESTYLE, or -c datestyle=… in the CONN's options",
                        "TimeZone" => "PGTZ, or -c timezone=… in the CONN's options",
                        _ => "-c intervalstyle=… in the CONN's options, or in PGOPTIONS",
                    });
                    differ.push((
                        setting,
                        format!(
                            "{what} differs: {first} has {setting} {first_value}, {} has {value}",
                            labels[*i]
                        ),
                    ));
                    break;
                }
                Some(_) => {}
            }
        }
    }
    if differ.is_empty() {
        return None;
    }
    let settings: Vec<&str> = differ.iter().map(|(s, _)| *s).collect();
    let said: Vec<String> = differ.into_iter().map(|(_, said)| said).collect();
    Some(format!(
        "a file's values are read in each destination's own settings, and {}; one file may \
         load differently into each: give every destination the same {} ({}), or copy into \
         each alone{ways}",
        said.join("; "),
        settings.join(", "),
        fixes.join("; ")
    ))
}

/// Between servers, where destinations would read a copied column's text in settings of their
/// own that differ ([`copyman_job::plan::read_otherwise`]).
fn servers_read_otherwise(
    source: &Relation,
    columns: &[Ident],
    dests: &mut [Dest<'_>],
    dest_rels: &[(usize, Relation)],
    labels: &[String],
) -> Option<String> {
    let settings: Vec<(usize, &Relation, ReadSettings)> = dest_rels
        .iter()
        .filter_map(|(i, rel)| {
            let conn = dests[*i].conn.as_mut()?;
            Some((*i, rel, ReadSettings::asked(conn, source, columns, rel)))
        })
        .collect();
    let read: Vec<(&str, &Relation, &ReadSettings)> = settings
        .iter()
        .map(|(i, rel, settings)| (labels[*i].as_str(), *rel, settings))
        .collect();
    copyman_job::plan::read_otherwise(source, columns, &read)
}

/// The encoding the data will pass in between `source` and the destinations' sessions, as the
/// run will set it ([`crate::limits::non_utf8_client_encoding`]), else UTF8: what a statement
/// without an ENCODING is read in, and what a SQL_ASCII destination gets.
fn passing_encoding(t: &Transfer, source: &Connection, dests: &[Dest<'_>]) -> String {
    let conns: Vec<&Connection> = std::iter::once(source)
        .chain(dests.iter().filter_map(|d| d.conn.as_ref()))
        .collect();
    crate::limits::non_utf8_client_encoding(t, conns.iter().copied())
        .unwrap_or_else(|| "UTF8".to_owned())
}

/// [`copyman_job::plan::xml_declared`] for `columns` between `conns`, in the `client_encoding`
/// the data will pass in.
fn xml_declared<'c>(
    t: &Transfer,
    conns: impl Iterator<Item = &'c Connection> + Clone,
    columns: impl Iterator<Item = &'c Column>,
) -> Option<String> {
    let encoding = crate::limits::non_utf8_client_encoding(t, conns);
    copyman_job::plan::xml_declared(encoding.as_deref(), columns)
}

/// Each destination's name in messages: `destination N (its CONN, redacted)`.
fn dest_labels(dests: &[Dest<'_>]) -> Vec<String> {
    dests
        .iter()
        .enumerate()
        .map(|(i, d)| format!("destination {} ({})", i + 1, d.endpoint.display()))
        .collect()
}

/// Between servers, where a destination would store another amount than the source's `money`
/// ([`copyman_job::plan::money_meant_otherwise`]) or read an array's NULL element otherwise
/// ([`copyman_job::plan::arrays_read_otherwise`]): each side's database asked on a session in
/// its own settings and its copy session as it is, only where a copied column holds money or
/// an array there. Money written in another form than its database's is warned of
/// ([`copyman_job::plan::money_written_otherwise`]) where `warn`. `pairs`: each destination
/// (index into `dests`) with what it reads into.
fn text_read_otherwise(
    (source, source_conn, rel): (&Endpoint, Option<&mut Connection>, &Relation),
    columns: &[Ident],
    dests: &mut [Dest<'_>],
    pairs: &[(usize, &Relation)],
    labels: &[String],
    warn: bool,
) -> Option<String> {
    let sides: Vec<(usize, MoneySides, ArraySides)> = pairs
        .iter()
        .map(|(i, to)| {
            let money = MoneySides::of(rel, columns, to);
            (*i, money, ArraySides::of(rel, columns, to))
        })
        .filter(|(_, money, arrays)| money.any() || arrays.any())
        .collect();
    if sides.is_empty() {
        return None;
    }
    // Not asked: refused, rather than copied as if it read text as copyman's sessions do.
    let from = match sides.iter().any(|(_, money, _)| money.any()) {
        true => match server_forms(source, source_conn, "the source") {
            Ok(forms) => forms,
            Err(why) => return Some(why),
        },
        false => None,
    };
    let mut forms: Vec<Option<ServerForms>> = Vec::with_capacity(sides.len());
    for (i, _, _) in &sides {
        let dest = &mut dests[*i];
        match server_forms(dest.endpoint, dest.conn.as_mut(), &labels[*i]) {
            Ok(asked) => forms.push(asked),
            Err(why) => return Some(why),
        }
    }
    let label = |i: usize| labels[i].as_str();
    let money: Vec<(&str, MoneySides, Option<&ServerForms>)> = sides
        .iter()
        .zip(&forms)
        .map(|((i, money, _), forms)| (label(*i), *money, forms.as_ref()))
        .collect();
    let arrays: Vec<(&str, ArraySides, Option<&ServerForms>)> = sides
        .iter()
        .zip(&forms)
        .map(|((i, _, arrays), forms)| (label(*i), *arrays, forms.as_ref()))
        .collect();
    let refused = copyman_job::plan::money_meant_otherwise(from.as_ref(), &money)
        .or_else(|| copyman_job::plan::arrays_read_otherwise(&arrays));
    if refused.is_none() && warn {
        let written: Vec<(&str, MoneySides)> = money.iter().map(|(l, m, _)| (*l, *m)).collect();
        if let Some(warning) = copyman_job::plan::money_written_otherwise(from.as_ref(), &written) {
            report::warn(warning);
        }
    }
    refused
}

/// What `endpoint`'s server (`whom`, in messages) makes of text: its database's own forms (on
/// a session in its own settings; the CONN's word where it names both `lc_monetary` and
/// `array_nulls`) and `conn`'s, the copy's session's. `None` for a file.
///
/// # Errors
/// Where the database's own forms cannot be asked (a role's `CONNECTION LIMIT`, a server at
/// `max_connections`): why, with the ways on. (Passed over, `'12,34'` was stored as 1234.00.)
fn server_forms(
    endpoint: &Endpoint,
    conn: Option<&mut Connection>,
    whom: &str,
) -> Result<Option<ServerForms>, String> {
    let (Endpoint::Server(spec), Some(conn)) = (endpoint, conn) else {
        return Ok(None);
    };
    let way = "let copyman open one more session there, or say it in its CONN (options='-c \
               lc_monetary=… -c array_nulls=…')";
    // A CONN that names both is its word for the database's: no session needed.
    let named = spec.sets("lc_monetary") && spec.sets("array_nulls");
    let own = (!named).then_some(|| spec.own_settings().connect());
    ServerForms::ask(whom, way, conn, own).map(Some)
}

/// As [`read_otherwise`], for a file (`name`) copied with `--receive` statements: each
/// destination's COPY reads the columns its statement lists (else its table's, generated ones
/// left out), in its own settings. A file's fields are read by position: where the same
/// statement goes to several destinations, their columns must be the same, in the same order;
/// statements that list the same columns in other orders load the file two ways (the values
/// land in each other's columns on one of them). Binary data records no column types: each
/// destination reads it as its columns' types, said, and destinations whose types' binary forms
/// differ at one position are refused. A statement whose table cannot be told is left to the
/// COPY.
fn raw_file_read_otherwise(
    name: &str,
    receive: &[Option<String>],
    dests: &mut [Dest<'_>],
    t: &Transfer,
) -> Option<String> {
    let labels = dest_labels(dests);
    let mut rels: Vec<(usize, Relation)> = Vec::new();
    let mut binary: Vec<(usize, Relation)> = Vec::new();
    let mut loads: Vec<(usize, &str, Vec<String>)> = Vec::new();
    let mut receiving: Vec<(String, Relation)> = Vec::new();
    for (i, dest) in dests.iter_mut().enumerate() {
        let (Some(Some(sql)), Some(conn)) = (receive.get(i), dest.conn.as_mut()) else {
            continue;
        };
        let Some((table, rel, _, unfilled)) =
            crate::file_source::copy_relation_generating(conn, sql)
        else {
            continue;
        };
        let label = format!("destination {} ({})", i + 1, dest.endpoint.display());
        if let Some(refused) = receive_table(&label, &table, &rel, &unfilled) {
            return Some(refused);
        }
        receiving.push((label, rel.clone()));
        let columns: Vec<String> = rel
            .columns
            .iter()
            .map(|c| c.name.as_str().to_owned())
            .collect();
        // Binary data carries values, not text read in the destination's settings.
        if statement::representation(sql).is_some_and(|r| r.format == "binary") {
            binary.push((i, rel));
        } else {
            rels.push((i, rel));
        }
        loads.push((i, sql.as_str(), columns));
    }
    let receiving: Vec<(&str, &Relation)> =
        receiving.iter().map(|(l, r)| (l.as_str(), r)).collect();
    if let Some(refused) = receive_tables(&receiving, t) {
        return Some(refused);
    }
    let sorted = |columns: &[String]| {
        let mut sorted = columns.to_vec();
        sorted.sort();
        sorted
    };
    for (k, (i, sql, columns)) in loads.iter().enumerate() {
        if let Some((j, _, other)) = loads[..k]
            .iter()
            .find(|(_, first, other)| first == sql && other != columns)
        {
            return Some(format!(
                "a file's fields are read by position, and the destinations' columns differ: \
                 {} has ({}), {} has ({}); name the file's columns, in its order, in every \
                 --receive (or use copyman table … --columns with them, which names them on \
                 each destination)",
                labels[*j],
                other.join(", "),
                labels[*i],
                columns.join(", ")
            ));
        }
        if let Some((j, _, other)) = loads[..k]
            .iter()
            .find(|(_, _, other)| other != columns && sorted(other) == sorted(columns))
        {
            return Some(format!(
                "a file's fields are read by position, and the destinations read the same \
                 columns in other orders: {} reads ({}), {} reads ({}): on one of them the \
                 values would land in each other's columns; name the file's columns, in its \
                 order, in every --receive",
                labels[*j],
                other.join(", "),
                labels[*i],
                columns.join(", ")
            ));
        }
    }
    // Destinations of other types each read the file's text as theirs do: said, as table mode
    // says it (files50 F1: values rounded on one, not on the other, exit 0 without a word).
    // (The columns by position: the same names on each, checked above.)
    if let Some((_, first)) = rels.first() {
        let columns: Vec<Ident> = first.columns.iter().map(|c| c.name.clone()).collect();
        let text: Vec<(&str, &Relation)> = (rels.iter())
            .map(|(i, rel)| (labels[*i].as_str(), rel))
            .collect();
        if let Some(warning) = copyman_job::plan::file_read_as_other_types(&columns, &text) {
            report::warn(format_args!("{name}: {warning}"));
        }
    }
    // (A file that does not start with the PGCOPY signature is no binary data: the run refuses
    // it, and nothing is said of how its values would be read — it was said to be binary data,
    // then refused as not: files40 F1.)
    if starts_signed(t) != Some(false)
        && let Some(refused) = binary_read_otherwise(name, &binary, &labels)
    {
        return Some(refused);
    }
    read_otherwise(dests, &rels, &labels)
        .or_else(|| money_misread(dests, &rels, &labels))
        .or_else(|| arrays_misread(dests, &rels, &labels))
        .or_else(|| abbreviations_differ(dests, &rels, &labels))
}

/// How a file or stdin source is named in what is said of its data: `stdin`, not `-`.
fn data_name(source: &Endpoint) -> String {
    match source {
        Endpoint::Stdio => "stdin".to_owned(),
        other => other.display(),
    }
}

/// A binary file (`name`) read by destinations `rels` (their columns as their COPYs read them,
/// in order): refused where two read one field as types whose binary forms differ (at most one
/// reads what the file holds: an int4's bits stored as a real); else the types it is read as
/// are said, as `copyman table` says them.
fn binary_read_otherwise(
    name: &str,
    rels: &[(usize, Relation)],
    labels: &[String],
) -> Option<String> {
    let (first, first_rel) = rels.first()?;
    for (i, rel) in &rels[1..] {
        let misread = first_rel
            .columns
            .iter()
            .zip(&rel.columns)
            .find(|(one, other)| copyman_job::plan::binary_forms_differ(one, other));
        if let Some((one, other)) = misread {
            return Some(format!(
                "{name} is binary COPY data, which records no column types, and the destinations \
                 read one of its fields as types whose binary forms differ: {} {} on {}, {} {} \
                 on {}: at most one of them reads what the file holds; copy into each alone, or \
                 from a text or CSV file",
                one.name, one.type_name, labels[*first], other.name, other.type_name, labels[*i],
            ));
        }
    }
    let types = |rel: &Relation| -> String {
        let each: Vec<String> = (rel.columns.iter())
            .map(|c| format!("{} {}", c.name, c.type_name))
            .collect();
        format!("({})", each.join(", "))
    };
    let read_as: Vec<String> = rels.iter().map(|(_, rel)| types(rel)).collect();
    let read_as = if read_as.iter().all(|t| *t == read_as[0]) {
        read_as[0].clone()
    } else {
        let each: Vec<String> = (rels.iter().zip(&read_as))
            .map(|((i, _), t)| format!("{t} on {}", labels[*i]))
            .collect();
        each.join(", ")
    };
    report::warn(format_args!(
        "{name} is binary COPY data, which records no column types: its values are read as \
         {read_as}, and data written from columns of other types would be read wrong without \
         an error: check that it was written from these types"
    ));
    None
}

/// Whether the run's file or stdin is read as binary COPY data: `--format binary`, every
/// `--receive` in FORMAT binary, or a regular file that starts with the PGCOPY signature.
pub(crate) fn input_is_binary(t: &Transfer) -> bool {
    match &t.statements {
        Statements::Table { format, .. } => reads_binary(t, *format),
        Statements::Raw { receive, .. } => {
            let binary = |sql: &Option<String>| {
                (sql.as_deref())
                    .and_then(statement::representation)
                    .is_some_and(|r| r.format == "binary")
            };
            receive.iter().any(binary) || starts_signed(t) == Some(true)
        }
    }
}

/// Whether a file source is read as binary: `--format binary`, or (no format given) a regular
/// file that starts with the PGCOPY signature, which the run reads as binary once it has read
/// the start.
fn reads_binary(t: &Transfer, forced: Option<Format>) -> bool {
    match forced {
        Some(format) => format == Format::Binary,
        None => starts_signed(t) == Some(true),
    }
}

/// Whether a regular file source starts with the PGCOPY signature; `None` for another source
/// (only a regular file is read ahead: a FIFO's data is the run's).
fn starts_signed(t: &Transfer) -> Option<bool> {
    let Endpoint::File(path) = &t.source else {
        return None;
    };
    if !fs::metadata(path).is_ok_and(|m| m.is_file()) {
        return None;
    }
    let signature = copyman_wire::eod::BINARY_SIGNATURE;
    let mut start = vec![0; signature.len()];
    Some(
        fs::File::open(path)
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut start))
            .is_ok_and(|()| start == signature),
    )
}

/// Where one file's times with a zone would be read otherwise: a zone written as an
/// abbreviation (`IST`) means what each destination's `timezone_abbreviations` says (India's
/// +05:30 or Israel's +02), a setting its server does not report, asked of each destination
/// whose copied columns hold a `timestamptz` or `timetz`.
fn abbreviations_differ(
    dests: &mut [Dest<'_>],
    dest_rels: &[(usize, Relation)],
    labels: &[String],
) -> Option<String> {
    let mut seen: Option<(&str, String)> = None;
    for (i, rel) in dest_rels {
        if !rel.columns.iter().any(|c| c.holds(&[TIMESTAMPTZ, TIMETZ])) {
            continue;
        }
        let Some(conn) = dests[*i].conn.as_mut() else {
            continue;
        };
        let Some(value) = conn
            .query("SELECT pg_catalog.current_setting('timezone_abbreviations')")
            .ok()
            .and_then(|rows| rows.first()?.first().cloned().flatten())
        else {
            continue;
        };
        match &seen {
            None => seen = Some((&labels[*i], value)),
            Some((first, first_value)) if *first_value != value => {
                return Some(format!(
                    "a file's values are read in each destination's own settings, and what a \
                     time zone abbreviation means differs: {first} has timezone_abbreviations \
                     {first_value}, {} has {value}; one file would load differently into each: \
                     give both the same (the CONN's options), or copy into each alone",
                    labels[*i]
                ));
            }
            Some(_) => {}
        }
    }
    None
}

/// Where a file's `money` values would not be read as written in the C locale (`$1,234.56`):
/// each destination reads them in its `lc_monetary` (as psql's `\copy` does), and one whose
/// money form is another — a decimal comma reads `0.50` as 50.00 (a file copyman wrote loaded
/// ×100), another symbol or separator fails on the first row (`£`, `fr_FR`'s) — is refused with
/// the ways to say the file's locale; one that counts in another fraction (yen) has no way to
/// read cents as its amounts, and is told so. Asked of each destination whose copied table has a
/// money column (a domain over money, an array of it, a composite with a money field too).
fn money_misread(
    dests: &mut [Dest<'_>],
    dest_rels: &[(usize, Relation)],
    labels: &[String],
) -> Option<String> {
    for (i, rel) in dest_rels {
        if !rel.columns.iter().any(|c| c.holds(&[MONEY])) {
            continue;
        }
        // A locale the CONN names is the user's word for the file's.
        if let Endpoint::Server(spec) = dests[*i].endpoint
            && spec.sets("lc_monetary")
        {
            continue;
        }
        let Some(forms) = dests[*i].conn.as_mut().and_then(TextForms::of) else {
            continue;
        };
        let (label, locale, form) = (&labels[*i], &forms.locale, &forms.money);
        if forms.digits != C_MONEY_DIGITS {
            return Some(format!(
                "{label} counts money in lc_monetary '{locale}' ({} decimals: it writes an \
                 amount as {form}), and a file's money in the C locale's cents (as copyman \
                 writes it: {C_MONEY}) is no amount of its unit: load that column as numeric, \
                 or leave it out (--columns); a file written in its own locale loads with \
                 options='-c lc_monetary={locale}' in its CONN",
                forms.digits
            ));
        }
        if *form != C_MONEY {
            return Some(format!(
                "{label} reads a file's money values in its lc_monetary '{locale}', which writes \
                 an amount as {form} where the C locale (and copyman) write {C_MONEY}: a file \
                 in the C locale's money would load other amounts, or fail; say in that \
                 destination's CONN which locale the file was written in: options='-c \
                 lc_monetary=C' for a file copyman wrote, options='-c lc_monetary={locale}' for \
                 one written in its own"
            ));
        }
    }
    None
}

/// How the C locale writes an amount of −1234.56 (as [`TextForms::money`]), and its decimals: a
/// file copyman wrote holds money so.
const C_MONEY: &str = "-$1,234.56";
const C_MONEY_DIGITS: u32 = 2;

/// Where a file's arrays would not be read as copyman and pg_dump write them (a NULL element
/// an unquoted `NULL`, the string quoted): each destination reads them in its database's
/// `array_nulls` (as psql's `\copy` does), and one where it is off reads a NULL element as the
/// string `NULL`. Asked of each destination whose copied table has a column holding an array,
/// unless its CONN names `array_nulls` (the user's word for how the file is written).
fn arrays_misread(
    dests: &mut [Dest<'_>],
    dest_rels: &[(usize, Relation)],
    labels: &[String],
) -> Option<String> {
    for (i, rel) in dest_rels {
        if !rel.columns.iter().any(Column::holds_array) {
            continue;
        }
        if let Endpoint::Server(spec) = dests[*i].endpoint
            && spec.sets("array_nulls")
        {
            continue;
        }
        let Some(conn) = dests[*i].conn.as_mut() else {
            continue;
        };
        let Some(forms) = TextForms::of(conn) else {
            continue;
        };
        if !forms.array_nulls {
            return Some(format!(
                "{} reads a file's arrays with its database's array_nulls off, where an \
                 unquoted NULL element ('{{a,NULL}}') is the string NULL, and copyman and \
                 pg_dump write a NULL element so: say in that destination's CONN how the file \
                 is written: options='-c array_nulls=on' for a file copyman or pg_dump wrote, \
                 options='-c array_nulls=off' to read it as psql does there",
                labels[*i]
            ));
        }
    }
    None
}

/// What a `--receive`'s table on a destination (`label`) refuses or warns of, whatever the
/// source (a server, a file, stdin: copy45 F3, F4 checked it from a server only): columns its
/// list leaves out that a row cannot fill (`unfilled`) — every row fails (23502), or gets NULL
/// past its domain's NOT NULL or CHECK (COPY does not check a domain for an omitted column);
/// said before any row (table mode's --columns rule; types41 F6), not where an INSERT trigger
/// of the table may fill them (recheck41b F1) — and, said, a column it fills whose values come
/// from a sequence (identity, serial): copy mode writes the values, table mode advances the
/// sequence past them after (copy41 F8: the next INSERT there collided); a server's own catalog
/// ([`Relation::copy_in_refusal`]). The refusal's words.
fn receive_table(
    label: &str,
    table: &TableName,
    read: &Relation,
    unfilled: &[String],
) -> Option<String> {
    // A server's own catalog, as `table` refuses it (recheck52 F1: a superuser's `--receive`
    // into pg_catalog.pg_event_trigger broke every DDL there, exit 0).
    if let Some(why) = read.copy_in_refusal().filter(|_| read.system) {
        return Some(format!("the --receive's table {table} on {label} {why}"));
    }
    if !unfilled.is_empty() && read.insert_triggers.is_none() {
        let one = unfilled.len() == 1;
        return Some(format!(
            "the --receive's column list leaves out {} of {label}'s {table}, which take{} no \
             default and refuse{} NULL: under NOT NULL every row would fail (23502), of a domain \
             that refuses NULL every row would store it past the domain; list {} in the \
             --receive (and the --send), or give {} a DEFAULT there",
            unfilled.join(", "),
            if one { "s" } else { "" },
            if one { "s" } else { "" },
            if one { "it" } else { "them" },
            if one { "it" } else { "them" },
        ));
    }
    let sequenced: Vec<String> = (read.columns.iter())
        .filter(|c| c.sequence.is_some())
        .map(|c| c.name.to_string())
        .collect();
    if !sequenced.is_empty() {
        report::warn(format_args!(
            "{label}: the --receive writes {}, whose values come from a sequence there \
             (identity or serial), which `copy` does not advance: the next INSERT there may take \
             a value copied now; advance it after (SELECT setval(…)), or copy with `copyman \
             table`, which does",
            sequenced.join(", ")
        ));
    }
    None
}

/// What the `--receive`s' tables (`receiving`, by destination label) refuse or warn of
/// together: a view whose trigger may skip rows (its COPY counts every row handed to it), the
/// INSERT triggers that run as the rows are copied. The refusal's words.
fn receive_tables(receiving: &[(&str, &Relation)], t: &Transfer) -> Option<String> {
    for (label, read) in receiving {
        match uncounted(read, t.safety.allow_count_mismatch) {
            Err(why) => return Some(format!("{label}: the --receive's table {why}")),
            Ok(Some(warning)) => {
                report::warn(format_args!("{label}: the --receive's table {warning}"));
            }
            Ok(None) => {}
        }
    }
    if let Some(warning) = copyman_job::plan::insert_triggers(receiving, false) {
        report::warn(format_args!("the --receive's table: {warning}"));
    }
    if let Some(warning) = copyman_job::plan::insert_rules(receiving) {
        report::warn(format_args!("the --receive's table: {warning}"));
    }
    None
}

/// Whether two column names are one to COPY's reader of names told apart by case only.
fn alike_names(a: &str, b: &str) -> bool {
    a.to_lowercase() == b.to_lowercase()
}

/// Where a `--send` that names a table goes to a `--receive` that reads its fields otherwise:
/// COPY reads fields by position, so the same columns in another order (an old schema into a
/// new one) would land in each other's places, in text as in binary; and binary COPY does not
/// convert values, so another type at the same position would read the bytes as its own (an
/// int8 became a timestamp). A query's columns are described first ([`query_columns`]); one
/// that changes data on a server older than 15 is left to the servers.
///
/// A binary copy gets `guards` (each destination's, the source's): checks, each in its side's
/// transaction before its COPY, that the tables its statements name still have the types
/// compared here (an `ALTER … TYPE` while copyman waited for the table made it read one type's
/// bytes as another's, exit 0) — each `--receive` table, and the `--send`'s where it names a
/// table (a query's tables are not known); each locks its table where its role may.
///
/// # Errors
/// A `--send` its COPY cannot read (a partitioned table), or a query that failed on the source
/// as it was described (exit 1).
fn raw_misreads(
    send: &str,
    t: &Transfer,
    source: &mut Connection,
    receive: &[Option<String>],
    dests: &mut [Dest<'_>],
    guards: &mut (Vec<Option<String>>, Option<String>),
    measure: &mut Option<copyman_job::plan::Measure>,
) -> Result<Option<String>, Fatal> {
    let binary = |sql: &str| statement::representation(sql).is_some_and(|r| r.format == "binary");
    // An ENCODING on some statements only: the others read the data in their sessions'
    // client_encoding, as the run will set it. Refused as the other options are (exit 2, the
    // dry run too), not at the COPYs' start (exit 1; copy41 F4).
    let session = passing_encoding(t, source, dests);
    let encoded = |sql: &str| {
        statement::representation(sql).map(|mut rep| {
            let given = rep.encoding.take().unwrap_or_else(|| session.clone());
            rep.encoding = Some(statement::encoding_name(&given));
            rep
        })
    };
    let sent = encoded(send);
    let received: Vec<_> = (receive.iter())
        .map(|sql| sql.as_deref().and_then(encoded))
        .collect();
    if received
        .iter()
        .flatten()
        .any(|r| r.encoding != sent.as_ref().and_then(|s| s.encoding.clone()))
    {
        let name = |i: usize| format!("the --receive of destination {}", i + 1);
        let refused = copyman_core::start::check_representations(
            sent.as_ref(),
            received
                .iter()
                .enumerate()
                .map(|(i, rep)| (i, rep.as_ref())),
            name,
            |against| against.map_or_else(|| "--send".to_owned(), name),
        );
        if let Some((_, mismatch)) = refused.into_iter().next() {
            return Ok(Some(mismatch.to_string()));
        }
    }
    // What each destination's --receive reads into, where it names a table (and, in the same
    // order, which destination that is).
    let mut reads = Vec::new();
    let mut indices = Vec::new();
    for (i, dest) in dests.iter_mut().enumerate() {
        let (Some(Some(sql)), Some(conn)) = (receive.get(i), dest.conn.as_mut()) else {
            continue;
        };
        let Some((table, read, generates, unfilled)) =
            crate::file_source::copy_relation_generating(conn, sql)
        else {
            continue;
        };
        let label = format!("destination {} ({})", i + 1, dest.endpoint.display());
        if let Some(refused) = receive_table(&label, &table, &read, &unfilled) {
            return Ok(Some(refused));
        }
        let settings = ReadSettings::asked_of(conn, &read);
        if binary(sql) {
            let columns: Vec<Ident> = read.columns.iter().map(|c| c.name.clone()).collect();
            let (hold, version) = (
                Hold::LockIfAllowed("ROW EXCLUSIVE"),
                conn.session().server_version_num(),
            );
            guards.0[i] = read.types_unchanged(&table, hold, &columns, version);
        }
        indices.push(i);
        reads.push((label, read, settings, sql.clone(), generates));
    }
    let receiving: Vec<(&str, &Relation)> =
        reads.iter().map(|(l, r, ..)| (l.as_str(), r)).collect();
    if let Some(refused) = receive_tables(&receiving, t) {
        return Ok(Some(refused));
    }
    // The columns each statement's COPY writes or reads, in its order: read by position.
    let query = statement::copy_query(send);
    // A table COPY cannot read as one: the run's COPY would fail at its start, said before
    // (--dry-run too).
    let send_table = query
        .is_none()
        .then(|| crate::file_source::copy_relation_generating(source, send))
        .flatten();
    // The columns the --send's table generates, which its COPY leaves out.
    let send_generates = (send_table.as_ref()).map_or_else(Vec::new, |(_, _, g, _)| g.clone());
    let send_table = send_table.map(|(table, rel, ..)| (table, rel));
    let unreadable = send_table
        .as_ref()
        .and_then(|(table, rel)| Some((table, rel.refuses_copy_out()?)));
    // A table or a column the source does not have: found before anything is sent, as table
    // mode finds it (exit 2; it was 1, "copy failed", copy44 F3).
    if query.is_none()
        && send_table.is_none()
        && let Some(error) = crate::file_source::copy_relation_missing(source, send)
    {
        return Err(Fatal {
            exit: Exit::Usage,
            message: format!("the --send's table on the source: {error}"),
            server: Some(("source".to_owned(), error)),
        });
    }
    if let Some((table, what)) = unreadable {
        return Err(Fatal {
            exit: Exit::Usage,
            message: format!(
                "the --send's table {table} is {what} on the source: COPY cannot read it as a \
                 table (SQLSTATE 42809 at its start); send COPY (SELECT * FROM {table}) TO STDOUT"
            ),
            server: None,
        });
    }
    let send_table_name = send_table.as_ref().map(|(table, _)| table.clone());
    // Why the source could not describe the --send's query, where it could not.
    let mut undescribed_why: Option<String> = None;
    // The query's own names where it was described under the --receive's (two of one name).
    let mut own_names: Option<Vec<String>> = None;
    let described = match query {
        None => send_table.map(|(table, rel)| {
            if binary(send) {
                let columns: Vec<Ident> = rel.columns.iter().map(|c| c.name.clone()).collect();
                let version = source.session().server_version_num();
                let hold = Hold::LockIfAllowed("ACCESS SHARE");
                guards.1 = rel.types_unchanged(&table, hold, &columns, version);
            }
            rel
        }),
        Some(query) => match query_columns(source, query, receive_names(&reads).as_deref()) {
            Ok((relation, own)) => {
                own_names = own;
                Some(relation)
            }
            Err(Undescribed::Failed(error)) => {
                // A table, column, function or schema it names that the source has not, or a
                // syntax error (class 42 but a permission, 3F000): the command's, as table
                // mode's missing table is (exit 2; recheck44 F3).
                let code = error.sqlstate.as_deref().unwrap_or_default();
                let usage = (code.starts_with("42") && code != "42501") || code == "3F000";
                return Err(Fatal {
                    exit: if usage { Exit::Usage } else { Exit::CopyFailed },
                    message: format!(
                        "the --send's query failed on the source as copyman described it \
                         (nothing was copied): {error}"
                    ),
                    server: Some(("source".to_owned(), error)),
                });
            }
            // A query that changes data on a server older than 15: left to the servers, as
            // documented.
            Err(Undescribed::ChangesData) => None,
            // A query the source could not describe (no TEMP privilege, a standby, an event
            // trigger): its order is not checked, and a destination reading it by its table's
            // order would take each value into another column.
            Err(Undescribed::Refused(why)) => {
                let unlisted = reads.iter().find(|(_, _, _, receive_sql, _)| {
                    !matches!(
                        copyman_core::file_start::copy_columns(receive_sql),
                        Some(Some(_))
                    )
                });
                if let Some((label, ..)) = unlisted {
                    return Ok(Some(format!(
                        "the --send's query could not be described by the source ({why}), so \
                         copyman cannot check that {label} reads its columns in their order: \
                         list the columns in the --receive in the query's order (COPY t (a, b, \
                         …) FROM STDIN), which says the order is yours{}",
                        same_names_hint(&why)
                    )));
                }
                undescribed_why = Some(why);
                None
            }
        },
    };
    let binary = binary(send);
    let Some(sent_rel) = described else {
        // Binary data carries no type: what the query writes could not be checked against what
        // each destination reads (a text read as an int4's bytes), and nothing would fail.
        if binary && query.is_some() && !reads.is_empty() {
            return Ok(Some(format!(
                "--send is a query in FORMAT binary whose columns the source could not \
                 describe: the types it writes cannot be checked against the destinations' \
                 columns, and binary COPY does not convert values (a text's bytes read as an \
                 int4); copy in text (FORMAT text or csv on both ends), which converts{}",
                undescribed_why
                    .as_deref()
                    .map(same_names_hint)
                    .unwrap_or_default()
            )));
        }
        // Listed by the user, its values are read as the --receive says, unchecked: said (a
        // timestamp stored as two instants under two TimeZones went without a word, types43 F1).
        if let Some(why) = undescribed_why.as_ref().filter(|_| !reads.is_empty()) {
            report::warn(format_args!(
                "the --send's query could not be described by the source ({why}): its values \
                 are not checked against the destinations' columns (a timestamp read into a \
                 timestamptz under another TimeZone, a date's text under another DateStyle, a \
                 text cut to a name's 63 bytes, a composite's fields in another order){}",
                same_names_hint(why)
            ));
        }
        return Ok(None);
    };
    let sent = &sent_rel.columns;
    if binary {
        let conns = std::iter::once(&*source).chain(dests.iter().filter_map(|d| d.conn.as_ref()));
        if let Some(why) = xml_declared(t, conns, sent.iter()) {
            return Ok(Some(format!(
                "the --send's FORMAT binary: {why}; copy in text (FORMAT text or csv on both \
                 ends)"
            )));
        }
    }
    let what = match query {
        Some(_) => "query",
        None => "table",
    };
    let mut converted = Vec::new();
    let mut paired_all = Vec::new();
    for (label, read, settings, receive_sql, generates) in &reads {
        // A table without columns writes empty rows, which a table with columns reads as its
        // own ('' or NULL, not their defaults).
        if sent.is_empty() && !read.columns.is_empty() {
            return Ok(Some(format!(
                "the --send's {what} has no column, and {label} reads columns: each empty row \
                 would be read as them ('' or NULL rather than their defaults)"
            )));
        }
        let names = |columns: &[Column]| -> Vec<String> {
            columns.iter().map(|c| c.name.as_str().to_owned()).collect()
        };
        let (written, taken) = (names(sent), names(&read.columns));
        // HEADER MATCH on the --receive: the header the --send writes is its columns' names,
        // which must be the destination's, in order, or the COPY fails at the first line (the
        // dry run said OK: types41 F5) — its own names, where it was described under others.
        let header = own_names.as_ref().unwrap_or(&written);
        if statement::header_must_match(receive_sql)
            && statement::has_header(send) == Some(true)
            && *header != taken
        {
            // A table's COPY names no column otherwise: a query does (recheck44 F6).
            let rename = match query {
                Some(_) => "name the --send's columns as the destination's (AS)",
                None => "send COPY (SELECT … AS …) TO STDOUT naming them as the destination's",
            };
            return Ok(Some(format!(
                "the --receive's HEADER MATCH reads a header naming {label}'s columns ({}), and \
                 the --send's {what} writes the header ({}): COPY would refuse its first line \
                 (22P04); {rename}, or give the --receive HEADER without MATCH",
                taken.join(", "),
                header.join(", ")
            )));
        }
        // Names told apart by case only count as one ("Email" and email: a query's alias in
        // another case landed every value in the other column, recheck41b F3).
        let lower =
            |names: &[String]| -> Vec<String> { names.iter().map(|n| n.to_lowercase()).collect() };
        let mut sorted = (lower(&written), lower(&taken));
        sorted.0.sort();
        sorted.1.sort();
        // Both statements listing their columns: the order is the user's, on purpose (but for
        // the same names in another order, below).
        let listed =
            |sql: &str| matches!(copyman_core::file_start::copy_columns(sql), Some(Some(_)));
        let chosen = (query.is_some() || listed(send)) && listed(receive_sql);
        let mend = match (query, chosen) {
            // A query's columns and the --receive's list naming the same columns in another
            // order (copy41 F7: every row stored in the wrong columns, exit 0): a slip; one
            // meant is said with AS.
            (Some(_), true) => {
                "give both lists one order, or, if each value is meant for the other column, \
                 say so in the --send with AS (SELECT email AS name, …)"
            }
            (Some(_), false) => {
                "select them in the destination's order, or list the columns in the --receive \
                 in the query's order"
            }
            (None, _) => {
                "list the columns in the --receive in the --send's order, or use `copyman \
                 table`, which copies by name"
            }
        };
        // The same names in another order: refused where a query selects them (it can say a
        // swap with AS), listed or not; a table's column list written out against the
        // --receive's is a swap said in the only way a table's COPY can.
        let swap_written_out = query.is_none() && chosen;
        let reordered = lower(&written) != lower(&taken) && sorted.0 == sorted.1;
        // Copied as written, but said, each pair named (types64 F1: a slip in one list stored
        // every value in the other column without a word).
        if reordered && swap_written_out {
            let pairs: Vec<String> = (written.iter().zip(&taken))
                .filter(|(w, t)| !alike_names(w, t))
                .map(|(w, t)| format!("\"{w}\" into \"{t}\""))
                .collect();
            report::warn(format_args!(
                "{label}: the --send's column list ({}) and the --receive's ({}) name the same \
                 columns in another order: each value is stored as written, {}; if that is a \
                 slip, give both lists one order",
                written.join(", "),
                taken.join(", "),
                pairs.join(", ")
            ));
        }
        if reordered && !swap_written_out {
            return Ok(Some(format!(
                "COPY reads fields by position: the --send's {what} writes the columns ({}) and \
                 {label} reads the same columns in another order ({}): their values would land \
                 in each other's places; {mend}",
                written.join(", "),
                taken.join(", ")
            )));
        }
        // One column read into another's place while the destination has a column of its name
        // (the others renamed, or not there): its values would land in the wrong column all the
        // same. Names told apart by case only count as one here ("Name" and name).
        let alike = alike_names;
        let misplaced = written.iter().enumerate().find_map(|(i, name)| {
            let into = taken.get(i).filter(|t| !alike(t, name))?;
            Some((i, name, into, taken.iter().position(|t| alike(t, name))?))
        });
        if let Some((i, name, into, own)) = misplaced.filter(|_| !chosen) {
            return Ok(Some(format!(
                "COPY reads fields by position: the --send's {what} writes \"{name}\" as its \
                 field {}, which {label} reads into its column \"{into}\", though it has a column \
                 \"{}\" (its field {}): the values would land in another column; {mend}",
                i + 1,
                taken[own],
                own + 1
            )));
        }
        // The same where the column of that name is generated on one side, and so left out of
        // its COPY: the destination's (a value written as "g" read into "h" beside the "g" it
        // generates), or the --send's table's (its "h" read into the "g" it generates).
        let generated_here = written
            .iter()
            .zip(&taken)
            .enumerate()
            .find_map(|(i, (w, t))| {
                if alike(w, t) {
                    return None;
                }
                let field = i + 1;
                if let Some(g) = generates.iter().find(|g| alike(g, w)) {
                    // Not the usual mend: a COPY cannot write a generated column, listed or
                    // not (its advice led to a list the server refuses, 42P10: copy44 F4).
                    let how = format!(
                        "writes \"{w}\" as its field {field}, which {label} reads into its \
                         column \"{t}\", though it has a column \"{g}\", which it generates \
                         (COPY leaves it out)"
                    );
                    let mend = format!(
                        "leave \"{w}\" out of the --send, or name the column it goes into in a \
                         --receive column list ({label} computes \"{g}\" itself: no COPY can \
                         write it)"
                    );
                    return Some((how, Some(mend)));
                }
                let g = send_generates.iter().find(|g| alike(g, t))?;
                let how = format!(
                    "generates its column \"{g}\" (COPY leaves it out) and writes \"{w}\" as \
                     its field {field}, which {label} reads into its column \"{t}\""
                );
                Some((how, None))
            });
        if let Some((how, own_mend)) = generated_here.filter(|_| !chosen) {
            let mend = own_mend.unwrap_or_else(|| mend.to_string());
            return Ok(Some(format!(
                "COPY reads fields by position: the --send's {what} {how}: the values would land \
                 in another column; {mend}"
            )));
        }
        // A composite whose fields stand in another order there (filled by position, swapped),
        // a multirange whose subtype orders otherwise there (ranges merged).
        if let Some((from, why)) = sent.iter().zip(&read.columns).find_map(|(from, to)| {
            copyman_job::plan::lands_otherwise(from, to).map(|why| (from, why))
        }) {
            return Ok(Some(format!(
                "the --send's column \"{}\" into {label}: {why}",
                from.name.as_str()
            )));
        }
        // What the destination converts, pair by pair, said as table mode says it.
        let mut paired = read.clone();
        paired.columns.truncate(sent.len());
        for (to, from) in paired.columns.iter_mut().zip(sent) {
            to.name = from.name.clone();
        }
        // A value landing in a column of another name is said with that column's name (it
        // named the --send's column only, which the destination may not have: types41 F6);
        // without table mode's --verify advice, which `copy` has not (copy41 F1).
        let (same, renamed): (Vec<_>, Vec<_>) = (paired.columns.iter())
            .zip(&read.columns)
            .partition(|(by_source, own)| by_source.name == own.name);
        let same: Vec<_> = same.iter().map(|(c, _)| c.name.clone()).collect();
        converted.extend(copyman_job::plan::conversions(
            &same,
            &sent_rel,
            &[(label.as_str(), &paired)],
            false,
        ));
        for (by_source, own) in renamed {
            let into = format!("{label}, where it lands in column {}", own.name);
            converted.extend(copyman_job::plan::conversions(
                std::slice::from_ref(&by_source.name),
                &sent_rel,
                &[(into.as_str(), &paired)],
                false,
            ));
        }
        if binary {
            let misread = sent.iter().zip(&read.columns).find_map(|(from, to)| {
                copyman_job::plan::binary_misread(from, to).map(|how| (how, from, to))
            });
            if let Some((how, from, to)) = misread {
                let what = how.describe(&format!("\"{}\"", from.name.as_str()), from, to, label);
                return Ok(Some(format!(
                    "binary COPY does not convert values: the --send's {what}, where it reads \
                     column \"{}\" ({}): its bytes would be read as another type; copy in text \
                     (FORMAT text or csv on both ends), which converts, or into columns of the \
                     same types",
                    to.name.as_str(),
                    to.type_name
                )));
            }
        }
        paired_all.push((label.as_str(), paired, settings));
    }
    let columns: Vec<_> = sent.iter().map(|c| c.name.clone()).collect();
    // A destination `name` or `"char"` that would cut the --send's values (its own type, or
    // another encoding), measured as table mode measures them: a table's rows, or the query's
    // in a read-only transaction (the query runs once more for it, only where such a
    // destination column is fed another type).
    let rows = match (&send_table_name, query) {
        (Some(table), _) => Some(copyman_job::plan::table_rows(table, None)),
        (None, Some(query)) => Some(copyman_job::plan::query_rows(query, &columns)),
        (None, None) => None,
    };
    if let Some(rows) = rows {
        let encoding = |i: usize| {
            let conn = dests[i].conn.as_ref();
            let encoding = conn.and_then(|c| c.session().parameter("server_encoding"));
            copyman_job::plan::measured_in(encoding.unwrap_or_default(), &session)
        };
        let encoded: Vec<(&str, &Relation, String)> = paired_all
            .iter()
            .zip(&indices)
            .map(|((label, rel, _), i)| (*label, rel, encoding(*i)))
            .collect();
        // A query is read again only where it reads: one that writes (`DELETE … RETURNING`, a
        // data-modifying WITH, nextval()) fails in the read-only transaction, and a value it
        // would cut is refused as not measured, never passed over (recheck41 F2).
        let writes = query.is_some_and(|q| {
            let first = q.trim_start().trim_start_matches('(').trim_start();
            let word = first
                .split(|c: char| !c.is_ascii_alphabetic())
                .next()
                .unwrap_or("");
            !["select", "values", "with", "table"].contains(&word.to_ascii_lowercase().as_str())
        });
        let idle =
            source.session().transaction_status() == copyman_core::session::TransactionStatus::Idle;
        let read = match query {
            None => Ok(()),
            Some(_) if writes => {
                Err("the --send's query writes, and is not run again to measure them")
            }
            Some(_) if idle && source.execute("BEGIN READ ONLY").is_ok() => Ok(()),
            Some(_) => {
                Err("the source's session could not open a read-only transaction to read them")
            }
        };
        let cut = copyman_job::plan::values_cut(
            source,
            read.map(|()| rows.as_str()),
            &columns,
            &sent_rel,
            &encoded,
        );
        if query.is_some() && read.is_ok() {
            let _ = source.execute("ROLLBACK");
        }
        match cut {
            Err(why) => return Ok(Some(why)),
            Ok(measured) => {
                *measure = (measured && read.is_ok()).then(|| {
                    let query = query.is_some();
                    copyman_job::plan::Measure::new(
                        rows.clone(),
                        &columns,
                        &sent_rel,
                        &encoded,
                        query,
                    )
                });
            }
        }
    }
    // Text read in each destination's settings, pair by pair.
    let read: Vec<(&str, &Relation, &ReadSettings)> = paired_all
        .iter()
        .map(|(label, rel, settings)| (*label, rel, *settings))
        .collect();
    if let Some(why) = copyman_job::plan::read_otherwise(&sent_rel, &columns, &read) {
        return Ok(Some(why));
    }
    let pairs: Vec<(usize, &Relation)> = indices
        .iter()
        .zip(&paired_all)
        .map(|(i, (_, rel, _))| (*i, rel))
        .collect();
    let all_labels = dest_labels(dests);
    let source = (&t.source, Some(&mut *source), &sent_rel);
    if let Some(why) = text_read_otherwise(source, &columns, dests, &pairs, &all_labels, true) {
        return Ok(Some(why));
    }
    for warning in converted {
        report::warn(warning);
    }
    if let Some(warning) = copyman_job::plan::named_on_search_path(&sent_rel, &columns) {
        report::warn(warning);
    }
    Ok(None)
}

/// The source's refusal of `table`'s copied columns (`columns`, or every stored one of `rel`)
/// that its role may not `SELECT` (on the table, or on each of them), with the columns it may
/// read as the way out; `None` where it may read them, or that cannot be asked.
fn unreadable_columns(
    conn: &mut Connection,
    table: &TableName,
    columns: &[Ident],
    rel: &Relation,
) -> Option<ErrorInfo> {
    let stored: Vec<&Ident> = rel
        .columns
        .iter()
        .filter(|c| !c.generated)
        .map(|c| &c.name)
        .collect();
    let copied: Vec<&Ident> = match columns {
        [] => stored.clone(),
        some => some.iter().collect(),
    };
    let rows = conn
        .query(&sql::unreadable_columns_query(table, &stored))
        .ok()?;
    let denied: Vec<String> = rows
        .into_iter()
        .filter_map(|r| r.into_iter().next()?)
        .collect();
    let refused: Vec<String> = (copied.iter())
        .filter(|c| denied.iter().any(|d| d == c.as_str()))
        .map(ToString::to_string)
        .collect();
    if refused.is_empty() {
        return None;
    }
    let readable: Vec<String> = (stored.iter())
        .filter(|c| !denied.iter().any(|d| d == c.as_str()))
        .map(|c| copyman_core::file_start::column_name(c.as_str()))
        .collect();
    let what = match refused.len() == stored.len() && copied.len() == stored.len() {
        true => format!("table {table}"),
        false if refused.len() == 1 => format!("column {} of table {table}", refused[0]),
        false => format!("columns {} of table {table}", refused.join(", ")),
    };
    let list = readable.join(",");
    let way = match (readable.is_empty(), list.contains(['"', ' '])) {
        (true, _) => String::new(),
        (false, true) => format!(", or copy the columns it may read (--columns '{list}')"),
        (false, false) => format!(", or copy the columns it may read (--columns {list})"),
    };
    Some(ErrorInfo {
        sqlstate: Some("42501".to_owned()),
        message: format!(
            "permission denied: the source's role may not SELECT {what} (it needs SELECT on the \
             table, or on each copied column); grant it{way}"
        ),
    })
}

/// Why a `--send` query's columns could not be described ([`query_columns`]).
enum Undescribed {
    /// It changes data (`DELETE … RETURNING`), which a view cannot, on a server older than 15:
    /// the servers read it.
    ChangesData,
    /// The source cannot describe it so (a standby, no TEMP privilege, two columns of one
    /// name, an event trigger that refuses DDL): what it said. Listing the columns in the
    /// `--receive` makes their order the user's.
    Refused(String),
    /// The query failed there (a typo, a lock or statement timeout, a stall), as its COPY would:
    /// what the source said.
    Failed(ErrorInfo),
}

/// The columns `query` (a `COPY (query) TO STDOUT`'s) gives, with their types, as the source
/// describes them without running it: a temporary view of it; from PostgreSQL 15, where a view
/// cannot be one (`DELETE … RETURNING`, a data-modifying `WITH`), a temporary table created from
/// it `WITH NO DATA`, which defines the table from the statement's target list without planning
/// or running it (no row changes, no trigger fires: checked there). Each in a savepoint of one
/// transaction (read-write, for a role whose transactions are read-only by default) rolled back
/// at once: nothing of it stays.
///
/// Two columns of one name (`SELECT a.id, b.id`), which a view cannot have (42701), are
/// described under `names` where given (a `--receive`'s column list, which reads them by
/// position), with the query's own names beside (the header it writes, recheck43 F8): a query
/// that cannot be described is copied unchecked (types43 F1).
///
/// # Errors
/// [`Undescribed`]: a query that changes data on an older server, why the source could not
/// describe it, or its failure there.
fn query_columns(
    conn: &mut Connection,
    query: &str,
    names: Option<&[String]>,
) -> Result<(Relation, Option<Vec<String>>), Undescribed> {
    use copyman_core::session::TransactionStatus;
    if conn.session().transaction_status() != TransactionStatus::Idle {
        return Err(Undescribed::Refused(
            "its session is in a transaction".to_owned(),
        ));
    }
    // A standby refuses a read-write transaction (0A000): it cannot describe (said so,
    // recheck52 F7: the server's words named a mode, not the standby).
    conn.execute("BEGIN READ WRITE").map_err(|e| {
        let said = describe_sync(&e).to_string();
        Undescribed::Refused(match said.contains("during recovery") {
            true => format!(
                "{said}: it is a standby (in recovery), where copyman cannot make the \
                 temporary view it describes a query through"
            ),
            false => said,
        })
    })?;
    let described = described_in_transaction(conn, query, names);
    let _ = conn.execute("ROLLBACK");
    described
}

/// Why the source refuses `condition` as a `--where` of `table`, where it is the command's
/// mistake (class 42 but a permission, 22: a constant of the wrong type): asked with `LIMIT 0`
/// in a read-only transaction, which parses and plans it and reads no row. `None` where it
/// reads, or where the error is another's (said by the copy, as before).
fn where_refused(conn: &mut Connection, table: &TableName, condition: &str) -> Option<ErrorInfo> {
    use copyman_core::session::TransactionStatus;
    if conn.session().transaction_status() != TransactionStatus::Idle {
        return None;
    }
    conn.execute("BEGIN READ ONLY").ok()?;
    let asked = conn.execute(&format!(
        "SELECT 1 FROM {table} {}\nLIMIT 0",
        sql::where_clause(condition)
    ));
    let _ = conn.execute("ROLLBACK");
    let error = describe_sync(&asked.err()?);
    let code = error.sqlstate.as_deref().unwrap_or_default();
    ((code.starts_with("42") && code != "42501") || code.starts_with("22")).then_some(error)
}

/// The column list of the first `--receive` that has one: the names under which a query with
/// two columns of one name is described ([`query_columns`]).
fn receive_names<T, U, V, W>(reads: &[(T, U, V, String, W)]) -> Option<Vec<String>> {
    reads.iter().find_map(
        |(_, _, _, receive_sql, _)| match copyman_core::file_start::copy_columns(receive_sql) {
            Some(Some(names)) => Some(names),
            _ => None,
        },
    )
}

/// Where a query could not be described because two of its columns have one name (42701: a
/// view cannot have them; `SELECT c.id, o.id` is a fine query): the way to describe it — or
/// nothing (copy41 F9).
fn same_names_hint(why: &str) -> String {
    if why.contains("42701") {
        "; or give each of its columns its own name with AS (SELECT c.id AS customer_id, o.id \
         AS order_id …), which lets it be described"
            .to_owned()
    } else {
        String::new()
    }
}

/// [`query_columns`]'s ways, each tried in a savepoint of the transaction it opened.
fn described_in_transaction(
    conn: &mut Connection,
    query: &str,
    names: Option<&[String]>,
) -> Result<(Relation, Option<Vec<String>>), Undescribed> {
    let relation = "pg_temp.copyman_send_columns";
    // The query ends its line: a `-- comment` on its last line ends there.
    let mut ways = vec![format!("CREATE TEMPORARY VIEW {relation} AS {query}")];
    // Two columns of one name (42701): renamed by position, as the --receive reads them.
    let renamed = names.map(|names| {
        let list: Vec<String> = (names.iter())
            .map(|n| copyman_core::file_start::column_name(n))
            .collect();
        format!(
            "CREATE TEMPORARY VIEW {relation} AS SELECT * FROM (\n{query}\n) AS copyman_send ({})",
            list.join(", ")
        )
    });
    ways.extend(renamed.clone());
    let older = (conn.session().server_version_num()).is_none_or(|v| v < 150_000);
    if !older {
        // A data-modifying `WITH … SELECT` is a SELECT to CREATE TABLE AS; a `DELETE …
        // RETURNING` is one inside a `WITH`.
        ways.push(format!(
            "CREATE TEMPORARY TABLE {relation} AS {query}\nWITH NO DATA"
        ));
        ways.push(format!(
            "CREATE TEMPORARY TABLE {relation} AS WITH copyman_send AS ({query}\n) \
             SELECT * FROM copyman_send WITH NO DATA"
        ));
    }
    let failed = |e: &copyman_sync::Error| Undescribed::Failed(describe_sync(e));
    let mut last = None;
    for way in &ways {
        conn.execute("SAVEPOINT copyman_describe")
            .map_err(|e| failed(&e))?;
        let error = match conn.execute(way) {
            Ok(_) => {
                let described =
                    crate::file_source::copy_relation(conn, &format!("COPY {relation} TO STDOUT"))
                        .ok_or_else(|| {
                            Undescribed::Refused("its description could not be read".to_owned())
                        })?;
                // Described under other names: its own, as its result says them (a view of it
                // is a SELECT: with no row asked for, nothing of it runs).
                let own = (Some(way) == renamed.as_ref())
                    .then(|| {
                        let sql = format!("SELECT * FROM (\n{query}\n) AS copyman_send LIMIT 0");
                        conn.execute(&sql).ok()?;
                        Some(conn.session().result_columns().to_vec())
                    })
                    .flatten();
                return Ok((described, own));
            }
            Err(e) => describe_sync(&e),
        };
        // Not a query this way can take (42601: `DELETE …` is no SELECT; 0A000: a
        // data-modifying `WITH` in a view; 42701 before the renamed view): the next way.
        // Anything else is the query's.
        let next = match error.sqlstate.as_deref() {
            Some("42601" | "0A000") => true,
            Some("42701") => renamed.is_some() && Some(way) != renamed.as_ref(),
            _ => false,
        };
        if !next && error.sqlstate.as_deref() == Some("42701") && names.is_none() {
            conn.execute("ROLLBACK TO SAVEPOINT copyman_describe")
                .map_err(|e| failed(&e))?;
            if let Some(apart) = unnamed_apart(conn, query) {
                return described_in_transaction(conn, query, Some(&apart));
            }
        }
        if !next {
            return Err(undescribed(error));
        }
        last = Some(error);
        conn.execute("ROLLBACK TO SAVEPOINT copyman_describe")
            .map_err(|e| failed(&e))?;
    }
    match last {
        Some(_) if older => Err(Undescribed::ChangesData),
        Some(error) => Err(undescribed(error)),
        None => unreachable!("a way was tried"),
    }
}

/// Names for `query`'s columns where only unnamed ones share a name (`SELECT 1, 'q'`: two
/// `?column?`, which a view cannot have, 42701): each unnamed one called by its place
/// (`?column? (field 2)`), under which it is described as a `--receive`'s column list would
/// read it. They name no column a destination could have, so nothing of the check is lost;
/// it was refused quoting the view's 42701 as the query's (recheck65 F1). `None` where named
/// columns share a name (`SELECT a.id, b.id`: which is which is the user's to say) or the
/// query cannot be asked so.
fn unnamed_apart(conn: &mut Connection, query: &str) -> Option<Vec<String>> {
    const UNNAMED: &str = "?column?";
    conn.execute("SAVEPOINT copyman_names").ok()?;
    let sql = format!("SELECT * FROM (\n{query}\n) AS copyman_send LIMIT 0");
    let own = match conn.execute(&sql) {
        Ok(_) => conn.session().result_columns().to_vec(),
        Err(_) => Vec::new(),
    };
    conn.execute("ROLLBACK TO SAVEPOINT copyman_names").ok()?;
    let mut seen = std::collections::HashSet::new();
    let named_twice = (own.iter()).any(|n| !seen.insert(n.as_str()) && n != UNNAMED);
    if own.is_empty() || named_twice {
        return None;
    }
    let place = |(i, n): (usize, &String)| match n == UNNAMED {
        true => format!("{UNNAMED} (field {})", i + 1),
        false => n.clone(),
    };
    Some(own.iter().enumerate().map(place).collect())
}

/// What the source's refusal to describe a query means: it cannot describe it so (no TEMP
/// privilege, a read-only transaction, two columns of one name, a column a view or a table
/// cannot have — a `ROW(…)`'s pseudo-type `record`, 42P16 —, an event trigger that raises, a
/// feature a view or a table cannot take), which listing the columns answers; or the query
/// failed there as its COPY would (a syntax error, an unknown column, a lock or statement
/// timeout, a stall).
fn undescribed(error: ErrorInfo) -> Undescribed {
    match error.sqlstate.as_deref() {
        // Said by the view copyman made, not by the query, which the source runs as it is
        // (recheck65 F1: quoted as the source's error).
        Some("42701") => Undescribed::Refused(format!(
            "two of its columns have one name, which the temporary view copyman describes a \
             query through cannot have ({error})"
        )),
        Some("42501" | "25006" | "42P16" | "42611" | "0A000" | "P0001") => {
            Undescribed::Refused(error.to_string())
        }
        _ => Undescribed::Failed(error),
    }
}

/// `table` as `conn`'s server resolves it on its search_path, with its schema; `None` when it
/// cannot be asked (the name is then sent as given).
fn qualified(conn: &mut Connection, table: &TableName) -> Option<TableName> {
    let row = conn
        .query(&sql::relation_name_query(&table.to_string()))
        .ok()?
        .into_iter()
        .next()?;
    let mut parts = row.into_iter();
    let (schema, name) = (parts.next()?, parts.next()??);
    Some(TableName::from_parts(schema, name))
}

/// Where a destination's table lacks a source column and has one the source has not (a column
/// renamed there, which table mode, pairing by name, cannot fill: `--columns` alone left it
/// NULL, types66 F2): those named, with the `copy` that pairs them by place.
fn renamed_hint(
    source: Option<&Relation>,
    dests: &[(&str, &Relation)],
    from: &TableName,
    to: &TableName,
) -> String {
    let Some(source) = source else {
        return String::new();
    };
    for (label, rel) in dests {
        let lacks: Vec<&Column> = (source.columns.iter())
            .filter(|c| !c.generated && rel.column(&c.name).is_none())
            .collect();
        let extra: Vec<&Column> = (rel.columns.iter())
            .filter(|c| !c.generated && source.column(&c.name).is_none())
            .collect();
        let ([lost], [new]) = (&lacks[..], &extra[..]) else {
            continue;
        };
        let sent: Vec<Ident> = (source.columns.iter())
            .filter(|c| !c.generated && (rel.column(&c.name).is_some() || c.name == lost.name))
            .map(|c| c.name.clone())
            .collect();
        let read: Vec<Ident> = (sent.iter())
            .map(|n| match *n == lost.name {
                true => new.name.clone(),
                false => n.clone(),
            })
            .collect();
        // As a user writes them: quoted only where they must be.
        let plain = |n: &Ident| copyman_core::file_start::column_name(n.as_str());
        let list = |names: &[Ident]| names.iter().map(plain).collect::<Vec<_>>().join(", ");
        let table = |t: &TableName| match &t.schema {
            Some(schema) => format!("{}.{}", plain(schema), plain(&t.name)),
            None => plain(&t.name),
        };
        // Quoted for a shell (a name may hold a `'`: recheck66 F3).
        let word = crate::file_source::shell_word;
        return format!(
            "; {label} has {}, which the source has not: if it is {} renamed, copy into it with \
             copyman copy --send {} --receive {}, which pairs the columns by their places",
            new.name,
            lost.name,
            word(&format!("COPY {} ({}) TO STDOUT", table(from), list(&sent))),
            word(&format!("COPY {} ({}) FROM STDIN", table(to), list(&read)))
        );
    }
    String::new()
}

fn show_columns(columns: &[Ident]) -> String {
    columns
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether every server destination runs the source's major version.
fn same_major(source_version: Option<u32>, dests: &[Dest<'_>]) -> bool {
    let Some(source) = source_version.map(major) else {
        return false;
    };
    dests.iter().all(|d| {
        d.conn
            .as_ref()
            .and_then(|c| c.session().server_version_num())
            .is_none_or(|v| major(v) == source)
    })
}

/// The SQLSTATEs with which a server refuses binary data it cannot read: 22P03
/// invalid_binary_representation, 08P01 protocol_violation ("insufficient data left in
/// message"), 22P04 bad_copy_file_format, 42804 datatype_mismatch (an array's or a record's
/// type OIDs), 42883 undefined_function (a type without binary output).
const BINARY_REFUSALS: [&str; 5] = ["22P03", "08P01", "22P04", "42804", "42883"];

const BINARY_HINT: &str = "hint: a server refused the binary data that --format binary asked for; use --format text, \
     which converts values";

/// A copy between servers forced to `--format binary` that a server refused gets a hint to use
/// text. (From a file, the file is binary: text would not read it.)
pub(crate) fn hint_forced_binary(t: &Transfer, report: &mut RunReport) {
    let forced = matches!(
        t.statements,
        Statements::Table {
            format: Some(Format::Binary),
            ..
        }
    );
    if !forced || !t.source.is_server() {
        return;
    }
    let refused = |sqlstate: Option<&str>| sqlstate.is_some_and(|s| BINARY_REFUSALS.contains(&s));
    for d in &mut report.destinations {
        if let Some(error) = &mut d.error
            && refused(error.sqlstate.as_deref())
        {
            error.message = format!("{} ({BINARY_HINT})", error.message);
        }
    }
    if let Some(error) = &mut report.error
        && BINARY_REFUSALS
            .iter()
            .any(|s| error.contains(&format!("SQLSTATE {s}")))
    {
        *error = format!("{error} ({BINARY_HINT})");
    }
}

/// `--dry-run`: connects, plans and shows the plan; nothing is copied, no transaction is
/// opened, nothing but catalog queries and the run's session settings (`--encoding`,
/// `--lock-timeout`) reaches a server.
///
/// # Errors
/// As a run's planning: connections (exit 3), a database given twice ([`crate::identity::check`],
/// the run's check), a missing table, differing columns (exit 2).
pub(crate) fn dry_run(t: &Transfer, output: Output) -> anyhow::Result<Exit> {
    // What a real run would refuse about its files, found without creating anything.
    crate::dest::refuse_same_file(&t.source, &t.destinations)?;
    let dropped = crate::dest::refuse_unopenable(&t.destinations, t.keep_going)?;
    crate::file_source::refuse_compressed(t)?;
    // The user's SQL, as the run reads it (the dry run exited 0 where the run refused it).
    // A signal while connecting exits at once, said as the run says it.
    crate::signals::connecting(true);
    let connected = (|| -> anyhow::Result<_> {
        let unasked = crate::users_sql::refuse_text_read_otherwise(t)?;
        Ok((unasked, connect_all(t)?))
    })();
    crate::signals::connecting(false);
    let (unasked, (mut source_conn, mut dests)) = connected?;
    crate::users_sql::read_users_sql(t, source_conn.as_mut())?;
    // A database given twice, or a table copied into itself: refused by the run's own check
    // (its queries only read what the server says of itself), with its exit status and words;
    // the run's limits and settings; and the run's watch, which says a wait for a lock as the
    // run does (a catalog read waiting behind a migration's lock was silent: recheck66 F1).
    let _watch = crate::limits::prepare(t, source_conn.as_mut(), &mut dests, output.quiet)?;
    for (i, message) in dropped.into_iter().chain(unasked) {
        dests[i].fail_with(ErrorInfo {
            sqlstate: None,
            message,
        });
    }
    let mut plan = plan(t, source_conn.as_mut(), &mut dests)?;
    refuse_rows_of_jobs(t, &plan, source_conn.as_mut(), &mut dests)?;
    // A statement whose table or columns its server does not have fails the run at its COPY
    // (42P01, 42703), and so do columns of other numbers on the two ends (22P04): the dry run
    // says so as the run would end (it exited 0, "ok").
    // A copy's own statements: the columns each --receive reads, as its server says them.
    let mut raw_columns: Vec<Option<Vec<String>>> = vec![None; dests.len()];
    if let Statements::Raw { send, receive } = &t.statements {
        let sent = send.as_deref().zip(source_conn.as_mut());
        let mut written = None;
        if let Some((send, conn)) = sent {
            if let Some(error) = copy_fails(conn, send) {
                return Err(Fatal {
                    exit: Exit::CopyFailed,
                    message: format!("source: the --send's COPY fails there: {error}"),
                    server: Some(("source".to_owned(), error)),
                }
                .into());
            }
            written = copy_columns(conn, send).map(|names| names.len());
        }
        for (i, dest) in dests.iter_mut().enumerate() {
            let (Some(Some(sql)), Some(conn)) = (receive.get(i), dest.conn.as_mut()) else {
                continue;
            };
            let error = copy_fails(conn, sql).or_else(|| {
                let read = copy_columns(conn, sql);
                raw_columns[i].clone_from(&read);
                let (written, read) = (written?, read?.len());
                (written != read).then(|| ErrorInfo {
                    sqlstate: Some("22P04".to_owned()),
                    message: format!(
                        "the --send writes {} and its --receive reads {}: its COPY fails at the \
                         first row",
                        crate::job::plural(written, "column"),
                        crate::job::plural(read, "column")
                    ),
                })
            });
            let error = error.or_else(|| copy_start_fails(conn, sql, i));
            let Some(error) = error else {
                continue;
            };
            if !t.keep_going {
                let whom = format!("destination {} ({})", i + 1, dest.endpoint.display());
                return Err(Fatal {
                    exit: Exit::CopyFailed,
                    message: format!("{whom}: {error}"),
                    server: Some((whom, error)),
                }
                .into());
            }
            dest.fail_with(error);
        }
    }
    // --atomic: destinations that cannot prepare are refused, as the run refuses them.
    if t.atomic.is_some() {
        crate::finish::Atomic::check_destinations(&mut dests, t.keep_going)?;
    }
    let ending = Ending::of(t, source_conn.as_mut());
    let input = input(t, output, &mut plan, source_conn.as_mut(), &mut dests)?;
    // The encodings as the run settles them, after every catalog read as the run's: COPYs
    // whose ENCODINGs would lose characters between servers refused, the warning where a
    // destination's bytes would be rewritten.
    crate::limits::refuse_lossy_between(
        source_conn.as_mut(),
        &mut dests,
        plan.send.as_deref(),
        &plan.receive,
    )?;
    crate::limits::pass_and_warn(t, source_conn.as_mut(), &mut dests, &plan)?;
    // A destination left out (--keep-going) makes the run partial: the dry run says so by the
    // run's own exit status, so that `--dry-run && run` does not go on to a partial copy.
    // As the run would end: none left to commit is a failure (it said "partial", exit 4).
    let exit = if !dests.is_empty() && dests.iter().all(|d| d.error.is_some()) {
        Exit::CopyFailed
    } else if dests.iter().any(|d| d.error.is_some()) {
        Exit::Partial
    } else {
        Exit::Success
    };
    let mut value = plan_json(t, &plan, &dests, exit, &ending, &raw_columns);
    if let Some(input) = &input {
        value["plan"]["source"]["input"] = input.to_json();
    }
    // A signal that came while it planned stops it there, said (not the plan, exit 0).
    if let Some(signal) = crate::signals::received() {
        return Err(Fatal {
            exit: Exit::interrupted(signal),
            message: format!(
                "interrupted by {} while planning: nothing was copied",
                crate::signals::name(signal)
            ),
            server: None,
        }
        .into());
    }
    // A signal now exits without a document of its own: this one is being printed.
    crate::signals::printing_dry_run();
    if output.json {
        report::print_json(&value)?;
    } else {
        let mut text = String::from("copyman: dry run, nothing copied\n");
        text.push_str(&format!("  source: {}\n", t.source.shown()));
        if let Some(send) = &plan.send {
            if t.source.is_server() {
                text.push_str(&format!(
                    "    {}\n",
                    crate::run::source_begin(&t.statements, plan.measure.is_some())
                ));
            }
            text.push_str(&format!("    {send}\n"));
        }
        if let Some(end) = &ending.source {
            text.push_str(&format!("    {end}\n"));
        }
        if let Some(input) = &input {
            text.push_str(&format!("    input: {input}\n"));
        }
        if let Some((format, reason)) = format_said(t, &plan) {
            text.push_str(&format!("  format: {format} ({reason})\n"));
        }
        match plan.estimate {
            Estimate::Rows(n) => text.push_str(&format!("  estimate: about {n} rows\n")),
            Estimate::Bytes(n) => text.push_str(&format!("  estimate: {n} bytes\n")),
            Estimate::Unknown => {}
        }
        for (i, (dest, receive)) in dests.iter().zip(&plan.receive).enumerate() {
            text.push_str(&format!(
                "  destination {}: {}\n",
                i + 1,
                dest.endpoint.shown()
            ));
            if let Some(error) = &dest.error {
                text.push_str(&format!("    skipped: {error}\n"));
                continue;
            }
            if let Some(columns) = &plan.columns {
                text.push_str(&format!("    columns: {}\n", show_columns(columns)));
            } else if let Some(Some(columns)) = raw_columns.get(i) {
                text.push_str(&format!("    columns: {}\n", columns.join(", ")));
            }
            if dest.endpoint.is_server() {
                text.push_str("    BEGIN\n");
                if let Some(Some(truncate)) = plan.truncate.get(i) {
                    text.push_str(&format!("    {truncate}\n"));
                }
            }
            if let Some(receive) = receive {
                text.push_str(&format!("    {receive}\n"));
            }
            // In the transaction, before its end, as the run does it (it was said after the
            // COMMIT: cli43 F5).
            for carry in plan.sequences.get(i).into_iter().flatten() {
                text.push_str(&format!(
                    "    the sequence of {} advanced to the source's (never back)\n",
                    carry.column
                ));
            }
            if dest.endpoint.is_server() {
                text.push_str(&format!("    {}\n", ending.destination));
            }
        }
        // With stdout a destination (`--to -`, `--to /dev/stdout`), the plan goes to stderr: a
        // pipeline checked with --dry-run (`… --to - --dry-run | psql -c '\copy …'`) loaded the
        // plan as rows.
        let data_on_stdout = t.destinations.iter().any(|d| match d {
            Endpoint::Stdio => true,
            Endpoint::File(path) => crate::dest::own_descriptor(path) == Some(1),
            Endpoint::Server(_) => false,
        });
        if data_on_stdout {
            crate::progress::write_stderr(crate::progress::printable(&text).as_bytes());
        } else {
            report::print_stdout(&text)?;
        }
        // How the run would end, said last on stderr as a job's dry run says it (exit 4 with
        // nothing on stderr).
        if exit != Exit::Success {
            let skipped: Vec<String> = (dests.iter().enumerate())
                .filter(|(_, d)| d.error.is_some())
                .map(|(i, d)| format!("destination {} ({})", i + 1, d.endpoint.display()))
                .collect();
            let would = match exit {
                Exit::Partial => "would be partial",
                _ => "would fail",
            };
            crate::progress::println(&format!(
                "copyman: the run {would} (exit {}): skipped {}",
                exit.code(),
                skipped.join(", ")
            ));
        }
    }
    Ok(exit)
}

/// How a dry run's plan says each transaction ends, as the run ends it.
struct Ending {
    /// The source's end, for a user's `--send` (which may write); `None` for a table (read
    /// only) or a file.
    source: Option<String>,
    /// A server destination's end: COMMIT, or the two phases of `--atomic`.
    destination: String,
}

impl Ending {
    /// The ends of `t`'s transactions; under `--atomic`, asks the source whether it can
    /// prepare now, and warns as the run would where it cannot (copy41 F10: the one fact a
    /// DBA moving rows with `DELETE … RETURNING` needs was said only by the run).
    fn of(t: &Transfer, source_conn: Option<&mut Connection>) -> Self {
        let destination = match &t.atomic {
            Some(log) => format!(
                "PREPARE TRANSACTION, then COMMIT PREPARED once every destination {} \
                 (decision log {})",
                // --keep-going leaves one that fails out, and the others commit (cli43 F8).
                if t.keep_going {
                    "still in the run prepared (--keep-going: one that fails is left out, the \
                     others commit)"
                } else {
                    "prepared"
                },
                log.display()
            ),
            None => "COMMIT".to_owned(),
        };
        let source = match (&t.statements, source_conn) {
            (Statements::Raw { .. }, Some(conn)) => Some(match &t.atomic {
                None => "COMMIT after every destination committed (what the --send changed, \
                         if it writes)"
                    .to_owned(),
                Some(_) if crate::finish::source_can_prepare(conn) => {
                    "if the --send writes: PREPARE TRANSACTION with the destinations, COMMIT \
                     PREPARED with them"
                        .to_owned()
                }
                Some(_) => {
                    report::warn(format_args!(
                        "{} (if it writes)",
                        crate::finish::SOURCE_CANNOT_PREPARE
                    ));
                    "if the --send writes: checked before the decision, COMMIT after the \
                     destinations (not atomically: the source cannot prepare now)"
                        .to_owned()
                }
            }),
            _ => None,
        };
        Self {
            source,
            destination,
        }
    }
}

/// The format a dry run says and why: the plan's (a table's), or in `copy` the one its
/// statements name (the `--send`'s, or a file source's `--receive`'s).
pub(crate) fn format_said(t: &Transfer, plan: &Plan) -> Option<(String, String)> {
    if let Some(format) = plan.format {
        let reason = plan.format_reason.clone().unwrap_or_default();
        return Some((format.name().to_owned(), reason));
    }
    let Statements::Raw { send, receive } = &t.statements else {
        return None;
    };
    let (sql, whose) = match send {
        Some(send) => (send.as_str(), "the --send's"),
        None => (receive.iter().flatten().next()?.as_str(), "the --receive's"),
    };
    let format = statement::representation(sql)?.format;
    Some((format, whose.to_owned()))
}

/// What `--dry-run` knows of a file or stdin source's start.
enum Input {
    /// A regular file: its start was read and checked as a run would
    /// ([`crate::file_source::check_start`]); what it found.
    Read(String),
    /// Stdin, a FIFO or another file that is not a regular one: reading its start would take
    /// it from the run (or wait for its writer); why it is not read.
    NotRead(&'static str),
}

impl Input {
    fn to_json(&self) -> Value {
        match self {
            Self::Read(found) => json!({ "read": true, "found": found }),
            Self::NotRead(why) => json!({ "read": false, "found": Value::Null, "why": why }),
        }
    }
}

impl std::fmt::Display for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Read(found) => f.write_str(found),
            Self::NotRead(why) => write!(f, "not read until the run ({why})"),
        }
    }
}

/// For `--dry-run`: a regular file source's start read (only its start: nothing is consumed)
/// and decided on as the run would decide ([`crate::file_source::check_start`]: the format it
/// detects, which may plan the copy again as binary; a header that names the columns in
/// another order refused in the run's words); stdin and a FIFO are not read. `None` for a
/// server source.
///
/// # Errors
/// What the run would refuse about the start, with its exit status.
fn input(
    t: &Transfer,
    output: Output,
    plan: &mut Plan,
    source_conn: Option<&mut Connection>,
    dests: &mut [Dest<'_>],
) -> anyhow::Result<Option<Input>> {
    let path = match &t.source {
        Endpoint::Server(_) => return Ok(None),
        Endpoint::Stdio => return Ok(Some(Input::NotRead("stdin"))),
        Endpoint::File(path) => path,
    };
    match fs::metadata(path) {
        Ok(meta) if std::os::unix::fs::FileTypeExt::is_fifo(&meta.file_type()) => {
            return Ok(Some(Input::NotRead("a FIFO")));
        }
        Ok(meta) if !meta.is_file() => return Ok(Some(Input::NotRead("not a regular file"))),
        // A regular file; or none, which the open refuses as the run's would.
        _ => {}
    }
    let mut source = crate::file_source::FileSource::open(t, output.quiet)?;
    let start = crate::file_source::check_start(t, &mut source, plan, source_conn, dests)?;
    Ok(Some(Input::Read(crate::file_source::describe_start(
        t, &start, plan,
    ))))
}

/// What creates a table whose schema its destination lacks: the schema first, as pg_dump's
/// `--table` writes none (recheck66 F13).
fn schema_hint(table: &str) -> String {
    format!(
        " (create the schema there first, then the table: e.g. pg_dump --section=pre-data \
         --schema of the source for the schema's tables, or CREATE SCHEMA, then pg_dump \
         --section=pre-data --table '{table}' of the source, into it)"
    )
}

/// A `--send` or `--receive` whose column list names a column twice, which PostgreSQL refuses
/// (42701): said as such before anything (types66 F7: refused as columns in another order, with
/// advice that did not mend it).
fn named_twice(send: Option<&str>, receive: &[Option<String>]) -> anyhow::Result<()> {
    let statements = (send.map(|s| ("the --send".to_owned(), s)).into_iter()).chain(
        (receive.iter().enumerate()).filter_map(|(i, r)| {
            Some((
                format!("the --receive of destination {}", i + 1),
                r.as_deref()?,
            ))
        }),
    );
    for (whose, sql) in statements {
        let Some(Some(names)) = copyman_core::file_start::copy_columns(sql) else {
            continue;
        };
        let twice = (names.iter().enumerate()).find(|(i, n)| names[..*i].contains(n));
        if let Some((_, name)) = twice {
            return Err(Fatal {
                exit: Exit::Usage,
                message: format!(
                    "{whose} names column \"{name}\" twice in its column list, which COPY \
                     refuses (SQLSTATE 42701: column \"{name}\" specified more than once)"
                ),
                server: None,
            }
            .into());
        }
    }
    Ok(())
}

/// A `--receive` naming a table, schema or column its destination does not have: the command's
/// error, exit 2 with what creates it, as table mode's (files65 F10: exit 1, "could not start
/// its COPY", where the help says 2); under `--keep-going` that destination is left out.
fn receive_lacking(
    t: &Transfer,
    receive: &[Option<String>],
    dests: &mut [Dest<'_>],
) -> anyhow::Result<()> {
    // Under --keep-going each is left out, but where none would be left the first is the
    // command's error, as without it (recheck66 F11: exit 1, "copy failed", no hint).
    let live = dests.iter().filter(|d| d.error.is_none()).count();
    let mut left_out = 0;
    for (i, dest) in dests.iter_mut().enumerate() {
        let (Some(Some(sql)), Some(conn)) = (receive.get(i), dest.conn.as_mut()) else {
            continue;
        };
        let Some(error) = receive_lacks(conn, sql) else {
            continue;
        };
        left_out += 1;
        let written = statement::copy_table(sql).unwrap_or_default();
        let create = match error.sqlstate.as_deref() {
            Some("3F000") => schema_hint(written),
            Some("42P01") => format!(
                " (create it there first, e.g. from its definition on the server the data comes \
                 from: pg_dump --section=pre-data --table '{written}' of that server, into it)"
            ),
            _ => String::new(),
        };
        let whom = format!("destination {} ({})", i + 1, dest.endpoint.display());
        let message = format!("{whom}: the --receive's COPY cannot start there: {error}{create}");
        if !t.keep_going || left_out == live {
            return Err(Fatal {
                exit: Exit::Usage,
                message,
                server: Some((whom, error)),
            }
            .into());
        }
        report::log(&message);
        dest.fail_with(error);
    }
    Ok(())
}

/// The table or a column a `COPY table [(columns)] FROM STDIN` names that `conn`'s server does
/// not have, as its COPY would say it (42P01, 42703), from the catalog: no lock taken (a probe
/// `SELECT` of the table would wait behind a migration's, before anything watches). `None`
/// where it has them or that cannot be told (a `COPY (query)`, a name not read here).
fn receive_lacks(conn: &mut Connection, sql: &str) -> Option<ErrorInfo> {
    let table = statement::copy_table(sql)?;
    let columns = copyman_core::file_start::copy_columns(sql)?;
    let found = |conn: &mut Connection, query: &str| -> Option<Vec<String>> {
        let rows = conn.query(query).ok()?;
        Some(
            rows.into_iter()
                .filter_map(|r| r.into_iter().next()?)
                .collect(),
        )
    };
    // Named as the server names it: unquoted, its schema first where given (it read
    // `relation ""M""`, and a missing schema as a missing table: recheck66 F2); read as the
    // server reads it (`U&"t\0061ble"` is `table`).
    let parsed = TableName::parse(table).ok()?;
    let oid = format!("pg_catalog.to_regclass({})", parsed.regclass_literal());
    let shown = match &parsed.schema {
        Some(schema) => format!("{}.{}", schema.as_str(), parsed.name.as_str()),
        None => parsed.name.as_str().to_owned(),
    };
    let exists = found(conn, &format!("SELECT ({oid} IS NOT NULL)::text"))?;
    if exists.first().map(String::as_str) == Some("false") {
        let schema_exists = match &parsed.schema {
            Some(schema) => found(
                conn,
                &format!(
                    "SELECT EXISTS (SELECT FROM pg_catalog.pg_namespace WHERE nspname = {})::text",
                    copyman_job::sql::literal(schema.as_str())
                ),
            )?
            .first()
            .map(String::as_str)
                != Some("false"),
            None => true,
        };
        return Some(match (schema_exists, &parsed.schema) {
            (false, Some(schema)) => ErrorInfo {
                sqlstate: Some("3F000".to_owned()),
                message: format!("schema \"{}\" does not exist", schema.as_str()),
            },
            _ => ErrorInfo {
                sqlstate: Some("42P01".to_owned()),
                message: format!("relation \"{shown}\" does not exist"),
            },
        });
    }
    let has = found(
        conn,
        &format!(
            "SELECT attname::text FROM pg_catalog.pg_attribute WHERE attrelid = {oid} \
             AND attnum > 0 AND NOT attisdropped"
        ),
    )?;
    let missing = columns?.into_iter().find(|c| !has.contains(c))?;
    Some(ErrorInfo {
        sqlstate: Some("42703".to_owned()),
        message: format!(
            "column \"{missing}\" of relation \"{}\" does not exist",
            parsed.name.as_str()
        ),
    })
}

/// Why a `COPY table [(columns)] …` statement fails on `conn`'s server at its start: its table or
/// a column it names is not there (42P01, 42703), as a `SELECT` of them says; `None` where it
/// starts (or is a `COPY (query)`, described elsewhere). Only those: a role that may INSERT and
/// not SELECT fails the probe (42501), not its COPY FROM.
fn copy_fails(conn: &mut Connection, sql: &str) -> Option<ErrorInfo> {
    let table = statement::copy_table(sql)?;
    let columns = match copyman_core::file_start::copy_columns(sql)? {
        Some(names) => (names.iter())
            .map(|n| copyman_core::file_start::column_name(n))
            .collect::<Vec<_>>()
            .join(", "),
        None => "*".to_owned(),
    };
    let probe = format!("SELECT {columns} FROM {table} LIMIT 0");
    let error = describe_sync(&conn.query(&probe).err()?);
    matches!(error.sqlstate.as_deref(), Some("42P01" | "42703")).then_some(error)
}

/// What `conn`'s server (destination `i`, 0-based) says when `sql`, a `--receive`, starts: its
/// refusal of an option, a column, a `WHERE`, an `ENCODING`, as the run's first statement would
/// be refused (copy45 F2: the dry run approved them all). The COPY is started in a transaction
/// rolled back at once, and ended before any row (a COPY started where it was not asked for is
/// refused with CopyFail by the session itself). Not tried where the table has a `BEFORE
/// STATEMENT` INSERT trigger, which fires as a COPY starts: a dry run runs none of the user's
/// code.
fn copy_start_fails(conn: &mut Connection, sql: &str, i: usize) -> Option<ErrorInfo> {
    use copyman_core::session::TransactionStatus;
    let table = statement::copy_table(sql)?;
    if conn.session().transaction_status() != TransactionStatus::Idle {
        return None;
    }
    // tgtype: ROW 1, BEFORE 2, INSERT 4 — before the statement, on INSERT (and so COPY FROM).
    let fires = format!(
        "SELECT 1 FROM pg_trigger WHERE tgrelid = to_regclass({}) AND tgtype & 7 = 6 \
         AND tgenabled <> 'D'",
        sql::literal(table)
    );
    if !conn.query(&fires).ok()?.is_empty() {
        return None;
    }
    conn.execute("BEGIN").ok()?;
    // Not behind a lock on the table (a CREATE INDEX, a session idle in its transaction): the
    // trial is given up, said, rather than waited for unsaid (recheck46 F2); the run says its
    // own waits.
    let bounded = format!("SET LOCAL lock_timeout = {TRIAL_LOCK_TIMEOUT_MS}");
    if conn.execute(&bounded).is_err() {
        let _ = conn.execute("ROLLBACK");
        return None;
    }
    // Dropped once started, the receiver ends its COPY with CopyFail; ROLLBACK reads the answer.
    let started =
        copyman_sync::Receiver::start(&mut copyman_sync::StatementReceiver::new(conn, sql));
    let _ = conn.execute("ROLLBACK");
    let error = report::describe(&*started.err()?);
    if error.sqlstate.as_deref() == Some("55P03") {
        report::warn(format!(
            "destination {}: the --receive's COPY could not be tried: its table is locked by \
             another session now ({error}); the run waits for that lock (said as it waits; \
             --lock-timeout bounds it)",
            i + 1
        ));
        return None;
    }
    error.sqlstate.is_some().then_some(error)
}

/// How long a dry run's trial of a `--receive`'s COPY waits for a lock on its table (ms).
const TRIAL_LOCK_TIMEOUT_MS: u32 = 1000;

/// The columns a `COPY table [(columns)] …` or `COPY (query) …` writes or reads on `conn`'s
/// server (its list, the table's but its generated ones, the query's as its server describes
/// it); `None` where that cannot be told.
fn copy_columns(conn: &mut Connection, sql: &str) -> Option<Vec<String>> {
    if let Some(Some(names)) = copyman_core::file_start::copy_columns(sql) {
        return Some(names);
    }
    let names = |rel: Relation| {
        rel.columns
            .iter()
            .map(|c| c.name.as_str().to_owned())
            .collect()
    };
    // A query's, as its source describes it (a `SELECT id, a, b` into two columns failed at
    // its first row, its dry run said nothing).
    if let Some(query) = statement::copy_query(sql) {
        return query_columns(conn, query, None)
            .ok()
            .map(|(rel, _)| names(rel));
    }
    crate::file_source::copy_relation_named(conn, sql).map(|(_, rel)| names(rel))
}

/// The plan as `--json` shows it for `--dry-run`.
fn plan_json(
    t: &Transfer,
    plan: &Plan,
    dests: &[Dest<'_>],
    exit: Exit,
    ending: &Ending,
    raw_columns: &[Option<Vec<String>>],
) -> Value {
    let columns = plan
        .columns
        .as_ref()
        .map(|c| c.iter().map(|c| c.as_str().to_owned()).collect::<Vec<_>>());
    let (format, format_reason) = format_said(t, plan).unzip();
    let estimate = match plan.estimate {
        Estimate::Rows(n) => json!({ "rows": n }),
        Estimate::Bytes(n) => json!({ "bytes": n }),
        Estimate::Unknown => Value::Null,
    };
    // Why it would not succeed, as the run's document says it: its first destination that
    // would fail.
    let failed = (dests.iter().enumerate())
        .find_map(|(i, d)| Some((i, d, d.error.as_ref()?)))
        .filter(|_| exit != Exit::Success);
    json!({
        "status": match exit {
            Exit::Success => "ok",
            Exit::Partial => "partial",
            _ => "failed",
        },
        "exit_code": exit.code(),
        "error": failed.map(|(i, d, e)| format!(
            "destination {} ({}) failed: {}",
            i + 1,
            d.endpoint.display(),
            e.message
        )),
        "server": failed.map(|(i, ..)| format!("destination {}", i + 1)),
        "endpoint": failed.map(|(_, d, _)| d.endpoint.display()),
        "sqlstate": failed.and_then(|(.., e)| e.sqlstate.clone()),
        "dry_run": true,
        "warnings": report::warnings(),
        // As the run's document says them (recheck45 F4.1: a dry run named no table).
        "table": plan.table.as_ref().map(ToString::to_string),
        "target_table": crate::run::target_table(t),
        "format": format,
        "plan": {
            "source": {
                "endpoint": t.source.display(),
                "reached": t.source.reached(),
                "begin": (plan.send.is_some() && t.source.is_server())
                    .then(|| crate::run::source_begin(&t.statements, plan.measure.is_some())),
                "statement": plan.send,
                "end": ending.source,
            },
            "format": format,
            "format_reason": format_reason,
            "estimate": estimate,
            "destinations": dests.iter().zip(&plan.receive).zip(&plan.sequences)
                .zip(&plan.truncate).enumerate()
                .map(|(i, (((d, receive), carries), truncate))| json!({
                "server": format!("destination {}", i + 1),
                "endpoint": d.endpoint.display(),
                "reached": d.endpoint.reached(),
                "columns": match (&d.error, &columns) {
                    (Some(_), _) => Value::Null,
                    (None, Some(columns)) => json!(columns),
                    (None, None) => json!(raw_columns.get(i).cloned().flatten()),
                },
                "truncate": truncate,
                "statement": receive,
                "end": (d.error.is_none() && d.endpoint.is_server())
                    .then_some(&ending.destination),
                "sequences": carries.iter().map(|c| c.column.as_str()).collect::<Vec<_>>(),
                "error": d.error.as_ref().map(report::error_json),
            })).collect::<Vec<_>>(),
        },
    })
}
