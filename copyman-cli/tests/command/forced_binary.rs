//! `--format binary` forced over columns of other types, against real clusters: binary COPY
//! does not convert values, so a destination whose column has another type would read the
//! source's bytes as its own type's — an `int4`'s four bytes are a valid `text` (`ABCD`), stored
//! without an error. copyman refuses it before copying (one table: exit 2; a job: that
//! destination's table), and a server that refuses the binary data itself gets the hint.

use crate::common;

use common::*;
use copyman_testkit::Cluster;

/// The values of `v` on `db`, in `id` order, as text.
fn values(cluster: &Cluster, db: &str, table: &str) -> Vec<String> {
    cluster
        .connect(db)
        .query(&format!("SELECT v::text FROM {table} ORDER BY id"), &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[test]
fn binary_forced_over_int4_into_text_is_refused_before_copying() {
    let c = clusters();
    // 1094861636 is 0x41424344: its binary form is the text "ABCD".
    let src = database(
        &c.source,
        "CREATE TABLE n (id int4, v int4); INSERT INTO n VALUES (1, 1094861636), (2, 7);",
    );
    let d1 = database(&c.dest[0], "CREATE TABLE n (id int4, v text);");
    let d2 = database(&c.dest[1], "CREATE TABLE n (id int4, v int4);");
    let (from, to1, to2) = (c.source.url(&src), c.dest[0].url(&d1), c.dest[1].url(&d2));
    for dry_run in [true, false] {
        let mut args = vec![
            "table", "n", "--from", &from, "--to", &to1, "--to", &to2, "--format", "binary",
        ];
        if dry_run {
            args.push("--dry-run");
        }
        let out = run(&args);
        assert_exit(&out, 2);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(
                r#"--format binary: column "v" is integer on the source but text on destination 1"#
            ) && stderr.contains("--format text"),
            "{stderr}"
        );
    }
    assert_eq!(count(&c.dest[0], &d1, "n"), 0);
    assert_eq!(count(&c.dest[1], &d2, "n"), 0);
    assert_eq!(settle_backends(&c.dest[0], &d1), Vec::<String>::new());
    assert_eq!(settle_backends(&c.dest[1], &d2), Vec::<String>::new());

    // Text converts each value: what the user wanted.
    let out = run(&[
        "table",
        "n",
        "--from",
        &c.source.url(&src),
        "--to",
        &c.dest[0].url(&d1),
        "--format",
        "text",
    ]);
    assert_exit(&out, 0);
    assert_eq!(values(&c.dest[0], &d1, "n"), ["1094861636", "7"]);
}

#[test]
fn binary_forced_where_it_is_faithful_still_copies() {
    let c = clusters();
    // varchar and text share a binary form; a narrower numeric modifier is applied by the
    // receiver as for text.
    let src = database(
        &c.source,
        "CREATE TABLE f (id int4, v varchar(10), m numeric(12,2));
         INSERT INTO f VALUES (1, 'abc', 12.5), (2, NULL, 3);",
    );
    let d1 = database(
        &c.dest[0],
        "CREATE TABLE f (id int4, v text, m numeric(10,2));",
    );
    let out = run(&[
        "table",
        "f",
        "--from",
        &c.source.url(&src),
        "--to",
        &c.dest[0].url(&d1),
        "--format",
        "binary",
        "--json",
    ]);
    assert_exit(&out, 0);
    assert_eq!(json(&out)["format"], "binary");
    assert_eq!(digest(&c.dest[0], &d1, "f"), digest(&c.source, &src, "f"));
}

#[test]
fn binary_forced_over_oids_that_differ_is_refused_before_copying() {
    let c = clusters();
    // An array of enums carries the enum's OID, which the destination would check against its
    // own and refuse: refused before any data, saying why.
    let types = "CREATE TYPE mood AS ENUM ('sad', 'ok');";
    let table = "CREATE TABLE w (id int8, v mood[]);";
    let src = database(
        &c.source,
        &format!("{types}{table} INSERT INTO w VALUES (1, ARRAY['sad', 'ok']::mood[]);"),
    );
    let d1 = database(&c.dest[0], types);
    let oid = |cluster: &Cluster, db: &str| -> u32 {
        cluster
            .connect(db)
            .query_one("SELECT 'mood'::regtype::oid", &[])
            .unwrap()
            .get(0)
    };
    {
        let dest = &mut c.dest[0].connect(&d1);
        while oid(&c.dest[0], &d1) == oid(&c.source, &src) {
            dest.batch_execute(&format!("DROP TYPE mood; {types}"))
                .unwrap();
        }
        dest.batch_execute(table).unwrap();
    }
    let out = run(&[
        "table",
        "w",
        "--from",
        &c.source.url(&src),
        "--to",
        &c.dest[0].url(&d1),
        "--format",
        "binary",
    ]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            r#"column "v" is of type public.mood[], whose binary form differs on destination 1"#
        ),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &d1, "w"), 0);
    assert_eq!(settle_backends(&c.dest[0], &d1), Vec::<String>::new());
}

