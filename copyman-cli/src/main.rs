//! `copyman`: stream PostgreSQL COPY data from one source to many destinations at once.
//!
//! `main` only parses, runs and maps the outcome to an exit status (0 success, 1 copy failed,
//! 2 usage error, 3 connection or authentication failure); a closed stdout (`copyman … | head`)
//! ends the program quietly with 0, as it does for other Unix tools.

mod args;
mod conn;
mod demo;
mod dest;
mod drive;
mod file_source;
mod finish;
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
mod watch;

use std::process::ExitCode;

use args::{HiArgs, LowArgs};
use report::{Exit, Fatal};

fn main() -> ExitCode {
    let low = match LowArgs::parse_from_args(std::env::args_os()) {
        Ok(low) => low,
        Err(e) if e.use_stderr() => {
            // clap may quote the command line: never a password.
            let message = conn::scrub(&e.to_string());
            eprint!("{message}");
            // `--json` asked for a document whatever happens, a usage error included.
            if std::env::args_os().any(|a| a == "--json") {
                let first = message
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .trim_start_matches("error: ");
                let _ = report::print_json(&report::fatal_json(Exit::Usage, first));
            }
            return ExitCode::from(Exit::Usage.code());
        }
        Err(e) => {
            // --help and --version; a closed stdout is no error here either.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    let json = low.json;
    let hi = match HiArgs::from_low(low, &conn::Env::from_process()) {
        Ok(hi) => hi,
        Err(e) => return fail(e.exit, &conn::scrub(&e.message), json),
    };
    match run::run(hi) {
        Ok(exit) => ExitCode::from(exit.code()),
        Err(e) if report::is_broken_pipe(e.as_ref()) => ExitCode::SUCCESS,
        // A signal before the copy (its cancel may be what ended the run): nothing was begun
        // that could have committed.
        Err(_) if signals::received().is_some() => {
            let signal = signals::received().unwrap_or_default();
            let message = format!(
                "interrupted by {}: nothing committed",
                signals::name(signal)
            );
            fail(Exit::interrupted(signal), &message, json)
        }
        Err(e) => match e.downcast_ref::<Fatal>() {
            // Composed from redacted CONNs and the server's words, which are shown verbatim.
            Some(fatal) => fail(fatal.exit, &fatal.message, json),
            None => fail(Exit::CopyFailed, &conn::scrub(&format!("{e:#}")), json),
        },
    }
}

/// Reports an error that ended the run (one line on stderr, and the `--json` document).
fn fail(exit: Exit, message: &str, json: bool) -> ExitCode {
    let message = report::one_line(message);
    eprintln!("copyman: error: {message}");
    if json {
        let _ = report::print_json(&report::fatal_json(exit, &message));
    }
    ExitCode::from(exit.code())
}
