//! A raw PostgreSQL connection, spoken by copyman-core's [`Session`]: its socket is non-blocking
//! from the moment it is connected, and every call that must wait for it waits with `poll(2)`
//! ([`wait_for`]), bounded by a connection attempt's deadline or the timeout set on it.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use copyman_core::connect::{self, CancelKey, Learned, Next, Started, Target, TimeoutExpired};
use copyman_core::connection::{Closer, handle_read};
use copyman_core::endpoint::{Endpoint, GIVEN_UP_AFTER_INTERRUPT};
use copyman_core::session::{Session, State};
use copyman_core::stall::{GraceExpired, interrupted_limit};
use copyman_tls::rustls::ClientConfig;
use copyman_tls::{SslMode, TlsClient, TlsError, TlsSettings};

use crate::PollSocket;
use crate::error::{Attempts, Error, TcpOptions, read_conninfo, tls_settings};
use crate::interrupt::Interrupter;
use crate::poll::{self, READABLE, WRITABLE, Watch};

/// Bytes read from the socket at a time outside the COPY data path.
const MESSAGE_READ: usize = 16 * 1024;

/// A connected socket: TCP, TLS over TCP (copyman-tls' rules), or Unix. A connection's socket is
/// non-blocking: a read or write it cannot make now says `WouldBlock`.
#[derive(Debug)]
pub(crate) enum Stream {
    Tcp(TcpStream),
    Tls(TcpStream, Box<TlsClient>),
    Unix(UnixStream),
}

impl Stream {
    /// Puts the socket in non-blocking mode, for good: once, right after it is connected.
    fn into_nonblocking(self) -> io::Result<Self> {
        match &self {
            Self::Tcp(s) | Self::Tls(s, _) => s.set_nonblocking(true)?,
            Self::Unix(s) => s.set_nonblocking(true)?,
        }
        Ok(self)
    }

    /// The socket to `poll(2)`. Under TLS it is the TCP socket under rustls: reads go on until
    /// the socket would block (so no decrypted byte waits in rustls unseen by `poll`), and
    /// records rustls still holds after a write go out through [`Stream::try_flush`].
    pub(crate) fn poll_fd(&self) -> RawFd {
        match self {
            Self::Tcp(s) | Self::Tls(s, _) => s.as_raw_fd(),
            Self::Unix(s) => s.as_raw_fd(),
        }
    }

    /// Writes, without blocking, the TLS records rustls holds: `true` once none is left, `false`
    /// when the socket takes no more now. Plain sockets hold nothing.
    pub(crate) fn try_flush(&mut self) -> io::Result<bool> {
        match self {
            Self::Tls(s, tls) => tls.try_flush(s),
            _ => Ok(true),
        }
    }

    /// Bytes of TLS records written to the socket so far (none on a plain socket).
    pub(crate) fn records_sent(&self) -> u64 {
        match self {
            Self::Tls(_, tls) => tls.sent(),
            _ => 0,
        }
    }

    /// Shuts the socket down both ways.
    fn shutdown(&self) -> io::Result<()> {
        match self {
            Self::Tcp(s) | Self::Tls(s, _) => s.shutdown(std::net::Shutdown::Both),
            Self::Unix(s) => s.shutdown(std::net::Shutdown::Both),
        }
    }

