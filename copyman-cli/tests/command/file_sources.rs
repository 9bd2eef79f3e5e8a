//! Files and stdin as the source of a copy: their rows are counted as they stream and each
//! destination's count is checked against them; a stdin source whose destinations all failed
//! ends the run at once; and the `\.` check reads client-only multibyte encodings (SJIS, …) as
//! the server does. Real clusters, shared by the binary.

use crate::common;

use std::fmt::Write as _;
use std::fs;
use std::io::Write;
use std::process::Stdio;

use common::*;

const T: &str = "CREATE TABLE t (id int8 PRIMARY KEY, v text);";

/// `t` with a trigger that drops the rows of odd ids (`RETURN NULL`): half the rows vanish
/// without an error.
fn drop_odd_table() -> String {
    format!(
        "{T}
         CREATE FUNCTION drop_odd() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN IF NEW.id % 2 = 1 THEN RETURN NULL; END IF; RETURN NEW; END $$;
         CREATE TRIGGER drop_odd BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION drop_odd();"
    )
}

/// `rows` text-format rows of `t`.
fn text_rows(rows: u64) -> String {
    let mut data = String::new();
    for i in 1..=rows {
        writeln!(data, "{i}\trow {i}").unwrap();
    }
    data
}

/// Asserts that a run failed on the row count and that nothing is left on `db`.
#[track_caller]
fn assert_count_mismatch(out: &std::process::Output, cluster: &copyman_testkit::Cluster, db: &str) {
    assert_exit(out, 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("row count mismatch") && stderr.contains("stored 500"),
        "{stderr}"
    );
    assert!(!stderr.contains("copied 500"), "{stderr}");
    assert_eq!(count(cluster, db, "t"), 0, "nothing committed");
    assert_eq!(copy_backends(cluster, db), 0);
    assert!(prepared_xacts(cluster).is_empty());
}

// Point 1: a file or stdin gave the manager no row count, so a destination whose trigger dropped
// half the rows "copied 500 rows" and exited 0.

