//! `--verify` in a job (`copyman table` with many tables): a resume with `--verify` compares
//! the tables an earlier run did too, and the checksum reads a table's own rows, as the copy
//! does. Real clusters, shared by the binary.

use crate::common;

use common::*;
use serde_json::Value;

/// The `--json` records of one table, by destination.
fn records<'a>(report: &'a Value, table: &str) -> Vec<&'a Value> {
    report["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .filter(|r| r["table"] == table)
        .collect()
}

#[test]
fn job_verify_on_resume_compares_the_tables_done_earlier() {
    let c = clusters();
    let schema = "CREATE TABLE kept (id int PRIMARY KEY, v text);
                  CREATE TABLE altered (id int PRIMARY KEY, v text);";
    let src = database(
        &c.source,
        &format!(
            "{schema} INSERT INTO kept SELECT g, 'k' || g FROM generate_series(1, 200) g;
             INSERT INTO altered SELECT g, 'a' || g FROM generate_series(1, 100) g;"
        ),
    );
    let d0 = database(&c.dest[0], schema);
    let d1 = database(&c.dest[1], schema);
    let state = TempPath::new("resume-verify.state");
    let (from, to0, to1) = (
        c.source.conninfo(&src),
        c.dest[0].conninfo(&d0),
        c.dest[1].conninfo(&d1),
    );
    let job = |extra: &[&str]| {
        let mut args = vec![
            "--json", "table", "kept", "altered", "--from", &from, "--to", &to0, "--to", &to1,
            "--state",
        ];
        args.push(state.arg());
        args.extend(extra);
        run(&args)
    };
    assert_exit(&job(&[]), 0);
    // Someone changes a row on destination 2 by hand: same row count, another row.
    c.dest[1]
        .connect(&d1)
        .batch_execute("UPDATE altered SET v = 'by hand' WHERE id = 42")
        .unwrap();

    // A resume with --verify copies nothing (everything is done) but compares every table.
    let out = job(&["--resume", "--verify"]);
    assert_exit(&out, 4);
    let report = json(&out);
    assert_eq!(report["status"], "partial", "{report}");
    for record in records(&report, r#""public"."kept""#) {
        assert_eq!(record["status"], "already done", "{record}");
        assert_eq!(record["verified"], true, "{record}");
    }
    let altered = records(&report, r#""public"."altered""#);
    assert_eq!(altered[0]["verified"], true, "{report}");
    // Not "already done", a status that needs nothing (cli40 F3).
    assert_eq!(altered[1]["status"], "differs", "{report}");
    assert_eq!(altered[1]["verified"], false, "{report}");
    let message = altered[1]["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("checksum differs") && message.contains("--resume leaves it to you"),
        "{report}"
    );
    // Compared with the source now, not as the earlier run read it: said (live52 F5).
    assert!(
        message.contains("an earlier run copied it from its own snapshot of the source"),
        "{report}"
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(r#""public"."altered" → destination 2"#)
            && stderr.contains("checksum differs"),
        "the table is named: {stderr}"
    );
    // Its row count is the one recorded, not what the destination holds (jobs41 F4).
    assert!(stderr.contains("differs, 100 rows recorded: "), "{stderr}");
    assert!(
        stderr.contains("3 of 4 tables × destinations done"),
        "{stderr}"
    );
    // It was not copied again yet: the hand-made row is still there.
    assert_ne!(
        digest(&c.dest[1], &d1, "altered"),
        digest(&c.source, &src, "altered")
    );

    // The next resume does not empty it on its own: without --truncate the table may hold rows
    // the job did not write (it did, deleting them). Refused, named, nothing changed.
    let out = job(&["--resume"]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(r#"table "public"."altered" on destination 2 differs from the source"#)
            && stderr.contains("--truncate"),
        "{stderr}"
    );
    assert_ne!(
        digest(&c.dest[1], &d1, "altered"),
        digest(&c.source, &src, "altered")
    );
    // With --truncate it copies again what differed (and only that), and it is equal everywhere.
    let out = job(&["--resume", "--truncate"]);
    assert_exit(&out, 0);
    let report = json(&out);
    let altered = records(&report, r#""public"."altered""#);
    assert_eq!(altered[0]["status"], "already done", "{report}");
    assert_eq!(altered[1]["status"], "committed", "{report}");
    assert_eq!(altered[1]["rows"], 100, "{report}");
    for table in ["kept", "altered"] {
        let expected = digest(&c.source, &src, table);
        assert_eq!(digest(&c.dest[0], &d0, table), expected, "{table}");
        assert_eq!(digest(&c.dest[1], &d1, table), expected, "{table}");
    }
    // And a resume that verifies finds every table equal.
    let out = job(&["--resume", "--verify"]);
    assert_exit(&out, 0);
    let report = json(&out);
    for record in report["tables"].as_array().unwrap() {
        assert_eq!(record["verified"], true, "{record}");
    }
}

#[test]
fn job_verify_compares_an_inheritance_parents_own_rows_as_its_copy_reads_them() {
    let c = clusters();
    let parent = "CREATE TABLE parent (id int PRIMARY KEY, v text);";
    // On the source the parent has a child holding rows of its own (not copied with it).
    let src = database(
        &c.source,
        &format!(
            "{parent} CREATE TABLE child (extra int) INHERITS (parent);
             INSERT INTO parent SELECT g, 'p' || g FROM generate_series(1, 50) g;
             INSERT INTO child SELECT g, 'c' || g, g FROM generate_series(1001, 1030) g;"
        ),
    );
    // Destination 1: the parent without a child; destination 2: with another child, holding
    // rows the job has nothing to do with.
    let d0 = database(&c.dest[0], parent);
    let d1 = database(
        &c.dest[1],
        &format!(
            "{parent} CREATE TABLE theirs () INHERITS (parent);
             INSERT INTO theirs SELECT g, 't' || g FROM generate_series(5001, 5007) g;"
        ),
    );
    let state = TempPath::new("inheritance-verify.state");
    let (from, to0, to1) = (
        c.source.conninfo(&src),
        c.dest[0].conninfo(&d0),
        c.dest[1].conninfo(&d1),
    );
    let job = |extra: &[&str]| {
        let mut args = vec![
            "--json", "table", "parent", "--from", &from, "--to", &to0, "--to", &to1, "--verify",
            "--state",
        ];
        args.push(state.arg());
        args.extend(extra);
        run(&args)
    };
    let out = job(&[]);
    assert_exit(&out, 0);
    let report = json(&out);
    for record in records(&report, r#""public"."parent""#) {
        assert_eq!(record["status"], "committed", "{record}");
        assert_eq!(record["rows"], 50, "{record}");
        assert_eq!(record["verified"], true, "{record}");
    }
    let own = |cluster: &copyman_testkit::Cluster, db: &str| digest(cluster, db, "ONLY parent");
    let expected = own(&c.source, &src);
    assert_eq!(expected.0, 50);
    assert_eq!(own(&c.dest[0], &d0), expected);
    assert_eq!(own(&c.dest[1], &d1), expected);

    // A real difference in the parent's own rows is still found (and one in a child's rows on
    // a destination is none of the parent's).
    c.dest[0]
        .connect(&d0)
        .batch_execute("UPDATE ONLY parent SET v = 'by hand' WHERE id = 7")
        .unwrap();
    c.dest[1]
        .connect(&d1)
        .batch_execute("UPDATE theirs SET v = 'theirs, by hand' WHERE id = 5001")
        .unwrap();
    let out = job(&["--resume"]);
    assert_exit(&out, 4);
    let report = json(&out);
    let records = records(&report, r#""public"."parent""#);
    assert_eq!(records[0]["verified"], false, "{report}");
    assert!(
        records[0]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("checksum differs"),
        "{report}"
    );
    assert_eq!(records[1]["verified"], true, "{report}");
}

/// A job begun with `--verify` is resumed with it, given or not: a table the resume finds
/// committed and not recorded done is recorded only once its checksum matched.
#[test]
fn a_verified_job_is_resumed_with_verify() {
    let c = clusters();
    let schema = "CREATE TABLE v1 (id int);";
    let src = database(
        &c.source,
        &format!("{schema} INSERT INTO v1 VALUES (1), (2);"),
    );
    let dst = database(&c.dest[0], schema);
    let state = TempPath::new("verified.state");
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
    let args = [
        "--json",
        "table",
        "v1",
        "--from",
        &from,
        "--to",
        &to,
        "--state",
        state.arg(),
    ];
    let first = run(&[&args[..], &["--verify"]].concat());
    assert_exit(&first, 0);
    // The match is said, not only the mismatches (it was said in --json only).
    assert!(
        text(&first.stderr).contains(
            "1 of 1 tables × destinations done (1 table to 1 destination), 1 verified (row count \
             and checksum of the copied columns as the source's)"
        ),
        "{}",
        text(&first.stderr)
    );
    let resumed = run(&[&args[..], &["--resume"]].concat());
    assert_exit(&resumed, 0);
    let stderr = text(&resumed.stderr);
    assert!(
        stderr.contains("began with --verify: it is resumed with it"),
        "{stderr}"
    );
    let report = json(&resumed);
    assert_eq!(report["tables"][0]["verified"], true, "{report}");
    assert_eq!(count(&c.dest[0], &dst, "v1"), 2);
}

/// A `--verify` whose checksum cannot be computed on a destination (here its role loses SELECT
/// on the table once the job planned; as when its session is terminated, or its server goes)
/// is not a mismatch: the table is committed, said not compared, not recorded done, and a resume compares
/// it again (it was recorded `mismatch`, and the resume refused it as different, exit 2).
#[test]
fn job_verify_that_cannot_compute_a_checksum_is_not_a_mismatch() {
    let c = clusters();
    let schema = "CREATE TABLE vt (id int PRIMARY KEY, v text); CREATE TABLE other (id int);";
    let src = database(
        &c.source,
        &format!("{schema} INSERT INTO vt SELECT g, 'v' || g FROM generate_series(1, 300) g;"),
    );
    let d0 = database(&c.dest[0], schema);
    let role = format!("blind_{d0}");
    c.dest[0]
        .connect(&d0)
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN PASSWORD 'pw'; GRANT INSERT, SELECT ON vt, other TO {role};"
        ))
        .unwrap();
    let to = format!(
        "host={} port={} user={role} password=pw dbname={d0}",
        c.dest[0].host(),
        c.dest[0].port()
    );
    let state = TempPath::new("unverified.state");
    let from = c.source.conninfo(&src);
    let job = |extra: &[&str]| {
        let mut args = vec![
            "--json", "table", "vt", "other", "--from", &from, "--to", &to, "--verify", "--state",
        ];
        args.push(state.arg());
        args.extend(extra);
        run(&args)
    };
    let args = [
        "--json",
        "table",
        "vt",
        "other",
        "--from",
        &from,
        "--to",
        &to,
        "--verify",
        "--state",
        state.arg(),
    ];
    let paused = Paused::start(&args, "planned");
    c.dest[0]
        .connect(&d0)
        .batch_execute(&format!("REVOKE SELECT ON vt, other FROM {role}"))
        .unwrap();
    let out = paused.resume();
    assert_exit(&out, 4);
    let report = json(&out);
    let vt = records(&report, "\"public\".\"vt\"");
    assert_eq!(vt[0]["status"], "committed", "{report}");
    assert!(vt[0]["verified"].is_null(), "{report}");
    let error = vt[0]["error"]["message"].as_str().unwrap_or_default();
    assert!(
        error.contains("could not be computed") && error.contains("--resume compares it again"),
        "{report}"
    );
    assert_eq!(count(&c.dest[0], &d0, "vt"), 300);
    // Not said to be done, nor a copy that failed: committed, not compared.
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("0 of 2 tables × destinations done")
            && !stderr.contains("failed with an error a rerun meets again"),
        "{stderr}"
    );
    let recorded = std::fs::read_to_string(&state.0).unwrap();
    assert!(!recorded.contains("mismatch"), "{recorded}");
    // Once the role may read it, the resume compares it: verified, done, nothing copied again.
    c.dest[0]
        .connect(&d0)
        .batch_execute(&format!("GRANT SELECT ON vt, other TO {role}"))
        .unwrap();
    let out = job(&["--resume"]);
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[0], &d0, "vt"), 300);
}

