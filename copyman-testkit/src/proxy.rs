//! [`Proxy`]: a loopback TCP proxy in front of a server, with network faults on demand.
//!
//! The proxy listens on `127.0.0.1:0` and forwards every connection it accepts to a target
//! address (normally a [`Cluster`]'s port), one thread per direction of each connection, with
//! standard library sockets only. Each direction ([`Direction::ClientToServer`],
//! [`Direction::ServerToClient`]) can be given a [`Fault`] now ([`Proxy::set`]) or once a number
//! of bytes has passed ([`Proxy::after_bytes`]), which cuts a message wherever the count says:
//! that is how a test drops a connection in the middle of a frame.
//!
//! ```no_run
//! use copyman_testkit::proxy::{Direction, Fault, Proxy};
//!
//! let cluster = copyman_testkit::shared();
//! let db = cluster.create_database();
//! let proxy = Proxy::for_cluster(cluster);
//! let conninfo = proxy.conninfo(cluster, &db); // connect through the proxy
//! // Close the connection after 4 MiB more have come from the server.
//! proxy.after_bytes(Direction::ServerToClient, 4 << 20, Fault::Drop);
//! # drop(conninfo);
//! ```
//!
//! # What std can do
//!
//! * [`Fault::Drop`] shuts both sockets down (`shutdown(Both)`): each peer sees an orderly end of
//!   stream (FIN), then errors on writing.
//! * [`Fault::Reset`] closes both sockets without shutting them down first. Setting `SO_LINGER`
//!   to 0 (the usual way to force a TCP RST) is not in stable std, so the RST is best effort: on
//!   Linux, closing a socket that still has unread received data sends an RST to its peer (the
//!   proxy stops reading, so a peer that keeps sending — a server streaming COPY data — gets
//!   one); a peer that sent nothing unread gets a FIN.
//! * [`Fault::HalfClose`] shuts down the writing side towards the receiving peer of that
//!   direction (it reads end of stream) while the other direction goes on.
//! * [`Fault::Stall`] stops reading that direction: the sender's kernel buffers fill and its
//!   writes block (or time out), while the sockets stay open.
//!
//! # Lifetime
//!
//! Every socket read and write of the proxy's threads has a short timeout, so that they notice
//! within [`POLL`] when the [`Proxy`] is dropped: dropping it closes every connection and joins
//! every thread. Connecting to the target is bounded by [`CONNECT_TIMEOUT`].

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::Cluster;

/// How often the proxy's threads look at their controls (and at the proxy being dropped).
pub const POLL: Duration = Duration::from_millis(20);

/// How long the proxy tries to connect to its target for each accepted connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Bytes read at a time in each direction.
const CHUNK: usize = 16 * 1024;

/// One direction of the connections through a [`Proxy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the client (the code under test) to the server.
    ClientToServer,
    /// From the server to the client.
    ServerToClient,
}

impl Direction {
    fn index(self) -> usize {
        match self {
            Self::ClientToServer => 0,
            Self::ServerToClient => 1,
        }
    }
}

/// What a [`Proxy`] does to the bytes of one [`Direction`].
///
/// [`Pass`](Self::Pass), [`Delay`](Self::Delay) and [`Stall`](Self::Stall) are modes: they last
/// until the next change and apply to every connection, present and future. The others are
/// one-shot actions: given to [`Proxy::set`] they act at once on every open connection; fired by
/// [`Proxy::after_bytes`] they act on the connection that carried the last counted byte; either
/// way the direction's mode stays as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Forward bytes as they come.
    Pass,
    /// Forward bytes, sleeping this long before forwarding each chunk read (up to 16 KiB).
    Delay(Duration),
    /// Stop forwarding (and reading): the sockets stay open, the sender's writes eventually
    /// block.
    Stall,
    /// Close the connection, both sides, with `shutdown(Both)`.
    Drop,
    /// Close the connection, both sides, without a shutdown first: an RST where the proxy left
    /// received data unread (see the module documentation), a FIN otherwise.
    Reset,
    /// Shut down writing towards this direction's receiver (it reads end of stream); stop
    /// forwarding this direction. The other direction goes on.
    HalfClose,
    /// Send these bytes to this direction's receiver, then go on forwarding.
    Garbage(Vec<u8>),
    /// Stop forwarding this connection, both ways, for good, its sockets left open: a network
    /// path lost under it (neither end hears anything more, nor a close). Other connections,
    /// open and new, go on.
    Freeze,
}

