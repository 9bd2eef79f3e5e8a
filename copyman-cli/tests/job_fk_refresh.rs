//! Re-copying (`--truncate`) a schema whose destinations already hold rows in tables linked by
//! foreign keys: the linked tables are copied as one unit — on each destination one
//! transaction holds one `TRUNCATE ONLY a, ONLY b, …`, each table's COPY (parents first), the
//! sequences and one commit (two-phase under `--atomic`) — so the refresh succeeds; a fault in
//! any table of the group rolls the whole group back everywhere (every destination keeps its
//! old rows in every table, exit 1: nothing committed), and `--resume` copies the group again.
//! Real clusters (allowing prepared transactions), shared by the binary.

mod common;

use common::*;

/// Grandparent, parent, child: the child is the largest (first in the size order), so the
/// group's FK order (parents first) is not the job's size order.
const SCHEMA: &str = "
    CREATE TABLE grand (id serial PRIMARY KEY, v text);
    CREATE TABLE parent (id serial PRIMARY KEY, grand int NOT NULL REFERENCES grand, v text);
    CREATE TABLE child (id serial PRIMARY KEY, parent int NOT NULL REFERENCES parent, v text);
    CREATE TABLE lone (id int);";

const SOURCE_ROWS: &str = "
    INSERT INTO grand (v) SELECT 'g' || g FROM generate_series(1, 20) g;
    INSERT INTO parent (grand, v) SELECT 1 + g % 20, 'p' || g FROM generate_series(1, 200) g;
    INSERT INTO child (parent, v) SELECT 1 + g % 200, 'c' || g FROM generate_series(1, 3000) g;
    INSERT INTO lone SELECT generate_series(1, 10);";

/// Old rows on a destination, referencing each other (as an earlier copy left them).
const OLD_ROWS: &str = "
    INSERT INTO grand (id, v) VALUES (1, 'old'), (500, 'old');
    INSERT INTO parent (id, grand, v) VALUES (1, 500, 'old'), (600, 1, 'old');
    INSERT INTO child (id, parent, v) VALUES (1, 600, 'old'), (2, 1, 'old');
    INSERT INTO lone VALUES (42);";

const TABLES: [&str; 4] = ["grand", "parent", "child", "lone"];

/// The job over the whole schema to both destinations, with `extra` arguments.
fn job(src: &str, d1: &str, d2: &str, state: &TempPath, extra: &[&str]) -> std::process::Output {
    let c = two_phase_clusters();
    copyman()
        .args([
            "table",
            "--schema",
            "public",
            "--from",
            &c.source.conninfo(src),
            "--to",
            &c.dest[0].conninfo(d1),
            "--to",
            &c.dest[1].conninfo(d2),
            "--state",
            state.arg(),
        ])
        .args(extra)
        .output()
        .unwrap()
}

/// `last_value` of a sequence.
fn last_value(cluster: &copyman_testkit::Cluster, db: &str, seq: &str) -> i64 {
    cluster
        .connect(db)
        .query_one(&format!("SELECT last_value FROM {seq}"), &[])
        .unwrap()
        .get(0)
}

#[track_caller]
fn assert_equal_to_source(src: &str, dests: [&str; 2]) {
    assert_equal_to_source_in(src, dests, &TABLES);
}

/// Every destination's `tables` and the three sequences as the source's.
#[track_caller]
fn assert_equal_to_source_in(src: &str, dests: [&str; 2], tables: &[&str]) {
    let c = two_phase_clusters();
    for (cluster, db) in c.dest.iter().zip(dests) {
        for &table in tables {
            assert_eq!(
                digest(cluster, db, table),
                digest(&c.source, src, table),
                "{table} on {db}"
            );
        }
        for seq in ["grand_id_seq", "parent_id_seq", "child_id_seq"] {
            assert_eq!(
                last_value(cluster, db, seq),
                last_value(&c.source, src, seq),
                "{seq} on {db}"
            );
        }
    }
}

#[test]
fn refresh_of_a_fk_linked_schema_with_rows_on_two_destinations_succeeds() {
    let c = two_phase_clusters();
    let src = database(&c.source, &format!("{SCHEMA} {SOURCE_ROWS}"));
    let d1 = database(&c.dest[0], &format!("{SCHEMA} {OLD_ROWS}"));
    let d2 = database(&c.dest[1], &format!("{SCHEMA} {OLD_ROWS}"));
    let state = TempPath::new("fk-refresh.state");

    // The plan says it: one unit, one TRUNCATE over the group, parents first.
    let dry = job(&src, &d1, &d2, &state, &["--truncate", "--dry-run"]);
    assert_exit(&dry, 0);
    let plan = text(&dry.stdout);
    assert!(
        plan.contains(
            r#"TRUNCATE ONLY "public"."grand", ONLY "public"."parent", ONLY "public"."child" (with its group)"#
        ) && plan.contains("copied as one unit"),
        "{plan}"
    );
    // Said once per destination, at the group's first member; the others name it (each said
    // the whole group's statement: N² names for a chain of N).
    assert_eq!(plan.matches("(with its group)").count(), 2, "{plan}");
    assert_eq!(
        (plan.matches("emptied with its group (the statement at ")).count(),
        4,
        "{plan}"
    );

    let out = job(&src, &d1, &d2, &state, &["--truncate"]);
    assert_exit(&out, 0);
    assert_equal_to_source(&src, [&d1, &d2]);

    // The most common refresh, again: the destinations now hold the source's rows.
    c.source
        .connect(&src)
        .batch_execute(
            "DELETE FROM child WHERE id % 2 = 0; INSERT INTO child (parent, v) VALUES (7, 'new');",
        )
        .unwrap();
    let out = job(&src, &d1, &d2, &state, &["--truncate"]);
    assert_exit(&out, 0);
    assert_equal_to_source(&src, [&d1, &d2]);
    for (cluster, db) in c.dest.iter().zip([&d1, &d2]) {
        assert_eq!(copy_backends(cluster, db), 0);
    }
}

