//! CONN arguments: files or servers; libpq's service files, environment defaults and password
//! file; redaction.
//!
//! A CONN is `-` (stdin/stdout), a file path, a `postgresql://` URL or a `key=value` conninfo.
//! Both forms are read into libpq's parameters as libpq reads them ([`copyman_conninfo`]);
//! a key libpq does not know is refused, and so is one copyman cannot honour ([`unsupported`]).
//! The parameters a CONN leaves out come, as for psql users, from its service (`service=` or
//! `PGSERVICE`, looked up in `pg_service.conf` files), then from the environment (`PGHOST`,
//! `PGOPTIONS`, `PGCLIENTENCODING`, … every variable libpq reads), then from libpq's defaults
//! (the operating system's user name, …); the password last, from the password file
//! (`passfile`, `PGPASSFILE` or `~/.pgpass`). The `postgres` crate ([`postgres::Config`]) then
//! checks the values it knows. Passwords are never shown: every CONN, and every file path, is
//! displayed [`redact`]ed.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

pub(crate) use copyman_job::job::error_chain;

use copyman_conninfo::{is_url, parse, percent_decode, tokenize};
use copyman_core::connect::SessionAttrs;
use copyman_tls::{TlsSettings, TlsVersion};
use postgres::config::Host;

/// libpq's default Unix socket directory on Debian-like systems: a CONN without a host goes
/// there (only).
pub(crate) const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";

/// The default port.
const DEFAULT_PORT: u16 = 5432;

/// What a CONN names.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// `-`: standard input (as a source) or standard output (as a destination).
    Stdio,
    /// A file.
    File(PathBuf),
    /// A server: a URL or `key=value` string.
    Server(String),
}

impl Target {
    /// Classifies a CONN: `-` is stdio; a path is a file (it starts with `/` or `./`, or holds
    /// neither `=` nor `://`); anything else is a connection string. The empty string is the
    /// empty conninfo (every parameter from the environment), as in libpq. A string that looks
    /// like a mistyped URL (`postgresql:/…`, `postgresql//…`) is a connection string too, which
    /// [`resolve`] refuses: taken for a file, it would be printed, password and all.
    pub(crate) fn classify(text: &str) -> Self {
        if text == "-" {
            Self::Stdio
        } else if text.is_empty() {
            Self::Server(String::new())
        } else if looks_like_url(text) {
            Self::Server(text.to_owned())
        } else if text.starts_with('/')
            || text.starts_with("./")
            || !(text.contains('=') || text.contains("://"))
        {
            Self::File(PathBuf::from(text))
        } else {
            Self::Server(text.to_owned())
        }
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Stdio => f.write_str("Stdio"),
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
            Self::Server(text) => f.debug_tuple("Server").field(&redact(text)).finish(),
        }
    }
}

/// Why a connection string could not be turned into connection parameters.
#[derive(Debug)]
pub(crate) enum ConnError {
    /// The string is malformed, a parameter or its value is invalid, or copyman cannot honour
    /// it (a usage error).
    Invalid(String),
}

impl fmt::Display for ConnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ConnError {}

/// The process environment that matters here, captured once (tests pass their own).
#[derive(Clone, Default)]
pub(crate) struct Env {
    vars: HashMap<String, String>,
    /// libpq's variables (`PG…`) whose values are not UTF-8: copyman cannot read them, and
    /// refuses to connect as if they were not set — where one would be used.
    unreadable: Vec<String>,
    /// PGPASSWORD's bytes, where they are not UTF-8: sent as they are, as psql sends them and
    /// copyman sends a password file's.
    password_bytes: Option<Vec<u8>>,
    /// The variables that name a file or directory libpq reads (`PGPASSFILE`, `PGSERVICEFILE`,
    /// `PGSYSCONFDIR`, the TLS files' `PGSSLROOTCERT`, `PGSSLCERT` and `PGSSLKEY`), where they
    /// are not UTF-8: paths, whose bytes are the file's name as they are (recheck50 F3,
    /// recheck50b F4: refused, where libpq reads them, or never needs them).
    raw_paths: HashMap<String, PathBuf>,
    /// The operating system's name for the user running copyman: the default user name.
    os_user: Option<String>,
    /// The user's home directory in the password database: where `~` is when `HOME` is unset.
    os_home: Option<String>,
}

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the values: PGPASSWORD is one of them.
        let mut names: Vec<&String> = self.vars.keys().collect();
        names.sort();
        f.debug_struct("Env").field("names", &names).finish()
    }
}

impl Env {
    /// The current process's environment.
    pub(crate) fn from_process() -> Self {
        let mut unreadable = Vec::new();
        let mut password_bytes = None;
        let mut raw_paths = HashMap::new();
        let vars = std::env::vars_os()
            .filter_map(|(k, v): (OsString, OsString)| {
                let k = k.into_string().ok()?;
                match v.into_string() {
                    Ok(v) => Some((k, v)),
                    Err(v) if k == "PGPASSWORD" => {
                        password_bytes = Some(std::os::unix::ffi::OsStringExt::into_vec(v));
                        None
                    }
                    Err(v)
                        if matches!(
                            k.as_str(),
                            "PGPASSFILE" | "PGSERVICEFILE" | "PGSYSCONFDIR"
                        ) || TLS_FILES.iter().any(|(_, var)| *var == k) =>
                    {
                        raw_paths.insert(k, PathBuf::from(v));
                        None
                    }
                    Err(_) => {
                        if k.starts_with("PG") {
                            unreadable.push(k);
                        }
                        None
                    }
                }
            })
            .collect::<HashMap<String, String>>();
        unreadable.sort();
        // libpq asks the system for the effective user's name, not `$USER`; `$USER` and
        // `$LOGNAME` serve only where the password database does not say.
        let (os_user, os_home) = passwd_entry().unzip();
        let os_user = os_user
            .or_else(|| vars.get("USER").cloned())
            .or_else(|| vars.get("LOGNAME").cloned())
            .filter(|name| !name.is_empty());
        Self {
            vars,
            unreadable,
            password_bytes,
            raw_paths,
            os_user,
            os_home: os_home.filter(|home| !home.is_empty()),
        }
    }

    /// An environment holding exactly `vars`; `USER`, if among them, stands for the operating
    /// system's user name.
    #[cfg(test)]
    pub(crate) fn from_pairs(vars: &[(&str, &str)]) -> Self {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Self {
            os_user: vars.get("USER").cloned(),
            os_home: None,
            vars,
            unreadable: Vec::new(),
            password_bytes: None,
            raw_paths: HashMap::new(),
        }
    }

    /// A variable's value if it is set, even to the empty string (libpq sends an empty `PGTZ`
    /// to the server as it is, which refuses it).
    fn get_set(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// The user's home directory, where `~/.pgpass` and `~/.pg_service.conf` are: `HOME`, or
    /// where it is unset or empty, the password database's (libpq's `pqGetHomeDirectory`).
    pub(crate) fn home(&self) -> Option<&str> {
        self.get("HOME").or(self.os_home.as_deref())
    }

    /// A variable that names a file or directory, as a path: its value, or its bytes where
    /// they are not UTF-8.
    fn path(&self, name: &str) -> Option<PathBuf> {
        (self.get(name).map(PathBuf::from)).or_else(|| self.raw_paths.get(name).cloned())
    }

    /// A variable's value, if set and not empty (libpq ignores empty ones).
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// An XDG base directory variable (`XDG_CACHE_HOME`, `XDG_STATE_HOME`), if set to an
    /// absolute path: a relative one is invalid and ignored, as the XDG base directory
    /// specification says (it was taken relative to the working directory).
    pub(crate) fn xdg_dir(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|dir| Path::new(dir).is_absolute())
    }

    /// libpq's `client_encoding=auto`: the encoding of the locale (`LC_ALL`, `LC_CTYPE`,
    /// `LANG`), `SQL_ASCII` for the C locale or one whose codeset is not known here.
    fn locale_encoding(&self) -> String {
        let locale = ["LC_ALL", "LC_CTYPE", "LANG"]
            .iter()
            .find_map(|var| self.get(var))
            .unwrap_or("C");
        match locale_codeset(locale).as_str() {
            "utf8" => "UTF8",
            "iso88591" => "LATIN1",
            "iso88592" => "LATIN2",
            "iso88595" => "ISO_8859_5",
            "iso88597" => "ISO_8859_7",
            "iso88599" => "LATIN5",
            "iso885915" => "LATIN9",
            "koi8r" => "KOI8R",
            "koi8u" => "KOI8U",
            "cp1251" => "WIN1251",
            "cp1252" => "WIN1252",
            "eucjp" => "EUC_JP",
            "euckr" => "EUC_KR",
            "gbk" => "GBK",
            "big5" => "BIG5",
            _ => "SQL_ASCII",
        }
        .to_owned()
    }
}

/// The effective user's name and home directory in the password file (`/etc/passwd`), as
/// libpq's `pg_get_user_name` and `pg_get_user_home_dir` get them from `getpwuid`; the user's
/// id is the owner of `/proc/self`.
fn passwd_entry() -> Option<(String, String)> {
    use std::os::unix::fs::MetadataExt;
    let uid = fs::metadata("/proc/self").ok()?.uid().to_string();
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        // name:password:uid:gid:gecos:home:shell
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() >= 6 && fields[2] == uid)
            .then(|| (fields[0].to_owned(), fields[5].to_owned()))
    })
}

/// What every session is told after connecting, on any server: a `synchronous_commit` set
/// `off` (for a role, a database, the server) is made `local`, so that a COMMIT copyman reports
/// (and a job records done) is on the server's disk when it answers — with `off`, a server that
/// crashed then lost it, and a resume skipped the table as done. Stronger settings (`on`,
/// `remote_write`, `remote_apply`) stay as they are.
const DURABLE_COMMITS: &str = "SELECT CASE WHEN pg_catalog.current_setting('synchronous_commit') \
     = 'off' THEN pg_catalog.set_config('synchronous_commit', 'local', false) END";

/// What every session of a server of PostgreSQL 14 or later is told after connecting (these
/// settings are unknown to older servers, so they cannot go in the startup message):
/// `idle_session_timeout` off, since a destination that finished first, or one prepared first
/// under `--atomic`, waits idle for the others and must not be ended; and the backend checks
/// every 5 s that copyman is still there while a statement runs (`client_connection_check_
/// interval`), so that a copyman killed (`kill -9`) while its source sorts or its `--send`
/// statement waits for its first row does not leave that query running for hours, holding its
/// locks.
const SESSION_SETTINGS_14: &str =
    "SET idle_session_timeout = 0; SET client_connection_check_interval = '5s'";

/// What every session of a server of PostgreSQL 11 or later is told after connecting, unless
/// its CONN's options set `jit`: no JIT compilation. copyman's catalog queries over a job's
/// tables cost more than the server's default `jit_above_cost`, and compiling one took seconds
/// where it ran in milliseconds (scale51 F3: 2.6 s of a 30 ms query on each destination,
/// planning 1 500 tables three times as long, said meanwhile as a server that may be frozen);
/// a table's COPY is never compiled, and a `--send` query that gains from it can ask for it.
const NO_JIT: &str = "SET jit = off";

/// What every session is told after connecting, unless its CONN's options set
/// `default_transaction_isolation`: its transactions are READ COMMITTED (those that say
/// otherwise, the source's snapshot, keep theirs). A bulk load under a database's default of
/// SERIALIZABLE took a predicate lock per page and ran the server out of them (live52 F4: "out
/// of shared memory", exit 1, an application's serializable transactions failing beside it);
/// what a destination's transaction reads (a foreign key's check, `--truncate`'s emptying)
/// needs no more.
const READ_COMMITTED: &str = "SET default_transaction_isolation = 'read committed'";

/// The source's dates printed in the portable ISO style, in its transaction before its COPY;
/// the order ([`ServerSpec::keep_date_order`]) stays as the session has it.
pub(crate) const SOURCE_DATESTYLE: &str = "SET LOCAL DateStyle = 'ISO'";

/// The settings that change how SQL text reads — a backslash in a `'…'` string, an unquoted
/// `NULL` in an array literal — and nothing of the COPY data a source writes. A source that runs
/// the user's SQL (`--where`, `--send`) connects with its database's or role's own
/// ([`ServerSpec::keep_sql_settings`]), and [`own_sql_settings`] sets the portable ones back.
pub(crate) const SQL_SETTINGS: [(&str, &str); 2] =
    [("standard_conforming_strings", "on"), ("array_nulls", "on")];

/// How a source's database reads the user's SQL, where it differs from copyman's portable
/// [`SQL_SETTINGS`].
#[derive(Debug, Default)]
pub(crate) struct UserSql {
    /// `standard_conforming_strings` is off there: a backslash in a `'…'` string escapes.
    pub(crate) backslash_escapes: bool,
    /// The `SET LOCAL`s that read the user's statement as psql reads it there (`array_nulls`),
    /// run in the source's transaction before its COPY.
    pub(crate) set_local: Vec<String>,
}

/// On a source connected with its own [`SQL_SETTINGS`]: sets the portable ones for the session
/// (copyman's statements, and the user's COPY, whose strings then read alike everywhere), and
/// says how the database would have read the user's SQL.
///
/// # Errors
/// The server's, reading or setting them.
pub(crate) fn own_sql_settings(
    conn: &mut copyman_sync::Connection,
) -> Result<UserSql, copyman_sync::Error> {
    let read = SQL_SETTINGS
        .iter()
        .map(|(name, _)| format!("pg_catalog.current_setting('{name}')"))
        .collect::<Vec<_>>()
        .join(", ");
    let rows = conn.query(&format!("SELECT {read}"))?;
    let mut user = UserSql::default();
    for (i, (name, portable)) in SQL_SETTINGS.iter().enumerate() {
        let value = rows.first().and_then(|r| r.get(i).cloned().flatten());
        let Some(value) = value.filter(|v| v != portable) else {
            continue;
        };
        // A boolean setting's value: `on` or `off`, as the server shows it.
        conn.execute(&format!("SET {name} = {portable}"))?;
        if *name == "standard_conforming_strings" {
            user.backslash_escapes = true;
        } else {
            user.set_local.push(format!("SET LOCAL {name} = {value}"));
        }
    }
    Ok(user)
}

/// Where the first session of a CONN went ([`ServerSpec::pinned`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pin {
    /// The host, an index into [`ServerSpec::hosts`].
    host: usize,
    /// The address it answered on (`None` over a Unix socket).
    addr: Option<std::net::IpAddr>,
    /// The kind of session found there: `prefer-standby`'s is `standby`, or `any` where no
    /// host was one (and so every later session's).
    kind: SessionAttrs,
}

/// A server CONN resolved into connection parameters.
#[derive(Clone)]
pub(crate) struct ServerSpec {
    /// The parameters, defaults applied, every host of the CONN: how it is named. Sessions
    /// connect through [`ServerSpec::connect`] (each host with its own password, every session
    /// to the host the first one reached), and monitors with [`ServerSpec::session_config`].
    pub(crate) config: postgres::Config,
    /// Each host of the CONN on its own, with the password the password file has for it.
    hosts: Vec<postgres::Config>,
    /// The host the first session reached, and its address: every later session of the run (a
    /// job's workers, a reconnection, a monitor) goes there and nowhere else. With a host list,
    /// or a host name with several addresses, another that answers later is another server: a
    /// job's tables would be committed there and recorded as done on the first.
    pinned: Arc<OnceLock<Pin>>,
    /// Said once: a session of it went without TLS where its attempt with TLS failed
    /// (`sslmode=prefer`).
    tls_given_up_said: Arc<OnceLock<()>>,
    /// The TLS parameters, defaults applied.
    pub(crate) tls: TlsSettings,
    /// The kind of session asked for (libpq's `target_session_attrs`).
    session_attrs: SessionAttrs,
    /// Where it came from when not the CONN (`PGTARGETSESSIONATTRS`, a service file).
    session_attrs_from: Option<String>,
    /// Startup parameters the configuration cannot carry (`client_encoding`, and the settings
    /// libpq takes from the environment: `timezone` from `PGTZ`, `geqo` from `PGGEQO`).
    pub(crate) startup: Vec<(String, String)>,
    /// `PGDATESTYLE`'s value, if libpq would send it: the `DateStyle` of a session that reads
    /// data ([`ServerSpec::read_as_the_server`], [`ServerSpec::read_server_data`]). A session
    /// that writes data keeps the portable ISO style, which is what makes COPY data mean the
    /// same on every server.
    datestyle: Option<String>,
    /// The CONN as it may be shown: redacted.
    pub(crate) display: String,
    /// Things the user should know (an ignored password file).
    pub(crate) warnings: Vec<String>,
    /// Whether the password was written in the CONN itself (which a prompted one does not
    /// replace).
    password_from_conn: bool,
    /// The password file a host's password was read from, if one was: said with a failed
    /// password authentication, as libpq says it ("password retrieved from file …").
    password_file: Option<PathBuf>,
    /// The password file read (`passfile`, or `~/.pgpass`), whether or not it had a line for
    /// this server: named when the server asks for a password none gave (conn44 F4).
    passfile_read: Option<PathBuf>,
    /// Where the password file named by `passfile=` or `PGPASSFILE` does not exist: said so
    /// when the server asks for a password (ops54 F9: a mistyped path read as "give a password
    /// file").
    passfile_missing: Option<String>,
}

impl fmt::Debug for ServerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerSpec")
            .field("display", &self.display)
            .finish_non_exhaustive()
    }
}

/// Where `arg`, an argument the command line did not expect or a TABLE it could not read, is
/// a `key=value` pair of libpq's ([`PARAMETERS`]): a connection string given unquoted, its pairs
/// split into arguments (it was blamed on the table's name: cli43 F3). The way to give it.
pub(crate) fn piece_tip(arg: &str) -> Option<&'static str> {
    // A URL, whole (cli51 F3: no tip for the form the README shows first).
    if is_url(arg.trim()) {
        return Some(
            "a connection string is the value of an option: --from CONN, --to CONN (recover takes \
             each destination as --to CONN)",
        );
    }
    let (key, _) = arg.split_once('=')?;
    if !PARAMETERS.iter().any(|(k, _)| *k == key.trim()) {
        return None;
    }
    // A whole one, quoted, without its option (jobs44 F3a: told to quote it).
    Some(match arg.trim().contains(char::is_whitespace) {
        true => {
            "a connection string is the value of an option: --from CONN, --to CONN (recover takes \
             each destination as --to CONN)"
        }
        false => {
            "a connection string's key=value pairs go in one argument: quote it (--from 'host=h \
             port=5432 dbname=d')"
        }
    })
}

/// The TLS files copyman reads and their variables, read as paths.
const TLS_FILES: [(&str, &str); 3] = [
    ("sslrootcert", "PGSSLROOTCERT"),
    ("sslcert", "PGSSLCERT"),
    ("sslkey", "PGSSLKEY"),
];

/// libpq's connection parameters (PostgreSQL 18's list) and the environment variable each falls
/// back on. A key not in this list is refused, as libpq refuses it.
const PARAMETERS: &[(&str, Option<&str>)] = &[
    ("host", Some("PGHOST")),
    ("hostaddr", Some("PGHOSTADDR")),
    ("port", Some("PGPORT")),
    ("dbname", Some("PGDATABASE")),
    ("user", Some("PGUSER")),
    ("password", Some("PGPASSWORD")),
    ("passfile", Some("PGPASSFILE")),
    // PGSERVICE and PGSERVICEFILE are read when the service is looked up, before the others.
    ("service", None),
    ("servicefile", None),
    ("channel_binding", Some("PGCHANNELBINDING")),
    ("connect_timeout", Some("PGCONNECT_TIMEOUT")),
    ("client_encoding", Some("PGCLIENTENCODING")),
    ("options", Some("PGOPTIONS")),
    ("application_name", Some("PGAPPNAME")),
    ("fallback_application_name", None),
    ("keepalives", None),
    ("keepalives_idle", None),
    ("keepalives_interval", None),
    ("keepalives_count", None),
    ("tcp_user_timeout", None),
    ("sslmode", Some("PGSSLMODE")),
    ("sslnegotiation", Some("PGSSLNEGOTIATION")),
    ("sslcompression", Some("PGSSLCOMPRESSION")),
    ("sslcert", Some("PGSSLCERT")),
    ("sslkey", Some("PGSSLKEY")),
    ("sslcertmode", Some("PGSSLCERTMODE")),
    ("sslpassword", None),
    ("sslrootcert", Some("PGSSLROOTCERT")),
    ("sslcrl", Some("PGSSLCRL")),
    ("sslcrldir", Some("PGSSLCRLDIR")),
    ("sslsni", Some("PGSSLSNI")),
    ("sslkeylogfile", None),
    ("requirepeer", Some("PGREQUIREPEER")),
    ("require_auth", Some("PGREQUIREAUTH")),
    ("ssl_min_protocol_version", Some("PGSSLMINPROTOCOLVERSION")),
    ("ssl_max_protocol_version", Some("PGSSLMAXPROTOCOLVERSION")),
    ("min_protocol_version", Some("PGMINPROTOCOLVERSION")),
    ("max_protocol_version", Some("PGMAXPROTOCOLVERSION")),
    ("gssencmode", Some("PGGSSENCMODE")),
    ("krbsrvname", Some("PGKRBSRVNAME")),
    ("gsslib", Some("PGGSSLIB")),
    ("gssdelegation", Some("PGGSSDELEGATION")),
    ("replication", None),
    ("target_session_attrs", Some("PGTARGETSESSIONATTRS")),
    ("load_balance_hosts", Some("PGLOADBALANCEHOSTS")),
    ("scram_client_key", None),
    ("scram_server_key", None),
    ("oauth_issuer", None),
    ("oauth_client_id", None),
    ("oauth_client_secret", None),
    ("oauth_scope", None),
];

/// libpq's `EnvironmentOptions` (fe-connect.c): variables libpq sends to the server as run-time
/// settings in its startup packet, whatever the CONN says, unless their value is `default` (in
/// any case). The empty value is sent too (the server refuses it for `timezone` and `geqo`, as
/// it does under psql). The server applies the startup packet's `options` first and these
/// after, so `PGTZ` wins over an `options=-c timezone=…` under psql and copyman alike.
const ENVIRONMENT_SETTINGS: &[(&str, &str)] = &[
    ("PGDATESTYLE", "datestyle"),
    ("PGTZ", "timezone"),
    ("PGGEQO", "geqo"),
];

