//! `copyman table` and `copyman copy`: connect, plan the statements, copy with every server
//! destination inside its own transaction, then commit everywhere or roll back everywhere.
//!
//! The order of a run:
//! 1. connect to every server (a failure is exit 3), open files;
//! 2. plan: for `table`, read the table's catalog on the source and on every destination (kind,
//!    row estimate, columns and types), match the columns by name and choose the format; build
//!    every statement from quoted names (`--dry-run` stops here and shows the plan);
//! 3. `BEGIN` (and `TRUNCATE`) on each server destination;
//! 4. copy with [`CopyManager`](copyman_sync::CopyManager): a fault aborts every destination, or with `--keep-going` only
//!    the faulted ones;
//! 5. check: row counts agree with the source's, deferred constraints hold
//!    (`SET CONSTRAINTS ALL IMMEDIATE`);
//! 6. `COMMIT` every surviving destination (files are renamed into place) — or `ROLLBACK` all.
//!
//! The steps live in files named for them: [`plan`](crate::plan) (statements and format),
//! [`drive`](crate::drive) (the copy manager's run), [`dest`](crate::dest) (a destination's
//! transaction or file) and [`file_source`](crate::file_source) (files and stdin as a source).
//!
//! The commits of step 6 are not atomic across servers (that would need two-phase commit, off by
//! default in PostgreSQL): everything that can fail is checked before the first `COMMIT`, and a
//! `COMMIT` that still fails is reported for its destination.

use std::collections::BTreeSet;
use std::time::Instant;

use copyman_sync::{Connection, Producer, Receiver, StatementProducer};

use copyman_job::commit::Outcome;

use crate::args::{Command, Endpoint, HiArgs, Output, Statements, Transfer};
use crate::conn::ServerSpec;
use crate::demo;
use crate::dest::{CutEnd, Dest, FileSink};
use crate::drive::{
    carry_sequences, check_counts, copy_options, dest_error, disagreement, drive, record_summary,
};
use crate::file_source::FileSource;
use crate::finish::{self, Atomic, Finish, finish};
use crate::limits;
use crate::plan::plan;
use crate::progress::Progress;
use crate::recover;
use crate::report::{self, DestinationReport, ErrorInfo, Exit, Fatal, RunReport, Status};
use crate::signals;
use crate::sql::Format;

/// Runs the validated command line; returns the exit status.
///
/// # Errors
/// What ends the run early ([`Fatal`] carries its exit status); a broken pipe on stdout.
pub(crate) fn run(args: HiArgs) -> anyhow::Result<Exit> {
    report::set_verbose(args.output.verbose);
    match &args.command {
        Command::Transfer(t) => {
            let send = match &t.statements {
                Statements::Raw { send, .. } => send.as_deref(),
                _ => None,
            };
            if let Some(rep) = send.and_then(copyman_core::statement::representation)
                && let ("csv", &[quote]) = (rep.format.as_str(), rep.quote.as_bytes())
            {
                crate::dest::stdout_quotes_with(quote);
            }
            report::set_source_endpoint(t.source.display());
            report::set_destination_endpoints(t.destinations.iter().map(|d| d.display()).collect());
            if !t.dry_run && t.destinations.iter().any(|d| matches!(d, Endpoint::Stdio)) {
                crate::dest::stdout_is_a_destination();
            }
        }
        Command::Job(job) => report::set_source_endpoint(job.source.display.clone()),
        _ => {}
    }
    match args.command {
        Command::Transfer(t) if t.dry_run => {
            // A signal while it connects is said, with --json's document, as a run's is (it
            // ended silently, exit 143: conn66 F3).
            if let Err(e) = signals::install() {
                report::warn(format_args!("cannot handle signals: {e}"));
            }
            signals::set_json(args.output.json);
            let planned = crate::plan::dry_run(&t, args.output)?;
            crate::dest::mark_dry_run_stdout();
            Ok(planned)
        }
        Command::Transfer(t) => {
            if let Err(e) = signals::install() {
                report::warn(format_args!("cannot handle signals: {e}"));
            }
            signals::set_json(args.output.json);
            let mut report = transfer(&t, args.output)?;
            crate::plan::hint_forced_binary(&t, &mut report);
            // The exit status stands whoever reads the report: a reader gone from stdout or
            // stderr (`… 2>&1 | head`) must not turn a failed run's status into 0 (main's quiet
            // exit on a broken pipe).
            if args.output.json {
                let _ = report::print_json(&report.to_json());
            }
            let mut said = Vec::new();
            if !args.output.quiet {
                report.write_human(&mut said)?;
            } else {
                report.write_errors(&mut said)?;
            }
            crate::progress::eprint(&String::from_utf8_lossy(&said));
            Ok(report.exit())
        }
        Command::Recover {
            destinations,
            decision_log,
            dry_run,
            no_decision_log,
        } => recover::run(
            &destinations,
            &decision_log,
            dry_run,
            no_decision_log,
            args.output,
        ),
        Command::Demo { rows, destinations } => demo::run(rows, destinations, args.output),
        Command::Job(job) => crate::job::run(&job, args.output),
    }
}

