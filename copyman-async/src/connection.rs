//! A raw PostgreSQL connection on a tokio socket, spoken by copyman-core's [`Session`].

use std::fmt;
use std::io;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use copyman_core::connect::{self, CancelKey, Learned, Next, Target};
use copyman_core::connection::{Closer, handle_read};
use copyman_core::endpoint::Endpoint;
use copyman_core::session::{Session, State};
use copyman_tls::rustls::ClientConfig;
use copyman_tls::{SslMode, TlsClient, TlsSettings};
use tokio::net::{TcpStream, UnixStream};

use crate::error::{Attempts, Error, TcpOptions, read_conninfo, tls_settings};
use crate::tls::{TlsSocket, when_ready};

/// Bytes read from the socket at a time outside the COPY data path.
const MESSAGE_READ: usize = 16 * 1024;

/// A connected socket: TCP, TLS over TCP, or Unix.
pub(crate) enum Stream {
    Tcp(TcpStream),
    Tls(Box<TlsSocket>),
    Unix(UnixStream),
}

impl fmt::Debug for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the TLS state: it holds the session's keys.
        f.write_str(match self {
            Self::Tcp(_) => "Tcp",
            Self::Tls(_) => "Tls",
            Self::Unix(_) => "Unix",
        })
    }
}

/// `$e` with `$s` bound to the stream's socket, whichever kind it is (TLS included: its socket
/// has the same non-blocking calls).
macro_rules! on_socket {
    ($stream:expr, $s:ident => $e:expr) => {
        match $stream {
            Stream::Tcp($s) => $e,
            Stream::Tls($s) => $e,
            Stream::Unix($s) => $e,
        }
    };
}

impl Stream {
    /// Reads some bytes, waiting for them. Cancel-safe.
    pub(crate) async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        when_ready(|| self.readable(), || self.try_read(buf)).await
    }

    /// Writes some of `buf`, waiting for the socket to take them. Under TLS the bytes may still
    /// be buffered: [`Stream::flush`] sends them. Cancel-safe.
    pub(crate) async fn write(&self, buf: &[u8]) -> io::Result<usize> {
        when_ready(|| self.writable(), || self.try_write(buf)).await
    }

    /// Writes all of `bytes` (under TLS, they may still be buffered after).
    async fn write_all(&self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            match self.write(bytes).await {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Sends what TLS still buffers (nothing to do on a plain socket). Cancel-safe.
    pub(crate) async fn flush(&self) -> io::Result<()> {
        match self {
            Self::Tls(s) => s.flush().await,
            _ => Ok(()),
        }
    }

    /// Like [`Stream::flush`], without waiting: `WouldBlock` while some is left.
    pub(crate) fn try_flush(&self) -> io::Result<()> {
        match self {
            Self::Tls(s) => s.try_flush(),
            _ => Ok(()),
        }
    }

    /// Bytes of TLS records written to the socket so far (none on a plain socket).
    pub(crate) fn tls_sent(&self) -> u64 {
        match self {
            Self::Tls(s) => s.sent(),
            _ => 0,
        }
    }

    /// Whether every byte written has gone out to the socket.
    pub(crate) fn is_flushed(&self) -> bool {
        match self {
            Self::Tls(s) => s.is_flushed(),
            _ => true,
        }
    }

    /// Waits until [`Stream::try_read`] may have something.
    pub(crate) async fn readable(&self) -> io::Result<()> {
        on_socket!(self, s => s.readable().await)
    }

    /// Waits until the socket takes more bytes.
    pub(crate) async fn writable(&self) -> io::Result<()> {
        on_socket!(self, s => s.writable().await)
    }

    /// Reads without waiting: `WouldBlock` when nothing is at hand, 0 at the end.
    pub(crate) fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        on_socket!(self, s => s.try_read(buf))
    }

    /// Writes without waiting: `WouldBlock` when the socket takes nothing now.
    pub(crate) fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        on_socket!(self, s => s.try_write(buf))
    }

    /// [`try_write`](Self::try_write) (or, `buf` empty, [`try_flush`](Self::try_flush)) tried on
    /// the socket whether or not tokio saw it writable ([`TRY_WRITE_EVERY`](copyman_core::stall::TRY_WRITE_EVERY)).
    pub(crate) fn try_write_unasked(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Tcp(s) => send(socket2::SockRef::from(s), buf),
            Self::Tls(s) => s.try_write_unasked(buf),
            Self::Unix(s) => send(socket2::SockRef::from(s), buf),
        }
    }
}

