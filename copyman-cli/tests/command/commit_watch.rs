//! One table's commit phase is never silent: a COMMIT that does not return (a synchronous
//! standby that is not there) is said after a second — which destination, its backend, what it
//! waits on — even under `--quiet`, and never cancelled: once the server answers, the run ends
//! as the answer says. Real clusters: the shared source and destination 1, and a destination
//! whose COMMITs wait for a synchronous standby that does not exist.

use crate::common;

use std::process::Stdio;
use std::sync::OnceLock;

use common::*;
use copyman_testkit::Cluster;

/// A cluster whose sessions' COMMITs (and PREPAREs) wait for the synchronous standby "nosuch" in
/// databases set so; `synchronous_commit = local` everywhere else (setup commits at once).
fn syncrep() -> &'static Cluster {
    static SYNC: OnceLock<Cluster> = OnceLock::new();
    SYNC.get_or_init(|| {
        Cluster::builder()
            .setting("synchronous_standby_names", "nosuch")
            .setting("synchronous_commit", "local")
            .setting("max_prepared_transactions", "10")
            .start()
    })
}

/// A database of [`syncrep`] made with `sql`, whose COMMITs wait for the standby.
fn stuck_database(sql: &str) -> String {
    let stuck = database(syncrep(), sql);
    syncrep()
        .connect("postgres")
        .batch_execute(&format!(
            "ALTER DATABASE \"{stuck}\" SET synchronous_commit = on"
        ))
        .unwrap();
    stuck
}

/// Ends the wait for the standby of the COMMITs in database `stuck` with `how`
/// (`pg_cancel_backend`: the server commits locally and answers, with a warning;
/// `pg_terminate_backend`: it commits locally, warns and closes the connection).
fn end_standby_wait(stuck: &str, how: &str) {
    syncrep()
        .connect("postgres")
        .batch_execute(&format!(
            "SELECT pg_catalog.{how}(pid) FROM pg_stat_activity WHERE wait_event = 'SyncRep' \
             AND datname = '{stuck}'"
        ))
        .unwrap();
}

/// Waits (60 s at most) for `child`, whose stderr is piped, while database `stuck` of
/// [`syncrep`] waits for its standby: its exit status and stderr. Past the minute the standby's
/// wait is cancelled by hand (`what`: what waited on, for the failure's words).
fn ended_within_a_minute(
    mut child: std::process::Child,
    stuck: &str,
    what: &str,
) -> (std::process::ExitStatus, String) {
    let stderr = StderrLines::take(&mut child);
    ended_within_a_minute_said(child, stderr, stuck, what)
}

