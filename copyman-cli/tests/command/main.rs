//! The `copyman` command against real PostgreSQL clusters, one module per area: one test binary,
//! so the clusters that `common` starts (a source and two destinations) are shared by every module
//! that needs no server of its own, and the tests of all modules run side by side. The modules
//! that leave prepared transactions on shared two-phase servers, which another module's `recover`
//! would see, are test binaries of their own (`tests/*.rs`).

#[path = "../common/mod.rs"]
mod common;

mod atomic;
mod cli;
mod clones;
mod commit;
mod commit_watch;
mod conn_edges;
mod conn_env;
mod connect_timeout;
mod conninfo;
mod dest_privileges;
mod edges;
mod emptying;
mod file_dests;
mod file_inputs;
mod file_sources;
mod forced_binary;
mod job_commit_watch;
mod job_edges;
mod job_faults;
mod job_fk_group_review;
mod job_partitions;
mod job_rerun;
mod job_rerun_edges;
mod job_selection;
mod job_verify;
mod json;
mod notices;
mod password_argv;
mod relation_kinds;
mod representation;
mod rough_edges;
mod row_security;
mod sequences;
mod signal_stages;
mod snapshot_locks;
mod table_mode;
mod tables;
mod tls_certs;
mod triggers;
mod type_changes;
mod waits_and_files;
