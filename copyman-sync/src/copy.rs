//! The blocking driver of copyman-core's [`Manager`]: `CopyManager` in py-postgresql's copyman and
//! `transfer`.

use std::collections::VecDeque;
use std::fmt;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use copyman_core::manager::{Options, ReconcileError};
use copyman_core::stall::{self, EndpointId, StallTimer};
use copyman_core::start;
use copyman_core::{BoxError, CopyFail, Event, Fault, Input, Manager, Output, ReceiverId, Summary};

use crate::poll::{self, Watch};
use crate::{PollSocket, Producer, Receiver};

/// Moves COPY data from one producer to many receivers, one cycle at a time.
///
/// Every decision (faults, reconcile, realignment, finishing or failing) is copyman-core's
/// [`Manager`]; this type carries out its orders on blocking endpoints. Iterate it for per-cycle
/// progress (`for n_msgs, n_bytes in copy` in py-postgresql's copyman), then
/// [`finish`](CopyManager::finish) it.
///
/// Endpoints it multiplexes with `poll(2)` (those with a [`Receiver::poll_socket`] /
/// [`Producer::poll_socket`]: raw endpoints over TCP, TLS or Unix sockets) stall
/// ([`Options::stall_timeout`](crate::Options)) when no byte moves on them for the timeout.
/// Endpoints written or read with blocking calls (in-process ones, and raw ones outside the
/// multiplexed path) take the timeout through [`Receiver::set_stall_timeout`] /
/// [`Producer::set_stall_timeout`] (raw ones arm their sockets' read and write timeouts with it
/// for the copy and clear them when it ends).
///
/// ```no_run
/// use copyman_sync::{Connection, CopyManager, StatementProducer, StatementReceiver};
///
/// let mut source = Connection::connect_str("host=127.0.0.1 user=postgres")?;
/// let mut destination = Connection::connect_str("host=127.0.0.2 user=postgres")?;
/// destination.execute("BEGIN")?;
/// destination.execute("CREATE TEMP TABLE loading_table (i int8)")?;
/// let producer = StatementProducer::new(
///     &mut source,
///     "COPY (SELECT i FROM generate_series(1, 1000000) AS g(i)) TO STDOUT",
/// );
/// let receiver = StatementReceiver::new(&mut destination, "COPY loading_table FROM STDIN");
/// let mut copy = CopyManager::start(producer, vec![Box::new(receiver)])?;
/// for progress in &mut copy {
///     let (messages, bytes) = progress?;
///     println!("{messages} rows, {bytes} bytes");
/// }
/// let summary = copy.finish()?;
/// # drop(summary);
/// destination.execute("COMMIT")?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
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
/// Dropping a copy that was not finished fails it: nothing is completed on any receiver.
///
/// # How it does IO
///
/// Receivers and a producer that have a socket to poll ([`Receiver::poll_socket`],
/// [`Producer::poll_socket`]: the raw endpoints over TCP, TLS or Unix sockets) are driven without
/// blocking: each transmit writes what its socket takes, and when nothing more can move the
/// driver waits with one `poll(2)` on every socket that has bytes pending (writable), every
/// live receiver (readable: a server's error) and the producer (readable), so each destination
/// is fed as fast as it drains and the next read overlaps the writes of the last. The manager's
/// window is then at least 2 chunks (4 by default): memory stays bounded by a few buffers
/// whatever the data size.
/// Other endpoints are carried out with blocking calls, one after another.
pub struct CopyManager<'a> {
    manager: Manager,
    options: Options,
    producer: Box<dyn Producer + 'a>,
    receivers: Vec<Box<dyn Receiver + 'a>>,
    result: Option<Result<Summary, CopyFail>>,
    /// Transmits under way without blocking, by receiver.
    writes: Vec<Option<Pending>>,
    /// A producer read under way without blocking.
    reading: Option<Reading>,
    /// Receivers' sockets were polled for readability since the last cycle's progress.
    polled: bool,
    /// Events met while reconciling, which the iterator hands out first.
    stashed: VecDeque<Event>,
    /// Reused for each `poll(2)`: the sockets and whose they are.
    watches: Vec<Watch>,
    owners: Vec<EndpointId>,
}

