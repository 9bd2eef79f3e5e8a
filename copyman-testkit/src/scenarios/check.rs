//! What the scenarios check with: order-independent digests, SQL on a cluster, usable sessions.

use super::driver::{CopyDriver, CopyPlan, Endpoint, RunningCopy};
use crate::Cluster;

/// SQL giving the row count and an order-independent checksum (the exact sum of a 64-bit hash
/// of every row's text) of `from`, a table name or a parenthesized subquery; both as text.
pub fn digest_sql(from: &str) -> String {
    format!(
        "SELECT count(*)::text, coalesce(sum(hashtextextended(t::text, 0)::numeric), 0)::text \
         FROM {from} AS t"
    )
}

/// Row count and checksum of `from` in database `db`, on a new connection (see [`digest_sql`]).
///
/// # Panics
/// If the query fails.
pub fn digest(cluster: &Cluster, db: &str, from: &str) -> (i64, String) {
    let mut client = cluster.connect(db);
    // Row texts must not depend on the connection: fix what the text of a timestamp depends on.
    client
        .batch_execute("SET TimeZone = 'UTC'; SET DateStyle = 'ISO'")
        .expect("session settings");
    let row = client
        .query_one(&digest_sql(from), &[])
        .unwrap_or_else(|e| panic!("digest of {from} in {db}: {e}"));
    let count: String = row.get(0);
    (count.parse().expect("a count"), row.get(1))
}

/// Row count and checksum of `from` as seen by a session of `copy` (e.g. a temporary table).
///
/// # Panics
/// If the query fails.
pub fn digest_of<C: RunningCopy + ?Sized>(
    copy: &mut C,
    endpoint: Endpoint,
    from: &str,
) -> (i64, String) {
    let rows = copy
        .sql(endpoint, &digest_sql(from))
        .unwrap_or_else(|e| panic!("digest of {from} on the {endpoint}: {e}"));
    let row = &rows[0];
    (
        row[0]
            .as_deref()
            .expect("a count")
            .parse()
            .expect("a count"),
        row[1].clone().expect("a checksum"),
    )
}

/// Runs SQL (one or more statements) in database `db`, on a new connection.
///
/// # Panics
/// If it fails.
pub fn exec(cluster: &Cluster, db: &str, sql: &str) {
    cluster
        .connect(db)
        .batch_execute(sql)
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// The process id of `endpoint`'s backend, asked on its own session.
pub(crate) fn backend_pid<C: RunningCopy + ?Sized>(copy: &mut C, endpoint: Endpoint) -> i32 {
    copy.sql(endpoint, "SELECT pg_backend_pid()")
        .unwrap_or_else(|e| panic!("the backend's pid: {e}"))[0][0]
        .as_deref()
        .and_then(|p| p.parse().ok())
        .expect("a pid")
}

/// Asserts that a session of `copy` answers `SELECT 1`: it is usable, not stuck in a COPY.
///
/// # Panics
/// If it does not.
pub fn select_one<C: RunningCopy + ?Sized>(copy: &mut C, endpoint: Endpoint) {
    match copy.sql(endpoint, "SELECT 1") {
        Ok(rows) => assert_eq!(
            rows,
            vec![vec![Some("1".to_owned())]],
            "SELECT 1 on the {endpoint}"
        ),
        Err(e) => panic!("the {endpoint}'s session is not usable: SELECT 1 failed: {e}"),
    }
}

/// Opens `plan` with `driver`.
pub(crate) fn open<D: CopyDriver>(driver: &D, plan: CopyPlan) -> D::Copy {
    driver
        .open(plan)
        .unwrap_or_else(|e| panic!("[{}] opening the copy: {e}", driver.name()))
}

/// The number of rows of `table` in database `db`, on a new connection.
pub(crate) fn count(cluster: &Cluster, db: &str, table: &str) -> i64 {
    cluster
        .connect(db)
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .unwrap_or_else(|e| panic!("counting {table} in {db}: {e}"))
        .get(0)
}

/// `COPY (SELECT i FROM generate_series(1, n) AS g(i)) TO STDOUT`.
pub(crate) fn series(n: u64) -> String {
    format!("COPY (SELECT i FROM generate_series(1, {n}) AS g(i)) TO STDOUT")
}

/// `COPY … TO STDOUT` of `1..=n` like [`series`], but the source pauses for a second before row
/// `pause_at`: destinations catch up meanwhile (socket buffers can hold megabytes), so that an
/// error a destination found before that row reaches copyman while data still flows.
pub(crate) fn series_pausing(n: u64, pause_at: u64) -> String {
    format!(
        "COPY (SELECT CASE WHEN i = {pause_at} THEN (SELECT i FROM pg_sleep(1)) ELSE i END \
         FROM generate_series(1, {n}) AS g(i)) TO STDOUT"
    )
}

/// The digest a table of int8 `1..=n` has.
pub(crate) fn series_digest(cluster: &Cluster, db: &str, n: u64) -> (i64, String) {
    digest(
        cluster,
        db,
        &format!("(SELECT i::int8 AS i FROM generate_series(1, {n}) AS g(i))"),
    )
}

/// Bytes of the text COPY of `1..=n`, one row a line.
pub(crate) fn series_bytes(n: u64) -> u64 {
    (1..=n).map(|i| i.to_string().len() as u64 + 1).sum()
}

/// Drives `copy` to the end of its data, panicking at any fault; returns the messages moved.
pub(crate) fn drain<C: RunningCopy + ?Sized>(copy: &mut C, what: &str) -> u64 {
    let mut messages = 0;
    while let Some(progress) = copy.next() {
        match progress {
            Ok((m, _)) => messages += m,
            Err(fault) => panic!("{what}: unexpected fault: {fault}"),
        }
    }
    messages
}
