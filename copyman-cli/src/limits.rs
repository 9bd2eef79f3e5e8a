//! `--lock-timeout`, `--stall-timeout` and `--encoding` on every server session, right after it
//! connected, with the checks and the watch that go with them ([`prepare`]).

use copyman_sync::{Connection, Interrupter};

use crate::args::{Endpoint, Safety, Statements, Transfer};
use crate::dest::Dest;
use crate::identity;
use crate::report::{self, Exit, Fatal};
use crate::watch::{self, Target, Watch};

/// Sets `lock_timeout` and `client_encoding` (`--encoding`, unless `in_copy_options`: `table`
/// names it in each COPY) on `conn` (`role` names it in errors). (The socket timeouts of
/// `--stall-timeout` are set before anything is asked: [`ready`].)
///
/// # Errors
/// [`Fatal`]: exit 2 for an encoding the server does not know, 1 for other server errors.
pub(crate) fn apply(
    conn: &mut Connection,
    safety: &Safety,
    in_copy_options: bool,
    role: &str,
) -> Result<(), Fatal> {
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
    // The name was checked to be letters, digits, '_' and '-': nothing to escape.
    match &safety.encoding {
        // `table` says it in each COPY (ENCODING), the session keeps UTF8 for names and
        // conditions: asked only whether the server knows it, as SET would.
        Some(encoding) if in_copy_options => {
            let sql = format!("SELECT pg_catalog.pg_char_to_encoding('{encoding}') >= 0");
            let known = conn
                .query(&sql)
                .map_err(|e| fail("--encoding", &e, Exit::CopyFailed))?;
            if known
                .first()
                .and_then(|r| r.first().cloned().flatten())
                .as_deref()
                != Some("t")
            {
                return Err(Fatal {
                    exit: Exit::Usage,
                    message: format!(
                        "--encoding {encoding} on {role}: the server knows no such encoding \
                         (UTF8, LATIN1, WIN1252, …)"
                    ),
                    server: None,
                });
            }
        }
        Some(encoding) => {
            let sql = format!("SET client_encoding = '{encoding}'");
            report::log(format_args!("{role}: {sql}"));
            conn.execute(&sql)
                .map_err(|e| fail("--encoding", &e, Exit::Usage))?;
        }
        None => {}
    }
    Ok(())
}

/// The statement of `--lock-timeout` (a job runs it on each session it opens).
pub(crate) fn lock_timeout_sql(limit: std::time::Duration) -> String {
    format!("SET lock_timeout = '{}ms'", limit.as_millis().max(1))
}