/// Runs a `table` or `copy` transfer to its end and reports how it went.
///
/// # Errors
/// [`Fatal`] for what ends the run before any copying (connections: exit 3; an unreadable
/// source); a broken pipe on stdout when it was the only destination.
pub(crate) fn transfer(t: &Transfer, output: Output) -> anyhow::Result<RunReport> {
    let started = Instant::now();
    let started_at = std::time::SystemTime::now();
    // What a real run would find about its files only once it opens them (a missing or
    // unwritable directory), found before any server is asked anything, as --dry-run finds it:
    // refused (exit 2), or under --keep-going that destination dropped.
    crate::dest::refuse_same_file(&t.source, &t.destinations)?;
    let unopenable = crate::dest::refuse_unopenable(&t.destinations, t.keep_going)?;
    // A compressed source file (stdin and FIFOs: on their first read, in `check_start`).
    crate::file_source::refuse_compressed(t).map_err(Fatal::of_source)?;
    // A signal while connecting exits at once: nothing began anywhere.
    signals::connecting(true);
    // Before the run's own sessions: the source's database asked how it reads the user's text.
    let refused = crate::users_sql::refuse_text_read_otherwise(t);
    if refused.is_err() {
        signals::connecting(false);
    }
    let unasked = refused?;
    let connected = connect_all(t);
    signals::connecting(false);
    let (mut source_conn, mut dests) = connected?;
    let user_sql = crate::users_sql::read_users_sql(t, source_conn.as_mut())?;
    for (i, message) in unopenable.into_iter().chain(unasked) {
        report::log(format_args!("destination {}: {message}", i + 1));
        dests[i].fail_with(ErrorInfo {
            sqlstate: None,
            message,
        });
    }
    // Duplicates refused, limits set, lock waits and signals watched until the run ends.
    let watch = limits::prepare(t, source_conn.as_mut(), &mut dests, output.quiet)?;
    let mut file_source = match &t.source {
        Endpoint::Stdio | Endpoint::File(_) => Some(FileSource::open(t, output.quiet)?),
        Endpoint::Server(_) => None,
    };

    let mut plan = match plan(t, source_conn.as_mut(), &mut dests) {
        Ok(plan) => plan,
        Err(e) => {
            // A session given up while planning (a stall: its backend frozen, its path lost)
            // may stay on its server, holding what its question locked: ended there, or the
            // statement that ends it said (recheck70 F12: not a word, its lock held).
            let given_up =
                |conn: Option<&Connection>| conn.is_some_and(|c| c.is_closed() || !c.is_ready());
            let closed: Vec<Option<usize>> = (dests.iter().enumerate())
                .filter(|(_, d)| {
                    matches!(d.endpoint, Endpoint::Server(_)) && given_up(d.conn.as_ref())
                })
                .map(|(i, _)| Some(i))
                .chain(given_up(source_conn.as_ref()).then_some(None))
                .collect();
            if !closed.is_empty() {
                for (endpoint, words) in watch.end_orphans(&closed) {
                    match endpoint {
                        Some(i) => report::warn(format_args!(
                            "destination {} ({}): {words}",
                            i + 1,
                            dests[i].endpoint.display()
                        )),
                        None => report::warn(format_args!("source: {words}")),
                    }
                }
            }
            return Err(e);
        }
    };
    crate::plan::refuse_rows_of_jobs(t, &plan, source_conn.as_mut(), &mut dests)?;
    // The input's start, read once the plan stands (a missing table is said without waiting
    // for stdin) and before anything is sent: its format, a byte order mark, a header. A PGCOPY
    // file without a format is planned again, as binary.
    // (Its signature read here: a pipe's or a FIFO's binary data went to a terminal, only a
    // regular file's start being read ahead, recheck48a F2.)
    let mut signed = false;
    if let Some(source) = file_source.as_mut() {
        let start =
            crate::file_source::check_start(t, source, &mut plan, source_conn.as_mut(), &mut dests)
                .map_err(|e| match e.downcast::<Fatal>() {
                    Ok(fatal) => fatal.of_source().into(),
                    Err(e) => e,
                })?;
        signed = start.binary;
    }
    for (((dest, receive), truncate), guard) in dests
        .iter_mut()
        .zip(&plan.receive)
        .zip(&plan.truncate)
        .zip(&plan.guards)
    {
        dest.receive.clone_from(receive);
        dest.truncate.clone_from(truncate);
        dest.guard.clone_from(guard);
    }
    if let Some(send) = &plan.send {
        report::log(format_args!("source: {send}"));
    }

    // The source reads inside a transaction too: a snapshot for the table, and for a user's
    // statement (which may change data: `COPY (DELETE … RETURNING …) TO STDOUT`) a transaction
    // that commits only after every destination committed.
    finish::test_pause("planned");
    let source_begin = source_begin(&t.statements, plan.measure.is_some());
    // A table its role may not lock before the snapshot: its files, before it.
    let files_before = match (&plan.source_files, source_conn.as_mut()) {
        (Some(table), Some(conn)) => Some(copyman_job::identity::table_files(conn, table)),
        _ => None,
    };
    if let Some(conn) = source_conn.as_mut() {
        report::log(format_args!("source: {source_begin}"));
        conn.execute(source_begin).map_err(|e| source_fatal(&e))?;
        for sql in std::iter::once(crate::conn::SOURCE_DATESTYLE)
            .chain(user_sql.set_local.iter().map(String::as_str))
        {
            report::log(format_args!("source: {sql}"));
            conn.execute(sql).map_err(|e| source_fatal(&e))?;
        }
        if plan.pinned_search_path {
            conn.execute(crate::sql::PIN_SEARCH_PATH)
                .map_err(|e| source_fatal(&e))?;
        }
        if let Some(guard) = &plan.source_guard {
            conn.execute(guard).map_err(|e| source_fatal(&e))?;
        }
        // Measured again in the snapshot the COPY reads (the plan's was another's).
        if let Some(measure) = &plan.measure {
            measure.again(conn).map_err(|message| Fatal {
                exit: Exit::Usage,
                server: None,
                message,
            })?;
        }
    }
    // Before an --atomic run records its start.
    limits::refuse_lossy_between(
        source_conn.as_mut(),
        &mut dests,
        plan.send.as_deref(),
        &plan.receive,
    )?;
    report::set_atomic(t.atomic.is_some());
    let atomic = match &t.atomic {
        Some(log) => Some(Atomic::prepare(
            log,
            &mut dests,
            source_conn
                .as_mut()
                .filter(|_| matches!(t.statements, Statements::Raw { .. })),
            t.keep_going,
        )?),
        None => None,
    };

    limits::pass_and_warn(t, source_conn.as_mut(), &mut dests, &plan)?;
    refuse_binary_to_terminal(t, &plan, &dests, signed)?;

    // Open files and transactions, the servers' in the order of what each is, not of `--to`:
    // two runs that empty one table on the same servers, given them in another order, then
    // wait for each other on the first server, rather than each hold one and wait on the other
    // (a deadlock across servers that neither server sees).
    let mut order: Vec<usize> = (0..dests.len()).collect();
    order.sort_by(|a, b| dests[*a].identity.cmp(&dests[*b].identity).then(a.cmp(b)));
    let mut begun = 0;
    finish::test_pause("begun:0");
    for i in order {
        let dest = &mut dests[i];
        match dest.endpoint {
            // Left out before connecting (--keep-going): nothing to begin.
            Endpoint::Server(_) if dest.conn.is_none() => {}
            Endpoint::Server(_) => {
                report::log(format_args!(
                    "destination {}: BEGIN{}; {}",
                    i + 1,
                    dest.truncate
                        .as_deref()
                        .map(|sql| format!("; {sql}"))
                        .unwrap_or_default(),
                    dest.receive.as_deref().unwrap_or_default()
                ));
                if let Err(e) = dest.begin() {
                    dest.fail_begun(&e);
                    dest.give_up_stalled(&e);
                }
                begun += 1;
                finish::test_pause(&format!("begun:{begun}"));
            }
            // Dropped before connecting (--keep-going): not opened.
            Endpoint::File(_) if dest.error.is_some() => {}
            Endpoint::Stdio | Endpoint::File(_) => {
                match FileSink::open(dest.endpoint, output.quiet, t.safety.stall_timeout) {
                    Ok(mut sink) => {
                        // What goes out: a source server's, or a file's as it is read.
                        let sent = (plan.data.as_deref())
                            .and_then(copyman_core::statement::representation);
                        let name = match dest.endpoint {
                            Endpoint::Stdio => "stdout".to_owned(),
                            other => other.display(),
                        };
                        // A file or stdin passed through with no statement: text or CSV, which
                        // the run cannot tell (recheck70 F7).
                        let unknown = !t.source.is_server()
                            && matches!(t.statements, Statements::Raw { send: None, .. })
                            && plan.receive.iter().all(Option::is_none)
                            && sent.as_ref().is_some_and(|r| r.format == "text");
                        let cut = match unknown {
                            true => Some(crate::dest::Cut::either()),
                            false => sent.as_ref().and_then(crate::dest::Cut::of),
                        };
                        sink.mark_cuts(cut, &name);
                        dest.sink = Some(sink);
                    }
                    Err(e) => dest.fail_with(ErrorInfo {
                        sqlstate: None,
                        message: format!("cannot write {}: {e}", dest.endpoint.display()),
                    }),
                }
            }
        }
    }

    let mut run_error: Option<String> = None;
    // The source's error, when it is why the run failed (--json's `source.error`).
    let mut source_error: Option<ErrorInfo> = None;
    let mut source_failed = |error: ErrorInfo| {
        let said = format!("source: {error}");
        source_error = Some(error);
        said
    };
    if !t.keep_going && dests.iter().any(|d| d.error.is_some()) {
        run_error = Some("a destination could not begin the copy".to_owned());
    }
    if dests.iter().any(|d| matches!(d.endpoint, Endpoint::Stdio)) {
        crate::progress::data_on_stdout();
    }
    if matches!(t.source, Endpoint::Stdio) {
        crate::progress::data_from_stdin();
    }
    let mut progress = Progress::start(
        output.quiet,
        output.progress,
        plan.estimate,
        source_conn.is_some(),
        dests.len(),
    )
    .counting(plan.format.filter(|_| source_conn.is_some()));
    let mut bytes = 0;
    let mut source_rows = None;

    while run_error.is_none() {
        if let Some(signal) = signals::received() {
            run_error = Some(format!("interrupted by {}", signals::name(signal)));
            break;
        }
        let live: Vec<usize> = (0..dests.len())
            .filter(|&i| dests[i].error.is_none())
            .collect();
        if live.is_empty() {
            let failed: Vec<(usize, Option<ErrorInfo>)> = (dests.iter().enumerate())
                .map(|(d, dest)| (d, dest.error.clone()))
                .collect();
            run_error = Some(report::every_destination_failed(&failed));
            break;
        }
        let source_name = file_source.as_ref().map(|s| s.name().to_owned());
        let driven = {
            let producer: Box<dyn Producer + '_> =
                match (source_conn.as_mut(), file_source.as_mut()) {
                    (Some(conn), _) => Box::new(StatementProducer::new(
                        conn,
                        plan.send.clone().unwrap_or_default(),
                    )),
                    (None, Some(source)) => Box::new(source.producer()),
                    (None, None) => unreachable!("a source is a server or a file"),
                };
            let receivers: Vec<Box<dyn Receiver + '_>> = dests
                .iter_mut()
                .filter(|d| d.error.is_none())
                .map(|d| d.receiver())
                .collect();
            // `--allow-count-mismatch`: the manager does not compare the counts; `check_counts`
            // below warns about them instead.
            let options = copy_options(
                t.keep_going,
                !t.safety.allow_count_mismatch,
                t.safety.stall_timeout,
            );
            drive(
                producer,
                receivers,
                &live,
                options,
                source_name,
                &mut progress,
            )
        };
        bytes = driven.bytes;
        for (i, error, at) in &driven.faults {
            progress.destination_failed(*i);
            dests[*i].fail(error);
            // Its time is its failure's, not the run's end's (progress45 F6.2).
            dests[*i].ended.get_or_insert(*at);
        }
        match driven.result {
            Ok(summary) => {
                source_rows = summary.producer_count;
                record_summary(&summary, &live, &mut dests);
                signals::copied(
                    source_rows,
                    (dests.iter().enumerate()).filter_map(|(i, d)| Some((i, d.rows?))),
                );
                break;
            }
            Err(fail) if driven.start_failed => {
                let retry = t.keep_going
                    && fail.producer_fault.is_none()
                    && !fail.receiver_faults.is_empty();
                for (id, error) in &fail.receiver_faults {
                    progress.destination_failed(live[id.0]);
                    dests[live[id.0]].fail(error);
                }
                if let Some(error) = &fail.producer_fault {
                    run_error = Some(source_failed(report::describe(&**error)));
                } else if !retry {
                    // Which, and what its server said (it was "a destination could not start
                    // its COPY", where other failures head with theirs).
                    let first = fail.receiver_faults.first().map(|(id, error)| {
                        let i = live[id.0];
                        let said = report::describe(&**error);
                        format!(
                            "destination {} ({}) could not start its COPY: {said}",
                            i + 1,
                            dests[i].endpoint.display()
                        )
                    });
                    run_error =
                        Some(first.unwrap_or_else(|| {
                            "a destination could not start its COPY".to_owned()
                        }));
                } else {
                    // The COPYs that did start were failed: their transactions must start over.
                    if let Some(conn) = source_conn.as_mut() {
                        let restarted = conn
                            .execute("ROLLBACK")
                            .and_then(|_| conn.execute(source_begin));
                        if let Err(e) = restarted {
                            run_error = Some(source_failed(describe_sync(&e)));
                        }
                    }
                    for dest in dests.iter_mut().filter(|d| d.error.is_none()) {
                        if dest.conn.is_some() {
                            dest.rollback();
                            if let Err(e) = dest.begin() {
                                dest.fail_begun(&e);
                            }
                        }
                    }
                    report::log("restarting the copy without the destinations that failed");
                }
            }
            Err(fail) => {
                source_rows = fail.producer_count;
                for (id, error) in &fail.receiver_faults {
                    let dest = &mut dests[live[id.0]];
                    match dest_error(error, *id) {
                        Some(info) => dest.fail_with(info),
                        None => dest.fail(error),
                    }
                }
                // A signal's cancel may reach a busy destination before the loop sees the
                // signal: the run was interrupted, not failed there (its 57014 was copyman's).
                let interrupted = driven.aborted.clone().or_else(|| {
                    signals::received()
                        .map(|signal| format!("interrupted by {}", signals::name(signal)))
                });
                run_error = Some(match (&interrupted, &fail.producer_fault) {
                    (Some(reason), _) if signals::received().is_some() => reason.clone(),
                    (_, Some(error)) => source_failed(report::describe(&**error)),
                    (Some(reason), None) => reason.clone(),
                    (None, None) => disagreement(&fail, &live, &dests).unwrap_or_else(|| {
                        // In the command's words (the library's are "no receivers", or "could
                        // not complete the COPY operation", by when they failed): the
                        // destinations that failed, and the one's error (a duplicate key met
                        // at the end of its COPY read as a protocol fault).
                        let failed: Vec<(usize, Option<ErrorInfo>)> = live
                            .iter()
                            .filter_map(|&d| Some((d, Some(dests[d].error.clone()?))))
                            .collect();
                        match failed.len() {
                            n if n == live.len() => report::every_destination_failed(&failed),
                            0 => fail.reason.clone(),
                            _ => report::destinations_failed(&failed),
                        }
                    }),
                });
                break;
            }
        }
    }
    progress.finish();
    if run_error.is_none() {
        run_error = check_counts(
            &mut dests,
            source_rows,
            source_conn.is_some(),
            t.safety.allow_count_mismatch,
        );
    }
    // A file or stdin that held no rows, under --truncate: every server destination's table
    // would be left empty (`gunzip -c missing.gz | copyman … --from - --truncate`: the failed
    // upstream gave an empty input, and the table was emptied, exit 0). A source server's
    // empty table is its own.
    let servers = || {
        dests
            .iter()
            .filter(|d| d.conn.is_some() && d.error.is_none())
    };
    if run_error.is_none()
        && matches!(t.statements, Statements::Table { truncate: true, .. })
        && source_conn.is_none()
        && servers().next().is_some()
        && servers().all(|d| d.rows == Some(0))
    {
        run_error = Some(
            "the input held no rows: --truncate would leave the table empty on every \
             destination (a command that failed upstream gives an empty input); to empty \
             the table, TRUNCATE it"
                .to_owned(),
        );
    }
    // A file or stdin that held nothing (or no row: a header) would replace a file destination
    // that holds more by an empty one, as --truncate a table (files67 F20: `producer | copyman
    // --from - --to latest.csv` lost the last good file when the producer failed, exit 0).
    let no_rows = source_rows == Some(0);
    if run_error.is_none()
        && source_conn.is_none()
        && let Some((path, size)) = (dests.iter())
            .filter(|d| d.error.is_none())
            .find_map(|d| d.sink.as_ref()?.empties(no_rows))
    {
        run_error = Some(format!(
            "the input held no {}: {} ({}) would be replaced by {} (a command that failed \
             upstream gives an empty input); it is kept; to empty it, : > FILE",
            if no_rows { "rows" } else { "data" },
            crate::conn::redact(&path.to_string_lossy()),
            indicatif::HumanBytes(size),
            if no_rows {
                "one without rows"
            } else {
                "an empty file"
            },
        ));
    }
    // File destinations write out what they buffered before anything commits: one that cannot
    // take it fails the copy, as a server destination's failure does.
    if run_error.is_none() {
        for (i, dest) in dests.iter_mut().enumerate() {
            if dest.seal().is_err() && !t.keep_going {
                run_error = Some(format!(
                    "destination {} ({}) could not be written to its end",
                    i + 1,
                    dest.endpoint.display()
                ));
            }
        }
    }
    // A table read without its lock: still the files it had before the snapshot (a TRUNCATE or
    // a rewrite that committed after it showed the snapshot an empty table, exit 0 with 0 rows).
    if run_error.is_none()
        && let (Some(before), Some(table), Some(conn)) =
            (&files_before, &plan.source_files, source_conn.as_mut())
        && copyman_job::identity::table_files(conn, table) != *before
    {
        run_error = Some(
            "source: the table was truncated or rewritten (TRUNCATE, ALTER TABLE, VACUUM FULL, \
             CLUSTER), or a partition of it attached or detached, while copyman read it, and its \
             role may not lock it first (SELECT on its columns only): what the copy read may be \
             none of its rows, or not its partitions' as its snapshot saw them; run it again \
             (SELECT on the table lets copyman lock it)"
                .to_owned(),
        );
    }
    // The sequences, where the copy goes on (a setval is not rolled back), while the stall
    // timeouts and the watch's cancels still stand: a setval that waits is said and given up.
    if run_error.is_none() {
        run_error = carry_sequences(
            &plan.sequences,
            source_conn.as_mut(),
            &mut dests,
            t.keep_going,
        )
        .map(|error| match signals::received() {
            Some(signal) => format!("interrupted by {}", signals::name(signal)),
            None => error,
        });
    }

    // A signal that came before aborts; from here on the commit goes on whatever comes, and a
    // signal says so (signals.rs).
    if run_error.is_none()
        && let Some(signal) = signals::commit_begins(atomic.is_some())
    {
        run_error = Some(format!("interrupted by {}", signals::name(signal)));
    }

    let stdout_only_broke = dests.len() == 1 && dests[0].broken_pipe;
    // A table is read `READ ONLY`; a user's statement may have written (`COPY (DELETE …)`): asked
    // now, before anything commits.
    let source_read_only = match (&t.statements, source_conn.as_mut()) {
        (Statements::Raw { .. }, Some(conn)) if run_error.is_none() => !finish::source_wrote(conn),
        // A file or stdin changes nothing anywhere (copy45 F1: taken for a --send that wrote,
        // a filtering --receive under --allow-count-mismatch always failed).
        (Statements::Raw { .. }, _) if !t.source.is_server() => true,
        (Statements::Raw { .. }, _) => false,
        (Statements::Table { .. }, _) => true,
    };
    // A --send that wrote (a move: its DELETE written out, or in a function) of whose rows no
    // destination stored all, under --allow-count-mismatch (a WHERE, a trigger that drops
    // rows): the rest would be taken from the source and stored nowhere, exit 0 (recheck44 F1).
    // Nothing commits. (One destination that stored them all holds every row.)
    let stored = (dests.iter().enumerate())
        .filter(|(_, d)| d.error.is_none())
        .filter_map(|(i, d)| Some((i, d.rows?)));
    if run_error.is_none()
        && !source_read_only
        && let Some(expected) = source_rows
        && let Some((i, rows)) = stored.max_by_key(|&(i, rows)| (rows, std::cmp::Reverse(i)))
        && rows < expected
    {
        run_error = Some(format!(
            "the --send's statement changed data on the source (its transaction wrote) and no \
             destination stored every row it sent (the most, destination {}: {} of the {}; \
             --allow-count-mismatch): the others would be changed or taken on the source and \
             stored nowhere; select in the --send only the rows the destinations store",
            i + 1,
            crate::progress::rows(rows),
            crate::progress::rows(expected)
        ));
    }
    limits::end_stall_timeouts(t, source_conn.as_mut(), source_read_only, &mut dests);
    watch.ending();
    let ended = finish(
        Finish {
            keep_going: t.keep_going,
            atomic,
            source: source_conn.as_mut(),
            source_spec: match &t.source {
                Endpoint::Server(spec) => Some(spec),
                _ => None,
            },
            source_read_only,
            copy_failed: run_error.is_some(),
        },
        &mut dests,
    );
    // The sessions copyman closed with their statement under way (a stall, no byte after an
    // interrupt): ended on their servers, which may not have heard (conn68 F2).
    let closed_source = (source_conn.as_ref())
        .is_some_and(|c| c.is_closed() && c.session().ending_notice().is_none());
    let closed: Vec<Option<usize>> = (dests.iter().enumerate())
        .filter(|(_, d)| {
            matches!(d.endpoint, Endpoint::Server(_))
                && d.error.as_ref().is_some_and(|e| {
                    !copyman_job::commit::ended_by_its_server(e.sqlstate.as_deref())
                })
                // (Not one whose server said it ends it: an immediate shutdown's WARNING.)
                && (d.conn.as_ref())
                    .is_none_or(|c| c.is_closed() && c.session().ending_notice().is_none())
        })
        .map(|(i, _)| Some(i))
        .chain(closed_source.then_some(None))
        .collect();
    if !closed.is_empty() {
        for (endpoint, words) in watch.end_orphans(&closed) {
            match endpoint.and_then(|i| dests[i].error.as_mut()) {
                Some(error) => error.message = format!("{}; {words}", error.message),
                None => report::warn(format_args!("source: {words}")),
            }
        }
    }
    if run_error.is_none() {
        run_error = ended
            .record_error
            .as_ref()
            .map(|e| e.to_string())
            .or_else(|| finish::source_error(ended.source.as_ref()));
        // The source's error where its check or commit is why (`--json`'s `server`, `sqlstate`:
        // they were null for its 23503).
        use copyman_core::commit::SourceOutcome;
        if let (
            None,
            Some(
                SourceOutcome::CheckFailed(e)
                | SourceOutcome::CommitFailed(e)
                | SourceOutcome::InDoubt(e),
            ),
        ) = (&ended.record_error, &ended.source)
        {
            source_error.get_or_insert_with(|| e.clone());
        }
    }
    // A --send statement that wrote: what became of its changes, said when some destination
    // committed and they did not (under --keep-going the source commits only if every
    // destination did: its rows are then in both places).
    let source_transaction = match (&ended.source, source_read_only) {
        (_, true) | (None, _) => None,
        (Some(outcome), false) => Some(finish::source_outcome_name(outcome)),
    };
    if source_transaction == Some("rolled back")
        && ended
            .destinations
            .iter()
            .any(|d| matches!(d, Outcome::Committed))
    {
        report::warn(
            "the source's --send statement's changes were rolled back, since not every \
             destination committed: the source is as it was (the rows a DELETE … RETURNING \
             moved are still there), and the destinations that committed hold the rows it sent \
             too — both places now",
        );
    }
    let interrupted = signals::received().is_some();
    let reports: Vec<DestinationReport> = dests
        .iter_mut()
        .zip(&ended.destinations)
        .map(|(dest, outcome)| {
            // Its statement cancelled by copyman on the signal (57014: a lock wait, a slow
            // deferred check), or its commit called off by it before its COMMIT was sent.
            let called_off =
                |e: &ErrorInfo| e.sqlstate.as_deref() == Some("57014") || finish::is_called_off(e);
            let cancelled = interrupted
                && (dest.error.as_ref().is_some_and(called_off)
                    || matches!(outcome, Outcome::Failed(Some(e)) if called_off(e)));
            let mut status = match outcome {
                Outcome::Committed => Status::Committed,
                Outcome::RolledBack => Status::RolledBack,
                Outcome::InDoubt(_) => Status::InDoubt,
                // Gone by its COMMIT PREPARED (42704): another session ended it, either way;
                // nothing is left for recover, and whether it committed is unknown.
                Outcome::CommitPending { error, sent, .. }
                    if *sent || error.sqlstate.as_deref() == Some("42704") =>
                {
                    Status::InDoubt
                }
                Outcome::CommitPending { .. } => Status::CommitPending,
                Outcome::RollbackPending { .. } => Status::RollbackPending,
                // Its statement cancelled or its commit called off by copyman on a signal:
                // rolled back, as one interrupted mid-data, not a failure of its own.
                _ if cancelled => Status::RolledBack,
                _ => Status::Failed,
            };
            if let Some(mut error) = finish::outcome_error(outcome) {
                // Its copy completed and the end of its transaction failed (a deferred check,
                // a serialization failure at COMMIT): said so, not read as the COPY's failure.
                if dest.error.is_none()
                    && dest.rows.is_some()
                    && matches!(outcome, Outcome::Failed(_))
                    && !error.message.starts_with(copyman_job::commit::EMPTIED)
                {
                    error.message = format!("its transaction did not commit: {}", error.message);
                }
                dest.fail_with(error);
            }
            if cancelled {
                dest.error = None;
            }
            // Nothing went out before the failure but the mark of it: said, as a reader of it
            // fails on it.
            if status != Status::Committed
                && dest.sent_anyway == 0
                && let Some(end) = &dest.marked_cut
            {
                let said = match end {
                    CutEnd::Marked(fails) => format!(
                        "no data went out before the run failed, only a mark that fails a COPY \
                         reading it ({fails}), so that an empty stream is not taken for an empty \
                         table"
                    ),
                    CutEnd::Unmarked => "no data went out before the run failed, and its reader \
                         never took the mark that fails a COPY reading it: an empty stream may \
                         be taken for an empty table"
                        .to_owned(),
                };
                match &mut dest.error {
                    Some(error) => error.message.push_str(&format!(" ({said})")),
                    None => dest.fail_with(ErrorInfo {
                        sqlstate: None,
                        message: said,
                    }),
                }
            }
            // Stdout (or a pipe) has no rollback: what went out before the failure is out.
            if status != Status::Committed && dest.sent_anyway > 0 {
                status = Status::Sent;
                let sent = indicatif::HumanBytes(dest.sent_anyway);
                dest.error = Some(ErrorInfo {
                    sqlstate: None,
                    message: match dest.error.take() {
                        // Said for what it is, not as the bare "Broken pipe" of the write.
                        _ if dest.broken_pipe => broken_pipe(dest.endpoint, dest.sent_anyway),
                        // Its own failure (a full disk): with how much went out before it
                        // (files42 F3: the OS error alone).
                        Some(own) => format!(
                            "{sent} went out before it failed ({}) and cannot be taken back: \
                             discard it",
                            own.message
                        ),
                        None => format!(
                            "{sent} went out before the run failed and cannot be taken back: \
                             discard it"
                        ),
                    },
                });
                // Its end marked, so that a COPY reading it fails rather than load a part; or
                // said plainly that it is not.
                match (&dest.marked_cut, &mut dest.error) {
                    (Some(CutEnd::Marked(fails)), Some(error)) => error.message.push_str(&format!(
                        " (its end is marked: a COPY reading it fails, {fails})"
                    )),
                    (Some(CutEnd::Unmarked), Some(error)) => error.message.push_str(
                        " (its end is NOT marked: its reader never took the mark, so a COPY \
                         reading it may load the rows before the cut as the whole, a cut-short \
                         last row among them)",
                    ),
                    _ => {}
                }
            }
            // A file took every row the source sent (it has no `COPY n` of its own).
            let rows = match (&dest.conn, status) {
                (None, Status::Committed) => dest.rows.or(source_rows),
                _ => dest.rows,
            };
            DestinationReport {
                endpoint: dest.endpoint.display(),
                reached: dest.endpoint.reached(),
                status,
                rows,
                error: dest.error.clone(),
                statement: dest.receive.clone(),
                duration: dest.ended.map(|at| at.duration_since(started)),
                warning: dest.warning.clone(),
            }
        })
        .collect();
    let notices = report::take_notices(
        source_conn.as_mut(),
        dests.iter_mut().map(|d| d.conn.as_mut()),
    );
    // A signal in the commit phase is the run's error, as one mid-data is (`--json`'s `error`
    // was null there, "interrupted by SIGTERM" before, for one outcome).
    let run_error = run_error.or_else(|| {
        let signal = signals::received()?;
        reports
            .iter()
            .any(|r| r.status != Status::Committed)
            .then(|| format!("interrupted by {}", signals::name(signal)))
    });
    if stdout_only_broke {
        // The reader of our stdout went away before the end (`copyman … --to - | head`, a
        // `gzip` that died): it got part of the data, so the copy did not complete — a failure,
        // as pg_dump's, so that `set -o pipefail` and scripts see it (the source rolled back:
        // a `--send` moving rows out, `DELETE … RETURNING`, is told they are still there).
        let reads = |send: &str| {
            let Some(query) = copyman_core::statement::copy_query(send) else {
                return true; // a table's
            };
            let first = query
                .trim_start()
                .split(|c: char| !c.is_ascii_alphabetic())
                .next();
            first.is_some_and(|w| ["select", "values", "table"].contains(&&*w.to_lowercase()))
        };
        let kept = match (&t.statements, source_transaction) {
            (
                Statements::Raw {
                    send: Some(send), ..
                },
                Some("rolled back") | None,
            ) if !reads(send) => {
                "; the source's transaction rolled back: what its --send would have changed (the \
                 rows of a DELETE … RETURNING) is as it was"
            }
            _ => "",
        };
        return Err(Fatal {
            exit: Exit::CopyFailed,
            server: None,
            message: format!(
                "--to {}: {}{kept}",
                dests[0].endpoint.display(),
                broken_pipe(dests[0].endpoint, dests[0].sent_anyway)
            ),
        }
        .into());
    }
    Ok(RunReport {
        command: match &t.statements {
            Statements::Table { .. } => "table",
            Statements::Raw { .. } => "copy",
        },
        // Quoted and schema-qualified as a job's tables are (enc45 F8: `a.b` said both
        // "a"."b" and "public"."a.b").
        table: plan.table.as_ref().map(ToString::to_string),
        // What was written, where it was named otherwise (recheck45 F4.1).
        target_table: target_table(t),
        statement: plan.send.clone(),
        started_at,
        source: t.source.display(),
        source_reached: t.source.reached(),
        truncated: matches!(t.statements, Statements::Table { truncate: true, .. }),
        // A copy mode's statements' own, as its dry run says it (copy44 F9.4: null).
        format: crate::plan::format_said(t, &plan).map(|(format, _)| format),
        source_rows,
        source_transaction,
        bytes,
        duration: started.elapsed(),
        destinations: reports,
        error: run_error,
        source_error,
        notices,
    })
}

