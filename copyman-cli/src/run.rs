//! `copyman table` and `copyman copy`: connect, plan the statements, copy with every server
//! destination inside its own transaction, then commit everywhere or roll back everywhere.
//!
//! The order of a run:
//! 1. connect to every server (a failure is exit 3), open files;
//! 2. plan: for `table`, look the table up on the source (kind, row estimate) and choose the
//!    format; build every statement from quoted names;
//! 3. `BEGIN` (and `TRUNCATE`) on each server destination;
//! 4. copy with [`CopyManager`]: a fault aborts every destination, or with `--keep-going` only
//!    the faulted ones;
//! 5. check: row counts agree with the source's, deferred constraints hold
//!    (`SET CONSTRAINTS ALL IMMEDIATE`);
//! 6. `COMMIT` every surviving destination (files are renamed into place) — or `ROLLBACK` all.
//!
//! The commits of step 6 are not atomic across servers (that would need two-phase commit, off by
//! default in PostgreSQL): everything that can fail is checked before the first `COMMIT`, and a
//! `COMMIT` that still fails is reported for its destination.

use std::cell::Cell;
use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use bytes::Bytes;
use copyman_core::{BoxError, Chunk, SharedError};
use copyman_sync::{
    CallReceiver, Connection, CopyFail, CopyManager, CountMismatch, Data, Fault, Producer,
    Protocol, Receiver, ReceiverOutcome, StatementProducer, StatementReceiver, Summary,
    TransmitError,
};
use copyman_wire::realign::Completion;

use crate::args::{Command, Endpoint, HiArgs, Output, Statements, Transfer};
use crate::conn::ServerSpec;
use crate::demo;
use crate::progress::{Estimate, Progress};
use crate::report::{self, DestinationReport, ErrorInfo, Exit, Fatal, RunReport, Status};
use crate::sql::Format;

/// Bytes read from a file source per chunk: each becomes one CopyData message for the servers.
const FILE_CHUNK: usize = 256 * 1024;

/// Runs the validated command line; returns the exit status.
///
/// # Errors
/// What ends the run early ([`Fatal`] carries its exit status); a broken pipe on stdout.
pub(crate) fn run(args: HiArgs) -> anyhow::Result<Exit> {
    report::set_verbose(args.output.verbose);
    match args.command {
        Command::Transfer(t) => {
            let report = transfer(&t, args.output)?;
            if args.output.json {
                report::print_json(&report.to_json())?;
            }
            if !args.output.quiet {
                let mut err = io::stderr().lock();
                report.write_human(&mut err)?;
            } else {
                report.write_errors(&mut io::stderr().lock())?;
            }
            Ok(report.exit())
        }
        Command::Demo { rows, destinations } => demo::run(rows, destinations, args.output),
    }
}