#[test]
fn binary_forced_over_a_type_the_server_refuses_gets_the_hint() {
    let c = clusters();
    // aclitem has no binary form: the same type on both sides, warned, then refused by the
    // source's server (42883), and copyman says what to do.
    let table = "CREATE TABLE g (id int8, v aclitem[]);";
    let src = database(
        &c.source,
        &format!("{table} INSERT INTO g VALUES (1, ARRAY['postgres=r/postgres']::aclitem[]);"),
    );
    let d1 = database(&c.dest[0], table);
    let out = run(&[
        "table",
        "g",
        "--from",
        &c.source.url(&src),
        "--to",
        &c.dest[0].url(&d1),
        "--format",
        "binary",
    ]);
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("warning: --format binary, but column \"v\" is of type aclitem[]"),
        "{stderr}"
    );
    assert!(stderr.contains("SQLSTATE"), "{stderr}");
    assert!(
        stderr.contains("hint:") && stderr.contains("--format text"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &d1, "g"), 0);
    assert_eq!(settle_backends(&c.dest[0], &d1), Vec::<String>::new());
}

#[test]
fn a_job_forced_to_binary_refuses_the_destination_that_would_misread() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE a (id int4, v int4); INSERT INTO a VALUES (1, 1094861636);
         CREATE TABLE b (id int4, v int4); INSERT INTO b VALUES (1, 2);",
    );
    // Destination 1 has `a.v` as text; destination 2 matches everywhere.
    let d1 = database(
        &c.dest[0],
        "CREATE TABLE a (id int4, v text); CREATE TABLE b (id int4, v int4);",
    );
    let d2 = database(
        &c.dest[1],
        "CREATE TABLE a (id int4, v int4); CREATE TABLE b (id int4, v int4);",
    );
    let out = run(&[
        "table",
        "--table",
        "public.*",
        "--from",
        &c.source.url(&src),
        "--to",
        &c.dest[0].url(&d1),
        "--to",
        &c.dest[1].url(&d2),
        "--format",
        "binary",
        "--json",
    ]);
    let stderr = text(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(r#"column "v" is integer on the source but text on destination 1"#),
        "{stderr}"
    );
    // Never the misread value, on any destination.
    assert_eq!(count(&c.dest[0], &d1, "a"), 0);
    for (cluster, db) in [(&c.dest[0], &d1), (&c.dest[1], &d2)] {
        let stored = values(cluster, db, "a");
        assert!(stored.iter().all(|v| v == "1094861636"), "{stored:?}");
        assert_eq!(settle_backends(cluster, db), Vec::<String>::new());
    }
}

