//! A destination's triggers on INSERT are said before anything is copied: what they do to a
//! copied row (an AFTER trigger that moves it elsewhere, a BEFORE trigger that sets a value) is
//! the destination's own, and neither COPY's count nor the run sees it — the copy went through,
//! exit 0, with the rows elsewhere. One table, a job and `copy` mode say it alike; a foreign
//! key's own triggers and a disabled trigger are not said.

use crate::common;

use common::*;

const SOURCE: &str = "CREATE TABLE p (id int PRIMARY KEY);
    INSERT INTO p SELECT generate_series(1, 100);
    CREATE TABLE t (id int PRIMARY KEY REFERENCES p, v text);
    INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 100) AS g;";

/// A destination where every copied row of `t` is moved to `moved` once stored.
const MOVING: &str = "CREATE TABLE p (id int PRIMARY KEY);
    CREATE TABLE t (id int PRIMARY KEY, v text);
    CREATE TABLE moved (id int, v text);
    CREATE FUNCTION move_away() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN INSERT INTO moved VALUES (NEW.id, NEW.v); DELETE FROM t WHERE id = NEW.id;
      RETURN NULL; END $$;
    CREATE TRIGGER move_away AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION move_away();";

/// A destination whose `t` has a foreign key (the server's own triggers) and a disabled trigger.
const PLAIN: &str = "CREATE TABLE p (id int PRIMARY KEY);
    INSERT INTO p SELECT generate_series(1, 100);
    CREATE TABLE t (id int PRIMARY KEY REFERENCES p, v text);
    CREATE FUNCTION nothing() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
    CREATE TRIGGER off BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION nothing();
    ALTER TABLE t DISABLE TRIGGER off;";

#[test]
fn a_destinations_insert_triggers_are_said() {
    let c = clusters();
    let src = database(&c.source, SOURCE);
    let said = "runs INSERT triggers on it (move_away): they run as the rows are copied";
    // One table.
    let (moving, plain) = (database(&c.dest[0], MOVING), database(&c.dest[1], PLAIN));
    let out = run(&[
        "table",
        "t",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&moving),
        "--to",
        &c.dest[1].conninfo(&plain),
    ]);
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    assert!(stderr.contains(said), "{stderr}");
    assert_eq!(
        stderr.matches("runs INSERT triggers").count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains("warning: destination 1 ("), "{stderr}");
    // What a job's other tables may meet is a job's to say.
    assert!(!stderr.contains("the job may have copied"), "{stderr}");
    assert_eq!(count(&c.dest[0], &moving, "t"), 0);
    assert_eq!(count(&c.dest[0], &moving, "moved"), 100);
    assert_eq!(count(&c.dest[1], &plain, "t"), 100);
    // A job: said for its table, and only for it.
    let (moving, plain) = (database(&c.dest[0], MOVING), database(&c.dest[1], PLAIN));
    let out = run(&[
        "table",
        "t",
        "p",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&moving),
        "--to",
        &c.dest[1].conninfo(&plain),
        "--truncate",
    ]);
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    assert_eq!(
        stderr.matches("runs INSERT triggers").count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains(said), "{stderr}");
    assert!(stderr.contains("the job may have copied"), "{stderr}");
    // With the way to keep the source's own triggers from running twice (first47 F1).
    assert!(
        stderr.contains("options='-c session_replication_role=replica' in the destination's CONN"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &moving, "moved"), 100);
    // `copy` mode, the --receive's table.
    let moving = database(&c.dest[0], MOVING);
    let out = run(&[
        "copy",
        "--from",
        &c.source.conninfo(&src),
        "--send",
        "COPY t TO STDOUT",
        "--to",
        &c.dest[0].conninfo(&moving),
        "--receive",
        "COPY t FROM STDIN",
    ]);
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("the --receive's table: destination 1 (") && stderr.contains(said),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &moving, "moved"), 100);
}

