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

/// A database `name` of `encoding` (C locale) on `cluster` that runs `sql`.
fn database_in(
    cluster: &copyman_testkit::Cluster,
    name: String,
    encoding: &str,
    sql: &str,
) -> String {
    cluster
        .connect("postgres")
        .batch_execute(&format!(
            "CREATE DATABASE {name} ENCODING '{encoding}' LC_COLLATE 'C' LC_CTYPE 'C' \
             TEMPLATE template0"
        ))
        .unwrap();
    cluster.connect(&name).batch_execute(sql).unwrap();
    name
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

/// A bytea copied into text is stored in hex whatever the source's database sets: its
/// `bytea_output = escape` stored `\000\377A` where another run stored `\x00ff41` (types69 F1).
#[test]
fn bytea_into_text_is_hex_whatever_the_sources_bytea_output() {
    let c = clusters();
    let src = database_setting(
        &c.source,
        &["bytea_output = escape"],
        "CREATE TABLE bt (id int, b bytea); INSERT INTO bt VALUES (1, '\\x00ff41'), (2, 'abc');",
    );
    let dst = database(&c.dest[0], "CREATE TABLE bt (id int, b text)");
    for format in ["text", "csv"] {
        let out = run(&[
            "table",
            "bt",
            "--from",
            &c.source.conninfo(&src),
            "--to",
            &c.dest[0].conninfo(&dst),
            "--truncate",
            "--format",
            format,
        ]);
        assert_exit(&out, 0);
        let stored: Vec<String> = (c.dest[0].connect(&dst))
            .query("SELECT b FROM bt ORDER BY id", &[])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(stored, ["\\x00ff41", "\\x616263"], "{format}");
    }
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
        database_in(
            &c.dest[0],
            format!("{name}_latin1"),
            "LATIN1",
            "CREATE TABLE t (id int, s text)",
        )
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
        // Said before anything begins, naming the setting (it was exit 1, "a destination could
        // not start its COPY", about ENCODING options nobody wrote).
        assert_exit(&out, 2);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("client_encoding SQL_ASCII converts nothing")
                && stderr.contains("source UTF8, destination 1 LATIN1"),
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
    let dst = database_in(
        &c.dest[0],
        format!("{src}_verify_latin1"),
        "LATIN1",
        "CREATE TABLE t (id int, s text)",
    );
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

/// A source database whose DateStyle is `DMY`: `--where "d = '04/03/2024'"` is the 4th of March
/// there, as psql reads it (copyman's `DateStyle` at the start brought postgresql.conf's order
/// with it: it copied the 3rd of April, exit 0); its rows still travel in ISO, which every
/// server reads alike.
#[test]
fn a_where_condition_reads_dates_in_the_source_databases_order() {
    let c = clusters();
    let src = database_setting(
        &c.source,
        &["DateStyle = 'SQL, DMY'"],
        "CREATE TABLE w (id int, d date, ts timestamp);
         INSERT INTO w VALUES (1, '2024-03-04', '2024-03-04 10:00'),
                              (2, '2024-04-03', '2024-04-03 10:00');",
    );
    let dst = database(&c.dest[0], "CREATE TABLE w (id int, d date, ts timestamp)");
    let iso = |cluster: &copyman_testkit::Cluster, db: &str| -> Vec<String> {
        cluster
            .connect(db)
            .query(
                "SELECT id || ' ' || to_char(d, 'YYYY-MM-DD') || ' ' || \
                 to_char(ts, 'YYYY-MM-DD HH24:MI') FROM w ORDER BY id",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    };
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
    let out = run(&[
        "table",
        "w",
        "--from",
        &from,
        "--to",
        &to,
        "--where",
        "d = '04/03/2024'",
        "--format",
        "text",
    ]);
    assert_exit(&out, 0);
    assert_eq!(iso(&c.dest[0], &dst), ["1 2024-03-04 2024-03-04 10:00"]);
    // Every row, in text: the same dates on both sides.
    let out = run(&[
        "table",
        "w",
        "--from",
        &from,
        "--to",
        &to,
        "--format",
        "text",
        "--truncate",
    ]);
    assert_exit(&out, 0);
    assert_eq!(iso(&c.dest[0], &dst), iso(&c.source, &src));
}

/// Timeouts a role or database sets for idle sessions: the source waits idle in its
/// transaction while the slowest destination finishes, and so does a destination that
/// finished first; their servers ended those sessions, and the whole copy failed ("Broken
/// pipe", or 25P03 on every destination). Under `--atomic` a destination that prepared first
/// waits idle outside any transaction, and `idle_session_timeout` ended it before its COMMIT
/// PREPARED (exit 4, a prepared transaction left for recover). copyman's sessions turn these
/// timeouts off, as pg_dump's do.
#[test]
fn idle_timeouts_of_the_servers_do_not_end_a_copy_that_waits_for_its_slowest_destination() {
    const T: &str = "CREATE TABLE t (id serial PRIMARY KEY, v text)";
    let idle = [
        "idle_in_transaction_session_timeout = '300ms'",
        "idle_session_timeout = '300ms'",
    ];
    // The slow destination: a trigger that takes 2 s at the end of its COPY, or (atomic) a
    // deferred one that takes them at its PREPARE.
    let slow_plain = "CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS
          $$ BEGIN PERFORM pg_sleep(2); RETURN NULL; END $$;
        CREATE TRIGGER slow AFTER INSERT ON t FOR EACH STATEMENT EXECUTE FUNCTION slow();";
    let slow_atomic = "CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS
          $$ BEGIN IF NEW.id = 1 THEN PERFORM pg_sleep(2); END IF; RETURN NULL; END $$;
        CREATE CONSTRAINT TRIGGER slow AFTER INSERT ON t DEFERRABLE INITIALLY DEFERRED
          FOR EACH ROW EXECUTE FUNCTION slow();";
    for (c, slow_sql, atomic) in [
        (clusters(), slow_plain, false),
        (two_phase_clusters(), slow_atomic, true),
    ] {
        let src = database_setting(
            &c.source,
            &idle,
            &format!("{T}; INSERT INTO t (v) SELECT md5(g::text) FROM generate_series(1, 5000) g"),
        );
        let quick = database_setting(&c.dest[0], &idle, T);
        let slow = database(&c.dest[1], &format!("{T}; {slow_sql}"));
        let (from, to_quick, to_slow) = (
            c.source.conninfo(&src),
            c.dest[0].conninfo(&quick),
            c.dest[1].conninfo(&slow),
        );
        let log = TempPath::new("idle-timeouts.log");
        let mut args = vec![
            "table", "t", "--from", &from, "--to", &to_quick, "--to", &to_slow,
        ];
        if atomic {
            args.extend(["--atomic", "--decision-log", log.arg()]);
        }
        let out = run(&args);
        assert_exit(&out, 0);
        assert_eq!(count(&c.dest[0], &quick, "t"), 5000, "atomic {atomic}");
        assert_eq!(count(&c.dest[1], &slow, "t"), 5000, "atomic {atomic}");
        assert!(prepared_xacts(&c.dest[0]).is_empty(), "atomic {atomic}");
    }
}

/// A table named without its schema is each server's to resolve: a destination whose
/// search_path finds `staging.t` where the source's is `public.t`, and that has no `public.t`,
/// writes (and with --truncate would empty) `staging.t`, and says so. One that holds `public.t`
/// too is refused (exit 2, nothing written; schema45 F1): which one was meant is not copyman's to
/// guess, and a job of the same name writes the source's.
#[test]
fn a_destination_resolving_an_unqualified_name_to_another_schema_is_said() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE t (id int); INSERT INTO t VALUES (1), (2);",
    );
    let elsewhere = database_setting(
        &c.dest[0],
        &["search_path = staging, public"],
        "CREATE SCHEMA staging; CREATE TABLE staging.t (id int);",
    );
    let both = database_setting(
        &c.dest[1],
        &["search_path = staging, public"],
        "CREATE TABLE t (id int); CREATE SCHEMA staging; CREATE TABLE staging.t (id int);",
    );
    let from = c.source.conninfo(&src);
    let out = run(&[
        "table",
        "t",
        "--from",
        &from,
        "--to",
        &c.dest[0].conninfo(&elsewhere),
    ]);
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            r#""t" is "staging"."t" there (on its search_path), "public"."t" on the source"#
        ),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &elsewhere, "staging.t"), 2);
    let out = run(&[
        "table",
        "t",
        "--from",
        &from,
        "--to",
        &c.dest[1].conninfo(&both),
    ]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            r#""t" is "staging"."t" there (on its search_path), "public"."t" on the source, and it holds "public"."t" too: name the one to write with --target-table"#
        ) && stderr.contains(r#"or '"t"', which each destination finds on its own search_path"#),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[1], &both, "staging.t"), 0);
    assert_eq!(count(&c.dest[1], &both, "public.t"), 0);
}

/// One file into destinations that read it otherwise: its values are read in each server's own
/// settings, as psql's `\copy` reads them, and where their DateStyle order, IntervalStyle or
/// TimeZone differ for the columns copied, each stored another date, interval and instant for
/// the same line (exit 0). Refused, as destinations of other column orders are; a table none of
/// whose columns those settings read loads as before.
#[test]
fn one_file_into_destinations_that_read_it_otherwise_is_refused() {
    let c = clusters();
    const F: &str = "CREATE TABLE f (id int, d date, iv interval, ts timestamptz, s text)";
    // A date inside a composite, and under a domain: read in the setting all the same.
    const NESTED: &str = "CREATE TYPE dated AS (d date, n int); CREATE DOMAIN day AS date; \
                          CREATE TABLE nested (id int, c dated); CREATE TABLE dom (id int, d day)";
    let file = TempPath::new("otherwise.csv");
    std::fs::write(&file.0, "1,04/03/2024,-1 2:00:00,2024-01-01 00:00:00,x\n").unwrap();
    let dmy = database_setting(
        &c.dest[0],
        &[
            "DateStyle = 'ISO, DMY'",
            "IntervalStyle = sql_standard",
            "TimeZone = 'Asia/Tokyo'",
        ],
        &format!("{F}; CREATE TABLE plain (id int, s text); {NESTED}"),
    );
    let mdy = database(
        &c.dest[1],
        &format!("{F}; CREATE TABLE plain (id int, s text); {NESTED}"),
    );
    let load = |table: &str, path: &str| {
        run(&[
            "table",
            table,
            "--from",
            path,
            "--to",
            &c.dest[0].conninfo(&dmy),
            "--to",
            &c.dest[1].conninfo(&mdy),
        ])
    };
    let nested = TempPath::new("otherwise-nested.txt");
    std::fs::write(&nested.0, "1\t(04/03/2024,1)\n").unwrap();
    let dom = TempPath::new("otherwise-dom.txt");
    std::fs::write(&dom.0, "1\t04/03/2024\n").unwrap();
    for (table, path) in [("nested", nested.arg()), ("dom", dom.arg())] {
        let out = load(table, path);
        assert_exit(&out, 2);
        assert!(
            text(&out.stderr).contains("the order of a date's fields differs"),
            "{table}: {}",
            text(&out.stderr)
        );
    }
    let out = load("f", file.arg());
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    // Every setting that differs, in one error, and a way that works (types74 F1: refused a
    // setting a run, and `PGDATESTYLE=ISO` said, which keeps each server's order).
    assert!(
        stderr.contains("the order of a date's fields differs")
            && stderr.contains("DateStyle ISO, DMY")
            && stderr.contains("has IntervalStyle sql_standard")
            && stderr.contains("has TimeZone Asia/Tokyo")
            && stderr.contains("give every destination the same DateStyle, IntervalStyle, TimeZone")
            && stderr.contains("reads alike under any order, but each destination needs the same one, the order the file's dates are written in (DMY, MDY or YMD): PGDATESTYLE='ISO, DMY' if DMY"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &dmy, "f"), 0);
    assert_eq!(count(&c.dest[1], &mdy, "f"), 0);
    let followed = copyman()
        .env("PGDATESTYLE", "ISO, DMY")
        .env("PGTZ", "UTC")
        .env("PGOPTIONS", "-c intervalstyle=postgres")
        .args([
            "table",
            "f",
            "--from",
            file.arg(),
            "--to",
            &c.dest[0].conninfo(&dmy),
            "--to",
            &c.dest[1].conninfo(&mdy),
        ])
        .output()
        .unwrap();
    assert_exit(&followed, 0);
    let alike = "(SELECT 1 FROM f WHERE d = '2024-03-04' AND ts = '2024-01-01 00:00:00+00' \
                 AND iv = make_interval(days => -1, hours => 2))";
    assert_eq!(count(&c.dest[0], &dmy, alike), 1);
    assert_eq!(count(&c.dest[1], &mdy, alike), 1);
    for (cluster, db) in [(&c.dest[0], &dmy), (&c.dest[1], &mdy)] {
        cluster.connect(db).batch_execute("TRUNCATE f").unwrap();
    }
    // An interval alone: the way said is what sets IntervalStyle, and it works (files48 F3: it
    // said PGDATESTYLE or PGTZ, which set none).
    for (cluster, db) in [(&c.dest[0], &dmy), (&c.dest[1], &mdy)] {
        (cluster.connect(db))
            .batch_execute("CREATE TABLE ivs (id int, iv interval)")
            .unwrap();
    }
    let ivs = TempPath::new("otherwise-ivs.txt");
    std::fs::write(&ivs.0, "1\t-1 2:03:04\n").unwrap();
    let out = load("ivs", ivs.arg());
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("has IntervalStyle sql_standard")
            && stderr.contains("(-c intervalstyle=… in the CONN's options, or in PGOPTIONS)")
            && !stderr.contains("PGTZ"),
        "{stderr}"
    );
    let as_postgres = format!(
        "{} options='-c intervalstyle=postgres'",
        c.dest[0].conninfo(&dmy)
    );
    let out = run(&[
        "table",
        "ivs",
        "--from",
        ivs.arg(),
        "--to",
        &as_postgres,
        "--to",
        &c.dest[1].conninfo(&mdy),
    ]);
    assert_exit(&out, 0);
    // Read alike: a day back, two hours on.
    let alike = "(SELECT 1 FROM ivs WHERE iv = make_interval(days => -1, hours => 2, mins => 3, secs => 4))";
    assert_eq!(count(&c.dest[0], &dmy, alike), 1);
    assert_eq!(count(&c.dest[1], &mdy, alike), 1);
    // A binary (PGCOPY) file carries values, not text: loaded alike everywhere, with or without
    // --format (it was refused for the destinations' DateStyle).
    let src = database(
        &c.source,
        &format!(
            "{F}; INSERT INTO f VALUES (1, '2024-03-04', '-1 day 2 hours', '2024-01-01 00:00:00+00', 'x')"
        ),
    );
    let binary = TempPath::new("otherwise.pgcopy");
    assert_exit(
        &run(&[
            "table",
            "f",
            "--from",
            &c.source.conninfo(&src),
            "--to",
            binary.arg(),
            "--format",
            "binary",
        ]),
        0,
    );
    assert_exit(&load("f", binary.arg()), 0);
    // And by copy mode (it refused it).
    let copied = run(&[
        "copy",
        "--from",
        binary.arg(),
        "--to",
        &c.dest[0].conninfo(&dmy),
        "--to",
        &c.dest[1].conninfo(&mdy),
        "--receive",
        "COPY f FROM STDIN (FORMAT binary)",
    ]);
    assert_exit(&copied, 0);
    for (cluster, db) in [(&c.dest[0], &dmy), (&c.dest[1], &mdy)] {
        assert_eq!(
            count(
                cluster,
                db,
                "(SELECT 1 FROM f WHERE d = '2024-03-04' AND ts = '2024-01-01 00:00:00+00')"
            ),
            2
        );
    }
    // No column those settings read: loaded alike everywhere.
    let plain = TempPath::new("otherwise-plain.csv");
    std::fs::write(&plain.0, "1,a\n2,b\n").unwrap();
    assert_exit(&load("plain", plain.arg()), 0);
    assert_eq!(count(&c.dest[0], &dmy, "plain"), 2);
    assert_eq!(count(&c.dest[1], &mdy, "plain"), 2);
}

