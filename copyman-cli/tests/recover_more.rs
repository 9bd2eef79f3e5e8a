//! Two-phase commit around jobs and `copyman recover`, against real clusters that allow
//! prepared transactions (copyman killed with SIGKILL at a point of its commit):
//!
//! 1. a job's `--atomic` decisions name their parties, so `recover` given every destination
//!    finishes the run, and given only some says which party it could not see (exit 1);
//! 2. a stale decision log holding only a run's start never makes `recover` roll back a run the
//!    servers show partly finished;
//! 3. a job stopped because its tables wait on each other advises what works, not `--resume`
//!    alone;
//! 4. the job's max_prepared_transactions refusal names the destination it asked;
//! 5. the decision log holds: a line a failed write left torn is cut off before the next one
//!    (it read as a commit), a recover given another spelling of the log's path sees the run in
//!    progress, a run's start names its servers (a recover not given one of a run that died
//!    before its decision says so, exit 1), and a source is named before it prepares.

mod common;

use std::fs;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::Duration;

use common::*;
use copyman_testkit::Cluster;
use serde_json::Value;

const T: &str = "CREATE TABLE t (id int PRIMARY KEY, v text);";
const FILL: &str = "INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 300) AS g;";

/// One test at a time: each leaves prepared transactions that a recover of another, on the same
/// servers, would see (in another database).
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `recover --to URL … --decision-log LOG`.
fn recover_args(to: &[&String], log: &str) -> Vec<String> {
    let mut args = vec!["recover".to_owned()];
    for url in to {
        args.extend(["--to".to_owned(), (*url).clone()]);
    }
    args.extend(["--decision-log".to_owned(), log.to_owned()]);
    args
}

fn recover(to: &[&String], log: &str) -> std::process::Output {
    copyman()
        .args(recover_args(to, log))
        .arg("--json")
        .output()
        .expect("run copyman recover")
}

/// A source with `t` filled, two destinations with `t` empty: (source, [d1, d2]).
fn databases(s: &Clusters, schema: &str, fill: &str) -> (String, [String; 2]) {
    (
        database(&s.source, &format!("{schema} {fill}")),
        [database(&s.dest[0], schema), database(&s.dest[1], schema)],
    )
}

/// `copyman table TABLES --state … --jobs 1 --atomic` from `src` to both destinations: a job.
fn job_args(
    s: &Clusters,
    src: &str,
    dbs: &[String; 2],
    tables: &[&str],
    state: &TempPath,
    log: &TempPath,
) -> Vec<String> {
    let mut args: Vec<String> = vec!["table".into()];
    args.extend(tables.iter().map(|t| (*t).to_owned()));
    args.extend(["--from".into(), s.source.url(src)]);
    for (cluster, db) in s.dest.iter().zip(dbs) {
        args.extend(["--to".into(), cluster.url(db)]);
    }
    args.extend([
        "--state".into(),
        state.arg().into(),
        "--jobs".into(),
        "1".into(),
        "--atomic".into(),
        "--decision-log".into(),
        log.arg().into(),
    ]);
    args
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// The lines of the decision log at `log` that start with `kind`.
fn log_lines(log: &TempPath, kind: &str) -> Vec<String> {
    fs::read_to_string(&log.0)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with(kind))
        .map(str::to_owned)
        .collect()
}

// Point 1: a job's decisions name their parties.

/// Killed after destination 1's COMMIT PREPARED of the table and before destination 2's: the
/// decision recorded a `party` line for each destination; recover given both commits the rest
/// (exit 0), every destination then holds the source's rows, nothing is left prepared or open.
#[test]
fn job_killed_between_commit_prepareds_is_finished_by_recover_given_every_destination() {
    let _serial = serial();
    let s = two_phase_clusters();
    let (src, dbs) = databases(s, T, FILL);
    let (state, log) = (TempPath::new("job-all.state"), TempPath::new("job-all.log"));
    let args = job_args(s, &src, &dbs, &["t"], &state, &log);
    Paused::start(&strs(&args), "commit-prepared:1").kill();

    assert_eq!(
        count(&s.dest[0], &dbs[0], "t"),
        300,
        "destination 1 committed"
    );
    assert_eq!(
        count(&s.dest[1], &dbs[1], "t"),
        0,
        "destination 2 only prepared"
    );
    let left = prepared_in(&s.dest[1], &dbs[1]);
    assert_eq!(left.len(), 1, "{left:?}");
    let parties = log_lines(&log, "party ");
    assert_eq!(
        parties.len(),
        2,
        "a party line per destination: {parties:?}"
    );
    assert!(
        parties
            .iter()
            .any(|p| p.contains(&left[0]) && p.contains("destination%202")),
        "{parties:?}"
    );

    // The killed run's lock file stays beside the log until a recovery finds it unlocked.
    let lock_files = || -> Vec<String> {
        let prefix = format!(".{}.", log.0.file_name().unwrap().to_str().unwrap());
        fs::read_dir(log.0.parent().unwrap())
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|name| name.starts_with(&prefix) && name.contains(".lock"))
            .collect()
    };
    assert_eq!(lock_files().len(), 1, "{:?}", lock_files());

    let urls: Vec<String> = s.dest.iter().zip(&dbs).map(|(c, d)| c.url(d)).collect();
    let out = recover(&urls.iter().collect::<Vec<_>>(), log.arg());
    assert_exit(&out, 0);
    assert_eq!(json(&out)["status"], "ok");
    assert_eq!(
        lock_files(),
        Vec::<String>::new(),
        "removed by the recovery"
    );
    let expected = digest(&s.source, &src, "t");
    for (cluster, db) in s.dest.iter().zip(&dbs) {
        assert_eq!(digest(cluster, db, "t"), expected, "{db}");
        assert_eq!(prepared_in(cluster, db), Vec::<String>::new());
        assert_eq!(settle_backends(cluster, db), Vec::<String>::new());
    }
    // Finished: recorded so, later recoveries need not ask for its servers.
    assert!(!log_lines(&log, "done ").is_empty());
}

/// The same kill, the log's decision then edited to leave destination 2's transaction out
/// (its `party` lines still name it, no `out` line): recover neither commits nor rolls it back
/// (it rolled it back, exit 0, splitting the run: atomic45 F2), says the log contradicts
/// itself, and exits 1; the transaction stays prepared for the DBA to finish.
#[test]
fn a_decision_that_leaves_out_a_party_the_log_names_is_not_taken_for_a_rollback() {
    let _serial = serial();
    let s = two_phase_clusters();
    let (src, dbs) = databases(s, T, FILL);
    let (state, log) = (
        TempPath::new("job-edit.state"),
        TempPath::new("job-edit.log"),
    );
    let args = job_args(s, &src, &dbs, &["t"], &state, &log);
    Paused::start(&strs(&args), "commit-prepared:1").kill();
    let left = prepared_in(&s.dest[1], &dbs[1]);
    assert_eq!(left.len(), 1, "{left:?}");
    let text = fs::read_to_string(&log.0).unwrap();
    let edited: String = text
        .lines()
        .map(|l| match l.starts_with("commit ") {
            true => l.replace(&format!(" {}", left[0]), ""),
            false => l.to_owned(),
        })
        .map(|l| l + "\n")
        .collect();
    assert_ne!(edited, text, "the decision named it");
    fs::write(&log.0, edited).unwrap();
    let urls: Vec<String> = s.dest.iter().zip(&dbs).map(|(c, d)| c.url(d)).collect();
    let out = recover(&urls.iter().collect::<Vec<_>>(), log.arg());
    assert_exit(&out, 1);
    let doc = json(&out);
    assert!(
        doc.to_string().contains("the log contradicts itself"),
        "{doc}"
    );
    assert_eq!(prepared_in(&s.dest[1], &dbs[1]), left);
    assert_eq!(count(&s.dest[1], &dbs[1], "t"), 0);
    // The DBA finishes it as the run decided.
    s.dest[1]
        .connect(&dbs[1])
        .batch_execute(&format!("COMMIT PREPARED '{}'", left[0]))
        .unwrap();
    assert_eq!(count(&s.dest[1], &dbs[1], "t"), 300);
}

/// An `--atomic` job killed once its transactions were prepared, before its decision: a
/// `--resume` refuses the table still prepared, naming the recover that finishes it with the
/// job's decision log (it said "copyman recover", which read the default log, found no line of
/// the run, and left it alone: signals45 F5), and which way it goes, as the log records it
/// (jobs72 F4: "cannot be told yet", of a transaction whose commit the log recorded). Followed,
/// it finishes the run, and the resume then copies exactly what is missing.
#[test]
fn a_resume_refused_by_a_prepared_table_names_the_runs_decision_log() {
    let _serial = serial();
    let s = two_phase_clusters();
    // Killed before the decision (rolled back), and after the first COMMIT PREPARED.
    for (pause, way) in [
        (
            "prepared:2",
            "its run's decision log records no commit of it: it rolls it back",
        ),
        (
            "commit-prepared:1",
            "its run's decision log records commit: it commits it",
        ),
    ] {
        let (src, dbs) = databases(s, T, FILL);
        let (state, log) = (
            TempPath::new("job-prep.state"),
            TempPath::new("job-prep.log"),
        );
        let mut args = job_args(s, &src, &dbs, &["t"], &state, &log);
        Paused::start(&strs(&args), pause).kill();
        assert_eq!(prepared_in(&s.dest[1], &dbs[1]).len(), 1, "{pause}");
        args.push("--resume".into());
        let out = copyman().args(&args).output().unwrap();
        assert_exit(&out, 2);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(&format!(
                "finish it with copyman recover given this job's --to and --decision-log {} \
                 ({way}), then resume",
                log.arg()
            )) && stderr.contains("is prepared as copyman:"),
            "{pause}: {stderr}"
        );
        let urls: Vec<String> = s.dest.iter().zip(&dbs).map(|(c, d)| c.url(d)).collect();
        assert_exit(&recover(&urls.iter().collect::<Vec<_>>(), log.arg()), 0);
        for (cluster, db) in s.dest.iter().zip(&dbs) {
            assert!(prepared_in(cluster, db).is_empty());
        }
        assert_exit(&copyman().args(&args).output().unwrap(), 0);
        for (cluster, db) in s.dest.iter().zip(&dbs) {
            assert_eq!(count(cluster, db, "t"), 300, "{pause}");
        }
    }
}

/// A resume given another `--decision-log` than the job's, killed once its transactions were
/// prepared: the next `--resume` names the log that resume decided in (the state file named the
/// job's first log only, which has no line of that run: recover left it alone, recheck48b F1);
/// a resume refused before that names the job's log, which holds the first run.
#[test]
fn a_resume_refused_by_a_prepared_table_names_the_log_of_the_run_that_prepared_it() {
    let _serial = serial();
    let s = two_phase_clusters();
    let (src, dbs) = databases(s, T, FILL);
    let (state, log, other) = (
        TempPath::new("job-logs.state"),
        TempPath::new("job-logs.log"),
        TempPath::new("job-logs-other.log"),
    );
    let args = job_args(s, &src, &dbs, &["t"], &state, &log);
    Paused::start(&strs(&args), "prepared:2").kill();
    let urls: Vec<String> = s.dest.iter().zip(&dbs).map(|(c, d)| c.url(d)).collect();
    let names = |log: &TempPath| {
        format!(
            "finish it with copyman recover given this job's --to and --decision-log {}",
            log.arg()
        )
    };
    // Given OTHER, which holds no line of the first run: the job's log is named.
    let mut resume = args.clone();
    let at = resume.iter().position(|a| a == log.arg()).unwrap();
    resume[at] = other.arg().into();
    resume.push("--resume".into());
    let out = copyman().args(&resume).output().unwrap();
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains(&names(&log)),
        "{}",
        text(&out.stderr)
    );
    assert_exit(&recover(&urls.iter().collect::<Vec<_>>(), log.arg()), 0);

    // That resume, run again, killed after its own PREPAREs: a plain resume names OTHER.
    Paused::start(&strs(&resume), "prepared:2").kill();
    assert_eq!(prepared_in(&s.dest[1], &dbs[1]).len(), 1);
    let mut plain = args.clone();
    plain.push("--resume".into());
    let out = copyman().args(&plain).output().unwrap();
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains(&names(&other)),
        "{}",
        text(&out.stderr)
    );
    // Followed, it finishes the run; the resume then copies the table once.
    assert_exit(&recover(&urls.iter().collect::<Vec<_>>(), other.arg()), 0);
    let out = copyman().args(&plain).output().unwrap();
    assert_exit(&out, 0);
    for (cluster, db) in s.dest.iter().zip(&dbs) {
        assert!(prepared_in(cluster, db).is_empty());
        assert_eq!(count(cluster, db, "t"), 300);
    }
}

