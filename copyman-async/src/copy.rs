//! The tokio driver of copyman-core's [`Manager`]: `CopyManager` in py-postgresql's copyman and
//! `transfer`, with concurrent fan-out.

use std::collections::VecDeque;
use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use copyman_core::manager::{Options, ReconcileError};
use copyman_core::stall::{self, EndpointId, StallTimer, Stalled, Written};
use copyman_core::start;
use copyman_core::{
    BoxError, CopyFail, Data, Event, Fault, Input, Manager, Output, ReceiverId, Summary,
};
use futures_util::stream::{FuturesUnordered, Stream, StreamExt};

use crate::{Producer, Receiver};

/// An endpoint handed back by the IO that used it.
enum Endpoint<'a> {
    Producer(Box<dyn Producer + 'a>),
    Receiver(ReceiverId, Box<dyn Receiver + 'a>),
}

/// The result of one order: the endpoint it used and what to tell the manager.
struct Done<'a> {
    endpoint: Endpoint<'a>,
    input: Input,
}

/// One order in flight. It owns its endpoint while it runs, so no borrow of the manager is held
/// across an await, and dropping the copy drops it with its endpoint.
type Io<'a> = Pin<Box<dyn Future<Output = Done<'a>> + Send + 'a>>;

/// What the drive loop stopped for.
enum Step {
    Event(Event),
    EndOfCopy,
    Done,
}