/// Between servers that all hold one encoding other than UTF8, the data passes in it, as a psql
/// pipe passes it: a SQL_ASCII database's bytes that are not UTF-8 failed the copy (22021, read
/// out as UTF8), and EUC_JP's duplicate codes came back as others.
#[test]
fn servers_of_one_encoding_other_than_utf8_pass_their_bytes() {
    let c = clusters();
    let ascii = |cluster: &copyman_testkit::Cluster, name: String, fill: &str| {
        database_in(
            cluster,
            name,
            "SQL_ASCII",
            &format!("CREATE TABLE t (id int, s text); {fill}"),
        )
    };
    let base = database(&c.source, "SELECT 1");
    let src = ascii(
        &c.source,
        format!("{base}_ascii"),
        r"INSERT INTO t VALUES (1, convert_from('\x636166e9', 'SQL_ASCII')), (2, 'plain');",
    );
    let dst = ascii(&c.dest[0], format!("{base}_ascii_to"), "");
    let out = run(&[
        "table",
        "t",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&dst),
        "--format",
        "text",
    ]);
    assert_exit(&out, 0);
    let digests = |cluster: &copyman_testkit::Cluster, db: &str| -> Vec<String> {
        cluster
            .connect(db)
            .query("SELECT md5(s) FROM t ORDER BY id", &[])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    };
    assert_eq!(digests(&c.dest[0], &dst), digests(&c.source, &src));
    // A job too (it failed on the byte beyond ASCII, 22021, read through UTF8).
    let dst = ascii(
        &c.dest[1],
        format!("{base}_ascii_job"),
        "CREATE TABLE u (id int);",
    );
    c.source
        .connect(&src)
        .batch_execute("CREATE TABLE u (id int); INSERT INTO u VALUES (1);")
        .unwrap();
    let state = TempPath::new("ascii-job.state");
    let out = run(&[
        "table",
        "t",
        "u",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[1].conninfo(&dst),
        "--state",
        state.arg(),
    ]);
    assert_exit(&out, 0);
    assert_eq!(digests(&c.dest[1], &dst), digests(&c.source, &src));
    // Into a UTF8 database its bytes are read as UTF8 and refused (22021): a job says the way
    // out as one table does (enc45 F6: "the error above says what is wrong", which it did not).
    let utf8 = database(
        &c.dest[0],
        "CREATE TABLE t (id int, s text); CREATE TABLE u (id int);",
    );
    let state = TempPath::new("ascii-job-utf8.state");
    // (--keep-going: `u` commits whichever table goes first.)
    let out = run(&[
        "table",
        "t",
        "u",
        "--keep-going",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&utf8),
        "--state",
        state.arg(),
    ]);
    assert_exit(&out, 4);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "the source's database is SQL_ASCII, which holds bytes of no declared encoding, \
             read as UTF8: give every CONN the data's encoding, e.g. client_encoding=LATIN1"
        ),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &utf8, "t"), 0);
}

/// A role whose `CONNECTION LIMIT` leaves no connection for copyman's lock-wait monitor: the
/// watch says a stuck copy's server cannot be asked, and now why (53300), not only that.
#[test]
fn a_monitor_that_cannot_connect_says_why() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE t (id int); INSERT INTO t VALUES (1), (2);",
    );
    let dst = database(&c.dest[0], "CREATE TABLE t (id int)");
    let role = format!("lim_{dst}");
    let mut admin = c.dest[0].connect(&dst);
    admin
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN CONNECTION LIMIT 1; GRANT ALL ON t TO {role};"
        ))
        .unwrap();
    admin.batch_execute("BEGIN; LOCK t IN SHARE MODE").unwrap();
    let to = format!(
        "host=127.0.0.1 port={} user={role} dbname={dst}",
        c.dest[0].port()
    );
    let mut child = copyman()
        .args([
            "table",
            "t",
            "--from",
            &c.source.conninfo(&src),
            "--to",
            &to,
        ])
        .env("COPYMAN_TEST_SAY_AFTER", "1")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = StderrLines::take(&mut child);
    let line = stderr.expect("cannot be asked");
    admin.batch_execute("ROLLBACK").unwrap();
    assert!(line.contains("53300"), "{line}");
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert_eq!(count(&c.dest[0], &dst, "t"), 2);
}

/// The same for `copy` with `--receive` statements: each destination reads the columns its
/// statement names (else its table's) in its own settings, and one statement's columns must be
/// the same on every destination (the file's fields are read by position). Both loaded other
/// values on each destination, exit 0.
#[test]
fn one_file_copied_into_destinations_that_read_it_otherwise_is_refused() {
    let c = clusters();
    let file = TempPath::new("copy-otherwise.txt");
    std::fs::write(&file.0, "04/03/2024\tA\tB\n").unwrap();
    let dmy = database_setting(
        &c.dest[0],
        &["DateStyle = 'ISO, DMY'"],
        "CREATE TABLE f (d date, a text, b text); CREATE TABLE g (a text, b text)",
    );
    let mdy = database(
        &c.dest[1],
        "CREATE TABLE f (d date, a text, b text); CREATE TABLE g (b text, a text)",
    );
    let copy = |receive: &str, path: &str| {
        run(&[
            "copy",
            "--from",
            path,
            "--to",
            &c.dest[0].conninfo(&dmy),
            "--to",
            &c.dest[1].conninfo(&mdy),
            "--receive",
            receive,
        ])
    };
    let out = copy("COPY f FROM STDIN", file.arg());
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("the order of a date's fields differs")
            && stderr.contains("DateStyle ISO, DMY"),
        "{stderr}"
    );
    // Only the text columns: their settings do not matter.
    let texts = TempPath::new("copy-otherwise-texts.txt");
    std::fs::write(&texts.0, "A\tB\n").unwrap();
    assert_exit(&copy("COPY f (a, b) FROM STDIN", texts.arg()), 0);
    assert_eq!(count(&c.dest[0], &dmy, "f"), 1);
    assert_eq!(count(&c.dest[1], &mdy, "f"), 1);
    // One statement, other column orders: refused; named columns load alike.
    let out = copy("COPY g FROM STDIN", texts.arg());
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("has (a, b)") && stderr.contains("has (b, a)"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &dmy, "g"), 0);
    assert_exit(&copy("COPY g (a, b) FROM STDIN", texts.arg()), 0);
    assert_eq!(
        count(&c.dest[1], &mdy, "(SELECT 1 FROM g WHERE a = 'A')"),
        1
    );
}

/// A cluster whose server knows `locales` (each `NAME.UTF-8`, built by localedef into a
/// directory of the test's, its `LOCPATH`), or `None` where localedef cannot build them here,
/// said as `test` SKIPPED.
fn with_locales(test: &str, locales: &[&str]) -> Option<(TempPath, copyman_testkit::Cluster)> {
    let dir = TempPath::new("locales");
    std::fs::create_dir_all(&dir.0).unwrap();
    for locale in locales {
        // localedef warns (status 1) about the system's locale sources, and builds all the
        // same.
        let _ = std::process::Command::new("localedef")
            .args(["-i", locale, "-f", "UTF-8"])
            .arg(dir.0.join(format!("{locale}.UTF-8")))
            .output();
        if !dir.0.join(format!("{locale}.UTF-8/LC_MONETARY")).exists() {
            eprintln!(
                "SKIPPED {test}: localedef cannot build {locale}.UTF-8 on this machine (no \
                 locale sources)"
            );
            return None;
        }
    }
    let cluster = copyman_testkit::Cluster::builder()
        .env("LOCPATH", dir.arg())
        .start();
    Some((dir, cluster))
}

/// A file's money values are read in each destination's lc_monetary (as psql's `\copy` reads
/// them), and copyman writes them in the C locale's: into a destination whose decimal point is
/// a comma, `$0.50` loaded as 50.00 (a round trip through a file multiplied every amount by 100,
/// exit 0). Refused, naming the locale and what it reads; told the file's locale in the CONN
/// (`options='-c lc_monetary=C'`), it loads every amount as written.
#[test]
fn money_from_a_file_into_a_comma_decimal_locale_is_refused_unless_told() {
    let Some((_locales, argentina)) = with_locales(
        "money_from_a_file_into_a_comma_decimal_locale_is_refused_unless_told",
        &["es_AR"],
    ) else {
        return;
    };
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE m (id int, v money); \
         INSERT INTO m VALUES (1, 0.50), (2, 12.34), (3, -7.25);",
    );
    let dst = database_setting(
        &argentina,
        &["lc_monetary = 'es_AR.UTF-8'"],
        "CREATE TABLE m (id int, v money)",
    );
    let file = TempPath::new("money.txt");
    assert_exit(
        &run(&[
            "table",
            "m",
            "--from",
            &c.source.conninfo(&src),
            "--to",
            file.arg(),
        ]),
        0,
    );
    let out = run(&[
        "table",
        "m",
        "--from",
        file.arg(),
        "--to",
        &argentina.conninfo(&dst),
    ]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("lc_monetary 'es_AR.UTF-8', which writes an amount as")
            && stderr.contains("options='-c lc_monetary=C'"),
        "{stderr}"
    );
    assert_eq!(count(&argentina, &dst, "m"), 0);
    let told = format!("{} options='-c lc_monetary=C'", argentina.conninfo(&dst));
    assert_exit(
        &run(&["table", "m", "--from", file.arg(), "--to", &told]),
        0,
    );
    let amounts = |db: &str| {
        argentina.psql(
            db,
            "SELECT string_agg(v::numeric::text, ' ' ORDER BY id) FROM m",
        )
    };
    assert_eq!(amounts(&dst).trim(), "0.50 12.34 -7.25");
    // A file in the destination's own form, told so (it was refused whatever the CONN said),
    // and a copy that leaves the money column out (it was refused too).
    let own = TempPath::new("money-es.txt");
    std::fs::write(&own.0, "1\t$ 0,50\n").unwrap();
    let dst2 = database_setting(
        &argentina,
        &["lc_monetary = 'es_AR.UTF-8'"],
        "CREATE TABLE m (id int, v money)",
    );
    let in_es = format!(
        "{} options='-c lc_monetary=es_AR.UTF-8'",
        argentina.conninfo(&dst2)
    );
    assert_exit(
        &run(&["table", "m", "--from", own.arg(), "--to", &in_es]),
        0,
    );
    assert_eq!(amounts(&dst2).trim(), "0.50");
    let ids = TempPath::new("money-ids.txt");
    std::fs::write(&ids.0, "7\n").unwrap();
    let to = argentina.conninfo(&dst2);
    assert_exit(
        &run(&[
            "table",
            "m",
            "--from",
            ids.arg(),
            "--to",
            &to,
            "--columns",
            "id",
        ]),
        0,
    );
}

/// A `money` value is stored as a count of its database's smallest unit (cents under `C`, yen
/// under `ja_JP`), and copyman copies that count: between databases whose `lc_monetary` count
/// in other fractions, `$12.34` arrived as `¥1,234` (exit 0; pg_dump's text is refused there).
/// Through text the copy sessions' C locale misread it the same way: a ja_JP source's `¥1,234`
/// written into a text column as `$12.34`, a text `12.34` stored into a ja_JP money column as
/// `¥1,234` (psql stores `¥12`). Refused, naming both locales, in `table` mode, `copy` mode and
/// a job (on that destination: under `--keep-going` the job's other destinations and tables go
/// on); a copy that leaves the money column out, a CONN that says what its database counts in,
/// and a locale of the same fraction copy.
#[test]
fn money_between_databases_counting_other_fractions_is_refused() {
    let Some((_locales, tokyo)) = with_locales(
        "money_between_databases_counting_other_fractions_is_refused",
        &["ja_JP", "es_AR"],
    ) else {
        return;
    };
    let c = clusters();
    let tables = "CREATE TABLE m (id int, v money); CREATE TABLE n (id int);";
    let src = database(
        &c.source,
        &format!("{tables} INSERT INTO m VALUES (1, 12.34); INSERT INTO n VALUES (1);"),
    );
    let yen = database_setting(&tokyo, &["lc_monetary = 'ja_JP.UTF-8'"], tables);
    let pesos = database_setting(&tokyo, &["lc_monetary = 'es_AR.UTF-8'"], tables);
    let (from, to) = (c.source.conninfo(&src), tokyo.conninfo(&yen));
    let refused = |args: &[&str], said: &[&str]| {
        let out = run(args);
        assert_ne!(out.status.code(), Some(0), "{args:?}");
        let stderr = text(&out.stderr);
        for words in said {
            assert!(stderr.contains(words), "{words:?} in {stderr}");
        }
        stderr
    };
    let both = [
        "lc_monetary 'ja_JP.UTF-8' (0 decimals)",
        "an amount of 12.34 on the source would be 1234 there",
    ];
    refused(&["table", "m", "--from", &from, "--to", &to], &both);
    refused(
        &[
            "table", "m", "--from", &from, "--to", &to, "--format", "text",
        ],
        &both,
    );
    for send in ["COPY m TO STDOUT", "COPY (SELECT * FROM m) TO STDOUT"] {
        refused(
            &[
                "copy",
                "--from",
                &from,
                "--send",
                send,
                "--to",
                &to,
                "--receive",
                "COPY m FROM STDIN",
            ],
            &both,
        );
    }
    assert_eq!(count(&tokyo, &yen, "m"), 0);
    // A job: refused on that destination; under --keep-going a destination in cents gets it,
    // and every other table goes on.
    let cents = database(&c.dest[0], tables);
    let (job_to, cents_to) = (to.clone(), c.dest[0].conninfo(&cents));
    refused(
        &["table", "m", "n", "--from", &from, "--to", &job_to],
        &both,
    );
    let out = run(&[
        "table",
        "m",
        "n",
        "--from",
        &from,
        "--to",
        &job_to,
        "--to",
        &cents_to,
        "--keep-going",
    ]);
    assert_exit(&out, 4);
    assert_eq!(count(&tokyo, &yen, "m"), 0);
    assert_eq!(count(&tokyo, &yen, "n"), 1);
    assert_eq!(count(&c.dest[0], &cents, "m"), 1);
    // Without the money column; told in the CONN what the destination counts in.
    assert_exit(
        &run(&[
            "table",
            "m",
            "--from",
            &from,
            "--to",
            &to,
            "--columns",
            "id",
        ]),
        0,
    );
    let told = format!("{to} options='-c lc_monetary=C'");
    assert_exit(&run(&["table", "m", "--from", &from, "--to", &told]), 0);
    // es_AR counts cents too: its amounts are the source's.
    let to_pesos = tokyo.conninfo(&pesos);
    assert_exit(
        &run(&["table", "m", "n", "--from", &from, "--to", &to_pesos]),
        0,
    );
    assert_eq!(
        tokyo.psql(&pesos, "SELECT v::numeric FROM m").trim(),
        "12.34"
    );

    // Through text: yen written as text, and text read as yen.
    let yen_src = database_setting(
        &tokyo,
        &["lc_monetary = 'ja_JP.UTF-8'"],
        "CREATE TABLE m (id int, v money); INSERT INTO m VALUES (1, 1234);",
    );
    let as_text = database(&c.dest[0], "CREATE TABLE m (id int, v text);");
    refused(
        &[
            "table",
            "m",
            "--from",
            &tokyo.conninfo(&yen_src),
            "--to",
            &c.dest[0].conninfo(&as_text),
        ],
        &["an amount of 1234 there would be written as 12.34"],
    );
    assert_eq!(count(&c.dest[0], &as_text, "m"), 0);
    let text_src = database(
        &c.source,
        "CREATE TABLE m (id int, v numeric); INSERT INTO m VALUES (1, 12.34);",
    );
    let yen_dst = database_setting(
        &tokyo,
        &["lc_monetary = 'ja_JP.UTF-8'"],
        "CREATE TABLE m (id int, v money);",
    );
    refused(
        &[
            "table",
            "m",
            "--from",
            &c.source.conninfo(&text_src),
            "--to",
            &tokyo.conninfo(&yen_dst),
        ],
        &["a source's 12.34 would be stored as an amount of 1234"],
    );
    assert_eq!(count(&tokyo, &yen_dst, "m"), 0);
    // Told in the CONN, the destination reads text as psql would: ¥12.
    let told = format!(
        "{} options='-c lc_monetary=ja_JP.UTF-8'",
        tokyo.conninfo(&yen_dst)
    );
    assert_exit(
        &run(&[
            "table",
            "m",
            "--from",
            &c.source.conninfo(&text_src),
            "--to",
            &told,
        ]),
        0,
    );
    assert_eq!(
        tokyo.psql(&yen_dst, "SELECT v::numeric FROM m").trim(),
        "12"
    );
}

