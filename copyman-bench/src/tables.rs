//! The `tables` suite: many tables to several destinations, as a job against the ways it is done
//! today.
//!
//! Methods, each run verified (every table's row count on every destination) and measured under
//! GNU `time`:
//! * `psql-loop`: a shell loop, per table `psql \copy … to stdout | tee | psql \copy … from stdin`
//!   (one snapshot per table, one table at a time);
//! * `copyman-loop`: a shell loop of `copyman table T` (one snapshot per table, one at a time);
//! * `copyman-job`: one `copyman table --schema bench --jobs J --truncate` (one snapshot, J at a
//!   time, each table read once for every destination);
//! * `pgcopydb`: `pgcopydb copy table-data --table-jobs J` once per destination (one target per
//!   run), when `pgcopydb` is on PATH; otherwise left out, and the report says so.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, ensure};
use copyman_testkit::Cluster;

use crate::flag;
use crate::suite::{Measured, psql_pipe, timed};

/// What to run.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    tables: usize,
    rows: u64,
    repeats: usize,
    max_destinations: usize,
    jobs: usize,
    cli: PathBuf,
    out: PathBuf,
}

impl Options {
    pub(crate) fn parse(args: &[String]) -> anyhow::Result<Self> {
        let quick = args.iter().any(|a| a == "--quick");
        Ok(Self {
            tables: flag(args, "--tables")?.unwrap_or(20).max(1),
            rows: flag(args, "--rows")?.unwrap_or(if quick { 300_000 } else { 3_000_000 }),
            repeats: flag(args, "--repeats")?
                .unwrap_or(if quick { 1 } else { 3 })
                .max(1),
            max_destinations: flag::<usize>(args, "--max-destinations")?
                .unwrap_or(3)
                .clamp(1, 3),
            jobs: flag(args, "--jobs")?.unwrap_or(4).max(1),
            cli: flag(args, "--cli")?.context("--cli PATH (the copyman binary) is needed")?,
            out: flag(args, "--out")?.unwrap_or_else(|| PathBuf::from("target/bench")),
        })
    }
}

/// Table `i`'s row count: sizes from 1 to `tables` parts of the total, so the largest tables
/// dominate as they do in real schemas.
fn rows_of(options: &Options, i: usize) -> u64 {
    let parts: u64 = (1..=options.tables as u64).sum();
    (options.rows * (i as u64 + 1) / parts).max(1)
}

pub(crate) fn run(options: Options) -> anyhow::Result<()> {
    std::fs::create_dir_all(&options.out)?;
    let pgcopydb = Command::new("pgcopydb")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let mut methods = vec!["psql-loop", "copyman-loop", "copyman-job"];
    if pgcopydb {
        methods.push("pgcopydb");
    } else {
        eprintln!("bench tables: pgcopydb is not on PATH: it is left out");
    }
    eprintln!(
        "bench tables: 1 source and {} destination clusters, {} tables, {} rows",
        options.max_destinations, options.tables, options.rows
    );
    let source = Cluster::start();
    let destinations: Vec<Cluster> = (0..options.max_destinations)
        .map(|_| Cluster::start())
        .collect();
    let mut schema = String::from("CREATE SCHEMA bench;");
    for i in 0..options.tables {
        schema.push_str(&format!(
            "CREATE TABLE bench.t{i} (id int8 PRIMARY KEY, name text, at timestamptz, \
             amount numeric(12,2));"
        ));
    }
    for c in std::iter::once(&source).chain(&destinations) {
        c.connect("postgres")
            .batch_execute("CREATE DATABASE bench")?;
        c.connect("bench").batch_execute(&schema)?;
    }
    let mut src = source.connect("bench");
    for i in 0..options.tables {
        src.batch_execute(&format!(
            "INSERT INTO bench.t{i} SELECT g, 'name-' || left(md5(g::text), 15), \
             timestamptz '2020-01-01' + g * interval '1 second', (g % 100000) / 100.0 \
             FROM generate_series(1, {}) g",
            rows_of(&options, i)
        ))?;
        src.batch_execute(&format!("VACUUM ANALYZE bench.t{i}"))?;
    }
    let mut lines = vec!["method,destinations,repeat,wall,cpu,rss_kib".to_owned()];
    let mut medians: Vec<(String, usize, f64, f64, u64)> = Vec::new();
    for k in 1..=options.max_destinations {
        let dests = &destinations[..k];
        for method in &methods {
            let mut walls = Vec::new();
            let mut last = None;
            for repeat in 0..options.repeats {
                for d in dests {
                    let mut c = d.connect("bench");
                    for i in 0..options.tables {
                        c.batch_execute(&format!("TRUNCATE bench.t{i}"))?;
                    }
                }
                let measured = run_method(method, &options, &source, dests)
                    .with_context(|| format!("{method} to {k}"))?;
                verify(&options, dests)?;
                eprintln!(
                    "bench tables: {method:<13} → {k}  #{}  {:>7.3} s  cpu {:>6.3} s  rss {:>6.1} MiB",
                    repeat + 1,
                    measured.wall,
                    measured.cpu.map_or(0.0, |(user, system)| user + system),
                    measured.rss_kib.unwrap_or(0) as f64 / 1024.0
                );
                lines.push(format!(
                    "{method},{k},{},{:.3},{:.3},{}",
                    repeat + 1,
                    measured.wall,
                    measured.cpu.map_or(0.0, |(user, system)| user + system),
                    measured.rss_kib.unwrap_or(0)
                ));
                walls.push(measured.wall);
                last = Some(measured);
            }
            walls.sort_by(f64::total_cmp);
            let last = last.expect("one repeat at least");
            medians.push((
                (*method).to_owned(),
                k,
                walls[walls.len() / 2],
                last.cpu.map_or(0.0, |(user, system)| user + system),
                last.rss_kib.unwrap_or(0),
            ));
        }
    }
    let mut md = format!(
        "### tables: {} tables, {} rows in all, `--jobs {}`\n\n\
         | method | destinations | wall s (median) | client CPU s | peak RSS MiB |\n\
         |---|---:|---:|---:|---:|\n",
        options.tables, options.rows, options.jobs
    );
    for (method, k, wall, cpu, rss) in &medians {
        md.push_str(&format!(
            "| {method} | {k} | {wall:.2} | {cpu:.2} | {:.1} |\n",
            *rss as f64 / 1024.0
        ));
    }
    if !pgcopydb {
        md.push_str("\npgcopydb was not installed: not measured.\n");
    }
    print!("{md}");
    std::fs::write(options.out.join("tables.md"), &md)?;
    std::fs::write(options.out.join("tables.csv"), lines.join("\n") + "\n")?;
    eprintln!(
        "bench tables: wrote {}/{{tables.md,tables.csv}}",
        options.out.display()
    );
    Ok(())
}

