//! What the servers say during a run reaches the user (issue 12 point 10, issue 13 point 7): a
//! NOTICE a source function raises in the middle of its COPY OUT and a WARNING a destination
//! trigger raises during its COPY IN are printed on stderr as psql prints them, prefixed with the
//! endpoint that said them, and listed in `--json`.

use crate::common;

use common::*;

const SOURCE_SQL: &str = "CREATE FUNCTION f(i int) RETURNS int LANGUAGE plpgsql AS $$
    BEGIN IF i = 3000 THEN RAISE NOTICE 'source reached row %', i; END IF; RETURN i; END $$;";

const DEST_SQL: &str = "CREATE TABLE t (n int);
    CREATE FUNCTION w() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE WARNING 'destination saw row %', NEW.n
            USING DETAIL = 'a trigger said so', HINT = 'nothing to do';
        RETURN NEW;
    END $$;
    CREATE TRIGGER w BEFORE INSERT ON t FOR EACH ROW WHEN (NEW.n = 4000) EXECUTE FUNCTION w();";

#[test]
fn server_notices_and_warnings_are_printed_and_listed_in_json() {
    let c = clusters();
    let src = database(&c.source, SOURCE_SQL);
    let quiet = database(&c.dest[0], "CREATE TABLE t (n int)");
    let loud = database(&c.dest[1], DEST_SQL);
    let out = run(&[
        "copy",
        "--from",
        &c.source.url(&src),
        "--send",
        "COPY (SELECT f(g) FROM generate_series(1, 5000) AS g) TO STDOUT",
        "--to",
        &c.dest[0].url(&quiet),
        "--to",
        &c.dest[1].url(&loud),
        "--receive",
        "COPY t (n) FROM STDIN",
        "--json",
    ]);
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[0], &quiet, "t"), 5000);
    assert_eq!(count(&c.dest[1], &loud, "t"), 5000);

    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("source: NOTICE:  source reached row 3000\n"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "destination 2: WARNING:  destination saw row 4000\n\
             DETAIL:  a trigger said so\n\
             HINT:  nothing to do\n"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("destination 1:"), "{stderr}");

    let summary = json(&out);
    let notices = summary["notices"].as_array().expect("a notices array");
    assert_eq!(notices.len(), 2, "{notices:?}");
    assert_eq!(notices[0]["endpoint"], "source");
    assert_eq!(notices[0]["severity"], "NOTICE");
    assert_eq!(notices[0]["sqlstate"], "00000");
    assert_eq!(notices[0]["message"], "source reached row 3000");
    assert_eq!(notices[1]["endpoint"], "destination 2");
    assert_eq!(notices[1]["severity"], "WARNING");
    assert_eq!(notices[1]["sqlstate"], "01000");
    assert_eq!(notices[1]["message"], "destination saw row 4000");
    assert_eq!(notices[1]["detail"], "a trigger said so");
    assert_eq!(notices[1]["hint"], "nothing to do");
}

#[test]
fn a_quiet_run_lists_no_notices() {
    let c = clusters();
    let src = database(&c.source, "SELECT 1");
    let dest = database(&c.dest[0], "CREATE TABLE t (n int)");
    let out = run(&[
        "copy",
        "--from",
        &c.source.url(&src),
        "--send",
        "COPY (SELECT generate_series(1, 10)) TO STDOUT",
        "--to",
        &c.dest[0].url(&dest),
        "--receive",
        "COPY t FROM STDIN",
        "--json",
    ]);
    assert_exit(&out, 0);
    assert_eq!(json(&out)["notices"], serde_json::json!([]));
    let stderr = text(&out.stderr);
    assert!(
        !stderr.contains("NOTICE:") && !stderr.contains("WARNING:"),
        "{stderr}"
    );
}

/// A job's tables: what a destination's trigger says during a table's copy is printed after the
/// table and its destination, and listed in `--json` (a job dropped them all: they stayed on
/// its sessions). A quiet table says nothing.
#[test]
fn a_job_prints_and_lists_what_its_servers_said_per_table() {
    let c = clusters();
    let tables = "CREATE TABLE u (n int);";
    let src = database(
        &c.source,
        &format!(
            "CREATE TABLE t (n int); {tables}
             INSERT INTO t SELECT generate_series(1, 5000); INSERT INTO u VALUES (1);"
        ),
    );
    let quiet = database(&c.dest[0], &format!("CREATE TABLE t (n int); {tables}"));
    let loud = database(&c.dest[1], &format!("{DEST_SQL} {tables}"));
    let state = TempPath::new("job-notices.state");
    let out = copyman()
        .args(["table", "t", "u", "--from", &c.source.url(&src)])
        .args([
            "--to",
            &c.dest[0].url(&quiet),
            "--to",
            &c.dest[1].url(&loud),
        ])
        .args(["--state", state.arg(), "--json"])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[1], &loud, "t"), 5000);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "\"public\".\"t\" on destination 2: WARNING:  destination saw row 4000\n\
             DETAIL:  a trigger said so\n"
        ),
        "{stderr}"
    );
    let notices = json(&out)["notices"].clone();
    let notices = notices.as_array().expect("a notices array");
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!(notices[0]["endpoint"], "\"public\".\"t\" on destination 2");
    assert_eq!(notices[0]["severity"], "WARNING");
    assert_eq!(notices[0]["message"], "destination saw row 4000");
    assert_eq!(notices[0]["hint"], "nothing to do");
}

