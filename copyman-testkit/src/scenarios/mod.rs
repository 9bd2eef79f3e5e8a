//! Integration scenarios against real clusters, written once for every adapter.
//!
//! An adapter's tests implement [`CopyDriver`] (how to open a copy with that adapter) and invoke
//! [`scenario_tests!`](crate::scenario_tests), which makes one `#[test]` per scenario:
//!
//! ```text
//! mod common; // holds `struct MyDriver; impl CopyDriver for MyDriver { … }`
//! copyman_testkit::scenario_tests!(common::MyDriver);
//! ```
//!
//! Each scenario is a `pub fn name<D: CopyDriver>(driver: &D, clusters: &Clusters)` that panics
//! when the adapter misbehaves. Scenarios use the binary's shared [`Clusters`] (one source and
//! three destination servers, started once per test binary by [`clusters()`]) with fresh
//! databases, so they run in parallel; scenarios that stop a server or need special settings
//! start their own private [`Cluster`]s.
//!
//! The scenarios, by theme:
//! * the seed documentation's examples: [`seed_transfer`], [`seed_copy_manager_loop`],
//!   [`seed_run`], [`seed_receiver_fault_loop`], [`seed_reconcile_after_timeout`],
//!   [`seed_copy_fail_attributes`];
//! * fan-out to three destinations of a table of many types: [`fanout_text`], [`fanout_csv`],
//!   [`fanout_binary`], and the row counts: [`counts_match_in_summary`];
//! * faults with real servers: [`destination_rejects_row_midway`],
//!   [`source_error_midstream`], [`source_backend_terminated_midstream`],
//!   [`destination_server_stopped_midstream`], [`stopped_early`], [`dropped_mid_copy`];
//! * bad input: [`not_a_copy_statement`],
//!   [`a_writing_source_query_outside_a_transaction_is_refused`], [`wrong_direction`],
//!   [`mismatched_formats`], [`mismatched_representations`], [`styles_set_since_connecting_are_compared`],
//!   [`pinned_settings_set_since_connecting_are_refused`] (and what is
//!   not a mismatch: [`encoding_spellings_agree`]),
//!   [`missing_table`], [`wrong_password`];
//! * row sizes: [`tiny_and_huge_rows`];
//! * the other endpoints: [`iterator_producer_into_statement_receiver`],
//!   [`statement_producer_into_call_receiver`], a producer's transient fault gone past:
//!   [`a_transient_producer_fault_can_be_gone_past`];
//! * what the server says and when (issues 12 and 13, so the adapters cannot drift):
//!   [`execute_of_copy_out_is_cancelled`], [`stall_timeout_faults_receiver`],
//!   [`a_receiver_heard_moving_is_not_stalled`], [`a_closer_ends_a_wait_from_another_thread`],
//!   [`stall_timeout_faults_producer`], [`stall_timeout_faults_producer_closed_at_once`],
//!   [`stall_timeout_bounds_a_locked_start`],
//!   [`stall_timeout_bounds_failing_a_receiver_that_stays_blocked`],
//!   [`stall_timeout_bounds_cancelling_a_stopped_source`],
//!   [`server_error_noticed_mid_copy_in`], [`a_session_ended_by_its_server_says_why`],
//!   [`check_reads_why_the_server_ended_a_session`],
//!   [`notices_reach_the_caller`], [`connect_timeout_expires_then_next_host`],
//!   [`abstract_unix_socket`], [`a_session_its_server_shut_down_immediately_is_closed_alike`];
//! * the copy's options: [`window_of_one_holds_one_chunk`],
//!   [`keep_going_leaves_refusing_destination_usable`], [`zero_stall_timeout_waits`],
//!   [`a_slow_destination_draining_its_buffers_is_not_stalled`],
//!   [`a_slow_server_is_not_stalled`]; how it ends:
//!   [`receivers_end_their_copies_side_by_side`].

mod check;
mod driver;
mod endpoints;
mod fanout;
mod faults;
mod input;
mod options;
mod seed;
mod server;
pub mod worker;

use std::sync::OnceLock;
use std::thread;