/// [`ended_within_a_minute`], its stderr read already.
fn ended_within_a_minute_said(
    mut child: std::process::Child,
    stderr: StderrLines,
    stuck: &str,
    what: &str,
) -> (std::process::ExitStatus, String) {
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > std::time::Duration::from_secs(60) {
            end_standby_wait(stuck, "pg_cancel_backend");
            let _ = child.kill();
            panic!("{what} waited for the standby: {}", stderr.seen());
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    (status, stderr.rest())
}

/// How many prepared transactions database `db` of `cluster` holds.
fn prepared_in_db(cluster: &Cluster, db: &str) -> i64 {
    cluster
        .connect("postgres")
        .query_one(
            "SELECT count(*) FROM pg_prepared_xacts WHERE database = $1",
            &[&db],
        )
        .unwrap()
        .get(0)
}

/// A COMMIT waiting for a synchronous standby that is not there is said (even under --quiet);
/// after 10 s its wait is cancelled, committed there already, and the destination after it
/// commits too (its transaction stayed open, holding its locks, until a second signal).
#[test]
fn a_commit_waiting_for_a_missing_standby_is_said_and_its_wait_cancelled_at_ten_seconds() {
    let c = clusters();
    let table = "CREATE TABLE t (id int8 PRIMARY KEY, v text);";
    let src = database(
        &c.source,
        &format!("{table} INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 1000) g;"),
    );
    let d1 = database(&c.dest[0], table);
    let stuck = stuck_database(table);

    let mut child = copyman()
        .args([
            "--quiet",
            "table",
            "t",
            "--from",
            &c.source.conninfo(&src),
            "--to",
            &syncrep().conninfo(&stuck),
            "--to",
            &c.dest[0].conninfo(&d1),
        ])
        .env("COPYMAN_TEST_SAY_AFTER", "1")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = StderrLines::take(&mut child);
    let said = stderr.wait_for("waiting");
    let said = said.unwrap_or_else(|| panic!("nothing said: {}", stderr.seen()));
    assert!(
        said.contains("destination 1")
            && said.contains("'s COMMIT")
            && said.contains("synchronous standby")
            && said.contains("its wait is cancelled at 10 s"),
        "{said}"
    );
    // A signal: the commit finishes; the reminder names the COMMIT awaited, not every endpoint.
    signal(&child, "TERM");
    let reminder = stderr.wait_for("still stopping");
    let reminder = reminder.unwrap_or_else(|| panic!("no reminder: {}", stderr.seen()));
    assert!(
        reminder.contains("waiting for destination 1 (")
            && reminder.contains("'s COMMIT (backend ")
            && !reminder.contains("source ("),
        "{reminder}"
    );
    // Its wait cancelled by copyman at 10 s: committed locally, with a warning.
    let (status, rest) = ended_within_a_minute_said(child, stderr, &stuck, "the COMMIT");
    assert_eq!(status.code(), Some(0), "{rest}");
    assert!(
        rest.contains("'s COMMIT waited 10 s for a synchronous standby")
            && rest.contains("committed there already"),
        "{rest}"
    );
    assert_eq!(count(syncrep(), &stuck, "t"), 1000);
    assert_eq!(count(&c.dest[0], &d1, "t"), 1000);
}

/// Under --atomic, a destination whose synchronous standby is missing from the start: its
/// PREPARE TRANSACTION waits for it too, prepared there already; cancelled at 10 s, as its
/// COMMIT PREPARED is next, and the run (a job alike) commits everywhere (recheck74 F2: it
/// waited for ever, the other destinations' transactions open).
#[test]
fn an_atomic_prepare_waiting_for_a_missing_standby_is_cancelled_at_ten_seconds() {
    let c = two_phase_clusters();
    let table = "CREATE TABLE t (id int8 PRIMARY KEY, v text);";
    let src = database(
        &c.source,
        &format!("{table} INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 1000) g;"),
    );
    for job in [false, true] {
        let d1 = database(&c.dest[0], table);
        let stuck = stuck_database(table);
        let (log, state) = (
            TempPath::new("prepare-standby.log"),
            TempPath::new("prepare-standby.state"),
        );
        let (from, to1, to2) = (
            c.source.conninfo(&src),
            syncrep().conninfo(&stuck),
            c.dest[0].conninfo(&d1),
        );
        let mut args = vec![
            "table",
            "t",
            "--atomic",
            "--decision-log",
            log.arg(),
            "--from",
            &from,
            "--to",
            &to1,
            "--to",
            &to2,
        ];
        if job {
            args.extend(["--state", state.arg()]);
        }
        let child = copyman()
            .args(&args)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (status, said) = ended_within_a_minute(child, &stuck, &format!("job {job}"));
        assert_eq!(status.code(), Some(0), "job {job}: {said}");
        assert!(
            said.contains("PREPARE TRANSACTION")
                && said.contains("waited 10 s for a synchronous standby")
                && said.contains("prepared there already"),
            "job {job}: {said}"
        );
        assert_eq!(count(syncrep(), &stuck, "t"), 1000, "job {job}");
        assert_eq!(count(&c.dest[0], &d1, "t"), 1000, "job {job}");
        assert_eq!(prepared_in_db(syncrep(), &stuck), 0, "job {job}");
    }
}

/// A COMMIT waiting for a synchronous standby whose session is terminated: the server sends a
/// WARNING ("already committed locally, but might not have been replicated") and closes the
/// connection without answering the COMMIT. The rows are committed there, so copyman says
/// committed (it said "in doubt"), shows the server's warning, and commits the others. A
/// first signal meanwhile says the COMMIT waits for the standby and how it ends (it said "the
/// commit is under way and finishes", which it never would: signals65 F7).
#[test]
fn a_commit_terminated_in_its_wait_for_the_standby_is_committed_and_said_so() {
    let c = clusters();
    let table = "CREATE TABLE t (id int8 PRIMARY KEY, v text);";
    let src = database(
        &c.source,
        &format!("{table} INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 1000) g;"),
    );
    let d1 = database(&c.dest[0], table);
    let stuck = stuck_database(table);

    let mut child = copyman()
        .args([
            "--json",
            "table",
            "t",
            "--from",
            &c.source.conninfo(&src),
            "--to",
            &syncrep().conninfo(&stuck),
            "--to",
            &c.dest[0].conninfo(&d1),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = StderrLines::take(&mut child);
    stderr.expect("waiting");
    signal(&child, "INT");
    let stopping = stderr.expect("SIGINT received");
    assert!(
        stopping.contains("destination 1 (")
            && stopping.contains("COMMIT waits for a synchronous standby to confirm it")
            && stopping.contains("when its session is ended"),
        "{stopping}"
    );
    end_standby_wait(&stuck, "pg_terminate_backend");
    let out = child.wait_with_output().unwrap();
    let rest = stderr.rest();
    assert_eq!(out.status.code(), Some(0), "{rest}");
    assert!(
        rest.contains("WARNING:") && rest.contains("already committed locally"),
        "{rest}"
    );
    assert!(!rest.contains("in doubt"), "{rest}");
    let report = serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap();
    assert_eq!(report["destinations"][0]["status"], "committed", "{report}");
    assert_eq!(report["destinations"][1]["status"], "committed", "{report}");
    assert_eq!(count(syncrep(), &stuck, "t"), 1000);
    assert_eq!(count(&c.dest[0], &d1, "t"), 1000);
}

/// A job's first signal while a table's COMMIT waits for a synchronous standby says that wait
/// and how it ends, as one table does (recheck66 F10: "their COMMITs began and finish", of a
/// COMMIT that waits for ever); the COMMIT answered, the table is committed and the job stops.
#[test]
fn a_jobs_first_signal_names_a_commit_waiting_for_the_standby() {
    let c = clusters();
    let tables = "CREATE TABLE t (id int8 PRIMARY KEY, v text); CREATE TABLE u (id int8);";
    let src = database(
        &c.source,
        &format!(
            "{tables} INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 1000) g; \
             INSERT INTO u SELECT generate_series(1, 10);"
        ),
    );
    let d1 = database(&c.dest[0], tables);
    let stuck = stuck_database(tables);

    let mut child = copyman()
        .args([
            "table",
            "t",
            "u",
            "--jobs",
            "1",
            "--from",
            &c.source.conninfo(&src),
            "--to",
            &syncrep().conninfo(&stuck),
            "--to",
            &c.dest[0].conninfo(&d1),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = StderrLines::take(&mut child);
    stderr.expect("IPC/SyncRep");
    signal(&child, "INT");
    let stopping = stderr.expect("SIGINT received");
    assert!(
        stopping.contains("stopping the job")
            && stopping.contains("destination 1 (")
            && stopping
                .contains("'s COMMIT of table \"public\".\"t\" waits for a synchronous standby")
            && stopping.contains("when its session is ended"),
        "{stopping}"
    );
    end_standby_wait(&stuck, "pg_cancel_backend");
    let out = child.wait_with_output().unwrap();
    let rest = stderr.rest();
    assert_ne!(out.status.code(), Some(0), "{rest}");
    assert_eq!(count(syncrep(), &stuck, "t"), 1000, "{rest}");
    assert_eq!(count(&c.dest[0], &d1, "t"), 1000, "{rest}");
}

/// Sends `signal` (`STOP`, `CONT`) to a server's backend process (the test runs as root or as
/// the clusters' owner).
fn kill(signal: &str, pid: i32) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} {pid}");
}

/// A job's planning session among copyman's backends of a database (`pg_stat_activity`): the
/// watch's session, which may have connected too, asks `pg_stat_activity`.
const PLANNING_SESSION: &str =
    "pid <> pg_backend_pid() AND query <> '' AND query NOT ILIKE '%pg_stat_activity%'";

/// A cluster of its own for a test that freezes a backend in the middle of its work (SIGSTOP
/// mid-COPY): one stopped holding a lightweight lock (a WAL insertion lock) holds up every
/// commit on its cluster, which on the shared ones are other tests' (flaky58). One per test:
/// two such tests side by side would hold each other up alike.
fn own_cluster(cell: &'static OnceLock<Cluster>) -> &'static Cluster {
    cell.get_or_init(Cluster::start)
}

/// A backend frozen with SIGSTOP, continued when dropped (a failing test must not leave a
/// stopped backend behind: its server would never shut down).
struct Frozen(i32);

impl Frozen {
    /// Freezes backend `pid` (SIGSTOP).
    fn stop(pid: i32) -> Self {
        kill("STOP", pid);
        Self(pid)
    }

    /// Freezes the backend of `db` on `cluster` that `condition` (on `pg_stat_activity`)
    /// finds, once it is the only one: a session the test's setup closed a moment ago may
    /// still be listed while its backend exits (under load, the query found two).
    fn backend(cluster: &Cluster, db: &str, condition: &str) -> Self {
        let sql = format!("SELECT pid FROM pg_stat_activity WHERE datname = $1 AND {condition}");
        let mut admin = cluster.connect("postgres");
        let started = std::time::Instant::now();
        loop {
            let pids: Vec<i32> = (admin.query(&sql, &[&db]).unwrap().iter())
                .map(|r| r.get(0))
                .collect();
            match pids[..] {
                [pid] => return Self::stop(pid),
                _ if started.elapsed() > std::time::Duration::from_secs(30) => {
                    panic!("backends of {db} where {condition}: {pids:?}, not one")
                }
                _ => std::thread::sleep(std::time::Duration::from_millis(50)),
            }
        }
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        kill("CONT", self.0);
    }
}

/// Lets `paused` go on, sends it one SIGTERM a second later and waits for its end while
/// `frozen` holds a backend of it ([`ends_while_frozen`]): whether it ended so, and its output.
fn one_term_while_frozen(mut paused: Paused, frozen: Frozen) -> (bool, std::process::Output) {
    std::fs::remove_file(&paused.file.0).unwrap();
    std::thread::sleep(std::time::Duration::from_secs(1));
    signal(&paused.child, "TERM");
    let ended = ends_while_frozen(&mut paused.child, frozen);
    (ended, paused.child.wait_with_output().unwrap())
}

/// Waits (30 s at most) for `child` to end while `frozen` holds a backend of it, then lets the
/// backend go: whether it ended before.
fn ends_while_frozen(child: &mut std::process::Child, frozen: Frozen) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let ended = child.try_wait().unwrap().is_some();
    drop(frozen);
    ended
}

/// A destination whose backend never reads its COMMIT (frozen, or the network path to that one
/// connection lost) is not waited for in silence: once the COMMIT of the destination before it
/// returned and copyman sent it, the backend — idle in its transaction, not running the
/// COMMIT — is said after two looks, "it has not read the COMMIT", every reminder apart; the
/// server alone shows only a session waiting for its client. Once the backend goes on, the run
/// ends as its answer says. Run for one table and for a job (`--state`), whose watches look at
/// the commit each its own way.
#[test]
fn a_commit_its_backend_never_reads_is_said_not_waited_for_in_silence() {
    for job in [false, true] {
        let c = clusters();
        let table = "CREATE TABLE t (id int8 PRIMARY KEY, v text);";
        let src = database(
            &c.source,
            &format!("{table} INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 1000) g;"),
        );
        let d2 = database(&c.dest[0], table);
        let stuck = stuck_database(table);
        let state = TempPath::new("frozen-commit.state");
        let (from, to1, to2) = (
            c.source.conninfo(&src),
            syncrep().conninfo(&stuck),
            c.dest[0].conninfo(&d2),
        );
        let mut args = vec!["table", "t", "--from", &from, "--to", &to1, "--to", &to2];
        if job {
            args.extend(["--state", state.arg()]);
        }
        let mut child = copyman()
            .args(&args)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = StderrLines::take(&mut child);
        // Destination 1's COMMIT waits for the standby; destination 2 waits for its COMMIT.
        stderr.expect("synchronous standby");
        let pid: i32 = c.dest[0]
            .connect("postgres")
            .query_one(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1 \
                 AND state = 'idle in transaction'",
                &[&d2],
            )
            .unwrap()
            .get(0);
        let frozen = Frozen::stop(pid);
        end_standby_wait(&stuck, "pg_cancel_backend");
        let said = stderr.wait_for("has not read the COMMIT");
        let said = said.unwrap_or_else(|| panic!("job {job}: nothing said: {}", stderr.seen()));
        assert!(
            said.contains("destination 2")
                && said.contains(&format!("backend {pid} idle in transaction"))
                && said.contains("not cancelled"),
            "job {job}: {said}"
        );
        drop(frozen);
        let status = child.wait().unwrap();
        let rest = stderr.rest();
        assert_eq!(status.code(), Some(0), "job {job}: {rest}");
        // The server's "committed locally" is glossed as the COMMIT's, not as an --atomic
        // PREPARE's (commit66 F3).
        assert!(
            job || (rest.contains("is the COMMIT copyman was waiting on there")
                && !rest.contains("under --atomic")),
            "{rest}"
        );
        assert_eq!(count(syncrep(), &stuck, "t"), 1000);
        assert_eq!(count(&c.dest[0], &d2, "t"), 1000);
    }
}

/// A destination whose network path stalls once its COMMIT is sent: the watch's monitoring
/// connection, through the same path, cannot ask its server either. The wait is said all the
/// same, as one whose server cannot be seen (it was silent: only a backend that could be seen
/// was said); once the path comes back, the run ends committed.
#[test]
fn a_commit_whose_server_cannot_be_asked_is_said() {
    use copyman_testkit::proxy::{Direction, Fault, Proxy};
    let c = clusters();
    let table = "CREATE TABLE t (id int8 PRIMARY KEY, v text);";
    let src = database(
        &c.source,
        &format!("{table} INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 1000) g;"),
    );
    let (d1, d2) = (database(&c.dest[0], table), database(&c.dest[1], table));
    let proxy = Proxy::for_cluster(&c.dest[1]);
    let (from, to1, to2) = (
        c.source.conninfo(&src),
        c.dest[0].conninfo(&d1),
        proxy.conninfo(&c.dest[1], &d2),
    );
    // Both destinations checked; their COMMITs come next.
    let mut paused = Paused::start(
        &["table", "t", "--from", &from, "--to", &to1, "--to", &to2],
        "checked:2",
    );
    let mut stderr = StderrLines::take(&mut paused.child);
    proxy.set(Direction::ClientToServer, Fault::Stall);
    proxy.set(Direction::ServerToClient, Fault::Stall);
    std::fs::remove_file(&paused.file.0).unwrap();
    let said = stderr.wait_for("'s COMMIT: its server cannot be asked");
    proxy.set(Direction::ClientToServer, Fault::Pass);
    proxy.set(Direction::ServerToClient, Fault::Pass);
    let said = said.unwrap_or_else(|| panic!("nothing said: {}", stderr.seen()));
    assert!(
        said.contains("destination 2")
            && said.contains("a network path to it that is lost?")
            && said.contains("not cancelled"),
        "{said}"
    );
    let status = paused.child.wait().unwrap();
    let rest = stderr.rest();
    assert_eq!(status.code(), Some(0), "{rest}");
    assert_eq!(count(&c.dest[0], &d1, "t"), 1000);
    assert_eq!(count(&c.dest[1], &d2, "t"), 1000);
}

/// A destination whose network path is lost mid-copy (its connection frozen both ways, its
/// sockets open), given up at the stall timeout: its backend, which never heard copyman close
/// the connection, stayed in its COPY in the run's transaction, holding --truncate's ACCESS
/// EXCLUSIVE lock, every reader of the table waiting (conn68 F2). It is terminated through a
/// new session, and said; one table's run and a job's alike, and a CONN that sets another role
/// (`-c role=…`: the backend's user is its login's).
#[test]
fn a_destination_given_up_behind_a_lost_path_is_terminated_there() {
    use copyman_testkit::proxy::{Direction, Fault, Proxy};
    let c = clusters();
    let table = "CREATE TABLE t (id int8, v text);";
    let fill = "INSERT INTO t SELECT g, repeat('v', 100) FROM generate_series(1, 200000) g;";
    let src = database(&c.source, &format!("{table} {fill}"));
    let state = TempPath::new("lost-path.state");
    // (The role, which may not see the login's backends, is told the statement that ends it.)
    for (job, role, said) in [
        (
            false,
            false,
            "which copyman had closed and its server had not heard so, was terminated",
        ),
        (true, false, "which had not heard so, was terminated"),
        (
            false,
            true,
            "its session's role may not see it, terminating it was refused, or it did not end \
             within 2 s of being told to (a frozen backend)); end it there",
        ),
    ] {
        let grant = "DO $$ BEGIN CREATE ROLE copyman_lost_path; \
                    EXCEPTION WHEN duplicate_object THEN NULL; END $$; \
                    GRANT ALL ON t TO copyman_lost_path;";
        let d1 = database(&c.dest[0], &format!("{table} {grant}"));
        let proxy = Proxy::for_cluster(&c.dest[0]);
        proxy.after_bytes(Direction::ClientToServer, 2 << 20, Fault::Freeze);
        let to = proxy.conninfo(&c.dest[0], &d1);
        let to = match role {
            false => to,
            true => format!("{to} options='-c role=copyman_lost_path'"),
        };
        let from = c.source.conninfo(&src);
        let mut args = vec![
            "table",
            "t",
            "--from",
            &from,
            "--to",
            &to,
            "--truncate",
            "--stall-timeout",
            "3s",
        ];
        if job {
            args.extend(["--state", state.arg()]);
        }
        let out = run(&args);
        assert!(out.status.code().is_some_and(|c| c > 0), "{job}");
        let stderr = text(&out.stderr);
        assert!(stderr.contains(said), "{job}: {stderr}");
        // The statement said ends it, run as a DBA would.
        if role {
            let statement = (stderr.split("end it there: ").nth(1))
                .and_then(|rest| rest.split(')').next())
                .map(|s| format!("{s})"))
                .unwrap_or_else(|| panic!("no statement said: {stderr}"));
            c.dest[0]
                .connect("postgres")
                .batch_execute(&statement)
                .unwrap();
        }
        // Gone from its server: the table can be read.
        let mut check = c.dest[0].connect(&d1);
        check.batch_execute("SET lock_timeout = '5s'").unwrap();
        let rows = check.query_one("SELECT count(*) FROM t", &[]).unwrap();
        assert_eq!(rows.get::<_, i64>(0), 0, "{job}");
    }
}

/// A destination whose server stops answering once its session is made (its network path lost
/// after the login): the run's first questions wait — said as any wait, and bounded by
/// `--stall-timeout` (conn68 F3: silent for as long as it lasted, past the stall timeout).
#[test]
fn a_server_that_stops_answering_after_the_login_is_said_and_bounded() {
    use copyman_testkit::proxy::{Direction, Fault, Proxy};
    let c = clusters();
    let table = "CREATE TABLE t (id int8, v text);";
    let src = database(&c.source, table);
    let d1 = database(&c.dest[0], table);
    let from = c.source.conninfo(&src);
    // Nothing more from the server after its first ReadyForQuery (the login's end), or nothing
    // more to it once the run asks who it is.
    let after_login = (Direction::ServerToClient, &b"Z\0\0\0\x05I"[..]);
    let asked = (Direction::ClientToServer, &b"pg_control_system"[..]);
    for (bounded, (dir, pattern)) in [
        (true, after_login),
        (false, after_login),
        (true, asked),
        (false, asked),
    ] {
        let proxy = Proxy::for_cluster(&c.dest[0]);
        proxy.after_pattern(dir, pattern, Fault::Stall);
        let to = proxy.conninfo(&c.dest[0], &d1);
        let mut args = vec!["table", "t", "--from", &from, "--to", &to];
        if bounded {
            args.extend(["--stall-timeout", "3s"]);
        }
        let mut child = copyman()
            .env("COPYMAN_TEST_SAY_AFTER", "2")
            .args(&args)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = StderrLines::take(&mut child);
        if bounded {
            let status = child.wait().unwrap();
            let said = stderr.rest();
            assert!(status.code().is_some_and(|c| c > 0), "{said}");
            assert!(said.contains(&d1) && said.contains("3 s"), "{said}");
        } else {
            let said = loop {
                let line = stderr.expect(&d1);
                if line.contains("no answer after") || line.contains("nothing has moved") {
                    break line;
                }
            };
            assert!(said.contains("2 s"), "{said}");
            signal(&child, "TERM");
            signal(&child, "TERM");
            let status = child.wait().unwrap();
            assert_eq!(status.code(), Some(143), "{}", stderr.rest());
        }
        assert_eq!(count(&c.dest[0], &d1, "t"), 0);
    }
}

/// A server that stops answering once its session is made, new sessions too, is given up at
/// the stall timeout before the copy, its session closed: not after the limit again on each
/// question that follows, said bounded all the while (recheck69 F6: seven questions, the limit
/// each).
#[test]
fn a_server_silent_before_the_copy_is_given_up_once() {
    use copyman_testkit::proxy::{Direction, Fault, Proxy};
    let c = clusters();
    let table = "CREATE TABLE t (id int8, v text);";
    let src = database(&c.source, table);
    let d1 = database(&c.dest[0], table);
    let proxy = Proxy::for_cluster(&c.dest[0]);
    let (from, to) = (c.source.conninfo(&src), proxy.conninfo(&c.dest[0], &d1));
    let args = [
        "table",
        "t",
        "--from",
        &from,
        "--to",
        &to,
        "--stall-timeout",
        "3s",
    ];
    let paused = Paused::start(&args, "connected");
    proxy.set(Direction::ServerToClient, Fault::Stall);
    let out = paused.resume();
    let said = text(&out.stderr);
    assert!(out.status.code().is_some_and(|c| c > 0), "{said}");
    assert!(
        said.contains(&format!(
            "{d1}): its server has answered nothing for the stall timeout"
        )) && said.contains("its session is given up"),
        "{said}"
    );
    assert_eq!(count(&c.dest[0], &d1, "t"), 0);
}

/// A destination's backend that does not end once told to (frozen: SIGSTOP here), given up at
/// the stall timeout, is not said terminated while it holds its locks on (recheck69 F5): the
/// statement that ends it is said.
#[test]
fn a_frozen_backend_told_to_end_is_not_said_terminated() {
    let c = clusters();
    let table = "CREATE TABLE t (id int8, v text);";
    let fill = "INSERT INTO t SELECT g, repeat('v', 100) FROM generate_series(1, 200000) g;";
    let src = database(&c.source, &format!("{table} {fill}"));
    let d1 = database(&c.dest[0], table);
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&d1));
    let child = copyman()
        .args(["table", "t", "--from", &from, "--to", &to, "--truncate"])
        .args(["--stall-timeout", "3s", "--max-rate", "2M"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let frozen = Frozen::backend(&c.dest[0], &d1, "query LIKE 'COPY%'");
    let out = child.wait_with_output().unwrap();
    let pid = frozen.0;
    drop(frozen);
    let stderr = text(&out.stderr);
    assert!(out.status.code().is_some_and(|c| c > 0), "{stderr}");
    assert!(
        stderr.contains(&format!("end it there: SELECT pg_terminate_backend({pid})"))
            && !stderr.contains("was terminated"),
        "{stderr}"
    );
}

/// `copyman recover` against a server that stops answering once connected: said while
/// it waits, and bounded by its CONN's `connect_timeout` (recheck69 F6: silent for as long as
/// it lasted, and a signal said it came "while connecting").
#[test]
fn recover_says_a_server_that_stops_answering_after_the_login_and_bounds_it() {
    use copyman_testkit::proxy::{Direction, Fault, Proxy};
    let c = clusters();
    let d1 = database(&c.dest[0], "CREATE TABLE t (id int);");
    let log = TempPath::new("asking-recover.log");
    for bounded in [true, false] {
        let proxy = Proxy::for_cluster(&c.dest[0]);
        // Nothing more to it once recover asks its first question (the login and the
        // session's setup, bounded as a connect, are over).
        proxy.after_pattern(
            Direction::ClientToServer,
            b"pg_is_in_recovery",
            Fault::Stall,
        );
        let mut to = proxy.conninfo(&c.dest[0], &d1);
        if bounded {
            to.push_str(" connect_timeout=3");
        }
        let mut child = copyman()
            .env("COPYMAN_TEST_SAY_AFTER", "2")
            .args(["recover", "--to", &to, "--decision-log", log.arg()])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = StderrLines::take(&mut child);
        let said = stderr.expect("to answer: connected");
        assert!(said.contains(&d1) && said.contains("waiting 2 s"), "{said}");
        if bounded {
            let status = child.wait().unwrap();
            let rest = stderr.rest();
            assert!(status.code().is_some_and(|c| c > 0), "{rest}");
        } else {
            signal(&child, "TERM");
            let status = child.wait().unwrap();
            let rest = stderr.rest();
            assert_eq!(status.code(), Some(143), "{rest}");
            assert!(rest.contains("connected, being asked"), "{rest}");
        }
    }
}

/// A copy that stops moving because one backend froze (SIGSTOP here; a lost network path alike)
/// says which endpoint copyman waits for — the frozen destination that takes no data, or the
/// frozen source that sends none — not only what each server shows (a frozen backend shows the
/// state it froze in, and the others wait for copyman: every line read the same whichever
/// froze), with the ways out; one table and a job alike. Once the backend goes on, the copy
/// ends committed.
#[test]
fn a_copy_that_stops_moving_says_which_endpoint_it_waits_for() {
    for (frozen, said, job) in [
        (
            "destination",
            "copyman waits for destination 1 to take data",
            false,
        ),
        ("source", "copyman waits for the source's data", false),
        (
            "destination",
            "copyman waits for destination 1 to take data",
            true,
        ),
    ] {
        let c = clusters();
        static OWN: OnceLock<Cluster> = OnceLock::new();
        // The party frozen is on a cluster of the test's own.
        let (source, dest) = match frozen {
            "source" => (own_cluster(&OWN), &c.dest[0]),
            _ => (&c.source, own_cluster(&OWN)),
        };
        let table = "CREATE TABLE t (id int8, v text);";
        let src = database(
            source,
            &format!(
                "{table} INSERT INTO t SELECT g, repeat('v', 100) FROM generate_series(1, 1000000) g;"
            ),
        );
        let d1 = database(dest, table);
        let d2 = database(&c.dest[1], table);
        let state = TempPath::new("stopped-copy.state");
        let job_args = ["--state", state.arg()];
        let mut child = copyman()
            .env("COPYMAN_TEST_SAY_AFTER", "2")
            .args([
                "--json",
                "table",
                "t",
                "--from",
                &source.conninfo(&src),
                "--to",
                &dest.conninfo(&d1),
                "--to",
                &c.dest[1].conninfo(&d2),
            ])
            .args(if job { &job_args[..] } else { &[] })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = StderrLines::take(&mut child);
        let (server, db) = match frozen {
            "source" => (source, &src),
            _ => (dest, &d1),
        };
        wait_for_query(server, db, "COPY%");
        let pid: i32 = server
            .connect("postgres")
            .query_one(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND query ILIKE 'COPY%'",
                &[db],
            )
            .unwrap()
            .get(0);
        let frozen_backend = Frozen::stop(pid);
        let line = stderr.wait_for("nothing has moved");
        let line =
            line.unwrap_or_else(|| panic!("{frozen} {job}: nothing said: {}", stderr.seen()));
        assert!(
            line.contains(said) && line.contains("--stall-timeout"),
            "{frozen}: {line}"
        );
        drop(frozen_backend);
        let out = child.wait_with_output().unwrap();
        let rest = stderr.rest();
        assert_eq!(out.status.code(), Some(0), "{frozen}: {rest}");
        // Kept in the document's waits too (progress62 F3: said on stderr only).
        let waits = json(&out)["waits"].to_string();
        assert!(waits.contains(said), "{frozen} {job}: {waits}");
        assert_eq!(count(dest, &d1, "t"), 1_000_000);
        assert_eq!(count(&c.dest[1], &d2, "t"), 1_000_000);
    }
}

/// One signal while a destination's backend is frozen mid-stream: the frozen destination is
/// given up once it took nothing for the interrupt's grace, and the others' COPYs are failed at
/// once — the healthy destination rolls back and releases the lock its `--truncate` took, and the
/// run exits with the signal's code, nothing committed; one table and a job alike. It waited
/// for the frozen backend until a second signal, the healthy destination's table locked all the
/// while. The frozen backend, which hears neither the cancel nor the close, is not said rolled
/// back while it holds its transaction: the statement that ends it is said (recheck69 F11: a
/// job said "rolled back, nothing of it committed").
#[test]
fn one_signal_gives_up_a_frozen_destination_and_releases_the_others() {
    static OWN: OnceLock<Cluster> = OnceLock::new();
    for job in [false, true] {
        let c = clusters();
        // Destination 1, frozen, is on a cluster of the test's own.
        let dest = own_cluster(&OWN);
        let table = "CREATE TABLE t (id int8, v text);";
        let src = database(
            &c.source,
            &format!(
                "{table} INSERT INTO t SELECT g, repeat('v', 100) FROM generate_series(1, 1000000) g;"
            ),
        );
        let d1 = database(dest, table);
        let d2 = database(
            &c.dest[1],
            &format!("{table} INSERT INTO t VALUES (-1, 'kept');"),
        );
        let state = TempPath::new("frozen-stop.state");
        let job_args = ["--state", state.arg()];
        let mut child = copyman()
            .args([
                "table",
                "t",
                "--truncate",
                "--from",
                &c.source.conninfo(&src),
                "--to",
                &dest.conninfo(&d1),
                "--to",
                &c.dest[1].conninfo(&d2),
            ])
            .args(if job { &job_args[..] } else { &[] })
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = StderrLines::take(&mut child);
        wait_for_query(dest, &d1, "COPY%");
        let pid: i32 = dest
            .connect("postgres")
            .query_one(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND query ILIKE 'COPY%'",
                &[&d1],
            )
            .unwrap()
            .get(0);
        let frozen = Frozen::stop(pid);
        // The copy stops once destination 1's socket is full.
        std::thread::sleep(std::time::Duration::from_secs(2));
        signal(&child, "TERM");
        let started = std::time::Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(30),
                "job {job}: still waiting for the frozen destination: {}",
                stderr.seen()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        };
        // Before destination 1 goes on: destination 2 rolled back, its lock released.
        let rest = stderr.rest();
        assert_eq!(status.code(), Some(143), "job {job}: {rest}");
        assert!(
            rest.contains(&format!("end it there: SELECT pg_terminate_backend({pid})"))
                && !(rest.lines())
                    .any(|l| l.contains("destination 1 (") && l.contains("rolled back")),
            "job {job}: {rest}"
        );
        assert_eq!(settle_backends(&c.dest[1], &d2), Vec::<String>::new());
        assert_eq!(count(&c.dest[1], &d2, "t"), 1, "its own row kept: {rest}");
        drop(frozen);
        assert_eq!(settle_backends(dest, &d1), Vec::<String>::new());
        assert_eq!(count(dest, &d1, "t"), 0);
    }
}

/// A job's planning that stops moving (a destination's backend frozen under its catalog
/// lookup) is said, as a copy's: after ten still seconds (two here), what every planning backend
/// does. It was silent: planning many tables was taken to be still without a move, though it
/// moves with each table it looks up.
#[test]
fn a_planning_that_stops_moving_is_said() {
    let c = clusters();
    let tables = "CREATE TABLE t1 (id int); CREATE TABLE t2 (id int);";
    let src = database(&c.source, tables);
    let d1 = database(&c.dest[0], tables);
    let state = TempPath::new("frozen-planning.state");
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&d1));
    let args = [
        "table",
        "t1",
        "t2",
        "--from",
        &from,
        "--to",
        &to,
        "--state",
        state.arg(),
    ];
    let mut command = copyman();
    command.env("COPYMAN_TEST_SAY_AFTER", "2");
    let mut paused = Paused::start_with(command, &args, "planning:0");
    // The destination's planning session.
    let frozen = Frozen::backend(&c.dest[0], &d1, PLANNING_SESSION);
    let pid = frozen.0;
    let mut lines = StderrLines::take(&mut paused.child);
    let run = paused.resume_in_background();
    // Let go once it was said (however long the run took to get there).
    let said = lines.expect("nothing has moved for 2 s while planning the job: ");
    drop(frozen);
    let out = run.join().unwrap();
    let stderr = lines.rest();
    assert_exit(&out, 0);
    assert!(said.contains(&format!("backend {pid}")), "{stderr}");
}

