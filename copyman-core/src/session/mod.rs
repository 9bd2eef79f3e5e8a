//! The PQv3 session machine: startup, authentication, simple queries and the COPY sub-protocols,
//! without IO.
//!
//! A [`Session`] is one PostgreSQL connection seen from the client side, as bytes in and events
//! and bytes out (the shape of `quinn-proto` and `rustls`). It speaks the protocol with
//! `postgres-protocol`'s encoders; it never opens a socket, reads a clock or spawns anything. The
//! adapters (copyman-sync, copyman-async) own the socket and drive it: see [`Session`] for the
//! loop.
//!
//! Not here: TLS (`SSLRequest` negotiation belongs to whoever owns the socket, before the first
//! byte of the session), the extended query protocol, COPY BOTH (replication), and the COPY OUT
//! data path itself: CopyData frames go from the socket to copyman-wire's
//! [`Framer`](copyman_wire::Framer), never through the session (see
//! [`Event::CopyOutStarted`]).

mod backend;
pub(crate) mod config;
mod error;

use std::collections::{BTreeMap, VecDeque};
use std::fmt;

use bytes::{Buf, Bytes, BytesMut};
use postgres_protocol::authentication::md5_hash;
use postgres_protocol::authentication::sasl::{
    ChannelBinding as ScramBinding, SCRAM_SHA_256, SCRAM_SHA_256_PLUS, ScramSha256,
};
use postgres_protocol::message::frontend;

use self::backend::{HEADER_LEN, MAX_BODY, Reader, next_message, peek_header, show_tag};
pub use self::config::{
    ChannelBinding, PORTABILITY_SETTINGS, SESSION_SETTINGS, StartupConfig, Unreported,
    sent_by_copyman,
};
pub use self::error::{DbError, SessionError};

/// SQLSTATE `query_canceled`: what the server answers a CancelRequest or a CopyFail with.
pub const QUERY_CANCELED: &str = "57014";

/// Whether an error of SQLSTATE `code` is one the same statement meets again, however often it
/// is retried, until something is changed (the data, the tables, the grants): the classes `0A`
/// (feature not supported), `22` (data exception), `23` (integrity constraint violation), `42`
/// (syntax error or access rule violation: a table missing, a view written to, a privilege
/// lacking), `3F` (a schema missing), `44` (`WITH CHECK OPTION` violation) and `54` (program
/// limit exceeded). Every other class may pass on another try: a connection lost (`08`), a
/// serialization failure or a deadlock (`40`), a shortage of resources (`53`) but a full disk
/// (`53100`), a lock not available (`55`), a cancel or a shutdown (`57`).
///
/// ```
/// use copyman_core::session::sqlstate_lasts;
///
/// assert!(sqlstate_lasts("23505") && sqlstate_lasts("42P01") && sqlstate_lasts("53100"));
/// assert!(sqlstate_lasts("3F000"), "no such schema");
/// assert!(!sqlstate_lasts("53300") && !sqlstate_lasts("57014") && !sqlstate_lasts("08006"));
/// ```
pub fn sqlstate_lasts(code: &str) -> bool {
    // A full disk (53100) too: the space a failed COPY took stays taken until a VACUUM, so each
    // retry met it again at once (said "run again" for ever); and a write in a read-only
    // transaction (25006: a standby's, or a source's view that writes, recheck52 F5).
    matches!(
        code.get(..2),
        Some("0A" | "22" | "23" | "3F" | "42" | "44" | "54")
    ) || code == "53100"
        || code == "25006"
}

/// Where a [`Session`] stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum State {
    /// The StartupMessage is out; waiting for the server's authentication request, or (after
    /// authentication) for its parameters, backend key and first ReadyForQuery.
    Startup,
    /// In a password or SASL exchange.
    Authenticating,
    /// Idle: the server sent ReadyForQuery; an operation may start.
    Ready,
    /// A statement runs: waiting for its results and the ReadyForQuery that ends them.
    Query,
    /// A COPY OUT streams: CopyData goes to the adapter's framer.
    CopyOut,
    /// A COPY IN is open: the adapter writes CopyData to the socket.
    CopyIn,
    /// CopyDone or CopyFail is queued: waiting for the server to close the COPY.
    CopyInEnding,
    /// Discarding the rest of a COPY OUT (aborted, or not wanted) until ReadyForQuery.
    Draining,
    /// The connection is over: closed by the server (EOF, FATAL error) or by
    /// [`Session::terminate`].
    Closed,
    /// The session gave up on the connection (authentication or protocol failure); close it.
    Failed,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Startup => "startup",
            Self::Authenticating => "authenticating",
            Self::Ready => "ready",
            Self::Query => "query",
            Self::CopyOut => "copy out",
            Self::CopyIn => "copy in",
            Self::CopyInEnding => "copy in ending",
            Self::Draining => "draining",
            Self::Closed => "closed",
            Self::Failed => "failed",
        })
    }
}

/// The transaction status the server reported in its last ReadyForQuery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum TransactionStatus {
    /// Not in a transaction block (`I`).
    #[default]
    Idle,
    /// In a transaction block (`T`).
    InTransaction,
    /// In a failed transaction block (`E`): queries are refused until it ends.
    Failed,
}

/// The overall format of a COPY, from the CopyInResponse/CopyOutResponse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CopyFormat {
    /// Text or CSV (they look the same on the wire).
    Text,
    /// Binary.
    Binary,
}

/// Something the session tells its driver. Drain them with [`Session::poll_event`] after every
/// input.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// ReadyForQuery: the startup or the current operation is over and the session is usable.
    Ready(TransactionStatus),
    /// A row of a [`Session::query`] (or of a statement before a COPY in a COPY's Query), as
    /// text (`None` for NULL; invalid UTF-8 is replaced).
    Row(Vec<Option<String>>),
    /// A statement completed. `rows` is the count at the end of the tag: `COPY 1000` → 1000,
    /// `INSERT 0 5` → 5; tags without one (`BEGIN`) give `None`.
    CommandComplete {
        /// The command tag, e.g. `COPY 1000`.
        tag: String,
        /// The row count the tag ends with, if it does.
        rows: Option<u64>,
    },
    /// The server reported an error (not FATAL): the statement failed, the session waits for
    /// ReadyForQuery and emits [`Event::Ready`].
    Error(DbError),
    /// A NoticeResponse (NOTICE, WARNING, …).
    Notice(DbError),
    /// A NotificationResponse (`NOTIFY`).
    Notification {
        /// The notifying backend's process id.
        process_id: i32,
        /// The channel name.
        channel: String,
        /// The payload.
        payload: String,
    },
    /// A run-time parameter changed after startup (ParameterStatus). Values sent during startup
    /// are only recorded: read them with [`Session::parameter`].
    ParameterChanged {
        /// The parameter name.
        name: String,
        /// Its new value.
        value: String,
    },
    /// The server started the COPY TO STDOUT of a [`Session::copy_out`]. From now on CopyData
    /// bytes do not go through [`Session::handle_input`]: the driver gives what it reads from the
    /// socket to a [`Framer`](copyman_wire::Framer) until the framer stops at a message that is
    /// not CopyData, and gives the bytes from that stop on to `handle_input`. Bytes the session
    /// already holds come back as [`Event::CopyData`].
    CopyOutStarted {
        /// The overall format.
        format: CopyFormat,
        /// How many columns the COPY has.
        columns: usize,
    },
    /// The server started the COPY FROM STDIN of a [`Session::copy_in`]: the driver may now
    /// write CopyData messages to the socket, then call [`Session::copy_done`] or
    /// [`Session::copy_fail`].
    CopyInStarted {
        /// The overall format.
        format: CopyFormat,
        /// How many columns the COPY has.
        columns: usize,
    },
    /// Raw COPY OUT stream bytes, starting at a message boundary with a CopyData message (or
    /// its first bytes), that the session received but that belong to the framer: call
    /// [`Framer::resume`](copyman_wire::Framer::resume), then treat them as if just read from the
    /// socket. The session holds nothing after emitting this.
    CopyData(BytesMut),
    /// Send [`Session::cancel_request`] on a new connection: the server started a COPY TO STDOUT
    /// that nobody wants (see [`SessionError::WrongDirection`]) and only a cancel ends it early.
    CancelNeeded,
    /// The current operation failed without a server error of its own (a COPY in the wrong
    /// direction, or no COPY at all). The session is still usable: [`Event::Ready`] follows.
    Failed(SessionError),
    /// The session is over (FATAL server error, authentication or protocol failure, connection
    /// closed). This is the last event; every later call returns this error.
    Closed(SessionError),
}

/// What kind of operation is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum OpKind {
    #[default]
    Query,
    CopyOut,
    CopyIn,
}