/// Runs a `table` or `copy` transfer to its end and reports how it went.
///
/// # Errors
/// [`Fatal`] for what ends the run before any copying (connections: exit 3; an unreadable
/// source); a broken pipe on stdout when it was the only destination.
pub(crate) fn transfer(t: &Transfer, output: Output) -> anyhow::Result<RunReport> {
    let started = Instant::now();
    let mut warned = BTreeSet::new();
    let mut source_conn = match &t.source {
        Endpoint::Server(spec) => Some(connect(spec, "source", &mut warned)?),
        _ => None,
    };
    let mut dests: Vec<Dest<'_>> = t.destinations.iter().map(Dest::new).collect();
    for dest in &mut dests {
        if let Endpoint::Server(spec) = dest.endpoint {
            dest.conn = Some(connect(spec, "destination", &mut warned)?);
        }
    }
    let mut file_source: Option<Box<dyn Read>> = match &t.source {
        Endpoint::Stdio => Some(Box::new(io::stdin().lock())),
        Endpoint::File(path) => Some(Box::new(File::open(path).map_err(|e| Fatal {
            exit: Exit::CopyFailed,
            message: format!("cannot open source file {}: {e}", path.display()),
        })?)),
        Endpoint::Server(_) => None,
    };

    let plan = plan(t, source_conn.as_mut(), &mut dests)?;
    for (dest, receive) in dests.iter_mut().zip(&plan.receive) {
        dest.receive.clone_from(receive);
    }
    if let Some(send) = &plan.send {
        report::log(format_args!("source: {send}"));
    }

    // Open files and transactions.
    for (i, dest) in dests.iter_mut().enumerate() {
        match dest.endpoint {
            Endpoint::Server(_) => {
                report::log(format_args!(
                    "destination {}: BEGIN{}; {}",
                    i + 1,
                    plan.truncate
                        .as_deref()
                        .map(|sql| format!("; {sql}"))
                        .unwrap_or_default(),
                    dest.receive.as_deref().unwrap_or_default()
                ));
                if let Err(e) = dest.begin(plan.truncate.as_deref()) {
                    dest.fail_with(describe_sync(&e));
                }
            }
            Endpoint::Stdio | Endpoint::File(_) => match FileSink::open(dest.endpoint) {
                Ok(sink) => dest.sink = Some(sink),
                Err(e) => dest.fail_with(ErrorInfo {
                    sqlstate: None,
                    message: format!("cannot write {}: {e}", dest.endpoint.display()),
                }),
            },
        }
    }

    let mut run_error: Option<String> = None;
    if !t.keep_going && dests.iter().any(|d| d.error.is_some()) {
        run_error = Some("a destination could not begin the copy".to_owned());
    }
    let mut progress = Progress::start(
        output.quiet,
        plan.estimate,
        source_conn.is_some(),
        dests.len(),
    );
    let producer_track = ProducerTrack::default();
    let completions: Vec<Cell<Option<Option<u64>>>> =
        dests.iter().map(|_| Cell::new(None)).collect();
    let mut bytes = 0;
    let mut source_rows = None;

    while run_error.is_none() {
        let live: Vec<usize> = (0..dests.len())
            .filter(|&i| dests[i].error.is_none())
            .collect();
        if live.is_empty() {
            run_error = Some("every destination failed".to_owned());
            break;
        }
        for c in &completions {
            c.set(None);
        }
        let driven = {
            let producer: Box<dyn Producer + '_> =
                match (source_conn.as_mut(), file_source.as_mut()) {
                    (Some(conn), _) => Box::new(StatementProducer::new(
                        conn,
                        plan.send.clone().unwrap_or_default(),
                    )),
                    (None, Some(reader)) => Box::new(FileProducer {
                        reader: &mut **reader,
                        done: false,
                    }),
                    (None, None) => unreachable!("a source is a server or a file"),
                };
            let producer = Tracked {
                inner: producer,
                track: &producer_track,
            };
            let receivers: Vec<Box<dyn Receiver + '_>> = dests
                .iter_mut()
                .zip(&completions)
                .filter(|(d, _)| d.error.is_none())
                .map(|(d, completed)| -> Box<dyn Receiver + '_> {
                    Box::new(TrackedReceiver {
                        inner: d.receiver(),
                        completed,
                    })
                })
                .collect();
            drive(producer, receivers, &live, t.keep_going, &mut progress)
        };
        bytes = driven.bytes;
        for (i, error) in &driven.faults {
            progress.destination_failed(*i);
            dests[*i].fail(error);
        }
        match driven.result {
            Ok(summary) => {
                source_rows = summary.producer_count;
                record_summary(&summary, &live, &mut dests);
                break;
            }
            Err(fail) if driven.start_failed => {
                let retry = t.keep_going
                    && fail.producer_fault.is_none()
                    && !fail.receiver_faults.is_empty();
                for (id, error) in &fail.receiver_faults {
                    progress.destination_failed(live[id.0]);
                    dests[live[id.0]].fail(error);
                }
                if let Some(error) = &fail.producer_fault {
                    run_error = Some(format!("source: {}", report::describe(&**error)));
                } else if !retry {
                    run_error = Some("a destination could not start its COPY".to_owned());
                } else {
                    // The COPYs that did start were failed: their transactions must start over.
                    for dest in dests.iter_mut().filter(|d| d.error.is_none()) {
                        if dest.conn.is_some() {
                            dest.rollback();
                            if let Err(e) = dest.begin(plan.truncate.as_deref()) {
                                dest.fail_with(describe_sync(&e));
                            }
                        }
                    }
                    report::log("restarting the copy without the destinations that failed");
                }
            }
            Err(fail) => {
                source_rows = producer_track.count.get();
                for (id, error) in &fail.receiver_faults {
                    dests[live[id.0]].fail(error);
                }
                // With --keep-going, destinations that completed their COPY survive a failure
                // found only when another one completed (copyman-sync reports it as a failure
                // of the whole copy).
                let salvage = t.keep_going
                    && driven.aborted.is_none()
                    && fail.producer_fault.is_none()
                    && producer_track.ended.get()
                    && live.iter().any(|&i| completions[i].get().is_some());
                if salvage {
                    for &i in &live {
                        match completions[i].get() {
                            Some(rows) if dests[i].error.is_none() => dests[i].rows = rows,
                            _ if dests[i].error.is_none() => dests[i].fail_with(ErrorInfo {
                                sqlstate: None,
                                message: format!("COPY did not complete: {}", fail.reason),
                            }),
                            _ => {}
                        }
                    }
                } else {
                    run_error = Some(match (&driven.aborted, &fail.producer_fault) {
                        (_, Some(error)) => format!("source: {}", report::describe(&**error)),
                        (Some(reason), None) => reason.clone(),
                        (None, None) => fail.reason.clone(),
                    });
                }
                break;
            }
        }
    }
    progress.finish();

    if run_error.is_none() {
        run_error = check_counts(&mut dests, source_rows, source_conn.is_some(), t.keep_going);
    }
    if run_error.is_none() {
        for (i, dest) in dests.iter_mut().enumerate() {
            if dest.error.is_some() {
                continue;
            }
            if let Some(conn) = dest.conn.as_mut() {
                report::log(format_args!(
                    "destination {}: SET CONSTRAINTS ALL IMMEDIATE",
                    i + 1
                ));
                if let Err(e) = conn.execute("SET CONSTRAINTS ALL IMMEDIATE") {
                    dest.fail_with(describe_sync(&e));
                }
            }
        }
        if !t.keep_going && dests.iter().any(|d| d.error.is_some()) {
            run_error = Some("a destination failed its final checks".to_owned());
        }
    }

    let stdout_only_broke = dests.len() == 1 && dests[0].broken_pipe;
    let mut reports = Vec::new();
    for (i, dest) in dests.iter_mut().enumerate() {
        let status = if dest.error.is_some() {
            dest.discard();
            Status::Failed
        } else if run_error.is_some() {
            dest.discard();
            Status::RolledBack
        } else {
            report::log(format_args!("destination {}: COMMIT", i + 1));
            match dest.commit() {
                Ok(()) => Status::Committed,
                Err(error) => {
                    dest.error = Some(error);
                    Status::Failed
                }
            }
        };
        reports.push(DestinationReport {
            endpoint: dest.endpoint.display(),
            status,
            rows: dest.rows,
            error: dest.error.clone(),
        });
    }
    if stdout_only_broke {
        // The reader of our stdout went away (`copyman … --to - | head`): not an error.
        return Err(io::Error::from(io::ErrorKind::BrokenPipe).into());
    }
    Ok(RunReport {
        source: t.source.display(),
        format: plan.format.map(Format::name),
        source_rows,
        bytes,
        duration: started.elapsed(),
        destinations: reports,
        error: run_error,
    })
}

