//! What both adapters' raw connections do alike, written once.
//!
//! A raw connection (copyman-sync's on blocking sockets, copyman-async's on tokio) is an
//! [`Endpoint`] and a socket. Everything it decides about the two is here: what a read of the
//! socket means for the session ([`handle_read`]), and the connection methods that differ between
//! the adapters only in being `async` — carrying out an operation (the loop over
//! [`Endpoint::poll`]'s steps), running SQL, starting a COPY, the notices — which
//! [`connection_glue!`](crate::connection_glue) expands once in each adapter's `Connection`.
//! How to connect is [`connect`](crate::connect)'s.

use std::fmt;
use std::io;
use std::sync::{Arc, OnceLock};

use crate::endpoint::Endpoint;
use crate::session::SessionError;

/// Ends a raw connection from another thread while it waits for its server (both adapters'
/// `Connection::closer`): for a watchdog that knows the server will not answer — a backend
/// frozen, or the network path to it lost, which no cancel reaches (the `copyman` command's
/// watch, for a destination that reads no more of its COPY: [`STALLED_UNREAD`]).
///
/// [`STALLED_UNREAD`]: crate::endpoint::STALLED_UNREAD
///
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::{Arc, OnceLock};
///
/// use copyman_core::connection::Closer;
///
/// let (slot, shut) = (Arc::new(OnceLock::new()), Arc::new(AtomicBool::new(false)));
/// let socket = Arc::clone(&shut);
/// let closer = Closer::new(Arc::clone(&slot), move || socket.store(true, Ordering::SeqCst));
/// closer.close("given up");
/// closer.close("again");
/// assert!(shut.load(Ordering::SeqCst));
/// assert_eq!(slot.get(), Some(&"given up"), "the first reason stays");
/// ```
#[derive(Clone)]
pub struct Closer {
    reason: Arc<OnceLock<&'static str>>,
    shut: Arc<dyn Fn() + Send + Sync>,
}

impl Closer {
    /// A closer that records its reason in `reason` (the connection's: its wait, and every later
    /// call, then fails with the connection closed, saying it) and shuts the socket with `shut`
    /// (a duplicate's `shutdown(2)`, both ways).
    pub fn new(
        reason: Arc<OnceLock<&'static str>>,
        shut: impl Fn() + Send + Sync + 'static,
    ) -> Self {
        Self {
            reason,
            shut: Arc::new(shut),
        }
    }

    /// Closes the connection, saying `reason`: its wait for the server returns, failing with
    /// the connection closed, and so does every later call. The server ends the session once
    /// it hears of it: a transaction open there is rolled back (a COPY in autocommit whose whole
    /// data it holds already may still commit). A second close keeps the first reason.
    pub fn close(&self, reason: &'static str) {
        let _ = self.reason.set(reason);
        (self.shut)();
    }
}

impl fmt::Debug for Closer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Closer")
            .field("reason", &self.reason.get())
            .finish_non_exhaustive()
    }
}

/// What a read of the socket into `buf` means for `endpoint`: the bytes read go to the session,
/// the socket's end ends it, and so does an error, which is returned. A read a signal
/// interrupted did nothing. A read that timed out (a blocking socket's timeout, copyman-sync's
/// waits) is returned and ends nothing: the operation is still under way, as when copyman-async
/// drops a future that waited too long, and the connection's next operation waits for its end
/// (a COPY whose start waited for a lock stays usable once the lock goes).
///
/// ```
/// use std::io;
///
/// use copyman_core::connection::handle_read;
/// use copyman_core::endpoint::Endpoint;
/// use copyman_core::session::{Session, SessionError, StartupConfig, State};
///
/// #[derive(Debug)]
/// enum Error {
///     Io(io::Error),
///     Session(SessionError),
/// }
/// # impl From<io::Error> for Error { fn from(e: io::Error) -> Self { Self::Io(e) } }
/// # impl From<SessionError> for Error { fn from(e: SessionError) -> Self { Self::Session(e) } }
///
/// let mut endpoint = Endpoint::new(Session::new(StartupConfig::new("app")));
/// let interrupted = Err(io::ErrorKind::Interrupted.into());
/// handle_read::<Error>(&mut endpoint, interrupted, &[]).unwrap();
/// assert_ne!(endpoint.session().state(), State::Closed);
/// let timed_out = Err(io::ErrorKind::TimedOut.into());
/// assert!(matches!(handle_read::<Error>(&mut endpoint, timed_out, &[]), Err(Error::Io(_))));
/// assert_ne!(endpoint.session().state(), State::Closed, "a timeout ends nothing");
/// let reset = Err(io::ErrorKind::ConnectionReset.into());
/// assert!(matches!(handle_read::<Error>(&mut endpoint, reset, &[]), Err(Error::Io(_))));
/// assert_eq!(endpoint.session().state(), State::Closed);
/// ```
///
/// # Errors
/// The read's error; the session's, for bytes it cannot take.
pub fn handle_read<E>(endpoint: &mut Endpoint, read: io::Result<usize>, buf: &[u8]) -> Result<(), E>
where
    E: From<io::Error> + From<SessionError>,
{
    match read {
        Ok(0) => endpoint.handle_eof(),
        Ok(n) => endpoint.handle_input(&buf[..n])?,
        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
        Err(e) if crate::stall::is_timeout(&e) => return Err(e.into()),
        Err(e) => {
            endpoint.handle_eof();
            return Err(e.into());
        }
    }
    Ok(())
}

