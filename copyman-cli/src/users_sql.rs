//! The user's SQL (`--where`, `--send`) read as psql would read it on the source's database, or
//! refused where copyman's session there would read it otherwise: a backslash in a `'…'` string
//! under `standard_conforming_strings=off`, a string read as another interval or amount.

use copyman_core::statement;
use copyman_sync::Connection;

use crate::args::{Endpoint, Statements, Transfer};
use crate::conn::ServerSpec;
use crate::report::{Exit, Fatal};
use crate::run::{describe_sync, source_fatal};

/// Before copyman's first statement on the source: how its database reads the user's SQL
/// ([`crate::conn::own_sql_settings`]), and a backslash it reads otherwise refused
/// ([`refuse_backslash_escapes`]). A dry run asks it too.
///
/// # Errors
/// The source's error; [`Fatal`] (exit 2) for a backslash.
pub(crate) fn read_users_sql(
    t: &Transfer,
    source: Option<&mut Connection>,
) -> anyhow::Result<crate::conn::UserSql> {
    let user_sql = match source {
        Some(conn) => crate::conn::own_sql_settings(conn).map_err(|e| source_fatal(&e))?,
        None => crate::conn::UserSql::default(),
    };
    refuse_backslash_escapes(t, &user_sql)?;
    Ok(user_sql)
}

/// Refuses the user's SQL (`--where`, `--send`) where the source's database reads a backslash
/// in a `'…'` string as an escape (`standard_conforming_strings` off) and copyman, like every
/// server it writes to, would not: `--where "v <> 'C:\\dir'"` selected other rows than psql
/// on that database, and a `--send` moved others. Written as `E'…'` it reads alike everywhere.
///
/// # Errors
/// [`Fatal`] (exit 2) naming the option.
fn refuse_backslash_escapes(t: &Transfer, user_sql: &crate::conn::UserSql) -> Result<(), Fatal> {
    if !user_sql.backslash_escapes {
        return Ok(());
    }
    match users_statement(t) {
        Some((option, sql)) if statement::reads_otherwise_without_standard_strings(sql) => {
            Err(Fatal {
                exit: Exit::Usage,
                server: None,
                message: format!(
                    "{option} has a backslash in a '…' string, and the source's database reads it \
                 as an escape (standard_conforming_strings is off there) where copyman reads \
                 standard SQL: 'C:\\\\dir' would mean another string to each; write such a \
                 string as E'…' (E'C:\\\\dir' is C:\\dir to both)"
                ),
            })
        }
        _ => Ok(()),
    }
}