#[test]
fn a_binary_file_is_loaded_with_a_warning_naming_the_types_it_is_read_as() {
    // A PGCOPY file records no column types: loaded into other types it is read wrong without
    // an error (as psql's \copy reads it). copyman cannot check it; it says what it reads it as.
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE jf (id int8, v int4); INSERT INTO jf VALUES (5, 7);",
    );
    let d1 = database(&c.dest[0], "CREATE TABLE jf (id int8, v int4);");
    let file = TempPath::new("jf.bin");
    let out = run(&[
        "table",
        "jf",
        "--from",
        &c.source.url(&src),
        "--to",
        file.arg(),
        "--format",
        "binary",
    ]);
    assert_exit(&out, 0);
    let out = run(&[
        "table",
        "jf",
        "--from",
        file.arg(),
        "--to",
        &c.dest[0].url(&d1),
    ]);
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("is binary COPY data, which records no column types")
            && stderr.contains(r#"("id" bigint, "v" integer)"#),
        "{stderr}"
    );
    assert_eq!(digest(&c.dest[0], &d1, "jf"), digest(&c.source, &src, "jf"));
    // Destinations whose types differ read the same bytes otherwise: at most one reads what
    // the file holds (an int4's bytes stored as a float4, exit 0 with a warning): refused.
    let d2 = database(&c.dest[1], "CREATE TABLE jf (id int8, v float4);");
    let out = run(&[
        "table",
        "jf",
        "--from",
        file.arg(),
        "--to",
        &c.dest[0].url(&d1),
        "--to",
        &c.dest[1].url(&d2),
        "--truncate",
    ]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("read one of its fields as types whose binary forms differ")
            && stderr.contains("\"v\" integer on destination 1")
            && stderr.contains("\"v\" real on destination 2"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[1], &d2, "jf"), 0);
    // `copy`'s statements alike (it stored the int4's bits as reals, exit 0, without a word).
    let receive = "COPY jf FROM STDIN (FORMAT binary)";
    let (to1, to2) = (c.dest[0].url(&d1), c.dest[1].url(&d2));
    let both = [
        "copy",
        "--from",
        file.arg(),
        "--to",
        &to1,
        "--receive",
        receive,
        "--to",
        &to2,
        "--receive",
        receive,
    ];
    let out = run(&both);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("read one of its fields as types whose binary forms differ")
            && stderr.contains("\"v\" real on destination 2"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[1], &d2, "jf"), 0);
    let out = run(&[
        "copy",
        "--from",
        file.arg(),
        "--to",
        &to2,
        "--receive",
        receive,
    ]);
    assert_exit(&out, 0);
    assert!(
        text(&out.stderr).contains(r#"its values are read as ("id" bigint, "v" real)"#),
        "{}",
        text(&out.stderr)
    );
    c.dest[1].connect(&d2).batch_execute("TRUNCATE jf").unwrap();
    // Read into types whose binary forms the fields do not fit (an int8 as text: a NUL byte;
    // an int4 as an int8: too short): the failure says the file's types, not an encoding
    // (its 22021 came with a UTF-16 hint, types43 F2).
    // A destination whose column owns a sequence: its warning said once, though a file found
    // binary is planned twice (said twice, and listed twice in --json: docs43 F8).
    let d5 = database(&c.dest[1], "CREATE TABLE jf (id bigserial, v int4);");
    let out = run(&[
        "table",
        "jf",
        "--from",
        file.arg(),
        "--to",
        &c.dest[1].url(&d5),
        "--json",
    ]);
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    assert_eq!(
        stderr.matches("owns a sequence there").count(),
        1,
        "{stderr}"
    );
    let warnings = json(&out)["warnings"].as_array().unwrap().clone();
    assert_eq!(
        (warnings.iter())
            .filter(|w| w.as_str().unwrap().contains("owns a sequence there"))
            .count(),
        1,
        "{warnings:?}"
    );
    for (table, sqlstate) in [
        ("CREATE TABLE jf (id text, v int4);", "SQLSTATE 22021"),
        ("CREATE TABLE jf (id int8, v int8);", "SQLSTATE 08P01"),
    ] {
        let d4 = database(&c.dest[1], table);
        let out = run(&[
            "table",
            "jf",
            "--from",
            file.arg(),
            "--to",
            &c.dest[1].url(&d4),
        ]);
        assert_exit(&out, 1);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(sqlstate)
                && stderr.contains("is binary COPY data, which records no column types: each")
                && !stderr.contains("UTF-16"),
            "{stderr}"
        );
        assert_eq!(count(&c.dest[1], &d4, "jf"), 0);
    }
    // A domain over integer reads an integer's bytes as the integer does: loaded into both.
    let d3 = database(
        &c.dest[1],
        "CREATE DOMAIN posint AS int4 CHECK (VALUE > 0); CREATE TABLE jf (id int8, v posint);",
    );
    let d1b = database(&c.dest[0], "CREATE TABLE jf (id int8, v int4);");
    let out = run(&[
        "table",
        "jf",
        "--from",
        file.arg(),
        "--to",
        &c.dest[0].url(&d1b),
        "--to",
        &c.dest[1].url(&d3),
    ]);
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[1], &d3, "jf"), 1);
}