/// A destination's own BEFORE INSERT trigger that sets a copied column (wanted there: it
/// stamps the rows) makes `--verify` find the table different on every run: its failure says
/// the triggers ran there and the ways to copy it that verify (without --verify, or without the
/// triggers), rather than only that the checksums differ.
#[test]
fn a_verify_mismatch_where_its_own_triggers_ran_says_so() {
    let c = clusters();
    let src = database(&c.source, SOURCE);
    let stamping = database(
        &c.dest[0],
        "CREATE TABLE p (id int PRIMARY KEY);
         CREATE TABLE t (id int PRIMARY KEY, v text);
         CREATE FUNCTION stamp() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN NEW.v := NEW.v || ' (loaded)'; RETURN NEW; END $$;
         CREATE TRIGGER stamp BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION stamp();",
    );
    let state = TempPath::new("stamp-verify.state");
    let out = run(&[
        "table",
        "t",
        "p",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&stamping),
        "--state",
        state.arg(),
        "--verify",
    ]);
    assert_exit(&out, 4);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("verify: the checksum differs from the source's")
            && stderr.contains("triggers of its own ran there as it was written")
            && stderr.contains("session_replication_role=replica"),
        "{stderr}"
    );
    // The table without triggers is verified: no line of it says the checksums differ.
    assert!(
        !stderr
            .lines()
            .any(|l| l.contains(r#""public"."p""#) && l.contains("checksum differs")),
        "{stderr}"
    );
}

/// A destination table emptied first whose TRUNCATE trigger changes another table (one a job
/// may have copied and checked before it) is said while planning, one table and jobs (nothing
/// was said: half of a verified table went, exit 0).
#[test]
fn truncate_triggers_on_a_destination_table_emptied_first_are_said() {
    let c = clusters();
    const T: &str = "CREATE TABLE t (id int); CREATE TABLE other (id int);";
    let src = database(
        &c.source,
        &format!("{T} INSERT INTO t SELECT generate_series(1, 10);"),
    );
    let dst = database(
        &c.dest[0],
        &format!(
            "{T} CREATE FUNCTION halve() RETURNS trigger LANGUAGE plpgsql AS
               $$ BEGIN DELETE FROM other WHERE id % 2 = 0; RETURN NULL; END $$;
             CREATE TRIGGER halve AFTER TRUNCATE ON t EXECUTE FUNCTION halve();"
        ),
    );
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
    let state = TempPath::new("truncate-triggers.state");
    let said = "TRUNCATE triggers fire on it there (or on its partitions) as --truncate empties \
                it (halve)";
    for args in [
        vec!["table", "t", "--truncate", "--from", &from, "--to", &to],
        vec![
            "table",
            "t",
            "--truncate",
            "--from",
            &from,
            "--to",
            &to,
            "--state",
            state.arg(),
        ],
    ] {
        let out = run(&args);
        assert_exit(&out, 0);
        assert!(text(&out.stderr).contains(said), "{}", text(&out.stderr));
    }
    // Without --truncate nothing fires, and nothing is said.
    let out = run(&["table", "t", "--from", &from, "--to", &to]);
    assert_exit(&out, 0);
    assert!(
        !text(&out.stderr).contains("TRUNCATE triggers"),
        "{}",
        text(&out.stderr)
    );
}

/// A destination trigger of one table of a job that changes another, after that one was
/// copied and verified (an `AFTER INSERT` keeping a total, a `TRUNCATE` trigger that cleans up),
/// is found by `--verify` once the job's writes are over: the table is reported different
/// (recorded `mismatch`, exit 4), not `verified: true` with exit 0 as it was. A CONN that turns
/// the triggers off (`session_replication_role=replica`) is neither warned about nor compared
/// again.
#[test]
fn verify_compares_again_where_a_later_tables_trigger_changed_an_earlier_one() {
    let c = clusters();
    const SCHEMA: &str = "CREATE TABLE orders (id int PRIMARY KEY, total int NOT NULL);
        CREATE TABLE order_items (order_id int REFERENCES orders, qty int);";
    const TOTALS: &str = "CREATE FUNCTION add_total() RETURNS trigger LANGUAGE plpgsql AS $$
          BEGIN UPDATE orders SET total = total + NEW.qty WHERE id = NEW.order_id;
          RETURN NULL; END $$;
        CREATE TRIGGER add_total AFTER INSERT ON order_items FOR EACH ROW
          EXECUTE FUNCTION add_total();";
    // The source's totals are what the items add up to.
    let src = database(
        &c.source,
        &format!(
            "{SCHEMA} INSERT INTO orders SELECT g, g FROM generate_series(1, 100) g;
             INSERT INTO order_items SELECT g, g FROM generate_series(1, 100) g;"
        ),
    );
    let from = c.source.conninfo(&src);
    let total = |db: &str| -> i64 {
        c.dest[0]
            .connect(db)
            .query_one("SELECT sum(total)::int8 FROM orders", &[])
            .unwrap()
            .get(0)
    };
    let dst = database(&c.dest[0], &format!("{SCHEMA}{TOTALS}"));
    let to = c.dest[0].conninfo(&dst);
    let state = TempPath::new("trigger-verify.state");
    let out = run(&[
        "--json",
        "table",
        "orders",
        "order_items",
        "--from",
        &from,
        "--to",
        &to,
        "--verify",
        "--jobs",
        "1",
        "--state",
        state.arg(),
    ]);
    assert_exit(&out, 4);
    assert_eq!(total(&dst), 10100, "the trigger added every qty again");
    let report = json(&out);
    let orders = report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["table"] == r#""public"."orders""#)
        .expect("orders");
    assert_eq!(orders["verified"], false, "{report}");
    let message = orders["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            r#"compared again after the job's last write (triggers of "public"."order_items" ran there): verify: the checksum differs"#
        ) && message.contains("not recorded as done"),
        "{message}"
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("copyman: verify: comparing 2 table(s) on destination 1 (")
            && stderr.contains(r#"again, now that the job's writes are over: triggers of "public"."order_items" ran there"#),
        "{stderr}"
    );
    let recorded = std::fs::read_to_string(state.arg()).unwrap();
    assert!(
        recorded
            .lines()
            .any(|l| l.starts_with("mismatch\t\"public\".\"orders\"")),
        "{recorded}"
    );

    // The triggers turned off by the CONN: nothing said, nothing compared twice, the totals kept.
    let dst = database(&c.dest[0], &format!("{SCHEMA}{TOTALS}"));
    let replica = format!(
        "{} options='-c session_replication_role=replica'",
        c.dest[0].conninfo(&dst)
    );
    let out = run(&[
        "table",
        "orders",
        "order_items",
        "--from",
        &from,
        "--to",
        &replica,
        "--verify",
        "--jobs",
        "1",
    ]);
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    assert!(
        !stderr.contains("INSERT triggers") && !stderr.contains("again"),
        "{stderr}"
    );
    assert_eq!(total(&dst), 5050);

    // A TRUNCATE trigger of a table emptied after a larger one was copied and verified.
    const T: &str = "CREATE TABLE big (id int); CREATE TABLE small (id int);";
    let src = database(
        &c.source,
        &format!(
            "{T} INSERT INTO big SELECT generate_series(1, 5000);
             INSERT INTO small SELECT generate_series(1, 10);"
        ),
    );
    let dst = database(
        &c.dest[0],
        &format!(
            "{T} CREATE FUNCTION halve() RETURNS trigger LANGUAGE plpgsql AS
               $$ BEGIN DELETE FROM big WHERE id % 2 = 0; RETURN NULL; END $$;
             CREATE TRIGGER halve AFTER TRUNCATE ON small EXECUTE FUNCTION halve();"
        ),
    );
    let out = run(&[
        "--json",
        "table",
        "big",
        "small",
        "--truncate",
        "--verify",
        "--jobs",
        "1",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&dst),
    ]);
    assert_exit(&out, 4);
    assert_eq!(count(&c.dest[0], &dst, "big"), 2500);
    let report = json(&out);
    let big = record(&report, r#""public"."big""#);
    assert_eq!(big["verified"], false, "{report}");
    assert!(
        big["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--resume empties the table there and copies it again"),
        "{report}"
    );
}

/// A resume whose tables' triggers write into a table an earlier run did and verified compares
/// that one again too (first47 F6: "2 verified (row count and checksum as the source's)", exit
/// 0, with twice the source's rows there).
#[test]
fn a_resumes_triggers_writing_into_a_table_done_earlier_are_verified_after() {
    let c = clusters();
    const SCHEMA: &str = "CREATE TABLE log (id bigserial PRIMARY KEY, what text);
        CREATE TABLE inv (id int PRIMARY KEY, n int);
        CREATE FUNCTION trg() RETURNS trigger LANGUAGE plpgsql AS
          $$ BEGIN INSERT INTO log (what) VALUES ('inv ' || NEW.id); RETURN NEW; END $$;
        CREATE TRIGGER inv_log AFTER INSERT ON inv FOR EACH ROW EXECUTE FUNCTION trg();";
    let src = database(
        &c.source,
        &format!("{SCHEMA} INSERT INTO inv SELECT g, g FROM generate_series(1, 100) g;"),
    );
    let dst = database(&c.dest[0], SCHEMA);
    let state = TempPath::new("trigger-resume-verify.state");
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
    let job = |extra: &[&str]| {
        let mut args = vec![
            "table",
            "log",
            "inv",
            "--from",
            &from,
            "--to",
            &to,
            "--state",
            state.arg(),
        ];
        args.extend(extra);
        run(&args)
    };
    // The first run copies log (verified) and not inv, locked there.
    let mut holder = c.dest[0].connect(&dst);
    holder.batch_execute("BEGIN; LOCK TABLE inv").unwrap();
    let first = job(&[
        "--truncate",
        "--verify",
        "--keep-going",
        "--lock-timeout",
        "1s",
    ]);
    assert_exit(&first, 4);
    holder.batch_execute("COMMIT").unwrap();
    assert_eq!(count(&c.dest[0], &dst, "log"), 100);
    // The resume copies inv, whose trigger writes into log there: compared again, different.
    let out = job(&["--resume"]);
    assert_exit(&out, 4);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(r#"triggers of "public"."inv" ran there"#)
            && stderr.contains("the checksum differs")
            && !stderr.contains("2 verified"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &dst, "log"), 200);
}

/// A TRUNCATE trigger of a partition fires as --truncate empties its partitioned table: said,
/// and a job's --verify compares again the table it changed (nothing was said, and a verified
/// table that the trigger changed stayed `verified`, exit 0).
#[test]
fn a_partitions_truncate_trigger_is_said_and_verified_after() {
    let c = clusters();
    const T: &str = "CREATE TABLE big (id int);
                     CREATE TABLE pt (id int) PARTITION BY RANGE (id);
                     CREATE TABLE pt_1 PARTITION OF pt FOR VALUES FROM (0) TO (100);";
    let src = database(
        &c.source,
        &format!(
            "{T} INSERT INTO big SELECT generate_series(1, 5000);
             INSERT INTO pt SELECT generate_series(1, 10);"
        ),
    );
    let dst = database(
        &c.dest[0],
        &format!(
            "{T} CREATE FUNCTION grow() RETURNS trigger LANGUAGE plpgsql AS
               $$ BEGIN INSERT INTO big VALUES (-1); RETURN NULL; END $$;
             CREATE TRIGGER grow AFTER TRUNCATE ON pt_1 EXECUTE FUNCTION grow();"
        ),
    );
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
    let out = run(&["table", "pt", "--truncate", "--from", &from, "--to", &to]);
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("(or on its partitions)") && stderr.contains("(grow)"),
        "{stderr}"
    );
    let out = run(&[
        "--json",
        "table",
        "big",
        "pt",
        "--truncate",
        "--verify",
        "--jobs",
        "1",
        "--from",
        &from,
        "--to",
        &to,
    ]);
    assert_exit(&out, 4);
    assert_eq!(count(&c.dest[0], &dst, "big"), 5001);
    let report = json(&out);
    let big = record(&report, r#""public"."big""#);
    assert_eq!(big["verified"], false, "{report}");
}

/// The record of `table` in a job's `--json` report.
fn record<'r>(report: &'r serde_json::Value, table: &str) -> &'r serde_json::Value {
    report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["table"] == table)
        .unwrap_or_else(|| panic!("no record of {table}: {report}"))
}