/// What follows the connections, before anything else is sent, in a run and its dry run
/// alike: refuses a database given twice ([`identity::check`]), takes the run's settings that
/// errors are said in (a stall as a stall: sig52 F1, a dry run said one as an i/o error), and
/// applies the limits to every server session.
///
/// # Errors
/// [`Fatal`], from [`identity::check`] and [`apply`].
pub(crate) fn ready(
    t: &Transfer,
    mut source: Option<&mut Connection>,
    dests: &mut [Dest<'_>],
) -> Result<(), Fatal> {
    report::set_stall_timeout(t.safety.stall_timeout);
    watch::set_stall_timeout(t.safety.stall_timeout);
    // The first question asked bounded too (conn68 F3: a server that stopped answering once
    // the session was made held the run, silent, past --stall-timeout).
    if let Some(limit) = t.safety.stall_timeout {
        let roles = std::iter::once(("source".to_owned(), source.as_deref_mut())).chain(
            (dests.iter_mut().enumerate())
                .map(|(i, d)| (format!("destination {}", i + 1), d.conn.as_mut())),
        );
        for (role, conn) in roles {
            if let Some(conn) = conn {
                conn.set_timeout(Some(limit)).map_err(|e| Fatal {
                    exit: Exit::CopyFailed,
                    message: format!("--stall-timeout on {role}: {}", report::describe(&e)),
                    server: None,
                })?;
            }
        }
    }
    crate::finish::test_pause("connected");
    identity::check(t, source.as_deref_mut(), dests)?;
    watch::set_keep_going(t.keep_going);
    let ascii = source.as_deref().is_some_and(|c| {
        c.session().parameter("server_encoding") == Some("SQL_ASCII")
            && c.session().parameter("client_encoding") != Some("SQL_ASCII")
    });
    report::set_input(t, ascii);
    apply_all(t, source, dests)
}

/// Starts the [`Watch`] over the sessions' backends (it stops when dropped), then [`ready`]:
/// a server that stops answering its first questions is said as any wait (conn68 F3: silent).
///
/// # Errors
/// [`Fatal`], from [`ready`].
pub(crate) fn prepare(
    t: &Transfer,
    mut source: Option<&mut Connection>,
    dests: &mut [Dest<'_>],
    quiet: bool,
) -> Result<Watch, Fatal> {
    // A signal cuts the sessions' waits short (the commit's participants take it off for an
    // answer that decides).
    let asking = Interrupter::new().ok();
    let mut targets = Vec::new();
    if let (Some(conn), Endpoint::Server(spec)) = (source.as_deref_mut(), &t.source) {
        conn.set_interrupter(asking.clone());
        targets.extend(Target::of(format!("source ({})", spec.display), spec, conn));
    }
    for (i, dest) in dests.iter_mut().enumerate() {
        if let (Some(conn), Endpoint::Server(spec)) = (dest.conn.as_mut(), dest.endpoint) {
            conn.set_interrupter(asking.clone());
            let role = format!("destination {}", i + 1);
            let target = Target::of(format!("{role} ({})", spec.display), spec, conn);
            targets.extend(target.map(|t| t.destination(i)));
        }
    }
    let watch = Watch::start(targets, quiet, asking);
    ready(t, source, dests)?;
    Ok(watch)
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
    let in_copy_options = matches!(t.statements, Statements::Table { .. });
    if let Some(conn) = source {
        apply(conn, &t.safety, in_copy_options, "source")?;
    }
    for (i, dest) in dests.iter_mut().enumerate() {
        if let Some(conn) = dest.conn.as_mut() {
            apply(
                conn,
                &t.safety,
                in_copy_options,
                &format!("destination {}", i + 1),
            )?;
        }
    }
    Ok(())
}

/// A server session's name in messages ("source", "destination 2"), its `client_encoding` and
/// its server's `server_encoding`, as the server reported them.
pub(crate) struct Encodings {
    pub(crate) role: String,
    pub(crate) client: String,
    pub(crate) server: String,
    /// The `client` is its COPY's `ENCODING` option (`table --encoding`, a statement's own),
    /// not the session's.
    pub(crate) in_copy: bool,
}

impl Encodings {
    pub(crate) fn of(role: String, conn: &Connection) -> Self {
        let parameter = |name| {
            conn.session()
                .parameter(name)
                .unwrap_or_default()
                .to_owned()
        };
        Self {
            role,
            client: copyman_core::statement::encoding_name(&parameter("client_encoding")),
            server: parameter("server_encoding"),
            in_copy: false,
        }
    }

    /// The encoding the session's data passes in: its COPY's `ENCODING` where `copy` (the
    /// session's COPY statement) names one, which the server converts to or from in its stead.
    pub(crate) fn copying(mut self, copy: Option<&str>) -> Self {
        if let Some(encoding) = copy
            .and_then(copyman_core::statement::representation)
            .and_then(|r| r.encoding)
        {
            self.client = encoding;
            self.in_copy = true;
        }
        self
    }
}

/// [`refuse_lossy_encodings`] for a copy's open sessions, each in the encoding its COPY
/// (`send`, `receive[i]`) names, if it names one: `table --encoding` names the file's, and says
/// it in every COPY, the servers' too.
///
/// # Errors
/// As [`refuse_lossy_encodings`].
pub(crate) fn refuse_lossy_between(
    source: Option<&mut Connection>,
    dests: &mut [Dest<'_>],
    send: Option<&str>,
    receive: &[Option<String>],
) -> Result<(), Fatal> {
    // A binary COPY's ENCODING is ignored by its server: its text values are in the session's
    // client_encoding (a LATIN1 file's `Ã©` was stored as `é`, exit 0: files48 F7).
    let statements = (source
        .as_deref()
        .map(|c| ("source".to_owned(), c, send))
        .into_iter())
    .chain(dests.iter().enumerate().filter_map(|(i, d)| {
        let role = format!("destination {}", i + 1);
        Some((
            role,
            d.conn.as_ref()?,
            receive.get(i).and_then(Option::as_deref),
        ))
    }));
    for (role, conn, statement) in statements {
        let client = Encodings::of(role.clone(), conn).client;
        if let Some(encoding) = statement.and_then(copyman_core::statement::binary_encoding)
            && encoding != client
        {
            return Err(Fatal {
                exit: Exit::Usage,
                server: None,
                message: format!(
                    "{role}'s COPY gives ENCODING '{encoding}' with FORMAT binary, which its \
                     server ignores: binary COPY data's text values are in the session's \
                     client_encoding ({client}); for binary data in {encoding}, leave ENCODING \
                     out and say client_encoding={encoding} in its CONN (or \
                     PGCLIENTENCODING={encoding})"
                ),
            });
        }
    }
    let sessions: Vec<Encodings> = source
        .map(|c| Encodings::of("source".to_owned(), c).copying(send))
        .into_iter()
        .chain(dests.iter().enumerate().filter_map(|(i, d)| {
            Some(
                Encodings::of(format!("destination {}", i + 1), d.conn.as_ref()?)
                    .copying(receive.get(i).and_then(Option::as_deref)),
            )
        }))
        .collect();
    refuse_lossy_encodings(&sessions)
}

/// Refuses, before anything is begun, a `client_encoding` (a CONN's, `PGCLIENTENCODING`,
/// `--encoding`) that would change the data on its way between servers without a word:
/// - `SQL_ASCII` between servers of different encodings: it converts nothing, so the source's
///   bytes would be stored as they are in another encoding (`café` as `cafÃ©`);
/// - an encoding PostgreSQL does not convert back to what it converted from
///   ([`changes_on_the_way_back`](copyman_core::statement::changes_on_the_way_back): SJIS's `¥`
///   comes back as `\`), where the data passes through it: the source's server holds another
///   encoding, and so does a destination's.
///
/// (A file's data is in the `client_encoding`: one conversion, the server's, as psql's.)
///
/// # Errors
/// [`Fatal`] (exit 2) naming the setting and each server's encoding.
pub(crate) fn refuse_lossy_encodings(sessions: &[Encodings]) -> Result<(), Fatal> {
    let held = || {
        sessions
            .iter()
            .map(|s| format!("{} {}", s.role, s.server))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let in_copy = sessions.iter().any(|s| s.in_copy);
    let refuse = |why: String| Fatal {
        exit: Exit::Usage,
        server: None,
        message: if in_copy {
            format!(
                "{why}; the COPYs' ENCODING (table's --encoding, which names a file's encoding \
                 and is said in every COPY, the servers' too) applies between the servers: \
                 write the file in a run of its own, or leave ENCODING out between servers"
            )
        } else {
            format!(
                "{why}; leave client_encoding unset (PGCLIENTENCODING, the CONN's), or set it \
                 to UTF8: between servers copyman converts through UTF8"
            )
        },
    };
    let setting = |s: &Encodings| {
        if s.in_copy {
            "ENCODING"
        } else {
            "client_encoding"
        }
    };
    // The data comes from a file (no source server): read as SQL_ASCII, its bytes pass into
    // another encoding's database unchecked, and values that are not in its encoding are stored
    // unreadable (files48 F1); said before the servers' rule below, whose words are of servers
    // (recheck48a F1).
    if !sessions.iter().any(|s| s.role == "source")
        && let Some(raw) = sessions.iter().find(|s| {
            s.client == "SQL_ASCII"
                && copyman_core::statement::encoding_name(&s.server) != "SQL_ASCII"
        })
    {
        return Err(Fatal {
            exit: Exit::Usage,
            server: None,
            message: format!(
                "{} SQL_ASCII names no encoding, and {}'s database is {}: the file's bytes \
                 would be stored there as they come, unchecked (those that are not {} make its \
                 values unreadable after); give the file's own encoding (--encoding LATIN1, \
                 WIN1252, UTF8, …)",
                setting(raw),
                raw.role,
                raw.server,
                raw.server
            ),
        });
    }
    let mut distinct: Vec<&str> = sessions.iter().map(|s| s.server.as_str()).collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() > 1
        && let Some(ascii) = sessions.iter().find(|s| s.client == "SQL_ASCII")
    {
        return Err(refuse(format!(
            "{} SQL_ASCII converts nothing, and the servers hold other encodings ({}): the \
             source's bytes would be stored as they are",
            setting(ascii),
            held()
        )));
    }
    let through = |s: &Encodings| s.server != s.client;
    // A destination database whose encoding does not convert back to what it converted from:
    // the data, arriving in another encoding, is stored as other characters there (types50
    // F1: UTF8's ¦ read back as ￤ from an EUC_JP database, exit 0, without a word). Said, not
    // refused: only values that hold those characters change.
    // (From a source of that very encoding the characters come back as they were: recheck50b
    // F2.)
    let source_server = sessions
        .iter()
        .find(|s| s.role == "source")
        .map(|s| s.server.as_str());
    for dest in (sessions.iter())
        .filter(|s| s.role != "source" && through(s) && source_server != Some(s.server.as_str()))
    {
        if let Some(changed) = copyman_core::statement::changes_on_the_way_back(&dest.server) {
            report::warn(format_args!(
                "{}'s database is {}, which PostgreSQL does not convert back to what it \
                 converted from ({changed}): a value holding such a character arrives in {} and \
                 is stored as another there (read back, it differs from the source's)",
                dest.role, dest.server, dest.client
            ));
        }
    }
    let Some(source) = sessions.iter().find(|s| s.role == "source") else {
        return Ok(());
    };
    let lossy = copyman_core::statement::changes_on_the_way_back(&source.client);
    if let Some(changed) = lossy.filter(|_| through(source))
        && let Some(dest) = sessions.iter().find(|s| s.role != "source" && through(s))
    {
        return Err(refuse(format!(
            "{} {} does not convert back to what it converted from ({changed}), and the data \
             would pass through it between the source's {} and {}'s {}: values would arrive \
             changed",
            setting(source),
            source.client,
            source.server,
            dest.role,
            dest.server
        )));
    }
    Ok(())
}

/// Warns where the data leaves the source in another encoding than its server's (`passes`:
/// UTF8, where another destination or a `client_encoding` made it so) and a destination holds
/// the source's encoding, whose round trip through it changes bytes
/// ([`changes_through_utf8`](copyman_core::statement::changes_through_utf8)): that destination
/// stores other bytes than the source's, which `--verify` (comparing characters) cannot see.
/// `servers` are the destinations' roles and server encodings.
pub(crate) fn warn_if_rewritten(source: &str, passes: &str, servers: &[(String, String)]) {
    use copyman_core::statement::{changes_through_utf8, encoding_name};
    let source = encoding_name(source);
    // A SQL_ASCII destination stores the bytes it gets as they come: the source's text in
    // another encoding there is other bytes than the source's (pg_dump's, in the source's
    // encoding, would be the source's), which its users read as the source's (types41 F2).
    let passes_name = encoding_name(passes);
    let raw: Vec<&str> = (servers.iter())
        .filter(|(_, server)| encoding_name(server) == "SQL_ASCII")
        .map(|(role, _)| role.as_str())
        .collect();
    // Its `character varying(n)` counts bytes there, not characters: a 22001 says so (from a
    // SQL_ASCII source too, whose text of UTF-8 bytes was in a wider column: recheck63 F8).
    report::set_sql_ascii_destinations(&raw);
    if !raw.is_empty() && !matches!(source.as_str(), "UTF8" | "SQL_ASCII") && passes_name != source
    {
        report::warn(format_args!(
            "{} {} SQL_ASCII, which stores the bytes it gets as they come: the source's {source} \
             text arrives there as {passes_name} bytes, not the source's (a pg_dump of the \
             source would hold {source} bytes); to keep them, give client_encoding={source} in \
             every CONN (the source's and each destination's)",
            raw.join(", "),
            if raw.len() == 1 { "is" } else { "are" },
        ));
    }
    let Some(changed) = changes_through_utf8(&source).filter(|_| encoding_name(passes) != source)
    else {
        return;
    };
    let same: Vec<&str> = servers
        .iter()
        .filter(|(_, server)| encoding_name(server) == source)
        .map(|(role, _)| role.as_str())
        .collect();
    if same.is_empty() {
        return;
    }
    report::warn(format_args!(
        "the data leaves the source's {source} in {} (another destination's encoding, a file, \
         a client_encoding asked for, or a statement with text beyond ASCII: a --where, a \
         --send, a name), and {} hold{} {source} too: {changed}, so there the bytes stored are \
         not the source's; copy into {} in a run of its own, without client_encoding and with \
         ASCII statements (U&'\\65E5' escapes a character), to keep them",
        encoding_name(passes),
        same.join(", "),
        if same.len() == 1 { "s" } else { "" },
        if same.len() == 1 { "it" } else { "them" },
    ));
}

/// The encoding a planned run's data passes in ([`pass_server_encoding`], over every statement
/// still to send) and the warning where it rewrites a destination's bytes
/// ([`warn_if_rewritten`]): the run's, and its `--dry-run`'s, which says what the run would.
///
/// # Errors
/// As [`pass_server_encoding`].
pub(crate) fn pass_and_warn(
    t: &Transfer,
    mut source: Option<&mut Connection>,
    dests: &mut [Dest<'_>],
    plan: &crate::plan::Plan,
) -> Result<(), Fatal> {
    let statements = (plan.send.iter().chain(plan.receive.iter().flatten()))
        .chain(plan.guards.iter().flatten())
        .chain(plan.source_guard.iter())
        .map(String::as_str);
    pass_server_encoding(t, source.as_deref_mut(), dests, statements)?;
    if let Some(conn) = source {
        let source = Encodings::of("source".to_owned(), conn).copying(plan.send.as_deref());
        let servers: Vec<(String, String)> = (dests.iter().enumerate())
            .filter_map(|(i, d)| {
                let encoding = d.conn.as_ref()?.session().parameter("server_encoding")?;
                Some((format!("destination {}", i + 1), encoding.to_owned()))
            })
            .collect();
        warn_if_rewritten(&source.server, &source.client, &servers);
    }
    Ok(())
}

/// Between servers that all hold one encoding other than UTF8, with no `client_encoding` asked
/// for (`--encoding`, a CONN's, `PGCLIENTENCODING`), the data passes in that encoding, as a psql
/// pipe passes it: not to UTF8 and back, which changed bytes (EUC_JP's NEC and IBM duplicates
/// came back as their canonical codes) or failed the copy (codes without a Unicode mapping; a
/// SQL_ASCII database's bytes that are not UTF-8). Set before the copy, after planning (whose
/// catalog reads stay in UTF8), and only where the statements still to send (`statements`: the
/// COPYs, the type guards) are ASCII: copyman's statements are UTF-8, which a session in
/// another encoding would read as other names (a column `é` not found), so with a name beyond
/// ASCII the data goes through UTF8 as before.
///
/// # Errors
/// [`Fatal`] (exit 1) when a server refuses the setting.
pub(crate) fn pass_server_encoding<'s>(
    t: &Transfer,
    source: Option<&mut Connection>,
    dests: &mut [Dest<'_>],
    mut statements: impl Iterator<Item = &'s str>,
) -> Result<(), Fatal> {
    if !statements.all(str::is_ascii) {
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
    let encodings = conns.iter().map(|(_, c)| &**c);
    let Some(shared) = shared_server_encoding(t, encodings) else {
        return Ok(());
    };
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

/// The encoding the data may pass in ([`pass_server_encoding`]), where it is not UTF8: no
/// `client_encoding` asked for, every endpoint a server, and the source's encoding held by every
/// destination — or by some, the others in UTF8, which convert from it as the source would have
/// converted to it (an EUC_JP source into an EUC_JP and a UTF8 destination: through UTF8 the
/// EUC_JP one got other codes for EUC_JP's NEC and IBM duplicates). `conns` starts with the
/// source's.
fn shared_server_encoding<'c>(
    t: &Transfer,
    mut conns: impl Iterator<Item = &'c Connection>,
) -> Option<String> {
    let endpoints = std::iter::once(&t.source).chain(&t.destinations);
    let mut specs = endpoints.clone().filter_map(|e| match e {
        Endpoint::Server(spec) => Some(spec),
        _ => None,
    });
    if t.safety.encoding.is_some()
        || !endpoints.clone().all(Endpoint::is_server)
        || specs.any(|spec| spec.names_client_encoding())
    {
        return None;
    }
    let encoding = |c: &Connection| c.session().parameter("server_encoding").map(str::to_owned);
    let shared = encoding(conns.next()?)?;
    let others: Vec<Option<String>> = conns.map(encoding).collect();
    let same = others.iter().all(|e| e.as_deref() == Some(shared.as_str()));
    // SQL_ASCII converts nothing: with UTF8 destinations it passes only as UTF8 did.
    let read_from_it = shared != "SQL_ASCII"
        && others
            .iter()
            .all(|e| e.as_deref().is_some_and(|e| e == shared || e == "UTF8"));
    (shared != "UTF8" && (same || read_from_it)).then_some(shared)
}

/// The encoding, other than UTF8, that the data of a copy between `conns` may pass in: the
/// `client_encoding` a CONN or the environment named (`copy`'s `--encoding` too), or the one
/// every server holds ([`pass_server_encoding`], which the planner asks before it is set).
/// Binary `xml` carries a declaration of it that the destination stores.
pub(crate) fn non_utf8_client_encoding<'c>(
    t: &Transfer,
    conns: impl Iterator<Item = &'c Connection> + Clone,
) -> Option<String> {
    let utf8 = |name: &str| copyman_core::statement::encoding_name(name) == "UTF8";
    let named = conns
        .clone()
        .filter_map(|c| c.session().parameter("client_encoding"))
        .find(|name| !utf8(name));
    let raw_encoding = match t.statements {
        Statements::Raw { .. } => t.safety.encoding.as_deref().filter(|name| !utf8(name)),
        Statements::Table { .. } => None,
    };
    (named.or(raw_encoding).map(str::to_owned)).or_else(|| shared_server_encoding(t, conns))
}

/// Takes `--stall-timeout`'s socket timeouts off again once the copy is over: a COMMIT that takes
/// long must not be given up on while the server may still commit it (copyman would report as
/// failed a destination that committed) — but for a source that wrote nothing (`source_read_only`),
/// whose COMMIT commits nothing. Lock waits stay bounded by `--lock-timeout`. (The
/// signal's interrupter ([`prepare`]) stays: the commit's participants take it off for the
/// statements whose answer decides, core's `Action::awaited`.)
pub(crate) fn end_stall_timeouts(
    t: &Transfer,
    source: Option<&mut Connection>,
    source_read_only: bool,
    dests: &mut [Dest<'_>],
) {
    if t.safety.stall_timeout.is_none() {
        return;
    }
    // A source that wrote nothing keeps its bound: its COMMIT commits nothing, and a frozen
    // source backend held for ever a run whose destinations had all committed (recheck42b F1).
    let conns = (source.filter(|_| !source_read_only).into_iter())
        .chain(dests.iter_mut().filter_map(|d| d.conn.as_mut()));
    for conn in conns {
        // A connection whose socket cannot take the setting is broken: its COMMIT says so.
        let _ = conn.set_timeout(None);
    }
}
