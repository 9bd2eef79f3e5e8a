//! The job's sessions: a session whose statement did not end given up ([`give_up`]: what it
//! waited for asked, its statement cancelled, a new session in its place), a worker's
//! connections ([`Conns`]), (re)connected when missing or broken ([`ensure`]), and a
//! transaction rolled back ([`end`]).

use copyman_sync::{Connection, DbError};

use super::error::{TableError, describe};
use super::options::Server;
use super::report::{Notice, Side, TableReport};
use crate::commit::{self, backend_alive};

/// The process id of `conn`'s backend, where its server said it (BackendKeyData).
pub(super) fn backend_pid(conn: &Connection) -> Option<i32> {
    conn.session().backend_key().map(|(pid, _)| pid)
}

/// Gives up the session in `slot` if its statement did not end (a stall, a broken socket):
/// asks a new session what its backend was waiting for (a lock: which, held by whom), cancels
/// its statement, so that nothing of it goes on waiting or running on the server, and leaves
/// the new session in `slot` (or nothing, if none could be opened: the next use connects
/// again). Returns what to tell the user: what it waited for and that it was cancelled.
/// A session that is ready is left alone (`None`).
pub(super) fn give_up(slot: &mut Option<Connection>, server: &Server) -> Option<String> {
    if slot.as_ref().is_none_or(Connection::is_ready) {
        return None;
    }
    let old = slot.take().expect("checked just above");
    // Its server said it ends it (an immediate shutdown, a crash): no backend stays.
    if old.session().ending_notice().is_some() {
        return None;
    }
    // Closed by its copy (its server took no byte for the stall timeout): nothing to cancel,
    // but its backend, which may never hear the close (a lost network path), is ended on a new
    // session if one can be made — within the connect timeout, the stall timeout's (conn68
    // F2: one backend per table stayed in its COPY, holding its locks). The next use connects.
    if old.is_closed() {
        let pid = backend_pid(&old);
        let ended = pid
            .zip((server.connect)().ok())
            .map(|(pid, mut conn)| commit::end_orphan(&mut conn, pid, 0.0));
        return Some(match (pid, ended) {
            (Some(pid), Some(Some(true))) => format!(
                "{CLOSED}; its backend there ({pid}), which had not heard so, was terminated"
            ),
            (Some(pid), Some(None) | None) => format!("{CLOSED}; {}", lingering(pid)),
            _ => CLOSED.to_owned(),
        });
    }
    let mut fresh = (server.connect)().ok();
    let pid = backend_pid(&old);
    let waited = pid
        .zip(fresh.as_mut())
        .and_then(|(pid, conn)| lock_wait(conn, pid));
    // A backend that is gone (terminated, its server restarted) has nothing to cancel: said so,
    // not "cancelled". One that cannot be asked about is cancelled all the same.
    let gone = pid
        .zip(fresh.as_mut())
        .is_some_and(|(pid, conn)| !backend_alive(conn, pid));
    let cancelled = if gone {
        ENDED.to_owned()
    } else {
        match old.cancel() {
            Ok(()) => CANCELLED.to_owned(),
            Err(e) => format!("cancelling its statement failed: {}", describe(&e)),
        }
    };
    // Its socket closes with it: a backend that ends its wait finds no one and rolls back.
    drop(old);
    // One the cancel does not end (frozen, or behind a lost network path: it never acts on
    // the request) stays in its statement, in its transaction, holding its locks: ended on
    // the new session, or said with the statement that ends it (recheck69 F11: a job's
    // backends frozen in their COPY were said "rolled back" and kept their locks).
    let ended = match (gone, pid, fresh.as_mut()) {
        (false, Some(pid), Some(conn)) => commit::end_orphan(conn, pid, 0.0).is_some(),
        _ => true,
    };
    let cancelled = match (ended, pid) {
        (false, Some(pid)) => format!("{cancelled}; {}", lingering(pid)),
        _ => cancelled,
    };
    *slot = fresh;
    Some(match waited {
        Some(waited) => format!("{waited}; {cancelled}"),
        None => cancelled,
    })
}

/// What [`give_up`] says of backend `pid` that did not end when told to, or could not be told.
fn lingering(pid: i32) -> String {
    format!(
        "its backend there ({pid}) {MAY_STAY}, holding its locks, until its server hears: end \
         it there: SELECT pg_terminate_backend({pid})"
    )
}

/// What [`give_up`] says of a backend that may outlive its session (after "its backend there
/// (N) "): its transaction may be open still, not rolled back.
pub(super) const MAY_STAY: &str = "may stay in its statement, in its transaction";

/// What [`give_up`] says of a statement it cancelled.
pub(super) const CANCELLED: &str = "its statement was cancelled";

/// What [`give_up`] says of a session its copy closed (nothing to cancel).
pub(super) const CLOSED: &str = "its session was closed: nothing of it committed (its server ends the transaction once it hears)";

