//! `--json` is one well-formed document for every outcome: success, failure, a connection that
//! fails, a usage error — with the command, the table, the statements, timestamps and each
//! destination's duration and rows (files included).

use crate::common;

use common::*;

#[test]
fn a_successful_run_says_everything() {
    let c = clusters();
    let src = database(&c.source, &format!("{ITEMS} {FILL_ITEMS}"));
    let d1 = database(&c.dest[0], ITEMS);
    let file = TempPath::new("items.txt");
    let out = run(&[
        "table",
        "items",
        "--from",
        &c.source.url(&src),
        "--to",
        &c.dest[0].url(&d1),
        "--to",
        file.arg(),
        "--json",
    ]);
    assert_exit(&out, 0);
    let j = json(&out);
    assert_eq!(j["status"], "ok");
    assert_eq!(j["command"], "table");
    assert_eq!(
        j["table"], r#""public"."items""#,
        "as the source resolved it, quoted"
    );
    for key in ["started_at", "finished_at"] {
        let at = j[key].as_str().unwrap_or_else(|| panic!("{key}: {j}"));
        assert!(
            at.len() == 24 && at.ends_with('Z') && at.contains('T'),
            "{key}: {at}"
        );
    }
    assert!(j["finished_at"].as_str() >= j["started_at"].as_str());
    assert!(
        j["source"]["statement"]
            .as_str()
            .is_some_and(|s| s.starts_with("COPY ") && s.contains("TO STDOUT")),
        "{j}"
    );
    assert_eq!(
        j["source"]["endpoint"],
        format!("postgres@127.0.0.1:{}/{src}", c.source.port())
    );
    let server = &j["destinations"][0];
    assert!(
        server["statement"]
            .as_str()
            .is_some_and(|s| s.contains("FROM STDIN")),
        "{j}"
    );
    assert_eq!(server["rows"], 1000);
    // The file has no COPY n of its own: it holds every row the source sent.
    let file_dest = &j["destinations"][1];
    assert_eq!(file_dest["rows"], 1000, "{j}");
    assert!(file_dest["statement"].is_null());
    for d in j["destinations"].as_array().unwrap() {
        assert!(d["duration_secs"].as_f64().is_some_and(|s| s >= 0.0), "{d}");
    }
}

#[test]
fn early_failures_and_usage_errors_are_json_too() {
    // A usage error found by the parser.
    let out = run(&["table", "--json", "--no-such-flag"]);
    assert_exit(&out, 2);
    let j = json(&out);
    assert_eq!(j["status"], "failed");
    assert_eq!(j["exit_code"], 2);
    assert!(
        j["error"]
            .as_str()
            .is_some_and(|e| e.contains("--no-such-flag")),
        "{j}"
    );
    // Its command named (it was null where the parser refused it).
    assert_eq!(j["command"], "table", "{j}");
    // One whose words run over lines: all of them, on one (the missing argument was on stderr
    // only).
    let out = run(&["table", "a", "--from", "host=h", "--json"]);
    assert_exit(&out, 2);
    assert_eq!(
        json(&out)["error"],
        "the following required arguments were not provided: --to <CONN>"
    );
    // A usage error found when validating.
    let out = run(&[
        "table",
        "bad name!",
        "--from",
        "a.txt",
        "--to",
        "b.txt",
        "--json",
    ]);
    assert_exit(&out, 2);
    assert_eq!(json(&out)["exit_code"], 2);
    // A server that cannot be reached.
    let out = run(&[
        "table",
        "t",
        "--from",
        "host=127.0.0.1 port=1 user=u dbname=d connect_timeout=2",
        "--to",
        "x.txt",
        "--json",
    ]);
    assert_exit(&out, 3);
    let j = json(&out);
    assert_eq!(j["exit_code"], 3);
    assert_eq!(j["committed"], 0);
    assert!(j["finished_at"].is_string(), "{j}");
    assert_eq!(j["server"], "source", "{j}");
    assert_eq!(j["endpoint"], "u@127.0.0.1:1/d", "{j}");
    assert!(j["sqlstate"].is_null(), "{j}");
    // A job and recover that end before they begin: their own lists are there, empty, as the
    // one-table run's (a script reads one shape).
    let dead = "host=127.0.0.1 port=1 user=u dbname=d connect_timeout=2";
    for args in [
        vec!["table", "a", "b", "--from", dead, "--to", "x.txt", "--json"],
        vec![
            "recover",
            "--to",
            dead,
            "--decision-log",
            "/nonexistent/copyman.log",
            "--json",
        ],
        // (recover's stdout is never data: its document, not a mark — recheck68 F15.)
        vec!["recover", "--to", "-", "--json"],
    ] {
        let out = run(&args);
        let j = json(&out);
        assert!(j["exit_code"].as_i64().is_some_and(|c| c > 0), "{j}");
        for list in ["destinations", "tables", "prepared", "notes"] {
            assert_eq!(j[list], serde_json::json!([]), "{list} in {j}");
        }
        // And a job's totals, nothing (jobs67 F7: a refused job's lacked them).
        for total in ["rows", "committed_rows", "bytes"] {
            assert_eq!(j[total], 0, "{total} in {j}");
        }
        for unknown in ["source_rows", "state"] {
            assert!(
                j.get(unknown).is_some_and(|v| v.is_null()),
                "{unknown} in {j}"
            );
        }
    }
}