/// A job paused before looking up its second table, with its destination's planning session
/// frozen from then on: `extra` are more arguments.
fn planning_frozen(extra: &[&str]) -> (Paused, Frozen, String) {
    let c = clusters();
    let tables = "CREATE TABLE t1 (id int); CREATE TABLE t2 (id int);";
    let src = database(
        &c.source,
        &format!("{tables} INSERT INTO t1 SELECT generate_series(1, 100);"),
    );
    let d1 = database(&c.dest[0], tables);
    let state = TempPath::new("frozen-planning.state");
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&d1));
    let mut args = vec![
        "table",
        "t1",
        "t2",
        "--from",
        &from,
        "--to",
        &to,
        "--state",
        state.arg(),
    ];
    args.extend(extra);
    let paused = Paused::start(&args, "planning:1");
    // Its planning session, not the watch's (which may have connected by then, under load).
    let frozen = Frozen::backend(&c.dest[0], &d1, PLANNING_SESSION);
    (paused, frozen, d1)
}

/// A destination's planning session that stops answering (its backend frozen after the tables
/// were looked up) fails the job at `--stall-timeout`, naming that destination, with nothing
/// copied. Each of the plan's later questions there waited a timeout of its own in turn (over
/// thousands of tables, hours), the answers taken for "nothing stands in the way": the job then
/// copied without the plan's checks there.
#[test]
fn a_planning_session_that_stalls_fails_the_job_at_the_stall_timeout() {
    let c = clusters();
    let (paused, frozen, d1) = planning_frozen(&["--stall-timeout", "2s"]);
    let out = paused.resume();
    drop(frozen);
    let stderr = text(&out.stderr);
    assert_exit(&out, 1);
    assert!(
        stderr.contains("destination 1 ")
            && stderr.contains("stalled for 2 s while the job planned"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &d1, "t1"), 0);
    assert!(settle_backends(&c.dest[0], &d1).is_empty());
}

