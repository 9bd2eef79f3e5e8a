//! What the StartupMessage says.

use std::fmt;

/// The startup parameters every session sends so that text COPY data means the same on every
/// server, whatever a database or role sets (the client's settings come first): the date,
/// interval and float output formats; `money` printed and read in the C locale (a database's
/// `lc_monetary` moved the decimal point: `$ 0,50` under `es_AR` is 50.00 under `en_US`); an
/// unquoted `NULL` in an array a NULL element (`array_nulls = off` read it as the string);
/// standard string literals in statements (`NULL '\N'` meant `NULL 'N'` where
/// `standard_conforming_strings` is off); type and object names printed unquoted where they can
/// be (`quote_all_identifiers` made every type name differ from its server's); XML values
/// read as content, as pg_dump does (`xmloption = document` refused a fragment); and `bytea`
/// written in hex (a bytea copied into text stored the source's `bytea_output`, `\000\377A`
/// or `\x00ff41` by the database's setting: types69 F1).
/// `client_encoding` joins them from [`StartupConfig::client_encoding`].
pub const PORTABILITY_SETTINGS: [(&str, &str); 9] = [
    ("DateStyle", "ISO"),
    ("IntervalStyle", "postgres"),
    ("extra_float_digits", "3"),
    ("lc_monetary", "C"),
    ("array_nulls", "on"),
    ("standard_conforming_strings", "on"),
    ("quote_all_identifiers", "off"),
    ("xmloption", "content"),
    ("bytea_output", "hex"),
];

/// The startup parameters every session sends so that the server does not end it while it
/// waits, idle in its transaction, for the copy's other endpoints (a destination that finished
/// its COPY first, the source while the slowest destination finishes): as pg_dump sets
/// `idle_in_transaction_session_timeout` to 0. A role's or database's timeout ended such a
/// session and failed every destination.
pub const SESSION_SETTINGS: [(&str, &str); 1] = [("idle_in_transaction_session_timeout", "0")];

/// Whether `name` is a setting copyman's startup messages carry of its own accord, not the
/// user's: `client_encoding`, the [`PORTABILITY_SETTINGS`] and [`SESSION_SETTINGS`], and the
/// timeouts and `row_security` the command pins. A connection pooler that refuses one
/// (PgBouncer's `unsupported startup parameter: lc_monetary`, 08P01) refuses copyman's
/// sessions whatever the user gives, one such setting after another.
///
/// ```
/// use copyman_core::session::sent_by_copyman;
///
/// assert!(sent_by_copyman("lc_monetary") && sent_by_copyman("intervalstyle"));
/// assert!(!sent_by_copyman("search_path"));
/// ```
pub fn sent_by_copyman(name: &str) -> bool {
    (PORTABILITY_SETTINGS
        .iter()
        .chain(&SESSION_SETTINGS)
        .chain(&UNREPORTED))
    .map(|(n, _)| *n)
    .chain(["client_encoding", "lock_timeout"])
    .any(|n| n.eq_ignore_ascii_case(name))
}

/// The settings a startup message may pin that the server does not report back (no
/// ParameterStatus), each with the value it is pinned to, as `current_setting` shows it: whether
/// they took is seen only by asking ([`StartupConfig::unreported`]).
const UNREPORTED: [(&str, &str); 9] = [
    ("extra_float_digits", "3"),
    ("bytea_output", "hex"),
    ("lc_monetary", "C"),
    ("array_nulls", "on"),
    ("quote_all_identifiers", "off"),
    ("xmloption", "content"),
    ("idle_in_transaction_session_timeout", "0"),
    ("statement_timeout", "0"),
    ("row_security", "off"),
];

/// The pinned settings the server does not report whose change since connecting has a text
/// COPY written otherwise, without an error: floats with fewer digits, money in another
/// locale's form, bytea in the escape form.
pub(crate) const SHAPE_WRITING: [&str; 3] = ["extra_float_digits", "lc_monetary", "bytea_output"];