/// `send(2)` on `socket` without waiting (tokio's sockets are non-blocking), and without a
/// SIGPIPE if its peer is gone: an error says so (as std's and tokio's writes do).
pub(crate) fn send(socket: socket2::SockRef<'_>, buf: &[u8]) -> io::Result<usize> {
    socket.send_with_flags(buf, libc::MSG_NOSIGNAL)
}

/// Opens a socket to `target`, with the configuration's TCP options (keepalives) if given.
async fn open(target: &Target, tcp: Option<&TcpOptions>) -> io::Result<Stream> {
    match target {
        Target::Tcp { addr, .. } => {
            let stream = TcpStream::connect(addr).await?;
            // COPY data goes out in large writes; small protocol messages must not wait.
            stream.set_nodelay(true)?;
            if let Some(tcp) = tcp {
                tcp.set((&stream).into())?;
            }
            Ok(Stream::Tcp(stream))
        }
        Target::Unix(path) => Ok(Stream::Unix(match connect::abstract_name(path) {
            Some(name) => {
                UnixStream::connect_addr(&copyman_tls::abstract_address(name)?.into()).await?
            }
            None => UnixStream::connect(path).await?,
        })),
    }
}

/// Sends a CancelRequest on a new connection to `target` and waits for the server to close it.
pub(crate) async fn cancel_at(key: &CancelKey) -> io::Result<()> {
    let run = async {
        let stream = open(&key.target, None).await?;
        stream.write_all(&key.request).await?;
        // The server closes the connection once it has the request.
        let mut sink = [0u8; 64];
        while stream.read(&mut sink).await? > 0 {}
        Ok(())
    };
    tokio::time::timeout(key.timeout, run)
        .await
        .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
}

/// A PostgreSQL connection that copyman owns, on tokio: the fast path's raw COPY session.
///
/// Parameters come as a [`tokio_postgres::Config`], or a URL or `key=value` string parsed exactly
/// as `tokio-postgres` parses it (TCP hosts and Unix socket directories; TLS settings with
/// [`Connection::connect_tls`]).
/// `application_name` defaults to `copyman`; `connect_timeout` is libpq's: one deadline for
/// everything tried on one host (TCP, TLS, startup and authentication), then "timeout expired"
/// and the next host; TCP sockets have `TCP_NODELAY` set. Every connection
/// sets the portability settings (`client_encoding` UTF8, `DateStyle` ISO, `IntervalStyle`
/// postgres, `extra_float_digits` 3, `lc_monetary` C …:
/// [`copyman_core::session::PORTABILITY_SETTINGS`]) so that text COPY data means the same on
/// every server.
/// Plain SQL runs with [`Connection::execute`] and [`Connection::query`] before and after a copy,
/// e.g. to copy inside a transaction.
/// A `SET` of those on the session since it connected changes what its COPY writes or reads:
/// `client_encoding`, `DateStyle` and `IntervalStyle` (which the server reports) are compared at
/// a copy's start, and a copy whose ends would read text otherwise is refused; after a query
/// that sets `extra_float_digits`, `lc_monetary` or `array_nulls` (a `SET`, a `set_config`),
/// which the server does not report, each COPY asks for them in its own Query and a text copy
/// an end of which would write or read its values otherwise is refused. A function that sets
/// one in its body is not seen.
///
/// Every method is cancel-safe in the sense that matters: a future dropped midway never leaves
/// half a message on the wire (what is left is written first by the next call), and the answer
/// to a statement whose future was dropped is read and discarded by the next call. That statement
/// is not cancelled: it runs on on its server (holding its locks), the next call waits for its
/// end first, and a transaction it opened (`BEGIN; …`) is the next call's; the session's
/// [`transaction_status`](copyman_core::session::Session::transaction_status) is the one before
/// it until then. [`Connection::cancel`] stops it. A connection
/// whose COPY was abandoned by a dropped endpoint is closed instead (see
/// [`CopyManager`](crate::CopyManager)); every later call then fails with [`Error::Closed`].
///
/// ```no_run
/// use copyman_async::Connection;
///
/// # async fn f() -> Result<(), copyman_async::Error> {
/// let mut conn = Connection::connect_str("host=127.0.0.1 user=postgres dbname=postgres").await?;
/// conn.execute("BEGIN").await?;
/// conn.execute("CREATE TEMP TABLE loading_table (i int8)").await?;
/// # Ok(()) }
/// ```
pub struct Connection {
    /// `None` once copyman closed the socket to keep an abandoned COPY from committing.
    stream: Option<Stream>,
    pub(crate) endpoint: Endpoint,
    target: Target,
    connect_timeout: Option<Duration>,
    /// Bytes of the session's output not yet written (a write cut short by a dropped future).
    outgoing: Bytes,
    scratch: Vec<u8>,
    closed: Option<&'static str>,
    /// Why a [`Closer`] closed it from another task or thread, once one did.
    closed_by: Arc<OnceLock<&'static str>>,
    /// A cancel request sent in the background by an endpoint dropped mid-COPY: the next call
    /// waits for it before reading the rest of that COPY.
    pending_cancel: Option<tokio::task::JoinHandle<io::Result<()>>>,
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
    /// `sslkey` are read here; everything else as `tokio-postgres` reads it.
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
    /// ([`Error::Unsupported`]) rather than ignored.
    ///
    /// # Errors
    /// A malformed string, an unreachable server, a failed TLS handshake or authentication.
    pub async fn connect_str(params: &str) -> Result<Self, Error> {
        let (config, tls, startup) = read_conninfo(params)?;
        Self::connect_with(&config, &tls, &startup).await
    }