/// One signal ends a job's planning whose destination backend froze under a catalog question
/// (no `--stall-timeout`): the planning sessions' waits are cut short after the interrupt's
/// grace, as a copy's IO. The cancel request it sent never reached the frozen backend, and the
/// planning waited until a second signal.
#[test]
fn one_signal_ends_a_planning_whose_backend_froze() {
    let c = clusters();
    let (paused, frozen, d1) = planning_frozen(&[]);
    let (ended, out) = one_term_while_frozen(paused, frozen);
    let stderr = text(&out.stderr);
    assert!(ended, "one SIGTERM did not end the planning\n{stderr}");
    assert_exit(&out, 143);
    assert!(stderr.contains("interrupted by SIGTERM"), "{stderr}");
    // What it said it does is what it did: no table kept "recorded in the state file".
    assert!(
        stderr.contains(
            "SIGTERM received: stopping the job while it is planned: this run copies nothing"
        ) && stderr.contains("to go on, run the same command again"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &d1, "t1"), 0);
    assert!(settle_backends(&c.dest[0], &d1).is_empty());
}

/// One signal ends a one-table run whose destination's backend froze before the copy (under its
/// `BEGIN`, the statement that opens it): its session's wait is cut short after the interrupt's
/// grace, the other destination rolls back, nothing is committed. The cancel request never
/// reached the frozen backend, and the run waited until a second signal.
#[test]
fn one_signal_ends_a_run_whose_destination_froze_before_the_copy() {
    let c = clusters();
    let table = "CREATE TABLE t (id int);";
    let src = database(
        &c.source,
        &format!("{table} INSERT INTO t SELECT generate_series(1, 100);"),
    );
    let d1 = database(&c.dest[0], table);
    let d2 = database(&c.dest[1], &format!("{table} INSERT INTO t VALUES (-1);"));
    let args = [
        "table",
        "t",
        "--truncate",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&d1),
        "--to",
        &c.dest[1].conninfo(&d2),
    ];
    let paused = Paused::start(&args, "begun:0");
    let frozen = Frozen::backend(&c.dest[1], &d2, "pid <> pg_backend_pid()");
    let (ended, out) = one_term_while_frozen(paused, frozen);
    let stderr = text(&out.stderr);
    assert!(ended, "one SIGTERM did not end the run\n{stderr}");
    assert_exit(&out, 143);
    assert_eq!(count(&c.dest[0], &d1, "t"), 0);
    assert_eq!(count(&c.dest[1], &d2, "t"), 1, "{stderr}");
    assert!(settle_backends(&c.dest[0], &d1).is_empty());
    assert!(settle_backends(&c.dest[1], &d2).is_empty());
}

