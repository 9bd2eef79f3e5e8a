//! How a table is emptied before it is copied again (`--truncate`, or a resumed table): its own
//! rows only — an inheritance child keeps its rows (`TRUNCATE ONLY`) — and a table that tables
//! outside the job reference by a foreign key with a `DELETE`, which succeeds where no row
//! references it (a `TRUNCATE` of it alone is refused, 0A000, so such a table could never be
//! copied again) and names the constraint where one does. (Tables of the job linked by foreign
//! keys are emptied together with one `TRUNCATE`: `job_fk_refresh.rs`.) Real clusters, shared
//! by the binary.

use crate::common;

use common::*;
use copyman_testkit::Cluster;

const INHERIT: &str = "CREATE TABLE par (id int); CREATE TABLE kid () INHERITS (par);";

#[test]
fn emptying_a_parent_never_empties_its_inheritance_children() {
    let c = clusters();
    let fill = "INSERT INTO par SELECT generate_series(1, 10);
                INSERT INTO kid SELECT generate_series(100, 119);";
    let src = database(&c.source, &format!("{INHERIT} {fill}"));
    let (d1, d2) = (
        database(&c.dest[0], &format!("{INHERIT} {fill}")),
        database(&c.dest[1], &format!("{INHERIT} {fill}")),
    );
    // One table.
    let out = run(&[
        "table",
        "par",
        "--truncate",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&d1),
    ]);
    assert_exit(&out, 0);
    let only = |cluster: &Cluster, db: &str, table: &str| -> i64 {
        let sql = format!("SELECT count(*) FROM ONLY {table}");
        cluster.connect(db).query_one(&sql, &[]).unwrap().get(0)
    };
    assert_eq!(only(&c.dest[0], &d1, "par"), 10);
    assert_eq!(only(&c.dest[0], &d1, "kid"), 20, "the child kept its rows");
    // A job of both.
    let state = TempPath::new("emptying.state");
    let out = run(&[
        "table",
        "par",
        "kid",
        "--truncate",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&d1),
        "--to",
        &c.dest[1].conninfo(&d2),
        "--state",
        state.arg(),
    ]);
    assert_exit(&out, 0);
    for (cluster, db) in [(&c.dest[0], &d1), (&c.dest[1], &d2)] {
        assert_eq!(only(cluster, db, "par"), 10);
        assert_eq!(only(cluster, db, "kid"), 20);
    }
}

const FK: &str = "CREATE TABLE customers (id int PRIMARY KEY);
    CREATE TABLE orders (id int PRIMARY KEY, customer int REFERENCES customers);";

