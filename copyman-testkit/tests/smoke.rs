//! End-to-end checks of the testkit against the installed PostgreSQL.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use copyman_testkit::{Auth, Cluster, shared};
use postgres::NoTls;
use postgres::error::SqlState;

/// Set in the child process of `watchdog_cleans_up_after_sigkill`.
const CHILD_ENV: &str = "COPYMAN_TESTKIT_WATCHDOG_CHILD";

fn accepts_connections(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// Polls `cond` for up to 30 s.
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn copy_out_streams_generate_series() {
    let cluster = shared();
    let mut client = cluster.connect("postgres");
    let mut data = String::new();
    client
        .copy_out("COPY (SELECT generate_series(1, 1000)) TO STDOUT")
        .unwrap()
        .read_to_string(&mut data)
        .unwrap();
    let rows: Vec<u32> = data.lines().map(|line| line.parse().unwrap()).collect();
    assert_eq!(rows.len(), 1000);
    assert_eq!(rows, (1..=1000).collect::<Vec<_>>());
}

#[test]
fn connection_strings_work() {
    let cluster = shared();
    let db = cluster.create_database();
    let from_conninfo: postgres::Config = cluster.conninfo(&db).parse().unwrap();
    let from_url: postgres::Config = cluster.url(&db).parse().unwrap();
    for config in [from_conninfo, from_url] {
        let mut client = config.connect(NoTls).unwrap();
        let name: String = client
            .query_one("SELECT current_database()", &[])
            .unwrap()
            .get(0);
        assert_eq!(name, db);
    }
    let mut via_socket = cluster.config(&db);
    via_socket.host_path(cluster.socket_dir());
    via_socket.connect(NoTls).unwrap();
    assert_eq!(cluster.psql(&db, "SELECT 40 + 2").trim(), "42");
}

#[test]
fn create_database_gives_distinct_databases() {
    let cluster = shared();
    let a = cluster.create_database();
    let b = cluster.create_database();
    assert_ne!(a, b);
    cluster
        .connect(&a)
        .batch_execute("CREATE TABLE only_in_a (x int)")
        .unwrap();
    let in_b: i64 = cluster
        .connect(&b)
        .query_one(
            "SELECT count(*) FROM pg_class WHERE relname = 'only_in_a'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(in_b, 0);
}

#[test]
fn terminate_backends_kills_connections() {
    let cluster = shared();
    let db = cluster.create_database();
    let mut victim = cluster.connect(&db);
    let mut other = cluster.connect(&db);
    let pid: i32 = other
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);

    assert!(cluster.terminate_backend(pid));
    assert!(other.simple_query("SELECT 1").is_err());
    assert!(!cluster.terminate_backend(pid), "already gone");

    assert_eq!(cluster.terminate_backends(&db), 1);
    assert!(victim.simple_query("SELECT 1").is_err());
    cluster.connect(&db).simple_query("SELECT 1").unwrap();
}

#[test]
fn stop_immediate_then_start_again() {
    let cluster = Cluster::builder().setting("work_mem", "7MB").start();
    let mut client = cluster.connect("postgres");
    let work_mem: String = client.query_one("SHOW work_mem", &[]).unwrap().get(0);
    assert_eq!(work_mem, "7MB");
    let port = cluster.port();

    cluster.stop_immediate();
    assert!(!cluster.is_running());
    assert!(client.simple_query("SELECT 1").is_err());
    assert!(cluster.config("postgres").connect(NoTls).is_err());

    cluster.start_again();
    assert!(cluster.is_running());
    assert_eq!(cluster.port(), port);
    let one: i32 = cluster
        .connect("postgres")
        .query_one("SELECT 1", &[])
        .unwrap()
        .get(0);
    assert_eq!(one, 1);
}

/// Starts a cluster requiring `auth` and checks the password is required,
/// stored with the right hash (`stored_prefix`), and accepted.
fn check_password_cluster(auth: Auth, encryption: &str, stored_prefix: &str) {
    let cluster = Cluster::builder().auth(auth).start();
    let mut client = cluster.connect("postgres");
    let stored: String = client
        .query_one(
            "SELECT rolpassword FROM pg_authid WHERE rolname = 'postgres'",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(
        stored.starts_with(stored_prefix),
        "{auth:?}: stored password {stored}"
    );
    let setting: String = client
        .query_one("SHOW password_encryption", &[])
        .unwrap()
        .get(0);
    assert_eq!(setting, encryption);

    let mut wrong = cluster.config("postgres");
    wrong.password("not-the-password");
    let Err(err) = wrong.connect(NoTls) else {
        panic!("{auth:?}: connected with a wrong password");
    };
    assert_eq!(
        err.code(),
        Some(&SqlState::INVALID_PASSWORD),
        "{auth:?}: {err:?}"
    );

    let mut none = postgres::Config::new();
    none.host(cluster.host())
        .port(cluster.port())
        .user("postgres")
        .dbname("postgres");
    assert!(
        none.connect(NoTls).is_err(),
        "{auth:?}: connected without a password"
    );

    let mut via_socket = cluster.config("postgres");
    via_socket
        .host_path(cluster.socket_dir())
        .password("not-the-password");
    assert!(
        via_socket.connect(NoTls).is_err(),
        "{auth:?}: local connections need it too"
    );

    let conninfo: postgres::Config = cluster.conninfo("postgres").parse().unwrap();
    conninfo.connect(NoTls).unwrap();
}

#[test]
fn scram_cluster_checks_passwords() {
    check_password_cluster(Auth::ScramSha256, "scram-sha-256", "SCRAM-SHA-256$");
}

#[test]
fn md5_cluster_checks_passwords() {
    check_password_cluster(Auth::Md5, "md5", "md5");
}

#[test]
fn drop_stops_server_and_removes_files() {
    let cluster = Cluster::start();
    let (data_dir, port) = (cluster.data_dir().to_owned(), cluster.port());
    let _client = cluster.connect("postgres");
    assert!(data_dir.exists());
    assert!(accepts_connections(port));
    drop(cluster);
    assert!(!data_dir.exists());
    assert!(!accepts_connections(port));
}

#[test]
fn drop_cleans_up_when_a_test_panics() {
    let mut seen = None;
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let cluster = Cluster::start();
        seen = Some((cluster.data_dir().to_owned(), cluster.port()));
        panic!("deliberate panic with a live cluster");
    }));
    assert!(result.is_err());
    let (data_dir, port) = seen.unwrap();
    assert!(!data_dir.exists());
    assert!(!accepts_connections(port));
}

