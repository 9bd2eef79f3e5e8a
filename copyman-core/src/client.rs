//! What both adapters make of their client crate's types, written once.
//!
//! copyman-sync speaks `postgres`, copyman-async `tokio_postgres`. Their `Config` types are
//! distinct (and neither converts into the other) but have the same getters; their `Error` and
//! `DbError` are the same type. Core depends on neither crate, so what the adapters must decide
//! identically about them — which configuration parameters a raw connection refuses, the startup
//! parameters and host plan a configuration gives, the adapters' one `Error` type and what its
//! accessors say — is this one macro, [`client_glue!`](crate::client_glue), expanded once in each
//! adapter's `error` module with the client crate's name.
//!
//! The expansion refers to the client crate, `copyman_tls`, `socket2` and `thiserror` by name: the
//! adapters depend on all four.

use std::time::Duration;

/// The default of the clients' `keepalives_idle`: any other value was asked for. Without one a
/// raw connection leaves the system's idle time (Linux: 2 hours too), as libpq does.
pub const DEFAULT_KEEPALIVES_IDLE: Duration = Duration::from_secs(2 * 60 * 60);

/// What a client-bound receiver (`ClientReceiver`) runs on its client to tell whether it is in
/// a transaction block: a savepoint, which only a transaction block takes (outside one the
/// server refuses it: [`OUTSIDE_A_TRANSACTION`]), released at once by
/// [`TRANSACTION_PROBE_END`].
pub const TRANSACTION_PROBE: &str = "SAVEPOINT copyman_in_transaction";

/// Releases [`TRANSACTION_PROBE`]'s savepoint.
pub const TRANSACTION_PROBE_END: &str = "RELEASE SAVEPOINT copyman_in_transaction";

/// The SQLSTATE of [`TRANSACTION_PROBE`] outside a transaction block (no_active_sql_transaction).
pub const OUTSIDE_A_TRANSACTION: &str = "25P01";

/// Why a client-bound receiver is refused outside a transaction block: its client crate runs the
/// COPY in the extended protocol, whose implicit transaction commits at the Sync after the
/// `COPY n` the receiver's completion returns on — so a commit that fails (a deferred
/// constraint, a wait for a synchronous standby cut short) was reported nowhere, and the copy
/// said the rows were there while none were.
pub const NEEDS_A_TRANSACTION: &str = "a ClientReceiver needs its client in a transaction: \
     outside one, the client crate reports the COPY's `COPY n` before its commit and a commit \
     that fails (a deferred constraint) nowhere; begin one (`client.transaction()`), give the \
     receiver the transaction, and commit it once the copy succeeded";

