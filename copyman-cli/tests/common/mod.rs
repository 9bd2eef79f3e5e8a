//! What every CLI test binary shares: the clusters (one source, two destinations, started once per
//! binary), fresh databases, the `copyman` command with a clean libpq environment, and checks.
#![allow(dead_code, unreachable_pub)] // Each test binary uses its own part of these helpers.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::thread;

use copyman_testkit::{Auth, Cluster};
use serde_json::Value;

/// The clusters every test shares.
pub struct Clusters {
    pub source: Cluster,
    pub dest: [Cluster; 2],
}

pub fn clusters() -> &'static Clusters {
    static CLUSTERS: OnceLock<Clusters> = OnceLock::new();
    CLUSTERS.get_or_init(|| three(Cluster::start))
}

/// A source and two destinations that allow prepared transactions (for `--atomic`, or a source
/// prepared with them), started once per test binary.
pub fn two_phase_clusters() -> &'static Clusters {
    static CLUSTERS: OnceLock<Clusters> = OnceLock::new();
    CLUSTERS.get_or_init(|| {
        three(|| {
            Cluster::builder()
                .setting("max_prepared_transactions", "10")
                .start()
        })
    })
}

/// Three clusters started side by side (each start mostly waits for initdb and the server).
fn three(start: impl Fn() -> Cluster + Sync) -> Clusters {
    let (source, a, b) = thread::scope(|s| {
        let source = s.spawn(&start);
        let a = s.spawn(&start);
        let b = s.spawn(&start);
        (source.join().unwrap(), a.join().unwrap(), b.join().unwrap())
    });
    Clusters {
        source,
        dest: [a, b],
    }
}

/// A cluster that takes TCP connections over TLS only.
pub fn tls_cluster() -> &'static Cluster {
    static TLS: OnceLock<Cluster> = OnceLock::new();
    TLS.get_or_init(|| Cluster::builder().auth(Auth::ScramSha256).tls().start())
}

/// A cluster that insists on SCRAM passwords.
pub fn scram_cluster() -> &'static Cluster {
    static SCRAM: OnceLock<Cluster> = OnceLock::new();
    SCRAM.get_or_init(|| Cluster::builder().auth(Auth::ScramSha256).start())
}

/// A fresh database on `cluster` with `sql` run in it; its name.
pub fn database(cluster: &Cluster, sql: &str) -> String {
    let db = cluster.create_database();
    cluster.connect(&db).batch_execute(sql).expect("setup SQL");
    db
}

/// The `copyman` command with a clean libpq environment.
pub fn copyman() -> Command {
    copyman_as(Path::new(env!("CARGO_BIN_EXE_copyman")))
}

/// [`copyman`], started as `program` (a link to it under another name).
pub fn copyman_as(program: &Path) -> Command {
    let mut cmd = Command::new(program);
    // Every libpq variable of the environment the tests run in (PGSERVICEFILE, PGCLIENTENCODING,
    // PGSYSCONFDIR, …): a test sets what it means.
    for (var, _) in std::env::vars_os() {
        if var.to_string_lossy().starts_with("PG") {
            cmd.env_remove(var);
        }
    }
    cmd.env("PGPASSFILE", "/nonexistent/copyman-test-pgpass");
    // The default state files and decision log of this test binary's own, not the user's: a
    // run of copyman's on this machine (its default decision log) was read by a test's recover.
    let own = std::env::temp_dir().join(format!("copyman-cli-{}-xdg", std::process::id()));
    cmd.env("XDG_STATE_HOME", own.join("state"));
    cmd.env("XDG_CACHE_HOME", own.join("cache"));
    cmd.stdin(Stdio::null());
    cmd
}

pub fn run(args: &[&str]) -> Output {
    copyman().args(args).output().expect("run copyman")
}

/// Runs `copyman ARGS` with `input` on its stdin.
pub fn run_with_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = copyman()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn copyman");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = thread::spawn(move || {
        use std::io::Write as _;
        // A run that fails early closes its stdin: a broken pipe here is no failure.
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().expect("copyman output");
    writer.join().unwrap();
    out
}

/// What stdout (a pipe) holds after a run to `--to -` that failed before any data: the mark that
/// fails a COPY reading it, text or CSV, on two lines (a reader skipping a header line fails
/// on the second), and [`mark_tail`].
pub fn unsent() -> Vec<u8> {
    let words = b"\\.copyman: the run failed before any data was sent\n\
                  \"'\\.copyman: the run failed before any data was sent";
    [&words[..], &mark_tail()].concat()
}

