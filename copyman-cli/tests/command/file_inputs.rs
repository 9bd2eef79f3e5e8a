//! What the start of an input file means: a header line naming the columns in another order
//! than the COPY reads them is refused before anything is sent (it would load every value into
//! the wrong column), a UTF-8 byte order mark is not loaded into the first value, a PGCOPY file
//! without a format is read as binary and one that contradicts its format is refused — and the
//! row counts are checked all the same. Real clusters, shared by the binary.

use crate::common;

use std::fs;
use std::io::Write;
use std::process::Stdio;

use common::*;

/// Two text columns: a header in another order loads without any error.
const P: &str = "CREATE TABLE p (a text, b text);";
/// An integer first: a byte order mark in its first value is 22P02.
const T: &str = "CREATE TABLE t (a int, b text);";

/// A file named `name` holding `data`.
fn file(name: &str, data: &[u8]) -> TempPath {
    let path = TempPath::new(name);
    fs::write(&path.0, data).unwrap();
    path
}

/// The rows of `table` on `cluster`'s `db`, as text, in order.
fn rows(cluster: &copyman_testkit::Cluster, db: &str, query: &str) -> Vec<String> {
    cluster
        .connect(db)
        .query(query, &[])
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect()
}

/// Nothing reached either destination: no row, no backend left in a COPY.
#[track_caller]
fn nothing_anywhere(c: &Clusters, dbs: &[String; 2], table: &str) {
    for (cluster, db) in c.dest.iter().zip(dbs) {
        assert_eq!(count(cluster, db, table), 0);
        assert_eq!(copy_backends(cluster, db), 0);
        assert!(prepared_xacts(cluster).is_empty());
    }
}

/// A column whose name holds a line break: the refusal's `--columns` writes it with Unicode
/// escapes, and that `--columns` loads the file (its line break was shown as a space, a
/// `--columns` naming no column).
#[test]
fn a_header_suggestion_names_a_column_with_a_line_break() {
    let c = clusters();
    let db = database(&c.dest[0], "CREATE TABLE w (\"e\nf\" text, id int);");
    let to = c.dest[0].conninfo(&db);
    let csv = file("line-break-name.csv", b"id,\"e\nf\"\n1,x\n");
    let out = run(&["table", "w", "--from", csv.arg(), "--to", &to, "--header"]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    let suggested = r#"--columns 'id,U&"e\000af"'"#;
    assert!(stderr.contains(suggested), "{stderr}");
    let columns = r#"id,U&"e\000af""#;
    let out = run(&[
        "table",
        "w",
        "--from",
        csv.arg(),
        "--to",
        &to,
        "--header",
        "--columns",
        columns,
    ]);
    assert_exit(&out, 0);
    let query = "SELECT id || ':' || \"e\nf\" FROM w";
    assert_eq!(rows(&c.dest[0], &db, query), ["1:x"]);
}

#[test]
fn swapped_csv_header_is_refused_before_anything_is_sent() {
    let c = clusters();
    let dbs = [database(&c.dest[0], P), database(&c.dest[1], P)];
    let (to1, to2) = (c.dest[0].conninfo(&dbs[0]), c.dest[1].conninfo(&dbs[1]));
    let data = b"b,a\nb1,a1\nb2,a2\n";
    let csv = file("swapped.csv", data);

    // table: the --header flag; the message names the file, the mismatch and --columns.
    let out = run(&[
        "table",
        "p",
        "--from",
        csv.arg(),
        "--to",
        &to1,
        "--to",
        &to2,
        "--header",
    ]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(stderr.contains(csv.arg()), "{stderr}");
    assert!(stderr.contains("header field 1 is \"b\""), "{stderr}");
    assert!(stderr.contains("--columns b,a"), "{stderr}");
    nothing_anywhere(c, &dbs, "p");

    // A spreadsheet's header names the columns but for case and blanks: the same refusal
    // (it was taken for free labels, every value loaded into the other column).
    let spreadsheet = file("spreadsheet.csv", b"B , A\nb1,a1\n");
    let out = run(&[
        "table",
        "p",
        "--from",
        spreadsheet.arg(),
        "--to",
        &to1,
        "--header",
    ]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("header field 1 is \"B \"") && stderr.contains("--columns b,a"),
        "{stderr}"
    );
    nothing_anywhere(c, &dbs, "p");

    // copy: HEADER in the --receive; the fix is the --receive with the header's columns.
    let out = run(&[
        "copy",
        "--from",
        csv.arg(),
        "--to",
        &to1,
        "--receive",
        "COPY p FROM STDIN (FORMAT csv, HEADER)",
    ]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(r#"--receive 'COPY p (b, a) FROM STDIN (FORMAT csv, HEADER)'"#),
        "{stderr}"
    );
    nothing_anywhere(c, &dbs, "p");

    // The table spelled so that only the server reads it (`U&"\0070"` is p; and a quoted,
    // schema-qualified name): checked all the same (the check read the name itself and let a
    // U& name through, loading every value into the other column).
    for receive in [
        r#"COPY U&"\0070" FROM STDIN (FORMAT csv, HEADER)"#,
        r#"COPY "public"."p" FROM STDIN (FORMAT csv, HEADER)"#,
    ] {
        let out = run(&[
            "copy",
            "--from",
            csv.arg(),
            "--to",
            &to1,
            "--receive",
            receive,
        ]);
        assert_exit(&out, 2);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("header field 1 is \"b\""),
            "{receive}: {stderr}"
        );
        nothing_anywhere(c, &dbs, "p");
    }

    // From stdin: its first line is read before anything is sent, and refused the same way.
    let out = run_with_stdin(
        &[
            "copy",
            "--from",
            "-",
            "--to",
            &to1,
            "--to",
            &to2,
            "--receive",
            "COPY p FROM STDIN WITH CSV HEADER",
        ],
        data,
    );
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("stdin: header field 1"), "{stderr}");
    nothing_anywhere(c, &dbs, "p");

    // A header with fewer fields than the COPY reads that names a column.
    let short = file("short.csv", b"a\na1\n");
    let out = run(&[
        "table",
        "p",
        "--from",
        short.arg(),
        "--to",
        &to1,
        "--header",
    ]);
    assert_exit(&out, 2);
    assert!(text(&out.stderr).contains("the header has 1 field"));
    nothing_anywhere(c, &dbs, "p");

    // A text-format header, tab-separated, in the columns of an explicit column list.
    let tsv = file("swapped.tsv", b"a\tb\na1\tb1\n");
    let out = run(&[
        "copy",
        "--from",
        tsv.arg(),
        "--to",
        &to1,
        "--receive",
        "COPY p (b, a) FROM STDIN (FORMAT text, HEADER)",
    ]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains(r#"--receive 'COPY p (a, b) FROM STDIN (FORMAT text, HEADER)'"#),
        "{}",
        text(&out.stderr)
    );
    nothing_anywhere(c, &dbs, "p");
}

#[test]
fn matching_header_and_free_labels_load_right() {
    let c = clusters();
    let dbs = [database(&c.dest[0], P), database(&c.dest[1], P)];
    let (to1, to2) = (c.dest[0].conninfo(&dbs[0]), c.dest[1].conninfo(&dbs[1]));
    let loaded = |i: usize| {
        rows(
            &c.dest[i],
            &dbs[i],
            "SELECT a || '/' || b FROM p ORDER BY a",
        )
    };

    let matching = file("matching.csv", b"a,\"b\"\na1,b1\n");
    let out = run(&[
        "table",
        "p",
        "--from",
        matching.arg(),
        "--to",
        &to1,
        "--to",
        &to2,
        "--header",
    ]);
    assert_exit(&out, 0);
    assert_eq!(loaded(0), ["a1/b1"]);
    assert_eq!(loaded(1), ["a1/b1"]);

    // Labels that name no column load by position, as with psql.
    let labels = file("labels.csv", b"Customer ID,Name\na2,b2\n");
    let out = run(&[
        "copy",
        "--from",
        labels.arg(),
        "--to",
        &to1,
        "--to",
        &to2,
        "--receive",
        "COPY p FROM STDIN (FORMAT csv, HEADER true)",
    ]);
    assert_exit(&out, 0);
    assert_eq!(loaded(0), ["a1/b1", "a2/b2"]);
    assert_eq!(loaded(1), ["a1/b1", "a2/b2"]);

    // The header's own order, given as the fix says, loads each value into its column.
    let swapped = file("swapped.csv", b"b,a\nb3,a3\n");
    let out = run(&[
        "table",
        "p",
        "--from",
        swapped.arg(),
        "--to",
        &to1,
        "--header",
        "--columns",
        "b,a",
    ]);
    assert_exit(&out, 0);
    assert_eq!(loaded(0), ["a1/b1", "a2/b2", "a3/b3"]);
}

#[test]
fn utf8_bom_is_not_loaded() {
    let c = clusters();
    let dbs = [database(&c.dest[0], T), database(&c.dest[1], P)];
    let (to1, to2) = (c.dest[0].conninfo(&dbs[0]), c.dest[1].conninfo(&dbs[1]));

    // An integer first column: the mark would be 22P02.
    let tsv = file("bom.tsv", b"\xef\xbb\xbf1\tone\n2\ttwo\n");
    let out = run(&["table", "t", "--from", tsv.arg(), "--to", &to1, "--json"]);
    assert_exit(&out, 0);
    assert_eq!(json(&out)["source"]["rows"], 2);
    // Said (types69 F7: only under -v): a first value that began with U+FEFF loses it.
    assert!(
        text(&out.stderr).contains("begins with a UTF-8 byte order mark, which is not sent"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        rows(&c.dest[0], &dbs[0], "SELECT a || b FROM t ORDER BY a"),
        ["1one", "2two"]
    );

    // A text first column: the value has no invisible mark; the header line after a mark is
    // read as the header (and checked), from stdin too.
    let data = b"\xef\xbb\xbfa,b\nfirst,x\n";
    let out = run_with_stdin(
        &[
            "copy",
            "--from",
            "-",
            "--to",
            &to2,
            "--receive",
            "COPY p FROM STDIN (FORMAT csv, HEADER)",
            "--json",
        ],
        data,
    );
    assert_exit(&out, 0);
    assert_eq!(json(&out)["source"]["rows"], 1);
    assert_eq!(
        rows(&c.dest[1], &dbs[1], "SELECT a FROM p WHERE a = 'first'"),
        ["first"]
    );
    let swapped = b"\xef\xbb\xbfb,a\nfirst,x\n";
    let out = run_with_stdin(
        &[
            "copy",
            "--from",
            "-",
            "--to",
            &to2,
            "--receive",
            "COPY p FROM STDIN (FORMAT csv, HEADER)",
        ],
        swapped,
    );
    assert_exit(&out, 2);
    assert_eq!(count(&c.dest[1], &dbs[1], "p"), 1);

    // In another encoding the bytes are characters: LATIN1 loads them as they are.
    let latin1 = file("latin1.tsv", b"\xef\xbb\xbfz\n");
    let db = database(&c.dest[1], "CREATE TABLE s (v text);");
    let out = run(&[
        "table",
        "s",
        "--from",
        latin1.arg(),
        "--to",
        &c.dest[1].conninfo(&db),
        "--encoding",
        "LATIN1",
    ]);
    assert_exit(&out, 0);
    assert_eq!(
        rows(&c.dest[1], &db, "SELECT v FROM s"),
        ["\u{ef}\u{bb}\u{bf}z"]
    );

    // Data whose first value begins with U+FEFF, written to a file: its reader would take that
    // character for a mark, so it is said (types69 F7: lost on the way back, exit 0).
    let src = database(
        &c.source,
        "CREATE TABLE s (v text); INSERT INTO s VALUES (U&'\\FEFFhello'), ('x');",
    );
    let written = TempPath::new("feff.txt");
    let out = run(&[
        "table",
        "s",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        written.arg(),
    ]);
    assert_exit(&out, 0);
    assert!(
        text(&out.stderr).contains(&format!(
            "--to {}: the data begins with the character U+FEFF",
            written.arg()
        )),
        "{}",
        text(&out.stderr)
    );
}

/// `t`'s rows 1..=`n` as a PGCOPY file, as the source server writes them, and the source's
/// database that holds them.
fn pgcopy(c: &Clusters, n: i32) -> (Vec<u8>, String) {
    let db = database(
        &c.source,
        &format!("{T} INSERT INTO t SELECT g, 'row ' || g FROM generate_series(1, {n}) g;"),
    );
    let mut data = Vec::new();
    let mut client = c.source.connect(&db);
    let mut reader = client.copy_out("COPY t TO STDOUT (FORMAT binary)").unwrap();
    std::io::Read::read_to_end(&mut reader, &mut data).unwrap();
    (data, db)
}

#[test]
fn pgcopy_file_without_a_format_is_read_as_binary() {
    let c = clusters();
    let dbs = [database(&c.dest[0], T), database(&c.dest[1], T)];
    let (to1, to2) = (c.dest[0].conninfo(&dbs[0]), c.dest[1].conninfo(&dbs[1]));
    let (data, source) = pgcopy(c, 100);
    let expected = digest(&c.source, &source, "t");
    // Any name: even a `.csv` one is only a guess.
    for name in ["rows.dat", "rows.csv"] {
        let bin = file(name, &data);
        let out = run(&[
            "table",
            "t",
            "--from",
            bin.arg(),
            "--to",
            &to1,
            "--to",
            &to2,
            "--truncate",
            "--json",
        ]);
        assert_exit(&out, 0);
        let report = json(&out);
        assert_eq!(report["format"], "binary", "{name}");
        assert_eq!(report["source"]["rows"], 100, "{name}");
        for (cluster, db) in c.dest.iter().zip(&dbs) {
            assert_eq!(digest(cluster, db, "t"), expected, "{name}");
        }
    }
}

/// A server's error in binary input names its row there, not a line, which binary data has not
/// (files65 F3: "(line 11 of FILE)" of bytes after the end marker).
#[test]
fn an_error_in_binary_input_names_its_row() {
    let c = clusters();
    let db = database(&c.dest[0], T);
    let (mut data, _) = pgcopy(c, 10);
    data.extend_from_slice(b"junk");
    let bin = file("trailing.dat", &data);
    let out = run(&[
        "table",
        "t",
        "--from",
        bin.arg(),
        "--to",
        &c.dest[0].conninfo(&db),
    ]);
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("(row 11 of {})", bin.arg()))
            && !stderr.contains(&format!("(line 11 of {})", bin.arg())),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &db, "t"), 0);
}

