//! Clones of one server (a copied data directory, `pg_basebackup`, a restore) share its system
//! identifier and oids. Running side by side they are two destinations: not refused as one
//! database given twice, and a job's state file tells them apart, so a resume never takes one's
//! records for the other's. Real clusters: a destination and its clone, made for this binary.

use crate::common;

use common::*;
use copyman_testkit::Cluster;

const TABLES: &str = "CREATE TABLE t (id int PRIMARY KEY, v text); CREATE TABLE u (id int);";

/// Tester P's false refusal and the review's resume: the clone fails its table (a CHECK the
/// original has not), is mended, and `--resume` copies it there (it skipped the clone, whose
/// records it took the original's for, and exited 0 with 0 rows on it).
#[test]
fn clones_are_two_destinations_and_a_resume_tells_them_apart() {
    let c = clusters();
    let src = database(
        &c.source,
        &format!(
            "{TABLES} INSERT INTO t SELECT g, 'v' FROM generate_series(1, 1000) g;
             INSERT INTO u VALUES (1);"
        ),
    );
    let original = Cluster::start();
    let db = database(&original, TABLES);
    let clone = original.clone_data();
    clone
        .connect(&db)
        .batch_execute("ALTER TABLE t ADD CONSTRAINT small CHECK (id < 500)")
        .unwrap();
    let state = TempPath::new("clones.state");
    let (from, to1, to2) = (
        c.source.conninfo(&src),
        original.conninfo(&db),
        clone.conninfo(&db),
    );
    let args = |resume: bool| {
        let mut args = vec![
            "table",
            "public.t",
            "public.u",
            "--from",
            &from,
            "--to",
            &to1,
            "--to",
            &to2,
            "--keep-going",
            "--state",
            state.arg(),
        ];
        if resume {
            args.push("--resume");
        }
        run(&args)
    };
    let first = args(false);
    assert_exit(&first, 4);
    assert_eq!(count(&original, &db, "t"), 1000);
    assert_eq!(count(&clone, &db, "t"), 0);
    clone
        .connect(&db)
        .batch_execute("ALTER TABLE t DROP CONSTRAINT small")
        .unwrap();
    let resumed = args(true);
    assert_exit(&resumed, 0);
    for server in [&original, &clone] {
        assert_eq!(count(server, &db, "t"), 1000);
        assert_eq!(count(server, &db, "u"), 1);
    }

    // A job to the original alone, resumed with its clone added: refused, saying why as it is
    // (it said pg_control_system() was not readable there).
    let alone = TempPath::new("clones-added.state");
    let job = |to: &[&str], resume: bool| {
        let mut args = vec![
            "table",
            "public.t",
            "public.u",
            "--from",
            &from,
            "--truncate",
        ];
        for to in to {
            args.extend(["--to", to]);
        }
        args.extend(["--state", alone.arg()]);
        if resume {
            args.push("--resume");
        }
        run(&args)
    };
    assert_exit(&job(&[&to1], false), 0);
    let out = job(&[&to1, &to2], true);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("a clone: one system identifier and database oid")
            && !stderr.contains("pg_control_system() is not readable"),
        "{stderr}"
    );
}

/// A destination replaced, between a job and its resume, by a copy of itself taken before the
/// job (a restore) or by its standby promoted (a failover to a replica that had not received the
/// job's commits) has the same system identifier: the state file's records were taken for it,
/// and a resume exited 0 with none of the source's rows there (the destination's own rows hid
/// the loss; a transaction id recorded could even name one of the new server's own). The state
/// file records where the destination's WAL stood when each table began: a resume refuses a
/// destination behind it or on another timeline, unless --verify compares every table. A
/// restored copy whose WAL has since passed that position is known by its transaction ids,
/// behind those the job committed there (it was taken for where the job left it, exit 0); one
/// whose transaction ids passed those too (a few transactions, one of them given the id the
/// job's COMMIT had) lacks the rows the job's last transaction there wrote (`xmin`).
#[test]
fn a_destination_restored_or_failed_over_since_is_not_taken_for_where_the_job_left_it() {
    let c = clusters();
    let tables = "CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY);";
    let src = database(
        &c.source,
        &format!(
            "{tables} INSERT INTO a SELECT generate_series(1, 1000);
             INSERT INTO b SELECT generate_series(1, 1000);"
        ),
    );
    let original = Cluster::start();
    // The destination's own rows: a table done there holds some whatever happens.
    let db = database(
        &original,
        &format!(
            "{tables} INSERT INTO a SELECT generate_series(5001, 5100);
             INSERT INTO b SELECT generate_series(5001, 5100);"
        ),
    );
    // Taken before the job: an older copy, and a replica that will not see the job's commits.
    let restored = original.clone_data();
    let restored_on = original.clone_data();
    let restored_later = original.clone_data();
    let replica = original.clone_as_standby();
    let from = c.source.conninfo(&src);
    let cases = [
        ("restored", &restored),
        ("restored, its WAL past", &restored_on),
        ("restored, its transactions past", &restored_later),
        ("failed over", &replica),
    ];
    for (name, replaced) in cases {
        let state = TempPath::new("replaced.state");
        let job = |to: &str, extra: &[&str]| {
            let mut args = vec!["table", "a", "b", "--from", &from, "--to", to, "--state"];
            args.push(state.arg());
            args.extend(extra);
            run(&args)
        };
        original
            .connect(&db)
            .batch_execute("DELETE FROM a WHERE id <= 1000; DELETE FROM b WHERE id <= 1000")
            .unwrap();
        assert_exit(&job(&original.conninfo(&db), &[]), 0);
        assert_eq!(count(&original, &db, "a"), 1100, "{name}");
        if std::ptr::eq(replaced, &replica) {
            replica.promote();
        }
        // A restored copy that wrote since, past where the job left the destination's WAL (a
        // switch to the next WAL file): its transaction ids are still behind the job's.
        if std::ptr::eq(replaced, &restored_on) {
            restored_on
                .connect(&db)
                .batch_execute(
                    "CREATE TABLE since (id int); INSERT INTO since VALUES (1);
                     SELECT pg_switch_wal();",
                )
                .unwrap();
        }
        if std::ptr::eq(replaced, &restored_later) {
            let mut client = restored_later.connect(&db);
            for _ in 0..50 {
                client.batch_execute("SELECT txid_current()").unwrap();
            }
            client.batch_execute("SELECT pg_switch_wal()").unwrap();
        }
        let to = replaced.conninfo(&db);
        let out = job(&to, &["--resume"]);
        assert_exit(&out, 2);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("is not where the earlier run left it")
                && stderr.contains(match name {
                    "restored" => "its WAL stands at",
                    "failed over" => "it writes on timeline 2 now, on 1",
                    "restored, its transactions past" => "holds none of the rows the earlier run",
                    _ => "its next transaction id is",
                })
                && stderr.contains("--verify"),
            "{name}: {stderr}"
        );
        assert_eq!(count(replaced, &db, "a"), 100, "{name}: nothing copied");
        // --verify compares every table recorded there: they differ, said (exit 4), not taken
        // as done.
        let out = job(&to, &["--resume", "--verify"]);
        assert_exit(&out, 4);
        let stderr = text(&out.stderr);
        assert!(stderr.contains("checksum differs"), "{name}: {stderr}");
    }
}

