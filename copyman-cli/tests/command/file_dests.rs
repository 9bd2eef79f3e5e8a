//! File destinations (`--to PATH`, `--to -`), as a tester found them: the temporary file beside
//! the target (its name, how it is created, its length), who may replace what, paths that are
//! not regular files (`/dev/stdout`), a stdout or stdin closed at the start, and a rename that
//! fails. Real clusters, shared by the binary; a fresh database and directory per test.

use crate::common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::*;

const T: &str = "CREATE TABLE t (id int8 PRIMARY KEY, v text);";

/// A source database whose `t` holds 1000 rows (`1\tv1` …).
fn source(c: &Clusters) -> String {
    database(
        &c.source,
        &format!("{T} INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 1000) g;"),
    )
}

/// `sh -c SCRIPT copyman ARGS…` with copyman's clean environment: the script ends with
/// `exec "$0" "$@"` plus the redirections it means (`>&-`).
fn via_sh(script: &str, args: &[&str]) -> Command {
    let plain = copyman();
    let mut sh = Command::new("sh");
    for (var, value) in plain.get_envs() {
        match value {
            Some(value) => sh.env(var, value),
            None => sh.env_remove(var),
        };
    }
    sh.arg("-c")
        .arg(script)
        .arg(plain.get_program())
        .args(args)
        .stdin(Stdio::null());
    sh
}

fn lines(path: impl AsRef<Path>) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Whether copyman began connecting (`-v` says so before every connection).
fn connected(out: &Output) -> bool {
    text(&out.stderr).contains("connecting to")
}

/// Point 1: the temporary file's name was `.NAME.copyman-PID.tmp`, opened following a link
/// and truncating: a link planted at that name before the run (`$$` of the shell that execs
/// copyman) had copyman overwrite the file it points to. It is created new now (`O_EXCL`),
/// under a name no one can foretell: the planted link and its target stay as they were.
#[test]
fn a_link_planted_at_the_temporary_name_is_never_written_through() {
    let c = clusters();
    let src = source(c);
    let dir = TempDir::new("planted");
    let victim = dir.path("victim.conf");
    fs::write(&victim, "secret = kept\n").unwrap();
    let out_path = dir.path("out2.txt");
    let url = c.source.url(&src);
    let out = via_sh(
        r#"ln -s "$VICTIM" "$DIR/.out2.txt.copyman-$$.tmp" && exec "$0" "$@""#,
        &["table", "t", "--from", &url, "--to", &out_path],
    )
    .env("VICTIM", &victim)
    .env("DIR", &dir.0)
    .output()
    .unwrap();
    assert_exit(&out, 0);
    assert_eq!(fs::read_to_string(&victim).unwrap(), "secret = kept\n");
    let written = lines(&out_path);
    assert_eq!(written.len(), 1000);
    assert_eq!(written[0], "1\tv1");
    // The planted link is not ours to remove; nothing else is left beside the target.
    let names = dir.list();
    assert_eq!(names.len(), 3, "{names:?}");
    let planted = names.iter().find(|n| n.starts_with(".out2.txt")).unwrap();
    assert!(
        fs::symlink_metadata(dir.0.join(planted))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

/// The umask of this process (the mode psql gives a new file is `0666` less it).
fn umask() -> u32 {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("Umask:")).unwrap();
    u32::from_str_radix(line["Umask:".len()..].trim(), 8).unwrap()
}

fn is_root() -> bool {
    fs::metadata("/proc/self").unwrap().uid() == 0
}

/// Point 2: the rename replaced files psql's `\copy` would refuse to write (a root-owned `0444`
/// file, run as another user: its directory allowed the rename), and gave a `0600` file back
/// `0644`. An existing target must be writable by us, checked before anything is sent anywhere
/// (exit 2, naming it); the new file gets the old one's permission bits (and owner, as root).
#[test]
fn a_target_psql_could_not_write_is_refused_and_modes_are_kept() {
    let c = clusters();
    let src = source(c);
    let d1 = database(&c.dest[0], T);
    let dir = TempDir::new("modes");
    // Anyone may create and rename files here (no sticky bit): only the file's own mode
    // protects it, as in the tester's directory.
    fs::set_permissions(&dir.0, fs::Permissions::from_mode(0o777)).unwrap();
    let target = dir.path("readonly.txt");
    fs::write(&target, "keep\n").unwrap();
    fs::set_permissions(&target, fs::Permissions::from_mode(0o444)).unwrap();
    let url = c.source.url(&src);
    let dest = c.dest[0].url(&d1);
    let mut cmd = copyman();
    cmd.args([
        "table", "t", "--from", &url, "--to", &dest, "--to", &target, "-v",
    ]);
    if is_root() {
        // Root may write any file: the run is another user's (nobody), the file root's.
        use std::os::unix::process::CommandExt;
        cmd.uid(65534).gid(65534);
    }
    let out = cmd.output().unwrap();
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("destination 2 {target}: cannot write it")),
        "{stderr}"
    );
    assert!(!connected(&out), "nothing sent to any server: {stderr}");
    assert_eq!(fs::read_to_string(&target).unwrap(), "keep\n");
    assert_eq!(fs::metadata(&target).unwrap().mode() & 0o777, 0o444);
    assert_eq!(dir.list(), vec!["readonly.txt"], "no temporary file");
    assert_eq!(count(&c.dest[0], &d1, "t"), 0);
    // Under --keep-going it is left out, as an unwritable directory is: the server commits
    // (exit 4; it stopped the whole run, exit 2).
    let mut cmd = copyman();
    cmd.args([
        "table",
        "t",
        "--from",
        &url,
        "--to",
        &dest,
        "--to",
        &target,
        "--keep-going",
    ]);
    if is_root() {
        use std::os::unix::process::CommandExt;
        cmd.uid(65534).gid(65534);
    }
    let out = cmd.output().unwrap();
    assert_exit(&out, 4);
    assert_eq!(fs::read_to_string(&target).unwrap(), "keep\n");
    assert_eq!(count(&c.dest[0], &d1, "t"), 1000);
    c.dest[0].connect(&d1).batch_execute("TRUNCATE t").unwrap();

    // A private file stays private; a new one gets the mode psql would give it.
    let private = dir.path("private.txt");
    fs::write(&private, "old\n").unwrap();
    fs::set_permissions(&private, fs::Permissions::from_mode(0o600)).unwrap();
    let new = dir.path("new.txt");
    let out = run(&["table", "t", "--from", &url, "--to", &private, "--to", &new]);
    assert_exit(&out, 0);
    assert_eq!(lines(&private).len(), 1000);
    assert_eq!(fs::metadata(&private).unwrap().mode() & 0o777, 0o600);
    assert_eq!(lines(&new).len(), 1000);
    assert_eq!(fs::metadata(&new).unwrap().mode() & 0o777, 0o666 & !umask());

    // Root replacing another user's file gives the new one to that user, as writing it would.
    if is_root() {
        let theirs = dir.path("theirs.txt");
        fs::write(&theirs, "old\n").unwrap();
        std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
        fs::set_permissions(&theirs, fs::Permissions::from_mode(0o640)).unwrap();
        let out = run(&["table", "t", "--from", &url, "--to", &theirs]);
        assert_exit(&out, 0);
        let meta = fs::metadata(&theirs).unwrap();
        assert_eq!(
            (meta.uid(), meta.gid(), meta.mode() & 0o777),
            (65534, 65534, 0o640)
        );
        assert_eq!(lines(&theirs).len(), 1000);
    }
}

/// Point 3: `--to /dev/stdout` (stdout appended to a file) was written beside that file and
/// renamed over it, destroying its lines; `--to - --to /dev/stdout` gave a pipe every row twice;
/// `--json` with a path that is stdout mixed the data into the document. A path that is not a
/// regular file is written directly (`/dev/stdout`: through fd 1 itself), and one that is stdout
/// is refused with `-` or `--json`, as `-` given twice or with `--json` is.
#[test]
fn a_destination_that_is_stdout_is_written_in_place_and_only_once() {
    let c = clusters();
    let src = source(c);
    let url = c.source.url(&src);
    let dir = TempDir::new("stdout");
    let app = dir.path("app.txt");
    fs::write(&app, "line 1\nline 2\n").unwrap();
    for name in ["/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"] {
        let log = fs::OpenOptions::new().append(true).open(&app).unwrap();
        let out = copyman()
            .args(["table", "t", "--from", &url, "--to", name, "-q"])
            .stdout(log)
            .output()
            .unwrap();
        assert_exit(&out, 0);
    }
    let written = lines(&app);
    assert_eq!(&written[..2], ["line 1", "line 2"], "the file's lines stay");
    assert_eq!(written.len(), 2 + 3 * 1000);
    assert_eq!(written[2], "1\tv1");
    assert_eq!(dir.list(), vec!["app.txt"], "no temporary file");

    // Stdout given twice (a pipe here), one way or another.
    for name in ["/dev/stdout", "/dev/fd/1"] {
        let out = run(&["table", "t", "--from", &url, "--to", "-", "--to", name]);
        assert_exit(&out, 2);
        assert!(
            text(&out.stderr).contains(&format!(
                "destinations 1 (-) and 2 ({name}) are both stdout: give it once"
            )),
            "{}",
            text(&out.stderr)
        );
        assert_eq!(out.stdout, unsent(), "nothing written but the mark");
    }
    // `--json` prints on stdout: not with a path that is stdout. Refused on stderr, its
    // document not written into the data's stdout, which is marked (recheck68 F3).
    let out = run(&[
        "table",
        "t",
        "--from",
        &url,
        "--to",
        "/dev/stdout",
        "--json",
    ]);
    assert_exit(&out, 2);
    assert_eq!(out.stdout, unsent());
    assert!(
        text(&out.stderr).contains("cannot go with --to /dev/stdout, which is stdout"),
        "{}",
        text(&out.stderr)
    );
    // `-` too, with the way that works (docs45 F5).
    let out = run(&["table", "t", "--from", &url, "--to", "-", "--json"]);
    assert_exit(&out, 2);
    assert_eq!(out.stdout, unsent());
    assert!(
        text(&out.stderr).contains("cannot go with --to - (data on stdout); write the data to a file, or to another descriptor: --to /dev/fd/3 3>FILE"),
        "{}",
        text(&out.stderr)
    );
    // `/dev/null` is not stdout here: fine with `--json`.
    let out = run(&["table", "t", "--from", &url, "--to", "/dev/null", "--json"]);
    assert_exit(&out, 0);
}

