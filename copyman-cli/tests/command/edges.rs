//! Edges of a copy (issue 12): a `\.` line in an input file, a destination given twice, lock
//! waits and stalls, signals, and the usability points (`--encoding`,
//! `--allow-count-mismatch`, "1 row", `--help` examples). Real clusters, shared by the binary.

use crate::common;

use std::fmt::Write as _;
use std::fs;
use std::io::Write;
use std::process::Stdio;

use common::*;

const T: &str = "CREATE TABLE t (id int8 PRIMARY KEY, v text);";

/// `rows` text-format rows of `t`, with `marker_at` (a 1-based line) replaced by `\.`.
fn text_rows(rows: u64, marker_at: Option<u64>) -> String {
    let mut data = String::new();
    for i in 1..=rows {
        if Some(i) == marker_at {
            data.push_str("\\.\n");
        } else {
            writeln!(data, "{i}\trow {i}").unwrap();
        }
    }
    data
}

/// A source database whose `t` holds `rows` rows.
fn source_with(c: &Clusters, rows: u64) -> String {
    database(
        &c.source,
        &format!("{T} INSERT INTO t SELECT g, 'x' FROM generate_series(1, {rows}) g;"),
    )
}

// Point 2: a `\.` line before the end of a text file.

#[test]
fn eod_marker_line_in_file_fails_and_commits_nothing() {
    let c = clusters();
    let d1 = database(&c.dest[0], T);
    let d2 = database(&c.dest[1], T);
    let file = TempPath::new("marker.txt");
    fs::write(&file.0, text_rows(200_000, Some(100_001))).unwrap();
    let out = run(&[
        "table",
        "t",
        "--from",
        file.arg(),
        "--to",
        &c.dest[0].conninfo(&d1),
        "--to",
        &c.dest[1].conninfo(&d2),
    ]);
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "line 100001 of {} is `\\.`, the end-of-data marker: the lines after it would be lost",
            file.arg()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("rolled back"), "{stderr}");
    assert_eq!(count(&c.dest[0], &d1, "t"), 0);
    assert_eq!(count(&c.dest[1], &d2, "t"), 0);
    assert_eq!(copy_backends(&c.dest[0], &d1), 0);

    // The same through stdin, with CRLF line ends.
    let data = text_rows(1000, Some(10)).replace('\n', "\r\n");
    let mut child = copyman()
        .args([
            "table",
            "t",
            "--from",
            "-",
            "--to",
            &c.dest[0].conninfo(&d1),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(data.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_exit(&out, 1);
    assert!(
        text(&out.stderr).contains("line 10 of stdin is `\\.`"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &d1, "t"), 0);

    // CR line ends (old Mac files), which the server takes as line ends: the marker ends the
    // data there too.
    fs::write(&file.0, text_rows(1000, Some(20)).replace('\n', "\r")).unwrap();
    let out = run(&[
        "table",
        "t",
        "--from",
        file.arg(),
        "--to",
        &c.dest[0].conninfo(&d1),
    ]);
    assert_exit(&out, 1);
    assert!(
        text(&out.stderr).contains("line 20 of"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &d1, "t"), 0);

    // Text: a `\.` escape ending a longer line ends the data too (the server would load
    // `4, row` and drop the rest).
    let mut data = text_rows(1000, None);
    data = data.replace("4\trow 4\n", "4\trow\\.\n");
    fs::write(&file.0, &data).unwrap();
    let out = run(&[
        "table",
        "t",
        "--from",
        file.arg(),
        "--to",
        &c.dest[0].conninfo(&d1),
    ]);
    assert_exit(&out, 1);
    assert!(
        text(&out.stderr).contains("line 4 of") && text(&out.stderr).contains("ends in `\\.`"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &d1, "t"), 0);
    // CSV: a line that is exactly `\.`; `\.` ending a longer line is data there.
    let csv = TempPath::new("marker.csv");
    fs::write(&csv.0, "1,a\\.\n\\.\n3,c\n").unwrap();
    let out = run(&[
        "table",
        "t",
        "--from",
        csv.arg(),
        "--to",
        &c.dest[0].conninfo(&d1),
    ]);
    assert_exit(&out, 1);
    assert!(
        text(&out.stderr).contains(&format!("line 2 of {} is `\\.`", csv.arg())),
        "{}",
        text(&out.stderr)
    );
    fs::write(&csv.0, "1,a\\.\n3,c\n").unwrap();
    let out = run(&[
        "table",
        "t",
        "--from",
        csv.arg(),
        "--to",
        &c.dest[0].conninfo(&d1),
    ]);
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[0], &d1, "t"), 2);
    c.dest[0].connect(&d1).batch_execute("TRUNCATE t").unwrap();
    // A pg_dump directory format's data file ends `\.` and two blank lines, which psql's
    // `\copy` does not send and the server does not read: loaded whole (files65 F7: refused);
    // a row after them is still refused.
    let dat = TempPath::new("3345.dat");
    fs::write(&dat.0, "1\ta\n2\tb\n\\.\n\n\n").unwrap();
    let load = || {
        run(&[
            "table",
            "t",
            "--from",
            dat.arg(),
            "--to",
            &c.dest[0].conninfo(&d1),
        ])
    };
    let out = load();
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[0], &d1, "t"), 2);
    c.dest[0].connect(&d1).batch_execute("TRUNCATE t").unwrap();
    fs::write(&dat.0, "1\ta\n2\tb\n\\.\n\n\n3\tc\n").unwrap();
    let out = load();
    assert_exit(&out, 1);
    assert!(
        text(&out.stderr).contains(&format!("line 3 of {} is `\\.`", dat.arg())),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &d1, "t"), 0);

    // The marker's line ends exactly where copyman's first 256 KiB read ends: that chunk is
    // sent before the next one shows data after the marker, and the server, which stopped at
    // the marker, still gets the copy failed.
    let mut data = String::new();
    let mut i = 1;
    while data.len() + 40 < 256 * 1024 {
        writeln!(data, "{i}\trow {i}").unwrap();
        i += 1;
    }
    let pad = 256 * 1024 - 3 - data.len() - format!("{i}\t\n").len();
    writeln!(data, "{i}\t{}", "x".repeat(pad)).unwrap();
    let marker_line = i + 1;
    data.push_str("\\.\n");
    assert_eq!(data.len(), 256 * 1024);
    data.push_str(&text_rows(10, None).replace('\t', "0\t"));
    fs::write(&file.0, &data).unwrap();
    let out = run(&[
        "table",
        "t",
        "--from",
        file.arg(),
        "--to",
        &c.dest[0].conninfo(&d1),
    ]);
    assert_exit(&out, 1);
    assert!(
        text(&out.stderr).contains(&format!("line {marker_line} of")),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &d1, "t"), 0);
    assert_eq!(copy_backends(&c.dest[0], &d1), 0);

    // A marker as the very last line is allowed: every row arrives.
    let mut data = text_rows(1000, None);
    data.push_str("\\.\n");
    fs::write(&file.0, data).unwrap();
    let out = run(&[
        "table",
        "t",
        "--from",
        file.arg(),
        "--to",
        &c.dest[0].conninfo(&d1),
        "--to",
        &c.dest[1].conninfo(&d2),
    ]);
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[0], &d1, "t"), 1000);
    assert_eq!(count(&c.dest[1], &d2, "t"), 1000);
}

// Point 6: one destination given twice, the source's own table, lock waits, stalls.