/// What a destination whose pipe's reader went away (`| head`, a `gzip` that died) is said to
/// have done: it got `sent`, so the copy did not complete there.
fn broken_pipe(endpoint: &Endpoint, sent: u64) -> String {
    let whose = match endpoint {
        Endpoint::Stdio => "stdout's reader",
        _ => "its reader",
    };
    format!(
        "{whose} went away after {} (broken pipe): the copy did not complete",
        indicatif::HumanBytes(sent)
    )
}

/// How the source's transaction begins: a snapshot for a table, read only; for a user's
/// statement (which may change data: `COPY (DELETE … RETURNING …) TO STDOUT`) a transaction
/// that commits only after every destination committed — one snapshot for it too where its
/// values are `measured` before it (a statement that reads: [`copyman_job::plan::Measure`]).
pub(crate) fn source_begin(statements: &Statements, measured: bool) -> &'static str {
    match statements {
        Statements::Table { .. } => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        Statements::Raw { .. } if measured => "BEGIN ISOLATION LEVEL REPEATABLE READ",
        Statements::Raw { .. } => "BEGIN",
    }
}

/// Connects the source (if a server) and every server destination, or ends the run with exit 3.
pub(crate) fn connect_all(t: &Transfer) -> anyhow::Result<(Option<Connection>, Vec<Dest<'_>>)> {
    let mut warned = BTreeSet::new();
    let source_conn = match &t.source {
        Endpoint::Server(spec) => Some(connect(spec, "source", &mut warned)?),
        _ => None,
    };
    let mut dests: Vec<Dest<'_>> = t.destinations.iter().map(Dest::new).collect();
    let mut unreachable = Vec::new();
    for (i, dest) in dests.iter_mut().enumerate() {
        if let Endpoint::Server(spec) = dest.endpoint {
            match try_connect(spec, &format!("destination {}", i + 1), &mut warned) {
                Ok(conn) => dest.conn = Some(conn),
                // Under --keep-going a destination that cannot be reached is left out (failed,
                // said, its SQLSTATE kept for --json) and the others are copied to, as a job
                // does; when none is left, each one's error is the run's.
                Err(e) if t.keep_going => {
                    report::warn(format_args!("{e}; left out (--keep-going)"));
                    unreachable.push(e.to_string());
                    dest.fail_with(ErrorInfo {
                        sqlstate: e.error.sqlstate,
                        message: format!(
                            "cannot connect to {} {}: {}",
                            e.role, e.endpoint, e.error.message
                        ),
                    });
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    if !unreachable.is_empty() && dests.iter().all(|d| d.error.is_some()) {
        return Err(Fatal {
            exit: Exit::Connect,
            server: None,
            message: unreachable.join("; "),
        }
        .into());
    }
    Ok((source_conn, dests))
}

/// A server that could not be reached: who it was and what was said.
#[derive(Debug)]
pub(crate) struct Unreachable {
    /// "source" or "destination N": `--json`'s `server`.
    pub(crate) role: String,
    /// The server as it was given (no password): `--json`'s `endpoint`.
    pub(crate) endpoint: String,
    /// The error, with the server's SQLSTATE when it spoke (authentication, a missing database).
    pub(crate) error: ErrorInfo,
}

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cannot connect to {} {}: {}",
            self.role, self.endpoint, self.error
        )
    }
}

/// Ends the run with exit 3; its `--json` document names the server and its SQLSTATE.
impl std::error::Error for Unreachable {}

/// Connects, or ends the run with exit 3.
pub(crate) fn connect(
    spec: &ServerSpec,
    role: &str,
    warned: &mut BTreeSet<String>,
) -> anyhow::Result<Connection> {
    Ok(try_connect(spec, role, warned)?)
}

/// Connects, saying first the warnings of its connection string not said yet.
fn try_connect(
    spec: &ServerSpec,
    role: &str,
    warned: &mut BTreeSet<String>,
) -> Result<Connection, Unreachable> {
    for warning in &spec.warnings {
        if warned.insert(warning.clone()) {
            report::warn(warning);
        }
    }
    report::log(format_args!("connecting to {role} {}", spec.display));
    signals::connecting_to(role, &spec.display);
    let conn = spec.connect().map_err(|e| {
        let mut error = describe_sync(&e);
        error.message.push_str(connect_hint(&e));
        Unreachable {
            role: role.to_owned(),
            endpoint: spec.display.clone(),
            error,
        }
    })?;
    report::log(format_args!(
        "connected to {role} {} (PostgreSQL {})",
        spec.display,
        conn.session().parameter("server_version").unwrap_or("?")
    ));
    Ok(conn)
}

/// libpq's question after a connection refused (nothing listens there) or a socket that is not
/// there, as psql asks it: what a DBA looks at first (ux70 F5). Empty for other failures, and
/// for several attempts (each its own).
fn connect_hint(error: &copyman_sync::Error) -> &'static str {
    use std::io::ErrorKind;
    let copyman_sync::Error::Connect { target, source } = error else {
        return "";
    };
    let socket = target.starts_with('/') || target.starts_with('@');
    match (socket, source.kind()) {
        (false, ErrorKind::ConnectionRefused) => {
            " (is the server running on that host and accepting TCP/IP connections?)"
        }
        (true, ErrorKind::ConnectionRefused | ErrorKind::NotFound) => {
            " (is the server running locally and accepting connections on that socket?)"
        }
        _ => "",
    }
}

