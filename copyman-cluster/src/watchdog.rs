//! A tiny `sh` process per cluster that cleans up after a test process that
//! died without running destructors.
//!
//! `pg_ctl` detaches the postmaster into its own session, and PostgreSQL does
//! not notice when the process that started it goes away, so a test binary
//! that is killed (SIGKILL, Ctrl-C, `process::exit`, or simply exiting while
//! a cluster lives in a `static`, whose destructor never
//! runs) would leave a server and its files behind.
//!
//! The watchdog blocks reading its stdin, a pipe whose only writer is the
//! test process (Rust opens pipes close-on-exec, so no other child inherits
//! it). The kernel closes that pipe whenever the test process ends, however
//! it ends; the watchdog then reads end-of-file, stops the server with
//! `pg_ctl stop -m immediate`, and removes the cluster's directory. When [`Cluster`](crate::Cluster) is
//! dropped normally it cleans up itself and then writes a line to the pipe,
//! which tells the watchdog to exit without doing anything.
//!
//! The watchdog runs in its own process group so that a Ctrl-C aimed at the
//! test binary's process group does not kill it too.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::process::{SERVER_OS_USER, clean_env, server_owner};

/// `$1` pg_ctl, `$2` data directory, `$3` directory to remove, `$4` OS user
/// to run pg_ctl as (empty: ourselves), `$5` seconds to keep watching.
///
/// The programs the dead process had started (`initdb`, `pg_ctl start`) do
/// not die with it: one still running may make the directory again after it
/// was removed (`initdb` creates its data directory's parents), so the
/// watchdog looks again every second for a while and cleans up again.
const SCRIPT: &str = r#"
if read -r line; then exit 0; fi
cd /
i=0
while :; do
    if [ -e "$3" ]; then
        if [ -n "$4" ]; then
            runuser -u "$4" -- "$1" stop -D "$2" -m immediate -w -t 30 >/dev/null 2>&1
        else
            "$1" stop -D "$2" -m immediate -w -t 30 >/dev/null 2>&1
        fi
        rm -rf "$3"
    fi
    [ "$i" -ge "$5" ] && exit 0
    i=$((i + 1))
    sleep 1
done
"#;

/// How long, in seconds, the watchdog keeps removing a directory made again
/// after its cleanup: longer than an `initdb` on a loaded machine.
const WATCH_AFTER: u32 = 30;

/// Handle on a running watchdog process.
#[derive(Debug)]
pub(crate) struct Watchdog {
    child: Child,
}

impl Watchdog {
    /// Spawns a watchdog that, once this process ends, stops the cluster in
    /// `data_dir` with `pg_ctl` and removes `remove_dir`.
    pub(crate) fn spawn(pg_ctl: &Path, data_dir: &Path, remove_dir: &Path) -> Self {
        Self::spawn_watching(pg_ctl, data_dir, remove_dir, WATCH_AFTER)
    }

    fn spawn_watching(pg_ctl: &Path, data_dir: &Path, remove_dir: &Path, watch: u32) -> Self {
        let user = if server_owner().is_some() {
            SERVER_OS_USER
        } else {
            ""
        };
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(SCRIPT)
            .arg("copyman-cluster-watchdog")
            .arg(pg_ctl)
            .arg(data_dir)
            .arg(remove_dir)
            .arg(user)
            .arg(watch.to_string())
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        clean_env(&mut cmd);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("copyman-cluster: cannot spawn the watchdog `sh`: {e}"));
        Self { child }
    }

    /// Tells the watchdog that cleanup already happened and reaps it.
    pub(crate) fn stand_down(mut self) {
        if let Some(mut stdin) = self.child.stdin.take() {
            // If the watchdog is already gone there is nothing to tell it.
            let _ = stdin.write_all(b"done\n");
        }
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::thread::sleep;
    use std::time::{Duration, Instant};

    use super::*;

    fn gone_within(dir: &Path, limit: Duration) -> bool {
        let start = Instant::now();
        while dir.exists() {
            if start.elapsed() > limit {
                return false;
            }
            sleep(Duration::from_millis(100));
        }
        true
    }

    /// The process's end (its pipe closed) removes the directory, and a
    /// directory made again afterwards by a program it had started, as a
    /// straggling `initdb` does, is removed too.
    #[test]
    fn a_directory_made_again_after_the_cleanup_is_removed_too() {
        let dir =
            std::env::temp_dir().join(format!("copyman-watchdog-test-{}", std::process::id()));
        fs::create_dir_all(dir.join("data")).unwrap();
        let mut watchdog =
            Watchdog::spawn_watching(Path::new("/bin/true"), &dir.join("data"), &dir, 4);
        // What the kernel does when the process dies: the pipe's writer closes.
        drop(watchdog.child.stdin.take());
        assert!(gone_within(&dir, Duration::from_secs(10)), "not removed");
        fs::create_dir_all(dir.join("data")).unwrap();
        fs::write(dir.join("server.log"), "late").unwrap();
        assert!(
            gone_within(&dir, Duration::from_secs(10)),
            "made again after the cleanup, and left"
        );
        assert!(watchdog.child.wait().unwrap().success());
    }
}
