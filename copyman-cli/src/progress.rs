//! Progress on stderr: a live bar on a terminal, a plain line every few seconds with
//! `--progress` when stderr is not a terminal, nothing with `--quiet`.
//!
//! Whatever is shown, each cycle of the copy bumps a counter ([`ticks`]) that the
//! [`watch`](crate::watch) thread reads to notice a copy that stopped moving, and a note (a lock
//! wait) can be put on the bar from that thread ([`set_note`]).
//!
//! Everything copyman writes on stderr goes through [`write_stderr`], which never panics and
//! ignores a failed write: log lines, warnings, the report ([`eprint()`], [`println()`]) and the
//! bars themselves (drawn on a [`draw_target`] that writes through it).

use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use indicatif::{
    HumanBytes, HumanCount, HumanDuration, ProgressBar, ProgressDrawTarget, ProgressState,
    ProgressStyle, TermLike,
};

use crate::sql::Format;

/// The bar on screen, so log lines can be printed above it.
static ACTIVE: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Cycles of the copy so far (any run): moves while data moves.
static TICKS: AtomicU64 = AtomicU64::new(0);

/// What the bar says besides the counts (a lock wait, a copy that does not move), and the
/// [`ticks`] when it was said: once data moves again it no longer holds.
static NOTE: Mutex<Option<(String, u64)>> = Mutex::new(None);

/// The destination (0-based) that paces the copy, or `usize::MAX` ([`set_slow`]).
static SLOW: AtomicUsize = AtomicUsize::new(usize::MAX);

/// Marks destination `d` (0-based) as the one that paces the copy (`2:slow` on the bar), or none.
pub(crate) fn set_slow(d: Option<usize>) {
    SLOW.store(d.unwrap_or(usize::MAX), Ordering::Relaxed);
}

/// How many cycles the copy has made: unchanged means nothing moved.
pub(crate) fn ticks() -> u64 {
    TICKS.load(Ordering::Relaxed)
}

/// Records that data moved (a cycle of the copy).
pub(crate) fn tick() {
    TICKS.fetch_add(1, Ordering::Relaxed);
}

/// Makes `bar` the one [`println()`] prints above (a job's display registers its overall bar: a
/// bar of a `MultiProgress` suspends them all), or none.
pub(crate) fn set_active(bar: Option<ProgressBar>) {
    *ACTIVE.lock().unwrap_or_else(PoisonError::into_inner) = bar;
}

/// Puts `note` (e.g. "waiting for lock on destination 2") on the bar, or takes it off.
pub(crate) fn set_note(note: Option<String>) {
    set_note_as_of(note, ticks());
}

/// [`set_note`], said of the copy as it stood at `at` ([`ticks`]): data that moved since ends
/// it.
pub(crate) fn set_note_as_of(note: Option<String>, at: u64) {
    *NOTE.lock().unwrap_or_else(PoisonError::into_inner) = note.clone().map(|n| (n, at));
    if at != ticks() {
        return;
    }
    let active = ACTIVE.lock().unwrap_or_else(PoisonError::into_inner);
    if let (Some(bar), Some(note)) = (active.as_ref(), note) {
        bar.set_message(in_locale(&note).into_owned());
    }
}

/// `1 row`, `2 rows`, `1,000 rows`.
pub(crate) fn rows(n: u64) -> String {
    if n == 1 {
        "1 row".to_owned()
    } else {
        format!("{} rows", HumanCount(n))
    }
}

/// How often the plain (non-terminal) progress line is printed.
pub(crate) const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// How often the bar's message is rebuilt.
const MESSAGE_EVERY: Duration = Duration::from_millis(100);