/// What ends the mark of data of unknown format, and of a stdout that got none: each byte but
/// NUL, LF and CR 1 602 times in a row, 0xFF and the usual DELIMITERs and QUOTEs first, which
/// no CSV reader of any QUOTE and DELIMITER loads (recheck74 F1).
pub fn mark_tail() -> Vec<u8> {
    const FIRST: [u8; 11] = [
        0xFF, 0x01, 0x02, b'\t', b',', b';', b'|', b' ', b'"', b'\'', 0x1F,
    ];
    let rest = (1..0xFF).filter(|b| ![b'\n', b'\r'].contains(b) && !FIRST.contains(b));
    FIRST
        .into_iter()
        .chain(rest)
        .flat_map(|b| [b; 1602])
        .collect()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[track_caller]
pub fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "exit status\n--- stdout\n{}\n--- stderr\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

pub fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("--json output is not JSON ({e}): {}", text(&out.stdout)))
}

/// Row count and an order-independent digest of a table (md5 of its sorted rows).
pub fn digest(cluster: &Cluster, db: &str, table: &str) -> (i64, String) {
    let row = cluster
        .connect(db)
        .query_one(
            &format!(
                "SELECT count(*), coalesce(md5(string_agg(t::text, ',' ORDER BY t::text)), '') \
                 FROM {table} AS t"
            ),
            &[],
        )
        .expect("digest");
    (row.get(0), row.get(1))
}

pub fn count(cluster: &Cluster, db: &str, table: &str) -> i64 {
    digest(cluster, db, table).0
}

/// A temporary path, removed when dropped.
pub struct TempPath(pub PathBuf);

impl TempPath {
    pub fn new(name: &str) -> Self {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self(std::env::temp_dir().join(format!("copyman-cli-{}-{n}-{name}", std::process::id())))
    }

    pub fn arg(&self) -> &str {
        self.0.to_str().expect("utf-8 temp path")
    }
}

impl Drop for TempPath {
    /// Removes what a test left there: a file, or a directory it made there (a cache directory,
    /// locales built for a cluster) with what it holds.
    fn drop(&mut self) {
        match fs::symlink_metadata(&self.0) {
            Ok(meta) if meta.is_dir() => {
                let _ = fs::remove_dir_all(&self.0);
            }
            _ => {
                let _ = fs::remove_file(&self.0);
            }
        }
    }
}

/// A fresh directory under the temp dir, removed (with what it holds) when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let dir = TempPath::new(name).0.clone();
        fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    /// The path of `name` in it, as an argument.
    pub fn path(&self, name: &str) -> String {
        self.0.join(name).to_str().unwrap().to_owned()
    }

    /// Writes `content` to the file `name` in it, readable by its owner only (a password file
    /// must be), and returns its path.
    pub fn file(&self, name: &str, content: &[u8]) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = self.0.join(name);
        fs::write(&path, content).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        path
    }

    /// Itself, as an argument.
    pub fn arg(&self) -> &str {
        self.0.to_str().unwrap()
    }

    /// Its entries' names, sorted.
    pub fn list(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

pub const ITEMS: &str = "CREATE TABLE items (
    id int8 PRIMARY KEY,
    name text,
    at timestamptz,
    price numeric(12,2),
    tags text[]
);";

pub const FILL_ITEMS: &str = "INSERT INTO items
    SELECT g, CASE WHEN g % 7 = 0 THEN NULL ELSE 'name ' || g || E'\\t\\\\ \"q\"' END,
           timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute',
           CASE WHEN g % 5 = 0 THEN NULL ELSE g * 1.25 END,
           ARRAY['a', 'b,' || g]
    FROM generate_series(1, 1000) AS g;";

/// A copyman run stopped at a point of its commit (`COPYMAN_TEST_PAUSE=POINT@FILE`): it waits
/// while FILE exists, so a test can kill it, or a server, at exactly that point.
pub struct Paused {
    pub child: std::process::Child,
    pub file: TempPath,
}

impl Paused {
    /// Starts `copyman ARGS` to pause at `point`, and waits until it is there.
    pub fn start(args: &[&str], point: &str) -> Self {
        Self::start_with(copyman(), args, point)
    }