fn run_method(
    method: &str,
    options: &Options,
    source: &Cluster,
    dests: &[Cluster],
) -> anyhow::Result<Measured> {
    let src = source.conninfo("bench");
    let infos: Vec<String> = dests.iter().map(|d| d.conninfo("bench")).collect();
    let q = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
    match method {
        "psql-loop" => {
            let mut script = String::from("set -e\n");
            for i in 0..options.tables {
                let pipe = psql_pipe(&src, &infos, &format!("bench.t{i}"));
                let args: Vec<String> = pipe
                    .get_args()
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect();
                script.push_str(&format!("( {} )\n", args[1]));
            }
            timed(Command::new("bash").args(["-c", &script]))
        }
        "copyman-loop" => {
            let mut script = String::from("set -e\n");
            let to: Vec<String> = infos.iter().map(|d| format!("--to {}", q(d))).collect();
            for i in 0..options.tables {
                script.push_str(&format!(
                    "{} table --quiet bench.t{i} --from {} {}\n",
                    q(&options.cli.to_string_lossy()),
                    q(&src),
                    to.join(" ")
                ));
            }
            timed(Command::new("bash").args(["-c", &script]))
        }
        "copyman-job" => {
            let state = std::env::temp_dir()
                .join(format!("copyman-bench-tables-{}.state", std::process::id()));
            let mut cmd = Command::new(&options.cli);
            cmd.args([
                "table",
                "--quiet",
                "--schema",
                "bench",
                "--truncate",
                "--from",
                &src,
            ])
            .arg("--jobs")
            .arg(options.jobs.to_string())
            .arg("--state")
            .arg(&state);
            for d in &infos {
                cmd.args(["--to", d]);
            }
            let measured = timed(&mut cmd);
            let _ = std::fs::remove_file(&state);
            measured
        }
        "pgcopydb" => {
            let mut script = String::from("set -e\n");
            for d in &infos {
                script.push_str(&format!(
                    "pgcopydb copy table-data --source {} --target {} --table-jobs {} \
                     --dir \"$(mktemp -d)\" --not-consistent >/dev/null 2>&1\n",
                    q(&src),
                    q(d),
                    options.jobs
                ));
            }
            timed(Command::new("bash").args(["-c", &script]))
        }
        other => anyhow::bail!("unknown method {other}"),
    }
}

/// Every table on every destination holds exactly its rows.
fn verify(options: &Options, dests: &[Cluster]) -> anyhow::Result<()> {
    for (k, d) in dests.iter().enumerate() {
        let mut c = d.connect("bench");
        for i in 0..options.tables {
            let n: i64 = c
                .query_one(&format!("SELECT count(*) FROM bench.t{i}"), &[])?
                .get(0);
            ensure!(
                n as u64 == rows_of(options, i),
                "destination {} holds {n} rows of bench.t{i}, not {}",
                k + 1,
                rows_of(options, i)
            );
        }
    }
    Ok(())
}