/// Writes `bytes` on stderr: the one place copyman-cli writes there (`cargo xtask tidy` forbids
/// `eprintln!` and its kin in it).
///
/// It never panics (std's `eprintln!` does when the write fails), and a failed write is
/// ignored: stderr closed (`copyman … 2>&1 | head`: EPIPE, SIGPIPE being ignored), a full disk,
/// a terminal hung up. Like psql and coreutils, copyman then goes on with its work: what it
/// does cannot depend on whether anyone reads what it says, and the exit status and the
/// servers' state still tell the truth. A panic here would instead end a run between two
/// COMMITs, or kill the thread that handles signals.
pub(crate) fn write_stderr(bytes: &[u8]) {
    let local = std::str::from_utf8(bytes).map(in_locale);
    let bytes = local.as_ref().map_or(bytes, |text| text.as_bytes());
    let mut stderr = io::stderr().lock(); // tidy: the one stderr writer
    let _ = crate::dest::write_all_waiting(&mut stderr, bytes);
}

/// Whether the locale copyman's words are shown in is not UTF-8: the first of `LC_ALL`,
/// `LC_CTYPE` and `LANG` that is set names the C or POSIX locale or another codeset. (None set:
/// UTF-8 is taken, as today's terminals are.)
pub(crate) fn ascii_locale() -> bool {
    static ASCII: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ASCII.get_or_init(|| {
        let locale = ["LC_ALL", "LC_CTYPE", "LANG"]
            .iter()
            .find_map(|var| std::env::var(var).ok().filter(|v| !v.is_empty()));
        locale.is_some_and(|l| crate::conn::locale_codeset(&l) != "utf8")
    })
}

/// `text` with copyman's typographic punctuation (… — – → × “ ” ‘ ’) in ASCII where the locale
/// is not UTF-8 ([`ascii_locale`]): under `LC_ALL=C` a terminal or a log showed their UTF-8
/// bytes as garbage (`â€"`). Other characters (a table's name, a server's words) stay as
/// they are, as psql prints them.
pub(crate) fn in_locale(text: &str) -> std::borrow::Cow<'_, str> {
    in_ascii_if(ascii_locale(), text)
}

fn in_ascii_if(ascii: bool, text: &str) -> std::borrow::Cow<'_, str> {
    const ASCII: [(char, &str); 9] = [
        ('…', "..."),
        ('—', "--"),
        ('–', "-"),
        ('→', "->"),
        ('×', "x"),
        ('“', "\""),
        ('”', "\""),
        ('‘', "'"),
        ('’', "'"),
    ];
    if !ascii || !text.contains(|c| ASCII.iter().any(|(t, _)| *t == c)) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match ASCII.iter().find(|(t, _)| *t == c) {
            Some((_, ascii)) => out.push_str(ascii),
            None => out.push(c),
        }
    }
    out.into()
}

/// `text` as a terminal shows it literally: a control character other than a line break or a
/// tab (an ESC, which starts a sequence that recolours, moves the cursor or retitles the
/// window; a carriage return; a C1 control) written `\x1b`, `\r`… — a table's name may hold
/// any (anyone who may create a table in a selected schema chooses it), as may a server's
/// message.
pub(crate) fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    let control = |c: char| c.is_control() && c != '\n' && c != '\t';
    if !text.contains(control) {
        return text.into();
    }
    text.chars()
        .map(|c| match c {
            '\r' => "\\r".to_owned(),
            c if control(c) => format!("\\x{:02x}", u32::from(c)),
            c => c.to_string(),
        })
        .collect::<String>()
        .into()
}

/// Stderr as an [`io::Write`], through [`write_stderr`]: no write fails, and nothing is kept
/// to flush. What it writes is made [`printable`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stderr;

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        write_stderr(printable(&String::from_utf8_lossy(buf)).as_bytes());
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes `text` on stderr, [`printable`], above the progress bar if one is showing; never
/// panics ([`write_stderr`]).
pub(crate) fn eprint(text: &str) {
    let text = printable(text);
    let active = ACTIVE.lock().unwrap_or_else(PoisonError::into_inner);
    match active.as_ref() {
        Some(bar) => bar.suspend(|| write_stderr(text.as_bytes())),
        None => write_stderr(text.as_bytes()),
    }
}

