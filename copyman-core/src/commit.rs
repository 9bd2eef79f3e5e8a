//! The end of a copy: the one decision that spans servers.
//!
//! When the data has moved, every destination holds it in an open transaction (and, in `copy`
//! mode, the source may hold changes of its own in one). [`Commit`] decides, sans IO, what each
//! of them runs next and what the caller is told: deferred constraints checked everywhere first,
//! then either
//!
//! * **one COMMIT after another** (the default): at the first COMMIT that fails the rest roll
//!   back, so the non-atomic window is one destination wide and the outcome names exactly which
//!   destinations committed;
//! * or **two-phase commit** ([`Options::two_phase`]): `PREPARE TRANSACTION` everywhere; only when
//!   every destination prepared is the decision handed out to be recorded durably
//!   ([`Step::Record`]), then `COMMIT PREPARED` everywhere. A failure before the decision rolls
//!   every prepared transaction back; a failure after it leaves a prepared transaction that
//!   [`recovery`] finishes as the recorded decision says.
//!
//! The source's transaction (a user's data-modifying `COPY (DELETE … RETURNING …) TO STDOUT`)
//! commits only after every destination committed, and rolls back otherwise: a failed copy changes
//! nothing on any server, and the worst a crash can leave is rows on both sides, never rows on
//! neither. Unless the caller knows it wrote nothing ([`Options::source_read_only`]), the source's
//! transaction is checked right before the first destination commits (after the destinations'
//! checks; with two-phase commit, after every PREPARE and before the decision): its deferred
//! constraints fire (`SET CONSTRAINTS ALL IMMEDIATE`) and its session is shown alive. A failure
//! there rolls every destination back ([`SourceOutcome::CheckFailed`]): its COMMIT would have
//! failed after the destinations committed. What is left is the window of the destinations'
//! COMMITs themselves (or COMMIT PREPAREDs), during which the source can still be lost. With
//! two-phase commit that window closes where the source can prepare
//! ([`Options::source_two_phase`]): the source is then a participant, `PREPARE TRANSACTION`d in
//! place of the check (a PREPARE checks deferred constraints too), named in the decision, and
//! committed prepared after it, or finished by [`recovery`] like a destination.
//! A source that wrote nothing changes nothing by committing: its COMMIT's failure is only noted
//! ([`SourceOutcome::WroteNothing`]).
//!
//! The run loop: take [`Commit::poll_step`], carry it out, report with [`Commit::handle_result`]
//! (or [`Commit::handle_recorded`]), until it returns `None`; then read [`Commit::outcome`].
//!
//! ```
//! use copyman_core::commit::{Action, Commit, Failure, Options, Party, Step};
//!
//! let mut commit: Commit<String> = Commit::new(Options::default(), &[true, true]);
//! while let Some(step) = commit.poll_step() {
//!     match step {
//!         Step::Run { party, action } => {
//!             // Run `action.sql()` on `party`'s connection; destination 2 refuses its COMMIT.
//!             let refused = party == Party::Destination(1) && action == Action::Commit;
//!             commit.handle_result(if refused {
//!                 Err(Failure::Refused("40001 could not serialize access".to_owned()))
//!             } else {
//!                 Ok(())
//!             });
//!         }
//!         Step::Record(_) => unreachable!("two-phase commit is off"),
//!         _ => unreachable!("no other steps yet"),
//!     }
//! }
//! let outcome = commit.outcome();
//! assert!(outcome.destinations[0].is_committed());
//! assert!(!outcome.destinations[1].is_committed());
//! assert!(outcome.partial());
//! ```

use std::time::Duration;

use crate::session::{DbError, TransactionStatus};

/// The prefix of every global transaction id copyman prepares: `copyman:RUN:N`.
pub const GID_PREFIX: &str = "copyman:";

/// How long an action sent again on a new session waits, at most, for the lost session's
/// backend to end while that backend holds its transaction
/// ([`Action::held_by_the_lost_backend`]): it was sent a cancel and its socket closed, so it
/// ends in a moment unless it is frozen, and then the action's refusal stands (recovery
/// finishes it).
pub const LOST_BACKEND_WAIT: Duration = Duration::from_secs(10);

/// Whether a finishing action refused on a new session is sent again ([`Action::resend`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resend {
    /// No: its refusal is its answer.
    No,
    /// After a pause ([`Resend::pause`]): the lost session's backend still holds the
    /// transaction.
    AfterPause,
    /// Once more, now, and that answer is final: the lost session's backend is gone.
    Last,
}

impl Resend {
    /// How long to pause before [`Resend::AfterPause`]'s next sending, `waited` after the
    /// first: a quarter of that, from 50 ms to 1 s — a lost backend that stays frozen is asked
    /// a few times a second, not twenty (signals65 F1: twenty refusals a second filled its
    /// server's log for as long as it was frozen).
    ///
    /// ```
    /// use std::time::Duration;
    /// use copyman_core::commit::Resend;
    ///
    /// assert_eq!(Resend::pause(Duration::ZERO), Duration::from_millis(50));
    /// assert_eq!(Resend::pause(Duration::from_secs(2)), Duration::from_millis(500));
    /// assert_eq!(Resend::pause(Duration::from_secs(30)), Duration::from_secs(1));
    /// ```
    pub fn pause(waited: Duration) -> Duration {
        (waited / 4).clamp(Duration::from_millis(50), Duration::from_secs(1))
    }
}

/// Who a step is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Party {
    /// The source's transaction.
    Source,
    /// Destination `n` (0-based, in the order given to [`Commit::new`]).
    Destination(usize),
}

/// What a party runs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Check deferred constraints now: `SET CONSTRAINTS ALL IMMEDIATE`.
    CheckConstraints,
    /// `COMMIT`.
    Commit,
    /// `ROLLBACK`. A party whose connection is gone may skip it: the server rolls back.
    Rollback,
    /// `PREPARE TRANSACTION 'gid'`.
    Prepare(String),
    /// `COMMIT PREPARED 'gid'`.
    CommitPrepared(String),
    /// `ROLLBACK PREPARED 'gid'`.
    RollbackPrepared(String),
}

impl Action {
    /// The SQL that carries it out on a server.
    pub fn sql(&self) -> String {
        match self {
            Self::CheckConstraints => "SET CONSTRAINTS ALL IMMEDIATE".to_owned(),
            Self::Commit => "COMMIT".to_owned(),
            Self::Rollback => "ROLLBACK".to_owned(),
            Self::Prepare(gid) => format!("PREPARE TRANSACTION {}", quote(gid)),
            Self::CommitPrepared(gid) => format!("COMMIT PREPARED {}", quote(gid)),
            Self::RollbackPrepared(gid) => format!("ROLLBACK PREPARED {}", quote(gid)),
        }
    }
}

impl Action {
    /// Whether the action has anything to do on a session whose last ReadyForQuery reported
    /// `status`. A `ROLLBACK` has something to roll back only inside a transaction block (open or
    /// failed): a `PREPARE TRANSACTION` that failed ended the transaction already (PostgreSQL
    /// turns it into a rollback), and a `ROLLBACK` sent then only makes the server warn
    /// `there is no transaction in progress` (SQLSTATE 25P01). A driver skips an action that is
    /// not due and reports it done: the transaction is rolled back either way. Every other
    /// action is due whatever the status (the server's answer says how it went).
    pub fn is_due(&self, status: TransactionStatus) -> bool {
        match self {
            Self::Rollback => status != TransactionStatus::Idle,
            _ => true,
        }
    }

    /// Whether its answer is waited for whatever comes, an interrupt too (a signal given up on a
    /// silent server): it may commit, or it decides what recovery does (`COMMIT`,
    /// `COMMIT`/`ROLLBACK PREPARED`), and only the answer says which. A check of the constraints
    /// or a `ROLLBACK` cut short commits nothing: its closed session rolls back. Nor does a
    /// `PREPARE TRANSACTION`: no decision is made before every PREPARE is answered, so one cut
    /// short (its answer lost, [`Failure::Lost`]) may at most be prepared, and is rolled back
    /// prepared on a new session, or by recovery (a frozen backend that prepares it later) — a
    /// signal no longer waits for ever on a backend that never answers it.
    pub fn awaited(&self) -> bool {
        !matches!(
            self,
            Self::CheckConstraints | Self::Rollback | Self::Prepare(_)
        )
    }

