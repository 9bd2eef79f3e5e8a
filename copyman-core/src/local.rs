//! Endpoint pieces that do no IO, written once for both adapters.
//!
//! * Whole endpoints with no socket: [`IteratorProducer`], [`NullProducer`], [`CallReceiver`] and
//!   [`NullReceiver`] of py-postgresql's copyman. Each adapter re-exports them under these names
//!   and implements its own `Producer` / `Receiver` trait for them by forwarding to the plain
//!   methods here.
//! * The shape of a client-bound endpoint's chunks: [`ChunkBuilder`] gathers a client's rows into
//!   chunks of about the buffer size, [`joined`] makes one buffer of a chunk's lines, and
//!   [`lines`] / [`pqv3`] say which data an endpoint takes.
//! * The halves of the statement endpoints that are not IO: [`CopyOutStatement`] (a statement
//!   producer's statement, read buffer, source and format) and [`CopyInStatement`] (a statement
//!   receiver's statement, format and the CopyData stream it sent), with what each decides when
//!   its endpoint is dropped midway.

use std::task::Poll;

use bytes::{Bytes, BytesMut};
use copyman_wire::realign;
use copyman_wire::{Framer, HEADROOM};

use crate::endpoint::{Abandon, Endpoint, Outcome};
use crate::session::{Session, SessionError};
use crate::source::{Abort, CopyOutSource, SourceItem};
use crate::start::{DataFormat, Started};
use crate::{BoxError, Chunk, Data, Protocol};

/// An iterator of chunks, each a list of COPY lines: what an [`IteratorProducer`] takes. Every
/// `Iterator` whose items are lists of something [`Into<Bytes>`] is one.
pub trait LineChunks: Iterator {
    /// The next chunk as a [`Chunk`] of lines, or `None` at the end.
    fn next_lines(&mut self) -> Option<Chunk>;
}

impl<I, C, L> LineChunks for I
where
    I: Iterator<Item = C>,
    C: IntoIterator<Item = L>,
    L: Into<Bytes>,
{
    fn next_lines(&mut self) -> Option<Chunk> {
        let lines = self.next()?;
        Some(Chunk::lines(
            lines.into_iter().map(Into::into).collect::<Vec<Bytes>>(),
        ))
    }
}

/// Produces chunks of COPY lines from any iterator (`IteratorProducer` in py-postgresql's copyman).
///
/// Each item is one cycle's chunk: a list of lines, each a whole COPY row with its newline in text
/// and CSV formats (so progress counts rows). Receivers of PQv3 data get each chunk as one
/// CopyData message, so lines need not be whole rows for them; receivers of lines get the lines
/// as given. Nothing adds a newline: lines given without theirs are one row to a server
/// (`vec![vec!["1", "2"]]` stores `12`, and its count agrees, since it is counted from the
/// same bytes).
///
/// ```
/// use copyman_core::local::IteratorProducer;
///
/// let mut producer = IteratorProducer::new(vec![vec!["1\n", "2\n"], vec!["3\n"]]);
/// assert_eq!(producer.produce().map(|chunk| chunk.messages), Some(2));
/// ```
#[derive(Debug)]
pub struct IteratorProducer<I> {
    iter: I,
}

impl<I: LineChunks> IteratorProducer<I> {
    /// A producer of the chunks `iter` yields.
    pub fn new(iter: impl IntoIterator<IntoIter = I>) -> Self {
        Self {
            iter: iter.into_iter(),
        }
    }

    /// The next chunk, or `None` at the end (what the adapters' `Producer::next_chunk` gives).
    pub fn produce(&mut self) -> Option<Chunk> {
        self.iter.next_lines()
    }
}

/// Produces no data (`NullProducer` in py-postgresql's copyman).
#[derive(Debug, Default, Clone, Copy)]
pub struct NullProducer;

/// Calls a closure with the lines of each cycle (`CallReceiver` in py-postgresql's copyman).
///
/// ```
/// use copyman_core::local::CallReceiver;
///
/// let mut rows = 0;
/// let receiver = CallReceiver::new(|lines| {
///     rows += lines.len();
///     Ok(())
/// });
/// ```
pub struct CallReceiver<F> {
    call: F,
}