/// Prints a line on stderr, above the progress bar if one is showing; never panics
/// ([`write_stderr`]).
pub(crate) fn println(line: &str) {
    eprint(&format!("{line}\n"));
}

/// Whether progress bars are drawn: stderr is a terminal that reads ANSI cursor codes (`TERM`
/// set, and not `dumb`, as indicatif's own target decides); else the plain lines of
/// `--progress`, if asked for.
pub(crate) fn draws_bars() -> bool {
    io::stderr().is_terminal() && cursor_codes() && !terminal_data()
}

/// Whether `TERM` says the terminal reads ANSI cursor codes (set, and not `dumb`).
fn cursor_codes() -> bool {
    std::env::var_os("TERM").is_some_and(|term| term != "dumb")
}

/// Whether the run's data is on the terminal (rows written to stdout, or typed on stdin): no
/// progress is drawn among them.
fn terminal_data() -> bool {
    (DATA_ON_STDOUT.load(Ordering::Relaxed) && io::stdout().is_terminal())
        || (DATA_FROM_STDIN.load(Ordering::Relaxed) && io::stdin().is_terminal())
}

/// Whether the plain lines are printed where no bar is drawn: `asked` (`--progress`), or
/// stderr is a terminal that draws none (`TERM=dumb` or unset: an editor's shell, a CI
/// console), which showed nothing until the summary (progress62 F5).
pub(crate) fn plain_lines(asked: bool) -> bool {
    asked || (io::stderr().is_terminal() && !cursor_codes() && !terminal_data())
}

/// The bars' `{eta}`: indicatif's, but `?` while nothing moves and `>30d` beyond (a job held
/// back by a tiny `--max-rate` read "ETA 584942417355y", its rate decayed to nothing).
pub(crate) fn eta(state: &ProgressState, w: &mut dyn std::fmt::Write) {
    let _ = w.write_str(&eta_text(state.per_sec(), state.eta()));
}

fn eta_text(per_sec: f64, eta: Duration) -> String {
    const MONTH: Duration = Duration::from_secs(30 * 86_400);
    match (per_sec.is_finite() && per_sec > 0.0, eta > MONTH) {
        (false, _) => "?".to_owned(),
        (true, true) => ">30d".to_owned(),
        (true, false) => format!("{:#}", HumanDuration(eta)),
    }
}

/// The run writes its data on stdout ([`data_on_stdout`]).
static DATA_ON_STDOUT: AtomicBool = AtomicBool::new(false);

/// The run writes its data on stdout: on a terminal, no bar is drawn among the rows (each
/// redraw moved the cursor up and cleared a line: a row), as psql's `\copy … TO STDOUT` draws
/// none.
pub(crate) fn data_on_stdout() {
    DATA_ON_STDOUT.store(true, Ordering::Relaxed);
}

/// The run reads its data from stdin ([`data_from_stdin`]).
static DATA_FROM_STDIN: AtomicBool = AtomicBool::new(false);

/// The run reads its data from stdin: from a terminal, no bar is drawn over the line being
/// typed (each redraw wiped its echo: files42 F2), as psql draws none at its `>>` prompt.
pub(crate) fn data_from_stdin() {
    DATA_FROM_STDIN.store(true, Ordering::Relaxed);
}

/// The draw target of every progress bar: the terminal on stderr, written through
/// [`write_stderr`]. indicatif's own stderr target hands a failed write back, and its
/// `MultiProgress` unwraps that result when it clears the bars to print a line above them
/// (`MultiState::suspend`): a terminal hung up (EIO) would panic whichever thread printed —
/// the signals thread, after the very SIGHUP that hung it up.
pub(crate) fn draw_target() -> ProgressDrawTarget {
    // indicatif's own rate for a terminal.
    ProgressDrawTarget::term_like_with_hz(Box::new(StderrTerm::default()), 20)
}

