//! The benchmark's outputs: a markdown table on stdout, CSV and JSON and an SVG chart on disk.

use std::fmt::Write as _;
use std::path::Path;

use crate::suite::METHODS;

/// One measured, verified run.
#[derive(Debug, Clone)]
pub(crate) struct Run {
    pub(crate) dataset: &'static str,
    pub(crate) method: String,
    pub(crate) destinations: usize,
    pub(crate) rows: u64,
    /// Size of the data as a text COPY file.
    pub(crate) bytes: u64,
    pub(crate) wall: f64,
    /// User and system CPU seconds of the copying processes.
    pub(crate) cpu: Option<(f64, f64)>,
    /// CPU seconds of every server process (source and destinations).
    pub(crate) servers_cpu: Option<f64>,
    /// The part of it the source's server used.
    pub(crate) source_cpu: Option<f64>,
    /// The machine's busy share during the run, 0 to 1.
    pub(crate) busy: Option<f64>,
    pub(crate) rss_kib: Option<u64>,
}

/// The median of the repeats of one (dataset, method, destinations).
#[derive(Debug, Clone)]
struct Median {
    dataset: &'static str,
    method: String,
    destinations: usize,
    rows: u64,
    bytes: u64,
    wall: f64,
    user: Option<f64>,
    sys: Option<f64>,
    servers_cpu: Option<f64>,
    busy: Option<f64>,
    rss_kib: Option<u64>,
}

impl Median {
    /// Client CPU, user + system (each the median of its own).
    fn cpu(&self) -> Option<f64> {
        Some(self.user? + self.sys?)
    }
}

/// The median of what is there, if anything is.
fn median_of(values: impl Iterator<Item = f64>) -> Option<f64> {
    let mut v: Vec<f64> = values.collect();
    (!v.is_empty()).then(|| median(&mut v))
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn medians(runs: &[Run]) -> Vec<Median> {
    let mut out: Vec<Median> = Vec::new();
    for run in runs {
        if out.iter().any(|m| {
            m.dataset == run.dataset && m.method == run.method && m.destinations == run.destinations
        }) {
            continue;
        }
        let same: Vec<&Run> = runs
            .iter()
            .filter(|r| {
                r.dataset == run.dataset
                    && r.method == run.method
                    && r.destinations == run.destinations
            })
            .collect();
        let mut walls: Vec<f64> = same.iter().map(|r| r.wall).collect();
        out.push(Median {
            dataset: run.dataset,
            method: run.method.clone(),
            destinations: run.destinations,
            rows: run.rows,
            bytes: run.bytes,
            wall: median(&mut walls),
            user: median_of(same.iter().filter_map(|r| r.cpu.map(|c| c.0))),
            sys: median_of(same.iter().filter_map(|r| r.cpu.map(|c| c.1))),
            servers_cpu: median_of(same.iter().filter_map(|r| r.servers_cpu)),
            busy: median_of(same.iter().filter_map(|r| r.busy)),
            rss_kib: median_of(same.iter().filter_map(|r| r.rss_kib.map(|k| k as f64)))
                .map(|k| k as u64),
        });
    }
    out
}

/// Writes every output and prints the markdown table.
pub(crate) fn write(runs: &[Run], dir: &Path) -> anyhow::Result<()> {
    let medians = medians(runs);
    let markdown = markdown(&medians);
    print!("{markdown}");
    std::fs::write(dir.join("results.md"), &markdown)?;
    std::fs::write(dir.join("runs.csv"), csv(runs))?;
    std::fs::write(dir.join("results.json"), json(&medians))?;
    std::fs::write(dir.join("throughput.svg"), svg(&medians))?;
    eprintln!(
        "bench: wrote {}/{{results.md,runs.csv,results.json,throughput.svg}}",
        dir.display()
    );
    Ok(())
}

fn mib(bytes: f64) -> f64 {
    bytes / (1024.0 * 1024.0)
}

fn find<'a>(medians: &'a [Median], dataset: &str, method: &str, k: usize) -> Option<&'a Median> {
    medians
        .iter()
        .find(|m| m.dataset == dataset && m.method == method && m.destinations == k)
}