/// A server that answered and refused the connection: `--json` names it and carries its
/// SQLSTATE as a field (it was only in the free text), in one table's run and in a job alike.
#[test]
fn a_refused_connection_names_the_server_and_its_sqlstate() {
    let c = clusters();
    let scram = scram_cluster();
    let src = database(&c.source, "CREATE TABLE a (i int); CREATE TABLE b (i int);");
    let dst = database(scram, "CREATE TABLE a (i int); CREATE TABLE b (i int);");
    let to = format!(
        "host=127.0.0.1 port={} user=postgres password=wrong dbname={dst}",
        scram.port()
    );
    for tables in [&["a"][..], &["a", "b"]] {
        let mut args = vec!["table"];
        args.extend(tables);
        let from = c.source.conninfo(&src);
        args.extend(["--from", &from, "--to", &to, "--json"]);
        let out = run(&args);
        assert_exit(&out, 3);
        let j = json(&out);
        assert_eq!(j["sqlstate"], "28P01", "{tables:?}: {j}");
        // One form in one table's run and a job's: the server by its number, the endpoint as
        // it was given apart.
        assert_eq!(j["server"], "destination 1", "{tables:?}: {j}");
        assert!(
            j["endpoint"].as_str().is_some_and(|s| s.contains(&dst)),
            "{tables:?}: {j}"
        );
        assert!(!text(&out.stdout).contains(c.source.password()));
    }
    // A job refused once it knew its state file names it (jobs67 F7: only the text did).
    let state = TempPath::new("never-written.state");
    let from = c.source.conninfo(&src);
    let ok = c.dest[0].conninfo(&database(&c.dest[0], ""));
    let out = run(&[
        "table",
        "a",
        "b",
        "--from",
        &from,
        "--to",
        &ok,
        "--state",
        state.arg(),
        "--resume",
        "--json",
    ]);
    assert_exit(&out, 2);
    let j = json(&out);
    assert_eq!(j["state"], state.arg(), "{j}");
    assert_eq!(j["committed_rows"], 0, "{j}");
    // recover given it beside a destination it reaches: the others are finished, this one's
    // transactions left pending (exit 1), named with what its server said (only in warnings).
    let log = TempPath::new("refused-recover.log");
    let ok = c.dest[0].conninfo(&database(&c.dest[0], ""));
    let out = run(&[
        "--json",
        "recover",
        "--to",
        &ok,
        "--to",
        &to,
        "--decision-log",
        log.arg(),
    ]);
    assert_exit(&out, 1);
    let j = json(&out);
    assert_eq!(j["status"], "pending", "{j}");
    assert_eq!(j["server"], "destination 2", "{j}");
    assert_eq!(j["sqlstate"], "28P01", "{j}");
    assert!(
        j["error"].as_str().is_some_and(|e| e.contains("28P01")),
        "{j}"
    );
}