#[test]
fn file_and_stdin_rows_are_counted_so_dropped_rows_fail_the_copy() {
    let c = clusters();
    let dest = &c.dest[0];
    let db = database(dest, &drop_odd_table());
    let to = dest.conninfo(&db);
    let data = text_rows(1000);

    // A text file.
    let file = TempPath::new("dropped.txt");
    fs::write(&file.0, &data).unwrap();
    let out = run(&["table", "t", "--from", file.arg(), "--to", &to]);
    assert_count_mismatch(&out, dest, &db);

    // Stdin.
    let out = run_with_stdin(&["table", "t", "--from", "-", "--to", &to], data.as_bytes());
    assert_count_mismatch(&out, dest, &db);

    // CSV with a header and values that hold line ends (quoted): 1000 rows, not 1002 lines.
    let mut csv = String::from("id,v\n");
    for i in 1..=1000 {
        if i % 100 == 0 {
            writeln!(csv, "{i},\"two\nlines, \"\"quoted\"\"\"").unwrap();
        } else {
            writeln!(csv, "{i},row {i}").unwrap();
        }
    }
    let csv_file = TempPath::new("dropped.csv");
    fs::write(&csv_file.0, &csv).unwrap();
    let out = run(&[
        "table",
        "t",
        "--from",
        csv_file.arg(),
        "--to",
        &to,
        "--header",
    ]);
    assert_count_mismatch(&out, dest, &db);

    // Binary: its tuples are counted.
    let src = database(
        &c.source,
        &format!("{T} INSERT INTO t SELECT g, 'x' FROM generate_series(1, 1000) g;"),
    );
    let bin = TempPath::new("dropped.bin");
    let out = run(&[
        "table",
        "t",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        bin.arg(),
        "--format",
        "binary",
    ]);
    assert_exit(&out, 0);
    let out = run(&[
        "table",
        "t",
        "--from",
        bin.arg(),
        "--to",
        &to,
        "--format",
        "binary",
    ]);
    assert_count_mismatch(&out, dest, &db);

    // --allow-count-mismatch accepts it, saying so.
    let out = run(&[
        "table",
        "t",
        "--from",
        file.arg(),
        "--to",
        &to,
        "--allow-count-mismatch",
    ]);
    assert_exit(&out, 0);
    assert!(
        text(&out.stderr).contains("stored 500 rows where the source sent 1,000 rows"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(dest, &db, "t"), 500);

    // Without a trigger, every count matches: text, CSV with its quoted line ends, stdin.
    let plain = database(&c.dest[1], T);
    let to_plain = c.dest[1].conninfo(&plain);
    let out = run(&[
        "table",
        "t",
        "--from",
        csv_file.arg(),
        "--to",
        &to_plain,
        "--header",
    ]);
    assert_exit(&out, 0);
    assert!(
        text(&out.stderr).contains("copied 1,000 rows"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[1], &plain, "t"), 1000);
}

// Point 3: a stdin source whose destinations all rejected row 1 waited for more stdin (for ever,
// with a pipe that stays open), saying "nothing has moved" about destinations that had failed.

#[test]
fn stdin_source_ends_when_every_destination_failed_while_stdin_stays_open() {
    let c = clusters();
    let d1 = database(&c.dest[0], T);
    let d2 = database(&c.dest[1], T);
    let (to1, to2) = (c.dest[0].conninfo(&d1), c.dest[1].conninfo(&d2));
    for extra in [None, Some("--keep-going")] {
        let mut args = vec!["table", "t", "--from", "-", "--to", &to1, "--to", &to2];
        args.extend(extra);
        let mut child = copyman()
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn copyman");
        // Row 1 is bad for both destinations; the pipe stays open (this test holds its end).
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"bad\ta\n").unwrap();
        stdin.flush().unwrap();
        let started = std::time::Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if started.elapsed() > std::time::Duration::from_secs(120) {
                break None;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        let ended_while_open = status.is_some();
        if !ended_while_open {
            child.kill().unwrap();
        }
        // Only now does the pipe close.
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        let stderr = text(&out.stderr);
        assert!(
            ended_while_open,
            "{extra:?}: copyman waited for stdin after every destination failed\n{stderr}"
        );
        assert_eq!(status.unwrap().code(), Some(1), "{extra:?}: {stderr}");
        assert!(stderr.contains("22P02"), "{extra:?}: {stderr}");
        assert!(!stderr.contains("nothing has moved"), "{extra:?}: {stderr}");
        assert_eq!(count(&c.dest[0], &d1, "t"), 0);
        assert_eq!(count(&c.dest[1], &d2, "t"), 0);
        assert_eq!(copy_backends(&c.dest[0], &d1), 0);
        assert_eq!(copy_backends(&c.dest[1], &d2), 0);
    }

    // One destination failing, without --keep-going, ends it too.
    let good = database(&c.dest[1], "CREATE TABLE t (id text, v text);");
    let to_good = c.dest[1].conninfo(&good);
    let mut child = copyman()
        .args(["table", "t", "--from", "-", "--to", &to1, "--to", &to_good])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn copyman");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"bad\ta\n").unwrap();
    stdin.flush().unwrap();
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > std::time::Duration::from_secs(120) {
            child.kill().unwrap();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(1),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[1], &good, "t"), 0, "the other rolled back");
    assert_eq!(copy_backends(&c.dest[1], &good), 0);
}

// Point 2: the `\.` check read client encodings whose multibyte characters can end in 0x5C (a
// backslash) byte by byte, where the server steps over whole characters: a real marker after
// such a character was missed (rows lost, exit 0), and valid data was refused.

const X2: &str = "CREATE TABLE x2 (id int, v text);";

/// What PostgreSQL itself loads from `data` sent by a plain `COPY x2 FROM STDIN` in
/// `client_encoding` `encoding`: the reference. Its rows, and the database it loaded them into.
fn server_loads(c: &Clusters, encoding: &str, data: &[u8]) -> (u64, String) {
    let db = database(&c.dest[1], X2);
    let mut client = c.dest[1].connect(&db);
    client
        .batch_execute(&format!("SET client_encoding = '{encoding}'"))
        .unwrap();
    let mut writer = client.copy_in("COPY x2 FROM STDIN").unwrap();
    writer.write_all(data).unwrap();
    (writer.finish().unwrap(), db)
}