/// A `--truncate --verify` job whose table differs on a destination says that `--resume`
/// empties it there and copies it again: a plain `--resume` does so (the state file records
/// `truncate`), as it does for a table that failed. It was refused as an append's ("without
/// --truncate it may hold rows this job did not write", exit 2).
#[test]
fn job_verify_a_truncate_jobs_differing_table_is_replaced_by_a_plain_resume() {
    let c = clusters();
    let schema = "CREATE TABLE vt (id int PRIMARY KEY, v text);";
    let src = database(
        &c.source,
        &format!("{schema} INSERT INTO vt SELECT g, 'v' || g FROM generate_series(1, 300) g;"),
    );
    let d0 = database(&c.dest[0], schema);
    // Destination 2 stores other values than it is sent: its checksum differs.
    let d1 = database(
        &c.dest[1],
        &format!(
            "{schema} CREATE FUNCTION up() RETURNS trigger LANGUAGE plpgsql AS
               $$ BEGIN NEW.v := upper(NEW.v); RETURN NEW; END $$;
             CREATE TRIGGER up BEFORE INSERT ON vt FOR EACH ROW EXECUTE FUNCTION up();"
        ),
    );
    let state = TempPath::new("truncate-verify.state");
    let (from, to0, to1) = (
        c.source.conninfo(&src),
        c.dest[0].conninfo(&d0),
        c.dest[1].conninfo(&d1),
    );
    let job = |extra: &[&str]| {
        let mut args = vec![
            "table", "vt", "--from", &from, "--to", &to0, "--to", &to1, "--state",
        ];
        args.push(state.arg());
        args.extend(extra);
        run(&args)
    };
    let out = job(&["--truncate", "--verify"]);
    assert_exit(&out, 4);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("--resume empties the table there and copies it again"),
        "{stderr}"
    );
    // A resume with --verify that finds it differing still says what is true of this job: a
    // plain --resume replaces it (it said "--resume alone refuses a table whose checksum
    // differs … --resume --truncate": first47 F4).
    let out = job(&["--resume", "--verify"]);
    assert_exit(&out, 4);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("--resume empties the table there and copies it again")
            && !stderr.contains("--resume alone refuses"),
        "{stderr}"
    );
    c.dest[1]
        .connect(&d1)
        .batch_execute("DROP TRIGGER up ON vt")
        .unwrap();
    let out = job(&["--resume"]);
    assert_exit(&out, 0);
    let expected = digest(&c.source, &src, "vt");
    assert_eq!(digest(&c.dest[0], &d0, "vt"), expected);
    assert_eq!(digest(&c.dest[1], &d1, "vt"), expected);
}