/// What [`give_up`] says of a session whose backend was gone (nothing to cancel).
pub(super) const ENDED: &str = "its backend had already ended";

/// Whether backend `pid` waits for a lock, said as "backend N was waiting for a lock (kind)
/// held by backend M", asked on `conn` (another session on its server).
fn lock_wait(conn: &mut Connection, pid: i32) -> Option<String> {
    let rows = conn
        .query(&format!(
            "SELECT a.wait_event, {} FROM pg_catalog.pg_stat_activity a \
             WHERE a.pid = {pid} AND a.wait_event_type = 'Lock'",
            commit::lock_holders_sql("a.pid")
        ))
        .ok()?;
    let row = rows.first()?;
    let kind = row.first().cloned().flatten().unwrap_or_default();
    let holders = row.get(1).cloned().flatten().unwrap_or_default();
    // A prepared transaction (pg_blocking_pids says 0) by its name.
    let held = match commit::held_by(&holders) {
        held if held.is_empty() => held,
        held => format!(" {held}"),
    };
    Some(format!(
        "backend {pid} was waiting for a lock ({kind}){held}"
    ))
}

/// A worker's connections.
pub(super) struct Conns {
    pub(super) source: Option<Connection>,
    pub(super) dests: Vec<Option<Connection>>,
}

/// Takes what the servers of `conns` said (notices, warnings) into `heard`: the source's, then
/// each destination's, in order.
pub(super) fn take_notices(conns: &mut Conns, report: &mut TableReport) {
    let dests = conns.dests.iter_mut().enumerate();
    let sides = std::iter::once((Side::Source, &mut conns.source))
        .chain(dests.map(|(d, slot)| (Side::Destination(d), slot)));
    for (side, slot) in sides {
        if let Some(conn) = slot {
            for notice in conn.take_notices() {
                keep_notice(report, side, notice);
            }
            report.notices_dropped += conn.take_dropped_messages();
        }
    }
}

/// Keeps what `side` said in `report`: a notice it said before (the same words; the first
/// one's context is kept) counted again on its entry, a
/// new one kept while fewer than [`NOTICES_KEPT_PER_TABLE`] are, else counted dropped. (A
/// trigger's notice per row filled the entries with copies of one line, said as "said 100
/// times" of 300, and a distinct WARNING after them was dropped.)
fn keep_notice(report: &mut TableReport, side: Side, notice: DbError) {
    let room = report.notices.len() < NOTICES_KEPT_PER_TABLE;
    // The same words: its context differs by row (`COPY t, line 5`).
    let same = |n: &DbError| {
        (n.severity == notice.severity && n.code == notice.code && n.message == notice.message)
            && (n.detail == notice.detail && n.hint == notice.hint)
    };
    let known = (report.notices.iter_mut()).find(|n| n.side == side && same(&n.notice));
    match known {
        Some(known) => known.times += 1,
        None if room => {
            report.notices.push(Notice {
                side,
                notice,
                times: 1,
            });
        }
        None => report.notices_dropped += 1,
    }
}

/// The notices a job keeps of one table ([`TableReport::notices`]): a job keeps every table's
/// report to its end (a notice per row of a thousand tables took its memory), and what they
/// say past the first few is said again and again.
pub(super) const NOTICES_KEPT_PER_TABLE: usize = 100;

/// Where the server of a destination stands in its WAL, read on its session `slot` (connected
/// if need be, and idle): for the `position` line that goes with the `begin` of a table there
/// (`None` where it cannot be read). A connect that fails is the table's failure there: tried
/// again for its `begin`, a server that does not answer was waited for twice (scale51 F2: 30 s
/// where the connect timeout said 15).
pub(super) fn position(
    slot: &mut Option<Connection>,
    server: &Server,
) -> Result<Option<crate::state::Position>, TableError> {
    Ok(crate::identity::wal_position(ensure(slot, server)?))
}

/// The connection in `slot`, (re)connected when missing or broken (a statement that did not
/// end there is cancelled first: [`give_up`]).
pub(super) fn ensure<'c>(
    slot: &'c mut Option<Connection>,
    server: &Server,
) -> Result<&'c mut Connection, TableError> {
    give_up(slot, server);
    if slot.is_none() {
        let connected = (server.connect)().map_err(|e| TableError {
            connect: true,
            ..describe(&e).prefixed("cannot connect: ")
        });
        *slot = Some(connected?);
    }
    Ok(slot.as_mut().expect("connected just above"))
}

/// Rolls back `conn`'s transaction, if it has one open (and is usable).
pub(super) fn end(conn: Option<&mut Connection>) {
    if let Some(conn) = conn
        && conn.is_ready()
        && commit::Action::Rollback.is_due(conn.session().transaction_status())
    {
        let _ = conn.execute("ROLLBACK");
    }
}