/// The parameters handed to the `postgres` crate's parser (it checks their values), each under
/// the crate's name for it (libpq's `keepalives_count` is its `keepalives_retries`). Not
/// `tcp_user_timeout`: libpq's is in milliseconds, the crate's in seconds (set apart).
const CRATE_PARAMETERS: &[(&str, &str)] = &[
    ("user", "user"),
    ("password", "password"),
    ("dbname", "dbname"),
    ("options", "options"),
    ("channel_binding", "channel_binding"),
    ("keepalives", "keepalives"),
    ("keepalives_idle", "keepalives_idle"),
    ("keepalives_interval", "keepalives_interval"),
    ("keepalives_count", "keepalives_retries"),
];

/// The values libpq takes for the parameters it reads as one of a list (`connectOptions2`):
/// any other is refused by name, as libpq does.
const KNOWN_VALUES: &[(&str, &[&str])] = &[
    ("channel_binding", &["disable", "prefer", "require"]),
    ("gssencmode", &["disable", "prefer", "require"]),
    ("sslcertmode", &["disable", "allow", "require"]),
    ("sslnegotiation", &["postgres", "direct"]),
    ("load_balance_hosts", &["disable", "random"]),
    (
        "target_session_attrs",
        &[
            "any",
            "read-write",
            "read-only",
            "primary",
            "standby",
            "prefer-standby",
        ],
    ),
];

/// Why copyman cannot honour `key=value`, if it cannot: the raw session would silently do
/// something else than libpq would. `None` for everything copyman honours or that changes
/// nothing for it (`sslnegotiation=postgres`, `target_session_attrs=any`, …).
fn unsupported(key: &str, value: &str) -> Option<&'static str> {
    let set = !value.is_empty();
    let reason = match key {
        // As a libpq built without GSSAPI: `prefer` (libpq's default) falls back to TLS or
        // plain, and the Kerberos names matter only to an authentication it cannot do (which
        // then fails by name); only a demand for GSSAPI encryption is refused.
        "gssencmode" if value == "require" => {
            "copyman has no GSSAPI encryption (TLS is sslmode); gssencmode=prefer or disable is \
             accepted"
        }
        "gssdelegation" if set && value != "0" => "copyman has no GSSAPI credential delegation",
        "sslcrl" | "sslcrldir" if set => "copyman does not check certificate revocation lists",
        "sslpassword" if set => {
            "copyman cannot read encrypted client keys: give sslkey an unencrypted key file"
        }
        "sslcertmode" if set && value != "allow" => {
            "copyman sends a client certificate when one is at hand (sslcertmode=allow)"
        }
        "sslsni" if set && value != "1" => "copyman always sends the server name (sslsni=1)",
        "sslnegotiation" if set && value != "postgres" => {
            "copyman asks for TLS the PostgreSQL way only (sslnegotiation=postgres)"
        }
        "sslkeylogfile" if set => "copyman does not log TLS keys",
        // Every ssl_min_protocol_version is honoured (a minimum of TLSv1 or TLSv1.1 still offers
        // TLSv1.2 and TLSv1.3, which every PostgreSQL server of a supported OpenSSL speaks); a
        // maximum below TLSv1.2 leaves copyman nothing to speak.
        "ssl_max_protocol_version"
            if value
                .parse::<TlsVersion>()
                .is_ok_and(|max| max < TlsVersion::Tls1_2) =>
        {
            "copyman speaks TLSv1.2 and TLSv1.3 only"
        }
        "min_protocol_version" | "max_protocol_version" if set && value != "3.0" => {
            "copyman speaks protocol version 3.0 only"
        }
        "require_auth" if set => {
            "copyman cannot restrict the authentication method (channel_binding=require insists \
             on SCRAM-SHA-256-PLUS)"
        }
        "requirepeer" if set => "copyman does not check the peer of a Unix socket",
        "replication" if set && !matches!(value, "0" | "false" | "off" | "no") => {
            "copyman does not open replication connections"
        }
        "load_balance_hosts" if set && value != "disable" => {
            "copyman tries the hosts in the order given (load_balance_hosts=disable)"
        }
        "scram_client_key" | "scram_server_key" if set => {
            "copyman authenticates with passwords, not SCRAM keys"
        }
        "oauth_issuer" | "oauth_client_id" | "oauth_client_secret" | "oauth_scope" if set => {
            "copyman has no OAuth authentication"
        }
        _ => return None,
    };
    Some(reason)
}

/// Whether `unsupported` refuses only some values of `key` (keywords such as `primary`), so a
/// refusal names the value as well: the others (a file, a password, a key) refuse any value.
fn refused_by_value(key: &str) -> bool {
    matches!(
        key,
        "gssencmode"
            | "gssdelegation"
            | "sslcertmode"
            | "sslsni"
            | "sslnegotiation"
            | "ssl_max_protocol_version"
            | "min_protocol_version"
            | "max_protocol_version"
            | "replication"
            | "load_balance_hosts"
    )
}

/// Where a parameter's value came from, to say so in messages.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    /// The CONN itself.
    Conn,
    /// A service file's section: the file.
    Service(PathBuf),
    /// An environment variable.
    Env(&'static str),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Conn => f.write_str("the connection string"),
            Self::Service(file) => write!(f, "service file \"{}\"", file.display()),
            Self::Env(var) => write!(f, "{var}"),
        }
    }
}

/// The parameters of one connection, each with where it came from.
#[derive(Default)]
struct Params {
    values: HashMap<&'static str, (String, Source)>,
}

impl Params {
    fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(|(v, _)| v.as_str())
    }

    /// Sets `key` unless it is set already.
    fn fill(&mut self, key: &'static str, value: &str, source: Source) {
        self.values
            .entry(key)
            .or_insert_with(|| (value.to_owned(), source));
    }
}

/// The canonical name of a libpq parameter, `None` if libpq has none of that name.
fn known(key: &str) -> Option<&'static str> {
    PARAMETERS.iter().map(|(k, _)| *k).find(|k| *k == key)
}

/// One host of a CONN ([`resolve`]).
struct HostEntry {
    /// Its name: where to connect unless `addr` is given, what TLS verifies.
    name: String,
    /// Its `hostaddr`, if given.
    addr: Option<String>,
    /// The name it is looked up by in the password file.
    passfile_host: String,
}

impl HostEntry {
    /// A host by its name alone.
    fn named(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            addr: None,
            passfile_host: name.to_owned(),
        }
    }
}

/// `key='value' `, quoted for the `postgres` crate's parser.
fn conninfo_pair(key: &str, value: &str) -> String {
    let mut pair = format!("{key}='");
    for c in value.chars() {
        if c == '\'' || c == '\\' {
            pair.push('\\');
        }
        pair.push(c);
    }
    pair.push_str("' ");
    pair
}

/// Resolves a server CONN as libpq does (`conninfo_add_defaults`): the CONN's own parameters,
/// then those of its service (`service=` or `PGSERVICE`) it leaves out, then the environment's,
/// then libpq's defaults; the password last, from the password file.
pub(crate) fn resolve(text: &str, env: &Env) -> Result<ServerSpec, ConnError> {
    // A file as many tools take one: said how copyman takes it (files42 F6).
    if let Some(path) = text.strip_prefix("file://") {
        return Err(ConnError::Invalid(format!(
            "{}: file:// URLs are not read: give the file's path ({}; ./NAME for a relative \
             one)",
            redact(text),
            redact(path)
        )));
    }
    if !is_url(text) && looks_like_url(text) {
        return Err(ConnError::Invalid(format!(
            "{}: not a valid connection URL: it must start with \"postgresql://\" or \
             \"postgres://\"",
            redact(text)
        )));
    }
    // A variable of a parameter is read only where the CONN and its service leave the
    // parameter out (below): one set in a shell of another encoding stops no run that does
    // not use it (conn50 F4).
    let of_a_parameter = |var: &str| PARAMETERS.iter().any(|(_, v)| *v == Some(var));
    if let Some(var) = env.unreadable.iter().find(|var| !of_a_parameter(var)) {
        return Err(ConnError::Invalid(format!(
            "the environment variable {var} is not valid UTF-8: copyman cannot read it (unset \
             it, or set it in UTF-8)"
        )));
    }
    let invalid =
        |reason: String| ConnError::Invalid(format!("invalid connection string: {reason}"));
    let mut params = Params::default();
    for mut param in parse(text).map_err(invalid)? {
        // libpq's `conninfo_storeval`: the deprecated `requiressl` is read as `sslmode`,
        // `require` for a value starting with 1 and `prefer` for any other; whichever of the
        // two comes last wins.
        if param.key == "requiressl" {
            param.key = "sslmode".to_owned();
            param.value = if param.value.starts_with('1') {
                "require"
            } else {
                "prefer"
            }
            .to_owned();
        }
        let key = known(&param.key).ok_or_else(|| {
            if is_url(text) {
                invalid(format!("invalid URL query parameter \"{}\"", param.key))
            } else {
                invalid(format!("invalid connection option \"{}\"", param.key))
            }
        })?;
        // The last occurrence wins, as in libpq.
        params.values.insert(key, (param.value, Source::Conn));
    }

    if let Some(service) = params
        .get("service")
        .map(str::to_owned)
        // Set but empty too: libpq looks for a service of that name (and finds none).
        .or_else(|| env.get_set("PGSERVICE").map(str::to_owned))
    {
        let servicefile = params.get("servicefile").map(PathBuf::from);
        let (file, entries) = find_service(&service, servicefile, env)?;
        for (key, value) in entries {
            params.fill(key, &value, Source::Service(file.clone()));
        }
    }
    for (key, var) in PARAMETERS {
        if let Some(value) = var.and_then(|var| env.get(var)) {
            params.fill(key, value, Source::Env(var.unwrap_or_default()));
        }
    }
    // A TLS file's variable matters only where TLS is tried (those copyman reads are paths:
    // `Env::raw_paths`).
    let tls_off = params.get("sslmode") == Some("disable");
    for (key, var) in PARAMETERS {
        if let Some(var) = var.filter(|var| env.unreadable.iter().any(|u| u == var))
            && params.get(key).is_none()
            && !(tls_off && key.starts_with("ssl"))
        {
            return Err(ConnError::Invalid(format!(
                "the environment variable {var} is not valid UTF-8, and copyman cannot read it: \
                 give {key}= in the CONN (which comes first), or unset {var}"
            )));
        }
    }
    // libpq's `conninfo_add_defaults`: the deprecated PGREQUIRESSL, when it starts with 1, means
    // sslmode=require where neither the CONN, its service nor PGSSLMODE gave an sslmode; any
    // other value is ignored.
    if env.get("PGREQUIRESSL").is_some_and(|v| v.starts_with('1')) {
        params.fill("sslmode", "require", Source::Env("PGREQUIRESSL"));
    }

    for (key, (value, source)) in &params.values {
        let from = match source {
            Source::Conn => String::new(),
            other => format!(" (from {other})"),
        };
        // libpq's `connectOptions2`: a value it does not know is refused, not read as another
        // (a `gssencmode=Require` that meant to insist went on unencrypted).
        if let Some(known) = KNOWN_VALUES.iter().find(|(k, _)| k == key).map(|(_, v)| v)
            && !value.is_empty()
            && !known.contains(&value.as_str())
        {
            return Err(ConnError::Invalid(format!(
                "invalid {key} value: \"{value}\"{from}"
            )));
        }
        // The values the client crate's parser would refuse without saying them, in libpq's
        // words (its `keepalives_count` said as `keepalives_retries`).
        // (libpq's integers are C ints: a larger number is no integer to it, conn68 F4.)
        let keepalive = matches!(
            *key,
            "keepalives"
                | "keepalives_idle"
                | "keepalives_interval"
                | "keepalives_count"
                | "tcp_user_timeout"
        );
        if keepalive && !value.is_empty() && value.trim().parse::<i32>().is_err() {
            return Err(ConnError::Invalid(format!(
                "invalid integer value \"{value}\" for connection option \"{key}\"{from}"
            )));
        }
        // A keepalive time or count of 0 or less is one the socket refuses, where libpq fails
        // the connection (its setsockopt's EINVAL): said so, by name, not taken silently or as
        // a network fault (conn46 F3).
        // Nor one above the system's limit (Linux: 32767 seconds, 127 probes): said by name, not
        // as a connection's "Invalid argument" (conn68 F4).
        let socket_option = match *key {
            "keepalives_idle" => Some(("TCP_KEEPIDLE", 32_767)),
            "keepalives_interval" => Some(("TCP_KEEPINTVL", 32_767)),
            "keepalives_count" => Some(("TCP_KEEPCNT", 127)),
            _ => None,
        };
        if let Some((option, most)) = socket_option
            && value
                .trim()
                .parse::<i64>()
                .is_ok_and(|n| n <= 0 || n > most)
        {
            return Err(ConnError::Invalid(format!(
                "invalid value \"{value}\" for connection option \"{key}\"{from}: \
                 setsockopt({option}) takes 1 to {most} (libpq fails with \"Invalid argument\")"
            )));
        }
        if *key == "hostaddr"
            && let Some(bad) = (value.split(',').map(str::trim))
                .find(|a| !a.is_empty() && a.parse::<std::net::IpAddr>().is_err())
        {
            // An IPv6 address with a zone id (`fe80::1%eth0`) is one, which libpq takes there
            // (conn48 F6: said to be a host name).
            let zoned = (bad.split_once('%'))
                .is_some_and(|(ip, _)| ip.parse::<std::net::Ipv6Addr>().is_ok());
            return Err(ConnError::Invalid(match zoned {
                true => format!(
                    "hostaddr \"{bad}\"{from}: an IPv6 address with a zone id is not taken in \
                     hostaddr by copyman (libpq takes it); give it in host, which takes it"
                ),
                false => format!(
                    "could not parse network address \"{bad}\"{from}: hostaddr takes an IP \
                     address (a host name goes in host)"
                ),
            }));
        }
        if let Some(reason) = unsupported(key, value) {
            // Where only some values are refused, the value is said (these are keywords, never
            // secrets); where every value is, the option alone.
            let what = if refused_by_value(key) {
                format!("value \"{value}\" of connection option \"{key}\"")
            } else {
                format!("connection option \"{key}\"")
            };
            return Err(ConnError::Invalid(format!(
                "{what}{from} is not supported: {reason}"
            )));
        }
    }

    // libpq's `sslVerifyProtocolVersion`: the empty value is the default.
    let version = |key: &str| -> Result<Option<TlsVersion>, ConnError> {
        match params.values.get(key) {
            Some((value, source)) if !value.is_empty() => value.parse().map(Some).map_err(|_| {
                let from = match source {
                    Source::Conn => String::new(),
                    other => format!(" (from {other})"),
                };
                ConnError::Invalid(format!("invalid {key} value: \"{value}\"{from}"))
            }),
            _ => Ok(None),
        }
    };
    // The CONN's (or its service's) file, else its variable's path.
    let tls_file = |key: &str| {
        let var = TLS_FILES
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, var)| *var);
        (params.get(key).map(PathBuf::from)).or_else(|| env.path(var?))
    };
    let tls = TlsSettings {
        // libpq 16+: under sslrootcert=system an sslmode none of the CONN, its service,
        // PGSSLMODE or PGREQUIRESSL gave is verify-full.
        mode: params
            .get("sslmode")
            .map_or_else(
                || {
                    Ok(TlsSettings::default_mode(
                        params.get("sslrootcert").map(Path::new),
                    ))
                },
                str::parse,
            )
            .map_err(|e| match params.values.get("sslmode") {
                // Said with where it came from (PGSSLMODE, a service), as every other
                // variable's bad value is (conn40 F10).
                Some((_, source)) if *source != Source::Conn => {
                    ConnError::Invalid(format!("{e} (from {source})"))
                }
                _ => ConnError::Invalid(e.to_string()),
            })?,
        root_cert: tls_file("sslrootcert"),
        cert: tls_file("sslcert"),
        key: tls_file("sslkey"),
        min_version: version("ssl_min_protocol_version")?,
        max_version: version("ssl_max_protocol_version")?,
    };
    // A minimum above the maximum, and a weaker sslmode given with sslrootcert=system, said
    // before connecting, as libpq says them (exit 2, as every setting refused here).
    tls.protocol_versions()
        .map_err(|e| ConnError::Invalid(e.to_string()))?;
    tls.check_sslmode().map_err(|e| {
        let from: Vec<String> = ["sslmode", "sslrootcert"]
            .iter()
            .filter_map(|key| match params.values.get(key) {
                Some((_, Source::Conn)) | None => None,
                Some((_, source)) => Some(format!("{key} from {source}")),
            })
            .collect();
        match from.is_empty() {
            true => ConnError::Invalid(e.to_string()),
            false => ConnError::Invalid(format!("{e} ({})", from.join(", "))),
        }
    })?;

    // The hosts: `host` (each entry empty meaning the default socket directory), addressed by
    // `hostaddr` where given; names are what TLS verifies and the password file matches.
    let list = |key: &str| -> Option<Vec<String>> {
        params
            .get(key)
            .map(|v| v.split(',').map(str::to_owned).collect())
    };
    let hostaddrs = list("hostaddr");
    // Each host: its name (what TLS verifies), its address if `hostaddr` gives one, and the
    // name it has in the password file. Without a host, libpq's is the socket directory only
    // (not `localhost` after it: a port forwarded there may be another server), and so is
    // the password file's name of a host given by `hostaddr` alone: `localhost`.
    let hosts: Vec<HostEntry> = match (list("host"), &hostaddrs) {
        (None, None) => vec![HostEntry::named(DEFAULT_SOCKET_DIR)],
        (None, Some(addrs)) => addrs
            .iter()
            .map(|a| match a.as_str() {
                "" => HostEntry::named(DEFAULT_SOCKET_DIR),
                a => HostEntry {
                    name: a.to_owned(),
                    addr: Some(a.to_owned()),
                    passfile_host: "localhost".to_owned(),
                },
            })
            .collect(),
        (Some(hosts), None) => hosts
            .iter()
            .map(|h| HostEntry::named(if h.is_empty() { DEFAULT_SOCKET_DIR } else { h }))
            .collect(),
        (Some(hosts), Some(addrs)) => {
            if hosts.len() != addrs.len() {
                return Err(ConnError::Invalid(format!(
                    "could not match {} host names to {} hostaddr values",
                    hosts.len(),
                    addrs.len()
                )));
            }
            hosts
                .iter()
                .zip(addrs)
                .map(|(h, a)| match (h.as_str(), a.as_str()) {
                    ("", "") => HostEntry::named(DEFAULT_SOCKET_DIR),
                    (h, "") => HostEntry::named(h),
                    ("", a) => HostEntry {
                        name: a.to_owned(),
                        addr: Some(a.to_owned()),
                        passfile_host: "localhost".to_owned(),
                    },
                    (h, a) => HostEntry {
                        addr: Some(a.to_owned()),
                        ..HostEntry::named(h)
                    },
                })
                .collect()
        }
    };
    let ports: Vec<String> = list("port").unwrap_or_default();
    for port in &ports {
        if !port.is_empty() && !port.trim().parse::<u16>().is_ok_and(|p| p != 0) {
            let from = &params.values["port"].1;
            return Err(ConnError::Invalid(format!(
                "invalid port number \"{port}\" (from {from})"
            )));
        }
    }
    if ports.len() > 1 && ports.len() != hosts.len() {
        return Err(ConnError::Invalid(format!(
            "could not match {} port numbers to {} hosts",
            ports.len(),
            hosts.len()
        )));
    }

    // An empty user or database is none given, as libpq takes them.
    let user = match params.get("user").filter(|u| !u.is_empty()) {
        Some(user) => user.to_owned(),
        None => env.os_user.clone().ok_or_else(|| {
            ConnError::Invalid(format!(
                "{}: no user name given, and the operating system's user name is unknown",
                redact(text)
            ))
        })?,
    };
    let dbname = params
        .get("dbname")
        .filter(|d| !d.is_empty())
        .unwrap_or(&user)
        .to_owned();
    // A connection URL or key=value string where a name goes (`PGDATABASE=$DATABASE_URL`, a
    // common slip): libpq reads one only as a whole CONN. As a name it would be printed, its
    // password with it, in every message that names the server (and the server's own 3D000,
    // or 28000 for a user: conn48 F1).
    let names = [("user", "user", &user), ("dbname", "database", &dbname)]
        .into_iter()
        .chain(hosts.iter().map(|h| ("host", "host", &h.name)));
    for (key, what, value) in names {
        if looks_like_url(value) || holds_password_setting(value) {
            return Err(ConnError::Invalid(format!(
                "the {key} \"{}\" is a connection string, not a {what} name: libpq reads a URL \
                 or key=value string only as a whole CONN, never inside {key} (or PG{}): give \
                 it as the CONN itself",
                scrub(value),
                match key {
                    "dbname" => "DATABASE",
                    "user" => "USER",
                    _ => "HOST",
                }
            )));
        }
    }
    let application_name = params
        .get("application_name")
        .or_else(|| params.get("fallback_application_name"));
    let connect_timeout = match params.get("connect_timeout") {
        Some(timeout) => {
            let secs: i64 = timeout.trim().parse().map_err(|_| {
                let from = &params.values["connect_timeout"].1;
                ConnError::Invalid(format!(
                    "invalid connect_timeout \"{timeout}\" (from {from})"
                ))
            })?;
            // As libpq: zero or less waits for ever, and less than 2 s is taken as 2 s.
            (secs > 0).then(|| Duration::from_secs(secs.max(2).unsigned_abs()))
        }
        None => None,
    };

    // libpq's `tcp_user_timeout`: milliseconds; zero or less is the system's.
    let tcp_user_timeout = match params.get("tcp_user_timeout") {
        Some(ms) => {
            let ms: i64 = ms.trim().parse().map_err(|_| {
                let from = &params.values["tcp_user_timeout"].1;
                ConnError::Invalid(format!("invalid tcp_user_timeout \"{ms}\" (from {from})"))
            })?;
            (ms > 0).then(|| Duration::from_millis(ms.unsigned_abs()))
        }
        None => None,
    };

    // libpq's six kinds of session, checked on each session made (core's `SessionAttrs`; the
    // crate knows three): its value was checked against libpq's words above.
    let session_attrs = params
        .get("target_session_attrs")
        .and_then(SessionAttrs::from_name)
        .unwrap_or_default();
    // Said where a session of another kind is refused: a variable sets it for every CONN.
    let session_attrs_from = (params.values.get("target_session_attrs"))
        .filter(|(_, source)| *source != Source::Conn)
        .map(|(_, source)| source.to_string());

    // The `postgres` crate checks the values of what it knows; the rest is set here.
    let mut conninfo = String::new();
    for (key, crate_key) in CRATE_PARAMETERS {
        match params.get(key) {
            // As libpq: an empty password is none, and the password file is asked.
            Some("") if *key == "password" => {}
            Some(value) => conninfo.push_str(&conninfo_pair(crate_key, value)),
            None => {}
        }
    }
    conninfo.push_str(&conninfo_pair("user", &user));
    conninfo.push_str(&conninfo_pair("dbname", &dbname));
    if let Some(name) = application_name {
        conninfo.push_str(&conninfo_pair("application_name", name));
    }
    let port_of = |i: usize| match ports.as_slice() {
        [] => None,
        [one] => Some(one.trim()),
        many => Some(many[i].trim()),
    };
    let parse = |text: String| -> Result<postgres::Config, ConnError> {
        let mut config: postgres::Config = text.parse().map_err(|e: postgres::Error| {
            // The crate's message names the option, never its value; its outermost layer is
            // the "invalid connection string" said here already.
            let inner = std::error::Error::source(&e).map_or_else(|| e.to_string(), error_chain);
            invalid(inner)
        })?;
        if let Some(timeout) = connect_timeout {
            config.connect_timeout(timeout);
        }
        if let Some(timeout) = tcp_user_timeout {
            config.tcp_user_timeout(timeout);
        }
        Ok(config)
    };
    // Every host on its own: each is connected to with the password the password file has for
    // it, as libpq does (never one host's password to another).
    let mut host_configs = Vec::new();
    for (i, host) in hosts.iter().enumerate() {
        let mut text = conninfo.clone();
        text.push_str(&conninfo_pair("host", &host.name));
        if let Some(addr) = &host.addr {
            text.push_str(&conninfo_pair("hostaddr", addr));
        }
        if let Some(port) = port_of(i) {
            text.push_str(&conninfo_pair("port", port));
        }
        host_configs.push(parse(text)?);
    }
    // All of them: how the CONN is named, and what it says to whoever reads it whole.
    let mut all = conninfo.clone();
    let names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
    all.push_str(&conninfo_pair("host", &names.join(",")));
    if hosts.iter().all(|h| h.addr.is_some()) {
        let addrs: Vec<&str> = hosts.iter().filter_map(|h| h.addr.as_deref()).collect();
        all.push_str(&conninfo_pair("hostaddr", &addrs.join(",")));
    }
    if !ports.is_empty() {
        let ports: Vec<&str> = ports.iter().map(|p| p.trim()).collect();
        all.push_str(&conninfo_pair("port", &ports.join(",")));
    }
    let mut config = parse(all)?;
    // A socket path no socket address holds: a CONN that can never connect, said before
    // anything as libpq says it (exit 2), by core's plan's rule.
    let ports = config.get_ports();
    for (i, host) in config.get_hosts().iter().enumerate() {
        let (Host::Unix(dir), true) = (host, config.get_hostaddrs().is_empty()) else {
            continue;
        };
        let port = (ports.get(i).or(ports.first()).copied()).unwrap_or(DEFAULT_PORT);
        if let Some(too_long) = copyman_core::connect::socket_path_too_long(dir, port) {
            return Err(ConnError::Invalid(too_long.to_string()));
        }
    }
    // As libpq, a client key file that group or world may read is refused, in its words; said
    // here, before connecting, as the settings above, where TLS will certainly be used: sslmode
    // require or stronger, every host on TCP. libpq looks at the key only once TLS is being set
    // up, so under allow/prefer a server without TLS (or the plain attempt after a failed TLS
    // one) never sees it: there it is the TLS attempt's error (copyman_tls::TlsSettings), and a
    // socket never speaks TLS.
    let all_tcp = !config.get_hostaddrs().is_empty()
        || (!config.get_hosts().is_empty()
            && config.get_hosts().iter().all(|h| matches!(h, Host::Tcp(_))));
    // (So is every other local file's problem there: ServerSpec::check_tls_files.)
    if tls.mode.requires_tls() && all_tcp {
        tls.check_client_key()
            .map_err(|e| ConnError::Invalid(e.to_string()))?;
    }

    let mut startup = Vec::new();
    // A `client_encoding` the CONN's `options` (or PGOPTIONS) set is the session's under libpq,
    // which sends none of its own unless asked; copyman always sends one, which the server
    // applies after the options: taken as the CONN's, or copyman's UTF8 would override it.
    let in_options = copyman_conninfo::option_settings(config.get_options().unwrap_or_default())
        .into_iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("client_encoding"))
        .map(|(_, value)| value);
    // (An empty one is none given, as libpq sends none: a script's unset variable.)
    let given = params.get("client_encoding").filter(|e| !e.is_empty());
    if let Some(encoding) = given.or(in_options.as_deref()) {
        let encoding = if encoding.eq_ignore_ascii_case("auto") {
            env.locale_encoding()
        } else {
            encoding.to_owned()
        };
        // One the server does not know is its refusal (it was said to "differ" from the
        // other servers', whose advice spread the typo).
        if copyman_core::statement::known_encoding(&encoding).is_none() {
            return Err(ConnError::Invalid(format!(
                "invalid value for parameter \"client_encoding\": \"{encoding}\" (not an \
                 encoding PostgreSQL knows: UTF8, LATIN1, WIN1252, SQL_ASCII, …)"
            )));
        }
        startup.push(("client_encoding".to_owned(), encoding));
    }
    let mut datestyle = None;
    for (var, name) in ENVIRONMENT_SETTINGS {
        let Some(value) = env
            .get_set(var)
            .filter(|v| !v.eq_ignore_ascii_case("default"))
        else {
            continue;
        };
        if *name == "datestyle" {
            datestyle = Some(value.to_owned());
        } else {
            startup.push(((*name).to_owned(), value.to_owned()));
        }
    }

    let mut warnings = Vec::new();
    let mut password_file = None;
    let mut passfile_read = None;
    let mut passfile_missing = None;
    let password_from_conn = params
        .values
        .get("password")
        .is_some_and(|(value, source)| *source == Source::Conn && !value.is_empty());
    // PGPASSWORD's bytes as they are where they are not UTF-8, as psql sends them (conn50 F4).
    if let Some(bytes) = (env.password_bytes.as_ref())
        .filter(|bytes| !bytes.is_empty() && params.get("password").is_none())
    {
        config.password(bytes);
        for config in &mut host_configs {
            config.password(bytes);
        }
    }
    if config.get_password().is_none() {
        // `passfile=''` is no file given: the default one, as in libpq.
        // (Named as where it came from: `passfile=` in the CONN, PGPASSFILE, a service file.)
        let named = (params.values.get("passfile").filter(|(f, _)| !f.is_empty()))
            .map(|(f, by)| {
                let by = match by {
                    Source::Conn => "passfile=".to_owned(),
                    other => other.to_string(),
                };
                (PathBuf::from(f), by)
            })
            .or_else(|| {
                let file = env.raw_paths.get("PGPASSFILE").cloned();
                file.map(|f| (f, "PGPASSFILE".to_owned()))
            });
        if let Some((file, by)) = &named
            && fs::symlink_metadata(file).is_err()
        {
            passfile_missing = Some(format!(
                " (the password file {}, named by {by}, does not exist)",
                file.display()
            ));
        }
        let passfile = (named.map(|(file, _)| file))
            .or_else(|| env.home().map(|home| Path::new(home).join(".pgpass")));
        if let Some(file) = passfile {
            match read_passfile(&file) {
                Ok(Some(content)) => {
                    passfile_read = Some(file.clone());
                    for (i, (host, config)) in hosts.iter().zip(&mut host_configs).enumerate() {
                        let port = port_of(i).map_or(DEFAULT_PORT.to_string(), str::to_owned);
                        let host = passfile_host(&host.passfile_host);
                        // The first matching line wins; an empty password there is none, as
                        // libpq has it ("no password supplied"): not sent, the server's refusal
                        // logged as a failed login of the role.
                        if let Some(password) = pgpass_lookup(&content, host, &port, &dbname, &user)
                            .filter(|p| !p.is_empty())
                        {
                            config.password(password);
                            password_file = Some(file.clone());
                        }
                    }
                }
                Ok(None) => {}
                Err(warning) => warnings.push(warning),
            }
        }
    }

    // Named as it resolved (`user@host:port/dbname`), whatever way the CONN was written: what
    // a message names is what copyman connects to, and never holds a password.
    let display = resolved_name(&config);
    let mut spec = ServerSpec {
        config,
        hosts: host_configs,
        pinned: Arc::new(OnceLock::new()),
        tls_given_up_said: Arc::new(OnceLock::new()),
        tls,
        startup,
        datestyle,
        display,
        warnings,
        password_from_conn,
        password_file,
        passfile_read,
        passfile_missing,
        session_attrs,
        session_attrs_from,
    };
    // A money locale the CONN names is the user's word for what its database counts in: its
    // sessions read and write money in it (the C locale's pin would override the options); an
    // `array_nulls` it names, for how an array's text it reads is meant.
    for setting in ["lc_monetary", "array_nulls"] {
        if spec.sets(setting) {
            spec.startup.push((setting.to_owned(), String::new()));
        }
    }
    spec.check_display();
    Ok(spec)
}

