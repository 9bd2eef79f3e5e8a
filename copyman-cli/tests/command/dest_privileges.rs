//! A destination role's privileges, found while planning: `INSERT` on each copied column and the
//! privilege that empties a table first (`TRUNCATE`, or `DELETE` for a referenced table a job
//! empties by itself), and row security that applies to it (COPY FROM refuses such a table);
//! the source role's `SELECT` on the copied columns. A dry run says what a run would refuse (it
//! exited 0), a job refuses the table before copying others (it committed them, then failed at
//! the table's turn: exit 4), and the message names the privilege (the COPY's 42501 said only
//! "permission denied for table").
//! Real clusters, shared by the binary; a role per database.

use crate::common;

use common::*;

const SCHEMA: &str = "CREATE TABLE big (id int8 PRIMARY KEY);
    CREATE TABLE t (id int8 PRIMARY KEY, a text, secret text);
    CREATE TABLE par (id int8 PRIMARY KEY);
    CREATE TABLE chi (id int8 PRIMARY KEY, par int8 REFERENCES par);";

/// A source with rows in `big`, `t` and `par`; a destination of the same schema whose role
/// `grants` say what it may do; the source's database and conninfo, the destination's database
/// and its conninfo as that role.
fn servers(c: &Clusters, grants: &str) -> (String, String, String, String) {
    let src = database(
        &c.source,
        &format!(
            "{SCHEMA}
             INSERT INTO big SELECT generate_series(1, 100);
             INSERT INTO t SELECT g, 'a', 's' FROM generate_series(1, 10) g;
             INSERT INTO par SELECT generate_series(1, 5);"
        ),
    );
    let dst = database(&c.dest[0], SCHEMA);
    let role = format!("writer_{dst}");
    c.dest[0]
        .connect(&dst)
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN; GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role};
             GRANT INSERT, TRUNCATE ON big TO {role}; {}",
            grants.replace("ROLE", &role)
        ))
        .unwrap();
    let to = c.dest[0]
        .conninfo(&dst)
        .replace("user=postgres", &format!("user={role}"));
    (c.source.conninfo(&src), src, dst, to)
}

/// A job of `big` and `table`, one at a time, each emptied first.
fn job<'a>(table: &'a str, from: &'a str, to: &'a str, state: &'a TempPath) -> Vec<&'a str> {
    let servers = ["--from", from, "--to", to, "--jobs", "1", "--truncate"];
    [
        &["table", "big", table][..],
        &servers,
        &["--state", state.arg()],
    ]
    .concat()
}

/// The dry run and the run of `args` both exit 1 saying `said`, and nothing is copied.
#[track_caller]
fn refused(c: &Clusters, dst: &str, args: &[&str], said: &str) {
    for dry_run in [true, false] {
        let mut args = args.to_vec();
        if dry_run {
            args.push("--dry-run");
        }
        let out = run(&args);
        // A job's dry run prints its plan on stdout.
        let stderr = text(&out.stderr) + &text(&out.stdout);
        assert_exit(&out, 1);
        assert!(stderr.contains(said), "dry run {dry_run}: {stderr}");
        for table in ["big", "t", "par"] {
            assert_eq!(count(&c.dest[0], dst, table), 0, "{table}: {stderr}");
        }
    }
}

#[test]
fn one_table_without_insert_on_a_copied_column_or_truncate_is_refused_while_planning() {
    let c = clusters();
    let (from, _, dst, to) = servers(c, "GRANT INSERT (id, a) ON t TO ROLE;");
    let column = "permission denied: the role there may not INSERT into column \"secret\"";
    refused(
        c,
        &dst,
        &["table", "t", "--from", &from, "--to", &to],
        column,
    );
    // With the way out: the columns it may write (types44 F2).
    refused(
        c,
        &dst,
        &["table", "t", "--from", &from, "--to", &to],
        "copy only the columns it may write (--columns id,a in a one-table copy)",
    );
    let truncate = "may not TRUNCATE it (to empty it first)";
    let args = [
        "table",
        "t",
        "--columns",
        "id,a",
        "--from",
        &from,
        "--to",
        &to,
    ];
    refused(c, &dst, &[&args[..], &["--truncate"]].concat(), truncate);
    // The columns it may write, without emptying: copied.
    assert_exit(&run(&args), 0);
    assert_eq!(count(&c.dest[0], &dst, "t"), 10);
}

