//! One COPY through copyman-sync's copy manager ([`drive`]), as every copy of the job runs it (a
//! table's, a group member's, a range's): under the shared read-rate cap ([`Rate`]), stopped by
//! an interrupt, the job's stop or a sibling range's failure, and said as what it came to
//! ([`Driven`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use copyman_sync::{CopyManager, Fault, Producer, Receiver, ReceiverOutcome};

use super::error::TableError;
use super::report::Event;
use super::running::{JOB_STOPPED, OTHER_FAILED, Shared};

/// The shared read-rate cap: the bytes read are paced at `per_second`, and time nothing was
/// read (a lock waited for, a checksum computed) is credited for at most [`RATE_BURST`] — an
/// average since the job began let a reader that had waited read at full speed until it caught
/// up (live52 F1: 30 MiB/s under `--max-rate 1M` after a 17 s lock wait).
pub(super) struct Rate {
    per_second: u64,
    /// When the bytes read so far are paced to have been read.
    paced: Mutex<Instant>,
}

/// How long the rate cap sleeps at once: an interrupt is noticed within this.
const RATE_SLICE: Duration = Duration::from_millis(100);

/// The most idle time the rate cap credits: a burst after a wait reads at most this long's
/// worth of bytes above the cap.
const RATE_BURST: Duration = Duration::from_secs(1);

impl Rate {
    /// A cap of `per_second` bytes, from now.
    pub(super) fn new(per_second: u64) -> Self {
        Self {
            per_second,
            paced: Mutex::new(Instant::now()),
        }
    }

    /// Counts `bytes` read, then sleeps until the cap allows them; `waiting` is called at each
    /// slice of the sleep (the worker is not stuck: it waits on purpose), which ends early when
    /// `stopped` says so (the job is interrupted or stopped, a sibling range failed).
    fn take(&self, bytes: u64, stopped: &dyn Fn() -> bool, waiting: &dyn Fn()) {
        let due = {
            let mut paced = self.paced.lock().unwrap_or_else(PoisonError::into_inner);
            let credited = Instant::now().checked_sub(RATE_BURST).unwrap_or(*paced);
            *paced = (*paced).max(credited)
                + Duration::from_secs_f64(bytes as f64 / self.per_second as f64);
            *paced
        };
        loop {
            let now = Instant::now();
            if due <= now || stopped() {
                return;
            }
            thread::sleep((due - now).min(RATE_SLICE));
            waiting();
        }
    }
}

/// A receiver (by position) and its `COPY n` or error.
pub(super) type ReceiverEnd = (usize, Result<Option<u64>, TableError>);

/// Why the copy manager failed a copy as a whole.
pub(super) struct Failed {
    pub(super) reason: String,
    /// Receivers (by position) whose completion or abort failed.
    pub(super) receivers: Vec<(usize, TableError)>,
    /// The producer's error.
    pub(super) producer: Option<TableError>,
}

/// What a run of the copy manager came to.
pub(super) enum Driven {
    /// It could not start: the receivers (by position) and the producer that failed.
    StartFailed {
        receivers: Vec<(usize, TableError)>,
        producer: Option<TableError>,
    },
    /// It ran.
    Ran {
        /// Receivers (by position) that faulted during the copy.
        faults: Vec<(usize, TableError)>,
        /// Why copyman aborted it.
        aborted: Option<String>,
        /// Each receiver's `COPY n` or error, or why the copy failed as a whole.
        summary: Result<Vec<ReceiverEnd>, Failed>,
        /// Bytes read from the source.
        bytes: u64,
        /// The source's `COPY n`, if it reached its end.
        producer_count: Option<u64>,
        /// By receiver (position): its `COPY n` if its COPY completed (the server accepted
        /// CopyDone), even when the copy failed after.
        completions: Vec<Option<Option<u64>>>,
    },
}

