//! `--verify`: an order-independent checksum of a table's copied columns ([`checksum`]), the
//! source's in the copy's snapshot compared with each destination's after its commit
//! ([`verify_dest`]), on a resume with the destinations where an earlier run did the table
//! ([`verify_done`]), and again once the job's writes are over where triggers ran
//! ([`verify_after_triggers`]).

use copyman_sync::Connection;

use super::DestPlan;
#[cfg(doc)]
use super::Options;
use super::error::{TableError, describe};
use super::planning::TablePlan;
use super::report::{DestResult, Event, Side, Status, TableReport};
use super::running::{Shared, begin_source, done_earlier, record_mismatch};
use super::sessions::{Conns, end, ensure};
use crate::sql::{Ident, TableName, own_rows};

/// The SQL that makes two servers print values alike, for the checksum.
const CHECKSUM_SETTINGS: [&str; 7] = [
    "SET LOCAL DateStyle = 'ISO, YMD'",
    // Money printed as its stored count in one form, whatever lc_monetary a CONN names (a
    // destination told its locale reported identical amounts as different).
    "SET LOCAL lc_monetary = 'C'",
    // Values that name objects (`regclass` …) printed schema-qualified on both sides.
    crate::sql::PIN_SEARCH_PATH,
    "SET LOCAL IntervalStyle = 'postgres'",
    "SET LOCAL TimeZone = 'UTC'",
    "SET LOCAL extra_float_digits = 3",
    "SET LOCAL bytea_output = 'hex'",
];

/// How a checksum reads columns of another type: the destination's columns read back in the
/// source's types ([`TablePlan::read_as`]), and those every side reads in one form
/// ([`TablePlan::compare_forms`]).
type ReadAs<'a> = (&'a [(Ident, String)], &'a [(Ident, &'static str)]);

/// An order-independent checksum of a table's copied columns: the row count and the sum of
/// the first 60 bits of each row's md5, over the rows a copy of the relation (of `kind` on the
/// server asked) reads or writes ([`own_rows`]: an inheritance parent's own rows, not its
/// children's).
///
/// Each row's text is hashed as UTF-8 bytes (`convert_to`), so that servers of other encodings
/// agree on the same characters (`café` is other bytes in LATIN1), except ([`Hashed::Raw`]) on
/// a `SQL_ASCII` server, whose bytes are hashed as it holds them (it converts nothing, and
/// refuses to call bytes that are not UTF-8 so), and between servers that all hold one other
/// encoding ([`TablePlan::checksum_unconverted`]): their bytes are compared as they are (a byte
/// WIN1252 leaves undefined has no UTF-8 form, and EUC_JP's NEC and IBM duplicates share one).
/// A `SQL_ASCII` server read through another `client_encoding` than UTF8 (`LATIN1`, as copyman
/// advises for one that holds LATIN1 bytes) holds its bytes in that encoding, which the others
/// took for it: they are hashed as that encoding's characters in UTF-8 ([`Hashed::From`]).
///
/// A column in `read_as` is read back as the expression given there (`{}` the column: in the
/// source's type, so that a destination that holds it in another type compares the values, not
/// their words; [`TablePlan::read_as`]).
///
/// A column in `forms` is read in that form ([`crate::sql::comparison_form`]), on every side.
fn checksum_query(
    table: &TableName,
    columns: &[Ident],
    kind: &str,
    hashed: &Hashed,
    (read_as, forms): ReadAs<'_>,
) -> String {
    let list: Vec<String> = columns
        .iter()
        .map(|c| {
            if let Some((_, form)) = forms.iter().find(|(name, _)| name == c) {
                return form.replace("{}", &c.to_string());
            }
            match read_as.iter().find(|(name, _)| name == c) {
                Some((_, read)) => read.replace("{}", &c.to_string()),
                None => c.to_string(),
            }
        })
        .collect();
    let row = format!("ROW({})::text", list.join(", "));
    let bytes = match hashed {
        Hashed::Utf8 => format!("pg_catalog.convert_to({row}, 'UTF8')"),
        Hashed::Raw => row,
        Hashed::From(encoding) => format!(
            "pg_catalog.convert(pg_catalog.convert_to({row}, 'SQL_ASCII'), {}, 'UTF8')",
            crate::sql::literal(encoding)
        ),
    };
    format!(
        "SELECT count(*)::text || ':' || coalesce(sum(('x' || substr(md5({bytes}), 1, 15))\
         ::bit(60)::int8), 0)::text FROM {}",
        own_rows(table, kind)
    )
}

