//! Connection and CLI edges testers found, each done as libpq / psql does it: `sslmode=require`
//! with a root certificate file that does not exist connects unverified (verify-ca refuses it in
//! libpq's words); `-W` without a terminal reads the password from stdin, never printed; a FIFO
//! destination without a reader is said and waited for (a signal ends the wait, nothing
//! committed); `--dry-run` refuses the file destinations a real run would, creating nothing; a
//! second signal during the COMMITs exits 4 in one table's run and in a job alike. Real clusters:
//! the shared source and two destinations, a TLS-only one, a SCRAM one, and one whose COMMITs wait
//! for a synchronous standby that does not exist.

use crate::common;

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::Duration;

use common::*;
use copyman_testkit::Cluster;

const T: &str = "CREATE TABLE t (id int8 PRIMARY KEY, v text);";
const FILL: &str = "INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 1000) g;";

/// Whether libpq (psql) connects with `conninfo`: the reference copyman follows.
fn libpq_connects(conninfo: &str) -> bool {
    let mut psql = Command::new("psql");
    for (var, _) in std::env::vars_os() {
        if var.to_string_lossy().starts_with("PG") {
            psql.env_remove(var);
        }
    }
    psql.args(["-XAtc", "SELECT 1", conninfo])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("psql")
        .success()
}

// Point 1: sslmode=require with a missing sslrootcert.

#[test]
fn require_with_a_missing_root_file_connects_unverified_and_verify_ca_refuses_as_libpq() {
    let c = clusters();
    let tls = tls_cluster();
    let src = database(tls, &format!("{T}{FILL}"));
    let d1 = database(&c.dest[0], T);
    let missing = "/nonexistent/copyman-root.crt";
    let conn = |mode: &str| {
        format!(
            "{} connect_timeout=10 sslmode={mode} sslrootcert={missing}",
            tls.conninfo(&src)
        )
    };

    // require: libpq connects without verifying; so does copyman, and copies.
    assert!(libpq_connects(&conn("require")), "libpq connects");
    let out = run(&[
        "table",
        "t",
        "--from",
        &conn("require"),
        "--to",
        &c.dest[0].conninfo(&d1),
    ]);
    assert_exit(&out, 0);
    assert_eq!(digest(&c.dest[0], &d1, "t"), digest(tls, &src, "t"));

    // verify-ca (and verify-full): refused before connecting, in libpq's words, exit 2 (a
    // local file to mend, as a client key others may read; it was 3, a connection failure
    // scripts retry: conn40 F4).
    for mode in ["verify-ca", "verify-full"] {
        assert!(!libpq_connects(&conn(mode)), "libpq refuses {mode}");
        let d2 = database(&c.dest[1], T);
        let out = run(&[
            "table",
            "t",
            "--from",
            &conn(mode),
            "--to",
            &c.dest[1].conninfo(&d2),
        ]);
        assert_exit(&out, 2);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(&format!(
                "root certificate file \"{missing}\" does not exist; either provide the file, \
                 use the system's trusted roots with sslrootcert=system, or change sslmode to \
                 disable server certificate verification"
            )),
            "{mode}: {stderr}"
        );
        assert!(!stderr.contains(tls.password()), "{stderr}");
        assert_eq!(count(&c.dest[1], &d2, "t"), 0);
    }
}

// Point 2: -W without a terminal reads stdin, as psql's simple_prompt.

/// `copyman ARGS` in a session of its own (`setsid`: no controlling terminal, so `/dev/tty`
/// cannot be opened, as under cron or CI), stdin a pipe holding `stdin`.
fn without_terminal(args: &[&str], stdin: &str) -> Output {
    without_terminal_env(args, stdin, &[])
}

/// [`without_terminal`], with the variables `env` set.
fn without_terminal_env(args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new("setsid");
    for (var, _) in std::env::vars_os() {
        if var.to_string_lossy().starts_with("PG") {
            cmd.env_remove(var);
        }
    }
    let mut child = cmd
        .env("PGPASSFILE", "/nonexistent/copyman-test-pgpass")
        .envs(env.iter().copied())
        .arg("-w")
        .arg(env!("CARGO_BIN_EXE_copyman"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("setsid copyman");
    let mut pipe = child.stdin.take().unwrap();
    // The reader may be gone already (a refusal): that is for the exit status to say.
    let _ = pipe.write_all(stdin.as_bytes());
    drop(pipe);
    child.wait_with_output().unwrap()
}

/// A conninfo to `db` on the SCRAM cluster without its password.
fn no_password(db: &str) -> String {
    let cluster = scram_cluster();
    format!(
        "host={} port={} user=postgres dbname={db} connect_timeout=10",
        cluster.host(),
        cluster.port()
    )
}

#[test]
fn force_password_without_a_terminal_reads_stdin_and_never_prints_it() {
    let cluster = scram_cluster();
    let c = clusters();
    let src = database(cluster, &format!("{T}{FILL}"));
    let d1 = database(&c.dest[0], T);
    let from = no_password(&src);
    let to = c.dest[0].conninfo(&d1);
    let args = ["-W", "table", "t", "--from", &from, "--to", &to];

    // The right password on stdin: connects, copies; the prompt on stderr as psql's.
    let out = without_terminal(&args, &format!("{}\n", cluster.password()));
    assert_exit(&out, 0);
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(said.contains("Password: "), "{said}");
    assert!(!said.contains(cluster.password()), "{said}");
    assert_eq!(digest(&c.dest[0], &d1, "t"), digest(cluster, &src, "t"));

    // A wrong one: refused by the server (28P01), and never printed.
    let d2 = database(&c.dest[1], T);
    let to = c.dest[1].conninfo(&d2);
    let wrong = "wrong-secret-4711";
    let out = without_terminal(
        &["-W", "table", "t", "--from", &from, "--to", &to],
        &format!("{wrong}\n"),
    );
    assert_exit(&out, 3);
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(said.contains("28P01"), "{said}");
    assert!(!said.contains(wrong), "{said}");
    assert_eq!(count(&c.dest[1], &d2, "t"), 0);

    // An empty answer is no password, as in libpq: PGPASSWORD is asked (the empty one was
    // sent, a failed login: conn40 F2).
    let out = without_terminal_env(
        &["-W", "table", "t", "--from", &from, "--to", &to],
        "\n",
        &[("PGPASSWORD", cluster.password())],
    );
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[1], &d2, "t"), 1000);
}

