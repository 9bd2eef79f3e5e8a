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
use crate::run::{connect, describe_sync};
use crate::sql::{self, Format, Ident, Relation, TableCopy};

/// The statements and what the bar can know in advance.
pub(crate) struct Plan {
    pub(crate) send: Option<String>,
    pub(crate) receive: Vec<Option<String>>,
    pub(crate) truncate: Option<String>,
    pub(crate) format: Option<Format>,
    pub(crate) estimate: Estimate,
    /// Why this format (`table` only).
    pub(crate) format_reason: Option<String>,
    /// The columns copied, by name (`table` only; `None`: the destination's own, positionally,
    /// for a file source without `--columns`).
    pub(crate) columns: Option<Vec<Ident>>,
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
    match &t.statements {
        Statements::Raw { send, receive } => Ok(Plan {
            send: send.clone(),
            receive: receive.clone(),
            truncate: None,
            format: None,
            estimate: file_estimate,
            format_reason: None,
            columns: None,
        }),
        Statements::Table {
            copy,
            truncate,
            format,
        } => {
            let mut plan = table_plan(t, copy, *format, source, dests)?;
            if plan.estimate == Estimate::Unknown {
                plan.estimate = file_estimate;
            }
            plan.truncate = truncate.then(|| copy.truncate());
            Ok(plan)
        }
    }
}

/// Looks `table` up on one server.
fn lookup(conn: &mut Connection, table: &sql::TableName) -> Result<Option<Relation>, ErrorInfo> {
    let version = conn.session().server_version_num();
    let rows = conn
        .query(&sql::catalog_query(table, version))
        .map_err(|e| describe_sync(&e))?;
    if rows.is_empty() {
        return Ok(None);
    }
    Relation::from_rows(&rows)
        .map(Some)
        .map_err(|message| ErrorInfo {
            sqlstate: None,
            message,
        })
}