#[test]
fn client_only_multibyte_encodings_are_read_as_the_server_reads_them() {
    let c = clusters();
    let dest = &c.dest[0];
    // Each encoding with a valid two-byte character whose second byte is 0x5C.
    let encodings: [(&str, &[u8]); 4] = [
        ("SJIS", b"\x95\x5c"),
        ("BIG5", b"\xa5\x5c"),
        ("GBK", b"\x81\x5c"),
        ("GB18030", b"\x81\x5c"),
    ];
    for (encoding, ch) in encodings {
        // The character, then a real `\.`: the server ends the data there (rows 2 and 3 lost).
        let mut lost = b"1\tx".to_vec();
        lost.extend_from_slice(ch);
        lost.extend_from_slice(b"\\.\n2\tb\n3\tc\n");
        assert_eq!(server_loads(c, encoding, &lost).0, 1, "{encoding}");
        // The character, then a dot: data (its 0x5C escapes nothing), three rows.
        let mut valid = b"1\t".to_vec();
        valid.extend_from_slice(ch);
        valid.extend_from_slice(b".\n2\tb\n3\tc\n");
        let (rows, reference) = server_loads(c, encoding, &valid);
        assert_eq!(rows, 3, "{encoding}");

        let db = database(dest, X2);
        let to = dest.conninfo(&db);
        let file = TempPath::new("mb.txt");
        fs::write(&file.0, &lost).unwrap();
        let args = [
            "table",
            "x2",
            "--from",
            file.arg(),
            "--to",
            &to,
            "--encoding",
            encoding,
        ];
        let out = run(&args);
        assert_exit(&out, 1);
        assert!(
            text(&out.stderr).contains("line 1 of") && text(&out.stderr).contains("ends in `\\.`"),
            "{encoding}: {}",
            text(&out.stderr)
        );
        assert_eq!(count(dest, &db, "x2"), 0, "{encoding}");

        // The same encoding named by a copy's own statement is read in it alike (a statement
        // with an ENCODING was not scanned: the rows after the `\.` were lost, exit 0).
        let receive = format!("COPY x2 FROM STDIN (ENCODING '{encoding}')");
        let copy_args = [
            "copy",
            "--from",
            file.arg(),
            "--to",
            &to,
            "--receive",
            &receive,
        ];
        let out = run(&copy_args);
        assert_exit(&out, 1);
        assert!(
            text(&out.stderr).contains("line 1 of") && text(&out.stderr).contains("ends in `\\.`"),
            "{encoding}: {}",
            text(&out.stderr)
        );
        assert_eq!(count(dest, &db, "x2"), 0, "{encoding}");

        fs::write(&file.0, &valid).unwrap();
        let out = run(&copy_args);
        assert_exit(&out, 0);
        assert!(
            text(&out.stderr).contains("copied 3 rows"),
            "{encoding}: {}",
            text(&out.stderr)
        );
        c.dest[0].connect(&db).batch_execute("TRUNCATE x2").unwrap();
        let out = run(&args);
        assert_exit(&out, 0);
        assert!(
            text(&out.stderr).contains("copied 3 rows"),
            "{encoding}: {}",
            text(&out.stderr)
        );
        assert_eq!(
            digest(dest, &db, "x2"),
            digest(&c.dest[1], &reference, "x2"),
            "{encoding}: what PostgreSQL loads itself"
        );
    }

    // The encoding can come from the destination's connection string too, and stdin is read
    // the same way.
    let db = database(dest, X2);
    let to = format!("{} client_encoding=SJIS", dest.conninfo(&db));
    let out = run_with_stdin(
        &["table", "x2", "--from", "-", "--to", &to],
        b"1\t\x95\x5c.\n2\tb\n3\tc\n",
    );
    assert_exit(&out, 0);
    assert_eq!(count(dest, &db, "x2"), 3);

    // A header in such an encoding is not split from the data: the server skips it, where it
    // was refused as one given without --header (enc45 F1), `--header` and a `--receive`'s
    // HEADER alike.
    let file = TempPath::new("header.sjis.csv");
    fs::write(&file.0, b"id,v\n1,\x95\x5c\n2,b\n").unwrap();
    let db = database(dest, X2);
    let to = dest.conninfo(&db);
    let out = run(&[
        "table",
        "x2",
        "--from",
        file.arg(),
        "--to",
        &to,
        "--encoding",
        "SJIS",
        "--header",
    ]);
    assert_exit(&out, 0);
    assert_eq!(count(dest, &db, "x2"), 2);
    let receive = "COPY x2 FROM STDIN (FORMAT csv, HEADER, ENCODING 'SJIS')";
    let out = run(&[
        "copy",
        "--from",
        file.arg(),
        "--to",
        &to,
        "--receive",
        receive,
    ]);
    assert_exit(&out, 0);
    assert_eq!(count(dest, &db, "x2"), 4);
}

