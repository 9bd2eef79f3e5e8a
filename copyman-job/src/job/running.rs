//! Running a planned job ([`run`]): what its workers share ([`Shared`]: the queue in foreign-key
//! order, the job's stop, the reports), the workers and each table they take ([`copy_table`]:
//! copied whole, as a group or in ranges, then its stalled sessions given up, an interruption
//! said, a verify of what an earlier run did), and what every copy ends with: the sequences
//! carried ([`carry`]), the commit through core's commit machine ([`commit_live`],
//! [`commit_table`]) and the state file's records ([`record_committed`], [`record_mismatch`]).

use std::cell::Cell;
use std::collections::VecDeque;
use std::error::Error as StdError;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use copyman_sync::Connection;

use super::drive::Rate;
use super::error::{JobError, TableError, db_error, describe_with, one_line};
use super::group::copy_group;
use super::options::{Options, Server};
use super::planning::{DestPlan, Plan, TablePlan};
use super::ranges::copy_split;
use super::report::{Answer, DestResult, Event, JobReport, Side, Status, TableReport};
use super::sessions::{CANCELLED, CLOSED, Conns, ENDED, backend_pid, give_up, take_notices};
use super::verify::{verify_after_triggers, verify_done};
use super::whole::copy_whole;
use crate::commit::{self, Commit, Participant};
use crate::sequences::{Carrier, CarryError};
use crate::sql::{TableName, literal, own_rows};
use crate::state::{self, StateFile};

pub(super) struct Shared<'a> {
    pub(super) plan: &'a Plan,
    pub(super) source: &'a Server,
    pub(super) destinations: &'a [Server],
    /// `destinations`, whose connects an interrupt does not give up: for a commit's statement
    /// sent again on a new session (a `COMMIT PREPARED`, a `ROLLBACK PREPARED`).
    committing: &'a [Server],
    pub(super) options: &'a Options,
    pub(super) state: &'a StateFile,
    pub(super) events: &'a (dyn Fn(Event) + Sync),
    queue: Mutex<VecDeque<usize>>,
    /// Which tables this run copies (a table done earlier everywhere is not waited for).
    pending: Vec<bool>,
    /// Told (under `queue`'s lock) whenever a table finishes: a table that waits for the tables
    /// it references may start.
    turn: Condvar,
    /// How many tables (a group counts once) workers took from the queue and have not finished.
    running: std::sync::atomic::AtomicUsize,
    pub(super) stop: AtomicBool,
    stopped: Mutex<Option<String>>,
    /// [`JobReport::stopped_waiting`].
    stopped_waiting: AtomicBool,
    reports: Mutex<Vec<Option<TableReport>>>,
    /// Under verify, each table's checksum on the source, once a worker computed it.
    sums: Mutex<Vec<Option<String>>>,
    pub(super) rate: Option<Rate>,
    two_phase: Option<TwoPhase>,
    /// Each table's group ([`Plan::groups`], by position), if it is in one.
    group_of: Vec<Option<usize>>,
}

/// Two-phase commit per table: the decision log, the job's run id, and a count of the tables'
/// commits (each table commits under run id `RUN-N`).
struct TwoPhase {
    log: commit::DecisionLog,
    run: String,
    next: std::sync::atomic::AtomicUsize,
}

/// A destination's connection in a table's commit: each statement is told to the caller
/// ([`Event::CommitStep`]) before it is sent and once it is answered.
pub(super) struct Announced<'c, 's, 'a> {
    pub(super) conn: &'c mut Connection,
    pub(super) shared: &'s Shared<'a>,
    pub(super) worker: usize,
    /// The tables the transaction holds (a group's: each is told of every step).
    pub(super) tables: &'s [TableName],
    pub(super) destination: usize,
    /// Whether a COMMIT of this commit went out (shared by its parties): until one did, an
    /// interrupt calls the commit off, as in a one-table run (the job said its tables roll back).
    pub(super) sent: &'s Cell<bool>,
}

impl Announced<'_, '_, '_> {
    /// Its session as the decision log names a party's ([`commit::Holder::backend`]): its
    /// backend's process id, known without asking the server (empty if it is not known).
    pub(super) fn backend(&self) -> String {
        self.conn
            .session()
            .backend_key()
            .map(|(pid, _)| pid.to_string())
            .unwrap_or_default()
    }
}

impl Participant for Announced<'_, '_, '_> {
    type Error = copyman_sync::Error;

    fn run(&mut self, action: &commit::Action) -> Result<(), commit::Failure<Self::Error>> {
        let pid = backend_pid(self.conn);
        let (worker, destination) = (self.worker, self.destination);
        let tell = |(pid, replaces): (Option<i32>, Option<i32>), answer: Answer| {
            for table in self.tables {
                (self.shared.events)(Event::CommitStep {
                    worker,
                    table: table.clone(),
                    destination,
                    pid,
                    replaces,
                    action: action.clone(),
                    answer: answer.clone(),
                });
            }
        };
        // Called off before its first COMMIT: nothing more is checked or prepared (a PREPARE
        // would hold its locks until rolled back, or until recover after a second signal). Not
        // told as a step: it was never sent (a PREPARE or COMMIT told sent and never answered
        // was said "prepared or not" or "in doubt").
        let called_off = !self.sent.get() && self.shared.options.interrupt.is_interrupted();
        if called_off
            && matches!(
                action,
                commit::Action::Prepare(_)
                    | commit::Action::CheckConstraints
                    | commit::Action::Commit
            )
        {
            return Err(commit::Failure::Refused(copyman_sync::Error::State(
                JOB_STOPPED,
            )));
        }
        tell((pid, None), Answer::Awaited);
        if *action == commit::Action::Commit {
            self.sent.set(true);
        }
        // (An interrupt cuts the wait for its answer only where that decides nothing: the
        // participant's rule, on this session or on a new one if this one was lost.)
        // A session still waiting for an earlier answer (given up for a stall: its transaction
        // id, a frozen backend) would queue the ROLLBACK behind it for ever: its close, which
        // follows (`give_up_stalled`), rolls it back.
        if *action == commit::Action::Rollback && !self.conn.is_ready() {
            tell((pid, None), Answer::TookEffect);
            return Ok(());
        }
        // Sent again on a new session where this one was lost: its backend is the one waited
        // for from then on (commit48 F5: the lost one was watched, and said "gone" every 10 s,
        // while the new one waited for a synchronous standby).
        let connect = &self.shared.committing[self.destination].connect;
        let on = Cell::new((pid, None));
        let fresh = || {
            let fresh = connect()?;
            on.set((backend_pid(&fresh), pid));
            tell(on.get(), Answer::Awaited);
            Ok(fresh)
        };
        // A PREPARE decides nothing: bounded by the stall timeout, as the copy was.
        let stall = self.shared.options.stall_timeout;
        let bound = stall
            .filter(|_| matches!(action, commit::Action::Prepare(_)))
            .and_then(|limit| commit::PrepareBound::arm(self.conn, limit));
        let result = commit::run_on_a_live_session(self.conn, action, &fresh);
        let result = match (bound.map(|b| b.disarm(self.conn)), result) {
            (Some(true), Err(commit::Failure::Lost(_))) => Err(commit::Failure::Lost(
                copyman_sync::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    commit::PrepareBound::given_up(stall),
                )),
            )),
            (_, result) => result,
        };
        tell(
            on.get(),
            match &result {
                Ok(()) | Err(commit::Failure::Emptied(_)) => Answer::TookEffect,
                Err(commit::Failure::Refused(e)) => {
                    Answer::Refused(describe_with(e, None).to_string())
                }
                Err(commit::Failure::Lost(_)) => Answer::Lost,
            },
        );
        result
    }
}