/// Point 4: with stdout closed, `--to -` exited 0 "committed" while the data went nowhere (and
/// with stdin closed, `--from -` read nothing). Both are refused at once, before connecting; a
/// run that does not need them still works with fds 0, 1 and 2 closed.
#[test]
fn a_closed_stdout_or_stdin_is_refused_before_connecting() {
    let c = clusters();
    let src = source(c);
    let d1 = database(&c.dest[0], T);
    let url = c.source.url(&src);
    let dest = c.dest[0].url(&d1);

    let out = via_sh(
        r#"exec "$0" "$@" >&-"#,
        &["table", "t", "--from", &url, "--to", "-", "-v"],
    )
    .output()
    .unwrap();
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("--to -: stdout is closed"),
        "{}",
        text(&out.stderr)
    );
    assert!(!connected(&out));

    let out = via_sh(
        r#"exec "$0" "$@" <&-"#,
        &["table", "t", "--from", "-", "--to", &dest, "-v"],
    )
    .output()
    .unwrap();
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("--from -: stdin is closed"),
        "{}",
        text(&out.stderr)
    );
    assert!(!connected(&out));
    assert_eq!(count(&c.dest[0], &d1, "t"), 0);

    // The same descriptors by their names.
    for (redirect, from, to, said) in [
        (
            ">&-",
            url.as_str(),
            "/dev/stdout",
            "--to /dev/stdout: stdout is closed",
        ),
        (
            "<&-",
            "/dev/stdin",
            dest.as_str(),
            "--from /dev/stdin: stdin is closed",
        ),
    ] {
        let out = via_sh(
            &format!(r#"exec "$0" "$@" {redirect}"#),
            &["table", "t", "--from", from, "--to", to, "-v"],
        )
        .output()
        .unwrap();
        assert_exit(&out, 2);
        assert!(text(&out.stderr).contains(said), "{}", text(&out.stderr));
        assert!(!connected(&out));
    }
    assert_eq!(count(&c.dest[0], &d1, "t"), 0);

    // Nothing on stdin, stdout or stderr: a copy between servers still copies.
    let out = via_sh(
        r#"exec "$0" "$@" <&- >&- 2>&-"#,
        &["table", "t", "--from", &url, "--to", &dest, "--json"],
    )
    .output()
    .unwrap();
    assert_exit(&out, 0);
    assert_eq!(digest(&c.dest[0], &d1, "t"), digest(&c.source, &src, "t"));
    // With stderr open, --json's document going nowhere is said (it went unsaid).
    let d2 = database(&c.dest[0], T);
    let out = via_sh(
        r#"exec "$0" "$@" >&-"#,
        &[
            "table",
            "t",
            "--from",
            &url,
            "--to",
            &c.dest[0].url(&d2),
            "--json",
        ],
    )
    .output()
    .unwrap();
    assert_exit(&out, 0);
    assert!(
        text(&out.stderr).contains("--json: stdout is closed: the document goes nowhere"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(digest(&c.dest[0], &d2, "t"), digest(&c.source, &src, "t"));
    // A job's dry run whose plan goes nowhere says so (it exited 0 without a word: scale38 F9).
    let out = via_sh(
        r#"exec "$0" "$@" >&-"#,
        &[
            "table",
            "t",
            "--from",
            &url,
            "--to",
            &c.dest[0].url(&d2),
            "--truncate",
            "--dry-run",
            "--state",
            TempPath::new("closed-dry.state").arg(),
        ],
    )
    .output()
    .unwrap();
    assert_exit(&out, 0);
    assert!(
        text(&out.stderr).contains("--dry-run: stdout is closed: the plan goes nowhere"),
        "{}",
        text(&out.stderr)
    );
}

/// Point 5: a 249-byte file name was refused ("File name too long"): the temporary name is
/// longer than the target's. It stays within 255 bytes now (the copied part of the name is
/// shortened, never in the middle of a character).
#[test]
fn a_long_file_name_is_written() {
    let c = clusters();
    let src = source(c);
    let url = c.source.url(&src);
    let dir = TempDir::new("long");
    let ascii = format!("{}.txt", "n".repeat(245));
    // 124 two-byte characters: 249 bytes.
    let accented = format!("{}x", "é".repeat(124));
    assert_eq!((ascii.len(), accented.len()), (249, 249));
    let out = run(&[
        "table",
        "t",
        "--from",
        &url,
        "--to",
        &dir.path(&ascii),
        "--to",
        &dir.path(&accented),
    ]);
    assert_exit(&out, 0);
    assert_eq!(lines(dir.path(&ascii)).len(), 1000);
    assert_eq!(lines(dir.path(&accented)).len(), 1000);
    let mut expected = vec![ascii, accented];
    expected.sort();
    assert_eq!(dir.list(), expected, "no temporary file left");
}

/// Point 6: a rename that fails after the copy succeeded (exit 4: a server committed before it)
/// did not say where the complete data was. The temporary file is kept — it is the only complete
/// copy of what the server got — and named.
#[test]
fn a_failed_rename_names_the_kept_temporary_file() {
    let c = clusters();
    let src = source(c);
    let d1 = database(&c.dest[0], T);
    let dir = TempDir::new("rename");
    let target = dir.path("out.txt");
    let url = c.source.url(&src);
    let dest = c.dest[0].url(&d1);
    let paused = Paused::start(
        &["table", "t", "--from", &url, "--to", &dest, "--to", &target],
        "committed:1",
    );
    // The target becomes a directory that is not empty: the rename onto it fails.
    fs::create_dir(&target).unwrap();
    fs::write(dir.0.join("out.txt/inside"), "x").unwrap();
    let out = paused.resume();
    assert_exit(&out, 4);
    assert_eq!(digest(&c.dest[0], &d1, "t"), digest(&c.source, &src, "t"));
    let temp = dir
        .list()
        .into_iter()
        .find(|n| n.starts_with(".out.txt.copyman-"))
        .expect("the temporary file is kept");
    let temp = dir.path(&temp);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("the complete copy is kept in {temp}")),
        "{stderr}"
    );
    let kept = lines(&temp);
    assert_eq!(kept.len(), 1000);
    assert_eq!(kept[0], "1\tv1");
}

/// A destination named as a directory that does not exist (`newdir/`, `newdir/.`, as `cp x
/// newdir/` means one) passed every check, and its rename failed after the server destination
/// had committed (exit 4, a temporary file left). Refused before connecting (exit 2), the dry
/// run too; dropped under `--keep-going`.
#[test]
fn a_destination_named_as_a_directory_is_refused_before_connecting() {
    let c = clusters();
    let src = source(c);
    let d1 = database(&c.dest[0], T);
    let dir = TempDir::new("slash");
    let (from, to) = (c.source.url(&src), c.dest[0].url(&d1));
    for name in ["newdir/", "newdir/.", "newdir/.."] {
        let target = dir.path(name);
        for dry in [false, true] {
            let mut args = vec!["table", "t", "--from", &from, "--to", &to, "--to", &target];
            if dry {
                args.push("--dry-run");
            }
            let out = run(&args);
            assert_exit(&out, 2);
            let stderr = text(&out.stderr);
            assert!(stderr.contains("it names a directory"), "{name}: {stderr}");
            assert!(!connected(&out), "{name}: {stderr}");
        }
        assert_eq!(count(&c.dest[0], &d1, "t"), 0);
        assert!(dir.list().is_empty(), "{:?}", dir.list());
    }
    let target = dir.path("newdir/");
    let out = run(&[
        "table",
        "t",
        "--from",
        &from,
        "--to",
        &to,
        "--to",
        &target,
        "--keep-going",
    ]);
    assert_exit(&out, 4);
    assert_eq!(count(&c.dest[0], &d1, "t"), 1000);
    assert!(dir.list().is_empty(), "{:?}", dir.list());
}

/// A bare word as `--to` is a file (psql would take it for a database name): written, and said
/// with the way to name a database.
#[test]
fn a_bare_word_destination_is_a_file_and_said_so() {
    let c = clusters();
    let src = source(c);
    let dir = TempDir::new("bare-word");
    let out = copyman()
        .current_dir(&dir.0)
        .args([
            "table",
            "t",
            "--from",
            &c.source.conninfo(&src),
            "--to",
            "mydb",
        ])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert!(
        text(&out.stderr)
            .contains("--to mydb is read as the file ./mydb (a database is `dbname=mydb`)"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(dir.list(), ["mydb"]);
}

/// A host name as `--to` is a file too (`db2.example.com`, `localhost`): written, and said with
/// the way to name the server; a missing source file of such a name says it in its error.
#[test]
fn a_host_name_as_a_file_is_said_with_the_way_to_name_the_server() {
    let c = clusters();
    let src = source(c);
    let dir = TempDir::new("host-name");
    let from = c.source.conninfo(&src);
    for host in ["db2.example.com", "localhost"] {
        let out = copyman()
            .current_dir(&dir.0)
            .args(["table", "t", "--from", &from, "--to", host])
            .output()
            .unwrap();
        assert_exit(&out, 0);
        let said = format!("--to {host} is read as the file ./{host} (a server is `host={host}`)");
        assert!(text(&out.stderr).contains(&said), "{}", text(&out.stderr));
    }
    assert_eq!(dir.list(), ["db2.example.com", "localhost"]);
    let out = copyman()
        .current_dir(&dir.0)
        .args(["copy", "--from", "db3.example.com", "--to", "./out"])
        .output()
        .unwrap();
    // The command's to mend (exit 2), not a failed copy to retry.
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("(a server is `host=db3.example.com`)"),
        "{}",
        text(&out.stderr)
    );
    // A bare word, psql's database name: said as `--to` says it.
    let out = copyman()
        .current_dir(&dir.0)
        .args(["copy", "--from", "appdb", "--to", "./out"])
        .output()
        .unwrap();
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("(a database is `dbname=appdb`)"),
        "{stderr}"
    );
}

