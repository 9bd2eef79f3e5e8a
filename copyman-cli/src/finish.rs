//! Step 6 of a run: every transaction ends as copyman-core's commit machine decides
//! ([`copyman_job::commit`]): deferred constraints checked everywhere, then one COMMIT after
//! another that stops at the first failure, or with `--atomic` a two-phase commit under a durable
//! decision; the source's transaction last. This file only maps destinations (servers and files)
//! onto the machine's parties and its outcomes onto the report.

use std::path::Path;
use std::time::Duration;

use copyman_job::commit::{
    self, Action, Commit, DecisionLog, Failure, Holder, Options, Outcome, Participant, Policy,
    Report, SourceOutcome, Step,
};
use copyman_sync::Connection;

use crate::args::Endpoint;
use crate::conn::ServerSpec;
use crate::dest::Dest;
use crate::report::{self, ErrorInfo, Exit, Fatal};
use crate::run::describe_sync;
use crate::signals;

/// How a run ends its transactions.
pub(crate) struct Finish<'a> {
    /// `--keep-going`.
    pub(crate) keep_going: bool,
    /// `--atomic`: the decision log, and the run's id and lock.
    pub(crate) atomic: Option<Atomic>,
    /// The source's connection, holding a transaction.
    pub(crate) source: Option<&'a mut Connection>,
    /// The source's server: its prepared transaction (`--atomic`) is finished on a new session
    /// if the first is lost.
    pub(crate) source_spec: Option<&'a ServerSpec>,
    /// The source's transaction wrote nothing (see [`source_wrote`]).
    pub(crate) source_read_only: bool,
    /// The copy failed: everything rolls back.
    pub(crate) copy_failed: bool,
}

/// A two-phase run: its id, its decision log, and the lock that says it is in progress.
pub(crate) struct Atomic {
    pub(crate) run: String,
    pub(crate) log: DecisionLog,
    /// The source (a `--send` statement's, which may write) can prepare its transaction too.
    pub(crate) source_two_phase: bool,
    /// The server of each destination's transaction (`None`: a file), for the decision's
    /// `party` lines.
    servers: Vec<Option<Holder>>,
    /// The source's server, when it prepares its transaction too.
    source_server: Option<Holder>,
    _lock: commit::RunLock,
}