/// What the innermost cause of `error` says: for a connection string the client crate refused,
/// which parameter and why (``invalid value for option `port` ``), under two layers that say
/// only "invalid connection string".
pub fn innermost(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// What an IO error of a connect says, as libpq says it: its words without Rust's
/// `(os error N)` (conn64 F1: noise to a DBA, who reads "Connection refused").
///
/// ```
/// use std::io;
/// let refused = io::Error::from_raw_os_error(111);
/// assert_eq!(copyman_core::client::os_words(&refused), "Connection refused");
/// ```
pub fn os_words(error: &std::io::Error) -> String {
    let words = error.to_string();
    match error.raw_os_error() {
        Some(code) => (words.strip_suffix(&format!(" (os error {code})")))
            .map_or_else(|| words.clone(), str::to_owned),
        None => words,
    }
}

/// Expands, in an adapter's `error` module, to its `Error` type, `ClientError`, and the functions
/// that read a client `Config`: `startup_config`, `tls_settings` and `plan`.
///
/// `$krate` is the client crate (`postgres` or `tokio_postgres`), `$name` the adapter's name for
/// the docs.
#[macro_export]
#[doc(hidden)]
macro_rules! client_glue {
    ($krate:ident, $name:literal) => {
        use ::std::io;

        use $crate::Diagnosis;
        use $crate::connect::{self, Failure, Plan};
        use $crate::session::{ChannelBinding, DbError, SessionError, StartupConfig};

        #[doc = concat!("What can go wrong with a ", $name, " connection or endpoint.")]
        #[derive(Debug, ::thiserror::Error)]
        #[non_exhaustive]
        pub enum Error {
            /// The connection string could not be parsed: said with what was wrong (the
            /// parameter, from the client crate's innermost cause).
            #[error("invalid connection string: {}", $crate::client::innermost(.0))]
            Config($krate::Error),
            /// The configuration sets a parameter copyman's raw connections cannot honour; it is
            /// refused rather than ignored.
            #[error(
                "connection parameter {parameter}={value} is not supported by copyman's raw connections"
            )]
            Unsupported {
                /// The parameter, as libpq names it (e.g. `target_session_attrs`).
                parameter: &'static str,
                /// Its value, as given.
                value: String,
            },
            /// A connection parameter is missing or unusable.
            #[error("invalid connection parameters: {0}")]
            Parameters(String),
            /// A host name could not be resolved to an address (libpq's words). The next host,
            /// if any, was tried; this is the error when none connected and this host came last.
            #[error("could not translate host name \"{host}\" to address")]
            Resolve {
                /// The host name.
                host: String,
                /// What the resolver said.
                #[source]
                source: io::Error,
            },
            /// Every attempt to connect failed, more than one (hosts, addresses, TLS and plain):
            /// each with where it went and why, in order, as libpq says them. The server's
            /// error ([`db_error`](Self::db_error)) is the last attempt's, if it said one.
            #[error("{}", attempts_text(.0))]
            Attempts(Vec<connect::Attempted<Error>>),
            /// No server could be reached: said with why (its `source()` too), as libpq and
            /// rust-postgres say it (the reason was in the source only, lib44 F1).
            #[error("could not connect to {target}: {}", $crate::client::os_words(.source))]
            Connect {
                /// The address tried last (host:port or socket path).
                target: String,
                /// Why.
                #[source]
                source: io::Error,
            },
            /// The connection string could not be read (a quote left open, a word without
            /// `=`), by copyman's own reading before the client crate's ([`Error::Config`]):
            /// what was wrong.
            #[error("invalid connection string: {0}")]
            Conninfo(String),
            /// TLS could not be set up: settings, certificate files, the server's refusal, the
            /// handshake.
            #[error(transparent)]
            Tls(::copyman_tls::TlsError),
            /// The session made is not of the kind `target_session_attrs` asks for (libpq's
            /// words: "session is read-only"); the next host was tried.
            #[error("{0}")]
            WrongSession(String),
            /// The session failed: the server's error (with SQLSTATE), authentication, protocol.
            #[error(transparent)]
            Session(#[from] SessionError),
            /// Reading or writing the socket failed (said with its cause, which is also its
            /// `source()`, as rust-postgres says its IO errors; a TLS alert in words:
            /// [`copyman_tls::io_error_words`]).
            #[error("{}", ::copyman_tls::io_error_words(.0))]
            Io(#[from] io::Error),
            /// The endpoint was used in a state where that is not possible.
            #[error("{0}")]
            State(&'static str),
            /// The connection was closed by copyman to keep a COPY from committing: its COPY
            /// ended midway (the copy failed there, was given up, or its endpoint was dropped)
            /// where it could not be failed on the connection; `reason` says which kind.
            #[error("connection closed: {reason}")]
            Closed {
                /// Why it was closed.
                reason: &'static str,
            },
            #[doc = concat!(
                "The `", stringify!($krate), "` client of a client-bound endpoint failed. The \
                 server's error, when it reported one, is copyman's [`DbError`] as for raw \
                 sessions (displayed the same: SQLSTATE, message, detail), through \
                 [`Error::db_error`]."
            )]
            #[error("{0}")]
            Client(ClientError),
        }

        impl Error {
            /// The server's error, if the server reported one (on a raw session or through the
            /// client of a client-bound endpoint alike).
            pub fn db_error(&self) -> Option<&DbError> {
                match self {
                    Self::Session(e) => e.db_error(),
                    Self::Client(e) => e.db_error.as_deref(),
                    Self::Attempts(each) => each.last().and_then(|a| a.error.db_error()),
                    _ => None,
                }
            }

            /// The server's SQLSTATE, if the server reported an error with one (an error in
            /// the old protocol's form, a fork failure's, has none).
            pub fn code(&self) -> Option<&str> {
                self.db_error().map(|e| e.code.as_str()).filter(|c| !c.is_empty())
            }

            /// Whether the connection is gone: closed by the server (EOF, a FATAL error, a
            /// reset) or by copyman. Its endpoint cannot be used again.
            pub fn is_closed(&self) -> bool {
                match self {
                    Self::Session(SessionError::Closed) | Self::Closed { .. } => true,
                    // The client's own "closed", or its socket's error (a reset): its connection
                    // task ended with it.
                    Self::Client(e) => {
                        e.error.is_closed()
                            || ::std::error::Error::source(&e.error).is_some_and(|s| s.is::<io::Error>())
                            || e.error.as_db_error().is_some_and(|db| {
                                matches!(db.severity(), "FATAL" | "PANIC")
                            })
                    }
                    Self::Io(e) => $crate::fault::is_connection_lost(e),
                    _ => self.db_error().is_some_and(DbError::is_fatal),
                }
            }

            /// Whether the error's own words say where it went (a host, an address), so that a
            /// list of attempts need not.
            fn names_target(&self) -> bool {
                matches!(
                    self,
                    Self::Connect { .. }
                        | Self::Resolve { .. }
                        | Self::Tls(
                            ::copyman_tls::TlsError::Handshake { .. }
                                | ::copyman_tls::TlsError::NotSupported { .. }
                                | ::copyman_tls::TlsError::BadResponse { .. }
                        )
                )
            }

            /// libpq's "timeout expired" for an attempt on `target` that ran out of its
            /// `connect_timeout`.
            pub(crate) fn timeout_expired(target: &connect::Target) -> Self {
                Self::Connect {
                    target: target.to_string(),
                    source: connect::TimeoutExpired::io(),
                }
            }

            /// A `ClientProducer`'s client, for a statement whose query changes data (a move,
            /// [`copy_writes`](crate::statement::copy_writes)), by its answer to core's
            /// [`TRANSACTION_PROBE`](crate::client::TRANSACTION_PROBE): in a transaction block
            /// (the probe's savepoint then to release), or refused outside one as a raw
            /// session's is ([`WritesOutsideTransaction`]: its change would commit as its rows
            /// are read, recheck49 F4).
            ///
            /// [`WritesOutsideTransaction`]: crate::statement::StatementError::WritesOutsideTransaction
            pub(crate) fn in_a_transaction_to_move(
                probe: Result<(), $krate::Error>,
            ) -> Result<(), Self> {
                let outside = $crate::client::OUTSIDE_A_TRANSACTION;
                match probe {
                    Ok(()) => Ok(()),
                    Err(e) if e.code().is_some_and(|c| c.code() == outside) => Err(Self::Session(
                        $crate::statement::StatementError::WritesOutsideTransaction { said: None }
                            .into(),
                    )),
                    Err(e) => Err(e.into()),
                }
            }

            /// A `ClientReceiver`'s client, by its answer to core's
            /// [`TRANSACTION_PROBE`](crate::client::TRANSACTION_PROBE): in a transaction block
            /// (the probe's savepoint then to release), or refused outside one
            /// ([`NEEDS_A_TRANSACTION`](crate::client::NEEDS_A_TRANSACTION)).
            pub(crate) fn in_a_transaction(probe: Result<(), $krate::Error>) -> Result<(), Self> {
                let outside = $crate::client::OUTSIDE_A_TRANSACTION;
                match probe {
                    Ok(()) => Ok(()),
                    Err(e) if e.code().is_some_and(|c| c.code() == outside) => {
                        Err(Self::State($crate::client::NEEDS_A_TRANSACTION))
                    }
                    Err(e) => Err(e.into()),
                }
            }

            /// What core's manager needs to know of an endpoint's error of this type.
            pub(crate) fn diagnose(error: &(dyn ::std::error::Error + 'static)) -> Diagnosis {
                match error.downcast_ref::<Self>() {
                    Some(e) => Diagnosis::new(e.db_error().cloned(), e.is_closed()),
                    None => Diagnosis::default(),
                }
            }
        }

        impl From<$krate::Error> for Error {
            fn from(error: $krate::Error) -> Self {
                Self::Client(ClientError::new(error))
            }
        }

        impl From<::copyman_tls::TlsError> for Error {
            /// A TLS error, but a connection string that could not be read, which is not one.
            fn from(error: ::copyman_tls::TlsError) -> Self {
                match error {
                    ::copyman_tls::TlsError::Conninfo(what) => Self::Conninfo(what),
                    error => Self::Tls(error),
                }
            }
        }

        impl From<connect::AllFailed<Error>> for Error {
            fn from(all: connect::AllFailed<Error>) -> Self {
                Self::Attempts(all.0)
            }
        }

        /// Every attempt with its error and the error's sources, on one line each, `; ` between
        /// them: `all 2 connection attempts failed: could not connect to 10.0.0.1:5432:
        /// Connection refused; 10.0.0.2:5432: FATAL: …`. One attempt alone (the first host of
        /// several answered with an error that ends the connect, as libpq stops there) is
        /// that attempt, where it went: `10.0.0.1:5432: FATAL: …`.
        fn attempts_text(attempts: &[connect::Attempted<Error>]) -> String {
            let each: Vec<String> = attempts
                .iter()
                .map(|attempt| {
                    let mut text = String::new();
                    if !attempt.error.names_target() {
                        text.push_str(&attempt.target);
                        text.push_str(": ");
                    }
                    text.push_str(&$crate::fault::Chain(&attempt.error).to_string());
                    // One line each, whatever the server's message holds (DETAIL, HINT).
                    text.split(['\n', '\r'])
                        .map(str::trim)
                        .filter(|line| !line.is_empty())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect();
            match each.as_slice() {
                [one] => one.clone(),
                _ => format!(
                    "all {} connection attempts failed: {}",
                    attempts.len(),
                    each.join("; ")
                ),
            }
        }

        impl From<connect::PlanError> for Error {
            fn from(error: connect::PlanError) -> Self {
                Self::Parameters(error.to_string())
            }
        }

        #[doc = concat!("An error of the `", stringify!($krate), "` client, with the server's error it carries.")]
        #[derive(Debug)]
        pub struct ClientError {
            error: $krate::Error,
            db_error: Option<Box<DbError>>,
        }

        impl ClientError {
            fn new(error: $krate::Error) -> Self {
                let db_error = error.as_db_error().map(|db| Box::new(db_error(db)));
                Self { error, db_error }
            }

            /// The client's own error.
            pub fn get_ref(&self) -> &$krate::Error {
                &self.error
            }
        }

        impl ::std::fmt::Display for ClientError {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                match &self.db_error {
                    // Displayed like copyman's own server errors: the client's text is "db error".
                    Some(db) => write!(f, "{db}"),
                    None => {
                        write!(f, "{}", self.error)?;
                        if let Some(source) = ::std::error::Error::source(&self.error) {
                            write!(f, ": {source}")?;
                        }
                        Ok(())
                    }
                }
            }
        }

        // Display already says the cause (the server's error, or the client's and its source).
        impl ::std::error::Error for ClientError {}

        /// The client's server error as copyman's [`DbError`].
        fn db_error(db: &$krate::error::DbError) -> DbError {
            use $krate::error::ErrorPosition;
            let mut e = DbError::new(db.severity(), db.code().code(), db.message());
            e.severity_nonlocalized = db.parsed_severity().map(|s| s.to_string());
            e.detail = db.detail().map(str::to_owned);
            e.hint = db.hint().map(str::to_owned);
            match db.position() {
                Some(ErrorPosition::Original(p)) => e.position = Some(*p),
                Some(ErrorPosition::Internal { position, query }) => {
                    e.internal_position = Some(*position);
                    e.internal_query = Some(query.clone());
                }
                None => {}
            }
            e.context = db.where_().map(str::to_owned);
            e.schema = db.schema().map(str::to_owned);
            e.table = db.table().map(str::to_owned);
            e.column = db.column().map(str::to_owned);
            e.datatype = db.datatype().map(str::to_owned);
            e.constraint = db.constraint().map(str::to_owned);
            e.file = db.file().map(str::to_owned);
            e.line = db.line();
            e.routine = db.routine().map(str::to_owned);
            e
        }

        /// A connection string as `connect_str` reads it: the crate's configuration of what its
        /// parser knows, the TLS settings ([`TlsSettings::take_from`]), and libpq's
        /// `target_session_attrs` as the startup parameter [`Attempts::new`] takes it (the
        /// crate's parser refuses three of its six kinds: lib46 F1).
        ///
        /// [`TlsSettings::take_from`]: ::copyman_tls::TlsSettings::take_from
        pub(crate) fn read_conninfo(
            params: &str,
        ) -> Result<($krate::Config, ::copyman_tls::TlsSettings, Vec<(String, String)>), Error>
        {
            let (rest, tls) = ::copyman_tls::TlsSettings::take_from(params)?;
            let (rest, taken) = ::copyman_conninfo::take(&rest, &["target_session_attrs"])
                .map_err(Error::Conninfo)?;
            let config = rest.parse().map_err(Error::Config)?;
            let startup = (taken.into_iter().flatten())
                .map(|kind| ("target_session_attrs".to_owned(), kind))
                .collect();
            Ok((config, tls, startup))
        }

        /// The startup parameters of `config`, after refusing the parameters a raw connection
        /// cannot honour (set to anything but their defaults): silently connecting without them
        /// would not be what was asked for.
        pub(crate) fn startup_config(config: &$krate::Config) -> Result<StartupConfig, Error> {
            use $krate::config::{LoadBalanceHosts, SslNegotiation, TargetSessionAttrs};
            let unsupported = |parameter, value: String| Err(Error::Unsupported { parameter, value });
            // `read-write` and `read-only` are checked on each session made (core's
            // `SessionAttrs`); a kind the client crate knows and core does not is refused.
            if session_attrs(config).is_none() {
                let name = format!("{:?}", config.get_target_session_attrs());
                return unsupported("target_session_attrs", name.to_lowercase());
            }
            if config.get_load_balance_hosts() != LoadBalanceHosts::Disable {
                return unsupported("load_balance_hosts", "random".into());
            }
            if config.get_ssl_negotiation() != SslNegotiation::Postgres {
                return unsupported("sslnegotiation", "direct".into());
            }
            let user = config
                .get_user()
                .ok_or(Error::Parameters("no user name given".into()))?;
            let mut startup = StartupConfig::new(user);
            startup.database = config.get_dbname().map(str::to_owned);
            startup.password = config.get_password().map(<[u8]>::to_vec);
            let application_name = config.get_application_name().unwrap_or("copyman");
            startup.application_name = Some(application_name.to_owned());
            startup.options = config.get_options().map(str::to_owned);
            startup.channel_binding = match config.get_channel_binding() {
                $krate::config::ChannelBinding::Disable => ChannelBinding::Disable,
                $krate::config::ChannelBinding::Require => ChannelBinding::Require,
                _ => ChannelBinding::Prefer,
            };
            Ok(startup)
        }

        /// The TLS settings of a configuration's own `ssl_mode` (`disable`, `prefer`,
        /// `require`), with the default certificate files.
        pub(crate) fn tls_settings(config: &$krate::Config) -> ::copyman_tls::TlsSettings {
            use ::copyman_tls::SslMode;
            ::copyman_tls::TlsSettings::new(match config.get_ssl_mode() {
                $krate::config::SslMode::Disable => SslMode::Disable,
                $krate::config::SslMode::Require => SslMode::Require,
                _ => SslMode::Prefer,
            })
        }

        /// The TCP options of a configuration, as libpq sets them on every TCP connection:
        /// keepalives on (unless `keepalives=0`), their idle time, interval and count where
        /// given (else the system's), and `tcp_user_timeout` where given. A connection that
        /// idles through a lock wait or a slow COMMIT so survives a firewall's idle timeout,
        /// and a server that vanished is noticed.
        #[derive(Debug, Clone, Copy)]
        pub(crate) struct TcpOptions {
            keepalives: bool,
            idle: Option<::std::time::Duration>,
            interval: Option<::std::time::Duration>,
            retries: Option<u32>,
            user_timeout: Option<::std::time::Duration>,
        }

        impl TcpOptions {
            /// `config`'s.
            pub(crate) fn of(config: &$krate::Config) -> Self {
                let idle = config.get_keepalives_idle();
                Self {
                    keepalives: config.get_keepalives(),
                    idle: (idle != $crate::client::DEFAULT_KEEPALIVES_IDLE).then_some(idle),
                    interval: config.get_keepalives_interval(),
                    retries: config.get_keepalives_retries(),
                    user_timeout: config.get_tcp_user_timeout().copied(),
                }
            }

            /// Sets them on a connected TCP socket.
            pub(crate) fn set(&self, socket: ::socket2::SockRef<'_>) -> io::Result<()> {
                if self.keepalives {
                    let mut keepalive = ::socket2::TcpKeepalive::new();
                    if let Some(idle) = self.idle {
                        keepalive = keepalive.with_time(idle);
                    }
                    if let Some(interval) = self.interval {
                        keepalive = keepalive.with_interval(interval);
                    }
                    if let Some(retries) = self.retries {
                        keepalive = keepalive.with_retries(retries);
                    }
                    socket.set_tcp_keepalive(&keepalive)?;
                }
                if let Some(timeout) = self.user_timeout {
                    socket.set_tcp_user_timeout(Some(timeout))?;
                }
                Ok(())
            }
        }

        /// Core's kind of session for the configuration's `target_session_attrs`; `None` for
        /// one core does not know.
        fn session_attrs(config: &$krate::Config) -> Option<connect::SessionAttrs> {
            use $krate::config::TargetSessionAttrs;
            match config.get_target_session_attrs() {
                TargetSessionAttrs::Any => Some(connect::SessionAttrs::Any),
                TargetSessionAttrs::ReadWrite => Some(connect::SessionAttrs::ReadWrite),
                TargetSessionAttrs::ReadOnly => Some(connect::SessionAttrs::ReadOnly),
                #[allow(unreachable_patterns)]
                _ => None,
            }
        }

        /// What connecting with a configuration takes: its startup parameters, its TLS, and
        /// core's loop over its hosts ([`Connecting`](connect::Connecting)).
        pub(crate) struct Attempts {
            /// The startup parameters, with any extra ones.
            pub(crate) startup: StartupConfig,
            /// The configuration's `connect_timeout`.
            pub(crate) timeout: Option<::std::time::Duration>,
            /// The TLS mode.
            pub(crate) mode: ::copyman_tls::SslMode,
            tls: Option<::std::sync::Arc<::copyman_tls::rustls::ClientConfig>>,
            /// What to try next.
            pub(crate) connecting: connect::Connecting<Error>,
            /// What to set on each TCP socket.
            pub(crate) tcp: TcpOptions,
        }

        impl Attempts {
            /// The attempts of `config` with `tls` (which replaces its `ssl_mode`), with the
            /// `extra` startup parameters.
            pub(crate) fn new(
                config: &$krate::Config,
                tls: &::copyman_tls::TlsSettings,
                extra: &[(String, String)],
            ) -> Result<Self, Error> {
                let mut startup = startup_config(config)?;
                startup.extra.extend_from_slice(extra);
                // libpq's `target_session_attrs` among the extra parameters (the crates'
                // `Config` knows three of its six kinds): the kind of session to find, not a
                // setting for the server.
                let mut session_attrs = session_attrs(config).unwrap_or_default();
                if let Some(i) = (startup.extra.iter())
                    .rposition(|(name, _)| name == "target_session_attrs")
                {
                    let (_, value) = startup.extra.remove(i);
                    // An empty one is none given, as the command reads it; libpq's words for a
                    // value it does not know.
                    session_attrs = match value.as_str() {
                        "" => session_attrs,
                        _ => connect::SessionAttrs::from_name(&value).ok_or_else(|| {
                            Error::Parameters(format!(
                                "invalid target_session_attrs value: \"{value}\""
                            ))
                        })?,
                    };
                    startup.extra.retain(|(name, _)| name != "target_session_attrs");
                }
                let timeout = config.get_connect_timeout().copied();
                // As libpq, no TLS over a Unix socket: a CONN of sockets only needs no
                // certificate files, whatever its `sslmode` says.
                let sockets_only = !config.get_hosts().is_empty()
                    && config.get_hostaddrs().is_empty()
                    && config
                        .get_hosts()
                        .iter()
                        .all(|h| matches!(h, $krate::config::Host::Unix(_)));
                let client_config = match sockets_only {
                    true => None,
                    false => tls.client_config()?,
                };
                let plan = plan(config, tls, client_config.is_some())?;
                Ok(Self {
                    startup,
                    timeout,
                    mode: tls.mode,
                    tls: client_config,
                    connecting: connect::Connecting::new(plan, timeout)
                        .with_session_attrs(session_attrs),
                    tcp: TcpOptions::of(config),
                })
            }

            /// `made`, an attempt's connection, if its session (`session`) is of the kind asked
            /// for; else the error that sends the plan to the next host (the connection is
            /// dropped, its socket closed).
            pub(crate) fn of_the_kind<C>(
                &self,
                made: C,
                session: impl Fn(&C) -> &$crate::session::Session,
            ) -> Result<C, Error> {
                let kind = self.connecting.session_attrs();
                let refusal = kind.refusal(|name| session(&made).parameter(name));
                match refusal {
                    None => Ok(made),
                    Some(why) => Err(Error::WrongSession(why)),
                }
            }

            /// Tells `session`, of the connection the last attempt made, why TLS was given up
            /// for it, if it was ([`connect::Connecting::tls_given_up`]).
            pub(crate) fn note_tls_given_up(&self, session: &mut $crate::session::Session) {
                if let Some(error) = self.connecting.tls_given_up() {
                    session.set_tls_given_up($crate::fault::Chain(error).to_string());
                }
            }

            /// The TLS configuration for an attempt with TLS (`with_tls`), if there is one.
            pub(crate) fn tls(
                &self,
                with_tls: bool,
            ) -> Option<&::std::sync::Arc<::copyman_tls::rustls::ClientConfig>> {
                self.tls.as_ref().filter(|_| with_tls)
            }
        }

        /// Core's connect plan for a configuration: its hosts, and on TCP the TLS mode's
        /// attempts when TLS is set up (`with_tls`).
        fn plan(
            config: &$krate::Config,
            tls: &::copyman_tls::TlsSettings,
            with_tls: bool,
        ) -> Result<Plan, Error> {
            let hosts: Vec<connect::Host> = config
                .get_hosts()
                .iter()
                .map(|host| match host {
                    $krate::config::Host::Tcp(name) => connect::Host::Tcp(name.clone()),
                    $krate::config::Host::Unix(dir) => connect::Host::Unix(dir.clone()),
                })
                .collect();
            let attempts: Vec<bool> = match with_tls {
                true => tls
                    .mode
                    .attempts()
                    .iter()
                    .map(|e| *e == ::copyman_tls::Encryption::Tls)
                    .collect(),
                false => vec![false],
            };
            let (ports, hostaddrs) = (config.get_ports(), config.get_hostaddrs());
            Ok(Plan::new(&hosts, ports, hostaddrs, &attempts)?)
        }

        impl From<connect::ResolveError> for Error {
            fn from(error: connect::ResolveError) -> Self {
                Self::Resolve {
                    host: error.host,
                    source: error.source,
                }
            }
        }

        /// What an attempt's error means for the plan: a server that could not be reached (or a
        /// name that did not resolve), one that cannot take connections now (57P03), or one
        /// that answered and refused; a list of attempts as its last.
        impl connect::AttemptError for Error {
            fn failure(&self) -> Failure {
                match self {
                    Error::Connect { .. } | Error::Resolve { .. } => Failure::Unreachable,
                    Error::Attempts(each) => each
                        .last()
                        .map_or(Failure::Refused, |a| a.error.failure()),
                    Error::WrongSession(_) => Failure::WrongSession,
                    Error::Tls(::copyman_tls::TlsError::BadResponse { byte, .. }) if *byte != b'E' => {
                        Failure::Final
                    }
                    // The client's own refusal to authenticate: the same without TLS too.
                    Error::Session(SessionError::Auth { .. }) => Failure::Final,
                    e if e.code() == Some(Failure::CANNOT_CONNECT_NOW) => Failure::NotNow,
                    _ => Failure::Refused,
                }
            }
        }
    };
}