/// Bookkeeping of the operation running between a Query and its ReadyForQuery.
#[derive(Debug, Default)]
struct Op {
    kind: OpKind,
    /// The COPY the operation asked for has started.
    copy_started: bool,
    /// An ErrorResponse arrived.
    errored: bool,
    /// The last CommandComplete tag (or `EMPTY QUERY`).
    tag: Option<String>,
    /// The names of the result columns of the last statement that returns rows (its
    /// RowDescription).
    columns: Vec<String>,
    /// Reported as [`Event::Failed`] just before [`Event::Ready`].
    failure: Option<SessionError>,
    /// The session itself made the server abandon a COPY (CopyFail, or a requested cancel): the
    /// `query_canceled` error that results is expected, not reported.
    self_canceled: bool,
    /// The server failed the COPY IN: CopyDone/CopyFail are not sent any more.
    copy_in_failed: bool,
}

/// Where the SCRAM exchange stands.
enum Sasl {
    /// SASLInitialResponse sent, waiting for SASLContinue.
    Continue(Box<ScramSha256>),
    /// SASLResponse sent, waiting for SASLFinal.
    Final(Box<ScramSha256>),
}

/// The machine's state, with what each state needs.
enum Phase {
    /// Waiting for the first authentication request.
    Startup,
    /// A password (cleartext or md5) or the SCRAM final message is verified: waiting for
    /// AuthenticationOk.
    Password,
    /// In a SCRAM exchange.
    Sasl(Sasl),
    /// Authenticated: parameters and key until the first ReadyForQuery.
    AwaitReady,
    Ready,
    Query,
    CopyOut,
    CopyIn,
    CopyInEnding,
    /// Discarding CopyData; `skip` body bytes of the current one are still to come.
    Draining {
        skip: u64,
    },
    Closed,
    Failed,
}

/// One PostgreSQL connection, sans IO: startup and authentication, simple queries, COPY OUT and
/// COPY IN.
///
/// # Contract
///
/// * [`Session::new`] queues the StartupMessage. Whatever the session must send comes out of
///   [`Session::poll_transmit`], in order: write it all to the socket after every call.
/// * Bytes read from the socket go to [`Session::handle_input`], split anywhere; end of stream
///   goes to [`Session::handle_eof`].
/// * What happened comes out of [`Session::poll_event`]: drain it after every call.
/// * Operations ([`query`](Session::query), [`copy_out`](Session::copy_out),
///   [`copy_in`](Session::copy_in)) start only in [`State::Ready`]. An operation is over when the
///   session is back in [`State::Ready`], which [`Event::Ready`] marks. Before it, in order, come
///   its results: [`Event::Row`], [`Event::CommandComplete`], and [`Event::Error`] if the server
///   refused it, or [`Event::Failed`] if it failed otherwise (a COPY in the wrong direction,
///   [`SessionError::WrongDirection`], or no COPY at all, [`SessionError::NotCopy`]). So a driver
///   knows the outcome of an operation by the events between its start and `Ready`.
/// * Failures that end the connection (FATAL errors, authentication and protocol failures,
///   unexpected EOF) come out as [`Event::Closed`], the last event. They are sticky: from then on
///   every call returns the same error, [`Session::handle_input`] included (also the call that
///   found it). The session never panics on server input.
///
/// # The drive loop
///
/// ```no_run
/// use std::io::{Read, Write};
/// use std::net::TcpStream;
/// use copyman_core::session::{Event, Session, SessionError, StartupConfig, State};
///
/// /// Runs the session until it is Ready (startup, or the end of an operation).
/// fn drive(session: &mut Session, socket: &mut TcpStream) -> Result<(), Box<dyn std::error::Error>> {
///     let mut buf = vec![0; 64 * 1024];
///     let mut failure: Option<Box<dyn std::error::Error>> = None;
///     loop {
///         while let Some(bytes) = session.poll_transmit() {
///             socket.write_all(&bytes)?;
///         }
///         while let Some(event) = session.poll_event() {
///             match event {
///                 Event::Row(row) => println!("{row:?}"),
///                 Event::Error(e) => failure = Some(e.into()),
///                 Event::Failed(e) | Event::Closed(e) => failure = Some(e.into()),
///                 Event::CancelNeeded => {
///                     let cancel = session.cancel_request().expect("the server sent its key");
///                     TcpStream::connect("db:5432")?.write_all(&cancel)?;
///                 }
///                 _ => {}
///             }
///         }
///         match session.state() {
///             State::Ready => return failure.map_or(Ok(()), Err),
///             State::Closed | State::Failed => return Err(failure.expect("Closed came last")),
///             _ => {}
///         }
///         match socket.read(&mut buf)? {
///             0 => session.handle_eof(),
///             n => session.handle_input(&buf[..n])?,
///         }
///     }
/// }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut socket = TcpStream::connect("db:5432")?;
/// let mut config = StartupConfig::new("alice");
/// config.password = Some(b"s3cret".to_vec());
/// let mut session = Session::new(config);
/// drive(&mut session, &mut socket)?; // startup and authentication
/// session.query("CREATE TEMP TABLE t (id int8)")?;
/// drive(&mut session, &mut socket)?;
/// session.terminate();
/// while let Some(bytes) = session.poll_transmit() {
///     socket.write_all(&bytes)?;
/// }
/// # Ok(()) }
/// ```
///
/// # COPY OUT: the framer takes the CopyData
///
/// After [`Event::CopyOutStarted`] the CopyData stream bypasses the session. The driver reads
/// the socket into a framer; when the framer stops at another message (CopyDone, a notice, an
/// error), the bytes from the stop on go to the session; when the session gives CopyData back
/// ([`Event::CopyData`]: streaming resumed after a notice, or bytes read together with the
/// CopyOutResponse), they go to the framer again.
///
/// ```no_run
/// use copyman_core::session::{Event, Session, State};
/// use copyman_wire::Framer;
/// # fn read(_: &mut [u8]) -> usize { 0 }
/// # fn write(_: &[u8]) {}
/// # fn send_to_receivers(_: &[u8]) {}
///
/// /// Routes raw bytes of the COPY OUT connection to the framer or the session.
/// fn route(session: &mut Session, framer: &mut Framer, framing: &mut bool, chunk: &[u8]) {
///     if !*framing {
///         return session.handle_input(chunk).expect("live session");
///     }
///     let walk = framer.advance(chunk).expect("well-formed CopyData");
///     send_to_receivers(&chunk[..walk.stop.unwrap_or(chunk.len())]);
///     if let Some(stop) = walk.stop {
///         *framing = false;
///         session.handle_input(&chunk[stop..]).expect("live session");
///     }
/// }
///
/// # fn copy(session: &mut Session) {
/// let (mut framer, mut framing) = (Framer::new(), false);
/// session.copy_out("COPY t TO STDOUT").unwrap();
/// let mut buf = vec![0; 64 * 1024];
/// loop {
///     while let Some(bytes) = session.poll_transmit() { write(&bytes) }
///     while let Some(event) = session.poll_event() {
///         match event {
///             Event::CopyData(bytes) => {
///                 framer.resume();
///                 framing = true;
///                 route(session, &mut framer, &mut framing, &bytes);
///             }
///             Event::CommandComplete { rows, .. } => println!("copied {rows:?} rows"),
///             _ => {}
///         }
///     }
///     if session.state() == State::Ready { break }
///     let n = read(&mut buf);
///     route(session, &mut framer, &mut framing, &buf[..n]);
/// }
/// # }
/// ```
///
/// To abort a COPY OUT midway, send [`Session::cancel_request`] on a new connection and call
/// [`Session::abort_copy_out`] with the framer's realignment; then drive to `Ready` with every
/// byte going to the session.
pub struct Session {
    config: StartupConfig,
    phase: Phase,
    op: Op,
    /// Received bytes not yet processed (at most one incomplete message, outside COPY OUT).
    input: BytesMut,
    /// Bytes to send.
    output: BytesMut,
    events: VecDeque<Event>,
    /// The terminal error, once there is one.
    error: Option<SessionError>,
    parameters: BTreeMap<String, String>,
    backend_key: Option<(i32, i32)>,
    transaction: TransactionStatus,
    /// The TLS server certificate's hash, when the connection is TLS: channel binding data.
    tls_server_end_point: Option<Vec<u8>>,
    /// Whether authentication used SCRAM-SHA-256-PLUS.
    channel_bound: bool,
    /// Why TLS was given up for this connection ([`Session::tls_given_up`]).
    tls_given_up: Option<String>,
    /// Whether the server sent AuthenticationOk ([`Session::authenticated`]).
    authenticated: bool,
    /// NoticeResponses not yet taken by [`Session::take_notices`].
    notices: Vec<DbError>,
    /// A notice that the server ends the session (SQLSTATE 57P0x: a WARNING where a server
    /// stops at once or another backend crashed), kept ([`Session::ending_notice`]).
    ending: Option<DbError>,
    /// Their size, as [`KEPT_NOTICE_BYTES`] counts it.
    notice_bytes: usize,
    /// NotificationResponses not yet taken by [`Session::take_notifications`].
    notifications: Vec<Notification>,
    /// Notices and notifications not kept because the queues were full.
    dropped_messages: u64,
    /// Notices received so far, kept or not ([`Session::notice_mark`]).
    notices_seen: u64,
    /// Bytes given to [`Session::handle_input`] so far.
    received: u64,
    /// A query named a pinned setting that shapes COPY data ([`Session::settings_named`]).
    settings_named: bool,
}