#[test]
fn pgcopy_file_read_as_text_is_refused_and_text_read_as_binary_too() {
    let c = clusters();
    let dbs = [database(&c.dest[0], T), database(&c.dest[1], T)];
    let (to1, to2) = (c.dest[0].conninfo(&dbs[0]), c.dest[1].conninfo(&dbs[1]));
    let bin = file("rows.dat", &pgcopy(c, 10).0);

    for args in [
        vec![
            "table",
            "t",
            "--from",
            bin.arg(),
            "--to",
            &to1,
            "--to",
            &to2,
            "--format",
            "text",
        ],
        vec!["table", "t", "--from", bin.arg(), "--to", &to1, "--header"],
        vec![
            "copy",
            "--from",
            bin.arg(),
            "--to",
            &to1,
            "--receive",
            "COPY t FROM STDIN",
        ],
    ] {
        let out = run(&args);
        assert_exit(&out, 2);
        let stderr = text(&out.stderr);
        assert!(stderr.contains(bin.arg()), "{stderr}");
        assert!(stderr.contains("is binary COPY data"), "{stderr}");
        nothing_anywhere(c, &dbs, "t");
    }

    // A text file given as binary: refused in words, before the server's 22P04.
    let tsv = file("rows.tsv", b"1\tone\n");
    for args in [
        vec![
            "table",
            "t",
            "--from",
            tsv.arg(),
            "--to",
            &to1,
            "--format",
            "binary",
        ],
        vec![
            "copy",
            "--from",
            tsv.arg(),
            "--to",
            &to1,
            "--receive",
            "COPY t FROM STDIN (FORMAT binary)",
        ],
    ] {
        let out = run(&args);
        assert_exit(&out, 2);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("PGCOPY signature, and this file does not"),
            "{stderr}"
        );
        assert!(!stderr.contains("22P04"), "{stderr}");
        nothing_anywhere(c, &dbs, "t");
    }
}

#[test]
fn row_counts_are_still_checked() {
    let c = clusters();
    // A trigger drops the rows of odd `a` without an error.
    let dropping = format!(
        "{T}
         CREATE FUNCTION drop_odd() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN IF NEW.a % 2 = 1 THEN RETURN NULL; END IF; RETURN NEW; END $$;
         CREATE TRIGGER drop_odd BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION drop_odd();"
    );
    let db = database(&c.dest[0], &dropping);
    let to = c.dest[0].conninfo(&db);
    // A byte order mark and a header, and a PGCOPY file read as binary: counted all the same.
    let csv = file("counted.csv", b"\xef\xbb\xbfa,b\n1,one\n2,two\n");
    let bin = file("counted.dat", &pgcopy(c, 10).0);
    // A statement's own ENCODING, even UTF8, is read in it: counted too (it was not).
    let receive = "COPY t FROM STDIN (FORMAT csv, HEADER, ENCODING 'UTF8')";
    for args in [
        vec!["table", "t", "--from", csv.arg(), "--to", &to, "--header"],
        vec!["table", "t", "--from", bin.arg(), "--to", &to],
        vec![
            "copy",
            "--from",
            csv.arg(),
            "--to",
            &to,
            "--receive",
            receive,
        ],
    ] {
        let out = run(&args);
        assert_exit(&out, 1);
        let stderr = text(&out.stderr);
        assert!(stderr.contains("row count mismatch"), "{stderr}");
        assert_eq!(count(&c.dest[0], &db, "t"), 0);
    }
}

