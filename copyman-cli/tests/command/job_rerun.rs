//! A job run again without `--resume` into destinations its state file records an earlier run
//! into would add every row a second time (tables without a key take them, exit 0): refused,
//! naming `--resume` and `--truncate`; `--truncate` copies each table again, once. With the
//! default state file too. Real clusters, shared by the binary.

use crate::common;

use common::*;

const TABLES: &str = "CREATE TABLE big (id int, v text); CREATE TABLE unl (id int);";

#[test]
fn a_job_run_again_without_resume_is_refused_rather_than_copying_twice() {
    let c = clusters();
    let src = database(
        &c.source,
        &format!(
            "{TABLES} INSERT INTO big SELECT g, 'v' FROM generate_series(1, 2000) g;
             INSERT INTO unl SELECT generate_series(1, 200);"
        ),
    );
    let d1 = database(&c.dest[0], TABLES);
    let cache = TempPath::new("rerun-cache");
    std::fs::create_dir_all(&cache.0).unwrap();
    let job = |extra: &[&str]| {
        copyman()
            .env("XDG_CACHE_HOME", &cache.0)
            .args([
                "table",
                "big",
                "unl",
                "--from",
                &c.source.conninfo(&src),
                "--to",
                &c.dest[0].conninfo(&d1),
            ])
            .args(extra)
            .output()
            .unwrap()
    };
    // The default state file, then an explicit one.
    let state = TempPath::new("rerun.state");
    for extra in [&[][..], &["--state", state.arg()][..]] {
        let _ = c.dest[0].connect(&d1).batch_execute("TRUNCATE big, unl");
        assert_exit(&job(extra), 0);
        let again = job(extra);
        assert_exit(&again, 2);
        let stderr = text(&again.stderr);
        // The earlier run finished: it "copied" them (it said "began", as of a stopped run).
        assert!(
            stderr.contains("records an earlier job into these destinations, which copied")
                && stderr.contains("--resume")
                && stderr.contains("--truncate"),
            "{stderr}"
        );
        assert_eq!(count(&c.dest[0], &d1, "big"), 2000, "not twice");
        assert_eq!(count(&c.dest[0], &d1, "unl"), 200, "not twice");
        if extra.is_empty() {
            // The same tables selected otherwise: another default state file, the same rows.
            let otherwise = copyman()
                .env("XDG_CACHE_HOME", &cache.0)
                .args([
                    "table",
                    "--schema",
                    "public",
                    "--from",
                    &c.source.conninfo(&src),
                    "--to",
                    &c.dest[0].conninfo(&d1),
                ])
                .output()
                .unwrap();
            assert_exit(&otherwise, 2);
            assert!(
                text(&otherwise.stderr).contains("records another job from this source"),
                "{}",
                text(&otherwise.stderr)
            );
            assert_eq!(count(&c.dest[0], &d1, "unl"), 200, "not twice");
        }
        // --truncate copies each table again, once; --resume has nothing left to do.
        assert_exit(&job(&[extra, &["--truncate"]].concat()), 0);
        assert_eq!(count(&c.dest[0], &d1, "big"), 2000);
        assert_exit(&job(&[extra, &["--resume"]].concat()), 0);
        assert_eq!(count(&c.dest[0], &d1, "big"), 2000);
    }
}