impl Fault {
    /// [`Fault::Garbage`] of `len` pseudo-random bytes, the same for the same `seed`.
    pub fn garbage(len: usize, seed: u64) -> Self {
        // xorshift64*: deterministic, good enough to look like noise.
        let mut x = seed ^ 0x9E37_79B9_7F4A_7C15;
        if x == 0 {
            x = 1;
        }
        let bytes = (0..len)
            .map(|_| {
                x ^= x >> 12;
                x ^= x << 25;
                x ^= x >> 27;
                (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
            })
            .collect();
        Self::Garbage(bytes)
    }

    fn is_mode(&self) -> bool {
        matches!(self, Self::Pass | Self::Delay(_) | Self::Stall)
    }
}

/// What fires a direction's one-shot fault.
#[derive(Debug)]
enum Trigger {
    /// Once this many more bytes have passed.
    Bytes(u64),
    /// Right after these bytes have passed; `seen` keeps the last bytes that passed (fewer than
    /// the pattern's), so that a match split between two reads is found.
    Pattern { pattern: Vec<u8>, seen: Vec<u8> },
}

/// The controls and counters of one direction.
#[derive(Debug)]
struct DirState {
    /// Pass, Delay or Stall.
    mode: Fault,
    /// What fires the fault.
    trigger: Option<(Trigger, Fault)>,
    /// Bytes forwarded, over all connections.
    bytes: u64,
}

impl Default for DirState {
    fn default() -> Self {
        Self {
            mode: Fault::Pass,
            trigger: None,
            bytes: 0,
        }
    }
}

#[derive(Debug, Default)]
struct State {
    dirs: [DirState; 2],
    conns: Vec<Weak<Conn>>,
    threads: Vec<JoinHandle<()>>,
    accepted: usize,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    stop: AtomicBool,
    target: SocketAddr,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

/// One proxied connection: the socket to the client and the socket to the server.
#[derive(Debug)]
struct Conn {
    client: TcpStream,
    server: TcpStream,
    closed: AtomicBool,
    /// [`Fault::Freeze`]: nothing more is forwarded either way.
    frozen: AtomicBool,
    /// One-shot faults given to [`Proxy::set`], per direction, not yet carried out.
    pending: Mutex<[Vec<Fault>; 2]>,
}

impl Conn {
    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Closes both sides: with a shutdown (FIN) or, for a reset, by letting the last handle go.
    fn close(&self, reset: bool) {
        self.closed.store(true, Ordering::SeqCst);
        if !reset {
            let _ = self.client.shutdown(Shutdown::Both);
            let _ = self.server.shutdown(Shutdown::Both);
        }
    }

