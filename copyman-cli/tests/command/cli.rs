//! The `copyman` binary against real PostgreSQL clusters (copyman-testkit): one source and two
//! destination clusters shared by the whole test binary, fresh databases in every test.

use crate::common;

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;

use common::*;

#[test]
fn table_fans_out_to_two_destinations() {
    let c = clusters();
    let src = database(&c.source, &format!("{ITEMS}{FILL_ITEMS} ANALYZE items;"));
    let d1 = database(&c.dest[0], ITEMS);
    let d2 = database(&c.dest[1], ITEMS);
    let out = run(&[
        "table",
        "items",
        "--from",
        &c.source.url(&src),
        "--to",
        &c.dest[0].conninfo(&d1),
        "--to",
        &c.dest[1].url(&d2),
        "--json",
    ]);
    assert_exit(&out, 0);
    let summary = json(&out);
    assert_eq!(summary["status"], "ok");
    assert_eq!(summary["rows"], 1000);
    assert_eq!(summary["format"], "binary", "same major version: binary");
    for d in summary["destinations"].as_array().unwrap() {
        assert_eq!(d["status"], "committed");
        assert_eq!(d["command_tag"], "COPY 1000");
    }
    let expected = digest(&c.source, &src, "items");
    assert_eq!(expected.0, 1000);
    assert_eq!(digest(&c.dest[0], &d1, "items"), expected);
    assert_eq!(digest(&c.dest[1], &d2, "items"), expected);
    // The human summary went to stderr, without passwords.
    let stderr = text(&out.stderr);
    assert!(stderr.contains("copied 1,000 rows"), "{stderr}");
    assert!(!stderr.contains(c.source.password()), "{stderr}");
    // Each destination named as it resolved: user@host:port/dbname.
    let named = format!("postgres@127.0.0.1:{}/{d1}", c.dest[0].port());
    assert!(stderr.contains(&named), "{stderr}");
}

#[test]
fn table_options_columns_where_truncate_format() {
    let c = clusters();
    let src = database(&c.source, &format!("{ITEMS}{FILL_ITEMS}"));
    let dest_sql = "CREATE TABLE items (id int8 PRIMARY KEY, name text, extra text DEFAULT 'd');
                    INSERT INTO items VALUES (-1, 'old', 'old'), (-2, 'old', 'old');";
    let d1 = database(&c.dest[0], dest_sql);
    let out = run(&[
        "table",
        "public.items",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&d1),
        "--columns",
        "id, Name",
        "--where",
        "id <= 10 AND name IS NOT NULL",
        "--truncate",
        "--format",
        "csv",
        "--quiet",
    ]);
    assert_exit(&out, 0);
    // --quiet says nothing on success but its warnings: the table emptied whole, a slice of it
    // copied back — its rows, and its columns (extra lost every value it held, unsaid).
    let named = format!("postgres@127.0.0.1:{}/{d1}", c.dest[0].port());
    assert_eq!(
        text(&out.stderr),
        format!(
            "copyman: warning: --truncate empties each destination's whole table, and --where \
             copies back only the rows where id <= 10 AND name IS NOT NULL: the destinations \
             keep no other row of it\ncopyman: warning: --truncate empties destination 1 \
             ({named})'s whole table, and --columns copies back only \"id\", \"name\": its other \
             columns (\"extra\") take their defaults (NULL where they have none) in every row\n"
        )
    );
    let rows = c.dest[0]
        .connect(&d1)
        .query("SELECT id, extra FROM items ORDER BY id", &[])
        .unwrap();
    let ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(ids, [1, 2, 3, 4, 5, 6, 8, 9, 10]);
    assert!(rows.iter().all(|r| r.get::<_, String>(1) == "d"));
}

#[test]
fn copy_with_raw_statements() {
    let c = clusters();
    let src = database(&c.source, "SELECT 1");
    let d1 = database(&c.dest[0], "CREATE TABLE a (n int, s text)");
    let d2 = database(&c.dest[1], "CREATE TABLE b (s text, n int)");
    let out = run(&[
        "copy",
        "--from",
        &c.source.url(&src),
        "--send",
        "COPY (SELECT g, 'row ' || g FROM generate_series(1, 5000) AS g) TO STDOUT",
        "--to",
        &c.dest[0].url(&d1),
        "--receive",
        "COPY a (n, s) FROM STDIN",
        "--to",
        &c.dest[1].url(&d2),
        "--receive",
        "COPY b (n, s) FROM STDIN",
        "--json",
    ]);
    assert_exit(&out, 0);
    assert_eq!(json(&out)["source"]["rows"], 5000);
    assert_eq!(count(&c.dest[0], &d1, "a"), 5000);
    let row = c.dest[1]
        .connect(&d2)
        .query_one("SELECT count(*), sum(n), max(s) FROM b", &[])
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 5000);
    assert_eq!(row.get::<_, i64>(1), 5000 * 5001 / 2);
    assert_eq!(row.get::<_, String>(2), "row 999");

    // One --receive serves every destination.
    let d3 = database(&c.dest[0], "CREATE TABLE t (n int)");
    let d4 = database(&c.dest[1], "CREATE TABLE t (n int)");
    let out = run(&[
        "copy",
        "--from",
        &c.source.url(&src),
        "--send",
        "COPY (SELECT generate_series(1, 10)) TO STDOUT",
        "--to",
        &c.dest[0].url(&d3),
        "--to",
        &c.dest[1].url(&d4),
        "--receive",
        "COPY t FROM STDIN",
    ]);
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[0], &d3, "t"), 10);
    assert_eq!(count(&c.dest[1], &d4, "t"), 10);
}

#[test]
fn csv_file_into_two_databases() {
    let c = clusters();
    let table = "CREATE TABLE people (id int PRIMARY KEY, name text, note text)";
    let d1 = database(&c.dest[0], table);
    let d2 = database(&c.dest[1], table);
    let csv = TempPath::new("people.csv");
    let mut content = String::from("id,name,note\n");
    for i in 1..=20_000 {
        // Quoted fields with commas, quotes and newlines; empty = NULL.
        content.push_str(&format!(
            "{i},\"Doe, J{i}\",\"said \"\"hi\"\"\nthen left\"\n"
        ));
    }
    content.push_str("20001,,\n");
    fs::write(&csv.0, &content).unwrap();
    let out = run(&[
        "table",
        "people",
        "--from",
        csv.arg(),
        "--to",
        &c.dest[0].url(&d1),
        "--to",
        &c.dest[1].url(&d2),
        "--header",
        "--json",
    ]);
    assert_exit(&out, 0);
    let summary = json(&out);
    assert_eq!(summary["rows"], 20_001);
    assert_eq!(summary["format"], "csv");
    for (cluster, db) in [(&c.dest[0], &d1), (&c.dest[1], &d2)] {
        let row = cluster
            .connect(db)
            .query_one("SELECT count(*), count(name), min(note) FROM people", &[])
            .unwrap();
        assert_eq!(row.get::<_, i64>(0), 20_001);
        assert_eq!(row.get::<_, i64>(1), 20_000);
        assert_eq!(row.get::<_, String>(2), "said \"hi\"\nthen left");
    }

    // The same file from stdin, into a table copyman finds by a .csv-less name.
    let d3 = database(&c.dest[0], table);
    let out = copyman()
        .args(["copy", "--from", "-", "--to", &c.dest[0].url(&d3)])
        .args(["--receive", "COPY people FROM STDIN (FORMAT csv, HEADER)"])
        .stdin(fs::File::open(&csv.0).unwrap())
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[0], &d3, "people"), 20_001);
}

