//! Running the server programs, as the `postgres` OS user when we are root.
//!
//! `initdb` and `postgres` refuse to run as root. When the current uid is 0
//! every server program is wrapped in `runuser -u postgres --`, and every
//! file the server must own is `chown`ed to that user.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The OS user that owns the clusters when the tests run as root.
pub(crate) const SERVER_OS_USER: &str = "postgres";

/// Environment variables of libpq and the server tools that could redirect
/// our commands to some other cluster or change their behaviour.
const PG_ENV: &[&str] = &[
    "PGDATA",
    "PGHOST",
    "PGHOSTADDR",
    "PGPORT",
    "PGUSER",
    "PGDATABASE",
    "PGPASSWORD",
    "PGPASSFILE",
    "PGSERVICE",
    "PGSERVICEFILE",
    "PGOPTIONS",
    "PGSSLMODE",
    "PGSSLROOTCERT",
    "PGSSLCERT",
    "PGSSLKEY",
    "PGCTLTIMEOUT",
];

/// Uid and gid the server files must belong to, or `None` when we are not
/// root and simply run everything as ourselves.
pub(crate) fn server_owner() -> Option<(u32, u32)> {
    static OWNER: OnceLock<Option<(u32, u32)>> = OnceLock::new();
    *OWNER.get_or_init(|| {
        if id(&["-u"]) != 0 {
            return None;
        }
        Some((id(&["-u", SERVER_OS_USER]), id(&["-g", SERVER_OS_USER])))
    })
}

fn id(args: &[&str]) -> u32 {
    let out = Command::new("id")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("copyman-cluster: cannot run `id {}`: {e}", args.join(" ")));
    let text = String::from_utf8_lossy(&out.stdout);
    match text.trim().parse() {
        Ok(id) if out.status.success() => id,
        _ => panic!(
            "copyman-cluster: `id {}` failed ({}): {}{}\n\
             (when running as root the PostgreSQL server runs as the OS user \
             `{SERVER_OS_USER}`, which `apt-get install -y postgresql` creates)",
            args.join(" "),
            out.status,
            text.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ),
    }
}

/// A command running `program` as the server's OS user, in `cwd` (which
/// that user must be able to enter: `initdb` fails in an unreadable cwd),
/// with a clean PostgreSQL environment and C locale messages.
pub(crate) fn server_command(program: &Path, cwd: &Path) -> Command {
    let mut cmd = if server_owner().is_some() {
        let mut cmd = Command::new(runuser());
        cmd.args(["-u", SERVER_OS_USER, "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    };
    cmd.current_dir(cwd);
    clean_env(&mut cmd);
    cmd
}

/// `runuser`: found on PATH, else in the system directories it is installed in (cron's PATH,
/// `/usr/bin:/bin`, has no `/usr/sbin`: the demo failed "No such file or directory" and was
/// told to set TMPDIR).
fn runuser() -> std::path::PathBuf {
    let on_path = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join("runuser").is_file()));
    let installed = [
        "/usr/sbin/runuser",
        "/sbin/runuser",
        "/usr/bin/runuser",
        "/bin/runuser",
    ]
    .into_iter()
    .map(std::path::PathBuf::from)
    .find(|p| p.is_file());
    match (on_path, installed) {
        (false, Some(path)) => path,
        _ => "runuser".into(),
    }
}

/// Removes libpq/server environment variables and forces C messages.
pub(crate) fn clean_env(cmd: &mut Command) {
    for var in PG_ENV {
        cmd.env_remove(var);
    }
    cmd.env("LC_ALL", "C");
}

/// Runs `cmd` to completion, capturing its output; `Err` carries a
/// description of the failure including the output.
pub(crate) fn run(cmd: &mut Command) -> Result<Output, String> {
    let shown = describe(cmd);
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run `{shown}`: {e}"))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(format!(
            "`{shown}` failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(OsStr::to_string_lossy)
        .collect::<Vec<_>>()
        .join(" ")
}

/// `chown`s `path` to the server's OS user when running as root.
pub(crate) fn give_to_server(path: &Path) {
    if let Some((uid, gid)) = server_owner() {
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap_or_else(|e| {
            panic!(
                "copyman-cluster: cannot chown {} to {SERVER_OS_USER}: {e}",
                path.display()
            )
        });
    }
}