    /// Whether the connection is encrypted.
    fn is_tls(&self) -> bool {
        matches!(self, Self::Tls(..))
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Tcp(s) => s.read(buf),
            Self::Tls(s, tls) => tls.try_read(s, buf),
            Self::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Tcp(s) => s.write(buf),
            Self::Tls(s, tls) => tls.try_write(s, buf),
            Self::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.try_flush()? {
            true => Ok(()),
            false => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

/// Opens a socket to `target`, within `timeout` for TCP, in blocking mode (made non-blocking
/// next), with the configuration's TCP options (keepalives) if given.
fn open(
    target: &Target,
    timeout: Option<Duration>,
    tcp: Option<&TcpOptions>,
) -> io::Result<Stream> {
    match target {
        Target::Tcp { addr, .. } => {
            let stream = match timeout {
                Some(t) => TcpStream::connect_timeout(addr, t)?,
                None => TcpStream::connect(addr)?,
            };
            // COPY data goes out in large writes; small protocol messages must not wait.
            stream.set_nodelay(true)?;
            if let Some(tcp) = tcp {
                tcp.set((&stream).into())?;
            }
            Ok(Stream::Tcp(stream))
        }
        Target::Unix(path) => Ok(Stream::Unix(match connect::abstract_name(path) {
            Some(name) => UnixStream::connect_addr(&copyman_tls::abstract_address(name)?)?,
            None => UnixStream::connect(path)?,
        })),
    }
}

/// A PostgreSQL connection that copyman owns: the fast path's raw COPY session.
///
/// Parameters come as a [`postgres::Config`], or a URL or `key=value` string parsed exactly as the
/// `postgres` crate parses it. Every connection sets the portability settings (`client_encoding`
/// UTF8, `DateStyle` ISO, `IntervalStyle` postgres, `extra_float_digits` 3, `lc_monetary` C …:
/// [`copyman_core::session::PORTABILITY_SETTINGS`]) so that text COPY data means the same on
/// every server. Plain SQL runs with [`Connection::execute`] and
/// [`Connection::query`] before and after a copy, e.g. to copy inside a transaction.
/// A `SET` of those on the session since it connected changes what its COPY writes or reads:
/// `client_encoding`, `DateStyle` and `IntervalStyle` (which the server reports) are compared at
/// a copy's start, and a copy whose ends would read text otherwise is refused; after a query
/// that sets `extra_float_digits`, `lc_monetary` or `array_nulls` (a `SET`, a `set_config`),
/// which the server does not report, each COPY asks for them in its own Query and a text copy
/// an end of which would write or read its values otherwise is refused. A function that sets
/// one in its body is not seen.
///
/// ```no_run
/// use copyman_sync::Connection;
///
/// let mut conn = Connection::connect_str("host=127.0.0.1 user=postgres dbname=postgres")?;
/// conn.execute("BEGIN")?;
/// conn.execute("CREATE TEMP TABLE loading_table (i int8)")?;
/// # Ok::<(), copyman_sync::Error>(())
/// ```
pub struct Connection {
    pub(crate) stream: Stream,
    pub(crate) endpoint: Endpoint,
    target: Target,
    connect_timeout: Option<Duration>,
    /// While connecting: the attempt's deadline, which bounds every wait.
    deadline: Option<Started>,
    /// The timeout [`Connection::set_timeout`] set: how long a wait may go with no byte moving
    /// (a multiplexing driver applies it itself, through [`Connection::poll_socket`]).
    timeout: Option<Duration>,
    /// While a copy's stall timeout is armed ([`Connection::set_copy_timeout`]): the timeout the
    /// caller had set, put back when the copy is done with it.
    caller_timeout: Option<Option<Duration>>,
    scratch: Vec<u8>,
    /// A write of the session's output failed midway: part of a message may be on the wire.
    half_written: bool,
    /// Why copyman closed the socket to keep an abandoned COPY from committing, once it did.
    closed: Option<&'static str>,
    /// Why a [`Closer`] closed it from another thread, once one did.
    closed_by: Arc<OnceLock<&'static str>>,
    /// Cuts its waits short once interrupted ([`Connection::set_interrupter`]).
    interrupter: Option<Interrupter>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("target", &self.target.to_string())
            .field("session", self.endpoint.session())
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Connects with parameters in a URL (`postgresql://user@host:port/db`) or `key=value` form.
    ///
    /// The TLS parameters `sslmode` (all of libpq's modes), `sslrootcert`, `sslcert` and
    /// `sslkey` are read here; everything else as the `postgres` crate reads it.
    ///
    /// No `host` (nor `hostaddr`) means the Unix socket in `/var/run/postgresql` only, as
    /// Debian's libpq: not `localhost` by TCP after it, which may be another server.
    ///
    /// Unlike libpq (and the `copyman` command, which resolves a CONN as libpq does), the
    /// environment (`PGHOST`, `PGPASSWORD`, …), the password file and the service file are not
    /// consulted, and a key the `postgres` crate does not know (`passfile`, `service`) is an
    /// error: give what the connection needs in the string.
    ///
    /// `target_session_attrs=read-write` (or `read-only`) leaves a host whose session is not of
    /// that kind for the next, as libpq (core's `SessionAttrs`: servers of PostgreSQL 14 and
    /// later report it), and so do `primary`, `standby` and `prefer-standby` (taken out of the
    /// string: the crate's configuration cannot carry them; with a configuration, give them to
    /// [`Connection::connect_with`]). A raw connection cannot honour
    /// `load_balance_hosts=random` or `sslnegotiation=direct`: they are refused
    /// ([`Error::Unsupported`]) rather than ignored; `client_encoding` is given with
    /// `connect_with`.
    ///
    /// # Errors
    /// A malformed string, an unreachable server, a failed TLS handshake or authentication.
    pub fn connect_str(params: &str) -> Result<Self, Error> {
        let (config, tls, startup) = read_conninfo(params)?;
        Self::connect_with(&config, &tls, &startup)
    }

    /// Connects with a `postgres` crate configuration: the first host that accepts wins (at its
    /// `hostaddr`, if given, with the host name kept for TLS verification, as in libpq). Its
    /// `ssl_mode` (`disable`, `prefer`, `require`) applies with the default certificate files;
    /// [`Connection::connect_tls`] takes every TLS setting. A `notice_callback` is not called
    /// (the configuration gives no way to read it back): the server's notices wait in
    /// [`Connection::take_notices`].
    ///
    /// # Errors
    /// An unreachable server ([`Error::Connect`]), a failed TLS negotiation ([`Error::Tls`]), a
    /// failed authentication or a server error at startup ([`Error::Session`], with the server's
    /// SQLSTATE), a missing user name.
    pub fn connect(config: &postgres::Config) -> Result<Self, Error> {
        Self::connect_tls(config, &tls_settings(config))
    }

    /// Connects with a `postgres` crate configuration and TLS settings (which replace the
    /// configuration's `ssl_mode`). TLS is spoken over TCP only; Unix sockets ignore it, as in
    /// libpq. Under `prefer` and `allow` a refused attempt is retried the other way, as libpq does.
    /// SCRAM binds itself to the TLS channel (SCRAM-SHA-256-PLUS) as the configuration's
    /// `channel_binding` says.
    ///
    /// ```no_run
    /// use copyman_sync::{Connection, SslMode, TlsSettings};
    ///
    /// let config: postgres::Config = "host=db.example.com user=app dbname=shop".parse()?;
    /// let mut tls = TlsSettings::new(SslMode::VerifyFull);
    /// tls.root_cert = Some("/etc/ssl/certs/db-ca.pem".into());
    /// let conn = Connection::connect_tls(&config, &tls)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`Connection::connect`]; unusable TLS settings ([`Error::Tls`]) before any connection.
    pub fn connect_tls(config: &postgres::Config, tls: &TlsSettings) -> Result<Self, Error> {
        Self::connect_with(config, tls, &[])
    }

    /// Connects as [`Connection::connect_tls`] does, with more startup parameters: settings the
    /// `postgres` crate's configuration cannot carry, such as libpq's `client_encoding`
    /// (which replaces the default UTF8) or `TimeZone`. A `target_session_attrs` among them is
    /// no setting: it is the kind of session to find, any of libpq's (`primary`, `standby`,
    /// `prefer-standby` too), in place of the configuration's.
    ///
    /// ```no_run
    /// use copyman_sync::{Connection, SslMode, TlsSettings};
    ///
    /// let config: postgres::Config = "host=db.example.com user=app dbname=shop".parse()?;
    /// let latin1 = [("client_encoding".to_owned(), "LATIN1".to_owned())];
    /// let conn = Connection::connect_with(&config, &TlsSettings::new(SslMode::Prefer), &latin1)?;
    /// assert_eq!(conn.session().parameter("client_encoding"), Some("LATIN1"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`Connection::connect_tls`].
    pub fn connect_with(
        config: &postgres::Config,
        tls: &TlsSettings,
        startup: &[(String, String)],
    ) -> Result<Self, Error> {
        // Core's plan says what to try in which order; this loop only does it.
        let mut attempts = Attempts::new(config, tls, startup)?;
        loop {
            match attempts.connecting.next(Instant::now())? {
                Next::Resolve { name, port } => {
                    attempts
                        .connecting
                        .resolved((name.as_str(), port).to_socket_addrs());
                }
                Next::Attempt {
                    target,
                    tls,
                    deadline,
                } => {
                    let mut learned = Learned::default();
                    let attempt = Self::attempt(&target, &attempts, tls, deadline, &mut learned);
                    let attempt = attempt.map_err(|e| expired(e, &target, deadline));
                    let attempt = attempt.and_then(|c| attempts.of_the_kind(c, Self::session));
                    attempts.connecting.learned(learned);
                    if let Some(mut conn) = attempts.connecting.attempted(attempt) {
                        attempts.note_tls_given_up(conn.endpoint.session_mut());
                        return Ok(conn);
                    }
                }
            }
        }
    }

    /// One connection attempt: the socket, TLS if `with_tls`, startup and authentication, all
    /// before `deadline`, and what it `learned` on the way.
    fn attempt(
        target: &Target,
        attempts: &Attempts,
        with_tls: bool,
        deadline: Started,
        learned: &mut Learned,
    ) -> Result<Self, Error> {
        let open_within = deadline.remaining(Instant::now());
        let stream = open_within
            .and_then(|within| open(target, within, Some(&attempts.tcp)))
            .and_then(Stream::into_nonblocking)
            .map_err(|source| Error::Connect {
                target: target.to_string(),
                source,
            })?;
        let mut session = Session::new(attempts.startup.clone());
        let tls = attempts.tls(with_tls).map(|config| (config, attempts.mode));
        let stream = negotiate_tls(stream, target, tls, deadline, &mut session)?;
        learned.tls_declined =
            tls.is_some() && matches!(target, Target::Tcp { .. }) && !stream.is_tls();
        let mut conn = Self {
            stream,
            endpoint: Endpoint::new(session),
            target: target.clone(),
            connect_timeout: attempts.timeout,
            deadline: Some(deadline),
            timeout: None,
            caller_timeout: None,
            scratch: vec![0; MESSAGE_READ],
            half_written: false,
            closed: None,
            closed_by: Arc::default(),
            interrupter: None,
        };
        conn.endpoint.wait_ready();
        let ready = conn.drive();
        learned.authenticated = conn.endpoint.session().authenticated();
        ready?;
        // The deadline guards the connection attempt only; the copy sets its own timeouts.
        conn.deadline = None;
        Ok(conn)
    }

    /// What bounds a wait now: the attempt's deadline while connecting, else the timeout, and
    /// its interrupter's grace once interrupted.
    fn limit(&self) -> Limit {
        match (self.deadline, &self.interrupter) {
            (Some(deadline), _) => Limit::Attempt(deadline),
            (None, Some(interrupter)) if interrupter.is_interrupted() => Limit::Grace(self.timeout),
            (None, Some(interrupter)) => Limit::Interruptible {
                timeout: self.timeout,
                woken: interrupter.watch(),
            },
            (None, None) => Limit::Idle(self.timeout),
        }
    }

    /// Lets `interrupter` cut this connection's waits short (`None`: no more): once it is
    /// interrupted, a wait for the server that sees no byte move for
    /// [`INTERRUPT_GRACE`](crate::INTERRUPT_GRACE) ends with an error of kind `TimedOut`, as
    /// one past [`Connection::set_timeout`]'s — one under way at the interrupt too — carrying
    /// core's [`GraceExpired`](copyman_core::stall::GraceExpired); the connection is then closed
    /// (its backend sent a cancel): whatever came next, a `ROLLBACK`, would wait on the same
    /// silent socket, and the server ends the transaction once it hears of the close. For the
    /// questions a program asks before it copies (a frozen backend, a network path lost, would
    /// keep a signal from ending it); not for a statement whose answer must be waited for
    /// whatever comes, such as a `COMMIT`. A copy has an interrupter of its own
    /// ([`CopyManager::interrupter`](crate::CopyManager::interrupter)).
    ///
    /// ```no_run
    /// use copyman_sync::{Connection, Interrupter};
    ///
    /// let interrupter = Interrupter::new()?;
    /// let mut conn = Connection::connect_str("host=10.0.0.2 user=postgres dbname=app")?;
    /// conn.set_interrupter(Some(interrupter.clone()));
    /// let stop = interrupter.clone();
    /// std::thread::spawn(move || {
    ///     std::thread::sleep(std::time::Duration::from_secs(60));
    ///     stop.interrupt();
    /// });
    /// // Ends 2 s after the interrupt if the server sends nothing by then.
    /// let rows = conn.query("SELECT count(*) FROM pg_catalog.pg_class")?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_interrupter(&mut self, interrupter: Option<Interrupter>) {
        self.interrupter = interrupter;
    }

    /// Its interrupter ([`Connection::set_interrupter`]), if it has one.
    pub fn interrupter(&self) -> Option<&Interrupter> {
        self.interrupter.as_ref()
    }

    /// Takes its interrupter off ([`Connection::set_interrupter`]), to put it back once a
    /// statement whose answer must be waited for whatever comes (a `COMMIT`) is answered.
    pub fn take_interrupter(&mut self) -> Option<Interrupter> {
        self.interrupter.take()
    }

    /// Waits until the socket is ready for `events` ([`READABLE`], [`WRITABLE`]), within
    /// [`Connection::limit`].
    pub(crate) fn wait(&mut self, events: i16) -> io::Result<()> {
        let waited = wait_for(self.stream.poll_fd(), events, self.limit());
        self.given_up_if_cut(waited)
    }

    /// A wait's result: where the interrupt's grace cut it, the connection is closed and its
    /// backend sent a cancel, as a stalled copy's ([`GIVEN_UP_AFTER_INTERRUPT`]): whatever came
    /// next (a CopyFail, a ROLLBACK) would wait on the same silent socket as long again.
    fn given_up_if_cut<T>(&mut self, waited: io::Result<T>) -> io::Result<T> {
        if let Err(e) = &waited
            && e.get_ref().is_some_and(|p| p.is::<GraceExpired>())
        {
            self.cancel_detached();
            self.close(GIVEN_UP_AFTER_INTERRUPT);
        }
        waited
    }

    /// Whether the connection is encrypted with TLS.
    pub fn is_tls(&self) -> bool {
        self.stream.is_tls()
    }

    /// Whether the session is idle, ready for a statement with nothing left to read first. It
    /// is not while an answer or an abandoned COPY is still owed (a dropped call, a copy given
    /// up): the next call reads or drains that first, then runs — so `false` does not mean the
    /// connection is unusable ([`is_closed`](Self::is_closed) says that).
    pub fn is_ready(&self) -> bool {
        self.endpoint.session().state() == State::Ready
    }

    /// Sets a read and write timeout: a server that does not answer, or a destination that stops
    /// taking data, then fails with an IO error of kind `TimedOut` once no byte moved for that
    /// long, instead of waiting for ever (`socket.timeout` in py-postgresql's copyman, which a
    /// copy may reconcile).
    ///
    /// A statement whose call timed out is not cancelled: it runs on on its server (holding its
    /// locks), the connection's next call waits for its end first, and a transaction it opened
    /// (`BEGIN; …`) is the next call's; the session's
    /// [`transaction_status`](copyman_core::session::Session::transaction_status) is the one
    /// before it until then. [`Connection::cancel`] stops it.
    ///
    /// # Errors
    /// A zero timeout (every wait would fail at once), as a socket refuses it (`InvalidInput`).
    pub fn set_timeout(&mut self, timeout: Option<Duration>) -> Result<(), Error> {
        if timeout == Some(Duration::ZERO) {
            let zero = "cannot set a 0 duration timeout";
            return Err(io::Error::new(io::ErrorKind::InvalidInput, zero).into());
        }
        self.timeout = timeout;
        Ok(())
    }

    /// Arms a copy's stall timeout (`Some`) in place of the caller's timeout, or puts the
    /// caller's back (`None`): a copy never leaves its own limit behind, nor takes away the
    /// caller's (e.g. around the COMMIT or ROLLBACK that follows).
    pub(crate) fn set_copy_timeout(&mut self, stall: Option<Duration>) {
        match stall {
            Some(limit) => {
                self.caller_timeout.get_or_insert(self.timeout);
                self.timeout = Some(limit);
            }
            None => {
                if let Some(timeout) = self.caller_timeout.take() {
                    self.timeout = timeout;
                }
            }
        }
    }

    /// Runs `f` with no timeout on the connection's waits, nor its interrupter unless
    /// `interruptible` (a COPY's completion: in autocommit only the server's answer says whether
    /// it committed, [`Endpoint::completion_commits`]), then puts them back.
    pub(crate) fn untimed<T>(&mut self, interruptible: bool, f: impl FnOnce(&mut Self) -> T) -> T {
        let timeout = self.timeout.take();
        let interrupter = if interruptible {
            None
        } else {
            self.interrupter.take()
        };
        let done = f(self);
        self.timeout = timeout;
        if !interruptible {
            self.interrupter = interrupter;
        }
        done
    }

    copyman_core::connection_glue!();

    /// Before a new operation (`connection_glue!` calls it): nothing to wait for (cancels are
    /// sent before they return), but a connection copyman closed says why.
    fn settle(&mut self) -> Result<(), Error> {
        match self.closed.or_else(|| self.closed_by.get().copied()) {
            Some(reason) => Err(Error::Closed { reason }),
            None => Ok(()),
        }
    }

    /// What ends it from another thread, whatever it waits for then ([`Closer`]): its wait
    /// fails with [`Error::Closed`] saying the closer's reason.
    ///
    /// # Errors
    /// The socket could not be shared (out of file descriptors).
    ///
    /// ```no_run
    /// use copyman_sync::Connection;
    ///
    /// let conn = Connection::connect_str("host=10.0.0.2 user=postgres dbname=app")?;
    /// let closer = conn.closer()?;
    /// std::thread::spawn(move || {
    ///     std::thread::sleep(std::time::Duration::from_secs(600));
    ///     closer.close("the watchdog gave it up");
    /// });
    /// # Ok::<(), copyman_sync::Error>(())
    /// ```
    pub fn closer(&self) -> Result<Closer, Error> {
        let socket = match &self.stream {
            Stream::Tcp(s) | Stream::Tls(s, _) => socket2::SockRef::from(s).try_clone()?,
            Stream::Unix(s) => socket2::SockRef::from(s).try_clone()?,
        };
        Ok(Closer::new(Arc::clone(&self.closed_by), move || {
            let _ = socket.shutdown(std::net::Shutdown::Both);
        }))
    }

    /// Where a [`Closer`] closed it: said as that close (the socket's end of file, an error of
    /// its shutdown, would say the server ended it).
    fn closed_by_closer(&mut self) -> Result<(), Error> {
        match self.closed_by.get().copied() {
            Some(reason) => {
                self.closed.get_or_insert(reason);
                Err(Error::Closed { reason })
            }
            None => Ok(()),
        }
    }

    /// Sends a CancelRequest for whatever the connection runs now, on a new connection to the
    /// same server, each step bounded by `connect_timeout` (at most 10 s).
    ///
    /// # Errors
    /// The server could not be reached or did not take the request in time, or the session has
    /// no backend key.
    pub fn cancel(&self) -> Result<(), Error> {
        self.cancel_token()?.cancel()
    }

    /// The address of the server this connection is on (`None` over a Unix socket): one of
    /// its host name's addresses, the one that answered.
    pub fn peer_addr(&self) -> Option<std::net::SocketAddr> {
        match &self.target {
            Target::Tcp { addr, .. } => Some(*addr),
            Target::Unix(_) => None,
        }
    }

    /// Cancels a COPY OUT given up midway, waiting until the server took the request (the
    /// connection's next call reads the rest of the COPY): `false` if that failed.
    pub(crate) fn cancel_abandoned(&mut self) -> bool {
        self.cancel().is_ok()
    }

    /// Sends the cancel request from a thread of its own, without waiting for it: for a
    /// connection given up (closed) whose backend may still wait on a lock, holding its own,
    /// where the path to its server may be frozen (the request then waits its connect timeout
    /// there, not here).
    pub(crate) fn cancel_detached(&self) {
        let Ok(token) = self.cancel_token() else {
            return;
        };
        let _ = std::thread::Builder::new()
            .name("copyman-cancel".to_owned())
            .spawn(move || token.cancel());
    }

    /// The socket to `poll(2)`, for a driver that multiplexes it (TCP, TLS over TCP, Unix), with
    /// the timeout [`Connection::set_timeout`] set on it.
    pub(crate) fn poll_socket(&self) -> Option<PollSocket> {
        Some(PollSocket {
            fd: self.stream.poll_fd(),
            timeout: self.timeout,
        })
    }

    /// Writes what the session has to send, and under TLS the records rustls holds of it (the
    /// server's answer is waited for next). While the socket takes nothing, what the server
    /// sends is read into the session ([`Connection::wait_writable`]).
    pub(crate) fn flush(&mut self) -> Result<(), Error> {
        let sent = self.write_out();
        if sent.is_err() {
            self.half_written = true;
        }
        sent
    }

    fn write_out(&mut self) -> Result<(), Error> {
        let (fd, limit) = (self.stream.poll_fd(), self.limit());
        while let Some(bytes) = self.endpoint.poll_transmit() {
            let mut rest: &[u8] = &bytes;
            while !rest.is_empty() {
                match self.stream.write(rest) {
                    Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero).into()),
                    Ok(n) => rest = &rest[n..],
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        self.wait_writable(fd, limit)?;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        // `Stream::flush` says `WouldBlock` while rustls holds records.
        loop {
            match self.stream.flush() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.wait_writable(fd, limit)?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                done => return Ok(done?),
            }
        }
    }

    /// Waits within `limit` until the socket takes bytes again, reading into the session what
    /// the server sends meanwhile: a server blocked writing to us (a destination trigger's
    /// notice per row) reads nothing more until we read, so a write that only waited to write
    /// would wait for ever, and the server too (libpq's `pqSendSome` reads for the same
    /// reason). What is read waits in the session for the caller.
    fn wait_writable(&mut self, fd: RawFd, limit: Limit) -> Result<(), Error> {
        // (Once the server's end is read, only the write is waited for.)
        if self.endpoint.session().state() == State::Closed {
            let waited = wait_for(fd, WRITABLE, limit);
            return Ok(self.given_up_if_cut(waited)?);
        }
        let waited = wait_for(fd, READABLE | WRITABLE, limit);
        self.given_up_if_cut(waited)?;
        self.poll_server()
    }

    /// Writes `bytes` whole without blocking, if nothing is half written before them: whether
    /// they all went out (an abandoned COPY's realignment and CopyFail; if not, close).
    pub(crate) fn try_write_all(&mut self, mut bytes: &[u8]) -> bool {
        if self.half_written {
            return false;
        }
        while !bytes.is_empty() {
            match self.stream.write(bytes) {
                Ok(0) => return false,
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.half_written = true;
                    return false;
                }
            }
        }
        // Under TLS, taken is not yet sent.
        matches!(self.stream.try_flush(), Ok(true))
    }

    /// Whether no message is half written to the socket.
    pub(crate) fn is_flushed(&self) -> bool {
        !self.half_written
    }

    /// Closes the socket: the server aborts whatever runs, a COPY and the transaction around it
    /// included, and every later call fails with the connection closed.
    pub(crate) fn close(&mut self, reason: &'static str) {
        let _ = self.stream.shutdown();
        self.endpoint.handle_eof();
        self.closed.get_or_insert(reason);
    }

    /// Reads once from the socket into the session, waiting until it has something.
    pub(crate) fn read_into_session(&mut self) -> Result<(), Error> {
        let (fd, limit) = (self.stream.poll_fd(), self.limit());
        let read = retry(fd, READABLE, limit, || self.stream.read(&mut self.scratch));
        let read = self.given_up_if_cut(read);
        self.closed_by_closer()?;
        handle_read(&mut self.endpoint, read, &self.scratch)
    }

    /// Reads into the session without waiting, until the socket has nothing more.
    /// Reads into the session what the socket has at hand, without waiting for more.
    pub(crate) fn poll_server(&mut self) -> Result<(), Error> {
        self.closed_by_closer()?;
        loop {
            match self.stream.read(&mut self.scratch) {
                Ok(0) => {
                    self.endpoint.handle_eof();
                    return Ok(());
                }
                Ok(n) => self.endpoint.handle_input(&self.scratch[..n])?,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // Say goodbye when possible, so the server logs no "unexpected EOF"; errors are moot.
        if !matches!(self.endpoint.session().state(), State::Closed) {
            self.endpoint.session_mut().terminate();
            let _ = self.flush();
        }
    }
}

/// With `tls` on TCP, sends the SSLRequest and, if the server agrees, does the TLS handshake,
/// all before `deadline`: the stream to go on with (TLS, or the same plain socket when the server
/// has no TLS and the mode allows that, or without `tls`). The server certificate's
/// channel-binding hash goes to `session`.
fn negotiate_tls(
    mut stream: Stream,
    target: &Target,
    tls: Option<(&Arc<ClientConfig>, SslMode)>,
    deadline: Started,
    session: &mut Session,
) -> Result<Stream, Error> {
    let (Some((config, mode)), Target::Tcp { name: host, .. }) = (tls, target) else {
        return Ok(stream);
    };
    let (fd, limit) = (stream.poll_fd(), Limit::Attempt(deadline));
    write_all(&mut stream, &copyman_tls::SSL_REQUEST, fd, limit)?;
    // Exactly one byte: anything after it that came before the handshake would be unencrypted
    // data an attacker injected (CVE-2021-23222).
    let mut answer = [0u8; 1];
    retry(fd, READABLE, limit, || stream.read_exact(&mut answer)).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => copyman_tls::closed_before_answer(),
        _ => e,
    })?;
    if !copyman_tls::negotiate(answer[0], &target.to_string(), mode)? {
        return Ok(stream);
    }
    let Stream::Tcp(mut tcp) = stream else {
        // Never on to plain text after the server agreed to TLS: fail closed.
        return Err(Error::State(
            "TLS was negotiated on a socket that is not TCP",
        ));
    };
    let mut tls = TlsClient::new(config, host)?;
    while !tls
        .handshake(&mut tcp)
        .map_err(|e| TlsError::handshake(target.to_string(), &e))?
    {
        // The step is taken again when the socket is ready for what rustls waits for.
        let events = if tls.wants_flush() {
            WRITABLE
        } else {
            READABLE
        };
        wait_for(fd, events, limit)?;
    }
    if let Some(hash) = tls.server_end_point() {
        session.set_tls_server_end_point(hash);
    }
    Ok(Stream::Tls(tcp, Box::new(tls)))
}

/// What bounds a wait for the socket.
#[derive(Debug, Clone, Copy)]
enum Limit {
    /// A connection attempt's deadline: the wait ends with [`TimeoutExpired`] once it passed.
    Attempt(Started),
    /// [`Connection::set_timeout`]'s: a wait that sees nothing for this long ends with an error
    /// of kind `TimedOut` (`None`: it waits for ever).
    Idle(Option<Duration>),
    /// `Idle`, and woken by an interrupter (`woken`): from then on the wait is `Grace`.
    Interruptible {
        timeout: Option<Duration>,
        woken: Watch,
    },
    /// Interrupted, with this own timeout: a wait that sees nothing for core's
    /// [`interrupted_limit`] ends with core's [`GraceExpired`] (kind `TimedOut`), or the
    /// timeout's error where that was the shorter.
    Grace(Option<Duration>),
}

/// Waits until `fd` is ready for `events` ([`READABLE`], [`WRITABLE`]), within `limit`.
///
/// # Errors
/// `poll(2)`'s; [`TimeoutExpired`] (as an IO error) once an attempt's deadline passed; kind
/// `TimedOut` once an idle limit passed (core's stall rule takes it for a socket timeout).
fn wait_for(fd: RawFd, events: i16, limit: Limit) -> io::Result<()> {
    let until = |left: Option<Duration>| left.and_then(|left| Instant::now().checked_add(left));
    match limit {
        Limit::Attempt(deadline) => loop {
            // What is left runs out: `remaining` then says the deadline passed.
            if poll::wait_one(fd, events, until(deadline.remaining(Instant::now())?))? {
                return Ok(());
            }
        },
        Limit::Idle(timeout) => match (poll::wait_one(fd, events, until(timeout))?, timeout) {
            (false, Some(t)) => Err(timed_out(events, t)),
            _ => Ok(()),
        },
        Limit::Grace(timeout) => {
            match poll::wait_one(fd, events, until(Some(interrupted_limit(timeout))))? {
                true => Ok(()),
                false => Err(GraceExpired::error(timeout, |t| timed_out(events, t))),
            }
        }
        Limit::Interruptible { timeout, woken } => {
            let deadline = until(timeout);
            let mut watches = [Watch::new(fd, events), woken];
            loop {
                let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
                poll::wait(&mut watches, left)?;
                match watches {
                    [socket, _] if socket.ready() => return Ok(()),
                    [_, woken] if woken.ready() => {
                        return wait_for(fd, events, Limit::Grace(timeout));
                    }
                    _ => {}
                }
                if let Some(t) = timeout.filter(|_| deadline.is_some_and(|d| Instant::now() >= d)) {
                    return Err(timed_out(events, t));
                }
            }
        }
    }
}

/// A wait for `events` that saw nothing for `t`, as an IO error of kind `TimedOut`.
fn timed_out(events: i16, t: Duration) -> io::Error {
    let what = if events == READABLE { "sent" } else { "took" };
    let message = format!("the server {what} nothing for {t:?}");
    io::Error::new(io::ErrorKind::TimedOut, message)
}

/// Runs `op` until it does not say `WouldBlock` (or `Interrupted`), waiting within `limit`
/// until `fd` is ready for `events` before each new try.
fn retry<T>(
    fd: RawFd,
    events: i16,
    limit: Limit,
    mut op: impl FnMut() -> io::Result<T>,
) -> io::Result<T> {
    loop {
        match op() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => wait_for(fd, events, limit)?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            done => return done,
        }
    }
}