#[test]
fn stdin_start_split_across_writes_is_read_whole() {
    let c = clusters();
    let db = database(&c.dest[0], P);
    let to = c.dest[0].conninfo(&db);
    let receive = "COPY p FROM STDIN (FORMAT csv, HEADER)";
    // The byte order mark cut in two, then the header cut before its line end: the start is
    // read on until it is whole, and every byte read reaches the copy.
    let pieces: [&[u8]; 3] = [b"\xef\xbb", b"\xbfb,", b"a\nb1,a1\n"];
    let run_in_pieces = |pieces: [&'static [u8]; 3]| {
        let mut child = copyman()
            .args(["copy", "--from", "-", "--to", &to, "--receive", receive])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn copyman");
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || {
            for piece in pieces {
                // A run that fails early closes its stdin: a broken pipe is no failure.
                if stdin.write_all(piece).and_then(|()| stdin.flush()).is_err() {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(300));
            }
        });
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        out
    };
    let out = run_in_pieces(pieces);
    assert_exit(&out, 2);
    assert!(text(&out.stderr).contains("stdin: header field 1 is \"b\""));
    assert_eq!(count(&c.dest[0], &db, "p"), 0);

    let out = run_in_pieces([b"\xef\xbb", b"\xbfa,", b"b\na1,b1\na2,b2\n"]);
    assert_exit(&out, 0);
    assert_eq!(
        rows(&c.dest[0], &db, "SELECT a || '/' || b FROM p ORDER BY a"),
        ["a1/b1", "a2/b2"]
    );
}

/// A first line that names the columns, given without `--header` (or HEADER in the
/// `--receive`): a header, which was loaded as a row without a word (or failed with 22P02 on a
/// typed column, the way out unsaid). Refused before anything is sent, saying so; columns named
/// in the command load it as the row it then is.
#[test]
fn a_header_given_as_data_is_refused_with_the_way_to_skip_it() {
    let c = clusters();
    let dbs = [database(&c.dest[0], P), database(&c.dest[1], T)];
    let (to_p, to_t) = (c.dest[0].conninfo(&dbs[0]), c.dest[1].conninfo(&dbs[1]));
    let text_file = file("named.txt", b"a\tb\nx\ty\n");
    let csv_file = file("named.csv", b"A,b\n1,one\n");
    let receive = "COPY t FROM STDIN (FORMAT csv)";
    let refusals: [(Vec<&str>, &str); 3] = [
        (
            vec!["table", "p", "--from", text_file.arg(), "--to", &to_p],
            "give --header --format text to skip it",
        ),
        (
            vec!["table", "t", "--from", csv_file.arg(), "--to", &to_t],
            "give --header",
        ),
        (
            vec![
                "copy",
                "--from",
                csv_file.arg(),
                "--to",
                &to_t,
                "--receive",
                receive,
            ],
            "add HEADER to the --receive",
        ),
    ];
    for (args, hint) in refusals {
        let out = run(&args);
        assert_exit(&out, 2);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("names the columns: a header, which would be loaded as a row")
                && stderr.contains(hint),
            "{args:?}: {stderr}"
        );
    }
    assert_eq!(count(&c.dest[0], &dbs[0], "p"), 0);
    assert_eq!(count(&c.dest[1], &dbs[1], "t"), 0);
    // Skipped as a header, or loaded as a row when the columns are named.
    let out = run(&[
        "table",
        "t",
        "--from",
        csv_file.arg(),
        "--to",
        &to_t,
        "--header",
    ]);
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[1], &dbs[1], "t"), 1);
    // A text header (PostgreSQL 15): skipped, checked against the columns, written.
    let text_header = ["--header", "--format", "text"];
    let from_text = |path: &str| {
        let mut args = vec!["table", "p", "--from", path, "--to", &to_p];
        args.extend(text_header);
        run(&args)
    };
    assert_exit(&from_text(text_file.arg()), 0);
    assert_eq!(count(&c.dest[0], &dbs[0], "p"), 1);
    let swapped = file("swapped.txt", b"b\ta\ny\tx\n");
    let out = from_text(swapped.arg());
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("header field 1 is \"b\""),
        "{}",
        text(&out.stderr)
    );
    let written = TempPath::new("written.txt");
    let mut args = vec!["table", "p", "--from", &to_p, "--to", written.arg()];
    args.extend(text_header);
    assert_exit(&run(&args), 0);
    assert_eq!(fs::read(&written.0).unwrap(), b"a\tb\nx\ty\n");
    let out = run(&[
        "table",
        "p",
        "--from",
        text_file.arg(),
        "--to",
        &to_p,
        "--columns",
        "a,b",
    ]);
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[0], &dbs[0], "p"), 3);
    let with_header = "COPY t FROM STDIN (FORMAT csv, HEADER)";
    let out = run(&[
        "copy",
        "--from",
        csv_file.arg(),
        "--to",
        &to_t,
        "--receive",
        with_header,
    ]);
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[1], &dbs[1], "t"), 2);
}

/// A header given as data that names some of the table's columns (a file without its defaulted
/// ones), or all in another order: refused with the `--columns` that reads the rows by it
/// (types43 F5: only a line naming every column in any order was caught, the rest failed on
/// the server's `invalid input syntax for type integer: "id"`); followed, it loads.
#[test]
fn a_header_given_as_data_naming_some_columns_gets_the_columns_to_read_it_by() {
    let c = clusters();
    let table = "CREATE TABLE hx (id int, a text, extra int DEFAULT 3);";
    let db = database(&c.dest[0], table);
    let to = c.dest[0].conninfo(&db);
    let some = file("some-columns.csv", b"a,id\nx,1\ny,2\n");
    let out = run(&["table", "hx", "--from", some.arg(), "--to", &to]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("its first line (a, id) names the columns")
            && stderr.contains("give --header --columns a,id to skip it"),
        "{stderr}"
    );
    let receive = "COPY hx FROM STDIN (FORMAT csv)";
    let out = run(&[
        "copy",
        "--from",
        some.arg(),
        "--to",
        &to,
        "--receive",
        receive,
    ]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("'COPY hx (a, id) FROM STDIN (FORMAT csv)' with HEADER"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &db, "hx"), 0);
    let out = run(&[
        "table",
        "hx",
        "--from",
        some.arg(),
        "--to",
        &to,
        "--header",
        "--columns",
        "a,id",
    ]);
    assert_exit(&out, 0);
    let loaded: String = c.dest[0]
        .connect(&db)
        .query_one(
            "SELECT string_agg(id || a || extra, ' ' ORDER BY id) FROM hx",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(loaded, "1x3 2y3");
}

/// Text data in a file named *.csv: `table` guesses CSV by the name, and a first line of one
/// field with tabs in it, for several columns, is refused with the way to read it (CSV would
/// load NULLs and escapes as other values); `copy` writing text into a *.csv file says so.
#[test]
fn text_data_in_a_csv_named_file_is_told() {
    let c = clusters();
    let db = database(&c.dest[0], P);
    let to = c.dest[0].conninfo(&db);
    let misnamed = file("text-data.csv", b"x\t\\N\ny\tz\n");
    let out = run(&["table", "p", "--from", misnamed.arg(), "--to", &to]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("give --format text"), "{stderr}");
    assert_eq!(count(&c.dest[0], &db, "p"), 0);
    let out = run(&[
        "table",
        "p",
        "--from",
        misnamed.arg(),
        "--to",
        &to,
        "--format",
        "text",
    ]);
    assert_exit(&out, 0);
    assert_eq!(
        count(&c.dest[0], &db, "(SELECT 1 FROM p WHERE b IS NULL)"),
        1
    );
    // Written so by copy mode: said.
    let src = database(&c.source, &format!("{P} INSERT INTO p VALUES ('a', NULL);"));
    let out_file = TempPath::new("written.csv");
    let out = run(&[
        "copy",
        "--from",
        &c.source.conninfo(&src),
        "--send",
        "COPY p TO STDOUT",
        "--to",
        out_file.arg(),
    ]);
    assert_exit(&out, 0);
    assert!(
        text(&out.stderr).contains("written in FORMAT text (the --send's), not CSV"),
        "{}",
        text(&out.stderr)
    );
    // A file named like `user:password@…` is masked there, as in every other message (it was
    // printed whole there only).
    let secret = TempPath::new("app:S3cretQ@w.csv");
    let out = run(&[
        "copy",
        "--from",
        &c.source.conninfo(&src),
        "--send",
        "COPY p TO STDOUT",
        "--to",
        secret.arg(),
    ]);
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("not CSV")
            && stderr.contains("app:***@w.csv")
            && !stderr.contains("S3cretQ"),
        "{stderr}"
    );
}

