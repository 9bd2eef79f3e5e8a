//! `connect_timeout` as libpq means it (issue 12 point 8): one deadline for the whole attempt on
//! a host, then "timeout expired" naming it, and on to the next host if there is one.

use crate::common;

use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::*;

/// Accepts connections and never answers; stops when dropped (or after two minutes). Made with
/// [`Silent::forwarding`], it first passes a number of connections on to a server.
struct Silent {
    port: u16,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Silent {
    fn start() -> Self {
        Self::forwarding(0, 0)
    }

    /// Passes its first `first` connections on to the server on port `to` of 127.0.0.1, then
    /// answers none: a server that becomes frozen (a SIGSTOPped postmaster, a full accept
    /// queue, a path lost) while copyman works with it.
    fn forwarding(first: usize, to: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, quit) = (Arc::clone(&accepted), Arc::clone(&stop));
        thread::spawn(move || {
            let mut held: Vec<TcpStream> = Vec::new();
            let until = Instant::now() + Duration::from_secs(120);
            while !quit.load(Ordering::Relaxed) && Instant::now() < until {
                match listener.accept() {
                    Ok((stream, _)) if count.fetch_add(1, Ordering::Relaxed) < first => {
                        stream.set_nonblocking(false).unwrap();
                        let server = TcpStream::connect(("127.0.0.1", to)).unwrap();
                        for (mut from, mut to) in [
                            (stream.try_clone().unwrap(), server.try_clone().unwrap()),
                            (server, stream),
                        ] {
                            thread::spawn(move || {
                                let _ = std::io::copy(&mut from, &mut to);
                                let _ = to.shutdown(std::net::Shutdown::Write);
                            });
                        }
                    }
                    Ok((stream, _)) => held.push(stream),
                    Err(_) => thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Self {
            port,
            accepted,
            stop,
        }
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[test]
fn connect_timeout_expires_and_the_next_host_is_tried() {
    let c = clusters();
    let silent = Silent::start();
    let src = database(&c.source, "SELECT 1");
    let dest = database(&c.dest[0], "CREATE TABLE t (n int)");
    let send = "COPY (SELECT generate_series(1, 10)) TO STDOUT";

    // The silent host alone: "timeout expired", naming it; exit 3 (could not connect).
    let alone = format!(
        "host=127.0.0.1 port={} user=postgres dbname={src} connect_timeout=1",
        silent.port
    );
    let out = run(&[
        "copy",
        "--from",
        &alone,
        "--send",
        send,
        "--to",
        &c.dest[0].url(&dest),
        "--receive",
        "COPY t FROM STDIN",
    ]);
    assert_exit(&out, 3);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("127.0.0.1:{}: timeout expired", silent.port)),
        "{stderr}"
    );
    assert!(!stderr.contains("temporarily unavailable"), "{stderr}");
    let tried = silent.accepted.load(Ordering::Relaxed);
    assert!(tried >= 1);

    // The silent host first, the real one second: the copy goes through the second.
    let url = c.source.url(&src);
    let both = url.replacen(
        "@127.0.0.1:",
        &format!("@127.0.0.1:{},127.0.0.1:", silent.port),
        1,
    ) + "?connect_timeout=1";
    let out = run(&[
        "copy",
        "--from",
        &both,
        "--send",
        send,
        "--to",
        &c.dest[0].url(&dest),
        "--receive",
        "COPY t FROM STDIN",
        "--json",
    ]);
    assert_exit(&out, 0);
    assert!(silent.accepted.load(Ordering::Relaxed) > tried);
    assert_eq!(count(&c.dest[0], &dest, "t"), 10);
}

/// `--stall-timeout` bounds a connect whose CONN gives no `connect_timeout`: a destination that
/// takes the connection and never answers is left out under `--keep-going`, the others commit,
/// one table and a job alike (the run waited for ever, said once after 10 s).
#[test]
fn stall_timeout_bounds_a_connect_that_never_answers() {
    let c = clusters();
    let silent = Silent::start();
    let src = database(
        &c.source,
        "CREATE TABLE t (n int); INSERT INTO t VALUES (1), (2);",
    );
    let state = TempPath::new("silent-destination.state");
    for job in [&[][..], &["--state", state.arg()][..]] {
        let dest = database(&c.dest[0], "CREATE TABLE t (n int)");
        let silent_conn = format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres",
            silent.port
        );
        let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dest));
        let args = [
            &[
                "table",
                "t",
                "--from",
                &from,
                "--to",
                &to,
                "--to",
                &silent_conn,
            ][..],
            &["--keep-going", "--stall-timeout", "2s"],
            job,
        ]
        .concat();
        let started = Instant::now();
        let out = run(&args);
        assert_exit(&out, 4);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(&format!("127.0.0.1:{}: timeout expired", silent.port)),
            "{job:?}: {stderr}"
        );
        assert!(started.elapsed() < Duration::from_secs(60), "{job:?}");
        assert_eq!(count(&c.dest[0], &dest, "t"), 2, "{job:?}");
    }
    // A limit longer than the wait before a wait is said: said all the same (it was silent
    // for as long as the limit), with the limit.
    let dest = database(&c.dest[0], "CREATE TABLE t (n int)");
    let silent_conn = format!(
        "host=127.0.0.1 port={} user=postgres dbname=postgres",
        silent.port
    );
    let (from, to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dest));
    let out = copyman()
        .env("COPYMAN_TEST_SAY_AFTER", "1")
        .args([
            "table",
            "t",
            "--from",
            &from,
            "--to",
            &to,
            "--to",
            &silent_conn,
        ])
        .args(["--keep-going", "--stall-timeout", "3s"])
        .output()
        .unwrap();
    assert_exit(&out, 4);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("no answer after 1 s, still waiting (up to 3 s for each host; Ctrl-C"),
        "{stderr}"
    );
}

