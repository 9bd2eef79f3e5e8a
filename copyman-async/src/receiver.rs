//! Receivers: where the COPY data goes.

use std::io;
use std::marker::PhantomData;
use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use copyman_core::endpoint::Endpoint;
use copyman_core::local::{CallReceiver, CopyInStatement, NullReceiver, completed, joined, lines};
use copyman_core::stall::Written;
use copyman_core::start::DataFormat;
use copyman_core::statement::Direction;
use copyman_core::{BoxError, Data, Protocol};
use copyman_wire::realign::Completion;
use futures_util::{Sink, SinkExt};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::Error;
use crate::connection::{Connection, Stream};

/// A destination of COPY data for a [`CopyManager`](crate::CopyManager).
///
/// The manager calls `start` once, `transmit` for each cycle's data (and again with what is still
/// owed when the receiver is reconciled), then exactly one of `complete` or `fail`. Transmits to
/// different receivers run concurrently; one receiver never has two calls outstanding.
///
/// With a stall timeout ([`Options::stall_timeout`](crate::Options::stall_timeout)) the future
/// of a `start` (its server's answer did not come: a table another session locked), a
/// `transmit` or a `fail` may be dropped midway; the receiver itself lives on, and the
/// `written` count its transmit kept up to date tells the manager how much of the data went out,
/// and, while it runs, whether bytes still move (core's stall rule).
#[async_trait]
pub trait Receiver: Send {
    /// The protocol of the data it takes.
    fn protocol(&self) -> Protocol;

    /// Starts receiving. The default does nothing, for receivers with nothing to start.
    ///
    /// # Errors
    /// Whatever keeps it from starting; the copy then fails.
    async fn start(&mut self) -> Result<(), BoxError> {
        Ok(())
    }

    /// Takes one cycle's data.
    ///
    /// `written` starts at 0. A receiver that can send part of the data (PQv3 over a socket)
    /// [adds](Written::add) to it as bytes go out, so that when the transmit fails, or its future
    /// is dropped by the stall timeout, the manager knows how much went out: realignment and
    /// reconcile depend on it; and so that a slow receiver whose bytes still move does not count
    /// as stalled (bytes that go out without being the data's, such as TLS records of data taken
    /// earlier, are [signs of life](Written::moved)). Receivers that take data whole may ignore
    /// it. A wrapper passes it on.
    ///
    /// # Errors
    /// A failure: the receiver faults and leaves the copy.
    async fn transmit(&mut self, data: &Data, written: &Written) -> Result<(), BoxError>;

    /// Commits what it received; returns its `COPY n` if it has one.
    ///
    /// Receivers without a server (lines or nothing: [`Protocol::Chunks`], [`Protocol::Null`]:
    /// a file, a writer, a callback) complete before any receiver that commits a server's COPY
    /// (one of PQv3 data, or a client-bound one: [`Receiver::completes_a_server`]), and one
    /// failing there fails those, so that nothing commits anywhere. A receiver of the caller's
    /// that takes PQv3 data is taken for a server's: it completes beside them, and its failure
    /// then comes after theirs may have committed (see the copy's "All or nothing").
    ///
    /// # Errors
    /// The commit failed: the copy fails.
    async fn complete(&mut self) -> Result<Option<u64>, BoxError>;

    /// Discards what it received: first sends `completion` (realignment, PQv3 receivers), then
    /// fails its COPY with `reason`, leaving its connection usable.
    ///
    /// # Errors
    /// Its connection could not be made usable again.
    async fn fail(&mut self, reason: &str, completion: &Completion) -> Result<(), BoxError>;

    copyman_core::receiver_items!();
}

copyman_core::forward_boxed! {
    #[async_trait]
    impl Receiver {
        fn protocol(&self) -> Protocol;
        fn format(&self) -> Option<DataFormat>;
        async fn start(&mut self) -> Result<(), BoxError>;
        async fn transmit(&mut self, data: &Data, written: &Written) -> Result<(), BoxError>;
        async fn complete(&mut self) -> Result<Option<u64>, BoxError>;
        async fn fail(&mut self, reason: &str, completion: &Completion) -> Result<(), BoxError>;
        fn stalled(&mut self);
        fn completes_a_server(&self) -> bool;
    }
}