/// Stderr as indicatif's [`TermLike`], on an ANSI terminal (the escape sequences are those of
/// `console`, which indicatif's own target uses); a drawing is written at once on `flush`.
/// No method fails: what cannot be written is dropped ([`write_stderr`]).
#[derive(Debug, Default)]
struct StderrTerm {
    /// What was drawn since the last flush.
    pending: Mutex<Vec<u8>>,
}

impl StderrTerm {
    fn put(&self, text: &str) -> io::Result<()> {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(text.as_bytes());
        Ok(())
    }

    fn cursor(&self, n: usize, direction: char) -> io::Result<()> {
        if n > 0 {
            self.put(&format!("\x1b[{n}{direction}"))?;
        }
        Ok(())
    }
}

impl TermLike for StderrTerm {
    fn width(&self) -> u16 {
        terminal_size().1
    }

    fn height(&self) -> u16 {
        terminal_size().0
    }

    fn move_cursor_up(&self, n: usize) -> io::Result<()> {
        self.cursor(n, 'A')
    }

    fn move_cursor_down(&self, n: usize) -> io::Result<()> {
        self.cursor(n, 'B')
    }

    fn move_cursor_right(&self, n: usize) -> io::Result<()> {
        self.cursor(n, 'C')
    }

    fn move_cursor_left(&self, n: usize) -> io::Result<()> {
        self.cursor(n, 'D')
    }

    fn write_line(&self, s: &str) -> io::Result<()> {
        self.put(s)?;
        self.put("\n")
    }

    fn write_str(&self, s: &str) -> io::Result<()> {
        self.put(s)
    }

    fn clear_line(&self) -> io::Result<()> {
        self.put("\r\x1b[2K")
    }

    fn flush(&self) -> io::Result<()> {
        let drawn =
            std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner));
        if !drawn.is_empty() {
            write_stderr(&drawn);
        }
        Ok(())
    }
}

