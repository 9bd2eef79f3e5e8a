//! `copyman demo`: throwaway clusters, a sample table fanned out, every copy verified.
//!
//! Needs nothing but the PostgreSQL server binaries (found as copyman-cluster finds them; run as
//! root, the servers run as the OS user `postgres`). The clusters live in a temporary directory
//! and are removed at the end, also when the demo fails or is interrupted (copyman-cluster's watchdog).

use std::io::{self, Write};
use std::panic;
use std::thread;
use std::time::Instant;

use copyman_cluster::Cluster;
use copyman_sync::{Connection, Interrupter};
use indicatif::{HumanBytes, HumanCount};
use serde_json::json;

use crate::args::{Endpoint, Output, Safety, Statements, Transfer};
use crate::conn::{self, Env};
use crate::progress;
use crate::report::{self, Exit, Fatal};
use crate::run;
use crate::signals;
use crate::sql::{TableCopy, TableName};

/// The sample table.
const TABLE: &str = "demo_items";

/// Its definition, the same on every cluster: several types, some NULLs.
const CREATE: &str = "CREATE TABLE demo_items (
    id          int8 PRIMARY KEY,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL,
    price       numeric(12,2),
    description text
)";

/// The sample rows: `$1` is the row count.
const FILL: &str = "INSERT INTO demo_items
SELECT g,
       'item ' || g,
       timestamptz '2024-01-01 00:00:00+00' + g * interval '17 seconds',
       CASE WHEN g % 97 = 0 THEN NULL ELSE round((g % 100000) * 0.37 + 0.99, 2) END,
       CASE WHEN g % 31 = 0 THEN NULL
            ELSE left(md5(g::text) || ' lorem ipsum dolor sit amet, consectetur ' || md5((g * 7)::text),
                      70 + (g % 21)::int) END
FROM generate_series(1, $1::int8) AS g";

/// Row count and an order-independent checksum: the sum of a 64-bit hash (md5 prefix) of every
/// row's text. Cheaper than md5(string_agg(… ORDER BY …)) (no sort, no 100+ MB string) and as
/// good at catching a lost, doubled or altered row.
const CHECKSUM: &str = "SELECT count(*), \
    coalesce(sum(('x' || left(md5(t::text), 16))::bit(64)::int8::numeric), 0) \
    FROM demo_items AS t";