/// A transmit under way: its data, how much went out, and core's stall timer (the socket's
/// timeout, else the copy's stall timeout), reset by every byte the socket takes.
#[derive(Debug)]
struct Pending {
    data: Bytes,
    written: usize,
    timer: Option<StallTimer>,
}

/// A producer read under way: its stall timer, reset by every byte that comes, and whether the
/// last attempt was eager (then the producer holds nothing and only its socket can wake it).
#[derive(Debug, Clone, Copy)]
struct Reading {
    timer: Option<StallTimer>,
    eager: bool,
}

impl fmt::Debug for CopyManager<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CopyManager")
            .field("manager", &self.manager)
            .finish_non_exhaustive()
    }
}

impl<'a> CopyManager<'a> {
    /// Starts a copy: every receiver's COPY, then the producer's (`__enter__` in py-postgresql's
    /// copyman).
    ///
    /// # Errors
    /// If any endpoint cannot start, those started are failed and [`CopyFail`] says which
    /// could not start.
    pub fn start(
        producer: impl Producer + 'a,
        receivers: Vec<Box<dyn Receiver + 'a>>,
    ) -> Result<Self, CopyFail> {
        Self::start_with(producer, receivers, Options::default())
    }

    /// Starts a copy with `options`; see [`CopyManager::start`].
    ///
    /// # Errors
    /// As [`CopyManager::start`].
    pub fn start_with(
        producer: impl Producer + 'a,
        receivers: Vec<Box<dyn Receiver + 'a>>,
        options: Options,
    ) -> Result<Self, CopyFail> {
        Self::start_boxed(Box::new(producer), receivers, options)
    }

