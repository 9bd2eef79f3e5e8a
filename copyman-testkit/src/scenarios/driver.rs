//! The contract between the scenarios and an adapter: [`CopyDriver`] and [`RunningCopy`], and the
//! plain data they exchange.
//!
//! Everything here is strings, numbers, SQLSTATEs and `std` types, so that any adapter (blocking,
//! tokio, …) can implement it without this crate knowing its types.

// Plain data, returned by value: its size does not matter in tests.
#![allow(clippy::result_large_err)]

use std::error::Error;
use std::fmt;
use std::io;
use std::time::Duration;

/// Rows of a query, as text (`None` for NULL).
pub type Rows = Vec<Vec<Option<String>>>;

/// One of the sessions of a copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// The producer's session.
    Source,
    /// The session of destination `i` (its position in [`CopyPlan::destinations`]).
    Destination(usize),
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Source => f.write_str("source"),
            Self::Destination(i) => write!(f, "destination {i}"),
        }
    }
}

/// A raw session of the adapter (its fast path: `StatementProducer` / `StatementReceiver`).
#[derive(Debug, Clone)]
pub struct StatementSpec {
    /// Where to connect (a `key=value` string or URL, as `postgres::Config` parses it).
    pub conninfo: String,
    /// SQL run on the same session, in order, before the copy starts (e.g. `BEGIN`,
    /// `CREATE TEMP TABLE …`). Run by [`CopyDriver::open`].
    pub before: Vec<String>,
    /// The COPY statement: `COPY … TO STDOUT` for the source, `COPY … FROM STDIN` for a
    /// destination (or anything else, to see it refused).
    pub copy: String,
    /// The producer's read buffer size (source only; `None`: the adapter's default).
    pub buffer_size: Option<usize>,
    /// A stall timeout for the copy (`None`: none): the adapter's `Options::stall_timeout`,
    /// the smallest one given on any session of the plan. An endpoint that moves no byte for that
    /// long faults with copyman-core's `Stalled` error, whose source is an IO error of kind
    /// `TimedOut` (the seed's `socket.timeout`).
    pub timeout: Option<Duration>,
    /// The copy's window (the adapter's `Options::window`: chunks a receiver may hold), the
    /// smallest one given on any session of the plan (`None`: the adapter's default).
    pub window: Option<usize>,
    /// The copy's keep-going policy (`Options::keep_going`: a faulted receiver leaves the copy
    /// and the others complete), on when any session of the plan asks for it.
    pub keep_going: bool,
    /// The copy closes a stalled endpoint's connection at once (`Options::close_stalled`), on
    /// when any session of the plan asks for it.
    pub close_stalled: bool,
}

impl StatementSpec {
    /// A session on `conninfo` running `copy`.
    pub fn new(conninfo: impl Into<String>, copy: impl Into<String>) -> Self {
        Self {
            conninfo: conninfo.into(),
            before: Vec::new(),
            copy: copy.into(),
            buffer_size: None,
            timeout: None,
            window: None,
            keep_going: false,
            close_stalled: false,
        }
    }

    /// Adds SQL to run before the copy.
    #[must_use]
    pub fn before(mut self, sql: impl Into<String>) -> Self {
        self.before.push(sql.into());
        self
    }

    /// Sets the producer's read buffer size.
    #[must_use]
    pub fn buffer_size(mut self, size: usize) -> Self {
        self.buffer_size = Some(size);
        self
    }

    /// Sets a socket timeout for the copy.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets the copy's window.
    #[must_use]
    pub fn window(mut self, window: usize) -> Self {
        self.window = Some(window);
        self
    }

    /// Turns the copy's keep-going policy on.
    #[must_use]
    pub fn keep_going(mut self) -> Self {
        self.keep_going = true;
        self
    }

    /// Has the copy close a stalled endpoint's connection at once, if `close`.
    #[must_use]
    pub fn close_stalled_if(mut self, close: bool) -> Self {
        self.close_stalled = close;
        self
    }
}

