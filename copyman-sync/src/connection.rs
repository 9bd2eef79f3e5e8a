//! A raw PostgreSQL connection on a blocking socket, spoken by copyman-core's [`Session`].

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use copyman_core::connect::{Deadline, Step, Target, TimeoutExpired};
use copyman_core::endpoint::{self, Endpoint, Outcome, Row};
use copyman_core::session::{
    DbError, Event, Notification, Session, SessionError, StartupConfig, State,
};
use copyman_core::start::Started;
use copyman_core::statement::Direction;
use copyman_tls::rustls::{ClientConfig, ClientConnection, StreamOwned};
use copyman_tls::{SslMode, TlsError, TlsSettings};

use crate::PollSocket;
use crate::error::{Error, failure, plan, startup_config, tls_settings};

/// Bytes read from the socket at a time outside the COPY data path.
const MESSAGE_READ: usize = 16 * 1024;

/// A TLS session over TCP (rustls, blocking).
pub(crate) type TlsStream = StreamOwned<ClientConnection, TcpStream>;

/// A connected socket: TCP, TLS over TCP, or Unix.
pub(crate) enum Stream {
    Tcp(TcpStream),
    Tls(Box<TlsStream>),
    Unix(UnixStream),
}

impl fmt::Debug for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp(s) => f.debug_tuple("Tcp").field(s).finish(),
            // Never the TLS state: it holds the session's keys.
            Self::Tls(s) => f.debug_tuple("Tls").field(&s.sock).finish(),
            Self::Unix(s) => f.debug_tuple("Unix").field(s).finish(),
        }
    }
}

impl Stream {
    pub(crate) fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        match self {
            Self::Tcp(s) => s.set_nonblocking(on),
            Self::Tls(s) => s.sock.set_nonblocking(on),
            Self::Unix(s) => s.set_nonblocking(on),
        }
    }

    /// The socket to `poll(2)` when the stream is used without blocking. Under TLS it is the
    /// TCP socket under rustls: reads go on until the socket would block (so no decrypted byte
    /// waits in rustls unseen by `poll`), and records rustls still holds after a write go out
    /// through [`Stream::try_flush`].
    pub(crate) fn poll_fd(&self) -> Option<RawFd> {
        Some(match self {
            Self::Tcp(s) => s.as_raw_fd(),
            Self::Tls(s) => s.sock.as_raw_fd(),
            Self::Unix(s) => s.as_raw_fd(),
        })
    }

    /// Writes, without blocking, the TLS records rustls holds: `true` once none is left, `false`
    /// when the socket takes no more now. Plain sockets hold nothing.
    pub(crate) fn try_flush(&mut self) -> io::Result<bool> {
        match self {
            Self::Tls(s) => flush_records(s),
            _ => Ok(true),
        }
    }

    fn set_timeouts(&self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            Self::Tcp(s) => {
                s.set_read_timeout(timeout)?;
                s.set_write_timeout(timeout)
            }
            Self::Tls(s) => {
                s.sock.set_read_timeout(timeout)?;
                s.sock.set_write_timeout(timeout)
            }
            Self::Unix(s) => {
                s.set_read_timeout(timeout)?;
                s.set_write_timeout(timeout)
            }
        }
    }

    /// Shuts the socket down both ways.
    fn shutdown(&self) -> io::Result<()> {
        match self {
            Self::Tcp(s) => s.shutdown(std::net::Shutdown::Both),
            Self::Tls(s) => s.sock.shutdown(std::net::Shutdown::Both),
            Self::Unix(s) => s.shutdown(std::net::Shutdown::Both),
        }
    }

    /// Whether the connection is encrypted.
    fn is_tls(&self) -> bool {
        matches!(self, Self::Tls(_))
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Tcp(s) => s.read(buf),
            // rustls' own `Stream::read` first writes the records it holds, and would report a
            // full socket (non-blocking) as "nothing to read" while the server's words wait:
            // read the socket for records whenever no decrypted byte is waiting.
            Self::Tls(s) => {
                let mut at_end = false;
                loop {
                    match s.conn.reader().read(buf) {
                        Ok(n) => return Ok(n),
                        // Nothing decrypted is waiting, and the socket is at its end.
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock && at_end => return Ok(0),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        // A server that exits closes the socket without a TLS close_notify; for
                        // the protocol above, whose messages carry their own lengths, that is a
                        // plain end.
                        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                        Err(e) => return Err(e),
                    }
                    // Answers rustls owes the server (alerts, key updates) go out if they can.
                    let _ = flush_records(s);
                    at_end = s.conn.read_tls(&mut s.sock)? == 0;
                    s.conn
                        .process_new_packets()
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                }
            }
            Self::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Tcp(s) => s.write(buf),
            Self::Tls(s) => {
                // rustls takes the bytes into its buffer (after sending what an earlier call
                // left there: an error then means nothing of `buf` was taken). They should reach
                // the socket now, as a plain write's would; if that fails (a write timeout), they
                // were taken all the same and go out first on the next call, which reports the
                // error. Reporting it here would have the caller write them twice.
                let n = s.write(buf)?;
                let _ = s.flush();
                Ok(n)
            }
            Self::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Tls(s) => s.flush(),
            _ => Ok(()),
        }
    }
}

