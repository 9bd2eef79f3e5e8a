//! Developer automation for copyman, run as `cargo xtask <command>`.
//!
//! * `tidy` — the architecture's firewall, checked mechanically: copyman-wire, copyman-core,
//!   copyman-conninfo and copyman-tls depend on no runtime or client crate; the sources of the
//!   first three use no sockets, threads or clocks, copyman-tls's no sockets or threads; no test
//!   is `#[ignore]`d; copyman-cli writes stderr only through its one writer that never panics
//!   (no `eprintln!`, `print!` and their kin: they panic on a closed stdout or stderr).
//! * `bench [--quick] [suite options]` — the end-to-end benchmark (copyman against `psql | psql`, a
//!   tokio-postgres loop and the server-only floor), built in release mode; `bench micro` runs the criterion
//!   micro-benchmarks (framer and re-blocking; manager dispatch), `bench wire` the framer's only;
//!   `bench tables [--quick] [--tables N] [--rows N] [--jobs J]` many tables as one `copyman table`
//!   job against a psql loop, a loop of single-table copies and pgcopydb (when on PATH).
//! * `stress [--gigabytes N] [--method sync|async|cli|all]` — N GiB (default 10) generated on the
//!   fly, fanned out 1 → 3 to destinations that check every row and keep none, with the copying
//!   process's RSS sampled all along (results in `target/stress/`).
//! * `test` — the whole test suite (`cargo test --workspace`).
//! * `fuzz [--smoke] [--time S] [--sanitizer address|none] [target…]` — the cargo-fuzz targets in
//!   `fuzz/` (framer, lines, session), each for `S` seconds (`--smoke`: 20), from the committed
//!   seeds, under AddressSanitizer by default. Needs cargo-fuzz (`cargo install cargo-fuzz
//!   --locked`); runs on the stable toolchain through `RUSTC_BOOTSTRAP=1`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["tidy"] => tidy(),
        ["test", rest @ ..] => cargo(&[&["test", "--workspace"], rest].concat()),
        ["bench", "wire", rest @ ..] => {
            cargo(&[&["bench", "-p", "copyman-wire", "--"], rest].concat())
        }
        ["bench", "micro", rest @ ..] => {
            // The framer and re-blocking against memcpy, then the manager's dispatch cost.
            cargo(&[&["bench", "-p", "copyman-wire", "--"], rest].concat())?;
            cargo(&[&["bench", "-p", "copyman-core", "--"], rest].concat())
        }
        ["bench", "tables", rest @ ..] => bench_tables(rest),
        ["bench", rest @ ..] => bench(rest),
        ["stress", rest @ ..] => stress(rest),
        ["fuzz", rest @ ..] => fuzz(rest),
        _ => {
            eprintln!(
                "usage: cargo xtask <tidy | test | bench [--quick] [--rows N] [--wide-rows N] \
                 [--repeats R] [--max-destinations K] [--methods a,b] | bench micro | \
                 bench tables [--quick] [--tables N] [--rows N] [--jobs J] | \
                 stress [--gigabytes N] [--method sync|async|cli|all] | \
                 fuzz [--smoke] [--time S] [--sanitizer address|none] [framer|lines|session…]>"
            );
            std::process::exit(2);
        }
    }
}

/// The workspace root.
fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

fn cargo(args: &[&str]) -> anyhow::Result<()> {
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .current_dir(project_root())
        .status()
        .context("running cargo")?;
    if !status.success() {
        bail!("cargo {} failed", args.join(" "));
    }
    Ok(())
}

/// Builds the benchmark and the CLI in release mode; returns the release directory.
fn build_bench() -> anyhow::Result<PathBuf> {
    cargo(&[
        "build",
        "--release",
        "-p",
        "copyman-bench",
        "-p",
        "copyman-cli",
    ])?;
    Ok(project_root().join("target").join("release"))
}