/// `--verify` with a destination role that may insert into a table but not read it: every run
/// committed it, failed its checksum (42501), advised `--resume`, and every resume (which keeps
/// `--verify`) did the same. Refused while planning, naming the table; nothing copied. A role
/// with SELECT on each of the columns compared is not refused (a generated column, never copied
/// nor compared, needs none: it was refused for it).
#[test]
fn job_verify_refuses_a_table_its_destination_role_may_not_read_back() {
    let c = clusters();
    let schema = "CREATE TABLE c (id int, twice int GENERATED ALWAYS AS (id * 2) STORED);
        CREATE TABLE d (id int);";
    let src = database(
        &c.source,
        &format!("{schema} INSERT INTO c SELECT generate_series(1, 100);"),
    );
    let dst = database(&c.dest[0], schema);
    let role = format!("loader_{dst}");
    c.dest[0]
        .connect(&dst)
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN; GRANT INSERT ON c TO {role}; GRANT ALL ON d TO {role};"
        ))
        .unwrap();
    let to = format!(
        "host=127.0.0.1 port={} user={role} dbname={dst}",
        c.dest[0].port()
    );
    let state = TempPath::new("verify-unreadable.state");
    let out = copyman()
        .args([
            "table",
            "c",
            "d",
            "--verify",
            "--from",
            &c.source.conninfo(&src),
        ])
        .args(["--to", &to, "--state", state.arg()])
        .output()
        .unwrap();
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("destination 1's role may not SELECT \"public\".\"c\""),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &dst, "c"), 0);
    // SELECT on each of its columns reads it back as well.
    c.dest[0]
        .connect(&dst)
        .batch_execute(&format!("GRANT SELECT (id) ON c TO {role}"))
        .unwrap();
    let out = copyman()
        .args([
            "table",
            "c",
            "d",
            "--verify",
            "--from",
            &c.source.conninfo(&src),
        ])
        .args(["--to", &to, "--state", state.arg()])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[0], &dst, "c"), 100);
}

/// A signal while a committed table is being verified: the table is said committed, not
/// compared, not recorded as done — not "its session was closed: nothing of it committed",
/// and the summary does not list it as recorded (it said both).
#[test]
fn job_verify_interrupted_says_a_committed_table_committed() {
    let c = clusters();
    let schema = "CREATE TABLE vt (id int PRIMARY KEY, v text);";
    let src = database(
        &c.source,
        &format!("{schema} INSERT INTO vt SELECT g, 'v' || g FROM generate_series(1, 300) g;"),
    );
    let d0 = database(&c.dest[0], schema);
    let state = TempPath::new("verify-interrupted.state");
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&d0));
    let args = [
        "table",
        "vt",
        "--from",
        &from,
        "--to",
        &to,
        "--verify",
        "--state",
        state.arg(),
    ];
    let paused = Paused::start(&args, "committed:1");
    // The checksum's read waits behind this lock until the signal.
    let mut holder = c.dest[0].connect(&d0);
    let mut lock = holder.transaction().unwrap();
    lock.batch_execute("LOCK TABLE vt IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let pid = paused.child.id();
    let ended = paused.resume_in_background();
    let mut watcher = c.dest[0].connect(&d0);
    let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while watcher
        .query(
            "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%md5%'",
            &[],
        )
        .unwrap()
        .is_empty()
    {
        assert!(std::time::Instant::now() < until, "no checksum waiting");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = ended.join().unwrap();
    lock.rollback().unwrap();
    assert_exit(&out, 130);
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("nothing of it committed"), "{stderr}");
    assert!(
        stderr.contains("committed on every destination (and recorded): none; committed on every destination, not recorded as done (not compared: --resume compares them): \"public\".\"vt\""),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &d0, "vt"), 300);
}

/// A destination that holds a column in another type than the source's (a `real` into a
/// `numeric`: `1e-05` stored as `0.00001`) is compared by value: its checksum reads the column
/// back in the source's type. Before, the words differed and the table was a mismatch on every
/// run (exit 4, the resume copied it again and found it different again). A value that is not
/// the source's there (changed by hand) is still found.
#[test]
fn job_verify_compares_a_column_of_another_type_by_its_value() {
    let c = clusters();
    // A real into a numeric; an int and a numeric into numeric(12,2) (5 is 5.00 there, which
    // is no int: read back in the source's type it failed, 22P02); json into jsonb (its keys
    // and spaces normalized).
    let rows = "INSERT INTO m VALUES (1, 1e-05, 5, 1.5, '{\"b\": 1,  \"a\": [1, 2]}'), \
                (2, 0.1, -3, 2, '[]'), (3, 123456.79, 0, 0.25, 'null'), (4, -2.5e-10, 7, 10, '1'), \
                (5, 'NaN', 1, 1, '{}'), (6, 3.4028235e+38, 2, 2.5, '\"x\"'), \
                (7, NULL, NULL, NULL, NULL)";
    let src = database(
        &c.source,
        &format!("CREATE TABLE m (id int PRIMARY KEY, x real, i int, n numeric, j json); {rows}"),
    );
    let d0 = database(
        &c.dest[0],
        "CREATE TABLE m (id int PRIMARY KEY, x numeric, i numeric(12,2), n numeric(12,2), \
         j jsonb)",
    );
    let d1 = database(
        &c.dest[1],
        "CREATE TABLE m (id int PRIMARY KEY, x real, i int, n numeric, j json)",
    );
    let state = TempPath::new("verify-types.state");
    let (from, to0, to1) = (
        c.source.conninfo(&src),
        c.dest[0].conninfo(&d0),
        c.dest[1].conninfo(&d1),
    );
    let job = |extra: &[&str]| {
        let mut args = vec![
            "--json", "table", "m", "--from", &from, "--to", &to0, "--to", &to1, "--state",
        ];
        args.push(state.arg());
        args.extend(extra);
        run(&args)
    };
    let out = job(&["--verify"]);
    assert_exit(&out, 0);
    let report = json(&out);
    for r in records(&report, "\"public\".\"m\"") {
        assert_eq!(r["verified"], true, "{report}");
    }
    assert_eq!(
        c.dest[0]
            .connect(&d0)
            .query_one("SELECT x::text FROM m WHERE id = 1", &[])
            .unwrap()
            .get::<_, String>(0),
        "0.00001"
    );
    // Done earlier, compared again by a resume: by value too.
    let out = job(&["--resume", "--verify"]);
    assert_exit(&out, 0);
    c.dest[0]
        .connect(&d0)
        .batch_execute("UPDATE m SET x = 0.10001 WHERE id = 2")
        .unwrap();
    let out = job(&["--resume", "--verify"]);
    assert_exit(&out, 4);
    let report = json(&out);
    let by_dest = records(&report, "\"public\".\"m\"");
    assert!(
        by_dest
            .iter()
            .any(|r| r["server"] == "destination 1" && r["verified"] == false),
        "{report}"
    );
}

