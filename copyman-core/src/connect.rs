//! How a connection is made: the order of hosts, addresses and TLS attempts ([`Plan`]), and
//! libpq's `connect_timeout` ([`Deadline`]). Both adapters follow them, so they connect alike.
//!
//! # The plan
//!
//! [`Plan`] is libpq's connection loop without its IO: the hosts of the configuration in order
//! (each resolved when its turn comes, a `hostaddr` used as given), every address of a host, and on
//! each TCP address the TLS mode's attempts (`prefer`: TLS, then plain). An address that does not
//! answer moves on to the next one; a server that answered and said no ends the plan, as in libpq
//! (a wrong password is not retried on the next host), unless it said it cannot take connections
//! now (SQLSTATE 57P03: starting up, shutting down, a standby without hot standby), which moves on
//! to the next host as libpq 14 and later do. See [`Plan`] for the loop.
//!
//! When nothing connects, the error says every attempt that failed, as libpq's does: one failed
//! attempt is its own error; more are [`AllFailed`], each with where it went.
//!
//! # The deadline
//!
//! libpq's `connect_timeout`: one deadline for the whole attempt to connect to one address.
//!
//! As in libpq, the time limit covers everything an attempt on one address does — the TCP
//! connect, the SSLRequest and TLS handshake (and the plain retry that `sslmode=prefer` or
//! `allow` may make on the same address), the startup and authentication — and it is a deadline,
//! not a limit per system call: a server that trickles a byte now and then still runs out of it.
//! When it passes, the attempt fails with [`TimeoutExpired`] ("timeout expired") and the next
//! host, if any, is tried with a deadline of its own.
//!
//! The adapters read the clock (the time elapsed since the attempt on a host began) and arm their
//! sockets or timers; what is left, and when it is over, is computed here.
//!
//! Unlike libpq, a timeout below 2 seconds is taken as given (libpq raises it to 2).

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

// `core::net` holds the address types only; copyman-core never opens a socket.
use core::net::{IpAddr, SocketAddr};

/// The error of an attempt that ran out of its `connect_timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("timeout expired")]
pub struct TimeoutExpired;

impl TimeoutExpired {
    /// As an IO error of kind [`io::ErrorKind::TimedOut`] whose text is "timeout expired".
    pub fn io() -> io::Error {
        io::Error::new(io::ErrorKind::TimedOut, Self)
    }

    /// Whether `error` is this one.
    pub fn is(error: &io::Error) -> bool {
        error.get_ref().is_some_and(|e| e.is::<Self>())
    }
}

/// The deadline of one host's connection attempt, on the attempt's own clock: the adapter notes
/// when the attempt on a host began and hands in the time elapsed since (core reads no clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    limit: Option<Duration>,
}

impl Deadline {
    /// The deadline of an attempt with `connect_timeout`, or none. A timeout of zero means none,
    /// as in libpq.
    pub fn new(connect_timeout: Option<Duration>) -> Self {
        Self {
            limit: connect_timeout.filter(|t| !t.is_zero()),
        }
    }

    /// How long after its start the attempt expires, if it does.
    pub fn limit(&self) -> Option<Duration> {
        self.limit
    }

    /// The time left `elapsed` after the attempt began, to arm a socket timeout or a timer with:
    /// `Ok(None)` without a deadline.
    ///
    /// # Errors
    /// [`TimeoutExpired`] (as an IO error) once the deadline has passed.
    pub fn remaining(&self, elapsed: Duration) -> io::Result<Option<Duration>> {
        match self.limit {
            None => Ok(None),
            Some(limit) => match limit.checked_sub(elapsed) {
                Some(left) if !left.is_zero() => Ok(Some(left)),
                _ => Err(TimeoutExpired::io()),
            },
        }
    }

    /// Whether the deadline has passed `elapsed` after the attempt began.
    pub fn expired(&self, elapsed: Duration) -> bool {
        self.limit.is_some_and(|limit| elapsed >= limit)
    }
}

/// A [`Deadline`] started at a moment the adapter read from its clock (core reads none): the
/// deadline of every attempt on one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Started {
    deadline: Deadline,
    at: Instant,
}

impl Started {
    /// `deadline`, started `at`.
    pub fn new(deadline: Deadline, at: Instant) -> Self {
        Self { deadline, at }
    }

    /// The time left at `now`, to arm a socket timeout or a timer with: `Ok(None)` without a
    /// deadline.
    ///
    /// # Errors
    /// [`TimeoutExpired`] (as an IO error) once the deadline has passed.
    pub fn remaining(&self, now: Instant) -> io::Result<Option<Duration>> {
        self.deadline
            .remaining(now.saturating_duration_since(self.at))
    }

    /// Whether the deadline has passed at `now`.
    pub fn expired(&self, now: Instant) -> bool {
        self.deadline
            .expired(now.saturating_duration_since(self.at))
    }
}

/// What an adapter does next to connect ([`Connecting::next`]).
#[must_use]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Resolve `name` with `port` and hand the outcome to [`Connecting::resolved`].
    Resolve {
        /// The host name.
        name: String,
        /// The port to pair the addresses with.
        port: u16,
    },
    /// Try `target` (with TLS first if `tls`) before `deadline`, and hand the outcome to
    /// [`Connecting::attempted`].
    Attempt {
        /// Where.
        target: Target,
        /// Whether to negotiate TLS first.
        tls: bool,
        /// The attempt's deadline, shared with the other attempts on the same address.
        deadline: Started,
    },
}

/// A host name the resolver could not turn into addresses: the error [`Connecting`] keeps for
/// it (the adapters' `Error::Resolve`, libpq's "could not translate host name").
#[derive(Debug)]
pub struct ResolveError {
    /// The host name.
    pub host: String,
    /// What the resolver said.
    pub source: io::Error,
}

/// One failed attempt of a connection that failed ([`AllFailed`]): where it went, and why.
#[derive(Debug)]
pub struct Attempted<E> {
    /// Where: the address (`host:port`) or socket path tried, or the host name that could not be
    /// resolved.
    pub target: String,
    /// Why it failed.
    pub error: E,
}

/// Every attempt to connect failed, and there was more than one (hosts, their addresses, the
/// TLS and the plain attempt of `sslmode=prefer`): each one's error, in the order they were
/// made. libpq names each attempt too; one failed attempt is reported as its own error.
#[derive(Debug)]
pub struct AllFailed<E>(pub Vec<Attempted<E>>);

/// What [`Connecting`] needs of an adapter's error: how an attempt that failed with it failed,
/// and the errors it makes itself.
pub trait AttemptError: From<PlanError> + From<ResolveError> + From<AllFailed<Self>> {
    /// Whether the server could not be reached or answered and refused.
    fn failure(&self) -> Failure;
}