#[test]
fn a_job_refuses_a_table_it_may_not_write_before_copying_the_others() {
    let c = clusters();
    let (from, _, dst, to) = servers(c, "GRANT INSERT (id, a), TRUNCATE ON t TO ROLE;");
    let state = TempPath::new("dest-privileges.state");
    let args = job("t", &from, &to, &state);
    refused(c, &dst, &args, "may not INSERT into column \"secret\"");
    // Under --keep-going the others are copied, and the table is said left out there.
    let out = run(&[&args[..], &["--keep-going"]].concat());
    assert_exit(&out, 4);
    assert!(
        text(&out.stderr).contains("may not INSERT into column \"secret\""),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&c.dest[0], &dst, "big"), 100);
    assert_eq!(count(&c.dest[0], &dst, "t"), 0);
}

/// A referenced table a job empties by itself is emptied with DELETE: its role needs DELETE
/// there, not only TRUNCATE (the plan's substitution, which the user never wrote).
#[test]
fn a_job_emptying_a_referenced_table_with_delete_needs_delete() {
    let c = clusters();
    let (from, _, dst, to) = servers(c, "GRANT INSERT, TRUNCATE ON par TO ROLE;");
    let state = TempPath::new("dest-privileges-delete.state");
    let args = job("par", &from, &to, &state);
    refused(
        c,
        &dst,
        &args,
        "may not DELETE from it (a foreign key references it",
    );
    c.dest[0]
        .connect(&dst)
        .batch_execute(&format!("GRANT DELETE ON par TO writer_{dst}"))
        .unwrap();
    let out = run(&args);
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[0], &dst, "par"), 5);
}

/// A destination role without USAGE on the table's schema: its server is identified all the
/// same (the warning had blamed the server's identity for the table lookup's 42501, and a
/// destination given twice was not told), and the lookup's error is the run's.
#[test]
fn a_table_the_role_cannot_look_up_leaves_its_server_identified() {
    let c = clusters();
    let (from, src, dst, to) = servers(c, "");
    let role = format!("writer_{dst}");
    for (cluster, db) in [(&c.source, &src), (&c.dest[0], &dst)] {
        cluster
            .connect(db)
            .batch_execute("CREATE SCHEMA s; CREATE TABLE s.u (id int);")
            .unwrap();
    }
    c.dest[0]
        .connect(&dst)
        .batch_execute(&format!("REVOKE ALL ON SCHEMA s FROM {role}"))
        .unwrap();
    let out = run(&["table", "s.u", "--from", &from, "--to", &to]);
    let stderr = text(&out.stderr);
    assert_exit(&out, 1);
    assert!(
        stderr.contains("permission denied for schema s") && !stderr.contains("cannot identify"),
        "{stderr}"
    );
    let out = run(&["table", "s.u", "--from", &from, "--to", &to, "--to", &to]);
    let stderr = text(&out.stderr);
    assert_exit(&out, 2);
    assert!(!stderr.contains("cannot identify"), "{stderr}");
}

/// A destination table whose row security applies to the role: COPY FROM refuses it (0A000),
/// found while planning as a missing privilege is (a dry run exited 0, a job committed its
/// other tables first, exit 4).
#[test]
fn a_destination_table_under_row_security_is_refused_while_planning() {
    let c = clusters();
    let (from, _, dst, to) = servers(
        c,
        "GRANT ALL ON t TO ROLE; ALTER TABLE t ENABLE ROW LEVEL SECURITY;
         CREATE POLICY everyone ON t USING (true) WITH CHECK (true);",
    );
    let state = TempPath::new("dest-row-security.state");
    let said = "row-level security applies to the role there, and COPY FROM does not support it";
    refused(c, &dst, &job("t", &from, &to, &state), said);
    refused(c, &dst, &["table", "t", "--from", &from, "--to", &to], said);
}