/// Two append jobs whose `--state` files share a directory, one after the other: the second's
/// table the first copied was copied twice, exit 0 (jobs43 F4) — the default directory refused
/// it. Every state file beside a `--state` is read as the default directory's; one in another
/// directory copies again, deliberately.
#[test]
fn a_job_beside_an_earlier_jobs_state_file_does_not_copy_its_tables_again() {
    let c = clusters();
    let src = database(
        &c.source,
        &format!(
            "{TABLES} INSERT INTO big SELECT g, 'v' FROM generate_series(1, 2000) g;
             INSERT INTO unl SELECT generate_series(1, 200);"
        ),
    );
    let d1 = database(&c.dest[0], TABLES);
    let (shared, elsewhere) = (TempDir::new("shared-states"), TempDir::new("other-states"));
    std::fs::write(shared.path("notes.txt"), "not a state file\n").unwrap();
    let job = |tables: &[&str], state: &str| {
        let mut args = vec!["table"];
        args.extend(tables);
        let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&d1));
        args.extend(["--from", &from, "--to", &to, "--state", state]);
        run(&args)
    };
    assert_exit(&job(&["big"], &shared.path("a.state")), 0);
    let second = job(&["big", "unl"], &shared.path("b.state"));
    assert_exit(&second, 2);
    let stderr = text(&second.stderr);
    assert!(
        stderr.contains("a.state records another job from this source that committed")
            && stderr.contains("on destination 1 (")
            && stderr.contains("a --state in another directory"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &d1, "big"), 2000, "not twice");
    assert_eq!(count(&c.dest[0], &d1, "unl"), 0);
    // Where every table the job takes is among them, leaving them out leaves nothing: said so
    // (jobs67 F4: an --exclude-table for each of 112, which left nothing to copy).
    let all = job(&["big"], &shared.path("c.state"));
    assert_exit(&all, 2);
    assert!(
        text(&all.stderr).contains("every table this job takes is among them"),
        "{}",
        text(&all.stderr)
    );
    // Leaving them out, the way it gives first, copies the rest (jobs66 F13: not offered).
    let exclude = r#"--exclude-table '"public"."big"'"#;
    assert!(
        stderr.contains(&format!("leave them out ({exclude})")),
        "{stderr}"
    );
    let out = job(
        &["big", "unl", "--exclude-table", r#""public"."big""#],
        &shared.path("b.state"),
    );
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[0], &d1, "unl"), 200);
    c.dest[0]
        .connect(&d1)
        .batch_execute("TRUNCATE unl")
        .unwrap();
    // Tables the earlier job did not copy are no matter; elsewhere, the rows once more.
    assert_exit(&job(&["unl"], &shared.path("c.state")), 0);
    assert_exit(&job(&["big"], &elsewhere.path("d.state")), 0);
    assert_eq!(count(&c.dest[0], &d1, "big"), 4000);
    // A job that stopped before a table (its first failed: --jobs 1, largest first), another
    // job of the directory that copied that table since, then the first one's resume: refused
    // (it appended the table again, exit 0: recheck43 F4).
    let d1 = &d1;
    let shared = TempDir::new("shared-states-resumed");
    let admin = |sql: &str| c.dest[0].connect(d1).batch_execute(sql).unwrap();
    admin("TRUNCATE big, unl; ALTER TABLE big ADD CONSTRAINT few CHECK (id < 1000)");
    let first = |extra: &[&str]| {
        let mut args = vec!["big", "unl", "--jobs", "1"];
        args.extend(extra);
        job(&args, &shared.path("e.state"))
    };
    assert_exit(&first(&[]), 1);
    assert_eq!(count(&c.dest[0], d1, "unl"), 0, "not begun");
    assert_exit(&job(&["unl"], &shared.path("f.state")), 0);
    admin("ALTER TABLE big DROP CONSTRAINT few");
    let resumed = first(&["--resume"]);
    assert_exit(&resumed, 2);
    let stderr = text(&resumed.stderr);
    assert!(
        stderr.contains("f.state records another job from this source that committed")
            && stderr.contains("\"public\".\"unl\""),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], d1, "unl"), 200, "not twice");
    // With --truncate it empties and copies it again: once.
    assert_exit(&first(&["--resume", "--truncate"]), 0);
    assert_eq!(count(&c.dest[0], d1, "unl"), 200);
    assert_eq!(count(&c.dest[0], d1, "big"), 2000);
    // A job begun with --truncate resumes emptying each table, --truncate given again or not:
    // not refused as an append (it said "resume with --truncate": first47 F7).
    let truncating = TempDir::new("shared-states-truncating");
    admin("TRUNCATE big, unl; ALTER TABLE big ADD CONSTRAINT few CHECK (id < 1000)");
    let begun = |extra: &[&str]| {
        let mut args = vec!["big", "unl", "--jobs", "1"];
        args.extend(extra);
        job(&args, &truncating.path("j.state"))
    };
    assert_exit(&begun(&["--truncate"]), 1);
    assert_exit(&job(&["unl"], &truncating.path("k.state")), 0);
    admin("ALTER TABLE big DROP CONSTRAINT few");
    let resumed = begun(&["--resume"]);
    assert_exit(&resumed, 0);
    assert_eq!(count(&c.dest[0], d1, "unl"), 200, "emptied, copied once");
    assert_eq!(count(&c.dest[0], d1, "big"), 2000);
    // A job beside that began big and rolled it back committed nothing: no matter to the next
    // one (recheck43b F1).
    let shared = TempDir::new("shared-states-rolled-back");
    admin("TRUNCATE big, unl; ALTER TABLE big ADD CONSTRAINT few CHECK (id < 1000)");
    assert_exit(&job(&["big"], &shared.path("g.state")), 1);
    admin("ALTER TABLE big DROP CONSTRAINT few");
    assert_exit(&job(&["big"], &shared.path("h.state")), 0);
    assert_eq!(count(&c.dest[0], d1, "big"), 2000);
    // Renamed since on both sides, the same relation on the source: known by it (it was
    // copied again, rows twice: recheck43b F2).
    for (cluster, db) in [(&c.source, &src), (&c.dest[0], d1)] {
        cluster
            .connect(db)
            .batch_execute("ALTER TABLE big RENAME TO big2")
            .unwrap();
    }
    let renamed = job(&["big2"], &shared.path("i.state"));
    assert_exit(&renamed, 2);
    assert!(
        text(&renamed.stderr).contains("\"public\".\"big2\" (as \"public\".\"big\")"),
        "{}",
        text(&renamed.stderr)
    );
    assert_eq!(count(&c.dest[0], d1, "big2"), 2000, "not twice");
    for (cluster, db) in [(&c.source, &src), (&c.dest[0], d1)] {
        cluster
            .connect(db)
            .batch_execute("ALTER TABLE big2 RENAME TO big")
            .unwrap();
    }
    // Another source's rows into the same table (shards merged): not the same rows, no
    // refusal (recheck43b F7).
    let other = database(
        &c.dest[1],
        &format!("{TABLES} INSERT INTO big VALUES (-1, 'shard');"),
    );
    let merged = run(&[
        "table",
        "big",
        "unl",
        "--from",
        &c.dest[1].conninfo(&other),
        "--to",
        &c.dest[0].conninfo(d1),
        "--state",
        &shared.path("j.state"),
    ]);
    assert_exit(&merged, 0);
    assert_eq!(count(&c.dest[0], d1, "big"), 2001);
}