#[test]
fn duplicate_destination_is_refused_before_anything_is_sent() {
    let c = clusters();
    let src = source_with(c, 100);
    let d1 = database(&c.dest[0], T);
    let tcp = c.dest[0].conninfo(&d1);
    // The same database through the Unix socket.
    let socket = format!(
        "host={} port={} user=postgres password={} dbname={d1}",
        c.dest[0].socket_dir().display(),
        c.dest[0].port(),
        c.dest[0].password()
    );
    for second in [&tcp, &socket] {
        let out = run(&[
            "table",
            "t",
            "--from",
            &c.source.conninfo(&src),
            "--to",
            &tcp,
            "--to",
            second,
            "--json",
        ]);
        assert_exit(&out, 2);
        let stderr = text(&out.stderr);
        // Each named by its CONN (passwords left out): a DBA need not count --to.
        assert!(
            stderr.contains("destinations 1 (")
                && stderr.contains(") are the same database (system identifier ")
                && stderr.contains("give each once")
                && !stderr.contains(c.dest[0].password()),
            "{stderr}"
        );
        assert_eq!(json(&out)["exit_code"], 2);
        assert_eq!(count(&c.dest[0], &d1, "t"), 0);
        assert_eq!(copy_backends(&c.dest[0], &d1), 0);
    }
    // Two databases each given twice: both pairs said at once (dup65 F13: the second was
    // found by the next run only).
    let d2 = database(&c.dest[1], T);
    let other = c.dest[1].conninfo(&d2);
    let other_socket = format!(
        "host={} port={} user=postgres password={} dbname={d2}",
        c.dest[1].socket_dir().display(),
        c.dest[1].port(),
        c.dest[1].password()
    );
    let out = run(&[
        "table",
        "t",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &tcp,
        "--to",
        &other,
        "--to",
        &socket,
        "--to",
        &other_socket,
    ]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("destinations 1 (")
            && stderr.contains(") and 3 (")
            && stderr.contains("destinations 2 (")
            && stderr.contains(") and 4 (")
            && stderr.contains("give each once"),
        "{stderr}"
    );
    // Three spellings of one database: one clause (dup67 F7: said as two pairs).
    let url = c.dest[0].url(&d1);
    let out = run(&[
        "table",
        "t",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &tcp,
        "--to",
        &socket,
        "--to",
        &url,
    ]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("destinations 1 (")
            && stderr.contains("), 2 (")
            && stderr.contains(") and 3 (")
            && stderr.contains("into one table 3 times")
            && stderr.matches("are the same database").count() == 1,
        "{stderr}"
    );

    // copy mode: the same statement twice is refused; different ones only warned about.
    let out = run(&[
        "copy",
        "--from",
        &c.source.conninfo(&src),
        "--send",
        "COPY t TO STDOUT",
        "--to",
        &tcp,
        "--to",
        &socket,
        "--receive",
        "COPY t FROM STDIN",
    ]);
    assert_exit(&out, 2);
    // … and two statements that name one table otherwise (each session resolves its name).
    let out = run(&[
        "copy",
        "--from",
        &c.source.conninfo(&src),
        "--send",
        "COPY t TO STDOUT",
        "--to",
        &tcp,
        "--receive",
        "COPY t FROM STDIN",
        "--to",
        &socket,
        "--receive",
        r#"COPY public."t" (id, v) FROM STDIN"#,
    ]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains(") are the same database"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &d1, "t"), 0);

    // A partitioned table and its partition, one --receive each: one table's storage, every
    // row stored there twice (a warning about a wait, exit 0); an inheritance parent and its
    // child: every row read twice through the parent (recheck47b F5: warned only, exit 0).
    let parts = database(
        &c.dest[1],
        "CREATE TABLE p (id int8, v text) PARTITION BY RANGE (id);
         CREATE TABLE p_low PARTITION OF p FOR VALUES FROM (MINVALUE) TO (1000000);
         CREATE TABLE ip (id int8, v text); CREATE TABLE ic () INHERITS (ip);",
    );
    for (parent, child, said) in [
        (
            "p",
            "p_low",
            [
                ") write into one table of the same database (one --receive's table is a \
                 partition of the other's",
                "every row would be stored there twice",
            ],
        ),
        (
            "ip",
            "ic",
            [
                "write into an inheritance parent and its child",
                "every row would be read twice through the parent",
            ],
        ),
    ] {
        let (into_parent, into_child) = (
            format!("COPY {parent} FROM STDIN"),
            format!("COPY {child} FROM STDIN"),
        );
        let out = run(&[
            "copy",
            "--from",
            &c.source.conninfo(&src),
            "--send",
            "COPY t TO STDOUT",
            "--to",
            &c.dest[1].conninfo(&parts),
            "--receive",
            &into_parent,
            "--to",
            &c.dest[1].url(&parts),
            "--receive",
            &into_child,
        ]);
        assert_exit(&out, 2);
        let stderr = text(&out.stderr);
        assert!(said.iter().all(|s| stderr.contains(s)), "{stderr}");
        assert_eq!(count(&c.dest[1], &parts, parent), 0);
    }
    // The same in table mode, each destination's search_path finding one of the two (every
    // row twice, exit 0: dupes47 F1).
    let tree = database(
        &c.dest[1],
        "CREATE SCHEMA pa; CREATE SCHEMA pb;
         CREATE TABLE pa.t (id int8, v text) PARTITION BY RANGE (id);
         CREATE TABLE pb.t PARTITION OF pa.t FOR VALUES FROM (MINVALUE) TO (MAXVALUE);",
    );
    let on_path = |schema: &str| {
        format!(
            "{} options=-csearch_path={schema}",
            c.dest[1].conninfo(&tree)
        )
    };
    let from = c.source.conninfo(&src);
    let (pa, pb) = (on_path("pa"), on_path("pb"));
    let out = run(&["table", "t", "--from", &from, "--to", &pa, "--to", &pb]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("(one's table is a partition of the other's"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[1], &tree, "pa.t"), 0);
    // Two unrelated tables found that way: copied into each, said as such (it spoke of
    // "--receive statements" and "if they reach the same table": dupes47 F11).
    c.dest[1]
        .connect(&tree)
        .batch_execute(
            "CREATE SCHEMA qa; CREATE SCHEMA qb;
             CREATE TABLE qa.t (id int8, v text); CREATE TABLE qb.t (id int8, v text);",
        )
        .unwrap();
    let (qa, qb) = (on_path("qa"), on_path("qb"));
    let out = run(&["table", "t", "--from", &from, "--to", &qa, "--to", &qb]);
    assert_exit(&out, 0);
    assert!(
        text(&out.stderr).contains("their sessions find another table each")
            && !text(&out.stderr).contains("--receive"),
        "{}",
        text(&out.stderr)
    );
    let rows = count(&c.source, &src, "t");
    assert_eq!(count(&c.dest[1], &tree, "qa.t"), rows);
    assert_eq!(count(&c.dest[1], &tree, "qb.t"), rows);

    // A table named `r` (or any part of its name): the lookup's row alias was `r`, and the
    // part's column shadowed it (42883: the check was lost to a warning, rows stored twice).
    c.source
        .connect(&src)
        .batch_execute("CREATE TABLE r (LIKE t); INSERT INTO r SELECT * FROM t")
        .unwrap();
    c.dest[0]
        .connect(&d1)
        .batch_execute("CREATE TABLE r (LIKE t)")
        .unwrap();
    for table in ["r", "public.r", "\"r\""] {
        let out = run(&[
            "table",
            table,
            "--from",
            &c.source.conninfo(&src),
            "--to",
            &tcp,
            "--to",
            &socket,
        ]);
        assert_exit(&out, 2);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(") are the same database") && !stderr.contains("cannot identify"),
            "{table}: {stderr}"
        );
        assert_eq!(count(&c.dest[0], &d1, "r"), 0);
    }

    // The source's own table.
    let out = run(&[
        "table",
        "t",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.source.url(&src),
    ]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("destination 1 (")
            && text(&out.stderr).contains("is the source's own table"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.source, &src, "t"), 100);

    // copy mode into another table of the source's database: a warning, and it works.
    c.source
        .connect(&src)
        .batch_execute("CREATE TABLE t2 (LIKE t)")
        .unwrap();
    let out = run(&[
        "copy",
        "--from",
        &c.source.conninfo(&src),
        "--send",
        "COPY t TO STDOUT",
        "--to",
        &c.source.conninfo(&src),
        "--receive",
        "COPY t2 FROM STDIN",
    ]);
    assert_exit(&out, 0);
    assert!(
        text(&out.stderr).contains("warning: destination 1 (")
            && text(&out.stderr).contains("is the source's database"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.source, &src, "t2"), 100);
    // A --send query that reads the --receive's table: refused (every row was stored there a
    // second time, exit 0, after that warning; conn37 F5); one that reads another table is not.
    let copy = |send: &str| {
        run(&[
            "copy",
            "--from",
            &c.source.conninfo(&src),
            "--send",
            send,
            "--to",
            &c.source.conninfo(&src),
            "--receive",
            "COPY t2 FROM STDIN",
        ])
    };
    c.source
        .connect(&src)
        .batch_execute("CREATE VIEW t2v AS SELECT * FROM t2")
        .unwrap();
    // Directly, and through a view.
    for send in [
        "COPY (SELECT * FROM t2 WHERE id > 0) TO STDOUT",
        "COPY (SELECT * FROM t2v) TO STDOUT",
    ] {
        let out = copy(send);
        assert_exit(&out, 2);
        assert!(
            text(&out.stderr).contains("its --receive table is one the --send query reads")
                && text(&out.stderr).contains("INSERT INTO table SELECT"),
            "{send}: {}",
            text(&out.stderr)
        );
    }
    assert_eq!(count(&c.source, &src, "t2"), 100);
    let out = copy("COPY (SELECT * FROM t WHERE id <= 10) TO STDOUT");
    assert_exit(&out, 0);
    assert_eq!(count(&c.source, &src, "t2"), 110);
    // Found not to read it: not warned that it might (dup65 F2).
    assert!(
        !text(&out.stderr).contains("if --receive names the table --send reads"),
        "{}",
        text(&out.stderr)
    );

    // Table mode into another table of the source's database (--target-table) is no duplicate.
    let out = run(&[
        "table",
        "t",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.source.conninfo(&src),
        "--target-table",
        "t2",
        "--truncate",
    ]);
    assert_exit(&out, 0);
    assert_eq!(digest(&c.source, &src, "t2"), digest(&c.source, &src, "t"));
    // One not created yet is missing, said as such (42P01, exit 2 as a column missing there,
    // cli51 F2): not "the source's own table", which sent a DBA after a quoting or search_path
    // problem.
    let out = run(&[
        "table",
        "t",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.source.conninfo(&src),
        "--target-table",
        "t_not_yet",
    ]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("42P01") && !stderr.contains("own table"),
        "{stderr}"
    );
}