/// Receives into a `COPY … FROM STDIN` on a raw [`Connection`]: the fast path.
///
/// The data of each cycle is written while the socket is read at the same time, so an error
/// the server reports (a bad row, a constraint) ends the transmit at once and becomes a fault of
/// this receiver, with the server's SQLSTATE, message, detail and context.
///
/// Its COPY is only ever completed by an explicit CopyDone ([`Receiver::complete`]). Dropped in
/// the middle of its COPY (the copy's future or stream dropped) it fails the COPY without
/// waiting: it writes the realignment and a CopyFail if the socket takes them at once (the
/// usual case), and the connection's next call reads the server's answer, so the connection
/// stays usable. If the socket would block (a stalled destination), or a message was left half
/// written (a CopyDone or CopyFail cut short, e.g. its abort cut short by the stall timeout),
/// it closes the connection instead: the server aborts the COPY and the transaction around it,
/// and the connection fails every later call with [`Error::Closed`]. Nothing of the COPY
/// commits either way.
#[derive(Debug)]
pub struct StatementReceiver<'c> {
    conn: &'c mut Connection,
    /// Its statement, format and the CopyData stream it sent: copyman-core's half.
    copy: CopyInStatement,
}

impl<'c> StatementReceiver<'c> {
    /// A receiver running `statement` (a `COPY … FROM STDIN`) on `conn`.
    pub fn new(conn: &'c mut Connection, statement: impl Into<String>) -> Self {
        let copy = CopyInStatement::new(statement);
        Self { conn, copy }
    }

