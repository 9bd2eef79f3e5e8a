//! copyman-sync against real PostgreSQL clusters (copyman-testkit), one module per area: one test
//! binary, so the shared clusters start once and the tests of every module run side by side. The
//! leak and network-fault checks, which measure this process's memory and descriptors, are test
//! binaries of their own (`tests/leaks.rs`, `tests/netfaults.rs`).

#[path = "../common/mod.rs"]
mod common;

mod api;
mod client_bound;
mod concurrent;
mod dropped;
mod nonblocking;
mod scenarios;
mod tls;
mod tls_concurrent;
mod tls_injection;
mod tls_scenarios;

use std::process::Command;

/// Sends `signal` (`STOP`, `CONT`) to a server backend.
fn signal(pid: i32, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{signal} {pid}");
}

/// A backend stopped with SIGSTOP, continued when dropped (also when an assertion fails): a
/// stopped backend would hold the cluster's shutdown.
pub(crate) struct Stopped(i32);

impl Stopped {
    pub(crate) fn stop(pid: i32) -> Self {
        signal(pid, "STOP");
        Self(pid)
    }

    /// As [`Stopped::stop`], continued after `limit` at the latest (a detached thread's SIGCONT):
    /// a wait the code under test should have cut short then ends, and the test fails on what
    /// it asserts rather than hangs.
    pub(crate) fn stop_for_at_most(pid: i32, limit: std::time::Duration) -> Self {
        let stopped = Self::stop(pid);
        std::thread::spawn(move || {
            std::thread::sleep(limit);
            let _ = Command::new("kill")
                .args(["-CONT", &pid.to_string()])
                .status();
        });
        stopped
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        // Never a panic here: it may run while a failed assertion unwinds.
        let _ = Command::new("kill")
            .args(["-CONT", &self.0.to_string()])
            .status();
    }
}
