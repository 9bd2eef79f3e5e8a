//! Connection strings as libpq reads them, against real clusters (copyman-testkit): mistyped URLs,
//! services, PGOPTIONS, client_encoding, passfile, application names, hostaddr, the OS user name,
//! `postgresql://:port`, options copyman cannot honour, and `-W`.

use crate::common;

use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::*;

/// `copyman` with no libpq variable at all and an empty home directory (no `~/.pgpass`, no
/// `~/.pg_service.conf`), so each test says exactly what the environment holds.
fn cm(home: &TempDir) -> Command {
    let mut cmd = copyman();
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("PG") {
            cmd.env_remove(name);
        }
    }
    cmd.env("HOME", home.arg());
    cmd.env("PGSYSCONFDIR", home.0.join("no-sysconf"));
    cmd
}

fn output(cmd: &mut Command) -> Output {
    cmd.output().expect("run copyman")
}

/// What `COPY (SELECT …) TO STDOUT` prints on the source `conn`.
fn select(cmd: &mut Command, conn: &str, expressions: &str) -> Output {
    output(cmd.args([
        "copy",
        "--from",
        conn,
        "--send",
        &format!("COPY (SELECT {expressions}) TO STDOUT"),
        "--to",
        "-",
    ]))
}

#[test]
fn mistyped_url_is_a_usage_error_and_never_prints_its_password() {
    let c = clusters();
    let db = database(&c.dest[0], "CREATE TABLE t (i int)");
    let home = TempDir::new("home");
    let secret = "Sup3rSecretPw";
    let good = c.dest[0].conninfo(&db);
    for bad in [
        format!(
            "postgresql:/postgres:{secret}@127.0.0.1:{}/{db}",
            c.source.port()
        ),
        format!(
            "postgresql//postgres:{secret}@127.0.0.1:{}/{db}",
            c.source.port()
        ),
        format!("postgres:postgres:{secret}@127.0.0.1/{db}"),
    ] {
        for args in [
            ["table", "t", "--from", &bad, "--to", &good, "--json"],
            ["table", "t", "--from", &good, "--to", &bad, "--json"],
        ] {
            let out = output(cm(&home).args(args));
            assert_exit(&out, 2);
            let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
            assert!(!stderr.contains(secret), "{stderr}");
            assert!(!stdout.contains(secret), "{stdout}");
            assert!(stderr.contains("postgres:***@"), "{stderr}");
            assert!(stderr.contains("not a valid connection URL"), "{stderr}");
            assert_eq!(json(&out)["exit_code"], 2, "{stdout}");
        }
    }
    // A file:// URL, as many tools take a file: told to give the path (files42 F6: only how
    // to write a server's URL was said).
    for args in [
        ["table", "t", "--from", "file:///tmp/x.csv", "--to", &good],
        ["table", "t", "--from", &good, "--to", "file:///tmp/x.csv"],
    ] {
        let out = output(cm(&home).args(args));
        assert_exit(&out, 2);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("file:// URLs are not read: give the file's path (/tmp/x.csv;"),
            "{stderr}"
        );
    }
    // A file path that looks like it holds a password is shown without it.
    let missing = format!("./postgres:{secret}@nowhere.csv");
    let out = output(cm(&home).args(["table", "t", "--from", &missing, "--to", &good, "--json"]));
    // A missing source file is the command's to mend: exit 2, before connecting.
    assert_exit(&out, 2);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        !stderr.contains(secret) && !stdout.contains(secret),
        "{stderr}{stdout}"
    );
    assert!(stderr.contains("./postgres:***@nowhere.csv"), "{stderr}");
    assert_eq!(count(&c.dest[0], &db, "t"), 0);
}