/// `copy` mode reads its `--receive`'s options as the server does: a CSV file with a header and
/// quoted line ends, loaded through `COPY … (FORMAT csv, HEADER)`, is counted too, so a trigger
/// that drops rows fails the copy (it exited 0: CSV statements gave no count); a table named
/// like an option (`header_log`) is only a name.
#[test]
fn copy_statements_with_csv_and_a_header_are_counted() {
    let c = clusters();
    let mut csv = String::from("id,v\n");
    for i in 1..=1000 {
        writeln!(csv, "{i},\"row\n{i}\"").unwrap();
    }
    let file = TempPath::new("counted.csv");
    fs::write(&file.0, &csv).unwrap();
    let d = database(&c.dest[0], &drop_odd_table());
    let out = run(&[
        "copy",
        "--from",
        file.arg(),
        "--to",
        &c.dest[0].conninfo(&d),
        "--receive",
        "COPY t FROM STDIN (FORMAT csv, HEADER)",
    ]);
    assert_count_mismatch(&out, &c.dest[0], &d);
    // Without the trigger: every row, and the count agrees.
    let d = database(
        &c.dest[0],
        &format!("{T} CREATE TABLE header_log (id int8, v text);"),
    );
    let out = run(&[
        "copy",
        "--from",
        file.arg(),
        "--to",
        &c.dest[0].conninfo(&d),
        "--receive",
        "COPY t FROM STDIN WITH CSV HEADER",
    ]);
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[0], &d, "t"), 1000);
    let text = TempPath::new("counted.txt");
    fs::write(&text.0, text_rows(10)).unwrap();
    let out = run(&[
        "copy",
        "--from",
        text.arg(),
        "--to",
        &c.dest[0].conninfo(&d),
        "--receive",
        "COPY header_log FROM STDIN",
    ]);
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[0], &d, "header_log"), 10);
}

/// A NUL byte in the input (UTF-16 without a byte order mark, padding) is in no encoding: the
/// error says so and what such input usually is, not "give its encoding with --encoding, e.g.
/// --encoding LATIN1", which fails the same way (files39 F3) — before connecting, by its first
/// bytes (files67 F1).
#[test]
fn a_nul_byte_is_not_said_as_another_encoding() {
    let c = clusters();
    let d = database(&c.dest[0], "CREATE TABLE t (id int, v text);");
    let file = TempPath::new("utf16.txt");
    fs::write(&file.0, b"1\0\t\0a\0\n\0").unwrap();
    for encoding in [None, Some("LATIN1")] {
        let to = c.dest[0].conninfo(&d);
        let mut args = vec!["table", "t", "--from", file.arg(), "--to", &to];
        args.extend(encoding.map(|e| ["--encoding", e]).into_iter().flatten());
        let out = run(&args);
        assert_exit(&out, 2);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("is UTF-16LE text without a byte order mark")
                && stderr.contains("iconv -f UTF-16LE -t UTF-8")
                && !stderr.contains("e.g. --encoding LATIN1"),
            "{stderr}"
        );
    }
    assert_eq!(count(&c.dest[0], &d, "t"), 0);
}