/// Those whose change has a text COPY read otherwise: an array's `NULL` element stored as the
/// string `NULL` (`array_nulls = off`), money in another locale's form.
pub(crate) const SHAPE_READING: [&str; 2] = ["array_nulls", "lc_monetary"];

/// Whether `sql` may set a setting of [`SHAPE_WRITING`] or [`SHAPE_READING`]: it names one,
/// and a `SET` or a `set_config` (a question of `current_setting` does not count). The
/// session's COPYs then ask whether it still holds its pinned value
/// ([`crate::start::CopyStart`]). A function that sets one in its body is not seen.
pub(crate) fn names_a_shaping_setting(sql: &str) -> bool {
    let sql = sql.to_ascii_lowercase();
    let mut words = sql.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'));
    let sets = words.any(|word| word == "set" || word == "set_config");
    sets && SHAPE_WRITING
        .iter()
        .chain(&SHAPE_READING)
        .any(|name| sql.contains(name))
}

/// What a [`Session`](super::Session) says in its StartupMessage, and the password it answers
/// authentication requests with.
///
/// Whatever else is set, the startup message carries `client_encoding` and the
/// [`PORTABILITY_SETTINGS`] (`DateStyle=ISO`, `IntervalStyle=postgres`, `extra_float_digits=3`,
/// `lc_monetary=C` …) unless [`StartupConfig::extra`] names them itself.
///
/// ```
/// use copyman_core::session::StartupConfig;
///
/// let mut config = StartupConfig::new("alice");
/// config.database = Some("shop".into());
/// config.password = Some(b"s3cret".to_vec());
/// assert_eq!(config.client_encoding, "UTF8");
/// // The password never shows in logs.
/// assert!(!format!("{config:?}").contains("s3cret"));
/// assert!(config.parameters().contains(&("DateStyle", "ISO")));
/// // A session that reads a file's dates as the server's own DateStyle says.
/// config.extra.push(("DateStyle".into(), String::new()));
/// assert!(!config.parameters().iter().any(|(name, _)| *name == "DateStyle"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct StartupConfig {
    /// The role to connect as (`user`).
    pub user: String,
    /// The database (`database`); the server defaults it to the user name.
    pub database: Option<String>,
    /// The password, for cleartext, md5 and SCRAM-SHA-256 authentication.
    pub password: Option<Vec<u8>>,
    /// `application_name`, shown in `pg_stat_activity`.
    pub application_name: Option<String>,
    /// `options`: command-line options for the backend, e.g. `-c search_path=app`.
    pub options: Option<String>,
    /// `client_encoding`; `UTF8` by default.
    pub client_encoding: String,
    /// More startup parameters (run-time settings such as `TimeZone`), sent as given. One that
    /// names a portability setting replaces it; with an empty value, it is not sent at all and
    /// the server's own setting stands (for a session that only reads data written elsewhere,
    /// as psql's `\copy` reads a file).
    pub extra: Vec<(String, String)>,
    /// Whether SCRAM must, may or must not bind itself to the TLS channel (`channel_binding`).
    pub channel_binding: ChannelBinding,
}

/// libpq's `channel_binding`: whether SCRAM authentication binds itself to the TLS connection
/// (SCRAM-SHA-256-PLUS with `tls-server-end-point`), so that a man in the middle holding another
/// certificate cannot relay it. Binding needs TLS and the server's certificate hash, which the
/// adapter hands over with [`Session::set_tls_server_end_point`](super::Session::set_tls_server_end_point).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChannelBinding {
    /// Never bind.
    Disable,
    /// Bind when the connection is TLS and the server offers SCRAM-SHA-256-PLUS.
    #[default]
    Prefer,
    /// Refuse to authenticate without binding: no password methods, no trust, no plain SCRAM.
    Require,
}

impl StartupConfig {
    /// A configuration for `user` with every other field at its default.
    pub fn new(user: impl Into<String>) -> Self {
        Self {
            user: user.into(),
            database: None,
            password: None,
            application_name: None,
            options: None,
            client_encoding: "UTF8".to_owned(),
            extra: Vec::new(),
            channel_binding: ChannelBinding::Prefer,
        }
    }