/// `--header` given for a file whose first line is data (it names no column): skipped, as
/// asked, and said, with the line (it was skipped without a word, one row fewer, exit 0).
#[test]
fn a_header_that_names_no_column_is_said() {
    let c = clusters();
    let db = database(&c.dest[0], T);
    let to = c.dest[0].conninfo(&db);
    let data = file("no-header.csv", b"1,Ann\n2,Bob\n");
    let out = run(&["table", "t", "--from", data.arg(), "--to", &to, "--header"]);
    assert_exit(&out, 0);
    assert!(
        text(&out.stderr)
            .contains("its header (1, Ann) names no column: it is skipped as a header"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &db, "t"), 1);
    // The same from copy mode's HEADER (it was skipped without a word there).
    let out = run(&[
        "copy",
        "--from",
        data.arg(),
        "--to",
        &to,
        "--receive",
        "COPY t FROM STDIN (FORMAT csv, HEADER)",
    ]);
    assert_exit(&out, 0);
    assert!(
        text(&out.stderr).contains("its header (1, Ann) names no column"),
        "{}",
        text(&out.stderr)
    );
}

/// A one-column text file with a header (psql's `\copy one to 'f.txt' (format text, header)`)
/// given `--header`, which reads CSV: refused as for a `.csv` name (input75 F6: `\N` stored as
/// the string `\N`, exit 0); `--format text --header` loads it as it is.
#[test]
fn text_read_as_csv_for_header_is_refused() {
    let c = clusters();
    let db = database(&c.dest[0], "CREATE TABLE one (v text);");
    let to = c.dest[0].conninfo(&db);
    let path = file("one-header.txt", b"v\na\n\\N\n");
    let out = run(&[
        "table",
        "one",
        "--from",
        path.arg(),
        "--header",
        "--to",
        &to,
    ]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("is read as CSV for --header")
            && text(&out.stderr).contains("give --format text --header"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &db, "one"), 0);
    let out = run(&[
        "table",
        "one",
        "--from",
        path.arg(),
        "--header",
        "--format",
        "text",
        "--to",
        &to,
    ]);
    assert_exit(&out, 0);
    assert_eq!(
        count(&c.dest[0], &db, "(SELECT 1 FROM one WHERE v IS NULL)"),
        1
    );
    assert_eq!(count(&c.dest[0], &db, "one"), 2);
}

/// Text on stdin whose last line end a backslash escapes: its row goes on past it and nothing
/// ends it, as cut short as a row without a line end — refused, nothing committed (input75 F5:
/// committed with a line break added to its last value, exit 0); from a file, said as the
/// last line.
#[test]
fn a_pipe_whose_last_line_end_is_escaped_fails_the_copy() {
    let c = clusters();
    let db = database(&c.dest[0], T);
    let to = c.dest[0].conninfo(&db);
    let out = run_with_stdin(
        &["table", "t", "--from", "-", "--to", &to],
        b"1\tfirst\n2\tsecond part\\\n",
    );
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("stdin ended with a backslash escaping the line end of line 2")
            && stderr.contains("nothing committed"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &db, "t"), 0);
    // An escaped line end within the data, the row going on: as before.
    let within = run_with_stdin(
        &["table", "t", "--from", "-", "--to", &to],
        b"1\tfirst\\\nline\n",
    );
    assert_exit(&within, 0);
    let path = file("escaped-last.txt", b"2\tsecond part\\\n");
    let regular = run(&["table", "t", "--from", path.arg(), "--to", &to]);
    assert_exit(&regular, 0);
    assert!(
        text(&regular.stderr).contains(
            "(line 1) ends in a backslash, which escapes its line end, and no line follows"
        ),
        "{}",
        text(&regular.stderr)
    );
}

/// Text on stdin that ends in the middle of a line (what a `gzip -dc` of a cut archive gives,
/// or a writer killed half way): the copy fails, nothing committed — under `--truncate` the
/// table keeps its rows (files50 F3: they were replaced by the part that came, its last row
/// cut, exit 0); a regular file without its last line end is common, and copied, with a
/// warning that it may be cut short (sweep58 F1: a value cut, the rest missing, not a word).
#[test]
fn a_pipe_that_ends_mid_line_fails_the_copy() {
    let c = clusters();
    let db = database(&c.dest[0], T);
    let to = c.dest[0].conninfo(&db);
    let out = run_with_stdin(
        &["table", "t", "--from", "-", "--to", &to],
        b"1\tone\n2\ttw",
    );
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("stdin ended in the middle of line 2 (no line end after it)")
            && stderr.matches("nothing committed").count() == 1,
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &db, "t"), 0);
    let whole = run_with_stdin(&["table", "t", "--from", "-", "--to", &to], b"1\tone\n");
    assert_exit(&whole, 0);
    let cut = run_with_stdin(
        &["table", "t", "--from", "-", "--to", &to, "--truncate"],
        b"2\ttwo\n3\tth",
    );
    assert_exit(&cut, 1);
    assert_eq!(rows(&c.dest[0], &db, "SELECT a || b FROM t"), ["1one"]);
    (c.dest[0].connect(&db))
        .batch_execute("TRUNCATE t")
        .unwrap();
    let whole = run_with_stdin(&["table", "t", "--from", "-", "--to", &to], b"3\tthree\n");
    assert_exit(&whole, 0);
    let tsv = file("no-last-newline.tsv", b"4\tfour");
    let regular = run(&["table", "t", "--from", tsv.arg(), "--to", &to]);
    assert_exit(&regular, 0);
    assert!(
        text(&regular.stderr).contains(&format!(
            "warning: {}'s last line (line 1) has no line end: copied as it is",
            tsv.arg()
        )),
        "{}",
        text(&regular.stderr)
    );
    // A header alone, without its line end: no row to be cut, but all of them if it was cut
    // (recheck59 F2): said of a file; from a pipe, whose writer failed half way, refused as a
    // row cut short is (files65 F6: exit 0; or said as a header of other columns).
    let alone = file("header-alone.csv", b"a,b");
    let header = run(&["table", "t", "--from", alone.arg(), "--to", &to, "--header"]);
    assert_exit(&header, 0);
    assert!(
        text(&header.stderr).contains(&format!(
            "warning: {} holds only its header line, with no line end after it: no row copied",
            alone.arg()
        )),
        "{}",
        text(&header.stderr)
    );
    for cut_header in [&b"a,b"[..], b"a"] {
        let piped = run_with_stdin(
            &["table", "t", "--from", "-", "--to", &to, "--header"],
            cut_header,
        );
        assert_exit(&piped, 1);
        assert!(
            text(&piped.stderr).contains(
                "stdin ended in the middle of its header line (no line end after it): what \
                 wrote it failed half way"
            ) && !text(&piped.stderr).contains("fields"),
            "{}",
            text(&piped.stderr)
        );
    }
    // Nothing at all where a header was said to come (many60 F5): said.
    let empty = run_with_stdin(&["table", "t", "--from", "-", "--to", &to, "--header"], b"");
    assert_exit(&empty, 0);
    assert!(
        text(&empty.stderr).contains("warning: stdin is empty: not even the header line"),
        "{}",
        text(&empty.stderr)
    );
    for out in [whole, regular, header] {
        assert!(
            !text(&out.stderr).contains("middle of line"),
            "{}",
            text(&out.stderr)
        );
    }
    assert_eq!(
        rows(&c.dest[0], &db, "SELECT a || b FROM t ORDER BY a"),
        ["3three", "4four"]
    );
}