#[test]
fn force_password_without_a_terminal_never_takes_a_row_of_stdin_data_for_it() {
    let c = clusters();
    let d1 = database(&c.dest[0], T);
    let to = c.dest[0].conninfo(&d1);
    let out = without_terminal(
        &[
            "-W",
            "copy",
            "--from",
            "-",
            "--to",
            &to,
            "--receive",
            "COPY t FROM STDIN",
        ],
        "1\tone\n2\ttwo\n",
    );
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("no terminal to ask on") && stderr.contains("standard input is the data"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &d1, "t"), 0);
}

// Point 3: a FIFO destination without a reader.

/// A FIFO at `path`.
pub(crate) fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(status.success());
}

fn is_fifo(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_fifo())
}

#[test]
fn a_fifo_without_a_reader_is_said_waited_for_and_gets_the_data() {
    let c = clusters();
    let src = database(&c.source, &format!("{T}{FILL}"));
    let d1 = database(&c.dest[0], T);
    let fifo = TempPath::new("reader-later.fifo");
    mkfifo(&fifo.0);
    let mut child = copyman()
        .args(["table", "t", "--from", &c.source.url(&src), "--to"])
        .arg(c.dest[0].conninfo(&d1))
        .args(["--to", fifo.arg()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = StderrLines::take(&mut child);
    let line = stderr.expect("waiting for a reader");
    assert_eq!(
        line,
        format!("copyman: waiting for a reader of FIFO {}", fifo.arg())
    );
    // The reader comes now (after the message: later than copyman's open began).
    let mut data = String::new();
    fs::File::open(&fifo.0)
        .unwrap()
        .read_to_string(&mut data)
        .unwrap();
    let status = child.wait().unwrap();
    let said = stderr.rest();
    assert_eq!(status.code(), Some(0), "{said}");
    assert_eq!(said.matches("waiting for a reader").count(), 1, "{said}");
    assert_eq!(data.lines().count(), 1000);
    assert!(data.lines().any(|l| l == "1000\tv1000"), "{data}");
    assert_eq!(count(&c.dest[0], &d1, "t"), 1000);
    // Written in place, never replaced by a temporary file renamed over it.
    assert!(is_fifo(&fifo.0));
    let dir = fifo.0.parent().unwrap();
    let name = fifo.0.file_name().unwrap().to_string_lossy().into_owned();
    let temps: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&format!(".{name}")))
        .collect();
    assert_eq!(temps, Vec::<String>::new());

    // With a reader already there: nothing said; under --quiet, nothing said either.
    let d2 = database(&c.dest[1], T);
    let reader = {
        let path = fifo.0.clone();
        thread::spawn(move || {
            let mut data = String::new();
            fs::File::open(path)
                .unwrap()
                .read_to_string(&mut data)
                .unwrap();
            data
        })
    };
    let out = copyman()
        .args([
            "--quiet",
            "table",
            "t",
            "--from",
            &c.source.url(&src),
            "--to",
        ])
        .arg(c.dest[1].conninfo(&d2))
        .args(["--to", fifo.arg()])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert!(
        !text(&out.stderr).contains("waiting"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(reader.join().unwrap().lines().count(), 1000);
    assert_eq!(count(&c.dest[1], &d2, "t"), 1000);
}

#[test]
fn ctrl_c_while_waiting_for_a_fifo_reader_ends_the_run_with_nothing_committed() {
    let c = clusters();
    let src = database(&c.source, &format!("{T}{FILL}"));
    let d1 = database(&c.dest[0], T);
    let fifo = TempPath::new("never-read.fifo");
    mkfifo(&fifo.0);
    // The server destination first: its transaction is open while the FIFO is waited for.
    let mut child = copyman()
        .args([
            "--json",
            "table",
            "t",
            "--from",
            &c.source.url(&src),
            "--to",
        ])
        .arg(c.dest[0].conninfo(&d1))
        .args(["--to", fifo.arg()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = StderrLines::take(&mut child);
    stderr.expect("waiting for a reader of FIFO");
    signal(&child, "INT");
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let status = child.wait().unwrap();
    let said = stderr.rest();
    assert_eq!(status.code(), Some(130), "{said}");
    assert!(said.contains("interrupted by SIGINT"), "{said}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect(&stdout);
    assert_eq!(report["status"], "interrupted", "{report}");
    assert_eq!(count(&c.dest[0], &d1, "t"), 0);
    assert_eq!(settle_backends(&c.dest[0], &d1), Vec::<String>::new());
    assert!(is_fifo(&fifo.0));
}

// Point 4: --dry-run checks what a real run would refuse about file destinations.

fn is_root() -> bool {
    std::os::unix::fs::MetadataExt::uid(&fs::metadata("/proc/self").unwrap()) == 0
}

/// The names in `dir`.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn dry_run_refuses_file_destinations_a_real_run_would_and_creates_nothing() {
    let c = clusters();
    let src = database(&c.source, &format!("{T}{FILL}"));
    let from = c.source.url(&src);
    let dir = TempPath::new("dry-run-dir");
    fs::create_dir(&dir.0).unwrap();

    // A directory that does not exist.
    let missing = dir.0.join("no-such-dir/out.tsv");
    let missing = missing.to_str().unwrap();
    for dry in [true, false] {
        let mut args = vec!["table", "t", "--from", &from, "--to", missing];
        if dry {
            args.push("--dry-run");
        }
        let out = run(&args);
        assert_exit(&out, 2);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(&format!("{missing}: cannot write it"))
                || stderr.contains(&format!("cannot write {missing}")),
            "dry run {dry}: {stderr}"
        );
        assert!(stderr.contains("No such file or directory"), "{stderr}");
    }
    assert_eq!(names(&dir.0), Vec::<String>::new());

    // A directory given as the file.
    let out = run(&[
        "table",
        "t",
        "--from",
        &from,
        "--to",
        dir.arg(),
        "--dry-run",
    ]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("Is a directory"),
        "{}",
        text(&out.stderr)
    );

    // A directory we may not write (run as nobody: root writes any directory).
    fs::set_permissions(&dir.0, fs::Permissions::from_mode(0o755)).unwrap();
    let target = dir.0.join("out.tsv");
    let target = target.to_str().unwrap();
    let mut cmd = copyman();
    cmd.args(["table", "t", "--from", &from, "--to", target, "--dry-run"]);
    if is_root() {
        use std::os::unix::process::CommandExt;
        cmd.uid(65534).gid(65534);
    } else {
        fs::set_permissions(&dir.0, fs::Permissions::from_mode(0o555)).unwrap();
    }
    let out = cmd.output().unwrap();
    fs::set_permissions(&dir.0, fs::Permissions::from_mode(0o755)).unwrap();
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{target}: cannot write it: cannot create a file in its directory"
        )) && stderr.contains("Permission denied")
            && stderr.contains("nothing copied"),
        "{stderr}"
    );
    assert_eq!(names(&dir.0), Vec::<String>::new());

    // An existing file we may not write is refused too, and left as it was.
    let readonly = dir.0.join("readonly.tsv");
    fs::write(&readonly, "keep\n").unwrap();
    fs::set_permissions(&readonly, fs::Permissions::from_mode(0o444)).unwrap();
    let mut cmd = copyman();
    cmd.args(["table", "t", "--from", &from, "--to"])
        .arg(&readonly)
        .arg("--dry-run");
    if is_root() {
        use std::os::unix::process::CommandExt;
        cmd.uid(65534).gid(65534);
    }
    let out = cmd.output().unwrap();
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("cannot write it"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(fs::read_to_string(&readonly).unwrap(), "keep\n");
    assert_eq!(names(&dir.0), vec!["readonly.tsv"]);

    // --keep-going: the plan goes on, that destination shown as skipped; a writable one is
    // planned; nothing is created; the run would be partial, and the dry run exits so (4).
    let fine = dir.0.join("fine.tsv");
    let out = run(&[
        "table",
        "t",
        "--from",
        &from,
        "--to",
        missing,
        "--to",
        fine.to_str().unwrap(),
        "--keep-going",
        "--dry-run",
    ]);
    assert_exit(&out, 4);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("skipped: cannot write it: cannot create a file in its directory"),
        "{stdout}"
    );
    assert_eq!(names(&dir.0), vec!["readonly.tsv"]);
    // And a plain dry run to a writable place still succeeds, creating nothing.
    let out = run(&[
        "table",
        "t",
        "--from",
        &from,
        "--to",
        fine.to_str().unwrap(),
        "--dry-run",
    ]);
    assert_exit(&out, 0);
    assert_eq!(names(&dir.0), vec!["readonly.tsv"]);
    let _ = fs::remove_dir_all(&dir.0);
}

