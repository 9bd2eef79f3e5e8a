//! Rough edges testers found: `--dry-run` deciding a database given twice as the run does,
//! compressed input refused before anything is sent, a row count mismatch naming its way out,
//! and a `--receive` table spelled another way (`U&"…"`, quotes, a schema) still recognised as
//! the same table. Real clusters, shared by the binary; a fresh database per test.

use crate::common;

use std::fs;
use std::io::Write;
use std::process::{Output, Stdio};

use common::*;

const T: &str = "CREATE TABLE t (id int8 PRIMARY KEY, v text);";

/// A database on `cluster` whose `t` holds `rows` rows.
fn with_rows(cluster: &copyman_testkit::Cluster, rows: u64) -> String {
    database(
        cluster,
        &format!("{T} INSERT INTO t SELECT g, 'x' FROM generate_series(1, {rows}) g;"),
    )
}

/// The line of `out`'s stderr that holds `needle`.
#[track_caller]
fn line_with(out: &Output, needle: &str) -> String {
    let stderr = text(&out.stderr);
    stderr
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line says {needle:?}:\n{stderr}"))
        .to_owned()
}

/// Runs `args` (a `table` or `copy` command) with and without `--dry-run`: both must refuse it
/// with exit 2 and the same words; the line that says it.
#[track_caller]
fn refused_alike(args: &[&str], needle: &str) -> String {
    let out = run(args);
    assert_exit(&out, 2);
    let said = line_with(&out, needle);
    let mut dry = args.to_vec();
    dry.push("--dry-run");
    let out = run(&dry);
    assert_exit(&out, 2);
    assert_eq!(line_with(&out, needle), said, "--dry-run said otherwise");
    said
}

// Point 1: --dry-run refuses what the run refuses.

#[test]
fn dry_run_refuses_one_database_spelled_two_ways_as_the_run_does() {
    let c = clusters();
    let src = with_rows(&c.source, 100);
    let d = database(&c.dest[0], T);
    let cluster = &c.dest[0];
    let socket = cluster.socket_dir().display().to_string();
    // A key=value string over the Unix socket, and a URL with the socket as its host parameter.
    let keywords = format!(
        "host={socket} port={} user=postgres password={} dbname={d}",
        cluster.port(),
        cluster.password()
    );
    let url = cluster
        .url(&d)
        .replacen("@127.0.0.1:", "@:", 1)
        .replace(&format!("/{d}"), &format!("/{d}?host={socket}"));
    // localhost and 127.0.0.1 over TCP.
    let tcp = cluster.conninfo(&d);
    let localhost = tcp.replace("host=127.0.0.1", "host=localhost");
    let from = c.source.conninfo(&src);
    for (a, b) in [(&keywords, &url), (&tcp, &localhost)] {
        let said = refused_alike(
            &["table", "t", "--from", &from, "--to", a, "--to", b],
            ") are the same database",
        );
        assert!(said.contains("(system identifier "), "{said}");
        // copy mode: one statement for both.
        refused_alike(
            &[
                "copy",
                "--from",
                &from,
                "--send",
                "COPY t TO STDOUT",
                "--to",
                a,
                "--to",
                b,
                "--receive",
                "COPY t FROM STDIN",
            ],
            ") are the same database",
        );
        assert_eq!(count(cluster, &d, "t"), 0);
        assert!(settle_backends(cluster, &d).is_empty());
    }
    // The source's own table, through another spelling of its server.
    let own = c
        .source
        .conninfo(&src)
        .replace("host=127.0.0.1", "host=localhost");
    refused_alike(
        &["table", "t", "--from", &from, "--to", &own],
        "is the source's own table",
    );
    assert_eq!(count(&c.source, &src, "t"), 100);
    // Two databases of one server are two: the dry run passes.
    let other = database(cluster, T);
    let out = run(&[
        "table",
        "t",
        "--from",
        &from,
        "--to",
        &tcp,
        "--to",
        &cluster.conninfo(&other),
        "--dry-run",
    ]);
    assert_exit(&out, 0);
}

// Point 2: compressed input is refused before anything is sent.