/// A run waiting on the prepared transaction of a run still in progress (paused after its
/// decision, before its COMMIT PREPAREDs) says it as that run's, which ends it, not as one to
/// recover (recheck48b F3: "run `copyman recover --to CONN`", which would leave it alone).
#[test]
fn a_wait_on_a_live_runs_prepared_transaction_names_that_run_not_recover() {
    let _serial = serial();
    let s = two_phase_clusters();
    let (src, dbs) = databases(s, T, FILL);
    let log = TempPath::new("live-wait.log");
    let urls: Vec<String> = s.dest.iter().zip(&dbs).map(|(c, d)| c.url(d)).collect();
    let from = s.source.url(&src);
    let plain = [
        "table", "t", "--from", &from, "--to", &urls[0], "--to", &urls[1],
    ];
    let mut atomic = plain.to_vec();
    atomic.extend(["--atomic", "--decision-log", log.arg()]);
    let first = Paused::start(&atomic, "recorded");
    let pid = first.child.id();
    let mut second = copyman()
        .args(plain)
        .env("COPYMAN_TEST_SAY_AFTER", "1")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = StderrLines::take(&mut second);
    let said = lines.expect("waiting for lock on destination");
    assert!(
        said.contains(&format!(
            "of copyman process {pid}, a run still in progress"
        )) && !said.contains("copyman recover"),
        "{said}"
    );
    let out = first.resume();
    assert_exit(&out, 0);
    // Its rows committed, the second run's same keys fail there: nothing of it committed.
    let rest = lines.rest();
    assert_eq!(second.wait().unwrap().code(), Some(1), "{rest}");
    for (cluster, db) in s.dest.iter().zip(&dbs) {
        assert!(prepared_in(cluster, db).is_empty());
        assert_eq!(count(cluster, db, "t"), 300);
    }
}

/// The same kill; recover given only the destination that committed finds nothing prepared
/// there, yet names destination 2's transaction of the decided run and exits 1 (before, a job's
/// decision recorded no parties and this was "nothing pending", exit 0); destination 1's, which
/// its run had sent its COMMIT PREPARED for, it records as ended. Given only destination 2 then,
/// it commits it and the run is accounted for (exit 0: it asked for destination 1 again); given
/// both, and destination 1 alone, nothing is pending.
#[test]
fn job_recover_given_only_some_destinations_names_the_party_it_could_not_see() {
    let _serial = serial();
    let s = two_phase_clusters();
    let (src, dbs) = databases(s, T, FILL);
    let (state, log) = (
        TempPath::new("job-some.state"),
        TempPath::new("job-some.log"),
    );
    let args = job_args(s, &src, &dbs, &["t"], &state, &log);
    Paused::start(&strs(&args), "commit-prepared:1").kill();
    let left = prepared_in(&s.dest[1], &dbs[1]);
    assert_eq!(left.len(), 1, "{left:?}");
    let gid = &left[0];
    let urls: Vec<String> = s.dest.iter().zip(&dbs).map(|(c, d)| c.url(d)).collect();

    let out = recover(&[&urls[0]], log.arg());
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("{gid} (the run's destination 2 "))
            && stderr
                .contains("was decided commit and is not on the servers given: give its CONN too"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("nothing pending")
            && stderr.contains("nothing of copyman's prepared here"),
        "{stderr}"
    );
    let report = json(&out);
    assert_eq!(report["status"], "pending", "{report}");
    // Why it exits 1, in the words said (it was null).
    assert!(
        (report["error"].as_str()).is_some_and(
            |e| e.starts_with("something is left pending: ") && e.contains(gid.as_str())
        ),
        "{report}"
    );
    assert!(
        report["prepared"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["gid"] == gid.as_str() && p["database"] == dbs[1].as_str()),
        "{report}"
    );
    assert_eq!(prepared_in(&s.dest[1], &dbs[1]), left, "left alone");
    assert_eq!(count(&s.dest[0], &dbs[0], "t"), 300);

    // Destination 2 alone: committed there; destination 1's was recorded ended by the first.
    let out = recover(&[&urls[1]], log.arg());
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("{gid} (")) && stderr.contains("committed"),
        "{stderr}"
    );
    assert!(!stderr.contains("(the run's destination 1 "), "{stderr}");
    assert_eq!(json(&out)["status"], "ok");
    assert_eq!(prepared_in(&s.dest[1], &dbs[1]), Vec::<String>::new());

    let out = recover(&urls.iter().collect::<Vec<_>>(), log.arg());
    assert_exit(&out, 0);
    let expected = digest(&s.source, &src, "t");
    for (cluster, db) in s.dest.iter().zip(&dbs) {
        assert_eq!(digest(cluster, db, "t"), expected, "{db}");
    }
    let out = recover(&[&urls[0]], log.arg());
    assert_exit(&out, 0);
    assert!(text(&out.stderr).contains("nothing pending"));
}

/// An FK group (both tables emptied first under --truncate, one commit): killed between the
/// destinations' COMMIT PREPAREDs, its decision names both parties too; recover given only
/// destination 1 names destination 2's transaction and exits 1; given both, it commits it.
#[test]
fn job_fk_group_decision_names_its_parties_too() {
    let _serial = serial();
    let s = two_phase_clusters();
    let schema = "CREATE TABLE p (id int PRIMARY KEY);
         CREATE TABLE c (id int PRIMARY KEY, pid int NOT NULL REFERENCES p);";
    let fill = "INSERT INTO p SELECT generate_series(1, 20);
         INSERT INTO c SELECT g, 1 + g % 20 FROM generate_series(1, 200) g;";
    let (src, dbs) = databases(s, schema, fill);
    let (state, log) = (
        TempPath::new("job-group.state"),
        TempPath::new("job-group.log"),
    );
    let mut args = job_args(s, &src, &dbs, &["p", "c"], &state, &log);
    args.push("--truncate".into());
    Paused::start(&strs(&args), "commit-prepared:1").kill();
    let left = prepared_in(&s.dest[1], &dbs[1]);
    assert_eq!(left.len(), 1, "one transaction for the group: {left:?}");
    assert_eq!(
        log_lines(&log, "party ").len(),
        2,
        "{:?}",
        log_lines(&log, "")
    );

    let urls: Vec<String> = s.dest.iter().zip(&dbs).map(|(c, d)| c.url(d)).collect();
    let out = recover(&[&urls[0]], log.arg());
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("{} (the run's destination 2 ", left[0])),
        "{stderr}"
    );
    let out = recover(&urls.iter().collect::<Vec<_>>(), log.arg());
    assert_exit(&out, 0);
    for table in ["p", "c"] {
        let expected = digest(&s.source, &src, table);
        for (cluster, db) in s.dest.iter().zip(&dbs) {
            assert_eq!(digest(cluster, db, table), expected, "{table} on {db}");
            assert_eq!(prepared_in(cluster, db), Vec::<String>::new());
        }
    }
}

// Point 2: a stale decision log holding only a run's start.

/// A one-table `--atomic` copy to two destinations; its args.
fn copy_args(s: &Clusters, src: &str, dbs: &[String; 2], log: &TempPath) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "copy".into(),
        "--from".into(),
        s.source.url(src),
        "--send".into(),
        "COPY t TO STDOUT".into(),
    ];
    for (cluster, db) in s.dest.iter().zip(dbs) {
        args.extend(["--to".into(), cluster.url(db)]);
    }
    args.extend([
        "--receive".into(),
        "COPY t FROM STDIN".into(),
        "--atomic".into(),
        "--decision-log".into(),
        log.arg().into(),
    ]);
    args
}

/// A signal to recover while its COMMIT PREPARED is under way: it says what it does — finish
/// that statement, then stop, the rest left prepared (it said "the commit is under way and
/// finishes", as a copy's COMMITs do, then stopped) — and does it; a second recover finishes.
#[test]
fn recover_says_a_signal_stops_it_after_the_statement_in_progress() {
    let _serial = serial();
    let s = two_phase_clusters();
    let (src, dbs) = databases(s, T, FILL);
    let log = TempPath::new("recover-signal.log");
    Paused::start(&strs(&copy_args(s, &src, &dbs, &log)), "recorded").kill();
    let urls: Vec<String> = s.dest.iter().zip(&dbs).map(|(c, d)| c.url(d)).collect();
    let all: Vec<&String> = urls.iter().collect();
    let recover_args = recover_args(&all, log.arg());
    let args = strs(&recover_args);
    let mut paused = Paused::start(&args, "finishing:1");
    let mut lines = StderrLines::take(&mut paused.child);
    signal(&paused.child, "HUP");
    // Said by the signal's thread while the run waits.
    lines.expect("SIGHUP received");
    let out = paused.resume();
    // Something is left pending: 1, as without a signal (it exited 129).
    assert_exit(&out, 1);
    let stderr = lines.rest();
    assert!(
        stderr.contains("finishing the COMMIT or ROLLBACK PREPARED in progress")
            && !stderr.contains("the commit is under way and finishes"),
        "{stderr}"
    );
    assert_eq!(
        count(&s.dest[0], &dbs[0], "t"),
        300,
        "the statement in progress finished"
    );
    assert_eq!(
        prepared_in(&s.dest[1], &dbs[1]).len(),
        1,
        "the rest left prepared"
    );
    let all: Vec<&String> = urls.iter().collect();
    assert_exit(&recover(&all, log.arg()), 0);
    assert_eq!(count(&s.dest[1], &dbs[1], "t"), 300);
}

/// Two recoveries at once: the one that read the log before the other committed the run's
/// transactions finds them gone from the servers, which the log records it did by now — not
/// "prepared there no more … may lack the run's rows", exit 1, recorded as ended so that it
/// was never taken back (dup65 F9).
#[test]
fn a_recover_that_read_the_log_before_another_committed_says_nothing_is_lost() {
    let _serial = serial();
    let s = two_phase_clusters();
    let (src, dbs) = databases(s, T, FILL);
    let log = TempPath::new("recover-race.log");
    Paused::start(&strs(&copy_args(s, &src, &dbs, &log)), "recorded").kill();
    let urls: Vec<String> = s.dest.iter().zip(&dbs).map(|(c, d)| c.url(d)).collect();
    let all: Vec<&String> = urls.iter().collect();
    let recover_args = recover_args(&all, log.arg());
    let first = Paused::start(&strs(&recover_args), "log-read");
    assert_exit(&recover(&all, log.arg()), 0);
    let out = first.resume();
    let stderr = text(&out.stderr);
    assert_exit(&out, 0);
    assert!(
        !stderr.contains("prepared there no more") && !stderr.contains("may lack"),
        "{stderr}"
    );
    for (c, db) in s.dest.iter().zip(&dbs) {
        assert_eq!(count(c, db, "t"), 300);
        assert!(prepared_in(c, db).is_empty());
    }
}

/// A run killed once its first COMMIT PREPARED was answered, before it recorded so: recover
/// finds that transaction gone, and says it committed — the run had said it "sent, not
/// answered (may have committed …): copyman recover … finishes it", and recover said only
/// "nothing pending" there (signals65 F2).
#[test]
fn recover_says_a_transaction_its_run_committed_before_dying_is_committed() {
    let _serial = serial();
    let s = two_phase_clusters();
    let (src, dbs) = databases(s, T, FILL);
    let log = TempPath::new("recover-committed-first.log");
    Paused::start(&strs(&copy_args(s, &src, &dbs, &log)), "commit-prepared:1").kill();
    assert!(prepared_in(&s.dest[0], &dbs[0]).is_empty());
    let urls: Vec<String> = s.dest.iter().zip(&dbs).map(|(c, d)| c.url(d)).collect();
    let all: Vec<&String> = urls.iter().collect();
    let out = recover(&all, log.arg());
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("committed: a COMMIT PREPARED of it went out (the run decided commit"),
        "{stderr}"
    );
    for (c, db) in s.dest.iter().zip(&dbs) {
        assert_eq!(count(c, db, "t"), 300);
        assert!(prepared_in(c, db).is_empty());
    }
}