/// libpq's connection loop over a [`Plan`], with its bookkeeping: one [`Deadline`] per address
/// (started when its first attempt is), and the error to report when nothing connects (every
/// failed attempt's, [`AllFailed`] when there were several). The adapter's loop only resolves
/// names and makes attempts:
///
/// ```
/// use std::time::Instant;
///
/// use copyman_core::connect::{AllFailed, AttemptError, Connecting, Failure, Host, Next, Plan};
/// # #[derive(Debug)]
/// # struct Error(String);
/// # impl From<copyman_core::connect::PlanError> for Error {
/// #     fn from(e: copyman_core::connect::PlanError) -> Self { Self(e.to_string()) }
/// # }
/// # impl From<copyman_core::connect::ResolveError> for Error {
/// #     fn from(e: copyman_core::connect::ResolveError) -> Self { Self(e.host) }
/// # }
/// impl From<AllFailed<Error>> for Error {
///     fn from(all: AllFailed<Error>) -> Self {
///         let each: Vec<_> =
///             all.0.iter().map(|a| format!("{}: {}", a.target, a.error.0)).collect();
///         Self(each.join("; "))
///     }
/// }
/// impl AttemptError for Error {
///     fn failure(&self) -> Failure {
///         Failure::Refused
///     }
/// }
///
/// fn connect(plan: Plan) -> Result<String, Error> {
///     let mut connecting = Connecting::new(plan, None);
///     loop {
///         match connecting.next(Instant::now())? {
///             Next::Resolve { .. } => connecting.resolved(Ok(["10.0.0.1:5432".parse().unwrap()])),
///             Next::Attempt { tls, .. } => {
///                 // Here the adapter opens the socket, negotiates TLS, starts the session.
///                 let attempt = Err(Error(format!("refused (tls: {tls})")));
///                 if let Some(conn) = connecting.attempted(attempt) {
///                     return Ok(conn);
///                 }
///             }
///         }
///     }
/// }
///
/// let plan = Plan::new(&[Host::Tcp("db".into())], &[5432], &[], &[true, false]).unwrap();
/// // TLS, then plain on the same address: both attempts' errors are reported, each named.
/// assert_eq!(
///     connect(plan).unwrap_err().0,
///     "db (10.0.0.1:5432) (TLS): refused (tls: true); db (10.0.0.1:5432) (without TLS): refused (tls: false)"
/// );
/// ```
#[derive(Debug)]
pub struct Connecting<E> {
    plan: Plan,
    deadline: Deadline,
    started: Option<Started>,
    /// The name of the last [`Next::Resolve`].
    resolving: Option<String>,
    /// The target of the last [`Next::Attempt`], and whether over TLS.
    attempting: Option<(String, bool)>,
    /// Every failed attempt so far, and every name that did not resolve.
    failed: Vec<Attempted<E>>,
    /// The kind of session asked for ([`SessionAttrs`]); `Any` on `prefer-standby`'s second
    /// pass.
    attrs: SessionAttrs,
    /// `prefer-standby`'s second pass: the plan again from its start, any session taken.
    again: Option<Plan>,
    /// A session of the wrong kind was made: a second pass has a server to find.
    wrong_session: bool,
    /// The target whose attempt with TLS failed last, if the last attempt that failed was one.
    failed_tls: Option<String>,
    /// The connection made went without TLS where the attempt with TLS on its address had
    /// just failed ([`tls_given_up`](Self::tls_given_up)).
    tls_given_up: bool,
}

impl<E: AttemptError> Connecting<E> {
    /// The loop over `plan`, each address with `connect_timeout` ([`Deadline::new`]).
    pub fn new(plan: Plan, connect_timeout: Option<Duration>) -> Self {
        Self {
            plan,
            deadline: Deadline::new(connect_timeout),
            started: None,
            resolving: None,
            attempting: None,
            failed: Vec::new(),
            attrs: SessionAttrs::Any,
            again: None,
            wrong_session: false,
            failed_tls: None,
            tls_given_up: false,
        }
    }

    /// The loop asks for sessions of the kind `attrs` ([`SessionAttrs`]; the adapter checks
    /// each made against [`session_attrs`](Self::session_attrs) and reports one of another kind
    /// as [`Failure::WrongSession`]). With [`SessionAttrs::PreferStandby`], as libpq: every host
    /// is asked for a standby first; if none is one, every host again, any session taken — not
    /// after a server refused, nor where no host made a session.
    ///
    /// ```
    /// use std::time::Instant;
    ///
    /// use copyman_core::connect::{
    ///     AllFailed, AttemptError, Connecting, Failure, Host, Next, Plan, SessionAttrs,
    /// };
    /// # #[derive(Debug)]
    /// # struct Failed(Failure, String);
    /// # impl From<copyman_core::connect::PlanError> for Failed {
    /// #     fn from(e: copyman_core::connect::PlanError) -> Self { Self(Failure::Final, e.to_string()) }
    /// # }
    /// # impl From<copyman_core::connect::ResolveError> for Failed {
    /// #     fn from(e: copyman_core::connect::ResolveError) -> Self { Self(Failure::Unreachable, e.host) }
    /// # }
    /// # impl From<AllFailed<Failed>> for Failed {
    /// #     fn from(all: AllFailed<Failed>) -> Self {
    /// #         let each: Vec<_> = all.0.iter().map(|a| a.error.1.clone()).collect();
    /// #         Self(Failure::Refused, each.join("; "))
    /// #     }
    /// # }
    /// # impl AttemptError for Failed {
    /// #     fn failure(&self) -> Failure { self.0 }
    /// # }
    /// // Hosts named for what they are; each attempt's kind asked, and the host connected to.
    /// fn connect(kind: SessionAttrs, hosts: &[&str]) -> (Vec<String>, Result<String, String>) {
    ///     let list: Vec<Host> = hosts.iter().map(|h| Host::Tcp((*h).into())).collect();
    ///     let plan = Plan::new(&list, &[5432], &[], &[false]).unwrap();
    ///     let mut connecting = Connecting::<Failed>::new(plan, None).with_session_attrs(kind);
    ///     let (mut asked, mut host) = (Vec::new(), String::new());
    ///     loop {
    ///         match connecting.next(Instant::now()) {
    ///             Err(e) => return (asked, Err(e.1)),
    ///             Ok(Next::Resolve { name, .. }) => {
    ///                 host = name;
    ///                 connecting.resolved(Ok(["10.0.0.1:5432".parse().unwrap()]));
    ///             }
    ///             Ok(Next::Attempt { .. }) => {
    ///                 let kind = connecting.session_attrs();
    ///                 asked.push(format!("{host}:{}", kind.name()));
    ///                 let standby = if host == "standby" { "on" } else { "off" };
    ///                 let made = match host.as_str() {
    ///                     "down" => Err(Failed(Failure::Unreachable, "down".into())),
    ///                     "refuses" => Err(Failed(Failure::Refused, "refused".into())),
    ///                     _ => match kind.refusal(|p| (p == "in_hot_standby").then_some(standby)) {
    ///                         Some(why) => Err(Failed(Failure::WrongSession, why)),
    ///                         None => Ok(host.clone()),
    ///                     },
    ///                 };
    ///                 if let Some(host) = connecting.attempted(made) {
    ///                     return (asked, Ok(host));
    ///                 }
    ///             }
    ///         }
    ///     }
    /// }
    /// use SessionAttrs::{PreferStandby, Primary, Standby};
    /// let (asked, got) = connect(PreferStandby, &["primary", "standby"]);
    /// assert_eq!((asked.len(), got.unwrap().as_str()), (2, "standby"));
    /// let (asked, got) = connect(PreferStandby, &["down", "primary"]);
    /// assert_eq!(got.unwrap(), "primary");
    /// assert_eq!(asked, ["down:prefer-standby", "primary:prefer-standby", "down:any", "primary:any"]);
    /// // Not after a server refused, nor where nothing answered.
    /// let (asked, got) = connect(PreferStandby, &["primary", "refuses", "standby"]);
    /// assert_eq!((asked.len(), got.unwrap_err().as_str()), (2, "server is not in hot standby mode; refused"));
    /// assert_eq!(connect(PreferStandby, &["down", "down"]).0.len(), 2);
    /// assert_eq!(connect(Standby, &["primary"]).1.unwrap_err(), "server is not in hot standby mode");
    /// assert_eq!(connect(Primary, &["standby", "primary"]).1.unwrap(), "primary");
    /// ```
    #[must_use]
    pub fn with_session_attrs(mut self, attrs: SessionAttrs) -> Self {
        self.again = (attrs == SessionAttrs::PreferStandby).then(|| self.plan.clone());
        self.attrs = attrs;
        self
    }

