//! The blocking driver of copyman-core's [`CopyRun`](copyman_core::run::CopyRun): `CopyManager` in
//! py-postgresql's copyman and `transfer`.

use std::fmt;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use copyman_core::manager::{Options, ReconcileError};
use copyman_core::run::{CopyRun, Order, Report, Step};
use copyman_core::stall::{EndpointId, StallTimer, TRY_WRITE_EVERY};
use copyman_core::{BoxError, CopyFail, Fault, Input, ReceiverId, Summary};

use crate::interrupt::Interrupter;
use crate::poll::{self, Watch};
use crate::{PollSocket, Producer, Receiver};

/// Moves COPY data from one producer to many receivers, one cycle at a time.
///
/// Every decision (faults, reconcile, realignment, finishing or failing) is copyman-core's
/// [`Manager`](copyman_core::Manager), driven by its [`CopyRun`](copyman_core::run::CopyRun); this
/// type carries out their orders on blocking endpoints. Iterate it for per-cycle
/// progress (`for n_msgs, n_bytes in copy` in py-postgresql's copyman), then
/// [`finish`](CopyManager::finish) it.
///
/// Endpoints it multiplexes with `poll(2)` (those with a [`Receiver::poll_socket`] /
/// [`Producer::poll_socket`]: raw endpoints over TCP, TLS or Unix sockets) stall
/// ([`Options::stall_timeout`](crate::Options)) when no byte moves on them for the timeout.
/// Endpoints written or read with blocking calls (in-process ones, and raw ones outside the
/// multiplexed path) take the timeout through [`Receiver::set_stall_timeout`] /
/// [`Producer::set_stall_timeout`] (raw ones bound each of their `poll(2)` waits with it for the
/// copy and clear it when it ends).
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
///     // CopyData messages (rows, for text from a server) and their bytes this cycle.
///     println!("{messages} messages, {bytes} bytes");
/// }
/// let summary = copy.finish()?;
/// # drop(summary);
/// destination.execute("COMMIT")?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # One receiver per table
///
/// Two receivers whose COPYs write one table (two connections to one database) wait on each
/// other as soon as their rows meet in a unique index — the second waits for the first's
/// transaction, which waits for this copy — and without one every row is stored twice. The
/// library does not ask the servers who they are (the `copyman` command does, and refuses a
/// database given twice): give each table one receiver, and set
/// [`Options::stall_timeout`](crate::Options::stall_timeout) to bound any wait.
///
/// A receiver on the producer's own server waits the same way where its COPY needs a lock the
/// producer's transaction holds (the producer's session took `LOCK TABLE … IN SHARE MODE`, or
/// its `COPY (DELETE … RETURNING *) TO STDOUT` deletes rows the receiver's inserts meet in a
/// unique index): the receiver's COPY never starts, the producer's waits for the copy, and
/// nothing is said. The `copyman` command asks the server who blocks whom (`pg_blocking_pids`)
/// and fails such a copy at once; here only the stall timeout ends it.
///
/// # All or nothing across destinations
///
/// A copy that fails before its end completes no receiver's COPY. A failure *at* the end is
/// different: each receiver's COPY completes when its server accepts CopyDone, and a server may
/// refuse it only then (a constraint checked at the end, a deferred trigger, a row the server had
/// not parsed yet) after other receivers' servers accepted theirs. In autocommit those COPYs are
/// committed, and the copy still fails. (Receivers without a server — a file, a writer, a
/// callback — complete first, before any server's COPY ends: one of them failing there fails
/// every server's COPY, which then commits nothing. A `ClientReceiver` has a server, and
/// completes with the others that do; its client crate reads nothing from the server while it
/// writes, so its server's error for a row — a constraint, a trigger — is known only at that
/// end, where a receiver beside it in autocommit may have committed every row.) For
/// all-or-nothing, copy inside a transaction on every receiver (`BEGIN` before, `COMMIT` only
/// once the copy succeeded, `ROLLBACK` otherwise), as the `copyman` command does; only
/// two-phase commit could do better.
///
/// Dropping a copy that was not finished fails it: nothing is completed on any receiver. The drop
/// waits for each server to answer its CopyFail, but not for one that stays silent for
/// [`INTERRUPT_GRACE`](crate::INTERRUPT_GRACE) (a frozen server, a lost path): its connection is
/// closed, which aborts that COPY too. [`abort`](Self::abort) and [`finish`](Self::finish)
/// wait as any call does: bounded by [`Options::stall_timeout`](crate::Options::stall_timeout),
/// or by the copy's [`interrupter`](Self::interrupter) from another thread.
///
/// # How it does IO
///
/// Receivers and a producer that have a socket to poll ([`Receiver::poll_socket`],
/// [`Producer::poll_socket`]: the raw endpoints over TCP, TLS or Unix sockets) are driven without
/// blocking: each transmit writes what its socket takes, and when nothing more can move the
/// driver waits with one `poll(2)` on every socket that has bytes pending (writable), every
/// live receiver (readable: a server's error) and the producer (readable), so each destination
/// is fed as fast as it drains and the next read overlaps the writes of the last when the
/// manager's window lets it (2 chunks or more; 4 by default, the same in copyman-async): memory
/// stays bounded by a few buffers whatever the data size.
/// Other endpoints are carried out with blocking calls, one after another.
pub struct CopyManager<'a> {
    core: CopyRun,
    options: Options,
    producer: Box<dyn Producer + 'a>,
    receivers: Vec<Box<dyn Receiver + 'a>>,
    /// The endpoints' sockets carry the stall timeout, to clear once the copy is over.
    armed: bool,
    /// Transmits under way without blocking, by receiver.
    writes: Vec<Option<Pending>>,
    /// A producer read under way without blocking.
    reading: Option<Reading>,
    /// Receivers whose CopyDone is out and whose answer is waited for next: every receiver's
    /// COPY ends at once, their servers finish side by side (not one after another).
    ending: Vec<ReceiverId>,
    /// Receivers' sockets were polled for readability since the last producer read.
    polled: bool,
    /// Reused for each `poll(2)`: the sockets and whose they are.
    watches: Vec<Watch>,
    owners: Vec<EndpointId>,
    /// Its [`Interrupter`], once asked for (or given to an endpoint's connection): its
    /// `interrupt` wakes the copy's `poll(2)`.
    interrupt: Option<Interrupter>,
    /// The interrupter is one an endpoint's connection was given, not the copy's own.
    adopted: bool,
}