    /// A copy from `producer` to the receivers given to the [`CopyBuilder`]: the one-call form.
    ///
    /// ```no_run
    /// use copyman_sync::{Connection, CopyManager, Options, StatementProducer, StatementReceiver};
    ///
    /// let mut source = Connection::connect_str("host=127.0.0.1 user=postgres dbname=app")?;
    /// let mut a = Connection::connect_str("host=10.0.0.2 user=postgres dbname=app")?;
    /// let mut b = Connection::connect_str("host=10.0.0.3 user=postgres dbname=app")?;
    /// let summary = CopyManager::builder(StatementProducer::new(&mut source, "COPY items TO STDOUT"))
    ///     .to(StatementReceiver::new(&mut a, "COPY items FROM STDIN"))
    ///     .to(StatementReceiver::new(&mut b, "COPY items FROM STDIN"))
    ///     .options(Options::default().with_stall_timeout(std::time::Duration::from_secs(30)))
    ///     .run()?;
    /// println!("{} rows", summary.messages);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder(producer: impl Producer + 'a) -> CopyBuilder<'a> {
        CopyBuilder {
            producer: Box::new(producer),
            receivers: Vec::new(),
            options: Options::default(),
        }
    }

    fn start_boxed(
        mut producer: Box<dyn Producer + 'a>,
        receivers: Vec<Box<dyn Receiver + 'a>>,
        options: Options,
    ) -> Result<Self, CopyFail> {
        if let Some(size) = options.buffer_size {
            producer.set_buffer_size(size);
        }
        // Multiplexed endpoints overlap the next read with the writes of the last chunk: that
        // takes two chunks in flight, whatever window was asked for.
        let multiplexed =
            producer.poll_socket().is_some() || receivers.iter().any(|r| r.poll_socket().is_some());
        let mut config = options.config;
        if multiplexed {
            config.window = config.window.max(2);
        }
        let mut manager = Manager::new(producer.protocol(), config);
        manager.set_diagnose(crate::Error::diagnose);
        for receiver in &receivers {
            manager
                .add_receiver(receiver.protocol())
                .expect("receivers are added before the start");
        }
        let count = receivers.len();
        let mut copy = Self {
            manager,
            options,
            producer,
            receivers,
            result: None,
            writes: (0..count).map(|_| None).collect(),
            reading: None,
            polled: false,
            stashed: VecDeque::new(),
            watches: Vec::with_capacity(count + 1),
            owners: Vec::with_capacity(count + 1),
        };
        let stall = options.stall_timeout;
        let mut receiver_faults = Vec::new();
        for (i, receiver) in copy.receivers.iter_mut().enumerate() {
            let started = receiver.start().and_then(|()| match stall {
                Some(_) => receiver.set_stall_timeout(stall),
                None => Ok(()),
            });
            if let Err(error) = started {
                receiver_faults.push((ReceiverId(i), error));
            }
        }
        let mut producer_fault = None;
        if receiver_faults.is_empty() {
            let source_frames = copy.manager.needs_source_frames();
            let producer = &mut copy.producer;
            producer_fault = producer
                .start(source_frames)
                .and_then(|()| match stall {
                    Some(_) => producer.set_stall_timeout(stall),
                    None => Ok(()),
                })
                .err();
        }
        if receiver_faults.is_empty() && producer_fault.is_none() {
            // Every COPY started and announced its format; no data has moved yet.
            let formats = copy
                .receivers
                .iter()
                .enumerate()
                .map(|(i, r)| (ReceiverId(i), r.format()));
            receiver_faults.extend(
                start::check_formats(copy.producer.format(), formats)
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
        match copy.end(input) {
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
    pub fn run(mut self) -> Result<Summary, CopyFail> {
        while let Some(progress) = self.next() {
            // Core's policy: a producer fault ends the copy, a receiver's unless keep-going.
            if let Err(fault) = progress
                && self.manager.ends_copy(&fault)
            {
                return self.end(Input::Abort {
                    reason: fault.to_string(),
                });
            }
        }
        self.finish()
    }

    /// Lets a faulted receiver rejoin: it first transmits what it still owes.
    ///
    /// # Errors
    /// [`ReconcileError::Refused`] when the manager refuses (the receiver did not fault, or data
    /// went by while it was out); [`ReconcileError::Fault`] when its transmit fails again (it
    /// stays out).
    pub fn reconcile(&mut self, receiver: ReceiverId) -> Result<(), ReconcileError> {
        self.manager.handle_input(Input::Reconcile(receiver))?;
        loop {
            match self.manager.poll_output() {
                Output::Event(Event::Reconciled(id)) if id == receiver => return Ok(()),
                Output::Event(Event::ReceiverFault(fault)) => {
                    return Err(ReconcileError::Fault(Fault::Receiver(fault)));
                }
                // Other receivers' cycles may complete meanwhile: the iterator reports them.
                Output::Event(event) => self.stashed.push_back(event),
                Output::Transmit { receiver, data } => self.transmit(receiver, data),
                Output::Wait => self.wait_io(),
                other => unreachable!("a reconcile only transmits, got {other:?}"),
            }
        }
    }

    /// Completes the copy (`__exit__` in py-postgresql's copyman): succeeds only if the producer
    /// reached its end, a receiver is left and every receiver completes with the producer's row
    /// count.
    ///
    /// # Errors
    /// [`CopyFail`] otherwise; every receiver's COPY is then failed and the producer cancelled.
    pub fn finish(mut self) -> Result<Summary, CopyFail> {
        self.end(Input::Finish)
    }

    /// Fails the copy with `reason`: nothing is completed on any receiver.
    pub fn abort(mut self, reason: &str) -> CopyFail {
        match self.end(Input::Abort {
            reason: reason.into(),
        }) {
            Err(fail) => fail,
            Ok(_) => unreachable!("an aborted copy fails"),
        }
    }

    /// The receivers still in the copy (`receivers` in py-postgresql's copyman).
    pub fn live_receivers(&self) -> Vec<ReceiverId> {
        self.manager.live_receivers().collect()
    }

    /// A receiver, by the id it has in faults (its position in the list given to `start`).
    pub fn receiver(&self, id: ReceiverId) -> Option<&(dyn Receiver + 'a)> {
        self.receivers.get(id.0).map(|r| &**r)
    }

    /// The producer.
    pub fn producer(&self) -> &(dyn Producer + 'a) {
        &*self.producer
    }

    /// Messages and payload bytes moved so far.
    pub fn totals(&self) -> (u64, u64) {
        self.manager.totals()
    }

    fn transmit(&mut self, receiver: ReceiverId, data: copyman_core::Data) {
        if let copyman_core::Data::PQv3(bytes) = &data
            && let Some(socket) = self.receivers[receiver.0].poll_socket()
        {
            let endpoint = EndpointId::Receiver(receiver);
            self.writes[receiver.0] = Some(Pending {
                data: bytes.clone(),
                written: 0,
                timer: self.timer(endpoint, socket),
            });
            self.advance_write(receiver.0);
            return;
        }
        let input = match self.receivers[receiver.0].transmit(&data) {
            Ok(()) => Input::Transmitted { receiver },
            Err(e) => Input::ReceiverError {
                receiver,
                error: self.stalled(EndpointId::Receiver(receiver), e.error),
                written: e.written,
            },
        };
        self.report(input);
    }

    /// Writes what receiver `r`'s socket takes of its pending transmit, and reports the
    /// transmit once it is all written or failed.
    fn advance_write(&mut self, r: usize) {
        let Some(mut pending) = self.writes[r].take() else {
            return;
        };
        let receiver = ReceiverId(r);
        loop {
            // The data, then what the receiver still holds of it (TLS records).
            let step = match pending.data.get(pending.written..) {
                Some(rest) if !rest.is_empty() => self.receivers[r].try_write(rest),
                _ => match self.receivers[r].try_flush() {
                    Ok(true) => break,
                    Ok(false) => Ok(0),
                    Err(error) => Err(error),
                },
            };
            match step {
                Ok(0) => {
                    self.writes[r] = Some(pending);
                    return;
                }
                Ok(n) => {
                    pending.written += n;
                    if let Some(timer) = &mut pending.timer {
                        timer.moved(Instant::now());
                    }
                }
                Err(error) => {
                    let error = self.stalled(EndpointId::Receiver(receiver), error);
                    self.report(Input::ReceiverError {
                        receiver,
                        error,
                        written: pending.written,
                    });
                    return;
                }
            }
        }
        self.report(Input::Transmitted { receiver });
    }

    /// Fails receiver `r` with `error`, counting what went out of a transmit under way.
    fn receiver_failed(&mut self, r: usize, error: BoxError) {
        let written = self.writes[r].take().map_or(0, |p| p.written);
        self.report(Input::ReceiverError {
            receiver: ReceiverId(r),
            error,
            written,
        });
    }

    /// Reads the producer without blocking, and reports its chunk, end or error once it has one.
    fn advance_read(&mut self) {
        // Eager once no receiver is busy: they wait for this chunk, hand over what there is.
        let eager = self.writes.iter().all(Option::is_none);
        let input = match self.producer.try_next_chunk(eager) {
            Ok(Poll::Pending) => {
                if let Some(reading) = &mut self.reading {
                    reading.eager = eager;
                }
                return;
            }
            Ok(Poll::Ready(Some(chunk))) => Input::ProducerData(chunk),
            Ok(Poll::Ready(None)) => Input::ProducerEnd {
                count: self.producer.count(),
            },
            Err(error) => Input::ProducerError(self.stalled(EndpointId::Producer, error)),
        };
        self.reading = None;
        self.report(input);
    }

    /// Waits until IO under way can move, moves it, and reports what completed (the manager
    /// said [`Output::Wait`]). A stall timeout bounds the wait: an endpoint whose bytes did not
    /// move for that long is reported stalled.
    fn wait_io(&mut self) {
        let idle = self.writes.iter().all(Option::is_none);
        if idle && self.reading.is_some_and(|r| !r.eager) {
            // The producer may hold a partly filled buffer: the receivers wait for it now.
            self.advance_read();
            if self.reading.is_none() {
                return;
            }
        }
        self.watches.clear();
        self.owners.clear();
        for (r, receiver) in self.receivers.iter().enumerate() {
            let Some(fd) = receiver.poll_socket().map(|s| s.fd) else {
                continue;
            };
            let events = if self.writes[r].is_some() {
                poll::READABLE | poll::WRITABLE
            } else if self.manager.is_live(ReceiverId(r)) {
                // Idle: only a server's message (its error) can come.
                poll::READABLE
            } else {
                continue;
            };
            self.watches.push(Watch::new(fd, events));
            self.owners.push(EndpointId::Receiver(ReceiverId(r)));
        }
        if self.reading.is_some()
            && let Some(fd) = self.producer.poll_socket().map(|s| s.fd)
        {
            self.watches.push(Watch::new(fd, poll::READABLE));
            self.owners.push(EndpointId::Producer);
        }
        assert!(
            self.reading.is_some() || !idle,
            "the manager waits only for IO this driver has under way"
        );
        // The wait ends at the first deadline of a transmit or read under way.
        let deadline = self
            .writes
            .iter()
            .flatten()
            .filter_map(|p| p.timer)
            .chain(self.reading.and_then(|r| r.timer))
            .map(|timer| timer.poll_timeout())
            .min();
        let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let ready = match poll::wait(&mut self.watches, timeout) {
            Ok(ready) => ready,
            Err(error) => {
                // poll(2) itself failed (out of memory): every endpoint under way fails with it.
                let message = error.to_string();
                for r in 0..self.writes.len() {
                    if self.writes[r].is_some() {
                        let error = std::io::Error::new(error.kind(), message.clone());
                        self.receiver_failed(r, Box::new(error));
                    }
                }
                if self.reading.take().is_some() {
                    self.report(Input::ProducerError(Box::new(error)));
                }
                return;
            }
        };
        self.polled = true;
        let now = Instant::now();
        for i in 0..self.watches.len() {
            let watch = self.watches[i];
            match self.owners[i] {
                _ if ready == 0 => {}
                EndpointId::Receiver(receiver) => {
                    let r = receiver.0;
                    if watch.readable()
                        && let Err(error) = self.receivers[r].read_server()
                    {
                        let error = self.stalled(EndpointId::Receiver(receiver), error);
                        self.receiver_failed(r, error);
                        continue;
                    }
                    if watch.writable()
                        && let Some(pending) = &mut self.writes[r]
                    {
                        if let Some(timer) = &mut pending.timer {
                            timer.moved(now);
                        }
                        self.advance_write(r);
                    }
                }
                EndpointId::Producer => {
                    if watch.readable()
                        && let Some(reading) = &mut self.reading
                    {
                        if let Some(timer) = &mut reading.timer {
                            timer.moved(now);
                        }
                        self.advance_read();
                    }
                }
                _ => {}
            }
        }
        // Whatever is still under way and moved nothing for its timeout has timed out.
        let expired = |timer: Option<StallTimer>| timer.and_then(|t| t.handle_timeout(now).err());
        for r in 0..self.writes.len() {
            if let Some(stalled) = self.writes[r].as_ref().and_then(|p| expired(p.timer)) {
                self.receiver_failed(r, Box::new(stalled));
            }
        }
        if let Some(stalled) = self.reading.and_then(|r| expired(r.timer)) {
            self.reading = None;
            self.report(Input::ProducerError(Box::new(stalled)));
        }
    }

    /// Reads, without waiting, what the servers of idle live receivers said: once per cycle when
    /// no `poll(2)` did it, so a server's error is a fault within a cycle even when every write
    /// goes through at once.
    fn check_servers(&mut self) {
        if std::mem::take(&mut self.polled) {
            return;
        }
        self.watches.clear();
        self.owners.clear();
        for (r, receiver) in self.receivers.iter().enumerate() {
            if let Some(fd) = receiver.poll_socket().map(|s| s.fd)
                && self.writes[r].is_none()
                && self.manager.is_live(ReceiverId(r))
            {
                self.watches.push(Watch::new(fd, poll::READABLE));
                self.owners.push(EndpointId::Receiver(ReceiverId(r)));
            }
        }
        if self.watches.is_empty()
            || !matches!(poll::wait(&mut self.watches, Some(Duration::ZERO)), Ok(n) if n > 0)
        {
            return;
        }
        for i in 0..self.watches.len() {
            if let (true, EndpointId::Receiver(receiver)) =
                (self.watches[i].readable(), self.owners[i])
                && let Err(error) = self.receivers[receiver.0].read_server()
            {
                let error = self.stalled(EndpointId::Receiver(receiver), error);
                self.receiver_failed(receiver.0, error);
            }
        }
    }

    /// The stall timer of an IO starting now on `socket`: its own timeout, else the copy's stall
    /// timeout, if either is set.
    fn timer(&self, endpoint: EndpointId, socket: PollSocket) -> Option<StallTimer> {
        let limit = socket.timeout.or(self.options.stall_timeout)?;
        Some(StallTimer::new(endpoint, limit, Instant::now()))
    }

    /// The stall rule (copyman-core's) applied to an endpoint's error.
    fn stalled(&self, endpoint: EndpointId, error: BoxError) -> BoxError {
        stall::classify(error, endpoint, self.options.stall_timeout)
    }

    fn report(&mut self, input: Input) {
        self.manager
            .handle_input(input)
            .expect("the blocking driver reports exactly what the manager asked for");
    }

    /// Carries out one order of the manager.
    fn carry_out(&mut self, output: Output) {
        match output {
            Output::ReadProducer => {
                if let Some(socket) = self.producer.poll_socket() {
                    self.reading = Some(Reading {
                        timer: self.timer(EndpointId::Producer, socket),
                        eager: false,
                    });
                    self.advance_read();
                    return;
                }
                let input = match self.producer.next_chunk() {
                    Ok(Some(chunk)) => Input::ProducerData(chunk),
                    Ok(None) => Input::ProducerEnd {
                        count: self.producer.count(),
                    },
                    Err(error) => Input::ProducerError(self.stalled(EndpointId::Producer, error)),
                };
                self.report(input);
            }
            Output::Transmit { receiver, data } => self.transmit(receiver, data),
            Output::Complete { receiver } => {
                let result = self.receivers[receiver.0].complete();
                self.report(Input::ReceiverDone { receiver, result });
            }
            Output::Fail {
                receiver,
                reason,
                completion,
            } => {
                let result = self.receivers[receiver.0]
                    .fail(&reason, &completion)
                    .map(|()| None)
                    .map_err(|e| self.stalled(EndpointId::Receiver(receiver), e));
                self.report(Input::ReceiverDone { receiver, result });
            }
            Output::CancelProducer => {
                let result = self.producer.cancel();
                self.report(Input::ProducerDone { result });
            }
            other => unreachable!("not an order: {other:?}"),
        }
    }

    /// Ends the copy with `input` (finish or abort) and drives it to its result.
    fn end(&mut self, input: Input) -> Result<Summary, CopyFail> {
        if let Some(result) = self.result.clone() {
            return result;
        }
        self.report(input);
        loop {
            match self.manager.poll_output() {
                Output::Event(Event::Finished(result)) => {
                    self.result = Some(result.clone());
                    if self.options.stall_timeout.is_some() {
                        // The copy is over: its endpoints' connections wait for ever again. A
                        // connection that cannot be reset is broken, which its next use says.
                        for receiver in &mut self.receivers {
                            let _ = receiver.set_stall_timeout(None);
                        }
                        let _ = self.producer.set_stall_timeout(None);
                    }
                    return result;
                }
                // Progress and faults that arrive while ending are moot: the result says it all.
                Output::Event(_) => {}
                // Transmits and a read under way end before the manager decides.
                Output::Wait => self.wait_io(),
                Output::EndOfCopy | Output::Done => {
                    unreachable!("a copy that is ending is never at its end of copy")
                }
                order => self.carry_out(order),
            }
        }
    }
}

impl Iterator for CopyManager<'_> {
    type Item = Result<(u64, u64), Fault>;

    /// One cycle: read a chunk, transmit it to every receiver, report `(messages, bytes)`.
    /// `None` once the producer reached its end (or no receiver is left).
    fn next(&mut self) -> Option<Self::Item> {
        if self.result.is_some() {
            return None;
        }
        loop {
            let output = match self.stashed.pop_front() {
                Some(event) => Output::Event(event),
                None => self.manager.poll_output(),
            };
            match output {
                Output::Event(Event::Progress { messages, bytes }) => {
                    self.check_servers();
                    return Some(Ok((messages, bytes)));
                }
                Output::Event(Event::ReceiverFault(fault)) => {
                    return Some(Err(Fault::Receiver(fault)));
                }
                Output::Event(Event::ProducerFault(fault)) => {
                    return Some(Err(Fault::Producer(fault)));
                }
                Output::Event(_) => {}
                Output::EndOfCopy | Output::Done => return None,
                Output::Wait => self.wait_io(),
                order => self.carry_out(order),
            }
        }
    }
}

impl Drop for CopyManager<'_> {
    fn drop(&mut self) {
        if self.result.is_none() {
            // Nothing half-copied may be committed: fail every receiver's COPY.
            let _ = self.end(Input::Abort {
                reason: "copy dropped before it finished".into(),
            });
        }
    }
}

/// Copies everything `producer` produces to every receiver (`transfer` in py-postgresql's copyman),
/// returning the totals `(messages, bytes)`.
///
/// ```no_run
/// use copyman_sync::{Connection, StatementProducer, StatementReceiver, transfer};
///
/// let mut source = Connection::connect_str("host=127.0.0.1 user=postgres")?;
/// let mut destination = Connection::connect_str("host=127.0.0.2 user=postgres")?;
/// destination.execute("CREATE TABLE IF NOT EXISTS t (i int8)")?;
/// let (rows, bytes) = transfer(
///     StatementProducer::new(&mut source, "COPY (SELECT i FROM generate_series(1, 1000000) AS g(i)) TO STDOUT"),
///     vec![Box::new(StatementReceiver::new(&mut destination, "COPY t FROM STDIN"))],
/// )?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`CopyFail`] if anything went wrong: no receiver's COPY is completed then, unless a
/// receiver refused its completion after others' were accepted (see "All or nothing across
/// destinations" on [`CopyManager`]).
pub fn transfer<'a>(
    producer: impl Producer + 'a,
    receivers: Vec<Box<dyn Receiver + 'a>>,
) -> Result<(u64, u64), CopyFail> {
    let summary = CopyManager::start(producer, receivers)?.run()?;
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

    /// Starts the copy, to iterate over its progress, reconcile and finish it; see
    /// [`CopyManager::start`].
    ///
    /// # Errors
    /// As [`CopyManager::start`].
    pub fn start(self) -> Result<CopyManager<'a>, CopyFail> {
        CopyManager::start_boxed(self.producer, self.receivers, self.options)
    }

    /// Starts and runs the copy to its end: the [`Summary`] (rows, bytes, each receiver's
    /// outcome), or the [`CopyFail`]; see [`CopyManager::run`].
    ///
    /// # Errors
    /// As [`CopyManager::start`] and [`CopyManager::run`].
    pub fn run(self) -> Result<Summary, CopyFail> {
        self.start()?.run()
    }
}