    /// Writes `bytes` while reading what the server says; its error ends the write (and one it
    /// sent before, the transmit).
    async fn write_data(&mut self, bytes: &[u8], written: &Written) -> Result<(), Error> {
        self.conn.endpoint.copy_in_status()?;
        self.conn.flush().await?;
        let copy = &mut self.copy;
        let (stream, endpoint, scratch) = self.conn.parts()?;
        // Under TLS, bytes taken may still wait in its buffer: they must go out too.
        let mut sent = 0;
        // The socket is tried now and then, writable or not (core's `TRY_WRITE_EVERY`).
        let every = copyman_core::stall::TRY_WRITE_EVERY;
        let unasked = tokio::time::sleep(every);
        tokio::pin!(unasked);
        while sent < bytes.len() || !stream.is_flushed() {
            let asked = tokio::select! {
                biased;
                ready = stream.readable() => {
                    ready?;
                    read_server(stream, endpoint, scratch)?;
                    continue;
                }
                ready = stream.writable() => ready.map(|()| true)?,
                () = &mut unasked => false,
            };
            // Set again only when it fired: a try past readiness among writes that go through
            // costs one more write, a timer reset per write would cost the hot path.
            if !asked {
                unasked.as_mut().reset(tokio::time::Instant::now() + every);
            }
            let records = stream.tls_sent();
            let attempt = match (asked, sent < bytes.len()) {
                (true, true) => stream.try_write(&bytes[sent..]),
                (true, false) => stream.try_flush().map(|()| 0),
                (false, true) => stream.try_write_unasked(&bytes[sent..]),
                (false, false) => stream.try_write_unasked(&[]),
            };
            if stream.tls_sent() != records {
                // Records of data taken before went out: alive, however slow.
                written.moved();
            }
            match attempt {
                Ok(0) if sent < bytes.len() => {
                    return Err(io::Error::from(io::ErrorKind::WriteZero).into());
                }
                Ok(n) => {
                    copy.sent(&bytes[sent..sent + n]);
                    sent += n;
                    written.add(n);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => {
                    // The server may have said why it stopped reading: prefer its words.
                    read_server(stream, endpoint, scratch)?;
                    return Err(Error::Io(e));
                }
            }
        }
        read_server(stream, endpoint, scratch)
    }
}

/// Reads what the server sent, without waiting, into the endpoint: its error (or the end of the
/// connection) ends the COPY, and is this receiver's fault.
fn read_server(stream: &Stream, endpoint: &mut Endpoint, scratch: &mut [u8]) -> Result<(), Error> {
    loop {
        match stream.try_read(scratch) {
            Ok(0) => {
                endpoint.handle_eof();
                break;
            }
            Ok(n) => {
                if endpoint.handle_input(&scratch[..n]).is_err() {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(_) => {
                endpoint.handle_eof();
                break;
            }
        }
    }
    Ok(endpoint.copy_in_status()?)
}

impl Drop for StatementReceiver<'_> {
    fn drop(&mut self) {
        // Only CopyDone commits a COPY: one dropped midway is failed or its connection closed.
        self.conn.abandon_copy_in(&self.copy);
    }
}

#[async_trait]
impl Receiver for StatementReceiver<'_> {
    fn protocol(&self) -> Protocol {
        Protocol::PQv3
    }

    fn format(&self) -> Option<DataFormat> {
        self.copy.format()
    }

    async fn start(&mut self) -> Result<(), BoxError> {
        let statement = self.copy.begin();
        let started = self
            .conn
            .start_copy(statement, Direction::FromStdin)
            .await?;
        self.copy.started(&started);
        Ok(())
    }

    async fn transmit(&mut self, data: &Data, written: &Written) -> Result<(), BoxError> {
        let bytes = CopyInStatement::take(data)?;
        Ok(self.write_data(bytes, written).await?)
    }

    async fn complete(&mut self) -> Result<Option<u64>, BoxError> {
        self.conn.endpoint.complete_copy().map_err(Error::Session)?;
        let commits = self.conn.endpoint.completion_commits();
        // No answer where the answer is the commit: in doubt (core's rule).
        let answer = self.conn.drive().await;
        let answer = answer.map_err(|e| {
            let db = e.db_error().cloned();
            copyman_core::fault::completion_error(commits, db.as_ref(), e.into())
        })?;
        Ok(completed(answer))
    }

    async fn fail(&mut self, reason: &str, completion: &Completion) -> Result<(), BoxError> {
        if self.conn.is_closed() {
            // Closed mid-COPY: the server aborted it, nothing committed.
            return Ok(());
        }
        let failing = self.conn.endpoint.fail_copy(reason, completion);
        failing.map_err(Error::Session)?;
        Ok(self.conn.drive().await.map(drop)?)
    }

    fn stalled(&mut self) {
        // Its backend may wait on a lock (a trigger's), holding its own, which the close alone
        // does not end.
        self.conn.cancel_detached();
        self.conn.close(copyman_core::endpoint::STALLED_COPY_IN);
    }
}

/// Sends COPY data into any [`Sink`] of byte buffers (a channel, a framed transport).
///
/// Each cycle's data is sent as one item: the cycle's COPY lines (whole rows when the producer is
/// a statement) joined into one buffer, then the sink is flushed. [`Receiver::complete`] closes
/// the sink. A sink cannot take back what it was given: when the copy fails the sink is only
/// dropped, not closed, and holds part of the data.
pub struct SinkReceiver<S> {
    sink: S,
}

impl<S> std::fmt::Debug for SinkReceiver<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkReceiver").finish_non_exhaustive()
    }
}

impl<S, E> SinkReceiver<S>
where
    S: Sink<Bytes, Error = E> + Send + Unpin,
    E: Into<BoxError>,
{
    /// A receiver sending into `sink`.
    pub fn new(sink: S) -> Self {
        Self { sink }
    }
}

#[async_trait]
impl<S, E> Receiver for SinkReceiver<S>
where
    S: Sink<Bytes, Error = E> + Send + Unpin,
    E: Into<BoxError>,
{
    fn protocol(&self) -> Protocol {
        Protocol::Chunks
    }

    async fn transmit(&mut self, data: &Data, written: &Written) -> Result<(), BoxError> {
        if let Some(buf) = joined(lines(data, "a sink receiver")?) {
            fed(&mut self.sink, buf, written)
                .await
                .map_err(Into::into)?;
        }
        Ok(())
    }

    async fn complete(&mut self) -> Result<Option<u64>, BoxError> {
        self.sink.close().await.map_err(Into::into)?;
        Ok(None)
    }

    async fn fail(&mut self, _reason: &str, _completion: &Completion) -> Result<(), BoxError> {
        Ok(())
    }
}

