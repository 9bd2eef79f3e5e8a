//! The stress run: N GiB generated on the fly, fanned out 1 → 3, with the copying process's
//! memory watched all along.
//!
//! Nothing is stored on either side. The source generates ~1000-byte rows with
//! `COPY (SELECT … generate_series …) TO STDOUT` (a set-returning function in the select list
//! streams; in `FROM` it would be materialised). Each destination copies into a view, `sink`,
//! whose `INSTEAD OF INSERT` trigger checks every row against the generator (ids 1, 2, 3, … in
//! order, payload equal to what the source computes for that id) and keeps nothing. COPY counts
//! every row that reaches an `INSTEAD OF` trigger, so copyman's own check (every destination's
//! `COPY n` equals the source's) stays in force; a statement-level trigger records the last id
//! the row trigger saw in `stress_result`, which is checked after the copy. (The trigger returns
//! NULL: on PostgreSQL 15, COPY into a view whose trigger returns the row keeps every returned
//! row in the backend's memory until the COPY ends.)
//!
//! The copy runs in a child process (`copyman-bench copy --method sync|async`, or the `copyman`
//! CLI), whose VmRSS, VmHWM and CPU time are read from `/proc/<pid>` every half second, with the
//! bytes every destination has taken so far (`pg_stat_progress_copy`) and the resident set of
//! the destinations' COPY backends.

use std::fmt::Write as _;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use copyman_testkit::Cluster;

use crate::{flag, flags};

/// The copying methods: the two library adapters (as `copyman-bench copy`) and the CLI.
const METHODS: &[&str] = &["sync", "async", "cli"];
/// Destinations of the fan-out.
const DESTINATIONS: usize = 3;
/// Characters of each row's payload; with the id, a tab and a newline a row is ~1000 bytes.
const PAYLOAD: u64 = 990;
const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
const MIB: f64 = 1024.0 * 1024.0;
/// How often the child is sampled.
const INTERVAL: Duration = Duration::from_millis(500);

/// What to run.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    gigabytes: f64,
    methods: Vec<String>,
    cli: Option<PathBuf>,
    out: PathBuf,
}

impl Options {
    pub(crate) fn parse(args: &[String]) -> anyhow::Result<Self> {
        let methods: Vec<String> = match flags(args, "--method").first() {
            Some(list) if list == "all" => METHODS.iter().map(|m| (*m).to_owned()).collect(),
            Some(list) => list.split(',').map(str::to_owned).collect(),
            None => vec!["sync".to_owned()],
        };
        for m in &methods {
            ensure!(
                METHODS.contains(&m.as_str()),
                "unknown method {m}; known: {} (or all)",
                METHODS.join(", ")
            );
        }
        let gigabytes: f64 = flag(args, "--gigabytes")?.unwrap_or(10.0);
        ensure!(gigabytes > 0.0, "--gigabytes must be positive");
        Ok(Self {
            gigabytes,
            methods,
            cli: flag(args, "--cli")?,
            out: flag(args, "--out")?.unwrap_or_else(|| PathBuf::from("target/stress")),
        })
    }
}

