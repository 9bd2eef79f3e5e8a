//! copyman on tokio: stream PostgreSQL COPY data from one server to many, concurrently.
//!
//! This is the thin tokio binding of copyman-core: it owns sockets, buffers and timers and
//! carries out the core [`Manager`](copyman_core::Manager)'s orders; every decision — faults,
//! reconcile, realignment, finishing or failing — is the core's, exactly as in copyman-sync.
//! What it adds is concurrency: each cycle's data is written to every receiver at the same time
//! while the producer reads the next chunk, within the manager's bounded window.
//!
//! * [`Connection`]: a raw PostgreSQL connection over TCP, TLS (rustls, libpq's `sslmode`s,
//!   SCRAM-SHA-256-PLUS; see [`copyman_tls`]) or a Unix socket (the fast path), configured like
//!   `tokio-postgres`.
//! * Producers ([`Producer`]): [`StatementProducer`], [`IteratorProducer`] (chunks of lines),
//!   [`StreamProducer`] (any `Stream` of bytes), [`ReaderProducer`] (any `AsyncRead`),
//!   [`NullProducer`], and [`ClientProducer`] over an existing `tokio-postgres` client's
//!   `copy_out`.
//! * Receivers ([`Receiver`]): [`StatementReceiver`], [`SinkReceiver`] (any `Sink` of bytes),
//!   [`WriterReceiver`] (any `AsyncWrite`), [`CallReceiver`], [`NullReceiver`], and
//!   [`ClientReceiver`] over an existing `tokio-postgres` client's `copy_in`.
//! * [`CopyManager`] (a `Stream` of progress), [`transfer`], [`Options`] (window, stall
//!   timeout), with the faults of py-postgresql's copyman: [`ReceiverFault`], [`ProducerFault`],
//!   [`CopyFail`].
//!
//! Not here: spawning tasks (the copy runs in whatever task polls it; spawn it yourself if
//! you want), and any protocol decision. Dropping a copy midway never commits a partial COPY:
//! see [`CopyManager`] for what happens to each connection.
//!
//! ```no_run
//! use copyman_async::{Connection, CopyManager, StatementProducer, StatementReceiver};
//!
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! let mut source = Connection::connect_str("postgresql://postgres@127.0.0.1:5432/app").await?;
//! let mut a = Connection::connect_str("postgresql://postgres@10.0.0.2/app").await?;
//! let mut b = Connection::connect_str("postgresql://postgres@10.0.0.3/app").await?;
//! // Each receiver copies inside a transaction of its own: without one, its COPY commits as it
//! // completes, and a copy can fail after some completed (a row count that differs). A source
//! // whose query changes data (a move: `COPY (DELETE … RETURNING *) TO STDOUT`) needs one too,
//! // committed after every receiver's: outside one it is refused before it is sent, and one
//! // whose change its words do not show (a function that deletes) fails there, read only.
//! a.execute("BEGIN").await?;
//! b.execute("BEGIN").await?;
//! let result = CopyManager::builder(StatementProducer::new(&mut source, "COPY items TO STDOUT"))
//!     .to(StatementReceiver::new(&mut a, "COPY items FROM STDIN"))
//!     .to(StatementReceiver::new(&mut b, "COPY items FROM STDIN"))
//!     .run()
//!     .await;
//! match result {
//!     // The source's `COPY n`: the rows every receiver stored (they were checked against it).
//!     // The COMMITs go one after another: the `copyman` command's commit phase (and its
//!     // two-phase `--atomic`) is what says, or makes sure, what committed where.
//!     Ok(summary) => {
//!         a.execute("COMMIT").await?;
//!         b.execute("COMMIT").await?;
//!         println!("{:?} rows", summary.producer_count);
//!     }
//!     Err(fail) => {
//!         // A connection the copy lost has nothing left to roll back.
//!         let _ = a.execute("ROLLBACK").await;
//!         let _ = b.execute("ROLLBACK").await;
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
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod connection;
mod copy;
mod error;
mod producer;
mod receiver;
mod tls;

pub use connection::{CancelToken, Connection};
pub use copy::{CopyBuilder, CopyManager, transfer};
pub use copyman_core::connection::Closer;
/// Shared with copyman-sync: an endpoint that does no IO, written once in
/// [`copyman_core::local`], and a [`Producer`] or [`Receiver`] here (when its iterator or
/// closure is `Send`). For data that comes asynchronously, or as raw bytes rather than lines, see
/// [`StreamProducer`], [`ReaderProducer`], [`SinkReceiver`] and [`WriterReceiver`].
pub use copyman_core::local::{CallReceiver, IteratorProducer, NullProducer, NullReceiver};
pub use copyman_core::manager::{Options, ReconcileError};
pub use copyman_core::session::{DbError, Notification, SessionError};
pub use copyman_core::stall::{EndpointId, Stalled, Written};
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
pub use copyman_wire::realign::Completion;
pub use error::{ClientError, Error};
pub use producer::{ClientProducer, Producer, ReaderProducer, StatementProducer, StreamProducer};
pub use receiver::{ClientReceiver, Receiver, SinkReceiver, StatementReceiver, WriterReceiver};

/// The default read buffer of a [`StatementProducer`] and a [`ReaderProducer`]: 64 KiB, one
/// CopyData frame per read.
pub const DEFAULT_BUFFER_SIZE: usize = 64 * 1024;