/// Builds the benchmark and the CLI in release mode and runs the suite.
fn bench(args: &[&str]) -> anyhow::Result<()> {
    let release = build_bench()?;
    let cli = release.join("copyman");
    let mut cmd = Command::new(release.join("copyman-bench"));
    cmd.arg("suite").args(args).current_dir(project_root());
    // The CLI takes part once it has its `copy` command.
    let has_copy = Command::new(&cli)
        .args(["copy", "--help"])
        .output()
        .is_ok_and(|o| o.status.success());
    if has_copy {
        cmd.arg("--cli").arg(&cli);
    } else {
        eprintln!("xtask: the copyman CLI has no `copy` command yet; it is left out of the bench");
    }
    let status = cmd.status().context("running copyman-bench")?;
    if !status.success() {
        bail!("the benchmark failed");
    }
    Ok(())
}

/// Builds the benchmark and the CLI in release mode and runs the `tables` suite: a job of many
/// tables against a psql loop, a loop of `copyman table` and (when installed) pgcopydb.
fn bench_tables(args: &[&str]) -> anyhow::Result<()> {
    ensure_pgcopydb();
    let release = build_bench()?;
    let status = Command::new(release.join("copyman-bench"))
        .arg("tables")
        .args(args)
        .arg("--cli")
        .arg(release.join("copyman"))
        .current_dir(project_root())
        .status()
        .context("running copyman-bench")?;
    if !status.success() {
        bail!("the tables benchmark failed");
    }
    Ok(())
}