/// `1\tone\n2\ttwo\n` compressed by each tool, as a file named for it (zip's stored: the
/// rows stand in it as they are, between its headers).
const COMPRESSED: [(&str, &str, &[u8]); 5] = [
    (
        "gzip",
        "t.txt.gz",
        &[
            0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0x33, 0xe4, 0xcc, 0xcf,
            0x4b, 0xe5, 0x32, 0xe2, 0x2c, 0x29, 0xcf, 0xe7, 0x02, 0x00, 0x64, 0x65, 0xd3, 0xf4,
            0x0c, 0x00, 0x00, 0x00,
        ],
    ),
    (
        "zstd",
        "t.txt.zst",
        &[
            0x28, 0xb5, 0x2f, 0xfd, 0x04, 0x58, 0x61, 0x00, 0x00, 0x31, 0x09, 0x6f, 0x6e, 0x65,
            0x0a, 0x32, 0x09, 0x74, 0x77, 0x6f, 0x0a, 0xc0, 0x68, 0x0e, 0x0d,
        ],
    ),
    (
        "bzip2",
        "t.txt.bz2",
        &[
            0x42, 0x5a, 0x68, 0x39, 0x31, 0x41, 0x59, 0x26, 0x53, 0x59, 0x10, 0xd1, 0xc9, 0xae,
            0x00, 0x00, 0x02, 0x49, 0x80, 0x00, 0x30, 0x30, 0x00, 0x02, 0x01, 0x84, 0x80, 0x20,
            0x00, 0x31, 0x06, 0x4c, 0x40, 0xd0, 0xd3, 0x26, 0x98, 0x5a, 0x41, 0x99, 0xc2, 0x78,
            0xbb, 0x92, 0x29, 0xc2, 0x84, 0x80, 0x86, 0x8e, 0x4d, 0x70,
        ],
    ),
    (
        "xz",
        "t.txt.xz",
        &[
            0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0x00, 0x04, 0xe6, 0xd6, 0xb4, 0x46, 0x02, 0x00,
            0x21, 0x01, 0x16, 0x00, 0x00, 0x00, 0x74, 0x2f, 0xe5, 0xa3, 0x01, 0x00, 0x0b, 0x31,
            0x09, 0x6f, 0x6e, 0x65, 0x0a, 0x32, 0x09, 0x74, 0x77, 0x6f, 0x0a, 0x00, 0x18, 0x94,
            0x77, 0x4b, 0xbe, 0x82, 0x5b, 0x40, 0x00, 0x01, 0x24, 0x0c, 0xa6, 0x18, 0xd8, 0xd8,
            0x1f, 0xb6, 0xf3, 0x7d, 0x01, 0x00, 0x00, 0x00, 0x00, 0x04, 0x59, 0x5a,
        ],
    ),
    (
        "zip",
        "t.xlsx",
        &[
            0x50, 0x4b, 0x03, 0x04, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x21, 0x00,
            0x64, 0x65, 0xd3, 0xf4, 0x0c, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x00, 0x00, 0x05, 0x00,
            0x00, 0x00, 0x74, 0x2e, 0x74, 0x78, 0x74, 0x31, 0x09, 0x6f, 0x6e, 0x65, 0x0a, 0x32,
            0x09, 0x74, 0x77, 0x6f, 0x0a, 0x50, 0x4b, 0x01, 0x02, 0x14, 0x03, 0x14, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x21, 0x00, 0x64, 0x65, 0xd3, 0xf4, 0x0c, 0x00, 0x00,
            0x00, 0x0c, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x80, 0x01, 0x00, 0x00, 0x00, 0x00, 0x74, 0x2e, 0x74, 0x78, 0x74,
            0x50, 0x4b, 0x05, 0x06, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x33, 0x00,
            0x00, 0x00, 0x2f, 0x00, 0x00, 0x00, 0x00, 0x00,
        ],
    ),
];

/// The command the refusal of `tool`'s data gives to decompress a file, and stdin.
fn decompress(tool: &str) -> (String, String) {
    match tool {
        "zip" => ("unzip -p".to_owned(), "funzip".to_owned()),
        _ => (format!("{tool} -dc"), format!("{tool} -dc")),
    }
}

/// The words of a refusal of compressed input `name` by `tool`.
#[track_caller]
fn assert_refused_compressed(out: &Output, name: &str, tool: &str, pipe: &str) {
    assert_exit(out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{name} is {tool}-compressed data (it starts with {tool}'s signature): COPY would \
             read the compressed bytes as rows, so nothing was sent; decompress it on its way \
             in: {pipe}"
        )),
        "{stderr}"
    );
}

/// A regular file is refused before any server is asked anything (its destination listens
/// nowhere: connecting first would exit 3), by a run and by `--dry-run` alike.
#[test]
fn compressed_file_is_refused_before_connecting() {
    let nowhere = format!(
        "host=127.0.0.1 port={} user=postgres dbname=x connect_timeout=5",
        closed_port()
    );
    for (tool, file_name, bytes) in COMPRESSED {
        let file = TempPath::new(file_name);
        fs::write(&file.0, bytes).unwrap();
        let pipe = format!("{} {} | copyman … --from -", decompress(tool).0, file.arg());
        for dry_run in [false, true] {
            let mut args = vec!["table", "t", "--from", file.arg(), "--to", &nowhere];
            if dry_run {
                args.push("--dry-run");
            }
            assert_refused_compressed(&run(&args), file.arg(), tool, &pipe);
            let mut args = vec![
                "copy",
                "--from",
                file.arg(),
                "--to",
                &nowhere,
                "--receive",
                "COPY t FROM STDIN",
            ];
            if dry_run {
                args.push("--dry-run");
            }
            assert_refused_compressed(&run(&args), file.arg(), tool, &pipe);
        }
    }
    // Named *.csv, read as CSV for its name: the way in says so (files63 F13: it read the
    // decompressed data as text).
    let (_, _, gzip) = COMPRESSED[0];
    let file = TempPath::new("t.csv");
    fs::write(&file.0, gzip).unwrap();
    let pipe = format!("gzip -dc {} | copyman … --from - --format csv", file.arg());
    let out = run(&["table", "t", "--from", file.arg(), "--to", &nowhere]);
    assert_refused_compressed(&out, file.arg(), "gzip", &pipe);
    // --json says whose refusal it is: the source's (files65 F2: null).
    let out = run(&[
        "table",
        "t",
        "--from",
        file.arg(),
        "--to",
        &nowhere,
        "--json",
    ]);
    let document = json(&out);
    assert_eq!(document["server"], "source", "{document}");
    assert_eq!(document["endpoint"], file.arg(), "{document}");
}

/// A compressed `*.csv.gz` was to be read as CSV for its name, which stdin has not: the way in
/// says `--format csv` (followed as given, the CSV was loaded as text, its quotes stored).
#[test]
fn compressed_csv_advice_keeps_its_format() {
    let nowhere = format!(
        "host=127.0.0.1 port={} user=postgres dbname=x connect_timeout=5",
        closed_port()
    );
    let (tool, _, bytes) = COMPRESSED[0];
    let file = TempPath::new("names.csv.gz");
    fs::write(&file.0, bytes).unwrap();
    let pipe = format!(
        "{} {} | copyman … --from - --format csv",
        decompress(tool).0,
        file.arg()
    );
    let out = run(&["table", "t", "--from", file.arg(), "--to", &nowhere]);
    assert_refused_compressed(&out, file.arg(), tool, &pipe);
}

