//! The files a connection's settings name (a root certificate, a client certificate, a key, a
//! service file), read as often as connections are made: a regular file each time (it may be
//! replaced between sessions, as libpq reads it anew), any other (a pipe from a shell's
//! `<(…)`, `/dev/fd/N`) once per process, its bytes kept for every later read — a pipe gives
//! them once, and the second CONN of a run (or its next session) found it empty: "no PEM
//! certificate in it", "definition of service not found" (conn68 F5, F6).

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};

/// The bytes of the file at `path`, as the module documentation says.
///
/// # Errors
/// It cannot be opened or read.
pub fn read_settings_file(path: &Path) -> io::Result<Vec<u8>> {
    static KEPT: OnceLock<Mutex<HashMap<PathBuf, Vec<u8>>>> = OnceLock::new();
    if std::fs::metadata(path)?.is_file() {
        return std::fs::read(path);
    }
    let kept = KEPT.get_or_init(Mutex::default);
    let mut kept = kept.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(bytes) = kept.get(path) {
        return Ok(bytes.clone());
    }
    let bytes = std::fs::read(path)?;
    kept.insert(path.to_owned(), bytes.clone());
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pipe's bytes are read once and served again; a regular file is read anew.
    #[test]
    fn a_pipe_is_read_once_and_a_file_each_time() {
        let dir = std::env::temp_dir().join(format!("copyman-tls-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("pipe");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if !made.is_ok_and(|s| s.success()) {
            eprintln!("SKIPPED a_pipe_is_read_once_and_a_file_each_time: no mkfifo here");
            return;
        }
        let writer = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::write(fifo, b"once").unwrap())
        };
        assert_eq!(read_settings_file(&fifo).unwrap(), b"once");
        writer.join().unwrap();
        // No writer any more: a read would wait for one; the kept bytes are served.
        assert_eq!(read_settings_file(&fifo).unwrap(), b"once");
        let file = dir.join("file");
        std::fs::write(&file, b"one").unwrap();
        assert_eq!(read_settings_file(&file).unwrap(), b"one");
        std::fs::write(&file, b"two").unwrap();
        assert_eq!(read_settings_file(&file).unwrap(), b"two");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