/// What stderr warns of is in `--json` too (`warnings`): a one-table run that rounds values into
/// a narrower column said so on stderr only (`"warning": null`), as did a job for a bare-word
/// destination.
#[test]
fn warnings_are_in_the_json_document() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE t (id int, n numeric(12,4)); INSERT INTO t VALUES (1, 1.2345);",
    );
    let dst = database(&c.dest[0], "CREATE TABLE t (id int, n numeric(10,2))");
    let out = run(&[
        "table",
        "t",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&dst),
        "--json",
    ]);
    assert_exit(&out, 0);
    let j = json(&out);
    let warnings = j["warnings"].as_array().expect("warnings");
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().is_some_and(|w| w.contains("numeric(10,2)"))),
        "{j}"
    );
    assert!(text(&out.stderr).contains("numeric(10,2)"));
}

/// `--json` into a pipe whose reader is gone: the document is lost, and stderr says so (it said
/// nothing); the exit status stands, the copy committed.
#[test]
fn a_json_summary_that_cannot_be_written_is_said() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE t (i int); INSERT INTO t VALUES (1), (2);",
    );
    let dst = database(&c.dest[0], "CREATE TABLE t (i int);");
    let mut child = copyman()
        .args(["table", "t", "--json", "--from"])
        .arg(c.source.conninfo(&src))
        .arg("--to")
        .arg(c.dest[0].conninfo(&dst))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_exit(&out, 0);
    assert!(
        text(&out.stderr).contains("--json: the summary could not be written to stdout"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &dst, "t"), 2);
}

/// A source that fails once its statement runs (`--where` on a column it lacks; a `--send`
/// that divides by zero mid-copy) is in the document as a destination's failure is: its
/// `error` with the SQLSTATE, and the top-level `server` and `sqlstate` (only the text said it).
#[test]
fn a_source_failure_has_its_sqlstate_in_the_document() {
    let c = clusters();
    let src = database(&c.source, &format!("{ITEMS} {FILL_ITEMS}"));
    let d1 = database(&c.dest[0], ITEMS);
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&d1));
    let wrong_column = [
        "--json",
        "table",
        "items",
        "--from",
        &from,
        "--to",
        &to,
        "--where",
        "nosuch > 1",
    ];
    let by_zero = [
        "--json",
        "copy",
        "--from",
        &from,
        "--send",
        "COPY (SELECT 1/0) TO STDOUT",
        "--to",
        &to,
        "--receive",
        "COPY items (id) FROM STDIN",
    ];
    // (A --where the source cannot read is the command's, refused before the copy: exit 2.)
    for (args, code, exit) in [(&wrong_column[..], "42703", 2), (&by_zero[..], "22012", 1)] {
        let out = run(args);
        assert_exit(&out, exit);
        let doc = json(&out);
        if exit == 1 {
            assert_eq!(doc["source"]["error"]["sqlstate"], code, "{doc}");
        }
        assert_eq!(doc["sqlstate"], code, "{doc}");
        assert_eq!(doc["server"], "source", "{doc}");
    }
    assert_eq!(count(&c.dest[0], &d1, "items"), 0);
}

