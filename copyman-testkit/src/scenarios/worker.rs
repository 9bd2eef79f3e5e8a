//! What every adapter's scenario driver shares: the copy's worker thread and its commands, and
//! core's types as the scenarios' plain data.
//!
//! A copy borrows its connections (`StatementProducer<'c>`, `StatementReceiver<'c>`), so an
//! adapter's driver opens each copy on a worker thread that owns the connections and runs the
//! adapter's `CopyManager` on them ([`WorkerCopy::spawn`]); the scenario's calls are sent to it
//! as [`Cmd`]s and answered in plain data. Only the worker's body is the adapter's own.

use std::error::Error as StdError;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use copyman_core::connection::Closer;
use copyman_core::manager::Options;
use copyman_core::run::UnderWay;
use copyman_core::session::{DbError, Notification, SessionError};
use copyman_core::{
    CopyFail, EndpointError, Fault, ReceiverId, ReceiverOutcome, ReconcileError, Summary,
};

use super::{
    Endpoint, ErrorInfo, FailInfo, FaultInfo, NoticeInfo, OpenError, ReceiverEnd, Rows,
    RunningCopy, SessionInfo, StatementSpec, SummaryInfo,
};

/// The lines a collecting destination received, shared with its callback.
pub type Lines = Arc<Mutex<Vec<Vec<u8>>>>;

/// A command to the worker that owns a copy's connections; each carries where to answer.
#[derive(Debug)]
#[non_exhaustive]
pub enum Cmd {
    /// Start the copy.
    Start(Sender<Result<(), FailInfo>>),
    /// Start and run the copy.
    Run(Sender<Result<SummaryInfo, FailInfo>>),
    /// The adapter's one-call `transfer`.
    Transfer(Sender<Result<(u64, u64), FailInfo>>),
    /// One cycle.
    Next(Sender<Option<Result<(u64, u64), FaultInfo>>>),
    /// Reconcile this receiver.
    Reconcile(usize, Sender<Result<(), ErrorInfo>>),
    /// The live receivers.
    Live(Sender<Vec<usize>>),
    /// The most bytes the receivers held at once.
    PeakBuffered(Sender<usize>),
    /// Finish the copy.
    Finish(Sender<Result<SummaryInfo, FailInfo>>),
    /// Abort the copy.
    Abort(String, Sender<FailInfo>),
    /// Drop the copy unfinished.
    DropCopy(Sender<()>),
    /// Run SQL on a session.
    Sql(Endpoint, String, Sender<Result<Rows, ErrorInfo>>),
    /// What a session heard.
    Session(Endpoint, Sender<SessionInfo>),
    /// Whether a session is still usable, read without waiting (`Connection::check`).
    Check(Endpoint, Sender<Result<(), ErrorInfo>>),
    /// The running copy's [`UnderWay`] handle, for a watchdog.
    UnderWay(Sender<UnderWay>),
    /// What closes a session from another thread (`Connection::closer`).
    Closer(Endpoint, Sender<Result<Closer, ErrorInfo>>),
}

impl Cmd {
    /// Answers a command that cannot be carried out while a copy runs (SQL on a session, a
    /// second copy); `None` for the commands of a running copy.
    pub fn refuse_during_copy(self) -> Option<Self> {
        match self {
            Self::Sql(endpoint, _, reply) => {
                let _ = reply.send(Err(ErrorInfo::message(format!(
                    "{endpoint}: a copy is in progress on this session"
                ))));
                None
            }
            Self::Check(endpoint, _) => {
                panic!("{endpoint}: a copy is in progress on this session")
            }
            Self::Session(endpoint, _) => {
                panic!("{endpoint}: a copy is in progress on this session")
            }
            Self::Start(_) | Self::Run(_) | Self::Transfer(_) | Self::Closer(..) => {
                panic!("a copy is in progress")
            }
            other => Some(other),
        }
    }
}