    /// [`Paused::start`] with `command` (e.g. [`copyman_as`]).
    pub fn start_with(mut command: Command, args: &[&str], point: &str) -> Self {
        let file = TempPath::new("pause");
        let mut child = command
            .args(args)
            .env("COPYMAN_TEST_PAUSE", format!("{point}@{}", file.arg()))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn copyman");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !file.0.exists() {
            if let Some(status) = child.try_wait().expect("wait") {
                let out = child.wait_with_output().expect("output");
                panic!(
                    "copyman ended ({status}) before pausing at {point}\n--- stderr\n{}",
                    text(&out.stderr)
                );
            }
            assert!(
                std::time::Instant::now() < deadline,
                "copyman never paused at {point}"
            );
            thread::sleep(std::time::Duration::from_millis(20));
        }
        Self { child, file }
    }

    /// Kills copyman (SIGKILL: no cleanup of any kind) and waits for it.
    pub fn kill(mut self) {
        self.child.kill().expect("kill copyman");
        self.child.wait().expect("wait copyman");
    }

    /// Lets copyman go on, its end waited for on a thread of its own.
    pub fn resume_in_background(self) -> thread::JoinHandle<Output> {
        thread::spawn(move || self.resume())
    }

    /// Lets copyman go on, and waits for its end.
    pub fn resume(self) -> Output {
        fs::remove_file(&self.file.0).expect("remove the pause file");
        self.child.wait_with_output().expect("copyman output")
    }
}

