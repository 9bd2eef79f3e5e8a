//! How a job runs and what it runs on: its [`Options`] (and [`DEFAULT_JOBS`]), each [`Server`]
//! and how to connect to it ([`Connect`]), and the [`Interrupt`] that stops it from outside.

use std::path::PathBuf;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use copyman_sync::{Connection, Interrupter};

#[cfg(doc)]
use super::{DestResult, Event, Status};
use crate::sql::Format;

/// Opens a connection to a server (called once per worker, and again after a connection broke).
pub type Connect = Arc<dyn Fn() -> Result<Connection, copyman_sync::Error> + Send + Sync>;

/// A server of the job.
#[derive(Clone)]
pub struct Server {
    /// How it is named in reports and in the state file (never with a password).
    pub name: String,
    /// How to connect to it.
    pub connect: Connect,
    /// How to connect to it in its database's own settings, where `connect`'s sessions pin
    /// some for the copy (copyman-sync's and copyman-async's `lc_monetary=C`,
    /// `array_nulls=on`): asked what the database means by a value's text (how it writes and
    /// reads money, an array's NULLs: [`TextForms`](crate::plan::TextForms)) where a copied
    /// column needs it; a table is refused on a destination where that cannot be asked. `None`:
    /// not asked, and a `money` column is copied as its stored amount, an array's text read
    /// with `array_nulls=on`, whatever each database says.
    pub own_settings: Option<Connect>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The default number of tables copied at once.
pub const DEFAULT_JOBS: usize = 4;

/// How a job runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Tables copied at once (at least 1).
    pub jobs: usize,
    /// Empty each destination table in the transaction of its copy (which then uses `FREEZE`).
    pub truncate: bool,
    /// The format, if forced; else binary where every column's type matches, text elsewhere.
    pub format: Option<Format>,
    /// Commit a table on the destinations where it completed, and go on with the others.
    pub keep_going: bool,
    /// Destinations the caller left out before the job (by position, with why: under
    /// `keep_going`, one its own checks refused, such as a server that takes no writes): not
    /// connected to, each table's plan there refused with that reason, as for a destination
    /// that cannot be reached.
    pub left_out: Vec<(usize, String)>,
    /// Destinations the caller could not connect to before the job (by position, with the
    /// error, under `keep_going`): taken as a failed connect, not tried again — each try is
    /// another wait for a dead host, and another failed login that an account lockout counts
    /// (a job made four where a one-table run makes one).
    pub unreachable: Vec<(usize, super::TableError)>,
    /// Copy every table under the coordinating session's exported snapshot (else each table
    /// under a snapshot of its own).
    pub snapshot: bool,
    /// Compare an order-independent checksum of every table on the source and each destination
    /// (after its commit there). A table is recorded done on a destination only once its
    /// checksum matched; one that differs is recorded `mismatch` (not done: a resume empties it
    /// there and copies it again). Under [`Options::resume`] the tables an earlier run did are
    /// compared too (the source in the job's snapshot): one that differs now is recorded
    /// `mismatch` as well, and the next resume copies it again. On a destination where a table
    /// written fired triggers of the user's, the tables verified there are compared again once
    /// every table is done ([`Event::VerifyingAgain`](super::Event::VerifyingAgain)): a trigger
    /// may have changed one after its own check.
    pub verify: bool,
    /// Cap on the bytes per second read from the source, across all workers.
    pub max_rate: Option<u64>,
    /// The state file.
    pub state: PathBuf,
    /// Skip what the state file records as done (unless the destination holds none of a table
    /// recorded done with rows: another server with its identity, a clone); redo what it does
    /// not, asking each destination whether an earlier attempt committed (the transaction ids
    /// recorded before each COMMIT): done if it did, copied again without emptying the table if
    /// not (an append stays an append), emptied first only where that cannot be told.
    pub resume: bool,
    /// Copy an ordinary table larger than this many bytes as several ctid ranges side by side
    /// (at most `jobs` ranges, all in the job's snapshot; without it, in one snapshot of the
    /// table's own, exported by the session that counts the table).
    pub split_larger_than: Option<u64>,
    /// Two-phase commit per table under a durable decision in this log (`copyman recover`
    /// finishes what a crash leaves prepared); `None` for one COMMIT after another.
    pub two_phase: Option<PathBuf>,
    /// An endpoint of a table's copy that moves no byte for this long has stalled: the table
    /// fails there (core's stall rule during the COPY; the sessions' socket timeouts from the
    /// table's `BEGIN` to the end of its COPY, so a wait for a lock counts too). Never during a
    /// `COMMIT` (only its answer says whether it committed) nor a `--verify` checksum.
    pub stall_timeout: Option<Duration>,
    /// Accept a destination whose COPY stored another number of rows than the source sent
    /// (triggers that route or drop rows): it commits, with a [`DestResult::warning`].
    pub allow_count_mismatch: bool,
    /// Stops the job from outside (a signal): see [`Interrupt`].
    pub interrupt: Interrupt,
    /// Other state files a run without `--resume` also reads (the `copyman` command's default
    /// directory: earlier jobs of other selections, another spelling of this one): a table one
    /// of them records begun on these destinations is refused as in [`Options::state`].
    pub other_states: Vec<PathBuf>,
    /// The encoding every server holds, other than UTF8, where the caller's sessions asked for
    /// no `client_encoding`: each table's data passes in it (`SET LOCAL client_encoding` in its
    /// transactions) where its statements are ASCII ([`TablePlan::speaks_ascii`]), as a psql
    /// pipe passes it — not to UTF8 and back, which is not the identity for every character
    /// (EUC_JP's NEC and IBM duplicates came back as their canonical codes).
    ///
    /// [`TablePlan::speaks_ascii`]: super::planning::TablePlan::speaks_ascii
    pub data_encoding: Option<String>,
}