/// One file into destinations whose `--receive` statements list the same columns in other
/// orders: one file loaded two ways (on one destination the values landed in each other's
/// columns, exit 0), refused as differing tables are; lists of other columns (a deliberate
/// mapping) stay allowed.
#[test]
fn receives_listing_the_same_columns_in_other_orders_are_refused() {
    let c = clusters();
    let table = "CREATE TABLE f (id int, name text, note text);";
    let dbs = [database(&c.dest[0], table), database(&c.dest[1], table)];
    let (to1, to2) = (c.dest[0].conninfo(&dbs[0]), c.dest[1].conninfo(&dbs[1]));
    let people = file("people.txt", b"1\tvip\tAlice\n");
    let out = run(&[
        "copy",
        "--from",
        people.arg(),
        "--to",
        &to1,
        "--receive",
        "COPY f (id, note, name) FROM STDIN",
        "--to",
        &to2,
        "--receive",
        "COPY f FROM STDIN",
    ]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("the destinations read the same columns in other orders")
            && stderr.contains(r#"destination 1 (postgres@"#)
            && stderr.contains("name the file's columns, in its order, in every --receive"),
        "{stderr}"
    );
    nothing_anywhere(c, &dbs, "f");
    let pairs = file("pairs.txt", b"1\tAlice\n");
    let out = run(&[
        "copy",
        "--from",
        pairs.arg(),
        "--to",
        &to1,
        "--receive",
        "COPY f (id, name) FROM STDIN",
        "--to",
        &to2,
        "--receive",
        "COPY f (id, note) FROM STDIN",
    ]);
    assert_exit(&out, 0);
    assert_eq!(
        rows(&c.dest[0], &dbs[0], "SELECT id || name FROM f"),
        ["1Alice"]
    );
    assert_eq!(
        rows(&c.dest[1], &dbs[1], "SELECT id || note FROM f"),
        ["1Alice"]
    );
}

/// An empty file given `--header` has no header: nothing is said of one (it warned "its header
/// (NULL) names no column: it is skipped"), but that it is empty (many60 F5: not a word).
#[test]
fn an_empty_file_with_a_header_says_nothing_of_a_header() {
    let c = clusters();
    let db = database(&c.dest[0], T);
    let to = c.dest[0].conninfo(&db);
    for (name, format) in [("empty.csv", "csv"), ("empty.txt", "text")] {
        let empty = file(name, b"");
        let out = run(&[
            "table",
            "t",
            "--from",
            empty.arg(),
            "--to",
            &to,
            "--header",
            "--format",
            format,
        ]);
        assert_exit(&out, 0);
        let said = text(&out.stderr);
        assert!(
            !said.contains("names no column") && !said.contains("skipped"),
            "{said}"
        );
        assert!(
            said.contains(&format!(
                "warning: {} is empty: not even the header line --header says it begins with",
                empty.arg()
            )),
            "{said}"
        );
    }
    assert_eq!(count(&c.dest[0], &db, "t"), 0);
}

/// An empty file or stdin under `--truncate` (a command that failed upstream gives one): the
/// table was emptied on every destination, exit 0. Refused, nothing committed, its rows kept;
/// without `--truncate` an empty input appends nothing, exit 0.
#[test]
fn an_empty_input_under_truncate_empties_nothing() {
    let c = clusters();
    let fill = format!("{T} INSERT INTO t SELECT g, 'v' FROM generate_series(1, 10) g;");
    let dbs = [database(&c.dest[0], &fill), database(&c.dest[1], &fill)];
    let (to1, to2) = (c.dest[0].conninfo(&dbs[0]), c.dest[1].conninfo(&dbs[1]));
    let empty = file("empty-input.txt", b"");
    let args = |from: &str, truncate: bool| {
        let mut args = vec!["table", "t", "--from", from, "--to", &to1, "--to", &to2];
        if truncate {
            args.push("--truncate");
        }
        args.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    for from in [empty.arg(), "-"] {
        let args = args(from, true);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run_with_stdin(&args, b"");
        assert_exit(&out, 1);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("the input held no rows: --truncate would leave the table empty"),
            "{from}: {stderr}"
        );
        // Said once (it was said twice on one line).
        assert_eq!(
            stderr.matches("nothing committed").count(),
            1,
            "{from}: {stderr}"
        );
        for (cluster, db) in c.dest.iter().zip(&dbs) {
            assert_eq!(count(cluster, db, "t"), 10, "{from}");
        }
    }
    let args = args(empty.arg(), false);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_exit(&run(&args), 0);
    assert_eq!(count(&c.dest[0], &dbs[0], "t"), 10);
}

/// A binary (PGCOPY) file copied to a `*.csv` file is said as binary, not "written in FORMAT
/// text … read it back with --format text", advice refused for a binary file (files39 F6); the
/// copy reads back as it is.
#[test]
fn a_binary_file_copied_to_a_csv_name_is_said_binary() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE kv (k text, v text); INSERT INTO kv VALUES ('a', 'x'), ('b', NULL);",
    );
    let bin = TempPath::new("kv.bin");
    let out = run(&[
        "table",
        "kv",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        bin.arg(),
        "--format",
        "binary",
    ]);
    assert_exit(&out, 0);
    let csv = TempPath::new("kv-copy.csv");
    let out = run(&["table", "kv", "--from", bin.arg(), "--to", csv.arg()]);
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("written as binary COPY data, as the source file is, not CSV")
            && !stderr.contains("FORMAT text"),
        "{stderr}"
    );
    assert_eq!(fs::read(&csv.0).unwrap(), fs::read(&bin.0).unwrap());
}

/// A text file (psql's `\copy … to`, a TSV) loaded beside a `*.csv` file destination is read as
/// text, its own format, not as CSV for the destination's name: its NULLs stayed the string
/// `\N`, an empty string became NULL and a comma split a field, exit 0. The `*.csv` copy is
/// said to hold text.
#[test]
fn a_text_file_beside_a_csv_destination_is_read_as_text() {
    let c = clusters();
    let d1 = database(&c.dest[0], "CREATE TABLE kv (k text, v text);");
    let input = file("kv.txt", b"a\tSmith, John\nb\t\\N\nc\t\n");
    let backup = TempPath::new("kv-backup.csv");
    let out = run(&[
        "table",
        "kv",
        "--from",
        input.arg(),
        "--to",
        backup.arg(),
        "--to",
        &c.dest[0].conninfo(&d1),
    ]);
    assert_exit(&out, 0);
    assert!(
        text(&out.stderr).contains("written in FORMAT text (the source's, a file not named *.csv)"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        rows(
            &c.dest[0],
            &d1,
            "SELECT k || '|' || coalesce(v, '<null>') FROM kv ORDER BY k"
        ),
        ["a|Smith, John", "b|<null>", "c|"]
    );
    assert_eq!(fs::read(&backup.0).unwrap(), fs::read(&input.0).unwrap());
}

/// A header that is the columns' names split by another delimiter than the format's (a TSV read
/// as CSV for `--header`, a spreadsheet's `;`) is refused with the way that reads it: it was
/// said to name no column ("if it is data, leave out --header") and the rows failed as one
/// field each.
#[test]
fn a_header_split_by_another_delimiter_is_refused_with_the_way_to_read_it() {
    let c = clusters();
    let d1 = database(&c.dest[0], "CREATE TABLE s (a int, b text, c text);");
    let to = c.dest[0].conninfo(&d1);
    let tsv = file("s.txt", b"a\tb\tc\n1\tx\ty\n");
    let out = run(&["table", "s", "--from", tsv.arg(), "--header", "--to", &to]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("split by a tab")
            && text(&out.stderr).contains("--format text --header"),
        "{}",
        text(&out.stderr)
    );
    // As advised: loaded.
    let out = run(&[
        "table",
        "s",
        "--from",
        tsv.arg(),
        "--format",
        "text",
        "--header",
        "--to",
        &to,
    ]);
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[0], &d1, "s"), 1);
    let semi = file("s.csv", b"a;b;c\r\n2;x;y\r\n");
    let out = run(&["table", "s", "--from", semi.arg(), "--header", "--to", &to]);
    assert_exit(&out, 2);
    // Quoted as a shell reads it back (it was not: "got several statements").
    assert!(
        text(&out.stderr).contains(
            r#"--receive 'COPY "s" FROM STDIN (FORMAT csv, HEADER, DELIMITER '\'';'\'')'"#
        ),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &d1, "s"), 1);
}

/// A file loaded into a column that owns a sequence there (an identity, a serial) leaves the
/// sequence where it stands, as psql's `\copy` does; said, with the statement that advances it
/// (the first INSERT that took its default collided with a loaded id, in silence).
#[test]
fn a_file_into_an_identity_column_says_its_sequence_stays() {
    let c = clusters();
    let d1 = database(
        &c.dest[0],
        "CREATE TABLE idt (id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, v text);",
    );
    let ids = file("idt.txt", b"1\ta\n2\tb\n3\tc\n");
    let out = run(&[
        "table",
        "idt",
        "--from",
        ids.arg(),
        "--to",
        &c.dest[0].conninfo(&d1),
    ]);
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    let advice = stderr
        .split("advance it past them: ")
        .nth(1)
        .and_then(|rest| rest.lines().next())
        .unwrap_or_else(|| panic!("no way said: {stderr}"));
    // As advised: the next INSERT takes a free id.
    let mut dest = c.dest[0].connect(&d1);
    dest.batch_execute(advice).unwrap();
    dest.batch_execute("INSERT INTO idt (v) VALUES ('new')")
        .unwrap();
    assert_eq!(count(&c.dest[0], &d1, "idt"), 4);
    // A sequence past every loaded value stays there: the advice moves it forward only
    // (docs45 F2: it set it back to the file's highest).
    dest.batch_execute("SELECT setval(pg_get_serial_sequence('idt', 'id'), 1000)")
        .unwrap();
    dest.batch_execute(advice).unwrap();
    let next: i32 = dest
        .query_one("INSERT INTO idt (v) VALUES ('next') RETURNING id", &[])
        .unwrap()
        .get(0);
    assert_eq!(next, 1001);
}