#[test]
fn a_fault_in_the_last_table_of_the_group_rolls_the_whole_group_back_everywhere() {
    let c = two_phase_clusters();
    let src = database(&c.source, &format!("{SCHEMA} {SOURCE_ROWS}"));
    let d1 = database(&c.dest[0], &format!("{SCHEMA} {OLD_ROWS}"));
    // Destination 2 refuses one row of the child, the group's last table (FK order).
    let d2 = database(
        &c.dest[1],
        &format!(
            "{SCHEMA} {OLD_ROWS}
             CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 IF NEW.v = 'c2999' THEN RAISE EXCEPTION 'refused by the test'; END IF;
                 RETURN NEW;
             END $$;
             CREATE TRIGGER refuse BEFORE INSERT ON child FOR EACH ROW EXECUTE FUNCTION refuse();"
        ),
    );
    let old: Vec<Vec<(i64, String)>> = c
        .dest
        .iter()
        .zip([&d1, &d2])
        .map(|(cluster, db)| TABLES.iter().map(|t| digest(cluster, db, t)).collect())
        .collect();
    let state = TempPath::new("fk-fault.state");
    let log = TempPath::new("fk-fault.decisions");
    let atomic = ["--atomic", "--decision-log", log.arg()];
    // The group alone (a table that the stopped job never started is not emptied by the
    // resume: not this test's point).
    let no_lone = ["--exclude-table", "lone"];

    let out = job(
        &src,
        &d1,
        &d2,
        &state,
        &[
            &["--truncate", "--jobs", "2"][..],
            &atomic[..],
            &no_lone[..],
        ]
        .concat(),
    );
    // Nothing committed anywhere: exit 1 (the fault named).
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("refused by the test"),
        "the fault is named: {stderr}"
    );
    assert_exit(&out, 1);
    for (k, (cluster, db)) in c.dest.iter().zip([&d1, &d2]).enumerate() {
        for (t, table) in TABLES.iter().enumerate().take(3) {
            assert_eq!(
                digest(cluster, db, table),
                old[k][t],
                "{table} on destination {} kept its old rows",
                k + 1
            );
        }
        assert_eq!(copy_backends(cluster, db), 0, "no session left in COPY");
        assert!(prepared_xacts(cluster).is_empty(), "nothing left prepared");
    }

    // The fault goes; --resume copies the group again, as one unit.
    c.dest[1]
        .connect(&d2)
        .batch_execute("DROP TRIGGER refuse ON child")
        .unwrap();
    let out = job(
        &src,
        &d1,
        &d2,
        &state,
        &[&["--resume"][..], &atomic[..], &no_lone[..]].concat(),
    );
    assert_exit(&out, 0);
    assert_equal_to_source_in(&src, [&d1, &d2], &TABLES[..3]);
    for cluster in &c.dest {
        assert!(prepared_xacts(cluster).is_empty());
    }
}

/// The group is formed only where it is needed: without `--truncate` (nothing emptied) the
/// linked tables are copied one by one, side by side, as before.
#[test]
fn without_truncate_no_group_is_formed() {
    let c = two_phase_clusters();
    let src = database(&c.source, &format!("{SCHEMA} {SOURCE_ROWS}"));
    let d1 = database(&c.dest[0], SCHEMA);
    let d2 = database(&c.dest[1], SCHEMA);
    let state = TempPath::new("fk-nogroup.state");
    let dry = job(&src, &d1, &d2, &state, &["--dry-run"]);
    assert_exit(&dry, 0);
    let plan = text(&dry.stdout);
    assert!(
        !plan.contains("copied as one unit") && !plan.contains("TRUNCATE"),
        "{plan}"
    );
    let out = job(&src, &d1, &d2, &state, &["--jobs", "3"]);
    assert_exit(&out, 0);
    assert_equal_to_source(&src, [&d1, &d2]);
}