#[test]
fn query_to_stdout_and_table_to_file() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE t (n int, s text); INSERT INTO t SELECT g, 's' || g FROM generate_series(1, 3) g;",
    );
    let out = run(&[
        "copy",
        "--from",
        &c.source.conninfo(&src),
        "--send",
        "COPY (SELECT n, s FROM t ORDER BY n) TO STDOUT (FORMAT csv, HEADER)",
        "--to",
        "-",
    ]);
    assert_exit(&out, 0);
    assert_eq!(text(&out.stdout), "n,s\n1,s1\n2,s2\n3,s3\n");

    let file = TempPath::new("dump.txt");
    fs::write(&file.0, "old content").unwrap();
    let out = run(&[
        "table",
        "t",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        file.arg(),
    ]);
    assert_exit(&out, 0);
    let mut lines: Vec<String> = fs::read_to_string(&file.0)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    lines.sort();
    assert_eq!(lines, ["1\ts1", "2\ts2", "3\ts3"]);

    // A failed dump leaves the existing file alone (a table that does not exist: exit 2).
    fs::write(&file.0, "old content").unwrap();
    let out = run(&[
        "table",
        "missing",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        file.arg(),
    ]);
    assert_exit(&out, 2);
    assert!(text(&out.stderr).contains("42P01"), "{}", text(&out.stderr));
    assert_eq!(fs::read_to_string(&file.0).unwrap(), "old content");
}

/// `copyman copy --from SRC --to - … ARGS` whose stdout's reader reads 1 KiB and goes away.
fn reader_goes_away(src: &str, args: &[&str]) -> std::process::Output {
    let mut child = copyman()
        .args(["copy", "--from", src, "--to", "-"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 1024];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    child.wait_with_output().unwrap()
}

/// A reader of stdout that goes away before the end (`copyman … --to - | head`, a `gzip` that
/// died) got part of the data: exit 1 with one line saying so, as pg_dump does (it exited 0,
/// and a script saw a success with a fraction of the rows).
#[test]
fn a_stdout_reader_that_goes_away_fails_the_copy() {
    let c = clusters();
    let src = database(&c.source, "SELECT 1");
    let out = reader_goes_away(
        &c.source.url(&src),
        &[
            "--send",
            "COPY (SELECT repeat('x', 100) FROM generate_series(1, 2000000)) TO STDOUT",
        ],
    );
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("stdout's reader went away after")
            && stderr.contains("the copy did not complete"),
        "{stderr}"
    );
    // A SELECT changed nothing: nothing said of the source's changes.
    assert!(!stderr.contains("DELETE"), "{stderr}");
    assert_eq!(settle_backends(&c.source, &src), Vec::<String>::new());
}

/// A `--send` moving rows out (`DELETE … RETURNING`) to a stdout whose reader goes away: the
/// source's DELETE rolls back, and the message says the rows are still there (it said only "the
/// copy did not complete": copy41 F12).
#[test]
fn a_stdout_reader_that_goes_away_from_a_delete_is_told_the_rows_stayed() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE queue (id int, v text);
         INSERT INTO queue SELECT g, repeat('p', 50) FROM generate_series(1, 200000) g",
    );
    let out = reader_goes_away(
        &c.source.url(&src),
        &["--send", "COPY (DELETE FROM queue RETURNING *) TO STDOUT"],
    );
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "(broken pipe): the copy did not complete; the source's transaction \
             rolled back: what its --send would have changed (the rows of a DELETE … RETURNING) \
             is as it was"
        ),
        "{stderr}"
    );
    assert_eq!(count(&c.source, &src, "queue"), 200_000);
    assert_eq!(settle_backends(&c.source, &src), Vec::<String>::new());
}

/// What went out before stdout's reader went away is what the pipe took, part of a large row
/// too: a 20 MB row handed to a pipe that took 64 KiB was said as "went away after 19.07 MiB"
/// (files40 F2).
#[test]
fn a_stdout_reader_that_goes_away_is_told_what_went_out() {
    let c = clusters();
    let src = database(&c.source, "SELECT 1");
    let out = reader_goes_away(
        &c.source.url(&src),
        &[
            "--send",
            "COPY (SELECT repeat('x', 20000000) UNION ALL SELECT 'small') TO STDOUT",
        ],
    );
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("stdout's reader went away after")
            && stderr.contains("KiB (broken pipe)")
            && !stderr.contains("MiB"),
        "{stderr}"
    );
}

/// Beside a server destination, stdout's reader going away is said for what it is (it said only
/// "Broken pipe (os error 32)"), and the server rolls back: nothing committed anywhere.
#[test]
fn a_stdout_reader_that_goes_away_beside_a_server_is_said() {
    let c = clusters();
    let src = database(&c.source, "SELECT 1");
    let dst = database(&c.dest[0], "CREATE TABLE t (v text)");
    let out = reader_goes_away(
        &c.source.url(&src),
        &[
            "--to",
            &c.dest[0].conninfo(&dst),
            "--send",
            "COPY (SELECT repeat('x', 100) FROM generate_series(1, 2000000)) TO STDOUT",
            "--receive",
            "COPY t FROM STDIN",
        ],
    );
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("stdout's reader went away after")
            && stderr.contains("(broken pipe): the copy did not complete"),
        "{stderr}"
    );
    assert!(!stderr.contains("os error 32"), "{stderr}");
    assert_eq!(count(&c.dest[0], &dst, "t"), 0);
    assert_eq!(settle_backends(&c.dest[0], &dst), Vec::<String>::new());
    // Under --keep-going the server commits, and the warning as the copy goes on says it in
    // the same words (signals67 F7: "destination 1 failed: Broken pipe (os error 32)").
    let out = reader_goes_away(
        &c.source.url(&src),
        &[
            "--to",
            &c.dest[0].conninfo(&dst),
            "--send",
            "COPY (SELECT repeat('x', 100) FROM generate_series(1, 2000000)) TO STDOUT",
            "--receive",
            "COPY t FROM STDIN",
            "--keep-going",
        ],
    );
    assert_exit(&out, 4);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("its reader went away (broken pipe): the copy did not complete there; the copy goes on without it")
            && !stderr.contains("os error 32"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &dst, "t"), 2_000_000);
}