/// The destinations' sink: a view that takes COPY rows, checks each and keeps none.
const SINK: &str = r"
CREATE TABLE stress_result (rows int8 NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE VIEW sink AS SELECT 0::int8 AS id, ''::text AS payload WHERE false;
CREATE FUNCTION sink_begin() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM set_config('stress.last', '0', false); RETURN NULL; END $$;
CREATE FUNCTION sink_row() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE last int8 := current_setting('stress.last')::int8;
BEGIN
  IF NEW.id <> last + 1 OR NEW.payload <> left(repeat(md5(NEW.id::text), 31), 990) THEN
    RAISE EXCEPTION 'row % is not the row the generator makes after row %', NEW.id, last;
  END IF;
  PERFORM set_config('stress.last', NEW.id::text, false);
  RETURN NULL;
END $$;
CREATE FUNCTION sink_end() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO stress_result (rows) VALUES (current_setting('stress.last')::int8); RETURN NULL; END $$;
CREATE TRIGGER sink_begin BEFORE INSERT ON sink FOR EACH STATEMENT EXECUTE FUNCTION sink_begin();
CREATE TRIGGER sink_row INSTEAD OF INSERT ON sink FOR EACH ROW EXECUTE FUNCTION sink_row();
CREATE TRIGGER sink_end AFTER INSERT ON sink FOR EACH STATEMENT EXECUTE FUNCTION sink_end();
";

/// The source's statement: `rows` rows of the generator, made as they are sent.
fn send(rows: u64) -> String {
    format!(
        "COPY (SELECT i, left(repeat(md5(i::text), 31), {PAYLOAD}) \
         FROM (SELECT generate_series(1, {rows}::int8) AS i) AS g) TO STDOUT"
    )
}

const RECEIVE: &str = "COPY sink FROM STDIN";

/// Bytes of the first `rows` rows as text COPY: the id's digits, a tab, the payload, a newline.
fn text_bytes(rows: u64) -> u64 {
    let mut digits = 0;
    let mut low = 1;
    for d in 1.. {
        if low > rows {
            break;
        }
        let high = (low * 10 - 1).min(rows);
        digits += (high - low + 1) * d;
        low *= 10;
    }
    rows * (PAYLOAD + 2) + digits
}

/// The fewest rows that make at least `bytes` bytes.
fn rows_for(bytes: u64) -> u64 {
    // No row is longer than this (a 20-digit id): adding deficit / MAX_ROW rows, rounded up,
    // never passes the fewest.
    const MAX_ROW: u64 = PAYLOAD + 22;
    let mut rows = 0;
    while text_bytes(rows) < bytes {
        rows += (bytes - text_bytes(rows)).div_ceil(MAX_ROW);
    }
    rows
}

/// One reading of the child.
#[derive(Debug, Clone, Copy)]
struct Sample {
    seconds: f64,
    /// Bytes every destination has taken so far (the least of them).
    moved: u64,
    rss_kib: u64,
    hwm_kib: u64,
    cpu: f64,
    /// The largest VmRSS of the destinations' COPY backends.
    server_rss_kib: u64,
}

/// One method's run.
#[derive(Debug)]
struct Outcome {
    method: String,
    wall: f64,
    samples: Vec<Sample>,
}

impl Outcome {
    fn peak_kib(&self) -> u64 {
        self.samples.iter().map(|s| s.hwm_kib).max().unwrap_or(0)
    }

    fn server_peak_kib(&self) -> u64 {
        self.samples
            .iter()
            .map(|s| s.server_rss_kib)
            .max()
            .unwrap_or(0)
    }

    fn cpu(&self) -> f64 {
        self.samples.last().map_or(0.0, |s| s.cpu)
    }

    /// The first sample at or past `bytes` moved.
    fn at(&self, bytes: u64) -> Option<&Sample> {
        self.samples.iter().find(|s| s.moved >= bytes)
    }

    /// The least and most VmRSS once the first GiB moved (the whole run if it is shorter).
    fn rss_range_kib(&self) -> (u64, u64) {
        let first = (GIB as u64).min(self.samples.last().map_or(0, |s| s.moved));
        let after = self.samples.iter().filter(|s| s.moved >= first);
        let min = after.clone().map(|s| s.rss_kib).min().unwrap_or(0);
        (min, after.map(|s| s.rss_kib).max().unwrap_or(0))
    }
}

pub(crate) fn run(options: Options) -> anyhow::Result<()> {
    std::fs::create_dir_all(&options.out)?;
    let rows = rows_for((options.gigabytes * GIB) as u64);
    let bytes = text_bytes(rows);
    eprintln!(
        "stress: {:.2} GiB ({rows} rows) to {DESTINATIONS} destinations; starting 1 source and \
         {DESTINATIONS} destination clusters",
        bytes as f64 / GIB
    );
    let source = Cluster::start();
    let destinations: Vec<Cluster> = (0..DESTINATIONS).map(|_| Cluster::start()).collect();
    for c in std::iter::once(&source).chain(&destinations) {
        c.connect("postgres")
            .batch_execute("CREATE DATABASE stress")?;
    }
    for d in &destinations {
        d.connect("stress").batch_execute(SINK)?;
    }
    let clusters = || std::iter::once(&source).chain(&destinations);
    let stored_before: u64 = clusters().map(|c| dir_size(c.data_dir())).sum();
    let mut outcomes = Vec::new();
    for method in &options.methods {
        let outcome = run_method(method, &options, &source, &destinations, rows, bytes)
            .with_context(|| format!("stress with {method}"))?;
        outcomes.push(outcome);
    }
    let stored_after: u64 = clusters().map(|c| dir_size(c.data_dir())).sum();
    let markdown = markdown(&outcomes, rows, bytes, (stored_before, stored_after));
    print!("{markdown}");
    std::fs::write(options.out.join("results.md"), &markdown)?;
    std::fs::write(options.out.join("samples.csv"), csv(&outcomes))?;
    eprintln!(
        "stress: wrote {}/{{results.md,samples.csv}}",
        options.out.display()
    );
    Ok(())
}

fn run_method(
    method: &str,
    options: &Options,
    source: &Cluster,
    destinations: &[Cluster],
    rows: u64,
    bytes: u64,
) -> anyhow::Result<Outcome> {
    let mut monitors: Vec<_> = destinations.iter().map(|d| d.connect("stress")).collect();
    for m in &mut monitors {
        m.batch_execute("TRUNCATE stress_result")?;
    }
    let src = source.conninfo("stress");
    let send = send(rows);
    let mut cmd = match method {
        "sync" | "async" => {
            let mut cmd = Command::new(std::env::current_exe()?);
            cmd.args([
                "copy", "--method", method, "--source", &src, "--send", &send,
            ]);
            cmd.args(["--receive", RECEIVE]);
            for d in destinations {
                cmd.args(["--dest", &d.conninfo("stress")]);
            }
            cmd
        }
        "cli" => {
            let cli = options
                .cli
                .as_ref()
                .context("--cli PATH (cargo xtask stress passes it)")?;
            let mut cmd = Command::new(cli);
            cmd.args(["copy", "--quiet", "--from", &src, "--send", &send]);
            cmd.args(["--receive", RECEIVE]);
            for d in destinations {
                cmd.args(["--to", &d.conninfo("stress")]);
            }
            cmd
        }
        other => bail!("unknown method {other}"),
    };
    eprintln!("stress: {method}: copying");
    let start = Instant::now();
    let mut child = cmd.stdout(Stdio::piped()).spawn()?;
    let pid = child.id();
    // The bytes each destination had taken at its last reading; its COPY's row in
    // pg_stat_progress_copy goes away when it ends.
    let mut taken = vec![0u64; destinations.len()];
    let mut samples = Vec::new();
    let mut next_mark = 1u64;
    let status = 'run: loop {
        let mut server_rss_kib = 0;
        for (m, taken) in monitors.iter_mut().zip(&mut taken) {
            let row = m.query_opt(
                "SELECT pid, bytes_processed FROM pg_stat_progress_copy WHERE command = 'COPY FROM'",
                &[],
            )?;
            if let Some(row) = row {
                *taken = (*taken).max(row.get::<_, i64>(1) as u64);
                let backend = row.get::<_, i32>(0) as u32;
                server_rss_kib = server_rss_kib.max(read_proc(backend).map_or(0, |p| p.0));
            }
        }
        if let Some((rss_kib, hwm_kib, cpu)) = read_proc(pid) {
            let sample = Sample {
                seconds: start.elapsed().as_secs_f64(),
                moved: taken.iter().copied().min().unwrap_or(0),
                rss_kib,
                hwm_kib,
                cpu,
                server_rss_kib,
            };
            if sample.moved as f64 >= next_mark as f64 * GIB {
                next_mark = (sample.moved as f64 / GIB) as u64 + 1;
                eprintln!(
                    "stress: {method}: {:>6.2} GiB  {:>7.1} s  RSS {:>5.1} MiB  peak {:>5.1} MiB  \
                     destination backends {:>5.1} MiB",
                    sample.moved as f64 / GIB,
                    sample.seconds,
                    rss_kib as f64 / 1024.0,
                    hwm_kib as f64 / 1024.0,
                    server_rss_kib as f64 / 1024.0
                );
            }
            samples.push(sample);
        }
        // Sleep until the next sample, noticing the end within a few milliseconds.
        let next = Instant::now() + INTERVAL;
        while Instant::now() < next {
            if let Some(status) = child.try_wait()? {
                break 'run status;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    let wall = start.elapsed().as_secs_f64();
    let stdout = read_stdout(&mut child)?;
    ensure!(status.success(), "the copy failed ({status}): {stdout}");
    if method != "cli" {
        ensure!(
            stdout.trim() == format!("rows={rows}"),
            "the copy reported {stdout:?}, not rows={rows}"
        );
    }
    // Every destination's trigger saw every row, in order and as generated.
    for (i, m) in monitors.iter_mut().enumerate() {
        let results = m.query("SELECT rows FROM stress_result", &[])?;
        let seen: Vec<i64> = results.iter().map(|r| r.get(0)).collect();
        ensure!(
            seen == [rows as i64],
            "destination {i} recorded {seen:?} rows, not [{rows}]"
        );
    }
    eprintln!(
        "stress: {method}: verified: {rows} rows on each destination, {wall:.1} s, {:.1} MiB/s",
        bytes as f64 / MIB / wall
    );
    Ok(Outcome {
        method: method.to_owned(),
        wall,
        samples,
    })
}

/// VmRSS and VmHWM (KiB) and user + system CPU seconds of a running process.
fn read_proc(pid: u32) -> Option<(u64, u64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |field: &str| -> Option<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    };
    let (rss, hwm) = (kib("VmRSS:")?, kib("VmHWM:")?);
    // Fields 14 and 15 of /proc/<pid>/stat, after the parenthesised command name, in clock
    // ticks (100 per second on Linux).
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some((rss, hwm, ticks as f64 / 100.0))
}

fn read_stdout(child: &mut Child) -> anyhow::Result<String> {
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        stdout.read_to_string(&mut out)?;
    }
    Ok(out)
}

/// Bytes of the files under `dir`.
fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            match entry.metadata() {
                Ok(m) if m.is_dir() => stack.push(entry.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

/// `stored`: bytes in the clusters' data directories before and after the runs.
fn markdown(outcomes: &[Outcome], rows: u64, bytes: u64, stored: (u64, u64)) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\n### Stress: {:.2} GiB generated on the fly, 1 → {DESTINATIONS}\n\n\
         {rows} rows of ~1000 bytes ({bytes} bytes as text COPY) per run, every row checked on \
         every destination, none stored: the four clusters' data directories held {:.0} MiB \
         before the runs and {:.0} MiB after.\n",
        bytes as f64 / GIB,
        stored.0 as f64 / MIB,
        stored.1 as f64 / MIB
    );
    s += "| method | wall s | MiB/s | rows/s | client CPU s | peak RSS MiB | RSS MiB after 1st GiB \
          (min–max) | destination backend RSS MiB (max) |\n";
    s += "|---|---:|---:|---:|---:|---:|---:|---:|\n";
    for o in outcomes {
        let (min, max) = o.rss_range_kib();
        let _ = writeln!(
            s,
            "| {} | {:.1} | {:.1} | {:.0} | {:.1} | {} | {}–{} | {} |",
            o.method,
            o.wall,
            bytes as f64 / MIB / o.wall,
            rows as f64 / o.wall,
            o.cpu(),
            mib(o.peak_kib()),
            mib(min),
            mib(max),
            mib(o.server_peak_kib())
        );
    }
    s += "\nVmRSS of the copying process (MiB) as the destinations took the data:\n\n";
    s += "| GiB taken |";
    for o in outcomes {
        let _ = write!(s, " {} |", o.method);
    }
    s += "\n|---:|";
    s += &"---:|".repeat(outcomes.len());
    s += "\n";
    let cell = |sample: Option<&Sample>| sample.map_or("—".to_owned(), |x| mib(x.rss_kib));
    let _ = write!(s, "| copy started |");
    for o in outcomes {
        let _ = write!(s, " {} |", cell(o.at(1)));
    }
    s += "\n";
    for gib in 1..=(bytes as f64 / GIB) as u64 {
        let mark = (gib as f64 * GIB) as u64;
        if outcomes.iter().all(|o| o.at(mark).is_none()) {
            continue;
        }
        let _ = write!(s, "| {gib} |");
        for o in outcomes {
            let _ = write!(s, " {} |", cell(o.at(mark)));
        }
        s += "\n";
    }
    let _ = write!(s, "| last sample |");
    for o in outcomes {
        let _ = write!(s, " {} |", cell(o.samples.last()));
    }
    s += "\n";
    s
}

fn csv(outcomes: &[Outcome]) -> String {
    let mut s = String::from("method,seconds,bytes_taken,rss_kib,hwm_kib,cpu_s,server_rss_kib\n");
    for o in outcomes {
        for x in &o.samples {
            let _ = writeln!(
                s,
                "{},{:.2},{},{},{},{:.2},{}",
                o.method, x.seconds, x.moved, x.rss_kib, x.hwm_kib, x.cpu, x.server_rss_kib
            );
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_bytes_counts_digits() {
        // Rows 1..=12: 9 one-digit ids and 3 two-digit ones.
        assert_eq!(text_bytes(12), 12 * (PAYLOAD + 2) + 9 + 6);
        assert_eq!(text_bytes(0), 0);
        let rows = rows_for(10 << 30);
        assert!(text_bytes(rows) >= 10 << 30);
        assert!(text_bytes(rows - 1) < 10 << 30);
    }
}