    /// Connects with a `tokio-postgres` configuration: the first host that accepts wins. Its
    /// `ssl_mode` (`disable`, `prefer`, `require`) applies with the default certificate files;
    /// [`Connection::connect_tls`] takes every TLS setting.
    ///
    /// # Errors
    /// An unreachable server or a timed out attempt ([`Error::Connect`]), a failed TLS
    /// negotiation ([`Error::Tls`]), a failed authentication or a server error at startup
    /// ([`Error::Session`], with the server's SQLSTATE), a missing user name.
    pub async fn connect(config: &tokio_postgres::Config) -> Result<Self, Error> {
        Self::connect_tls(config, &tls_settings(config)).await
    }

    /// Connects with a `tokio-postgres` configuration and TLS settings (which replace the
    /// configuration's `ssl_mode`). TLS is spoken over TCP only; Unix sockets ignore it, as in
    /// libpq. Under `prefer` and `allow` a refused attempt is retried the other way, as libpq does.
    /// SCRAM binds itself to the TLS channel (SCRAM-SHA-256-PLUS) as the configuration's
    /// `channel_binding` says.
    ///
    /// ```no_run
    /// use copyman_async::{Connection, SslMode, TlsSettings};
    ///
    /// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
    /// let config: tokio_postgres::Config = "host=db.example.com user=app dbname=shop".parse()?;
    /// let mut tls = TlsSettings::new(SslMode::VerifyFull);
    /// tls.root_cert = Some("/etc/ssl/certs/db-ca.pem".into());
    /// let conn = Connection::connect_tls(&config, &tls).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Connection::connect`]; unusable TLS settings ([`Error::Tls`]) before any connection.
    pub async fn connect_tls(
        config: &tokio_postgres::Config,
        tls: &TlsSettings,
    ) -> Result<Self, Error> {
        Self::connect_with(config, tls, &[]).await
    }

    /// Connects as [`Connection::connect_tls`] does, with more startup parameters: settings the
    /// `tokio-postgres` crate's configuration cannot carry, such as libpq's `client_encoding`
    /// (which replaces the default UTF8) or `TimeZone`. A `target_session_attrs` among them is
    /// no setting: it is the kind of session to find, any of libpq's (`primary`, `standby`,
    /// `prefer-standby` too), in place of the configuration's.
    ///
    /// ```no_run
    /// use copyman_async::{Connection, SslMode, TlsSettings};
    ///
    /// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
    /// let config: tokio_postgres::Config = "host=db1,db2 user=app dbname=shop".parse()?;
    /// let standby = [("target_session_attrs".to_owned(), "prefer-standby".to_owned())];
    /// let tls = TlsSettings::new(SslMode::Prefer);
    /// let conn = Connection::connect_with(&config, &tls, &standby).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Connection::connect_tls`].
    pub async fn connect_with(
        config: &tokio_postgres::Config,
        tls: &TlsSettings,
        startup: &[(String, String)],
    ) -> Result<Self, Error> {
        // Core's plan says what to try in which order; this loop only does it.
        let mut attempts = Attempts::new(config, tls, startup)?;
        loop {
            match attempts.connecting.next(Instant::now())? {
                Next::Resolve { name, port } => {
                    let lookup = tokio::net::lookup_host((name.as_str(), port)).await;
                    attempts.connecting.resolved(lookup);
                }
                Next::Attempt {
                    target,
                    tls,
                    deadline,
                } => {
                    let mut learned = Learned::default();
                    let result = match deadline.remaining(Instant::now()) {
                        Err(_) => Err(Error::timeout_expired(&target)),
                        Ok(left) => {
                            let attempt = Self::attempt(&target, &attempts, tls, &mut learned);
                            let within = left.unwrap_or(Duration::MAX);
                            tokio::time::timeout(within, attempt)
                                .await
                                .unwrap_or_else(|_| Err(Error::timeout_expired(&target)))
                        }
                    };
                    attempts.connecting.learned(learned);
                    let result = result.and_then(|c| attempts.of_the_kind(c, Self::session));
                    if let Some(mut conn) = attempts.connecting.attempted(result) {
                        attempts.note_tls_given_up(conn.endpoint.session_mut());
                        return Ok(conn);
                    }
                }
            }
        }
    }