/// Runs the demo; exit 0 only when every destination verified.
///
/// # Errors
/// A cluster that cannot start, a failing setup statement.
pub(crate) fn run(rows: u64, destinations: usize, output: Output) -> anyhow::Result<Exit> {
    // A closed stdout (`copyman demo | head -3`) stops the demo at its next line, exit 1 with a
    // word on stderr, until it has verified: a smoke test must not pass on a demo that never
    // ran. Once verified, the rest of its lines are dropped and its result stands.
    let say = |line: String| -> Result<(), Fatal> {
        if output.quiet || output.json {
            return Ok(());
        }
        let mut out = io::stdout().lock();
        writeln!(out, "{line}")
            .and_then(|()| out.flush())
            .map_err(|e| stdout_failed(&e))
    };
    // A signal stops the demo at its next step; its clusters go with it (dropped on return).
    // The demo's own statements (the sample rows' INSERT, the checksums) are given up then:
    // they send nothing until they end, and would hold the stop for as long.
    if let Err(e) = signals::install_with(signals::DEMO_STOPPING) {
        report::warn(format_args!("cannot handle signals: {e}"));
    }
    let interrupter = Interrupter::new().ok();
    let interruptible = || {
        if let Some(interrupter) = interrupter.clone() {
            signals::set_interrupt(move || interrupter.interrupt());
        }
    };
    interruptible();
    let stop = || match signals::received() {
        Some(signal) => Err(Fatal {
            exit: Exit::interrupted(signal),
            server: None,
            message: format!(
                "interrupted by {}: the demo stopped, its clusters are removed",
                signals::name(signal)
            ),
        }),
        None => Ok(()),
    };
    say(format!(
        "copyman demo: {} to {destinations} destination{}",
        progress::rows(rows),
        if destinations == 1 { "" } else { "s" }
    ))?;

    let clock = Instant::now();
    let clusters = start_clusters(destinations + 1)?;
    stop()?;
    let (source, targets) = clusters.split_first().expect("at least two clusters");
    say(format!(
        "  started {} throwaway clusters in {:.1} s (ports {})",
        clusters.len(),
        clock.elapsed().as_secs_f64(),
        clusters
            .iter()
            .map(|c| c.port().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    ))?;

    let clock = Instant::now();
    let setup = |cluster: &Cluster, fill: bool| -> anyhow::Result<()> {
        let mut conn = Connection::connect(&cluster.config("postgres"))?;
        conn.set_interrupter(interrupter.clone());
        conn.execute(CREATE)?;
        if fill {
            conn.execute(&FILL.replace("$1", &rows.to_string()))?;
            // Gives the planner's row estimate, which the progress bar uses for its ETA.
            conn.execute("ANALYZE demo_items")?;
        }
        Ok(())
    };
    if let Err(e) = setup(source, true) {
        stop()?;
        return Err(setup_error("source", e.as_ref()).into());
    }
    stop()?;
    for (i, target) in targets.iter().enumerate() {
        setup(target, false)
            .map_err(|e| setup_error(&format!("destination {}", i + 1), e.as_ref()))?;
    }
    say(format!(
        "  created {TABLE} on every cluster and {} on the source in {:.1} s",
        progress::rows(rows),
        clock.elapsed().as_secs_f64()
    ))?;

    // The same path as `copyman table demo_items --from SOURCE --to D1 --to D2 …`.
    let env = Env::default();
    let endpoint = |cluster: &Cluster| -> anyhow::Result<Endpoint> {
        let spec = conn::resolve(&cluster.url("postgres"), &env).map_err(|e| Fatal {
            exit: Exit::CopyFailed,
            server: None,
            message: e.to_string(),
        })?;
        Ok(Endpoint::Server(Box::new(spec)))
    };
    let transfer = Transfer {
        source: endpoint(source)?,
        destinations: targets
            .iter()
            .map(endpoint)
            .collect::<anyhow::Result<_>>()?,
        statements: Statements::Table {
            copy: TableCopy {
                table: TableName::parse(TABLE).expect("the demo table's name is valid"),
                target: None,
                columns: Vec::new(),
                condition: None,
                header: false,
                encoding: None,
            },
            truncate: false,
            format: None,
            format_given: false,
            csv_for_header: false,
        },
        keep_going: false,
        safety: Safety::default(),
        atomic: None,
        dry_run: false,
    };
    // As it would be typed (the URLs, passwords hidden): `user@host:port/db` is not a CONN.
    let mut command = format!(
        "copyman table {TABLE} --from {}",
        conn::redact(&source.url("postgres"))
    );
    for target in targets {
        command.push_str(&format!(" --to {}", conn::redact(&target.url("postgres"))));
    }
    say(format!("  running: {command}"))?;
    let report = run::transfer(&transfer, output)?;
    if !output.quiet && !output.json {
        report
            .write_human(&mut io::stdout().lock())
            .map_err(|e| stdout_failed(&e))?;
    }
    stop()?;
    // The copy is over: a signal now stops the demo (its words and its exit status), not a
    // commit that ended.
    signals::connecting(false);
    interruptible();

    // Verify: every destination holds exactly the source's rows.
    let clock = Instant::now();
    let sums: Vec<anyhow::Result<(String, String)>> = thread::scope(|s| {
        let handles: Vec<_> = clusters
            .iter()
            .map(|cluster| {
                let interrupter = interrupter.clone();
                s.spawn(move || checksum(cluster, interrupter))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("checksum thread panicked")))
            })
            .collect()
    });
    stop()?;
    let mut sums = sums.into_iter();
    let expected = sums
        .next()
        .expect("the source's checksum")
        .map_err(|e| setup_error("source checksum", &*e))?;
    let mut verified = report.succeeded();
    let mut checks = Vec::new();
    for (i, sum) in sums.enumerate() {
        let (ok, detail) = match sum {
            Ok(got) if got == expected => (true, format!("{} rows, checksum matches", got.0)),
            Ok(got) => (
                false,
                format!(
                    "MISMATCH: {} rows, checksum {} (source: {} rows, {})",
                    got.0, got.1, expected.0, expected.1
                ),
            ),
            Err(e) => (
                false,
                format!("cannot verify: {}", report::one_line(&format!("{e:#}"))),
            ),
        };
        verified &= ok;
        say(format!(
            "  {} destination {}: {detail}",
            if ok { "ok  " } else { "FAIL" },
            i + 1
        ))?;
        let server = format!("destination {}", i + 1);
        checks.push(json!({ "server": server, "verified": ok, "detail": detail }));
    }
    let _ = say(format!(
        "  verified in {:.1} s (row count and checksum of every row)",
        clock.elapsed().as_secs_f64()
    ));

    let secs = report.duration.as_secs_f64().max(1e-9);
    let copied_rows = report.rows().unwrap_or(0);
    let _ = say(format!(
        "  throughput: {} rows/s, {}/s read from the source, {}/s written in total",
        HumanCount((copied_rows as f64 / secs) as u64),
        HumanBytes((report.bytes as f64 / secs) as u64),
        HumanBytes((report.bytes as f64 * destinations as f64 / secs) as u64)
    ));
    if output.json {
        let mut doc = report.to_json();
        // Its copy is a one-table run's; the command is the demo, whose times are the whole
        // process's (the envelope's), the copy's under `demo.copy` (they covered the copy alone,
        // 0.1 s of a 20 s demo: docs43 F1).
        doc["command"] = json!("demo");
        let mut copy = serde_json::Map::new();
        if let Some(map) = doc.as_object_mut() {
            for key in ["started_at", "finished_at", "duration_secs"] {
                if let Some(value) = map.remove(key) {
                    copy.insert(key.to_owned(), value);
                }
            }
        }
        doc["demo"] = json!({
            "rows": rows,
            "destinations": destinations,
            "verified": verified,
            "checks": checks,
            "source_checksum": expected.1,
            "copy": copy,
        });
        report::print_json(&doc)?;
    }
    let clock = Instant::now();
    drop(clusters);
    let _ = say(format!(
        "  removed the clusters in {:.1} s",
        clock.elapsed().as_secs_f64()
    ));
    if verified {
        let _ =
            say("copyman demo: verified: every destination holds exactly the source's rows".into());
        Ok(Exit::Success)
    } else {
        report::warn("demo: verification FAILED");
        Ok(Exit::CopyFailed)
    }
}