/// A copy opened by an adapter's driver: a handle on its worker thread.
#[derive(Debug)]
pub struct WorkerCopy {
    tx: Option<Sender<Cmd>>,
    worker: Option<JoinHandle<()>>,
    collected: Vec<Option<Lines>>,
}

impl WorkerCopy {
    /// Runs `body` on a new thread named `name`. The body opens the copy's sessions, says
    /// whether that worked through its first argument, then serves the commands it receives
    /// until the channel closes. `collected` holds the lines of collecting destinations.
    ///
    /// # Errors
    /// The body's [`OpenError`].
    pub fn spawn(
        name: &str,
        collected: Vec<Option<Lines>>,
        body: impl FnOnce(Sender<Result<(), OpenError>>, Receiver<Cmd>) + Send + 'static,
    ) -> Result<Self, OpenError> {
        let (tx, rx) = channel();
        let (opened_tx, opened_rx) = channel();
        let worker = thread::Builder::new()
            .name(name.into())
            .spawn(move || body(opened_tx, rx))
            .expect("spawn the copy's worker");
        match opened_rx.recv() {
            Ok(Ok(())) => Ok(Self {
                tx: Some(tx),
                worker: Some(worker),
                collected,
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => match worker.join() {
                Err(panic) => std::panic::resume_unwind(panic),
                Ok(()) => panic!("the copy's worker stopped"),
            },
        }
    }

    fn call<T>(&mut self, make: impl FnOnce(Sender<T>) -> Cmd) -> T {
        let (reply, answer) = channel();
        let sent = self.tx.as_ref().expect("open").send(make(reply));
        match (sent, answer.recv()) {
            (Ok(()), Ok(value)) => value,
            _ => {
                // The worker panicked: show its panic, not a channel error.
                let worker = self.worker.take().expect("a worker");
                match worker.join() {
                    Err(panic) => std::panic::resume_unwind(panic),
                    Ok(()) => panic!("the copy's worker stopped"),
                }
            }
        }
    }
}

impl Drop for WorkerCopy {
    fn drop(&mut self) {
        // Closing the channel ends the worker, which drops the connections (and an unfinished
        // copy first).
        self.tx = None;
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

impl RunningCopy for WorkerCopy {
    fn start(&mut self) -> Result<(), FailInfo> {
        self.call(Cmd::Start)
    }

    fn next(&mut self) -> Option<Result<(u64, u64), FaultInfo>> {
        self.call(Cmd::Next)
    }

    fn reconcile(&mut self, receiver: usize) -> Result<(), ErrorInfo> {
        self.call(|reply| Cmd::Reconcile(receiver, reply))
    }

    fn live(&mut self) -> Vec<usize> {
        self.call(Cmd::Live)
    }

    fn finish(&mut self) -> Result<SummaryInfo, FailInfo> {
        self.call(Cmd::Finish)
    }

    fn peak_buffered(&mut self) -> usize {
        self.call(Cmd::PeakBuffered)
    }

    fn abort(&mut self, reason: &str) -> FailInfo {
        let reason = reason.to_owned();
        self.call(|reply| Cmd::Abort(reason, reply))
    }

    fn drop_copy(&mut self) {
        self.call(Cmd::DropCopy);
    }

    fn run(&mut self) -> Result<SummaryInfo, FailInfo> {
        self.call(Cmd::Run)
    }

    fn transfer(&mut self) -> Result<(u64, u64), FailInfo> {
        self.call(Cmd::Transfer)
    }

    fn sql(&mut self, endpoint: Endpoint, sql: &str) -> Result<Rows, ErrorInfo> {
        let sql = sql.to_owned();
        self.call(|reply| Cmd::Sql(endpoint, sql, reply))
    }

    fn check(&mut self, endpoint: Endpoint) -> Result<(), ErrorInfo> {
        self.call(|reply| Cmd::Check(endpoint, reply))
    }

    fn under_way(&mut self) -> UnderWay {
        self.call(Cmd::UnderWay)
    }

    fn closer(&mut self, endpoint: Endpoint) -> Result<Closer, ErrorInfo> {
        self.call(|reply| Cmd::Closer(endpoint, reply))
    }

    fn collected(&mut self, destination: usize) -> Vec<Vec<u8>> {
        let lines = self.collected[destination]
            .as_ref()
            .unwrap_or_else(|| panic!("destination {destination} does not collect lines"));
        lines.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn session(&mut self, endpoint: Endpoint) -> SessionInfo {
        self.call(|reply| Cmd::Session(endpoint, reply))
    }
}

/// How an adapter's own error type gives its SQLSTATE, if it has one.
pub type AdapterCode = fn(&(dyn StdError + 'static)) -> Option<String>;

/// Core's and the adapters' errors as the scenarios' plain data, with the adapter's way of
/// reading its own error type.
#[derive(Debug, Clone, Copy)]
pub struct Infos {
    /// The adapter's SQLSTATE reader.
    pub adapter_code: AdapterCode,
}

impl Infos {
    /// The SQLSTATE of the first error in `error`'s chain that has one.
    pub fn sqlstate(self, error: &(dyn StdError + 'static)) -> Option<String> {
        let mut next = Some(error);
        while let Some(e) = next {
            if let Some(code) = (self.adapter_code)(e) {
                return Some(code);
            }
            if let Some(db) = e.downcast_ref::<DbError>() {
                return Some(db.code.clone());
            }
            if let Some(db) = e.downcast_ref::<SessionError>().and_then(|e| e.db_error()) {
                return Some(db.code.clone());
            }
            // `tokio_postgres::Error` is this same type.
            if let Some(code) = e.downcast_ref::<postgres::Error>().and_then(|e| e.code()) {
                return Some(code.code().to_owned());
            }
            next = e.source();
        }
        None
    }

    /// `error` as plain data.
    pub fn error(self, error: &(dyn StdError + 'static)) -> ErrorInfo {
        ErrorInfo::from_error(error, self.sqlstate(error))
    }

    /// An endpoint's `error` as plain data, its SQLSTATE as core's [`EndpointError::code`]
    /// gives it to a caller (never read through the adapter's own types: the caller cannot).
    pub fn endpoint_error(self, error: &EndpointError) -> ErrorInfo {
        ErrorInfo::from_error(&**error, error.code().map(str::to_owned))
    }

    /// A fault as plain data.
    pub fn fault(self, fault: &Fault) -> FaultInfo {
        match fault {
            Fault::Receiver(f) => FaultInfo::Receivers {
                faults: f
                    .faults
                    .iter()
                    .map(|(id, e)| (id.0, self.error(&**e)))
                    .collect(),
                text: fault.to_string(),
            },
            Fault::Producer(f) => FaultInfo::Producer {
                error: self.error(&*f.error),
                text: fault.to_string(),
            },
            other => panic!("a fault of a kind the scenarios do not know: {other:?}"),
        }
    }

    /// A failed copy as plain data.
    pub fn fail(self, fail: &CopyFail) -> FailInfo {
        FailInfo {
            reason: fail.reason.clone(),
            receiver_faults: fail
                .receiver_faults
                .iter()
                .map(|(id, e)| (id.0, self.endpoint_error(e)))
                .collect(),
            producer_fault: fail.producer_fault.as_ref().map(|e| self.endpoint_error(e)),
            text: fail.to_string(),
        }
    }

    /// A copy's summary as plain data.
    pub fn summary(self, summary: Summary) -> SummaryInfo {
        SummaryInfo {
            messages: summary.messages,
            bytes: summary.bytes,
            producer_count: summary.producer_count,
            receivers: summary
                .receivers
                .into_iter()
                .map(|(_, outcome)| match outcome {
                    ReceiverOutcome::Completed(count) => ReceiverEnd::Completed(count),
                    ReceiverOutcome::Faulted(e) => ReceiverEnd::Faulted(self.error(&*e)),
                    ReceiverOutcome::Failed(e) => ReceiverEnd::Failed(self.error(&*e)),
                    other => panic!("an outcome the scenarios do not know: {other:?}"),
                })
                .collect(),
        }
    }

    /// Why reconciling `receiver` failed: the receiver's own error when it failed again, so
    /// that a timeout reads as one.
    pub fn reconcile(self, error: &ReconcileError, receiver: usize) -> ErrorInfo {
        match error
            .receiver_fault()
            .and_then(|f| f.get(ReceiverId(receiver)))
        {
            Some(e) => self.error(&**e),
            None => self.error(error),
        }
    }

    /// A connection's `SQL` failure or open failure as an [`OpenError`].
    pub fn open(
        self,
        endpoint: Endpoint,
        statement: Option<&str>,
        error: &(dyn StdError + 'static),
    ) -> OpenError {
        OpenError {
            endpoint,
            statement: statement.map(str::to_owned),
            error: self.error(error),
        }
    }
}

/// What a connection heard and did, as plain data.
pub fn session_info(
    notices: Vec<DbError>,
    notifications: Vec<Notification>,
    command_tag: Option<&str>,
    received_bytes: u64,
) -> SessionInfo {
    SessionInfo {
        notices: notices
            .into_iter()
            .map(|n| NoticeInfo {
                severity: n.severity,
                sqlstate: n.code,
                message: n.message,
            })
            .collect(),
        notifications: notifications
            .into_iter()
            .map(|n| (n.channel, n.payload))
            .collect(),
        command_tag: command_tag.map(str::to_owned),
        received_bytes,
    }
}

/// A copy's options, from what the sessions of its plan give: the smallest stall timeout and
/// window, keep-going if any asks for it.
pub fn options<'s>(specs: impl IntoIterator<Item = &'s StatementSpec>) -> Options {
    let mut options = Options::default();
    let (mut stall, mut window): (Option<Duration>, Option<usize>) = (None, None);
    for spec in specs {
        stall = stall.into_iter().chain(spec.timeout).min();
        window = window.into_iter().chain(spec.window).min();
        options = options.with_keep_going(options.config.keep_going || spec.keep_going);
        options = options.with_close_stalled(options.close_stalled || spec.close_stalled);
    }
    if let Some(stall) = stall {
        options = options.with_stall_timeout(stall);
    }
    if let Some(window) = window {
        options = options.with_window(window);
    }
    options
}

/// The chunks of a [`SourceSpec::FlakyLines`](super::SourceSpec) source, whose read fails once
/// (the error `a transient failure`) before chunk `fails_before`: each adapter's driver wraps it
/// in its own `Producer`, which calls [`Flaky::next_chunk`].
pub struct Flaky {
    chunks: copyman_core::local::IteratorProducer<std::vec::IntoIter<Vec<Vec<u8>>>>,
    given: usize,
    fails_before: Option<usize>,
}

impl Flaky {
    /// `chunks`, failing once before chunk `fails_before` (never without one).
    pub fn new(chunks: Vec<Vec<Vec<u8>>>, fails_before: Option<usize>) -> Self {
        Self {
            chunks: copyman_core::local::IteratorProducer::new(chunks),
            given: 0,
            fails_before,
        }
    }

    /// The next chunk, or the one failure.
    ///
    /// # Errors
    /// `a transient failure`, once, before chunk `fails_before`.
    pub fn next_chunk(&mut self) -> Result<Option<copyman_core::Chunk>, copyman_core::BoxError> {
        if self.fails_before.take_if(|at| *at == self.given).is_some() {
            return Err("a transient failure".into());
        }
        self.given += 1;
        Ok(self.chunks.produce())
    }
}