/// Where the copy's data comes from.
#[derive(Debug, Clone)]
pub enum SourceSpec {
    /// A raw session running a `COPY … TO STDOUT` (`StatementProducer`).
    Statement(StatementSpec),
    /// Chunks of COPY lines from an iterator (the seed's `IteratorProducer`): each inner `Vec`
    /// is one cycle's chunk, each line a whole row with its newline.
    Lines(Vec<Vec<Vec<u8>>>),
    /// Chunks as `Lines`', from a producer of the caller's (the adapter's `Producer` trait, its
    /// default `resumable()`) whose read fails once with the error `a transient failure`
    /// before it gives chunk `fails_before` (0-based), which it gives when read again.
    FlakyLines {
        /// The chunks.
        chunks: Vec<Vec<Vec<u8>>>,
        /// The chunk its one failed read comes before.
        fails_before: usize,
    },
}

/// Where the copy's data goes.
#[derive(Debug, Clone)]
pub enum DestinationSpec {
    /// A raw session running a `COPY … FROM STDIN` (`StatementReceiver`).
    Statement(StatementSpec),
    /// A callback given the lines of each cycle (the seed's `CallReceiver`) that keeps them; read
    /// them with [`RunningCopy::collected`].
    Collect,
}

/// Everything a copy needs: one source, destinations in order.
#[derive(Debug, Clone)]
pub struct CopyPlan {
    /// The producer.
    pub source: SourceSpec,
    /// The receivers; receiver `i` of faults and summaries is `destinations[i]`.
    pub destinations: Vec<DestinationSpec>,
}

/// An error, as plain data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorInfo {
    /// The error's `Display`, followed by each of its sources' (`": "`-separated).
    pub text: String,
    /// The SQLSTATE, when a server reported the error.
    pub sqlstate: Option<String>,
    /// The kind of the IO error underneath, if there is one.
    pub io_kind: Option<io::ErrorKind>,
}

impl ErrorInfo {
    /// Describes `error`: its text with its sources, and the kind of the first `io::Error` among
    /// them. The SQLSTATE is the adapter's to find (this crate does not know its error types).
    pub fn from_error(error: &(dyn Error + 'static), sqlstate: Option<String>) -> Self {
        let mut text = error.to_string();
        let mut io_kind = None;
        let mut next: Option<&(dyn Error + 'static)> = Some(error);
        while let Some(e) = next {
            if io_kind.is_none() {
                io_kind = e.downcast_ref::<io::Error>().map(io::Error::kind);
            }
            next = e.source();
            if let Some(source) = next {
                let more = source.to_string();
                if !text.ends_with(&more) {
                    text.push_str(": ");
                    text.push_str(&more);
                }
            }
        }
        Self {
            text,
            sqlstate,
            io_kind,
        }
    }

    /// An error with only a text (e.g. a worker that gave up).
    pub fn message(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            sqlstate: None,
            io_kind: None,
        }
    }

    /// Whether it is a socket timeout (`TimedOut` or `WouldBlock`).
    pub fn is_timeout(&self) -> bool {
        matches!(
            self.io_kind,
            Some(io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock)
        )
    }
}

impl fmt::Display for ErrorInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)?;
        if let Some(code) = &self.sqlstate {
            write!(f, " [SQLSTATE {code}]")?;
        }
        if let Some(kind) = self.io_kind {
            write!(f, " [io: {kind:?}]")?;
        }
        Ok(())
    }
}

/// A fault reported by a cycle: the seed's `ReceiverFault` (receivers left the copy) or
/// `ProducerFault` (the producer failed; nothing changed).
#[derive(Debug, Clone)]
pub enum FaultInfo {
    /// Receivers failed and were removed from the copy.
    Receivers {
        /// Each failed receiver (its index in [`CopyPlan::destinations`]) with its error.
        faults: Vec<(usize, ErrorInfo)>,
        /// The fault's `Display`.
        text: String,
    },
    /// The producer failed.
    Producer {
        /// The producer's error (the seed's `__context__`).
        error: ErrorInfo,
        /// The fault's `Display`.
        text: String,
    },
}

impl FaultInfo {
    /// The error of receiver `i`, if it is among the faults (the seed's `faults[receiver]`).
    pub fn receiver(&self, i: usize) -> Option<&ErrorInfo> {
        match self {
            Self::Receivers { faults, .. } => faults.iter().find(|(r, _)| *r == i).map(|(_, e)| e),
            Self::Producer { .. } => None,
        }
    }

    /// The producer's error, for a producer fault.
    pub fn producer(&self) -> Option<&ErrorInfo> {
        match self {
            Self::Producer { error, .. } => Some(error),
            Self::Receivers { .. } => None,
        }
    }
}

