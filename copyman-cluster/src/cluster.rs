//! [`Cluster`]: one throwaway PostgreSQL server, and its [`Builder`].

use std::collections::BTreeSet;
use std::collections::hash_map::RandomState;
use std::fmt::Write as _;
use std::fs::{self, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::Write as _;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use std::{env, process, thread};

use postgres::{Client, Config, NoTls};

use crate::binaries::binaries;
use crate::process::{clean_env, give_to_server, run, server_command, server_owner};
use crate::tls::{CERT_USER, TlsFiles};
use crate::watchdog::Watchdog;

/// The superuser every cluster is created with (`initdb -U postgres`).
pub const SUPERUSER: &str = "postgres";

/// The address the server listens on (and the only one it listens on).
pub const HOST: &str = "127.0.0.1";

/// How long `pg_ctl` may take to start or stop the server.
const PG_CTL_TIMEOUT_SECS: u32 = 60;

/// How long to keep trying to connect once `pg_ctl` reports the server up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// How many fresh ports to try when the chosen one turns out to be taken.
const PORT_ATTEMPTS: usize = 5;

/// Name of the configuration file this crate writes into the data directory
/// and `include`s from `postgresql.conf`.
const CONF_FILE: &str = "copyman-cluster.conf";

/// Numbers the temporary directories and databases made by this process.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// How clients must authenticate, both over TCP (`host 127.0.0.1/32`) and
/// over the Unix socket (`local`). Replication connections use the same
/// method.
///
/// Whatever the method, the superuser has a password
/// ([`Cluster::password`]), stored hashed with the matching algorithm, and
/// `password_encryption` is set to match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Auth {
    /// `trust`: any client may connect as anyone, no password asked.
    #[default]
    Trust,
    /// `md5`: password authentication, with the password stored MD5-hashed
    /// (a SCRAM-hashed password would silently upgrade `md5` to SCRAM).
    Md5,
    /// `scram-sha-256`: password authentication with SCRAM.
    ScramSha256,
}

impl Auth {
    /// The `pg_hba.conf` method name.
    fn hba_method(self) -> &'static str {
        match self {
            Self::Trust => "trust",
            Self::Md5 => "md5",
            Self::ScramSha256 => "scram-sha-256",
        }
    }

    /// The `password_encryption` setting.
    fn password_encryption(self) -> &'static str {
        match self {
            Self::Md5 => "md5",
            Self::Trust | Self::ScramSha256 => "scram-sha-256",
        }
    }

    /// The superuser's password as initdb should store it: already hashed,
    /// so the result does not depend on the server version's default
    /// `password_encryption`.
    fn stored_password(self, password: &str) -> String {
        match self {
            Self::Md5 => postgres_protocol::password::md5(password.as_bytes(), SUPERUSER),
            Self::Trust | Self::ScramSha256 => {
                postgres_protocol::password::scram_sha_256(password.as_bytes())
            }
        }
    }
}

/// Configures a [`Cluster`] before starting it; see [`Cluster::builder`].
#[derive(Debug, Clone, Default)]
#[must_use = "a Builder does nothing until `start` is called"]
pub struct Builder {
    auth: Auth,
    settings: Vec<(String, String)>,
    tls: bool,
    env: Vec<(String, String)>,
}

impl Builder {
    /// Sets how clients authenticate (default [`Auth::Trust`]).
    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    /// Switches TLS on (`ssl = on`) with certificates made for the cluster ([`TlsFiles`]), and
    /// makes TCP connections TLS-only: `pg_hba.conf` has `hostssl` lines and no `host` line, so
    /// a plain TCP connection is refused. [`CERT_USER`] logs in by client certificate. The
    /// its own connections ([`Cluster::connect`]) then use the Unix socket.
    ///
    /// # Panics
    ///
    /// [`start`](Self::start) panics if the `openssl` command is missing.
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Adds a server setting, written to the configuration file after the
    /// its own (so it overrides them, `port` and
    /// `unix_socket_directories` excepted). `value` is the plain value,
    /// e.g. `setting("work_mem", "8MB")`; this crate quotes it.
    ///
    /// # Panics
    ///
    /// [`start`](Self::start) panics if `name` is not a plausible setting
    /// name (letters, digits, `_` and `.`).
    pub fn setting(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.settings.push((name.into(), value.into()));
        self
    }

    /// Sets an environment variable of the server process, e.g. `LOCPATH` for locales built
    /// with `localedef` outside the system's locale directory.
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Creates and starts the cluster, returning once it accepts
    /// connections.
    ///
    /// # Panics
    ///
    /// If the PostgreSQL binaries are missing or anything fails on the way;
    /// the message says what and includes the tail of the server log where
    /// relevant. Whatever was created is removed again.
    pub fn start(self) -> Cluster {
        Cluster::create(self)
    }
}

