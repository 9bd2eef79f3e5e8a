//! copyman on blocking sockets: stream PostgreSQL COPY data from one server to many.
//!
//! This is the thin blocking binding of copyman-core: it owns sockets and buffers and carries out
//! the core [`Manager`](copyman_core::Manager)'s orders; every decision — faults, reconcile,
//! realignment, finishing or failing — is the core's. No async runtime is started or blocked on.
//!
//! * [`Connection`]: a raw PostgreSQL connection over TCP or a Unix socket (the fast path),
//!   configured like the `postgres` crate.
//! * Producers: [`StatementProducer`], [`IteratorProducer`], [`NullProducer`], and
//!   [`ClientProducer`] over an existing `postgres` client's `copy_out`.
//! * Receivers: [`StatementReceiver`], [`CallReceiver`], [`NullReceiver`], and
//!   [`ClientReceiver`] over an existing `postgres` client's `copy_in`.
//! * [`CopyManager`] (its [`builder`](CopyManager::builder) is the one-call form) and
//!   [`transfer`], with the faults of py-postgresql's copyman:
//!   [`ReceiverFault`], [`ProducerFault`], [`CopyFail`].
//!
//! ```no_run
//! use copyman_sync::{Connection, CopyManager, StatementProducer, StatementReceiver};
//!
//! let mut source = Connection::connect_str("postgresql://postgres@127.0.0.1:5432/app")?;
//! let mut a = Connection::connect_str("postgresql://postgres@10.0.0.2/app")?;
//! let mut b = Connection::connect_str("postgresql://postgres@10.0.0.3/app")?;
//! // Each receiver copies inside a transaction of its own: without one, its COPY commits as it
//! // completes, and a copy can fail after some completed (a row count that differs). A source
//! // whose query changes data (a move: `COPY (DELETE … RETURNING *) TO STDOUT`) needs one too,
//! // committed after every receiver's: outside one it is refused before it is sent, and one
//! // whose change its words do not show (a function that deletes) fails there, read only.
//! a.execute("BEGIN")?;
//! b.execute("BEGIN")?;
//! let result = CopyManager::builder(StatementProducer::new(&mut source, "COPY items TO STDOUT"))
//!     .to(StatementReceiver::new(&mut a, "COPY items FROM STDIN"))
//!     .to(StatementReceiver::new(&mut b, "COPY items FROM STDIN"))
//!     .run();
//! match result {
//!     // The source's `COPY n`: the rows every receiver stored (they were checked against it).
//!     // The COMMITs go one after another: the `copyman` command's commit phase (and its
//!     // two-phase `--atomic`) is what says, or makes sure, what committed where.
//!     Ok(summary) => {
//!         a.execute("COMMIT")?;
//!         b.execute("COMMIT")?;
//!         println!("{:?} rows", summary.producer_count);
//!     }
//!     Err(fail) => {
//!         // A connection the copy lost has nothing left to roll back.
//!         let _ = a.execute("ROLLBACK");
//!         let _ = b.execute("ROLLBACK");
//!         // What happened to each receiver, with the server's SQLSTATE at hand; `{fail}` says
//!         // it all (a server's DETAIL, HINT and CONTEXT on lines of their own, as psql's).
//!         for (id, outcome) in &fail.receivers {
//!             match outcome.error() {
//!                 Some(error) => eprintln!("receiver {id}: SQLSTATE {:?}: {error}", error.code()),
//!                 None => eprintln!("receiver {id}: {outcome:?}"),
//!             }
//!         }
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(unsafe_code)]

mod connection;
mod copy;
mod error;
mod interrupt;
#[allow(unsafe_code)] // poll(2), the one call std lacks: one block with its SAFETY proof.
mod poll;
mod producer;
mod receiver;

pub use connection::{CancelToken, Connection};
pub use copy::{CopyBuilder, CopyManager, transfer};
pub use copyman_core::connection::Closer;
/// Shared with copyman-async: an endpoint that does no IO, written once in
/// [`copyman_core::local`], and a [`Producer`] or [`Receiver`] here.
pub use copyman_core::local::{CallReceiver, IteratorProducer, NullProducer, NullReceiver};
pub use copyman_core::manager::{Options, ReconcileError};
pub use copyman_core::session::{DbError, Notification, SessionError};
pub use copyman_core::stall::{
    EndpointId, GraceExpired, INTERRUPT_GRACE, Stalled, Written, cut_by_interrupt,
};
/// What the API hands out from copyman-core, nameable here: a connection's [`Session`] and its
/// [`TransactionStatus`], a copy's [`UnderWay`] handle, a connect's [`Attempted`] hosts. The
/// whole of copyman-core, at the version these crates use, is [`copyman_core`].
pub use copyman_core::{
    self, connect::Attempted, run::UnderWay, session::Session, session::TransactionStatus,
};
pub use copyman_core::{
    BoxError, Chunk, Config, CopyFail, CountMismatch, Data, EndpointError, Fault, ProducerFault,
    Protocol, ReceiverFault, ReceiverId, ReceiverOutcome, Summary,
};
/// TLS settings for [`Connection::connect_tls`], libpq's meanings (the `copyman-tls` crate).
pub use copyman_tls::{SslMode, TlsSettings};
/// What a [`Receiver::fail`] is given: the bytes that finish its partial frame.
pub use copyman_wire::realign::Completion;
pub use error::{ClientError, Error};
pub use interrupt::Interrupter;
pub use producer::{ClientProducer, Producer, StatementProducer};
pub use receiver::{ClientReceiver, Receiver, StatementReceiver, TransmitError};

/// A socket a [`CopyManager`] may multiplex with `poll(2)` ([`Receiver::poll_socket`],
/// [`Producer::poll_socket`]): the endpoint is then fed without blocking while the others are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PollSocket {
    /// The socket. A raw [`Connection`]'s is in non-blocking mode from the moment it is
    /// connected, and its blocking calls wait on it with `poll(2)`.
    pub fd: std::os::fd::RawFd,
    /// IO on it that moves no byte for this long fails with a timeout, as the connection's own
    /// waits do ([`Connection::set_timeout`]). `None`: no limit
    /// but the copy's stall timeout, if any.
    pub timeout: Option<std::time::Duration>,
}

impl PollSocket {
    /// A socket to poll, without a timeout of its own.
    pub fn new(fd: std::os::fd::RawFd) -> Self {
        Self { fd, timeout: None }
    }
}

/// The default read buffer of a [`StatementProducer`]: 64 KiB, one CopyData frame per read.
pub const DEFAULT_BUFFER_SIZE: usize = 64 * 1024;