/// A transmit under way: its data, how much went out, core's stall timer (the socket's
/// timeout, else the copy's stall timeout), reset by every byte the socket takes, and when its
/// socket was last tried ([`TRY_WRITE_EVERY`]).
#[derive(Debug)]
struct Pending {
    data: Bytes,
    written: usize,
    timer: Option<StallTimer>,
    tried: Instant,
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
            .field("core", &self.core)
            .finish_non_exhaustive()
    }
}

impl<'a> CopyManager<'a> {
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
    /// // The source's `COPY n` (a chunk producer's rows as its receivers read them).
    /// println!("{:?} rows", summary.producer_count);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder(producer: impl Producer + 'a) -> CopyBuilder<'a> {
        CopyBuilder::new(producer)
    }

    fn start_boxed(
        mut producer: Box<dyn Producer + 'a>,
        receivers: Vec<Box<dyn Receiver + 'a>>,
        options: Options,
    ) -> Result<Self, CopyFail> {
        let core =
            copyman_core::copy_run_for!(producer, receivers, options, crate::Error::diagnose);
        let count = receivers.len();
        let mut copy = Self {
            core,
            options,
            producer,
            receivers,
            armed: false,
            writes: (0..count).map(|_| None).collect(),
            reading: None,
            ending: Vec::new(),
            polled: false,
            watches: Vec::with_capacity(count + 2),
            owners: Vec::with_capacity(count + 1),
            interrupt: None,
            adopted: false,
        };
        // An interrupter given to an endpoint's connection interrupts the copy too (the one-call
        // `run` and `transfer` hand out no copy to ask for its own).
        let given = copy.producer.interrupter().or_else(|| {
            copy.receivers
                .iter()
                .find_map(|receiver| receiver.interrupter())
        });
        if let Some(interrupter) = given {
            copy.adopt(interrupter);
            copy.adopted = true;
        }
        copy.drive(CopyRun::poll_started)?;
        Ok(copy)
    }

    /// A receiver, by the id it has in faults (its position in the list given to `start`).
    pub fn receiver(&self, id: ReceiverId) -> Option<&(dyn Receiver + 'a)> {
        self.receivers.get(id.0).map(|r| &**r)
    }

    /// The producer.
    pub fn producer(&self) -> &(dyn Producer + 'a) {
        &*self.producer
    }

    /// A handle that interrupts this copy from another thread ([`Interrupter`]); every call
    /// gives a handle of the same interruption.
    ///
    /// # Errors
    /// The socket pair that wakes the copy's `poll(2)` could not be made (no file descriptors
    /// left).
    pub fn interrupter(&mut self) -> std::io::Result<Interrupter> {
        if let Some(interrupter) = &self.interrupt {
            return Ok(interrupter.clone());
        }
        let interrupter = Interrupter::new()?;
        self.adopt(interrupter.clone());
        Ok(interrupter)
    }

    /// Takes `interrupter` as the copy's, lent to the receivers' connections that have none
    /// (the blocking waits of an abort too: a frozen receiver's CopyFail).
    fn adopt(&mut self, interrupter: Interrupter) {
        for receiver in &mut self.receivers {
            receiver.share_interrupter(&interrupter);
        }
        self.interrupt = Some(interrupter);
    }

    /// Once the copy is interrupted: every IO under way gets core's timer
    /// ([`StallTimer::interrupted`]: [`INTERRUPT_GRACE`](crate::INTERRUPT_GRACE) from now, or
    /// its own stall timer if that ends sooner; one that moves resets it, as a stall timeout's);
    /// returns whether it is interrupted.
    fn interrupt_timers(&mut self, now: Instant) -> bool {
        if !self
            .interrupt
            .as_ref()
            .is_some_and(Interrupter::is_interrupted)
        {
            return false;
        }
        for (r, pending) in self.writes.iter_mut().enumerate() {
            if let Some(pending) = pending {
                let endpoint = EndpointId::Receiver(ReceiverId(r));
                pending.timer = Some(StallTimer::interrupted(pending.timer, endpoint, now));
            }
        }
        if let Some(reading) = &mut self.reading {
            let own = reading.timer;
            reading.timer = Some(StallTimer::interrupted(own, EndpointId::Producer, now));
        }
        true
    }

    /// Carries out core's orders for one call until it has what the call waits for.
    fn drive<T>(&mut self, mut poll: impl FnMut(&mut CopyRun) -> Step<T>) -> T {
        loop {
            match poll(&mut self.core) {
                Step::Order(order) => self.carry_out(order),
                Step::Wait => self.wait_io(),
                Step::Ready(done) => {
                    if self.armed && self.core.result().is_some() {
                        // The copy is over: its endpoints' connections wait for ever again. A
                        // connection that cannot be reset is broken, which its next use says.
                        self.armed = false;
                        for receiver in &mut self.receivers {
                            let _ = receiver.set_stall_timeout(None);
                        }
                        let _ = self.producer.set_stall_timeout(None);
                    }
                    return done;
                }
            }
        }
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
                tried: Instant::now(),
            });
            self.advance_write(receiver.0);
            return;
        }
        let input = match self.receivers[receiver.0].transmit(&data) {
            Ok(()) => Input::Transmitted { receiver },
            Err(e) => Input::ReceiverError {
                receiver,
                error: e.error,
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
        pending.tried = Instant::now();
        loop {
            // Records of data taken before that went out: alive, however slow (lib45 F1: a
            // slow TLS destination's flushes moved nothing, and it was said stalled).
            let records = self.receivers[r].records_sent();
            // The data, then what the receiver still holds of it (TLS records).
            let step = match pending.data.get(pending.written..) {
                Some(rest) if !rest.is_empty() => self.receivers[r].try_write(rest),
                _ => match self.receivers[r].try_flush() {
                    Ok(true) => break,
                    Ok(false) => Ok(0),
                    Err(error) => Err(error),
                },
            };
            if self.receivers[r].records_sent() != records
                && let Some(timer) = &mut pending.timer
            {
                timer.moved(Instant::now());
            }
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
        let result = match self.producer.try_next_chunk(eager) {
            Ok(Poll::Pending) => {
                if let Some(reading) = &mut self.reading {
                    reading.eager = eager;
                }
                return;
            }
            Ok(Poll::Ready(chunk)) => Ok(chunk),
            Err(error) => Err(error),
        };
        self.reading = None;
        self.report(Input::read(result, || self.producer.count()));
    }

    /// Waits until IO under way can move, moves it, and reports what completed (the manager
    /// said [`Output::Wait`]). A stall timeout bounds the wait: an endpoint whose bytes did not
    /// move for that long is reported stalled.
    fn wait_io(&mut self) {
        // Every receiver's CopyDone is out: their answers, one after another, cost the slowest.
        if !self.ending.is_empty() {
            for receiver in std::mem::take(&mut self.ending) {
                let result = self.receivers[receiver.0].complete();
                self.report(Input::ReceiverDone { receiver, result });
            }
            return;
        }
        if self.reading.is_some()
            && self.producer.can_abandon_read()
            && self.core.manager().abandons_read()
        {
            // The copy is ending: the read that is out is left rather than waited for (a source
            // may give nothing for ever), so the receivers' COPYs fail and the copy ends now.
            self.reading = None;
            self.report(Input::ReadAbandoned);
            return;
        }
        let idle = self.writes.iter().all(Option::is_none);
        if idle && self.reading.is_some_and(|r| !r.eager) {
            // The producer may hold a partly filled buffer: the receivers wait for it now.
            self.advance_read();
            if self.reading.is_none() {
                return;
            }
        }
        self.watch_receivers(true);
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
        let interrupted = self.interrupt_timers(Instant::now());
        // Woken by its interrupter (the owners list stops before it).
        if let Some(interrupter) = &self.interrupt
            && !interrupted
        {
            self.watches.push(interrupter.watch());
        }
        // The wait ends at the first deadline of a transmit or read under way, or when a
        // transmit's socket is to be tried again.
        let deadline = self
            .writes
            .iter()
            .flatten()
            .filter_map(|p| p.timer)
            .chain(self.reading.and_then(|r| r.timer))
            .map(|timer| timer.poll_timeout())
            .chain(
                self.writes
                    .iter()
                    .flatten()
                    .map(|p| p.tried + TRY_WRITE_EVERY),
            )
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
        self.move_ready(ready, now);
        // A socket that never said it is writable may take bytes all the same.
        for r in 0..self.writes.len() {
            if self.writes[r]
                .as_ref()
                .is_some_and(|p| now >= p.tried + TRY_WRITE_EVERY)
            {
                self.advance_write(r);
            }
        }
        let now = Instant::now();
        // Interrupted now: its grace starts (the next wait is bounded by it).
        let interrupted = self.interrupt_timers(now) || interrupted;
        // Whatever is still under way and moved nothing for its timeout has timed out. After an
        // interrupt it is closed, whatever the options: the copy is being given up, and a
        // CopyFail would wait on the same silent socket.
        let close = self.options.close_stalled || interrupted;
        let expired = |timer: Option<StallTimer>| timer.and_then(|t| t.handle_timeout(now).err());
        for r in 0..self.writes.len() {
            let heard = self.core.heard(EndpointId::Receiver(ReceiverId(r)));
            if let Some(timer) = self.writes[r].as_mut().and_then(|p| p.timer.as_mut()) {
                timer.hear(heard, now);
            }
            if let Some(stalled) = self.writes[r].as_ref().and_then(|p| expired(p.timer)) {
                // Given up after an interrupt: said so, not as a stall timeout.
                match (close, stalled.interrupted) {
                    (true, true) => self.receivers[r].given_up(),
                    (true, false) => self.receivers[r].stalled(),
                    (false, _) => {}
                }
                self.receiver_failed(r, Box::new(stalled));
            }
        }
        // Core's rule: a read is not timed while transmits are under way.
        let busy = self.writes.iter().any(Option::is_some);
        if let Some(timer) = self.reading.as_mut().and_then(|r| r.timer.as_mut()) {
            timer.held_by_transmits(busy, now);
        }
        if let Some(stalled) = self.reading.and_then(|r| expired(r.timer)) {
            self.reading = None;
            match (close, stalled.interrupted) {
                (true, true) => self.producer.given_up(),
                (true, false) => self.producer.stalled(),
                (false, _) => {}
            }
            self.report(Input::ProducerError(Box::new(stalled)));
        }
    }

    /// Fills the watch list with the receivers' sockets: those with a transmit under way to be
    /// written and read (with `under_way`), the idle live ones to be read (only a server's
    /// message, its error, can come).
    fn watch_receivers(&mut self, under_way: bool) {
        self.watches.clear();
        self.owners.clear();
        for (r, receiver) in self.receivers.iter().enumerate() {
            let Some(fd) = receiver.poll_socket().map(|s| s.fd) else {
                continue;
            };
            let events = match self.writes[r] {
                Some(_) if under_way => poll::READABLE | poll::WRITABLE,
                None if self.core.manager().is_live(ReceiverId(r)) => poll::READABLE,
                _ => continue,
            };
            self.watches.push(Watch::new(fd, events));
            self.owners.push(EndpointId::Receiver(ReceiverId(r)));
        }
    }

    /// Moves the IO of the sockets `poll(2)` found ready (`ready` of them, at `now`): reads
    /// what servers said, writes what sockets take, reads the producer.
    fn move_ready(&mut self, ready: usize, now: Instant) {
        if ready == 0 {
            return;
        }
        // (A watch past the owners' is the interrupter's: seen by `interrupt_timers`.)
        for i in 0..self.owners.len() {
            let watch = self.watches[i];
            match self.owners[i] {
                EndpointId::Receiver(receiver) => {
                    let r = receiver.0;
                    if watch.readable()
                        && let Err(error) = self.receivers[r].read_server()
                    {
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
    }

    /// Reads, without waiting, what the servers of idle live receivers said: once per cycle when
    /// no `poll(2)` did it, so a server's error is a fault within a cycle even when every write
    /// goes through at once.
    fn check_servers(&mut self) {
        if std::mem::take(&mut self.polled) {
            return;
        }
        self.watch_receivers(false);
        if !self.watches.is_empty()
            && let Ok(ready) = poll::wait(&mut self.watches, Some(Duration::ZERO))
        {
            self.move_ready(ready, Instant::now());
        }
    }

    /// The stall timer of an IO starting now on `socket`: its own timeout, else the copy's stall
    /// timeout, if either is set.
    fn timer(&self, endpoint: EndpointId, socket: PollSocket) -> Option<StallTimer> {
        let limit = socket.timeout.or(self.options.stall_limit())?;
        let mut timer = StallTimer::new(endpoint, limit, Instant::now());
        timer.hear(self.core.heard(endpoint), Instant::now());
        Some(timer)
    }

    fn report(&mut self, report: impl Into<Report>) {
        self.core.report(report);
    }

    /// Carries out one order of core's.
    fn carry_out(&mut self, order: Order) {
        let stall = self.options.stall_limit();
        match order {
            Order::StartReceiver(id) => {
                let receiver = &mut **self.receivers.get_mut(id.0).expect("a receiver's order");
                let result = start_endpoint(
                    receiver,
                    stall,
                    &mut self.armed,
                    |r| r.start(),
                    |r, t| r.set_stall_timeout(t),
                );
                let result = result.map(|()| receiver.format());
                self.report(Report::started(EndpointId::Receiver(id), result));
            }
            Order::StartProducer { source_frames } => {
                let producer = &mut *self.producer;
                let result = start_endpoint(
                    producer,
                    stall,
                    &mut self.armed,
                    |p| p.start(source_frames),
                    |p, t| p.set_stall_timeout(t),
                );
                let result = result.map(|()| producer.format());
                self.report(Report::started(EndpointId::Producer, result));
            }
            Order::ReadProducer => {
                // Once a cycle, what the servers of idle receivers said is read first.
                self.check_servers();
                if let Some(socket) = self.producer.poll_socket() {
                    self.reading = Some(Reading {
                        timer: self.timer(EndpointId::Producer, socket),
                        eager: false,
                    });
                    self.advance_read();
                    return;
                }
                let result = self.producer.next_chunk();
                self.report(Input::read(result, || self.producer.count()));
            }
            Order::Transmit { receiver, data } => self.transmit(receiver, data),
            Order::Complete { receiver } => match self.receivers[receiver.0].begin_complete() {
                // Its answer is waited for with the others' (`wait_io`).
                Ok(true) => self.ending.push(receiver),
                Ok(false) => {
                    let result = self.receivers[receiver.0].complete();
                    self.report(Input::ReceiverDone { receiver, result });
                }
                Err(e) => self.report(Input::ReceiverDone {
                    receiver,
                    result: Err(e),
                }),
            },
            Order::Fail {
                receiver,
                reason,
                completion,
            } => {
                let result = self.receivers[receiver.0].fail(&reason, &completion);
                let result = result.map(|()| None);
                self.report(Input::ReceiverDone { receiver, result });
            }
            Order::CancelProducer => {
                let result = self.producer.cancel();
                self.report(Input::ProducerDone { result });
            }
            other => unreachable!("an order this driver does not know: {other:?}"),
        }
    }
}

/// An endpoint's stall timeout armed (noted in `armed`) when the copy has one, then its start:
/// the wait for its server's CopyIn/CopyOutResponse (a table another session locked, a source
/// whose first rows take long) is bounded too, a timeout core takes for the endpoint's stall.
fn start_endpoint<E: ?Sized>(
    endpoint: &mut E,
    stall: Option<Duration>,
    armed: &mut bool,
    start: impl FnOnce(&mut E) -> Result<(), BoxError>,
    arm: impl FnOnce(&mut E, Option<Duration>) -> Result<(), BoxError>,
) -> Result<(), BoxError> {
    if stall.is_some() {
        *armed = true;
        arm(endpoint, stall)?;
    }
    start(endpoint)
}

impl Iterator for CopyManager<'_> {
    type Item = Result<(u64, u64), Fault>;

    /// One cycle: read a chunk, transmit it to every receiver, report `(messages, bytes)`.
    /// `None` once the producer reached its end (or no receiver is left).
    fn next(&mut self) -> Option<Self::Item> {
        self.drive(CopyRun::poll_progress)
    }
}

impl Drop for CopyManager<'_> {
    fn drop(&mut self) {
        // Unwinding from a panic (an endpoint's callback, mid-order): the run cannot be driven
        // on, its order's report never came. Each endpoint fails its own COPY as it is dropped
        // next (core's abandon rule), so nothing half-copied is committed all the same.
        if std::thread::panicking() {
            return;
        }
        if self.core.result().is_none() {
            // Nothing half-copied may be committed: fail every receiver's COPY.
            self.core.abort("copy dropped before it finished");
            // A drop must not block without bound (an early `?` out of a loop over the copy,
            // while a receiver's server is frozen): it gives the copy up as an interrupt does,
            // a server that says nothing for `INTERRUPT_GRACE` has its connection closed (it
            // aborts the COPY on that), one that answers keeps it usable.
            // (Not one an endpoint's connection was given, which its owner may share with
            // more than this copy: an interrupter of the drop's own then.)
            let own = match self.adopted {
                true => Interrupter::new().ok(),
                false => self.interrupter().ok(),
            };
            let Some(interrupter) = own else {
                let _ = self.drive(CopyRun::poll_finished);
                return;
            };
            interrupter.interrupt();
            self.interrupt = Some(interrupter.clone());
            // The endpoints' own waits (a frozen source's drain after its cancel, a receiver's
            // CopyFail) are cut by it too, whatever their connections were given: lent for the
            // drop, then given back.
            let had = self.producer.swap_interrupter(Some(interrupter.clone()));
            let had_each: Vec<Option<Interrupter>> = (self.receivers.iter_mut())
                .map(|r| r.swap_interrupter(Some(interrupter.clone())))
                .collect();
            let _ = self.drive(CopyRun::poll_finished);
            self.producer.swap_interrupter(had);
            for (receiver, had) in self.receivers.iter_mut().zip(had_each) {
                receiver.swap_interrupter(had);
            }
        }
    }
}

/// Copies everything `producer` produces to every receiver (`transfer` in py-postgresql's copyman),
/// returning the totals `(messages, bytes)`: CopyData messages, one per row in text and CSV from
/// a server plus a CSV header line, and binary data's header-and-trailer message — not rows
/// ([`Summary::messages`]).
///
/// ```no_run
/// use copyman_sync::{Connection, StatementProducer, StatementReceiver, transfer};
///
/// let mut source = Connection::connect_str("host=127.0.0.1 user=postgres")?;
/// let mut destination = Connection::connect_str("host=127.0.0.2 user=postgres")?;
/// destination.execute("CREATE TABLE IF NOT EXISTS t (i int8)")?;
/// let (messages, bytes) = transfer(
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

copyman_core::copy_api!();
