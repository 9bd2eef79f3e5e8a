//! The COPY manager: one producer, many receivers, the whole fault model of py-postgresql's
//! copyman, no IO.

mod options;
mod transform;

use std::collections::VecDeque;
use std::sync::Arc;

use copyman_wire::eod::{Encoding, EndOfDataScanner, Mode};
use copyman_wire::realign::{Completion, completion};
use copyman_wire::{Framer, Position, WireError};

pub use options::Options;
use transform::Transformer;
pub use transform::{Chunk, Data, Protocol};

use crate::fault::{
    BoxError, CopyFail, CountMismatch, CountsDisagree, Diagnose, Diagnosis, EndOfDataMarker,
    EndpointError, Fault, ProducerFault, ReceiverFault,
};
// Defined with the faults that name it (so `fault` does not import the manager back); the
// manager hands it out.
pub use crate::fault::{ReceiverId, ReceiverOutcome};

/// How a [`Manager`] buffers, and its policies for a copy run to its end.
///
/// ```
/// use copyman_core::Config;
///
/// // Let the survivors complete when a receiver faults; receivers whose triggers route rows
/// // elsewhere may store another number of rows than the producer sent.
/// let config = Config::with_window(4).with_keep_going(true).with_check_counts(false);
/// assert!(config.keep_going && !config.check_counts);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Chunks a live receiver may have pending before the producer is no longer read: memory is
    /// bounded by `window` × the producer's chunk size, whatever the data size. A blocking
    /// adapter, which services one cycle at a time, uses 1 (as py-postgresql's copyman does).
    pub window: usize,
    /// What a receiver fault does to a copy run to its end ([`Manager::ends_copy`], which the
    /// adapters' `run` follows): `false` (the default) fails the whole copy; `true` fails only
    /// that receiver's COPY and lets the others go on and complete ("keep going"), each
    /// receiver's outcome in the [`Summary`]. A producer fault always fails a copy run to its
    /// end (an iterating caller may go on past one whose producer can be read again).
    pub keep_going: bool,
    /// Whether a completed receiver's `COPY n` must equal the producer's (the default): a
    /// receiver that stored another number of rows fails the copy with [`CountMismatch`], or,
    /// under [`keep_going`](Self::keep_going), only itself
    /// ([`ReceiverOutcome::Miscounted`]). When the producer gives no count (a file), the
    /// receivers' counts must agree with each other: if they do not, nothing says which is
    /// right, and the copy fails with [`CountsDisagree`] whatever the policy. `false` leaves the
    /// comparison to the caller (the counts are in the [`Summary`]). A receiver's count is what
    /// its server's `COPY n` says: a view's counts every row handed to it, whatever its
    /// `INSTEAD OF` trigger kept (the `copyman` command refuses such a view; a library caller
    /// copying into one compares the rows it holds itself).
    pub check_counts: bool,
    /// Whether a chunk producer's data is followed for a line that is exactly `\.` with data
    /// after it (the default): every receiver's server would stop there and drop the rows after
    /// it, so the copy fails with [`EndOfDataMarker`] instead. Off for a caller that scans the
    /// data itself with its format's rules (in CSV a `\.` line inside a quoted value is data).
    pub scan_end_marker: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self::with_window(4)
    }
}

impl Config {
    /// A configuration with the given window (at least 1), failing on any receiver fault and
    /// checking row counts.
    pub fn with_window(window: usize) -> Self {
        Self {
            window: window.max(1),
            keep_going: false,
            check_counts: true,
            scan_end_marker: true,
        }
    }

    /// This configuration with the keep-going policy on or off ([`Config::keep_going`]).
    pub fn with_keep_going(mut self, keep_going: bool) -> Self {
        self.keep_going = keep_going;
        self
    }

    /// This configuration with the row-count check on or off ([`Config::check_counts`]).
    pub fn with_check_counts(mut self, check_counts: bool) -> Self {
        self.check_counts = check_counts;
        self
    }

    /// This configuration with the end-of-data marker scan on or off
    /// ([`Config::scan_end_marker`]).
    pub fn with_end_marker_scan(mut self, scan: bool) -> Self {
        self.scan_end_marker = scan;
        self
    }
}

/// Something that happened to the copy, for the caller.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// A cycle completed: every receiver still in the copy transmitted a chunk. Counts are of the
    /// producer's messages (rows) and payload bytes, including any cycle whose report was
    /// displaced by a fault.
    Progress {
        /// Messages moved.
        messages: u64,
        /// Payload bytes moved.
        bytes: u64,
    },
    /// Receivers failed and left the copy.
    ReceiverFault(ReceiverFault),
    /// The producer failed; nothing changed.
    ProducerFault(ProducerFault),
    /// A reconciled receiver transmitted what it owed and is back in the copy.
    Reconciled(ReceiverId),
    /// The copy is over.
    Finished(Result<Summary, CopyFail>),
}

/// What the IO layer must do next; see [`Manager::poll_output`].
#[derive(Debug, Clone)]
#[must_use]
#[non_exhaustive]
pub enum Output {
    /// Read the next chunk from the producer, then give [`Input::ProducerData`],
    /// [`Input::ProducerEnd`] or [`Input::ProducerError`].
    ReadProducer,
    /// Send `data` to `receiver`, then give [`Input::Transmitted`] or [`Input::ReceiverError`].
    Transmit {
        /// The receiver.
        receiver: ReceiverId,
        /// The data, in the receiver's protocol.
        data: Data,
    },
    /// Complete `receiver`'s COPY (CopyDone), then give [`Input::ReceiverDone`] with its count.
    /// Receivers without a server are completed first and the servers' only once those
    /// succeeded: one failing there fails the others (all or nothing, unless keep-going).
    Complete {
        /// The receiver.
        receiver: ReceiverId,
    },
    /// Fail `receiver`'s COPY: send `completion` (realignment: the bytes that finish its partial
    /// frame), then CopyFail with `reason`, wait for the server to be ready again, and give
    /// [`Input::ReceiverDone`].
    Fail {
        /// The receiver.
        receiver: ReceiverId,
        /// Why the copy failed.
        reason: Arc<str>,
        /// Realignment owed before the CopyFail (PQv3 receivers only).
        completion: Completion,
    },
    /// Cancel the producer and make its connection usable again (cancel request, drain), then
    /// give [`Input::ProducerDone`].
    CancelProducer,
    /// Tell the caller.
    Event(Event),
    /// Nothing to do until the IO layer reports the results of what it was asked.
    Wait,
    /// Nothing more to stream (the producer ended, or no receiver is left): give
    /// [`Input::Finish`], [`Input::Abort`] or [`Input::Reconcile`].
    EndOfCopy,
    /// The copy is over and [`Event::Finished`] was given.
    Done,
}

