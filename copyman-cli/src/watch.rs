//! A thread beside the copy that keeps it from hanging without a word.
//!
//! * When nothing moved for a second ([`progress::ticks`] unchanged: no cycle of the copy), it
//!   asks each server, once a second, whether the run's backend waits for a lock
//!   (`pg_stat_activity.wait_event_type = 'Lock'`, the lock from `pg_locks`, the holders from
//!   `pg_blocking_pids`), and says so: "waiting for lock on destination 2 (…)", on stderr and on
//!   the progress bar. When nothing moved for ten seconds, it says once what every backend is
//!   doing (its state and wait event, or that its server cannot be asked), unless `--quiet`.
//! * When a signal came ([`signals`]), it cancels every backend of the run, once a second until
//!   the run ends, so that a read or write blocked on a server returns and the copy can abort: a
//!   CancelRequest with the backend's key, as libpq sends it (no login, no privilege needed), to
//!   every address of the endpoint's CONN; `pg_cancel_backend` on a monitoring connection if no
//!   address took it.
//!
//! It asks over one short monitoring connection per server endpoint, opened only when needed
//! (connect and statement timeouts of 5 s) and closed when the run ends: bounded, and nothing at
//! all for a copy that keeps moving.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use copyman_sync::Connection;
use postgres::config::Host;

use crate::conn::ServerSpec;
use crate::{progress, report, signals};

/// How long the copy may not move before the servers are asked about locks.
const STILL: Duration = Duration::from_secs(1);

/// How often the thread looks.
const POLL: Duration = Duration::from_millis(100);

/// How long the copy may not move before copyman says what every backend is doing.
const STUCK: Duration = Duration::from_secs(10);

/// Connect and statement timeout of a monitoring connection.
const MONITOR_TIMEOUT: Duration = Duration::from_secs(5);

/// A backend of the run.
pub(crate) struct Target {
    /// How it is named: "destination 2 (host=…)".
    pub(crate) label: String,
    /// How to reach its server.
    pub(crate) spec: ServerSpec,
    /// Its process id.
    pub(crate) pid: i32,
    /// Its CancelRequest message.
    pub(crate) cancel_request: Option<Bytes>,
}

impl Target {
    /// `conn`'s backend, if the server gave its key.
    pub(crate) fn of(label: String, spec: &ServerSpec, conn: &Connection) -> Option<Self> {
        conn.session().backend_key().map(|(pid, _)| Self {
            label,
            spec: spec.clone(),
            pid,
            cancel_request: conn.session().cancel_request(),
        })
    }

    /// Sends the CancelRequest to every address of the CONN (a server that has no such backend
    /// ignores it); whether one took it.
    fn send_cancel_request(&self) -> bool {
        let Some(request) = &self.cancel_request else {
            return false;
        };
        let config = &self.spec.config;
        let ports = config.get_ports();
        let port = |i: usize| ports.get(i).or(ports.first()).copied().unwrap_or(5432);
        let send = |stream: &mut dyn ReadWrite| -> std::io::Result<()> {
            stream.write_all(request)?;
            // The server closes the connection once it has the request.
            let mut sink = [0u8; 64];
            while stream.read(&mut sink)? > 0 {}
            Ok(())
        };
        let mut sent = false;
        let hosts = config.get_hosts();
        let addrs = config.get_hostaddrs();
        for i in 0..hosts.len().max(addrs.len()) {
            let port = port(i);
            let result = match (addrs.get(i), hosts.get(i)) {
                (Some(ip), _) => tcp(&(*ip, port)).and_then(|mut s| send(&mut s)),
                (None, Some(Host::Tcp(name))) => {
                    tcp(&(name.as_str(), port)).and_then(|mut s| send(&mut s))
                }
                (None, Some(Host::Unix(dir))) => {
                    UnixStream::connect(dir.join(format!(".s.PGSQL.{port}"))).and_then(|mut s| {
                        s.set_read_timeout(Some(MONITOR_TIMEOUT))?;
                        send(&mut s)
                    })
                }
                (None, None) => continue,
            };
            sent |= result.is_ok();
        }
        sent
    }
}

/// A socket to send a CancelRequest on.
trait ReadWrite: Read + Write {}

impl<T: Read + Write> ReadWrite for T {}