/// Moves COPY data from one producer to many receivers, concurrently.
///
/// Every decision (faults, reconcile, realignment, finishing or failing) is copyman-core's
/// [`Manager`]; this type carries out its orders on async endpoints. Writes to every receiver run
/// at the same time, and the next producer read overlaps them, within the manager's window
/// ([`Options`]): a slow receiver holds the producer back rather than making the copy buffer
/// without limit, and with a stall timeout a stuck one faults while the others complete.
///
/// It is a [`Stream`] of per-cycle progress `(messages, bytes)` (`for n_msgs,
/// n_bytes in copy` in py-postgresql's copyman), with faults as `Err` items; the stream ends
/// when the producer is exhausted (or no receiver is left). Then
/// [`finish`](CopyManager::finish) it.
///
/// ```no_run
/// use copyman_async::{Connection, CopyManager, StatementProducer, StatementReceiver};
/// use futures_util::StreamExt;
///
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// let mut source = Connection::connect_str("host=127.0.0.1 user=postgres").await?;
/// let mut destination = Connection::connect_str("host=127.0.0.2 user=postgres").await?;
/// destination.execute("BEGIN").await?;
/// destination.execute("CREATE TEMP TABLE loading_table (i int8)").await?;
/// let producer = StatementProducer::new(
///     &mut source,
///     "COPY (SELECT i FROM generate_series(1, 1000000) AS g(i)) TO STDOUT",
/// );
/// let receiver = StatementReceiver::new(&mut destination, "COPY loading_table FROM STDIN");
/// let mut copy = CopyManager::start(producer, vec![Box::new(receiver)]).await?;
/// while let Some(progress) = copy.next().await {
///     let (messages, bytes) = progress?;
///     println!("{messages} rows, {bytes} bytes");
/// }
/// let summary = copy.finish().await?;
/// # drop(summary);
/// destination.execute("COMMIT").await?;
/// # Ok(()) }
/// ```
///
/// # All or nothing across destinations
///
/// A copy that fails before its end completes no receiver's COPY. A failure *at* the end is
/// different: each receiver's COPY completes when its server accepts CopyDone, and a server may
/// refuse it only then (a constraint checked at the end, a deferred trigger, a row the server had
/// not parsed yet) after other receivers' servers accepted theirs. In autocommit those COPYs are
/// committed, and the copy still fails. For all-or-nothing, copy inside a transaction on every
/// receiver (`BEGIN` before, `COMMIT` only once the copy succeeded, `ROLLBACK` otherwise), as the
/// `copyman` command does; only two-phase commit could do better.
///
/// # Dropping a copy, cancellation
///
/// `Drop` cannot await, so a copy dropped before it ended (its stream, or the future of `run`,
/// `finish`, `abort`, `reconcile` or `transfer`, dropped by `select!`, a timeout or an early
/// return) cannot fail each COPY the polite way. It drops every endpoint, those inside IO in
/// flight included, and each endpoint keeps the one rule that matters: **a destination's COPY is
/// only ever completed by an explicit CopyDone**. What happens to each connection:
///
/// * [`StatementReceiver`](crate::StatementReceiver) in its COPY: it writes, without waiting,
///   the realignment its partial frame needs and a CopyFail. If the socket takes them at once
///   (the usual case) the server fails the COPY and the [`Connection`](crate::Connection) stays
///   usable: its next call first reads the server's answer. If the socket would block (a
///   stalled destination whose buffers are full), or a CopyDone/CopyFail was left half written,
///   the socket is closed instead: the server aborts the COPY and rolls back the transaction
///   around it, and the `Connection` fails every later call with [`Error::Closed`](crate::Error::Closed) (connect
///   again). Nothing commits either way — with one exception: a drop *during* `finish`, after
///   that receiver's CopyDone went out whole, cannot take the commit back (as with any client
///   that disappears after sending a commit).
/// * [`StatementProducer`](crate::StatementProducer) in its COPY: its session switches to
///   draining and a cancel request is sent from a task spawned on the current tokio runtime;
///   the `Connection`'s next call waits for that cancel and reads (discarding) the rest of the
///   COPY first, so it stays usable. With no tokio runtime at hand the socket is closed instead
///   (a COPY TO changes nothing; a transaction the caller had open on it is lost).
/// * [`ClientReceiver`](crate::ClientReceiver): its `CopyInSink` is dropped unfinished, so
///   `tokio-postgres` sends CopyFail: nothing commits, the client stays usable.
/// * [`ClientProducer`](crate::ClientProducer): its `CopyOutStream` is dropped; the client
///   discards the rest of the COPY and stays usable.
/// * Sinks, writers, streams, readers, closures: simply dropped; what they were given stays
///   given.
/// * Endpoints whose COPY had already ended (completed or failed) are left as they are, usable.
///
/// A copy that reached the end of its data but was not finished is no different, so always end
/// it with [`finish`](CopyManager::finish) (or `run`, or [`transfer`]).
///
/// The stall timeout ([`Options::stall_timeout`]) works the same way on a smaller scale: it
/// drops a transmit's future, not the receiver, and knows from the transmit's `written` count
/// ([`Receiver::transmit`](crate::Receiver::transmit)) how much of its data went out, so that the
/// receiver can be reconciled or realigned.
/// A receiver whose *failing* stalls past the timeout is left with a half-written CopyFail, so
/// its connection is closed when the copy is dropped.
pub struct CopyManager<'a> {
    manager: Manager,
    options: Options,
    /// `None` while an order of the producer is in flight.
    producer: Option<Box<dyn Producer + 'a>>,
    /// A receiver is `None` while an order of it is in flight.
    receivers: Vec<Option<Box<dyn Receiver + 'a>>>,
    in_flight: FuturesUnordered<Io<'a>>,
    /// Progress and faults that came while `reconcile` ran, for the stream.
    queued: VecDeque<Result<(u64, u64), Fault>>,
    result: Option<Result<Summary, CopyFail>>,
    /// Payload bytes of the most recent chunks, newest last: the ones receivers may still hold.
    recent: VecDeque<usize>,
    buffered: usize,
    peak_buffered: usize,
}

impl fmt::Debug for CopyManager<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CopyManager")
            .field("manager", &self.manager)
            .field("options", &self.options)
            .field("in_flight", &self.in_flight.len())
            .field("buffered", &self.buffered)
            .finish_non_exhaustive()
    }
}