/// Stdin is refused on its first read, in the same words, before any transaction began:
/// nothing committed, no session left.
#[test]
fn compressed_stdin_is_refused_on_its_first_read() {
    let c = clusters();
    let d1 = database(&c.dest[0], T);
    let d2 = database(&c.dest[1], T);
    let (to1, to2) = (c.dest[0].conninfo(&d1), c.dest[1].conninfo(&d2));
    for (tool, _, bytes) in COMPRESSED {
        let mut child = copyman()
            .args(["table", "t", "--from", "-", "--to", &to1, "--to", &to2])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Written and closed: the refusal comes from the first read either way.
        let mut stdin = child.stdin.take().unwrap();
        let _ = stdin.write_all(bytes);
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        assert_refused_compressed(
            &out,
            "stdin",
            tool,
            &format!("… | {} | copyman … --from -", decompress(tool).1),
        );
        assert_eq!(count(&c.dest[0], &d1, "t"), 0);
        assert_eq!(count(&c.dest[1], &d2, "t"), 0);
        assert!(settle_backends(&c.dest[0], &d1).is_empty());
        assert!(settle_backends(&c.dest[1], &d2).is_empty());
    }
}

/// UTF-16 text (a spreadsheet's "Unicode text", PowerShell's `>`) is told by its byte order
/// mark and refused with the command that converts it, a file before connecting and stdin on
/// its first read: it was read as UTF-8, its labels said "beyond ASCII", and the advice given
/// then failed with 22021 (invalid byte 0x00).
#[test]
fn utf16_text_is_refused_with_the_way_to_convert_it() {
    let c = clusters();
    let d1 = database(&c.dest[0], "CREATE TABLE t (a int, b text);");
    let to = c.dest[0].conninfo(&d1);
    let utf16: Vec<u8> = [0xff, 0xfe]
        .into_iter()
        .chain("a,b\r\n1,x\r\n".encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    // A *.csv read as CSV for its name: the way in keeps the format (stdin has no name).
    let named = TempPath::new("named.csv");
    fs::write(&named.0, &utf16).unwrap();
    let out = run(&["table", "t", "--from", named.arg(), "--to", &to]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("| copyman … --from - --format csv"),
        "{}",
        text(&out.stderr)
    );
    let file = TempPath::new("unicode.csv");
    fs::write(&file.0, &utf16).unwrap();
    let out = run(&["table", "t", "--from", file.arg(), "--header", "--to", &to]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{} is UTF-16 text (it starts with its byte order mark), which PostgreSQL reads in \
             no encoding, so nothing was sent; convert it on its way in: iconv -f UTF-16 -t \
             UTF-8 {} | copyman … --from -",
            file.arg(),
            file.arg()
        )),
        "{stderr}"
    );
    let mut child = copyman()
        .args(["table", "t", "--from", "-", "--header", "--to", &to])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let _ = stdin.write_all(&utf16);
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("stdin is UTF-16 text"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &d1, "t"), 0);
    assert!(settle_backends(&c.dest[0], &d1).is_empty());
}

/// pg_dump's output given as COPY data is told by its start and refused before connecting, with
/// the way to its rows: an archive failed on a NUL byte (22021), and a script's SQL was loaded
/// as rows once its `\.` was cut, as the end-of-data refusal advised.
#[test]
fn pg_dump_output_is_refused_with_the_way_to_its_rows() {
    let nowhere = format!(
        "host=127.0.0.1 port={} user=postgres dbname=x connect_timeout=5",
        closed_port()
    );
    let dumps: [(&str, &[u8], &str); 3] = [
        (
            "one.dump",
            b"PGDMP\x01\x0e\x00\x04\x08\x01\x01",
            "is a pg_dump archive",
        ),
        (
            "one.sql",
            b"--\n-- PostgreSQL database dump\n--\n\nSET statement_timeout = 0;\n",
            "is a pg_dump script, not COPY data",
        ),
        // pg_dumpall's, with a Windows line end.
        (
            "all.sql",
            b"--\r\n-- PostgreSQL database cluster dump\r\n--\r\n",
            "is a pg_dump script, not COPY data",
        ),
    ];
    for (name, bytes, said) in dumps {
        let file = TempPath::new(name);
        fs::write(&file.0, bytes).unwrap();
        let out = run(&["table", "t", "--from", file.arg(), "--to", &nowhere]);
        assert_exit(&out, 2);
        assert!(text(&out.stderr).contains(said), "{}", text(&out.stderr));
    }
}

