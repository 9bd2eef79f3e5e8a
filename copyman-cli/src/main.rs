//! `copyman`: stream PostgreSQL COPY data from one source to many destinations at once.
//!
//! `main` only parses, runs and maps the outcome to an exit status (0 success, 1 copy failed,
//! 2 usage error, 3 connection or authentication failure); a closed stdout (`copyman … | head`)
//! ends the program quietly with 0, as it does for other Unix tools — but a copy to `--to -`,
//! and a demo that has not verified yet, which fail (exit 1).

mod args;
mod conn;
mod demo;
mod dest;
mod drive;
mod file_source;
mod finish;
mod fit;
mod identity;
mod job;
mod limits;
mod plan;
mod progress;
mod recover;
mod report;
mod run;
mod signals;
mod sql;
mod users_sql;
mod watch;

use std::process::ExitCode;
use std::sync::atomic::{AtomicU8, Ordering};

use args::{HiArgs, LowArgs};
use report::{Exit, Fatal};

/// Which of fds 0, 1 and 2 were closed when copyman started (bit N for fd N): set by
/// [`open_standard_fds`], before `main`.
static CLOSED_AT_START: AtomicU8 = AtomicU8::new(0);

/// Opens each of fds 0, 1 and 2 that is closed on `/dev/null` (as OpenSSH and coreutils do), so
/// that no file or socket copyman opens takes its number (a socket on fd 1 would get the COPY
/// data), and notes which were closed: `--to -` with no stdout must be refused, not written to
/// `/dev/null`. It runs from `.init_array`, before the standard library's own start (which
/// would open `/dev/null` on them too, leaving no trace of their having been closed).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
extern "C" fn open_standard_fds() {
    let mut closed = 0;
    for fd in 0..3 {
        // SAFETY: `fcntl(F_GETFD)` only reads the flags of a descriptor number of this process;
        // any integer is a valid argument (an unused one fails with EBADF), and no memory is
        // passed.
        let open = unsafe { libc::fcntl(fd, libc::F_GETFD) } != -1;
        if open || std::io::Error::last_os_error().raw_os_error() != Some(libc::EBADF) {
            continue;
        }
        closed |= 1 << fd;
        // SAFETY: the path is a NUL-terminated literal that outlives the call; `open` takes no
        // other pointer. It returns the lowest free descriptor, which is `fd` (those below it
        // are open, or were opened by this loop); the descriptor is deliberately never closed.
        let got = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
        if got != fd && got >= 0 {
            // Cannot happen (see above); not left dangling if it did.
            // SAFETY: `got` was just returned by `open` and is owned by nothing else.
            unsafe { libc::close(got) };
        }
    }
    CLOSED_AT_START.store(closed, Ordering::Relaxed);
}

/// [`open_standard_fds`] in the ELF `.init_array`: the dynamic loader (or the static start code)
/// calls it once, on the main thread before any other exists and before `main`.
// SAFETY: an `.init_array` entry must be a pointer to a function the start code may call with
// the C ABI and no arguments (the ELF gABI; glibc passes argc, argv and envp besides, which the
// C calling convention lets a callee that takes none ignore): `open_standard_fds` is one. It uses
// no part of the Rust runtime that is not set up yet (libc calls, `errno`, an atomic store) and
// cannot unwind (nothing in it panics).
#[cfg(all(target_os = "linux", not(target_env = "gnu")))]
#[used]
#[unsafe(link_section = ".init_array")]
static OPEN_STANDARD_FDS: extern "C" fn() = open_standard_fds;

/// The process's `argv` as glibc hands it to `.init_array` functions (`None` elsewhere): the C
/// strings `/proc/PID/cmdline` shows, which [`hide_passwords_in_argv`] overwrites.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
static ARGV: std::sync::atomic::AtomicPtr<*mut libc::c_char> =
    std::sync::atomic::AtomicPtr::new(std::ptr::null_mut());
