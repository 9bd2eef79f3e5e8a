//! The tokio adapter as a scenario driver ([`copyman_testkit::scenarios::CopyDriver`]).
//!
//! A copy borrows its connections (`StatementProducer<'c>`, `StatementReceiver<'c>`), so each
//! opened copy lives on a worker thread that owns a current-thread tokio runtime and the
//! connections, and runs the `CopyManager` on them; the scenario's (blocking) calls are sent to
//! it as commands, each carried out with `block_on`, and answered in plain data. The worker stays
//! inside its runtime's context between commands, as an async application would be, so that an
//! endpoint dropped mid-copy can cancel in the background.
//!
//! A session's timeout ([`StatementSpec::timeout`]) becomes the copy's stall timeout (the
//! smallest one given), as in copyman-sync's driver.

#![allow(dead_code, unreachable_pub)] // Each test binary uses a different part of this module.

use std::error::Error as StdError;
use std::sync::mpsc::{Receiver as Rx, Sender, channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};

use bytes::Bytes;
use copyman_async::{
    CallReceiver, Connection, CopyFail, CopyManager, DbError, Fault, IteratorProducer, Options,
    Producer, Receiver, ReceiverId, ReceiverOutcome, ReconcileError, SessionError,
    StatementProducer, StatementReceiver, Summary, transfer,
};
use copyman_testkit::scenarios::{
    CopyDriver, CopyPlan, DestinationSpec, Endpoint, ErrorInfo, FailInfo, FaultInfo, NoticeInfo,
    OpenError, ReceiverEnd, Rows, RunningCopy, SessionInfo, SourceSpec, StatementSpec, SummaryInfo,
};
use futures_util::StreamExt;
use tokio::runtime::Runtime;

/// copyman-async, for the shared scenarios.
#[derive(Debug, Clone, Copy, Default)]
pub struct AsyncDriver;

/// A current-thread runtime, as a test's async code runs on.
pub fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// The SQLSTATE of the first error in `error`'s chain that has one.
pub fn sqlstate(error: &(dyn StdError + 'static)) -> Option<String> {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(code) = e
            .downcast_ref::<copyman_async::Error>()
            .and_then(|e| e.code())
        {
            return Some(code.to_owned());
        }
        if let Some(db) = e.downcast_ref::<DbError>() {
            return Some(db.code.clone());
        }
        if let Some(db) = e.downcast_ref::<SessionError>().and_then(|e| e.db_error()) {
            return Some(db.code.clone());
        }
        if let Some(code) = e
            .downcast_ref::<tokio_postgres::Error>()
            .and_then(|e| e.code())
        {
            return Some(code.code().to_owned());
        }
        next = e.source();
    }
    None
}

