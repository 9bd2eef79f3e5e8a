//! SIGINT, SIGTERM and SIGHUP during a transfer.
//!
//! The first signal only raises a flag: the copy's drive loop checks it every cycle and aborts
//! the copy (every destination's COPY is failed, nothing commits), and the
//! [`watch`](crate::watch) thread cancels every server backend so that a read or write blocked
//! on a server returns. The run then reports "interrupted" and exits 128 + the signal's number
//! (129, 130, 143). A second signal exits at once, after removing the temporary files of file
//! destinations (servers roll back what a closed connection leaves).
//!
//! Before anything began (while connecting: a server that accepts and never answers) the first
//! signal exits at once: nothing was copied. Until the first COMMIT (or, with `--atomic`, the
//! decision) goes out, the first signal calls the commit off: nothing commits ([`commit_point`]).
//! Once it went out the first signal lets the COMMITs finish (the report then says what committed), and a second one exits at once
//! saying what is known: which destinations committed, which COMMIT went unanswered (it may have
//! committed), with exit status 4 (partial) when any may have ([`at_once_exit`]).
//!
//! A job of many tables ([`install_with`] [`JOB_STOPPING`]) is stopped the same way by its
//! [`JobWatch`](crate::watch::JobWatch): the tables being copied roll back, the committed ones
//! stay (recorded in the state file), and the exit status is the signal's. While it stops, the
//! reminder names what it waits for ([`set_waiting`]: "destination 2's COMMIT of …"); a second
//! signal says, before exiting, what committed and what may have ([`set_at_once`]: from what
//! the process knows, with no server round trip), on stderr and under `--json`, and exits as a
//! one-table run does ([`at_once_exit`]): 4 during the COMMITs, else the signal's status.
//!
//! The handlers are signal-hook's: the signal handler itself only writes to a pipe; a thread of
//! ours reads it and does the rest, so nothing here runs in a signal handler.

use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::progress;

/// The first signal received (0: none).
static RECEIVED: AtomicI32 = AtomicI32::new(0);

/// A second signal is exiting at once: the signals thread ends the process with its own status,
/// after saying why; the run's own end must not end it first with another.
static EXITING_AT_ONCE: AtomicBool = AtomicBool::new(false);

/// Waits for the signals thread to end the process when a second signal is exiting at once
/// ([`EXITING_AT_ONCE`]): the run ended just then, and its status (the first signal's) would
/// contradict what the second said. Returns at once otherwise, and after a bound in any case.
pub(crate) fn hold_if_exiting_at_once() {
    let since = Instant::now();
    while EXITING_AT_ONCE.load(Ordering::SeqCst) && since.elapsed() < Duration::from_secs(5) {
        thread::sleep(Duration::from_millis(10));
    }
}

/// The run prints its report as JSON (`--json`): an exit at once during a one-table run's
/// commit prints what it knows as JSON too.
static JSON: AtomicBool = AtomicBool::new(false);

/// Whether the run reports as JSON ([`JSON`]).
pub(crate) fn set_json(on: bool) {
    JSON.store(on, Ordering::SeqCst);
}

/// `copyman recover`'s decision log, when the run is a recovery: its exit at once prints
/// recover's document (`decision_log`, `prepared`, `warnings`), not a copy's.
static RECOVERING: Mutex<Option<String>> = Mutex::new(None);

/// The server a one-table run connects to now: its role (`source`, `destination 2`) and its
/// endpoint, which an exit at once while connecting names (ops54 F5: its document named none).
static CONNECTING_TO: Mutex<Option<(String, String)>> = Mutex::new(None);

/// The run connects to `role` at `endpoint` now.
pub(crate) fn connecting_to(role: &str, endpoint: &str) {
    if let Some(mut to) = crate::watch::lock_briefly(&CONNECTING_TO) {
        *to = Some((role.to_owned(), endpoint.to_owned()));
    }
}

/// The run is `copyman recover` with the decision log `log` ([`RECOVERING`]).
pub(crate) fn set_recovering(log: &Path) {
    // Absolute, as the advice says it (commit66 F4).
    let log = std::path::absolute(log).unwrap_or_else(|_| log.to_path_buf());
    *RECOVERING.lock().unwrap_or_else(PoisonError::into_inner) = Some(log.display().to_string());
}

/// What a party whose COMMIT was not sent is, by its name ([`print_at_once_json`]'s `rest`).
type PartyStatus<'a> = dyn Fn(&str) -> &'static str + 'a;

/// An exit at once during a one-table run's commit, as JSON on stdout (under `--json`): each
/// party of the commit (`endpoints`: its name and endpoint, once the commit knows them), whose
/// COMMIT was answered (`committed`), sent and not answered (`in doubt`), or not sent (`rest`
/// says what the party then is: `rolled back` as the process exits, prepared for `copyman
/// recover` to finish — `commit pending`, `rollback pending` — or its PREPARE unanswered:
/// `prepared or not`).
/// recover's document of an exit at once: the decision log, what it did with each prepared
/// transaction it reached (`prepared`), the rest in words (`others`).
fn print_recover_at_once_json(
    log: &str,
    exit: i32,
    prepared: Vec<serde_json::Value>,
    others: Option<&str>,
    error: Option<&str>,
) {
    let untouched = commits()
        .map(|c| recovery_untouched(&c))
        .unwrap_or_default();
    let prepared: Vec<serde_json::Value> = (prepared.into_iter())
        .chain(untouched.iter().map(|p| {
            serde_json::json!({
                "transaction": p,
                "outcome": "still prepared: not reached (copyman recover finishes it)",
            })
        }))
        .collect();
    let _ = crate::report::print_json(&serde_json::json!({
        "status": "interrupted",
        "exit_code": exit,
        "exited_at_once": true,
        "decision_log": log,
        "prepared": prepared,
        "others": others,
        "error": error,
        "warnings": crate::report::warnings(),
    }));
}

/// `names` (a commit's parties: `destination 2`, `source`) joined, each destination with its
/// endpoint where the commit knows it (commit64 F2: with a file among the servers, "destination
/// 3" left the user counting `--to`s). The source is one.
fn with_endpoints<S: AsRef<str>>(names: &[S], endpoints: &[(String, String)]) -> String {
    let named = |name: &str| match endpoints.iter().find(|(n, _)| n == name) {
        Some((_, endpoint)) if name.starts_with("destination") => format!("{name} ({endpoint})"),
        _ => name.to_owned(),
    };
    let names: Vec<String> = names.iter().map(|n| named(n.as_ref())).collect();
    names.join(", ")
}

