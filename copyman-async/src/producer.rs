//! Producers: where the COPY data comes from.

use std::marker::PhantomData;
use std::pin::Pin;
use std::task::Poll;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use copyman_core::local::{ChunkBuilder, IteratorProducer, LineChunks, NullProducer};
use copyman_core::start::{DataFormat, Styles};
use copyman_core::statement::Direction;
use copyman_core::{BoxError, Chunk, Protocol};
use futures_util::{Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::connection::Connection;
use crate::{DEFAULT_BUFFER_SIZE, Error};

/// A source of COPY data for a [`CopyManager`](crate::CopyManager).
///
/// Implement it to feed a copy from anything; the manager calls `start` once, then
/// `next_chunk` until it returns `None`, or `cancel` if the copy is aborted first. At most one
/// call is outstanding at a time; a call's future may be dropped midway when the whole copy
/// is dropped (then the producer is dropped too), and, with a stall timeout
/// ([`Options::stall_timeout`](crate::Options::stall_timeout)), a `start` or `next_chunk` that
/// moves no byte for that long (the producer lives on; after a read, the next starts afresh).
#[async_trait]
pub trait Producer: Send {
    /// The protocol of the chunks it produces.
    fn protocol(&self) -> Protocol;

    /// Starts producing. A PQv3 producer must hand in frames as the server sent them when
    /// `source_frames` is true (a receiver wants lines); otherwise it may re-block them. The
    /// default does nothing, for producers with nothing to start.
    ///
    /// # Errors
    /// Whatever keeps it from starting; the copy then fails.
    async fn start(&mut self, source_frames: bool) -> Result<(), BoxError> {
        let _ = source_frames;
        Ok(())
    }

    /// The next chunk, or `None` at the end.
    ///
    /// # Errors
    /// A failure to produce: the copy reports a ProducerFault and may go on or abort.
    async fn next_chunk(&mut self) -> Result<Option<Chunk>, BoxError>;

    copyman_core::producer_items!();

    /// Stops producing before the end and leaves its connection usable (cancel and drain).
    ///
    /// # Errors
    /// Its connection could not be made usable again.
    async fn cancel(&mut self) -> Result<(), BoxError> {
        Ok(())
    }

    /// Whether a [`Producer::next_chunk`] still pending may be left (its future dropped) when the
    /// copy no longer needs it ([`Manager::abandons_read`](copyman_core::Manager::abandons_read):
    /// every receiver failed, or the copy ends): the future holds nothing the producer needs,
    /// no data is lost, and the producer may be read or cancelled again. The default is `false`:
    /// the driver waits for the read to complete.
    fn can_abandon_read(&self) -> bool {
        false
    }
}

copyman_core::forward_boxed! {
    #[async_trait]
    impl Producer {
        fn protocol(&self) -> Protocol;
        fn format(&self) -> Option<DataFormat>;
        async fn start(&mut self, source_frames: bool) -> Result<(), BoxError>;
        async fn next_chunk(&mut self) -> Result<Option<Chunk>, BoxError>;
        fn count(&self) -> Option<u64>;
        fn resumable(&self) -> bool;
        async fn cancel(&mut self) -> Result<(), BoxError>;
        fn stalled(&mut self);
        fn set_buffer_size(&mut self, size: usize);
        fn can_abandon_read(&self) -> bool;
    }
}

copyman_core::statement_producer! {
    /// Produces the data of a `COPY … TO STDOUT` on a raw [`Connection`]: the fast path.
    ///
    /// Reads the socket in large buffers (64 KiB by default), re-blocks each read into one CopyData
    /// frame in place (copyman-core's
    /// [`CopyOutSource`](copyman_core::source::CopyOutSource)), and hands that one buffer to every
    /// receiver. Rows are never parsed.
    ///
    /// Dropped in the middle of its COPY (the copy's future or stream dropped), it cannot drain its
    /// connection there and then: it sends a cancel request from a task on the current tokio
    /// runtime, and the connection's next call waits for that cancel and reads (discarding) the
    /// rest of the COPY first, so the connection stays usable. Without a tokio runtime at hand it
    /// closes the connection instead (a COPY TO changes nothing; any transaction open on it is
    /// lost), and the connection fails every call with [`Error::Closed`].
    ///
    /// A table whose row-level security policies apply to the connection's role is read as they
    /// filter it (the server's default, `row_security = on`): fewer rows, and a `COPY n` that
    /// agrees. To have such a read fail instead (42501), as pg_dump and the `copyman` command
    /// read, `SET row_security = off` on the connection first.
    ///
    /// A copy that fails before the source's end (a receiver's fault) cancels its statement:
    /// the transaction around it is then aborted, and with it its snapshot. To copy several
    /// tables from one snapshot whatever fails, export it (`pg_export_snapshot()` in a session
    /// kept open) and read each table on a session of its own that takes it (`BEGIN ISOLATION
    /// LEVEL REPEATABLE READ; SET TRANSACTION SNAPSHOT '…'`), as the `copyman` command does.
    ///
    /// ```no_run
    /// use copyman_async::{Connection, StatementProducer};
    ///
    /// # async fn f() -> Result<(), copyman_async::Error> {
    /// let mut source = Connection::connect_str("host=127.0.0.1 user=postgres").await?;
    /// let producer = StatementProducer::new(
    ///     &mut source,
    ///     "COPY (SELECT i FROM generate_series(1, 10) AS g(i)) TO STDOUT",
    /// );
    /// # Ok(()) }
    /// ```
    Connection, DEFAULT_BUFFER_SIZE
}

impl Drop for StatementProducer<'_> {
    fn drop(&mut self) {
        // Dropped in the middle of its COPY: a server that still streams is cancelled (the
        // connection's next call reads the rest), or the connection closed.
        self.conn.abandon_copy_out(&mut self.out);
    }
}