/// One signal ends a job whose worker's destination backend froze between two tables (under
/// the next table's `BEGIN`): every session of the job carries the interrupt, so that wait is
/// cut short after the grace; the table committed before stays committed, the next one has
/// nothing there. The cancel request never reached the frozen backend, and the job waited
/// until a second signal.
#[test]
fn one_signal_ends_a_job_whose_destination_froze_between_tables() {
    let c = clusters();
    let tables = "CREATE TABLE t1 (id int); CREATE TABLE t2 (id int);";
    let src = database(
        &c.source,
        &format!(
            "{tables} INSERT INTO t1 SELECT generate_series(1, 100);
             INSERT INTO t2 SELECT generate_series(1, 100);"
        ),
    );
    let d1 = database(&c.dest[0], tables);
    let state = TempPath::new("frozen-between.state");
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&d1));
    let args = [
        "table",
        "t1",
        "t2",
        "--from",
        &from,
        "--to",
        &to,
        "--jobs",
        "1",
        "--state",
        state.arg(),
    ];
    let paused = Paused::start(&args, "committed:1");
    let frozen = Frozen::backend(&c.dest[0], &d1, "query = 'COMMIT'");
    let (ended, out) = one_term_while_frozen(paused, frozen);
    let stderr = text(&out.stderr);
    assert!(ended, "one SIGTERM did not end the job\n{stderr}");
    assert_exit(&out, 143);
    let (first, second) = if count(&c.dest[0], &d1, "t1") == 100 {
        ("t1", "t2")
    } else {
        ("t2", "t1")
    };
    assert_eq!(count(&c.dest[0], &d1, first), 100, "{stderr}");
    assert_eq!(count(&c.dest[0], &d1, second), 0, "{stderr}");
    assert!(settle_backends(&c.dest[0], &d1).is_empty());
}

