//! A copy from its start to its result: the sequence both adapters' `CopyManager` follow.
//!
//! The [`Manager`] decides a copy once its endpoints' COPYs are under way. [`CopyRun`] wraps it
//! with what comes before and around that, so that no adapter decides it:
//!
//! * the start (`__enter__` in py-postgresql's copyman): every receiver's COPY first (all of
//!   them, even after one failed, so the failure names every endpoint that could not start), then
//!   the producer's, then the check that their formats agree — a copy that cannot start fails
//!   with every started endpoint failed or cancelled;
//! * what each call of the caller waits for: the next progress report or fault
//!   ([`CopyRun::poll_progress`]), the copy's result ([`CopyRun::poll_finished`]), a copy run to
//!   its end under the manager's policy ([`CopyRun::poll_run`]), a reconciled receiver
//!   ([`CopyRun::poll_reconciled`]), with the progress a reconcile meets kept for the stream;
//! * the result, kept once the copy is over (finishing twice gives it again);
//! * the payload bytes receivers hold, and the most they held;
//! * what the adapter waits for now ([`UnderWay`]): when a copy stops moving, which endpoint
//!   it waits on, readable from another thread.
//!
//! An adapter's loop is the same for every call: ask with a `poll_*`, carry out the
//! [`Step::Order`] and [`report`](CopyRun::report) its result, wait for IO under way on
//! [`Step::Wait`], return on [`Step::Ready`].
//!
//! ```
//! use bytes::Bytes;
//! use copyman_core::run::{CopyRun, Order, Report, Step};
//! use copyman_core::stall::EndpointId;
//! use copyman_core::{Chunk, Config, Input, Protocol, ReceiverId};
//!
//! let mut run = CopyRun::new(Protocol::Chunks, [Protocol::Chunks], Config::default(), |_| {
//!     Default::default()
//! });
//! let mut lines = vec![vec![Bytes::from_static(b"1\n")]].into_iter();
//! // One loop carries out every order, whatever the call waits for.
//! let mut carry_out = |run: &mut CopyRun, order: Order| match order {
//!     Order::StartReceiver(id) => run.report(Report::started(EndpointId::Receiver(id), Ok(None))),
//!     Order::StartProducer { .. } => run.report(Report::started(EndpointId::Producer, Ok(None))),
//!     Order::ReadProducer => run.report(match lines.next() {
//!         Some(chunk) => Input::ProducerData(Chunk::lines(chunk)),
//!         None => Input::ProducerEnd { count: Some(1) },
//!     }),
//!     Order::Transmit { receiver, .. } => run.report(Input::Transmitted { receiver }),
//!     Order::Complete { receiver } => {
//!         run.report(Input::ReceiverDone { receiver, result: Ok(Some(1)) })
//!     }
//!     other => unreachable!("{other:?}"),
//! };
//! let started = loop {
//!     match run.poll_started() {
//!         Step::Order(order) => carry_out(&mut run, order),
//!         Step::Wait => unreachable!("every order was carried out at once"),
//!         Step::Ready(started) => break started,
//!     }
//! };
//! assert!(started.is_ok());
//! let summary = loop {
//!     match run.poll_run() {
//!         Step::Order(order) => carry_out(&mut run, order),
//!         Step::Wait => unreachable!("every order was carried out at once"),
//!         Step::Ready(result) => break result.unwrap(),
//!     }
//! };
//! assert_eq!(summary.messages, 1);
//! assert_eq!(summary.receivers[0].0, ReceiverId(0));
//! ```

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use copyman_wire::realign::Completion;

use crate::fault::{BoxError, CopyFail, Diagnose, Fault};
use crate::manager::{
    Config, Data, Event, Input, Manager, Output, Protocol, ReceiverId, ReconcileError, Summary,
};
use crate::stall::{self, EndpointId};
use crate::start::{self, DataFormat};

/// A progress report `(messages, bytes)` of one cycle, or a fault: the items of both adapters'
/// progress iterator / stream.
pub type Progress = Result<(u64, u64), Fault>;

