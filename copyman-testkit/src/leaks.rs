//! The plan of the leak tests both adapters run (`tests/leaks.rs`): 100 copies in a row on the
//! same four connections, seven kinds taking turns, and the process-wide measurements (file
//! descriptors, resident memory) that must not grow.

use std::collections::BTreeSet;

/// Copies in a row.
pub const COPIES: usize = 100;
/// Copies before the baseline is taken: allocator pools and lazily built state settle first.
pub const WARM_UP: usize = 16;
/// Rows per copy, about 100 bytes each: several 64 KiB reads per copy.
pub const ROWS: u64 = 3000;
/// How much the resident set may grow after the warm-up: generous (it grows by ~0.1 MiB here),
/// yet a copy that kept its data (~285 KiB, sent to three receivers) would pass it within 30
/// copies.
pub const RSS_GROWTH_LIMIT_KIB: u64 = 8 * 1024;

/// The receivers' tables: `t0`, `t1`, `t2`, and `picky`, which refuses rows past 1000.
pub const SETUP: &str = "CREATE TABLE t0 (i int8, pad text); CREATE TABLE t1 (i int8, pad text); \
                     CREATE TABLE t2 (i int8, pad text); \
                     CREATE TABLE picky (i int8 CHECK (i <= 1000), pad text)";

/// What each copy does; they take turns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `transfer` to t0, t1, t2.
    Good,
    /// The same inside `BEGIN … COMMIT` on every receiver.
    GoodInTransaction,
    /// Receiver 1's statement names a table that does not exist: the copy cannot start.
    ReceiverCannotStart,
    /// Receiver 2 copies into `picky`, whose CHECK fails at row 1001, every receiver inside
    /// `BEGIN … ROLLBACK`: the server's error may come only in answer to CopyDone, after the
    /// other receivers completed, which only a transaction takes back.
    ReceiverFailsMidway,
    /// The source's query divides by zero at row 2000: a producer fault midway.
    ProducerFailsMidway,
    /// One cycle, then `abort`.
    Aborted,
    /// One cycle, then the copy is dropped.
    Dropped,
}

/// The kinds, in the order they take turns.
pub const KINDS: [Kind; 7] = [
    Kind::Good,
    Kind::ReceiverCannotStart,
    Kind::GoodInTransaction,
    Kind::ReceiverFailsMidway,
    Kind::Aborted,
    Kind::ProducerFailsMidway,
    Kind::Dropped,
];

/// The source's statement for a copy of `kind`.
pub fn send(kind: Kind) -> String {
    let pad = if kind == Kind::ProducerFailsMidway {
        "repeat('x', 90 + 1 / (i - 2000))"
    } else {
        "repeat('x', 90)"
    };
    format!("COPY (SELECT i::int8, {pad} FROM generate_series(1, {ROWS}) AS g(i)) TO STDOUT")
}

/// Receiver `receiver`'s statement for a copy of `kind`.
pub fn receive(kind: Kind, receiver: usize) -> String {
    match (kind, receiver) {
        (Kind::ReceiverCannotStart, 1) => "COPY no_such_table FROM STDIN".into(),
        (Kind::ReceiverFailsMidway, 2) => "COPY picky FROM STDIN".into(),
        _ => format!("COPY t{receiver} FROM STDIN"),
    }
}

/// What the failure of a copy of `kind` must mention (`None`: the copy succeeds, or is dropped
/// without a failure to show).
pub fn expected_failure(kind: Kind) -> Option<&'static str> {
    match kind {
        Kind::ReceiverCannotStart => Some("no_such_table"),
        Kind::ReceiverFailsMidway => Some("picky_i_check"),
        Kind::ProducerFailsMidway => Some("division by zero"),
        Kind::Aborted => Some("stopped by the leak test"),
        Kind::Good | Kind::GoodInTransaction | Kind::Dropped => None,
    }
}

/// Follows the process's file descriptors and resident memory copy after copy: after the
/// warm-up, the descriptors must stay exactly the same and the memory within the limit.
#[derive(Debug, Default)]
pub struct Tracker {
    baseline: Option<(BTreeSet<String>, u64)>,
    peak_rss: u64,
    log: Vec<String>,
}

impl Tracker {
    /// Measures after copy `n` (of `kind`).
    ///
    /// # Panics
    /// When a descriptor was opened or closed since the warm-up, or memory grew past the limit.
    pub fn after_copy(&mut self, n: usize, kind: Kind) {
        let fds = open_fds();
        let rss = status_kib("VmRSS");
        self.log.push(format!(
            "copy {n:>3} {kind:?}: {} fds, VmRSS {rss} kB",
            fds.len()
        ));
        match &self.baseline {
            None if n + 1 == WARM_UP => self.baseline = Some((fds, rss)),
            None => {}
            Some((base_fds, base_rss)) => {
                assert!(
                    fds == *base_fds,
                    "copy {n} ({kind:?}): file descriptors changed after the warm-up: \
                     opened {:?}, closed {:?}\n{}",
                    fds.difference(base_fds).collect::<Vec<_>>(),
                    base_fds.difference(&fds).collect::<Vec<_>>(),
                    self.log.join("\n")
                );
                self.peak_rss = self.peak_rss.max(rss);
                assert!(
                    rss < base_rss + RSS_GROWTH_LIMIT_KIB,
                    "copy {n} ({kind:?}): VmRSS grew from {base_rss} kB to {rss} kB after the \
                     warm-up\n{}",
                    self.log.join("\n")
                );
            }
        }
    }

    /// The log of every measurement and the memory after the warm-up and at its peak.
    ///
    /// # Panics
    /// If fewer than [`WARM_UP`] copies were measured.
    pub fn report(&self) -> String {
        let (_, base_rss) = self.baseline.as_ref().expect("a baseline");
        format!(
            "{}\n{COPIES} copies: VmRSS {base_rss} kB after the warm-up, peak {} kB after it",
            self.log.join("\n"),
            self.peak_rss
        )
    }
}

/// The process's open file descriptors, each with what it points to.
pub fn open_fds() -> BTreeSet<String> {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .filter_map(Result::ok)
        .map(|e| {
            let target = std::fs::read_link(e.path()).unwrap_or_default();
            format!(
                "{} -> {}",
                e.file_name().to_string_lossy(),
                target.display()
            )
        })
        .collect()
}

/// A `kB` field of `/proc/self/status`.
pub fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/self/status"))
}
