//! Producers: where the COPY data comes from.

use std::io::BufRead;
use std::task::Poll;

use bytes::{Bytes, BytesMut};
use copyman_core::endpoint::Abandon;
use copyman_core::session::CopyFormat;
use copyman_core::source::{Abort, CopyOutSource, SourceItem};
use copyman_core::statement::Direction;
use copyman_core::{BoxError, Chunk, Protocol};
use copyman_wire::HEADROOM;

use crate::connection::Connection;
use crate::{DEFAULT_BUFFER_SIZE, Error, PollSocket};

/// A source of COPY data for a [`CopyManager`](crate::CopyManager).
///
/// Implement it to feed a copy from anything; the manager calls `start` once, then
/// `next_chunk` until it returns `None`, or `cancel` if the copy is aborted first.
pub trait Producer {
    /// The protocol of the chunks it produces.
    fn protocol(&self) -> Protocol;

    /// Starts producing. A PQv3 producer must hand in frames as the server sent them when
    /// `source_frames` is true (a receiver wants lines); otherwise it may re-block them.
    ///
    /// # Errors
    /// Whatever keeps it from starting; the copy then fails.
    fn start(&mut self, source_frames: bool) -> Result<(), BoxError>;

    /// The next chunk, or `None` at the end.
    ///
    /// # Errors
    /// A failure to produce: the copy reports a ProducerFault and may go on or abort.
    fn next_chunk(&mut self) -> Result<Option<Chunk>, BoxError>;

    /// Rows it says it produced (its `COPY n`), once at its end, if it knows.
    fn count(&self) -> Option<u64> {
        None
    }

    /// The overall format (text or binary) its server announced when its COPY started, if it
    /// has a server; the manager refuses a copy whose producer and receivers differ in it.
    fn format(&self) -> Option<CopyFormat> {
        None
    }

    /// Stops producing before the end and leaves its connection usable (cancel and drain).
    ///
    /// # Errors
    /// Its connection could not be made usable again.
    fn cancel(&mut self) -> Result<(), BoxError> {
        Ok(())
    }

    /// Arms (`Some`) or clears (`None`) the copy's stall timeout
    /// ([`Options::stall_timeout`](crate::Options::stall_timeout)): from now on, a read that
    /// gets no byte for that long fails with a timeout error, which the manager reports as a
    /// stall of the producer. The default does nothing.
    ///
    /// # Errors
    /// The timeout could not be set.
    fn set_stall_timeout(&mut self, timeout: Option<std::time::Duration>) -> Result<(), BoxError> {
        let _ = timeout;
        Ok(())
    }

    /// Sets the size of the producer's reads ([`Options::buffer_size`](crate::Options)), for
    /// producers that read in buffers; the others ignore it.
    fn set_buffer_size(&mut self, size: usize) {
        let _ = size;
    }