#[test]
fn binary_forced_over_a_range_of_another_subtype_is_refused() {
    // A range of one name over int8 here and timestamp there: its bounds would be read as the
    // other subtype's ([1000000,2000000) stored as timestamps in 2000), only warned before.
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TYPE rr AS RANGE (subtype = int8); CREATE TABLE r1 (v rr);
         INSERT INTO r1 VALUES ('[1000000,2000000)');",
    );
    let d1 = database(
        &c.dest[0],
        "CREATE TYPE rr AS RANGE (subtype = timestamp); CREATE TABLE r1 (v rr);",
    );
    let out = run(&[
        "table",
        "r1",
        "--from",
        &c.source.url(&src),
        "--to",
        &c.dest[0].url(&d1),
        "--format",
        "binary",
    ]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            r#"column "v" is of type public.rr, whose binary form differs on destination 1"#
        ),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &d1, "r1"), 0);
    // The same range on both sides is carried in binary, by default too.
    let d2 = database(
        &c.dest[1],
        "CREATE TYPE rr AS RANGE (subtype = int8); CREATE TABLE r1 (v rr);",
    );
    let out = run(&[
        "table",
        "r1",
        "--from",
        &c.source.url(&src),
        "--to",
        &c.dest[1].url(&d2),
        "--json",
    ]);
    assert_exit(&out, 0);
    assert_eq!(json(&out)["format"], "binary");
    assert_eq!(digest(&c.dest[1], &d2, "r1"), digest(&c.source, &src, "r1"));
}

/// `--format binary` into narrower columns: every narrowing column is named, as under text (the
/// warning named the first only, and said text would convert where both round alike).
#[test]
fn forced_binary_names_every_narrowing_column() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE t (id int, n numeric(12,4), v varchar(10));
         INSERT INTO t VALUES (1, 1.2345, 'ab');",
    );
    let dst = database(
        &c.dest[0],
        "CREATE TABLE t (id int, n numeric(10,2), v varchar(3))",
    );
    let out = run(&[
        "table",
        "t",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&dst),
        "--format",
        "binary",
    ]);
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("column \"n\" is numeric(12,4)")
            && stderr.contains("column \"v\" is character varying(10)")
            && !stderr.contains("--format text does"),
        "{stderr}"
    );
}