/// A destination database recreated between a failed run and its resume (dropped, created and
/// restored from a dump: another database oid, as a new cluster at the same address has another
/// system identifier) was taken for a destination the job never copied to: every table copied
/// again beside its rows, exit 0. Refused, naming both; nothing copied.
#[test]
fn a_resume_into_a_destination_recreated_since_is_refused() {
    let c = clusters();
    let tables = "CREATE TABLE a (id int); CREATE TABLE b (id int);";
    let src = database(
        &c.source,
        &format!(
            "{tables} INSERT INTO a SELECT generate_series(1, 1000); INSERT INTO b VALUES (1);"
        ),
    );
    let dst = database(&c.dest[0], "CREATE TABLE a (id int)");
    let state = TempPath::new("recreated.state");
    let from = c.source.conninfo(&src);
    let to = c.dest[0].conninfo(&dst);
    let job = |extra: &[&str]| {
        let mut args = vec!["table", "a", "b", "--from", &from, "--to", &to, "--state"];
        args.push(state.arg());
        args.push("--keep-going");
        args.extend(extra);
        run(&args)
    };
    assert_exit(&job(&[]), 4);
    assert_eq!(count(&c.dest[0], &dst, "a"), 1000);
    // Recreated: its rows as they were, another database.
    let mut admin = c.dest[0].connect("postgres");
    admin
        .batch_execute(&format!("ALTER DATABASE {dst} RENAME TO {dst}_old"))
        .unwrap();
    admin
        .batch_execute(&format!("CREATE DATABASE {dst} TEMPLATE {dst}_old"))
        .unwrap();
    c.dest[0]
        .connect(&dst)
        .batch_execute("CREATE TABLE b (id int)")
        .unwrap();
    let out = job(&["--resume"]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("is none the state file") && stderr.contains("recreated"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &dst, "a"), 1000, "nothing copied again");
}

/// A job's source database and its one destination, on a cluster of its own that a test may
/// stop and start, with the job's state file.
struct OwnDestination {
    src: String,
    dest: Cluster,
    db: String,
    state: TempPath,
}

impl OwnDestination {
    /// `source_sql` run in a new database on the shared source, `dest_sql` in one on a new
    /// cluster; the state file named for `name`.
    fn new(name: &str, source_sql: &str, dest_sql: &str) -> Self {
        let src = database(&clusters().source, source_sql);
        let dest = Cluster::start();
        let db = database(&dest, dest_sql);
        let state = TempPath::new(&format!("{name}.state"));
        Self {
            src,
            dest,
            db,
            state,
        }
    }

    /// The job of every table there, one at a time (`--jobs 1`: largest first), with `extra`.
    fn job(&self, extra: &[&str]) -> std::process::Output {
        let (from, to) = (
            clusters().source.conninfo(&self.src),
            self.dest.conninfo(&self.db),
        );
        let mut args = vec!["table", "--from", &from, "--to", &to];
        args.extend(["--state", self.state.arg(), "--jobs", "1"]);
        args.extend(extra);
        run(&args)
    }

    /// The rows of `table` on the destination.
    fn count(&self, table: &str) -> i64 {
        count(&self.dest, &self.db, table)
    }

    /// `sql` run on the destination.
    fn execute(&self, sql: &str) {
        self.dest.connect(&self.db).batch_execute(sql).unwrap();
    }

    /// The `xmin` of the rows of `table` on the destination (one transaction's).
    fn xmin(&self, table: &str) -> String {
        let sql = format!("SELECT DISTINCT xmin::text FROM {table}");
        let rows = self.dest.connect(&self.db).query(&sql, &[]).unwrap();
        assert_eq!(rows.len(), 1, "{table}: rows of one transaction");
        rows[0].get(0)
    }

    /// The state file's one `kind` line of `table` given `value` as its last field: a
    /// transaction id the destination gave again since, made certain.
    fn forge(&self, kind: &str, table: &str, value: &str) {
        let name = format!("\"public\".\"{table}\"");
        let forged = self.rewrite(|fields| {
            (fields[0] == kind && fields[1] == name).then(|| {
                let head = &fields[..fields.len() - 1];
                format!("{}\t{value}", head.join("\t"))
            })
        });
        assert_eq!(forged, 1, "{kind} {table}");
    }

    /// The state file's lines rewritten where `new` gives one for a line's tab-separated
    /// fields; how many were.
    fn rewrite(&self, mut new: impl FnMut(&[&str]) -> Option<String>) -> usize {
        let recorded = std::fs::read_to_string(self.state.arg()).unwrap();
        let mut rewritten = 0;
        let lines: Vec<String> = (recorded.lines())
            .map(|l| {
                let line = new(&l.split('\t').collect::<Vec<_>>());
                rewritten += usize::from(line.is_some());
                line.unwrap_or_else(|| l.to_owned())
            })
            .collect();
        std::fs::write(self.state.arg(), lines.join("\n") + "\n").unwrap();
        rewritten
    }
}

/// An UNLOGGED table a job copied, emptied by its destination's crash recovery (an immediate
/// stop) before a resume: the resume puts it down to that, not to a restore or a clone (the
/// words that sent a DBA looking for one), and copies it again (it was refused as the newest
/// table done: recheck54b F4).
#[test]
fn an_unlogged_table_emptied_by_a_crash_is_said_so_on_resume() {
    let schema = "CREATE UNLOGGED TABLE cache (id int); CREATE TABLE later (id int);";
    let d = OwnDestination::new(
        "unlogged",
        &format!(
            "{schema} INSERT INTO cache SELECT generate_series(1, 300);
             INSERT INTO later VALUES (1);"
        ),
        "CREATE UNLOGGED TABLE cache (id int);",
    );
    // `later` is missing there: the job leaves it out and records `cache` done.
    assert_exit(&d.job(&["--keep-going"]), 4);
    assert_eq!(d.count("cache"), 300);
    d.dest.stop_immediate();
    d.dest.start_again();
    d.execute("CREATE TABLE later (id int)");
    let out = d.job(&["--resume"]);
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("it is UNLOGGED there (or its partitions are), and crash recovery")
            && !stderr.contains("a restore of an older copy")
            && !stderr.contains("a clone?"),
        "{stderr}"
    );
    assert_eq!(d.count("cache"), 300);
    assert_eq!(d.count("later"), 1);
}