/// What the IO layer reports to the manager.
#[derive(Debug)]
#[non_exhaustive]
pub enum Input {
    /// The producer delivered a chunk.
    ProducerData(Chunk),
    /// The producer reached its end; `count` is its `COPY n` if it knows one.
    ProducerEnd {
        /// Rows the producer says it sent.
        count: Option<u64>,
    },
    /// Reading the producer failed.
    ProducerError(BoxError),
    /// The IO layer left the producer read that was out, as [`Manager::abandons_read`] lets it
    /// (a read it can leave without losing anything the producer needs: one made without
    /// blocking, by a producer that holds nothing of it): the producer is idle again, without a
    /// fault.
    ReadAbandoned,
    /// The receiver transmitted all the data of its last [`Output::Transmit`].
    Transmitted {
        /// The receiver.
        receiver: ReceiverId,
    },
    /// The receiver failed: its transmit failed after `written` bytes of the data went out, or
    /// its server reported an error (then `written` is 0).
    ReceiverError {
        /// The receiver.
        receiver: ReceiverId,
        /// What went wrong.
        error: BoxError,
        /// Bytes of the pending data that did go out before the failure.
        written: usize,
    },
    /// The outcome of an [`Output::Complete`] (`Ok(count)`) or [`Output::Fail`].
    ReceiverDone {
        /// The receiver.
        receiver: ReceiverId,
        /// Its `COPY n` when it completed and knows one, or the error that ended it.
        result: Result<Option<u64>, BoxError>,
    },
    /// The outcome of an [`Output::CancelProducer`].
    ProducerDone {
        /// The error, if making the producer's connection usable failed.
        result: Result<(), BoxError>,
    },
    /// The caller is done: complete the copy if it can be, fail it otherwise.
    Finish,
    /// Fail the copy with this reason.
    Abort {
        /// Why.
        reason: String,
    },
    /// Some endpoints could not start (`__enter__` in py-postgresql's copyman failing): fail the
    /// copy — every endpoint that did start is failed or cancelled — with these errors in the
    /// [`CopyFail`].
    StartFailed {
        /// Receivers that could not start, with their errors.
        receivers: Vec<(ReceiverId, BoxError)>,
        /// The producer's error, if it could not start.
        producer: Option<BoxError>,
    },
    /// A faulted receiver is ready again: transmit what it owes, then let it rejoin.
    ///
    /// A faulted receiver keeps the chunks it had pending and takes new ones up to
    /// [`Config::window`]: it can rejoin as long as no more than that went by since its fault
    /// ([`ManagerError::MissedData`] otherwise). With a window of 1, reconcile right after the
    /// fault, as py-postgresql's copyman does.
    Reconcile(ReceiverId),
}

impl Input {
    /// A producer read's result as the manager takes it: a chunk, the end (with the row count
    /// `count` gives, asked only then), or the error.
    pub fn read(
        result: Result<Option<Chunk>, BoxError>,
        count: impl FnOnce() -> Option<u64>,
    ) -> Self {
        match result {
            Ok(Some(chunk)) => Self::ProducerData(chunk),
            Ok(None) => Self::ProducerEnd { count: count() },
            Err(error) => Self::ProducerError(error),
        }
    }

    /// A transmit's result as the manager takes it: all written, or failed after `written`
    /// bytes of its data went out.
    pub fn transmitted(receiver: ReceiverId, result: Result<(), BoxError>, written: usize) -> Self {
        match result {
            Ok(()) => Self::Transmitted { receiver },
            Err(error) => Self::ReceiverError {
                receiver,
                error,
                written,
            },
        }
    }
}

/// The result of a successful copy.
#[derive(Debug, Clone)]
pub struct Summary {
    /// CopyData messages (or lines) the producer delivered: one per row in text and CSV from a
    /// server, plus a CSV header line and binary data's header-and-trailer message; a chunk
    /// producer's items as it gave them. The rows are [`Summary::producer_count`] and each
    /// receiver's `COPY n`.
    pub messages: u64,
    /// Payload bytes the producer delivered.
    pub bytes: u64,
    /// The producer's `COPY n`, if it reported one.
    pub producer_count: Option<u64>,
    /// Every receiver, in order of [`ReceiverId`].
    pub receivers: Vec<(ReceiverId, ReceiverOutcome)>,
}

impl Summary {
    /// Whether every receiver's COPY completed (with the producer's row count, when it gave
    /// one): the copy reached every receiver. A successful copy may have left out receivers that
    /// faulted during it and were not reconciled ([`ReceiverOutcome::Faulted`]: they hold
    /// nothing of it), under keep-going also [`ReceiverOutcome::Miscounted`] ones.
    pub fn all_completed(&self) -> bool {
        self.receivers.iter().all(|(_, o)| o.is_success())
    }
}

/// Caller misuse of a [`Manager`]: the input made no sense in the manager's state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManagerError {
    /// No receiver has this id.
    #[error("unknown receiver {0}")]
    UnknownReceiver(ReceiverId),
    /// Reconcile asked for a receiver that has not faulted.
    #[error("receiver {0} has not faulted: nothing to reconcile")]
    NotFaulted(ReceiverId),
    /// Reconcile asked for a receiver that missed data while it was out of the copy.
    #[error("receiver {receiver} cannot rejoin: {missed} chunks went by while it was out")]
    MissedData {
        /// The receiver.
        receiver: ReceiverId,
        /// Chunks it missed.
        missed: u64,
    },
    /// Reconcile asked for a receiver whose COPY its server ended (it said an error, or its
    /// connection is gone): no data sent again can bring it back.
    #[error("receiver {receiver} cannot rejoin: its server ended its COPY ({error})")]
    CopyEnded {
        /// The receiver.
        receiver: ReceiverId,
        /// The fault that ended it, as said.
        error: String,
    },
    /// Receivers can only be added before the copy starts.
    #[error("cannot add a receiver to a copy that has started")]
    Started,
    /// The input does not fit what the manager asked for.
    #[error("unexpected input {input} while {state}")]
    Unexpected {
        /// The input's kind.
        input: &'static str,
        /// What the manager was doing.
        state: &'static str,
    },
}

/// Why a reconcile did not bring a receiver back (both adapters' `CopyManager::reconcile`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReconcileError {
    /// The manager refused: see the reason.
    #[error(transparent)]
    Refused(#[from] ManagerError),
    /// The receiver failed again while transmitting what it owed; it stays out of the copy.
    #[error(transparent)]
    Fault(Fault),
}

impl ReconcileError {
    /// The receiver fault, when the receiver failed again.
    pub fn receiver_fault(&self) -> Option<&ReceiverFault> {
        match self {
            Self::Fault(Fault::Receiver(fault)) => Some(fault),
            _ => None,
        }
    }
}

/// A producer chunk the manager could not use: the producer's fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// The PQv3 data is not a well-formed CopyData stream.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// The PQv3 data holds a message that is not CopyData: the producer must stop before it.
    #[error(
        "producer data holds a message of type {tag:?}, not CopyData, at byte {offset} of the chunk"
    )]
    NotCopyData {
        /// The message's type byte.
        tag: char,
        /// Where it starts in the chunk.
        offset: usize,
    },
}