impl ServerSpec {
    /// Bounds connecting to each host by `limit` where the CONN gives no `connect_timeout`
    /// (`--stall-timeout`: a server that takes the connection and never answers moves no
    /// byte), as a `connect_timeout` would: per host, libpq's 2 s at least.
    pub(crate) fn bound_connect(&mut self, limit: Duration) {
        if self.config.get_connect_timeout().is_some() {
            return;
        }
        let limit = limit.max(Duration::from_secs(2));
        self.config.connect_timeout(limit);
        for host in &mut self.hosts {
            host.connect_timeout(limit);
        }
    }

    /// Where TLS is certain (sslmode `require` or stronger, every host on TCP), every problem
    /// of its local files — a client key others may read, an encrypted key, a certificate that
    /// is not its key's, a root file missing under `verify-ca` — found by making the TLS
    /// configuration, before connecting: a file to mend, said as a usage error (exit 2; they
    /// were connection failures, exit 3, which scripts retry).
    ///
    /// # Errors
    /// The first such problem, in libpq's words where it has them.
    pub(crate) fn check_tls_files(&self) -> Result<(), String> {
        let all_tcp = !self.config.get_hostaddrs().is_empty()
            || (!self.config.get_hosts().is_empty()
                && (self.config.get_hosts().iter()).all(|h| matches!(h, Host::Tcp(_))));
        if !(self.tls.mode.requires_tls() && all_tcp) {
            return Ok(());
        }
        self.tls
            .client_config()
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Connects with these parameters.
    ///
    /// # Errors
    /// [`copyman_sync::Connection::connect_with`]'s.
    ///
    /// Without a `connect_timeout` a server that takes the connection and never answers is
    /// waited on for ever, as libpq does; after [`crate::watch::say_after`] it is said (once),
    /// so that the wait is never silent — and so is a wait whose limit is longer.
    ///
    /// A server of PostgreSQL 14 or later is told not to end the session while it is idle
    /// outside a transaction, and to check that copyman is there while a statement runs
    /// ([`SESSION_SETTINGS_14`]); every server, that its commits are durable
    /// ([`DURABLE_COMMITS`]).
    ///
    /// The hosts of a CONN are tried in order, each with the password the password file has
    /// for it, going on to the next one where the last could not be reached or could not take
    /// connections now (core's `Failure::tries_next_host`); the first host a session reaches
    /// is the only one every later session of the run connects to ([`ServerSpec::pinned`]).
    pub(crate) fn connect(&self) -> Result<copyman_sync::Connection, copyman_sync::Error> {
        let connect = || {
            let conn = self.connect_hosts();
            // A wrong password from a password file: which file, as libpq says it.
            if let (Err(e), Some(file)) = (&conn, &self.password_file)
                && e.code() == Some("28P01")
            {
                crate::report::warn(format_args!(
                    "{}: password retrieved from file \"{}\"",
                    self.display,
                    file.display()
                ));
            }
            // A kind of session asked for by the environment or a service file, which the CONN
            // does not show (recheck46 F6).
            if let (Err(e), Some(from)) = (&conn, &self.session_attrs_from)
                && copyman_core::connect::AttemptError::failure(e)
                    == copyman_core::connect::Failure::WrongSession
            {
                crate::report::warn(format_args!(
                    "{}: target_session_attrs={} comes from {from}",
                    self.display,
                    self.session_attrs.name()
                ));
            }
            // sslmode=prefer went on without TLS after its TLS attempt failed (libpq's way):
            // said, once per server (conn50 F1: the rows went unencrypted without a word,
            // where psql's TLS agreed with the server).
            if let Some(why) = (conn.as_ref().ok()).and_then(|c| c.session().tls_given_up())
                && self.tls_given_up_said.set(()).is_ok()
            {
                crate::report::warn(format_args!(
                    "{}: its sessions are not encrypted: the attempt with TLS failed ({why}), and \
                     sslmode={} went on without it (sslmode=require refuses to)",
                    self.display,
                    self.tls.mode.as_str()
                ));
            }
            // psql would prompt; copyman asks only when told to (-W: it may run unattended).
            if let Err(e) = &conn
                && e.to_string().contains("but none given")
            {
                let read = (self.passfile_read.as_ref())
                    .map(|f| format!(" ({} gives no password for it)", f.display()))
                    .or_else(|| self.passfile_missing.clone())
                    .unwrap_or_default();
                crate::report::warn(format_args!(
                    "{}: the server asks for a password: give it in PGPASSWORD, a password \
                     file (~/.pgpass, or PGPASSFILE){read} or the CONN's password, or give -W \
                     to be asked for it (copyman does not prompt unless told to)",
                    self.display
                ));
            }
            conn
        };
        // A wait the limit ends before it would be said is not said; a longer one (a
        // --stall-timeout of minutes is the connect's limit too) is, as an unbounded one.
        let limit = self.config.get_connect_timeout().copied();
        if limit.is_some_and(|limit| limit <= crate::watch::say_after()) {
            return connect();
        }
        let bound = match limit {
            Some(limit) => format!("up to {} s for each host", limit.as_secs()),
            None => "no connect_timeout was given".to_owned(),
        };
        let (done, wait) = std::sync::mpsc::channel::<()>();
        std::thread::scope(|scope| {
            // Said again at each interval, as a job's waits are (ops54 F5: once, then silence).
            scope.spawn(move || {
                let every = crate::watch::say_after();
                let mut waited = every;
                while wait.recv_timeout(every) == Err(RecvTimeoutError::Timeout) {
                    crate::report::warn(format_args!(
                        "{}: {}no answer after {} s, still waiting ({bound}; Ctrl-C stops)",
                        self.display,
                        if waited > every { "still " } else { "" },
                        waited.as_secs()
                    ));
                    waited += every;
                }
            });
            let conn = connect();
            drop(done);
            conn
        })
    }

    /// Host `i`'s parameters, at the address a session reached first if it is pinned: the name's
    /// other addresses may be other servers (libpq tries each address as a host of its own).
    fn host_config(&self, i: usize) -> postgres::Config {
        let mut config = self.hosts.get(i).unwrap_or(&self.config).clone();
        if let Some(Pin {
            host,
            addr: Some(ip),
            ..
        }) = self.pinned.get().copied()
            && host == i
            && config.get_hostaddrs().is_empty()
        {
            config.hostaddr(ip);
        }
        config
    }

    /// Connects to the pinned host, or to the first of the hosts that answers (and pins it) with
    /// a session of the kind asked for: with `prefer-standby`, as libpq, every host is asked for
    /// a standby first, then, if none is one and none refused, for any session.
    fn connect_hosts(&self) -> Result<copyman_sync::Connection, copyman_sync::Error> {
        use copyman_core::connect::{AttemptError, Attempted, Failure};
        let pinned = self.pinned.get().copied();
        let kinds = match (pinned, self.session_attrs) {
            (Some(pin), _) => vec![pin.kind],
            (None, SessionAttrs::PreferStandby) => vec![SessionAttrs::Standby, SessionAttrs::Any],
            (None, kind) => vec![kind],
        };
        let mut failed: Vec<(usize, copyman_sync::Error)> = Vec::new();
        // (A later session of a CONN whose first took any session goes to that host as any:
        // one pass, recheck46 F1.)
        'kinds: for (pass, kind) in kinds.into_iter().enumerate() {
            let wrong_session =
                |(_, e): &(usize, copyman_sync::Error)| e.failure() == Failure::WrongSession;
            if pass > 0 {
                // The second pass: only where a host was not a standby and none refused.
                let refused = failed
                    .last()
                    .is_some_and(|(_, e)| !e.failure().tries_next_host());
                if refused || !failed.iter().any(wrong_session) {
                    break;
                }
            }
            for (i, config) in self.hosts.iter().enumerate() {
                if pinned.is_some_and(|p| p.host != i) {
                    continue;
                }
                let reached = self.connect_to(&self.host_config(i), kind).map(|conn| {
                    let addr = conn.peer_addr().map(|a| a.ip());
                    (
                        Pin {
                            host: i,
                            addr,
                            kind,
                        },
                        conn,
                    )
                });
                match reached {
                    Ok((pin, conn)) if *self.pinned.get_or_init(|| pin) == pin => {
                        if self.hosts.len() > 1 && pinned.is_none() {
                            crate::report::log(format_args!(
                                "{}: connected to {} (every session of this CONN goes there)",
                                self.display,
                                resolved_name(config)
                            ));
                        }
                        return Ok(conn);
                    }
                    // Another session of this CONN reached another host (or address)
                    // meanwhile: that one.
                    Ok(_) => return self.connect_hosts(),
                    Err(e) => {
                        let next = e.failure().tries_next_host();
                        failed.push((i, e));
                        if !next {
                            break 'kinds;
                        }
                    }
                }
            }
        }
        // One host's error alone: the only host, or the first of several that answered with an
        // error ending the connect (a FATAL after the login), said with where it went as libpq
        // says it (recheck64 F2: "database \"x\" does not exist" named no host of the list).
        if failed.len() == 1
            && (self.hosts.len() == 1 || matches!(failed[0].1, copyman_sync::Error::Attempts(_)))
        {
            return Err(failed.remove(0).1);
        }
        let mut each = Vec::new();
        for (i, error) in failed {
            match error {
                copyman_sync::Error::Attempts(attempts) => each.extend(attempts),
                error => each.push(Attempted {
                    target: host_target(&self.hosts[i]),
                    error,
                }),
            }
        }
        Err(copyman_sync::Error::Attempts(each))
    }

    /// One host's connection.
    fn connect_to(
        &self,
        config: &postgres::Config,
        kind: SessionAttrs,
    ) -> Result<copyman_sync::Connection, copyman_sync::Error> {
        // As pg_dump: a role's or database's statement_timeout would fail every copy longer than
        // it (a COPY is one statement), and its resume again; --stall-timeout bounds a copy.
        // Its lock_timeout too (an application's guard failed the copy at once, 55P03, where a
        // maintenance session held the table a moment): each unless the CONN's options (or
        // PGOPTIONS) set one, as psql keeps it (conn48 F3: a statement_timeout given there was
        // replaced by 0 unsaid); --lock-timeout sets the run's, after connecting.
        let options = copyman_conninfo::option_settings(config.get_options().unwrap_or_default());
        let unless_own = |setting: &str| {
            let own = (options.iter()).any(|(name, _)| name.eq_ignore_ascii_case(setting));
            (!own).then(|| (setting.to_owned(), "0".to_owned()))
        };
        let (statement_timeout, lock_timeout) =
            (unless_own("statement_timeout"), unless_own("lock_timeout"));
        let jit = unless_own("jit").is_some();
        let isolation = unless_own("default_transaction_isolation").is_some();
        let kind = (kind != SessionAttrs::Any)
            .then(|| ("target_session_attrs".to_owned(), kind.name().to_owned()));
        let startup: Vec<(String, String)> = (statement_timeout.into_iter())
            .chain(lock_timeout)
            .chain(kind)
            .chain(self.startup.iter().cloned())
            .collect();
        let mut conn = copyman_sync::Connection::connect_with(config, &self.tls, &startup)?;
        // Its first questions bounded as its login was (conn68 F3: a server that stopped
        // answering once the login was over held the run past --stall-timeout).
        conn.set_timeout(config.get_connect_timeout().copied())?;
        conn.execute(DURABLE_COMMITS)?;
        // Settings a pooler may have dropped (PgBouncer's ignore_startup_parameters): refused,
        // not copied under another server's money locale or array syntax.
        let unreported = conn.session().config().unreported();
        if let Some(query) = unreported.query() {
            let rows = conn.query(&query)?;
            unreported.check(rows.first().map_or(&[][..], Vec::as_slice))?;
        }
        if conn
            .session()
            .server_version_num()
            .is_some_and(|v| v >= 140_000)
        {
            conn.execute(SESSION_SETTINGS_14)?;
        }
        if jit
            && conn
                .session()
                .server_version_num()
                .is_some_and(|v| v >= 110_000)
        {
            conn.execute(NO_JIT)?;
        }
        if isolation {
            conn.execute(READ_COMMITTED)?;
        }
        conn.set_timeout(None)?;
        Ok(conn)
    }

    /// A session that watches the run's (`application_name` `copyman monitor`, after the CONN's
    /// own where it gives one: `nightly (copyman monitor)`; given up after
    /// `timeout`): on the host the run's sessions went to, and, as they are, not ended by a
    /// role's or database's `statement_timeout` (its question was cancelled, and a lock wait
    /// never named) nor `idle_session_timeout` (it was ended between questions, and opened
    /// again every second of a wait, which was said anew each time).
    pub(crate) fn connect_monitor(
        &self,
        timeout: Duration,
    ) -> Result<copyman_sync::Connection, copyman_sync::Error> {
        let mut config = self.session_config();
        // The CONN's own application_name kept in front (conn42 F4: a DBA's `nightly` missed
        // the watching sessions).
        let name = match config.get_application_name() {
            Some(theirs) if !theirs.is_empty() => format!("{theirs} (copyman monitor)"),
            _ => "copyman monitor".to_owned(),
        };
        config.connect_timeout(timeout).application_name(&name);
        let startup = [("statement_timeout".to_owned(), "0".to_owned())];
        let mut conn = copyman_sync::Connection::connect_with(&config, &self.tls, &startup)?;
        let version = conn.session().server_version_num();
        if version.is_some_and(|v| v >= 140_000) {
            conn.execute("SET idle_session_timeout = 0")?;
        }
        conn.set_timeout(Some(timeout))?;
        Ok(conn)
    }