/// Refuses the user's SQL where a server's copy session reads its text as another value than
/// the server's database does, as psql reads it there. A source's session reads the statement
/// (`--where`, `--send`) in the forms it writes data in (`IntervalStyle=postgres`, the C locale's
/// money), which every destination reads alike; a destination's reads its `--receive` (a
/// `COPY … FROM STDIN WHERE …`) in the forms it reads the source's data in (the C locale's
/// money, `array_nulls=on`). On a database of `sql_standard` intervals, `interval '-1 2:00:00'`
/// is −1 day −2 h to psql and −1 day +2 h to that session; on one of a `de_DE` `lc_monetary`,
/// `'12,34'` is 12.34 to psql and 1234.00 to it; on one of `array_nulls=off`, `'{x,NULL}'` holds
/// the string `NULL` to psql and a NULL to it: other rows were copied or kept, exit 0. Each
/// string constant is read both ways, as an interval (a source's, with a digit), as money (with a
/// digit, where money can be involved: the statement names `money`, or the table copied or
/// received into — any table of the database, for a `--send` — has a money column) and as an
/// array (a destination's, naming `NULL`), on a session in the database's own settings; a cast of
/// anything else (`s::interval`: the data's text) to a type read otherwise is refused outright.
/// Asked before the run's sessions open (a role's `CONNECTION LIMIT 1` leaves room for it).
///
/// A database that cannot be asked is a connection failure (exit 3), not passed over; under
/// `--keep-going` such a destination is left out instead: returned with why, by its index.
///
/// # Errors
/// [`Fatal`]: exit 2 naming the string or the cast and the setting; exit 3 where a server cannot
/// be asked.
pub(crate) fn refuse_text_read_otherwise(t: &Transfer) -> Result<Vec<(usize, String)>, Fatal> {
    if let (Endpoint::Server(spec), Some((option, sql))) = (&t.source, users_statement(t)) {
        // Money can be involved where the table copied has a column of it; any of the
        // database's where the condition reads another relation (`id IN (SELECT id FROM prices
        // WHERE p = '12,34')`), or for a `--send`.
        let table = match &t.statements {
            Statements::Table { copy, .. } if !statement::names_word(sql, "select") => {
                Some(copy.table.to_string())
            }
            _ => None,
        };
        let text = UsersText {
            whom: "the source".to_owned(),
            option,
            sql,
            table,
            pins: Pins::Source,
        };
        text.check(spec).map_err(|e| e.into_fatal(&text, spec))?;
    }
    let mut left_out = Vec::new();
    // A destination reads its `--receive` in its database's forms where the source is a file
    // (`ServerSpec::read_as_the_server`): checked where it reads a server's data.
    let (Statements::Raw { receive, .. }, true) = (&t.statements, t.source.is_server()) else {
        return Ok(left_out);
    };
    for (i, (d, receive)) in t.destinations.iter().zip(receive).enumerate() {
        let (Endpoint::Server(spec), Some(sql)) = (d, receive) else {
            continue;
        };
        let text = UsersText {
            whom: format!("destination {}", i + 1),
            option: "--receive",
            sql,
            // A COPY FROM's WHERE reads no other relation.
            table: statement::copy_table(sql).map(str::to_owned),
            pins: Pins::Destination,
        };
        match text.check(spec) {
            Ok(()) => {}
            Err(Unchecked::Unasked(why)) if t.keep_going => left_out.push((
                i,
                format!("cannot ask its database how it reads --receive's text: {why}"),
            )),
            Err(e) => return Err(e.into_fatal(&text, spec)),
        }
    }
    Ok(left_out)
}

/// The user's SQL one server runs, to be read both ways.
struct UsersText<'a> {
    /// The server, as messages name it: "the source", "destination 2".
    whom: String,
    /// The option that gave it.
    option: &'static str,
    sql: &'a str,
    /// The table whose columns say whether money is involved (`None`: any of the database's).
    table: Option<String>,
    pins: Pins,
}

/// Which of a value's readings a server's copy session pins, apart from its database's.
#[derive(Clone, Copy, PartialEq)]
enum Pins {
    /// `IntervalStyle=postgres` and the C locale's money: the forms a source writes data in (its
    /// transaction reads the user's `array_nulls` as the database does, [`crate::conn::UserSql`]).
    Source,
    /// The C locale's money and `array_nulls=on`: the forms a destination reads a source's data
    /// in (its intervals in its database's `IntervalStyle`).
    Destination,
}

/// Why a server's text was not passed.
enum Unchecked {
    /// It reads otherwise there (exit 2).
    Refused(Fatal),
    /// The server could not be asked (exit 3), for this reason.
    Unasked(String),
}

impl Unchecked {
    fn into_fatal(self, text: &UsersText<'_>, spec: &ServerSpec) -> Fatal {
        match self {
            Self::Refused(fatal) => fatal,
            Self::Unasked(why) => Fatal {
                exit: Exit::Connect,
                server: None,
                message: format!(
                    "cannot ask {} ({}) how its database reads {}'s text: {why}",
                    text.whom, spec.display, text.option
                ),
            },
        }
    }
}