/// The type byte of the message that stopped a framer: a stopped framer reports a stop at
/// offset 0 of every later chunk, even an empty one, so it is taken from the framer.
fn stopped_tag(position: Position, chunk: &[u8], offset: usize) -> char {
    match position {
        Position::Stopped { tag } => char::from(tag),
        _ => chunk.get(offset).map_or('?', |&tag| char::from(tag)),
    }
}

/// One cycle's data as queued for a receiver.
#[derive(Debug, Clone)]
struct Unit {
    data: Data,
    /// The position of the PQv3 stream sent to receivers, before and after this unit.
    start: Position,
    end: Position,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReceiverState {
    Live,
    Faulted,
    Reconciling,
    Ending,
    Ended,
}

impl ReceiverState {
    /// Whether chunks are queued for it: live, or reconciled and catching up.
    fn takes_data(self) -> bool {
        matches!(self, Self::Live | Self::Reconciling)
    }
}

#[derive(Debug)]
struct ReceiverSlot {
    protocol: Protocol,
    /// Its completion commits a server's COPY (a PQv3 receiver's, or a client-bound one's:
    /// [`Manager::completes_a_server`]): it completes only once those without a server did.
    server: bool,
    state: ReceiverState,
    /// Units given to it and not yet fully transmitted; the head may be partly written.
    queue: VecDeque<Unit>,
    /// Bytes of the head unit already written.
    written: usize,
    /// A Transmit, Complete or Fail is out and its result not yet reported.
    busy: bool,
    /// Where its PQv3 stream stands after everything it was sent.
    position: Position,
    /// Chunks distributed while it was faulted.
    missed: u64,
    /// Its fault, while faulted or after.
    fault: Option<EndpointError>,
    /// How it ended.
    outcome: Option<Result<Option<u64>, EndpointError>>,
    /// Whether it was live when the copy began to end (its exit errors fail the copy).
    live_at_end: bool,
    /// Its COPY was failed at the end, not completed, because another receiver's completion
    /// failed first (all or nothing): it holds nothing, having done nothing wrong.
    failed_at_end: bool,
}

impl ReceiverSlot {
    /// Whether a faulted receiver can still take a chunk and later rejoin without a gap.
    fn can_catch_up(&self, window: usize) -> bool {
        self.state == ReceiverState::Faulted && self.missed == 0 && self.queue.len() < window
    }
}

/// One producer chunk on its way to every receiver.
#[derive(Debug)]
struct Cycle {
    messages: u64,
    bytes: u64,
    /// Live receivers that have not transmitted it yet.
    outstanding: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProducerState {
    /// Not asked for anything.
    Idle,
    /// A read is out.
    Reading,
    /// It reached its end.
    Ended,
    /// A cancel is out.
    Cancelling,
    /// It was cancelled (or needed no cancel).
    Closed,
}

#[derive(Debug)]
enum Phase {
    Copying,
    /// Finish or abort asked for; waiting for outstanding IO before deciding.
    Deciding(Option<String>),
    /// Completing every live receiver.
    Completing,
    /// Failing the copy with this reason.
    Aborting(Arc<str>),
    Finished,
}

/// `CopyManager` in py-postgresql's copyman, as a state machine without IO.
///
/// A producer and receivers, each with its [`Protocol`], are connected through chunks: the
/// producer's chunk is transformed once per receiver protocol and the result shared by every
/// receiver of that protocol. The caller (an adapter) owns the endpoints and their IO; it feeds
/// what happened in with [`Manager::handle_input`] and asks what to do next with
/// [`Manager::poll_output`].
///
/// # The drive loop
///
/// **Invariant: after any input, call `poll_output` until it returns [`Output::Wait`],
/// [`Output::EndOfCopy`] or [`Output::Done`]; each other output is an order to carry out (or an
/// event to hand to the user), and each order's result must be reported before the manager can
/// decide anything that depends on it.** The manager never asks for more than one producer read
/// or more than one transmit per receiver at a time, and never queues more than
/// [`Config::window`] chunks for a live receiver, so memory stays bounded whatever the data size.
///
/// ```
/// use bytes::Bytes;
/// use copyman_core::manager::{Chunk, Config, Data, Event, Input, Manager, Output, Protocol};
///
/// let mut manager = Manager::new(Protocol::Chunks, Config::with_window(1));
/// let receiver = manager.add_receiver(Protocol::Chunks).unwrap();
/// let mut source = vec![vec![Bytes::from_static(b"1\n"), Bytes::from_static(b"2\n")]].into_iter();
/// let mut received = Vec::new();
/// loop {
///     match manager.poll_output() {
///         Output::ReadProducer => match source.next() {
///             Some(lines) => manager.handle_input(Input::ProducerData(Chunk::lines(lines))),
///             None => manager.handle_input(Input::ProducerEnd { count: Some(2) }),
///         }
///         .unwrap(),
///         Output::Transmit { receiver, data: Data::Lines(lines) } => {
///             received.extend(lines.iter().cloned());
///             manager.handle_input(Input::Transmitted { receiver }).unwrap();
///         }
///         Output::Complete { receiver } => manager
///             .handle_input(Input::ReceiverDone { receiver, result: Ok(Some(2)) })
///             .unwrap(),
///         Output::Event(Event::Progress { messages, .. }) => assert_eq!(messages, 2),
///         Output::Event(Event::Finished(result)) => {
///             assert_eq!(result.unwrap().messages, 2);
///         }
///         Output::EndOfCopy => manager.handle_input(Input::Finish).unwrap(),
///         Output::Done => break,
///         other => unreachable!("{other:?}"),
///     }
/// }
/// assert_eq!(received.len(), 2);
/// # let _ = receiver;
/// ```
#[derive(Debug)]
pub struct Manager {
    config: Config,
    producer_protocol: Protocol,
    producer: ProducerState,
    producer_count: Option<u64>,
    /// The producer's last error, reported in a CopyFail if the copy then fails.
    producer_error: Option<EndpointError>,
    /// The producer's error on exit (cancel), if any.
    producer_exit_error: Option<EndpointError>,
    /// Endpoints that could not start, reported in the CopyFail.
    start_faults: Vec<(ReceiverId, EndpointError)>,
    /// A producer chunk could not be used and went nowhere: the copy cannot complete.
    data_lost: bool,
    receivers: Vec<ReceiverSlot>,
    /// Receiver protocols present when the copy began: only these may rejoin.
    started: bool,
    transformer: Transformer,
    /// Follows the PQv3 stream sent to receivers, for realignment.
    out_framer: Framer,
    cycles: VecDeque<Cycle>,
    /// Faults of the cycle in progress, reported when it completes.
    faults: Vec<(ReceiverId, EndpointError)>,
    /// Progress not yet reported.
    stats: (u64, u64),
    totals: (u64, u64),
    events: VecDeque<Event>,
    phase: Phase,
    /// [`Output::EndOfCopy`] was given: the caller saw the copy reach its end.
    end_reported: bool,
    /// How the adapter reads its endpoints' errors.
    diagnose: Diagnose,
    /// The producer reached its end (it stays true once its state moves on to closed).
    producer_ended: bool,
    /// A chunk producer's data, followed for a line that is exactly `\.` with data after it
    /// (binary data, known by its signature, is not scanned).
    end_marker: Option<EndOfDataScanner>,
}

impl Manager {
    /// A manager for a producer speaking `producer`.
    pub fn new(producer: Protocol, config: Config) -> Self {
        Self {
            config: Config {
                window: config.window.max(1),
                ..config
            },
            producer_protocol: producer,
            // A server's COPY TO never sends the marker as data; lines from elsewhere may.
            end_marker: (producer == Protocol::Chunks && config.scan_end_marker)
                .then(|| EndOfDataScanner::new(Mode::Lines)),
            producer: ProducerState::Idle,
            producer_count: None,
            producer_error: None,
            producer_exit_error: None,
            start_faults: Vec::new(),
            data_lost: false,
            receivers: Vec::new(),
            started: false,
            transformer: Transformer::new(),
            out_framer: Framer::new(),
            cycles: VecDeque::new(),
            faults: Vec::new(),
            stats: (0, 0),
            totals: (0, 0),
            events: VecDeque::new(),
            phase: Phase::Copying,
            end_reported: false,
            diagnose: |_| Diagnosis::default(),
            producer_ended: false,
        }
    }

