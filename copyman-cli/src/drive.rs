//! Step 4 and 5 of a run: the copy manager driven to its end, faults mapped to destinations,
//! what the manager leaves of the row counts to the command, and the copied columns' sequences
//! carried forward.

use copyman_core::{CountMismatch, CountsDisagree, EndpointError};
use copyman_sync::{
    CopyFail, CopyManager, Fault, Options, Producer, Receiver, ReceiverId, ReceiverOutcome, Summary,
};

use copyman_job::job::COUNT_WAY_OUT;
use copyman_job::sequences::{Carrier, Carry, CarryError};
use copyman_sync::Connection;

use crate::dest::Dest;
use crate::progress::Progress;
use crate::report::{self, ErrorInfo};
use crate::run::describe_sync;
use crate::{signals, watch};

/// What a run of the copy manager came to.
pub(crate) struct Driven {
    /// The copy could not start.
    pub(crate) start_failed: bool,
    /// Why it was aborted, if copyman aborted it.
    pub(crate) aborted: Option<String>,
    /// Destinations (by index) that faulted during the copy, and when.
    pub(crate) faults: Vec<(usize, EndpointError, std::time::Instant)>,
    /// The manager's result.
    pub(crate) result: Result<Summary, CopyFail>,
    /// Payload bytes read from the source.
    pub(crate) bytes: u64,
}

/// The copy's options: `--stall-timeout` during the copy is core's stall rule (an endpoint that
/// moves no byte for that long faults, named); the sessions' socket timeouts cover what comes
/// before and after. Keep-going and the count check are the manager's policies: with
/// keep-going, a destination whose CopyDone is refused or whose row count is not the source's
/// is one more casualty in the summary; without a source count the destinations' must agree.
/// A file source is scanned for the end-of-data marker by its own format's rules
/// (file_source.rs), which the manager's format-blind scan cannot know. An endpoint that
/// stalls is closed at once: behind a frozen network path nothing it is sent is answered.
pub(crate) fn copy_options(
    keep_going: bool,
    check_counts: bool,
    stall_timeout: Option<std::time::Duration>,
) -> Options {
    let mut options = Options::default()
        .with_keep_going(keep_going)
        .with_check_counts(check_counts)
        .with_end_marker_scan(false)
        .with_close_stalled(true);
    options.stall_timeout = stall_timeout;
    options
}

/// Runs the copy with `options` ([`copy_options`]), `live` the destinations (by index) its
/// receivers are, `source` the name of a source that is no server (a file, a FIFO, stdin).
pub(crate) fn drive<'a>(
    producer: impl Producer + 'a,
    receivers: Vec<Box<dyn Receiver + 'a>>,
    live: &[usize],
    options: Options,
    source: Option<String>,
    progress: &mut Progress,
) -> Driven {
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
    // Said by the watch when the copy stops moving: which endpoint it waits for.
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    watch::copy_started(watch::Copying {
        under_way: copy.under_way(),
        live: live.to_vec(),
        backends: Vec::new(),
        interrupter: copy.interrupter().ok(),
        source,
        sent: std::sync::Arc::clone(&sent),
        dropped: Vec::new(),
    });
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
                sent.store(bytes, std::sync::atomic::Ordering::Relaxed);
                progress.update(rows, bytes);
            }
            Err(fault) => {
                if let Fault::Receiver(faulted) = &fault {
                    for (id, error) in &faulted.faults {
                        let index = live[id.0];
                        report::log(format_args!(
                            "destination {} faulted: {}",
                            index + 1,
                            report::describe(&**error)
                        ));
                        progress.destination_failed(index);
                        faults.push((index, error.clone(), std::time::Instant::now()));
                    }
                }
                // Whether it ends the copy is the manager's policy (keep-going): where it goes
                // on, each failure is said as it happens (a table's copy may run for hours), as
                // a job says a table's.
                if !copy.ends_copy(&fault) {
                    // (Said only where another destination goes on, and not once a signal
                    // stops the copy: its own cancel, 57014, is no destination's failure, and
                    // the copy does not go on: progress45 F7.)
                    if let Fault::Receiver(faulted) = &fault
                        && faults.len() < live.len()
                        && signals::received().is_none()
                    {
                        for (id, error) in &faulted.faults {
                            watch::destination_dropped(live[id.0]);
                            // A pipe's reader gone, said as the report says it, not as the
                            // write's bare "Broken pipe (os error 32)" (signals67 F7).
                            let why = match report::is_broken_pipe(&**error) {
                                true => ": its reader went away (broken pipe): the copy did not \
                                         complete there"
                                    .to_owned(),
                                false => format!(" failed: {}", report::describe(&**error)),
                            };
                            report::warn(format_args!(
                                "destination {}{why}; the copy goes on without it (--keep-going)",
                                live[id.0] + 1,
                            ));
                        }
                    }
                    continue;
                }
                aborted = Some(match &fault {
                    // A pipe's reader gone is not said by its bare error: its own line says
                    // what went out.
                    Fault::Receiver(faulted) => report::destinations_failed(
                        &faulted
                            .faults
                            .iter()
                            .map(|(id, error)| {
                                let said = !report::is_broken_pipe(&**error);
                                (live[id.0], said.then(|| report::describe(&**error)))
                            })
                            .collect::<Vec<_>>(),
                    ),
                    Fault::Producer(fault) => {
                        format!("source: {}", report::describe(&*fault.error))
                    }
                    other => other.to_string(),
                });
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
        match (outcome, outcome.error()) {
            (ReceiverOutcome::Completed(rows), _) => dest.rows = *rows,
            // Faulted, failed, or miscounted under --keep-going: rolled back with the others.
            (_, Some(error)) => match dest_error(error, *id) {
                Some(info) => dest.fail_with(info),
                None => dest.fail(error),
            },
            (_, None) => dest.fail_with(ErrorInfo {
                sqlstate: None,
                message: "unknown outcome".to_owned(),
            }),
        }
    }
}