/// `error` as plain data.
pub fn info(error: &(dyn StdError + 'static)) -> ErrorInfo {
    ErrorInfo::from_error(error, sqlstate(error))
}

fn fault_info(fault: &Fault) -> FaultInfo {
    match fault {
        Fault::Receiver(f) => FaultInfo::Receivers {
            faults: f.faults.iter().map(|(id, e)| (id.0, info(&**e))).collect(),
            text: fault.to_string(),
        },
        Fault::Producer(f) => FaultInfo::Producer {
            error: info(&*f.error),
            text: fault.to_string(),
        },
        other => panic!("a fault of a kind the scenarios do not know: {other:?}"),
    }
}

fn fail_info(fail: &CopyFail) -> FailInfo {
    FailInfo {
        reason: fail.reason.clone(),
        receiver_faults: fail
            .receiver_faults
            .iter()
            .map(|(id, e)| (id.0, info(&**e)))
            .collect(),
        producer_fault: fail.producer_fault.as_ref().map(|e| info(&**e)),
        text: fail.to_string(),
    }
}

fn summary_info(summary: Summary) -> SummaryInfo {
    SummaryInfo {
        messages: summary.messages,
        bytes: summary.bytes,
        producer_count: summary.producer_count,
        receivers: summary
            .receivers
            .into_iter()
            .map(|(_, outcome)| match outcome {
                ReceiverOutcome::Completed(count) => ReceiverEnd::Completed(count),
                ReceiverOutcome::Faulted(e) => ReceiverEnd::Faulted(info(&*e)),
                other => panic!("an outcome the scenarios do not know: {other:?}"),
            })
            .collect(),
    }
}

fn reconcile_info(error: &ReconcileError, receiver: usize) -> ErrorInfo {
    match error
        .receiver_fault()
        .and_then(|f| f.get(ReceiverId(receiver)))
    {
        // The receiver's own error, so that a timeout reads as one.
        Some(e) => info(&**e),
        None => info(error),
    }
}

type Lines = Arc<Mutex<Vec<Vec<u8>>>>;

enum Source {
    Statement(Box<Connection>, StatementSpec),
    Lines(Option<Vec<Vec<Vec<u8>>>>),
}

enum Dest {
    Statement(Box<Connection>, StatementSpec),
    Collect(Lines),
}

/// A command to the worker that owns a copy's connections.
enum Cmd {
    Start(Sender<Result<(), FailInfo>>),
    Run(Sender<Result<SummaryInfo, FailInfo>>),
    Transfer(Sender<Result<(u64, u64), FailInfo>>),
    Next(Sender<Option<Result<(u64, u64), FaultInfo>>>),
    Reconcile(usize, Sender<Result<(), ErrorInfo>>),
    Live(Sender<Vec<usize>>),
    Finish(Sender<Result<SummaryInfo, FailInfo>>),
    Abort(String, Sender<FailInfo>),
    DropCopy(Sender<()>),
    Sql(Endpoint, String, Sender<Result<Rows, ErrorInfo>>),
    Session(Endpoint, Sender<SessionInfo>),
}

async fn connect(spec: &StatementSpec, endpoint: Endpoint) -> Result<Box<Connection>, OpenError> {
    let mut conn = Connection::connect_str(&spec.conninfo)
        .await
        .map_err(|e| OpenError {
            endpoint,
            statement: None,
            error: info(&e),
        })?;
    for sql in &spec.before {
        conn.execute(sql).await.map_err(|e| OpenError {
            endpoint,
            statement: Some(sql.clone()),
            error: info(&e),
        })?;
    }
    Ok(Box::new(conn))
}

/// Connects the sessions of `plan`, source first.
async fn open_plan(plan: CopyPlan, collected: &[Option<Lines>]) -> Result<Worker, OpenError> {
    let source = match plan.source {
        SourceSpec::Statement(spec) => {
            Source::Statement(connect(&spec, Endpoint::Source).await?, spec)
        }
        SourceSpec::Lines(chunks) => Source::Lines(Some(chunks)),
    };
    let mut dests = Vec::new();
    for (i, spec) in plan.destinations.into_iter().enumerate() {
        dests.push(match spec {
            DestinationSpec::Statement(spec) => {
                Dest::Statement(connect(&spec, Endpoint::Destination(i)).await?, spec)
            }
            DestinationSpec::Collect => {
                Dest::Collect(collected[i].clone().expect("a collecting destination"))
            }
        });
    }
    Ok(Worker { source, dests })
}

impl CopyDriver for AsyncDriver {
    type Copy = AsyncCopy;

    fn name(&self) -> &'static str {
        "copyman-async"
    }

    fn open(&self, plan: CopyPlan) -> Result<AsyncCopy, OpenError> {
        let collected: Vec<Option<Lines>> = plan
            .destinations
            .iter()
            .map(|d| matches!(d, DestinationSpec::Collect).then(Lines::default))
            .collect();
        let lines = collected.clone();
        let (opened_tx, opened_rx) = channel();
        let (tx, rx) = channel();
        let worker = thread::Builder::new()
            .name("copyman-async copy".into())
            .spawn(move || {
                let runtime = runtime();
                let _context = runtime.enter();
                match runtime.block_on(open_plan(plan, &lines)) {
                    Ok(mut worker) => {
                        let _ = opened_tx.send(Ok(()));
                        worker.serve(&runtime, &rx);
                    }
                    Err(e) => {
                        let _ = opened_tx.send(Err(e));
                    }
                }
            })
            .expect("spawn the copy's worker");
        match opened_rx.recv() {
            Ok(Ok(())) => Ok(AsyncCopy {
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
}

/// The connections of one copy, on their worker thread.
struct Worker {
    source: Source,
    dests: Vec<Dest>,
}

impl Worker {
    fn serve(&mut self, runtime: &Runtime, rx: &Rx<Cmd>) {
        while let Ok(cmd) = rx.recv() {
            match cmd {
                Cmd::Sql(endpoint, sql, reply) => {
                    let _ = reply.send(runtime.block_on(self.sql(endpoint, &sql)));
                }
                Cmd::Session(endpoint, reply) => {
                    let _ = reply.send(self.session(endpoint));
                }
                Cmd::Start(_) | Cmd::Run(_) | Cmd::Transfer(_) => self.copy(cmd, runtime, rx),
                _ => panic!("no copy in progress"),
            }
        }
    }

    async fn sql(&mut self, endpoint: Endpoint, sql: &str) -> Result<Rows, ErrorInfo> {
        let conn = match (endpoint, &mut self.source) {
            (Endpoint::Source, Source::Statement(conn, _)) => conn,
            (Endpoint::Destination(i), _) => match self.dests.get_mut(i) {
                Some(Dest::Statement(conn, _)) => conn,
                _ => return Err(ErrorInfo::message(format!("{endpoint} has no session"))),
            },
            _ => return Err(ErrorInfo::message(format!("{endpoint} has no session"))),
        };
        conn.query(sql).await.map_err(|e| info(&e))
    }

    fn session(&mut self, endpoint: Endpoint) -> SessionInfo {
        let conn = match (endpoint, &mut self.source) {
            (Endpoint::Source, Source::Statement(conn, _)) => conn,
            (Endpoint::Destination(i), _) => match self.dests.get_mut(i) {
                Some(Dest::Statement(conn, _)) => conn,
                _ => return SessionInfo::default(),
            },
            _ => return SessionInfo::default(),
        };
        session_info(conn)
    }

    /// Runs one copy over the connections, as `how` says, serving commands until it is over.
    fn copy(&mut self, how: Cmd, runtime: &Runtime, rx: &Rx<Cmd>) {
        let Self { source, dests } = self;
        let source_spec = match &*source {
            Source::Statement(_, spec) => Some(spec),
            Source::Lines(_) => None,
        };
        let dest_specs = dests.iter().filter_map(|d| match d {
            Dest::Statement(_, spec) => Some(spec),
            Dest::Collect(_) => None,
        });
        let mut options = Options::default();
        if let Some(timeout) = stall_timeout(source_spec.into_iter().chain(dest_specs)) {
            options = options.with_stall_timeout(timeout);
        }
        let mut receivers: Vec<Box<dyn Receiver + '_>> = Vec::new();
        for dest in dests.iter_mut() {
            match dest {
                Dest::Statement(conn, spec) => {
                    receivers.push(Box::new(StatementReceiver::new(conn, spec.copy.clone())));
                }
                Dest::Collect(lines) => {
                    let lines = lines.clone();
                    receivers.push(Box::new(CallReceiver::new(move |chunk: &[Bytes]| {
                        lines
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .extend(chunk.iter().map(|l| l.to_vec()));
                        Ok(())
                    })));
                }
            }
        }
        let producer: Box<dyn Producer + '_> = match source {
            Source::Statement(conn, spec) => {
                let mut producer = StatementProducer::new(conn, spec.copy.clone());
                if let Some(size) = spec.buffer_size {
                    producer = producer.buffer_size(size);
                }
                Box::new(producer)
            }
            Source::Lines(chunks) => {
                let chunks = chunks.take().expect("one copy per opened plan");
                Box::new(IteratorProducer::new(chunks))
            }
        };
        drive(producer, receivers, options, how, runtime, rx);
    }
}

/// Carries out `how` with a `CopyManager` of `producer` and `receivers`.
fn drive<'a>(
    producer: Box<dyn Producer + 'a>,
    receivers: Vec<Box<dyn Receiver + 'a>>,
    options: Options,
    how: Cmd,
    runtime: &Runtime,
    rx: &Rx<Cmd>,
) {
    let reply = match how {
        Cmd::Run(reply) => {
            let result = runtime.block_on(async {
                CopyManager::start_with(producer, receivers, options)
                    .await?
                    .run()
                    .await
            });
            let _ = reply.send(result.map(summary_info).map_err(|e| fail_info(&e)));
            return;
        }
        Cmd::Transfer(reply) if options.stall_timeout.is_some() => {
            let result = runtime.block_on(async {
                CopyManager::start_with(producer, receivers, options)
                    .await?
                    .run()
                    .await
            });
            let _ = reply.send(
                result
                    .map(|s| (s.messages, s.bytes))
                    .map_err(|e| fail_info(&e)),
            );
            return;
        }
        Cmd::Transfer(reply) => {
            let result = runtime.block_on(transfer(producer, receivers));
            let _ = reply.send(result.map_err(|e| fail_info(&e)));
            return;
        }
        Cmd::Start(reply) => reply,
        _ => unreachable!("only Start, Run and Transfer begin a copy"),
    };
    let mut copy = match runtime.block_on(CopyManager::start_with(producer, receivers, options)) {
        Ok(copy) => {
            let _ = reply.send(Ok(()));
            copy
        }
        Err(fail) => {
            let _ = reply.send(Err(fail_info(&fail)));
            return;
        }
    };
    while let Ok(cmd) = rx.recv() {
        match cmd {
            Cmd::Next(reply) => {
                let next = runtime.block_on(copy.next());
                let _ = reply.send(next.map(|p| p.map_err(|f| fault_info(&f))));
            }
            Cmd::Reconcile(i, reply) => {
                let result = runtime.block_on(copy.reconcile(ReceiverId(i)));
                let _ = reply.send(result.map_err(|e| reconcile_info(&e, i)));
            }
            Cmd::Live(reply) => {
                let _ = reply.send(copy.live_receivers().into_iter().map(|r| r.0).collect());
            }
            Cmd::Finish(reply) => {
                let result = runtime.block_on(copy.finish());
                let _ = reply.send(result.map(summary_info).map_err(|e| fail_info(&e)));
                return;
            }
            Cmd::Abort(reason, reply) => {
                let fail = runtime.block_on(copy.abort(&reason));
                let _ = reply.send(fail_info(&fail));
                return;
            }
            Cmd::DropCopy(reply) => {
                drop(copy);
                let _ = reply.send(());
                return;
            }
            Cmd::Sql(endpoint, _, reply) => {
                let _ = reply.send(Err(ErrorInfo::message(format!(
                    "{endpoint}: a copy is in progress on this session"
                ))));
            }
            Cmd::Session(endpoint, _) => {
                panic!("{endpoint}: a copy is in progress on this session")
            }
            Cmd::Start(_) | Cmd::Run(_) | Cmd::Transfer(_) => panic!("a copy is in progress"),
        }
    }
}

/// A copy opened by [`AsyncDriver`]: a handle on its worker thread.
pub struct AsyncCopy {
    tx: Option<Sender<Cmd>>,
    worker: Option<JoinHandle<()>>,
    collected: Vec<Option<Lines>>,
}

impl AsyncCopy {
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

impl Drop for AsyncCopy {
    fn drop(&mut self) {
        // Closing the channel ends the worker, which drops the connections (and an unfinished
        // copy first).
        self.tx = None;
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

impl RunningCopy for AsyncCopy {
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

/// What a connection heard and did, as plain data (taking its notices).
fn session_info(conn: &mut Connection) -> SessionInfo {
    SessionInfo {
        notices: conn
            .take_notices()
            .into_iter()
            .map(|n| NoticeInfo {
                severity: n.severity,
                sqlstate: n.code,
                message: n.message,
            })
            .collect(),
        notifications: conn
            .take_notifications()
            .into_iter()
            .map(|n| (n.channel, n.payload))
            .collect(),
        command_tag: conn.command_tag().map(str::to_owned),
        received_bytes: conn.session().received_bytes(),
    }
}

/// The copy's stall timeout: the smallest timeout any session of the plan gives.
fn stall_timeout<'s>(
    specs: impl IntoIterator<Item = &'s StatementSpec>,
) -> Option<std::time::Duration> {
    specs.into_iter().filter_map(|s| s.timeout).min()
}