/// The error a server sends in the old protocol's form before any message of the session (`E`,
/// its text, a NUL): what a postmaster that could not start a backend for the connection says
/// ("could not fork new process for connection: Resource temporarily unavailable",
/// `report_fork_failure_to_client`). Told from a protocol-3 ErrorResponse as libpq tells it:
/// the length a protocol-3 message would have there is below 8 or above 30 000.
/// [`OldError::Not`] for anything else, [`OldError::Partial`] while its end has not come.
///
/// # Errors
/// Such a text that does not end within 30 000 bytes.
fn old_protocol_error(input: &[u8]) -> Result<OldError, SessionError> {
    /// libpq's `MAX_ERRLEN`.
    const MAX_ERRLEN: u32 = 30_000;
    let (Some(b'E'), Some(&[a, b, c, d])) = (input.first(), input.get(1..5)) else {
        // (An `E` whose length has not come yet: judged once it has.)
        return Ok(match input {
            [b'E', ..] => OldError::Partial,
            _ => OldError::Not,
        });
    };
    let len = u32::from_be_bytes([a, b, c, d]);
    if (8..=MAX_ERRLEN).contains(&len) {
        return Ok(OldError::Not);
    }
    let Some(end) = input[1..].iter().position(|&b| b == 0) else {
        return match input.len() > MAX_ERRLEN as usize {
            true => Err(SessionError::protocol(
                "the server's error before the session (the old protocol's form) does not end"
                    .to_owned(),
            )),
            false => Ok(OldError::Partial),
        };
    };
    let text = String::from_utf8_lossy(&input[1..=end]);
    let text = text
        .trim_end_matches('\n')
        .trim_start_matches("FATAL:")
        .trim();
    Ok(OldError::Whole(Box::new(DbError::new("FATAL", "", text))))
}

/// What [`old_protocol_error`] found at the start of the input.
enum OldError {
    /// Not such an error.
    Not,
    /// Perhaps one, not whole yet.
    Partial,
    /// One, whole.
    Whole(Box<DbError>),
}

/// How many notices, and how many notifications, a [`Session`] keeps until they are taken: a
/// server that raises a notice per row must not make memory grow with the data.
pub const KEPT_MESSAGES: usize = 10_000;

/// How many bytes of notices (their wire messages) a [`Session`] keeps until they are taken,
/// whatever their number: ten thousand notices of 100 kB each were a gigabyte.
pub const KEPT_NOTICE_BYTES: usize = 8 << 20;

/// The bytes a notice's texts take, as [`KEPT_NOTICE_BYTES`] counts them.
fn notice_size(notice: &DbError) -> usize {
    let texts = [
        &notice.detail,
        &notice.hint,
        &notice.context,
        &notice.internal_query,
    ];
    let extra: usize = texts
        .iter()
        .filter_map(|t| t.as_ref())
        .map(String::len)
        .sum();
    // The fields every notice has, and the small ones, about.
    64 + notice.message.len() + extra
}