/// A job's destination whose backend froze after its COPY, before its COMMIT (under the
/// transaction id its `commit` line records: a SELECT, nothing committed yet), is bounded by
/// `--stall-timeout` as during the copy: the table fails, nothing committed anywhere, and the
/// job ends while the backend is still frozen — its session closed, not sent a ROLLBACK that
/// would wait behind the unanswered question. It was waited for in silence, neither the stall
/// timeout nor one signal ending it; then for its ROLLBACK.
#[test]
fn a_job_destination_frozen_before_its_commit_is_given_up_at_the_stall_timeout() {
    let c = clusters();
    let table = "CREATE TABLE t (id int PRIMARY KEY);";
    let src = database(
        &c.source,
        &format!("{table} INSERT INTO t SELECT generate_series(1, 150);"),
    );
    // Destination 1 ends its COPY 8 s late: destination 2 waits, its COPY done, meanwhile.
    let d1 = database(
        &c.dest[0],
        &format!(
            "{table} CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql
               AS $$BEGIN PERFORM pg_sleep(8); RETURN NULL; END$$;
             CREATE TRIGGER slow AFTER INSERT ON t FOR EACH STATEMENT EXECUTE FUNCTION slow();"
        ),
    );
    let d2 = database(&c.dest[1], table);
    let state = TempPath::new("frozen-before-commit.state");
    let mut child = copyman()
        .args(["table", "t", "--from", &c.source.conninfo(&src)])
        .args([
            "--to",
            &c.dest[0].conninfo(&d1),
            "--to",
            &c.dest[1].conninfo(&d2),
        ])
        .args([
            "--state",
            state.arg(),
            "--jobs",
            "1",
            "--stall-timeout",
            "2s",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = StderrLines::take(&mut child);
    let pid = loop {
        let found: Option<i32> = c.dest[1]
            .connect("postgres")
            .query_opt(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1 \
                 AND state = 'idle in transaction' AND query ILIKE 'COPY%'",
                &[&d2],
            )
            .unwrap()
            .map(|r| r.get(0));
        if let Some(pid) = found {
            break pid;
        }
        assert!(child.try_wait().unwrap().is_none(), "{}", stderr.seen());
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let frozen = Frozen::stop(pid);
    let ended = ends_while_frozen(&mut child, frozen);
    let status = child.wait().unwrap();
    let rest = stderr.rest();
    assert!(ended, "the job waited for the frozen destination\n{rest}");
    assert_eq!(status.code(), Some(1), "{rest}");
    assert!(
        rest.contains("destination 2") && rest.contains("reading its transaction id"),
        "{rest}"
    );
    assert_eq!(count(&c.dest[0], &d1, "t"), 0, "{rest}");
    assert_eq!(count(&c.dest[1], &d2, "t"), 0, "{rest}");
    assert!(settle_backends(&c.dest[1], &d2).is_empty());
}

/// One signal ends a one-table run whose second destination's backend froze once the source
/// had sent everything (in its COPY: its data, or its end, in the socket), or before its commit
/// (under the check of its constraints, which commits nothing): the wait is cut after the
/// grace, and the frozen one's ROLLBACK is not waited for (its closed session rolls back);
/// nothing committed. Each was waited for until a second signal (only the answer of a
/// statement that may commit is waited for whatever comes; a PREPARE's is not either:
/// `atomic.rs`). Under a `--stall-timeout` longer than the
/// grace, the error says the interrupt's grace cut it, not a stall timeout (which it was said as).
#[test]
fn one_signal_ends_a_run_whose_destination_froze_after_the_data() {
    let c = clusters();
    let table = "CREATE TABLE t (id int, v text);";
    let src = database(
        &c.source,
        &format!("{table} INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 100) g;"),
    );
    for point in ["begun:2", "checked:1"] {
        let d1 = database(&c.dest[0], table);
        let d2 = database(&c.dest[1], table);
        let args = [
            "table",
            "t",
            "--from",
            &c.source.conninfo(&src),
            "--to",
            &c.dest[0].conninfo(&d1),
            "--to",
            &c.dest[1].conninfo(&d2),
            "--stall-timeout",
            "30s",
        ];
        let paused = Paused::start(&args, point);
        let frozen = Frozen::backend(&c.dest[1], &d2, "pid <> pg_backend_pid()");
        let (ended, out) = one_term_while_frozen(paused, frozen);
        let stderr = text(&out.stderr);
        assert!(ended, "{point}: one SIGTERM did not end the run\n{stderr}");
        assert_exit(&out, 143);
        assert!(
            stderr.contains("after the interrupt") && !stderr.contains("stall timeout"),
            "{point}: {stderr}"
        );
        assert_eq!(count(&c.dest[0], &d1, "t"), 0, "{point}: {stderr}");
        assert_eq!(count(&c.dest[1], &d2, "t"), 0, "{point}: {stderr}");
        assert!(settle_backends(&c.dest[1], &d2).is_empty());
    }
}

/// `copyman ARGS` with the watch's waits said after a second, and its first "nothing has moved"
/// line (a panic with what it said, if none comes).
fn first_stuck_line(args: &[&str]) -> (std::process::Child, StderrLines, String) {
    let mut child = copyman()
        .args(args)
        .env("COPYMAN_TEST_SAY_AFTER", "1")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = StderrLines::take(&mut child);
    let said = stderr.wait_for("nothing has moved");
    let said = said.unwrap_or_else(|| panic!("nothing said: {}", stderr.seen()));
    (child, stderr, said)
}

/// A destination slow to end its COPY (a trigger that sleeps on its first row, with every byte
/// sent): the watch says the run waits for it to answer the end of its data, and does not
/// advise `--stall-timeout`, which does not bound that wait (it did); the copy then commits.
#[test]
fn a_wait_for_the_end_of_a_copy_is_said_without_the_stall_timeout() {
    let c = clusters();
    let table = "CREATE TABLE t (id int8 PRIMARY KEY, v text);";
    let src = database(
        &c.source,
        &format!("{table} INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 1000) g;"),
    );
    let d1 = database(&c.dest[0], table);
    let d2 = database(
        &c.dest[1],
        &format!(
            "{table} CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN
               IF NEW.id = 1 THEN PERFORM pg_sleep(8); END IF; RETURN NEW; END$$;
             CREATE TRIGGER slow BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION slow();"
        ),
    );
    let (mut child, stderr, said) = first_stuck_line(&[
        "table",
        "t",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&d1),
        "--to",
        &c.dest[1].conninfo(&d2),
    ]);
    assert!(
        said.contains("copyman waits for destination 2 to answer the end of its data")
            && said.contains("--stall-timeout does not bound the end of a COPY")
            && !said.contains("--stall-timeout bounds"),
        "{said}"
    );
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{}", stderr.rest());
    assert_eq!(count(&c.dest[0], &d1, "t"), 1000);
    assert_eq!(count(&c.dest[1], &d2, "t"), 1000);
}

/// The slow destination given first: the one that answered (idle in its transaction, its
/// answer unread while copyman reads the slow one's) is not said to be waited for (it was
/// "destination 1 and destination 2", by the order of `--to`; live37 F2).
#[test]
fn a_wait_for_the_end_of_a_copy_names_only_the_destination_that_has_not_answered() {
    let c = clusters();
    let table = "CREATE TABLE t (id int8 PRIMARY KEY, v text);";
    let src = database(
        &c.source,
        &format!("{table} INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 1000) g;"),
    );
    let d1 = database(
        &c.dest[0],
        &format!(
            "{table} CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN
               IF NEW.id = 1 THEN PERFORM pg_sleep(8); END IF; RETURN NEW; END$$;
             CREATE TRIGGER slow BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION slow();"
        ),
    );
    let d2 = database(&c.dest[1], table);
    let (from, to1, to2) = (
        c.source.conninfo(&src),
        c.dest[0].conninfo(&d1),
        c.dest[1].conninfo(&d2),
    );
    let one = ["table", "t", "--from", &from, "--to", &to1, "--to", &to2];
    let (mut child, stderr, said) = first_stuck_line(&one);
    assert!(
        said.contains("copyman waits for destination 1 to answer the end of its data")
            && !said.contains("destination 1 and destination 2")
            // Working, not frozen: no backend waits for its client (live37 F8).
            && said.contains("the destinations end their COPY")
            && !said.contains("is frozen"),
        "{said}"
    );
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{}", stderr.rest());
    assert_eq!(count(&c.dest[1], &d2, "t"), 1000);
    // A job's watch too (progress45 F4: "destination 1 and destination 2", one idle for 10 s).
    let state = TempPath::new("end-of-data.state");
    let job = [&one[..], &["--truncate", "--state", state.arg()]].concat();
    let (mut child, stderr, said) = first_stuck_line(&job);
    assert!(
        said.contains("copyman waits for destination 1 to answer the end of its data")
            && !said.contains("destination 1 and destination 2"),
        "{said}"
    );
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{}", stderr.rest());
    assert_eq!(count(&c.dest[1], &d2, "t"), 1000);
}

/// A destination waiting for a lock another session holds: "nothing has moved" names the lock
/// and its holder and advises `--lock-timeout`, which bounds it, not the frozen-server hint and
/// `--stall-timeout` (firsthour36 F5); the copy goes on once the lock goes.
#[test]
fn a_lock_wait_is_said_with_its_holder_and_the_lock_timeout() {
    let c = clusters();
    let table = "CREATE TABLE t (id int8 PRIMARY KEY, v text);";
    let src = database(
        &c.source,
        &format!("{table} INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 1000) g;"),
    );
    let d1 = database(&c.dest[0], table);
    let mut holder = c.dest[0].connect(&d1);
    holder
        .batch_execute("BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let (mut child, stderr, said) = first_stuck_line(&[
        "table",
        "t",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&d1),
    ]);
    assert!(
        said.contains("(waiting for a lock: backend ")
            && said.contains("--lock-timeout bounds a lock wait")
            && !said.contains("--stall-timeout")
            && !said.contains("is frozen"),
        "{said}"
    );
    // Said again while it lasts, shortly, with the lock (it was said once: live37 F5).
    let mut stderr = stderr;
    let again = stderr.wait_for("still nothing has moved for ");
    let again = again.unwrap_or_else(|| panic!("said once: {}", stderr.seen()));
    assert!(again.contains("waits for a relation lock on t"), "{again}");
    holder.batch_execute("ROLLBACK").unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{}", stderr.rest());
    assert_eq!(count(&c.dest[0], &d1, "t"), 1000);
    // An advisory lock (a trigger's) by its key, not "an advisory lock on advisory"
    // (progress45 F8).
    let d2 = database(
        &c.dest[0],
        &format!(
            "{table} CREATE FUNCTION held() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN
               PERFORM pg_advisory_xact_lock(42); RETURN NEW; END$$;
             CREATE TRIGGER held BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION held();"
        ),
    );
    let mut holder = c.dest[0].connect(&d2);
    holder
        .batch_execute("BEGIN; SELECT pg_advisory_xact_lock(42)")
        .unwrap();
    let (mut child, stderr, said) = first_stuck_line(&[
        "table",
        "t",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&d2),
    ]);
    assert!(
        said.contains("waits for an advisory lock on key 42"),
        "{said}"
    );
    holder.batch_execute("ROLLBACK").unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{}", stderr.rest());
    assert_eq!(count(&c.dest[0], &d2, "t"), 1000);
}