/// A table outside the selection that references a member still blocks the group's TRUNCATE
/// (PostgreSQL refuses it, and copyman never empties a table it does not copy): the group's
/// members are then emptied in parts: those no table references but those truncated with them
/// with one `TRUNCATE`,
/// then each other one as a table alone is (a `DELETE` where it touches nothing else). Where that outside table holds no referencing rows the
/// refresh succeeds; where it does, the group is refused while planning: its 23503 names the
/// constraint and the one statement that empties the group with that table, and nothing of
/// the group is committed on any destination.
#[test]
fn a_referencing_table_outside_the_selection_keeps_the_delete_rule() {
    let c = two_phase_clusters();
    let outside = "CREATE TABLE note (id int PRIMARY KEY, grand int REFERENCES grand);";
    let src = database(&c.source, &format!("{SCHEMA} {outside} {SOURCE_ROWS}"));
    let d1 = database(&c.dest[0], &format!("{SCHEMA} {outside} {OLD_ROWS}"));
    let d2 = database(&c.dest[1], &format!("{SCHEMA} {outside} {OLD_ROWS}"));
    let state = TempPath::new("fk-outside.state");
    let selected = |extra: &[&str]| {
        copyman()
            .args(["table", "grand", "parent", "child"])
            .args(["--from", &c.source.conninfo(&src)])
            .args(["--to", &c.dest[0].conninfo(&d1)])
            .args(["--to", &c.dest[1].conninfo(&d2)])
            .args(["--state", state.arg(), "--truncate"])
            .args(extra)
            .output()
            .unwrap()
    };
    let dry = selected(&["--dry-run"]);
    let plan = text(&dry.stdout);
    assert!(
        plan.contains(
            "empties them with one TRUNCATE those that no table references but those truncated \
             with them, then"
        ) && plan.contains(r#"TRUNCATE ONLY "public"."parent", ONLY "public"."child"; "#)
            && plan.contains(r#"DELETE FROM ONLY "public"."grand""#),
        "{plan}"
    );
    // No row of note references grand: emptied one by one, copied as one unit.
    assert_exit(&selected(&[]), 0);
    assert_equal_to_source_in(&src, [&d1, &d2], &TABLES[..3]);

    // A row of note on destination 2 references grand's row 1.
    c.dest[1]
        .connect(&d2)
        .batch_execute("INSERT INTO note VALUES (1, 1)")
        .unwrap();
    c.source
        .connect(&src)
        .batch_execute("INSERT INTO child (parent, v) VALUES (3, 'more')")
        .unwrap();
    let before: Vec<Vec<(i64, String)>> = c
        .dest
        .iter()
        .zip([&d1, &d2])
        .map(|(cluster, db)| TABLES.iter().map(|t| digest(cluster, db, t)).collect())
        .collect();
    let out = selected(&[]);
    let stderr = text(&out.stderr);
    // It says the one statement that empties them all there (the group and note).
    assert!(
        stderr.contains("23503")
            && stderr.contains(
                r#"on destination 2 ("#
            )
            && stderr.contains(
                r#"(TRUNCATE ONLY "public"."grand", ONLY "public"."parent", ONLY "public"."child", ONLY "public"."note")"#
            ),
        "{stderr}"
    );
    assert_exit(&out, 1);
    for (k, (cluster, db)) in c.dest.iter().zip([&d1, &d2]).enumerate() {
        for (t, table) in TABLES.iter().enumerate().take(3) {
            assert_eq!(digest(cluster, db, table), before[k][t], "{table}");
        }
        assert_eq!(copy_backends(cluster, db), 0);
    }
    assert_eq!(count(&c.dest[1], &d2, "note"), 1, "never emptied");
    // Done as it says, a resume finishes the job.
    c.dest[1]
        .connect(&d2)
        .batch_execute(
            "TRUNCATE ONLY public.grand, ONLY public.parent, ONLY public.child, ONLY public.note",
        )
        .unwrap();
    let resumed = copyman()
        .args(["table", "grand", "parent", "child"])
        .args(["--from", &c.source.conninfo(&src)])
        .args(["--to", &c.dest[0].conninfo(&d1)])
        .args(["--to", &c.dest[1].conninfo(&d2)])
        .args(["--state", state.arg(), "--resume"])
        .output()
        .unwrap();
    assert_exit(&resumed, 0);
    assert_equal_to_source_in(&src, [&d1, &d2], &TABLES[..3]);
}

/// Under `--keep-going` a destination where the group fails rolls it back there (every
/// member keeps its old rows), the others commit it whole; `--resume` finishes the rest.
#[test]
fn under_keep_going_the_group_commits_where_it_completed() {
    let c = two_phase_clusters();
    let src = database(&c.source, &format!("{SCHEMA} {SOURCE_ROWS}"));
    let d1 = database(&c.dest[0], &format!("{SCHEMA} {OLD_ROWS}"));
    let d2 = database(
        &c.dest[1],
        &format!(
            "{SCHEMA} {OLD_ROWS}
             CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN RAISE EXCEPTION 'refused by the test'; END $$;
             CREATE TRIGGER refuse BEFORE INSERT ON child FOR EACH ROW EXECUTE FUNCTION refuse();"
        ),
    );
    let old: Vec<(i64, String)> = TABLES.iter().map(|t| digest(&c.dest[1], &d2, t)).collect();
    let state = TempPath::new("fk-keep.state");
    let out = job(&src, &d1, &d2, &state, &["--truncate", "--keep-going"]);
    assert_exit(&out, 4);
    for table in TABLES {
        assert_eq!(
            digest(&c.dest[0], &d1, table),
            digest(&c.source, &src, table)
        );
    }
    for (t, table) in TABLES.iter().enumerate().take(3) {
        assert_eq!(digest(&c.dest[1], &d2, table), old[t], "{table}");
    }
    c.dest[1]
        .connect(&d2)
        .batch_execute("DROP TRIGGER refuse ON child")
        .unwrap();
    assert_exit(&job(&src, &d1, &d2, &state, &["--resume"]), 0);
    assert_equal_to_source(&src, [&d1, &d2]);
}

/// A table of one destination's own that references a member keeps the group's one `TRUNCATE`
/// from that destination only: another destination, where nothing else references the group,
/// still empties it with one `TRUNCATE` and commits under `--keep-going` (it failed with the
/// first, 0A000, when the rule was taken from every destination's foreign keys at once: a
/// `DELETE` of `grand`, whose key into it cascades, is no quiet emptying, and a `TRUNCATE` of it
/// alone is refused). The plan says which destination empties them one by one, and why.
#[test]
fn a_table_of_one_destination_referencing_the_group_fails_the_group_there_only() {
    let c = two_phase_clusters();
    let cascading = SCHEMA.replace("REFERENCES grand", "REFERENCES grand ON DELETE CASCADE");
    let src = database(&c.source, &format!("{cascading} {SOURCE_ROWS}"));
    let d1 = database(&c.dest[0], &format!("{cascading} {OLD_ROWS}"));
    let d2 = database(
        &c.dest[1],
        &format!(
            "{cascading} {OLD_ROWS}
             CREATE TABLE local_note (grand int REFERENCES grand); INSERT INTO local_note VALUES (1);"
        ),
    );
    let old: Vec<(i64, String)> = TABLES.iter().map(|t| digest(&c.dest[1], &d2, t)).collect();
    let state = TempPath::new("fk-local.state");
    let dry = job(
        &src,
        &d1,
        &d2,
        &state,
        &["--truncate", "--keep-going", "--dry-run"],
    );
    let plan = text(&dry.stdout);
    assert!(
        plan.contains(r#"empties them with one TRUNCATE ONLY "public"."grand""#)
            && plan.contains(
                "(with one TRUNCATE those that no table references but those truncated with \
                 them, then the others one by one, children first, on destination 2: a table \
                 outside"
            ),
        "{plan}"
    );
    let out = job(&src, &d1, &d2, &state, &["--truncate", "--keep-going"]);
    assert_exit(&out, 4);
    for table in TABLES {
        assert_eq!(
            digest(&c.dest[0], &d1, table),
            digest(&c.source, &src, table),
            "{table} on destination 1"
        );
    }
    for (t, table) in TABLES.iter().enumerate().take(3) {
        assert_eq!(digest(&c.dest[1], &d2, table), old[t], "{table}");
    }
    // (grand's key from parent cascades onto parent, emptied before it: its DELETE would touch
    // nothing else, and local_note's row is what stops it, emptying63 F2.)
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("SQLSTATE 23503")
            && stderr.contains(
                r#""public"."local_note" there, a table of that destination's own (the source has none)"#
            ),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[1], &d2, "local_note"), 1, "never emptied");
    assert_eq!(copy_backends(&c.dest[0], &d1), 0);
    assert_eq!(copy_backends(&c.dest[1], &d2), 0);
}

/// A foreign-key cycle whose rows reference each other both ways loads where its keys are
/// `DEFERRABLE` (the unit's transaction defers them: `SET CONSTRAINTS ALL DEFERRED`, checked
/// before the COMMIT). Where a destination's own table references a member, the cycle is
/// emptied one by one (its one `TRUNCATE` is refused), and keys that cannot be deferred make
/// those `DELETE`s fail: refused while planning (the dry run says so), never tried; copied
/// where the group is emptied together (under `--keep-going`), and once the keys are
/// `DEFERRABLE` there, a resume empties and copies it there too.
#[test]
fn a_cycle_loads_and_empties_one_by_one_where_its_keys_are_deferrable() {
    let c = two_phase_clusters();
    let cycle = "CREATE TABLE ring_a (id int PRIMARY KEY, b int);
        CREATE TABLE ring_b (id int PRIMARY KEY, a int REFERENCES ring_a);
        ALTER TABLE ring_a ADD CONSTRAINT ring_a_b FOREIGN KEY (b) REFERENCES ring_b;";
    let deferrable = "ALTER TABLE ring_a ALTER CONSTRAINT ring_a_b DEFERRABLE;
        ALTER TABLE ring_b ALTER CONSTRAINT ring_b_a_fkey DEFERRABLE;";
    // Rows referencing each other both ways, as every server holds them.
    let rows = |n: i32| {
        format!(
            "INSERT INTO ring_a SELECT g FROM generate_series({n}, {n} + 9) g;
             INSERT INTO ring_b SELECT g, g FROM generate_series({n}, {n} + 9) g;
             UPDATE ring_a SET b = id;"
        )
    };
    let old_rows = rows(100);
    let src = database(&c.source, &format!("{cycle} {}", rows(1)));
    let d1 = database(&c.dest[0], &format!("{cycle} {deferrable} {old_rows}"));
    let d2 = database(
        &c.dest[1],
        &format!("{cycle} {old_rows} CREATE TABLE local_note (a int REFERENCES ring_a);"),
    );
    let state = TempPath::new("fk-cycle-own.state");
    let dry = job(&src, &d1, &d2, &state, &["--truncate", "--dry-run"]);
    let plan = text(&dry.stdout);
    assert!(
        plan.contains("refused: SQLSTATE 23503")
            && plan.contains("of its group and emptied after it, reference it")
            && plan.contains("DEFERRABLE there (then deferred in the group's transaction)")
            && plan.contains("BEGIN; SET CONSTRAINTS ALL DEFERRED; TRUNCATE ONLY"),
        "{plan}"
    );
    assert!(
        text(&dry.stderr).contains("the run would fail (exit 1)"),
        "{}",
        text(&dry.stderr)
    );
    let old: Vec<(i64, String)> = ["ring_a", "ring_b"]
        .iter()
        .map(|t| digest(&c.dest[1], &d2, t))
        .collect();
    let out = job(&src, &d1, &d2, &state, &["--truncate", "--keep-going"]);
    assert_exit(&out, 4);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("SQLSTATE 23503"), "{stderr}");
    assert!(
        !stderr.contains("violates foreign key"),
        "never tried: {stderr}"
    );
    for (t, table) in ["ring_a", "ring_b"].iter().enumerate() {
        assert_eq!(
            digest(&c.dest[0], &d1, table),
            digest(&c.source, &src, table),
            "{table} on destination 1"
        );
        assert_eq!(
            digest(&c.dest[1], &d2, table),
            old[t],
            "{table} kept on destination 2"
        );
    }
    c.dest[1].connect(&d2).batch_execute(deferrable).unwrap();
    let resumed = job(&src, &d1, &d2, &state, &["--resume"]);
    assert_exit(&resumed, 0);
    for table in ["ring_a", "ring_b"] {
        assert_eq!(
            digest(&c.dest[1], &d2, table),
            digest(&c.source, &src, table),
            "{table} on destination 2"
        );
    }
    assert_eq!(copy_backends(&c.dest[1], &d2), 0);
}