/// A NotificationResponse (`NOTIFY channel, 'payload'`), as kept by [`Session::take_notifications`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The notifying backend's process id.
    pub process_id: i32,
    /// The channel name.
    pub channel: String,
    /// The payload.
    pub payload: String,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("config", &self.config)
            .field("state", &self.state())
            .field("transaction", &self.transaction)
            .field("buffered", &self.input.len())
            .field("pending_output", &self.output.len())
            .field("pending_events", &self.events.len())
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A session that starts with `config`: the StartupMessage is queued for
    /// [`Session::poll_transmit`].
    ///
    /// A configuration the protocol cannot carry (a NUL byte in a parameter) fails the session
    /// at once: [`Event::Closed`] with [`SessionError::NulByte`].
    pub fn new(config: StartupConfig) -> Self {
        let mut session = Self {
            config,
            phase: Phase::Startup,
            op: Op::default(),
            input: BytesMut::new(),
            output: BytesMut::new(),
            events: VecDeque::new(),
            error: None,
            parameters: BTreeMap::new(),
            backend_key: None,
            transaction: TransactionStatus::Idle,
            tls_server_end_point: None,
            channel_bound: false,
            tls_given_up: None,
            authenticated: false,
            notices: Vec::new(),
            ending: None,
            notice_bytes: 0,
            notifications: Vec::new(),
            dropped_messages: 0,
            notices_seen: 0,
            received: 0,
            settings_named: false,
        };
        let mut startup = BytesMut::new();
        match frontend::startup_message(session.config.parameters(), &mut startup) {
            Ok(()) => session.output = startup,
            Err(_) => session.fail(SessionError::NulByte {
                what: "a startup parameter",
            }),
        }
        session
    }

    /// What it said in its StartupMessage.
    pub fn config(&self) -> &StartupConfig {
        &self.config
    }

    /// Tells the session its connection is TLS, with the server certificate's
    /// `tls-server-end-point` hash (`copyman_tls::server_end_point`): SCRAM then binds itself to
    /// the channel (SCRAM-SHA-256-PLUS) when the server offers it, unless
    /// [`StartupConfig::channel_binding`] is [`ChannelBinding::Disable`]. Call it before the
    /// server's first message is handled.
    pub fn set_tls_server_end_point(&mut self, hash: Vec<u8>) {
        self.tls_server_end_point = Some(hash);
    }

    /// Says why TLS was given up for this session's connection: its attempt with TLS failed
    /// (`why`), and `sslmode=prefer` went on without it ([`crate::connect::Connecting::tls_given_up`]).
    pub fn set_tls_given_up(&mut self, why: String) {
        self.tls_given_up = Some(why);
    }

    /// Why this session's connection is without TLS where its attempt with TLS failed, under
    /// `sslmode=prefer` (libpq's way): what that attempt said. A caller that must not copy
    /// unencrypted where it could have been says so (the command warns).
    pub fn tls_given_up(&self) -> Option<&str> {
        self.tls_given_up.as_deref()
    }

    /// Whether authentication was bound to the TLS channel (SCRAM-SHA-256-PLUS).
    pub fn channel_bound(&self) -> bool {
        self.channel_bound
    }

    /// The next bytes to write to the socket, in order; `None` when there is nothing to send.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        (!self.output.is_empty()).then(|| self.output.split().freeze())
    }

    /// The next event; `None` when there is none until more input or another call.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Feeds bytes read from the socket (any split).
    ///
    /// During a COPY OUT, only what the framer does not take belongs here (see
    /// [`Event::CopyOutStarted`]). After [`Session::terminate`], input is ignored.
    ///
    /// # Errors
    /// The terminal error once the session is over ([`Event::Closed`] carried it), including when
    /// this very input ended it.
    pub fn handle_input(&mut self, data: &[u8]) -> Result<(), SessionError> {
        self.check_live()?;
        if matches!(self.phase, Phase::Closed) {
            return Ok(());
        }
        self.received = self.received.saturating_add(data.len() as u64);
        let mut data = data;
        if let Phase::Draining { skip } = &mut self.phase
            && *skip > 0
            && self.input.is_empty()
        {
            // Skip CopyData body bytes straight from the caller's buffer: memory stays
            // bounded whatever the size of the frame being discarded.
            let n = usize::try_from(*skip).unwrap_or(usize::MAX).min(data.len());
            data = &data[n..];
            *skip -= n as u64;
        }
        self.input.extend_from_slice(data);
        if let Err(error) = self.process() {
            self.fail(error);
        }
        self.check_live()
    }

    /// The socket reached end of stream. Unless the session was already over, that ends it with
    /// [`SessionError::Closed`].
    pub fn handle_eof(&mut self) {
        if !matches!(self.phase, Phase::Closed | Phase::Failed) {
            self.fail(SessionError::Closed);
        }
    }

    /// The notice its server sent that it ends the session (SQLSTATE 57P0x: an immediate
    /// shutdown's WARNING, a crash's), if one came: no backend of it stays, whatever the
    /// connection's end then looks like (a reset; jobs72 F1: "may stay … pg_terminate_backend"
    /// was said of a backend an immediate shutdown had ended, its pid free for another
    /// session). Its end is not an answer: a COMMIT it cut short is in doubt all the same.
    pub fn ending_notice(&self) -> Option<&DbError> {
        self.ending.as_ref()
    }

    /// Where the session stands.
    pub fn state(&self) -> State {
        match &self.phase {
            Phase::Startup | Phase::AwaitReady => State::Startup,
            Phase::Password | Phase::Sasl(_) => State::Authenticating,
            Phase::Ready => State::Ready,
            Phase::Query => State::Query,
            Phase::CopyOut => State::CopyOut,
            Phase::CopyIn => State::CopyIn,
            Phase::CopyInEnding => State::CopyInEnding,
            Phase::Draining { .. } => State::Draining,
            Phase::Closed => State::Closed,
            Phase::Failed => State::Failed,
        }
    }

    /// The error that ended the session, if one did (a server's FATAL, the socket's end): the one
    /// [`Event::Closed`] carried, kept for whoever asks later.
    pub fn ended_with(&self) -> Option<&SessionError> {
        self.error.as_ref()
    }

    /// The transaction status of the last ReadyForQuery ([`TransactionStatus::Idle`] before the
    /// first). A session that ended ([`State::Closed`], [`Session::ended_with`]) keeps the last
    /// one its server reported: its transaction ended with it, whatever this says (lib44 F6).
    pub fn transaction_status(&self) -> TransactionStatus {
        self.transaction
    }

    /// The last value the server reported for a run-time parameter (ParameterStatus):
    /// `server_version`, `server_encoding`, `client_encoding`, `DateStyle`, `TimeZone`, ….
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.parameters.get(name).map(String::as_str)
    }

    /// The encoding the server sends text in (`client_encoding`, as it reported it; UTF8
    /// before it did).
    fn client_encoding(&self) -> &str {
        self.parameter("client_encoding").unwrap_or("UTF8")
    }

    /// The server version as a number, parsed from `server_version`, as in
    /// `server_version_num`: `15.18 (Debian 15.18-1)` → 150018, `9.6.24` → 90624.
    ///
    /// ```
    /// # use copyman_core::session::parse_server_version;
    /// assert_eq!(parse_server_version("15.18 (Debian 15.18-1.pgdg120+1)"), Some(150018));
    /// assert_eq!(parse_server_version("9.6.24"), Some(90624));
    /// assert_eq!(parse_server_version("17devel"), Some(170000));
    /// ```
    pub fn server_version_num(&self) -> Option<u32> {
        self.parameter("server_version")
            .and_then(parse_server_version)
    }

    /// Whether the server accepted the login (AuthenticationOk), whatever came after: an error
    /// then (no such database, too many connections) is the server's answer to this login, and
    /// libpq tries no other way (TLS or not, another host) after it — the password went over
    /// this attempt's channel already.
    pub fn authenticated(&self) -> bool {
        self.authenticated
    }

    /// The process id and secret key from BackendKeyData.
    pub fn backend_key(&self) -> Option<(i32, i32)> {
        self.backend_key
    }

    /// The 16-byte CancelRequest that cancels this session's running statement, to send on a
    /// new connection (then close that connection); `None` before BackendKeyData arrived.
    #[must_use]
    pub fn cancel_request(&self) -> Option<Bytes> {
        self.backend_key.map(|(process_id, secret_key)| {
            let mut buf = BytesMut::with_capacity(16);
            frontend::cancel_request(process_id, secret_key, &mut buf);
            buf.freeze()
        })
    }

    /// Whether the server reads a statement's characters beyond ASCII as the UTF-8 they are
    /// written in: where the session's client_encoding is UTF8, or SQL_ASCII (which converts
    /// nothing) into a UTF8 or SQL_ASCII database.
    ///
    /// # Errors
    /// [`SessionError::NotUtf8`] where it does not: such a statement is not sent.
    pub fn reads_statements_as_utf8(&self) -> Result<(), SessionError> {
        let client_encoding = self.parameter("client_encoding").unwrap_or("UTF8");
        let server_encoding = self.parameter("server_encoding").unwrap_or("UTF8");
        match client_encoding {
            "UTF8" => Ok(()),
            "SQL_ASCII" if matches!(server_encoding, "UTF8" | "SQL_ASCII") => Ok(()),
            _ => Err(SessionError::NotUtf8 {
                client_encoding: client_encoding.to_owned(),
            }),
        }
    }

    /// Sends `sql` as a simple Query. Its rows come as [`Event::Row`], its completions as
    /// [`Event::CommandComplete`], errors as [`Event::Error`], and [`Event::Ready`] ends it.
    ///
    /// A COPY started by `sql` is abandoned and reported as [`SessionError::UnexpectedCopy`]
    /// ([`Event::Failed`]; a COPY TO STDOUT also asks for [`Event::CancelNeeded`]).
    ///
    /// # Errors
    /// [`SessionError::Misuse`] unless [`State::Ready`]; [`SessionError::NulByte`];
    /// [`SessionError::NotUtf8`] for a statement beyond ASCII where the session's
    /// `client_encoding` is neither UTF8 nor SQL_ASCII into a UTF8 or SQL_ASCII database; the
    /// terminal error.
    pub fn query(&mut self, sql: &str) -> Result<(), SessionError> {
        self.start(OpKind::Query, sql, "query")?;
        self.settings_named |= config::names_a_shaping_setting(sql);
        Ok(())
    }

    /// Whether a [`Session::query`] since the startup named a setting copyman pins, which the
    /// server does not report and which shapes text COPY data (`extra_float_digits`,
    /// `lc_monetary`, `array_nulls`): a `SET` of it may have changed it, and the session's
    /// COPYs ask ([`crate::start::CopyStart`]).
    pub fn settings_named(&self) -> bool {
        self.settings_named
    }

    /// Sends `sql`, which should start a `COPY … TO STDOUT`, as a simple Query.
    ///
    /// The session emits [`Event::CopyOutStarted`] at the CopyOutResponse, and at the end
    /// [`Event::CommandComplete`] (`COPY n`) and [`Event::Ready`]. A statement that is no COPY
    /// ends with [`Event::Failed`] ([`SessionError::NotCopy`]); a COPY FROM STDIN is failed by
    /// the session (CopyFail) and ends with [`SessionError::WrongDirection`]. `sql` may hold
    /// several statements (`BEGIN; COPY …`).
    ///
    /// # Errors
    /// As [`Session::query`].
    pub fn copy_out(&mut self, sql: &str) -> Result<(), SessionError> {
        self.start(OpKind::CopyOut, sql, "copy_out")
    }

    /// Sends `sql`, which should start a `COPY … FROM STDIN`, as a simple Query.
    ///
    /// The session emits [`Event::CopyInStarted`] at the CopyInResponse; the driver then writes
    /// CopyData to the socket itself, feeds what the server sends to
    /// [`Session::handle_input`] (an [`Event::Error`] there means the server refused the data
    /// and ignores the rest), and ends with [`Session::copy_done`] or [`Session::copy_fail`].
    /// A statement that is no COPY ends with [`SessionError::NotCopy`]; a COPY TO STDOUT asks
    /// for [`Event::CancelNeeded`], is drained and ends with [`SessionError::WrongDirection`].
    ///
    /// # Errors
    /// As [`Session::query`].
    pub fn copy_in(&mut self, sql: &str) -> Result<(), SessionError> {
        self.start(OpKind::CopyIn, sql, "copy_in")
    }

    /// Ends a COPY IN successfully: queues CopyDone. [`Event::CommandComplete`] (`COPY n`) and
    /// [`Event::Ready`] follow, or [`Event::Error`] and `Ready` if the server refuses the data.
    ///
    /// If the server already failed the COPY (an [`Event::Error`] came during it), nothing is
    /// sent: the operation ends, or has ended, with `Ready` anyway.
    ///
    /// # Errors
    /// [`SessionError::Misuse`] outside a COPY IN; the terminal error.
    pub fn copy_done(&mut self) -> Result<(), SessionError> {
        self.end_copy_in("copy_done", None)
    }

    /// Fails a COPY IN: queues CopyFail with `reason` ([`copy_fail_reason`]: in ASCII). The
    /// server answers with an
    /// [`Event::Error`] (SQLSTATE [`QUERY_CANCELED`], its message quoting `reason`) and
    /// [`Event::Ready`]; nothing of the COPY is kept.
    ///
    /// If the server already failed the COPY, nothing is sent, as for [`Session::copy_done`].
    ///
    /// # Errors
    /// [`SessionError::Misuse`] outside a COPY IN; the terminal error.
    pub fn copy_fail(&mut self, reason: &str) -> Result<(), SessionError> {
        self.end_copy_in("copy_fail", Some(&copy_fail_reason(reason)))
    }

    /// Abandons a COPY OUT midway: the rest of the stream is read and discarded until
    /// ReadyForQuery.
    ///
    /// `resume` is what the framer's position needs to parse from a message boundary again,
    /// `copyman_wire::realign::resume(framer.position()).as_slice()`; the session puts it before
    /// whatever comes next. From now on every byte read from the socket goes to
    /// [`Session::handle_input`]. CopyData is skipped as it comes, without buffering frames, so
    /// memory stays bounded whatever their size.
    ///
    /// The driver sends [`Session::cancel_request`] itself (on a new connection) so that the
    /// server stops early; the resulting [`Event::Error`] (SQLSTATE [`QUERY_CANCELED`]) is
    /// reported like any other, then [`Event::Ready`]. Without a cancel, the session drains the
    /// COPY to its end ([`Event::CommandComplete`], `Ready`).
    ///
    /// # Errors
    /// [`SessionError::Misuse`] unless a [`Session::copy_out`] runs and is not yet draining; the
    /// terminal error, if `resume` makes the stream malformed.
    pub fn abort_copy_out(&mut self, resume: &[u8]) -> Result<(), SessionError> {
        self.check_live()?;
        let allowed = match self.phase {
            Phase::CopyOut => true,
            Phase::Query => self.op.kind == OpKind::CopyOut,
            _ => false,
        };
        if !allowed {
            return Err(self.misuse("abort_copy_out"));
        }
        if !resume.is_empty() {
            let mut input = BytesMut::with_capacity(resume.len() + self.input.len());
            input.extend_from_slice(resume);
            input.extend_from_slice(&self.input);
            self.input = input;
        }
        self.phase = Phase::Draining { skip: 0 };
        if let Err(error) = self.process() {
            self.fail(error);
        }
        self.check_live()
    }

    /// Queues Terminate: the polite goodbye. Write out [`Session::poll_transmit`], then close the
    /// socket. The session is [`State::Closed`] from now on; later input is ignored.
    pub fn terminate(&mut self) {
        if matches!(self.phase, Phase::Closed | Phase::Failed) {
            return;
        }
        frontend::terminate(&mut self.output);
        self.phase = Phase::Closed;
        self.input = BytesMut::new();
    }

    /// Takes the notices (NoticeResponse: NOTICE, WARNING, INFO, …) the server sent since the
    /// last call, in order, whatever the session was doing: startup, a query, a COPY in either
    /// direction (also those [`CopyOutSource`](crate::source::CopyOutSource) met in the middle of
    /// the stream), draining. Each also came out as [`Event::Notice`]; this queue is for the
    /// caller, so that no driver loop can lose one. At most [`KEPT_MESSAGES`] wait here, of at
    /// most [`KEPT_NOTICE_BYTES`]: beyond, the oldest are dropped (counted in
    /// [`Session::dropped_messages`]), so that the latest — those of the statement just run,
    /// a COMMIT's WARNING — are kept (a trigger's notice per row kept the first ten thousand and
    /// dropped the rest, lib44 F2).
    pub fn take_notices(&mut self) -> Vec<DbError> {
        self.notice_bytes = 0;
        std::mem::take(&mut self.notices)
    }

    /// Keeps `earlier` notices, those of a session this one takes the place of (a new session to
    /// the same server after the first was lost), before its own: a caller that takes them
    /// later misses none. Kept within [`KEPT_MESSAGES`] like the session's own (the oldest
    /// dropped first, counted).
    pub fn keep_earlier_notices(&mut self, earlier: Vec<DbError>) {
        let later = std::mem::take(&mut self.notices);
        self.notice_bytes = 0;
        for notice in earlier.into_iter().chain(later) {
            self.keep_notice(notice);
        }
    }

    /// Keeps `notice` for [`Session::take_notices`], dropping the oldest (counted) to make
    /// room: half of the queue at once where it is full in number (the others move once per
    /// half), as many as its bytes need. One larger than the whole room is dropped itself.
    fn keep_notice(&mut self, notice: DbError) {
        let size = notice_size(&notice);
        if size > KEPT_NOTICE_BYTES {
            self.dropped_messages += 1;
            return;
        }
        let at_least = match self.notices.len() >= KEPT_MESSAGES {
            true => KEPT_MESSAGES / 2,
            false => 0,
        };
        let mut dropped = 0;
        while dropped < self.notices.len()
            && (dropped < at_least || self.notice_bytes + size > KEPT_NOTICE_BYTES)
        {
            self.notice_bytes -= notice_size(&self.notices[dropped]);
            dropped += 1;
        }
        if dropped > 0 {
            self.notices.drain(..dropped);
            self.dropped_messages += dropped as u64;
        }
        self.notice_bytes += size;
        self.notices.push(notice);
    }

    /// The notices waiting to be taken by [`Session::take_notices`], oldest first (left there).
    pub fn notices(&self) -> &[DbError] {
        &self.notices
    }

    /// A mark of the notices received so far, for [`Session::notices_since`].
    pub fn notice_mark(&self) -> u64 {
        self.notices_seen
    }

    /// The notices received since `mark` ([`Session::notice_mark`]) that wait to be taken: those
    /// of a statement, asked before it was sent — kept whatever came before it.
    pub fn notices_since(&self, mark: u64) -> &[DbError] {
        let newer = usize::try_from(self.notices_seen.saturating_sub(mark)).unwrap_or(usize::MAX);
        &self.notices[self.notices.len().saturating_sub(newer)..]
    }

    /// Takes the notifications (NotificationResponse, from `LISTEN`) received since the last
    /// call, in order; kept like [`Session::take_notices`].
    pub fn take_notifications(&mut self) -> Vec<Notification> {
        std::mem::take(&mut self.notifications)
    }

    /// Notices and notifications that were not kept because [`KEPT_MESSAGES`] were waiting.
    pub fn dropped_messages(&self) -> u64 {
        self.dropped_messages
    }

    /// [`Session::dropped_messages`] since the last call: counted again from zero.
    pub fn take_dropped_messages(&mut self) -> u64 {
        std::mem::take(&mut self.dropped_messages)
    }

    /// The command tag of the last statement that completed (`COPY 10000`, `INSERT 0 5`,
    /// `BEGIN`, `EMPTY QUERY`), until the next operation starts; in a Query with a COPY, the
    /// COPY's (copyman asks its settings after a COPY TO STDOUT, in the same Query).
    pub fn command_tag(&self) -> Option<&str> {
        self.op.tag.as_deref()
    }

    /// The names of the result columns of the last statement that returned rows (`SELECT 1 AS
    /// a, 2 AS a` → `a`, `a`: names a view could not hold), until the next operation starts.
    pub fn result_columns(&self) -> &[String] {
        &self.op.columns
    }

    /// Bytes given to [`Session::handle_input`] so far. During a COPY OUT the CopyData stream
    /// bypasses the session, so this counts what the session itself read: messages, and a COPY
    /// OUT it drained.
    pub fn received_bytes(&self) -> u64 {
        self.received
    }

    /// Bytes the session holds from its input (for tests of its memory bound).
    #[doc(hidden)]
    pub fn buffered_len(&self) -> usize {
        self.input.len()
    }

    // -- Operations ------------------------------------------------------------------------------

    fn start(
        &mut self,
        kind: OpKind,
        sql: &str,
        operation: &'static str,
    ) -> Result<(), SessionError> {
        self.check_live()?;
        if !matches!(self.phase, Phase::Ready) {
            return Err(self.misuse(operation));
        }
        if !sql.is_ascii()
            && let Err(e) = self.reads_statements_as_utf8()
        {
            return Err(e);
        }
        // Encode aside: on a NUL byte the encoder leaves a partial message behind.
        let mut message = BytesMut::new();
        frontend::query(sql, &mut message)
            .map_err(|_| SessionError::NulByte { what: "the query" })?;
        self.output.extend_from_slice(&message);
        self.op = Op {
            kind,
            ..Op::default()
        };
        self.phase = Phase::Query;
        Ok(())
    }

    fn end_copy_in(
        &mut self,
        operation: &'static str,
        fail: Option<&str>,
    ) -> Result<(), SessionError> {
        self.check_live()?;
        if self.op.kind == OpKind::CopyIn && self.op.copy_in_failed {
            // The server dropped the COPY already and ignores whatever ends it.
            return Ok(());
        }
        if !matches!(self.phase, Phase::CopyIn) {
            return Err(self.misuse(operation));
        }
        match fail {
            None => copyman_wire::message::encode_copy_done(&mut self.output),
            Some(reason) => copyman_wire::message::encode_copy_fail(reason, &mut self.output)?,
        }
        self.phase = Phase::CopyInEnding;
        Ok(())
    }

    fn misuse(&self, operation: &'static str) -> SessionError {
        SessionError::Misuse {
            operation,
            state: self.state(),
        }
    }

    fn check_live(&self) -> Result<(), SessionError> {
        self.error.as_ref().map_or(Ok(()), |e| Err(e.clone()))
    }

    /// Ends the session with `error`.
    fn fail(&mut self, error: SessionError) {
        self.phase = match error {
            SessionError::Db(_) | SessionError::Closed => Phase::Closed,
            _ => Phase::Failed,
        };
        self.input = BytesMut::new();
        self.output = BytesMut::new();
        self.error = Some(error.clone());
        self.events.push_back(Event::Closed(error));
    }

    // -- Input -----------------------------------------------------------------------------------

    /// Handles every whole message in the input buffer.
    fn process(&mut self) -> Result<(), SessionError> {
        loop {
            match &mut self.phase {
                Phase::Closed | Phase::Failed => {
                    self.input.clear();
                    return Ok(());
                }
                Phase::CopyOut if self.input.first() == Some(&copyman_wire::COPY_DATA) => {
                    // CopyData is the framer's: hand everything back, from this boundary on.
                    let data = self.input.split();
                    self.events.push_back(Event::CopyData(data));
                    return Ok(());
                }
                Phase::Draining { skip } => {
                    if *skip > 0 {
                        let n = usize::try_from(*skip)
                            .unwrap_or(usize::MAX)
                            .min(self.input.len());
                        self.input.advance(n);
                        *skip -= n as u64;
                        if *skip > 0 {
                            return Ok(());
                        }
                    }
                    if let Some((copyman_wire::COPY_DATA, len)) = peek_header(&self.input)? {
                        self.input.advance(HEADER_LEN);
                        *skip = u64::from(len - 4);
                        continue;
                    }
                }
                _ => {}
            }
            if matches!(self.phase, Phase::Startup) {
                match old_protocol_error(&self.input)? {
                    OldError::Not => {}
                    OldError::Partial => return Ok(()),
                    OldError::Whole(error) => return Err(SessionError::db(*error)),
                }
            }
            if let Some((tag, len)) = peek_header(&self.input)? {
                // Judge a message by its header, before buffering its body: garbage or a hostile
                // server must not make the session hold up to 1 GiB waiting for a body.
                self.check_header(tag, len)?;
            }
            let Some((tag, body)) = next_message(&mut self.input)? else {
                return Ok(());
            };
            self.on_message(tag, &body)?;
        }
    }

    /// Refuses a message type the protocol does not have, and a body longer than its type can
    /// legitimately be: only a DataRow of a query and CopyData may be large.
    fn check_header(&self, tag: u8, len: u32) -> Result<(), SessionError> {
        /// Every other backend message is small: parameters, tags, error fields (PostgreSQL
        /// shortens the values it quotes in errors).
        const SMALL_BODY: usize = 1 << 20;
        let limit = match tag {
            b'd' => MAX_BODY,
            b'D' if matches!(self.phase, Phase::Query) => MAX_BODY,
            b'R' | b'S' | b'K' | b'Z' | b'C' | b'T' | b'D' | b'I' | b'E' | b'N' | b'A' | b'H'
            | b'G' | b'W' | b'c' | b'n' | b's' | b't' | b'1' | b'2' | b'3' | b'v' | b'V' => {
                SMALL_BODY
            }
            _ => return Err(self.unexpected(tag)),
        };
        // `len` is at least 4: peek_header checked it. The 1 GiB limit itself is next_message's.
        let body = len as usize - 4;
        if limit < MAX_BODY && body > limit {
            // The first answer to a startup message: what answered is no PostgreSQL server
            // (a web server's "HTTP/1.1 400" read as message 'H' of 1414811691 bytes).
            if matches!(self.phase, Phase::Startup) {
                let mut start = vec![tag];
                start.extend_from_slice(&len.to_be_bytes());
                let text: String = (start.iter())
                    .map(|&b| {
                        if b.is_ascii_graphic() {
                            char::from(b)
                        } else {
                            '.'
                        }
                    })
                    .collect();
                return Err(SessionError::protocol(format!(
                    "the server's answer to the startup message is not PostgreSQL's protocol \
                     (it begins \"{text}\"): not a PostgreSQL server, or another service on \
                     that port"
                )));
            }
            return Err(SessionError::protocol(format!(
                "message {} announces {body} bytes, more than such a message can hold",
                show_tag(tag)
            )));
        }
        Ok(())
    }

    /// Handles one whole message.
    fn on_message(&mut self, tag: u8, body: &[u8]) -> Result<(), SessionError> {
        match (&self.phase, tag) {
            (Phase::Startup | Phase::Password | Phase::Sasl(_), b'R') => {
                self.on_authentication(body)
            }
            (_, b'E') => self.on_error(body),
            (_, b'N') => {
                let notice = DbError::parse(tag, body, self.client_encoding())
                    .map_err(|e| Reader::new(tag, body).malformed(&e))?;
                self.notices_seen += 1;
                if notice.code.starts_with("57P0") {
                    self.ending = Some(notice.clone());
                }
                self.keep_notice(notice.clone());
                self.events.push_back(Event::Notice(notice));
                Ok(())
            }
            (Phase::AwaitReady, b'S') => {
                let (name, value) = parse_parameter(body)?;
                self.parameters.insert(name, value);
                Ok(())
            }
            (Phase::AwaitReady, b'K') => {
                let mut r = Reader::new(tag, body);
                self.backend_key = Some((r.i32()?, r.i32()?));
                r.finish()
            }
            (Phase::AwaitReady, b'Z') => self.on_ready(body),
            (Phase::Startup | Phase::Password | Phase::Sasl(_) | Phase::AwaitReady, _) => {
                Err(self.unexpected(tag))
            }
            // From here on the session is past startup.
            (_, b'S') => {
                let (name, value) = parse_parameter(body)?;
                self.parameters.insert(name.clone(), value.clone());
                self.events
                    .push_back(Event::ParameterChanged { name, value });
                Ok(())
            }
            (_, b'A') => {
                let mut r = Reader::new(tag, body);
                let process_id = r.i32()?;
                let channel = r.string()?;
                let payload = r.string()?;
                r.finish()?;
                if self.notifications.len() < KEPT_MESSAGES {
                    self.notifications.push(Notification {
                        process_id,
                        channel: channel.clone(),
                        payload: payload.clone(),
                    });
                } else {
                    self.dropped_messages += 1;
                }
                self.events.push_back(Event::Notification {
                    process_id,
                    channel,
                    payload,
                });
                Ok(())
            }
            (Phase::Query, _) => self.on_query_message(tag, body),
            (Phase::CopyOut, b'c') => {
                Reader::new(tag, body).finish()?;
                self.phase = Phase::Query;
                Ok(())
            }
            (Phase::CopyInEnding, b'C') => {
                self.phase = Phase::Query;
                self.on_query_message(tag, body)
            }
            (Phase::Draining { .. }, _) => self.on_draining_message(tag, body),
            _ => Err(self.unexpected(tag)),
        }
    }

    fn unexpected(&self, tag: u8) -> SessionError {
        SessionError::protocol(format!(
            "unexpected message {} in state {}",
            show_tag(tag),
            self.state()
        ))
    }

    /// ErrorResponse, in any state.
    fn on_error(&mut self, body: &[u8]) -> Result<(), SessionError> {
        let error = DbError::parse(b'E', body, self.client_encoding())
            .map_err(|e| Reader::new(b'E', body).malformed(&e))?;
        match self.phase {
            // Any error before the session is up ends it (the server closes the connection).
            _ if error.is_fatal() => return Err(SessionError::db(error)),
            Phase::Startup | Phase::Password | Phase::Sasl(_) | Phase::AwaitReady => {
                return Err(SessionError::db(error));
            }
            // Not expected while idle, but harmless: report it.
            Phase::Ready => {}
            Phase::CopyIn => {
                self.op.copy_in_failed = true;
                self.phase = Phase::Query;
            }
            Phase::CopyOut | Phase::CopyInEnding => self.phase = Phase::Query,
            Phase::Query | Phase::Draining { .. } => {}
            Phase::Closed | Phase::Failed => return Ok(()),
        }
        self.op.errored = true;
        if self.op.self_canceled && error.code == QUERY_CANCELED {
            // The error the session asked for by abandoning the COPY: Event::Failed tells why.
            return Ok(());
        }
        self.events.push_back(Event::Error(error));
        Ok(())
    }

    /// ReadyForQuery: the end of startup or of an operation.
    fn on_ready(&mut self, body: &[u8]) -> Result<(), SessionError> {
        let mut r = Reader::new(b'Z', body);
        let status = match r.u8()? {
            b'I' => TransactionStatus::Idle,
            b'T' => TransactionStatus::InTransaction,
            b'E' => TransactionStatus::Failed,
            _ => return Err(r.malformed("unknown transaction status")),
        };
        r.finish()?;
        // The operation's record stays until the next one starts: `copy_done` after a failed
        // COPY IN must still know that nothing is to be sent.
        let op = &mut self.op;
        let failure = match op.failure.take() {
            // A COPY OUT the cancel came too late for: it ended with its `COPY n`, no error.
            Some(SessionError::UnexpectedCopy { got, .. }) => Some(SessionError::UnexpectedCopy {
                got,
                completed: !op.errored,
            }),
            Some(failure) => Some(failure),
            None if op.kind != OpKind::Query && !op.copy_started && !op.errored => {
                Some(SessionError::NotCopy {
                    tag: op.tag.take().unwrap_or_default(),
                })
            }
            None => None,
        };
        if let Some(failure) = failure {
            self.events.push_back(Event::Failed(failure));
        }
        self.transaction = status;
        self.phase = Phase::Ready;
        self.events.push_back(Event::Ready(status));
        Ok(())
    }

    /// A message while a statement runs.
    fn on_query_message(&mut self, tag: u8, body: &[u8]) -> Result<(), SessionError> {
        match tag {
            b'T' => {
                let encoding = self.parameter("client_encoding").unwrap_or("UTF8");
                self.op.columns = parse_row_description(body, encoding)?;
                Ok(())
            }
            b'n' => Ok(()),
            b'D' => {
                // In a COPY's Query too: a statement before the COPY (`CopyStart`'s question
                // of the pinned settings).
                let encoding = self.parameter("client_encoding").unwrap_or("UTF8");
                let row = parse_data_row(body, encoding)?;
                self.events.push_back(Event::Row(row));
                Ok(())
            }
            b'C' => {
                let mut r = Reader::new(tag, body);
                let command = r.string()?;
                r.finish()?;
                let rows = command.rsplit_once(' ').and_then(|(_, n)| n.parse().ok());
                // A COPY's tag stays its Query's: the question asked after it is copyman's.
                if !(self.op.tag.as_deref()).is_some_and(|t| t.starts_with("COPY")) {
                    self.op.tag = Some(command.clone());
                }
                self.events
                    .push_back(Event::CommandComplete { tag: command, rows });
                Ok(())
            }
            b'I' => {
                Reader::new(tag, body).finish()?;
                self.op.tag = Some("EMPTY QUERY".to_owned());
                Ok(())
            }
            b'H' => {
                let (format, columns) = parse_copy_response(tag, body)?;
                match self.op.kind {
                    OpKind::CopyOut => {
                        self.op.copy_started = true;
                        self.phase = Phase::CopyOut;
                        self.events
                            .push_back(Event::CopyOutStarted { format, columns });
                    }
                    OpKind::CopyIn | OpKind::Query => {
                        // Only a cancel ends a COPY OUT early; meanwhile discard its data.
                        self.op.failure = Some(if self.op.kind == OpKind::CopyIn {
                            SessionError::WrongDirection {
                                expected: "COPY FROM STDIN",
                                got: "COPY TO STDOUT",
                            }
                        } else {
                            SessionError::UnexpectedCopy {
                                got: "COPY TO STDOUT",
                                completed: false,
                            }
                        });
                        self.op.self_canceled = true;
                        self.events.push_back(Event::CancelNeeded);
                        self.phase = Phase::Draining { skip: 0 };
                    }
                }
                Ok(())
            }
            b'G' => {
                let (format, columns) = parse_copy_response(tag, body)?;
                match self.op.kind {
                    OpKind::CopyIn => {
                        self.op.copy_started = true;
                        self.phase = Phase::CopyIn;
                        self.events
                            .push_back(Event::CopyInStarted { format, columns });
                    }
                    OpKind::CopyOut => {
                        self.op.failure = Some(SessionError::WrongDirection {
                            expected: "COPY TO STDOUT",
                            got: "COPY FROM STDIN",
                        });
                        self.refuse_copy_in(
                            "copyman: expected COPY ... TO STDOUT, got COPY FROM STDIN",
                        )?;
                    }
                    OpKind::Query => {
                        self.op.failure = Some(SessionError::UnexpectedCopy {
                            got: "COPY FROM STDIN",
                            completed: false,
                        });
                        self.refuse_copy_in(
                            "copyman: COPY FROM STDIN is not allowed in a plain query",
                        )?;
                    }
                }
                Ok(())
            }
            b'W' => Err(SessionError::protocol(
                "COPY BOTH (replication) is not supported",
            )),
            b'Z' => self.on_ready(body),
            _ => Err(self.unexpected(tag)),
        }
    }

    /// Makes the server drop a COPY IN nobody asked for.
    fn refuse_copy_in(&mut self, reason: &str) -> Result<(), SessionError> {
        copyman_wire::message::encode_copy_fail(reason, &mut self.output)?;
        self.op.self_canceled = true;
        self.phase = Phase::CopyInEnding;
        Ok(())
    }

    /// A message other than CopyData while draining.
    fn on_draining_message(&mut self, tag: u8, body: &[u8]) -> Result<(), SessionError> {
        match tag {
            // The rest of the COPY OUT (or of the statement) is not wanted.
            b'c' | b'H' | b'T' | b'D' | b'I' | b'n' => Ok(()),
            b'C' => self.on_query_message(tag, body),
            b'G' => {
                parse_copy_response(tag, body)?;
                self.op.failure.get_or_insert(SessionError::WrongDirection {
                    expected: "COPY TO STDOUT",
                    got: "COPY FROM STDIN",
                });
                self.refuse_copy_in("copyman: expected COPY ... TO STDOUT, got COPY FROM STDIN")
            }
            b'Z' => self.on_ready(body),
            _ => Err(self.unexpected(tag)),
        }
    }

    /// An authentication request.
    fn on_authentication(&mut self, body: &[u8]) -> Result<(), SessionError> {
        let mut r = Reader::new(b'R', body);
        let code = r.i32()?;
        let phase = std::mem::replace(&mut self.phase, Phase::Failed);
        match (code, phase) {
            (0, Phase::Startup | Phase::Password) => {
                r.finish()?;
                if self.config.channel_binding == ChannelBinding::Require && !self.channel_bound {
                    if self.tls_server_end_point.is_none() {
                        self.refuse_unbound("no")?;
                    }
                    return Err(SessionError::auth(
                        "channel binding required, but server authenticated client without \
                         channel binding",
                    ));
                }
                self.phase = Phase::AwaitReady;
                self.authenticated = true;
            }
            (0, Phase::Sasl(_)) => {
                return Err(SessionError::auth(
                    "the server accepted authentication before the SCRAM exchange completed",
                ));
            }
            (3, Phase::Startup) => {
                r.finish()?;
                self.refuse_unbound("cleartext password")?;
                let password = self.password("cleartext")?;
                let mut message = BytesMut::new();
                frontend::password_message(password, &mut message)
                    .map_err(|_| SessionError::auth("the password contains a nul byte"))?;
                self.output.extend_from_slice(&message);
                self.phase = Phase::Password;
            }
            (5, Phase::Startup) => {
                let salt = r.i32()?.to_be_bytes();
                r.finish()?;
                self.refuse_unbound("md5 password")?;
                let password = self.password("md5")?;
                let hash = md5_hash(self.config.user.as_bytes(), password, salt);
                frontend::password_message(hash.as_bytes(), &mut self.output)
                    .map_err(|_| r.malformed("unencodable md5 answer"))?;
                self.phase = Phase::Password;
            }
            (10, Phase::Startup) => {
                let mut mechanisms = Vec::new();
                loop {
                    let name = r.string()?;
                    if name.is_empty() {
                        break;
                    }
                    mechanisms.push(name);
                }
                r.finish()?;
                let offered = |name: &str| mechanisms.iter().any(|m| m == name);
                let binding = self
                    .tls_server_end_point
                    .clone()
                    .filter(|_| self.config.channel_binding != ChannelBinding::Disable);
                let (mechanism, scram_binding) = match binding {
                    Some(hash) if offered(SCRAM_SHA_256_PLUS) => {
                        (SCRAM_SHA_256_PLUS, ScramBinding::tls_server_end_point(hash))
                    }
                    // TLS and able to bind, but the server does not offer it: say so ('y'), so
                    // that a server which does support it detects the downgrade.
                    Some(_) if offered(SCRAM_SHA_256) => {
                        (SCRAM_SHA_256, ScramBinding::unrequested())
                    }
                    None if offered(SCRAM_SHA_256) => (SCRAM_SHA_256, ScramBinding::unsupported()),
                    _ => {
                        return Err(SessionError::auth(if offered(SCRAM_SHA_256_PLUS) {
                            "the server requires SCRAM-SHA-256-PLUS (channel binding), which needs \
                             a TLS connection and a server certificate copyman can hash"
                                .to_owned()
                        } else {
                            format!(
                                "unsupported SASL authentication mechanisms: {}",
                                mechanisms.join(", ")
                            )
                        }));
                    }
                };
                if mechanism != SCRAM_SHA_256_PLUS {
                    self.refuse_unbound("SCRAM-SHA-256 without channel binding")?;
                }
                let password = self.password(mechanism)?;
                let scram = ScramSha256::new(password, scram_binding);
                let mut message = BytesMut::new();
                frontend::sasl_initial_response(mechanism, scram.message(), &mut message)
                    .map_err(|_| r.malformed("unencodable SASL answer"))?;
                self.output.extend_from_slice(&message);
                self.channel_bound = mechanism == SCRAM_SHA_256_PLUS;
                self.phase = Phase::Sasl(Sasl::Continue(Box::new(scram)));
            }
            (11, Phase::Sasl(Sasl::Continue(mut scram))) => {
                scram.update(r.rest()).map_err(|e| {
                    SessionError::auth(format!("SCRAM-SHA-256: bad server-first-message: {e}"))
                })?;
                let mut message = BytesMut::new();
                frontend::sasl_response(scram.message(), &mut message)
                    .map_err(|_| r.malformed("unencodable SASL answer"))?;
                self.output.extend_from_slice(&message);
                self.phase = Phase::Sasl(Sasl::Final(scram));
            }
            (12, Phase::Sasl(Sasl::Final(mut scram))) => {
                scram.finish(r.rest()).map_err(|e| {
                    SessionError::auth(format!("SCRAM-SHA-256: the server's proof is wrong: {e}"))
                })?;
                self.phase = Phase::Password;
            }
            (2 | 6 | 7 | 8 | 9, Phase::Startup) => {
                let method = match code {
                    2 => "Kerberos V5",
                    6 => "SCM credentials",
                    9 => "SSPI",
                    _ => "GSS",
                };
                return Err(SessionError::auth(format!(
                    "unsupported authentication method: {method}"
                )));
            }
            (code, Phase::Startup) => {
                return Err(SessionError::auth(format!(
                    "unsupported authentication method: request code {code}"
                )));
            }
            (code, phase) => {
                self.phase = phase;
                return Err(SessionError::protocol(format!(
                    "unexpected authentication request {code} in state {}",
                    self.state()
                )));
            }
        }
        Ok(())
    }

    /// Fails authentication by `method` when channel binding is required.
    fn refuse_unbound(&self, method: &str) -> Result<(), SessionError> {
        if self.config.channel_binding == ChannelBinding::Require {
            // Without TLS no method could bind: libpq's words (its check_expected_areq, for
            // every request), not the server's choice (conn42 F3: `sslmode=disable` blamed the
            // server).
            if self.tls_server_end_point.is_none() {
                return Err(SessionError::auth(
                    "channel binding required, but SSL not in use (or its server certificate \
                     cannot be hashed)",
                ));
            }
            return Err(SessionError::auth(format!(
                "channel binding required, but the server asked for {method} authentication"
            )));
        }
        Ok(())
    }

    fn password(&self, method: &str) -> Result<&[u8], SessionError> {
        self.config.password.as_deref().ok_or_else(|| {
            SessionError::auth(format!(
                "password required by the server ({method}) but none given"
            ))
        })
    }
}