    /// Whether the action names its transaction by its global id (`COMMIT PREPARED`, `ROLLBACK
    /// PREPARED`), so that any session of its database can carry it out: one whose session was
    /// lost (a network blip, a terminated backend) is sent again on a new session, and the run
    /// finishes it itself instead of leaving it prepared, holding its locks, for recovery. (A
    /// `COMMIT` or a `PREPARE` belongs to its session: lost with it.)
    pub fn finishes_anywhere(&self) -> bool {
        matches!(self, Self::CommitPrepared(_) | Self::RollbackPrepared(_))
    }

    /// Whether this action, refused with SQLSTATE `code` on a new session
    /// ([`finishes_anywhere`](Self::finishes_anywhere)) while the lost session's backend still
    /// runs, may be refused only because of that backend, and is sent again once it ended (for
    /// [`LOST_BACKEND_WAIT`] at most): the transaction busy (55000), its `PREPARE TRANSACTION`
    /// or `COMMIT PREPARED` still running there — a wait for a synchronous standby, which the
    /// cancel sent as its session was given up ends in a moment; or not prepared yet (42704),
    /// that `PREPARE` not so far yet. (A stop's `ROLLBACK PREPARED`, sent on a new session a
    /// moment before the lost `PREPARE`'s backend took its cancel, found the transaction busy
    /// and left it prepared: the run said it in doubt.)
    ///
    /// ```
    /// use copyman_core::commit::Action;
    ///
    /// let rollback = Action::RollbackPrepared("copyman:1-2-3:1".into());
    /// assert!(rollback.held_by_the_lost_backend(Some("55000")));
    /// assert!(rollback.held_by_the_lost_backend(Some("42704")));
    /// assert!(!rollback.held_by_the_lost_backend(Some("42501")));
    /// assert!(!Action::Commit.held_by_the_lost_backend(Some("55000")));
    /// ```
    pub fn held_by_the_lost_backend(&self, code: Option<&str>) -> bool {
        self.finishes_anywhere() && matches!(code, Some("55000" | "42704"))
    }

    /// What to do next with this action, sent again on a new session and refused with SQLSTATE
    /// `code` after `waited` since its first sending there, where `lost_backend_alive` asks
    /// whether the lost session's backend still runs (asked only where it matters): send it
    /// again after a pause while that backend holds the transaction
    /// ([`held_by_the_lost_backend`](Self::held_by_the_lost_backend), [`LOST_BACKEND_WAIT`] at
    /// most); once that backend is gone, send it once more, whose answer is final — a refusal
    /// seen before it ended says what the transaction was then, not now (a `ROLLBACK PREPARED`
    /// found busy a moment before the lost `PREPARE`'s backend ended left it prepared, and one
    /// found "not prepared yet" a moment before that `PREPARE` marked it prepared would take it
    /// for gone).
    ///
    /// ```
    /// use std::time::Duration;
    /// use copyman_core::commit::{Action, Resend};
    ///
    /// let rollback = Action::RollbackPrepared("copyman:1-2-3:1".into());
    /// let now = Duration::from_secs(1);
    /// assert_eq!(rollback.resend(Some("55000"), now, || true), Resend::AfterPause);
    /// assert_eq!(rollback.resend(Some("55000"), now, || false), Resend::Last);
    /// assert_eq!(rollback.resend(Some("42501"), now, || true), Resend::No);
    /// assert_eq!(rollback.resend(Some("55000"), Duration::from_secs(60), || true), Resend::No);
    /// ```
    pub fn resend(
        &self,
        code: Option<&str>,
        waited: Duration,
        lost_backend_alive: impl FnOnce() -> bool,
    ) -> Resend {
        if !self.held_by_the_lost_backend(code) || waited >= LOST_BACKEND_WAIT {
            Resend::No
        } else if lost_backend_alive() {
            Resend::AfterPause
        } else {
            Resend::Last
        }
    }

    /// Whether a commit whose connection broke before its answer took effect all the same, as
    /// the `notices` the server sent while it ran say: a wait for a synchronous standby given up
    /// (the session terminated, or the wait cancelled) is a WARNING from the server's
    /// `SyncRepWaitForLSN` — "The transaction has already committed locally, but might not have
    /// been replicated to the standby." — sent only after the commit is durable locally. Known
    /// by the routine's name, which is not translated (the detail is, under `lc_messages`),
    /// or by that detail in English. Without such a notice, a lost commit stays in doubt.
    pub fn committed_despite_loss(&self, notices: &[DbError]) -> bool {
        matches!(self, Self::Commit | Self::CommitPrepared(_))
            && notices.iter().any(|n| {
                n.routine.as_deref() == Some("SyncRepWaitForLSN")
                    || n.detail.as_deref().is_some_and(|d| {
                        d.starts_with("The transaction has already committed locally")
                    })
            })
    }
}

/// A SQL string literal (the ids copyman makes hold no quote, but a recovered one might).
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// What the caller does next.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
#[non_exhaustive]
pub enum Step {
    /// Run `action` on `party`, then report with [`Commit::handle_result`].
    Run {
        /// Whose transaction.
        party: Party,
        /// What to run.
        action: Action,
    },
    /// Record the decision durably (written and fsynced), then report with
    /// [`Commit::handle_recorded`]. Two-phase commit only; nothing is committed before it.
    Record(Decision),
    /// Record that the run (this id) rolls back what it prepared (`abort RUN`), durably if the
    /// driver can, before the first `ROLLBACK PREPARED`; nothing to report back (the rollback
    /// goes on either way). Two-phase commit only. A recovery that then finds some of the run's
    /// transactions gone and some still prepared (the run died in the middle of its rollback)
    /// knows they were rolled back, not committed, and rolls back the rest; and a decision can
    /// never be recorded after it.
    RecordAbort(String),
    /// Record that these transactions of the run (its id, their global ids) will never be
    /// prepared (`out RUN GID…`), durably if the driver can, before the next `PREPARE`; nothing
    /// to report back. Two-phase commit under keep-going only: a destination that failed (its
    /// copy, its check, its refused `PREPARE`) is not prepared while those after it are, and a
    /// recovery of a run that died before its decision would take that gap for a transaction
    /// that was prepared and ended since — perhaps committed, under a decision in a log it was
    /// not given ([`partly_ended`]) — and refuse to roll the rest back. Unrecorded (a full
    /// disk), recovery refuses so: the safe side.
    RecordOut {
        /// The run's id.
        run: String,
        /// The global ids of the destinations that will never be prepared.
        gids: Vec<String>,
    },
    /// Record that this transaction of the run is being committed prepared (`committing RUN
    /// GID`), best effort, before its `COMMIT PREPARED` is sent; nothing to report back.
    /// Two-phase commit only. A recovery that finds one of the run's decided transactions gone
    /// from its server then knows whether the run sent its COMMIT PREPARED (it committed it, in
    /// all likelihood) or never did: then someone else ended it — a `ROLLBACK PREPARED` by hand,
    /// a failover to a standby that never had it — and its rows may not be there.
    RecordCommitting {
        /// The run's id.
        run: String,
        /// The transaction's global id.
        gid: String,
    },
    /// Record that the server answered this transaction's `COMMIT PREPARED` with an error
    /// (`refused RUN GID run`), best effort; nothing to report back. Two-phase commit only. The
    /// statement did not run: a recovery that finds the transaction gone (a `ROLLBACK
    /// PREPARED` by hand ended it first) does not take the run's [`Step::RecordCommitting`]
    /// for its commit.
    RecordRefused {
        /// The run's id.
        run: String,
        /// The transaction's global id.
        gid: String,
    },
}

/// The two-phase commit decision, as it must be recorded before the second phase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The run's id (the middle of each global id).
    pub run: String,
    /// Every prepared destination and its global id.
    pub gids: Vec<(usize, String)>,
    /// The source's global id, when it was prepared too.
    pub source: Option<String>,
}

