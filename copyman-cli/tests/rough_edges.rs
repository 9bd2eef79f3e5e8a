//! Rough edges testers found: `--dry-run` deciding a database given twice as the run does,
//! compressed input refused before anything is sent, a row count mismatch naming its way out,
//! and a `--receive` table spelled another way (`U&"…"`, quotes, a schema) still recognised as
//! the same table. Real clusters, shared by the binary; a fresh database per test.

mod common;

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
            "destinations 1 and 2 are the same database",
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
            "destinations 1 and 2 are the same database",
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