/// `copyman table` writing a *.csv file in another `--format` says so: read back by its name
/// (as CSV), a NULL became the string `\N` and escapes stayed literal, exit 0 both ways.
#[test]
fn a_csv_named_file_written_in_text_is_said() {
    let c = clusters();
    let src = source(c);
    let dir = TempDir::new("text-as-csv");
    let out = run(&[
        "table",
        "t",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &dir.path("t.csv"),
        "--format",
        "text",
    ]);
    assert_exit(&out, 0);
    assert!(
        text(&out.stderr).contains("written in FORMAT text (--format), not CSV")
            && text(&out.stderr).contains("read it back with --format text"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(lines(dir.path("t.csv"))[0], "1\tv1");
    // CSV chosen for a *.csv file, into a file named otherwise (read back as text, a NULL
    // became '' and a value with a comma kept its quotes, exit 0): said.
    let out = run(&[
        "table",
        "t",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &dir.path("u.csv"),
        "--to",
        &dir.path("u.txt"),
    ]);
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("u.txt: written in CSV, chosen for a *.csv file of this run")
            && stderr.contains("read it back with --format csv")
            && !stderr.contains("u.csv: written"),
        "{stderr}"
    );
    assert_eq!(lines(dir.path("u.txt"))[0], "1,v1");
}

/// A file destination that cannot take the data (`/dev/full`): its writes were buffered and
/// flushed only in its COMMIT, after a server destination given before it had committed (exit
/// 4, the rows on the server, without `--keep-going`). Written out before anything commits, it
/// fails the copy (exit 1, nothing committed, nothing said to have gone out); with
/// `--keep-going` the server alone commits (exit 4).
#[test]
fn a_file_that_cannot_take_the_data_fails_the_copy_before_any_commit() {
    let c = clusters();
    let src = source(c);
    let d1 = database(&c.dest[0], T);
    let (from, to) = (c.source.url(&src), c.dest[0].url(&d1));
    for order in [[&to, "/dev/full"], ["/dev/full", &to]] {
        let out = run(&[
            "table", "t", "--from", &from, "--to", order[0], "--to", order[1],
        ]);
        assert_exit(&out, 1);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("No space left on device") && !stderr.contains("went out"),
            "{stderr}"
        );
        assert_eq!(count(&c.dest[0], &d1, "t"), 0);
    }
    let out = run(&[
        "table",
        "t",
        "--from",
        &from,
        "--to",
        &to,
        "--to",
        "/dev/full",
        "--keep-going",
    ]);
    assert_exit(&out, 4);
    assert_eq!(count(&c.dest[0], &d1, "t"), 1000);
}

/// A file destination past the file-size limit (`ulimit -f`): SIGXFSZ killed copyman without a
/// word (exit 153, its temporary file left, the healthy destinations of `--keep-going` not
/// committed). The write fails as on a full disk: exit 1, nothing committed; with
/// `--keep-going` the server commits (exit 4); no temporary file left.
#[test]
fn a_file_past_the_file_size_limit_fails_as_a_full_disk() {
    let c = clusters();
    let src = source(c);
    let dir = TempDir::new("fsize");
    let file = dir.path("big.txt");
    for (keep_going, exit, rows) in [(false, 1, 0), (true, 4, 1000)] {
        let d1 = database(&c.dest[0], T);
        let (from, to) = (c.source.url(&src), c.dest[0].url(&d1));
        let mut args = vec!["table", "t", "--from", &from, "--to", &to, "--to", &file];
        if keep_going {
            args.push("--keep-going");
        }
        let out = via_sh(r#"ulimit -f 4; exec "$0" "$@""#, &args)
            .output()
            .unwrap();
        assert_exit(&out, exit);
        let stderr = text(&out.stderr);
        assert!(stderr.contains("File too large"), "{stderr}");
        assert_eq!(count(&c.dest[0], &d1, "t"), rows);
        let left: Vec<_> = fs::read_dir(&dir.0).unwrap().flatten().collect();
        assert!(left.is_empty(), "{left:?}");
    }
}

/// An existing file that a rename cannot replace — another user's in a sticky directory (as
/// `/tmp` is) that is not ours either, or a file bind-mounted onto its name (as `docker run -v`
/// mounts one) — passed the check and failed its rename after the server destination had
/// committed (exit 4, a temporary file left). Refused before connecting (exit 2, `--dry-run`
/// too), with the way to write it in place.
#[test]
fn a_file_a_rename_cannot_replace_is_refused_before_connecting() {
    if !is_root() {
        eprintln!(
            "SKIPPED a_file_a_rename_cannot_replace_is_refused_before_connecting: needs root to \
             give a file to another user and to mount one"
        );
        return;
    }
    use std::os::unix::process::CommandExt;
    let c = clusters();
    let src = source(c);
    let d1 = database(&c.dest[0], T);
    let (from, to) = (c.source.url(&src), c.dest[0].url(&d1));
    let dir = TempDir::new("sticky");
    fs::set_permissions(&dir.0, fs::Permissions::from_mode(0o1777)).unwrap();
    let target = dir.path("out.txt");
    fs::write(&target, "keep\n").unwrap();
    fs::set_permissions(&target, fs::Permissions::from_mode(0o666)).unwrap();
    let refused = |target: &str, nobody: bool, why: &str| {
        for dry_run in [true, false] {
            let mut cmd = copyman();
            cmd.args(["table", "t", "--from", &from, "--to", &to, "--to", target]);
            if dry_run {
                cmd.arg("--dry-run");
            }
            if nobody {
                cmd.uid(65534).gid(65534);
            }
            let out = cmd.output().unwrap();
            assert_exit(&out, 2);
            let stderr = text(&out.stderr);
            assert!(
                stderr.contains(why) && stderr.contains("--to - > FILE"),
                "{stderr}"
            );
            assert!(!connected(&out), "nothing sent to any server: {stderr}");
            assert_eq!(fs::read_to_string(target).unwrap(), "keep\n");
        }
        assert_eq!(count(&c.dest[0], &d1, "t"), 0);
    };
    refused(&target, true, "is sticky");
    assert_eq!(dir.list(), vec!["out.txt"], "no temporary file");
    // A file we may write in a directory we may not: said with the same way out.
    let closed = TempDir::new("closed");
    fs::set_permissions(&closed.0, fs::Permissions::from_mode(0o755)).unwrap();
    let writable = closed.path("out.txt");
    fs::write(&writable, "keep\n").unwrap();
    fs::set_permissions(&writable, fs::Permissions::from_mode(0o666)).unwrap();
    refused(&writable, true, "cannot create a file in its directory");

    let mounted = dir.path("mounted.txt");
    let from_file = dir.path("mounted-from.txt");
    for path in [&mounted, &from_file] {
        fs::write(path, "keep\n").unwrap();
    }
    let mount = Command::new("mount")
        .args(["--bind", &from_file, &mounted])
        .output();
    if !mount.is_ok_and(|out| out.status.success()) {
        eprintln!(
            "SKIPPED a_file_a_rename_cannot_replace_is_refused_before_connecting (its mount \
             point half): mount --bind is not allowed here"
        );
        return;
    }
    struct Unmount<'a>(&'a str);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).output();
        }
    }
    let _unmount = Unmount(&mounted);
    refused(&mounted, false, "is a mount point");
}

/// A source file that stdout is appended to (`--from f --to - >> f`, or stdin redirected from
/// it), or a descriptor destination open on it (`--to /dev/fd/3 3>>f`): the copy read the rows
/// it wrote, for ever, until the disk was full (a tester's grew to 72 GB). Refused before
/// connecting, the file untouched; another file is written.
#[test]
fn a_source_that_stdout_writes_to_is_refused() {
    let c = clusters();
    let d1 = database(&c.dest[0], T);
    let dir = TempDir::new("self");
    let file = dir.path("rows.txt");
    fs::write(&file, "1\tv1\n2\tv2\n").unwrap();
    let to = c.dest[0].url(&d1);
    // Bounded (ulimit -f: 500 KB), should the refusal ever go: it filled the disk.
    let runs = [
        (
            r#"ulimit -f 1000; exec "$0" "$@" >> "$F""#,
            vec!["table", "t", "--from", &file, "--to", "-"],
        ),
        (
            r#"ulimit -f 1000; exec "$0" "$@" < "$F" >> "$F""#,
            vec!["table", "t", "--from", "-", "--to", &to, "--to", "-"],
        ),
        (
            r#"ulimit -f 1000; exec "$0" "$@" 3>> "$F""#,
            vec!["table", "t", "--from", &file, "--to", "/dev/fd/3"],
        ),
    ];
    for (script, args) in runs {
        let out = via_sh(script, &args).env("F", &file).output().unwrap();
        assert_exit(&out, 2);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("is the file stdout writes to")
                || stderr.contains("is the file /dev/fd/3 writes to"),
            "{stderr}"
        );
        assert!(!connected(&out), "nothing sent to any server: {stderr}");
        assert_eq!(fs::read_to_string(&file).unwrap(), "1\tv1\n2\tv2\n");
    }
    assert_eq!(count(&c.dest[0], &d1, "t"), 0);
    let other = dir.path("other.txt");
    let out = via_sh(
        r#"exec "$0" "$@" > "$O""#,
        &["table", "t", "--from", &file, "--to", "-"],
    )
    .env("O", &other)
    .output()
    .unwrap();
    assert_exit(&out, 0);
    assert_eq!(lines(&other).len(), 2);
}

