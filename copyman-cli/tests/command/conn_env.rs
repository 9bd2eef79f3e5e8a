//! libpq environment variables copyman once ignored, each checked against psql 15 under the same
//! environment: `PGREQUIRESSL` / `requiressl` (sslmode=require unless an sslmode is given: a
//! server without TLS is refused in libpq's words, nothing committed), and `PGTZ`,
//! `PGDATESTYLE`, `PGGEQO`, which libpq sends in its startup packet (a file loads as psql's
//! `\copy` loads it; the server applies them after a CONN's `options`, so they win over an
//! `options=-c timezone=…` under psql and copyman alike; a copy between servers still
//! round-trips exactly); and `PGSSLMINPROTOCOLVERSION` / `PGSSLMAXPROTOCOLVERSION`, honoured
//! instead of refused. Real clusters: the shared source and two destinations (no TLS), a
//! TLS-only one, and one limited to TLS 1.2.

use crate::common;

use std::fs;
use std::process::{Command, Output, Stdio};

use common::*;
use copyman_testkit::Cluster;

const T: &str = "CREATE TABLE t (id int8 PRIMARY KEY, v text);";
const FILL: &str = "INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 1000) g;";

/// A table with the values a session's time zone and date style read or write.
const TIMES: &str = "CREATE TABLE times (id int8 PRIMARY KEY, at timestamptz, d date);";

/// psql 15 (`psql -X -v ON_ERROR_STOP=1 -At -c COMMAND CONNINFO`) with a clean libpq environment
/// plus `env`: the reference copyman follows.
fn psql(conninfo: &str, command: &str, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new("psql");
    for (var, _) in std::env::vars_os() {
        if var.to_string_lossy().starts_with("PG") {
            cmd.env_remove(var);
        }
    }
    cmd.env("PGPASSFILE", "/nonexistent/copyman-test-pgpass");
    cmd.envs(env.iter().copied());
    cmd.args([
        "-X",
        "-v",
        "ON_ERROR_STOP=1",
        "-At",
        "-c",
        command,
        conninfo,
    ])
    .stdin(Stdio::null())
    .output()
    .expect("psql")
}

/// copyman with a clean libpq environment plus `env`.
fn copyman_with(args: &[&str], env: &[(&str, &str)]) -> Output {
    copyman()
        .envs(env.iter().copied())
        .args(args)
        .output()
        .expect("run copyman")
}