/// pgcopydb, the single-target tool the tables suite compares with: installed from Debian's
/// package when missing and this is a Debian machine run as root; otherwise named, and the
/// suite leaves it out.
fn ensure_pgcopydb() {
    let have = |cmd: &str| {
        Command::new(cmd)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if have("pgcopydb") {
        return;
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    if root && have("apt-get") {
        eprintln!("xtask: installing Debian's package pgcopydb for the comparison");
        let installed = Command::new("apt-get")
            .args(["install", "-y", "-qq", "pgcopydb"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success());
        if installed {
            return;
        }
    }
    eprintln!(
        "xtask: pgcopydb is not installed (Debian: apt-get install pgcopydb): the tables suite \
         leaves it out"
    );
}

/// Builds the benchmark and the CLI in release mode and runs the stress run.
fn stress(args: &[&str]) -> anyhow::Result<()> {
    let release = build_bench()?;
    let status = Command::new(release.join("copyman-bench"))
        .arg("stress")
        .args(args)
        .arg("--cli")
        .arg(release.join("copyman"))
        .current_dir(project_root())
        .status()
        .context("running copyman-bench")?;
    if !status.success() {
        bail!("the stress run failed");
    }
    Ok(())
}

/// The cargo-fuzz targets in `fuzz/fuzz_targets/`.
const FUZZ_TARGETS: &[&str] = &["framer", "lines", "session"];

/// Runs the fuzz targets, each for a while, from their committed seeds.
///
/// New inputs go to `fuzz/target/corpus/<target>`, not to the committed `fuzz/corpus/<target>`;
/// a crash is written to `fuzz/artifacts/<target>/` and fails the run.
fn fuzz(args: &[&str]) -> anyhow::Result<()> {
    let mut seconds = 300;
    let mut sanitizer = "address";
    let mut targets = Vec::new();
    let mut args = args.iter();
    while let Some(&arg) = args.next() {
        match arg {
            "--smoke" => seconds = 20,
            "--time" => {
                let value = args.next().context("--time needs a number of seconds")?;
                seconds = value
                    .parse()
                    .with_context(|| format!("--time {value}: not a number of seconds"))?;
            }
            "--sanitizer" => {
                sanitizer = args
                    .next()
                    .context("--sanitizer needs address, none, memory…")?;
            }
            target if FUZZ_TARGETS.contains(&target) => targets.push(target),
            other => bail!(
                "fuzz: unknown argument {other} (targets: {})",
                FUZZ_TARGETS.join(", ")
            ),
        }
    }
    if targets.is_empty() {
        targets = FUZZ_TARGETS.to_vec();
    }
    let cargo_fuzz = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["fuzz", "--version"])
        .output();
    if !cargo_fuzz.is_ok_and(|o| o.status.success()) {
        bail!("cargo-fuzz is not installed: run `cargo install cargo-fuzz --locked`");
    }
    let fuzz_dir = project_root().join("fuzz");
    for target in targets {
        let seeds = fuzz_dir.join("corpus").join(target);
        let corpus = fuzz_dir.join("target").join("corpus").join(target);
        std::fs::create_dir_all(&corpus)
            .with_context(|| format!("creating {}", corpus.display()))?;
        println!("xtask: fuzzing {target} for {seconds}s");
        // cargo-fuzz passes nightly-only flags (-Z sanitizer, -C passes=sancov…) to rustc:
        // RUSTC_BOOTSTRAP lets the stable toolchain take them. ASan is what enforces
        // -malloc_limit_mb (libFuzzer's malloc hooks); `none` runs about 5 times faster.
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["fuzz", "run", "--sanitizer", sanitizer, target])
            .arg(&corpus)
            .arg(&seeds)
            .args([
                "--".to_owned(),
                format!("-max_total_time={seconds}"),
                // Keep inputs small and memory bounded: an allocation that grows with a length
                // field rather than with the input shows up as an out-of-memory crash.
                "-max_len=8192".to_owned(),
                "-rss_limit_mb=1024".to_owned(),
                "-malloc_limit_mb=512".to_owned(),
                "-timeout=10".to_owned(),
            ])
            .env("RUSTC_BOOTSTRAP", "1")
            .current_dir(&fuzz_dir)
            .status()
            .context("running cargo fuzz")?;
        if !status.success() {
            bail!(
                "fuzz target {target} failed: see fuzz/artifacts/{target}/ and reproduce with \
                 `cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer {sanitizer} {target} \
                 <artifact>`"
            );
        }
    }
    println!("xtask: fuzzing done");
    Ok(())
}

/// Crates that must never be in the dependency tree of the sans-IO crates.
const FORBIDDEN_CRATES: &[&str] = &["tokio", "mio", "postgres", "tokio-postgres", "socket2"];

/// Source patterns that mean IO, threads or reading a clock. An `Instant` given as input
/// (`handle_timeout(now)`, as quinn-proto takes it) is a value, not a clock.
const FORBIDDEN_SOURCE: &[&str] = &[
    "std::net",
    "std::thread",
    "std::fs",
    "std::os::",
    "Instant::now",
    "SystemTime",
    "tokio",
    "TcpStream",
    "UnixStream",
    "std::process",
];

/// What copyman-tls, which reads certificate files but opens no socket, must not hold.
const FORBIDDEN_TLS_SOURCE: &[&str] = &[
    "std::net",
    "std::thread",
    "tokio",
    "TcpStream",
    "UnixStream",
    "std::process",
];

/// std's printing macros, which panic when the write fails: copyman-cli's sources must not use
/// them. With stderr or stdout gone (`copyman … 2>&1 | head`; SIGPIPE is ignored, so a write
/// fails with EPIPE) such a panic ended runs between two COMMITs, and killed the thread that
/// handles signals. copyman-cli writes stderr through `progress::write_stderr` (which ignores a
/// failed write) and stdout through functions that hand the error back.
const PANICKING_PRINTS: &[&str] = &["eprintln!", "eprint!", "println!", "print!", "dbg!"];

/// The mark of the one line of copyman-cli that writes stderr itself (`progress::write_stderr`).
const STDERR_WRITER: &str = "// tidy: the one stderr writer";

/// Where copyman-cli's sources print with a macro that panics when the write fails
/// ([`PANICKING_PRINTS`]), or take stderr for anything but asking whether it is a terminal
/// outside the one line marked [`STDERR_WRITER`].
fn panicking_prints(file: &Path, text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        let at = format!("{}:{}", file.display(), n + 1);
        for name in PANICKING_PRINTS {
            if calls(code, name) {
                problems.push(format!(
                    "{at}: `{name}` in copyman-cli: it panics when the write fails; write \
                     through progress::write_stderr (stderr) or report::print_stdout (stdout)"
                ));
            }
        }
        if calls(code, "stderr()")
            && !code.contains("is_terminal()")
            && !code.ends_with(STDERR_WRITER)
        {
            problems.push(format!(
                "{at}: stderr taken in copyman-cli outside progress::write_stderr, the one \
                 writer that never panics (bars draw on progress::draw_target())"
            ));
        }
    }
    problems
}