/// Connects, or ends the run with exit 3.
fn connect(
    spec: &ServerSpec,
    role: &str,
    warned: &mut BTreeSet<String>,
) -> anyhow::Result<Connection> {
    for warning in &spec.warnings {
        if warned.insert(warning.clone()) {
            report::warn(warning);
        }
    }
    report::log(format_args!("connecting to {role} {}", spec.display));
    let conn = Connection::connect_tls(&spec.config, &spec.tls).map_err(|e| Fatal {
        exit: Exit::Connect,
        message: format!(
            "cannot connect to {role} {}: {}",
            spec.display,
            describe_sync(&e)
        ),
    })?;
    report::log(format_args!(
        "connected to {role} {} (PostgreSQL {})",
        spec.display,
        conn.session().parameter("server_version").unwrap_or("?")
    ));
    Ok(conn)
}

fn describe_sync(error: &copyman_sync::Error) -> ErrorInfo {
    report::describe(error)
}

/// The statements and what the bar can know in advance.
struct Plan {
    send: Option<String>,
    receive: Vec<Option<String>>,
    truncate: Option<String>,
    format: Option<Format>,
    estimate: Estimate,
}

fn plan(
    t: &Transfer,
    source: Option<&mut Connection>,
    dests: &mut [Dest<'_>],
) -> anyhow::Result<Plan> {
    let file_estimate = match &t.source {
        Endpoint::File(path) => fs::metadata(path)
            .ok()
            .filter(fs::Metadata::is_file)
            .map_or(Estimate::Unknown, |m| Estimate::Bytes(m.len())),
        _ => Estimate::Unknown,
    };
    match &t.statements {
        Statements::Raw { send, receive } => Ok(Plan {
            send: send.clone(),
            receive: receive.clone(),
            truncate: None,
            format: None,
            estimate: file_estimate,
        }),
        Statements::Table {
            copy,
            truncate,
            format,
        } => {
            let mut select = false;
            let mut estimate = file_estimate;
            let mut source_version = None;
            if let Some(conn) = source {
                source_version = conn.session().server_version_num();
                let rows = conn.query(&copy.estimate_query()).map_err(|e| Fatal {
                    exit: Exit::CopyFailed,
                    message: format!("source table {}: {}", copy.table, describe_sync(&e)),
                })?;
                let row = rows.first().ok_or_else(|| Fatal {
                    exit: Exit::CopyFailed,
                    message: format!("source table {} not found", copy.table),
                })?;
                // Views, partitioned and foreign tables are copied with COPY (SELECT …).
                select = row.first().and_then(Option::as_deref) != Some("r");
                let reltuples: i64 = row
                    .get(1)
                    .and_then(Option::as_deref)
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(-1);
                if copy.condition.is_none() && reltuples > 0 {
                    estimate = Estimate::Rows(reltuples.unsigned_abs());
                }
            }
            let format = format.unwrap_or_else(|| default_format(source_version, t, dests));
            report::log(format_args!("format: {}", format.name()));
            let send = t.source.is_server().then(|| copy.copy_out(format, select));
            let receive = dests
                .iter()
                .map(|d| d.endpoint.is_server().then(|| copy.copy_in(format)))
                .collect();
            Ok(Plan {
                send,
                receive,
                truncate: truncate.then(|| copy.truncate()),
                format: Some(format),
                estimate,
            })
        }
    }
}

/// Binary between servers of one major version, else text.
fn default_format(source_version: Option<u32>, t: &Transfer, dests: &[Dest<'_>]) -> Format {
    let major = |v: u32| if v >= 100_000 { v / 10_000 } else { v / 100 };
    let Some(source) = source_version.map(major) else {
        return Format::Text;
    };
    let same = t.destinations.iter().all(Endpoint::is_server)
        && dests.iter().all(|d| {
            d.conn
                .as_ref()
                .and_then(|c| c.session().server_version_num())
                .is_some_and(|v| major(v) == source)
        });
    if same { Format::Binary } else { Format::Text }
}

/// What a run of the copy manager came to.
struct Driven {
    /// The copy could not start.
    start_failed: bool,
    /// Why it was aborted, if copyman aborted it.
    aborted: Option<String>,
    /// Destinations (by index) that faulted during the copy.
    faults: Vec<(usize, SharedError)>,
    /// The manager's result.
    result: Result<Summary, CopyFail>,
    /// Payload bytes read from the source.
    bytes: u64,
}

fn drive<'a>(
    producer: impl Producer + 'a,
    receivers: Vec<Box<dyn Receiver + 'a>>,
    live: &[usize],
    keep_going: bool,
    progress: &mut Progress,
) -> Driven {
    let mut copy = match CopyManager::start(producer, receivers) {
        Ok(copy) => copy,
        Err(fail) => {
            return Driven {
                start_failed: true,
                aborted: None,
                faults: Vec::new(),
                result: Err(fail),
                bytes: 0,
            };
        }
    };
    let mut faults = Vec::new();
    let mut aborted = None;
    while let Some(cycle) = copy.next() {
        match cycle {
            Ok(_) => {
                let (rows, bytes) = copy.totals();
                progress.update(rows, bytes);
            }
            Err(Fault::Receiver(fault)) => {
                for (id, error) in &fault.faults {
                    let index = live[id.0];
                    report::log(format_args!(
                        "destination {} faulted: {}",
                        index + 1,
                        report::describe(&**error)
                    ));
                    progress.destination_failed(index);
                    faults.push((index, error.clone()));
                }
                if !keep_going {
                    let which: Vec<String> = fault
                        .faults
                        .iter()
                        .map(|(id, _)| (live[id.0] + 1).to_string())
                        .collect();
                    aborted = Some(format!("destination {} failed", which.join(", ")));
                    break;
                }
            }
            Err(Fault::Producer(fault)) => {
                aborted = Some(format!("source: {}", report::describe(&*fault.error)));
                break;
            }
            Err(other) => {
                aborted = Some(other.to_string());
                break;
            }
        }
    }
    let bytes = copy.totals().1;
    let result = match &aborted {
        Some(reason) => Err(copy.abort(reason)),
        None => copy.finish(),
    };
    Driven {
        start_failed: false,
        aborted,
        faults,
        result,
        bytes,
    }
}

fn record_summary(summary: &Summary, live: &[usize], dests: &mut [Dest<'_>]) {
    for (id, outcome) in &summary.receivers {
        let dest = &mut dests[live[id.0]];
        match outcome {
            ReceiverOutcome::Completed(rows) => dest.rows = *rows,
            ReceiverOutcome::Faulted(error) => dest.fail(error),
            _ => dest.fail_with(ErrorInfo {
                sqlstate: None,
                message: "unknown outcome".to_owned(),
            }),
        }
    }
}

/// Row counts: each destination's must be the source's; without a source count (a file), the
/// server destinations must agree with each other. Returns the run's error, if any.
fn check_counts(
    dests: &mut [Dest<'_>],
    source_rows: Option<u64>,
    server_source: bool,
    keep_going: bool,
) -> Option<String> {
    match source_rows {
        Some(expected) => {
            for dest in dests.iter_mut().filter(|d| d.error.is_none()) {
                if let Some(rows) = dest.rows.filter(|&r| r != expected) {
                    dest.fail(
                        &(std::sync::Arc::new(CountMismatch {
                            producer: expected,
                            receiver: rows,
                        }) as SharedError),
                    );
                    if !keep_going {
                        return Some(format!(
                            "row count mismatch: the source sent {expected} rows, {} stored {rows}",
                            dest.endpoint.display()
                        ));
                    }
                }
            }
            None
        }
        None if server_source => Some("the source reported no row count".to_owned()),
        None => {
            let counts: BTreeSet<u64> = dests
                .iter()
                .filter(|d| d.error.is_none())
                .filter_map(|d| d.rows)
                .collect();
            (counts.len() > 1).then(|| {
                let all: Vec<String> = dests
                    .iter()
                    .filter_map(|d| {
                        d.rows
                            .map(|r| format!("{} stored {r}", d.endpoint.display()))
                    })
                    .collect();
                format!("destinations disagree on the row count: {}", all.join(", "))
            })
        }
    }
}

/// One destination through the run.
struct Dest<'e> {
    endpoint: &'e Endpoint,
    conn: Option<Connection>,
    sink: Option<FileSink>,
    receive: Option<String>,
    rows: Option<u64>,
    error: Option<ErrorInfo>,
    /// It failed because stdout's reader went away.
    broken_pipe: bool,
}

impl<'e> Dest<'e> {
    fn new(endpoint: &'e Endpoint) -> Self {
        Self {
            endpoint,
            conn: None,
            sink: None,
            receive: None,
            rows: None,
            error: None,
            broken_pipe: false,
        }
    }

    fn begin(&mut self, truncate: Option<&str>) -> Result<(), copyman_sync::Error> {
        if let Some(conn) = self.conn.as_mut() {
            conn.execute("BEGIN")?;
            if let Some(sql) = truncate {
                conn.execute(sql)?;
            }
        }
        Ok(())
    }

    /// Marks it failed with `error`, unless it already failed (the first error stands).
    fn fail(&mut self, error: &SharedError) {
        if self.error.is_none() {
            self.broken_pipe =
                matches!(self.endpoint, Endpoint::Stdio) && report::is_broken_pipe(&**error);
            self.error = Some(report::describe(&**error));
        }
    }

    fn fail_with(&mut self, error: ErrorInfo) {
        if self.error.is_none() {
            self.error = Some(error);
        }
    }

    /// Its receiver for one attempt at the copy.
    fn receiver(&mut self) -> Box<dyn Receiver + '_> {
        match (&mut self.conn, &mut self.sink) {
            (Some(conn), _) => Box::new(StatementReceiver::new(
                conn,
                self.receive.clone().unwrap_or_default(),
            )),
            (None, Some(sink)) => Box::new(CallReceiver::new(move |lines: &[Bytes]| {
                for line in lines {
                    sink.write_all(line)?;
                }
                Ok::<(), BoxError>(())
            })),
            (None, None) => unreachable!("a destination is a server or a file"),
        }
    }

    fn rollback(&mut self) {
        if let Some(conn) = self.conn.as_mut() {
            if conn.is_ready() {
                // A connection the server closed has nothing to roll back.
                let _ = conn.execute("ROLLBACK");
            }
        }
    }

    fn discard(&mut self) {
        self.rollback();
        if let Some(sink) = self.sink.take() {
            sink.discard();
        }
    }

    fn commit(&mut self) -> Result<(), ErrorInfo> {
        if let Some(conn) = self.conn.as_mut() {
            conn.execute("COMMIT").map_err(|e| describe_sync(&e))?;
        }
        if let Some(sink) = self.sink.take() {
            sink.commit().map_err(|e| ErrorInfo {
                sqlstate: None,
                message: format!("cannot write {}: {e}", self.endpoint.display()),
            })?;
        }
        Ok(())
    }
}

/// Where the producer got to, kept outside the manager (which owns the producer).
#[derive(Debug, Default)]
struct ProducerTrack {
    ended: Cell<bool>,
    count: Cell<Option<u64>>,
}

/// A producer that records reaching its end and its count.
struct Tracked<'a> {
    inner: Box<dyn Producer + 'a>,
    track: &'a ProducerTrack,
}