/// The rows of `times` as stored, independent of any session's settings: id, the instant in
/// epoch seconds, the date as YYYY-MM-DD.
fn stored_times(cluster: &Cluster, db: &str) -> Vec<String> {
    cluster
        .connect(db)
        .query(
            "SELECT id || ' ' || extract(epoch FROM at)::text || ' ' || to_char(d, 'YYYY-MM-DD') \
             FROM times ORDER BY id",
            &[],
        )
        .expect("read times")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Loads `file` into `times` of a fresh database on `cluster` with psql's `\copy` under `env`
/// (the CONN given `extra`); the database.
fn psql_load(cluster: &Cluster, file: &TempPath, extra: &str, env: &[(&str, &str)]) -> String {
    let db = database(cluster, TIMES);
    let conninfo = format!("{} {extra}", cluster.conninfo(&db));
    let out = psql(
        &conninfo,
        &format!("\\copy times FROM '{}'", file.arg()),
        env,
    );
    assert!(out.status.success(), "psql: {}", text(&out.stderr));
    db
}

/// Loads `file` into `times` of a fresh database on `cluster` with copyman under `env` (the
/// CONN given `extra`); the database.
fn copyman_load(cluster: &Cluster, file: &TempPath, extra: &str, env: &[(&str, &str)]) -> String {
    let db = database(cluster, TIMES);
    let conninfo = format!("{} {extra}", cluster.conninfo(&db));
    let out = copyman_with(
        &["table", "times", "--from", file.arg(), "--to", &conninfo],
        env,
    );
    assert_exit(&out, 0);
    db
}

/// A text COPY file with a timestamptz without an offset (read in the session's time zone) and
/// dates in day/month order (read as the session's DateStyle says).
fn times_file() -> TempPath {
    let file = TempPath::new("times.txt");
    fs::write(
        &file.0,
        "1\t2024-03-04 12:00:00\t04/03/2024\n2\t1999-12-31 23:30:00\t12/11/1999\n",
    )
    .unwrap();
    file
}

// Point 1: PGREQUIRESSL and requiressl.

#[test]
fn pgrequiressl_refuses_a_server_without_tls_in_libpqs_words_and_commits_nothing() {
    let c = clusters();
    let src = database(&c.source, &format!("{T}{FILL}"));
    let dst = database(&c.dest[0], T);
    let from = c.source.conninfo(&src);
    let to = c.dest[0].conninfo(&dst);
    let words = "does not support SSL, but SSL was required";

    // psql 15 refuses, in these words.
    let out = psql(&from, "SELECT 1", &[("PGREQUIRESSL", "1")]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains(words), "{}", text(&out.stderr));

    // So does copyman: exit 3 as any connection failure, nothing anywhere, no session left.
    let out = copyman_with(
        &["table", "t", "--from", &from, "--to", &to],
        &[("PGREQUIRESSL", "1")],
    );
    assert_exit(&out, 3);
    let stderr = text(&out.stderr);
    assert!(stderr.contains(words), "{stderr}");
    assert!(!stderr.contains(c.source.password()), "{stderr}");
    assert_eq!(count(&c.dest[0], &dst, "t"), 0);
    assert_eq!(settle_backends(&c.source, &src), Vec::<String>::new());
    assert_eq!(settle_backends(&c.dest[0], &dst), Vec::<String>::new());

    // The keyword in one CONN only (the destination's): the source connected, the destination
    // refused; nothing committed, the source's session gone.
    let out = copyman_with(
        &[
            "table",
            "t",
            "--from",
            &from,
            "--to",
            &format!("{to} requiressl=1"),
        ],
        &[],
    );
    assert_exit(&out, 3);
    let stderr = text(&out.stderr);
    assert!(stderr.contains(words), "{stderr}");
    assert!(!stderr.contains("committed on"), "{stderr}");
    assert_eq!(count(&c.dest[0], &dst, "t"), 0);
    assert_eq!(settle_backends(&c.source, &src), Vec::<String>::new());
    assert_eq!(settle_backends(&c.dest[0], &dst), Vec::<String>::new());
}

#[test]
fn pgrequiressl_gives_way_to_a_given_sslmode_as_in_libpq() {
    let c = clusters();
    let src = database(&c.source, &format!("{T}{FILL}"));
    let dst = database(&c.dest[1], T);
    let from = c.source.conninfo(&src);
    let to = c.dest[1].conninfo(&dst);
    let env = [("PGREQUIRESSL", "1"), ("PGSSLMODE", "disable")];

    let out = psql(&from, "SELECT 1", &env);
    assert!(out.status.success(), "psql: {}", text(&out.stderr));
    let out = copyman_with(&["table", "t", "--from", &from, "--to", &to], &env);
    assert_exit(&out, 0);
    assert_eq!(digest(&c.dest[1], &dst, "t"), digest(&c.source, &src, "t"));

    // An sslmode in the CONN wins as well (and so does a later sslmode over requiressl).
    let dst2 = database(&c.dest[1], T);
    let to2 = format!("{} requiressl=1 sslmode=disable", c.dest[1].conninfo(&dst2));
    let out = copyman_with(
        &[
            "table",
            "t",
            "--from",
            &format!("{from} sslmode=disable"),
            "--to",
            &to2,
        ],
        &[("PGREQUIRESSL", "1")],
    );
    assert_exit(&out, 0);
    assert_eq!(digest(&c.dest[1], &dst2, "t"), digest(&c.source, &src, "t"));
}

#[test]
fn pgrequiressl_connects_over_tls_where_the_server_speaks_it() {
    let c = clusters();
    let tls = tls_cluster();
    let src = database(tls, &format!("{T}{FILL}"));
    let dst = database(&c.dest[0], T);
    let from = format!("{} connect_timeout=10", tls.conninfo(&src));
    let out = copyman_with(
        &[
            "copy",
            "--from",
            &from,
            "--send",
            "COPY (SELECT ssl, version IS NOT NULL FROM pg_stat_ssl \
             WHERE pid = pg_backend_pid()) TO STDOUT",
            "--to",
            "-",
        ],
        &[("PGREQUIRESSL", "1")],
    );
    assert_exit(&out, 0);
    assert_eq!(text(&out.stdout), "t\tt\n");

    // The destination has no TLS: its CONN's sslmode wins over PGREQUIRESSL.
    let to = format!("{} sslmode=prefer", c.dest[0].conninfo(&dst));
    let out = copyman_with(
        &["table", "t", "--from", &from, "--to", &to],
        &[("PGREQUIRESSL", "1")],
    );
    assert_exit(&out, 0);
    assert_eq!(digest(&c.dest[0], &dst, "t"), digest(tls, &src, "t"));
}

// Point 2: PGTZ, PGDATESTYLE, PGGEQO.

#[test]
fn a_file_loads_under_pgtz_and_pgdatestyle_as_psql_copy_loads_it() {
    let c = clusters();
    let file = times_file();
    let env = [("PGTZ", "Asia/Tokyo"), ("PGDATESTYLE", "SQL, DMY")];
    let by_psql = psql_load(&c.dest[0], &file, "", &env);
    let by_copyman = copyman_load(&c.dest[1], &file, "", &env);
    let stored = stored_times(&c.dest[1], &by_copyman);
    assert_eq!(stored, stored_times(&c.dest[0], &by_psql));
    // 12:00 in Tokyo is 03:00 UTC; 04/03 is the 4th of March.
    assert_eq!(
        stored,
        [
            "1 1709521200.000000 2024-03-04",
            "2 946650600.000000 1999-11-12"
        ]
    );
}

#[test]
fn pgtz_and_pgdatestyle_win_over_options_as_the_server_applies_them_after() {
    // The server applies the startup packet's `options` first and the settings libpq adds from
    // the environment after them: under psql, PGTZ and PGDATESTYLE win over the CONN's
    // `options`. copyman sends the same packet, so the same values are stored.
    let c = clusters();
    let file = times_file();
    let options = "options='-c timezone=America/New_York -c DateStyle=ISO,MDY'";
    let env = [("PGTZ", "Asia/Tokyo"), ("PGDATESTYLE", "ISO, DMY")];
    let by_psql = psql_load(&c.dest[0], &file, options, &env);
    let by_copyman = copyman_load(&c.dest[1], &file, options, &env);
    let stored = stored_times(&c.dest[1], &by_copyman);
    assert_eq!(stored, stored_times(&c.dest[0], &by_psql));
    assert_eq!(
        stored,
        [
            "1 1709521200.000000 2024-03-04",
            "2 946650600.000000 1999-11-12"
        ]
    );
    // Without the environment, the options' New York and month/day order.
    let by_psql = psql_load(&c.dest[0], &file, options, &[]);
    let by_copyman = copyman_load(&c.dest[1], &file, options, &[]);
    let stored = stored_times(&c.dest[1], &by_copyman);
    assert_eq!(stored, stored_times(&c.dest[0], &by_psql));
    assert_eq!(
        stored,
        [
            "1 1709571600.000000 2024-04-03",
            "2 946701000.000000 1999-12-11"
        ]
    );
}

#[test]
fn pgtz_and_pggeqo_reach_the_session_as_under_psql() {
    let c = clusters();
    let db = database(&c.source, "");
    let conninfo = c.source.conninfo(&db);
    let env = [("PGTZ", "Asia/Kathmandu"), ("PGGEQO", "off")];
    let query = "SELECT current_setting('TimeZone'), current_setting('geqo')";
    let out = psql(&conninfo, query, &env);
    assert!(out.status.success(), "psql: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "Asia/Kathmandu|off\n");
    let out = copyman_with(
        &[
            "copy",
            "--from",
            &conninfo,
            "--send",
            &format!("COPY ({query}) TO STDOUT"),
            "--to",
            "-",
        ],
        &env,
    );
    assert_exit(&out, 0);
    assert_eq!(text(&out.stdout), "Asia/Kathmandu\toff\n");
}

#[test]
fn an_empty_pgtz_is_refused_by_the_server_as_under_psql() {
    let c = clusters();
    let file = times_file();
    let db = database(&c.dest[0], TIMES);
    let conninfo = c.dest[0].conninfo(&db);
    let words = "invalid value for parameter \"TimeZone\": \"\"";
    let out = psql(&conninfo, "SELECT 1", &[("PGTZ", "")]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains(words), "{}", text(&out.stderr));
    let out = copyman_with(
        &["table", "times", "--from", file.arg(), "--to", &conninfo],
        &[("PGTZ", "")],
    );
    assert_exit(&out, 3);
    assert!(text(&out.stderr).contains(words), "{}", text(&out.stderr));
    assert_eq!(count(&c.dest[0], &db, "times"), 0);
}

#[test]
fn a_copy_between_servers_under_pgtz_and_pgdatestyle_round_trips_exactly() {
    // Asia/Kolkata is written `IST` in the SQL date style, which PostgreSQL reads back as
    // Israel's: a copy in that style would move every value. Server to server, copyman keeps the
    // portable ISO style (numeric offsets) whatever PGDATESTYLE says, and PGTZ only changes the
    // offsets written, never the instants. (Text format: binary would carry no style at all.)
    let c = clusters();
    let table = "CREATE TABLE times (id int8 PRIMARY KEY, at timestamptz, d date, \
                 ts timestamp, tt timetz, i interval);";
    let src = database(
        &c.source,
        &format!(
            "{table} INSERT INTO times SELECT g, \
             timestamptz '1880-01-01 00:00:00+00' + g * interval '7 days 3 hours 17 minutes', \
             date '1880-01-01' + g, timestamp '2024-02-29 23:59:59.5' - g * interval '1 hour', \
             timetz '12:34:56+05:45', g * interval '1 day 2 hours' \
             FROM generate_series(1, 10000) g; \
             INSERT INTO times VALUES (0, 'infinity', '-infinity', 'infinity', NULL, NULL);"
        ),
    );
    let dst = database(&c.dest[0], table);
    let env = [("PGTZ", "Asia/Kolkata"), ("PGDATESTYLE", "SQL, DMY")];
    let out = copyman_with(
        &[
            "table",
            "times",
            "--format",
            "text",
            "--from",
            &c.source.conninfo(&src),
            "--to",
            &c.dest[0].conninfo(&dst),
        ],
        &env,
    );
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[0], &dst, "times"), 10_001);
    assert_eq!(
        digest(&c.dest[0], &dst, "times"),
        digest(&c.source, &src, "times")
    );
    let epochs = |cluster: &Cluster, db: &str| -> String {
        cluster
            .connect(db)
            .query_one(
                "SELECT md5(string_agg(extract(epoch FROM at)::text, ',' ORDER BY id)) FROM times",
                &[],
            )
            .unwrap()
            .get(0)
    };
    assert_eq!(epochs(&c.dest[0], &dst), epochs(&c.source, &src));
}

