//! The tokio adapter as a scenario driver ([`copyman_testkit::scenarios::CopyDriver`]).
//!
//! A copy borrows its connections (`StatementProducer<'c>`, `StatementReceiver<'c>`), so each
//! opened copy lives on a worker thread that owns a current-thread tokio runtime and the
//! connections, and runs the `CopyManager` on them; the scenario's (blocking) calls are sent to
//! it as commands, each carried out with `block_on`, and answered in plain data. The worker stays
//! inside its runtime's context between commands, as an async application would be, so that an
//! endpoint dropped mid-copy can cancel in the background.
//!
//! The sessions' copy options (a timeout, a window, keep-going) become the copy's [`Options`]
//! (`copyman_testkit::scenarios::worker::options`), as in copyman-sync's driver.

#![allow(dead_code, unreachable_pub)] // Each test binary uses a different part of this module.

use std::error::Error as StdError;
use std::sync::PoisonError;
use std::sync::mpsc::Receiver as Rx;

use bytes::Bytes;
use copyman_async::{
    CallReceiver, Connection, CopyManager, IteratorProducer, Options, Producer, Receiver,
    ReceiverId, StatementProducer, StatementReceiver, transfer,
};
use copyman_testkit::scenarios::worker::{
    self, Cmd, Infos, Lines, WorkerCopy, options, session_info,
};
use copyman_testkit::scenarios::{
    CopyDriver, CopyPlan, DestinationSpec, Endpoint, ErrorInfo, OpenError, Rows, SessionInfo,
    SourceSpec, StatementSpec,
};
use futures_util::StreamExt;
use tokio::runtime::Runtime;

/// copyman-async, for the shared scenarios.
#[derive(Debug, Clone, Copy, Default)]
pub struct AsyncDriver;

/// copyman-async's errors, with their SQLSTATE, as the scenarios' plain data.
const INFOS: Infos = Infos {
    adapter_code: |e| {
        e.downcast_ref::<copyman_async::Error>()
            .and_then(|e| e.code())
            .map(str::to_owned)
    },
};

