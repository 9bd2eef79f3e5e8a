//! The stall rule: an endpoint that moves no byte for the stall timeout is a fault.
//!
//! Both adapters give their `CopyManager` the same option, `stall_timeout`, with this one
//! meaning: an endpoint whose start (the wait for its server's CopyIn/CopyOutResponse: a table
//! another session locked, a source whose first rows take long), a producer whose read, or a
//! receiver whose transmit or CopyFail, moves no byte for that long has *stalled*; it faults with
//! a [`Stalled`] error naming it (a receiver leaves the copy while the others go on; a producer
//! raises a ProducerFault; at the start, the copy cannot start and fails naming it). Completing a
//! COPY (CopyDone and its answer) is never timed out: only the answer says whether it committed.
//!
//! Time is an input: a [`StallTimer`] starts with the IO, is told when bytes moved
//! ([`StallTimer::moved`]), says when it must be looked at again ([`StallTimer::poll_timeout`])
//! and whether the endpoint stalled ([`StallTimer::handle_timeout`]); the adapters only read the
//! clock and wait. copyman-sync runs one per multiplexed write and read (every byte the socket
//! takes or gives resets it) and arms its blocking sockets' timeouts with the same limit;
//! copyman-async runs one per order, reset by every byte a transmit reports through [`Written`].
//! Both try a waiting transmit's socket every [`TRY_WRITE_EVERY`], writable or not, so that a
//! slow destination's draining counts as movement; and both count as movement of a transmit
//! what a watchdog heard of its server ([`UnderWay::server_moved`](crate::run::UnderWay::server_moved),
//! [`StallTimer::hear`]): a destination storing one large message slower than the timeout
//! reads nothing from its socket meanwhile, and its server's own progress says it works.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use std::error::Error;
use std::fmt;
use std::io;
use std::time::Duration;

use crate::fault::BoxError;
use crate::fault::ReceiverId;

/// Which endpoint of a copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EndpointId {
    /// The producer.
    Producer,
    /// A receiver.
    Receiver(ReceiverId),
}

impl fmt::Display for EndpointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Producer => f.write_str("producer"),
            Self::Receiver(id) => write!(f, "receiver {id}"),
        }
    }
}

/// An endpoint moved no byte for the stall timeout.
///
/// Its source is an [`io::Error`] of kind [`io::ErrorKind::TimedOut`], so code that looks for
/// socket timeouts (`socket.timeout` in py-postgresql's copyman) finds one.
#[derive(Debug)]
pub struct Stalled {
    /// The endpoint that stalled.
    pub endpoint: EndpointId,
    /// The stall timeout.
    pub timeout: Duration,
    /// Whether the limit was the interrupt's grace ([`StallTimer::after_interrupt`]), not a
    /// stall timeout the caller set.
    pub interrupted: bool,
    source: io::Error,
}

impl Stalled {
    /// `endpoint` stalled for `timeout`.
    pub fn new(endpoint: EndpointId, timeout: Duration) -> Self {
        Self {
            endpoint,
            timeout,
            interrupted: false,
            // Words the Display holds: a chain of causes (`Chain`) says them once, not a
            // trailing ": timed out".
            source: io::Error::new(io::ErrorKind::TimedOut, "no byte moved"),
        }
    }

    /// `endpoint` moved no byte for the interrupt's `grace` after its copy was interrupted.
    pub fn given_up(endpoint: EndpointId, grace: Duration) -> Self {
        Self {
            interrupted: true,
            source: io::Error::new(io::ErrorKind::TimedOut, "given up"),
            ..Self::new(endpoint, grace)
        }
    }
}

impl fmt::Display for Stalled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.interrupted {
            return write!(
                f,
                "{} moved no byte for {:?} after the copy was interrupted: given up",
                self.endpoint, self.timeout
            );
        }
        write!(
            f,
            "{} stalled: no byte moved for {:?}",
            self.endpoint, self.timeout
        )
    }
}

impl Error for Stalled {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.source)
    }
}

/// The stall rule over time for one IO under way, sans IO (the caller reads the clock).
///
/// ```
/// use std::time::{Duration, Instant};
/// use copyman_core::stall::{EndpointId, StallTimer};
///
/// let start = Instant::now();
/// let mut timer = StallTimer::new(EndpointId::Producer, Duration::from_secs(5), start);
/// assert_eq!(timer.poll_timeout(), start + Duration::from_secs(5));
/// timer.moved(start + Duration::from_secs(4)); // bytes came: five more seconds
/// assert!(timer.handle_timeout(start + Duration::from_secs(8)).is_ok());
/// let stalled = timer.handle_timeout(start + Duration::from_secs(9)).unwrap_err();
/// assert_eq!(stalled.to_string(), "producer stalled: no byte moved for 5s");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct StallTimer {
    endpoint: EndpointId,
    limit: Duration,
    since: Instant,
    /// Its limit is the interrupt's grace.
    interrupted: bool,
    /// What was last heard of the endpoint's server ([`StallTimer::hear`]).
    heard: Option<u64>,
}