impl Producer for Tracked<'_> {
    fn protocol(&self) -> Protocol {
        self.inner.protocol()
    }

    fn start(&mut self, source_frames: bool) -> Result<(), BoxError> {
        self.track.ended.set(false);
        self.inner.start(source_frames)
    }

    fn next_chunk(&mut self) -> Result<Option<Chunk>, BoxError> {
        let chunk = self.inner.next_chunk()?;
        if chunk.is_none() {
            self.track.ended.set(true);
            self.track.count.set(self.inner.count());
        }
        Ok(chunk)
    }

    fn count(&self) -> Option<u64> {
        self.inner.count()
    }

    fn cancel(&mut self) -> Result<(), BoxError> {
        self.inner.cancel()
    }
}

/// A receiver that records its completion (`COPY n`), so that `--keep-going` can commit the
/// destinations that completed even when the manager fails the copy as a whole.
struct TrackedReceiver<'a> {
    inner: Box<dyn Receiver + 'a>,
    completed: &'a Cell<Option<Option<u64>>>,
}

impl Receiver for TrackedReceiver<'_> {
    fn protocol(&self) -> Protocol {
        self.inner.protocol()
    }

    fn start(&mut self) -> Result<(), BoxError> {
        self.inner.start()
    }

    fn transmit(&mut self, data: &Data) -> Result<(), TransmitError> {
        self.inner.transmit(data)
    }

    fn complete(&mut self) -> Result<Option<u64>, BoxError> {
        let count = self.inner.complete()?;
        self.completed.set(Some(count));
        Ok(count)
    }

    fn fail(&mut self, reason: &str, completion: &Completion) -> Result<(), BoxError> {
        self.inner.fail(reason, completion)
    }
}

