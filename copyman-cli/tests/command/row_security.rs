//! Row-level security on the source: copyman reads with `row_security` off, as pg_dump does, so
//! a table whose policies hide rows from the connecting role is refused while planning (the COPY
//! would fail with 42501) instead of copying a subset and exiting 0 — in table mode and in a
//! many-table job alike, dry runs too; a CONN that sets `row_security` itself keeps its choice,
//! which is said. Real clusters, shared by the binary.

use crate::common;

use common::*;

/// A source database with `secret` (100 rows, of which the policy shows `reader` the 50 it owns)
/// and `open` (10 rows, no policy), readable by `reader`; its name and the reader's conninfo.
fn source(c: &Clusters) -> (String, String) {
    let db = c.source.create_database();
    // Roles are the cluster's: one per database.
    let reader = format!("reader_{db}");
    c.source
        .connect(&db)
        .batch_execute(&format!(
            "CREATE ROLE {reader} LOGIN;
             CREATE TABLE secret (id int, owner text);
             INSERT INTO secret SELECT g, CASE WHEN g % 2 = 0 THEN '{reader}' ELSE 'other' END
               FROM generate_series(1, 100) g;
             ALTER TABLE secret ENABLE ROW LEVEL SECURITY;
             CREATE POLICY mine ON secret FOR SELECT USING (owner = current_user);
             CREATE TABLE open (id int);
             INSERT INTO open SELECT generate_series(1, 10);
             GRANT SELECT ON secret, open TO {reader};"
        ))
        .unwrap();
    let conninfo = c
        .source
        .conninfo(&db)
        .replace("user=postgres", &format!("user={reader}"));
    (db, conninfo)
}

fn destination(c: &Clusters) -> String {
    database(
        &c.dest[0],
        "CREATE TABLE secret (id int, owner text); CREATE TABLE open (id int);",
    )
}

/// What the refusal says: the table, why, and the ways out.
fn refused_with_the_ways_out(stderr: &str) {
    assert!(
        stderr.contains("row-level security applies to the source's role on")
            && stderr.contains("secret")
            && stderr.contains("BYPASSRLS")
            && stderr.contains("options='-c row_security=on'"),
        "{stderr}"
    );
}

#[test]
fn a_table_whose_policies_hide_rows_is_refused_instead_of_copying_a_subset() {
    let c = clusters();
    let (_, reader) = source(c);
    let dst = destination(c);
    let to = c.dest[0].conninfo(&dst);

    // One table, and its dry run (which exited 0): refused while planning.
    for dry_run in [&["--dry-run"][..], &[]] {
        let mut args = vec!["table", "secret", "--from", &reader, "--to", &to];
        args.extend(dry_run);
        let out = run(&args);
        assert_exit(&out, 1);
        refused_with_the_ways_out(&text(&out.stderr));
        assert_eq!(count(&c.dest[0], &dst, "secret"), 0);
    }
    // Under --json with the SQLSTATE the source's refusal had (it became null).
    let out = run(&["--json", "table", "secret", "--from", &reader, "--to", &to]);
    let report = json(&out);
    assert_eq!(report["sqlstate"], "42501", "{report}");
    assert_eq!(report["server"], "source", "{report}");

    // A job: refused before any table is copied (it copied the others first, then failed at
    // the table's turn: exit 4, partial), its dry run too.
    let state = TempPath::new("row-security.state");
    for dry_run in [&["--dry-run"][..], &[]] {
        let mut args = vec![
            "table",
            "open",
            "secret",
            "--from",
            &reader,
            "--to",
            &to,
            "--jobs",
            "1",
            "--state",
            state.arg(),
        ];
        args.extend(dry_run);
        let out = run(&args);
        assert_exit(&out, 1);
        let stderr = text(&out.stderr);
        refused_with_the_ways_out(&stderr);
        assert!(stderr.contains("--exclude-table"), "{stderr}");
        assert_eq!(count(&c.dest[0], &dst, "secret"), 0);
        assert_eq!(count(&c.dest[0], &dst, "open"), 0);
    }
}