    /// Sets how endpoints' errors of the adapter's own types are read for the server's error
    /// and the connection's state (see [`EndpointError::diagnosed`]); without it, only
    /// copyman-core's types in an error's `source()` chain are found.
    pub fn set_diagnose(&mut self, diagnose: Diagnose) {
        self.diagnose = diagnose;
    }

    /// Whether a copy run to its end stops for `fault` (the adapters' `run` aborts then): a
    /// producer fault always; a receiver fault unless [`Config::keep_going`], under which the
    /// faulted receivers' COPYs are failed at the end and the others complete. (An iterating
    /// caller may go on past a producer fault whose producer can be read again:
    /// [`CopyRun::with_resumable_producer`](crate::run::CopyRun::with_resumable_producer).)
    pub fn ends_copy(&self, fault: &Fault) -> bool {
        match fault {
            Fault::Receiver(_) => !self.config.keep_going,
            _ => true,
        }
    }

    /// An endpoint's error as faults carry it.
    fn endpoint_error(&self, error: BoxError) -> EndpointError {
        EndpointError::diagnosed(error, self.diagnose)
    }

    /// Adds a receiver speaking `protocol`, before the copy starts.
    ///
    /// # Errors
    /// [`ManagerError::Started`] once the manager has given its first output.
    pub fn add_receiver(&mut self, protocol: Protocol) -> Result<ReceiverId, ManagerError> {
        if self.started {
            return Err(ManagerError::Started);
        }
        self.receivers.push(ReceiverSlot {
            protocol,
            server: protocol == Protocol::PQv3,
            state: ReceiverState::Live,
            queue: VecDeque::new(),
            written: 0,
            busy: false,
            position: Position::Boundary,
            missed: 0,
            fault: None,
            outcome: None,
            live_at_end: false,
            failed_at_end: false,
        });
        Ok(ReceiverId(self.receivers.len() - 1))
    }

    /// Tells the manager that `receiver`, whatever data it takes, commits a server's COPY when it
    /// completes (a client-bound receiver of lines: a `tokio-postgres` or `postgres` client's
    /// `copy_in`): it completes with the PQv3 receivers, once the receivers without a server (a
    /// file, a writer, a callback) completed, so that one of those failing fails its COPY too.
    /// A receiver taking PQv3 data is taken for one already.
    pub fn completes_a_server(&mut self, receiver: ReceiverId) {
        if let Some(slot) = self.receivers.get_mut(receiver.0) {
            slot.server = true;
        }
    }

    /// The producer's protocol.
    pub fn producer_protocol(&self) -> Protocol {
        self.producer_protocol
    }

    /// Tells a manager of a chunk producer how its receivers' servers read the data, once every
    /// COPY started and before any data came (`formats`: each receiver's, `None` for one without
    /// a server): its rows are then counted as those servers will count them (text and CSV
    /// lines, quotes followed, a header left out; binary data's tuples), and every receiver's
    /// `COPY n` is checked against that count as against a server producer's (a receiver whose
    /// trigger dropped rows, which matched nothing to compare with, fails the copy). Receivers
    /// that read the data otherwise among themselves (a header here and not there), or an
    /// option the count cannot follow (a multi-byte QUOTE), leave the data uncounted.
    pub fn receivers_read(&mut self, formats: &[Option<crate::start::DataFormat>]) {
        let Some(scanner) = self.end_marker.as_mut() else {
            return;
        };
        let read: Vec<(Mode, bool, Encoding)> = formats
            .iter()
            .flatten()
            .map(|format| match (&format.format, &format.representation) {
                (crate::session::CopyFormat::Binary, _) => {
                    Some((Mode::Lines, false, Encoding::AsciiSafe))
                }
                (_, Some(rep)) => {
                    let single = |s: &str| <[u8; 1]>::try_from(s.as_bytes()).ok().map(|[b]| b);
                    let mode = match rep.format.as_str() {
                        "text" => Mode::Text,
                        "csv" => Mode::Csv {
                            quote: single(&rep.quote)?,
                            escape: single(&rep.escape)?,
                        },
                        _ => return None,
                    };
                    let encoding = rep
                        .encoding
                        .as_deref()
                        .map_or(Encoding::AsciiSafe, Encoding::from_name);
                    Some((mode, rep.header, encoding))
                }
                (_, None) => None,
            })
            .collect::<Option<Vec<_>>>()
            .unwrap_or_default();
        if let Some(&(mode, header, encoding)) = read.first()
            && read.iter().all(|r| *r == (mode, header, encoding))
        {
            *scanner = EndOfDataScanner::new(mode)
                .with_header(header)
                .with_encoding(encoding);
        }
    }

    /// A receiver's protocol.
    pub fn receiver_protocol(&self, receiver: ReceiverId) -> Option<Protocol> {
        self.receivers.get(receiver.0).map(|r| r.protocol)
    }

