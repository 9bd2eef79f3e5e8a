//! `--lock-timeout`, `--stall-timeout` and `--encoding` on every server session, right after it
//! connected, with the checks and the watch that go with them ([`prepare`]).

use copyman_sync::Connection;

use crate::args::{Endpoint, Safety, Transfer};
use crate::dest::Dest;
use crate::identity;
use crate::report::{self, Exit, Fatal};
use crate::watch::{Target, Watch};

/// Sets `lock_timeout` and `client_encoding`, and the socket timeouts of `--stall-timeout`, on
/// `conn` (`role` names it in errors).
///
/// # Errors
/// [`Fatal`]: exit 2 for an encoding the server does not know, 1 for other server errors.
pub(crate) fn apply(conn: &mut Connection, safety: &Safety, role: &str) -> Result<(), Fatal> {
    let fail = |what: &str, e: &copyman_sync::Error, exit: Exit| {
        let said = report::describe(e);
        Fatal {
            exit,
            message: format!("{what} on {role}: {said}"),
            server: Some((role.to_owned(), said)),
        }
    };
    if let Some(limit) = safety.lock_timeout {
        let sql = lock_timeout_sql(limit);
        report::log(format_args!("{role}: {sql}"));
        conn.execute(&sql)
            .map_err(|e| fail("--lock-timeout", &e, Exit::CopyFailed))?;
    }
    if let Some(encoding) = &safety.encoding {
        // The name was checked to be letters, digits, '_' and '-': nothing to escape.
        let sql = format!("SET client_encoding = '{encoding}'");
        report::log(format_args!("{role}: {sql}"));
        conn.execute(&sql)
            .map_err(|e| fail("--encoding", &e, Exit::Usage))?;
    }
    if let Some(limit) = safety.stall_timeout {
        conn.set_timeout(Some(limit))
            .map_err(|e| fail("--stall-timeout", &e, Exit::CopyFailed))?;
    }
    Ok(())
}

/// The statement of `--lock-timeout` (a job runs it on each session it opens).
pub(crate) fn lock_timeout_sql(limit: std::time::Duration) -> String {
    format!("SET lock_timeout = '{}ms'", limit.as_millis().max(1))
}