/// IO to carry out, then [`report`](CopyRun::report) its result.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Order {
    /// Start the receiver's COPY, then report [`Report::Started`] with its format.
    StartReceiver(ReceiverId),
    /// Start the producer's COPY, then report [`Report::Started`] with its format.
    /// `source_frames`: a PQv3 producer must hand in its frames as the server sent them (a
    /// receiver needs lines); otherwise it may re-block them.
    StartProducer {
        /// Whether the producer keeps its server's frames.
        source_frames: bool,
    },
    /// Read the next chunk from the producer; see [`Output::ReadProducer`].
    ReadProducer,
    /// Send `data` to `receiver`; see [`Output::Transmit`].
    Transmit {
        /// The receiver.
        receiver: ReceiverId,
        /// The data, in the receiver's protocol.
        data: Data,
    },
    /// Complete `receiver`'s COPY; see [`Output::Complete`].
    Complete {
        /// The receiver.
        receiver: ReceiverId,
    },
    /// Fail `receiver`'s COPY; see [`Output::Fail`].
    Fail {
        /// The receiver.
        receiver: ReceiverId,
        /// Why the copy failed.
        reason: Arc<str>,
        /// Realignment owed before the CopyFail.
        completion: Completion,
    },
    /// Cancel the producer; see [`Output::CancelProducer`].
    CancelProducer,
}

impl Order {
    /// The order of a manager output that is one.
    fn of(output: Output) -> Self {
        match output {
            Output::ReadProducer => Self::ReadProducer,
            Output::Transmit { receiver, data } => Self::Transmit { receiver, data },
            Output::Complete { receiver } => Self::Complete { receiver },
            Output::Fail {
                receiver,
                reason,
                completion,
            } => Self::Fail {
                receiver,
                reason,
                completion,
            },
            Output::CancelProducer => Self::CancelProducer,
            other => unreachable!("not an order: {other:?}"),
        }
    }

    /// The endpoint the order is for.
    pub fn endpoint(&self) -> EndpointId {
        match self {
            Self::StartReceiver(receiver)
            | Self::Transmit { receiver, .. }
            | Self::Complete { receiver }
            | Self::Fail { receiver, .. } => EndpointId::Receiver(*receiver),
            Self::StartProducer { .. } | Self::ReadProducer | Self::CancelProducer => {
                EndpointId::Producer
            }
        }
    }
}

/// The result of an [`Order`].
#[derive(Debug)]
#[non_exhaustive]
// `Started` comes once per endpoint and copy, moved straight into the run: boxing its data
// format would allocate for nothing.
#[allow(clippy::large_enum_variant)]
pub enum Report {
    /// An endpoint's COPY started (with the format its server announced, if it has a server)
    /// or could not start.
    Started {
        /// The endpoint.
        endpoint: EndpointId,
        /// Its format, or why it could not start.
        result: Result<Option<DataFormat>, BoxError>,
    },
    /// What the manager asked for: see [`Input`].
    Io(Input),
}

impl Report {
    /// The result of a start order.
    pub fn started(endpoint: EndpointId, result: Result<Option<DataFormat>, BoxError>) -> Self {
        Self::Started { endpoint, result }
    }
}

impl From<Input> for Report {
    fn from(input: Input) -> Self {
        Self::Io(input)
    }
}

/// What an adapter's loop does next for the call it serves.
#[derive(Debug)]
#[must_use]
pub enum Step<T> {
    /// Carry out this IO and report its result.
    Order(Order),
    /// Wait for IO under way, report what completed, and ask again.
    Wait,
    /// What the call waited for.
    Ready(T),
}