/// Two jobs of the same state directory running at once: the later one's check of earlier
/// runs found nothing begun (the first had not reached the shared table yet), and both appended
/// it. A running job claims its tables in its state file before it copies: a job started
/// beside it that would append one of them is refused; two that both empty the table first
/// (the later TRUNCATE waits for the earlier copy, then replaces it) both run.
#[test]
fn a_job_beside_a_running_job_of_the_same_tables_is_refused() {
    let c = clusters();
    let src = database(
        &c.source,
        &format!(
            "{TABLES} INSERT INTO big SELECT g, 'v' FROM generate_series(1, 2000) g;
             INSERT INTO unl SELECT generate_series(1, 200);"
        ),
    );
    let d1 = database(&c.dest[0], TABLES);
    let cache = TempPath::new("beside-cache");
    std::fs::create_dir_all(&cache.0).unwrap();
    let job = |tables: &[&str], extra: &[&str]| {
        let mut cmd = copyman();
        cmd.env("XDG_CACHE_HOME", &cache.0)
            .arg("table")
            .args(tables)
            .args([
                "--from",
                &c.source.conninfo(&src),
                "--to",
                &c.dest[0].conninfo(&d1),
                "--jobs",
                "1",
            ])
            .args(extra);
        cmd
    };
    for truncate in [false, true] {
        let extra: &[&str] = if truncate { &["--truncate"] } else { &[] };
        c.dest[0]
            .connect(&d1)
            .batch_execute("TRUNCATE big, unl")
            .unwrap();
        // The first job waits on `big` (the larger, copied first): a SHARE lock held here.
        let mut holder = c.dest[0].connect(&d1);
        holder
            .batch_execute("BEGIN; LOCK big IN SHARE MODE")
            .unwrap();
        let first = job(&["big", "unl"], extra)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Its TRUNCATE (or the lock its COPY takes) waits: it has claimed its tables (planning,
        // which names big too, is over).
        let waits = if truncate {
            "TRUNCATE ONLY \"public\".\"big\"%"
        } else {
            "%LOCK TABLE ONLY \"public\".\"big\" IN ROW EXCLUSIVE%"
        };
        wait_for_query(&c.dest[0], &d1, waits);
        // `unl` alone, another default state file, while the first runs.
        let beside = job(&["unl"], extra).output().unwrap();
        if truncate {
            assert_exit(&beside, 0);
        } else {
            assert_exit(&beside, 2);
            let stderr = text(&beside.stderr);
            assert!(
                stderr.contains("another copyman job is running")
                    && stderr.contains("\"public\".\"unl\""),
                "{stderr}"
            );
            // Emptying the table first does not help while the first job appends it.
            let emptying = job(&["unl"], &["--truncate"]).output().unwrap();
            assert_exit(&emptying, 2);
            assert_eq!(count(&c.dest[0], &d1, "unl"), 0, "nothing copied beside");
        }
        holder.batch_execute("ROLLBACK").unwrap();
        let first = first.wait_with_output().unwrap();
        assert_exit(&first, 0);
        assert_eq!(count(&c.dest[0], &d1, "big"), 2000);
        assert_eq!(count(&c.dest[0], &d1, "unl"), 200, "once, not twice");
        // Every state file of the directory goes, for the next round.
        std::fs::remove_dir_all(&cache.0).unwrap();
        std::fs::create_dir_all(&cache.0).unwrap();
    }
    // Each its own --state, in one directory: the running job's claims count the same (both
    // appended `unl`, every row twice, exit 0).
    c.dest[0]
        .connect(&d1)
        .batch_execute("TRUNCATE big, unl")
        .unwrap();
    let states = TempPath::new("beside-states");
    std::fs::create_dir_all(&states.0).unwrap();
    let state = |name: &str| states.0.join(name).to_str().unwrap().to_owned();
    let (first_state, second_state) = (state("first.state"), state("second.state"));
    let mut holder = c.dest[0].connect(&d1);
    holder
        .batch_execute("BEGIN; LOCK big IN SHARE MODE")
        .unwrap();
    let first = job(&["big", "unl"], &["--state", &first_state])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_query(
        &c.dest[0],
        &d1,
        "%LOCK TABLE ONLY \"public\".\"big\" IN ROW EXCLUSIVE%",
    );
    let beside = job(&["unl"], &["--state", &second_state]).output().unwrap();
    assert_exit(&beside, 2);
    let stderr = text(&beside.stderr);
    assert!(
        stderr.contains("another copyman job is running") && stderr.contains(&first_state),
        "{stderr}"
    );
    holder.batch_execute("ROLLBACK").unwrap();
    assert_exit(&first.wait_with_output().unwrap(), 0);
    assert_eq!(count(&c.dest[0], &d1, "unl"), 200, "once, not twice");
    std::fs::remove_dir_all(&states.0).unwrap();
}

/// Two jobs of one directory started together (both planned before either ran): each had
/// listed the directory's running jobs when it began, found none, and both appended the table
/// (every row twice, exit 0). The running jobs are listed again when a job claims its tables:
/// the later one is refused.
#[test]
fn jobs_started_together_do_not_both_append_a_table() {
    let c = clusters();
    let src = database(
        &c.source,
        &format!("{TABLES} INSERT INTO unl SELECT generate_series(1, 200);"),
    );
    let d1 = database(&c.dest[0], TABLES);
    let states = TempPath::new("together-states");
    std::fs::create_dir_all(&states.0).unwrap();
    let state = |name: &str| states.0.join(name).to_str().unwrap().to_owned();
    let (one, two) = (state("one.state"), state("two.state"));
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&d1));
    let args = |state: &str| -> Vec<String> {
        [
            "table", "unl", "--from", &from, "--to", &to, "--state", state,
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
    };
    let (args_one, args_two) = (args(&one), args(&two));
    let one_strs: Vec<&str> = args_one.iter().map(String::as_str).collect();
    let two_strs: Vec<&str> = args_two.iter().map(String::as_str).collect();
    let first = Paused::start(&one_strs, "planned");
    let second = Paused::start(&two_strs, "planned");
    // The first's COPY waits on a lock: it is running (and has claimed) when the second goes on.
    let mut holder = c.dest[0].connect(&d1);
    holder
        .batch_execute("BEGIN; LOCK unl IN SHARE MODE")
        .unwrap();
    let first = std::thread::spawn(move || first.resume());
    wait_for_lock(&c.dest[0], &d1);
    // Refused at once; one that went on would wait for the lock too (bounded here).
    let second = std::thread::spawn(move || second.resume());
    let waited = std::time::Instant::now();
    while !second.is_finished() && waited.elapsed() < std::time::Duration::from_secs(30) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    holder.batch_execute("ROLLBACK").unwrap();
    let (first, second) = (first.join().unwrap(), second.join().unwrap());
    assert_exit(&first, 0);
    assert_exit(&second, 2);
    assert!(
        text(&second.stderr).contains("another copyman job is running"),
        "{}",
        text(&second.stderr)
    );
    assert_eq!(count(&c.dest[0], &d1, "unl"), 200, "once, not twice");
    std::fs::remove_dir_all(&states.0).unwrap();
}