impl<'a> CopyManager<'a> {
    /// Starts a copy with the default [`Options`] (`__enter__` in py-postgresql's copyman): every
    /// receiver's COPY (concurrently), then the producer's.
    ///
    /// # Errors
    /// If any endpoint cannot start, those started are failed and [`CopyFail`] says which
    /// could not start.
    pub async fn start(
        producer: impl Producer + 'a,
        receivers: Vec<Box<dyn Receiver + 'a>>,
    ) -> Result<Self, CopyFail> {
        Self::start_with(producer, receivers, Options::default()).await
    }

    /// Starts a copy with `options`; see [`CopyManager::start`].
    ///
    /// # Errors
    /// As [`CopyManager::start`].
    pub async fn start_with(
        producer: impl Producer + 'a,
        receivers: Vec<Box<dyn Receiver + 'a>>,
        options: Options,
    ) -> Result<Self, CopyFail> {
        Self::start_boxed(Box::new(producer), receivers, options).await
    }

    /// A copy from `producer` to the receivers given to the [`CopyBuilder`]: the one-call form.
    ///
    /// ```no_run
    /// use copyman_async::{Connection, CopyManager, Options, StatementProducer, StatementReceiver};
    ///
    /// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut source = Connection::connect_str("host=127.0.0.1 user=postgres dbname=app").await?;
    /// let mut a = Connection::connect_str("host=10.0.0.2 user=postgres dbname=app").await?;
    /// let mut b = Connection::connect_str("host=10.0.0.3 user=postgres dbname=app").await?;
    /// let summary = CopyManager::builder(StatementProducer::new(&mut source, "COPY items TO STDOUT"))
    ///     .to(StatementReceiver::new(&mut a, "COPY items FROM STDIN"))
    ///     .to(StatementReceiver::new(&mut b, "COPY items FROM STDIN"))
    ///     .options(Options::default().with_stall_timeout(std::time::Duration::from_secs(30)))
    ///     .run()
    ///     .await?;
    /// println!("{} rows", summary.messages);
    /// # Ok(()) }
    /// ```
    pub fn builder(producer: impl Producer + 'a) -> CopyBuilder<'a> {
        CopyBuilder {
            producer: Box::new(producer),
            receivers: Vec::new(),
            options: Options::default(),
        }
    }

    async fn start_boxed(
        mut producer: Box<dyn Producer + 'a>,
        receivers: Vec<Box<dyn Receiver + 'a>>,
        options: Options,
    ) -> Result<Self, CopyFail> {
        if let Some(size) = options.buffer_size {
            producer.set_buffer_size(size);
        }
        let mut manager = Manager::new(producer.protocol(), options.config);
        manager.set_diagnose(crate::Error::diagnose);
        for receiver in &receivers {
            manager
                .add_receiver(receiver.protocol())
                .expect("receivers are added before the start");
        }
        let mut copy = Self {
            manager,
            options,
            producer: Some(producer),
            receivers: receivers.into_iter().map(Some).collect(),
            in_flight: FuturesUnordered::new(),
            queued: VecDeque::new(),
            result: None,
            recent: VecDeque::new(),
            buffered: 0,
            peak_buffered: 0,
        };
        let starts = copy
            .receivers
            .iter_mut()
            .enumerate()
            .map(|(i, receiver)| async move {
                let receiver = receiver.as_mut().expect("no IO runs before the start");
                (ReceiverId(i), receiver.start().await)
            });
        let mut receiver_faults: Vec<_> = futures_util::future::join_all(starts)
            .await
            .into_iter()
            .filter_map(|(id, result)| result.err().map(|e| (id, e)))
            .collect();
        let mut producer_fault = None;
        if receiver_faults.is_empty() {
            let source_frames = copy.manager.needs_source_frames();
            let producer = copy.producer.as_mut().expect("no IO runs before the start");
            producer_fault = producer.start(source_frames).await.err();
        }
        if receiver_faults.is_empty() && producer_fault.is_none() {
            // Every COPY started and announced its format; no data has moved yet.
            let producer = copy.producer.as_ref().and_then(|p| p.format());
            let formats = copy
                .receivers
                .iter()
                .enumerate()
                .map(|(i, r)| (ReceiverId(i), r.as_ref().and_then(|r| r.format())));
            receiver_faults.extend(
                start::check_formats(producer, formats)
                    .into_iter()
                    .map(|(id, mismatch)| (id, BoxError::from(mismatch))),
            );
        }
        if receiver_faults.is_empty() && producer_fault.is_none() {
            return Ok(copy);
        }
        let input = Input::StartFailed {
            receivers: receiver_faults,
            producer: producer_fault,
        };
        match copy.end(input).await {
            Err(fail) => Err(fail),
            Ok(_) => unreachable!("a copy that could not start fails"),
        }
    }

    /// Runs the copy to its end and finishes it (`run()` in py-postgresql's copyman): a fault fails
    /// the whole copy, unless the options' keep-going policy lets the survivors of a receiver
    /// fault complete ([`Options::with_keep_going`]; each receiver's outcome is in the summary).
    ///
    /// # Errors
    /// [`CopyFail`] when anything went wrong; no receiver's COPY is completed then,
    /// unless a receiver refused its completion after others' were accepted (see "All or nothing
    /// across destinations" on [`CopyManager`]).
    pub async fn run(mut self) -> Result<Summary, CopyFail> {
        while let Some(progress) = self.next().await {
            // Core's policy: a producer fault ends the copy, a receiver's unless keep-going.
            if let Err(fault) = progress
                && self.manager.ends_copy(&fault)
            {
                return self
                    .end(Input::Abort {
                        reason: fault.to_string(),
                    })
                    .await;
            }
        }
        self.finish().await
    }

    /// Lets a faulted receiver rejoin: it first transmits what it still owes. Progress and
    /// faults of other receivers that come meanwhile are kept for the stream.
    ///
    /// # Errors
    /// [`ReconcileError::Refused`] when the manager refuses (the receiver did not fault, or data
    /// went by while it was out); [`ReconcileError::Fault`] when its transmit fails again (it
    /// stays out).
    pub async fn reconcile(&mut self, receiver: ReceiverId) -> Result<(), ReconcileError> {
        self.manager.handle_input(Input::Reconcile(receiver))?;
        loop {
            match poll_fn(|cx| self.poll_step(cx)).await {
                Step::Event(Event::Reconciled(id)) if id == receiver => return Ok(()),
                Step::Event(Event::ReceiverFault(fault)) if fault.get(receiver).is_some() => {
                    return Err(ReconcileError::Fault(Fault::Receiver(fault)));
                }
                Step::Event(event) => {
                    if let Some(item) = stream_item(event) {
                        self.queued.push_back(item);
                    }
                }
                Step::EndOfCopy | Step::Done => {
                    unreachable!("a reconcile ends with the receiver back or faulted")
                }
            }
        }
    }

    /// Completes the copy (`__exit__` in py-postgresql's copyman): succeeds only if the producer
    /// reached its end, a receiver is left and every receiver completes with the producer's row
    /// count. Receivers complete concurrently.
    ///
    /// # Errors
    /// [`CopyFail`] otherwise; every receiver's COPY is then failed and the producer cancelled.
    pub async fn finish(mut self) -> Result<Summary, CopyFail> {
        self.end(Input::Finish).await
    }

    /// Fails the copy with `reason`: nothing is completed on any receiver.
    pub async fn abort(mut self, reason: &str) -> CopyFail {
        match self
            .end(Input::Abort {
                reason: reason.into(),
            })
            .await
        {
            Err(fail) => fail,
            Ok(_) => unreachable!("an aborted copy fails"),
        }
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

    /// The most payload bytes receivers held at once: at most the window × the producer's
    /// chunk size (a statement producer's buffer size), whatever the data size. The buffer of
    /// a producer read in flight is not counted.
    pub fn peak_buffered(&self) -> usize {
        self.peak_buffered
    }

    /// Reports an input the manager asked for.
    fn report(&mut self, input: Input) {
        if let Input::ProducerData(chunk) = &input {
            self.recent.push_back(chunk.data.len());
        }
        self.manager
            .handle_input(input)
            .expect("the driver reports exactly what the manager asked for");
        self.account();
    }

    /// Updates the buffered bytes. Each receiver transmits chunks in order, so what receivers
    /// hold is the most recent `max(pending)` chunks.
    fn account(&mut self) {
        let held = (0..self.receivers.len())
            .map(|i| self.manager.pending(ReceiverId(i)))
            .max()
            .unwrap_or(0);
        while self.recent.len() > held {
            self.recent.pop_front();
        }
        self.buffered = self.recent.iter().sum();
        self.peak_buffered = self.peak_buffered.max(self.buffered);
    }

    /// The drive loop: carries out the manager's orders until it has an event for the caller,
    /// or must wait for IO in flight (then waits for one result and goes on).
    fn poll_step(&mut self, cx: &mut Context<'_>) -> Poll<Step> {
        loop {
            match self.manager.poll_output() {
                Output::Event(event) => return Poll::Ready(Step::Event(event)),
                Output::EndOfCopy => return Poll::Ready(Step::EndOfCopy),
                Output::Done => return Poll::Ready(Step::Done),
                Output::Wait => {
                    let done = ready!(self.in_flight.poll_next_unpin(cx))
                        .expect("the manager waits only while IO it ordered is in flight");
                    match done.endpoint {
                        Endpoint::Producer(producer) => self.producer = Some(producer),
                        Endpoint::Receiver(id, receiver) => self.receivers[id.0] = Some(receiver),
                    }
                    self.report(done.input);
                }
                order => self.dispatch(order),
            }
        }
    }

    /// Starts the IO of one order.
    fn dispatch(&mut self, order: Output) {
        let stall = self.options.stall_timeout;
        let io: Io<'a> = match order {
            Output::ReadProducer => {
                let mut producer = self.take_producer();
                Box::pin(async move {
                    // A producer read is cancel-safe: one that stalls is dropped, and the next
                    // starts afresh.
                    let read = producer.next_chunk();
                    let input = match watched(EndpointId::Producer, stall, read, || 0).await {
                        Ok(Ok(Some(chunk))) => Input::ProducerData(chunk),
                        Ok(Ok(None)) => Input::ProducerEnd {
                            count: producer.count(),
                        },
                        Ok(Err(error)) => Input::ProducerError(stall::classify(
                            error,
                            EndpointId::Producer,
                            stall,
                        )),
                        Err(stalled) => Input::ProducerError(Box::new(stalled)),
                    };
                    Done {
                        endpoint: Endpoint::Producer(producer),
                        input,
                    }
                })
            }
            Output::CancelProducer => {
                let mut producer = self.take_producer();
                Box::pin(async move {
                    let result = producer.cancel().await;
                    Done {
                        endpoint: Endpoint::Producer(producer),
                        input: Input::ProducerDone { result },
                    }
                })
            }
            Output::Transmit { receiver, data } => {
                let mut endpoint = self.take_receiver(receiver);
                Box::pin(async move {
                    let written = Written::new();
                    let endpoint_id = EndpointId::Receiver(receiver);
                    let transmit = endpoint.transmit(&data, &written);
                    let result = watched(endpoint_id, stall, transmit, || written.get()).await;
                    let written = written.get().min(data_len(&data));
                    let input = match result {
                        Ok(Ok(())) => Input::Transmitted { receiver },
                        Ok(Err(error)) => Input::ReceiverError {
                            receiver,
                            error: stall::classify(error, endpoint_id, stall),
                            written,
                        },
                        Err(stalled) => Input::ReceiverError {
                            receiver,
                            error: Box::new(stalled),
                            written,
                        },
                    };
                    Done {
                        endpoint: Endpoint::Receiver(receiver, endpoint),
                        input,
                    }
                })
            }
            Output::Complete { receiver } => {
                let mut endpoint = self.take_receiver(receiver);
                Box::pin(async move {
                    let result = endpoint.complete().await;
                    Done {
                        endpoint: Endpoint::Receiver(receiver, endpoint),
                        input: Input::ReceiverDone { receiver, result },
                    }
                })
            }
            Output::Fail {
                receiver,
                reason,
                completion,
            } => {
                let mut endpoint = self.take_receiver(receiver);
                Box::pin(async move {
                    let id = EndpointId::Receiver(receiver);
                    let fail = endpoint.fail(&reason, &completion);
                    let result = match watched(id, stall, fail, || 0).await {
                        Ok(result) => result.map(|()| None),
                        Err(stalled) => Err(BoxError::from(stalled)),
                    };
                    Done {
                        endpoint: Endpoint::Receiver(receiver, endpoint),
                        input: Input::ReceiverDone { receiver, result },
                    }
                })
            }
            other => unreachable!("not an order: {other:?}"),
        };
        self.in_flight.push(io);
    }

    fn take_producer(&mut self) -> Box<dyn Producer + 'a> {
        self.producer
            .take()
            .expect("the manager orders one producer IO at a time")
    }