/// `recover --no-decision-log` where a session still connected names a run's transaction in its
/// last statement (the run's own, idle after its PREPARE, on another host whose process and
/// lock file this one cannot see): the run may yet decide commit, and its transaction is left
/// alone, said with the session (dup65 F14: a second machine's recovery rolled back a live
/// run's first destination, splitting it). Once that session is gone, it is rolled back.
#[test]
fn recover_leaves_a_run_whose_session_still_names_its_transaction() {
    let _serial = serial();
    let s = two_phase_clusters();
    let (src, dbs) = databases(s, T, FILL);
    let log = TempPath::new("recover-live-session.log");
    Paused::start(&strs(&copy_args(s, &src, &dbs, &log)), "prepared:1").kill();
    let gids = prepared_in(&s.dest[0], &dbs[0]);
    assert_eq!(gids.len(), 1, "{gids:?}");
    // The run's session, as another host's live run keeps it.
    let mut session = s.dest[0].connect(&dbs[0]);
    session
        .batch_execute(&format!("SELECT '{}'", gids[0]))
        .unwrap();
    let urls: Vec<String> = s.dest.iter().zip(&dbs).map(|(c, d)| c.url(d)).collect();
    let without_log = || {
        run(&[
            "recover",
            "--to",
            &urls[0],
            "--to",
            &urls[1],
            "--no-decision-log",
        ])
    };
    let out = without_log();
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("{} (prepared ", gids[0]))
            && stderr.contains(
                "left alone: its run may still be in progress, here or on another host: a \
                 session still connected (backend ",
            )
            && stderr.contains("names its transaction in its last statement"),
        "{stderr}"
    );
    assert_eq!(prepared_in(&s.dest[0], &dbs[0]), gids);
    drop(session);
    let out = without_log();
    assert_exit(&out, 0);
    assert!(prepared_in(&s.dest[0], &dbs[0]).is_empty());
    assert_eq!(count(&s.dest[0], &dbs[0], "t"), 0);
}

/// A recover given a destination it cannot reach finishes the others as the decision log
/// says, and says that one's part is left (exit 1): it finished nothing, the reachable
/// destinations' decided transactions held prepared, with their locks, while one was down.
#[test]
fn recover_finishes_what_it_reaches_when_a_destination_is_down() {
    let _serial = serial();
    let s = two_phase_clusters();
    let (src, dbs) = databases(s, T, FILL);
    let log = TempPath::new("recover-down.log");
    Paused::start(&strs(&copy_args(s, &src, &dbs, &log)), "recorded").kill();
    let urls: Vec<String> = s.dest.iter().zip(&dbs).map(|(c, d)| c.url(d)).collect();
    let down = format!(
        "postgresql://postgres@127.0.0.1:{}/x?connect_timeout=5",
        closed_port()
    );
    let out = recover(&[&urls[0], &down], log.arg());
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("its transactions are left as they are")
            && stderr.contains("copyman recover given it once it can be reached finishes it"),
        "{stderr}"
    );
    assert_eq!(count(&s.dest[0], &dbs[0], "t"), 300);
    assert!(prepared_in(&s.dest[0], &dbs[0]).is_empty());
    assert_eq!(prepared_in(&s.dest[1], &dbs[1]).len(), 1);
    // Up again: the rest.
    let all: Vec<&String> = urls.iter().collect();
    assert_exit(&recover(&all, log.arg()), 0);
    assert_eq!(count(&s.dest[1], &dbs[1], "t"), 300);
}

/// A destination that takes the connection and never answers (a listener that never accepts:
/// the kernel completes the handshake, no server speaks), its CONN without `connect_timeout`:
/// recover waited on it, the reachable destination's decided transaction held prepared with
/// its locks, until a signal finished nothing. Its connect is bounded (30 s): the reachable one
/// is committed, the other said left (exit 1).
#[test]
fn recover_finishes_what_it_reaches_when_a_destination_never_answers() {
    let _serial = serial();
    let s = two_phase_clusters();
    let (src, dbs) = databases(s, T, FILL);
    let log = TempPath::new("recover-silent.log");
    Paused::start(&strs(&copy_args(s, &src, &dbs, &log)), "recorded").kill();
    let urls: Vec<String> = s.dest.iter().zip(&dbs).map(|(c, d)| c.url(d)).collect();
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let frozen = format!(
        "postgresql://postgres@127.0.0.1:{}/x",
        silent.local_addr().unwrap().port()
    );
    let out = recover(&[&urls[0], &frozen], log.arg());
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("timeout expired: its transactions are left as they are"),
        "{stderr}"
    );
    assert_eq!(count(&s.dest[0], &dbs[0], "t"), 300);
    assert!(prepared_in(&s.dest[0], &dbs[0]).is_empty());
    drop(silent);
    let all: Vec<&String> = urls.iter().collect();
    assert_exit(&recover(&all, log.arg()), 0);
    assert_eq!(count(&s.dest[1], &dbs[1], "t"), 300);
}

/// A destination whose server stops answering once connected (its network path lost under the
/// connection): unreachable at its `connect_timeout` on its first question, the others finished;
/// lost after recover's first questions, its questions as a whole are bounded by it, once —
/// each waited the limit for the one before (recheck70 F9: 45 s for a `connect_timeout=15`).
#[test]
fn recover_bounds_a_server_that_stops_answering_once_connected() {
    use copyman_testkit::proxy::{Direction, Fault, Proxy};
    let _serial = serial();
    let s = two_phase_clusters();
    let (src, dbs) = databases(s, T, FILL);
    let log = TempPath::new("recover-lost-path.log");
    Paused::start(&strs(&copy_args(s, &src, &dbs, &log)), "recorded").kill();
    let proxy = Proxy::for_cluster(&s.dest[1]);
    let through = format!("{} connect_timeout=3", proxy.conninfo(&s.dest[1], &dbs[1]));
    let first = s.dest[0].url(&dbs[0]);
    // Lost after its first questions, before the list of what it holds: unreachable too, the
    // other destination finished (recheck73 F3: the recovery ended there, exit 1, the other's
    // decided transaction left prepared).
    proxy.after_pattern(
        Direction::ClientToServer,
        b"pg_is_in_recovery",
        Fault::Freeze,
    );
    let out = recover(&[&through, &first], log.arg());
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("no answer to recover's questions within connect_timeout")
            && stderr.contains("its transactions are left as they are"),
        "{stderr}"
    );
    // Its transaction, named by the run's address, not said absent from the servers given: one
    // given was not reached (recheck74 F3).
    assert!(
        stderr.contains(
            "is on none of the servers reached: it may be on one given that could not be reached"
        ) && !stderr.contains("is not on the servers given"),
        "{stderr}"
    );
    assert_eq!(count(&s.dest[0], &dbs[0], "t"), 300);
    assert_eq!(prepared_in(&s.dest[1], &dbs[1]).len(), 1);
    // Lost on its first question: unreachable, as one that did not connect.
    proxy.after_pattern(Direction::ClientToServer, b"SELECT 1\0", Fault::Freeze);
    let out = recover(&[&first, &through], log.arg());
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("connected, then no answer to a question within connect_timeout (3 s)")
            && stderr.contains("its transactions are left as they are"),
        "{stderr}"
    );
    assert_eq!(prepared_in(&s.dest[1], &dbs[1]).len(), 1);
    // Lost after its first questions: said once, at the limit, not after one per question.
    proxy.after_pattern(
        Direction::ClientToServer,
        b"pg_is_in_recovery",
        Fault::Freeze,
    );
    let began = std::time::Instant::now();
    let out = recover(&[&through], log.arg());
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("no answer to recover's questions within connect_timeout"),
        "{stderr}"
    );
    assert!(
        began.elapsed() < Duration::from_secs(8),
        "{:?}",
        began.elapsed()
    );
    assert_eq!(prepared_in(&s.dest[1], &dbs[1]).len(), 1);
    drop(proxy);
    let direct = s.dest[1].url(&dbs[1]);
    assert_exit(&recover(&[&first, &direct], log.arg()), 0);
    assert_eq!(count(&s.dest[1], &dbs[1], "t"), 300);
}

/// A decided transaction on the destination that could not be reached is said to wait there,
/// not "not on the servers given: give its CONN too" (its CONN was given).
#[test]
fn recover_says_a_decided_transaction_waits_on_the_destination_it_could_not_reach() {
    let _serial = serial();
    let s = two_phase_clusters();
    let (src, dbs) = databases(s, T, FILL);
    let log = TempPath::new("recover-down-named.log");
    let proxy = copyman_testkit::proxy::Proxy::for_cluster(&s.dest[1]);
    let through = proxy.conninfo(&s.dest[1], &dbs[1]);
    let mut args = copy_args(s, &src, &dbs, &log);
    let direct = s.dest[1].url(&dbs[1]);
    for arg in &mut args {
        if *arg == direct {
            arg.clone_from(&through);
        }
    }
    Paused::start(&strs(&args), "recorded").kill();
    drop(proxy);
    let urls = [
        s.dest[0].url(&dbs[0]),
        format!("{through} connect_timeout=5"),
    ];
    let out = recover(&[&urls[0], &urls[1]], log.arg());
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("waits on a destination that could not be reached")
            && !stderr.contains("give its CONN too"),
        "{stderr}"
    );
    // Its --json record says so too, with why (atomic45 F3: "not on the servers given").
    let doc = json(&out);
    let record = (doc["prepared"].as_array().unwrap().iter())
        .find(|p| p["outcome"] == "not reached")
        .unwrap_or_else(|| panic!("{doc}"));
    assert!(
        record["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{record}"
    );
    assert_eq!(count(&s.dest[0], &dbs[0], "t"), 300);
    // The rest, directly.
    let all = [s.dest[0].url(&dbs[0]), direct];
    assert_exit(&recover(&[&all[0], &all[1]], log.arg()), 0);
    assert_eq!(count(&s.dest[1], &dbs[1], "t"), 300);
}

/// An `--atomic` job whose decision log cannot grow (its disk full: here a file size limit the
/// log has reached, the state file far below it) said for every table only "the table failed
/// on another destination", the log and the system's error nowhere: it names them, stops (every
/// table after would meet it) and commits nothing, in `--json` too.
#[test]
fn an_atomic_job_whose_decision_log_cannot_grow_says_so_and_stops() {
    let _serial = serial();
    if std::process::Command::new("prlimit")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: no prlimit(1) (util-linux) to set a file size limit");
        return;
    }
    let s = two_phase_clusters();
    let (src, dbs) = databases(s, T, FILL);
    let (state, log) = (
        TempPath::new("full-log.state"),
        TempPath::new("full-log.log"),
    );
    // Finished runs of another time, 20 000 bytes: the limit.
    let mut padding = String::new();
    let mut i = 0;
    while padding.len() < 19_950 {
        padding.push_str(&format!("begin 1-{i}-1\ndone 1-{i}-1\n"));
        i += 1;
    }
    fs::write(&log.0, &padding).unwrap();
    let limit = fs::metadata(&log.0).unwrap().len().to_string();
    let args = job_args(s, &src, &dbs, &["t"], &state, &log);
    let out = std::process::Command::new("sh")
        .args(["-c", "trap '' XFSZ; exec prlimit --fsize=\"$0\" -- \"$@\""])
        .arg(&limit)
        .arg(env!("CARGO_BIN_EXE_copyman"))
        .args(&args)
        .arg("--json")
        .output()
        .unwrap();
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    let said = format!(
        "the decision log {} could not record the run's start (nothing was prepared): File too \
         large",
        log.arg()
    );
    assert!(stderr.contains(&said), "{stderr}");
    let report = json(&out);
    assert!(
        report["stopped"]
            .as_str()
            .is_some_and(|s| s.contains(&said)),
        "{report}"
    );
    for (cluster, db) in s.dest.iter().zip(&dbs) {
        assert_eq!(count(cluster, db, "t"), 0);
        assert_eq!(prepared_in(cluster, db), Vec::<String>::new());
    }
    assert_eq!(
        fs::read_to_string(&log.0).unwrap(),
        padding,
        "the log as it was"
    );
}

/// Two recoveries at once (two operators, a cron job and a human): the second lists the
/// transactions, the first finishes them all, then the second's COMMIT PREPAREDs find them gone
/// (42704). It said "could not be committed" for each, exit 1, though every row was there: the
/// decision log records that a recovery ended them, so it says they were finished meanwhile.
#[test]
fn two_recoveries_at_once_both_end_well() {
    let _serial = serial();
    let s = two_phase_clusters();
    let (src, dbs) = databases(s, T, FILL);
    let log = TempPath::new("two-recoveries.log");
    Paused::start(&strs(&copy_args(s, &src, &dbs, &log)), "recorded").kill();
    let urls: Vec<String> = s.dest.iter().zip(&dbs).map(|(c, d)| c.url(d)).collect();
    let all: Vec<&String> = urls.iter().collect();
    let recover_args = recover_args(&all, log.arg());
    let args = strs(&recover_args);
    // A dry run says what is pending, exit 1 (it exited 0, status ok), and changes nothing.
    let mut dry = args.clone();
    dry.extend(["--dry-run", "--json"]);
    let out = run(&dry);
    assert_exit(&out, 1);
    assert_eq!(json(&out)["status"], "pending");
    assert_eq!(prepared_in(&s.dest[1], &dbs[1]).len(), 1);
    let second = Paused::start(&args, "finishing:1");
    let first = run(&args);
    assert_exit(&first, 0);
    let out = second.resume();
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("finished meanwhile by another recovery") && !stderr.contains("could not"),
        "{stderr}"
    );
    for (cluster, db) in s.dest.iter().zip(&dbs) {
        assert_eq!(count(cluster, db, "t"), 300);
        assert_eq!(prepared_in(cluster, db), Vec::<String>::new());
    }
}