/// A destination server that failed of its own (a duplicate key at its first row) while
/// copyman was blocked writing to a slow stdout, whose reader then went away: said failed with
/// its error where its COPY ended on a frame's boundary (files42 F4: its 23505 was said
/// nowhere) — and a destination that did nothing wrong is never said failed of the filler
/// that finishes its last frame (recheck42b F2).
#[test]
fn destinations_behind_a_slow_stdout_are_said_failed_only_of_their_own_errors() {
    let c = clusters();
    // Rows larger than a pipe holds: the copy blocks writing the first to stdout, after the
    // destination (given first) took it and failed.
    let src = database(
        &c.source,
        "CREATE TABLE w (id int PRIMARY KEY, v text);
         INSERT INTO w SELECT g, repeat('y', 200000) FROM generate_series(1, 50) g;",
    );
    let dst = database(
        &c.dest[0],
        "CREATE TABLE w (id int PRIMARY KEY, v text); INSERT INTO w VALUES (1, 'there');",
    );
    // And one that did nothing wrong, whose last frame copyman finishes with a filler the
    // server reads as bytes (22021 for its zeros): rolled back, not failed of that
    // (recheck42b F2).
    let innocent = database(&c.dest[1], "CREATE TABLE w (id int PRIMARY KEY, v text)");
    let mut child = copyman()
        .args(["table", "w", "--from", &c.source.conninfo(&src), "--to"])
        .arg(c.dest[0].conninfo(&dst))
        .args(["--to", &c.dest[1].conninfo(&innocent)])
        .args(["--to", "-", "--format", "text"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    // Once the destination's COPY failed (its transaction aborted), or 15 s on: its row may
    // not have gone out whole before copyman blocked on stdout (a socket that took part of it),
    // and then only reading stdout lets it go (it waited 60 s and failed the test). Either
    // way it is said failed of its 23505 or rolled back, below.
    let mut admin = c.dest[0].connect("postgres");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while admin
        .query(
            "SELECT 1 FROM pg_stat_activity WHERE datname = $1 \
             AND state = 'idle in transaction (aborted)'",
            &[&dst],
        )
        .unwrap()
        .is_empty()
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = stdout.read(&mut [0u8; 1024]);
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    let line = |db: &str| {
        (stderr.lines())
            .find(|l| l.contains(&format!("/{db}")))
            .unwrap_or_default()
            .to_owned()
    };
    let (failed, rolled_back) = (line(&dst), line(&innocent));
    // Said failed of its 23505 where its COPY ended on a frame's boundary; where copyman had
    // to finish its last frame, what the server says after the filler cannot be told from its
    // own, and it is said rolled back, as before (core's fail_copy).
    assert!(
        (failed.trim_start().starts_with("failed") && failed.contains("SQLSTATE 23505"))
            || failed.trim_start().starts_with("rolled back"),
        "{stderr}"
    );
    assert!(
        rolled_back.trim_start().starts_with("rolled back") && !stderr.contains("22021"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &dst, "w"), 1);
    assert_eq!(count(&c.dest[1], &innocent, "w"), 0);
}

/// Source rows for the CHECK tests: 1..=n, with one negative value in the middle.
fn check_source(c: &Clusters, rows: u32) -> String {
    database(
        &c.source,
        &format!(
            "CREATE TABLE m (id int, v int);
             INSERT INTO m SELECT g, CASE WHEN g = {bad} THEN -1 ELSE g END
             FROM generate_series(1, {rows}) g;",
            bad = rows / 2 + 1
        ),
    )
}

/// Destination 1 accepts anything, destination 2 rejects negative values; both hold old rows.
fn check_destinations(c: &Clusters) -> (String, String) {
    let old = "INSERT INTO m VALUES (0, 0), (0, 0), (0, 0);";
    (
        database(
            &c.dest[0],
            &format!("CREATE TABLE m (id int, v int); {old}"),
        ),
        database(
            &c.dest[1],
            &format!("CREATE TABLE m (id int, v int CHECK (v >= 0)); {old}"),
        ),
    )
}

#[test]
fn rejected_row_aborts_every_destination() {
    let c = clusters();
    let src = check_source(c, 1000);
    let (d1, d2) = check_destinations(c);
    let out = run(&[
        "table",
        "m",
        "--from",
        &c.source.url(&src),
        "--to",
        &c.dest[0].url(&d1),
        "--to",
        &c.dest[1].url(&d2),
        "--truncate",
        "--json",
    ]);
    assert_exit(&out, 1);
    let summary = json(&out);
    assert_eq!(summary["status"], "failed");
    assert_eq!(summary["destinations"][0]["status"], "rolled back");
    assert_eq!(summary["destinations"][1]["status"], "failed");
    assert_eq!(summary["destinations"][1]["error"]["sqlstate"], "23514");
    // Truncate and copy were one transaction: the old rows are still there, and only them.
    assert_eq!(count(&c.dest[0], &d1, "m"), 3);
    assert_eq!(count(&c.dest[1], &d2, "m"), 3);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("SQLSTATE 23514"), "{stderr}");
    assert!(stderr.contains("check constraint"), "{stderr}");
    // The connections were left usable: the same copy to the good destination alone works.
    let out = run(&[
        "table",
        "m",
        "--from",
        &c.source.url(&src),
        "--to",
        &c.dest[0].url(&d1),
    ]);
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[0], &d1, "m"), 1003);
}

#[test]
fn rejected_row_with_keep_going() {
    let c = clusters();
    // Small: the error arrives when the COPY completes; large: during the stream.
    for rows in [100, 300_000] {
        let src = check_source(c, rows);
        let (d1, d2) = check_destinations(c);
        let out = run(&[
            "table",
            "m",
            "--from",
            &c.source.url(&src),
            "--to",
            &c.dest[0].url(&d1),
            "--to",
            &c.dest[1].url(&d2),
            "--truncate",
            "--keep-going",
            "--json",
        ]);
        assert_exit(&out, 4);
        let summary = json(&out);
        assert_eq!(summary["status"], "partial");
        assert_eq!(
            summary["destinations"][0]["status"], "committed",
            "{rows} rows"
        );
        assert_eq!(
            summary["destinations"][0]["command_tag"],
            format!("COPY {rows}")
        );
        assert_eq!(
            summary["destinations"][1]["status"], "failed",
            "{rows} rows"
        );
        assert_eq!(summary["destinations"][1]["error"]["sqlstate"], "23514");
        assert_eq!(count(&c.dest[0], &d1, "m"), i64::from(rows), "{rows} rows");
        assert_eq!(count(&c.dest[1], &d2, "m"), 3, "{rows} rows");
    }
}