    fn take_receiver(&mut self, receiver: ReceiverId) -> Box<dyn Receiver + 'a> {
        self.receivers[receiver.0]
            .take()
            .expect("the manager orders one IO per receiver at a time")
    }

    /// Ends the copy with `input` (finish or abort) and drives it to its result.
    async fn end(&mut self, input: Input) -> Result<Summary, CopyFail> {
        if let Some(result) = self.result.clone() {
            return result;
        }
        self.report(input);
        loop {
            match poll_fn(|cx| self.poll_step(cx)).await {
                Step::Event(Event::Finished(result)) => {
                    self.result = Some(result.clone());
                    return result;
                }
                // Progress and faults that arrive while ending are moot: the result says it all.
                Step::Event(_) => {}
                Step::EndOfCopy | Step::Done => {
                    unreachable!("an ending copy goes on to its result")
                }
            }
        }
    }
}

/// Runs `io` under core's stall rule: with a stall timeout, `endpoint` stalls once `moved` (the
/// bytes it moved so far) has stayed the same for the whole timeout.
async fn watched<T>(
    endpoint: EndpointId,
    timeout: Option<Duration>,
    io: impl Future<Output = T>,
    moved: impl Fn() -> usize,
) -> Result<T, Stalled> {
    let Some(limit) = timeout else {
        return Ok(io.await);
    };
    let mut timer = StallTimer::new(endpoint, limit, Instant::now());
    let mut seen = moved();
    tokio::pin!(io);
    loop {
        tokio::select! {
            out = &mut io => return Ok(out),
            () = tokio::time::sleep_until(timer.poll_timeout().into()) => {
                let now = Instant::now();
                match moved() {
                    now_moved if now_moved != seen => {
                        seen = now_moved;
                        timer.moved(now);
                    }
                    _ => timer.handle_timeout(now)?,
                }
            }
        }
    }
}