fn print_at_once_json(
    exit: i32,
    committed: &[String],
    unanswered: &[String],
    (endpoints, rest): (&[(String, String)], &PartyStatus<'_>),
    note: &str,
    error: &str,
) {
    if !JSON.load(Ordering::SeqCst) {
        return;
    }
    // Every COMMIT answered, none failed before: the run ended as it would have (exit 0).
    let error = (exit != 0).then_some(error);
    let recovering = crate::watch::lock_briefly(&RECOVERING).and_then(|log| log.clone());
    if let Some(log) = recovering {
        let prepared: Vec<serde_json::Value> = committed
            .iter()
            .map(|p| serde_json::json!({ "transaction": p, "outcome": "committed" }))
            .chain(unanswered.iter().map(|p| {
                serde_json::json!({
                    "transaction": p,
                    "outcome": "COMMIT PREPARED sent, not answered: it may have committed",
                })
            }))
            .chain(recovery_rolled_back())
            .collect();
        print_recover_at_once_json(&log, exit, prepared, Some(note), error);
        return;
    }
    let endpoint = |name: &String| {
        let found = endpoints.iter().find(|(n, _)| n == name);
        found.map(|(_, endpoint)| endpoint.clone())
    };
    let status = |name: &String| {
        if committed.contains(name) {
            "committed"
        } else if unanswered.contains(name) {
            "in doubt"
        } else {
            rest(name)
        }
    };
    let gids = recording_gids();
    // Every party, in the commit's order; one the list of parties lacks (not known yet) too;
    // and, in their places, the destinations that failed before the commit.
    let names = endpoints.iter().map(|(name, _)| name);
    let unlisted = committed
        .iter()
        .chain(unanswered)
        .filter(|name| !endpoints.iter().any(|(n, _)| n == *name));
    let mut destinations: Vec<(usize, serde_json::Value)> = names
        .chain(unlisted)
        .map(|d| {
            let mut record =
                serde_json::json!({ "server": d, "endpoint": endpoint(d), "status": status(d) });
            // Its prepared transaction, where the decision being recorded names it.
            if let Some((_, gid)) = gids.iter().find(|(name, _)| name == d) {
                record["gid"] = gid.as_str().into();
            }
            record
        })
        .chain(
            (commits().map(|c| c.failed_before).unwrap_or_default().into_iter())
                .filter(|(d, _)| !endpoints.iter().any(|(n, _)| n == d))
                .map(
                |(d, endpoint)| {
                    serde_json::json!({ "server": d, "endpoint": endpoint, "status": "failed" })
                },
            ),
        )
        .map(|record| {
            let number = (record["server"].as_str())
                .and_then(|s| s.strip_prefix("destination "))
                .and_then(|n| n.parse().ok());
            (number.unwrap_or(usize::MAX), record)
        })
        .collect();
    destinations.sort_by_key(|(number, _)| *number);
    let (source_rows, counted) = crate::watch::lock_briefly(&COPIED)
        .map(|c| c.clone())
        .unwrap_or_default();
    let rows_of = |record: &serde_json::Value| {
        let server = record["server"].as_str()?;
        counted.iter().find(|(d, _)| d == server).map(|(_, n)| *n)
    };
    // Data that went out to stdout or a pipe is sent, not rolled back: said with how its end
    // was left ([`cut_at_once`]).
    let cut = cut_at_once();
    let destinations: Vec<serde_json::Value> = (destinations.into_iter())
        .map(|(_, mut record)| {
            record["rows"] = rows_of(&record).into();
            let given = record["endpoint"].as_str().map(|e| match e {
                "-" => "stdout",
                e => e,
            });
            if let Some((_, taken, marked)) = cut.iter().find(|(name, ..)| Some(&**name) == given) {
                record["status"] = "sent".into();
                record["bytes"] = (*taken).into();
                record["message"] = format!(
                    "{taken} bytes went out before the exit and cannot be taken back: {}",
                    cut_end_words(marked.as_ref())
                )
                .into();
            }
            record
        })
        .collect();
    let committed_records = destinations.iter().filter(|r| r["status"] == "committed");
    let committed_count = committed_records.clone().count();
    let committed_rows = committed_records.map(rows_of).sum::<Option<u64>>();
    // A COMMIT not answered is what a script must look at: its server first.
    let doubt = unanswered.first();
    // The signal that stopped it, as a run that ends on its first signal says it (recheck43b F8).
    let interrupted = received().map(|signal| format!("interrupted by {}", name(signal)));
    let _ = crate::report::print_json(&serde_json::json!({
        "status": "interrupted",
        "exit_code": exit,
        "exited_at_once": true,
        "interrupted": interrupted,
        "error": error,
        "server": doubt,
        "endpoint": doubt.and_then(endpoint),
        "source_rows": source_rows,
        "committed": committed_count,
        "committed_rows": committed_rows,
        "destinations": destinations,
        "others": note,
    }));
}

/// What the copy counted, once it ended: the source's rows and each destination's `COPY n` by
/// its party name (`destination 2`), for an exit at once's `--json` (signals67 F4: `rows`,
/// `committed_rows` null of a destination whose COMMIT was answered).
static COPIED: Mutex<Counted> = Mutex::new((None, Vec::new()));

/// The source's rows, and each destination's (by party name) ([`COPIED`]).
type Counted = (Option<u64>, Vec<(String, u64)>);

/// Records what the copy counted ([`COPIED`]): `rows` by destination (0-based).
pub(crate) fn copied(source_rows: Option<u64>, rows: impl IntoIterator<Item = (usize, u64)>) {
    *COPIED.lock().unwrap_or_else(PoisonError::into_inner) = (
        source_rows,
        rows.into_iter()
            .map(|(i, n)| (format!("destination {}", i + 1), n))
            .collect(),
    );
}

/// Temporary files of file destinations, removed if the process exits at once.
static TEMP_FILES: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Where a one-table run stands, for what a signal does and says.
static STAGE: Mutex<Stage> = Mutex::new(Stage::RUNNING);

/// Where a one-table run stands ([`STAGE`]). (One of it, in a static: the size of its
/// variants does not matter.)
#[allow(clippy::large_enum_variant)]
enum Stage {
    /// Connecting: nothing began anywhere.
    Connecting,
    /// Copying, then committing: whether the commit began (`Some(two_phase)`: from then on it
    /// goes on whatever signal comes), the destinations whose COMMIT was sent, and of those the
    /// ones whose COMMIT was answered with success.
    Running {
        ending: Option<bool>,
        /// The first COMMIT (or, two-phase, the decision) went out: no going back.
        point: bool,
        /// Every party whose COMMIT commits something (the destinations whose copy completed,
        /// the source when its statement wrote), once the commit knows them: its name and its
        /// endpoint as the report shows it (what `--json` names it by).
        parties: Option<Vec<(String, String)>>,
        /// The destinations that failed before the commit (`--keep-going`), with their
        /// endpoints: the run is partial however the commit ends, and a second signal's report
        /// names them failed (it left them out: signals43 F4).
        failed_before: Vec<(String, String)>,
        /// The parties whose PREPARE TRANSACTION was sent, and of those the ones whose PREPARE
        /// was answered: before the decision, a second signal leaves those prepared (for
        /// recover to roll back), the unanswered ones prepared or not, the others rolled back;
        /// after it, the source's prepared transaction stays prepared, not rolled back.
        preparing: Vec<String>,
        prepared: Vec<String>,
        /// The prepared parties whose ROLLBACK PREPARED was sent (the commit called off), and
        /// of those the ones answered: rolled back, no longer prepared (a second signal called
        /// them prepared: signals43 F1).
        rolling_back: Vec<String>,
        rolled_back: Vec<String>,
        sent: Vec<String>,
        committed: Vec<String>,
        /// Of those sent, the ones whose COMMIT the server answered with an error (a deferred
        /// constraint): nothing committed there, and it is said so, with why, not in doubt.
        refused: Vec<(String, String)>,
    },
}

impl Stage {
    /// Copying: nothing of the commit began.
    const RUNNING: Self = Self::Running {
        ending: None,
        point: false,
        parties: None,
        failed_before: Vec::new(),
        preparing: Vec::new(),
        prepared: Vec::new(),
        rolling_back: Vec::new(),
        rolled_back: Vec::new(),
        sent: Vec::new(),
        committed: Vec::new(),
        refused: Vec::new(),
    };
}

/// The run waits for its file or stdin's first bytes, before anything was sent (a signal then
/// exits at once, saying so).
static WAITING_FOR_INPUT: AtomicBool = AtomicBool::new(false);

/// Whether the run waits for its input's first bytes ([`waiting_for_input`]).
pub(crate) fn is_waiting_for_input() -> bool {
    WAITING_FOR_INPUT.load(Ordering::SeqCst)
}

/// The run waits for its input's first bytes (`true`: as while connecting, a signal exits at
/// once) or is done with that.
pub(crate) fn waiting_for_input(on: bool) {
    WAITING_FOR_INPUT.store(on, Ordering::SeqCst);
    connecting(on);
}

/// A job's dry run prints its plan ([`printing_dry_run`]).
static PRINTING_DRY_RUN: AtomicBool = AtomicBool::new(false);

/// A job's dry run prints its plan: a signal exits at once, as while connecting (nothing was
/// begun anywhere; its plan, blocked on a pipe whose reader waits, was printed whole, exit 0,
/// after the signal said the job stopped).
pub(crate) fn printing_dry_run() {
    PRINTING_DRY_RUN.store(true, Ordering::SeqCst);
    connecting(true);
}

/// A file destination waits for its reader to read (a full pipe or FIFO): said by the watch.
static WAITING_FOR_READER: AtomicBool = AtomicBool::new(false);

/// The output whose reader a failed run waits for, to write the mark of its data's cut-short
/// end ([`marking_end`]).
static MARKING_END: Mutex<Option<String>> = Mutex::new(None);

/// A failed (or stopped) run waits for the reader of `name` to make room for the mark of its
/// data's cut-short end (`None`: no more): a stop's reminders say so.
pub(crate) fn marking_end(name: Option<&str>) {
    *MARKING_END.lock().unwrap_or_else(PoisonError::into_inner) = name.map(str::to_owned);
}

/// The words of a wait of [`marking_end`]'s, if one is under way.
pub(crate) fn marking_end_words() -> Option<String> {
    let name = crate::watch::lock_briefly(&MARKING_END)?.clone()?;
    Some(format!(
        "the reader of {name} to read: the data it got is cut short, and the mark that makes a \
         COPY reading it fail rather than load part of it as the whole is not written yet"
    ))
}

/// Whether a file destination waits for its reader to read ([`waiting_for_reader`]).
pub(crate) fn is_waiting_for_reader() -> bool {
    WAITING_FOR_READER.load(Ordering::SeqCst)
}

/// What a FIFO being opened waits for (`waiting for a writer of FIFO PATH`), said by the watch.
static WAITING_FOR_FIFO: Mutex<Option<String>> = Mutex::new(None);

/// What a FIFO being opened waits for, if one is ([`waiting_for_fifo`]).
pub(crate) fn fifo_wait() -> Option<String> {
    WAITING_FOR_FIFO
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

/// A FIFO being opened waits for its other end (`Some`: what it waits for), or is done waiting.
pub(crate) fn waiting_for_fifo(wait: Option<String>) {
    *WAITING_FOR_FIFO
        .lock()
        .unwrap_or_else(PoisonError::into_inner) = wait;
}

/// A file destination waits for its reader to read (`true`) or is done waiting.
pub(crate) fn waiting_for_reader(on: bool) {
    WAITING_FOR_READER.store(on, Ordering::SeqCst);
}

/// The run connects (`true`: a signal then exits at once) or is done connecting.
pub(crate) fn connecting(on: bool) {
    *STAGE.lock().unwrap_or_else(PoisonError::into_inner) = if on {
        Stage::Connecting
    } else {
        Stage::RUNNING
    };
}

/// The parties of the commit about to run: those whose COMMIT commits something, and whether a
/// destination failed before it. A second signal then names the ones not yet committed, and
/// once every one's COMMIT was answered exits as the run would have.
pub(crate) fn commit_parties(names: Vec<(String, String)>, failed: Vec<(String, String)>) {
    if let Stage::Running {
        parties,
        failed_before,
        ..
    } = &mut *STAGE.lock().unwrap_or_else(PoisonError::into_inner)
    {
        *parties = Some(names);
        *failed_before = failed;
    }
}

/// `copyman recover` found these prepared transactions (each `GID on SERVER`, with its server)
/// on the server it asked now: an exit at once names those it had not finished yet as still
/// prepared (signals67 F6: its `--json` left out one it had not reached).
pub(crate) fn recovery_found(found: impl IntoIterator<Item = (String, String)>) {
    if let Stage::Running { parties, .. } =
        &mut *STAGE.lock().unwrap_or_else(PoisonError::into_inner)
    {
        parties.get_or_insert_with(Vec::new).extend(found);
    }
}

/// The prepared transactions `copyman recover` found and had not finished ([`recovery_found`])
/// when it exits at once: no COMMIT or ROLLBACK PREPARED sent to them.
fn recovery_untouched(c: &Commits) -> Vec<String> {
    let touched = |name: &String| {
        [&c.committed, &c.unanswered, &c.rolled_back, &c.rolling_back]
            .iter()
            .any(|list| list.contains(name))
            || c.refused.iter().any(|(r, _)| r == name)
    };
    (c.endpoints.iter())
        .map(|(name, _)| name)
        .filter(|name| !touched(name))
        .cloned()
        .collect()
}

/// The prepared transactions `copyman recover` rolled back, or sent a ROLLBACK PREPARED
/// unanswered, when it exits at once, as its `--json` lists them.
fn recovery_rolled_back() -> Vec<serde_json::Value> {
    let Some(c) = commits() else {
        return Vec::new();
    };
    (c.rolled_back.iter())
        .map(|p| serde_json::json!({ "transaction": p, "outcome": "rolled back" }))
        .chain(c.rolling_back.iter().map(|p| {
            serde_json::json!({
                "transaction": p,
                "outcome": "ROLLBACK PREPARED sent, not answered: it may have rolled back",
            })
        }))
        .collect()
}

/// A PREPARE TRANSACTION goes to `party` now.
pub(crate) fn prepare_sent(party: &str) {
    if let Stage::Running { preparing, .. } =
        &mut *STAGE.lock().unwrap_or_else(PoisonError::into_inner)
    {
        preparing.push(party.to_owned());
    }
}

/// `party`'s PREPARE TRANSACTION was answered: its transaction now waits for the decision, and
/// a second signal leaves it prepared (for recover), not rolled back.
pub(crate) fn prepared(party: &str) {
    if let Stage::Running { prepared, .. } =
        &mut *STAGE.lock().unwrap_or_else(PoisonError::into_inner)
    {
        prepared.push(party.to_owned());
    }
}

/// A ROLLBACK PREPARED goes to `party` now (the commit called off).
pub(crate) fn rollback_prepared_sent(party: &str) {
    if let Stage::Running { rolling_back, .. } =
        &mut *STAGE.lock().unwrap_or_else(PoisonError::into_inner)
    {
        rolling_back.push(party.to_owned());
    }
}

/// `party`'s ROLLBACK PREPARED was answered: nothing of it is left prepared.
pub(crate) fn rolled_back_prepared(party: &str) {
    if let Stage::Running { rolled_back, .. } =
        &mut *STAGE.lock().unwrap_or_else(PoisonError::into_inner)
    {
        rolled_back.push(party.to_owned());
    }
}

/// The commit begins (`two_phase`: with PREPAREs and a decision): from now on a signal does not
/// stop it, and says so. Returns the signal received before, if any: the run must not commit
/// then. (Checked under the stage's lock, which the signal thread takes after it noted the
/// signal: either the run sees the signal, or the signal sees the commit under way.)
pub(crate) fn commit_begins(two_phase: bool) -> Option<i32> {
    let mut stage = STAGE.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(signal) = received() {
        return Some(signal);
    }
    if let Stage::Running { ending, .. } = &mut *stage {
        *ending = Some(two_phase);
    }
    None
}

/// The first COMMIT (or, two-phase, the decision) is about to go out: from then on the commit
/// finishes whatever signal comes. Returns the signal received before, if one came and this is
/// the first such point: then nothing may be committed (nothing was yet: the commit is called
/// off, and the report says the run was interrupted). Checked under the stage's lock, as
/// [`commit_begins`].
pub(crate) fn commit_point() -> Option<i32> {
    let mut stage = STAGE.lock().unwrap_or_else(PoisonError::into_inner);
    let Stage::Running { point, .. } = &mut *stage else {
        return None;
    };
    if *point {
        return None;
    }
    if let Some(signal) = received() {
        return Some(signal);
    }
    *point = true;
    None
}

/// Whether the first COMMIT (or the decision) went out ([`commit_point`]). Once a signal came
/// before it, it never will: what runs before it (a deferred constraint's check, a PREPARE)
/// may then be cancelled.
pub(crate) fn commit_point_passed() -> bool {
    matches!(
        &*STAGE.lock().unwrap_or_else(PoisonError::into_inner),
        Stage::Running { point: true, .. }
    )
}

/// A COMMIT (or COMMIT PREPARED) goes to `party` now.
pub(crate) fn commit_sent(party: &str) {
    if let Stage::Running { sent, .. } = &mut *STAGE.lock().unwrap_or_else(PoisonError::into_inner)
    {
        sent.push(party.to_owned());
    }
}

/// `party`'s COMMIT was answered with success.
pub(crate) fn committed(party: &str) {
    if let Stage::Running { committed, .. } =
        &mut *STAGE.lock().unwrap_or_else(PoisonError::into_inner)
    {
        committed.push(party.to_owned());
    }
}

/// `party`'s COMMIT was answered with an error (`why`): nothing committed there.
pub(crate) fn commit_refused(party: &str, why: &str) {
    if let Stage::Running { refused, .. } =
        &mut *STAGE.lock().unwrap_or_else(PoisonError::into_inner)
    {
        refused.push((party.to_owned(), why.to_owned()));
    }
}

/// Where the commit of a one-table run stands when a signal comes.
struct Commits {
    /// The commit began: `Some(two_phase)`.
    ending: Option<bool>,
    /// The first COMMIT (or the decision) went out.
    point: bool,
    /// Destinations whose COMMIT was answered with success.
    committed: Vec<String>,
    /// Destinations whose COMMIT was sent and is unanswered.
    unanswered: Vec<String>,
    /// Destinations whose COMMIT was answered with an error, and the error.
    refused: Vec<(String, String)>,
    /// Parties whose COMMIT was not sent yet, once the commit knows its parties.
    not_sent: Option<Vec<String>>,
    /// Each party's name and endpoint ([`Stage::Running`]'s `parties`).
    endpoints: Vec<(String, String)>,
    /// The destinations that failed before the commit, with their endpoints.
    failed_before: Vec<(String, String)>,
    /// Parties whose PREPARE TRANSACTION was answered, and no ROLLBACK PREPARED sent since.
    prepared: Vec<String>,
    /// Parties whose PREPARE TRANSACTION was sent and is unanswered.
    preparing: Vec<String>,
    /// Prepared parties whose ROLLBACK PREPARED was sent and is unanswered.
    rolling_back: Vec<String>,
    /// Prepared parties whose ROLLBACK PREPARED was answered: nothing left there.
    rolled_back: Vec<String>,
}

/// What a signal finds: `None` while connecting, else where the commit stands.
fn commits() -> Option<Commits> {
    match &*STAGE.lock().unwrap_or_else(PoisonError::into_inner) {
        Stage::Connecting => None,
        Stage::Running {
            ending,
            point,
            parties,
            failed_before,
            preparing,
            prepared,
            rolling_back,
            rolled_back,
            sent,
            committed,
            refused,
        } => Some(Commits {
            prepared: (prepared.iter())
                .filter(|p| !rolling_back.contains(p))
                .cloned()
                .collect(),
            rolling_back: (rolling_back.iter())
                .filter(|p| !rolled_back.contains(p))
                .cloned()
                .collect(),
            rolled_back: rolled_back.clone(),
            preparing: preparing
                .iter()
                .filter(|p| !prepared.contains(p))
                .cloned()
                .collect(),
            ending: *ending,
            point: *point,
            not_sent: parties.as_ref().map(|parties| {
                parties
                    .iter()
                    .map(|(name, _)| name)
                    .filter(|name| !sent.contains(name))
                    .cloned()
                    .collect()
            }),
            endpoints: parties.clone().unwrap_or_default(),
            failed_before: failed_before.clone(),
            committed: committed.clone(),
            unanswered: sent
                .iter()
                .filter(|p| !committed.contains(p) && !refused.iter().any(|(r, _)| r == *p))
                .cloned()
                .collect(),
            refused: refused.clone(),
        }),
    }
}

/// What the run waits for, in words (for the reminder); set by a job ([`set_waiting`]).
type WaitingFn = Box<dyn Fn() -> Vec<String> + Send + Sync>;

/// What says what the run knows when it exits at once ([`set_at_once`]), and gives the exit
/// status.
type AtOnceFn = Box<dyn Fn(i32) -> i32 + Send + Sync>;

static WAITING: Mutex<Option<WaitingFn>> = Mutex::new(None);

static AT_ONCE: Mutex<Option<AtOnceFn>> = Mutex::new(None);

/// What a job's first signal names as finishing: the tables whose COMMITs began
/// ([`set_committing`]).
type CommittingFn = Box<dyn Fn() -> Vec<String> + Send + Sync>;

static COMMITTING: Mutex<Option<CommittingFn>> = Mutex::new(None);

/// Sets what a job's first signal names as finishing rather than rolled back: the tables whose
/// COMMITs began (it said every table being copied was rolled back, and they committed).
pub(crate) fn set_committing(committing: impl Fn() -> Vec<String> + Send + Sync + 'static) {
    *COMMITTING.lock().unwrap_or_else(PoisonError::into_inner) = Some(Box::new(committing));
}

/// Sets what the reminder after a first signal names as waited for ("destination 2's COMMIT of
/// …"), instead of "the servers".
pub(crate) fn set_waiting(waiting: impl Fn() -> Vec<String> + Send + Sync + 'static) {
    *WAITING.lock().unwrap_or_else(PoisonError::into_inner) = Some(Box::new(waiting));
}

/// What a job's first signal names as waiting for a synchronous standby
/// ([`set_standby_waits`]).
static STANDBY_WAITS: Mutex<Option<WaitingFn>> = Mutex::new(None);

/// Sets what a job's first signal names as waiting for a synchronous standby ("destination 2
/// (…)'s COMMIT of table …"): a stop waits for that standby too.
pub(crate) fn set_standby_waits(waits: impl Fn() -> Vec<String> + Send + Sync + 'static) {
    *STANDBY_WAITS.lock().unwrap_or_else(PoisonError::into_inner) = Some(Box::new(waits));
}

/// The statements ending a transaction that wait for a synchronous standby: a job's
/// ([`set_standby_waits`]), else a one-table run's watch's.
fn standby_waits() -> Vec<String> {
    match crate::watch::lock_briefly(&STANDBY_WAITS) {
        Some(waits) => match waits.as_ref() {
            Some(f) => f(),
            None => crate::watch::standby_waits(),
        },
        None => crate::watch::standby_waits(),
    }
}

/// The words of a first signal for statements ending a transaction that wait for a synchronous
/// standby (psql's Ctrl-C there cancels the wait, the server then says "committed locally").
fn standby_words(waits: &[String]) -> String {
    format!(
        "{} {} for a synchronous standby to confirm it, and ends only when one does (or when \
         its session is ended: then it stays committed on that server)",
        waits.join(", "),
        if waits.len() == 1 {
            "waits"
        } else {
            "each wait"
        }
    )
}

/// Sends a CancelRequest to each backend of the run that may be running a statement.
type CancelFn = Arc<dyn Fn() + Send + Sync>;

static CANCEL: Mutex<Option<CancelFn>> = Mutex::new(None);

/// Sets what a second signal runs, during the copy, before the process exits at once: a
/// CancelRequest to each backend (a connect and 16 bytes, no login). Closing the connections is
/// not enough: a backend that waits (for a lock, in a trigger) reads nothing, would not see them
/// closed, and would hold its locks — a TRUNCATE's too — until its wait ended.
pub(crate) fn set_cancel(cancel: impl Fn() + Send + Sync + 'static) {
    *CANCEL.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(cancel));
}

/// What a signal interrupts at once, from the signals thread ([`set_interrupt`]).
static INTERRUPT: Mutex<Option<CancelFn>> = Mutex::new(None);

/// Sets what each signal interrupts at once, in the signals thread: the run's waits (their
/// `Interrupter`s), which the watch thread, itself maybe waiting on a monitoring query to a
/// frozen server, would reach only seconds later.
pub(crate) fn set_interrupt(interrupt: impl Fn() + Send + Sync + 'static) {
    *INTERRUPT.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(interrupt));
}