    /// One connection attempt: the socket, TLS if `with_tls`, startup and authentication, and
    /// what it `learned` on the way.
    async fn attempt(
        target: &Target,
        attempts: &Attempts,
        with_tls: bool,
        learned: &mut Learned,
    ) -> Result<Self, Error> {
        let stream = open(target, Some(&attempts.tcp))
            .await
            .map_err(|source| Error::Connect {
                target: target.to_string(),
                source,
            })?;
        let mut session = Session::new(attempts.startup.clone());
        let tls = attempts.tls(with_tls).map(|config| (config, attempts.mode));
        let stream = negotiate_tls(stream, target, tls, &mut session).await?;
        learned.tls_declined = tls.is_some()
            && matches!(target, Target::Tcp { .. })
            && !matches!(stream, Stream::Tls(_));
        let mut conn = Self {
            stream: Some(stream),
            endpoint: Endpoint::new(session),
            target: target.clone(),
            connect_timeout: attempts.timeout,
            outgoing: Bytes::new(),
            scratch: vec![0; MESSAGE_READ],
            closed: None,
            closed_by: Arc::default(),
            pending_cancel: None,
        };
        conn.endpoint.wait_ready();
        let ready = conn.drive().await;
        learned.authenticated = conn.endpoint.session().authenticated();
        ready?;
        Ok(conn)
    }