// Point 3: the TLS version bounds, honoured instead of refused.

/// The TLS version of the session that runs the query, as copyman (a `copy` to stdout) and as
/// psql see it under `env`.
fn tls_versions(conninfo: &str, env: &[(&str, &str)]) -> (String, String) {
    let query = "SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
    let out = copyman_with(
        &[
            "copy",
            "--from",
            conninfo,
            "--send",
            &format!("COPY ({query}) TO STDOUT"),
            "--to",
            "-",
        ],
        env,
    );
    assert_exit(&out, 0);
    let by_psql = psql(conninfo, query, env);
    assert!(by_psql.status.success(), "psql: {}", text(&by_psql.stderr));
    (text(&out.stdout), text(&by_psql.stdout))
}

#[test]
fn pgsslmaxprotocolversion_tls12_connects_with_tls12_as_psql_does() {
    let tls = tls_cluster();
    let db = tls.create_database();
    let conninfo = format!("{} sslmode=require connect_timeout=10", tls.conninfo(&db));
    let (copyman, psql) = tls_versions(&conninfo, &[]);
    assert_eq!(
        (copyman.as_str(), psql.as_str()),
        ("TLSv1.3\n", "TLSv1.3\n")
    );
    let (copyman, psql) = tls_versions(&conninfo, &[("PGSSLMAXPROTOCOLVERSION", "TLSv1.2")]);
    assert_eq!(
        (copyman.as_str(), psql.as_str()),
        ("TLSv1.2\n", "TLSv1.2\n")
    );
}

