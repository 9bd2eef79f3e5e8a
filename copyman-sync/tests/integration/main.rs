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
