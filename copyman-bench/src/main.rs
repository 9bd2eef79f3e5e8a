//! copyman's end-to-end benchmark, run by `cargo xtask bench`.
//!
//! `copyman-bench suite` starts throwaway clusters (one source, up to three destinations, each its
//! own cluster), prepares a narrow and a wide dataset, and runs every copy method for 1, 2 and 3
//! destinations, each run verified and measured (wall time, client CPU, peak RSS) as a child
//! process under GNU `time`. `copyman-bench copy` is that child for the in-process methods.
//!
//! `copyman-bench tables` copies many tables to 1..=K destinations: a `copyman table` job against
//! a psql loop, a loop of single-table copies and (when installed) pgcopydb.
//!
//! `copyman-bench stress` fans N GiB generated on the fly out to three destinations that check
//! every row and keep none, sampling the copying child's memory as it goes.

mod methods;
mod report;
mod stress;
mod suite;
mod tables;

use anyhow::{Context, bail};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("suite") => suite::run(suite::Options::parse(&args[1..])?),
        Some("copy") => methods::run_copy(&args[1..]),
        Some("tables") => tables::run(tables::Options::parse(&args[1..])?),
        Some("stress") => stress::run(stress::Options::parse(&args[1..])?),
        _ => {
            eprintln!(
                "usage: copyman-bench suite [--quick] [--rows N] [--wide-rows N] [--repeats R] \
                 [--max-destinations K] [--methods a,b] [--cli PATH] [--out DIR]\n       \
                 copyman-bench tables --cli PATH [--quick] [--tables N] [--rows N] [--repeats R] \
                 [--max-destinations K] [--jobs J] [--out DIR]\n       \
                 copyman-bench stress [--gigabytes N] [--method sync|async|cli|all|a,b] \
                 [--cli PATH] [--out DIR]\n       \
                 copyman-bench copy --method sync|tokio-postgres --source CONN --send SQL \
                 --dest CONN… --receive SQL"
            );
            std::process::exit(2);
        }
    }
}

/// The value after flag `name` in `args`, parsed.
fn flag<T: std::str::FromStr>(args: &[String], name: &str) -> anyhow::Result<Option<T>>
where
    T::Err: std::fmt::Display,
{
    match args.iter().position(|a| a == name) {
        None => Ok(None),
        Some(i) => {
            let value = args
                .get(i + 1)
                .with_context(|| format!("{name} needs a value"))?;
            match value.parse() {
                Ok(v) => Ok(Some(v)),
                Err(e) => bail!("{name} {value}: {e}"),
            }
        }
    }
}

/// Every value after each occurrence of flag `name`.
fn flags(args: &[String], name: &str) -> Vec<String> {
    args.windows(2)
        .filter(|w| w[0] == name)
        .map(|w| w[1].clone())
        .collect()
}