/// A destination frozen before it read its `PREPARE TRANSACTION`, whose run is stopped by a
/// signal: its `ROLLBACK PREPARED`, sent on a new session while the frozen backend may still
/// prepare it, is not resent as fast as it is refused — twenty "prepared transaction … does
/// not exist" ERRORs a second filled that server's log for as long as it was frozen
/// (signals65 F1). The transaction is asked for without an error until it shows.
#[test]
fn a_rollback_waiting_for_a_frozen_prepare_does_not_flood_its_server_log() {
    let c = two_phase_clusters();
    let table = "CREATE TABLE t (id int);";
    let src = database(
        &c.source,
        &format!("{table} INSERT INTO t SELECT generate_series(1, 100);"),
    );
    let d1 = database(&c.dest[0], table);
    let d2 = database(&c.dest[1], table);
    let decisions = TempPath::new("frozen-prepare.log");
    let args = [
        "table",
        "t",
        "--atomic",
        "--decision-log",
        decisions.arg(),
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&d1),
        "--to",
        &c.dest[1].conninfo(&d2),
    ];
    let paused = Paused::start(&args, "prepared:1");
    let frozen = Frozen::backend(&c.dest[1], &d2, "application_name = 'copyman'");
    // (Read lossily: another test's data that no encoding holds may be quoted there.)
    let read_log = || {
        String::from_utf8_lossy(&std::fs::read(c.dest[1].log_file()).unwrap_or_default())
            .into_owned()
    };
    let log_before = read_log().len();
    let (ended, out) = one_term_while_frozen(paused, frozen);
    let stderr = text(&out.stderr);
    assert!(ended, "one SIGTERM did not end the run\n{stderr}");
    assert_exit(&out, 143);
    // Its transaction there, as the summary names it (rollback pending).
    let gid = (stderr.split(['\'', '"', ' ']))
        .find(|w| w.starts_with("copyman:") && w.ends_with(":2"))
        .unwrap_or_else(|| panic!("no transaction of destination 2 named\n{stderr}"))
        .to_owned();
    let log = read_log();
    let refused = (log.get(log_before.min(log.len())..).unwrap_or_default())
        .lines()
        .filter(|l| l.contains("ERROR:") && l.contains(&format!("\"{gid}\" does not exist")))
        .count();
    assert!(refused <= 3, "{refused} refusals in its log\n{stderr}");
    assert_eq!(count(&c.dest[0], &d1, "t"), 0);
}