/// A file that holds NUL bytes is no text in any encoding: refused before connecting, what it
/// is said where its signature tells — an SQLite database, a workbook, a tar archive — and
/// UTF-16 without its byte order mark converted (files67 F1: sent, and said to hold "a quote
/// inside a field", or to need --encoding LATIN1, after connecting everywhere).
#[test]
fn a_file_holding_nul_bytes_is_refused_as_no_text() {
    let nowhere = format!(
        "host=127.0.0.1 port={} user=postgres dbname=x connect_timeout=5",
        closed_port()
    );
    let mut tar = vec![b'x'; 100];
    tar.extend([0u8; 157]);
    tar.extend(b"ustar\x0000");
    let files: [(&str, &[u8], &str); 5] = [
        (
            "t.sqlite",
            b"SQLite format 3\x00\x10\x00\x01\x01",
            "an SQLite database",
        ),
        (
            "x.csv",
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00\x00",
            "an Excel 97-2003 workbook",
        ),
        ("d.csv", &tar, "a tar archive"),
        (
            "n.csv",
            b"1,a\n2,b\x00c\n",
            "it holds a NUL byte (at byte 7)",
        ),
        (
            "w.csv",
            b"i\x00d\x00,\x00v\x00\n\x00",
            "is UTF-16LE text without a byte order mark",
        ),
    ];
    for (name, bytes, said) in files {
        let file = TempPath::new(name);
        fs::write(&file.0, bytes).unwrap();
        let out = run(&["table", "t", "--from", file.arg(), "--to", &nowhere]);
        assert_exit(&out, 2);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(said) && !stderr.contains("connect"),
            "{name}: {stderr}"
        );
    }
    // From a pipe alike, by its first read.
    let c = clusters();
    let d1 = database(&c.dest[0], T);
    let to = c.dest[0].conninfo(&d1);
    let out = run_with_stdin(
        &[
            "copy",
            "--from",
            "-",
            "--to",
            &to,
            "--receive",
            "COPY t FROM STDIN",
        ],
        b"SQLite format 3\x00\x10\x00\x01\x01",
    );
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("stdin is not text"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &d1, "t"), 0);
}

