//! Clusters shared by the sync integration tests: one source and three destinations, each its own
//! server, started once per test binary; every test makes its own databases.

#![allow(dead_code, unreachable_pub)] // Each test binary uses a different part of this module.

use std::sync::OnceLock;

use copyman_sync::Connection;
use copyman_testkit::Cluster;

/// The source cluster and three destination clusters.
pub struct Clusters {
    pub source: Cluster,
    pub destinations: Vec<Cluster>,
}

pub fn clusters() -> &'static Clusters {
    static CLUSTERS: OnceLock<Clusters> = OnceLock::new();
    CLUSTERS.get_or_init(|| Clusters {
        source: Cluster::start(),
        destinations: (0..3).map(|_| Cluster::start()).collect(),
    })
}

/// A fresh database on `cluster` and a raw connection to it.
pub fn fresh(cluster: &Cluster) -> (String, Connection) {
    let db = cluster.create_database();
    let conn =
        Connection::connect_str(&cluster.conninfo(&db)).expect("connect to a fresh database");
    (db, conn)
}

/// Row count and an order-independent checksum of `table` (md5 of the sorted text rows).
pub fn digest(conn: &mut Connection, table: &str) -> (i64, String) {
    let rows = conn
        .query(&format!(
            "SELECT count(*), coalesce(md5(string_agg(t::text, ',' ORDER BY t::text)), '') FROM {table} AS t"
        ))
        .expect("digest query");
    let row = &rows[0];
    (
        row[0]
            .as_deref()
            .expect("count")
            .parse()
            .expect("count is a number"),
        row[1].clone().unwrap_or_default(),
    )
}