/// The source failed before the copy: the run ends (exit 1) with its error, said and in
/// `--json` (`server`, `sqlstate`).
pub(crate) fn source_fatal(error: &copyman_sync::Error) -> Fatal {
    let error = describe_sync(error);
    Fatal {
        exit: Exit::CopyFailed,
        message: format!("source: {error}"),
        server: Some(("source".to_owned(), error)),
    }
}

pub(crate) fn describe_sync(error: &copyman_sync::Error) -> ErrorInfo {
    report::describe(error)
}

/// Binary COPY data is not written to a terminal (as gzip refuses to write compressed data
/// to one): it is unreadable there and its bytes may drive the terminal. Refused before any
/// destination begins (exit 2), with what works. `signed`: the input's start, read, is the
/// PGCOPY signature.
fn refuse_binary_to_terminal(
    t: &Transfer,
    plan: &crate::plan::Plan,
    dests: &[Dest<'_>],
    signed: bool,
) -> Result<(), Fatal> {
    use std::io::IsTerminal;
    // A table's format is the plan's; a --send's, its statement's; a file's, its signature's
    // (files48 F2: a binary file's copy to `-` went to the terminal).
    let binary = plan.format == Some(Format::Binary)
        || (plan.send.as_deref())
            .and_then(copyman_core::statement::representation)
            .is_some_and(|r| r.format == "binary")
        || signed
        || (matches!(t.source, Endpoint::File(_)) && crate::plan::input_is_binary(t));
    // `-`, and a file that names a terminal (`/dev/stdout`, `/dev/fd/2`, `/dev/tty`).
    let terminal = dests.iter().find_map(|d| match &d.endpoint {
        Endpoint::Stdio => std::io::stdout().is_terminal().then(|| "-".to_owned()),
        Endpoint::File(path) => crate::dest::is_terminal(path).then(|| path.display().to_string()),
        Endpoint::Server(_) => None,
    });
    match terminal {
        Some(name) if binary => {
            // (Copy mode has no --format; a binary file stays binary: recheck48a F2.)
            let in_text = match &t.statements {
                Statements::Table { .. } => " (or copy in text: --format text or csv)",
                Statements::Raw { send: Some(_), .. } => {
                    " (or copy in text: FORMAT text or csv in the --send)"
                }
                Statements::Raw { send: None, .. } => "",
            };
            Err(Fatal {
                exit: Exit::Usage,
                server: None,
                message: format!(
                    "--to {name}: binary COPY data is not written to a terminal: give --to \
                     FILE, or --to - with stdout redirected to a file or a pipe{in_text}"
                ),
            })
        }
        _ => Ok(()),
    }
}

/// The destinations' table `--target-table` named, quoted (`--json`'s `target_table`).
pub(crate) fn target_table(t: &Transfer) -> Option<String> {
    match &t.statements {
        Statements::Table { copy, .. } => copy.target.as_ref().map(ToString::to_string),
        Statements::Raw { .. } => None,
    }
}