/// A failure in the commit phase (a deferred constraint trigger raising on one destination):
/// the document names it at its top, with the destination and its SQLSTATE, as a failure
/// during the COPY does (`error` and `sqlstate` were null, with exit 1).
#[test]
fn a_failure_in_the_commit_phase_is_named_at_the_top() {
    let c = clusters();
    let table = "CREATE TABLE t (id int);";
    let src = database(
        &c.source,
        &format!("{table} INSERT INTO t SELECT generate_series(1, 10);"),
    );
    let d1 = database(&c.dest[0], table);
    let d2 = database(
        &c.dest[1],
        &format!(
            "{table}
             CREATE FUNCTION late() RETURNS trigger LANGUAGE plpgsql AS $$
               BEGIN RAISE EXCEPTION 'late boom'; END $$;
             CREATE CONSTRAINT TRIGGER late AFTER INSERT ON t DEFERRABLE INITIALLY DEFERRED
               FOR EACH ROW EXECUTE FUNCTION late();"
        ),
    );
    let out = run(&[
        "table",
        "t",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&d1),
        "--to",
        &c.dest[1].conninfo(&d2),
        "--json",
    ]);
    assert_exit(&out, 1);
    let j = json(&out);
    assert!(
        j["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("destination 2 (") && e.contains("late boom")),
        "{j}"
    );
    assert_eq!(j["server"], "destination 2", "{j}");
    assert_eq!(j["sqlstate"], "P0001", "{j}");
    assert_eq!(count(&c.dest[0], &d1, "t"), 0);
    assert_eq!(count(&c.dest[1], &d2, "t"), 0);
}

/// A destination that fails at the end of its COPY (a duplicate key, found when the server
/// takes the last rows) heads the failure with its name and error, in `--json`'s `error` too:
/// it was "could not complete the COPY operation", read as a protocol or network fault.
#[test]
fn a_destination_failing_at_the_end_of_its_copy_heads_the_failure() {
    let c = clusters();
    let schema = "CREATE TABLE u (id int PRIMARY KEY);";
    let src = database(
        &c.source,
        &format!("{schema} INSERT INTO u SELECT generate_series(1, 10);"),
    );
    let d1 = database(&c.dest[0], schema);
    let d2 = database(&c.dest[1], &format!("{schema} INSERT INTO u VALUES (3);"));
    let out = run(&[
        "--json",
        "table",
        "u",
        "--from",
        &c.source.url(&src),
        "--to",
        &c.dest[0].url(&d1),
        "--to",
        &c.dest[1].url(&d2),
    ]);
    assert_exit(&out, 1);
    let j = json(&out);
    let error = j["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("destination 2 failed: SQLSTATE 23505: duplicate key value"),
        "{j}"
    );
    assert_eq!(j["sqlstate"], "23505", "{j}");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("copy failed: destination 2 failed: SQLSTATE 23505"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &d1, "u"), 0);
    assert_eq!(count(&c.dest[1], &d2, "u"), 1);
}

/// Every document has one envelope, whatever the command and the outcome — `command`,
/// `status`, `exit_code`, `error`, `server`, `sqlstate`, `started_at`, `finished_at`,
/// `duration_secs`, `warnings`, `notices`, `waits` — then its own lists: a job said why it
/// failed only in `stopped` and its duration as `seconds` (`jq .error` read null for a failed
/// job), a run that ended before copying had no duration nor command.
#[test]
fn every_document_has_the_same_envelope() {
    let c = clusters();
    let tables = "CREATE TABLE a (id int); CREATE TABLE b (id int);";
    let src = database(
        &c.source,
        &format!("{tables} INSERT INTO a VALUES (1); INSERT INTO b VALUES (2);"),
    );
    let dst = database(&c.dest[0], "CREATE TABLE a (id int);");
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
    let state = TempPath::new("envelope.state");
    let nowhere = format!("host=127.0.0.1 port={} dbname=x user=x", closed_port());
    let log = TempPath::new("envelope.log");
    let data = TempPath::new("envelope.txt");
    let documents = [
        ("table", vec!["table", "a", "--from", &from, "--to", &to], 0),
        (
            "table",
            vec![
                "table",
                "a",
                "b",
                "--from",
                &from,
                "--to",
                &to,
                "--state",
                state.arg(),
            ],
            1,
        ),
        (
            "table",
            vec!["table", "a", "--from", &from, "--to", &nowhere],
            3,
        ),
        (
            "copy",
            vec![
                "copy",
                "--from",
                &from,
                "--send",
                "COPY a TO STDOUT",
                "--to",
                data.arg(),
            ],
            0,
        ),
        (
            "recover",
            vec!["recover", "--to", &to, "--decision-log", log.arg()],
            0,
        ),
    ];
    for (command, args, exit) in documents {
        let mut all = vec!["--json"];
        all.extend(args);
        let out = run(&all);
        assert_exit(&out, exit);
        let j = json(&out);
        for key in [
            "command",
            "status",
            "exit_code",
            "error",
            "server",
            "endpoint",
            "sqlstate",
            "started_at",
            "finished_at",
            "duration_secs",
            "warnings",
            "notices",
            "waits",
        ] {
            assert!(j.get(key).is_some(), "{key} in {all:?}: {j}");
        }
        assert_eq!(j["command"], command, "{all:?}: {j}");
        assert_eq!(j["exit_code"], exit, "{j}");
        assert!(j["duration_secs"].as_f64().is_some(), "{j}");
        // A failure says what, and where a server said it, its SQLSTATE.
        assert_eq!(j["error"].is_null(), exit == 0, "{j}");
    }
    let out = run(&[
        "--json",
        "table",
        "a",
        "b",
        "--from",
        &from,
        "--to",
        &to,
        "--state",
        state.arg(),
        "--resume",
        "--keep-going",
    ]);
    let j = json(&out);
    assert_eq!(j["server"], "destination 1", "{j}");
    assert!(
        j["endpoint"].as_str().is_some_and(|e| e.contains(&dst)),
        "{j}"
    );
    assert_eq!(j["sqlstate"], "42P01", "{j}");
    // A table missing on the source: the source's endpoint named, one table and a job alike
    // (it was null: docs43 F6).
    for tables in [&["nosuch"][..], &["nosuch", "a"]] {
        let mut args = vec!["--json", "table"];
        args.extend(tables);
        args.extend(["--from", &from, "--to", &to]);
        let out = run(&args);
        assert_exit(&out, 2);
        let j = json(&out);
        assert_eq!(j["server"], "source", "{j}");
        assert!(
            j["endpoint"].as_str().is_some_and(|e| e.contains(&src)),
            "{j}"
        );
        assert!(
            j["error"]
                .as_str()
                .is_some_and(|e| e.contains("\"nosuch\"")),
            "{j}"
        );
    }
}