/// Text into a typed column (a uuid, a boolean, an integer, an address, a numeric): compared in
/// the destination's type on every side, so that a faithful copy is equal (its canonical text,
/// `a0ee…` of `A0EE…`, `t` of `TRUE`, differed: exit 4 for ever, types44 F1) — and a numeric the
/// destination rounded still differs.
#[test]
fn job_verify_compares_text_read_into_a_typed_column_in_that_type() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE tx (id int, b text, n varchar(10), u text, ip text, d text);
         INSERT INTO tx VALUES (1, 'TRUE', ' 42', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11',
           '10.1.2.3/32', '1.20'), (2, NULL, NULL, NULL, NULL, NULL);",
    );
    let typed = "CREATE TABLE tx (id int, b bool, n int, u uuid, ip inet, d numeric(10,2));";
    let d0 = database(&c.dest[0], typed);
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&d0));
    let state = TempPath::new("verify-text-typed.state");
    let job = |extra: &[&str]| one_table(&from, &to, "tx", &state, extra);
    assert_exit(&job(&["--verify"]), 0);
    // A value rounded there is no faithful copy: still found.
    c.source
        .connect(&src)
        .batch_execute("UPDATE tx SET d = '1.255' WHERE id = 1")
        .unwrap();
    let out = job(&["--verify", "--truncate"]);
    assert_exit(&out, 4);
    assert!(
        text(&out.stderr).contains("checksum differs"),
        "{}",
        text(&out.stderr)
    );
    // One destination in uuid, another in text: compared each in its own way, so that the text
    // one's faithful copy of a value the uuid one refused is verified (the uuid cast failed
    // there, exit 4 for ever, recheck44b F3).
    let src2 = database(
        &c.source,
        "CREATE TABLE mix (id int, u text); INSERT INTO mix VALUES (1, 'not-a-uuid');",
    );
    let as_uuid = database(&c.dest[0], "CREATE TABLE mix (id int, u uuid);");
    let as_text = database(&c.dest[1], "CREATE TABLE mix (id int, u text);");
    let state2 = TempPath::new("verify-mixed.state");
    let out = run(&[
        "--json",
        "table",
        "mix",
        "--from",
        &c.source.conninfo(&src2),
        "--to",
        &c.dest[0].conninfo(&as_uuid),
        "--to",
        &c.dest[1].conninfo(&as_text),
        "--verify",
        "--keep-going",
        "--state",
        state2.arg(),
    ]);
    assert_exit(&out, 4);
    let report = json(&out);
    assert!(
        records(&report, "\"public\".\"mix\"")
            .iter()
            .any(|r| r["server"] == "destination 2" && r["verified"] == true),
        "{report}"
    );
}

/// A staging table of text loaded into typed columns verifies, whatever the text's spelling:
/// floats, times, intervals, ranges, arrays, JSON, text-search vectors, points, dates and
/// timestamps (where the source's session reads dates as the destination's) — each read back
/// in the destination's canonical form (`1000` of `1e3`, `[5,16)` of `[5,15]`, `12:00:00` of
/// `12:00`) differed from every faithful copy: exit 4, and again on every resume (types46 F3).
/// A value the destination changed is still found.
#[test]
fn job_verify_compares_a_staging_tables_text_in_the_typed_columns() {
    let c = clusters();
    let columns = [
        ("f", "float8", "1.2500000000000000e0"),
        ("r", "real", "1e3"),
        ("at", "timestamp", "2026-01-06T10:00:00"),
        ("d", "date", "Jan 2 2026"),
        // Read in the order and zone both servers read them in (recheck46 F3: the checksum's
        // own YMD refused the first, or read another day).
        ("us", "date", "01/02/2026"),
        ("ambiguous", "date", "03/04/05"),
        ("at_noon", "timestamptz", "2026-01-02 12:00"),
        ("tm", "time", "12:00"),
        ("iv", "interval", "36 hours"),
        ("span", "int4range", "[5,15]"),
        ("days", "daterange", "[2026-01-01,2026-01-31]"),
        ("tags", "int[]", "{ 1 , 2 }"),
        ("words", "text[]", "{a,\"b\"}"),
        ("doc", "jsonb", "{\"b\":1, \"a\":2}"),
        ("ts", "tsvector", "b a"),
        ("p", "point", "(1, 2)"),
        // (types50 F4: these differed for ever.)
        ("cash", "money", "12.5"),
        ("spans", "int4multirange", "{[1,5]}"),
        ("q", "tsquery", "a&b"),
        ("o", "oid", "012"),
        // (recheck50b F1: these too.)
        ("cashes", "money[]", "{1.5,2}"),
        ("oids", "oid[]", "{012}"),
        ("rt", "regtype", "int4"),
        ("lsn", "pg_lsn", "0/a"),
        // (recheck51 F3: these too.)
        ("ivs", "interval[]", "{\"26 hours\"}"),
        ("tms", "time[]", "{10:00}"),
        ("tzs", "timetz[]", "{10:00+02}"),
        ("nums", "numeric[]", "{1.50,1e2}"),
        ("ips", "inet[]", "{10.0.0.1/32}"),
        ("drs", "daterange[]", "{\"[2024-01-01,2024-01-05]\"}"),
        ("raw", "bytea", "abc"),
        ("raws", "bytea[]", "{abc}"),
        ("macs", "macaddr8[]", "{08002B0102030405}"),
        // (recheck51b F3: these too; a scale's zeros are not a change, nor a char's padding.)
        ("pads", "char(3)[]", "{ab}"),
        ("docs", "xml[]", "{<a/>}"),
        ("scaled", "numeric(5,2)[]", "{1.5,2,NULL}"),
    ];
    let text_columns: Vec<String> = columns
        .iter()
        .map(|(n, _, _)| format!("{n} text"))
        .collect();
    let typed_columns: Vec<String> = columns.iter().map(|(n, t, _)| format!("{n} {t}")).collect();
    let values: Vec<String> = columns.iter().map(|(_, _, v)| format!("'{v}'")).collect();
    let src = database(
        &c.source,
        &format!(
            "CREATE TABLE stg (id int, {}); INSERT INTO stg VALUES (1, {}), (2{});",
            text_columns.join(", "),
            values.join(", "),
            ", NULL".repeat(columns.len())
        ),
    );
    let typed = format!("CREATE TABLE stg (id int, {});", typed_columns.join(", "));
    let d0 = database(&c.dest[0], &typed);
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&d0));
    let state = TempPath::new("verify-staging.state");
    let job = |extra: &[&str]| one_table(&from, &to, "stg", &state, extra);
    let out = job(&["--verify"]);
    assert_exit(&out, 0);
    // A value changed there is found.
    c.dest[0]
        .connect(&d0)
        .batch_execute("UPDATE stg SET span = '[5,17)' WHERE id = 1")
        .unwrap();
    let out = job(&["--verify", "--resume"]);
    assert_exit(&out, 4);
    assert!(
        text(&out.stderr).contains("checksum differs"),
        "{}",
        text(&out.stderr)
    );
}

