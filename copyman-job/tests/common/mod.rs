//! What the job layer's test binaries share: the clusters (a source and three destinations that
//! allow prepared transactions, started once per binary, side by side), a fresh database per
//! test on each, the job's servers over them, state file paths and a table digest.
#![allow(dead_code, unreachable_pub)] // Each test binary uses its own part of these helpers.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::Duration;

use copyman_job::job::{JobReport, Server, TableReport};
use copyman_sync::Connection;
use copyman_testkit::Cluster;

/// The clusters every test of a binary shares.
pub struct Clusters {
    pub source: Cluster,
    /// Destinations that allow prepared transactions (two-phase commit per table).
    pub dest: [Cluster; 3],
}

pub fn clusters() -> &'static Clusters {
    static CLUSTERS: OnceLock<Clusters> = OnceLock::new();
    CLUSTERS.get_or_init(|| {
        // Side by side: each start mostly waits for initdb and the server.
        thread::scope(|s| {
            let source = s.spawn(Cluster::start);
            let dest: Vec<_> = (0..3)
                .map(|_| {
                    s.spawn(|| {
                        Cluster::builder()
                            .setting("max_prepared_transactions", "10")
                            .start()
                    })
                })
                .collect();
            let mut dest = dest.into_iter().map(|h| h.join().unwrap());
            Clusters {
                source: source.join().unwrap(),
                dest: [
                    dest.next().unwrap(),
                    dest.next().unwrap(),
                    dest.next().unwrap(),
                ],
            }
        })
    })
}

/// A server of the job whose sessions time out after `timeout` without a byte (as the
/// `copyman` command's planning sessions do under `--stall-timeout`), or never.
pub fn server(cluster: &Cluster, db: &str, timeout: Option<Duration>) -> Server {
    let conninfo = cluster.conninfo(db);
    Server {
        name: format!("port={} dbname={db}", cluster.port()),
        connect: Arc::new(move || {
            let mut conn = Connection::connect_str(&conninfo)?;
            conn.set_timeout(timeout)?;
            Ok(conn)
        }),
        own_settings: None,
    }
}

/// A fresh database with `sql` on the source and `dest_sql` on each of the first `n`
/// destinations: the source's server, the destinations' servers, and the databases' names.
pub fn setup(sql: &str, dest_sql: &str, n: usize) -> (Server, Vec<Server>, String, Vec<String>) {
    setup_timed(sql, dest_sql, n, None)
}

/// As [`setup`], with servers whose sessions time out after `timeout` without a byte.
pub fn setup_timed(
    sql: &str,
    dest_sql: &str,
    n: usize,
    timeout: Option<Duration>,
) -> (Server, Vec<Server>, String, Vec<String>) {
    let c = clusters();
    let src_db = c.source.create_database();
    c.source.connect(&src_db).batch_execute(sql).unwrap();
    let dbs: Vec<String> = c.dest[..n]
        .iter()
        .map(|d| {
            let db = d.create_database();
            d.connect(&db).batch_execute(dest_sql).unwrap();
            db
        })
        .collect();
    let dests = c.dest[..n]
        .iter()
        .zip(&dbs)
        .map(|(d, db)| server(d, db, timeout))
        .collect();
    (server(&c.source, &src_db, timeout), dests, src_db, dbs)
}

/// A state file path of this test binary and process, named `name`.
pub fn state_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "copyman-{}-{}-{name}.state",
        env!("CARGO_CRATE_NAME"),
        std::process::id()
    ))
}

/// Count and an order-independent digest of a table.
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
        .unwrap();
    (row.get(0), row.get(1))
}

/// The report of table `name` (unqualified).
pub fn table<'r>(report: &'r JobReport, name: &str) -> &'r TableReport {
    report
        .tables
        .iter()
        .find(|t| t.table.name.as_str() == name)
        .unwrap_or_else(|| panic!("no table {name} in the report"))
}