    /// The kind of session the current attempt must make
    /// ([`with_session_attrs`](Self::with_session_attrs)).
    pub fn session_attrs(&self) -> SessionAttrs {
        self.attrs
    }

    /// What to do next, `now` being the adapter's clock (the first attempt on an address starts
    /// its deadline). The same step until it is reported on.
    ///
    /// # Errors
    /// Nothing is left to try: the error to fail with — the one failed attempt's, [`AllFailed`]
    /// with each of several, or [`PlanError::NoHost`] if none was made.
    pub fn next(&mut self, now: Instant) -> Result<Next, E> {
        match self.plan.step() {
            Step::Resolve { name, port } => {
                self.resolving = Some(name.clone());
                Ok(Next::Resolve { name, port })
            }
            Step::Attempt { target, tls, fresh } => {
                let deadline = match self.started {
                    Some(started) if !fresh => started,
                    // One deadline for everything tried on this address (libpq's).
                    _ => *self.started.insert(Started::new(self.deadline, now)),
                };
                self.attempting = Some((target.to_string(), tls));
                Ok(Next::Attempt {
                    target,
                    tls,
                    deadline,
                })
            }
            _ if self.wrong_session && !self.plan.refused() && self.again.is_some() => {
                // prefer-standby found no standby, and no server refused: any session now.
                self.plan = self.again.take().unwrap_or_else(|| self.plan.clone());
                self.attrs = SessionAttrs::Any;
                self.started = None;
                self.next(now)
            }
            _ => {
                let mut failed = std::mem::take(&mut self.failed);
                Err(match failed.len() {
                    0 => PlanError::NoHost.into(),
                    1 => failed.remove(0).error,
                    _ => AllFailed(failed).into(),
                })
            }
        }
    }

    /// The resolver's outcome for the last [`Next::Resolve`]: the addresses to try, or an error
    /// ([`ResolveError`]) to report with the others if nothing connects; the next host is tried
    /// then.
    pub fn resolved<A: IntoIterator<Item = SocketAddr>>(&mut self, outcome: io::Result<A>) {
        match outcome {
            Ok(addrs) => self.plan.resolved(addrs),
            Err(source) => {
                self.plan.resolved([]);
                let host = self.resolving.take().unwrap_or_default();
                self.failed.push(Attempted {
                    target: host.clone(),
                    error: ResolveError { host, source }.into(),
                });
            }
        }
    }

    /// The server of the last [`Next::Attempt`] declined TLS and the attempt went on without it
    /// ([`Plan::tls_declined`]): a refusal of it is not tried again without TLS. Say it before
    /// [`attempted`](Self::attempted).
    pub fn tls_declined(&mut self) {
        self.plan.tls_declined();
    }

    /// What the last [`Next::Attempt`] found out besides its outcome ([`Learned`]). Say it
    /// before [`attempted`](Self::attempted).
    pub fn learned(&mut self, learned: Learned) {
        if learned.tls_declined {
            self.plan.tls_declined();
        }
        if learned.authenticated {
            self.plan.authenticated();
        }
    }

    /// The outcome of the last [`Next::Attempt`]: the connection it made, or `None` after
    /// taking its error (the plan goes on as [`AttemptError::failure`] says).
    pub fn attempted<C>(&mut self, outcome: Result<C, E>) -> Option<C> {
        match outcome {
            Ok(conn) => {
                let (target, tls) = self.attempting.take().unwrap_or_default();
                self.tls_given_up = !tls && self.failed_tls.as_deref() == Some(target.as_str());
                Some(conn)
            }
            Err(e) => {
                self.plan.failed(e.failure());
                self.wrong_session |= e.failure() == Failure::WrongSession;
                let (mut target, tls) = self.attempting.take().unwrap_or_default();
                self.failed_tls = tls.then(|| target.clone());
                // The same address again without TLS (sslmode prefer, allow): each attempt says
                // which it was (conn42 F3: one address twice, the two errors unexplained).
                if let Some(before) = self.failed.last_mut().filter(|b| b.target == target) {
                    let (first, then) = if tls {
                        (" (without TLS)", " (TLS)")
                    } else {
                        (" (TLS)", " (without TLS)")
                    };
                    before.target.push_str(first);
                    target.push_str(then);
                }
                self.failed.push(Attempted { target, error: e });
                None
            }
        }
    }
}

