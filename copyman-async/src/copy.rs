//! The tokio driver of copyman-core's [`CopyRun`](copyman_core::run::CopyRun): `CopyManager` in
//! py-postgresql's copyman and `transfer`, with concurrent fan-out.

use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use copyman_core::manager::{Options, ReconcileError};
use copyman_core::run::{CopyRun, Order, Report, Step};
use copyman_core::stall::{EndpointId, StallTimer, Stalled, Written};
use copyman_core::{BoxError, CopyFail, Fault, Input, ReceiverId, Summary};
use futures_util::stream::{FuturesUnordered, Stream, StreamExt};

use crate::{Producer, Receiver};

/// How many IOs may end in one poll of a copy before it yields to the runtime
/// ([`CopyManager::poll_drive`]); tokio's own budget per task is 128 operations.
const IO_PER_POLL: u32 = 128;

/// How long one poll of a copy may run IOs that end at once before it yields, however few: a
/// receiver of the caller's that blocks in each call (tens of milliseconds) would otherwise
/// hold the runtime for 128 of them.
const TIME_PER_POLL: Duration = Duration::from_millis(10);

/// An endpoint handed back by the IO that used it.
enum Endpoint<'a> {
    Producer(Box<dyn Producer + 'a>),
    Receiver(ReceiverId, Box<dyn Receiver + 'a>),
}

/// The result of one order: the endpoint it used and what to tell core.
struct Done<'a> {
    endpoint: Endpoint<'a>,
    report: Report,
}

/// One order in flight. It owns its endpoint while it runs, so no borrow of the copy is held
/// across an await, and dropping the copy drops it with its endpoint.
type Io<'a> = Pin<Box<dyn Future<Output = Done<'a>> + Send + 'a>>;

/// Moves COPY data from one producer to many receivers, concurrently.
///
/// Every decision (faults, reconcile, realignment, finishing or failing) is copyman-core's
/// [`Manager`](copyman_core::Manager), driven by its [`CopyRun`](copyman_core::run::CopyRun); this
/// type carries out their orders on async endpoints. Writes to every receiver run
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
///     // CopyData messages (rows, for text from a server) and their bytes this cycle.
///     println!("{messages} messages, {bytes} bytes");
/// }
/// let summary = copy.finish().await?;
/// # drop(summary);
/// destination.execute("COMMIT").await?;
/// # Ok(()) }
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
///   (an idle receiver's does) the server fails the COPY and the
///   [`Connection`](crate::Connection) stays usable: its next call first reads the server's
///   answer. If the socket would block (its buffers full: a destination slower than the source
///   usually has them so, mid-stream), or a CopyDone/CopyFail was left half written, or its COPY
///   statement went out and the server has not started it yet (waiting for a lock), the socket
///   is closed instead: the server aborts the COPY and rolls back the transaction
///   around it, and the `Connection` fails every later call with [`Error::Closed`](crate::Error::Closed) (connect
///   again). Nothing commits either way — with one exception: a drop *during* `finish`, after
///   that receiver's CopyDone went out whole, cannot take the commit back (as with any client
///   that disappears after sending a commit): once the `Connection`'s next call has read its
///   answer, [`Connection::take_abandoned`](crate::Connection::take_abandoned) says what it
///   was (its `COPY n`, or the server's error).
/// * [`StatementProducer`](crate::StatementProducer) in its COPY: its session switches to
///   draining and a cancel request is sent from a task spawned on the current tokio runtime;
///   the `Connection`'s next call waits for that cancel and reads (discarding) the rest of the
///   COPY first, so it stays usable. Until that call, a server blocked writing to the full
///   socket may not act on the cancel: its COPY, transaction and snapshot stay open, so use the
///   `Connection` (or drop it) soon after a dropped copy. With no tokio runtime at hand the socket is closed instead
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
    core: CopyRun,
    options: Options,
    /// `None` while an order of the producer is in flight.
    producer: Option<Box<dyn Producer + 'a>>,
    /// A receiver is `None` while an order of it is in flight.
    receivers: Vec<Option<Box<dyn Receiver + 'a>>>,
    in_flight: FuturesUnordered<Io<'a>>,
    /// The producer's read while one is out, apart from the other IO so that it can be left
    /// (its flag: when the producer can leave a read, [`Producer::can_abandon_read`], it does).
    reading: Option<(Io<'a>, Arc<AtomicBool>)>,
}

