//! The user's SQL (`--where`, `--send`) read as psql would read it on the source's database, or
//! refused where copyman's session there would read it otherwise: a backslash in a `'…'` string
//! under `standard_conforming_strings=off`, a string read as another interval or amount.

use copyman_core::statement;
use copyman_sync::Connection;

use crate::args::{Endpoint, Statements, Transfer};
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

/// Refuses the user's SQL (`--where`, `--send`) where it reads text as another interval or
/// amount in copyman's source session than in its database, as psql reads it there: the session
/// reads the statement in the forms it writes data in (`IntervalStyle=postgres`, the C locale's
/// money), which every destination reads alike. On a database of `sql_standard` intervals,
/// `interval '-1 2:00:00'` is −1 day −2 h to psql and −1 day +2 h to that session; on one of a
/// `de_DE` `lc_monetary`, `'12,34'` is 12.34 to psql and 1234.00 to it: other rows were copied,
/// exit 0. Each string constant with a digit is read both ways, as an interval and (where money
/// can be involved: the statement names `money`, or the table copied — any table of the
/// database, for a `--send` — has a money column) as money,
/// on a session in the database's own settings; a cast of anything else (`s::interval`: the
/// data's text) to a type read otherwise is refused outright. Asked before the run's sessions
/// open (a role's `CONNECTION LIMIT 1` leaves room for it); a database that cannot be asked is
/// a connection failure (exit 3), not passed over.
///
/// # Errors
/// [`Fatal`]: exit 2 naming the string or the cast and the setting; exit 3 where the source
/// cannot be asked.
pub(crate) fn refuse_text_read_otherwise(t: &Transfer) -> Result<(), Fatal> {
    let (Endpoint::Server(spec), Some((option, sql))) = (&t.source, users_statement(t)) else {
        return Ok(());
    };
    let strings: Vec<String> = statement::string_constants(sql)
        .into_iter()
        .filter(|s| s.bytes().any(|b| b.is_ascii_digit()))
        .collect();
    let casts = ["interval", "money"].map(|name| statement::casts_to(sql, name));
    if strings.is_empty() && !casts.contains(&true) {
        return Ok(());
    }
    let mut own = spec.own_settings().connect().map_err(|e| Fatal {
        exit: Exit::Connect,
        server: None,
        message: format!(
            "cannot connect to source {} to ask how its database reads {option}'s text: {}",
            spec.display,
            describe_sync(&e)
        ),
    })?;
    let first = |conn: &mut Connection, sql: &str| {
        let rows = conn.query(sql).ok()?;
        rows.into_iter().next()?.into_iter().next()?
    };
    // Money can be involved where the table copied (else any of the database's) has a column
    // of money, a domain over it or an array of it: any of the database's too where the
    // condition reads another relation (`id IN (SELECT id FROM prices WHERE p = '12,34')`).
    let of_table = match &t.statements {
        Statements::Table { copy, .. } if !statement::names_word(sql, "select") => format!(
            "a.attrelid = pg_catalog.to_regclass({}) AND",
            copyman_job::sql::literal(&copy.table.to_string())
        ),
        _ => String::new(),
    };
    let settings = format!(
        "SELECT pg_catalog.current_setting('IntervalStyle') || ' ' || \
         pg_catalog.current_setting('lc_monetary') || ' ' || EXISTS (SELECT \
         FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid \
         WHERE {of_table} a.attnum > 0 AND NOT a.attisdropped AND \
         'pg_catalog.money'::pg_catalog.regtype IN (t.oid, t.typbasetype, t.typelem))"
    );
    let Some(theirs) = first(&mut own, &settings) else {
        return Ok(());
    };
    let mut said = theirs.splitn(3, ' ');
    let (style, locale) = (
        said.next().unwrap_or_default(),
        said.next().unwrap_or_default(),
    );
    let money_here = said.next() == Some("true") || casts[1] || statement::names_word(sql, "money");
    let ours = (
        "postgres",
        if spec.sets("lc_monetary") {
            locale
        } else {
            "C"
        },
    );
    let (intervals, amounts) = (style == "sql_standard", ours.1 != locale && money_here);
    let refused = |what: String, setting: String, how: &str| Fatal {
        exit: Exit::Usage,
        server: None,
        message: format!(
            "{option} {what}, which the source's database reads otherwise than copyman's \
             session there: psql reads it in the database's {setting}, copyman in IntervalStyle \
             {} and lc_monetary '{}', the forms it writes data in, which every destination reads \
             alike; {how}, or say in the source's CONN which reading is meant \
             (options='-c intervalstyle=postgres' or '-c lc_monetary=C' for copyman's)",
            ours.0, ours.1
        ),
    };
    // `interval '-1 2' day to hour`: a field qualifier reads the string otherwise than alone,
    // which the probe below cannot (a column named `day` is refused too: sql_standard only).
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
    if !intervals && !amounts {
        return Ok(());
    }
    // Each string as an interval and as money, by their binary forms (no output style).
    let mut casts = Vec::new();
    if intervals {
        casts.push("interval_send({}::pg_catalog.interval)");
    }
    if amounts {
        // An amount, and an array of them (`m = '{"12,34"}'` against a money[] column).
        casts.push("cash_send({}::pg_catalog.money)");
        casts.push("array_send({}::pg_catalog.money[])");
    }
    let database: Vec<Vec<Option<String>>> = casts
        .iter()
        .map(|cast| readings(&mut own, cast, &strings))
        .collect();
    let set = format!(
        "SET IntervalStyle = {}; SET lc_monetary = '{}'",
        ours.0, ours.1
    );
    if own.execute(&set).is_err() {
        return Ok(());
    }
    for (k, cast) in casts.iter().enumerate() {
        let session = readings(&mut own, cast, &strings);
        let differs = (strings.iter().zip(&database[k]).zip(&session))
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
        } else {
            refused(
                format!(
                    "has the string {string}, which reads as another amount if it is compared \
                     with money"
                ),
                format!("lc_monetary '{locale}'"),
                "write it so that it reads alike in both: a number cast to money \
                 (12.34::numeric::money)",
            )
        });
    }
    Ok(())
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