#[test]
fn a_referenced_table_is_emptied_where_no_row_references_it() {
    let c = clusters();
    let src = database(
        &c.source,
        &format!(
            "{FK} INSERT INTO customers SELECT generate_series(1, 100);
             INSERT INTO orders SELECT g, g FROM generate_series(1, 50) g;"
        ),
    );
    // Stale customers, no orders yet: emptied with a DELETE, copied again.
    let d1 = database(
        &c.dest[0],
        &format!("{FK} INSERT INTO customers SELECT generate_series(1000, 1004);"),
    );
    let state = TempPath::new("fk.state");
    // Only customers: orders, which references it, is not in the job.
    let from = c.source.conninfo(&src);
    let job_with = |to: &str, last: &[&str]| {
        let mut args = vec![
            "table",
            "customers",
            "--schema",
            "nothing_else",
            "--truncate",
        ];
        args.extend(["--from", &from, "--to", to]);
        args.extend(last);
        run(&args)
    };
    let job = |to: &str| job_with(to, &["--state", state.arg()]);
    let dry_run = |to: &str| job_with(to, &["--dry-run"]);
    let dry = dry_run(&c.dest[0].conninfo(&d1));
    assert_exit(&dry, 0);
    assert!(
        text(&dry.stdout).contains(r#"DELETE FROM ONLY "public"."customers""#),
        "{}",
        text(&dry.stdout)
    );
    let out = job(&c.dest[0].conninfo(&d1));
    assert_exit(&out, 0);
    assert_eq!(
        digest(&c.dest[0], &d1, "customers"),
        digest(&c.source, &src, "customers")
    );
    assert_eq!(count(&c.dest[0], &d1, "orders"), 0, "not in the job");

    // Orders on the destination that reference its customers: the DELETE names the constraint,
    // and nothing of customers is lost. Items there reference the orders: the TRUNCATE said
    // names them too (it named orders alone, which PostgreSQL refuses).
    let d2 = database(
        &c.dest[1],
        &format!(
            "{FK} INSERT INTO customers SELECT generate_series(1000, 1004);
             INSERT INTO orders VALUES (1, 1000);
             CREATE TABLE items (id int, o int REFERENCES orders);
             CREATE TABLE pitems (o int REFERENCES orders) PARTITION BY RANGE (o);
             CREATE TABLE pitems_1 PARTITION OF pitems FOR VALUES FROM (0) TO (100);"
        ),
    );
    std::fs::remove_file(&state.0).ok();
    let out = job(&c.dest[1].conninfo(&d2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("23503"), "{stderr}");
    // Refused while planning, before anything is copied (its DELETE failed when its turn
    // came), and its dry run ends alike (it planned the DELETE and exited 0).
    assert_exit(&out, 1);
    assert!(
        stderr.contains(r#"rows of "public"."orders" there, which the job does not copy"#),
        "{stderr}"
    );
    // (A partitioned one without ONLY, which PostgreSQL refuses for it.)
    let truncate = r#"TRUNCATE ONLY "public"."customers", ONLY "public"."orders", ONLY "public"."items", "public"."pitems""#;
    assert!(
        stderr.contains(&format!("({truncate})"))
            && stderr.contains(
                r#"add "public"."orders", "public"."items", "public"."pitems" to the job"#
            ),
        "{stderr}"
    );
    // What it says PostgreSQL takes (rolled back here).
    c.dest[1]
        .connect(&d2)
        .batch_execute(&format!("BEGIN; {truncate}; ROLLBACK"))
        .unwrap();
    let dry = dry_run(&c.dest[1].conninfo(&d2));
    assert_exit(&dry, 1);
    let plan = text(&dry.stdout);
    assert!(plan.contains("refused") && plan.contains("23503"), "{plan}");
    assert_eq!(count(&c.dest[1], &d2, "customers"), 5);
    assert_eq!(count(&c.dest[1], &d2, "orders"), 1);

    // The same where the database sets session_replication_role = replica: the foreign keys
    // are not checked there, and the DELETE left the order referencing nothing (exit 0). It is
    // refused, saying why, and nothing of customers is lost.
    let d3 = database(
        &c.dest[1],
        &format!(
            "{FK} INSERT INTO customers SELECT generate_series(1000, 1004);
             INSERT INTO orders VALUES (1, 1000);"
        ),
    );
    c.dest[1]
        .connect("postgres")
        .batch_execute(&format!(
            "ALTER DATABASE {d3} SET session_replication_role = replica"
        ))
        .unwrap();
    std::fs::remove_file(&state.0).ok();
    // Refused while planning: its dry run too (it exited 0).
    let dry = dry_run(&c.dest[1].conninfo(&d3));
    assert_exit(&dry, 1);
    let plan = text(&dry.stdout);
    // The source has orders: selecting it too is a way.
    assert!(
        plan.contains("refused: SQLSTATE 55000")
            && plan.contains("select the tables that reference it too"),
        "{plan}"
    );
    let out = job(&c.dest[1].conninfo(&d3));
    assert_ne!(out.status.code(), Some(0));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("55000") && stderr.contains("session_replication_role = replica"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[1], &d3, "customers"), 5);
    assert_eq!(count(&c.dest[1], &d3, "orders"), 1);
}

/// A referenced table whose foreign keys act on delete (`ON DELETE CASCADE`) is never emptied
/// with a DELETE: it would delete another table's rows. It is refused (a TRUNCATE of it alone),
/// and the other table keeps its rows.
#[test]
fn a_table_whose_foreign_keys_act_on_delete_is_never_emptied_with_a_delete() {
    let c = clusters();
    let cascade = "CREATE TABLE customers (id int PRIMARY KEY);
        CREATE TABLE notes (id int PRIMARY KEY,
                            customer int REFERENCES customers ON DELETE CASCADE);";
    let src = database(
        &c.source,
        &format!("{cascade} INSERT INTO customers SELECT generate_series(1, 100);"),
    );
    let d = database(
        &c.dest[0],
        &format!(
            "{cascade} INSERT INTO customers SELECT generate_series(1, 10);
             INSERT INTO notes SELECT g, g FROM generate_series(1, 10) g;"
        ),
    );
    let state = TempPath::new("cascade.state");
    let out = run(&[
        "table",
        "customers",
        "--schema",
        "nothing_else",
        "--truncate",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&d),
        "--state",
        state.arg(),
    ]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("0A000"), "{stderr}");
    assert_eq!(count(&c.dest[0], &d, "notes"), 10, "not cascaded away");
    assert_eq!(count(&c.dest[0], &d, "customers"), 10);
}

/// A referenced table (no row references it) whose DELETE trigger is disabled is emptied with
/// a DELETE: the trigger never fires (a disabled trigger refused the table, 0A000, "triggers
/// fire on its deletes").
#[test]
fn a_disabled_delete_trigger_does_not_keep_a_referenced_table_from_being_emptied() {
    let c = clusters();
    let schema = "CREATE TABLE p (id int PRIMARY KEY);
        CREATE TABLE r (id int PRIMARY KEY, p int REFERENCES p);";
    let src = database(
        &c.source,
        &format!("{schema} INSERT INTO p SELECT generate_series(1, 100);"),
    );
    let d = database(
        &c.dest[0],
        &format!(
            "{schema} INSERT INTO p SELECT generate_series(1, 10);
             CREATE FUNCTION said() RETURNS trigger LANGUAGE plpgsql AS
               $$ BEGIN RAISE EXCEPTION 'a disabled trigger fired'; END $$;
             CREATE TRIGGER said AFTER DELETE ON p FOR EACH ROW EXECUTE FUNCTION said();
             ALTER TABLE p DISABLE TRIGGER said;"
        ),
    );
    let state = TempPath::new("disabled-delete-trigger.state");
    let out = run(&[
        "table",
        "p",
        "--truncate",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&d),
        "--state",
        state.arg(),
    ]);
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[0], &d, "p"), 100);
}