impl<F> std::fmt::Debug for CallReceiver<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallReceiver").finish_non_exhaustive()
    }
}

impl<F: FnMut(&[Bytes]) -> Result<(), BoxError>> CallReceiver<F> {
    /// A receiver calling `call` with each cycle's lines.
    pub fn new(call: F) -> Self {
        Self { call }
    }

    /// Calls the closure with the lines of `data` (what the adapters' `Receiver::transmit` does).
    ///
    /// # Errors
    /// The closure's error, or [`WrongData`] for data that is not lines.
    pub fn call(&mut self, data: &Data) -> Result<(), BoxError> {
        (self.call)(lines(data, "a call receiver")?)
    }
}

/// Takes data and does nothing with it (`NullReceiver` in py-postgresql's copyman).
#[derive(Debug, Default, Clone, Copy)]
pub struct NullReceiver;

/// A receiver was handed data of a protocol it does not take. The manager hands each receiver
/// data in its own protocol, so this is a misuse of the receiver outside a manager.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{receiver} takes {}, not {}", describe(*.takes), describe(*.got))]
pub struct WrongData {
    /// The receiver, e.g. `a call receiver`.
    pub receiver: &'static str,
    /// The protocol it takes.
    pub takes: Protocol,
    /// The protocol of the data it was handed.
    pub got: Protocol,
}

fn describe(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::PQv3 => "PQv3 data",
        Protocol::Chunks => "lines",
        Protocol::Null => "no data",
    }
}

/// The lines of `data`, for `receiver`, a receiver of lines.
///
/// # Errors
/// `data` is not lines.
pub fn lines<'d>(data: &'d Data, receiver: &'static str) -> Result<&'d [Bytes], WrongData> {
    match data {
        Data::Lines(lines) => Ok(lines),
        other => Err(WrongData {
            receiver,
            takes: Protocol::Chunks,
            got: other.protocol(),
        }),
    }
}

/// The PQv3 stream bytes of `data`, for `receiver`, a receiver of PQv3 data.
///
/// # Errors
/// `data` is not PQv3 data.
pub fn pqv3<'d>(data: &'d Data, receiver: &'static str) -> Result<&'d Bytes, WrongData> {
    match data {
        Data::PQv3(bytes) => Ok(bytes),
        other => Err(WrongData {
            receiver,
            takes: Protocol::PQv3,
            got: other.protocol(),
        }),
    }
}

/// One cycle's lines as one buffer: shared, not copied, when there is one line (`None` when
/// there is none, for receivers that send nothing then).
pub fn joined(lines: &[Bytes]) -> Option<Bytes> {
    match lines {
        [] => None,
        [one] => Some(one.clone()),
        lines => {
            let mut buf = BytesMut::with_capacity(lines.iter().map(Bytes::len).sum());
            for line in lines {
                buf.extend_from_slice(line);
            }
            Some(buf.freeze())
        }
    }
}

/// Gathers the rows a client hands over into one chunk of lines: rows are added while
/// [`wants_more`](Self::wants_more) (until they reach the buffer size; the row that reaches it is
/// the chunk's last), then [`finish`](Self::finish) makes the chunk.
///
/// Rows the client lends ([`copy_row`](Self::copy_row)) are copied into one buffer that is then
/// cut into per-row slices: one allocation a chunk. Rows it hands over owned
/// ([`push_row`](Self::push_row)) are kept as they are, not copied.
#[derive(Debug)]
pub struct ChunkBuilder {
    size: usize,
    /// Bytes gathered so far.
    len: usize,
    lines: Vec<Bytes>,
    /// Copied rows not cut into `lines` yet, ending at `ends`.
    buf: BytesMut,
    ends: Vec<usize>,
}

impl ChunkBuilder {
    /// A chunk of about `size` bytes (at least one row).
    pub fn new(size: usize) -> Self {
        Self {
            size: size.max(1),
            len: 0,
            lines: Vec::new(),
            buf: BytesMut::new(),
            ends: Vec::new(),
        }
    }

    /// Whether the chunk takes another row.
    pub fn wants_more(&self) -> bool {
        self.len < self.size
    }