/// `server_version` as a number like `server_version_num`: `15.18 (Debian …)` → 150018,
/// `9.6.24` → 90624, `17devel` or `16beta1` → 170000 or 160000. `None` when it does not start
/// with a number.
pub fn parse_server_version(version: &str) -> Option<u32> {
    let numeric: &str = version
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .next()
        .unwrap_or_default();
    let mut parts = numeric
        .split('.')
        .filter(|p| !p.is_empty())
        .map(str::parse::<u32>);
    let major = parts.next()?.ok()?;
    let minor = parts.next().and_then(Result::ok).unwrap_or(0);
    if major >= 10 {
        major.checked_mul(10_000)?.checked_add(minor)
    } else {
        let patch = parts.next().and_then(Result::ok).unwrap_or(0);
        major
            .checked_mul(10_000)?
            .checked_add(minor.checked_mul(100)?)?
            .checked_add(patch)
    }
}

fn parse_parameter(body: &[u8]) -> Result<(String, String), SessionError> {
    let mut r = Reader::new(b'S', body);
    let name = r.string()?;
    let value = r.string()?;
    r.finish()?;
    Ok((name, value))
}

fn parse_copy_response(tag: u8, body: &[u8]) -> Result<(CopyFormat, usize), SessionError> {
    let mut r = Reader::new(tag, body);
    let format = match r.u8()? {
        0 => CopyFormat::Text,
        1 => CopyFormat::Binary,
        _ => return Err(r.malformed("unknown copy format")),
    };
    let columns = usize::try_from(r.i16()?).map_err(|_| r.malformed("negative column count"))?;
    for _ in 0..columns {
        r.i16()?;
    }
    r.finish()?;
    Ok((format, columns))
}