/// A UTF-8 file read as `--encoding LATIN1` (or `PGCLIENTENCODING=LATIN1`): loaded as asked, but
/// said — its characters past ASCII become two each (`café` as `cafÃ©`) without an error, and
/// the warning told it to use WIN1252, which failed or garbled it more (files39 F4).
#[test]
fn a_utf8_file_read_as_latin1_is_said() {
    let c = clusters();
    let d = database(&c.dest[0], "CREATE TABLE t (id int, v text);");
    let file = TempPath::new("utf8.txt");
    fs::write(&file.0, "1\tcafé — “x”\n").unwrap();
    let to = c.dest[0].conninfo(&d);
    let out = run(&[
        "table",
        "t",
        "--from",
        file.arg(),
        "--to",
        &to,
        "--encoding",
        "LATIN1",
    ]);
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "is read as LATIN1 (--encoding), but its first bytes past ASCII are all \
             UTF-8 characters"
        ) && stderr.contains("give --encoding UTF8")
            && !stderr.contains("WIN1252"),
        "{stderr}"
    );
    // Read as LATIN1 by the sessions' client_encoding (PGCLIENTENCODING), as psql's \copy
    // reads it: said as such (conn48 F2: "(--encoding)", and "leave out --encoding", of an
    // --encoding never given).
    let out = copyman()
        .args(["table", "t", "--from", file.arg(), "--to", &to])
        .env("PGCLIENTENCODING", "LATIN1")
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "is read as LATIN1 (the sessions' client_encoding, from PGCLIENTENCODING or a \
             CONN), but its first bytes past ASCII are all UTF-8 characters"
        ) && stderr.contains("give --encoding UTF8"),
        "{stderr}"
    );
    // The way said loads it as it is.
    let out = copyman()
        .args([
            "table",
            "t",
            "--from",
            file.arg(),
            "--to",
            &to,
            "--encoding",
            "UTF8",
        ])
        .env("PGCLIENTENCODING", "LATIN1")
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert_eq!(
        count(&c.dest[0], &d, "(SELECT 1 FROM t WHERE v = 'café — “x”')"),
        1
    );
}

/// A file in another encoding than UTF8 read without `--encoding`: every destination refuses
/// its bytes (22021); the error is said once in the headline, with the encoding the file was
/// read as and `--encoding`, the way out (it was the server's bare words, three times).
#[test]
fn a_file_in_another_encoding_is_said_with_the_way_out() {
    let c = clusters();
    let table = "CREATE TABLE t (id int, v text);";
    let (d1, d2) = (database(&c.dest[0], table), database(&c.dest[1], table));
    let file = TempPath::new("latin1.txt");
    fs::write(&file.0, b"1\t\xe9t\xe9\n2\tx\n").unwrap();
    let (to1, to2) = (c.dest[0].conninfo(&d1), c.dest[1].conninfo(&d2));
    let out = run(&[
        "table",
        "t",
        "--from",
        file.arg(),
        "--to",
        &to1,
        "--to",
        &to2,
    ]);
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    let hint = format!(
        "(the file {} is read as UTF8 (the default): give its encoding with --encoding, e.g. \
         --encoding LATIN1)",
        file.arg()
    );
    // (Destination 2 fails as well, or is rolled back once destination 1 failed.)
    assert!(
        stderr.contains("failed: SQLSTATE 22021: ")
            && stderr.contains(&hint)
            && !stderr.contains("destination 1: SQLSTATE"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &d1, "t"), 0);
    assert_eq!(count(&c.dest[1], &d2, "t"), 0);
    let out = run(&[
        "table",
        "t",
        "--from",
        file.arg(),
        "--to",
        &to1,
        "--to",
        &to2,
        "--encoding",
        "LATIN1",
    ]);
    assert_exit(&out, 0);
    let v: String = c.dest[1]
        .connect(&d2)
        .query_one("SELECT v FROM t WHERE id = 1", &[])
        .unwrap()
        .get(0);
    assert_eq!(v, "été");
}