/// Expands, inside an adapter's `impl Connection`, to the methods both adapters' connections
/// share: `session`, `is_closed`, `check`, `execute`, `query`, `take_notices`,
/// `take_notifications`, `keep_notices`, `command_tag`, `take_abandoned`, `cancel_token` (public), and
/// `run_query`, `start_copy`, `drive`, `abandon_copy_in`, `abandon_copy_out`.
///
/// Invoked bare for blocking methods, or as `connection_glue!(async await)` for `async` ones
/// (each call into the adapter then awaited). The connection has the fields `endpoint:
/// Endpoint`, `connect_timeout: Option<Duration>` and `target: Target` (where its session is),
/// the adapter a `CancelToken { key: CancelKey }` type, and the connection these methods of its
/// own, blocking or `async` alike:
///
/// - `settle(&mut self) -> Result<(), Error>`: before a new operation;
/// - `flush(&mut self) -> Result<(), Error>`: writes what the session has to send;
/// - `read_into_session(&mut self) -> Result<(), Error>`: reads once into the session
///   ([`handle_read`]);
/// - `poll_server(&mut self) -> Result<(), Error>`: reads into the session what the socket has
///   at hand, without waiting for more;
/// - `cancel(&self) -> Result<(), Error>`: sends a CancelRequest on a new connection.
///
/// and these, never waiting: `is_flushed(&self) -> bool` (no message is half written),
/// `try_write_all(&mut self, &[u8]) -> bool` (all of it written at once), `cancel_detached(&self)`
/// (a cancel sent in the background), `cancel_abandoned(&mut self) -> bool` (the cancel of a
/// COPY OUT given up, which the next call waits for), `close(&mut self, &'static str)`.
///
/// `Error` is the adapter's, in scope where the macro is expanded (the one
/// [`client_glue!`](crate::client_glue) makes).
#[macro_export]
#[doc(hidden)]
macro_rules! connection_glue {
    ($($async:ident $await:ident)?) => {
        /// The session underneath: server parameters, transaction status, backend key.
        pub fn session(&self) -> &$crate::session::Session {
            self.endpoint.session()
        }

        /// Whether the connection is known closed, for any reason: copyman closed it (see
        /// [`Error::Closed`]), or the server or the network ended it (a terminated backend, a
        /// reset, the end of the stream), as the last call that read it found. Every later call
        /// fails; connect again.
        pub fn is_closed(&self) -> bool {
            self.closed.is_some()
                || self.endpoint.session().state() == $crate::session::State::Closed
        }

        /// Reads, without waiting, what the server sent unasked, and says whether the session
        /// is still usable: a server that terminated the backend (its FATAL error waiting in the
        /// socket, e.g. 57P01 "terminating connection due to administrator command") ends the
        /// session, and this returns that error — the server's words, not the "broken pipe" a
        /// statement written to the closed socket would get.
        ///
        /// # Errors
        /// The server's error that ended the session, or the socket's.
        pub $($async)? fn check(&mut self) -> Result<(), Error> {
            use $crate::session::{Event, SessionError, State};
            self.settle()$(.$await)??;
            if self.endpoint.session().state() == State::Ready {
                self.poll_server()$(.$await)??;
            }
            let mut closed = None;
            while let Some(event) = self.endpoint.session_mut().poll_event() {
                if let Event::Closed(e) = event {
                    closed = Some(e);
                }
            }
            // The error that ended it, as every other call says it, though an earlier call
            // took its event (lib44 F6: a FATAL said by query() was "closed by the server" here).
            let ended = || self.endpoint.session().ended_with().cloned();
            match (closed, self.endpoint.session().state()) {
                (Some(e), _) => Err(e.into()),
                (None, State::Closed) => Err(ended().unwrap_or(SessionError::Closed).into()),
                _ => Ok(()),
            }
        }

        /// Runs SQL (one or more statements, simple query protocol) and returns the row count
        /// of the last statement that has one (0 otherwise).
        ///
        /// # Errors
        /// The server's error, with its SQLSTATE; the connection is usable again afterwards.
        pub $($async)? fn execute(&mut self, sql: &str) -> Result<u64, Error> {
            Ok(self.run_query(sql, false)$(.$await)??.1.unwrap_or(0))
        }

        /// Runs SQL and returns the rows it produced, as text (`None` for NULL).
        ///
        /// # Errors
        /// The server's error, with its SQLSTATE; the connection is usable again afterwards.
        pub $($async)? fn query(
            &mut self,
            sql: &str,
        ) -> Result<Vec<$crate::endpoint::Row>, Error> {
            Ok(self.run_query(sql, true)$(.$await)??.0)
        }

        /// Runs `sql`: its rows (if `rows`), and the count of its last command tag that has one.
        $($async)? fn run_query(
            &mut self,
            sql: &str,
            rows: bool,
        ) -> Result<(Vec<$crate::endpoint::Row>, Option<u64>), Error> {
            self.settle()$(.$await)??;
            match rows {
                true => self.endpoint.query(sql)?,
                false => self.endpoint.execute(sql)?,
            }
            match self.drive()$(.$await)?? {
                $crate::endpoint::Outcome::Statement { rows, count } => Ok((rows, count)),
                _ => Ok((Vec::new(), None)),
            }
        }

        /// Sends a COPY statement and waits for its COPY to start (the statement is checked
        /// first: nothing is sent for a statement of the wrong kind).
        pub(crate) $($async)? fn start_copy(
            &mut self,
            sql: &str,
            direction: $crate::statement::Direction,
        ) -> Result<$crate::start::Started, Error> {
            self.settle()$(.$await)??;
            self.endpoint.start_copy(sql, direction)?;
            match self.drive()$(.$await)?? {
                $crate::endpoint::Outcome::Started(started) => Ok(*started),
                _ => Err(Error::State("the COPY did not start")),
            }
        }

        /// Carries out the endpoint's operation: writes what it sends, reads what it waits for,
        /// sends its cancels, until it is over.
        pub(crate) $($async)? fn drive(
            &mut self,
        ) -> Result<$crate::endpoint::Outcome, Error> {
            loop {
                // What the step asks for goes out first: the server may be waiting for it.
                let step = self.endpoint.poll();
                let reads = self.endpoint.reads();
                if let Err(unsent) = self.flush()$(.$await)? {
                    // A server that ended the session (terminated, an idle timeout) said why
                    // before it closed: its FATAL, not the write's "Broken pipe", is the error.
                    // Only for a connection lost (a write that timed out is not waited for
                    // again: the server may say nothing).
                    if !unsent.is_closed() {
                        return Err(unsent);
                    }
                    // Read to its end (a lost connection's socket gives what it holds, then its
                    // end, at once): the session is then known closed, and every later call
                    // says so alike in both adapters (lib73 F2: an immediate shutdown's WARNING
                    // read, the session left open, one said "Broken pipe" again).
                    let mut said = Ok(());
                    for _ in 0..64 {
                        said = self.read_into_session()$(.$await)?;
                        let closed = self.endpoint.session().state()
                            == $crate::session::State::Closed;
                        if said.is_err() || closed {
                            break;
                        }
                    }
                    return Err(match said {
                        Err(said) if said.db_error().is_some() => said,
                        _ => unsent,
                    });
                }
                // A flush that waited to write read what the server said meanwhile: that may be
                // the whole answer the step waits for (a COPY the server failed before it read
                // the CopyFail), so the step is asked again rather than read for (a wait for
                // bytes that never come).
                let stale = self.endpoint.reads() != reads;
                match step {
                    $crate::endpoint::Step::Read if stale => {}
                    $crate::endpoint::Step::Read => self.read_into_session()$(.$await)??,
                    $crate::endpoint::Step::SendCancel => self.cancel()$(.$await)??,
                    $crate::endpoint::Step::Done(outcome) => return Ok(outcome?),
                }
            }
        }

        /// Gives up the COPY IN of `copy`, whose receiver is dropped midway, without waiting
        /// (core's [`abandon_copy_in`](crate::endpoint::Endpoint::abandon_copy_in)): its
        /// realignment and CopyFail written if the socket takes them at once (the connection's
        /// next call reads the answer), or the connection closed — and its backend cancelled
        /// too, as it may wait on a lock (a trigger's), holding its own, which the close alone
        /// does not end.
        pub(crate) fn abandon_copy_in(&mut self, copy: &$crate::local::CopyInStatement) {
            if self.is_closed() {
                return;
            }
            let flushed = self.is_flushed();
            match copy.abandon(&mut self.endpoint, flushed) {
                $crate::endpoint::Abandon::Nothing => {}
                $crate::endpoint::Abandon::Write(bytes) if self.try_write_all(&bytes) => {}
                _ => {
                    self.cancel_detached();
                    self.close($crate::endpoint::ABANDONED_COPY_IN);
                }
            }
        }

        /// Gives up the COPY OUT of `out`, whose producer is dropped midway (core's
        /// [`abandon_copy_out`](crate::endpoint::Endpoint::abandon_copy_out)): the session
        /// switched to draining and a server that still streams cancelled (the connection's
        /// next call reads the rest), or the connection closed where that cannot be done.
        pub(crate) fn abandon_copy_out(&mut self, out: &mut $crate::local::CopyOutStatement) {
            if self.is_closed() {
                return;
            }
            match out.abandon(&mut self.endpoint) {
                $crate::endpoint::Abandon::Nothing => {}
                $crate::endpoint::Abandon::Cancel if self.cancel_abandoned() => {}
                _ => self.close($crate::endpoint::ABANDONED_COPY_OUT),
            }
        }

        /// A [`CancelToken`] for whatever this connection's backend runs at the time it is
        /// used, to cancel it from another thread or task while the connection itself is busy
        /// (rust-postgres's `CancelToken`): the CancelRequest goes, on a new connection, to the
        /// address this session is on, each step bounded by `connect_timeout`, at most
        /// [`CANCEL_TIMEOUT`](crate::connect::CANCEL_TIMEOUT).
        ///
        /// # Errors
        /// The server gave no backend key.
        pub fn cancel_token(&self) -> Result<CancelToken, Error> {
            let request = self.endpoint.session().cancel_request().ok_or(
                Error::State("the server gave no backend key: cannot cancel"),
            )?;
            let most = $crate::connect::CANCEL_TIMEOUT;
            let timeout = self.connect_timeout.map_or(most, |limit| limit.min(most));
            let target = self.target.clone();
            Ok(CancelToken { key: $crate::connect::CancelKey { target, request, timeout } })
        }

        /// Takes the notices (NOTICE, WARNING, INFO, …) the server sent on this connection since
        /// the last call, in order: during its statements and during any COPY it took part in,
        /// as a producer (in the middle of the COPY OUT stream) or a receiver. At most
        /// [`KEPT_MESSAGES`](copyman_core::session::KEPT_MESSAGES) wait, the oldest dropped
        /// (counted) beyond: see
        /// [`Session::take_notices`](copyman_core::session::Session::take_notices).
        pub fn take_notices(&mut self) -> Vec<$crate::session::DbError> {
            self.endpoint.session_mut().take_notices()
        }

        /// How many notices and notifications were not kept since the last call (more than
        /// [`KEPT_MESSAGES`](copyman_core::session::KEPT_MESSAGES) waiting). See
        /// [`Session::take_dropped_messages`](copyman_core::session::Session::take_dropped_messages).
        pub fn take_dropped_messages(&mut self) -> u64 {
            self.endpoint.session_mut().take_dropped_messages()
        }

        /// Takes over the notices `earlier` (a connection to the same server this one replaces,
        /// its session lost) kept and nobody took yet: they come first from
        /// [`take_notices`](Self::take_notices). See
        /// [`Session::keep_earlier_notices`](copyman_core::session::Session::keep_earlier_notices).
        pub fn take_over_notices(&mut self, earlier: &mut Self) {
            let kept = earlier.take_notices();
            self.endpoint.session_mut().keep_earlier_notices(kept);
        }

        /// Puts `notices` before those waiting to be taken by [`take_notices`](Self::take_notices):
        /// what was said of this connection's server elsewhere (another session to it, such as a
        /// new session's refusal). See
        /// [`Session::keep_earlier_notices`](copyman_core::session::Session::keep_earlier_notices).
        pub fn keep_notices(&mut self, notices: Vec<$crate::session::DbError>) {
            self.endpoint.session_mut().keep_earlier_notices(notices);
        }

        /// Takes the notifications (`LISTEN` / `NOTIFY`) received on this connection since the
        /// last call, in order (py-postgresql's `iternotifies`).
        pub fn take_notifications(&mut self) -> Vec<$crate::session::Notification> {
            self.endpoint.session_mut().take_notifications()
        }

        /// The command tag of the last statement that completed on this connection, e.g. `COPY
        /// 10000` after a copy it took part in.
        pub fn command_tag(&self) -> Option<&str> {
            self.endpoint.session().command_tag()
        }

        /// What became of a COPY whose copy was dropped after its CopyDone went out (a copy
        /// dropped during its finish: the drop cannot take a commit back), once this
        /// connection's next call has waited for its end: `Some(Ok(Some(n)))` its `COPY n` (in
        /// autocommit, those rows are committed), `Some(Err(e))` the server's error that ended
        /// it (nothing of it committed); `None` when none ended so since the last call. Core's
        /// [`take_abandoned`](crate::endpoint::Endpoint::take_abandoned).
        pub fn take_abandoned(&mut self) -> Option<Result<Option<u64>, Error>> {
            (self.endpoint.take_abandoned()).map(|outcome| outcome.map_err(Error::from))
        }
    };
}