#[test]
fn destination_missing_table_with_keep_going() {
    let c = clusters();
    let src = check_source(c, 50);
    let d1 = database(&c.dest[0], "CREATE TABLE m (id int, v int)");
    let d2 = database(&c.dest[1], "SELECT 1");
    let args = |keep: bool| {
        let mut args = vec![
            "table".to_owned(),
            "m".to_owned(),
            "--from".to_owned(),
            c.source.url(&src),
            "--to".to_owned(),
            c.dest[0].url(&d1),
            "--to".to_owned(),
            c.dest[1].url(&d2),
        ];
        if keep {
            args.push("--keep-going".to_owned());
        }
        args
    };
    // Refused before anything is sent, as a usage error (cli51 F2: exit 1, while a column
    // missing there exits 2).
    let out = copyman().args(args(false)).output().unwrap();
    assert_exit(&out, 2);
    assert!(text(&out.stderr).contains("42P01"), "{}", text(&out.stderr));
    assert_eq!(count(&c.dest[0], &d1, "m"), 0);
    // Some destinations committed, one did not: partial (exit 4), never "nothing committed".
    let out = copyman().args(args(true)).output().unwrap();
    assert_exit(&out, 4);
    assert!(
        text(&out.stderr).contains("PARTIAL: 1 of 2"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &d1, "m"), 50);
    // Under --keep-going, no destination having it: the same usage error, with what creates it
    // (recheck51 F7: exit 1, "copy failed", the way lost).
    let d3 = database(&c.dest[0], "SELECT 1");
    let (from, to3, to2) = (c.source.url(&src), c.dest[0].url(&d3), c.dest[1].url(&d2));
    let out = run(&[
        "table",
        "m",
        "--from",
        &from,
        "--to",
        &to3,
        "--to",
        &to2,
        "--keep-going",
    ]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("pg_dump --section=pre-data"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn bad_flags_exit_2() {
    for args in [
        &[
            "table", "t", "--from", "host=a", "--to", "host=b", "--bogus",
        ][..],
        &["table", "t", "--from", "host=a"],
        &[
            "copy",
            "--from",
            "host=a",
            "--to",
            "host=b",
            "--receive",
            "COPY t FROM STDIN",
        ],
        &["table", "a.b.c", "--from", "host=a", "--to", "host=b"],
        &[
            "table", "t", "--from", "host=a", "--to", "host=b", "--header", "--format", "binary",
        ],
        &[
            "table",
            "t",
            "--from",
            "host=a bogus_key=1",
            "--to",
            "host=b",
        ],
        &["nosuchcommand"],
        &[],
    ] {
        let out = run(args);
        assert_exit(&out, 2);
        assert!(!text(&out.stderr).is_empty(), "{args:?}: no message");
    }
    // A password on a bad command line is not echoed.
    let out = run(&[
        "table",
        "t",
        "--from",
        "host=a password=hunter2-secret",
        "extra-arg",
        "--to",
        "host=b",
    ]);
    assert_exit(&out, 2);
    assert!(
        !text(&out.stderr).contains("hunter2"),
        "{}",
        text(&out.stderr)
    );
    // Nor one with a blank or a quote in it, of a CONN given without its --to, which the
    // command quotes whole (cli51 F1: the part after the blank or the quote was shown), with
    // the way to give it (cli51 F3: a URL got no tip), in --json too.
    for conn in [
        "postgresql://carol:Qs ecret@127.0.0.1:1/d1",
        "postgresql://dave:Qs'ecret@127.0.0.1:1/d1",
        "host=127.0.0.1 password='Qs\\' ecret'",
    ] {
        for json in [&[][..], &["--json"][..]] {
            let mut args = json.to_vec();
            args.extend(["table", "t", "--from", "host=a", "--to", "host=b", conn]);
            let out = run(&args);
            assert_exit(&out, 2);
            let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
            assert!(
                !said.contains("ecret") && said.contains("--to CONN"),
                "{args:?}: {said}"
            );
        }
        let out = run(&["recover", "--to", "host=b", conn]);
        assert_exit(&out, 2);
        assert!(
            !text(&out.stderr).contains("ecret"),
            "{}",
            text(&out.stderr)
        );
    }
    // --help documents the exit codes.
    let out = run(&["--help"]);
    assert_exit(&out, 0);
    assert!(text(&out.stdout).contains("3  connection or authentication failure"));
}

#[test]
fn unreachable_host_exit_3() {
    // A port nobody listens on.
    let port = closed_port();
    let out = run(&[
        "table",
        "t",
        "--from",
        &format!("host=127.0.0.1 port={port} user=u dbname=d password=pw-unreachable"),
        "--to",
        "out.txt",
    ]);
    assert_exit(&out, 3);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("cannot connect to source"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(!stderr.contains("pw-unreachable"), "{stderr}");
}

/// Under --keep-going a destination that cannot be reached is left out; the advice to bring the
/// destinations level says it was never told apart from the others — it may be one of them
/// under another name, and the advice followed loaded that database twice (conn66 F14).
#[test]
fn the_level_advice_says_a_destination_was_never_reached() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE t (id int); INSERT INTO t VALUES (1);",
    );
    let dst = database(&c.dest[0], "CREATE TABLE t (id int);");
    let nowhere = format!("host=127.0.0.1 port={} user=u dbname=d", closed_port());
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
    let out = run(&[
        "table",
        "t",
        "--from",
        &from,
        "--to",
        &to,
        "--to",
        &nowhere,
        "--keep-going",
    ]);
    assert_exit(&out, 4);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("run again with only the --to of destination 2")
            && stderr.contains("destination 2 was never reached, so copyman could not tell"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &dst, "t"), 1);
}

#[test]
fn fan_out_over_verified_tls_and_clear_tls_failures() {
    let cluster = tls_cluster();
    let files = cluster.tls_files().expect("TLS cluster");
    let src = database(
        cluster,
        "CREATE TABLE t (i int8, s text); \
         INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 5000) g",
    );
    let dests = [
        database(cluster, "CREATE TABLE t (i int8, s text)"),
        database(cluster, "CREATE TABLE t (i int8, s text)"),
    ];
    let ca = files.ca_cert.display().to_string();
    // verify-full against the name the certificate is issued for; the CA from PGSSLROOTCERT.
    let conn = |db: &str| {
        format!(
            "postgresql://postgres:{}@localhost:{}/{db}?sslmode=verify-full",
            cluster.password(),
            cluster.port()
        )
    };
    let out = copyman()
        .env("PGSSLROOTCERT", &ca)
        .args(["table", "t", "--json", "--from", &conn(&src)])
        .args(["--to", &conn(&dests[0]), "--to", &conn(&dests[1])])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let expected = digest(cluster, &src, "t");
    for db in &dests {
        assert_eq!(digest(cluster, db, "t"), expected);
    }
    assert!(
        !text(&out.stdout).contains(cluster.password()),
        "password in --json"
    );

    // The wrong host name for the certificate: a connection failure that says why.
    let wrong = format!(
        "host=127.0.0.1 port={} user=postgres password={} dbname={src} sslmode=verify-full \
         sslrootcert={ca}",
        cluster.port(),
        cluster.password()
    );
    let out = run(&["table", "t", "--from", &wrong, "--to", "-"]);
    assert_exit(&out, 3);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("not valid for name"), "{stderr}");
    assert!(!stderr.contains(cluster.password()), "{stderr}");

    // No TLS against a server that insists on it: the server's words.
    let plain = wrong.replace("sslmode=verify-full", "sslmode=disable");
    let out = run(&["table", "t", "--from", &plain, "--to", "-"]);
    assert_exit(&out, 3);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("no encryption") && stderr.contains("28000"),
        "{stderr}"
    );
}