/// A FIFO likewise: its writer's first bytes show the signature.
#[test]
fn compressed_fifo_is_refused_on_its_first_read() {
    let c = clusters();
    let d1 = database(&c.dest[0], T);
    let to1 = c.dest[0].conninfo(&d1);
    let (tool, _, bytes) = COMPRESSED[0];
    let fifo = TempPath::new("source.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo.0)
        .status()
        .unwrap();
    assert!(made.success());
    let path = fifo.0.clone();
    let writer = std::thread::spawn(move || {
        // Opening blocks until copyman opens the other end; a refusal may close it early.
        let mut w = fs::OpenOptions::new().write(true).open(path).unwrap();
        let _ = w.write_all(bytes);
    });
    let out = run(&[
        "copy",
        "--from",
        fifo.arg(),
        "--to",
        &to1,
        "--receive",
        "COPY t FROM STDIN",
    ]);
    writer.join().unwrap();
    assert_refused_compressed(
        &out,
        fifo.arg(),
        tool,
        &format!("{tool} -dc {} | copyman … --from -", fifo.arg()),
    );
    assert_eq!(count(&c.dest[0], &d1, "t"), 0);
    assert!(settle_backends(&c.dest[0], &d1).is_empty());
}

// Point 3: a row count mismatch names its way out.

/// `t` with a trigger that drops the rows of even ids: the destination stores half the rows.
fn drop_even_table() -> String {
    format!(
        "{T}
         CREATE FUNCTION drop_even() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN IF NEW.id % 2 = 0 THEN RETURN NULL; END IF; RETURN NEW; END $$;
         CREATE TRIGGER drop_even BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION drop_even();"
    )
}

#[test]
fn count_mismatch_names_allow_count_mismatch_and_commits_nothing() {
    let c = clusters();
    let src = with_rows(&c.source, 1000);
    let d1 = database(&c.dest[0], &drop_even_table());
    let d2 = database(&c.dest[1], T);
    let from = c.source.conninfo(&src);
    let (to1, to2) = (c.dest[0].conninfo(&d1), c.dest[1].conninfo(&d2));
    let args = ["table", "t", "--from", &from, "--to", &to1, "--to", &to2];
    let out = run(&args);
    // Exit 1: the copy failed, nothing committed.
    assert_exit(&out, 1);
    let said = line_with(&out, "row count mismatch");
    assert!(
        said.contains("stored 500 rows where the source sent 1,000 rows")
            && said.contains("--allow-count-mismatch"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &d1, "t"), 0);
    assert_eq!(count(&c.dest[1], &d2, "t"), 0);
    assert!(settle_backends(&c.dest[0], &d1).is_empty());
    assert!(settle_backends(&c.dest[1], &d2).is_empty());
    assert!(settle_backends(&c.source, &src).is_empty());

    // --keep-going: the miscounted one alone rolls back, saying the same.
    let mut keep_going = args.to_vec();
    keep_going.push("--keep-going");
    let out = run(&keep_going);
    assert_exit(&out, 4);
    assert!(
        line_with(&out, "row count mismatch").contains("--allow-count-mismatch"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &d1, "t"), 0);
    assert_eq!(count(&c.dest[1], &d2, "t"), 1000);
    c.dest[1].connect(&d2).batch_execute("TRUNCATE t").unwrap();

    // The way out: it commits what each stored, and says the counts.
    let mut allowed = args.to_vec();
    allowed.push("--allow-count-mismatch");
    let out = run(&allowed);
    assert_exit(&out, 0);
    assert!(
        line_with(&out, "stored 500 rows where the source sent 1,000 rows").contains("warning"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &d1, "t"), 500);
    assert_eq!(count(&c.dest[1], &d2, "t"), 1000);
}

/// A job (many tables) says the same of the table whose destination miscounted.
#[test]
fn job_count_mismatch_names_allow_count_mismatch() {
    let c = clusters();
    let src = database(
        &c.source,
        &format!(
            "{T} CREATE TABLE u (id int8 PRIMARY KEY);
             INSERT INTO t SELECT g, 'x' FROM generate_series(1, 1000) g;
             INSERT INTO u SELECT generate_series(1, 10);"
        ),
    );
    let d1 = database(
        &c.dest[0],
        &format!(
            "{} CREATE TABLE u (id int8 PRIMARY KEY);",
            drop_even_table()
        ),
    );
    let state = TempPath::new("job.state");
    let from = c.source.conninfo(&src);
    let to = c.dest[0].conninfo(&d1);
    let args = [
        "table",
        "t",
        "u",
        "--from",
        &from,
        "--to",
        &to,
        "--state",
        state.arg(),
        "--jobs",
        "1",
    ];
    let out = run(&args);
    assert_exit(&out, 1);
    assert!(
        line_with(&out, "row count mismatch").contains("--allow-count-mismatch"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &d1, "t"), 0);
    assert!(settle_backends(&c.dest[0], &d1).is_empty());
    let out = copyman()
        .args(args)
        .args(["--allow-count-mismatch", "--resume"])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert!(
        line_with(&out, "warning").contains("the destination stored 500 (allowed)"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &d1, "t"), 500);
}

// Point 4: a --receive table is the table its server resolves, however it is spelled.

/// Two `--receive` on one database: refused when their server resolves both to one table.
fn two_receives(c: &Clusters, src: &str, d: &str, first: &str, second: &str) -> Output {
    let from = c.source.conninfo(src);
    let tcp = c.dest[0].conninfo(d);
    let socket = format!(
        "host={} port={} user=postgres password={} dbname={d}",
        c.dest[0].socket_dir().display(),
        c.dest[0].port(),
        c.dest[0].password()
    );
    run(&[
        "copy",
        "--from",
        &from,
        "--send",
        "COPY t TO STDOUT",
        "--to",
        &tcp,
        "--receive",
        first,
        "--to",
        &socket,
        "--receive",
        second,
    ])
}

#[test]
fn receive_tables_are_resolved_by_the_server_not_by_their_spelling() {
    let c = clusters();
    let src = with_rows(&c.source, 10);
    // `t` and `"T"` are two tables; `s.t` comes first on the search_path.
    let d = database(
        &c.dest[0],
        &format!(
            "{T} CREATE TABLE \"T\" (LIKE t); CREATE SCHEMA s; CREATE TABLE s.t (LIKE t);
             CREATE TABLE \"table\" (LIKE t);"
        ),
    );
    let same = ") are the same database";
    for (first, second) in [
        // U& escapes: t, and "table" (a reserved word, quoted).
        ("COPY t FROM STDIN", r#"COPY U&"\0074" FROM STDIN"#),
        (
            r#"COPY "table" FROM STDIN"#,
            r#"COPY U&"t\0061ble" FROM STDIN"#,
        ),
        (
            r#"COPY "table" FROM STDIN"#,
            r#"COPY U&"t!0061ble" UESCAPE '!' FROM STDIN"#,
        ),
        // Case folding: unquoted T is t; quoted "t" too.
        ("COPY T FROM STDIN", r#"COPY "t" FROM STDIN"#),
        // Schema-qualified, with a comment holding a dot between the parts.
        (
            "COPY public.t FROM STDIN",
            r#"COPY "public" /* . */ . U&"\0074" (id, v) FROM STDIN"#,
        ),
    ] {
        let out = two_receives(c, &src, &d, first, second);
        assert_exit(&out, 2);
        assert!(
            text(&out.stderr).contains(same),
            "{first} / {second}: {}",
            text(&out.stderr)
        );
    }
    assert_eq!(count(&c.dest[0], &d, "t"), 0);

    // The search_path decides: with s first, `t` is s.t, the same as `s.t` and not public.t.
    c.dest[0]
        .connect(&d)
        .batch_execute(&format!(
            "ALTER DATABASE \"{d}\" SET search_path = s, public"
        ))
        .unwrap();
    let out = two_receives(c, &src, &d, "COPY t FROM STDIN", "COPY S.T FROM STDIN");
    assert_exit(&out, 2);
    assert!(text(&out.stderr).contains(same), "{}", text(&out.stderr));
    // Different tables, however alike their spelling: a warning, and both are copied.
    for (first, second, tables) in [
        (
            "COPY t FROM STDIN",
            "COPY public.t FROM STDIN",
            ["s.t", "public.t"],
        ),
        (
            "COPY public.t FROM STDIN",
            r#"COPY "T" FROM STDIN"#,
            ["public.t", r#""T""#],
        ),
    ] {
        let out = two_receives(c, &src, &d, first, second);
        assert_exit(&out, 0);
        assert!(
            text(&out.stderr).contains("their --receive statements name another table each"),
            "{}",
            text(&out.stderr)
        );
        for table in tables {
            assert_eq!(count(&c.dest[0], &d, table), 10, "{table}");
        }
        c.dest[0]
            .connect(&d)
            .batch_execute(r#"TRUNCATE public.t, s.t, "T""#)
            .unwrap();
    }
}

/// copy mode into the source's own table, however spelled: refused as table mode refuses it;
/// another table of the source's database is only warned about.
#[test]
fn receive_into_the_sources_own_table_is_refused() {
    let c = clusters();
    let src = database(
        &c.source,
        &format!(
            "{T} INSERT INTO t SELECT g, 'x' FROM generate_series(1, 10) g;
             CREATE TABLE \"table\" (LIKE t);"
        ),
    );
    let from = c.source.conninfo(&src);
    let to = c
        .source
        .conninfo(&src)
        .replace("host=127.0.0.1", "host=localhost");
    for (send, receive) in [
        ("COPY t TO STDOUT", r#"COPY U&"\0074" FROM STDIN"#),
        ("COPY T TO STDOUT", r#"COPY public."t" FROM STDIN"#),
        (
            r#"COPY "table" TO STDOUT"#,
            r#"COPY U&"t\0061ble" FROM STDIN"#,
        ),
    ] {
        let said = refused_alike(
            &[
                "copy",
                "--from",
                &from,
                "--send",
                send,
                "--to",
                &to,
                "--receive",
                receive,
            ],
            "is the source's own table",
        );
        assert!(said.contains("destination 1 ("), "{said}");
    }
    assert_eq!(count(&c.source, &src, "t"), 10);
    assert!(settle_backends(&c.source, &src).is_empty());
    let out = run(&[
        "copy",
        "--from",
        &from,
        "--send",
        "COPY t TO STDOUT",
        "--to",
        &to,
        "--receive",
        r#"COPY U&"t\0061ble" FROM STDIN"#,
    ]);
    assert_exit(&out, 0);
    assert!(
        text(&out.stderr).contains("is the source's database"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.source, &src, "\"table\""), 10);
}

/// A server written without `postgresql://` or `host=` (`user:password@host:port`, `host:port`,
/// an address) is refused as such, never taken for a file: it was created in the working
/// directory under that name, the password printed and stored, and the run said it committed
/// to what read as a server (exit 0).
#[test]
fn a_server_written_as_a_file_name_is_refused_without_its_password() {
    let c = clusters();
    let src = with_rows(&c.source, 10);
    let dir = TempPath::new("server-as-file");
    fs::create_dir_all(&dir.0).unwrap();
    let port = c.dest[0].port();
    for to in [
        format!("alice:S3cretPW@127.0.0.1:{port}"),
        format!("postgres@127.0.0.1:{port}"),
        format!("127.0.0.1:{port}"),
        "10.0.0.5".to_owned(),
        // A password file's line (conn64 F5: written to a file of that name, exit 0, its
        // password in the summary and --json).
        format!("127.0.0.1:{port}:postgres:postgres:S3cretPW"),
        "myhost:543:app:alice:S3cretPW".to_owned(),
        // libpq's escapes, a password holding `:`, IPv6 hosts (recheck64 F1: shown whole).
        r"myhost:543:app:alice:S3cretPW\:x".to_owned(),
        "myhost:543:app:alice:S3cretPW:more".to_owned(),
        format!("[::1]:{port}:postgres:postgres:S3cretPW"),
        format!(r"\:\:1:{port}:postgres:postgres:S3cretPW"),
    ] {
        let out = copyman()
            .current_dir(&dir.0)
            .args([
                "--json",
                "table",
                "t",
                "--from",
                &c.source.conninfo(&src),
                "--to",
                &to,
            ])
            .output()
            .unwrap();
        assert_exit(&out, 2);
        let (stderr, stdout) = (text(&out.stderr), text(&out.stdout));
        assert!(
            stderr.contains("names a server without saying so") && stderr.contains("./"),
            "{to}: {stderr}"
        );
        assert!(
            !stderr.contains("S3cretPW") && !stdout.contains("S3cretPW"),
            "{stderr}{stdout}"
        );
        assert_eq!(
            fs::read_dir(&dir.0).unwrap().count(),
            0,
            "{to}: a file was made"
        );
    }
    // A connection string written with ':' or blanks for '=' (conn44 F3: a file named after
    // the password, exit 0).
    for to in [
        format!("host:127.0.0.1 port:{port} password:S3cretPW"),
        format!("host 127.0.0.1 port {port} password S3cretPW"),
        "password S3cretPW".to_owned(),
        "host:127.0.0.1".to_owned(),
    ] {
        let out = copyman()
            .current_dir(&dir.0)
            .args([
                "table",
                "t",
                "--from",
                &c.source.conninfo(&src),
                "--to",
                &to,
            ])
            .output()
            .unwrap();
        assert_exit(&out, 2);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("written with ':' or blanks for '='") && !stderr.contains("S3cretPW"),
            "{to}: {stderr}"
        );
        assert_eq!(fs::read_dir(&dir.0).unwrap().count(), 0, "{to}");
    }
    // Written as a path, it is a file.
    let out = copyman()
        .current_dir(&dir.0)
        .args([
            "table",
            "t",
            "--from",
            &c.source.conninfo(&src),
            "--to",
            "./postgres@db1",
        ])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert!(dir.0.join("postgres@db1").exists());
    let _ = fs::remove_dir_all(&dir.0);
}

/// `copy --dry-run` with a `--receive` into a table its server does not have ends as the run
/// does (exit 2, the command's error as the help says, 42P01 named, with what creates it); it
/// exited 0.
#[test]
fn a_dry_run_into_a_missing_table_ends_as_the_run() {
    let c = clusters();
    let src = with_rows(&c.source, 10);
    let dst = database(&c.dest[0], T);
    let args = |dry: bool| {
        let mut args = vec![
            "copy".to_owned(),
            "--from".to_owned(),
            c.source.conninfo(&src),
            "--send".to_owned(),
            "COPY t TO STDOUT".to_owned(),
            "--to".to_owned(),
            c.dest[0].conninfo(&dst),
            "--receive".to_owned(),
            "COPY nosuch FROM STDIN".to_owned(),
        ];
        if dry {
            args.push("--dry-run".to_owned());
        }
        args
    };
    for dry in [true, false] {
        let out = copyman().args(args(dry)).output().unwrap();
        assert_exit(&out, 2);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("nosuch")
                && stderr.contains("42P01")
                && stderr.contains("pg_dump --section=pre-data"),
            "{stderr}"
        );
    }
}

/// Under `--keep-going`, every destination failing mid-COPY (each already holds the first row:
/// 23505) is said as "every destination failed", as when they fail at the COPY's start, on
/// stderr and in `--json`: not the library's "no receivers" nor "could not complete the COPY
/// operation", which timing chose between.
#[test]
fn every_destination_failing_mid_copy_is_said_in_the_commands_words() {
    let c = clusters();
    let src = with_rows(&c.source, 20_000);
    let taken = format!("{T} INSERT INTO t VALUES (1, 'taken');");
    let (d1, d2) = (database(&c.dest[0], &taken), database(&c.dest[1], &taken));
    let (from, to1, to2) = (
        c.source.conninfo(&src),
        c.dest[0].conninfo(&d1),
        c.dest[1].conninfo(&d2),
    );
    let args = [
        "--json",
        "table",
        "t",
        "--from",
        &from,
        "--to",
        &to1,
        "--to",
        &to2,
        "--keep-going",
    ];
    for _ in 0..3 {
        let out = run(&args);
        assert_exit(&out, 1);
        let doc = json(&out);
        // The error named (it said no cause), once where every destination failed with it.
        let error = doc["error"].as_str().unwrap_or_default();
        assert!(
            error.starts_with("every destination failed: SQLSTATE 23505")
                && !error.contains("destination 2: SQLSTATE"),
            "{doc}"
        );
        assert!(text(&out.stderr).contains("every destination failed: SQLSTATE 23505"));
    }
    assert_eq!(count(&c.dest[0], &d1, "t"), 1);
    assert_eq!(count(&c.dest[1], &d2, "t"), 1);
}

/// A `--where` that ends in a `-- comment`, as psql takes it: copied (it failed with
/// "unterminated parenthesis", exit 1 — the comment swallowed the closing parenthesis copyman
/// wraps it in — while its dry run exited 0).
#[test]
fn a_where_ending_in_a_line_comment_is_read_as_psql_reads_it() {
    let c = clusters();
    let src = with_rows(&c.source, 10);
    let dst = database(&c.dest[0], T);
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
    let args = [
        "table",
        "t",
        "--from",
        &from,
        "--to",
        &to,
        "--where",
        "id > 6 -- the recent ones",
    ];
    assert_exit(&run(&[&args[..], &["--dry-run"]].concat()), 0);
    assert_exit(&run(&args), 0);
    assert_eq!(count(&c.dest[0], &dst, "t"), 4);
}

/// A `--where` the source cannot read (a column misspelt, a constant of the wrong type) is the
/// command's mistake, said as --where's with the server's words, exit 2, before any
/// destination began — a dry run alike (ux70 F3: exit 1, "copy failed: source: …", after the
/// destinations began and rolled back).
#[test]
fn a_where_the_source_cannot_read_is_a_usage_error() {
    let c = clusters();
    let src = with_rows(&c.source, 10);
    let dst = database(&c.dest[0], T);
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
    for (condition, said) in [
        ("idd > 5", "SQLSTATE 42703"),
        ("id >> 'x'", "SQLSTATE 22P02"),
        ("id >", "SQLSTATE 42601"),
    ] {
        for dry in [false, true] {
            let mut args = vec![
                "table", "t", "--from", &from, "--to", &to, "--where", condition,
            ];
            if dry {
                args.push("--dry-run");
            }
            let out = run(&args);
            assert_exit(&out, 2);
            let stderr = text(&out.stderr);
            assert!(
                stderr.contains("error: --where: the source cannot read it: ")
                    && stderr.contains(said)
                    && !stderr.contains("rolled back"),
                "{condition}: {stderr}"
            );
        }
    }
    assert_eq!(count(&c.dest[0], &dst, "t"), 0);
}

/// A destination whose database is read-only by default (`default_transaction_read_only`, a
/// soft freeze) is refused while planning, as a standby is, one table and a job, dry run and
/// run alike (the run failed at its first write, 25006, and its dry run exited 0); its CONN may
/// lift it for the run.
#[test]
fn a_destination_read_only_by_default_is_refused_while_planning() {
    let c = clusters();
    let src = with_rows(&c.source, 10);
    let d = database(&c.dest[0], T);
    c.dest[0]
        .connect("postgres")
        .batch_execute(&format!(
            "ALTER DATABASE {d} SET default_transaction_read_only = on"
        ))
        .unwrap();
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&d));
    let state = TempPath::new("read-only-destination.state");
    let needle = "transactions are read-only by default: \
                  default_transaction_read_only is on, set by its database (ALTER DATABASE";
    refused_alike(&["table", "t", "--from", &from, "--to", &to], needle);
    refused_alike(
        &[
            "table",
            "t",
            "--from",
            &from,
            "--to",
            &to,
            "--state",
            state.arg(),
        ],
        needle,
    );
    let lifted = format!("{to} options='-c default_transaction_read_only=off'");
    assert_exit(&run(&["table", "t", "--from", &from, "--to", &lifted]), 0);
    assert_eq!(count(&c.dest[0], &d, "t"), 10);
    // Made read-only by its own CONN's options: said so, with the way that fits (it told the
    // DBA to look at the role and database, and to add to the CONN what it already said).
    let d = database(&c.dest[0], T);
    let frozen = format!(
        "{} options='-c default_transaction_read_only=on'",
        c.dest[0].conninfo(&d)
    );
    let out = run(&["table", "t", "--from", &from, "--to", &frozen]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("set by its CONN's options (or PGOPTIONS); take it out of them"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &d, "t"), 0);
}

/// One table under `--keep-going`: a destination that fails mid-copy is said when it fails,
/// with its error, before the copy goes on (it showed only `2:FAILED` until the summary, the
/// cause there), as a job says a table's failure.
#[test]
fn a_destination_failing_under_keep_going_is_said_when_it_fails() {
    let c = clusters();
    let src = with_rows(&c.source, 100_000);
    let d1 = database(&c.dest[0], T);
    let d2 = database(
        &c.dest[1],
        &format!("{T} INSERT INTO t VALUES (1, 'taken');"),
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
        "--keep-going",
    ]);
    assert_exit(&out, 4);
    let stderr = text(&out.stderr);
    let said = stderr
        .find("destination 2 failed: SQLSTATE 23505")
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(
        stderr[said..].contains("the copy goes on without it (--keep-going)")
            && stderr.find("PARTIAL").is_some_and(|summary| said < summary),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &d1, "t"), 100_000);
}

/// Under `--keep-going`, the last destination failing is not said to leave a copy that "goes
/// on without it" (another was left out before anything: nothing was left to go on to).
#[test]
fn the_last_destination_failing_is_not_said_to_leave_a_copy_going_on() {
    let c = clusters();
    let src = with_rows(&c.source, 100_000);
    let d1 = database(
        &c.dest[0],
        &format!("{T} INSERT INTO t VALUES (1, 'taken');"),
    );
    let ro = database(&c.dest[1], T);
    c.dest[1]
        .connect("postgres")
        .batch_execute(&format!(
            "ALTER DATABASE {ro} SET default_transaction_read_only = on"
        ))
        .unwrap();
    let out = run(&[
        "table",
        "t",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&d1),
        "--to",
        &c.dest[1].conninfo(&ro),
        "--keep-going",
    ]);
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("left out (--keep-going)") && !stderr.contains("goes on without it"),
        "{stderr}"
    );
}