/// A `timestamp` without a zone on the source into `timestamptz` on destinations whose TimeZone
/// differs: each read the wall-clock time in its own zone and stored another instant (a
/// warning, exit 0). Refused, naming the column and both zones; the same zone everywhere copies.
#[test]
fn a_timestamp_into_timestamptz_across_other_time_zones_is_refused() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE z (id int, at timestamp, d date);
         INSERT INTO z VALUES (1, '2024-01-01 00:00', '2024-01-01');",
    );
    let zoned = "CREATE TABLE z (id int, at timestamptz, d timestamptz)";
    let tokyo = database_setting(&c.dest[0], &["TimeZone = 'Asia/Tokyo'"], zoned);
    let utc = database_setting(&c.dest[1], &["TimeZone = 'UTC'"], zoned);
    let out = run(&[
        "table",
        "z",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&tokyo),
        "--to",
        &c.dest[1].conninfo(&utc),
    ]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    // Every column it takes, in one refusal (types43 F9), and zone rules copyman does not
    // compare said as such (two names of one zone read alike: types43 F10).
    assert!(
        stderr.contains("columns \"at\", \"d\" hold no time zone on the source")
            && stderr.contains("TimeZone Asia/Tokyo")
            && stderr.contains("has UTC")
            && stderr
                .contains("wherever those zones' rules differ (copyman does not compare them)"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &tokyo, "z"), 0);
    // One zone for both (the CONN's options): one instant everywhere.
    let in_utc = |conninfo: String| format!("{conninfo} options='-c TimeZone=UTC'");
    let out = run(&[
        "table",
        "z",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &in_utc(c.dest[0].conninfo(&tokyo)),
        "--to",
        &c.dest[1].conninfo(&utc),
    ]);
    assert_exit(&out, 0);
    for (cluster, db) in [(&c.dest[0], &tokyo), (&c.dest[1], &utc)] {
        assert_eq!(
            count(
                cluster,
                db,
                "(SELECT 1 FROM z WHERE at = '2024-01-01 00:00+00')"
            ),
            1
        );
    }
    // A job refuses it as well (it copied: another instant on each), and so does a date or text
    // into a domain over timestamptz; UTC by another name is UTC.
    c.source
        .connect(&src)
        .batch_execute(
            "CREATE TABLE u (id int, d date, s text); \
             INSERT INTO u VALUES (1, '2024-01-01', '2024-01-01 00:00');",
        )
        .unwrap();
    for (cluster, db) in [(&c.dest[0], &tokyo), (&c.dest[1], &utc)] {
        cluster
            .connect(db)
            .batch_execute(
                "TRUNCATE z; CREATE DOMAIN dtz AS timestamptz; \
                 CREATE TABLE u (id int, d dtz, s timestamptz);",
            )
            .unwrap();
    }
    let to = [c.dest[0].conninfo(&tokyo), c.dest[1].conninfo(&utc)];
    for tables in [&["z", "u"][..], &["u"][..]] {
        let mut args = vec!["table"];
        args.extend(tables);
        let from = c.source.conninfo(&src);
        args.extend(["--from", &from, "--to", &to[0], "--to", &to[1]]);
        let state = TempPath::new("zones.state");
        if tables.len() > 1 {
            args.extend(["--state", state.arg()]);
        }
        let out = run(&args);
        assert_exit(&out, 2);
        assert!(
            text(&out.stderr).contains("hold no time zone on the source"),
            "{tables:?}: {}",
            text(&out.stderr)
        );
        assert_eq!(count(&c.dest[0], &tokyo, "z"), 0);
        assert_eq!(count(&c.dest[0], &tokyo, "u"), 0);
    }
    let etc_utc = |conninfo: String| format!("{conninfo} options='-c TimeZone=Etc/UTC'");
    let out = run(&[
        "table",
        "u",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &etc_utc(c.dest[0].conninfo(&tokyo)),
        "--to",
        &c.dest[1].conninfo(&utc),
    ]);
    assert_exit(&out, 0);
    // Text alone is said as text, whose values may carry their offsets (types46 F2: "holds
    // no time zone on the source").
    c.source
        .connect(&src)
        .batch_execute("CREATE TABLE w (s text); INSERT INTO w VALUES ('2024-01-01 00:00+00');")
        .unwrap();
    for (cluster, db) in [(&c.dest[0], &tokyo), (&c.dest[1], &utc)] {
        cluster
            .connect(db)
            .batch_execute("CREATE TABLE w (s timestamptz)")
            .unwrap();
    }
    let out = run(&[
        "table",
        "w",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&tokyo),
        "--to",
        &c.dest[1].conninfo(&utc),
    ]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains(
            "column \"s\" holds text on the source (a value without a UTC offset the \
             destinations read in their own TimeZone)"
        ),
        "{}",
        text(&out.stderr)
    );
}

/// One file whose times carry a zone abbreviation, into destinations whose
/// `timezone_abbreviations` differ (`IST`: India's +05:30 under `India`, Israel's +02 under
/// `Default`): each stored another instant (exit 0). Refused, naming both settings.
#[test]
fn one_file_into_destinations_of_other_zone_abbreviations_is_refused() {
    let c = clusters();
    let zoned = "CREATE TABLE za (id int, at timestamptz)";
    let india = database_setting(&c.dest[0], &["timezone_abbreviations = 'India'"], zoned);
    let default = database(&c.dest[1], zoned);
    let file = TempPath::new("abbreviations.txt");
    std::fs::write(&file.0, "1\t2024-01-01 00:00:00 IST\n").unwrap();
    let out = run(&[
        "table",
        "za",
        "--from",
        file.arg(),
        "--to",
        &c.dest[0].conninfo(&india),
        "--to",
        &c.dest[1].conninfo(&default),
    ]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("what a time zone abbreviation means differs")
            && stderr.contains("timezone_abbreviations India"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &india, "za"), 0);
}

/// Dates and intervals kept as text on the source, into `date` and `interval` columns of a
/// database set to `DateStyle 'ISO, DMY'` and `IntervalStyle sql_standard`: read as that database
/// reads such text, as a psql pipe does (copyman's pinned ISO/MDY and postgres styles stored the
/// 2nd of January and `-1 days +02:03:04`). Typed dates and intervals, which the source writes
/// in ISO and the postgres style, are read alike under any style. `--verify` reads the source's
/// text in the destination's settings too (a zone of its own as well): a faithful copy
/// differed, exit 4 for ever (types50 F3), where one the destination changed still differs.
#[test]
fn text_into_dates_and_intervals_is_read_as_the_destination_database_reads_it() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE ds (id int, d text, i text, td date, ti interval);
         INSERT INTO ds VALUES
           (1, '01/02/2024', '-1 2:03:04', '2024-03-04', '-1 days +02:03:04'),
           (2, '31/12/2023', '1 2:03:04', '0044-03-15 BC', '1 mon -2 days -00:00:01');",
    );
    c.source.psql(
        &src,
        "ALTER TABLE ds ADD z text; UPDATE ds SET z = '2024-03-04 10:00'",
    );
    let dst = database_setting(
        &c.dest[0],
        &[
            "DateStyle = 'ISO, DMY'",
            "IntervalStyle = 'sql_standard'",
            "TimeZone = 'Asia/Kolkata'",
        ],
        "CREATE TABLE ds (id int, d date, i interval, td date, ti interval, z timestamptz)",
    );
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
    let out = run(&["table", "ds", "--from", &from, "--to", &to, "--verify"]);
    assert_exit(&out, 0);
    assert!(
        text(&out.stderr).contains("1 verified"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        count(
            &c.dest[0],
            &dst,
            "(SELECT 1 FROM ds WHERE z = '2024-03-04 04:30+00')"
        ),
        2
    );
    c.dest[0].psql(&dst, "UPDATE ds SET i = i * 2 WHERE id = 2");
    let out = run(&[
        "table", "ds", "--from", &from, "--to", &to, "--verify", "--resume",
    ]);
    assert_exit(&out, 4);
    assert!(
        text(&out.stderr).contains("checksum differs"),
        "{}",
        text(&out.stderr)
    );
    c.dest[0].psql(&dst, "UPDATE ds SET i = i / 2 WHERE id = 2");
    let expect = [
        "(SELECT 1 FROM ds WHERE id = 1 AND d = '2024-02-01' \
           AND i = interval '-1 day -2 hours -3 minutes -4 seconds' \
           AND td = '2024-03-04' AND ti = interval '-1 day +2 hours 3 minutes 4 seconds')",
        "(SELECT 1 FROM ds WHERE id = 2 AND d = '2023-12-31' \
           AND i = interval '1 day 2 hours 3 minutes 4 seconds' \
           AND td = '0044-03-15 BC' AND ti = interval '1 mon -2 days -1 second')",
    ];
    for row in expect {
        assert_eq!(count(&c.dest[0], &dst, row), 1, "{row}");
    }
}

/// copyman's sessions compile no query (scale51 F3: its catalog queries over many tables cost
/// more than `jit_above_cost`, and compiling one took seconds where it ran in milliseconds),
/// unless the CONN's options ask for it.
#[test]
fn sessions_run_without_jit_unless_the_conn_asks() {
    let c = clusters();
    let src = database_setting(&c.source, &["jit = on"], "SELECT 1");
    let file = TempPath::new("jit.txt");
    for (options, expect) in [("", "off"), (" options='-c jit=on'", "on")] {
        let from = format!("{}{options}", c.source.conninfo(&src));
        let send = "COPY (SELECT pg_catalog.current_setting('jit')) TO STDOUT";
        let out = run(&["copy", "--from", &from, "--send", send, "--to", file.arg()]);
        assert_exit(&out, 0);
        assert_eq!(std::fs::read_to_string(&file.0).unwrap().trim(), expect);
    }
}

/// A resume that copies a table to a destination reading its text in another `DateStyle`
/// order than the destination where an earlier run copied it is refused, as one run to both is
/// (recheck51 F2: the CONN's options left out of the resume, the two held different days for
/// one source row, exit 0).
#[test]
fn a_resume_reading_dates_otherwise_than_where_the_table_is_done_is_refused() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE m (id int, d text); INSERT INTO m VALUES (1, '01/02/2024');",
    );
    let d1 = database(&c.dest[0], "CREATE TABLE m (id int, d date);");
    let d2 = database(
        &c.dest[1],
        "CREATE TABLE m (id int, d date CHECK (id > 5));",
    );
    let dmy = " options='-c DateStyle=ISO,DMY'";
    let (from, to1) = (
        c.source.conninfo(&src),
        format!("{}{dmy}", c.dest[0].conninfo(&d1)),
    );
    let state = TempPath::new("resume-datestyle.state");
    let job = |to2: &str, extra: &[&str]| {
        let mut args = vec!["table", "m", "--from", &from, "--to", &to1, "--to", to2];
        args.extend(["--state", state.arg(), "--keep-going"]);
        args.extend(extra);
        run(&args)
    };
    let to2 = c.dest[1].conninfo(&d2);
    assert_exit(&job(&format!("{to2}{dmy}"), &[]), 4);
    c.dest[1].psql(&d2, "ALTER TABLE m DROP CONSTRAINT m_id_check");
    let out = job(&to2, &["--resume"]);
    assert_ne!(out.status.code(), Some(0));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("where an earlier run copied it") && stderr.contains("DateStyle"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[1], &d2, "m"), 0);
    assert_exit(&job(&format!("{to2}{dmy}"), &["--resume"]), 0);
    assert_eq!(
        count(&c.dest[1], &d2, "(SELECT 1 FROM m WHERE d = '2024-02-01')"),
        1
    );
}

/// A `statement_timeout` set on a database (or role), common on production roles, failed every
/// copy that took longer than it (a COPY is one statement, 57014), and the resume a job then
/// advised failed alike: copyman's sessions run without one, as pg_dump's (a copy is bounded by
/// `--stall-timeout`). Here a destination's COPY takes at least 0.5 s (a trigger sleeps on its
/// first row) under a 200 ms timeout on every database; a one-table copy and a job. One given in
/// the CONN's options is kept.
#[test]
fn a_databases_statement_timeout_does_not_end_a_copy() {
    let c = clusters();
    let timeout = ["statement_timeout = '200ms'"];
    let tables = "CREATE TABLE slow (id int); CREATE TABLE other (id int)";
    let src = database_setting(
        &c.source,
        &timeout,
        &format!("{tables}; INSERT INTO slow SELECT generate_series(1, 1000)"),
    );
    let state = TempPath::new("statement-timeout.state");
    for job in [false, true] {
        let dst = database_setting(
            &c.dest[0],
            &timeout,
            &format!(
                "{tables}; CREATE FUNCTION pause() RETURNS trigger LANGUAGE plpgsql AS
                   $$ BEGIN PERFORM pg_sleep(0.5); RETURN NEW; END $$;
                 CREATE TRIGGER pause BEFORE INSERT ON slow FOR EACH ROW WHEN (NEW.id = 1)
                   EXECUTE FUNCTION pause();"
            ),
        );
        let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
        let mut args = vec!["table", "slow", "--from", &from, "--to", &to];
        if job {
            args.extend(["other", "--state", state.arg()]);
        }
        let out = run(&args);
        assert_exit(&out, 0);
        assert_eq!(count(&c.dest[0], &dst, "slow"), 1000, "job: {job}");
        // One the CONN's options give is the user's, kept as psql keeps it (conn48 F3: replaced
        // by 0, unsaid): the copy fails on it, nothing committed.
        let own = format!("{to} options='-c statement_timeout=200ms'");
        let out = run(&["table", "slow", "--from", &from, "--to", &own, "--truncate"]);
        assert_exit(&out, 1);
        let stderr = text(&out.stderr);
        assert!(stderr.contains("57014"), "{stderr}");
        assert_eq!(count(&c.dest[0], &dst, "slow"), 1000, "job: {job}");
    }
}

/// A destination database with `synchronous_commit = off`: its server answers a COMMIT before
/// it is on disk, and a crash then lost a table a job had recorded done (its resume skipped
/// it). copyman's sessions commit durably there (`local`); a stronger setting stays as it is.
#[test]
fn commits_are_durable_where_synchronous_commit_is_off() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 10);",
    );
    // What the destination's session says while it copies, kept by a trigger.
    let seen = "CREATE TABLE t (id int); CREATE TABLE seen (setting text);
        CREATE FUNCTION note() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
            INSERT INTO seen VALUES (current_setting('synchronous_commit')); RETURN NULL; END $$;
        CREATE TRIGGER note AFTER INSERT ON t FOR EACH STATEMENT EXECUTE FUNCTION note();";
    let off = database_setting(&c.dest[0], &["synchronous_commit = off"], seen);
    let remote = database_setting(&c.dest[1], &["synchronous_commit = remote_apply"], seen);
    let state = TempPath::new("durable.state");
    let out = run(&[
        "table",
        "t",
        "--schema",
        "public",
        "--exclude-table",
        "seen",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&off),
        "--to",
        &c.dest[1].conninfo(&remote),
        "--state",
        state.arg(),
    ]);
    assert_exit(&out, 0);
    let setting = |cluster: &copyman_testkit::Cluster, db: &str| -> Vec<String> {
        cluster
            .connect(db)
            .query("SELECT setting FROM seen", &[])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    };
    assert_eq!(setting(&c.dest[0], &off), ["local"]);
    assert_eq!(setting(&c.dest[1], &remote), ["remote_apply"]);
    assert_eq!(count(&c.dest[0], &off, "t"), 10);
}

/// A `client_encoding` PostgreSQL does not convert back to what it converted from (SJIS's `¥`
/// comes back as `\`, `〜` as `～`), set in the environment between two UTF8 databases: every
/// value passed through it and arrived changed, exit 0, in one table and in a job alike. Refused
/// before anything begins, naming it; unset, the same copy stores the values as they are.
#[test]
fn a_client_encoding_that_changes_characters_on_their_way_is_refused_between_servers() {
    let c = clusters();
    // What copyman knows of these encodings is what this server does.
    let mut client = c.source.connect("postgres");
    for (encoding, character) in [("SJIS", "¥"), ("SHIFT_JIS_2004", "¥"), ("EUC_JP", "¦")] {
        assert!(
            copyman_core::statement::changes_on_the_way_back(encoding).is_some(),
            "{encoding}"
        );
        let back: String = client
            .query_one(
                "SELECT convert_from(convert_to($1, $2), $2)",
                &[&character, &encoding],
            )
            .unwrap()
            .get(0);
        assert_ne!(back, character, "{encoding}");
    }
    for encoding in ["LATIN1", "WIN1252", "GB18030", "BIG5", "EUC_JIS_2004"] {
        assert!(copyman_core::statement::changes_on_the_way_back(encoding).is_none());
    }
    let values = "INSERT INTO t VALUES (1, 'price ¥100'), (2, '〜 wave'), (3, 'C:\\dir')";
    let src = database(
        &c.source,
        &format!("CREATE TABLE t (id int, s text); CREATE TABLE u (id int); {values}"),
    );
    let dst = database(
        &c.dest[0],
        "CREATE TABLE t (id int, s text); CREATE TABLE u (id int)",
    );
    let stored = || -> Vec<String> {
        c.dest[0]
            .connect(&dst)
            .query("SELECT s FROM t ORDER BY id", &[])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    };
    let copy = |tables: &[&str], encoding: Option<&str>| {
        let mut cmd = copyman();
        cmd.arg("table")
            .args(tables)
            .arg("--from")
            .arg(c.source.conninfo(&src))
            .arg("--to")
            .arg(c.dest[0].conninfo(&dst));
        if let Some(encoding) = encoding {
            cmd.env("PGCLIENTENCODING", encoding);
        }
        cmd.output().unwrap()
    };
    for (tables, format) in [(&["t"][..], "one table"), (&["t", "u"][..], "a job")] {
        let out = copy(tables, Some("SJIS"));
        assert_exit(&out, 2);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("client_encoding SJIS does not convert back")
                && stderr.contains("¥ comes back as \\")
                && stderr.contains("source's UTF8 and destination 1's UTF8"),
            "{format}: {stderr}"
        );
        assert!(stored().is_empty(), "{format}: nothing stored");
    }
    // The same encoding said in the COPYs: `table --encoding` names a file's, and says it in
    // every COPY, the servers' too (exit 0, ¥ stored as \); a statement's own ENCODING.
    let file = std::env::temp_dir().join(format!("{src}.sjis"));
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
    let table = [
        "table",
        "t",
        "--encoding",
        "SJIS",
        "--from",
        &from,
        "--to",
        &to,
        "--to",
    ]
    .map(str::to_owned)
    .into_iter()
    .chain([file.display().to_string()])
    .collect::<Vec<_>>();
    let statements = [
        "copy",
        "--from",
        &from,
        "--send",
        "COPY t TO STDOUT (ENCODING 'SJIS')",
        "--to",
        &to,
        "--receive",
        "COPY t FROM STDIN (ENCODING 'sjis')",
    ]
    .map(str::to_owned)
    .to_vec();
    // A --dry-run says what the run would (it said nothing, exit 0).
    let dry = |run: &Vec<String>| [run.clone(), [&run[..], &["--dry-run".to_owned()]].concat()];
    for run in [dry(&table), dry(&statements)].concat() {
        let out = copyman().args(&run).output().unwrap();
        assert_exit(&out, 2);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("ENCODING SJIS does not convert back")
                && stderr.contains("source's UTF8 and destination 1's UTF8")
                && stderr.contains("write the file in a run of its own"),
            "{run:?}: {stderr}"
        );
        assert!(stored().is_empty(), "{run:?}: nothing stored");
        assert!(!file.exists(), "{run:?}: no file written");
    }
    assert_exit(&copy(&["t", "u"], Some("UTF8")), 0);
    assert_eq!(stored(), ["price ¥100", "〜 wave", "C:\\dir"]);
}