/// An `--atomic` job whose decided transaction on destination 2 is gone before its COMMIT
/// PREPARED (rolled back by hand here; a failover to a replica that never received the PREPARE
/// does the same): the table is in doubt there, and the job said "copyman recover commits it"
/// and "a rerun meets it again until it is mended", while recover then found nothing pending and
/// the destination lacked the table. It says whether it committed is unknown and that --resume
/// asks; the resume copies it there.
#[test]
fn a_job_whose_decided_transaction_is_gone_says_resume_repairs_it() {
    let _serial = serial();
    let s = two_phase_clusters();
    let (src, dbs) = databases(s, T, FILL);
    let (state, log) = (
        TempPath::new("job-gone.state"),
        TempPath::new("job-gone.log"),
    );
    let args = job_args(s, &src, &dbs, &["t"], &state, &log);
    let paused = Paused::start(&strs(&args), "commit-prepared:1");
    let gid = prepared_in(&s.dest[1], &dbs[1]);
    assert_eq!(gid.len(), 1, "{gid:?}");
    s.dest[1]
        .connect(&dbs[1])
        .batch_execute(&format!("ROLLBACK PREPARED '{}'", gid[0]))
        .unwrap();
    let out = paused.resume();
    assert_exit(&out, 4);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("the transaction was gone (SQLSTATE 42704")
            && stderr.contains("--resume asks this destination"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("recover commits it") && !stderr.contains("mend it first"),
        "{stderr}"
    );
    let mut resume = strs(&args);
    resume.push("--resume");
    assert_exit(&run(&resume), 0);
    assert_eq!(count(&s.dest[0], &dbs[0], "t"), 300);
    assert_eq!(count(&s.dest[1], &dbs[1], "t"), 300);
}

/// Killed after destination 1's COMMIT PREPARED; recover without any decision log
/// (`--no-decision-log`) rolled destination 2's transaction back, exit 0: destination 1 kept the
/// rows, destination 2 none. The servers show the run got past its first COMMIT PREPARED (its
/// first transaction gone, a later one prepared): left alone, said, exit 1.
#[test]
fn recover_without_a_log_never_rolls_back_a_run_the_servers_show_partly_committed() {
    let _serial = serial();
    let s = two_phase_clusters();
    let (src, dbs) = databases(s, T, FILL);
    let log = TempPath::new("no-log-split.log");
    Paused::start(&strs(&copy_args(s, &src, &dbs, &log)), "commit-prepared:1").kill();
    let left = prepared_in(&s.dest[1], &dbs[1]);
    assert_eq!(left.len(), 1, "{left:?}");
    let urls: Vec<String> = s.dest.iter().zip(&dbs).map(|(c, d)| c.url(d)).collect();
    for dry_run in [true, false] {
        let mut cmd = copyman();
        cmd.arg("recover");
        for url in &urls {
            cmd.args(["--to", url.as_str()]);
        }
        cmd.args(["--no-decision-log", "--json"]);
        if dry_run {
            cmd.arg("--dry-run");
        }
        let out = cmd.output().unwrap();
        assert_exit(&out, 1);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("left alone") && stderr.contains("Without the run's decision log"),
            "{stderr}"
        );
        assert_eq!(prepared_in(&s.dest[1], &dbs[1]), left, "dry run: {dry_run}");
    }
    // Given the run's log, recover commits the rest.
    let all: Vec<&String> = urls.iter().collect();
    assert_exit(&recover(&all, log.arg()), 0);
    assert_eq!(
        count(&s.dest[1], &dbs[1], "t"),
        count(&s.dest[0], &dbs[0], "t")
    );
}

/// Killed after destination 1's COMMIT PREPARED; recover is given a copy of the log taken
/// before the decision (only the run's `begin` line). Destination 1 shows no transaction of the
/// run, destination 2 still holds one: presumed abort would roll it back and split the run
/// (destination 1 keeps the rows). recover leaves it prepared, says what it saw and what to
/// check, exit 1; given the run's real log, it commits it.
#[test]
fn recover_with_a_stale_log_never_rolls_back_a_run_the_servers_show_partly_committed() {
    let _serial = serial();
    let s = two_phase_clusters();
    let (src, dbs) = databases(s, T, FILL);
    let log = TempPath::new("stale-real.log");
    Paused::start(&strs(&copy_args(s, &src, &dbs, &log)), "commit-prepared:1").kill();
    let left = prepared_in(&s.dest[1], &dbs[1]);
    assert_eq!(left.len(), 1, "{left:?}");
    let gid = &left[0];
    let run = gid
        .rsplit_once(':')
        .unwrap()
        .0
        .strip_prefix("copyman:")
        .unwrap();
    let stale = TempPath::new("stale-copy.log");
    let begins = log_lines(&log, "begin ");
    assert_eq!(begins, [format!("begin {run}")]);
    fs::write(&stale.0, format!("{}\n", begins.join("\n"))).unwrap();

    let urls: Vec<String> = s.dest.iter().zip(&dbs).map(|(c, d)| c.url(d)).collect();
    let all: Vec<&String> = urls.iter().collect();
    let out = recover(&all, stale.arg());
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("{gid} (")) && stderr.contains("left alone"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("run {run}: left alone: the decision log"))
            && stderr.contains(&format!(
                "copyman:{run}:1 of it is prepared on none of the servers given while {gid} is"
            ))
            && stderr.contains("latest decision log"),
        "{stderr}"
    );
    assert!(!stderr.contains("ago): rolled back"), "{stderr}");
    assert!(!stderr.contains("nothing pending"), "{stderr}");
    let report = json(&out);
    assert_eq!(report["status"], "pending", "{report}");
    let listed: Vec<&Value> = report["prepared"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["gid"] == gid.as_str())
        .collect();
    assert_eq!(listed.len(), 1, "{report}");
    assert_eq!(prepared_in(&s.dest[1], &dbs[1]), left, "not rolled back");
    assert_eq!(count(&s.dest[0], &dbs[0], "t"), 300);

    // The run's own log: its decision commits the rest.
    let out = recover(&all, log.arg());
    assert_exit(&out, 0);
    let expected = digest(&s.source, &src, "t");
    for (cluster, db) in s.dest.iter().zip(&dbs) {
        assert_eq!(digest(cluster, db, "t"), expected, "{db}");
        assert_eq!(prepared_in(cluster, db), Vec::<String>::new());
    }
}

/// What presumed abort is for still works: killed after destination 1 prepared and before
/// destination 2 did (no decision), recover given the log (the run's `begin` only) rolls back
/// destination 1's transaction, exit 0, nothing committed anywhere.
#[test]
fn recover_still_rolls_back_a_run_stopped_while_preparing() {
    let _serial = serial();
    let s = two_phase_clusters();
    let (src, dbs) = databases(s, T, FILL);
    let log = TempPath::new("preparing.log");
    Paused::start(&strs(&copy_args(s, &src, &dbs, &log)), "prepared:1").kill();
    assert_eq!(prepared_in(&s.dest[0], &dbs[0]).len(), 1);
    assert_eq!(log_lines(&log, "commit "), Vec::<String>::new());

    let urls: Vec<String> = s.dest.iter().zip(&dbs).map(|(c, d)| c.url(d)).collect();
    let out = recover(&urls.iter().collect::<Vec<_>>(), log.arg());
    assert_exit(&out, 0);
    assert!(text(&out.stderr).contains("rolled back"));
    for (cluster, db) in s.dest.iter().zip(&dbs) {
        assert_eq!(count(cluster, db, "t"), 0, "{db}");
        assert_eq!(prepared_in(cluster, db), Vec::<String>::new());
        assert_eq!(settle_backends(cluster, db), Vec::<String>::new());
    }
}

/// Killed after destination 1's COMMIT PREPARED, recover is given the stale log and only
/// destination 2: the run's transaction 1 is on no server given while its 2 is prepared: left
/// alone as well (it may be committed on the server not given), exit 1.
#[test]
fn recover_with_a_stale_log_and_a_server_left_out_rolls_back_nothing() {
    let _serial = serial();
    let s = two_phase_clusters();
    let (src, dbs) = databases(s, T, FILL);
    let log = TempPath::new("stale-out.log");
    Paused::start(&strs(&copy_args(s, &src, &dbs, &log)), "commit-prepared:1").kill();
    let left = prepared_in(&s.dest[1], &dbs[1]);
    assert_eq!(left.len(), 1, "{left:?}");
    let stale = TempPath::new("stale-out-copy.log");
    fs::write(
        &stale.0,
        format!("{}\n", log_lines(&log, "begin ").join("\n")),
    )
    .unwrap();
    let url = s.dest[1].url(&dbs[1]);
    let out = recover(&[&url], stale.arg());
    assert_exit(&out, 1);
    assert!(text(&out.stderr).contains("give every server the run copied to"));
    assert_eq!(prepared_in(&s.dest[1], &dbs[1]), left, "not rolled back");
    // Cleaned up with the run's own log.
    let urls: Vec<String> = s.dest.iter().zip(&dbs).map(|(c, d)| c.url(d)).collect();
    assert_exit(&recover(&urls.iter().collect::<Vec<_>>(), log.arg()), 0);
}

// Point 3: tables that wait on each other.

/// A resume without --truncate: p and c were begun (emptied again, one group), x was not
/// (copied without emptying). x references p, c references x: the group waits for x, x for
/// the group's p. The job stops without copying anything, and its advice is not "run again
/// with --resume" (which stops the same way) but what works: the advised rerun succeeds.
#[test]
fn a_job_stopped_by_tables_waiting_on_each_other_advises_what_works() {
    let s = two_phase_clusters();
    let schema = "CREATE TABLE p (id int PRIMARY KEY);
         CREATE TABLE x (id int PRIMARY KEY, pid int REFERENCES p);
         CREATE TABLE c (id int PRIMARY KEY, pid int REFERENCES p, xid int REFERENCES x);";
    let src = database(
        &s.source,
        &format!(
            "{schema} INSERT INTO p SELECT generate_series(1, 20);
             INSERT INTO x SELECT g, g FROM generate_series(1, 20) g;
             INSERT INTO c SELECT g, 1 + g % 20, 1 + g % 20 FROM generate_series(1, 100) g;"
        ),
    );
    let d1 = database(
        &s.dest[0],
        &format!("{schema} INSERT INTO p VALUES (1), (2); INSERT INTO c VALUES (1, 1, NULL);"),
    );
    let key = {
        let row = s.dest[0]
            .connect(&d1)
            .query_one(
                "SELECT (SELECT system_identifier::text FROM pg_control_system()), \
                 (SELECT oid::text FROM pg_database WHERE datname = current_database())",
                &[],
            )
            .unwrap();
        let (system, database): (String, String) = (row.get(0), row.get(1));
        format!("system {system} database {database}")
    };
    let state = TempPath::new("wait-each-other.state");
    fs::write(
        &state.0,
        format!(
            "copyman-job 2\nselection\t\"public\".\"c\" \"public\".\"p\" \"public\".\"x\"\n\
             begin\t\"public\".\"p\"\t{key}\nbegin\t\"public\".\"c\"\t{key}\n"
        ),
    )
    .unwrap();
    let (from, to) = (s.source.conninfo(&src), s.dest[0].conninfo(&d1));
    let base = [
        "table",
        "--from",
        &from,
        "--to",
        &to,
        "--state",
        state.arg(),
        "--resume",
        "public.p",
        "public.x",
        "public.c",
    ];
    let out = run(&base);
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("cannot order the tables left by their foreign keys"),
        "{stderr}"
    );
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        !last.contains("run again with --resume to copy what is missing"),
        "{stderr}"
    );
    assert!(
        last.contains("--resume alone would stop the same way")
            && last.contains("--resume --truncate"),
        "{stderr}"
    );
    // Nothing was copied; the advised rerun finishes the job.
    assert_eq!(count(&s.dest[0], &d1, "x"), 0);
    let out = run(&[&base[..], &["--truncate"][..]].concat());
    assert_exit(&out, 0);
    for table in ["p", "x", "c"] {
        assert_eq!(
            digest(&s.dest[0], &d1, table),
            digest(&s.source, &src, table),
            "{table}"
        );
    }
    assert_eq!(settle_backends(&s.dest[0], &d1), Vec::<String>::new());
}

// Point 4: the max_prepared_transactions refusal names the destination it asked.

/// A cluster that allows no prepared transactions (PostgreSQL's default).
fn no_two_phase() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(Cluster::start)
}