    /// The startup parameters, in the order they are sent.
    pub fn parameters(&self) -> Vec<(&str, &str)> {
        let mut params = vec![("user", self.user.as_str())];
        if let Some(database) = &self.database {
            params.push(("database", database));
        }
        if let Some(name) = &self.application_name {
            params.push(("application_name", name));
        }
        if let Some(options) = &self.options {
            params.push(("options", options));
        }
        let overridden = |name: &str| self.extra.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
        if !overridden("client_encoding") {
            params.push(("client_encoding", &self.client_encoding));
        }
        for (name, value) in PORTABILITY_SETTINGS.into_iter().chain(SESSION_SETTINGS) {
            if !overridden(name) {
                params.push((name, value));
            }
        }
        let left_to_the_server = |(name, value): &&(String, String)| {
            value.is_empty()
                && PORTABILITY_SETTINGS
                    .iter()
                    .any(|(p, _)| p.eq_ignore_ascii_case(name))
        };
        params.extend(
            self.extra
                .iter()
                .filter(|p| !left_to_the_server(p))
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
        params
    }
}

impl StartupConfig {
    /// The settings its startup message pins that the server does not report back (the
    /// portability settings, the timeouts turned off, `row_security = off`): a connection
    /// pooler told to ignore startup parameters (PgBouncer's `ignore_startup_parameters`) lets
    /// the session in without them, and only a question says whether they took. The query that
    /// asks ([`Unreported::query`]) and what its row means ([`Unreported::check`]).
    ///
    /// ```
    /// use copyman_core::session::StartupConfig;
    ///
    /// let config = StartupConfig::new("alice");
    /// let unreported = config.unreported();
    /// assert!(unreported.query().unwrap().contains("current_setting('lc_monetary')"));
    /// let row: Vec<Option<String>> = unreported
    ///     .settings()
    ///     .map(|(name, value)| Some(if name == "lc_monetary" { "es_AR.utf8" } else { value }.to_owned()))
    ///     .collect();
    /// let error = unreported.check(&row).unwrap_err();
    /// assert!(error.to_string().contains("lc_monetary is es_AR.utf8, not C"));
    /// ```
    pub fn unreported(&self) -> Unreported {
        let pinned = self.parameters().into_iter().filter(|(name, value)| {
            UNREPORTED
                .iter()
                .any(|(n, v)| n.eq_ignore_ascii_case(name) && v == value)
        });
        Unreported(pinned.map(|(n, v)| (n.to_owned(), v.to_owned())).collect())
    }
}

/// The settings a startup message pinned that the server does not report back
/// ([`StartupConfig::unreported`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreported(Vec<(String, String)>);

impl Unreported {
    /// Each setting and the value sent.
    pub fn settings(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Those of them named in `names`.
    pub(crate) fn only(&self, names: &[&str]) -> Self {
        let kept = self
            .0
            .iter()
            .filter(|(n, _)| names.iter().any(|name| name.eq_ignore_ascii_case(n)));
        Self(kept.cloned().collect())
    }

    /// The query that reads them back: one row, a column each in [`Unreported::settings`]'s
    /// order (`None` if there are none).
    pub fn query(&self) -> Option<String> {
        if self.0.is_empty() {
            return None;
        }
        let columns: Vec<String> = self
            .0
            .iter()
            .map(|(name, _)| format!("pg_catalog.current_setting('{name}')"))
            .collect();
        Some(format!("SELECT {}", columns.join(", ")))
    }

    /// Whether the query's `row` shows every setting as sent.
    ///
    /// # Errors
    /// [`SessionError::SettingsIgnored`](super::SessionError::SettingsIgnored) naming each one
    /// that is not (or a row of another shape).
    pub fn check(&self, row: &[Option<String>]) -> Result<(), super::SessionError> {
        let ignored = self.differences(row);
        match ignored.is_empty() {
            true => Ok(()),
            false => Err(super::SessionError::SettingsIgnored { ignored }),
        }
    }

    /// The first setting the query's `row` shows with another value than sent: its name and
    /// that value (`None` where each is as sent, or the row is of another shape).
    pub(crate) fn first_changed(&self, row: &[Option<String>]) -> Option<(String, String)> {
        (row.len() == self.0.len()).then_some(())?;
        self.0
            .iter()
            .zip(row)
            .find(|((_, sent), now)| !now.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(sent)))
            .map(|((name, _), now)| (name.clone(), now.clone().unwrap_or_else(|| "NULL".into())))
    }