/// `--format binary` where the binary form is the same and only a modifier differs: an interval
/// into `interval year to month`, a domain over varchar here and over text there (both were
/// refused as other types).
#[test]
fn forced_binary_allows_interval_fields_and_string_domains() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE DOMAIN name_d AS varchar(20);
         CREATE TABLE t (id int, i interval, n name_d);
         INSERT INTO t VALUES (1, '1 year 2 mons', 'x');",
    );
    let dst = database(
        &c.dest[0],
        "CREATE DOMAIN name_d AS text;
         CREATE TABLE t (id int, i interval year to month, n name_d)",
    );
    let out = run(&[
        "table",
        "t",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&dst),
        "--format",
        "binary",
    ]);
    assert_exit(&out, 0);
    assert_eq!(
        count(
            &c.dest[0],
            &dst,
            "(SELECT 1 FROM t WHERE i = '1 year 2 mons' AND n = 'x')"
        ),
        1
    );
}

/// Binary `COPY … FROM` looks up the binary input of every column of its table, copied or not:
/// a destination column left to its default whose type has none (`aclitem` here; `isbn13`,
/// user base types) failed the default binary copy at once (42883) — a copy text would make.
/// Text is chosen for it, and `--format binary` refused before copying, in a job too.
#[test]
fn a_destination_column_without_binary_input_makes_text() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE b (id int4, v text); INSERT INTO b VALUES (1, 'one'), (2, 'two');
         CREATE TABLE b2 (id int4); INSERT INTO b2 VALUES (1);",
    );
    let dest = "CREATE TABLE b (id int4, v text, acl aclitem);
                CREATE TABLE b2 (id int4, acl aclitem)";
    let d1 = database(&c.dest[0], dest);
    let (from, to) = (c.source.url(&src), c.dest[0].url(&d1));
    let out = run(&["table", "b", "--from", &from, "--to", &to, "--dry-run"]);
    assert_exit(&out, 0);
    let said = text(&out.stderr) + &text(&out.stdout);
    assert!(
        said.contains(r#"has column "acl" of type aclitem, which has no binary input"#),
        "{said}"
    );
    let out = run(&["table", "b", "--from", &from, "--to", &to]);
    assert_exit(&out, 0);
    assert_eq!(values(&c.dest[0], &d1, "b"), ["one", "two"]);
    let out = run(&[
        "table", "b", "--from", &from, "--to", &to, "--format", "binary",
    ]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("--format binary: destination 1")
            && stderr.contains("has column \"acl\" of type aclitem")
            && stderr.contains("give --format text"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &d1, "b"), 2);
    // A job chooses alike.
    let state = TempPath::new("aclitem.state");
    let out = run(&[
        "table",
        "b",
        "b2",
        "--from",
        &from,
        "--to",
        &to,
        "--truncate",
        "--state",
        state.arg(),
    ]);
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[0], &d1, "b"), 2);
    assert_eq!(count(&c.dest[0], &d1, "b2"), 1);
}

/// A domain over the other side's type (`integer` here, a domain over `integer` there, either
/// way round) is no conversion: binary COPY carries it (`domain_recv` reads its base type's
/// form and checks the domain), so it is chosen, forced binary copies, and nothing is said to
/// be "rounded, cut". It was said a conversion, copied in text, and a forced binary refused as
/// "stored wrong without an error" (types41 F7). The domain's CHECK still fails loudly.
#[test]
fn a_domain_over_the_same_type_copies_in_binary() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE DOMAIN plainint AS int; CREATE TABLE dpl (id plainint, v int);
         INSERT INTO dpl VALUES (1, 2), (2, 3000);",
    );
    let dst = database(
        &c.dest[0],
        "CREATE DOMAIN plainint AS int; CREATE DOMAIN small AS int CHECK (VALUE < 2500);
         CREATE TABLE dpl (id int, v plainint); CREATE TABLE dsm (id plainint, v small);",
    );
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
    let out = run(&["table", "dpl", "--from", &from, "--to", &to, "--dry-run"]);
    assert_exit(&out, 0);
    let said = text(&out.stdout) + &text(&out.stderr);
    assert!(said.contains("format: binary ("), "{said}");
    assert!(!said.contains("converts each value"), "{said}");
    let out = run(&[
        "table", "dpl", "--from", &from, "--to", &to, "--format", "binary",
    ]);
    assert_exit(&out, 0);
    assert_eq!(values(&c.dest[0], &dst, "dpl"), ["2", "3000"]);
    // The destination's domain CHECK refuses a value loudly; nothing committed.
    let out = run(&[
        "table",
        "dpl",
        "--from",
        &from,
        "--to",
        &to,
        "--target-table",
        "dsm",
        "--format",
        "binary",
    ]);
    assert_exit(&out, 1);
    assert!(text(&out.stderr).contains("23514"), "{}", text(&out.stderr));
    assert_eq!(count(&c.dest[0], &dst, "dsm"), 0);
}