/// A destination whose database (or role) sets `session_replication_role = replica`: its
/// triggers and foreign keys do not run for the copy, said with where it is set (nothing said;
/// rows loaded with no parent, exit 0). Not where the CONN asks for it.
#[test]
fn a_destination_replica_by_its_databases_setting_is_said() {
    let c = clusters();
    let src = database(&c.source, SOURCE);
    let d = database(&c.dest[0], MOVING);
    c.dest[0]
        .connect("postgres")
        .batch_execute(&format!(
            "ALTER DATABASE {d} SET session_replication_role = replica"
        ))
        .unwrap();
    let out = run(&[
        "table",
        "t",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&d),
    ]);
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("session_replication_role = replica, set by its database (ALTER DATABASE"),
        "{stderr}"
    );
    let d = database(&c.dest[0], MOVING);
    let out = run(&[
        "table",
        "t",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &format!(
            "{} options='-c session_replication_role=replica'",
            c.dest[0].conninfo(&d)
        ),
    ]);
    assert_exit(&out, 0);
    assert!(
        !text(&out.stderr).contains("session_replication_role = replica, set by"),
        "{}",
        text(&out.stderr)
    );
}

/// A trigger enabled ALWAYS (it runs under `session_replication_role = replica` too), and one
/// enabled REPLICA under a CONN that sets replica (which is what runs it): said so, with the
/// way that keeps them from running (`ALTER TABLE … DISABLE TRIGGER`), never the replica
/// setting (names52 F3: advised for both, the rows doubled, exit 0).
#[test]
fn triggers_replica_mode_does_not_stop_are_said_with_the_way_that_does() {
    let c = clusters();
    let src = database(&c.source, SOURCE);
    let from = c.source.conninfo(&src);
    for (enable, options) in [
        ("ALWAYS", ""),
        ("REPLICA", " options='-c session_replication_role=replica'"),
    ] {
        let dest = database(
            &c.dest[0],
            &format!(
                "{MOVING} ALTER TABLE t DISABLE TRIGGER move_away;
                 ALTER TABLE t ENABLE {enable} TRIGGER move_away;"
            ),
        );
        let to = format!("{}{options}", c.dest[0].conninfo(&dest));
        let out = run(&["table", "t", "--from", &from, "--to", &to, "--dry-run"]);
        assert_exit(&out, 0);
        let stderr = text(&out.stderr);
        let enabled = format!("(move_away (enabled {}))", enable.to_lowercase());
        assert!(
            stderr.contains(&enabled)
                && stderr.contains("ALTER TABLE … DISABLE TRIGGER … there keeps them from running")
                && !stderr.contains(
                    "options='-c session_replication_role=replica' in the destination's CONN keeps"
                ),
            "{enable}: {stderr}"
        );
    }
}