/// Writes the TLS records rustls holds until none is left (`true`) or the socket would block
/// (`false`).
fn flush_records(s: &mut TlsStream) -> io::Result<bool> {
    while s.conn.wants_write() {
        match s.conn.write_tls(&mut s.sock) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Opens a socket to `target`, within `timeout` for TCP.
fn open(target: &Target, timeout: Option<Duration>) -> io::Result<Stream> {
    match target {
        Target::Tcp { addr, .. } => {
            let stream = match timeout {
                Some(t) => TcpStream::connect_timeout(addr, t)?,
                None => TcpStream::connect(addr)?,
            };
            // COPY data goes out in large writes; small protocol messages must not wait.
            stream.set_nodelay(true)?;
            Ok(Stream::Tcp(stream))
        }
        Target::Unix(path) => Ok(Stream::Unix(UnixStream::connect(path)?)),
    }
}

/// A PostgreSQL connection that copyman owns: the fast path's raw COPY session.
///
/// Parameters come as a [`postgres::Config`], or a URL or `key=value` string parsed exactly as the
/// `postgres` crate parses it. Every connection sets the portability settings (`client_encoding`
/// UTF8, `DateStyle` ISO, `IntervalStyle` postgres, `extra_float_digits` 3) so that text COPY data
/// means the same on every server. Plain SQL runs with [`Connection::execute`] and
/// [`Connection::query`] before and after a copy, e.g. to copy inside a transaction.
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
    /// While connecting: the attempt's deadline, which every read and write is armed with.
    deadline: Option<Clocked>,
    /// The timeout [`Connection::set_timeout`] set: a multiplexing driver applies it itself,
    /// since a non-blocking socket's own timeouts never fire.
    timeout: Option<Duration>,
    scratch: Vec<u8>,
    /// The socket is in non-blocking mode (O_NONBLOCK): switched on once when a copy's driver
    /// first multiplexes it, off again before anything that blocks. Kept here so that a copy
    /// costs two `fcntl`s per socket, not two per write.
    nonblocking: bool,
    /// A write of the session's output failed midway: part of a message may be on the wire.
    half_written: bool,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("target", &self.target.to_string())
            .field("session", self.endpoint.session())
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Connects with parameters in a URL (`postgresql://user@host:port/db`) or `key=value` form.
    ///
    /// The TLS parameters `sslmode` (all of libpq's modes), `sslrootcert`, `sslcert` and
    /// `sslkey` are read here; everything else as the `postgres` crate reads it.
    ///
    /// # Errors
    /// A malformed string, an unreachable server, a failed TLS handshake or authentication.
    pub fn connect_str(params: &str) -> Result<Self, Error> {
        let (rest, tls) = TlsSettings::take_from(params)?;
        let config: postgres::Config = rest.parse().map_err(Error::Config)?;
        Self::connect_tls(&config, &tls)
    }

    /// Connects with a `postgres` crate configuration: the first host that accepts wins (at its
    /// `hostaddr`, if given, with the host name kept for TLS verification, as in libpq). Its
    /// `ssl_mode` (`disable`, `prefer`, `require`) applies with the default certificate files;
    /// [`Connection::connect_tls`] takes every TLS setting.
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
    /// (which replaces the default UTF8) or `TimeZone`.
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
        let mut startup_config = startup_config(config)?;
        startup_config.extra.extend_from_slice(startup);
        let startup = startup_config;
        let timeout = config.get_connect_timeout().copied();
        let client_config = tls.client_config()?;

        // Core's plan says what to try in which order; this loop only does it.
        let mut plan = plan(config, tls, client_config.is_some())?;
        let mut last: Option<Error> = None;
        let mut deadline = Clocked::start(Deadline::new(timeout));
        loop {
            match plan.step() {
                Step::Resolve { name, port } => match (name.as_str(), port).to_socket_addrs() {
                    Ok(addrs) => plan.resolved(addrs),
                    Err(source) => {
                        plan.resolved([]);
                        last = Some(Error::Resolve { host: name, source });
                    }
                },
                Step::Attempt {
                    target,
                    tls: with_tls,
                    fresh,
                } => {
                    if fresh {
                        // One deadline for everything tried on this address (libpq's).
                        deadline = Clocked::start(Deadline::new(timeout));
                    }
                    let tls_config = client_config.as_ref().filter(|_| with_tls);
                    let attempt = Self::attempt(&target, &startup, deadline, tls_config, tls.mode);
                    match attempt.map_err(|e| expired(e, &target, deadline)) {
                        Ok(mut conn) => {
                            conn.connect_timeout = timeout;
                            return Ok(conn);
                        }
                        Err(e) => {
                            plan.failed(failure(&e));
                            last = Some(e);
                        }
                    }
                }
                _ => return Err(last.unwrap_or(Error::Parameters("no host to connect to".into()))),
            }
        }
    }

    /// One connection attempt: the socket, TLS if `tls_config`, startup and authentication, all
    /// before `deadline`.
    fn attempt(
        target: &Target,
        startup: &StartupConfig,
        deadline: Clocked,
        tls_config: Option<&Arc<ClientConfig>>,
        mode: SslMode,
    ) -> Result<Self, Error> {
        let open_within = deadline.remaining();
        let mut stream = open_within
            .and_then(|within| open(target, within))
            .map_err(|source| Error::Connect {
                target: target.to_string(),
                source,
            })?;
        let mut session = Session::new(startup.clone());
        if let (Some(tls_config), Target::Tcp { name: host, .. }) = (tls_config, target) {
            stream = match negotiate_tls(stream, target, host, tls_config, mode, deadline)? {
                (stream, Some(hash)) => {
                    session.set_tls_server_end_point(hash);
                    stream
                }
                (stream, None) => stream,
            };
        }
        let mut conn = Self {
            stream,
            endpoint: Endpoint::new(session),
            target: target.clone(),
            connect_timeout: None,
            deadline: Some(deadline),
            timeout: None,
            scratch: vec![0; MESSAGE_READ],
            nonblocking: false,
            half_written: false,
        };
        conn.endpoint.wait_ready();
        conn.drive()?;
        // The deadline guards the connection attempt only; the copy sets its own timeouts.
        conn.deadline = None;
        conn.stream.set_timeouts(None)?;
        Ok(conn)
    }

    /// Arms the socket with what is left of the connection attempt's deadline, if connecting.
    fn arm(&mut self) -> Result<(), Error> {
        if let Some(deadline) = self.deadline {
            arm(&self.stream, deadline)?;
        }
        Ok(())
    }

    /// Whether the connection is encrypted with TLS.
    pub fn is_tls(&self) -> bool {
        self.stream.is_tls()
    }

    /// The session underneath: server parameters, transaction status, backend key.
    pub fn session(&self) -> &Session {
        self.endpoint.session()
    }

    /// Whether the connection can run a statement now.
    pub fn is_ready(&self) -> bool {
        self.endpoint.session().state() == State::Ready
    }

    /// Sets a read and write timeout on the socket: a server that does not answer, or a
    /// destination that stops taking data, then fails with an IO error of kind `TimedOut` or
    /// `WouldBlock` instead of blocking for ever (`socket.timeout` in py-postgresql's copyman,
    /// which a copy may reconcile).
    ///
    /// # Errors
    /// The socket's.
    pub fn set_timeout(&mut self, timeout: Option<Duration>) -> Result<(), Error> {
        self.stream.set_timeouts(timeout)?;
        self.timeout = timeout;
        Ok(())
    }

    /// Runs SQL (one or more statements, simple query protocol) and returns the row count of the
    /// last statement that has one (0 otherwise).
    ///
    /// # Errors
    /// The server's error, with its SQLSTATE; the connection is usable again afterwards.
    pub fn execute(&mut self, sql: &str) -> Result<u64, Error> {
        Ok(self.run_query(sql, false)?.1.unwrap_or(0))
    }

    /// Runs SQL and returns the rows it produced, as text (`None` for NULL).
    ///
    /// # Errors
    /// The server's error, with its SQLSTATE; the connection is usable again afterwards.
    pub fn query(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>, Error> {
        Ok(self.run_query(sql, true)?.0)
    }

    /// Runs `sql`: its rows (if `rows`), and the count of its last command tag that has one.
    fn run_query(&mut self, sql: &str, rows: bool) -> Result<(Vec<Row>, Option<u64>), Error> {
        match rows {
            true => self.endpoint.query(sql)?,
            false => self.endpoint.execute(sql)?,
        }
        match self.drive()? {
            Outcome::Statement { rows, count } => Ok((rows, count)),
            _ => Ok((Vec::new(), None)),
        }
    }

    /// Reads, without blocking, what the server sent unasked, and says whether the session is
    /// still usable: a server that terminated the backend (its FATAL error waiting in the socket,
    /// e.g. 57P01 "terminating connection due to administrator command") ends the session, and
    /// this returns that error — the server's words, not the "broken pipe" a statement written
    /// to the closed socket would get.
    ///
    /// # Errors
    /// The server's error that ended the session, or the socket's.
    pub fn check(&mut self) -> Result<(), Error> {
        if self.endpoint.session().state() == State::Ready {
            self.poll_server()?;
        }
        let mut closed = None;
        while let Some(event) = self.endpoint.session_mut().poll_event() {
            if let Event::Closed(e) = event {
                closed = Some(e);
            }
        }
        match (closed, self.endpoint.session().state()) {
            (Some(e), _) => Err(e.into()),
            (None, State::Closed) => Err(SessionError::Closed.into()),
            _ => Ok(()),
        }
    }

    /// Sends a CancelRequest for whatever the connection runs now, on a new connection to the
    /// same server.
    ///
    /// # Errors
    /// The server could not be reached, or the session has no backend key.
    pub fn cancel(&self) -> Result<(), Error> {
        let request = self
            .endpoint
            .session()
            .cancel_request()
            .ok_or(Error::State(
                "the server gave no backend key: cannot cancel",
            ))?;
        let mut stream = open(
            &self.target,
            self.connect_timeout.or(Some(Duration::from_secs(10))),
        )?;
        stream.write_all(&request)?;
        // The server closes the connection once it has the request.
        let mut sink = [0u8; 64];
        while stream.read(&mut sink)? > 0 {}
        Ok(())
    }

    /// Sends a COPY statement and waits for its COPY to start (the statement is checked first:
    /// nothing is sent for a statement of the wrong kind).
    pub(crate) fn start_copy(&mut self, sql: &str, direction: Direction) -> Result<Started, Error> {
        self.endpoint.start_copy(sql, direction)?;
        match self.drive()? {
            Outcome::Started(started) => Ok(started),
            _ => Err(Error::State("the COPY did not start")),
        }
    }

    /// Carries out the endpoint's operation: writes what it sends, reads what it waits for,
    /// sends its cancels, until it is over.
    pub(crate) fn drive(&mut self) -> Result<Outcome, Error> {
        loop {
            // What the step asks for goes out first: the server may be waiting for it.
            let step = self.endpoint.poll();
            self.flush()?;
            match step {
                endpoint::Step::Read => self.read_into_session()?,
                endpoint::Step::SendCancel => self.cancel()?,
                endpoint::Step::Done(outcome) => return Ok(outcome?),
            }
        }
    }

    /// Puts the socket in non-blocking mode (`true`) or back in blocking mode, if it is not
    /// already: one `fcntl` per switch.
    pub(crate) fn set_nonblocking(&mut self, on: bool) -> Result<(), Error> {
        if self.nonblocking != on {
            self.stream.set_nonblocking(on)?;
            self.nonblocking = on;
        }
        Ok(())
    }

    /// The socket to `poll(2)`, for a driver that multiplexes it (TCP, TLS over TCP, Unix), with
    /// the timeout [`Connection::set_timeout`] set on it.
    pub(crate) fn poll_socket(&self) -> Option<PollSocket> {
        Some(PollSocket {
            fd: self.stream.poll_fd()?,
            timeout: self.timeout,
        })
    }

    /// Writes what the session has to send.
    pub(crate) fn flush(&mut self) -> Result<(), Error> {
        self.set_nonblocking(false)?;
        while let Some(bytes) = self.endpoint.poll_transmit() {
            self.arm()?;
            if let Err(e) = self.stream.write_all(&bytes) {
                self.half_written = true;
                return Err(e.into());
            }
        }
        Ok(())
    }

    /// Writes `bytes` whole without blocking, if nothing is half written before them: whether
    /// they all went out (an abandoned COPY's realignment and CopyFail; if not, close).
    pub(crate) fn try_write_all(&mut self, mut bytes: &[u8]) -> bool {
        if self.half_written || self.set_nonblocking(true).is_err() {
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
    pub(crate) fn close(&mut self) {
        let _ = self.stream.shutdown();
        self.endpoint.handle_eof();
    }

    /// Reads once from the socket into the session.
    pub(crate) fn read_into_session(&mut self) -> Result<(), Error> {
        self.set_nonblocking(false)?;
        self.arm()?;
        let n = match self.stream.read(&mut self.scratch) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => {
                self.endpoint.handle_eof();
                return Err(e.into());
            }
        };
        if n == 0 {
            self.endpoint.handle_eof();
            return Ok(());
        }
        self.endpoint.handle_input(&self.scratch[..n])?;
        Ok(())
    }

    /// Reads into the session without blocking, until the socket has nothing more. A socket in
    /// blocking mode is switched for the call (two `fcntl`s); one a driver keeps in non-blocking
    /// mode is read as it is.
    pub(crate) fn poll_server(&mut self) -> Result<(), Error> {
        let was_blocking = !self.nonblocking;
        self.set_nonblocking(true)?;
        let result = loop {
            match self.stream.read(&mut self.scratch) {
                Ok(0) => {
                    self.endpoint.handle_eof();
                    break Ok(());
                }
                Ok(n) => {
                    if let Err(e) = self.endpoint.handle_input(&self.scratch[..n]) {
                        break Err(e.into());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e.into()),
            }
        };
        if was_blocking {
            self.set_nonblocking(false)?;
        }
        result
    }

    /// Takes the notices (NOTICE, WARNING, INFO, …) the server sent on this connection since the
    /// last call, in order: during its statements and during any COPY it took part in, as a
    /// producer (in the middle of the COPY OUT stream) or a receiver. See
    /// [`Session::take_notices`].
    pub fn take_notices(&mut self) -> Vec<DbError> {
        self.endpoint.session_mut().take_notices()
    }

    /// Takes the notifications (`LISTEN` / `NOTIFY`) received on this connection since the last
    /// call, in order (py-postgresql's `iternotifies`).
    pub fn take_notifications(&mut self) -> Vec<Notification> {
        self.endpoint.session_mut().take_notifications()
    }

    /// The command tag of the last statement that completed on this connection, e.g. `COPY
    /// 10000` after a copy it took part in.
    pub fn command_tag(&self) -> Option<&str> {
        self.endpoint.session().command_tag()
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

/// Sends the SSLRequest and, if the server agrees, does the TLS handshake: the stream to go on
/// with (TLS, or the same plain socket when the server has no TLS and `mode` allows that) and
/// the server certificate's channel-binding hash.
fn negotiate_tls(
    mut stream: Stream,
    target: &Target,
    host: &str,
    config: &Arc<ClientConfig>,
    mode: SslMode,
    deadline: Clocked,
) -> Result<(Stream, Option<Vec<u8>>), Error> {
    arm(&stream, deadline)?;
    stream.write_all(&copyman_tls::SSL_REQUEST)?;
    arm(&stream, deadline)?;
    // Exactly one byte: anything after it that came before the handshake would be unencrypted
    // data an attacker injected (CVE-2021-23222).
    let mut answer = [0u8; 1];
    stream.read_exact(&mut answer)?;
    if !copyman_tls::negotiate(answer[0], &target.to_string(), mode)? {
        return Ok((stream, None));
    }
    let Stream::Tcp(mut tcp) = stream else {
        // Never on to plain text after the server agreed to TLS: fail closed.
        return Err(Error::State(
            "TLS was negotiated on a socket that is not TCP",
        ));
    };
    let name = copyman_tls::server_name(host)?;
    let mut tls = ClientConnection::new(Arc::clone(config), name)
        .map_err(|e| TlsError::Settings(format!("TLS: {e}")))?;
    while tls.is_handshaking() {
        let left = deadline.remaining()?;
        tcp.set_read_timeout(left)?;
        tcp.set_write_timeout(left)?;
        tls.complete_io(&mut tcp)
            .map_err(|e| TlsError::handshake(target.to_string(), &e))?;
    }
    let hash = tls
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(|cert| copyman_tls::server_end_point(cert));
    Ok((Stream::Tls(Box::new(StreamOwned::new(tls, tcp))), hash))
}

/// Core's connect deadline with the moment the attempt on a host began.
#[derive(Debug, Clone, Copy)]
struct Clocked {
    deadline: Deadline,
    started: Instant,
}

impl Clocked {
    fn start(deadline: Deadline) -> Self {
        Self {
            deadline,
            started: Instant::now(),
        }
    }

    fn remaining(&self) -> io::Result<Option<Duration>> {
        self.deadline.remaining(self.started.elapsed())
    }
}

/// Sets the socket's timeouts to what is left before `deadline`.
fn arm(stream: &Stream, deadline: Clocked) -> Result<(), Error> {
    let left = deadline.remaining()?;
    Ok(stream.set_timeouts(left)?)
}

/// An attempt's error, as libpq says it once its deadline has passed: "timeout expired" for
/// that host (an error the server sent stays as it is).
fn expired(error: Error, target: &Target, deadline: Clocked) -> Error {
    let timed_out = match &error {
        Error::Io(e) | Error::Connect { source: e, .. } => {
            TimeoutExpired::is(e) || copyman_core::stall::is_timeout(e)
        }
        Error::Tls(_) => true,
        _ => false,
    };
    // A socket timeout armed with what was left may fire up to a kernel tick (a few ms) early.
    const TICK: Duration = Duration::from_millis(20);
    if timed_out && deadline.deadline.expired(deadline.started.elapsed() + TICK) {
        return Error::Connect {
            target: target.to_string(),
            source: TimeoutExpired::io(),
        };
    }
    error
}