/// How often a transmit whose socket has not said it is writable is tried anyway: a byte the
/// socket takes then is a byte moved. `poll(2)` and `epoll` say a TCP socket is writable only
/// once a third of its send buffer is free, and on a fast path the kernel grows that buffer to
/// megabytes: a destination that stores its rows slower than the source sends them (triggers,
/// a slow disk) drains it steadily while the socket never says so for tens of seconds. Tried,
/// the socket takes what the server read meanwhile: the destination moves, is not stalled (a
/// stall timeout shorter than this is judged at this pace), and the others wait less for it.
///
/// ```
/// use copyman_core::stall::TRY_WRITE_EVERY;
/// assert!(TRY_WRITE_EVERY < std::time::Duration::from_secs(1));
/// ```
pub const TRY_WRITE_EVERY: Duration = Duration::from_millis(250);

/// How long, once a copy is interrupted (a signal to the command, a caller giving it up), an
/// endpoint's IO under way may move nothing before it is stalled: the copy is being aborted, and
/// an endpoint that takes or sends nothing that long (a frozen server, a lost network path) is
/// given up — closed, since a CopyFail would wait on the same silent socket — so that the
/// others' COPYs are failed at once rather than held.
pub const INTERRUPT_GRACE: Duration = Duration::from_secs(2);

/// How long a wait whose own limit is `timeout` (`None`: none) may move nothing once
/// interrupted: [`INTERRUPT_GRACE`], or its own limit if shorter (a timer it had keeps running).
pub fn interrupted_limit(timeout: Option<Duration>) -> Duration {
    timeout.map_or(INTERRUPT_GRACE, |t| t.min(INTERRUPT_GRACE))
}

/// A wait for a server cut short by the interrupt: nothing moved for [`INTERRUPT_GRACE`] once
/// interrupted. The payload of the [`io::Error`] (kind `TimedOut`) such a wait ends with, so
/// that it is said as what it was, not as a timeout the caller set ([`cut_by_interrupt`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GraceExpired {
    /// How long nothing moved: the grace.
    pub grace: Duration,
}

impl GraceExpired {
    /// The error of an interrupted wait whose own limit is `timeout`, once nothing moved for
    /// [`interrupted_limit`]: `TimedOut` carrying a [`GraceExpired`] where the grace was the
    /// shorter, else `own` (the wait's own timeout ran out first).
    pub fn error(timeout: Option<Duration>, own: impl FnOnce(Duration) -> io::Error) -> io::Error {
        match timeout {
            Some(t) if t < INTERRUPT_GRACE => own(t),
            _ => io::Error::new(
                io::ErrorKind::TimedOut,
                Self {
                    grace: INTERRUPT_GRACE,
                },
            ),
        }
    }
}

impl fmt::Display for GraceExpired {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the server moved no byte for {:?} after the interrupt: given up",
            self.grace
        )
    }
}

impl Error for GraceExpired {}

/// The interrupt's grace, if that is what ended `error`: a [`GraceExpired`] (in an
/// [`io::Error`]) or an interrupted [`Stalled`] anywhere in its source chain.
///
/// ```
/// use std::time::Duration;
/// use copyman_core::stall::{cut_by_interrupt, GraceExpired, INTERRUPT_GRACE};
///
/// let cut = GraceExpired::error(None, |_| unreachable!());
/// assert_eq!(cut_by_interrupt(&cut), Some(INTERRUPT_GRACE));
/// let own = GraceExpired::error(Some(Duration::from_secs(1)), |_| std::io::ErrorKind::TimedOut.into());
/// assert_eq!(cut_by_interrupt(&own), None);
/// ```
pub fn cut_by_interrupt(error: &(dyn Error + 'static)) -> Option<Duration> {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(stalled) = e.downcast_ref::<Stalled>() {
            return stalled.interrupted.then_some(stalled.timeout);
        }
        let payload = e.downcast_ref::<io::Error>().and_then(io::Error::get_ref);
        if let Some(cut) = payload.and_then(|p| p.downcast_ref::<GraceExpired>()) {
            return Some(cut.grace);
        }
        next = e.source();
    }
    None
}