/// How a checksum hashes each row's text ([`checksum_query`]).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Hashed {
    /// As UTF-8 bytes.
    Utf8,
    /// As the server holds it.
    Raw,
    /// A `SQL_ASCII` server's bytes, read as this encoding, in UTF-8.
    From(String),
}

/// Runs the source's checksum of `t` on `conn`, inside its open transaction ([`checksum_on`]),
/// told to the caller first ([`Event::Verifying`]): it reads every row while no data moves.
pub(super) fn checksum(
    (shared, worker): (&Shared<'_>, usize),
    conn: &mut Connection,
    t: &TablePlan,
) -> Result<String, TableError> {
    (shared.events)(Event::Verifying {
        worker,
        table: t.table.clone(),
    });
    checksum_on(conn, t, &[])
}

/// Runs the checksum on `conn`, inside its open transaction, with the columns of `read_as` read
/// back in its types (a destination's: [`TablePlan::read_as`]). The relation's kind is read on
/// that server: a destination's table may be of another kind than the source's (partitioned
/// there, ordinary here), and each side counts the rows its copy read or wrote.
fn checksum_on(
    conn: &mut Connection,
    t: &TablePlan,
    read_as: &[(Ident, String)],
) -> Result<String, TableError> {
    for sql in CHECKSUM_SETTINGS {
        conn.execute(sql).map_err(|e| describe(&e))?;
    }
    // Text read as dates, zoned times, intervals or arrays as the destinations read the copy
    // (the output stays ISO: one instant is one text in one zone on every side).
    for (setting, value) in &t.checksum_reads_in {
        let sql = format!("SET LOCAL {setting} = {}", crate::sql::literal(value));
        conn.execute(&sql).map_err(|e| describe(&e))?;
    }
    let kind = conn
        .query(&format!(
            "SELECT c.relkind::text FROM pg_catalog.pg_class c WHERE c.oid = {}::pg_catalog.regclass",
            t.table.regclass_literal()
        ))
        .map_err(|e| describe(&e))?
        .first()
        .and_then(|r| r.first().cloned().flatten())
        .ok_or_else(|| TableError::new("the relation's kind could not be read"))?;
    let encoding = conn.session().parameter("server_encoding");
    let client = conn.session().parameter("client_encoding");
    let hashed = match (encoding, client) {
        (Some("SQL_ASCII"), Some(client))
            if !t.checksum_unconverted && !matches!(client, "UTF8" | "SQL_ASCII") =>
        {
            Hashed::From(client.to_owned())
        }
        (Some("SQL_ASCII"), _) => Hashed::Raw,
        (Some(e), _) if t.checksum_unconverted && t.data_encoding.as_deref() == Some(e) => {
            Hashed::Raw
        }
        _ => Hashed::Utf8,
    };
    let rows = conn
        .query(&checksum_query(
            &t.table,
            &t.columns,
            &kind,
            &hashed,
            (read_as, &t.compare_forms),
        ))
        .map_err(|e| describe(&e))?;
    rows.first()
        .and_then(|r| r.first().cloned().flatten())
        .ok_or_else(|| TableError::new("the checksum query returned nothing"))
}

/// Under [`Options::verify`], compares `t` on the destinations where an earlier run did it
/// ([`DestPlan::Done`], skipped by the copy) with the source in the job's snapshot (`sum`: the
/// source's checksum if the copy computed it, else computed now), as a table copied now is
/// compared: a resume that adds `--verify` checks every table of the job. One that differs, or
/// cannot be compared, is recorded `mismatch`: not done, so that the next resume empties it
/// there and copies it again. A table recorded done with the checksum it matched the source's
/// with (a run that verified it, in its own snapshot) is compared with that checksum, not with
/// the source as it is now: against a live source every table copied earlier differs from the
/// source now (each was called different and un-recorded), and a difference from the checksum
/// recorded is a change on the destination since — unless the destination was failed over or
/// restored since (compared with the source then). Nothing is compared once the job halted (an interrupt may have
/// cancelled the source's checksum: that would say nothing of the table). `sum_kept` keeps the
/// source's checksum, for [`verify_after_triggers`].
pub(super) fn verify_done(
    shared: &Shared<'_>,
    worker: usize,
    t: &TablePlan,
    conns: &mut Conns,
    sum_kept: &mut Option<String>,
    report: &mut TableReport,
) {
    let key = t.table.to_string();
    let done = done_earlier(t);
    if !shared.options.verify || done.is_empty() || shared.halted() {
        return;
    }
    // Compared with the checksum an earlier run recorded, where there is one, not with the
    // source now (a live source differs from any earlier moment).
    let then = |d: usize| recorded_sum(shared, &key, d);
    let (by_record, done): (Vec<usize>, Vec<usize>) =
        done.into_iter().partition(|&d| then(d).is_some());
    for d in by_record {
        let sum = then(d).expect("partitioned above");
        let result = &mut report.destinations[d];
        let now = match ensure(&mut conns.dests[d], &shared.destinations[d]) {
            Ok(conn) => verify_dest((shared, worker, d), result, Some(conn), t, sum),
            Err(e) => {
                not_compared(result, e.prefixed("verify: "));
                None
            }
        };
        if result.verified == Some(false) {
            let now = now.unwrap_or_default();
            result.error = Some(TableError::new(format!(
                "verify: the checksum differs from the source's as an earlier run read it, \
                 recorded in the state file (rows:sum {now} here now, {sum} then): it changed \
                 there since, or was stored otherwise than it was read (a trigger there: COPY \
                 applies no rule)"
            )));
            record_mismatch(shared, &key, d, result);
        }
    }
    if done.is_empty() || shared.halted() {
        return;
    }
    let sum = match sum_kept.clone() {
        Some(sum) => Ok(sum),
        None => source_checksum(shared, worker, t, conns),
    };
    if shared.halted() {
        return;
    }
    if let Ok(sum) = &sum {
        *sum_kept = Some(sum.clone());
    }
    for d in done {
        let result = &mut report.destinations[d];
        match &sum {
            Ok(sum) => match ensure(&mut conns.dests[d], &shared.destinations[d]) {
                Ok(conn) => {
                    verify_dest((shared, worker, d), result, Some(conn), t, sum);
                }
                Err(e) => not_compared(result, e.prefixed("verify: ")),
            },
            Err(e) => not_compared(
                result,
                e.clone()
                    .prefixed("verify: the source's checksum could not be computed: "),
            ),
        }
        // Found different: no longer done. Not compared: still done, as an earlier run found it.
        if result.verified == Some(false) {
            record_mismatch(shared, &key, d, result);
        }
        // One an earlier run found different, matching now (mended there since): done, with the
        // rows it holds.
        let dest = &shared.plan.keys[d];
        if result.verified == Some(true) && shared.plan.rechecked(&key, d) {
            let held = (result.checksum.as_deref())
                .and_then(|sum| sum.split(':').next()?.parse().ok())
                .or(result.rows)
                .unwrap_or(0);
            result.rows = Some(held);
            if let Err(e) = (shared.state).done(&key, dest, held, result.checksum.as_deref()) {
                result.error = Some(TableError::new(format!(
                    "verify: it matches the source now, but the state file could not record it \
                     done (a resume compares it again): {e}"
                )));
            }
        }
    }
}

/// The source's checksum of `t`, in the job's snapshot, on the worker's source session
/// (announced while it runs, so that a signal can cancel it).
fn source_checksum(
    shared: &Shared<'_>,
    worker: usize,
    t: &TablePlan,
    conns: &mut Conns,
) -> Result<String, TableError> {
    let source = ensure(&mut conns.source, shared.source).map_err(|e| e.prefixed("source: "))?;
    shared.announce(worker, &t.table, Side::Source, source);
    let sum = begin_source(shared, source, shared.plan.snapshot.as_deref(), &[t])
        .and_then(|()| checksum((shared, worker), source, t));
    end(Some(source));
    (shared.events)(Event::Ending { worker });
    sum
}

/// Compares committed destination `d`'s checksum of `t` with the source's, on `conn`, told to
/// the caller ([`Event::Checksum`]: a signal cancels it); the destination's checksum, where it
/// was computed.
pub(super) fn verify_dest(
    (shared, worker, d): (&Shared<'_>, usize, usize),
    result: &mut DestResult,
    conn: Option<&mut Connection>,
    t: &TablePlan,
    sum: &str,
) -> Option<String> {
    let Some(conn) = conn else {
        not_compared(
            result,
            TableError::new("verify: no connection to the destination"),
        );
        return None;
    };
    if let Some((pid, _)) = conn.session().backend_key() {
        (shared.events)(Event::Checksum {
            worker,
            destination: d,
            pid,
            cancel: conn.cancel_token().ok(),
        });
    }
    let theirs = conn
        .execute("BEGIN")
        .map_err(|e| describe(&e))
        .and_then(|_| checksum_on(conn, t, t.read_as.get(d).map_or(&[], Vec::as_slice)));
    end(Some(conn));
    match theirs {
        Ok(theirs) if theirs == sum => {
            result.verified = Some(true);
            result.checksum = Some(theirs.clone());
            Some(theirs)
        }
        Ok(theirs) => {
            result.verified = Some(false);
            // Its own triggers ran as it was written there: what they changed is theirs, and
            // every run would find it again.
            let triggers = if matches!(
                t.destinations.get(d),
                Some(DestPlan::Copy { triggers: true, .. })
            ) {
                "; triggers of its own ran there as it was written (the plan names them): a \
                 value they set is a difference every run finds again — copy it without \
                 --verify, or without them (options='-c session_replication_role=replica' in \
                 the destination's CONN, or ALTER TABLE … DISABLE TRIGGER)"
            } else {
                ""
            };
            let appended = !(shared.options.truncate || shared.plan.recorded.truncate);
            let since = differs_since(result.status, &theirs, sum, appended);
            result.error = Some(TableError::new(format!(
                "verify: the checksum differs from the source's (rows:sum {theirs} here, {sum} on \
                 the source){triggers}{since}"
            )));
            Some(theirs)
        }
        Err(e) => {
            not_compared(
                result,
                e.prefixed("verify: the checksum could not be computed: "),
            );
            None
        }
    }
}

/// What else a difference (`theirs` on the destination, `sum` on the source, as `rows:sum`) may
/// be, said after it: a table an earlier run committed was copied from that run's snapshot, and
/// compared with this run's its difference may be the source's writes since (live52 F5: the
/// words blamed triggers and types); one holding more rows than the source may have rows
/// another session wrote after the COMMIT (live52 F6: an application inserting there), or, where
/// the copy was `appended` (not emptied first), rows it held before.
fn differs_since(status: Status, theirs: &str, sum: &str, appended: bool) -> String {
    let rows = |s: &str| s.split(':').next().and_then(|n| n.parse::<u64>().ok());
    if status == Status::AlreadyDone {
        // (Or this destination written since: recheck57 F5, the words blamed the source only.)
        return "; an earlier run copied it from its own snapshot of the source, at another \
                moment, and this one compares it with the source as it is now: rows written on \
                the source since that copy, or on this destination after its COMMIT, make it \
                differ (compare it while neither is written)"
            .to_owned();
    }
    match (rows(theirs), rows(sum)) {
        (Some(here), Some(there)) if here > there => format!(
            "; it holds {} row{} more than the source: {}{ANOTHER_SESSION} (an application, a \
             subscription: compare it while nothing else writes there)",
            here - there,
            if here - there == 1 { "" } else { "s" },
            if appended {
                "rows it held before the copy (an append), or "
            } else {
                ""
            }
        ),
        _ => String::new(),
    }
}

/// Who else [`differs_since`] says may have written rows a destination holds more than the
/// source.
const ANOTHER_SESSION: &str = "rows another session wrote there after the COMMIT";

/// Under [`Options::verify`], once every worker is done: on each destination where a table this
/// run committed fired triggers of the user's (`DestPlan::Copy`'s `triggers`: on `INSERT`, or on
/// `TRUNCATE` as it was emptied), every table verified there is compared with the source again
/// (`sums`: the source's checksums, by table), since a trigger of one table may have changed
/// another after that one's own check (an `AFTER INSERT` keeping a total in a table copied
/// before it, a `TRUNCATE` trigger that cleans another up). One that differs now is recorded
/// `mismatch` ([`record_mismatch`]: a resume copies it again, or leaves it to the user without
/// `--truncate`); one that cannot be compared now, or is not reached (the job halted), is
/// unverified, still recorded done as its first check found it. Each comparison is announced
/// ([`Event::Backend`], worker 0) so that a signal can cancel it.
pub(super) fn verify_after_triggers(
    shared: &Shared<'_>,
    reports: &mut [Option<TableReport>],
    sums: &[Option<String>],
) {
    if !shared.options.verify {
        return;
    }
    let tables = &shared.plan.tables;
    for d in 0..shared.destinations.len() {
        let fired: Vec<String> = tables
            .iter()
            .zip(reports.iter())
            .filter(|(t, r)| {
                matches!(t.destinations[d], DestPlan::Copy { triggers: true, .. })
                    && r.as_ref().is_some_and(|r| {
                        matches!(
                            r.destinations[d].status,
                            Status::Committed | Status::PartlyCommitted
                        )
                    })
            })
            .map(|(t, _)| t.table.to_string())
            .collect();
        // What each table verified there is compared with: the source's checksum this run
        // read, or for a table an earlier run did, the one it recorded (a resume's done table,
        // into which this run's triggers may have written too: it was said verified, exit 0,
        // holding twice the source's rows: first47 F6).
        let against: Vec<Option<String>> = (0..tables.len())
            .map(|i| {
                let recorded = || recorded_sum(shared, &tables[i].table.to_string(), d).cloned();
                sums[i].clone().or_else(recorded)
            })
            .collect();
        let again: Vec<usize> = (0..tables.len())
            .filter(|&i| {
                against[i].is_some()
                    && reports[i]
                        .as_ref()
                        .is_some_and(|r| r.destinations[d].verified == Some(true))
            })
            .collect();
        if fired.is_empty() || again.is_empty() {
            continue;
        }
        (shared.events)(Event::VerifyingAgain {
            destination: d,
            tables: again.len(),
            triggers: fired.clone(),
        });
        let why = format!(
            "compared again after the job's last write (triggers of {} ran there): ",
            fired.join(", ")
        );
        let mut conn = None;
        for i in again {
            let t = &tables[i];
            let mut now = reports[i].as_ref().expect("verified above").destinations[d].clone();
            if shared.halted() {
                not_compared(&mut now, TableError::new("the job stopped first"));
            } else {
                match ensure(&mut conn, &shared.destinations[d]) {
                    Ok(c) => {
                        shared.announce(0, &t.table, Side::Destination(d), c);
                        let sum = against[i].as_deref().unwrap_or_default();
                        verify_dest((shared, 0, d), &mut now, Some(c), t, sum);
                        (shared.events)(Event::Ending { worker: 0 });
                    }
                    Err(e) => not_compared(&mut now, e),
                }
            }
            if now.verified == Some(true) {
                continue;
            }
            if let Some(error) = &mut now.error {
                error.message = format!("{why}{}", triggers_first(&error.message, &fired));
            }
            if now.verified == Some(false) {
                record_mismatch(shared, &t.table.to_string(), d, &mut now);
            }
            reports[i].as_mut().expect("verified above").destinations[d] = now;
        }
    }
}

/// `message` of a difference found after triggers of the job's tables (`fired`) ran there, rows
/// more than the source's blamed on them first (jobs72 F2: the job's own trigger's rows were
/// blamed on "another session … an application").
fn triggers_first(message: &str, fired: &[String]) -> String {
    let theirs = format!(
        "rows the triggers of {} wrote there in this job (options='-c \
         session_replication_role=replica' in the destination's CONN keeps them from running), \
         or {ANOTHER_SESSION}",
        fired.join(", ")
    );
    message.replace(ANOTHER_SESSION, &theirs)
}

/// The checksum recorded for table `key` on destination `d` when an earlier run found it equal
/// to the source's, where that run left it (not failed over or restored since).
fn recorded_sum<'s>(shared: &'s Shared<'_>, key: &str, d: usize) -> Option<&'s String> {
    let plan = shared.plan;
    let moved = plan.moved.get(d).copied().unwrap_or(true);
    let sum = (plan.recorded.checksums).get(&(key.to_owned(), plan.keys[d].clone()));
    sum.filter(|_| !moved)
}

/// Marks `result` not compared with the source (a checksum could not be computed), with why:
/// neither verified nor found different.
pub(super) fn not_compared(result: &mut DestResult, error: TableError) {
    result.verified = None;
    result.unverified = true;
    result.error = Some(error);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_difference_says_what_else_it_may_be() {
        let earlier = differs_since(Status::AlreadyDone, "5:10", "5:11", true);
        assert!(earlier.contains("its own snapshot of the source, at another moment"));
        assert!(earlier.contains("or on this destination after its COMMIT"));
        let more = differs_since(Status::Committed, "7:10", "5:11", true);
        assert!(
            more.contains("it holds 2 rows more than the source"),
            "{more}"
        );
        assert!(
            more.contains("another session wrote there after the COMMIT"),
            "{more}"
        );
        let one = differs_since(Status::Committed, "6:10", "5:11", false);
        assert!(one.contains("1 row more"), "{one}");
        // Compared again after the job's triggers ran there: they come first (jobs72 F2).
        let fired = ["\"public\".\"moves\"".to_owned()];
        let blamed = triggers_first(&one, &fired);
        assert!(
            blamed.contains("rows the triggers of \"public\".\"moves\" wrote there in this job")
                && blamed.contains("session_replication_role=replica")
                && blamed.contains("or rows another session wrote there after the COMMIT"),
            "{blamed}"
        );
        assert!(
            more.contains("(an append)") && !one.contains("(an append)"),
            "{one}"
        );
        assert_eq!(differs_since(Status::Committed, "5:10", "5:11", true), "");
        assert_eq!(differs_since(Status::Committed, "4:10", "5:11", true), "");
    }

    #[test]
    fn the_checksum_names_every_column() {
        let table = TableName::parse("s.t").unwrap();
        let columns = crate::sql::parse_columns(r#"a, "B""#).unwrap();
        let q = checksum_query(&table, &columns, "p", &Hashed::Utf8, (&[], &[]));
        assert!(
            q.contains(r#"md5(pg_catalog.convert_to(ROW("a", "B")::text, 'UTF8'))"#),
            "{q}"
        );
        assert!(q.ends_with(r#"FROM "s"."t""#), "{q}");
        // A SQL_ASCII server's bytes as they are.
        let q = checksum_query(&table, &columns, "p", &Hashed::Raw, (&[], &[]));
        assert!(q.contains(r#"md5(ROW("a", "B")::text)"#), "{q}");
        // Read through LATIN1: its bytes as LATIN1's characters.
        let latin1 = Hashed::From("LATIN1".to_owned());
        let q = checksum_query(&table, &columns, "p", &latin1, (&[], &[]));
        assert!(
            q.contains(
                r#"md5(pg_catalog.convert(pg_catalog.convert_to(ROW("a", "B")::text, 'SQL_ASCII'), 'LATIN1', 'UTF8'))"#
            ),
            "{q}"
        );
        // An ordinary table's own rows, as its copy reads them (not its children's).
        let q = checksum_query(&table, &columns, "r", &Hashed::Utf8, (&[], &[]));
        assert!(q.ends_with(r#"FROM ONLY "s"."t""#), "{q}");
        // A column of another type there, read back in the source's.
        let read_as = [(
            columns[1].clone(),
            "CAST(CAST({} AS text) AS real)".to_owned(),
        )];
        let q = checksum_query(&table, &columns, "r", &Hashed::Utf8, (&read_as, &[]));
        assert!(
            q.contains(r#"ROW("a", CAST(CAST("B" AS text) AS real))::text"#),
            "{q}"
        );
    }
}