#[test]
fn service_files_name_the_clusters() {
    let c = clusters();
    let src = database(&c.source, &format!("{ITEMS}{FILL_ITEMS}"));
    let d1 = database(&c.dest[0], ITEMS);
    let d2 = database(&c.dest[1], ITEMS);
    let other = database(&c.dest[0], ITEMS);
    let home = TempDir::new("home");
    let section = |name: &str, port: u16, db: &str| {
        format!("[{name}]\nhost=127.0.0.1\nport={port}\nuser=postgres\ndbname={db}\n")
    };
    let user_file = home.file(
        "services.conf",
        format!(
            "# copyman test\n{}\n{}",
            section("source", c.source.port(), &src),
            section("first", c.dest[0].port(), &d1)
        )
        .as_bytes(),
    );
    // The system file also has a `source`, on a port where nothing listens: the user's wins.
    let sysconf = TempDir::new("sysconf");
    sysconf.file(
        "pg_service.conf",
        format!(
            "{}{}",
            section("source", 1, &src),
            section("second", c.dest[1].port(), &d2)
        )
        .as_bytes(),
    );
    let out = output(
        cm(&home)
            .env("PGSERVICEFILE", &user_file)
            .env("PGSYSCONFDIR", sysconf.arg())
            .env("PGSERVICE", "second")
            .args(["table", "items", "--from", "service=source", "--json"])
            // The environment's defaults (PGSERVICE): an empty URL, as an empty CONN is
            // refused (a script's unset variable wrote into the default server).
            .args(["--to", "service=first", "--to", "postgresql://"]),
    );
    assert_exit(&out, 0);
    let expected = digest(&c.source, &src, "items");
    assert_eq!(expected.0, 1000);
    assert_eq!(digest(&c.dest[0], &d1, "items"), expected);
    assert_eq!(digest(&c.dest[1], &d2, "items"), expected);

    // A parameter given explicitly wins over the service's; ~/.pg_service.conf is the user
    // file when PGSERVICEFILE is unset.
    fs::copy(&user_file, home.0.join(".pg_service.conf")).unwrap();
    let out = output(cm(&home).args([
        "table",
        "items",
        "--from",
        "postgresql:///?service=source",
        "--to",
        &format!("service=first dbname={other}"),
    ]));
    assert_exit(&out, 0);
    assert_eq!(digest(&c.dest[0], &other, "items"), expected);

    let out = output(cm(&home).args(["table", "items", "--from", "service=nowhere", "--to", "-"]));
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("definition of service \"nowhere\" not found"),
        "{}",
        text(&out.stderr)
    );

    // A service file given as a pipe (`PGSERVICEFILE=<(…)`), written once: every CONN's
    // service is read from it (conn68 F5: the second CONN found it empty, "not found").
    let pipe = home.0.join("services.pipe");
    assert!(
        Command::new("mkfifo")
            .arg(&pipe)
            .status()
            .unwrap()
            .success()
    );
    let services = fs::read(&user_file).unwrap();
    let writer = {
        let pipe = pipe.clone();
        std::thread::spawn(move || fs::write(pipe, services).unwrap())
    };
    let out = output(
        cm(&home)
            .env("PGSERVICEFILE", &pipe)
            .args([
                "table",
                "items",
                "--from",
                "service=source",
                "--to",
                "service=first",
            ])
            .arg("--dry-run"),
    );
    writer.join().unwrap();
    assert_exit(&out, 0);
}

#[test]
fn pgoptions_search_path_takes_effect() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE t (i int, s text); INSERT INTO t SELECT g, 'r' || g FROM generate_series(1, 50) g",
    );
    let dst = database(
        &c.dest[0],
        "CREATE SCHEMA loading; CREATE TABLE loading.t (i int, s text)",
    );
    let home = TempDir::new("home");
    let copy = |cmd: &mut Command, to: &str| {
        output(
            cmd.args(["copy", "--from", &c.source.conninfo(&src)])
                .args([
                    "--send",
                    // PGOPTIONS applies to the source too: its table is named in full.
                    "COPY public.t TO STDOUT",
                    "--to",
                    to,
                    "--receive",
                    "COPY t FROM STDIN",
                ]),
        )
    };
    // Without the search path, `t` is not found on the destination (exit 2, before anything).
    let out = copy(&mut cm(&home), &c.dest[0].conninfo(&dst));
    assert_exit(&out, 2);
    assert!(text(&out.stderr).contains("42P01"), "{}", text(&out.stderr));
    assert_eq!(count(&c.dest[0], &dst, "loading.t"), 0);

    let out = copy(
        cm(&home).env("PGOPTIONS", "-c search_path=loading"),
        &c.dest[0].conninfo(&dst),
    );
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[0], &dst, "loading.t"), 50);

    // `options` in a URL does the same.
    let url = format!("{}?options=-c%20search_path%3Dloading", c.dest[0].url(&dst));
    let out = copy(&mut cm(&home), &url);
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[0], &dst, "loading.t"), 100);
}