/// A RowDescription's column names, decoded in the session's `client_encoding`.
fn parse_row_description(body: &[u8], encoding: &str) -> Result<Vec<String>, SessionError> {
    let mut r = Reader::new(b'T', body);
    let count = usize::try_from(r.i16()?).map_err(|_| r.malformed("negative column count"))?;
    let mut names = Vec::with_capacity(count);
    for _ in 0..count {
        names.push(crate::statement::decode_text(r.cstr()?, encoding));
        // Table OID, column number, type OID, size, modifier, format.
        r.bytes(4 + 2 + 4 + 2 + 4 + 2)?;
    }
    r.finish()?;
    Ok(names)
}

/// A DataRow's values as text, decoded in the session's `client_encoding`
/// ([`statement::decode_text`](crate::statement::decode_text)).
fn parse_data_row(body: &[u8], encoding: &str) -> Result<Vec<Option<String>>, SessionError> {
    let mut r = Reader::new(b'D', body);
    let count = usize::try_from(r.i16()?).map_err(|_| r.malformed("negative column count"))?;
    let mut row = Vec::with_capacity(count);
    for _ in 0..count {
        let len = r.i32()?;
        if len < 0 {
            row.push(None);
            continue;
        }
        let len = usize::try_from(len).map_err(|_| r.malformed("bad value length"))?;
        row.push(Some(crate::statement::decode_text(r.bytes(len)?, encoding)));
    }
    r.finish()?;
    Ok(row)
}