impl fmt::Display for FaultInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Receivers { faults, text } => {
                write!(f, "{text}")?;
                for (i, e) in faults {
                    write!(f, " <receiver {i}: {e}>")?;
                }
                Ok(())
            }
            Self::Producer { error, text } => write!(f, "{text} <producer: {error}>"),
        }
    }
}

/// The copy failed (the seed's `CopyFail`).
#[derive(Debug, Clone)]
pub struct FailInfo {
    /// Why, e.g. `copy stopped before the producer's end`, `no receivers`.
    pub reason: String,
    /// Receivers whose start, completion or abort failed, with their errors.
    pub receiver_faults: Vec<(usize, ErrorInfo)>,
    /// The producer's error, if it had one.
    pub producer_fault: Option<ErrorInfo>,
    /// The failure's `Display`.
    pub text: String,
}

impl FailInfo {
    /// The error of receiver `i` among [`receiver_faults`](Self::receiver_faults).
    pub fn receiver_fault(&self, i: usize) -> Option<&ErrorInfo> {
        self.receiver_faults
            .iter()
            .find(|(r, _)| *r == i)
            .map(|(_, e)| e)
    }
}

impl fmt::Display for FailInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// How a receiver ended a successful copy.
#[derive(Debug, Clone)]
pub enum ReceiverEnd {
    /// Its COPY completed, with its `COPY n` if it has one.
    Completed(Option<u64>),
    /// It faulted during the copy and its COPY was failed: it holds nothing of this copy.
    Faulted(ErrorInfo),
    /// Its own COPY failed at its end (the server refused CopyDone, e.g. a row it had not
    /// parsed before): it holds nothing of this copy.
    Failed(ErrorInfo),
}

/// The result of a successful copy.
#[derive(Debug, Clone)]
pub struct SummaryInfo {
    /// Messages (rows) the producer delivered.
    pub messages: u64,
    /// Payload bytes the producer delivered.
    pub bytes: u64,
    /// The producer's `COPY n`, if it has one.
    pub producer_count: Option<u64>,
    /// Every receiver, in order.
    pub receivers: Vec<ReceiverEnd>,
}

/// A notice the server sent on a session (NoticeResponse), as plain data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeInfo {
    /// NOTICE, WARNING, INFO, …
    pub severity: String,
    /// Its SQLSTATE (`01000` for a plain `RAISE WARNING`, `00000` for `RAISE NOTICE`).
    pub sqlstate: String,
    /// The message.
    pub message: String,
}

/// What a session of the copy heard and did, taken from the adapter's connection.
#[derive(Debug, Clone, Default)]
pub struct SessionInfo {
    /// Notices since the last look, in order (taking them empties the adapter's queue).
    pub notices: Vec<NoticeInfo>,
    /// Notifications `(channel, payload)` since the last look, in order.
    pub notifications: Vec<(String, String)>,
    /// The command tag of the last statement that completed, e.g. `COPY 1000`.
    pub command_tag: Option<String>,
    /// Bytes the session machine has read from the server so far (the COPY OUT data path,
    /// which bypasses it, not included).
    pub received_bytes: u64,
}

/// What went wrong opening a copy's sessions.
#[derive(Debug, Clone)]
pub struct OpenError {
    /// Whose session.
    pub endpoint: Endpoint,
    /// `None`: connecting failed; `Some(sql)`: this `before` statement failed.
    pub statement: Option<String>,
    /// The error.
    pub error: ErrorInfo,
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.statement {
            None => write!(f, "connecting the {}: {}", self.endpoint, self.error),
            Some(sql) => write!(f, "{} running {sql:?}: {}", self.endpoint, self.error),
        }
    }
}

/// An adapter, as the scenarios use it.
///
/// Implement it once per adapter in that adapter's tests; then
/// [`scenario_tests!`](crate::scenario_tests) makes one `#[test]` per scenario. The methods are
/// blocking: an async adapter runs its futures to completion inside them (e.g. on a runtime it
/// owns), so that scenarios are plain functions.
pub trait CopyDriver: Sync {
    /// A copy opened by this driver.
    type Copy: RunningCopy;

    /// The adapter's name, for messages.
    fn name(&self) -> &'static str;