/// A job of another selection given the `--state` of a job that did not finish: it replaced
/// that file without a word, the first job's resume was refused (another selection), and run
/// again the first job appended the table it had committed a second time (exit 0). The file is
/// kept for its resume: refused, naming the other job.
#[test]
fn a_state_file_of_another_unfinished_job_is_not_replaced() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE a1 (id int); CREATE TABLE a2 (id int); CREATE TABLE b1 (id int);
         INSERT INTO a1 SELECT generate_series(1, 500); INSERT INTO a2 VALUES (1);
         INSERT INTO b1 VALUES (1);",
    );
    let d1 = database(
        &c.dest[0],
        "CREATE TABLE a1 (id int); CREATE TABLE a2 (id int); CREATE TABLE b1 (id int);
         CREATE FUNCTION no() RETURNS trigger LANGUAGE plpgsql AS
           $$BEGIN RAISE EXCEPTION 'not now'; END$$;
         CREATE TRIGGER no BEFORE INSERT ON a2 FOR EACH ROW EXECUTE FUNCTION no();",
    );
    let state = TempPath::new("unfinished.state");
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&d1));
    let job = |tables: &[&str], extra: &[&str]| {
        let mut args = vec!["table"];
        args.extend(tables);
        args.extend([
            "--from",
            &from,
            "--to",
            &to,
            "--jobs",
            "1",
            "--state",
            state.arg(),
        ]);
        args.extend(extra);
        run(&args)
    };
    let out = job(&["a1", "a2"], &[]);
    assert_exit(&out, 4);
    assert_eq!(count(&c.dest[0], &d1, "a1"), 500);
    let out = job(&["b1"], &[]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("records a job of another selection (")
            && stderr.contains("that did not finish"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &d1, "b1"), 0);
    // The first job resumes from it: a1 once.
    c.dest[0]
        .connect(&d1)
        .batch_execute("DROP TRIGGER no ON a2")
        .unwrap();
    let out = job(&["a1", "a2"], &["--resume"]);
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[0], &d1, "a1"), 500);
    assert_eq!(count(&c.dest[0], &d1, "a2"), 1);
    // Finished, it is kept too: replaced, the first job run again appended its tables a second
    // time, exit 0 (jobs67 F13); so is an earlier run's record of other destinations.
    let out = job(&["b1"], &[]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("records a job of another selection (")
            && stderr.contains("that committed \"public\".\"a1\", \"public\".\"a2\"")
            && stderr.contains("give this job another --state"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &d1, "b1"), 0);
    let d2 = database(
        &c.dest[1],
        "CREATE TABLE a1 (id int); CREATE TABLE a2 (id int);",
    );
    let to2 = c.dest[1].conninfo(&d2);
    let out = run(&[
        "table",
        "a1",
        "a2",
        "--from",
        &from,
        "--to",
        &to2,
        "--jobs",
        "1",
        "--state",
        state.arg(),
    ]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("records this job's earlier run committing")
            && stderr.contains("on destinations this run does not copy to"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[1], &d2, "a1"), 0);
    // The first job run again is refused, as it was before (its record kept).
    let out = job(&["a1", "a2"], &[]);
    assert_exit(&out, 2);
    assert_eq!(count(&c.dest[0], &d1, "a1"), 500);
}