/// An array of a domain over the other side's element type (`int[]` into `dint[]`, and back;
/// `numeric(10,2)[]` into an array of a domain over `numeric(10,2)`) is no conversion either:
/// binary chosen and carried (`array_recv` reads the base element's form), nothing said to be
/// "rounded, cut" (recheck41 F4: it was, and a forced binary was refused as "stored wrong
/// without an error"). Another modifier (`numeric(10,1)`) still is a conversion.
#[test]
fn an_array_of_a_domain_over_the_same_type_copies_in_binary() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE DOMAIN dint AS int; CREATE DOMAIN dnum AS numeric(10,2);
         CREATE TABLE da (id int, arr int[], n numeric(10,2)[], back dint[]);
         INSERT INTO da VALUES (1, '{1,2}', '{1.25,2.5}', '{7}'), (2, '{3}', NULL, '{8,9}');",
    );
    let dst = database(
        &c.dest[0],
        "CREATE DOMAIN dint AS int; CREATE DOMAIN dnum AS numeric(10,2);
         CREATE TABLE da (id int, arr dint[], n dnum[], back int[]);
         CREATE TABLE dr (id int, arr dint[], n numeric(10,1)[], back int[]);",
    );
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
    let out = run(&["table", "da", "--from", &from, "--to", &to, "--dry-run"]);
    assert_exit(&out, 0);
    let said = text(&out.stdout) + &text(&out.stderr);
    assert!(said.contains("format: binary ("), "{said}");
    assert!(!said.contains("converts each value"), "{said}");
    let out = run(&[
        "table", "da", "--from", &from, "--to", &to, "--format", "binary",
    ]);
    assert_exit(&out, 0);
    assert_eq!(
        c.dest[0].psql(
            &dst,
            "SELECT arr::text || n::text || back::text FROM da WHERE id = 1"
        ),
        "{1,2}{1.25,2.50}{7}\n"
    );
    assert_eq!(count(&c.dest[0], &dst, "da"), 2);
    // Another modifier is a conversion (numeric(10,2) rounded into numeric(10,1)).
    let out = run(&[
        "table",
        "da",
        "--from",
        &from,
        "--to",
        &to,
        "--target-table",
        "dr",
        "--dry-run",
    ]);
    assert_exit(&out, 0);
    let said = text(&out.stdout) + &text(&out.stderr);
    assert!(
        said.contains("column \"n\" is numeric(10,2)[] on the source"),
        "{said}"
    );
    assert!(!said.contains("column \"arr\""), "{said}");
}

/// `varchar` into `text` under `--format binary`: one binary form, copied without a warning (it
/// warned "--format binary, but column "s" is character varying(5) … but text", which said
/// nothing wrong: types43 F4).
#[test]
fn varchar_into_text_in_binary_is_no_warning() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE vt (id int, s varchar(5)); INSERT INTO vt VALUES (1, 'abc');",
    );
    let d1 = database(&c.dest[0], "CREATE TABLE vt (id int, s text);");
    let out = run(&[
        "table",
        "vt",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&d1),
        "--format",
        "binary",
    ]);
    assert_exit(&out, 0);
    assert!(
        !text(&out.stderr).contains("warning"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(c.dest[0].psql(&d1, "SELECT s FROM vt").trim(), "abc");
}