/// Destinations [a server that allows prepared transactions, one that does not] under
/// --keep-going --atomic: the one that does not is left out before anything is copied, named as
/// itself (destination 2, never the first); the first commits every row, exit 4; nothing is left
/// prepared anywhere. (The whole job was refused, the healthy destination getting nothing.)
#[test]
fn job_atomic_keep_going_leaves_out_the_destination_without_prepared_transactions() {
    let s = two_phase_clusters();
    let no = no_two_phase();
    let src = database(&s.source, &format!("{T} {FILL}"));
    let (d1, d2) = (database(&s.dest[0], T), database(no, T));
    let (state, log) = (TempPath::new("mpt.state"), TempPath::new("mpt.log"));
    let (from, to1, to2) = (s.source.url(&src), s.dest[0].url(&d1), no.url(&d2));
    let out = run(&[
        "table",
        "t",
        "--from",
        &from,
        "--to",
        &to1,
        "--to",
        &to2,
        "--state",
        state.arg(),
        "--atomic",
        "--decision-log",
        log.arg(),
        "--keep-going",
    ]);
    assert_exit(&out, 4);
    let stderr = text(&out.stderr);
    let second = format!("destination 2 postgres@127.0.0.1:{}/{d2}", no.port());
    let first = format!("127.0.0.1:{}/{d1}", s.dest[0].port());
    let refusal = stderr
        .lines()
        .find(|l| l.contains("does not allow prepared transactions"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(
        refusal.contains(&second)
            && !refusal.contains(&first)
            && refusal.contains("left out (--keep-going)"),
        "{stderr}"
    );
    assert_eq!(count(&s.dest[0], &d1, "t"), count(&s.source, &src, "t"));
    assert_eq!(count(no, &d2, "t"), 0);
    assert_eq!(prepared_in(&s.dest[0], &d1), Vec::<String>::new());
    assert_eq!(settle_backends(&s.dest[0], &d1), Vec::<String>::new());
    assert_eq!(settle_backends(no, &d2), Vec::<String>::new());
}

/// Destinations [a port nothing listens on, a server without prepared transactions] under
/// --keep-going --atomic: the job leaves the unreachable one out (as a one-table run drops it)
/// and then refuses the second, named as itself, for its max_prepared_transactions = 0 (exit 2,
/// before anything is copied), never showing the first's password.
#[test]
fn job_atomic_keep_going_leaves_out_an_unreachable_destination_and_refuses_one_without_2pc() {
    let s = two_phase_clusters();
    let no = no_two_phase();
    let src = database(&s.source, &format!("{T} {FILL}"));
    let d2 = database(no, T);
    let (state, log) = (
        TempPath::new("unreachable.state"),
        TempPath::new("unreachable.log"),
    );
    let from = s.source.url(&src);
    let port = closed_port();
    let to1 = format!("postgresql://u:pw-unreachable@127.0.0.1:{port}/x?connect_timeout=2");
    let to2 = no.url(&d2);
    let out = run(&[
        "table",
        "t",
        "--from",
        &from,
        "--to",
        &to1,
        "--to",
        &to2,
        "--state",
        state.arg(),
        "--atomic",
        "--decision-log",
        log.arg(),
        "--keep-going",
    ]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("two-phase commit: destination 2 ")
            && stderr.contains("max_prepared_transactions = 0"),
        "{stderr}"
    );
    assert!(!stderr.contains("pw-unreachable"), "{stderr}");
    assert_eq!(count(no, &d2, "t"), 0);
    assert_eq!(settle_backends(no, &d2), Vec::<String>::new());
}

// Point 5: the decision log.

/// A run killed while it wrote its decision left `commit RUN copyman:RUN:1 copyman:RUN:2 cop`
/// without its newline (never durable: nothing was decided) and both destinations prepared.
/// The next run appended its `begin` to the torn line, which then read as a whole commit line
/// naming both, and recover committed them (a tester saw the same after a full disk, where the
/// rest had been rolled back: t on one destination only). Now the torn line is cut off before
/// the next line is written, and recover rolls both back.
#[test]
fn a_torn_decision_line_is_never_read_as_a_commit() {
    let _serial = serial();
    let s = two_phase_clusters();
    let (_, dbs) = databases(s, T, FILL);
    let log = TempPath::new("torn.log");
    let id = "1764000000-1-abcd";
    fs::write(
        &log.0,
        format!("begin {id}\ncommit {id} copyman:{id}:1 copyman:{id}:2 cop"),
    )
    .unwrap();
    for (n, (cluster, db)) in s.dest.iter().zip(&dbs).enumerate() {
        cluster
            .connect(db)
            .batch_execute(&format!(
                "BEGIN; INSERT INTO t SELECT g, 'x' FROM generate_series(1, 10) g; \
                 PREPARE TRANSACTION 'copyman:{id}:{}'",
                n + 1
            ))
            .unwrap();
    }
    // The next run, with the same log (other databases): copies and commits as usual.
    let (src2, dbs2) = databases(s, T, FILL);
    let out = run(&strs(&copy_args(s, &src2, &dbs2, &log)));
    assert_exit(&out, 0);
    let begun = log_lines(&log, "begin ");
    assert_eq!(
        begun.len(),
        2,
        "the next run's start is a line of its own: {begun:?}"
    );
    let urls: Vec<String> = s.dest.iter().zip(&dbs).map(|(c, d)| c.url(d)).collect();
    let out = recover(&urls.iter().collect::<Vec<_>>(), log.arg());
    let stderr = text(&out.stderr);
    assert_exit(&out, 0);
    assert!(!stderr.contains("): committed"), "{stderr}");
    for (cluster, db) in s.dest.iter().zip(&dbs) {
        assert!(prepared_in(cluster, db).is_empty());
        assert_eq!(count(cluster, db, "t"), 0, "{db}");
    }
    assert_eq!(
        log_lines(&log, &format!("commit {id}")),
        Vec::<String>::new()
    );
}

/// Lets the paused run go on: it exits 0, and every destination holds the source's `t` with
/// nothing left prepared (a recovery left it alone).
#[track_caller]
fn commits_everywhere(paused: Paused, s: &Clusters, src: &str, dbs: &[String; 2]) {
    assert_exit(&paused.resume(), 0);
    let expected = digest(&s.source, src, "t");
    for (cluster, db) in s.dest.iter().zip(dbs) {
        assert_eq!(digest(cluster, db, "t"), expected, "{db}");
        assert_eq!(prepared_in(cluster, db), Vec::<String>::new());
    }
}

/// A recover given another spelling of the log's path (the file, where the run was given a
/// symbolic link to it) sees the run in progress and leaves it alone; it rolled back the run's
/// first transaction and wrote `abort RUN`, and the run, going on, committed the others: t on
/// one destination only. Now the run is left alone, and it commits everywhere.
#[test]
fn a_recover_given_another_spelling_of_the_log_leaves_a_run_in_progress_alone() {
    let _serial = serial();
    let s = two_phase_clusters();
    let (src, dbs) = databases(s, T, FILL);
    let real = TempPath::new("real.log");
    let link = TempPath::new("link.log");
    fs::write(&real.0, "").unwrap();
    std::os::unix::fs::symlink(&real.0, &link.0).unwrap();
    let paused = Paused::start(&strs(&copy_args(s, &src, &dbs, &link)), "prepared:1");
    let urls: Vec<String> = s.dest.iter().zip(&dbs).map(|(c, d)| c.url(d)).collect();
    let out = recover(&urls.iter().collect::<Vec<_>>(), real.arg());
    let stderr = text(&out.stderr);
    assert_exit(&out, 1);
    assert!(
        stderr.contains("left alone: its run is still in progress"),
        "{stderr}"
    );
    assert_eq!(log_lines(&real, "abort "), Vec::<String>::new());
    commits_everywhere(paused, s, &src, &dbs);
}

/// A recover given a copy of a live run's decision log (a backup taken before its decision:
/// no lock beside it) rolled back the run's prepared transactions, and the run, deciding
/// commit, found some gone: an `--atomic` copy committed on one destination only (commit36 F2).
/// The run's process, which its id names, is alive on this host: its transactions are left
/// alone (exit 1), and the run commits everywhere.
#[test]
fn a_recover_given_a_copy_of_a_live_runs_log_leaves_the_run_alone() {
    let _serial = serial();
    let s = two_phase_clusters();
    let (src, dbs) = databases(s, T, FILL);
    let log = TempPath::new("live.log");
    let copy = TempPath::new("live-copy.log");
    let paused = Paused::start(&strs(&copy_args(s, &src, &dbs, &log)), "prepared:2");
    fs::copy(&log.0, &copy.0).unwrap();
    let urls: Vec<String> = s.dest.iter().zip(&dbs).map(|(c, d)| c.url(d)).collect();
    let out = recover(&urls.iter().collect::<Vec<_>>(), copy.arg());
    let stderr = text(&out.stderr);
    assert_exit(&out, 1);
    assert!(
        stderr.contains("left alone: its run may still be in progress (copyman process"),
        "{stderr}"
    );
    for (cluster, db) in s.dest.iter().zip(&dbs) {
        assert_eq!(prepared_in(cluster, db).len(), 1, "{db}: {stderr}");
    }
    commits_everywhere(paused, s, &src, &dbs);
}

/// A run killed before it prepared anything, whose destination database was dropped since:
/// every later recover with its log said "give its CONN too" and exited 1, for ever, though the
/// database cannot be given (firsthour36 F8, commit36 F5). Its server, given through another
/// database, lists its prepared transactions of every database: none of the run's, so nothing
/// is left to roll back; the run is recorded finished, and a later recover asks no more.
#[test]
fn a_run_whose_database_was_dropped_is_settled_through_another_database_of_its_server() {
    let _serial = serial();
    let s = two_phase_clusters();
    let (src, dbs) = databases(s, T, FILL);
    let log = TempPath::new("dropped.log");
    Paused::start(&strs(&copy_args(s, &src, &dbs, &log)), "begun:2").kill();
    assert_eq!(log_lines(&log, "party ").len(), 2, "named at its start");
    // Its session there ends with it; then the database goes.
    let mut admin = s.dest[1].connect("postgres");
    for _ in 0..100 {
        let left: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1",
                &[&dbs[1]],
            )
            .unwrap()
            .get(0);
        if left == 0 {
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    admin
        .batch_execute(&format!("DROP DATABASE {}", dbs[1]))
        .unwrap();
    let d1 = s.dest[0].url(&dbs[0]);
    let out = recover(&[&d1], log.arg());
    let stderr = text(&out.stderr);
    assert_exit(&out, 1);
    assert!(
        stderr.contains("give its CONN too (any database of its server will do"),
        "{stderr}"
    );
    let other = s.dest[1].url("postgres");
    let out = recover(&[&d1, &other], log.arg());
    assert_exit(&out, 0);
    let out = recover(&[&d1], log.arg());
    assert_exit(&out, 0);
}

/// A run killed after destination 1 prepared, before its decision: its start named both
/// destinations, so a recover given only destination 2 says destination 1 may still hold a
/// prepared transaction (exit 1; it said "nothing pending", exit 0, leaving it prepared); given
/// both, it rolls it back (exit 0) and records the run done, so a later recover given one
/// server does not ask again.
#[test]
fn a_recover_not_given_a_server_of_a_run_that_died_before_its_decision_asks_for_it() {
    let _serial = serial();
    let s = two_phase_clusters();
    let (src, dbs) = databases(s, T, FILL);
    let log = TempPath::new("undecided.log");
    Paused::start(&strs(&copy_args(s, &src, &dbs, &log)), "prepared:1").kill();
    let left = prepared_in(&s.dest[0], &dbs[0]);
    assert_eq!(left.len(), 1);
    assert_eq!(log_lines(&log, "party ").len(), 2, "named at its start");

    let d2 = s.dest[1].url(&dbs[1]);
    let out = recover(&[&d2], log.arg());
    let stderr = text(&out.stderr);
    assert_exit(&out, 1);
    assert!(
        stderr.contains(&format!("{} (the run's destination 1 ", left[0]))
            && stderr.contains("may still be prepared (its run recorded no commit decision)")
            && stderr.contains("give its CONN too"),
        "{stderr}"
    );
    assert!(!stderr.contains("nothing pending"), "{stderr}");
    assert_eq!(prepared_in(&s.dest[0], &dbs[0]), left);

    let urls: Vec<String> = s.dest.iter().zip(&dbs).map(|(c, d)| c.url(d)).collect();
    let out = recover(&urls.iter().collect::<Vec<_>>(), log.arg());
    assert_exit(&out, 0);
    assert!(prepared_in(&s.dest[0], &dbs[0]).is_empty());
    assert_eq!(log_lines(&log, "done ").len(), 1);
    let out = recover(&[&d2], log.arg());
    assert_exit(&out, 0);
    for (cluster, db) in s.dest.iter().zip(&dbs) {
        assert_eq!(count(cluster, db, "t"), 0, "{db}");
    }
}

/// A run whose second destination's server stops (immediate) while its PREPARE waits for a
/// synchronous standby: the run rolls back the first destination's prepared transaction itself
/// and leaves the second's for recovery, and records what it ended. A recover given only the
/// second destination then finishes the run (exit 0; it asked for the first, "may still be
/// prepared", exit 1, on every later recover too: commit64 F1).
#[test]
fn a_recover_given_only_the_destination_left_prepared_finishes_a_run_rolled_back_elsewhere() {
    let _serial = serial();
    let s = two_phase_clusters();
    let stuck = Cluster::builder()
        .setting("synchronous_standby_names", "nosuch")
        .setting("synchronous_commit", "local")
        .setting("max_prepared_transactions", "5")
        .start();
    let src = database(&s.source, &format!("{T} {FILL}"));
    let d1 = database(&s.dest[0], T);
    let d2 = database(&stuck, T);
    stuck
        .connect("postgres")
        .batch_execute(&format!(
            "ALTER DATABASE \"{d2}\" SET synchronous_commit = on"
        ))
        .unwrap();
    let log = TempPath::new("rolled-back-elsewhere.log");
    let (to1, to2) = (s.dest[0].url(&d1), stuck.url(&d2));
    let child = copyman()
        .args([
            "copy",
            "--from",
            &s.source.url(&src),
            "--send",
            "COPY t TO STDOUT",
        ])
        .args(["--to", &to1, "--to", &to2, "--receive", "COPY t FROM STDIN"])
        .args(["--atomic", "--decision-log", log.arg(), "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Its PREPARE written there, waiting for the standby.
    wait_for_syncrep(&stuck);
    stuck.stop_immediate();
    let out = child.wait_with_output().unwrap();
    stuck.start_again();
    // (Else the recover's ROLLBACK PREPARED waits for the standby too.)
    stuck
        .connect("postgres")
        .batch_execute(&format!(
            "ALTER DATABASE \"{d2}\" SET synchronous_commit = local"
        ))
        .unwrap();
    let summary = json(&out);
    assert_eq!(
        summary["destinations"][0]["status"], "rolled back",
        "{summary}"
    );
    assert_eq!(
        summary["destinations"][1]["status"], "rollback pending",
        "{summary}"
    );
    assert_eq!(prepared_in(&s.dest[0], &d1), Vec::<String>::new());
    assert_eq!(prepared_in(&stuck, &d2).len(), 1);
    let ended = log_lines(&log, "ended ");
    assert!(
        ended.iter().any(|l| l.ends_with(":1")) && !ended.iter().any(|l| l.ends_with(":2")),
        "destination 1's end recorded, not destination 2's: {ended:?}"
    );
    for _ in 0..2 {
        let out = recover(&[&to2], log.arg());
        let stderr = text(&out.stderr);
        assert_exit(&out, 0);
        assert!(!stderr.contains("may still be prepared"), "{stderr}");
    }
    assert!(prepared_in(&stuck, &d2).is_empty());
    assert_eq!(count(&s.dest[0], &d1, "t"), 0);
    assert_eq!(count(&stuck, &d2, "t"), 0);
}

/// A copy of a run's log taken before its decision, given to recover once the run decided
/// commit and its first destination's COMMIT PREPARED failed (its server stopped) while the
/// second committed: the servers show the first prepared and the second gone, which reads as a
/// run that died after its first PREPARE — but the run ended on its own (its lock file is gone),
/// so the copy is not its last word: left alone, exit 1 (it rolled the first back, exit 0, "nothing
/// pending": the copy split, recheck64 F5). The run's own log then commits it.
#[test]
fn recover_given_an_old_copy_of_the_log_never_rolls_back_a_run_that_ended_on_its_own() {
    let _serial = serial();
    let s = two_phase_clusters();
    let first = Cluster::builder()
        .setting("max_prepared_transactions", "5")
        .start();
    let src = database(&s.source, &format!("{T} {FILL}"));
    let d1 = database(&first, T);
    let d2 = database(&s.dest[1], T);
    let log = TempPath::new("old-copy.log");
    let old = TempPath::new("old-copy-taken-before.log");
    let (to1, to2) = (first.url(&d1), s.dest[1].url(&d2));
    let args = [
        "copy",
        "--from",
        &s.source.url(&src),
        "--send",
        "COPY t TO STDOUT",
        "--to",
        &to1,
        "--to",
        &to2,
        "--receive",
        "COPY t FROM STDIN",
        "--atomic",
        "--decision-log",
        log.arg(),
    ];
    let paused = Paused::start(&args, "prepared:2");
    fs::copy(&log.0, &old.0).unwrap();
    first.stop_immediate();
    let out = paused.resume();
    first.start_again();
    assert_exit(&out, 4);
    assert_eq!(prepared_in(&first, &d1).len(), 1, "{}", text(&out.stderr));
    assert_eq!(count(&s.dest[1], &d2, "t"), 300);

    let out = recover(&[&to1, &to2], old.arg());
    let stderr = text(&out.stderr);
    assert_exit(&out, 1);
    assert!(stderr.contains("left alone"), "{stderr}");
    assert_eq!(prepared_in(&first, &d1).len(), 1, "{stderr}");
    let out = recover(&[&to1, &to2], log.arg());
    assert_exit(&out, 0);
    assert!(prepared_in(&first, &d1).is_empty());
    assert_eq!(count(&first, &d1, "t"), 300);
}

/// A `--send` statement that writes, on a source that allows prepared transactions, prepares
/// with the destinations: it is named in the log before it does. Killed then, a recover given
/// only the destinations says the source's transaction may still be prepared (exit 1; it said
/// nothing, leaving the source's DELETE prepared, holding its row locks); given the source too,
/// it rolls it back: every row still on the source, none on the destinations.
#[test]
fn a_source_prepared_by_a_run_that_died_is_asked_for_by_recover() {
    let _serial = serial();
    let s = two_phase_clusters();
    let (src, dbs) = databases(s, T, FILL);
    let log = TempPath::new("source-prepared.log");
    let mut args = copy_args(s, &src, &dbs, &log);
    let send = args.iter().position(|a| a == "COPY t TO STDOUT").unwrap();
    args[send] = "COPY (DELETE FROM t RETURNING *) TO STDOUT".into();
    Paused::start(&strs(&args), "prepared:source").kill();
    let source_gid = prepared_in(&s.source, &src);
    assert_eq!(source_gid.len(), 1, "the source prepared");
    assert!(source_gid[0].ends_with(":0"), "{source_gid:?}");

    let urls: Vec<String> = s.dest.iter().zip(&dbs).map(|(c, d)| c.url(d)).collect();
    let out = recover(&urls.iter().collect::<Vec<_>>(), log.arg());
    let stderr = text(&out.stderr);
    assert_exit(&out, 1);
    assert!(
        stderr.contains(&format!("the source's transaction {}", source_gid[0]))
            && stderr.contains("give the source's CONN too"),
        "{stderr}"
    );
    assert_eq!(prepared_in(&s.source, &src), source_gid);

    let from = s.source.url(&src);
    let mut all: Vec<&String> = urls.iter().collect();
    all.push(&from);
    let out = recover(&all, log.arg());
    assert_exit(&out, 0);
    assert!(prepared_in(&s.source, &src).is_empty());
    assert_eq!(count(&s.source, &src, "t"), 300);
    for (cluster, db) in s.dest.iter().zip(&dbs) {
        assert_eq!(count(cluster, db, "t"), 0, "{db}");
        assert!(prepared_in(cluster, db).is_empty());
    }
}

/// One database given twice (a URL and a conninfo): refused before anything is finished
/// (exit 2); it committed on the first pass, then failed on the second (42704), exit 1.
#[test]
fn recover_refuses_one_database_given_twice() {
    let _serial = serial();
    let s = two_phase_clusters();
    let (_, dbs) = databases(s, T, FILL);
    let log = TempPath::new("twice.log");
    let id = "1764000000-2-abcd";
    fs::write(&log.0, format!("begin {id}\n")).unwrap();
    s.dest[0]
        .connect(&dbs[0])
        .batch_execute(&format!(
            "BEGIN; INSERT INTO t VALUES (1, 'x'); PREPARE TRANSACTION 'copyman:{id}:1'"
        ))
        .unwrap();
    let (url, conninfo) = (s.dest[0].url(&dbs[0]), s.dest[0].conninfo(&dbs[0]));
    let out = recover(&[&url, &conninfo], log.arg());
    let stderr = text(&out.stderr);
    assert_exit(&out, 2);
    assert!(stderr.contains("give each once"), "{stderr}");
    assert_eq!(prepared_in(&s.dest[0], &dbs[0]).len(), 1, "left as it was");
    let out = recover(&[&url], log.arg());
    assert_exit(&out, 0);
    assert!(prepared_in(&s.dest[0], &dbs[0]).is_empty());
}

/// A run killed with both destinations prepared, recovered one server at a time: the first
/// recover (destination 1) rolls back its transaction and asks for destination 2 (exit 1); the
/// second (destination 2 only) rolls back the other and, the first recorded finished, is done
/// (exit 0) — it asked for destination 1 again, where nothing was left.
#[test]
fn recovering_one_server_at_a_time_finishes_a_run() {
    let _serial = serial();
    let s = two_phase_clusters();
    let (src, dbs) = databases(s, T, FILL);
    let log = TempPath::new("one-at-a-time.log");
    Paused::start(&strs(&copy_args(s, &src, &dbs, &log)), "prepared:2").kill();
    let (d1, d2) = (s.dest[0].url(&dbs[0]), s.dest[1].url(&dbs[1]));
    let out = recover(&[&d1], log.arg());
    assert_exit(&out, 1);
    assert!(text(&out.stderr).contains("give its CONN too"));
    let out = recover(&[&d2], log.arg());
    let stderr = text(&out.stderr);
    assert_exit(&out, 0);
    assert!(!stderr.contains("give its CONN too"), "{stderr}");
    assert_eq!(log_lines(&log, "ended ").len(), 2);
    assert_eq!(log_lines(&log, "done ").len(), 1);
    for (cluster, db) in s.dest.iter().zip(&dbs) {
        assert!(prepared_in(cluster, db).is_empty());
        assert_eq!(count(cluster, db, "t"), 0, "{db}");
    }
}

/// A recover whose COMMIT PREPARED will wait for a synchronous standby that is not there: a
/// cluster of its own (database set so after the PREPARE), a transaction prepared there
/// (run `1764000000-N-abcd`, decided commit in its log), and `copyman recover` started on it
/// (`--json` if asked), stdout and stderr piped.
fn recover_waiting_for_a_standby(
    n: &str,
    json: bool,
) -> (Cluster, String, String, TempPath, std::process::Child) {
    recover_waiting_for_a_standby_to(n, json, true, 1, false)
}

/// [`recover_waiting_for_a_standby`], its run decided commit or (`commit` false) not decided:
/// then its ROLLBACK PREPARED waits; with `gids` transactions of the run prepared there (the
/// first returned: the one recover reaches first).
fn recover_waiting_for_a_standby_to(
    n: &str,
    json: bool,
    commit: bool,
    gids: usize,
    apart: bool,
) -> (Cluster, String, String, TempPath, std::process::Child) {
    let stuck = Cluster::builder()
        .setting("synchronous_standby_names", "nosuch")
        .setting("synchronous_commit", "local")
        .setting("max_prepared_transactions", "5")
        .start();
    let db = database(&stuck, T);
    // (`apart`: the transactions after the first in a database of their own, another --to.)
    let other_db = database(&stuck, T);
    let id = format!("1764000000-{n}-abcd");
    let all: Vec<String> = (1..=gids).map(|i| format!("copyman:{id}:{i}")).collect();
    for (i, gid) in all.iter().enumerate() {
        stuck
            .connect(if apart && i > 0 { &other_db } else { &db })
            .batch_execute(&format!(
                "BEGIN; INSERT INTO t VALUES ({i}, 'x'); PREPARE TRANSACTION '{gid}';"
            ))
            .unwrap();
    }
    stuck
        .connect(&db)
        .batch_execute(&format!(
            "ALTER DATABASE \"{db}\" SET synchronous_commit = on;"
        ))
        .unwrap();
    let gid = all[0].clone();
    let log = TempPath::new(&format!("stuck-{n}.log"));
    let decision = match commit {
        true => format!("commit {id} {}\n", all.join(" ")),
        false => String::new(),
    };
    fs::write(&log.0, format!("begin {id}\n{decision}")).unwrap();
    let (url, other_url) = (stuck.url(&db), stuck.url(&other_db));
    let mut args = vec!["recover", "--to", &url, "--decision-log", log.arg()];
    if apart {
        args.extend(["--to", &other_url]);
    }
    if json {
        args.push("--json");
    }
    let child = copyman()
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    (stuck, db, gid, log, child)
}

/// A recover whose COMMIT PREPARED waits for a synchronous standby that is not there: a signal
/// is said and the statement is never cancelled; a second exits at once naming the COMMIT
/// PREPARED sent and not answered (it was killed without a word, leaving no account), and the
/// run's other transaction, not reached, as still prepared (signals67 F6: left out of
/// `--json`, and said "rolled back").
#[test]
fn a_recover_stopped_by_signals_says_what_it_had_sent() {
    let _serial = serial();
    let (stuck, _db, gid, log, mut child) =
        recover_waiting_for_a_standby_to("3", true, true, 2, false);
    let other = format!("{}:2", gid.trim_end_matches(":1"));
    let mut stderr = StderrLines::take(&mut child);
    stderr.expect("COMMIT PREPARED");
    signal(&child, "TERM");
    // The statement it finishes, and how it ends (signals67 F6: "finishing", for ever).
    let first = stderr.expect("SIGTERM received");
    assert!(
        first.contains("finishing postgres@")
            && first.contains(&format!(
                "'s COMMIT PREPARED '{gid}' (never cancelled; its server \
                 has not answered: if it waits for a synchronous standby that is not there, it \
                 ends only when one confirms it"
            )),
        "{first}"
    );
    signal(&child, "TERM");
    let out = child.wait_with_output().unwrap();
    let said = stderr.rest();
    assert_eq!(out.status.code(), Some(4), "{said}");
    // `--json` has its document too (it had none).
    let document = json(&out);
    assert_eq!(document["exited_at_once"], true, "{document}");
    assert_eq!(document["decision_log"], log.arg(), "{document}");
    assert!(
        document["prepared"][0]["outcome"]
            .as_str()
            .is_some_and(|o| o.contains("not answered")),
        "{document}"
    );
    let untouched = (document["prepared"].as_array().unwrap().iter()).find(|p| {
        p["transaction"]
            .as_str()
            .is_some_and(|t| t.starts_with(&format!("{other} on ")))
    });
    assert_eq!(
        untouched.map(|p| p["outcome"].clone()),
        Some("still prepared: not reached (copyman recover finishes it)".into()),
        "{document}"
    );
    assert!(
        said.contains("received again: exiting at once during the COMMITs")
            && said.contains(&format!(
                "COMMIT PREPARED sent, not answered (may have committed or still be prepared: \
                 copyman recover with the same --to and --decision-log {} finishes it): {gid} on ",
                log.arg()
            ))
            && said.contains(&format!("; not committed: {other} on "))
            && said.contains("(still prepared: copyman recover with the same --to")
            && !said.contains("rolled back"),
        "{said}"
    );
    // The server finishes it (the wait given up: committed locally).
    stuck
        .connect("postgres")
        .batch_execute(
            "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE wait_event = 'SyncRep'",
        )
        .unwrap();
}

/// The same for a ROLLBACK PREPARED: the second signal names it sent and not answered, never
/// "its backends cancelled: nothing committed" (dups49 F2: it was not cancelled, and stayed),
/// and the run's transaction on another server, not reached yet, as still prepared (recheck68
/// F5: only the server under way's were named).
#[test]
fn a_recover_stopped_by_signals_during_a_rollback_says_what_it_had_sent() {
    let _serial = serial();
    let (stuck, _db, gid, log, mut child) =
        recover_waiting_for_a_standby_to("7", true, false, 2, true);
    let other = format!("{}:2", gid.trim_end_matches(":1"));
    let mut stderr = StderrLines::take(&mut child);
    stderr.expect("ROLLBACK PREPARED");
    signal(&child, "TERM");
    stderr.expect("SIGTERM received");
    signal(&child, "TERM");
    let out = child.wait_with_output().unwrap();
    let said = stderr.rest();
    assert_eq!(out.status.code(), Some(143), "{said}");
    // (Its wait for the standby is cancelled a second in, as the signals come: then it is
    // said rolled back.)
    let rolled = said.contains(&format!(
        "received again: exiting at once: rolled back: {gid} on "
    ));
    assert!(
        (rolled
            || said.contains(&format!(
                "received again: exiting at once: ROLLBACK PREPARED sent, not answered (rolled \
                 back or still prepared; its session stays on its server until the statement \
                 ends): {gid} on "
            )))
            && said.contains(&format!(
                "copyman recover with the same --to and --decision-log {} finishes it",
                log.arg()
            ))
            && !said.contains("backends cancelled")
            && !said.contains("nothing committed")
            && said.contains(&format!("not reached, still prepared: {other} on ")),
        "{said}"
    );
    let document = json(&out);
    assert_eq!(document["exited_at_once"], true, "{document}");
    assert!(
        document["prepared"][0]["outcome"]
            .as_str()
            .is_some_and(|o| {
                o.starts_with("ROLLBACK PREPARED sent, not answered")
                    || (rolled && o == "rolled back")
            }),
        "{document}"
    );
    let untouched = (document["prepared"].as_array().unwrap().iter()).find(|p| {
        p["transaction"]
            .as_str()
            .is_some_and(|t| t.starts_with(&format!("{other} on ")))
    });
    assert_eq!(
        untouched.map(|p| p["outcome"].clone()),
        Some("still prepared: not reached (copyman recover finishes it)".into()),
        "{document}"
    );
    stuck
        .connect("postgres")
        .batch_execute(
            "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE wait_event = 'SyncRep'",
        )
        .unwrap();
}

/// A recover stopped by one signal while its COMMIT PREPARED waits lets it finish, and its exit
/// says what is left: nothing, exit 0 (it exited 143, documented as "nothing committed", with
/// `--json` status `ok`).
#[test]
fn a_recover_stopped_by_one_signal_exits_as_what_it_left() {
    let _serial = serial();
    let (stuck, db, _gid, _log, mut child) = recover_waiting_for_a_standby("5", true);
    let mut stderr = StderrLines::take(&mut child);
    stderr.expect("COMMIT PREPARED");
    signal(&child, "TERM");
    stderr.expect("SIGTERM received");
    // The server answers (the wait given up: committed locally).
    stuck
        .connect("postgres")
        .batch_execute(
            "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE wait_event = 'SyncRep'",
        )
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = stderr.rest();
    assert_eq!(out.status.code(), Some(0), "{said}");
    let document = json(&out);
    assert_eq!(document["status"], "ok", "{document}");
    assert_eq!(document["exit_code"], 0, "{document}");
    assert!(prepared_in(&stuck, &db).is_empty());
    assert_eq!(count(&stuck, &db, "t"), 1);
}

/// A recover whose COMMIT PREPARED waits for a synchronous standby and whose session is then
/// terminated: the server commits it locally, says so in a WARNING and closes the connection
/// without an answer. recover says committed, shows the server's warning, exits 0 (it said
/// "could not be committed: connection closed by the server", exit 1, and a DBA might have
/// rolled back by hand what had committed).
#[test]
fn a_recover_whose_commit_prepared_the_server_committed_before_closing_says_committed() {
    let _serial = serial();
    let (stuck, db, gid, _log, mut child) = recover_waiting_for_a_standby("4", false);
    let mut stderr = StderrLines::take(&mut child);
    stderr.expect("COMMIT PREPARED");
    stuck
        .connect("postgres")
        .batch_execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE wait_event = 'SyncRep'",
        )
        .unwrap();
    let status = child.wait().unwrap();
    let said = stderr.rest();
    assert_eq!(status.code(), Some(0), "{said}");
    assert!(
        said.contains(&format!("{gid} (prepared ")) && said.contains("): committed"),
        "{said}"
    );
    assert!(said.contains("already committed locally"), "{said}");
    assert!(!said.contains("could not be"), "{said}");
    assert!(prepared_in(&stuck, &db).is_empty());
    assert_eq!(count(&stuck, &db, "t"), 1);
}

/// `--atomic --keep-going` whose destination 1 fails its copy: destination 2 is prepared past
/// it, and the run is killed before its decision. The run recorded destination 1 out before
/// preparing destination 2, so recover rolls destination 2 back (exit 0) — it refused the run as
/// "may be partly committed", taking the gap for a transaction that had ended.
#[test]
fn recover_rolls_back_a_keep_going_run_killed_past_a_failed_destination() {
    let _serial = serial();
    let s = two_phase_clusters();
    let src = database(&s.source, &format!("{T} {FILL}"));
    let refusing = format!(
        "{T} CREATE FUNCTION no() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN RAISE EXCEPTION 'destination 1 refuses rows'; END $$;
         CREATE TRIGGER no BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION no();"
    );
    let dbs = [database(&s.dest[0], &refusing), database(&s.dest[1], T)];
    let log = TempPath::new("keep-going-out.log");
    let mut args = copy_args(s, &src, &dbs, &log);
    args.push("--keep-going".into());
    Paused::start(&strs(&args), "prepared:2").kill();
    assert_eq!(prepared_in(&s.dest[0], &dbs[0]), Vec::<String>::new());
    let left = prepared_in(&s.dest[1], &dbs[1]);
    assert_eq!(left.len(), 1, "{left:?}");
    let run = left[0]
        .strip_suffix(":2")
        .unwrap()
        .strip_prefix("copyman:")
        .unwrap();
    assert_eq!(
        log_lines(&log, "out "),
        [format!("out {run} copyman:{run}:1")],
        "{:?}",
        log_lines(&log, "")
    );

    let urls: Vec<String> = s.dest.iter().zip(&dbs).map(|(c, d)| c.url(d)).collect();
    let out = recover(&urls.iter().collect::<Vec<_>>(), log.arg());
    assert_exit(&out, 0);
    assert!(
        text(&out.stderr).contains("rolled back"),
        "{}",
        text(&out.stderr)
    );
    for (cluster, db) in s.dest.iter().zip(&dbs) {
        assert_eq!(count(cluster, db, "t"), 0, "{db}");
        assert_eq!(prepared_in(cluster, db), Vec::<String>::new());
        assert_eq!(settle_backends(cluster, db), Vec::<String>::new());
    }
    // Destination 1's server need not be given: its transaction was never prepared.
    let again = recover(&[&urls[1]], log.arg());
    assert_exit(&again, 0);
}

/// A hot standby of a destination has its identity, and copies of what it had prepared that it
/// cannot finish: given to recover in the primary's stead, it stood for the primary and recover
/// said nothing was pending (exit 0) while the run's transaction waited there, holding its
/// locks. A standby is refused, saying to give the primary.
#[test]
fn recover_refuses_a_standby_for_its_primary() {
    let primary = Cluster::builder()
        .setting("max_prepared_transactions", "10")
        .start();
    let db = primary.create_database();
    let standby = primary.clone_as_standby();
    let recover = |url: String| {
        copyman()
            .args(["recover", "--to", &url, "--no-decision-log"])
            .output()
            .unwrap()
    };
    let out = recover(standby.url(&db));
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("is a standby") && stderr.contains("give the primary"),
        "{stderr}"
    );
    // The primary itself is recovered as ever.
    assert_exit(&recover(primary.url(&db)), 0);
}

/// A second signal while a job's transaction is prepared on a destination: the closing advice
/// names `copyman recover` first (a resume refuses the table until it is finished), as it does
/// when the server is lost there; it said only "run again with --resume", which was refused. It
/// names the run's decision log.
#[test]
fn a_second_signal_with_a_prepared_transaction_says_recover_first() {
    let _serial = serial();
    let s = two_phase_clusters();
    let (src, dbs) = databases(s, T, FILL);
    let (state, log) = (
        TempPath::new("job-second-signal.state"),
        TempPath::new("job-second-signal.log"),
    );
    let args = job_args(s, &src, &dbs, &["t"], &state, &log);
    let mut paused = Paused::start(&strs(&args), "commit-prepared:1");
    let mut stderr = StderrLines::take(&mut paused.child);
    signal(&paused.child, "INT");
    stderr.wait_for("SIGINT received");
    signal(&paused.child, "INT");
    let said = stderr.rest();
    let status = paused.child.wait().unwrap();
    assert_eq!(status.code(), Some(4), "{said}");
    // The run's own decision log is named: recover reads the default one otherwise, and
    // refuses (signals41 F1).
    assert!(
        said.contains(&format!(
            "run copyman recover with the same --to and --decision-log {} first, then run \
             again with --resume",
            log.arg()
        )),
        "{said}"
    );
    // As said: recover finishes it, then the resume has nothing left to copy.
    let to = [s.dest[0].url(&dbs[0]), s.dest[1].url(&dbs[1])];
    assert_exit(&recover(&[&to[0], &to[1]], log.arg()), 0);
    let mut resume = strs(&args);
    resume.push("--resume");
    assert_exit(&run(&resume), 0);
    assert_eq!(count(&s.dest[0], &dbs[0], "t"), 300);
    assert_eq!(count(&s.dest[1], &dbs[1], "t"), 300);
}

/// A job's decision log that cannot take the line saying a COMMIT PREPARED is sent (a full disk;
/// here the log moved away while the job paused): the run commits all the same, and says that
/// a recovery of it would take that transaction for one another session ended — it went on
/// without a word, and recover's alarm was then unexplained.
#[test]
fn a_commit_prepared_the_log_could_not_record_is_said() {
    let _serial = serial();
    let s = two_phase_clusters();
    let (src, dbs) = databases(s, T, FILL);
    let (state, log) = (
        TempPath::new("job-unnoted.state"),
        TempPath::new("job-unnoted.log"),
    );
    let args = job_args(s, &src, &dbs, &["t"], &state, &log);
    let paused = Paused::start(&strs(&args), "commit-prepared:1");
    let moved = format!("{}.moved", log.arg());
    fs::rename(log.arg(), &moved).unwrap();
    let out = paused.resume();
    let _ = fs::remove_file(&moved);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("could not record that")
            && stderr.contains("is being committed")
            && stderr.contains("as if another session had ended it"),
        "{stderr}"
    );
    assert_eq!(count(&s.dest[0], &dbs[0], "t"), 300);
    assert_eq!(count(&s.dest[1], &dbs[1], "t"), 300);
}

/// A run whose destinations' CONNs set another role (`options='-c role=…'`), killed with both
/// prepared; a recover as the login role alone cannot finish them (42501): it names the role
/// that prepared them and how to recover as it (it said the server's words only), and given
/// that role, finishes them.
#[test]
fn recover_as_another_role_names_the_role_that_prepared() {
    let _serial = serial();
    let s = two_phase_clusters();
    let (src, dbs) = databases(s, T, FILL);
    let (mut login_only, mut as_grp) = (Vec::new(), Vec::new());
    for (cluster, db) in s.dest.iter().zip(&dbs) {
        let (login, grp) = (format!("login_{db}"), format!("grp_{db}"));
        cluster
            .connect(db)
            .batch_execute(&format!(
                "CREATE ROLE {login} LOGIN; CREATE ROLE {grp}; GRANT {grp} TO {login};
                 GRANT ALL ON t TO {grp};"
            ))
            .unwrap();
        let conninfo = cluster
            .conninfo(db)
            .replace("user=postgres", &format!("user={login}"));
        as_grp.push(format!("{conninfo} options='-c role={grp}'"));
        login_only.push(conninfo);
    }
    let log = TempPath::new("recover-owner.log");
    let source = s.source.url(&src);
    let mut args = vec!["copy", "--from", &source, "--send", "COPY t TO STDOUT"];
    for to in &as_grp {
        args.extend(["--to", to]);
    }
    args.extend(["--receive", "COPY t FROM STDIN", "--atomic"]);
    args.extend(["--decision-log", log.arg()]);
    Paused::start(&args, "prepared:2").kill();
    let out = recover(&login_only.iter().collect::<Vec<_>>(), log.arg());
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("it was prepared by role grp_{}", dbs[0]))
            && stderr.contains(&format!("options='-c role=grp_{}'", dbs[0])),
        "{stderr}"
    );
    assert_eq!(prepared_in(&s.dest[0], &dbs[0]).len(), 1);
    let out = recover(&as_grp.iter().collect::<Vec<_>>(), log.arg());
    assert_exit(&out, 0);
    for (cluster, db) in s.dest.iter().zip(&dbs) {
        assert!(prepared_in(cluster, db).is_empty());
        assert_eq!(count(cluster, db, "t"), 0);
    }
}