/// Sends `buf` into `sink`, counting it written once the sink took it (`start_send`), before its
/// flush: a flush the stall timeout cuts leaves it taken, and a reconcile goes on after it
/// (lib67 F16: the cut cycle was sent again, rows twice).
async fn fed<S, E>(sink: &mut S, buf: Bytes, written: &Written) -> Result<(), E>
where
    S: Sink<Bytes, Error = E> + Unpin,
{
    let len = buf.len();
    sink.feed(buf).await?;
    written.add(len);
    sink.flush().await
}

/// Writes COPY data into any [`AsyncWrite`] (a file, a pipe, a socket).
///
/// Each cycle's lines are written as one buffer; [`Receiver::complete`] flushes the writer (it
/// does not shut it down). A writer cannot take back what it was given: when the copy fails it
/// holds part of the data (write to a temporary file and rename it on success).
///
/// Under a stall timeout ([`Options::stall_timeout`](crate::Options::stall_timeout)), each
/// write that takes bytes counts as progress, so a slow writer whose bytes still move is not
/// stalled; its final flush is timed as a whole (what a buffering writer such as a
/// `BufWriter` does inside it cannot be seen): one that does not end within the timeout
/// stalls, and fails the copy before any server's COPY ends.
#[derive(Debug)]
pub struct WriterReceiver<W> {
    writer: W,
}

impl<W: AsyncWrite + Send + Unpin> WriterReceiver<W> {
    /// A receiver writing into `writer`.
    pub fn new(writer: W) -> Self {
        Self { writer }
    }
}

#[async_trait]
impl<W: AsyncWrite + Send + Unpin> Receiver for WriterReceiver<W> {
    fn protocol(&self) -> Protocol {
        Protocol::Chunks
    }

    async fn transmit(&mut self, data: &Data, written: &Written) -> Result<(), BoxError> {
        let Some(buf) = joined(lines(data, "a writer receiver")?) else {
            return Ok(());
        };
        // Write by write, each a sign of life for the stall rule: a slow writer whose bytes
        // still move (a pipe read a little at a time) is not stalled. The writer's own error
        // (a full disk: ENOSPC), not one "on the connection".
        let mut rest = &buf[..];
        while !rest.is_empty() {
            match self.writer.write(rest).await? {
                0 => return Err(io::Error::from(io::ErrorKind::WriteZero).into()),
                // Counted: a reconcile after a stall goes on after them (lib67 F16: the cut
                // cycle was written again from its start, rows twice in the output).
                n => {
                    written.add(n);
                    rest = &rest[n..];
                }
            }
        }
        Ok(())
    }

    async fn complete(&mut self) -> Result<Option<u64>, BoxError> {
        self.writer.flush().await?;
        Ok(None)
    }

    async fn fail(&mut self, _reason: &str, _completion: &Completion) -> Result<(), BoxError> {
        Ok(())
    }
}

#[async_trait]
impl<F: FnMut(&[Bytes]) -> Result<(), BoxError> + Send> Receiver for CallReceiver<F> {
    fn protocol(&self) -> Protocol {
        Protocol::Chunks
    }

    async fn transmit(&mut self, data: &Data, _written: &Written) -> Result<(), BoxError> {
        self.call(data)
    }

    async fn complete(&mut self) -> Result<Option<u64>, BoxError> {
        Ok(None)
    }

    async fn fail(&mut self, _reason: &str, _completion: &Completion) -> Result<(), BoxError> {
        Ok(())
    }
}

#[async_trait]
impl Receiver for NullReceiver {
    fn protocol(&self) -> Protocol {
        Protocol::Null
    }

    async fn transmit(&mut self, _data: &Data, _written: &Written) -> Result<(), BoxError> {
        Ok(())
    }

    async fn complete(&mut self) -> Result<Option<u64>, BoxError> {
        Ok(None)
    }

    async fn fail(&mut self, _reason: &str, _completion: &Completion) -> Result<(), BoxError> {
        Ok(())
    }
}

