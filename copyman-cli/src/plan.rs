//! Step 2 of a run: the statements each side runs, the format, and what the progress bar can
//! know in advance.

use std::fs;

use copyman_sync::Connection;

use crate::args::{Endpoint, Statements, Transfer};
use crate::dest::Dest;
use crate::progress::Estimate;
use crate::report::{self, Exit, Fatal};
use crate::run::describe_sync;
use crate::sql::Format;

/// The statements and what the bar can know in advance.
pub(crate) struct Plan {
    pub(crate) send: Option<String>,
    pub(crate) receive: Vec<Option<String>>,
    pub(crate) truncate: Option<String>,
    pub(crate) format: Option<Format>,
    pub(crate) estimate: Estimate,
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
        }),
        Statements::Table {
            copy,
            truncate,
            format,
        } => {
            let mut select = false;
            let mut estimate = file_estimate;
            let mut source_version = None;
            if let Some(conn) = source {
                source_version = conn.session().server_version_num();
                let rows = conn.query(&copy.estimate_query()).map_err(|e| Fatal {
                    exit: Exit::CopyFailed,
                    message: format!("source table {}: {}", copy.table, describe_sync(&e)),
                })?;
                let row = rows.first().ok_or_else(|| Fatal {
                    exit: Exit::CopyFailed,
                    message: format!("source table {} not found", copy.table),
                })?;
                // Views, partitioned and foreign tables are copied with COPY (SELECT …).
                select = row.first().and_then(Option::as_deref) != Some("r");
                let reltuples: i64 = row
                    .get(1)
                    .and_then(Option::as_deref)
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(-1);
                if copy.condition.is_none() && reltuples > 0 {
                    estimate = Estimate::Rows(reltuples.unsigned_abs());
                }
            }
            let format = format.unwrap_or_else(|| default_format(source_version, t, dests));
            report::log(format_args!("format: {}", format.name()));
            let send = t.source.is_server().then(|| copy.copy_out(format, select));
            let receive = dests
                .iter()
                .map(|d| d.endpoint.is_server().then(|| copy.copy_in(format)))
                .collect();
            Ok(Plan {
                send,
                receive,
                truncate: truncate.then(|| copy.truncate()),
                format: Some(format),
                estimate,
            })
        }
    }
}

/// Binary between servers of one major version, else text.
pub(crate) fn default_format(
    source_version: Option<u32>,
    t: &Transfer,
    dests: &[Dest<'_>],
) -> Format {
    let major = |v: u32| if v >= 100_000 { v / 10_000 } else { v / 100 };
    let Some(source) = source_version.map(major) else {
        return Format::Text;
    };
    let same = t.destinations.iter().all(Endpoint::is_server)
        && dests.iter().all(|d| {
            d.conn
                .as_ref()
                .and_then(|c| c.session().server_version_num())
                .is_some_and(|v| major(v) == source)
        });
    if same { Format::Binary } else { Format::Text }
}