#[async_trait]
impl Producer for StatementProducer<'_> {
    copyman_core::statement_producer_items!();

    async fn start(&mut self, source_frames: bool) -> Result<(), BoxError> {
        let statement = self.out.begin();
        let started = self.conn.start_copy(statement, Direction::ToStdout).await?;
        let session = self.conn.endpoint.session_mut();
        let started = self.out.started(started, !source_frames, session);
        Ok(started.map_err(Error::Session)?)
    }

    async fn next_chunk(&mut self) -> Result<Option<Chunk>, BoxError> {
        loop {
            let polled = self.out.poll_chunk(self.conn.endpoint.session());
            if let Poll::Ready(chunk) = polled.map_err(Error::Session)? {
                return Ok(chunk);
            }
            // One read, one chunk.
            let stream = self.conn.stream()?;
            let n = loop {
                match stream.read(self.out.read_buf()).await {
                    Ok(n) => break n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(Error::Io(e).into()),
                }
            };
            let session = self.conn.endpoint.session_mut();
            if n == 0 {
                return Err(Error::Session(self.out.handle_eof(session)).into());
            }
            self.out.filled(n);
            self.out.hand_over(session).map_err(Error::Session)?;
        }
    }

    async fn cancel(&mut self) -> Result<(), BoxError> {
        // Closed (its stall gave it up): nothing runs there any more that a cancel could end;
        // the stall stays the producer's error, not this close's consequence.
        if self.conn.is_closed() {
            return Ok(());
        }
        let aborted = self.out.abort(&mut self.conn.endpoint);
        if aborted.map_err(Error::Session)? {
            self.conn.drive().await?;
        }
        Ok(())
    }
}

#[async_trait]
impl<I: LineChunks + Send> Producer for IteratorProducer<I> {
    fn protocol(&self) -> Protocol {
        Protocol::Chunks
    }

    async fn next_chunk(&mut self) -> Result<Option<Chunk>, BoxError> {
        Ok(self.produce())
    }
}

/// Produces COPY data from any [`Stream`] of byte buffers: the async `IteratorProducer` for raw
/// bytes.
///
/// The bytes are raw COPY data in the format the receivers' statements expect (text, CSV or
/// binary), split anywhere: each item goes to the manager as it comes, as a chunk of one
/// "line" (so progress counts items, not rows). Receivers of PQv3 data get each item as one
/// CopyData message, which COPY FROM accepts whatever the split; call receivers get the items
/// as given. An item that is an error ends the copy (it is not [resumable](Producer::resumable)):
/// the bytes lost with it may be part of a row.
///
/// ```
/// use bytes::Bytes;
/// use copyman_async::StreamProducer;
///
/// let items = vec![Ok::<_, std::io::Error>(Bytes::from_static(b"1\n2\n")), Ok(Bytes::from_static(b"3\n"))];
/// let producer = StreamProducer::new(futures_util::stream::iter(items));
/// ```
#[derive(Debug)]
pub struct StreamProducer<S> {
    stream: S,
}