impl<E> Connecting<E> {
    /// Why TLS was given up for the connection just made ([`attempted`](Self::attempted)
    /// returned it): its attempt with TLS on the same address failed, and `sslmode=prefer`
    /// (libpq's way) went on without TLS — the connection is not encrypted, where a client
    /// whose TLS the server's agrees with (psql's OpenSSL) may have been. `None` where TLS was
    /// not tried, was declined by the server, or is what the connection has.
    ///
    /// ```
    /// use std::time::Instant;
    ///
    /// use copyman_core::connect::{Connecting, Host, Next, Plan};
    /// # #[derive(Debug)]
    /// # struct Error(String);
    /// # impl From<copyman_core::connect::PlanError> for Error {
    /// #     fn from(e: copyman_core::connect::PlanError) -> Self { Self(e.to_string()) }
    /// # }
    /// # impl From<copyman_core::connect::ResolveError> for Error {
    /// #     fn from(e: copyman_core::connect::ResolveError) -> Self { Self(e.host) }
    /// # }
    /// # impl From<copyman_core::connect::AllFailed<Error>> for Error {
    /// #     fn from(_: copyman_core::connect::AllFailed<Error>) -> Self { Self(String::new()) }
    /// # }
    /// # impl copyman_core::connect::AttemptError for Error {
    /// #     fn failure(&self) -> copyman_core::connect::Failure {
    /// #         copyman_core::connect::Failure::Refused
    /// #     }
    /// # }
    /// let plan = Plan::new(&[Host::Tcp("db".into())], &[5432], &[], &[true, false]).unwrap();
    /// let mut connecting = Connecting::<Error>::new(plan, None);
    /// let made = loop {
    ///     match connecting.next(Instant::now()).unwrap() {
    ///         Next::Resolve { .. } => connecting.resolved(Ok(["10.0.0.1:5432".parse().unwrap()])),
    ///         Next::Attempt { tls: true, .. } => {
    ///             assert!(connecting.attempted::<()>(Err(Error("handshake failed".into()))).is_none());
    ///         }
    ///         Next::Attempt { tls: false, .. } => break connecting.attempted(Ok("plain")),
    ///     }
    /// };
    /// assert_eq!(made, Some("plain"));
    /// assert_eq!(connecting.tls_given_up().map(|e| e.0.as_str()), Some("handshake failed"));
    /// ```
    pub fn tls_given_up(&self) -> Option<&E> {
        (self.failed.last().map(|a| &a.error)).filter(|_| self.tls_given_up)
    }
}

/// The port when the configuration names none (libpq's).
pub const DEFAULT_PORT: u16 = 5432;

/// The Unix socket directory a configuration that names no host connects to, as Debian's
/// libpq does (and only it: not `localhost` after it, which may be another server — a tunnel, a
/// container — that authenticates by other rules).
pub const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";

/// A host of a connection's configuration, as the `postgres` crates' `Config::get_hosts` gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A host name or an address literal.
    Tcp(String),
    /// A directory holding the server's Unix socket.
    Unix(PathBuf),
}

/// Where one connection attempt goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A TCP address.
    Tcp {
        /// Where to connect.
        addr: SocketAddr,
        /// The host name the address came from: what TLS verifies the certificate against.
        name: String,
    },
    /// The path of a Unix socket (`<dir>/.s.PGSQL.<port>`); one that begins with `@` is a
    /// name in Linux's abstract namespace ([`abstract_name`]).
    Unix(PathBuf),
}

/// The longest a cancel's step may take, whatever the connection's `connect_timeout`: a
/// CancelRequest is one small packet a server takes at once, and one that takes none (frozen,
/// a listener that never answers) would hold what waits for the cancel: under a `connect_timeout`
/// of 300 s (`--stall-timeout 5min`), a job stopping on a signal waited 117 s for a copy to end
/// whose source's cancel went to a listener that never answered.
pub const CANCEL_TIMEOUT: Duration = Duration::from_secs(10);

/// What cancelling a connection's backend takes: the address its session is on (not its host
/// name's first address, where another server may answer), the CancelRequest (which holds the
/// backend's secret key) and how long each step of sending it may take. Each adapter's
/// `CancelToken` carries one and sends it. Its `Debug` shows the address only: whoever reads
/// the key may cancel.
#[derive(Clone)]
pub struct CancelKey {
    /// Where the CancelRequest goes.
    pub target: Target,
    /// The CancelRequest message.
    pub request: bytes::Bytes,
    /// The bound of each step of sending it (the connection's `connect_timeout`, at most
    /// [`CANCEL_TIMEOUT`]).
    pub timeout: Duration,
}

impl fmt::Debug for CancelKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelKey")
            .field("target", &self.target.to_string())
            .finish_non_exhaustive()
    }
}

/// The name in Linux's abstract namespace that a [`Target::Unix`] path stands for: the rest of
/// one that begins with `@` (libpq's `host=@name`); `None` for a file. The adapters make the
/// socket address of it.
pub fn abstract_name(path: &std::path::Path) -> Option<&[u8]> {
    path.as_os_str().as_encoded_bytes().strip_prefix(b"@")
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // The host as given beside the address it reached, where they differ (conn64 F1: a
            // refused `localhost` was said as 127.0.0.1 alone): `localhost (127.0.0.1:5432)`.
            Self::Tcp { addr, name }
                if name.is_empty() || name.parse::<IpAddr>() == Ok(addr.ip()) =>
            {
                write!(f, "{addr}")
            }
            Self::Tcp { addr, name } => write!(f, "{name} ({addr})"),
            Self::Unix(path) => write!(f, "{}", path.display()),
        }
    }
}

/// Why a configuration's hosts cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// More than one port, but not one per host.
    #[error(
        "the number of ports must be one or match the number of hosts ({hosts} hosts, {ports} ports)"
    )]
    Ports {
        /// How many hosts.
        hosts: usize,
        /// How many ports.
        ports: usize,
    },
    /// `hostaddr` values, but not one per host.
    #[error("could not match {hosts} host names to {hostaddrs} hostaddr values")]
    HostAddrs {
        /// How many hosts.
        hosts: usize,
        /// How many `hostaddr` values.
        hostaddrs: usize,
    },
    /// Every host was tried (or resolved to no address) and no attempt left an error to say.
    #[error("no host to connect to")]
    NoHost,
    /// A Unix socket's path longer than a socket address holds (libpq's words; checked, as
    /// libpq checks it, before any attempt).
    #[error("Unix-domain socket path \"{path}\" is too long (maximum {max} bytes)")]
    SocketPathTooLong {
        /// The socket's path.
        path: String,
        /// The longest path a socket address holds (`sun_path` less its NUL).
        max: usize,
    },
}

/// The longest Unix socket path a socket address holds: Linux's `sun_path` (108 bytes) less
/// its terminating NUL.
pub const MAX_SOCKET_PATH: usize = 107;

/// The refusal of the socket of socket directory `dir` for `port` where its path is longer than
/// a socket address holds ([`PlanError::SocketPathTooLong`], libpq's words), as [`Plan::new`]
/// refuses it; `None` where it fits.
pub fn socket_path_too_long(dir: &std::path::Path, port: u16) -> Option<PlanError> {
    let path = dir.join(format!(".s.PGSQL.{port}"));
    (path.as_os_str().len() > MAX_SOCKET_PATH).then(|| PlanError::SocketPathTooLong {
        path: path.display().to_string(),
        max: MAX_SOCKET_PATH,
    })
}

/// What an adapter does next to connect ([`Plan::step`]).
#[must_use]
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// Resolve `name` (DNS, or an address literal) with `port`, and hand the addresses to
    /// [`Plan::resolved`] (none if it failed: keep the error, it may be the one to report).
    Resolve {
        /// The host name.
        name: String,
        /// The port to pair the addresses with.
        port: u16,
    },
    /// Try `target`: open it, the SSLRequest and TLS handshake if `tls`, then startup and
    /// authentication. On success the connection is made; else report with [`Plan::failed`].
    Attempt {
        /// Where.
        target: Target,
        /// Whether to negotiate TLS first.
        tls: bool,
        /// Whether this is the first attempt on this address: start its [`Deadline`] now (the
        /// TLS and the plain attempt of `prefer` share one, as in libpq).
        fresh: bool,
    },
    /// Nothing is left to try: fail with the errors seen.
    GiveUp,
}