#[test]
fn lock_waits_are_shown_and_bounded_by_lock_and_stall_timeouts() {
    let c = clusters();
    let src = source_with(c, 1000);
    let d1 = database(&c.dest[0], T);
    let d2 = database(&c.dest[1], T);
    // Another user holds a lock on destination 1's table.
    let mut holder = c.dest[0].connect(&d1);
    holder
        .batch_execute("BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
        .unwrap();

    // --lock-timeout: the COPY gives up, nothing is committed anywhere.
    let out = run(&[
        "table",
        "t",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&d1),
        "--to",
        &c.dest[1].conninfo(&d2),
        "--lock-timeout",
        "300ms",
    ]);
    assert_exit(&out, 1);
    assert!(
        text(&out.stderr).contains("SQLSTATE 55P03"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[1], &d2, "t"), 0);

    // --stall-timeout: a destination that takes no byte is a fault that names it.
    let out = run(&[
        "table",
        "t",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&d1),
        "--to",
        &c.dest[1].conninfo(&d2),
        "--stall-timeout",
        "1",
    ]);
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("stalled for 1 s"), "{stderr}");
    assert_eq!(count(&c.dest[1], &d2, "t"), 0);

    // A lock the TRUNCATE before the COPY waits for: given up at --stall-timeout, its statement
    // cancelled, the others committed (the run waited until the lock came, then failed it).
    let (from, to1, to2) = (
        c.source.conninfo(&src),
        c.dest[0].conninfo(&d1),
        c.dest[1].conninfo(&d2),
    );
    let args = ["table", "t", "--from", &from, "--to", &to1, "--to", &to2];
    let args = [
        &args[..],
        &["--truncate", "--keep-going", "--stall-timeout", "1"],
    ]
    .concat();
    let (out, left) = given_up_before_the_lock(&args, &mut holder, (&c.dest[0], &d1));
    let stderr = text(&out.stderr);
    assert_exit(&out, 4);
    assert!(
        stderr.contains(
            "stalled for 1 s: no byte moved (stall timeout); its statement was cancelled"
        ),
        "{stderr}"
    );
    // Only the holder is left on destination 1: the TRUNCATE did not wait on.
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(count(&c.dest[0], &d1, "t"), 0);
    assert_eq!(count(&c.dest[1], &d2, "t"), 1000);
    c.dest[1].connect(&d2).batch_execute("TRUNCATE t").unwrap();
    holder
        .batch_execute("BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
        .unwrap();

    // No limit: the wait is shown, and the copy goes on once the lock is released.
    let mut child = copyman()
        .args([
            "table",
            "t",
            "--from",
            &c.source.conninfo(&src),
            "--to",
            &c.dest[0].conninfo(&d1),
            "--to",
            &c.dest[1].conninfo(&d2),
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = StderrLines::take(&mut child);
    let line = stderr.expect("waiting for lock on destination 1 (");
    assert!(line.contains("held by backend"), "{line}");
    holder.batch_execute("ROLLBACK").unwrap();
    let rest = stderr.unseen();
    let out = child.wait_with_output().unwrap();
    assert_exit(&out, 0);
    // The wait is in `--json` too.
    let waits = json(&out)["waits"].clone();
    assert!(
        waits
            .as_array()
            .is_some_and(|w| w.len() == 1 && w[0].as_str().is_some_and(|w| line.ends_with(w))),
        "{waits} {line} {rest}"
    );
    assert_eq!(count(&c.dest[0], &d1, "t"), 1000);
    assert_eq!(count(&c.dest[1], &d2, "t"), 1000);
}

/// Runs `copyman ARGS` while `holder` holds a lock it will wait for, and releases the lock once
/// the run ended, or after 30 s: bounded, not timed — a run that does not give its wait up ends
/// only with the lock, and fails here. Its output, and the backends left on `db` of `cluster`
/// but the holder's then (none waiting on: only the holder).
fn given_up_before_the_lock(
    args: &[&str],
    holder: &mut postgres::Client,
    (cluster, db): (&copyman_testkit::Cluster, &str),
) -> (std::process::Output, Vec<String>) {
    let mut child = copyman()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() && started.elapsed().as_secs() < 30 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let ended_first = child.try_wait().unwrap().is_some();
    let left = settle_backends_to(cluster, db, 1);
    holder.batch_execute("ROLLBACK").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        ended_first,
        "{args:?}: the run waited for the lock: {}",
        text(&out.stderr)
    );
    (out, left)
}

/// The `setval` that carries a copied serial's sequence before the COMMIT, waiting for the
/// sequence's lock (an `ALTER SEQUENCE` in an open transaction): given up at `--stall-timeout`,
/// its statement cancelled, for one table and in a job (both waited for the lock, every row
/// copied, then failed: a job's ROLLBACK queued behind the waiting `setval`).
#[test]
fn a_setval_waiting_for_its_sequence_is_given_up_at_the_stall_timeout() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE s (id serial PRIMARY KEY, v text); CREATE TABLE u (id int);
         INSERT INTO s (v) SELECT 'x' FROM generate_series(1, 500); INSERT INTO u VALUES (1);",
    );
    let d1 = database(
        &c.dest[0],
        "CREATE TABLE s (id serial PRIMARY KEY, v text); CREATE TABLE u (id int);",
    );
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&d1));
    let state = TempPath::new("setval-stall.state");
    let one = [
        "table",
        "s",
        "--from",
        &from,
        "--to",
        &to,
        "--stall-timeout",
        "1",
    ];
    let job = [&one[..], &["u", "--state", state.arg()]].concat();
    for args in [&one[..], &job[..]] {
        let mut holder = c.dest[0].connect(&d1);
        holder
            .batch_execute("BEGIN; ALTER SEQUENCE s_id_seq INCREMENT 1")
            .unwrap();
        let (out, left) = given_up_before_the_lock(args, &mut holder, (&c.dest[0], &d1));
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("advancing its sequences: stalled for 1 s")
                && stderr.contains("its statement was cancelled"),
            "{args:?}: {stderr}"
        );
        assert_eq!(left.len(), 1, "{args:?}: {left:?}");
        assert_eq!(count(&c.dest[0], &d1, "s"), 0, "{args:?}");
    }
}

/// A destination that stalls mid-copy on a lock its trigger waits for is closed and its
/// statement cancelled: closed only, its backend went on waiting in the lock, holding the table's
/// (behind a prepared transaction, until someone ended it).
#[test]
fn a_destination_stalled_on_a_lock_mid_copy_leaves_no_backend_waiting() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE t (id int8 PRIMARY KEY, v text);
         INSERT INTO t SELECT g, repeat('x', 100) FROM generate_series(1, 200000) g;",
    );
    let gated = "CREATE TABLE t (id int8 PRIMARY KEY, v text); CREATE TABLE gate (g int);
         CREATE FUNCTION wait_gate() RETURNS trigger LANGUAGE plpgsql AS
           $$BEGIN LOCK TABLE gate IN EXCLUSIVE MODE; RETURN NEW; END$$;
         CREATE TRIGGER wait_gate BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION wait_gate();";
    let d1 = database(&c.dest[0], gated);
    let d2 = database(&c.dest[1], T);
    let mut holder = c.dest[0].connect(&d1);
    holder
        .batch_execute("BEGIN; LOCK TABLE gate IN EXCLUSIVE MODE")
        .unwrap();
    let out = run(&[
        "table",
        "t",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&d1),
        "--to",
        &c.dest[1].conninfo(&d2),
        "--format",
        "text",
        "--keep-going",
        "--stall-timeout",
        "1",
    ]);
    let left = settle_backends_to(&c.dest[0], &d1, 1);
    holder.batch_execute("ROLLBACK").unwrap();
    assert_exit(&out, 4);
    assert_eq!(left.len(), 1, "only the holder: {left:?}");
    assert_eq!(count(&c.dest[1], &d2, "t"), 200000);
    assert_eq!(count(&c.dest[0], &d1, "t"), 0);
}

