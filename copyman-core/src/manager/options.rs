//! How a copy runs: the options both adapters' `CopyManager` take, one type.

use std::time::Duration;

use super::Config;

/// How a copy runs, the same in both adapters: the manager's configuration, the producer's read
/// size and the stall timeout.
///
/// ```
/// use std::time::Duration;
/// use copyman_core::manager::Options;
///
/// let options = Options::default()
///     .with_window(8)
///     .with_keep_going(true)
///     .with_stall_timeout(Duration::from_secs(30));
/// assert_eq!(options.config.window, 8);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Options {
    /// The manager's configuration: [`Config::window`] chunks (4 by default) may be pending per
    /// receiver, so memory stays within window × the producer's buffer size; a larger window
    /// lets a faulted receiver keep more chunks for a later reconcile.
    pub config: Config,
    /// The producer's read size, for producers that read in buffers; `None` keeps the
    /// producer's own (64 KiB by default). At most [`Options::MAX_BUFFER_SIZE`] is used.
    pub buffer_size: Option<usize>,
    /// An endpoint that moves no byte for this long has stalled (the
    /// [`stall`](crate::stall) rule): a receiver whose transmit or CopyFail moves nothing faults
    /// with a [`Stalled`](crate::stall::Stalled) error naming it, while the others go on; a
    /// producer whose read gets nothing raises a ProducerFault with it. A COPY's start is timed
    /// too (its statement waiting for a lock another session holds, a source whose first rows
    /// take long): a start that stalls fails the copy, naming the endpoint. `None` (the default)
    /// waits for ever. The completion of a receiver without a server (copyman-async's
    /// `WriterReceiver` flush, `SinkReceiver` close) is timed too
    /// ([`Manager::completion_stalls`](crate::Manager::completion_stalls)): one that does not end
    /// within the timeout stalls, and, before any server's COPY ended, fails the copy.
    /// Completing a server's COPY is never timed out: once CopyDone is sent, waiting for
    /// the answer is the only way to know whether it committed, and the end of a COPY may run
    /// long with no byte moving (its AFTER triggers and foreign-key checks) — so a destination
    /// whose rows wait on another session's lock once all the data fit in its socket buffers
    /// is waited for as long as that session holds it (with more data, the same wait stalls a
    /// transmit and is bounded); to bound it, set the destination's own `lock_timeout` (`SET
    /// lock_timeout = '10s'`) or cancel it from a watchdog (an adapter `CopyManager`'s `under_way`:
    /// its endpoints' cancel tokens). Failing a receiver and
    /// cancelling the producer are bounded by it too: a server that does not answer them (a
    /// backend blocked on a lock, a host that stopped) is not waited for, the copy ends, and the
    /// connection's next call reads that answer first (or says the connection was closed).
    /// Endpoints over a `postgres`/`tokio-postgres` client (`ClientProducer`,
    /// `ClientReceiver`) are bounded only where their client's IO can be (not in copyman-sync).
    /// `Some(Duration::ZERO)` waits for ever too, as PostgreSQL's `statement_timeout = 0` does
    /// (see [`Options::stall_limit`]).
    pub stall_timeout: Option<Duration>,
    /// A receiver that stalls past the stall timeout has its connection closed at once, rather
    /// than failed with a CopyFail whose answer a frozen network path (a paused host, a
    /// firewall dropping packets) holds back for as long as it is frozen — and with it a later
    /// ROLLBACK, and whatever waits for that (the other destinations' COMMITs); a producer that
    /// stalls likewise, rather than cancelled. Its server ends the transaction once it hears of
    /// the close; nothing of it is committed. Off by default: a caller who waits for the path to
    /// come back keeps the connection usable — where it can be: a receiver stalled with its
    /// socket full cannot take the CopyFail, and has its connection closed either way, once
    /// the stall timeout passes again (the fault's [`is_closed`](crate::EndpointError::is_closed)
    /// says what the error was, not what became of the connection since: ask the connection)
    /// ([`endpoint::STALLED_COPY_IN`](crate::endpoint::STALLED_COPY_IN) and
    /// [`STALLED_COPY_OUT`](crate::endpoint::STALLED_COPY_OUT) name the close).
    pub close_stalled: bool,
}

impl Options {
    /// These options with a window of `window` chunks (at least 1).
    pub fn with_window(mut self, window: usize) -> Self {
        self.config.window = window.max(1);
        self
    }

    /// These options with the keep-going policy ([`Config::keep_going`]): a copy run to its end
    /// lets the survivors of a receiver fault complete.
    pub fn with_keep_going(mut self, keep_going: bool) -> Self {
        self.config = self.config.with_keep_going(keep_going);
        self
    }

    /// These options with the row-count check on or off ([`Config::check_counts`]).
    pub fn with_check_counts(mut self, check_counts: bool) -> Self {
        self.config = self.config.with_check_counts(check_counts);
        self
    }

    /// These options with the end-of-data marker scan on or off ([`Config::scan_end_marker`]).
    pub fn with_end_marker_scan(mut self, scan: bool) -> Self {
        self.config = self.config.with_end_marker_scan(scan);
        self
    }

    /// These options with the producer reading `size` bytes at a time (at least 1, at most
    /// [`Options::MAX_BUFFER_SIZE`]: [`Options::read_size`]).
    pub fn with_buffer_size(mut self, size: usize) -> Self {
        self.buffer_size = Some(Self::read_size(size));
        self
    }

    /// The largest read a producer makes, whatever size it is given: 256 MiB, a frame well
    /// under the 1 GB a server reads as one CopyData message (a size of `usize::MAX` overflowed
    /// the buffer's headroom and panicked, one of 1 TiB aborted the process: lib65 F13).
    pub const MAX_BUFFER_SIZE: usize = 256 << 20;

    /// The read size a producer given `size` uses: at least 1 byte, at most
    /// [`Options::MAX_BUFFER_SIZE`].
    ///
    /// ```
    /// use copyman_core::manager::Options;
    ///
    /// assert_eq!(Options::read_size(0), 1);
    /// assert_eq!(Options::read_size(65536), 65536);
    /// assert_eq!(Options::read_size(usize::MAX), Options::MAX_BUFFER_SIZE);
    /// ```
    pub fn read_size(size: usize) -> usize {
        size.clamp(1, Self::MAX_BUFFER_SIZE)
    }

    /// These options with receivers that stall closed at once ([`Options::close_stalled`]).
    pub fn with_close_stalled(mut self, close: bool) -> Self {
        self.close_stalled = close;
        self
    }

    /// These options with a stall timeout; `Duration::ZERO` is none (waits for ever).
    pub fn with_stall_timeout(mut self, timeout: Duration) -> Self {
        self.stall_timeout = Some(timeout);
        self
    }

    /// The stall timeout the drivers apply: [`Options::stall_timeout`], a zero one taken as none.
    ///
    /// ```
    /// use std::time::Duration;
    /// use copyman_core::manager::Options;
    ///
    /// let stalls = Options::default().with_stall_timeout(Duration::from_secs(30));
    /// assert_eq!(stalls.stall_limit(), Some(Duration::from_secs(30)));
    /// assert_eq!(Options::default().with_stall_timeout(Duration::ZERO).stall_limit(), None);
    /// ```
    pub fn stall_limit(&self) -> Option<Duration> {
        self.stall_timeout.filter(|t| !t.is_zero())
    }
}