    /// Whether `receiver`'s completion is under the stall rule
    /// ([`Options::stall_timeout`](crate::manager::Options::stall_timeout)): that of a receiver
    /// without a server (a writer's flush, a sink's close) is — a flush that moves nothing for
    /// the timeout stalls, and fails the copy before any server's COPY ends; that of one that
    /// commits a server's COPY ([`completes_a_server`](Self::completes_a_server)) is not: once
    /// its CopyDone went out, its answer is the only way to know whether it committed.
    pub fn completion_stalls(&self, receiver: ReceiverId) -> bool {
        self.receivers.get(receiver.0).is_some_and(|r| !r.server)
    }

    /// Whether a PQv3 producer must hand in its frames as the server sent them (one per row),
    /// because a Chunks receiver needs lines; otherwise it may re-block them.
    pub fn needs_source_frames(&self) -> bool {
        self.producer_protocol == Protocol::PQv3
            && self
                .receivers
                .iter()
                .any(|r| r.protocol == Protocol::Chunks)
    }

    /// The receivers still in the copy (`receivers` in py-postgresql's copyman set).
    pub fn live_receivers(&self) -> impl Iterator<Item = ReceiverId> + '_ {
        self.receivers
            .iter()
            .enumerate()
            .filter(|(_, r)| r.state == ReceiverState::Live)
            .map(|(i, _)| ReceiverId(i))
    }

    /// Whether `receiver` is in the copy.
    pub fn is_live(&self, receiver: ReceiverId) -> bool {
        self.receivers
            .get(receiver.0)
            .is_some_and(|r| r.state == ReceiverState::Live)
    }

    /// Messages and payload bytes delivered by the producer so far.
    pub fn totals(&self) -> (u64, u64) {
        self.totals
    }

    /// Chunks queued for `receiver` and not yet transmitted.
    pub fn pending(&self, receiver: ReceiverId) -> usize {
        self.receivers.get(receiver.0).map_or(0, |r| r.queue.len())
    }

    /// Whether the copy is over.
    pub fn is_finished(&self) -> bool {
        matches!(self.phase, Phase::Finished)
    }

    /// Whether the producer read that is out may be left ([`Input::ReadAbandoned`]): the copy
    /// is ending (finished or aborted), or no receiver is left to take its data (every one
    /// faulted, none reconciling), so an IO layer that can leave it need not wait for a source
    /// that may give nothing for ever (a pipe whose writer is idle) before the copy ends.
    pub fn abandons_read(&self) -> bool {
        let receiving = self
            .receivers
            .iter()
            .any(|r| matches!(r.state, ReceiverState::Live | ReceiverState::Reconciling));
        self.producer == ProducerState::Reading
            && (!matches!(self.phase, Phase::Copying) || !receiving)
    }

    /// Reports what happened.
    ///
    /// # Errors
    /// [`ManagerError`] when the input does not fit what was asked; the manager is unchanged.
    pub fn handle_input(&mut self, input: Input) -> Result<(), ManagerError> {
        self.started = true;
        match input {
            Input::ProducerData(chunk) => self.on_producer_data(chunk),
            Input::ProducerEnd { count } => {
                self.expect_reading("producer end")?;
                self.producer = ProducerState::Ended;
                self.producer_recovered();
                self.producer_ended = true;
                // A chunk producer gives no `COPY n`: its rows as its receivers read them.
                self.producer_count =
                    count.or_else(|| self.end_marker.as_ref().and_then(EndOfDataScanner::rows));
                Ok(())
            }
            Input::ProducerError(error) => {
                self.expect_reading("producer error")?;
                self.producer = ProducerState::Idle;
                let error = self.endpoint_error(error);
                self.producer_error = Some(error.clone());
                if matches!(self.phase, Phase::Copying) {
                    self.events
                        .push_back(Event::ProducerFault(ProducerFault { error }));
                }
                Ok(())
            }
            Input::ReadAbandoned => {
                if !self.abandons_read() {
                    return Err(self.unexpected("read abandoned"));
                }
                self.producer = ProducerState::Idle;
                Ok(())
            }
            Input::Transmitted { receiver } => self.on_transmitted(receiver),
            Input::ReceiverError {
                receiver,
                error,
                written,
            } => self.on_receiver_error(receiver, self.endpoint_error(error), written),
            Input::ReceiverDone { receiver, result } => self.on_receiver_done(receiver, result),
            Input::ProducerDone { result } => {
                if self.producer != ProducerState::Cancelling {
                    return Err(self.unexpected("producer done"));
                }
                self.producer = ProducerState::Closed;
                if let Err(error) = result {
                    self.producer_exit_error = Some(self.endpoint_error(error));
                }
                Ok(())
            }
            Input::Finish => self.decide(None),
            Input::Abort { reason } => self.decide(Some(reason)),
            Input::StartFailed {
                receivers,
                producer,
            } => {
                for (receiver, _) in &receivers {
                    self.slot(*receiver)?;
                }
                self.start_faults.extend(
                    receivers
                        .into_iter()
                        .map(|(id, e)| (id, EndpointError::diagnosed(e, self.diagnose))),
                );
                if let Some(error) = producer {
                    self.producer_exit_error = Some(self.endpoint_error(error));
                }
                self.decide(Some("could not start the COPY operation".to_owned()))
            }
            Input::Reconcile(receiver) => self.reconcile(receiver),
        }
    }

    fn decide(&mut self, reason: Option<String>) -> Result<(), ManagerError> {
        match self.phase {
            Phase::Copying => {
                self.phase = Phase::Deciding(reason);
                Ok(())
            }
            // Finishing twice is harmless; the first decision stands.
            _ => Ok(()),
        }
    }

    fn expect_reading(&self, input: &'static str) -> Result<(), ManagerError> {
        if self.producer == ProducerState::Reading {
            Ok(())
        } else {
            Err(self.unexpected(input))
        }
    }

    fn unexpected(&self, input: &'static str) -> ManagerError {
        let state = match self.phase {
            Phase::Copying => "copying",
            Phase::Deciding(_) => "finishing",
            Phase::Completing => "completing",
            Phase::Aborting(_) => "aborting",
            Phase::Finished => "finished",
        };
        ManagerError::Unexpected { input, state }
    }

    /// The producer was read again after a read failed (the caller went on past its fault): that
    /// error is no longer the copy's. (Data it handed in that could not be copied stays lost.)
    fn producer_recovered(&mut self) {
        if !self.data_lost {
            self.producer_error = None;
        }
    }

    fn slot(&mut self, receiver: ReceiverId) -> Result<&mut ReceiverSlot, ManagerError> {
        self.receivers
            .get_mut(receiver.0)
            .ok_or(ManagerError::UnknownReceiver(receiver))
    }