#[test]
fn client_encoding_latin1_copies_non_ascii_text() {
    let c = clusters();
    let dst = database(&c.dest[0], "CREATE TABLE t (i int, s text)");
    let home = TempDir::new("home");
    let words = "café naïve Straße";
    let latin1: Vec<u8> = format!("1\t{words}\n")
        .chars()
        .map(|ch| u8::try_from(u32::from(ch)).unwrap())
        .collect();
    let file = home.file("latin1.txt", &latin1);
    let file = file.to_str().unwrap();
    let load = |cmd: &mut Command, to: &str| {
        output(cmd.args([
            "copy",
            "--from",
            file,
            "--to",
            to,
            "--receive",
            "COPY t FROM STDIN",
        ]))
    };
    // Read as UTF8 (copyman's default), the bytes are not text: nothing is committed.
    let out = load(&mut cm(&home), &c.dest[0].conninfo(&dst));
    assert_exit(&out, 1);
    assert!(text(&out.stderr).contains("22021"), "{}", text(&out.stderr));
    assert_eq!(count(&c.dest[0], &dst, "t"), 0);

    let conn = format!("{} client_encoding=LATIN1", c.dest[0].conninfo(&dst));
    let out = load(&mut cm(&home), &conn);
    assert_exit(&out, 0);
    let stored: String = c.dest[0]
        .connect(&dst)
        .query_one("SELECT s FROM t", &[])
        .unwrap()
        .get(0);
    assert_eq!(stored, words);

    // Servers that would read the bytes in another encoding than they were written in: refused
    // before anything happens.
    let src = database(&c.source, "CREATE TABLE t (i int, s text)");
    let out = output(cm(&home).args([
        "table",
        "t",
        "--from",
        &format!("{} client_encoding=LATIN1", c.source.conninfo(&src)),
        "--to",
        &c.dest[0].conninfo(&dst),
    ]));
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("client_encoding differs") && stderr.contains("(LATIN1)"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &dst, "t"), 1);

    // PGCLIENTENCODING on the way out: the server converts to LATIN1 bytes.
    let out = select(
        cm(&home).env("PGCLIENTENCODING", "LATIN1"),
        &c.dest[0].conninfo(&dst),
        "i, s FROM t",
    );
    assert_exit(&out, 0);
    assert_eq!(out.stdout, latin1);
}

#[test]
fn passfile_parameter_supplies_the_password() {
    let cluster = scram_cluster();
    let home = TempDir::new("home");
    let port = cluster.port();
    let right = home.file(
        "right.pgpass",
        format!("127.0.0.1:{port}:*:postgres:{}\n", cluster.password()).as_bytes(),
    );
    let wrong = home.file("wrong.pgpass", b"*:*:*:*:not-the-password\n");
    let conn = format!(
        "host=127.0.0.1 port={port} user=postgres dbname=postgres passfile='{}'",
        right.display()
    );
    // `passfile` in the CONN wins over PGPASSFILE.
    let out = select(cm(&home).env("PGPASSFILE", &wrong), &conn, "'in'");
    assert_exit(&out, 0);
    assert_eq!(text(&out.stdout), "in\n");
    // Without it, PGPASSFILE's wrong password: an authentication failure.
    let without = conn.split(" passfile").next().unwrap().to_owned();
    let out = select(cm(&home).env("PGPASSFILE", &wrong), &without, "'in'");
    assert_exit(&out, 3);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("28P01"), "{stderr}");
    // Which file the wrong password came from, as libpq says it.
    assert!(
        stderr.contains(&format!(
            "password retrieved from file \"{}\"",
            wrong.display()
        )),
        "{stderr}"
    );
}