/// The sessions that watch a lock wait do as the copy's do with a database's timeouts: its
/// `idle_session_timeout` ended them between questions (opened again every second, the wait
/// said anew each time) and its `statement_timeout` cancelled their question (the lock never
/// named: "its server cannot be asked").
#[test]
fn a_lock_wait_is_watched_whatever_the_database_times_out() {
    let c = clusters();
    let src = source_with(c, 100);
    let d1 = database(&c.dest[0], T);
    let timeouts = |set: &str| {
        c.dest[0]
            .connect("postgres")
            .batch_execute(&format!(
                "ALTER DATABASE {d1} {set} idle_session_timeout{0};
                 ALTER DATABASE {d1} {set} statement_timeout{1}",
                if set == "SET" { " = '700ms'" } else { "" },
                if set == "SET" { " = '1ms'" } else { "" },
            ))
            .unwrap();
    };
    timeouts("SET");
    let mut holder = c.dest[0].connect(&d1);
    holder
        .batch_execute(
            "SET statement_timeout = 0; SET idle_session_timeout = 0;
             BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE",
        )
        .unwrap();
    let mut child = copyman()
        .args([
            "table",
            "t",
            "--from",
            &c.source.conninfo(&src),
            "--to",
            &c.dest[0].conninfo(&d1),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = StderrLines::take(&mut child);
    let line = stderr.expect("waiting for lock on destination 1 (");
    assert!(line.contains("held by backend"), "{line}");
    // Long enough for several of the watch's questions, each a second apart.
    std::thread::sleep(std::time::Duration::from_secs(3));
    holder.batch_execute("ROLLBACK").unwrap();
    let rest = stderr.unseen();
    let out = child.wait_with_output().unwrap();
    timeouts("RESET");
    assert_exit(&out, 0);
    assert!(
        !rest.contains("waiting for lock on destination 1") && !rest.contains("cannot be asked"),
        "the wait was said again: {line}\n{rest}"
    );
    assert_eq!(count(&c.dest[0], &d1, "t"), 100);
}

#[test]
fn a_stalled_stdin_source_is_a_fault() {
    let c = clusters();
    let d1 = database(&c.dest[0], T);
    let mut child = copyman()
        .args([
            "table",
            "t",
            "--from",
            "-",
            "--to",
            &c.dest[0].conninfo(&d1),
            "--stall-timeout",
            "500ms",
        ])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"1\tone\n").unwrap();
    // Keep stdin open and silent until copyman gives up.
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    assert_exit(&out, 1);
    assert!(
        text(&out.stderr).contains("source: stdin stalled for 0.5 s"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &d1, "t"), 0);
}

// Point 9: signals.

#[test]
fn signals_abort_the_copy_and_commit_nothing() {
    let c = clusters();
    let src = database(&c.source, T);
    let d1 = database(&c.dest[0], T);
    let d2 = database(&c.dest[1], T);
    let out_file = TempPath::new("interrupted.txt");

    // SIGTERM during a server source that streams slowly.
    let child = copyman()
        .args([
            "copy",
            "--from",
            &c.source.conninfo(&src),
            "--send",
            "COPY (SELECT g, pg_sleep(0.001)::text FROM generate_series(1, 1000000) g) TO STDOUT",
            "--to",
            &c.dest[0].conninfo(&d1),
            "--to",
            &c.dest[1].conninfo(&d2),
            "--receive",
            "COPY t FROM STDIN",
            "--to",
            out_file.arg(),
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    wait_for_query(&c.dest[1], &d2, "COPY t FROM STDIN");
    wait_for_query(&c.source, &src, "COPY (SELECT%");
    signal(&child, "TERM");
    let out = child.wait_with_output().unwrap();
    assert_exit(&out, 143);
    let stderr = text(&out.stderr);
    // How far it got, then what it committed (progress62 F8).
    let line = stderr
        .lines()
        .find(|l| l.starts_with("copyman: interrupted by SIGTERM"));
    let line = line.unwrap_or_else(|| panic!("{stderr}"));
    assert!(line.ends_with(": nothing committed"), "{stderr}");
    let summary = json(&out);
    let bytes = summary["bytes"].as_u64().unwrap();
    assert!(
        bytes == 0 || line.contains(" of data in "),
        "{bytes} {line}"
    );
    assert_eq!(summary["status"], "interrupted");
    assert_eq!(summary["exit_code"], 143);
    // The signal is the run's error, as stderr says (it was the source's 57014, copyman's own
    // cancel: docs43 F5).
    assert_eq!(summary["error"], "interrupted by SIGTERM", "{summary}");
    assert_eq!(
        summary["interrupted"], "interrupted by SIGTERM",
        "{summary}"
    );
    assert_eq!(count(&c.dest[0], &d1, "t"), 0);
    assert_eq!(count(&c.dest[1], &d2, "t"), 0);
    assert_eq!(copy_backends(&c.dest[0], &d1), 0);
    assert_eq!(copy_backends(&c.dest[1], &d2), 0);
    assert_eq!(copy_backends(&c.source, &src), 0);
    assert!(!out_file.0.exists());
    let leftovers: Vec<_> = fs::read_dir(out_file.0.parent().unwrap())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .contains(&format!(".copyman-{pid}-"))
        })
        .collect();
    assert!(leftovers.is_empty());

    // SIGINT and SIGHUP while stdin is silent: the copy does not sit in its read.
    for (name, code) in [("INT", 130), ("HUP", 129)] {
        let mut child = copyman()
            .args([
                "table",
                "t",
                "--from",
                "-",
                "--to",
                &c.dest[0].conninfo(&d1),
                "--to",
                out_file.arg(),
            ])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(text_rows(100, None).as_bytes()).unwrap();
        stdin.flush().unwrap();
        wait_for_query(&c.dest[0], &d1, "COPY%FROM STDIN%");
        // `.NAME.copyman-PID-RANDOM.tmp`: the one this run made.
        let prefix = format!(
            ".{}.copyman-{}-",
            out_file.0.file_name().unwrap().to_string_lossy(),
            child.id()
        );
        let temps = || -> Vec<std::path::PathBuf> {
            fs::read_dir(out_file.0.parent().unwrap())
                .unwrap()
                .filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                .map(|e| e.path())
                .collect()
        };
        let made = temps();
        assert_eq!(made.len(), 1, "the temporary file: {made:?}");
        let temp = made[0].clone();
        signal(&child, name);
        let out = child.wait_with_output().unwrap();
        drop(stdin);
        assert_exit(&out, code);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(&format!("interrupted by SIG{name}")),
            "{stderr}"
        );
        assert!(stderr.contains(": nothing committed"), "{stderr}");
        assert_eq!(count(&c.dest[0], &d1, "t"), 0);
        assert_eq!(copy_backends(&c.dest[0], &d1), 0);
        assert!(!temp.exists(), "{} left behind", temp.display());
        assert!(!out_file.0.exists());
    }
}

#[test]
fn a_second_signal_exits_at_once() {
    use copyman_testkit::proxy::{Direction, Fault, Proxy};
    // A source that barely answers mid-copy (its cancel never arrives, its rows trickle): the
    // abort waits for it, said every second, for as long as the test needs (a source that
    // stopped answering would be given up after the interrupt's grace, 2 s, a window the second
    // signal could miss on a loaded machine).
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE t (id int8, v text);
         INSERT INTO t SELECT g, repeat('v', 100) FROM generate_series(1, 300000) g;",
    );
    let proxy = Proxy::for_cluster(&c.source);
    let mut child = copyman()
        .args([
            "table",
            "t",
            "--from",
            &proxy.conninfo(&c.source, &src),
            "--to",
            "/dev/null",
        ])
        // The reminder after 1 s, not 10.
        .env("COPYMAN_TEST_SAY_AFTER", "1")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        proxy.wait_bytes(
            Direction::ServerToClient,
            64 * 1024,
            std::time::Duration::from_secs(30)
        ),
        "the copy never started"
    );
    let trickle = Fault::Delay(std::time::Duration::from_millis(500));
    proxy.set(Direction::ServerToClient, trickle);
    proxy.set(Direction::ClientToServer, Fault::Stall);
    let mut stderr = StderrLines::take(&mut child);
    signal(&child, "INT");
    let stopping = stderr.wait_for("SIGINT received: stopping the copy");
    // A stop that waits for a server that does not answer says so, not silence.
    let still = stopping.and_then(|_| stderr.wait_for("s after SIGINT: waiting for"));
    // (Sent either way, so that the run ends and the test fails rather than hangs.)
    signal(&child, "INT");
    let again = stderr.wait_for("SIGINT received again: exiting at once");
    assert_eq!(child.wait().unwrap().code(), Some(130));
    assert!(still.is_some() && again.is_some(), "{}", stderr.rest());
    // The backends it waits for are named (it said only "the servers").
    let still = still.unwrap_or_default();
    assert!(
        still.contains("the servers to answer: source") && still.contains("(backend "),
        "{still}"
    );
}