#[test]
fn pgsslminprotocolversion_tls13_refuses_a_server_of_tls12_as_psql_does() {
    let c = clusters();
    let (server, _) = copyman_testkit::tls_1_2();
    let src = database(&server, &format!("{T}{FILL}"));
    let from = format!(
        "{} sslmode=require connect_timeout=10",
        server.conninfo(&src)
    );
    let dst = database(&c.dest[0], T);
    let to = c.dest[0].conninfo(&dst);
    let (copyman, psql_saw) = tls_versions(&from, &[]);
    assert_eq!(
        (copyman.as_str(), psql_saw.as_str()),
        ("TLSv1.2\n", "TLSv1.2\n")
    );

    let env = [("PGSSLMINPROTOCOLVERSION", "TLSv1.3")];
    assert!(!psql(&from, "SELECT 1", &env).status.success());
    let out = copyman_with(&["table", "t", "--from", &from, "--to", &to], &env);
    assert_exit(&out, 3);
    let stderr = text(&out.stderr);
    // psql: "SSL error: tlsv1 alert protocol version".
    assert!(
        stderr.contains("TLS handshake") && stderr.contains("ProtocolVersion"),
        "{stderr}"
    );
    assert!(!stderr.contains(server.password()), "{stderr}");
    assert_eq!(count(&c.dest[0], &dst, "t"), 0);
    assert_eq!(settle_backends(&c.dest[0], &dst), Vec::<String>::new());
}