/// Ends the transactions of one table (or FK group: `tables`) on the `live` destinations
/// through core's commit machine ([`commit_table`]), each telling the job's events of its steps.
pub(super) fn commit_live(
    shared: &Shared<'_>,
    worker: usize,
    dests: &mut [Option<Connection>],
    live: &[usize],
    tables: &[TableName],
    options: commit::Options,
    flags: &[bool],
) -> commit::Report<copyman_sync::Error> {
    let sent = Cell::new(false);
    let mut announced: Vec<Announced<'_, '_, '_>> = dests
        .iter_mut()
        .enumerate()
        .filter(|(d, _)| live.contains(d))
        .map(|(destination, c)| Announced {
            conn: c.as_mut().expect("begun above"),
            shared,
            worker,
            tables,
            destination,
            sent: &sent,
        })
        .collect();
    let destination_of: Vec<usize> = announced.iter().map(|a| a.destination).collect();
    let backends: Vec<String> = announced.iter().map(Announced::backend).collect();
    let mut parties: Vec<&mut dyn Participant<Error = copyman_sync::Error>> = announced
        .iter_mut()
        .map(|a| a as &mut dyn Participant<Error = _>)
        .collect();
    commit_table(
        shared,
        options,
        flags,
        &mut parties,
        (&destination_of, &backends, tables),
    )
}

/// Ends the transactions of `parties` (party `k` on destination `destination_of[k]`, its session
/// the backend `backends[k]`: [`Announced::backend`]) through core's commit machine: one COMMIT
/// after another, or two-phase under the decision log, whose decision names every party's
/// server and session (`party` lines) and which records the run finished when nothing of it is
/// left prepared, as a one-table run's does.
pub(super) fn commit_table(
    shared: &Shared<'_>,
    mut options: commit::Options,
    flags: &[bool],
    parties: &mut [&mut dyn Participant<Error = copyman_sync::Error>],
    (destination_of, backends, tables): (&[usize], &[String], &[TableName]),
) -> commit::Report<copyman_sync::Error> {
    let Some(two) = &shared.two_phase else {
        return commit::run(
            Commit::new(options, flags),
            parties,
            None,
            |_| Ok(()),
            |_| {},
        );
    };
    let run = format!("{}-{}", two.run, two.next.fetch_add(1, Ordering::SeqCst));
    // Each party's session named too: while it lives, a PREPARE it has not read yet (a frozen
    // backend, a lost path) may prepare its transaction after this process died, which a
    // recovery must then not call "nothing pending" (it named the planning session's server
    // only, and said so).
    let holders: Vec<Option<commit::Holder>> = destination_of
        .iter()
        .zip(backends)
        .map(|(&d, backend)| {
            shared.plan.parties.get(d).map(|party| commit::Holder {
                backend: backend.clone(),
                ..party.clone()
            })
        })
        .collect();
    let holders: Vec<Option<&commit::Holder>> = holders.iter().map(Option::as_ref).collect();
    // The lock says "in progress" to a concurrent `copyman recover`, and the log names every
    // server the run may prepare on; without them, commit nothing.
    let lock = two.log.lock_run_with(&run, &holders, None);
    let log_failed = |what: &str, e: &std::io::Error| {
        let why = format!(
            "the decision log {} could not record {what}: {e}",
            two.log.path().display()
        );
        // Every table after would meet it: the job stops, saying why.
        shared.stop_saying(why.clone());
        copyman_sync::Error::Io(std::io::Error::new(e.kind(), why))
    };
    let unrecorded = lock
        .as_ref()
        .err()
        .map(|e| log_failed("the run's start (nothing was prepared)", e));
    if unrecorded.is_some() {
        options.copy_failed = true;
    }
    options.two_phase = Some(run.clone());
    let mut report = commit::run(
        Commit::new(options, flags),
        parties,
        None,
        |d| {
            // An interrupt before the decision calls the commit off: every PREPARE rolls back.
            if shared.options.interrupt.is_interrupted() {
                return Err(copyman_sync::Error::State(JOB_STOPPED));
            }
            (shared.events)(Event::Recording {
                log: Some(two.log.path().to_owned()),
                tables: tables.to_vec(),
            });
            let recorded = two.log.record_parties(d, &holders, None);
            (shared.events)(Event::Recording {
                log: None,
                tables: tables.to_vec(),
            });
            recorded.map_err(|e| {
                log_failed("the commit decision (every PREPARE is rolled back)", &e)
            })?;
            (shared.events)(Event::Decided {
                tables: tables.to_vec(),
            });
            Ok(())
        },
        // Best effort: not recorded, a recovery that finds the run half rolled back, or a gap
        // among its prepared transactions, asks for its servers or refuses rather than guess.
        // A COMMIT PREPARED whose sending could not be recorded is said: a recovery of the run
        // would take its transaction for one another session ended. The log takes nothing
        // more (a full disk): the job stops there, as the next table's start would stop it.
        |step| {
            if let (Err(e), commit::Step::RecordCommitting { gid, .. }) = (two.log.note(step), step)
            {
                shared.stop_saying(format!(
                    "the decision log {} could not record that {gid} is being committed ({e}): \
                     this run commits it, but a copyman recover of the run would say that \
                     server must be checked, as if another session had ended it",
                    two.log.path().display()
                ));
            }
        },
    );
    if let Some(e) = unrecorded {
        report.record_error.get_or_insert(e);
    }
    // Nothing of the run left prepared (committed under its decision, or rolled back): recovery
    // need not ask for its servers. (Not recorded, recovery asks for them all: the safe side.)
    if lock.is_ok() && !report.leaves_work() {
        let _ = two.log.finished(&run);
    } else if lock.is_ok() {
        // What did end, recorded: recovery asks only for the servers of what is left.
        let _ = two.log.ended_all(&run, &report.ended_gids(&run));
    }
    drop(lock);
    report
}