    /// The socket a driver may wait on with `poll(2)` (readable) to read this producer without
    /// blocking, through [`Producer::try_next_chunk`], while it writes to the receivers. `None`
    /// (the default): the producer is read with the blocking [`Producer::next_chunk`] only.
    fn poll_socket(&self) -> Option<PollSocket> {
        None
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

/// A boxed producer is a producer (so a `Box<dyn Producer>` chosen at run time can be copied
/// from).
impl<P: Producer + ?Sized> Producer for Box<P> {
    fn protocol(&self) -> Protocol {
        (**self).protocol()
    }

    fn start(&mut self, source_frames: bool) -> Result<(), BoxError> {
        (**self).start(source_frames)
    }

    fn next_chunk(&mut self) -> Result<Option<Chunk>, BoxError> {
        (**self).next_chunk()
    }

    fn count(&self) -> Option<u64> {
        (**self).count()
    }

    fn format(&self) -> Option<CopyFormat> {
        (**self).format()
    }

    fn cancel(&mut self) -> Result<(), BoxError> {
        (**self).cancel()
    }

    fn set_stall_timeout(&mut self, timeout: Option<std::time::Duration>) -> Result<(), BoxError> {
        (**self).set_stall_timeout(timeout)
    }

    fn set_buffer_size(&mut self, size: usize) {
        (**self).set_buffer_size(size);
    }

    fn poll_socket(&self) -> Option<PollSocket> {
        (**self).poll_socket()
    }

    fn try_next_chunk(&mut self, eager: bool) -> Result<Poll<Option<Chunk>>, BoxError> {
        (**self).try_next_chunk(eager)
    }
}

/// Produces the data of a `COPY … TO STDOUT` on a raw [`Connection`]: the fast path.
///
/// Reads the socket in large buffers (64 KiB by default), re-blocks each buffer into one CopyData
/// frame in place, and hands that one buffer to every receiver. Rows are never parsed. Under a
/// [`CopyManager`](crate::CopyManager) its socket (TCP, TLS over TCP, or Unix) is non-blocking
/// for the copy and read while the receivers write the previous buffer; reads go on filling the
/// same buffer until it is full or the receivers wait for it, so a fast source gives full buffers
/// (few, large writes downstream) and a slow one is never waited for.
///
/// ```no_run
/// use copyman_sync::{Connection, StatementProducer};
///
/// let mut source = Connection::connect_str("host=127.0.0.1 user=postgres")?;
/// let producer = StatementProducer::new(&mut source, "COPY (SELECT i FROM generate_series(1, 10) AS g(i)) TO STDOUT");
/// # Ok::<(), copyman_sync::Error>(())
/// ```
#[derive(Debug)]
pub struct StatementProducer<'c> {
    conn: &'c mut Connection,
    statement: String,
    buffer_size: usize,
    buf: BytesMut,
    /// Bytes read into `buf` (after its headroom) and not handed over yet.
    filled: usize,
    source: Option<CopyOutSource>,
    format: Option<CopyFormat>,
}

impl<'c> StatementProducer<'c> {
    /// A producer running `statement` (a `COPY … TO STDOUT`) on `conn`.
    pub fn new(conn: &'c mut Connection, statement: impl Into<String>) -> Self {
        Self {
            conn,
            statement: statement.into(),
            buffer_size: DEFAULT_BUFFER_SIZE,
            buf: BytesMut::new(),
            filled: 0,
            source: None,
            format: None,
        }
    }

    /// Sets the read buffer size (at least 1 byte; the default is 64 KiB).
    pub fn buffer_size(mut self, size: usize) -> Self {
        self.buffer_size = size.max(1);
        self
    }

    fn start_copy(&mut self, reblock: bool) -> Result<(), Error> {
        let started = self.conn.start_copy(&self.statement, Direction::ToStdout)?;
        self.format = started.format;
        self.source = Some(CopyOutSource::started(
            reblock,
            started,
            self.conn.endpoint.session_mut(),
        )?);
        Ok(())
    }

