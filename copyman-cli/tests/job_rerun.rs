//! A job run again without `--resume` into destinations its state file records an earlier run
//! into would add every row a second time (tables without a key take them, exit 0): refused,
//! naming `--resume` and `--truncate`; `--truncate` copies each table again, once. With the
//! default state file too. Real clusters, shared by the binary.

mod common;

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
        assert!(
            stderr.contains("records an earlier job")
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
                text(&otherwise.stderr).contains("records an earlier job"),
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