// Point 5: a second signal during the COMMITs exits 4, in one table's run and in a job alike.

/// A cluster whose COMMITs wait for the synchronous standby "nosuch" in databases set so
/// ([`stuck_db`]); elsewhere `synchronous_commit = local`.
fn syncrep() -> &'static Cluster {
    static SYNC: OnceLock<Cluster> = OnceLock::new();
    SYNC.get_or_init(|| {
        Cluster::builder()
            .setting("synchronous_standby_names", "nosuch")
            .setting("synchronous_commit", "local")
            .start()
    })
}

/// A database on [`syncrep`] with `sql` run in it, whose sessions' COMMITs then wait.
fn stuck_db(sql: &str) -> String {
    let db = database(syncrep(), sql);
    syncrep()
        .connect("postgres")
        .batch_execute(&format!(
            "ALTER DATABASE \"{db}\" SET synchronous_commit = on"
        ))
        .unwrap();
    db
}

/// Backends of `db` on [`syncrep`] whose COMMIT waits for the standby.
fn sync_waiters(db: &str) -> i64 {
    syncrep()
        .connect("postgres")
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND wait_event = 'SyncRep'",
            &[&db],
        )
        .unwrap()
        .get(0)
}

/// Runs `copyman ARGS`, waits until a COMMIT on `stuck` waits for the standby, sends SIGINT,
/// then SIGINT again once the first was said; its output. Then releases the waiting COMMITs (a
/// cancel ends the wait; the transaction committed locally) until none waits.
fn second_sigint_during_a_stuck_commit(args: &[String], stuck: &str) -> (Output, String) {
    let mut child = copyman()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = StderrLines::take(&mut child);
    let started = std::time::Instant::now();
    while sync_waiters(stuck) == 0 {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "copyman ended ({status}) before its COMMIT waited: {}",
                stderr.rest()
            );
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no COMMIT waited: {}",
            stderr.seen()
        );
        thread::sleep(Duration::from_millis(50));
    }
    signal(&child, "INT");
    stderr.expect("SIGINT received");
    signal(&child, "INT");
    let mut stdout = Vec::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut stdout)
        .unwrap();
    let status = child.wait().unwrap();
    let said = stderr.rest();
    let mut admin = syncrep().connect("postgres");
    while sync_waiters(stuck) > 0 {
        admin
            .execute(
                "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE datname = $1 \
                 AND wait_event = 'SyncRep'",
                &[&stuck],
            )
            .unwrap();
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(settle_backends(syncrep(), stuck), Vec::<String>::new());
    let out = Output {
        status,
        stdout,
        stderr: said.clone().into_bytes(),
    };
    (out, said)
}