impl StallTimer {
    /// The timer an IO under way gets when its copy is interrupted, where it has none of its
    /// own: [`INTERRUPT_GRACE`] from `now`.
    pub fn after_interrupt(endpoint: EndpointId, now: Instant) -> Self {
        Self {
            interrupted: true,
            ..Self::new(endpoint, INTERRUPT_GRACE, now)
        }
    }

    /// The timer of `endpoint`'s IO under way once its copy is interrupted at `now` (`own`: the
    /// stall timer it had): [`INTERRUPT_GRACE`] from `now` ([`StallTimer::after_interrupt`]),
    /// unless its own ends sooner and keeps running — the rule of [`interrupted_limit`].
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use copyman_core::stall::{EndpointId, StallTimer, INTERRUPT_GRACE};
    ///
    /// let now = Instant::now();
    /// let own = StallTimer::new(EndpointId::Producer, Duration::from_secs(60), now);
    /// let cut = StallTimer::interrupted(Some(own), EndpointId::Producer, now);
    /// assert_eq!(cut.poll_timeout(), now + INTERRUPT_GRACE);
    /// let short = StallTimer::new(EndpointId::Producer, Duration::from_secs(1), now);
    /// let kept = StallTimer::interrupted(Some(short), EndpointId::Producer, now);
    /// assert_eq!(kept.poll_timeout(), now + Duration::from_secs(1));
    /// ```
    pub fn interrupted(own: Option<Self>, endpoint: EndpointId, now: Instant) -> Self {
        match own {
            Some(own) if own.interrupted || own.poll_timeout() <= now + INTERRUPT_GRACE => own,
            _ => Self::after_interrupt(endpoint, now),
        }
    }

    /// A timer for `endpoint`'s IO starting at `now`, which stalls after `limit` without a byte.
    pub fn new(endpoint: EndpointId, limit: Duration, now: Instant) -> Self {
        Self {
            endpoint,
            limit,
            since: now,
            interrupted: false,
            heard: None,
        }
    }

    /// What a watchdog heard of the endpoint's server at `now`
    /// ([`UnderWay::heard`](crate::run::UnderWay::heard)): a number other than the one heard
    /// before is movement, as a byte on copyman's socket is — the server read or stored more of
    /// its COPY (a destination that stores one large message slower than the timeout reads
    /// nothing meanwhile). The first number a timer hears is where it starts. Not after an
    /// interrupt: its grace is for copyman's own sockets.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use copyman_core::stall::{EndpointId, StallTimer};
    ///
    /// let start = Instant::now();
    /// let second = |n| start + Duration::from_secs(n);
    /// let mut timer = StallTimer::new(EndpointId::Producer, Duration::from_secs(3), start);
    /// timer.hear(7, second(1)); // where it starts
    /// timer.hear(7, second(2)); // nothing new
    /// timer.hear(8, second(2)); // the server moved: three more seconds
    /// assert!(timer.handle_timeout(second(4)).is_ok());
    /// assert!(timer.handle_timeout(second(5)).is_err());
    /// ```
    pub fn hear(&mut self, heard: u64, now: Instant) {
        if self.heard.is_some_and(|before| before != heard) && !self.interrupted {
            self.since = now;
        }
        self.heard = Some(heard);
    }

    /// Bytes moved at `now`: the endpoint has another full timeout.
    pub fn moved(&mut self, now: Instant) {
        self.since = now;
    }

    /// A producer read's timer while its copy has transmits under way (`transmitting`) at
    /// `now`: it does not run. The read is not what the copy waits on — the producer may hold
    /// data it hands over once the receivers took theirs (lib45 F1: a healthy source beside a
    /// slow destination was said stalled, and ended the copy under keep-going) — so its timeout
    /// counts from when they are done. An interrupt's grace runs whatever else is under way.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use copyman_core::stall::{EndpointId, StallTimer};
    ///
    /// let start = Instant::now();
    /// let mut read = StallTimer::new(EndpointId::Producer, Duration::from_secs(1), start);
    /// let later = start + Duration::from_secs(5);
    /// read.held_by_transmits(true, later);
    /// assert!(read.handle_timeout(later).is_ok());
    /// read.held_by_transmits(false, later + Duration::from_secs(2));
    /// assert!(read.handle_timeout(later + Duration::from_secs(2)).is_err());
    /// ```
    pub fn held_by_transmits(&mut self, transmitting: bool, now: Instant) {
        if transmitting && !self.interrupted {
            self.since = now;
        }
    }