/// A destination's rules on INSERT are said: COPY runs none, and stores the rows in the table
/// itself, where an application's INSERT is rewritten into another table (types69 F6: not a
/// word, though its triggers are said). One table and a job alike; a disabled rule is not.
#[test]
fn a_destinations_insert_rules_are_said() {
    let c = clusters();
    let src = database(&c.source, SOURCE);
    let rules = "CREATE TABLE p (id int PRIMARY KEY);
        CREATE TABLE t (id int PRIMARY KEY, v text);
        CREATE TABLE archive (id int, v text);
        CREATE RULE to_archive AS ON INSERT TO t DO INSTEAD INSERT INTO archive VALUES (NEW.*);
        CREATE RULE off AS ON INSERT TO p DO INSTEAD NOTHING;
        ALTER TABLE p DISABLE RULE off;";
    for job in [false, true] {
        let dest = database(&c.dest[0], rules);
        let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dest));
        let mut args = vec!["table", "t", "--from", &from, "--to", &to];
        if job {
            args.insert(2, "p");
        }
        let out = run(&args);
        assert_exit(&out, 0);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(
                "has rules on INSERT into it (to_archive): a COPY runs none of them, and stores \
                 each row in the table itself"
            ) && stderr.matches("rules on INSERT").count() == 1,
            "job {job}: {stderr}"
        );
        assert_eq!(count(&c.dest[0], &dest, "t"), 100, "job {job}");
        assert_eq!(count(&c.dest[0], &dest, "archive"), 0, "job {job}");
    }
}