/// `client_encoding` SQL_ASCII in a job between servers of other encodings: refused before any
/// table, as a single table's copy is (a job passed the source's bytes as they were).
#[test]
fn client_encoding_sql_ascii_is_refused_in_a_job_too() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE t (id int, s text); CREATE TABLE u (id int); \
         INSERT INTO t VALUES (1, 'café');",
    );
    let dst = database_in(
        &c.dest[0],
        format!("{src}_job_latin1"),
        "LATIN1",
        "CREATE TABLE t (id int, s text); CREATE TABLE u (id int)",
    );
    let out = copyman()
        .args(["table", "t", "u", "--from"])
        .arg(c.source.conninfo(&src))
        .arg("--to")
        .arg(c.dest[0].conninfo(&dst))
        .env("PGCLIENTENCODING", "SQL_ASCII")
        .output()
        .unwrap();
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("client_encoding SQL_ASCII converts nothing")
            && stderr.contains("source UTF8, destination 1 LATIN1"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &dst, "t"), 0);
}

/// Text into `date` and `interval` columns of two destinations whose `DateStyle` order and
/// `IntervalStyle` differ: each read the same source row as another value (`04/03/2024` the 4th
/// of March on one, the 3rd of April on the other; `-1 2:00` as `-1 days -02:00` and `-1 days
/// +02:00`), exit 0 with a generic warning. Refused before any row, naming the column and both
/// settings, for one table and a job; the same order (another output style) copies.
#[test]
fn text_read_as_dates_or_intervals_in_other_styles_on_each_destination_is_refused() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE dd (id int, d text); CREATE TABLE di (id int, i text);
         INSERT INTO dd VALUES (1, '04/03/2024'); INSERT INTO di VALUES (1, '-1 2:00');",
    );
    let typed = "CREATE TABLE dd (id int, d date); CREATE TABLE di (id int, i interval)";
    let dmy = database_setting(&c.dest[0], &["DateStyle = 'ISO, DMY'"], typed);
    let mdy = database_setting(&c.dest[1], &["DateStyle = 'ISO, MDY'"], typed);
    let standard = database_setting(&c.dest[0], &["IntervalStyle = 'sql_standard'"], typed);
    let postgres = database(&c.dest[1], typed);
    let copy = |tables: &[&str], to: [&str; 2], state: &TempPath| {
        let mut args = vec!["table"];
        args.extend(tables);
        let from = c.source.conninfo(&src);
        let to = [c.dest[0].conninfo(to[0]), c.dest[1].conninfo(to[1])];
        args.extend(["--from", &from, "--to", &to[0], "--to", &to[1]]);
        if tables.len() > 1 {
            args.extend(["--state", state.arg()]);
        }
        run(&args)
    };
    let state = TempPath::new("styles.state");
    for tables in [&["dd"][..], &["dd", "di"][..]] {
        let out = copy(tables, [&dmy, &mdy], &state);
        assert_exit(&out, 2);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("column \"d\" holds text on the source but a date")
                && stderr.contains("DateStyle ISO, DMY")
                && stderr.contains("has ISO, MDY")
                && stderr.contains("another date"),
            "{tables:?}: {stderr}"
        );
        assert_eq!(count(&c.dest[0], &dmy, "dd"), 0);
        assert_eq!(count(&c.dest[1], &mdy, "dd"), 0);
    }
    for tables in [&["di"][..], &["dd", "di"][..]] {
        let out = copy(tables, [&standard, &postgres], &state);
        assert_exit(&out, 2);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("column \"i\" holds text on the source but an interval")
                && stderr.contains("IntervalStyle sql_standard")
                && stderr.contains("has postgres"),
            "{tables:?}: {stderr}"
        );
        assert_eq!(count(&c.dest[0], &standard, "di"), 0);
    }
    // The same order in another output style reads alike: one date on both.
    let sql_dmy = format!(
        "{} options='-c DateStyle=SQL,DMY'",
        c.dest[1].conninfo(&mdy)
    );
    let out = run(&[
        "table",
        "dd",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&dmy),
        "--to",
        &sql_dmy,
    ]);
    assert_exit(&out, 0);
    for (cluster, db) in [(&c.dest[0], &dmy), (&c.dest[1], &mdy)] {
        assert_eq!(
            count(cluster, db, "(SELECT 1 FROM dd WHERE d = '2024-03-04')"),
            1,
            "{db}"
        );
    }
}

/// A source database with `standard_conforming_strings` and `array_nulls` off: copyman read the
/// user's `--where` and `--send` with both on, so `'C:\\dir'` was another string than psql on
/// that database reads (the row psql excludes was copied; a move moved nothing, exit 0) and
/// `'{NULL}'` another array. A backslash in a `'…'` string is refused there, naming the option
/// (`E'…'` reads alike everywhere and copies); arrays are read as the database reads them.
#[test]
fn the_users_sql_reads_as_the_source_database_reads_it_or_is_refused() {
    let c = clusters();
    let src = database_setting(
        &c.source,
        &[
            "standard_conforming_strings = off",
            "escape_string_warning = off",
            "array_nulls = off",
        ],
        r"CREATE TABLE t (id int, v text, a text[]);
          INSERT INTO t VALUES (1, E'C:\\dir', '{x}'), (2, 'other', ARRAY['NULL']),
                               (3, 'x', ARRAY[NULL]::text[]);",
    );
    let dst = database(&c.dest[0], "CREATE TABLE t (id int, v text, a text[])");
    let ids = || -> Vec<i32> {
        c.dest[0]
            .connect(&dst)
            .query("SELECT id FROM t ORDER BY id", &[])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    };
    let table = |condition: &str| {
        run(&[
            "table",
            "t",
            "--from",
            &c.source.conninfo(&src),
            "--to",
            &c.dest[0].conninfo(&dst),
            "--truncate",
            "--where",
            condition,
        ])
    };
    let out = table(r"v <> 'C:\\dir'");
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("--where has a backslash in a '…' string")
            && stderr.contains("standard_conforming_strings is off"),
        "{stderr}"
    );
    assert!(ids().is_empty());
    assert_exit(&table(r"v <> E'C:\\dir'"), 0);
    assert_eq!(ids(), [2, 3]);
    // '{NULL}' is the array of the string NULL on that database, as psql reads it there.
    assert_exit(&table("a = '{NULL}'"), 0);
    assert_eq!(ids(), [2]);
    let moved = |condition: &str| {
        run(&[
            "copy",
            "--from",
            &c.source.conninfo(&src),
            "--send",
            &format!("COPY (DELETE FROM t WHERE {condition} RETURNING *) TO STDOUT"),
            "--to",
            &c.dest[0].conninfo(&dst),
            "--receive",
            "COPY t FROM STDIN",
        ])
    };
    let out = moved(r"v = 'C:\\dir'");
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("--send has a backslash"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.source, &src, "t"), 3, "nothing moved");
    assert_exit(&moved(r"v = E'C:\\dir'"), 0);
    assert_eq!(ids(), [1, 2]);
    assert_eq!(count(&c.source, &src, "t"), 2, "the row moved");
}

/// `regclass` values read on the source's own search_path (`app, public`): with `--where`, or a
/// `copy` query, `app.r` was written `r`, and the destination read it as `public.r`, another
/// table, exit 0 and nothing said. Said now, naming the column; a table copied without
/// `--where` is read with an empty search_path and keeps its schema.
#[test]
fn values_naming_objects_read_on_the_sources_search_path_are_said() {
    let c = clusters();
    let schema = "CREATE SCHEMA app; CREATE TABLE app.r (x int); CREATE TABLE public.r (y int);
                  CREATE TABLE public.t (id int, rc regclass);";
    let src = database_setting(
        &c.source,
        &["search_path = app, public"],
        &format!("{schema} INSERT INTO public.t VALUES (1, 'app.r');"),
    );
    let dst = database(&c.dest[0], schema);
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
    let said = |out: &std::process::Output| {
        let stderr = text(&out.stderr);
        stderr.contains("\"rc\" (regclass): read on the source's own search_path")
    };
    let out = run(&[
        "table", "public.t", "--from", &from, "--to", &to, "--where", "true",
    ]);
    assert_exit(&out, 0);
    assert!(said(&out), "{}", text(&out.stderr));
    let out = run(&[
        "copy",
        "--from",
        &from,
        "--send",
        "COPY (SELECT id, rc FROM public.t) TO STDOUT",
        "--to",
        &to,
        "--receive",
        "COPY public.t FROM STDIN",
    ]);
    assert_exit(&out, 0);
    assert!(said(&out), "{}", text(&out.stderr));
    let out = run(&[
        "table",
        "public.t",
        "--from",
        &from,
        "--to",
        &to,
        "--truncate",
    ]);
    assert_exit(&out, 0);
    assert!(!said(&out), "{}", text(&out.stderr));
    let mut client = c.dest[0].connect(&dst);
    client.batch_execute("SET search_path = ''").unwrap();
    let rc: String = client
        .query_one("SELECT rc::text FROM public.t", &[])
        .unwrap()
        .get(0);
    assert_eq!(rc, "app.r");
}

/// A destination `varchar(n)` narrower than the source's column cuts a longer value whose
/// excess is spaces without an error (`'ab   '` arrived as `'ab'`, exit 0: types74 F3).
/// Measured on the source and refused, one table and a job alike; values that fit copy.
#[test]
fn trailing_spaces_a_narrower_varchar_would_cut_are_refused() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE vc (id int, v text, w varchar(10)); \
         INSERT INTO vc VALUES (1, 'ab   ', 'xy'), (2, 'cd', 'zz');",
    );
    let dst = database(
        &c.dest[0],
        "CREATE TABLE vc (id int, v varchar(2), w varchar(2));",
    );
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
    let state = TempPath::new("varchar-cut.state");
    for job in [false, true] {
        let mut args = vec!["table", "vc", "--from", &from, "--to", &to];
        if job {
            args.extend(["--state", state.arg()]);
        }
        let out = run(&args);
        let stderr = text(&out.stderr);
        assert_ne!(out.status.code(), Some(0), "job {job}: {stderr}");
        assert!(
            stderr.contains(
                "which cuts a longer value's trailing spaces without an error: 1 of the \
                 source's values would lose some, e.g. 'ab   '"
            ) && stderr.contains(
                "column \"v\" is text on the source but character varying(2) on destination 1"
            ),
            "job {job}: {stderr}"
        );
        assert_eq!(count(&c.dest[0], &dst, "vc"), 0, "job {job}");
    }
    // Trimmed on the source: copied.
    c.source
        .connect(&src)
        .batch_execute("UPDATE vc SET v = rtrim(v)")
        .unwrap();
    assert_exit(&run(&["table", "vc", "--from", &from, "--to", &to]), 0);
    assert_eq!(count(&c.dest[0], &dst, "vc"), 2);
    // An array's elements, and character(n), alike (recheck75 F2).
    c.source
        .connect(&src)
        .batch_execute(
            "CREATE TABLE va (id int, v text[]); INSERT INTO va VALUES (1, '{ab}'), (2, '{\"ab   \"}'); \
             CREATE TABLE vh (id int, v text); INSERT INTO vh VALUES (1, 'ab'), (2, 'ab   ');",
        )
        .unwrap();
    c.dest[0]
        .connect(&dst)
        .batch_execute(
            "CREATE TABLE va (id int, v varchar(2)[]); CREATE TABLE vh (id int, v char(2));",
        )
        .unwrap();
    for table in ["va", "vh"] {
        let out = run(&["table", table, "--from", &from, "--to", &to]);
        assert_exit(&out, 2);
        assert!(
            text(&out.stderr).contains("which cuts a longer value's trailing spaces"),
            "{table}: {}",
            text(&out.stderr)
        );
        assert_eq!(count(&c.dest[0], &dst, table), 0, "{table}");
    }
}

/// A destination `name` column cuts a text value longer than 63 bytes without an error: a
/// LATIN1 source's 63 `é` (126 bytes in UTF8), or a `text` value of 100 characters, arrived cut
/// with exit 0. Measured on the source in each destination's encoding and refused, one table and
/// a job alike; values that fit copy.
#[test]
fn name_values_a_destination_would_cut_are_refused() {
    let c = clusters();
    let base = database(&c.source, "SELECT 1");
    let schema = "CREATE TABLE n (id int, nm name); CREATE TABLE w (id int, nm text);";
    let src = database_in(
        &c.source,
        format!("{base}_latin1"),
        "LATIN1",
        &format!(
            "{schema} INSERT INTO n VALUES (1, repeat('é', 63)), (2, 'short');
             INSERT INTO w VALUES (1, repeat('x', 100));"
        ),
    );
    let dst = database_in(
        &c.dest[0],
        format!("{base}_utf8"),
        "UTF8",
        "CREATE TABLE n (id int, nm name); CREATE TABLE w (id int, nm name);",
    );
    let copy = |tables: &[&str]| {
        let mut args = vec!["table"];
        args.extend(tables);
        let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
        args.extend(["--from", &from, "--to", &to]);
        run(&args)
    };
    for (tables, said) in [
        (
            &["n"][..],
            "1 of the source's values take more in its encoding (UTF8; the source's is LATIN1)",
        ),
        (
            &["w"][..],
            "1 of the source's values take more in its encoding",
        ),
        (&["n", "w"][..], "would arrive cut"),
    ] {
        let out = copy(tables);
        let stderr = text(&out.stderr);
        assert_ne!(out.status.code(), Some(0), "{tables:?}: {stderr}");
        assert!(
            stderr.contains("column \"nm\" is name on destination 1") && stderr.contains(said),
            "{tables:?}: {stderr}"
        );
        assert_eq!(count(&c.dest[0], &dst, "n"), 0, "{tables:?}");
        assert_eq!(count(&c.dest[0], &dst, "w"), 0, "{tables:?}");
    }
    // copy mode, a --send that names the table: measured the same.
    let out = run(&[
        "copy",
        "--from",
        &c.source.conninfo(&src),
        "--send",
        "COPY n TO STDOUT",
        "--to",
        &c.dest[0].conninfo(&dst),
        "--receive",
        "COPY n FROM STDIN",
    ]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("column \"nm\" is name on destination 1"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &dst, "n"), 0);
    // Only the rows a --where copies are measured.
    let out = run(&[
        "table",
        "n",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&dst),
        "--where",
        "id = 2",
    ]);
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[0], &dst, "n"), 1);
    c.dest[0].connect(&dst).batch_execute("TRUNCATE n").unwrap();
    // Values that fit copy as they are.
    c.source
        .connect(&src)
        .batch_execute("UPDATE n SET nm = repeat('é', 31) WHERE id = 1")
        .unwrap();
    assert_exit(&copy(&["n"]), 0);
    assert_eq!(
        count(
            &c.dest[0],
            &dst,
            "(SELECT 1 FROM n WHERE nm = repeat('é', 31))"
        ),
        1
    );
    // Into LATIN9, which PostgreSQL converts LATIN1 to only through UTF8: measured so (types69
    // F14: 42883, refused), its 63 `é` 63 bytes there too.
    c.source
        .connect(&src)
        .batch_execute("UPDATE n SET nm = repeat('é', 63) WHERE id = 1")
        .unwrap();
    let latin9 = database_in(
        &c.dest[0],
        format!("{base}_latin9"),
        "LATIN9",
        "CREATE TABLE n (id int, nm name);",
    );
    let out = run(&[
        "table",
        "n",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&latin9),
    ]);
    assert_exit(&out, 0);
    assert_eq!(
        count(
            &c.dest[0],
            &latin9,
            "(SELECT 1 FROM n WHERE nm = repeat('é', 63))"
        ),
        1
    );
    // A character LATIN9 has not (LATIN1's ¤): said as such, not as a measure that failed
    // (recheck71 F4).
    c.source
        .connect(&src)
        .batch_execute("INSERT INTO n VALUES (3, '¤')")
        .unwrap();
    let out = run(&[
        "table",
        "n",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&latin9),
        "--truncate",
    ]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("holds a character destination 1")
            && text(&out.stderr).contains("(LATIN9) cannot hold"),
        "{}",
        text(&out.stderr)
    );
}