/// What an attempt found out besides its outcome, for the plan ([`Connecting::learned`]): the
/// adapter sets what it saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Learned {
    /// The server declined TLS, and the attempt went on without it ([`Plan::tls_declined`]).
    pub tls_declined: bool,
    /// The server accepted the login ([`Session::authenticated`](crate::session::Session::authenticated),
    /// [`Plan::authenticated`]).
    pub authenticated: bool,
}

/// How an attempt failed: what decides the next [`Step`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Failure {
    /// Nothing answered: the socket could not be opened, or the deadline passed. The next
    /// address, then the next host.
    Unreachable,
    /// The server answered and refused: TLS refused or its handshake failing, authentication,
    /// no such database. The same address the other way if the TLS mode has one; else the plan
    /// gives up, as libpq does (the next host is not asked).
    Refused,
    /// The server answered that it cannot take connections now (SQLSTATE 57P03: starting up,
    /// shutting down, in recovery without hot standby): the next host, as libpq's
    /// `try_next_host` (14 and later) — the failover a host list is written for.
    NotNow,
    /// The session was made but is not of the kind asked for ([`SessionAttrs`]: read-only where
    /// `read-write` was asked): the next host, as libpq's `CONNECTION_CHECK_TARGET`, though the
    /// server accepted the login.
    WrongSession,
    /// The attempt ended in a way no other attempt can mend, and nothing more is tried, as
    /// libpq gives up: what answered does not speak PostgreSQL's protocol (its answer to the
    /// SSLRequest was neither `S`, `N` nor an error: a web server on that port — "received
    /// invalid response to SSL negotiation"), or the client cannot authenticate as asked
    /// (channel binding required where it cannot be, no password for a password request).
    /// The same address without TLS only added a second error (conn42 F3, F9).
    Final,
}

impl Failure {
    /// The SQLSTATE of a server that cannot take connections now ([`Failure::NotNow`]).
    pub const CANNOT_CONNECT_NOW: &'static str = "57P03";

    /// Whether a connection whose attempts on one host ended this way goes on to the next
    /// host: yes unless the server answered and refused.
    pub fn tries_next_host(self) -> bool {
        !matches!(self, Self::Refused | Self::Final)
    }
}

/// The kind of session a connection asks for (libpq's `target_session_attrs`): a host whose
/// session is not of that kind is left for the next one ([`Failure::WrongSession`]) — the way a
/// connection string names "whichever of these servers is the primary now".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SessionAttrs {
    /// Any session (the default).
    #[default]
    Any,
    /// One that takes writes: neither in hot standby nor read-only by default.
    ReadWrite,
    /// One that takes no writes: in hot standby, or read-only by default.
    ReadOnly,
    /// A primary: a server not in hot standby (libpq's `primary`).
    Primary,
    /// A standby: a server in hot standby (libpq's `standby`).
    Standby,
    /// A standby if any host is one, else any session (libpq's `prefer-standby`: every host is
    /// asked twice, [`Connecting::with_session_attrs`]).
    PreferStandby,
}

impl SessionAttrs {
    /// Why a session whose server reported these parameters (`in_hot_standby`,
    /// `default_transaction_read_only`, which servers of PostgreSQL 14 and later report at
    /// startup; `parameter` looks one up) is not of this kind, in libpq's words; `None` when it
    /// is. A server that reports neither cannot be told apart here (libpq asks it with a
    /// query): said so, and the next host is tried.
    ///
    /// ```
    /// use copyman_core::connect::SessionAttrs;
    ///
    /// let standby = |name: &str| match name {
    ///     "in_hot_standby" => Some("on"),
    ///     "default_transaction_read_only" => Some("off"),
    ///     _ => None,
    /// };
    /// assert_eq!(SessionAttrs::ReadWrite.refusal(standby).as_deref(), Some("session is read-only"));
    /// assert_eq!(SessionAttrs::ReadOnly.refusal(standby), None);
    /// assert_eq!(SessionAttrs::Any.refusal(|_| None), None);
    /// ```
    pub fn refusal<'a>(&self, parameter: impl Fn(&str) -> Option<&'a str>) -> Option<String> {
        let on = |name: &str| parameter(name).map(|v| v == "on");
        let (standby, read_only) = (on("in_hot_standby"), on("default_transaction_read_only"));
        let told = match self {
            Self::Any => return None,
            Self::ReadWrite | Self::ReadOnly => standby.is_some() || read_only.is_some(),
            Self::Primary | Self::Standby | Self::PreferStandby => standby.is_some(),
        };
        if !told {
            return Some(format!(
                "the server does not report whether it is {} (PostgreSQL 13 or older): copyman \
                 cannot tell target_session_attrs={} there",
                match self {
                    Self::ReadWrite | Self::ReadOnly => "read-only",
                    _ => "in hot standby",
                },
                self.name()
            ));
        }
        let standby = standby.unwrap_or(false);
        let read_only = standby || read_only.unwrap_or(false);
        let why = match self {
            Self::ReadWrite if read_only => "session is read-only",
            Self::ReadOnly if !read_only => "session is not read-only",
            Self::Primary if standby => "server is in hot standby mode",
            Self::Standby | Self::PreferStandby if !standby => "server is not in hot standby mode",
            _ => return None,
        };
        Some(why.to_owned())
    }

    /// The kind libpq names `name` (`any`, `read-write`, `read-only`, `primary`, `standby`,
    /// `prefer-standby`); `None` for another word.
    ///
    /// ```
    /// use copyman_core::connect::SessionAttrs;
    ///
    /// assert_eq!(SessionAttrs::from_name("prefer-standby"), Some(SessionAttrs::PreferStandby));
    /// assert_eq!(SessionAttrs::from_name("replica"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::Any,
            Self::ReadWrite,
            Self::ReadOnly,
            Self::Primary,
            Self::Standby,
            Self::PreferStandby,
        ]
        .into_iter()
        .find(|kind| kind.name() == name)
    }

    /// Its name, as libpq spells it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Any => "any",
            Self::ReadWrite => "read-write",
            Self::ReadOnly => "read-only",
            Self::Primary => "primary",
            Self::Standby => "standby",
            Self::PreferStandby => "prefer-standby",
        }
    }
}

