//! A thread beside the copy that keeps it from hanging without a word.
//!
//! * When nothing moved for a second ([`progress::ticks`] unchanged: no cycle of the copy), it
//!   asks each server, once a second, whether the run's backend waits for a lock
//!   (`pg_stat_activity.wait_event_type = 'Lock'`, the lock from `pg_locks`, the holders from
//!   `pg_blocking_pids`), and says so: "waiting for lock on destination 2 (…)", on stderr and on
//!   the progress bar. When nothing moved for ten seconds, it says once what every backend is
//!   doing (its state and wait event, or that its server cannot be asked), unless `--quiet`.
//! * When a backend of a copy waits for a lock that another backend of the same copy holds (a
//!   partitioned table and its partition written by two destinations on one database, a split
//!   table's ranges meeting in a unique index: `pg_blocking_pids` against the copy's own
//!   backends, each known by its pid and start time), nothing can release it: the holder's
//!   transaction ends only with the copy. It cancels the waiter at once, saying which two
//!   sessions wait on each other, and the copy fails, committing nothing ([`waits_on_itself`]).
//!   A wait on a session of another table of a job is only said: that table's commit ends it.
//! * When a signal came ([`signals`]), it cancels every backend of the run, once a second until
//!   the run ends, so that a read or write blocked on a server returns and the copy can abort: a
//!   CancelRequest with the backend's key, as libpq sends it (no login, no privilege needed), to
//!   every address of the endpoint's CONN; `pg_cancel_backend` on a monitoring connection if no
//!   address took it.
//!
//! It asks over one short monitoring connection per server endpoint, opened only when needed
//! (connect and statement timeouts of 5 s) and closed when the run ends: bounded, and nothing at
//! all for a copy that keeps moving.
//!
//! A job of many tables has its own loop over the same parts ([`JobWatch`]): the backends come
//! from the job's events, per worker, and a signal interrupts the job before its backends are
//! cancelled.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use copyman_core::ReceiverId;
use copyman_core::run::UnderWay;
use copyman_core::stall::{EndOfData, EndpointId};
use copyman_job::commit::{self, Action};
use copyman_job::job::{Event, Interrupt, Side};
use copyman_sync::{CancelToken, Closer, Connection, Interrupter};

use crate::conn::ServerSpec;
use crate::{progress, report, signals};

/// How long the copy may not move before the servers are asked about locks.
const STILL: Duration = Duration::from_secs(1);

/// How long copyman's bytes stand still before a copy's servers are looked at, and then how
/// long between looks: [`STILL`], or a third of a shorter `--stall-timeout` (250 ms at the
/// least), so that a destination storing rows is heard by its stall timer in time ([`Heard`]).
fn look_every() -> Duration {
    let stall = *STALL_TIMEOUT.get().unwrap_or(&None);
    stall.map_or(STILL, |t| (t / 3).clamp(Duration::from_millis(250), STILL))
}

/// The run's `--stall-timeout`, once known ([`set_stall_timeout`]).
static STALL_TIMEOUT: std::sync::OnceLock<Option<Duration>> = std::sync::OnceLock::new();

/// The run's `--stall-timeout`: how often the watch looks at a copy that does not move.
pub(crate) fn set_stall_timeout(stall: Option<Duration>) {
    let _ = STALL_TIMEOUT.set(stall);
}

/// The run's `--keep-going`: a destination copyman cancels is left out, the others go on.
static KEEP_GOING: AtomicBool = AtomicBool::new(false);

/// The run goes on without a destination that fails (`--keep-going`): what a cancel says.
pub(crate) fn set_keep_going(on: bool) {
    KEEP_GOING.store(on, Ordering::SeqCst);
}

/// How often the thread looks.
const POLL: Duration = Duration::from_millis(100);

/// How long a wait goes unsaid, and then how long between the reminders that it goes on: a
/// copy that does not move, a connection its server does not answer, a stop that takes long.
/// 10 s; the test hook `COPYMAN_TEST_SAY_AFTER` (whole seconds) shortens it, so that the tests
/// of these words do not wait 10 s each.
pub(crate) fn say_after() -> Duration {
    static SAY_AFTER: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
    *SAY_AFTER.get_or_init(|| {
        std::env::var("COPYMAN_TEST_SAY_AFTER")
            .ok()
            .and_then(|s| s.parse().ok())
            .map_or(Duration::from_secs(10), Duration::from_secs)
    })
}

/// Says, after a second and every 10 s after, that this process (a recovery, a job) waits for
/// the lock on its decision log and which process holds it (another run or recover sharing the
/// log, a script's `flock`): each waited without a word for as long as the lock was held
/// (recheck66 F5, F9). Stops when dropped.
pub(crate) struct LogWait(Option<(Arc<AtomicBool>, thread::JoinHandle<()>)>);

impl LogWait {
    pub(crate) fn watch(log: &std::path::Path) -> Self {
        let done = Arc::new(AtomicBool::new(false));
        let (stop, log) = (Arc::clone(&done), log.to_path_buf());
        let spawned = thread::Builder::new()
            .name("copyman-log-wait".to_owned())
            .spawn(move || {
                let (me, tick) = (std::process::id(), Duration::from_millis(200));
                let mut since: Option<Instant> = None;
                let mut said: Option<Instant> = None;
                while !stop.load(Ordering::SeqCst) {
                    thread::sleep(tick);
                    if !commit::waits_for_lock(&log, me) {
                        (since, said) = (None, None);
                        continue;
                    }
                    let waited = since.get_or_insert_with(Instant::now).elapsed();
                    let due = match said {
                        None => waited >= Duration::from_secs(1),
                        Some(at) => at.elapsed() >= say_after(),
                    };
                    if !due {
                        continue;
                    }
                    said = Some(Instant::now());
                    let holder = commit::lock_holder(&log)
                        .map_or_else(String::new, |(pid, cmd)| format!(": {}", holds(pid, &cmd)));
                    progress::println(&format!(
                        "copyman: waiting {} s for the lock on the decision log {}{holder}, another \
                         run or recover sharing the log, or a script's flock",
                        waited.as_secs(),
                        log.display()
                    ));
                }
            })
            .ok();
        Self(spawned.map(|handle| (done, handle)))
    }
}

impl Drop for LogWait {
    fn drop(&mut self) {
        if let Some((done, handle)) = self.0.take() {
            done.store(true, Ordering::SeqCst);
            let _ = handle.join();
        }
    }
}

/// Connect and statement timeout of a monitoring connection.
const MONITOR_TIMEOUT: Duration = Duration::from_secs(5);

/// A copy that streams, as the watch sees it: what it waits for ([`UnderWay`]: the orders it gave
/// its endpoints and that are not done), said when it stops moving since the servers cannot tell
/// (a frozen backend, or one behind a lost network path, shows the state it was in, and every
/// other one waits for copyman); the destination (0-based) each of its receivers is; and what
/// interrupts it on a signal, so that an endpoint that stopped moving is given up after
/// [`copyman_sync::INTERRUPT_GRACE`] and the others' COPYs are failed at once, releasing their
/// locks (they waited for the second signal).
pub(crate) struct Copying {
    pub(crate) under_way: UnderWay,
    pub(crate) live: Vec<usize>,
    /// Each live receiver's backend (its process id), where known: a job's split table copies
    /// to one destination in ranges side by side, each its own copy on a backend of its own.
    /// Empty where the destination tells the receiver (one table's).
    pub(crate) backends: Vec<Option<i32>>,
    pub(crate) interrupter: Option<Interrupter>,
    /// A source that is no server (a file, a FIFO, stdin), by name: a wait for its data is its
    /// writer's, not a backend's.
    pub(crate) source: Option<String>,
    /// The payload bytes the copy sent each live receiver so far (the source's, every one of
    /// them has it all once they complete): what a destination's `pg_stat_progress_copy` reads
    /// up to ([`Unread`]). Zero where not kept (a job's).
    pub(crate) sent: Arc<AtomicU64>,
    /// The destinations (0-based) the copy went on without (`--keep-going`): no longer said
    /// storing what they were sent (recheck47 F5).
    pub(crate) dropped: Vec<usize>,
}

impl Copying {
    /// The receiver (its position in the copy) that destination `d`'s backend `pid` is, if it is
    /// one of this copy's.
    fn receiver(&self, d: usize, pid: i32) -> Option<usize> {
        match self.backends.is_empty() {
            true => self.live.iter().position(|&l| l == d),
            false => self.backends.iter().position(|&p| p == Some(pid)),
        }
    }

    /// "copyman waits for destination 2 to take data (its socket is full: …): ", or nothing.
    /// `answered` tells a destination whose backend has ended its COPY (idle in its
    /// transaction): at the end of the data, its answer waits unread while copyman reads
    /// another's, and it is not the one waited for.
    fn waits_for(&self, answered: &dyn Fn(usize) -> bool) -> String {
        let destinations: Vec<usize> = self
            .under_way
            .receivers()
            .filter_map(|r| self.live.get(r.0).copied())
            .collect();
        let name = |ds: &[usize]| {
            let names: Vec<String> = ds
                .iter()
                .map(|d| format!("destination {}", d + 1))
                .collect();
            names.join(" and ")
        };
        let receivers = name(&destinations);
        let mut said = Vec::new();
        // (Every receiver answered: the copy is over, what waits now is the run's next step.)
        if self.under_way.completing() && !destinations.is_empty() {
            let unanswered: Vec<usize> = destinations
                .iter()
                .copied()
                .filter(|&d| !answered(d))
                .collect();
            let waited = match unanswered.is_empty() {
                true => receivers,
                false => name(&unanswered),
            };
            said.push(format!("for {waited} to answer the end of its data"));
        } else if !destinations.is_empty() {
            said.push(format!(
                "for {receivers} to take data (its socket is full: the others wait with it)"
            ));
        }
        if self.under_way.producer() {
            said.push(match &self.source {
                // (A FIFO's or a pipe's writer that sends nothing: it was said as a frozen
                // backend's wait: files40 F10.)
                // (Nothing since what it sent: files44 F5 said "nothing" after every row.)
                Some(name) => format!("for {name} to give data (its writer sends nothing now)"),
                None => "for the source's data (nothing to read)".to_owned(),
            });
        }
        if said.is_empty() {
            return String::new();
        }
        format!("copyman waits {}: ", said.join(" and "))
    }

    /// What ends "nothing has moved" for it ([`WAYS_OUT`], or [`ENDING_WAYS_OUT`] while its
    /// destinations end their COPYs).
    /// Whether its COPYs are over: the data was, and every receiver answered its end (none has
    /// an order out). What waits then is the run's next step, not a COPY's end.
    fn over(&self) -> bool {
        self.under_way.completing()
            && self.under_way.receivers().next().is_none()
            && !self.under_way.producer()
    }

    fn ways_out(&self) -> &'static str {
        let only_the_source = self.source.is_some() && self.under_way.receivers().next().is_none();
        match self.under_way.completing() {
            true => ENDING_WAYS_OUT,
            false if only_the_source => SOURCE_WAYS_OUT,
            false => WAYS_OUT,
        }
    }

    /// Interrupts it (a signal came).
    fn interrupt(&self) {
        if let Some(interrupter) = &self.interrupter {
            interrupter.interrupt();
        }
    }
}

/// The one-table copy, once it streams ([`copy_started`]).
static COPYING: Mutex<Option<Copying>> = Mutex::new(None);

/// Whether a signal now may cancel and interrupt what the run's sessions do: before its
/// transactions end (`committing`), or before the commit's point of no return (what runs then,
/// a deferred constraint's check, is called off with it).
fn may_cancel(committing: &AtomicBool) -> bool {
    !committing.load(Ordering::SeqCst) || !signals::commit_point_passed()
}

/// Interrupts the one-table run's waits (a signal came): its copy's and its sessions'
/// (`asking`), so that one whose server moves nothing is given up after the grace.
fn interrupt_waits(asking: Option<&Interrupter>) {
    if let Some(copying) = lock_briefly(&COPYING)
        && let Some(copying) = copying.as_ref()
    {
        copying.interrupt();
    }
    if let Some(asking) = asking {
        asking.interrupt();
    }
}

/// The one-table copy started streaming.
pub(crate) fn copy_started(copying: Copying) {
    *COPYING.lock().unwrap_or_else(PoisonError::into_inner) = Some(copying);
}

/// How often the one-table copy waited on each destination alone (progress62 F4: one that
/// paced the copy, a trigger slowing it fivefold, was never named): sampled by the watch every
/// [`POLL`] while the copy streams; a sample where copyman waits for destinations' sockets, not
/// for the source's data, counts for each of them.
struct Pace {
    samples: u64,
    /// By destination (0-based).
    waited: Vec<u64>,
    /// How many destinations the copy had at most.
    destinations: usize,
}

static PACE: Mutex<Pace> = Mutex::new(Pace {
    samples: 0,
    waited: Vec::new(),
    destinations: 0,
});

impl Pace {
    fn sample(&mut self, copying: &Copying) {
        let under_way = &copying.under_way;
        if under_way.completing() {
            return;
        }
        self.samples += 1;
        self.destinations = self.destinations.max(copying.live.len());
        if under_way.producer() {
            return;
        }
        for r in under_way.receivers() {
            if let Some(&d) = copying.live.get(r.0) {
                if self.waited.len() <= d {
                    self.waited.resize(d + 1, 0);
                }
                self.waited[d] += 1;
            }
        }
    }

    /// The destination that paced a copy to several, and the share of its time copyman waited
    /// on it alone: a third of 3 s or more, and at least twice any other's.
    fn pacer(&self) -> Option<(usize, f64)> {
        if self.destinations < 2 || self.samples < 30 {
            return None;
        }
        let (d, most) = (self.waited.iter().copied().enumerate()).max_by_key(|(_, w)| *w)?;
        let next = (self.waited.iter().enumerate())
            .filter(|(o, _)| *o != d)
            .map(|(_, w)| *w)
            .max()
            .unwrap_or(0);
        let share = most as f64 / self.samples as f64;
        (share >= 0.3 && most >= 2 * next).then_some((d, share))
    }
}

/// The destination (0-based) that paced the one-table copy, if one did, and the share of its
/// time copyman waited on it alone.
pub(crate) fn pacer() -> Option<(usize, f64)> {
    PACE.lock().unwrap_or_else(PoisonError::into_inner).pacer()
}

/// The one-table copy went on without destination `d` (0-based, `--keep-going`).
pub(crate) fn destination_dropped(d: usize) {
    if let Some(copying) = COPYING
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_mut()
    {
        copying.dropped.push(d);
    }
}

/// What ends "nothing has moved": what the servers show of a frozen endpoint, and the ways out.
const WAYS_OUT: &str = " (a backend that shows a wait for its client while copyman waits for it \
     is frozen, or the network path to it lost; --stall-timeout bounds such a wait, a signal \
     stops the copy and commits nothing)";