    /// The next chunk: blocking (`nonblocking` is `None`), or without blocking with its `eager`
    /// flag (see [`Producer::try_next_chunk`]).
    fn read_chunk(&mut self, nonblocking: Option<bool>) -> Result<Poll<Option<Chunk>>, Error> {
        let source = self
            .source
            .as_mut()
            .ok_or(Error::State("producer not started"))?;
        self.conn.set_nonblocking(nonblocking.is_some())?;
        loop {
            match source.poll_item() {
                Some(SourceItem::Chunk(chunk)) => return Ok(Poll::Ready(Some(chunk))),
                Some(_) => return Ok(Poll::Ready(None)),
                None => {}
            }
            // After a failure or the end, the socket is idle: never read it again.
            if let Some(e) = source.failure() {
                return Err(e.clone().into());
            }
            if source.is_ended() {
                return Ok(Poll::Ready(None));
            }
            if self.buf.len() != HEADROOM + self.buffer_size {
                // A new buffer; its memory is reused once the receivers are done with the chunk
                // last handed over from it.
                self.buf.clear();
                self.buf.resize(HEADROOM + self.buffer_size, 0);
            }
            let into = &mut self.buf[HEADROOM + self.filled..];
            let read = match std::io::Read::read(&mut self.conn.stream, into) {
                Ok(0) if self.filled == 0 => {
                    return Err(source.handle_eof(self.conn.endpoint.session_mut()).into());
                }
                // The end of the stream comes again on the next read: hand over what came first.
                Ok(0) => true,
                Ok(n) => {
                    self.filled += n;
                    // Full, or blocking (one read, one chunk), or the receivers are waiting.
                    self.filled == self.buffer_size || nonblocking != Some(false)
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && nonblocking.is_some() => {
                    if self.filled == 0 || nonblocking == Some(false) {
                        return Ok(Poll::Pending);
                    }
                    true
                }
                Err(e) => return Err(e.into()),
            };
            if !read {
                return Ok(Poll::Pending);
            }
            self.buf.truncate(HEADROOM + self.filled);
            self.filled = 0;
            source.handle_read(self.conn.endpoint.session_mut(), self.buf.split())?;
        }
    }

    fn cancel_copy(&mut self) -> Result<(), Error> {
        self.hand_over_filled()?;
        let Some(source) = self.source.as_mut() else {
            return Ok(());
        };
        if let Abort::Drain { cancel } = source.abort(self.conn.endpoint.session_mut())? {
            // The server answers a cancel with 57014 query_canceled: expected, not reported.
            self.conn.endpoint.drain_copy_out(cancel);
            self.conn.drive()?;
        }
        Ok(())
    }

    /// Gives the source the bytes read but not handed over: it must see them, or its session
    /// would resume parsing the connection in the middle of a message.
    fn hand_over_filled(&mut self) -> Result<(), Error> {
        if let Some(source) = self.source.as_mut()
            && self.filled > 0
        {
            self.buf.truncate(HEADROOM + self.filled);
            self.filled = 0;
            source.handle_read(self.conn.endpoint.session_mut(), self.buf.split())?;
        }
        Ok(())
    }
}

impl Drop for StatementProducer<'_> {
    fn drop(&mut self) {
        // Dropped in the middle of its COPY: core switches the session to draining, and a server
        // that still streams is cancelled now (the connection's next call reads the rest), or
        // the connection is closed if that cannot be done.
        let abandon = match self.hand_over_filled() {
            Ok(()) => self.conn.endpoint.abandon_copy_out(self.source.as_mut()),
            Err(_) => Abandon::Close,
        };
        match abandon {
            Abandon::Nothing => {}
            Abandon::Cancel if self.conn.cancel().is_ok() => {}
            _ => self.conn.close(),
        }
        let _ = self.conn.set_nonblocking(false);
    }
}

impl Producer for StatementProducer<'_> {
    fn protocol(&self) -> Protocol {
        Protocol::PQv3
    }

    fn format(&self) -> Option<CopyFormat> {
        self.format
    }

    fn start(&mut self, source_frames: bool) -> Result<(), BoxError> {
        Ok(self.start_copy(!source_frames)?)
    }

    fn next_chunk(&mut self) -> Result<Option<Chunk>, BoxError> {
        match self.read_chunk(None)? {
            Poll::Ready(chunk) => Ok(chunk),
            Poll::Pending => unreachable!("a blocking read is never pending"),
        }
    }

    fn poll_socket(&self) -> Option<PollSocket> {
        self.conn.poll_socket()
    }

    fn try_next_chunk(&mut self, eager: bool) -> Result<Poll<Option<Chunk>>, BoxError> {
        Ok(self.read_chunk(Some(eager))?)
    }

    fn count(&self) -> Option<u64> {
        self.source.as_ref().and_then(CopyOutSource::count)
    }

    fn cancel(&mut self) -> Result<(), BoxError> {
        Ok(self.cancel_copy()?)
    }

    fn set_stall_timeout(&mut self, timeout: Option<std::time::Duration>) -> Result<(), BoxError> {
        Ok(self.conn.set_timeout(timeout)?)
    }

    fn set_buffer_size(&mut self, size: usize) {
        self.buffer_size = size.max(1);
    }
}

/// Produces chunks of COPY lines from any iterator (`IteratorProducer` in py-postgresql's copyman).
///
/// Each item is one cycle's chunk: a list of lines, each a whole COPY row with its newline in text
/// and CSV formats. Receivers of PQv3 data get each chunk as one CopyData message, so lines need
/// not be whole rows for them; Chunks receivers get the lines as given.
///
/// ```
/// use copyman_sync::IteratorProducer;
///
/// let producer = IteratorProducer::new(vec![vec!["1\n", "2\n"], vec!["3\n"]]);
/// ```
#[derive(Debug)]
pub struct IteratorProducer<I> {
    iter: I,
}