/// What follows the connections, before anything else is sent: refuses a database given twice
/// ([`identity::check`]), applies the limits to every server session, and starts the
/// [`Watch`] over their backends (it stops when dropped).
///
/// # Errors
/// [`Fatal`], from [`identity::check`] and [`apply`].
pub(crate) fn prepare(
    t: &Transfer,
    mut source: Option<&mut Connection>,
    dests: &mut [Dest<'_>],
    quiet: bool,
) -> Result<Watch, Fatal> {
    identity::check(t, source.as_deref_mut(), dests)?;
    report::set_stall_timeout(t.safety.stall_timeout);
    apply_all(t, source.as_deref_mut(), dests)?;
    let mut targets = Vec::new();
    if let (Some(conn), Endpoint::Server(spec)) = (source, &t.source) {
        targets.extend(Target::of(format!("source ({})", spec.display), spec, conn));
    }
    for (i, dest) in dests.iter_mut().enumerate() {
        if let (Some(conn), Endpoint::Server(spec)) = (dest.conn.as_mut(), dest.endpoint) {
            let role = format!("destination {}", i + 1);
            targets.extend(Target::of(format!("{role} ({})", spec.display), spec, conn));
        }
    }
    Ok(Watch::start(targets, quiet))
}

/// Applies the limits to every server session ([`apply`]); `--dry-run` does it too, so that it
/// refuses what the run would (`--encoding KLINGON`) and plans under the same settings.
///
/// # Errors
/// [`Fatal`], from [`apply`].
pub(crate) fn apply_all(
    t: &Transfer,
    source: Option<&mut Connection>,
    dests: &mut [Dest<'_>],
) -> Result<(), Fatal> {
    if let Some(conn) = source {
        apply(conn, &t.safety, "source")?;
    }
    for (i, dest) in dests.iter_mut().enumerate() {
        if let Some(conn) = dest.conn.as_mut() {
            apply(conn, &t.safety, &format!("destination {}", i + 1))?;
        }
    }
    Ok(())
}

/// Refuses a copy between servers of different encodings where a session's `client_encoding`
/// is `SQL_ASCII` (a CONN's, `PGCLIENTENCODING`, `--encoding`): it converts nothing, so the
/// source's bytes would be stored as they are in another encoding (`café` as `cafÃ©`). The copy's
/// start refused it (its statements' encodings differ), exit 1 with words about COPY options
/// the user never wrote: said here, before anything is begun, exit 2, naming the setting.
///
/// # Errors
/// [`Fatal`] (exit 2) naming each server's encoding.
pub(crate) fn refuse_sql_ascii_between(
    source: Option<&mut Connection>,
    dests: &mut [Dest<'_>],
) -> Result<(), Fatal> {
    let sessions: Vec<(String, &Connection)> = source
        .map(|c| ("source".to_owned(), &*c))
        .into_iter()
        .chain(
            dests
                .iter()
                .enumerate()
                .filter_map(|(i, d)| Some((format!("destination {}", i + 1), d.conn.as_ref()?))),
        )
        .collect();
    let parameter = |c: &Connection, name| c.session().parameter(name).map(str::to_owned);
    let ascii = sessions.iter().any(|(_, c)| {
        parameter(c, "client_encoding")
            .is_some_and(|e| copyman_core::statement::encoding_name(&e) == "SQL_ASCII")
    });
    let encodings: Vec<String> = sessions
        .iter()
        .map(|(name, c)| {
            let encoding = parameter(c, "server_encoding").unwrap_or_default();
            format!("{name} {encoding}")
        })
        .collect();
    let mut distinct: Vec<Option<String>> = sessions
        .iter()
        .map(|(_, c)| parameter(c, "server_encoding"))
        .collect();
    distinct.sort();
    distinct.dedup();
    if !ascii || distinct.len() < 2 {
        return Ok(());
    }
    Err(Fatal {
        exit: Exit::Usage,
        server: None,
        message: format!(
            "client_encoding SQL_ASCII converts nothing, and the servers hold other encodings \
             ({}): the source's bytes would be stored as they are; leave client_encoding unset \
             (PGCLIENTENCODING, the CONN's) so that copyman converts through UTF8, or name one \
             every server converts to (--encoding UTF8)",
            encodings.join(", ")
        ),
    })
}

/// Between servers that all hold one encoding other than UTF8, with no `client_encoding` asked
/// for (`--encoding`, a CONN's, `PGCLIENTENCODING`), the data passes in that encoding, as a psql
/// pipe passes it: not to UTF8 and back, which changed bytes (EUC_JP's NEC and IBM duplicates
/// came back as their canonical codes) or failed the copy (codes without a Unicode mapping; a
/// SQL_ASCII database's bytes that are not UTF-8). Set before the copy, after planning (whose
/// catalog reads stay in UTF8).
///
/// # Errors
/// [`Fatal`] (exit 1) when a server refuses the setting.
pub(crate) fn pass_server_encoding(
    t: &Transfer,
    source: Option<&mut Connection>,
    dests: &mut [Dest<'_>],
) -> Result<(), Fatal> {
    let endpoints = std::iter::once(&t.source).chain(&t.destinations);
    let mut specs = endpoints.clone().filter_map(|e| match e {
        Endpoint::Server(spec) => Some(spec),
        _ => None,
    });
    if t.safety.encoding.is_some()
        || !endpoints.clone().all(Endpoint::is_server)
        || specs.any(|spec| spec.names_client_encoding())
    {
        return Ok(());
    }
    let mut conns: Vec<(String, &mut Connection)> = source
        .map(|c| ("source".to_owned(), c))
        .into_iter()
        .chain(
            dests
                .iter_mut()
                .enumerate()
                .filter_map(|(i, d)| Some((format!("destination {}", i + 1), d.conn.as_mut()?))),
        )
        .collect();
    let encodings: Vec<Option<String>> = conns
        .iter()
        .map(|(_, c)| c.session().parameter("server_encoding").map(str::to_owned))
        .collect();
    let Some(Some(shared)) = encodings.first().cloned() else {
        return Ok(());
    };
    if shared == "UTF8"
        || encodings
            .iter()
            .any(|e| e.as_deref() != Some(shared.as_str()))
    {
        return Ok(());
    }
    // The server's own name for it: letters, digits and '_' only.
    let sql = format!("SET client_encoding = '{shared}'");
    for (role, conn) in &mut conns {
        report::log(format_args!("{role}: {sql}"));
        conn.execute(&sql).map_err(|e| Fatal {
            exit: Exit::CopyFailed,
            server: None,
            message: format!("{role}: {}", report::describe(&e)),
        })?;
    }
    Ok(())
}

/// Takes `--stall-timeout`'s socket timeouts off again once the copy is over: a COMMIT that takes
/// long must not be given up on while the server may still commit it (copyman would report as
/// failed a destination that committed). Lock waits stay bounded by `--lock-timeout`.
pub(crate) fn end_stall_timeouts(
    t: &Transfer,
    source: Option<&mut Connection>,
    dests: &mut [Dest<'_>],
) {
    if t.safety.stall_timeout.is_none() {
        return;
    }
    let conns = source
        .into_iter()
        .chain(dests.iter_mut().filter_map(|d| d.conn.as_mut()));
    for conn in conns {
        // A connection whose socket cannot take the setting is broken: its COMMIT says so.
        let _ = conn.set_timeout(None);
    }
}