#[test]
fn fallback_application_name_and_application_name() {
    let c = clusters();
    let home = TempDir::new("home");
    let base = c.source.conninfo("postgres");
    let name = |cmd: &mut Command, conn: &str| {
        let out = select(cmd, conn, "current_setting('application_name')");
        assert_exit(&out, 0);
        text(&out.stdout)
    };
    assert_eq!(name(&mut cm(&home), &base), "copyman\n");
    let fallback = format!("{base} fallback_application_name=nightly-load");
    assert_eq!(name(&mut cm(&home), &fallback), "nightly-load\n");
    assert_eq!(
        name(cm(&home).env("PGAPPNAME", "from-env"), &fallback),
        "from-env\n"
    );
    assert_eq!(
        name(
            &mut cm(&home),
            &format!("{fallback} application_name=explicit")
        ),
        "explicit\n"
    );
}

#[test]
fn hostaddr_with_host_verifies_and_looks_up_the_host_name() {
    let cluster = tls_cluster();
    let files = cluster.tls_files().expect("TLS cluster");
    let home = TempDir::new("home");
    let port = cluster.port();
    // The password only in the password file, under the host name, not the address.
    let pgpass = home.file(
        "pgpass",
        format!("localhost:{port}:*:postgres:{}\n", cluster.password()).as_bytes(),
    );
    let conn = |host: &str| {
        format!(
            "host={host} hostaddr=127.0.0.1 port={port} user=postgres dbname=postgres \
             sslmode=verify-full sslrootcert='{}'",
            files.ca_cert.display()
        )
    };
    let out = select(
        cm(&home).env("PGPASSFILE", &pgpass),
        &conn("localhost"),
        "inet_server_addr()",
    );
    assert_exit(&out, 0);
    assert_eq!(text(&out.stdout), "127.0.0.1\n");

    // A name that resolves nowhere: the connection still goes to hostaddr, and the certificate
    // (issued for localhost) is checked against that name.
    let out = select(
        cm(&home).env("PGPASSFILE", &pgpass),
        &conn("db.invalid"),
        "1",
    );
    assert_exit(&out, 3);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("not valid for name"), "{stderr}");
}

#[test]
fn os_user_name_is_the_default_user() {
    let c = clusters();
    let os_user = Command::new("id").arg("-un").output().unwrap();
    let os_user = text(&os_user.stdout).trim().to_owned();
    c.source
        .connect("postgres")
        .batch_execute(&format!(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{os_user}') THEN \
             CREATE ROLE \"{os_user}\" LOGIN SUPERUSER; END IF; END $$"
        ))
        .unwrap();
    let home = TempDir::new("home");
    let conn = format!("host=127.0.0.1 port={} dbname=postgres", c.source.port());
    let out = select(
        cm(&home).env_remove("USER").env_remove("LOGNAME"),
        &conn,
        "current_user",
    );
    assert_exit(&out, 0);
    assert_eq!(text(&out.stdout).trim(), os_user);
}