/// Runs [`set_interrupt`]'s function, if the lock is free within a moment.
fn interrupt_waits() {
    if let Some(interrupt) = crate::watch::lock_briefly(&INTERRUPT).and_then(|i| i.clone()) {
        interrupt();
    }
}

/// Runs [`set_cancel`]'s function, for at most two seconds (a server that does not take the
/// request must not keep the process from exiting).
fn cancel_before_exit() {
    let Some(cancel) = crate::watch::lock_briefly(&CANCEL).and_then(|c| c.clone()) else {
        return;
    };
    let (sent, done) = mpsc::channel();
    let spawned = thread::Builder::new()
        .name("copyman-cancel".to_owned())
        .spawn(move || {
            cancel();
            let _ = sent.send(());
        });
    if spawned.is_ok() {
        let _ = done.recv_timeout(Duration::from_secs(2));
    }
}

/// Sets what a second signal runs before the process exits at once (given the signal): it
/// says what is known right then (what committed, what may have) from what the process already
/// holds, with no server round trip (nothing that could hang), and returns the exit status
/// ([`at_once_exit`]).
pub(crate) fn set_at_once(at_once: impl Fn(i32) -> i32 + Send + Sync + 'static) {
    *AT_ONCE.lock().unwrap_or_else(PoisonError::into_inner) = Some(Box::new(at_once));
}