/// Not a test on its own: the child process of
/// `watchdog_cleans_up_after_sigkill`, which starts a cluster, reports it and
/// waits to be killed.
#[test]
fn watchdog_child() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let cluster = Cluster::start();
    println!(
        "CLUSTER {} {}",
        cluster.port(),
        cluster.data_dir().display()
    );
    std::thread::sleep(Duration::from_secs(120));
}

/// Kills (SIGKILL) the child process when dropped, also if the test fails.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn watchdog_cleans_up_after_sigkill() {
    let mut child = KillOnDrop(
        Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "watchdog_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, "1")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stdout = BufReader::new(child.0.stdout.take().unwrap());
    // libtest prints "test watchdog_child ... " without a newline first.
    let report = stdout
        .lines()
        .map(Result::unwrap)
        .find_map(|line| Some(line.split_once("CLUSTER ")?.1.to_owned()))
        .expect("the child did not report its cluster");
    let (port, data_dir) = report.split_once(' ').unwrap();
    let (port, data_dir): (u16, PathBuf) = (port.parse().unwrap(), data_dir.into());
    assert!(accepts_connections(port));
    assert!(data_dir.exists());

    drop(child); // SIGKILL: no unwinding, no destructors.

    eventually("the orphaned server stops", || !accepts_connections(port));
    eventually("the orphaned data directory is removed", || {
        !data_dir.exists()
    });
}