#[cfg(all(target_os = "linux", target_env = "gnu"))]
static ARGC: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// glibc's form of the `.init_array` call (argc, argv, envp, as the standard library's own
/// argument capture takes them): [`open_standard_fds`], and `argv` kept.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
extern "C" fn at_start(argc: libc::c_int, argv: *mut *mut libc::c_char, _env: *const libc::c_void) {
    open_standard_fds();
    ARGC.store(usize::try_from(argc).unwrap_or(0), Ordering::Relaxed);
    ARGV.store(argv, Ordering::Relaxed);
}

/// [`at_start`] in the ELF `.init_array`.
// SAFETY: glibc's start code (and its dynamic loader) calls each `.init_array` entry once, on
// the main thread before `main` and before any other thread exists, as `fn(int argc, char
// **argv, char **envp)` with the C ABI (glibc's csu/libc-start.c and elf/dl-init.c; the
// standard library relies on the same call for `std::env::args` on this target): `at_start`
// has that signature. It uses no part of the Rust runtime that is not set up yet (libc calls,
// `errno`, atomic stores) and cannot unwind (nothing in it panics).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[used]
#[unsafe(link_section = ".init_array")]
static AT_START: extern "C" fn(libc::c_int, *mut *mut libc::c_char, *const libc::c_void) = at_start;