/// A dry run refuses a `--receive` its destination refuses as its COPY starts, with the
/// server's words, as the run's first statement is refused (copy45 F2: it approved, exit 0, a
/// FORCE_NULL of a column not copied, a column listed twice, a WHERE on an unknown column or
/// with a subquery, an unknown ENCODING, an option of a newer server); it starts no COPY into
/// a table whose BEFORE STATEMENT trigger would fire, and leaves no session in a transaction.
#[test]
fn a_dry_run_refuses_a_receive_its_destination_refuses_at_its_start() {
    let c = clusters();
    let table = "CREATE TABLE t3 (id int, name text, email text);";
    let src = database(
        &c.source,
        &format!("{table} INSERT INTO t3 VALUES (1, 'a', 'x'), (2, 'b', 'y');"),
    );
    let dst = database(&c.dest[0], table);
    let file = TempPath::new("t3.csv");
    fs::write(&file.0, "1,a,x\n2,b,y\n").unwrap();
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
    let dry = |from: &str, receive: &str, send: Option<&str>| {
        let mut args = vec![
            "copy",
            "--dry-run",
            "--allow-count-mismatch",
            "--from",
            from,
        ];
        args.extend(send.map(|s| ["--send", s]).into_iter().flatten());
        args.extend(["--to", &to, "--receive", receive]);
        run(&args)
    };
    let send = Some("COPY t3 TO STDOUT (FORMAT csv)");
    for (receive, words) in [
        (
            "COPY t3 (id, name) FROM STDIN (FORMAT csv, FORCE_NULL (email))",
            "42P10",
        ),
        (
            "COPY t3 FROM STDIN (FORMAT csv, ENCODING 'nosuch')",
            "22023",
        ),
        ("COPY t3 FROM STDIN (FORMAT csv) WHERE nosuch > 2", "42703"),
        (
            "COPY t3 FROM STDIN (FORMAT csv) WHERE id IN (SELECT 1)",
            "0A000",
        ),
        ("COPY t3 FROM STDIN (FORMAT csv, ON_ERROR ignore)", "42601"),
    ] {
        let out = dry(file.arg(), receive, None);
        assert_exit(&out, 1);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(words) && stderr.contains("destination 1"),
            "{receive}: {stderr}"
        );
        // From a server too (a FORCE_NULL, an ENCODING refused before, by copyman's rules).
        let out = dry(&from, receive, send);
        assert!(
            matches!(out.status.code(), Some(1 | 2)),
            "{receive}: {out:?}"
        );
        assert!(text(&out.stderr).contains("destination 1"), "{out:?}");
    }
    // What starts is approved, and nothing is left behind.
    let out = dry(file.arg(), "COPY t3 FROM STDIN (FORMAT csv)", None);
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[0], &dst, "t3"), 0);
    assert!(settle_backends(&c.dest[0], &dst).is_empty());
    // A BEFORE STATEMENT trigger would fire as a COPY starts: not started.
    c.dest[0]
        .connect(&dst)
        .batch_execute(
            "CREATE SEQUENCE fired; \
             CREATE FUNCTION fire() RETURNS trigger LANGUAGE plpgsql AS \
             $$BEGIN PERFORM nextval('fired'); RETURN NULL; END$$; \
             CREATE TRIGGER before_copy BEFORE INSERT ON t3 FOR EACH STATEMENT \
             EXECUTE FUNCTION fire();",
        )
        .unwrap();
    let out = dry(file.arg(), "COPY t3 FROM STDIN (FORMAT csv)", None);
    assert_exit(&out, 0);
    let fired: bool = c.dest[0]
        .connect(&dst)
        .query_one("SELECT is_called FROM fired", &[])
        .unwrap()
        .get(0);
    assert!(!fired, "the dry run fired the destination's trigger");
    // A lock on the table (a CREATE INDEX): the trial is given up after a moment, said, not
    // waited for unsaid (recheck46 F2).
    c.dest[0]
        .connect(&dst)
        .batch_execute("DROP TRIGGER before_copy ON t3")
        .unwrap();
    let mut holder = c.dest[0].connect(&dst);
    holder
        .batch_execute("BEGIN; LOCK TABLE t3 IN SHARE MODE")
        .unwrap();
    let out = dry(file.arg(), "COPY t3 FROM STDIN (FORMAT csv)", None);
    holder.batch_execute("ROLLBACK").unwrap();
    assert_exit(&out, 0);
    assert!(
        text(&out.stderr).contains(
            "destination 1: the --receive's COPY could not be tried: its table is locked"
        ),
        "{}",
        text(&out.stderr)
    );
}