/// Starts handling SIGINT, SIGTERM and SIGHUP as this module describes.
///
/// # Errors
/// The handlers could not be installed.
pub(crate) fn install() -> std::io::Result<()> {
    install_with("stopping the copy, nothing will be committed")
}

/// What `copyman recover` says on the first signal: the statement in progress is never
/// cancelled (only its answer says what the server did); nothing more is begun.
pub(crate) const RECOVER_STOPPING: &str = "finishing the COMMIT or ROLLBACK PREPARED in progress \
     (never cancelled), then stopping: the transactions not reached are left prepared";

/// What `copyman demo` says on the first signal: it stops at its next step and removes its
/// clusters.
pub(crate) const DEMO_STOPPING: &str = "stopping the demo: its clusters are removed";

/// What a job says on the first signal: unlike one copy, a job keeps what it committed.
pub(crate) const JOB_STOPPING: &str = "stopping the job: the tables being copied are rolled back, \
     the tables committed stay committed and recorded in the state file";

/// What a job says on the first signal while it is planned ([`job_planning`]): it has begun
/// nothing, and a first run has written no state file yet (its help's "--resume goes on" would
/// be refused).
const JOB_PLANNING_STOPPING: &str = "stopping the job while it is planned: this run copies \
     nothing (what earlier runs committed stays committed); to go on, run the same command \
     again";