    /// Whether the connection is encrypted with TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self.stream, Some(Stream::Tls(_)))
    }

    /// Whether the session is idle, ready for a statement with nothing left to read first. It
    /// is not while an answer or an abandoned COPY is still owed (a dropped call, a copy given
    /// up): the next call reads or drains that first, then runs — so `false` does not mean the
    /// connection is unusable ([`is_closed`](Self::is_closed) says that).
    pub fn is_ready(&self) -> bool {
        self.closed.is_none()
            && self.endpoint.session().state() == State::Ready
            && self.outgoing.is_empty()
    }

    copyman_core::connection_glue!(async await);

    /// Sends a CancelRequest for whatever the connection runs now, on a new connection to the
    /// same server (bounded by `connect_timeout`, at most 10 s).
    ///
    /// # Errors
    /// The server could not be reached, or the session has no backend key.
    pub async fn cancel(&self) -> Result<(), Error> {
        self.cancel_token()?.cancel().await
    }

    /// Sends the cancel request from a task of its own, without waiting for it (on the runtime
    /// the caller runs on; none, nothing is sent): for a connection given up (closed) whose
    /// backend may still wait on a lock, holding its own, where the path to its server may be
    /// frozen.
    pub(crate) fn cancel_detached(&self) {
        if let (Ok(token), Ok(runtime)) =
            (self.cancel_token(), tokio::runtime::Handle::try_current())
        {
            runtime.spawn(async move { token.cancel().await });
        }
    }

    pub(crate) fn stream(&mut self) -> Result<&mut Stream, Error> {
        self.heed_closer();
        live(&mut self.stream, self.closed)
    }

    /// What ends it from another task or thread, whatever it waits for then ([`Closer`]): its
    /// wait fails with [`Error::Closed`] saying the closer's reason.
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), copyman_async::Error> {
    /// use copyman_async::Connection;
    ///
    /// let conn = Connection::connect_str("host=10.0.0.2 user=postgres dbname=app").await?;
    /// let closer = conn.closer()?;
    /// tokio::spawn(async move {
    ///     tokio::time::sleep(std::time::Duration::from_secs(600)).await;
    ///     closer.close("the watchdog gave it up");
    /// });
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// The connection is closed, or its socket could not be shared (out of file descriptors).
    pub fn closer(&self) -> Result<Closer, Error> {
        let socket = match &self.stream {
            Some(Stream::Tcp(s)) => socket2::SockRef::from(s).try_clone()?,
            Some(Stream::Tls(s)) => s.socket_ref().try_clone()?,
            Some(Stream::Unix(s)) => socket2::SockRef::from(s).try_clone()?,
            None => {
                return Err(Error::Closed {
                    reason: self.closed.unwrap_or("closed"),
                });
            }
        };
        Ok(Closer::new(Arc::clone(&self.closed_by), move || {
            let _ = socket.shutdown(std::net::Shutdown::Both);
        }))
    }

    /// Where a [`Closer`] closed it: closed here too, saying its reason (the socket's end of
    /// file would say the server ended it).
    fn heed_closer(&mut self) {
        if let Some(reason) = self.closed_by.get().copied()
            && self.closed.is_none()
        {
            self.close(reason);
        }
    }

    /// The socket, the session and the read buffer, borrowed apart (for reading while writing).
    pub(crate) fn parts(&mut self) -> Result<(&Stream, &mut Endpoint, &mut [u8]), Error> {
        self.heed_closer();
        match (&self.stream, self.closed) {
            (Some(stream), None) => Ok((stream, &mut self.endpoint, &mut self.scratch)),
            (_, reason) => Err(Error::Closed {
                reason: reason.unwrap_or("closed"),
            }),
        }
    }

    /// Closes the socket at once: the server sees the connection end and aborts whatever COPY
    /// or transaction is open on it. Nothing of it commits.
    pub(crate) fn close(&mut self, reason: &'static str) {
        self.stream = None;
        self.closed = Some(reason);
        self.outgoing = Bytes::new();
    }

    /// Sends a cancel request from a task on the current tokio runtime, for a COPY OUT that was
    /// abandoned without awaiting; the next call waits for it. `false` when there is no runtime
    /// at hand or no backend key.
    pub(crate) fn cancel_abandoned(&mut self) -> bool {
        let (Ok(token), Ok(runtime)) = (self.cancel_token(), tokio::runtime::Handle::try_current())
        else {
            return false;
        };
        self.pending_cancel = Some(runtime.spawn(async move { cancel_at(&token.key).await }));
        true
    }

    /// Writes `bytes` without waiting: `true` if the socket took them all at once.
    pub(crate) fn try_write_all(&mut self, mut bytes: &[u8]) -> bool {
        if !self.outgoing.is_empty() {
            return false;
        }
        let Ok(stream) = self.stream() else {
            return false;
        };
        while !bytes.is_empty() {
            match stream.try_write(bytes) {
                Ok(0) => return false,
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        // Under TLS, taken is not yet sent.
        stream.is_flushed()
    }

    /// Whether every byte the session queued went out.
    pub(crate) fn is_flushed(&self) -> bool {
        // The endpoint's own queue is whole messages, which the next operation writes first.
        self.outgoing.is_empty() && self.stream.as_ref().is_none_or(Stream::is_flushed)
    }

    /// Writes what the session has to send. Cancel-safe: bytes not yet written stay queued.
    pub(crate) async fn flush(&mut self) -> Result<(), Error> {
        loop {
            if self.outgoing.is_empty() {
                match self.endpoint.poll_transmit() {
                    Some(bytes) => self.outgoing = bytes,
                    None => {
                        // Bytes TLS still holds must go out too: the server waits for them.
                        let stream = live(&mut self.stream, self.closed)?;
                        return Ok(stream.flush().await?);
                    }
                }
            }
            let stream = live(&mut self.stream, self.closed)?;
            let n = match stream.write(&self.outgoing).await {
                Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero).into()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
                Err(e) => return Err(e.into()),
            };
            self.outgoing.advance(n);
        }
    }

    /// Reads once from the socket into the session.
    pub(crate) async fn read_into_session(&mut self) -> Result<(), Error> {
        self.heed_closer();
        let stream = live(&mut self.stream, self.closed)?;
        let read = stream.read(&mut self.scratch).await;
        // Closed by a closer while it waited: said as that close.
        self.stream()?;
        handle_read(&mut self.endpoint, read, &self.scratch)
    }

    /// Reads into the session what the socket has at hand, without waiting for more (after
    /// letting the runtime's reactor see the socket: tokio reads only a socket it saw ready).
    pub(crate) async fn poll_server(&mut self) -> Result<(), Error> {
        tokio::task::yield_now().await;
        self.heed_closer();
        let stream = live(&mut self.stream, self.closed)?;
        loop {
            let read = stream.try_read(&mut self.scratch);
            if read
                .as_ref()
                .is_err_and(|e| e.kind() == io::ErrorKind::WouldBlock)
            {
                return Ok(());
            }
            let eof = matches!(read, Ok(0));
            handle_read::<Error>(&mut self.endpoint, read, &self.scratch)?;
            if eof {
                return Ok(());
            }
        }
    }

    /// Before a new operation: waits for the cancel a dropped producer sent in the background
    /// (the endpoint itself reads and discards the outcome of what a dropped call left running).
    pub(crate) async fn settle(&mut self) -> Result<(), Error> {
        self.stream()?;
        if let Some(cancel) = self.pending_cancel.take() {
            // Cancel before reading the rest of the abandoned COPY; if it fails, reading the COPY
            // to its end works too, only slower. The endpoint discards that outcome itself.
            let _ = cancel.await;
        }
        Ok(())
    }
}

/// Cancels what a [`Connection`] runs, without borrowing it: see [`Connection::cancel_token`].
#[derive(Clone, Debug)]
pub struct CancelToken {
    key: CancelKey,
}

impl CancelToken {
    /// Sends the CancelRequest on a new connection to the same server and waits until the server
    /// took it. Whether anything was running to cancel, the server does not say.
    ///
    /// # Errors
    /// The server could not be reached (within `connect_timeout`, at most 10 s).
    pub async fn cancel(&self) -> Result<(), Error> {
        Ok(cancel_at(&self.key).await?)
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // Say goodbye when that cannot disturb anything, without blocking: a Terminate is five
        // bytes. Otherwise the socket simply closes, which the server treats the same way.
        if self.is_ready() {
            self.endpoint.session_mut().terminate();
            if let (Some(stream), Some(bytes)) = (&self.stream, self.endpoint.poll_transmit()) {
                let _ = stream.try_write(&bytes);
            }
        }
    }
}

/// The socket, unless copyman closed it.
fn live<'s>(
    stream: &'s mut Option<Stream>,
    closed: Option<&'static str>,
) -> Result<&'s mut Stream, Error> {
    match (stream, closed) {
        (Some(stream), None) => Ok(stream),
        (_, reason) => Err(Error::Closed {
            reason: reason.unwrap_or("closed"),
        }),
    }
}