/// `--to - > FILE 2>&1` (cron's usual redirection): copyman's summary was appended to the data
/// file, exit 0. Refused before connecting (exit 2); stderr sent elsewhere, the file gets the
/// rows alone; `> /dev/null 2>&1` is no mixing.
#[test]
fn stdout_data_with_stderr_into_the_same_file_is_refused() {
    let c = clusters();
    let src = source(c);
    let from = c.source.url(&src);
    let dir = TempDir::new("mixed");
    let (data, log) = (dir.path("rows.txt"), dir.path("log.txt"));
    let args = ["table", "t", "--from", &from, "--to", "-"];
    let out = via_sh(r#"exec "$0" "$@" > "$F" 2>&1"#, &args)
        .env("F", &data)
        .output()
        .unwrap();
    assert_exit(&out, 2);
    let said = fs::read_to_string(&data).unwrap();
    assert!(
        said.contains("stderr goes where stdout does (2>&1)"),
        "{said}"
    );
    let out = via_sh(r#"exec "$0" "$@" > "$F" 2> "$L""#, &args)
        .env("F", &data)
        .env("L", &log)
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert_eq!(lines(&data).len(), 1000);
    let out = via_sh(r#"exec "$0" "$@" > /dev/null 2>&1"#, &args)
        .output()
        .unwrap();
    assert_exit(&out, 0);
}

/// Stdin or stdout left non-blocking by whoever opened it (O_NONBLOCK, as CI runners leave
/// pipes): a read before the data came, or a write to a full pipe, failed the copy with
/// "Resource temporarily unavailable" (exit 1). Each waits, as on a blocking pipe.
#[test]
fn non_blocking_stdin_and_stdout_wait_as_blocking_ones() {
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;

    let non_blocking = |fd: i32| {
        // SAFETY: F_GETFL/F_SETFL take the descriptor (open, ours) and an int; no memory.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            assert!(libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) == 0);
        }
    };
    let c = clusters();
    let d1 = database(&c.dest[0], T);
    let to = c.dest[0].url(&d1);
    let (reader, mut writer) = std::io::pipe().unwrap();
    non_blocking(reader.as_raw_fd());
    let child = copyman()
        .args(["table", "t", "--from", "-", "--to", &to])
        .stdin(reader)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    writer.write_all(b"1\tv1\n2\tv2\n").unwrap();
    drop(writer);
    let out = child.wait_with_output().unwrap();
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[0], &d1, "t"), 2);

    let src = database(
        &c.source,
        &format!("{T} INSERT INTO t SELECT g, repeat('v', 200) FROM generate_series(1, 5000) g;"),
    );
    let (mut reader, writer) = std::io::pipe().unwrap();
    non_blocking(writer.as_raw_fd());
    let child = copyman()
        .args(["table", "t", "--from", &c.source.url(&src), "--to", "-"])
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A reader slower than copyman: the pipe fills.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mut got = Vec::new();
    let mut buf = vec![0; 16 * 1024];
    loop {
        let n = reader.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let out = child.wait_with_output().unwrap();
    assert_exit(&out, 0);
    assert_eq!(got.iter().filter(|&&b| b == b'\n').count(), 5000);

    // The --json summary into such a pipe, full when it comes: it waits for room too (it was
    // dropped, "the summary could not be written").
    let d2 = database(&c.dest[0], T);
    let (mut reader, mut writer) = std::io::pipe().unwrap();
    non_blocking(writer.as_raw_fd());
    let mut filled = 0;
    while let Ok(n) = writer.write(&[b'#'; 4096]) {
        filled += n;
    }
    let child = copyman()
        .args([
            "table",
            "t",
            "--from",
            &c.source.url(&src),
            "--to",
            &c.dest[0].url(&d2),
            "--json",
        ])
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let mut got = Vec::new();
    reader.read_to_end(&mut got).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_exit(&out, 0);
    let summary = String::from_utf8_lossy(&got[filled..]);
    assert!(summary.contains("\"status\""), "{summary}");
}

/// A stdout whose reader stops reading: the run's "nothing has moved" named only the servers'
/// states, not the reader it waited for. Said as the reader's wait.
#[test]
fn a_stdout_reader_that_does_not_read_is_said() {
    use std::io::Read;

    let c = clusters();
    let src = database(
        &c.source,
        &format!("{T} INSERT INTO t SELECT g, repeat('v', 200) FROM generate_series(1, 20000) g;"),
    );
    let (mut reader, writer) = std::io::pipe().unwrap();
    let mut child = copyman()
        .args(["table", "t", "--from", &c.source.url(&src), "--to", "-"])
        .env("COPYMAN_TEST_SAY_AFTER", "2")
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The pipe is read only once the wait was said (however long the run took to get there).
    let mut lines = StderrLines::take(&mut child);
    lines.expect("waiting for the reader of a pipe it writes to");
    let mut sink = Vec::new();
    reader.read_to_end(&mut sink).unwrap();
    let status = child.wait().unwrap();
    let stderr = lines.rest();
    assert!(status.success(), "{status}: {stderr}");
    // The source waits for copyman because of the pipe: no frozen server or lost network path
    // said (a DBA went looking for one).
    assert!(
        !stderr.contains("is frozen, or the network path"),
        "{stderr}"
    );
    assert_eq!(sink.iter().filter(|&&b| b == b'\n').count(), 20000);
}

/// A FIFO source that no writer has opened yet: the run's "nothing has moved" blamed the
/// destination's backend (waiting for its client: "frozen, or the network path lost"). Said as
/// the FIFO's wait, and the copy goes on once a writer comes.
#[test]
fn a_fifo_source_without_a_writer_is_said_as_its_wait() {
    use std::io::Write;

    let c = clusters();
    let d1 = database(&c.dest[0], T);
    let fifo = TempPath::new("nowriter.fifo");
    let made = Command::new("mkfifo").arg(&fifo.0).status().unwrap();
    assert!(made.success());
    let mut child = copyman()
        .args([
            "copy",
            "--from",
            fifo.arg(),
            "--to",
            &c.dest[0].conninfo(&d1),
        ])
        .args(["--receive", "COPY t FROM STDIN"])
        .env("COPYMAN_TEST_SAY_AFTER", "2")
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The writer comes only once the wait was said (however long the run took to get there).
    let mut lines = StderrLines::take(&mut child);
    lines.expect(&format!(
        "nothing has moved for 2 s: waiting for a writer of FIFO {}",
        fifo.arg()
    ));
    let mut w = fs::OpenOptions::new().write(true).open(&fifo.0).unwrap();
    w.write_all(b"1\tone\n2\ttwo\n").unwrap();
    drop(w);
    let status = child.wait().unwrap();
    let stderr = lines.rest();
    assert!(status.success(), "{status}: {stderr}");
    assert!(
        !stderr.contains("is frozen, or the network path"),
        "{stderr}"
    );
    assert_eq!(count(&c.dest[0], &d1, "t"), 2);
}

/// A file name that is not UTF-8 (an old LATIN1-named export): the argument parser refused it
/// ("invalid UTF-8 was detected", naming no argument); psql's `\copy`, cat and gzip take it.
/// Read and written as given.
#[test]
fn file_names_that_are_not_utf8_are_taken() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    let c = clusters();
    let src = source(c);
    let d1 = database(&c.dest[0], T);
    let dir = TempDir::new("latin1-names");
    let path = dir.0.join(OsStr::from_bytes(b"caf\xe9.txt"));
    let out = copyman()
        .args(["table", "t", "--from", &c.source.url(&src), "--to"])
        .arg(&path)
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert_eq!(lines(&path).len(), 1000);
    let out = copyman()
        .args(["table", "t", "--from"])
        .arg(&path)
        .args(["--to", &c.dest[0].url(&d1)])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert_eq!(count(&c.dest[0], &d1, "t"), 1000);
}

/// Binary COPY data is not written to a terminal (gzip's rule): `--to -` on a terminal's
/// stdout (a pseudo-terminal from util-linux's `script`) with binary data — a table's
/// `--format binary`, a `--send`'s `FORMAT binary`, a binary file's copy — is refused before any
/// destination begins
/// (exit 2, the ways said), and nothing of the data reaches the terminal; text still goes.
/// The same for a destination file that names the terminal: `/dev/stdout`, `/dev/tty` (they
/// wrote PGCOPY's bytes on it, exit 0).
#[test]
fn binary_data_is_not_written_to_a_terminal() {
    let c = clusters();
    let src = source(c);
    let url = c.source.url(&src);
    // `piped`: a file given on copyman's stdin through a pipe (`cat FILE | copyman …`).
    let on_terminal_piped = |piped: Option<&str>, args: &[&str]| {
        let plain = copyman();
        let quoted: Vec<String> = std::iter::once(plain.get_program().to_string_lossy())
            .chain(args.iter().map(|a| (*a).into()))
            .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
            .collect();
        let line = match piped {
            Some(file) => format!("cat '{file}' | {}", quoted.join(" ")),
            None => quoted.join(" "),
        };
        let mut script = Command::new("script");
        for (var, value) in plain.get_envs() {
            match value {
                Some(value) => script.env(var, value),
                None => script.env_remove(var),
            };
        }
        script
            .args(["-qec", &line, "/dev/null"])
            .stdin(Stdio::null())
            .output()
            .expect("util-linux's script (Debian's bsdutils, an essential package)")
    };
    let on_terminal = |args: &[&str]| on_terminal_piped(None, args);
    for args in [
        &[
            "table", "t", "--from", &url, "--to", "-", "--format", "binary",
        ][..],
        &[
            "copy",
            "--from",
            &url,
            "--send",
            "COPY t TO STDOUT (FORMAT binary)",
            "--to",
            "-",
        ][..],
    ] {
        let out = on_terminal(args);
        let said = text(&out.stdout);
        assert_exit(&out, 2);
        assert!(
            said.contains("--to -: binary COPY data is not written to a terminal: give --to FILE")
                && !said.contains("PGCOPY"),
            "{said}"
        );
    }
    // A binary file copied to `-` (files48 F2: its PGCOPY bytes went to the terminal, exit 0).
    let bin = TempPath::new("to-terminal.bin");
    let out = run(&[
        "table",
        "t",
        "--from",
        &url,
        "--to",
        bin.arg(),
        "--format",
        "binary",
    ]);
    assert_exit(&out, 0);
    let out = on_terminal(&["copy", "--from", bin.arg(), "--to", "-"]);
    let said = text(&out.stdout);
    assert_exit(&out, 2);
    assert!(
        said.contains("--to -: binary COPY data is not written to a terminal")
            && !said.contains("PGCOPY")
            && !said.contains("--format"),
        "{said}"
    );
    // The same file through a pipe on stdin, whose start only the run reads (recheck48a F2).
    let out = on_terminal_piped(Some(bin.arg()), &["copy", "--from", "-", "--to", "-"]);
    let said = text(&out.stdout);
    assert_exit(&out, 2);
    assert!(
        said.contains("--to -: binary COPY data is not written to a terminal")
            && !said.contains("PGCOPY"),
        "{said}"
    );
    for terminal in ["/dev/stdout", "/dev/tty"] {
        let args = [
            "table", "t", "--from", &url, "--to", terminal, "--format", "binary",
        ];
        let out = on_terminal(&args);
        let said = text(&out.stdout);
        assert_exit(&out, 2);
        assert!(
            said.contains(&format!(
                "--to {terminal}: binary COPY data is not written to a terminal"
            )) && !said.contains("PGCOPY"),
            "{said}"
        );
    }
    let out = on_terminal(&["table", "t", "--from", &url, "--to", "-", "--quiet"]);
    assert_exit(&out, 0);
    assert!(
        text(&out.stdout).contains("1000\tv1000"),
        "{}",
        text(&out.stdout)
    );
}