impl UsersText<'_> {
    /// Reads the text both ways on `spec`'s database ([`refuse_text_read_otherwise`]).
    fn check(&self, spec: &ServerSpec) -> Result<(), Unchecked> {
        let (option, sql, whom) = (self.option, self.sql, &self.whom);
        let source = self.pins == Pins::Source;
        let constants = statement::string_constants(sql);
        let with_digits = |s: &&String| s.bytes().any(|b| b.is_ascii_digit());
        let numbers: Vec<String> = constants.iter().filter(with_digits).cloned().collect();
        // An array's text naming an element NULL (`'{x,NULL}'`), whatever its case.
        let naming_null = |s: &&String| s.contains('{') && s.to_ascii_lowercase().contains("null");
        let arrays: Vec<String> = match source {
            true => Vec::new(),
            false => constants.iter().filter(naming_null).cloned().collect(),
        };
        let casts = ["interval", "money"].map(|name| statement::casts_to(sql, name));
        let mut casts = [casts[0] && source, casts[1]];
        // A cast to a type of the database's own (a domain over money, an array of one, a
        // composite with an interval): asked there below.
        let casts_otherwise = sql.contains("::") || statement::names_word(sql, "cast");
        if numbers.is_empty() && arrays.is_empty() && !casts.contains(&true) && !casts_otherwise {
            return Ok(());
        }
        let unasked = |e: copyman_sync::Error| Unchecked::Unasked(describe_sync(&e).to_string());
        let mut own = spec.own_settings().connect().map_err(unasked)?;
        let of_table = match &self.table {
            Some(table) => format!(
                "a.attrelid = pg_catalog.to_regclass({}) AND",
                copyman_job::sql::literal(table)
            ),
            None => String::new(),
        };
        let settings = format!(
            "SELECT pg_catalog.current_setting('IntervalStyle'), \
             pg_catalog.current_setting('lc_monetary'), \
             pg_catalog.current_setting('array_nulls'), EXISTS (SELECT \
             FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid \
             WHERE {of_table} a.attnum > 0 AND NOT a.attisdropped AND \
             'pg_catalog.money'::pg_catalog.regtype IN (t.oid, t.typbasetype, t.typelem))::text, \
             EXISTS (SELECT FROM pg_catalog.pg_attribute a \
             JOIN pg_catalog.pg_type t ON t.oid = a.atttypid \
             LEFT JOIN pg_catalog.pg_type b ON b.oid = t.typbasetype \
             WHERE {of_table} a.attnum > 0 AND NOT a.attisdropped AND \
             'A' IN (t.typcategory, b.typcategory))::text"
        );
        let theirs = match own.query(&settings) {
            Ok(rows) => rows.into_iter().next().unwrap_or_default(),
            Err(e) => return Err(unasked(e)),
        };
        let said = |i: usize| theirs.get(i).cloned().flatten().unwrap_or_default();
        let (style, locale, nulls) = (said(0), said(1), said(2));
        // The database's types whose text input is an interval's or money's somewhere (a domain
        // over one, an array of it, a composite holding it, in turn): a cast of text to one
        // reads as the type it holds (recheck70 F6: `s::dmoney`, a domain over money, stored
        // 1.234,00 € as $1.23, exit 0).
        if casts_otherwise {
            let holding = "WITH RECURSIVE held(oid, root) AS ( \
                 SELECT t.oid, t.typname::pg_catalog.text FROM pg_catalog.pg_type t \
                 WHERE t.oid IN ('pg_catalog.interval'::pg_catalog.regtype, \
                   'pg_catalog.money'::pg_catalog.regtype) \
                 UNION SELECT t.oid, held.root FROM pg_catalog.pg_type t JOIN held \
                   ON t.typbasetype = held.oid OR t.typelem = held.oid OR EXISTS (SELECT \
                   FROM pg_catalog.pg_attribute a WHERE a.attrelid = t.typrelid \
                   AND a.attnum > 0 AND NOT a.attisdropped AND a.atttypid = held.oid)) \
                 SELECT held.root, t.typname::pg_catalog.text FROM held \
                 JOIN pg_catalog.pg_type t ON t.oid = held.oid \
                 WHERE t.typnamespace <> 'pg_catalog'::pg_catalog.regnamespace";
            for row in own.query(holding).map_err(unasked)? {
                let (Some(root), Some(name)) = (
                    row.first().cloned().flatten(),
                    row.get(1).cloned().flatten(),
                ) else {
                    continue;
                };
                // (An array type's name is its element's with `_` before it: `dmoney[]`.)
                let named = name.strip_prefix('_').unwrap_or(&name);
                if statement::casts_to(sql, named) {
                    match root.as_str() {
                        "interval" => casts[0] |= source,
                        _ => casts[1] = true,
                    }
                }
            }
        }
        let money_here = said(3) == "true" || casts[1] || statement::names_word(sql, "money");
        // A setting the CONN names is the user's word: the session reads in it.
        let our_locale = match spec.sets("lc_monetary") {
            true => locale.clone(),
            false => "C".to_owned(),
        };
        let intervals = source && style == "sql_standard";
        let amounts = our_locale != locale && money_here;
        // An array's text matters only where the table has an array (a string compared with
        // text reads alike: it was refused).
        let arrays_here = said(4) == "true" || statement::names_word(sql, "array");
        let elements = !source && !spec.sets("array_nulls") && nulls == "off" && arrays_here;
        let ours = match source {
            true => format!(
                "IntervalStyle postgres and lc_monetary '{our_locale}', the forms it writes data in, which every destination reads alike"
            ),
            false => format!(
                "lc_monetary '{our_locale}' and array_nulls on, the forms it reads the source's data in"
            ),
        };
        let tell = match source {
            true => "options='-c intervalstyle=postgres' or '-c lc_monetary=C' for copyman's",
            false => "options='-c lc_monetary=C' or '-c array_nulls=on' for copyman's",
        };
        let refused = |what: String, setting: String, how: &str| {
            Unchecked::Refused(Fatal {
                exit: Exit::Usage,
                server: None,
                message: format!(
                    "{option}{of} {what}, which {whom}'s database reads otherwise than copyman's \
                     session there: psql reads it in the database's {setting}, copyman in \
                     {ours}; {how}, or say in {whom}'s CONN which reading is meant ({tell})",
                    of = if source {
                        String::new()
                    } else {
                        format!(" of {whom}")
                    },
                ),
            })
        };
        // `interval '-1 2' day to hour`: a field qualifier reads the string otherwise than
        // alone, which the probe below cannot (a column named `day` is refused too:
        // sql_standard only).
        let qualified = ["year", "month", "day", "hour", "minute", "second"]
            .iter()
            .any(|field| statement::names_word(sql, field));
        if intervals && qualified && statement::names_word(sql, "interval") {
            return Err(refused(
                "reads an interval with a field qualifier (day to hour …)".to_owned(),
                format!("IntervalStyle {style}"),
                "write it without one, with a sign on every field ('-1 -2:00:00') or its units \
                 ('-1 day -2 hours')",
            ));
        }
        if intervals && casts[0] {
            return Err(refused(
                "casts text to interval (its data's, not a string constant's)".to_owned(),
                format!("IntervalStyle {style}"),
                "cast it on a destination instead, or compute it otherwise",
            ));
        }
        if amounts && casts[1] {
            return Err(refused(
                "casts text to money (its data's, not a string constant's)".to_owned(),
                format!("lc_monetary '{locale}'"),
                "cast it to numeric and then to money (s::numeric::money reads alike)",
            ));
        }
        // Each string as an interval, as money and as an array, by their binary forms (no
        // output style), in the database's settings, then in the session's.
        let mut probes: Vec<(&str, &[String])> = Vec::new();
        let mut set = Vec::new();
        if intervals {
            probes.push(("interval_send({}::pg_catalog.interval)", &numbers));
            set.push("SET IntervalStyle = postgres".to_owned());
        }
        if amounts {
            // An amount, and an array of them (`m = '{"12,34"}'` against a money[] column).
            probes.push(("cash_send({}::pg_catalog.money)", &numbers));
            probes.push(("array_send({}::pg_catalog.money[])", &numbers));
            set.push(format!(
                "SET lc_monetary = {}",
                copyman_job::sql::literal(&our_locale)
            ));
        }
        if elements {
            probes.push(("array_send({}::pg_catalog.text[])", &arrays));
            set.push("SET array_nulls = on".to_owned());
        }
        if probes.is_empty() {
            return Ok(());
        }
        let database: Vec<Vec<Option<String>>> = (probes.iter())
            .map(|(cast, strings)| readings(&mut own, cast, strings))
            .collect();
        own.execute(&set.join("; ")).map_err(unasked)?;
        for ((cast, strings), database) in probes.iter().zip(&database) {
            let session = readings(&mut own, cast, strings);
            let differs = (strings.iter().zip(database).zip(&session))
                .find(|((_, a), b)| matches!((a, b), (Some(a), Some(b)) if a != b));
            let Some(((string, _), _)) = differs else {
                continue;
            };
            return Err(if cast.starts_with("interval") {
                refused(
                    format!("has the string {string}, which reads as another interval"),
                    format!("IntervalStyle {style}"),
                    "write it so that it reads alike in both: a sign on every field \
                     ('-1 -2:00:00') or its units ('-1 day -2 hours')",
                )
            } else if cast.starts_with("cash") || cast.contains("money") {
                refused(
                    format!(
                        "has the string {string}, which reads as another amount if it is \
                         compared with money"
                    ),
                    format!("lc_monetary '{locale}'"),
                    "write it so that it reads alike in both: a number cast to money \
                     (12.34::numeric::money)",
                )
            } else {
                refused(
                    format!(
                        "has the string {string}, which reads as another array (an element \
                         NULL, or the string NULL)"
                    ),
                    "array_nulls off".to_owned(),
                    "write it so that it reads alike in both: the string quoted ('{x,\"NULL\"}') \
                     or the element as ARRAY['x', NULL]",
                )
            });
        }
        Ok(())
    }
}