// Point 12: --encoding, --allow-count-mismatch, "1 row", --help examples.

#[test]
fn encoding_of_file_endpoints() {
    let c = clusters();
    let d1 = database(&c.dest[0], T);
    let file = TempPath::new("latin1.txt");
    fs::write(&file.0, b"1\tcaf\xe9\n").unwrap();
    // Read as UTF8, LATIN1 bytes are refused by the server.
    let out = run(&[
        "table",
        "t",
        "--from",
        file.arg(),
        "--to",
        &c.dest[0].conninfo(&d1),
    ]);
    assert_exit(&out, 1);
    assert!(text(&out.stderr).contains("22021"), "{}", text(&out.stderr));
    let out = run(&[
        "table",
        "t",
        "--from",
        file.arg(),
        "--to",
        &c.dest[0].conninfo(&d1),
        "--encoding",
        "LATIN1",
    ]);
    assert_exit(&out, 0);
    let v: String = c.dest[0]
        .connect(&d1)
        .query_one("SELECT v FROM t", &[])
        .unwrap()
        .get(0);
    assert_eq!(v, "café");
    // And back out to a file in LATIN1.
    let back = TempPath::new("latin1-out.txt");
    let out = run(&[
        "table",
        "t",
        "--from",
        &c.dest[0].conninfo(&d1),
        "--to",
        back.arg(),
        "--encoding",
        "latin1",
    ]);
    assert_exit(&out, 0);
    assert_eq!(fs::read(&back.0).unwrap(), b"1\tcaf\xe9\n");
    // Binary COPY ignores a COPY's ENCODING: the file would have held UTF-8 (exit 0).
    let bin = TempPath::new("latin1-out.bin");
    let out = run(&[
        "table",
        "t",
        "--from",
        &c.dest[0].conninfo(&d1),
        "--to",
        bin.arg(),
        "--encoding",
        "latin1",
        "--format",
        "binary",
    ]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("does not apply to binary COPY data"),
        "{}",
        text(&out.stderr)
    );
    assert!(!bin.0.exists());
    // UTF8, the sessions' own, is what binary data holds: taken.
    let out = run(&[
        "table",
        "t",
        "--from",
        &c.dest[0].conninfo(&d1),
        "--to",
        bin.arg(),
        "--encoding",
        "utf-8",
        "--format",
        "binary",
    ]);
    assert_exit(&out, 0);
    // An encoding the server does not know is a usage error; servers alone need none.
    let out = run(&[
        "table",
        "t",
        "--from",
        file.arg(),
        "--to",
        &c.dest[0].conninfo(&d1),
        "--encoding",
        "KLINGON",
    ]);
    assert_exit(&out, 2);
    // --dry-run refuses it as the run does (it passed: the dry run skipped the session's
    // settings), and plans a good one without copying.
    for (encoding, exit) in [("KLINGON", 2), ("LATIN1", 0)] {
        let out = run(&[
            "table",
            "t",
            "--from",
            file.arg(),
            "--to",
            &c.dest[0].conninfo(&d1),
            "--encoding",
            encoding,
            "--dry-run",
        ]);
        assert_exit(&out, exit);
        if exit == 2 {
            assert!(
                text(&out.stderr).contains("--encoding"),
                "{}",
                text(&out.stderr)
            );
        }
    }
    let out = run(&[
        "table",
        "t",
        "--from",
        &c.dest[0].conninfo(&d1),
        "--to",
        &c.dest[1].conninfo("postgres"),
        "--encoding",
        "LATIN1",
    ]);
    assert_exit(&out, 2);
}

/// A file's bytes read as SQL_ASCII into a UTF8 database are stored unchecked (values that are
/// not UTF-8 made unreadable, exit 0: files48 F1), and a binary COPY's ENCODING is ignored by its
/// server (a LATIN1 file's text stored as other characters, exit 0: files48 F7): both refused
/// before anything is sent, however the encoding was given.
#[test]
fn a_file_read_as_sql_ascii_and_a_binary_copys_encoding_are_refused() {
    let c = clusters();
    let d1 = database(&c.dest[0], T);
    let to = c.dest[0].conninfo(&d1);
    let file = TempPath::new("sql-ascii.txt");
    fs::write(&file.0, b"1\tcaf\xe9\n").unwrap();
    let copy = |to: &str, receive: &str, more: &[&str]| {
        let mut args = vec![
            "copy",
            "--from",
            file.arg(),
            "--to",
            to,
            "--receive",
            receive,
        ];
        args.extend(more);
        run(&args)
    };
    let with_client = format!("{to} client_encoding=SQL_ASCII");
    for out in [
        copy(&to, "COPY t FROM STDIN", &["--encoding", "SQL_ASCII"]),
        copy(&to, "COPY t FROM STDIN (ENCODING 'sql_ascii')", &[]),
        copy(&with_client, "COPY t FROM STDIN", &[]),
    ] {
        assert_exit(&out, 2);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("SQL_ASCII names no encoding, and destination 1's database is UTF8")
                && stderr.contains("--encoding LATIN1"),
            "{stderr}"
        );
    }
    assert_eq!(count(&c.dest[0], &d1, "t"), 0);
    // Beside a SQL_ASCII database (which takes any byte): said so too, not in the words of a
    // copy between servers (recheck48a F1: "the source's bytes", "leave client_encoding unset").
    let ascii = sql_ascii_database(&c.dest[1], &format!("{d1}_ascii"));
    c.dest[1].connect(&ascii).batch_execute(T).unwrap();
    let both = [
        "copy",
        "--from",
        file.arg(),
        "--to",
        &to,
        "--to",
        &c.dest[1].conninfo(&ascii),
        "--receive",
        "COPY t FROM STDIN",
        "--encoding",
        "SQL_ASCII",
    ];
    let out = run(&both);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("SQL_ASCII names no encoding, and destination 1's database is UTF8")
            && !stderr.contains("the source's bytes"),
        "{stderr}"
    );
    // Its real encoding loads it.
    assert_exit(
        &copy(&to, "COPY t FROM STDIN", &["--encoding", "LATIN1"]),
        0,
    );
    // A binary file of it; its ENCODING given in the COPY, which the server would ignore.
    let bin = TempPath::new("sql-ascii.bin");
    let send = "COPY t TO STDOUT (FORMAT binary, ENCODING 'LATIN1')";
    let out = run(&["copy", "--from", &to, "--send", send, "--to", bin.arg()]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("source's COPY gives ENCODING 'LATIN1' with FORMAT binary")
            && stderr.contains("client_encoding=LATIN1"),
        "{stderr}"
    );
    assert!(!bin.0.exists());
    // The session's own (UTF8) is what binary data holds: taken.
    let send = "COPY t TO STDOUT (FORMAT binary, ENCODING 'UTF8')";
    let out = run(&["copy", "--from", &to, "--send", send, "--to", bin.arg()]);
    assert_exit(&out, 0);
    let receive = "COPY t FROM STDIN (FORMAT binary, ENCODING 'LATIN1')";
    let out = run(&[
        "copy",
        "--from",
        bin.arg(),
        "--to",
        &to,
        "--receive",
        receive,
    ]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("destination 1's COPY gives ENCODING 'LATIN1'"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &d1, "t"), 1);
}