#[test]
fn a_second_signal_during_the_commits_exits_partial_in_one_table_run() {
    let c = clusters();
    let src = database(&c.source, &format!("{T}{FILL}"));
    let d1 = database(&c.dest[0], T);
    let d2 = stuck_db(T);
    let args: Vec<String> = [
        "--json".to_owned(),
        "table".to_owned(),
        "t".to_owned(),
        "--from".to_owned(),
        c.source.conninfo(&src),
        "--to".to_owned(),
        c.dest[0].conninfo(&d1),
        "--to".to_owned(),
        syncrep().conninfo(&d2),
    ]
    .into();
    let (out, said) = second_sigint_during_a_stuck_commit(&args, &d2);
    assert_exit(&out, 4);
    assert!(
        said.contains("exiting at once during the COMMITs"),
        "{said}"
    );
    assert!(!said.contains("nothing committed"), "{said}");
    let report = json(&out);
    assert_eq!(report["exited_at_once"], true, "{report}");
    assert_eq!(report["exit_code"], 4, "{report}");
    // Why, in the words said, and the server whose COMMIT is in doubt (error was null).
    assert!(
        (report["error"].as_str())
            .is_some_and(|e| e.contains("exiting at once during the COMMITs")),
        "{report}"
    );
    assert_eq!(report["server"], "destination 2", "{report}");
    assert!(
        report["endpoint"].as_str().is_some_and(|e| e.contains(&d2)),
        "{report}"
    );
    assert_eq!(count(&c.dest[0], &d1, "t"), 1000);
}

#[test]
fn a_second_signal_during_the_commits_exits_partial_in_a_job_too() {
    let c = clusters();
    let tables = "CREATE TABLE t1 (id int8 PRIMARY KEY, v text);
                  CREATE TABLE t2 (id int8 PRIMARY KEY, v text);";
    let src = database(
        &c.source,
        &format!(
            "{tables} INSERT INTO t1 SELECT g, 'a' FROM generate_series(1, 500) g;
             INSERT INTO t2 SELECT g, 'b' FROM generate_series(1, 300) g;"
        ),
    );
    let d1 = database(&c.dest[0], tables);
    let d2 = stuck_db(tables);
    let state = TempPath::new("second-signal-job.state");
    let args: Vec<String> = [
        "--json".to_owned(),
        "table".to_owned(),
        "t1".to_owned(),
        "t2".to_owned(),
        "--from".to_owned(),
        c.source.conninfo(&src),
        "--to".to_owned(),
        c.dest[0].conninfo(&d1),
        "--to".to_owned(),
        syncrep().conninfo(&d2),
        "--state".to_owned(),
        state.arg().to_owned(),
    ]
    .into();
    let (out, said) = second_sigint_during_a_stuck_commit(&args, &d2);
    assert_exit(&out, 4);
    assert!(said.contains("exited at once: committed: "), "{said}");
    let report = json(&out);
    assert_eq!(report["status"], "interrupted", "{report}");
    assert_eq!(report["exited_at_once"], true, "{report}");
    assert_eq!(report["exit_code"], 4, "{report}");
    // Why, in the words said, and the destination in doubt (it was "interrupted (exit 4)").
    assert!(
        (report["error"].as_str()).is_some_and(|e| e.contains("received: exited at once")),
        "{report}"
    );
    assert_eq!(report["server"], "destination 2", "{report}");
    let statuses: Vec<&str> = report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert!(statuses.contains(&"in doubt"), "{report}");
}