/// A job is unfinished too where a table never began on a destination: missing there while it
/// planned (left out under `--keep-going`). Its state file was replaced by another selection's
/// job all the same, and run again the first job appended what it had committed (rows twice).
#[test]
fn a_state_file_of_a_job_that_never_began_a_table_somewhere_is_not_replaced() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE a (id int); CREATE TABLE b (id int);
         INSERT INTO a SELECT generate_series(1, 100); INSERT INTO b VALUES (1);",
    );
    let d1 = database(
        &c.dest[0],
        "CREATE TABLE a (id int); CREATE TABLE b (id int);",
    );
    let d2 = database(&c.dest[1], "CREATE TABLE b (id int);");
    let state = TempPath::new("never-began.state");
    let (from, to1, to2) = (
        c.source.conninfo(&src),
        c.dest[0].conninfo(&d1),
        c.dest[1].conninfo(&d2),
    );
    let job = |table: &str, extra: &[&str]| {
        let mut args = vec!["table", "--table", table, "--from", &from, "--to", &to1];
        args.extend(["--to", &to2, "--state", state.arg()]);
        args.extend(extra);
        run(&args)
    };
    assert_exit(&job("a", &["--keep-going"]), 4);
    assert_eq!(count(&c.dest[0], &d1, "a"), 100);
    let out = job("b", &[]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("that did not finish"),
        "{}",
        text(&out.stderr)
    );
    // Once the table is there, the first job's resume finishes it, a once on each.
    c.dest[1]
        .connect(&d2)
        .batch_execute("CREATE TABLE a (id int)")
        .unwrap();
    assert_exit(&job("a", &["--resume"]), 0);
    assert_eq!(count(&c.dest[0], &d1, "a"), 100);
    assert_eq!(count(&c.dest[1], &d2, "a"), 100);
}