/// A file that holds a field for a column generated on the destination (written where it was
/// a plain column) is refused before anything is sent, saying which column and the fields to
/// keep (files50 F4: every row failed with a bare 22P04).
#[test]
fn a_field_for_a_generated_column_is_said() {
    let c = clusters();
    let db = database(
        &c.dest[0],
        "CREATE TABLE g (id int, d int GENERATED ALWAYS AS (id * 2) STORED, v text);",
    );
    let data = file("with-generated.txt", b"1\t2\tx\n2\t4\ty\n");
    let out = run(&[
        "table",
        "g",
        "--from",
        data.arg(),
        "--to",
        &c.dest[0].conninfo(&db),
    ]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "its lines have 3 fields and the COPY loads 2 columns (id, v): d is a generated column"
        ) && stderr.contains("cut -f1,3"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &db, "g"), 0);
    // One row, CSV with a header naming it, stdin: the same (recheck50 F2: the bare 22P04, or
    // the header's label said to name no column).
    let to = c.dest[0].conninfo(&db);
    let csv = file("with-generated.csv", b"id,d,v\n1,2,x\n");
    let out = run(&["table", "g", "--from", csv.arg(), "--to", &to, "--header"]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("d is a generated column")
            && stderr.contains("(cut -d, -f1,3 ")
            && stderr.contains("| copyman … --from -, where no field holds the delimiter"),
        "{stderr}"
    );
    // Its name and delimiter quoted for a shell (files67 F10: a name with a space was cut as
    // two files, a `'` delimiter left a quote open).
    let spaced = file("with generated.csv", b"1'2'x\n");
    let receive = "COPY g FROM STDIN (FORMAT csv, DELIMITER '''')";
    let out = run(&[
        "copy",
        "--from",
        spaced.arg(),
        "--to",
        &to,
        "--receive",
        receive,
    ]);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            r"(cut -d''\''' -f1,3 '{}' | copyman",
            spaced.arg()
        )),
        "{stderr}"
    );
    // `copy` with a --receive that lists no columns, or every column COPY loads in the table's
    // order: the same (files50 F4's second command).
    for receive in ["COPY g FROM STDIN", "COPY g (id, V) FROM STDIN"] {
        let out = run(&[
            "copy",
            "--from",
            data.arg(),
            "--to",
            &to,
            "--receive",
            receive,
        ]);
        assert_exit(&out, 2);
        assert!(
            text(&out.stderr).contains("d is a generated column"),
            "{receive}: {}",
            text(&out.stderr)
        );
    }
    let out = run_with_stdin(&["table", "g", "--from", "-", "--to", &to], b"1\t2\tx\n");
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("d is a generated column") && stderr.contains("… | cut -f1,3 | copyman"),
        "{stderr}"
    );
    // Without that field, it loads.
    let data = file("without-generated.txt", b"1\tx\n2\ty\n");
    let out = run(&[
        "table",
        "g",
        "--from",
        data.arg(),
        "--to",
        &c.dest[0].conninfo(&db),
    ]);
    assert_exit(&out, 0);
    assert_eq!(
        rows(&c.dest[0], &db, "SELECT d::text FROM g ORDER BY id"),
        ["2", "4"]
    );
}

/// One file into destinations whose columns are of other types reads into other values on each
/// (1.005 stored as 1.005 here and 1.01 there): said, as between servers (it was loaded in
/// silence, exit 0).
#[test]
fn one_file_into_destinations_of_other_types_is_said() {
    let c = clusters();
    let d1 = database(&c.dest[0], "CREATE TABLE nn (x numeric(10,3), s text);");
    let d2 = database(&c.dest[1], "CREATE TABLE nn (x numeric(10,2), s text);");
    let data = file("nn.txt", b"1.005\tabc\n");
    let out = run(&[
        "table",
        "nn",
        "--from",
        data.arg(),
        "--to",
        &c.dest[0].conninfo(&d1),
        "--to",
        &c.dest[1].conninfo(&d2),
    ]);
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("column \"x\" is numeric(10,3) on destination 1")
            && stderr.contains("but numeric(10,2) on destination 2")
            && !stderr.contains("column \"s\""),
        "{stderr}"
    );
    // `copy` from the file into the same tables says it too (files50 F1: silence, exit 0).
    let out = run(&[
        "copy",
        "--from",
        data.arg(),
        "--to",
        &c.dest[0].conninfo(&d1),
        "--to",
        &c.dest[1].conninfo(&d2),
        "--receive",
        "COPY nn FROM STDIN",
    ]);
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("column \"x\" is numeric(10,3) on destination 1")
            && stderr.contains("but numeric(10,2) on destination 2")
            && stderr.contains("each destination reads the file's text as its own type does")
            && !stderr.contains("column \"s\""),
        "{stderr}"
    );
}

/// A file given as binary without the PGCOPY signature is refused as that, not first said to be
/// binary data whose values are read as the columns' types (it said both).
#[test]
fn a_file_given_as_binary_without_its_signature_is_refused_as_that_alone() {
    let c = clusters();
    let d1 = database(&c.dest[0], T);
    let data = file("not-binary.csv", b"1,a\n");
    let out = run(&[
        "table",
        "t",
        "--from",
        data.arg(),
        "--format",
        "binary",
        "--to",
        &c.dest[0].conninfo(&d1),
    ]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("this file does not") && !stderr.contains("which records no column types"),
        "{stderr}"
    );
}

/// A header that names the columns with their table (`person.last_name`, as SQL clients export
/// it) or in words (`Last Name`, as spreadsheets write it), in another order than the table's,
/// is refused as one of plain names is: it was said to name no column and every value loaded
/// into the other column, exit 0.
#[test]
fn a_header_of_qualified_or_worded_names_in_another_order_is_refused() {
    let c = clusters();
    let d1 = database(
        &c.dest[0],
        "CREATE TABLE person (first_name text, last_name text);",
    );
    let to = c.dest[0].conninfo(&d1);
    for (name, data) in [
        (
            "qualified.csv",
            &b"person.last_name,person.first_name\nSmith,John\n"[..],
        ),
        ("worded.csv", b"Last Name,First Name\nDoe,Jane\n"),
    ] {
        let input = file(name, data);
        let out = run(&[
            "table",
            "person",
            "--from",
            input.arg(),
            "--header",
            "--to",
            &to,
        ]);
        assert_exit(&out, 2);
        assert!(
            text(&out.stderr).contains("--columns last_name,first_name"),
            "{name}: {}",
            text(&out.stderr)
        );
    }
    assert_eq!(count(&c.dest[0], &d1, "person"), 0);
}

/// An empty CONN (a script's unset `$OUT`) is refused: libpq's empty conninfo is the
/// environment's default server, where the rows were committed (or, as `--from` with
/// `--truncate`, a table replaced by its rows), exit 0.
#[test]
fn an_empty_conn_is_refused() {
    for args in [
        &["table", "t", "--from", "host=h", "--to", ""][..],
        &["table", "t", "--from", " ", "--to", "host=h"],
        &["recover", "--to", ""],
    ] {
        let out = run(args);
        assert_exit(&out, 2);
        assert!(
            text(&out.stderr).contains("is empty (an unset variable?)"),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}

/// psql's text export named `*.csv` (`\copy t to 't.csv'` without `csv`) read as CSV for its
/// name: a line that is `\N` says text, refused with the way (its NULLs were stored as the
/// string `\N` and its empty strings as NULL, exit 0).
#[test]
fn a_text_export_named_csv_is_refused_rather_than_read_as_csv() {
    let c = clusters();
    let d1 = database(&c.dest[0], "CREATE TABLE one (v text);");
    let data = file("one.csv", b"\\N\n\na\\\\b\nx\n");
    let to = c.dest[0].conninfo(&d1);
    let out = run(&["table", "one", "--from", data.arg(), "--to", &to]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("it holds a line that is \\N, text COPY's NULL")
            && text(&out.stderr).contains("give --format text"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &d1, "one"), 0);
    // As advised: psql's values.
    let out = run(&[
        "table",
        "one",
        "--from",
        data.arg(),
        "--format",
        "text",
        "--to",
        &to,
    ]);
    assert_exit(&out, 0);
    assert_eq!(
        rows(
            &c.dest[0],
            &d1,
            "SELECT coalesce(v, '<null>') FROM one ORDER BY v NULLS FIRST"
        ),
        ["<null>", "", "a\\b", "x"]
    );
}

/// A CSV file copyman wrote reads back as CSV: PostgreSQL's CSV holds a tab or a `\N` unquoted,
/// which alone looked like text COPY data, and the file was refused (types43 F7).
#[test]
fn a_csv_file_copyman_wrote_with_a_tab_or_a_backslash_n_reads_back() {
    let c = clusters();
    let tables = "CREATE TABLE notes (id int, note text); CREATE TABLE onec (s text);";
    let src = database(
        &c.source,
        &format!(
            "{tables} INSERT INTO notes SELECT g, 'note ' || g FROM generate_series(1, 20) g;
             UPDATE notes SET note = E'col1\\tcol2' WHERE id = 2;
             INSERT INTO onec VALUES ('a'), ('\\N'), (NULL), ('');"
        ),
    );
    let d1 = database(&c.dest[0], tables);
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&d1));
    let sum = "(SELECT md5(string_agg(coalesce(note, '<null>'), '|' ORDER BY id)) FROM notes)";
    let one = "(SELECT string_agg(coalesce(s, '<null>'), '|' ORDER BY s NULLS FIRST) FROM onec)";
    for (table, check) in [("notes", sum), ("onec", one)] {
        let csv = TempPath::new(&format!("{table}-back.csv"));
        assert_exit(
            &run(&["table", table, "--from", &from, "--to", csv.arg()]),
            0,
        );
        let out = run(&["table", table, "--from", csv.arg(), "--to", &to]);
        assert_exit(&out, 0);
        assert_eq!(
            rows(&c.dest[0], &d1, &format!("SELECT {check}")),
            rows(&c.source, &src, &format!("SELECT {check}")),
            "{table}: {}",
            text(&out.stderr)
        );
    }
}