#[test]
fn wrong_password_exit_3() {
    let cluster = scram_cluster();
    let bad = format!(
        "postgresql://postgres:wrong-pass-7731@127.0.0.1:{}/postgres",
        cluster.port()
    );
    let out = run(&[
        "copy",
        "--from",
        &bad,
        "--send",
        "COPY (SELECT 1) TO STDOUT",
        "--to",
        "-",
    ]);
    assert_exit(&out, 3);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("28P01"), "{stderr}");
    assert!(!stderr.contains("wrong-pass-7731"), "{stderr}");
    assert!(
        stderr.contains("cannot connect to source postgres@127.0.0.1:"),
        "{stderr}"
    );
    let out = run(&["table", "t", "--from", &bad, "--to", "x.txt", "--json"]);
    assert_exit(&out, 3);
    let all = text(&out.stdout) + &text(&out.stderr);
    assert!(!all.contains("wrong-pass-7731"), "{all}");
    assert_eq!(json(&out)["exit_code"], 3);

    // The right password from a password file and the rest from the environment works.
    let pgpass = TempPath::new("pgpass");
    fs::write(
        &pgpass.0,
        format!(
            "127.0.0.1:{}:*:postgres:{}\n",
            cluster.port(),
            cluster.password()
        ),
    )
    .unwrap();
    fs::set_permissions(&pgpass.0, fs::Permissions::from_mode(0o600)).unwrap();
    let out = copyman()
        .args([
            "copy",
            "--from",
            "postgresql://",
            "--send",
            "COPY (SELECT 42) TO STDOUT",
            "--to",
            "-",
        ])
        .env("PGPASSFILE", &pgpass.0)
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", cluster.port().to_string())
        .env("PGUSER", "postgres")
        .env("PGDATABASE", "postgres")
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert_eq!(text(&out.stdout), "42\n");
    // A password file others can read is ignored, as libpq does.
    fs::set_permissions(&pgpass.0, fs::Permissions::from_mode(0o644)).unwrap();
    let out = copyman()
        .args([
            "copy",
            "--from",
            "postgresql://",
            "--send",
            "COPY (SELECT 42) TO STDOUT",
            "--to",
            "-",
        ])
        .env("PGPASSFILE", &pgpass.0)
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", cluster.port().to_string())
        .env("PGUSER", "postgres")
        .output()
        .unwrap();
    assert_exit(&out, 3);
    assert!(
        text(&out.stderr).contains("group or world access"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn odd_identifiers_are_quoted() {
    let c = clusters();
    let ddl = r#"CREATE SCHEMA "Mixed Schema";
        CREATE TABLE "Mixed Schema"."Odd ""Name""" ("Id" int, "va;l" text, lower_col text);"#;
    let src = database(
        &c.source,
        &format!(
            r#"{ddl} INSERT INTO "Mixed Schema"."Odd ""Name""" SELECT g, 'v' || g, 'l' FROM generate_series(1, 100) g;"#
        ),
    );
    let d1 = database(&c.dest[0], ddl);
    let d2 = database(&c.dest[1], ddl);
    let out = run(&[
        "table",
        r#""Mixed Schema"."Odd ""Name""""#,
        "--columns",
        r#""Id", "va;l""#,
        "--where",
        r#""Id" > 50"#,
        "--from",
        &c.source.url(&src),
        "--to",
        &c.dest[0].url(&d1),
        "--to",
        &c.dest[1].url(&d2),
        "--truncate",
    ]);
    assert_exit(&out, 0);
    for (cluster, db) in [(&c.dest[0], &d1), (&c.dest[1], &d2)] {
        let row = cluster
            .connect(db)
            .query_one(
                r#"SELECT count(*), min("Id"), count(lower_col) FROM "Mixed Schema"."Odd ""Name""""#,
                &[],
            )
            .unwrap();
        assert_eq!(row.get::<_, i64>(0), 50);
        assert_eq!(row.get::<_, i32>(1), 51);
        assert_eq!(row.get::<_, i64>(2), 0);
    }
}

#[test]
fn demo_verifies() {
    let out = run(&["demo", "--rows", "100000", "--destinations", "2"]);
    assert_exit(&out, 0);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("destination 1: 100000 rows, checksum matches"),
        "{stdout}"
    );
    assert!(
        stdout.contains("destination 2: 100000 rows, checksum matches"),
        "{stdout}"
    );
    assert!(stdout.contains("verified"), "{stdout}");
    assert!(stdout.contains("throughput"), "{stdout}");
}

/// The demo under cron's PATH (`/usr/bin:/bin`, no `/usr/sbin`): as root its servers run through
/// `runuser`, found where it is installed (it failed "No such file or directory", told to set
/// TMPDIR).
#[test]
fn demo_runs_under_crons_path() {
    let out = copyman()
        .args(["demo", "--rows", "1000", "--destinations", "1"])
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert!(
        text(&out.stdout).contains("verified"),
        "{}",
        text(&out.stdout)
    );
}

/// A signal stops the demo at its next step, says so and removes its clusters (it had no
/// handler: from a script, where SIGINT is ignored, the demo ran on to exit 0; from a terminal
/// it died without a word).
#[test]
fn demo_stops_on_a_signal() {
    use std::io::BufRead;
    let mut child = copyman()
        .args(["demo", "--rows", "300000", "--destinations", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut said = String::new();
    while !said.contains("started") {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "the demo ended: {said}"
        );
        said.push_str(&line);
    }
    signal(&child, "INT");
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{said}{stderr}");
    assert!(
        stderr.contains("SIGINT received: stopping the demo: its clusters are removed")
            && stderr.contains("error: interrupted by SIGINT"),
        "{stderr}"
    );
}

/// `copyman demo | head -1`: a stdout closed before the demo verified stops it with exit 1 and
/// a word on stderr (it exited 0 at once, nothing copied or verified: a smoke test passed).
#[test]
fn demo_with_its_stdout_closed_fails() {
    use std::io::BufRead;
    let mut child = copyman()
        .args(["demo", "--rows", "1000", "--destinations", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.starts_with("copyman demo:"), "{first}");
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("stdout was closed: it stopped before it verified"),
        "{stderr}"
    );
}

/// recover given a directory as its decision log exits 2 (the command's to mend), as `--atomic`
/// does, not 1, recover's "something is pending", which a script retries.
#[test]
fn recover_with_a_directory_for_its_decision_log_is_a_usage_error() {
    let dir = TempPath::new("decision-dir");
    fs::create_dir_all(&dir.0).unwrap();
    let nowhere = format!("host=127.0.0.1 port={} user=u dbname=d", closed_port());
    let out = run(&["recover", "--to", &nowhere, "--decision-log", dir.arg()]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("Is a directory"),
        "{}",
        text(&out.stderr)
    );
}

/// A dry run refuses the `--decision-log` and `--state` the run cannot write, as the run does
/// (exit 2, nothing copied): a directory, `/dev/null`, a path where no file can be made
/// (ops54 F1: each passed the dry run, exit 0, and failed the run). The run refuses the file
/// its own stdout or stderr goes to.
#[test]
fn a_dry_run_refuses_the_files_the_run_cannot_write() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE t (id int); INSERT INTO t VALUES (1);",
    );
    let dst = database(&c.dest[0], "CREATE TABLE t (id int);");
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
    let dir = TempPath::new("dry-decision-dir");
    fs::create_dir_all(&dir.0).unwrap();
    let one = [
        "table",
        "t",
        "--from",
        &from,
        "--to",
        &to,
        "--atomic",
        "--dry-run",
    ];
    for (args, said) in [
        (vec!["--decision-log", dir.arg()], "a directory"),
        (vec!["--decision-log", "/dev/null"], "not a regular file"),
        (
            vec!["--decision-log", "/proc/copyman-nope"],
            "no file can be made in /proc",
        ),
    ] {
        for jobs in [
            &[][..],
            &["--jobs", "1", "--state", "/tmp/copyman-dry.state"][..],
        ] {
            let out = run(&[&one[..], &args, jobs].concat());
            assert_exit(&out, 2);
            assert!(
                text(&out.stderr).contains(said),
                "{args:?} {jobs:?}: {}",
                text(&out.stderr)
            );
        }
    }
    let job = [
        "table",
        "t",
        "--from",
        &from,
        "--to",
        &to,
        "--jobs",
        "1",
        "--dry-run",
    ];
    let out = run(&[&job[..], &["--state", "/proc/copyman-nope"]].concat());
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("--state /proc/copyman-nope: no file can be made in /proc"),
        "{}",
        text(&out.stderr)
    );
    // A FIFO, whose open waits for its other end: refused, by a recover too (recheck54b F5: a
    // run, its dry run, a recover waited there without a word).
    let fifo = TempPath::new("dry-fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo.0)
        .status()
        .unwrap();
    assert!(made.success());
    for args in [
        [&job[..], &["--state", fifo.arg()]].concat(),
        [&one[..], &["--decision-log", fifo.arg()]].concat(),
        vec!["recover", "--to", &to, "--decision-log", fifo.arg()],
    ] {
        let out = run(&args);
        assert_exit(&out, 2);
        assert!(
            text(&out.stderr).contains("is not a regular file (a FIFO, a socket)"),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    // The file its own stdout or stderr goes to (ops54 F4: the summary written over the job's
    // records, or the decisions, without a word).
    let file = TempPath::new("dry-stdio.state");
    for (flag, extra) in [
        ("--state", &["--jobs", "1"][..]),
        ("--decision-log", &["--atomic"][..]),
    ] {
        for stderr in [false, true] {
            let redirect = || fs::File::create(&file.0).unwrap();
            let mut command = copyman();
            command
                .args(&job[..4])
                .args(["--to", &to, flag, file.arg()])
                .args(extra);
            let out = if stderr {
                command.stderr(redirect()).output().unwrap()
            } else {
                command.stdout(redirect()).output().unwrap()
            };
            assert_eq!(out.status.code(), Some(2), "{flag} {stderr}");
            let said = fs::read_to_string(&file.0).unwrap() + &text(&out.stderr);
            let which = if stderr { "stderr" } else { "stdout" };
            assert!(
                said.contains(&format!("that is the file copyman's {which} goes to")),
                "{flag}: {said}"
            );
        }
    }
    assert_eq!(count(&c.dest[0], &dst, "t"), 0);
}

/// A file whose name holds a `=` (`x=1.txt`), or a name before a `:` (`postgres:x.csv`), is
/// read as a connection string or URL: the refusal names
/// the file and the way to give it (`./x=1.txt`), which copies it. A server's Unix socket given
/// as a destination (`/run/postgresql/.s.PGSQL.5432`) is refused before connecting, with the
/// CONN that names that server: it was written to, after the source was read ("No such device
/// or address", exit 1).
#[test]
fn a_file_named_like_a_conninfo_and_a_socket_given_as_a_file_are_said() {
    let c = clusters();
    let d1 = database(&c.dest[0], "CREATE TABLE t (id int, v text);");
    let dir = TempDir::new("eq-names");
    fs::write(dir.0.join("x=1.txt"), "1\tone\n").unwrap();
    let copy = |from: &str| {
        copyman()
            .current_dir(&dir.0)
            .args(["copy", "--from", from, "--to", &c.dest[0].conninfo(&d1)])
            .args(["--receive", "COPY t FROM STDIN"])
            .output()
            .unwrap()
    };
    let out = copy("x=1.txt");
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("x=1.txt is read as a connection string")
            && stderr.contains("the file of that name is ./x=1.txt"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &d1, "t"), 0);
    assert_exit(&copy("./x=1.txt"), 0);
    assert_eq!(count(&c.dest[0], &d1, "t"), 1);
    // A file to write, not there yet: said too (one word whose key no connection has).
    let out = run(&[
        "table",
        "t",
        "--from",
        &c.dest[0].conninfo(&d1),
        "--to",
        "run=2024.csv",
    ]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("the file of that name is ./run=2024.csv"),
        "{}",
        text(&out.stderr)
    );
    // One with a ":" reads as a URL: said so, not as holding a "=" (files63 F10).
    let out = run(&[
        "table",
        "t",
        "--from",
        &c.dest[0].conninfo(&d1),
        "--to",
        "postgres:out.csv",
    ]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains(
            "postgres:out.csv is read as a connection URL (a name before a \":\"); the file of \
             that name is ./postgres:out.csv"
        ),
        "{}",
        text(&out.stderr)
    );

    let socket = c.dest[0]
        .socket_dir()
        .join(format!(".s.PGSQL.{}", c.dest[0].port()));
    let out = run(&[
        "table",
        "t",
        "--from",
        &c.dest[0].conninfo(&d1),
        "--to",
        socket.to_str().unwrap(),
    ]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("this is a server's Unix socket, not a file")
            && stderr.contains(&format!(
                "'host={} port={}'",
                c.dest[0].socket_dir().display(),
                c.dest[0].port()
            )),
        "{stderr}"
    );
    // Its directory alike, as psql's -h names it (files67 F8: "Is a directory", after the
    // source was read; with --receive, "for server destinations").
    let dir = c.dest[0].socket_dir();
    let dir = dir.to_str().unwrap();
    let from = c.dest[0].conninfo(&d1);
    for extra in [&[][..], &["--receive", "COPY t FROM STDIN"][..]] {
        let mut args = vec![
            "copy",
            "--from",
            &from,
            "--send",
            "COPY t TO STDOUT",
            "--to",
            dir,
        ];
        args.extend(extra);
        let out = run(&args);
        assert_exit(&out, 2);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("this is a directory of server sockets")
                && stderr.contains(&format!("'host={dir} port={}'", c.dest[0].port())),
            "{stderr}"
        );
    }
}