fn markdown(medians: &[Median]) -> String {
    let mut s = String::new();
    let datasets: Vec<&str> = {
        let mut d: Vec<&str> = medians.iter().map(|m| m.dataset).collect();
        d.dedup();
        d
    };
    for dataset in datasets {
        let first = medians
            .iter()
            .find(|m| m.dataset == dataset)
            .expect("dataset has runs");
        let _ = writeln!(
            s,
            "\n### {dataset}: {} rows, {:.0} MiB as text COPY (medians)\n",
            first.rows,
            mib(first.bytes as f64)
        );
        s += "| method | dest | wall s | × floor | MiB/s | client user s | client sys s | \
              client CPU × psql | servers CPU s | machine busy | peak RSS MiB |\n";
        s += "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
        for k in 1..=3 {
            let floor = find(medians, dataset, "floor", k).map(|m| m.wall);
            for method in METHODS {
                let Some(m) = find(medians, dataset, method, k) else {
                    continue;
                };
                let psql = find(medians, dataset, "psql", k).and_then(Median::cpu);
                let dash = || "—".to_owned();
                let _ = writeln!(
                    s,
                    "| {method} | {k} | {:.3} | {} | {:.1} | {} | {} | {} | {} | {} | {} |",
                    m.wall,
                    floor.map_or_else(dash, |f| format!("{:.2}", m.wall / f)),
                    mib(m.bytes as f64) / m.wall,
                    m.user.map_or_else(dash, |c| format!("{c:.3}")),
                    m.sys.map_or_else(dash, |c| format!("{c:.3}")),
                    match (m.cpu(), psql) {
                        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
                        _ => dash(),
                    },
                    m.servers_cpu.map_or_else(dash, |c| format!("{c:.2}")),
                    m.busy.map_or_else(dash, |b| format!("{:.0}%", b * 100.0)),
                    m.rss_kib
                        .map_or_else(dash, |r| format!("{:.1}", r as f64 / 1024.0)),
                );
            }
        }
        for ours_name in ["copyman-sync", "copyman-async"] {
            let mut lines = String::new();
            for k in 1..=3 {
                let Some(ours) = find(medians, dataset, ours_name, k) else {
                    continue;
                };
                for other in ["psql", "tokio-postgres", "floor"] {
                    let Some(theirs) = find(medians, dataset, other, k) else {
                        continue;
                    };
                    let cpu = match (ours.cpu(), theirs.cpu()) {
                        (Some(a), Some(b)) if b > 0.0 => format!("; CPU {:.2}×", a / b),
                        _ => String::new(),
                    };
                    let _ = writeln!(
                        lines,
                        "* 1 → {k}, vs {other}: wall {:.2}×{cpu}",
                        ours.wall / theirs.wall
                    );
                }
            }
            if !lines.is_empty() {
                let _ = write!(
                    s,
                    "\nRatios of {ours_name} to each alternative (wall time; client CPU):\n\n{lines}"
                );
            }
        }
        s += &goals(medians, dataset);
    }
    s
}

/// The goals, checked against this run: wall against the floor (1 → 1 ≤ 1.03×, 1 → 3
/// ≤ 1.10×), client CPU against the psql pipe's (≤ 0.15× on narrow rows, ≤ 0.4× on wide ones),
/// and peak RSS across destination counts.
fn goals(medians: &[Median], dataset: &str) -> String {
    let cpu_goal = if dataset == "narrow" { 0.15 } else { 0.4 };
    let mut s = String::new();
    for ours in ["copyman-cli", "copyman-sync"] {
        let mut cells = Vec::new();
        let mut rss = Vec::new();
        for k in 1..=3 {
            let Some(m) = find(medians, dataset, ours, k) else {
                continue;
            };
            if let Some(floor) = find(medians, dataset, "floor", k) {
                let goal = match k {
                    1 => Some(1.03),
                    3 => Some(1.10),
                    _ => None,
                };
                let ratio = m.wall / floor.wall;
                let verdict = match goal {
                    Some(g) if ratio <= g => format!(" (goal ≤ {g:.2}: met)"),
                    Some(g) => format!(" (goal ≤ {g:.2}: **not met**)"),
                    None => String::new(),
                };
                cells.push(format!("1 → {k} wall {ratio:.2}× floor{verdict}"));
            }
            if let (Some(a), Some(b)) = (
                m.cpu(),
                find(medians, dataset, "psql", k).and_then(Median::cpu),
            ) && b > 0.0
            {
                let ratio = a / b;
                let verdict = if ratio <= cpu_goal {
                    "met"
                } else {
                    "**not met**"
                };
                cells.push(format!(
                    "1 → {k} client CPU {ratio:.2}× psql (goal ≤ {cpu_goal}: {verdict})"
                ));
            }
            if let Some(r) = m.rss_kib {
                rss.push(r as f64 / 1024.0);
            }
        }
        if cells.is_empty() {
            continue;
        }
        if let (Some(lo), Some(hi)) = (
            rss.iter().copied().reduce(f64::min),
            rss.iter().copied().reduce(f64::max),
        ) {
            cells.push(format!(
                "peak RSS {lo:.1}–{hi:.1} MiB over 1–3 destinations"
            ));
        }
        let _ = write!(s, "\nGoals, {ours}:\n\n");
        for cell in cells {
            let _ = writeln!(s, "* {cell}");
        }
    }
    s
}