/// The same crash, a row written into the UNLOGGED table since, and another table done after
/// it: none of the rows its run committed are there, and the resume copies it again beside
/// the row written since (it took the table for done: 1 row of 300, exit 0; jobs37 F11).
#[test]
fn an_unlogged_table_emptied_by_a_crash_and_written_since_is_copied_again() {
    let schema = "CREATE UNLOGGED TABLE cache (id int, pad text); CREATE TABLE tail (id int);";
    let d = OwnDestination::new(
        "unlogged-written",
        &format!(
            "{schema} INSERT INTO cache SELECT g, repeat('x', 200) FROM generate_series(1, 300) g;
             INSERT INTO tail VALUES (1);"
        ),
        schema,
    );
    assert_exit(&d.job(&[]), 0);
    assert_eq!(d.count("cache"), 300);
    d.dest.stop_immediate();
    d.dest.start_again();
    d.execute("INSERT INTO cache VALUES (0, 'written since')");
    let out = d.job(&["--resume"]);
    assert_exit(&out, 0);
    assert!(
        text(&out.stderr)
            .contains("it is UNLOGGED there (or its partitions are), and crash recovery"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(d.count("cache"), 301);
}

/// The same table, rows written into it after a CLEAN restart of its server (an UPDATE of every
/// row, one row more): its rows were not emptied by a crash, and the resume refuses it (it took
/// the restart for a crash and appended it again, 201 rows of 100, exit 0: recheck53c F2); after
/// a crash of that server it is copied again.
#[test]
fn an_unlogged_table_written_after_a_clean_restart_is_not_taken_as_emptied_by_a_crash() {
    let schema = "CREATE UNLOGGED TABLE cache (id int); CREATE TABLE tail (id int);";
    let d = OwnDestination::new(
        "unlogged-restart",
        &format!(
            "{schema} INSERT INTO cache SELECT generate_series(1, 100);
             INSERT INTO tail VALUES (1);"
        ),
        schema,
    );
    assert_exit(&d.job(&[]), 0);
    d.dest.restart();
    d.execute("UPDATE cache SET id = id; INSERT INTO cache VALUES (-1);");
    let out = d.job(&["--resume"]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("but 101 other rows: emptied there since")
            && !stderr.contains("and crash recovery of its server since"),
        "{stderr}"
    );
    assert_eq!(d.count("cache"), 101);
    d.dest.stop_immediate();
    d.dest.start_again();
    d.execute("INSERT INTO cache VALUES (-1);");
    let out = d.job(&["--resume"]);
    assert_exit(&out, 0);
    assert!(
        text(&out.stderr).contains("and crash recovery of its server since"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(d.count("cache"), 101);
}

/// A destination on a hot standby is refused while planning, named as one (exit 2, nothing
/// copied anywhere) — one table, its dry run, a job, copy mode: it failed at its first write
/// with the server's "cannot execute TRUNCATE TABLE in a read-only transaction" (25006), the
/// dry run exited 0, and the job's closing line said to run it again with --resume.
#[test]
fn a_destination_on_a_standby_is_refused_while_planning() {
    let c = clusters();
    let table = "CREATE TABLE t (id int PRIMARY KEY);";
    let src = database(
        &c.source,
        &format!("{table} INSERT INTO t SELECT generate_series(1, 100);"),
    );
    let primary = Cluster::start();
    let db = database(&primary, table);
    let standby = primary.clone_as_standby();
    let d1 = database(&c.dest[0], table);
    let (from, to_standby, to_d1) = (
        c.source.conninfo(&src),
        standby.conninfo(&db),
        c.dest[0].conninfo(&d1),
    );
    let state = TempPath::new("standby.state");
    let table_args = [
        "table",
        "t",
        "--from",
        &from,
        "--to",
        &to_d1,
        "--to",
        &to_standby,
    ];
    let cases: [Vec<&str>; 4] = [
        [&table_args[..], &["--truncate"]].concat(),
        [&table_args[..], &["--truncate", "--dry-run"]].concat(),
        [&table_args[..], &["--state", state.arg()]].concat(),
        vec![
            "copy",
            "--from",
            &from,
            "--send",
            "COPY t TO STDOUT",
            "--to",
            &to_d1,
            "--to",
            &to_standby,
            "--receive",
            "COPY t FROM STDIN",
        ],
    ];
    for args in cases {
        let out = run(&args);
        assert_exit(&out, 2);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("destination 2") && stderr.contains("is a standby"),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("25006"), "{args:?}: {stderr}");
        assert_eq!(count(&c.dest[0], &d1, "t"), 0, "{args:?}: nothing copied");
    }
    // A host list that reaches the standby first: said with the host reached and libpq's way to
    // its primary among them, which copies there (conn48 F4: "give its primary", of a list that
    // held it).
    let list = format!(
        "host={h},{h} port={},{} user={} dbname={db}",
        standby.port(),
        primary.port(),
        primary.user(),
        h = primary.host()
    );
    for job in [false, true] {
        let mut args = vec!["table", "t", "--from", &from, "--to", &list];
        if job {
            args.extend(["--state", state.arg()]);
        }
        let out = run(&args);
        assert_exit(&out, 2);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(&format!(
                "its sessions reached {}:{} of its CONN's hosts; a destination is written to: \
                 target_session_attrs=read-write (or primary) in its CONN takes the primary \
                 among them",
                primary.host(),
                standby.port()
            )),
            "job {job}: {stderr}"
        );
    }
    // Alike for a list of socket directories, whose paths hold `/` (recheck59 F6: "give its
    // primary").
    let sockets = format!(
        "host={},{} port={},{} user={} dbname={db}",
        standby.socket_dir().display(),
        primary.socket_dir().display(),
        standby.port(),
        primary.port(),
        primary.user(),
    );
    let out = run(&["table", "t", "--from", &from, "--to", &sockets]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr)
            .contains("target_session_attrs=read-write (or primary) in its CONN takes the primary"),
        "{}",
        text(&out.stderr)
    );
    let read_write = format!("{list} target_session_attrs=read-write");
    assert_exit(
        &run(&["table", "t", "--from", &from, "--to", &read_write]),
        0,
    );
    assert_eq!(count(&primary, &db, "t"), 100);
}

/// A source on a standby of the destination's cluster (in recovery, its system identifier, the
/// same database) copied into the table it reads is refused, one table and a job alike: its
/// rows are the destination's own, written a second time (rows doubled, exit 0, in silence) —
/// whether it streams from that destination, or through a relay standby, which was only warned
/// about ("if it streams from destination 1") and doubled the rows. Into another table it is
/// copied as from the primary (it was refused too).
#[test]
fn a_source_on_a_standby_of_the_destination_is_refused_into_its_own_table() {
    let table = "CREATE TABLE t (id int); CREATE TABLE archive (id int);";
    let primary = Cluster::start();
    let db = database(
        &primary,
        &format!("{table} INSERT INTO t SELECT generate_series(1, 100);"),
    );
    let standby = primary.clone_as_standby();
    let (from, to) = (standby.conninfo(&db), primary.conninfo(&db));
    let state = TempPath::new("standby-source.state");
    let one = ["table", "t", "--from", &from, "--to", &to, "--dry-run"];
    let job = [&one[..], &["--state", state.arg()]].concat();
    for args in [&one[..], &job] {
        let out = run(args);
        assert_exit(&out, 2);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(
                "the source is a standby (in recovery) of destination 1's cluster and database"
            ) && stderr.contains("would write them a second time"),
            "{args:?}: {stderr}"
        );
    }
    assert_eq!(count(&primary, &db, "t"), 100);
    // Emptied first, the table holds the source's rows once: copied (a prod standby into a
    // promoted clone was refused).
    let out = run(&["table", "t", "--from", &from, "--to", &to, "--truncate"]);
    assert_exit(&out, 0);
    assert_eq!(count(&primary, &db, "t"), 100);
    // Streaming from the destination's server itself, as the standby's WAL receiver says:
    // refused (the rows were copied into their own table a second time, exit 0).
    stream_from(&standby, &primary, &[]);
    let one = ["table", "t", "--from", &from, "--to", &to];
    let job = [&one[..], &["--state", state.arg()]].concat();
    for args in [&one[..], &job] {
        let out = run(args);
        assert_exit(&out, 2);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("the source is a standby that streams from destination 1"),
            "{args:?}: {stderr}"
        );
    }
    assert_eq!(count(&primary, &db, "t"), 100);
    // There, --truncate too: its replay of the TRUNCATE would wait on the source's own read.
    let truncate = ["table", "t", "--from", &from, "--to", &to, "--truncate"];
    assert_exit(&run(&truncate), 2);
    // Into another table of the primary: the replica spares the primary the read.
    let out = run(&[
        "table",
        "t",
        "--from",
        &from,
        "--to",
        &to,
        "--target-table",
        "archive",
    ]);
    assert_exit(&out, 0);
    assert_eq!(count(&primary, &db, "archive"), 100);
    assert_eq!(count(&primary, &db, "t"), 100);
}