/// The first signal ends a job whose planning, or one of whose tables, waits on a connect to a
/// server that took the connection and never answers: the connect is given up, nothing is
/// committed, exit 143 (the job said "stopping" and waited for the connect's limit — without
/// one, for ever — and only a second signal ended it). Each of the job's connects in turn is
/// the one that hangs, to the source and to the destination.
#[test]
fn the_first_signal_ends_a_job_waiting_on_a_connect() {
    let c = clusters();
    let tables: String = (1..=4)
        .map(|i| format!("CREATE TABLE a{i} (id int PRIMARY KEY, v text);"))
        .collect();
    let rows: String = (1..=4)
        .map(|i| format!("INSERT INTO a{i} SELECT g, 'x' FROM generate_series(1, 1000) g;"))
        .collect();
    let src = database(&c.source, &format!("{tables}{rows}"));
    let mut phases = Vec::new();
    for frozen in ["source", "destination"] {
        for first in 0..40 {
            let dst = database(&c.dest[0], &tables);
            let (cluster, db) = match frozen {
                "source" => (&c.source, &src),
                _ => (&c.dest[0], &dst),
            };
            let proxy = Silent::forwarding(first, cluster.port());
            let through = cluster.conninfo(db).replace(
                &format!("port={} ", cluster.port()),
                &format!("port={} ", proxy.port),
            );
            let (mut from, mut to) = (c.source.conninfo(&src), c.dest[0].conninfo(&dst));
            match frozen {
                "source" => from = through,
                _ => to = through,
            }
            let state = TempPath::new("frozen-connect.state");
            let mut child = copyman()
                .args(["table", "a1", "a2", "a3", "a4", "--jobs", "2"])
                .args(["--from", &from, "--to", &to, "--state", state.arg()])
                .args(["--stall-timeout", "5min"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let until = Instant::now() + Duration::from_secs(60);
            while proxy.accepted.load(Ordering::Relaxed) <= first
                && child.try_wait().unwrap().is_none()
                && Instant::now() < until
            {
                thread::sleep(Duration::from_millis(20));
            }
            if child.try_wait().unwrap().is_some() {
                // Every connect of the job passed: it ran to its end.
                let out = child.wait_with_output().unwrap();
                assert_exit(&out, 0);
                break;
            }
            // A connect is under way: the first signal.
            thread::sleep(Duration::from_millis(300));
            let signalled = Instant::now();
            signal(&child, "TERM");
            let out = child.wait_with_output().unwrap();
            let stderr = text(&out.stderr);
            assert!(
                signalled.elapsed() < Duration::from_secs(30),
                "{frozen} frozen after {first}: ended {:?} after the signal: {stderr}",
                signalled.elapsed()
            );
            assert_exit(&out, 143);
            assert!(!stderr.contains("received again"), "{frozen}: {stderr}");
            // The connect given up is the user's stop, no destination's failure.
            assert!(
                !stderr.contains("given up: the job was interrupted")
                    && !stderr.contains("the job stopped: table"),
                "{frozen} after {first}: {stderr}"
            );
            // A table committed before the signal stays committed, whole.
            for i in 1..=4 {
                let rows = count(&c.dest[0], &dst, &format!("a{i}"));
                assert!(rows == 0 || rows == 1000, "{frozen} after {first}: {rows}");
            }
            for phase in [
                "while connecting",
                "stopping the job while it is planned",
                "stopping the job: the tables being copied are rolled back",
            ] {
                if stderr.contains(phase) {
                    phases.push((frozen, phase));
                }
            }
        }
    }
    for phase in [
        ("source", "stopping the job while it is planned"),
        (
            "destination",
            "stopping the job: the tables being copied are rolled back",
        ),
    ] {
        assert!(phases.contains(&phase), "{phase:?} not met: {phases:?}");
    }
}