/// Reads a file (or stdin) in large chunks, each handed on as one blob: servers get it as one
/// CopyData message (COPY accepts any split of its data), files as it is.
struct FileProducer<'r> {
    reader: &'r mut dyn Read,
    done: bool,
}

impl Producer for FileProducer<'_> {
    fn protocol(&self) -> Protocol {
        Protocol::Chunks
    }

    fn start(&mut self, _source_frames: bool) -> Result<(), BoxError> {
        Ok(())
    }

    fn next_chunk(&mut self) -> Result<Option<Chunk>, BoxError> {
        if self.done {
            return Ok(None);
        }
        let mut buf = vec![0; FILE_CHUNK];
        let mut filled = 0;
        while filled < buf.len() {
            match self.reader.read(&mut buf[filled..]) {
                Ok(0) => {
                    self.done = true;
                    break;
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        if filled == 0 {
            return Ok(None);
        }
        buf.truncate(filled);
        Ok(Some(Chunk::lines(vec![Bytes::from(buf)])))
    }
}

/// A file destination: written to a temporary file beside it and renamed into place on commit,
/// so a failed copy leaves an existing file as it was. Stdout and special files (`/dev/null`, a
/// pipe) are written directly.
struct FileSink {
    out: BufWriter<Out>,
    /// The temporary file and its final name.
    rename: Option<(PathBuf, PathBuf)>,
}

enum Out {
    Stdout(io::Stdout),
    File(File),
}

impl Write for Out {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Stdout(s) => s.write(buf),
            Self::File(f) => f.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Stdout(s) => s.flush(),
            Self::File(f) => f.flush(),
        }
    }
}