/// A `--send`'s values for a name column are measured once for every destination that holds one
/// in one encoding, not once per destination (signals45 F1: a 2-s query ran 13 times to three
/// destinations): the query runs at planning, once again in the COPY's snapshot, and for its
/// COPY — counted by the server (`track_functions`) as calls of a function it reads each row
/// through.
#[test]
fn a_sends_values_are_measured_once_for_all_destinations() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE w3 (id int, nm text); INSERT INTO w3 VALUES (1, 'a'), (2, 'b');
         CREATE FUNCTION seen(int) RETURNS int LANGUAGE plpgsql AS 'BEGIN RETURN $1; END';",
    );
    c.source
        .connect(&src)
        .batch_execute(&format!("ALTER DATABASE {src} SET track_functions = 'pl'"))
        .unwrap();
    // Three destinations: two databases of one cluster, one of another.
    let to: Vec<(usize, String)> = [0, 1, 0]
        .into_iter()
        .map(|i| {
            (
                i,
                database(&c.dest[i], "CREATE TABLE w3 (id int, nm name);"),
            )
        })
        .collect();
    let from = c.source.conninfo(&src);
    let mut args = vec![
        "copy".to_owned(),
        "--from".to_owned(),
        from,
        "--send".to_owned(),
        "COPY (SELECT id, nm || repeat('', seen(id)) AS nm FROM w3) TO STDOUT".to_owned(),
        "--receive".to_owned(),
        "COPY w3 FROM STDIN".to_owned(),
    ];
    for (i, db) in &to {
        args.extend(["--to".to_owned(), c.dest[*i].conninfo(db)]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(&args);
    assert_exit(&out, 0);
    for (i, db) in &to {
        assert_eq!(count(&c.dest[*i], db, "w3"), 2);
    }
    // The backends' counts reach the statistics as they end, just after copyman's.
    let calls = || -> i64 {
        let mut conn = c.source.connect(&src);
        let sql = "SELECT coalesce(sum(calls), 0)::int8 FROM pg_stat_user_functions WHERE funcname = 'seen'";
        conn.query_one(sql, &[]).unwrap().get(0)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while calls() < 6 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    // Two rows, three runs of the query.
    assert_eq!(calls(), 6);
}

/// A longer value committed on the source after the plan measured the values (a table written
/// to while a copy starts): the measure is taken again in the snapshot the COPY reads, one table
/// and a `copy` query alike — it arrived cut to 63 bytes, exit 0 (copy44 F1).
#[test]
fn a_value_committed_after_the_measure_is_measured_in_the_copys_snapshot() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE w2 (id int, nm text); INSERT INTO w2 VALUES (1, 'short');",
    );
    let dst = database(&c.dest[0], "CREATE TABLE w2 (id int, nm name);");
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
    let runs: [Vec<&str>; 2] = [
        vec!["table", "w2", "--from", &from, "--to", &to],
        vec![
            "copy",
            "--from",
            &from,
            "--send",
            "COPY (SELECT id, nm FROM w2) TO STDOUT",
            "--to",
            &to,
            "--receive",
            "COPY w2 FROM STDIN",
        ],
    ];
    for (n, args) in runs.iter().enumerate() {
        let paused = Paused::start(args, "planned");
        let long = format!("INSERT INTO w2 VALUES ({}, repeat('L', 80))", n + 2);
        c.source.connect(&src).batch_execute(&long).unwrap();
        let out = paused.resume();
        let stderr = text(&out.stderr);
        assert_exit(&out, 2);
        assert!(
            stderr.contains("column \"nm\" is name on destination 1")
                && stderr.contains("would arrive cut"),
            "{args:?}: {stderr}"
        );
        assert_eq!(count(&c.dest[0], &dst, "w2"), 0, "{args:?}");
        c.source
            .connect(&src)
            .batch_execute("DELETE FROM w2 WHERE id > 1")
            .unwrap();
    }
    // A job: measured again in its snapshot (paused once the first table is planned).
    for db in [&src, &dst] {
        let cluster = if db == &src { &c.source } else { &c.dest[0] };
        cluster
            .connect(db)
            .batch_execute("CREATE TABLE z2 (id int)")
            .unwrap();
    }
    let job = ["table", "w2", "z2", "--from", &from, "--to", &to];
    let paused = Paused::start(&job, "planning:1");
    c.source
        .connect(&src)
        .batch_execute("INSERT INTO w2 VALUES (9, repeat('L', 80))")
        .unwrap();
    let out = paused.resume();
    let stderr = text(&out.stderr);
    assert_exit(&out, 2);
    assert!(stderr.contains("would arrive cut"), "{stderr}");
    assert_eq!(count(&c.dest[0], &dst, "w2"), 0);
    c.source
        .connect(&src)
        .batch_execute("DELETE FROM w2 WHERE id > 1")
        .unwrap();
    // Values that fit copy, in one snapshot, the query's read-only measure rolled back.
    assert_exit(&run(&runs[1]), 0);
    assert_eq!(count(&c.dest[0], &dst, "w2"), 1);
}

/// The other places a server cuts text without an error are measured as a `name` column is
/// (types41 F4, F8, F9): a `name` field of a composite (and of an array's composites), a
/// `"char"` column (it keeps the first byte: `hello` arrived `h`, `é` half a character), and a
/// copy mode `--send` query's values (it said only "may be cut", exit 0). Values that fit copy;
/// a file into a `"char"` column is said, as into a `name` one.
#[test]
fn values_a_name_field_a_char_or_a_query_would_cut_are_refused() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TYPE nt AS (a text, b int);
         CREATE TABLE ntc (id int, c nt); CREATE TABLE nta (id int, ca nt[]);
         CREATE TABLE qc (id int, c text); CREATE TABLE nm (id int, n text);
         INSERT INTO ntc VALUES (1, ROW(repeat('z', 70), 1));
         INSERT INTO nta VALUES (1, ARRAY[ROW('w', 1), ROW(repeat('w', 80), 2)]::nt[]);
         INSERT INTO qc VALUES (1, 'hello'), (2, 'x');
         INSERT INTO nm VALUES (1, repeat('x', 70)), (2, 'short');",
    );
    let dst = database(
        &c.dest[0],
        "CREATE TYPE nt AS (a name, b int);
         CREATE TABLE ntc (id int, c nt); CREATE TABLE nta (id int, ca nt[]);
         CREATE TABLE qc (id int, c \"char\"); CREATE TABLE nm (id int, n name);",
    );
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
    for (table, said) in [
        ("ntc", "column \"c\" is public.nt on destination 1"),
        ("ntc", "whose field \"a\" is name, which holds 63 bytes"),
        ("nta", "whose element's field \"a\" is name"),
        ("qc", "column \"c\" is \"char\" on destination 1"),
        (
            "qc",
            "which holds one byte and keeps only the first of a longer text value",
        ),
        ("qc", "1 of the source's values take more"),
    ] {
        let out = run(&["table", table, "--from", &from, "--to", &to]);
        assert_exit(&out, 2);
        assert!(
            text(&out.stderr).contains(said),
            "{table}: {}",
            text(&out.stderr)
        );
        assert_eq!(count(&c.dest[0], &dst, table), 0, "{table}");
    }
    let copy = |send: &str| {
        run(&[
            "copy",
            "--from",
            &from,
            "--send",
            send,
            "--to",
            &to,
            "--receive",
            "COPY nm FROM STDIN",
        ])
    };
    let out = copy("COPY (SELECT * FROM nm) TO STDOUT");
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("column \"n\" is name on destination 1"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &dst, "nm"), 0);
    // The query was measured in a transaction that ended: the source's session is not left in
    // one, and a query that fits copies.
    let out = copy("COPY (SELECT id, left(n, 63) FROM nm) TO STDOUT");
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[0], &dst, "nm"), 2);
    // Values that fit a "char" copy as they are.
    c.source
        .connect(&src)
        .batch_execute("UPDATE qc SET c = 'h' WHERE id = 1")
        .unwrap();
    assert_exit(&run(&["table", "qc", "--from", &from, "--to", &to]), 0);
    assert_eq!(
        c.dest[0]
            .psql(&dst, "SELECT string_agg(c::text, ',' ORDER BY id) FROM qc")
            .trim(),
        "h,x"
    );
    // A file's values are not measured: said.
    let file = TempPath::new("chars.txt");
    std::fs::write(&file.0, "3\thello\n").unwrap();
    let out = run(&["table", "qc", "--from", file.arg(), "--to", &to]);
    assert_exit(&out, 0);
    assert!(
        text(&out.stderr).contains("read \"c\" as type \"char\", which keeps only the first byte"),
        "{}",
        text(&out.stderr)
    );
}

/// A SQL_ASCII destination stores the bytes it gets: a LATIN1 source's text arrived there as
/// UTF-8 bytes (a pg_dump would hold LATIN1's), said nowhere (types41 F2). Said now, with the
/// way to keep the source's bytes, which then holds (and is not said again).
#[test]
fn a_sql_ascii_destination_getting_other_bytes_than_the_sources_is_said() {
    let c = clusters();
    let base = database(&c.source, "SELECT 1");
    let table = "CREATE TABLE en (id int, s text);";
    let src = database_in(
        &c.source,
        format!("{base}_l1"),
        "LATIN1",
        &format!("{table} INSERT INTO en VALUES (1, 'café');"),
    );
    let dst = database_in(&c.dest[0], format!("{base}_sa"), "SQL_ASCII", table);
    let hex = || {
        c.dest[0]
            .psql(&dst, "SELECT encode(s::bytea, 'hex') FROM en")
            .trim()
            .to_owned()
    };
    let copy = |extra: &str| {
        let from = format!("{} {extra}", c.source.conninfo(&src));
        let to = format!("{} {extra}", c.dest[0].conninfo(&dst));
        run(&["table", "en", "--from", &from, "--to", &to, "--truncate"])
    };
    let out = copy("");
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("destination 1 is SQL_ASCII, which stores the bytes it gets as they come")
            && stderr.contains("give client_encoding=LATIN1 in every CONN"),
        "{stderr}"
    );
    assert_eq!(hex(), "636166c3a9", "UTF-8 bytes, as said");
    let out = copy("client_encoding=LATIN1");
    assert_exit(&out, 0);
    assert!(
        !text(&out.stderr).contains("SQL_ASCII"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(hex(), "636166e9", "the source's LATIN1 bytes");
    // Verified as the characters both sides hold (the SQL_ASCII side's bytes hashed raw were
    // "different" for ever, exit 4: enc45 F5), and so from that SQL_ASCII database on into a
    // UTF8 one.
    let latin1 = |conninfo: String| format!("{conninfo} client_encoding=LATIN1");
    let utf8 = database(&c.dest[1], table);
    for (from, to, emptied) in [
        (c.source.conninfo(&src), c.dest[0].conninfo(&dst), true),
        (c.dest[0].conninfo(&dst), c.dest[1].conninfo(&utf8), false),
    ] {
        let (from, to) = (latin1(from), latin1(to));
        let mut args = vec!["table", "en", "--from", &from, "--to", &to, "--verify"];
        if emptied {
            args.push("--truncate");
        }
        let out = run(&args);
        assert_exit(&out, 0);
        assert!(
            text(&out.stderr).contains("1 verified"),
            "{}",
            text(&out.stderr)
        );
    }
    let stored = c.dest[1].psql(&utf8, "SELECT encode(convert_to(s, 'UTF8'), 'hex') FROM en");
    assert_eq!(stored.trim(), "636166c3a9", "café, in UTF-8");
}

/// `--encoding LATIN1` (the file's encoding) with a `--where` or names beyond ASCII: under a
/// LATIN1 client_encoding the statement's UTF-8 bytes were read as LATIN1 (`'é'` as `'Ã©'`), so
/// `nm = 'é'` wrote no row and `nm <> 'é'` every row, exit 0, and `--columns '"é"'` was not
/// found. `table` says the encoding in its COPYs (ENCODING) and keeps its sessions in UTF8: the
/// rows the condition selects, in LATIN1, and back into a column named `é`. `copy`, whose
/// statements are the user's, sets client_encoding and refuses such a statement, nothing
/// written.
#[test]
fn sql_beyond_ascii_under_another_client_encoding_is_refused() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE e1 (id int, nm text); INSERT INTO e1 VALUES (1, 'é'), (2, 'x');",
    );
    let from = c.source.conninfo(&src);
    let copy = |condition: &str, extra: &[&str]| {
        let mut args = vec![
            "table", "e1", "--from", &from, "--to", "-", "--where", condition,
        ];
        args.extend(extra);
        run(&args)
    };
    for (condition, written) in [("nm = 'é'", &b"1\t\xe9\n"[..]), ("nm <> 'é'", b"2\tx\n")] {
        let out = copy(condition, &["--encoding", "LATIN1"]);
        assert_exit(&out, 0);
        assert_eq!(out.stdout, written, "{condition}");
    }
    let out = copy("nm = 'é'", &[]);
    assert_exit(&out, 0);
    assert_eq!(text(&out.stdout), "1\té\n");
    // A LATIN1 file into a column named beyond ASCII, by name.
    let dst = database(&c.dest[0], "CREATE TABLE e2 (\"é\" text, id int);");
    let file = TempPath::new("latin1-names.txt");
    std::fs::write(&file.0, b"1\tcaf\xe9\n").unwrap();
    let to = c.dest[0].conninfo(&dst);
    let args = ["--from", file.arg(), "--to", &to, "--encoding", "LATIN1"];
    let mut table = vec!["table", "e2", "--columns", "id,\"é\""];
    table.extend(args);
    assert_exit(&run(&table), 0);
    assert_eq!(
        c.dest[0].psql(&dst, "SELECT \"é\" || id FROM e2").trim(),
        "café1"
    );
    // copy mode's statement is read in the session's client_encoding: refused.
    let out = run(&[
        "copy",
        "--from",
        &from,
        "--send",
        "COPY (SELECT * FROM e1 WHERE nm = 'é') TO STDOUT",
        "--to",
        "-",
        "--encoding",
        "LATIN1",
    ]);
    // A usage error, said as the --send's, not as a failure on the source (docs43 F9).
    assert_exit(&out, 2);
    assert_eq!(out.stdout, unsent(), "nothing written but the mark");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("--send: the statement holds characters beyond ASCII")
            && stderr.contains("client_encoding is LATIN1")
            && !stderr.contains("failed on the source"),
        "{stderr}"
    );
    // A table's name alike, under a LATIN1 session (it was exit 1, said as the source's
    // failure: recheck43b F6).
    c.source
        .connect(&src)
        .batch_execute("CREATE TABLE \"tÿ\" (id int);")
        .unwrap();
    let out = copyman()
        .env("PGCLIENTENCODING", "LATIN1")
        .args(["table", "tÿ", "--from", &from, "--to", "-"])
        .output()
        .unwrap();
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("TABLE: the statement holds characters beyond ASCII"),
        "{}",
        text(&out.stderr)
    );
}

/// Text with a zone written as an abbreviation read into `timestamptz` on destinations whose
/// `timezone_abbreviations` differ (`IST`: Israel's +02 by default, India's +05:30 under the
/// India set): each stored another instant for one row, exit 0. Refused as TimeZone is, one
/// table and a job alike; the same set on both copies.
#[test]
fn text_read_as_times_in_other_zone_abbreviations_on_each_destination_is_refused() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE ta (id int, t text); INSERT INTO ta VALUES (1, '2024-01-01 12:00 IST');
         CREATE TABLE other (id int);",
    );
    let typed = "CREATE TABLE ta (id int, t timestamptz); CREATE TABLE other (id int);";
    let israel = database(&c.dest[0], typed);
    let india = database_setting(&c.dest[1], &["timezone_abbreviations = 'India'"], typed);
    let also_india = database_setting(&c.dest[0], &["timezone_abbreviations = 'India'"], typed);
    let state = TempPath::new("abbreviations.state");
    let copy = |tables: &[&str], first: &str| {
        let mut args = vec!["table"];
        args.extend(tables);
        let from = c.source.conninfo(&src);
        let to = [c.dest[0].conninfo(first), c.dest[1].conninfo(&india)];
        args.extend(["--from", &from, "--to", &to[0], "--to", &to[1]]);
        if tables.len() > 1 {
            args.extend(["--state", state.arg()]);
        }
        run(&args)
    };
    for tables in [&["ta"][..], &["ta", "other"][..]] {
        let out = copy(tables, &israel);
        assert_exit(&out, 2);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("column \"t\" holds no time zone on the source")
                && stderr.contains("timezone_abbreviations Default")
                && stderr.contains("has India"),
            "{tables:?}: {stderr}"
        );
        assert_eq!(count(&c.dest[0], &israel, "ta"), 0);
        assert_eq!(count(&c.dest[1], &india, "ta"), 0);
    }
    // copy mode's --receive too.
    let out = run(&[
        "copy",
        "--from",
        &c.source.conninfo(&src),
        "--send",
        "COPY ta TO STDOUT",
        "--to",
        &c.dest[0].conninfo(&israel),
        "--to",
        &c.dest[1].conninfo(&india),
        "--receive",
        "COPY ta FROM STDIN",
    ]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("timezone_abbreviations Default"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &israel, "ta"), 0);
    assert_exit(&copy(&["ta"], &also_india), 0);
    for (cluster, db) in [(&c.dest[0], &also_india), (&c.dest[1], &india)] {
        assert_eq!(
            count(
                cluster,
                db,
                "(SELECT 1 FROM ta WHERE t = '2024-01-01 06:30+00')"
            ),
            1,
            "{db}"
        );
    }
}

