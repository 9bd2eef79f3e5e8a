//! Producers: where the COPY data comes from.

use std::io::BufRead;
use std::task::Poll;
use std::time::Duration;

use copyman_core::local::{ChunkBuilder, IteratorProducer, LineChunks, NullProducer};
use copyman_core::start::{DataFormat, Styles};
use copyman_core::statement::Direction;
use copyman_core::{BoxError, Chunk, Protocol};

use crate::connection::Connection;
use crate::poll::READABLE;
use crate::{DEFAULT_BUFFER_SIZE, Error, Interrupter, PollSocket};

/// A source of COPY data for a [`CopyManager`](crate::CopyManager).
///
/// Implement it to feed a copy from anything; the manager calls `start` once, then
/// `next_chunk` until it returns `None`, or `cancel` if the copy is aborted first.
pub trait Producer {
    /// The protocol of the chunks it produces.
    fn protocol(&self) -> Protocol;

    /// Starts producing. A PQv3 producer must hand in frames as the server sent them when
    /// `source_frames` is true (a receiver wants lines); otherwise it may re-block them. The
    /// default does nothing, for producers with nothing to start.
    ///
    /// # Errors
    /// Whatever keeps it from starting; the copy then fails.
    fn start(&mut self, source_frames: bool) -> Result<(), BoxError> {
        let _ = source_frames;
        Ok(())
    }

    /// The next chunk, or `None` at the end.
    ///
    /// # Errors
    /// A failure to produce: the copy reports a ProducerFault and may go on or abort.
    fn next_chunk(&mut self) -> Result<Option<Chunk>, BoxError>;

    copyman_core::producer_items!();

    /// Stops producing before the end and leaves its connection usable (cancel and drain).
    ///
    /// # Errors
    /// Its connection could not be made usable again.
    fn cancel(&mut self) -> Result<(), BoxError> {
        Ok(())
    }

    /// The copy was interrupted and its server sent no byte for the interrupt's grace: a
    /// producer on a connection closes it at once, saying so
    /// ([`copyman_core::endpoint::GIVEN_UP_AFTER_INTERRUPT`]), not as a stall timeout the caller
    /// may not have set. The default: [`Producer::stalled`].
    fn given_up(&mut self) {
        self.stalled();
    }

    /// Arms (`Some`) or clears (`None`) the copy's stall timeout
    /// ([`Options::stall_timeout`](crate::Options::stall_timeout)): from now on, a read that
    /// gets no byte for that long fails with a timeout error, which the manager reports as a
    /// stall of the producer. A copy arms it before [`Producer::start`], so a start that waits
    /// that long for its server (a locked table, first rows that take long) stalls too. The
    /// default does nothing.
    ///
    /// # Errors
    /// The timeout could not be set.
    fn set_stall_timeout(&mut self, timeout: Option<Duration>) -> Result<(), BoxError> {
        let _ = timeout;
        Ok(())
    }

    /// The socket a driver may wait on with `poll(2)` (readable) to read this producer without
    /// blocking, through [`Producer::try_next_chunk`], while it writes to the receivers. `None`
    /// (the default): the producer is read with the blocking [`Producer::next_chunk`] only.
    fn poll_socket(&self) -> Option<PollSocket> {
        None
    }

    /// The interrupter its connection was given
    /// ([`Connection::set_interrupter`](crate::Connection::set_interrupter)): the copy takes it
    /// as its own, as a receiver's ([`Receiver::interrupter`](crate::Receiver::interrupter)).
    /// The default: none.
    fn interrupter(&self) -> Option<Interrupter> {
        None
    }

    /// Sets the interrupter that cuts this producer's blocking waits for its server (the drain
    /// after a cancel), returning the one it had: a copy's drop lends its own while it gives the
    /// copy up — a frozen source is given up after [`INTERRUPT_GRACE`](crate::INTERRUPT_GRACE),
    /// not waited for — and gives the old one back. The default (no connection of its own) keeps
    /// none.
    fn swap_interrupter(&mut self, interrupter: Option<Interrupter>) -> Option<Interrupter> {
        let _ = interrupter;
        None
    }