/// `--stall-timeout` bounds an `--atomic` PREPARE, which decides nothing: one waiting for a
/// synchronous standby that is not there held the run for ever, said every ten seconds
/// (commit68 F10; a job's too, recheck70 F4). Given up at the limit, cancelled (prepared by
/// then, its server says), and the commit called off: nothing committed, nothing left
/// prepared, exit 1; one table and a job alike.
#[test]
fn a_prepare_waiting_for_a_standby_is_given_up_at_the_stall_timeout() {
    let c = two_phase_clusters();
    let table = "CREATE TABLE t (id int8 PRIMARY KEY, v text);";
    let src = database(
        &c.source,
        &format!("{table} INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 1000) g;"),
    );
    for job in [false, true] {
        let d1 = database(&c.dest[0], table);
        let stuck = stuck_database(table);
        let decisions = TempPath::new("prepare-stall.log");
        let state = TempPath::new("prepare-stall.state");
        let job_args = ["--state", state.arg()];
        let child = copyman()
            .args([
                "table",
                "t",
                "--atomic",
                "--decision-log",
                decisions.arg(),
                "--stall-timeout",
                "2s",
                "--from",
                &c.source.conninfo(&src),
                "--to",
                &c.dest[0].conninfo(&d1),
                "--to",
                &syncrep().conninfo(&stuck),
            ])
            .args(if job { &job_args[..] } else { &[] })
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (status, said) = ended_within_a_minute(child, &stuck, &format!("job {job}: the run"));
        assert_eq!(status.code(), Some(1), "job {job}: {said}");
        if job {
            assert!(
                said.contains(
                    "its PREPARE TRANSACTION was not answered within --stall-timeout 2 s"
                ),
                "{said}"
            );
        } else {
            assert!(said.contains("nothing committed"), "{said}");
            // Its wait said as one that ends (it said "not cancelled").
            assert!(
                said.contains("'s PREPARE TRANSACTION")
                    && said.contains("(given up at --stall-timeout 2 s: nothing is decided"),
                "{said}"
            );
        }
        // Its ROLLBACK PREPARED waited for the standby in turn: cancelled, said as a job says it.
        assert!(
            said.contains("ROLLBACK PREPARED") && said.contains("its wait is cancelled"),
            "job {job}: {said}"
        );
        assert_eq!(count(&c.dest[0], &d1, "t"), 0);
        assert_eq!(count(syncrep(), &stuck, "t"), 0);
        for (cluster, db) in [(&c.dest[0], &d1), (syncrep(), &stuck)] {
            assert_eq!(
                prepared_in_db(cluster, db),
                0,
                "job {job}: left prepared: {said}"
            );
        }
    }
}

/// Under `--keep-going`, a destination whose `--atomic` PREPARE waited for a missing synchronous
/// standby and was given up at the stall timeout is rolled back prepared by the run once the
/// others committed, one table and a job alike (recheck71 F3: each left prepared, holding its
/// table's locks, for a recover that then waited for ever); and `copyman recover` rolling back
/// one there cancels its ROLLBACK PREPARED's wait for the standby, as a run cancels its own
/// (recheck70 F11).
#[test]
fn a_prepare_given_up_under_keep_going_is_rolled_back_and_recover_cancels_the_wait() {
    let c = two_phase_clusters();
    let table = "CREATE TABLE t (id int8 PRIMARY KEY, v text);";
    let src = database(
        &c.source,
        &format!("{table} INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 1000) g;"),
    );
    let prepared = |db: &str| prepared_in_db(syncrep(), db);
    let ended = |child, stuck: &str| ended_within_a_minute(child, stuck, "it");
    for job in [false, true] {
        let d1 = database(&c.dest[0], table);
        let stuck = stuck_database(table);
        let decisions = TempPath::new("keep-going-standby.log");
        let state = TempPath::new("keep-going-standby.state");
        let (from, to1, to2) = (
            c.source.conninfo(&src),
            c.dest[0].conninfo(&d1),
            syncrep().conninfo(&stuck),
        );
        let child = copyman()
            .args([
                "table",
                "t",
                "--atomic",
                "--keep-going",
                "--stall-timeout",
                "2s",
            ])
            .args(["--decision-log", decisions.arg(), "--from", &from])
            .args(["--to", &to1, "--to", &to2])
            .args(if job {
                vec!["--state", state.arg()]
            } else {
                vec![]
            })
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (status, said) = ended(child, &stuck);
        assert_eq!(status.code(), Some(4), "job {job}: {said}");
        assert_eq!(prepared(&stuck), 0, "job {job}: {said}");
        assert_eq!(count(&c.dest[0], &d1, "t"), 1000, "job {job}");
        assert_eq!(count(syncrep(), &stuck, "t"), 0, "job {job}");
    }
    // A transaction prepared there before (a run killed), of a run id a copyman command makes:
    // recover rolls it back, its wait for the standby cancelled.
    let stuck = stuck_database(table);
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 100;
    let gid = format!("copyman:{secs}-4194000-abcd:1");
    syncrep()
        .connect(&stuck)
        .batch_execute(&format!(
            "SET synchronous_commit = local; BEGIN; INSERT INTO t VALUES (1, 'x'); \
             PREPARE TRANSACTION '{gid}'"
        ))
        .unwrap();
    assert_eq!(prepared(&stuck), 1);
    let child = copyman()
        .args([
            "recover",
            "--to",
            &syncrep().conninfo(&stuck),
            "--no-decision-log",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (status, said) = ended(child, &stuck);
    // (Exit 1 where another test's transaction waits in another database of that server.)
    assert!(
        status.code() == Some(0)
            || (status.code() == Some(1) && said.contains("in other databases of this server")),
        "{said}"
    );
    assert!(
        said.contains("its wait is cancelled") && said.contains(": rolled back"),
        "{said}"
    );
    assert_eq!(prepared(&stuck), 0, "{said}");
    assert_eq!(count(syncrep(), &stuck, "t"), 0);
}

/// A writing `--send` under `--atomic` whose source waits for a missing synchronous standby in
/// its PREPARE: given up at the stall timeout, and rolled back prepared by the run itself, as a
/// destination's is — nothing left prepared on the source holding the move's row locks
/// (recheck70 F14: left for recover, said "the connection was lost").
#[test]
fn a_sources_prepare_given_up_is_rolled_back_by_the_run() {
    let c = two_phase_clusters();
    let table = "CREATE TABLE q (id int PRIMARY KEY, v text);";
    let stuck = stuck_database(&format!(
        "{table} INSERT INTO q SELECT g, 'q' FROM generate_series(1, 100) g;"
    ));
    let d1 = database(&c.dest[0], table);
    let decisions = TempPath::new("source-prepare-stall.log");
    let child = copyman()
        .args(["copy", "--from", &syncrep().conninfo(&stuck)])
        .args(["--send", "COPY (DELETE FROM q RETURNING *) TO STDOUT"])
        .args([
            "--to",
            &c.dest[0].conninfo(&d1),
            "--receive",
            "COPY q FROM STDIN",
        ])
        .args([
            "--atomic",
            "--stall-timeout",
            "2s",
            "--decision-log",
            decisions.arg(),
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (status, said) = ended_within_a_minute(child, &stuck, "the run");
    assert_eq!(status.code(), Some(1), "{said}");
    assert!(
        said.contains("its PREPARE TRANSACTION was not answered within --stall-timeout 2 s")
            && said.contains("nothing committed")
            && !said.contains("run copyman recover"),
        "{said}"
    );
    assert_eq!(prepared_in_db(syncrep(), &stuck), 0, "{said}");
    assert_eq!(count(syncrep(), &stuck, "q"), 100, "the move's rows stay");
    assert_eq!(count(&c.dest[0], &d1, "q"), 0);
}

/// A one-table run whose destination's backend freezes while it plans (here in a wait for a
/// lock): given up at the stall timeout, its backend — which stays, holding what its question
/// locked — is ended there or said with the statement that ends it (recheck70 F12: one error
/// line, not a word of it).
#[test]
fn a_backend_frozen_while_planning_is_said() {
    let c = clusters();
    let table = "CREATE TABLE t (id int8, v text);";
    let src = database(
        &c.source,
        &format!("{table} INSERT INTO t VALUES (1, 'a');"),
    );
    let d1 = database(&c.dest[0], table);
    let mut holder = c.dest[0].connect(&d1);
    holder
        .batch_execute("BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&d1));
    let child = copyman()
        .args([
            "table",
            "t",
            "--from",
            &from,
            "--to",
            &to,
            "--stall-timeout",
            "3s",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let frozen = Frozen::backend(
        &c.dest[0],
        &d1,
        "wait_event_type = 'Lock' AND pid <> pg_backend_pid()",
    );
    holder.batch_execute("ROLLBACK").unwrap();
    let out = child.wait_with_output().unwrap();
    let pid = frozen.0;
    drop(frozen);
    let stderr = text(&out.stderr);
    assert!(out.status.code().is_some_and(|c| c > 0), "{stderr}");
    assert!(
        stderr.contains(&format!("end it there: SELECT pg_terminate_backend({pid})")),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &d1, "t"), 0);
}