#[test]
fn url_with_only_a_port() {
    let c = clusters();
    let home = TempDir::new("home");
    let url = format!("postgresql://:{}/postgres?user=postgres", c.source.port());
    // The host from PGHOST: the cluster's socket directory.
    let out = select(
        cm(&home).env("PGHOST", c.source.socket_dir()),
        &url,
        "coalesce(inet_server_addr()::text, 'unix')",
    );
    assert_exit(&out, 0);
    assert_eq!(text(&out.stdout), "unix\n");
    // No PGHOST: libpq's default, the default socket directory alone (not `localhost` after
    // it, where a forwarded port may be another server).
    let out = select(&mut cm(&home), &url, "'tcp'");
    assert_exit(&out, 3);
    assert!(
        text(&out.stderr).contains(&format!("/var/run/postgresql/.s.PGSQL.{}", c.source.port())),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn options_copyman_cannot_honour_are_usage_errors() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE t (i int); INSERT INTO t SELECT generate_series(1, 10)",
    );
    let dst = database(&c.dest[0], "CREATE TABLE t (i int)");
    let home = TempDir::new("home");
    for (option, key) in [
        ("gssencmode=require", "gssencmode"),
        ("sslcrl=/tmp/crl.pem", "sslcrl"),
        ("sslpassword=hush-7731", "sslpassword"),
        ("require_auth=scram-sha-256", "require_auth"),
        ("load_balance_hosts=random", "load_balance_hosts"),
    ] {
        let to = format!("{} {option}", c.dest[0].conninfo(&dst));
        let out = output(
            cm(&home)
                .args(["table", "t", "--from", &c.source.conninfo(&src)])
                .args(["--to", &to, "--json"]),
        );
        assert_exit(&out, 2);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(&format!("connection option \"{key}\""))
                && stderr.contains("not supported"),
            "{option}: {stderr}"
        );
        assert!(!stderr.contains("hush-7731"), "{stderr}");
        assert!(!stderr.contains(c.dest[0].password()), "{stderr}");
    }
    // From the environment too, named by its variable.
    let out = output(cm(&home).env("PGGSSENCMODE", "require").args([
        "table",
        "t",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        "-",
    ]));
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("PGGSSENCMODE"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &dst, "t"), 0);

    // The harmless ones are accepted, and the copy happens (the GSSAPI ones as by a libpq built
    // without GSSAPI).
    let to = format!(
        "{} connect_timeout=10 keepalives=1 keepalives_idle=30 keepalives_interval=5 \
         keepalives_count=3 sslnegotiation=postgres target_session_attrs=any gssencmode=disable \
         sslcompression=0 gssencmode=prefer krbsrvname=postgres gsslib=gssapi",
        c.dest[0].conninfo(&dst)
    );
    let out = output(cm(&home).args([
        "table",
        "t",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &to,
    ]));
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[0], &dst, "t"), 10);
}

#[test]
fn invalid_connection_string_is_said_once() {
    let home = TempDir::new("home");
    for (conn, expected) in [
        (
            "host=127.0.0.1 bogus_option=1",
            "--from: invalid connection string: invalid connection option \"bogus_option\"",
        ),
        (
            "postgresql://127.0.0.1/db?bogus=1",
            "--from: invalid connection string: invalid URL query parameter \"bogus\"",
        ),
    ] {
        let out = output(cm(&home).args(["table", "t", "--from", conn, "--to", "-"]));
        assert_exit(&out, 2);
        let stderr = text(&out.stderr);
        assert!(stderr.contains(expected), "{stderr}");
        assert_eq!(
            stderr.matches("invalid connection string").count(),
            1,
            "{stderr}"
        );
    }
    // Among several --to, the refusal names its destination, and --json's `server` (conn42
    // F1: "--to:" only).
    let out = output(cm(&home).args([
        "--json",
        "table",
        "t",
        "--from",
        "host=127.0.0.1 dbname=a",
        "--to",
        "host=127.0.0.1 dbname=b",
        "--to",
        "host=127.0.0.1 dbname=c keepalives=x",
    ]));
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "--to of destination 2: invalid integer value \"x\" for connection option \"keepalives\""
        ),
        "{stderr}"
    );
    assert_eq!(json(&out)["server"], "destination 2");
}

/// `setsid -w`: copyman in a session of its own, which has no controlling terminal.
fn without_terminal(home: &TempDir, args: &[&str]) -> Output {
    let mut cmd = Command::new("setsid");
    cmd.arg("-w").arg(env!("CARGO_BIN_EXE_copyman")).args(args);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("PG") {
            cmd.env_remove(name);
        }
    }
    cmd.env("HOME", home.arg()).stdin(Stdio::null());
    cmd.output().expect("run setsid copyman")
}

