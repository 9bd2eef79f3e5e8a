//! Step 4 and 5 of a run: the copy manager driven to its end, faults mapped to destinations, and
//! the row counts checked.

use std::cell::Cell;
use std::collections::BTreeSet;

use copyman_core::session::CopyFormat;
use copyman_core::{BoxError, Chunk, SharedError};
use copyman_sync::{
    CopyFail, CopyManager, CountMismatch, Data, Fault, Options, Producer, Protocol, Receiver,
    ReceiverOutcome, Summary, TransmitError,
};
use copyman_wire::realign::Completion;

use crate::dest::Dest;
use crate::progress::Progress;
use crate::report::{self, ErrorInfo};
use crate::signals;

/// What a run of the copy manager came to.
pub(crate) struct Driven {
    /// The copy could not start.
    pub(crate) start_failed: bool,
    /// Why it was aborted, if copyman aborted it.
    pub(crate) aborted: Option<String>,
    /// Destinations (by index) that faulted during the copy.
    pub(crate) faults: Vec<(usize, SharedError)>,
    /// The manager's result.
    pub(crate) result: Result<Summary, CopyFail>,
    /// Payload bytes read from the source.
    pub(crate) bytes: u64,
}

pub(crate) fn drive<'a>(
    producer: impl Producer + 'a,
    receivers: Vec<Box<dyn Receiver + 'a>>,
    live: &[usize],
    keep_going: bool,
    stall_timeout: Option<std::time::Duration>,
    progress: &mut Progress,
) -> Driven {
    // `--stall-timeout` during the copy is core's stall rule (an endpoint that moves no byte for
    // that long faults, named); the sessions' socket timeouts cover what comes before and after.
    let mut options = Options::default();
    options.stall_timeout = stall_timeout;
    let mut copy = match CopyManager::start_with(producer, receivers, options) {
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
    loop {
        // A signal aborts the copy; a blocked read or write returns once the watch thread has
        // cancelled the server's side.
        if let Some(signal) = signals::received() {
            aborted = Some(format!("interrupted by {}", signals::name(signal)));
            break;
        }
        let Some(cycle) = copy.next() else { break };
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

pub(crate) fn record_summary(summary: &Summary, live: &[usize], dests: &mut [Dest<'_>]) {
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
/// server destinations must agree with each other. Returns the run's error, if any. With
/// `allow_mismatch` (`--allow-count-mismatch`: triggers that route or drop rows) a destination
/// that stored another number of rows is a warning.
pub(crate) fn check_counts(
    dests: &mut [Dest<'_>],
    source_rows: Option<u64>,
    server_source: bool,
    keep_going: bool,
    allow_mismatch: bool,
) -> Option<String> {
    match source_rows {
        Some(expected) => {
            for dest in dests.iter_mut().filter(|d| d.error.is_none()) {
                if let Some(rows) = dest.rows.filter(|&r| r != expected) {
                    if allow_mismatch {
                        report::warn(format_args!(
                            "{} stored {} where the source sent {} (--allow-count-mismatch)",
                            dest.endpoint.display(),
                            crate::progress::rows(rows),
                            crate::progress::rows(expected)
                        ));
                        continue;
                    }
                    dest.fail(
                        &(std::sync::Arc::new(CountMismatch {
                            producer: expected,
                            receiver: rows,
                        }) as SharedError),
                    );
                    if !keep_going {
                        return Some(format!(
                            "row count mismatch: the source sent {}, {} stored {rows}",
                            crate::progress::rows(expected),
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
            (counts.len() > 1 && !allow_mismatch).then(|| {
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

/// Where the producer got to, kept outside the manager (which owns the producer).
#[derive(Debug, Default)]
pub(crate) struct ProducerTrack {
    pub(crate) ended: Cell<bool>,
    pub(crate) count: Cell<Option<u64>>,
    /// `--allow-count-mismatch`: the manager is not told the producer's count (it would fail a
    /// receiver that stored another number of rows); [`check_counts`] compares them instead.
    pub(crate) count_checked_here: Cell<bool>,
}

/// A producer that records reaching its end and its count.
pub(crate) struct Tracked<'a> {
    pub(crate) inner: Box<dyn Producer + 'a>,
    pub(crate) track: &'a ProducerTrack,
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
        if self.track.count_checked_here.get() {
            return None;
        }
        self.inner.count()
    }

    fn format(&self) -> Option<CopyFormat> {
        self.inner.format()
    }

    fn cancel(&mut self) -> Result<(), BoxError> {
        self.inner.cancel()
    }

    fn set_stall_timeout(&mut self, timeout: Option<std::time::Duration>) -> Result<(), BoxError> {
        self.inner.set_stall_timeout(timeout)
    }

    fn poll_socket(&self) -> Option<copyman_sync::PollSocket> {
        self.inner.poll_socket()
    }

    fn try_next_chunk(&mut self, eager: bool) -> Result<std::task::Poll<Option<Chunk>>, BoxError> {
        let chunk = self.inner.try_next_chunk(eager)?;
        if let std::task::Poll::Ready(None) = chunk {
            self.track.ended.set(true);
            self.track.count.set(self.inner.count());
        }
        Ok(chunk)
    }
}

/// A receiver that records its completion (`COPY n`), so that `--keep-going` can commit the
/// destinations that completed even when the manager fails the copy as a whole.
pub(crate) struct TrackedReceiver<'a> {
    pub(crate) inner: Box<dyn Receiver + 'a>,
    pub(crate) completed: &'a Cell<Option<Option<u64>>>,
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

    fn format(&self) -> Option<CopyFormat> {
        self.inner.format()
    }

    fn set_stall_timeout(&mut self, timeout: Option<std::time::Duration>) -> Result<(), BoxError> {
        self.inner.set_stall_timeout(timeout)
    }

    fn poll_socket(&self) -> Option<copyman_sync::PollSocket> {
        self.inner.poll_socket()
    }

    fn try_write(&mut self, bytes: &[u8]) -> Result<usize, BoxError> {
        self.inner.try_write(bytes)
    }

    fn read_server(&mut self) -> Result<(), BoxError> {
        self.inner.read_server()
    }
}