/// A SQL_ASCII source database holding LATIN1 bytes, read as UTF8: its failure says why and the
/// way out (`client_encoding`), which copies the rows (it was the server's bare 22021).
#[test]
fn a_sql_ascii_source_that_is_not_utf8_is_said_with_the_way_out() {
    let c = clusters();
    let name = format!("ascii_{}", std::process::id());
    let mut admin = c.source.connect("postgres");
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
        .unwrap();
    admin
        .batch_execute(&format!(
            "CREATE DATABASE {name} ENCODING SQL_ASCII TEMPLATE template0 LC_COLLATE 'C' \
             LC_CTYPE 'C'"
        ))
        .unwrap();
    c.source
        .connect(&name)
        .batch_execute("CREATE TABLE s (id int, t text); INSERT INTO s VALUES (1, E'caf\\xe9')")
        .unwrap();
    let d = database(&c.dest[0], "CREATE TABLE s (id int, t text);");
    let to = c.dest[0].conninfo(&d);
    let out = run(&[
        "table",
        "s",
        "--from",
        &c.source.conninfo(&name),
        "--to",
        &to,
    ]);
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("source: SQLSTATE 22021")
            && stderr.contains("the source's database is SQL_ASCII")
            && stderr.contains("client_encoding=LATIN1"),
        "{stderr}"
    );
    let from = format!("{} client_encoding=LATIN1", c.source.conninfo(&name));
    let to = format!("{to} client_encoding=LATIN1");
    let out = run(&["table", "s", "--from", &from, "--to", &to]);
    assert_exit(&out, 0);
    let v: String = c.dest[0]
        .connect(&d)
        .query_one("SELECT t FROM s", &[])
        .unwrap()
        .get(0);
    assert_eq!(v, "café");
    admin
        .batch_execute(&format!("DROP DATABASE {name}"))
        .unwrap();
}

/// A text file given to a `FORMAT binary` receive is refused as not binary, and not first said
/// to be binary data whose values are read as the destination's types: the two lines
/// contradicted each other (files40 F1).
#[test]
fn a_text_file_into_a_binary_receive_is_not_said_binary_first() {
    let c = clusters();
    let d1 = database(&c.dest[0], T);
    let file = TempPath::new("not-binary.csv");
    fs::write(&file.0, text_rows(5)).unwrap();
    let out = copyman()
        .args([
            "copy",
            "--from",
            file.arg(),
            "--to",
            &c.dest[0].conninfo(&d1),
        ])
        .args(["--receive", "COPY t FROM STDIN (FORMAT binary)"])
        .output()
        .unwrap();
    let said = text(&out.stderr);
    assert_exit(&out, 2);
    assert!(said.contains("this file does not"), "{said}");
    assert!(!said.contains("is binary COPY data"), "{said}");
    assert_eq!(count(&c.dest[0], &d1, "t"), 0);
    // An empty stdin is said empty (it was advised to give the file's FORMAT).
    let out = run_with_stdin(
        &[
            "copy",
            "--from",
            "-",
            "--to",
            &c.dest[0].conninfo(&d1),
            "--receive",
            "COPY t FROM STDIN (FORMAT binary)",
        ],
        b"",
    );
    assert_exit(&out, 2);
    let said = text(&out.stderr);
    assert!(
        said.contains("stdin is empty: there is no binary COPY data"),
        "{said}"
    );
}

/// A `*.csv` file read by a `--receive` in text is said: its quotes are stored as data, and
/// silently where one column takes each line whole (files40 F11), as the mirror (text written
/// to a `*.csv`) is said.
#[test]
fn a_csv_file_read_as_text_is_said() {
    let c = clusters();
    let d1 = database(&c.dest[0], "CREATE TABLE one (v text)");
    let file = TempPath::new("names.csv");
    fs::write(&file.0, "\"hello, world\"\n").unwrap();
    let out = copyman()
        .args([
            "copy",
            "--from",
            file.arg(),
            "--to",
            &c.dest[0].conninfo(&d1),
        ])
        .args(["--receive", "COPY one FROM STDIN"])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let said = text(&out.stderr);
    assert!(
        said.contains("read in FORMAT text (the --receive's), not CSV")
            && said.contains("add (FORMAT csv)"),
        "{said}"
    );
}