impl fmt::Debug for CopyManager<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CopyManager")
            .field("core", &self.core)
            .field("options", &self.options)
            .field("in_flight", &self.in_flight.len())
            .finish_non_exhaustive()
    }
}

impl<'a> CopyManager<'a> {
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
    /// // The source's `COPY n` (a chunk producer's rows as its receivers read them).
    /// println!("{:?} rows", summary.producer_count);
    /// # Ok(()) }
    /// ```
    pub fn builder(producer: impl Producer + 'a) -> CopyBuilder<'a> {
        CopyBuilder::new(producer)
    }

    async fn start_boxed(
        mut producer: Box<dyn Producer + 'a>,
        receivers: Vec<Box<dyn Receiver + 'a>>,
        options: Options,
    ) -> Result<Self, CopyFail> {
        let core =
            copyman_core::copy_run_for!(producer, receivers, options, crate::Error::diagnose);
        let mut copy = Self {
            core,
            options,
            producer: Some(producer),
            receivers: receivers.into_iter().map(Some).collect(),
            in_flight: FuturesUnordered::new(),
            reading: None,
        };
        // Every receiver's COPY starts at once, then the producer's.
        copy.drive(CopyRun::poll_started).await?;
        Ok(copy)
    }

    /// Carries out core's orders for one call until it has what the call waits for.
    async fn drive<T>(&mut self, mut poll: impl FnMut(&mut CopyRun) -> Step<T>) -> T {
        poll_fn(|cx| self.poll_drive(cx, &mut poll)).await
    }

    /// The drive loop: starts the IO of each order, and when core must wait, waits for one IO
    /// in flight to end, reports it and goes on. After [`IO_PER_POLL`] IOs ended in one poll, or
    /// [`TIME_PER_POLL`], it yields (wakes itself and returns `Pending`), as tokio's own IO does
    /// when a task's budget is spent: where every IO is ready at once (a source always ready, receivers of the
    /// caller's that take their time) the copy would otherwise run to its end in one poll —
    /// a `timeout` or `select!` around it could not stop it, and other tasks on a
    /// current-thread runtime would not run.
    fn poll_drive<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: &mut impl FnMut(&mut CopyRun) -> Step<T>,
    ) -> Poll<T> {
        let (mut ended, started) = (0, Instant::now());
        loop {
            match poll(&mut self.core) {
                Step::Order(order) => self.dispatch(order),
                Step::Wait => {
                    if ended == IO_PER_POLL || (ended > 0 && started.elapsed() >= TIME_PER_POLL) {
                        cx.waker().wake_by_ref();
                        return Poll::Pending;
                    }
                    ended += 1;
                    let done = ready!(self.poll_io(cx));
                    match done.endpoint {
                        Endpoint::Producer(producer) => self.producer = Some(producer),
                        Endpoint::Receiver(id, receiver) => self.receivers[id.0] = Some(receiver),
                    }
                    self.core.report(done.report);
                }
                Step::Ready(done) => return Poll::Ready(done),
            }
        }
    }