/// Writes `bytes` whole to `stream`, waiting within `limit` whenever its socket `fd` takes
/// nothing now. Under TLS what rustls took counts as written: its records go out with
/// `Stream::flush`.
fn write_all(stream: &mut Stream, mut bytes: &[u8], fd: RawFd, limit: Limit) -> io::Result<()> {
    while !bytes.is_empty() {
        match retry(fd, WRITABLE, limit, || stream.write(bytes))? {
            0 => return Err(io::ErrorKind::WriteZero.into()),
            n => bytes = &bytes[n..],
        }
    }
    Ok(())
}

/// Cancels what a [`Connection`]'s backend runs, from any thread, while the connection is busy:
/// see [`Connection::cancel_token`].
#[derive(Clone, Debug)]
pub struct CancelToken {
    key: CancelKey,
}

impl CancelToken {
    /// Sends the CancelRequest, each step bounded by the connection's `connect_timeout` (at most
    /// [`copyman_core::connect::CANCEL_TIMEOUT`]) or [`CancelToken::within`]'s limit.
    ///
    /// # Errors
    /// The server could not be reached or did not take the request in time.
    pub fn cancel(&self) -> Result<(), Error> {
        send_cancel(&self.key)
    }

    /// This token with each step of its cancel bounded by `timeout` instead.
    pub fn within(mut self, timeout: Duration) -> Self {
        self.key.timeout = timeout;
        self
    }
}