/// A text file "converted" to CSV by copying it to a `*.csv` under `--format csv`, where no
/// server parses it, is refused: a file is copied to a file as it is, and the text bytes were
/// written to the `*.csv`, counted as CSV's rows (549 of 1000), exit 0 (files40 F8). A CSV file
/// so copied goes as before.
#[test]
fn a_text_file_is_not_converted_to_csv_without_a_server() {
    let from = TempPath::new("data.txt");
    fs::write(&from.0, "1\tSmith, \"J\"\n2\tDoe\n3\tRoe\n").unwrap();
    let to = TempPath::new("data.csv");
    let out = run(&[
        "table",
        "t",
        "--from",
        from.arg(),
        "--to",
        to.arg(),
        "--format",
        "csv",
    ]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("text COPY data, not CSV as --format csv says"),
        "{}",
        text(&out.stderr)
    );
    assert!(!to.0.exists());
    fs::write(&from.0, "1,\"Smith, J\"\n2,Doe\n").unwrap();
    let out = run(&[
        "table",
        "t",
        "--from",
        from.arg(),
        "--to",
        to.arg(),
        "--format",
        "csv",
    ]);
    assert_exit(&out, 0);
    assert_eq!(fs::read(&to.0).unwrap(), fs::read(&from.0).unwrap());
}

/// A file loaded through a `--receive` that filters its rows (`WHERE`), under
/// `--allow-count-mismatch`, commits what the destination stored, as the README says: a file
/// source was taken for a `--send` that wrote, and the copy always failed, "the --send's
/// statement changed data on the source" (copy45 F1).
#[test]
fn a_file_into_a_filtering_receive_commits_what_it_stored() {
    let c = clusters();
    let d = database(&c.dest[0], "CREATE TABLE w (id int, s text);");
    let data = TempPath::new("filtered.csv");
    fs::write(&data.0, "1,a\n2,b\n3,c\n4,d\n").unwrap();
    let out = run(&[
        "copy",
        "--from",
        data.arg(),
        "--to",
        &c.dest[0].conninfo(&d),
        "--receive",
        "COPY w FROM STDIN (FORMAT csv) WHERE id > 2",
        "--allow-count-mismatch",
        "--json",
    ]);
    assert_exit(&out, 0);
    assert!(
        !text(&out.stderr).contains("--send"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &d, "w"), 2);
    // Its format, as its dry run says it (copy44 F9.4: null).
    assert_eq!(json(&out)["format"], "csv");
}

/// `copy` from a file checks the `--receive`'s table as from a server (copy45 F3, F4): a column
/// list leaving out a column of a domain that refuses NULL is refused (exit 2: COPY stored NULL
/// past the domain in every row, exit 0), and a column whose values come from a sequence, or an
/// INSERT trigger, is said.
#[test]
fn copy_from_a_file_checks_the_receives_table() {
    let c = clusters();
    let d = database(
        &c.dest[0],
        "CREATE DOMAIN nn_text AS text NOT NULL;
         CREATE TABLE dn (id int, v nn_text, w text);
         CREATE TABLE sr (id serial PRIMARY KEY, v text);
         CREATE FUNCTION keep() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
         CREATE TRIGGER keep BEFORE INSERT ON sr FOR EACH ROW EXECUTE FUNCTION keep();",
    );
    let data = TempPath::new("receive-checks.csv");
    fs::write(&data.0, "1,x\n2,y\n").unwrap();
    let to = c.dest[0].conninfo(&d);
    let load = |receive: &str| {
        run(&[
            "copy",
            "--from",
            data.arg(),
            "--to",
            &to,
            "--receive",
            receive,
        ])
    };
    let out = load("COPY dn (id, w) FROM STDIN (FORMAT csv)");
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("the --receive's column list leaves out \"v\""),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &d, "dn"), 0);
    let out = load("COPY sr (id, v) FROM STDIN (FORMAT csv)");
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("whose values come from a sequence there")
            && stderr.contains("runs INSERT triggers on it (keep)"),
        "{stderr}"
    );
}

