//! The benchmark suite: clusters, datasets, every method for 1..=K destinations, verified.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail, ensure};
use copyman_testkit::Cluster;

use crate::report::{self, Run};
use crate::{flag, flags};

/// What to run.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    narrow_rows: u64,
    wide_rows: u64,
    repeats: usize,
    max_destinations: usize,
    methods: Vec<String>,
    cli: Option<PathBuf>,
    out: PathBuf,
    /// Clients connect over TCP rather than the clusters' Unix sockets.
    tcp: bool,
}

/// Every method, in the order the table shows them.
pub(crate) const METHODS: &[&str] = &[
    "floor",
    "floor-source",
    "floor-destinations",
    "psql",
    "tokio-postgres",
    "copyman-sync",
    "copyman-async",
    "copyman-cli",
    "copyman-job",
];

impl Options {
    pub(crate) fn parse(args: &[String]) -> anyhow::Result<Self> {
        let quick = args.iter().any(|a| a == "--quick");
        let methods: Vec<String> = match flags(args, "--methods").first() {
            Some(list) => list.split(',').map(str::to_owned).collect(),
            None => METHODS.iter().map(|m| (*m).to_owned()).collect(),
        };
        for m in &methods {
            ensure!(
                METHODS.contains(&m.as_str()),
                "unknown method {m}; known: {}",
                METHODS.join(", ")
            );
        }
        Ok(Self {
            narrow_rows: flag(args, "--rows")?.unwrap_or(if quick {
                1_000_000
            } else {
                10_000_000
            }),
            wide_rows: flag(args, "--wide-rows")?.unwrap_or(if quick {
                300_000
            } else {
                3_000_000
            }),
            repeats: flag(args, "--repeats")?.unwrap_or(3).max(1),
            max_destinations: flag::<usize>(args, "--max-destinations")?
                .unwrap_or(3)
                .clamp(1, 3),
            methods,
            cli: flag(args, "--cli")?,
            out: flag(args, "--out")?.unwrap_or_else(|| PathBuf::from("target/bench")),
            tcp: args.iter().any(|a| a == "--tcp"),
        })
    }
}

/// A dataset: a table on the source, an empty twin on each destination.
struct Dataset {
    name: &'static str,
    rows: u64,
    create: &'static str,
    fill: String,
    /// A server-readable text COPY file of the data, for the destination floors.
    file: PathBuf,
}