/// Runs one copy (a table's, or one range's) to its end or its abort. `siblings` ties the ranges
/// of a split table: a range whose failure fails the table raises it (any fault under the
/// default policy, a source's under keep-going), and the others abort at their next cycle
/// instead of streaming on for a table that will be rolled back.
/// `copying`: the worker, the destination each receiver is and its backend's pid, for
/// [`Event::Copying`] (a split table's ranges too: each is a copy of its own, on backends of its
/// own).
pub(super) fn drive<'a>(
    shared: &Shared<'_>,
    progress: &dyn Fn(u64, u64),
    producer: impl Producer + 'a,
    receivers: Vec<Box<dyn Receiver + 'a>>,
    siblings: Option<&AtomicBool>,
    copying: (usize, Vec<usize>, Vec<Option<i32>>),
) -> Driven {
    let sibling_failed = || siblings.is_some_and(|s| s.load(Ordering::SeqCst));
    let fails_siblings = |fault: &Fault| {
        if let Some(s) = siblings
            && (!shared.options.keep_going || matches!(fault, Fault::Producer(_)))
        {
            s.store(true, Ordering::SeqCst);
        }
    };
    // The manager's policies: a destination's fault ends the copy unless keep-going, under which
    // the others complete (a failure at the end included); counts are checked unless allowed
    // to differ.
    // A destination that stalls is closed at once: a frozen path held its ROLLBACK, and the job.
    let mut options = copyman_sync::Options::default()
        .with_check_counts(!shared.options.allow_count_mismatch)
        .with_keep_going(shared.options.keep_going)
        .with_close_stalled(true);
    options.stall_timeout = shared.options.stall_timeout;
    let mut copy = match CopyManager::start_with(producer, receivers, options) {
        Ok(copy) => copy,
        Err(fail) => {
            return Driven::StartFailed {
                receivers: fail
                    .receiver_faults
                    .iter()
                    .map(|(id, e)| (id.0, shared.describe(&**e)))
                    .collect(),
                producer: fail.producer_fault.as_ref().map(|e| shared.describe(&**e)),
            };
        }
    };
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (worker, destinations, backends) = copying;
    (shared.events)(Event::Copying {
        worker,
        under_way: copy.under_way(),
        destinations,
        backends,
        interrupter: copy.interrupter().ok(),
        sent: std::sync::Arc::clone(&sent),
    });
    let mut faults = Vec::new();
    let mut aborted = None;
    let mut last_event = Instant::now();
    let mut last_bytes = 0;
    let interrupt = &shared.options.interrupt;
    loop {
        // Interrupted: abort whatever the policy (a fault that the caller's cancel caused is
        // the interruption too).
        if interrupt.is_interrupted() {
            aborted = Some(JOB_STOPPED.to_owned());
            break;
        }
        let Some(cycle) = copy.next() else { break };
        if interrupt.is_interrupted() {
            aborted = Some(JOB_STOPPED.to_owned());
            break;
        }
        match cycle {
            Ok(_) => {
                let (rows, bytes) = copy.totals();
                sent.store(bytes, Ordering::Relaxed);
                if let Some(rate) = &shared.rate {
                    let stopped = || {
                        interrupt.is_interrupted()
                            || shared.stop.load(Ordering::SeqCst)
                            || sibling_failed()
                    };
                    rate.take(bytes - last_bytes, &stopped, &|| progress(rows, bytes));
                }
                last_bytes = bytes;
                if last_event.elapsed() >= Duration::from_millis(100) {
                    last_event = Instant::now();
                    progress(rows, bytes);
                }
                if !shared.options.keep_going && shared.stop.load(Ordering::SeqCst) {
                    aborted = Some(JOB_STOPPED.to_owned());
                    break;
                }
                // Another range of the table failed it: this one's rows would be rolled back.
                if sibling_failed() {
                    aborted = Some(OTHER_FAILED.to_owned());
                    break;
                }
            }
            Err(fault) => {
                if let Fault::Receiver(faulted) = &fault {
                    for (id, error) in &faulted.faults {
                        faults.push((id.0, shared.describe(&**error)));
                    }
                }
                // Whether it ends the copy is the manager's policy (keep-going).
                if !copy.ends_copy(&fault) {
                    continue;
                }
                fails_siblings(&fault);
                aborted = Some(match &fault {
                    Fault::Receiver(_) => OTHER_FAILED.to_owned(),
                    Fault::Producer(fault) => format!("source: {}", shared.describe(&*fault.error)),
                    other => other.to_string(),
                });
                break;
            }
        }
    }
    let (rows, bytes) = copy.totals();
    progress(rows, bytes);
    let result = match &aborted {
        Some(reason) => Err(copy.abort(reason)),
        None => copy.finish(),
    };
    let (producer_count, outcomes) = match &result {
        Ok(summary) => (summary.producer_count, &summary.receivers),
        Err(fail) => (fail.producer_count, &fail.receivers),
    };
    let completions = outcomes
        .iter()
        .map(|(_, outcome)| match outcome {
            ReceiverOutcome::Completed(n) | ReceiverOutcome::Miscounted(n, _) => Some(*n),
            _ => None,
        })
        .collect();
    let summary = result.map_err(|fail| Failed {
        receivers: fail
            .receiver_faults
            .iter()
            .map(|(id, e)| (id.0, shared.describe(&**e)))
            .collect(),
        producer: fail.producer_fault.as_ref().map(|e| shared.describe(&**e)),
        reason: fail.reason,
    });
    let summary = summary.map(|summary| {
        summary
            .receivers
            .into_iter()
            .map(|(id, outcome)| {
                (
                    id.0,
                    match (&outcome, outcome.error()) {
                        (ReceiverOutcome::Completed(n), _) => Ok(*n),
                        (_, Some(e)) => Err(shared.describe(&**e)),
                        (_, None) => Err(TableError::new("unknown outcome")),
                    },
                )
            })
            .collect()
    });
    Driven::Ran {
        faults,
        aborted,
        summary,
        bytes,
        producer_count,
        completions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::Interrupt;

    #[test]
    fn the_rate_cap_does_not_sleep_through_an_interrupt() {
        // One byte a second: 1 MB would be a sleep of eleven days.
        let rate = Rate::new(1);
        let interrupt = Interrupt::new();
        let waited = std::sync::atomic::AtomicUsize::new(0);
        thread::scope(|s| {
            s.spawn(|| {
                rate.take(1 << 20, &|| interrupt.is_interrupted(), &|| {
                    // The job's watch hears that the worker waits on purpose.
                    if waited.fetch_add(1, Ordering::SeqCst) == 2 {
                        interrupt.interrupt("interrupted by SIGINT");
                    }
                });
            });
        });
        assert_eq!(waited.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn the_rate_cap_credits_a_wait_for_a_second_at_most() {
        // 1 000 bytes a second; nothing read for 3 s.
        let rate = Rate::new(1_000);
        let start = Instant::now() - Duration::from_secs(3);
        *rate.paced.lock().unwrap() = start;
        let never = || false;
        // A second's worth passes at once (the credit)…
        let took = Instant::now();
        rate.take(1_000, &never, &|| {});
        assert!(took.elapsed() < Duration::from_millis(500));
        // …the next is paced: due a second on, not 2 s in the past as an average since the
        // start would have it.
        let due = *rate.paced.lock().unwrap();
        rate.take(0, &never, &|| {});
        assert!(
            due > Instant::now() - Duration::from_millis(500),
            "credited more than 1 s"
        );
        assert!(due > start + Duration::from_secs(3), "paced from the start");
    }
}