// Host lists, default hosts and the password file, as libpq (session 14's tester).

/// A job whose destination CONN lists two hosts sends every session to the host its first
/// session reached: that host stopping midway fails the job's tables there, and none of them
/// goes to the other host — another server, where a table was committed and recorded as done
/// on the first (a resume then skipped it there, exit 0, rows missing).
#[test]
fn a_host_list_keeps_every_session_of_a_job_on_the_host_the_first_reached() {
    let c = clusters();
    let tables = "CREATE TABLE a (id int8); CREATE TABLE b (id int8);";
    let src = database(
        &c.source,
        &format!(
            "{tables} INSERT INTO a SELECT generate_series(1, 1000); INSERT INTO b SELECT generate_series(1, 1000);"
        ),
    );
    // Its own first host: it is stopped midway.
    let first = Cluster::start();
    let db = database(&first, tables);
    // The same database on the second host, another server.
    let other = &c.dest[0];
    other
        .connect("postgres")
        .batch_execute(&format!("CREATE DATABASE \"{db}\""))
        .unwrap();
    other.connect(&db).batch_execute(tables).unwrap();
    // Both tables wait for a lock on the first host.
    let mut holder = first.connect(&db);
    holder
        .batch_execute("BEGIN; LOCK TABLE a, b IN SHARE MODE")
        .unwrap();
    let state = TempPath::new("host-list-state");
    let to = format!(
        "host=127.0.0.1,127.0.0.1 port={},{} user=postgres dbname={db}",
        first.port(),
        other.port()
    );
    let child = copyman()
        .args([
            "table",
            "a",
            "b",
            "--from",
            &c.source.conninfo(&src),
            "--to",
            &to,
        ])
        .args(["--jobs", "1", "--keep-going", "--state", state.arg()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_query(&first, &db, "%LOCK TABLE ONLY%IN ROW EXCLUSIVE%");
    // Stopped with the lock still held: nothing of the job commits there.
    first.stop_immediate();
    drop(holder);
    let out = child.wait_with_output().unwrap();
    assert!(
        !out.status.success(),
        "the first host stopped: {}",
        text(&out.stderr)
    );
    assert_eq!(
        (count(other, &db, "a"), count(other, &db, "b")),
        (0, 0),
        "nothing went to the other host\n{}",
        text(&out.stderr)
    );
    let recorded = fs::read_to_string(&state.0).unwrap_or_default();
    assert!(!recorded.contains("done"), "{recorded}");
}

/// A server that answers every connection as one that cannot take connections now (57P03: a
/// server starting up or shutting down, a standby without hot standby): its port.
fn not_now_server() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            loop {
                let mut len = [0u8; 4];
                if stream.read_exact(&mut len).is_err() {
                    break;
                }
                let mut body = vec![0u8; (u32::from_be_bytes(len) as usize).saturating_sub(4)];
                if stream.read_exact(&mut body).is_err() {
                    break;
                }
                // An SSLRequest or GSSENCRequest: declined, the startup comes next.
                if body.len() == 4 {
                    let _ = stream.write_all(b"N");
                    continue;
                }
                let fields = b"SFATAL\0VFATAL\0C57P03\0Mthe database system is starting up\0\0";
                let mut message = vec![b'E'];
                message.extend(u32::try_from(fields.len() + 4).unwrap().to_be_bytes());
                message.extend(fields);
                let _ = stream.write_all(&message);
                break;
            }
        }
    });
    port
}

/// As libpq 14 and later: a host that cannot take connections now (57P03) gives way to the next
/// host of the list — the failover a host list is written for. (It failed, exit 3.)
#[test]
fn a_host_that_cannot_take_connections_now_gives_way_to_the_next() {
    let c = clusters();
    let src = database(&c.source, &format!("{T}{FILL}"));
    let dst = database(&c.dest[0], T);
    let to = format!(
        "host=127.0.0.1,127.0.0.1 port={},{} user=postgres password={} dbname={dst}",
        not_now_server(),
        c.dest[0].port(),
        c.dest[0].password()
    );
    let out = run(&[
        "table",
        "t",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &to,
    ]);
    assert_exit(&out, 0);
    assert_eq!(digest(&c.dest[0], &dst, "t"), digest(&c.source, &src, "t"));
    // Alone, it is the error, said with its SQLSTATE (exit 3).
    let alone = format!(
        "host=127.0.0.1 port={} user=postgres dbname={dst}",
        not_now_server()
    );
    let out = run(&[
        "table",
        "t",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &alone,
    ]);
    assert_exit(&out, 3);
    assert!(text(&out.stderr).contains("57P03"), "{}", text(&out.stderr));
}