impl Shared<'_> {
    /// Puts `targets` (destinations, by index) in the order their locks are taken: by what each
    /// server is (its state-file key: system identifier and database), not by the order of
    /// `--to`. Two jobs that empty the same tables on the same servers, given them in another
    /// order, then wait for each other on the first server rather than each hold one and wait
    /// on the other (a deadlock across servers that neither server sees).
    pub(super) fn lock_order(&self, targets: &mut [usize]) {
        targets.sort_by(|a, b| self.plan.keys[*a].cmp(&self.plan.keys[*b]).then(a.cmp(b)));
    }

    /// Leaves out of `targets` (failed, said) each destination where a table of the job that
    /// `t` references ([`TablePlan::after`]) did not end committed or done: its rows would
    /// reference rows that are not there, or the old ones that failed to go (a table that could
    /// not be emptied) — copied and recorded done, it would be skipped by the resume that copies
    /// that table again. Whether the table may go on: not when none is left, or, without
    /// keep-going, when one was left out.
    pub(super) fn referenced_committed(
        &self,
        t: &TablePlan,
        targets: &mut Vec<usize>,
        report: &mut TableReport,
    ) -> bool {
        let before = targets.len();
        {
            let reports = self.reports.lock().unwrap_or_else(PoisonError::into_inner);
            targets.retain(|&d| {
                let behind = t.after.iter().find(|&&p| {
                    reports[p].as_ref().is_some_and(|r| {
                        !matches!(
                            r.destinations[d].status,
                            Status::Committed | Status::AlreadyDone
                        )
                    })
                });
                let Some(&p) = behind else { return true };
                report.destinations[d].fail(
                    Status::Failed,
                    TableError::new(format!(
                        "not copied here: it references {}, which did not commit here (above); \
                         a resume copies them in turn",
                        self.plan.tables[p].table
                    )),
                );
                false
            });
        }
        !targets.is_empty() && (self.options.keep_going || targets.len() == before)
    }

    fn stop(&self, why: String) {
        let mut stopped = self.stopped.lock().unwrap_or_else(PoisonError::into_inner);
        if stopped.is_none() {
            *stopped = Some(why);
        }
        self.stop.store(true, Ordering::SeqCst);
    }

    /// [`Shared::stop`], and `why` said even when the job had stopped already (for another
    /// table's failure): what a decision log could not record is what `copyman recover` later
    /// questions, and must reach the report whatever stopped the job first.
    fn stop_saying(&self, why: String) {
        let mut stopped = self.stopped.lock().unwrap_or_else(PoisonError::into_inner);
        match stopped.as_mut() {
            Some(first) if !first.contains(&why) => first.push_str(&format!("; and {why}")),
            Some(_) => {}
            None => *stopped = Some(why),
        }
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Whether the job stopped (default policy) or was interrupted: no new table starts, and
    /// a table not yet committing rolls back.
    pub(super) fn halted(&self) -> bool {
        self.stop.load(Ordering::SeqCst) || self.options.interrupt.is_interrupted()
    }

    /// [`describe`], with the job's stall timeout.
    pub(super) fn describe(&self, error: &(dyn StdError + 'static)) -> TableError {
        describe_with(error, self.options.stall_timeout)
    }

    /// A `TRUNCATE`'s error. Without `--truncate` it empties a table that an earlier run began
    /// or committed there: without it, a copy would add a second copy of the rows, so the table
    /// fails, and the error says what the DBA can do.
    ///
    /// A table whose rows other tables' rows reference cannot be emptied (its `DELETE`: 23503;
    /// a `TRUNCATE` of a referenced table alone: 0A000), with or without `--truncate`, and never
    /// will be: copyman empties no other table to make way (their rows would go), so the error
    /// says what to do instead of a resume that fails the same.
    pub(super) fn resumed_truncate(
        &self,
        error: &(dyn StdError + 'static),
        t: &TablePlan,
        d: usize,
    ) -> TableError {
        let described = self.describe(error);
        if let Some(db) = db_error(error).filter(|db| matches!(db.code.as_str(), "0A000" | "23503"))
        {
            let me = t.table.to_string();
            let mut referencing: Vec<String> = t
                .referenced_by
                .iter()
                .filter(|r| **r != me)
                .cloned()
                .collect();
            if referencing.is_empty() {
                referencing.push("the tables that reference it".to_owned());
            }
            // Those the job does not copy: their rows, once emptied, are the DBA's to copy again.
            let outside: Vec<&String> = referencing
                .iter()
                .filter(|r| !self.plan.tables.iter().any(|p| p.table.to_string() == **r))
                .collect();
            let refill = if outside.is_empty() {
                String::new()
            } else {
                format!(
                    " (and copy {} there again yourself: the job does not)",
                    outside
                        .iter()
                        .map(|r| r.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            // 23503: its DELETE met rows that reference it; 0A000: a TRUNCATE, because a DELETE
            // would have touched other rows (a foreign key that acts on delete, a trigger, a
            // rule), or a partitioned table: it can be copied again only into emptied tables.
            let then = if db.code == "23503" {
                format!("then run again with --resume{refill}")
            } else {
                "then copy them there with a job of their own (its --state in another directory), without \
                 --truncate or --resume: here copyman would empty it only with a TRUNCATE, which \
                 PostgreSQL refuses (a DELETE would act on other rows: a foreign key ON DELETE \
                 CASCADE or SET NULL, a trigger or a rule)"
                    .to_owned()
            };
            // The one statement that empties them: the table (with its group, if it is in
            // one: the group's tables are emptied in one transaction), and the tables that
            // reference them.
            let mut together: Vec<String> = match self
                .plan
                .tables
                .iter()
                .position(|p| p.table == t.table)
                .and_then(|i| self.plan.group_of(i))
            {
                Some(g) => g
                    .members
                    .iter()
                    .map(|&m| self.plan.tables[m].table.to_string())
                    .collect(),
                None => vec![me.clone()],
            };
            for r in referencing.iter().filter(|r| r.starts_with('"')) {
                if !together.contains(r) {
                    together.push(r.clone());
                }
            }
            // And every table that references one of them, at any depth, as PostgreSQL's
            // TRUNCATE wants them named (it named those of the first only, and was refused:
            // "Table "invoices" references "orders"").
            let mut next = 0;
            while let Some(name) = together.get(next).cloned() {
                next += 1;
                let by = (self.plan.tables.iter())
                    .filter(|p| p.table.to_string() == name)
                    .flat_map(|p| p.referenced_by.iter());
                for r in by {
                    if !together.contains(r) {
                        together.push(r.clone());
                    }
                }
            }
            // Each as the job empties it: a partitioned table with its partitions (PostgreSQL
            // refuses `TRUNCATE ONLY` of one), an ordinary one without its heirs; a table the
            // job does not copy, of a kind not known here, `ONLY` itself.
            let together: Vec<String> = together
                .iter()
                .map(|name| {
                    match self
                        .plan
                        .tables
                        .iter()
                        .find(|p| p.table.to_string() == *name)
                    {
                        Some(p) => {
                            let kind = match &p.destinations[d] {
                                DestPlan::Copy { kind, .. } => kind.as_str(),
                                _ => p.kind.as_str(),
                            };
                            own_rows(&p.table, kind)
                        }
                        None => format!("ONLY {name}"),
                    }
                })
                .collect();
            return TableError {
                connect: false,
                lasting: false,
                sqlstate: described.sqlstate,
                message: one_line(&format!(
                    "{}{}: rows of {} reference its rows, and copyman empties no other table \
                     (their rows would go), so it cannot empty it to copy it again; on \
                     destination {} ({}) empty them together yourself (TRUNCATE {}), \
                     {then}",
                    db.message,
                    db.detail
                        .as_ref()
                        .map(|d| format!(" ({d})"))
                        .unwrap_or_default(),
                    referencing.join(", "),
                    d + 1,
                    self.destinations[d].name,
                    together.join(", "),
                )),
            };
        }
        if self.options.truncate || self.plan.recorded.truncate {
            return described;
        }
        TableError {
            lasting: false,
            message: format!(
                "cannot empty the table, which an earlier run of the job began or committed \
                 here (copying without emptying it could leave its rows twice): {}; empty it \
                 there yourself, then run again with --resume",
                described.message
            ),
            ..described
        }
    }

    /// Keeps table `i`'s checksum on the source (under verify), for [`verify_after_triggers`].
    pub(super) fn keep_sum(&self, i: usize, sum: Option<String>) {
        if sum.is_some() {
            self.sums.lock().unwrap_or_else(PoisonError::into_inner)[i] = sum;
        }
    }

    /// Tells the caller that `conn` is about to run `table`'s statements for `worker`.
    pub(super) fn announce(&self, worker: usize, table: &TableName, side: Side, conn: &Connection) {
        if let Some(pid) = backend_pid(conn) {
            (self.events)(Event::Backend {
                worker,
                table: table.clone(),
                side,
                pid,
                cancel: conn.cancel_token().ok(),
                closer: conn.closer().ok(),
            });
        }
    }

    /// Arms (`on`) or clears the stall timeout on `conn`'s socket: armed from a table's `BEGIN`
    /// to the end of its COPY, cleared before a checksum or a `COMMIT`. A socket that cannot
    /// take it is broken, and its next statement says so.
    pub(super) fn stall_guard(&self, conn: &mut Connection, on: bool) {
        if let Some(limit) = self.options.stall_timeout {
            let _ = conn.set_timeout(on.then_some(limit));
        }
    }

    /// The next table to copy: the first in the queue (largest first) whose referenced tables
    /// ([`TablePlan::after`]) have finished; waits while every table left waits for one in
    /// flight. `None` once the queue is empty or the job halted.
    fn next(&self) -> Option<usize> {
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if self.halted() || queue.is_empty() {
                return None;
            }
            let ready = {
                let reports = self.reports.lock().unwrap_or_else(PoisonError::into_inner);
                queue.iter().position(|&i| {
                    self.waits_for(i)
                        .iter()
                        .all(|&p| !self.pending[p] || reports[p].is_some())
                })
            };
            if let Some(at) = ready {
                self.running.fetch_add(1, Ordering::SeqCst);
                return queue.remove(at);
            }
            // Nothing in flight will ever let a table left start: they wait for each other
            // (a group waits for a table it references, which references one of its members
            // and is copied without emptying). Said, rather than waited on for ever.
            if self.running.load(Ordering::SeqCst) == 0 {
                let waits: Vec<String> = queue
                    .iter()
                    .map(|&i| {
                        let names = |list: Vec<usize>| -> Vec<String> {
                            list.iter()
                                .map(|&p| self.plan.tables[p].table.to_string())
                                .collect()
                        };
                        let me = match self.group_of[i] {
                            Some(g) => names(self.plan.groups[g].members.clone()).join(" with "),
                            None => self.plan.tables[i].table.to_string(),
                        };
                        let behind: Vec<usize> = self
                            .waits_for(i)
                            .into_iter()
                            .filter(|&p| self.pending[p])
                            .collect();
                        format!("{me} waits for {}", names(behind).join(", "))
                    })
                    .collect();
                // Said only if this is why the job stops (not when it had stopped already).
                if !self.halted() {
                    self.stopped_waiting.store(true, Ordering::SeqCst);
                }
                self.stop(format!(
                    "cannot order the tables left by their foreign keys: {}; each must commit \
                     before the other starts (a group of tables emptied first and a table \
                     copied without emptying that references one member and is referenced by \
                     another); nothing of them was copied: copy them with --truncate (all \
                     emptied, one group), or the table copied without emptying in a job of its \
                     own",
                    waits.join("; ")
                ));
                return None;
            }
            // A bounded wait: a job that halts meanwhile is seen without a notification.
            queue = self
                .turn
                .wait_timeout(queue, Duration::from_millis(200))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// The tables `i` waits for ([`TablePlan::after`]); for a group's first member, every
    /// member's, outside the group.
    fn waits_for(&self, i: usize) -> Vec<usize> {
        match self.group_of[i].map(|g| &self.plan.groups[g].members) {
            Some(members) => members
                .iter()
                .flat_map(|&m| self.plan.tables[m].after.iter().copied())
                .filter(|p| !members.contains(p))
                .collect(),
            None => self.plan.tables[i].after.clone(),
        }
    }

    /// A table finished: the tables waiting for it may start.
    fn finished(&self) {
        let _queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        self.turn.notify_all();
    }
}

/// Claims the tables this run copies (and their partition relatives) on its destinations in
/// its state file, then looks for a job of the same directory running now that claimed or
/// began one of them there: appended by both, its rows would be there twice. Claiming first,
/// two jobs starting together each see the other's claims (at least one of them does).
///
/// # Errors
/// [`JobError::Refused`] naming the other job's state file and the tables, unless both runs
/// empty their tables first (`--truncate`: the later copy replaces the earlier);
/// [`JobError::State`] when the claims cannot be written.
fn claim(
    plan: &Plan,
    copies: &[bool],
    state: &StateFile,
    options: &Options,
) -> Result<(), JobError> {
    let tables: Vec<String> = plan
        .tables
        .iter()
        .zip(copies)
        .filter(|(_, copies)| **copies)
        .map(|(t, _)| t.table.to_string())
        .chain(plan.relatives.iter().cloned())
        .collect();
    let pairs = || {
        tables
            .iter()
            .flat_map(|t| plan.keys.iter().map(move |k| (t.as_str(), k.as_str())))
    };
    state
        .claim(pairs())
        .and_then(|()| {
            state.covers(
                plan.covers
                    .iter()
                    .map(|(table, oids)| (table.as_str(), oids.as_slice())),
            )
        })
        .map_err(|error| JobError::State {
            path: options.state.clone(),
            error,
        })?;
    let truncates = options.truncate || plan.recorded.truncate;
    // Those of its directory too, listed now: a job started at the same moment was not running
    // when this one began (both claim before they look, so at least one sees the other).
    let mut others: Vec<std::path::PathBuf> = options
        .other_states
        .iter()
        .filter(|p| state::running(p))
        .cloned()
        .collect();
    for path in state::running_beside(&options.state) {
        if !others.contains(&path) {
            others.push(path);
        }
    }
    for path in &others {
        let Ok(other) = state::read(path) else {
            continue;
        };
        // Two jobs that empty the table first: the second's TRUNCATE waits for the first's
        // commit and replaces its rows. One that appends would add its rows to the other's.
        if truncates && other.truncate {
            continue;
        }
        let mut shared: Vec<&str> = pairs()
            .filter(|(t, k)| other.begun(t, k) || other.claimed(t, k))
            .map(|(t, _)| t)
            .collect();
        shared.dedup();
        if shared.is_empty() {
            continue;
        }
        return Err(beside_running_job(path, "copies", &shared));
    }
    Ok(())
}

/// The refusal of a job beside one running now (its state file at `path`) that `does` (began,
/// copies) `tables` of it on the same destinations: appended by both, their rows would be there
/// twice.
pub(super) fn beside_running_job(path: &std::path::Path, does: &str, tables: &[&str]) -> JobError {
    JobError::Refused(format!(
        "another copyman job is running into these destinations (its state file {}) and {does} \
         {}: copied by both, their rows would be there twice; run this job after it ends",
        path.display(),
        first_names(tables)
    ))
}

/// The first three of `names`, and how many more: `a, b, c and 2 more` (four named all).
pub fn first_names(names: &[&str]) -> String {
    // One more is named, not counted (recheck64 F4: "and 1 more").
    let cut = if names.len() == 4 { 4 } else { 3 };
    let shown = names[..names.len().min(cut)].join(", ");
    match names.len().saturating_sub(cut) {
        0 => shown,
        more => format!("{shown} and {more} more"),
    }
}

/// Runs a planned job to its end; `events` hears about its progress (from every worker thread).
///
/// # Errors
/// The state file cannot be opened. Everything else is in the [`JobReport`].
pub fn run(
    plan: Plan,
    source: &Server,
    destinations: &[Server],
    options: &Options,
    events: &(dyn Fn(Event) + Sync),
) -> Result<JobReport, JobError> {
    // Every session of the run: an interrupt cuts its waits short (not its COMMITs'), and
    // gives up its connects, but those that finish a commit.
    let source = &options.interrupt.abandoning(source);
    let committing: &[Server] = &destinations
        .iter()
        .map(|d| options.interrupt.interruptible(d))
        .collect::<Vec<_>>();
    let destinations: &[Server] = &destinations
        .iter()
        .map(|d| options.interrupt.abandoning(d))
        .collect::<Vec<_>>();
    let started = Instant::now();
    let state =
        StateFile::open(&options.state, options.resume).map_err(|error| JobError::State {
            path: options.state.clone(),
            error,
        })?;
    state.writer().map_err(|error| JobError::State {
        path: options.state.clone(),
        error,
    })?;
    let mut plan = plan;
    if plan.recorded.selection.is_none() {
        state
            .selection(&plan.selection)
            .map_err(|error| JobError::State {
                path: options.state.clone(),
                error,
            })?;
    }
    if let Some(source) = plan
        .source
        .as_deref()
        .filter(|_| plan.recorded.source.is_none())
    {
        state.source(source).map_err(|error| JobError::State {
            path: options.state.clone(),
            error,
        })?;
    }
    // Only the run that began the job, as with --verify: a resume given --truncate empties the
    // tables it copies, and binds no later resume (a table an append run had copied, found
    // different later, was emptied by a plain resume: the destination's own rows deleted).
    if options.truncate && !options.resume && !plan.recorded.truncate {
        state.truncate().map_err(|error| JobError::State {
            path: options.state.clone(),
            error,
        })?;
    }
    // And whether it commits with two-phase commit, and in which decision log: a resume given
    // another log records it too (where its runs' decisions are, recheck48b F1).
    if let Some(log) = &options.two_phase {
        // Absolute: a resume from another directory reads the same log (recheck46 F4).
        let log = std::path::absolute(log).unwrap_or_else(|_| log.clone());
        let another = plan.recorded.atomic.is_some() && !plan.recorded.logs.contains(&log);
        if !options.resume || another {
            state.atomic(&log).map_err(|error| JobError::State {
                path: options.state.clone(),
                error,
            })?;
        }
    }
    // The run that began the job says whether it verifies (a resume that verifies once does
    // not bind the next).
    if options.verify && !options.resume {
        state.verify().map_err(|error| JobError::State {
            path: options.state.clone(),
            error,
        })?;
    }
    // How each destination identified now is named, where the file does not say it so yet.
    for (key, server) in plan.keys.iter().zip(destinations) {
        if !state::is_unidentified(key) && plan.recorded.names.get(&server.name) != Some(key) {
            state
                .named(key, &server.name)
                .map_err(|error| JobError::State {
                    path: options.state.clone(),
                    error,
                })?;
        }
    }
    // Tables renamed or made again since the earlier runs (before the new names' records).
    for (table, renamed) in &plan.retaken {
        match renamed {
            Some(to) => state.renamed(table, to),
            None => state.replaced(table),
        }
        .map_err(|error| JobError::State {
            path: options.state.clone(),
            error,
        })?;
    }
    // What an earlier run committed without recording it (the destination confirmed it).
    for (table, d, rows) in std::mem::take(&mut plan.confirmed) {
        state
            .done(&table, &plan.keys[d], rows, None)
            .map_err(|error| JobError::State {
                path: options.state.clone(),
                error,
            })?;
    }
    let coordinator = plan.coordinator.take();
    // The tables this run copies; under verify, those done earlier are taken up too, only to
    // be compared (`verify_done`).
    let copies: Vec<bool> = plan.tables.iter().map(copies_any).collect();
    claim(&plan, &copies, &state, options)?;
    let mut group_of = vec![None; plan.tables.len()];
    for (g, group) in plan.groups.iter().enumerate() {
        for &m in &group.members {
            group_of[m] = Some(g);
        }
    }
    // A group is taken up by its first member; the worker copies the others with it.
    let todo: VecDeque<usize> = (0..plan.tables.len())
        .filter(|&i| copies[i] || (options.verify && !done_earlier(&plan.tables[i]).is_empty()))
        .filter(|&i| group_of[i].is_none_or(|g| plan.groups[g].members[0] == i))
        .collect();
    let taken_up = todo.len();
    let members = |i: usize| match group_of[i] {
        Some(g) => plan.groups[g].members.clone(),
        None => vec![i],
    };
    events(Event::Started {
        tables: todo.iter().map(|&i| members(i).len()).sum(),
        bytes: todo
            .iter()
            .flat_map(|&i| members(i))
            .filter(|&i| copies[i])
            .map(|i| plan.tables[i].bytes)
            .sum(),
    });
    let two_phase = match &options.two_phase {
        Some(path) => Some(TwoPhase {
            log: commit::DecisionLog::open(path).map_err(|error| JobError::DecisionLog {
                path: path.clone(),
                error,
            })?,
            run: commit::DecisionLog::new_run_id(),
            next: std::sync::atomic::AtomicUsize::new(1),
        }),
        None => None,
    };
    let shared = Shared {
        two_phase,
        group_of,
        plan: &plan,
        source,
        destinations,
        committing,
        options,
        state: &state,
        events,
        queue: Mutex::new(todo),
        pending: copies,
        turn: Condvar::new(),
        running: std::sync::atomic::AtomicUsize::new(0),
        stop: AtomicBool::new(false),
        stopped: Mutex::new(None),
        stopped_waiting: AtomicBool::new(false),
        reports: Mutex::new(vec![None; plan.tables.len()]),
        sums: Mutex::new(vec![None; plan.tables.len()]),
        rate: options.max_rate.filter(|&r| r > 0).map(Rate::new),
    };
    // Under the default policy a table refused by a destination's catalog stops the job before
    // anything is copied.
    if !options.keep_going
        && let Some((table, dest, error)) = plan.tables.iter().find_map(|t| {
            t.destinations
                .iter()
                .enumerate()
                .find_map(|(i, d)| match d {
                    DestPlan::Refused(e) => Some((&t.table, i, e)),
                    _ => None,
                })
        })
    {
        shared.stop(format!(
            "table {table} on destination {} ({}): {error}",
            dest + 1,
            destinations[dest].name
        ));
    }
    let workers = options.jobs.max(1).min(taken_up.max(1));
    thread::scope(|s| {
        for worker in 0..workers {
            let shared = &shared;
            s.spawn(move || work(shared, worker));
        }
    });
    let mut reports = std::mem::take(
        &mut *shared
            .reports
            .lock()
            .unwrap_or_else(PoisonError::into_inner),
    );
    let sums = std::mem::take(&mut *shared.sums.lock().unwrap_or_else(PoisonError::into_inner));
    verify_after_triggers(&shared, &mut reports, &sums);
    drop(coordinator);
    let mut tables: Vec<TableReport> = plan
        .tables
        .iter()
        .zip(reports)
        .map(|(t, report)| report.unwrap_or_else(|| unstarted(t)))
        .collect();
    // A table an earlier run found different, to be compared again (`Resumed::Recheck`), that
    // this run did not find matching (stopped first, or not compared): still different, not
    // done — what the state file still says.
    for report in &mut tables {
        let key = report.table.to_string();
        for (d, result) in report.destinations.iter_mut().enumerate() {
            if result.status == Status::AlreadyDone
                && result.verified != Some(true)
                && plan.rechecked(&key, d)
            {
                let doubted = plan.doubted.iter().any(|(t, at)| *t == key && *at == d);
                result.status = match doubted {
                    true => Status::InDoubt,
                    false => Status::Differs,
                };
                result.error.get_or_insert_with(|| {
                    TableError::new(match doubted {
                        true => {
                            "not compared (the job stopped first, or it could not be): whether an \
                             earlier run's copy committed there is still not known"
                        }
                        false => {
                            "not compared again (the job stopped first, or it could not be): \
                             still recorded different from the source, as an earlier run's \
                             --verify found it"
                        }
                    })
                });
            }
        }
    }
    Ok(JobReport {
        tables,
        snapshot: plan.snapshot.clone(),
        stopped: shared
            .stopped
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner),
        stopped_waiting: shared.stopped_waiting.into_inner(),
        interrupted: options.interrupt.reason(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Whether a destination copies `t` in this run (it is not done there already).
fn copies_any(t: &TablePlan) -> bool {
    t.destinations
        .iter()
        .any(|d| !matches!(d, DestPlan::Done(_)))
}

/// The destinations where an earlier run did `t` (by position).
pub(super) fn done_earlier(t: &TablePlan) -> Vec<usize> {
    (0..t.destinations.len())
        .filter(|&d| matches!(t.destinations[d], DestPlan::Done(_)))
        .collect()
}

/// The report of a table no worker took: done earlier, refused, or not started.
pub(super) fn unstarted(t: &TablePlan) -> TableReport {
    TableReport {
        table: t.table.clone(),
        format: t.format,
        source_rows: None,
        destinations: t
            .destinations
            .iter()
            .map(|d| match d {
                DestPlan::Done(rows) => DestResult {
                    rows: Some(*rows),
                    ..DestResult::new(Status::AlreadyDone)
                },
                DestPlan::Refused(e) => DestResult {
                    error: Some(e.clone().prefixed(&format!("table {}: ", t.table))),
                    ..DestResult::new(Status::Failed)
                },
                DestPlan::Copy { .. } => DestResult::new(Status::NotStarted),
            })
            .collect(),
        notices: Vec::new(),
        notices_dropped: 0,
    }
}

fn work(shared: &Shared<'_>, worker: usize) {
    let mut conns = Conns {
        source: None,
        dests: shared.destinations.iter().map(|_| None).collect(),
    };
    while let Some(i) = shared.next() {
        let _flight = InFlight(shared);
        let t = &shared.plan.tables[i];
        (shared.events)(Event::TableStarted {
            worker,
            table: t.table.clone(),
            size: t.bytes,
        });
        if let Some(g) = shared.group_of[i] {
            let group = &shared.plan.groups[g];
            let mut reports = copy_group(shared, worker, group, &mut conns);
            if let Some(first) = reports.first_mut() {
                take_notices(&mut conns, first);
            }
            for (&m, report) in group.members.iter().zip(reports) {
                finish_table(shared, worker, m, report);
            }
        } else {
            let mut report = copy_table(shared, worker, i, &mut conns);
            take_notices(&mut conns, &mut report);
            finish_table(shared, worker, i, report);
        }
    }
}

/// A table (or group) a worker took: when it is over, the tables waiting for it may start. A
/// worker that panics (a bug, or the caller's `events` callback) stops the job, so that the
/// other workers end instead of waiting for ever for a table that will not finish; the panic
/// then reaches `run`'s caller.
struct InFlight<'s, 'a>(&'s Shared<'a>);

impl Drop for InFlight<'_, '_> {
    fn drop(&mut self) {
        if thread::panicking() {
            self.0
                .stop("a worker of the job panicked (see the message above)".to_owned());
        }
        self.0.running.fetch_sub(1, Ordering::SeqCst);
        self.0.finished();
    }
}

/// Records how table `i` went (and stops the job on its failure under the default policy).
fn finish_table(shared: &Shared<'_>, worker: usize, i: usize, report: TableReport) {
    let t = &shared.plan.tables[i];
    if !shared.options.keep_going
        && let Some((d, r)) = report.destinations.iter().enumerate().find(|(_, r)| {
            matches!(
                r.status,
                Status::Failed | Status::InDoubt | Status::PartlyCommitted
            )
        })
    {
        // The source's failure, every destination's alike, is the source's (it named
        // destination 1 and its CONN).
        let of_source = r
            .error
            .as_ref()
            .filter(|e| e.message.starts_with("source: "));
        let stopped = match of_source {
            Some(e) => format!(
                "table {}, source ({}): {}",
                t.table,
                shared.source.name,
                TableError {
                    message: e.message["source: ".len()..].to_owned(),
                    ..e.clone()
                }
            ),
            None => {
                let said = |r: &DestResult| {
                    (r.error.as_ref())
                        .map_or_else(|| r.status.name().to_owned(), ToString::to_string)
                };
                // The same error on every destination: said of all, not of the first alone
                // (recheck74 F4).
                let alike = report
                    .destinations
                    .iter()
                    .filter(|o| said(o) == said(r))
                    .count();
                match alike == report.destinations.len() && alike > 1 {
                    true => format!(
                        "table {} on every destination ({alike}): {}",
                        t.table,
                        said(r)
                    ),
                    false => format!(
                        "table {} on destination {} ({}): {}",
                        t.table,
                        d + 1,
                        shared.destinations[d].name,
                        said(r)
                    ),
                }
            }
        };
        shared.stop(stopped);
    }
    shared
        .reports
        .lock()
        .unwrap_or_else(PoisonError::into_inner)[i] = Some(report.clone());
    shared.finished();
    (shared.events)(Event::TableFinished { worker, report });
}

/// Why a healthy destination's copy of a table was rolled back: the job stopped (another table
/// failed under the default policy).
pub(super) const JOB_STOPPED: &str = "the job stopped";

/// Why a healthy destination's copy of a table was rolled back: it failed on another destination
/// (default policy).
pub(super) const OTHER_FAILED: &str = "the table failed on another destination";

/// Begins the source's transaction in `snapshot` (the job's, or a split table's own).
pub(super) fn begin_source(
    shared: &Shared<'_>,
    conn: &mut Connection,
    snapshot: Option<&str>,
    tables: &[&TablePlan],
) -> Result<(), TableError> {
    conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .map_err(|e| shared.describe(&e))?;
    if let Some(id) = snapshot {
        conn.execute(&format!("SET TRANSACTION SNAPSHOT {}", literal(id)))
            .map_err(|e| {
                let error = shared.describe(&e);
                if shared.plan.snapshot.as_deref() == Some(id) {
                    // The session that exported it ended (terminated, its server restarted):
                    // nothing to mend (its 22023 is no bad value of the user's), a rerun plans
                    // with a new one.
                    TableError::new(format!(
                        "cannot import the job's snapshot (the session that exported it has \
                         ended; --resume takes a new one): {error}"
                    ))
                } else {
                    error.prefixed("cannot import the table's snapshot: ")
                }
            })?;
    }
    // Under the job's snapshot, whose session holds its tables locked: a DDL waiting for that
    // lock is not waited for (it waits for the job: neither would ever move). Without a
    // snapshot (`--no-snapshot`; a split table's counting session, which exports one for its
    // ranges), the lock comes before the transaction's own snapshot, its first query.
    let job_snapshot = snapshot.is_some() && snapshot == shared.plan.snapshot.as_deref();
    let locked = tables
        .iter()
        .filter(|t| (job_snapshot || snapshot.is_none()) && t.locked)
        .map(|t| (&t.table, t.kind.as_str()));
    if let Some(lock) = crate::sql::lock_as_worker(locked, job_snapshot) {
        conn.execute(&lock).map_err(|e| {
            let error = shared.describe(&e);
            if error.sqlstate.as_deref() == Some("55P03") {
                error.prefixed(
                    "a statement on the source waits for an exclusive lock on the table (an \
                     ALTER TABLE, TRUNCATE, DROP, VACUUM FULL or LOCK), queued behind the lock \
                     this job holds on it to its end: copied now, the copy would wait for that \
                     statement and the statement for the job, for ever; the table is left for \
                     --resume once that statement is done or cancelled: ",
                )
            } else {
                error
            }
        })?;
    }
    // Without the job's snapshot, the tables as the plan saw them, now that they are locked (a
    // partition detached, or a column added, after planning: its rows copied by nobody, or the
    // column left out, exit 0). The transaction's snapshot is taken here, after the locks.
    if snapshot.is_none() {
        changed_since_planned(shared, conn, tables)?;
    }
    // After the snapshot's import, which must come first in the transaction.
    // Tables read as pg_dump reads them (`regclass` values schema-qualified); not a view.
    if tables.iter().all(|t| crate::sql::reads_pinned(&t.kind)) {
        conn.execute(crate::sql::PIN_SEARCH_PATH)
            .map_err(|e| shared.describe(&e))?;
    }
    // A binary copy's columns, of the types the plan read.
    for guard in tables.iter().filter_map(|t| t.source_guard.as_deref()) {
        conn.execute(guard).map_err(|e| shared.describe(&e))?;
    }
    pass_data_encoding(shared, conn, tables)
}

/// Under `--no-snapshot`, whether `tables` (locked) are still what the plan read: the same
/// relations covered (partitions), the same columns; a table changed since fails, to be
/// copied again as it is then.
fn changed_since_planned(
    shared: &Shared<'_>,
    conn: &mut Connection,
    tables: &[&TablePlan],
) -> Result<(), TableError> {
    let plan = shared.plan;
    let names = || tables.iter().map(|t| &t.table);
    let covers = super::planning::source_covers(conn, names());
    let columns = super::planning::source_columns(conn, names());
    let changed = |table: &String, kind: &str| {
        let covered = covers.as_ref().and_then(|now| {
            let now = now.iter().find(|(t, _)| t == table)?;
            let then = plan.covers.iter().find(|(t, _)| t == table)?;
            // A partitioned table's tree, else the table itself (schema45 F2: a table renamed
            // away and another made under its name was said to be a partition's change).
            let what = match kind {
                "p" => "a partition attached or detached",
                _ => "another table of its name now: renamed, or dropped and made again",
            };
            (now.1 != then.1).then_some(what)
        });
        let columned = columns.as_ref().and_then(|now| {
            let now = now.iter().find(|(t, _)| t == table)?;
            let then = plan.columns.iter().find(|(t, _)| t == table)?;
            (now.1 != then.1).then_some("a column added, dropped or renamed")
        });
        covered.or(columned)
    };
    for t in tables {
        let table = t.table.to_string();
        if let Some(what) = changed(&table, &t.kind) {
            return Err(TableError::new(format!(
                // (Its callers say "source: " before it.)
                "{table} changed since the job planned ({what}): copied now, its rows \
                 or a column would be left out; not copied (--resume copies it as it is then)"
            )));
        }
    }
    Ok(())
}

/// Begins destination `d`'s transaction for `tables`, their data to pass in the servers'
/// shared encoding where it may ([`pass_data_encoding`]), and records its id with each table
/// it copies there ([`StateFile::transaction`](crate::state::StateFile::transaction)).
pub(super) fn begin_destination(
    shared: &Shared<'_>,
    conn: &mut Connection,
    d: usize,
    tables: &[&TablePlan],
) -> Result<(), TableError> {
    conn.execute("BEGIN").map_err(|e| shared.describe(&e))?;
    let xid = crate::resume::xid(conn)?;
    let copied: Vec<String> = (tables.iter())
        .filter(|t| matches!(t.destinations[d], DestPlan::Copy { .. }))
        .map(|t| t.table.to_string())
        .collect();
    let copied: Vec<&str> = copied.iter().map(String::as_str).collect();
    (shared.state.transaction(&copied, &shared.plan.keys[d], xid))
        .map_err(|e| TableError::new(format!("state file: {e}")))?;
    pass_data_encoding(shared, conn, tables)
}

/// In a transaction of `tables`' copy, `SET LOCAL client_encoding` to the encoding every server
/// holds ([`Options::data_encoding`](super::Options::data_encoding)), where every statement
/// of theirs is ASCII; the session is back in UTF8 when the transaction ends.
fn pass_data_encoding(
    shared: &Shared<'_>,
    conn: &mut Connection,
    tables: &[&TablePlan],
) -> Result<(), TableError> {
    let Some(encoding) = tables.first().and_then(|t| t.data_encoding.as_ref()) else {
        return Ok(());
    };
    if !tables.iter().all(|t| t.speaks_ascii()) {
        return Ok(());
    }
    // The server's own name for it: letters, digits and '_' only.
    let sql = format!("SET LOCAL client_encoding = '{encoding}'");
    conn.execute(&sql).map_err(|e| shared.describe(&e))?;
    Ok(())
}

/// Where `t` was read without its lock ([`TablePlan::files`]): that its files are still the ones
/// the plan found before the snapshot. A TRUNCATE or a rewrite that committed since is not
/// MVCC-safe: the snapshot read the table empty, and its count and checksum agree with that.
pub(super) fn files_unchanged(conn: &mut Connection, t: &TablePlan) -> Result<(), TableError> {
    let Some(before) = &t.files else {
        return Ok(());
    };
    if crate::identity::table_files(conn, &t.table).as_ref() == Some(before) {
        return Ok(());
    }
    Err(TableError::new(format!(
        "source: {} was truncated or rewritten (TRUNCATE, ALTER TABLE, VACUUM FULL, CLUSTER), \
         or a partition of it attached or detached, while the job read it, and its role may \
         not lock it first (SELECT on its columns only): what the copy read may be none of its \
         rows, or not its partitions' as its snapshot saw them; not committed (--resume copies \
         it; SELECT on the table lets the job lock it)",
        t.table
    )))
}

/// Copies one table to every destination that needs it; under verify, compares it on those
/// where an earlier run did it ([`verify_done`]).
fn copy_table(shared: &Shared<'_>, worker: usize, i: usize, conns: &mut Conns) -> TableReport {
    let t = &shared.plan.tables[i];
    // The source's checksum, if the copy computed one.
    let mut source_sum = None;
    let mut report = if !copies_any(t) {
        unstarted(t)
    } else if t.ranges.is_empty() {
        copy_whole(shared, worker, t, conns, &mut source_sum)
    } else {
        copy_split(shared, worker, t, conns, &mut source_sum)
    };
    give_up_stalled(shared, conns, &mut report);
    // Whatever way the copy ended, no socket timeout outlives it.
    for conn in conns
        .source
        .iter_mut()
        .chain(conns.dests.iter_mut().flatten())
    {
        shared.stall_guard(conn, false);
    }
    mark_interrupted(shared, &mut report);
    verify_done(shared, worker, t, conns, &mut source_sum, &mut report);
    shared.keep_sum(i, source_sum);
    report
}

/// The sessions of a table's copy whose statement did not end (a stall: a `BEGIN`, `TRUNCATE`
/// or COPY waiting for a lock, a server that stopped answering) are given up ([`give_up`]):
/// their statements cancelled, new sessions in their place, and what they waited for added to
/// the destination's error. A destination whose `COMMIT` is in doubt is left as it is (a cancel
/// must not decide it).
pub(super) fn give_up_stalled(shared: &Shared<'_>, conns: &mut Conns, report: &mut TableReport) {
    // What their servers said first: a session given up takes its notices with it.
    take_notices(conns, report);
    give_up(&mut conns.source, shared.source);
    for (d, slot) in conns.dests.iter_mut().enumerate() {
        let result = &mut report.destinations[d];
        // What committed there, or may have, is said already: its sessions add nothing (a
        // committed table's closed session did not make "nothing of it committed").
        if matches!(
            result.status,
            Status::InDoubt | Status::PartlyCommitted | Status::Committed
        ) {
            continue;
        }
        // (One note is enough: the ranges of a split table may each have stalled.)
        // (Nor where it may hold a prepared transaction, which outlives its session.)
        if let Some(note) = give_up(slot, &shared.destinations[d])
            && let Some(error) = &mut result.error
            && !error.holds_prepared()
            && !commit::ended_by_its_server(error.sqlstate.as_deref())
            && ![CANCELLED, ENDED, CLOSED]
                .iter()
                .any(|said| error.message.contains(said))
        {
            error.message = format!("{}; {note}", error.message);
        }
    }
}

/// After an interruption, the table's destinations that were rolled back because of it (or
/// whose statement the caller's cancel ended: SQLSTATE 57014) are [`Status::Interrupted`].
pub(super) fn mark_interrupted(shared: &Shared<'_>, report: &mut TableReport) {
    let Some(reason) = shared.options.interrupt.reason() else {
        return;
    };
    for d in &mut report.destinations {
        let cut_short = match d.status {
            Status::RolledBack => true,
            // (Not one that may hold a prepared transaction: a PREPARE the interrupt's grace
            // cut is perhaps prepared, for recover; "rolled back" it was not.)
            Status::Failed => d.error.as_ref().is_some_and(|e| {
                !e.holds_prepared()
                    && (e.sqlstate.as_deref() == Some("57014")
                        || e.message.contains(JOB_STOPPED)
                        || e.message.contains(OTHER_FAILED)
                        || e.message.contains(super::options::CONNECT_GIVEN_UP)
                        || e.message.contains(super::error::CUT_BY_INTERRUPT))
            }),
            _ => false,
        };
        if cut_short {
            // A backend its session was given up on, which may stay in its transaction, is
            // said with the statement that ends it, not "rolled back" (recheck69 F11).
            let lingering = (d.error.as_ref())
                .filter(|e| e.message.contains(super::sessions::MAY_STAY))
                .and_then(|e| {
                    Some(e.message[e.message.rfind("its backend there (")?..].to_owned())
                });
            d.status = Status::Interrupted;
            d.error = Some(TableError::new(match lingering {
                None => format!("rolled back, nothing of it committed: {reason}"),
                Some(lingering) => format!("not committed: {reason}; {lingering}"),
            }));
        }
    }
}

/// Records a table committed on destination `d` in the state file: `done`, and under
/// [`Options::verify`] only once its checksum matched the source's; else `mismatch`, which is
/// not done (a resume empties the table there and copies it again, in one transaction), and
/// the destination's error says so.
pub(super) fn record_committed(shared: &Shared<'_>, key: &str, d: usize, result: &mut DestResult) {
    let name = &shared.plan.keys[d];
    let rows = result.rows.unwrap_or(0);
    if shared.options.verify && result.unverified {
        // Committed (its `commit` line and transaction id say so), but not compared: neither
        // done nor different; a resume finds it committed and compares it again.
        let said = "committed, not recorded as done: --resume compares it again";
        match &mut result.error {
            Some(error) => error.message = format!("{}; {said}", error.message),
            None => result.error = Some(TableError::new(said)),
        }
        return;
    }
    if shared.options.verify && result.verified != Some(true) {
        record_mismatch(shared, key, d, result);
        return;
    }
    if let Err(e) = (shared.state).done(key, name, rows, result.checksum.as_deref()) {
        result.error = Some(TableError::new(format!(
            "committed, but the state file could not record it (a resume finds it committed \
             there, by the transaction id recorded before its COMMIT): {e}"
        )));
    }
}

/// Advances destination `d`'s sequences of `t` (in its open transaction, `conn`) to where the
/// source's stand, through `carrier` (each source sequence read once per table), into `result`:
/// a warning to say, or the error that fails the table there (then `false`: it must not commit).
pub(super) fn carry(
    carrier: &mut Carrier,
    stall: Option<Duration>,
    t: &TablePlan,
    d: usize,
    source: Option<&mut Connection>,
    conn: Option<&mut Connection>,
    result: &mut DestResult,
) -> bool {
    let DestPlan::Copy {
        sequences: carries, ..
    } = &t.destinations[d]
    else {
        return true;
    };
    if carries.is_empty() {
        return true;
    }
    let carried = match (source, conn) {
        (Some(source), Some(conn)) => carrier.carry(source, conn, carries).map_err(|e| {
            // A `setval` that waited out the stall timeout for its sequence's lock: cancelled
            // now, so that the ROLLBACK after it does not wait for that lock too.
            let mut error = describe_with(e.error(), stall).prefixed(&format!("{}: ", e.what()));
            if matches!(e, CarryError::Destination(_)) && !conn.is_ready() && conn.cancel().is_ok()
            {
                error.message.push_str("; its statement was cancelled");
            }
            error
        }),
        (None, _) => Err(TableError::new(
            "reading the source's sequences: no connection to the source",
        )),
        (_, None) => Err(TableError::new(
            "advancing its sequences: no connection to the destination",
        )),
    };
    match carried {
        Ok(said) => {
            let warnings = said
                .iter()
                .filter(|s| s.is_warning())
                .map(ToString::to_string);
            let warnings: Vec<String> = result.warning.take().into_iter().chain(warnings).collect();
            result.warning = (!warnings.is_empty()).then(|| warnings.join("; "));
            true
        }
        Err(e) => {
            result.fail(Status::Failed, e);
            false
        }
    }
}

/// Records that table `key` on destination `d` is committed but its checksum differs from the
/// source's (or could not be compared): `mismatch`, not done, and the destination's error says
/// what a resume does with it.
pub(super) fn record_mismatch(shared: &Shared<'_>, key: &str, d: usize, result: &mut DestResult) {
    // If this record is lost, a table copied now has no `done` record all the same; one done
    // earlier keeps its `done`, as if it had not been compared.
    let recorded = shared
        .state
        .mismatch(key, &shared.plan.keys[d], result.rows.unwrap_or(0));
    // Without --truncate the table may hold rows the job did not write (it held some before, or
    // got some since its COMMIT): a resume must not empty it on its own.
    // Other tables' rows referencing it: a resume cannot empty it alone (its TRUNCATE is
    // refused, 0A000); the way is emptying them together (the advice led to that refusal).
    let referenced = (shared.plan.tables.iter())
        .find(|t| t.table.to_string() == key)
        .is_some_and(|t| t.referenced_by.iter().any(|r| *r != key));
    // What a later resume does: empties it where the job empties its tables (it began with
    // --truncate), or one given --truncate does.
    let job_truncates =
        shared.plan.recorded.truncate || (shared.options.truncate && !shared.options.resume);
    let again = match (job_truncates, referenced) {
        (true, _) => "not recorded as done: --resume empties the table there and copies it again",
        (false, false) => {
            "not recorded as done: it may hold rows this job did not write (an append, without \
             --truncate), so --resume leaves it to you: compare it with the source and mend it \
             (a resume with --verify compares it again: done if it matches), or resume with \
             --truncate to replace it, or leave it out of the job"
        }
        (false, true) => {
            "not recorded as done: it may hold rows this job did not write (an append, without \
             --truncate), so --resume leaves it to you: compare it with the source and mend it \
             (a resume with --verify compares it again: done if it matches); other \
             tables' rows reference it, so it is replaced only with them: a resume with \
             --truncate says the one TRUNCATE that empties them together there, to run before \
             copying them again; or leave it out of the job"
        }
    };
    // One an earlier run did is no longer "already done" (cli40 F3: a script that took that
    // status for a table needing nothing missed it).
    if recorded.is_ok() && result.status == Status::AlreadyDone {
        result.status = Status::Differs;
    }
    let said = match recorded {
        Ok(()) => again.to_owned(),
        Err(e) if result.status == Status::AlreadyDone => format!(
            "the state file could not record the mismatch ({e}): it still records the table \
             as done, and a resume skips it"
        ),
        Err(_) => again.to_owned(),
    };
    match &mut result.error {
        Some(error) => error.message = format!("{}; {said}", error.message),
        None => result.error = Some(TableError::new(said)),
    }
}

/// Whether `error` only says that the copy was stopped for a failure elsewhere (another
/// destination, another range) or for the job's stop.
pub(super) fn knock_on(error: &TableError) -> bool {
    error.message.ends_with(OTHER_FAILED) || error.message.ends_with(JOB_STOPPED)
}

/// How many destinations copy `t` (not done earlier, not refused).
pub(super) fn report_targets(t: &TablePlan) -> usize {
    t.destinations
        .iter()
        .filter(|d| matches!(d, DestPlan::Copy { .. }))
        .count()
}