impl<I, C, L> IteratorProducer<I>
where
    I: Iterator<Item = C>,
    C: IntoIterator<Item = L>,
    L: Into<Bytes>,
{
    /// A producer of the chunks `iter` yields.
    pub fn new(iter: impl IntoIterator<IntoIter = I>) -> Self {
        Self {
            iter: iter.into_iter(),
        }
    }
}

impl<I, C, L> Producer for IteratorProducer<I>
where
    I: Iterator<Item = C>,
    C: IntoIterator<Item = L>,
    L: Into<Bytes>,
{
    fn protocol(&self) -> Protocol {
        Protocol::Chunks
    }

    fn start(&mut self, _source_frames: bool) -> Result<(), BoxError> {
        Ok(())
    }

    fn next_chunk(&mut self) -> Result<Option<Chunk>, BoxError> {
        Ok(self
            .iter
            .next()
            .map(|lines| Chunk::lines(lines.into_iter().map(Into::into).collect::<Vec<Bytes>>())))
    }
}

/// Produces no data (`NullProducer` in py-postgresql's copyman).
#[derive(Debug, Default, Clone, Copy)]
pub struct NullProducer;

impl Producer for NullProducer {
    fn protocol(&self) -> Protocol {
        Protocol::Null
    }

    fn start(&mut self, _source_frames: bool) -> Result<(), BoxError> {
        Ok(())
    }

    fn next_chunk(&mut self) -> Result<Option<Chunk>, BoxError> {
        Ok(None)
    }
}

/// Produces the rows of a `COPY … TO STDOUT` run through an existing `postgres` client or
/// transaction (`copy_out`): the convenient path for applications that hold pooled connections.
///
/// Slower than [`StatementProducer`]: the client parses every message. Rows come as lines.
/// Aborting drops the reader, and the client reads and discards the rest of the COPY.
///
/// TLS is the client's own: connect it with a TLS connector (`postgres-openssl`,
/// `postgres-native-tls`, or `tokio-postgres-rustls`' `MakeRustlsConnect` built from the rustls
/// `ClientConfig` that [`copyman_tls::TlsSettings::client_config`] makes from libpq's settings);
/// copyman sees only the rows.
pub struct ClientProducer<'c> {
    reader: Option<postgres::CopyOutReader<'c>>,
    buffer_size: usize,
    /// The reader reported the end: it must not be read again (the client would take the
    /// CommandComplete that follows for an unexpected message).
    at_end: bool,
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
    /// anything is sent (the client would run it, then fail).
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
        Ok(Self {
            reader: Some(client.copy_out(statement)?),
            buffer_size: DEFAULT_BUFFER_SIZE,
            at_end: false,
        })
    }
}

impl Producer for ClientProducer<'_> {
    fn protocol(&self) -> Protocol {
        Protocol::Chunks
    }

    fn start(&mut self, _source_frames: bool) -> Result<(), BoxError> {
        Ok(())
    }

    fn next_chunk(&mut self) -> Result<Option<Chunk>, BoxError> {
        let Some(reader) = self.reader.as_mut().filter(|_| !self.at_end) else {
            self.reader = None;
            return Ok(None);
        };
        // Gather rows into one buffer, then cut it into per-row slices: one allocation a chunk.
        let mut buf = BytesMut::new();
        let mut ends = Vec::new();
        while buf.len() < self.buffer_size {
            let row = reader.fill_buf()?;
            if row.is_empty() {
                self.at_end = true;
                break;
            }
            buf.extend_from_slice(row);
            let n = row.len();
            reader.consume(n);
            ends.push(buf.len());
        }
        if ends.is_empty() {
            self.reader = None;
            return Ok(None);
        }
        let all = buf.freeze();
        let mut start = 0;
        let lines: Vec<Bytes> = ends
            .into_iter()
            .map(|end| {
                let line = all.slice(start..end);
                start = end;
                line
            })
            .collect();
        Ok(Some(Chunk::lines(lines)))
    }

    fn cancel(&mut self) -> Result<(), BoxError> {
        self.reader = None;
        Ok(())
    }
}