/// Each host of a list is looked up in the password file by its own name and port, as libpq
/// does: an entry for a first host that does not answer is never sent to the second (the
/// second failed with 28P01, and a first host that answered got the second's password).
#[test]
fn each_host_of_a_list_gets_its_own_password_file_entry() {
    let c = clusters();
    let scram = scram_cluster();
    let src = database(&c.source, &format!("{T}{FILL}"));
    let dst = database(scram, T);
    let dead = closed_port();
    let passwords = format!(
        "127.0.0.1:{dead}:*:*:not-this-one\n127.0.0.1:{}:*:*:{}\n",
        scram.port(),
        scram.password()
    );
    let to = format!(
        "host=127.0.0.1,127.0.0.1 port={dead},{} user=postgres dbname={dst}",
        scram.port()
    );
    let out = with_password_file(&passwords, &c.source.conninfo(&src), &to);
    assert_exit(&out, 0);
    assert_eq!(count(scram, &dst, "t"), 1000);
    assert!(!text(&out.stderr).contains(scram.password()));
}

/// A password file's first matching line with an empty password gives no password, as libpq
/// has it ("no password supplied"), though a later line matches too: copyman sent the empty
/// password (twice, TLS and plain), each a failed login of the role in the server's log, and
/// said the password was wrong (conn40 F2).
#[test]
fn an_empty_password_in_the_password_file_is_none() {
    let c = clusters();
    let scram = scram_cluster();
    let src = database(&c.source, &format!("{T}{FILL}"));
    let dst = database(scram, T);
    let passwords = format!(
        "127.0.0.1:{}:*:*:\n*:*:*:*:{}\n",
        scram.port(),
        scram.password()
    );
    let to = format!(
        "host=127.0.0.1 port={} user=postgres dbname={dst}",
        scram.port()
    );
    let out = with_password_file(&passwords, &c.source.conninfo(&src), &to);
    let said = text(&out.stderr);
    assert_exit(&out, 3);
    assert!(
        said.contains("the server asks for a password") && !said.contains("28P01"),
        "{said}"
    );
    // The file read is named, with no line for the server (conn44 F4).
    assert!(said.contains("gives no password for it)"), "{said}");
    assert_eq!(count(scram, &dst, "t"), 0);
}

/// `target_session_attrs=read-write` over a host list — "whichever of these is the primary
/// now" — goes past a host whose session takes no writes to the next, as libpq does; alone, such
/// a host is said as libpq says it (exit 3), and `read-only` asks the opposite. It was refused
/// by name (conn40 F3).
#[test]
fn target_session_attrs_read_write_finds_the_writable_host() {
    let c = clusters();
    let src = database(&c.source, &format!("{T}{FILL}"));
    // One database name on both servers: read-only by default on the first.
    let db = database(&c.dest[0], T);
    c.dest[1]
        .connect("postgres")
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .unwrap();
    c.dest[1].connect(&db).batch_execute(T).unwrap();
    c.dest[0]
        .connect("postgres")
        .batch_execute(&format!(
            "ALTER DATABASE {db} SET default_transaction_read_only = on"
        ))
        .unwrap();
    let line = |cl: &Cluster| format!("127.0.0.1:{}:*:*:{}\n", cl.port(), cl.password());
    let passwords = line(&c.dest[0]) + &line(&c.dest[1]);
    let to = |ports: &str, attrs: &str| {
        format!(
            "host=127.0.0.1,127.0.0.1 port={ports} user=postgres dbname={db} \
             target_session_attrs={attrs}"
        )
    };
    let both = format!("{},{}", c.dest[0].port(), c.dest[1].port());
    let run_to = |to: &str| with_password_file(&passwords, &c.source.conninfo(&src), to);
    let out = run_to(&to(&both, "read-write"));
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[1], &db, "t"), 1000);
    // The summary names the host the rows went to, not only the list (recheck40 F4), and so
    // does a recovery's report of that CONN.
    let at = format!("(at 127.0.0.1:{})", c.dest[1].port());
    let said = text(&out.stderr) + &text(&out.stdout);
    assert!(said.contains(&format!("/{db} {at}")), "{said}");
    let passfile = TempPath::new("pgpass");
    fs::write(&passfile.0, &passwords).unwrap();
    fs::set_permissions(&passfile.0, fs::Permissions::from_mode(0o600)).unwrap();
    let out = copyman()
        .env("PGPASSFILE", &passfile.0)
        .args([
            "recover",
            "--no-decision-log",
            "--to",
            &to(&both, "read-write"),
        ])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let said = text(&out.stderr) + &text(&out.stdout);
    assert!(said.contains(&format!("{at}: nothing pending")), "{said}");
    // And the other outputs (recheck41 F6): a dry run's plan, a job's summary and --json
    // records, recover's --json.
    let reached = format!("127.0.0.1:{}", c.dest[1].port());
    let with_passwords = |args: &[&str]| {
        copyman()
            .env("PGPASSFILE", &passfile.0)
            .args(args)
            .output()
            .unwrap()
    };
    let (from, list) = (c.source.conninfo(&src), to(&both, "read-write"));
    let out = with_passwords(&["table", "t", "--from", &from, "--to", &list, "--dry-run"]);
    assert_exit(&out, 0);
    assert!(
        text(&out.stdout).contains(&format!("/{db} {at}\n")),
        "{}",
        text(&out.stdout)
    );
    let job = [
        "table",
        "--table",
        "t",
        "--truncate",
        "--from",
        &from,
        "--to",
        &list,
    ];
    // A job's dry run too (recheck42 F7).
    let mut dry = job.to_vec();
    dry.push("--dry-run");
    let out = with_passwords(&dry);
    assert_exit(&out, 0);
    assert!(
        text(&out.stdout).contains(&format!("/{db}) is {reached}\n")),
        "{}",
        text(&out.stdout)
    );
    dry.insert(0, "--json");
    let out = with_passwords(&dry);
    let record = &json(&out)["tables"][0]["destinations"][0];
    assert_eq!(record["reached"], reached.as_str(), "{record}");
    assert_eq!(record["server"], "destination 1", "{record}");
    let state = TempPath::new("reached.state");
    let mut args = job.to_vec();
    args.extend(["--state", state.arg()]);
    let out = with_passwords(&args);
    assert_exit(&out, 0);
    let said = text(&out.stdout) + &text(&out.stderr);
    assert!(said.contains(&format!("/{db}) is {reached}\n")), "{said}");
    args.insert(0, "--json");
    let out = with_passwords(&args);
    assert_exit(&out, 0);
    assert_eq!(
        json(&out)["tables"][0]["reached"],
        reached.as_str(),
        "{}",
        json(&out)
    );
    let out = with_passwords(&["--json", "recover", "--no-decision-log", "--to", &list]);
    assert_exit(&out, 0);
    let records = json(&out)["prepared"].clone();
    assert!(records.as_array().is_some_and(Vec::is_empty), "{records}");
    // The read-only one alone (its port twice: a host list of one server).
    let first = format!("{0},{0}", c.dest[0].port());
    let out = run_to(&to(&first, "read-write"));
    assert_exit(&out, 3);
    assert!(
        text(&out.stderr).contains("session is read-only"),
        "{}",
        text(&out.stderr)
    );
    let second = format!("{0},{0}", c.dest[1].port());
    let out = run_to(&to(&second, "read-only"));
    assert_exit(&out, 3);
    assert!(
        text(&out.stderr).contains("session is not read-only"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[1], &db, "t"), 1000);
}