fn table_plan(
    t: &Transfer,
    copy: &TableCopy,
    forced: Option<Format>,
    source: Option<&mut Connection>,
    dests: &mut [Dest<'_>],
) -> anyhow::Result<Plan> {
    // The catalogs: once per server, before anything else is sent.
    let mut source_version = None;
    let mut source_rel = None;
    if let Some(conn) = source {
        source_version = conn.session().server_version_num();
        let rel = lookup(conn, &copy.table).map_err(|e| Fatal {
            exit: Exit::CopyFailed,
            message: format!("source table {}: {e}", copy.table),
        })?;
        source_rel = Some(rel.ok_or_else(|| Fatal {
            exit: Exit::CopyFailed,
            message: format!("source table {} not found", copy.table),
        })?);
    }
    let mut dest_rels: Vec<(usize, Relation)> = Vec::new();
    for (i, dest) in dests.iter_mut().enumerate() {
        let Some(conn) = dest.conn.as_mut() else {
            continue;
        };
        let found = lookup(conn, copy.target()).and_then(|rel| {
            rel.ok_or_else(|| ErrorInfo {
                sqlstate: None,
                message: "not found".to_owned(),
            })
        });
        match found {
            Ok(rel) => dest_rels.push((i, rel)),
            Err(error) => {
                let message = format!(
                    "destination {} ({}): table {}: {error}",
                    i + 1,
                    dest.endpoint.display(),
                    copy.target()
                );
                if !t.keep_going {
                    return Err(Fatal {
                        exit: Exit::CopyFailed,
                        message,
                    }
                    .into());
                }
                report::log(&message);
                dest.fail_with(ErrorInfo {
                    sqlstate: error.sqlstate,
                    message: format!("table {}: {}", copy.target(), error.message),
                });
            }
        }
    }
    let labels: Vec<String> = dests
        .iter()
        .enumerate()
        .map(|(i, d)| format!("destination {} ({})", i + 1, d.endpoint.display()))
        .collect();
    let dest_view: Vec<(&str, &Relation)> = dest_rels
        .iter()
        .map(|(i, rel)| (labels[*i].as_str(), rel))
        .collect();

    let columns =
        resolve_columns(&copy.columns, source_rel.as_ref(), &dest_view).map_err(|message| {
            Fatal {
                exit: Exit::Usage,
                message,
            }
        })?;

    let all_servers = t.source.is_server() && t.destinations.iter().all(Endpoint::is_server);
    let same_major = same_major(source_version, dests);
    let (format, reason) = match (forced, &columns, &source_rel) {
        (Some(format), _, _) => {
            if format == Format::Binary
                && let (Some(columns), Some(source)) = (&columns, &source_rel)
                && let Err(why) = binary_types(columns, source, &dest_view)
            {
                report::warn(format!(
                    "--format binary, but {why}: binary COPY does not convert values \
                             (--format text does)"
                ));
            }
            let given = match format {
                Format::Csv => "--format csv, --header or a *.csv file",
                Format::Text => "--format text",
                Format::Binary => "--format binary",
            };
            (format, format!("given: {given}"))
        }
        (None, Some(columns), Some(source)) if all_servers => {
            if !same_major {
                (
                    Format::Text,
                    "the servers' major versions differ".to_owned(),
                )
            } else {
                match binary_types(columns, source, &dest_view) {
                    Ok(()) => (
                        Format::Binary,
                        "every copied column has the same type on every server".to_owned(),
                    ),
                    Err(why) => (Format::Text, why),
                }
            }
        }
        (None, _, _) => (Format::Text, "a file or stdin is at one end".to_owned()),
    };
    report::log(format_args!("format: {} ({reason})", format.name()));
    if let Some(columns) = &columns {
        report::log(format_args!("columns: {}", show_columns(columns)));
    }

    // A view, a partitioned or foreign table or a materialized view is read with
    // COPY (SELECT …), as is a generated column (`--columns`), which COPY's column list refuses.
    let select = source_rel.as_ref().is_some_and(|r| {
        r.kind != "r"
            || columns
                .iter()
                .flatten()
                .any(|c| r.column(c).is_some_and(|c| c.generated))
    });
    let mut resolved = copy.clone();
    resolved.columns = columns.clone().unwrap_or_default();
    let send = t
        .source
        .is_server()
        .then(|| resolved.copy_out(format, select));
    let receive = dests
        .iter()
        .map(|d| d.endpoint.is_server().then(|| resolved.copy_in(format)))
        .collect();
    let estimate = match (&source_rel, &copy.condition) {
        (Some(rel), None) => rel.estimate.map_or(Estimate::Unknown, Estimate::Rows),
        _ => Estimate::Unknown,
    };
    Ok(Plan {
        send,
        receive,
        truncate: None,
        format: Some(format),
        estimate,
        format_reason: Some(reason),
        columns,
    })
}

fn show_columns(columns: &[Ident]) -> String {
    columns
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The columns to copy, by name, or `None` for "as the destination has them" (a file source
/// without `--columns`).
///
/// # Errors
/// A message listing, per destination, the columns missing or extra (without `--columns`) or
/// the requested columns a side lacks.
pub(crate) fn resolve_columns(
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
                return Err(format!(
                    "--columns: the source table has no column {}",
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
        // A file's fields are positional: the destination's own columns, in its order.
        return Ok(None);
    };
    let mut problems = Vec::new();
    for (label, rel) in dests {
        let mut missing = Vec::new();
        for name in &columns {
            match rel.column(name) {
                None => missing.push(name.to_string()),
                Some(c) if c.generated => missing.push(format!("{name} (generated there)")),
                Some(_) => {}
            }
        }
        let mut extra = Vec::new();
        if requested.is_empty() {
            for c in rel.columns.iter().filter(|c| !c.generated) {
                if !columns.contains(&c.name) {
                    let generated_at_source = source
                        .and_then(|s| s.column(&c.name))
                        .is_some_and(|s| s.generated);
                    extra.push(if generated_at_source {
                        format!("{} (generated on the source)", c.name)
                    } else {
                        c.name.to_string()
                    });
                }
            }
        }
        let mut said = Vec::new();
        if !missing.is_empty() {
            said.push(format!("lacks {}", missing.join(", ")));
        }
        if !extra.is_empty() {
            said.push(format!("has {} that the source has not", extra.join(", ")));
        }
        if !said.is_empty() {
            problems.push(format!("{label} {}", said.join(" and ")));
        }
    }
    if problems.is_empty() {
        return Ok(Some(columns));
    }
    let what = if requested.is_empty() {
        "the source's and the destinations' columns differ (table mode copies by name; choose \
         the columns to copy with --columns)"
    } else {
        "--columns names columns a destination cannot take"
    };
    Err(format!("{what}: {}", problems.join("; ")))
}

/// Whether binary COPY carries every copied column faithfully: the same type (name and
/// modifier) on every side, of a kind whose binary form is safe between servers.
///
/// # Errors
/// Why not, naming the first column and side that differ.
pub(crate) fn binary_types(
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
            if to.type_name != from.type_name {
                return Err(format!(
                    "column {name} is {} on the source but {} on {label}",
                    from.type_name, to.type_name
                ));
            }
            if to.binary.as_ref() != Some(key) {
                return Err(format!(
                    "column {name} is of type {}, whose binary form carries type OIDs that \
                     differ on {label}",
                    from.type_name
                ));
            }
        }
    }
    Ok(())
}

/// Whether every server destination runs the source's major version.
fn same_major(source_version: Option<u32>, dests: &[Dest<'_>]) -> bool {
    let major = |v: u32| if v >= 100_000 { v / 10_000 } else { v / 100 };
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

/// A copy forced to `--format binary` that a server refused gets a hint to use text.
pub(crate) fn hint_forced_binary(t: &Transfer, report: &mut RunReport) {
    let forced = matches!(
        t.statements,
        Statements::Table {
            format: Some(Format::Binary),
            ..
        }
    );
    if !forced {
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
/// opened, nothing but catalog queries reaches a server.
///
/// # Errors
/// As a run's planning: connections (exit 3), a missing table, differing columns (exit 2).
pub(crate) fn dry_run(t: &Transfer, output: Output) -> anyhow::Result<Exit> {
    let mut warned = std::collections::BTreeSet::new();
    let mut source_conn = match &t.source {
        Endpoint::Server(spec) => Some(connect(spec, "source", &mut warned)?),
        _ => None,
    };
    let mut dests: Vec<Dest<'_>> = t.destinations.iter().map(Dest::new).collect();
    for dest in &mut dests {
        if let Endpoint::Server(spec) = dest.endpoint {
            dest.conn = Some(connect(spec, "destination", &mut warned)?);
        }
    }
    let plan = plan(t, source_conn.as_mut(), &mut dests)?;
    let value = plan_json(t, &plan, &dests);
    if output.json {
        report::print_json(&value)?;
    } else {
        let mut text = String::from("copyman: dry run, nothing copied\n");
        text.push_str(&format!("  source: {}\n", t.source.display()));
        if let Some(send) = &plan.send {
            text.push_str(&format!("    {send}\n"));
        }
        if let Some(format) = plan.format {
            text.push_str(&format!(
                "  format: {} ({})\n",
                format.name(),
                plan.format_reason.as_deref().unwrap_or("")
            ));
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
                dest.endpoint.display()
            ));
            if let Some(error) = &dest.error {
                text.push_str(&format!("    skipped: {error}\n"));
                continue;
            }
            if let Some(columns) = &plan.columns {
                text.push_str(&format!("    columns: {}\n", show_columns(columns)));
            }
            if dest.endpoint.is_server() {
                text.push_str("    BEGIN\n");
                if let Some(truncate) = &plan.truncate {
                    text.push_str(&format!("    {truncate}\n"));
                }
            }
            if let Some(receive) = receive {
                text.push_str(&format!("    {receive}\n"));
            }
        }
        print!("{text}");
    }
    Ok(Exit::Success)
}

/// The plan as `--json` shows it for `--dry-run`.
fn plan_json(t: &Transfer, plan: &Plan, dests: &[Dest<'_>]) -> Value {
    let columns = plan
        .columns
        .as_ref()
        .map(|c| c.iter().map(|c| c.as_str().to_owned()).collect::<Vec<_>>());
    let estimate = match plan.estimate {
        Estimate::Rows(n) => json!({ "rows": n }),
        Estimate::Bytes(n) => json!({ "bytes": n }),
        Estimate::Unknown => Value::Null,
    };
    json!({
        "status": "ok",
        "exit_code": Exit::Success.code(),
        "dry_run": true,
        "format": plan.format.map(Format::name),
        "plan": {
            "source": { "endpoint": t.source.display(), "statement": plan.send },
            "format": plan.format.map(Format::name),
            "format_reason": plan.format_reason,
            "estimate": estimate,
            "destinations": dests.iter().zip(&plan.receive).map(|(d, receive)| json!({
                "endpoint": d.endpoint.display(),
                "columns": if d.error.is_none() { json!(columns) } else { Value::Null },
                "truncate": plan.truncate.as_ref().filter(|_| d.endpoint.is_server()),
                "statement": receive,
                "error": d.error.as_ref().map(report::error_json),
            })).collect::<Vec<_>>(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::{Column, parse_columns};

    fn rel(columns: &[(&str, &str, bool, Option<&str>)]) -> Relation {
        Relation {
            kind: "r".into(),
            estimate: None,
            columns: columns
                .iter()
                .map(|&(name, type_name, generated, binary)| Column {
                    name: parse_columns(&format!("\"{name}\"")).unwrap().remove(0),
                    type_name: type_name.into(),
                    generated,
                    binary: binary.map(str::to_owned),
                })
                .collect(),
        }
    }

    fn names(columns: &[Ident]) -> Vec<&str> {
        columns.iter().map(Ident::as_str).collect()
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
                r#"destination 1 lacks "b" and has "c" that the source has not; destination 2 lacks "b" (generated there)"#
            ),
            "{err}"
        );
        assert!(!err.contains("destination 3"), "{err}");
        // --columns picks what both sides have.
        let picked = parse_columns("a").unwrap();
        let columns = resolve_columns(&picked, Some(&source), &[("d1", &d1), ("d2", &d2)])
            .unwrap()
            .unwrap();
        assert_eq!(names(&columns), ["a"]);
        // … and must exist everywhere.
        let err = resolve_columns(&parse_columns("b").unwrap(), Some(&source), &[("d1", &d1)])
            .unwrap_err();
        assert!(err.contains(r#"d1 lacks "b""#), "{err}");
        let err = resolve_columns(&parse_columns("zz").unwrap(), Some(&source), &[]).unwrap_err();
        assert!(err.contains(r#"no column "zz""#), "{err}");
        // A file source without --columns: the destination's own columns.
        assert_eq!(resolve_columns(&[], None, &[("d1", &d1)]), Ok(None));
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
}