/// A `--keep-going` resume with a destination that cannot be reached leaves it out, said, and
/// finishes the others (exit 4), as a first `--keep-going` run does: it was refused (exit 2) as
/// a destination whose `pg_control_system()` is not readable, advising a run without `--resume`
/// (which would append every table a second time).
#[test]
fn a_keep_going_resume_leaves_out_a_destination_it_cannot_reach() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE a (id int); CREATE TABLE b (id int);
         INSERT INTO a SELECT generate_series(1, 100); INSERT INTO b SELECT generate_series(1, 50);",
    );
    // Destination 2 lacks b: the first run copies a there, b only to destination 1.
    let d1 = database(
        &c.dest[0],
        "CREATE TABLE a (id int); CREATE TABLE b (id int);",
    );
    let d2 = database(&c.dest[1], "CREATE TABLE a (id int);");
    let state = TempPath::new("keep-going-down.state");
    let from = c.source.conninfo(&src);
    let to1 = c.dest[0].conninfo(&d1);
    let job = |to2: &str, resume: &[&str]| {
        let mut args = vec![
            "table", "a", "b", "--from", &from, "--to", &to1, "--to", to2,
        ];
        args.extend(["--state", state.arg(), "--keep-going"]);
        args.extend(resume);
        run(&args)
    };
    assert_exit(&job(&c.dest[1].conninfo(&d2), &[]), 4);
    let down = format!(
        "host=127.0.0.1 port={} user=postgres dbname=x connect_timeout=2",
        closed_port()
    );
    let out = job(&down, &["--resume"]);
    let stderr = text(&out.stderr);
    assert_exit(&out, 4);
    assert!(
        stderr.contains("cannot connect") && stderr.contains("left out (--keep-going)"),
        "{stderr}"
    );
    assert!(!stderr.contains("pg_control_system"), "{stderr}");
    assert_eq!(count(&c.dest[0], &d1, "a"), 100);
    assert_eq!(count(&c.dest[0], &d1, "b"), 50);
}