/// [`WAYS_OUT`] where only a source that is no server is waited for (a FIFO's or a pipe's
/// writer): the destinations' backends wait for copyman, as they should.
const SOURCE_WAYS_OUT: &str = " (the destinations wait for copyman, which waits for its source; \
     --stall-timeout bounds such a wait, a signal stops the copy and commits nothing)";

/// [`WAYS_OUT`] while the destinations complete their COPYs: `--stall-timeout` does not bound
/// that wait once a server read all its data (a COPY's end may run long with every byte in
/// hand: its triggers, its constraint checks; before, [`Unread`]), so it is not advised.
const ENDING_WAYS_OUT: &str = " (a backend that shows a wait for its client while copyman waits \
     for it is frozen, or the network path to it lost; --stall-timeout does not bound the end of \
     a COPY once its server read all its data (tcp_user_timeout and keepalives_idle in a \
     destination's CONN bound a lost path), a signal stops the copy and commits nothing)";

/// [`ENDING_WAYS_OUT`] where no backend shows a wait for its client: the destinations are working
/// at the end of their COPY.
const ENDING_BUSY: &str = " (the destinations end their COPY: a backend active and waiting on \
     nothing runs the statement's constraint checks or triggers on the rows it took; \
     --stall-timeout does not bound the end of a COPY once its server read all its data, a \
     signal stops the copy and commits nothing)";

/// [`WAYS_OUT`] once the COPYs are over ([`Copying::over`]): the run's next step before its
/// COMMITs (jobs48 F1: a job's source checksum under `--verify` was said as the destinations'
/// COPYs running their checks).
const COPY_OVER: &str = " (the COPYs are over: copyman runs its next step before the COMMITs — \
     the source's --verify checksum, the sequences — on the backends above; a signal stops the \
     run and commits nothing)";

/// What ends "nothing has moved" for a copy (`copying`, if it streams) whose backends look as
/// `looks` say: where one waits for a lock, the lock in words with its holders, which
/// `--lock-timeout` bounds (not a frozen server's wait); else the copy's own
/// ([`Copying::ways_out`]). One rule for the one-table and the job watch.
fn ways_out(copying: Option<&Copying>, looks: &[Look]) -> String {
    let locks: Vec<&str> = looks.iter().filter_map(|l| l.lock.as_deref()).collect();
    // At the end of the data, backends active and waiting on nothing are working (their
    // constraint checks, their triggers): not frozen (they were met with that hint).
    let client_wait = looks.iter().any(|l| {
        l.state.as_deref() == Some("active") && l.wait.as_ref().is_some_and(|(k, _)| k == "Client")
    });
    if locks.is_empty() && copying.is_some_and(Copying::over) {
        return COPY_OVER.to_owned();
    }
    if locks.is_empty() && copying.is_some_and(|c| c.under_way.completing()) && !client_wait {
        return ENDING_BUSY.to_owned();
    }
    if locks.is_empty() {
        return copying.map_or(WAYS_OUT, Copying::ways_out).to_owned();
    }
    format!(
        " (waiting for a lock: {}; --lock-timeout bounds a lock wait, a signal stops the copy \
         and commits nothing)",
        locks.join("; ")
    )
}

/// A backend of the run.
pub(crate) struct Target {
    /// How it is named: "destination 2 (host=…)".
    pub(crate) label: String,
    /// How to reach its server.
    pub(crate) spec: ServerSpec,
    /// Its process id.
    pub(crate) pid: i32,
    /// What cancels what it runs (on the address its session is on, each step within
    /// [`MONITOR_TIMEOUT`]).
    pub(crate) cancel: Option<CancelToken>,
    /// The destination (0-based) it is of the one-table copy, if it is one: what its COPY
    /// reads is heard by the copy's stall timers ([`Heard`]).
    pub(crate) destination: Option<usize>,
    /// What closes its connection from the watch ([`Unread`]).
    pub(crate) closer: Option<Closer>,
    /// When its session was known: its backend began before ([`Watch::end_orphans`]).
    known: Instant,
}

impl Target {
    /// `conn`'s backend, if the server gave its key.
    pub(crate) fn of(label: String, spec: &ServerSpec, conn: &Connection) -> Option<Self> {
        conn.session().backend_key().map(|(pid, _)| Self {
            label,
            spec: spec.clone(),
            pid,
            cancel: conn.cancel_token().ok().map(|t| t.within(MONITOR_TIMEOUT)),
            destination: None,
            closer: conn.closer().ok(),
            known: Instant::now(),
        })
    }

    /// This target, as destination `d` (0-based) of the one-table copy.
    pub(crate) fn destination(self, d: usize) -> Self {
        Self {
            destination: Some(d),
            ..self
        }
    }

    /// Sends the CancelRequest to the address its session is on (its host name's other
    /// addresses may be other servers); whether the server took it.
    fn send_cancel_request(&self) -> bool {
        self.cancel.as_ref().is_some_and(|c| c.cancel().is_ok())
    }
}

/// The running watch; it stops when dropped.
pub(crate) struct Watch {
    stop: Arc<AtomicBool>,
    committing: Arc<AtomicBool>,
    targets: Arc<Vec<Target>>,
}

impl Watch {
    /// Starts watching `targets`; `quiet` (`--quiet`) keeps all but lock waits to itself. A
    /// signal before the commit interrupts `asking`, the run's sessions' interrupter: a
    /// question whose backend froze (its cancel never read) is given up after the grace.
    pub(crate) fn start(targets: Vec<Target>, quiet: bool, asking: Option<Interrupter>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let committing = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let no_cancel = Arc::clone(&committing);
        // What a stop that takes long waits for: the statements ending the transactions that
        // are sent and not answered, else the run's backends, by name.
        let named: Vec<(String, i32)> = targets.iter().map(|t| (t.label.clone(), t.pid)).collect();
        signals::set_waiting(move || {
            let sent = SENT.lock().unwrap_or_else(PoisonError::into_inner).clone();
            let statements: Vec<String> = (named.iter())
                .filter_map(|(label, pid)| {
                    let (_, statement, since) = sent.iter().find(|(p, _, _)| p == pid)?;
                    Some(format!(
                        "{label}'s {statement} (backend {pid}, sent {} s ago)",
                        since.elapsed().as_secs()
                    ))
                })
                .collect();
            if !statements.is_empty() {
                return statements;
            }
            let backends: Vec<String> = (named.iter())
                .map(|(label, pid)| format!("{label} (backend {pid})"))
                .collect();
            vec![format!("the servers to answer: {}", backends.join(", "))]
        });
        let targets = Arc::new(targets);
        let kept = Arc::clone(&targets);
        let cancelled = Arc::clone(&targets);
        signals::set_cancel(move || {
            for target in cancelled.iter() {
                target.send_cancel_request();
            }
        });
        let (interrupted, may) = (asking.clone(), Arc::clone(&committing));
        signals::set_interrupt(move || {
            if may_cancel(&may) {
                interrupt_waits(interrupted.as_ref());
            }
        });
        // Not joined: a monitoring query in flight ends within its timeout, and nothing the
        // thread holds needs the run.
        let spawned = thread::Builder::new()
            .name("copyman-watch".to_owned())
            .spawn(move || watch(&targets, &flag, &no_cancel, quiet, asking.as_ref()));
        if let Err(e) = spawned {
            report::warn(format_args!("cannot watch for lock waits: {e}"));
        }
        Self {
            stop,
            committing,
            targets: kept,
        }
    }

    /// Ends on its server the session of each endpoint copyman closed with its statement under
    /// way (`closed`: a destination by its index, `None` the source) — one given up for a stall,
    /// or for moving no byte after an interrupt. Behind a lost network path its server never
    /// hears the close, and its backend stays in its COPY, in the run's transaction, holding its
    /// locks until the server's keepalive gives up, hours later (conn68 F2: --truncate's ACCESS
    /// EXCLUSIVE lock held, every reader of the table waiting). Terminated through a new
    /// session (`pg_terminate_backend`: a role may end its own backends) where it is still
    /// there, and its backend began before its session was known (not another that took its
    /// process id since). What was done, or the statement that does it, for each endpoint
    /// whose backend was still there or could not be asked.
    pub(crate) fn end_orphans(&self, closed: &[Option<usize>]) -> Vec<(Option<usize>, String)> {
        let mut said = Vec::new();
        for target in self.targets.iter() {
            if !closed.contains(&target.destination) {
                continue;
            }
            let pid = target.pid;
            let began = target.known.elapsed().as_secs_f64() - 1.0;
            let asked = (target.spec.connect_monitor(MONITOR_TIMEOUT))
                .map(|mut conn| commit::end_orphan(&mut conn, pid, began));
            let words = match asked {
                Ok(Some(false)) => continue,
                Ok(Some(true)) => {
                    format!(
                        "its session there (backend {pid}), which copyman had closed and its \
                         server had not heard so, was terminated: it held the run's transaction \
                         and its locks"
                    )
                }
                unended => {
                    let why = match unended {
                        Err(e) => {
                            format!("a new session could not ask it: {}", report::describe(&e))
                        }
                        Ok(_) => "its session's role may not see it, terminating it was refused, \
                                  or it did not end within 2 s of being told to (a frozen \
                                  backend)"
                            .to_owned(),
                    };
                    format!(
                        "its session there (backend {pid}) may still run its statement in the \
                         run's transaction, holding its locks, until its server notices that \
                         copyman closed it ({why}); end it there: SELECT \
                         pg_terminate_backend({pid})"
                    )
                }
            };
            said.push((target.destination, words));
        }
        said
    }

    /// The run ends its transactions now: a signal no longer cancels anything (a COMMIT or
    /// ROLLBACK is short, and one cancelled half-way would leave the destinations split).
    pub(crate) fn ending(&self) {
        self.committing.store(true, Ordering::SeqCst);
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        progress::set_note(None);
    }
}

/// Why a session whose server answered nothing before the copy for the stall timeout is closed.
const SILENT_SINCE_CONNECTED: &str = "its server has answered nothing for the stall timeout, \
     neither its session's question nor a new session (a frozen server, or the network path \
     to it lost)";

/// What is said of a ROLLBACK PREPARED waiting for a synchronous standby, whose wait copyman
/// cancels (a job's watch, one table's commit), after its name.
pub(crate) const STANDBY_ROLLBACK_CANCELLED: &str = "waits for a synchronous standby \
     (synchronous_standby_names on that server): rolled back there already, only the standby's \
     word is waited for: its wait is cancelled";

/// What copyman (a run, a job, recover) says of a `COMMIT` (`PREPARED`) whose wait for a
/// synchronous standby it cancelled ([`crate::finish::StandbyWait::watch_commit`]).
pub(crate) const STANDBY_COMMIT_CANCELLED: &str = "waited 10 s for a synchronous standby \
     (synchronous_standby_names on that server): committed there already, only the standby's \
     word is waited for: its wait is cancelled, so that the other servers are finished (the \
     standby gets it when it catches up)";

/// What copyman (a run, a job) says of a `PREPARE TRANSACTION` whose wait for a synchronous
/// standby it cancelled ([`crate::finish::StandbyWait::watch_prepare`]).
pub(crate) const STANDBY_PREPARE_CANCELLED: &str = "waited 10 s for a synchronous standby \
     (synchronous_standby_names on that server): prepared there already, only the standby's \
     word is waited for: its wait is cancelled, so that the commit goes on (the standby gets it \
     when it catches up)";

/// A look's activity when the monitoring connection could not ask.
const CANNOT_BE_ASKED: &str = "its server cannot be asked";

/// A short monitoring connection to one server, opened when first needed and again after a
/// failure (until one connect fails: then that server is not asked again).
pub(crate) struct Monitor {
    /// The server, and how it is named in the log.
    spec: ServerSpec,
    label: String,
    conn: Option<Connection>,
    /// Gave up on a monitoring connection.
    unreachable: bool,
    /// Why the server could not be asked, last time (a role's connection limit: 53300).
    why: Option<String>,
    /// That last failure was its server's own answer (a SQLSTATE: a connection limit, 53300),
    /// not silence: the server is up.
    answered: bool,
}

impl Monitor {
    pub(crate) fn new(spec: ServerSpec, label: String) -> Self {
        Self {
            spec,
            label,
            conn: None,
            unreachable: false,
            why: None,
            answered: false,
        }
    }

    fn conn(&mut self) -> Option<&mut Connection> {
        if self.conn.is_none() && !self.unreachable {
            match self.spec.connect_monitor(MONITOR_TIMEOUT) {
                Ok(conn) => self.conn = Some(conn),
                Err(e) => {
                    let said = report::describe(&e);
                    let why = said.to_string();
                    // Under --stall-timeout that session is how a destination storing rows is
                    // told from a stalled one: without it, said (conn66 F5: a busy destination
                    // failed as "no byte moved", the reason in -v only).
                    match STALL_TIMEOUT.get().copied().flatten() {
                        Some(limit) => report::warn(format_args!(
                            "cannot open a monitoring connection for {}: {why}: --stall-timeout \
                             ({} s) cannot see its server read or store rows, and a wait of its \
                             own that long (a large row stored, a trigger) fails it as stalled",
                            self.label,
                            limit.as_secs_f64()
                        )),
                        None => report::log(format_args!(
                            "cannot open a monitoring connection for {}: {why}",
                            self.label
                        )),
                    }
                    self.answered = said.sqlstate.is_some();
                    self.why = Some(why);
                    self.unreachable = true;
                }
            }
        }
        self.conn.as_mut()
    }

    /// Runs `sql` on the monitoring connection; a failure closes it (it is opened again on the
    /// next question).
    fn query(&mut self, sql: &str) -> Option<Vec<Vec<Option<String>>>> {
        let result = self.conn()?.query(sql);
        match result {
            Ok(rows) => Some(rows),
            Err(e) => {
                let said = report::describe(&e);
                self.answered = said.sqlstate.is_some();
                self.why = Some(said.to_string());
                self.conn = None;
                None
            }
        }
    }

    /// Cancels what `target`'s backend (on this monitor's server) runs: its CancelRequest, else
    /// `pg_cancel_backend` on the monitoring connection.
    pub(crate) fn cancel(&mut self, target: &Target) {
        if target.send_cancel_request() {
            report::log(format_args!("sent a cancel request to {}", target.label));
            return;
        }
        let pid = target.pid;
        if self
            .query(&format!("SELECT pg_cancel_backend({pid})"))
            .is_some()
        {
            report::log(format_args!("cancelled backend {pid} of {}", target.label));
        }
    }