    /// Whether its limit is the interrupt's grace ([`StallTimer::after_interrupt`]).
    pub fn is_interrupted(&self) -> bool {
        self.interrupted
    }

    /// When the endpoint stalls unless bytes move before. A limit past what an `Instant` can
    /// hold (`Duration::MAX`: "as long as it takes") is a deadline a century away, not an
    /// overflow (it panicked inside a copy).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// use copyman_core::stall::{EndpointId, StallTimer};
    ///
    /// let now = Instant::now();
    /// let timer = StallTimer::new(EndpointId::Producer, Duration::MAX, now);
    /// assert!(timer.poll_timeout() > now + Duration::from_secs(50 * 365 * 24 * 3600));
    /// assert!(timer.handle_timeout(now + Duration::from_secs(3600)).is_ok());
    /// ```
    pub fn poll_timeout(&self) -> Instant {
        const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
        (self.since.checked_add(self.limit))
            .or_else(|| self.since.checked_add(CENTURY))
            .unwrap_or(self.since)
    }

    /// Checks the rule at `now`.
    ///
    /// # Errors
    /// [`Stalled`] when no byte moved for the whole limit.
    pub fn handle_timeout(&self, now: Instant) -> Result<(), Stalled> {
        if now.saturating_duration_since(self.since) >= self.limit {
            return Err(match self.interrupted {
                true => Stalled::given_up(self.endpoint, self.limit),
                false => Stalled::new(self.endpoint, self.limit),
            });
        }
        Ok(())
    }
}

/// The stall rule at the end of a copy, for a watchdog that looks at a receiver's server while
/// its COPY completes (the end of a COPY is never timed out by the copy itself: its answer may
/// take long with every byte in hand, its triggers and checks): a server that has not read all
/// the data it was sent (its `pg_stat_progress_copy`) and read no more of it for the stall
/// timeout has stalled — its backend frozen with the rest in its socket buffers, the network path
/// to it lost, or one row taking it longer than that. Sans IO: the watchdog reads the clock and
/// the server; what to do (close the connection, cancel its statement) is the caller's.
///
/// ```
/// use std::time::{Duration, Instant};
/// use copyman_core::stall::EndOfData;
///
/// let start = Instant::now();
/// let second = |n| start + Duration::from_secs(n);
/// let limit = Duration::from_secs(3);
/// let mut end = EndOfData::new((10, 1_000), start);
/// assert!(!end.look((10, 1_000), 5_000, limit, second(2)));
/// assert!(!end.look((20, 2_000), 5_000, limit, second(2)), "it read more: three seconds more");
/// assert!(!end.look((20, 2_000), 5_000, limit, second(4)));
/// assert!(end.look((20, 2_000), 5_000, limit, second(5)), "stalled");
/// assert!(!end.look((20, 2_000), 5_000, limit, second(9)), "said once");
/// // Every byte read: its end is its own, never stalled here.
/// let mut done = EndOfData::new((50, 5_000), start);
/// assert!(!done.look((50, 5_000), 5_000, limit, second(60)));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct EndOfData {
    read: (u64, u64),
    since: Instant,
    stalled: bool,
}

impl EndOfData {
    /// A receiver's server whose COPY had read `read` (rows, bytes) at `now`.
    pub fn new(read: (u64, u64), now: Instant) -> Self {
        Self {
            read,
            since: now,
            stalled: false,
        }
    }

    /// A look at `now`: its COPY had read `read` (rows, bytes) of the `sent` bytes. Whether it
    /// stalled, under the stall timeout `limit` — said once.
    pub fn look(&mut self, read: (u64, u64), sent: u64, limit: Duration, now: Instant) -> bool {
        if read != self.read || read.1 >= sent {
            *self = Self::new(read, now);
            return false;
        }
        if self.stalled || now.saturating_duration_since(self.since) < limit {
            return false;
        }
        self.stalled = true;
        true
    }
}

/// How much of a transmit's data went out so far: the receiver adds what each write took, and
/// the driver reads it to know whether bytes moved (the stall rule) and, if the transmit is cut
/// short, how much of the data the server has (realignment). Bytes that go out without being
/// the data's (TLS records of data taken earlier) are signs of life too: the receiver says so
/// with [`Written::moved`], which counts for the stall rule and not for realignment.
#[derive(Debug, Default)]
pub struct Written {
    data: AtomicUsize,
    signs: AtomicUsize,
}

impl Written {
    /// Nothing written yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// `n` more bytes of the data went out.
    pub fn add(&self, n: usize) {
        self.data.fetch_add(n, Ordering::Relaxed);
    }

