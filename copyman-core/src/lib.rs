//! The sans-IO copyman: what happens in a copy, decided without touching IO.
//!
//! * [`manager`]: `CopyManager` in py-postgresql's copyman as a state machine — one producer, many
//!   receivers, per-cycle progress, ReceiverFault / ProducerFault / CopyFail, reconcile,
//!   realignment on abort, bounded buffering.
//! * [`session`]: one PostgreSQL connection's PQv3 conversation (startup and auth, simple queries,
//!   COPY OUT and COPY IN), without owning its socket.
//! * [`fault`]: the fault and failure types, in the vocabulary of py-postgresql's copyman;
//!   [`stall`]: the stall timeout's rule and its error.
//! * [`local`]: the endpoints that do no IO (iterator, call, null) and the halves of the
//!   adapters' client-bound and statement endpoints that are not IO.
//! * [`connect`] and [`connection`]: how a raw connection is made (libpq's loop over hosts,
//!   addresses and TLS modes, its deadline) and what it does alike in both adapters.
//! * [`run`]: a copy from its start to its result around the manager, the sequence both
//!   adapters' `CopyManager` follow ([`copy_api!`] writes their public calls once).
//! * [`file_start`]: what the first bytes of an input file mean (a header line checked against
//!   the COPY's columns, a UTF-8 byte order mark, the binary COPY signature).
//! * [`start`] and [`ready`]: what a session's events mean while a COPY starts and until the
//!   next ReadyForQuery (a COPY OUT nobody reads is cancelled).
//!
//! Not here: sockets, clocks, threads, async runtimes. The adapters (copyman-sync on blocking
//! sockets, copyman-async on tokio) own those and carry bytes; every decision is taken here, once,
//! so both adapters behave the same.
#![forbid(unsafe_code)]

pub mod client;
pub mod commit;
pub mod connect;
pub mod connection;
pub mod copy_api;
pub mod endpoint;
pub mod fault;
pub mod file_start;
// The fuzz targets' logic: only for `fuzz/`, which turns the feature on.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod local;
pub mod manager;
pub mod ready;
pub mod run;
pub mod session;
pub mod source;
pub mod stall;
pub mod start;
pub mod statement;

pub use fault::{
    BoxError, CopyFail, CountMismatch, CountsDisagree, Diagnose, Diagnosis, EndOfDataMarker,
    EndpointError, Fault, ProducerFault, ReceiverFault, SharedError,
};
pub use manager::{
    Chunk, Config, Data, Event, Input, Manager, ManagerError, Output, Protocol, ReceiverId,
    ReceiverOutcome, ReconcileError, Summary,
};