/// An `--atomic --truncate` job killed between its COMMIT PREPAREDs, resumed before `recover`:
/// the resume's planning waits on a lock the earlier run's prepared transaction holds, which no
/// wait ends (it waited for ever, said once). It stops, naming the transaction and recover
/// (exit 1); recover then finishes the run.
#[test]
fn a_resume_waiting_on_its_earlier_runs_prepared_transaction_stops_and_says_recover() {
    let _serial = serial();
    let s = two_phase_clusters();
    let (src, dbs) = databases(s, T, FILL);
    let (state, log) = (
        TempPath::new("job-prepared-lock.state"),
        TempPath::new("job-prepared-lock.log"),
    );
    let mut args = job_args(s, &src, &dbs, &["t"], &state, &log);
    args.push("--truncate".into());
    Paused::start(&strs(&args), "commit-prepared:1").kill();
    assert_eq!(prepared_in(&s.dest[1], &dbs[1]).len(), 1);
    args.push("--resume".into());
    let mut child = copyman()
        .args(&args)
        .env("COPYMAN_TEST_SAY_AFTER", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Bounded: it waited for ever.
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            let urls = [s.dest[0].url(&dbs[0]), s.dest[1].url(&dbs[1])];
            let _ = recover(&[&urls[0], &urls[1]], log.arg());
            panic!("the resume waits on: {}", text(&out.stderr));
        }
        thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert_exit(&out, 1);
    assert!(
        stderr.contains("waits for a lock held by copyman's prepared transaction copyman:")
            && stderr.contains("finish it with copyman recover"),
        "{stderr}"
    );
    let urls = [s.dest[0].url(&dbs[0]), s.dest[1].url(&dbs[1])];
    let out = recover(&[&urls[0], &urls[1]], log.arg());
    assert_exit(&out, 0);
    assert!(prepared_in(&s.dest[1], &dbs[1]).is_empty());
    assert_eq!(count(&s.dest[1], &dbs[1], "t"), 300);
}