/// The same source as a role that may not call `pg_control_system()` (revoked, as some sites
/// harden): told a standby of the destination by the catalog rows a standby shares with its
/// primary, and refused (every row was written a second time, exit 0, in silence; conn37 F13).
#[test]
fn a_standby_source_that_cannot_say_its_system_identifier_is_refused_into_its_own_table() {
    let table = "CREATE TABLE t (id int);";
    let primary = Cluster::start();
    let db = database(
        &primary,
        &format!("{table} INSERT INTO t SELECT generate_series(1, 100);"),
    );
    let role = format!("plain_{db}");
    primary
        .connect(&db)
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN; GRANT SELECT, INSERT ON t TO {role};
             REVOKE EXECUTE ON FUNCTION pg_control_system() FROM PUBLIC;"
        ))
        .unwrap();
    let standby = primary.clone_as_standby();
    let as_role = |conninfo: String| conninfo.replace("user=postgres", &format!("user={role}"));
    let (from, to) = (
        as_role(standby.conninfo(&db)),
        as_role(primary.conninfo(&db)),
    );
    let out = run(&["table", "t", "--from", &from, "--to", &to]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("the source is a standby (in recovery) of destination 1"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&primary, &db, "t"), 100);
}

/// A source on a hot standby whose read a replayed change of its primary cancels (here a lock
/// taken there; in the wild a VACUUM's cleanup, or copyman's own `--truncate` of a destination
/// that feeds the standby) fails with the server's "conflict with recovery" (40001) and what it
/// means, with the ways out: the server's words alone named no cause a DBA could act on.
#[test]
fn a_standby_sources_recovery_conflict_is_said_with_its_way_out() {
    let c = clusters();
    let table = "CREATE TABLE t (id int PRIMARY KEY);";
    let primary = Cluster::start();
    let db = database(
        &primary,
        &format!("{table} INSERT INTO t SELECT generate_series(1, 10);"),
    );
    let standby = primary.clone_as_standby();
    // Streaming from the primary, and replayed changes cancel a conflicting read at once.
    stream_from(&standby, &primary, &["max_standby_streaming_delay = 0"]);
    let d1 = database(&c.dest[0], "CREATE TABLE t (id int PRIMARY KEY, s text);");
    let child = copyman()
        .args(["copy", "--from", &standby.conninfo(&db)])
        .args([
            "--send",
            "COPY (SELECT id, CASE WHEN id = 1 THEN pg_sleep(30)::text END FROM t) TO STDOUT",
            "--to",
            &c.dest[0].conninfo(&d1),
            "--receive",
            "COPY t (id, s) FROM STDIN",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_query(&standby, &db, "%pg_sleep(30)%");
    primary
        .connect(&db)
        .batch_execute("BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE; COMMIT;")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("SQLSTATE 40001")
            && stderr.contains("conflict with recovery")
            && stderr.contains("the source is a hot standby")
            && stderr.contains("max_standby_streaming_delay"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &d1, "t"), 0);
}

/// Makes `standby` stream from `primary` (its `primary_conninfo`), with `settings` (`name =
/// value`, by ALTER SYSTEM), and waits until its WAL receiver streams.
fn stream_from(standby: &Cluster, primary: &Cluster, settings: &[&str]) {
    let mut admin = standby.connect("postgres");
    admin
        .batch_execute(&format!(
            "ALTER SYSTEM SET primary_conninfo = 'host={} port={} user={}'",
            primary.socket_dir().display(),
            primary.port(),
            primary.user()
        ))
        .unwrap();
    for setting in settings {
        admin
            .batch_execute(&format!("ALTER SYSTEM SET {setting}"))
            .unwrap();
    }
    admin.batch_execute("SELECT pg_reload_conf()").unwrap();
    let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while admin
        .query(
            "SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming'",
            &[],
        )
        .unwrap()
        .is_empty()
    {
        assert!(
            std::time::Instant::now() < until,
            "the standby does not stream"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// One database of `cluster` as `role`, given twice: over TCP and over its Unix socket.
fn tcp_and_socket(cluster: &Cluster, role: &str, db: &str) -> (String, String) {
    let port = cluster.port();
    (
        format!("host=127.0.0.1 port={port} user={role} dbname={db}"),
        format!(
            "host={} port={port} user={role} dbname={db}",
            cluster.socket_dir().display()
        ),
    )
}

/// The same, where the advisory lock functions are revoked too: told by each session seen in
/// the other's `pg_stat_activity`, and refused (dups49 F4: every row stored twice, exit 0,
/// after a warning that promised an advisory lock's check).
#[test]
fn a_database_given_twice_told_by_its_sessions_where_advisory_locks_are_revoked() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 10);",
    );
    let d = database(&c.dest[0], "CREATE TABLE t (id int);");
    let role = format!("locked_{d}");
    let other_role = format!("other_{d}");
    c.dest[0]
        .connect(&d)
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN; GRANT SELECT, INSERT ON t TO {role};
             CREATE ROLE {other_role} LOGIN; GRANT SELECT, INSERT ON t TO {other_role};
             REVOKE EXECUTE ON FUNCTION pg_control_system() FROM PUBLIC;
             REVOKE EXECUTE ON FUNCTION pg_postmaster_start_time() FROM PUBLIC;
             REVOKE EXECUTE ON FUNCTION pg_try_advisory_lock(bigint) FROM PUBLIC;
             REVOKE EXECUTE ON FUNCTION pg_advisory_unlock(bigint) FROM PUBLIC;"
        ))
        .unwrap();
    let (over_tcp, over_socket) = tcp_and_socket(&c.dest[0], &role, &d);
    let from = c.source.conninfo(&src);
    let out = run(&[
        "table",
        "t",
        "--from",
        &from,
        "--to",
        &over_tcp,
        "--to",
        &over_socket,
    ]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("are the same database (their servers cannot say who they are"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &d, "t"), 0);
    // Two roles, each blind to the other session's start (recheck49 F3: "cannot tell", every
    // row twice, exit 0).
    let (_, as_other) = tcp_and_socket(&c.dest[0], &other_role, &d);
    let out = run(&[
        "table", "t", "--from", &from, "--to", &over_tcp, "--to", &as_other,
    ]);
    assert_exit(&out, 2);
    assert_eq!(count(&c.dest[0], &d, "t"), 0);
    // Two databases of that server stay two.
    let other = database(&c.dest[0], "CREATE TABLE t (id int);");
    let out = run(&[
        "table",
        "t",
        "--from",
        &from,
        "--to",
        &over_tcp,
        "--to",
        &c.dest[0].conninfo(&other),
    ]);
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[0], &d, "t"), 10);
    assert_eq!(count(&c.dest[0], &other, "t"), 10);
}