/// A run stopped by a signal while it waits on a lock lists that wait in `--json`'s `waits`, as
/// stderr said it (the document said `[]`: a script could not tell why the run stood still).
#[test]
fn a_wait_said_before_a_signal_is_in_the_document() {
    use std::process::Stdio;
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE u (id int); INSERT INTO u VALUES (1);",
    );
    let dst = database(&c.dest[0], "CREATE TABLE u (id int);");
    let mut holder = hold_lock(&c.dest[0], &dst, "u");
    let mut child = copyman()
        .args([
            "--json",
            "table",
            "u",
            "--from",
            &c.source.conninfo(&src),
            "--to",
        ])
        .arg(c.dest[0].conninfo(&dst))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = StderrLines::take(&mut child);
    stderr.expect("waiting for lock on destination 1");
    signal(&child, "TERM");
    let out = child.wait_with_output().unwrap();
    holder.batch_execute("ROLLBACK").unwrap();
    assert_eq!(out.status.code(), Some(143), "{}", stderr.rest());
    let doc = json(&out);
    let waits = doc["waits"].as_array().cloned().unwrap_or_default();
    assert!(
        waits.iter().any(|w| w
            .as_str()
            .is_some_and(|w| w.contains("waiting for lock on destination 1"))),
        "{doc}"
    );
}

/// A signal while a destination is busy (a trigger sleeping) is the run's interruption in
/// `--json`, as stderr says it, not that destination's failure with the 57014 of copyman's own
/// cancel; `server` and `sqlstate` name no server.
#[test]
fn a_signal_while_a_destination_is_busy_is_the_runs_interruption() {
    use std::process::Stdio;
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE b (id int); INSERT INTO b SELECT generate_series(1, 10);",
    );
    let dst = database(
        &c.dest[0],
        "CREATE TABLE b (id int);
         CREATE FUNCTION nap() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN PERFORM pg_sleep(30); RETURN NULL; END $$;
         CREATE TRIGGER nap AFTER INSERT ON b FOR EACH STATEMENT EXECUTE FUNCTION nap();",
    );
    let child = copyman()
        .args([
            "--json",
            "table",
            "b",
            "--from",
            &c.source.conninfo(&src),
            "--to",
        ])
        .arg(c.dest[0].conninfo(&dst))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The destination's COPY ended and its trigger sleeps.
    let mut admin = c.dest[0].connect("postgres");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let napping: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 \
                 AND wait_event = 'PgSleep'",
                &[&dst],
            )
            .unwrap()
            .get(0);
        if napping > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the trigger never slept"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    signal(&child, "TERM");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(143), "{}", text(&out.stderr));
    let doc = json(&out);
    assert!(
        doc["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("interrupted by SIGTERM")),
        "{doc}"
    );
    assert!(
        doc["server"].is_null() && doc["sqlstate"].is_null(),
        "{doc}"
    );
    assert_eq!(count(&c.dest[0], &dst, "b"), 0);
}