/// Connects to the first address of `to` that answers, within [`MONITOR_TIMEOUT`].
fn tcp(to: &impl ToSocketAddrs) -> std::io::Result<TcpStream> {
    let mut last = None;
    for addr in to.to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, MONITOR_TIMEOUT) {
            Ok(stream) => {
                stream.set_read_timeout(Some(MONITOR_TIMEOUT))?;
                return Ok(stream);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no address")))
}

/// The running watch; it stops when dropped.
pub(crate) struct Watch {
    stop: Arc<AtomicBool>,
    committing: Arc<AtomicBool>,
}

impl Watch {
    /// Starts watching `targets`; `quiet` (`--quiet`) keeps all but lock waits to itself.
    pub(crate) fn start(targets: Vec<Target>, quiet: bool) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let committing = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let no_cancel = Arc::clone(&committing);
        // Not joined: a monitoring query in flight ends within its timeout, and nothing the
        // thread holds needs the run.
        let spawned = thread::Builder::new()
            .name("copyman-watch".to_owned())
            .spawn(move || watch(&targets, &flag, &no_cancel, quiet));
        if let Err(e) = spawned {
            report::warn(format_args!("cannot watch for lock waits: {e}"));
        }
        Self { stop, committing }
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

struct Watched<'t> {
    target: &'t Target,
    monitor: Option<Connection>,
    /// Gave up on a monitoring connection.
    unreachable: bool,
    waiting: bool,
}

impl Watched<'_> {
    fn monitor(&mut self) -> Option<&mut Connection> {
        if self.monitor.is_none() && !self.unreachable {
            let mut config = self.target.spec.config.clone();
            config
                .connect_timeout(MONITOR_TIMEOUT)
                .application_name("copyman monitor");
            match Connection::connect_tls(&config, &self.target.spec.tls) {
                Ok(mut conn) => {
                    let _ = conn.set_timeout(Some(MONITOR_TIMEOUT));
                    self.monitor = Some(conn);
                }
                Err(e) => {
                    report::log(format_args!(
                        "cannot open a monitoring connection for {}: {}",
                        self.target.label,
                        report::describe(&e)
                    ));
                    self.unreachable = true;
                }
            }
        }
        self.monitor.as_mut()
    }

    /// Runs `sql` on the monitoring connection; a failure closes it (it is opened again on the
    /// next question).
    fn query(&mut self, sql: &str) -> Option<Vec<Vec<Option<String>>>> {
        let result = self.monitor()?.query(sql);
        match result {
            Ok(rows) => Some(rows),
            Err(_) => {
                self.monitor = None;
                None
            }
        }
    }

    fn cancel(&mut self) {
        if self.target.send_cancel_request() {
            report::log(format_args!(
                "sent a cancel request to {}",
                self.target.label
            ));
            return;
        }
        let pid = self.target.pid;
        if self
            .query(&format!("SELECT pg_cancel_backend({pid})"))
            .is_some()
        {
            report::log(format_args!(
                "cancelled backend {pid} of {}",
                self.target.label
            ));
        }
    }

    /// What the backend is doing: a lock it waits for, and its activity in words.
    fn look(&mut self) -> Look {
        let pid = self.target.pid;
        let Some(rows) = self.query(&format!(
            "SELECT a.state, a.wait_event_type, a.wait_event,
                    (SELECT coalesce(l.relation::regclass::text, l.locktype)
                       FROM pg_locks l WHERE l.pid = a.pid AND NOT l.granted LIMIT 1),
                    CASE WHEN a.wait_event_type = 'Lock'
                         THEN array_to_string(pg_blocking_pids(a.pid), ', ') END
               FROM pg_stat_activity a
              WHERE a.pid = {pid}"
        )) else {
            return Look {
                lock: None,
                activity: "its server cannot be asked".to_owned(),
            };
        };
        let Some(row) = rows.into_iter().next() else {
            return Look {
                lock: None,
                activity: format!("backend {pid} is gone"),
            };
        };
        let field = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
        let (state, kind, event, what, holders) =
            (field(0), field(1), field(2), field(3), field(4));
        let mut activity = format!("backend {pid} {state}");
        if !kind.is_empty() {
            activity.push_str(&format!(", waiting on {kind}/{event}"));
        }
        if kind != "Lock" {
            return Look {
                lock: None,
                activity,
            };
        }
        let mut lock = format!("backend {pid} waits for a {event} lock");
        if !what.is_empty() {
            lock.push_str(&format!(" on {what}"));
        }
        if !holders.is_empty() {
            lock.push_str(&format!(", held by backend {holders}"));
        }
        Look {
            lock: Some(lock),
            activity,
        }
    }
}

/// What a look at a backend found.
struct Look {
    /// The lock it waits for, in words.
    lock: Option<String>,
    /// Its state and wait event, in words.
    activity: String,
}

fn watch(targets: &[Target], stop: &AtomicBool, committing: &AtomicBool, quiet: bool) {
    let mut watched: Vec<Watched<'_>> = targets
        .iter()
        .map(|target| Watched {
            target,
            monitor: None,
            unreachable: false,
            waiting: false,
        })
        .collect();
    let mut ticks = progress::ticks();
    let mut moved = Instant::now();
    let mut last_look: Option<Instant> = None;
    let mut told_stuck = false;
    while !stop.load(Ordering::SeqCst) {
        thread::sleep(POLL);
        let due = last_look.is_none_or(|t| t.elapsed() >= STILL);
        if signals::received().is_some() {
            if due && !committing.load(Ordering::SeqCst) {
                last_look = Some(Instant::now());
                for w in &mut watched {
                    w.cancel();
                }
            }
            continue;
        }
        let now_ticks = progress::ticks();
        if now_ticks != ticks {
            ticks = now_ticks;
            moved = Instant::now();
            told_stuck = false;
            if watched.iter().any(|w| w.waiting) {
                for w in &mut watched {
                    w.waiting = false;
                }
                progress::set_note(None);
            }
            continue;
        }
        if moved.elapsed() < STILL || !due {
            continue;
        }
        last_look = Some(Instant::now());
        let mut notes = Vec::new();
        let mut activities = Vec::new();
        for w in &mut watched {
            let look = w.look();
            if stop.load(Ordering::SeqCst) {
                return;
            }
            activities.push(format!("{}: {}", w.target.label, look.activity));
            match look.lock {
                Some(what) => {
                    if !w.waiting {
                        progress::println(&format!(
                            "copyman: waiting for lock on {}: {what}",
                            w.target.label
                        ));
                    }
                    w.waiting = true;
                    notes.push(format!("waiting for lock on {}", w.target.label));
                }
                None => w.waiting = false,
            }
        }
        progress::set_note((!notes.is_empty()).then(|| notes.join("; ")));
        if !told_stuck && !quiet && moved.elapsed() >= STUCK && !activities.is_empty() {
            told_stuck = true;
            progress::println(&format!(
                "copyman: nothing has moved for {} s: {}",
                STUCK.as_secs(),
                activities.join("; ")
            ));
        }
    }
}