    /// The next IO in flight to end. The producer's read is left when core says the copy no
    /// longer needs it and its producer can leave it: it then ends at once, with the producer
    /// idle, whether or not its source ever gives more (as copyman-sync's driver does).
    fn poll_io(&mut self, cx: &mut Context<'_>) -> Poll<Done<'a>> {
        if let Some((read, leave)) = &mut self.reading {
            leave.store(self.core.manager().abandons_read(), Ordering::Relaxed);
            if let Poll::Ready(done) = read.as_mut().poll(cx) {
                self.reading = None;
                return Poll::Ready(done);
            }
        }
        match ready!(self.in_flight.poll_next_unpin(cx)) {
            Some(done) => Poll::Ready(done),
            None if self.reading.is_some() => Poll::Pending,
            None => unreachable!("core waits only while IO it ordered is in flight"),
        }
    }

    /// Starts the IO of one order.
    fn dispatch(&mut self, order: Order) {
        let stall = self.options.stall_limit();
        let io: Io<'a> = match order {
            Order::StartReceiver(receiver) => {
                let mut endpoint = self.take_receiver(receiver);
                Box::pin(async move {
                    // The wait for the server's CopyInResponse (a table another session
                    // locked) is under the stall rule too.
                    let id = EndpointId::Receiver(receiver);
                    let result = watched(id, stall, endpoint.start(), || 0).await;
                    let result = result.map(|()| endpoint.format());
                    Done {
                        endpoint: Endpoint::Receiver(receiver, endpoint),
                        report: Report::started(EndpointId::Receiver(receiver), result),
                    }
                })
            }
            Order::StartProducer { source_frames } => {
                let mut producer = self.take_producer();
                Box::pin(async move {
                    // So is the wait for its CopyOutResponse (a locked table, or first rows
                    // that take long: the server sends the response with them).
                    let start = producer.start(source_frames);
                    let result = watched(EndpointId::Producer, stall, start, || 0).await;
                    let result = result.map(|()| producer.format());
                    Done {
                        endpoint: Endpoint::Producer(producer),
                        report: Report::started(EndpointId::Producer, result),
                    }
                })
            }
            Order::ReadProducer => {
                let mut producer = self.take_producer();
                let close_stalled = self.options.close_stalled;
                let leave = Arc::new(AtomicBool::new(false));
                let (left, can) = (Arc::clone(&leave), producer.can_abandon_read());
                let left = poll_fn(move |_| match can && left.load(Ordering::Relaxed) {
                    true => Poll::Ready(()),
                    false => Poll::Pending,
                });
                self.reading = Some((
                    Box::pin(async move {
                        // A producer read is cancel-safe: one that stalls is dropped, and the
                        // next starts afresh; one that is left is dropped too.
                        let input = tokio::select! {
                            biased;
                            () = left => Input::ReadAbandoned,
                            r = watched(EndpointId::Producer, stall, producer.next_chunk(), || 0) => {
                                if close_stalled && r.as_ref().err().is_some_and(|e| e.is::<Stalled>()) {
                                    producer.stalled();
                                }
                                Input::read(r, || producer.count())
                            }
                        };
                        Done {
                            endpoint: Endpoint::Producer(producer),
                            report: input.into(),
                        }
                    }),
                    leave,
                ));
                return;
            }
            Order::CancelProducer => {
                let mut producer = self.take_producer();
                Box::pin(async move {
                    // A source that stops answering is not waited for: its cancel and drain
                    // are bounded as its reads were (the connection's next call reads the rest).
                    let cancel = producer.cancel();
                    let result = watched(EndpointId::Producer, stall, cancel, || 0).await;
                    Done {
                        endpoint: Endpoint::Producer(producer),
                        report: Input::ProducerDone { result }.into(),
                    }
                })
            }
            Order::Transmit { receiver, data } => {
                let mut endpoint = self.take_receiver(receiver);
                let close_stalled = self.options.close_stalled;
                let under_way = self.core.under_way();
                Box::pin(async move {
                    let written = Written::new();
                    let id = EndpointId::Receiver(receiver);
                    let transmit = endpoint.transmit(&data, &written);
                    // What the socket took, and what the server was seen to read or store.
                    let moved = || (written.progress() as u64).wrapping_add(under_way.heard(id));
                    let result = watched(id, stall, transmit, moved).await;
                    let stalled = result.as_ref().err().is_some_and(|e| e.is::<Stalled>());
                    if close_stalled && stalled {
                        endpoint.stalled();
                    }
                    let written = written.get().min(data.len());
                    let input = Input::transmitted(receiver, result, written);
                    Done {
                        endpoint: Endpoint::Receiver(receiver, endpoint),
                        report: input.into(),
                    }
                })
            }
            Order::Complete { receiver } => {
                let mut endpoint = self.take_receiver(receiver);
                let stall = stall.filter(|_| self.core.manager().completion_stalls(receiver));
                let id = EndpointId::Receiver(receiver);
                Box::pin(async move {
                    let result = watched(id, stall, endpoint.complete(), || 0).await;
                    Done {
                        endpoint: Endpoint::Receiver(receiver, endpoint),
                        report: Input::ReceiverDone { receiver, result }.into(),
                    }
                })
            }
            Order::Fail {
                receiver,
                reason,
                completion,
            } => {
                let mut endpoint = self.take_receiver(receiver);
                Box::pin(async move {
                    let id = EndpointId::Receiver(receiver);
                    let fail = endpoint.fail(&reason, &completion);
                    let result = watched(id, stall, fail, || 0).await.map(|()| None);
                    Done {
                        endpoint: Endpoint::Receiver(receiver, endpoint),
                        report: Input::ReceiverDone { receiver, result }.into(),
                    }
                })
            }
            other => unreachable!("an order this driver does not know: {other:?}"),
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
}

/// Runs `io` under core's stall rule: with a stall timeout, `endpoint` stalls (a
/// [`Stalled`](copyman_core::stall::Stalled) error) once `moved` (the bytes it moved so far)
/// has stayed the same for the whole timeout. `moved` is looked at every eighth of the
/// timeout: a byte is dated to the look that saw it, so the stall comes within an eighth of the
/// timeout after the last byte (looked at only at the deadline, a byte just before it restarted
/// a whole timeout from there: up to twice the timeout, where copyman-sync's timer restarts at
/// each byte).
async fn watched<T>(
    endpoint: EndpointId,
    timeout: Option<Duration>,
    io: impl Future<Output = Result<T, BoxError>>,
    moved: impl Fn() -> u64,
) -> Result<T, BoxError> {
    let Some(limit) = timeout else {
        return io.await;
    };
    // tokio's clock (the same as std's, unless a test paused it).
    let clock = || tokio::time::Instant::now().into_std();
    let look = (limit / 8).max(Duration::from_millis(1));
    let mut timer = StallTimer::new(endpoint, limit, clock());
    let mut seen = moved();
    tokio::pin!(io);
    loop {
        let next = timer.poll_timeout().min(clock() + look);
        tokio::select! {
            out = &mut io => return out,
            () = tokio::time::sleep_until(next.into()) => {
                let now = clock();
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

impl Stream for CopyManager<'_> {
    type Item = Result<(u64, u64), Fault>;

    /// The next cycle's progress `(messages, bytes)`, or a fault; `None` once the producer reached
    /// its end (or no receiver is left).
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_drive(cx, &mut CopyRun::poll_progress)
    }
}

/// Copies everything `producer` produces to every receiver (`transfer` in py-postgresql's copyman),
/// returning the totals `(messages, bytes)`: CopyData messages, one per row in text and CSV from
/// a server plus a CSV header line, and binary data's header-and-trailer message — not rows
/// ([`Summary::messages`]).
///
/// ```no_run
/// use copyman_async::{Connection, StatementProducer, StatementReceiver, transfer};
///
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// let mut source = Connection::connect_str("host=127.0.0.1 user=postgres").await?;
/// let mut destination = Connection::connect_str("host=127.0.0.2 user=postgres").await?;
/// destination.execute("CREATE TABLE IF NOT EXISTS t (i int8)").await?;
/// let (messages, bytes) = transfer(
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

copyman_core::copy_api!(async await);

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU64;

    use super::*;

    /// An IO whose last byte moved just after its timer started stalls one timeout after that
    /// byte (within an eighth), not nearly two (the byte was dated to the look at the deadline,
    /// which restarted a whole timeout): the healthy receivers were held as long.
    #[tokio::test(start_paused = true)]
    async fn a_stall_is_said_one_timeout_after_the_last_byte() {
        let limit = Duration::from_secs(8);
        let moved = Arc::new(AtomicU64::new(0));
        let start = tokio::time::Instant::now();
        let last_byte = Duration::from_millis(100);
        let mover = Arc::clone(&moved);
        tokio::spawn(async move {
            tokio::time::sleep(last_byte).await;
            mover.store(1, Ordering::SeqCst);
        });
        let never = std::future::pending::<Result<(), BoxError>>();
        let endpoint = EndpointId::Receiver(ReceiverId(1));
        let error = watched(endpoint, Some(limit), never, || {
            moved.load(Ordering::SeqCst)
        })
        .await
        .unwrap_err();
        assert!(error.is::<Stalled>(), "{error}");
        let after = start.elapsed();
        assert!(after >= last_byte + limit, "{after:?}");
        assert!(after <= last_byte + limit + limit / 8, "{after:?}");
    }
}