    /// Connects every [`StatementSpec`] session of `plan` (with the adapter's own connections,
    /// e.g. `copyman_sync::Connection`) and runs its `before` SQL, in order: source first, then
    /// destinations. Nothing is copied yet: call [`RunningCopy::start`], [`RunningCopy::run`] or
    /// [`RunningCopy::transfer`].
    ///
    /// # Errors
    /// The first session that could not connect, or whose `before` SQL failed.
    fn open(&self, plan: CopyPlan) -> Result<Self::Copy, OpenError>;
}

/// A copy's sessions and, once started, the copy itself: the adapter's `CopyManager`.
///
/// The sessions stay open until the value is dropped, so that scenarios can check after the copy
/// that each is usable and what it holds ([`sql`](Self::sql)).
pub trait RunningCopy {
    /// Starts the copy (every receiver's COPY, then the producer's: the seed's `__enter__`).
    ///
    /// # Errors
    /// The adapter's `CopyFail` when an endpoint cannot start; the sessions stay usable.
    fn start(&mut self) -> Result<(), FailInfo>;

    /// One cycle (the seed's `__next__`): `Some(Ok((messages, bytes)))`, `Some(Err(fault))`, or
    /// `None` at the end.
    fn next(&mut self) -> Option<Result<(u64, u64), FaultInfo>>;

    /// Lets faulted receiver `i` rejoin the copy (the seed's `reconcile`).
    ///
    /// # Errors
    /// The manager refused, or the receiver failed again (it stays out).
    fn reconcile(&mut self, receiver: usize) -> Result<(), ErrorInfo>;

    /// The receivers still in the copy (the seed's `receivers`).
    fn live(&mut self) -> Vec<usize>;

    /// Finishes the copy (the seed's `__exit__`).
    ///
    /// # Errors
    /// The adapter's `CopyFail`.
    fn finish(&mut self) -> Result<SummaryInfo, FailInfo>;

    /// The most payload bytes the copy's receivers held at once so far (the adapter's
    /// `CopyManager::peak_buffered`), while the copy runs.
    fn peak_buffered(&mut self) -> usize;

    /// Fails the copy with `reason`.
    fn abort(&mut self, reason: &str) -> FailInfo;

    /// Drops the copy without finishing it, as a user's early return or `?` would: nothing may
    /// be committed. The sessions stay open.
    fn drop_copy(&mut self);

    /// Starts and runs the whole copy (the adapter's `CopyManager::run`, the seed's `run()`).
    ///
    /// # Errors
    /// The adapter's `CopyFail`.
    fn run(&mut self) -> Result<SummaryInfo, FailInfo>;

    /// Copies everything with the adapter's one-call `transfer`, returning `(messages, bytes)`.
    ///
    /// # Errors
    /// The adapter's `CopyFail`.
    fn transfer(&mut self) -> Result<(u64, u64), FailInfo>;

    /// Runs SQL on a session of the copy, before it starts or after it ended (not during).
    ///
    /// # Errors
    /// The server's error, or the session is gone.
    fn sql(&mut self, endpoint: Endpoint, sql: &str) -> Result<Rows, ErrorInfo>;

    /// Reads, without waiting, what a session's server sent unasked and says whether the
    /// session is still usable: the adapter's `Connection::check`. Not during a copy.
    ///
    /// # Errors
    /// The server's error that ended the session, or the session is gone.
    fn check(&mut self, endpoint: Endpoint) -> Result<(), ErrorInfo>;
    /// The running copy's handle for a watchdog (`CopyManager::under_way`): what it waits for,
    /// and where a watchdog says a server moved.
    fn under_way(&mut self) -> copyman_core::run::UnderWay;
    /// What closes `endpoint`'s session from another thread (`Connection::closer`), asked
    /// outside a copy.
    fn closer(&mut self, endpoint: Endpoint)
    -> Result<copyman_core::connection::Closer, ErrorInfo>;

    /// The lines a [`DestinationSpec::Collect`] destination received so far, in order.
    fn collected(&mut self, destination: usize) -> Vec<Vec<u8>>;

    /// Takes what a session heard (notices, notifications) and says its last command tag and
    /// how much it read: the adapter's `Connection::take_notices`, `take_notifications`,
    /// `command_tag`. Before the copy starts or after it ended.
    fn session(&mut self, endpoint: Endpoint) -> SessionInfo;
}