/// The order of a connection's attempts: libpq's loop over hosts, addresses and TLS modes, with
/// no IO. The adapter resolves names and makes the attempts; the plan says which, and when to
/// stop.
///
/// ```
/// use copyman_core::connect::{Failure, Host, Plan, Step, Target};
///
/// // host=db1,db2 with sslmode=prefer: TLS, then plain, on each address.
/// let hosts = [Host::Tcp("db1".into()), Host::Tcp("db2".into())];
/// let mut plan = Plan::new(&hosts, &[5432], &[], &[true, false]).unwrap();
/// let Step::Resolve { name, port } = plan.step() else { unreachable!() };
/// assert_eq!((name.as_str(), port), ("db1", 5432));
/// plan.resolved(Vec::new()); // db1 does not resolve: the adapter keeps its error
/// let Step::Resolve { .. } = plan.step() else { unreachable!() };
/// plan.resolved(vec!["10.0.0.2:5432".parse().unwrap()]);
/// let Step::Attempt { target, tls: true, fresh: true } = plan.step() else { unreachable!() };
/// assert!(matches!(target, Target::Tcp { ref name, .. } if name == "db2"));
/// plan.failed(Failure::Refused); // the handshake failed: plain on the same address
/// assert!(matches!(plan.step(), Step::Attempt { tls: false, fresh: false, .. }));
/// plan.failed(Failure::Refused); // the server said no: that is the answer
/// assert_eq!(plan.step(), Step::GiveUp);
/// ```
///
/// [`Plan::step`] returns the same step until the adapter reports on it ([`Plan::resolved`],
/// [`Plan::failed`]); after a successful attempt the plan is simply dropped.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Hosts not yet begun: the host, its `hostaddr` if any, its port.
    hosts: VecDeque<(Host, Option<IpAddr>, u16)>,
    /// Addresses of the current host not yet begun.
    addresses: VecDeque<Target>,
    /// The address being tried, and the index of its next attempt.
    current: Option<(Target, usize)>,
    /// Whether each attempt on a TCP address uses TLS, in order.
    tcp_attempts: Vec<bool>,
    /// The server of the current attempt declined TLS, and the attempt went on without it.
    declined: bool,
    /// The server of the current attempt accepted its login.
    authenticated: bool,
    /// The plan gave up.
    done: bool,
    /// It gave up on a server's answer ([`Plan::refused`]).
    refused: bool,
}

impl Plan {
    /// The plan for a configuration's `hosts`, `ports` and `hostaddrs` (as the `postgres` crates'
    /// `Config` gives them), trying each TCP address once per entry of `tcp_tls` (`true`: with
    /// TLS), in order; Unix sockets are tried once, without TLS.
    ///
    /// No host means the default socket directory only, as libpq (or, with `hostaddr`s only,
    /// each address as its own name); no port means 5432; one port applies to every host.
    ///
    /// # Errors
    /// [`PlanError`] when the ports or `hostaddr`s do not pair up with the hosts.
    pub fn new(
        hosts: &[Host],
        ports: &[u16],
        hostaddrs: &[IpAddr],
        tcp_tls: &[bool],
    ) -> Result<Self, PlanError> {
        let defaults: Vec<Host>;
        let hosts = if hosts.is_empty() && !hostaddrs.is_empty() {
            // Only addresses: each is its own name too.
            defaults = hostaddrs.iter().map(|a| Host::Tcp(a.to_string())).collect();
            &defaults[..]
        } else if hosts.is_empty() {
            defaults = vec![Host::Unix(PathBuf::from(DEFAULT_SOCKET_DIR))];
            &defaults[..]
        } else {
            hosts
        };
        if ports.len() > 1 && ports.len() != hosts.len() {
            return Err(PlanError::Ports {
                hosts: hosts.len(),
                ports: ports.len(),
            });
        }
        if !hostaddrs.is_empty() && hostaddrs.len() != hosts.len() {
            return Err(PlanError::HostAddrs {
                hosts: hosts.len(),
                hostaddrs: hostaddrs.len(),
            });
        }
        let hosts: VecDeque<(Host, Option<IpAddr>, u16)> = hosts
            .iter()
            .enumerate()
            .map(|(i, host)| {
                let port = match ports {
                    [] => DEFAULT_PORT,
                    [one] => *one,
                    many => many[i],
                };
                (host.clone(), hostaddrs.get(i).copied(), port)
            })
            .collect();
        // A socket path that cannot be connected to is said before any attempt, as libpq says
        // it (it was the standard library's "path must be shorter than SUN_LEN").
        for (host, addr, port) in &hosts {
            if let (Host::Unix(dir), None) = (host, addr)
                && let Some(too_long) = socket_path_too_long(dir, *port)
            {
                return Err(too_long);
            }
        }
        Ok(Self {
            hosts,
            addresses: VecDeque::new(),
            current: None,
            tcp_attempts: if tcp_tls.is_empty() {
                vec![false]
            } else {
                tcp_tls.to_vec()
            },
            declined: false,
            authenticated: false,
            done: false,
            refused: false,
        })
    }

    /// What to do next. The same step until it is reported on.
    pub fn step(&mut self) -> Step {
        loop {
            if self.done {
                return Step::GiveUp;
            }
            if let Some((target, next)) = &self.current {
                let tls = match target {
                    Target::Tcp { .. } => self.tcp_attempts[*next],
                    Target::Unix(_) => false,
                };
                return Step::Attempt {
                    target: target.clone(),
                    tls,
                    fresh: *next == 0,
                };
            }
            if let Some(target) = self.addresses.pop_front() {
                self.current = Some((target, 0));
                continue;
            }
            let Some((host, hostaddr, port)) = self.hosts.front().cloned() else {
                self.done = true;
                continue;
            };
            match (host, hostaddr) {
                // As libpq: `hostaddr` is where to connect, `host` the name TLS verifies.
                (host, Some(addr)) => {
                    let name = match host {
                        Host::Tcp(name) if !name.is_empty() => name,
                        _ => addr.to_string(),
                    };
                    self.hosts.pop_front();
                    self.addresses.push_back(Target::Tcp {
                        addr: SocketAddr::new(addr, port),
                        name,
                    });
                }
                (Host::Unix(dir), None) => {
                    self.hosts.pop_front();
                    self.addresses
                        .push_back(Target::Unix(dir.join(format!(".s.PGSQL.{port}"))));
                }
                // libpq 14's `host=@name`: a socket in Linux's abstract namespace, not a name
                // to look up (the `postgres` crates take only `/…` for a socket directory).
                (Host::Tcp(name), None) if name.starts_with('@') => {
                    self.hosts.pop_front();
                    self.addresses.push_back(Target::Unix(PathBuf::from(format!(
                        "{name}/.s.PGSQL.{port}"
                    ))));
                }
                (Host::Tcp(name), None) => return Step::Resolve { name, port },
            }
        }
    }

    /// The addresses the name of the last [`Step::Resolve`] resolved to, in the resolver's
    /// order; none if it could not be resolved (the next host is tried).
    pub fn resolved(&mut self, addrs: impl IntoIterator<Item = SocketAddr>) {
        let Some((Host::Tcp(name), None, _)) = self.hosts.front() else {
            // Not waiting for a resolution: caller misuse, nothing to do.
            return;
        };
        let name = name.clone();
        self.hosts.pop_front();
        self.addresses
            .extend(addrs.into_iter().map(|addr| Target::Tcp {
                addr,
                name: name.clone(),
            }));
    }