/// Why a party's step did not succeed, with the caller's error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure<E> {
    /// The server answered with an error, or was known to be gone before the statement was sent:
    /// the statement did not take effect.
    Refused(E),
    /// The connection broke after the statement was sent and before its answer: whether it took
    /// effect is unknown.
    Lost(E),
    /// It took effect, but what it wrote is gone since, in whole or in part, or may be: the
    /// server ran crash recovery after the transaction was prepared, which empties the UNLOGGED
    /// tables it wrote (a `COMMIT PREPARED` sent on a new session after the one that prepared
    /// it was lost). That party failed: its rows are not all there.
    Emptied(E),
}

impl<E> Failure<E> {
    fn into_error(self) -> E {
        match self {
            Self::Refused(e) | Self::Lost(e) | Self::Emptied(e) => e,
        }
    }
}

/// How the survivors of a fault are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Policy {
    /// Every destination commits, or none does (as far as a non-atomic commit allows: see the
    /// module docs). The default.
    #[default]
    AllOrNothing,
    /// Destinations that did not fail commit; the failed ones roll back.
    KeepGoing,
}

/// How a [`Commit`] runs.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// All or nothing, or keep going.
    pub policy: Policy,
    /// Two-phase commit under this run id (`[A-Za-z0-9_.-]`, at most 100 bytes); `None` for one
    /// COMMIT after another.
    pub two_phase: Option<String>,
    /// The source holds a transaction that commits only after every destination committed.
    pub source: bool,
    /// The source's transaction wrote nothing (a `READ ONLY` transaction, or no transaction id
    /// was assigned to it before the commit began): it is not checked before the destinations
    /// commit, and its COMMIT's failure changes nothing. `false` (the default) when unknown.
    pub source_read_only: bool,
    /// With [`Options::two_phase`], the source's server allows prepared transactions: a source
    /// that may have written is prepared (global id [`Commit::source_gid`]) and committed under
    /// the decision like a destination, instead of only checked before it.
    pub source_two_phase: bool,
    /// The copy itself failed: everything rolls back, nothing is checked or committed.
    pub copy_failed: bool,
}

impl Options {
    /// Options with this policy, everything else off.
    pub fn new(policy: Policy) -> Self {
        Self {
            policy,
            ..Self::default()
        }
    }
}

/// How a destination's transaction ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome<E> {
    /// Committed: the rows are there.
    Committed,
    /// It was fine, but the run failed: rolled back, nothing kept.
    RolledBack,
    /// It failed (its own error, earlier or in a step here): nothing kept.
    Failed(Option<E>),
    /// The connection broke during its COMMIT: whether the rows are there is unknown.
    InDoubt(E),
    /// Prepared, and the recorded decision is commit, but `COMMIT PREPARED` was not confirmed:
    /// `copyman recover` (see [`recovery`]) commits it. The rows are not visible until then.
    CommitPending {
        /// The prepared transaction's global id.
        gid: String,
        /// Why the commit was not confirmed.
        error: E,
        /// Its `COMMIT PREPARED` was sent and its answer lost (the connection broke): it may
        /// have committed already (commit68 F5: said "COMMIT PREPARED failed" of one its
        /// server had run).
        sent: bool,
    },
    /// Possibly prepared, and the decision is rollback, but `ROLLBACK PREPARED` was not
    /// confirmed: nothing is visible; `copyman recover` removes the prepared transaction (it
    /// holds its locks until then).
    RollbackPending {
        /// The prepared transaction's global id.
        gid: String,
        /// Why the rollback was not confirmed.
        error: Option<E>,
    },
}

impl<E> Outcome<E> {
    /// Whether the rows are committed there.
    pub fn is_committed(&self) -> bool {
        matches!(self, Self::Committed)
    }

    /// Whether the rows may be there or will be after recovery (committed, in doubt, pending).
    pub fn may_hold_rows(&self) -> bool {
        matches!(
            self,
            Self::Committed | Self::InDoubt(_) | Self::CommitPending { .. }
        )
    }

    /// Its error, if it has one.
    pub fn error(&self) -> Option<&E> {
        match self {
            Self::Committed | Self::RolledBack => None,
            Self::Failed(e) | Self::RollbackPending { error: e, .. } => e.as_ref(),
            Self::InDoubt(e) | Self::CommitPending { error: e, .. } => Some(e),
        }
    }

    /// A short name: `committed`, `rolled back`, `failed`, `in doubt`, `commit pending`,
    /// `rollback pending`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Committed => "committed",
            Self::RolledBack => "rolled back",
            Self::Failed(_) => "failed",
            Self::InDoubt(_) => "in doubt",
            Self::CommitPending { .. } => "commit pending",
            Self::RollbackPending { .. } => "rollback pending",
        }
    }
}

/// How the source's transaction ended (when it had one).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SourceOutcome<E> {
    /// Committed (every destination had committed).
    Committed,
    /// Rolled back (not every destination committed).
    RolledBack,
    /// Its COMMIT failed after every destination committed: the destinations hold the rows and
    /// the source's own changes (if the statement made any) are undone.
    CommitFailed(E),
    /// Its COMMIT was sent after every destination committed, and the connection broke before
    /// the answer: whether the source's own changes committed is unknown (a move's `DELETE …
    /// RETURNING` may be committed: the rows then are on the destinations only). Check the
    /// source before undoing anything.
    InDoubt(E),
    /// Its check before the destinations' commit failed (a deferred constraint, a session the
    /// server ended): every destination was rolled back, nothing was committed anywhere.
    CheckFailed(E),
    /// It wrote nothing ([`Options::source_read_only`]): its transaction ended without changing
    /// anything, whether its COMMIT succeeded (`None`) or failed (the error, for a note).
    WroteNothing(Option<E>),
    /// Prepared, and the recorded decision is commit, but `COMMIT PREPARED` was not confirmed:
    /// `copyman recover` given the source commits it (its changes are not visible until then).
    CommitPending {
        /// The prepared transaction's global id.
        gid: String,
        /// Why the commit was not confirmed.
        error: E,
    },
    /// Possibly prepared, and the decision is rollback, but `ROLLBACK PREPARED` was not
    /// confirmed: its changes are not visible; `copyman recover` given the source removes it.
    RollbackPending {
        /// The prepared transaction's global id.
        gid: String,
        /// Why the rollback was not confirmed.
        error: Option<E>,
    },
}

/// Where the run ended, for the caller to report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report<E> {
    /// Each destination, in order.
    pub destinations: Vec<Outcome<E>>,
    /// The source's transaction, when it had one.
    pub source: Option<SourceOutcome<E>>,
    /// Why the two-phase decision could not be recorded (then nothing was committed).
    pub record_error: Option<E>,
}

impl<E> Report<E> {
    /// Whether every destination committed (and the source, if it had a transaction).
    pub fn succeeded(&self) -> bool {
        !self.destinations.is_empty()
            && self.destinations.iter().all(Outcome::is_committed)
            && !matches!(
                self.source,
                Some(
                    SourceOutcome::CommitFailed(_)
                        | SourceOutcome::InDoubt(_)
                        | SourceOutcome::CommitPending { .. }
                )
            )
    }

    /// Whether nothing is or can become visible anywhere.
    pub fn nothing_committed(&self) -> bool {
        !self.destinations.iter().any(Outcome::may_hold_rows)
    }

    /// Whether some destinations hold (or may hold, or will hold after recovery) the rows and
    /// others do not: the outcome a user must hear about.
    pub fn partial(&self) -> bool {
        !self.succeeded() && !self.nothing_committed()
    }

    /// The global ids of run `run`'s transactions that certainly ended here — committed, rolled
    /// back, or failed with nothing kept: none of them is left prepared. A two-phase run that
    /// [leaves work](Self::leaves_work) records them, so that a recovery given only the servers
    /// that may still hold one does not ask for the others (commit64 F1: a run that rolled
    /// back two of three itself left a recovery of the third asking for them, exit 1, for
    /// ever). The source's only where it committed or rolled back.
    ///
    /// ```
    /// use copyman_core::commit::{Outcome, Report};
    /// let report: Report<String> = Report {
    ///     destinations: vec![
    ///         Outcome::RolledBack,
    ///         Outcome::RollbackPending { gid: "copyman:r1:2".into(), error: None },
    ///     ],
    ///     source: None,
    ///     record_error: None,
    /// };
    /// assert_eq!(report.ended_gids("r1"), ["copyman:r1:1"]);
    /// ```
    pub fn ended_gids(&self, run: &str) -> Vec<String> {
        let destinations = (self.destinations.iter().enumerate())
            .filter(|(_, o)| {
                matches!(
                    o,
                    Outcome::Committed | Outcome::RolledBack | Outcome::Failed(_)
                )
            })
            .map(|(n, _)| Commit::<E>::gid(run, n));
        let source = matches!(
            self.source,
            Some(SourceOutcome::Committed | SourceOutcome::RolledBack)
        )
        .then(|| Commit::<E>::source_gid(run));
        destinations.chain(source).collect()
    }

