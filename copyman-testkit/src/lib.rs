//! copyman's test kit (dev-only): one shared cluster per test binary, the leak and
//! network-fault tools, and the scenario list both adapters run.
//!
//! The clusters themselves come from `copyman-cluster` (re-exported here: [`Cluster`],
//! [`Builder`], [`Auth`], …), the crate `copyman demo` ships with; this crate adds what only
//! tests need.
//!
//! ```no_run
//! use copyman_testkit::{Auth, Cluster};
//!
//! // One cluster for the whole test binary, a fresh database per test.
//! let cluster = copyman_testkit::shared();
//! let db = cluster.create_database();
//! let mut client = cluster.connect(&db);
//! client.batch_execute("CREATE TABLE t (x int)").unwrap();
//!
//! // A private cluster that insists on SCRAM passwords.
//! let strict = Cluster::builder().auth(Auth::ScramSha256).setting("work_mem", "8MB").start();
//! # drop(strict);
//! ```
#![forbid(unsafe_code)]

pub mod leaks;
pub mod proxy;
pub mod scenarios;

use std::sync::OnceLock;

pub use copyman_cluster::{Auth, Builder, CERT_USER, Cluster, HOST, SUPERUSER, TlsFiles};

/// The cluster shared by all tests of this test binary (one process), with
/// default settings and [`Auth::Trust`], started on first use.
///
/// Give each test its own database with [`Cluster::create_database`]. Do not
/// stop or restart it: tests that need that should start their own
/// [`Cluster`]. It is cleaned up by its watchdog when the test process
/// exits (a `static`'s destructor never runs).
///
/// # Panics
///
/// If the cluster cannot be started (see [`Builder::start`]); every test
/// calling `shared()` then panics with the same message.
pub fn shared() -> &'static Cluster {
    static SHARED: OnceLock<Cluster> = OnceLock::new();
    SHARED.get_or_init(Cluster::start)
}

/// A private cluster that speaks TLS 1.2 at most (`ssl_max_protocol_version`, as an older
/// OpenSSL does), with SCRAM passwords, and a conninfo to a fresh database on it that insists
/// on TLS within 10 s (so a handshake that waits for nothing fails instead of hanging).
pub fn tls_1_2() -> (Cluster, String) {
    let cluster = Cluster::builder()
        .auth(Auth::ScramSha256)
        .tls()
        .setting("ssl_max_protocol_version", "TLSv1.2")
        .start();
    let conninfo = format!(
        "{} sslmode=require connect_timeout=10",
        cluster.conninfo(&cluster.create_database())
    );
    (cluster, conninfo)
}

/// A TCP port on 127.0.0.1 where nothing listens, and where nothing the tests start will: a
/// privileged port that refuses a connection now (the clusters run as `postgres`, which may
/// not bind one, and the proxies take ephemeral ports). An ephemeral port bound and released
/// could be taken by a cluster or proxy starting meanwhile. Each call gives another.
pub fn closed_port() -> u16 {
    static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(900);
    loop {
        let port = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if port >= 1024 {
            break;
        }
        let at = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let tried = std::net::TcpStream::connect_timeout(&at, std::time::Duration::from_secs(1));
        if tried.is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused) {
            return port;
        }
    }
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An error and its sources, for a test's messages: `outer: inner: …`.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    copyman_core::fault::Chain(error).to_string()
}