#[test]
fn password_prompt_without_a_terminal_is_a_clear_error() {
    let cluster = scram_cluster();
    let home = TempDir::new("home");
    let conn = format!(
        "host=127.0.0.1 port={} user=postgres dbname=postgres",
        cluster.port()
    );
    let file = TempPath::new("never-written.txt");
    for flag in [["-W", "copy"], ["copy", "--password"]] {
        let mut args = flag.to_vec();
        args.extend([
            "--from",
            &conn,
            "--send",
            "COPY (SELECT 1) TO STDOUT",
            "--to",
            file.arg(),
            "--json",
        ]);
        let out = without_terminal(&home, &args);
        assert_exit(&out, 2);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("-W/--password: cannot prompt for a password: no terminal"),
            "{stderr}"
        );
        assert_eq!(json(&out)["exit_code"], 2);
    }
    // The other mistakes are found first: nobody is asked for a password in vain.
    let out = without_terminal(
        &home,
        &["-W", "table", "t", "--from", "host=h bogus=1", "--to", "-"],
    );
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("bogus") && !stderr.contains("terminal"),
        "{stderr}"
    );
}

/// Runs copyman under `script`, which gives it a pseudo-terminal, and types `typed` once the
/// terminal shows `prompt`; returns the exit status and what the terminal showed.
fn on_a_terminal(home: &Path, args: &[&str], prompt: &str, typed: &str) -> (Output, String) {
    use std::io::{Read, Write};
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let command: Vec<String> = std::iter::once(env!("CARGO_BIN_EXE_copyman"))
        .chain(args.iter().copied())
        .map(quote)
        .collect();
    let mut cmd = Command::new("script");
    cmd.args(["-q", "-e", "-c", &command.join(" "), "/dev/null"]);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("PG") {
            cmd.env_remove(name);
        }
    }
    cmd.env("HOME", home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let mut child = cmd.spawn().expect("run script");
    let mut stdout = child.stdout.take().unwrap();
    let mut stdin = child.stdin.take();
    let mut screen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        // Ends at the latest when copyman exits (the terminal closes).
        let n = stdout.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        screen.extend_from_slice(&buf[..n]);
        if String::from_utf8_lossy(&screen).contains(prompt)
            && let Some(mut input) = stdin.take()
        {
            input.write_all(typed.as_bytes()).unwrap();
        }
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    (out, text(&screen))
}

#[test]
fn password_prompt_on_a_terminal() {
    let cluster = scram_cluster();
    let home = TempDir::new("home");
    let conn = format!(
        "host=127.0.0.1 port={} user=postgres dbname=postgres",
        cluster.port()
    );
    let (out, screen) = on_a_terminal(
        &home.0,
        &[
            "-W",
            "copy",
            "--from",
            &conn,
            "--send",
            "COPY (SELECT 'prompted') TO STDOUT",
            "--to",
            "-",
        ],
        "Password: ",
        &format!("{}\n", cluster.password()),
    );
    assert_exit(&out, 0);
    assert!(screen.contains("prompted"), "{screen}");
    // Asked once, and what was typed is not shown.
    assert_eq!(screen.matches("Password: ").count(), 1, "{screen}");
    assert!(!screen.contains(cluster.password()), "{screen}");
}