    /// Whether a two-phase run's report (after its decision) leaves something of the run for
    /// recovery: a transaction still prepared, or one whose end is unknown. When it leaves
    /// nothing, the run can be recorded finished and recovery need not ask for its servers.
    pub fn leaves_work(&self) -> bool {
        self.destinations.iter().any(|o| {
            matches!(
                o,
                Outcome::InDoubt(_)
                    | Outcome::CommitPending { .. }
                    | Outcome::RollbackPending { .. }
            )
        }) || matches!(
            self.source,
            Some(SourceOutcome::CommitPending { .. } | SourceOutcome::RollbackPending { .. })
        )
    }
}

#[derive(Debug)]
enum Slot<E> {
    /// In its transaction, nothing decided yet.
    Open,
    /// Prepared under this gid.
    Prepared(String),
    /// Its `PREPARE TRANSACTION` (this gid) was sent and its answer lost with the connection
    /// (the error): it may have prepared. A rollback sends `ROLLBACK PREPARED`, which a driver
    /// carries out on a new session ([`Action::finishes_anywhere`]); unfinished, recovery
    /// rolls it back (no decision names it).
    MaybePrepared(String, E),
    /// Settled.
    Done(Outcome<E>),
}

/// The step handed out and not yet answered.
#[derive(Debug)]
enum Asked {
    /// A [`Step::Run`], answered by `handle_result`.
    Run(Party, Action),
    /// A [`Step::Record`], answered by `handle_recorded`.
    Record,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Check,
    Prepare,
    /// The source's transaction is checked before anything is committed (or decided).
    SourceCheck,
    Record,
    CommitPrepared,
    Commit,
    /// Everything still open rolls back (and prepared ones are rolled back prepared).
    Abort,
    /// Destinations that failed with their transaction still open end it (`ROLLBACK`), so every
    /// connection is usable again.
    Release,
    Source,
    Done,
}

/// The commit of a copy across its destinations (and source): see the module docs.
///
/// `E` is the caller's error type, carried into the [`Report`].
#[derive(Debug)]
pub struct Commit<E> {
    options: Options,
    slots: Vec<Slot<E>>,
    /// Failed destinations whose transaction is still open.
    release: Vec<bool>,
    phase: Phase,
    /// The next destination the phase looks at.
    next: usize,
    /// The step handed out and not yet answered.
    pending: Option<Asked>,
    source: Option<SourceOutcome<E>>,
    /// The source's global id once it may be prepared (sent PREPARE), until it is settled.
    source_prepared: Option<String>,
    /// The decision was recorded.
    decided: bool,
    record_error: Option<E>,
    /// [`Step::RecordAbort`] was handed out.
    abort_said: bool,
    /// A `ROLLBACK PREPARED` held back until the abort is recorded, or a `PREPARE` until the
    /// destinations below it that will never be prepared are ([`Step::RecordOut`]).
    deferred: Option<(Party, Action)>,
    /// Each destination [`Step::RecordOut`] named.
    out_said: Vec<bool>,
    /// The global id of the last [`Step::RecordCommitting`].
    committing: Option<String>,
    /// A `COMMIT PREPARED` the server refused, for [`Step::RecordRefused`].
    refused: Option<String>,
    /// The order the destinations commit in ([`Commit::commit_last`]).
    order: Vec<usize>,
}

impl<E> Commit<E> {
    /// A commit over destinations whose copy completed (`true`) or failed (`false`: they roll
    /// back; their error stays with the caller, their outcome is [`Outcome::Failed`]`(None)`).
    ///
    /// # Panics
    /// If `options.two_phase` holds a run id that is empty, longer than 100 bytes or has
    /// characters other than ASCII letters, digits, `_`, `.` and `-` (a caller's bug: the id goes
    /// into SQL and into every global id).
    pub fn new(options: Options, completed: &[bool]) -> Self {
        if let Some(run) = &options.two_phase {
            assert!(
                valid_run_id(run),
                "a two-phase run id is 1 to 100 of [A-Za-z0-9_.-], got {run:?}"
            );
        }
        let slots = completed
            .iter()
            .map(|&ok| {
                if ok {
                    Slot::Open
                } else {
                    Slot::Done(Outcome::Failed(None))
                }
            })
            .collect();
        let mut commit = Self {
            phase: if options.copy_failed {
                Phase::Abort
            } else {
                Phase::Check
            },
            release: completed.iter().map(|&ok| !ok).collect(),
            options,
            slots,
            next: 0,
            pending: None,
            source: None,
            source_prepared: None,
            decided: false,
            record_error: None,
            abort_said: false,
            deferred: None,
            out_said: vec![false; completed.len()],
            committing: None,
            refused: None,
            order: (0..completed.len()).collect(),
        };
        // Nothing completed: nothing to check or commit.
        if !commit.slots.iter().any(|s| matches!(s, Slot::Open)) {
            commit.phase = Phase::Abort;
        }
        commit
    }

    /// The destinations marked `last` commit after the others, each group in its order: a
    /// file, whose rename is the COMMIT least likely to fail, replaces the old one only once
    /// every server committed — a server's COMMIT that fails first then leaves it as it was
    /// (commit46 F3: a file named before a failing server was replaced, exit 4, by the order
    /// of `--to` alone). Checks, PREPAREs and rollbacks keep the destinations' order.
    ///
    /// ```
    /// use copyman_core::commit::{Action, Commit, Options, Party, Policy, Step};
    ///
    /// let mut commit: Commit<String> =
    ///     Commit::new(Options::new(Policy::AllOrNothing), &[true, true]).commit_last(&[true, false]);
    /// let mut order = Vec::new();
    /// while let Some(step) = commit.poll_step() {
    ///     if let Step::Run { party: Party::Destination(n), action: Action::Commit } = step {
    ///         order.push(n);
    ///     }
    ///     commit.handle_result(Ok(()));
    /// }
    /// assert_eq!(order, [1, 0]);
    /// ```
    #[must_use]
    pub fn commit_last(mut self, last: &[bool]) -> Self {
        let is_last = |n: &usize| last.get(*n).copied().unwrap_or(false);
        let (first, then): (Vec<usize>, Vec<usize>) = self.order.iter().partition(|n| !is_last(n));
        self.order = first.into_iter().chain(then).collect();
        self
    }

    /// The global id of destination `n` in run `run`: `copyman:RUN:N` (1-based N).
    pub fn gid(run: &str, n: usize) -> String {
        format!("{GID_PREFIX}{run}:{}", n + 1)
    }

    /// The global id of the source's transaction in run `run`: `copyman:RUN:0`.
    pub fn source_gid(run: &str) -> String {
        format!("{GID_PREFIX}{run}:0")
    }