    /// The host a session of a CONN naming several reached (`host:port`), which every later
    /// session goes to: said beside the CONN where an outcome is reported, since the CONN alone
    /// does not say which of its servers holds the rows. `None` for a CONN of one host, or
    /// before any session connected.
    pub(crate) fn reached(&self) -> Option<String> {
        let pin = self.pinned.get().filter(|_| self.hosts.len() > 1)?;
        Some(host_target(&self.host_config(pin.host)))
    }

    /// The CONN as shown with an outcome: [`ServerSpec::display`], and the host reached when
    /// it names several (`u@a:5432,b:5432/db (at b:5432)`).
    pub(crate) fn shown(&self) -> String {
        match self.reached() {
            Some(host) => format!("{} (at {host})", self.display),
            None => self.display.clone(),
        }
    }

    /// The parameters a monitoring session uses: those of the host and address the run's
    /// sessions went to (the CONN's first host before any did).
    pub(crate) fn session_config(&self) -> postgres::Config {
        self.host_config(self.pinned.get().map_or(0, |p| p.host))
    }

    /// Reads with row-level security off, as pg_dump does: a table whose policies would hide
    /// rows from this role then fails (SQLSTATE 42501, "query would be affected by row-level
    /// security policy") instead of copying a subset and saying it copied everything. A role
    /// that owns the table or has BYPASSRLS reads every row either way; a CONN whose `options`
    /// set `row_security` itself (e.g. `-c row_security=on`, to copy what the policies show)
    /// keeps its choice.
    pub(crate) fn read_every_row(&mut self) {
        if !self.sets("row_security") {
            self.startup
                .push(("row_security".to_owned(), "off".to_owned()));
        }
    }

    /// Whether the CONN's `options` (or `PGOPTIONS`) set `setting` (`-c lc_monetary=…`), as the
    /// server reads them: the user's choice. (A search of the text took `-c
    /// app.row_security_tenant=42` for `row_security`, and dropped copyman's own setting.)
    pub(crate) fn sets(&self, setting: &str) -> bool {
        let options = self.config.get_options().unwrap_or_default();
        let settings = copyman_conninfo::option_settings(options);
        settings
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case(setting))
    }

    /// Reads data written elsewhere (a file, stdin) as psql's `\copy` does: in the `DateStyle`
    /// of `PGDATESTYLE` if it is set, else the server's own, and in the server's
    /// `IntervalStyle`, `lc_monetary` and `array_nulls`: `04/03/2024` is the 4th of March on a
    /// `DMY` server or under `PGDATESTYLE=ISO,DMY`, `$ 0,50` is 0.50 under `es_AR`. (A session
    /// that writes data, or reads a server's, keeps the portable ISO styles, the C locale's
    /// `money` and `array_nulls=on`: every server reads those alike.)
    pub(crate) fn read_as_the_server(&mut self) {
        let datestyle = self.datestyle.clone().unwrap_or_default();
        self.startup.push(("DateStyle".to_owned(), datestyle));
        for setting in ["IntervalStyle", "lc_monetary", "array_nulls"] {
            self.startup.push((setting.to_owned(), String::new()));
        }
    }

    /// Reads data another server wrote — its dates in ISO, its intervals in the `postgres`
    /// style, which every `DateStyle` and `IntervalStyle` reads alike — in this server's own
    /// `DateStyle` (`PGDATESTYLE`'s if it is set) and `IntervalStyle`, as psql would: a text
    /// column the destination converts to a `date` or an `interval` is read as its database
    /// reads such text (`01/02/2024` is the 1st of February under `DMY`). `money` stays in the C
    /// locale the source writes it in; the session's own output is not copied (`--verify`
    /// sets its styles itself).
    pub(crate) fn read_server_data(&mut self) {
        let datestyle = self.datestyle.clone().unwrap_or_default();
        self.startup.push(("DateStyle".to_owned(), datestyle));
        self.startup
            .push(("IntervalStyle".to_owned(), String::new()));
    }

    /// This server in its database's own settings: none of the portability settings a copy's
    /// sessions pin that change how a value's text reads (`lc_monetary=C`, `array_nulls=on`,
    /// `IntervalStyle=postgres`), for asking what the database means by a value
    /// ([`copyman_job::plan::TextForms`], a `--where`'s literals). The CONN's own options
    /// stand.
    pub(crate) fn own_settings(&self) -> Self {
        let mut spec = self.clone();
        for setting in ["lc_monetary", "array_nulls", "IntervalStyle"] {
            spec.startup.push((setting.to_owned(), String::new()));
        }
        spec
    }

    /// Reads the user's SQL (`--where`, `--send`) in the date order psql would on this
    /// server: `PGDATESTYLE`'s if it is set, else the database's or role's own (`DMY`:
    /// `04/03/2024` is the 4th of March), not postgresql.conf's, which a `DateStyle` sent at
    /// the start would bring with it. The session's output style is set to ISO once it runs
    /// ([`SOURCE_DATESTYLE`], order kept), before its COPY.
    pub(crate) fn keep_date_order(&mut self) {
        let datestyle = self.datestyle.clone().unwrap_or_default();
        self.startup.push(("DateStyle".to_owned(), datestyle));
    }

    /// Reads the user's SQL with the database's or role's own [`SQL_SETTINGS`], as psql would
    /// ([`own_sql_settings`] once connected).
    pub(crate) fn keep_sql_settings(&mut self) {
        for (name, _) in SQL_SETTINGS {
            self.startup.push((name.to_owned(), String::new()));
        }
    }

    /// Uses a password typed at the prompt (`-W`): it comes before every other source but the
    /// CONN itself, as a password given to psql's prompt does.
    pub(crate) fn use_prompted_password(&mut self, password: &str) {
        if !self.password_from_conn {
            self.config.password(password);
            for config in &mut self.hosts {
                config.password(password);
            }
            self.password_file = None;
            self.check_display();
        }
    }

    /// Whether the CONN or the environment named a `client_encoding` (else copyman's UTF8).
    pub(crate) fn names_client_encoding(&self) -> bool {
        self.startup.iter().any(|(k, _)| k == "client_encoding")
    }

    /// The `client_encoding` the session will ask for (UTF8 unless the CONN or the environment
    /// named another), by the name PostgreSQL gives it: any of its aliases (`UNICODE`,
    /// `ISO_8859_1`) is its encoding (conn50 F3: two spellings of one were refused as two); a
    /// name PostgreSQL does not know, as PostgreSQL compares them (case and punctuation do not
    /// count).
    pub(crate) fn client_encoding(&self) -> String {
        let name = self
            .startup
            .iter()
            .find(|(k, _)| k == "client_encoding")
            .map_or("UTF8", |(_, v)| v.as_str());
        copyman_core::statement::encoding_name(name).to_ascii_uppercase()
    }

    /// The last line of defence: a display that still holds the password the server will get
    /// (written some way redaction did not foresee) is replaced by one built from the
    /// parameters.
    fn check_display(&mut self) {
        let shown = |pw: &[u8]| {
            !pw.is_empty() && self.display.as_bytes().windows(pw.len()).any(|w| w == pw)
        };
        if std::iter::once(&self.config)
            .chain(&self.hosts)
            .filter_map(postgres::Config::get_password)
            .any(shown)
        {
            self.display = resolved_name(&self.config);
        }
    }
}

/// Whether `value` holds a `password=` setting, blanks around its `=` too (a service file's
/// `user=bob password = x` line makes the user name all that: recheck48a F4, printed).
fn holds_password_setting(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    (lower.match_indices("password"))
        .any(|(i, word)| lower[i + word.len()..].trim_start().starts_with('='))
}

/// Whether a CONN that is not a valid URL was meant to be one: `postgresql:/…`,
/// `postgresql//…`, `postgres:…`, `scheme://…`. Such a string is refused, not taken for a file
/// (which would print it, password and all).
fn looks_like_url(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    if ["postgresql", "postgres"].iter().any(|scheme| {
        lower
            .strip_prefix(scheme)
            .is_some_and(|rest| rest.starts_with(':') || rest.starts_with("//"))
    }) {
        return true;
    }
    // Any `scheme:/`: a relative path never starts that way in practice.
    match text.split_once(':') {
        Some((scheme, rest)) => {
            scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-'))
                && rest.starts_with('/')
        }
        None => false,
    }
}

/// A service's parameters, in the order of its section.
type ServiceEntries = Vec<(&'static str, String)>;

/// Looks a service up as libpq does: in the user's service file (`servicefile`, else
/// `PGSERVICEFILE`, else `~/.pg_service.conf`), then in the system's
/// (`$PGSYSCONFDIR/pg_service.conf`); the first file that has the section wins. Returns the
/// file and its parameters for the service, each key checked.
fn find_service(
    service: &str,
    servicefile: Option<PathBuf>,
    env: &Env,
) -> Result<(PathBuf, ServiceEntries), ConnError> {
    // A file named (`servicefile`, `PGSERVICEFILE`) must be there, as in libpq: another file's
    // service of the same name would be another server.
    let named = servicefile.or_else(|| env.path("PGSERVICEFILE"));
    if let Some(file) = &named
        && fs::metadata(file).is_err()
    {
        return Err(ConnError::Invalid(format!(
            "service file \"{}\" not found",
            file.display()
        )));
    }
    let user_file = named.or_else(|| env.home().map(|h| Path::new(h).join(".pg_service.conf")));
    let system_file = (env.path("PGSYSCONFDIR"))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SYSCONFDIR))
        .join("pg_service.conf");
    for file in user_file.into_iter().chain([system_file]) {
        if fs::metadata(&file).is_err() {
            continue;
        }
        let content = copyman_tls::read_settings_file(&file).map_err(|e| {
            ConnError::Invalid(format!(
                "service file \"{}\" cannot be read: {e}",
                file.display()
            ))
        })?;
        let utf8 = std::str::from_utf8(&content).is_ok();
        let content = String::from_utf8_lossy(&content);
        if let Some(entries) = service_entries(&content, service, &file)? {
            // A value in other bytes (a LATIN1 password) would be sent otherwise than libpq
            // sends it: refused by its key, as PGPASSWORD's (recheck42 F8: a login failed
            // while psql's succeeded, no word why).
            if let Some((key, _)) = (!utf8)
                .then(|| entries.iter().find(|(_, value)| value.contains('\u{fffd}')))
                .flatten()
            {
                return Err(ConnError::Invalid(format!(
                    "service file \"{}\": the value of {key} in [{service}] is not valid \
                     UTF-8: copyman reads service files as UTF-8, and would send other bytes \
                     than it holds",
                    file.display()
                )));
            }
            return Ok((file, entries));
        }
    }
    Err(ConnError::Invalid(format!(
        "definition of service \"{service}\" not found"
    )))
}

/// The Debian packages' `sysconfdir` for libpq, where `pg_service.conf` is when
/// `PGSYSCONFDIR` is unset.
const DEFAULT_SYSCONFDIR: &str = "/etc/postgresql-common";

/// libpq's `parseServiceFile`: the `key=value` lines of section `[service]`, `None` if the file
/// has no such section. Lines are trimmed; empty lines and `#` comments are skipped; the first
/// occurrence of a key wins.
fn service_entries(
    content: &str,
    service: &str,
    file: &Path,
) -> Result<Option<ServiceEntries>, ConnError> {
    let syntax = |n: usize| {
        ConnError::Invalid(format!(
            "syntax error in service file \"{}\", line {n}",
            file.display()
        ))
    };
    let mut found: Option<ServiceEntries> = None;
    for (i, line) in content.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[') {
            if found.is_some() {
                break;
            }
            if section
                .strip_prefix(service)
                .is_some_and(|rest| rest.starts_with(']'))
            {
                found = Some(Vec::new());
            }
            continue;
        }
        let Some(entries) = found.as_mut() else {
            continue;
        };
        // libpq built with LDAP looks a line beginning `ldap` up in a directory; copyman cannot.
        if line.starts_with("ldap") {
            return Err(ConnError::Invalid(format!(
                "service file \"{}\", line {}: an LDAP lookup, which copyman does not do (libpq \
                 connects where the directory says, and to the parameters after the line only \
                 when the directory cannot be reached): give the connection parameters in the \
                 connection string, or in a service without that line",
                file.display(),
                i + 1
            )));
        }
        let (key, value) = line.split_once('=').ok_or_else(|| syntax(i + 1))?;
        if key == "service" {
            return Err(ConnError::Invalid(format!(
                "nested service specifications not supported in service file \"{}\", line {}",
                file.display(),
                i + 1
            )));
        }
        let key = known(key).ok_or_else(|| syntax(i + 1))?;
        if !entries.iter().any(|(k, _)| *k == key) {
            entries.push((key, value.to_owned()));
        }
    }
    Ok(found)
}

/// How a server is named in every message: `user@host:port/dbname` (several hosts joined by
/// commas, a socket directory as its path, an IPv6 address in brackets).
fn resolved_name(config: &postgres::Config) -> String {
    let ports = config.get_ports();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let host = match h {
                Host::Tcp(name) if name.contains(':') => format!("[{name}]"),
                Host::Tcp(name) => name.clone(),
                Host::Unix(path) => path.display().to_string(),
            };
            // One port for every host, or one each (libpq's rule).
            let port = ports
                .get(i)
                .or_else(|| ports.first())
                .copied()
                .unwrap_or(DEFAULT_PORT);
            format!("{host}:{port}")
        })
        .collect();
    // The address connected to where `hostaddr` gives one: `host` then only names the server
    // for TLS and the password file, as psql's \conninfo says (conn72 F3: the rows went to
    // the address, the words named another server's socket directory).
    let addresses: Vec<String> = (config.get_hostaddrs().iter())
        .map(ToString::to_string)
        .collect();
    let at = match addresses.is_empty() {
        true => String::new(),
        false => format!(" (address {})", addresses.join(",")),
    };
    format!(
        "{}@{}/{}{at}",
        config.get_user().unwrap_or_default(),
        hosts.join(","),
        config.get_dbname().unwrap_or_default()
    )
}

/// Where a host of a CONN is (`host:port`, a socket directory's socket), for a list of failed
/// attempts whose error does not say it.
fn host_target(config: &postgres::Config) -> String {
    let port = config.get_ports().first().copied().unwrap_or(DEFAULT_PORT);
    match (config.get_hostaddrs().first(), config.get_hosts().first()) {
        (Some(addr), _) => std::net::SocketAddr::new(*addr, port).to_string(),
        (None, Some(Host::Unix(dir))) => dir.join(format!(".s.PGSQL.{port}")).display().to_string(),
        (None, Some(Host::Tcp(name))) => format!("{name}:{port}"),
        (None, None) => String::new(),
    }
}

/// A CONN as it may be shown: the password replaced by `***`
/// (`postgresql://user:***@host/db`, `host=h password=***`), and so is anything that looks like
/// `user:password@` in a file path or a mistyped URL (`postgresql:/user:***@host`). A string
/// that cannot be read is not shown at all.
pub(crate) fn redact(text: &str) -> String {
    match Target::classify(text) {
        Target::Stdio => text.to_owned(),
        Target::File(_) => redact_password_file_line(&redact_userinfo(text)),
        Target::Server(_) if is_url(text) => redact_url(text),
        Target::Server(_) if looks_like_url(text) => scrub_text(&redact_userinfo(text)),
        Target::Server(_) => match tokenize(text) {
            Ok(params) => {
                let mut out = text.to_owned();
                for param in params.iter().rev() {
                    if param.key.eq_ignore_ascii_case("password") {
                        out.replace_range(param.value_span.clone(), "***");
                    }
                }
                out
            }
            Err(_) => "(unreadable connection string, not shown)".to_owned(),
        },
    }
}

/// Whether `text`, a CONN read as a file path, looks like a server written without
/// `postgresql://` or `host=`: `user@host`, `user:password@host`, `host:port`, an IPv4 or `[IPv6]`
/// address (an IPv4 address before a `/database` too). Taken for a file it was created in the working directory, password and all, and
/// the run said it committed to something that read as a server (`--to postgres@db1:5432`).
/// A path that starts with `/`, `./` or `../` is a file whatever it holds.
pub(crate) fn looks_like_a_server(text: &str) -> bool {
    if text.starts_with('/') || text.starts_with("./") || text.starts_with("../") {
        return false;
    }
    let is_ipv4 = |host: &str| {
        host.split('.').count() == 4
            && host.split('.').all(|part| {
                !part.is_empty() && part.len() <= 3 && part.bytes().all(|b| b.is_ascii_digit())
            })
    };
    // `host:port`: a port of 4 or 5 digits after a host name (`dump-…T10:30` is a file), any
    // port after an address or `localhost`; then a `/database`, or more `:` fields (a password
    // file's line, `host:port:db:user:password`, was written to a file of that name, password
    // and all, exit 0: conn64 F5).
    let host_port = text.split_once(':').is_some_and(|(host, port)| {
        let port = port.split(['/', ':']).next().unwrap_or_default();
        let digits =
            !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit());
        let named = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        digits && (is_ipv4(host) || host == "localhost" || (named && (4..=5).contains(&port.len())))
    });
    // `::1`, `fe80::1`: an IPv6 address (hex digits and at least two colons).
    let ipv6 = text.matches(':').count() >= 2
        && text
            .chars()
            .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.');
    // `user@host`, but not a path with a directory before its `@` (`exports/a@b.csv`).
    let user_at = text
        .split_once('@')
        .is_some_and(|(user, _)| !user.contains('/'));
    // `10.0.0.5`, `10.0.0.5/app` (an address then a database, as in a URL).
    let ipv4 = is_ipv4(text.split('/').next().unwrap_or_default());
    // A password file's line, whatever its host and port (`db:543:app:u:pw`, `*:*:…`).
    let password_line = password_file_line(text).is_some();
    user_at || host_port || ipv4 || ipv6 || password_line || text.starts_with('[')
}

/// The connection keywords a CONN written with `:` or a blank for `=` is told by.
const MISSPELT_KEYWORDS: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "passfile",
    "service",
    "sslmode",
    "options",
    "application_name",
    "connect_timeout",
    "target_session_attrs",
];

/// Whether `text`, a CONN read as a file path, reads as a connection string written with `:` or
/// a blank for `=` (`host:db1 port:5432 password:s3cret`, `host db1 port 5432`, `password s3cret`):
/// a keyword with `:` and a value, two with blanks, or a `password` and its value. Taken for a file, the rows went to a file named after the
/// password in the working directory, exit 0 (conn44 F3). A path that starts with `/`, `./` or
/// `../` is a file whatever it holds.
pub(crate) fn conninfo_misspelt(text: &str) -> bool {
    if text.starts_with('/') || text.starts_with("./") || text.starts_with("../") {
        return false;
    }
    let keyword = |word: &str| MISSPELT_KEYWORDS.contains(&word.to_ascii_lowercase().as_str());
    let words: Vec<&str> = text.split_whitespace().collect();
    // `host:db1`, or YAML's `host: db1` (the value the next word).
    let colons: Vec<&str> = (words.iter().enumerate())
        .filter_map(|(i, w)| Some((i, w.split_once(':')?)))
        .filter(|(i, (k, v))| keyword(k) && (!v.is_empty() || *i + 1 < words.len()))
        .map(|(_, (k, _))| k)
        .collect();
    // A host, a port, a database or a password and its value (`host 10.0.0.5`), or two
    // settings so (`user` and a word alone may well be a file's name).
    let alone = ["password", "host", "hostaddr", "port", "dbname"];
    let blanks = (words.len() >= 4 && keyword(words[0]) && keyword(words[2]))
        || (words.len() >= 2 && alone.iter().any(|k| words[0].eq_ignore_ascii_case(k)));
    // One setting so written names a server as much as two (`host:10.0.0.5`: recheck44 F4).
    !colons.is_empty() || blanks
}

/// `text` ([`conninfo_misspelt`]) with the value after a `password:` or `password ` hidden.
pub(crate) fn hide_misspelt_password(text: &str) -> String {
    let keyword = |word: &str| {
        let key = word.split(':').next().unwrap_or(word);
        MISSPELT_KEYWORDS.contains(&key.to_ascii_lowercase().as_str())
    };
    let mut shown = Vec::new();
    // After a `password` (or `password:`) with no value of its own: every word up to the next
    // setting (a quoted value holds blanks).
    let mut hiding = false;
    for word in text.split_whitespace() {
        if hiding && !keyword(word) {
            shown.push("***".to_owned());
            continue;
        }
        match word.split_once(':') {
            Some((k, v)) if k.eq_ignore_ascii_case("password") => {
                shown.push(format!("{k}:***"));
                hiding = v.is_empty();
            }
            _ => {
                hiding = word.eq_ignore_ascii_case("password");
                shown.push(word.to_owned());
            }
        }
    }
    shown.join(" ")
}

/// Whether `text`, a CONN read as a file name, reads as a host name: `localhost`, or a dotted
/// name (`db2.example.com`: two dots or more, letters, digits and `-` between them) whose last
/// part is a word that ends no data file's name. Such a destination is still a file (the name
/// is a legal one), but said with the way to name the server; a missing source file of that
/// name says it too.
pub(crate) fn names_a_host(text: &str) -> bool {
    const FILE_ENDINGS: &[&str] = &[
        "bak", "bin", "bz2", "copy", "csv", "dat", "data", "dump", "gz", "json", "log", "lz4",
        "out", "pgcopy", "sql", "tar", "text", "tmp", "tsv", "txt", "xz", "zip", "zst",
    ];
    if text.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let labels: Vec<&str> = text.split('.').collect();
    let last = labels.last().copied().unwrap_or_default();
    labels.len() >= 3
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
        })
        && (2..=24).contains(&last.len())
        && last.bytes().all(|b| b.is_ascii_alphabetic())
        && !FILE_ENDINGS.contains(&last.to_ascii_lowercase().as_str())
}

/// Hides what looks like the password of a `user:password@` in `text`: after a leading
/// `scheme:`, everything from the first `:` to the last `@` (more than the password, rather than
/// less, when the text is odd).
/// `text` with its password hidden where it reads as a password file's line
/// (`host:port:database:user:password`): at least five fields split at the `:`s libpq's file
/// does not escape (`\:`; a bracketed `[::1]` host is one field), its port digits, `*` or
/// empty. Everything after the fourth such `:` is hidden — the password, with any `:` it holds
/// unescaped (recheck64 F1: `pw\:x`, `[::1]:…`, `::1:…` were shown whole). As a file's name
/// would be shown.
fn redact_password_file_line(text: &str) -> String {
    match password_file_line(text) {
        // (An empty password is nothing to hide: "***" there was masked again where shown.)
        Some(at) if at + 1 < text.len() => format!("{}:***", &text[..at]),
        _ => text.to_owned(),
    }
}