    fn take_pending(&self, dir: Direction) -> Vec<Fault> {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::take(&mut pending[dir.index()])
    }
}

/// A loopback TCP proxy with controllable faults; see the [module documentation](self).
///
/// Dropping it closes every connection through it and ends all its threads.
#[derive(Debug)]
pub struct Proxy {
    shared: Arc<Shared>,
    addr: SocketAddr,
    acceptor: Option<JoinHandle<()>>,
}

impl Proxy {
    /// A proxy on `127.0.0.1:0` forwarding every connection to `target`.
    ///
    /// # Errors
    /// The listening socket could not be set up.
    pub fn start(target: SocketAddr) -> io::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            stop: AtomicBool::new(false),
            target,
        });
        let acceptor = {
            let shared = shared.clone();
            thread::Builder::new()
                .name(format!("proxy {addr} accept"))
                .spawn(move || accept_loop(&listener, &shared))?
        };
        Ok(Self {
            shared,
            addr,
            acceptor: Some(acceptor),
        })
    }

    /// A proxy in front of `cluster`'s TCP port.
    ///
    /// # Panics
    /// If the proxy cannot listen.
    pub fn for_cluster(cluster: &Cluster) -> Self {
        let target = SocketAddr::from((Ipv4Addr::LOCALHOST, cluster.port()));
        Self::start(target)
            .unwrap_or_else(|e| panic!("copyman-testkit: cannot start a proxy to {target}: {e}"))
    }

    /// The port the proxy listens on (on `127.0.0.1`).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The address the proxy listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `cluster`'s [`conninfo`](Cluster::conninfo) for database `db`, through this proxy.
    pub fn conninfo(&self, cluster: &Cluster, db: &str) -> String {
        cluster.conninfo(db).replacen(
            &format!(" port={} ", cluster.port()),
            &format!(" port={} ", self.port()),
            1,
        )
    }

    /// Applies `fault` to `dir` now: a mode (pass, delay, stall) for every connection, present
    /// and future; a one-shot action for every connection open now. Cancels a pending
    /// [`after_bytes`](Self::after_bytes) of `dir`.
    pub fn set(&self, dir: Direction, fault: Fault) {
        let mut state = self.shared.lock();
        state.dirs[dir.index()].trigger = None;
        if fault.is_mode() {
            state.dirs[dir.index()].mode = fault;
            return;
        }
        state.conns.retain(|c| c.strong_count() > 0);
        for conn in state.conns.iter().filter_map(Weak::upgrade) {
            let mut pending = conn.pending.lock().unwrap_or_else(PoisonError::into_inner);
            pending[dir.index()].push(fault.clone());
        }
    }

    /// Applies `fault` to `dir` once `n` more bytes have passed in that direction (counted over
    /// all connections from now): exactly `n` bytes go through, then the fault acts (a one-shot
    /// action on the connection that carried the `n`-th byte). With `n` 0 it acts before the
    /// next byte. Replaces a pending trigger of `dir`.
    pub fn after_bytes(&self, dir: Direction, n: u64, fault: Fault) {
        self.shared.lock().dirs[dir.index()].trigger = Some((Trigger::Bytes(n), fault));
    }

    /// Applies `fault` to `dir` right after the first occurrence of `pattern` in the bytes that
    /// pass in that direction from now (read as one stream: meant for one connection at a time):
    /// where [`after_bytes`](Self::after_bytes) would count bytes, e.g. to inject a message at a
    /// frame boundary, this does not depend on every message before it being foreseen. Replaces
    /// a pending trigger of `dir`.
    ///
    /// # Panics
    /// If `pattern` is empty.
    pub fn after_pattern(&self, dir: Direction, pattern: &[u8], fault: Fault) {
        assert!(!pattern.is_empty(), "after_pattern needs a pattern");
        let pattern = pattern.to_vec();
        let trigger = Trigger::Pattern {
            pattern,
            seen: Vec::new(),
        };
        self.shared.lock().dirs[dir.index()].trigger = Some((trigger, fault));
    }

    /// Whether an [`after_bytes`](Self::after_bytes) or [`after_pattern`](Self::after_pattern)
    /// trigger of `dir` is still waiting.
    pub fn armed(&self, dir: Direction) -> bool {
        self.shared.lock().dirs[dir.index()].trigger.is_some()
    }

    /// Bytes forwarded in `dir`, over all connections so far (counted as they are handed to the
    /// receiving socket).
    pub fn bytes(&self, dir: Direction) -> u64 {
        self.shared.lock().dirs[dir.index()].bytes
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.lock().accepted
    }

    /// Connections open now (until both directions of a connection are over).
    pub fn open_connections(&self) -> usize {
        let mut state = self.shared.lock();
        state.conns.retain(|c| c.strong_count() > 0);
        state.conns.len()
    }

    /// Waits up to `timeout` until no connection is open; returns whether none is. Counters are
    /// totals over all connections, so wait for this before arming a trigger meant for the next
    /// connection: the last one may still be passing its final bytes.
    pub fn wait_closed(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.open_connections() == 0 {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(POLL);
        }
    }

    /// Waits up to `timeout` until at least `n` bytes were forwarded in `dir`; returns whether
    /// they were.
    pub fn wait_bytes(&self, dir: Direction, n: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.bytes(dir) >= n {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(POLL);
        }
    }

    /// Waits up to `timeout` until no byte has been forwarded in `dir` for `quiet`; returns
    /// whether that happened (e.g. a stalled direction whose sender is blocked).
    pub fn wait_quiet(&self, dir: Direction, quiet: Duration, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut last = self.bytes(dir);
        let mut since = Instant::now();
        loop {
            thread::sleep(POLL);
            let now = self.bytes(dir);
            if now != last {
                last = now;
                since = Instant::now();
            } else if since.elapsed() >= quiet {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        let (conns, threads) = {
            let mut state = self.shared.lock();
            (
                std::mem::take(&mut state.conns),
                std::mem::take(&mut state.threads),
            )
        };
        for conn in conns.iter().filter_map(Weak::upgrade) {
            conn.close(false);
        }
        drop(conns);
        for thread in threads {
            let _ = thread.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    while !shared.stopped() {
        match listener.accept() {
            Ok((client, _)) => {
                if let Err(e) = open(client, shared) {
                    // The client sees its connection closed; the test sees why on stderr.
                    eprintln!("copyman-testkit proxy: cannot connect to the target: {e}");
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => {
                thread::sleep(POLL / 4);
            }
            Err(e) => {
                eprintln!("copyman-testkit proxy: accept failed: {e}");
                thread::sleep(POLL);
            }
        }
    }
}

/// Connects an accepted client to the target and starts its two pumps.
fn open(client: TcpStream, shared: &Arc<Shared>) -> io::Result<()> {
    client.set_nonblocking(false)?;
    let server = TcpStream::connect_timeout(&shared.target, CONNECT_TIMEOUT)?;
    for s in [&client, &server] {
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(POLL))?;
        s.set_write_timeout(Some(POLL))?;
    }
    let conn = Arc::new(Conn {
        client,
        server,
        closed: AtomicBool::new(false),
        frozen: AtomicBool::new(false),
        pending: Mutex::default(),
    });
    let mut state = shared.lock();
    state.accepted += 1;
    state.conns.retain(|c| c.strong_count() > 0);
    state.conns.push(Arc::downgrade(&conn));
    let n = state.accepted;
    for dir in [Direction::ClientToServer, Direction::ServerToClient] {
        let (from, to) = match dir {
            Direction::ClientToServer => (conn.client.try_clone()?, conn.server.try_clone()?),
            Direction::ServerToClient => (conn.server.try_clone()?, conn.client.try_clone()?),
        };
        let pump = Pump {
            dir,
            from,
            to,
            conn: conn.clone(),
            shared: shared.clone(),
        };
        let handle = thread::Builder::new()
            .name(format!("proxy conn {n} {dir:?}"))
            .spawn(move || pump.run())?;
        state.threads.push(handle);
    }
    Ok(())
}

/// Why a pump stops.
enum Stop {
    /// The proxy is dropped or the connection closed.
    Closed,
    /// This direction is over (half-closed); the other may go on.
    DirectionDone,
}

/// Forwards one direction of one connection.
struct Pump {
    dir: Direction,
    from: TcpStream,
    to: TcpStream,
    conn: Arc<Conn>,
    shared: Arc<Shared>,
}

impl Pump {
    fn run(mut self) {
        let mut buf = vec![0u8; CHUNK];
        loop {
            if let Err(stop) = self.step(&mut buf) {
                if matches!(stop, Stop::Closed) {
                    // A reset leaves closing to the drop of the last handle of each socket.
                    if !self.conn.is_closed() {
                        self.conn.close(false);
                    }
                }
                return;
            }
        }
    }

    fn live(&self) -> Result<(), Stop> {
        if self.shared.stopped() || self.conn.is_closed() {
            Err(Stop::Closed)
        } else {
            Ok(())
        }
    }

    fn mode(&self) -> Fault {
        self.shared.lock().dirs[self.dir.index()].mode.clone()
    }

    /// One round: pending actions, then one chunk read and forwarded (or a pause).
    fn step(&mut self, buf: &mut [u8]) -> Result<(), Stop> {
        self.live()?;
        for fault in self.conn.take_pending(self.dir) {
            self.act(fault)?;
        }
        // A trigger at 0 bytes fires before anything more is read.
        self.forward(&[])?;
        if self.mode() == Fault::Stall {
            thread::sleep(POLL);
            return Ok(());
        }
        match self.from.read(buf) {
            Ok(0) => {
                // The sender closed its side: pass the end of stream on.
                let _ = self.to.shutdown(Shutdown::Write);
                Err(Stop::DirectionDone)
            }
            Ok(n) => {
                if let Fault::Delay(d) = self.mode() {
                    self.sleep(d)?;
                }
                self.forward(&buf[..n])
            }
            Err(e) if is_timeout(&e) || e.kind() == ErrorKind::Interrupted => Ok(()),
            Err(_) => Err(Stop::Closed),
        }
    }

    /// Sleeps `d`, waking up if the proxy or the connection closes.
    fn sleep(&self, d: Duration) -> Result<(), Stop> {
        let deadline = Instant::now() + d;
        loop {
            self.live()?;
            let now = Instant::now();
            if now >= deadline {
                return Ok(());
            }
            thread::sleep((deadline - now).min(POLL));
        }
    }

    /// Forwards `data`, firing the direction's trigger where its count ends.
    fn forward(&mut self, mut data: &[u8]) -> Result<(), Stop> {
        loop {
            let (take, fire) = {
                let mut state = self.shared.lock();
                let dir = &mut state.dirs[self.dir.index()];
                match &mut dir.trigger {
                    Some((Trigger::Bytes(0), _)) => (0, dir.trigger.take().map(|(_, f)| f)),
                    Some((Trigger::Bytes(left), _)) => {
                        let take = usize::try_from(*left).unwrap_or(usize::MAX).min(data.len());
                        *left -= take as u64;
                        (take, None)
                    }
                    Some((Trigger::Pattern { pattern, seen }, _)) => {
                        let mut window = std::mem::take(seen);
                        let before = window.len();
                        window.extend_from_slice(data);
                        let len = pattern.len();
                        let found = window.windows(len).position(|w| w == pattern.as_slice());
                        match found {
                            // The match ends in `data` (`seen` is shorter than the pattern):
                            // up to its end, then the fault fires as after 0 more bytes.
                            Some(at) => {
                                if let Some((trigger, _)) = &mut dir.trigger {
                                    *trigger = Trigger::Bytes(0);
                                }
                                (at + len - before, None)
                            }
                            None => {
                                let keep = window.len().saturating_sub(len - 1);
                                *seen = window.split_off(keep);
                                (data.len(), None)
                            }
                        }
                    }
                    None => (data.len(), None),
                }
            };
            if let Some(fault) = fire {
                if fault.is_mode() {
                    self.shared.lock().dirs[self.dir.index()].mode = fault;
                } else {
                    self.act(fault)?;
                }
                continue;
            }
            if data.is_empty() {
                return Ok(());
            }
            // A stall (set now, or fired by the trigger mid-chunk) holds what was read; a frozen
            // connection, for good.
            while self.mode() == Fault::Stall || self.conn.frozen.load(Ordering::SeqCst) {
                self.live()?;
                thread::sleep(POLL);
            }
            // Counted first, so that whoever reads what was forwarded sees it counted.
            self.shared.lock().dirs[self.dir.index()].bytes += take as u64;
            self.write_all(&data[..take])?;
            data = &data[take..];
        }
    }

    /// Carries out a one-shot fault on this connection.
    fn act(&mut self, fault: Fault) -> Result<(), Stop> {
        match fault {
            Fault::Drop => {
                self.conn.close(false);
                Err(Stop::Closed)
            }
            Fault::Reset => {
                self.conn.close(true);
                Err(Stop::Closed)
            }
            Fault::HalfClose => {
                let _ = self.to.shutdown(Shutdown::Write);
                Err(Stop::DirectionDone)
            }
            Fault::Garbage(bytes) => self.write_all(&bytes),
            Fault::Freeze => {
                self.conn.frozen.store(true, Ordering::SeqCst);
                Ok(())
            }
            mode => {
                self.shared.lock().dirs[self.dir.index()].mode = mode;
                Ok(())
            }
        }
    }

    /// Writes all of `data`, in short timed writes so that a closing proxy is noticed.
    fn write_all(&mut self, mut data: &[u8]) -> Result<(), Stop> {
        while !data.is_empty() {
            self.live()?;
            match self.to.write(data) {
                Ok(0) => return Err(Stop::Closed),
                Ok(n) => data = &data[n..],
                Err(e) if is_timeout(&e) || e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Err(Stop::Closed),
            }
        }
        Ok(())
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server on loopback, serving connections until the listener fails.
    fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                thread::spawn(move || {
                    let mut reader = stream.try_clone().unwrap();
                    let _ = io::copy(&mut reader, &mut stream);
                    let _ = stream.shutdown(Shutdown::Write);
                });
            }
        });
        addr
    }

    /// A connection through `proxy`, once the proxy has it (so that `set` reaches it).
    fn client(proxy: &Proxy) -> TcpStream {
        let open = proxy.open_connections();
        let stream = TcpStream::connect(proxy.addr()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while proxy.open_connections() == open {
            assert!(Instant::now() < deadline, "the proxy accepts");
            thread::sleep(POLL / 4);
        }
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream
    }

    fn read_n(stream: &mut TcpStream, n: usize) -> Vec<u8> {
        let mut buf = vec![0; n];
        stream.read_exact(&mut buf).unwrap();
        buf
    }

    #[test]
    fn passes_bytes_both_ways_and_counts_them() {
        let proxy = Proxy::start(echo_server()).unwrap();
        let mut c = client(&proxy);
        c.write_all(b"hello").unwrap();
        assert_eq!(read_n(&mut c, 5), b"hello");
        assert_eq!(proxy.bytes(Direction::ClientToServer), 5);
        assert_eq!(proxy.bytes(Direction::ServerToClient), 5);
        assert_eq!(proxy.connections(), 1);
        assert_eq!(proxy.open_connections(), 1);
        c.shutdown(Shutdown::Write).unwrap();
        assert_eq!(
            c.read(&mut [0; 8]).unwrap(),
            0,
            "the end of stream is passed on"
        );
        drop(c);
        assert!(proxy.wait_closed(Duration::from_secs(5)));
    }

    #[test]
    fn drop_after_bytes_cuts_exactly_there() {
        let proxy = Proxy::start(echo_server()).unwrap();
        let mut c = client(&proxy);
        proxy.after_bytes(Direction::ServerToClient, 7, Fault::Drop);
        c.write_all(b"0123456789").unwrap();
        let mut got = Vec::new();
        let _ = c.read_to_end(&mut got);
        assert_eq!(got, b"0123456");
        assert!(!proxy.armed(Direction::ServerToClient));
        assert!(proxy.wait_closed(Duration::from_secs(5)));
    }

    #[test]
    fn garbage_after_a_pattern_split_between_reads_lands_right_after_it() {
        let proxy = Proxy::start(echo_server()).unwrap();
        let mut c = client(&proxy);
        proxy.after_pattern(
            Direction::ServerToClient,
            b"xyz",
            Fault::Garbage(b"!".to_vec()),
        );
        c.write_all(b"abxy").unwrap();
        assert_eq!(read_n(&mut c, 4), b"abxy");
        assert!(proxy.armed(Direction::ServerToClient));
        c.write_all(b"zxyz").unwrap();
        assert_eq!(read_n(&mut c, 5), b"z!xyz");
        assert!(!proxy.armed(Direction::ServerToClient));
    }

    #[test]
    fn reset_closes_the_connection() {
        let proxy = Proxy::start(echo_server()).unwrap();
        let mut c = client(&proxy);
        c.write_all(b"abc").unwrap();
        assert_eq!(read_n(&mut c, 3), b"abc");
        proxy.set(Direction::ClientToServer, Fault::Reset);
        let mut got = Vec::new();
        // End of stream or a reset, whichever the kernel chose.
        let _ = c.read_to_end(&mut got);
        assert!(got.is_empty());
        assert!(proxy.wait_closed(Duration::from_secs(5)));
    }

    #[test]
    fn stall_holds_bytes_until_released() {
        let proxy = Proxy::start(echo_server()).unwrap();
        let mut c = client(&proxy);
        proxy.after_bytes(Direction::ClientToServer, 2, Fault::Stall);
        c.write_all(b"abcd").unwrap();
        assert_eq!(read_n(&mut c, 2), b"ab");
        c.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        assert!(c.read(&mut [0; 4]).is_err(), "nothing passes while stalled");
        proxy.set(Direction::ClientToServer, Fault::Pass);
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert_eq!(read_n(&mut c, 2), b"cd");
    }

    #[test]
    fn delay_slows_each_chunk() {
        let proxy = Proxy::start(echo_server()).unwrap();
        let mut c = client(&proxy);
        proxy.set(
            Direction::ServerToClient,
            Fault::Delay(Duration::from_millis(150)),
        );
        let started = Instant::now();
        c.write_all(b"x").unwrap();
        assert_eq!(read_n(&mut c, 1), b"x");
        assert!(started.elapsed() >= Duration::from_millis(100));
    }

    #[test]
    fn garbage_is_injected_then_bytes_pass() {
        let proxy = Proxy::start(echo_server()).unwrap();
        let mut c = client(&proxy);
        proxy.after_bytes(Direction::ServerToClient, 1, Fault::Garbage(b"!!".to_vec()));
        c.write_all(b"ab").unwrap();
        assert_eq!(read_n(&mut c, 4), b"a!!b");
        assert_eq!(Fault::garbage(32, 7), Fault::garbage(32, 7));
        assert_ne!(Fault::garbage(32, 7), Fault::garbage(32, 8));
    }

    #[test]
    fn half_close_ends_one_direction() {
        let proxy = Proxy::start(echo_server()).unwrap();
        let mut c = client(&proxy);
        proxy.set(Direction::ServerToClient, Fault::HalfClose);
        thread::sleep(POLL * 3);
        assert_eq!(
            c.read(&mut [0; 4]).unwrap(),
            0,
            "the client reads end of stream"
        );
        // The other direction still carries bytes to the server.
        c.write_all(b"more").unwrap();
        assert!(proxy.wait_bytes(Direction::ClientToServer, 4, Duration::from_secs(5)));
    }

    #[test]
    fn dropping_the_proxy_ends_everything_promptly() {
        let proxy = Proxy::start(echo_server()).unwrap();
        let mut c = client(&proxy);
        proxy.set(Direction::ClientToServer, Fault::Stall);
        c.write_all(&[0; 1 << 16]).unwrap();
        let started = Instant::now();
        drop(proxy);
        assert!(started.elapsed() < Duration::from_secs(2));
        let mut rest = Vec::new();
        let _ = c.read_to_end(&mut rest);
        assert!(rest.is_empty(), "the client sees its connection end");
    }
}