/// A database given twice where its server cannot say who it is (`pg_control_system()` and
/// `pg_postmaster_start_time()` revoked, as some sites harden, for an ordinary role): told by an
/// advisory lock and refused, one table and a job alike, and a table into itself (every row was
/// stored twice, exit 0, after a warning). Another database of that server is copied.
#[test]
fn a_database_given_twice_whose_server_cannot_say_who_it_is_is_refused() {
    let c = clusters();
    let table = "CREATE TABLE t (id int); CREATE TABLE u (id int);";
    let src = database(
        &c.source,
        &format!("{table} INSERT INTO t SELECT generate_series(1, 10);"),
    );
    let hardened = |db: &str| {
        let role = format!("plain_{db}");
        c.dest[0]
            .connect(db)
            .batch_execute(&format!(
                "CREATE ROLE {role} LOGIN; GRANT SELECT, INSERT ON t, u TO {role};
                 REVOKE EXECUTE ON FUNCTION pg_control_system() FROM PUBLIC;
                 REVOKE EXECUTE ON FUNCTION pg_postmaster_start_time() FROM PUBLIC;"
            ))
            .unwrap();
        role
    };
    let d = database(&c.dest[0], &format!("{table} INSERT INTO t VALUES (0);"));
    let role = hardened(&d);
    let (over_tcp, over_socket) = tcp_and_socket(&c.dest[0], &role, &d);
    let from = c.source.conninfo(&src);
    let out = run(&[
        "table",
        "t",
        "--from",
        &from,
        "--to",
        &over_tcp,
        "--to",
        &over_socket,
    ]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("are the same database (their servers cannot say who they are"),
        "{}",
        text(&out.stderr)
    );
    // A table into itself.
    let out = run(&["table", "t", "--from", &over_tcp, "--to", &over_socket]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("is the source's own database"),
        "{}",
        text(&out.stderr)
    );
    // A view into the table it reads, as an identified server's is (dupes47 F7: every row
    // twice, exit 0).
    c.dest[0]
        .connect(&d)
        .batch_execute(&format!(
            "CREATE VIEW tv AS SELECT * FROM t; GRANT SELECT ON tv TO {role};"
        ))
        .unwrap();
    let out = run(&[
        "table",
        "tv",
        "--from",
        &over_tcp,
        "--to",
        &over_socket,
        "--target-table",
        "t",
    ]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("its table holds rows the source reads"),
        "{}",
        text(&out.stderr)
    );
    // A job.
    let state = TempPath::new("unidentified-twice.state");
    let out = run(&[
        "table",
        "t",
        "u",
        "--from",
        &from,
        "--to",
        &over_tcp,
        "--to",
        &over_socket,
        "--state",
        state.arg(),
    ]);
    assert_exit(&out, 2);
    assert_eq!(count(&c.dest[0], &d, "t"), 1, "nothing copied");
    // Another database of that server, hardened as well: copied.
    let other = database(&c.dest[0], table);
    let other_role = hardened(&other);
    let to_other = format!(
        "host=127.0.0.1 port={} user={other_role} dbname={other}",
        c.dest[0].port()
    );
    let out = run(&[
        "table", "t", "--from", &from, "--to", &over_tcp, "--to", &to_other,
    ]);
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[0], &other, "t"), 10);
}

/// Where only `pg_control_system()` is revoked, the running server is told by its start time
/// and port, written the same by sessions of any `TimeZone` (as text in each session's zone, one
/// server reached from two zones was taken for two: every row stored twice, exit 0).
#[test]
fn a_server_told_by_its_start_time_is_one_server_from_any_time_zone() {
    let c = clusters();
    let table = "CREATE TABLE t (id int);";
    let src = database(
        &c.source,
        &format!("{table} INSERT INTO t SELECT generate_series(1, 10);"),
    );
    let d = database(&c.dest[0], table);
    let role = format!("zoned_{d}");
    c.dest[0]
        .connect(&d)
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN; GRANT SELECT, INSERT ON t TO {role};
             REVOKE EXECUTE ON FUNCTION pg_control_system() FROM PUBLIC;"
        ))
        .unwrap();
    let zoned = |host: &str, zone: &str| {
        format!(
            "host={host} port={} user={role} dbname={d} options='-c TimeZone={zone}'",
            c.dest[0].port()
        )
    };
    let socket = c.dest[0].socket_dir().display().to_string();
    let out = run(&[
        "table",
        "t",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &zoned("127.0.0.1", "UTC"),
        "--to",
        &zoned(&socket, "Asia/Tokyo"),
    ]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("are the same database"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &d, "t"), 0);
}

/// A destination that crashed before a table's announced COMMIT became durable forgets the
/// transaction: its id is past the server's next one, and its rows are gone. A resume took that
/// for "a restore of an older copy" and refused an append job (only --truncate or --verify went
/// on, jobs41 F1): an id in the future never committed there, so the table is copied again; a
/// restore is told by the commits the job saw acknowledged. And once the server has given that
/// id to a transaction of its own that committed, `txid_status()` says "committed": the table
/// was taken as done with none of its rows there, where the table holds rows of its own (exit
/// 0, a silent loss; an empty one is copied again, as a clone's). Its rows are looked for
/// (`xmin`): none there, its fate cannot be told — refused, and copied again under --truncate.
#[test]
fn a_commit_a_destination_crash_forgot_is_neither_a_restore_nor_taken_as_done() {
    let c = clusters();
    let tables = "CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY);";
    let src = database(
        &c.source,
        &format!(
            "{tables} INSERT INTO a SELECT generate_series(1, 1000);
             INSERT INTO b SELECT generate_series(1, 1000);"
        ),
    );
    let dst = database(&c.dest[0], tables);
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
    let state = TempPath::new("forgotten.state");
    let job = |extra: &[&str]| {
        let mut args = vec!["table", "a", "b", "--from", &from, "--to", &to, "--state"];
        args.push(state.arg());
        args.extend(extra);
        run(&args)
    };
    // The state file as the crash leaves it: b's `commit` line with the id `xid`, no `done`.
    let forget = |xid: u64| {
        let text = std::fs::read_to_string(&state.0).unwrap();
        let b = r#""public"."b""#;
        let kept: Vec<String> = text
            .lines()
            .filter(|line| !line.starts_with(&format!("done\t{b}\t")))
            .map(|line| {
                let fields: Vec<&str> = line.split('\t').collect();
                match fields.as_slice() {
                    ["commit", table, dest, rows, _] if *table == b => {
                        format!("commit\t{table}\t{dest}\t{rows}\t{xid}")
                    }
                    _ => line.to_owned(),
                }
            })
            .collect();
        std::fs::write(&state.0, kept.join("\n") + "\n").unwrap();
    };
    // The rows the crash lost gone; the destination's own row stays: the table is not empty.
    let crash = || {
        let own = "DELETE FROM b; INSERT INTO b VALUES (5001)";
        c.dest[0].connect(&dst).batch_execute(own).unwrap();
    };
    let txid = || -> u64 {
        let row = c.dest[0]
            .connect(&dst)
            .query_one("SELECT txid_current()::text", &[])
            .unwrap();
        row.get::<_, String>(0).parse().unwrap()
    };
    assert_exit(&job(&[]), 0);
    // Forgotten by a crash: past the server's next id.
    crash();
    forget(txid() + 1000);
    let out = job(&["--resume"]);
    assert_exit(&out, 0);
    assert!(
        !text(&out.stderr).contains("restore"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &dst, "b"), 1001);
    assert_eq!(count(&c.dest[0], &dst, "a"), 1000);
    // Its id given since to a transaction of the server's own, which committed.
    crash();
    forget(txid());
    let out = job(&["--resume"]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("but the table holds 0 rows it wrote where the run's wrote 1000")
            && stderr.contains("--truncate"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &dst, "b"), 1, "not taken as done");
    let out = job(&["--resume", "--truncate"]);
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[0], &dst, "b"), 1000);
    // Given to a transaction of its own that wrote into this very table: its one row is not
    // the 1000 the run's would have written (it was taken as done, recheck41 F1).
    crash();
    let mut app = c.dest[0].connect(&dst);
    app.batch_execute("BEGIN; INSERT INTO b VALUES (7000)")
        .unwrap();
    let xid: String = app
        .query_one("SELECT txid_current()::text", &[])
        .unwrap()
        .get(0);
    app.batch_execute("COMMIT").unwrap();
    forget(xid.parse().unwrap());
    let out = job(&["--resume"]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("but the table holds 1 rows it wrote where the run's wrote 1000"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &dst, "b"), 2, "not taken as done");
    // One that inserted more rows than the run's into it: another count too (recheck41b F6).
    crash();
    let mut app = c.dest[0].connect(&dst);
    app.batch_execute("BEGIN; INSERT INTO b SELECT generate_series(10001, 11200)")
        .unwrap();
    let xid: String = app
        .query_one("SELECT txid_current()::text", &[])
        .unwrap()
        .get(0);
    app.batch_execute("COMMIT").unwrap();
    forget(xid.parse().unwrap());
    let out = job(&["--resume"]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr)
            .contains("but the table holds 1200 rows it wrote where the run's wrote 1000"),
        "{}",
        text(&out.stderr)
    );
}