/// Under a locale that is not UTF-8 (`LC_ALL=C`, a cron job's or a minimal container's), the
/// help and copyman's words have their punctuation in ASCII (`--`, `...`): a terminal or a log
/// showed the UTF-8 bytes of `—` and `…` as garbage (scale38 F10). Under UTF-8 they stay.
#[test]
fn punctuation_is_ascii_under_a_locale_that_is_not_utf8() {
    for (locale, ascii) in [("C", true), ("POSIX", true), ("C.UTF-8", false)] {
        let help = copyman()
            .args(["table", "--help"])
            .env("LC_ALL", locale)
            .output()
            .unwrap();
        assert_exit(&help, 0);
        let shown = text(&help.stdout);
        assert_eq!(!shown.contains('—'), ascii, "{locale}: {shown}");
        assert!(shown.contains("--from"), "{locale}: {shown}");
        // It says that it creates no table, and how to set up empty destinations (first47 F9).
        assert!(
            shown.contains("and creates none")
                && shown.contains("pg_dump --section=pre-data SRC | psql DST"),
            "{locale}: {shown}"
        );
        let usage = copyman()
            .args(["copy", "--from", "host=a", "--to", "host=b"])
            .env("LC_ALL", locale)
            .output()
            .unwrap();
        assert_exit(&usage, 2);
        let said = text(&usage.stderr);
        let dots = if ascii { "..." } else { "…" };
        assert!(
            said.contains(&format!("--send 'COPY {dots} TO STDOUT' is needed")),
            "{locale}: {said}"
        );
        assert_eq!(said.is_ascii(), ascii, "{locale}: {said}");
    }
}