/// The prepared transactions of database `db` on `cluster` (the tests run side by side on shared
/// clusters: another database's are another test's).
pub fn prepared_in(cluster: &Cluster, db: &str) -> Vec<String> {
    cluster
        .connect("postgres")
        .query(
            "SELECT gid FROM pg_prepared_xacts WHERE database = $1 ORDER BY gid",
            &[&db],
        )
        .expect("pg_prepared_xacts")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// The global ids of the prepared transactions on `cluster` (any database).
pub fn prepared_xacts(cluster: &Cluster) -> Vec<String> {
    cluster
        .connect("postgres")
        .query("SELECT gid FROM pg_prepared_xacts ORDER BY gid", &[])
        .expect("pg_prepared_xacts")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Backends of database `db` other than the asking one, with their state.
pub fn backends(cluster: &Cluster, db: &str) -> Vec<String> {
    cluster
        .connect("postgres")
        .query(
            "SELECT coalesce(application_name, '') || ':' || coalesce(state, '') \
             FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&db],
        )
        .expect("pg_stat_activity")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Waits (up to 10 s) until database `db` has no backend but the asking one; the ones left.
pub fn settle_backends(cluster: &Cluster, db: &str) -> Vec<String> {
    settle_backends_to(cluster, db, 0)
}

/// Waits (up to 10 s) until database `db` has at most `keep` backends but the asking one (the
/// test's own sessions); the ones left.
pub fn settle_backends_to(cluster: &Cluster, db: &str, keep: usize) -> Vec<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let left = backends(cluster, db);
        if left.len() <= keep || std::time::Instant::now() > deadline {
            return left;
        }
        thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Waits (bounded) until a backend of `db` runs a statement matching `pattern`.
pub fn wait_for_query(cluster: &Cluster, db: &str, pattern: &str) {
    let mut client = cluster.connect("postgres");
    let started = std::time::Instant::now();
    loop {
        let n: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND query ILIKE $2 \
                 AND state = 'active'",
                &[&db, &pattern],
            )
            .unwrap()
            .get(0);
        if n > 0 {
            return;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "no backend of {db} ran {pattern}"
        );
        thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Waits (bounded) until a backend of `db` waits for a lock.
pub fn wait_for_lock(cluster: &Cluster, db: &str) {
    let mut watch = cluster.connect("postgres");
    let started = std::time::Instant::now();
    while watch
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 \
             AND wait_event_type = 'Lock'",
            &[&db],
        )
        .unwrap()
        .get::<_, i64>(0)
        == 0
    {
        assert!(started.elapsed().as_secs() < 60, "copyman never waited");
        thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Waits (bounded) until a backend of `cluster` waits for its synchronous standby to confirm
/// a commit (a COMMIT, a PREPARE TRANSACTION or a COMMIT PREPARED: wait event `SyncRep`).
pub fn wait_for_syncrep(cluster: &Cluster) {
    let mut watch = cluster.connect("postgres");
    let started = std::time::Instant::now();
    while watch
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'",
            &[],
        )
        .unwrap()
        .get::<_, i64>(0)
        == 0
    {
        assert!(started.elapsed().as_secs() < 60, "no commit waited");
        thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Runs `copyman ARGS` while a session of `db` on `cluster` holds `held` (statements that begin
/// a transaction and take a lock: a migration, a reload), committed once copyman waits for a
/// lock there; copyman's output.
pub fn while_held(cluster: &Cluster, db: &str, held: &str, args: &[&str]) -> Output {
    let mut holder = cluster.connect(db);
    holder.batch_execute(held).unwrap();
    let child = copyman()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_lock(cluster, db);
    holder.batch_execute("COMMIT").unwrap();
    child.wait_with_output().unwrap()
}

/// Backends of `db` in a COPY (any state but idle), after waiting (bounded) for them to go.
pub fn copy_backends(cluster: &Cluster, db: &str) -> i64 {
    let mut client = cluster.connect("postgres");
    let started = std::time::Instant::now();
    loop {
        let n: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND query ILIKE 'COPY%' \
                 AND state <> 'idle' AND pid <> pg_backend_pid()",
                &[&db],
            )
            .unwrap()
            .get(0);
        if n == 0 || started.elapsed() > std::time::Duration::from_secs(10) {
            return n;
        }
        thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Sends signal `name` (`INT`, `TERM`, `HUP`, `KILL`) to a child process.
pub fn signal(child: &std::process::Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

/// Reads `reader` (a child's stderr) until a line contains `needle`; returns what was read.
/// Unbounded: a child that never says it hangs the test. Prefer [`StderrLines`].
pub fn read_until(reader: &mut impl std::io::BufRead, needle: &str) -> String {
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line).unwrap();
        assert!(n > 0, "stderr ended before {needle:?}:\n{seen}");
        seen.push_str(&line);
        if line.contains(needle) {
            return seen;
        }
    }
}

/// A child's stderr read aside, line by line: a wait for a line is bounded (60 s), so a run that
/// never says what a test waits for fails the test instead of hanging it.
pub struct StderrLines {
    lines: std::sync::mpsc::Receiver<String>,
    seen: String,
}

impl StderrLines {
    /// Takes `child`'s stderr (it must be piped).
    pub fn take(child: &mut std::process::Child) -> Self {
        let stderr = child.stderr.take().expect("a piped stderr");
        let (tx, lines) = std::sync::mpsc::channel();
        thread::spawn(move || {
            for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)) {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            lines,
            seen: String::new(),
        }
    }

    /// The line that contains `needle`, once it came; `None` if stderr ended or 60 s went by
    /// without it (what was seen is in [`StderrLines::seen`]).
    pub fn wait_for(&mut self, needle: &str) -> Option<String> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = self.lines.recv_timeout(left).ok()?;
            self.seen.push_str(&line);
            self.seen.push('\n');
            if line.contains(needle) {
                return Some(line);
            }
        }
    }

    /// Everything seen so far, and the rest until stderr ends (bounded as `wait_for`).
    pub fn rest(mut self) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
        {
            self.seen.push_str(&line);
            self.seen.push('\n');
        }
        self.seen
    }

    /// What was seen so far.
    pub fn seen(&self) -> &str {
        &self.seen
    }

    /// The line that contains `needle`; fails the test with what was seen if stderr ended or
    /// 60 s went by without it.
    #[track_caller]
    pub fn expect(&mut self, needle: &str) -> String {
        match self.wait_for(needle) {
            Some(line) => line,
            None => panic!("stderr never said {needle:?}:\n{}", self.seen),
        }
    }

    /// What comes from now until stderr ends (bounded as `wait_for`), without what was seen.
    pub fn unseen(self) -> String {
        let said = self.seen.len();
        let mut all = self.rest();
        all.split_off(said)
    }
}

// Not every test binary that holds this module refuses a connection.
#[allow(unused_imports)]
pub use copyman_testkit::closed_port;

/// A session of `cluster` holding `LOCK TABLE table IN ACCESS EXCLUSIVE MODE` in an
/// open transaction (until `ROLLBACK`).
pub fn hold_lock(cluster: &Cluster, db: &str, table: &str) -> postgres::Client {
    let mut holder = cluster.connect(db);
    holder
        .batch_execute(&format!(
            "BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"
        ))
        .unwrap();
    holder
}