impl FileSink {
    fn open(endpoint: &Endpoint) -> io::Result<Self> {
        let (out, rename) = match endpoint {
            Endpoint::File(path) => {
                let special = fs::metadata(path).is_ok_and(|m| !m.is_file());
                if special {
                    (Out::File(File::create(path)?), None)
                } else {
                    let temp = temp_path(path);
                    (Out::File(File::create(&temp)?), Some((temp, path.clone())))
                }
            }
            _ => (Out::Stdout(io::stdout()), None),
        };
        Ok(Self {
            out: BufWriter::with_capacity(FILE_CHUNK, out),
            rename,
        })
    }

    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.out.write_all(data)
    }

    fn commit(mut self) -> io::Result<()> {
        self.out.flush()?;
        if let Some((temp, path)) = self.rename.take() {
            if let Out::File(file) = self.out.get_ref() {
                file.sync_all()?;
            }
            fs::rename(&temp, &path)?;
        }
        Ok(())
    }

    fn discard(mut self) {
        if let Some((temp, _)) = self.rename.take() {
            let _ = fs::remove_file(temp);
        } else {
            // Stdout: what was written is out already; pass on what is buffered.
            let _ = self.out.flush();
        }
    }
}

/// `dir/.name.copyman-PID.tmp` beside `path`.
fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "copyman".to_owned());
    path.with_file_name(format!(".{name}.copyman-{}.tmp", std::process::id()))
}