/// A table split into ranges copies each range on sessions of its own: what a destination said
/// on one of them reaches the user too (they end with the table).
#[test]
fn a_split_tables_ranges_say_what_their_servers_said() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE t (n int, pad text);
         INSERT INTO t SELECT g, repeat('x', 200) FROM generate_series(1, 20000) g;",
    );
    let dest = database(
        &c.dest[0],
        &DEST_SQL.replace("(n int)", "(n int, pad text)"),
    );
    let state = TempPath::new("split-notices.state");
    let out = copyman()
        .args(["table", "t", "--from", &c.source.url(&src)])
        .args(["--to", &c.dest[0].url(&dest), "--state", state.arg()])
        .args(["--split-larger-than", "1M", "--jobs", "2", "--json"])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[0], &dest, "t"), 20000);
    let report = json(&out);
    let notices = report["notices"].as_array().expect("a notices array");
    assert_eq!(notices.len(), 1, "{report}");
    assert_eq!(notices[0]["endpoint"], "\"public\".\"t\" on destination 1");
    assert_eq!(notices[0]["message"], "destination saw row 4000");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("\"public\".\"t\" on destination 1: WARNING:  destination saw row 4000"),
        "{stderr}"
    );
}

/// A job keeps every table's notices to its end: a notice per row of many tables took its memory
/// (141 MB for 12 tables), and those past a session's 10 000 were dropped without a word. Each
/// table keeps its first 100, and says how many more it did not keep (stderr and `--json`).
#[test]
fn a_job_keeps_a_few_notices_per_table_and_counts_the_rest() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE t (n int); INSERT INTO t SELECT generate_series(1, 500);
         CREATE TABLE u (n int);",
    );
    let dst = database(
        &c.dest[0],
        "CREATE TABLE t (n int); CREATE TABLE u (n int);
         CREATE FUNCTION said() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN RAISE NOTICE 'row %', NEW.n; RETURN NEW; END $$;
         CREATE TRIGGER said BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION said();",
    );
    let state = TempPath::new("notices-kept.state");
    let out = run(&[
        "--json",
        "table",
        "t",
        "u",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&dst),
        "--state",
        state.arg(),
    ]);
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    assert_eq!(stderr.matches("NOTICE:  row ").count(), 100, "{stderr}");
    assert!(
        stderr.contains("\"public\".\"t\": 400 more notices not kept"),
        "{stderr}"
    );
    let report = json(&out);
    assert_eq!(report["notices"].as_array().map(Vec::len), Some(100));
    assert!(
        report["warnings"]
            .to_string()
            .contains("400 more notices not kept"),
        "{report}"
    );
}

/// A notice said again (a trigger's per row) is folded as it comes, so that the kept ones are
/// distinct: "said 300 times" of one said 300 times, and a WARNING after it kept and printed
/// (the copies filled the 100 kept, said "said 100 times", and the WARNING was among "201 more
/// notices not kept": recheck39 F4). `--json` carries each once with its `times`.
#[test]
fn a_job_folds_a_notice_said_again_and_keeps_the_distinct_ones() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE t (n int); INSERT INTO t SELECT generate_series(1, 300);
         CREATE TABLE u (n int);",
    );
    let dst = database(
        &c.dest[0],
        "CREATE TABLE t (n int); CREATE TABLE u (n int);
         CREATE FUNCTION said() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN RAISE NOTICE 'row checked';
         IF NEW.n = 300 THEN RAISE WARNING 'row 300: price list out of date'; END IF;
         RETURN NEW; END $$;
         CREATE TRIGGER said BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION said();",
    );
    let state = TempPath::new("notices-folded.state");
    let out = run(&[
        "--json",
        "table",
        "t",
        "u",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&dst),
        "--state",
        state.arg(),
    ]);
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("NOTICE:  row checked (said 300 times)")
            && stderr.contains("WARNING:  row 300: price list out of date")
            && !stderr.contains("not kept"),
        "{stderr}"
    );
    let report = json(&out);
    let notices = report["notices"].as_array().unwrap();
    assert_eq!(notices.len(), 2, "{report}");
    assert_eq!(notices[0]["times"], 300, "{report}");
    assert_eq!(notices[1]["severity"], "WARNING", "{report}");
}