fn data_len(data: &Data) -> usize {
    match data {
        Data::PQv3(bytes) => bytes.len(),
        _ => 0,
    }
}

/// The stream's item for an event, if it has one.
fn stream_item(event: Event) -> Option<Result<(u64, u64), Fault>> {
    match event {
        Event::Progress { messages, bytes } => Some(Ok((messages, bytes))),
        Event::ReceiverFault(fault) => Some(Err(Fault::Receiver(fault))),
        Event::ProducerFault(fault) => Some(Err(Fault::Producer(fault))),
        _ => None,
    }
}

impl Stream for CopyManager<'_> {
    type Item = Result<(u64, u64), Fault>;

    /// The next cycle's progress `(messages, bytes)`, or a fault; `None` once the producer reached
    /// its end (or no receiver is left).
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(item) = this.queued.pop_front() {
            return Poll::Ready(Some(item));
        }
        if this.result.is_some() {
            return Poll::Ready(None);
        }
        loop {
            match ready!(this.poll_step(cx)) {
                Step::Event(event) => {
                    if let Some(item) = stream_item(event) {
                        return Poll::Ready(Some(item));
                    }
                }
                Step::EndOfCopy | Step::Done => return Poll::Ready(None),
            }
        }
    }
}

/// Copies everything `producer` produces to every receiver (`transfer` in py-postgresql's copyman),
/// returning the totals `(messages, bytes)`.
///
/// ```no_run
/// use copyman_async::{Connection, StatementProducer, StatementReceiver, transfer};
///
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// let mut source = Connection::connect_str("host=127.0.0.1 user=postgres").await?;
/// let mut destination = Connection::connect_str("host=127.0.0.2 user=postgres").await?;
/// destination.execute("CREATE TABLE IF NOT EXISTS t (i int8)").await?;
/// let (rows, bytes) = transfer(
///     StatementProducer::new(&mut source, "COPY (SELECT i FROM generate_series(1, 1000000) AS g(i)) TO STDOUT"),
///     vec![Box::new(StatementReceiver::new(&mut destination, "COPY t FROM STDIN"))],
/// )
/// .await?;
/// # Ok(()) }
/// ```
///
/// # Errors
/// [`CopyFail`] if anything went wrong: no receiver's COPY is completed then, unless a
/// receiver refused its completion after others' were accepted (see "All or nothing across
/// destinations" on [`CopyManager`]).
pub async fn transfer<'a>(
    producer: impl Producer + 'a,
    receivers: Vec<Box<dyn Receiver + 'a>>,
) -> Result<(u64, u64), CopyFail> {
    let summary = CopyManager::start(producer, receivers).await?.run().await?;
    Ok((summary.messages, summary.bytes))
}