/// Stops a running job from outside, as a first SIGINT does: every table being copied is
/// aborted and rolled back on every destination ([`Status::Interrupted`]), tables already
/// committed stay committed and recorded in the state file (a resume goes on from there), tables
/// not started are not started. A table whose commit had begun finishes it (a `COMMIT` stopped
/// half-way would leave the destinations split).
///
/// A copy blocked on a server (a lock wait, a source that sends nothing) notices only when its
/// statement returns: the caller cancels the backends it heard of in [`Event::Backend`] (until
/// [`Event::Ending`] for that worker), as the `copyman` command does. A backend that does not
/// take the cancel (frozen, or its network path lost) is given up: every session of the job
/// carries the interrupt's [`Interrupter`], so that a wait for its server that moves nothing
/// for [`INTERRUPT_GRACE`](copyman_sync::INTERRUPT_GRACE) ends — while planning, and a table's
/// statements up to its commit, never its `COMMIT`s.
#[derive(Debug, Clone, Default)]
pub struct Interrupt(Arc<Interrupted>);

#[derive(Debug)]
struct Interrupted {
    reason: Mutex<Option<String>>,
    /// Given to every session of the job ([`Interrupt::interruptible`]); `None` if its socket
    /// pair could not be made (the waits are then not cut short).
    waits: Option<Interrupter>,
}

impl Default for Interrupted {
    fn default() -> Self {
        Self {
            reason: Mutex::new(None),
            waits: Interrupter::new().ok(),
        }
    }
}