/// Whether `code` names `name` as a whole word (`print!` in `eprint!` is that one, not
/// another; `stderr()` in `use_stderr()` is clap's).
fn calls(code: &str, name: &str) -> bool {
    code.match_indices(name).any(|(i, _)| {
        !code[..i]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

fn tidy() -> anyhow::Result<()> {
    let mut problems = Vec::new();
    for file in rust_files(&project_root().join("copyman-cli").join("src"))? {
        problems.extend(panicking_prints(&file, &std::fs::read_to_string(&file)?));
    }
    for (krate, forbidden_source) in [
        ("copyman-wire", FORBIDDEN_SOURCE),
        ("copyman-core", FORBIDDEN_SOURCE),
        ("copyman-conninfo", FORBIDDEN_SOURCE),
        ("copyman-tls", FORBIDDEN_TLS_SOURCE),
    ] {
        let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args([
                "tree", "-p", krate, "-e", "normal", "--prefix", "none", "--format", "{p}",
            ])
            .current_dir(project_root())
            .output()
            .context("running cargo tree")?;
        if !output.status.success() {
            bail!(
                "cargo tree -p {krate} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            let name = line.split_whitespace().next().unwrap_or_default();
            if FORBIDDEN_CRATES.contains(&name) {
                problems.push(format!(
                    "{krate} depends on {name}: it must stay free of runtimes and clients"
                ));
            }
        }
        let src = project_root().join(krate).join("src");
        for file in rust_files(&src)? {
            let text = std::fs::read_to_string(&file)?;
            for (n, line) in text.lines().enumerate() {
                let code = line.trim_start();
                if code.starts_with("//") {
                    continue;
                }
                for pattern in forbidden_source {
                    if code.contains(pattern) {
                        problems.push(format!(
                            "{}:{}: `{pattern}` in {krate}",
                            file.display(),
                            n + 1
                        ));
                    }
                }
            }
        }
    }
    // Every crate stands at the top level; scan each one's sources (never `target/`).
    let mut files = Vec::new();
    for entry in std::fs::read_dir(project_root())? {
        let path = entry?.path();
        if path.join("Cargo.toml").is_file() {
            files.extend(rust_files(&path)?);
        }
    }
    for file in files {
        let text = std::fs::read_to_string(&file)?;
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("#[ignore") {
                problems.push(format!(
                    "{}:{}: #[ignore]: a test either runs or says loudly why it cannot",
                    file.display(),
                    n + 1
                ));
            }
        }
    }
    if problems.is_empty() {
        println!("tidy: ok");
        Ok(())
    } else {
        for p in &problems {
            eprintln!("tidy: {p}");
        }
        bail!("{} tidy problems", problems.len())
    }
}

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?
        {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tidy_finds_the_prints_that_panic_and_stderr_taken_outside_the_one_writer() {
        let text = "\
/// `eprintln!` in a comment is fine.
fn f() {
    eprintln!(\"a\");
    eprint!(\"b\");
    print!(\"c\");
    let _ = io::stderr().lock().write_all(b\"d\");
    let _ = io::stderr().lock().write_all(b\"e\"); // tidy: the one stderr writer
    let terminal = io::stderr().is_terminal();
    if e.use_stderr() {}
    progress::println(\"f\");
}
";
        let found = panicking_prints(Path::new("x.rs"), text);
        let lines: Vec<&str> = found
            .iter()
            .map(|p| p.split(": ").next().unwrap_or_default())
            .collect();
        assert_eq!(
            lines,
            ["x.rs:3", "x.rs:4", "x.rs:5", "x.rs:6"],
            "{found:#?}"
        );
    }
}