/// What a copy waits for now: the orders given and not yet reported — a producer's read or
/// start, a receiver's transmit, start or completion. When the copy stops moving, these are the
/// endpoints it waits on (a receiver whose transmit is out has a full socket; a producer whose
/// read is out sent nothing), which their servers cannot tell: a frozen backend, or one behind a
/// lost network path, shows the state it was in, and the others wait for the client. A clone
/// reads it from another thread (a watchdog) while the copy's own thread is blocked; receivers
/// after the 61st are not tracked.
///
/// The watchdog may tell it back what the servers show: a receiver's server that read or stored
/// more of its COPY since it last looked ([`UnderWay::server_moved`], from PostgreSQL's
/// `pg_stat_progress_copy`) has moved, for the stall rule, though copyman's socket to it took
/// nothing (a destination storing one large CopyData message slower than the stall timeout:
/// it reads the next only once done; it was said stalled).
///
/// ```
/// use copyman_core::run::CopyRun;
/// use copyman_core::stall::EndpointId;
/// use copyman_core::{Config, Protocol, ReceiverId};
///
/// let run = CopyRun::new(Protocol::Chunks, [Protocol::Chunks], Config::default(), |_| {
///     Default::default()
/// });
/// let under_way = run.under_way();
/// assert!(!under_way.producer() && under_way.receivers().next().is_none());
/// let receiver = EndpointId::Receiver(ReceiverId(0));
/// let before = under_way.heard(receiver);
/// under_way.server_moved(receiver);
/// assert_ne!(under_way.heard(receiver), before);
/// ```
#[derive(Debug, Clone, Default)]
pub struct UnderWay(Arc<Shared>);

/// What an [`UnderWay`]'s clones share: the orders out, and what a watchdog heard of each
/// endpoint's server (the producer's last).
#[derive(Debug)]
struct Shared {
    orders: AtomicU64,
    heard: [AtomicU64; UnderWay::RECEIVERS + 1],
}

