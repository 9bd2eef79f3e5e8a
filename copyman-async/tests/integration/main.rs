//! copyman-async against real PostgreSQL clusters (copyman-testkit), one module per area: one test
//! binary, so the shared clusters start once and the tests of every module run side by side. The
//! leak checks, which measure this process's memory and descriptors, are a test binary of their
//! own (`tests/leaks.rs`).

#[path = "../common/mod.rs"]
mod common;

mod abandoned_read;
mod api;
mod concurrency;
mod scenarios;
mod tls;
mod tls_injection;
mod tls_scenarios;