fn csv(runs: &[Run]) -> String {
    let mut s = String::from(
        "dataset,method,destinations,rows,bytes,wall_s,user_s,sys_s,servers_cpu_s,source_cpu_s,busy,peak_rss_kib\n",
    );
    let opt = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.4}"));
    for r in runs {
        let _ = writeln!(
            s,
            "{},{},{},{},{},{:.4},{},{},{},{},{},{}",
            r.dataset,
            r.method,
            r.destinations,
            r.rows,
            r.bytes,
            r.wall,
            opt(r.cpu.map(|c| c.0)),
            opt(r.cpu.map(|c| c.1)),
            opt(r.servers_cpu),
            opt(r.source_cpu),
            opt(r.busy),
            r.rss_kib.map_or(String::new(), |k| k.to_string())
        );
    }
    s
}

fn json(medians: &[Median]) -> String {
    let items: Vec<String> = medians
        .iter()
        .map(|m| {
            format!(
                "{{\"dataset\":\"{}\",\"method\":\"{}\",\"destinations\":{},\"rows\":{},\"bytes\":{},\
                 \"wall_s\":{:.4},\"user_s\":{},\"sys_s\":{},\"servers_cpu_s\":{},\"busy\":{},\
                 \"peak_rss_kib\":{},\"mib_per_s\":{:.2}}}",
                m.dataset,
                m.method,
                m.destinations,
                m.rows,
                m.bytes,
                m.wall,
                m.user.map_or("null".into(), |c| format!("{c:.4}")),
                m.sys.map_or("null".into(), |c| format!("{c:.4}")),
                m.servers_cpu.map_or("null".into(), |c| format!("{c:.4}")),
                m.busy.map_or("null".into(), |c| format!("{c:.4}")),
                m.rss_kib.map_or("null".into(), |k| k.to_string()),
                mib(m.bytes as f64) / m.wall
            )
        })
        .collect();
    format!("[\n  {}\n]\n", items.join(",\n  "))
}

/// A grouped bar chart of MiB/s: one group per dataset and destination count, one bar per method.
fn svg(medians: &[Median]) -> String {
    let colors = [
        "#444", "#888", "#aaa", "#d62728", "#ff7f0e", "#1f77b4", "#2ca02c",
    ];
    let groups: Vec<(&str, usize)> = {
        let mut g: Vec<(&str, usize)> = medians
            .iter()
            .map(|m| (m.dataset, m.destinations))
            .collect();
        g.sort();
        g.dedup();
        g
    };
    let max = medians
        .iter()
        .map(|m| mib(m.bytes as f64) / m.wall)
        .fold(1.0, f64::max);
    let (bar, gap, height) = (14.0, 30.0, 300.0);
    let group_width = bar * METHODS.len() as f64 + gap;
    let width = 60.0 + group_width * groups.len() as f64 + 180.0;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{:.0}\" font-family=\"sans-serif\" font-size=\"11\">\n",
        height + 60.0
    );
    let _ = writeln!(
        s,
        "<text x=\"10\" y=\"15\">throughput, MiB/s of text COPY data (higher is better)</text>"
    );
    for (gi, (dataset, k)) in groups.iter().enumerate() {
        let x0 = 50.0 + gi as f64 * group_width;
        for (mi, method) in METHODS.iter().enumerate() {
            let Some(m) = find(medians, dataset, method, *k) else {
                continue;
            };
            let v = mib(m.bytes as f64) / m.wall;
            let h = v / max * height;
            let _ = writeln!(
                s,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{bar}\" height=\"{h:.1}\" fill=\"{}\"><title>{method}: {v:.1} MiB/s</title></rect>",
                x0 + mi as f64 * bar,
                30.0 + height - h,
                colors[mi % colors.len()]
            );
        }
        let _ = writeln!(
            s,
            "<text x=\"{x0:.0}\" y=\"{:.0}\">{dataset} → {k}</text>",
            height + 48.0
        );
    }
    let lx = width - 170.0;
    for (mi, method) in METHODS.iter().enumerate() {
        let y = 40.0 + mi as f64 * 16.0;
        let _ = writeln!(
            s,
            "<rect x=\"{lx:.0}\" y=\"{:.0}\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{:.0}\" y=\"{:.0}\">{method}</text>",
            y - 9.0,
            colors[mi % colors.len()],
            lx + 14.0,
            y
        );
    }
    s += "</svg>\n";
    s
}