    /// Whether a read made through [`Producer::try_next_chunk`] that is still pending may be left
    /// when the copy ends ([`Manager::abandons_read`](copyman_core::Manager::abandons_read)):
    /// the producer holds nothing of it that its [`Producer::cancel`] would need. The default is
    /// `false`: the driver waits for the read to complete.
    fn can_abandon_read(&self) -> bool {
        false
    }

    /// The next chunk without blocking: `Poll::Pending` when the socket has no more to give now
    /// (wait until [`Producer::poll_socket`] is readable, then call again). With `eager` false the
    /// producer may keep a partly filled buffer pending, to hand over a fuller chunk later (the
    /// driver says `false` while the receivers are still busy with the last one, `true` once
    /// they wait). Called only when `poll_socket` is `Some`; the default blocks in
    /// [`Producer::next_chunk`].
    ///
    /// # Errors
    /// As [`Producer::next_chunk`].
    fn try_next_chunk(&mut self, eager: bool) -> Result<Poll<Option<Chunk>>, BoxError> {
        let _ = eager;
        self.next_chunk().map(Poll::Ready)
    }
}

// A boxed producer is a producer (so a `Box<dyn Producer>` chosen at run time can be copied
// from).
copyman_core::forward_boxed! {
    impl Producer {
        fn protocol(&self) -> Protocol;
        fn start(&mut self, source_frames: bool) -> Result<(), BoxError>;
        fn next_chunk(&mut self) -> Result<Option<Chunk>, BoxError>;
        fn count(&self) -> Option<u64>;
        fn resumable(&self) -> bool;
        fn format(&self) -> Option<DataFormat>;
        fn cancel(&mut self) -> Result<(), BoxError>;
        fn stalled(&mut self);
        fn given_up(&mut self);
        fn set_stall_timeout(&mut self, timeout: Option<Duration>) -> Result<(), BoxError>;
        fn set_buffer_size(&mut self, size: usize);
        fn poll_socket(&self) -> Option<PollSocket>;
        fn interrupter(&self) -> Option<Interrupter>;
        fn swap_interrupter(&mut self, interrupter: Option<Interrupter>) -> Option<Interrupter>;
        fn can_abandon_read(&self) -> bool;
        fn try_next_chunk(&mut self, eager: bool) -> Result<Poll<Option<Chunk>>, BoxError>;
    }
}

copyman_core::statement_producer! {
    /// Produces the data of a `COPY … TO STDOUT` on a raw [`Connection`]: the fast path.
    ///
    /// Reads the socket in large buffers (64 KiB by default), re-blocks each buffer into one
    /// CopyData frame in place, and hands that one buffer to every receiver. Rows are never parsed.
    /// Under a [`CopyManager`](crate::CopyManager) its socket (TCP, TLS over TCP, or Unix) is
    /// read without blocking while the receivers write the previous buffer; reads go
    /// on filling the same buffer until it is full or the receivers wait for it, so a fast source
    /// gives full buffers (few, large writes downstream) and a slow one is never waited for.
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
    /// use copyman_sync::{Connection, StatementProducer};
    ///
    /// let mut source = Connection::connect_str("host=127.0.0.1 user=postgres")?;
    /// let producer = StatementProducer::new(
    ///     &mut source,
    ///     "COPY (SELECT i FROM generate_series(1, 10) AS g(i)) TO STDOUT",
    /// );
    /// # Ok::<(), copyman_sync::Error>(())
    /// ```
    Connection, DEFAULT_BUFFER_SIZE
}