pub(crate) fn run(options: Options) -> anyhow::Result<()> {
    std::fs::create_dir_all(&options.out)?;
    let work = std::env::temp_dir().join(format!("copyman-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    // The servers (run as the `postgres` user when we are root) read and write files here.
    set_mode(&work, 0o777)?;

    eprintln!(
        "bench: starting 1 source and {} destination clusters",
        options.max_destinations
    );
    let source = Cluster::start();
    let destinations: Vec<Cluster> = (0..options.max_destinations)
        .map(|_| Cluster::start())
        .collect();
    for c in std::iter::once(&source).chain(&destinations) {
        c.connect("postgres")
            .batch_execute("CREATE DATABASE bench")?;
    }
    let datasets = [
        Dataset {
            name: "narrow",
            rows: options.narrow_rows,
            create: "CREATE TABLE narrow (i int8)",
            fill: format!(
                "INSERT INTO narrow SELECT generate_series(1, {})",
                options.narrow_rows
            ),
            file: work.join("narrow.copy"),
        },
        Dataset {
            name: "wide",
            rows: options.wide_rows,
            create: "CREATE TABLE wide (id int8, name text, at timestamptz, amount numeric(12,2), note text)",
            fill: format!(
                "INSERT INTO wide SELECT i, 'name-' || left(md5(i::text), 15), \
                 timestamptz '2020-01-01' + i * interval '1 second', (i % 100000) / 100.0, \
                 left(repeat(md5(i::text), 3), 80) FROM generate_series(1, {}) AS g(i)",
                options.wide_rows
            ),
            file: work.join("wide.copy"),
        },
    ];
    let mut runs = Vec::new();
    for data in &datasets {
        eprintln!("bench: preparing {} ({} rows)", data.name, data.rows);
        let mut src = source.connect("bench");
        src.batch_execute(data.create)?;
        src.batch_execute(&data.fill)?;
        src.batch_execute(&format!("VACUUM ANALYZE {}", data.name))?;
        src.batch_execute(&format!("COPY {} TO '{}'", data.name, data.file.display()))?;
        let bytes = std::fs::metadata(&data.file)?.len();
        for d in &destinations {
            d.connect("bench").batch_execute(data.create)?;
        }
        for k in 1..=options.max_destinations {
            let dests = &destinations[..k];
            for method in &options.methods {
                if matches!(method.as_str(), "copyman-cli" | "copyman-job") && options.cli.is_none()
                {
                    continue;
                }
                if k > 1 && method == "floor-source" {
                    // The source alone does not depend on the destination count.
                    continue;
                }
                for repeat in 0..options.repeats {
                    truncate(dests, data.name)?;
                    let servers: Vec<&Cluster> = std::iter::once(&source).chain(dests).collect();
                    let before = Machine::read(&servers)?;
                    let mut measured = run_method(method, &options, &source, dests, data)
                        .with_context(|| format!("{method} on {} to {k}", data.name))?;
                    let after = Machine::read(&servers)?;
                    measured.busy = after.busy_since(&before);
                    // The run's backends exit after their clients: their time counts once the
                    // postmasters reaped them.
                    let settled = Machine::settle(&servers, &before)?;
                    measured.servers_cpu = Some(settled.servers_cpu - before.servers_cpu);
                    measured.source_cpu = Some(settled.source_cpu - before.source_cpu);
                    if !method.starts_with("floor")
                        || method == "floor-destinations"
                        || method == "floor"
                    {
                        verify(dests, data)?;
                    }
                    let (user, sys) = measured.cpu.unwrap_or((0.0, 0.0));
                    eprintln!(
                        "bench: {:<8} {:<19} → {k}  #{}  {:>7.3} s  cpu {user:>6.3} + {sys:>6.3} s  \
                         servers {:>6.3} s (source {:>6.3} s)  busy {:>3.0}%  rss {:>6.1} MiB",
                        data.name,
                        method,
                        repeat + 1,
                        measured.wall,
                        measured.servers_cpu.unwrap_or(0.0),
                        measured.source_cpu.unwrap_or(0.0),
                        measured.busy.unwrap_or(0.0) * 100.0,
                        measured.rss_kib.unwrap_or(0) as f64 / 1024.0
                    );
                    runs.push(Run {
                        dataset: data.name,
                        method: method.clone(),
                        destinations: k,
                        rows: data.rows,
                        bytes,
                        wall: measured.wall,
                        cpu: measured.cpu,
                        servers_cpu: measured.servers_cpu,
                        source_cpu: measured.source_cpu,
                        busy: measured.busy,
                        rss_kib: measured.rss_kib,
                    });
                }
            }
        }
    }
    drop(destinations);
    drop(source);
    let _ = std::fs::remove_dir_all(&work);
    report::write(&runs, &options.out)
}

/// One measured run.
pub(crate) struct Measured {
    pub(crate) wall: f64,
    /// User and system CPU of the copying processes (none for the server-only floors).
    pub(crate) cpu: Option<(f64, f64)>,
    /// CPU of every process of the source's and the destinations' clusters.
    pub(crate) servers_cpu: Option<f64>,
    /// The part of `servers_cpu` that the source's cluster used.
    pub(crate) source_cpu: Option<f64>,
    /// The machine's busy share (all CPUs, anyone's work) during the run.
    pub(crate) busy: Option<f64>,
    pub(crate) rss_kib: Option<u64>,
}

/// What the kernel says about CPU time: the machine's (`/proc/stat`) and the clusters'
/// (`/proc/PID/stat` of each postmaster and its children).
struct Machine {
    /// Jiffies of all CPUs: busy (neither idle nor waiting for IO) and in all.
    busy: u64,
    total: u64,
    /// Seconds of CPU the clusters' processes used so far, exited backends included.
    servers_cpu: f64,
    /// The part of it the first cluster (the source) used.
    source_cpu: f64,
    /// The clusters' processes alive now.
    children: usize,
}

impl Machine {
    fn read(servers: &[&Cluster]) -> anyhow::Result<Self> {
        let stat = std::fs::read_to_string("/proc/stat")?;
        let cpu: Vec<u64> = stat
            .lines()
            .next()
            .context("empty /proc/stat")?
            .split_whitespace()
            .skip(1)
            .map(|f| f.parse().unwrap_or(0))
            .collect();
        // user nice system idle iowait irq softirq steal (guest time is within user already).
        let total: u64 = cpu.iter().take(8).sum();
        let idle = cpu.get(3).copied().unwrap_or(0) + cpu.get(4).copied().unwrap_or(0);
        let mut ticks = 0;
        let mut source_ticks = None;
        let mut children = 0;
        for cluster in servers {
            let pid_file = std::fs::read_to_string(cluster.data_dir().join("postmaster.pid"))?;
            let postmaster: u32 = pid_file
                .lines()
                .next()
                .and_then(|l| l.trim().parse().ok())
                .context("postmaster.pid holds no pid")?;
            let (cluster_ticks, alive) = cluster_ticks(postmaster)?;
            ticks += cluster_ticks;
            source_ticks.get_or_insert(cluster_ticks);
            children += alive;
        }
        Ok(Self {
            busy: total - idle,
            total,
            servers_cpu: ticks as f64 / clock_ticks(),
            source_cpu: source_ticks.unwrap_or(0) as f64 / clock_ticks(),
            children,
        })
    }

    /// Reads once the clusters have no more processes than `before` (the backends of a run
    /// have exited and been reaped: a backend reaped between reading its postmaster and
    /// listing the children would be missed), or after 5 s.
    fn settle(servers: &[&Cluster], before: &Self) -> anyhow::Result<Self> {
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let now = Self::read(servers)?;
            if now.children <= before.children || Instant::now() > deadline {
                return Ok(now);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    fn busy_since(&self, before: &Self) -> Option<f64> {
        let total = self.total.checked_sub(before.total)?;
        let busy = self.busy.checked_sub(before.busy)?;
        (total > 0).then(|| busy as f64 / total as f64)
    }
}

/// CPU ticks of a postmaster and every process it started (those that exited and were reaped
/// included), and how many of them are alive: read again until no child came or went meanwhile
/// (one reaped between two reads would count twice or not at all).
fn cluster_ticks(postmaster: u32) -> anyhow::Result<(u64, usize)> {
    for _ in 0..100 {
        let before = children_of(postmaster)?;
        // Its own time, and its reaped children's.
        let Some(mut ticks) = process_ticks(postmaster, true) else {
            bail!("postmaster {postmaster} is gone");
        };
        let mut complete = true;
        for &child in &before {
            match process_ticks(child, false) {
                Some(t) => ticks += t,
                None => complete = false,
            }
        }
        if complete && children_of(postmaster)? == before {
            return Ok((ticks, before.len()));
        }
    }
    bail!("the processes of postmaster {postmaster} never held still")
}

/// The processes whose parent is `pid`, in order.
fn children_of(pid: u32) -> anyhow::Result<Vec<u32>> {
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc")? {
        let Ok(child) = entry?.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if parent(child) == Some(pid) {
            children.push(child);
        }
    }
    children.sort_unstable();
    Ok(children)
}

/// The fields of `/proc/PID/stat` after the command name (which may hold spaces).
fn stat_fields(pid: u32) -> Option<Vec<u64>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    // Field 3 (state) is a letter: count it as 0 to keep the numbering.
    Some(
        rest.split_whitespace()
            .map(|f| f.parse().unwrap_or(0))
            .collect(),
    )
}

/// A process's parent.
fn parent(pid: u32) -> Option<u32> {
    stat_fields(pid)?
        .get(1)
        .and_then(|&p| u32::try_from(p).ok())
}

/// utime + stime of a process (fields 14, 15), with its waited-for children's (16, 17) if asked.
fn process_ticks(pid: u32, children: bool) -> Option<u64> {
    let f = stat_fields(pid)?;
    // Field n of proc(5) is f[n - 3].
    let own = f.get(11)? + f.get(12)?;
    Some(if children {
        own + f.get(13)? + f.get(14)?
    } else {
        own
    })
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux).
fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

fn run_method(
    method: &str,
    options: &Options,
    source: &Cluster,
    dests: &[Cluster],
    data: &Dataset,
) -> anyhow::Result<Measured> {
    let table = data.name;
    let src = conninfo(source, options);
    let dest_infos: Vec<String> = dests.iter().map(|d| conninfo(d, options)).collect();
    let send = format!("COPY {table} TO STDOUT");
    let receive = format!("COPY {table} FROM STDIN");
    let to_null = format!("COPY {table} TO '/dev/null'");
    let from_file = format!("COPY {table} FROM '{}'", data.file.display());
    match method {
        "floor-source" => server_only(&[(src, to_null)]),
        "floor-destinations" => server_only(
            &dest_infos
                .iter()
                .map(|d| (d.clone(), from_file.clone()))
                .collect::<Vec<_>>(),
        ),
        "floor" => {
            let mut jobs = vec![(src, to_null)];
            jobs.extend(dest_infos.iter().map(|d| (d.clone(), from_file.clone())));
            server_only(&jobs)
        }
        "psql" => timed(&mut psql_pipe(&src, &dest_infos, table)),
        "tokio-postgres" | "copyman-sync" | "copyman-async" => {
            let mut cmd = Command::new(std::env::current_exe()?);
            let name = method.strip_prefix("copyman-").unwrap_or(method);
            cmd.args([
                "copy",
                "--method",
                name,
                "--source",
                &src,
                "--send",
                &send,
                "--receive",
                &receive,
            ]);
            for d in &dest_infos {
                cmd.args(["--dest", d]);
            }
            timed(&mut cmd)
        }
        "copyman-cli" => {
            let cli = options.cli.as_ref().context("--cli")?;
            let mut cmd = Command::new(cli);
            cmd.args([
                "copy",
                "--quiet",
                "--from",
                &src,
                "--send",
                &send,
                "--receive",
                &receive,
            ]);
            for d in &dest_infos {
                cmd.args(["--to", d]);
            }
            timed(&mut cmd)
        }
        "copyman-job" => {
            // The many-table path (`copyman table --table PATTERN`): a job of this one table,
            // in text as the other methods, with its state file out of the way.
            let cli = options.cli.as_ref().context("--cli")?;
            let state = std::env::temp_dir().join(format!(
                "copyman-bench-{}-{table}.state",
                std::process::id()
            ));
            let _ = std::fs::remove_file(&state);
            let mut cmd = Command::new(cli);
            cmd.args(["table", "--quiet", "--from", &src, "--table", table])
                .args(["--format", "text", "--state"])
                .arg(&state);
            for d in &dest_infos {
                cmd.args(["--to", d]);
            }
            let measured = timed(&mut cmd);
            let _ = std::fs::remove_file(&state);
            measured
        }
        other => bail!("unknown method {other}"),
    }
}

/// How every client connects: the clusters' Unix sockets (as the issue measured), or TCP on
/// 127.0.0.1 with `--tcp`.
fn conninfo(cluster: &Cluster, options: &Options) -> String {
    let tcp = cluster.conninfo("bench");
    let dir = cluster.socket_dir().display().to_string();
    // The testkit's socket directories are plain temporary paths; anything else stays on TCP.
    if options.tcp || dir.contains(|c: char| c.is_whitespace() || c == '\'' || c == '\\') {
        return tcp;
    }
    tcp.replacen(
        &format!("host={} ", cluster.host()),
        &format!("host={dir} "),
        1,
    )
}

/// Runs server-side statements concurrently, one psql each; the wall time is the slowest's.
fn server_only(jobs: &[(String, String)]) -> anyhow::Result<Measured> {
    let start = Instant::now();
    let children = jobs
        .iter()
        .map(|(conninfo, sql)| {
            Command::new("psql")
                .args(["-Xq", "-v", "ON_ERROR_STOP=1", conninfo, "-c", sql])
                .spawn()
        })
        .collect::<Result<Vec<_>, _>>()?;
    for mut child in children {
        ensure!(child.wait()?.success(), "a server-side COPY failed");
    }
    Ok(Measured {
        wall: start.elapsed().as_secs_f64(),
        cpu: None,
        servers_cpu: None,
        source_cpu: None,
        busy: None,
        rss_kib: None,
    })
}

/// The pipe users would write: `psql \copy … to stdout | psql \copy … from stdin`, through `tee`
/// and named pipes for more destinations.
pub(crate) fn psql_pipe(src: &str, dests: &[String], table: &str) -> Command {
    let q = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
    let mut script = String::from("set -e\ncd \"$(mktemp -d)\"\n");
    let mut fifos = Vec::new();
    for (i, d) in dests.iter().enumerate().skip(1) {
        let fifo = format!("f{i}");
        script += &format!(
            "mkfifo {fifo}\npsql -Xq -v ON_ERROR_STOP=1 {} -c {} < {fifo} & p{i}=$!\n",
            q(d),
            q(&format!("\\copy {table} from stdin"))
        );
        fifos.push(fifo);
    }
    let reader = format!(
        "psql -Xq -v ON_ERROR_STOP=1 {} -c {}",
        q(src),
        q(&format!("\\copy {table} to stdout"))
    );
    let writer = format!(
        "psql -Xq -v ON_ERROR_STOP=1 {} -c {}",
        q(&dests[0]),
        q(&format!("\\copy {table} from stdin"))
    );
    if fifos.is_empty() {
        script += &format!("{reader} | {writer}\n");
    } else {
        script += &format!("{reader} | tee {} | {writer}\n", fifos.join(" "));
        for i in 1..dests.len() {
            script += &format!("wait $p{i}\n");
        }
    }
    let mut cmd = Command::new("bash");
    cmd.args(["-c", &script]);
    cmd
}

/// Runs `cmd` under GNU time: wall, user + system CPU of it and its children, peak RSS.
pub(crate) fn timed(cmd: &mut Command) -> anyhow::Result<Measured> {
    let out = tempfile_path("time");
    let mut timed = Command::new("/usr/bin/time");
    timed
        .args(["-f", "%e %U %S %M", "-o"])
        .arg(&out)
        .arg(cmd.get_program())
        .args(cmd.get_args());
    let status = timed
        .stdout(std::process::Stdio::null())
        .status()
        .context("running /usr/bin/time (apt-get install -y time)")?;
    ensure!(status.success(), "{:?} failed", cmd.get_program());
    let text = std::fs::read_to_string(&out)?;
    let _ = std::fs::remove_file(&out);
    let fields: Vec<f64> = text
        .lines()
        .last()
        .unwrap_or_default()
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0.0))
        .collect();
    ensure!(fields.len() == 4, "unexpected GNU time output: {text}");
    Ok(Measured {
        wall: fields[0],
        cpu: Some((fields[1], fields[2])),
        servers_cpu: None,
        source_cpu: None,
        busy: None,
        rss_kib: Some(fields[3] as u64),
    })
}

fn truncate(dests: &[Cluster], table: &str) -> anyhow::Result<()> {
    for d in dests {
        d.connect("bench")
            .batch_execute(&format!("TRUNCATE {table}"))?;
    }
    Ok(())
}

/// Every destination holds exactly the source's rows.
fn verify(dests: &[Cluster], data: &Dataset) -> anyhow::Result<()> {
    for (i, d) in dests.iter().enumerate() {
        let row = d
            .connect("bench")
            .query_one(&format!("SELECT count(*) FROM {}", data.name), &[])?;
        let count: i64 = row.get(0);
        ensure!(
            count as u64 == data.rows,
            "destination {i} holds {count} rows of {}, not {}",
            data.name,
            data.rows
        );
    }
    Ok(())
}

fn tempfile_path(what: &str) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!("copyman-bench-{}-{what}-{n}", std::process::id()))
}

fn set_mode(path: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}