/// A job's table that fails on destination 2 rolls back on destination 1 (a bystander, whose
/// record says "the table failed on another destination"): the document's `server` and
/// `sqlstate` are the failure's, as its `error` (they were destination 1's and null).
#[test]
fn a_jobs_failure_is_named_where_it_happened_not_where_it_rolled_back() {
    let c = clusters();
    let tables = "CREATE TABLE t (id int PRIMARY KEY); CREATE TABLE u (id int);";
    let src = database(
        &c.source,
        &format!("{tables} INSERT INTO t SELECT generate_series(1, 100);"),
    );
    let d1 = database(&c.dest[0], tables);
    let d2 = database(&c.dest[1], &format!("{tables} INSERT INTO t VALUES (77);"));
    // One table with a state file: a job, whose one table fails (no other to commit first).
    let state = TempPath::new("bystander.state");
    let out = run(&[
        "--json",
        "table",
        "t",
        "--state",
        state.arg(),
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&d1),
        "--to",
        &c.dest[1].conninfo(&d2),
    ]);
    assert_exit(&out, 1);
    let j = json(&out);
    assert_eq!(j["server"], "destination 2", "{j}");
    assert_eq!(j["sqlstate"], "23505", "{j}");
    assert!(
        j["endpoint"].as_str().is_some_and(|e| e.contains(&d2)),
        "{j}"
    );
    // What to do next, as stderr's closing line says it (recheck49 F5: a job's had no `advice`).
    let stderr = String::from_utf8_lossy(&out.stderr);
    let advice = j["advice"]
        .as_str()
        .unwrap_or_else(|| panic!("no advice: {j}"));
    assert!(
        advice.contains(state.arg()) && stderr.contains(&format!("copyman: {advice}")),
        "{j}\n{stderr}"
    );
    assert_eq!(count(&c.dest[0], &d1, "t"), 0);
}

/// A one-table refusal of the columns that names one destination (it lacks a column the
/// source has) says that destination as `server`, its CONN as `endpoint`: `server` was null.
#[test]
fn a_column_refusal_about_one_destination_names_it() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE t (id int, v text); INSERT INTO t VALUES (1, 'a');",
    );
    let d1 = database(&c.dest[0], "CREATE TABLE t (id int, v text);");
    let d2 = database(&c.dest[1], "CREATE TABLE t (id int, w text);");
    let out = run(&[
        "--json",
        "table",
        "t",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&d1),
        "--to",
        &c.dest[1].conninfo(&d2),
    ]);
    assert_exit(&out, 2);
    let doc = json(&out);
    assert_eq!(doc["server"], "destination 2", "{doc}");
    assert!(
        doc["endpoint"].as_str().is_some_and(|e| e.ends_with(&d2)),
        "{doc}"
    );
    assert!(
        doc["error"].as_str().unwrap().contains("lacks \"v\""),
        "{doc}"
    );
    assert_eq!(count(&c.dest[0], &d1, "t"), 0);
}