/// Every `target_session_attrs` of libpq is honoured over a host list (conn44 F1: `primary`,
/// `standby` and `prefer-standby` were refused): `prefer-standby` reads a source from its
/// standby where one answers and from the primary where none does, `standby` and `primary` leave
/// a server of the other kind for the next host, alone said in libpq's words (exit 3), and a
/// job's every session goes to the server its first one found. The standby is a copy of the
/// primary that does not stream: the rows the primary took since tell which one was read.
#[test]
fn target_session_attrs_primary_standby_and_prefer_standby_find_their_server() {
    let c = clusters();
    let table = "CREATE TABLE t (id int PRIMARY KEY); CREATE TABLE u (id int);";
    let primary = Cluster::start();
    let fill = |from, to| {
        format!(
            "INSERT INTO t SELECT generate_series({from}, {to}); INSERT INTO u SELECT * FROM t WHERE id >= {from};"
        )
    };
    let db = database(&primary, &format!("{table} {}", fill(1, 100)));
    let standby = primary.clone_as_standby();
    primary.connect(&db).batch_execute(&fill(101, 150)).unwrap();
    let d1 = database(&c.dest[0], table);
    let to = c.dest[0].conninfo(&d1);
    let from = |ports: &[&Cluster], attrs: &str| {
        let ports: Vec<String> = ports.iter().map(|c| c.port().to_string()).collect();
        let hosts = vec!["127.0.0.1"; ports.len()].join(",");
        format!(
            "host={hosts} port={} user=postgres password={} dbname={db} \
             target_session_attrs={attrs}",
            ports.join(","),
            primary.password()
        )
    };
    let copy = |from: &str, extra: &[&str]| {
        let mut args = vec!["table", "t", "--from", from, "--to", &to, "--truncate"];
        args.extend_from_slice(extra);
        run(&args)
    };
    let cases: [(&[&Cluster], &str, i64); 6] = [
        (&[&primary, &standby], "prefer-standby", 100),
        (&[&primary, &primary], "prefer-standby", 150),
        (&[&standby, &primary], "primary", 150),
        (&[&primary, &standby], "standby", 100),
        (&[&primary, &standby], "read-only", 100),
        (&[&standby, &primary], "any", 100),
    ];
    for (hosts, attrs, rows) in cases {
        let out = copy(&from(hosts, attrs), &[]);
        assert_exit(&out, 0);
        assert_eq!(
            count(&c.dest[0], &d1, "t"),
            rows,
            "{attrs}: {}",
            text(&out.stderr)
        );
    }
    // A job's workers (two tables' sessions) go where the first session went: the standby,
    // or the primary where no host is one, every session there as any (recheck46 F1: the
    // job's later sessions tried nothing, "all 0 connection attempts failed").
    for (hosts, rows) in [(&[&primary, &standby], 100), (&[&primary, &primary], 150)] {
        let list = from(hosts, "prefer-standby");
        let job = ["table", "-t", "t", "-t", "u", "--jobs", "2", "--truncate"];
        let out = run(&[&job[..], &["--from", &list, "--to", &to]].concat());
        assert_exit(&out, 0);
        for table in ["t", "u"] {
            let held = count(&c.dest[0], &d1, table);
            assert_eq!(held, rows, "{table}: {}", text(&out.stderr));
        }
    }
    // Alone, a server of the other kind is said as libpq says it.
    for (hosts, attrs, words) in [
        (
            &[&primary][..],
            "standby",
            "server is not in hot standby mode",
        ),
        (&[&standby][..], "primary", "server is in hot standby mode"),
    ] {
        let out = copy(&from(hosts, attrs), &[]);
        assert_exit(&out, 3);
        assert!(text(&out.stderr).contains(words), "{}", text(&out.stderr));
    }
    // From the environment too (for every CONN that says none, as libpq): a destination that
    // is no standby is refused, said to be asked so by the variable (recheck46 F6).
    let out = copyman()
        .env("PGTARGETSESSIONATTRS", "standby")
        .args(["table", "t", "--truncate", "--to", &to, "--from"])
        .arg(from(&[&standby], "standby"))
        .output()
        .unwrap();
    assert_exit(&out, 3);
    assert!(
        text(&out.stderr).contains("target_session_attrs=standby comes from PGTARGETSESSIONATTRS"),
        "{}",
        text(&out.stderr)
    );
    let out = copyman()
        .env("PGTARGETSESSIONATTRS", "standby")
        .args(["table", "t", "--truncate", "--to"])
        .arg(format!("{to} target_session_attrs=any"))
        .arg("--from")
        .arg(from(&[&primary, &standby], "any").replace(" target_session_attrs=any", ""))
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[0], &d1, "t"), 100, "{}", text(&out.stderr));
}

/// A crash of a destination right after a run in which one table's attempt failed there: the
/// crash may forget that attempt's transaction id and give it to an application's row in an
/// UNLOGGED table it emptied. That row is not taken for the failed table's copy, and the table
/// not refused as "renamed or swapped" with it (recheck53c F5): it is copied again (emptied
/// first by the resume's `--truncate`, which the failed table's unknowable attempt needs). (The id's reuse is made certain here by writing the row's id into the state file as the
/// attempt's.)
#[test]
fn a_forgotten_attempts_id_reused_after_a_crash_is_not_taken_for_its_copy() {
    let schema = "CREATE UNLOGGED TABLE cache (id int); CREATE TABLE mid (id int);
                  CREATE TABLE tail (id int);";
    let d = OwnDestination::new(
        "forgotten-id",
        &format!(
            "{schema} INSERT INTO cache SELECT generate_series(1, 100);
             INSERT INTO mid SELECT generate_series(1, 10); INSERT INTO tail VALUES (-1);"
        ),
        &schema.replace("tail (id int)", "tail (id int CHECK (id > 0))"),
    );
    assert_exit(&d.job(&["--keep-going"]), 4);
    d.dest.stop_immediate();
    d.dest.start_again();
    d.execute("INSERT INTO cache VALUES (0); ALTER TABLE tail DROP CONSTRAINT tail_id_check;");
    d.forge("transaction", "tail", &d.xmin("cache"));
    // (`--truncate`: whether the failed attempt committed cannot be told, its id forgotten.)
    let out = d.job(&["--resume", "--truncate"]);
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    assert!(
        !stderr.contains("swapped") && stderr.contains("and crash recovery of its server since"),
        "{stderr}"
    );
    assert_eq!(
        d.count("cache"),
        100,
        "emptied and copied again: --truncate"
    );
    assert_eq!(d.count("mid"), 10);
    assert_eq!(d.count("tail"), 1);
}