/// A throwaway PostgreSQL cluster (data directory plus running server),
/// stopped and deleted when dropped.
///
/// The server listens on [`HOST`] (`127.0.0.1`) at a free [`port`](Self::port)
/// and on a Unix socket in a private [`socket_dir`](Self::socket_dir); its
/// superuser is [`SUPERUSER`] (`postgres`). Durability is switched off for
/// speed (`fsync`, `synchronous_commit` and `full_page_writes` are `off`).
///
/// Dropping the cluster, including during a panic's unwinding, stops the
/// server with `pg_ctl stop -m immediate` and removes every file. If the
/// test process dies without unwinding, a watchdog process does the same
/// (see the crate documentation).
///
/// When the tests run as root the server runs as the OS user `postgres`,
/// which owns the data directory.
#[derive(Debug)]
pub struct Cluster {
    /// Temporary directory holding everything below; removed on drop.
    root: PathBuf,
    data_dir: PathBuf,
    socket_dir: PathBuf,
    log_file: PathBuf,
    port: u16,
    auth: Auth,
    password: String,
    /// Whether this crate believes the server is running.
    running: Mutex<bool>,
    /// `None` only while being created, or once dropped.
    watchdog: Option<Watchdog>,
    /// The certificates, when TLS is on.
    tls: Option<TlsFiles>,
    /// The server process's own environment variables ([`Builder::env`]).
    env: Vec<(String, String)>,
}

impl Cluster {
    /// Starts a cluster with default settings and [`Auth::Trust`].
    ///
    /// # Panics
    ///
    /// See [`Builder::start`].
    pub fn start() -> Self {
        Self::builder().start()
    }