/// `source_rows` and `committed_rows` mean one thing in a one-table run's document and in a
/// job's (`--verify` makes a one-table run a job): the source's rows, and the rows committed
/// summed over the destinations (`rows` was 3 000 in one and 6 000 in the other for one copy).
#[test]
fn source_and_committed_rows_mean_one_thing_in_both_documents() {
    let c = clusters();
    let src = database(&c.source, &format!("{ITEMS} {FILL_ITEMS}"));
    let source_rows = count(&c.source, &src, "items");
    for extra in [&[][..], &["--verify"]] {
        let d1 = database(&c.dest[0], ITEMS);
        let d2 = database(&c.dest[1], ITEMS);
        let state = TempPath::new("rows.state");
        let (from, to1, to2) = (c.source.url(&src), c.dest[0].url(&d1), c.dest[1].url(&d2));
        let mut args = vec![
            "table", "items", "--from", &from, "--to", &to1, "--to", &to2, "--json",
        ];
        args.extend(extra);
        if !extra.is_empty() {
            args.extend(["--state", state.arg()]);
        }
        let out = run(&args);
        assert_exit(&out, 0);
        let j = json(&out);
        assert_eq!(j["source_rows"], source_rows, "{extra:?}: {j}");
        assert_eq!(j["committed_rows"], 2 * source_rows, "{extra:?}: {j}");
        // The rates too (progress62 F9: a job's document had none).
        for rate in ["rows_per_sec", "bytes_per_sec"] {
            assert!(j[rate].as_f64().is_some_and(|r| r > 0.0), "{extra:?}: {j}");
        }
    }
}

/// A file copied to a file in `copy` mode has no row count (no statement says its format):
/// `committed_rows` is null, not 0, which read as "nothing written" of a complete copy
/// (files40 F5).
#[test]
fn an_uncounted_copy_has_no_committed_rows() {
    let from = TempPath::new("uncounted.txt");
    std::fs::write(&from.0, "1\ta\n2\tb\n").unwrap();
    let to = TempPath::new("uncounted-copy.txt");
    let out = run(&["copy", "--from", from.arg(), "--to", to.arg(), "--json"]);
    assert_exit(&out, 0);
    let j = json(&out);
    assert!(j["committed_rows"].is_null(), "{j}");
    assert_eq!(std::fs::read(&to.0).unwrap(), b"1\ta\n2\tb\n");
}

/// Under `--keep-going`, a destination that failed early in the copy has its own time in
/// `--json`, not the run's: it had the run's whole duration (progress45 F6.2).
#[test]
fn a_destination_that_failed_early_has_its_own_duration() {
    let c = clusters();
    let table = "CREATE TABLE t (id int);";
    let src = database(
        &c.source,
        &format!("{table} INSERT INTO t SELECT generate_series(1, 500000);"),
    );
    let slow = database(
        &c.dest[0],
        &format!(
            "{table} CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN
               PERFORM pg_sleep(2); RETURN NULL; END$$;
             CREATE TRIGGER slow AFTER INSERT ON t FOR EACH STATEMENT EXECUTE FUNCTION slow();"
        ),
    );
    let failing = database(
        &c.dest[1],
        &format!(
            "{table} CREATE FUNCTION no() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN
               RAISE EXCEPTION 'no'; END$$;
             CREATE TRIGGER no BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION no();"
        ),
    );
    let out = run(&[
        "table",
        "t",
        "--keep-going",
        "--json",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&slow),
        "--to",
        &c.dest[1].conninfo(&failing),
    ]);
    assert_exit(&out, 4);
    let doc = json(&out);
    let secs = |i: usize| doc["destinations"][i]["duration_secs"].as_f64().unwrap();
    assert!(secs(0) >= 2.0, "{doc}");
    assert!(secs(1) < 1.5, "{doc}");
}

/// `--target-table` is in the document, quoted, beside the table read, and a dry run's names
/// both as the run's does (recheck45 F4.1: neither said which destination table was written,
/// and a dry run named no table).
#[test]
fn the_target_table_is_in_the_document() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE t (id int); INSERT INTO t VALUES (1);",
    );
    let d = database(&c.dest[0], "CREATE TABLE \"Other\" (id int);");
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&d));
    let args = [
        "table",
        "t",
        "--target-table",
        "\"Other\"",
        "--from",
        &from,
        "--to",
        &to,
        "--json",
    ];
    for dry in [true, false] {
        let mut args = args.to_vec();
        if dry {
            args.push("--dry-run");
        }
        let out = run(&args);
        assert_exit(&out, 0);
        let doc = json(&out);
        assert_eq!(doc["table"], r#""public"."t""#, "dry {dry}: {doc}");
        assert_eq!(doc["target_table"], r#""Other""#, "dry {dry}: {doc}");
    }
    assert_eq!(count(&c.dest[0], &d, "\"Other\""), 1);
}