/// Where `text`, read as a password file's line ([`redact_password_file_line`]), has the `:`
/// before its password; `None` where it does not read as one.
pub(crate) fn password_file_line(text: &str) -> Option<usize> {
    // The byte offsets of the `:`s that separate fields.
    let mut separators = Vec::new();
    let (mut escaped, mut bracket) = (false, false);
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '[' if separators.is_empty() && i == 0 => bracket = true,
            ']' if bracket => bracket = false,
            ':' if !bracket => separators.push(i),
            _ => {}
        }
    }
    let (&first, &fourth) = (separators.first()?, separators.get(3)?);
    let port = &text[first + 1..separators[1]];
    (port.is_empty() || port == "*" || port.bytes().all(|b| b.is_ascii_digit())).then_some(fourth)
}

fn redact_userinfo(text: &str) -> String {
    let Some(at) = text.rfind('@') else {
        return text.to_owned();
    };
    // A scheme is followed by a `/` (`postgresql:/…`): in `alice:pw@host` and
    // `postgres:pw@host`, the word before the colon is a user (hiding from the first colon
    // hides more than the password, never less).
    let scheme = text
        .find(':')
        .filter(|&i| {
            text[..i].starts_with(|c: char| c.is_ascii_alphabetic())
                && text[..i]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-'))
                && text[i + 1..].starts_with('/')
        })
        .map_or(0, |i| i + 1)
        .min(at);
    match text[scheme..at].find(':') {
        Some(colon) => format!("{}***{}", &text[..scheme + colon + 1], &text[at..]),
        None => text.to_owned(),
    }
}

fn redact_url(text: &str) -> String {
    let scheme_end = text.find("://").map_or(0, |i| i + 3);
    let rest = &text[scheme_end..];
    // The user info ends at the last `@` before the query; a password written with a raw `?`
    // still has its `@` before the first `/`. An `@` only in the query (a user name like
    // `alice@corp`) is not user info.
    let authority = rest.find('/').unwrap_or(rest.len());
    let query = rest.find('?').unwrap_or(rest.len());
    let at = rest[..query]
        .rfind('@')
        .or_else(|| rest[..authority].rfind('@'));
    let mut out = text[..scheme_end].to_owned();
    let after = match at {
        Some(at) => {
            let userinfo = &rest[..at];
            match userinfo.split_once(':') {
                Some((user, _)) => out.push_str(&format!("{user}:***@")),
                None => out.push_str(&format!("{userinfo}@")),
            }
            &rest[at + 1..]
        }
        None => rest,
    };
    match after.split_once('?') {
        Some((path, query)) => {
            out.push_str(path);
            out.push('?');
            let items: Vec<String> = query
                .split('&')
                .map(|item| match item.split_once('=') {
                    Some((key, _)) if percent_decode(key).eq_ignore_ascii_case("password") => {
                        format!("{key}=***")
                    }
                    _ => item.to_owned(),
                })
                .collect();
            out.push_str(&items.join("&"));
        }
        None => out.push_str(after),
    }
    out
}

/// Removes anything that looks like a password from free text (messages quoting a command line):
/// each word of the command line that is a CONN with a password, where `text` quotes it, shown
/// as [`redact`] shows it (cli51 F1: free text cannot tell where a password with a blank or a
/// quote in it ends, and the part after it was shown), then `password=…` values and URL
/// user-info passwords.
pub(crate) fn scrub(text: &str) -> String {
    scrub_text(&redact_arguments(text, std::env::args_os().skip(1)))
}

/// [`scrub`] but for the command line's words: `password=…` values and URL user-info
/// passwords.
fn scrub_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.to_ascii_lowercase().find("password") {
        let (before, after) = rest.split_at(i + "password".len());
        out.push_str(before);
        let trimmed = after.trim_start();
        if let Some(value) = trimmed.strip_prefix('=') {
            let value = value.trim_start();
            out.push_str("=***");
            // Skip the value: quoted, or up to whitespace or a URL separator.
            let end = if let Some(quoted) = value.strip_prefix('\'') {
                let mut escaped = false;
                quoted
                    .char_indices()
                    .find(|&(_, c)| {
                        let close = c == '\'' && !escaped;
                        escaped = c == '\\' && !escaped;
                        close
                    })
                    .map_or(value.len(), |(j, _)| j + 2)
            } else {
                value
                    .find(|c: char| c.is_whitespace() || c == '&' || c == '\'' || c == '"')
                    .unwrap_or(value.len())
            };
            rest = &value[end..];
        } else {
            rest = after;
        }
    }
    out.push_str(rest);
    scrub_userinfo(&scrub_urls(&out))
}

/// `text` with each of `args` that [`redact`] shows otherwise (a CONN with a password) shown so
/// where `text` quotes it, as it is or escaped as Rust's `{:?}` escapes it — and so each part of
/// one a message may quote alone, where it is a CONN with a password: trimmed, after a blank
/// (`unknown unit "postgresql://…"` of `--stall-timeout '5 URL'`), before a `/` (`no directory
/// postgresql://u:pw@host` of a path): recheck51 F6, recheck51b F6.
fn redact_arguments(text: &str, args: impl Iterator<Item = OsString>) -> String {
    let mut out = text.to_owned();
    let args: Vec<String> = args.filter_map(|a| a.into_string().ok()).collect();
    let mut pieces: Vec<(String, String)> = Vec::new();
    for arg in &args {
        let shown = redact(arg);
        // A word that is no connection string at all (a statement: `--send "… WHERE a=1"`)
        // is not hidden unless it may hold a password (recheck70 F2: a --send's error quoted
        // it as "(unreadable connection string, not shown)").
        let unreadable = !shown.contains("***");
        let may_hold_one = arg.to_ascii_lowercase().contains("password") || arg.contains('@');
        if shown != *arg && (!unreadable || may_hold_one) {
            pieces.push((arg.clone(), shown));
        }
        let starts: Vec<usize> = std::iter::once(0)
            .chain(
                (arg.char_indices())
                    .filter(|(_, c)| c.is_whitespace())
                    .map(|(i, c)| i + c.len_utf8()),
            )
            .collect();
        let ends: Vec<usize> = std::iter::once(arg.len())
            .chain(arg.match_indices('/').map(|(i, _)| i))
            .collect();
        let parts = (starts.iter())
            .flat_map(|&s| ends.iter().filter(move |&&e| e > s).map(move |&e| (s, e)));
        for piece in parts
            .map(|(s, e)| arg[s..e].trim())
            .filter(|p| !p.is_empty() && p != arg)
        {
            let shown = redact(piece);
            if shown.contains("***") && !pieces.iter().any(|(p, _)| p == piece) {
                pieces.push((piece.to_owned(), shown));
            }
        }
    }
    // The longest first: a part is masked where the whole one is not quoted.
    pieces.sort_by_key(|(piece, _)| std::cmp::Reverse(piece.len()));
    let escaped = |s: &str| {
        let quoted = format!("{s:?}");
        quoted[1..quoted.len() - 1].to_owned()
    };
    for (piece, shown) in &pieces {
        out = out
            .replace(piece.as_str(), shown)
            .replace(&escaped(piece), &escaped(shown));
    }
    out
}

/// [`redact_userinfo`] on every word of `text` that has an `@` (a mistyped URL or a file path
/// quoted in a message).
fn scrub_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.contains('@') && !word.contains("://") {
            out.push_str(&redact_userinfo(word));
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if c.is_whitespace() || matches!(c, '\'' | '"' | '`') {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

fn scrub_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        out.push_str(&rest[..i + 3]);
        let tail = &rest[i + 3..];
        let word_end = tail
            .find(|c: char| c.is_whitespace() || c == '\'' || c == '"' || c == '`')
            .unwrap_or(tail.len());
        let word = &tail[..word_end];
        match word.rfind('@') {
            Some(at) if word[..at].contains(':') => {
                let user = &word[..word.find(':').unwrap_or(0)];
                out.push_str(user);
                out.push_str(":***");
                out.push_str(&word[at..]);
            }
            _ => out.push_str(word),
        }
        rest = &tail[word_end..];
    }
    out.push_str(rest);
    out
}

/// The password file's contents, `None` if there is none; `Err` (a warning) when it exists but
/// is not a plain file or is readable by group or others, which libpq refuses too.
fn read_passfile(path: &Path) -> Result<Option<Vec<u8>>, String> {
    let Ok(meta) = fs::metadata(path) else {
        return Ok(None);
    };
    if !meta.is_file() {
        return Err(format!(
            "password file \"{}\" is not a plain file",
            path.display()
        ));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(format!(
            "password file \"{}\" has group or world access; permissions should be u=rw (0600) \
             or less: ignored",
            path.display()
        ));
    }
    // Bytes, as libpq reads them: a password in LATIN1 bytes is sent as those bytes (read as
    // UTF-8 with replacements, another password was sent: conn42 F7).
    Ok(fs::read(path).ok())
}

/// The name a host has in the password file: its own, but `localhost` for the default socket
/// directory (as libpq matches it).
fn passfile_host(host: &str) -> &str {
    if host == DEFAULT_SOCKET_DIR {
        "localhost"
    } else {
        host
    }
}

/// Looks up a password in password-file text: the first line
/// `hostname:port:database:username:password` whose first four fields match (`*` matches
/// anything, `\` escapes `:` and `\`); `#` starts a comment line.
pub(crate) fn pgpass_lookup(
    content: &[u8],
    host: &str,
    port: &str,
    dbname: &str,
    user: &str,
) -> Option<Vec<u8>> {
    content.split(|&b| b == b'\n').find_map(|line| {
        // Every trailing CR, as libpq's pg_strip_crlf.
        let end = line.len() - line.iter().rev().take_while(|&&b| b == b'\r').count();
        let line = &line[..end];
        if line.is_empty() || line.starts_with(b"#") {
            return None;
        }
        let mut rest = line;
        for token in [host, port, dbname, user] {
            rest = field_matches(rest, token.as_bytes())?;
        }
        // The password runs to the end, or to an unescaped `:`; escapes are removed.
        let mut password = Vec::new();
        let mut i = 0;
        while i < rest.len() && rest[i] != b':' {
            if rest[i] == b'\\' && i + 1 < rest.len() {
                i += 1;
            }
            password.push(rest[i]);
            i += 1;
        }
        Some(password)
    })
}

/// libpq's `pwdfMatchesString`: whether the field at the start of `field` matches `token`;
/// returns what follows the field's `:`.
fn field_matches<'a>(field: &'a [u8], token: &[u8]) -> Option<&'a [u8]> {
    if field.starts_with(b"*:") {
        return Some(&field[2..]);
    }
    let mut i = 0;
    let mut t = 0;
    while i < field.len() {
        let mut escaped = false;
        if field[i] == b'\\' {
            i += 1;
            escaped = true;
            if i >= field.len() {
                return None;
            }
        }
        if field[i] == b':' && !escaped && t == token.len() {
            return Some(&field[i + 1..]);
        }
        if t == token.len() || field[i] != token[t] {
            return None;
        }
        i += 1;
        t += 1;
    }
    None
}

/// `-W`: asks for the password as psql's `simple_prompt` does: on `/dev/tty` when there is one
/// (echo off, and what was typed ahead discarded, before the prompt is shown; one line read; the
/// terminal restored), else on standard input with the prompt on stderr, as psql does when it has
/// no terminal (`echo secret | psql -W …`). The password is never echoed nor printed.
///
/// `stdin_is_data` (`--from -`, `--from /dev/stdin`): standard input holds the rows, and its first
/// line is not taken for a password (it would be a row lost); without a terminal that is an error.
pub(crate) fn prompt_password(stdin_is_data: bool) -> Result<String, String> {
    use std::io::BufReader;
    use std::os::fd::AsRawFd;

    match fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
    {
        Ok(tty) => {
            let read = ask(tty.as_raw_fd(), &mut BufReader::new(&tty), &mut &tty);
            // Ctrl-D at the prompt: the empty password, as psql.
            read.map(Option::unwrap_or_default).map_err(|e| {
                format!(
                    "-W/--password: cannot read the password from the terminal: {e}{}",
                    not_utf8(&e)
                )
            })
        }
        Err(e) if stdin_is_data => Err(format!(
            "-W/--password: cannot prompt for a password: no terminal to ask on (/dev/tty: {e}), \
             and standard input is the data (--from), not a password"
        )),
        Err(e) => {
            let stdin = std::io::stdin();
            // The prompt goes where every stderr write goes: a stderr that is gone does not
            // keep the password from being read.
            let read = ask(
                stdin.as_raw_fd(),
                &mut stdin.lock(),
                &mut crate::progress::Stderr,
            );
            match read {
                Ok(Some(password)) => Ok(password),
                // Nothing to read (`< /dev/null`, cron): psql would go on with no password and
                // fail to connect; copyman says why before connecting.
                Ok(None) => Err(format!(
                    "-W/--password: cannot prompt for a password: no terminal to ask on \
                     (/dev/tty: {e}), and standard input ended without a line"
                )),
                Err(e) => Err(format!(
                    "-W/--password: cannot read the password from standard input: {e}{}",
                    not_utf8(&e)
                )),
            }
        }
    }
}

/// The way to a password that is not UTF-8, after a prompt's error that says so: the ways
/// copyman sends as bytes (conn50 F4).
fn not_utf8(error: &std::io::Error) -> &'static str {
    match error.kind() {
        std::io::ErrorKind::InvalidData => {
            " (a password that is not UTF-8: give it in PGPASSWORD or the password file, \
             whose bytes copyman sends as they are)"
        }
        _ => "",
    }
}