/// A view over a table whose policies apply to the role the view reads it as (its owner) is
/// refused while planning as that table is, one table and a job alike, dry runs too: the job
/// committed its other tables, then failed at the view's turn (42501, exit 4) without the ways
/// out. (`row_security_active` says nothing of a view: the read is planned, with `EXPLAIN`.)
#[test]
fn a_view_over_a_table_whose_policies_apply_is_refused_while_planning() {
    let c = clusters();
    let (db, reader) = source(c);
    let role = reader
        .split_whitespace()
        .find_map(|w| w.strip_prefix("user="))
        .unwrap()
        .to_owned();
    c.source
        .connect(&db)
        .batch_execute(&format!(
            "CREATE VIEW v_secret AS SELECT * FROM secret; ALTER VIEW v_secret OWNER TO {role};"
        ))
        .unwrap();
    let dst = database(
        &c.dest[0],
        "CREATE TABLE v_secret (id int, owner text); CREATE TABLE open (id int);",
    );
    let to = c.dest[0].conninfo(&dst);
    let state = TempPath::new("view-row-security.state");
    let job = ["open", "--jobs", "1", "--state", state.arg()];
    for (more, dry_run) in [
        (&[][..], &["--dry-run"][..]),
        (&[][..], &[][..]),
        (&job[..], &["--dry-run"][..]),
        (&job[..], &[][..]),
    ] {
        let mut args = vec!["table", "v_secret", "--from", &reader, "--to", &to];
        args.extend(more);
        args.extend(dry_run);
        let out = run(&args);
        assert_exit(&out, 1);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("v_secret\" reads a table whose row-level security applies")
                && stderr.contains("options='-c row_security=on'")
                && stderr.contains(r#"row-level security policy for table "secret")"#),
            "{more:?} {dry_run:?}: {stderr}"
        );
        assert_eq!(count(&c.dest[0], &dst, "open"), 0);
        assert_eq!(count(&c.dest[0], &dst, "v_secret"), 0);
    }
}

/// Whether a CONN sets `row_security` is read as the server reads its `options`: a setting of
/// another name that holds the word (an application's `app.row_security_tenant`) sets nothing
/// (it had left row security on: 50 of 100 rows copied, exit 0, without a word), and the name
/// in other case or with `-` sets it.
#[test]
fn only_a_conn_that_sets_row_security_itself_keeps_its_choice() {
    let c = clusters();
    let (_, reader) = source(c);
    let dst = destination(c);
    let to = c.dest[0].conninfo(&dst);
    let other = format!("{reader} options='-c app.row_security_tenant=42'");
    let out = run(&["table", "secret", "--from", &other, "--to", &to]);
    assert_exit(&out, 1);
    refused_with_the_ways_out(&text(&out.stderr));
    assert_eq!(count(&c.dest[0], &dst, "secret"), 0);
    for options in ["-c ROW_SECURITY=on", "--row-security=on"] {
        let chosen = format!("{reader} options='{options}'");
        let out = run(&[
            "table",
            "secret",
            "--from",
            &chosen,
            "--to",
            &to,
            "--truncate",
        ]);
        assert_exit(&out, 0);
        assert_eq!(count(&c.dest[0], &dst, "secret"), 50, "{options}");
    }
}

#[test]
fn row_security_set_in_the_conn_is_the_users_choice_and_said() {
    let c = clusters();
    let (_, reader) = source(c);
    let dst = destination(c);
    let to = c.dest[0].conninfo(&dst);
    let filtered = format!("{reader} options='-c row_security=on'");
    let out = run(&["table", "secret", "--from", &filtered, "--to", &to]);
    assert_exit(&out, 0);
    let said = "row-level security applies to the source's role (row_security is on in its \
                CONN): only the rows its policies show are copied";
    assert!(text(&out.stderr).contains(said), "{}", text(&out.stderr));
    assert_eq!(count(&c.dest[0], &dst, "secret"), 50);
    // A job says it too.
    let state = TempPath::new("row-security-on.state");
    let out = run(&[
        "table",
        "secret",
        "open",
        "--from",
        &filtered,
        "--to",
        &to,
        "--truncate",
        "--state",
        state.arg(),
    ]);
    assert_exit(&out, 0);
    assert!(text(&out.stderr).contains(said), "{}", text(&out.stderr));
    assert_eq!(count(&c.dest[0], &dst, "secret"), 50);
    assert_eq!(count(&c.dest[0], &dst, "open"), 10);
}

#[test]
fn the_tables_owner_reads_every_row() {
    let c = clusters();
    let (db, _) = source(c);
    let dst = destination(c);
    let out = run(&[
        "table",
        "secret",
        "--from",
        &c.source.conninfo(&db),
        "--to",
        &c.dest[0].conninfo(&dst),
    ]);
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[0], &dst, "secret"), 100);
}