    fn on_producer_data(&mut self, chunk: Chunk) -> Result<(), ManagerError> {
        self.expect_reading("producer data")?;
        self.producer = ProducerState::Idle;
        self.producer_recovered();
        if !matches!(self.phase, Phase::Copying) {
            // Read before the caller decided to stop: it goes nowhere, and the copy fails
            // because the producer did not reach its end.
            return Ok(());
        }
        let marker = match (&mut self.end_marker, &chunk.data) {
            (Some(scanner), Data::Lines(lines)) => lines.iter().find_map(|l| scanner.feed(l)),
            _ => None,
        };
        let distributed = match marker {
            // The receivers' servers would stop at the marker and drop every row after it, and
            // report success: the copy fails instead, this chunk going nowhere.
            Some(marker) => Err(EndpointError::new(EndOfDataMarker { line: marker.line })),
            None => self.distribute(&chunk).map_err(EndpointError::new),
        };
        match distributed {
            Ok(()) => Ok(()),
            Err(error) => {
                // The producer handed in a malformed stream: its fault, nothing distributed.
                self.producer_error = Some(error.clone());
                self.data_lost = true;
                self.events
                    .push_back(Event::ProducerFault(ProducerFault { error }));
                Ok(())
            }
        }
    }

    /// Transforms a chunk for each protocol among the live receivers and queues it for each.
    fn distribute(&mut self, chunk: &Chunk) -> Result<(), DataError> {
        let mut pqv3: Option<Data> = None;
        let mut lines: Option<Data> = None;
        let mut null: Option<Data> = None;
        let window = self.config.window;
        for protocol in [Protocol::PQv3, Protocol::Chunks, Protocol::Null] {
            let wanted = self.receivers.iter().any(|r| {
                r.protocol == protocol && (r.state.takes_data() || r.can_catch_up(window))
            });
            // A PQv3 producer's stream must be decoded in order even when no Chunks receiver is
            // live right now, so that a reconciled one would resume on a line boundary.
            let keep_decoding = protocol == Protocol::Chunks
                && self.producer_protocol == Protocol::PQv3
                && self
                    .receivers
                    .iter()
                    .any(|r| r.protocol == Protocol::Chunks);
            if !wanted && !keep_decoding {
                continue;
            }
            let data = self.transformer.transform(&chunk.data, protocol)?;
            match protocol {
                Protocol::PQv3 => pqv3 = Some(data),
                Protocol::Chunks => lines = Some(data),
                Protocol::Null => null = Some(data),
            }
        }
        let (start, end) = match &pqv3 {
            Some(Data::PQv3(bytes)) => {
                let start = self.out_framer.position();
                let walk = self.out_framer.advance(bytes)?;
                if let Some(offset) = walk.stop {
                    // A producer must cut its stream before anything that is not CopyData.
                    let tag = stopped_tag(self.out_framer.position(), bytes, offset);
                    return Err(DataError::NotCopyData { tag, offset });
                }
                (start, self.out_framer.position())
            }
            _ => (Position::Boundary, Position::Boundary),
        };
        let mut outstanding = 0;
        for slot in &mut self.receivers {
            match slot.state {
                ReceiverState::Live | ReceiverState::Reconciling => {
                    let data = match slot.protocol {
                        Protocol::PQv3 => pqv3.clone(),
                        Protocol::Chunks => lines.clone(),
                        Protocol::Null => null.clone(),
                    };
                    let data = data.expect("data is made for every live receiver's protocol");
                    slot.queue.push_back(Unit { data, start, end });
                    // A reconciling receiver (reconciled while this read was out) takes the chunk
                    // after what it owes, but does not hold up the cycle.
                    if slot.state == ReceiverState::Live {
                        outstanding += 1;
                    }
                }
                // A faulted receiver keeps up to a window of chunks, so that a reconcile that
                // comes while the others went on (a concurrent adapter reports faults late)
                // loses nothing; past that, it has missed data and can no longer rejoin.
                ReceiverState::Faulted if slot.can_catch_up(window) => {
                    let data = match slot.protocol {
                        Protocol::PQv3 => pqv3.clone(),
                        Protocol::Chunks => lines.clone(),
                        Protocol::Null => null.clone(),
                    };
                    let data =
                        data.expect("data is made for every catching-up receiver's protocol");
                    slot.queue.push_back(Unit { data, start, end });
                }
                ReceiverState::Faulted => slot.missed += 1,
                ReceiverState::Ending | ReceiverState::Ended => {}
            }
        }
        self.cycles.push_back(Cycle {
            messages: chunk.messages,
            bytes: chunk.bytes,
            outstanding,
        });
        self.totals.0 += chunk.messages;
        self.totals.1 += chunk.bytes;
        Ok(())
    }

    fn on_transmitted(&mut self, receiver: ReceiverId) -> Result<(), ManagerError> {
        let slot = self.slot(receiver)?;
        let reconciling = slot.state == ReceiverState::Reconciling;
        if !slot.busy || !(slot.state == ReceiverState::Live || reconciling) {
            return Err(self.unexpected("transmitted"));
        }
        slot.busy = false;
        let unit = slot
            .queue
            .pop_front()
            .expect("a busy receiver has its unit queued");
        slot.written = 0;
        slot.position = unit.end;
        if reconciling {
            if slot.queue.is_empty() {
                slot.state = ReceiverState::Live;
                slot.fault = None;
                self.events.push_back(Event::Reconciled(receiver));
            }
            return Ok(());
        }
        // Live receivers transmit their units in cycle order: this completes the oldest cycle
        // they have not yet transmitted, found from how many units they still hold.
        let index = self.cycles.len() - 1 - self.receivers[receiver.0].queue.len();
        self.cycles[index].outstanding -= 1;
        Ok(())
    }

    fn on_receiver_error(
        &mut self,
        receiver: ReceiverId,
        error: EndpointError,
        written: usize,
    ) -> Result<(), ManagerError> {
        let cycles = self.cycles.len();
        let slot = self.slot(receiver)?;
        let was_live = slot.state == ReceiverState::Live;
        if !(was_live || slot.state == ReceiverState::Reconciling) {
            // An error from a receiver already out of the copy (say its server's ErrorResponse
            // read after it faulted) changes nothing: its first fault stands.
            return if slot.state == ReceiverState::Faulted {
                Ok(())
            } else {
                Err(self.unexpected("receiver error"))
            };
        }
        if slot.busy {
            slot.busy = false;
            match slot.queue.front().map(|unit| (unit, &unit.data)) {
                Some((unit, Data::PQv3(bytes))) => {
                    let already = slot.written;
                    let upto = already.saturating_add(written).min(bytes.len());
                    let mut framer = Framer::at(unit.start);
                    // Bytes that went out were whole-frame data the manager already walked.
                    let _ = framer.advance(&bytes[..upto]);
                    slot.position = framer.position();
                    slot.written = upto;
                }
                // Lines a writer or a sink took: a reconcile goes on after them (lib67 F16:
                // they were sent again, rows twice in the output, the copy said complete).
                Some((_, data @ Data::Lines(_))) => {
                    slot.written = slot.written.saturating_add(written).min(data.len());
                }
                _ => {}
            }
        }
        slot.state = ReceiverState::Faulted;
        slot.fault = Some(error.clone());
        if was_live {
            // It no longer holds up the cycles it had pending.
            let pending = slot.queue.len();
            for cycle in self.cycles.iter_mut().skip(cycles - pending) {
                cycle.outstanding -= 1;
            }
        }
        self.faults.push((receiver, error));
        if self.cycles.is_empty() {
            // No cycle in flight to attach the fault to: report it now.
            self.flush_faults();
        }
        Ok(())
    }

