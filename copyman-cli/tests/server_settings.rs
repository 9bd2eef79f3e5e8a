//! What a database or role sets that changes how text COPY data or a statement reads, against
//! copyman's sessions: each sends the portability settings at its start, and those come first.
//! Without them, a destination's `array_nulls = off` stored NULL array elements as the string
//! `NULL`, `standard_conforming_strings = off` read `NULL '\N'` as `NULL 'N'` (NULLs and `N`
//! swapped), `quote_all_identifiers = on` made every type name differ from the source's (text
//! forced, binary refused) and `xmloption = document` refused an XML fragment. Real clusters,
//! shared by the binary.

mod common;
use common::*;

const TABLE: &str = "CREATE TABLE t (id int, a text[], x xml, n text)";
const FILL: &str = "INSERT INTO t VALUES
    (1, ARRAY['a', NULL, 'NULL'], 'some <b>content</b>', NULL),
    (2, '{}', '<doc/>', 'N'),
    (3, NULL, NULL, '\\N')";

/// Each row as one line of text, read with one set of settings (NULL elements shown as such).
fn values(cluster: &copyman_testkit::Cluster, db: &str) -> Vec<String> {
    let mut client = cluster.connect(db);
    client
        .batch_execute(
            "SET array_nulls = on; SET quote_all_identifiers = off; SET xmloption = content",
        )
        .unwrap();
    client
        .query(
            "SELECT concat_ws('|', id, coalesce(a::text, 'null'), \
             coalesce(array_position(a, NULL)::text, '-'), coalesce(x::text, 'null'), \
             coalesce(n, 'null')) FROM t ORDER BY id",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// A database that sets `sql` (its `ALTER DATABASE … SET` clauses) and holds `t`.
fn database_setting(cluster: &copyman_testkit::Cluster, settings: &[&str], sql: &str) -> String {
    let db = database(cluster, sql);
    let mut client = cluster.connect("postgres");
    for setting in settings {
        client
            .batch_execute(&format!("ALTER DATABASE {db} SET {setting}"))
            .unwrap();
    }
    db
}

#[test]
fn a_destination_databases_settings_change_no_value() {
    let c = clusters();
    let src = database_setting(
        &c.source,
        &["quote_all_identifiers = on"],
        &format!("{TABLE}; {FILL}"),
    );
    let expected = values(&c.source, &src);
    assert_eq!(
        expected[0],
        "1|{a,NULL,\"NULL\"}|2|some <b>content</b>|null"
    );
    let settings = [
        "array_nulls = off",
        "quote_all_identifiers = on",
        "xmloption = document",
    ];
    // Text, and the format copyman chooses: binary, since every type is the same.
    for format in ["text", "auto"] {
        let dst = database_setting(&c.dest[0], &settings, TABLE);
        let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
        let mut args = vec!["table", "t", "--from", &from, "--to", &to, "-v"];
        if format == "text" {
            args.extend(["--format", "text"]);
        }
        let out = run(&args);
        assert_exit(&out, 0);
        let stderr = text(&out.stderr);
        if format == "auto" {
            assert!(stderr.contains("format: binary"), "{stderr}");
        }
        assert_eq!(values(&c.dest[0], &dst), expected, "{format}");
    }
}

#[test]
fn copy_statements_read_alike_where_standard_conforming_strings_is_off() {
    let c = clusters();
    let src = database(&c.source, &format!("{TABLE}; {FILL}"));
    let expected = values(&c.source, &src);
    let dst = database_setting(
        &c.dest[0],
        &[
            "standard_conforming_strings = off",
            "escape_string_warning = off",
        ],
        TABLE,
    );
    let out = run(&[
        "copy",
        "--from",
        &c.source.conninfo(&src),
        "--send",
        r"COPY t TO STDOUT (NULL '\N')",
        "--to",
        &c.dest[0].conninfo(&dst),
        "--receive",
        r"COPY t FROM STDIN (NULL '\N')",
    ]);
    assert_exit(&out, 0);
    assert_eq!(values(&c.dest[0], &dst), expected);
}

/// `client_encoding` SQL_ASCII converts nothing: between a UTF8 source and a LATIN1 destination
/// the source's bytes were stored as they are (`café` as `cafÃ©`, in text and binary alike,
/// exit 0, and `--verify` agreed). Such sessions' data is in their server's encoding: they are
/// refused before any row, naming both. Without it copyman's UTF8 converts on both sides.
#[test]
fn client_encoding_sql_ascii_between_servers_of_other_encodings_is_refused() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE t (id int, s text); INSERT INTO t VALUES (1, 'café'), (2, 'plain');",
    );
    let latin1 = |name: &str| {
        let db = format!("{name}_latin1");
        c.dest[0]
            .connect("postgres")
            .batch_execute(&format!(
                "CREATE DATABASE {db} ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' \
                 TEMPLATE template0"
            ))
            .unwrap();
        c.dest[0]
            .connect(&db)
            .batch_execute("CREATE TABLE t (id int, s text)")
            .unwrap();
        db
    };
    let stored = |db: &str| -> Vec<String> {
        c.dest[0]
            .connect(db)
            .query("SELECT s FROM t ORDER BY id", &[])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    };
    for format in ["text", "binary"] {
        let dst = latin1(&format!("{src}_{format}"));
        let copy = |encoding: Option<&str>| {
            let mut cmd = copyman();
            cmd.args(["table", "t", "--format", format, "--from"])
                .arg(c.source.conninfo(&src))
                .arg("--to")
                .arg(c.dest[0].conninfo(&dst));
            if let Some(encoding) = encoding {
                cmd.env("PGCLIENTENCODING", encoding);
            }
            cmd.output().unwrap()
        };
        let out = copy(Some("SQL_ASCII"));
        assert_ne!(out.status.code(), Some(0), "{format}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("UTF8") && stderr.contains("LATIN1"),
            "{format}: {stderr}"
        );
        assert!(stored(&dst).is_empty(), "{format}: nothing stored");
        assert_exit(&copy(None), 0);
        assert_eq!(stored(&dst), ["café", "plain"], "{format}");
    }
}

/// `--verify` between servers of other encodings: the same characters are other bytes there,
/// and the checksums of identical values differed (exit 4, the table not recorded done). Each
/// row is hashed as UTF-8.
#[test]
fn verify_agrees_on_the_same_characters_in_other_encodings() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE t (id int, s text); INSERT INTO t VALUES (1, 'café'), (2, 'Ærø');",
    );
    let dst = format!("{src}_verify_latin1");
    c.dest[0]
        .connect("postgres")
        .batch_execute(&format!(
            "CREATE DATABASE {dst} ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' \
             TEMPLATE template0"
        ))
        .unwrap();
    c.dest[0]
        .connect(&dst)
        .batch_execute("CREATE TABLE t (id int, s text)")
        .unwrap();
    let state = TempPath::new("verify-latin1.state");
    let out = run(&[
        "table",
        "t",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&dst),
        "--verify",
        "--state",
        state.arg(),
    ]);
    assert_exit(&out, 0);
    let recorded = std::fs::read_to_string(&state.0).unwrap();
    assert!(recorded.contains("done\t\"public\".\"t\""), "{recorded}");
}