/// A copy into a table that an earlier run's prepared transaction wrote (an `--atomic` run
/// killed after its PREPAREs, before recover): its TRUNCATE waited for ever (said once, then
/// cancelled and failed), and without one its rows came beside those recover committed later
/// (commit48 F4). Refused before anything is begun, saying recover (exit 2), a job alike;
/// nothing is committed, and recover then ends the earlier run.
#[test]
fn a_copy_into_a_table_an_earlier_runs_prepared_transaction_wrote_is_refused_and_says_recover() {
    let _serial = serial();
    let s = two_phase_clusters();
    let (src, dbs) = databases(s, T, FILL);
    let log = TempPath::new("earlier-prepared.log");
    Paused::start(&strs(&copy_args(s, &src, &dbs, &log)), "prepared:2").kill();
    assert_eq!(prepared_in(&s.dest[0], &dbs[0]).len(), 1);
    let urls: Vec<String> = s.dest.iter().zip(&dbs).map(|(c, d)| c.url(d)).collect();
    let from = s.source.url(&src);
    let state = TempPath::new("earlier-prepared.state");
    let refused = |args: &[&str]| {
        let out = copyman().args(args).output().unwrap();
        let stderr = text(&out.stderr);
        assert_exit(&out, 2);
        assert!(
            stderr.contains("holds copyman's prepared transaction copyman:")
                && stderr.contains("which wrote into this run's table")
                && stderr.contains("finish it first with copyman recover"),
            "{args:?}: {stderr}"
        );
    };
    for job in [&[][..], &["--state", state.arg()][..]] {
        let mut args = vec![
            "table",
            "t",
            "--from",
            &from,
            "--to",
            &urls[0],
            "--truncate",
        ];
        args.extend(job);
        refused(&args);
    }
    assert_eq!(prepared_in(&s.dest[1], &dbs[1]).len(), 1);
    refused(&[
        "table", "t", "--from", &from, "--to", &urls[0], "--to", &urls[1],
    ]);
    assert_eq!(count(&s.dest[0], &dbs[0], "t"), 0);
    let all: Vec<&String> = urls.iter().collect();
    assert_exit(&recover(&all, log.arg()), 0);
    assert!(prepared_in(&s.dest[0], &dbs[0]).is_empty());
}