/// One table's `--truncate` of a table others reference is refused by PostgreSQL (0A000), whose
/// hint says to `TRUNCATE … CASCADE` — which would empty the tables that reference it: copyman
/// refuses it while planning (a dry run exited 0), says what it does instead and how to empty
/// them together, and nothing changes anywhere.
#[test]
fn one_tables_refused_truncate_says_copyman_never_cascades() {
    let c = clusters();
    let src = database(
        &c.source,
        &format!(
            "{FK} INSERT INTO customers SELECT generate_series(1, 10);
             CREATE TABLE items (id int, o int REFERENCES orders);"
        ),
    );
    // Items there reference the orders: a TRUNCATE must name them too (only orders was said).
    let d = database(
        &c.dest[0],
        &format!(
            "{FK} INSERT INTO customers SELECT generate_series(1, 3);
             INSERT INTO orders VALUES (1, 1);
             CREATE TABLE items (id int, o int REFERENCES orders);"
        ),
    );
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&d));
    let args = [
        "table",
        "customers",
        "--truncate",
        "--from",
        &from,
        "--to",
        &to,
    ];
    for args in [&args[..], &[&args[..], &["--dry-run"]].concat()] {
        let out = run(args);
        assert_exit(&out, 1);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("0A000")
                && stderr.contains(
                    "\"public\".\"orders\" there references it (foreign key orders_customer_fkey): a TRUNCATE \
                     of it alone is refused, and copyman never truncates with CASCADE"
                )
                && stderr.contains(
                    r#"copyman table "customers" "public"."orders" "public"."items" --truncate"#
                ),
            "{stderr}"
        );
    }
    assert_eq!(count(&c.dest[0], &d, "customers"), 3);
    assert_eq!(count(&c.dest[0], &d, "orders"), 1);
    // From a file no job can copy them: not advised (first47 F3), the TRUNCATE that can.
    let file = TempPath::new("customers-fk.txt");
    std::fs::write(&file.0, "1\n2\n").unwrap();
    let out = run(&[
        "table",
        "customers",
        "--truncate",
        "--from",
        file.arg(),
        "--to",
        &to,
    ]);
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    assert!(
        !stderr.contains("copyman table")
            && stderr.contains(
                r#"(TRUNCATE "customers", "public"."orders", "public"."items"), then copy without --truncate"#
            ),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &d, "customers"), 3);
}