/// A current-thread runtime, as a test's async code runs on.
pub fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// The SQLSTATE of the first error in `error`'s chain that has one.
pub fn sqlstate(error: &(dyn StdError + 'static)) -> Option<String> {
    INFOS.sqlstate(error)
}

/// `error` as plain data.
pub fn info(error: &(dyn StdError + 'static)) -> ErrorInfo {
    INFOS.error(error)
}

enum Source {
    Statement(Box<Connection>, StatementSpec),
    /// Chunks of lines, and the chunk a failed read comes before (`SourceSpec::FlakyLines`).
    Lines(Option<Vec<Vec<Vec<u8>>>>, Option<usize>),
}

/// A producer of the caller's whose read fails once ([`SourceSpec::FlakyLines`]).
struct Flaky(worker::Flaky);

#[async_trait::async_trait]
impl Producer for Flaky {
    fn protocol(&self) -> copyman_async::Protocol {
        copyman_async::Protocol::Chunks
    }

    async fn next_chunk(&mut self) -> Result<Option<copyman_core::Chunk>, copyman_core::BoxError> {
        self.0.next_chunk()
    }
}

enum Dest {
    Statement(Box<Connection>, StatementSpec),
    Collect(Lines),
}

async fn connect(spec: &StatementSpec, endpoint: Endpoint) -> Result<Box<Connection>, OpenError> {
    let mut conn = Connection::connect_str(&spec.conninfo)
        .await
        .map_err(|e| INFOS.open(endpoint, None, &e))?;
    for sql in &spec.before {
        conn.execute(sql)
            .await
            .map_err(|e| INFOS.open(endpoint, Some(sql), &e))?;
    }
    Ok(Box::new(conn))
}

/// Connects the sessions of `plan`, source first.
async fn open_plan(plan: CopyPlan, collected: &[Option<Lines>]) -> Result<Worker, OpenError> {
    let source = match plan.source {
        SourceSpec::Statement(spec) => {
            Source::Statement(connect(&spec, Endpoint::Source).await?, spec)
        }
        SourceSpec::Lines(chunks) => Source::Lines(Some(chunks), None),
        SourceSpec::FlakyLines {
            chunks,
            fails_before,
        } => Source::Lines(Some(chunks), Some(fails_before)),
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
    type Copy = WorkerCopy;

    fn name(&self) -> &'static str {
        "copyman-async"
    }

    fn open(&self, plan: CopyPlan) -> Result<WorkerCopy, OpenError> {
        let collected: Vec<Option<Lines>> = plan
            .destinations
            .iter()
            .map(|d| matches!(d, DestinationSpec::Collect).then(Lines::default))
            .collect();
        let lines = collected.clone();
        WorkerCopy::spawn("copyman-async copy", collected, move |opened, rx| {
            let runtime = runtime();
            let _context = runtime.enter();
            match runtime.block_on(open_plan(plan, &lines)) {
                Ok(mut worker) => {
                    let _ = opened.send(Ok(()));
                    worker.serve(&runtime, &rx);
                }
                Err(e) => {
                    let _ = opened.send(Err(e));
                }
            }
        })
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
                Cmd::Check(endpoint, reply) => {
                    let _ = reply.send(runtime.block_on(self.check(endpoint)));
                }
                Cmd::Session(endpoint, reply) => {
                    let _ = reply.send(self.session(endpoint));
                }
                Cmd::Closer(endpoint, reply) => {
                    let closer = self
                        .conn(endpoint)
                        .and_then(|c| c.closer().map_err(|e| info(&e)));
                    let _ = reply.send(closer);
                }
                Cmd::Start(_) | Cmd::Run(_) | Cmd::Transfer(_) => self.copy(cmd, runtime, rx),
                _ => panic!("no copy in progress"),
            }
        }
    }

    /// The raw session of `endpoint`.
    fn conn(&mut self, endpoint: Endpoint) -> Result<&mut Connection, ErrorInfo> {
        match (endpoint, &mut self.source) {
            (Endpoint::Source, Source::Statement(conn, _)) => Ok(&mut **conn),
            (Endpoint::Destination(i), _) => match self.dests.get_mut(i) {
                Some(Dest::Statement(conn, _)) => Ok(&mut **conn),
                _ => Err(ErrorInfo::message(format!("{endpoint} has no session"))),
            },
            _ => Err(ErrorInfo::message(format!("{endpoint} has no session"))),
        }
    }

    async fn sql(&mut self, endpoint: Endpoint, sql: &str) -> Result<Rows, ErrorInfo> {
        self.conn(endpoint)?.query(sql).await.map_err(|e| info(&e))
    }

    async fn check(&mut self, endpoint: Endpoint) -> Result<(), ErrorInfo> {
        self.conn(endpoint)?.check().await.map_err(|e| info(&e))
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
        session_info(
            conn.take_notices(),
            conn.take_notifications(),
            conn.command_tag(),
            conn.session().received_bytes(),
        )
    }

    /// Runs one copy over the connections, as `how` says, serving commands until it is over.
    fn copy(&mut self, how: Cmd, runtime: &Runtime, rx: &Rx<Cmd>) {
        let Self { source, dests } = self;
        let source_spec = match &*source {
            Source::Statement(_, spec) => Some(spec),
            Source::Lines(..) => None,
        };
        let dest_specs = dests.iter().filter_map(|d| match d {
            Dest::Statement(_, spec) => Some(spec),
            Dest::Collect(_) => None,
        });
        let options = options(source_spec.into_iter().chain(dest_specs));
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
            Source::Lines(chunks, None) => {
                let chunks = chunks.take().expect("one copy per opened plan");
                Box::new(IteratorProducer::new(chunks))
            }
            Source::Lines(chunks, Some(fails_before)) => {
                let chunks = chunks.take().expect("one copy per opened plan");
                Box::new(Flaky(worker::Flaky::new(chunks, Some(*fails_before))))
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
            let _ = reply.send(result.map(|s| INFOS.summary(s)).map_err(|e| INFOS.fail(&e)));
            return;
        }
        Cmd::Transfer(reply) if options != Options::default() => {
            let result = runtime.block_on(async {
                CopyManager::start_with(producer, receivers, options)
                    .await?
                    .run()
                    .await
            });
            let _ = reply.send(
                result
                    .map(|s| (s.messages, s.bytes))
                    .map_err(|e| INFOS.fail(&e)),
            );
            return;
        }
        Cmd::Transfer(reply) => {
            let result = runtime.block_on(transfer(producer, receivers));
            let _ = reply.send(result.map_err(|e| INFOS.fail(&e)));
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
            let _ = reply.send(Err(INFOS.fail(&fail)));
            return;
        }
    };
    while let Ok(cmd) = rx.recv() {
        let Some(cmd) = cmd.refuse_during_copy() else {
            continue;
        };
        match cmd {
            Cmd::Next(reply) => {
                let next = runtime.block_on(copy.next());
                let _ = reply.send(next.map(|p| p.map_err(|f| INFOS.fault(&f))));
            }
            Cmd::Reconcile(i, reply) => {
                let result = runtime.block_on(copy.reconcile(ReceiverId(i)));
                let _ = reply.send(result.map_err(|e| INFOS.reconcile(&e, i)));
            }
            Cmd::Live(reply) => {
                let _ = reply.send(copy.live_receivers().into_iter().map(|r| r.0).collect());
            }
            Cmd::PeakBuffered(reply) => {
                let _ = reply.send(copy.peak_buffered());
            }
            Cmd::UnderWay(reply) => {
                let _ = reply.send(copy.under_way());
            }
            Cmd::Finish(reply) => {
                let result = runtime.block_on(copy.finish());
                let _ = reply.send(result.map(|s| INFOS.summary(s)).map_err(|e| INFOS.fail(&e)));
                return;
            }
            Cmd::Abort(reason, reply) => {
                let fail = runtime.block_on(copy.abort(&reason));
                let _ = reply.send(INFOS.fail(&fail));
                return;
            }
            Cmd::DropCopy(reply) => {
                drop(copy);
                let _ = reply.send(());
                return;
            }
            other => unreachable!("refused above: {other:?}"),
        }
    }
}