impl StatementProducer<'_> {
    /// The next chunk without blocking, with its `eager` flag (see
    /// [`Producer::try_next_chunk`]).
    fn read_chunk(&mut self, eager: bool) -> Result<Poll<Option<Chunk>>, Error> {
        loop {
            if let Poll::Ready(chunk) = self.out.poll_chunk(self.conn.endpoint.session())? {
                return Ok(Poll::Ready(chunk));
            }
            let read = match std::io::Read::read(&mut self.conn.stream, self.out.read_buf()) {
                Ok(0) if !self.out.has_filled() => {
                    return Err(self.out.handle_eof(self.conn.endpoint.session_mut()).into());
                }
                // The end of the stream comes again on the next read: hand over what came first.
                Ok(0) => true,
                // Full, or the receivers are waiting.
                Ok(n) => self.out.filled(n) || eager,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    self.out.has_filled() && eager
                }
                Err(e) => return Err(e.into()),
            };
            if !read {
                return Ok(Poll::Pending);
            }
            self.out.hand_over(self.conn.endpoint.session_mut())?;
        }
    }
}

impl Drop for StatementProducer<'_> {
    fn drop(&mut self) {
        // Dropped in the middle of its COPY: a server that still streams is cancelled (the
        // connection's next call reads the rest), or the connection closed.
        self.conn.abandon_copy_out(&mut self.out);
    }
}

impl Producer for StatementProducer<'_> {
    copyman_core::statement_producer_items!();

    fn start(&mut self, source_frames: bool) -> Result<(), BoxError> {
        let started = self
            .conn
            .start_copy(self.out.begin(), Direction::ToStdout)?;
        let session = self.conn.endpoint.session_mut();
        let started = self.out.started(started, !source_frames, session);
        Ok(started.map_err(Error::Session)?)
    }

    fn next_chunk(&mut self) -> Result<Option<Chunk>, BoxError> {
        // Eager, as a driver is once its receivers wait: one read that gets bytes, one chunk.
        loop {
            match self.read_chunk(true)? {
                Poll::Ready(chunk) => return Ok(chunk),
                Poll::Pending => self.conn.wait(READABLE).map_err(Error::Io)?,
            }
        }
    }

    fn poll_socket(&self) -> Option<PollSocket> {
        self.conn.poll_socket()
    }

    fn interrupter(&self) -> Option<Interrupter> {
        self.conn.interrupter().cloned()
    }

    fn swap_interrupter(&mut self, interrupter: Option<Interrupter>) -> Option<Interrupter> {
        let had = self.conn.take_interrupter();
        self.conn.set_interrupter(interrupter);
        had
    }

    fn try_next_chunk(&mut self, eager: bool) -> Result<Poll<Option<Chunk>>, BoxError> {
        Ok(self.read_chunk(eager)?)
    }

    fn cancel(&mut self) -> Result<(), BoxError> {
        // Closed (its stall gave it up): nothing runs there any more that a cancel could end;
        // the stall stays the producer's error, not this close's consequence.
        if self.conn.is_closed() {
            return Ok(());
        }
        let aborted = self.out.abort(&mut self.conn.endpoint);
        if aborted.map_err(Error::Session)? {
            self.conn.drive()?;
        }
        Ok(())
    }

    fn set_stall_timeout(&mut self, timeout: Option<Duration>) -> Result<(), BoxError> {
        self.conn.set_copy_timeout(timeout);
        Ok(())
    }

    fn given_up(&mut self) {
        self.conn.cancel_detached();
        self.conn
            .close(copyman_core::endpoint::GIVEN_UP_AFTER_INTERRUPT);
    }
}

impl<I: LineChunks> Producer for IteratorProducer<I> {
    fn protocol(&self) -> Protocol {
        Protocol::Chunks
    }

    fn next_chunk(&mut self) -> Result<Option<Chunk>, BoxError> {
        Ok(self.produce())
    }
}

impl Producer for NullProducer {
    fn protocol(&self) -> Protocol {
        Protocol::Null
    }

    fn next_chunk(&mut self) -> Result<Option<Chunk>, BoxError> {
        Ok(None)
    }
}

/// Produces the rows of a `COPY … TO STDOUT` run through an existing `postgres` client or
/// transaction (`copy_out`): the convenient path for applications that hold pooled connections.
///
/// Slower than [`StatementProducer`]: the client parses every message. Rows come as lines.
/// Aborting drops the reader, and the client reads and discards the rest of the COPY — when the
/// client is next used: the `postgres` crate drives its connection only inside its calls, so
/// until then the server's session stays in its COPY (its snapshot held). Use the client (or drop
/// it) as soon as the copy returns.
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
    reader: Option<postgres::CopyOutReader<'c>>,
    buffer_size: usize,
    /// What its statement says of its data (its client reads the server's answer).
    format: Option<DataFormat>,
}