    /// The next step, or `None` when everything is settled.
    ///
    /// # Panics
    /// If the previous step was not answered yet.
    pub fn poll_step(&mut self) -> Option<Step> {
        assert!(
            self.pending.is_none(),
            "poll_step called before the last step was answered"
        );
        if let Some((party, action)) = self.deferred.take() {
            return Some(self.ask(party, action));
        }
        if let (Some(gid), Some(run)) = (self.refused.take(), &self.options.two_phase) {
            return Some(Step::RecordRefused {
                run: run.clone(),
                gid,
            });
        }
        loop {
            match self.phase {
                Phase::Done => return None,
                Phase::Record => {
                    let run = self.options.two_phase.clone().expect("two-phase run");
                    // Those the decision leaves out and no `out` line named yet — one whose
                    // PREPARE's answer was lost (it may be prepared), one that failed past the
                    // last PREPARE — said first: a recovery that finds such a transaction
                    // prepared, named by the run and not by its decision, took the log for one
                    // that contradicts itself and left it holding its locks (commit50 F1).
                    let out: Vec<usize> = (0..self.slots.len())
                        .filter(|&k| {
                            matches!(
                                self.slots[k],
                                Slot::MaybePrepared(..) | Slot::Done(Outcome::Failed(_))
                            ) && !self.out_said[k]
                        })
                        .collect();
                    if !out.is_empty() && self.slots.iter().any(|s| matches!(s, Slot::Prepared(_)))
                    {
                        let gids = out.iter().map(|&k| Self::gid(&run, k)).collect();
                        for k in out {
                            self.out_said[k] = true;
                        }
                        return Some(Step::RecordOut { run, gids });
                    }
                    let gids = self
                        .slots
                        .iter()
                        .enumerate()
                        .filter_map(|(i, s)| match s {
                            Slot::Prepared(gid) => Some((i, gid.clone())),
                            _ => None,
                        })
                        .collect();
                    self.pending = Some(Asked::Record);
                    let source = self.source_prepared.clone();
                    return Some(Step::Record(Decision { run, gids, source }));
                }
                Phase::SourceCheck => {
                    self.next = 0;
                    self.phase = if self.options.two_phase.is_some() {
                        Phase::Record
                    } else {
                        Phase::Commit
                    };
                    if self.options.source && !self.options.source_read_only {
                        // Prepared (to commit under the decision) only when every destination
                        // is: under keep-going some may not be, and then the source must roll
                        // back (its rows stay; never on neither side), only checked here.
                        let all_prepared =
                            self.slots.iter().all(|s| matches!(s, Slot::Prepared(_)));
                        let action = match &self.options.two_phase {
                            Some(run) if self.options.source_two_phase && all_prepared => {
                                Action::Prepare(Self::source_gid(run))
                            }
                            _ => Action::CheckConstraints,
                        };
                        return Some(self.ask(Party::Source, action));
                    }
                }
                Phase::Source => {
                    self.phase = Phase::Done;
                    if let Some(gid) = self.source_prepared.clone() {
                        // Prepared: the recorded decision (or its absence) says which way.
                        let action = if self.decided {
                            Action::CommitPrepared(gid)
                        } else {
                            Action::RollbackPrepared(gid)
                        };
                        return Some(self.ask(Party::Source, action));
                    }
                    if self.options.source {
                        let action = if self.destinations_all_committed()
                            && !matches!(self.source, Some(SourceOutcome::CheckFailed(_)))
                        {
                            Action::Commit
                        } else {
                            Action::Rollback
                        };
                        return Some(self.ask(Party::Source, action));
                    }
                }
                phase => {
                    if let Some(step) = self.next_in(phase) {
                        return Some(step);
                    }
                    self.phase = self.after(phase);
                    self.next = 0;
                }
            }
        }
    }

    /// The next destination step of `phase`, if any is left.
    fn next_in(&mut self, phase: Phase) -> Option<Step> {
        while self.next < self.slots.len() {
            let n = match phase {
                Phase::Commit | Phase::CommitPrepared => self.order[self.next],
                _ => self.next,
            };
            self.next += 1;
            let action = match (phase, &self.slots[n]) {
                (Phase::Check, Slot::Open) => Action::CheckConstraints,
                (Phase::Prepare, Slot::Open) => {
                    let run = self.options.two_phase.clone().expect("two-phase run");
                    let prepare = Action::Prepare(Self::gid(&run, n));
                    // Those below it that failed, never to be prepared, said first.
                    let out: Vec<usize> = (0..n)
                        .filter(|&k| {
                            matches!(self.slots[k], Slot::Done(Outcome::Failed(_)))
                                && !self.out_said[k]
                        })
                        .collect();
                    if !out.is_empty() {
                        let gids = out.iter().map(|&k| Self::gid(&run, k)).collect();
                        for k in out {
                            self.out_said[k] = true;
                        }
                        self.deferred = Some((Party::Destination(n), prepare));
                        return Some(Step::RecordOut { run, gids });
                    }
                    prepare
                }
                (Phase::CommitPrepared, Slot::Prepared(gid)) => Action::CommitPrepared(gid.clone()),
                (Phase::Commit, Slot::Open) => Action::Commit,
                (Phase::Abort, Slot::Open) => Action::Rollback,
                (Phase::Abort, Slot::Prepared(gid) | Slot::MaybePrepared(gid, _)) => {
                    Action::RollbackPrepared(gid.clone())
                }
                (Phase::Release, _) if self.release[n] => {
                    self.release[n] = false;
                    Action::Rollback
                }
                // Left out of the decision (keep-going) after its PREPARE's answer was lost,
                // recorded out: rolled back prepared now, on a new session, rather than left
                // holding its locks for recovery (recheck71 F3: a job's given-up PREPAREs were).
                (Phase::Release, Slot::MaybePrepared(gid, _)) => {
                    Action::RollbackPrepared(gid.clone())
                }
                _ => continue,
            };
            return Some(self.ask(Party::Destination(n), action));
        }
        None
    }

    fn ask(&mut self, party: Party, action: Action) -> Step {
        // (A run decided commit rolls back only what its decision left out: not an abort.)
        if let (Action::RollbackPrepared(_), Some(run), false, false) = (
            &action,
            &self.options.two_phase,
            self.abort_said,
            self.decided,
        ) {
            self.abort_said = true;
            let run = run.clone();
            self.deferred = Some((party, action));
            return Step::RecordAbort(run);
        }
        // Said before each COMMIT PREPARED (the deferred action comes back here once more:
        // `committing` marks it said).
        if let (Action::CommitPrepared(gid), Some(run)) = (&action, &self.options.two_phase)
            && self.committing.as_ref() != Some(gid)
        {
            let step = Step::RecordCommitting {
                run: run.clone(),
                gid: gid.clone(),
            };
            self.committing = Some(gid.clone());
            self.deferred = Some((party, action));
            return step;
        }
        self.pending = Some(Asked::Run(party, action.clone()));
        Step::Run { party, action }
    }

    /// The phase after `phase` once it has gone through every destination.
    fn after(&self, phase: Phase) -> Phase {
        let any_open = self.slots.iter().any(|s| matches!(s, Slot::Open));
        match phase {
            Phase::Check if !any_open => Phase::Abort,
            Phase::Check if self.options.two_phase.is_some() => Phase::Prepare,
            Phase::Check => Phase::SourceCheck,
            Phase::Prepare => {
                if self.slots.iter().any(|s| matches!(s, Slot::Prepared(_))) {
                    Phase::SourceCheck
                } else {
                    Phase::Abort
                }
            }
            Phase::CommitPrepared | Phase::Commit | Phase::Abort => Phase::Release,
            Phase::Release => Phase::Source,
            Phase::SourceCheck | Phase::Record | Phase::Source | Phase::Done => {
                unreachable!("not a destination phase")
            }
        }
    }

