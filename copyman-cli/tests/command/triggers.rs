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
    let said = "TRUNCATE triggers fire on it there as --truncate empties it (halve)";
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