/// Between two LATIN1 databases (whose data would pass in LATIN1), a table with a column named
/// beyond ASCII: copyman's UTF-8 statements cannot name it in a LATIN1 session, so its data goes
/// through UTF8 (a lossless round trip for LATIN1) and it copies; it failed, its column not found.
#[test]
fn names_beyond_ascii_between_databases_of_another_encoding_copy() {
    let c = clusters();
    let base = database(&c.source, "SELECT 1");
    let schema = "CREATE TABLE t (id int, \"é\" text);";
    let src = database_in(
        &c.source,
        format!("{base}_l1"),
        "LATIN1",
        &format!("{schema} INSERT INTO t VALUES (1, 'ü');"),
    );
    let dst = database_in(&c.dest[0], format!("{base}_l1_to"), "LATIN1", schema);
    let out = run(&[
        "table",
        "t",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&dst),
    ]);
    assert_exit(&out, 0);
    assert_eq!(digest(&c.dest[0], &dst, "t"), digest(&c.source, &src, "t"));
}

/// A header in `--encoding LATIN1` was read as UTF-8: its labels beyond ASCII named no column,
/// so a header in another order than the table's was skipped and its values loaded into each
/// other's columns (exit 0), and in `copy` mode (a LATIN1 session) the table's own names came
/// back garbled and a right header was refused. Labels are read in the file's encoding — LATIN1
/// byte for byte —, and where that cannot be done (LATIN2) a header of as many labels as
/// columns that names none is refused rather than loaded by position.
#[test]
fn headers_are_read_in_the_files_encoding() {
    let c = clusters();
    let dst = database(
        &c.dest[0],
        "CREATE TABLE h (\"é\" text, \"ö\" text); CREATE TABLE s (\"š\" text, \"ž\" text);",
    );
    let to = c.dest[0].conninfo(&dst);
    let latin1 = |name: &str, header: &[u8]| {
        let file = TempPath::new(name);
        let mut data = header.to_vec();
        data.extend_from_slice(b"E-val\tO-val\n");
        std::fs::write(&file.0, data).unwrap();
        file
    };
    let table = |file: &TempPath, encoding: &str| {
        run(&[
            "table",
            "h",
            "--from",
            file.arg(),
            "--to",
            &to,
            "--header",
            "--format",
            "text",
            "--encoding",
            encoding,
        ])
    };
    let swapped = latin1("h-swapped.txt", b"\xf6\t\xe9\n");
    let out = table(&swapped, "LATIN1");
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("header field 1 is \"ö\""),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &dst, "h"), 0);
    let right = latin1("h-right.txt", b"\xe9\t\xf6\n");
    assert_exit(&table(&right, "LATIN1"), 0);
    assert_eq!(
        c.dest[0]
            .psql(&dst, "SELECT \"é\" || '/' || \"ö\" FROM h")
            .trim(),
        "E-val/O-val"
    );
    // copy mode: its session reads in LATIN1, the table's names too.
    let csv = TempPath::new("h-right.csv");
    std::fs::write(&csv.0, b"\xe9,\xf6\nE2,O2\n").unwrap();
    let out = run(&[
        "copy",
        "--from",
        csv.arg(),
        "--to",
        &to,
        "--receive",
        "COPY h FROM STDIN (FORMAT csv, HEADER)",
        "--encoding",
        "LATIN1",
    ]);
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[0], &dst, "h"), 2);
    // LATIN2 labels copyman cannot read, as many as the columns: which they name cannot be
    // told, so the header is refused, not loaded by position.
    let latin2 = TempPath::new("s-swapped.csv");
    std::fs::write(&latin2.0, b"\xbe,\xb9\nZ,S\n").unwrap();
    let out = run(&[
        "table",
        "s",
        "--from",
        latin2.arg(),
        "--to",
        &to,
        "--header",
        "--encoding",
        "LATIN2",
    ]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("cannot read in its encoding"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &dst, "s"), 0);
}

/// Binary `xml` in a session whose `client_encoding` is not UTF8 (between databases that all
/// hold LATIN1 the data passes in it) carries an XML declaration of that encoding, which the
/// destination stored in every value (`<?xml version="1.0" encoding="LATIN1"?><a>plain</a>`,
/// exit 0). Text is chosen for such a table; binary, given or in `copy`'s statements, refused.
#[test]
fn binary_xml_is_never_sent_in_another_client_encoding() {
    let c = clusters();
    let base = database(&c.source, "SELECT 1");
    let latin1 = |cluster: &copyman_testkit::Cluster, name: String, fill: &str| {
        database_in(
            cluster,
            name,
            "LATIN1",
            &format!("CREATE TABLE x (id int, v xml, w xml[]); {fill}"),
        )
    };
    let src = latin1(
        &c.source,
        format!("{base}_xml"),
        "INSERT INTO x VALUES (1, '<a>plain</a>', NULL), (2, 'some content', NULL), (3, '', NULL),
                              (4, NULL, ARRAY['<b/>'::xml]);",
    );
    let dst = latin1(&c.dest[0], format!("{base}_xml_to"), "");
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
    let stored = |cluster: &copyman_testkit::Cluster, db: &str| -> Vec<String> {
        let rows = "SELECT coalesce(v::text, '-') || ' ' || coalesce(w::text, '-') FROM x \
                    ORDER BY id";
        let rows = cluster.connect(db).query(rows, &[]).unwrap();
        rows.iter().map(|r| r.get(0)).collect()
    };
    let out = run(&["table", "x", "--from", &from, "--to", &to, "--dry-run"]);
    assert_exit(&out, 0);
    let said = text(&out.stderr) + &text(&out.stdout);
    assert!(
        said.contains(
            "format: text (column \"v\" holds xml, whose binary form carries an XML declaration \
             of the sessions' client_encoding LATIN1"
        ),
        "{said}"
    );
    let out = run(&["table", "x", "--from", &from, "--to", &to]);
    assert_exit(&out, 0);
    assert_eq!(stored(&c.dest[0], &dst), stored(&c.source, &src));
    let out = run(&[
        "table", "x", "--from", &from, "--to", &to, "--format", "binary",
    ]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("--format binary: column \"v\" holds xml"),
        "{}",
        text(&out.stderr)
    );
    let out = run(&[
        "copy",
        "--from",
        &from,
        "--send",
        "COPY x (id, w) TO STDOUT (FORMAT binary)",
        "--to",
        &to,
        "--receive",
        "COPY x (id, w) FROM STDIN (FORMAT binary)",
    ]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("the --send's FORMAT binary: column \"w\" holds xml"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &dst, "x"), 4);
    // A job, whose tables' data passes in LATIN1 too.
    let state = TempPath::new("xml-job.state");
    let job = ["table", "x", "--from", &from, "--to", &to, "--truncate"];
    let out = run(&[&job[..], &["--state", state.arg()]].concat());
    assert_exit(&out, 0);
    assert_eq!(stored(&c.dest[0], &dst), stored(&c.source, &src));
    let state = TempPath::new("xml-job-binary.state");
    let out = run(&[&job[..], &["--state", state.arg(), "--format", "binary"]].concat());
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("--format binary: column \"v\" holds xml"),
        "{}",
        text(&out.stderr)
    );
}

/// A UTF8 source into an EUC_JP database: PostgreSQL stores `¦` there as a code it reads back
/// as `￤` (types50 F1: exit 0, not a word). Said, naming the destination; a destination that
/// holds the source's encoding is not.
#[test]
fn an_euc_jp_destination_that_changes_a_character_is_said() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE e (id int, t text); INSERT INTO e VALUES (1, 'broken bar ¦'), (2, 'x')",
    );
    let base = database(&c.source, "SELECT 1");
    let euc = database_in(
        &c.dest[0],
        format!("{base}_to_euc"),
        "EUC_JP",
        "CREATE TABLE e (id int, t text)",
    );
    let utf8 = database(&c.dest[1], "CREATE TABLE e (id int, t text)");
    let out = run(&[
        "table",
        "e",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&euc),
        "--to",
        &c.dest[1].conninfo(&utf8),
    ]);
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    assert!(
        stderr
            .contains("destination 1's database is EUC_JP, which PostgreSQL does not convert back")
            && stderr.contains("¦ comes back as ￤")
            && !stderr.contains("destination 2's database"),
        "{stderr}"
    );
    // From an EUC_JP source its characters come back as they were: nothing said (recheck50b F2).
    let euc_src = database_in(
        &c.source,
        format!("{base}_from_euc"),
        "EUC_JP",
        "CREATE TABLE e (id int, t text); INSERT INTO e VALUES (1, 'x')",
    );
    let out = run(&[
        "table",
        "e",
        "--from",
        &c.source.conninfo(&euc_src),
        "--to",
        &c.dest[0].conninfo(&euc),
        "--to",
        &c.dest[1].conninfo(&utf8),
        "--truncate",
    ]);
    assert_exit(&out, 0);
    assert!(
        !text(&out.stderr).contains("does not convert back"),
        "{}",
        text(&out.stderr)
    );
}

/// A job between databases that all hold EUC_JP passes the data in it, as one table does:
/// through UTF8 the NEC duplicates (0xADF0 `≒`) and IBM extensions (0x8FA2F1 `№`) came back
/// as their canonical codes — other bytes, exit 0, and `--verify` (UTF-8 checksums) agreed.
#[test]
fn a_job_between_euc_jp_databases_keeps_their_bytes() {
    let c = clusters();
    let base = database(&c.source, "SELECT 1");
    let euc = |cluster: &copyman_testkit::Cluster, name: String, fill: &str| {
        database_in(
            cluster,
            name,
            "EUC_JP",
            &format!("CREATE TABLE nec (id int, v text); CREATE TABLE u (id int); {fill}"),
        )
    };
    let src = euc(
        &c.source,
        format!("{base}_euc"),
        r"INSERT INTO nec VALUES (1, convert_from('\xadf0adf1', 'EUC_JP')),
                                (2, convert_from('\x8fa2f1', 'EUC_JP')), (3, 'plain');
          INSERT INTO u VALUES (1);",
    );
    let dst = euc(&c.dest[0], format!("{base}_euc_to"), "");
    let bytes = |cluster: &copyman_testkit::Cluster, db: &str| -> Vec<String> {
        let rows = "SELECT encode(convert_to(v, 'EUC_JP'), 'hex') FROM nec ORDER BY id";
        let rows = cluster.connect(db).query(rows, &[]).unwrap();
        rows.iter().map(|r| r.get(0)).collect()
    };
    assert_eq!(bytes(&c.source, &src), ["adf0adf1", "8fa2f1", "706c61696e"]);
    let state = TempPath::new("euc-job.state");
    let out = run(&[
        "table",
        "nec",
        "u",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&dst),
        "--verify",
        "--state",
        state.arg(),
    ]);
    assert_exit(&out, 0);
    assert_eq!(bytes(&c.dest[0], &dst), bytes(&c.source, &src));
    // A table named beyond ASCII passes in UTF8 (copyman's statements are UTF-8): its bytes
    // change, and that is said (enc45 F2: not a word, exit 0).
    let create = r#"CREATE TABLE "表" (v text)"#;
    let fill = format!(r#"{create}; INSERT INTO "表" SELECT v FROM nec"#);
    c.source.connect(&src).batch_execute(&fill).unwrap();
    c.dest[0].connect(&dst).batch_execute(create).unwrap();
    let state = TempPath::new("euc-job-named.state");
    let out = run(&[
        "table",
        "表",
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
        stderr.contains(
            "\"public\".\"表\": a name in its statements is beyond ASCII, so its data passes in \
             UTF8, not in the EUC_JP every server holds: EUC_JP's NEC and IBM duplicates"
        ),
        "{stderr}"
    );
}

/// `--verify` between databases that all hold one encoding compares their bytes: a byte WIN1252
/// leaves undefined, which the job now copies as it is, has no UTF-8 form, and its checksum
/// failed for ever (22P05, "--resume compares it again" at every resume).
#[test]
fn a_job_verifies_bytes_without_a_utf8_form_between_databases_of_their_encoding() {
    let c = clusters();
    let base = database(&c.source, "SELECT 1");
    let win = |cluster: &copyman_testkit::Cluster, name: String, fill: &str| {
        database_in(
            cluster,
            name,
            "WIN1252",
            &format!("CREATE TABLE w (id int PRIMARY KEY, t text); {fill}"),
        )
    };
    let src = win(
        &c.source,
        format!("{base}_win"),
        r"INSERT INTO w VALUES (1, E'a\x81b'), (2, 'plain');",
    );
    let dst = win(&c.dest[0], format!("{base}_win_to"), "");
    let bytes = |cluster: &copyman_testkit::Cluster, db: &str| -> Vec<String> {
        let rows = "SELECT encode(convert_to(t, 'WIN1252'), 'hex') FROM w ORDER BY id";
        let rows = cluster.connect(db).query(rows, &[]).unwrap();
        rows.iter().map(|r| r.get(0)).collect()
    };
    let state = TempPath::new("win-verify.state");
    let out = run(&[
        "table",
        "--table",
        "w",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&dst),
        "--verify",
        "--state",
        state.arg(),
    ]);
    assert_exit(&out, 0);
    assert_eq!(bytes(&c.dest[0], &dst), ["618162", "706c61696e"]);
}

/// An EUC_JP source into an EUC_JP and a UTF8 destination passes the data in EUC_JP, which the
/// UTF8 one converts as the source would have: through UTF8 the EUC_JP destination got other
/// codes for EUC_JP's NEC and IBM duplicates (exit 0). One table and a job alike (the job's
/// still went through UTF8, `--verify` agreeing), whose `--verify` compares the characters.
#[test]
fn a_source_encoding_passes_to_its_own_and_to_utf8_destinations() {
    let c = clusters();
    let base = database(&c.source, "SELECT 1");
    let table = "CREATE TABLE nec (id int, v text);";
    let src = database_in(
        &c.source,
        format!("{base}_mixed"),
        "EUC_JP",
        &format!(
            r"{table} INSERT INTO nec VALUES (1, convert_from('\xadf0adf1', 'EUC_JP')),
                                             (2, convert_from('\x8fa2f1', 'EUC_JP'));"
        ),
    );
    let euc = database_in(&c.dest[0], format!("{base}_mixed_euc"), "EUC_JP", table);
    let utf8 = database(&c.dest[1], table);
    let state = TempPath::new("mixed-encodings.state");
    let bytes = |cluster: &copyman_testkit::Cluster, db: &str, encoding: &str| -> Vec<String> {
        let rows =
            format!("SELECT encode(convert_to(v, '{encoding}'), 'hex') FROM nec ORDER BY id");
        let rows = cluster.connect(db).query(&rows, &[]).unwrap();
        rows.iter().map(|r| r.get(0)).collect()
    };
    for job in [&[][..], &["--state", state.arg(), "--verify"][..]] {
        let (from, to_euc, to_utf8) = (
            c.source.conninfo(&src),
            c.dest[0].conninfo(&euc),
            c.dest[1].conninfo(&utf8),
        );
        let mut args = vec![
            "table", "nec", "--from", &from, "--to", &to_euc, "--to", &to_utf8,
        ];
        args.extend(job);
        let out = run(&args);
        assert_exit(&out, 0);
        assert!(
            !text(&out.stderr).contains("leaves the source's"),
            "{job:?}"
        );
        assert_eq!(
            bytes(&c.dest[0], &euc, "EUC_JP"),
            ["adf0adf1", "8fa2f1"],
            "{job:?}"
        );
        assert_eq!(
            bytes(&c.dest[1], &utf8, "UTF8"),
            bytes(&c.source, &src, "UTF8")
        );
        c.dest[0]
            .connect(&euc)
            .batch_execute("TRUNCATE nec")
            .unwrap();
        c.dest[1]
            .connect(&utf8)
            .batch_execute("TRUNCATE nec")
            .unwrap();
    }
    // Where the data must leave the source in UTF8 — a file among the destinations (UTF8 by
    // default), a client_encoding UTF8 asked for — the EUC_JP destination gets the canonical
    // codes: said, naming it (it was silent, `--verify` agreeing).
    let file = TempPath::new("mixed-encodings.txt");
    let (from, to_euc) = (c.source.conninfo(&src), c.dest[0].conninfo(&euc));
    // (A state file of its own: the first job's records one destination more.)
    let one = TempPath::new("mixed-encodings-one.state");
    let runs: [(&[&str], Option<&str>); 2] = [
        (&["--to", file.arg()], None),
        (
            &["--state", one.arg(), "--verify", "--truncate"],
            Some("UTF8"),
        ),
    ];
    for (extra, client_encoding) in runs {
        // A one-table --dry-run says it as the run does (only a job's said it).
        let out = copyman()
            .args([
                "table",
                "nec",
                "--from",
                &from,
                "--to",
                &to_euc,
                "--dry-run",
            ])
            .args(extra)
            .envs(client_encoding.map(|e| ("PGCLIENTENCODING", e)))
            .output()
            .unwrap();
        assert_exit(&out, 0);
        assert!(
            text(&out.stderr).contains("and destination 1 holds EUC_JP too"),
            "{extra:?}: {}",
            text(&out.stderr)
        );
        let mut cmd = copyman();
        cmd.args(["table", "nec", "--from", &from, "--to", &to_euc])
            .args(extra);
        if let Some(encoding) = client_encoding {
            cmd.env("PGCLIENTENCODING", encoding);
        }
        let out = cmd.output().unwrap();
        assert_exit(&out, 0);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(
                "the data leaves the source's EUC_JP in UTF8 (another destination's encoding, \
                 a file, a client_encoding asked for, or a statement with text beyond ASCII: a \
                 --where, a --send, a name), and destination 1 holds EUC_JP too"
            ) && stderr.contains("NEC and IBM duplicates"),
            "{extra:?}: {stderr}"
        );
        // What the warning says happened.
        assert_ne!(bytes(&c.dest[0], &euc, "EUC_JP"), ["adf0adf1", "8fa2f1"]);
        c.dest[0]
            .connect(&euc)
            .batch_execute("TRUNCATE nec")
            .unwrap();
    }
}