/// `reason` as a CopyFail carries it: characters beyond ASCII written `\u{XXXX}`, a NUL byte
/// `\x00` (a C string ends there: the message could not be sent, and the COPY was given up by
/// closing its connection — an excerpt of binary input read as CSV quoted one: files65 F1). The server
/// reads it in the session's client_encoding and converts it to its own to quote it in its
/// error: one its encoding cannot hold (another destination's error quoted into a LATIN1
/// server) failed the COPY with 22P05 instead, said as that destination's own error
/// (recheck43 F2). It is cut to [`COPY_FAIL_REASON_MAX`] bytes, ending `...`: the server reads
/// a CopyFail of at most 10 000 bytes (`PQ_SMALL_MESSAGE_LIMIT`), and a longer one (an excerpt
/// of a 5 MB field, a source's long error) lost the protocol's synchronization: every
/// destination's connection was closed, not its COPY failed (files67 F4).
///
/// ```
/// use copyman_core::session::{copy_fail_reason, COPY_FAIL_REASON_MAX};
///
/// assert_eq!(copy_fail_reason("plain"), "plain");
/// assert_eq!(copy_fail_reason("ключ é"), "\\u{43a}\\u{43b}\\u{44e}\\u{447} \\u{e9}");
/// assert_eq!(copy_fail_reason("a\0b"), "a\\x00b");
/// let field = "ж".repeat(5000);
/// let long = copy_fail_reason(&field);
/// assert!(long.len() <= COPY_FAIL_REASON_MAX && long.ends_with("\\u{436}..."));
/// ```
pub fn copy_fail_reason(reason: &str) -> std::borrow::Cow<'_, str> {
    if reason.is_ascii() && !reason.contains('\0') && reason.len() <= COPY_FAIL_REASON_MAX {
        return reason.into();
    }
    let mut said = String::with_capacity(reason.len().min(COPY_FAIL_REASON_MAX));
    for c in reason.chars() {
        let escaped = match c {
            '\0' => "\\x00".to_owned(),
            c if c.is_ascii() => c.to_string(),
            c => c.escape_unicode().to_string(),
        };
        // Whole characters only, room left for the mark.
        if said.len() + escaped.len() > COPY_FAIL_REASON_MAX - 3 {
            said.push_str("...");
            break;
        }
        said.push_str(&escaped);
    }
    said.into()
}

/// The longest reason a CopyFail carries ([`copy_fail_reason`]), in bytes: well inside the
/// 10 000 bytes a server reads of that message.
pub const COPY_FAIL_REASON_MAX: usize = 2000;