/// A column not copied whose default calls `nextval` of a sequence the destination role may not
/// use is found while planning, named (the COPY failed 42501 "permission denied for sequence" at
/// the table's turn, a dry run exited 0); and the message asks only for what is lacking (no
/// emptying privilege without --truncate).
#[test]
fn a_sequence_a_default_takes_values_of_needs_usage() {
    let c = clusters();
    let (from, _, dst, to) = servers(
        c,
        "CREATE SEQUENCE xseq; ALTER TABLE t ADD COLUMN n int8 DEFAULT nextval('xseq');
         GRANT INSERT ON t TO ROLE;",
    );
    let args = [
        "table",
        "t",
        "--columns",
        "id,a,secret",
        "--from",
        &from,
        "--to",
        &to,
    ];
    refused(
        c,
        &dst,
        &args,
        "permission denied: the role there may not take values of sequence xseq (a default of a \
         column not copied calls nextval) (it needs USAGE on the sequence, or the column copied)",
    );
    c.dest[0]
        .connect(&dst)
        .batch_execute(&format!("GRANT USAGE ON SEQUENCE xseq TO writer_{dst}"))
        .unwrap();
    assert_exit(&run(&args), 0);
    assert_eq!(count(&c.dest[0], &dst, "t"), 10);
}

/// The source's role may read only some of a table's columns (`GRANT SELECT (id, a)`): one
/// table's dry run exited 0 and its run failed at the COPY with a bare "permission denied for
/// table t", after the destination began. Refused while planning now (exit 1, dry run too),
/// naming the column and the `--columns` it may copy; those copy.
#[test]
fn one_table_whose_source_role_may_not_read_a_column_is_refused_while_planning() {
    let c = clusters();
    let (_, src, dst, to) = servers(c, "GRANT INSERT ON t TO ROLE;");
    let reader = format!("reader_{src}");
    c.source
        .connect(&src)
        .batch_execute(&format!(
            "CREATE ROLE {reader} LOGIN; GRANT SELECT (id, a) ON t TO {reader};"
        ))
        .unwrap();
    let from = c
        .source
        .conninfo(&src)
        .replace("user=postgres", &format!("user={reader}"));
    refused(
        c,
        &dst,
        &["table", "t", "--from", &from, "--to", &to],
        "SQLSTATE 42501: permission denied: the source's role may not SELECT column \"secret\" \
         of table \"t\" (it needs SELECT on the table, or on each copied column); grant it, or \
         copy the columns it may read (--columns id,a)",
    );
    assert_exit(
        &run(&[
            "table",
            "t",
            "--columns",
            "id,a",
            "--from",
            &from,
            "--to",
            &to,
        ]),
        0,
    );
    assert_eq!(count(&c.dest[0], &dst, "t"), 10);
}

/// A destination role whose connection limit leaves no session for copyman's watch: under
/// `--stall-timeout` that watch is how a destination storing rows is told from a stalled one,
/// and without it a busy destination was failed as "no byte moved", the reason said under -v
/// only (conn66 F5). Said as a warning; the copy, which moves, goes through.
#[test]
fn a_watch_the_role_cannot_open_under_a_stall_timeout_is_said() {
    let c = clusters();
    let (from, _, dst, to) = servers(
        c,
        "ALTER USER ROLE CONNECTION LIMIT 1;
         CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS
           $$BEGIN IF NEW.id = 50 THEN PERFORM pg_sleep(3); END IF; RETURN NEW; END$$;
         CREATE TRIGGER slow BEFORE INSERT ON big FOR EACH ROW EXECUTE FUNCTION slow();",
    );
    let out = run(&[
        "table",
        "big",
        "--from",
        &from,
        "--to",
        &to,
        "--stall-timeout",
        "30s",
    ]);
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("warning: cannot open a monitoring connection for destination 1")
            && stderr.contains("53300")
            && stderr.contains("--stall-timeout (30 s) cannot see its server read or store rows"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &dst, "big"), 100);
}