    /// Bytes that are not the data's went out (say, TLS records of data taken before).
    pub fn moved(&self) {
        self.signs.fetch_add(1, Ordering::Relaxed);
    }

    /// The bytes of the data written so far.
    pub fn get(&self) -> usize {
        self.data.load(Ordering::Relaxed)
    }

    /// A number that changes whenever anything went out: what the stall rule watches.
    pub fn progress(&self) -> usize {
        self.get().wrapping_add(self.signs.load(Ordering::Relaxed))
    }
}

/// Whether an IO error is a socket timeout: what a blocking socket with a read or write timeout
/// returns when no byte moved for that long (`WouldBlock` on Unix, `TimedOut` elsewhere).
pub fn is_timeout(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Applies the rule to an endpoint's error: with a stall timeout in force, an error caused by a
/// socket timeout (anywhere in its source chain) becomes [`Stalled`] naming `endpoint`; every
/// other error is returned as it is. An error that is already [`Stalled`] stays so.
pub fn classify(error: BoxError, endpoint: EndpointId, timeout: Option<Duration>) -> BoxError {
    let Some(timeout) = timeout else {
        return error;
    };
    let mut next: Option<&(dyn Error + 'static)> = Some(&*error);
    while let Some(e) = next {
        if e.is::<Stalled>() {
            return error;
        }
        if let Some(io) = e.downcast_ref::<io::Error>().filter(|io| is_timeout(io)) {
            // Cut by the interrupt's grace, not the stall timeout: said as such.
            let cut = io.get_ref().and_then(|p| p.downcast_ref::<GraceExpired>());
            return Box::new(match cut {
                Some(cut) => Stalled::given_up(endpoint, cut.grace),
                None => Stalled::new(endpoint, timeout),
            });
        }
        next = e.source();
    }
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_that_go_out_are_progress_but_not_data() {
        let written = Written::new();
        written.add(10);
        let before = written.progress();
        written.moved();
        assert_ne!(written.progress(), before, "a sign of life");
        assert_eq!(written.get(), 10, "realignment counts the data only");
    }

    #[test]
    fn a_socket_timeout_is_a_stall_only_with_a_timeout_in_force() {
        let timeout = || -> BoxError { Box::new(io::Error::from(io::ErrorKind::WouldBlock)) };
        let endpoint = EndpointId::Receiver(ReceiverId(2));
        assert!(classify(timeout(), endpoint, None).is::<io::Error>());
        let stalled = classify(timeout(), endpoint, Some(Duration::from_secs(3)));
        assert_eq!(
            stalled.to_string(),
            "receiver 2 stalled: no byte moved for 3s"
        );
        let kind = stalled
            .source()
            .and_then(|s| s.downcast_ref::<io::Error>())
            .map(io::Error::kind);
        assert_eq!(kind, Some(io::ErrorKind::TimedOut));
        assert_eq!(
            crate::fault::Chain(&*stalled).to_string(),
            "receiver 2 stalled: no byte moved for 3s"
        );
        let other: BoxError = Box::new(io::Error::from(io::ErrorKind::ConnectionReset));
        let other = classify(other, EndpointId::Producer, Some(Duration::from_secs(1)));
        assert!(other.is::<io::Error>());
    }

    #[test]
    fn a_wait_the_interrupt_cut_is_not_said_as_the_stall_timeout() {
        let cut = || -> BoxError { Box::new(GraceExpired::error(None, |_| unreachable!())) };
        let endpoint = EndpointId::Receiver(ReceiverId(1));
        let stalled = classify(cut(), endpoint, Some(Duration::from_secs(5)));
        assert_eq!(
            stalled.to_string(),
            "receiver 1 moved no byte for 2s after the copy was interrupted: given up"
        );
        // Its cause, an io::Error for code that looks for timeouts, adds no words to a chain.
        assert_eq!(
            crate::fault::Chain(&*stalled).to_string(),
            stalled.to_string()
        );
        assert_eq!(cut_by_interrupt(&*stalled), Some(INTERRUPT_GRACE));
        let alone = classify(cut(), endpoint, None);
        assert_eq!(cut_by_interrupt(&*alone), Some(INTERRUPT_GRACE));
        let own = classify(
            Box::new(GraceExpired::error(Some(Duration::from_secs(1)), |_| {
                io::ErrorKind::TimedOut.into()
            })),
            endpoint,
            Some(Duration::from_secs(1)),
        );
        assert_eq!(
            cut_by_interrupt(&*own),
            None,
            "its own timeout was the shorter"
        );
    }
}
