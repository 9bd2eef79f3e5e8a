//! CONN arguments: files or servers; libpq's environment defaults and password file; redaction.
//!
//! A CONN is `-` (stdin/stdout), a file path, a `postgresql://` URL or a `key=value` conninfo.
//! URLs and conninfo strings are parsed by the `postgres` crate ([`postgres::Config`]), then the
//! parameters they leave out are filled in as libpq fills them in for psql users: `PGHOST`,
//! `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGDATABASE`, `PGAPPNAME`, `PGSSLMODE`, `PGSSLROOTCERT`,
//! `PGSSLCERT`, `PGSSLKEY`, `PGCONNECT_TIMEOUT`, then the password file (`PGPASSFILE` or
//! `~/.pgpass`). The TLS parameters (`sslmode`, `sslrootcert`, `sslcert`, `sslkey`) are read by
//! [`copyman_tls`]. Passwords are never shown: every CONN is displayed [`redact`]ed.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use copyman_tls::conninfo::{is_url, percent_decode, tokenize};
use copyman_tls::{SslMode, TlsSettings};
use postgres::config::Host;

/// libpq's default Unix socket directory on Debian-like systems, tried before `localhost`.
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
    /// empty conninfo (every parameter from the environment), as in libpq.
    pub(crate) fn classify(text: &str) -> Self {
        if text == "-" {
            Self::Stdio
        } else if text.is_empty() {
            Self::Server(String::new())
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
    /// The string is malformed, or a parameter value is invalid (a usage error).
    Invalid(String),
    /// The parameters ask for something copyman cannot do (`hostaddr` with `host`).
    Unsupported(String),
}

impl fmt::Display for ConnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid(m) | Self::Unsupported(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ConnError {}

/// The process environment that matters here, captured once (tests pass their own).
#[derive(Clone, Default)]
pub(crate) struct Env {
    vars: HashMap<String, String>,
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
        let vars = std::env::vars_os()
            .filter_map(|(k, v): (OsString, OsString)| {
                Some((k.into_string().ok()?, v.into_string().ok()?))
            })
            .collect();
        Self { vars }
    }

    /// An environment holding exactly `vars`.
    #[cfg(test)]
    pub(crate) fn from_pairs(vars: &[(&str, &str)]) -> Self {
        Self {
            vars: vars
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    /// A variable's value, if set and not empty (libpq ignores empty ones).
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The password file: `$PGPASSFILE`, else `~/.pgpass`.
    fn passfile(&self) -> Option<PathBuf> {
        if let Some(file) = self.get("PGPASSFILE") {
            return Some(PathBuf::from(file));
        }
        self.get("HOME").map(|home| Path::new(home).join(".pgpass"))
    }
}

/// A server CONN resolved into connection parameters.
#[derive(Clone)]
pub(crate) struct ServerSpec {
    /// The parameters, defaults applied, ready for `copyman_sync::Connection::connect_tls`.
    pub(crate) config: postgres::Config,
    /// The TLS parameters, defaults applied.
    pub(crate) tls: TlsSettings,
    /// The CONN as it may be shown: redacted.
    pub(crate) display: String,
    /// Things the user should know (an ignored password file).
    pub(crate) warnings: Vec<String>,
}

impl fmt::Debug for ServerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerSpec")
            .field("display", &self.display)
            .finish_non_exhaustive()
    }
}

/// Resolves a server CONN: parses it and fills in what it leaves out from `env`, then from libpq's
/// defaults, then the password from the password file.
pub(crate) fn resolve(text: &str, env: &Env) -> Result<ServerSpec, ConnError> {
    let (rest, taken) = copyman_tls::conninfo::take(text, &copyman_tls::PARAMETERS)
        .map_err(|reason| ConnError::Invalid(format!("invalid connection string: {reason}")))?;
    let mut config: postgres::Config = if rest.trim().is_empty() {
        postgres::Config::new()
    } else {
        rest.parse().map_err(|e: postgres::Error| {
            // The parser's message names the option, never its value; the string itself is not
            // shown: it did not parse, so what in it is a password cannot be told.
            ConnError::Invalid(format!("invalid connection string: {}", error_chain(&e)))
        })?
    };

    // The TLS parameters, each from the CONN, else its variable.
    let [sslmode, root_cert, cert, key]: [Option<String>; 4] =
        taken.try_into().expect("one value per parameter");
    let from_env =
        |given: Option<String>, var: &str| given.or_else(|| env.get(var).map(str::to_owned));
    let tls = TlsSettings {
        mode: from_env(sslmode, "PGSSLMODE")
            .map_or(Ok(SslMode::Prefer), |mode| mode.parse())
            .map_err(|e| ConnError::Invalid(e.to_string()))?,
        root_cert: from_env(root_cert, "PGSSLROOTCERT"),
        cert: from_env(cert, "PGSSLCERT").map(PathBuf::from),
        key: from_env(key, "PGSSLKEY").map(PathBuf::from),
    };

    if config.get_hosts().is_empty() {
        let addrs: Vec<String> = config
            .get_hostaddrs()
            .iter()
            .map(ToString::to_string)
            .collect();
        if !addrs.is_empty() {
            // copyman's connections go to `host`; a lone `hostaddr` is the host to use.
            for addr in addrs {
                config.host(&addr);
            }
        } else if let Some(hosts) = env.get("PGHOST") {
            for host in hosts.split(',') {
                config.host(if host.is_empty() { "localhost" } else { host });
            }
        } else {
            config.host_path(DEFAULT_SOCKET_DIR);
            config.host("localhost");
        }
    } else if !config.get_hostaddrs().is_empty() {
        return Err(ConnError::Unsupported(format!(
            "{}: `hostaddr` together with `host` is not supported yet; give only one of them",
            redact(text)
        )));
    }
    if config.get_ports().is_empty()
        && let Some(ports) = env.get("PGPORT")
    {
        for port in ports.split(',') {
            let port = if port.is_empty() {
                DEFAULT_PORT
            } else {
                port.trim().parse().map_err(|_| {
                    ConnError::Invalid(format!("PGPORT: invalid port number {port:?}"))
                })?
            };
            config.port(port);
        }
    }
    let user = match config.get_user() {
        Some(user) => user.to_owned(),
        None => {
            let user = env
                .get("PGUSER")
                .or_else(|| env.get("USER"))
                .or_else(|| env.get("LOGNAME"))
                .ok_or_else(|| {
                    ConnError::Invalid(format!(
                        "{}: no user name given and none in PGUSER or USER",
                        redact(text)
                    ))
                })?
                .to_owned();
            config.user(&user);
            user
        }
    };
    let dbname = match config.get_dbname() {
        Some(db) => db.to_owned(),
        None => {
            let db = env.get("PGDATABASE").unwrap_or(&user).to_owned();
            config.dbname(&db);
            db
        }
    };
    if config.get_application_name().is_none()
        && let Some(name) = env.get("PGAPPNAME")
    {
        config.application_name(name);
    }
    if config.get_connect_timeout().is_none()
        && let Some(timeout) = env.get("PGCONNECT_TIMEOUT")
    {
        let secs: i64 = timeout.trim().parse().map_err(|_| {
            ConnError::Invalid(format!("PGCONNECT_TIMEOUT: invalid number {timeout:?}"))
        })?;
        // As libpq: zero or less waits for ever, and less than 2 s is taken as 2 s.
        if secs > 0 {
            config.connect_timeout(Duration::from_secs(secs.max(2).unsigned_abs()));
        }
    }

    let mut warnings = Vec::new();
    if config.get_password().is_none() {
        if let Some(password) = env.get("PGPASSWORD") {
            config.password(password);
        } else if let Some(file) = env.passfile() {
            match read_passfile(&file) {
                Ok(Some(content)) => {
                    if let Some(password) = passfile_password(&content, &config, &dbname, &user) {
                        config.password(password);
                    }
                }
                Ok(None) => {}
                Err(warning) => warnings.push(warning),
            }
        }
    }

    let display = if text.trim().is_empty() {
        describe_defaults(&config)
    } else {
        redact(text)
    };
    // The last line of defence: a display that still holds the password the server will get
    // (written some way redaction did not foresee) is replaced by one built from the parameters.
    let display = match config.get_password() {
        Some(pw) if !pw.is_empty() && display.as_bytes().windows(pw.len()).any(|w| w == pw) => {
            describe_defaults(&config)
        }
        _ => display,
    };
    Ok(ServerSpec {
        config,
        tls,
        display,
        warnings,
    })
}

/// A description of a connection made from defaults alone (the empty CONN).
fn describe_defaults(config: &postgres::Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|h| match h {
            Host::Tcp(name) => name.clone(),
            Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    let ports: Vec<String> = config.get_ports().iter().map(u16::to_string).collect();
    format!(
        "host={} port={} user={} dbname={}",
        hosts.join(","),
        if ports.is_empty() {
            DEFAULT_PORT.to_string()
        } else {
            ports.join(",")
        },
        config.get_user().unwrap_or_default(),
        config.get_dbname().unwrap_or_default()
    )
}

/// A CONN as it may be shown: the password replaced by `***`
/// (`postgresql://user:***@host/db`, `host=h password=***`). A string that cannot be read is not
/// shown at all.
pub(crate) fn redact(text: &str) -> String {
    match Target::classify(text) {
        Target::Stdio | Target::File(_) => text.to_owned(),
        Target::Server(_) if is_url(text) => redact_url(text),
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
/// `password=…` values and URL user-info passwords.
pub(crate) fn scrub(text: &str) -> String {
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
    scrub_urls(&out)
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
fn read_passfile(path: &Path) -> Result<Option<String>, String> {
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
    Ok(fs::read(path)
        .ok()
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
}

/// The password-file password for `config`'s first host that has an entry.
fn passfile_password(
    content: &str,
    config: &postgres::Config,
    dbname: &str,
    user: &str,
) -> Option<String> {
    let ports = config.get_ports();
    config.get_hosts().iter().enumerate().find_map(|(i, host)| {
        let host = match host {
            Host::Tcp(name) => name.clone(),
            // libpq matches the default socket directory as `localhost`.
            Host::Unix(dir) if dir == Path::new(DEFAULT_SOCKET_DIR) => "localhost".to_owned(),
            Host::Unix(dir) => dir.display().to_string(),
        };
        let port = match ports {
            [] => DEFAULT_PORT,
            [one] => *one,
            many => *many.get(i)?,
        };
        pgpass_lookup(content, &host, &port.to_string(), dbname, user)
    })
}

/// Looks up a password in password-file text: the first line
/// `hostname:port:database:username:password` whose first four fields match (`*` matches
/// anything, `\` escapes `:` and `\`); `#` starts a comment line.
pub(crate) fn pgpass_lookup(
    content: &str,
    host: &str,
    port: &str,
    dbname: &str,
    user: &str,
) -> Option<String> {
    content.lines().find_map(|line| {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() || line.starts_with('#') {
            return None;
        }
        let mut rest = line.as_bytes();
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
        Some(String::from_utf8_lossy(&password).into_owned())
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

/// An error and its sources on one line, `a: b: c`.
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use std::io::Write;

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
        assert_eq!(
            spec.config.get_hosts(),
            &[
                Host::Unix(DEFAULT_SOCKET_DIR.into()),
                Host::Tcp("localhost".into())
            ]
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
        assert_eq!(c.get_ports(), &[6000]);
        assert_eq!(c.get_user(), Some("carol"));
        assert_eq!(c.get_dbname(), Some("db1"));
        assert_eq!(c.get_password(), Some(&b"pw1"[..]));
        assert_eq!(c.get_application_name(), Some("mine"));
        assert_eq!(
            spec.display,
            "postgresql://carol:***@h1:6000/db1?application_name=mine"
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
        assert_eq!(spec.tls.root_cert.as_deref(), Some("/ca.pem"));
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
        assert_eq!(spec.tls.root_cert.as_deref(), Some("/env-ca.pem"));
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

    #[test]
    fn pgpass_lines() {
        let content = "\
# comment line
db1:5432:app:alice:first
db1:*:*:alice:second
with\\:colon:5432:app:bob:esc\\:aped\\\\pw:ignored
*:*:*:*:fallback
";
        let look = |h, p, d, u| pgpass_lookup(content, h, p, d, u);
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
            pgpass_lookup("db1:5432:app:alice", "db1", "5432", "app", "alice"),
            None
        );
        assert_eq!(
            pgpass_lookup("db1:5432:app:alice:", "db1", "5432", "app", "alice").as_deref(),
            Some("")
        );
        assert_eq!(
            pgpass_lookup("db:5432:app:al:pw", "db1", "5432", "app", "al"),
            None
        );
        assert_eq!(
            pgpass_lookup("db12:5432:app:al:pw", "db1", "5432", "app", "al"),
            None
        );
        assert_eq!(
            pgpass_lookup("db1:5432:app:al:pw\r\n", "db1", "5432", "app", "al").as_deref(),
            Some("pw")
        );
    }

    fn passfile(mode: u32, content: &str) -> (PathBuf, impl Drop) {
        struct Remove(PathBuf);
        impl Drop for Remove {
            fn drop(&mut self) {
                let _ = fs::remove_file(&self.0);
            }
        }
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("copyman-pgpass-{}-{n}", std::process::id()));
        let mut file = fs::File::create(&path).unwrap();
        file.write_all(content.as_bytes()).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        (path.clone(), Remove(path))
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
        assert_eq!(spec.config.get_password(), Some(&b"sockpw"[..]));
        let spec = resolve("host=h2 port=5433 dbname=x user=alice", &vars(&[])).unwrap();
        assert_eq!(spec.config.get_password(), Some(&b"tcppw"[..]));
        // PGPASSWORD comes first.
        let spec = resolve("dbname=app user=alice", &vars(&[("PGPASSWORD", "env")])).unwrap();
        assert_eq!(spec.config.get_password(), Some(&b"env"[..]));
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
        assert_eq!(spec.config.get_password(), Some(&b"sockpw"[..]));
        fs::remove_dir_all(&dir).unwrap();

        let (open, _guard2) = passfile(0o644, "*:*:*:*:leaky\n");
        let env = Env::from_pairs(&[("PGPASSFILE", open.to_str().unwrap())]);
        let spec = resolve("host=h user=u", &env).unwrap();
        assert_eq!(spec.config.get_password(), None);
        assert_eq!(spec.warnings.len(), 1);
        assert!(
            spec.warnings[0].contains("group or world access"),
            "{:?}",
            spec.warnings
        );
    }
}