/// Text from `char(n)`, `name` and `citext` columns, text into a domain over a date, an
/// interval or a zoned time, or into an array of one, and a zone written as an abbreviation a
/// destination reads in its own `timezone_abbreviations`: each compared as the destination read
/// it (recheck51 F1, F3, recheck51b F3: exit 4 for ever; the `citext` one could not be computed
/// on a destination without the extension).
#[test]
fn job_verify_compares_text_read_into_domains_and_zone_abbreviations() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE EXTENSION citext;
         CREATE TABLE dm (id int, c char(12), n name, d text, i text, z text, ist text,
           ds text, zs text, ci citext);
         INSERT INTO dm VALUES (1, '2024-3-4', '2024-3-4', '2024-3-4', '26 hours',
           '2024-03-04 10:00+00', '2024-03-04 12:00 IST', '{2024-3-4}',
           '{\"2024-03-04 10:00+00\"}', '2024-3-4');",
    );
    let d0 = database(
        &c.dest[0],
        "CREATE DOMAIN dd AS date; CREATE DOMAIN di AS interval; CREATE DOMAIN dz AS timestamptz;
         CREATE TABLE dm (id int, c date, n date, d dd, i di, z dz, ist timestamptz, ds dd[],
           zs dz[], ci date);",
    );
    let to = format!(
        "{} options='-c timezone_abbreviations=India'",
        c.dest[0].conninfo(&d0)
    );
    let state = TempPath::new("verify-domains.state");
    let out = one_table(&c.source.conninfo(&src), &to, "dm", &state, &["--verify"]);
    assert_exit(&out, 0);
    assert!(
        text(&out.stderr).contains("1 verified"),
        "{}",
        text(&out.stderr)
    );
    let india = "(SELECT 1 FROM dm WHERE ist = '2024-03-04 06:30+00')";
    assert_eq!(count(&c.dest[0], &d0, india), 1);
}

/// Arrays of numbers into arrays of another scale, a domain over text and a `citext[]` into
/// dates: compared by value (recheck52 F2: `{1.5}` and `{1.50}` differed, `numeric(4,1)[]` was
/// cast as one number, the domain's and citext[]'s checksums could not be computed on a
/// destination without them: exit 4 for ever); a value changed there is still found.
#[test]
fn job_verify_compares_arrays_of_numbers_and_strings_of_the_sources_own_types() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE EXTENSION citext; CREATE DOMAIN sd AS text;
         CREATE TABLE na (id int, n numeric[], i int[], s numeric(4,1)[], d sd, ca citext[]);
         INSERT INTO na VALUES (1, '{1.5,2,NULL}', '{1,NULL}', '{1.5}', '2024-3-4', '{2024-3-4}'),
           (2, NULL, NULL, NULL, NULL, NULL);",
    );
    let d0 = database(
        &c.dest[0],
        "CREATE TABLE na (id int, n numeric(5,2)[], i numeric(5,2)[], s numeric(5,2)[], d date,
           ca date[]);",
    );
    let state = TempPath::new("verify-number-arrays.state");
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&d0));
    let out = one_table(&from, &to, "na", &state, &["--verify"]);
    assert_exit(&out, 0);
    c.dest[0]
        .connect(&d0)
        .batch_execute("UPDATE na SET s = '{1.6}' WHERE id = 1")
        .unwrap();
    let out = one_table(&from, &to, "na", &state, &["--verify", "--resume"]);
    assert_exit(&out, 4);
    assert!(
        text(&out.stderr).contains("checksum differs"),
        "{}",
        text(&out.stderr)
    );
}

/// Domains on either side — over a numeric array, an integer, citext on the source; over a
/// numeric array of another scale on the destination —: compared as their base types
/// (recheck52b F1: differed, or could not be computed on a destination without the source's
/// types, exit 4 for ever); a value changed there is still found.
#[test]
fn job_verify_compares_domains_on_either_side_as_their_base_types() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE EXTENSION citext; CREATE DOMAIN dn AS numeric[]; CREATE DOMAIN di AS int;
         CREATE DOMAIN scit AS citext;
         CREATE TABLE dm (id int, a dn, b di, t scit);
         INSERT INTO dm VALUES (1, '{1.5,NULL}', 7, '2024-3-4'), (2, NULL, NULL, NULL);",
    );
    let d0 = database(
        &c.dest[0],
        "CREATE DOMAIN dd AS numeric(6,2)[];
         CREATE TABLE dm (id int, a dd, b numeric(6,2), t date);",
    );
    let state = TempPath::new("verify-domains-either-side.state");
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&d0));
    let out = one_table(&from, &to, "dm", &state, &["--verify"]);
    assert_exit(&out, 0);
    c.dest[0]
        .connect(&d0)
        .batch_execute("UPDATE dm SET b = 8 WHERE id = 1")
        .unwrap();
    let out = one_table(&from, &to, "dm", &state, &["--verify", "--resume"]);
    assert_exit(&out, 4);
    assert!(
        text(&out.stderr).contains("checksum differs"),
        "{}",
        text(&out.stderr)
    );
}

/// Domains of the source's over types whose text a setting prints (a date, an interval, a
/// bytea, a timestamptz) into their base types on a destination without the domains: read
/// back there as the base types (types69 F13: in the source's domain, 42704 there, a faithful
/// copy failed --verify for ever, exit 4); a value changed there is still found.
#[test]
fn job_verify_reads_back_a_domain_over_a_printed_type_as_its_base_type() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE DOMAIN dd AS date; CREATE DOMAIN di AS interval; CREATE DOMAIN db AS bytea;
         CREATE DOMAIN dz AS timestamptz;
         CREATE TABLE dv (id int, d dd, i di, b db, z dz);
         INSERT INTO dv VALUES (1, '2024-01-01', '-1 day -2 hours', '\\x0102',
                                '2024-01-01 12:00+02'), (2, NULL, NULL, NULL, NULL);",
    );
    let d0 = database(
        &c.dest[0],
        "CREATE TABLE dv (id int, d date, i interval, b bytea, z timestamptz);",
    );
    let state = TempPath::new("verify-domain-bases.state");
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&d0));
    let out = one_table(&from, &to, "dv", &state, &["--verify"]);
    assert_exit(&out, 0);
    c.dest[0]
        .connect(&d0)
        .batch_execute("UPDATE dv SET d = '2024-01-02' WHERE id = 1")
        .unwrap();
    let out = one_table(&from, &to, "dv", &state, &["--verify", "--resume"]);
    assert_exit(&out, 4);
    assert!(
        text(&out.stderr).contains("checksum differs"),
        "{}",
        text(&out.stderr)
    );
}