    /// Reports how the last [`Step::Run`] went.
    ///
    /// # Panics
    /// If no step is waiting for its result (or the waiting step is [`Step::Record`]).
    pub fn handle_result(&mut self, result: Result<(), Failure<E>>) {
        let Some(Asked::Run(party, action)) = self.pending.take() else {
            panic!(
                "handle_result without a Run step (a Record step is answered by handle_recorded)"
            );
        };
        let n = match party {
            Party::Source => {
                let read_only = self.options.source_read_only;
                self.source = match (action, result) {
                    (Action::CheckConstraints, Ok(())) => None,
                    (Action::Prepare(gid), Ok(())) => {
                        self.source_prepared = Some(gid);
                        None
                    }
                    // Its PREPARE failed: nothing may be decided.
                    (Action::Prepare(gid), Err(failure)) => {
                        self.phase = Phase::Abort;
                        self.next = 0;
                        match failure {
                            Failure::Refused(e) | Failure::Emptied(e) => {
                                Some(SourceOutcome::CheckFailed(e))
                            }
                            // It may have prepared before the connection broke: rolled back
                            // prepared at the end, on a new session, as a destination's is;
                            // else recovery rolls it back (no decision names it). (recheck70
                            // F14: left prepared, holding a move's row locks.)
                            Failure::Lost(e) => {
                                self.source_prepared = Some(gid.clone());
                                Some(SourceOutcome::RollbackPending {
                                    gid,
                                    error: Some(e),
                                })
                            }
                        }
                    }
                    // (A source's rows a crash emptied since are gone from it, as a move wants.)
                    (Action::CommitPrepared(_), Ok(()) | Err(Failure::Emptied(_))) => {
                        Some(SourceOutcome::Committed)
                    }
                    (Action::CommitPrepared(gid), Err(failure)) => {
                        Some(SourceOutcome::CommitPending {
                            gid,
                            error: failure.into_error(),
                        })
                    }
                    (Action::RollbackPrepared(_), Ok(())) => match self.source.take() {
                        Some(failed @ SourceOutcome::CheckFailed(_)) => Some(failed),
                        // Its PREPARE lost, rolled back now: that failure is why.
                        Some(SourceOutcome::RollbackPending { error: Some(e), .. }) => {
                            Some(SourceOutcome::CheckFailed(e))
                        }
                        _ => Some(SourceOutcome::RolledBack),
                    },
                    (Action::RollbackPrepared(gid), Err(failure)) => {
                        Some(SourceOutcome::RollbackPending {
                            gid,
                            error: Some(failure.into_error()),
                        })
                    }
                    // Its COMMIT would fail after the destinations committed: nothing commits.
                    (Action::CheckConstraints, Err(failure)) => {
                        self.phase = Phase::Abort;
                        self.next = 0;
                        Some(SourceOutcome::CheckFailed(failure.into_error()))
                    }
                    (Action::Commit, Ok(())) if read_only => {
                        Some(SourceOutcome::WroteNothing(None))
                    }
                    (Action::Commit, Err(failure)) if read_only => {
                        Some(SourceOutcome::WroteNothing(Some(failure.into_error())))
                    }
                    (Action::Commit, Ok(())) => Some(SourceOutcome::Committed),
                    (Action::Commit, Err(Failure::Refused(e) | Failure::Emptied(e))) => {
                        Some(SourceOutcome::CommitFailed(e))
                    }
                    (Action::Commit, Err(Failure::Lost(e))) => Some(SourceOutcome::InDoubt(e)),
                    // Rolled back after its failed check (or lost PREPARE): that is what happened.
                    _ if matches!(
                        self.source,
                        Some(SourceOutcome::CheckFailed(_) | SourceOutcome::RollbackPending { .. })
                    ) =>
                    {
                        self.source.take()
                    }
                    _ => Some(SourceOutcome::RolledBack),
                };
                return;
            }
            Party::Destination(n) => n,
        };
        let all_or_nothing = self.options.policy == Policy::AllOrNothing;
        let slot = &mut self.slots[n];
        match (action, result) {
            (Action::CheckConstraints, Ok(())) => {}
            (Action::Prepare(gid), Ok(())) => *slot = Slot::Prepared(gid),
            (Action::Commit | Action::CommitPrepared(_), Ok(())) => {
                *slot = Slot::Done(Outcome::Committed);
            }
            (Action::Rollback, _) => {
                if matches!(slot, Slot::Open) {
                    *slot = Slot::Done(Outcome::RolledBack);
                }
            }
            (Action::RollbackPrepared(gid), result) => {
                let lost = match std::mem::replace(slot, Slot::Open) {
                    Slot::MaybePrepared(_, e) => Some(e),
                    _ => None,
                };
                *slot = Slot::Done(match (result, lost) {
                    (Ok(()), None) => Outcome::RolledBack,
                    // Its PREPARE's answer was lost, and whatever it prepared is gone now: it
                    // failed, nothing of it is kept, nothing is left for recovery.
                    (Ok(()), Some(e)) => Outcome::Failed(Some(e)),
                    (Err(f), None) => Outcome::RollbackPending {
                        gid,
                        error: Some(f.into_error()),
                    },
                    (Err(_), Some(e)) => Outcome::RollbackPending {
                        gid,
                        error: Some(e),
                    },
                });
            }
            (Action::CheckConstraints, Err(f)) => {
                *slot = Slot::Done(Outcome::Failed(Some(f.into_error())));
                // Its transaction is aborted but open.
                self.release[n] = true;
                if all_or_nothing {
                    self.phase = Phase::Abort;
                    self.next = 0;
                }
            }
            (Action::Prepare(gid), Err(f)) => {
                *slot = match f {
                    Failure::Refused(e) | Failure::Emptied(e) => {
                        Slot::Done(Outcome::Failed(Some(e)))
                    }
                    // It may have prepared before the connection broke (there is no commit
                    // decision for this run yet): a rollback rolls it back on a new session,
                    // else recovery.
                    Failure::Lost(e) => Slot::MaybePrepared(gid, e),
                };
                if all_or_nothing {
                    self.phase = Phase::Abort;
                    self.next = 0;
                }
            }
            (Action::Commit, Err(f)) => {
                *slot = Slot::Done(match f {
                    Failure::Refused(e) | Failure::Emptied(e) => Outcome::Failed(Some(e)),
                    Failure::Lost(e) => Outcome::InDoubt(e),
                });
                if all_or_nothing {
                    self.phase = Phase::Abort;
                    self.next = 0;
                }
            }
            // Committed, but a crash emptied what it wrote since it was prepared: it failed, its
            // rows are not there (the others' commits stand: the decision is commit).
            (Action::CommitPrepared(_), Err(Failure::Emptied(e))) => {
                *slot = Slot::Done(Outcome::Failed(Some(e)));
            }
            // The decision is commit and it is recorded: every other destination still commits;
            // this one is finished by recovery.
            (Action::CommitPrepared(gid), Err(f)) => {
                // Answered with an error, it did not run: said to the log, so that a recovery
                // finding it gone does not take it for the run's commit (commit66 F7: a
                // ROLLBACK PREPARED by hand was said "committed", its rows not there).
                if matches!(f, Failure::Refused(_)) {
                    self.refused = Some(gid.clone());
                }
                let sent = matches!(f, Failure::Lost(_));
                *slot = Slot::Done(Outcome::CommitPending {
                    gid,
                    error: f.into_error(),
                    sent,
                });
            }
        }
    }

    /// Reports whether the [`Step::Record`] decision was recorded durably. If it was not, nothing
    /// is committed: every prepared transaction is rolled back, and the report carries the error.
    ///
    /// # Panics
    /// If no Record step is waiting.
    pub fn handle_recorded(&mut self, recorded: Result<(), E>) {
        assert!(
            matches!(self.pending.take(), Some(Asked::Record)),
            "handle_recorded without a Record step"
        );
        self.next = 0;
        self.decided = recorded.is_ok();
        self.phase = match recorded {
            Ok(()) => Phase::CommitPrepared,
            Err(e) => {
                self.record_error = Some(e);
                Phase::Abort
            }
        };
    }

    fn destinations_all_committed(&self) -> bool {
        self.slots
            .iter()
            .all(|s| matches!(s, Slot::Done(Outcome::Committed)))
    }

    /// Where every party ended.
    ///
    /// # Panics
    /// Before [`Commit::poll_step`] returned `None`.
    pub fn outcome(self) -> Report<E> {
        assert!(self.phase == Phase::Done, "outcome before the commit ended");
        Report {
            destinations: self
                .slots
                .into_iter()
                .map(|s| match s {
                    Slot::Done(outcome) => outcome,
                    // Left as it was by a run that went on (keep-going): recovery rolls it back.
                    Slot::MaybePrepared(gid, e) => Outcome::RollbackPending {
                        gid,
                        error: Some(e),
                    },
                    Slot::Open | Slot::Prepared(_) => unreachable!("every slot settles"),
                })
                .collect(),
            source: self.source,
            record_error: self.record_error,
        }
    }
}