/// The demo's stop when its stdout cannot be written (closed by `head`, a full disk).
fn stdout_failed(error: &io::Error) -> Fatal {
    let why = if error.kind() == io::ErrorKind::BrokenPipe {
        "stdout was closed".to_string()
    } else {
        format!("cannot write to stdout: {error}")
    };
    Fatal {
        exit: Exit::CopyFailed,
        server: None,
        message: format!("demo: {why}: it stopped before it verified; its clusters are removed"),
    }
}

fn setup_error(what: &str, error: &(dyn std::error::Error + 'static)) -> Fatal {
    Fatal {
        exit: Exit::CopyFailed,
        server: None,
        message: format!("demo {what}: {}", report::describe(error)),
    }
}

/// `(count, checksum)` of the demo table on `cluster`, given up once `interrupter` fires.
fn checksum(
    cluster: &Cluster,
    interrupter: Option<Interrupter>,
) -> anyhow::Result<(String, String)> {
    let mut conn = Connection::connect(&cluster.config("postgres"))?;
    conn.set_interrupter(interrupter);
    let rows = conn.query(CHECKSUM)?;
    let row = rows
        .first()
        .ok_or_else(|| anyhow::anyhow!("no checksum row"))?;
    let field = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
    Ok((field(0), field(1)))
}

/// Starts `n` clusters side by side. copyman-cluster reports failure by panicking: the panic is
/// caught and becomes an error (the message names what is missing, e.g. the server binaries).
fn start_clusters(n: usize) -> anyhow::Result<Vec<Cluster>> {
    let hook = panic::take_hook();
    panic::set_hook(Box::new(|_| {}));
    let results: Vec<thread::Result<Cluster>> = thread::scope(|s| {
        let handles: Vec<_> = (0..n).map(|_| s.spawn(Cluster::start)).collect();
        handles.into_iter().map(|h| h.join()).collect()
    });
    panic::set_hook(hook);
    let mut clusters = Vec::with_capacity(n);
    for result in results {
        match result {
            Ok(cluster) => clusters.push(cluster),
            Err(payload) => {
                let message = payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "unknown error".to_owned());
                // Dropping the clusters that did start removes them.
                return Err(Fatal {
                    exit: Exit::CopyFailed,
                    server: None,
                    message: format!("demo: cannot start a throwaway cluster: {message}"),
                }
                .into());
            }
        }
    }
    Ok(clusters)
}