    /// Adds a copy of a lent row.
    pub fn copy_row(&mut self, row: &[u8]) {
        self.buf.extend_from_slice(row);
        self.ends.push(self.buf.len());
        self.len += row.len();
    }

    /// Adds an owned row, without copying it.
    pub fn push_row(&mut self, row: Bytes) {
        self.cut();
        self.len += row.len();
        self.lines.push(row);
    }

    /// The chunk of the rows gathered, or `None` when there is none.
    pub fn finish(mut self) -> Option<Chunk> {
        self.cut();
        (!self.lines.is_empty()).then(|| Chunk::lines(self.lines))
    }

    /// Cuts the copied rows into lines, after the rows added before them.
    fn cut(&mut self) {
        let all = self.buf.split().freeze();
        let mut start = 0;
        for end in self.ends.drain(..) {
            self.lines.push(all.slice(start..end));
            start = end;
        }
    }
}

/// The `COPY n` of a COPY IN the endpoint completed ([`Outcome::Completed`]), if its server
/// said it.
pub fn completed(outcome: Outcome) -> Option<u64> {
    match outcome {
        Outcome::Completed(count) => count,
        _ => None,
    }
}

/// Expands, in an adapter's `producer` module, to its `StatementProducer`: the struct (the
/// adapter's `$connection` and a [`CopyOutStatement`], with the docs given before it), its
/// constructor and its `buffer_size` builder, reading `$default_size` bytes at a time by
/// default. The adapter adds its `Drop` and `Producer` impls, which hold its IO.
#[macro_export]
#[doc(hidden)]
macro_rules! statement_producer {
    ($(#[$docs:meta])* $connection:ty, $default_size:expr) => {
        $(#[$docs])*
        #[derive(Debug)]
        pub struct StatementProducer<'c> {
            conn: &'c mut $connection,
            /// Its statement, read buffer, source and format: copyman-core's half.
            out: $crate::local::CopyOutStatement,
        }

        impl<'c> StatementProducer<'c> {
            /// A producer running `statement` (a `COPY … TO STDOUT`) on `conn`.
            pub fn new(conn: &'c mut $connection, statement: impl Into<String>) -> Self {
                let out = $crate::local::CopyOutStatement::new(statement, $default_size);
                Self { conn, out }
            }

            /// Sets the read buffer size (at least 1 byte; the default is 64 KiB).
            pub fn buffer_size(mut self, size: usize) -> Self {
                self.out.set_buffer_size(size);
                self
            }
        }
    };
}

/// Expands, inside an adapter's `impl Producer for ClientProducer` or `impl Receiver for
/// ClientReceiver`, to what a client-bound endpoint says of its data: `format` (its statement's
/// and its client's, asked when it was made) and `protocol` (lines: its client crate's rows).
#[macro_export]
#[doc(hidden)]
macro_rules! client_endpoint_items {
    () => {
        fn format(&self) -> Option<$crate::start::DataFormat> {
            self.format.clone()
        }

        fn protocol(&self) -> $crate::Protocol {
            $crate::Protocol::Chunks
        }
    };
}

/// Expands, inside an adapter's `impl Producer for StatementProducer`, to the methods that do no
/// IO: `resumable` (false: its server ended the COPY with the error, nothing more can be read),
/// `protocol`, `format`, `count`, `set_buffer_size` (its [`CopyOutStatement`]'s) and `stalled`
/// (its backend cancelled and its connection closed: its query may still run, or wait on a lock,
/// which the close alone does not end).
#[macro_export]
#[doc(hidden)]
macro_rules! statement_producer_items {
    () => {
        fn resumable(&self) -> bool {
            false
        }

        fn protocol(&self) -> $crate::Protocol {
            $crate::Protocol::PQv3
        }

        fn format(&self) -> Option<$crate::start::DataFormat> {
            self.out.format()
        }

        fn count(&self) -> Option<u64> {
            self.out.count()
        }

        fn set_buffer_size(&mut self, size: usize) {
            self.out.set_buffer_size(size);
        }

        fn stalled(&mut self) {
            self.conn.cancel_detached();
            self.conn.close($crate::endpoint::STALLED_COPY_OUT);
        }
    };
}

/// Expands, inside an adapter's `Producer` trait, to the methods whose meaning and defaults are
/// the same in both adapters (neither waits on IO): `count`, `resumable`, `format`, `stalled`
/// and `set_buffer_size`.
#[macro_export]
#[doc(hidden)]
macro_rules! producer_items {
    () => {
        /// Rows it says it produced (its `COPY n`), once at its end, if it knows.
        fn count(&self) -> Option<u64> {
            None
        }

        /// Whether it can be read again after `next_chunk` failed: the copy's progress then goes
        /// on past its ProducerFault if the caller goes on, as py-postgresql's copyman lets it
        /// "if it's safe to continue". True by default (a producer of the caller's whose failure
        /// was transient); a producer whose server ended its COPY with the error says false, and
        /// the progress ends after its fault.
        fn resumable(&self) -> bool {
            true
        }

        /// What its data is, once its COPY started, if it has a server: the overall format
        /// (text or binary) the server announced and its statement's representation (FORMAT,
        /// DELIMITER, NULL, QUOTE, ESCAPE, ENCODING). The manager refuses, before any data
        /// moves, a copy whose producer and receivers differ in either.
        fn format(&self) -> Option<$crate::start::DataFormat> {
            None
        }

        /// Its server sent no byte for the copy's stall timeout, and the copy gives it up
        /// ([`Options::close_stalled`](crate::Options::close_stalled)): a producer on a
        /// connection closes it at once, without waiting for an answer
        /// ([`copyman_core::endpoint::STALLED_COPY_OUT`]). The default does nothing.
        fn stalled(&mut self) {}

        /// Sets the size of the producer's reads ([`Options::buffer_size`](crate::Options)), for
        /// producers that read in buffers; the others ignore it.
        fn set_buffer_size(&mut self, size: usize) {
            let _ = size;
        }
    };
}

/// Expands, inside an adapter's `Receiver` trait, to the methods whose meaning and defaults are
/// the same in both adapters (neither waits on IO): `format`, `stalled` and
/// `completes_a_server`.
#[macro_export]
#[doc(hidden)]
macro_rules! receiver_items {
    () => {
        /// What its data is, once its COPY started, if it has a server: the overall format
        /// (text or binary) the server announced and its statement's representation (FORMAT,
        /// DELIMITER, NULL, QUOTE, ESCAPE, ENCODING). The manager refuses, before any data
        /// moves, a copy whose producer and receivers differ in either.
        fn format(&self) -> Option<$crate::start::DataFormat> {
            None
        }

        /// Its server took no byte for the copy's stall timeout, and the copy gives it up
        /// ([`Options::close_stalled`](crate::Options::close_stalled)): a receiver on a
        /// connection closes it at once, without waiting for an answer
        /// ([`copyman_core::endpoint::STALLED_COPY_IN`]). The default does nothing.
        fn stalled(&mut self) {}

        /// Whether its `complete` commits a server's COPY: true for a receiver of PQv3 data,
        /// and for a client-bound one (`ClientReceiver`), which takes lines. Such a receiver
        /// completes only once the receivers without a server (a file, a writer, a callback)
        /// completed, so that one of those failing fails its COPY too (all or nothing). A
        /// receiver of yours that takes lines and commits somewhere says true.
        fn completes_a_server(&self) -> bool {
            self.protocol() == $crate::Protocol::PQv3
        }
    };
}

/// Expands, in an adapter, to `impl<T: Trait + ?Sized> Trait for Box<T>` forwarding each listed
/// method to the box's content, so that a boxed endpoint (a `Box<dyn Producer>` chosen at run
/// time) is one too. Methods are listed as in the trait, each ending in `;` (`fn` with `&self` or
/// `&mut self`, or `async fn` with `&mut self`); attributes before `impl` (`#[async_trait]`) go
/// on the impl. A method with a default that is not listed is not forwarded: list them all.
#[macro_export]
#[doc(hidden)]
macro_rules! forward_boxed {
    ($(#[$attr:meta])* impl $trait:ident { $($items:tt)* }) => {
        $crate::forward_boxed!(@ [$(#[$attr])*] $trait [] $($items)*);
    };
    (@ [$($attr:tt)*] $trait:ident [$($done:tt)*]) => {
        $($attr)*
        impl<T: $trait + ?Sized> $trait for Box<T> { $($done)* }
    };
    (@ $attr:tt $trait:ident [$($done:tt)*]
        fn $name:ident(&self $(, $arg:ident: $ty:ty)*) $(-> $ret:ty)?; $($rest:tt)*) => {
        $crate::forward_boxed!(@ $attr $trait [$($done)*
            fn $name(&self $(, $arg: $ty)*) $(-> $ret)? { (**self).$name($($arg),*) }
        ] $($rest)*);
    };
    (@ $attr:tt $trait:ident [$($done:tt)*]
        fn $name:ident(&mut self $(, $arg:ident: $ty:ty)*) $(-> $ret:ty)?; $($rest:tt)*) => {
        $crate::forward_boxed!(@ $attr $trait [$($done)*
            fn $name(&mut self $(, $arg: $ty)*) $(-> $ret)? { (**self).$name($($arg),*) }
        ] $($rest)*);
    };
    (@ $attr:tt $trait:ident [$($done:tt)*]
        async fn $name:ident(&mut self $(, $arg:ident: $ty:ty)*) -> $ret:ty; $($rest:tt)*) => {
        $crate::forward_boxed!(@ $attr $trait [$($done)*
            async fn $name(&mut self $(, $arg: $ty)*) -> $ret { (**self).$name($($arg),*).await }
        ] $($rest)*);
    };
}

/// The half of a statement producer (`COPY … TO STDOUT` on a raw connection) that is not IO: its
/// statement, the buffer its reads go into, the [`CopyOutSource`] that re-blocks what it read once
/// its COPY started, and the format its server announced.
///
/// The adapter's read loop: [`poll_chunk`](Self::poll_chunk) until it is pending, then a read
/// into [`read_buf`](Self::read_buf), [`filled`](Self::filled) with what came and
/// [`hand_over`](Self::hand_over) (or [`handle_eof`](Self::handle_eof) at the socket's end).
#[derive(Debug)]
pub struct CopyOutStatement {
    statement: String,
    buffer_size: usize,
    buf: BytesMut,
    /// Bytes read into `buf` (after its headroom) and not handed over yet.
    filled: usize,
    /// Its statement was sent: from then on its connection is in its COPY until Ready.
    started: bool,
    source: Option<CopyOutSource>,
    format: Option<DataFormat>,
}

impl CopyOutStatement {
    /// The half of a producer of `statement`, reading `buffer_size` bytes at most at a time.
    pub fn new(statement: impl Into<String>, buffer_size: usize) -> Self {
        Self {
            statement: statement.into(),
            buffer_size: crate::manager::Options::read_size(buffer_size),
            buf: BytesMut::new(),
            filled: 0,
            started: false,
            source: None,
            format: None,
        }
    }

    /// Sets the size of the reads ([`Options::read_size`](crate::manager::Options::read_size):
    /// at least 1 byte, at most 256 MiB).
    pub fn set_buffer_size(&mut self, size: usize) {
        self.buffer_size = crate::manager::Options::read_size(size);
    }

    /// The statement, which the adapter sends now: from then on the connection is in its COPY.
    pub fn begin(&mut self) -> &str {
        self.started = true;
        &self.statement
    }

    /// Its COPY started: re-blocking (`reblock`) or handing on the server's frames.
    ///
    /// # Errors
    /// As [`CopyOutSource::started`].
    pub fn started(
        &mut self,
        started: Started,
        reblock: bool,
        session: &mut Session,
    ) -> Result<(), SessionError> {
        self.format = DataFormat::of(&started);
        self.source = Some(CopyOutSource::started(reblock, started, session)?);
        Ok(())
    }

    /// The format its server announced and its statement's representation, once its COPY
    /// started.
    pub fn format(&self) -> Option<DataFormat> {
        self.format.clone()
    }

    /// Its server's `COPY n`, once the end was read.
    pub fn count(&self) -> Option<u64> {
        self.source.as_ref().and_then(CopyOutSource::count)
    }

    /// The next chunk or the end (`None`) from what was read; `Pending` when the socket must be
    /// read for more. After a failure or the end the socket is idle and must never be read again.
    ///
    /// # Errors
    /// The failure that ended the COPY (every later call repeats it), or a call before its COPY
    /// started ([`SessionError::Misuse`]).
    pub fn poll_chunk(&mut self, session: &Session) -> Result<Poll<Option<Chunk>>, SessionError> {
        let Some(source) = self.source.as_mut() else {
            return Err(SessionError::Misuse {
                operation: "next_chunk before the producer started",
                state: session.state(),
            });
        };
        match source.poll_item() {
            Some(SourceItem::Chunk(chunk)) => return Ok(Poll::Ready(Some(chunk))),
            Some(_) => return Ok(Poll::Ready(None)),
            None => {}
        }
        if let Some(e) = source.failure() {
            return Err(e.clone());
        }
        Ok(if source.is_ended() {
            Poll::Ready(None)
        } else {
            Poll::Pending
        })
    }

    /// Where the next read goes: the rest of the read buffer. A new buffer (of the size set
    /// last) is made when the last one was handed over; its memory is reused once the receivers
    /// are done with the chunk last handed over from it.
    pub fn read_buf(&mut self) -> &mut [u8] {
        if self.filled == 0 && self.buf.len() != HEADROOM + self.buffer_size {
            self.buf.clear();
            self.buf.resize(HEADROOM + self.buffer_size, 0);
        }
        &mut self.buf[HEADROOM + self.filled..]
    }

    /// `n` bytes were read into [`read_buf`](Self::read_buf); `true` when the buffer is full.
    pub fn filled(&mut self, n: usize) -> bool {
        self.filled += n;
        HEADROOM + self.filled >= self.buf.len()
    }

    /// Whether bytes were read that were not handed over yet.
    pub fn has_filled(&self) -> bool {
        self.filled > 0
    }

    /// Gives the source the bytes read and not handed over yet. It must see them before the
    /// session is used again, or the session would resume parsing in the middle of a message.
    ///
    /// # Errors
    /// As [`CopyOutSource::handle_read`].
    pub fn hand_over(&mut self, session: &mut Session) -> Result<(), SessionError> {
        let Some(source) = self.source.as_mut().filter(|_| self.filled > 0) else {
            return Ok(());
        };
        self.buf.truncate(HEADROOM + self.filled);
        self.filled = 0;
        source.handle_read(session, self.buf.split())
    }

    /// The socket ended with nothing read: the COPY's failure.
    pub fn handle_eof(&mut self, session: &mut Session) -> SessionError {
        match self.source.as_mut() {
            Some(source) => source.handle_eof(session),
            None => SessionError::Closed,
        }
    }

    /// Stops its COPY before the end: `true` when the adapter must drive the endpoint now (a
    /// cancel, when the server still streams, then reading the rest).
    ///
    /// # Errors
    /// As [`CopyOutSource::abort`].
    pub fn abort(&mut self, endpoint: &mut Endpoint) -> Result<bool, SessionError> {
        self.hand_over(endpoint.session_mut())?;
        let Some(source) = self.source.as_mut() else {
            return Ok(false);
        };
        match source.abort(endpoint.session_mut())? {
            Abort::Drain { cancel } => {
                // The server answers a cancel with 57014 query_canceled: expected, not reported.
                endpoint.drain_copy_out(cancel);
                Ok(true)
            }
            Abort::Done => Ok(false),
        }
    }

    /// What to do with the connection when the producer is dropped (see
    /// [`Endpoint::abandon_copy_out`]): nothing before its COPY started.
    pub fn abandon(&mut self, endpoint: &mut Endpoint) -> Abandon {
        if !self.started {
            return Abandon::Nothing;
        }
        match self.hand_over(endpoint.session_mut()) {
            Ok(()) => endpoint.abandon_copy_out(self.source.as_mut()),
            Err(_) => Abandon::Close,
        }
    }
}

/// The half of a statement receiver (`COPY … FROM STDIN` on a raw connection) that is not IO: its
/// statement, the format its server announced, and where the CopyData stream it sent stands (for
/// the realignment when it is dropped midway).
#[derive(Debug)]
pub struct CopyInStatement {
    statement: String,
    /// Its statement was sent: from then on its connection is in its COPY until Ready.
    started: bool,
    format: Option<DataFormat>,
    /// Follows the CopyData stream written to the server.
    framer: Framer,
}

impl CopyInStatement {
    /// The half of a receiver of `statement`.
    pub fn new(statement: impl Into<String>) -> Self {
        Self {
            statement: statement.into(),
            started: false,
            format: None,
            framer: Framer::new(),
        }
    }

    /// The statement, which the adapter sends now: from then on the connection is in its COPY.
    pub fn begin(&mut self) -> &str {
        self.started = true;
        &self.statement
    }

    /// Its COPY started.
    pub fn started(&mut self, started: &Started) {
        self.format = DataFormat::of(started);
    }

    /// The format its server announced and its statement's representation, once its COPY
    /// started.
    pub fn format(&self) -> Option<DataFormat> {
        self.format.clone()
    }

    /// The PQv3 bytes of `data`, to be sent.
    ///
    /// # Errors
    /// `data` is not PQv3 data.
    pub fn take(data: &Data) -> Result<&Bytes, WrongData> {
        pqv3(data, "a statement receiver")
    }

    /// `bytes` of the data [`take`](Self::take) gave went out.
    pub fn sent(&mut self, bytes: &[u8]) {
        // The manager checked the data: it is whole CopyData frames, which the framer follows.
        let _ = self.framer.advance(bytes);
    }

    /// What to do with the connection when the receiver is dropped (see
    /// [`Endpoint::abandon_copy_in`]; `flushed`: no message is half written to the socket):
    /// nothing before its COPY started.
    pub fn abandon(&self, endpoint: &mut Endpoint, flushed: bool) -> Abandon {
        if !self.started {
            return Abandon::Nothing;
        }
        endpoint.abandon_copy_in(&realign::completion(self.framer.position()), flushed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(chunk: &Chunk) -> Vec<&[u8]> {
        match &chunk.data {
            Data::Lines(lines) => lines.iter().map(|l| &l[..]).collect(),
            other => panic!("not lines: {other:?}"),
        }
    }

    /// A read size past what a server reads as one message is taken as the largest there is
    /// (lib65 F13: `usize::MAX` overflowed the headroom, a panic).
    #[test]
    fn a_huge_read_size_is_capped() {
        let mut out = CopyOutStatement::new("COPY t TO STDOUT", usize::MAX);
        assert_eq!(
            out.read_buf().len(),
            crate::manager::Options::MAX_BUFFER_SIZE
        );
        out.set_buffer_size(0);
        out.buf.clear();
        assert_eq!(out.read_buf().len(), 1);
    }

    #[test]
    fn iterator_producer_gives_one_chunk_per_item_then_the_end() {
        let mut producer = IteratorProducer::new(vec![vec!["1\n", "2\n"], vec!["3\n"]]);
        let first = producer.produce().unwrap();
        assert_eq!(lines_of(&first), [&b"1\n"[..], b"2\n"]);
        assert_eq!((first.messages, first.bytes), (2, 4));
        assert_eq!(lines_of(&producer.produce().unwrap()), [&b"3\n"[..]]);
        assert!(producer.produce().is_none());
    }

    #[test]
    fn call_receiver_calls_with_lines() {
        let mut seen = Vec::new();
        let mut receiver = CallReceiver::new(|lines: &[Bytes]| {
            seen.extend(lines.iter().cloned());
            Ok(())
        });
        let data = Data::Lines(vec![Bytes::from_static(b"1\n")].into());
        receiver.call(&data).unwrap();
        assert_eq!(seen, [Bytes::from_static(b"1\n")]);
    }

    #[test]
    fn call_receiver_refuses_pqv3_data() {
        let mut called = false;
        let mut receiver = CallReceiver::new(|_: &[Bytes]| {
            called = true;
            Ok(())
        });
        let error = receiver
            .call(&Data::PQv3(Bytes::from_static(b"d\0\0\0\x051")))
            .unwrap_err();
        assert!(!called);
        assert_eq!(
            error.to_string(),
            "a call receiver takes lines, not PQv3 data"
        );
        assert_eq!(
            error.downcast_ref::<WrongData>(),
            Some(&WrongData {
                receiver: "a call receiver",
                takes: Protocol::Chunks,
                got: Protocol::PQv3,
            })
        );
    }

    #[test]
    fn statement_receiver_takes_only_pqv3_data() {
        let bytes = Bytes::from_static(b"d\0\0\0\x051");
        assert_eq!(
            CopyInStatement::take(&Data::PQv3(bytes.clone())),
            Ok(&bytes)
        );
        let error = CopyInStatement::take(&Data::Null).unwrap_err();
        assert_eq!(
            error.to_string(),
            "a statement receiver takes PQv3 data, not no data"
        );
    }

    #[test]
    fn chunk_builder_cuts_at_the_buffer_size() {
        // Rows of 3 bytes into chunks of 7: the row that reaches 7 (the third, at 9) is the last.
        let rows = [b"1a\n", b"2b\n", b"3c\n", b"4d\n", b"5e\n"];
        let mut rows = rows.iter();
        let mut chunks = Vec::new();
        loop {
            let mut builder = ChunkBuilder::new(7);
            while builder.wants_more() {
                let Some(row) = rows.next() else { break };
                builder.copy_row(*row);
            }
            match builder.finish() {
                Some(chunk) => chunks.push(lines_of(&chunk).concat()),
                None => break,
            }
        }
        assert_eq!(chunks, [b"1a\n2b\n3c\n".to_vec(), b"4d\n5e\n".to_vec()]);
    }

    #[test]
    fn chunk_builder_keeps_owned_rows_and_the_order_of_mixed_rows() {
        let mut builder = ChunkBuilder::new(100);
        let owned = Bytes::from_static(b"2\n");
        builder.copy_row(b"1\n");
        builder.push_row(owned.clone());
        builder.copy_row(b"3\n");
        let chunk = builder.finish().unwrap();
        assert_eq!(lines_of(&chunk), [&b"1\n"[..], b"2\n", b"3\n"]);
        assert_eq!(chunk.messages, 3);
        let Data::Lines(lines) = &chunk.data else {
            unreachable!()
        };
        // Not copied: the same memory.
        assert_eq!(lines[1].as_ptr(), owned.as_ptr());
    }

    #[test]
    fn chunk_builder_of_no_rows_is_no_chunk() {
        assert!(ChunkBuilder::new(10).finish().is_none());
        assert!(ChunkBuilder::new(0).wants_more());
    }

    #[test]
    fn joined_lines_are_one_buffer() {
        assert_eq!(joined(&[]), None);
        let one = Bytes::from_static(b"1\n");
        let shared = joined(std::slice::from_ref(&one)).unwrap();
        assert_eq!(shared.as_ptr(), one.as_ptr());
        let two = [one, Bytes::from_static(b"2\n")];
        assert_eq!(joined(&two), Some(Bytes::from_static(b"1\n2\n")));
    }

    #[test]
    fn copy_out_statement_reads_fill_the_buffer_until_full() {
        let mut out = CopyOutStatement::new("COPY t TO STDOUT", 4);
        assert_eq!(out.read_buf().len(), 4);
        assert!(!out.filled(3));
        assert!(out.has_filled());
        assert_eq!(out.read_buf().len(), 1);
        assert!(out.filled(1));
        out.set_buffer_size(0);
        assert_eq!(out.begin(), "COPY t TO STDOUT");
    }

    #[test]
    fn statement_endpoints_abandon_nothing_before_their_copy_started() {
        use crate::session::StartupConfig;
        let mut endpoint = Endpoint::new(Session::new(StartupConfig::new("u")));
        let mut out = CopyOutStatement::new("COPY t TO STDOUT", 16);
        assert_eq!(out.abandon(&mut endpoint), Abandon::Nothing);
        let copy = CopyInStatement::new("COPY t FROM STDIN");
        assert_eq!(copy.abandon(&mut endpoint, true), Abandon::Nothing);
        // Nor is there anything to read before its COPY started.
        assert!(matches!(
            out.poll_chunk(endpoint.session()),
            Err(SessionError::Misuse { .. })
        ));
        assert_eq!(out.abort(&mut endpoint), Ok(false));
    }
}