/// UNLOGGED tables an application wrote after a crash of their destination are copied again
/// beside those rows: one refilled with as many rows as the job copied (taken as "every row
/// rewritten", recheck54 F1), one given a row in a transaction that got the copy's own id again
/// (a transaction that wrote only UNLOGGED tables commits without waiting for its WAL: a crash
/// forgets its id; taken as holding its copy's rows, F6) — each done, exit 0, none of the
/// source's rows there. (The id's reuse is made certain by writing the application's id into
/// the state file as the copy's.)
#[test]
fn unlogged_tables_written_after_a_crash_are_copied_again_whatever_their_rows_ids() {
    let schema = "CREATE UNLOGGED TABLE cache (id int); CREATE UNLOGGED TABLE buf (id int);
                  CREATE TABLE tail (id int);";
    let d = OwnDestination::new(
        "unlogged-refilled",
        &format!(
            "{schema} INSERT INTO cache SELECT generate_series(1, 100);
             INSERT INTO buf SELECT generate_series(1, 50); INSERT INTO tail VALUES (1);"
        ),
        schema,
    );
    assert_exit(&d.job(&[]), 0);
    d.dest.stop_immediate();
    d.dest.start_again();
    d.execute(
        "INSERT INTO cache SELECT -g FROM generate_series(1, 100) g; INSERT INTO buf VALUES (-1);",
    );
    d.forge("commit", "buf", &d.xmin("buf"));
    let out = d.job(&["--resume"]);
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("and crash recovery of its server since")
            && stderr.contains("copied again beside the 100 rows written there since")
            && stderr.contains("copied again beside the 1 row written there since"),
        "{stderr}"
    );
    assert_eq!(
        (d.count("cache"), d.count("buf"), d.count("tail")),
        (200, 51, 1)
    );
    // Recorded done again: the next resume copies nothing.
    assert_exit(&d.job(&["--resume"]), 0);
    assert_eq!((d.count("cache"), d.count("buf")), (200, 51));
}

/// An UNLOGGED table whose statistics read as reset by a crash recovery since its copy, yet
/// holding every row of its copy's transactions — its copy kept (statistics reset by hand, in
/// one statement, stamp both kinds alike), or an application's as many rows given the crash's
/// forgotten id — is refused, and compared under `--verify` (it was copied again beside its own
/// rows, doubled, exit 0: recheck54c F1). (The reset is made to read so by writing an earlier
/// one into the state file.)
#[test]
fn an_unlogged_table_holding_its_copys_rows_after_a_reset_is_compared() {
    let schema = "CREATE UNLOGGED TABLE cache (id int); CREATE TABLE tail (id int);";
    let d = OwnDestination::new(
        "unlogged-kept",
        &format!(
            "{schema} INSERT INTO cache SELECT generate_series(1, 100);
             INSERT INTO tail VALUES (1);"
        ),
        schema,
    );
    assert_exit(&d.job(&[]), 0);
    // Each `position` line's reset a moment earlier: the server's reads as one since.
    let earlier = d.rewrite(|fields| {
        (fields[0] == "position" && fields.len() == 6).then(|| {
            let reset: i64 = fields[5].parse().unwrap();
            format!("{}\t{}", fields[..5].join("\t"), reset - 1)
        })
    });
    assert!(earlier > 0, "no reset recorded");
    let out = d.job(&["--resume"]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("resume with --verify to compare it with the source"),
        "{}",
        text(&out.stderr)
    );
    let out = d.job(&["--resume", "--verify"]);
    assert_exit(&out, 0);
    assert_eq!(d.count("cache"), 100, "{}", text(&out.stderr));
}

/// A backend of a destination killed after a run (the OOM killer's way): the postmaster runs
/// crash recovery without starting anew, and may forget a failed attempt's transaction id and
/// give it to an application's row in that table. The resume no longer takes that row's commit
/// for the attempt's: whether it committed cannot be told, said (recheck54 F4: "an earlier run
/// committed it … the server confirms its transaction", done, exit 0, none of the source's
/// rows there). (The id's reuse is made certain by writing it into the state file.)
#[test]
fn a_failed_attempts_id_after_a_killed_backend_is_not_taken_for_its_commit() {
    let schema = "CREATE TABLE a (id int); CREATE TABLE c (id int);";
    let d = OwnDestination::new(
        "killed-backend",
        &format!(
            "{schema} INSERT INTO a SELECT generate_series(1, 100);
             INSERT INTO c SELECT -g FROM generate_series(1, 30) g;"
        ),
        &schema.replace("c (id int)", "c (id int CHECK (id > 0))"),
    );
    assert_exit(&d.job(&["--keep-going"]), 4);
    d.dest.crash_a_backend();
    d.execute("ALTER TABLE c DROP CONSTRAINT c_id_check; INSERT INTO c VALUES (-1);");
    d.forge("transaction", "c", &d.xmin("c"));
    let out = d.job(&["--resume"]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("cannot be told") && !stderr.contains("the server confirms"),
        "{stderr}"
    );
    assert_eq!(d.count("c"), 1);
    assert_eq!(d.count("a"), 100);
}