/// A job over a SQL_ASCII source whose catalog holds a table name that is not UTF-8: the
/// server will not send it, and the error says what it is and how to leave the table out
/// (types62 F4: a bare 22021 naming nothing); left out, the rest is copied.
#[test]
fn a_sql_ascii_sources_name_that_is_not_utf8_is_said_with_the_way_out() {
    let c = clusters();
    let src = c.source.create_database();
    let ascii = sql_ascii_database(&c.source, &format!("{src}_ascii"));
    // 't', the byte 0xE5 (å in LATIN1), 'ble': made on the server, the client sends ASCII.
    (c.source.connect(&ascii))
        .batch_execute(
            "DO $$ BEGIN EXECUTE format('CREATE TABLE %I (id int)', 't' || chr(229) || 'ble'); \
             END $$; CREATE TABLE plain (id int); INSERT INTO plain VALUES (1), (2);",
        )
        .unwrap();
    let d1 = database(&c.dest[0], "CREATE TABLE plain (id int);");
    let state = TempPath::new("sql-ascii-names.state");
    let job = |extra: &[&str]| {
        let mut args = vec!["table"];
        args.extend_from_slice(extra);
        let (from, to) = (c.source.conninfo(&ascii), c.dest[0].conninfo(&d1));
        args.extend(["--from", &from, "--to", &to, "--state", state.arg()]);
        run(&args)
    };
    let out = job(&[]);
    assert_exit(&out, 1);
    let said = text(&out.stderr);
    assert!(
        said.contains("22021")
            && said.contains("is not UTF-8: its database is SQL_ASCII")
            && said.contains("--exclude-table"),
        "{said}"
    );
    assert_exit(&job(&["--exclude-table", "t?ble"]), 0);
    assert_eq!(count(&c.dest[0], &d1, "plain"), 2);
}

/// Names a SQL_ASCII source holds that are not UTF-8, sent as they are where every database is
/// SQL_ASCII (the sessions read its bytes as they are; a UTF8 destination's run reads them as
/// UTF8, and the source refuses to send them: 22021, above) — a table's, a column's: said as
/// such, with the `--exclude-table` that leaves the table out
/// (recheck63 F9: "relation does not exist" of a table that does, a column "dropped or renamed"
/// that was not, and in one table's run advice for the data, client_encoding, which is then
/// refused); left out, the rest is copied.
#[test]
fn sql_ascii_names_sent_as_they_are_are_said_not_utf8() {
    let c = clusters();
    let src = c.source.create_database();
    let ascii = sql_ascii_database(&c.source, &format!("{src}_ascii2"));
    // 'n' and the byte 0xE9 (é in LATIN1); a column 'k' and that byte.
    (c.source.connect(&ascii))
        .batch_execute(
            "DO $$ BEGIN EXECUTE format('CREATE TABLE %I (id int)', 'n' || chr(233)); \
             EXECUTE format('CREATE TABLE d (id int, %I text)', 'k' || chr(233)); END $$; \
             CREATE TABLE plain (id int); INSERT INTO plain VALUES (1), (2);",
        )
        .unwrap();
    let d1 = sql_ascii_database(
        &c.dest[0],
        &format!("{}_ascii2", c.dest[0].create_database()),
    );
    (c.dest[0].connect(&d1))
        .batch_execute("CREATE TABLE plain (id int);")
        .unwrap();
    let (from, to) = (c.source.conninfo(&ascii), c.dest[0].conninfo(&d1));
    let state = TempPath::new("sql-ascii-names-sent.state");
    let job = |extra: &[&str]| {
        let mut args = vec!["table"];
        args.extend_from_slice(extra);
        args.extend(["--from", &from, "--to", &to, "--state", state.arg()]);
        run(&args)
    };
    let out = job(&[]);
    assert_exit(&out, 1);
    let said = text(&out.stderr);
    assert!(
        said.contains("its name is not UTF-8: its database is SQL_ASCII")
            && said.contains("(--exclude-table 'public.n?')"),
        "{said}"
    );
    let out = job(&["--exclude-table", "public.n?"]);
    assert_exit(&out, 1);
    let said = text(&out.stderr);
    assert!(
        said.contains(r#"table "public"."d": the name of its column "k"#)
            && said.contains("is not UTF-8")
            && said.contains("(--exclude-table 'public.d')"),
        "{said}"
    );
    assert_exit(
        &job(&[
            "--exclude-table",
            "public.n?",
            "--exclude-table",
            "public.d",
        ]),
        0,
    );
    assert_eq!(count(&c.dest[0], &d1, "plain"), 2);
    // One table: the name, not the data's encoding.
    let out = run(&["table", "d", "--from", &from, "--to", &to]);
    assert_exit(&out, 1);
    let said = text(&out.stderr);
    assert!(
        said.contains("a name of it (its schema's or a column's) is not UTF-8")
            && !said.contains("client_encoding"),
        "{said}"
    );
}

/// A value beyond ASCII too long for a SQL_ASCII destination's `varchar(n)`, which counts its
/// bytes: the 22001 says why, in one table and in a job (types62 F3: no word of why 'ßßßßß'
/// was too long for varchar(5)).
#[test]
fn a_sql_ascii_destinations_lengths_in_bytes_are_said_with_its_22001() {
    let c = clusters();
    let table = "CREATE TABLE t (v varchar(5));";
    let src = database(
        &c.source,
        &format!("{table} INSERT INTO t VALUES ('ßßßßß');"),
    );
    let ascii = sql_ascii_database(
        &c.dest[0],
        &format!("{}_ascii", c.dest[0].create_database()),
    );
    c.dest[0].connect(&ascii).batch_execute(table).unwrap();
    let state = TempPath::new("sql-ascii-lengths.state");
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&ascii));
    for job in [false, true] {
        let mut args = vec!["table", "t", "--from", &from, "--to", &to];
        if job {
            args.extend(["--state", state.arg()]);
        }
        let out = run(&args);
        assert_exit(&out, 1);
        let said = text(&out.stderr);
        assert!(
            said.contains("22001")
                && said
                    .contains("destination 1's database is SQL_ASCII, whose lengths count bytes"),
            "job {job}: {said}"
        );
    }
    assert_eq!(count(&c.dest[0], &ascii, "t"), 0);
    // From a SQL_ASCII source too, whose text of UTF-8 bytes is as long there (recheck63 F8).
    let ascii_src = sql_ascii_database(&c.source, &format!("{src}_ascii"));
    (c.source.connect(&ascii_src))
        .batch_execute("CREATE TABLE t (v text); INSERT INTO t VALUES ('ßßßßß');")
        .unwrap();
    let from = c.source.conninfo(&ascii_src);
    let out = run(&["table", "t", "--from", &from, "--to", &to]);
    assert_exit(&out, 1);
    let said = text(&out.stderr);
    assert!(
        said.contains("22001")
            && said.contains("destination 1's database is SQL_ASCII, whose lengths count bytes"),
        "{said}"
    );
}

/// `t` with a trigger that drops the rows of even ids: the destination stores half the rows.
fn drop_even_table() -> String {
    format!(
        "{T}
         CREATE FUNCTION drop_even() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN IF NEW.id % 2 = 0 THEN RETURN NULL; END IF; RETURN NEW; END $$;
         CREATE TRIGGER drop_even BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION drop_even();"
    )
}

/// A file's rows are counted as they stream, and each destination's count must match them, as
/// a server source's: a destination whose trigger dropped rows fails the copy (both roll back);
/// with `--keep-going` it alone rolls back and the other commits; `--allow-count-mismatch`
/// commits both with a warning. The rule is the manager's.
#[test]
fn file_source_destinations_are_checked_against_the_files_rows() {
    let c = clusters();
    let d1 = database(&c.dest[0], &drop_even_table());
    let d2 = database(&c.dest[1], T);
    let file = TempPath::new("disagree.txt");
    fs::write(&file.0, text_rows(1000, None)).unwrap();
    let to1 = c.dest[0].conninfo(&d1);
    let to2 = c.dest[1].conninfo(&d2);
    let args = [
        "table",
        "t",
        "--from",
        file.arg(),
        "--to",
        &to1,
        "--to",
        &to2,
    ];
    let out = run(&args);
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("row count mismatch") && stderr.contains("stored 500"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &d1, "t"), 0);
    assert_eq!(count(&c.dest[1], &d2, "t"), 0);
    assert_eq!(copy_backends(&c.dest[0], &d1), 0);
    assert_eq!(copy_backends(&c.dest[1], &d2), 0);

    let mut keep_going = args.to_vec();
    keep_going.push("--keep-going");
    let out = run(&keep_going);
    assert_exit(&out, 4);
    assert_eq!(
        count(&c.dest[0], &d1, "t"),
        0,
        "the miscounted one rolled back"
    );
    assert_eq!(count(&c.dest[1], &d2, "t"), 1000, "the other committed");
    c.dest[1].connect(&d2).batch_execute("TRUNCATE t").unwrap();

    let mut allowed = args.to_vec();
    allowed.push("--allow-count-mismatch");
    let out = run(&allowed);
    assert_exit(&out, 0);
    assert!(
        text(&out.stderr).contains("stored 500 rows where the source sent 1,000 rows"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &d1, "t"), 500);
    assert_eq!(count(&c.dest[1], &d2, "t"), 1000);
}