/// A job is being planned ([`job_planning`]).
static JOB_PLANNING: AtomicBool = AtomicBool::new(false);

/// The job is being planned (`on`), or its planning is over: what its first signal says.
pub(crate) fn job_planning(on: bool) {
    JOB_PLANNING.store(on, Ordering::SeqCst);
}

/// As [`install`]; the first signal says "NAME received: `stopping`" (what the run does now).
///
/// # Errors
/// The handlers could not be installed.
pub(crate) fn install_with(stopping: &'static str) -> std::io::Result<()> {
    // A signal ignored when copyman started stays ignored, as shells and nohup expect: `nohup
    // copyman …` must outlive the hangup of the terminal it was started from, and a background
    // job of a script ignores SIGINT.
    let handled: Vec<i32> = [SIGINT, SIGTERM, SIGHUP, SIGQUIT]
        .into_iter()
        .filter(|&signal| !ignored_at_start(signal))
        .collect();
    let mut signals = Signals::new(handled)?;
    thread::Builder::new()
        .name("copyman-signals".to_owned())
        .spawn(move || {
            for signal in signals.forever() {
                // This thread must outlive anything that goes wrong in what a signal does: if
                // it died, every later signal would be ignored for ever (the handler only
                // writes to a pipe nobody reads), and a stop that hangs could not be cut
                // short. Nothing in `handle` should panic (its prints cannot: they go through
                // `progress::write_stderr`); this is the belt to those braces. The state it
                // touches is atomics and mutexes taken poison-tolerantly.
                let handled = panic::catch_unwind(AssertUnwindSafe(|| handle(signal, stopping)));
                if handled.is_err() {
                    say(&format!(
                        "copyman: handling {} failed (a bug); still handling signals",
                        name(signal)
                    ));
                }
            }
        })?;
    Ok(())
}

/// Whether `signal`'s disposition is to be ignored (`SIG_IGN`), as the process was started with
/// it.
fn ignored_at_start(signal: i32) -> bool {
    let mut current = std::mem::MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: with a null new action, sigaction(2) only writes the current disposition of
    // `signal` (a valid signal number) into `current`, which is large enough for it and
    // zero-initialised; nothing is changed, and it is read only when the call succeeded.
    let read = unsafe { libc::sigaction(signal, std::ptr::null(), current.as_mut_ptr()) } == 0;
    // SAFETY: zero-initialised, then filled by a successful call: a valid `sigaction`.
    read && unsafe { current.assume_init() }.sa_sigaction == libc::SIG_IGN
}

/// Writes `line` and a newline on stderr, never panicking ([`progress::write_stderr`]), and
/// without waiting for the progress bar's lock: what a signal says before the process exits at
/// once goes out straight.
fn say(line: &str) -> String {
    progress::write_stderr(format!("{line}\n").as_bytes());
    line.strip_prefix("copyman: ").unwrap_or(line).to_owned()
}

/// Exits at once with `exit`; or, where the run's own `--json` document was printed already
/// (it ended as this signal came), with that document's exit code: the document and the status
/// say one thing (it said 143, the process exited 129).
/// COPY data written to stdout or a pipe, cut by an exit at once: its end marked, as a failed
/// run's is, so that a COPY reading it fails rather than load a part as the whole (signals67
/// F1, F13) — once, before the exit's `--json` document, which says it (recheck68 F5: a FIFO
/// that got 64 KiB was "rolled back" there, its end NOT marked unsaid).
fn cut_at_once() -> &'static [(String, u64, Option<crate::dest::CutEnd>)] {
    static CUT: std::sync::OnceLock<Vec<(String, u64, Option<crate::dest::CutEnd>)>> =
        std::sync::OnceLock::new();
    CUT.get_or_init(crate::dest::mark_at_exit)
}

/// How the end of data cut by an exit at once was left ([`cut_at_once`]), as its words say.
fn cut_end_words(marked: Option<&crate::dest::CutEnd>) -> String {
    use crate::dest::CutEnd;
    match marked {
        Some(CutEnd::Marked(fails)) => {
            format!("their end is marked, so that a COPY reading them fails ({fails})")
        }
        // Said plainly (recheck67 F1: the same "discard them" as a marked end).
        Some(CutEnd::Unmarked) => "their end is NOT marked (its reader took nothing for a \
             second): a COPY reading them may load the rows before the cut as the whole, a \
             cut-short last row among them: discard them"
            .to_owned(),
        None => "discard them: a part of the rows".to_owned(),
    }
}

fn exit_at_once(exit: i32) -> ! {
    for (name, taken, marked) in cut_at_once() {
        use crate::dest::CutEnd;
        let (taken, marked) = (*taken, marked.as_ref());
        let end = cut_end_words(marked);
        let said = match (taken, marked) {
            (0, Some(CutEnd::Marked(fails))) => format!(
                "copyman: no data went out to {name} before the exit, only a mark that fails a \
                 COPY reading it ({fails})\n"
            ),
            _ => format!(
                "copyman: {taken} bytes of data went out to {name} before the exit and cannot be \
                 taken back: {end}\n"
            ),
        };
        progress::write_stderr(said.as_bytes());
    }
    // Stdout given and not opened yet (a signal while connecting, or while the source waits for
    // a lock): marked as a failed run's is (recheck68 F14: left empty, read as an empty table).
    crate::dest::mark_unopened_stdout();
    std::process::exit(crate::report::printed_exit_code().unwrap_or(exit))
}