/// Sends a CancelRequest to `target` on a connection of its own, then waits (within `timeout`
/// for each step) for the server to close it, as libpq does.
fn send_cancel(key: &CancelKey) -> Result<(), Error> {
    let mut stream = open(&key.target, Some(key.timeout), None)?.into_nonblocking()?;
    let (fd, limit) = (stream.poll_fd(), Limit::Idle(Some(key.timeout)));
    write_all(&mut stream, &key.request, fd, limit)?;
    // The server closes the connection once it has the request.
    let mut sink = [0u8; 64];
    while retry(fd, READABLE, limit, || stream.read(&mut sink))? > 0 {}
    Ok(())
}

/// An attempt's error, as libpq says it once its deadline has passed: "timeout expired" for
/// that host (an error the server sent stays as it is).
fn expired(error: Error, target: &Target, deadline: Started) -> Error {
    let timed_out = match &error {
        Error::Io(e) | Error::Connect { source: e, .. } => {
            TimeoutExpired::is(e) || copyman_core::stall::is_timeout(e)
        }
        Error::Tls(_) => true,
        _ => false,
    };
    // A connect timed with what was left (`TcpStream::connect_timeout`) may end a little early.
    const TICK: Duration = Duration::from_millis(20);
    if timed_out && deadline.expired(Instant::now() + TICK) {
        return Error::timeout_expired(target);
    }
    error
}