/// A mistyped FORMAT value is said as that, and a misspelt STDIN as a misspelt STDIN, before
/// connecting (exit 2): they were "options copyman cannot read (a dollar-quoted or U& value)"
/// and "a COPY FROM a file or program on the server" (files40 F3).
#[test]
fn a_mistyped_format_or_stdin_is_said_as_such() {
    for (receive, said) in [
        (
            "COPY t FROM STDIN (FORMAT cvs)",
            "FORMAT cvs is not a COPY format: text, csv or binary",
        ),
        (
            "COPY t FROM STIDN",
            "got COPY FROM STIDN: did you mean STDIN?",
        ),
    ] {
        let out = copyman()
            .args([
                "copy",
                "--from",
                "host=127.0.0.1 port=1",
                "--send",
                "COPY t TO STDOUT",
            ])
            .args(["--to", "host=127.0.0.1 port=2", "--receive", receive])
            .output()
            .unwrap();
        assert_exit(&out, 2);
        assert!(text(&out.stderr).contains(said), "{}", text(&out.stderr));
    }
}

/// Under `--quiet` a failed run still says whether anything committed — what a cron job's mail
/// must tell — and says its error once (it said it twice, and nothing of the commit: files40
/// F9).
#[test]
fn a_quiet_failure_says_nothing_committed_once() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE t (i int); INSERT INTO t SELECT generate_series(1, 100)",
    );
    let d1 = database(&c.dest[0], "CREATE TABLE t (i int CHECK (i <> 50))");
    let d2 = database(&c.dest[1], "CREATE TABLE t (i int)");
    let out = run(&[
        "-q",
        "table",
        "t",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&d1),
        "--to",
        &c.dest[1].conninfo(&d2),
    ]);
    assert_exit(&out, 1);
    let said = text(&out.stderr);
    assert!(said.contains("; nothing committed"), "{said}");
    assert_eq!(said.matches("23514").count(), 1, "{said}");
    assert_eq!(count(&c.dest[1], &d2, "t"), 0);
}