/// A global id's run and party, if the id is one copyman made: `copyman:RUN:N` is destination
/// N (1-based: [`Party::Destination`]`(N - 1)`), `copyman:RUN:0` the source.
pub fn parse_gid(gid: &str) -> Option<(&str, Party)> {
    let rest = gid.strip_prefix(GID_PREFIX)?;
    let (run, n) = rest.rsplit_once(':')?;
    // As copyman writes it: digits, no sign, no leading zero (`:01` is another program's).
    if !n.bytes().all(|b| b.is_ascii_digit()) || (n.len() > 1 && n.starts_with('0')) {
        return None;
    }
    let n: usize = n.parse().ok()?;
    let party = match n {
        0 => Party::Source,
        n => Party::Destination(n - 1),
    };
    valid_run_id(run).then_some((run, party))
}

/// What recovery does with a prepared transaction it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Recovery {
    /// Not copyman's: never touched.
    NotOurs,
    /// Its run recorded a commit decision naming it: `COMMIT PREPARED`.
    Commit,
    /// Its run recorded no commit decision naming it: `ROLLBACK PREPARED`. (A run writes its
    /// decision before it commits anything, so without one nothing of the run was committed.)
    Rollback,
    /// The log holds no line of its run at all (a run records its start before it prepares
    /// anything): it is not this run's log, and its decision may be in another. Never touched.
    UnknownRun,
}

/// What to do with the prepared transaction `gid`, given the log: `committed(gid)` is true when
/// a recorded commit decision names this global id, `logged(run)` when the log holds any line of
/// the run (its start, recorded before anything is prepared, or its decision). A log that does
/// not know the run is not its log: nothing is decided from it.
///
/// The caller must make sure the run is over (a run still in progress may yet record its
/// decision): copyman holds a lock for the length of a run for that.
///
/// ```
/// use copyman_core::commit::{Recovery, recovery};
///
/// let decided = ["copyman:r1:1", "copyman:r1:2"];
/// let committed = |gid: &str| decided.contains(&gid);
/// let logged = |run: &str| ["r1", "r2"].contains(&run);
/// assert_eq!(recovery("copyman:r1:2", committed, logged), Recovery::Commit);
/// assert_eq!(recovery("copyman:r2:1", committed, logged), Recovery::Rollback);
/// assert_eq!(recovery("copyman:r3:1", committed, logged), Recovery::UnknownRun);
/// assert_eq!(recovery("app-xact-7", committed, logged), Recovery::NotOurs);
/// ```
pub fn recovery(
    gid: &str,
    committed: impl Fn(&str) -> bool,
    logged: impl Fn(&str) -> bool,
) -> Recovery {
    match parse_gid(gid) {
        None => Recovery::NotOurs,
        Some(_) if committed(gid) => Recovery::Commit,
        Some((run, _)) if !logged(run) => Recovery::UnknownRun,
        Some(_) => Recovery::Rollback,
    }
}

/// The parties of a run with no commit decision in the log that the servers show ended after
/// they were prepared: `found` is every party of the run found prepared (on all the servers
/// recovery was given); the answer, the destinations missing below one still prepared.
///
/// A run prepares its destinations in order, and its source last, only once every destination
/// is prepared; it commits (or rolls back) them in the same order. A run that stopped while
/// preparing leaves a prefix of its destinations prepared, and [`Recovery::Rollback`] is right
/// for them. A destination missing below one still prepared was prepared and ended since:
/// committed, if the run decided commit in a log recovery was not given (a stale copy of the
/// log, taken before the decision), or rolled back — or it is on a server recovery was not
/// given. Rolling back the rest could split the run, so recovery leaves the run alone and says
/// what it saw (an empty answer: nothing says the run got past its prepares).
///
/// ```
/// use copyman_core::commit::{Party, partly_ended};
///
/// // Stopped while preparing: 1 and 2 prepared, 3 never was.
/// assert!(partly_ended(&[Party::Destination(0), Party::Destination(1)]).is_empty());
/// // 1 committed (or rolled back) while 2 is still prepared.
/// assert_eq!(partly_ended(&[Party::Destination(1)]), [Party::Destination(0)]);
/// // The source is prepared only once every destination is: none of them left.
/// assert_eq!(partly_ended(&[Party::Source]), [Party::Destination(0)]);
/// ```
pub fn partly_ended(found: &[Party]) -> Vec<Party> {
    let destinations: Vec<usize> = found
        .iter()
        .filter_map(|p| match p {
            Party::Destination(n) => Some(*n),
            Party::Source => None,
        })
        .collect();
    let below = match destinations.iter().max() {
        Some(&top) => top,
        // The source alone: its destinations were all prepared, and none is any more.
        None if found.contains(&Party::Source) => 1,
        None => 0,
    };
    (0..below)
        .filter(|n| !destinations.contains(n))
        .map(Party::Destination)
        .collect()
}

/// [`partly_ended`] for a run that recovery knows more of: `named`, the parties its log named at
/// its start, and whether it `died` (killed, its lock file left beside its log). A run that
/// ended on its own leaves nothing prepared without a decision or a rollback in its log: where
/// the log given has neither, it is an old copy, and a party named and gone while another is
/// still prepared may have committed (its first destination's COMMIT PREPARED failed, the
/// others committed: recheck64 F5, the copy split). Those are the answer then, the gap rule's
/// otherwise.
///
/// ```
/// use copyman_core::commit::{Party, partly_ended_given};
///
/// let named = [Party::Destination(0), Party::Destination(1)];
/// let found = [Party::Destination(0)];
/// // Died after its first PREPARE: the second never prepared.
/// assert!(partly_ended_given(&found, &named, true).is_empty());
/// // Ended on its own: the second may have committed.
/// assert_eq!(partly_ended_given(&found, &named, false), [Party::Destination(1)]);
/// ```
pub fn partly_ended_given(found: &[Party], named: &[Party], died: bool) -> Vec<Party> {
    let gap = partly_ended(found);
    match gap.is_empty() && !died {
        true => (named.iter())
            .filter(|p| !found.contains(p))
            .copied()
            .collect(),
        false => gap,
    }
}

/// SQL (an expression of one row's scope) listing who holds the lock backend `pid` (an SQL
/// expression: `a.pid`, `1234`) waits for, as [`held_by`] reads it: each blocking backend's pid
/// (`replay PID` for a standby's startup process, which holds what its primary's transactions
/// lock; `syncrep PID` for one whose COMMIT waits for a synchronous standby, `syncprep PID` for
/// one whose PREPARE TRANSACTION does; `queued PID behind
/// PIDS` for one that holds none of that lock and waits ahead of it in its queue, with whom it
/// waits for: live52 F7, a migration's queued ALTER TABLE was said to hold it), and `prepared
/// GID` for a prepared transaction. `pid` must be qualified (`a.pid`): the
/// expression's own tables have `pid` columns too. `pg_blocking_pids` gives 0 for a prepared
/// transaction (it has no backend); its locks are `pg_locks` rows without a pid, whose
/// `virtualtransaction` is that of the transaction's own `transactionid` lock, which names it
/// in `pg_prepared_xacts`.
pub fn lock_holders_sql(pid: &str) -> String {
    format!(
        "(SELECT pg_catalog.string_agg(h, ', ') FROM (SELECT DISTINCT CASE WHEN b.pid <> 0 \
         THEN CASE WHEN (SELECT s.backend_type FROM pg_catalog.pg_stat_activity s \
         WHERE s.pid = b.pid) = 'startup' THEN 'replay ' || b.pid::text \
         WHEN (SELECT s.wait_event FROM pg_catalog.pg_stat_activity s WHERE s.pid = b.pid) \
         = 'SyncRep' THEN CASE WHEN (SELECT s.query FROM pg_catalog.pg_stat_activity s \
         WHERE s.pid = b.pid) ~* '^\\s*PREPARE\\s+TRANSACTION' THEN 'syncprep ' \
         ELSE 'syncrep ' END \
         || b.pid::text \
         WHEN (SELECT s.application_name = 'copyman' AND s.state = 'idle in transaction' \
         FROM pg_catalog.pg_stat_activity s WHERE s.pid = b.pid) THEN 'copyman ' || b.pid::text \
         WHEN NOT EXISTS (SELECT 1 FROM pg_catalog.pg_locks w JOIN pg_catalog.pg_locks g \
         ON g.pid = b.pid AND g.granted AND (g.locktype, g.database, g.relation, g.page, \
         g.tuple, g.virtualxid, g.transactionid, g.classid, g.objid, g.objsubid) IS NOT \
         DISTINCT FROM (w.locktype, w.database, w.relation, w.page, w.tuple, w.virtualxid, \
         w.transactionid, w.classid, w.objid, w.objsubid) WHERE w.pid = {pid} AND NOT \
         w.granted) THEN 'queued ' || b.pid::text || ' behind ' || pg_catalog.array_to_string(\
         pg_catalog.pg_blocking_pids(b.pid), ' ') ELSE b.pid::text END \
         ELSE coalesce((SELECT pg_catalog.string_agg(DISTINCT 'prepared ' || \
         px.gid, ', ') FROM pg_catalog.pg_locks w JOIN pg_catalog.pg_locks h ON h.pid IS NULL \
         AND h.granted AND (h.locktype, h.database, h.relation, h.page, h.tuple, h.virtualxid, \
         h.transactionid, h.classid, h.objid, h.objsubid) IS NOT DISTINCT FROM (w.locktype, \
         w.database, w.relation, w.page, w.tuple, w.virtualxid, w.transactionid, w.classid, \
         w.objid, w.objsubid) JOIN pg_catalog.pg_locks t ON t.pid IS NULL AND t.locktype = \
         'transactionid' AND t.virtualtransaction = h.virtualtransaction JOIN \
         pg_catalog.pg_prepared_xacts px ON px.transaction = t.transactionid WHERE w.pid = {pid} \
         AND NOT w.granted), '0') END AS h FROM \
         pg_catalog.unnest(pg_catalog.pg_blocking_pids({pid})) AS b(pid)) AS holders)"
    )
}