/// A job of `table` alone from `from` to `to` with its state in `state`, and `extra` after.
fn one_table(
    from: &str,
    to: &str,
    table: &str,
    state: &TempPath,
    extra: &[&str],
) -> std::process::Output {
    let mut args = vec![
        "table",
        table,
        "--from",
        from,
        "--to",
        to,
        "--state",
        state.arg(),
    ];
    args.extend(extra);
    run(&args)
}

/// A number copied into `money`, an integer into `boolean`: `--verify` compares what the
/// destination made of each (types50 F4: 12.50 and `$12.50` differed, exit 4, for ever); a
/// value changed there is still found.
#[test]
fn job_verify_compares_numbers_loaded_as_money() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE m (id int, amount numeric(10,2), whole int, flag int, small smallint,
           big bigint, f real);
         INSERT INTO m VALUES (1, 12.50, 12, 1, 1, 1, 12.5), (2, NULL, NULL, 0, 0, 0, NULL);",
    );
    // (recheck50b F1: smallint and bigint into boolean, a real into money, could not be
    // compared at all.)
    let d0 = database(
        &c.dest[0],
        "CREATE TABLE m (id int, amount money, whole money, flag bool, small bool, big bool,
           f money);",
    );
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&d0));
    let state = TempPath::new("verify-money.state");
    let job = |extra: &[&str]| one_table(&from, &to, "m", &state, extra);
    let out = job(&["--verify"]);
    assert_exit(&out, 0);
    c.dest[0]
        .connect(&d0)
        .batch_execute("UPDATE m SET amount = 12.51 WHERE id = 1")
        .unwrap();
    let out = job(&["--verify", "--resume"]);
    assert_exit(&out, 4);
    // A value the money rounded differs, as a numeric's rounding does.
    let src = database(
        &c.source,
        "CREATE TABLE r (id int, amount numeric(10,3)); INSERT INTO r VALUES (1, 12.505);",
    );
    let d1 = database(&c.dest[0], "CREATE TABLE r (id int, amount money);");
    let state = TempPath::new("verify-money-rounded.state");
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&d1));
    assert_exit(&one_table(&from, &to, "r", &state, &["--verify"]), 4);
}

/// `--verify` of columns the destination holds in a type read back otherwise (types36 F2, F4):
/// a `timestamp` or `date` in a `timestamptz` and the reverse, between databases of one zone
/// other than UTC, is its wall clock in the zone the copy read it in (the checksum's UTC read
/// another one: a faithful copy said to differ, exit 4, for ever); an enum in `text` and an
/// extension's type of another schema there are compared as text (read back in the source's
/// type, the destination lacked it: 42704, exit 4, for ever). A changed value is still found.
#[test]
fn job_verify_compares_zoned_times_and_types_the_destination_lacks() {
    let c = clusters();
    let zone = "SELECT pg_catalog.set_config('TimeZone', 'Europe/Paris', false);";
    let src = database(
        &c.source,
        "CREATE TYPE mood AS ENUM ('ok', 'sad');
         CREATE DOMAIN tag AS text CHECK (VALUE <> '');
         CREATE TABLE ts (id int PRIMARY KEY, t timestamp, d date, z timestamptz, m mood, g tag);
         INSERT INTO ts VALUES
           (1, '2024-06-01 12:00', '2024-06-01', '2024-06-01 12:00+02', 'ok', 'x'),
           (2, '2024-12-31 23:30', '2024-12-31', '2024-01-01 00:30+00', 'sad', 'y'),
           (3, NULL, NULL, NULL, NULL, NULL);",
    );
    let dst = database(
        &c.dest[0],
        "CREATE SCHEMA other; CREATE DOMAIN other.tag AS text;
         CREATE TABLE ts (id int PRIMARY KEY, t timestamptz, d timestamptz, z timestamp,
           m text, g other.tag);",
    );
    for (cluster, db) in [(&c.source, &src), (&c.dest[0], &dst)] {
        cluster
            .connect(db)
            .batch_execute(&format!(
                "ALTER DATABASE {db} SET TimeZone = 'Europe/Paris'; {zone}"
            ))
            .unwrap();
    }
    let state = TempPath::new("verify-zones.state");
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
    let job = |extra: &[&str]| {
        let mut args = vec![
            "--json", "table", "ts", "--from", &from, "--to", &to, "--state",
        ];
        args.push(state.arg());
        args.extend(extra);
        run(&args)
    };
    let out = job(&["--verify"]);
    assert_exit(&out, 0);
    let report = json(&out);
    for r in records(&report, "\"public\".\"ts\"") {
        assert_eq!(r["verified"], true, "{report}");
    }
    // A changed value there is still a mismatch.
    c.dest[0]
        .connect(&dst)
        .batch_execute("UPDATE ts SET m = 'happy' WHERE id = 1")
        .unwrap();
    let out = job(&["--resume", "--verify"]);
    assert_exit(&out, 4);
    assert!(
        records(&json(&out), "\"public\".\"ts\"")
            .iter()
            .any(|r| r["verified"] == false),
        "{}",
        text(&out.stdout)
    );
}

/// A table `--verify` found different on a destination (an append: it held a row of its own)
/// is left out of a resume by `--exclude-table`, as the refusal of a plain resume advises: the
/// resume finds the earlier run's default state file (named for the selection without the
/// pattern it adds), says the table stays as it is there, and finishes the rest. Every way of
/// leaving it out was refused, and the default state file was not found at all.
#[test]
fn a_table_verify_found_different_is_left_out_of_a_resume_by_exclude_table() {
    let c = clusters();
    let schema = "CREATE TABLE t1 (id int); CREATE TABLE t2 (id int);";
    let src = database(
        &c.source,
        &format!(
            "{schema} INSERT INTO t1 SELECT generate_series(1, 10);
             INSERT INTO t2 SELECT generate_series(1, 20);"
        ),
    );
    let d1 = database(&c.dest[0], &format!("{schema} INSERT INTO t1 VALUES (99);"));
    let cache = TempDir::new("exclude-resume-cache");
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&d1));
    let job = |extra: &[&str]| {
        copyman()
            .env("XDG_CACHE_HOME", &cache.0)
            .args([
                "table", "t1", "t2", "--from", &from, "--to", &to, "--verify",
            ])
            .args(extra)
            .output()
            .unwrap()
    };
    // t2 waits on a lock the first time, so that the job stops with t2 not done.
    let mut holder = c.dest[0].connect(&d1);
    holder
        .batch_execute("BEGIN; LOCK t2 IN SHARE MODE")
        .unwrap();
    let first = job(&["--lock-timeout", "1s"]);
    holder.batch_execute("ROLLBACK").unwrap();
    assert_ne!(first.status.code(), Some(0), "{}", text(&first.stderr));
    // A resume (it verifies, as its job does) compares t1 again, which still differs, and
    // copies t2: said with the ways on.
    let again = job(&["--resume"]);
    assert_exit(&again, 4);
    assert!(
        text(&again.stderr).contains("compared again (--verify), not copied")
            && text(&again.stderr).contains("or leave it out (--exclude-table)"),
        "{}",
        text(&again.stderr)
    );
    assert_eq!(count(&c.dest[0], &d1, "t2"), 20);
    let out = job(&["--resume", "--exclude-table", "t1"]);
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            r#""public"."t1": left out by --exclude-table on this resume; it stays as it is on destination 1"#
        ),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &d1, "t2"), 20);
    assert_eq!(count(&c.dest[0], &d1, "t1"), 11);
}