/// A file read as LATIN1 that holds bytes 0x80–0x9F (WIN1252's `€`, `“ ”`: a Windows file,
/// which loaded as invisible control characters, as psql's `\copy` loads it) is said, with the
/// encoding that reads it — under any spelling of LATIN1 the server takes (input75 F3:
/// `ISO-8859-1`, as `file -i` says it, was not warned of).
#[test]
fn a_windows_file_read_as_latin1_is_said() {
    let c = clusters();
    let d1 = database(&c.dest[0], "CREATE TABLE w (id int, v text);");
    let data = file("w1252.txt", b"1\t\x80 euro\n");
    for spelling in ["LATIN1", "ISO-8859-1", "latin-1"] {
        let out = run(&[
            "table",
            "w",
            "--from",
            data.arg(),
            "--encoding",
            spelling,
            "--to",
            &c.dest[0].conninfo(&d1),
        ]);
        assert_exit(&out, 0);
        assert!(
            text(&out.stderr).contains("--encoding WIN1252"),
            "{spelling}: {}",
            text(&out.stderr)
        );
    }
}

/// A spreadsheet's empty columns past the table's (`a,b,c,,`) are said as such, with the way to
/// cut them (it advised --columns, which gave the same refusal).
#[test]
fn a_spreadsheets_empty_columns_are_said_with_the_way_to_cut_them() {
    let c = clusters();
    let d1 = database(&c.dest[0], "CREATE TABLE s (a int, b text, c text);");
    let data = file("excel.csv", b"a,b,c,,\r\n1,x,y,,\r\n");
    let out = run(&[
        "table",
        "s",
        "--from",
        data.arg(),
        "--header",
        "--to",
        &c.dest[0].conninfo(&d1),
    ]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("(a spreadsheet's empty columns)")
            && text(&out.stderr).contains("cut -d, -f1-3"),
        "{}",
        text(&out.stderr)
    );
}

/// Rows typed on a terminal (`--from -` with stdin the terminal, through util-linux's `script`
/// with rows fed to it slowly): no progress bar is drawn over the line being typed — each redraw
/// wiped its echo (files42 F2) — and the rows load once the input ends.
#[test]
fn rows_typed_on_a_terminal_get_no_progress_bar_over_them() {
    let c = clusters();
    let dst = database(&c.dest[0], "CREATE TABLE u (id int, v text)");
    let command = format!(
        "'{}' table u --from - --to '{}'",
        env!("CARGO_BIN_EXE_copyman"),
        c.dest[0].conninfo(&dst)
    );
    let mut script = std::process::Command::new("script")
        .env("TERM", "xterm")
        .args(["-qec", &command, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("util-linux's script (Debian's bsdutils, an essential package)");
    let mut typing = script.stdin.take().unwrap();
    for row in ["1\thello\n", "2\tworld\n"] {
        std::thread::sleep(std::time::Duration::from_millis(800));
        typing.write_all(row.as_bytes()).unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(800));
    drop(typing);
    let out = script.wait_with_output().unwrap();
    let said = text(&out.stdout);
    assert!(said.contains("copied 2 rows"), "{said}");
    assert!(
        !said.contains("\x1b[2K") && !said.contains("0 B/s"),
        "{said:?}"
    );
    assert_eq!(count(&c.dest[0], &dst, "u"), 2);
}

/// A CSV with a field past the table's whose label names no column: refused, naming that
/// field, without advice no command can follow (it advised --columns, which was then refused:
/// COPY cannot skip a field; files42 F1). Nothing loaded.
#[test]
fn a_header_with_a_field_no_column_takes_names_it() {
    let c = clusters();
    let dst = database(&c.dest[0], "CREATE TABLE t (id int, name text)");
    let csv = file("extra.csv", b"id,name,x\n1,a,extra\n");
    let out = run(&[
        "table",
        "t",
        "--from",
        csv.arg(),
        "--to",
        &c.dest[0].conninfo(&dst),
        "--header",
    ]);
    assert_exit(&out, 2);
    let said = text(&out.stderr);
    assert!(
        said.contains(
            "the header has 3 fields and the COPY reads 2 columns: field 3 (x) names no column of \
             the table, and COPY cannot skip a field"
        ) && !said.contains("--columns"),
        "{said}"
    );
    assert_eq!(count(&c.dest[0], &dst, "t"), 0);
    // A list the user gave that leaves out a column the field names: add it there (recheck42
    // F5: "names no column … add the column" of a table that has it); copy mode alike, where
    // it said "would load into the wrong columns".
    let wide = database(&c.dest[0], "CREATE TABLE t (id int, name text, x text)");
    let to = c.dest[0].conninfo(&wide);
    for (args, add) in [
        (
            vec!["table", "t", "--header", "--columns", "id,name"],
            "add it to --columns where the table has it",
        ),
        (
            vec![
                "copy",
                "--receive",
                "COPY t (id, name) FROM STDIN (FORMAT csv, HEADER)",
            ],
            "add it to the --receive's columns where the table has it",
        ),
    ] {
        let mut args = args;
        args.extend(["--from", csv.arg(), "--to", &to]);
        let out = run(&args);
        assert_exit(&out, 2);
        let said = text(&out.stderr);
        assert!(
            said.contains("field 3 (x) names no column it reads, and COPY cannot skip a field")
                && said.contains(add)
                && !said.contains("wrong columns"),
            "{said}"
        );
    }
    assert_eq!(count(&c.dest[0], &wide, "t"), 0);
}

/// A LATIN1 CSV read without --encoding: its header's bytes are not UTF-8, and the way out is
/// --encoding — it advised --columns, after which the server failed on line 1 (22021;
/// files42 F5). Nothing loaded.
#[test]
fn a_header_not_utf8_read_by_default_is_told_to_give_its_encoding() {
    let c = clusters();
    let dst = database(&c.dest[0], r#"CREATE TABLE e ("café" text, "naïve" text)"#);
    let csv = file("latin1-header.csv", b"na\xefve,caf\xe9\nx,y\n");
    let out = run(&[
        "table",
        "e",
        "--from",
        csv.arg(),
        "--to",
        &c.dest[0].conninfo(&dst),
        "--header",
    ]);
    assert_exit(&out, 2);
    let said = text(&out.stderr);
    assert!(
        said.contains(
            "is not UTF-8, the encoding it is read in by default: give its encoding with \
             --encoding (e.g. --encoding LATIN1)"
        ) && !said.contains("--columns"),
        "{said}"
    );
    assert_eq!(count(&c.dest[0], &dst, "e"), 0);
}

/// Destinations whose columns stand in other orders, and a CSV with a header: told to give
/// --columns the file's fields as its header names them, which then loads both (files42 F7).
#[test]
fn destinations_of_other_column_orders_are_told_the_headers_way() {
    let c = clusters();
    let d1 = database(&c.dest[0], "CREATE TABLE o (a int, b text)");
    let d2 = database(&c.dest[1], "CREATE TABLE o (b text, a int)");
    let csv = file("orders.csv", b"a,b\n1,x\n");
    let (to1, to2) = (c.dest[0].conninfo(&d1), c.dest[1].conninfo(&d2));
    let load = |extra: &[&str]| {
        let mut args = vec![
            "table",
            "o",
            "--from",
            csv.arg(),
            "--to",
            &to1,
            "--to",
            &to2,
        ];
        args.push("--header");
        args.extend(extra);
        run(&args)
    };
    let out = load(&[]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr)
            .contains("give --columns the file's fields in its order, as its header names them"),
        "{}",
        text(&out.stderr)
    );
    assert_exit(&load(&["--columns", "a,b"]), 0);
    assert_eq!(c.dest[1].psql(&d2, "SELECT b || a FROM o").trim(), "x1");
}

/// CSV on stdin without `--format csv`, read as text: refused before anything is sent, saying
/// it is CSV (every row failed at its first field, 22P02, with no word of CSV: cli43 F6).
#[test]
fn csv_on_stdin_read_as_text_is_told_to_give_format_csv() {
    use std::io::Write as _;
    let c = clusters();
    let d1 = database(&c.dest[0], "CREATE TABLE cs (id int, a text);");
    let to = c.dest[0].conninfo(&d1);
    let feed = |extra: &[&str]| {
        let mut child = copyman()
            .args(["table", "cs", "--from", "-", "--to", &to])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"1,x\n2,\"y, z\"\n").unwrap();
        drop(stdin);
        child.wait_with_output().unwrap()
    };
    let out = feed(&[]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("its lines are CSV")
            && text(&out.stderr).contains("--format csv"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &d1, "cs"), 0);
    assert_exit(&feed(&["--format", "csv"]), 0);
    assert_eq!(count(&c.dest[0], &d1, "cs"), 2);
}

/// CSV of one column on stdin read as text: every line is a text value, so it loaded, its
/// quotes in the values, a NULL as '', a value of two lines as two rows — 6 rows of 5, exit 0
/// (types74 F2). Refused, nothing sent; `--format csv` loads it as it was, and text whose
/// quotes are its own (`say "hi"`, a JSON string) loads as before.
#[test]
fn csv_of_one_column_read_as_text_is_refused() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE one1 (s text); INSERT INTO one1 VALUES ('a,b'), (NULL), (''), ('x\"y'), \
         (E'multi\nline'), ('plain');",
    );
    let d1 = database(&c.dest[0], "CREATE TABLE one1 (s text);");
    let to = c.dest[0].conninfo(&d1);
    let csv = run(&[
        "table",
        "one1",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        "-",
        "--format",
        "csv",
    ]);
    assert_exit(&csv, 0);
    let out = run_with_stdin(&["table", "one1", "--from", "-", "--to", &to], &csv.stdout);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("is read as text COPY data, but its lines are CSV")
            && text(&out.stderr).contains("give --format csv (or --format text if it is text)"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &d1, "one1"), 0);
    let out = run_with_stdin(
        &[
            "table", "one1", "--from", "-", "--to", &to, "--format", "csv",
        ],
        &csv.stdout,
    );
    assert_exit(&out, 0);
    let same =
        "(SELECT 1 FROM one1 WHERE s IS NULL OR s IN ('a,b', '', 'x\"y', E'multi\nline', 'plain'))";
    assert_eq!(count(&c.dest[0], &d1, "one1"), 6);
    assert_eq!(count(&c.dest[0], &d1, same), 6);
    assert_eq!(
        count(&c.dest[0], &d1, "(SELECT 1 FROM one1 WHERE s IS NULL)"),
        1
    );
    let own = b"say \"hi\"\n\"quoted\"\nplain\n";
    let out = run_with_stdin(&["table", "one1", "--from", "-", "--to", &to], own);
    assert_exit(&out, 0);
    assert_eq!(
        count(
            &c.dest[0],
            &d1,
            "(SELECT 1 FROM one1 WHERE s = 'say \"hi\"')"
        ),
        1
    );
}