impl Atomic {
    /// Checks that every server destination can prepare a transaction (exit 2 if one cannot;
    /// under `keep_going` it is left out, unless none is left): each one's server to name in the
    /// decision log. A `--dry-run` asks it too.
    pub(crate) fn check_destinations(
        dests: &mut [Dest<'_>],
        keep_going: bool,
    ) -> anyhow::Result<Vec<Option<Holder>>> {
        let mut servers = Vec::with_capacity(dests.len());
        let mut refused = Vec::new();
        for (i, dest) in dests.iter_mut().enumerate() {
            let display = format!("destination {} {}", i + 1, dest.endpoint.display());
            let Some(conn) = dest.conn.as_mut() else {
                servers.push(None);
                continue;
            };
            let rows = conn
                .query(
                    "SELECT current_setting('max_prepared_transactions')::int, \
                     (SELECT count(*) FROM pg_prepared_xacts)",
                )
                .map_err(|e| Fatal {
                    exit: Exit::CopyFailed,
                    server: None,
                    message: format!("{display}: {}", describe_sync(&e)),
                })?;
            let number = |c: usize| -> i64 {
                rows.first()
                    .and_then(|r| r.get(c).cloned().flatten())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
            };
            let (max, used) = (number(0), number(1));
            let why = if max == 0 {
                "does not allow prepared transactions (max_prepared_transactions = 0): set \
                 max_prepared_transactions above 0 in its postgresql.conf and restart it"
                    .to_owned()
            } else if used >= max {
                format!(
                    "has all its {max} prepared transactions in use (max_prepared_transactions): \
                     finish them first (copyman recover, or COMMIT/ROLLBACK PREPARED)"
                )
            } else {
                servers.push(Some(Holder::of_session(conn, display)));
                continue;
            };
            if !keep_going {
                return Err(Fatal {
                    exit: Exit::Usage,
                    message: format!("--atomic: {display} {why}"),
                    server: Some((
                        display,
                        ErrorInfo {
                            sqlstate: None,
                            message: why,
                        },
                    )),
                }
                .into());
            }
            refused.push(format!("--atomic: {display} {why}"));
            dest.leave_out(
                i,
                ErrorInfo {
                    sqlstate: None,
                    message: format!("--atomic: {why}"),
                },
            );
            servers.push(None);
        }
        match refused.into_iter().next() {
            Some(first) if dests.iter().all(|d| d.error.is_some()) => Err(Fatal {
                exit: Exit::Usage,
                server: None,
                message: first,
            }
            .into()),
            _ => Ok(servers),
        }
    }

    /// Checks that every server destination can prepare a transaction, then opens the decision
    /// log and marks the run in progress. Before anything is copied: a refusal is exit 2.
    /// `source` is a `--send` statement's source: where it allows prepared transactions, it is
    /// prepared with the destinations (else it is only checked before the decision).
    pub(crate) fn prepare(
        path: &Path,
        dests: &mut [Dest<'_>],
        source: Option<&mut Connection>,
        keep_going: bool,
    ) -> anyhow::Result<Self> {
        let servers = Self::check_destinations(dests, keep_going)?;
        let io = |e: std::io::Error| Fatal {
            exit: Exit::Usage,
            server: None,
            message: format!("--atomic: decision log {}: {e}", path.display()),
        };
        let mut source_server = None;
        let source_two_phase = match source {
            None => false,
            Some(conn) => {
                let can = source_can_prepare(conn);
                report::log(format_args!(
                    "--atomic: the source {}",
                    if can {
                        "allows prepared transactions: a --send statement that writes is prepared \
                         with the destinations"
                    } else {
                        "allows no (more) prepared transactions: a --send statement that writes is \
                         checked before the decision and commits after the destinations"
                    }
                ));
                if can {
                    source_server = Some(Holder::of_session(conn, "the source".to_owned()));
                    crate::recover::source_prepares();
                }
                can
            }
        };
        // A signal stops its waits for the log's lock, but for a COMMIT PREPARED's record
        // (signals67 F5: a run signalled while another process held the lock waited for it).
        let log = DecisionLog::open(path)
            .map_err(io)?
            .stopped_by(|| signals::received().is_some());
        let run = DecisionLog::new_run_id();
        // Every destination the run may prepare a transaction on, named before anything is: a
        // recovery after a crash before the decision asks for those it is not given. (The
        // source is named only if it comes to prepare: a `--send` statement that only read
        // never does.)
        let named: Vec<Option<&Holder>> = servers.iter().map(Option::as_ref).collect();
        // Its lock may be held by another process: the wait is said as copyman's own.
        signals::recording(Some(path), signals::Written::Start, &[]);
        // (A signal meanwhile stops the wait: nothing is prepared yet.)
        let lock = log.lock_run_with(&run, &named, None);
        signals::recording(None, signals::Written::Start, &[]);
        let lock = lock.map_err(|e| match signals::received() {
            Some(signal) if e.kind() == std::io::ErrorKind::Interrupted => Fatal {
                exit: Exit::interrupted(signal),
                server: None,
                message: format!(
                    "interrupted by {} while waiting for the lock on the decision log {} to \
                     record the run's start: nothing was copied",
                    signals::name(signal),
                    path.display()
                ),
            },
            _ => io(e),
        })?;
        report::log(format_args!(
            "two-phase commit: run {run}, decision log {}",
            path.display()
        ));
        Ok(Self {
            run,
            log,
            source_two_phase,
            servers,
            source_server,
            _lock: lock,
        })
    }
}

/// Whether the source's server lets it prepare a transaction now (`max_prepared_transactions`
/// above those in use): a `--send` that writes is then prepared with the destinations under
/// `--atomic`, else [`SOURCE_CANNOT_PREPARE`].
pub(crate) fn source_can_prepare(conn: &mut Connection) -> bool {
    let rows = conn.query(
        "SELECT current_setting('max_prepared_transactions')::int \
         > (SELECT count(*) FROM pg_prepared_xacts)",
    );
    matches!(
        rows.as_ref()
            .ok()
            .and_then(|r| r.first()?.first().cloned().flatten())
            .as_deref(),
        Some("t")
    )
}

/// What `--atomic` warns of a source that cannot prepare, whose `--send` wrote.
pub(crate) const SOURCE_CANNOT_PREPARE: &str = "--atomic: the source cannot prepare a \
    transaction now (max_prepared_transactions is 0, or all in use), so its --send statement's \
    changes are checked before the decision and committed after the destinations, not \
    atomically with them";

/// Ends every destination's (and the source's) transaction; the report of each party.
pub(crate) fn finish(f: Finish<'_>, dests: &mut [Dest<'_>]) -> Report<ErrorInfo> {
    let completed: Vec<bool> = dests.iter().map(|d| d.error.is_none()).collect();
    let options = Options {
        policy: if f.keep_going {
            Policy::KeepGoing
        } else {
            Policy::AllOrNothing
        },
        two_phase: f.atomic.as_ref().map(|a| a.run.clone()),
        source: f.source.is_some(),
        source_read_only: f.source_read_only,
        source_two_phase: f.atomic.as_ref().is_some_and(|a| a.source_two_phase),
        copy_failed: f.copy_failed,
    };
    if f.atomic.as_ref().is_some_and(|a| !a.source_two_phase)
        && f.source.is_some()
        && !f.source_read_only
        && !f.copy_failed
    {
        report::warn(SOURCE_CANNOT_PREPARE);
    }
    let mut parties: Vec<Party<'_, '_>> = dests
        .iter_mut()
        .enumerate()
        .map(|(i, dest)| Party {
            name: format!("destination {}", i + 1),
            pause: format!("{}", i + 1),
            dest: Some(dest),
            spec: None,
            conn: None,
            named_before_prepare: None,
            commits_nothing: false,
        })
        .collect();
    // Who commits something, for what a second signal says: the destinations whose copy
    // completed, and the source when its statement wrote.
    let committing = completed
        .iter()
        .zip(&parties)
        .filter(|(done, _)| **done && !f.copy_failed)
        .map(|(_, p)| {
            let endpoint = p.dest.as_ref().map(|d| d.endpoint.display());
            (p.name.clone(), endpoint.unwrap_or_default())
        })
        .chain(
            (f.source.is_some() && !f.source_read_only && !f.copy_failed).then(|| {
                let endpoint = f.source_spec.map(|spec| spec.display.clone());
                ("source".to_owned(), endpoint.unwrap_or_default())
            }),
        )
        .collect();
    let failed = (completed.iter().zip(&parties))
        .filter(|(done, _)| !**done)
        .map(|(_, p)| {
            let endpoint = p.dest.as_ref().map(|d| d.endpoint.display());
            (p.name.clone(), endpoint.unwrap_or_default())
        })
        .collect();
    signals::commit_parties(committing, failed);
    let source_spec = f.source_spec;
    // A source that wrote and cannot prepare commits after the destinations, by this run: named
    // with the decision, so that a recovery after its death says its changes may be lost.
    let unprepared_source = f
        .atomic
        .as_ref()
        .filter(|a| !a.source_two_phase && f.source.is_some() && !f.source_read_only)
        .and(source_spec)
        .map(|spec| spec.display.clone());
    let mut source = f.source.map(|conn| Party {
        name: "source".to_owned(),
        pause: "source".to_owned(),
        dest: None,
        spec: source_spec,
        conn: Some(conn),
        named_before_prepare: atomic_named(f.atomic.as_ref()),
        commits_nothing: f.source_read_only,
    });
    let atomic = f.atomic.as_ref();
    // Files commit last: renamed into place once every server committed (stdout and pipes,
    // which got their data already, keep their place).
    let files: Vec<bool> = (parties.iter())
        .map(|p| (p.dest.as_ref()).is_some_and(|d| d.conn.is_none() && d.can_roll_back()))
        .collect();
    // The parties' names, by their places in the commit (a decision names them so).
    let names: Vec<String> = parties.iter().map(|p| p.name.clone()).collect();
    let mut refs: Vec<&mut dyn Participant<Error = ErrorInfo>> = parties
        .iter_mut()
        .map(|p| p as &mut dyn Participant<Error = ErrorInfo>)
        .collect();
    let report = commit::run(
        Commit::new(options, &completed).commit_last(&files),
        &mut refs,
        source
            .as_mut()
            .map(|p| p as &mut dyn Participant<Error = ErrorInfo>),
        |decision| {
            let atomic = atomic.expect("a decision only in a two-phase run");
            // A signal before the decision calls the commit off: every PREPARE rolls back. The
            // decision's point is passed once the log's lock is held (a signal while another
            // process holds it calls the commit off too, signals67 F5).
            if let Some(signal) = signals::received() {
                return Err(interrupted_before_commit(signal));
            }
            let stopped = std::cell::Cell::new(None);
            let taken = || {
                stopped.set(signals::commit_point());
                if stopped.get().is_none() {
                    test_pause("recording");
                }
                stopped.get().is_some()
            };
            let gave_up = |e: &std::io::Error| {
                let signal = stopped.get().or_else(signals::received);
                (e.kind() == std::io::ErrorKind::Interrupted)
                    .then_some(signal)
                    .flatten()
                    .map(interrupted_before_commit)
            };
            report::log(format_args!(
                "recording the commit decision of run {} in {}",
                decision.run,
                atomic.log.path().display()
            ));
            if let Some(display) = &unprepared_source
                && let Err(e) = atomic.log.unprepared_source(&decision.run, display)
            {
                if let Some(stop) = gave_up(&e) {
                    return Err(stop);
                }
                report::warn(format!(
                    "cannot record in {} that the source of run {} commits after the \
                     destinations: {e} (a recovery of the run will not say to check it)",
                    atomic.log.path().display(),
                    decision.run
                ));
            }
            let servers: Vec<Option<&Holder>> = atomic.servers.iter().map(Option::as_ref).collect();
            let gids: Vec<(String, String)> = (decision.gids.iter())
                .map(|(i, gid)| (names[*i].clone(), gid.clone()))
                .chain((decision.source.iter()).map(|gid| ("source".to_owned(), gid.clone())))
                .collect();
            signals::recording(Some(atomic.log.path()), signals::Written::Decision, &gids);
            let recorded = atomic.log.record_parties_unless(
                decision,
                &servers,
                atomic.source_server.as_ref(),
                &taken,
            );
            signals::recording(None, signals::Written::Decision, &[]);
            let recorded = recorded.map_err(|e| {
                gave_up(&e).unwrap_or_else(|| ErrorInfo {
                    sqlstate: None,
                    message: format!(
                        "cannot record the commit decision in {}: {e}",
                        atomic.log.path().display()
                    ),
                })
            });
            if recorded.is_ok() {
                test_pause("recorded");
            }
            recorded
        },
        |step| {
            let atomic = atomic.expect("an abort or a party out only in a two-phase run");
            if let Err(e) = atomic.log.note(step) {
                let (what, then) = match step {
                    Step::RecordCommitting { gid, .. } => (
                        format!("that {gid} is being committed"),
                        "a recovery of the run, if it dies before its end, will say that server \
                         must be checked",
                    ),
                    Step::RecordRefused { gid, .. } => (
                        format!("that the COMMIT PREPARED of {gid} was refused"),
                        "a recovery of the run may take it for committed: check what that \
                         server holds",
                    ),
                    Step::RecordOut { gids, .. } => (
                        format!("that {} will not be prepared", gids.join(", ")),
                        "a recovery of the run if it dies before its decision will refuse it as \
                         possibly split",
                    ),
                    _ => (
                        format!("that run {} rolls back", atomic.run),
                        "a recovery that finds it half rolled back will ask for its servers",
                    ),
                };
                report::warn(format!(
                    "cannot record in {} {what}: {e} ({then})",
                    atomic.log.path().display()
                ));
            }
        },
    );
    // Nothing of the run is left prepared (committed under its decision, or rolled back):
    // recovery need not ask for its servers. Else what did end is recorded: recovery asks
    // only for the servers of what is left.
    if let Some(atomic) = atomic {
        let recorded = match report.leaves_work() {
            false => atomic.log.finished(&atomic.run),
            true => (atomic.log).ended_all(&atomic.run, &report.ended_gids(&atomic.run)),
        };
        if let Err(e) = recorded {
            report::warn(format!(
                "cannot record the end of run {} in {}: {e} (copyman recover will ask for its \
                 servers)",
                atomic.run,
                atomic.log.path().display()
            ));
        }
    }
    report
}

/// The error of a commit called off by `signal` before anything committed.
fn interrupted_before_commit(signal: i32) -> ErrorInfo {
    ErrorInfo {
        sqlstate: None,
        message: format!(
            "interrupted by {} before its COMMIT was sent: {CALLED_OFF}",
            signals::name(signal)
        ),
    }
}

/// How [`interrupted_before_commit`] ends.
const CALLED_OFF: &str = "rolled back";

/// What a destination's words say of a COMMIT PREPARED sent and not answered, after `prepared
/// as GID`: it may be prepared still, which the run's advice says first ([`RunReport`]'s).
///
/// [`RunReport`]: crate::report::RunReport
pub(crate) const COMMIT_PREPARED_UNANSWERED: &str =
    "and decided commit; its COMMIT PREPARED was sent and not answered";

/// Whether `error` is a commit called off by a signal ([`interrupted_before_commit`]): the
/// user's stop, not the destination's failure.
pub(crate) fn is_called_off(error: &ErrorInfo) -> bool {
    error.sqlstate.is_none()
        && error.message.starts_with("interrupted by ")
        && error
            .message
            .ends_with(&format!(" before its COMMIT was sent: {CALLED_OFF}"))
}

/// A destination or the source, as a party to the commit.
struct Party<'a, 'e> {
    name: String,
    /// Its name in `COPYMAN_TEST_PAUSE` points.
    pause: String,
    dest: Option<&'a mut Dest<'e>>,
    /// The source's server (a destination's is its endpoint's).
    spec: Option<&'a ServerSpec>,
    conn: Option<&'a mut Connection>,
    /// The log and the server to name there (a `party` line) before it prepares, when the run's
    /// start did not name it (the source).
    named_before_prepare: Option<(&'a DecisionLog, &'a str, &'a Holder)>,
    /// A read-only source: its COMMIT commits nothing, so a second signal does not list it
    /// among the COMMITs that may have committed.
    commits_nothing: bool,
}

/// How long a run, a job or copyman recover lets a `COMMIT` (`PREPARED`) or a `PREPARE
/// TRANSACTION` wait for a synchronous standby before it cancels that wait
/// ([`StandbyWait::watch_commit`], the job's watch).
pub(crate) const STANDBY_COMMIT_PATIENCE: Duration = Duration::from_secs(10);

/// Cancels, from a monitoring session, a `ROLLBACK PREPARED` of `gid` once it waits for a
/// synchronous standby (`IPC SyncRep`), until dropped (a run's abort, and copyman recover's);
/// a `COMMIT PREPARED` too (a run's, recover's), a one-table run's `COMMIT` and its `--atomic`
/// `PREPARE TRANSACTION`, after [`STANDBY_COMMIT_PATIENCE`].
pub(crate) struct StandbyWait {
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StandbyWait {
    pub(crate) fn watch(spec: ServerSpec, gid: &str, name: &str) -> Self {
        Self::watching(spec, &by_gid(gid), name, "ROLLBACK PREPARED")
    }

    /// A `COMMIT PREPARED` of `gid` that waits for a synchronous standby for
    /// [`STANDBY_COMMIT_PATIENCE`]: committed there already (its record flushed), only the
    /// standby's word is waited for — cancelled, so that the run or copyman recover finishes
    /// the other servers, whose prepared transactions hold their locks meanwhile (conn72 F1,
    /// recheck73 F1: one server's wait held every later one's for ever; a first signal did not
    /// get past it). The standby gets it when it catches up.
    pub(crate) fn watch_commit(spec: ServerSpec, gid: &str, name: &str) -> Self {
        Self::watching(spec, &by_gid(gid), name, "COMMIT PREPARED")
    }

    /// A `PREPARE TRANSACTION` of `gid`, as [`Self::watch_commit`]: prepared there already, only
    /// the standby's word is waited for (recheck74 F2: a standby missing from the start held
    /// every `--atomic` run there for ever, the others' transactions open).
    pub(crate) fn watch_prepare(spec: ServerSpec, gid: &str, name: &str) -> Self {
        Self::watching(spec, &by_gid(gid), name, "PREPARE TRANSACTION")
    }

    /// A one-table run's plain `COMMIT` on backend `pid`, as [`Self::watch_commit`] (the
    /// destinations after it waited, their transactions open, for ever).
    pub(crate) fn watch_plain_commit(spec: ServerSpec, pid: i32, name: &str) -> Self {
        Self::watching(spec, &format!("pid = {pid}"), name, "COMMIT")
    }

    /// `statement` on the backend `which` picks (an SQL condition on `pg_stat_activity`).
    fn watching(spec: ServerSpec, which: &str, name: &str, statement: &'static str) -> Self {
        use std::sync::atomic::{AtomicBool, Ordering};
        let done = std::sync::Arc::new(AtomicBool::new(false));
        let (stop, which, name) = (done.clone(), which.to_owned(), name.to_owned());
        let (patience, words) = match statement {
            "ROLLBACK PREPARED" => (
                Duration::from_secs(1),
                crate::watch::STANDBY_ROLLBACK_CANCELLED,
            ),
            "PREPARE TRANSACTION" => (
                STANDBY_COMMIT_PATIENCE,
                crate::watch::STANDBY_PREPARE_CANCELLED,
            ),
            _ => (
                STANDBY_COMMIT_PATIENCE,
                crate::watch::STANDBY_COMMIT_CANCELLED,
            ),
        };
        let thread = std::thread::spawn(move || {
            let started = std::time::Instant::now();
            let mut monitor = None;
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(200));
                if started.elapsed() < patience || stop.load(Ordering::SeqCst) {
                    continue;
                }
                if monitor.is_none() {
                    match spec.connect_monitor(Duration::from_secs(5)) {
                        Ok(conn) => monitor = Some(conn),
                        Err(_) => return,
                    }
                }
                let Some(conn) = monitor.as_mut() else { return };
                let cancelled = conn.query(&format!(
                    "SELECT pg_catalog.pg_cancel_backend(pid) FROM pg_catalog.pg_stat_activity \
                     WHERE wait_event_type = 'IPC' AND wait_event = 'SyncRep' \
                     AND query LIKE '{statement}%' AND {which}"
                ));
                match cancelled {
                    Ok(rows) if !rows.is_empty() => {
                        report::warn(format!("{name}'s {statement} {words}"));
                        return;
                    }
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
        });
        Self {
            done,
            thread: Some(thread),
        }
    }
}

/// The condition picking the backend whose statement names `gid`.
fn by_gid(gid: &str) -> String {
    format!(
        "pg_catalog.strpos(query, '{}') > 0",
        gid.replace('\'', "''")
    )
}

impl Drop for StandbyWait {
    fn drop(&mut self) {
        self.done.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Party<'_, '_> {
    /// Its server, if it has one.
    fn server(&self) -> Option<&ServerSpec> {
        match (&self.spec, &self.dest) {
            (Some(spec), _) => Some(spec),
            (None, Some(dest)) => match dest.endpoint {
                Endpoint::Server(spec) => Some(spec),
                _ => None,
            },
            (None, None) => None,
        }
    }

    /// Its server session, if it has one.
    fn connection(&mut self) -> Option<&mut Connection> {
        match (&mut self.conn, &mut self.dest) {
            (Some(conn), _) => Some(&mut **conn),
            (None, Some(dest)) => dest.conn.as_mut(),
            (None, None) => None,
        }
    }
}

/// The source's naming before it prepares ([`Party::named_before_prepare`]).
fn atomic_named(atomic: Option<&Atomic>) -> Option<(&DecisionLog, &str, &Holder)> {
    let atomic = atomic?;
    Some((
        &atomic.log,
        atomic.run.as_str(),
        atomic.source_server.as_ref()?,
    ))
}

impl Participant for Party<'_, '_> {
    type Error = ErrorInfo;

    fn run(&mut self, action: &Action) -> Result<(), Failure<ErrorInfo>> {
        let describe = |f: Failure<copyman_sync::Error>| match f {
            Failure::Refused(e) => Failure::Refused(describe_sync(&e)),
            Failure::Lost(e) => Failure::Lost(describe_sync(&e)),
            Failure::Emptied(e) => Failure::Emptied(describe_sync(&e)),
        };
        // Named in the log before it prepares: a recovery after a crash asks for its server.
        if let (Action::Prepare(gid), Some((log, run, holder))) =
            (action, self.named_before_prepare)
            && let Err(e) = log.name_party(run, gid, holder)
        {
            return Err(Failure::Refused(ErrorInfo {
                sqlstate: None,
                message: format!(
                    "not prepared: cannot name it in the decision log {}: {e}",
                    log.path().display()
                ),
            }));
        }
        // A signal before the first COMMIT (or the decision) calls the commit off: nothing more
        // is checked or prepared, what is open rolls back (a PREPARE would hold its locks until
        // it is rolled back, or, after a second signal, until copyman recover).
        if matches!(action, Action::Prepare(_) | Action::CheckConstraints)
            && !signals::commit_point_passed()
            && let Some(signal) = signals::received()
        {
            return Err(Failure::Refused(interrupted_before_commit(signal)));
        }
        // A signal before the first COMMIT calls the commit off: nothing has committed yet.
        // (Stdout or a pipe got its data already: it has nothing to call off.)
        if self.dest.as_ref().is_some_and(|d| d.can_roll_back())
            && *action == Action::Commit
            && let Some(signal) = signals::commit_point()
        {
            return Err(Failure::Refused(interrupted_before_commit(signal)));
        }
        report::log(format_args!("{}: {}", self.name, action.sql()));
        // Known to a second signal (which exits at once naming them): the destinations' COMMITs,
        // and the source's, which may commit a move's DELETE.
        let commits =
            matches!(action, Action::Commit | Action::CommitPrepared(_)) && !self.commits_nothing;
        if commits {
            signals::commit_sent(&self.name);
        }
        if matches!(action, Action::Prepare(_)) {
            signals::prepare_sent(&self.name);
        }
        if matches!(action, Action::RollbackPrepared(_)) {
            signals::rollback_prepared_sent(&self.name);
        }
        // Known to the watch until answered: a backend that does not run it is said.
        let backend = match (&self.conn, &self.dest) {
            (Some(conn), _) => Some(&**conn),
            (None, Some(dest)) => dest.conn.as_ref(),
            (None, None) => None,
        }
        .and_then(|conn| conn.session().backend_key())
        .map(|(pid, _)| pid);
        let _sending = crate::watch::sending(backend, action);
        // A PREPARE decides nothing: bounded by --stall-timeout, as the copy was (commit68 F10:
        // one waiting for a synchronous standby that is not there held the run past it; the
        // watch hears its backend active, so a socket's timeout never ends that wait).
        let bound = report::stall_timeout()
            .filter(|_| matches!(action, Action::Prepare(_)))
            .and_then(|limit| Some((limit, self.connection()?)))
            .and_then(|(limit, conn)| commit::PrepareBound::arm(conn, limit));
        // A ROLLBACK PREPARED waiting for a synchronous standby is cancelled, on whichever
        // session it runs (the run's, or a new one after its session was lost): rolled back
        // there already, only the standby's word is waited for (as a job's watch does).
        // A COMMIT PREPARED, committed there already, after 10 s: the others then commit too
        // (recheck73 F1: they stayed prepared, holding their locks, for ever).
        let standby = match (action, self.server()) {
            (Action::RollbackPrepared(gid), Some(spec)) => {
                Some(StandbyWait::watch(spec.clone(), gid, &self.name))
            }
            (Action::CommitPrepared(gid), Some(spec)) => {
                Some(StandbyWait::watch_commit(spec.clone(), gid, &self.name))
            }
            (Action::Prepare(gid), Some(spec)) => {
                Some(StandbyWait::watch_prepare(spec.clone(), gid, &self.name))
            }
            (Action::Commit, Some(spec)) => {
                backend.map(|pid| StandbyWait::watch_plain_commit(spec.clone(), pid, &self.name))
            }
            _ => None,
        };
        let result = match (&mut self.conn, &mut self.dest) {
            (Some(conn), _) => match self.spec {
                Some(spec) => commit::run_on_a_live_session(conn, action, &|| spec.connect())
                    .map_err(describe),
                None => Participant::run(&mut **conn, action).map_err(describe),
            },
            (None, Some(dest)) => match (dest.conn.as_mut(), dest.endpoint) {
                (Some(conn), Endpoint::Server(spec)) => {
                    commit::run_on_a_live_session(conn, action, &|| spec.connect())
                        .map_err(describe)
                }
                (Some(conn), _) => Participant::run(conn, action).map_err(describe),
                (None, _) => match action {
                    // A file: renamed into place, or removed.
                    Action::Commit => dest.commit().map_err(Failure::Refused),
                    Action::Rollback => {
                        dest.discard();
                        Ok(())
                    }
                    _ => Ok(()),
                },
            },
            (None, None) => unreachable!("a party is a destination or the source"),
        };
        let result = match (bound, self.connection()) {
            (Some(bound), Some(conn)) => match (bound.disarm(conn), result) {
                (true, Err(Failure::Lost(e))) => Err(Failure::Lost(ErrorInfo {
                    sqlstate: e.sqlstate,
                    message: commit::PrepareBound::given_up(report::stall_timeout()),
                })),
                (_, result) => result,
            },
            _ => result,
        };
        drop(standby);
        // A copy of no rows lost none to the crash (commit55 F3: failed, exit 4).
        let result = match result {
            Err(Failure::Emptied(_)) if self.dest.as_ref().is_some_and(|d| d.rows == Some(0)) => {
                Ok(())
            }
            result => result,
        };
        if let (
            Some(dest),
            Action::Commit
            | Action::CommitPrepared(_)
            | Action::Rollback
            | Action::RollbackPrepared(_),
        ) = (&mut self.dest, action)
        {
            // (One that failed during the copy ended then.)
            dest.ended.get_or_insert_with(std::time::Instant::now);
        }
        if let (Err(Failure::Refused(why)), true) = (&result, commits) {
            signals::commit_refused(&self.name, &why.to_string());
        }
        // (Committed without rows a crash since its PREPARE took from its UNLOGGED tables: it
        // committed all the same.)
        if commits && matches!(result, Err(Failure::Emptied(_))) {
            signals::committed(&self.name);
        }
        if result.is_ok() {
            if commits {
                signals::committed(&self.name);
            }
            if matches!(action, Action::Prepare(_)) {
                signals::prepared(&self.name);
            }
            if matches!(action, Action::RollbackPrepared(_)) {
                signals::rolled_back_prepared(&self.name);
            }
            let step = match action {
                Action::CheckConstraints => "checked",
                Action::Commit => "committed",
                Action::Prepare(_) => "prepared",
                Action::CommitPrepared(_) => "commit-prepared",
                Action::RollbackPrepared(_) => "rolled-back",
                _ => "",
            };
            if !step.is_empty() {
                test_pause(&format!("{step}:{}", self.pause));
            }
        }
        result
    }
}

/// For the tests of what a crash or a dying server leaves: when `COPYMAN_TEST_PAUSE` is
/// `POINT@FILE` and `point` is POINT (e.g. `prepared:1`, `recorded`, `checked:2`), copyman creates
/// FILE and waits while it exists, so a test can kill copyman or a server at exactly that point,
/// then remove FILE to let it go on. Unset (always, outside the tests), this does nothing.
/// A job's commit steps pause here too (`commit-prepared:N`, `committed:N` once destination
/// N's `COMMIT PREPARED` or `COMMIT` of a table, or of a range of a split table, answered), and
/// recover's before its Nth COMMIT or ROLLBACK PREPARED (`finishing:N`); a one-table run's
/// once its plan stands, before its source's transaction begins (`planned`, as a job's once
/// planned), and once its Nth destination, in the order their locks are taken, began
/// (`begun:N`; `begun:0` before the first).
pub(crate) fn test_pause(point: &str) {
    let Ok(spec) = std::env::var("COPYMAN_TEST_PAUSE") else {
        return;
    };
    let Some((at, file)) = spec.split_once('@') else {
        return;
    };
    if at != point {
        return;
    }
    crate::progress::println(&format!(
        "copyman: paused at {point} (COPYMAN_TEST_PAUSE) until {file} is removed"
    ));
    if std::fs::write(file, point).is_err() {
        return;
    }
    while Path::new(file).exists() {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What a destination's outcome means for its line in the report.
pub(crate) fn outcome_error(outcome: &Outcome<ErrorInfo>) -> Option<ErrorInfo> {
    match outcome {
        Outcome::InDoubt(e) => Some(ErrorInfo {
            sqlstate: e.sqlstate.clone(),
            message: format!(
                "the connection was lost during COMMIT: whether it committed is unknown ({})",
                e.message
            ),
        }),
        // 42704: no such prepared transaction — another session finished it meanwhile.
        Outcome::CommitPending { gid, error, .. } if error.sqlstate.as_deref() == Some("42704") => {
            Some(ErrorInfo {
                sqlstate: error.sqlstate.clone(),
                message: format!(
                    "prepared as {gid} and decided commit, but by its COMMIT PREPARED the \
                     transaction was gone ({}): it was finished meanwhile (by a COMMIT PREPARED \
                     of this run whose answer was lost, or by another session: copyman recover \
                     with another decision log, COMMIT/ROLLBACK PREPARED by hand), and whether \
                     it committed is unknown: check what this destination holds",
                    error.message
                ),
            })
        }
        Outcome::CommitPending {
            gid,
            error,
            sent: true,
        } => Some(ErrorInfo {
            sqlstate: error.sqlstate.clone(),
            message: format!(
                "prepared as {gid} {COMMIT_PREPARED_UNANSWERED} ({}): it may have committed, \
                 else it is still prepared: run copyman recover {} to finish it",
                error.message,
                crate::recover::same_as_this_run()
            ),
        }),
        Outcome::CommitPending { gid, error, .. } => Some(ErrorInfo {
            sqlstate: error.sqlstate.clone(),
            message: format!(
                "prepared as {gid} and decided commit, but COMMIT PREPARED failed ({}): \
                 run copyman recover {} to finish it",
                error.message,
                crate::recover::same_as_this_run()
            ),
        }),
        Outcome::RollbackPending { gid, error } => Some(ErrorInfo {
            sqlstate: error.as_ref().and_then(|e| e.sqlstate.clone()),
            message: format!(
                "may hold the prepared transaction {gid} (nothing visible; it holds its locks): \
                 run copyman recover {} to roll it back{}",
                crate::recover::same_as_this_run(),
                error
                    .as_ref()
                    .map(|e| format!(" ({})", e.message))
                    .unwrap_or_default()
            ),
        }),
        other => other.error().cloned(),
    }
}

/// Whether the source's transaction wrote anything (a transaction id was assigned to it), asked
/// before anything commits: a transaction that wrote nothing changes nothing by committing, so
/// its COMMIT's failure cannot make a run partial. `true` when it cannot be told (the session is
/// gone, for one): the commit's check of the source then says what happened.
/// (`txid_current_if_assigned()` rather than PostgreSQL 13's `pg_current_xact_id_if_assigned()`:
/// the same answer on every version copyman reads from.)
pub(crate) fn source_wrote(conn: &mut Connection) -> bool {
    report::log("source: SELECT txid_current_if_assigned() IS NOT NULL");
    match conn.query("SELECT txid_current_if_assigned() IS NOT NULL") {
        Ok(rows) => !matches!(
            rows.first()
                .and_then(|r| r.first().cloned().flatten())
                .as_deref(),
            Some("f")
        ),
        Err(e) => {
            report::log(format_args!(
                "source: cannot tell whether its transaction wrote anything: {}",
                describe_sync(&e)
            ));
            true
        }
    }
}

/// The run's error from the source's outcome, if its check or its commit failed; a note when a
/// source that wrote nothing could not commit (that changes nothing).
pub(crate) fn source_error(source: Option<&SourceOutcome<ErrorInfo>>) -> Option<String> {
    match source {
        // (It wrote: a move's DELETE, rolled back with it. commit74 F4: not said.)
        Some(SourceOutcome::CommitFailed(e)) => Some(format!(
            "every destination committed, but the source's transaction did not commit, and its \
             changes (a move's DELETE) rolled back there: the rows copied are on the source and \
             on every destination now, so check the source before moving them again (the same \
             command again copies them twice): {e}"
        )),
        Some(SourceOutcome::InDoubt(e)) => Some(format!(
            "every destination committed, but the connection to the source was lost during its \
             COMMIT: whether the source's transaction committed (and with it the --send \
             statement's changes, a move's DELETE) is unknown; check the source before undoing \
             anything: {e}"
        )),
        Some(SourceOutcome::CheckFailed(e)) => Some(format!(
            "source: its transaction failed its check (or its PREPARE, rolled back since) before \
             anything was committed, so every destination rolled back: {e}"
        )),
        Some(SourceOutcome::CommitPending { gid, error }) => Some(format!(
            "the source's transaction was prepared as {gid} and decided commit, but COMMIT \
             PREPARED failed ({error}): run copyman recover --to SOURCE{} (SOURCE: the source's \
             CONN) to finish it (its changes are not visible until then)",
            crate::recover::log_option()
        )),
        Some(SourceOutcome::RollbackPending { gid, error }) => Some(format!(
            "source: the connection was lost during its PREPARE TRANSACTION, so every destination \
             rolled back; the source may hold the prepared transaction {gid} (nothing visible; it \
             holds its locks): run copyman recover --to SOURCE{} (SOURCE: the source's CONN) \
             to roll it back{}",
            crate::recover::log_option(),
            error
                .as_ref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        )),
        Some(SourceOutcome::WroteNothing(Some(e))) => {
            report::warn(format_args!(
                "source: its transaction wrote nothing, and its COMMIT failed, which changes \
                 nothing: {e}"
            ));
            None
        }
        _ => None,
    }
}

/// The source's outcome in words, for the report.
pub(crate) fn source_outcome_name(outcome: &SourceOutcome<ErrorInfo>) -> &'static str {
    match outcome {
        SourceOutcome::Committed => "committed",
        SourceOutcome::RolledBack | SourceOutcome::CheckFailed(_) => "rolled back",
        SourceOutcome::CommitFailed(_) => "commit failed",
        SourceOutcome::InDoubt(_) => "in doubt",
        SourceOutcome::WroteNothing(_) => "wrote nothing",
        SourceOutcome::CommitPending { .. } => "commit pending",
        SourceOutcome::RollbackPending { .. } => "rollback pending",
        _ => "unknown",
    }
}