    /// The server of the current [`Step::Attempt`] with TLS answered the SSLRequest with `N`,
    /// and the attempt went on without TLS (the mode allows that): if the server refuses it,
    /// the same address is not tried again without TLS — that was just done. libpq retries
    /// `prefer` without TLS only after a refusal over TLS.
    pub fn tls_declined(&mut self) {
        self.declined = self.current.is_some();
    }

    /// The server of the current [`Step::Attempt`] accepted its login (AuthenticationOk) before
    /// the attempt failed (no such database, too many connections, the server gone): that is
    /// the server's answer, and the plan gives up, as libpq does after `CONNECTION_AUTH_OK` —
    /// neither the other TLS mode (a cleartext `password` would go out unencrypted after the TLS
    /// attempt's) nor another address or host is tried.
    pub fn authenticated(&mut self) {
        self.authenticated = self.current.is_some();
    }

    /// The last [`Step::Attempt`] failed this way.
    pub fn failed(&mut self, failure: Failure) {
        let declined = std::mem::take(&mut self.declined);
        if failure == Failure::WrongSession {
            // The next host, whatever the login was.
            self.authenticated = false;
            self.current = None;
            self.addresses.clear();
            return;
        }
        if std::mem::take(&mut self.authenticated) && self.current.is_some() {
            self.current = None;
            (self.done, self.refused) = (true, true);
            return;
        }
        let Some((target, next)) = &mut self.current else {
            return;
        };
        let attempts = match target {
            Target::Tcp { .. } => self.tcp_attempts.len(),
            Target::Unix(_) => 1,
        };
        match failure {
            Failure::Unreachable => self.current = None,
            // The host's other addresses too: the next host.
            Failure::NotNow | Failure::WrongSession => {
                self.current = None;
                self.addresses.clear();
            }
            Failure::Refused if *next + 1 < attempts && !declined => *next += 1,
            Failure::Refused | Failure::Final => {
                self.current = None;
                (self.done, self.refused) = (true, true);
            }
        }
    }

    /// Whether the plan gave up on a server's answer (a refusal, a failure after the login, a
    /// [`Failure::Final`]) rather than for having tried everything.
    pub fn refused(&self) -> bool {
        self.refused
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn hostaddr_is_where_to_connect_and_host_the_name() {
        let hosts = [Host::Tcp("db.invalid".into()), Host::Tcp("h2".into())];
        let addrs: [IpAddr; 2] = ["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()];
        let mut plan = Plan::new(&hosts, &[5000], &addrs, &[]).unwrap();
        let mut got = Vec::new();
        while let Step::Attempt { target, .. } = plan.step() {
            if let Target::Tcp { addr, name } = target {
                got.push(format!("{addr} {name}"));
            }
            plan.failed(Failure::Unreachable);
        }
        assert_eq!(got, ["127.0.0.1:5000 db.invalid", "[::1]:5000 h2"]);
        let mut only = Plan::new(&[], &[5000], &addrs[..1], &[]).unwrap();
        assert!(matches!(
            only.step(),
            Step::Attempt { target: Target::Tcp { name, .. }, .. } if name == "127.0.0.1"
        ));
        assert_eq!(
            Plan::new(&hosts, &[], &addrs[..1], &[]).unwrap_err(),
            PlanError::HostAddrs {
                hosts: 2,
                hostaddrs: 1
            }
        );
        assert!(matches!(
            Plan::new(&hosts, &[1, 2, 3], &[], &[]),
            Err(PlanError::Ports { hosts: 2, ports: 3 })
        ));
    }

    #[test]
    fn no_host_means_the_socket_directory_only() {
        let mut plan = Plan::new(&[], &[], &[], &[true, false]).unwrap();
        assert_eq!(
            plan.step(),
            Step::Attempt {
                target: Target::Unix(PathBuf::from("/var/run/postgresql/.s.PGSQL.5432")),
                tls: false,
                fresh: true,
            }
        );
        // A Unix socket has one attempt, without TLS; then nothing, as libpq (`localhost` after
        // it reached another server by TCP: library35 F6).
        plan.failed(Failure::Unreachable);
        assert_eq!(plan.step(), Step::GiveUp);
    }

    /// libpq's `host=@name` is an abstract socket (one attempt, no TLS), not a name to resolve.
    #[test]
    fn an_at_sign_host_is_an_abstract_socket() {
        let hosts = [Host::Tcp("@pg".into())];
        let mut plan = Plan::new(&hosts, &[5433], &[], &[true, false]).unwrap();
        assert_eq!(
            plan.step(),
            Step::Attempt {
                target: Target::Unix(PathBuf::from("@pg/.s.PGSQL.5433")),
                tls: false,
                fresh: true,
            }
        );
        assert_eq!(
            abstract_name(std::path::Path::new("@pg/.s.PGSQL.5433")),
            Some(&b"pg/.s.PGSQL.5433"[..])
        );
        assert_eq!(
            abstract_name(std::path::Path::new("/tmp/.s.PGSQL.5433")),
            None
        );
    }

    #[test]
    fn unreachable_moves_on_and_refused_ends_the_plan() {
        let hosts = [Host::Tcp("a".into()), Host::Tcp("b".into())];
        let mut plan = Plan::new(&hosts, &[1, 2], &[], &[true, false]).unwrap();
        assert!(matches!(plan.step(), Step::Resolve { port: 1, .. }));
        // The step is the same until it is reported on.
        assert!(matches!(plan.step(), Step::Resolve { port: 1, .. }));
        plan.resolved([addr("10.0.0.1:1"), addr("10.0.0.2:1")]);
        let attempt = |tls, fresh, at: &str| Step::Attempt {
            target: Target::Tcp {
                addr: addr(at),
                name: if at.ends_with(":1") { "a" } else { "b" }.into(),
            },
            tls,
            fresh,
        };
        assert_eq!(plan.step(), attempt(true, true, "10.0.0.1:1"));
        // Nothing answered on the first address: the plain attempt is skipped.
        plan.failed(Failure::Unreachable);
        assert_eq!(plan.step(), attempt(true, true, "10.0.0.2:1"));
        plan.failed(Failure::Refused);
        assert_eq!(plan.step(), attempt(false, false, "10.0.0.2:1"));
        plan.failed(Failure::Unreachable);
        assert!(matches!(plan.step(), Step::Resolve { port: 2, .. }));
        plan.resolved([addr("10.0.0.3:2")]);
        assert_eq!(plan.step(), attempt(true, true, "10.0.0.3:2"));
        plan.failed(Failure::Refused);
        plan.failed(Failure::Refused);
        assert_eq!(plan.step(), Step::GiveUp);
        // A server without TLS that refuses the plain session its `N` led to: that was the plain
        // attempt, not made twice; one that does not answer in it moves on as before.
        let mut plan = Plan::new(&hosts, &[1, 2], &[], &[true, false]).unwrap();
        let _ = plan.step();
        plan.resolved([addr("10.0.0.1:1"), addr("10.0.0.2:1")]);
        assert_eq!(plan.step(), attempt(true, true, "10.0.0.1:1"));
        plan.tls_declined();
        plan.failed(Failure::Unreachable);
        assert_eq!(plan.step(), attempt(true, true, "10.0.0.2:1"));
        plan.tls_declined();
        plan.failed(Failure::Refused);
        assert_eq!(plan.step(), Step::GiveUp);
        // Refused after its login was accepted over TLS (too many connections): the answer, not
        // retried in plain (the password would go again, unencrypted), nor on another address.
        let mut plan = Plan::new(&hosts, &[1, 2], &[], &[true, false]).unwrap();
        let _ = plan.step();
        plan.resolved([addr("10.0.0.1:1"), addr("10.0.0.2:1")]);
        assert_eq!(plan.step(), attempt(true, true, "10.0.0.1:1"));
        plan.authenticated();
        plan.failed(Failure::Refused);
        assert_eq!(plan.step(), Step::GiveUp);
        // A name that does not resolve is skipped; nothing left is giving up.
        let mut plan = Plan::new(&hosts[..1], &[], &[], &[]).unwrap();
        assert!(matches!(plan.step(), Step::Resolve { .. }));
        plan.resolved([]);
        assert_eq!(plan.step(), Step::GiveUp);
    }

    #[test]
    fn a_server_that_cannot_take_connections_now_moves_on_to_the_next_host() {
        let hosts = [Host::Tcp("a".into()), Host::Tcp("b".into())];
        let mut plan = Plan::new(&hosts, &[1, 2], &[], &[true, false]).unwrap();
        assert!(matches!(plan.step(), Step::Resolve { port: 1, .. }));
        plan.resolved([addr("10.0.0.1:1"), addr("10.0.0.2:1")]);
        assert!(matches!(plan.step(), Step::Attempt { tls: true, .. }));
        // 57P03 over TLS: neither plain on the same address nor the host's other address.
        plan.failed(Failure::NotNow);
        assert!(matches!(plan.step(), Step::Resolve { port: 2, .. }));
        plan.resolved([addr("10.0.0.3:2")]);
        assert!(matches!(plan.step(), Step::Attempt { tls: true, .. }));
        plan.failed(Failure::NotNow);
        assert_eq!(plan.step(), Step::GiveUp);
        assert!(Failure::NotNow.tries_next_host() && Failure::Unreachable.tries_next_host());
        assert!(!Failure::Refused.tries_next_host());
    }

    /// A socket path longer than a socket address holds is refused before any attempt, in
    /// libpq's words (conn40 F9: "path must be shorter than SUN_LEN").
    #[test]
    fn a_socket_path_too_long_is_refused_before_any_attempt() {
        let long = format!("/tmp/{}", "x".repeat(100));
        let error = Plan::new(&[Host::Unix(long.clone().into())], &[5432], &[], &[]).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "Unix-domain socket path \"{long}/.s.PGSQL.5432\" is too long (maximum 107 bytes)"
            )
        );
        assert!(Plan::new(&[Host::Unix("/tmp".into())], &[5432], &[], &[]).is_ok());
    }