impl Interrupt {
    /// A handle that has not fired.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stops the job; `reason` (e.g. "interrupted by SIGINT") is in the report of every table cut
    /// short. A second call changes nothing.
    pub fn interrupt(&self, reason: impl Into<String>) {
        let mut slot = self.0.reason.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            *slot = Some(reason.into());
        }
        drop(slot);
        if let Some(waits) = &self.0.waits {
            waits.interrupt();
        }
    }

    /// Why the job was interrupted, if it was.
    pub fn reason(&self) -> Option<String> {
        self.0
            .reason
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether the job was interrupted.
    pub fn is_interrupted(&self) -> bool {
        self.0
            .reason
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// `server`, whose sessions carry this interrupt's [`Interrupter`]: once interrupted, their
    /// waits that move nothing for the grace end.
    pub(crate) fn interruptible(&self, server: &Server) -> Server {
        let (connect, waits) = (Arc::clone(&server.connect), self.0.waits.clone());
        Server {
            connect: Arc::new(move || {
                let mut conn = connect()?;
                conn.set_interrupter(waits.clone());
                Ok(conn)
            }),
            ..server.clone()
        }
    }

    /// `server` as [`Interrupt::interruptible`], whose connects are also given up once
    /// interrupted: a connect to a server that takes the connection and never answers would
    /// hold the stop for as long as the connect's limit (without a `connect_timeout`, for
    /// ever). Not for a connect that finishes a commit (a `COMMIT PREPARED` sent again on a new
    /// session): the first signal lets a commit under way finish.
    pub(crate) fn abandoning(&self, server: &Server) -> Server {
        let server = self.interruptible(server);
        let (connect, interrupt) = (Arc::clone(&server.connect), self.clone());
        Server {
            connect: Arc::new(move || interrupt.connect_unless_interrupted(&connect)),
            ..server
        }
    }

    /// `connect()` on a thread of its own, waited for until it ends or this is interrupted. A
    /// connect given up ends on its own, within its limit; the connection it may still make is
    /// closed at once.
    fn connect_unless_interrupted(
        &self,
        connect: &Connect,
    ) -> Result<Connection, copyman_sync::Error> {
        let given_up = || copyman_sync::Error::State(CONNECT_GIVEN_UP);
        if self.is_interrupted() {
            return Err(given_up());
        }
        let (tx, rx) = mpsc::channel();
        let connect = Arc::clone(connect);
        thread::Builder::new()
            .name("copyman-job-connect".to_owned())
            .spawn(move || {
                let _ = tx.send(connect());
            })
            .map_err(copyman_sync::Error::Io)?;
        loop {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(connected) => return connected,
                Err(RecvTimeoutError::Timeout) if !self.is_interrupted() => {}
                Err(RecvTimeoutError::Timeout) => return Err(given_up()),
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(copyman_sync::Error::State(
                        "the connect ended without an answer",
                    ));
                }
            }
        }
    }
}

/// Why a connect of an interrupted job ended ([`Interrupt::abandoning`]): the job's stop, not
/// the server's failure.
pub(crate) const CONNECT_GIVEN_UP: &str = "given up: the job was interrupted";

impl Options {
    /// The defaults, with the state file at `state`.
    pub fn new(state: impl Into<PathBuf>) -> Self {
        Self {
            jobs: DEFAULT_JOBS,
            truncate: false,
            format: None,
            keep_going: false,
            snapshot: true,
            verify: false,
            max_rate: None,
            state: state.into(),
            resume: false,
            split_larger_than: None,
            two_phase: None,
            stall_timeout: None,
            allow_count_mismatch: false,
            interrupt: Interrupt::new(),
            other_states: Vec::new(),
            data_encoding: None,
            left_out: Vec::new(),
            unreachable: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interrupt_keeps_its_first_reason_and_is_shared_by_its_clones() {
        let interrupt = Interrupt::new();
        let options = Options {
            interrupt: interrupt.clone(),
            ..Options::new("/tmp/x.state")
        };
        assert!(!options.interrupt.is_interrupted());
        interrupt.interrupt("interrupted by SIGINT");
        interrupt.interrupt("interrupted by SIGTERM");
        assert_eq!(
            options.interrupt.reason().as_deref(),
            Some("interrupted by SIGINT")
        );
    }
}