/// A file destination is renamed into place once every server committed — a server's COMMIT
/// that fails then leaves the old file as it was (commit46 F3: a file named before it was
/// replaced, exit 4) — and the rename is made durable (its directory synced) before the run
/// ends, as PostgreSQL's `durable_rename` does: an OS crash could otherwise bring the old file
/// back beside servers that committed the new rows, after a run that exited 0 (files39 F5).
/// Read from strace's trace of the run: the `rename` follows the server's `COMMIT`, the
/// directory's `fsync` follows the `rename`.
#[test]
fn a_file_is_renamed_into_place_after_the_servers_commit_and_made_durable() {
    if Command::new("strace").arg("-V").output().is_err() {
        eprintln!(
            "SKIPPED a_file_is_renamed_into_place_after_the_servers_commit_and_made_durable: \
             strace is not installed (.ci/run installs it)"
        );
        return;
    }
    let c = clusters();
    let src = source(c);
    let d1 = database(&c.dest[0], T);
    let dir = TempPath::new("durable");
    fs::create_dir(&dir.0).unwrap();
    let out_file = dir.0.join("out.txt");
    fs::write(&out_file, "old\n").unwrap();
    let trace = dir.0.join("trace");
    let plain = copyman();
    let mut strace = Command::new("strace");
    for (var, value) in plain.get_envs() {
        match value {
            Some(value) => strace.env(var, value),
            None => strace.env_remove(var),
        };
    }
    let out = strace
        .args([
            "-f",
            "-s",
            "32",
            "-e",
            "trace=rename,renameat,renameat2,fsync,openat,sendto,write",
        ])
        .arg("-o")
        .arg(&trace)
        .arg(plain.get_program())
        .args([
            "table",
            "t",
            "--from",
            &c.source.conninfo(&src),
            "--to",
            out_file.to_str().unwrap(),
            "--to",
            &c.dest[0].conninfo(&d1),
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert_eq!(lines(&out_file).len(), 1000);
    let trace = fs::read_to_string(&trace).unwrap();
    let lines: Vec<&str> = trace.lines().collect();
    let renamed = (lines.iter())
        .position(|l| l.contains("rename") && l.contains("out.txt\""))
        .unwrap_or_else(|| panic!("no rename onto out.txt:\n{trace}"));
    // The destination's COMMIT (the first: the source's read-only one ends the run).
    let commit = (lines.iter())
        .position(|l| l.contains("COMMIT\\0"))
        .unwrap_or_else(|| panic!("no COMMIT sent:\n{trace}"));
    assert!(
        commit < renamed,
        "renamed before the destination's COMMIT:\n{trace}"
    );
    // The directory opened and synced after the rename.
    let between = &lines[renamed..];
    let dir_name = dir.0.to_str().unwrap();
    let opened = (between.iter())
        .find(|l| l.contains("openat") && l.contains(&format!("\"{dir_name}\"")))
        .and_then(|l| l.rsplit("= ").next())
        .and_then(|fd| fd.trim().parse::<i32>().ok())
        .unwrap_or_else(|| panic!("the directory is not opened after the rename:\n{trace}"));
    assert!(
        between
            .iter()
            .any(|l| l.contains(&format!("fsync({opened})"))),
        "the directory is not synced after the rename:\n{trace}"
    );
    // The old file is never opened for writing: a program watching it for the close of a write
    // (inotify's IN_CLOSE_WRITE) took it for the new one before any row was copied (files39 F13).
    let old_name = format!("\"{}\"", out_file.to_str().unwrap());
    let written = (lines.iter())
        .find(|l| l.contains(&old_name) && (l.contains("O_WRONLY") || l.contains("O_RDWR")));
    assert!(
        written.is_none(),
        "the old file opened for writing: {written:?}"
    );
}

/// A server whose COMMIT fails (a deferred unique key violated at commit) leaves a file
/// destination as it was, whatever the order of `--to`: the file is renamed into place only
/// once every server committed (commit46 F3: named first, it was replaced, exit 4).
#[test]
fn a_server_commit_that_fails_leaves_the_old_file_whatever_the_order() {
    let c = clusters();
    let src = source(c);
    let d1 = database(
        &c.dest[0],
        "CREATE TABLE t (id int8 UNIQUE DEFERRABLE INITIALLY DEFERRED, v text); \
         INSERT INTO t VALUES (7, 'theirs');",
    );
    let dir = TempPath::new("old-file-kept");
    fs::create_dir(&dir.0).unwrap();
    let file = dir.0.join("export.txt");
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&d1));
    for order in [
        [file.to_str().unwrap(), to.as_str()],
        [&to, file.to_str().unwrap()],
    ] {
        fs::write(&file, "yesterday\n").unwrap();
        let out = run(&[
            "table", "t", "--from", &from, "--to", order[0], "--to", order[1],
        ]);
        assert_exit(&out, 1);
        assert!(text(&out.stderr).contains("23505"), "{}", text(&out.stderr));
        assert_eq!(
            fs::read_to_string(&file).unwrap(),
            "yesterday\n",
            "{order:?}"
        );
        assert_eq!(count(&c.dest[0], &d1, "t"), 1);
    }
}

/// A file destination whose temporary file another program removed before its rename is not
/// said to be kept there (recheck46 F6: "the complete copy is kept in …tmp", which was gone).
#[test]
fn a_temporary_file_removed_before_its_rename_is_not_said_kept() {
    let c = clusters();
    let src = source(c);
    let d1 = database(&c.dest[0], T);
    let dir = TempPath::new("temp-gone");
    fs::create_dir(&dir.0).unwrap();
    let file = dir.0.join("export.txt");
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&d1));
    let args = [
        "table",
        "t",
        "--from",
        &from,
        "--to",
        &to,
        "--to",
        file.to_str().unwrap(),
    ];
    // The server committed; the file, last, is not renamed yet.
    let paused = Paused::start(&args, "committed:1");
    for entry in fs::read_dir(&dir.0).unwrap().flatten() {
        fs::remove_file(entry.path()).unwrap();
    }
    let out = paused.resume();
    assert_exit(&out, 4);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("that file is gone") && !stderr.contains("is kept in"),
        "{stderr}"
    );
    assert!(!file.exists());
    assert_eq!(count(&c.dest[0], &d1, "t"), 1000);
}

/// An existing file destination that is append-only or immutable (`chattr +a`, `+i`) is
/// refused before anything is copied, saying so: a rename cannot replace it (EPERM after the
/// servers' commits). Skipped, loudly, where the file system keeps no such flags.
#[test]
fn an_append_only_file_destination_is_refused_before_the_copy() {
    let c = clusters();
    let src = source(c);
    let d1 = database(&c.dest[0], T);
    let dir = TempPath::new("append-only");
    fs::create_dir(&dir.0).unwrap();
    let old = dir.0.join("log.txt");
    fs::write(&old, "old\n").unwrap();
    let chattr = |flag: &str| Command::new("chattr").arg(flag).arg(&old).output();
    if !chattr("+a").is_ok_and(|o| o.status.success()) {
        eprintln!(
            "SKIPPED an_append_only_file_destination_is_refused_before_the_copy: chattr +a does \
             not work here (no chattr, or a file system without inode flags)"
        );
        return;
    }
    let out = run(&[
        "table",
        "t",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        &c.dest[0].conninfo(&d1),
        "--to",
        old.to_str().unwrap(),
    ]);
    chattr("-a").unwrap();
    let said = text(&out.stderr);
    assert_exit(&out, 2);
    assert!(
        said.contains("destination 2") && said.contains("append-only or immutable (chattr +a"),
        "{said}"
    );
    assert_eq!(fs::read_to_string(&old).unwrap(), "old\n");
    assert_eq!(count(&c.dest[0], &d1, "t"), 0);
    assert_eq!(
        fs::read_dir(&dir.0).unwrap().count(),
        1,
        "a file left beside it"
    );
}