/// A copy being put together: its producer, its receivers and its [`Options`]; see
/// [`CopyManager::builder`]. Receivers are added with [`to`](Self::to) (one) or
/// [`to_all`](Self::to_all) (any iterator of them), without boxing.
#[must_use = "a copy does nothing until it is started or run"]
pub struct CopyBuilder<'a> {
    producer: Box<dyn Producer + 'a>,
    receivers: Vec<Box<dyn Receiver + 'a>>,
    options: Options,
}

impl fmt::Debug for CopyBuilder<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CopyBuilder")
            .field("receivers", &self.receivers.len())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl<'a> CopyBuilder<'a> {
    /// Adds a receiver; its [`ReceiverId`] is the order it was added in, from 0.
    pub fn to(mut self, receiver: impl Receiver + 'a) -> Self {
        self.receivers.push(Box::new(receiver));
        self
    }

    /// Adds every receiver of `receivers`, in order.
    pub fn to_all<R: Receiver + 'a>(mut self, receivers: impl IntoIterator<Item = R>) -> Self {
        self.receivers.extend(
            receivers
                .into_iter()
                .map(|r| Box::new(r) as Box<dyn Receiver + 'a>),
        );
        self
    }

    /// Runs the copy with `options` (window, stall timeout, buffer size).
    pub fn options(mut self, options: Options) -> Self {
        self.options = options;
        self
    }

    /// Starts the copy, to stream its progress, reconcile and finish it; see
    /// [`CopyManager::start`].
    ///
    /// # Errors
    /// As [`CopyManager::start`].
    pub async fn start(self) -> Result<CopyManager<'a>, CopyFail> {
        CopyManager::start_boxed(self.producer, self.receivers, self.options).await
    }

    /// Starts and runs the copy to its end: the [`Summary`] (rows, bytes, each receiver's
    /// outcome), or the [`CopyFail`]; see [`CopyManager::run`].
    ///
    /// # Errors
    /// As [`CopyManager::start`] and [`CopyManager::run`].
    pub async fn run(self) -> Result<Summary, CopyFail> {
        self.start().await?.run().await
    }
}