/// The holders [`lock_holders_sql`] listed, in words: `held by backend 1234`, `held by the
/// prepared transaction copyman:RUN:1 (run `copyman recover --to CONN`)`, or for another
/// program's prepared transaction `held by the prepared transaction GID (COMMIT PREPARED or
/// ROLLBACK PREPARED ends it)`; empty when there are none.
///
/// A backend queued ahead (`queued PID behind PIDS`) is said as that, with whom it waits for.
///
/// ```
/// use copyman_core::commit::held_by;
///
/// assert_eq!(held_by("1234"), "held by backend 1234");
/// assert_eq!(
///     held_by("queued 22374 behind 22332"),
///     "queued behind backend 22374, which waits itself for backend 22332 (the lock's holder)"
/// );
/// assert_eq!(
///     held_by("7, queued 8 behind 7"),
///     "held by backend 7; queued behind backend 8, which waits itself for backend 7 (the lock's holder)"
/// );
/// assert!(held_by("replay 77").starts_with("held by the standby's WAL replay (its startup process 77)"));
/// assert!(held_by("prepared copyman:1764479123-42-9f3a:2")
///     .starts_with("held by the prepared transaction copyman:1764479123-42-9f3a:2 (run `copyman recover"));
/// assert!(held_by("77, prepared app-xact").ends_with("(COMMIT PREPARED or ROLLBACK PREPARED in its database ends it)"));
/// assert!(held_by("syncrep 88").contains("backend 88, whose COMMIT waits for a synchronous standby"));
/// assert!(held_by("syncprep 89").contains("backend 89, whose PREPARE TRANSACTION waits"));
/// assert!(held_by("copyman 90").contains("backend 90, a session of another copyman"));
/// assert_eq!(held_by(""), "");
/// ```
pub fn held_by(holders: &str) -> String {
    held_by_runs(holders, |_| None)
}

/// [`held_by`], where `live` tells the process of a copyman run still in progress on this
/// host (by its run id): its prepared transaction is said as that run's, which ends it with its
/// decision, not as one to recover (recover leaves a live run's alone: recheck48b F3).
///
/// ```
/// use copyman_core::commit::held_by_runs;
///
/// let said = held_by_runs("prepared copyman:1764479123-42-9f3a:2", |run| {
///     (run == "1764479123-42-9f3a").then_some(42)
/// });
/// assert!(said.contains("of copyman process 42, a run still in progress"), "{said}");
/// assert!(!said.contains("copyman recover"), "{said}");
/// ```
pub fn held_by_runs(holders: &str, live: impl Fn(&str) -> Option<u32>) -> String {
    let (queued, holders): (Vec<&str>, Vec<&str>) = (holders.split(", "))
        .filter(|h| !h.is_empty())
        .partition(|h| h.starts_with("queued "));
    let queued: Vec<String> = (queued.iter())
        .filter_map(|q| {
            let (pid, behind) = q["queued ".len()..].split_once(" behind ")?;
            let behind: Vec<String> = (behind.split(' ').filter(|p| !p.is_empty()))
                .map(|p| format!("backend {p}"))
                .collect();
            Some(match behind.is_empty() {
                true => format!("queued behind backend {pid}, which waits itself"),
                false => format!(
                    "queued behind backend {pid}, which waits itself for {} (the lock's holder)",
                    behind.join(", ")
                ),
            })
        })
        .collect();
    let said: Vec<String> = holders
        .into_iter()
        .map(|h| match h.strip_prefix("prepared ") {
            Some(gid) if let Some(pid) = parse_gid(gid).and_then(|(run, _)| live(run)) => {
                format!(
                    "the prepared transaction {gid} of copyman process {pid}, a run still in \
                     progress (it commits or rolls it back with its decision: wait for it)"
                )
            }
            Some(gid) if parse_gid(gid).is_some() => format!(
                "the prepared transaction {gid} (run `copyman recover --to CONN` with its \
                 database's CONN and its run's --decision-log)"
            ),
            Some(gid) => format!(
                "the prepared transaction {gid} (COMMIT PREPARED or ROLLBACK PREPARED in its \
                 database ends it)"
            ),
            // A prepared transaction that could not be named (gone meanwhile).
            None if h == "0" => "a prepared transaction (see pg_prepared_xacts)".to_owned(),
            // No backend to end: the lock is a primary's transaction's, replayed here.
            None if h.starts_with("replay ") => format!(
                "the standby's WAL replay (its startup process {}): a transaction on its \
                 primary holds that lock there (an ALTER TABLE, TRUNCATE, VACUUM FULL or LOCK), \
                 and the wait ends when that transaction ends on the primary",
                &h["replay ".len()..]
            ),
            // Its COMMIT is written; it holds its locks until a standby confirms it (commit46
            // F2: a COMMIT a second signal left waiting, taken for a row lock).
            None if h.starts_with("syncrep ") => format!(
                "backend {}, whose COMMIT waits for a synchronous standby to confirm it \
                 (synchronous_standby_names): it commits then, or at once if it is cancelled or \
                 ended, and its rows are the table's",
                &h["syncrep ".len()..]
            ),
            // Its PREPARE is written: prepared once confirmed, it holds its locks until its
            // COMMIT or ROLLBACK PREPARED (dup65 F10: said as a COMMIT whose rows are the
            // table's).
            None if h.starts_with("syncprep ") => format!(
                "backend {}, whose PREPARE TRANSACTION waits for a synchronous standby to confirm \
                 it (synchronous_standby_names): prepared then, it holds the lock until its \
                 COMMIT PREPARED or ROLLBACK PREPARED (a copyman run's decision, or copyman \
                 recover)",
                &h["syncprep ".len()..]
            ),
            // Another copyman's session, between its statements (a source's snapshot, read
            // under its lock): held until that copy ends — and never, where that copy waits on
            // this one (dup67 F13: two runs copying one table each way waited on each other for
            // ever, each saying only "held by backend N").
            None if h.starts_with("copyman ") => format!(
                "backend {}, a session of another copyman (application_name copyman, idle in \
                 its transaction): it holds the lock until its copy ends; if that copy waits \
                 on this one (a table copied each way at once), neither ends: stop one",
                &h["copyman ".len()..]
            ),
            None => format!("backend {h}"),
        })
        .collect();
    let held = (!said.is_empty()).then(|| format!("held by {}", said.join(", ")));
    held.into_iter()
        .chain(queued)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Whether `run` can be a two-phase run id: 1 to 100 of `[A-Za-z0-9_.-]`.
pub fn valid_run_id(run: &str) -> bool {
    !run.is_empty()
        && run.len() <= 100
        && run
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}