/// With `tls` on TCP, sends the SSLRequest and, if the server agrees, does the TLS handshake:
/// the stream to go on with (TLS, or the same plain socket when the server has no TLS and the
/// mode allows that, or without `tls`). The server certificate's channel-binding hash goes to
/// `session`.
async fn negotiate_tls(
    stream: Stream,
    target: &Target,
    tls: Option<(&Arc<ClientConfig>, SslMode)>,
    session: &mut Session,
) -> Result<Stream, Error> {
    let (Some((config, mode)), Target::Tcp { name: host, .. }) = (tls, target) else {
        return Ok(stream);
    };
    stream.write_all(&copyman_tls::SSL_REQUEST).await?;
    // Exactly one byte: anything after it that came before the handshake would be unencrypted
    // data an attacker injected (CVE-2021-23222).
    let mut answer = [0u8; 1];
    if stream.read(&mut answer).await? == 0 {
        return Err(copyman_tls::closed_before_answer().into());
    }
    if !copyman_tls::negotiate(answer[0], &target.to_string(), mode)? {
        return Ok(stream);
    }
    let Stream::Tcp(tcp) = stream else {
        // Never on to plain text after the server agreed to TLS: fail closed.
        return Err(Error::State(
            "TLS was negotiated on a socket that is not TCP",
        ));
    };
    let tls = TlsClient::new(config, host)?;
    let socket = TlsSocket::handshake(tcp, tls, &target.to_string()).await?;
    if let Some(hash) = socket.server_end_point() {
        session.set_tls_server_end_point(hash);
    }
    Ok(Stream::Tls(Box::new(socket)))
}