/// The destinations the manager found disagreeing on their row counts (a file source gives
/// none to compare with), by name: the run's error.
pub(crate) fn disagreement(fail: &CopyFail, live: &[usize], dests: &[Dest<'_>]) -> Option<String> {
    let disagree = fail
        .receiver_faults
        .iter()
        .find_map(|(_, e)| e.downcast_ref::<CountsDisagree>())?;
    let all: Vec<String> = disagree
        .counts
        .iter()
        .map(|(id, rows)| {
            let name = dests[live[id.0]].endpoint.display();
            format!("{name} stored {}", crate::progress::rows(*rows))
        })
        .collect();
    Some(format!(
        "destinations disagree on the row count: {} ({COUNT_WAY_OUT})",
        all.join(", ")
    ))
}

/// A destination's error as the command says it: the manager's, except the row count checks,
/// said with the destination's own count and the way out (`--allow-count-mismatch`): a count
/// that is not the source's, and a disagreement between destinations (which names the
/// manager's receivers).
pub(crate) fn dest_error(error: &EndpointError, id: ReceiverId) -> Option<ErrorInfo> {
    if let Some(mismatch) = error.downcast_ref::<CountMismatch>() {
        return Some(ErrorInfo {
            sqlstate: None,
            message: format!(
                "row count mismatch: stored {} where the source sent {} ({COUNT_WAY_OUT})",
                crate::progress::rows(mismatch.receiver),
                crate::progress::rows(mismatch.producer)
            ),
        });
    }
    let disagree = error.downcast_ref::<CountsDisagree>()?;
    let (_, rows) = disagree.counts.iter().find(|(r, _)| *r == id)?;
    Some(ErrorInfo {
        sqlstate: None,
        message: format!(
            "stored {}, where another destination stored a different number and the source \
             (a file) gave no count to say which is right ({COUNT_WAY_OUT})",
            crate::progress::rows(*rows)
        ),
    })
}

/// What the manager leaves of the row counts to the command: with `allow_mismatch`
/// (`--allow-count-mismatch`: triggers that route or drop rows) it does not compare them, and a
/// destination that stored another number of rows than the source sent is a warning; a server
/// source must have reported its count. Every other rule (each destination's count against the
/// source's, destinations agreeing without one, keep-going) is the manager's. Returns the run's
/// error, if any.
pub(crate) fn check_counts(
    dests: &mut [Dest<'_>],
    source_rows: Option<u64>,
    server_source: bool,
    allow_mismatch: bool,
) -> Option<String> {
    match source_rows {
        Some(expected) if allow_mismatch => {
            for dest in dests.iter_mut().filter(|d| d.error.is_none()) {
                if let Some(rows) = dest.rows.filter(|&r| r != expected) {
                    let warning = format!(
                        "stored {} where the source sent {} (--allow-count-mismatch)",
                        crate::progress::rows(rows),
                        crate::progress::rows(expected)
                    );
                    report::warn(format_args!("{} {warning}", dest.endpoint.display()));
                    dest.warning = Some(warning);
                }
            }
            None
        }
        None if server_source => Some("the source reported no row count".to_owned()),
        _ => None,
    }
}

/// Advances each live destination's sequences of the copied columns to the source's (read now,
/// after its rows, each once), in the destination's open transaction, before anything commits.
/// A failure fails that destination; the run's error when it may not go on without it.
pub(crate) fn carry_sequences(
    carries: &[Vec<Carry>],
    source: Option<&mut Connection>,
    dests: &mut [Dest<'_>],
    keep_going: bool,
) -> Option<String> {
    let source = source?;
    let mut carrier = Carrier::default();
    for (i, (dest, carries)) in dests.iter_mut().zip(carries).enumerate() {
        let Some(conn) = dest.conn.as_mut().filter(|_| !carries.is_empty()) else {
            continue;
        };
        if dest.error.is_some() {
            continue;
        }
        let label = format!("destination {} ({})", i + 1, dest.endpoint.display());
        match carrier.carry(source, conn, carries) {
            Ok(said) => {
                for said in said {
                    if said.is_warning() {
                        report::warn(format_args!("{label}: {said}"));
                    } else {
                        report::log(format_args!("{label}: {said}"));
                    }
                }
            }
            Err(e) => {
                let mut info = describe_sync(e.error());
                info.message = format!("{}: {}", e.what(), info.message);
                dest.fail_with(info);
                // A `setval` that waited out --stall-timeout for its sequence's lock.
                if let CarryError::Destination(error) = &e {
                    dest.give_up_stalled(error);
                }
                if !keep_going {
                    return Some(format!("{label}: could not advance its sequences"));
                }
            }
        }
    }
    None
}