/// Overwrites, in the process's own `argv` strings, each password a connection string on the
/// command line holds (`postgresql://u:SECRET@h/db`, `password=SECRET`), as MySQL's client does:
/// `ps` and `/proc/PID/cmdline` then show `***` (other users on the machine can read them). The
/// arguments after one are moved up over what it no longer takes, and `argv`'s pointers with
/// them: only the total of what every password took beyond `***` is left, as NULs at the end
/// (each argument padded with spaces to its length told every password's length). Called once,
/// right after the arguments were parsed and before any thread starts. Before it, a password is
/// visible for the moment between `exec` and here, as with psql (which never hides it):
/// PGPASSWORD, a password file, a service file or `-W` keep it off the command line altogether.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn hide_passwords_in_argv() {
    let argv = ARGV.load(Ordering::Relaxed);
    if argv.is_null() {
        return;
    }
    // Each argument after the program's: where it is, its length, and what it shows now.
    let mut args: Vec<(*mut libc::c_char, usize, Vec<u8>)> = Vec::new();
    for i in 1..ARGC.load(Ordering::Relaxed) {
        // SAFETY: glibc passed `argv` with `argc` entries, each a NUL-terminated string (or
        // null), in memory of this process that lives as long as it and is writable (the
        // initial stack); `i < argc`.
        let arg = unsafe { *argv.add(i) };
        if arg.is_null() {
            break;
        }
        // SAFETY: `arg` is one of those strings (see above).
        let bytes = unsafe { std::ffi::CStr::from_ptr(arg) }.to_bytes();
        // Only a CONN's, the value of --from or --to (`--to CONN`, `--to=CONN`): a --where or
        // a statement holding `@` or "password" was shown rewritten, or cut (recheck40 F1).
        let after_flag = args
            .last()
            .is_some_and(|(_, _, before)| before == b"--from" || before == b"--to");
        let (flag, conn) = match std::str::from_utf8(bytes) {
            Ok(text) if after_flag => ("", Some(text)),
            Ok(text) => match (text.strip_prefix("--from="), text.strip_prefix("--to=")) {
                (Some(conn), _) => ("--from=", Some(conn)),
                (_, Some(conn)) => ("--to=", Some(conn)),
                _ => ("", None),
            },
            Err(_) => ("", None),
        };
        let shown = match conn {
            Some(conn) if conn.contains('@') || conn.to_ascii_lowercase().contains("password") => {
                format!("{flag}{}", conn::scrub(&conn::redact(conn))).into_bytes()
            }
            _ => bytes.to_vec(),
        };
        args.push((arg, bytes.len(), shown));
    }
    if args.iter().all(|(arg, len, shown)| {
        // SAFETY: as above: `len` bytes of `arg` are readable.
        shown.as_slice() == unsafe { std::slice::from_raw_parts(arg.cast::<u8>(), *len) }
    }) {
        return;
    }
    // The strings lie one after the other (as the kernel lays them out at exec), and what they
    // show fits where they were: written again from the first one's start, moved up.
    let contiguous = args
        .windows(2)
        .all(|w| w[0].0.wrapping_add(w[0].1 + 1) == w[1].0);
    let area: usize = args.iter().map(|(_, len, _)| len + 1).sum();
    let needed: usize = args.iter().map(|(_, _, shown)| shown.len() + 1).sum();
    let start = args.first().map(|(arg, ..)| *arg);
    if let (true, true, Some(start)) = (contiguous, needed <= area, start) {
        let mut written = Vec::with_capacity(area);
        for (i, (_, _, shown)) in args.iter().enumerate() {
            // SAFETY: `i + 1 < argc` (one entry per argument read above) and the pointer array
            // is writable memory of this process (the initial stack); the new pointer is inside
            // the arguments' area (`written.len() < needed <= area`). The standard library reads
            // these pointers only when `std::env::args` is called, which nothing does after the
            // parse; no other thread exists yet.
            unsafe { *argv.add(i + 1) = start.add(written.len()) };
            written.extend_from_slice(shown);
            written.push(0);
        }
        written.resize(area, 0);
        // SAFETY: `area` bytes from `start` are the arguments' strings and their NULs
        // (contiguous, checked above), writable, borrowed by no Rust reference.
        unsafe { std::ptr::copy_nonoverlapping(written.as_ptr(), start.cast::<u8>(), area) };
        return;
    }
    // Elsewhere: each in place, padded with spaces to its length (cut if `***` is longer).
    for (arg, len, mut shown) in args {
        shown.resize(len, b' ');
        // SAFETY: `arg` points to `len` writable bytes before its NUL (see above); the NUL
        // stays.
        unsafe { std::ptr::copy_nonoverlapping(shown.as_ptr(), arg.cast::<u8>(), len) };
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn hide_passwords_in_argv() {}

/// Whether fd `fd` (0, 1 or 2) was closed when copyman started (it is `/dev/null` now).
pub(crate) fn closed_at_start(fd: u8) -> bool {
    CLOSED_AT_START.load(Ordering::Relaxed) & (1 << fd) != 0
}

fn main() -> ExitCode {
    report::mark_start();
    // Stdout given as a destination: marked on any failure, of the arguments too.
    if dest::stdout_named(std::env::args_os().skip(1)) {
        dest::stdout_is_a_destination();
    }
    let low = match LowArgs::parse_from_args(std::env::args_os()) {
        Ok(low) => low,
        Err(e) if e.use_stderr() => {
            // clap may quote the command line: never a password (its help as it is).
            let message = args::usage_text(&e);
            progress::eprint(&message);
            // `--json` asked for a document whatever happens, a usage error included — but not
            // into the data's stdout, which is marked instead.
            dest::mark_unopened_stdout();
            if std::env::args_os().any(|a| a == "--json") && !dest::stdout_carries_data() {
                // The error, on one line: its lines up to the usage (`the following required
                // arguments were not provided: --to <CONN>`), not its first line alone.
                let error: Vec<&str> = message
                    .lines()
                    .map(str::trim)
                    .take_while(|line| !line.is_empty())
                    .collect();
                let error = error.join(" ");
                let error = error.trim_start_matches("error: ");
                // The command, where one was named (a script routes on it: it was null).
                let named = std::env::args_os().skip(1).find_map(|a| {
                    ["table", "copy", "recover", "demo"]
                        .into_iter()
                        .find(|command| a == *command)
                });
                if let Some(command) = named {
                    report::set_command(command);
                }
                let _ = report::print_json(&report::fatal_json(Exit::Usage, error, None, None));
            }
            return ExitCode::from(Exit::Usage.code());
        }
        Err(e) => {
            // --help and --version; a closed stdout is no error here either. (Plain, its
            // punctuation in ASCII, where the locale is not UTF-8.)
            let _ = match progress::ascii_locale() {
                true => report::print_stdout(&e.to_string()),
                false => e.print(),
            };
            return ExitCode::SUCCESS;
        }
    };
    hide_passwords_in_argv();
    // A file past the file-size limit (`ulimit -f`) fails its write (EFBIG), said and rolled
    // back as a full disk is, as the PostgreSQL server has it: SIGXFSZ's default killed the
    // process without a word, between a run's PREPAREs and its decision too.
    let _ = signal_hook::flag::register(
        signal_hook::consts::SIGXFSZ,
        std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
    );
    let json = low.json;
    report::set_command(low.command.name());
    let hi = match HiArgs::from_low(low, &conn::Env::from_process()) {
        Ok(hi) => hi,
        Err(e) => {
            // One destination's refusal (a malformed CONN among several) names it: `server`.
            let message = conn::scrub(&e.message);
            let unsaid = report::ErrorInfo {
                sqlstate: None,
                message: String::new(),
            };
            let named = report::named_first(&message).map(report::server_and_endpoint);
            let server = named.map(|(role, _)| (role, &unsaid));
            let endpoint = named.and_then(|(_, endpoint)| endpoint);
            return fail(e.exit, &message, server, endpoint, json);
        }
    };
    let ran = run::run(hi);
    // A second signal that is exiting at once, with what it said, ends the process: not this.
    signals::hold_if_exiting_at_once();
    match ran {
        Ok(exit) => ExitCode::from(exit.code()),
        Err(e) if report::is_broken_pipe(e.as_ref()) => ExitCode::SUCCESS,
        // A signal before the copy (its cancel may be what ended the run): nothing was begun
        // that could have committed (unless the run said what stands itself).
        Err(e)
            if signals::received().is_some()
                && !e
                    .downcast_ref::<Fatal>()
                    .is_some_and(|fatal| fatal.exit.is_interruption()) =>
        {
            let signal = signals::received().unwrap_or_default();
            let message = format!(
                "interrupted by {}: nothing committed",
                signals::name(signal)
            );
            fail(Exit::interrupted(signal), &message, None, None, json)
        }
        Err(e) => match (
            e.downcast_ref::<Fatal>(),
            e.downcast_ref::<run::Unreachable>(),
        ) {
            // Composed from redacted CONNs and the server's words, which are shown verbatim.
            (Some(fatal), _) => {
                // A refusal about one destination that no server said (read-only, no prepared
                // transactions) names it first: `server` says which, as under --keep-going.
                let unsaid = report::ErrorInfo {
                    sqlstate: None,
                    message: String::new(),
                };
                let named = report::named_first(&fatal.message).map(|whom| (whom, &unsaid));
                let whom = (fatal.server.as_ref())
                    .map(|(whom, said)| (whom.as_str(), said))
                    .or(named);
                let split = whom.map(|(whom, said)| (report::server_and_endpoint(whom), said));
                let server = split.map(|((role, _), said)| (role, said));
                let endpoint = split.and_then(|((_, endpoint), _)| endpoint);
                fail(fatal.exit, &fatal.message, server, endpoint, json)
            }
            (None, Some(u)) => fail(
                Exit::Connect,
                &u.to_string(),
                Some((&u.role, &u.error)),
                Some(&u.endpoint),
                json,
            ),
            (None, None) => fail(
                Exit::CopyFailed,
                &conn::scrub(&format!("{e:#}")),
                None,
                None,
                json,
            ),
        },
    }
}

/// Reports an error that ended the run (one line on stderr, and the `--json` document).
fn fail(
    exit: Exit,
    message: &str,
    server: Option<(&str, &report::ErrorInfo)>,
    endpoint: Option<&str>,
    json: bool,
) -> ExitCode {
    let message = report::one_line(message);
    progress::println(&format!("copyman: error: {message}"));
    // (Never the document into the data's stdout: recheck68 F3.)
    let json = json && !dest::stdout_carries_data();
    if !json {
        dest::mark_unopened_stdout();
    }
    if json {
        let _ = report::print_json(&report::fatal_json(exit, &message, server, endpoint));
    }
    ExitCode::from(exit.code())
}