/// A database whose `lc_monetary` writes amounts with other separators (`es_AR`: `$ 1.234,56`)
/// than copyman's sessions (the C locale's `$1,234.56`):
/// - a source's free text into its money column was read in the C locale (`'12,34'` stored as
///   1234.00 where psql stores 12.34, exit 0; the same text from a file was refused): refused,
///   naming both forms, in `table` mode, `copy` mode and a job; numbers copy (their text reads
///   alike), and a CONN that says the locale reads as psql would;
/// - its money into a text column was written in the C locale's form (`$12.34` where the source
///   and psql write `$ 12,34`, silently): warned, naming the way to write its own form, which
///   works;
/// - a `--where` or `--send` string read as money (`m > '12,34'`) meant 1234.00 to copyman's
///   session and 12.34 to psql there (other rows, exit 0): refused; a number cast to money
///   copies the rows psql selects.
#[test]
fn money_text_of_a_database_of_other_separators_is_read_as_psql_reads_it_or_refused() {
    let Some((_locales, argentina)) = with_locales(
        "money_text_of_a_database_of_other_separators_is_read_as_psql_reads_it_or_refused",
        &["es_AR"],
    ) else {
        return;
    };
    let c = clusters();
    let es = ["lc_monetary = 'es_AR.UTF-8'"];
    let src = database(
        &c.source,
        "CREATE TABLE mt (id int, m text); INSERT INTO mt VALUES (1, '12,34'), (2, '12.34'); \
         CREATE TABLE num (id int, m numeric); INSERT INTO num VALUES (1, 12.34);",
    );
    let money = "CREATE TABLE mt (id int, m money); CREATE TABLE num (id int, m money);";
    let dst = database_setting(&argentina, &es, money);
    let (from, to) = (c.source.conninfo(&src), argentina.conninfo(&dst));
    let said = [
        "lc_monetary 'C'",
        "'es_AR.UTF-8' writes it as",
        "lc_monetary=es_AR.UTF-8",
    ];
    let refused = |args: &[&str], words: &[&str]| {
        let out = run(args);
        assert_ne!(out.status.code(), Some(0), "{args:?}");
        let stderr = text(&out.stderr);
        for w in words {
            assert!(stderr.contains(w), "{w:?} in {stderr}");
        }
    };
    refused(&["table", "mt", "--from", &from, "--to", &to], &said);
    refused(
        &[
            "copy",
            "--from",
            &from,
            "--send",
            "COPY mt TO STDOUT",
            "--to",
            &to,
            "--receive",
            "COPY mt FROM STDIN",
        ],
        &said,
    );
    refused(&["table", "mt", "num", "--from", &from, "--to", &to], &said);
    assert_eq!(count(&argentina, &dst, "mt"), 0);
    // A number's text reads alike.
    assert_exit(&run(&["table", "num", "--from", &from, "--to", &to]), 0);
    let amounts = |db: &str, table: &str| {
        argentina.psql(
            db,
            &format!("SELECT string_agg(m::numeric::text, ' ' ORDER BY id) FROM {table}"),
        )
    };
    assert_eq!(amounts(&dst, "num").trim(), "12.34");
    // Told the locale, the destination reads the text as psql does there.
    let told = format!("{to} options='-c lc_monetary=es_AR.UTF-8'");
    assert_exit(&run(&["table", "mt", "--from", &from, "--to", &told]), 0);
    assert_eq!(amounts(&dst, "mt").trim(), "12.34 1234.00");

    // Its money into text: the amount in the C locale's form, warned; told, its own form.
    let own = database_setting(
        &argentina,
        &es,
        "CREATE TABLE mo (id int, m money); INSERT INTO mo VALUES (1, 1234.56); \
         CREATE TABLE mw (id int, m money); INSERT INTO mw VALUES (1, 10), (2, 100), (3, 5000);",
    );
    let own_form = argentina.psql(&own, "SELECT m::text FROM mo");
    let as_text = database(&c.dest[0], "CREATE TABLE mo (id int, m text);");
    let (from_es, to_text) = (argentina.conninfo(&own), c.dest[0].conninfo(&as_text));
    let out = run(&["table", "mo", "--from", &from_es, "--to", &to_text]);
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("in its session's lc_monetary 'C' ($-1,234.56)")
            || stderr.contains("in its session's lc_monetary 'C' (-$1,234.56)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("options='-c lc_monetary=es_AR.UTF-8'"),
        "{stderr}"
    );
    assert_eq!(
        c.dest[0].psql(&as_text, "SELECT m FROM mo").trim(),
        "$1,234.56"
    );
    let as_text2 = database(&c.dest[0], "CREATE TABLE mo (id int, m text);");
    let told = format!("{from_es} options='-c lc_monetary=es_AR.UTF-8'");
    let out = run(&[
        "table",
        "mo",
        "--from",
        &told,
        "--to",
        &c.dest[0].conninfo(&as_text2),
    ]);
    assert_exit(&out, 0);
    assert!(
        !text(&out.stderr).contains("lc_monetary"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(c.dest[0].psql(&as_text2, "SELECT m FROM mo"), own_form);

    // A --where's or --send's string read as money.
    let mw = database(&c.dest[0], "CREATE TABLE mw (id int, m money);");
    let to_mw = c.dest[0].conninfo(&mw);
    let where_said = [
        "the string '12,34'",
        "lc_monetary 'es_AR.UTF-8'",
        "12.34::numeric::money",
    ];
    refused(
        &[
            "table",
            "mw",
            "--from",
            &from_es,
            "--to",
            &to_mw,
            "--where",
            "m > '12,34'",
        ],
        &where_said,
    );
    refused(
        &[
            "copy",
            "--from",
            &from_es,
            "--send",
            "COPY (SELECT * FROM mw WHERE m > '12,34') TO STDOUT",
            "--to",
            &to_mw,
            "--receive",
            "COPY mw FROM STDIN",
        ],
        &where_said,
    );
    assert_eq!(count(&c.dest[0], &mw, "mw"), 0);
    let by_number = "m > 12.34::numeric::money AND id::text <> '7'";
    assert_exit(
        &run(&[
            "table", "mw", "--from", &from_es, "--to", &to_mw, "--where", by_number,
        ]),
        0,
    );
    assert_eq!(
        c.dest[0]
            .psql(&mw, "SELECT string_agg(id::text, ' ' ORDER BY id) FROM mw")
            .trim(),
        "2 3"
    );
}

/// A source database of `IntervalStyle = sql_standard` reads `'-1 2:00:00'` as −1 day −2 hours
/// (the leading sign applies to every field), copyman's session (`postgres`, the style it
/// writes data in) as −1 day +2 hours: `--where "iv = interval '-1 2:00:00'"` copied the other
/// row, exit 0, and a CONN that said `sql_standard` changed nothing. Refused, naming the string
/// and the style; written with a sign on each field, or with the CONN saying `postgres` (the
/// user's word for copyman's reading), it copies; strings that read alike (a date) pass.
#[test]
fn a_where_string_read_as_another_interval_by_the_sources_style_is_refused() {
    let c = clusters();
    let src = database_setting(
        &c.source,
        &["IntervalStyle = 'sql_standard'"],
        "CREATE TABLE ivt (id int, iv interval, d date); \
         INSERT INTO ivt VALUES (1, '-1 days -02:00:00', '2024-01-02'), \
           (2, '-1 days +02:00:00', '2024-01-02'); \
         CREATE DOMAIN div AS interval; CREATE DOMAIN divs AS interval[]; \
         CREATE TYPE ipair AS (i interval);",
    );
    let from = c.source.conninfo(&src);
    let copy = |from: &str, condition: &str| {
        let dst = database(
            &c.dest[0],
            "CREATE TABLE ivt (id int, iv interval, d date);",
        );
        let out = run(&[
            "table",
            "ivt",
            "--from",
            from,
            "--to",
            &c.dest[0].conninfo(&dst),
            "--where",
            condition,
        ]);
        let ids = c.dest[0].psql(
            &dst,
            "SELECT string_agg(id::text, ' ' ORDER BY id) FROM ivt",
        );
        (out, ids.trim().to_owned())
    };
    let (out, ids) = copy(&from, "iv = interval '-1 2:00:00'");
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("the string '-1 2:00:00'")
            && stderr.contains("IntervalStyle sql_standard")
            && stderr.contains("'-1 -2:00:00'"),
        "{stderr}"
    );
    assert_eq!(ids, "");
    let (out, ids) = copy(&from, "iv = interval '-1 -2:00:00' AND d = '2024-01-02'");
    assert_exit(&out, 0);
    assert_eq!(ids, "1");
    let said = format!("{from} options='-c intervalstyle=postgres'");
    let (out, ids) = copy(&said, "iv = interval '-1 2:00:00'");
    assert_exit(&out, 0);
    assert_eq!(ids, "2");
    // One string on two lines (SQL joins them): read whole.
    let (out, ids) = copy(&from, "iv = interval '-1 '\n'2:00:00'");
    assert_exit(&out, 2);
    assert_eq!(ids, "");
    // A field qualifier, and a comment between two joined strings.
    for condition in [
        "iv = interval '-1 2' day to hour",
        "iv = '-1 ' -- c\n'2:00:00'",
    ] {
        let (out, ids) = copy(&from, condition);
        assert_exit(&out, 2);
        assert_eq!(ids, "", "{condition}");
    }
    // A Unicode escape string (U&'\002d' is '-').
    let (out, ids) = copy(&from, r"iv = U&'\002d1 2:00:00'");
    assert_exit(&out, 2);
    assert_eq!(ids, "");
    // The data's text cast to interval: read in copyman's style, refused — however the type
    // is written (types69 F8: qualified or quoted, it passed and picked other rows).
    for condition in [
        "iv::text::interval = iv",
        "iv::text::pg_catalog.interval = iv",
        "iv::text::\"interval\" = iv",
        "CAST(iv::text AS pg_catalog.\"interval\") = iv",
        // A domain over it, an array of one, a composite holding one (recheck70 F6).
        "iv::text::div = iv",
        "CAST(iv::text AS div) = iv",
        "ARRAY[iv::text]::div[] = ARRAY[iv]",
        "('{' || iv::text || '}')::divs = ARRAY[iv]",
        "('(\"' || iv::text || '\")')::ipair = ROW(iv)::ipair",
    ] {
        let (out, ids) = copy(&from, condition);
        assert_exit(&out, 2);
        assert!(
            text(&out.stderr).contains("casts text to interval"),
            "{condition}: {}",
            text(&out.stderr)
        );
        assert_eq!(ids, "", "{condition}");
    }
}

/// A destination database with `array_nulls = off` reads an unquoted `NULL` in an array's text
/// as the string `NULL` (psql stores `{a,"NULL"}`); copyman's sessions, which pin it on, stored a
/// NULL element for a source's text `{a,NULL}` and for a file's line (exit 0, no word). Refused
/// for free text (a text column into an array, a file), naming the setting; a CONN that says
/// `array_nulls` reads as it says; an array copied from a source's array keeps its NULL
/// elements, and a CONN that turns `array_nulls` off for one is refused.
#[test]
fn array_text_into_a_database_of_array_nulls_off_is_refused_unless_told() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE an (id int, t text); INSERT INTO an VALUES (1, '{a,NULL}'); \
         CREATE TABLE arr (id int, a text[]); INSERT INTO arr VALUES (1, ARRAY['a', NULL, 'NULL']);",
    );
    let tables = "CREATE TABLE an (id int, t text[]); CREATE TABLE arr (id int, a text[]);";
    let off = ["array_nulls = off"];
    let dst = database_setting(&c.dest[0], &off, tables);
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
    let out = run(&["table", "an", "--from", &from, "--to", &to]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("array_nulls on in its session")
            && stderr.contains("has array_nulls off")
            && stderr.contains("options='-c array_nulls=off'"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &dst, "an"), 0);
    let out = run(&["table", "an", "arr", "--from", &from, "--to", &to]);
    assert_ne!(out.status.code(), Some(0));
    assert_eq!(count(&c.dest[0], &dst, "an"), 0);
    // An array's own NULL element stays NULL.
    assert_exit(&run(&["table", "arr", "--from", &from, "--to", &to]), 0);
    let nulls = |db: &str, sql: &str| c.dest[0].psql(db, sql).trim().to_owned();
    assert_eq!(nulls(&dst, "SELECT array_position(a, NULL) FROM arr"), "2");
    // Told, as psql reads it there: the string NULL — and `--verify` reads the source's text
    // so too (types50 F2: it read a NULL element, and said the copy differed for ever).
    let told_off = format!("{to} options='-c array_nulls=off'");
    let out = run(&[
        "table", "an", "--from", &from, "--to", &told_off, "--verify",
    ]);
    assert_exit(&out, 0);
    assert!(
        text(&out.stderr).contains("1 verified"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(nulls(&dst, "SELECT t[2] IS NULL FROM an"), "f");
    // Told so for one destination and not the other: each would store another array for the
    // same row, refused as other DateStyles are (recheck51b F4: exit 0).
    let pinned = database(&c.dest[1], tables);
    let to_pinned = c.dest[1].conninfo(&pinned);
    let out = run(&[
        "table", "an", "--from", &from, "--to", &told_off, "--to", &to_pinned,
    ]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("array_nulls"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[1], &pinned, "an"), 0);
    // Under --keep-going the destination that would read it otherwise is left out, and the
    // other copied to (types69 F15: the whole run was refused, as a job does not).
    let fresh = database_setting(&c.dest[0], &off, tables);
    let to_fresh = c.dest[0].conninfo(&fresh);
    let out = run(&[
        "table",
        "an",
        "--from",
        &from,
        "--to",
        &to_fresh,
        "--to",
        &to_pinned,
        "--keep-going",
    ]);
    assert_exit(&out, 4);
    assert!(
        text(&out.stderr).contains("has array_nulls off"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &fresh, "an"), 0);
    assert_eq!(count(&c.dest[1], &pinned, "an"), 1);
    c.dest[1].psql(&pinned, "TRUNCATE an");
    let other = database_setting(&c.dest[0], &off, tables);
    let other_off = format!(
        "{} options='-c array_nulls=off'",
        c.dest[0].conninfo(&other)
    );
    let out = run(&["table", "arr", "--from", &from, "--to", &other_off]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("leave array_nulls out"),
        "{}",
        text(&out.stderr)
    );

    // An array in a composite's field, from text there.
    let composite = database(
        &c.source,
        "CREATE TYPE ca AS (a text[], t text); CREATE TABLE ct (id int, c ca); \
         INSERT INTO ct VALUES (1, ('{x}', '{a,NULL}'));",
    );
    let into = database_setting(
        &c.dest[0],
        &off,
        "CREATE TYPE ca AS (a text[], t text[]); CREATE TABLE ct (id int, c ca);",
    );
    let out = run(&[
        "table",
        "ct",
        "--from",
        &c.source.conninfo(&composite),
        "--to",
        &c.dest[0].conninfo(&into),
    ]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("has array_nulls off"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &into, "ct"), 0);

    // A file: read in the database's array_nulls, as psql's \copy does: refused unless told.
    let file = TempPath::new("arrays.txt");
    std::fs::write(&file.0, "1\t{a,NULL}\n").unwrap();
    let to_other = c.dest[0].conninfo(&other);
    let out = run(&["table", "an", "--from", file.arg(), "--to", &to_other]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("reads a file's arrays with its database's array_nulls off"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &other, "an"), 0);
    let told_on = format!("{to_other} options='-c array_nulls=on'");
    assert_exit(
        &run(&["table", "an", "--from", file.arg(), "--to", &told_on]),
        0,
    );
    assert_eq!(nulls(&other, "SELECT t[2] IS NULL FROM an"), "t");
}

/// What was still read otherwise after the money and array text rules, one by one:
/// - text in a composite's field into money there, beside a number (`'12,34'` stored 1234.00 on
///   an `es_AR` database, exit 0): refused as the plain column is, place by place;
/// - a destination told its locale (the refusal's way out) read the table's numbers and the
///   source's money in it too (`12.34` stored 1234.00): refused, naming why;
/// - an `en_GB` destination (another symbol, the same separators) stored text `$12.34` as
///   `£12.34`: refused;
/// - the database's own settings asked on one more session, passed over where a role's
///   `CONNECTION LIMIT` left none (text stored ×100, exit 0): refused, naming the way; a
///   `--where`'s strings are asked before the run's sessions open, so one session is enough;
/// - a source database with no money: a quoted number in `--where` is no amount (it was refused
///   as one); a `--dry-run` refuses what the run refuses;
/// - a file copyman wrote into a yen database: no `lc_monetary=C` way (it stored `$12.34` as
///   `¥1,234`).
#[test]
fn money_text_read_otherwise_is_refused_in_composites_told_sessions_and_every_form() {
    let Some((_locales, world)) = with_locales(
        "money_text_read_otherwise_is_refused_in_composites_told_sessions_and_every_form",
        &["es_AR", "en_GB", "ja_JP"],
    ) else {
        return;
    };
    let c = clusters();
    let es = ["lc_monetary = 'es_AR.UTF-8'"];
    let types = "CREATE TYPE pair AS (a text, n int);";
    let src = database(
        &c.source,
        &format!(
            "{types} CREATE TABLE cp (id int, p pair); INSERT INTO cp VALUES (1, ('12,34', 1)); \
             CREATE TABLE mix (id int, t text, n numeric, m money); \
             INSERT INTO mix VALUES (1, '12,34', 12.34, 12.34); \
             CREATE TABLE fm (id int, m money); INSERT INTO fm VALUES (1, 12.34);"
        ),
    );
    let from = c.source.conninfo(&src);
    let refused = |args: &[&str], said: &str| {
        let out = run(args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(said), "{said:?} in {stderr}");
        stderr
    };
    // A composite's text field into money, beside a number.
    let dst = database_setting(
        &world,
        &es,
        "CREATE TYPE pair AS (a money, n int); CREATE TABLE cp (id int, p pair); \
         CREATE TABLE mix (id int, t money, n money, m money);",
    );
    let to = world.conninfo(&dst);
    refused(
        &["table", "cp", "--from", &from, "--to", &to],
        "'es_AR.UTF-8' writes it as",
    );
    assert_eq!(count(&world, &dst, "cp"), 0);
    // Told the locale: the numbers and the money would be read in it too.
    let told = format!("{to} options='-c lc_monetary=es_AR.UTF-8'");
    refused(
        &[
            "table",
            "mix",
            "--columns",
            "id,n",
            "--from",
            &from,
            "--to",
            &told,
        ],
        "from the source's numbers",
    );
    refused(
        &[
            "table",
            "mix",
            "--columns",
            "id,m",
            "--from",
            &from,
            "--to",
            &told,
        ],
        "the source's session writes money as",
    );
    assert_exit(
        &run(&[
            "table",
            "mix",
            "--columns",
            "id,t",
            "--from",
            &from,
            "--to",
            &told,
        ]),
        0,
    );
    assert_eq!(
        world.psql(&dst, "SELECT t::numeric FROM mix").trim(),
        "12.34"
    );
    // Another symbol.
    let gb = database_setting(
        &world,
        &["lc_monetary = 'en_GB.UTF-8'"],
        "CREATE TABLE mix (id int, t money, n money, m money);",
    );
    refused(
        &[
            "table",
            "mix",
            "--columns",
            "id,t",
            "--from",
            &from,
            "--to",
            &world.conninfo(&gb),
        ],
        "'en_GB.UTF-8' writes it as",
    );
    // A role that may open one session: refused, not passed over.
    let limited = database_setting(&world, &es, "CREATE TABLE mix (id int, t money);");
    let role = format!("one_{limited}");
    world
        .connect("postgres")
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN CONNECTION LIMIT 1; \
             GRANT ALL ON DATABASE {limited} TO {role};"
        ))
        .unwrap();
    world
        .connect(&limited)
        .batch_execute(&format!("GRANT ALL ON mix TO {role}"))
        .unwrap();
    let as_role = format!("{} user={role}", world.conninfo(&limited));
    refused(
        &[
            "table",
            "mix",
            "--columns",
            "id,t",
            "--from",
            &from,
            "--to",
            &as_role,
        ],
        "cannot ask destination 1",
    );
    assert_eq!(count(&world, &limited, "mix"), 0);

    // A source with no money: quoted numbers are no amounts; the dry run refuses as the run.
    let plain = database_setting(
        &world,
        &es,
        "CREATE TABLE wn (id int, code text); INSERT INTO wn VALUES (1, '2.5'), (2, '7');",
    );
    let wn = database(&c.dest[0], "CREATE TABLE wn (id int, code text);");
    let (from_plain, to_wn) = (world.conninfo(&plain), c.dest[0].conninfo(&wn));
    assert_exit(
        &run(&[
            "table",
            "wn",
            "--from",
            &from_plain,
            "--to",
            &to_wn,
            "--where",
            "code = '2.5'",
        ]),
        0,
    );
    assert_eq!(count(&c.dest[0], &wn, "wn"), 1);
    let priced = database_setting(
        &world,
        &es,
        "CREATE TABLE mw (id int, m money); INSERT INTO mw VALUES (1, 10), (2, 100); \
         CREATE TABLE wt (id int, size text); INSERT INTO wt VALUES (1, '1,5'), (2, '2'); \
         CREATE TABLE ma (id int, a money[]); INSERT INTO ma VALUES (1, '{12}'), (2, '{1234}');",
    );
    // An array of amounts in a string.
    let ma = database(&c.dest[0], "CREATE TABLE ma (id int, a money[]);");
    refused(
        &[
            "table",
            "ma",
            "--from",
            &world.conninfo(&priced),
            "--to",
            &c.dest[0].conninfo(&ma),
            "--where",
            "a = '{\"12,34\"}'",
        ],
        "which reads as another amount",
    );
    let wt_first = database(&c.dest[0], "CREATE TABLE wt (id int, size text);");
    // A condition that reads a table with money, from one without: checked.
    refused(
        &[
            "table",
            "wt",
            "--from",
            &world.conninfo(&priced),
            "--to",
            &c.dest[0].conninfo(&wt_first),
            "--where",
            "id IN (SELECT id FROM mw WHERE m = '12,34')",
        ],
        "the string '12,34'",
    );
    // A table with no money, in a database with some: a decimal comma is text there.
    let wt = wt_first;
    assert_exit(
        &run(&[
            "table",
            "wt",
            "--from",
            &world.conninfo(&priced),
            "--to",
            &c.dest[0].conninfo(&wt),
            "--where",
            "size = '1,5'",
        ]),
        0,
    );
    assert_eq!(count(&c.dest[0], &wt, "wt"), 1);
    let mw = database(&c.dest[0], "CREATE TABLE mw (id int, m money);");
    refused(
        &[
            "table",
            "mw",
            "--from",
            &world.conninfo(&priced),
            "--to",
            &c.dest[0].conninfo(&mw),
            "--where",
            "m > '12,34'",
            "--dry-run",
        ],
        "the string '12,34'",
    );

    // A file copyman wrote, into a yen database: no way to read cents as yen.
    let file = TempPath::new("money-yen.txt");
    assert_exit(
        &run(&["table", "fm", "--from", &from, "--to", file.arg()]),
        0,
    );
    let yen = database_setting(
        &world,
        &["lc_monetary = 'ja_JP.UTF-8'"],
        "CREATE TABLE fm (id int, m money);",
    );
    let stderr = refused(
        &[
            "table",
            "fm",
            "--from",
            file.arg(),
            "--to",
            &world.conninfo(&yen),
        ],
        "is no amount of its unit",
    );
    assert!(!stderr.contains("lc_monetary=C"), "{stderr}");
}