/// Rows of a table outside the job that come to reference a table after the job planned (so
/// planning could not refuse it): its `DELETE` fails there when its turn comes (23503), naming
/// the constraint, and the error says how to empty them together and what to copy again; the
/// table before it stays committed, nothing of the referenced table is lost.
#[test]
fn rows_that_reference_a_table_after_planning_fail_its_delete_and_say_what_to_do() {
    let c = clusters();
    const SCHEMA: &str = "CREATE TABLE big (id int, pad text);
        CREATE TABLE customers (id int PRIMARY KEY);
        CREATE TABLE orders (id int, customer int REFERENCES customers);";
    let src = database(
        &c.source,
        &format!(
            "{SCHEMA} INSERT INTO big SELECT g, repeat('x', 100) FROM generate_series(1, 5000) g;
             INSERT INTO customers SELECT generate_series(1, 10);"
        ),
    );
    let dst = database(
        &c.dest[0],
        &format!("{SCHEMA} INSERT INTO customers SELECT generate_series(1000, 1004);"),
    );
    let state = TempPath::new("fk-late.state");
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
    let args = [
        "table",
        "big",
        "customers",
        "--truncate",
        "--jobs",
        "1",
        "--from",
        &from,
        "--to",
        &to,
        "--state",
        state.arg(),
    ];
    // big (the largest) committed; then an order comes to reference a customer there.
    let paused = Paused::start(&args, "committed:1");
    c.dest[0]
        .connect(&dst)
        .batch_execute("INSERT INTO orders VALUES (1, 1000)")
        .unwrap();
    let out = paused.resume();
    assert_exit(&out, 4);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("23503")
            && stderr.contains("copyman empties no other table")
            && stderr.contains(r#"TRUNCATE ONLY "public"."customers", ONLY "public"."orders""#)
            && stderr.contains(r#"copy "public"."orders" there again yourself"#),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &dst, "big"), 5000);
    assert_eq!(count(&c.dest[0], &dst, "customers"), 5);
    assert_eq!(count(&c.dest[0], &dst, "orders"), 1);
}

/// Two runs that empty one table on the same two servers, given them in the other order, the
/// first paused holding the lock of the first destination it began: both finish. The
/// destinations' transactions take their locks in the order of what each server is, not of
/// `--to`; each run had held one server's lock and waited on the other's, a deadlock neither
/// server sees (here ended by --lock-timeout: exit 1).
#[test]
fn two_truncating_runs_given_the_destinations_in_other_orders_do_not_deadlock() {
    let c = clusters();
    const T: &str = "CREATE TABLE t (id int);";
    let src = database(
        &c.source,
        &format!("{T} INSERT INTO t SELECT generate_series(1, 100);"),
    );
    let (d1, d2) = (database(&c.dest[0], T), database(&c.dest[1], T));
    let from = c.source.conninfo(&src);
    let (to1, to2) = (c.dest[0].conninfo(&d1), c.dest[1].conninfo(&d2));
    let args = |first: &str, second: &str| -> Vec<String> {
        [
            "table",
            "t",
            "--truncate",
            "--lock-timeout",
            "5s",
            "--from",
            &from,
        ]
        .into_iter()
        .chain(["--to", first, "--to", second])
        .map(str::to_owned)
        .collect()
    };
    let (a, b) = (args(&to1, &to2), args(&to2, &to1));
    fn strs(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
    // Both planned before either takes a lock; then the first holds the first destination it
    // began while the other begins its own.
    let other = Paused::start(&strs(&b), "begun:0");
    let paused = Paused::start(&strs(&a), "begun:1");
    let other = other.resume_in_background();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let first = paused.resume();
    let second = other.join().unwrap();
    assert_exit(&first, 0);
    assert_exit(&second, 0);
    assert_eq!(count(&c.dest[0], &d1, "t"), 100);
    assert_eq!(count(&c.dest[1], &d2, "t"), 100);
}

/// A partitioned table that a table outside the job references (a DELETE of its rows would do
/// more than empty it: its partitions' own triggers) is emptied with a TRUNCATE, which that
/// foreign key makes certain to fail: refused while planning, its dry run too, before the job
/// copies anything (it committed the other tables first, then failed saying rows referenced it
/// where none did: exit 4).
#[test]
fn a_referenced_partitioned_table_a_job_cannot_empty_is_refused_while_planning() {
    let c = clusters();
    const SCHEMA: &str = "CREATE TABLE ppar (id int PRIMARY KEY) PARTITION BY RANGE (id);
        CREATE TABLE ppar_1 PARTITION OF ppar FOR VALUES FROM (0) TO (1000);
        CREATE TABLE pch (pid int REFERENCES ppar);
        CREATE TABLE other (id int);";
    let src = database(
        &c.source,
        &format!(
            "{SCHEMA} INSERT INTO ppar SELECT generate_series(1, 10);
             INSERT INTO other SELECT generate_series(1, 5);"
        ),
    );
    let d = database(&c.dest[0], SCHEMA);
    let state = TempPath::new("referenced-partitioned.state");
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&d));
    for dry_run in [true, false] {
        let mut args = vec!["table", "ppar", "other", "--truncate", "--jobs", "1"];
        args.extend(["--from", &from, "--to", &to, "--state", state.arg()]);
        if dry_run {
            args.push("--dry-run");
        }
        let out = run(&args);
        assert_exit(&out, 1);
        let said = text(&out.stderr) + &text(&out.stdout);
        assert!(
            said.contains("references it (foreign key") && said.contains("add \"public\".\"pch\""),
            "{said}"
        );
        assert_eq!(count(&c.dest[0], &d, "other"), 0, "nothing copied");
    }
}

/// The same for two truncating jobs, both planned before either begins, then let go together:
/// each takes its destinations' locks in the order of what each server is, so one waits for
/// the other on the first server (given the servers in other orders, each had held one and
/// waited on the other: about one round in three deadlocked, here ended by --lock-timeout).
#[test]
fn two_truncating_jobs_given_the_destinations_in_other_orders_do_not_deadlock() {
    let c = clusters();
    const T: &str = "CREATE TABLE t (id int, pad text);";
    let src = database(
        &c.source,
        &format!("{T} INSERT INTO t SELECT g, repeat('x', 100) FROM generate_series(1, 20000) g;"),
    );
    let (d1, d2) = (database(&c.dest[0], T), database(&c.dest[1], T));
    let from = c.source.conninfo(&src);
    let (to1, to2) = (c.dest[0].conninfo(&d1), c.dest[1].conninfo(&d2));
    let (state_a, state_b) = (
        TempPath::new("order-a.state"),
        TempPath::new("order-b.state"),
    );
    let job = |first: &str, second: &str, state: &TempPath| -> Vec<String> {
        let mut args = vec![
            "table",
            "t",
            "--truncate",
            "--lock-timeout",
            "5s",
            "--from",
            &from,
        ];
        args.extend(["--to", first, "--to", second, "--state", state.arg()]);
        args.into_iter().map(str::to_owned).collect()
    };
    fn strs(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
    for round in 0..3 {
        let (a, b) = (job(&to1, &to2, &state_a), job(&to2, &to1, &state_b));
        let a = Paused::start(&strs(&a), "planned");
        let b = Paused::start(&strs(&b), "planned");
        let (a, b) = (a.resume_in_background(), b.resume_in_background());
        let (a, b) = (a.join().unwrap(), b.join().unwrap());
        assert_exit(&a, 0);
        assert_exit(&b, 0);
        assert_eq!(count(&c.dest[0], &d1, "t"), 20000, "round {round}");
        assert_eq!(count(&c.dest[1], &d2, "t"), 20000, "round {round}");
    }
}

/// A destination's own table (the source has none) that references a copied one: emptying the
/// copied table first would take its rows too, which no server holds a copy of. A job and one
/// table refuse it while planning, saying so and advising what works — not "add it to the
/// job" (the source has no such table: exit 2) nor "copy it there again yourself". In a job
/// whose referenced table is a member of a foreign-key group, with that key acting on delete
/// (a `TRUNCATE` of it alone is then certain to be refused), the dry run refuses it too: it
/// exited 0, and the run failed (0A000) saying rows referenced an empty table.
#[test]
fn a_destinations_own_referencing_table_is_said_and_never_advised_into_the_job() {
    let c = clusters();
    let schema = "CREATE TABLE cat (id int PRIMARY KEY);
                  CREATE TABLE prod (id int PRIMARY KEY, cat_id int REFERENCES cat);";
    let fill = "INSERT INTO cat SELECT generate_series(1, 5);
                INSERT INTO prod SELECT g, 1 + g % 5 FROM generate_series(1, 50) g;";
    let src = database(&c.source, &format!("{schema} {fill}"));
    // Empty, its key cascading: the group's one-by-one emptying would TRUNCATE prod alone.
    let cascading = database(
        &c.dest[0],
        &format!("{schema} CREATE TABLE fav (prod_id int REFERENCES prod ON DELETE CASCADE);"),
    );
    // Holding a row of its own.
    let holding = database(
        &c.dest[1],
        &format!(
            "{schema} INSERT INTO cat VALUES (1); INSERT INTO prod VALUES (1, 1);
             CREATE TABLE fav (prod_id int REFERENCES prod, who text);
             INSERT INTO fav VALUES (1, 'only copy of this row');"
        ),
    );
    let from = c.source.conninfo(&src);
    let state = TempPath::new("own-referencing.state");
    for (cluster, db) in [(&c.dest[0], &cascading), (&c.dest[1], &holding)] {
        let to = cluster.conninfo(db);
        let job = |extra: &[&str]| {
            let mut args = vec![
                "table",
                "cat",
                "prod",
                "--from",
                &from,
                "--to",
                &to,
                "--truncate",
                "--state",
            ];
            args.push(state.arg());
            args.extend(extra);
            run(&args)
        };
        let dry = job(&["--dry-run"]);
        assert_exit(&dry, 1);
        let said = text(&dry.stdout) + &text(&dry.stderr);
        assert!(
            said.contains(
                r#""public"."fav" there, a table of that destination's own (the source has none)"#
            ) && !said.contains("to the job")
                && !said.contains("again yourself"),
            "{said}"
        );
        assert_exit(&job(&[]), 1);
        let _ = std::fs::remove_file(&state.0);
    }
    assert_eq!(count(&c.dest[0], &cascading, "prod"), 0);
    assert_eq!(count(&c.dest[1], &holding, "fav"), 1);
    // One table: the same words.
    let out = run(&[
        "table",
        "prod",
        "--from",
        &from,
        "--to",
        &c.dest[1].conninfo(&holding),
        "--truncate",
    ]);
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(r#""public"."fav" is that destination's own (the source has none)"#)
            && !stderr.contains("copy them as a job"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[1], &holding, "fav"), 1);
}
