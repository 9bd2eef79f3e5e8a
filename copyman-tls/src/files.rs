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

    /// A regular file is read anew each time (a pipe's single read is the command's test:
    /// `service_files_name_the_clusters`).
    #[test]
    fn a_regular_file_is_read_each_time() {
        let unique = std::hash::BuildHasher::hash_one(
            &std::collections::hash_map::RandomState::new(),
            "files",
        );
        let dir = std::env::temp_dir().join(format!("copyman-tls-files-{unique:x}"));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("file");
        std::fs::write(&file, b"one").unwrap();
        assert_eq!(read_settings_file(&file).unwrap(), b"one");
        std::fs::write(&file, b"two").unwrap();
        assert_eq!(read_settings_file(&file).unwrap(), b"two");
        assert!(read_settings_file(&dir.join("missing")).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