    /// A [`Builder`] to configure authentication and settings first:
    /// `Cluster::builder().auth(Auth::ScramSha256).setting("work_mem", "8MB").start()`.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// TCP port the server listens on (on [`HOST`]). Stays the same across
    /// [`stop_immediate`](Self::stop_immediate) and
    /// [`start_again`](Self::start_again).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The address the server listens on: always `"127.0.0.1"`.
    pub fn host(&self) -> &'static str {
        HOST
    }

    /// The private directory holding the server's Unix socket; usable as a
    /// `host` in connection strings.
    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    /// The cluster's data directory (`PGDATA`).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The server log file (the server's stderr).
    pub fn log_file(&self) -> &Path {
        &self.log_file
    }

    /// The authentication method the cluster was built with.
    pub fn auth(&self) -> Auth {
        self.auth
    }

    /// The superuser's name: always `"postgres"`.
    pub fn user(&self) -> &'static str {
        SUPERUSER
    }

    /// The superuser's password. Every cluster has one, even with
    /// [`Auth::Trust`] (where the server never asks for it).
    pub fn password(&self) -> &str {
        &self.password
    }

    /// A `key=value` connection string for database `db` over TCP, as the
    /// superuser with password, e.g.
    /// `host=127.0.0.1 port=40123 user=postgres password=… dbname=postgres`.
    /// Parses with `postgres::Config::from_str` and libpq alike.
    pub fn conninfo(&self, db: &str) -> String {
        format!(
            "host={HOST} port={} user={SUPERUSER} password={} dbname={}",
            self.port,
            conninfo_quote(&self.password),
            conninfo_quote(db)
        )
    }

    /// A `postgresql://` URL for database `db` over TCP, as the superuser
    /// with password.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgresql://{SUPERUSER}:{}@{HOST}:{}/{}",
            percent_encode(&self.password),
            self.port,
            percent_encode(db)
        )
    }

    /// A [`postgres::Config`] for database `db` over TCP, as the superuser
    /// with password.
    pub fn config(&self, db: &str) -> Config {
        let mut config = Config::new();
        config
            .host(HOST)
            .port(self.port)
            .user(SUPERUSER)
            .password(&self.password)
            .dbname(db);
        config
    }

    /// The configuration its own connections use: [`config`](Self::config) over TCP, or
    /// over the Unix socket when TCP needs TLS (which this crate's client does not speak).
    fn admin_config(&self, db: &str) -> Config {
        if self.tls.is_none() {
            return self.config(db);
        }
        let mut unix = Config::new();
        unix.host_path(&self.socket_dir)
            .port(self.port)
            .user(SUPERUSER)
            .password(&self.password)
            .dbname(db);
        unix
    }

    /// Connects to database `db` as the superuser (over the Unix socket if the cluster has TLS).
    ///
    /// # Panics
    ///
    /// If the connection fails.
    pub fn connect(&self, db: &str) -> Client {
        self.admin_config(db).connect(NoTls).unwrap_or_else(|e| {
            panic!(
                "copyman-cluster: cannot connect to {}: {e}",
                self.conninfo(db)
            )
        })
    }

    /// Creates a fresh, uniquely named, empty database and returns its name
    /// (a plain lowercase identifier, no quoting needed).
    ///
    /// # Panics
    ///
    /// If `CREATE DATABASE` fails.
    pub fn create_database(&self) -> String {
        let name = format!(
            "copyman_test_{}_{}",
            process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        self.with_admin_client(|client| {
            client
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .unwrap_or_else(|e| panic!("copyman-cluster: CREATE DATABASE {name} failed: {e}"));
        });
        name
    }

    /// Terminates every backend connected to database `db` (other than the
    /// one issuing the command) with `pg_terminate_backend`, waits until
    /// they are gone, and returns how many there were.
    ///
    /// # Panics
    ///
    /// If the query fails, or the backends are still there after 30 s.
    pub fn terminate_backends(&self, db: &str) -> usize {
        self.with_admin_client(|client| {
            // Two steps: in one query the planner may well evaluate
            // pg_terminate_backend before the other conditions.
            let pids: Vec<i32> = client
            .query(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                &[&db],
            )
            .and_then(|rows| {
                let pids: Vec<i32> = rows.iter().map(|row| row.get(0)).collect();
                client.query(
                    "SELECT pid FROM unnest($1::int4[]) AS pid WHERE pg_terminate_backend(pid)",
                    &[&pids],
                )
            })
            .unwrap_or_else(|e| panic!("copyman-cluster: terminating backends of {db}: {e}"))
            .iter()
            .map(|row| row.get(0))
            .collect();
            wait_for_exit(client, &pids);
            pids.len()
        })
    }

    /// Terminates the backend with process id `pid` (as returned by
    /// `pg_backend_pid()` or `postgres::Client`'s backend) with
    /// `pg_terminate_backend` and waits until it is gone. Returns `false` if
    /// there was no such backend.
    ///
    /// # Panics
    ///
    /// If the query fails, or the backend is still there after 30 s.
    pub fn terminate_backend(&self, pid: i32) -> bool {
        self.with_admin_client(|client| {
            let terminated: bool = client
                .query_one("SELECT pg_terminate_backend($1)", &[&pid])
                .unwrap_or_else(|e| panic!("copyman-cluster: terminating backend {pid}: {e}"))
                .get(0);
            if terminated {
                wait_for_exit(client, &[pid]);
            }
            terminated
        })
    }

    /// Whether the server is running, as far as this crate knows (it was
    /// started and not stopped with [`stop_immediate`](Self::stop_immediate)).
    pub fn is_running(&self) -> bool {
        *self.lock_running()
    }

    /// Stops the server abruptly (`pg_ctl stop -m immediate`: no checkpoint,
    /// clients see their connections drop), keeping the data directory. For
    /// fault-injection tests; see [`start_again`](Self::start_again). Does
    /// nothing if the server is already stopped.
    ///
    /// Do not call this on a cluster others share (copyman-testkit's `shared()`).
    ///
    /// # Panics
    ///
    /// If `pg_ctl` fails.
    pub fn stop_immediate(&self) {
        let mut running = self.lock_running();
        if !*running {
            return;
        }
        if let Err(e) = self.pg_ctl_stop() {
            panic!(
                "copyman-cluster: stopping the server failed: {e}{}",
                self.log_tail()
            );
        }
        *running = false;
    }

    /// Stops the server cleanly (`pg_ctl stop -m fast`: sessions ended, a shutdown checkpoint,
    /// no crash recovery at the next start) and starts it again on the same data directory
    /// and port, waiting until it accepts connections: a restart after which UNLOGGED tables
    /// keep their rows and the cumulative statistics are kept.
    ///
    /// Do not call this on a cluster others share (copyman-testkit's `shared()`).
    ///
    /// # Panics
    ///
    /// If the server is stopped, or `pg_ctl` fails, or it does not come up again.
    pub fn restart(&self) {
        {
            let mut running = self.lock_running();
            assert!(*running, "copyman-cluster: restart of a stopped server");
            if let Err(e) = self.pg_ctl_stop_as("fast") {
                panic!(
                    "copyman-cluster: stopping the server failed: {e}{}",
                    self.log_tail()
                );
            }
            *running = false;
        }
        self.start_again();
    }

    /// Kills one of the server's backends with SIGKILL, as the kernel's OOM killer does: the
    /// postmaster ends every session and runs crash recovery without starting anew (its start
    /// time stays; UNLOGGED tables are emptied, the statistics reset). Waits until the server
    /// accepts connections again, recovered.
    ///
    /// Do not call this on a cluster others share (copyman-testkit's `shared()`).
    ///
    /// # Panics
    ///
    /// If the backend cannot be killed, or the server does not come back.
    pub fn crash_a_backend(&self) {
        const RESET: &str = "SELECT coalesce(stats_reset::text, '') FROM pg_stat_bgwriter";
        off_runtime(|| {
            let mut client = self.connect("postgres");
            let before: String = client.query_one(RESET, &[]).unwrap().get(0);
            let pid: i32 = client
                .query_one("SELECT pg_backend_pid()", &[])
                .unwrap()
                .get(0);
            let killed = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            assert!(
                killed.as_ref().is_ok_and(|s| s.success()),
                "copyman-cluster: kill -KILL {pid}: {killed:?}"
            );
            drop(client);
            let deadline = Instant::now() + CONNECT_TIMEOUT;
            loop {
                let after = (self.admin_config("postgres").connect(NoTls).ok())
                    .and_then(|mut c| c.query_one(RESET, &[]).ok())
                    .map(|row| row.get::<_, String>(0));
                if after.is_some_and(|after| after != before) {
                    return;
                }
                assert!(
                    Instant::now() < deadline,
                    "copyman-cluster: the server did not recover from a killed backend within \
                     {CONNECT_TIMEOUT:?}{}",
                    self.log_tail()
                );
                thread::sleep(Duration::from_millis(50));
            }
        });
    }

    /// Starts the server again after [`stop_immediate`](Self::stop_immediate),
    /// on the same data directory and port (the server runs crash recovery
    /// first), and waits until it accepts connections. Does nothing if the
    /// server is running.
    ///
    /// # Panics
    ///
    /// If the server does not come up, e.g. because something else took the
    /// port meanwhile.
    pub fn start_again(&self) {
        let mut running = self.lock_running();
        if *running {
            return;
        }
        if let Err(e) = self.pg_ctl_start() {
            panic!(
                "copyman-cluster: restarting the server on port {} failed: {e}{}",
                self.port,
                self.log_tail()
            );
        }
        *running = true;
        self.wait_until_accepting();
    }

    /// A second cluster started from a file-level copy of this one's data directory, as a
    /// copied data directory, `pg_basebackup` or a restore makes one: the same system
    /// identifier, databases and oids, on its own port and socket, with the default settings
    /// (the builder's custom settings and TLS are not carried). This cluster is stopped for the
    /// copy and started again.
    ///
    /// Do not call this on a cluster others share (copyman-testkit's `shared()`).
    ///
    /// # Panics
    ///
    /// If the copy or either server's start fails.
    pub fn clone_data(&self) -> Self {
        self.copy_data(false)
    }

    /// A hot standby of this cluster: [`clone_data`](Self::clone_data) started in recovery
    /// (`standby.signal`), read-only, with no primary to stream from. It shares this cluster's
    /// identity and what it had prepared.
    ///
    /// # Panics
    ///
    /// As [`clone_data`](Self::clone_data).
    pub fn clone_as_standby(&self) -> Self {
        self.copy_data(true)
    }

    /// Promotes a standby ([`clone_as_standby`](Self::clone_as_standby)) to a primary, as a
    /// failover does: it writes on a new timeline from then on, with its origin's system
    /// identifier.
    ///
    /// # Panics
    ///
    /// If `pg_ctl promote` fails (this cluster is not a standby).
    pub fn promote(&self) {
        let mut cmd = server_command(&binaries().pg_ctl, &self.root);
        cmd.arg("promote").arg("-D").arg(&self.data_dir).args([
            "-w",
            "-s",
            "-t",
            &PG_CTL_TIMEOUT_SECS.to_string(),
        ]);
        if let Err(e) = run(&mut cmd) {
            panic!(
                "copyman-cluster: promoting the standby failed: {e}{}",
                self.log_tail()
            );
        }
    }

    fn copy_data(&self, standby: bool) -> Self {
        let root = make_root_dir();
        let mut clone = Self {
            data_dir: root.join("data"),
            socket_dir: root.join("socket"),
            log_file: root.join("server.log"),
            root,
            port: 0,
            auth: self.auth,
            password: self.password.clone(),
            running: Mutex::new(false),
            watchdog: None,
            tls: None,
            env: self.env.clone(),
        };
        clone.watchdog = Some(Watchdog::spawn(
            &binaries().pg_ctl,
            &clone.data_dir,
            &clone.root,
        ));
        check_socket_path_len(&clone.socket_dir);
        fs::create_dir(&clone.socket_dir).unwrap_or_else(|e| {
            panic!(
                "copyman-cluster: cannot create {}: {e}",
                clone.socket_dir.display()
            )
        });
        set_private(&clone.socket_dir);
        give_to_server(&clone.socket_dir);
        // A standby needs at least its primary's limits (it replays what they allowed).
        let mut settings = Vec::new();
        if standby {
            self.with_admin_client(|client| {
                for name in [
                    "max_prepared_transactions",
                    "max_connections",
                    "max_locks_per_transaction",
                ] {
                    let value: String = client
                        .query_one(&format!("SHOW {name}"), &[])
                        .unwrap_or_else(|e| panic!("copyman-cluster: SHOW {name} failed: {e}"))
                        .get(0);
                    settings.push((name.to_owned(), value));
                }
            });
        }
        // An immediate stop loses what `synchronous_commit = off` has not flushed yet.
        self.with_admin_client(|client| {
            client
                .batch_execute("CHECKPOINT")
                .unwrap_or_else(|e| panic!("copyman-cluster: CHECKPOINT failed: {e}"));
        });
        self.stop_immediate();
        // `cp -a` keeps the files' owner (the server's OS user) and modes.
        let copied = run(Command::new("cp")
            .arg("-a")
            .arg(&self.data_dir)
            .arg(&clone.data_dir));
        self.start_again();
        if let Err(e) = copied {
            panic!("copyman-cluster: copying the data directory failed: {e}");
        }
        let _ = fs::remove_file(clone.data_dir.join("postmaster.pid"));
        if standby {
            let signal = clone.data_dir.join("standby.signal");
            fs::write(&signal, "").unwrap_or_else(|e| {
                panic!("copyman-cluster: cannot write {}: {e}", signal.display())
            });
            give_to_server(&signal);
        }
        clone.start_on_free_port(&settings);
        clone
    }

    /// Runs `sql` with the installed `psql` against database `db` (unaligned,
    /// tuples only, `ON_ERROR_STOP`, no `.psqlrc`) and returns its standard
    /// output.
    ///
    /// # Panics
    ///
    /// If `psql` is not installed or exits unsuccessfully.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let psql = binaries().psql.as_ref().unwrap_or_else(|| {
            panic!(
                "copyman-cluster: psql not found next to the server binaries or on PATH: \
                 install it, e.g. `apt-get install -y postgresql-client`"
            )
        });
        let mut cmd = Command::new(psql);
        clean_env(&mut cmd);
        cmd.args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            HOST,
            "-U",
            SUPERUSER,
        ])
        .arg("-p")
        .arg(self.port.to_string())
        .arg("-d")
        .arg(db)
        .arg("-c")
        .arg(sql)
        .env("PGPASSWORD", &self.password);
        let out = run(&mut cmd).unwrap_or_else(|e| panic!("copyman-cluster: {e}"));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    // ---- creation ---------------------------------------------------------

    fn create(builder: Builder) -> Self {
        let bins = binaries();
        for (name, _) in &builder.settings {
            assert!(
                !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_.".contains(c)),
                "copyman-cluster: invalid setting name {name:?}"
            );
        }
        let root = make_root_dir();
        let mut cluster = Self {
            data_dir: root.join("data"),
            socket_dir: root.join("socket"),
            log_file: root.join("server.log"),
            root,
            port: 0,
            auth: builder.auth,
            password: random_password(),
            running: Mutex::new(false),
            watchdog: None,
            tls: None,
            env: builder.env.clone(),
        };
        // From here on a panic drops `cluster`, which cleans up; the watchdog
        // covers deaths without unwinding.
        cluster.watchdog = Some(Watchdog::spawn(
            &bins.pg_ctl,
            &cluster.data_dir,
            &cluster.root,
        ));
        check_socket_path_len(&cluster.socket_dir);
        fs::create_dir(&cluster.socket_dir).unwrap_or_else(|e| {
            panic!(
                "copyman-cluster: cannot create {}: {e}",
                cluster.socket_dir.display()
            )
        });
        set_private(&cluster.socket_dir);
        give_to_server(&cluster.socket_dir);

        cluster.initdb();
        let mut settings = builder.settings;
        if builder.tls {
            settings.splice(0..0, cluster.set_up_tls());
        }
        cluster.write_hba();
        cluster.start_on_free_port(&settings);
        if cluster.tls.is_some() {
            cluster.with_admin_client(|client| {
                client
                    .batch_execute(&format!("CREATE ROLE {CERT_USER} LOGIN SUPERUSER"))
                    .unwrap_or_else(|e| panic!("copyman-cluster: CREATE ROLE failed: {e}"));
            });
        }
        cluster
    }

    /// Makes the certificates, gives the server its own, and returns the settings for them.
    fn set_up_tls(&mut self) -> Vec<(String, String)> {
        let dir = self.root.join("tls");
        fs::create_dir(&dir)
            .unwrap_or_else(|e| panic!("copyman-cluster: cannot create {}: {e}", dir.display()));
        let files = TlsFiles::make(&dir);
        let mut settings = vec![("ssl".to_owned(), "on".to_owned())];
        for (from, name, setting) in [
            (&files.server_cert, "server.crt", "ssl_cert_file"),
            (&files.server_key, "server.key", "ssl_key_file"),
            (&files.ca_cert, "root.crt", "ssl_ca_file"),
        ] {
            let to = self.data_dir.join(name);
            fs::copy(from, &to)
                .unwrap_or_else(|e| panic!("copyman-cluster: cannot copy {}: {e}", from.display()));
            // The server refuses a key file others can read.
            fs::set_permissions(&to, fs::Permissions::from_mode(0o600))
                .unwrap_or_else(|e| panic!("copyman-cluster: cannot chmod {}: {e}", to.display()));
            give_to_server(&to);
            settings.push((setting.to_owned(), name.to_owned()));
        }
        self.tls = Some(files);
        settings
    }

    /// The certificate files, when the cluster was built with [`Builder::tls`].
    pub fn tls_files(&self) -> Option<&TlsFiles> {
        self.tls.as_ref()
    }

    fn initdb(&self) {
        let pwfile = self.root.join("pwfile");
        fs::write(&pwfile, self.auth.stored_password(&self.password) + "\n")
            .unwrap_or_else(|e| panic!("copyman-cluster: cannot write {}: {e}", pwfile.display()));
        give_to_server(&pwfile);
        let mut cmd = server_command(&binaries().initdb, &self.root);
        cmd.arg("-D")
            .arg(&self.data_dir)
            .args(["-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--locale=C"])
            .args(["--no-sync", "--no-instructions"])
            .arg(format!("--pwfile={}", pwfile.display()));
        let result = run(&mut cmd);
        let _ = fs::remove_file(&pwfile);
        if let Err(e) = result {
            let hint = if server_owner().is_some() {
                format!(
                    "\n(running as root: initdb runs as the OS user `postgres`, which must be \
                     able to reach {}; set ${TMPDIR_ENV} or TMPDIR to a directory it can enter)",
                    self.root.display()
                )
            } else {
                String::new()
            };
            panic!("copyman-cluster: initdb failed: {e}{hint}");
        }
    }

    fn write_hba(&self) {
        let m = self.auth.hba_method();
        let hba = if self.tls.is_some() {
            format!(
                "# Written by copyman-cluster: TCP only with TLS.\n\
                 # TYPE  DATABASE    USER         ADDRESS      METHOD\n\
                 local   all         all                       {m}\n\
                 hostssl all         {CERT_USER} 127.0.0.1/32 cert\n\
                 hostssl all         all          127.0.0.1/32 {m}\n\
                 local   replication all                       {m}\n\
                 hostssl replication all          127.0.0.1/32 {m}\n"
            )
        } else {
            format!(
                "# Written by copyman-cluster.\n\
                 # TYPE DATABASE    USER ADDRESS      METHOD\n\
                 local  all         all               {m}\n\
                 host   all         all  127.0.0.1/32 {m}\n\
                 local  replication all               {m}\n\
                 host   replication all  127.0.0.1/32 {m}\n"
            )
        };
        // Overwriting keeps the file's owner and mode.
        let path = self.data_dir.join("pg_hba.conf");
        fs::write(&path, hba)
            .unwrap_or_else(|e| panic!("copyman-cluster: cannot write {}: {e}", path.display()));
    }

    /// Writes the configuration for `port` and starts the server, retrying on
    /// another port if the chosen one was taken in the meantime.
    fn start_on_free_port(&mut self, settings: &[(String, String)]) {
        for attempt in 1..=PORT_ATTEMPTS {
            self.port = pick_port();
            self.write_conf(settings);
            match self.pg_ctl_start() {
                Ok(()) => {
                    *self.lock_running() = true;
                    self.wait_until_accepting();
                    return;
                }
                Err(e) => {
                    let log = fs::read_to_string(&self.log_file).unwrap_or_default();
                    let port_taken = log.contains("Address already in use")
                        || log.contains("could not create any TCP/IP sockets");
                    if !port_taken || attempt == PORT_ATTEMPTS {
                        panic!(
                            "copyman-cluster: starting PostgreSQL failed: {e}{}",
                            self.log_tail()
                        );
                    }
                    // pg_ctl appends; keep the log of the next attempt clean.
                    let _ = fs::remove_file(&self.log_file);
                }
            }
        }
    }

    fn write_conf(&self, settings: &[(String, String)]) {
        let mut conf = String::from("# Written by copyman-cluster.\n");
        let base = [
            ("listen_addresses", HOST.to_owned()),
            ("fsync", "off".to_owned()),
            ("synchronous_commit", "off".to_owned()),
            ("full_page_writes", "off".to_owned()),
            ("shared_buffers", "32MB".to_owned()),
            ("max_connections", "100".to_owned()),
            (
                "password_encryption",
                self.auth.password_encryption().to_owned(),
            ),
        ];
        let custom = settings.iter().map(|(k, v)| (k.as_str(), v.clone()));
        for (name, value) in base.into_iter().chain(custom) {
            let _ = writeln!(conf, "{name} = '{}'", value.replace('\'', "''"));
        }
        // The port and socket directory must stay ours whatever was asked.
        let _ = writeln!(conf, "port = {}", self.port);
        let socket_dir = self.socket_dir.display().to_string().replace('\'', "''");
        let _ = writeln!(conf, "unix_socket_directories = '{socket_dir}'");
        let path = self.data_dir.join(CONF_FILE);
        fs::write(&path, conf)
            .unwrap_or_else(|e| panic!("copyman-cluster: cannot write {}: {e}", path.display()));
        give_to_server(&path);

        let main_conf = self.data_dir.join("postgresql.conf");
        let include = format!("include '{CONF_FILE}'");
        let current = fs::read_to_string(&main_conf).unwrap_or_default();
        if !current.contains(&include) {
            OpenOptions::new()
                .append(true)
                .open(&main_conf)
                .and_then(|mut f| writeln!(f, "\n{include}"))
                .unwrap_or_else(|e| {
                    panic!(
                        "copyman-cluster: cannot append to {}: {e}",
                        main_conf.display()
                    )
                });
        }
    }

    // ---- running ----------------------------------------------------------

    fn pg_ctl_start(&self) -> Result<(), String> {
        let mut cmd = server_command(&binaries().pg_ctl, &self.root);
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd.arg("start")
            .arg("-D")
            .arg(&self.data_dir)
            .arg("-l")
            .arg(&self.log_file)
            .args(["-w", "-s", "-t", &PG_CTL_TIMEOUT_SECS.to_string()]);
        run(&mut cmd).map(drop)
    }

    fn pg_ctl_stop(&self) -> Result<(), String> {
        self.pg_ctl_stop_as("immediate")
    }

    /// `pg_ctl stop` in shutdown `mode` (`fast`, `immediate`), waiting for it.
    fn pg_ctl_stop_as(&self, mode: &str) -> Result<(), String> {
        let mut cmd = server_command(&binaries().pg_ctl, &self.root);
        cmd.arg("stop").arg("-D").arg(&self.data_dir).args([
            "-m",
            mode,
            "-w",
            "-s",
            "-t",
            &PG_CTL_TIMEOUT_SECS.to_string(),
        ]);
        run(&mut cmd).map(drop)
    }

    /// Tries to connect until it works: `pg_ctl -w` already waited for the
    /// server to report itself ready, this also proves authentication works.
    fn wait_until_accepting(&self) {
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        off_runtime(|| {
            loop {
                match self.admin_config("postgres").connect(NoTls) {
                    Ok(_) => return,
                    Err(e) if Instant::now() >= deadline => panic!(
                        "copyman-cluster: the server did not accept connections on port {} \
                         within {CONNECT_TIMEOUT:?}: {e}{}",
                        self.port,
                        self.log_tail()
                    ),
                    Err(_) => thread::sleep(Duration::from_millis(50)),
                }
            }
        });
    }

    /// Runs `f` with a fresh superuser connection to the `postgres` database,
    /// off any async runtime (see [`off_runtime`]).
    fn with_admin_client<T: Send>(&self, f: impl FnOnce(&mut Client) -> T + Send) -> T {
        off_runtime(|| f(&mut self.connect("postgres")))
    }

    fn lock_running(&self) -> MutexGuard<'_, bool> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The last lines of the server log, formatted to append to a message.
    fn log_tail(&self) -> String {
        const LINES: usize = 30;
        match fs::read_to_string(&self.log_file) {
            Ok(log) => {
                let lines: Vec<&str> = log.lines().collect();
                let tail = lines[lines.len().saturating_sub(LINES)..].join("\n");
                format!(
                    "\n--- last lines of {} ---\n{tail}",
                    self.log_file.display()
                )
            }
            Err(e) => format!("\n(no server log at {}: {e})", self.log_file.display()),
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Must not panic: this also runs while unwinding from a failed test.
        let mut clean = true;
        if self.data_dir.join("postmaster.pid").exists()
            && let Err(e) = self.pg_ctl_stop()
        {
            // Not `eprintln!`, which panics when stderr is gone (`copyman demo 2>&1 | head`).
            let _ = writeln!(
                std::io::stderr(),
                "copyman-cluster: stopping the server failed: {e}{}",
                self.log_tail()
            );
            clean = false;
        }
        if let Err(e) = fs::remove_dir_all(&self.root) {
            let _ = writeln!(
                std::io::stderr(),
                "copyman-cluster: cannot remove {}: {e}",
                self.root.display()
            );
            clean = false;
        }
        if let Some(watchdog) = self.watchdog.take()
            && clean
        {
            watchdog.stand_down();
        }
        // Otherwise dropping it closes its stdin: it retries right away.
    }
}