/// With no host at all, libpq tries the default socket directory and nothing else: copyman went
/// on to `localhost` over TCP, where a forwarded port may be another server, and committed.
#[test]
fn no_host_means_the_default_socket_directory_only() {
    let c = clusters();
    let src = database(&c.source, &format!("{T}{FILL}"));
    let dst = database(&c.dest[0], T);
    let to = format!(
        "port={} user=postgres password={} dbname={dst}",
        c.dest[0].port(),
        c.dest[0].password()
    );
    assert!(!libpq_connects(&to), "libpq finds no socket there");
    let out = run(&[
        "table",
        "t",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &to,
    ]);
    assert_exit(&out, 3);
    let said = text(&out.stderr);
    assert!(
        said.contains(&format!(
            "/var/run/postgresql/.s.PGSQL.{}",
            c.dest[0].port()
        )),
        "{said}"
    );
    assert_eq!(count(&c.dest[0], &dst, "t"), 0);
}

/// libpq never speaks TLS over a Unix socket, so `sslmode=verify-full` there needs no root
/// certificate file (copyman refused: "root certificate file … does not exist", exit 3).
#[test]
fn verify_full_over_a_unix_socket_needs_no_root_file() {
    let c = clusters();
    let src = database(&c.source, &format!("{T}{FILL}"));
    let dst = database(&c.dest[0], T);
    let from = format!(
        "host={} port={} user=postgres password={} dbname={src} sslmode=verify-full \
         sslrootcert=/nonexistent/copyman-root.crt",
        c.source.socket_dir().display(),
        c.source.port(),
        c.source.password()
    );
    assert!(libpq_connects(&from), "libpq connects over the socket");
    let out = run(&[
        "table",
        "t",
        "--from",
        &from,
        "--to",
        &c.dest[0].conninfo(&dst),
    ]);
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[0], &dst, "t"), 1000);
}

/// `copyman table t --from FROM --to TO` with a password file (mode 0600) holding `passwords`.
fn with_password_file(passwords: &str, from: &str, to: &str) -> Output {
    let passfile = TempPath::new("pgpass");
    fs::write(&passfile.0, passwords).unwrap();
    fs::set_permissions(&passfile.0, fs::Permissions::from_mode(0o600)).unwrap();
    copyman()
        .env("PGPASSFILE", &passfile.0)
        .args(["table", "t", "--from", from, "--to", to])
        .output()
        .unwrap()
}