impl<S, E> StreamProducer<S>
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
    E: Into<BoxError>,
{
    /// A producer of the items of `stream`.
    pub fn new(stream: S) -> Self {
        Self { stream }
    }
}

#[async_trait]
impl<S, E> Producer for StreamProducer<S>
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
    E: Into<BoxError>,
{
    fn protocol(&self) -> Protocol {
        Protocol::Chunks
    }

    // Its items split rows anywhere: a stream that failed may have lost bytes of a row, which
    // the next item would close with another row's end. It is not read again.
    fn resumable(&self) -> bool {
        false
    }

    /// A stream's `next` is cancel-safe: a read left takes nothing from the stream.
    fn can_abandon_read(&self) -> bool {
        true
    }

    async fn next_chunk(&mut self) -> Result<Option<Chunk>, BoxError> {
        match self.stream.next().await {
            Some(Ok(bytes)) => Ok(Some(Chunk::lines(vec![bytes]))),
            Some(Err(e)) => Err(e.into()),
            None => Ok(None),
        }
    }
}

/// Produces COPY data from any [`AsyncRead`] (a file, a pipe, a socket).
///
/// The bytes are raw COPY data in the format the receivers' statements expect; each read
/// (up to the buffer size, 64 KiB by default) goes to the manager as a chunk of one "line", as
/// for [`StreamProducer`].
///
/// ```
/// use copyman_async::ReaderProducer;
///
/// let producer = ReaderProducer::new(&b"1\n2\n3\n"[..]);
/// ```
#[derive(Debug)]
pub struct ReaderProducer<R> {
    reader: R,
    buffer_size: usize,
}

impl<R: AsyncRead + Send + Unpin> ReaderProducer<R> {
    /// A producer of what `reader` reads.
    pub fn new(reader: R) -> Self {
        Self {
            reader,
            buffer_size: DEFAULT_BUFFER_SIZE,
        }
    }

    /// Sets the read buffer size (at least 1 byte, at most 256 MiB; the default is 64 KiB).
    pub fn buffer_size(mut self, size: usize) -> Self {
        self.buffer_size = copyman_core::manager::Options::read_size(size);
        self
    }
}

#[async_trait]
impl<R: AsyncRead + Send + Unpin> Producer for ReaderProducer<R> {
    // A reader that failed may have lost bytes of a row: it is not read again.
    fn resumable(&self) -> bool {
        false
    }

    fn protocol(&self) -> Protocol {
        Protocol::Chunks
    }

    /// `read_buf` is cancel-safe: a read left has read nothing.
    fn can_abandon_read(&self) -> bool {
        true
    }

    async fn next_chunk(&mut self) -> Result<Option<Chunk>, BoxError> {
        let mut buf = BytesMut::with_capacity(self.buffer_size);
        loop {
            match self.reader.read_buf(&mut buf).await {
                Ok(0) => return Ok(None),
                Ok(_) => return Ok(Some(Chunk::lines(vec![buf.freeze()]))),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                // The reader's own error (EISDIR), not one "on the connection".
                Err(e) => return Err(Box::new(e)),
            }
        }
    }
}

#[async_trait]
impl Producer for NullProducer {
    fn protocol(&self) -> Protocol {
        Protocol::Null
    }

    async fn next_chunk(&mut self) -> Result<Option<Chunk>, BoxError> {
        Ok(None)
    }
}

/// Produces the rows of a `COPY … TO STDOUT` run through an existing `tokio-postgres` client or
/// transaction (`copy_out`): the convenient path for applications that hold pooled connections.
///
/// Slower than [`StatementProducer`]: the client parses every message. Rows come as lines,
/// gathered into chunks of about the buffer size (64 KiB by default) without copying them.
/// Cancelling or dropping it drops the client's `CopyOutStream`: the client then reads and
/// discards the rest of the COPY, and its connection stays usable.
///
/// TLS is the client's own: connect it with a TLS connector (`postgres-openssl`,
/// `postgres-native-tls`, or `tokio-postgres-rustls`' `MakeRustlsConnect` built from the rustls
/// `ClientConfig` that [`copyman_tls::TlsSettings::client_config`] makes from libpq's settings);
/// copyman sees only the rows.
///
/// Its statement's FORMAT and options are compared with the other ends' before any data moves,
/// as a raw endpoint's are (one copyman cannot read is refused), and so are its client's
/// `DateStyle`, `IntervalStyle` and `client_encoding`, asked when it is made (a `DateStyle` of `SQL, DMY` writes `02/12/2026`, which an ISO reader takes for
/// the 12th of February: refused). The client's other settings are its own: copyman cannot pin
/// them as it pins a [`Connection`](crate::Connection)'s, so the text it writes follows them:
/// give the client the settings `copyman_core::session::PORTABILITY_SETTINGS` lists
/// (`extra_float_digits=3`, `array_nulls=on`, …), as its connection's options.
pub struct ClientProducer<'c> {
    stream: Option<Pin<Box<tokio_postgres::CopyOutStream>>>,
    buffer_size: usize,
    /// What its statement says of its data (its client reads the server's answer).
    format: Option<DataFormat>,
    /// Ties the producer to the client (or transaction) it copies from.
    _client: PhantomData<&'c ()>,
}

