//! The job layer against real clusters: selection, one snapshot under a concurrent writer,
//! fan-out to three destinations verified, resume from the state file, bad input.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use common::*;
use copyman_job::job::{self, Event, JobError, Options, Server, Status};
use copyman_job::select::Selection;
use copyman_job::sql::TableName;
use copyman_sync::Connection;

fn names(plan: &job::Plan) -> Vec<String> {
    plan.tables.iter().map(|t| t.table.to_string()).collect()
}

const SCHEMA: &str = "
    CREATE SCHEMA sales;
    CREATE TABLE public.small (id int PRIMARY KEY, note text);
    CREATE TABLE public.big (id int PRIMARY KEY, note text);
    CREATE TABLE public.\"Mixed\" (id int);
    CREATE TABLE sales.orders (id int, amount numeric(12,2));
    CREATE TABLE sales.orders_old (id int);
    CREATE TABLE public.events (id int, at date) PARTITION BY RANGE (at);
    CREATE TABLE public.events_2024 PARTITION OF public.events
        FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
    CREATE TABLE public.events_2025 PARTITION OF public.events
        FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
    CREATE VIEW public.v_small AS SELECT * FROM public.small;
    CREATE MATERIALIZED VIEW public.mv AS SELECT 1 AS x;
    INSERT INTO public.small SELECT g, 'n' || g FROM generate_series(1, 10) g;
    INSERT INTO public.big SELECT g, repeat('x', 100) FROM generate_series(1, 5000) g;
    INSERT INTO sales.orders SELECT g, g * 1.5 FROM generate_series(1, 300) g;
    INSERT INTO public.events SELECT g, date '2024-06-01' + g FROM generate_series(1, 400) g;
";