/// A key=value CONN or a URL holding a byte that is not UTF-8 (a LATIN1 `dbname=café`, a
/// password with `ä` in a LATIN1 script) is refused by name, exit 2: it was taken for a file, the
/// rows written to `./host=… password=…`, exit 0, the password in a file name (conn40 F8). A
/// file name that is not UTF-8 stays a file.
#[test]
fn a_conn_that_is_not_utf8_is_refused_not_taken_for_a_file() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE t (i int); INSERT INTO t VALUES (1)",
    );
    let dir = TempDir::new("not-utf8");
    for conn in [
        &b"host=127.0.0.1 port=1 user=postgres dbname=caf\xe9"[..],
        b"host=127.0.0.1 port=1 user=app dbname=x password=S3cr\xff",
        b"postgresql://app:S3cr\xff@127.0.0.1:1/x",
    ] {
        let out = copyman()
            .current_dir(dir.path("."))
            .args(["table", "t", "--from", &c.source.conninfo(&src), "--to"])
            .arg(OsStr::from_bytes(conn))
            .output()
            .unwrap();
        assert_exit(&out, 2);
        let said = text(&out.stderr);
        assert!(
            said.contains("is a connection string that is not valid UTF-8"),
            "{said}"
        );
        assert!(!said.contains("S3cr"), "{said}");
        assert_eq!(fs::read_dir(dir.path(".")).unwrap().count(), 0, "{said}");
    }
    // A file name that is not UTF-8: a file.
    let out = copyman()
        .current_dir(dir.path("."))
        .args(["table", "t", "--from", &c.source.conninfo(&src), "--to"])
        .arg(OsStr::from_bytes(b"caf\xe9.txt"))
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert_eq!(fs::read_dir(dir.path(".")).unwrap().count(), 1);
}

/// The sessions copyman opens to watch a wait carry the CONN's application_name in front of
/// its own (`nightly (copyman monitor)`): a DBA who names a job's sessions to find or end them
/// missed these (conn42 F4).
#[test]
fn monitor_sessions_carry_the_conns_application_name() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE t (i int); INSERT INTO t VALUES (1), (2);",
    );
    let dst = database(&c.dest[0], "CREATE TABLE t (i int);");
    let mut holder = c.dest[0].connect(&dst);
    holder
        .batch_execute("BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let to = format!("{} application_name=nightly", c.dest[0].conninfo(&dst));
    let child = copyman()
        .args([
            "table",
            "t",
            "--from",
            &c.source.conninfo(&src),
            "--to",
            &to,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut watcher = c.dest[0].connect("postgres");
    let started = std::time::Instant::now();
    let names = loop {
        let names: Vec<String> = watcher
            .query(
                "SELECT application_name FROM pg_stat_activity WHERE datname = $1 \
                 AND application_name LIKE 'nightly%' ORDER BY 1",
                &[&dst],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        if names.iter().any(|n| n.contains("monitor")) || started.elapsed().as_secs() > 30 {
            break names;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    holder.batch_execute("COMMIT").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_exit(&out, 0);
    assert!(
        names.iter().any(|n| n == "nightly (copyman monitor)"),
        "{names:?}"
    );
    assert_eq!(count(&c.dest[0], &dst, "t"), 2);
}

/// A table the source finds on its search_path in a schema the destination holds it in too,
/// off the destination's search_path: the refusal names that table and --target-table, not
/// "create it there" (recheck59 F4); and --target-table copies there.
#[test]
fn a_table_off_the_destinations_search_path_is_named_with_its_schema() {
    let c = clusters();
    let table = "CREATE SCHEMA other; CREATE TABLE other.widgets (i int);";
    let src = database(
        &c.source,
        &format!("{table} INSERT INTO other.widgets SELECT generate_series(1, 20);"),
    );
    let dst = database(&c.dest[0], table);
    let from = format!("{} options='-c search_path=other'", c.source.conninfo(&src));
    let to = c.dest[0].conninfo(&dst);
    let out = run(&["table", "widgets", "--from", &from, "--to", &to]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains(
            r#"("other"."widgets", the source's table (on the source's search_path), is there, off its search_path: write it with --target-table '"other"."widgets"')"#
        ) && !text(&out.stderr).contains("create it there"),
        "{}",
        text(&out.stderr)
    );
    let target = ["--target-table", r#""other"."widgets""#];
    let out = run(&[
        &["table", "widgets", "--from", &from, "--to", &to][..],
        &target,
    ]
    .concat());
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[0], &dst, "other.widgets"), 20);
}