/// Receives into a `COPY … FROM STDIN` run through an existing `tokio-postgres` transaction
/// (`copy_in`): the convenient path for applications that hold pooled connections. Its COPY
/// commits with the transaction, which the caller commits once the copy succeeded (outside a
/// transaction block it is refused: see [`ClientReceiver::new`]).
///
/// Each cycle's lines go out as one CopyData message. Completing calls the sink's `finish`
/// (its `COPY n` is checked against the producer's); failing drops the sink unfinished, which
/// makes the client send CopyFail: nothing commits and the connection stays usable.
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
/// them as it pins a [`Connection`](crate::Connection)'s, so the text it reads follows them:
/// give the client the settings `copyman_core::session::PORTABILITY_SETTINGS` lists
/// (`extra_float_digits=3`, `array_nulls=on`, …), as its connection's options.
pub struct ClientReceiver<'c> {
    sink: Option<Pin<Box<tokio_postgres::CopyInSink<Bytes>>>>,
    /// What its statement says of its data (its client reads the server's answer).
    format: Option<DataFormat>,
    /// Ties the receiver to the client (or transaction) it copies into.
    _client: PhantomData<&'c ()>,
}

impl std::fmt::Debug for ClientReceiver<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientReceiver").finish_non_exhaustive()
    }
}

impl<'c> ClientReceiver<'c> {
    /// Starts `statement` on `client`, a `tokio_postgres::Transaction` (or a client inside a
    /// transaction block): its COPY commits when the caller commits the transaction, once the
    /// copy succeeded.
    ///
    /// The statement is checked first: one that is not `COPY … FROM STDIN` is refused before
    /// anything is sent (the client would run it, then fail). A client outside a transaction
    /// block is refused ([`NEEDS_A_TRANSACTION`](copyman_core::client::NEEDS_A_TRANSACTION)):
    /// `tokio-postgres` reports the COPY's `COPY n` before its commit, and a commit that fails
    /// (a deferred constraint) nowhere. Its COPY starts here, before the
    /// copy does, so the copy's stall timeout does not bound this start (a statement waiting for
    /// a lock another session holds waits as long as it does): bound it yourself, with
    /// `tokio::time::timeout` or the session's `lock_timeout`.
    ///
    /// # Errors
    /// A statement of the wrong kind ([`Error::Session`] with
    /// [`SessionError::Statement`](copyman_core::session::SessionError::Statement)); the
    /// client's, e.g. the server's error for a bad statement. After a server's error here the
    /// client may be out of step with its server (`tokio-postgres`'s `copy_in` leaves the answer's
    /// end unread: its next query fails with an unexpected message): drop it, or have a pool
    /// discard it, rather than use it again.
    pub async fn new<C: tokio_postgres::GenericClient>(
        client: &'c C,
        statement: &str,
    ) -> Result<Self, Error> {
        copyman_core::statement::check(statement, Direction::FromStdin)
            .map_err(|e| Error::Session(e.into()))?;
        let format = crate::producer::client_format(client, statement).await?;
        use copyman_core::client::{TRANSACTION_PROBE, TRANSACTION_PROBE_END};
        Error::in_a_transaction(client.batch_execute(TRANSACTION_PROBE).await)?;
        client.batch_execute(TRANSACTION_PROBE_END).await?;
        let sink = client.client().copy_in(statement).await?;
        Ok(Self {
            sink: Some(Box::pin(sink)),
            format: Some(format),
            _client: PhantomData,
        })
    }
}

#[async_trait]
impl Receiver for ClientReceiver<'_> {
    copyman_core::client_endpoint_items!();

    // Its completion is its client's `finish`: its server's COPY ends, and commits with the
    // caller's transaction.
    fn completes_a_server(&self) -> bool {
        true
    }

    async fn transmit(&mut self, data: &Data, written: &Written) -> Result<(), BoxError> {
        let sink = self.sink.as_mut().ok_or(Error::State("the COPY is over"))?;
        if let Some(buf) = joined(lines(data, "a client receiver")?) {
            fed(sink, buf, written).await.map_err(Error::from)?;
        }
        Ok(())
    }

    async fn complete(&mut self) -> Result<Option<u64>, BoxError> {
        let mut sink = self.sink.take().ok_or(Error::State("the COPY is over"))?;
        Ok(Some(sink.as_mut().finish().await.map_err(Error::from)?))
    }

    async fn fail(&mut self, _reason: &str, _completion: &Completion) -> Result<(), BoxError> {
        // Dropping an unfinished sink makes the client send CopyFail.
        self.sink = None;
        Ok(())
    }
}