/// UNLOGGED tables whose rows are all there are taken as done however the destination's
/// statistics read: after a crash recovery before the job, by a state file an older copyman
/// wrote (no statistics reset recorded: recheck54b F1), and after both the bgwriter's and the
/// archiver's statistics were reset by hand since the job (recheck54b F2) — each was copied
/// again beside its own rows, doubled, exit 0.
#[test]
fn unlogged_tables_holding_their_rows_are_done_whatever_the_statistics_say() {
    let schema = "CREATE UNLOGGED TABLE cache (id int); CREATE TABLE tail (id int);";
    let d = OwnDestination::new(
        "unlogged-intact",
        &format!(
            "{schema} INSERT INTO cache SELECT generate_series(1, 100);
             INSERT INTO tail VALUES (1);"
        ),
        schema,
    );
    // (The tables made durable first: the test clusters commit without waiting for the WAL.)
    d.execute("CHECKPOINT");
    d.dest.crash_a_backend();
    assert_exit(&d.job(&[]), 0);
    // As an older copyman wrote it: its `position` lines without the statistics' reset.
    let older = d.rewrite(|fields| {
        (fields[0] == "position" && fields.len() == 6).then(|| fields[..5].join("\t"))
    });
    assert!(older > 0, "no reset recorded");
    let out = d.job(&["--resume"]);
    assert_exit(&out, 0);
    assert!(
        !text(&out.stderr).contains("crash"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(d.count("cache"), 100);
    // A job of the new copyman, the statistics reset by hand since, one kind after the other.
    // (Every table emptied is said: --schema.)
    std::fs::remove_file(d.state.arg()).unwrap();
    assert_exit(&d.job(&["--truncate", "--schema", "public"]), 0);
    d.execute(
        "SELECT pg_stat_reset_shared('bgwriter'); SELECT pg_sleep(0.01);
         SELECT pg_stat_reset_shared('archiver');",
    );
    let out = d.job(&["--resume", "--schema", "public"]);
    assert_exit(&out, 0);
    assert!(
        !text(&out.stderr).contains("crash"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(d.count("cache"), 100);
}

/// A partitioned table with an UNLOGGED partition and a logged one, after a crash recovery of
/// the destination: the logged partition keeps its rows, the UNLOGGED one lost them, and a
/// plain resume refuses it (it was taken as done, half its rows gone, exit 0: recheck54b F3);
/// a resume with `--truncate` empties it and copies it again.
#[test]
fn a_table_with_an_unlogged_partition_emptied_by_a_crash_is_refused_or_replaced() {
    let schema = "CREATE TABLE m (id int) PARTITION BY RANGE (id);
                  CREATE TABLE m1 PARTITION OF m FOR VALUES FROM (0) TO (50);
                  CREATE TABLE m2 PARTITION OF m FOR VALUES FROM (50) TO (1000);
                  CREATE TABLE tail (id int);";
    let d = OwnDestination::new(
        "unlogged-partition",
        &format!(
            "{schema} INSERT INTO m SELECT generate_series(1, 100);
             INSERT INTO tail VALUES (1);"
        ),
        &schema.replace("CREATE TABLE m1", "CREATE UNLOGGED TABLE m1"),
    );
    assert_exit(&d.job(&["-t", "m", "-t", "tail"]), 0);
    d.dest.crash_a_backend();
    assert_eq!(d.count("m"), 51, "m1's 49 rows emptied");
    let out = d.job(&["-t", "m", "-t", "tail", "--resume"]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("has UNLOGGED partitions there"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(d.count("m"), 51);
    let out = d.job(&["-t", "m", "-t", "tail", "--resume", "--truncate"]);
    assert_exit(&out, 0);
    assert_eq!(d.count("m"), 100, "{}", text(&out.stderr));
}

/// A job that left a table out on a destination (missing there), then a backend of that
/// destination killed: its UNLOGGED table done there, the newest done, was emptied by the
/// crash recovery. The plain resume copies it again, and the table left out: it was refused as
/// "not where the earlier run left it" (recheck54b F4).
#[test]
fn a_resume_after_a_killed_backend_copies_the_emptied_unlogged_table_again() {
    let schema = "CREATE UNLOGGED TABLE cache (id int); CREATE TABLE later (id int);";
    let d = OwnDestination::new(
        "killed-unlogged",
        &format!(
            "{schema} INSERT INTO cache SELECT generate_series(1, 100);
             INSERT INTO later VALUES (1);"
        ),
        "CREATE UNLOGGED TABLE cache (id int);",
    );
    assert_exit(&d.job(&["--keep-going"]), 4);
    d.dest.crash_a_backend();
    d.execute("CREATE TABLE later (id int)");
    let out = d.job(&["--resume"]);
    assert_exit(&out, 0);
    assert!(
        text(&out.stderr).contains("and crash recovery of its server since"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!((d.count("cache"), d.count("later")), (100, 1));
}

/// `copyman recover` after an `--atomic` run to a destination and its clone (one system
/// identifier and database, as the run's decision log records each party): given the two, it
/// finishes each (it refused them as one database given twice); given one, it says the
/// other's transaction may be prepared on the clone, exit 1 — never "prepared there no more"
/// nor "nothing pending" (types62 F1: decided or not, the clone's transaction stayed prepared
/// with its locks, exit 0 when undecided).
#[test]
fn recover_tells_a_destination_from_its_clone() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 7);",
    );
    // (ALTER SYSTEM: the clone keeps what its data directory says.)
    let original = Cluster::builder()
        .setting("max_prepared_transactions", "4")
        .start();
    original.psql("postgres", "ALTER SYSTEM SET max_prepared_transactions = 4");
    let db = database(&original, "CREATE TABLE t (id int PRIMARY KEY);");
    let clone = original.clone_data();
    let (from, to1, to2) = (
        c.source.conninfo(&src),
        original.conninfo(&db),
        clone.conninfo(&db),
    );
    for (point, decided) in [("prepared:2", false), ("recorded", true)] {
        let log = TempPath::new("clones.decisions");
        let copy = [
            "table",
            "t",
            "--from",
            &from,
            "--to",
            &to1,
            "--to",
            &to2,
            "--truncate",
            "--atomic",
            "--decision-log",
            log.arg(),
        ];
        Paused::start(&copy, point).kill();
        assert_eq!(prepared_xacts(&original).len(), 1, "{point}");
        assert_eq!(prepared_xacts(&clone).len(), 1, "{point}");
        let recover = |to: &[&str], dry: bool| {
            let mut args = vec!["recover"];
            for to in to {
                args.extend(["--to", to]);
            }
            args.extend(["--decision-log", log.arg()]);
            if dry {
                args.push("--dry-run");
            }
            run(&args)
        };
        // The original alone: its own finished, the clone's said, exit 1 (every time).
        for dry in [false, true] {
            let out = recover(&[&to1], dry);
            assert_exit(&out, 1);
            let said = text(&out.stderr);
            assert!(
                said.contains(":2 (the run's destination 2 ")
                    && said.contains("its run copied to clones of one server")
                    && said.contains("give its CONN too")
                    && !said.contains("prepared there no more"),
                "{point}: {said}"
            );
        }
        assert!(prepared_xacts(&original).is_empty(), "{point}");
        assert_eq!(prepared_xacts(&clone).len(), 1, "{point}");
        // Both, as the run said to give them: each finished, as the run decided.
        let out = recover(&[&to1, &to2], false);
        assert_exit(&out, 0);
        assert!(prepared_xacts(&clone).is_empty(), "{point}");
        let rows = if decided { 7 } else { 0 };
        assert_eq!(count(&original, &db, "t"), rows, "{point}");
        assert_eq!(count(&clone, &db, "t"), rows, "{point}");
        assert_exit(&recover(&[&to1, &to2], false), 0);
    }
}

/// `copyman recover` given only a copy of a run's destination made after the run died (a
/// clone, a restored backup: its identity, its data kept elsewhere): it finishes what the copy
/// holds and says the run's own server may still hold the transaction, exit 1, the run not
/// taken as done (recheck63 F4: "committed", exit 0, while the origin held it with its locks);
/// given the origin then, it finishes it there.
#[test]
fn recover_given_only_a_copy_made_after_the_run_says_the_origin_may_hold_it() {
    let c = clusters();
    let src = database(
        &c.source,
        "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 5);",
    );
    let original = Cluster::builder()
        .setting("max_prepared_transactions", "4")
        .start();
    original.psql("postgres", "ALTER SYSTEM SET max_prepared_transactions = 4");
    let db = database(&original, "CREATE TABLE t (id int PRIMARY KEY);");
    let log = TempPath::new("copy-after.decisions");
    let (from, to) = (c.source.conninfo(&src), original.conninfo(&db));
    let copy = [
        "table",
        "t",
        "--from",
        &from,
        "--to",
        &to,
        "--atomic",
        "--decision-log",
        log.arg(),
    ];
    Paused::start(&copy, "recorded").kill();
    let copied = original.clone_data();
    assert_eq!(prepared_xacts(&copied).len(), 1);
    let recover = |to: &str| run(&["recover", "--to", to, "--decision-log", log.arg()]);
    let out = recover(&copied.conninfo(&db));
    assert_exit(&out, 1);
    let said = text(&out.stderr);
    assert!(
        said.contains("are copies of it (their data directory ")
            && said.contains("the run's own server may still hold it prepared")
            && said.contains("give its CONN too"),
        "{said}"
    );
    assert!(prepared_xacts(&copied).is_empty());
    assert_eq!(prepared_xacts(&original).len(), 1);
    assert_exit(&recover(&to), 0);
    assert!(prepared_xacts(&original).is_empty());
    assert_eq!(count(&original, &db, "t"), 5);
    assert_exit(&recover(&to), 0);
}