    /// Each setting the query's `row` shows with another value than sent, as
    /// "lc_monetary is es_AR.utf8, not C" (or the row's other shape).
    pub(crate) fn differences(&self, row: &[Option<String>]) -> Vec<String> {
        if row.len() == self.0.len() {
            self.0
                .iter()
                .zip(row)
                .filter(|((_, sent), now)| {
                    !now.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(sent))
                })
                .map(|((name, sent), now)| {
                    format!("{name} is {}, not {sent}", now.as_deref().unwrap_or("NULL"))
                })
                .collect()
        } else {
            vec![format!(
                "{} columns read back, not {}",
                row.len(),
                self.0.len()
            )]
        }
    }
}

impl fmt::Debug for StartupConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StartupConfig")
            .field("user", &self.user)
            .field("database", &self.database)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("application_name", &self.application_name)
            .field("options", &self.options)
            .field("client_encoding", &self.client_encoding)
            .field("extra", &self.extra)
            .field("channel_binding", &self.channel_binding)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What is asked back is what was pinned: a setting left to the server (an empty value), or
    /// given another value by the caller, is not; the row that shows each as sent passes, case
    /// aside; a NULL or a short row does not.
    #[test]
    fn only_the_pinned_unreported_settings_are_read_back() {
        let mut config = StartupConfig::new("u");
        config.extra.push(("lc_monetary".into(), String::new()));
        config.extra.push(("statement_timeout".into(), "0".into()));
        config.extra.push(("row_security".into(), "on".into()));
        let unreported = config.unreported();
        let names: Vec<&str> = unreported.settings().map(|(n, _)| n).collect();
        assert!(names.contains(&"statement_timeout") && names.contains(&"array_nulls"));
        assert!(!names.contains(&"lc_monetary") && !names.contains(&"row_security"));
        assert!(!names.contains(&"DateStyle"), "reported by the server");
        let row = |f: &dyn Fn(&str) -> Option<String>| -> Vec<Option<String>> {
            unreported.settings().map(|(_, v)| f(v)).collect()
        };
        assert_eq!(unreported.check(&row(&|v| Some(v.to_uppercase()))), Ok(()));
        assert!(unreported.check(&row(&|_| None)).is_err());
        assert!(unreported.check(&[]).is_err());
        assert_eq!(StartupConfig::new("u").unreported().settings().count(), 7);
        let shaping = StartupConfig::new("u").unreported().only(&SHAPE_READING);
        let names: Vec<&str> = shaping.settings().map(|(n, _)| n).collect();
        assert_eq!(names, ["lc_monetary", "array_nulls"]);
    }

    /// A query that may set a value-shaping setting marks its session; one that only asks, or
    /// sets another setting, does not.
    #[test]
    fn a_set_of_a_shaping_setting_is_seen() {
        for sql in [
            "SET array_nulls = off",
            "set LOCAL Extra_Float_Digits TO 0",
            "SELECT pg_catalog.set_config('lc_monetary', 'de_DE', false)",
            "BEGIN; SET array_nulls=off",
            "SET bytea_output = escape",
        ] {
            assert!(names_a_shaping_setting(sql), "{sql}");
        }
        for sql in [
            "SELECT pg_catalog.current_setting('array_nulls')",
            "SET DateStyle = 'ISO'",
            "SELECT offset_array_nulls FROM settings_table",
            "SELECT set_config('synchronous_commit', 'local', false)",
        ] {
            assert!(!names_a_shaping_setting(sql), "{sql}");
        }
    }
}