/// A `--verify` job resumed while its source is live: a table the first run copied and
/// verified (against its own snapshot) is compared with the checksum recorded then, not with
/// the source as it is now — it was called different, un-recorded, and the next resume
/// refused (a job against a live source could never be resumed to exit 0).
#[test]
fn a_verified_table_is_not_called_different_because_the_source_changed_since() {
    let c = clusters();
    let schema = "CREATE TABLE la (id int PRIMARY KEY, v int); CREATE TABLE lb (id int);";
    let src = database(
        &c.source,
        &format!(
            "{schema} INSERT INTO la SELECT g, g FROM generate_series(1, 100) g;
             INSERT INTO lb SELECT generate_series(1, 10);"
        ),
    );
    // lb fails on the destination at first (a row its CHECK refuses).
    let dst = database(
        &c.dest[0],
        &format!("{schema} ALTER TABLE lb ADD CONSTRAINT small CHECK (id < 10);"),
    );
    let state = TempPath::new("live-verify.state");
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
    let job = |extra: &[&str]| {
        let args = [
            "--json",
            "table",
            "la",
            "lb",
            "--from",
            &from,
            "--to",
            &to,
            "--state",
            state.arg(),
            "--verify",
            "--keep-going",
        ];
        run(&[&args[..], extra].concat())
    };
    assert_exit(&job(&[]), 4);
    assert_eq!(count(&c.dest[0], &dst, "la"), 100);
    // The source goes on living; the destination's obstacle is mended.
    c.source
        .connect(&src)
        .batch_execute("UPDATE la SET v = v + 1 WHERE id <= 10")
        .unwrap();
    c.dest[0]
        .connect(&dst)
        .batch_execute("ALTER TABLE lb DROP CONSTRAINT small")
        .unwrap();
    let out = job(&["--resume"]);
    assert_exit(&out, 0);
    let report = json(&out);
    let la = records(&report, r#""public"."la""#);
    assert_eq!(la[0]["status"], "already done", "{report}");
    assert_eq!(la[0]["verified"], true, "{report}");
    assert_eq!(count(&c.dest[0], &dst, "lb"), 10);
    // A change on the destination since is still found.
    c.dest[0]
        .connect(&dst)
        .batch_execute("DELETE FROM la WHERE id = 50")
        .unwrap();
    let out = job(&["--resume"]);
    assert_exit(&out, 4);
    let report = json(&out);
    let la = records(&report, r#""public"."la""#);
    assert_eq!(la[0]["verified"], false, "{report}");
    assert!(
        la[0]["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("it changed there since")),
        "{report}"
    );
}

/// A `--verify` job stopped between a table's COMMIT and its comparison, its source written to
/// since: the resume compares the destination with the source as the stopped run read it
/// (recorded with its commit), not as it is now — the faithful copy was called different and
/// every later resume refused it (resume38 F7).
#[test]
fn a_verified_table_committed_before_its_comparison_is_compared_with_the_source_as_read() {
    let c = clusters();
    let schema = "CREATE TABLE a (id int); CREATE TABLE b (id int);";
    let src = database(
        &c.source,
        &format!(
            "{schema} INSERT INTO a SELECT generate_series(1, 100);
             INSERT INTO b SELECT generate_series(1, 10);"
        ),
    );
    let d1 = database(&c.dest[0], schema);
    let state = TempPath::new("verify-window.state");
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&d1));
    let args = [
        "table",
        "a",
        "b",
        "--from",
        &from,
        "--to",
        &to,
        "--state",
        state.arg(),
        "--jobs",
        "1",
        "--verify",
    ];
    Paused::start(&args, "committed:1").kill();
    let held = count(&c.dest[0], &d1, "a") + count(&c.dest[0], &d1, "b");
    assert!(held == 100 || held == 10, "one table committed: {held}");
    // The source moves on.
    c.source
        .connect(&src)
        .batch_execute("INSERT INTO a VALUES (101); INSERT INTO b VALUES (11);")
        .unwrap();
    let mut resume = args.to_vec();
    resume.push("--resume");
    let out = copyman().args(&resume).output().unwrap();
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("differs"), "{stderr}");
    // The table committed before keeps the rows as read then; the other is read now.
    let (a, b) = (count(&c.dest[0], &d1, "a"), count(&c.dest[0], &d1, "b"));
    assert!((a, b) == (100, 11) || (a, b) == (101, 10), "{a} {b}");
}

/// A job that took long to plan (its source table locked by another session for 1.5 s) says
/// so beside its copy's time: it said "in 0.0 s" of a job that sat 10 s planning (progress45 F6).
#[test]
fn a_job_that_took_long_to_plan_says_so() {
    let c = clusters();
    let schema = "CREATE TABLE pl (id int);";
    let src = database(
        &c.source,
        &format!("{schema} INSERT INTO pl VALUES (1), (2);"),
    );
    let dst = database(&c.dest[0], schema);
    let state = TempPath::new("long-planning.state");
    let mut holder = c.source.connect(&src);
    holder
        .batch_execute("BEGIN; LOCK TABLE pl IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let release = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(1500));
        holder.batch_execute("COMMIT").unwrap();
    });
    let out = run(&[
        "table",
        "pl",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&dst),
        "--state",
        state.arg(),
    ]);
    release.join().unwrap();
    assert_exit(&out, 0);
    assert!(
        text(&out.stderr).contains(" s of planning)"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &dst, "pl"), 2);
}

/// A table done whose checksum cannot be computed on a destination for a reason a resume meets
/// again (a column dropped there) is not answered with "run again with --resume to copy what is
/// missing", which did the same again, exit 4, for ever (jobs46 F2): mend it, or leave it out.
#[test]
fn a_checksum_that_cannot_be_computed_again_and_again_is_said_with_its_ways_out() {
    let c = clusters();
    let tables = "CREATE TABLE a (id int, n int); CREATE TABLE b (id int);";
    let src = database(
        &c.source,
        &format!(
            "{tables} INSERT INTO a SELECT g, g FROM generate_series(1, 50) g; \
             INSERT INTO b SELECT generate_series(1, 5);"
        ),
    );
    let d0 = database(&c.dest[0], tables);
    let state = TempPath::new("uncomparable.state");
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&d0));
    let job = |extra: &[&str]| {
        let mut args = vec!["table", "-t", "a", "-t", "b", "--from", &from, "--to", &to];
        args.extend(["--verify", "--state", state.arg()]);
        args.extend(extra);
        run(&args)
    };
    assert_exit(&job(&[]), 0);
    c.dest[0]
        .connect(&d0)
        .batch_execute("ALTER TABLE a DROP COLUMN n")
        .unwrap();
    let out = job(&["--resume"]);
    assert_exit(&out, 4);
    let said = text(&out.stdout) + &text(&out.stderr);
    assert!(
        said.contains("cannot be computed on a destination for a reason a resume meets again")
            && said.contains("--exclude-table")
            && !said.contains("to copy what is missing"),
        "{said}"
    );
    // Left out, the rest is done.
    assert_exit(&job(&["--resume", "--exclude-table", "a"]), 0);
}