pub use check::{digest, digest_of, digest_sql, exec, select_one};
pub use driver::{
    CopyDriver, CopyPlan, DestinationSpec, Endpoint, ErrorInfo, FailInfo, FaultInfo, NoticeInfo,
    OpenError, ReceiverEnd, Rows, RunningCopy, SessionInfo, SourceSpec, StatementSpec, SummaryInfo,
};
pub use endpoints::{
    a_transient_producer_fault_can_be_gone_past, chunk_producer_rows_are_counted,
    iterator_producer_into_statement_receiver, statement_producer_into_call_receiver,
};
pub use fanout::{
    counts_match_in_summary, fanout_binary, fanout_csv, fanout_text, tiny_and_huge_rows,
};
pub use faults::{
    destination_rejects_row_midway, destination_server_stopped_midstream, dropped_mid_copy,
    source_backend_terminated_midstream, source_error_midstream, stopped_early,
};
pub use input::{
    a_writing_source_query_outside_a_transaction_is_refused, encoding_spellings_agree,
    mismatched_formats, mismatched_representations, missing_table, not_a_copy_statement,
    pinned_settings_set_since_connecting_are_refused, styles_set_since_connecting_are_compared,
    wrong_direction, wrong_password,
};
pub use options::{
    a_slow_destination_draining_its_buffers_is_not_stalled, a_slow_server_is_not_stalled,
    keep_going_leaves_refusing_destination_usable, receivers_end_their_copies_side_by_side,
    window_of_one_holds_one_chunk, zero_stall_timeout_waits,
};
pub use seed::{
    seed_copy_fail_attributes, seed_copy_manager_loop, seed_receiver_fault_loop,
    seed_reconcile_after_timeout, seed_run, seed_transfer,
};
pub use server::{
    a_closer_ends_a_wait_from_another_thread, a_receiver_heard_moving_is_not_stalled,
    a_session_ended_by_its_server_says_why,
    a_session_its_server_shut_down_immediately_is_closed_alike, abstract_unix_socket,
    an_autocommit_receiver_ended_after_copydone_is_in_doubt,
    check_reads_why_the_server_ended_a_session, connect_timeout_expires_then_next_host,
    execute_of_copy_out_is_cancelled,
    keep_going_closes_a_stalled_receiver_whose_copy_fail_goes_unanswered, notices_reach_the_caller,
    server_error_noticed_mid_copy_in, stall_timeout_bounds_a_locked_start,
    stall_timeout_bounds_cancelling_a_stopped_source,
    stall_timeout_bounds_failing_a_receiver_that_stays_blocked, stall_timeout_faults_producer,
    stall_timeout_faults_producer_closed_at_once, stall_timeout_faults_receiver,
    tcp_keepalives_are_set_as_libpq_sets_them,
};

use crate::Cluster;

/// The servers the scenarios of one test binary share: a source and three destinations, each its
/// own cluster. Do not stop them: scenarios that need that start their own.
#[derive(Debug)]
pub struct Clusters {
    /// The source server.
    pub source: Cluster,
    /// Three destination servers.
    pub destinations: [Cluster; 3],
}

impl Clusters {
    /// Starts four clusters, concurrently.
    ///
    /// # Panics
    /// If a cluster cannot start.
    pub fn start() -> Self {
        Self::start_with(Cluster::start)
    }

    /// Starts four clusters made by `make`, concurrently.
    ///
    /// # Panics
    /// If a cluster cannot start.
    pub fn start_with(make: fn() -> Cluster) -> Self {
        thread::scope(|s| {
            let handles: Vec<_> = (0..4).map(|_| s.spawn(make)).collect();
            let mut started = handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
            let mut next = || started.next().expect("four clusters");
            Self {
                source: next(),
                destinations: [next(), next(), next()],
            }
        })
    }
}

/// The [`Clusters`] of this test binary, started on first use.
pub fn clusters() -> &'static Clusters {
    static CLUSTERS: OnceLock<Clusters> = OnceLock::new();
    CLUSTERS.get_or_init(Clusters::start)
}