/// A member whose key from another member cascades, in a group emptied one by one (a
/// destination's own table references another member): that member is emptied before it, so
/// its `DELETE` touches nothing else and the group loads there (emptying63 F2: its `TRUNCATE`
/// alone was refused, 0A000). With a trigger on its deletes, that is refused, said while
/// planning, never tried.
#[test]
fn a_member_whose_cascading_key_is_a_member_emptied_before_it_loads() {
    let c = two_phase_clusters();
    let cascading = SCHEMA.replace("REFERENCES grand", "REFERENCES grand ON DELETE CASCADE");
    let src = database(&c.source, &format!("{cascading} {SOURCE_ROWS}"));
    let d1 = database(&c.dest[0], &format!("{cascading} {OLD_ROWS}"));
    let d2 = database(
        &c.dest[1],
        &format!("{cascading} {OLD_ROWS} CREATE TABLE local_note (child int REFERENCES child);"),
    );
    let state = TempPath::new("fk-truncated-member.state");
    let dry = job(&src, &d1, &d2, &state, &["--truncate", "--dry-run"]);
    let plan = text(&dry.stdout);
    assert!(
        plan.contains(r#"DELETE FROM ONLY "public"."grand" (with its group)"#)
            && !plan.contains("refused: "),
        "{plan}"
    );
    assert_exit(&job(&src, &d1, &d2, &state, &["--truncate"]), 0);
    for table in ["grand", "parent", "child"] {
        assert_eq!(
            digest(&c.dest[1], &d2, table),
            digest(&c.source, &src, table)
        );
    }
    c.dest[1]
        .connect(&d2)
        .batch_execute(
            "CREATE FUNCTION keep() RETURNS trigger LANGUAGE plpgsql AS
               $$ BEGIN RETURN OLD; END $$;
             CREATE TRIGGER keep BEFORE DELETE ON grand FOR EACH ROW EXECUTE FUNCTION keep();",
        )
        .unwrap();
    let dry = job(&src, &d1, &d2, &state, &["--truncate", "--dry-run"]);
    let plan = text(&dry.stdout);
    assert!(
        plan.contains("refused: SQLSTATE 0A000")
            && plan.contains(r#""public"."parent" there, of its group, references it"#)
            && plan.contains("trigger keep fires on its deletes"),
        "{plan}"
    );
    let out = job(&src, &d1, &d2, &state, &["--truncate", "--keep-going"]);
    assert_exit(&out, 4);
    assert!(
        !text(&out.stderr).contains("cannot truncate"),
        "never tried: {}",
        text(&out.stderr)
    );
}

/// A crash between the group's COMMIT and its `done` records: the state file holds the group's
/// `begin` and `commit` lines only. A resume (without `--truncate`) asks each destination about
/// the announced transaction, finds it committed, and copies nothing twice.
#[test]
fn a_group_committed_but_not_recorded_done_is_not_copied_twice() {
    let c = two_phase_clusters();
    let src = database(&c.source, &format!("{SCHEMA} {SOURCE_ROWS}"));
    let d1 = database(&c.dest[0], &format!("{SCHEMA} {OLD_ROWS}"));
    let d2 = database(&c.dest[1], &format!("{SCHEMA} {OLD_ROWS}"));
    let state = TempPath::new("fk-lost-done.state");
    let out = job(&src, &d1, &d2, &state, &["--truncate"]);
    assert_exit(&out, 0);
    let recorded = std::fs::read_to_string(&state.0).unwrap();
    let groups = ["\"grand\"", "\"parent\"", "\"child\""];
    for table in groups {
        assert_eq!(
            recorded
                .lines()
                .filter(|l| l.starts_with("commit\t") && l.contains(table))
                .count(),
            2,
            "a commit line per destination for {table}:\n{recorded}"
        );
    }
    let lost: String = recorded
        .lines()
        .filter(|l| !l.starts_with("done\t"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&state.0, lost).unwrap();
    let resumed = job(&src, &d1, &d2, &state, &["--resume"]);
    assert_exit(&resumed, 0);
    assert_equal_to_source(&src, [&d1, &d2]);
}

/// A `--truncate` run that stopped before a table: its resume, given no `--truncate`, empties
/// that table too (the state file says how the run began), rather than adding the source's
/// rows beside the old ones; and the group it rolled back is emptied again as one unit.
#[test]
fn a_resume_of_a_truncate_run_empties_what_it_copies_as_the_run_would_have() {
    let c = two_phase_clusters();
    let src = database(&c.source, &format!("{SCHEMA} {SOURCE_ROWS}"));
    let d1 = database(&c.dest[0], &format!("{SCHEMA} {OLD_ROWS}"));
    let d2 = database(
        &c.dest[1],
        &format!(
            "{SCHEMA} {OLD_ROWS}
             CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN RAISE EXCEPTION 'refused by the test'; END $$;
             CREATE TRIGGER refuse BEFORE INSERT ON child FOR EACH ROW EXECUTE FUNCTION refuse();"
        ),
    );
    let state = TempPath::new("fk-truncate-resume.state");
    // One worker: the group (larger) first; it fails, the job stops before `lone`.
    let out = job(&src, &d1, &d2, &state, &["--truncate", "--jobs", "1"]);
    assert_exit(&out, 1);
    assert_eq!(count(&c.dest[0], &d1, "lone"), 1, "lone not started");
    c.dest[1]
        .connect(&d2)
        .batch_execute("DROP TRIGGER refuse ON child")
        .unwrap();
    let resumed = job(&src, &d1, &d2, &state, &["--resume"]);
    assert_exit(&resumed, 0);
    assert!(
        text(&resumed.stderr).contains("the job began with --truncate"),
        "{}",
        text(&resumed.stderr)
    );
    assert_equal_to_source(&src, [&d1, &d2]);
}

/// A group one member of which a table outside it references (a schema copied alone, another
/// schema's table referencing its users): the members no table outside references are emptied
/// with one `TRUNCATE`, then the others one by one. A member whose `DELETE` would cascade onto
/// another member was refused (0A000), though that member was empty by then, and a job that
/// could run did not (dump63 F3); now it copies, and where the outside table's rows reference
/// the member emptied by a `DELETE`, that member's refusal is the job's reason, its constraint
/// named quoted.
#[test]
fn a_group_referenced_from_outside_truncates_the_members_no_outside_table_references() {
    let c = two_phase_clusters();
    let schema = "CREATE TABLE users (id int PRIMARY KEY);
        CREATE TABLE orders (id int PRIMARY KEY, u int REFERENCES users);
        CREATE TABLE items (id int, o int REFERENCES orders ON DELETE CASCADE);
        CREATE TABLE cust (id int, u int, CONSTRAINT \"Cust Users\" FOREIGN KEY (u) REFERENCES users);";
    let rows = "INSERT INTO users SELECT generate_series(1, 10);
        INSERT INTO orders SELECT g, 1 + g % 10 FROM generate_series(1, 50) g;
        INSERT INTO items SELECT g, 1 + g % 50 FROM generate_series(1, 200) g;";
    let src = database(&c.source, &format!("{schema} {rows}"));
    let d1 = database(&c.dest[0], &format!("{schema} {rows}"));
    let state = TempPath::new("fk-outside-parts.state");
    let job = || {
        copyman()
            .args(["table", "users", "orders", "items", "--truncate"])
            .args(["--from", &c.source.conninfo(&src)])
            .args(["--to", &c.dest[0].conninfo(&d1)])
            .args(["--state", state.arg()])
            .output()
            .unwrap()
    };
    let out = job();
    assert_exit(&out, 0);
    for table in ["users", "orders", "items"] {
        assert_eq!(
            digest(&c.dest[0], &d1, table),
            digest(&c.source, &src, table)
        );
    }
    // A row of cust there references a user: users cannot be emptied, and the job says so.
    c.dest[0]
        .connect(&d1)
        .batch_execute("INSERT INTO cust VALUES (1, 3)")
        .unwrap();
    let out = job();
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    let stopped = stderr.lines().find(|l| l.contains("the job stopped"));
    let stopped = stopped.unwrap_or_else(|| panic!("{stderr}"));
    // Its constraint named as SQL names it (it was written unquoted).
    assert!(
        stopped.contains(r#""public"."users""#)
            && stopped.contains("23503")
            && stopped.contains(r#"foreign key "Cust Users""#),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &d1, "items"), 200);
}

/// A member whose referencing member is refused there itself (a table outside the group
/// references it with rows) is refused as following from that one: its rows stay. The advice
/// was to make the key DEFERRABLE, which changed nothing (emptying63 F4).
#[test]
fn a_member_under_a_refused_member_is_said_to_follow_from_it() {
    let c = two_phase_clusters();
    let schema = "CREATE TABLE users (id int PRIMARY KEY);
        CREATE TABLE orders (id int PRIMARY KEY, u int REFERENCES users);
        CREATE TABLE items (id int PRIMARY KEY, o int REFERENCES orders);
        CREATE TABLE ext (id int, i int REFERENCES items);";
    let rows = "INSERT INTO users SELECT generate_series(1, 3);
        INSERT INTO orders SELECT g, g FROM generate_series(1, 3) g;
        INSERT INTO items SELECT g, g FROM generate_series(1, 3) g;";
    let src = database(&c.source, &format!("{schema} {rows}"));
    let d1 = database(
        &c.dest[0],
        &format!("{schema} {rows} INSERT INTO ext VALUES (1, 2);"),
    );
    let state = TempPath::new("under-refused.state");
    let out = copyman()
        .args([
            "table",
            "users",
            "orders",
            "items",
            "--truncate",
            "--dry-run",
        ])
        .args(["--from", &c.source.conninfo(&src)])
        .args(["--to", &c.dest[0].conninfo(&d1)])
        .args(["--state", state.arg()])
        .output()
        .unwrap();
    assert_exit(&out, 1);
    let plan = text(&out.stdout);
    assert!(
        plan.contains(r#""public"."items" there, of its group, references it"#)
            && plan.contains("is refused there itself (said of it)"),
        "{plan}"
    );
    assert_eq!(count(&c.dest[0], &d1, "ext"), 1);
}

/// A partitioned member whose partition a table outside the group references there: the
/// refusal names that table, its key and the partition, and says which key to change — it
/// named a key inside the group and "a table outside it" (emptying63 F3). The run refuses as
/// the dry run says, and the destination keeps its rows.
#[test]
fn an_outside_key_to_a_members_partition_is_named() {
    let c = two_phase_clusters();
    let schema = "CREATE TABLE a (id int PRIMARY KEY) PARTITION BY RANGE (id);
        CREATE TABLE a1 PARTITION OF a FOR VALUES FROM (0) TO (100);
        CREATE TABLE a2 PARTITION OF a FOR VALUES FROM (100) TO (200);
        CREATE TABLE b (id int PRIMARY KEY, a_id int REFERENCES a);
        INSERT INTO a SELECT generate_series(1, 150);
        INSERT INTO b SELECT g, g FROM generate_series(1, 150) g;";
    let src = database(&c.source, schema);
    let d1 = database(
        &c.dest[0],
        &format!("{schema} CREATE TABLE o (x int CONSTRAINT o_a1 REFERENCES a1 (id));"),
    );
    let state = TempPath::new("outside-partition.state");
    let job = |dry: bool| {
        copyman()
            .args(["table", "a", "b", "--truncate"])
            .args(dry.then_some("--dry-run"))
            .args(["--from", &c.source.conninfo(&src)])
            .args(["--to", &c.dest[0].conninfo(&d1)])
            .args(["--state", state.arg()])
            .output()
            .unwrap()
    };
    for dry in [true, false] {
        let out = job(dry);
        assert_exit(&out, 1);
        let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
        // (Said where the member is refused: by itself, or as the group's.)
        assert!(
            said.contains(r#""public"."o" there"#)
                && said.contains("foreign key o_a1")
                && said.contains(r#""public"."a1""#)
                && said.contains("drop or change"),
            "{said}"
        );
    }
    assert_eq!(count(&c.dest[0], &d1, "a"), 150);
    assert_eq!(count(&c.dest[0], &d1, "b"), 150);
}

/// A partitioned table copied with `--truncate` by itself (one table, and a job with another
/// table), one of whose partitions a table of the destination's own references: refused while
/// planning, the key and the partition named — the dry run said all was well and the run's
/// TRUNCATE was refused (recheck64 F3). Nothing is emptied.
#[test]
fn a_key_to_a_partition_of_a_table_emptied_alone_is_named_while_planning() {
    let c = two_phase_clusters();
    let schema = "CREATE TABLE pt (id int PRIMARY KEY) PARTITION BY RANGE (id);
        CREATE TABLE pt1 PARTITION OF pt FOR VALUES FROM (0) TO (100);
        CREATE TABLE pt2 PARTITION OF pt FOR VALUES FROM (100) TO (200);
        CREATE TABLE solo (id int);";
    let src = database(
        &c.source,
        &format!("{schema} INSERT INTO pt SELECT generate_series(1, 150);"),
    );
    let d1 = database(
        &c.dest[0],
        &format!(
            "{schema} INSERT INTO pt VALUES (5);
             CREATE TABLE op (x int CONSTRAINT op_pt1 REFERENCES pt1 (id));"
        ),
    );
    let state = TempPath::new("key-to-partition.state");
    for (tables, job) in [(&["pt"][..], false), (&["pt", "solo"][..], true)] {
        for dry in [true, false] {
            let mut command = copyman();
            command
                .arg("table")
                .args(tables)
                .arg("--truncate")
                .args(dry.then_some("--dry-run"))
                .args(["--from", &c.source.conninfo(&src)])
                .args(["--to", &c.dest[0].conninfo(&d1)]);
            if job {
                command.args(["--state", state.arg()]);
            }
            let out = command.output().unwrap();
            let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
            assert_exit(&out, 1);
            assert!(
                said.contains(r#""public"."op" there"#)
                    && said.contains(r#"foreign key op_pt1, to its partition "public"."pt1""#),
                "{tables:?} dry {dry}: {said}"
            );
        }
    }
    assert_eq!(count(&c.dest[0], &d1, "pt"), 1);
}

/// A group a table outside it references, whose members' keys act on delete (`ON DELETE
/// CASCADE` from child to parent, `SET NULL`): those keys act on members emptied before, so
/// the `DELETE`s touch nothing else and the group copies (emptying63 F2: refused). What does
/// stop a `DELETE` is named: a trigger that fires on it (F1: "it is partitioned, or foreign
/// keys act on its deletes, or triggers or rules fire on them").
#[test]
fn keys_acting_on_members_emptied_before_do_not_stop_the_group() {
    let c = two_phase_clusters();
    let schema = "CREATE TABLE users (id int PRIMARY KEY);
        CREATE TABLE orders (id int PRIMARY KEY, u int REFERENCES users ON DELETE CASCADE);
        CREATE TABLE items (id int, o int REFERENCES orders ON DELETE SET NULL);
        CREATE TABLE audit (id int, u int REFERENCES users);";
    let rows = "INSERT INTO users SELECT generate_series(1, 4);
        INSERT INTO orders SELECT g, g FROM generate_series(1, 4) g;
        INSERT INTO items SELECT g, g FROM generate_series(1, 4) g;";
    let src = database(&c.source, &format!("{schema} {rows}"));
    let d1 = database(&c.dest[0], &format!("{schema} {rows}"));
    let state = TempDir::new("acting-keys");
    let job = |name: &str| {
        copyman()
            .args(["table", "users", "orders", "items", "--truncate"])
            .args(["--from", &c.source.conninfo(&src)])
            .args(["--to", &c.dest[0].conninfo(&d1)])
            .args(["--state", &state.path(name)])
            .output()
            .unwrap()
    };
    assert_exit(&job("a.state"), 0);
    for table in ["users", "orders", "items"] {
        assert_eq!(
            digest(&c.dest[0], &d1, table),
            digest(&c.source, &src, table)
        );
    }
    // A trigger on users' deletes: named in its refusal.
    c.dest[0]
        .connect(&d1)
        .batch_execute(
            "CREATE FUNCTION noop() RETURNS trigger LANGUAGE plpgsql AS
               $$ BEGIN RETURN OLD; END $$;
             CREATE TRIGGER t_del BEFORE DELETE ON users FOR EACH ROW EXECUTE FUNCTION noop();",
        )
        .unwrap();
    let out = job("b.state");
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("trigger t_del fires on its deletes"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &d1, "users"), 4);
}

/// A table of a destination's own, empty, that references a table whose DELETE would do more
/// (a trigger): the refusal names the trigger and does not say rows would be lost, nor advise
/// emptying that table, which changes nothing (emptying63 F1).
#[test]
fn an_empty_table_of_a_destinations_own_is_not_said_to_lose_rows() {
    let c = two_phase_clusters();
    let schema = "CREATE TABLE users (id int PRIMARY KEY);";
    let src = database(
        &c.source,
        &format!("{schema} INSERT INTO users SELECT generate_series(1, 3);"),
    );
    let d1 = database(
        &c.dest[0],
        &format!(
            "{schema} CREATE TABLE audit (u int REFERENCES users);
             CREATE FUNCTION keep() RETURNS trigger LANGUAGE plpgsql AS
               $$ BEGIN RETURN OLD; END $$;
             CREATE TRIGGER keep BEFORE DELETE ON users FOR EACH ROW EXECUTE FUNCTION keep();"
        ),
    );
    let state = TempPath::new("own-empty.state");
    let out = copyman()
        .args(["table", "users", "--truncate", "--dry-run"])
        .args(["--from", &c.source.conninfo(&src)])
        .args(["--to", &c.dest[0].conninfo(&d1)])
        .args(["--state", state.arg()])
        .output()
        .unwrap();
    assert_exit(&out, 1);
    let plan = text(&out.stdout);
    assert!(
        plan.contains("trigger keep fires on its deletes")
            && plan.contains(
                r#""public"."audit" holds no rows, but copyman empties no table it does not copy"#
            )
            && !plan.contains("no server holds a copy of"),
        "{plan}"
    );
}