    fn reconcile(&mut self, receiver: ReceiverId) -> Result<(), ManagerError> {
        if !matches!(self.phase, Phase::Copying) {
            return Err(self.unexpected("reconcile"));
        }
        let slot = self.slot(receiver)?;
        if slot.state != ReceiverState::Faulted {
            return Err(ManagerError::NotFaulted(receiver));
        }
        // A server's error during COPY IN ends the COPY there (it discards what follows until
        // the CopyDone or CopyFail), as a lost connection does: only a fault of the way there
        // (a timeout, a write the socket refused) leaves a COPY that more data can go on.
        if let Some(fault) = slot
            .fault
            .as_ref()
            .filter(|f| f.db_error().is_some() || f.is_closed())
        {
            return Err(ManagerError::CopyEnded {
                receiver,
                error: fault.to_string(),
            });
        }
        if slot.missed > 0 {
            return Err(ManagerError::MissedData {
                receiver,
                missed: slot.missed,
            });
        }
        if slot.queue.is_empty() {
            slot.state = ReceiverState::Live;
            slot.fault = None;
            self.events.push_back(Event::Reconciled(receiver));
        } else {
            slot.state = ReceiverState::Reconciling;
        }
        Ok(())
    }

    fn on_receiver_done(
        &mut self,
        receiver: ReceiverId,
        result: Result<Option<u64>, BoxError>,
    ) -> Result<(), ManagerError> {
        let slot = self.slot(receiver)?;
        if !(slot.busy && slot.state == ReceiverState::Ending) {
            return Err(self.unexpected("receiver done"));
        }
        slot.busy = false;
        slot.state = ReceiverState::Ended;
        let result = result.map_err(|e| EndpointError::diagnosed(e, self.diagnose));
        let slot = self.slot(receiver)?;
        slot.outcome = Some(result);
        Ok(())
    }

    fn flush_faults(&mut self) {
        if !self.faults.is_empty() {
            let faults = std::mem::take(&mut self.faults);
            self.events
                .push_back(Event::ReceiverFault(ReceiverFault { faults }));
        }
    }

    /// Pops completed cycles into events, in order.
    fn complete_cycles(&mut self) {
        while self.cycles.front().is_some_and(|c| c.outstanding == 0) {
            let cycle = self.cycles.pop_front().expect("checked non-empty");
            self.stats.0 += cycle.messages;
            self.stats.1 += cycle.bytes;
            if self.faults.is_empty() {
                let (messages, bytes) = std::mem::take(&mut self.stats);
                self.events.push_back(Event::Progress { messages, bytes });
            } else {
                // As in the seed, the cycle's progress is carried into the next report.
                self.flush_faults();
            }
        }
    }

    fn io_outstanding(&self) -> bool {
        self.producer == ProducerState::Reading
            || self.producer == ProducerState::Cancelling
            || self.receivers.iter().any(|r| r.busy)
    }

    /// What to do next; see the drive loop in the [`Manager`] docs.
    pub fn poll_output(&mut self) -> Output {
        self.started = true;
        self.complete_cycles();
        if let Some(event) = self.events.pop_front() {
            return Output::Event(event);
        }
        match self.phase {
            Phase::Copying => self.poll_copying(),
            Phase::Deciding(_) => {
                if self.io_outstanding() {
                    return Output::Wait;
                }
                let Phase::Deciding(reason) = std::mem::replace(&mut self.phase, Phase::Copying)
                else {
                    unreachable!("matched above")
                };
                self.begin_ending(reason);
                self.poll_output()
            }
            Phase::Completing | Phase::Aborting(_) => self.poll_ending(),
            Phase::Finished => Output::Done,
        }
    }

    fn poll_copying(&mut self) -> Output {
        // Transmits first: receivers drain before the producer is read again.
        for (i, slot) in self.receivers.iter_mut().enumerate() {
            let sending = matches!(slot.state, ReceiverState::Live | ReceiverState::Reconciling);
            if sending
                && !slot.busy
                && let Some(unit) = slot.queue.front()
            {
                slot.busy = true;
                let data = match &unit.data {
                    data if slot.written > 0 => data.after(slot.written),
                    data => data.clone(),
                };
                return Output::Transmit {
                    receiver: ReceiverId(i),
                    data,
                };
            }
        }
        let live = self
            .receivers
            .iter()
            .filter(|r| r.state == ReceiverState::Live);
        let mut any_live = false;
        let mut room = true;
        for slot in live {
            any_live = true;
            room &= slot.queue.len() < self.config.window;
        }
        let reconciling = self
            .receivers
            .iter()
            .any(|r| r.state == ReceiverState::Reconciling);
        if self.producer == ProducerState::Idle && any_live && room && !reconciling {
            self.producer = ProducerState::Reading;
            return Output::ReadProducer;
        }
        if self.io_outstanding() || reconciling || !self.cycles.is_empty() {
            return Output::Wait;
        }
        if self.producer == ProducerState::Ended || !any_live {
            self.end_reported = true;
            return Output::EndOfCopy;
        }
        Output::Wait
    }

    /// Decides how the copy ends, once no IO is outstanding.
    fn begin_ending(&mut self, reason: Option<String>) {
        let live = self
            .receivers
            .iter()
            .filter(|r| r.state == ReceiverState::Live)
            .count();
        let drained = self
            .receivers
            .iter()
            .all(|r| r.state != ReceiverState::Live || r.queue.is_empty());
        for slot in &mut self.receivers {
            slot.live_at_end = slot.state == ReceiverState::Live;
        }
        let reason = match reason {
            Some(reason) => Some(reason),
            None if live == 0 => Some("no receivers".to_owned()),
            None if self.data_lost => Some("the producer's data could not be copied".to_owned()),
            // The caller must have been told the copy reached its end (the seed's "iterator run
            // to exhaustion"): with a window above 1 the manager may have read the producer's
            // end ahead of a caller who stopped early, and that is still an early stop.
            None if self.producer != ProducerState::Ended || !drained || !self.end_reported => {
                Some("copy stopped before the producer's end".to_owned())
            }
            None => None,
        };
        self.phase = match reason {
            None => Phase::Completing,
            Some(reason) => Phase::Aborting(Arc::from(reason)),
        };
        if matches!(self.producer, ProducerState::Ended) {
            self.producer = ProducerState::Closed;
        }
    }

