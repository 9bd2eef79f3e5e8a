//! The state file when a write fails part-way (a full disk, a file size limit): the record
//! written in part is cut off, so the next record, written whole, reads as itself.

use std::path::PathBuf;
use std::process::Command;

use copyman_job::state::{self, StateFile};

/// Set in the child process this test runs itself in (its file size limit is its own).
const CHILD: &str = "COPYMAN_STATE_FILE_CHILD";

/// A record written in part (here: up to a file size limit) ran into the next one, which was
/// then written whole and synced, while the line they made read as nothing: a `commit` record
/// lost so leaves its table committed yet read as never committed, and a resume copies it
/// again on top of its rows.
#[test]
fn a_record_written_in_part_is_cut_off_and_the_next_one_reads() {
    if let Some(path) = std::env::var_os(CHILD) {
        return torn_then_whole(PathBuf::from(path));
    }
    if Command::new("prlimit").arg("--version").output().is_err() {
        eprintln!("SKIPPED: no prlimit(1) (util-linux) to set this test's file size limit");
        return;
    }
    let dir = std::env::temp_dir().join(format!("copyman-state-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("job.state");
    // SIGXFSZ ignored (inherited across exec): a write past the limit fails with EFBIG, as a
    // full disk's fails with ENOSPC, rather than killing the process.
    let out = Command::new("sh")
        .args(["-c", "trap '' XFSZ; exec \"$0\" --exact \"$1\" --nocapture"])
        .arg(std::env::current_exe().unwrap())
        .arg("a_record_written_in_part_is_cut_off_and_the_next_one_reads")
        .env(CHILD, &path)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("1 passed"),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn torn_then_whole(path: PathBuf) {
    let file = StateFile::open(&path, false).unwrap();
    file.selection("\"public\".\"t\"").unwrap();
    let len = std::fs::metadata(&path).unwrap().len();
    let limit = |size: &str| {
        let pid = std::process::id().to_string();
        let set = Command::new("prlimit")
            .args(["--pid", &pid, &format!("--fsize={size}:unlimited")])
            .status()
            .unwrap();
        assert!(set.success(), "prlimit --fsize={size}");
    };
    // Room for 8 bytes of the next record, which is longer.
    limit(&(len + 8).to_string());
    let torn = file.begin("\"public\".\"t\"", "system 1 database 2");
    assert!(torn.is_err(), "the write past the limit failed");
    limit("unlimited");
    file.done("\"public\".\"u\"", "system 1 database 2", 5, None)
        .expect("the next record is written whole");
    let recorded = state::read(&path).unwrap();
    assert_eq!(
        recorded.done("\"public\".\"u\"", "system 1 database 2"),
        Some(5),
        "{:?}",
        std::fs::read_to_string(&path)
    );
    assert!(!recorded.begun("\"public\".\"t\"", "system 1 database 2"));
}