/// The TLS [`Clusters`] of this test binary, started on first use: TCP connections must use TLS
/// (`hostssl` only, [`Builder::tls`](crate::Builder::tls)) and authenticate with SCRAM, which a
/// TLS connection binds to the channel (SCRAM-SHA-256-PLUS). Their
/// [`conninfo`](Cluster::conninfo) leaves `sslmode` at its default, `prefer`: every scenario that
/// connects at all proves TLS works, since the servers refuse plain TCP.
pub fn tls_clusters() -> &'static Clusters {
    static CLUSTERS: OnceLock<Clusters> = OnceLock::new();
    CLUSTERS.get_or_init(|| {
        Clusters::start_with(|| {
            Cluster::builder()
                .auth(crate::Auth::ScramSha256)
                .tls()
                .start()
        })
    })
}

/// Makes one `#[test]` per scenario of [`scenarios`](crate::scenarios), each calling it with the
/// given driver (an expression of a type implementing
/// [`CopyDriver`](crate::scenarios::CopyDriver)) and the binary's shared
/// [`clusters()`](crate::scenarios::clusters) — or, written `scenario_tests!(tls: driver)`, the
/// TLS-only [`tls_clusters()`](crate::scenarios::tls_clusters).
#[macro_export]
macro_rules! scenario_tests {
    ($driver:expr) => {
        $crate::scenario_tests!(@list $driver, clusters);
    };
    (tls: $driver:expr) => {
        $crate::scenario_tests!(@list $driver, tls_clusters);
    };
    (@list $driver:expr, $clusters:ident) => {
        $crate::scenario_tests!(@each $driver, $clusters;
            seed_transfer,
            seed_copy_manager_loop,
            seed_run,
            seed_receiver_fault_loop,
            seed_reconcile_after_timeout,
            seed_copy_fail_attributes,
            fanout_text,
            fanout_csv,
            fanout_binary,
            counts_match_in_summary,
            destination_rejects_row_midway,
            source_error_midstream,
            source_backend_terminated_midstream,
            destination_server_stopped_midstream,
            stopped_early,
            dropped_mid_copy,
            not_a_copy_statement,
            a_writing_source_query_outside_a_transaction_is_refused,
            wrong_direction,
            mismatched_formats,
            mismatched_representations,
            styles_set_since_connecting_are_compared,
            pinned_settings_set_since_connecting_are_refused,
            encoding_spellings_agree,
            missing_table,
            wrong_password,
            tiny_and_huge_rows,
            iterator_producer_into_statement_receiver,
            chunk_producer_rows_are_counted,
            a_transient_producer_fault_can_be_gone_past,
            statement_producer_into_call_receiver,
            execute_of_copy_out_is_cancelled,
            a_session_ended_by_its_server_says_why,
            check_reads_why_the_server_ended_a_session,
            stall_timeout_faults_receiver,
            a_receiver_heard_moving_is_not_stalled,
            a_closer_ends_a_wait_from_another_thread,
            stall_timeout_bounds_failing_a_receiver_that_stays_blocked,
            stall_timeout_faults_producer,
            stall_timeout_faults_producer_closed_at_once,
            stall_timeout_bounds_cancelling_a_stopped_source,
            stall_timeout_bounds_a_locked_start,
            server_error_noticed_mid_copy_in,
            notices_reach_the_caller,
            connect_timeout_expires_then_next_host,
            abstract_unix_socket,
            a_session_its_server_shut_down_immediately_is_closed_alike,
            tcp_keepalives_are_set_as_libpq_sets_them,
            window_of_one_holds_one_chunk,
            keep_going_leaves_refusing_destination_usable,
            keep_going_closes_a_stalled_receiver_whose_copy_fail_goes_unanswered,
            an_autocommit_receiver_ended_after_copydone_is_in_doubt,
            zero_stall_timeout_waits,
            a_slow_destination_draining_its_buffers_is_not_stalled,
            a_slow_server_is_not_stalled,
            receivers_end_their_copies_side_by_side,
        );
    };
    (@each $driver:expr, $clusters:ident; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::scenarios::$name(&$driver, $crate::scenarios::$clusters());
            }
        )*
    };
}