    fn poll_ending(&mut self) -> Output {
        let (completing, reason): (bool, Arc<str>) = match &self.phase {
            Phase::Completing => (true, Arc::from("receiver faulted during the copy")),
            Phase::Aborting(reason) => (false, reason.clone()),
            _ => unreachable!("poll_ending runs while ending"),
        };
        // Completing, the receivers without a server complete first (a file's flush, a
        // caller's own receiver), and the servers' COPYs only once those succeeded: a failure
        // there, known before any server's CopyDone went out, fails the rest, which then commit
        // nothing (all or nothing). Past that point only a server that refuses its CopyDone
        // after others accepted theirs can split the copy.
        let ended_in_error = |s: &ReceiverSlot| {
            s.live_at_end && s.state == ReceiverState::Ended && matches!(s.outcome, Some(Err(_)))
        };
        let failed_at_end = (!self.config.keep_going)
            .then(|| self.receivers.iter().position(ended_in_error))
            .flatten();
        let local_ending = self
            .receivers
            .iter()
            .any(|s| s.live_at_end && !s.server && s.state != ReceiverState::Ended);
        // Receivers first: failing their COPY is what keeps a partial copy from committing.
        for (i, slot) in self.receivers.iter_mut().enumerate() {
            if slot.busy || matches!(slot.state, ReceiverState::Ending | ReceiverState::Ended) {
                continue;
            }
            let live = slot.state == ReceiverState::Live;
            if completing && live && failed_at_end.is_none() {
                if slot.server && local_ending {
                    continue;
                }
                slot.busy = true;
                slot.state = ReceiverState::Ending;
                slot.queue.clear();
                return Output::Complete {
                    receiver: ReceiverId(i),
                };
            }
            slot.busy = true;
            slot.state = ReceiverState::Ending;
            slot.queue.clear();
            let receiver = ReceiverId(i);
            let reason = match failed_at_end.filter(|_| completing && live) {
                Some(failed) => {
                    slot.failed_at_end = true;
                    Arc::from(format!(
                        "copyman: receiver {failed} could not complete its COPY: the copy fails \
                         everywhere"
                    ))
                }
                None => reason.clone(),
            };
            let completion = match slot.protocol {
                Protocol::PQv3 => completion(slot.position),
                _ => Completion::default(),
            };
            return Output::Fail {
                receiver,
                reason,
                completion,
            };
        }
        if matches!(self.producer, ProducerState::Idle) {
            self.producer = ProducerState::Cancelling;
            return Output::CancelProducer;
        }
        if self.io_outstanding() {
            return Output::Wait;
        }
        let result = self.result(completing, reason);
        self.phase = Phase::Finished;
        Output::Event(Event::Finished(result))
    }

    fn result(&mut self, completing: bool, reason: Arc<str>) -> Result<Summary, CopyFail> {
        let mut exit_faults = Vec::new();
        // Receivers whose COPY failed at its end under keep-going: in the summary's outcomes,
        // unless nothing completed (then the copy failed and they are its faults).
        let mut casualties = Vec::new();
        let mut receivers = Vec::new();
        for (i, slot) in self.receivers.iter().enumerate() {
            let id = ReceiverId(i);
            let outcome = slot.outcome.clone().unwrap_or(Ok(None));
            if let Some((_, error)) = self.start_faults.iter().find(|(sid, _)| *sid == id) {
                receivers.push((id, ReceiverOutcome::Failed(error.clone())));
                continue;
            }
            match (slot.live_at_end, outcome) {
                (true, Ok(count)) if !completing || slot.failed_at_end => {
                    let _ = count;
                    receivers.push((id, ReceiverOutcome::Dropped));
                }
                (true, Ok(count)) => {
                    let mismatch = match (self.config.check_counts, self.producer_count, count) {
                        (true, Some(producer), Some(receiver)) if producer != receiver => {
                            Some(EndpointError::new(CountMismatch { producer, receiver }))
                        }
                        _ => None,
                    };
                    match mismatch {
                        // Keep-going: its rows are in but wrong; the others' stand.
                        Some(error) if self.config.keep_going => {
                            receivers.push((id, ReceiverOutcome::Miscounted(count, error.clone())));
                            casualties.push((id, error));
                        }
                        // The copy fails; its outcome says what it is under either policy.
                        Some(error) => {
                            exit_faults.push((id, error.clone()));
                            receivers.push((id, ReceiverOutcome::Miscounted(count, error)));
                        }
                        None => receivers.push((id, ReceiverOutcome::Completed(count))),
                    }
                }
                (true, Err(error)) => {
                    // Its answer was to be its commit and never came: in doubt, not "holds
                    // nothing" (a synchronous standby's wait cut short had committed locally).
                    let in_doubt = error.get_ref().is::<crate::fault::CompletionInDoubt>();
                    receivers.push((
                        id,
                        match in_doubt {
                            true => ReceiverOutcome::InDoubt(error.clone()),
                            false => ReceiverOutcome::Failed(error.clone()),
                        },
                    ));
                    // Keep-going: a receiver whose COPY fails at its end is one more casualty,
                    // not the copy's failure (the others' COPYs completed all the same).
                    if completing && self.config.keep_going {
                        casualties.push((id, error));
                    } else {
                        exit_faults.push((id, error));
                    }
                }
                (false, _) => {
                    let fault = slot
                        .fault
                        .clone()
                        .expect("a receiver out of the copy at its end has faulted");
                    receivers.push((id, ReceiverOutcome::Faulted(fault)));
                }
            }
        }
        if completing && self.config.check_counts && self.producer_count.is_none() {
            // No producer count: the receivers' must agree, or none can be trusted.
            let counts: Vec<(ReceiverId, u64)> = receivers
                .iter()
                .filter_map(|(id, o)| match o {
                    ReceiverOutcome::Completed(Some(n)) => Some((*id, *n)),
                    _ => None,
                })
                .collect();
            if counts.iter().any(|(_, n)| *n != counts[0].1) {
                let error = EndpointError::new(CountsDisagree {
                    counts: counts.clone(),
                });
                exit_faults.extend(counts.iter().map(|(id, _)| (*id, error.clone())));
            }
        }
        let any_success = receivers.iter().any(|(_, o)| o.is_success());
        if completing && any_success && exit_faults.is_empty() && self.producer_exit_error.is_none()
        {
            return Ok(Summary {
                messages: self.totals.0,
                bytes: self.totals.1,
                producer_count: self.producer_count,
                receivers,
            });
        }
        let reason = if completing {
            "could not complete the COPY operation".to_owned()
        } else {
            reason.to_string()
        };
        exit_faults.extend(casualties);
        exit_faults.extend(self.start_faults.iter().cloned());
        exit_faults.sort_by_key(|(id, _)| *id);
        Err(CopyFail {
            reason,
            receivers,
            receiver_faults: exit_faults,
            producer_fault: self
                .producer_exit_error
                .clone()
                .or_else(|| self.producer_error.clone()),
            producer_ended: self.producer_ended,
            producer_count: self.producer_count,
        })
    }
}