/// With `--keep-going`, a destination that stored fewer rows than the source sent is rolled
/// back and the others commit: the manager makes it a casualty, the run is partial.
#[test]
fn keep_going_rolls_back_only_the_miscounted_destination() {
    let c = clusters();
    let src = source_with(c, 1000);
    let d1 = database(&c.dest[0], &drop_even_table());
    let d2 = database(&c.dest[1], T);
    let out = run(&[
        "table",
        "t",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&d1),
        "--to",
        &c.dest[1].conninfo(&d2),
        "--keep-going",
    ]);
    assert_exit(&out, 4);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("row count mismatch") && stderr.contains("stored 500"),
        "{stderr}"
    );
    assert_eq!(
        count(&c.dest[0], &d1, "t"),
        0,
        "the miscounted one rolled back"
    );
    assert_eq!(count(&c.dest[1], &d2, "t"), 1000, "the other committed");
    assert_eq!(copy_backends(&c.dest[0], &d1), 0);
}

#[test]
fn count_mismatch_from_triggers_fails_unless_allowed() {
    let c = clusters();
    let src = source_with(c, 1000);
    let d1 = database(&c.dest[0], &drop_even_table());
    let args = [
        "table",
        "t",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&d1),
        "--format",
        "text",
    ];
    let out = run(&args);
    assert_exit(&out, 1);
    assert!(
        text(&out.stderr).contains("row count mismatch")
            && text(&out.stderr).contains("stored 500"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &d1, "t"), 0);
    let mut allowed = args.to_vec();
    allowed.push("--allow-count-mismatch");
    let out = run(&allowed);
    assert_exit(&out, 0);
    assert!(
        text(&out.stderr).contains("stored 500 rows where the source sent 1,000 rows"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &d1, "t"), 500);
    // --json says it on the destination too (only a job's record did).
    c.dest[0].connect(&d1).batch_execute("TRUNCATE t").unwrap();
    allowed.push("--json");
    let out = run(&allowed);
    assert_exit(&out, 0);
    let report = json(&out);
    assert_eq!(
        report["destinations"][0]["warning"],
        "stored 500 rows where the source sent 1,000 rows (--allow-count-mismatch)",
        "{report}"
    );
}

#[test]
fn one_row_is_one_row_and_help_has_examples() {
    let c = clusters();
    let src = database(&c.source, &format!("{T} INSERT INTO t VALUES (1, 'one');"));
    let d1 = database(&c.dest[0], T);
    let out = run(&[
        "table",
        "t",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&d1),
    ]);
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("copied 1 row ("), "{stderr}");
    assert!(stderr.contains("to 1 of 1 destination in"), "{stderr}");
    // Not a terminal and no --progress: no progress lines.
    assert!(!stderr.contains("1:ok"), "{stderr}");

    for sub in ["table", "copy", "demo"] {
        let out = run(&[sub, "--help"]);
        assert_exit(&out, 0);
        let help = text(&out.stdout);
        assert!(help.contains("Examples:\n  copyman "), "{sub}: {help}");
    }
}

/// A server that takes the connection and never answers is waited on as libpq waits (no
/// `connect_timeout` given), but not in silence: after 10 s (here 2) the wait is said, naming
/// the server, and again at each interval (ops54 F5: once, then silence).
#[test]
fn a_connection_that_is_never_answered_is_said() {
    let c = clusters();
    let src = database(&c.source, &format!("{T} INSERT INTO t VALUES (1, 'a');"));
    let mute = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = mute.local_addr().unwrap().port();
    let mut child = copyman()
        .args([
            "table",
            "t",
            "--from",
            &c.source.conninfo(&src),
            "--to",
            &format!("host=127.0.0.1 port={port} user=postgres dbname=mute"),
        ])
        .env("COPYMAN_TEST_SAY_AFTER", "2")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = StderrLines::take(&mut child);
    let (_held, _) = mute.accept().unwrap();
    let line = stderr.expect("no answer after 2 s");
    assert!(
        line.contains(&format!("127.0.0.1:{port}")) && line.contains("connect_timeout"),
        "{line}"
    );
    let again = stderr.expect("still no answer after 4 s");
    assert!(again.contains(&format!("127.0.0.1:{port}")), "{again}");
    child.kill().unwrap();
    child.wait().unwrap();
}

/// A `--target-table` in the source's database that holds the rows the source reads — the
/// partitioned parent of the partition read, a partition of the partitioned table read — is
/// refused as a copy into itself (the rows were copied back into the table they were read
/// from, doubled, exit 0); so is the table a view reads, as copy mode refuses a query that reads
/// it (it was only warned about, the view possibly filtering by it: every row twice, exit 0,
/// dupes47 F2). A sibling partition is another table.
#[test]
fn a_target_table_that_holds_the_source_rows_is_refused() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE p (id int, v text) PARTITION BY RANGE (id); \
         CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (0) TO (1000); \
         CREATE TABLE p2 PARTITION OF p FOR VALUES FROM (1000) TO (2000); \
         INSERT INTO p SELECT g, 'x' FROM generate_series(1, 100) g; \
         CREATE TABLE base (id int, v text); INSERT INTO base VALUES (1, 'a'), (2, 'b'); \
         CREATE VIEW base_v AS SELECT * FROM base; \
         CREATE VIEW base_vv AS SELECT * FROM base_v; \
         CREATE TABLE par (id int, v text); CREATE TABLE chi () INHERITS (par); \
         INSERT INTO par VALUES (1, 'p'); INSERT INTO chi VALUES (2, 'c');",
    );
    let conn = c.source.conninfo(&src);
    // A partition and its parent either way; an inheritance child and its parent either way:
    // read twice through the parent (dupes47 F3: exit 0).
    let into_itself = "the rows would be copied into the table they are read from";
    let family = "are a parent and its child (INHERITS)";
    for (table, target, said) in [
        ("p1", "p", into_itself),
        ("p", "p1", into_itself),
        ("chi", "par", family),
        ("par", "chi", family),
    ] {
        let out = run(&[
            "table",
            table,
            "--from",
            &conn,
            "--to",
            &conn,
            "--target-table",
            target,
        ]);
        assert_exit(&out, 2);
        let stderr = text(&out.stderr);
        assert!(stderr.contains(said), "{table} → {target}: {stderr}");
    }
    assert_eq!(count(&c.source, &src, "p1"), 100);
    assert_eq!(count(&c.source, &src, "par"), 2);
    // A view that reads the target, through another view too.
    for view in ["base_v", "base_vv"] {
        let out = run(&[
            "table",
            view,
            "--from",
            &conn,
            "--to",
            &conn,
            "--target-table",
            "base",
            "--truncate",
            "--lock-timeout",
            "2s",
        ]);
        assert_exit(&out, 2);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("its table is one the source's view reads"),
            "{view}: {stderr}"
        );
    }
    assert_eq!(count(&c.source, &src, "base"), 2);
    // A query of the partitioned table into one of its partitions (dupes47 F10: that
    // partition's rows twice, exit 0), and of an inheritance parent into its child.
    let out = run(&[
        "copy",
        "--from",
        &conn,
        "--send",
        "COPY (SELECT * FROM p WHERE id > 0) TO STDOUT",
        "--to",
        &conn,
        "--receive",
        "COPY p1 FROM STDIN",
    ]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("would be stored into the table they are read from"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.source, &src, "p1"), 100);
    // A sibling partition is another table: its constraint refuses the rows (exit 1).
    let out = run(&[
        "table",
        "p1",
        "--from",
        &conn,
        "--to",
        &conn,
        "--target-table",
        "p2",
    ]);
    assert_exit(&out, 1);
    assert!(text(&out.stderr).contains("23514"), "{}", text(&out.stderr));
    assert_eq!(count(&c.source, &src, "p"), 100);
}

/// `copy` into the source's database while another session holds the table the `--send` reads:
/// the question whether the query reads the `--receive`'s table (a temporary view of it) waited
/// for that lock in silence, before any lock timeout or watch stood. It waits no longer than a
/// moment; the copy's own wait is then said and bounded by `--lock-timeout`.
#[test]
fn the_send_readers_question_does_not_wait_in_silence_for_a_held_table() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE t (id int); CREATE TABLE t2 (id int); INSERT INTO t VALUES (1);",
    );
    let mut holder = c.source.connect(&src);
    holder
        .batch_execute("BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    // Let go once copyman ended, or after 20 s should it wait.
    let (done, ended) = std::sync::mpsc::channel::<()>();
    let release = std::thread::spawn(move || {
        let _ = ended.recv_timeout(std::time::Duration::from_secs(20));
        holder.batch_execute("ROLLBACK").unwrap();
    });
    let out = run(&[
        "copy",
        "--from",
        &c.source.conninfo(&src),
        "--send",
        "COPY (SELECT * FROM t) TO STDOUT",
        "--to",
        &c.source.conninfo(&src),
        "--receive",
        "COPY t2 FROM STDIN",
        "--lock-timeout",
        "1s",
    ]);
    done.send(()).unwrap();
    release.join().unwrap();
    assert_exit(&out, 1);
    assert!(text(&out.stderr).contains("55P03"), "{}", text(&out.stderr));
    assert_eq!(count(&c.source, &src, "t2"), 0);
}