    /// A session of the wrong kind (`target_session_attrs`) sends the plan to the next host,
    /// though its server accepted the login (after which any other failure gives up).
    #[test]
    fn a_session_of_the_wrong_kind_moves_on_to_the_next_host() {
        let hosts = [Host::Tcp("a".into()), Host::Tcp("b".into())];
        let mut plan = Plan::new(&hosts, &[1, 2], &[], &[true, false]).unwrap();
        assert!(matches!(plan.step(), Step::Resolve { port: 1, .. }));
        plan.resolved([addr("10.0.0.1:1"), addr("10.0.0.2:1")]);
        assert!(matches!(plan.step(), Step::Attempt { tls: true, .. }));
        plan.authenticated();
        plan.failed(Failure::WrongSession);
        assert!(matches!(plan.step(), Step::Resolve { port: 2, .. }));
        plan.resolved([addr("10.0.0.3:2")]);
        assert!(matches!(plan.step(), Step::Attempt { tls: true, .. }));
        plan.authenticated();
        plan.failed(Failure::Refused);
        assert_eq!(plan.step(), Step::GiveUp);
        assert!(Failure::WrongSession.tries_next_host());
        // What the servers report decides the kind; a server that reports neither is said.
        let reported = |standby: &'static str, read_only: &'static str| {
            move |name: &str| match name {
                "in_hot_standby" => Some(standby),
                "default_transaction_read_only" => Some(read_only),
                _ => None,
            }
        };
        assert_eq!(
            SessionAttrs::ReadWrite.refusal(reported("off", "off")),
            None
        );
        assert!(
            SessionAttrs::ReadWrite
                .refusal(reported("off", "on"))
                .is_some()
        );
        assert!(
            SessionAttrs::ReadWrite
                .refusal(reported("on", "off"))
                .is_some()
        );
        assert_eq!(SessionAttrs::ReadOnly.refusal(reported("off", "on")), None);
        assert!(
            SessionAttrs::ReadWrite
                .refusal(|_| None)
                .is_some_and(|why| why.contains("PostgreSQL 13 or older"))
        );
    }

    /// libpq's six kinds by their names, and a server that does not say whether it is a
    /// standby said as such.
    #[test]
    fn session_kinds_by_name_and_an_old_server() {
        use SessionAttrs::{Any, PreferStandby, Primary, ReadOnly, ReadWrite, Standby};
        for kind in [Any, ReadWrite, ReadOnly, PreferStandby, Primary, Standby] {
            assert_eq!(SessionAttrs::from_name(kind.name()), Some(kind));
        }
        let standby = |p: &str| (p == "in_hot_standby").then_some("on");
        assert_eq!(
            Primary.refusal(standby).as_deref(),
            Some("server is in hot standby mode")
        );
        assert_eq!(Standby.refusal(standby), None);
        assert!(
            Standby
                .refusal(|p| (p == "default_transaction_read_only").then_some("on"))
                .is_some_and(|why| why.contains("in hot standby (PostgreSQL 13 or older)"))
        );
    }

    #[test]
    fn one_deadline_for_the_whole_attempt() {
        let deadline = Deadline::new(Some(Duration::from_secs(2)));
        assert_eq!(
            deadline.remaining(Duration::from_millis(500)).unwrap(),
            Some(Duration::from_millis(1500))
        );
        let expired = deadline.remaining(Duration::from_secs(2)).unwrap_err();
        assert!(TimeoutExpired::is(&expired));
        assert_eq!(expired.to_string(), "timeout expired");
        assert!(deadline.expired(Duration::from_secs(3)));
        assert!(!deadline.expired(Duration::from_secs(1)));
        let none = Deadline::new(Some(Duration::ZERO));
        assert_eq!(none.remaining(Duration::from_secs(99)).unwrap(), None);
    }
}