/// A `--receive`'s own `WHERE` (`COPY … FROM STDIN WHERE …`) is read by the destination's copy
/// session, in the forms it reads the source's data in (the C locale's money, `array_nulls=on`):
/// on a database of a comma decimal, `m > '12,34'` kept other rows than psql keeps there, and on
/// one of `array_nulls = off`, `a = '{x,NULL}'` another row (exit 0 under
/// `--allow-count-mismatch`, which any filtering `WHERE` needs). Refused on that destination,
/// naming it, the string and the setting; written to read alike, it keeps psql's rows.
#[test]
fn a_receives_strings_read_otherwise_on_its_destination_are_refused() {
    let Some((_locales, argentina)) = with_locales(
        "a_receives_strings_read_otherwise_on_its_destination_are_refused",
        &["es_AR"],
    ) else {
        return;
    };
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE mw (id int, m money); INSERT INTO mw VALUES (1, 10), (2, 100), (3, 5000); \
         CREATE TABLE rw (id int, a text[]); \
         INSERT INTO rw VALUES (1, ARRAY['x', 'NULL']), (2, ARRAY['x', NULL]); \
         CREATE TABLE rt (id int, v text); INSERT INTO rt VALUES (1, '{x,NULL}'), (2, 'b');",
    );
    let from = c.source.conninfo(&src);
    let comma = database_setting(
        &argentina,
        &["lc_monetary = 'es_AR.UTF-8'"],
        "CREATE TABLE mw (id int, m money);",
    );
    let off = database_setting(
        &c.dest[0],
        &["array_nulls = off"],
        "CREATE TABLE rw (id int, a text[]); CREATE TABLE rt (id int, v text);",
    );
    let plain = database(&c.dest[1], "CREATE TABLE rw (id int, a text[]);");
    let (to_comma, to_off) = (argentina.conninfo(&comma), c.dest[0].conninfo(&off));
    let to_plain = c.dest[1].conninfo(&plain);
    let copy = |send: &str, to: &[&str], receive: &str| {
        let mut args = vec!["copy", "--from", &from, "--send", send];
        for to in to {
            args.extend(["--to", to, "--receive", receive]);
        }
        args.push("--allow-count-mismatch");
        run(&args)
    };
    let refused = |out: std::process::Output, said: &[&str]| {
        assert_exit(&out, 2);
        let stderr = text(&out.stderr);
        for said in said {
            assert!(stderr.contains(said), "{said:?} in {stderr}");
        }
    };
    let ids = |cluster: &copyman_testkit::Cluster, db: &str, table: &str| {
        let sql = format!("SELECT string_agg(id::text, ',' ORDER BY id) FROM {table}");
        cluster.psql(db, &sql).trim().to_owned()
    };

    refused(
        copy(
            "COPY mw TO STDOUT",
            &[&to_comma],
            "COPY mw FROM STDIN WHERE m > '12,34'",
        ),
        &[
            "--receive of destination 1 has the string '12,34'",
            "lc_monetary 'es_AR.UTF-8'",
        ],
    );
    assert_eq!(count(&argentina, &comma, "mw"), 0);
    let number = "COPY mw FROM STDIN WHERE m > 12.34::numeric::money";
    assert_exit(&copy("COPY mw TO STDOUT", &[&to_comma], number), 0);
    assert_eq!(ids(&argentina, &comma, "mw"), "2,3");

    // The second of two destinations: the run refused before anything is sent to either.
    let null = "COPY rw FROM STDIN WHERE a = '{x,NULL}'";
    refused(
        copy("COPY rw TO STDOUT", &[&to_plain, &to_off], null),
        &["--receive of destination 2", "array_nulls off"],
    );
    assert_eq!(count(&c.dest[1], &plain, "rw"), 0);
    assert_eq!(count(&c.dest[0], &off, "rw"), 0);
    // The dry run refuses as the run.
    let mut dry = vec!["copy", "--from", &from, "--send", "COPY rw TO STDOUT"];
    dry.extend([
        "--to",
        &to_off,
        "--receive",
        null,
        "--dry-run",
        "--allow-count-mismatch",
    ]);
    refused(run(&dry), &["reads as another array"]);
    // Quoted, the string NULL reads alike everywhere; on a destination of array_nulls on, the
    // unquoted one is a NULL element to both (equal to the row's own, in an array).
    let quoted = "COPY rw FROM STDIN WHERE a = '{x,\"NULL\"}'";
    assert_exit(&copy("COPY rw TO STDOUT", &[&to_off], quoted), 0);
    assert_eq!(ids(&c.dest[0], &off, "rw"), "1");
    assert_exit(&copy("COPY rw TO STDOUT", &[&to_plain], null), 0);
    assert_eq!(ids(&c.dest[1], &plain, "rw"), "2");
    // Compared with text, an array-looking string reads alike everywhere: not refused.
    let text_where = "COPY rt FROM STDIN WHERE v <> '{x,NULL}'";
    assert_exit(&copy("COPY rt TO STDOUT", &[&to_off], text_where), 0);
    assert_eq!(ids(&c.dest[0], &off, "rt"), "2");
}

/// Where a `name` column's values cannot be measured they are not passed over (recheck41 F2):
/// a `--send` that writes (a `DELETE … RETURNING` move, whose long value was deleted from the
/// source and stored cut) or that the read-only measure refuses (`nextval()`) is refused,
/// saying so. And into a SQL_ASCII destination the values are measured in the encoding the data
/// arrives in (a LATIN1 source's 40 `é` arrived as 80 UTF-8 bytes, cut at 63 mid-character, and
/// `é` into a "char" kept half of it; recheck41 F3).
#[test]
fn values_that_cannot_be_measured_or_arrive_in_another_encoding_are_not_passed_over() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE src (id int, nm text); CREATE SEQUENCE sq;
         INSERT INTO src VALUES (1, 'short'), (1000, repeat('L', 70));",
    );
    let dst = database(&c.dest[0], "CREATE TABLE dst (id int, nm name);");
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
    for send in [
        "COPY (DELETE FROM src WHERE id > 90 RETURNING id, nm) TO STDOUT",
        "COPY (SELECT nextval('sq')::int, nm FROM src) TO STDOUT",
    ] {
        let out = run(&[
            "copy",
            "--from",
            &from,
            "--send",
            send,
            "--to",
            &to,
            "--receive",
            "COPY dst FROM STDIN",
        ]);
        assert_exit(&out, 2);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("column \"nm\" is name on destination 1")
                && stderr.contains("could not be measured (the --send's query writes")
                && !stderr.contains("standby"),
            "{send}: {stderr}"
        );
    }
    assert_eq!(count(&c.dest[0], &dst, "dst"), 0);
    assert_eq!(
        count(&c.source, &src, "src"),
        2,
        "nothing moved off the source"
    );
    // A LATIN1 source into a SQL_ASCII destination.
    let base = database(&c.source, "SELECT 1");
    let table = "CREATE TABLE ch (id int, t text, nm text);";
    let l1 = database_in(
        &c.source,
        format!("{base}_l1"),
        "LATIN1",
        &format!("{table} INSERT INTO ch VALUES (2, 'é', repeat('é', 40));"),
    );
    let sa = database_in(
        &c.dest[0],
        format!("{base}_sa"),
        "SQL_ASCII",
        "CREATE TABLE ch (id int, t \"char\", nm name);",
    );
    let out = run(&[
        "table",
        "ch",
        "--from",
        &c.source.conninfo(&l1),
        "--to",
        &c.dest[0].conninfo(&sa),
    ]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("take more in its encoding (UTF8; the source's is LATIN1)"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &sa, "ch"), 0);
}

/// A pattern of capitals beyond ASCII that matches nothing (pg_dump folds only ASCII letters)
/// is told the table of its own spelling, in a database whose collation folds them all: the
/// hint compared a name folded in "C" with the pattern folded in the database's collation, so
/// `ÉTÉ` was sent to `"été"` (another table) and `ÀB` got no hint at all (enc45 F4).
#[test]
fn a_pattern_beyond_ascii_is_hinted_at_its_own_spelling() {
    let c = clusters();
    let base = database(&c.source, "SELECT 1");
    let name = format!("{base}_cutf8");
    c.source
        .connect("postgres")
        .batch_execute(&format!(
            "CREATE DATABASE {name} ENCODING 'UTF8' LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8' \
             TEMPLATE template0"
        ))
        .unwrap();
    let tables =
        r#"CREATE TABLE "ÉTÉ" (i int); CREATE TABLE "été" (i int); CREATE TABLE "ÀB" (i int);"#;
    c.source.connect(&name).batch_execute(tables).unwrap();
    let dst = database(&c.dest[0], tables);
    let state = TempPath::new("pattern-hint.state");
    for (pattern, hint) in [
        ("ÉTÉ", r#"public."ÉTÉ" does"#),
        ("ÀB", r#"public."ÀB" does"#),
    ] {
        let out = run(&[
            "table",
            "--table",
            pattern,
            "--from",
            &c.source.conninfo(&name),
            "--to",
            &c.dest[0].conninfo(&dst),
            "--state",
            state.arg(),
            "--dry-run",
        ]);
        assert_exit(&out, 2);
        let said = text(&out.stderr);
        assert!(said.contains(hint), "{pattern}: {said}");
    }
}