// ---- helpers ------------------------------------------------------------------

/// Environment variable naming the directory to create clusters in, instead
/// of the system temp directory.
const TMPDIR_ENV: &str = "COPYMAN_CLUSTER_TMPDIR";

/// Creates a new, uniquely named directory under `$COPYMAN_CLUSTER_TMPDIR` or
/// else the system temp directory, private and owned by the server's OS user.
fn make_root_dir() -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let name = format!(
        "copyman-cluster-{}-{}-{nanos}",
        process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let parent = env::var_os(TMPDIR_ENV).map_or_else(default_parent, PathBuf::from);
    let root = parent.join(name);
    fs::create_dir(&root)
        .unwrap_or_else(|e| panic!("copyman-cluster: cannot create {}: {e}", root.display()));
    set_private(&root);
    give_to_server(&root);
    root
}

/// Where clusters go by default: `/dev/shm` when it is there (a tmpfs: initdb runs two to four
/// times faster than on disk, and nothing here needs to survive), else the system temp directory.
fn default_parent() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() && fs::metadata(shm).is_ok_and(|m| !m.permissions().readonly()) {
        shm.to_path_buf()
    } else {
        env::temp_dir()
    }
}

fn set_private(dir: &Path) {
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .unwrap_or_else(|e| panic!("copyman-cluster: cannot chmod {}: {e}", dir.display()));
}