/// A CSV quote inside an unquoted field (an inch mark, a MySQL-style `\"`): the servers read a
/// quoted value from it to the next quote, across line ends, merging rows without an error —
/// 3 records stored as 2, exit 0 (files44 F3); and text right after a quote that closes a
/// value, which shows a quote opened by mistake lines before, the rows between merged into its
/// value (files63 F1). The copy fails naming the line and the field; nothing is committed.
/// Quotes as COPY and RFC 4180 write them copy.
#[test]
fn a_quote_inside_a_csv_field_fails_the_copy_naming_its_line() {
    let c = clusters();
    let db = database(&c.dest[0], "CREATE TABLE q (id int, name text, note text);");
    let to = c.dest[0].conninfo(&db);
    let inside = "has a quote inside a field";
    let after = "has text right after a quote that closes a quoted value";
    for (name, data, line, said, merged) in [
        (
            "inch.csv",
            &b"1,x,ok\n2,y,5\" pipe\n3,z,3\" nail\n"[..],
            2,
            inside,
            "merging rows",
        ),
        (
            "mysql.csv",
            b"1,x,ok\n2,y,\"5\\\" pipe\"\n3,z,ok\n",
            2,
            after,
            "not RFC 4180",
        ),
        (
            "opened.csv",
            b"1,\"open,x\n2,a,b\n3,c\"d,e\n4,f,g\n",
            3,
            after,
            "opened by a quote on line 1 and running to this one, merging the rows between",
        ),
    ] {
        let f = file(name, data);
        let out = run(&["table", "q", "--from", f.arg(), "--to", &to]);
        assert_exit(&out, 1);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(&format!("line {line} of {} {said}", f.arg()))
                && stderr.contains(merged),
            "{name}: {stderr}"
        );
        assert_eq!(count(&c.dest[0], &db, "q"), 0);
    }
    // A NUL byte in the field quoted (binary input read as CSV): the CopyFail that says it
    // goes out, the NUL written \x00 (files65 F1: "copy fail reason contains a nul byte", each
    // destination's connection closed mid-COPY). Past the input's first bytes, which a NUL
    // among refuses as no text before anything (files67 F1).
    let mut data = b"2,a,b\n".repeat(100);
    data.extend(b"1,a\x00b\"c,ok\n");
    let nul = file("nul.csv", &data);
    let out = run(&["table", "q", "--from", nul.arg(), "--to", &to]);
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("line 101 of {} {inside}", nul.arg()))
            && stderr.contains("rolled back")
            && !stderr.contains("nul byte"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &db, "q"), 0);
    let fine = file(
        "quoted.csv",
        b"1,\"say \"\"hi\"\"\",\"two\nlines\"\n2,\"\",\"a, b\"\n",
    );
    let out = run(&["table", "q", "--from", fine.arg(), "--to", &to]);
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[0], &db, "q"), 2);
}

/// Text whose line ends in a backslash (a tool's Windows path `C:\dir\`): the backslash escapes
/// the line end, which the servers read as data, and the next line joins that row — said, with
/// the line (files63 F2: 3 lines loaded as 2 rows, not a word). A pipe that gave no data at all
/// is said too (F5: "copied 0 rows", exit 0, from a command that failed upstream).
#[test]
fn a_line_end_escaped_by_a_backslash_and_an_empty_pipe_are_said() {
    let c = clusters();
    let db = database(&c.dest[0], "CREATE TABLE bs (id int, path text);");
    let to = c.dest[0].conninfo(&db);
    let f = file("paths.txt", b"1\tC:\\dir\\\n2\tc\n3\td\n");
    let out = run(&["table", "bs", "--from", f.arg(), "--to", &to]);
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "line 1 of {} ends in a backslash, which escapes its line end",
            f.arg()
        )) && stderr.contains("line 2 as the same row"),
        "{stderr}"
    );
    let out = run_with_stdin(&["table", "bs", "--from", "-", "--to", &to], b"");
    assert_exit(&out, 0);
    assert!(
        text(&out.stderr).contains("stdin gave no data at all"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &db, "bs"), 0);
}

/// A header some of whose fields name no column of the table (`id,foo,bar` into (id, a, b)):
/// loaded by position, said with where each goes (files63 F7: not a word).
#[test]
fn header_fields_naming_no_column_are_said() {
    let c = clusters();
    let db = database(&c.dest[0], "CREATE TABLE hf (id int, a text, b text);");
    let f = file("labels.csv", b"id,foo,bar\n1,x,y\n");
    let out = run(&[
        "table",
        "hf",
        "--from",
        f.arg(),
        "--header",
        "--to",
        &c.dest[0].conninfo(&db),
    ]);
    assert_exit(&out, 0);
    assert!(
        text(&out.stderr).contains(
            r#"2 of its header's fields name no column of the table: loaded by position ("foo" into a, "bar" into b)"#
        ),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        count(&c.dest[0], &db, "(SELECT 1 FROM hf WHERE a = 'x')"),
        1
    );
}

/// A server's error on a row of a file names the line and the file (files63 F12: "line 3" of
/// no file named).
#[test]
fn a_servers_error_on_a_files_row_names_the_file() {
    let c = clusters();
    let db = database(&c.dest[0], "CREATE TABLE bad (id int, v text);");
    let f = file("bad-row.csv", b"1,a\n2,b\nthree,c\n");
    let out = run(&[
        "table",
        "bad",
        "--from",
        f.arg(),
        "--to",
        &c.dest[0].conninfo(&db),
    ]);
    assert_exit(&out, 1);
    assert!(
        text(&out.stderr).contains("22P02")
            && text(&out.stderr).contains(&format!("(line 3 of {})", f.arg())),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &db, "bad"), 0);
}

/// A pg_dump script's section cut out with its `COPY … FROM stdin;` line: refused, nothing
/// sent, with the way to leave the line out (input75 F10: loaded as a row of a one-column table,
/// exit 0); without that line, it loads.
#[test]
fn a_dump_section_with_its_copy_statement_is_refused() {
    let c = clusters();
    let db = database(&c.dest[0], "CREATE TABLE one (v text);");
    let to = c.dest[0].conninfo(&db);
    let section = file(
        "dump-section.txt",
        b"COPY public.one (v) FROM stdin;\na\nb\n\\.\n",
    );
    let out = run(&["table", "one", "--from", section.arg(), "--to", &to]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("begins with a `COPY … FROM stdin;` line")
            && text(&out.stderr).contains("tail -n +2"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &db, "one"), 0);
    let rows = run_with_stdin(
        &["table", "one", "--from", "-", "--to", &to],
        b"a\nb\n\\.\n",
    );
    assert_exit(&rows, 0);
    assert_eq!(count(&c.dest[0], &db, "one"), 2);
}