/// Each of `strings` (SQL string constants) read by `cast` (`interval_send({}::…)`: `{}` the
/// string) on `conn`: its binary form, `None` where it does not read as that type there. One
/// statement for many strings; each on its own where one of them does not read.
fn readings(conn: &mut Connection, cast: &str, strings: &[String]) -> Vec<Option<String>> {
    let one = |conn: &mut Connection, string: &str| {
        let rows = conn
            .query(&format!("SELECT pg_catalog.{}", cast.replace("{}", string)))
            .ok()?;
        rows.into_iter().next()?.into_iter().next()?
    };
    let mut read = Vec::with_capacity(strings.len());
    for chunk in strings.chunks(1000) {
        let all: Vec<String> = chunk
            .iter()
            .map(|s| format!("pg_catalog.{}", cast.replace("{}", s)))
            .collect();
        match conn.query(&format!("SELECT {}", all.join(", "))) {
            Ok(rows) => {
                let row = rows.into_iter().next().unwrap_or_default();
                read.extend((0..chunk.len()).map(|i| row.get(i).cloned().flatten()));
            }
            Err(_) => read.extend(chunk.iter().map(|s| one(conn, s))),
        }
    }
    read
}

/// The user's SQL a source runs, with the option that gave it: `--where`'s condition or
/// `--send`'s statement.
fn users_statement(t: &Transfer) -> Option<(&'static str, &str)> {
    match &t.statements {
        Statements::Table { copy, .. } => Some(("--where", copy.condition.as_deref()?)),
        Statements::Raw { send, .. } => Some(("--send", send.as_deref()?)),
    }
}