/// What signal `signal` does, in the signals thread ([`install_with`]; `stopping` is what the
/// first one says the run does now).
fn handle(signal: i32, stopping: &'static str) {
    // SIGQUIT (Ctrl-\, what a user presses when Ctrl-C seems not to work) is a second signal
    // at once: it exits at once, saying what committed (its default killed the process
    // without a word, a commit half done).
    let first = RECEIVED
        .compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst)
        .is_ok()
        && signal != SIGQUIT;
    let Some(Commits {
        ending,
        point,
        committed,
        unanswered,
        refused,
        not_sent,
        endpoints,
        failed_before,
        prepared,
        preparing,
        rolling_back,
        rolled_back,
    }) = commits()
    else {
        let dry_run = PRINTING_DRY_RUN.load(Ordering::SeqCst);
        let what = if WAITING_FOR_INPUT.load(Ordering::SeqCst) {
            "waiting for the input's first bytes"
        } else if dry_run {
            "printing the dry run's plan"
        } else {
            "connecting"
        };
        EXITING_AT_ONCE.store(true, Ordering::SeqCst);
        // recover copies nothing: what it did not finish (nothing yet) stays prepared.
        let recovering = crate::watch::lock_briefly(&RECOVERING).and_then(|log| log.clone());
        let outcome = if recovering.is_some() {
            "nothing was finished (no COMMIT or ROLLBACK PREPARED sent): whatever is prepared \
             stays prepared"
        } else {
            "nothing was copied"
        };
        // Whom it connected to (the last asked: the one that keeps it waiting).
        let to = (what == "connecting")
            .then(|| crate::watch::lock_briefly(&CONNECTING_TO).and_then(|to| to.clone()))
            .flatten();
        let what = match &to {
            Some((role, endpoint)) => format!("connecting to {role} ({endpoint})"),
            None => what.to_owned(),
        };
        let message = format!("interrupted by {} while {what}: {outcome}", name(signal));
        say(&format!(
            "copyman: {} received while {what}: {outcome}; exiting",
            name(signal)
        ));
        // (A dry run's document is being printed: no second one after it.)
        if JSON.load(Ordering::SeqCst) && !dry_run {
            let exit = crate::report::Exit::interrupted(signal);
            let document = match recovering {
                // recover's document: nothing looked at yet, so no `prepared` list.
                Some(log) => serde_json::json!({
                    "status": "interrupted",
                    "exit_code": exit as i32,
                    "exited_at_once": true,
                    "decision_log": log,
                    "prepared": serde_json::Value::Null,
                    "error": message,
                    "warnings": crate::report::warnings(),
                }),
                None => {
                    let said = crate::report::ErrorInfo {
                        sqlstate: None,
                        message: message.clone(),
                    };
                    let server = to.as_ref().map(|(role, _)| (role.as_str(), &said));
                    let endpoint = to.as_ref().map(|(_, endpoint)| endpoint.as_str());
                    crate::report::fatal_json(exit, &message, server, endpoint)
                }
            };
            let _ = crate::report::print_json(&document);
        }
        exit_at_once(exit_code(signal).into());
    };
    let committing = !committed.is_empty() || !unanswered.is_empty() || !refused.is_empty();
    // A COMMIT the server refused: nothing committed there, and why (not "in doubt").
    let failed = match refused.as_slice() {
        [] => String::new(),
        refused => format!(
            "; COMMIT failed (nothing committed there): {}",
            (refused.iter())
                .map(|(party, why)| format!("{party} ({why})"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let was_refused = |name: &str| refused.iter().any(|(r, _)| r == name);
    // Those that failed before the commit are no party of it, but the run's all the same.
    let failed_earlier = match failed_before.as_slice() {
        [] => String::new(),
        failed => format!(
            "; failed before the commit (rolled back): {}",
            (failed.iter())
                .map(|(name, endpoint)| format!("{name} ({endpoint})"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    interrupt_waits();
    if !first {
        EXITING_AT_ONCE.store(true, Ordering::SeqCst);
    }
    if first {
        // recover finishes the statement in progress, never more: it says so, commit or not.
        // A job's tables whose COMMITs began finish them: named (not "rolled back").
        let finishing: Vec<String> = (stopping == JOB_STOPPING)
            .then(|| crate::watch::lock_briefly(&COMMITTING))
            .flatten()
            .and_then(|f| f.as_ref().map(|f| f()))
            .unwrap_or_default();
        let job_finishing;
        let standby_finishing;
        let recover_finishing;
        let stopping = if stopping == RECOVER_STOPPING {
            match standby_waits().as_slice() {
                [] => stopping,
                waits => {
                    recover_finishing = format!(
                        "finishing {} (never cancelled; its server has not answered: if it \
                         waits for a synchronous standby that is not there, it ends only when \
                         one confirms it, or when its session is ended on that server, and then \
                         it stays done there), then stopping: the transactions not reached are \
                         left prepared",
                        waits.join(", ")
                    );
                    &recover_finishing
                }
            }
        } else if stopping == JOB_STOPPING && JOB_PLANNING.load(Ordering::SeqCst) {
            JOB_PLANNING_STOPPING
        } else if stopping == JOB_STOPPING && !finishing.is_empty() {
            let standby = match standby_waits() {
                waits if waits.is_empty() => String::new(),
                waits => format!(" ({})", standby_words(&waits)),
            };
            job_finishing = format!(
                "stopping the job: {} {}: {} began and finish{standby}; the other tables being \
                 copied are rolled back, the tables committed stay committed and recorded in the \
                 state file",
                if finishing.len() == 1 {
                    "table"
                } else {
                    "tables"
                },
                copyman_job::job::first_names(
                    &finishing.iter().map(String::as_str).collect::<Vec<_>>()
                ),
                if finishing.len() == 1 {
                    "its COMMITs"
                } else {
                    "their COMMITs"
                },
            );
            &job_finishing
        } else if (committing || point) && !standby_waits().is_empty() {
            // Its end waits on a standby that may never come: said, and the way out.
            standby_finishing = format!(
                "the commit is under way and finishes: {}; the report says what committed",
                standby_words(&standby_waits())
            );
            &standby_finishing
        } else if committing || point {
            "the commit is under way and finishes; the report says what committed"
        } else if ending.is_some() {
            "nothing is committed yet: the commit is called off, every transaction rolls back"
        } else {
            stopping
        };
        progress::println(&format!(
            "copyman: {} received: {stopping} (again to exit at once)",
            name(signal)
        ));
        remind(signal);
    } else if committing && unanswered.is_empty() && not_sent.as_ref().is_some_and(Vec::is_empty) {
        // Every COMMIT was answered: nothing is in doubt or left out; the run ends as it would.
        remove_temp_files();
        let said = say(&format!(
            "copyman: {}{} exiting at once: every COMMIT was answered: committed: \
             {}{failed}{failed_earlier}",
            name(signal),
            again(signal),
            match committed.as_slice() {
                [] => "none".to_owned(),
                committed => with_endpoints(committed, &endpoints),
            }
        ));
        let exit = match (
            !failed_before.is_empty() || !refused.is_empty(),
            committed.is_empty(),
        ) {
            (false, _) => 0,
            (true, false) => crate::report::Exit::Partial as i32,
            (true, true) => crate::report::Exit::CopyFailed as i32,
        };
        let note = "none: every COMMIT was answered";
        let rest = |name: &str| match was_refused(name) {
            true => "failed",
            false => "committed",
        };
        print_at_once_json(exit, &committed, &[], (&endpoints, &rest), note, &said);
        exit_at_once(exit);
    } else if committing {
        remove_temp_files();
        let list = |names: &[String]| match names {
            [] => "none".to_owned(),
            names => with_endpoints(names, &endpoints),
        };
        let source = if unanswered.iter().any(|p| p == "source") {
            " (the source's may have committed its statement's changes, a move's DELETE: check \
             the source before undoing anything)"
        } else {
            ""
        };
        // The source's COMMIT not sent: what its statement changed (a move's DELETE) rolls
        // back as copyman exits, and the rows it returned are on both sides.
        let known = not_sent.is_some();
        let recovering = crate::watch::lock_briefly(&RECOVERING).is_some_and(|log| log.is_some());
        let not_sent = match recovering {
            // Those it rolled back are not "not committed" (or prepared still).
            true => (not_sent.unwrap_or_default().into_iter())
                .filter(|p| !rolled_back.contains(p) && !rolling_back.contains(p))
                .collect(),
            false => not_sent.unwrap_or_default(),
        };
        let source_prepared = prepared.iter().any(|p| p == "source");
        let kept = match (not_sent.iter().any(|p| p == "source"), source_prepared) {
            (false, _) => "",
            // Prepared under the decision: recover commits it, as it does the destinations'.
            (true, true) => {
                "; the source's prepared transaction stays prepared: copyman recover given the \
                 source too commits it as decided (a move's rows then leave the source)"
            }
            (true, false) => {
                "; the source's statement did not commit: its changes roll back (a move's rows \
                 stay on the source, as on the destinations that committed)"
            }
        };
        // The source among them, as `--json` lists it (what follows says what that means).
        let others = if known {
            format!("not committed: {}", list(&not_sent))
        } else {
            "the others have not committed".to_owned()
        };
        // Under --atomic the COMMITs are COMMIT PREPAREDs: one not answered may still be
        // prepared, and those not sent are (recover finishes both); without it nothing is
        // prepared, and what was not sent rolls back as copyman exits.
        let two_phase = ending == Some(true) || recovering;
        // Recover told how to find this run's decisions (its own --decision-log: recheck41 F5).
        let recover = crate::recover::same_as_this_run();
        let (statement, doubt, rest) = if two_phase {
            (
                "COMMIT PREPARED",
                format!(
                    "may have committed or still be prepared: copyman recover {recover} finishes it"
                ),
                // (recover's others: some it would have rolled back, or left alone.)
                match recovering {
                    true => format!("still prepared: copyman recover {recover} finishes them"),
                    false => format!("prepared: copyman recover {recover} commits them"),
                },
            )
        } else {
            (
                "COMMIT",
                // Its session stays until the COMMIT ends, which commits (commit46 F2: one
                // waiting for a synchronous standby, ended by hand, committed; the copy redone
                // there doubled the table).
                "may have committed: its session stays on its server until the COMMIT ends, \
                 which commits if the server got it (once a synchronous standby confirms it, or \
                 at once if the session is ended): look at what it holds before copying to it \
                 again"
                    .to_owned(),
                "rolled back as copyman exits".to_owned(),
            )
        };
        // A group with nothing in it is not said (recheck45 F4.3: "…not answered (the whole
        // recover advice): none").
        let unanswered_said = match unanswered.is_empty() {
            true => String::new(),
            false => format!(
                "; {statement} sent, not answered ({doubt}): {}{source}",
                list(&unanswered)
            ),
        };
        // Nor an empty "not committed" (recheck46 F6: "not committed: none (rolled back as
        // copyman exits)").
        let others_said = match known && not_sent.is_empty() {
            true => String::new(),
            false => format!("; {others} ({rest})"),
        };
        let said = say(&format!(
            "copyman: {}{} exiting at once during the COMMITs: \
             committed: {}{unanswered_said}{failed}{others_said}{kept}{failed_earlier}",
            name(signal),
            again(signal),
            list(&committed),
        ));
        let exit = at_once_exit(signal, true);
        // Not sent: prepared under the decision (recover commits them), else rolled back as
        // the connections close.
        let rest = if recovering {
            "still prepared"
        } else if ending == Some(true) && point {
            "commit pending"
        } else {
            "rolled back"
        };
        print_at_once_json(
            exit,
            &committed,
            &unanswered,
            (&endpoints, &|name| {
                if was_refused(name) { "failed" } else { rest }
            }),
            &format!("not committed ({rest}): {}{kept}", list(&not_sent)),
            &said,
        );
        exit_at_once(exit);
    } else if let Some(two_phase) = ending {
        remove_temp_files();
        // No COMMIT was sent: the servers roll back the open transactions; prepared
        // ones stay, for copyman recover (which commits them if the decision was
        // recorded: they will hold the rows).
        // The decision being written now (its log's lock, its write, its fsync): whether it
        // reached the log is not known (signals65 F5: "the commit decision is recorded", exit 4,
        // while the run waited for the log's lock, and recover rolled everything back).
        let recording = two_phase
            && point
            && crate::watch::lock_briefly(&RECORDING)
                .is_some_and(|r| r.as_ref().is_some_and(|r| r.what == Written::Decision));
        let (said, exit) = if recording {
            let held: Vec<String> = (recording_gids().iter())
                .map(|(name, gid)| format!("{} as {gid}", with_endpoints(&[name], &endpoints)))
                .collect();
            (
                format!(
                    "the commit decision was being written to the decision log (its lock, its \
                     write or its fsync): nothing is committed (no COMMIT PREPARED was sent), and \
                     whether the decision reached the log is not known: copyman recover {} \
                     commits the prepared transactions if it did, else rolls them back{}",
                    crate::recover::same_as_this_run(),
                    match held.is_empty() {
                        true => String::new(),
                        false => format!("; prepared, in doubt: {}", held.join(", ")),
                    }
                ),
                at_once_exit(signal, false),
            )
        } else if two_phase && point {
            (
                format!(
                    "the commit decision is recorded, so the prepared transactions commit: \
                     copyman recover {} commits those whose COMMIT PREPARED this run did not \
                     send (one may be going out as copyman exits)",
                    crate::recover::same_as_this_run()
                ),
                at_once_exit(signal, true),
            )
        } else if two_phase {
            // The first signal came before the decision: none will be recorded. Each party
            // as its PREPARE stands: answered, sent, or not sent (rolled back as copyman exits).
            let open: Vec<&String> = endpoints
                .iter()
                .map(|(name, _)| name)
                .filter(|name| {
                    ![&prepared, &preparing, &rolling_back, &rolled_back]
                        .iter()
                        .any(|list| list.contains(name))
                })
                .collect();
            let mut parts = Vec::new();
            for (names, what) in [
                (prepared.iter().collect::<Vec<_>>(), "prepared"),
                (
                    preparing.iter().collect(),
                    "PREPARE TRANSACTION sent, not answered (prepared or not)",
                ),
                (
                    rolling_back.iter().collect(),
                    "ROLLBACK PREPARED sent, not answered (rolled back or still prepared)",
                ),
                (rolled_back.iter().collect(), "rolled back"),
                (open, "rolled back as copyman exits"),
            ] {
                if !names.is_empty() {
                    parts.push(format!("{what}: {}", with_endpoints(&names, &endpoints)));
                }
            }
            let before_decision = if prepared.is_empty()
                && preparing.is_empty()
                && rolling_back.is_empty()
                && rolled_back.is_empty()
            {
                "nothing committed, nothing prepared".to_owned()
            } else {
                format!(
                    "{}; copyman recover {} rolls back whatever is prepared (no commit \
                     decision was recorded)",
                    parts.join("; "),
                    crate::recover::same_as_this_run()
                )
            };
            (before_decision, at_once_exit(signal, false))
        } else {
            ("nothing committed".to_owned(), at_once_exit(signal, false))
        };
        // Decided: the COMMIT PREPAREDs begin as it exits (it said "before any COMMIT was sent"
        // of a run whose first one was out).
        let when = match (recording, two_phase && point) {
            (true, _) => "while the commit decision was being recorded",
            (false, true) => "once the commit was decided",
            (false, false) => "before any COMMIT was sent",
        };
        let error = say(&format!(
            "copyman: {}{} exiting at once {when}: {said}{failed_earlier}",
            name(signal),
            again(signal)
        ));
        let rest = |name: &str| match (two_phase, point) {
            (true, true) if recording => "in doubt",
            (true, true) => "commit pending",
            (true, false) if rolled_back.iter().any(|p| p == name) => "rolled back",
            (true, false) if prepared.iter().any(|p| p == name) => "rollback pending",
            (true, false) if rolling_back.iter().any(|p| p == name) => "rollback pending",
            (true, false) if preparing.iter().any(|p| p == name) => "prepared or not",
            (true, false) | (false, _) => "rolled back",
        };
        print_at_once_json(exit, &[], &[], (&endpoints, &rest), &said, &error);
        exit_at_once(exit);
    } else if let Some(log) = crate::watch::lock_briefly(&RECOVERING).and_then(|log| log.clone()) {
        // recover, its ROLLBACK PREPAREDs only begun: never cancelled, and what each did said
        // (dups49 F2: "its backends cancelled: nothing committed", the one unanswered unsaid).
        let mut parts = Vec::new();
        if !rolled_back.is_empty() {
            parts.push(format!("rolled back: {}", rolled_back.join(", ")));
        }
        if !rolling_back.is_empty() {
            parts.push(format!(
                "ROLLBACK PREPARED sent, not answered (rolled back or still prepared; its session \
                 stays on its server until the statement ends): {}",
                rolling_back.join(", ")
            ));
        }
        if parts.is_empty() {
            parts.push("nothing was finished".to_owned());
        }
        // Every server's not reached yet, named as its `--json` names them (recheck68 F5).
        let untouched = commits()
            .map(|c| recovery_untouched(&c))
            .unwrap_or_default();
        if !untouched.is_empty() {
            parts.push(format!(
                "not reached, still prepared: {}",
                untouched.join(", ")
            ));
        }
        let said = say(&format!(
            "copyman: {}{} exiting at once: {}; what is still prepared stays so: copyman \
             recover {} finishes it",
            name(signal),
            again(signal),
            parts.join("; "),
            crate::recover::same_as_this_run()
        ));
        let exit = at_once_exit(signal, false);
        if JSON.load(Ordering::SeqCst) {
            print_recover_at_once_json(&log, exit, recovery_rolled_back(), None, Some(&said));
        }
        exit_at_once(exit);
    } else {
        remove_temp_files();
        // One table before its commit: nothing committed, said (as --json's `others` says);
        // a job says what it committed in its own words below (signals41 F3).
        let a_job = crate::watch::lock_briefly(&AT_ONCE)
            .as_deref()
            .is_some_and(Option::is_some);
        // A job's COMMITs under way are never cancelled, only its copies (jobs49 F2).
        let said = say(&format!(
            "copyman: {}{} exiting at once ({}){}",
            name(signal),
            again(signal),
            if a_job {
                "its copies' backends cancelled; a COMMIT sent is never cancelled: its backend \
                 stays on its server until it ends"
            } else {
                "its backends cancelled"
            },
            if a_job { "" } else { ": nothing committed" }
        ));
        cancel_before_exit();
        let job = crate::watch::lock_briefly(&AT_ONCE)
            .as_deref()
            .and_then(Option::as_ref)
            .map(|at_once| at_once(signal));
        // A job says its own document; one table, before its commit, the short one (it said
        // none: `--json | jq` got no input).
        // Every destination, as given, rolls back, whatever the copy's end made of it
        // (copyman's own cancel fails a COPY: not that destination's failure; the commit's
        // parties, not known yet, named none: ops54 F6).
        let exit = job.unwrap_or_else(|| {
            let exit = at_once_exit(signal, false);
            let destinations = crate::report::given_destinations();
            let rest: (&[_], &PartyStatus<'_>) = (&destinations, &|_| "rolled back");
            print_at_once_json(exit, &[], &[], rest, "nothing committed", &said);
            exit
        });
        exit_at_once(exit);
    }
}

/// Says every [`crate::watch::say_after`] that the stop is still under way (servers that do not answer
/// the aborts or cancels, a COMMIT that finishes), so that no wait after a signal is silent.
fn remind(signal: i32) {
    let since = Instant::now();
    let _ = thread::Builder::new()
        .name("copyman-stopping".to_owned())
        .spawn(move || {
            loop {
                thread::sleep(crate::watch::say_after());
                // As the signals thread: a reminder that went wrong is skipped, not the rest.
                let _ = panic::catch_unwind(|| remind_once(signal, since));
            }
        });
}

/// One reminder of [`remind`]'s.
fn remind_once(signal: i32, since: Instant) {
    let waits = crate::watch::lock_briefly(&WAITING)
        .as_deref()
        .and_then(Option::as_ref)
        .map(|waiting| waiting())
        .unwrap_or_default();
    let what = if let Some(recording) = recording_words() {
        recording
    } else if let Some(marking) = marking_end_words() {
        marking
    } else if waits.is_empty() {
        "the servers to answer".to_owned()
    } else {
        waits.join("; ")
    };
    progress::println(&format!(
        "copyman: still stopping {} s after {}: waiting for {what} (again to exit at once)",
        since.elapsed().as_secs(),
        name(signal)
    ));
}

/// The decision log copyman writes a line to now, and since when: a write made durable
/// (fsync), which a slow disk or a network file system can make last (dups49 F1: said as a
/// wait for the servers, which waited for copyman).
static RECORDING: Mutex<Option<Recording>> = Mutex::new(None);

/// [`RECORDING`]'s: the log, since when, what is written (the run's start, its commit
/// decision), and each party's prepared transaction the decision names (its name, its global
/// id).
struct Recording {
    log: PathBuf,
    since: Instant,
    what: Written,
    gids: Vec<(String, String)>,
}

/// What copyman writes to its decision log (and may wait for the log's lock to write).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Written {
    /// The run's start: its id and the servers it may prepare on, before anything is prepared.
    Start,
    /// The commit decision.
    Decision,
}

/// copyman writes `what` to `log` now (`None`: done), a decision naming each party's prepared
/// transaction in `gids` (party name, global id).
pub(crate) fn recording(log: Option<&Path>, what: Written, gids: &[(String, String)]) {
    *RECORDING.lock().unwrap_or_else(PoisonError::into_inner) = log.map(|log| Recording {
        log: log.to_owned(),
        since: Instant::now(),
        what,
        gids: gids.to_vec(),
    });
}

/// The prepared transactions of the decision being recorded now (party name, global id): held
/// where they are, in doubt, if copyman exits at once (recheck65 F2: said of none).
fn recording_gids() -> Vec<(String, String)> {
    crate::watch::lock_briefly(&RECORDING)
        .and_then(|r| r.as_ref().map(|r| r.gids.clone()))
        .unwrap_or_default()
}

/// What copyman itself does while the servers wait for it, in words, if it writes its decision
/// log now: `copyman's own write of its commit decision to LOG (made durable on disk; 12 s so
/// far: the servers wait for it)`.
pub(crate) fn recording_words() -> Option<String> {
    let (log, since, what) = {
        let recording = crate::watch::lock_briefly(&RECORDING)?;
        let r = recording.as_ref()?;
        (r.log.clone(), r.since, r.what)
    };
    let what = match what {
        Written::Start => "the run's start",
        Written::Decision => "its commit decision",
    };
    let waited = since.elapsed().as_secs();
    // Its lock held by another process (a run or recover sharing the log, a script's `flock`):
    // named, not left to be taken for a slow disk (signals65 F6: blamed on the servers).
    // (Held by this process: its own write goes on under it.)
    let holder =
        copyman_job::commit::lock_holder(&log).filter(|(pid, _)| *pid != std::process::id());
    Some(match holder {
        Some((pid, command)) => format!(
            "copyman's own wait for the lock on the decision log {}, to write {what}: {}, \
             another run or recover sharing the log, or a script's flock ({waited} s so far: \
             the servers wait for it)",
            log.display(),
            crate::watch::holds(pid, &command)
        ),
        None => format!(
            "copyman's own write of {what} to {} (made durable on disk, fsync; {waited} s so \
             far: the servers wait for it)",
            log.display()
        ),
    })
}

/// How long copyman has been writing to its decision log (or waiting for its lock), if it is.
pub(crate) fn recording_for() -> Option<Duration> {
    let recording = crate::watch::lock_briefly(&RECORDING)?;
    recording.as_ref().map(|r| r.since.elapsed())
}

/// The first signal received, if any.
pub(crate) fn received() -> Option<i32> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        signal => Some(signal),
    }
}

/// A signal's name.
pub(crate) fn name(signal: i32) -> &'static str {
    match signal {
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        SIGHUP => "SIGHUP",
        SIGQUIT => "SIGQUIT",
        _ => "a signal",
    }
}

/// How an exit at once says `signal` came: " received again:", or " received:" for SIGQUIT,
/// which exits at once the first time.
fn again(signal: i32) -> &'static str {
    if signal == SIGQUIT {
        " received:"
    } else {
        " received again:"
    }
}

/// The exit status of a second signal, which exits at once: 4 (partial) when `committing` —
/// a COMMIT was sent (answered or not), or under two-phase commit a PREPARE, on some
/// destination: something committed, may have, or will on `copyman recover` — else the
/// signal's own ([`exit_code`]: nothing committed). One rule for one table and for a job.
pub(crate) fn at_once_exit(signal: i32, committing: bool) -> i32 {
    if committing {
        crate::report::Exit::Partial as i32
    } else {
        exit_code(signal).into()
    }
}

/// The exit status for a signal: 128 + its number, as shells report a process it killed.
pub(crate) fn exit_code(signal: i32) -> u8 {
    u8::try_from(128 + signal.clamp(0, 127)).unwrap_or(u8::MAX)
}

/// Remembers a temporary file to remove if the process exits at once.
pub(crate) fn register_temp(path: &Path) {
    let mut files = TEMP_FILES.lock().unwrap_or_else(PoisonError::into_inner);
    files.push(path.to_owned());
}

/// Forgets a temporary file (renamed into place, or removed).
pub(crate) fn unregister_temp(path: &Path) {
    let mut files = TEMP_FILES.lock().unwrap_or_else(PoisonError::into_inner);
    files.retain(|p| p != path);
}

fn remove_temp_files() {
    let files = TEMP_FILES.lock().unwrap_or_else(PoisonError::into_inner);
    for path in files.iter() {
        let _ = fs::remove_file(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_shell_conventions() {
        assert_eq!(exit_code(SIGHUP), 129);
        assert_eq!(exit_code(SIGINT), 130);
        assert_eq!(exit_code(SIGTERM), 143);
        assert_eq!(name(SIGTERM), "SIGTERM");
    }
}