/// A dry run whose data would go to stdout (`--to -`, `--to /dev/stdout`) prints its plan on
/// stderr: on stdout, a pipeline checked with `--dry-run` (`| psql -c '\copy …'`, `| copyman …
/// --from -`) loaded the plan as rows, every process exiting 0 (files39 F7). A plan whose data
/// goes elsewhere stays on stdout. Stdout, a pipe, gets the mark that fails a COPY reading it
/// (recheck68 F4: an empty stream, read as an empty table).
#[test]
fn a_dry_run_with_data_on_stdout_prints_its_plan_on_stderr() {
    let c = clusters();
    let src = source(c);
    let d1 = database(&c.dest[0], T);
    let from = c.source.url(&src);
    for to in ["-", "/dev/stdout"] {
        let out = run(&["table", "t", "--from", &from, "--to", to, "--dry-run"]);
        assert_exit(&out, 0);
        let words = b"\\.copyman: a dry run sends no data\n\"'\\.copyman: a dry run sends no data";
        assert!(
            out.stdout == [&words[..], &mark_tail()].concat(),
            "--to {to}: {}",
            text(&out.stdout)
        );
        assert!(
            text(&out.stderr).contains("dry run, nothing copied"),
            "--to {to}: {}",
            text(&out.stderr)
        );
    }
    let out = run(&[
        "table",
        "t",
        "--from",
        &from,
        "--to",
        &c.dest[0].url(&d1),
        "--dry-run",
    ]);
    assert_exit(&out, 0);
    assert!(text(&out.stdout).contains("dry run, nothing copied"));
}

/// `--to /dev/fd/N` names the caller's descriptor N: one the shell did not open is refused
/// before anything (exit 2, the redirection to give), as is one open for reading only. It was
/// resolved once copyman ran, to a descriptor of its own that took the number (a server's
/// connection, a socketpair): the rows went into it, "committed", exit 0 (files39 F8). One
/// given (`7> FILE`) gets the rows.
#[test]
fn a_descriptor_not_given_by_the_caller_is_refused() {
    let c = clusters();
    let src = source(c);
    let from = c.source.url(&src);
    let dir = TempPath::new("fds");
    fs::create_dir(&dir.0).unwrap();
    let file = dir.0.join("seven.txt");
    fs::write(&file, "").unwrap();
    let file = file.to_str().unwrap();
    for (fd, redirect, said) in [
        (
            "7",
            String::new(),
            "descriptor 7 is not open: give it with a redirection (7> FILE)",
        ),
        ("5", String::new(), "descriptor 5 is not open"),
        (
            "7",
            format!(" 7<'{file}'"),
            "descriptor 7 is open for reading only (7<)",
        ),
        // `--to /dev/stdin` (a mistyped `--from`): it failed after connecting, "Bad file
        // descriptor", exit 1 (files40 F4).
        (
            "0",
            format!(" <'{file}'"),
            "stdin (descriptor 0) is open for reading only",
        ),
    ] {
        let to = format!("/dev/fd/{fd}");
        let out = via_sh(
            &format!(r#"exec "$0" "$@"{redirect}"#),
            &["table", "t", "--from", &from, "--to", &to],
        )
        .output()
        .unwrap();
        assert_exit(&out, 2);
        let stderr = text(&out.stderr);
        assert!(stderr.contains(&format!("--to {to}: {said}")), "{stderr}");
        assert!(!connected(&out), "{stderr}");
    }
    // Stderr closed: `--to /dev/stderr` went to the /dev/null copyman put there, exit 0.
    let out = via_sh(
        r#"exec "$0" "$@" 2>&-"#,
        &["table", "t", "--from", &from, "--to", "/dev/stderr"],
    )
    .output()
    .unwrap();
    assert_exit(&out, 2);
    let out = via_sh(
        &format!(r#"exec "$0" "$@" 7>'{file}'"#),
        &["table", "t", "--from", &from, "--to", "/dev/fd/7"],
    )
    .output()
    .unwrap();
    assert_exit(&out, 0);
    assert_eq!(lines(file).len(), 1000);
}

/// `--to /dev/stderr` (`/dev/fd/2`) is refused as `--to - 2>&1` is: copyman's warnings and
/// summary were written into the data, exit 0 (files39 F10).
#[test]
fn stderr_as_a_destination_is_refused() {
    let c = clusters();
    let src = source(c);
    let from = c.source.url(&src);
    let data = TempPath::new("stderr-data.txt");
    for to in ["/dev/stderr", "/dev/fd/2"] {
        let out = via_sh(
            &format!(r#"exec "$0" "$@" 2>'{}'"#, data.arg()),
            &["table", "t", "--from", &from, "--to", to],
        )
        .output()
        .unwrap();
        assert_exit(&out, 2);
        let said = fs::read_to_string(&data.0).unwrap();
        assert!(
            said.contains(&format!(
                "--to {to}: it is stderr, where copyman's messages go"
            )) && !said.contains("1\tv1"),
            "{said}"
        );
    }
}

/// A temporary file an earlier run left beside the destination (its process killed with
/// SIGKILL, which nothing can catch) is said by the next run to the same file, for the user to
/// remove: a hidden copy, kept for good without a word (files39 F11). One of a live process is
/// not said.
#[test]
fn an_earlier_runs_temporary_file_left_beside_is_said() {
    let c = clusters();
    let src = source(c);
    let dir = TempPath::new("leftover");
    fs::create_dir(&dir.0).unwrap();
    let target = dir.0.join("out.txt");
    fs::write(&target, "old\n").unwrap();
    // A process that is gone: one that ran and was waited for.
    let mut gone = Command::new("true").spawn().unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    let left = dir
        .0
        .join(format!(".out.txt.copyman-{dead}-00000000deadbeef.tmp"));
    fs::write(&left, "half a copy").unwrap();
    let live = dir.0.join(format!(
        ".out.txt.copyman-{}-0000000000000001.tmp",
        std::process::id()
    ));
    fs::write(&live, "being written").unwrap();
    let out = run(&[
        "table",
        "t",
        "--from",
        &c.source.url(&src),
        "--to",
        target.to_str().unwrap(),
    ]);
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "an earlier run's temporary file {} is left beside it (its process {dead} is gone",
            left.display()
        )) && !stderr.contains(&live.display().to_string()),
        "{stderr}"
    );
    assert!(left.exists(), "said, not removed");
}

/// Replacing an existing file keeps its extended attributes — a POSIX ACL is one, so is a
/// `user.*` tag — as writing it in place does: a reader its ACL let in lost the export after an
/// exit 0 (files40 F7). Skipped, loudly, where the file system keeps no user attributes.
#[test]
fn a_replaced_file_keeps_its_extended_attributes() {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = clusters();
    let src = source(c);
    let dir = TempPath::new("xattrs");
    fs::create_dir(&dir.0).unwrap();
    let out_file = dir.0.join("export.txt");
    fs::write(&out_file, "old\n").unwrap();
    let path = CString::new(out_file.as_os_str().as_bytes()).unwrap();
    let name = CString::new("user.origin").unwrap();
    // SAFETY: both strings are NUL-terminated and alive; the value is 7 readable bytes.
    let set = unsafe {
        libc::setxattr(
            path.as_ptr(),
            name.as_ptr(),
            b"nightly".as_ptr().cast(),
            7,
            0,
        )
    };
    if set != 0 {
        eprintln!(
            "SKIPPED a_replaced_file_keeps_its_extended_attributes: user attributes cannot be \
             set here ({})",
            std::io::Error::last_os_error()
        );
        return;
    }
    let out = run(&[
        "table",
        "t",
        "--from",
        &c.source.conninfo(&src),
        "--to",
        out_file.to_str().unwrap(),
    ]);
    assert_exit(&out, 0);
    assert_eq!(lines(&out_file).len(), 1000);
    let mut value = [0u8; 16];
    // SAFETY: as above; `value` is 16 writable bytes.
    let got = unsafe {
        libc::getxattr(
            path.as_ptr(),
            name.as_ptr(),
            value.as_mut_ptr().cast(),
            value.len(),
        )
    };
    assert_eq!(got, 7, "the attribute is gone: {}", text(&out.stderr));
    assert_eq!(&value[..7], b"nightly");
}

/// A run that fails after data went out to stdout (or a pipe) ends that data with a mark any
/// COPY reading it fails on: copyman's data is cut between rows, which a reader took for the
/// whole (files65 F21: `copyman … --to - | copyman … --from -` committed 131 072 rows of
/// 149 999 with exit 0; `--truncate` there replaced a table by the part). Text and CSV; the
/// server's COPY and copyman's reading of a pipe both fail on it, and the summary says so.
#[test]
fn data_cut_by_a_failed_run_on_stdout_is_marked_so_that_a_reader_fails() {
    let c = clusters();
    let src = source(c);
    let from = c.source.conninfo(&src);
    let dest = database(&c.dest[0], "CREATE TABLE n (x int8, s text);");
    for format in ["text", "csv"] {
        // Rows until the 150 000th fails (22012), well after 256 KiB went out.
        let send = format!(
            "COPY (SELECT 1 / (150000 - g), 'a\"b\\c' FROM generate_series(1, 200000) g) \
             TO STDOUT (FORMAT {format})"
        );
        let out = run(&["copy", "--from", &from, "--send", &send, "--to", "-"]);
        assert_exit(&out, 1);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("went out before the run failed and cannot be taken back")
                && stderr.contains("(its end is marked: a COPY reading it fails"),
            "{format}: {stderr}"
        );
        assert!(
            out.stdout.len() > 256 * 1024
                && out
                    .stdout
                    .ends_with(b"copyman: the copy failed here: this data is cut short"),
            "{format}: {} bytes",
            out.stdout.len()
        );
        // The server's COPY of it fails (22P04), nothing loaded.
        let mut client = c.dest[0].connect(&dest);
        let mut writer = client
            .copy_in(&format!("COPY n FROM STDIN (FORMAT {format})"))
            .unwrap();
        std::io::Write::write_all(&mut writer, &out.stdout).unwrap();
        let error = writer.finish().unwrap_err();
        assert_eq!(
            error.code().map(|c| c.code()),
            Some("22P04"),
            "{format}: {error}"
        );
        // So does copyman's reading of it from a pipe.
        let again = run_with_stdin(
            &[
                "table",
                "n",
                "--from",
                "-",
                "--to",
                &c.dest[0].conninfo(&dest),
                "--format",
                format,
            ],
            &out.stdout,
        );
        assert_exit(&again, 1);
        assert_eq!(count(&c.dest[0], &dest, "n"), 0, "{format}");
    }
    // Failed before any row went out: the mark alone, an empty stream being an empty table to
    // a reader (files67 F16: `COPY 0`, exit 0), on two lines (one a reader skips as a header:
    // recheck68 F10), the second opening a CSV value too, with `"` and `'`.
    let out = run(&[
        "copy",
        "--from",
        &from,
        "--send",
        "COPY (SELECT 1/0) TO STDOUT",
        "--to",
        "-",
    ]);
    assert_exit(&out, 1);
    let words = b"copyman: the copy failed here: this data is cut short\"'";
    assert!(
        out.stdout.ends_with(&[&words[..], &mark_tail()].concat())
            && out.stdout.len() < 120 + mark_tail().len()
            && out.stdout.contains(&b'\n'),
        "{:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        text(&out.stderr).contains("no data went out before the run failed"),
        "{}",
        text(&out.stderr)
    );
    let again = run_with_stdin(
        &[
            "table",
            "n",
            "--from",
            "-",
            "--to",
            &c.dest[0].conninfo(&dest),
        ],
        &out.stdout,
    );
    assert_exit(&again, 1);
    assert_eq!(count(&c.dest[0], &dest, "n"), 0);
}