/// Unix socket paths are limited to 107 bytes on Linux (103 on macOS).
fn check_socket_path_len(socket_dir: &Path) {
    let len = socket_dir.join(".s.PGSQL.65535").as_os_str().len();
    assert!(
        len <= 100,
        "copyman-cluster: the Unix socket path under {} would be {len} bytes, too long for a \
         socket; set ${TMPDIR_ENV} or TMPDIR to a shorter directory",
        socket_dir.display()
    );
}

/// A free port on 127.0.0.1, never one handed out before in this process (so
/// a dropped cluster's port is not immediately reused by the next one).
fn pick_port() -> u16 {
    static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    loop {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|listener| listener.local_addr())
            .unwrap_or_else(|e| panic!("copyman-cluster: cannot find a free port: {e}"))
            .port();
        if HANDED_OUT
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(port)
        {
            return port;
        }
    }
}

/// 32 hex digits from std's randomly keyed hasher.
fn random_password() -> String {
    let mut password = String::from("pw");
    for _ in 0..2 {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u128(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        let _ = write!(password, "{:016x}", hasher.finish());
    }
    password
}

/// Runs `f` on a short-lived thread of its own: the blocking `postgres`
/// client panics when used on a thread that runs an async (tokio) runtime,
/// as in `#[tokio::test]`, and this crate's helpers should work there too.
fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    thread::scope(|scope| match scope.spawn(f).join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// Polls until none of `pids` is in `pg_stat_activity`.
fn wait_for_exit(client: &mut Client, pids: &[i32]) {
    if pids.is_empty() {
        return;
    }
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    loop {
        let left: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1)",
                &[&pids],
            )
            .unwrap_or_else(|e| panic!("copyman-cluster: polling pg_stat_activity: {e}"))
            .get(0);
        if left == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "copyman-cluster: backends {pids:?} still running {CONNECT_TIMEOUT:?} after \
             pg_terminate_backend"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// Quotes a value for a `key=value` connection string if it needs it.
fn conninfo_quote(value: &str) -> String {
    let plain = !value.is_empty()
        && !value
            .chars()
            .any(|c| c.is_whitespace() || c == '\'' || c == '\\' || c == '=');
    if plain {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conninfo_values_are_quoted_when_needed() {
        assert_eq!(conninfo_quote("postgres"), "postgres");
        assert_eq!(conninfo_quote(""), "''");
        assert_eq!(conninfo_quote("a b'c\\"), r"'a b\'c\\'");
        let parsed: Config = format!("dbname={}", conninfo_quote("it's a db"))
            .parse()
            .unwrap();
        assert_eq!(parsed.get_dbname(), Some("it's a db"));
    }

    #[test]
    fn urls_are_percent_encoded() {
        assert_eq!(percent_encode("my db/1"), "my%20db%2F1");
        assert_eq!(percent_encode("plain_name-1.x~"), "plain_name-1.x~");
    }
}