/// A resume stopped by a signal while it plans says that this run committed nothing and that
/// what earlier runs committed stays, with the state file to resume from: it said "nothing
/// committed" alone, though the destinations held most of the job.
#[test]
fn a_resume_interrupted_while_planning_says_what_earlier_runs_committed_stays() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE a (id int); CREATE TABLE b (id int);
         INSERT INTO a SELECT generate_series(1, 100); INSERT INTO b SELECT generate_series(1, 50);",
    );
    // b is missing there at first: the first run commits a only.
    let d1 = database(&c.dest[0], "CREATE TABLE a (id int);");
    let state = TempPath::new("resume-interrupted.state");
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&d1));
    let args = [
        "table",
        "a",
        "b",
        "--from",
        &from,
        "--to",
        &to,
        "--state",
        state.arg(),
        "--keep-going",
    ];
    assert_exit(&run(&args), 4);
    assert_eq!(count(&c.dest[0], &d1, "a"), 100);
    c.dest[0]
        .connect(&d1)
        .batch_execute("CREATE TABLE b (id int)")
        .unwrap();
    // The resume's planning waits for a lock on b there; a signal stops it.
    let holder = hold_lock(&c.dest[0], &d1, "b");
    let mut resume = args.to_vec();
    resume.push("--resume");
    let child = copyman()
        .args(&resume)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_lock(&c.dest[0], &d1);
    signal(&child, "INT");
    let out = child.wait_with_output().unwrap();
    drop(holder);
    let stderr = text(&out.stderr);
    assert_exit(&out, 130);
    assert!(
        stderr.contains("this run began nothing and committed nothing")
            && stderr.contains("earlier runs committed stay committed")
            && stderr.contains("--resume"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("error: interrupted by SIGINT: nothing committed"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &d1, "a"), 100);
}