/// A comma-separated list of tables (as pgcopydb and other movers take one), as TABLE or as a
/// `--table` pattern: said how copyman takes several (dup65 F11: "unexpected ','", or no
/// table matched, without a word of it). A comma inside double quotes is a name's.
#[test]
fn a_comma_separated_table_list_is_told_the_way() {
    let tip = "several tables are separate arguments, copyman table a b …, or --table repeated";
    let unreachable = format!(
        "host=127.0.0.1 port={} user=postgres connect_timeout=2",
        closed_port()
    );
    for args in [
        &["table", "a,b", "--from", "host=a", "--to", "host=b"][..],
        &["table", "a", "b,c", "--from", "host=a", "--to", "host=b"],
    ] {
        let out = run(args);
        assert_exit(&out, 2);
        assert!(
            text(&out.stderr).contains(tip),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    let out = run(&[
        "table",
        "-t",
        "a,b",
        "--from",
        &unreachable,
        "--to",
        &unreachable,
    ]);
    assert!(
        text(&out.stderr).contains(&format!("warning: --table a,b: {tip}")),
        "{}",
        text(&out.stderr)
    );
    let out = run(&[
        "table",
        "-t",
        "\"a,b\"",
        "--from",
        &unreachable,
        "--to",
        &unreachable,
    ]);
    assert!(!text(&out.stderr).contains(tip), "{}", text(&out.stderr));
}

/// A connection string given unquoted (its pairs split into arguments) and recover given a
/// `--from`: the error says the way (it blamed the table's name, or said only "unexpected
/// argument": cli43 F3, F4).
#[test]
fn an_unquoted_connection_string_and_recovers_from_are_told_the_way() {
    let quote = "a connection string's key=value pairs go in one argument: quote it";
    for args in [
        &["table", "t", "--from", "host=a", "port=5", "--to", "host=b"][..],
        &[
            "copy",
            "--from",
            "host=a",
            "port=5",
            "--send",
            "COPY t TO STDOUT",
            "--to",
            "host=b",
        ],
    ] {
        let out = run(args);
        assert_exit(&out, 2);
        assert!(
            text(&out.stderr).contains(quote),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    let out = run(&["recover", "--from", "host=a", "--to", "host=b"]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("copyman recover takes every server it finishes as --to"),
        "{}",
        text(&out.stderr)
    );
    // One of `table`'s options given to `copy`: said whose it is, not clap's nearest spelling
    // (files50 F5: `--verify` was told to be `--version`, the usage line ending in it).
    for (option, way) in [
        ("--verify", "compare, resume or empty"),
        ("--truncate", "empties nothing"),
        ("--state=x", "it is a job's"),
        ("--header", "(FORMAT csv, HEADER)"),
        ("-t", "it selects a job's tables"),
        // A short option as its long one (recheck50b F6).
        ("-j", "it is a job's"),
        (
            "--max-rate=1M",
            "`copy` runs its --send and --receive as given; copy a table",
        ),
    ] {
        let out = run(&[
            "copy",
            "--from",
            "host=a",
            "--to",
            "host=b",
            "--receive",
            "COPY t FROM STDIN",
            option,
        ]);
        assert_exit(&out, 2);
        let stderr = text(&out.stderr);
        let name = option.split('=').next().unwrap_or_default();
        assert!(
            stderr.contains(&format!("tip: {name} is `copyman table`'s"))
                && stderr.contains(way)
                && !stderr.contains("--version")
                && !stderr.contains("--stall-timeout"),
            "{stderr}"
        );
    }
    // `--tables`, as a many-table habit types it, read as `--table` (jobs66 F12: clap's bare
    // "unexpected argument").
    let out = run(&[
        "copy", "--tables", "a,b", "--from", "host=a", "--to", "host=b",
    ]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("tip: --table is `copyman table`'s: it selects a job's tables"),
        "{}",
        text(&out.stderr)
    );
    // A whole one, quoted, without --to: not told to quote it (jobs44 F3a).
    let out = run(&[
        "recover",
        "--decision-log",
        "x.log",
        "host=a port=5 dbname=d",
    ]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("recover takes each destination as --to CONN")
            && !text(&out.stderr).contains(quote),
        "{}",
        text(&out.stderr)
    );
}

/// The demo's `--json` times are the whole process's, the copy's under `demo.copy` (they covered
/// the copy alone, 0.1 s of a 20 s demo, where the README says the whole process: docs43 F1).
#[test]
fn demo_json_times_the_whole_demo() {
    let out = run(&["--json", "demo", "--rows", "1000", "--destinations", "1"]);
    assert_exit(&out, 0);
    let doc = json(&out);
    let whole = doc["duration_secs"].as_f64().expect("duration_secs");
    let copy = doc["demo"]["copy"]["duration_secs"]
        .as_f64()
        .expect("copy's");
    assert!(whole > copy, "{doc}");
}

/// A decision log on a file system held in memory (tmpfs: /dev/shm) is said: it is gone at the
/// reboot after a crash of the host, when copyman recover needs it (commit68 F3: taken without
/// a word).
#[test]
fn a_decision_log_in_memory_is_said() {
    let mounts = fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    if !mounts
        .lines()
        .any(|l| l.split(' ').nth(1) == Some("/dev/shm") && l.contains(" tmpfs "))
    {
        eprintln!("SKIPPED a_decision_log_in_memory_is_said: /dev/shm is no tmpfs on this machine");
        return;
    }
    let log = format!("/dev/shm/copyman-test-{}.log", std::process::id());
    let unreachable = "host=127.0.0.1 port=1 user=x dbname=x connect_timeout=2";
    let logged = |log: &str| {
        run(&[
            "table",
            "t",
            "--from",
            unreachable,
            "--to",
            unreachable,
            "--atomic",
            "--decision-log",
            log,
        ])
    };
    let out = logged(&log);
    let _ = fs::remove_file(&log);
    assert!(
        text(&out.stderr).contains(&format!(
            "--decision-log {log} is on a tmpfs file system, held in memory"
        )),
        "{}",
        text(&out.stderr)
    );
    // A log on a disk is not.
    let disk = TempPath::new("on-disk.log");
    let out = logged(disk.arg());
    assert!(
        !text(&out.stderr).contains("held in memory"),
        "{}",
        text(&out.stderr)
    );
}

/// Another tool's option (pg_dump's, pg_restore's, pgcopydb's) gets copyman's way to it, not
/// clap's nearest spelling (ux70 F7: `--snapshot` was told to be `--no-snapshot`, `--clean`
/// `--schema`) nor its "use '-- --x'".
#[test]
fn another_tools_options_are_told_copymans_way() {
    let conn = "host=127.0.0.1 port=1 user=x dbname=x";
    for (option, tip) in [
        (
            &["--snapshot", "00000003-00001176-1"][..],
            "it cannot take an exported one",
        ),
        (&["--clean"], "--truncate empties each destination's table"),
        (&["--table-jobs", "4"], "--jobs N copies N tables at once"),
        (&["--source", conn], "the source is --from CONN"),
        (&["--disable-triggers"], "session_replication_role=replica"),
        // psql's connection options (recheck71 F5).
        (&["--port", "5433"], "a server is named whole by its CONN"),
        (&["-U", "app"], "a server is named whole by its CONN"),
        // pg_dump's what-to-dump options (recheck72 F5).
        (&["--data-only"], "copyman copies rows only"),
        (&["-a"], "copyman copies rows only"),
        (&["--no-owner"], "copyman creates no objects"),
        (&["--if-exists"], "copyman creates no objects"),
        (&["-Fc"], "not pg_dump's archives"),
        (&["--schema-only"], "--section=pre-data"),
    ] {
        let out = run(&[
            &["table", "-n", "audit", "--from", conn, "--to", conn][..],
            option,
        ]
        .concat());
        assert_exit(&out, 2);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("  tip: ")
                && stderr.contains(tip)
                && !stderr.contains("a similar argument exists")
                && !stderr.contains("to pass '"),
            "{option:?}: {stderr}"
        );
    }
}