/// Shows "Password: " on `output` and reads one line from `input` (the descriptor `fd`), echo
/// off while it is read if `fd` is a terminal, as psql's `simple_prompt`. End of input before a
/// newline gives what was read; `None` when it came before any byte.
fn ask(
    fd: std::os::fd::RawFd,
    input: &mut dyn std::io::BufRead,
    output: &mut dyn std::io::Write,
) -> std::io::Result<Option<String>> {
    let mut saved = std::mem::MaybeUninit::<libc::termios>::uninit();
    // SAFETY: `fd` is open (its owner outlives this call), and `saved.as_mut_ptr()` points to
    // writable memory the size of a `termios`.
    let terminal = (unsafe { libc::tcgetattr(fd, saved.as_mut_ptr()) } == 0).then(|| {
        // SAFETY: tcgetattr returned 0, so it filled in the whole `termios`.
        unsafe { saved.assume_init() }
    });
    // A signal at the prompt (Ctrl-C, Ctrl-\) ends the process there: the terminal's own
    // settings are put back first (it was left without echo: conn40 F6).
    let _restoring = terminal.map(|saved| RestoreOnSignal::install(fd, saved));
    if let Some(saved) = terminal {
        let mut quiet = saved;
        quiet.c_lflag &= !libc::ECHO;
        // SAFETY: `fd` is open; `quiet` is a valid `termios`, the terminal's own with ECHO
        // cleared.
        if unsafe { libc::tcsetattr(fd, libc::TCSAFLUSH, &quiet) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    let mut line = String::new();
    let read = output
        .write_all(b"Password: ")
        .and_then(|()| output.flush())
        .and_then(|()| input.read_line(&mut line));
    if let Some(saved) = terminal {
        // SAFETY: `fd` is open; `saved` is the terminal's own settings, read above.
        unsafe { libc::tcsetattr(fd, libc::TCSAFLUSH, &saved) };
    }
    // The newline the user typed was not echoed either (psql writes it in any case).
    let _ = output.write_all(b"\n").and_then(|()| output.flush());
    if read? == 0 {
        return Ok(None);
    }
    let password = line.strip_suffix('\n').unwrap_or(&line);
    Ok(Some(
        password.strip_suffix('\r').unwrap_or(password).to_owned(),
    ))
}

/// The terminal [`ask`] turned echo off on, and its own settings, for [`restore_and_die`].
static PROMPT_TTY: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);
static PROMPT_SAVED: std::sync::atomic::AtomicPtr<libc::termios> =
    std::sync::atomic::AtomicPtr::new(std::ptr::null_mut());

/// The signals that end the process at [`ask`]'s prompt (those not ignored), each with the
/// action it had, put back on drop.
struct RestoreOnSignal(Vec<(libc::c_int, libc::sigaction)>);

impl RestoreOnSignal {
    /// Has SIGINT, SIGQUIT, SIGTERM and SIGHUP (those not ignored) put `saved` back on
    /// terminal `fd` before they end the process.
    fn install(fd: std::os::fd::RawFd, saved: libc::termios) -> Self {
        use std::sync::atomic::Ordering;
        // Leaked: a handler may read it until the process ends (one prompt per run).
        PROMPT_SAVED.store(Box::into_raw(Box::new(saved)), Ordering::SeqCst);
        PROMPT_TTY.store(fd, Ordering::SeqCst);
        let mut previous = Vec::new();
        for signal in [libc::SIGINT, libc::SIGQUIT, libc::SIGTERM, libc::SIGHUP] {
            let mut old = std::mem::MaybeUninit::<libc::sigaction>::zeroed();
            // SAFETY: with a null new action, sigaction(2) only writes `signal`'s current
            // action into `old`, zero-initialised and large enough; read only on success.
            if unsafe { libc::sigaction(signal, std::ptr::null(), old.as_mut_ptr()) } != 0 {
                continue;
            }
            // SAFETY: filled by the successful call above.
            let old = unsafe { old.assume_init() };
            if old.sa_sigaction == libc::SIG_IGN {
                continue;
            }
            // SAFETY: a zeroed `sigaction` is a valid one (no flags, an empty mask); its
            // handler is set to `restore_and_die`, an `extern "C" fn(c_int)` as a plain
            // handler (no SA_SIGINFO) must be.
            let mut new: libc::sigaction = unsafe { std::mem::zeroed() };
            new.sa_sigaction = restore_and_die as extern "C" fn(libc::c_int) as usize;
            // SAFETY: `new` is a valid action for `signal`; the old one is not asked for.
            if unsafe { libc::sigaction(signal, &new, std::ptr::null_mut()) } == 0 {
                previous.push((signal, old));
            }
        }
        Self(previous)
    }
}

impl Drop for RestoreOnSignal {
    fn drop(&mut self) {
        for (signal, old) in &self.0 {
            // SAFETY: `old` is the action `signal` had, read by sigaction(2).
            unsafe { libc::sigaction(*signal, old, std::ptr::null_mut()) };
        }
        PROMPT_TTY.store(-1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A signal at [`ask`]'s prompt: the terminal's own settings back, then the signal's default
/// action (the process ends as it would have, its status the signal's).
extern "C" fn restore_and_die(signal: libc::c_int) {
    use std::sync::atomic::Ordering;
    let fd = PROMPT_TTY.load(Ordering::SeqCst);
    let saved = PROMPT_SAVED.load(Ordering::SeqCst);
    if fd >= 0 && !saved.is_null() {
        // SAFETY: tcsetattr(3) is async-signal-safe; `saved` points to the leaked `termios`
        // stored before this handler was installed, never freed.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, saved) };
    }
    // SAFETY: signal(2) and raise(3) are async-signal-safe; the default action of `signal`
    // (one of SIGINT, SIGQUIT, SIGTERM, SIGHUP) ends the process.
    unsafe {
        libc::signal(signal, libc::SIG_DFL);
        libc::raise(signal);
    }
}

/// The codeset a locale name (`LC_ALL`'s, `LANG`'s) names, lower case without `-` or `_`:
/// `utf8` for `en_US.UTF-8`, `iso88591` for `de_DE.ISO-8859-1@euro`, empty for `C` or `POSIX`.
pub(crate) fn locale_codeset(locale: &str) -> String {
    locale
        .split_once('.')
        .map(|(_, rest)| rest.split('@').next().unwrap_or(rest))
        .unwrap_or("")
        .to_ascii_lowercase()
        .replace(['-', '_'], "")
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use copyman_tls::SslMode;

    use super::*;

    #[test]
    fn classify_conns() {
        assert_eq!(Target::classify("-"), Target::Stdio);
        assert_eq!(
            Target::classify("data.csv"),
            Target::File("data.csv".into())
        );
        assert_eq!(
            Target::classify("./a=b.csv"),
            Target::File("./a=b.csv".into())
        );
        assert_eq!(Target::classify("/tmp/x"), Target::File("/tmp/x".into()));
        assert_eq!(
            Target::classify("host=db1 dbname=app"),
            Target::Server("host=db1 dbname=app".into())
        );
        assert_eq!(
            Target::classify("postgresql://db1/app"),
            Target::Server("postgresql://db1/app".into())
        );
        assert_eq!(Target::classify(""), Target::Server(String::new()));
    }

    #[test]
    fn connection_strings_written_with_colons_are_told() {
        for conn in [
            "host:127.0.0.1 port:59032 password:SECRETPW",
            "dbname:d3 password:SECRETPW",
            "password:x",
            "host 127.0.0.1 port 59032 password SECRETPW",
            "Host:db1 DBNAME:app",
        ] {
            assert!(conninfo_misspelt(conn), "{conn}");
            assert!(!hide_misspelt_password(conn).contains("SECRETPW"), "{conn}");
        }
        for conn in [
            "host:127.0.0.1",
            "password SECRETPW",
            "password: SECRETPW",
            "password 'SEC RET'",
            "host 10.0.0.5",
            "host: 10.0.0.5 port: 5432",
        ] {
            assert!(conninfo_misspelt(conn), "{conn}");
            assert!(!hide_misspelt_password(conn).contains("SEC"), "{conn}");
        }
        for file in [
            "out.csv",
            "user list.csv",
            "notes:host.txt",
            "./host:a port:b",
            "report host 1.csv",
        ] {
            assert!(!conninfo_misspelt(file), "{file}");
        }
    }

    #[test]
    fn servers_written_as_files_are_told() {
        for server in [
            "postgres@127.0.0.1:5432",
            "alice:S3cret@db1",
            "db2.example.com:5432",
            "db2:5432/app",
            "10.0.0.5",
            "10.0.0.5/postgres",
            "[::1]:5432",
            "::1",
            "127.0.0.1:999",
            "localhost:543",
            "127.0.0.1:60061:db1:scr:TopSecret99",
            "localhost:60061:db1",
            "db.example.com:5432:db1:scr:pw",
            "myhost:543:db1:scr:pw",
            "*:*:db1:scr:pw",
        ] {
            assert!(looks_like_a_server(server), "{server}");
        }
        for file in [
            "data.csv",
            "report.2024.csv",
            "./postgres@db1",
            "/tmp/a@b",
            "out",
            "x:y.csv",
            "1.2.3.csv",
            "exports/alice@corp.com.csv",
            "dump-2024-01-01T10:30",
            "dump-2024-01-01T10:30:00.csv",
            "1.2.3/x.csv",
        ] {
            assert!(!looks_like_a_server(file), "{file}");
        }
        for host in [
            "db2.example.com",
            "localhost",
            "pg-1.corp.internal",
            "DB.Example.ORG",
        ] {
            assert!(names_a_host(host), "{host}");
        }
        for file in [
            "data.csv",
            "report.2024.csv",
            "backup.tar.gz",
            "out",
            "t.copy",
            "a.b.TXT",
            "x..y.com",
            "./db2.example.com",
        ] {
            assert!(!names_a_host(file), "{file}");
        }
        assert_eq!(
            redact("alice:S3cretPW@127.0.0.1:57211"),
            "alice:***@127.0.0.1:57211"
        );
        // A user named like a scheme is a user.
        for user in ["postgres", "postgresql", "POSTGRES"] {
            let said = redact(&format!("{user}:S3cretPW@127.0.0.1:57211"));
            assert!(!said.contains("S3cretPW"), "{said}");
        }
    }

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact("postgresql://user:s3cret@db1:5432/app"),
            "postgresql://user:***@db1:5432/app"
        );
        assert_eq!(redact("postgres://user@db1/app"), "postgres://user@db1/app");
        assert_eq!(redact("postgresql://db1/app"), "postgresql://db1/app");
        assert_eq!(
            redact("postgresql://u:p@ss:w/rd@db1/app?application_name=x@y"),
            "postgresql://u:***@db1/app?application_name=x@y"
        );
        assert_eq!(
            redact("postgresql://db1/app?user=u&password=s3cret&sslmode=prefer"),
            "postgresql://db1/app?user=u&password=***&sslmode=prefer"
        );
        assert_eq!(
            redact("postgresql://u:pa?ss@db1/app"),
            "postgresql://u:***@db1/app"
        );
        // An `@` in the query only: no user info, and the query's password is still hidden.
        assert_eq!(
            redact("postgresql://127.0.0.1:1/db?user=alice@corp&password=s3cret"),
            "postgresql://127.0.0.1:1/db?user=alice@corp&password=***"
        );
        assert_eq!(
            redact("postgresql://h/db?PASSWORD=s3cret"),
            "postgresql://h/db?PASSWORD=***"
        );
    }

    #[test]
    fn a_password_redaction_missed_never_reaches_the_display() {
        // Separated by a whitespace only the postgres crate knew, in the past.
        let spec = resolve("host=h user=u dbname=d\u{2003}password=s3cret", &env(&[])).unwrap();
        assert_eq!(spec.config.get_password(), Some(&b"s3cret"[..]));
        assert!(!spec.display.contains("s3cret"), "{}", spec.display);
        // A key written in capitals.
        let err = resolve("host=h PASSWORD=s3cret", &env(&[])).unwrap_err();
        assert!(!err.to_string().contains("s3cret"), "{err}");
        assert!(!scrub("unexpected 'host=h PASSWORD=s3cret'").contains("s3cret"));
        let t = Target::classify("host=h password=s3cret");
        assert!(!format!("{t:?}").contains("s3cret"));
        let env = Env::from_pairs(&[("PGPASSWORD", "s3cret")]);
        assert!(!format!("{env:?}").contains("s3cret"));
    }

    #[test]
    fn a_connection_string_where_a_name_goes_is_refused_unshown() {
        // `PGDATABASE=$DATABASE_URL` and its kin: printed whole, password and all, as the
        // server's name and in its 3D000 (or the host lookup's error).
        let url = "postgresql://app:s3cret@db.example/prod";
        let runs = [
            ("host=h user=u", vec![("PGDATABASE", url)], "the dbname"),
            (
                "host=h user=u dbname='host=x password=s3cret'",
                vec![],
                "the dbname",
            ),
            ("user=u dbname=d", vec![("PGHOST", url)], "the host"),
            ("host=h,postgres://u:s3cret@x user=u", vec![], "the host"),
            // The user too (conn48 F1: the server's 28000 printed it, --json twice).
            ("host=h dbname=d", vec![("PGUSER", url)], "the user"),
            (
                "host=h user='u password=s3cret' dbname=d",
                vec![],
                "the user",
            ),
            (
                "host=h dbname=d",
                vec![("PGUSER", "u;password=s3cret")],
                "the user",
            ),
            (
                "host=h dbname=d",
                vec![("PGUSER", "u password = s3cret")],
                "the user",
            ),
            (
                "host=h user=u",
                vec![("PGDATABASE", "d password =s3cret")],
                "the dbname",
            ),
        ];
        for (conn, vars, what) in runs {
            let err = resolve(conn, &env(&vars)).unwrap_err().to_string();
            assert!(
                err.contains(&format!("{what} \"")) && err.contains("is a connection string"),
                "{conn}: {err}"
            );
            assert!(!err.contains("s3cret"), "{conn}: {err}");
        }
        // Names with `=`, `:` or `@` that are no connection string stay names.
        for conn in [
            "host=h user=u dbname='a=b'",
            "host=h user=u dbname='x:y@z'",
            "host=h user=app@server dbname=d",
        ] {
            assert!(resolve(conn, &env(&[])).is_ok(), "{conn}");
        }
    }

    #[test]
    fn conninfo_is_redacted() {
        assert_eq!(
            redact("host=db1 password=s3cret dbname=app"),
            "host=db1 password=*** dbname=app"
        );
        assert_eq!(
            redact(r"host=db1 password = 'it\'s secret' user=u"),
            "host=db1 password = *** user=u"
        );
        assert_eq!(redact("host=db1 password=a\\ b"), "host=db1 password=***");
        let unreadable = redact("host=db1 password='never closed");
        assert!(!unreadable.contains("never"), "{unreadable}");
        // A password file's line, refused as a server written as a file (conn64 F5).
        assert_eq!(
            redact("127.0.0.1:60061:db1:scr:TopSecret99"),
            "127.0.0.1:60061:db1:scr:***"
        );
        assert_eq!(redact("db:*:app:u:pw"), "db:*:app:u:***");
        assert_eq!(redact("a:b:c:d:e.csv"), "a:b:c:d:e.csv");
        // Its escapes, a password holding `:`, IPv6 hosts, an empty port (recheck64 F1).
        for (line, shown) in [
            (r"h:5432:db:u:pw\:x", "h:5432:db:u:***"),
            (r"h:5432:d\:b:u:Sekr1tPW", r"h:5432:d\:b:u:***"),
            ("h:5432:db:u:pw:with:colons", "h:5432:db:u:***"),
            ("[::1]:5432:db:u:Sekr1tPW", "[::1]:5432:db:u:***"),
            (r"\:\:1:5432:db:u:Sekr1tPW", r"\:\:1:5432:db:u:***"),
            ("h::db:u:Sekr1tPW", "h::db:u:***"),
            ("h:5432:db:u:", "h:5432:db:u:"),
        ] {
            assert_eq!(redact(line), shown, "{line}");
            assert!(looks_like_a_server(line), "{line}");
        }
        // Raw IPv6 (not libpq's form): more than the password hidden, never less.
        assert!(!redact("::1:5432:db:u:Sekr1tPW").contains("Sekr1tPW"));
    }

    #[test]
    fn free_text_is_scrubbed() {
        assert_eq!(
            scrub("unexpected argument 'host=x password=s3cret' found"),
            "unexpected argument 'host=x password=***' found"
        );
        assert_eq!(
            scrub("tip: postgresql://u:s3cret@h/db and password = 'a b' end"),
            "tip: postgresql://u:***@h/db and password=*** end"
        );
        assert_eq!(scrub("no secrets here"), "no secrets here");
        // A CONN of the command line, quoted whole: shown as a CONN is, whatever its password
        // holds (cli51 F1: a blank or a quote ended the free text's password).
        let args = [
            "postgresql://carol:Qs ecret@127.0.0.1:5432/d1",
            "host=h password='Qs\\'ecret x'",
            "postgresql://u@h/db?pass%77ord=Qs\"ecret",
        ];
        let text = format!(
            "TABLE: unexpected ':' of {:?}; unexpected argument '{}' found; and '{}'",
            args[0], args[1], args[2]
        );
        let shown = redact_arguments(&text, args.iter().map(Into::into));
        assert!(!shown.contains("ecret"), "{shown}");
        assert!(
            shown.contains("carol:***@127.0.0.1") && shown.contains("pass%77ord=***"),
            "{shown}"
        );
        // Quoted trimmed, as a value's parser quotes it (recheck51 F6).
        let arg = " host=h password='Qs ecret' \n";
        let shown = redact_arguments(
            &format!("invalid duration {:?}", arg.trim()),
            std::iter::once(arg.into()),
        );
        assert!(!shown.contains("ecret"), "{shown}");
        // A part of one, after a blank or before a slash (recheck51b F6).
        let arg = "5 postgresql://carol:Qs ecret@h/db";
        let text = "unknown unit \"postgresql://carol:Qs ecret@h/db\"; no directory \
                    postgresql://carol:Qs ecret@h";
        let shown = redact_arguments(text, std::iter::once(arg.into()));
        assert!(!shown.contains("ecret"), "{shown}");
        assert_eq!(
            redact_arguments("5 s", std::iter::once("5 s".into())),
            "5 s"
        );
        // A statement is no connection string: shown (recheck70 F2); one that cannot be read
        // and may hold a password is not.
        let sql = "SELECT * FROM t WHERE a=1";
        let said = format!("--send: the statement is not a COPY: {sql}");
        assert_eq!(redact_arguments(&said, std::iter::once(sql.into())), said);
        let unread = "host=h password=Qs'ecret";
        let shown = redact_arguments(&format!("bad: {unread}"), std::iter::once(unread.into()));
        assert!(!shown.contains("ecret"), "{shown}");
    }

    fn env(vars: &[(&str, &str)]) -> Env {
        // No password file unless a test names one.
        let mut all = vec![("PGPASSFILE", "/nonexistent/copyman-test-pgpass")];
        all.extend_from_slice(vars);
        Env::from_pairs(&all)
    }

    #[test]
    fn defaults_come_from_the_environment() {
        let spec = resolve(
            "",
            &env(&[
                ("PGHOST", "db1,/tmp/sock"),
                ("PGPORT", "5433"),
                ("PGUSER", "alice"),
                ("PGAPPNAME", "loader"),
                ("PGCONNECT_TIMEOUT", "1"),
                ("PGPASSWORD", "pw"),
            ]),
        )
        .unwrap();
        let c = &spec.config;
        assert_eq!(
            c.get_hosts(),
            &[Host::Tcp("db1".into()), Host::Unix("/tmp/sock".into())]
        );
        assert_eq!(c.get_ports(), &[5433]);
        assert_eq!(c.get_user(), Some("alice"));
        assert_eq!(c.get_dbname(), Some("alice"));
        assert_eq!(c.get_application_name(), Some("loader"));
        assert_eq!(c.get_connect_timeout(), Some(&Duration::from_secs(2)));
        assert_eq!(c.get_password(), Some(&b"pw"[..]));
        assert!(!spec.display.contains("pw"));

        let spec = resolve("user=bob", &env(&[("USER", "os"), ("PGDATABASE", "app")])).unwrap();
        // libpq's default host is the socket directory alone (not `localhost` after it).
        assert_eq!(
            spec.config.get_hosts(),
            &[Host::Unix(DEFAULT_SOCKET_DIR.into())]
        );
        assert_eq!(spec.config.get_user(), Some("bob"));
        assert_eq!(spec.config.get_dbname(), Some("app"));

        let spec = resolve("host=h", &env(&[("USER", "os")])).unwrap();
        assert_eq!(spec.config.get_user(), Some("os"));
        assert_eq!(spec.config.get_dbname(), Some("os"));
        assert_eq!(spec.config.get_password(), None);
    }

    #[test]
    fn explicit_parameters_win_over_the_environment() {
        let spec = resolve(
            "postgresql://carol:pw1@h1:6000/db1?application_name=mine",
            &env(&[
                ("PGHOST", "other"),
                ("PGPORT", "7000"),
                ("PGUSER", "dave"),
                ("PGDATABASE", "db2"),
                ("PGPASSWORD", "pw2"),
                ("PGAPPNAME", "theirs"),
            ]),
        )
        .unwrap();
        let c = &spec.config;
        assert_eq!(c.get_hosts(), &[Host::Tcp("h1".into())]);
        // A `hostaddr`, where the connection goes, is said beside the host (conn72 F3).
        let addressed = resolve(
            "host=/run/pg hostaddr=127.0.0.1 port=6001 user=u dbname=d",
            &env(&[]),
        )
        .unwrap();
        assert_eq!(addressed.display, "u@/run/pg:6001/d (address 127.0.0.1)");
        assert_eq!(c.get_ports(), &[6000]);
        assert_eq!(c.get_user(), Some("carol"));
        assert_eq!(c.get_dbname(), Some("db1"));
        assert_eq!(c.get_password(), Some(&b"pw1"[..]));
        assert_eq!(c.get_application_name(), Some("mine"));
        // Named as resolved: user@host:port/dbname, never the password.
        assert_eq!(spec.display, "carol@h1:6000/db1");
    }

    /// A bad PGSSLMODE is said with where it came from, as every other variable's bad value
    /// is (conn40 F10: the CONN, which holds no `sslmode`, was all it named).
    #[test]
    fn a_bad_sslmode_from_the_environment_names_it() {
        let said = |conn: &str, vars: &[(&str, &str)]| match resolve(conn, &env(vars)) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("{conn} {vars:?} resolved"),
        };
        let from_env = said("host=h user=u", &[("PGSSLMODE", "bogus")]);
        assert!(from_env.ends_with("(from PGSSLMODE)"), "{from_env}");
        // A socket path no socket address holds: refused here, in libpq's words (conn40 F9).
        let long = said(&format!("host=/tmp/{} user=u", "x".repeat(100)), &[]);
        assert!(long.ends_with("is too long (maximum 107 bytes)"), "{long}");
        let own = said("host=h user=u sslmode=bogus", &[]);
        assert!(
            own.starts_with("invalid sslmode \"bogus\"") && !own.contains("(from"),
            "{own}"
        );
    }

    #[test]
    fn tls_parameters_come_from_the_conn_or_the_environment() {
        let spec = resolve(
            "host=h user=u sslmode=verify-full sslrootcert=/ca.pem sslcert=/c.crt sslkey=/c.key",
            &env(&[]),
        )
        .unwrap();
        assert_eq!(spec.tls.mode, SslMode::VerifyFull);
        assert_eq!(spec.tls.root_cert.as_deref(), Some(Path::new("/ca.pem")));
        assert_eq!(spec.tls.cert.as_deref(), Some(Path::new("/c.crt")));
        assert_eq!(spec.tls.key.as_deref(), Some(Path::new("/c.key")));
        let spec = resolve(
            "postgresql://u@h/db?sslmode=require",
            &env(&[("PGSSLROOTCERT", "/env-ca.pem"), ("PGSSLMODE", "disable")]),
        )
        .unwrap();
        assert_eq!(
            spec.tls.mode,
            SslMode::Require,
            "the CONN wins over PGSSLMODE"
        );
        assert_eq!(
            spec.tls.root_cert.as_deref(),
            Some(Path::new("/env-ca.pem"))
        );
        let spec = resolve("host=h user=u", &env(&[("PGSSLMODE", "verify-ca")])).unwrap();
        assert_eq!(spec.tls.mode, SslMode::VerifyCa);
        assert_eq!(
            resolve("host=h user=u", &env(&[])).unwrap().tls.mode,
            SslMode::Prefer
        );
        let err = resolve("host=h user=u sslmode=bogus", &env(&[])).unwrap_err();
        assert!(matches!(err, ConnError::Invalid(_)), "{err}");
        assert!(
            err.to_string().contains("verify-full"),
            "names the valid modes: {err}"
        );
    }

    #[test]
    fn invalid_strings_do_not_echo_passwords() {
        let err = resolve("host=h password=s3cret bogus_option=1", &env(&[])).unwrap_err();
        assert!(matches!(err, ConnError::Invalid(_)));
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }

    /// `~` is `HOME`, or where it is unset or empty the password database's home directory, as
    /// in libpq: run with no `HOME` (cron, `env -i`, systemd units), `~/.pgpass` was not read.
    #[test]
    fn home_falls_back_to_the_password_database() {
        let mut env = env(&[]);
        env.os_home = Some("/home/from-passwd".to_owned());
        assert_eq!(env.home(), Some("/home/from-passwd"));
        env.vars.insert("HOME".to_owned(), String::new());
        assert_eq!(env.home(), Some("/home/from-passwd"));
        env.vars.insert("HOME".to_owned(), "/home/set".to_owned());
        assert_eq!(env.home(), Some("/home/set"));
        // The entry read is the effective user's, as `getent passwd` says it.
        let uid = String::from_utf8(
            std::process::Command::new("id")
                .arg("-u")
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        let getent = std::process::Command::new("getent")
            .args(["passwd", uid.trim()])
            .output()
            .unwrap();
        let line = String::from_utf8(getent.stdout).unwrap();
        let fields: Vec<&str> = line.trim().split(':').collect();
        assert_eq!(
            passwd_entry(),
            Some((fields[0].to_owned(), fields[5].to_owned()))
        );
    }

    #[test]
    fn pgpass_lines() {
        let content = "\
# comment line
db1:5432:app:alice:first
db1:*:*:alice:second
with\\:colon:5432:app:bob:esc\\:aped\\\\pw:ignored
*:*:*:*:fallback
";
        let look = |h, p, d, u| lookup_text(content, h, p, d, u);
        assert_eq!(
            look("db1", "5432", "app", "alice").as_deref(),
            Some("first")
        );
        assert_eq!(
            look("db1", "6000", "other", "alice").as_deref(),
            Some("second")
        );
        assert_eq!(
            look("db2", "5432", "app", "alice").as_deref(),
            Some("fallback")
        );
        assert_eq!(
            look("with:colon", "5432", "app", "bob").as_deref(),
            Some("esc:aped\\pw")
        );
        assert_eq!(
            lookup_text("db1:5432:app:alice", "db1", "5432", "app", "alice"),
            None
        );
        assert_eq!(
            lookup_text("db1:5432:app:alice:", "db1", "5432", "app", "alice").as_deref(),
            Some("")
        );
        assert_eq!(
            lookup_text("db:5432:app:al:pw", "db1", "5432", "app", "al"),
            None
        );
        assert_eq!(
            lookup_text("db12:5432:app:al:pw", "db1", "5432", "app", "al"),
            None
        );
        assert_eq!(
            lookup_text("db1:5432:app:al:pw\r\n", "db1", "5432", "app", "al").as_deref(),
            Some("pw")
        );
        // Bytes as they are: a LATIN1 password is sent as its bytes (conn42 F7).
        assert_eq!(
            pgpass_lookup(b"h:1:d:u:p\xe4ss\r\r\n", "h", "1", "d", "u").as_deref(),
            Some(&b"p\xe4ss"[..])
        );
    }

    /// [`pgpass_lookup`] of text, its password as text.
    fn lookup_text(content: &str, h: &str, p: &str, d: &str, u: &str) -> Option<String> {
        pgpass_lookup(content.as_bytes(), h, p, d, u).map(|p| String::from_utf8(p).unwrap())
    }

    fn passfile(mode: u32, content: &str) -> (PathBuf, impl Drop) {
        passfile_named("pgpass", mode, content)
    }

    fn passfile_named(name: &str, mode: u32, content: &str) -> (PathBuf, impl Drop) {
        struct Remove(PathBuf);
        impl Drop for Remove {
            fn drop(&mut self) {
                let _ = fs::remove_file(&self.0);
            }
        }
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("copyman-{name}-{}-{n}", std::process::id()));
        let mut file = fs::File::create(&path).unwrap();
        file.write_all(content.as_bytes()).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        (path.clone(), Remove(path))
    }

    /// A variable that is not UTF-8 stops a run only where it is used (conn50 F4: a LATIN1
    /// PGUSER stopped runs whose CONN gave `user=`), saying the way out; PGPASSWORD's bytes
    /// are sent as they are, as psql sends them.
    #[test]
    fn an_unreadable_variable_matters_only_where_it_is_used() {
        let env = |unreadable: &[&str]| Env {
            unreadable: unreadable.iter().map(|v| (*v).to_owned()).collect(),
            password_bytes: Some(vec![0xE9, b't', 0xE9]),
            ..Env::from_pairs(&[("USER", "os")])
        };
        let conn = "host=h user=alice dbname=d application_name=nightly";
        let spec = resolve(conn, &env(&["PGUSER", "PGAPPNAME"])).unwrap();
        assert_eq!(spec.config.get_user(), Some("alice"));
        assert_eq!(spec.hosts[0].get_password(), Some(&[0xE9, b't', 0xE9][..]));
        let Err(ConnError::Invalid(why)) = resolve("host=h dbname=d", &env(&["PGUSER"])) else {
            panic!("PGUSER is used");
        };
        assert!(
            why.contains("PGUSER is not valid UTF-8") && why.contains("give user= in the CONN"),
            "{why}"
        );
        // The CONN's password comes first.
        let spec = resolve("host=h user=a dbname=d password=pw", &env(&[])).unwrap();
        assert_eq!(spec.hosts[0].get_password(), Some(&b"pw"[..]));
        // One of no parameter (read before the CONN's parameters are known): at once.
        let Err(ConnError::Invalid(why)) = resolve("host=h user=a", &env(&["PGSERVICE"])) else {
            panic!("PGSERVICE is refused");
        };
        assert!(why.contains("PGSERVICE is not valid UTF-8"), "{why}");
        // One CRL file, where TLS is not tried: not read (recheck50 F3).
        let conn = "host=h user=a sslmode=disable";
        assert!(resolve(conn, &env(&["PGSSLCRL"])).is_ok());
        assert!(resolve("host=h user=a", &env(&["PGSSLCRL"])).is_err());
        // A TLS file copyman reads, as its bytes (recheck50b F4: refused under the default
        // sslmode, against a server without TLS too).
        let bytes = b"/caf\xe9/client.key".to_vec();
        let key = PathBuf::from(<OsString as std::os::unix::ffi::OsStringExt>::from_vec(
            bytes,
        ));
        let raw = Env {
            raw_paths: HashMap::from([("PGSSLKEY".to_owned(), key.clone())]),
            ..Env::from_pairs(&[])
        };
        let spec = resolve("host=h user=a", &raw).unwrap();
        assert_eq!(spec.tls.key, Some(key));
        // A file's, as its bytes: the password file read there.
        let (file, _guard) = passfile(0o600, "*:*:*:a:frombytes\n");
        let raw = Env {
            raw_paths: HashMap::from([("PGPASSFILE".to_owned(), file.clone())]),
            ..Env::from_pairs(&[])
        };
        let spec = resolve("host=h user=a", &raw).unwrap();
        assert_eq!(spec.hosts[0].get_password(), Some(&b"frombytes"[..]));
    }

    #[test]
    fn password_file_is_used_and_checked() {
        let (path, _guard) = passfile(
            0o600,
            "localhost:5432:app:alice:sockpw\nh2:5433:*:alice:tcppw\n",
        );
        let vars = |extra: &[(&str, &str)]| {
            let mut all = vec![("PGPASSFILE", path.to_str().unwrap())];
            all.extend_from_slice(extra);
            Env::from_pairs(&all)
        };
        // The default socket directory matches as `localhost`.
        let spec = resolve("dbname=app user=alice", &vars(&[])).unwrap();
        assert_eq!(spec.hosts[0].get_password(), Some(&b"sockpw"[..]));
        let spec = resolve("host=h2 port=5433 dbname=x user=alice", &vars(&[])).unwrap();
        assert_eq!(spec.hosts[0].get_password(), Some(&b"tcppw"[..]));
        // PGPASSWORD comes first.
        let spec = resolve("dbname=app user=alice", &vars(&[("PGPASSWORD", "env")])).unwrap();
        assert_eq!(spec.hosts[0].get_password(), Some(&b"env"[..]));
        // An empty password is none.
        let spec = resolve("dbname=app user=alice password=''", &vars(&[])).unwrap();
        assert_eq!(spec.hosts[0].get_password(), Some(&b"sockpw"[..]));
        // HOME/.pgpass when PGPASSFILE is unset.
        let dir = path
            .parent()
            .unwrap()
            .join(format!("copyman-home-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::copy(&path, dir.join(".pgpass")).unwrap();
        fs::set_permissions(dir.join(".pgpass"), fs::Permissions::from_mode(0o600)).unwrap();
        let home = Env::from_pairs(&[("HOME", dir.to_str().unwrap())]);
        let spec = resolve("dbname=app user=alice", &home).unwrap();
        assert_eq!(spec.hosts[0].get_password(), Some(&b"sockpw"[..]));
        fs::remove_dir_all(&dir).unwrap();

        let (open, _guard2) = passfile(0o644, "*:*:*:*:leaky\n");
        let env = Env::from_pairs(&[("PGPASSFILE", open.to_str().unwrap())]);
        let spec = resolve("host=h user=u", &env).unwrap();
        assert_eq!(spec.hosts[0].get_password(), None);
        assert_eq!(spec.warnings.len(), 1);
        assert!(
            spec.warnings[0].contains("group or world access"),
            "{:?}",
            spec.warnings
        );
    }

    #[test]
    fn mistyped_urls_are_refused_and_never_shown_with_their_password() {
        for text in [
            "postgresql:/alice:s3cret@db1/app",
            "postgresql//alice:s3cret@db1/app",
            "postgres:alice:s3cret@db1/app",
            "POSTGRESQL:/alice:s3cret@db1/app",
            "postgres:s3cret@db1:5432",
        ] {
            assert!(
                matches!(Target::classify(text), Target::Server(_)),
                "{text} taken for a file"
            );
            let err = resolve(text, &env(&[])).unwrap_err().to_string();
            assert!(!err.contains("s3cret"), "{err}");
            assert!(err.contains(":***@db1"), "{err}");
            assert!(err.contains("\"postgresql://\""), "{err}");
            assert!(!redact(text).contains("s3cret"), "{}", redact(text));
        }
        // Files keep being files, shown without what looks like a password.
        assert_eq!(
            Target::classify("backups/postgresql-app.csv"),
            Target::File("backups/postgresql-app.csv".into())
        );
        assert_eq!(
            redact("/tmp/alice:s3cret@db1.csv"),
            "/tmp/alice:***@db1.csv"
        );
        assert_eq!(redact("./a:b:c@d/e@f"), "./a:***@f");
        assert_eq!(redact("/tmp/mail@example.csv"), "/tmp/mail@example.csv");
        let scrubbed = scrub("unexpected argument 'postgresql:/alice:s3cret@db1/app' found");
        assert_eq!(
            scrubbed,
            "unexpected argument 'postgresql:/alice:***@db1/app' found"
        );
    }

    #[test]
    fn url_parts_left_out_come_from_the_environment() {
        let spec = resolve(
            "postgresql://:5433/app?user=u",
            &env(&[("PGHOST", "/tmp/sockets")]),
        )
        .unwrap();
        assert_eq!(
            spec.config.get_hosts(),
            &[Host::Unix("/tmp/sockets".into())]
        );
        assert_eq!(spec.config.get_ports(), &[5433]);
        // No port in the URL: PGPORT's, as in libpq (the postgres crate would say 5432).
        let spec = resolve("postgresql://db1/app?user=u", &env(&[("PGPORT", "6000")])).unwrap();
        assert_eq!(spec.config.get_ports(), &[6000]);
        // No host at all: libpq's defaults.
        let spec = resolve("postgresql://:5433/app?user=u", &env(&[])).unwrap();
        // libpq's default host is the socket directory alone (not `localhost` after it).
        assert_eq!(
            spec.config.get_hosts(),
            &[Host::Unix(DEFAULT_SOCKET_DIR.into())]
        );
        let spec = resolve("postgresql://u@[::1]:7000,db2/app?ssl=true", &env(&[])).unwrap();
        assert_eq!(
            spec.config.get_hosts(),
            &[Host::Tcp("::1".into()), Host::Tcp("db2".into())]
        );
        assert_eq!(spec.config.get_ports(), &[7000, 5432]);
        assert_eq!(spec.tls.mode, SslMode::Require);
    }

    #[test]
    fn options_copyman_cannot_honour_are_refused_by_name() {
        for (conn, key) in [
            ("gssencmode=require", "gssencmode"),
            ("sslcrl=/crl.pem", "sslcrl"),
            ("sslcrldir=/crls", "sslcrldir"),
            ("sslpassword=s3cret", "sslpassword"),
            ("require_auth=scram-sha-256", "require_auth"),
            ("sslnegotiation=direct", "sslnegotiation"),
            ("load_balance_hosts=random", "load_balance_hosts"),
            ("replication=database", "replication"),
            (
                "ssl_max_protocol_version=TLSv1.1",
                "ssl_max_protocol_version",
            ),
        ] {
            let err = resolve(&format!("host=h user=u {conn}"), &env(&[])).unwrap_err();
            let text = err.to_string();
            assert!(text.contains(&format!("\"{key}\"")), "{conn}: {text}");
            assert!(text.contains("not supported"), "{conn}: {text}");
            assert!(!text.contains("s3cret"), "{text}");
            // A refused keyword is said with the option; a file or secret never is.
            let value = conn.split_once('=').unwrap().1;
            assert_eq!(
                text.contains(&format!("value \"{value}\" of")),
                refused_by_value(key),
                "{text}"
            );
        }
        let err = resolve("host=h user=u", &env(&[("PGGSSENCMODE", "require")])).unwrap_err();
        assert!(err.to_string().contains("from PGGSSENCMODE"), "{err}");
        // Harmless ones are accepted.
        let spec = resolve(
            "host=h user=u connect_timeout=10 keepalives=1 keepalives_idle=30 \
             keepalives_interval=5 keepalives_count=3 tcp_user_timeout=0 sslnegotiation=postgres \
             target_session_attrs=any gssencmode=disable sslcompression=0 sslsni=1 \
             load_balance_hosts=disable ssl_min_protocol_version=TLSv1.2 sslcertmode=allow",
            &env(&[]),
        )
        .unwrap();
        assert_eq!(
            spec.config.get_connect_timeout(),
            Some(&Duration::from_secs(10))
        );
        assert!(
            resolve(
                "postgresql://h/db?user=u&gssencmode=disable&keepalives=0",
                &env(&[])
            )
            .is_ok()
        );
    }

    #[test]
    fn errors_say_invalid_connection_string_once() {
        for (conn, expected) in [
            (
                "host=h bogus_option=1",
                "invalid connection string: invalid connection option \"bogus_option\"",
            ),
            (
                "postgresql://h/db?bogus=1",
                "invalid connection string: invalid URL query parameter \"bogus\"",
            ),
            (
                "host=h user=u keepalives=lots",
                "invalid integer value \"lots\" for connection option \"keepalives\"",
            ),
            (
                "host=h user",
                "invalid connection string: a word without \"=\" at character 8",
            ),
        ] {
            let err = resolve(conn, &env(&[])).unwrap_err().to_string();
            assert_eq!(err, expected, "{conn}");
        }
        let err = resolve("host=h port=54x32", &env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("invalid port number \"54x32\""), "{err}");
    }

    /// A file in the temporary directory, removed when dropped.
    fn temp_file(name: &str, content: &str) -> (PathBuf, impl Drop) {
        passfile_named(name, 0o600, content)
    }

    #[test]
    fn services_fill_in_what_the_conn_leaves_out() {
        let (user_file, _u) = temp_file(
            "user-services",
            "# mine\n[main]\nhost=userhost\nport=6001\ndbname=fromservice\n\n[other]\nhost=x\n",
        );
        let dir = std::env::temp_dir().join(format!("copyman-sysconf-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join("pg_service.conf"),
            "[main]\nhost=systemhost\n[sys]\n  host=syshost  \nuser=sysuser\nuser=ignored\n\
             options=-c search_path=app\n",
        )
        .unwrap();
        let vars = |extra: &[(&str, &str)]| {
            let mut all = vec![
                ("PGSERVICEFILE", user_file.to_str().unwrap()),
                ("PGSYSCONFDIR", dir.to_str().unwrap()),
                ("USER", "os"),
            ];
            all.extend_from_slice(extra);
            env(&all)
        };
        // The user's file wins over the system's; the CONN wins over the service; the service
        // wins over the environment.
        let spec = resolve("service=main dbname=mine", &vars(&[("PGHOST", "envhost")])).unwrap();
        assert_eq!(spec.config.get_hosts(), &[Host::Tcp("userhost".into())]);
        assert_eq!(spec.config.get_ports(), &[6001]);
        assert_eq!(spec.config.get_dbname(), Some("mine"));
        assert_eq!(spec.config.get_user(), Some("os"));
        // PGSERVICE, found in the system file only; the first value of a key wins.
        let spec = resolve("", &vars(&[("PGSERVICE", "sys")])).unwrap();
        assert_eq!(spec.config.get_hosts(), &[Host::Tcp("syshost".into())]);
        assert_eq!(spec.config.get_user(), Some("sysuser"));
        assert_eq!(spec.config.get_options(), Some("-c search_path=app"));
        let spec = resolve("postgresql://u@/db?service=sys", &vars(&[])).unwrap();
        assert_eq!(spec.config.get_hosts(), &[Host::Tcp("syshost".into())]);
        assert_eq!(spec.config.get_user(), Some("u"));
        let err = resolve("service=nowhere", &vars(&[])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "definition of service \"nowhere\" not found"
        );

        let (bad, _b) = temp_file("bad-services", "[a]\nhost=h\nservice=b\n[c]\nhost h\n");
        let with = |file: &Path| env(&[("PGSERVICEFILE", file.to_str().unwrap())]);
        let err = resolve("service=a", &with(&bad)).unwrap_err().to_string();
        assert!(
            err.contains("nested service") && err.contains("line 3"),
            "{err}"
        );
        let err = resolve("service=c", &with(&bad)).unwrap_err().to_string();
        assert!(
            err.contains("syntax error") && err.contains("line 5"),
            "{err}"
        );
        // libpq built with LDAP looks such a line up; copyman says it cannot, not "syntax error".
        let (ldap, _l) = temp_file(
            "ldap-services",
            "[d]\nldap://ldap.example.com/dc=example,dc=com?uniqueMember?one?(cn=db)\n",
        );
        let err = resolve("service=d", &with(&ldap)).unwrap_err().to_string();
        assert!(
            err.contains("line 2: an LDAP lookup, which copyman does not do"),
            "{err}"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn client_encoding_options_and_application_names() {
        // Set in the options (or PGOPTIONS), as libpq leaves it: the CONN's.
        for (conn, vars) in [
            ("host=h user=u options='-c client_encoding=LATIN1'", &[][..]),
            (
                "host=h user=u",
                &[("PGOPTIONS", "-c client_encoding=LATIN1")][..],
            ),
        ] {
            let spec = resolve(conn, &env(vars)).unwrap();
            assert_eq!(spec.client_encoding(), "LATIN1", "{conn} {vars:?}");
        }
        // Any of an encoding's names is that encoding.
        for (conn, name) in [
            ("host=h user=u client_encoding=UNICODE", "UTF8"),
            ("host=h user=u client_encoding=ISO_8859_1", "LATIN1"),
            ("host=h user=u client_encoding=iso88591", "LATIN1"),
        ] {
            assert_eq!(resolve(conn, &env(&[])).unwrap().client_encoding(), name);
        }
        // The parameter wins, as the server applies the startup packet's after the options.
        let spec = resolve(
            "host=h user=u client_encoding=WIN1252 options='-c client_encoding=LATIN1'",
            &env(&[]),
        )
        .unwrap();
        assert_eq!(spec.client_encoding(), "WIN1252");
        let spec = resolve("host=h user=u client_encoding=LATIN1", &env(&[])).unwrap();
        assert_eq!(
            spec.startup,
            [("client_encoding".to_owned(), "LATIN1".to_owned())]
        );
        let spec = resolve("host=h user=u", &env(&[("PGCLIENTENCODING", "WIN1252")])).unwrap();
        assert_eq!(spec.startup[0].1, "WIN1252");
        let spec = resolve(
            "host=h user=u client_encoding=auto",
            &env(&[("LANG", "de_DE.ISO-8859-1")]),
        )
        .unwrap();
        assert_eq!(spec.startup[0].1, "LATIN1");
        assert!(
            resolve("host=h user=u", &env(&[]))
                .unwrap()
                .startup
                .is_empty()
        );
        // An empty one is none, as libpq sends none; one the server does not know is refused.
        let spec = resolve("host=h user=u client_encoding=''", &env(&[])).unwrap();
        assert!(spec.startup.is_empty(), "{:?}", spec.startup);
        let refused = resolve("host=h user=u client_encoding=bogus", &env(&[]))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            refused.contains("\"client_encoding\": \"bogus\""),
            "{refused}"
        );

        let spec = resolve(
            "host=h user=u",
            &env(&[("PGOPTIONS", "-c search_path=app")]),
        )
        .unwrap();
        assert_eq!(spec.config.get_options(), Some("-c search_path=app"));

        let named = |conn: &str, vars: &[(&str, &str)]| {
            resolve(conn, &env(vars))
                .unwrap()
                .config
                .get_application_name()
                .map(str::to_owned)
        };
        let conn = "host=h user=u fallback_application_name=fallback";
        assert_eq!(named(conn, &[]).as_deref(), Some("fallback"));
        assert_eq!(named(conn, &[("PGAPPNAME", "env")]).as_deref(), Some("env"));
        assert_eq!(
            named(&format!("{conn} application_name=mine"), &[]).as_deref(),
            Some("mine")
        );
    }

    #[test]
    fn each_host_of_a_list_has_its_own_password_file_entry() {
        let (path, _guard) = passfile(
            0o600,
            "127.0.0.1:5001:*:app:first\n127.0.0.1:5002:*:app:second\nlocalhost:5003:*:app:local\n",
        );
        let vars = env(&[("PGPASSFILE", path.to_str().unwrap())]);
        let spec = resolve(
            "host=127.0.0.1,127.0.0.1,127.0.0.1 port=5001,5002,5009 user=app",
            &vars,
        )
        .unwrap();
        let passwords: Vec<Option<&[u8]>> = spec
            .hosts
            .iter()
            .map(postgres::Config::get_password)
            .collect();
        assert_eq!(
            passwords,
            [Some(&b"first"[..]), Some(&b"second"[..]), None],
            "never one host's password to another"
        );
        // The whole CONN carries none of them: it is not connected to.
        assert_eq!(spec.config.get_password(), None);
        // A host given by `hostaddr` alone is `localhost` in the password file, as in libpq.
        let spec = resolve("hostaddr=127.0.0.1 port=5003 user=app", &vars).unwrap();
        assert_eq!(spec.hosts[0].get_password(), Some(&b"local"[..]));
        // An empty `passfile` is none given: `~/.pgpass` (not PGPASSFILE: the CONN set it), as
        // in libpq.
        let home = path.with_extension("home");
        fs::create_dir_all(&home).unwrap();
        fs::write(home.join(".pgpass"), "*:*:*:app:at-home\n").unwrap();
        fs::set_permissions(home.join(".pgpass"), fs::Permissions::from_mode(0o600)).unwrap();
        let at_home = env(&[
            ("PGPASSFILE", path.to_str().unwrap()),
            ("HOME", home.to_str().unwrap()),
        ]);
        let spec = resolve("host=127.0.0.1 port=5001 user=app passfile=''", &at_home).unwrap();
        assert_eq!(spec.hosts[0].get_password(), Some(&b"at-home"[..]));
        fs::remove_dir_all(&home).unwrap();
        // An empty `hostaddr` entry means the host's name, as in libpq.
        let spec = resolve("host=a,b hostaddr=127.0.0.1, user=app", &vars).unwrap();
        assert_eq!(spec.hosts[0].get_hostaddrs().len(), 1);
        assert!(spec.hosts[1].get_hostaddrs().is_empty());
        assert_eq!(spec.hosts[1].get_hosts(), &[Host::Tcp("b".into())]);
        // Port 0 is no port, said before connecting.
        let err = resolve("host=h port=0 user=app", &vars)
            .unwrap_err()
            .to_string();
        assert!(err.contains("invalid port number \"0\""), "{err}");
        // TCP options reach every host's configuration; tcp_user_timeout in milliseconds, as
        // libpq's.
        let spec = resolve(
            "host=a,b user=u keepalives_idle=7 keepalives_count=3 tcp_user_timeout=1500",
            &vars,
        )
        .unwrap();
        for config in &spec.hosts {
            assert_eq!(config.get_keepalives_idle(), Duration::from_secs(7));
            assert_eq!(config.get_keepalives_retries(), Some(3));
            assert_eq!(
                config.get_tcp_user_timeout(),
                Some(&Duration::from_millis(1500))
            );
        }
        // An empty user or database is the default one.
        let spec = resolve("host=h user='' dbname=''", &env(&[("USER", "os")])).unwrap();
        assert_eq!(
            (spec.config.get_user(), spec.config.get_dbname()),
            (Some("os"), Some("os"))
        );
    }

    #[test]
    fn a_service_file_named_must_exist() {
        let (file, _guard) = temp_file("services", "[prod]\nhost=h\n");
        let missing = file.with_extension("missing");
        let err = resolve(
            "service=prod",
            &env(&[("PGSERVICEFILE", missing.to_str().unwrap()), ("USER", "u")]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("not found") && err.contains(".missing"),
            "{err}"
        );
        let conn = format!("service=prod servicefile={}", missing.display());
        assert!(resolve(&conn, &env(&[("USER", "u")])).is_err());
        // PGSERVICE set but empty names a service (none has that name), as in libpq.
        let err = resolve(
            "host=h",
            &env(&[("PGSERVICE", ""), ("PGSERVICEFILE", file.to_str().unwrap())]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("definition of service \"\" not found"),
            "{err}"
        );
    }

    /// A service file's value in other bytes than UTF-8 (a LATIN1 password) is refused by its
    /// key: read with replacements, another password was sent (recheck42 F8).
    #[test]
    fn a_service_value_that_is_not_utf8_is_refused() {
        let (file, _guard) = temp_file("latin1-services", "");
        fs::write(&file, b"[lat]\nhost=h\npassword=p\xe4ss\n").unwrap();
        let err = resolve(
            "service=lat",
            &env(&[("PGSERVICEFILE", file.to_str().unwrap()), ("USER", "u")]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("the value of password in [lat] is not valid UTF-8"),
            "{err}"
        );
    }

    #[test]
    fn hostaddr_connects_and_host_names() {
        let (path, _guard) = passfile(0o600, "db.example:5432:*:u:byname\n*:*:*:*:other\n");
        let vars = env(&[("PGPASSFILE", path.to_str().unwrap())]);
        let spec = resolve("host=db.example hostaddr=127.0.0.1 user=u", &vars).unwrap();
        assert_eq!(spec.config.get_hosts(), &[Host::Tcp("db.example".into())]);
        assert_eq!(
            spec.config.get_hostaddrs(),
            &["127.0.0.1".parse::<std::net::IpAddr>().unwrap()]
        );
        // The password file is matched by the host name, as libpq matches it.
        assert_eq!(spec.hosts[0].get_password(), Some(&b"byname"[..]));
        let err = resolve("host=a,b hostaddr=127.0.0.1 user=u", &vars).unwrap_err();
        assert!(
            err.to_string()
                .contains("could not match 2 host names to 1 hostaddr")
        );
        // `passfile` in the CONN comes before PGPASSFILE.
        let (mine, _guard2) = passfile(0o600, "*:*:*:*:mine\n");
        let spec = resolve(
            &format!("host=h user=u passfile='{}'", mine.display()),
            &vars,
        )
        .unwrap();
        assert_eq!(spec.hosts[0].get_password(), Some(&b"mine"[..]));
    }

    #[test]
    fn a_prompted_password_comes_after_the_conns_only() {
        let vars = env(&[("PGPASSWORD", "fromenv")]);
        let mut spec = resolve("host=h user=u", &vars).unwrap();
        spec.use_prompted_password("typed");
        assert_eq!(spec.config.get_password(), Some(&b"typed"[..]));
        let mut spec = resolve("host=h user=u password=written", &vars).unwrap();
        spec.use_prompted_password("typed");
        assert_eq!(spec.config.get_password(), Some(&b"written"[..]));
    }

    #[test]
    fn requiressl_is_read_as_sslmode_as_libpq_15_reads_it() {
        let mode = |conn: &str, vars: &[(&str, &str)]| resolve(conn, &env(vars)).unwrap().tls.mode;
        // The keyword is sslmode spelled the old way: 1… is require, anything else prefer, and
        // of the two keywords the last one wins, in both forms of CONN.
        assert_eq!(mode("host=h user=u requiressl=1", &[]), SslMode::Require);
        assert_eq!(mode("host=h user=u requiressl=0", &[]), SslMode::Prefer);
        assert_eq!(
            mode("host=h user=u sslmode=disable requiressl=1", &[]),
            SslMode::Require
        );
        assert_eq!(
            mode("host=h user=u requiressl=1 sslmode=disable", &[]),
            SslMode::Disable
        );
        assert_eq!(
            mode("postgresql://u@h/db?requiressl=1", &[]),
            SslMode::Require
        );
        // Given in the CONN, requiressl=0 is an sslmode (prefer): PGSSLMODE does not replace it.
        assert_eq!(
            mode("host=h user=u requiressl=0", &[("PGSSLMODE", "require")]),
            SslMode::Prefer
        );
        // PGREQUIRESSL starting with 1 is require where no sslmode was given; a given one wins,
        // from the CONN or from PGSSLMODE; other values are ignored.
        assert_eq!(
            mode("host=h user=u", &[("PGREQUIRESSL", "1")]),
            SslMode::Require
        );
        assert_eq!(
            mode(
                "host=h user=u",
                &[("PGREQUIRESSL", "1"), ("PGSSLMODE", "disable")]
            ),
            SslMode::Disable
        );
        assert_eq!(
            mode("host=h user=u sslmode=verify-ca", &[("PGREQUIRESSL", "1")]),
            SslMode::VerifyCa
        );
        assert_eq!(
            mode("host=h user=u requiressl=0", &[("PGREQUIRESSL", "1")]),
            SslMode::Prefer
        );
        for ignored in ["0", "yes", "true", ""] {
            assert_eq!(
                mode("host=h user=u", &[("PGREQUIRESSL", ignored)]),
                SslMode::Prefer,
                "PGREQUIRESSL={ignored:?}"
            );
        }
    }

    #[test]
    fn sslrootcert_system_makes_verify_full_the_default_as_libpq_16_does() {
        let resolved = |conn: &str, vars: &[(&str, &str)]| resolve(conn, &env(vars));
        // No sslmode given anywhere: verify-full, whoever names the system's roots.
        for (conn, vars) in [
            ("host=h user=u sslrootcert=system", &[][..]),
            ("postgresql://u@h/db?sslrootcert=system", &[]),
            ("postgresql://u@h/db", &[("PGSSLROOTCERT", "system")]),
        ] {
            let spec = resolved(conn, vars).unwrap();
            assert_eq!(spec.tls.mode, SslMode::VerifyFull, "{conn} {vars:?}");
            assert_eq!(spec.tls.root_cert.as_deref(), Some(Path::new("system")));
        }
        assert_eq!(
            resolved("host=h user=u sslmode=verify-full sslrootcert=system", &[])
                .unwrap()
                .tls
                .mode,
            SslMode::VerifyFull
        );
        // Any other mode given is refused before connecting, in libpq's words (a usage error),
        // wherever it was given: the CONN, PGSSLMODE, PGREQUIRESSL, a service.
        let weak = |mode: &str| {
            format!(
                "weak sslmode \"{mode}\" may not be used with sslrootcert=system (use \
                 \"verify-full\")"
            )
        };
        let refused = |conn: &str, vars: &[(&str, &str)]| {
            let ConnError::Invalid(err) = resolved(conn, vars).unwrap_err();
            err
        };
        for mode in ["disable", "allow", "prefer", "require", "verify-ca"] {
            assert_eq!(
                refused(
                    &format!("host=h user=u sslmode={mode} sslrootcert=system"),
                    &[]
                ),
                weak(mode)
            );
        }
        assert_eq!(
            refused("host=h user=u requiressl=0 sslrootcert=system", &[]),
            weak("prefer")
        );
        assert_eq!(
            refused(
                "host=h user=u sslrootcert=system",
                &[("PGSSLMODE", "prefer")]
            ),
            format!("{} (sslmode from PGSSLMODE)", weak("prefer"))
        );
        assert_eq!(
            refused(
                "host=h user=u",
                &[("PGSSLMODE", "require"), ("PGSSLROOTCERT", "system")]
            ),
            format!(
                "{} (sslmode from PGSSLMODE, sslrootcert from PGSSLROOTCERT)",
                weak("require")
            )
        );
        assert_eq!(
            refused("host=h user=u sslrootcert=system", &[("PGREQUIRESSL", "1")]),
            format!("{} (sslmode from PGREQUIRESSL)", weak("require"))
        );
        let (services, _guard) = temp_file("tls-services", "[weak]\nsslmode=require\n");
        let err = refused(
            "service=weak host=h user=u sslrootcert=system",
            &[("PGSERVICEFILE", services.to_str().unwrap())],
        );
        assert!(
            err.starts_with(&format!("{} (sslmode from service file", weak("require"))),
            "{err}"
        );
    }

    #[test]
    fn a_client_key_others_may_read_is_refused_before_connecting_where_tls_is_certain() {
        let (cert, _c) = passfile_named("client.crt", 0o644, "(a certificate)");
        let (key, _k) = passfile_named("client.key", 0o644, "(a key)");
        let conn = |extra: &str| {
            format!(
                "user=u sslcert={} sslkey={} {extra}",
                cert.display(),
                key.display()
            )
        };
        let ConnError::Invalid(err) =
            resolve(&conn("host=db sslmode=require"), &env(&[])).unwrap_err();
        assert_eq!(
            err,
            format!(
                "private key file \"{}\" has group or world access; file must have permissions \
                 u=rw (0600) or less if owned by the current user, or permissions u=rw,g=r \
                 (0640) or less if owned by root",
                key.display()
            )
        );
        // From the environment too, by address too, under every mode that requires TLS.
        let vars = [
            ("PGSSLCERT", cert.to_str().unwrap()),
            ("PGSSLKEY", key.to_str().unwrap()),
            ("PGSSLMODE", "verify-ca"),
        ];
        assert!(resolve("host=db user=u", &env(&vars)).is_err());
        assert!(resolve("hostaddr=127.0.0.1 user=u", &env(&vars)).is_err());
        assert!(resolve(&conn("host=db sslmode=verify-full"), &env(&[])).is_err());
        // The tester's F2: libpq looks at the key only once TLS is being set up, so under
        // allow/prefer (the default) a server without TLS never sees it — said by the TLS
        // attempt, if there is one; where a socket may be used, and where TLS never is, nothing.
        resolve(&conn("host=db"), &env(&[])).unwrap();
        resolve(&conn("host=db sslmode=allow"), &env(&[])).unwrap();
        resolve(&conn("host=/tmp,db sslmode=require"), &env(&[])).unwrap();
        resolve(&conn("host=db sslmode=disable"), &env(&[])).unwrap();
        resolve(&conn("host=/tmp"), &env(&[])).unwrap();
        resolve(&conn(""), &env(&[])).unwrap();
        // A certificate that does not exist: no client certificate, its key not looked at.
        let absent = format!(
            "host=db user=u sslmode=require sslcert=/nonexistent/client.crt sslkey={}",
            key.display()
        );
        resolve(&absent, &env(&[])).unwrap();
        // The owner's alone: taken (what is in it is read when connecting).
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
        resolve(&conn("host=db sslmode=require"), &env(&[])).unwrap();
    }

    /// Once a session reached a host name at one of its addresses, every later one goes to that
    /// address (`hostaddr`), the name kept for TLS: the name's other addresses may be other
    /// servers (a job's table was read from, or committed on, another server).
    #[test]
    fn later_sessions_go_to_the_address_the_first_one_reached() {
        let spec = resolve("host=db.example port=5433 user=u", &env(&[])).unwrap();
        assert!(spec.session_config().get_hostaddrs().is_empty());
        let ip: std::net::IpAddr = "127.0.0.9".parse().unwrap();
        let pin = Pin {
            host: 0,
            addr: Some(ip),
            kind: SessionAttrs::Any,
        };
        spec.pinned.set(pin).unwrap();
        let config = spec.session_config();
        assert_eq!(config.get_hostaddrs(), &[ip]);
        assert_eq!(config.get_hosts(), spec.config.get_hosts());
    }

    #[test]
    fn pgtz_pgdatestyle_and_pggeqo_are_startup_settings_as_in_libpq() {
        let startup = |vars: &[(&str, &str)]| resolve("host=h user=u", &env(vars)).unwrap().startup;
        let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        assert_eq!(
            startup(&[("PGTZ", "Asia/Tokyo"), ("PGGEQO", "off")]),
            [pair("timezone", "Asia/Tokyo"), pair("geqo", "off")]
        );
        // `default`, in any case, is not sent; the empty value is (the server refuses it).
        assert!(startup(&[("PGTZ", "DEFAULT"), ("PGGEQO", "default")]).is_empty());
        assert_eq!(startup(&[("PGTZ", "")]), [pair("timezone", "")]);
        // PGDATESTYLE is the DateStyle of the sessions that read data written elsewhere (a file)
        // as psql's \copy does; the others keep the portable ISO.
        let mut spec = resolve("host=h user=u", &env(&[("PGDATESTYLE", "SQL, DMY")])).unwrap();
        assert!(spec.startup.is_empty(), "{:?}", spec.startup);
        spec.read_as_the_server();
        assert_eq!(
            spec.startup,
            [
                pair("DateStyle", "SQL, DMY"),
                pair("IntervalStyle", ""),
                pair("lc_monetary", ""),
                pair("array_nulls", "")
            ]
        );
        // A destination of a server's data: its own date order and interval style, money in C.
        let mut spec = resolve("host=h user=u", &env(&[("PGDATESTYLE", "SQL, DMY")])).unwrap();
        spec.read_server_data();
        assert_eq!(
            spec.startup,
            [pair("DateStyle", "SQL, DMY"), pair("IntervalStyle", "")]
        );
        let mut spec = resolve("host=h user=u", &env(&[])).unwrap();
        spec.read_as_the_server();
        assert_eq!(
            spec.startup,
            [
                pair("DateStyle", ""),
                pair("IntervalStyle", ""),
                pair("lc_monetary", ""),
                pair("array_nulls", "")
            ]
        );
    }

    /// What copyman does with an environment variable libpq reads.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Use {
        /// It changes the connection as libpq's.
        Honoured,
        /// A value that changes libpq's behaviour is refused, naming the variable.
        Refused,
        /// It changes nothing copyman does (said in the README).
        Unused,
    }

    /// An environment variable, a value that changes what libpq does, the other variables the
    /// value needs to matter, and what copyman does with it.
    type Variable = (
        &'static str,
        &'static str,
        &'static [(&'static str, &'static str)],
        Use,
    );

    /// Every environment variable libpq reads: libpq 15's (`strings libpq.so.5.15`:
    /// `PQconninfoOptions`' fallbacks, `EnvironmentOptions`, PGREQUIRESSL, PGSERVICE,
    /// PGSERVICEFILE, PGSYSCONFDIR, PGLOCALEDIR) and those later versions added, up to 18. Each
    /// with a value that changes what libpq does, the other variables the value needs to
    /// matter, and what copyman does with it.
    const LIBPQ_VARIABLES: &[Variable] = &[
        ("PGHOST", "h9", &[], Use::Honoured),
        ("PGHOSTADDR", "10.0.0.9", &[], Use::Honoured),
        ("PGPORT", "6000", &[], Use::Honoured),
        ("PGDATABASE", "db9", &[], Use::Honoured),
        ("PGUSER", "u9", &[], Use::Honoured),
        ("PGPASSWORD", "pw9", &[], Use::Honoured),
        ("PGPASSFILE", "(a password file)", &[], Use::Honoured),
        (
            "PGSERVICE",
            "svc",
            &[("PGSERVICEFILE", "(a service file)")],
            Use::Honoured,
        ),
        (
            "PGSERVICEFILE",
            "(a service file)",
            &[("PGSERVICE", "svc"), ("PGSYSCONFDIR", "/nonexistent")],
            Use::Honoured,
        ),
        (
            "PGSYSCONFDIR",
            "(a directory with pg_service.conf)",
            &[("PGSERVICE", "svc"), ("HOME", "/nonexistent")],
            Use::Honoured,
        ),
        ("PGCHANNELBINDING", "require", &[], Use::Honoured),
        ("PGCONNECT_TIMEOUT", "10", &[], Use::Honoured),
        ("PGCLIENTENCODING", "LATIN1", &[], Use::Honoured),
        ("PGOPTIONS", "-c search_path=app", &[], Use::Honoured),
        ("PGAPPNAME", "app9", &[], Use::Honoured),
        ("PGSSLMODE", "require", &[], Use::Honoured),
        ("PGREQUIRESSL", "1", &[], Use::Honoured),
        ("PGSSLCERT", "/c.crt", &[], Use::Honoured),
        ("PGSSLKEY", "/c.key", &[], Use::Honoured),
        ("PGSSLROOTCERT", "/ca.pem", &[], Use::Honoured),
        ("PGTZ", "Asia/Tokyo", &[], Use::Honoured),
        ("PGDATESTYLE", "SQL, DMY", &[], Use::Honoured),
        ("PGGEQO", "off", &[], Use::Honoured),
        // As libpq 15 against a server of PostgreSQL 14 or later, which never compresses
        // (conn64 F8: refused, it broke every run of an environment that set it).
        ("PGSSLCOMPRESSION", "1", &[], Use::Unused),
        ("PGSSLCRL", "/crl.pem", &[], Use::Refused),
        ("PGSSLCRLDIR", "/crls", &[], Use::Refused),
        ("PGSSLSNI", "0", &[], Use::Refused),
        ("PGREQUIREPEER", "postgres", &[], Use::Refused),
        ("PGSSLMINPROTOCOLVERSION", "TLSv1.3", &[], Use::Honoured),
        ("PGSSLMAXPROTOCOLVERSION", "TLSv1.2", &[], Use::Honoured),
        ("PGGSSENCMODE", "require", &[], Use::Refused),
        // As a libpq built without GSSAPI: read, and of no use without it.
        ("PGGSSENCMODE", "prefer", &[], Use::Unused),
        ("PGKRBSRVNAME", "postgres", &[], Use::Unused),
        ("PGGSSLIB", "gssapi", &[], Use::Unused),
        ("PGTARGETSESSIONATTRS", "read-write", &[], Use::Honoured),
        ("PGTARGETSESSIONATTRS", "prefer-standby", &[], Use::Honoured),
        ("PGLOCALEDIR", "/usr/share/locale", &[], Use::Unused),
        // Added after libpq 15.
        ("PGSSLCERTMODE", "require", &[], Use::Refused),
        ("PGREQUIREAUTH", "scram-sha-256", &[], Use::Refused),
        ("PGGSSDELEGATION", "1", &[], Use::Refused),
        ("PGLOADBALANCEHOSTS", "random", &[], Use::Refused),
        ("PGSSLNEGOTIATION", "direct", &[], Use::Refused),
        ("PGMINPROTOCOLVERSION", "3.2", &[], Use::Refused),
        ("PGMAXPROTOCOLVERSION", "3.2", &[], Use::Refused),
    ];

    #[test]
    fn every_variable_libpq_reads_is_honoured_or_refused_by_name() {
        let dir = std::env::temp_dir().join(format!("copyman-envs-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let services = dir.join("pg_service.conf");
        fs::write(&services, "[svc]\nhost=fromservice\n").unwrap();
        let passwords = dir.join("pgpass");
        fs::write(&passwords, "*:*:*:*:frompassfile\n").unwrap();
        fs::set_permissions(&passwords, fs::Permissions::from_mode(0o600)).unwrap();
        let real = |value: &str| -> String {
            match value {
                "(a service file)" => services.display().to_string(),
                "(a directory with pg_service.conf)" => dir.display().to_string(),
                "(a password file)" => passwords.display().to_string(),
                other => other.to_owned(),
            }
        };
        // Everything a resolved CONN carries to the connection, or the refusal.
        let outcome = |vars: &[(&str, String)]| -> String {
            let mut all: Vec<(&str, &str)> = vec![("USER", "os")];
            all.extend(vars.iter().map(|(k, v)| (*k, v.as_str())));
            match resolve("", &env(&all)) {
                Ok(mut spec) => {
                    spec.read_as_the_server();
                    format!(
                        "{:?} {:?} {:?} {:?} {:?} {:?}",
                        spec.config,
                        spec.hosts,
                        spec.tls,
                        spec.startup,
                        spec.warnings,
                        spec.session_attrs
                    )
                }
                Err(e) => format!("error: {e}"),
            }
        };
        for &(var, value, context, expected) in LIBPQ_VARIABLES {
            let context: Vec<(&str, String)> = context.iter().map(|(k, v)| (*k, real(v))).collect();
            let without = outcome(&context);
            let mut with_it = context.clone();
            with_it.push((var, real(value)));
            let with = outcome(&with_it);
            match expected {
                Use::Honoured => {
                    assert!(!with.starts_with("error"), "{var}={value}: {with}");
                    assert_ne!(with, without, "{var}={value} changes nothing");
                }
                Use::Refused => {
                    assert!(
                        with.contains(&format!("(from {var}) is not supported")),
                        "{var}={value}: {with}"
                    );
                }
                Use::Unused => assert_eq!(with, without, "{var}={value}"),
            }
        }
        fs::remove_dir_all(&dir).unwrap();

        // A variable copyman reads that this list forgot fails here too.
        let listed: Vec<&str> = LIBPQ_VARIABLES.iter().map(|(var, ..)| *var).collect();
        let read = PARAMETERS
            .iter()
            .filter_map(|(_, var)| *var)
            .chain(ENVIRONMENT_SETTINGS.iter().map(|(var, _)| *var))
            .chain(["PGSERVICE", "PGSERVICEFILE", "PGSYSCONFDIR", "PGREQUIRESSL"]);
        for var in read {
            assert!(listed.contains(&var), "{var} is not in LIBPQ_VARIABLES");
        }
    }

    /// A value libpq does not know for a parameter it reads as one of a list is refused, as
    /// libpq refuses it (a `gssencmode=Require` meant to insist connected unencrypted).
    #[test]
    fn values_libpq_does_not_know_are_refused_by_name() {
        let said = |conn: &str, vars: &[(&str, &str)]| {
            resolve(conn, &env(vars)).err().map(|e| e.to_string())
        };
        assert_eq!(
            said("host=h user=u gssencmode=Require", &[]).as_deref(),
            Some("invalid gssencmode value: \"Require\"")
        );
        assert_eq!(
            said("host=h user=u", &[("PGGSSENCMODE", "bogus")]).as_deref(),
            Some("invalid gssencmode value: \"bogus\" (from PGGSSENCMODE)")
        );
        assert!(
            said("host=h user=u target_session_attrs=readwrite", &[])
                .is_some_and(|e| e.starts_with("invalid target_session_attrs value"))
        );
        assert_eq!(said("host=h user=u gssencmode=prefer", &[]), None);
        assert_eq!(
            said(
                "host=h user=u gssencmode=disable load_balance_hosts=disable",
                &[]
            ),
            None
        );
        // Each with its value, in libpq's words (the client crate's parser named none, and
        // keepalives_count as keepalives_retries).
        assert_eq!(
            said("host=h user=u channel_binding=requir", &[]).as_deref(),
            Some("invalid channel_binding value: \"requir\"")
        );
        assert_eq!(
            said("host=h user=u keepalives_count=x", &[]).as_deref(),
            Some("invalid integer value \"x\" for connection option \"keepalives_count\"")
        );
        // A number no C int holds, as libpq says it (the crate's name keepalives_retries).
        assert_eq!(
            said("host=h user=u keepalives_count=99999999999", &[]).as_deref(),
            Some(
                "invalid integer value \"99999999999\" for connection option \"keepalives_count\""
            )
        );
        assert!(
            said("host=h user=u tcp_user_timeout=99999999999", &[])
                .is_some_and(|e| e.contains("\"tcp_user_timeout\"")),
        );
        // What the socket refuses, as libpq fails on it (conn46 F3: taken silently, or said
        // "Invalid argument (os error 22)" as a network fault, exit 3).
        for bad in [
            "keepalives_idle=0",
            "keepalives_interval=0",
            "keepalives_count=0",
            "keepalives_idle=-5",
            // Above the system's limit (conn68 F4: "could not connect …: Invalid argument").
            "keepalives_idle=2147483647",
            "keepalives_interval=40000",
            "keepalives_count=128",
        ] {
            assert!(
                said(&format!("host=h user=u {bad}"), &[])
                    .is_some_and(|e| e.contains("takes 1 to ")),
                "{bad}"
            );
        }
        assert!(
            said("host=h user=u hostaddr=db1.example.com", &[])
                .is_some_and(|e| e
                    .starts_with("could not parse network address \"db1.example.com\": hostaddr"))
        );
        assert!(
            said("host=h user=u hostaddr=fe80::1%eth0", &[]).is_some_and(|e| e
                .contains("an IPv6 address with a zone id is not taken in hostaddr by copyman"))
        );
        assert_eq!(
            said("host=h user=u hostaddr=127.0.0.1 keepalives_idle=10", &[]),
            None
        );
    }

    #[test]
    fn tls_protocol_versions_bound_the_connection_as_in_libpq() {
        let tls = |conn: &str, vars: &[(&str, &str)]| resolve(conn, &env(vars)).map(|s| s.tls);
        let spec = tls(
            "host=h user=u ssl_min_protocol_version=tlsv1.3",
            &[("PGSSLMAXPROTOCOLVERSION", "TLSv1.3")],
        )
        .unwrap();
        assert_eq!(spec.min_version, Some(TlsVersion::Tls1_3));
        assert_eq!(spec.max_version, Some(TlsVersion::Tls1_3));
        let spec = tls("host=h user=u", &[("PGSSLMAXPROTOCOLVERSION", "TLSv1.2")]).unwrap();
        assert_eq!(spec.max_version, Some(TlsVersion::Tls1_2));
        // Empty: the default, as libpq.
        let spec = tls("host=h user=u ssl_min_protocol_version=''", &[]).unwrap();
        assert_eq!(spec.min_version, None);
        // libpq's words for a bad value and a range upside down.
        let err = tls("host=h user=u", &[("PGSSLMINPROTOCOLVERSION", "SSLv3")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid ssl_min_protocol_version value: \"SSLv3\" (from PGSSLMINPROTOCOLVERSION)"
        );
        let err = tls(
            "host=h user=u ssl_min_protocol_version=TLSv1.3 ssl_max_protocol_version=TLSv1.2",
            &[],
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid SSL protocol version range"),
            "{err}"
        );
    }
}