/// A resume with `--truncate` that cannot empty a table other tables reference (a ← b ← c,
/// an append job whose table `a` differs) says the one statement that empties them on the
/// destination, naming every table that references them at any depth: PostgreSQL takes it
/// (it named `b` and not `c`, and was refused: "Table "c" references "b"").
#[test]
fn the_truncate_advised_for_a_referenced_table_names_every_referencing_table() {
    let c = clusters();
    let schema = "CREATE TABLE a (id int PRIMARY KEY); \
                  CREATE TABLE b (id int PRIMARY KEY, a int REFERENCES a); \
                  CREATE TABLE cc (id int PRIMARY KEY, b int REFERENCES b);";
    let src = database(
        &c.source,
        &format!(
            "{schema} INSERT INTO a SELECT generate_series(1, 10); \
             INSERT INTO b SELECT g, g FROM generate_series(1, 10) g; \
             INSERT INTO cc SELECT g, g FROM generate_series(1, 10) g;"
        ),
    );
    let d1 = database(&c.dest[0], schema);
    let state = TempPath::new("referenced-truncate.state");
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&d1));
    let job = |extra: &[&str]| {
        let mut args = vec!["table", "a", "b", "cc", "--from", &from, "--to", &to];
        args.extend(["--verify", "--state", state.arg()]);
        args.extend(extra);
        run(&args)
    };
    assert_exit(&job(&[]), 0);
    // `a` changed on the destination since it was verified.
    c.dest[0].psql(&d1, "INSERT INTO a VALUES (11)");
    let out = job(&["--resume"]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // Its mismatch says it is replaced only with the tables that reference it (it said "resume
    // with --truncate to replace it", which then failed).
    assert!(
        text(&out.stderr)
            .contains("other tables' rows reference it, so it is replaced only with them"),
        "{}",
        text(&out.stderr)
    );
    let out = job(&["--resume", "--truncate"]);
    let stderr = text(&out.stderr);
    let advised = stderr
        .split("empty them together yourself (")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap_or_else(|| panic!("no statement advised: {stderr}"));
    assert_eq!(
        advised, "TRUNCATE ONLY \"public\".\"a\", ONLY \"public\".\"b\", ONLY \"public\".\"cc\"",
        "{stderr}"
    );
    let mut dest = c.dest[0].connect(&d1);
    dest.batch_execute(advised).unwrap();
    assert_eq!(count(&c.dest[0], &d1, "cc"), 0);
}

/// A resume given `--truncate` binds no later resume: an append job's table it did not copy
/// (done earlier, beside a destination's own row), found different later by `--verify`, is
/// refused by the next plain resume as an append's, its own row kept (the resume emptied it,
/// exit 0, the row deleted; jobs37 F7).
#[test]
fn a_resume_given_truncate_does_not_make_later_resumes_empty_an_append_table() {
    let c = clusters();
    let schema = "CREATE TABLE ap (id int PRIMARY KEY); CREATE TABLE bp (id int);";
    let src = database(
        &c.source,
        &format!(
            "{schema} INSERT INTO ap SELECT generate_series(1, 10);
             INSERT INTO bp SELECT generate_series(1, 10);"
        ),
    );
    // The destination's own row in ap; bp refuses rows at first.
    let d = database(
        &c.dest[0],
        &format!(
            "{schema} INSERT INTO ap VALUES (9999);
             ALTER TABLE bp ADD CONSTRAINT none CHECK (id < 0);"
        ),
    );
    let state = TempPath::new("append-then-truncate.state");
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&d));
    let job = |extra: &[&str]| {
        let args = [
            "table",
            "ap",
            "bp",
            "--from",
            &from,
            "--to",
            &to,
            "--state",
            state.arg(),
            "--keep-going",
        ];
        run(&[&args[..], extra].concat())
    };
    assert_exit(&job(&[]), 4);
    c.dest[0].psql(&d, "ALTER TABLE bp DROP CONSTRAINT none");
    assert_exit(&job(&["--resume", "--truncate"]), 0);
    assert_eq!(count(&c.dest[0], &d, "ap"), 11, "ap kept its own row");
    c.source.psql(&src, "INSERT INTO ap VALUES (11)");
    let out = job(&["--resume", "--verify"]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("so --resume leaves it to you"),
        "{}",
        text(&out.stderr)
    );
    // Its closing line says what a resume takes: not "run again with --resume", which is
    // refused (jobs44 F1).
    assert!(
        text(&out.stderr).contains(
            "--resume without --verify refuses a table whose checksum differs (see its line): \
             compare it with the source and mend it, then run again with --resume --verify \
             (compared again: done if it matches), or with --resume --truncate to replace it"
        ) && !text(&out.stderr).contains("run again with --resume to copy what is missing"),
        "{}",
        text(&out.stderr)
    );
    let out = job(&["--resume"]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("\"public\".\"ap\""),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        count(&c.dest[0], &d, "ap"),
        11,
        "the destination's own row is still there"
    );
}