impl std::fmt::Debug for ClientProducer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientProducer").finish_non_exhaustive()
    }
}

impl<'c> ClientProducer<'c> {
    /// Starts `statement` on `client` (a `postgres::Client` or `postgres::Transaction`).
    ///
    /// The statement is checked first: one that is not `COPY … TO STDOUT` is refused before
    /// anything is sent (the client would run it, then fail), and one whose query changes data
    /// (a move: `COPY (DELETE … RETURNING *) TO STDOUT`) outside a transaction block (its change
    /// would commit as its rows are read, before any receiver). A change its words do not show
    /// (a function that deletes) cannot be told: run such a move on a `postgres::Transaction`,
    /// committed after every receiver's.
    ///
    /// # Errors
    /// A statement of the wrong kind ([`Error::Session`] with
    /// [`SessionError::Statement`](copyman_core::session::SessionError::Statement)); the
    /// client's, e.g. the server's error for a bad statement.
    pub fn new<C: postgres::GenericClient>(
        client: &'c mut C,
        statement: &str,
    ) -> Result<Self, Error> {
        copyman_core::statement::check(statement, Direction::ToStdout)
            .map_err(|e| Error::Session(e.into()))?;
        if copyman_core::statement::copy_writes(statement) {
            use copyman_core::client::{TRANSACTION_PROBE, TRANSACTION_PROBE_END};
            Error::in_a_transaction_to_move(client.batch_execute(TRANSACTION_PROBE))?;
            client.batch_execute(TRANSACTION_PROBE_END)?;
        }
        let format = client_format(client, statement)?;
        Ok(Self {
            reader: Some(client.copy_out(statement)?),
            buffer_size: DEFAULT_BUFFER_SIZE,
            format: Some(format),
        })
    }
}

/// The client's own error where its copy reader hands it over inside an `io::Error` (whose
/// `source()` skips it): as this adapter's [`Error`], which carries the server's error.
fn client_error(error: std::io::Error) -> BoxError {
    if !error.get_ref().is_some_and(|e| e.is::<postgres::Error>()) {
        return error.into();
    }
    let kind = error.kind();
    match error
        .into_inner()
        .map(|inner| inner.downcast::<postgres::Error>())
    {
        Some(Ok(client)) => Error::from(*client).into(),
        Some(Err(inner)) => inner,
        None => std::io::Error::from(kind).into(),
    }
}

/// What a client-bound endpoint's `statement` says of its data, asked of its client
/// ([`DataFormat::of_client_statement`]).
pub(crate) fn client_format<C: postgres::GenericClient>(
    client: &mut C,
    statement: &str,
) -> Result<DataFormat, Error> {
    let row = client.query_one(Styles::QUERY, &[])?;
    let (date, interval, encoding) = (row.get(0), row.get(1), row.get(2));
    Ok(DataFormat::of_client_statement(
        statement, date, interval, encoding,
    ))
}

impl Producer for ClientProducer<'_> {
    copyman_core::client_endpoint_items!();

    // Its server ended the COPY with the error: nothing more can be read.
    fn resumable(&self) -> bool {
        false
    }

    fn next_chunk(&mut self) -> Result<Option<Chunk>, BoxError> {
        let Some(reader) = self.reader.as_mut() else {
            return Ok(None);
        };
        let mut rows = ChunkBuilder::new(self.buffer_size);
        while rows.wants_more() {
            let row = reader.fill_buf().map_err(client_error)?;
            if row.is_empty() {
                // The reader reported the end: it must not be read again (the client would take
                // the CommandComplete that follows for an unexpected message).
                self.reader = None;
                break;
            }
            rows.copy_row(row);
            let n = row.len();
            reader.consume(n);
        }
        Ok(rows.finish())
    }

    fn cancel(&mut self) -> Result<(), BoxError> {
        self.reader = None;
        Ok(())
    }
}