/// The size of the terminal on stderr (rows, columns); 24 × 80 when it cannot be told, as
/// `console` falls back.
fn terminal_size() -> (u16, u16) {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` through the pointer, which points to a live,
    // writable `winsize` of this frame for the whole call; fd 2 is open (copyman opens
    // `/dev/null` on it if it was closed at start), and on a descriptor that is not a terminal
    // the call fails with ENOTTY, writing nothing.
    let asked = unsafe { libc::ioctl(libc::STDERR_FILENO, libc::TIOCGWINSZ, &mut size) };
    if asked == 0 && size.ws_row > 0 && size.ws_col > 0 {
        (size.ws_row, size.ws_col)
    } else {
        (24, 80)
    }
}

/// What the copy's size is known as, for the bar's length and ETA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Estimate {
    /// About this many rows (`pg_class.reltuples`).
    Rows(u64),
    /// This many bytes (a file source's size).
    Bytes(u64),
    /// Unknown.
    Unknown,
}

/// A destination's state, as the bar shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DestinationState {
    Copying,
    Failed,
}

/// The bar's look for `estimate`: with a length, a bar, its percent and ETA; without, a spinner.
fn style(estimate: Estimate) -> ProgressStyle {
    let template = match estimate {
        Estimate::Rows(_) | Estimate::Bytes(_) => {
            "{spinner} {elapsed_precise} [{bar:30}] {percent:>3}% ETA {eta} {msg}"
        }
        Estimate::Unknown => "{spinner} {elapsed_precise} {msg}",
    };
    in_locale_spinner(
        ProgressStyle::with_template(template)
            .expect("the progress templates are valid")
            .with_key("eta", eta)
            .progress_chars("=> "),
    )
}

/// `style` with a spinner of ASCII characters where the locale is not UTF-8 ([`in_locale`]):
/// indicatif's turns Braille dots.
pub(crate) fn in_locale_spinner(style: ProgressStyle) -> ProgressStyle {
    match ascii_locale() {
        true => style.tick_chars("|/-\\ "),
        false => style,
    }
}

/// Progress of one copy.
#[derive(Debug)]
pub(crate) struct Progress {
    bar: Option<ProgressBar>,
    plain: bool,
    estimate: Estimate,
    /// Whether the source's messages are rows (a server source) or chunks (a file).
    counts_rows: bool,
    /// The format of a server source's COPY, whose messages are counted as its rows
    /// ([`Format::rows_of`]).
    format: Option<Format>,
    started: Instant,
    last_update: Instant,
    rows: u64,
    bytes: u64,
    destinations: Vec<DestinationState>,
}

impl Progress {
    /// Starts showing progress for a copy to `destinations` destinations; `quiet` shows nothing,
    /// `plain` prints lines when stderr is not a terminal (`--progress`).
    pub(crate) fn start(
        quiet: bool,
        plain: bool,
        estimate: Estimate,
        counts_rows: bool,
        destinations: usize,
    ) -> Self {
        let terminal = draws_bars();
        let bar = (!quiet && terminal).then(|| {
            let bar = match estimate {
                Estimate::Rows(n) | Estimate::Bytes(n) => ProgressBar::new(n),
                Estimate::Unknown => ProgressBar::no_length(),
            };
            bar.set_style(style(estimate));
            bar.set_draw_target(draw_target());
            bar.enable_steady_tick(Duration::from_millis(200));
            *ACTIVE.lock().unwrap_or_else(PoisonError::into_inner) = Some(bar.clone());
            bar
        });
        let now = Instant::now();
        let mut progress = Self {
            bar,
            plain: !quiet && !terminal && plain_lines(plain),
            estimate,
            counts_rows,
            format: None,
            started: now,
            last_update: now,
            rows: 0,
            bytes: 0,
            destinations: vec![DestinationState::Copying; destinations],
        };
        progress.redraw();
        progress
    }

    /// Counts a server source's messages as rows of `format` ([`Format::rows_of`]).
    pub(crate) fn counting(mut self, format: Option<Format>) -> Self {
        self.format = format;
        self
    }

    /// The totals so far: the source's messages (rows) and bytes.
    pub(crate) fn update(&mut self, messages: u64, bytes: u64) {
        tick();
        let rows = self.format.map_or(messages, |f| f.rows_of(messages));
        self.rows = rows;
        self.bytes = bytes;
        if let Some(bar) = &self.bar {
            let position = |estimate| match estimate {
                Estimate::Bytes(_) => bytes,
                Estimate::Rows(_) | Estimate::Unknown => rows,
            };
            // Past its estimate (statistics older than the rows, a guess for a table never
            // analyzed), the bar no longer claims 100% and "ETA 0s" while rows still come: it
            // counts on, without a length.
            if let Estimate::Rows(n) | Estimate::Bytes(n) = self.estimate
                && position(self.estimate) > n
            {
                self.estimate = Estimate::Unknown;
                bar.unset_length();
                bar.set_style(style(Estimate::Unknown));
            }
            bar.set_position(position(self.estimate));
        }
        let every = if self.plain {
            PLAIN_EVERY
        } else {
            MESSAGE_EVERY
        };
        if self.last_update.elapsed() >= every {
            self.redraw();
        }
    }

    /// Destination `index` failed.
    pub(crate) fn destination_failed(&mut self, index: usize) {
        if let Some(state) = self.destinations.get_mut(index) {
            *state = DestinationState::Failed;
        }
        if self.bar.is_some() {
            self.redraw();
        }
    }

    fn status_line(&self) -> String {
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let mut line = String::new();
        if self.counts_rows {
            line.push_str(&format!("{}, ", rows(self.rows)));
        }
        line.push_str(&format!(
            "{}, {}/s",
            HumanBytes(self.bytes),
            HumanBytes((self.bytes as f64 / secs) as u64)
        ));
        if self.counts_rows {
            line.push_str(&format!(
                " ({} rows/s)",
                HumanCount((self.rows as f64 / secs) as u64)
            ));
        }
        let states: Vec<String> = self
            .destinations
            .iter()
            .enumerate()
            .map(|(i, s)| match s {
                DestinationState::Copying if SLOW.load(Ordering::Relaxed) == i => {
                    format!("{}:slow", i + 1)
                }
                DestinationState::Copying => format!("{}:ok", i + 1),
                DestinationState::Failed => format!("{}:FAILED", i + 1),
            })
            .collect();
        line.push_str(&format!("  destinations {}", states.join(" ")));
        // (One said before data moved again is over: the copy's last frame said "nothing has
        // moved for 2 s" beside its counts.)
        if let Some((note, _)) = (NOTE.lock().unwrap_or_else(PoisonError::into_inner).as_ref())
            .filter(|(_, at)| *at == ticks())
        {
            line.push_str(&format!("  {note}"));
        }
        line
    }

    fn redraw(&mut self) {
        self.last_update = Instant::now();
        if let Some(bar) = &self.bar {
            bar.set_message(in_locale(&self.status_line()).into_owned());
        } else if self.plain && self.started.elapsed() >= PLAIN_EVERY {
            // With the time since the start, as a job's lines (progress62 F7: a log's lines
            // could not be placed in time).
            println(&format!(
                "copyman: {:.0} s: {}",
                self.started.elapsed().as_secs_f64(),
                self.status_line()
            ));
        }
    }

    /// Takes the bar off the screen.
    pub(crate) fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
            *ACTIVE.lock().unwrap_or_else(PoisonError::into_inner) = None;
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// copyman's own punctuation in ASCII where the locale is not UTF-8, the rest as it is
    /// (scale38 F10).
    #[test]
    fn punctuation_in_ascii_outside_utf8_locales() {
        let said = "3 tables × 2 destinations — done … “t” → ‘u’ – é";
        assert_eq!(
            in_ascii_if(true, said),
            "3 tables x 2 destinations -- done ... \"t\" -> 'u' - é"
        );
        assert_eq!(in_ascii_if(false, said), said);
        assert!(matches!(
            in_ascii_if(true, "plain"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    /// A name with an ESC sequence or a carriage return is shown as written, not obeyed.
    #[test]
    fn control_characters_are_written_out() {
        assert_eq!(printable("plain \"t\"\n\tnext"), "plain \"t\"\n\tnext");
        assert_eq!(
            printable("\"esc\u{1b}[31mRED\u{1b}[0m\" \r\u{9b}x"),
            "\"esc\\x1b[31mRED\\x1b[0m\" \\r\\x9bx"
        );
        assert!(matches!(printable("ok"), std::borrow::Cow::Borrowed(_)));
    }

    /// Nothing moving, or a month and more to go, is not said as decades (indicatif's ETA of a
    /// rate decayed to nothing read `584942417355y`).
    /// The destination that paces the copy is `N:slow` on the bar's line, the others `N:ok`.
    #[test]
    fn the_destination_that_paces_the_copy_is_slow_on_the_bar() {
        let progress = Progress::start(true, false, Estimate::Unknown, true, 3);
        set_slow(Some(1));
        let line = progress.status_line();
        set_slow(None);
        assert!(line.contains("destinations 1:ok 2:slow 3:ok"), "{line}");
        assert!(progress.status_line().contains("2:ok"));
    }

    #[test]
    fn an_eta_is_said_only_when_it_means_something() {
        assert_eq!(eta_text(0.0, Duration::MAX), "?");
        assert_eq!(eta_text(f64::NAN, Duration::from_secs(5)), "?");
        assert_eq!(
            eta_text(0.001, Duration::from_secs(86_400 * 365 * 42)),
            ">30d"
        );
        assert_eq!(
            eta_text(1000.0, Duration::from_secs(90)),
            format!("{:#}", HumanDuration(Duration::from_secs(90)))
        );
    }
}