/// `copyman copy` of two million generated rows in `format` to stdout, a pipe: the child, its
/// stdout, and the first 4 KiB read of it (data under way, the pipe full behind them).
fn piped_copy(
    from: &str,
    format: &str,
) -> (std::process::Child, std::process::ChildStdout, Vec<u8>) {
    use std::io::Read;
    let send = format!(
        "COPY (SELECT g, 'v' || g FROM generate_series(1, 2000000) g) TO STDOUT (FORMAT {format})"
    );
    let mut child = copyman()
        .args(["copy", "--from", from, "--send", &send, "--to", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = vec![0u8; 4096];
    stdout.read_exact(&mut first).unwrap();
    (child, stdout, first)
}

/// A server's COPY of `data` in `format` into `n` of `dest` fails: nothing of it loaded.
#[track_caller]
fn assert_fails_a_copy(cluster: &copyman_testkit::Cluster, dest: &str, format: &str, data: &[u8]) {
    assert_fails_a_copy_into(cluster, dest, "n", format, data);
}

/// [`assert_fails_a_copy`] into `table`.
#[track_caller]
fn assert_fails_a_copy_into(
    cluster: &copyman_testkit::Cluster,
    dest: &str,
    table: &str,
    format: &str,
    data: &[u8],
) {
    let mut client = cluster.connect(dest);
    let mut writer = client
        .copy_in(&format!("COPY {table} FROM STDIN (FORMAT {format})"))
        .unwrap();
    std::io::Write::write_all(&mut writer, data).unwrap();
    assert!(writer.finish().is_err(), "{format}: read as a table");
    assert_eq!(count(cluster, dest, table), 0, "{format}");
}

/// Whether text or CSV data ends in the mark of its cut (binary is followed otherwise).
#[track_caller]
fn assert_ends_marked(format: &str, rest: &[u8]) {
    assert!(
        format == "binary"
            || rest.ends_with(b"copyman: the copy failed here: this data is cut short"),
        "{format}: {} bytes, ending {:?}",
        rest.len(),
        String::from_utf8_lossy(&rest[rest.len().saturating_sub(80)..])
    );
}

/// An exit at once (SIGQUIT, a second signal) while text or CSV goes out to a pipe marks its
/// end as a failed run does, and says so: the reader got a clean end of data, and `… | psql -c
/// "COPY …"` committed part of the table, exit 0, while copyman said "nothing committed"
/// (signals67 F1).
#[test]
fn an_exit_at_once_marks_the_end_of_data_cut_on_a_pipe() {
    use std::io::Read;
    let c = clusters();
    let src = source(c);
    let from = c.source.conninfo(&src);
    let dest = database(&c.dest[0], "CREATE TABLE n (g int, v text);");
    for format in ["text", "csv", "binary"] {
        let (child, mut stdout, first) = piped_copy(&from, format);
        std::thread::sleep(std::time::Duration::from_millis(300));
        signal(&child, "QUIT");
        let mut rest = Vec::new();
        stdout.read_to_end(&mut rest).unwrap();
        let out = child.wait_with_output().unwrap();
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(131), "{format}: {stderr}");
        assert_ends_marked(format, &rest);
        assert!(
            stderr.contains("bytes of data went out to stdout before the exit")
                && (stderr.contains("their end is marked") || format == "binary"),
            "{format}: {stderr}"
        );
        // A server's COPY of it fails — binary data too, which a reader took for whole at a
        // tuple's boundary (signals67 F13: a part committed, exit 0).
        assert_fails_a_copy(&c.dest[0], &dest, format, &[first, rest].concat());
    }
    // To a FIFO, under --json: its document says the data sent and its end marked (recheck68
    // F1: "rolled back", as a server's, the end unsaid).
    let dir = TempDir::new("at-once-fifo");
    let fifo = dir.path("ff");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let send = "COPY (SELECT g, 'v' || g FROM generate_series(1, 2000000) g) TO STDOUT";
    let child = copyman()
        .args([
            "copy", "--from", &from, "--send", send, "--to", &fifo, "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = fs::File::open(&fifo).unwrap();
    let mut first = vec![0u8; 4096];
    reader.read_exact(&mut first).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    signal(&child, "QUIT");
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(131), "{}", text(&out.stderr));
    assert_ends_marked("text", &rest);
    let document = json(&out);
    let record = &document["destinations"][0];
    assert_eq!(record["status"], "sent", "{document}");
    assert!(
        record["message"]
            .as_str()
            .is_some_and(|m| m.contains("their end is marked")),
        "{document}"
    );
}

/// A first signal while the reader of the pipe is not reading (its COPY waits for a lock, it is
/// slow): the run waits for the reader to take the mark of its end, however long, and then
/// ends — it exited at once, the mark dropped, and `… | psql -c "COPY …"` committed part of the
/// table with a cut-short last row, exit 0 (recheck67 F1).
#[test]
fn a_stop_waits_for_the_pipes_reader_to_take_the_mark() {
    use std::io::Read;
    let c = clusters();
    let src = source(c);
    let from = c.source.conninfo(&src);
    let dest = database(&c.dest[0], "CREATE TABLE n (g int, v text);");
    for format in ["text", "csv", "binary"] {
        let (mut child, mut stdout, first) = piped_copy(&from, format);
        // The pipe full, its reader not reading when the signal comes, nor for a while after.
        std::thread::sleep(std::time::Duration::from_millis(500));
        signal(&child, "INT");
        std::thread::sleep(std::time::Duration::from_millis(1500));
        // (Binary data cut inside a field needs no mark: its reader fails there.)
        assert!(
            format == "binary" || child.try_wait().unwrap().is_none(),
            "{format}: it did not wait"
        );
        let mut rest = Vec::new();
        stdout.read_to_end(&mut rest).unwrap();
        let out = child.wait_with_output().unwrap();
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(130), "{format}: {stderr}");
        assert_ends_marked(format, &rest);
        assert!(
            format == "binary" || stderr.contains("(its end is marked: a COPY reading it fails"),
            "{format}: {stderr}"
        );
        assert_fails_a_copy(&c.dest[0], &dest, format, &[first, rest].concat());
    }
}

/// The formats of the COPY readers a mark on stdout must fail: text, and CSV with or without a
/// header line, quoting with `"` or with `'`.
const READERS: [&str; 7] = [
    "text",
    "csv",
    "csv, HEADER",
    "csv, QUOTE ''''",
    "csv, HEADER, QUOTE ''''",
    // "Whole lines" into one text column, in UTF-8 and in a one-byte encoding (recheck74 F1:
    // it loaded the marks).
    "csv, QUOTE E'\\x01', DELIMITER E'\\x02'",
    "csv, QUOTE E'\\x01', DELIMITER E'\\x02', ENCODING 'LATIN1'",
];

/// A run to stdout (a pipe) that fails before any data — its source unreachable, its table
/// missing — marks it so that a COPY reading it fails, text or CSV: its reader got an empty
/// stream, and `| psql -c 'TRUNCATE t' -c 'COPY t FROM STDIN'` emptied the table, exit 0
/// (recheck67 F16). So does one refused for its arguments (recheck68 F2: a typo in an option
/// left the pipe empty), one with `--json`, whose document does not go into the data's pipe
/// (recheck68 F3: it was loaded as rows), and a dry run, which sends no data (recheck68 F4).
#[test]
fn a_run_that_fails_before_any_data_marks_stdout() {
    let c = clusters();
    let src = source(c);
    let dest = database(
        &c.dest[0],
        "CREATE TABLE n (g int, v text); CREATE TABLE one (body text);",
    );
    let unreachable = "host=127.0.0.1 port=1 user=x dbname=x connect_timeout=2";
    for (args, code) in [
        (&["table", "n", "--from", unreachable, "--to", "-"][..], 3),
        (
            &[
                "table",
                "nosuch",
                "--from",
                &c.source.conninfo(&src),
                "--to",
                "-",
            ],
            2,
        ),
    ] {
        let out = run(args);
        assert_exit(&out, code);
        assert_eq!(out.stdout, unsent(), "{}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains("a mark that fails a COPY reading it"),
            "{}",
            text(&out.stderr)
        );
        // (A reader that skips a header line too: recheck68 F10; one with a quote of its
        // own into a table of one text column, which reads the mark as a value unless it
        // opens a quote: recheck69 F12.)
        for format in ["text", "csv", "csv, HEADER", "csv, HEADER, QUOTE ''''"] {
            assert_fails_a_copy(&c.dest[0], &dest, format, &out.stdout);
            assert_fails_a_copy_into(&c.dest[0], &dest, "one", format, &out.stdout);
        }
    }
    // A `--send` that declares its quote: the mark opens a value with it.
    let from_src = c.source.conninfo(&src);
    for quote in ["''''", "'|'"] {
        let send = format!("COPY nosuch TO STDOUT (FORMAT csv, HEADER, QUOTE {quote})");
        let out = run(&["copy", "--from", &from_src, "--send", &send, "--to", "-"]);
        assert_exit(&out, 2);
        let words = "\\.copyman: the run failed before any data was sent";
        let q = &quote[1..quote.len() - 1].replace("''", "'");
        let marked = [format!("{words}\n{q}{words}").as_bytes(), &mark_tail()].concat();
        assert!(out.stdout == marked, "{}", text(&out.stdout));
        let format = format!("csv, HEADER, QUOTE {quote}");
        assert_fails_a_copy_into(&c.dest[0], &dest, "one", &format, &out.stdout);
    }
    let from = c.source.conninfo(&src);
    for args in [
        &["table", "n", "--from", &from, "--to", "-", "--trunacte"][..],
        // The subcommand misspelt, or left out (recheck69 F4: unmarked).
        &["tabel", "n", "--from", &from, "--to", "-"],
        &["n", "--from", &from, "--to", "-"],
        &["table", "n", "--from", &from, "--to=-", "--truncate"],
        &["table", "n", "--from", &from, "--to", "-", "--json"],
        &[
            "table",
            "n",
            "--from",
            unreachable,
            "--to",
            "-",
            "--dry-run",
        ],
    ] {
        let out = run(args);
        assert!(out.status.code().is_some_and(|c| c > 0), "{args:?}");
        assert_eq!(out.stdout, unsent(), "{args:?}: {}", text(&out.stderr));
    }
    let out = run(&["table", "t", "--from", &from, "--to", "-", "--dry-run"]);
    assert_exit(&out, 0);
    let words = b"\\.copyman: a dry run sends no data\n\"'\\.copyman: a dry run sends no data";
    assert!(out.stdout == [&words[..], &mark_tail()].concat());
    for format in ["text", "csv", "csv, HEADER"] {
        assert_fails_a_copy(&c.dest[0], &dest, format, &out.stdout);
    }
    // A file's or stdin's data cut short on stdout is marked as a server's (recheck68 F12:
    // never, and the reader committed the rows before the cut).
    let mut input: Vec<u8> = (1..=200_000)
        .flat_map(|g| format!("{g}\tv{g}\n").into_bytes())
        .collect();
    input.extend(b"200001\tcut sho");
    let out = run_with_stdin(&["table", "n", "--from", "-", "--to", "-"], &input);
    assert_exit(&out, 1);
    assert!(out.stdout.len() > 1 << 20, "{}", text(&out.stderr));
    assert_fails_a_copy(&c.dest[0], &dest, "text", &out.stdout);
    // And passed through with no statement, in COPY's default, text (recheck69 F3: copy mode
    // wrote it unmarked, and the reader committed the rows before the cut).
    for input in [&input[..], b"1\tx\n2\ty"] {
        let out = run_with_stdin(&["copy", "--from", "-", "--to", "-"], input);
        assert_exit(&out, 1);
        let said = text(&out.stderr);
        assert!(
            said.contains("its end is marked") || said.contains("only a mark that fails a COPY"),
            "{said}"
        );
        assert_fails_a_copy(&c.dest[0], &dest, "text", &out.stdout);
    }
    // CSV passed through so: its mark fails a CSV reader too, wherever the output stopped
    // (recheck70 F7: marked as text, `\.` was data there, and 94 388 rows were committed).
    // An empty stdin, what a command that failed upstream gives, or an empty file: failed,
    // stdout marked (recheck70 F13, recheck71 F7: exit 0, nothing written, and the reader
    // emptied its table).
    let empty = TempPath::new("empty-input.txt");
    fs::write(&empty.0, "").unwrap();
    for args in [
        &["copy", "--from", "-", "--to", "-"][..],
        &["table", "one", "--from", "-", "--to", "-"],
        &["copy", "--from", empty.arg(), "--to", "-"],
    ] {
        let out = run_with_stdin(args, b"");
        assert_exit(&out, 1);
        assert!(
            text(&out.stderr).contains("gave no data at all"),
            "{}",
            text(&out.stderr)
        );
        for format in READERS {
            assert_fails_a_copy_into(&c.dest[0], &dest, "one", format, &out.stdout);
        }
    }
    // Into a pipe given by its name (a FIFO; `>(…)` is a `/dev/fd/N` pipe) alike (recheck72 F3:
    // exit 0, nothing written, the reader emptied its table).
    let fifo = TempPath::new("empty-into.fifo");
    crate::conn_edges::mkfifo(&fifo.0);
    let path = fifo.0.clone();
    let reader = std::thread::spawn(move || fs::read(path).unwrap());
    let out = run_with_stdin(&["copy", "--from", empty.arg(), "--to", fifo.arg()], b"");
    assert_exit(&out, 1);
    let read = reader.join().unwrap();
    for format in READERS {
        assert_fails_a_copy_into(&c.dest[0], &dest, "one", format, &read);
    }
    // (One column, as a reader into a table of one text column takes any line.)
    let mut csv: Vec<u8> = (1..=200_000)
        .flat_map(|g| format!("\"v \"\"{g}\"\"\"\nplain {g}\n").into_bytes())
        .collect();
    csv.extend(b"\"cu");
    for input in [&csv[..], b"x\ny"] {
        let out = run_with_stdin(&["copy", "--from", "-", "--to", "-"], input);
        assert_exit(&out, 1);
        for format in READERS {
            assert_fails_a_copy_into(&c.dest[0], &dest, "one", format, &out.stdout);
        }
    }
    // Cut where a CSV reader whose ESCAPE is `\` holds a value open that the quote count took
    // for closed (`\"`): the mark's quote closes it and the row loads (recheck72 F2: 32 347
    // rows committed, the mark in the last); the byte after it, no UTF-8, fails a UTF-8 reader,
    // and the fields after it one of a one-byte encoding (recheck73 F2: 0xFF was a letter in
    // LATIN1).
    let cut = b"1,\"say \\\"h\\.copyman: the copy failed here: this data is cut short\"'";
    let mut client = c.dest[0].connect(&dest);
    let mut writer = client
        .copy_in("COPY n FROM STDIN (FORMAT csv, ESCAPE '\\')")
        .unwrap();
    std::io::Write::write_all(&mut writer, cut).unwrap();
    assert_eq!(
        writer.finish().unwrap(),
        1,
        "the quotes alone fail it no more"
    );
    client.batch_execute("TRUNCATE n").unwrap();
    let marked = [&cut[..], &mark_tail()].concat();
    for encoding in ["UTF8", "LATIN1", "SQL_ASCII"] {
        let format = format!("csv, ESCAPE '\\', ENCODING '{encoding}'");
        assert_fails_a_copy_into(&c.dest[0], &dest, "n", &format, &marked);
    }
    // Not where stdout is no destination, whatever else failed.
    let out = run(&["table", "n", "--from", &from, "--to", "x.csv", "--trunacte"]);
    assert_exit(&out, 2);
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
}

/// An empty input (stdin of a producer that failed, an empty file) does not replace a file
/// destination that holds something by an empty one, as --truncate refuses to empty a table so
/// (files67 F20: the last good file lost, exit 0); a server's empty result does.
#[test]
fn an_empty_input_keeps_the_file_it_would_replace() {
    let keep = TempPath::new("keep.csv");
    fs::write(&keep.0, "1,a\n2,b\n").unwrap();
    let empty = TempPath::new("empty.csv");
    fs::write(&empty.0, "").unwrap();
    for out in [
        run_with_stdin(&["copy", "--from", "-", "--to", keep.arg()], b""),
        run(&["copy", "--from", empty.arg(), "--to", keep.arg()]),
    ] {
        assert_exit(&out, 1);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("would be replaced by an empty file") && stderr.contains("it is kept"),
            "{stderr}"
        );
        assert_eq!(fs::read_to_string(&keep.0).unwrap(), "1,a\n2,b\n");
    }
    // A new file from an empty input is made, empty.
    let new = TempPath::new("new.csv");
    assert_exit(&run(&["copy", "--from", empty.arg(), "--to", new.arg()]), 0);
    assert_eq!(fs::read_to_string(&new.0).unwrap(), "");
    // A CSV header and no row (a producer that failed after its header) keeps it too
    // (recheck67 F18); a file holding only its header is replaced by another.
    let csv = ["table", "t", "--from", "-", "--format", "csv", "--header"];
    let out = run_with_stdin(&[&csv[..], &["--to", keep.arg()]].concat(), b"a,b\n");
    assert_exit(&out, 1);
    assert!(
        text(&out.stderr).contains("the input held no rows")
            && text(&out.stderr).contains("would be replaced by one without rows"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(fs::read_to_string(&keep.0).unwrap(), "1,a\n2,b\n");
    fs::write(&new.0, "a,b\n").unwrap();
    let out = run_with_stdin(&[&csv[..], &["--to", new.arg()]].concat(), b"x,y\n");
    assert_exit(&out, 0);
    assert_eq!(fs::read_to_string(&new.0).unwrap(), "x,y\n");
}

/// A block device given as `--to` (a disk, a typo for a file) is refused before anything: it
/// was written over from its first byte (files67 F23). Asked of a dry run whose source cannot
/// be reached, so that nothing could be written even if it were not refused.
#[test]
fn a_block_device_is_no_destination() {
    use std::os::unix::fs::FileTypeExt;
    let Some(device) = fs::read_dir("/dev").ok().and_then(|entries| {
        entries
            .flatten()
            .find(|e| e.file_type().is_ok_and(|t| t.is_block_device()))
            .map(|e| e.path())
    }) else {
        eprintln!("SKIPPED a_block_device_is_no_destination: no block device under /dev here");
        return;
    };
    let nowhere = format!("host=127.0.0.1 port={} dbname=x user=x", closed_port());
    let device = device.to_str().unwrap();
    let out = run(&[
        "copy",
        "--from",
        &nowhere,
        "--send",
        "COPY t TO STDOUT",
        "--to",
        device,
        "--dry-run",
    ]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("this is a block device (a disk)"),
        "{}",
        text(&out.stderr)
    );
}