/// A destination whose failure's words hold characters a LATIN1 destination cannot hold (a
/// constraint named in Cyrillic): the LATIN1 one, failed by copyman for it, is said rolled back,
/// not failed of its own — copyman's CopyFail quoted the other's error, which that server could
/// not convert (22P05 "in column g", an integer: recheck43 F2). CopyFail reasons go in ASCII.
#[test]
fn a_destination_failed_by_copyman_is_rolled_back_whatever_its_encoding() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE t (g int); INSERT INTO t SELECT generate_series(1, 5000);",
    );
    let d1 = database(
        &c.dest[0],
        "CREATE TABLE t (g int, CONSTRAINT \"проверка\" CHECK (g < 3000));",
    );
    let latin1 = format!("latin1_{}", std::process::id());
    c.dest[1]
        .connect("postgres")
        .batch_execute(&format!(
            "CREATE DATABASE {latin1} ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' \
             TEMPLATE template0"
        ))
        .unwrap();
    c.dest[1]
        .connect(&latin1)
        .batch_execute("CREATE TABLE t (g int);")
        .unwrap();
    let out = run(&[
        "--json",
        "table",
        "t",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&d1),
        "--to",
        &c.dest[1].conninfo(&latin1),
    ]);
    assert_exit(&out, 1);
    let report = json(&out);
    assert_eq!(report["destinations"][0]["status"], "failed", "{report}");
    assert_eq!(
        report["destinations"][1]["status"], "rolled back",
        "{report}"
    );
    assert!(
        !text(&out.stderr).contains("22P05"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[1], &latin1, "t"), 0);
}

/// A lock held by a COMMIT that waits for a synchronous standby — one a second signal left
/// behind — is said as such, with what ends it, not as a row lock of an unknown session
/// (commit46 F2: the rerun waited on "FOR UPDATE, or an uncommitted row"). Its own cluster:
/// synchronous_standby_names makes every COMMIT there wait.
#[test]
fn a_lock_held_by_a_commit_waiting_for_a_synchronous_standby_is_said_so() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);",
    );
    let dest = copyman_testkit::Cluster::builder()
        .setting("max_prepared_transactions", "2")
        .start();
    let db = database(&dest, "CREATE TABLE t (id int PRIMARY KEY);");
    let mut admin = dest.connect("postgres");
    admin
        .batch_execute("ALTER SYSTEM SET synchronous_standby_names = 'nosuch'")
        .unwrap();
    admin.batch_execute("SELECT pg_reload_conf()").unwrap();
    // Taken by the postmaster before the writer's session starts (a session started before
    // the reload was read committed without waiting: "no commit waited", under load).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while dest
        .connect(&db)
        .query_one("SHOW synchronous_standby_names", &[])
        .unwrap()
        .get::<_, String>(0)
        != "nosuch"
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the setting was never taken"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // A COMMIT, then a PREPARE TRANSACTION, which once confirmed holds the lock until its
    // COMMIT or ROLLBACK PREPARED (dup65 F10: said as a COMMIT whose rows are the table's).
    for (ending, said) in [
        (
            "SET synchronous_commit = on; INSERT INTO t VALUES (1)",
            "whose COMMIT waits for a synchronous standby to confirm it",
        ),
        (
            // (The row the copy writes again, which it waits for; the DELETE not waiting.)
            // Its PREPARE a statement of its own, as copyman sends it.
            "SET synchronous_commit = off; DELETE FROM t; SET synchronous_commit = on; BEGIN; \
             INSERT INTO t VALUES (1);; PREPARE TRANSACTION 'held'",
            "whose PREPARE TRANSACTION waits for a synchronous standby to confirm it \
             (synchronous_standby_names): prepared then, it holds the lock until its COMMIT \
             PREPARED or ROLLBACK PREPARED",
        ),
    ] {
        let mut writer = dest.connect(&db);
        let stuck = std::thread::spawn(move || {
            // (The test clusters do not wait for their own disk: this session does, and so
            // for the standby.)
            (ending.split(";;"))
                .try_for_each(|sql| writer.batch_execute(sql))
                .map_err(|e| e.to_string())
        });
        wait_for_syncrep(&dest);
        let mut child = copyman()
            .args(["table", "t", "--from", &c.source.conninfo(&src), "--to"])
            .arg(dest.conninfo(&db))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = StderrLines::take(&mut child);
        let line = stderr.expect("waiting for lock on destination 1 (");
        let _ = child.kill();
        let _ = child.wait();
        assert!(line.contains(said), "{line}");
        admin
            .batch_execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE wait_event = 'SyncRep'",
            )
            .unwrap();
        let _ = stuck.join();
    }
    admin
        .batch_execute("ALTER SYSTEM RESET synchronous_standby_names")
        .unwrap();
    admin.batch_execute("SELECT pg_reload_conf()").unwrap();
    dest.connect(&db)
        .batch_execute("ROLLBACK PREPARED 'held'")
        .unwrap();
}

/// A copy queued behind a migration's ALTER TABLE, itself waiting for an application's open
/// transaction: the wait names the ALTER TABLE as queued ahead and the transaction as the
/// lock's holder (live52 F7: the queued ALTER TABLE was said to hold the lock); the copy ends
/// once both are done.
#[test]
fn a_lock_wait_behind_a_queued_statement_names_the_holder_it_waits_for() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 100);",
    );
    let dest = database(&c.dest[0], "CREATE TABLE t (id int);");
    let mut app = c.dest[0].connect(&dest);
    app.batch_execute("BEGIN; SELECT count(*) FROM t").unwrap();
    let app_pid: i32 = app
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    let migration = {
        let (cluster, db) = (&c.dest[0], dest.clone());
        let mut conn = cluster.connect(&db);
        std::thread::spawn(move || {
            conn.batch_execute("ALTER TABLE t ADD COLUMN extra int")
                .unwrap();
        })
    };
    wait_for_lock(&c.dest[0], &dest);
    let mut child = copyman()
        .args(["table", "t", "--from", &c.source.conninfo(&src)])
        .args(["--to", &c.dest[0].conninfo(&dest), "--columns", "id"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = StderrLines::take(&mut child);
    let line = stderr.expect("waiting for lock on destination 1 (");
    assert!(
        line.contains("queued behind backend")
            && line.contains(&format!(
                "which waits itself for backend {app_pid} (the lock's holder)"
            )),
        "{line}"
    );
    assert!(!line.contains("held by"), "{line}");
    app.batch_execute("COMMIT").unwrap();
    migration.join().unwrap();
    let out = child.wait_with_output().unwrap();
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[0], &dest, "t"), 100);
}

/// A database of `cluster` named `name`, in `SQL_ASCII` (which takes bytes of any encoding).
fn sql_ascii_database(cluster: &copyman_testkit::Cluster, name: &str) -> String {
    (cluster.connect("postgres"))
        .batch_execute(&format!(
            "CREATE DATABASE {name} ENCODING 'SQL_ASCII' TEMPLATE template0 LC_COLLATE 'C' \
             LC_CTYPE 'C'"
        ))
        .unwrap();
    name.to_owned()
}

/// A lock held by another copyman's session between its statements (its source's snapshot, read
/// under its lock) is said as that, and that it is held until that copy ends — two runs
/// copying one table each way at once waited on each other for ever, each saying only "held by
/// backend N" (dup67 F13).
#[test]
fn a_lock_held_by_another_copyman_is_said_as_such() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 10);",
    );
    let d1 = database(&c.dest[0], "CREATE TABLE t (id int);");
    let mut holder = c.dest[0].connect(&d1);
    holder
        .batch_execute("SET application_name = 'copyman'; BEGIN; LOCK TABLE t IN ACCESS SHARE MODE")
        .unwrap();
    let mut child = copyman()
        .args(["table", "t", "--truncate", "--from"])
        .arg(c.source.conninfo(&src))
        .args(["--to", &c.dest[0].conninfo(&d1)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = StderrLines::take(&mut child);
    let line = stderr.expect("waiting for lock on destination 1 (");
    assert!(
        line.contains("a session of another copyman") && line.contains("neither ends: stop one"),
        "{line}"
    );
    holder.batch_execute("ROLLBACK").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[0], &d1, "t"), 10);
}