/// A destination's `--verify` checksum of a committed table that runs long (its backend
/// stopped here) is said, again and again, with what its backend does — it was waited for in
/// silence (recheck48b F4); once it runs again the job ends as before. The destination is a
/// cluster of its own: a backend stopped mid-scan may hold a lock other tests' sessions need.
#[test]
fn a_destinations_verify_checksum_that_runs_long_is_said() {
    let c = clusters();
    let own = copyman_testkit::Cluster::start();
    let src = database(
        &c.source,
        "CREATE TABLE big (id int); INSERT INTO big SELECT generate_series(1, 1000000);",
    );
    let d1 = database(&own, "CREATE TABLE big (id int);");
    let state = TempPath::new("verify-long.state");
    let mut child = copyman()
        .args(["table", "-t", "big", "--verify", "--from"])
        .arg(c.source.conninfo(&src))
        .arg("--to")
        .arg(own.conninfo(&d1))
        .args(["--state", state.arg()])
        .env("COPYMAN_TEST_SAY_AFTER", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = StderrLines::take(&mut child);
    let mut monitor = own.connect("postgres");
    let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let pid: i32 = loop {
        let rows = monitor
            .query(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND state = 'active' \
                 AND query LIKE '%md5(%'",
                &[&d1],
            )
            .unwrap();
        if let Some(row) = rows.first() {
            break row.get(0);
        }
        assert!(
            std::time::Instant::now() < until,
            "no checksum seen on the destination"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let signal = |sig: &str| {
        std::process::Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .unwrap()
    };
    signal("-STOP");
    let said = stderr.wait_for("--verify of table \"public\".\"big\": backend");
    signal("-CONT");
    let said = said.unwrap_or_else(|| panic!("not said: {}", stderr.seen()));
    assert!(
        said.contains("copyman: job 1 waits ") && said.contains("the table is committed there"),
        "{said}"
    );
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{}", stderr.rest());
    assert_eq!(count(&own, &d1, "big"), 1_000_000);
}

/// A table an earlier run's `--verify` found different, mended by hand since: a resume with
/// `--verify` compares it again — done once it matches, not copied — where the only ways on
/// were copying it again with `--truncate` or leaving it out (sweep58 F2). Still different, it
/// is said so again, nothing changed.
#[test]
fn a_table_found_different_and_mended_is_done_once_a_resume_verifies_it() {
    let c = clusters();
    let table = "CREATE TABLE t (id int PRIMARY KEY, v text);";
    let src = database(
        &c.source,
        &format!("{table} INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 100) g;"),
    );
    let d0 = database(&c.dest[0], table);
    let d1 = database(&c.dest[1], table);
    let state = TempPath::new("mended.state");
    let (from, to0, to1) = (
        c.source.conninfo(&src),
        c.dest[0].conninfo(&d0),
        c.dest[1].conninfo(&d1),
    );
    let job = |extra: &[&str]| {
        let mut args = vec![
            "--json", "table", "t", "--from", &from, "--to", &to0, "--to", &to1, "--state",
        ];
        args.push(state.arg());
        args.extend(extra);
        run(&args)
    };
    assert_exit(&job(&[]), 0);
    let set = |v: &str| {
        c.dest[1]
            .connect(&d1)
            .batch_execute(&format!("UPDATE t SET v = '{v}' WHERE id = 42"))
            .unwrap();
    };
    set("by hand");
    assert_exit(&job(&["--resume", "--verify"]), 4);
    // Compared again while it still differs: said again, nothing copied.
    let out = job(&["--resume", "--verify"]);
    assert_exit(&out, 4);
    let report = json(&out);
    let t = records(&report, r#""public"."t""#);
    assert_eq!(t[1]["verified"], false, "{report}");
    assert!(
        text(&out.stderr).contains("compared again (--verify), not copied"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        count(&c.dest[1], &d1, "(SELECT * FROM t WHERE v = 'by hand')"),
        1
    );
    // Stopped before it is compared: still different, not "already done".
    let args: Vec<String> = [
        "--json", "table", "t", "--from", &from, "--to", &to0, "--to", &to1,
    ]
    .iter()
    .map(ToString::to_string)
    .chain(["--state", state.arg(), "--resume", "--verify"].map(String::from))
    .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut paused = Paused::start(&args, "planned");
    let mut stderr = StderrLines::take(&mut paused.child);
    signal(&paused.child, "INT");
    stderr.expect("SIGINT received");
    let out = paused.resume();
    assert_exit(&out, 130);
    let report = json(&out);
    let t = records(&report, r#""public"."t""#);
    assert_eq!(t[1]["status"], "differs", "{report}");
    assert!(
        t[1]["error"].to_string().contains("not compared again"),
        "{report}"
    );
    // Mended: done once compared, and the next resume needs nothing.
    set("v42");
    let out = job(&["--resume", "--verify"]);
    assert_exit(&out, 0);
    let report = json(&out);
    let t = records(&report, r#""public"."t""#);
    assert_eq!(t[1]["verified"], true, "{report}");
    let out = job(&["--resume"]);
    assert_exit(&out, 0);
    assert!(
        !text(&out.stderr).contains("differs"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(digest(&c.dest[1], &d1, "t"), digest(&c.source, &src, "t"));
    assert_eq!(count(&c.dest[1], &d1, "t"), 100);
}

/// Off a terminal, `--progress` prints its line while a table's `--verify` checksum takes the
/// time and no row moves, naming that step: a log went 38 s of 68 without a word, its last
/// line counting the rows as if the copy still ran (progress62 F12).
#[test]
fn a_jobs_progress_lines_name_the_verify_step_that_takes_the_time() {
    let c = clusters();
    let schema = "CREATE TABLE vs (id int PRIMARY KEY);";
    let src = database(
        &c.source,
        &format!("{schema} INSERT INTO vs SELECT generate_series(1, 100);"),
    );
    let d1 = database(&c.dest[0], schema);
    let state = TempPath::new("verify-step.state");
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&d1));
    let args = [
        "table",
        "vs",
        "--from",
        &from,
        "--to",
        &to,
        "--verify",
        "--progress",
        "--state",
        state.arg(),
    ];
    let paused = Paused::start(&args, "committed:1");
    // Committed: the destination's checksum, next, waits for a lock taken now.
    let mut holder = c.dest[0].connect(&d1);
    holder
        .batch_execute("BEGIN; LOCK TABLE vs IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let done = paused.resume_in_background();
    // Longer than the 5 s between two lines.
    std::thread::sleep(std::time::Duration::from_secs(7));
    holder.batch_execute("COMMIT").unwrap();
    let out = done.join().unwrap();
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    assert!(
        stderr.lines().any(|l| l.starts_with("copyman: ")
            && l.contains(" s: 0/1 tables, 100 rows")
            && l.contains(r#"; "public"."vs": verifying: its checksum on destination 1 ("#)),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &d1, "vs"), 100);
}