impl Default for Shared {
    fn default() -> Self {
        Self {
            orders: AtomicU64::new(0),
            heard: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl UnderWay {
    const PRODUCER: u64 = 1 << 63;
    const COMPLETING: u64 = 1 << 62;
    const RECEIVERS: usize = 62;

    fn receiver_bit(receiver: ReceiverId) -> u64 {
        if receiver.0 < Self::RECEIVERS {
            1 << receiver.0
        } else {
            0
        }
    }

    fn set(&self, bits: u64, on: bool) {
        if on {
            self.0.orders.fetch_or(bits, Ordering::Relaxed);
        } else {
            self.0.orders.fetch_and(!bits, Ordering::Relaxed);
        }
    }

    /// Where what is heard of `endpoint` is kept (`None`: a receiver after the 62nd).
    fn heard_of(&self, endpoint: EndpointId) -> Option<&AtomicU64> {
        match endpoint {
            EndpointId::Producer => self.0.heard.last(),
            EndpointId::Receiver(id) if id.0 < Self::RECEIVERS => self.0.heard.get(id.0),
            EndpointId::Receiver(_) => None,
        }
    }

    /// A watchdog saw `endpoint`'s server move: its COPY read or stored more than at its last
    /// look. The copy's stall timer of the endpoint's IO under way counts it as bytes moved
    /// ([`StallTimer::hear`](crate::stall::StallTimer::hear)).
    pub fn server_moved(&self, endpoint: EndpointId) {
        if let Some(heard) = self.heard_of(endpoint) {
            heard.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A number that changes whenever [`server_moved`](Self::server_moved) is said of
    /// `endpoint`: what its stall timer hears.
    pub fn heard(&self, endpoint: EndpointId) -> u64 {
        self.heard_of(endpoint)
            .map_or(0, |heard| heard.load(Ordering::Relaxed))
    }

    /// Whether a read (or the start) of the producer is out: the copy waits for its data.
    pub fn producer(&self) -> bool {
        self.0.orders.load(Ordering::Relaxed) & Self::PRODUCER != 0
    }

    /// The receivers with an order out: a transmit (their socket takes no more now), their
    /// start, or the completion of their COPY ([`completing`](Self::completing)).
    pub fn receivers(&self) -> impl Iterator<Item = ReceiverId> {
        let bits = self.0.orders.load(Ordering::Relaxed);
        (0..Self::RECEIVERS)
            .filter(move |r| bits & (1 << r) != 0)
            .map(ReceiverId)
    }

    /// Whether a receiver was told to complete its COPY: the data is over, the copy waits for
    /// the servers' answers.
    pub fn completing(&self) -> bool {
        self.0.orders.load(Ordering::Relaxed) & Self::COMPLETING != 0
    }
}

/// The start of a copy, while it is under way.
#[derive(Debug)]
struct Starting {
    /// The next receiver to start.
    next: usize,
    /// Start orders out.
    outstanding: usize,
    /// The formats of receivers that started.
    formats: Vec<(ReceiverId, Option<DataFormat>)>,
    /// Receivers that could not start.
    faults: Vec<(ReceiverId, BoxError)>,
    /// The producer was asked to start.
    producer_asked: bool,
    /// The producer's start, once reported.
    producer: Option<Result<Option<DataFormat>, BoxError>>,
}

/// A copy from its start to its result; see the [module](self) docs.
#[derive(Debug)]
pub struct CopyRun {
    manager: Manager,
    receivers: usize,
    /// `Some` until every endpoint started (or one could not).
    starting: Option<Starting>,
    /// A finish or abort was given.
    ending: bool,
    /// Progress and faults a reconcile met, for the progress stream.
    queued: VecDeque<Progress>,
    result: Option<Result<Summary, CopyFail>>,
    /// Payload bytes of the most recent chunks, newest last: the ones receivers may still hold.
    recent: VecDeque<usize>,
    buffered: usize,
    peak_buffered: usize,
    /// The copy's stall timeout, for the stall rule on the errors reported.
    stall_timeout: Option<Duration>,
    /// By receiver: its last order was to complete its COPY (whose wait is never a stall).
    completing: Vec<bool>,
    /// A producer fault was handed out and the producer cannot be read again: the copy cannot
    /// go on, its progress is over.
    producer_faulted: bool,
    /// The orders out, for a watchdog.
    under_way: UnderWay,
    /// The producer can be read again after it failed ([`with_resumable_producer`]).
    ///
    /// [`with_resumable_producer`]: Self::with_resumable_producer
    producer_resumable: bool,
}

impl CopyRun {
    /// A copy from a producer speaking `producer` to receivers speaking `receivers` (their
    /// [`ReceiverId`]s in this order), with the manager's `config` and the adapter's way of
    /// reading its endpoints' errors (see [`Manager::set_diagnose`]). Nothing has started: ask
    /// [`poll_started`](Self::poll_started) first.
    pub fn new(
        producer: Protocol,
        receivers: impl IntoIterator<Item = Protocol>,
        config: Config,
        diagnose: Diagnose,
    ) -> Self {
        let mut manager = Manager::new(producer, config);
        manager.set_diagnose(diagnose);
        for protocol in receivers {
            manager
                .add_receiver(protocol)
                .expect("receivers are added before the start");
        }
        let receivers = manager.live_receivers().count();
        Self {
            manager,
            receivers,
            starting: Some(Starting {
                next: 0,
                outstanding: 0,
                formats: Vec::new(),
                faults: Vec::new(),
                producer_asked: false,
                producer: None,
            }),
            ending: false,
            queued: VecDeque::new(),
            result: None,
            recent: VecDeque::new(),
            buffered: 0,
            peak_buffered: 0,
            stall_timeout: None,
            completing: vec![false; receivers],
            producer_faulted: false,
            under_way: UnderWay::default(),
            producer_resumable: false,
        }
    }

    /// A copy as an adapter's `CopyManager` starts one: [`new`](Self::new) with `options`'
    /// configuration and [stall timeout](Self::with_stall_timeout), and a producer that is
    /// [`resumable`](Self::with_resumable_producer) or not.
    /// `receivers` are each one's protocol and whether its completion commits a server's COPY
    /// ([`Manager::completes_a_server`]).
    pub fn for_options(
        producer: Protocol,
        receivers: impl IntoIterator<Item = (Protocol, bool)>,
        options: &crate::manager::Options,
        resumable: bool,
        diagnose: Diagnose,
    ) -> Self {
        let receivers: Vec<(Protocol, bool)> = receivers.into_iter().collect();
        let protocols = receivers.iter().map(|(protocol, _)| *protocol);
        let mut run = Self::new(producer, protocols, options.config, diagnose)
            .with_stall_timeout(options.stall_limit())
            .with_resumable_producer(resumable);
        for (i, _) in receivers
            .iter()
            .enumerate()
            .filter(|(_, (_, server))| *server)
        {
            run.manager.completes_a_server(ReceiverId(i));
        }
        run
    }

    /// This copy with a stall timeout ([`Options::stall_timeout`](crate::manager::Options)):
    /// the errors reported for an endpoint's start (its wait for the server's
    /// CopyIn/CopyOutResponse), a producer read, a transmit, a server's message or a CopyFail
    /// that are IO timeouts become [`Stalled`](crate::stall::Stalled) faults naming their
    /// endpoint ([`stall::classify`]), the same way whichever adapter reports them. The adapter
    /// bounds the IO itself (socket timeouts, timers).
    pub fn with_stall_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.stall_timeout = timeout;
        self
    }

    /// This copy with a producer that can be read again after a read failed (a producer of the
    /// caller's whose failure was transient): after a producer fault its progress goes on, the
    /// next step reading the producer again, as py-postgresql's copyman lets the caller go on
    /// "if it's safe to continue" (the manager changed nothing). Without it — a producer whose
    /// server ended its COPY with the error — the progress ends after the fault, which only
    /// finishing (a failure) or aborting follows.
    pub fn with_resumable_producer(mut self, resumable: bool) -> Self {
        self.producer_resumable = resumable;
        self
    }

    /// A manager's output as the order it is, noting which receivers are told to complete.
    fn order(&mut self, output: Output) -> Order {
        let order = Order::of(output);
        match &order {
            Order::Complete { receiver } => {
                self.completing[receiver.0] = true;
                self.under_way.set(
                    UnderWay::receiver_bit(*receiver) | UnderWay::COMPLETING,
                    true,
                );
            }
            Order::Transmit { receiver, .. } | Order::Fail { receiver, .. } => {
                self.completing[receiver.0] = false;
                self.under_way.set(UnderWay::receiver_bit(*receiver), true);
            }
            Order::ReadProducer => self.under_way.set(UnderWay::PRODUCER, true),
            _ => {}
        }
        order
    }

    /// What the copy waits for now, as a handle another thread can read ([`UnderWay`]).
    pub fn under_way(&self) -> UnderWay {
        self.under_way.clone()
    }

    /// What a watchdog heard of `endpoint`'s server ([`UnderWay::heard`]), for its stall timer.
    pub fn heard(&self, endpoint: EndpointId) -> u64 {
        self.under_way.heard(endpoint)
    }

    /// An order's result came: it is no longer under way.
    fn reported(&self, input: &Input) {
        let bits = match input {
            Input::ProducerData(_)
            | Input::ProducerEnd { .. }
            | Input::ProducerError(_)
            | Input::ReadAbandoned => UnderWay::PRODUCER,
            Input::Transmitted { receiver }
            | Input::ReceiverError { receiver, .. }
            | Input::ReceiverDone { receiver, .. } => UnderWay::receiver_bit(*receiver),
            _ => return,
        };
        self.under_way.set(bits, false);
    }

    /// The stall rule on a reported error: an IO timeout of an endpoint while the copy has a
    /// stall timeout is that endpoint's stall (completing a COPY is never one; a producer's
    /// cancel is).
    fn stall_rule(&self, input: Input) -> Input {
        let rule = |error, endpoint| stall::classify(error, endpoint, self.stall_timeout);
        match input {
            Input::ProducerError(error) => Input::ProducerError(rule(error, EndpointId::Producer)),
            // Its cancel and drain after a stall (a server that sends nothing) times out too.
            Input::ProducerDone { result: Err(error) } => Input::ProducerDone {
                result: Err(rule(error, EndpointId::Producer)),
            },
            Input::ReceiverError {
                receiver,
                error,
                written,
            } => Input::ReceiverError {
                receiver,
                error: rule(error, EndpointId::Receiver(receiver)),
                written,
            },
            Input::ReceiverDone {
                receiver,
                result: Err(error),
            } if !self.completing[receiver.0] => Input::ReceiverDone {
                receiver,
                result: Err(rule(error, EndpointId::Receiver(receiver))),
            },
            other => other,
        }
    }

    /// The manager, to read its state.
    pub fn manager(&self) -> &Manager {
        &self.manager
    }

    /// Reports the result of an order.
    ///
    /// # Panics
    /// If the report does not answer an order given: the adapter is broken.
    pub fn report(&mut self, report: impl Into<Report>) {
        match report.into() {
            Report::Started { endpoint, result } => {
                // Waiting for a COPY to start is waiting for bytes too (a table locked by another
                // session, a source whose first rows take long): the same rule, the same fault.
                let result = result.map_err(|e| stall::classify(e, endpoint, self.stall_timeout));
                self.under_way.set(
                    match endpoint {
                        EndpointId::Receiver(id) => UnderWay::receiver_bit(id),
                        _ => UnderWay::PRODUCER,
                    },
                    false,
                );
                let start = self
                    .starting
                    .as_mut()
                    .expect("start results come while the copy starts");
                start.outstanding -= 1;
                match (endpoint, result) {
                    (EndpointId::Receiver(id), Ok(format)) => start.formats.push((id, format)),
                    (EndpointId::Receiver(id), Err(error)) => start.faults.push((id, error)),
                    (_, result) => start.producer = Some(result),
                }
            }
            Report::Io(input) => {
                self.reported(&input);
                let input = self.stall_rule(input);
                if let Input::ProducerData(chunk) = &input {
                    self.recent.push_back(chunk.data.len());
                }
                self.manager
                    .handle_input(input)
                    .expect("the adapter reports exactly what the manager asked for");
                self.account();
            }
        }
    }

    /// Updates the buffered bytes. Each receiver transmits chunks in order, so what receivers
    /// hold is the most recent `max(pending)` chunks.
    fn account(&mut self) {
        let held = (0..self.receivers)
            .map(|i| self.manager.pending(ReceiverId(i)))
            .max()
            .unwrap_or(0);
        while self.recent.len() > held {
            self.recent.pop_front();
        }
        self.buffered = self.recent.iter().sum();
        self.peak_buffered = self.peak_buffered.max(self.buffered);
    }

    /// The next step of the start, while it is under way; `None` once it is over.
    fn poll_start<T>(&mut self) -> Option<Step<T>> {
        let source_frames = self.manager.needs_source_frames();
        let start = self.starting.as_mut()?;
        if start.next < self.receivers {
            // Every receiver's COPY first (an adapter may run them at once).
            let receiver = ReceiverId(start.next);
            start.next += 1;
            start.outstanding += 1;
            self.under_way.set(UnderWay::receiver_bit(receiver), true);
            return Some(Step::Order(Order::StartReceiver(receiver)));
        }
        if start.outstanding > 0 {
            return Some(Step::Wait);
        }
        if start.faults.is_empty() && !start.producer_asked {
            // Then the producer's: no data moves before every receiver is ready for it.
            start.producer_asked = true;
            start.outstanding += 1;
            self.under_way.set(UnderWay::PRODUCER, true);
            return Some(Step::Order(Order::StartProducer { source_frames }));
        }
        let mut start = self.starting.take().expect("checked above");
        let producer = match start.producer.take() {
            Some(Ok(format)) => format,
            Some(Err(error)) => {
                self.start_failed(start.faults, Some(error));
                return None;
            }
            None => None,
        };
        // Every COPY started and announced its format; no data has moved yet.
        let mismatches = start::check_data_formats(producer.as_ref(), &start.formats);
        start.faults.extend(mismatches);
        if !start.faults.is_empty() {
            self.start_failed(start.faults, None);
        } else {
            // A chunk producer's rows are counted as the receivers' servers will read them.
            let formats: Vec<Option<DataFormat>> =
                start.formats.iter().map(|(_, f)| f.clone()).collect();
            self.manager.receivers_read(&formats);
        }
        None
    }

    fn start_failed(&mut self, receivers: Vec<(ReceiverId, BoxError)>, producer: Option<BoxError>) {
        self.ending = true;
        self.report(Input::StartFailed {
            receivers,
            producer,
        });
    }

    /// Starts the copy: `Ready(Ok(()))` once every COPY started, or the [`CopyFail`] of a copy
    /// that could not start (every endpoint that did start failed or cancelled first).
    pub fn poll_started(&mut self) -> Step<Result<(), CopyFail>> {
        if let Some(step) = self.poll_start() {
            return step;
        }
        if !self.ending {
            return Step::Ready(Ok(()));
        }
        match self.poll_finished() {
            Step::Ready(Err(fail)) => Step::Ready(Err(fail)),
            Step::Ready(Ok(_)) => unreachable!("a copy that could not start fails"),
            Step::Order(order) => Step::Order(order),
            Step::Wait => Step::Wait,
        }
    }

    /// The next cycle's progress `(messages, bytes)` or a fault; `None` once the producer reached
    /// its end (or no receiver is left), the copy is over, or a producer fault was given by a
    /// producer that cannot be read again: no data can come after it (the copy can only be
    /// finished, which fails it), so the iteration ends rather than give the same fault for
    /// ever. After a fault of a producer that can ([`with_resumable_producer`]) it goes on, the
    /// producer read again. A receiver fault does not end it: the receiver may be reconciled,
    /// and the others go on.
    ///
    /// [`with_resumable_producer`]: Self::with_resumable_producer
    pub fn poll_progress(&mut self) -> Step<Option<Progress>> {
        if let Some(step) = self.poll_start() {
            return step;
        }
        if let Some(item) = self.queued.pop_front() {
            return Step::Ready(Some(self.handed_out(item)));
        }
        if self.result.is_some() || self.producer_faulted {
            return Step::Ready(None);
        }
        loop {
            match self.manager.poll_output() {
                Output::Event(Event::Finished(result)) => {
                    self.result = Some(result);
                    return Step::Ready(None);
                }
                Output::Event(event) => {
                    if let Some(item) = progress(event) {
                        return Step::Ready(Some(self.handed_out(item)));
                    }
                }
                Output::EndOfCopy | Output::Done => return Step::Ready(None),
                Output::Wait => return Step::Wait,
                order => return Step::Order(self.order(order)),
            }
        }
    }

    /// A progress item on its way to the caller, noting a producer fault (the last item).
    fn handed_out(&mut self, item: Progress) -> Progress {
        if let Err(Fault::Producer(_)) = &item {
            self.producer_faulted = !self.producer_resumable;
        }
        item
    }

    /// Completes the copy (`__exit__` in py-postgresql's copyman): it succeeds only if the
    /// producer reached its end, a receiver is left and every receiver completes with the
    /// producer's row count; otherwise every receiver's COPY is failed and the producer
    /// cancelled. Then ask [`poll_finished`](Self::poll_finished) for the result.
    pub fn finish(&mut self) {
        self.end(Input::Finish);
    }

    /// Fails the copy with `reason`: nothing is completed on any receiver. Then ask
    /// [`poll_finished`](Self::poll_finished) for the result.
    pub fn abort(&mut self, reason: impl Into<String>) {
        self.end(Input::Abort {
            reason: reason.into(),
        });
    }

    fn end(&mut self, input: Input) {
        // The first decision stands.
        if !self.ending && self.result.is_none() {
            self.ending = true;
            self.report(input);
        }
    }

    /// The copy's result, once every endpoint's COPY ended.
    pub fn poll_finished(&mut self) -> Step<Result<Summary, CopyFail>> {
        loop {
            if let Some(result) = &self.result {
                return Step::Ready(result.clone());
            }
            match self.manager.poll_output() {
                Output::Event(Event::Finished(result)) => self.result = Some(result),
                // Progress and faults that arrive while ending are moot: the result says it all.
                Output::Event(_) => {}
                Output::Wait => return Step::Wait,
                Output::EndOfCopy | Output::Done => {
                    unreachable!("a copy that is ending goes on to its result")
                }
                order => return Step::Order(self.order(order)),
            }
        }
    }

    /// Runs the copy to its end and finishes it (`run()` in py-postgresql's copyman): a fault
    /// fails the whole copy, unless the keep-going policy ([`Config::keep_going`]) lets the
    /// survivors of a receiver fault complete.
    pub fn poll_run(&mut self) -> Step<Result<Summary, CopyFail>> {
        while !self.ending && self.result.is_none() {
            match self.poll_progress() {
                // The manager's policy: a producer fault ends the copy, a receiver's unless
                // keep-going.
                Step::Ready(Some(Err(fault))) if self.manager.ends_copy(&fault) => {
                    self.abort(fault.to_string());
                }
                Step::Ready(Some(_)) => {}
                Step::Ready(None) => self.finish(),
                Step::Order(order) => return Step::Order(order),
                Step::Wait => return Step::Wait,
            }
        }
        self.poll_finished()
    }

    /// Lets a faulted receiver rejoin: it first transmits what it still owes. Then ask
    /// [`poll_reconciled`](Self::poll_reconciled).
    ///
    /// # Errors
    /// [`ReconcileError::Refused`] when the manager refuses (the receiver did not fault, data
    /// went by while it was out, or its server ended its COPY).
    pub fn reconcile(&mut self, receiver: ReceiverId) -> Result<(), ReconcileError> {
        Ok(self.manager.handle_input(Input::Reconcile(receiver))?)
    }

    /// Whether a reconciled `receiver` is back: `Ok` once it transmitted what it owed,
    /// [`ReconcileError::Fault`] when that failed (it stays out). Progress and faults of other
    /// receivers that come meanwhile are kept for [`poll_progress`](Self::poll_progress).
    pub fn poll_reconciled(&mut self, receiver: ReceiverId) -> Step<Result<(), ReconcileError>> {
        loop {
            match self.manager.poll_output() {
                Output::Event(Event::Reconciled(id)) if id == receiver => {
                    return Step::Ready(Ok(()));
                }
                Output::Event(Event::ReceiverFault(fault)) if fault.get(receiver).is_some() => {
                    return Step::Ready(Err(ReconcileError::Fault(Fault::Receiver(fault))));
                }
                Output::Event(event) => self.queued.extend(progress(event)),
                Output::Wait => return Step::Wait,
                Output::EndOfCopy | Output::Done => {
                    unreachable!("a reconcile ends with the receiver back or faulted")
                }
                order => return Step::Order(self.order(order)),
            }
        }
    }

    /// The copy's result, once it is over.
    pub fn result(&self) -> Option<&Result<Summary, CopyFail>> {
        self.result.as_ref()
    }

    /// The receivers still in the copy (`receivers` in py-postgresql's copyman).
    pub fn live_receivers(&self) -> Vec<ReceiverId> {
        self.manager.live_receivers().collect()
    }

    /// Messages and payload bytes the producer delivered so far.
    pub fn totals(&self) -> (u64, u64) {
        self.manager.totals()
    }

    /// Payload bytes of the chunks receivers hold now (queued or being transmitted).
    pub fn buffered_bytes(&self) -> usize {
        self.buffered
    }

    /// The most payload bytes receivers held at once: at most the window × the producer's chunk
    /// size, whatever the data size.
    pub fn peak_buffered(&self) -> usize {
        self.peak_buffered
    }
}

/// The progress item of an event, if it has one.
fn progress(event: Event) -> Option<Progress> {
    match event {
        Event::Progress { messages, bytes } => Some(Ok((messages, bytes))),
        Event::ReceiverFault(fault) => Some(Err(Fault::Receiver(fault))),
        Event::ProducerFault(fault) => Some(Err(Fault::Producer(fault))),
        _ => None,
    }
}

/// Expands, in an adapter's `start_boxed`, to the [`CopyRun`] of a boxed producer and its
/// receivers under `options`: the producer's reads take the options' buffer size, if they give
/// one; then [`CopyRun::for_options`] with each endpoint's protocol, which receivers complete a
/// server and whether the producer is resumable — the methods both adapters' traits have
/// ([`producer_items!`](crate::producer_items), [`receiver_items!`](crate::receiver_items)).
#[macro_export]
#[doc(hidden)]
macro_rules! copy_run_for {
    ($producer:ident, $receivers:ident, $options:ident, $diagnose:expr) => {{
        if let Some(size) = $options.buffer_size {
            $producer.set_buffer_size(size);
        }
        let receivers = $receivers
            .iter()
            .map(|r| (r.protocol(), r.completes_a_server()));
        let (protocol, resumable) = ($producer.protocol(), $producer.resumable());
        $crate::run::CopyRun::for_options(protocol, receivers, &$options, resumable, $diagnose)
    }};
}
