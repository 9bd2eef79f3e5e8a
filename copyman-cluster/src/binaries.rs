//! Locating the installed PostgreSQL binaries.
//!
//! The server binaries (`initdb`, `pg_ctl`, `postgres`) must all live in one
//! directory, because `pg_ctl` starts the `postgres` next to it. Candidate
//! directories, first match wins:
//!
//! 1. `$COPYMAN_PG_BINDIR`, if set (and then nothing else is searched);
//! 2. every directory on `$PATH`;
//! 3. the output of `pg_config --bindir`;
//! 4. Debian/Ubuntu's `/usr/lib/postgresql/<version>/bin`, highest version
//!    first.

use std::env;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Environment variable that pins the directory holding the server binaries.
pub(crate) const BINDIR_ENV: &str = "COPYMAN_PG_BINDIR";

/// Absolute paths of the PostgreSQL programs this crate runs.
#[derive(Debug)]
pub(crate) struct Binaries {
    pub(crate) initdb: PathBuf,
    pub(crate) pg_ctl: PathBuf,
    /// `psql`, next to the server binaries or on `$PATH`; only needed by
    /// [`Cluster::psql`](crate::Cluster::psql).
    pub(crate) psql: Option<PathBuf>,
}

/// The binaries, located once per process. Panics if they are missing.
pub(crate) fn binaries() -> &'static Binaries {
    static BINARIES: OnceLock<Binaries> = OnceLock::new();
    BINARIES.get_or_init(locate)
}

fn locate() -> Binaries {
    let candidates = candidate_dirs();
    let Some(bindir) = candidates.iter().find(|dir| has_server_binaries(dir)) else {
        let searched: Vec<String> = candidates.iter().map(|d| d.display().to_string()).collect();
        panic!(
            "PostgreSQL server binaries not found (initdb, postgres, pg_ctl): install them, \
             e.g. `apt-get install -y postgresql`, or point ${BINDIR_ENV} at their directory; \
             searched: {}",
            if searched.is_empty() {
                "(nothing)".to_owned()
            } else {
                searched.join(", ")
            }
        );
    };
    let psql = Some(bindir.join("psql"))
        .filter(|p| is_executable(p))
        .or_else(|| {
            path_dirs()
                .into_iter()
                .map(|d| d.join("psql"))
                .find(|p| is_executable(p))
        });
    Binaries {
        initdb: bindir.join("initdb"),
        pg_ctl: bindir.join("pg_ctl"),
        psql,
    }
}

fn candidate_dirs() -> Vec<PathBuf> {
    if let Some(dir) = env::var_os(BINDIR_ENV) {
        return vec![PathBuf::from(dir)];
    }
    let mut dirs = path_dirs();
    if let Some(dir) = pg_config_bindir() {
        dirs.push(dir);
    }
    dirs.extend(debian_bindirs());
    dirs
}

fn path_dirs() -> Vec<PathBuf> {
    env::var_os("PATH")
        .map(|p| env::split_paths(&p).collect())
        .unwrap_or_default()
}

fn pg_config_bindir() -> Option<PathBuf> {
    let out = Command::new("pg_config").arg("--bindir").output().ok()?;
    let dir = String::from_utf8(out.stdout).ok()?;
    let dir = dir.trim();
    (out.status.success() && !dir.is_empty()).then(|| PathBuf::from(dir))
}

/// `/usr/lib/postgresql/*/bin`, highest (numeric) version first.
fn debian_bindirs() -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") else {
        return Vec::new();
    };
    let mut versions: Vec<(Vec<u64>, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let key = name
                .split('.')
                .map(str::parse)
                .collect::<Result<Vec<u64>, _>>()
                .ok()?;
            Some((key, entry.path().join("bin")))
        })
        .collect();
    versions.sort_by(|a, b| b.0.cmp(&a.0));
    versions.into_iter().map(|(_, dir)| dir).collect()
}

fn has_server_binaries(dir: &Path) -> bool {
    ["initdb", "pg_ctl", "postgres"]
        .iter()
        .all(|name| is_executable(&dir.join(name)))
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