impl std::fmt::Debug for ClientProducer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientProducer").finish_non_exhaustive()
    }
}

impl<'c> ClientProducer<'c> {
    /// Starts `statement` on `client` (a `tokio_postgres::Client` or `Transaction`).
    ///
    /// The statement is checked first: one that is not `COPY … TO STDOUT` is refused before
    /// anything is sent (the client would run it, then fail), and one whose query changes data
    /// (a move: `COPY (DELETE … RETURNING *) TO STDOUT`) outside a transaction block (its change
    /// would commit as its rows are read, before any receiver). A change its words do not show
    /// (a function that deletes) cannot be told: run such a move on a
    /// `tokio_postgres::Transaction`, committed after every receiver's.
    ///
    /// # Errors
    /// A statement of the wrong kind ([`Error::Session`] with
    /// [`SessionError::Statement`](copyman_core::session::SessionError::Statement)); the
    /// client's, e.g. the server's error for a bad statement.
    pub async fn new<C: tokio_postgres::GenericClient>(
        client: &'c C,
        statement: &str,
    ) -> Result<Self, Error> {
        copyman_core::statement::check(statement, Direction::ToStdout)
            .map_err(|e| Error::Session(e.into()))?;
        if copyman_core::statement::copy_writes(statement) {
            use copyman_core::client::{TRANSACTION_PROBE, TRANSACTION_PROBE_END};
            Error::in_a_transaction_to_move(client.batch_execute(TRANSACTION_PROBE).await)?;
            client.batch_execute(TRANSACTION_PROBE_END).await?;
        }
        let format = client_format(client, statement).await?;
        let stream = client.client().copy_out(statement).await?;
        Ok(Self {
            stream: Some(Box::pin(stream)),
            buffer_size: DEFAULT_BUFFER_SIZE,
            format: Some(format),
            _client: PhantomData,
        })
    }

    /// Sets the size rows are gathered to per chunk (at least 1 byte, at most 256 MiB; the
    /// default is 64 KiB).
    pub fn buffer_size(mut self, size: usize) -> Self {
        self.buffer_size = copyman_core::manager::Options::read_size(size);
        self
    }
}

/// What a client-bound endpoint's `statement` says of its data, asked of its client
/// ([`DataFormat::of_client_statement`]).
pub(crate) async fn client_format<C: tokio_postgres::GenericClient>(
    client: &C,
    statement: &str,
) -> Result<DataFormat, Error> {
    let row = client.query_one(Styles::QUERY, &[]).await?;
    let (date, interval, encoding) = (row.get(0), row.get(1), row.get(2));
    Ok(DataFormat::of_client_statement(
        statement, date, interval, encoding,
    ))
}

#[async_trait]
impl Producer for ClientProducer<'_> {
    copyman_core::client_endpoint_items!();

    // Its server ended the COPY with the error: nothing more can be read.
    fn resumable(&self) -> bool {
        false
    }

    async fn next_chunk(&mut self) -> Result<Option<Chunk>, BoxError> {
        let Some(stream) = self.stream.as_mut() else {
            return Ok(None);
        };
        let mut rows = ChunkBuilder::new(self.buffer_size);
        while rows.wants_more() {
            match stream.next().await {
                Some(row) => rows.push_row(row.map_err(Error::from)?),
                None => {
                    self.stream = None;
                    break;
                }
            }
        }
        Ok(rows.finish())
    }

    async fn cancel(&mut self) -> Result<(), BoxError> {
        self.stream = None;
        Ok(())
    }
}
