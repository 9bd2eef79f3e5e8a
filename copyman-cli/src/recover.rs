//! `copyman recover`: finishes the prepared transactions an interrupted `--atomic` run left, as
//! its recorded decision says (copyman-core's [`recovery`] rule): commit when the run recorded a
//! commit decision naming the transaction, else roll back. Never another program's prepared
//! transaction, never one of a run still in progress.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{OnceLock, mpsc};
use std::thread;
use std::time::{Duration, Instant};

/// The decision log this process was given (`--decision-log`), where it is not the default one:
/// the advice to run `copyman recover` after a run names it, since recover reads the default
/// one otherwise and refuses (signals41 F1).
static GIVEN_LOG: OnceLock<PathBuf> = OnceLock::new();

/// Notes the decision log given with `--decision-log` ([`same_as_this_run`]), made absolute:
/// the advice is pasted later, from another directory, where a relative path names another
/// log or none (commit66 F4).
pub(crate) fn log_given(path: &Path) {
    let _ = GIVEN_LOG.set(std::path::absolute(path).unwrap_or_else(|_| path.to_owned()));
}

/// The run's source prepares its transaction too (a `--send` that writes, under `--atomic`):
/// a recover is given its CONN as well ([`same_as_this_run`]).
static SOURCE_PREPARES: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Notes that the run's source prepares its transaction ([`same_as_this_run`]).
pub(crate) fn source_prepares() {
    SOURCE_PREPARES.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// How a `copyman recover` after this run is given what the run had: `with the same --to`,
/// the source's CONN where it prepared too (signals45 F2: left out, its DELETE stayed
/// prepared), and the decision log when it was not the default one.
pub(crate) fn same_as_this_run() -> String {
    let source = match SOURCE_PREPARES.load(std::sync::atomic::Ordering::Relaxed) {
        true => ", one more --to of the source's CONN,",
        false => "",
    };
    match GIVEN_LOG.get() {
        Some(_) => format!("with the same --to{source} and{}", log_option()),
        None if source.is_empty() => "with the same --to".to_owned(),
        None => "with the same --to and one more of the source's CONN".to_owned(),
    }
}

/// ` --decision-log PATH` where the run was given one, else nothing: a recover without it reads
/// the default log, finds no line of the run, and leaves its transactions alone (signals43 F2).
pub(crate) fn log_option() -> String {
    GIVEN_LOG.get().map_or_else(String::new, |path| {
        format!(
            " --decision-log {}",
            crate::file_source::shell_word(&path.to_string_lossy())
        )
    })
}

use copyman_job::commit::{self, Action, DecisionLog, Failure, Recovery, recovery};
use serde_json::{Value, json};

use crate::args::Output;
use crate::conn::ServerSpec;
use crate::report::{self, Exit, Fatal};
use crate::run::{connect, describe_sync};
use crate::{progress, signals};

/// Runs `copyman recover`; the exit status.
///
/// # Errors
/// A destination that cannot be reached (exit 3); an unreadable decision log.
pub(crate) fn run(
    destinations: &[ServerSpec],
    log_path: &Path,
    dry_run: bool,
    no_decision_log: bool,
    output: Output,
) -> anyhow::Result<Exit> {
    // Without the log, "no commit decision" cannot be told from "the wrong log": nothing is
    // rolled back on a guess. A log that does not exist is refused once something of copyman's
    // is found prepared; where nothing is, there is nothing to decide (a run killed before it
    // wrote its log, or the servers clean): said so.
    let log_error = |e: &io::Error| Fatal {
        exit: Exit::Usage,
        server: None,
        message: format!(
            "decision log {}: {e}: give the --decision-log of the interrupted run (or \
             --no-decision-log if it is lost and no run recorded a commit decision)",
            log_path.display()
        ),
    };
    let mut missing = None;
    let log = if no_decision_log {
        DecisionLog::none(log_path)
    } else {
        match DecisionLog::existing(log_path) {
            Ok(log) => log,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                missing = Some(e);
                DecisionLog::none(log_path)
            }
            Err(e) => return Err(log_error(&e).into()),
        }
    };
    // A signal stops a wait for the log's lock (another process holds it): what was waiting
    // to be recorded is then not sent (recheck67 F7: it waited on for the holder, saying it
    // finished a statement in progress).
    let log = log.stopped_by(|| signals::received().is_some());
    // A directory, a file it may not read: the command's to mend (exit 2, nothing looked at),
    // not "something is pending" (exit 1, which a script retries).
    let unreadable = |e: io::Error| Fatal {
        exit: match e.kind() {
            io::ErrorKind::IsADirectory | io::ErrorKind::PermissionDenied => Exit::Usage,
            _ => Exit::CopyFailed,
        },
        server: None,
        message: format!("cannot read the decision log {}: {e}", log_path.display()),
    };
    // Its waits for the log's lock (another process holding it) said while they last.
    let _log_wait = (!no_decision_log).then(|| crate::watch::LogWait::watch(log_path));
    let contents = log.read().map_err(unreadable)?;
    crate::finish::test_pause("log-read");
    // A signal while connecting exits at once (nothing was finished); later, the statement in
    // progress finishes and nothing more is begun (a second signal exits at once, naming the
    // COMMIT PREPAREDs that were answered and those that were not).
    if let Err(e) = signals::install_with(signals::RECOVER_STOPPING) {
        report::warn(format_args!("cannot handle signals: {e}"));
    }
    // A second signal's exit at once prints its document too (it printed none).
    signals::set_json(output.json);
    signals::set_recovering(log_path);
    // What a first signal finds unanswered: said, and how it ends (signals67 F6: "finishing"
    // of a COMMIT PREPARED that waits for a standby that is not there, for ever).
    signals::set_standby_waits(unanswered);
    signals::connecting(true);
    let (committed, logged) = (&contents.committed, &contents.runs);
    let mut warned = BTreeSet::new();
    let mut lines = Vec::new();
    let mut records = Vec::new();
    let mut failed = false;
    // Something left as it was: a run in progress, or one this log does not know.
    let mut pending = false;
    // The runs whose prepared transactions were found, and every global id found.
    let mut runs = BTreeSet::new();
    let mut gids = BTreeSet::new();
    // The runs of which something found is left prepared (left alone, in another database,
    // not finished, or only listed by --dry-run).
    let mut unfinished = BTreeSet::new();
    // Each server given, as a run's decision records where its transactions are.
    let mut identities = BTreeSet::new();
    // How many servers given have each identity: more than one where clones of one server are
    // given (two servers, which a run's decision records alike).
    let mut given_times: BTreeMap<(String, String), usize> = BTreeMap::new();
    // Where each server given keeps its data, by system identifier ([`commit::server_place`]:
    // empty where not known).
    let mut given_places: BTreeMap<String, Vec<String>> = BTreeMap::new();
    // The runs whose rollback this recovery recorded in the log.
    let mut aborting = BTreeSet::new();
    // The lines of servers where nothing of copyman's is prepared.
    let mut quiet_servers = Vec::new();
    // A decided transaction someone else ended: its destination must be checked.
    let mut check = false;
    // The runs whose prepared transactions this recovery committed.
    let mut committed_runs: BTreeSet<String> = BTreeSet::new();
    // The COMMIT or ROLLBACK PREPAREDs sent so far (a test may pause before the Nth).
    let mut finishing = 0;
    let mut conns = Vec::with_capacity(destinations.len());
    // Those that could not be reached. With the decision log, the others are finished as if
    // they alone were given (what a decided run left there is committed; what is on the
    // unreachable ones is said pending, exit 1): a destination down held the reachable ones'
    // decided transactions prepared, with their locks, as long as it was down. Without the log
    // whether a run is partly committed is seen across every server: one down stops it.
    let mut unreachable = Vec::new();
    // A server that stops answering once connected is said while it keeps recover waiting
    // (recheck69 F6: silent for ever), its questions bounded by its CONN's connect_timeout.
    let _said = AskingSaid::start();
    for (i, spec) in destinations.iter().enumerate() {
        let role = format!("destination {}", i + 1);
        let mut conn = match connect(spec, &role, &mut warned)
            .and_then(|conn| first_answer(spec, &role, conn))
        {
            Ok(conn) => conn,
            Err(e) if !no_decision_log && destinations.len() > 1 => {
                let why = e.to_string();
                report::warn(format_args!(
                    "{why}: its transactions are left as they are; the other destinations are \
                     finished as the decision log says"
                ));
                // Who, and what its server said (`--json`'s `server` and `sqlstate`).
                let said = e.downcast_ref::<crate::run::Unreachable>();
                let sqlstate = said.and_then(|u| u.error.sqlstate.clone());
                unreachable.push((spec.display.clone(), why, (i, sqlstate)));
                continue;
            }
            Err(e) => return Err(e),
        };
        let _asking = Now::set(&ASKING, &format!("{role} ({})", spec.display));
        let _bound = Bounded::set(&conn, spec);
        // A standby shares its primary's identity and lists nothing it could finish: it would
        // stand for the primary, where the run's transactions wait, and say nothing is pending.
        let standby = conn
            .query(copyman_job::sql::IN_RECOVERY)
            .ok()
            .and_then(|rows| rows.into_iter().next())
            .and_then(|row| row.into_iter().next().flatten());
        if standby.as_deref() == Some("true") {
            return Err(Fatal {
                exit: Exit::Usage,
                server: None,
                message: format!(
                    "{} is a standby (in recovery): a prepared transaction can be finished only \
                     on the primary it replicates, where a run's transactions wait; give the \
                     primary instead",
                    spec.display
                ),
            }
            .into());
        }
        // Unreadable (a server before 9.6), it matches no recorded party: asked for by name.
        let identity = commit::server_identity(&mut conn).ok();
        if let Some((server, _)) = &identity {
            let place = commit::server_place(&mut conn);
            given_places.entry(server.clone()).or_default().push(place);
        }
        // One database given twice (two spellings): each transaction would be finished once
        // and then found gone (42704) on the second pass. A clone (a copied data directory, a
        // restored backup, a promoted standby: its origin's system identifier and databases) is
        // another server, as a run took it (types62 F1: the CONNs the run said to give were
        // refused): told apart by an advisory lock, as a run tells them.
        if let Some(id) = &identity
            && !identities.insert(id.clone())
        {
            let (first, clone) = conns
                .iter_mut()
                .find(
                    |(_, _, other): &&mut (&ServerSpec, _, Option<(String, String)>)| {
                        other.as_ref() == Some(id)
                    },
                )
                .map(|(first, first_conn, _)| {
                    let clone = copyman_job::identity::one_database(first_conn, &mut conn);
                    (first.display.clone(), clone == Some(false))
                })
                .unwrap_or_default();
            if clone {
                *given_times.entry(id.clone()).or_default() += 1;
                conns.push((spec, conn, identity));
                continue;
            }
            return Err(Fatal {
                exit: Exit::Usage,
                server: None,
                message: format!(
                    "{} is the database of {first} again (the same server and database, \
                     however reached): give each once",
                    spec.display
                ),
            }
            .into());
        }
        if let Some(id) = &identity {
            *given_times.entry(id.clone()).or_default() += 1;
        }
        conns.push((spec, conn, identity));
    }
    if conns.is_empty() && !unreachable.is_empty() {
        return Err(Fatal {
            exit: Exit::Connect,
            server: None,
            message: unreachable
                .iter()
                .map(|(_, why, _)| why.as_str())
                .collect::<Vec<_>>()
                .join("; "),
        }
        .into());
    }
    // Every server's prepared transactions before any is finished: whether a run may be
    // partly committed is seen across them all.
    let mut listed = Vec::with_capacity(conns.len());
    // The sessions alive on each server given (its identity, the backend): a dead run's session
    // that still lives may yet read a PREPARE it was sent.
    let mut alive: HashSet<(String, String)> = HashSet::new();
    for (spec, mut conn, identity) in conns {
        let _asking = Now::set(&ASKING, &spec.display);
        let _bound = Bounded::set(&conn, spec);
        let found = match commit::prepared(&mut conn) {
            Ok(found) => found,
            // Lost since it was reached (its server stopped answering: recheck73 F3, the
            // whole recovery ended there, exit 1, another server's decided transaction left
            // prepared): with the decision log, unreachable as one that never connected.
            Err(e) if !no_decision_log && destinations.len() > 1 => {
                let error = describe_sync(&e);
                let why = format!("{}: {error}", spec.display);
                report::warn(format_args!(
                    "{why}: its transactions are left as they are; the other destinations are \
                     finished as the decision log says"
                ));
                let i = (destinations.iter().position(|d| std::ptr::eq(d, spec))).unwrap_or(0);
                unreachable.push((spec.display.clone(), why, (i, error.sqlstate.clone())));
                continue;
            }
            Err(e) => {
                return Err(Fatal {
                    exit: Exit::CopyFailed,
                    server: None,
                    message: format!("{}: {}", spec.display, describe_sync(&e)),
                }
                .into());
            }
        };
        if let Some((server, _)) = &identity
            && let Ok(backends) = commit::live_backends(&mut conn)
        {
            alive.extend(backends.into_iter().map(|b| (server.clone(), b)));
        }
        // Another program's prepared transactions are never touched, and said: they hold locks.
        // Every one not of copyman's shape (a `copyman:manual` was left alone unsaid: atomic45
        // F4). Asked here, bounded as every question (it was asked once the waits were
        // unbounded for the COMMIT PREPAREDs: a server frozen then held recover for ever).
        let others_here: Vec<String> = conn
            .query(
                "SELECT gid FROM pg_catalog.pg_prepared_xacts \
                 WHERE database = pg_catalog.current_database() ORDER BY prepared",
            )
            .unwrap_or_default()
            .iter()
            .filter_map(|r| r.first().cloned().flatten())
            .filter(|gid| commit::parse_gid(gid).is_none())
            .collect();
        listed.push((spec, conn, identity, found, others_here));
    }
    // Runs a session still connected names by their transactions (dup65 F14), with where: a
    // session seen twice, 300 ms apart (a killed run's backends end once they read its
    // socket's end, which takes a moment).
    let mut in_sessions: BTreeMap<String, (String, String)> = BTreeMap::new();
    for look in 0..2 {
        let mut seen = BTreeMap::new();
        for (spec, conn, ..) in &mut listed {
            let _asking = Now::set(&ASKING, &spec.display);
            let _bound = Bounded::set(conn, spec);
            for (run, pid) in commit::runs_in_sessions(conn).unwrap_or_default() {
                seen.entry(run).or_insert((pid, spec.display.clone()));
            }
        }
        in_sessions = match look {
            0 => seen,
            _ => (in_sessions.into_iter())
                .filter(|(run, at)| seen.get(run) == Some(at))
                .collect(),
        };
        if in_sessions.is_empty() {
            break;
        }
        if look == 0 {
            thread::sleep(Duration::from_millis(300));
        }
    }
    signals::connecting(false);
    drop(_said);
    // Its COMMIT and ROLLBACK PREPAREDs are waited for whatever comes: only their answers say
    // what they did.
    for (_, conn, ..) in &mut listed {
        let _ = conn.set_timeout(None);
    }
    let every: Vec<&commit::Prepared> = listed.iter().flat_map(|l| &l.3).collect();
    // What each server given holds prepared, in any of its databases (`pg_prepared_xacts` is
    // the cluster's): a run's transaction that is not there, on its server, is prepared
    // nowhere, whatever database was given (its own may be gone: a database that holds a
    // prepared transaction cannot be dropped).
    let seen_servers: BTreeSet<String> = (listed.iter())
        .filter_map(|l| Some(l.2.as_ref()?.0.clone()))
        .collect();
    let on_server: BTreeSet<(String, String)> = (listed.iter())
        .filter_map(|l| Some((l.2.as_ref()?.0.clone(), &l.3)))
        .flat_map(|(server, found)| found.iter().map(move |p| (server.clone(), p.gid.clone())))
        .collect();
    // Those found in the database of a CONN given: finished there, whatever else sees them (a
    // server that cannot say who it is was not known for the same as another CONN's, and its
    // other databases' transactions were asked for again: exit 1 after finishing them all).
    let given_here: BTreeSet<String> = (listed.iter())
        .flat_map(|l| l.3.iter().filter(|p| p.here).map(|p| p.gid.clone()))
        .collect();
    let split = partly_ended(&every, &contents, no_decision_log, &log);
    // Every server's, before any is finished: an exit at once names those not reached yet as
    // still prepared (recheck68 F5: only the server under way's were), each as what its COMMIT
    // or ROLLBACK PREPARED is sent as.
    for (spec, _, _, found, _) in &listed {
        signals::recovery_found((found.iter()).map(|p| {
            (
                format!("{} on {}", p.gid, spec.display),
                spec.display.clone(),
            )
        }));
    }
    for (spec, mut conn, identity, found, others_here) in listed {
        // A prepared transaction can be finished only from its own database: one in another
        // database of this server is that database's CONN's, if it was given too; one of a run
        // still in progress is not a crash's leftover.
        let (found, elsewhere): (Vec<_>, Vec<_>) = found.into_iter().partition(|p| p.here);
        let elsewhere = elsewhere.into_iter().filter(|p| {
            !given_here.contains(&p.gid)
                && !identity.as_ref().is_some_and(|(server, _)| {
                    identities.contains(&(server.clone(), p.database.clone()))
                })
        });
        // A run still in progress holds them, prepared, with their locks; else they wait for a
        // CONN of their database.
        let (live, elsewhere): (Vec<_>, Vec<_>) =
            elsewhere.partition(|p| log.run_in_progress(&p.run));
        // Those of runs this log knows are its business; another log's runs are only named.
        let (elsewhere, others): (Vec<_>, Vec<_>) = elsewhere
            .into_iter()
            .partition(|p| no_decision_log || logged.contains(&p.run));
        if !others.is_empty() {
            lines.push(format!(
                "{}: {} more in other databases of this server ({}), of runs the decision log {} \
                 does not know: give a CONN for each with its run's --decision-log",
                spec.shown(),
                others.len(),
                databases(&others),
                log_path.display()
            ));
        }
        for (group, in_progress) in [(&live, true), (&elsewhere, false)] {
            if group.is_empty() {
                continue;
            }
            // Left prepared, holding their locks.
            pending = true;
            let said = if in_progress {
                ", of a run still in progress: left alone"
            } else {
                ": give a CONN for each"
            };
            lines.push(format!(
                "{}: {} more in other databases of this server ({}){said}",
                spec.shown(),
                group.len(),
                databases(group)
            ));
            for p in group {
                runs.insert(p.run.clone());
                gids.insert(p.gid.clone());
                unfinished.insert(p.run.clone());
                records.push(json!({
                    "destination": spec.display,
                    "gid": p.gid,
                    "run": p.run,
                    "database": p.database,
                    "age_secs": p.age_secs,
                    "outcome": if in_progress {
                        format!(
                            "left alone: its run is still in progress (in database {})",
                            p.database
                        )
                    } else {
                        format!(
                            "left alone: it is in database {}: give a CONN of that database",
                            p.database
                        )
                    },
                    "error": Value::Null,
                }));
            }
        }
        if found.is_empty() && elsewhere.is_empty() && others.is_empty() && live.is_empty() {
            // "Nothing pending" only if the whole recovery ends so (below).
            quiet_servers.push(lines.len());
            lines.push(format!("{}: nothing pending", spec.shown()));
        }
        if !others_here.is_empty() {
            let gids = others_here;
            lines.push(format!(
                "{}: {} prepared transaction{} not copyman's, left alone ({})",
                spec.shown(),
                gids.len(),
                if gids.len() == 1 { "" } else { "s" },
                gids.join(", ")
            ));
        }
        for p in &found {
            runs.insert(p.run.clone());
            gids.insert(p.gid.clone());
        }
        for p in found {
            let age = format!("prepared {} s ago", p.age_secs);
            let (done, error) = if let Some(signal) = signals::received() {
                pending = true;
                unfinished.insert(p.run.clone());
                (
                    format!("left alone: interrupted by {}", signals::name(signal)),
                    None,
                )
            } else if log.run_in_progress(&p.run) {
                pending = true;
                unfinished.insert(p.run.clone());
                ("left alone: its run is still in progress".to_owned(), None)
            } else if let Some(pid) = (!committed.contains(&p.gid))
                .then(|| commit::live_run(&p.run))
                .flatten()
            {
                // Not decided commit, where the run's lock cannot be seen (no log, or a copy of
                // it taken before its decision: no lock beside it): a copyman process of the
                // run's id alive on this host may be that run, which may yet decide commit. A
                // rollback now would split it (its COMMIT PREPAREDs find some gone).
                pending = true;
                unfinished.insert(p.run.clone());
                (
                    format!(
                        "left alone: its run may still be in progress (copyman process {pid}, \
                         which its id names, is running on this host): wait for it to end"
                    ),
                    None,
                )
            } else if let Some((pid, server)) = (!committed.contains(&p.gid))
                .then(|| in_sessions.get(&p.run))
                .flatten()
            {
                // Not decided commit, and a session still connected names the run's
                // transaction in its last statement: the run (on this host or another, with
                // another decision log) may yet decide commit; a rollback now would split it.
                pending = true;
                unfinished.insert(p.run.clone());
                (
                    format!(
                        "left alone: its run may still be in progress, here or on another host: \
                         a session still connected (backend {pid} on {server}) names its \
                         transaction in its last statement; wait for the run to end (or, if it is \
                         dead, end that session: SELECT pg_terminate_backend({pid}) on that \
                         server), then run copyman recover again"
                    ),
                    None,
                )
            } else if contents.contradicts(&p.gid) {
                pending = true;
                unfinished.insert(p.run.clone());
                (
                    format!(
                        "left alone: run {} decided commit, and its decision in {} does not name \
                         this transaction, which the log names as one of the run's, nor says it \
                         was left out: the log contradicts itself (edited, or two merged), so \
                         neither its commit nor a rollback can be taken from it; check what the \
                         run's other destinations hold, then COMMIT PREPARED or ROLLBACK \
                         PREPARED it by hand",
                        p.run,
                        log_path.display()
                    ),
                    None,
                )
            } else if split.contains_key(&p.run) {
                // Presumed abort could split the run: said below, with what to check.
                pending = true;
                unfinished.insert(p.run.clone());
                (
                    format!(
                        "left alone: run {} may be partly committed (see below)",
                        p.run
                    ),
                    None,
                )
            } else {
                // --no-decision-log: the user says the log is lost, and no run decided commit.
                // (Without a log, only the command's own run ids: commit68 F7.)
                let action = recovery(
                    &p.gid,
                    |gid| committed.contains(gid),
                    |run| {
                        (no_decision_log && DecisionLog::is_commands_run_id(run))
                            || logged.contains(run)
                    },
                );
                let (finish, word) = match action {
                    Recovery::Commit => (Action::CommitPrepared(p.gid.clone()), "committed"),
                    Recovery::Rollback => (Action::RollbackPrepared(p.gid.clone()), "rolled back"),
                    Recovery::UnknownRun => {
                        pending = true;
                        unfinished.insert(p.run.clone());
                        let line = match no_decision_log {
                            true => format!(
                                "{}: {} ({age}): left alone: run {} is no id a copyman command \
                                 makes (SECONDS-PID-HEX): another program's transaction named as \
                                 copyman's, or a run of copyman's library; give its run's \
                                 --decision-log, or end it by hand if it is to go (ROLLBACK \
                                 PREPARED '{}')",
                                spec.shown(),
                                p.gid,
                                p.run,
                                p.gid
                            ),
                            false => format!(
                                "{}: {} ({age}): left alone: the decision log {} has no line of \
                                 run {}, so it is not that run's log and cannot say whether it \
                                 decided commit: give the run's --decision-log{}",
                                spec.shown(),
                                p.gid,
                                log_path.display(),
                                p.run,
                                match DecisionLog::is_commands_run_id(&p.run) {
                                    true =>
                                        " (a run of an older copyman recorded no start: \
                                             --no-decision-log rolls it back, if no commit was \
                                             decided)",
                                    false => "",
                                }
                            ),
                        };
                        lines.push(line);
                        records.push(json!({
                            "destination": spec.display,
                            "gid": p.gid,
                            "run": p.run,
                            "database": p.database,
                            "age_secs": p.age_secs,
                            "outcome": "left alone: its run is not in the decision log",
                            "error": Value::Null,
                        }));
                        continue;
                    }
                    _ => continue,
                };
                // A run rolled back is recorded so first (once): a later recovery that finds
                // the rest of it, elsewhere, rolls that back too rather than suspect a split.
                let unrecorded = if dry_run
                    || no_decision_log
                    || action != Recovery::Rollback
                    || !aborting.insert(p.run.clone())
                {
                    None
                } else {
                    log.aborted(&p.run).err()
                };
                if dry_run {
                    // Still pending: a script asking "is anything pending?" reads exit 1.
                    pending = true;
                    unfinished.insert(p.run.clone());
                    // What the crash since its PREPARE took is said before (commit55 F4).
                    let suspect = (action == Recovery::Commit)
                        .then(|| commit::crash_suspect(&mut conn, &p.gid))
                        .flatten();
                    match suspect {
                        Some(suspect) => (
                            format!(
                                "would be {word}, but its server's statistics were reset since \
                                 it was prepared, as crash recovery resets them, which empties \
                                 UNLOGGED tables: {} may hold none of its rows (said once \
                                 committed)",
                                suspect.unlogged_names
                            ),
                            None,
                        ),
                        None => (format!("would be {word}"), None),
                    }
                } else if let Some(signal) = (action == Recovery::Commit && !no_decision_log)
                    .then(|| {
                        // As a run does: a later recovery that finds it gone knows copyman sent
                        // it (best effort: unrecorded, that recovery says to check the server).
                        // A signal while this waited for the log's lock (another process held
                        // it) stops here: nothing of it was sent (signals67 F12: its COMMIT
                        // PREPARED went out after the signal, the run left split).
                        let _ = log.recovery_committing(&p.run, &p.gid);
                        signals::received()
                    })
                    .flatten()
                {
                    pending = true;
                    unfinished.insert(p.run.clone());
                    (
                        format!(
                            "left alone: interrupted by {} while the decision log's lock was \
                             waited for: nothing of it was sent",
                            signals::name(signal)
                        ),
                        None,
                    )
                } else if let Some(e) = unrecorded {
                    failed = true;
                    unfinished.insert(p.run.clone());
                    aborting.remove(&p.run);
                    let e = report::ErrorInfo {
                        sqlstate: None,
                        message: format!(
                            "cannot record in the decision log {} that run {} is rolled back: {e}",
                            log_path.display(),
                            p.run
                        ),
                    };
                    (format!("could not be {word}: {}", e.message), Some(e))
                } else {
                    let sql = finish.sql();
                    report::log(format_args!("{}: {sql}", spec.display));
                    let what = format!("{}'s {sql}", spec.display);
                    let commits = action == Recovery::Commit;
                    let party = format!("{} on {}", p.gid, spec.display);
                    if commits {
                        signals::commit_sent(&party);
                    } else {
                        signals::rollback_prepared_sent(&party);
                    }
                    finishing += 1;
                    crate::finish::test_pause(&format!("finishing:{finishing}"));
                    // As a run finishes it: its session lost (a server restarted), sent again on
                    // a new one; a COMMIT PREPARED the server said it committed before it closed
                    // the connection (a wait for a synchronous standby cut short) is committed.
                    // Asked first: its locks name the tables it wrote.
                    let suspect = commits
                        .then(|| commit::crash_suspect(&mut conn, &p.gid))
                        .flatten();
                    // A ROLLBACK PREPARED waiting for a synchronous standby is cancelled: rolled
                    // back there already, only the standby's word is waited for, as a run
                    // cancels it (recheck70 F11: recover waited for ever, holding its locks);
                    // a COMMIT PREPARED, committed there already, after 10 s (conn72 F1).
                    let _standby = match commits {
                        true => crate::finish::StandbyWait::watch_commit(
                            (*spec).clone(),
                            &p.gid,
                            &spec.display,
                        ),
                        false => crate::finish::StandbyWait::watch(
                            (*spec).clone(),
                            &p.gid,
                            &spec.display,
                        ),
                    };
                    let result = said_while_waiting(&what, !commits, || {
                        commit::run_on_a_live_session(&mut conn, &finish, &|| spec.connect())
                    });
                    let result = commit::CrashSuspect::judge(suspect, &mut conn, result);
                    // Answered with an error, it does not run there: a later recovery that
                    // finds it busy is not told this one's commit runs (best effort).
                    if commits && !no_decision_log && matches!(result, Err(Failure::Refused(_))) {
                        let _ = log.refused(&p.run, &p.gid);
                    }
                    // What the server said meanwhile (that WARNING, a trigger's NOTICE).
                    for notice in conn.take_notices() {
                        progress::println(
                            &report::Notice {
                                endpoint: spec.display.clone(),
                                notice,
                                times: 1,
                            }
                            .to_string(),
                        );
                    }
                    match result {
                        Ok(()) => {
                            if commits {
                                signals::committed(&party);
                                committed_runs.insert(p.run.clone());
                            } else {
                                signals::rolled_back_prepared(&party);
                            }
                            // Best effort: unrecorded, a later recovery asks for its server.
                            if !no_decision_log {
                                let _ = log.ended(&p.run, &p.gid);
                            }
                            (word.to_owned(), None)
                        }
                        // Committed as decided, without rows a crash since its PREPARE took
                        // (UNLOGGED tables it wrote emptied, or not to be told): failed. Not to
                        // be finished again: its words say what to copy again.
                        Err(Failure::Emptied(e)) => {
                            failed = true;
                            signals::committed(&party);
                            committed_runs.insert(p.run.clone());
                            if !no_decision_log {
                                let _ = log.ended(&p.run, &p.gid);
                            }
                            let e = describe_sync(&e);
                            (e.message.clone(), Some(e))
                        }
                        // Sent and not answered, and not to be told on a new session.
                        Err(Failure::Lost(e)) => {
                            failed = true;
                            unfinished.insert(p.run.clone());
                            let e = describe_sync(&e);
                            (
                                format!(
                                    "{sql} sent, not answered ({}): it may have {word}: run \
                                     copyman recover again once the server answers (it says \
                                     nothing pending then, or finishes it)",
                                    e.message
                                ),
                                Some(e),
                            )
                        }
                        // Gone (42704) since it was listed, and the log says a recovery ended it:
                        // another recovery running at once finished it (two operators, a cron
                        // job and a human) — asked for a moment, as that one records it just
                        // after its statement's answer (recheck66 F12: "could not be committed"
                        // of a transaction the other had just committed).
                        Err(Failure::Refused(e))
                            if e.code() == Some("42704")
                                && !no_decision_log
                                && (0..20).any(|tried| {
                                    if tried > 0 {
                                        thread::sleep(Duration::from_millis(100));
                                    }
                                    log.read().is_ok_and(|now| now.ended.contains(&p.gid))
                                }) =>
                        {
                            (
                                "finished meanwhile by another recovery (the decision log \
                                 records that it ended it)"
                                    .to_owned(),
                                None,
                            )
                        }
                        // Gone (42704) since it was listed, and its run had sent its COMMIT
                        // PREPARED (`committing`, read before this recovery wrote its own):
                        // the server ran the dead run's statement just before this one.
                        // Committed, not "could not be committed".
                        Err(Failure::Refused(e))
                            if e.code() == Some("42704")
                                && !no_decision_log
                                && word == "committed"
                                && contents.commit_sent(&p.gid) =>
                        {
                            let _ = log.ended(&p.run, &p.gid);
                            let by = if contents.committing.contains(&p.gid) {
                                "its run"
                            } else {
                                "an earlier copyman recover"
                            };
                            (
                                format!(
                                    "committed meanwhile by {by} (the decision log records \
                                     that it sent its COMMIT PREPARED, which its server ran \
                                     just before this recovery's)"
                                ),
                                None,
                            )
                        }
                        // Busy (55000): another session is finishing it right now — the dead
                        // run's own COMMIT PREPARED where it had sent one (`committing`), still
                        // running on its server (a synchronous standby's wait, a slow flush).
                        // Not "could not be committed": it commits as decided when that ends.
                        Err(Failure::Refused(e)) if e.code() == Some("55000") => {
                            failed = true;
                            unfinished.insert(p.run.clone());
                            let e = describe_sync(&e);
                            let by = if word == "committed" && contents.committing.contains(&p.gid)
                            {
                                "being committed by its run's own COMMIT PREPARED, which its \
                                 server is still running (a wait for a synchronous standby, a \
                                 slow flush): it commits as decided once that ends"
                            } else if word == "committed"
                                && contents.recovery_committing.contains(&p.gid)
                            {
                                // Sent by a recovery killed or still waiting, not the run
                                // (signals43 F3: it was said to be the run's).
                                "being committed by an earlier copyman recover's COMMIT \
                                 PREPARED, which its server is still running (a wait for a \
                                 synchronous standby, a slow flush): it commits as decided once \
                                 that ends"
                            } else {
                                "in use by another session right now (its PREPARE \
                                 TRANSACTION still running there, a wait for a synchronous \
                                 standby or a slow flush, or another recovery finishing it)"
                            };
                            (
                                format!(
                                    "{by} ({}); run copyman recover again to confirm",
                                    e.message
                                ),
                                Some(e),
                            )
                        }
                        Err(Failure::Refused(e)) => {
                            failed = true;
                            unfinished.insert(p.run.clone());
                            let mut e = describe_sync(&e);
                            // Only the role that prepared it, or a superuser, may finish it.
                            if e.sqlstate.as_deref() == Some("42501") {
                                e.message = format!(
                                    "{}; it was prepared by role {}: recover as that role (a \
                                     CONN with options='-c role={}' where this role is a \
                                     member of it) or as a superuser",
                                    e.message, p.owner, p.owner
                                );
                            }
                            (format!("could not be {word}: {e}"), Some(e))
                        }
                    }
                }
            };
            lines.push(format!("{}: {} ({age}): {done}", spec.shown(), p.gid));
            records.push(json!({
                "destination": spec.display,
                "gid": p.gid,
                "run": p.run,
                "database": p.database,
                "age_secs": p.age_secs,
                "outcome": done,
                "error": error.as_ref().map(report::error_json),
            }));
        }
    }
    // A run that died after its decision, whose source wrote and could not prepare: the run
    // was to commit the source after the destinations, and may not have. Said once (recorded
    // `told`), whether this recovery committed the run's transactions or the run had.
    let mut unprepared: Vec<(&String, &String)> = contents
        .unprepared
        .iter()
        .filter(|(run, _)| {
            (contents.holders.contains_key(*run) || committed_runs.contains(*run))
                && !contents.done.contains(*run)
                && !contents.told.contains(*run)
                && !log.run_in_progress(run)
        })
        .collect();
    unprepared.sort();
    for (run, source) in unprepared {
        check = true;
        if !dry_run && !no_decision_log {
            let _ = log.told_source(run);
        }
        lines.push(format!(
            "run {run}: its source {source} wrote (a move's DELETE, an UPDATE … RETURNING) \
             and could not prepare, so the run was to commit it after the destinations: it \
             died first, and unless its COMMIT went out, the source's changes rolled back — \
             the rows it returned are then on the source as on the destinations: check the \
             source before moving them again"
        ));
    }
    for (run, (missing, present)) in &split {
        // One or several, said as such (commit64 F4: "…:1, …:2 of it is prepared").
        let several = |list: &[String], one: &'static str, more: &'static str| match list.len() {
            1 => one,
            _ => more,
        };
        let (is, are) = (several(missing, "is", "are"), several(present, "is", "are"));
        let (that_one, their) = (
            several(missing, "that one", "those"),
            several(missing, "its destination holds", "their destinations hold"),
        );
        let (missing, present) = (gids_said(missing), gids_said(present));
        if no_decision_log {
            lines.push(format!(
                "run {run}: left alone: {missing} of it {is} prepared on none of the servers \
                 given while {present} {are}: prepared first, {that_one} ended since — \
                 committed, if the run decided commit (rolling back the rest would split the \
                 run), or rolled back — or on a server not given. Without the run's decision \
                 log this cannot be told: give it (--decision-log), or check whether \
                 {their} the run's rows, then end each of the rest with COMMIT \
                 PREPARED if so, ROLLBACK PREPARED if not, in its database"
            ));
            continue;
        }
        lines.push(format!(
            "run {run}: left alone: the decision log {} holds its start and no decision, yet \
             {missing} of it {is} prepared on none of the servers given while {present} {are}: \
             prepared, {that_one} ended since (committed, if the run decided commit in a \
             later copy of the log: rolling back the rest would split the run; or rolled back), \
             or on a server not given. Check that this is the run's latest decision log \
             (one with a line `commit {run}` commits the rest) and give every server the run \
             copied to; only if the run certainly decided no commit, end each with ROLLBACK \
             PREPARED in its database",
            log_path.display()
        ));
    }
    // Every run not recorded as finished whose parties the log names — decided commit (the
    // decision's), or dead before a decision (those it named at its start): each of its
    // transactions must be accounted for by a server given (found prepared there, or gone from a
    // server given: committed, rolled back or never prepared). One on a server not given (a
    // --send source prepared with the destinations, `copyman:RUN:0`; a destination left out)
    // may still hold its changes and its locks: say which, and exit 1, never "nothing pending".
    let mut named: Vec<(&String, &Vec<commit::Holder>, bool)> = contents
        .holders
        .iter()
        .map(|(run, holders)| (run, holders, true))
        .chain(
            contents
                .begun
                .iter()
                .map(|(run, holders)| (run, holders, false)),
        )
        .filter(|(run, _, _)| !contents.done.contains(*run))
        .collect();
    named.sort_by_key(|(run, _, _)| *run);
    // The log as it is now, after the servers were listed: another recovery at work meanwhile
    // records its COMMIT PREPARED before sending it, so a transaction gone from the servers
    // since this one read the log is there (dup65 F9: two recoveries at once, one said the
    // other's commit "may lack the run's rows", exit 1).
    let latest = log.read().ok();
    let commit_sent = |gid: &str| {
        contents.commit_sent(gid) || latest.as_ref().is_some_and(|l| l.commit_sent(gid))
    };
    let ended = |gid: &str| {
        contents.ended.contains(gid) || latest.as_ref().is_some_and(|l| l.ended.contains(gid))
    };
    for (run, holders, decided) in named {
        if log.run_in_progress(run) {
            continue;
        }
        // Prepared on a server given neither before nor now, and the dead run's session that was
        // to prepare it still lives there: a PREPARE it has not read yet (a frozen backend, a
        // lost network path) may prepare it once this recovery is over, holding its locks. Not
        // finished: said, with the way out.
        let open: Vec<&commit::Holder> = holders
            .iter()
            .filter(|h| {
                !gids.contains(&h.gid)
                    && !contents.ended.contains(&h.gid)
                    && !contents.commit_sent(&h.gid)
                    && !h.backend.is_empty()
                    && alive.contains(&(h.server.clone(), h.backend.clone()))
            })
            .collect();
        if !open.is_empty() {
            pending = true;
            for h in open {
                let pid = h.backend.split(' ').next().unwrap_or_default();
                let what = format!(
                    "{} ({}, database {}) is not prepared, but the session of its run that was to \
                     prepare it, backend {pid}, is still open there: a PREPARE it has not read yet \
                     (a frozen backend, a lost network path) may still prepare it; end that \
                     session (SELECT pg_terminate_backend({pid}) on that server), then run \
                     copyman recover again",
                    h.gid,
                    the_runs(&h.display),
                    h.database
                );
                lines.push(what.clone());
                records.push(holder_record(h, run, what));
            }
            continue;
        }
        // Decided commit, on a server given, prepared there no more, after its run (or a
        // recovery) sent its COMMIT PREPARED: committed. Recorded as ended, so that a recovery of
        // the other servers alone does not ask for this one again. A server given through any
        // of its databases tells (it lists the prepared transactions of all): "not on the
        // servers given", exit 1 for ever, was said of one given through another (commit44 F2).
        // Parties of the run on clones of one server (one system identifier and database,
        // reached at other places) where fewer servers of that identity are given: a party's
        // transaction that the one given does not list may be prepared on the other. Not
        // "prepared there no more", nor settled (types62 F1: a clone's transaction left
        // prepared, exit 0).
        let twin = |h: &commit::Holder| {
            let mut places: Vec<&str> = (holders.iter())
                .filter(|o| !h.server.is_empty() && o.server == h.server)
                .filter(|o| o.database == h.database)
                .map(|o| place(&o.display))
                .collect();
            places.sort_unstable();
            places.dedup();
            let given = given_times.get(&(h.server.clone(), h.database.clone()));
            places.len() > 1 && places.len() > given.copied().unwrap_or(0)
        };
        let given = |h: &commit::Holder| {
            !h.server.is_empty() && seen_servers.contains(&h.server) && !twin(h)
        };
        // A party whose server is given only as copies of it (its identity, its data kept
        // elsewhere: a clone made after the run, a restored backup): its transaction, found and
        // finished there, may still be prepared on the run's own server (recheck63 F4: exit 0,
        // "committed", while the origin held it with its locks).
        let copied = |h: &commit::Holder| {
            !h.place.is_empty()
                && (given_places.get(&h.server))
                    .is_some_and(|places| places.iter().all(|p| !p.is_empty() && *p != h.place))
        };
        if !dry_run {
            for h in holders.iter().filter(|h| {
                decided
                    && !gids.contains(&h.gid)
                    && !ended(&h.gid)
                    && commit_sent(&h.gid)
                    && given(h)
            }) {
                let _ = log.ended(run, &h.gid);
                // The one a run said was sent and not answered: settled in words (signals65
                // F2: "nothing pending" was all a DBA told to run recover heard of it).
                let what = "committed: a COMMIT PREPARED of it went out (the run decided \
                            commit; sent by the run or a recovery, as the log records) and it is \
                            prepared there no more";
                lines.push(format!(
                    "{} ({}, database {}): {what}",
                    h.gid,
                    the_runs(&h.display),
                    h.database
                ));
                records.push(holder_record(h, run, what.to_owned()));
            }
        }
        // Decided commit, on a server given, prepared there no more, and neither did its run
        // send its COMMIT PREPARED nor a recovery end it (each records so): someone else ended
        // it — a ROLLBACK PREPARED by hand, a failover to a standby that never received it. Its
        // rows may not be there.
        let vanished = holders.iter().filter(|h| {
            decided
                && !gids.contains(&h.gid)
                && !ended(&h.gid)
                && !commit_sent(&h.gid)
                && !contents.out.contains(&h.gid)
                && given(h)
        });
        // Said once: recorded as ended, which a later recover reads — or said that it could not
        // be (commit68 F1: "recorded now" of a log on a full or read-only file system, and the
        // same said by every recover after).
        let said_once = |gid: &str, dry: &'static str, done: &'static str| match dry_run {
            true => dry.to_owned(),
            false => match log.ended(run, gid) {
                Ok(()) => done.to_owned(),
                Err(e) => format!(
                    "it could not be recorded in the decision log ({e}): the next recover \
                     says this again"
                ),
            },
        };
        for h in vanished {
            check = true;
            let once = said_once(
                &h.gid,
                "a recover without --dry-run records it as ended: said once",
                "said once: it is recorded as ended now",
            );
            let what = format!(
                "{} ({}, database {}) was decided commit, but it is prepared there no more, and \
                 the log records no COMMIT PREPARED of it, by its run or a recovery: another \
                 session committed or rolled it back (a ROLLBACK PREPARED by hand, a failover to \
                 a standby that never received it), or its run committed it and could not record \
                 so (it said that its decision log could not record it), so that destination may \
                 lack the run's rows: check what it holds ({})",
                h.gid,
                the_runs(&h.display),
                h.database,
                // (A dry run records nothing: it said "recorded now" every time, atomic45 F1.)
                once
            );
            lines.push(what.clone());
            records.push(holder_record(h, run, what));
        }
        // Left out of a run decided commit (under keep-going, it failed before its PREPARE, or
        // at it: a PREPARE whose answer was lost, commit50 F1): it holds none of the run's rows,
        // which the others committed. Said once (recorded as ended), exit 1 (commit48 F3:
        // "nothing pending" there, exit 0).
        let left = (contents.left.get(run.as_str()).into_iter().flatten())
            .filter(|h| decided && !contents.ended.contains(&h.gid));
        for h in left {
            check = true;
            let once = said_once(
                &h.gid,
                "a recover without --dry-run records it as said: said once",
                "said once: recorded now",
            );
            let what = format!(
                "{} ({}, database {}) was left out of run {run}, which decided commit: it failed \
                 before its PREPARE, or at it (a transaction it left prepared is rolled back), \
                 and holds none of the run's rows, which the others committed: copy to it again \
                 ({})",
                h.gid,
                the_runs(&h.display),
                h.database,
                once
            );
            lines.push(what.clone());
            records.push(holder_record(h, run, what));
        }
        // Not decided commit, its server given (through any database) and prepared there in
        // none, its run gone: nothing of it is left to roll back (its database dropped since,
        // or it never prepared). A recover given that server said "give its CONN too" for ever.
        // Decided commit, its server given through another database: committed or said to
        // check, above.
        let settled = |h: &commit::Holder| {
            given(h)
                && !on_server.contains(&(h.server.clone(), h.gid.clone()))
                && (decided || commit::live_run(run).is_none())
        };
        let missing: Vec<&commit::Holder> = holders
            .iter()
            .filter(|h| {
                let elsewhere = !gids.contains(&h.gid)
                    && !contents.ended.contains(&h.gid)
                    && (h.server.is_empty()
                        || twin(h)
                        || !identities.contains(&(h.server.clone(), h.database.clone())))
                    && !settled(h);
                !contents.out.contains(&h.gid) && (elsewhere || copied(h))
            })
            .collect();
        if missing.is_empty() {
            // Nothing of the run is left anywhere: later recoveries need not ask for it.
            if !dry_run && !unfinished.contains(run) {
                let _ = log.finished(run);
            }
            continue;
        }
        pending = true;
        let (state, then) = if decided {
            ("was decided commit", "committed")
        } else {
            (
                "may still be prepared (its run recorded no commit decision)",
                "rolled back",
            )
        };
        for h in missing {
            let reached_not = unreachable
                .iter()
                .find(|(d, ..)| same_server(&h.display, d));
            let what = if copied(h) && !twin(h) {
                let places = given_places.get(&h.server).cloned().unwrap_or_default();
                format!(
                    "{} ({}, database {}) {state}, and the servers given that hold its run's \
                     server's identity are copies of it (their data directory {}, not {}: a \
                     clone, a restored backup), where this recovery finished what they hold: \
                     the run's own server may still hold it prepared, with its locks, until it \
                     is {then}: give its CONN too (were its data directory moved, nothing is \
                     left of it)",
                    h.gid,
                    the_runs(&h.display),
                    h.database,
                    places.join(", "),
                    h.place
                )
            } else if commit::parse_gid(&h.gid)
                .is_some_and(|(_, party)| party == commit::Party::Source)
            {
                format!(
                    "the source's transaction {} {state}: give the source's CONN too (it stays \
                     prepared, holding its changes and locks, until it is {then})",
                    h.gid
                )
            } else if reached_not.is_some() {
                format!(
                    "{} ({}, database {}) {state} and waits on a destination that could not be \
                     reached: copyman recover given it once it can be reached finishes it",
                    h.gid,
                    the_runs(&h.display),
                    h.database
                )
            } else {
                // Undecided, any database of its server settles it (gone, said so).
                let any = match decided {
                    true => "",
                    false => {
                        " (any database of its server will do, should its own be gone: a \
                         server lists its prepared transactions of every database)"
                    }
                };
                // Its server's clone given instead: which holds it cannot be told.
                let clone = match twin(h) {
                    true => {
                        " (its run copied to clones of one server, which copyman tells apart \
                         only by the transactions each lists: none given lists it)"
                    }
                    false => "",
                };
                // A server given that could not be reached may be it, under another address
                // (recheck73 F3, recheck74 F3: "not on the servers given" of one given).
                let where_not = match unreachable.is_empty() {
                    true => format!("is not on the servers given{clone}: give its CONN too"),
                    false => format!(
                        "is on none of the servers reached{clone}: it may be on one given that \
                         could not be reached ({}: copyman recover given it once it can be \
                         reached finishes it), else give its CONN too",
                        (unreachable.iter())
                            .map(|(display, ..)| display.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                format!(
                    "{} ({}, database {}) {state} and {where_not}{any}",
                    h.gid,
                    the_runs(&h.display),
                    h.database
                )
            };
            lines.push(what.clone());
            records.push(json!({
                "destination": Value::Null,
                "gid": h.gid,
                "run": run,
                "database": h.database,
                "server": h.display,
                "age_secs": Value::Null,
                // One given that could not be reached is not one left out (atomic45 F3).
                "outcome": match reached_not {
                    Some(_) => format!("not reached: {what}"),
                    None if !unreachable.is_empty() => format!("not on the servers reached: {what}"),
                    None => format!("not on the servers given: {what}"),
                },
                "error": reached_not.map(|(_, why, _)| why.clone()),
            }));
        }
    }
    // A run whose decision did not record its parties (an older copyman's):
    // its source's transaction, if the decision names one, is known only by its global id.
    for run in runs.iter().filter(|r| !contents.holders.contains_key(*r)) {
        let source = commit::Commit::<()>::source_gid(run);
        if committed.contains(&source) && !gids.contains(&source) {
            pending = true;
            lines.push(format!(
                "the source's transaction {source} was decided commit: give the source's CONN \
                 too (unless the source already committed it: its run did not record where \
                 each transaction is)"
            ));
        }
    }
    if let Some(e) = &missing
        && !runs.is_empty()
    {
        return Err(log_error(e).into());
    }
    for (_, why, _) in &unreachable {
        pending = true;
        lines.push(format!(
            "{why}: whatever a run left prepared there is left as it is: copyman recover \
             given it once it can be reached finishes it"
        ));
    }
    // A signal stops it after the statement under way: what it left unfinished is pending, and
    // the exit says what is left, as without one (a script alerts on 1, not on the signal).
    let exit = if failed || pending || check {
        Exit::CopyFailed
    } else {
        Exit::Success
    };
    if missing.is_some() {
        // (Not of one it could not reach: recheck45 F4.2.)
        lines.push(format!(
            "the decision log {} does not exist: no run wrote it, and nothing of copyman's is \
             prepared on the servers {}",
            log_path.display(),
            if unreachable.is_empty() {
                "given"
            } else {
                "reached"
            }
        ));
    }
    // Something is left: a server with nothing prepared is not "nothing pending".
    if failed || pending || check {
        for &i in &quiet_servers {
            if let Some(line) = lines.get_mut(i)
                && let Some(server) = line.strip_suffix(": nothing pending")
            {
                *line = format!("{server}: nothing of copyman's prepared here");
            }
        }
    }
    if output.json {
        // Why it did not exit 0, whenever it did not, in the words said: a record's error, else
        // what is left (a script reads `.error` of every document alike).
        let failed_record =
            (records.iter()).find_map(|r| r["error"]["message"].as_str().map(str::to_owned));
        let left = || {
            let said: Vec<&str> = (lines.iter().map(String::as_str))
                .filter(|l| {
                    !l.ends_with(": nothing pending")
                        && !l.ends_with(": nothing of copyman's prepared here")
                })
                .collect();
            // Not what this recovery finished (committed, rolled back): what is left (it listed
            // the transactions it had just committed as "left pending", the one line to act on
            // last: cli40 F1).
            let finished = |l: &&str| {
                ["): committed", "): rolled back", "): finished meanwhile"]
                    .iter()
                    .any(|done| l.contains(done))
            };
            let unfinished: Vec<&str> = said.iter().copied().filter(|l| !finished(l)).collect();
            let said = if unfinished.is_empty() {
                said
            } else {
                unfinished
            };
            let what = if pending { "left pending" } else { "to check" };
            format!("something is {what}: {}", said.join("; "))
        };
        let error = (exit != Exit::Success).then(|| failed_record.unwrap_or_else(left));
        // A destination that could not be reached, where nothing else failed: who and what
        // its server said (they were only in `warnings`' words).
        let down = (exit != Exit::Success && !failed)
            .then(|| unreachable.first())
            .flatten();
        let records: Vec<Value> = (records.into_iter())
            .map(|r| one_shape(r, destinations))
            .collect();
        // Else the record whose error it is: its server and endpoint too (they were null for a
        // transaction refused as busy, 55000: ops54 F2).
        let failing = (records.iter()).find(|r| r["error"]["message"].is_string());
        let of_failing = |key: &str| failing.map_or(Value::Null, |r| r[key].clone());
        let value: Value = json!({
            "error": error,
            "server": match down {
                Some((_, _, (i, _))) => json!(format!("destination {}", i + 1)),
                None => of_failing("server"),
            },
            "endpoint": match down {
                Some((display, ..)) => json!(display),
                None => of_failing("endpoint"),
            },
            "sqlstate": match down {
                Some((_, _, (_, sqlstate))) => json!(sqlstate),
                None => failing.map_or(Value::Null, |r| r["error"]["sqlstate"].clone()),
            },
            "status": match (failed, pending, check) {
                (true, _, _) => "failed",
                (false, true, _) => "pending",
                (false, false, true) => "check",
                (false, false, false) => "ok",
            },
            "exit_code": exit.code(),
            "decision_log": std::path::absolute(log_path)
                .unwrap_or_else(|_| log_path.to_path_buf())
                .display()
                .to_string(),
            "prepared": records,
            "warnings": report::warnings(),
        });
        let _ = report::print_json(&value); // The exit status stands whoever reads it.
    }
    if !output.quiet {
        for line in &lines {
            progress::println(&format!("copyman: {line}"));
        }
    }
    Ok(exit)
}

/// A run's party as its run named it (`destination 2 u@h:5432/db`), said as the run's: recover
/// numbers the servers given it otherwise (its `destination 2` was another server).
fn the_runs(display: &str) -> String {
    match display.strip_prefix("destination ") {
        Some(_) => format!("the run's {display}"),
        None => display.to_owned(),
    }
}

/// Whether a run's party (`destination 2 u@h:5432/db`) and a server given to recover
/// (`v@h:5432/db`) are one server and database, whoever they connect as (a CONN given with
/// another user that could not connect was said not to be given).
fn same_server(party: &str, given: &str) -> bool {
    place(party) == place(given)
}

/// Where a server shown as `[destination N ]user@place` is: its `place`.
fn place(shown: &str) -> &str {
    shown.rsplit(['@', ' ']).next().unwrap_or(shown)
}

/// A `--json` record of a prepared transaction in one shape, whatever said it: `destination`
/// and `endpoint` (the server it waits on, as given or as its run named it), `server`
/// (`destination N` of those given, null where it is not among them), `party` (what it is of
/// its run: `destination N` as the run numbered them, or `source`), `outcome` one of `committed`, `rolled back`, `would be committed`,
/// `would be rolled back`, `being committed` (by its run), `failed`, `left alone`, `not on the
/// servers given`, `not reached` (given, and could not be reached: why in `error`), with the words
/// said of it in `detail` (a sentence in `outcome`, and a `server` key in some records only).
fn one_shape(record: Value, given: &[ServerSpec]) -> Value {
    let said = |key: &str| record[key].as_str().map(str::to_owned);
    let named = said("server").or_else(|| said("destination"));
    let endpoint = named
        .as_deref()
        .map(|n| match report::server_and_endpoint(n) {
            (_, Some(endpoint)) => endpoint.to_owned(),
            (whole, None) => whole.to_owned(),
        });
    let at = endpoint
        .as_deref()
        .and_then(|e| given.iter().position(|spec| spec.display == e));
    let detail = said("outcome").unwrap_or_default();
    let outcome = [
        "committed",
        "rolled back",
        "would be committed",
        "would be rolled back",
        "being committed",
        "left alone",
        "not on the servers given",
        "not reached",
    ]
    .into_iter()
    .find(|kind| detail.starts_with(kind))
    .unwrap_or(
        if detail.starts_with("could not be") || detail.starts_with(commit::EMPTIED) {
            "failed"
        } else {
            "left alone"
        },
    );
    // Which of its run's parties it is, as the run named it (`server` is its place among the
    // CONNs given to this recover: "destination 1" for the run's third, commit44 F3).
    let party = record["gid"]
        .as_str()
        .and_then(commit::parse_gid)
        .map(|(_, party)| match party {
            commit::Party::Source => "source".to_owned(),
            commit::Party::Destination(n) => format!("destination {}", n + 1),
        });
    json!({
        "destination": endpoint,
        "endpoint": endpoint,
        "server": at.map(|i| format!("destination {}", i + 1)),
        "party": party,
        // The host a CONN naming several reached (recheck41 F6: said in the lines only).
        "reached": at.and_then(|i| given[i].reached()),
        "gid": record["gid"],
        "run": record["run"],
        "database": record["database"],
        "age_secs": record["age_secs"],
        "outcome": outcome,
        "detail": detail,
        "error": record["error"],
    })
}

/// A `--json` record of a run's party `h` that recover did not find prepared, with what it says
/// of it (put in one shape by [`one_shape`]).
fn holder_record(h: &commit::Holder, run: &str, outcome: String) -> Value {
    json!({
        "destination": h.display,
        "gid": h.gid,
        "run": run,
        "database": h.database,
        "server": h.display,
        "age_secs": Value::Null,
        "outcome": outcome,
        "error": Value::Null,
    })
}

/// The databases of `prepared`, each once, in order: `app, other`.
fn databases(prepared: &[commit::Prepared]) -> String {
    let names: BTreeSet<&str> = prepared.iter().map(|p| p.database.as_str()).collect();
    names.into_iter().collect::<Vec<_>>().join(", ")
}

/// Transactions' names, said in a line: a long list by its ends and its length (recheck69 F8:
/// a transaction `copyman:RUN:99` not copyman's made a line of 97 names, said twice).
fn gids_said(gids: &[String]) -> String {
    match gids {
        [first, second, .., last] if gids.len() > 4 => {
            format!("{first}, {second}, … {last} ({} transactions)", gids.len())
        }
        _ => gids.join(", "),
    }
}

/// The runs with no decision in the log (known to it, neither commit nor recovery's abort;
/// not in progress; under --no-decision-log, every run found) whose prepared transactions, across
/// `listed` (every one of copyman's found on the servers given), show that some of their
/// parties ended after they were prepared ([`commit::partly_ended`]): run → (the global ids
/// missing, those found). Presumed abort would roll back the rest of such a run.
fn partly_ended(
    listed: &[&commit::Prepared],
    contents: &commit::LogContents,
    no_decision_log: bool,
    log: &DecisionLog,
) -> BTreeMap<String, (Vec<String>, Vec<String>)> {
    let decided: BTreeSet<&str> = contents
        .committed
        .iter()
        .filter_map(|gid| commit::parse_gid(gid).map(|(run, _)| run))
        .collect();
    let mut found: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for p in listed {
        found.entry(&p.run).or_default().insert(&p.gid);
    }
    found
        .into_iter()
        .filter_map(|(run, gids)| {
            // Under --no-decision-log the user says no run decided commit, yet a run whose
            // first transactions are gone while later ones are prepared may have (its COMMIT
            // PREPAREDs go in order): rolling back the rest would split it.
            // (Whether it died: asked before `run_in_progress` records it and removes the file.)
            let died = contents.died.contains(run) || log.died(run);
            let undecided = no_decision_log
                || (!decided.contains(run)
                    && !contents.aborted.contains(run)
                    && contents.runs.contains(run)
                    && !log.run_in_progress(run));
            undecided.then_some((run, gids, died))
        })
        .filter_map(|(run, gids, died)| {
            let parties: Vec<commit::Party> = gids
                .iter()
                .filter_map(|gid| commit::parse_gid(gid).map(|(_, party)| party))
                .collect();
            // A destination its run recorded out (failed under --keep-going) was never
            // prepared: no gap. One recorded ended is no party left (a run that leaves work
            // records those it ended itself). Under --no-decision-log, the gap rule alone.
            let named: Vec<commit::Party> = (contents.begun.get(run).into_iter().flatten())
                .filter_map(|h| commit::parse_gid(&h.gid).map(|(_, party)| party))
                .collect();
            let died = died || no_decision_log;
            let missing: Vec<String> = commit::partly_ended_given(&parties, &named, died)
                .into_iter()
                .map(|party| match party {
                    commit::Party::Destination(n) => commit::Commit::<()>::gid(run, n),
                    commit::Party::Source => commit::Commit::<()>::source_gid(run),
                })
                .filter(|gid| !contents.out.contains(gid) && !contents.ended.contains(gid))
                .collect();
            (!missing.is_empty()).then(|| {
                let present = gids.into_iter().map(str::to_owned).collect();
                (run.to_owned(), (missing, present))
            })
        })
        .collect()
}

/// The statement [`said_while_waiting`] runs now, and since when.
static WAITING: Since = std::sync::Mutex::new(None);

/// The statement in progress, if its server has not answered it for a second or more: a
/// server waiting for a synchronous standby that is not there answers nothing.
fn unanswered() -> Vec<String> {
    let Some(waiting) = crate::watch::lock_briefly(&WAITING) else {
        return Vec::new();
    };
    (waiting.iter())
        .filter(|(_, since)| since.elapsed() >= Duration::from_secs(1))
        .map(|(what, _)| what.clone())
        .collect()
}

/// Runs `statement` (a COMMIT PREPARED, which is never cancelled: only its answer says what the
/// server did; or a ROLLBACK PREPARED, whose wait for a standby is: `rolls_back`) and, while it
/// has not returned, says so after a second and every 10 s after: a server waiting for a
/// synchronous standby that is not there answers nothing.
fn said_while_waiting<T: Send>(
    what: &str,
    rolls_back: bool,
    statement: impl FnOnce() -> T + Send,
) -> T {
    let _waiting = Now::set(&WAITING, what);
    let (done, finished) = mpsc::channel::<()>();
    thread::scope(|s| {
        s.spawn(move || {
            let started = Instant::now();
            let mut next = Duration::from_secs(1);
            while let Err(mpsc::RecvTimeoutError::Timeout) =
                finished.recv_timeout(next.saturating_sub(started.elapsed()))
            {
                progress::println(&format!(
                    "copyman: waiting {} s for {what}: the server has not answered (a \
                     synchronous standby that is not there? see synchronous_standby_names on \
                     that server); {}",
                    started.elapsed().as_secs(),
                    match rolls_back {
                        true => "a wait for a standby is cancelled once seen: it rolled back there",
                        false =>
                            "not cancelled (but a wait for a standby, after 10 s: it \
                                  committed there): only its answer says what it did",
                    }
                ));
                next += Duration::from_secs(10);
            }
        });
        let result = statement();
        drop(done);
        result
    })
}

/// The server recover asks its questions now (before it finishes anything), and since when
/// ([`Now`]).
static ASKING: Since = std::sync::Mutex::new(None);

/// Says, after 10 s and every 10 s after, that the server [`ASKING`] names has not answered
/// recover's questions, until dropped.
struct AskingSaid {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl AskingSaid {
    fn start() -> Self {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = thread::Builder::new()
            .name("copyman-asking".to_owned())
            .spawn(move || {
                let mut told: Option<(Instant, Instant)> = None;
                while !stopped.load(Ordering::SeqCst) {
                    thread::sleep(Duration::from_millis(200));
                    Bounded::close_when_due();
                    let asking = crate::watch::lock_briefly(&ASKING).and_then(|a| a.clone());
                    let Some((whom, since)) = asking else {
                        continue;
                    };
                    let after = crate::watch::say_after();
                    let due = match told {
                        Some((of, at)) if of == since => at.elapsed() >= after,
                        _ => since.elapsed() >= after,
                    };
                    if due {
                        told = Some((since, Instant::now()));
                        progress::println(&format!(
                            "copyman: waiting {} s for {whom} to answer: connected, its server \
                             has not answered recover's questions since (a frozen server, or \
                             the network path to it lost?); nothing is changed until every \
                             server given has answered (connect_timeout in its CONN bounds the \
                             wait; Ctrl-C stops)",
                            since.elapsed().as_secs()
                        ));
                    }
                }
            })
            .ok();
        Self { stop, thread }
    }
}

impl Drop for AskingSaid {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The connection of the server [`ASKING`] names, its CONN's `connect_timeout` and since when:
/// [`AskingSaid`] closes it once its questions, together, took that long (recheck70 F9: a
/// server that stopped answering once connected took the limit on each question, each waiting
/// for the one before: 45 s for a `connect_timeout=15`); every question after, on it, fails at
/// once. The one bound of recover's questions: its COMMIT and ROLLBACK PREPAREDs have none
/// (only their answers say what they did).
static ASKING_BOUND: std::sync::Mutex<Option<(copyman_sync::Closer, Instant, Duration)>> =
    std::sync::Mutex::new(None);

/// [`ASKING_BOUND`] set while it lives, where the CONN gives a `connect_timeout`.
struct Bounded;

impl Bounded {
    fn set(conn: &copyman_sync::Connection, spec: &ServerSpec) -> Self {
        let limit = spec.config.get_connect_timeout().copied();
        if let (Some(limit), Ok(closer)) = (limit, conn.closer())
            && let Some(mut bound) = crate::watch::lock_briefly(&ASKING_BOUND)
        {
            *bound = Some((closer, Instant::now(), limit));
        }
        Self
    }

    /// Closes the connection [`ASKING_BOUND`] holds once its time is out.
    fn close_when_due() {
        let Some(mut bound) = crate::watch::lock_briefly(&ASKING_BOUND) else {
            return;
        };
        if bound
            .as_ref()
            .is_some_and(|(_, since, limit)| since.elapsed() >= *limit)
            && let Some((closer, ..)) = bound.take()
        {
            closer.close("connected, then no answer to recover's questions within connect_timeout");
        }
    }
}

impl Drop for Bounded {
    fn drop(&mut self) {
        if let Some(mut bound) = crate::watch::lock_briefly(&ASKING_BOUND) {
            *bound = None;
        }
    }
}

/// What recover waits for, and since when ([`WAITING`], [`ASKING`]).
type Since = std::sync::Mutex<Option<(String, Instant)>>;

/// A [`Since`] set to what is waited for now while it lives.
struct Now(&'static Since);

impl Now {
    fn set(slot: &'static Since, what: &str) -> Self {
        *slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some((what.to_owned(), Instant::now()));
        Self(slot)
    }
}

impl Drop for Now {
    fn drop(&mut self) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }
}

/// A connection's first question answered within its CONN's `connect_timeout` ([`Bounded`]): a
/// server that accepts the connection and then answers nothing (a frozen backend, a lost
/// network path) is unreachable, as one that does not accept it.
fn first_answer(
    spec: &ServerSpec,
    role: &str,
    mut conn: copyman_sync::Connection,
) -> anyhow::Result<copyman_sync::Connection> {
    signals::connecting_to(role, &format!("{}, connected, being asked", spec.display));
    let _asking = Now::set(&ASKING, &format!("{role} ({})", spec.display));
    let limit = spec.config.get_connect_timeout().copied();
    let _bound = Bounded::set(&conn, spec);
    match conn.query("SELECT 1") {
        Err(e @ copyman_sync::Error::Closed { .. }) => {
            let mut error = describe_sync(&e);
            error.message = format!(
                "connected, then no answer to a question within connect_timeout ({} s)",
                limit.map_or(0, |l| l.as_secs())
            );
            Err(crate::run::Unreachable {
                role: role.to_owned(),
                endpoint: spec.display.clone(),
                error,
            }
            .into())
        }
        _ => Ok(conn),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A long list of transactions is said by its ends and its length; a short one whole.
    #[test]
    fn long_lists_of_transactions_are_said_by_their_ends() {
        let gids =
            |n: usize| -> Vec<String> { (2..2 + n).map(|i| format!("copyman:r:{i}")).collect() };
        assert_eq!(gids_said(&gids(1)), "copyman:r:2");
        assert_eq!(
            gids_said(&gids(4)),
            "copyman:r:2, copyman:r:3, copyman:r:4, copyman:r:5"
        );
        assert_eq!(
            gids_said(&gids(97)),
            "copyman:r:2, copyman:r:3, … copyman:r:98 (97 transactions)"
        );
    }

    /// A run's party is named as the run's, and known among the servers given whoever they
    /// connect as (a server given with another user that could not connect was said "not on
    /// the servers given: give its CONN too").
    #[test]
    fn a_runs_party_is_named_as_the_runs_and_known_by_its_place() {
        assert_eq!(
            the_runs("destination 2 u@h:5432/db"),
            "the run's destination 2 u@h:5432/db"
        );
        assert_eq!(the_runs("u@h:5432/db"), "u@h:5432/db");
        assert!(same_server(
            "destination 2 postgres@h:5432/db",
            "nosuch@h:5432/db"
        ));
        assert!(same_server(
            "destination 1 u@/tmp/s:5432/db",
            "v@/tmp/s:5432/db"
        ));
        assert!(!same_server("destination 2 u@h:5432/db", "u@h:5433/db"));
    }

    /// A relative `--decision-log` is said absolute in the advice, which is pasted later from
    /// another directory (commit66 F4). (The only test of this process-wide setting.)
    #[test]
    fn the_advice_names_the_decision_log_by_its_absolute_path() {
        log_given(Path::new("rel.log"));
        let cwd = std::env::current_dir().unwrap();
        let expected = crate::file_source::shell_word(&cwd.join("rel.log").to_string_lossy());
        assert_eq!(log_option(), format!(" --decision-log {expected}"));
    }
}