/// A `*.tsv` file read as text COPY data whose backslashes would be escapes is said, with the
/// way to read it as it is — which stores it as it is (files48 F6: `C:\new\table` stored with a
/// newline and a tab, exit 0, without a word).
#[test]
fn a_tsv_file_with_backslashes_is_said_with_the_way_to_read_it_as_it_is() {
    let c = clusters();
    let d = database(&c.dest[0], "CREATE TABLE t (id int, v text);");
    let file = TempPath::new("export.tsv");
    fs::write(&file.0, "1\tC:\\new\\table\n").unwrap();
    let to = c.dest[0].conninfo(&d);
    let out = run(&["table", "t", "--from", file.arg(), "--to", &to]);
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "is read as PostgreSQL's text COPY format, in which a backslash begins an escape"
        ) && stderr.contains("DELIMITER E'\\t', QUOTE E'\\x01'")
            && stderr.contains("this --receive: COPY \"t\" FROM STDIN"),
        "{stderr}"
    );
    let receive = "COPY t FROM STDIN (FORMAT csv, DELIMITER E'\\t', QUOTE E'\\x01')";
    let out = run(&[
        "copy",
        "--from",
        file.arg(),
        "--to",
        &to,
        "--receive",
        receive,
    ]);
    assert_exit(&out, 0);
    assert_eq!(
        count(
            &c.dest[0],
            &d,
            "(SELECT 1 FROM t WHERE v = 'C:\\new\\table')"
        ),
        1
    );
}

/// Standard input by its path (`/dev/stdin`) from a regular file is read on from where the shell
/// left it, as `-` is (files48 F5: `{ read header; copyman --from /dev/stdin …; } < FILE` loaded
/// the line read: the path opened anew starts at the file's start).
#[test]
fn stdin_by_its_path_is_read_from_where_the_shell_left_it() {
    let c = clusters();
    let d = database(&c.dest[0], "CREATE TABLE t (id int, v text);");
    let file = TempPath::new("skip-first.txt");
    fs::write(&file.0, "1\tskip me\n2\tb\n3\tc\n").unwrap();
    let to = c.dest[0].conninfo(&d);
    for from in ["-", "/dev/stdin"] {
        let mut stdin = fs::File::open(&file.0).unwrap();
        std::io::Seek::seek(&mut stdin, std::io::SeekFrom::Start(10)).unwrap();
        let out = copyman()
            .args(["copy", "--from", from, "--to", &to])
            .args(["--receive", "COPY t FROM STDIN"])
            .stdin(stdin)
            .output()
            .unwrap();
        assert_exit(&out, 0);
    }
    assert_eq!(count(&c.dest[0], &d, "t"), 4);
    assert_eq!(count(&c.dest[0], &d, "(SELECT 1 FROM t WHERE id = 1)"), 0);
}

/// A quoted value over many line ends — a quote opening a field that was not meant to, which
/// merges the rows after it into one value — is said, with its lines, before anything commits
/// (files67 F19: 100 000 lines loaded as 10 010 rows, exit 0, not a word).
#[test]
fn a_quoted_value_over_many_lines_is_said() {
    let c = clusters();
    let d = database(&c.dest[0], "CREATE TABLE f (a text, b text);");
    let mut rows: Vec<String> = (1..=1000).map(|i| format!("{i},v{i}")).collect();
    rows[10] = "11,\"oops".to_owned();
    rows[899] = "900,end\"".to_owned();
    let file = TempPath::new("merged.csv");
    fs::write(&file.0, rows.join("\n") + "\n").unwrap();
    let to = c.dest[0].conninfo(&d);
    let args = ["copy", "--from", file.arg(), "--to", &to, "--receive"];
    let out = run(&[&args[..], &["COPY f FROM STDIN (FORMAT csv)"]].concat());
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("a quoted value opened on line 11 closes only on line 900")
            && stderr.contains("the 889 line ends between are data of that one value"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &d, "f"), 111);
}