    /// What backend `pid` is doing: a lock it waits for, and its activity in words.
    pub(crate) fn look(&mut self, pid: i32) -> Look {
        // What its COPY read so far, where the server says (PostgreSQL 14's view).
        let copy_progress = match self
            .conn()
            .and_then(|c| c.session().server_version_num())
            .is_some_and(|v| v >= 140_000)
        {
            true => {
                // Rows a `WHERE` of the COPY left out were read too (recheck47b F4: a slow
                // filter's work was not heard).
                "(SELECT (p.tuples_processed + p.tuples_excluded) || ' ' || p.bytes_processed \
                    FROM pg_stat_progress_copy p \
                   WHERE p.pid = a.pid AND p.command = 'COPY FROM')"
            }
            false => "NULL",
        };
        let Some(rows) = self.query(&format!(
            "SELECT a.state, a.wait_event_type, a.wait_event,
                    (SELECT coalesce(l.relation::regclass::text,
                                     'transaction ' || l.transactionid::text,
                                     CASE WHEN l.locktype = 'advisory' AND l.objsubid = 1
                                          THEN 'key ' || ((l.classid::int8 << 32) | l.objid::int8)
                                          WHEN l.locktype = 'advisory'
                                          THEN 'keys ' || l.classid || ', ' || l.objid END,
                                     l.locktype)
                       FROM pg_locks l WHERE l.pid = a.pid AND NOT l.granted LIMIT 1),
                    CASE WHEN a.wait_event_type = 'Lock'
                         THEN {} END,
                    (SELECT CASE WHEN length(q) < length(a.query) THEN q || '...' ELSE q END
                       FROM (SELECT left(split_part(a.query, '''', 1), 60) AS q) s),
                    to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'),
                    CASE WHEN a.wait_event_type = 'Lock'
                         THEN (SELECT string_agg(b.pid || ' ' || coalesce(to_char(b.backend_start
                                          AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), ''), ',')
                                 FROM pg_stat_activity b
                                WHERE b.pid = ANY (pg_blocking_pids(a.pid))) END,
                    {copy_progress}
               FROM pg_stat_activity a
              WHERE a.pid = {pid}",
            commit::lock_holders_sql("a.pid")
        )) else {
            return Look {
                lock: None,
                activity: match &self.why {
                    Some(why) => format!("{CANNOT_BE_ASKED} ({why})"),
                    None => CANNOT_BE_ASKED.to_owned(),
                },
                state: None,
                wait: None,
                statement: None,
                backend: None,
                blockers: Vec::new(),
                unseen: !self.answered,
                prepared_holders: None,
                copied: None,
                held: false,
            };
        };
        let Some(row) = rows.into_iter().next() else {
            return Look {
                lock: None,
                activity: format!("backend {pid} is gone"),
                state: None,
                wait: None,
                statement: None,
                backend: None,
                blockers: Vec::new(),
                unseen: false,
                prepared_holders: None,
                copied: None,
                held: false,
            };
        };
        let field = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
        let (state, kind, event, what, holders) =
            (field(0), field(1), field(2), field(3), field(4));
        let copied = field(8)
            .split_once(' ')
            .and_then(|(rows, bytes)| Some((rows.parse().ok()?, bytes.parse().ok()?)));
        let mut activity = format!("backend {pid} {state}");
        if !kind.is_empty() {
            activity.push_str(&format!(", waiting on {kind}/{event}"));
        }
        // A lock held in passing by its holder named (recheck48b F6: ranges waiting on the
        // extend lock a frozen range held were each said frozen, the frozen one never named).
        if kind == "Lock" && held_in_passing(&event) && !holders.is_empty() {
            activity.push_str(&format!(" {}", commit::held_by(&holders)));
        }
        if let Some((rows, bytes)) = copied {
            // (A frozen one that holds copyman's last bytes unread was said to run its checks
            // "on the rows it took": progress45 F1.)
            activity.push_str(&format!(
                ", its COPY read {} ({}) so far",
                progress::rows(rows),
                indicatif::HumanBytes(bytes)
            ));
        }
        let wait = (!kind.is_empty()).then(|| (kind.clone(), event.clone()));
        let statement = Some(field(5).trim().to_owned()).filter(|s| !s.is_empty());
        let backend = Some(Backend {
            pid,
            started: field(6),
        });
        // "pid start,pid start": a start time has no comma.
        let blockers = field(7)
            .split(',')
            .filter_map(|b| {
                let (pid, started) = b.split_once(' ')?;
                Some(Backend {
                    pid: pid.parse().ok()?,
                    started: started.to_owned(),
                })
            })
            .collect();
        if kind != "Lock" || held_in_passing(&event) {
            return Look {
                lock: None,
                activity,
                state: Some(state),
                wait,
                statement,
                backend,
                blockers: Vec::new(),
                unseen: false,
                prepared_holders: None,
                copied,
                held: !holders.is_empty(),
            };
        }
        // A transaction's end (a row it holds, FOR UPDATE, or wrote with the same key), not
        // "a transactionid lock on transactionid".
        let mut lock = if event == "transactionid" && what.starts_with("transaction ") {
            format!(
                "backend {pid} waits for {what} to end (a row it holds or wrote: FOR UPDATE, or \
                 an uncommitted row of the same key)"
            )
        } else {
            let a = if event.starts_with(['a', 'e', 'i', 'o', 'u']) {
                "an"
            } else {
                "a"
            };
            match what.is_empty() {
                true => format!("backend {pid} waits for {a} {event} lock"),
                false => format!("backend {pid} waits for {a} {event} lock on {what}"),
            }
        };
        if !holders.is_empty() {
            // A prepared transaction (pg_blocking_pids says 0) by its name.
            lock.push_str(&format!(", {}", commit::held_by(&holders)));
        }
        // copyman's, and a run's that no copyman process on this host runs still (this run's
        // own, or another's in progress, end with their decision).
        let gids: Vec<&str> = holders
            .split(", ")
            .filter(|h| !h.is_empty())
            .map(|h| {
                h.strip_prefix("prepared ").filter(|g| {
                    commit::parse_gid(g).is_some_and(|(run, _)| commit::live_run(run).is_none())
                })
            })
            .collect::<Option<_>>()
            .unwrap_or_default();
        Look {
            lock: Some(lock),
            activity,
            state: Some(state),
            wait,
            statement,
            backend,
            blockers,
            unseen: false,
            prepared_holders: (!gids.is_empty()).then(|| gids.join(", ")),
            copied,
            held: !holders.is_empty(),
        }
    }
}

/// A backend as its server names it: a process id is reused, a process id with its start time
/// is not (and two servers' backends never share both).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Backend {
    /// Its process id.
    pub(crate) pid: i32,
    /// `pg_stat_activity.backend_start`, in UTC and a fixed form (`YYYY-MM-DD HH24:MI:SS.US`).
    pub(crate) started: String,
}

struct Watched<'t> {
    target: &'t Target,
    monitor: Monitor,
    waiting: bool,
    /// When its unanswered statement ending the transaction (a COMMIT) was last said.
    told_commit: Option<Instant>,
    /// How many looks in a row found it not running its unanswered statement.
    idle_looks: u32,
}

/// What a look at a backend found.
pub(crate) struct Look {
    /// The lock it waits for, in words.
    pub(crate) lock: Option<String>,
    /// Its state and wait event, in words.
    pub(crate) activity: String,
    /// Its `pg_stat_activity.state` (`None`: not known).
    pub(crate) state: Option<String>,
    /// Its `wait_event_type` and `wait_event`, if it waits.
    pub(crate) wait: Option<(String, String)>,
    /// Its statement's first words, up to a quote (`COMMIT PREPARED`), when it is known.
    pub(crate) statement: Option<String>,
    /// The backend looked at (`None`: its server could not say).
    pub(crate) backend: Option<Backend>,
    /// The backends holding the lock it waits for (`pg_blocking_pids`).
    pub(crate) blockers: Vec<Backend>,
    /// Its server could not be asked and did not answer why (a monitor's connect or question
    /// that timed out): frozen, or its network path lost.
    pub(crate) unseen: bool,
    /// The lock it waits for is held by copyman's prepared transactions alone (their global
    /// ids): an earlier run's, stopped between its PREPARE and its end, which no wait ends.
    pub(crate) prepared_holders: Option<String>,
    /// The rows and bytes its `COPY … FROM STDIN` read so far (`pg_stat_progress_copy`,
    /// PostgreSQL 14 on; `None`: no such COPY, or its server does not say).
    pub(crate) copied: Option<(u64, u64)>,
    /// The lock it waits for has holders its server names (`pg_blocking_pids`): another
    /// backend holds it, or waits for it ahead of this one.
    pub(crate) held: bool,
}

/// Whether a heavyweight lock of type `event` (`pg_stat_activity.wait_event` under `Lock`) is
/// held for the moment of one action, never to its transaction's end: a relation extended by a
/// page, a page's, the speculative insertion's token, a row's tuple lock (whose holder waits
/// itself on the row's transaction). Sessions that write one table side by side (a split table's
/// ranges) meet them in passing: no lock wait to say, nor a wait on itself (jobs48 F2: ranges
/// cancelled as waiting on each other for ever for an extend lock, and the copy failed).
fn held_in_passing(event: &str) -> bool {
    matches!(
        event,
        "extend" | "page" | "frozenid" | "spectoken" | "tuple"
    )
}

/// Two sessions of one copy, one waiting for a lock the other holds: the holder's transaction
/// ends only when the copy ends, and the copy cannot end while the waiter waits (copyman
/// writes to it or reads from it, and ends no transaction before every endpoint finished). No
/// timeout of the server's and no deadlock detector sees it (the holder is idle in its
/// transaction, not waiting for a lock): only a cancel ends it.
///
/// `looks` are the copy's backends; the first waiter found and its holder, by their indexes.
/// A holder is known by its pid and start; by its pid alone where the waiter's server hides
/// its start (a role that may not see another role's backends whole: two destinations of one
/// database reached as two roles waited on each other for ever). A pid is another's on
/// another host only; on one host, never while that backend lives.
fn waits_on_itself(looks: &[&Look]) -> Option<(usize, usize)> {
    looks.iter().enumerate().find_map(|(i, look)| {
        look.blockers.iter().find_map(|blocker| {
            looks
                .iter()
                .position(|other| {
                    other.backend.as_ref().is_some_and(|own| {
                        own == blocker || (blocker.started.is_empty() && own.pid == blocker.pid)
                    })
                })
                .filter(|&j| j != i)
                .map(|j| (i, j))
        })
    })
}

/// The waits said on stderr — for a lock, a copy that stopped moving — for `--json`'s `waits`.
static LOCK_WAITS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Says that the session `label` waits for a lock (`what`: on what, held by whom), once per
/// wait, and keeps it for `--json` ([`lock_waits`]).
fn say_lock_wait(label: &str, what: &str) {
    say_wait(format!("waiting for lock on {label}: {what}"));
}

/// Says a wait (`said`, without the `copyman: ` that begins its line) and keeps it for
/// `--json` ([`lock_waits`]): a copy that stopped moving was said on stderr only
/// (progress62 F3: its document's `waits` were empty after 14 s held by a destination).
fn say_wait(said: String) {
    progress::println(&format!("copyman: {said}"));
    LOCK_WAITS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(said);
}

/// The waits this run said, in order ([`say_wait`]).
pub(crate) fn lock_waits() -> Vec<String> {
    LOCK_WAITS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

/// Why copyman cancelled a session of its own copy ([`waits_on_itself`]), once it did: the
/// summary repeats it under the server's "canceling statement due to user request".
static WAITED_ON_ITSELF: Mutex<Option<String>> = Mutex::new(None);

/// Why copyman cancelled a session of this run because it waited on another of the same copy,
/// if it did.
pub(crate) fn waited_on_itself() -> Option<String> {
    WAITED_ON_ITSELF
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

/// Says that `waiter` waits for a lock `holder` holds in the same copy (`lock`: its kind in
/// words, [`Look::lock_kind`]), records it for the summary ([`waited_on_itself`]), and returns
/// why the waiter is cancelled.
fn say_waits_on_itself(waiter: &str, holder: &str, lock: &str) -> String {
    let why = format!(
        "{waiter} was cancelled by copyman: it waited for {lock} that {holder}, another session \
         of this same copy, holds, and that session's transaction ends only with the copy: \
         nothing could ever release it"
    );
    // Under --keep-going the others go on and commit (it said nothing of the copy was, and
    // then one destination committed: dupes47 F4).
    let then = match KEEP_GOING.load(Ordering::SeqCst) {
        true => "its copy fails there, and is left out (--keep-going): the others go on",
        false => "the copy fails, nothing of it is committed",
    };
    progress::println(&format!("copyman: {why}; {then}"));
    *WAITED_ON_ITSELF
        .lock()
        .unwrap_or_else(PoisonError::into_inner) = Some(why.clone());
    why
}

/// Says that `waiter` waits for a lock that only copyman's prepared transactions `gids` hold
/// (an earlier run's, stopped between its PREPARE and its end: no wait ends it), records it
/// for the summary ([`waited_on_itself`]), and returns why the waiter is cancelled.
fn say_waits_on_prepared(waiters: &[String], gids: &str) -> String {
    let (who, it) = match waiters.len() {
        1 => ("was", "it"),
        _ => ("were", "each"),
    };
    let plural = if gids.contains(", ") { "s" } else { "" };
    let why = format!(
        "{} {who} cancelled by copyman: {it} waited for a lock held by copyman's prepared \
         transaction{plural} {gids} (an earlier run's, stopped between its PREPARE and its end), \
         which no wait ends: finish it with copyman recover (its run's decision log says which \
         way), then run again",
        waiters.join("; ")
    );
    progress::println(&format!("copyman: {why}"));
    // Beside what was said before (waiters seen in later looks).
    let mut said = WAITED_ON_ITSELF
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    *said = Some(match said.take() {
        Some(before) => format!("{before}; {why}"),
        None => why.clone(),
    });
    why
}

impl Look {
    /// "a transactionid lock": the kind of lock it waits for, in words.
    fn lock_kind(&self) -> String {
        match &self.wait {
            Some((kind, event)) if kind == "Lock" && event == "transactionid" => {
                "a row's lock (the end of the transaction that holds or wrote the row)".to_owned()
            }
            Some((kind, event))
                if kind == "Lock" && event.starts_with(['a', 'e', 'i', 'o', 'u']) =>
            {
                format!("an {event} lock")
            }
            Some((kind, event)) if kind == "Lock" => format!("a {event} lock"),
            _ => "a lock".to_owned(),
        }
    }

    /// `label`, its backend and the statement it runs when they are known: "destination 2 (…)
    /// (backend 1234: `COPY pt_1 FROM STDIN`)".
    fn named(&self, label: &str) -> String {
        let pid = self
            .backend
            .as_ref()
            .map(|b| format!("backend {}", b.pid))
            .unwrap_or_default();
        match &self.statement {
            Some(statement) => format!("{label} ({pid}: `{statement}`)"),
            None if pid.is_empty() => label.to_owned(),
            None => format!("{label} ({pid})"),
        }
    }

    /// "waiting 3 s for destination 2 (…)'s COMMIT of table t: backend 1234 active, waiting on
    /// IPC/SyncRep: waiting for a synchronous standby …": a statement ending a transaction that
    /// has not been answered, said the same way by the one-table and the job watches.
    fn commit_wait(&self, waited: Duration, label: &str, statement: &str, table: &str) -> String {
        let hint = match self.state.as_deref() {
            Some("active") => self
                .wait
                .as_ref()
                .map(|(kind, event)| commit_wait_hint(kind, event).to_owned())
                .unwrap_or_default(),
            // Not when its server answered the monitor with an error (a connection limit,
            // 53300): it is up.
            None if self.unseen => {
                ": a frozen server, or a network path to it that is lost?".to_owned()
            }
            None => String::new(),
            Some(state) => not_running_hint(state, statement),
        };
        // Only a COMMIT may have committed; a check or a PREPARE says what it did by its answer.
        // A statement still running that ends no transaction (a COPY whose trigger runs on
        // after the copy was failed) ends once its server gets to it.
        let ends_transaction = ["COMMIT", "PREPARE", "ROLLBACK", "SET CONSTRAINTS", "END"]
            .iter()
            .any(|s| {
                statement
                    .get(..s.len())
                    .is_some_and(|w| w.eq_ignore_ascii_case(s))
            });
        // A PREPARE is given up at the stall timeout (commit68 F10; a job's: recheck70 F4).
        let bounded = STALL_TIMEOUT.get().copied().flatten();
        let not_cancelled = |why: &str| format!("not cancelled: {why}");
        let for_standby = (self.wait.as_ref()).is_some_and(|(k, e)| k == "IPC" && e == "SyncRep");
        let patience = crate::finish::STANDBY_COMMIT_PATIENCE;
        // (A PREPARE given up at a shorter --stall-timeout first.)
        let prepare_waits =
            statement.starts_with("PREPARE") && bounded.is_none_or(|limit| limit >= patience);
        let why = if for_standby && (statement.starts_with("COMMIT") || prepare_waits) {
            format!(
                "{} there already: its wait is cancelled at {} s",
                match prepare_waits {
                    true => "prepared",
                    false => "committed",
                },
                patience.as_secs()
            )
        } else if statement.starts_with("COMMIT") {
            not_cancelled("only its answer says whether it committed")
        } else if let Some(limit) = bounded.filter(|_| statement.starts_with("PREPARE")) {
            format!(
                "given up at --stall-timeout {} s: nothing is decided before every PREPARE is \
                 answered",
                limit.as_secs_f64()
            )
        } else if ends_transaction {
            not_cancelled("only its answer says what it did")
        } else {
            not_cancelled("its transaction is ended once it returns; nothing of it is committed")
        };
        // Tenths under 10 s: a wait said near a short limit is not "0 s" (nor 4 s of a 5-s one
        // at its end).
        let waited = match waited.as_secs() {
            0..10 => format!("{:.1}", waited.as_secs_f64()),
            whole => whole.to_string(),
        };
        format!(
            "copyman: waiting {waited} s for {label}'s {statement}{table}: {}{hint} ({why})",
            self.activity
        )
    }
}

/// Why a backend is not running a statement ending its transaction that copyman sent more than
/// a second ago and that is not answered: seen so on two looks in a row. Idle in its transaction
/// (a `COMMIT`, a `PREPARE TRANSACTION` not begun), it has not read it; idle, it may have run it
/// and its answer never came back. Either way its server still sees a live session: a
/// frozen backend (SIGSTOP, a stalled machine), or a network path to it that drops the packets
/// of this connection only — TCP gives up after many minutes.
fn not_running_hint(state: &str, statement: &str) -> String {
    let why = "a frozen backend, or a network path to it that lost this connection?";
    if state == "idle in transaction" && !statement.starts_with("SET CONSTRAINTS") {
        format!(": it has not read the {statement} ({why})")
    } else {
        format!(
            ": it is not running the {statement}: it has not read it, or its answer has not \
             come back ({why})"
        )
    }
}

/// Who holds a decision log's lock, in words: `process 123 holds it (flock … sleep 30)`; a
/// process that took it and has exited since (its command line gone) is said so: a process it
/// started holds it on (signals67 F10: "process 18018 holds it ()").
pub(crate) fn holds(pid: u32, command: &str) -> String {
    match command.trim() {
        "" => {
            format!("process {pid} took it and has exited since: a process it started holds it on")
        }
        command => format!("process {pid} holds it ({command})"),
    }
}

/// The statements ending a one-table run's transactions that wait for a synchronous standby
/// (`IPC SyncRep`; "destination 2 (…)'s COMMIT"), as the watch's last look found them: a stop then
/// waits for that standby, which the first signal's words say (signals65 F7: "finishes").
static STANDBY_WAITS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// [`STANDBY_WAITS`].
pub(crate) fn standby_waits() -> Vec<String> {
    lock_briefly(&STANDBY_WAITS)
        .map(|w| w.clone())
        .unwrap_or_default()
}

/// The statements ending a one-table run's transactions that are sent and not yet answered, by
/// backend: (process id, statement, when it was sent). The watch says a backend that does not
/// run its statement ([`not_running_hint`]), which the server alone cannot tell from one that
/// waits for copyman's next.
static SENT: Mutex<Vec<(i32, &'static str, Instant)>> = Mutex::new(Vec::new());

/// A statement ending a transaction sent to a backend, unanswered while this lives
/// ([`sending`]).
pub(crate) struct Sending(Option<i32>);

/// `action` goes to the backend `pid` now (`None`: no backend, a file): known to the watch
/// until the returned guard is dropped, once it is answered.
pub(crate) fn sending(pid: Option<i32>, action: &Action) -> Sending {
    if let Some(pid) = pid {
        SENT.lock().unwrap_or_else(PoisonError::into_inner).push((
            pid,
            statement_name(action),
            Instant::now(),
        ));
    }
    Sending(pid)
}

impl Drop for Sending {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            SENT.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .retain(|(p, _, _)| *p != pid);
        }
    }
}

/// The statement sent to backend `pid` and unanswered for more than [`STILL`], if any.
fn sent_to(pid: i32) -> Option<(&'static str, Instant)> {
    SENT.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .find(|(p, _, since)| *p == pid && since.elapsed() >= STILL)
        .map(|(_, statement, since)| (*statement, *since))
}

/// What a backend's wait event likely means, for a statement that ends a transaction.
fn commit_wait_hint(kind: &str, event: &str) -> &'static str {
    match (kind, event) {
        ("IPC", "SyncRep") => {
            ": waiting for a synchronous standby that is not there? (synchronous_standby_names \
             on that server)"
        }
        ("IO", "WALSync" | "WALWrite") => ": writing its WAL to disk",
        ("Lock", _) => ": waiting for a lock",
        _ => "",
    }
}

/// Sleeps [`POLL`], and whether that took seconds more: copyman itself was stopped (SIGSTOP,
/// Ctrl-Z) or not run meanwhile, and that time is no server's. Said (unless `quiet`). (The sleep
/// alone: the watch's own work between two sleeps — a monitoring connect that waits out its
/// timeout — was said as copyman stopped.)
fn sleep_was_stopped(quiet: bool) -> bool {
    let fell_asleep = Instant::now();
    thread::sleep(POLL);
    let slept = fell_asleep.elapsed();
    let stopped = slept >= POLL + Duration::from_secs(3);
    if stopped && !quiet {
        progress::println(&format!(
            "copyman: copyman itself was stopped for {} s (SIGSTOP or Ctrl-Z, then SIGCONT): that \
             time is not counted against the servers",
            slept.as_secs()
        ));
    }
    stopped
}

fn watch(
    targets: &[Target],
    stop: &AtomicBool,
    committing: &AtomicBool,
    quiet: bool,
    asking: Option<&Interrupter>,
) {
    let mut watched: Vec<Watched<'_>> = targets
        .iter()
        .map(|target| Watched {
            target,
            monitor: Monitor::new(target.spec.clone(), target.label.clone()),
            waiting: false,
            told_commit: None,
            idle_looks: 0,
        })
        .collect();
    let mut ticks = progress::ticks();
    // The destinations storing what they were sent while copyman's bytes stand still.
    let mut storing = Storing::default();
    let mut heard = Heard::default();
    let mut unread = Unread::default();
    let mut moved = Instant::now();
    let mut last_look: Option<Instant> = None;
    let mut last_cancel: Option<Instant> = None;
    let mut told_stuck = false;
    // When copyman's own wait to write its commit decision was last said.
    let mut told_recording: Option<Instant> = None;
    // What the copy waits for, as the bar says it while nothing moves (": copyman waits for
    // destination 2 to take data …"), once said; and that the bar says it.
    let mut stuck_on = String::new();
    let mut stall_noted = false;
    // When the wait was last said: again every `say_after`, shortly, while nothing moves.
    let mut said_at = Instant::now();
    let mut told_itself = false;
    // The backend a look found waiting on copyman's prepared transactions: cancelled if the
    // next look finds it so still (one a DBA finishes by hand just then is let go).
    let mut on_prepared: Vec<i32> = Vec::new();
    // The waiters on them said so far.
    let mut said_on_prepared: Vec<i32> = Vec::new();
    // The backends whose server answered nothing before the copy, given up.
    let mut silent: Vec<i32> = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        // copyman itself stopped (Ctrl-Z, SIGSTOP) for a while: that time is not the servers'
        // (dups49 F3: a destination said frozen after `fg`).
        if sleep_was_stopped(quiet) {
            moved = Instant::now();
            said_at = moved;
            told_stuck = false;
            continue;
        }
        if let Some(copying) = lock_briefly(&COPYING)
            && let Some(copying) = copying.as_ref()
        {
            let mut pace = PACE.lock().unwrap_or_else(PoisonError::into_inner);
            pace.sample(copying);
            progress::set_slow(pace.pacer().map(|(d, _)| d));
        }
        let due = last_look.is_none_or(|t| t.elapsed() >= look_every());
        if signals::received().is_some() {
            // At once (a second signal may follow quickly), then once a second.
            // Before the commit's point of no return, what it runs (a deferred constraint's
            // check) is called off with it: cancelled too.
            if last_cancel.is_none_or(|t| t.elapsed() >= STILL) && may_cancel(committing) {
                last_cancel = Some(Instant::now());
                interrupt_waits(asking);
                for w in &mut watched {
                    w.monitor.cancel(w.target);
                }
            }
            continue;
        }
        let now_ticks = progress::ticks();
        if now_ticks != ticks {
            ticks = now_ticks;
            moved = Instant::now();
            told_stuck = false;
            let noted = storing.grew.is_some() || std::mem::take(&mut stall_noted);
            storing.bytes_moved();
            if noted || watched.iter().any(|w| w.waiting) {
                for w in &mut watched {
                    w.waiting = false;
                }
                progress::set_note(None);
            }
            continue;
        }
        if moved.elapsed() < look_every() || !due {
            continue;
        }
        last_look = Some(Instant::now());
        let mut notes = Vec::new();
        let mut activities = Vec::new();
        let mut looks = Vec::new();
        let mut standby_waits = Vec::new();
        for w in &mut watched {
            let look = w.monitor.look(w.target.pid);
            if stop.load(Ordering::SeqCst) {
                return;
            }
            activities.push(format!("{}: {}", w.target.label, look.activity));
            // The commit: a statement ending the transaction that is not answered is said
            // after a second and every ten (even under --quiet: a wait without a word is a hang);
            // one its backend does not run, or whose server cannot be asked (its network path
            // lost: the monitor's connect through it times out), once two looks in a row found
            // it so.
            let sent = sent_to(w.target.pid);
            let active = look.state.as_deref() == Some("active");
            w.idle_looks = match (&sent, active) {
                (Some(_), false) => w.idle_looks + 1,
                _ => 0,
            };
            let for_standby =
                (look.wait.as_ref()).is_some_and(|(k, e)| k == "IPC" && e == "SyncRep");
            if committing.load(Ordering::SeqCst) && active && for_standby {
                let statement = look.statement.as_deref().unwrap_or("COMMIT");
                let wait = format!("{}'s {statement}", w.target.label);
                // Known at once (the look's end may come after a signal the wait's words
                // brought); the whole look's list replaces it below.
                if let Some(mut waits) = lock_briefly(&STANDBY_WAITS)
                    && !waits.contains(&wait)
                {
                    waits.push(wait.clone());
                }
                standby_waits.push(wait);
            }
            if committing.load(Ordering::SeqCst)
                && (active || w.idle_looks >= 2)
                && w.told_commit.is_none_or(|t| t.elapsed() >= say_after())
            {
                w.told_commit = Some(Instant::now());
                let (statement, waited) = match sent {
                    Some((statement, since)) if !active => (statement, since.elapsed()),
                    _ => (
                        look.statement.as_deref().unwrap_or("statement"),
                        moved.elapsed(),
                    ),
                };
                let said = look.commit_wait(waited, &w.target.label, statement, "");
                progress::println(&said);
            }
            match &look.lock {
                Some(what) => {
                    if !w.waiting {
                        say_lock_wait(&w.target.label, what);
                    }
                    w.waiting = true;
                    notes.push(format!("waiting for lock on {}", w.target.label));
                }
                None => w.waiting = false,
            }
            looks.push(look);
        }
        progress::set_note((!notes.is_empty()).then(|| notes.join("; ")));
        if let Some(mut waits) = lock_briefly(&STANDBY_WAITS) {
            *waits = standby_waits;
        }
        // Before the copy, under --stall-timeout, a server that answered nothing for that long,
        // neither its session's question nor a new session, is given up: its session closed,
        // so that the run ends now, not after the limit again on each question that follows
        // (recheck69 F6: seven questions, the limit each, said bounded all the while).
        let before_copy = lock_briefly(&COPYING).is_some_and(|c| c.is_none());
        if let Some(limit) = STALL_TIMEOUT.get().copied().flatten()
            && before_copy
            && !committing.load(Ordering::SeqCst)
            && moved.elapsed() >= limit
        {
            for (w, look) in watched.iter().zip(&looks) {
                let Some(closer) = w.target.closer.as_ref().filter(|_| look.unseen) else {
                    continue;
                };
                if !silent.contains(&w.target.pid) {
                    silent.push(w.target.pid);
                    progress::println(&format!(
                        "copyman: {}: {} (--stall-timeout {} s): its session is given up",
                        w.target.label,
                        SILENT_SINCE_CONNECTED,
                        limit.as_secs_f64()
                    ));
                    closer.close(SILENT_SINCE_CONNECTED);
                }
            }
        }
        if let Some(copying) = lock_briefly(&COPYING) {
            let destinations = watched
                .iter()
                .zip(&looks)
                .filter_map(|(w, look)| Some((w.target.destination?, w.target.pid, look)));
            heard.look(copying.as_slice(), destinations);
            if let Some(copying) = copying.as_ref() {
                let destinations = watched
                    .iter()
                    .zip(&looks)
                    .filter_map(|(w, look)| Some((w.target.destination?, w.target, look)));
                unread.look(copying, destinations);
                // One the copy went on without, or given up, stores nothing of it (recheck47
                // F5: a destination dropped for a stall was still said storing).
                for (w, look) in watched.iter().zip(looks.iter_mut()) {
                    if w.target
                        .destination
                        .is_some_and(|d| copying.dropped.contains(&d))
                        || unread.gave_up(w.target.pid)
                    {
                        look.copied = None;
                    }
                }
            }
        }
        if let Some((read, more, over)) = storing.look(&looks) {
            told_stuck = false;
            // On the bar too, which counts what the source gave: it stood at 100% while they
            // stored (progress45 F5).
            if notes.is_empty() {
                progress::set_note(Some(format!(
                    "the destinations store what they were sent: {} read",
                    progress::rows(read)
                )));
            }
            if !quiet
                && !committing.load(Ordering::SeqCst)
                && moved.elapsed() >= say_after()
                && over >= say_after()
            {
                storing.said();
                let labels = watched.iter().map(|w| w.target.label.as_str());
                say_storing("", labels.zip(&looks), more, over);
            }
        }
        // Nothing moved since copyman's last byte or a server's last stored row.
        let still = storing.still_since(moved);
        // A session waiting for another of this copy: cancelled, once a second until the copy
        // ends (not while it commits: a COMMIT cancelled half-way would split the destinations).
        let refs: Vec<&Look> = looks.iter().collect();
        if let Some((waiter, holder)) = waits_on_itself(&refs)
            && !committing.load(Ordering::SeqCst)
        {
            let w = &mut watched[waiter];
            if !told_itself {
                told_itself = true;
                let lock = looks[waiter].lock_kind();
                let _ = say_waits_on_itself(
                    &looks[waiter].named(&w.target.label),
                    &looks[holder].named(&targets[holder].label),
                    &lock,
                );
            }
            w.monitor.cancel(w.target);
        }
        // Sessions waiting for a lock only copyman's prepared transactions hold, two looks in
        // a row: cancelled (not while it commits), every one of them, said once (the first
        // only was named, commit44 F1).
        let prepared: Vec<(usize, String)> = (looks.iter().enumerate())
            .filter_map(|(i, l)| l.prepared_holders.clone().map(|gids| (i, gids)))
            .collect();
        let seen_before = std::mem::take(&mut on_prepared);
        on_prepared = prepared
            .iter()
            .map(|(i, _)| watched[*i].target.pid)
            .collect();
        let again: Vec<&(usize, String)> = (prepared.iter())
            .filter(|(i, _)| seen_before.contains(&watched[*i].target.pid))
            .collect();
        if !again.is_empty() && !committing.load(Ordering::SeqCst) {
            // Each said once, those of one look together (a waiter first seen a look later
            // was cancelled without a word, recheck44b F7).
            let unsaid: Vec<&&(usize, String)> = (again.iter())
                .filter(|(i, _)| !said_on_prepared.contains(&watched[*i].target.pid))
                .collect();
            if !unsaid.is_empty() {
                said_on_prepared.extend(unsaid.iter().map(|(i, _)| watched[*i].target.pid));
                let waiters: Vec<String> = (unsaid.iter())
                    .map(|(i, _)| looks[*i].named(&watched[*i].target.label))
                    .collect();
                let mut gids: Vec<&str> = unsaid.iter().map(|(_, g)| g.as_str()).collect();
                gids.dedup();
                let _ = say_waits_on_prepared(&waiters, &gids.join(", "));
            }
            for (i, _) in again {
                let w = &mut watched[*i];
                w.monitor.cancel(w.target);
            }
        }
        if told_stuck
            && !quiet
            && !committing.load(Ordering::SeqCst)
            && said_at.elapsed() >= say_after()
        {
            said_at = Instant::now();
            say_still(still, "", &looks);
        }
        // Its own write of the commit decision (the log's lock held by another process, a slow
        // fsync) while the prepared transactions hold their locks: said as the servers' waits
        // are, even under --quiet (signals65 F6: nothing in 12 s).
        if committing.load(Ordering::SeqCst)
            && signals::recording_for().is_some_and(|d| d >= say_after())
            && told_recording.is_none_or(|t| t.elapsed() >= say_after())
            && let Some(words) = signals::recording_words()
        {
            told_recording = Some(Instant::now());
            progress::println(&format!(
                "copyman: the commit decision is not recorded yet: {words}; the prepared \
                 transactions hold their locks meanwhile"
            ));
        }
        if !told_stuck
            && !quiet
            && !committing.load(Ordering::SeqCst)
            && still.elapsed() >= say_after()
            && !activities.is_empty()
        {
            told_stuck = true;
            said_at = Instant::now();
            // The servers idle because the input has sent nothing yet: said first.
            let fifo =
                signals::fifo_wait().map(|what| format!("{what} (the servers wait with it): "));
            let recording = signals::recording_words().map(|w| format!("{w}: "));
            let waiting = if let Some(fifo) = &fifo {
                fifo
            } else if let Some(recording) = &recording {
                recording
            } else if signals::is_waiting_for_input() {
                "waiting for the input's first bytes (the servers wait with it): "
            } else if signals::is_waiting_for_reader() {
                "waiting for the reader of a pipe it writes to (stdout, stderr, a FIFO) to \
                 read: its pipe is full, and the servers wait with it (--stall-timeout bounds \
                 the wait): "
            } else {
                let answered = |d: usize| {
                    let labels = watched.iter().map(|w| w.target.label.as_str());
                    ended_its_copy(labels.zip(&looks), d)
                };
                &COPYING
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .as_ref()
                    .map(|c| c.waits_for(&answered))
                    .unwrap_or_default()
            };
            let copying = COPYING.lock().unwrap_or_else(PoisonError::into_inner);
            // Waiting on the input or a pipe's reader, a backend's wait for copyman is that
            // wait, not a frozen server (it sent a DBA after a network fault).
            let ways_out = match fifo.is_some()
                || recording.is_some()
                || signals::is_waiting_for_input()
                || signals::is_waiting_for_reader()
            {
                true => String::new(),
                false => ways_out(copying.as_ref(), &looks),
            };
            drop(copying);
            stuck_on = match waiting.trim_end_matches(": ") {
                "" => String::new(),
                what => format!(": {what}"),
            };
            say_wait(format!(
                "nothing has moved for {} s: {waiting}{}{ways_out}",
                say_after().as_secs(),
                activities.join("; ")
            ));
        }
        // On the bar too, in place of its counts: they kept the rate from before the stall and
        // "2:ok" of the destination waited for (progress62 F2).
        if told_stuck && notes.is_empty() && !committing.load(Ordering::SeqCst) {
            stall_noted = true;
            // As of the ticks this look saw: rows that came since end it (the last frame said
            // "nothing has moved" beside the counts that had just come, under load).
            progress::set_note_as_of(
                Some(format!(
                    "nothing has moved for {} s{stuck_on}",
                    still.elapsed().as_secs()
                )),
                ticks,
            );
        }
    }
}

/// Whether destination `d` (0-based), among `looks` by label, has ended its COPY: its backend
/// idle in its transaction. At the end of the data its answer waits unread while copyman reads
/// another's: it is not the one waited for.
fn ended_its_copy<'l>(mut looks: impl Iterator<Item = (&'l str, &'l Look)>, d: usize) -> bool {
    let label = format!("destination {} (", d + 1);
    looks.any(|(l, look)| {
        l.starts_with(&label) && look.state.as_deref() == Some("idle in transaction")
    })
}

/// Says that the destinations store what they were sent (`whose`: " on job 2 (t)", or
/// nothing): each one's COPY's rows and bytes read so far (`looks`, by label), and how many
/// rows more than when it was last said, `over` ago ([`Storing`]).
fn say_storing<'l>(
    whose: &str,
    looks: impl Iterator<Item = (&'l str, &'l Look)>,
    more: u64,
    over: Duration,
) {
    let each: Vec<String> = looks
        .filter_map(|(label, look)| {
            let (rows, bytes) = look.copied?;
            Some(format!(
                "{label} has read {} ({}) of its COPY",
                progress::rows(rows),
                indicatif::HumanBytes(bytes)
            ))
        })
        .collect();
    progress::println(&format!(
        "copyman: the destinations store what they were sent, slower than the source gives \
         it{whose} (copyman's writes wait on them): {}; {} more in the last {} s",
        each.join("; "),
        progress::rows(more),
        over.as_secs()
    ));
}

/// Says again, shortly, that nothing has moved since `moved` (`whose`: " on job 2 (t)", or
/// nothing), with the locks still waited for: a wait is said every [`say_after`] while it
/// lasts (it was said once, then nothing for as long as it lasted: a log read as a hang).
fn say_still(moved: Instant, whose: &str, looks: &[Look]) {
    let locks: Vec<&str> = looks.iter().filter_map(|l| l.lock.as_deref()).collect();
    let what = match locks.is_empty() {
        true => String::new(),
        false => format!(": {}", locks.join("; ")),
    };
    progress::println(&format!(
        "copyman: still nothing has moved for {} s{whose}{what}",
        moved.elapsed().as_secs()
    ));
}

/// How a job's watch puts a note (a lock wait) on a worker's line of the progress display.
pub(crate) type NoteFn = Arc<dyn Fn(usize, Option<String>) + Send + Sync>;

/// The watch of a job (`copyman table` with many tables): the same as the one-table watch, per
/// worker. The job announces each worker's backends in its events ([`JobWatch::event`]); a
/// thread looks at the backends of a worker that has not moved for a second and says, once per
/// wait, "waiting for lock on destination 2 (…), table t: …" on stderr and on the worker's line;
/// after ten seconds without a move it says what the worker's backends are doing (unless
/// `--quiet`). On a signal it interrupts the job ([`Interrupt`]) and cancels, once a second,
/// every backend of a worker that is still copying (not one that is ending its transactions:
/// [`Event::Ending`]), so that a copy blocked on a server returns and rolls back.
///
/// A statement that ends a table's transaction (`COMMIT`, `PREPARE TRANSACTION`, …:
/// [`Event::CommitStep`]) and is not answered after a second is looked at too, before and after
/// a signal: "waiting 1 s for destination 2 (…)'s COMMIT of table t: backend 1234 active,
/// waiting on IPC/SyncRep: …", again every ten seconds; a backend that does not run it (idle
/// on two looks in a row: frozen, or its connection's network path lost) is said too ("it has
/// not read the COMMIT"). It is never cancelled nor timed out: only the server's answer says
/// whether it committed.
///
/// The planning of the job (catalog queries on every server, which wait for a lock held on a
/// table as well) is watched the same way, as one more "worker" whose backends are the sessions
/// opened while [`JobWatch::planning`] is on ([`JobWatch::connected`]).
pub(crate) struct JobWatch {
    shared: Arc<JobShared>,
    /// The slot of the planning sessions (after the workers').
    planning: usize,
}

/// A table's copy in a job that the watch cancelled because one of its sessions waited for a
/// lock another of its sessions held ([`waits_on_itself`]: a split table's ranges whose rows
/// meet in a unique index there).
pub(crate) struct SelfWait {
    /// The waiting session's destination (0-based; `None`: the source).
    pub(crate) destination: Option<usize>,
    /// The table, as its name is shown (`"public"."t"`).
    pub(crate) table: String,
    /// Why it was cancelled, in words.
    pub(crate) why: String,
}

impl JobShared {
    /// Records that the watch cancels a session of `table`'s copy (its worker's label, `table
    /// "public"."t"`) on `server` (0: the source), and `why`, for the report.
    fn cancelled(&self, server: usize, table: &str, why: String) {
        self.itself
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(SelfWait {
                destination: server.checked_sub(1),
                table: table.trim_start_matches("table ").to_owned(),
                why,
            });
    }
}

/// What a worker's backends are named with while the job is being planned.
const PLANNING: &str = "while planning the job";

struct JobShared {
    stop: AtomicBool,
    /// The copies cancelled because they waited on themselves.
    itself: Mutex<Vec<SelfWait>>,
    workers: Mutex<Vec<WorkerBackends>>,
    /// Every server of the job: the source first, then the destinations; each with its label.
    servers: Vec<(String, ServerSpec)>,
    note: NoteFn,
    /// The servers a session is being opened on by a worker (one entry per session; the
    /// planning's is its own [`WorkerBackends::connecting`]): a worker without a backend on
    /// one of them waits for it ([`JobWatch::connecting`]).
    opening: Mutex<Vec<usize>>,
}

/// A worker, as its events left it.
struct WorkerBackends {
    table: String,
    /// Bumped at each table: what a look found for an earlier table is dropped.
    generation: u64,
    moved: Instant,
    /// Its transactions end (COMMIT or ROLLBACK): not to be cancelled, nothing to look at.
    ending: bool,
    /// The backends of its table: server (index into [`JobShared::servers`]), target, whether
    /// it was said to wait for a lock.
    backends: Vec<(usize, Target, bool)>,
    told_stuck: bool,
    /// When its wait was last said: again every `say_after`, shortly, while nothing moves.
    said_at: Instant,
    /// Said (and recorded) that its table's copy waits on itself ([`waits_on_itself`]).
    told_itself: bool,
    /// The backend a look found waiting on copyman's prepared transactions alone: cancelled if
    /// the next look finds it so still.
    on_prepared: Option<i32>,
    last_look: Option<Instant>,
    /// The statements that end its table's transactions, sent and not yet answered
    /// ([`Event::CommitStep`]): looked at and said, never cancelled.
    commits: Vec<CommitWait>,
    /// What its table's copy waits for, while it streams ([`Event::Copying`]), and what
    /// interrupts it on a signal: one copy, or a split table's ranges.
    copying: Vec<Copying>,
    /// The destination session computing a `--verify` checksum of its committed table
    /// ([`Event::Checksum`]): server, target. A read: cancelled on a signal even once its
    /// transactions ended (it kept its CPU and a lock for seconds after copyman exited).
    checksum: Option<(usize, Target)>,
    /// When that checksum began, and when its wait was last said ([`look_at_checksums`]).
    checksum_since: (Instant, Option<Instant>),
    /// The planning's (a worker's are [`JobShared::opening`]): the server whose session it
    /// opens (index into [`JobShared::servers`]), which the others' backends then wait for.
    connecting: Option<usize>,
    /// Its servers' COPYs storing what they were sent while it does not move (as the one-table
    /// watch says it): the rows they had read at the last look, when that last grew, and the
    /// rows and time it was last said.
    storing: Storing,
    /// What its destinations' COPYs had read at the last look, for its copy's stall timers.
    heard: Heard,
    /// Its destinations at the end of its copy with data unread ([`Unread`]).
    unread: Unread,
}

/// What the servers' COPYs read while copyman's bytes wait on them: more than at the last look
/// is movement, said as theirs ("the destinations store what they were sent"), not as nothing
/// moving (scale44 F2, progress45 F2).
#[derive(Default)]
struct Storing {
    /// By backend: the rows its COPY had read at the last look.
    last: Vec<(i32, u64)>,
    /// By backend: the rows its COPY had read when the count was last said (or first seen),
    /// and since when.
    base: Vec<(i32, u64)>,
    since: Option<Instant>,
    grew: Option<Instant>,
}

impl Storing {
    /// The rows `looks` say their COPYs read, at a look: all of them, how many more each read
    /// since the count was last said (the first time, since the look that first saw it), summed,
    /// and over how long — where one read more than at the last look. Counted by backend: a sum
    /// over whichever the look saw (a backend not seen at one look, then seen again) said "0
    /// rows more in the last 24 s" of 11,000 stored (recheck47 F2).
    fn look(&mut self, looks: &[Look]) -> Option<(u64, u64, Duration)> {
        let now_read: Vec<(i32, u64)> = looks
            .iter()
            .filter_map(|l| Some((l.backend.as_ref()?.pid, l.copied?.0)))
            .collect();
        if now_read.is_empty() {
            return None;
        }
        let now = Instant::now();
        let since = *self.since.get_or_insert(now);
        for &(pid, rows) in &now_read {
            if !self.base.iter().any(|(p, _)| *p == pid) {
                self.base.push((pid, rows));
            }
        }
        let before = |pid: i32, of: &[(i32, u64)]| of.iter().find(|(p, _)| *p == pid).map(|r| r.1);
        let grew =
            (now_read.iter()).any(|&(pid, rows)| before(pid, &self.last).is_some_and(|b| rows > b));
        self.last.clone_from(&now_read);
        if !grew {
            return None;
        }
        self.grew = Some(now);
        let read = now_read.iter().map(|(_, rows)| rows).sum();
        let more = (now_read.iter())
            .map(|&(pid, rows)| rows.saturating_sub(before(pid, &self.base).unwrap_or(rows)))
            .sum();
        Some((read, more, since.elapsed()))
    }

    /// The count was said: the next one counts from here.
    fn said(&mut self) {
        self.base.clone_from(&self.last);
        self.since = Some(Instant::now());
    }

    /// When nothing moved since: copyman's bytes (`moved`), or its servers' COPYs.
    fn still_since(&self, moved: Instant) -> Instant {
        self.grew.map_or(moved, |grew| grew.max(moved))
    }

    /// Copyman's bytes moved: the servers' storing is not what moves now; what they had read
    /// stays the measure of what they read next (recheck45 F2: counted from the last look after
    /// a byte moved, it said "0 rows more in the last 10 s" of 3,700).
    fn bytes_moved(&mut self) {
        self.grew = None;
    }
}

/// What the destinations' COPYs read and stored at the last look, by backend: a destination
/// whose server read or stored more since is heard by its copy's stall timers
/// ([`UnderWay::server_moved`]) as movement, though copyman's socket to it took nothing — one
/// storing a large CopyData message slower than `--stall-timeout` reads nothing meanwhile, and
/// was failed as "stalled: no byte moved" while it stored rows (recheck45 F2, F3). Looks come a
/// second apart once copyman's bytes stand still (a third of a shorter `--stall-timeout`:
/// [`look_every`]).
#[derive(Default)]
struct Heard(Vec<(i32, (u64, u64))>);

impl Heard {
    /// `looks` of the destinations of the `copying` copies (each with its index, 0-based): those
    /// whose COPY moved since the last look are told to their copy.
    fn look<'l>(
        &mut self,
        copying: &[Copying],
        looks: impl Iterator<Item = (usize, i32, &'l Look)>,
    ) {
        for (d, pid, look) in looks {
            let Some(copied) = look.copied else { continue };
            let before = match self.0.iter_mut().find(|(p, _)| *p == pid) {
                Some((_, seen)) => Some(std::mem::replace(seen, copied)),
                None => {
                    self.0.push((pid, copied));
                    None
                }
            };
            let receiver = (copying.iter()).find_map(|c| Some((c, c.receiver(d, pid)?)));
            if let (Some(before), Some((copying, r))) = (before, receiver)
                && before != copied
            {
                (copying.under_way).server_moved(EndpointId::Receiver(ReceiverId(r)));
            }
        }
    }
}

/// Destinations at the end of a copy (one table's, a job's table's, or each range of a split one's)
/// whose server had not read all the data it was sent, by backend: what their COPY had read at
/// a look, and since when it stands (core's [`EndOfData`]). One that reads no more of it for
/// `--stall-timeout` has its connection closed and its statement cancelled ([`STALLED_UNREAD`]):
/// the end of a COPY is never timed out (its answer may take long, its data in hand), and a backend
/// frozen with the data in its socket buffers, or behind a lost network path, held the run until
/// a signal (progress45 F1, recheck47 F4). Its transaction is rolled back there; the copy fails,
/// or goes on without it under `--keep-going`.
///
/// [`STALLED_UNREAD`]: copyman_core::endpoint::STALLED_UNREAD
#[derive(Default)]
struct Unread(Vec<(i32, EndOfData)>, Vec<i32>);

impl Unread {
    /// Whether backend `pid` was given up (its connection closed): it stores nothing of the
    /// copy, however its COPY still shows what it read (recheck47 F5: said storing after).
    fn gave_up(&self, pid: i32) -> bool {
        self.1.contains(&pid)
    }

    /// `looks` of the destinations of `copying` (each with its index, 0-based, and target).
    fn look<'l>(
        &mut self,
        copying: &Copying,
        looks: impl Iterator<Item = (usize, &'l Target, &'l Look)>,
    ) {
        let Some(limit) = STALL_TIMEOUT
            .get()
            .copied()
            .flatten()
            .filter(|t| !t.is_zero())
        else {
            return;
        };
        let sent = copying.sent.load(Ordering::Relaxed);
        let completing = copying.under_way.completing() && copying.source.is_none();
        for (d, target, look) in looks {
            let pid = target.pid;
            // (Another copy's: a split table's other range.)
            let Some(r) = copying.receiver(d, pid) else {
                continue;
            };
            let ending = copying.under_way.receivers().any(|o| o.0 == r);
            let (Some(copied), true) = (look.copied, completing && ending) else {
                self.0.retain(|(p, _)| *p != pid);
                continue;
            };
            let now = Instant::now();
            let Some((_, end)) = self.0.iter_mut().find(|(p, _)| *p == pid) else {
                self.0.push((pid, EndOfData::new(copied, now)));
                continue;
            };
            // Core's rule: behind what it was sent, and reading no more of it.
            if !end.look(copied, sent, limit, now) {
                continue;
            }
            let Some(closer) = &target.closer else {
                continue;
            };
            let why = unread_why(look.wait.as_ref(), look.held);
            progress::println(&format!(
                "copyman: {}: its server has read {} of the {} of COPY data copyman sent it, and \
                 nothing more for {} s (--stall-timeout): {why} ({}); its connection is closed \
                 and its statement cancelled, nothing commits there",
                target.label,
                indicatif::HumanBytes(copied.1),
                indicatif::HumanBytes(sent),
                limit.as_secs(),
                look.activity,
            ));
            closer.close(copyman_core::endpoint::STALLED_UNREAD);
            self.1.push(pid);
            // A backend that runs again would store what its socket buffers hold first, holding
            // its locks for as long (a minute, recheck47b F2): its pending cancel ends it then.
            target.send_cancel_request();
        }
    }
}

/// Why a backend reads no more of its COPY data, from its wait (`pg_stat_activity`'s kind and
/// event). Not "frozen" alone: a backend busy on one row longer than that looks the same
/// (recheck47b F3); one waiting for a lock is not frozen itself (recheck48b F6: a split
/// table's ranges queued on the extend lock of a frozen one were each said frozen).
fn unread_why(wait: Option<&(String, String)>, held: bool) -> &'static str {
    match wait {
        // (A heavyweight lock with no holder named: its own, granted while it was stopped, the
        // others waiting on it: recheck49 F2.)
        Some((kind, _)) if (kind == "Lock" && held) || kind == "LWLock" => {
            "its backend waits for a lock that another backend holds, or waits for ahead of it \
             (a frozen backend, perhaps)"
        }
        _ => {
            "its backend is frozen, the network path to it lost, or one row takes it longer \
             than that"
        }
    }
}

/// A statement ending a table's transaction on a destination (`COMMIT`, `PREPARE TRANSACTION`,
/// …), sent and not yet answered.
struct CommitWait {
    /// The destination's server (index into [`JobShared::servers`]).
    server: usize,
    /// The destination's backend (no cancel request: it is never cancelled).
    target: Target,
    /// `"public"."t2"`.
    table: String,
    /// `COMMIT`, `PREPARE TRANSACTION`, … (without its transaction id).
    statement: &'static str,
    since: Instant,
    last_look: Option<Instant>,
    /// When the wait was last said.
    told: Option<Instant>,
    /// What the last look found it waiting on (`IPC SyncRep`).
    wait: Option<String>,
    /// How many looks in a row found its backend not running it.
    idle_looks: u32,
    /// Its wait for a synchronous standby was cancelled (a rollback's: [`look_at_commits`]).
    cancelled: bool,
}

impl CommitWait {
    /// "destination 2's COMMIT of "public"."t2" (backend 1234, IPC SyncRep)".
    fn describe(&self) -> String {
        let wait = self
            .wait
            .as_ref()
            .map(|w| format!(", {w}"))
            .unwrap_or_default();
        format!(
            "destination {}'s {} of {} (backend {}{wait})",
            self.server, self.statement, self.table, self.target.pid
        )
    }
}

/// A commit step's statement without its transaction id.
pub(crate) fn statement_name(action: &Action) -> &'static str {
    match action {
        Action::CheckConstraints => "SET CONSTRAINTS ALL IMMEDIATE",
        Action::Commit => "COMMIT",
        Action::Rollback => "ROLLBACK",
        Action::Prepare(_) => "PREPARE TRANSACTION",
        Action::CommitPrepared(_) => "COMMIT PREPARED",
        Action::RollbackPrepared(_) => "ROLLBACK PREPARED",
        _ => "statement ending its transaction",
    }
}

impl WorkerBackends {
    fn new() -> Self {
        Self {
            table: String::new(),
            generation: 0,
            moved: Instant::now(),
            ending: false,
            backends: Vec::new(),
            told_stuck: false,
            said_at: Instant::now(),
            told_itself: false,
            on_prepared: None,
            last_look: None,
            commits: Vec::new(),
            copying: Vec::new(),
            checksum: None,
            checksum_since: (Instant::now(), None),
            connecting: None,
            storing: Storing::default(),
            heard: Heard::default(),
            unread: Unread::default(),
        }
    }

    /// It moved: what was said about it no longer holds.
    fn moved(&mut self, worker: usize, note: &NoteFn) {
        self.moved = Instant::now();
        self.told_stuck = false;
        self.storing.bytes_moved();
        if self.backends.iter().any(|(_, _, waiting)| *waiting) {
            for b in &mut self.backends {
                b.2 = false;
            }
            note(worker, None);
        }
    }
}

impl JobWatch {
    /// Starts watching a job of `jobs` workers over `servers` (the source, then each
    /// destination, with the labels the messages use); `interrupt` is the job's.
    pub(crate) fn start(
        servers: Vec<(String, ServerSpec)>,
        jobs: usize,
        interrupt: Interrupt,
        note: NoteFn,
        quiet: bool,
    ) -> Self {
        let shared = Arc::new(JobShared {
            stop: AtomicBool::new(false),
            itself: Mutex::new(Vec::new()),
            workers: Mutex::new((0..=jobs).map(|_| WorkerBackends::new()).collect()),
            servers,
            note,
            opening: Mutex::new(Vec::new()),
        });
        let cancelled = Arc::clone(&shared);
        signals::set_cancel(move || {
            // Briefly: a worker may hold the lock while its stderr write blocks.
            let Some(workers) = lock_briefly(&cancelled.workers) else {
                return;
            };
            for w in workers.iter().filter(|w| !w.ending) {
                for (_, target, _) in &w.backends {
                    target.send_cancel_request();
                }
            }
            for (_, target) in workers.iter().filter_map(|w| w.checksum.as_ref()) {
                target.send_cancel_request();
            }
        });
        let (interrupted, job) = (Arc::clone(&shared), interrupt.clone());
        signals::set_interrupt(move || {
            // Briefly, as the cancels: the watch thread does it again under the lock.
            if let (Some(signal), Some(workers)) =
                (signals::received(), lock_briefly(&interrupted.workers))
            {
                interrupt_job(&workers, &job, signal);
            }
        });
        let watched = Arc::clone(&shared);
        // Not joined, as the one-table watch: a query in flight ends within its timeout.
        let spawned = thread::Builder::new()
            .name("copyman-job-watch".to_owned())
            .spawn(move || watch_job(&watched, &interrupt, quiet));
        if let Err(e) = spawned {
            report::warn(format_args!("cannot watch for lock waits and signals: {e}"));
        }
        Self {
            shared,
            planning: jobs,
        }
    }

    /// The job is being planned (`on`), or its planning is over.
    pub(crate) fn planning(&self, on: bool) {
        let mut workers = self.lock();
        let w = &mut workers[self.planning];
        w.moved(self.planning, &self.shared.note);
        w.table = PLANNING.to_owned();
        w.generation += 1;
        w.ending = !on;
        w.backends.clear();
    }

    /// The planning looked up one more table ([`Event::Planning`]): it moves.
    pub(crate) fn planned_one(&self) {
        let mut workers = self.lock();
        let w = &mut workers[self.planning];
        w.moved = Instant::now();
        w.told_stuck = false;
    }

    /// A session is being opened on server `server` (`opening`), or that is over: a wait is
    /// said to be for it — the other servers' backends waiting for copyman meanwhile are not
    /// what is stuck (conn42 F2 blamed them while planning, scale51 F2 and recheck51b F2 while
    /// a worker opened one again). While the job is planned the planning opens it; after, a
    /// worker without a backend on that server.
    pub(crate) fn connecting(&self, server: usize, opening: bool) {
        let planning = {
            let mut workers = self.lock();
            let w = &mut workers[self.planning];
            let planning = !w.ending;
            if planning {
                w.connecting = opening.then_some(server);
            }
            planning
        };
        if planning {
            return;
        }
        let mut open = (self.shared.opening.lock()).unwrap_or_else(PoisonError::into_inner);
        match opening {
            true => open.push(server),
            false => {
                if let Some(i) = open.iter().position(|s| *s == server) {
                    open.remove(i);
                }
            }
        }
    }

    /// A session was opened on server `server` (0: the source, then the destinations): while
    /// the job is being planned, its backend is watched. Whether the job is being planned.
    pub(crate) fn connected(&self, server: usize, conn: &Connection) -> bool {
        let mut workers = self.lock();
        let w = &mut workers[self.planning];
        w.connecting = None;
        if w.ending {
            return false;
        }
        if let Some((label, spec)) = self.shared.servers.get(server)
            && let Some(target) = Target::of(format!("{label}, {PLANNING}"), spec, conn)
        {
            w.backends.push((server, target, false));
        }
        true
    }

    /// The statements ending a table's transactions that wait for a synchronous standby (`IPC
    /// SyncRep`, as the last look found them): "destination 2 (…)'s COMMIT of table
    /// "public"."t2"" — a first signal's words say a stop waits for that standby (recheck66
    /// F10: "their COMMITs began and finish", of COMMITs that wait for ever). A ROLLBACK
    /// PREPARED's wait is cancelled, not waited for ([`look_at_commits`]).
    pub(crate) fn standby_waits(&self) -> Vec<String> {
        let Some(workers) = lock_briefly(&self.shared.workers) else {
            return Vec::new();
        };
        (workers.iter().flat_map(|w| &w.commits))
            .filter(|c| {
                c.wait.as_deref() == Some("IPC SyncRep") && !c.statement.starts_with("ROLLBACK")
            })
            .map(|c| format!("{}'s {} of table {}", c.target.label, c.statement, c.table))
            .collect()
    }

    /// What the job waits for now, in words (for the reminder after a signal): each statement
    /// ending a transaction that is not answered yet ("destination 2's COMMIT of "public"."t2"
    /// (backend 1234, IPC SyncRep)"), each copy whose backends were cancelled and did not end
    /// yet. Empty if nothing is known (or the watch is busy for more than a moment).
    pub(crate) fn waiting_for(&self) -> Vec<String> {
        let Some(workers) = lock_briefly(&self.shared.workers) else {
            return Vec::new();
        };
        let mut waits = Vec::new();
        for w in workers.iter() {
            waits.extend(w.commits.iter().map(CommitWait::describe));
            if !w.ending && !w.backends.is_empty() {
                let backends: Vec<String> = w
                    .backends
                    .iter()
                    .map(|(server, t, _)| match server {
                        0 => format!("source {}", t.pid),
                        d => format!("destination {d} {}", t.pid),
                    })
                    .collect();
                waits.push(format!(
                    "{} to end (backends: {}; cancelled)",
                    if w.table == PLANNING {
                        "the planning".to_owned()
                    } else {
                        format!("the copy of {}", w.table)
                    },
                    backends.join(", ")
                ));
            }
        }
        waits
    }

    /// The copies cancelled because they waited on themselves, taken once.
    pub(crate) fn waited_on_itself(&self) -> Vec<SelfWait> {
        std::mem::take(
            &mut *self
                .shared
                .itself
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// Stops watching (the thread ends within [`POLL`]).
    pub(crate) fn stop(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<WorkerBackends>> {
        self.shared
            .workers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes in one of the job's events.
    pub(crate) fn event(&self, event: &Event) {
        let mut workers = self.lock();
        let note = &self.shared.note;
        match event {
            Event::TableStarted { worker, table, .. } => {
                if let Some(w) = workers.get_mut(*worker) {
                    w.moved(*worker, note);
                    // Another table's COPYs: counted anew.
                    w.storing = Storing::default();
                    w.heard = Heard::default();
                    w.unread = Unread::default();
                    w.table = format!("table {table}");
                    w.told_itself = false;
                    w.generation += 1;
                    w.ending = false;
                    w.backends.clear();
                    w.commits.clear();
                    w.copying.clear();
                    w.checksum = None;
                }
            }
            Event::CommitStep {
                worker,
                table,
                destination,
                pid,
                replaces,
                action,
                answer,
                ..
            } => {
                let server = destination + 1;
                let (Some(w), Some((label, spec))) =
                    (workers.get_mut(*worker), self.shared.servers.get(server))
                else {
                    return;
                };
                w.moved(*worker, note);
                let Some(pid) = *pid else { return };
                let had = w.commits.len();
                w.commits.retain(|c| {
                    c.server != server || (c.target.pid != pid && Some(c.target.pid) != *replaces)
                });
                if had != w.commits.len() && w.commits.is_empty() {
                    note(*worker, None);
                }
                if answer.is_awaited() {
                    w.commits.push(CommitWait {
                        server,
                        target: Target {
                            label: label.clone(),
                            spec: spec.clone(),
                            pid,
                            cancel: None,
                            destination: None,
                            closer: None,
                            known: Instant::now(),
                        },
                        table: table.to_string(),
                        statement: statement_name(action),
                        since: Instant::now(),
                        last_look: None,
                        told: None,
                        wait: None,
                        idle_looks: 0,
                        cancelled: false,
                    });
                }
            }
            Event::Backend {
                worker,
                table,
                side,
                pid,
                cancel,
                closer,
            } => {
                let server = match side {
                    Side::Source => 0,
                    Side::Destination(d) => d + 1,
                    _ => return,
                };
                let (Some(w), Some((label, spec))) =
                    (workers.get_mut(*worker), self.shared.servers.get(server))
                else {
                    return;
                };
                w.moved(*worker, note);
                let target = Target {
                    label: format!("{label}, table {table}"),
                    spec: spec.clone(),
                    pid: *pid,
                    cancel: cancel.clone().map(|t| t.within(MONITOR_TIMEOUT)),
                    destination: None,
                    closer: closer.clone(),
                    known: Instant::now(),
                };
                // A split table's ranges each have their own backends: keep them all.
                w.backends.retain(|(s, t, _)| *s != server || t.pid != *pid);
                w.backends.push((server, target, false));
            }
            Event::Checksum {
                worker,
                destination,
                pid,
                cancel,
            } => {
                let server = destination + 1;
                let (Some(w), Some((label, spec))) =
                    (workers.get_mut(*worker), self.shared.servers.get(server))
                else {
                    return;
                };
                w.checksum_since = (Instant::now(), None);
                w.checksum = Some((
                    server,
                    Target {
                        label: format!("{label}, --verify of {}", w.table),
                        spec: spec.clone(),
                        pid: *pid,
                        cancel: cancel.clone().map(|t| t.within(MONITOR_TIMEOUT)),
                        destination: None,
                        closer: None,
                        known: Instant::now(),
                    },
                ));
            }
            Event::Progress { worker, .. } => {
                if let Some(w) = workers.get_mut(*worker) {
                    w.moved(*worker, note);
                }
            }
            Event::Ending { worker } => {
                if let Some(w) = workers.get_mut(*worker) {
                    w.moved(*worker, note);
                    w.ending = true;
                    w.backends.clear();
                    w.copying.clear();
                }
            }
            Event::Copying {
                worker,
                under_way,
                destinations,
                backends,
                interrupter,
                sent,
            } => {
                if let Some(w) = workers.get_mut(*worker) {
                    w.copying.push(Copying {
                        under_way: under_way.clone(),
                        live: destinations.clone(),
                        backends: backends.clone(),
                        interrupter: interrupter.clone(),
                        source: None,
                        sent: Arc::clone(sent),
                        dropped: Vec::new(),
                    });
                }
            }
            Event::TableFinished { worker, .. } => {
                if let Some(w) = workers.get_mut(*worker) {
                    w.moved(*worker, note);
                    w.ending = true;
                    w.backends.clear();
                    if !w.commits.is_empty() {
                        w.commits.clear();
                        note(*worker, None);
                    }
                }
            }
            _ => {}
        }
    }
}

impl Drop for JobWatch {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Takes `mutex` if it is free within a moment: a thread that must not wait (a reminder, an
/// exit at once) gives up rather than wait behind a cancel request or a look in flight.
pub(crate) fn lock_briefly<T>(mutex: &Mutex<T>) -> Option<std::sync::MutexGuard<'_, T>> {
    for _ in 0..50 {
        match mutex.try_lock() {
            Ok(guard) => return Some(guard),
            Err(std::sync::TryLockError::Poisoned(e)) => return Some(e.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => thread::sleep(Duration::from_millis(10)),
        }
    }
    None
}

/// Interrupts the job (`signal` came) and the copies of its `workers` not ending, whose frozen
/// servers are then given up after the interrupt's grace.
fn interrupt_job(workers: &[WorkerBackends], interrupt: &Interrupt, signal: i32) {
    interrupt.interrupt(format!("interrupted by {}", signals::name(signal)));
    for w in workers.iter().filter(|w| !w.ending) {
        for copying in &w.copying {
            copying.interrupt();
        }
    }
}

/// A destination's `--verify` checksum of a committed table that runs long: said every
/// [`say_after`] while its backend runs it, with what it does (recheck48b F4: one whose backend
/// stopped was waited for in silence, a minute and more).
fn look_at_checksums(shared: &JobShared, monitors: &mut [Monitor]) {
    let due: Vec<(usize, usize, i32, String, Duration)> = {
        let mut workers = (shared.workers.lock()).unwrap_or_else(PoisonError::into_inner);
        (workers.iter_mut().enumerate())
            .filter_map(|(i, w)| {
                let (server, target) = w.checksum.as_ref()?;
                let (since, said) = &mut w.checksum_since;
                let waited = since.elapsed();
                let due = waited >= say_after() && said.is_none_or(|t| t.elapsed() >= say_after());
                due.then(|| {
                    *said = Some(Instant::now());
                    (i, *server, target.pid, target.label.clone(), waited)
                })
            })
            .collect()
    };
    for (worker, server, pid, label, waited) in due {
        let look = monitors[server].look(pid);
        // Done (its session idle since, or closed): nothing waits on it.
        if look.state.as_deref() != Some("active") {
            continue;
        }
        progress::println(&format!(
            "copyman: job {} waits {} s for {label}: {} (the table is committed there; a \
             signal stops the job, and --resume --verify compares it again)",
            worker + 1,
            waited.as_secs(),
            look.activity
        ));
    }
}

/// A worker to look at: its index, its table's generation, its backends (server, pid).
type Due = (usize, u64, Vec<(usize, i32)>);

fn watch_job(shared: &JobShared, interrupt: &Interrupt, quiet: bool) {
    let mut monitors: Vec<Monitor> = shared
        .servers
        .iter()
        .map(|(label, spec)| Monitor::new(spec.clone(), label.clone()))
        .collect();
    let mut last_cancel: Option<Instant> = None;
    let lock = || {
        shared
            .workers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    };
    while !shared.stop.load(Ordering::SeqCst) {
        // copyman itself stopped for a while: not counted against the servers (dups49 F3).
        if sleep_was_stopped(quiet) {
            for w in lock().iter_mut() {
                w.moved = Instant::now();
            }
            continue;
        }
        // Statements ending a transaction are looked at and said, before and after a signal:
        // they are never cancelled, so a wait there is only said (a PREPARE's, which decides
        // nothing, is given up by its session once the interrupt's grace passed).
        look_at_commits(shared, &mut monitors);
        if !quiet {
            look_at_checksums(shared, &mut monitors);
        }
        if let Some(signal) = signals::received() {
            if last_cancel.is_none_or(|t| t.elapsed() >= STILL) {
                last_cancel = Some(Instant::now());
                // Under the lock: a worker that says it is ending waits until these cancels
                // are sent, and then sees the interruption before it commits.
                let workers = lock();
                interrupt_job(&workers, interrupt, signal);
                for w in workers.iter().filter(|w| !w.ending) {
                    for (server, target, _) in &w.backends {
                        monitors[*server].cancel(target);
                    }
                }
                for (server, target) in workers.iter().filter_map(|w| w.checksum.as_ref()) {
                    monitors[*server].cancel(target);
                }
            }
            continue;
        }
        // The workers that have not moved for a while, and their backends (looked at without
        // the lock: the workers' events must not wait for a monitoring query).
        let due: Vec<Due> = {
            let mut workers = lock();
            workers
                .iter_mut()
                .enumerate()
                .filter(|(_, w)| {
                    !w.ending
                        && !w.backends.is_empty()
                        && w.moved.elapsed() >= look_every()
                        && w.last_look.is_none_or(|t| t.elapsed() >= look_every())
                })
                .map(|(i, w)| {
                    w.last_look = Some(Instant::now());
                    let pids = w.backends.iter().map(|(s, t, _)| (*s, t.pid)).collect();
                    (i, w.generation, pids)
                })
                .collect()
        };
        for (worker, generation, pids) in due {
            let looks: Vec<Look> = pids
                .iter()
                .map(|&(server, pid)| monitors[server].look(pid))
                .collect();
            if shared.stop.load(Ordering::SeqCst) || signals::received().is_some() {
                break;
            }
            let mut workers = lock();
            let Some(w) = workers
                .get_mut(worker)
                .filter(|w| w.generation == generation)
            else {
                continue;
            };
            if w.ending {
                continue;
            }
            let mut notes = Vec::new();
            let mut activities = Vec::new();
            // A session closed since (the planning's earlier ones): no longer watched or said.
            let gone = |pid: i32, look: &Look| look.activity == format!("backend {pid} is gone");
            w.backends.retain(|(s, t, _)| {
                !pids
                    .iter()
                    .zip(&looks)
                    .any(|(&(server, pid), look)| *s == server && t.pid == pid && gone(pid, look))
            });
            // Waiting on copyman's prepared transactions alone at the last look too.
            let on_prepared = w.on_prepared.take();
            for (&(server, pid), look) in pids.iter().zip(&looks) {
                let Some(b) = w
                    .backends
                    .iter_mut()
                    .find(|(s, t, _)| *s == server && t.pid == pid)
                else {
                    continue;
                };
                let prepared = look.prepared_holders.as_ref();
                let seen_before = prepared.is_some() && on_prepared == Some(pid);
                if prepared.is_some() {
                    w.on_prepared = Some(pid);
                }
                activities.push(format!("{}: {}", b.1.label, look.activity));
                match &look.lock {
                    Some(what) => {
                        if !b.2 {
                            say_lock_wait(&b.1.label, what);
                        }
                        b.2 = true;
                        // The planning waits on a lock that only an earlier run's prepared
                        // transactions hold, two looks in a row: no wait ends it (a resume
                        // after that run was killed between its PREPARE and its end waited for
                        // ever).
                        if w.table == PLANNING
                            && seen_before
                            && let Some(gids) = prepared
                        {
                            interrupt.interrupt(format!(
                                "{} waits for a lock held by copyman's prepared transaction {gids} \
                                 (an earlier run's, stopped between its PREPARE and its end), \
                                 which no wait ends: finish it with copyman recover (its run's \
                                 decision log says which way), then run again",
                                b.1.label
                            ));
                        }
                        // A table's session, two looks in a row: cancelled, the table failing
                        // there, said why.
                        if w.table != PLANNING
                            && seen_before
                            && let Some(gids) = prepared
                        {
                            if !w.told_itself {
                                w.told_itself = true;
                                let why = say_waits_on_prepared(&[look.named(&b.1.label)], gids);
                                shared.cancelled(server, &w.table, why);
                            }
                            monitors[server].cancel(&b.1);
                        }
                        // The job's line names the table already.
                        notes.push(format!("waiting for lock on {}", shared.servers[server].0));
                    }
                    None => b.2 = false,
                }
            }
            (shared.note)(worker, (!notes.is_empty()).then(|| notes.join("; ")));
            // A session of this table's copy waiting for another of the same copy (a split
            // table's ranges): cancelled. (A wait on another worker's table ends with that
            // table's commit.)
            let own: Vec<&Look> = looks.iter().collect();
            if let Some((waiter, holder)) = waits_on_itself(&own)
                && w.table != PLANNING
            {
                let (server, pid) = pids[waiter];
                let told = w.told_itself;
                w.told_itself = true;
                let label = |i: usize| {
                    let (s, p) = pids[i];
                    w.backends
                        .iter()
                        .find(|(bs, t, _)| *bs == s && t.pid == p)
                        .map(|(_, t, _)| t.label.clone())
                        .unwrap_or_else(|| format!("backend {p}"))
                };
                if !told {
                    let lock = looks[waiter].lock_kind();
                    let why = say_waits_on_itself(
                        &looks[waiter].named(&label(waiter)),
                        &looks[holder].named(&label(holder)),
                        &lock,
                    );
                    shared.cancelled(server, &w.table, why);
                }
                if let Some((_, target, _)) = w
                    .backends
                    .iter()
                    .find(|(s, t, _)| *s == server && t.pid == pid)
                {
                    monitors[server].cancel(target);
                }
            }
            let destinations = pids
                .iter()
                .zip(&looks)
                .filter_map(|(&(server, pid), look)| Some((server.checked_sub(1)?, pid, look)));
            w.heard.look(&w.copying, destinations);
            let destinations: Vec<_> = (pids.iter().zip(&looks))
                .filter_map(|(&(server, pid), look)| {
                    let (_, target, _) =
                        (w.backends.iter()).find(|(s, t, _)| *s == server && t.pid == pid)?;
                    Some((server.checked_sub(1)?, target, look))
                })
                .collect();
            for copying in &w.copying {
                w.unread.look(copying, destinations.iter().copied());
            }
            let mut looks = looks;
            for (&(_, pid), look) in pids.iter().zip(looks.iter_mut()) {
                if w.unread.gave_up(pid) {
                    look.copied = None;
                }
            }
            if let Some((_, more, over)) = w.storing.look(&looks) {
                w.told_stuck = false;
                if !quiet && w.moved.elapsed() >= say_after() && over >= say_after() {
                    w.storing.said();
                    let labels: Vec<String> = pids
                        .iter()
                        .map(|&(server, _)| shared.servers[server].0.clone())
                        .collect();
                    let whose = format!(" on job {} ({})", worker + 1, w.table);
                    say_storing(
                        &whose,
                        labels.iter().map(String::as_str).zip(&looks),
                        more,
                        over,
                    );
                }
            }
            let still = w.storing.still_since(w.moved);
            // The planning moves with each table it looks up (a catalog query for hundreds of
            // them may take a while: what its backends do is said then, as a copy's).
            let planning = w.table == PLANNING;
            if w.told_stuck && !quiet && w.said_at.elapsed() >= say_after() {
                w.said_at = Instant::now();
                let whose = match planning {
                    true => format!(" {PLANNING}"),
                    false => format!(" on job {} ({})", worker + 1, w.table),
                };
                say_still(still, &whose, &looks);
            }
            if !w.told_stuck && !quiet && still.elapsed() >= say_after() && !activities.is_empty() {
                w.told_stuck = true;
                w.said_at = Instant::now();
                // A destination whose backend ended its COPY (idle in its transaction) is not
                // waited for (progress45 F4: both were said, one idle for 10 s).
                let answered = |d: usize| {
                    let labels = pids
                        .iter()
                        .map(|&(server, _)| shared.servers[server].0.as_str());
                    ended_its_copy(labels.zip(&looks), d)
                };
                // (A split table's ranges: the wait is each backend's, said by its look.)
                let one = match w.copying.as_slice() {
                    [copying] => Some(copying),
                    _ => None,
                };
                let waits = one.map(|c| c.waits_for(&answered)).unwrap_or_default();
                let mut ways_out = ways_out(one, &looks);
                let whose = if planning {
                    PLANNING.to_owned()
                } else {
                    format!("on job {} ({})", worker + 1, w.table)
                };
                // Opening a session: that server is what the job waits for; the others'
                // backends wait for copyman meanwhile.
                let opening = (shared.opening.lock()).unwrap_or_else(PoisonError::into_inner);
                let lacking = (opening.iter().copied())
                    .find(|s| !w.backends.iter().any(|(server, ..)| server == s));
                drop(opening);
                let connecting = (if planning { w.connecting } else { lacking })
                    .and_then(|server| shared.servers.get(server));
                let waits = match connecting {
                    Some((label, _)) => {
                        ways_out = match planning {
                            true => {
                                " (a signal stops the job, nothing copied; connect_timeout \
                                     bounds such a wait)"
                            }
                            false => {
                                " (connect_timeout or --stall-timeout bounds such a wait; \
                                      a signal stops the job, what it committed kept for \
                                      --resume)"
                            }
                        }
                        .to_owned();
                        format!("copyman waits for {label} to answer its connection; meanwhile ")
                    }
                    None => waits,
                };
                say_wait(format!(
                    "nothing has moved for {} s {whose}: {waits}{}{ways_out}",
                    say_after().as_secs(),
                    activities.join("; ")
                ));
            }
        }
    }
}

/// Looks, once per [`STILL`], at each statement ending a transaction that was sent more than
/// [`STILL`] ago and not answered; says what its backend waits on (on stderr, then again every
/// [`say_after`]; on its worker's line), never cancels it: only the server's answer says whether a
/// `COMMIT` went through.
fn look_at_commits(shared: &JobShared, monitors: &mut [Monitor]) {
    let lock = || {
        shared
            .workers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    };
    // (worker, server, pid), looked at without the lock.
    let due: Vec<(usize, usize, i32)> = {
        let mut workers = lock();
        let mut due = Vec::new();
        for (i, w) in workers.iter_mut().enumerate() {
            for c in &mut w.commits {
                if c.since.elapsed() >= STILL && c.last_look.is_none_or(|t| t.elapsed() >= STILL) {
                    c.last_look = Some(Instant::now());
                    due.push((i, c.server, c.target.pid));
                }
            }
        }
        due
    };
    for (worker, server, pid) in due {
        let look = monitors[server].look(pid);
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let mut workers = lock();
        let Some(w) = workers.get_mut(worker) else {
            continue;
        };
        let Some(c) = w
            .commits
            .iter_mut()
            .find(|c| c.server == server && c.target.pid == pid)
        else {
            continue;
        };
        // Not running it: the server may have answered just now, and the worker reads it; on a
        // second look in a row, the backend has not read it or its answer is lost.
        if look.state.as_deref().is_some_and(|s| s != "active") {
            c.idle_looks += 1;
            if c.idle_looks < 2 {
                continue;
            }
        } else {
            c.idle_looks = 0;
        }
        c.wait = look
            .wait
            .as_ref()
            .map(|(kind, event)| format!("{kind} {event}"));
        // A ROLLBACK PREPARED waiting for a synchronous standby: rolled back on its server
        // already, only the standby's word is waited for, which a standby that is not there
        // never gives; cancelled, it answers at once, nothing lost (commit48 F5: a stop waited
        // for it until a second signal, and said it "may have committed").
        // A COMMIT (PREPARED) waiting so is committed there already: cancelled after
        // STANDBY_COMMIT_PATIENCE, so that the others are committed too (recheck73 F1: the
        // later destinations stayed prepared, their locks held, for ever).
        let on_standby = (look.wait.as_ref()).is_some_and(|(k, e)| k == "IPC" && e == "SyncRep");
        let words = match c.statement {
            s if s.starts_with("ROLLBACK") => Some(STANDBY_ROLLBACK_CANCELLED),
            s if s.starts_with("COMMIT")
                && c.since.elapsed() >= crate::finish::STANDBY_COMMIT_PATIENCE =>
            {
                Some(STANDBY_COMMIT_CANCELLED)
            }
            // (recheck74 F2: a standby missing from the start held every --atomic job here.)
            s if s.starts_with("PREPARE")
                && c.since.elapsed() >= crate::finish::STANDBY_COMMIT_PATIENCE =>
            {
                Some(STANDBY_PREPARE_CANCELLED)
            }
            _ => None,
        };
        let cancel = (on_standby && !c.cancelled)
            .then_some(words)
            .flatten()
            .map(|words| {
                c.cancelled = true;
                format!(
                    "copyman: {}'s {} of table {} {words}",
                    c.target.label, c.statement, c.table
                )
            });
        let due = c.told.is_none_or(|t| t.elapsed() >= say_after());
        let said = (due && cancel.is_none()).then(|| {
            c.told = Some(Instant::now());
            let table = format!(" of table {}", c.table);
            look.commit_wait(c.since.elapsed(), &c.target.label, c.statement, &table)
        });
        let note = format!("waiting for {}'s {}", shared.servers[server].0, c.statement);
        // Said without the workers' lock: a stderr that blocks must not stall their events.
        drop(workers);
        if let Some(said) = said {
            progress::println(&said);
        }
        if let Some(cancel) = cancel {
            progress::println(&cancel);
            // Only while it still waits there: a wait that ended since the look leaves the
            // backend to its next statement (a table's BEGIN, COPY), not to be cancelled.
            let _ = monitors[server].query(&format!(
                "SELECT pg_catalog.pg_cancel_backend(pid) FROM pg_catalog.pg_stat_activity \
                 WHERE pid = {pid} AND wait_event_type = 'IPC' AND wait_event = 'SyncRep'"
            ));
        }
        (shared.note)(worker, Some(note));
    }
}

#[cfg(test)]
mod tests {
    /// A decision log's lock held by a process whose command line is gone (it exited, a
    /// process it started holds the lock on) is said so, not as "()" (signals67 F10).
    #[test]
    fn a_lock_holder_without_a_command_line_is_said_so() {
        assert_eq!(
            holds(42, "flock log sleep 30"),
            "process 42 holds it (flock log sleep 30)"
        );
        assert!(holds(42, "").contains("has exited since"));
    }

    /// A destination is named as the copy's pace only where it stands out: alone waited on a
    /// third of the time or more, twice as much as any other, over 3 s, of a copy to several.
    #[test]
    fn the_pace_is_one_destination_that_stands_out() {
        let pace = |samples, waited: &[u64], destinations| {
            Pace {
                samples,
                waited: waited.to_vec(),
                destinations,
            }
            .pacer()
            .map(|(d, _)| d)
        };
        assert_eq!(pace(100, &[10, 80, 5], 3), Some(1));
        assert_eq!(pace(100, &[0, 40], 2), Some(1));
        // Alike: the source, or all of them, set the pace.
        assert_eq!(pace(100, &[60, 50, 55], 3), None);
        // Seldom waited on, too short, or the only one.
        assert_eq!(pace(100, &[0, 20], 2), None);
        assert_eq!(pace(20, &[0, 20], 2), None);
        assert_eq!(pace(100, &[90], 1), None);
    }

    use super::*;

    fn look(pid: i32, started: &str, blockers: &[(i32, &str)]) -> Look {
        Look {
            lock: None,
            activity: String::new(),
            state: None,
            wait: None,
            statement: None,
            backend: Some(Backend {
                pid,
                started: started.into(),
            }),
            blockers: blockers
                .iter()
                .map(|&(pid, started)| Backend {
                    pid,
                    started: started.into(),
                })
                .collect(),
            unseen: false,
            prepared_holders: None,
            copied: None,
            held: false,
        }
    }

    #[test]
    fn a_backend_waiting_for_a_lock_is_not_said_frozen() {
        let wait = |kind: &str, event: &str| Some((kind.to_owned(), event.to_owned()));
        for (kind, event) in [("Lock", "extend"), ("LWLock", "WALInsert")] {
            let why = unread_why(wait(kind, event).as_ref(), true);
            assert!(why.starts_with("its backend waits for a lock"), "{why}");
        }
        for w in [
            None,
            wait("Client", "ClientRead"),
            wait("IO", "DataFileWrite"),
        ] {
            assert!(unread_why(w.as_ref(), false).starts_with("its backend is frozen"));
        }
        // The one the others wait for: its lock granted while it was stopped, no holder named
        // (recheck49 F2).
        let own = unread_why(wait("Lock", "extend").as_ref(), false);
        assert!(own.starts_with("its backend is frozen"), "{own}");
    }

    #[test]
    fn locks_held_in_passing_are_no_wait() {
        for event in ["extend", "page", "frozenid", "spectoken", "tuple"] {
            assert!(held_in_passing(event), "{event}");
        }
        for event in [
            "relation",
            "transactionid",
            "virtualxid",
            "object",
            "advisory",
        ] {
            assert!(!held_in_passing(event), "{event}");
        }
    }

    /// Servers' COPYs reading more between two looks move (their rows summed, said with how
    /// many more since last said); the same rows, or no COPY, do not.
    #[test]
    fn servers_storing_rows_move() {
        let copying = |rows: u64| Look {
            copied: Some((rows, rows * 10)),
            held: false,
            ..look(1, "t", &[])
        };
        let quiet_since = Instant::now();
        let mut storing = Storing::default();
        assert!(storing.look(&[copying(5), look(2, "t", &[])]).is_none());
        assert_eq!(storing.still_since(quiet_since), quiet_since);
        let (read, more, _) = storing
            .look(&[copying(9), look(2, "t", &[])])
            .expect("it read more");
        assert_eq!((read, more), (9, 4));
        assert!(storing.still_since(quiet_since) > quiet_since);
        assert!(storing.look(&[copying(9)]).is_none());
        assert!(storing.look(&[look(1, "t", &[])]).is_none());
        // Counted from the first look, however many came between (the count of the first line
        // said was from the look before the first growth: recheck47 F2), and by backend: one
        // not seen at a look is no fewer rows.
        let (_, more, _) = storing.look(&[copying(12)]).expect("it read more");
        assert_eq!(more, 7, "since the first look's 5");
        let other = |rows: u64| Look {
            copied: Some((rows, rows)),
            held: false,
            ..look(3, "u", &[])
        };
        assert!(storing.look(&[copying(12), other(100)]).is_none());
        assert!(storing.look(&[other(150)]).is_some());
        let (read, more, _) = storing.look(&[copying(20), other(160)]).expect("more");
        assert_eq!((read, more), (180, 15 + 60), "each from its own first look");
        storing.said();
        let (_, more, _) = storing.look(&[copying(21), other(160)]).expect("more");
        assert_eq!(more, 1, "since it was said");
    }

    #[test]
    fn a_copy_waits_on_itself_only_when_the_holder_is_one_of_its_own_backends() {
        let source = look(10, "t0", &[]);
        let first = look(20, "t1", &[]);
        let second = look(21, "t2", &[(20, "t1")]);
        assert_eq!(waits_on_itself(&[&source, &first, &second]), Some((2, 1)));
        // Another session with the same pid (another server, or a pid reused): not ours.
        let outside = look(21, "t2", &[(20, "t9")]);
        assert_eq!(waits_on_itself(&[&source, &first, &outside]), None);
        // A holder outside the copy.
        let waits = look(21, "t2", &[(99, "t1")]);
        assert_eq!(waits_on_itself(&[&source, &first, &waits]), None);
        // Its start hidden from the waiter's role: known by its pid.
        let hidden = look(21, "t2", &[(20, "")]);
        assert_eq!(waits_on_itself(&[&source, &first, &hidden]), Some((2, 1)));
    }
}