/// A signal at `-W`'s prompt on a terminal (Ctrl-C, Ctrl-\) gives the terminal its echo back
/// before the process ends: the user's shell was left not echoing what was typed (conn40 F6).
/// Run in a pseudo-terminal by `script`; skipped, loudly, without it.
#[test]
fn a_signal_at_the_password_prompt_gives_the_terminal_its_echo_back() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!(
            "SKIPPED a_signal_at_the_password_prompt_gives_the_terminal_its_echo_back: no \
             `script` (util-linux) to run a pseudo-terminal"
        );
        return;
    }
    for key in [b"\x03", b"\x1c"] {
        let shell = format!(
            "trap 'echo got-int' INT; trap 'echo got-quit' QUIT; '{}' -W table t --from \
             'host=127.0.0.1 port=1 user=u dbname=d' --to /dev/null -q; echo rc=$?; stty -a",
            env!("CARGO_BIN_EXE_copyman")
        );
        let mut child = Command::new("script")
            .args(["-qfc", &shell, "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut keys = child.stdin.take().unwrap();
        let shown = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let mut stdout = child.stdout.take().unwrap();
        let reader = thread::spawn({
            let shown = std::sync::Arc::clone(&shown);
            move || {
                let mut buf = [0; 4096];
                while let Ok(n) = stdout.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let piece = String::from_utf8_lossy(&buf[..n]).into_owned();
                    shown.lock().unwrap().push_str(&piece);
                }
            }
        });
        // The key once the prompt is shown (however long the start took), the terminal's
        // input closed once the shell said how copyman ended and showed the terminal's flags
        // (`echoke` is among the last of `stty -a`'s).
        let until = |needle: &str| {
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            while !shown.lock().unwrap().contains(needle) && std::time::Instant::now() < deadline {
                thread::sleep(Duration::from_millis(20));
            }
        };
        until("Password:");
        keys.write_all(key).unwrap();
        until("rc=");
        until("echoke");
        drop(keys);
        child.wait().unwrap();
        reader.join().unwrap();
        let shown = shown.lock().unwrap().clone();
        assert!(
            shown.contains("Password:") && shown.contains("rc=13"),
            "{shown}"
        );
        let words: Vec<&str> = shown.split_whitespace().collect();
        assert!(
            words.contains(&"echo") && !words.contains(&"-echo"),
            "the terminal's echo is off: {shown}"
        );
    }
}

/// A CONN pointing at another service (a web server on that port) is said as such, once: it
/// was "protocol violation by the server: message 'H' announces 1414811691 bytes", after a
/// second attempt without TLS that could not succeed either (conn42 F9). libpq gives up on the
/// first ("received invalid response to SSL negotiation: H").
#[test]
fn a_conn_at_another_service_is_said_to_be_no_postgresql_server() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&accepted);
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            counter.fetch_add(1, Ordering::SeqCst);
            let _ = stream.read(&mut [0; 1024]);
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let from = |extra: &str| {
        run(&[
            "copy",
            "--from",
            &format!("host=127.0.0.1 port={port} user=x dbname=x{extra}"),
            "--send",
            "COPY (SELECT 1) TO STDOUT",
            "--to",
            "-",
        ])
    };
    let out = from("");
    assert_exit(&out, 3);
    let said = text(&out.stderr);
    assert!(
        said.contains("byte 0x48 ('H'): not a PostgreSQL server, or another service on that port"),
        "{said}"
    );
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "{said}");
    let out = from(" sslmode=disable");
    assert_exit(&out, 3);
    let said = text(&out.stderr);
    assert!(
        said.contains(
            "is not PostgreSQL's protocol (it begins \"HTTP/\"): not a PostgreSQL server"
        ),
        "{said}"
    );
}

/// The client's own refusal to authenticate (no password for a password request) is not tried
/// again without TLS under the default sslmode=prefer: the second attempt could only fail alike
/// ("all 2 connection attempts failed", one address twice; conn42 F3), and libpq does not.
#[test]
fn a_login_the_client_cannot_make_is_tried_once() {
    let tls = tls_cluster();
    let c = clusters();
    let src = database(&c.source, "CREATE TABLE t (id int);");
    let without = format!(
        "host=127.0.0.1 port={} user=postgres dbname=postgres",
        tls.port()
    );
    let out = copyman()
        .env("PGPASSFILE", "/nonexistent")
        .args([
            "table",
            "t",
            "--from",
            &c.source.conninfo(&src),
            "--to",
            &without,
        ])
        .output()
        .unwrap();
    assert_exit(&out, 3);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("but none given"), "{stderr}");
    assert!(!stderr.contains("connection attempts failed"), "{stderr}");
}

/// A password file named by `passfile=` or `PGPASSFILE` that does not exist is said so when
/// the server asks for a password (ops54 F9: "give a password file", which one was, mistyped).
#[test]
fn a_password_file_named_that_does_not_exist_is_said() {
    let c = clusters();
    let scram = scram_cluster();
    let src = database(&c.source, &format!("{T}{FILL}"));
    let dst = database(scram, T);
    let missing = "/nonexistent/copyman-no-such-pgpass";
    let to = format!(
        "host=127.0.0.1 port={} user=postgres dbname={dst}",
        scram.port()
    );
    let from = c.source.conninfo(&src);
    let named = format!("{to} passfile={missing}");
    for (to, env) in [(named.as_str(), None), (to.as_str(), Some(missing))] {
        let mut command = copyman();
        command.args(["table", "t", "--from", &from, "--to", to]);
        command.env_remove("PGPASSWORD").env_remove("PGPASSFILE");
        if let Some(file) = env {
            command.env("PGPASSFILE", file);
        }
        let out = command.output().unwrap();
        assert_exit(&out, 3);
        let by = if env.is_some() {
            "PGPASSFILE"
        } else {
            "passfile="
        };
        assert!(
            text(&out.stderr).contains(&format!(
                "(the password file {missing}, named by {by}, does not exist)"
            )),
            "{}",
            text(&out.stderr)
        );
    }
    assert_eq!(count(scram, &dst, "t"), 0);
}