/// A run in progress (paused between its PREPAREs and its decision, its process alive): a copy
/// that waits on its prepared transaction waits for it to end — it was stopped as an earlier
/// run's "which no wait ends", told to run recover — and goes on once that run commits.
#[test]
fn a_copy_waiting_on_a_live_runs_prepared_transaction_waits_for_it() {
    let _serial = serial();
    let s = two_phase_clusters();
    let (src, dbs) = databases(s, T, FILL);
    let log = TempPath::new("live-prepared.log");
    let running = Paused::start(&strs(&copy_args(s, &src, &dbs, &log)), "prepared:2");
    let urls: Vec<String> = s.dest.iter().zip(&dbs).map(|(c, d)| c.url(d)).collect();
    let from = s.source.url(&src);
    let mut waiting = copyman()
        .args([
            "table",
            "t",
            "--from",
            &from,
            "--to",
            &urls[0],
            "--truncate",
        ])
        .env("COPYMAN_TEST_SAY_AFTER", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    thread::sleep(Duration::from_secs(6));
    assert!(
        waiting.try_wait().unwrap().is_none(),
        "{}",
        text(&waiting.wait_with_output().unwrap().stderr)
    );
    let ran = running.resume();
    assert_exit(&ran, 0);
    let out = waiting.wait_with_output().unwrap();
    assert_exit(&out, 0);
    assert!(!text(&out.stderr).contains("was cancelled by copyman"));
    assert_eq!(count(&s.dest[0], &dbs[0], "t"), 300);
}

/// An `--atomic` run into two databases of one server whose role may not call
/// `pg_control_system()` nor `pg_postmaster_start_time()`, killed after its decision: recover
/// given both databases finishes both and exits 0 — each database's transaction is finished by
/// its own CONN, not asked for again as "in other databases of this server" (it committed
/// everything, then exited 1 asking for CONNs it was given; conn37 F6).
#[test]
fn recover_of_two_databases_of_a_server_that_cannot_say_who_it_is_ends_at_zero() {
    let _serial = serial();
    let s = two_phase_clusters();
    let src = database(&s.source, &format!("{T} {FILL}"));
    let (d1, d2) = (database(&s.dest[0], T), database(&s.dest[0], T));
    let to: Vec<String> = [&d1, &d2]
        .iter()
        .map(|d| {
            let role = format!("plain_{d}");
            s.dest[0]
                .connect(d)
                .batch_execute(&format!(
                    "CREATE ROLE {role} LOGIN; GRANT SELECT, INSERT ON t TO {role};
                     REVOKE EXECUTE ON FUNCTION pg_control_system() FROM PUBLIC;
                     REVOKE EXECUTE ON FUNCTION pg_postmaster_start_time() FROM PUBLIC;"
                ))
                .unwrap();
            s.dest[0]
                .conninfo(d)
                .replace("user=postgres", &format!("user={role}"))
        })
        .collect();
    let log = TempPath::new("unidentified-recover.log");
    let from = s.source.conninfo(&src);
    let args = [
        "table",
        "t",
        "--from",
        &from,
        "--to",
        &to[0],
        "--to",
        &to[1],
        "--atomic",
        "--decision-log",
        log.arg(),
    ];
    Paused::start(&args, "recorded").kill();
    let out = recover(&[&to[0], &to[1]], log.arg());
    assert_exit(&out, 0);
    assert!(
        !text(&out.stderr).contains("give a CONN for each"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&s.dest[0], &d1, "t"), 300);
    assert_eq!(count(&s.dest[0], &d2, "t"), 300);
    assert!(prepared_in(&s.dest[0], &d1).is_empty() && prepared_in(&s.dest[0], &d2).is_empty());
}

/// A destination whose COMMIT PREPARED its server ran (committed, waiting for a synchronous
/// standby that is not there) and whose connection was then lost with its server (an
/// immediate stop): the run says it in doubt — sent, not answered, it may have committed —
/// not "COMMIT PREPARED failed", commit pending (commit68 F5: the destination held every row).
#[test]
fn a_commit_prepared_sent_and_unanswered_is_in_doubt() {
    let _serial = serial();
    let s = two_phase_clusters();
    // (Its commits wait for a standby once one is named: not "local", as the tests' are.)
    let own = Cluster::builder()
        .setting("max_prepared_transactions", "5")
        .setting("synchronous_commit", "on")
        .start();
    let src = database(&s.source, &format!("{T}{FILL}"));
    let d1 = database(&s.dest[0], T);
    let d2 = database(&own, T);
    let log = TempPath::new("sent-unanswered.log");
    let (from, to1, to2) = (s.source.url(&src), s.dest[0].url(&d1), own.url(&d2));
    let args = [
        "table",
        "t",
        "--from",
        &from,
        "--to",
        &to1,
        "--to",
        &to2,
        "--atomic",
        "--decision-log",
        log.arg(),
    ];
    // Both prepared and the decision recorded; destination 2's commit now waits for a standby.
    let paused = Paused::start(&args, "recorded");
    let mut admin = own.connect("postgres");
    admin
        .batch_execute("ALTER SYSTEM SET synchronous_standby_names = 'nosuch'")
        .unwrap();
    admin.batch_execute("SELECT pg_reload_conf()").unwrap();
    let run = paused.resume_in_background();
    wait_for_syncrep(&own);
    own.stop_immediate();
    let out = run.join().unwrap();
    let said = text(&out.stderr);
    assert_exit(&out, 4);
    assert!(
        said.contains("its COMMIT PREPARED was sent and not answered")
            && said.contains("in doubt")
            && !said.contains("COMMIT PREPARED failed"),
        "{said}"
    );
    assert_eq!(count(&s.dest[0], &d1, "t"), 300);
}