#[test]
fn selection_follows_pg_dump_patterns_and_copies_partitions_through_their_root() {
    let (source, dests, _, _) = setup(SCHEMA, SCHEMA, 1);
    let options = Options::new(state_path("selection"));
    let plan_of = |selection: Selection| job::plan(&source, &dests, &selection, &options);

    // Everything: ordinary and partitioned tables, partitions only through their root, no views;
    // largest first.
    let all = plan_of(Selection::default()).unwrap();
    let mut got = names(&all);
    assert_eq!(got[0], r#""public"."big""#, "largest first: {got:?}");
    got.sort();
    assert_eq!(
        got,
        [
            r#""public"."Mixed""#,
            r#""public"."big""#,
            r#""public"."events""#,
            r#""public"."small""#,
            r#""sales"."orders""#,
            r#""sales"."orders_old""#,
        ]
    );
    // Planning says how far it is, table by table (thousands take a while).
    let said = Mutex::new(Vec::new());
    job::plan_with(&source, &dests, &Selection::default(), &options, &|event| {
        if let Event::Planning { done, total } = event {
            said.lock().unwrap().push((done, total));
        }
    })
    .unwrap();
    assert_eq!(
        said.into_inner().unwrap(),
        (0..6).map(|done| (done, 6)).collect::<Vec<_>>()
    );
    // A partitioned root is read with COPY (SELECT …).
    let events = all
        .tables
        .iter()
        .find(|t| t.table.to_string() == r#""public"."events""#)
        .unwrap();
    assert!(events.send.starts_with("COPY (SELECT"), "{}", events.send);

    // --schema, --table patterns (unqualified: the search path), --exclude-table.
    let sel = Selection {
        schemas: vec!["SALES".into()],
        include: vec!["sm*".into()],
        exclude: vec!["sales.*_old".into()],
        ..Selection::default()
    };
    let mut got = names(&plan_of(sel).unwrap());
    got.sort();
    assert_eq!(got, [r#""public"."small""#, r#""sales"."orders""#]);

    // Quoted names keep their case; ? is one character.
    let sel = Selection {
        include: vec![r#""Mixed""#.into(), "public.bi?".into()],
        ..Selection::default()
    };
    let mut got = names(&plan_of(sel).unwrap());
    got.sort();
    assert_eq!(got, [r#""public"."Mixed""#, r#""public"."big""#]);

    // Views and materialized views only when named; a pattern never matches them.
    let sel = Selection {
        include: vec!["v_*".into(), "mv".into()],
        ..Selection::default()
    };
    assert!(matches!(plan_of(sel), Err(JobError::Empty(_))));
    let sel = Selection {
        tables: vec![TableName::parse("v_small").unwrap()],
        include: vec!["small".into()],
        ..Selection::default()
    };
    let mut got = names(&plan_of(sel).unwrap());
    got.sort();
    assert_eq!(got, [r#""public"."small""#, r#""public"."v_small""#]);

    // A named table that does not exist, and a selection that matches nothing.
    let sel = Selection {
        tables: vec![TableName::parse("nope").unwrap()],
        ..Selection::default()
    };
    let err = plan_of(sel).unwrap_err();
    assert!(
        matches!(&err, JobError::NotOnSource(e) if e.sqlstate.as_deref() == Some("42P01")),
        "{err}"
    );
    assert!(err.to_string().contains("nope"), "{err}");
    let sel = Selection {
        include: vec!["zzz*".into()],
        ..Selection::default()
    };
    let err = plan_of(sel).unwrap_err();
    assert!(err.to_string().contains("no table matches"), "{err}");
}

/// A job over whole schemas copies tables' rows; what pg_dump's data would bring besides — a
/// materialized view's rows, a sequence no copied column takes values from — is said in the
/// plan's notes with what to do (`REFRESH MATERIALIZED VIEW`, `setval`), not left out without a
/// word. A serial's sequence, and one a copied table's default takes values from, are carried
/// (not said); one excluded, or a job by table names, says nothing of them.
#[test]
fn a_schema_job_says_what_it_leaves_behind_materialized_views_and_lone_sequences() {
    let schema = "
        CREATE SCHEMA shop;
        CREATE TABLE shop.orders (id serial PRIMARY KEY, amount int);
        CREATE SEQUENCE shop.ticket_no;
        CREATE TABLE shop.tickets (no int8 DEFAULT nextval('shop.ticket_no'), what text);
        CREATE SEQUENCE shop.invoice_no START 1000;
        CREATE SEQUENCE public.elsewhere;
        CREATE MATERIALIZED VIEW shop.totals AS SELECT sum(amount) AS total FROM shop.orders;
        INSERT INTO shop.orders (amount) SELECT g FROM generate_series(1, 10) g;";
    let (source, dests, _, _) = setup(schema, schema, 1);
    let options = Options::new(state_path("uncopied"));
    let notes = |selection: Selection| -> String {
        job::plan(&source, &dests, &selection, &options)
            .unwrap()
            .notes
            .join("\n")
    };
    let said = notes(Selection {
        schemas: vec!["shop".into()],
        ..Selection::default()
    });
    assert!(
        said.contains(r#"materialized view "shop"."totals": not copied"#)
            && said.contains(r#"REFRESH MATERIALIZED VIEW "shop"."totals""#),
        "{said}"
    );
    assert!(
        said.contains(r#"sequence "shop"."invoice_no": not carried"#)
            && said.contains(r#"SELECT setval('"shop"."invoice_no"', n)"#),
        "{said}"
    );
    for carried in ["ticket_no", "orders_id_seq", "elsewhere"] {
        assert!(!said.contains(carried), "{carried}: {said}");
    }
    // Excluded, it is not said; a job by names says nothing of the schema's other relations.
    let said = notes(Selection {
        schemas: vec!["shop".into()],
        exclude: vec!["shop.invoice_no".into(), "shop.totals".into()],
        ..Selection::default()
    });
    assert!(
        !said.contains("invoice_no") && !said.contains("totals"),
        "{said}"
    );
    let said = notes(Selection {
        tables: vec![TableName::parse("shop.orders").unwrap()],
        ..Selection::default()
    });
    assert!(
        !said.contains("invoice_no") && !said.contains("totals"),
        "{said}"
    );
    // The default selection (every schema) names the other schema's lone sequence too.
    let said = notes(Selection::default());
    assert!(said.contains(r#""public"."elsewhere""#), "{said}");
}

const ACCOUNTS: &str = "
    CREATE TABLE acct_a (id int PRIMARY KEY, amount int8 NOT NULL, pad text);
    CREATE TABLE acct_b (id int PRIMARY KEY, amount int8 NOT NULL, pad text);
";

#[test]
fn one_snapshot_keeps_an_invariant_a_concurrent_writer_maintains() {
    let fill = "INSERT INTO acct_a SELECT g, 1000, repeat('p', 200) FROM generate_series(1, 3000) g;
                INSERT INTO acct_b SELECT g, 1000, repeat('p', 200) FROM generate_series(1, 3000) g;";
    let (source, dests, src_db, dbs) = setup(&format!("{ACCOUNTS}{fill}"), ACCOUNTS, 3);
    let c = clusters();
    let total: i64 = 2 * 3000 * 1000;

    // The writer moves amounts from one table to the other, one transaction per move.
    let stop = Arc::new(AtomicBool::new(false));
    let moves = Arc::new(AtomicU64::new(0));
    let writer = {
        let (stop, moves) = (stop.clone(), moves.clone());
        let mut client = c.source.connect(&src_db);
        thread::spawn(move || {
            let mut k = 0i32;
            while !stop.load(Ordering::SeqCst) {
                k = k % 3000 + 1;
                let mut tx = client.transaction().unwrap();
                tx.execute("UPDATE acct_a SET amount = amount - 7 WHERE id = $1", &[&k])
                    .unwrap();
                tx.execute("UPDATE acct_b SET amount = amount + 7 WHERE id = $1", &[&k])
                    .unwrap();
                tx.commit().unwrap();
                moves.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    // Let the writer get going, then copy slowly (a read-rate cap) so that it writes throughout.
    while moves.load(Ordering::SeqCst) < 50 {
        thread::yield_now();
    }
    let options = Options {
        jobs: 2,
        max_rate: Some(800_000),
        ..Options::new(state_path("snapshot"))
    };
    let plan = job::plan(&source, &dests, &Selection::default(), &options).unwrap();
    assert!(plan.snapshot.is_some());
    let before = moves.load(Ordering::SeqCst);
    let report = job::run(plan, &source, &dests, &options, &|_| {}).unwrap();
    let during = moves.load(Ordering::SeqCst) - before;
    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    assert!(report.succeeded(), "{report:#?}");
    assert!(
        during > 10,
        "the writer wrote during the copy ({during} moves)"
    );
    for (d, db) in c.dest.iter().zip(&dbs) {
        let sum: i64 = d
            .connect(db)
            .query_one(
                "SELECT ((SELECT sum(amount) FROM acct_a) + (SELECT sum(amount) FROM acct_b))::int8",
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(sum, total, "the invariant holds on {db}");
    }
}

const TYPES: &str = "
    CREATE TABLE t1 (id int8 PRIMARY KEY, name text, at timestamptz, price numeric(12,2),
                     tags text[], f float8, b bytea, j jsonb);
    CREATE TABLE t2 (id int, total int GENERATED ALWAYS AS (id * 2) STORED, note text);
    CREATE TABLE t3 (id int);
";

#[test]
fn three_destinations_get_every_table_row_for_row_verified() {
    let fill = "
        INSERT INTO t1 SELECT g, 'name ' || g || E'\\t\\\\ \"q\"', timestamptz '2024-01-01 00:00+00' + g * interval '1 min',
            g * 1.25, ARRAY['a', 'b,' || g], g / 3.0, decode(md5(g::text), 'hex'),
            jsonb_build_object('k', g) FROM generate_series(1, 2000) g;
        INSERT INTO t2 (id, note) SELECT g, NULL FROM generate_series(1, 500) g;";
    let (source, dests, src_db, dbs) = setup(&format!("{TYPES}{fill}"), TYPES, 3);
    let options = Options {
        jobs: 2,
        truncate: true,
        verify: true,
        ..Options::new(state_path("three"))
    };
    let events = Mutex::new(Vec::new());
    let plan = job::plan(&source, &dests, &Selection::default(), &options).unwrap();
    assert_eq!(plan.tables.len(), 3);
    // --truncate: TRUNCATE and COPY … FREEZE in one transaction; binary where types match.
    for t in &plan.tables {
        assert_eq!(
            t.format,
            copyman_job::sql::Format::Binary,
            "{}",
            t.format_reason
        );
        for d in &t.destinations {
            assert!(
                matches!(
                    d,
                    job::DestPlan::Copy {
                        truncate: true,
                        freeze: true,
                        ..
                    }
                ),
                "{d:?}"
            );
        }
        assert!(t.receive_for(true).ends_with("(FORMAT binary, FREEZE)"));
    }
    let report = job::run(plan, &source, &dests, &options, &|e| {
        events.lock().unwrap().push(e)
    })
    .unwrap();
    assert!(report.succeeded(), "{report:#?}");
    let c = clusters();
    for table in ["t1", "t2", "t3"] {
        let expected = digest(&c.source, &src_db, table);
        for (d, db) in c.dest.iter().zip(&dbs) {
            assert_eq!(digest(d, db, table), expected, "{table} on {db}");
        }
        let t = report
            .tables
            .iter()
            .find(|t| t.table.name.as_str() == table)
            .unwrap();
        for d in &t.destinations {
            assert_eq!(d.status, Status::Committed);
            assert_eq!(d.verified, Some(true), "{t:#?}");
            assert_eq!(d.rows, Some(expected.0 as u64));
        }
    }
    // Events: the start, each table started and finished once.
    let events = events.into_inner().unwrap();
    assert!(matches!(events[0], Event::Started { tables: 3, .. }));
    let finished = events
        .iter()
        .filter(|e| matches!(e, Event::TableFinished { .. }))
        .count();
    assert_eq!(finished, 3);
    // The state file records every table on every destination; a resumed run copies nothing.
    let resume = Options {
        resume: true,
        ..options.clone()
    };
    let plan = job::plan(&source, &dests, &Selection::default(), &resume).unwrap();
    let report = job::run(plan, &source, &dests, &resume, &|_| {}).unwrap();
    assert!(report.succeeded());
    assert!(
        report.tables.iter().all(|t| t
            .destinations
            .iter()
            .all(|d| d.status == Status::AlreadyDone)),
        "{report:#?}"
    );
    assert!(!report.committed_any());
    let _ = std::fs::remove_file(&options.state);
}

#[test]
fn a_table_missing_on_a_destination_stops_the_job_or_with_keep_going_only_that_table() {
    let (source, dests, _, dbs) = setup(
        "CREATE TABLE a (id int); CREATE TABLE b (id int); CREATE TABLE c (id int, x int);
         INSERT INTO a SELECT generate_series(1, 100); INSERT INTO b SELECT generate_series(1, 50);
         INSERT INTO c SELECT g, g FROM generate_series(1, 10) g;",
        "CREATE TABLE a (id int); CREATE TABLE c (id int, x int);",
        2,
    );
    let c = clusters();
    // Destination 2 lacks b; destination 1 has c with other columns.
    c.dest[1]
        .connect(&dbs[1])
        .batch_execute("CREATE TABLE b (id int)")
        .unwrap();
    c.dest[0]
        .connect(&dbs[0])
        .batch_execute("ALTER TABLE c RENAME COLUMN x TO y")
        .unwrap();
    let options = Options::new(state_path("missing"));
    let plan = job::plan(&source, &dests, &Selection::default(), &options).unwrap();
    let report = job::run(plan, &source, &dests, &options, &|_| {}).unwrap();
    assert!(!report.succeeded());
    let stopped = report.stopped.clone().unwrap();
    assert!(stopped.contains("destination"), "{stopped}");
    // Nothing anywhere: the job stopped before copying.
    for (d, db) in c.dest[..2].iter().zip(&dbs) {
        assert_eq!(digest(d, db, "a").0, 0);
    }
    let b = report
        .tables
        .iter()
        .find(|t| t.table.name.as_str() == "b")
        .unwrap();
    let error = b.destinations[0].error.as_ref().unwrap();
    assert_eq!(error.sqlstate.as_deref(), Some("42P01"), "{error}");
    assert!(error.message.contains(r#""public"."b""#), "{error}");

    // --keep-going: a goes everywhere, b only to destination 2, c only to destination 2.
    let options = Options {
        keep_going: true,
        ..Options::new(state_path("missing-kg"))
    };
    let plan = job::plan(&source, &dests, &Selection::default(), &options).unwrap();
    let report = job::run(plan, &source, &dests, &options, &|_| {}).unwrap();
    assert!(!report.succeeded());
    assert_eq!(digest(&c.dest[0], &dbs[0], "a").0, 100);
    assert_eq!(digest(&c.dest[1], &dbs[1], "a").0, 100);
    assert_eq!(digest(&c.dest[1], &dbs[1], "b").0, 50);
    assert_eq!(digest(&c.dest[1], &dbs[1], "c").0, 10);
    assert_eq!(digest(&c.dest[0], &dbs[0], "c").0, 0);
    let cr = report
        .tables
        .iter()
        .find(|t| t.table.name.as_str() == "c")
        .unwrap();
    assert_eq!(cr.destinations[0].status, Status::Failed);
    let error = cr.destinations[0].error.as_ref().unwrap();
    assert!(error.message.contains("lacks"), "{error}");
    // The ways out a job has: mend the destination's table, first (a table linked to others
    // by a foreign key cannot be copied alone with --truncate), or copy it alone (a job copies
    // whole tables: --columns is for one table copied alone).
    assert!(
        error.message.contains(
            "make its columns fit the source's there (ALTER TABLE …: a column it lacks added"
        ) && error
            .message
            .contains("copy it alone (copyman table \"public\".\"c\" --columns"),
        "{error}"
    );
    // A resume with the problems fixed copies only what is missing.
    c.dest[0]
        .connect(&dbs[0])
        .batch_execute("CREATE TABLE b (id int); ALTER TABLE c RENAME COLUMN y TO x")
        .unwrap();
    let resume = Options {
        resume: true,
        ..options.clone()
    };
    let plan = job::plan(&source, &dests, &Selection::default(), &resume).unwrap();
    let report = job::run(plan, &source, &dests, &resume, &|_| {}).unwrap();
    assert!(report.succeeded(), "{report:#?}");
    for (d, db) in c.dest[..2].iter().zip(&dbs) {
        assert_eq!(digest(d, db, "a").0, 100, "a copied once");
        assert_eq!(digest(d, db, "b").0, 50);
        assert_eq!(digest(d, db, "c").0, 10);
    }
    let a = report
        .tables
        .iter()
        .find(|t| t.table.name.as_str() == "a")
        .unwrap();
    assert!(
        a.destinations
            .iter()
            .all(|d| d.status == Status::AlreadyDone)
    );
}

/// Destination 1 refuses a row mid-COPY (a CHECK), destination 2 refuses the COPY only at its
/// end (a statement trigger, so after destination 0's server may have accepted its CopyDone).
const REFUSING: [&str; 3] = [
    "",
    "ALTER TABLE t ADD CHECK (id <> 700)",
    "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS \
     $$ BEGIN RAISE EXCEPTION 'refused at the end'; END $$; \
     CREATE TRIGGER refuse AFTER INSERT ON t FOR EACH STATEMENT EXECUTE FUNCTION refuse();",
];

#[test]
fn destinations_that_refuse_mid_copy_or_at_the_end_roll_back_all_or_only_themselves() {
    for keep_going in [false, true] {
        let (source, dests, _, dbs) = setup(
            "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 1000);",
            "CREATE TABLE t (id int);",
            3,
        );
        let c = clusters();
        for ((d, db), sql) in c.dest.iter().zip(&dbs).zip(REFUSING) {
            d.connect(db).batch_execute(sql).unwrap();
        }
        let options = Options {
            keep_going,
            ..Options::new(state_path(&format!("refusing-{keep_going}")))
        };
        let plan = job::plan(&source, &dests, &Selection::default(), &options).unwrap();
        let report = job::run(plan, &source, &dests, &options, &|_| {}).unwrap();
        assert!(!report.succeeded());
        let t = &report.tables[0];
        let statuses: Vec<Status> = t.destinations.iter().map(|d| d.status).collect();
        let sqlstate = |d: usize| {
            t.destinations[d]
                .error
                .as_ref()
                .and_then(|e| e.sqlstate.clone())
        };
        match keep_going {
            // The first fault ends the copy: nothing is committed anywhere. (Destination 2
            // refuses on its own if the copy reached its end before destination 1's error was
            // read, or is rolled back with the others if not.)
            false => {
                assert_eq!(
                    statuses[..2],
                    [Status::RolledBack, Status::Failed],
                    "{t:#?}"
                );
                assert!(
                    statuses[2] == Status::RolledBack || sqlstate(2).as_deref() == Some("P0001"),
                    "{t:#?}"
                );
                assert_eq!(digest(&c.dest[0], &dbs[0], "t").0, 0);
            }
            // The others go on: destination 0 commits every row, each refusal fails only itself.
            true => {
                assert_eq!(
                    statuses,
                    [Status::Committed, Status::Failed, Status::Failed],
                    "{t:#?}"
                );
                assert_eq!(digest(&c.dest[0], &dbs[0], "t").0, 1000);
                assert_eq!(sqlstate(2).as_deref(), Some("P0001"), "{t:#?}");
            }
        }
        assert_eq!(sqlstate(1).as_deref(), Some("23514"), "{t:#?}");
        for (d, db) in c.dest.iter().zip(&dbs).skip(1) {
            assert_eq!(
                digest(d, db, "t").0,
                0,
                "a refusing destination holds nothing"
            );
        }
    }
}

#[test]
fn a_lock_held_on_a_destination_fails_that_table_with_its_sqlstate() {
    let sql = "CREATE TABLE free (id int); CREATE TABLE locked (id int);";
    let (source, mut dests, _, dbs) = setup(
        &format!(
            "{sql} INSERT INTO free SELECT generate_series(1, 10); INSERT INTO locked SELECT 1;"
        ),
        sql,
        2,
    );
    let c = clusters();
    // The job's sessions give up waiting for a lock after 200 ms.
    let conninfo = c.dest[1].conninfo(&dbs[1]);
    dests[1].connect = Arc::new(move || {
        let mut conn = Connection::connect_str(&conninfo)?;
        conn.execute("SET lock_timeout = '200ms'")?;
        Ok(conn)
    });
    let mut holder = c.dest[1].connect(&dbs[1]);
    let mut tx = holder.transaction().unwrap();
    tx.batch_execute("LOCK TABLE locked IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let options = Options {
        keep_going: true,
        truncate: true,
        jobs: 1,
        ..Options::new(state_path("locked"))
    };
    let plan = job::plan(&source, &dests, &Selection::default(), &options);
    // The catalog lookup does not take the table's lock: planning goes through.
    let plan = plan.unwrap();
    let report = job::run(plan, &source, &dests, &options, &|_| {}).unwrap();
    tx.rollback().unwrap();
    let locked = report
        .tables
        .iter()
        .find(|t| t.table.name.as_str() == "locked")
        .unwrap();
    assert_eq!(locked.destinations[0].status, Status::Committed);
    assert_eq!(locked.destinations[1].status, Status::Failed);
    let error = locked.destinations[1].error.as_ref().unwrap();
    assert_eq!(error.sqlstate.as_deref(), Some("55P03"), "{error}");
    let free = report
        .tables
        .iter()
        .find(|t| t.table.name.as_str() == "free")
        .unwrap();
    assert!(
        free.destinations
            .iter()
            .all(|d| d.status == Status::Committed)
    );
    assert_eq!(digest(&c.dest[1], &dbs[1], "free").0, 10);
    assert_eq!(digest(&c.dest[1], &dbs[1], "locked").0, 0);
}

#[test]
fn a_source_that_cannot_export_a_snapshot_is_refused_unless_no_snapshot() {
    let (_, dests, src_db, _) = setup(
        "CREATE TABLE a (id int); INSERT INTO a VALUES (1);",
        "CREATE TABLE a (id int);",
        1,
    );
    let c = clusters();
    // A role that may not call pg_export_snapshot().
    let role = format!("nosnap_{}", src_db);
    c.source
        .connect(&src_db)
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN PASSWORD 'pw';
             GRANT SELECT ON a TO {role};
             REVOKE EXECUTE ON FUNCTION pg_export_snapshot() FROM PUBLIC;"
        ))
        .unwrap();
    let conninfo = format!(
        "host={} port={} user={role} password=pw dbname={src_db}",
        c.source.host(),
        c.source.port()
    );
    let source = Server {
        name: "restricted source".into(),
        connect: Arc::new(move || Connection::connect_str(&conninfo)),
        own_settings: None,
    };
    let options = Options::new(state_path("nosnap"));
    let err = job::plan(&source, &dests, &Selection::default(), &options).unwrap_err();
    assert!(matches!(err, JobError::Snapshot(_)), "{err}");
    assert!(err.to_string().contains("--no-snapshot"), "{err}");
    assert!(err.to_string().contains("42501"), "{err}");
    let options = Options {
        snapshot: false,
        ..options
    };
    let plan = job::plan(&source, &dests, &Selection::default(), &options).unwrap();
    let report = job::run(plan, &source, &dests, &options, &|_| {}).unwrap();
    assert!(report.succeeded(), "{report:#?}");
    c.source
        .connect(&src_db)
        .batch_execute("GRANT EXECUTE ON FUNCTION pg_export_snapshot() TO PUBLIC")
        .unwrap();
}

#[test]
fn a_table_failing_mid_copy_rolls_back_the_tables_in_flight_and_starts_no_more() {
    let schema = "CREATE TABLE slow (id int PRIMARY KEY, pad text);
                  CREATE TABLE bad (id int PRIMARY KEY, pad text);
                  CREATE TABLE s1 (id int); CREATE TABLE s2 (id int);";
    let (source, dests, _, dbs) = setup(
        &format!(
            "{schema}
             INSERT INTO slow SELECT g, repeat('s', 200) FROM generate_series(1, 6000) g;
             INSERT INTO bad SELECT g, repeat('b', 100) FROM generate_series(1, 1000) g;
             INSERT INTO s1 VALUES (1); INSERT INTO s2 VALUES (1);"
        ),
        schema,
        2,
    );
    let c = clusters();
    // Destination 2 already has a row of bad: the copy hits a unique violation there.
    c.dest[1]
        .connect(&dbs[1])
        .batch_execute("INSERT INTO bad VALUES (500, 'x')")
        .unwrap();
    let options = Options {
        jobs: 2,
        max_rate: Some(400_000),
        ..Options::new(state_path("midcopy"))
    };
    let plan = job::plan(&source, &dests, &Selection::default(), &options).unwrap();
    assert_eq!(
        names(&plan)[..2],
        [r#""public"."slow""#, r#""public"."bad""#]
    );
    let report = job::run(plan, &source, &dests, &options, &|_| {}).unwrap();
    let stopped = report.stopped.clone().unwrap();
    assert!(
        stopped.contains(r#""public"."bad""#)
            && stopped.contains("destination 2")
            && stopped.contains("23505"),
        "{stopped}"
    );
    let by = |name: &str| {
        report
            .tables
            .iter()
            .find(|t| t.table.name.as_str() == name)
            .unwrap()
            .destinations
            .iter()
            .map(|d| d.status)
            .collect::<Vec<_>>()
    };
    assert_eq!(by("bad"), [Status::RolledBack, Status::Failed]);
    assert_eq!(
        by("slow"),
        [Status::RolledBack, Status::RolledBack],
        "{report:#?}"
    );
    assert_eq!(by("s1"), [Status::NotStarted, Status::NotStarted]);
    for (d, db) in c.dest[..2].iter().zip(&dbs) {
        assert_eq!(digest(d, db, "slow").0, 0);
    }
    assert_eq!(digest(&c.dest[0], &dbs[0], "bad").0, 0);
    assert_eq!(digest(&c.dest[1], &dbs[1], "bad").0, 1);
    let recorded = copyman_job::state::read(&options.state).unwrap();
    assert!(recorded.done.is_empty(), "{recorded:?}");
}

const SPLIT: &str = "CREATE TABLE big (id int PRIMARY KEY, pad text, n numeric);
                     CREATE TABLE small (id int);";

#[test]
fn a_large_table_split_into_ctid_ranges_is_copied_whole_and_verified() {
    let (source, dests, src_db, dbs) = setup(
        &format!(
            "{SPLIT}
             INSERT INTO big SELECT g, repeat('r', 200), g / 7.0 FROM generate_series(1, 4000) g;
             DELETE FROM big WHERE id % 10 = 0;
             INSERT INTO small SELECT generate_series(1, 5);"
        ),
        SPLIT,
        2,
    );
    let c = clusters();
    // (A table emptied first is copied whole: job_faults.rs.)
    let options = Options {
        jobs: 4,
        verify: true,
        split_larger_than: Some(100_000),
        ..Options::new(state_path("split"))
    };
    let plan = job::plan(&source, &dests, &Selection::default(), &options).unwrap();
    let big = &plan.tables[0];
    assert_eq!(big.table.name.as_str(), "big");
    assert_eq!(big.ranges.len(), 4, "{:?}", big.ranges);
    assert!(big.ranges[1].contains("ctid >= '("), "{}", big.ranges[1]);
    assert!(
        plan.tables[1].ranges.is_empty(),
        "a small table is not split"
    );
    let report = job::run(plan, &source, &dests, &options, &|_| {}).unwrap();
    assert!(report.succeeded(), "{report:#?}");
    let expected = digest(&c.source, &src_db, "big");
    assert_eq!(expected.0, 3600);
    for (d, db) in c.dest[..2].iter().zip(&dbs) {
        assert_eq!(digest(d, db, "big"), expected, "on {db}");
    }
    let big = &report.tables[0];
    assert_eq!(big.source_rows, Some(3600));
    for d in &big.destinations {
        assert_eq!(d.status, Status::Committed);
        assert_eq!(d.rows, Some(3600));
        assert_eq!(d.verified, Some(true));
    }

    // A range that fails on one destination: nothing of the table is committed anywhere.
    let (source, dests, _, dbs) = setup(
        &format!(
            "{SPLIT} INSERT INTO big SELECT g, repeat('r', 200), g FROM generate_series(1, 4000) g;"
        ),
        SPLIT,
        2,
    );
    c.dest[1]
        .connect(&dbs[1])
        .batch_execute("INSERT INTO big VALUES (3999, 'x', 0)")
        .unwrap();
    let options = Options {
        split_larger_than: Some(100_000),
        ..Options::new(state_path("split-fail"))
    };
    let plan = job::plan(&source, &dests, &Selection::default(), &options).unwrap();
    let report = job::run(plan, &source, &dests, &options, &|_| {}).unwrap();
    assert!(!report.succeeded());
    let big = report
        .tables
        .iter()
        .find(|t| t.table.name.as_str() == "big")
        .unwrap();
    assert_eq!(big.destinations[1].status, Status::Failed, "{big:#?}");
    let error = big.destinations[1].error.as_ref().unwrap();
    assert_eq!(error.sqlstate.as_deref(), Some("23505"), "{error}");
    assert!(error.message.starts_with("range "), "{error}");
    assert_eq!(big.destinations[0].status, Status::RolledBack, "{big:#?}");
    assert_eq!(digest(&c.dest[0], &dbs[0], "big").0, 0);
    assert_eq!(digest(&c.dest[1], &dbs[1], "big").0, 1);
}

#[test]
fn two_phase_commit_per_table_records_each_decision_and_leaves_nothing_prepared() {
    let schema = "CREATE TABLE p1 (id int PRIMARY KEY, pad text); CREATE TABLE p2 (id int);";
    let (source, dests, src_db, dbs) = setup(
        &format!(
            "{schema} INSERT INTO p1 SELECT g, repeat('p', 200) FROM generate_series(1, 2000) g;
             INSERT INTO p2 SELECT generate_series(1, 10);"
        ),
        schema,
        2,
    );
    let log = state_path("decisions.log");
    let options = Options {
        two_phase: Some(log.clone()),
        split_larger_than: Some(100_000),
        ..Options::new(state_path("two-phase"))
    };
    let plan = job::plan(&source, &dests, &Selection::default(), &options).unwrap();
    assert!(!plan.tables[0].ranges.is_empty(), "p1 is split");
    let report = job::run(plan, &source, &dests, &options, &|_| {}).unwrap();
    assert!(report.succeeded(), "{report:#?}");
    let c = clusters();
    for table in ["p1", "p2"] {
        let expected = digest(&c.source, &src_db, table);
        for (d, db) in c.dest[..2].iter().zip(&dbs) {
            assert_eq!(digest(d, db, table), expected);
        }
    }
    for d in &c.dest[..2] {
        let prepared: i64 = d
            .connect("postgres")
            .query_one("SELECT count(*) FROM pg_prepared_xacts", &[])
            .unwrap()
            .get(0);
        assert_eq!(prepared, 0);
    }
    // One decision per table: p1's names every range on every destination.
    let decisions = std::fs::read_to_string(&log).unwrap();
    // Each table's run: its start, then its decision.
    let lines: Vec<&str> = decisions
        .lines()
        .filter(|l| l.starts_with("commit "))
        .collect();
    assert_eq!(lines.len(), 2, "{decisions}");
    assert_eq!(
        decisions
            .lines()
            .filter(|l| l.starts_with("begin "))
            .count(),
        2
    );
    let most = lines
        .iter()
        .map(|l| l.split_whitespace().count() - 2)
        .max()
        .unwrap();
    assert!(most >= 4, "{decisions}");
    let _ = std::fs::remove_file(&log);
}

#[test]
fn an_interrupt_rolls_back_the_tables_in_flight_and_keeps_those_committed() {
    let schema = "CREATE TABLE slow_a (id int PRIMARY KEY, pad text);
                  CREATE TABLE slow_b (id int PRIMARY KEY, pad text);
                  CREATE TABLE tiny (id int);";
    let (source, dests, _, dbs) = setup(
        &format!(
            "{schema}
             INSERT INTO slow_a SELECT g, repeat('a', 200) FROM generate_series(1, 3000) g;
             INSERT INTO slow_b SELECT g, repeat('b', 200) FROM generate_series(1, 3000) g;
             INSERT INTO tiny VALUES (1);"
        ),
        schema,
        2,
    );
    let c = clusters();
    let options = Options {
        jobs: 3,
        max_rate: Some(50_000),
        ..Options::new(state_path("interrupt"))
    };
    let plan = job::plan(&source, &dests, &Selection::default(), &options).unwrap();
    // Interrupted once tiny committed and the slow tables are under way; every backend a table
    // runs on is announced, and every worker says when it ends its transactions.
    let backends = Mutex::new(Vec::new());
    let endings = AtomicU64::new(0);
    let tiny_done = AtomicBool::new(false);
    let report = job::run(plan, &source, &dests, &options, &|event| match event {
        Event::Backend { side, pid, .. } => backends.lock().unwrap().push((side, pid)),
        Event::Ending { .. } => {
            endings.fetch_add(1, Ordering::SeqCst);
        }
        Event::TableFinished { report, .. } if report.table.name.as_str() == "tiny" => {
            tiny_done.store(true, Ordering::SeqCst);
        }
        Event::Progress { bytes, .. } if bytes > 0 && tiny_done.load(Ordering::SeqCst) => {
            options.interrupt.interrupt("interrupted by a test");
        }
        _ => {}
    })
    .unwrap();
    assert_eq!(report.interrupted.as_deref(), Some("interrupted by a test"));
    assert!(!report.succeeded());
    let by = |name: &str| {
        report
            .tables
            .iter()
            .find(|t| t.table.name.as_str() == name)
            .unwrap()
            .destinations
            .clone()
    };
    assert!(by("tiny").iter().all(|d| d.status == Status::Committed));
    for name in ["slow_a", "slow_b"] {
        for d in by(name) {
            assert_eq!(d.status, Status::Interrupted, "{report:#?}");
            assert!(
                d.error.unwrap().message.contains("interrupted by a test"),
                "{name}"
            );
        }
        for (cluster, db) in c.dest[..2].iter().zip(&dbs) {
            assert_eq!(digest(cluster, db, name).0, 0);
        }
    }
    // Three tables on two destinations, each with its source: nine backends at least.
    let backends = backends.into_inner().unwrap();
    assert!(backends.len() >= 9, "{backends:?}");
    for side in [
        job::Side::Source,
        job::Side::Destination(0),
        job::Side::Destination(1),
    ] {
        assert!(
            backends.iter().any(|(s, pid)| *s == side && *pid > 0),
            "{side:?}"
        );
    }
    assert_eq!(endings.load(Ordering::SeqCst), 3);
    // Only tiny is recorded: a resume copies the others.
    let recorded = copyman_job::state::read(&options.state).unwrap();
    assert_eq!(recorded.done.len(), 2, "{recorded:?}");
}

/// The catalog's binary key says where each type is in a value: a composite of two domain
/// fields over int4 and float4 is told from one with the fields' base types the other way round
/// (with the same OIDs, as on two fresh clusters, binary COPY read one's bytes as the other's:
/// `(1, 1.5)` stored as `(1e-45, 1069547520)`).
#[test]
fn the_binary_key_of_a_composite_says_which_field_has_which_base_type() {
    let c = clusters();
    let key = |domains: &str| {
        let db = c.source.create_database();
        c.source
            .connect(&db)
            .batch_execute(&format!(
                "{domains} CREATE TYPE cpx AS (a da, b db); CREATE TABLE cx (v cpx);"
            ))
            .unwrap();
        let mut conn = Connection::connect_str(&c.source.conninfo(&db)).unwrap();
        let rel = copyman_job::plan::lookup(&mut conn, &TableName::parse("cx").unwrap())
            .unwrap()
            .unwrap();
        rel.columns[0]
            .binary
            .clone()
            .expect("a composite of built-ins is trusted")
    };
    let here = key("CREATE DOMAIN da AS int4; CREATE DOMAIN db AS float4;");
    let there = key("CREATE DOMAIN da AS float4; CREATE DOMAIN db AS int4;");
    assert!(
        here.contains("23@/1/b") && here.contains("700@/2/b"),
        "{here}"
    );
    assert!(
        there.contains("700@/1/b") && there.contains("23@/2/b"),
        "{there}"
    );
}

/// Planning reads many tables' catalogs in one query: what it reads of each is what the table's
/// own query reads, for every kind of column and relation the plan tells apart (domains, a
/// CHECKed one that takes NULL, composites, arrays, ranges, generated and identity columns, a
/// partitioned table, an inheritance parent, a view with an INSTEAD OF trigger, a table of no
/// column, an odd name); a table not found is left out, for its own lookup to say why.
#[test]
fn tables_looked_up_at_once_read_as_each_looked_up_alone() {
    let c = clusters();
    let db = c.source.create_database();
    c.source
        .connect(&db)
        .batch_execute(
            "CREATE DOMAIN pos AS int4 CHECK (VALUE > 0);
             CREATE DOMAIN nn AS text NOT NULL;
             CREATE TYPE pair AS (a pos, b float4);
             CREATE TABLE plain (id int8 PRIMARY KEY, v text, t timestamptz DEFAULT now());
             CREATE TABLE odd (\"Mixed Case\" int, \"x\"\"y\" numeric(12,2));
             CREATE TABLE typed (p pos, n nn, c pair, a pair[], r int4range, m int4multirange,
               g int GENERATED ALWAYS AS (p * 2) STORED,
               i int GENERATED BY DEFAULT AS IDENTITY, s serial);
             CREATE TABLE parted (k int, v text) PARTITION BY RANGE (k);
             CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (10);
             CREATE TABLE parent (k int); CREATE TABLE child () INHERITS (parent);
             CREATE TABLE nocols ();
             CREATE VIEW vw AS SELECT id, v FROM plain;
             CREATE FUNCTION vw_ins() RETURNS trigger LANGUAGE plpgsql
               AS 'BEGIN RETURN NEW; END';
             CREATE TRIGGER vw_ins INSTEAD OF INSERT ON vw FOR EACH ROW EXECUTE FUNCTION vw_ins();
             INSERT INTO plain SELECT g, 'v' FROM generate_series(1, 500) g;",
        )
        .unwrap();
    let mut conn = Connection::connect_str(&c.source.conninfo(&db)).unwrap();
    let names = [
        "plain", "odd", "typed", "parted", "parted_1", "parent", "child", "nocols", "vw", "missing",
    ];
    let tables: Vec<TableName> = names.iter().map(|n| TableName::parse(n).unwrap()).collect();
    let refs: Vec<&TableName> = tables.iter().collect();
    let found = copyman_job::plan::lookup_many(&mut conn, &refs).unwrap();
    assert_eq!(found.len(), names.len() - 1, "{:?}", found.keys());
    assert!(!found.contains_key(&tables[9].to_string()));
    for table in &tables[..9] {
        let alone = copyman_job::plan::lookup(&mut conn, table)
            .unwrap()
            .unwrap();
        assert_eq!(found.get(&table.to_string()), Some(&alone), "{table}");
    }
    // The domain that takes NULL was asked about, as its own lookup asks.
    let typed = &found[&tables[2].to_string()];
    assert!(typed.columns[0].fills_itself && !typed.columns[1].fills_itself);
    // The session's JIT setting is its own again.
    let jit = conn.query("SHOW jit").unwrap();
    assert_eq!(jit[0][0].as_deref(), Some("on"));
}

/// Whether a table holds rows of given transactions is read from the table's end back, in
/// spans that double (a copy's rows were appended after the rows it held before): rows found
/// in the last span (the table's first blocks), in the first, and in neither, on a table of
/// several spans — and alike on a table it cannot read so (one with an inheriting table).
#[test]
fn rows_of_transactions_are_found_anywhere_in_a_table_read_from_its_end() {
    let c = clusters();
    let db = c.dest[0].create_database();
    let mut admin = c.dest[0].connect(&db);
    let xid = |admin: &mut postgres::Client, sql: &str| -> u64 {
        let mut tx = admin.transaction().unwrap();
        tx.batch_execute(sql).unwrap();
        let id: i64 = tx.query_one("SELECT txid_current()", &[]).unwrap().get(0);
        tx.commit().unwrap();
        id as u64
    };
    admin
        .batch_execute("CREATE TABLE t (id int, pad text); CREATE TABLE p (id int)")
        .unwrap();
    let first = xid(&mut admin, "INSERT INTO t VALUES (0, 'first')");
    // About 3 000 blocks: more than one span (1 024 blocks) read from the end.
    let rest = xid(
        &mut admin,
        "INSERT INTO t SELECT g, repeat('x', 100) FROM generate_series(1, 200000) g",
    );
    let none = xid(&mut admin, "INSERT INTO p VALUES (1)");
    let blocks: i64 = admin
        .query_one("SELECT pg_relation_size('t') / 8192", &[])
        .unwrap()
        .get(0);
    assert!(blocks > 2 * 1024, "{blocks} blocks");
    let mut conn = Connection::connect_str(&c.dest[0].conninfo(&db)).unwrap();
    let holds = |conn: &mut Connection, table: &str, xids: &[u64]| {
        copyman_job::identity::holds_rows_of(conn, table, xids)
    };
    assert_eq!(holds(&mut conn, "t", &[first]), Some(true));
    assert_eq!(holds(&mut conn, "t", &[rest]), Some(true));
    assert_eq!(holds(&mut conn, "t", &[none]), Some(false));
    assert_eq!(holds(&mut conn, "t", &[none, first]), Some(true));
    // With an inheriting table, whose rows count too: read whole.
    admin
        .batch_execute("CREATE TABLE kid () INHERITS (p); INSERT INTO kid VALUES (2)")
        .unwrap();
    let kid: i64 = admin
        .query_one("SELECT xmin::text::int8 FROM kid", &[])
        .unwrap()
        .get(0);
    assert_eq!(holds(&mut conn, "p", &[kid as u64]), Some(true));
    assert_eq!(holds(&mut conn, "p", &[first]), Some(false));
}
