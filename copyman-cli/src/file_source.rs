//! Files and stdin as the source of a copy.
//!
//! A thread reads the file in large chunks and hands them over a small bounded channel, so the
//! copy never sits in a blocking `read` it cannot leave. The producer is pollable: a pipe of its
//! own becomes readable when a chunk came (and every [`POLL`], as a tick), and the copy's driver
//! waits on it with `poll(2)` together with the destinations' sockets. So while stdin or a FIFO
//! gives nothing, a destination's error still reaches the manager at once (every destination
//! failing, or one without `--keep-going`, ends the run then, not when the pipe closes), and each
//! tick the producer notices a signal ([`signals`]) and a source that moved no byte for
//! `--stall-timeout`. A read that returns bytes hands them over at once (a pipe's reads return
//! what was written so far): rows a slow writer gave are not held back until 256 KiB came.
//!
//! Every chunk goes through copyman-wire's [`EndOfDataScanner`]: a `\.` before the end would make
//! every server stop reading there and drop the rows after it while reporting success, so the
//! copy fails instead, naming the line. Text data is scanned as the server reads text (a `\.`
//! escape ending any line); `table` CSV as the server reads CSV (quotes followed); `copy`
//! statements whose format is not plain text, for a line that is exactly `\.`. The data is read in
//! the client encoding of the servers' sessions (`--encoding`, or the destinations'
//! `client_encoding`), whose multibyte characters the server steps over whole. Binary COPY data
//! (it starts with the binary signature) has no lines: its tuples are followed instead, and input
//! that ends without the trailer fails the copy, since a server takes binary data cut between two
//! tuples as whole.
//!
//! Before anything is sent, the start of the input is read ([`FileSource::examine_start`]) and
//! kept for the copy (stdin cannot seek back), as copyman-core's [`file_start`] decides: a UTF-8
//! byte order mark is dropped, a PGCOPY file without a format is read as binary and one that
//! contradicts its format is refused ([`read_as`]), and a header line is checked against the
//! columns the COPY reads ([`check_header`]: `b,a` for a table `(a, b)` would load every value
//! into the wrong column).
//!
//! The same walk counts the rows the servers will load, and the producer gives that count to the
//! manager as its `COPY n`: each destination's count must match it, as a server source's must
//! (`--allow-count-mismatch` to accept otherwise). A `copy` statement whose options can change
//! which lines are rows, or how they are read (CSV, HEADER, ENCODING), gives no count: the destinations' counts
//! must then agree with each other.

use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use copyman_core::file_start::{
    self, Compression, Declared, Foreign, FormatError, HeaderMismatch, Layout, Peek, Reading,
    Start, Verdict,
};
use copyman_core::{BoxError, Chunk};
use copyman_sync::{PollSocket, Producer, Protocol};
use copyman_wire::binary::End;
use copyman_wire::csv_quotes::StrayQuotes;
use copyman_wire::eod::{Encoding, EndOfDataScanner, Mode};

use crate::args::{Endpoint, Statements, Transfer};
use crate::dest::Dest;
use crate::plan::Plan;
use crate::report::{self, Exit, Fatal};
use crate::signals;
use crate::sql::Format;
use copyman_core::statement;

/// Bytes read from a file source per chunk: each becomes one CopyData message for the servers.
pub(crate) const FILE_CHUNK: usize = 256 * 1024;

/// How often a wait for the next chunk looks at signals and the stall timeout.
const POLL: Duration = Duration::from_millis(100);

/// A CSV value quoted over more line ends than this is said ([`StrayQuotes::longest_quoted`]):
/// a text of many lines quoted on purpose (a pretty-printed JSON document) stays below it, as
/// a rule; rows merged by a stray quote are often many more.
const QUOTED_LINES_SAID: u64 = 100;

/// How long a wait for the input's first bytes goes before it is said.
const SAY_WAIT: Duration = Duration::from_secs(1);

/// Chunks read ahead of the copy.
const READ_AHEAD: usize = 2;

/// A file or stdin, read by a thread of its own.
pub(crate) struct FileSource {
    /// How the source is named in errors: the path, or `stdin`.
    name: String,
    chunks: mpsc::Receiver<io::Result<Vec<u8>>>,
    /// Bytes read so far by the thread (for the stall timeout).
    read: Arc<AtomicU64>,
    /// The end-of-data check and the row count (binary input's tuples too).
    scanner: EndOfDataScanner,
    /// CSV's quotes followed ([`StrayQuotes`]), where they can be.
    stray_quotes: Option<StrayQuotes>,
    /// Whether the scanner's row count is the servers' (see [`Scan`]).
    count_rows: bool,
    stall_timeout: Option<Duration>,
    /// Since when the copy waits for the next chunk, and how many bytes had been read then.
    waiting: Option<(u64, Instant)>,
    /// Readable when a chunk came or a tick passed: the producer's poll socket.
    wakeups: io::PipeReader,
    wakeup: Arc<Wakeup>,
    /// Stops the ticking thread when the source goes.
    stop: Arc<AtomicBool>,
    /// Bytes [`Self::examine_start`] read and the copy has not had yet.
    front: Option<Vec<u8>>,
    /// The source is stdin (a file's name can be given to a decompressor, stdin's cannot).
    stdin: bool,
    /// The source is a pipe (stdin that is not a regular file, a FIFO): whatever writes it may
    /// die in the middle of a line.
    pipe: bool,
    /// The last byte read.
    last: Option<u8>,
    /// The byte before it: the two end binary COPY's end marker (a field count of -1) where
    /// they are both 0xFF.
    before_last: Option<u8>,
    /// The data's first line is a header, not a row.
    header: bool,
    done: bool,
    /// Nothing said while waiting (`--quiet`), or the wait for the first bytes was said.
    quiet_wait: bool,
}

impl Drop for FileSource {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The write end of a [`FileSource`]'s wake-up pipe.
struct Wakeup {
    writer: Mutex<io::PipeWriter>,
    /// Bytes written to the pipe and not read yet. Each writer counts its byte once it is in the
    /// pipe, so the reader, reading no more than this many, never blocks.
    pending: AtomicUsize,
}

impl Wakeup {
    /// Makes the pipe readable.
    fn wake(&self) {
        let mut writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        if writer.write_all(&[1]).is_ok() {
            self.pending.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A tick: makes the pipe readable unless it is already (so the bytes in it stay few).
    fn tick(&self) {
        if self.pending.load(Ordering::SeqCst) == 0 {
            self.wake();
        }
    }
}

impl FileSource {
    /// Opens `t`'s source (a file or stdin) and starts reading it. A FIFO's writer is waited
    /// for as [`crate::dest::open_fifo`] says (said unless `quiet`).
    ///
    /// # Errors
    /// The file cannot be opened, or a signal came while a FIFO waited for its writer.
    pub(crate) fn open(t: &Transfer, quiet: bool) -> Result<Self, Fatal> {
        let mut pipe = true;
        // Standard input by a path, from a regular file: opened anew it would be read from the
        // file's start, not from where the shell left it (files48 F5: `{ read header; copyman
        // --from /dev/stdin …; } < FILE` loaded the line read): read as `-` reads it.
        let stdin_file = || {
            (io::stdin()
                .as_fd()
                .try_clone_to_owned()
                .map(File::from)
                .ok())
            .filter(|f| f.metadata().is_ok_and(|m| m.is_file()))
        };
        let by_path = match &t.source {
            Endpoint::File(path) => ["/dev/stdin", "/dev/fd/0", "/proc/self/fd/0"]
                .contains(&path.to_string_lossy().as_ref()),
            _ => false,
        };
        let stdin_by_path = if by_path { stdin_file() } else { None };
        let (reader, name): (Box<dyn Read + Send>, String) = match (&t.source, stdin_by_path) {
            (Endpoint::File(_), Some(file)) => {
                pipe = false;
                (Box::new(Unchanging::new(file)), t.source.display())
            }
            (Endpoint::File(path), None) => {
                pipe = crate::dest::is_fifo(path);
                let opened = if pipe {
                    let give_up = t.safety.stall_timeout;
                    crate::dest::open_fifo(path, crate::dest::FifoEnd::Read, quiet, give_up)
                } else {
                    File::open(path)
                };
                let file = opened.map_err(|e| unopenable(t, path, &e))?;
                (Box::new(Unchanging::new(file)), t.source.display())
            }
            // Stdin redirected from a regular file (`--from - < FILE`) is that file, read whole
            // as it was too.
            _ => match stdin_file() {
                Some(file) => {
                    pipe = false;
                    (Box::new(Unchanging::new(file)), "stdin".to_owned())
                }
                None => (Box::new(io::stdin()), "stdin".to_owned()),
            },
        };
        let scan = scan(&t.statements);
        let encoding = Encoding::from_name(&scan.encoding.unwrap_or_else(|| client_encoding(t)));
        let scanner = EndOfDataScanner::new(scan.mode)
            .with_header(scan.header)
            .with_encoding(encoding);
        // A quote the server reads as opening a value inside a field (files44 F3): followed
        // where its bytes are its own (no multibyte character embeds one).
        let stray_quotes = match (scan.mode, scan.delimiter) {
            (Mode::Csv { quote, .. }, Some(delimiter)) if !encoding.embeds_ascii() => {
                Some(StrayQuotes::new(quote, delimiter))
            }
            _ => None,
        };
        let cannot_start = |e: io::Error| Fatal {
            exit: Exit::CopyFailed,
            server: None,
            message: format!("cannot start reading {name}: {e}"),
        };
        let (wakeups, writer) = io::pipe().map_err(cannot_start)?;
        let wakeup = Arc::new(Wakeup {
            writer: Mutex::new(writer),
            pending: AtomicUsize::new(0),
        });
        let (send, chunks) = mpsc::sync_channel(READ_AHEAD);
        let read = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&read);
        let woken = Arc::clone(&wakeup);
        thread::Builder::new()
            .name("copyman-file-source".to_owned())
            .spawn(move || {
                read_chunks(reader, send, &counter, &woken);
                // The sender is gone: the copy learns the end (or the error) when it looks.
                woken.wake();
            })
            .map_err(cannot_start)?;
        let stop = Arc::new(AtomicBool::new(false));
        let (ticking, stopped) = (Arc::clone(&wakeup), Arc::clone(&stop));
        thread::Builder::new()
            .name("copyman-file-tick".to_owned())
            .spawn(move || {
                while !stopped.load(Ordering::Relaxed) {
                    thread::sleep(POLL);
                    ticking.tick();
                }
            })
            .map_err(cannot_start)?;
        Ok(Self {
            name,
            chunks,
            read,
            scanner,
            stray_quotes,
            count_rows: scan.count_rows,
            stall_timeout: t.safety.stall_timeout,
            waiting: None,
            wakeups,
            wakeup,
            stop,
            front: None,
            stdin: !matches!(t.source, Endpoint::File(_)),
            pipe,
            last: None,
            before_last: None,
            header: scan.header,
            done: false,
            quiet_wait: quiet,
        })
    }

    /// How the source is named in messages: its path, or `stdin`.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Reads the start of the input until copyman-core's [`file_start::examine`] can tell what
    /// it is, and whether it is compressed ([`Compression::of`]), before anything is sent
    /// anywhere, and keeps those bytes for the copy (stdin cannot seek back), without a UTF-8
    /// byte order mark. A signal meanwhile exits at once (nothing began anywhere);
    /// `--stall-timeout` applies.
    ///
    /// # Errors
    /// The input cannot be read, stalled, or a signal came (exit 1); it is compressed (exit 2,
    /// [`compressed`]).
    pub(crate) fn examine_start(&mut self, reading: &Reading) -> Result<Start, Fatal> {
        let mut data: Vec<u8> = Vec::new();
        let mut ended = false;
        signals::waiting_for_input(true);
        let failed = |message| Fatal {
            exit: Exit::CopyFailed,
            server: None,
            message,
        };
        let start = loop {
            // Compressed input is refused first, whatever its bytes would seem to be after.
            if let (Peek::Ready(start), Some(compression)) = (
                file_start::examine(&data, ended, reading),
                Compression::of(&data, ended),
            ) {
                let input = Refused {
                    name: &self.name,
                    stdin: self.stdin,
                    csv: false,
                };
                break match (compression, Foreign::of(&data)) {
                    (Some(compression), _) => Err(compressed(compression, &input)),
                    (None, Some(foreign)) => Err(no_copy_data(foreign, &input)),
                    (None, None) => Ok(start),
                };
            }
            match self.chunks.recv_timeout(POLL) {
                Ok(Ok(bytes)) if data.is_empty() => data = bytes,
                Ok(Ok(bytes)) => data.extend_from_slice(&bytes),
                Ok(Err(e)) => break Err(failed(format!("cannot read {}: {e}", self.name))),
                Err(RecvTimeoutError::Disconnected) => ended = true,
                Err(RecvTimeoutError::Timeout) => {
                    if let Err(e) = self.still_waiting() {
                        break Err(failed(e.to_string()));
                    }
                }
            }
        };
        signals::waiting_for_input(false);
        self.waiting = None;
        let start = start?;
        // A pipe that ended inside its header line: cut, not a header of other columns
        // (files65 F6: said as a header of 2 fields for a table of 4).
        if ended
            && self.pipe
            && reading.header
            && !start.binary
            && !data.is_empty()
            && !data.iter().any(|&b| b == b'\n' || b == b'\r')
        {
            return Err(failed(header_cut(&self.name)));
        }
        if start.bom {
            // Said: a first value that began with U+FEFF loses it, where psql's `\copy` sends
            // the bytes (types69 F7: said only under -v).
            crate::progress::println(&format!(
                "copyman: note: {} begins with a UTF-8 byte order mark, which is not sent (read \
                 as a mark, not as its first value's first character, U+FEFF)",
                self.name
            ));
            data.drain(..file_start::UTF8_BOM.len());
        }
        if !data.is_empty() {
            self.front = Some(data);
            // The copy's driver polls the wake-up pipe: it must find the bytes kept.
            self.wakeup.wake();
        }
        Ok(start)
    }

    /// Reads the wake-up bytes that are in the pipe (never more: it does not block).
    fn drain_wakeups(&mut self) -> Result<(), BoxError> {
        let mut buf = [0; 64];
        let n = self.wakeup.pending.load(Ordering::SeqCst).min(buf.len());
        if n > 0 {
            self.wakeups
                .read_exact(&mut buf[..n])
                .map_err(|e| format!("cannot read {}'s wake-ups: {e}", self.name))?;
            self.wakeup.pending.fetch_sub(n, Ordering::SeqCst);
        }
        Ok(())
    }

    /// A chunk the thread read, checked: the copy's next chunk.
    fn chunk(&mut self, read: io::Result<Vec<u8>>) -> Result<Option<Chunk>, BoxError> {
        self.waiting = None;
        let buf = read.map_err(|e| format!("cannot read {}: {e}", self.name))?;
        self.before_last = match buf.len() {
            0 => self.before_last,
            1 => self.last,
            n => Some(buf[n - 2]),
        };
        self.last = buf.last().copied().or(self.last);
        if let Some(marker) = self.scanner.feed(&buf) {
            return Err(format!(
                "line {} of {} {} `\\.`, the end-of-data marker: the lines after it would be lost \
                 (the servers read nothing after it; blank lines alone after it, as pg_dump ends \
                 its data files, are let through); delete the marker, or what follows it",
                marker.line,
                self.name,
                if marker.alone { "is" } else { "ends in" }
            )
            .into());
        }
        // (Binary data, which a file's name guessed CSV, has no quotes of CSV's.)
        if let Some(stray) = (self.stray_quotes.as_mut())
            .filter(|_| !self.scanner.is_binary())
            .and_then(|q| q.feed(&buf))
        {
            return Err(match stray.opened {
                // (files63 F1: the rows between were merged into the value, exit 0.)
                Some(opened) => format!(
                    "line {} of {} has text right after a quote that closes a quoted value \
                     ({}): the servers read that value as opened by a quote on line {opened} \
                     and running to this one, {}; quote each field whole, doubling the quotes \
                     in it, or give the COPY another QUOTE",
                    stray.line,
                    self.name,
                    stray.field,
                    match opened < stray.line {
                        true => "merging the rows between into it without an error",
                        false => "with the text after it joined to it (not RFC 4180 CSV)",
                    }
                ),
                // (files63 F8: the next quote may be on the same line.)
                None => format!(
                    "line {} of {} has a quote inside a field ({}): the servers read it as \
                     opening a quoted value that runs to the next quote, on this line or \
                     across line ends, merging rows into one without an error (not RFC 4180 \
                     CSV); quote the whole field, doubling the quotes in it (\"5\"\" \
                     pipe\"), or give the COPY another QUOTE",
                    stray.line, self.name, stray.field
                ),
            }
            .into());
        }
        Ok(Some(Chunk::lines(vec![Bytes::from(buf)])))
    }

    /// The thread reached the end: the copy's end, unless binary data was cut short.
    fn end(&mut self) -> Result<Option<Chunk>, BoxError> {
        if let End::Truncated { tuples } = self.scanner.binary_end() {
            // Its last bytes are the end marker: a tuple before it is corrupt, whose field count
            // or a field's length ran past the end (files48 F4: said "truncated?" of a whole
            // file).
            if self.last == Some(0xFF) && self.before_last == Some(0xFF) {
                return Err(format!(
                    "{} ends in the bytes of binary COPY's end marker, but its tuples do not \
                     read up to it (after {} read whole, a field count or a field's length runs \
                     past it): the file is corrupt (or cut short just after a NULL value)",
                    self.name,
                    crate::progress::rows(tuples)
                )
                .into());
            }
            return Err(format!(
                "{} ends without binary COPY's end marker (after {}): truncated?",
                self.name,
                crate::progress::rows(tuples)
            )
            .into());
        }
        // Its last line has no line end (binary data has no lines); a header alone is no row.
        let unended =
            !self.scanner.is_binary() && self.last.is_some_and(|b| b != b'\n' && b != b'\r');
        let header_only = self.header && self.scanner.line_number() <= 1;
        // Only a header, and no line end after it, from a pipe: its writer failed half way, as
        // for a row cut short below (files65 F6: exit 0, no row).
        if unended && header_only && self.pipe {
            return Err(header_cut(&self.name).into());
        }
        // Only a header, and no line end after it: every row gone if it was cut (COPY writes
        // its header with one), from a file (recheck59 F2: 0 rows committed, not a word).
        if unended && header_only {
            report::warn(format_args!(
                "{} holds only its header line, with no line end after it: no row copied; COPY \
                 ends the header it writes with one, and data cut short in its header ends so",
                self.name
            ));
        }
        let unended = unended && !header_only;
        // A quoted value over many line ends: a quote opening a field that was not meant to
        // merges the rows after it into one value, silently (files67 F19: 100 000 lines
        // loaded as 10 010 rows, exit 0). Said before anything commits.
        if let Some((opened, closed)) = (self.stray_quotes.as_ref())
            .and_then(StrayQuotes::longest_quoted)
            .filter(|(opened, closed)| closed - opened > QUOTED_LINES_SAID)
        {
            report::warn(format_args!(
                "{}: a quoted value opened on line {opened} closes only on line {closed}: the \
                 {} line ends between are data of that one value, not rows (a quote at the \
                 start of a field that was not meant to quote merges the rows after it into \
                 it); if so, fix that line and copy again",
                self.name,
                closed - opened
            ));
        }
        // Given --header and empty: not even its header came (many60 F5).
        if self.header && self.last.is_none() && !self.scanner.is_binary() {
            report::warn(format_args!(
                "{} is empty: not even the header line --header says it begins with; no row \
                 copied",
                self.name
            ));
        }
        // A last line whose line end a backslash escapes: its row goes on past it, and nothing
        // ends it — as cut short as one without a line end (input75 F5: committed, exit 0,
        // a line break added to its last value).
        let escaped_last = !self.scanner.is_binary() && self.scanner.ends_escaped();
        if escaped_last && self.pipe {
            return Err(format!(
                "{} ended with a backslash escaping the line end of line {} (text COPY reads it \
                 as data and the row as going on): what wrote it failed half way, most likely, \
                 and that row is cut short (if the data is whole, the backslash belongs to the \
                 value: write it as \\\\, or give it as a file)",
                self.name,
                self.scanner.line_number().saturating_sub(1).max(1)
            )
            .into());
        }
        // A pipe whose writer died mid-row (a cut archive's `gzip -dc`, a killed query) ends
        // so; the server would take the torn row as the last one, and the rows never written
        // would be missing, exit 0 (files50 F3: a --truncate replaced 100 000 rows by 30 719,
        // the last cut). Every writer of COPY data ends its lines: the copy fails.
        if unended && self.pipe {
            return Err(format!(
                "{} ended in the middle of line {} (no line end after it): what wrote it failed \
                 half way, most likely, and that row is cut short (if the data is whole, end its \
                 last line, or give it as a file)",
                self.name,
                self.scanner.line_number()
            )
            .into());
        }
        // A regular file often lacks its last line end, and is whole; but one cut short (a
        // copy or a download stopped half way) ends so too, its last row cut and the rest
        // missing: said, not refused (sweep58 F1: a value cut, exit 0, not a word).
        if unended {
            report::warn(format_args!(
                "{}'s last line (line {}) has no line end: copied as it is; COPY ends every row \
                 it writes with one, and a file cut short ends so, its last row then cut short \
                 and the rows after it missing",
                self.name,
                self.scanner.line_number()
            ));
        }
        // A pipe that gave no byte at all: what a command that failed upstream gives (files63
        // F5: "copied 0 rows", exit 0, not a word; --truncate refuses it). Into stdout or
        // another pipe, whose reader may empty its table first, an empty input — a pipe's, a
        // file's — fails, and the pipe is marked, as an empty input does not replace a file
        // (recheck70 F13, recheck71 F7: `| psql -c 'TRUNCATE t' -c 'COPY t …'` emptied the
        // table, exit 0; recheck72 F3: `>(psql …)`, a FIFO, the same).
        if self.last.is_none() && !self.header && crate::dest::pipe_carries_data() {
            return Err(format!(
                "{} gave no data at all: an empty input is what a command that failed upstream \
                 gives, and a reader of a pipe (stdout too) that empties its table first would \
                 be left empty; nothing is written there but a mark that fails a COPY reading it",
                self.name
            )
            .into());
        }
        if self.pipe && self.last.is_none() && !self.header {
            report::warn(format_args!(
                "{} gave no data at all: no row copied; if a command writes it, check that it \
                 succeeded (one that failed gives an empty input; `set -o pipefail` makes a \
                 shell say so)",
                self.name
            ));
        }
        // Text: a line end escaped by a backslash is data, and the next line the same row
        // (files63 F2: a Windows path ending in \ merged two rows, exit 0).
        if escaped_last {
            report::warn(format_args!(
                "the last line of {} (line {}) ends in a backslash, which escapes its line end, \
                 and no line follows: the servers read that line end as data, the last value of that row \
                 ending in a line break (a path ending in \\ written by another tool ends so; \
                 COPY writes a backslash as \\\\)",
                self.name,
                self.scanner.line_number().saturating_sub(1).max(1)
            ));
        } else if let Some(line) = self.scanner.escaped_line_end() {
            report::warn(format_args!(
                "line {line} of {} ends in a backslash, which escapes its line end: the servers \
                 read that line end as data and line {} as the same row (COPY writes a line \
                 break in data as \\n and a backslash as \\\\; a path ending in \\ written \
                 by another tool merges two rows so)",
                self.name,
                line + 1
            ));
        }
        self.done = true;
        Ok(None)
    }

    /// No chunk yet: a signal, or a source that moved no byte for `--stall-timeout`, ends the
    /// wait.
    fn still_waiting(&mut self) -> Result<(), BoxError> {
        if let Some(signal) = signals::received() {
            return Err(format!("interrupted by {}", signals::name(signal)).into());
        }
        let read = self.read.load(Ordering::Relaxed);
        match self.waiting {
            Some((0, since)) if read == 0 && !self.quiet_wait && since.elapsed() >= SAY_WAIT => {
                // A wait without a word is a hang: said once, and what may end it.
                self.quiet_wait = true;
                let hint = if self.stdin && io::stdin().is_terminal() {
                    " (a terminal: type the data, then Ctrl-D; psql's \\. does not end it \
                     here)"
                } else {
                    ""
                };
                report::warn(format_args!(
                    "waiting for the first bytes of {}{hint}; nothing is sent before they come",
                    self.name
                ));
            }
            Some((before, since)) if before == read => {
                if let Some(limit) = self.stall_timeout.filter(|&l| since.elapsed() >= l) {
                    return Err(format!(
                        "{} stalled for {} s: no byte moved (--stall-timeout)",
                        self.name,
                        limit.as_secs_f64()
                    )
                    .into());
                }
            }
            _ => self.waiting = Some((read, Instant::now())),
        }
        Ok(())
    }

    /// The producer for one attempt at the copy.
    pub(crate) fn producer(&mut self) -> FileProducer<'_> {
        FileProducer { source: self }
    }
}

/// The reading thread: reads chunks of up to [`FILE_CHUNK`] bytes and sends each, waking the
/// copy, until the end, an error, or the copy going away. A read that returns bytes is sent at
/// once: a regular file's reads fill the buffer, a pipe's return what was written so far.
fn read_chunks(
    mut reader: Box<dyn Read + Send>,
    send: mpsc::SyncSender<io::Result<Vec<u8>>>,
    counter: &AtomicU64,
    wakeup: &Wakeup,
) {
    loop {
        let mut buf = vec![0; FILE_CHUNK];
        let read = loop {
            match reader.read(&mut buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // A descriptor left non-blocking by whoever opened it (a CI runner's stdin):
                // nothing to read yet, which a blocking read would wait for.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    thread::sleep(Duration::from_millis(10));
                }
                other => break other,
            }
        };
        let item = match read {
            // The end: dropping the sender tells the copy this was all.
            Ok(0) => return,
            Ok(n) => {
                counter.fetch_add(n as u64, Ordering::Relaxed);
                buf.truncate(n);
                Ok(buf)
            }
            Err(e) => Err(e),
        };
        let failed = item.is_err();
        if send.send(item).is_err() || failed {
            return;
        }
        wakeup.wake();
    }
}

/// A source file read whole as it was when opened: a regular file whose size or modification
/// time changed by its end (truncated, or written to, while the copy read it) fails the read,
/// so nothing of it commits — it loaded the part read before a truncation, its last row torn,
/// and exited 0. (A file that says it is empty when opened, as pseudo-files do, is not checked;
/// FIFOs and other streams have no size.)
struct Unchanging {
    file: File,
    /// The size and modification time when opened, for a regular file that had a size, and
    /// where reading started (stdin may be a file read partly already).
    opened: Option<(u64, Option<std::time::SystemTime>, u64)>,
    read: u64,
}

impl Unchanging {
    fn new(mut file: File) -> Self {
        let start = io::Seek::stream_position(&mut file).unwrap_or(0);
        let opened = file
            .metadata()
            .ok()
            .filter(|m| m.is_file() && m.len() > 0)
            .map(|m| (m.len(), m.modified().ok(), start));
        Self {
            file,
            opened,
            read: 0,
        }
    }

    /// At the end: an error if the file is not what it was when opened.
    fn check_end(&self) -> io::Result<()> {
        let Some((size, modified, start)) = self.opened else {
            return Ok(());
        };
        let now = self.file.metadata()?;
        if start + self.read == size && now.len() == size && now.modified().ok() == modified {
            return Ok(());
        }
        Err(io::Error::other(format!(
            "the file changed while it was read ({size} bytes when opened, {} now, {} read): \
             a copy of a file written to or truncated meanwhile would load part of it; copy a \
             file no one writes",
            now.len(),
            self.read
        )))
    }
}

impl Read for Unchanging {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.check_end()?;
        }
        self.read += n as u64;
        Ok(n)
    }
}

/// Hands a [`FileSource`]'s chunks on, each as one blob: servers get it as one CopyData message
/// (COPY accepts any split of its data), files as it is.
pub(crate) struct FileProducer<'s> {
    source: &'s mut FileSource,
}

impl Producer for FileProducer<'_> {
    fn protocol(&self) -> Protocol {
        Protocol::Chunks
    }

    fn start(&mut self, _source_frames: bool) -> Result<(), BoxError> {
        Ok(())
    }

    /// The rows the servers will load from what was read, once it was all read: the count every
    /// destination's `COPY n` is checked against.
    fn count(&self) -> Option<u64> {
        let source = &*self.source;
        if !source.done {
            return None;
        }
        match source.scanner.binary_end() {
            End::NotBinary if !source.count_rows => None,
            _ => source.scanner.rows(),
        }
    }

    fn next_chunk(&mut self) -> Result<Option<Chunk>, BoxError> {
        let source = &mut *self.source;
        if source.done {
            return Ok(None);
        }
        if let Some(front) = source.front.take() {
            return source.chunk(Ok(front));
        }
        loop {
            match source.chunks.recv_timeout(POLL) {
                Ok(read) => return source.chunk(read),
                Err(RecvTimeoutError::Disconnected) => return source.end(),
                Err(RecvTimeoutError::Timeout) => source.still_waiting()?,
            }
        }
    }

    fn poll_socket(&self) -> Option<PollSocket> {
        Some(PollSocket::new(self.source.wakeups.as_raw_fd()))
    }

    /// Its reads hold nothing: a chunk the thread sends later stays in the channel.
    fn can_abandon_read(&self) -> bool {
        true
    }

    fn try_next_chunk(&mut self, _eager: bool) -> Result<Poll<Option<Chunk>>, BoxError> {
        let source = &mut *self.source;
        if source.done {
            return Ok(Poll::Ready(None));
        }
        source.drain_wakeups()?;
        if let Some(front) = source.front.take() {
            return source.chunk(Ok(front)).map(Poll::Ready);
        }
        match source.chunks.try_recv() {
            Ok(read) => source.chunk(read).map(Poll::Ready),
            Err(TryRecvError::Disconnected) => source.end().map(Poll::Ready),
            Err(TryRecvError::Empty) => {
                source.still_waiting()?;
                Ok(Poll::Pending)
            }
        }
    }
}

/// How the servers will read the data, for the scanner.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Scan {
    mode: Mode,
    /// CSV whose ESCAPE is its QUOTE: its delimiter, for [`StrayQuotes`].
    delimiter: Option<u8>,
    /// The first line is a header.
    header: bool,
    /// The rows the scanner counts are the rows the servers will read (binary data's tuples
    /// always are).
    count_rows: bool,
    /// The data's encoding when the statement names one (`ENCODING 'SJIS'`): the servers read
    /// it in that one, not in the session's.
    encoding: Option<String>,
}

/// How the servers will read the data: `table`'s statements are copyman's own (text, or CSV with
/// the default QUOTE and ESCAPE); a `copy` statement that says nothing of CSV or binary is text,
/// others are scanned as lines.
fn scan(statements: &Statements) -> Scan {
    match statements {
        // The default for a file source is text (plan's `default_format`).
        Statements::Table { format, copy, .. } => {
            let (mode, header) = match format {
                None | Some(Format::Text) => (Mode::Text, copy.header),
                Some(Format::Csv) => (Mode::CSV, copy.header),
                Some(_) => (Mode::Lines, false),
            };
            Scan {
                mode,
                delimiter: (mode == Mode::CSV).then_some(b','),
                header,
                count_rows: true,
                encoding: None,
            }
        }
        Statements::Raw { receive, .. } => {
            // Every --receive reads the data alike (args.rs refuses otherwise): the first says
            // how, as core reads its options, in its ENCODING if it names one (stepping over
            // that encoding's characters whole, as the server does). What cannot be told is
            // scanned for a line that is exactly `\.` and gives no count (the destinations'
            // counts must then agree).
            let first = receive.iter().flatten().next();
            let rep = first.and_then(|sql| statement::representation(sql));
            let header = first.and_then(|sql| statement::has_header(sql));
            let single = |s: &str| <[u8; 1]>::try_from(s.as_bytes()).ok().map(|[b]| b);
            let Some((rep, header)) = rep.zip(header) else {
                return uncounted();
            };
            let delimiter = single(&rep.delimiter);
            let counted = |mode, header| Scan {
                mode,
                delimiter: match mode {
                    Mode::Csv { quote, escape } if quote == escape => delimiter,
                    _ => None,
                },
                header,
                count_rows: true,
                encoding: rep.encoding.clone(),
            };
            match rep.format.as_str() {
                "text" => counted(Mode::Text, header),
                "csv" => match (single(&rep.quote), single(&rep.escape)) {
                    (Some(quote), Some(escape)) => counted(Mode::Csv { quote, escape }, header),
                    _ => uncounted(),
                },
                // Binary data's tuples are counted whatever the mode.
                _ => counted(Mode::Lines, false),
            }
        }
    }
}

/// Data whose reading cannot be told: scanned for a line that is exactly `\.`, not counted.
fn uncounted() -> Scan {
    Scan {
        mode: Mode::Lines,
        delimiter: None,
        header: false,
        count_rows: false,
        encoding: None,
    }
}

/// How the destinations will read the input, as far as its start matters (see
/// [`file_start::Reading`]).
pub(crate) fn reading(t: &Transfer) -> Reading {
    let session = client_encoding(t);
    // A header is split only where the encoding embeds no ASCII byte in its characters.
    let splittable = |encoding: &str| Encoding::from_name(encoding) == Encoding::AsciiSafe;
    match &t.statements {
        Statements::Table {
            format,
            format_given,
            ..
        } => {
            let (declared, layout) = match (format, format_given) {
                (Some(Format::Binary), _) => (Declared::Binary, Layout::Opaque),
                (Some(Format::Csv), true) => (Declared::Csv, Layout::csv()),
                (Some(Format::Text), true) => (Declared::Text, Layout::text()),
                // A `.csv` name is a guess: the file's signature goes first.
                (Some(Format::Csv), false) => (Declared::Detect, Layout::csv()),
                _ => (Declared::Detect, Layout::text()),
            };
            Reading {
                declared,
                layout,
                header: header_asked(t) && splittable(&session),
                utf8: is_utf8(&session),
                encoding: session,
            }
        }
        Statements::Raw { receive, .. } => {
            let first = receive.iter().flatten().next();
            let Some(rep) = first.and_then(|sql| statement::representation(sql)) else {
                return Reading {
                    declared: Declared::Unknown,
                    layout: Layout::Opaque,
                    header: false,
                    utf8: false,
                    encoding: session,
                };
            };
            let byte = |s: &str| <[u8; 1]>::try_from(s.as_bytes()).ok().map(|[b]| b);
            let null = rep.null.clone().into_bytes();
            let (declared, layout) = match rep.format.as_str() {
                "text" => (
                    Declared::Text,
                    byte(&rep.delimiter)
                        .map_or(Layout::Opaque, |delimiter| Layout::Text { delimiter, null }),
                ),
                "csv" => (
                    Declared::Csv,
                    match (byte(&rep.delimiter), byte(&rep.quote), byte(&rep.escape)) {
                        (Some(delimiter), Some(quote), Some(escape)) => Layout::Csv {
                            delimiter,
                            quote,
                            escape,
                            null,
                        },
                        _ => Layout::Opaque,
                    },
                ),
                _ => (Declared::Binary, Layout::Opaque),
            };
            let encoding = rep.encoding.clone().unwrap_or(session);
            Reading {
                declared,
                layout,
                header: header_asked(t) && splittable(&encoding),
                utf8: is_utf8(&encoding),
                encoding,
            }
        }
    }
}

/// Whether the destinations' COPY skips a header line: `--header`, or a `HEADER` in the first
/// `--receive`.
fn header_asked(t: &Transfer) -> bool {
    match &t.statements {
        Statements::Table { copy, .. } => copy.header,
        Statements::Raw { receive, .. } => {
            let first = receive.iter().flatten().next();
            first.and_then(|sql| statement::has_header(sql)) == Some(true)
        }
    }
}

/// Whether an encoding name is PostgreSQL's UTF8 (`UTF8`, `utf-8`, `Unicode`).
fn is_utf8(name: &str) -> bool {
    let clean: String = name
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    matches!(clean.as_str(), "utf8" | "unicode")
}

/// What the input's start says about its format: `Ok(Some(t))`, `t` reading it as binary (a
/// PGCOPY file given without a format); `Ok(None)`, as declared.
///
/// # Errors
/// A usage error (exit 2) when the start contradicts the declared format: a PGCOPY file read as
/// text or CSV, or a file without the signature read as binary.
pub(crate) fn read_as(
    t: &Transfer,
    reading: &Reading,
    start: &Start,
    name: &str,
    empty: bool,
) -> Result<Option<Transfer>, Fatal> {
    let table = matches!(t.statements, Statements::Table { .. });
    match file_start::check_format(reading.declared, start) {
        Ok(Verdict::Binary) => {
            report::log(format_args!(
                "{name} starts with the PGCOPY signature: read as binary COPY data"
            ));
            let mut binary = t.clone();
            if let Statements::Table { format, .. } = &mut binary.statements {
                *format = Some(Format::Binary);
            }
            Ok(Some(binary))
        }
        Ok(_) => Ok(None),
        Err(e) => {
            let advice = match (e, table) {
                (FormatError::BinaryData { .. }, true) => {
                    "leave out --format and --header: copyman reads a PGCOPY file as binary"
                }
                (FormatError::BinaryData { .. }, false) => {
                    "read it with FORMAT binary in --receive"
                }
                (FormatError::NotBinary, true) => "give --format text or --format csv",
                (FormatError::NotBinary, false) => "give --receive the file's FORMAT (text or csv)",
                _ => "",
            };
            // An empty input holds no binary data, nor any other: said as that (its advice
            // was to give the file's FORMAT: files40 F1).
            let message = match (e, empty) {
                (FormatError::NotBinary, true) => format!(
                    "{name} is empty: there is no binary COPY data in it (it starts with the \
                     PGCOPY signature); nothing was sent"
                ),
                _ => format!("{name}: {e}: nothing was sent; {advice}"),
            };
            Err(Fatal {
                exit: Exit::Usage,
                server: None,
                message,
            })
        }
    }
}

/// Reads the start of the input and decides on it before anything is sent, as a run and
/// `--dry-run` both do: its format ([`read_as`]: a PGCOPY file given without a format is
/// planned again, as binary, replacing `plan`), and its header line against the columns
/// ([`check_header`], each server destination's `receive` set from the plan first).
///
/// # Errors
/// As [`FileSource::examine_start`], [`read_as`], planning again, and [`check_header`].
pub(crate) fn check_start(
    t: &Transfer,
    source: &mut FileSource,
    plan: &mut Plan,
    source_conn: Option<&mut copyman_sync::Connection>,
    dests: &mut [Dest<'_>],
) -> anyhow::Result<Start> {
    let reading = reading(t);
    let start = source.examine_start(&reading)?;
    let front = source.front.as_deref().filter(|_| !start.binary);
    if let Some(front) = front
        && file_start::utf8_read_as_single_byte(front, &reading.encoding)
    {
        let (_, from) = file_encoding(t);
        report::warn(format_args!(
            "{} is read as {} ({from}), but its first bytes past ASCII are all UTF-8 \
             characters: read as {}, each becomes two or three characters (é as Ã©); if it is \
             UTF-8, give --encoding UTF8",
            source.name(),
            reading.encoding,
            reading.encoding
        ));
    } else if let Some(front) = front
        && file_start::windows_bytes_in_latin1(front, &reading.encoding)
    {
        report::warn(format_args!(
            "{} is read as LATIN1 and holds bytes 0x80–0x9F, control characters in LATIN1: a file \
             from Windows is WIN1252 (€, “quotes”), which --encoding WIN1252 reads",
            source.name()
        ));
    }
    // A *.tsv file read as text COPY data: a backslash begins an escape there (`C:\new` stored
    // with a newline), which a TSV file another tool wrote holds as it is (files48 F6).
    if let Statements::Table {
        format: None | Some(Format::Text),
        format_given: false,
        ..
    } = &t.statements
        && source.name().to_ascii_lowercase().ends_with(".tsv")
        && front.is_some_and(|front| front.contains(&b'\\'))
    {
        // (Its table as the plan named it: recheck48a F3, `COPY t` of every table.)
        let table = plan
            .table
            .as_ref()
            .map_or("t".to_owned(), ToString::to_string);
        report::warn(format_args!(
            "{} is read as PostgreSQL's text COPY format, in which a backslash begins an escape \
             (\\n, \\t, \\\\, \\N): a TSV file another tool wrote holds its backslashes as they \
             are, stored otherwise here; to read it as it is, copy it with `copyman copy` and \
             this --receive: COPY {table} FROM STDIN (FORMAT csv, DELIMITER E'\\t', QUOTE \
             E'\\x01')",
            source.name()
        ));
    }
    // A *.csv file read as CSV for its name (or for --header alone) whose lines are text COPY
    // data (psql's `\copy t to 't.csv'` without `csv`): its NULLs would load as the string \N,
    // its empty strings as NULL.
    if let Statements::Table {
        format: Some(Format::Csv),
        format_given,
        csv_for_header,
        ..
    } = &t.statements
        && let (Some(front), Some(columns)) = (&source.front, &plan.file_columns)
        // (Of more columns, --header's tab-split header is refused with its own words.)
        && (!format_given || (*csv_for_header && columns.len() == 1))
        && let Some(sign) = file_start::text_sign(front, columns.len())
        && !start.binary
    {
        return Err(Fatal {
            exit: Exit::Usage,
            server: None,
            message: format!(
                "{} is read as CSV for {}, but it holds {sign}, as text COPY data does (whose \
                 NULLs, empty strings and escapes CSV would load as other values), so nothing \
                 was sent; give --format text{} (or --format csv if it is CSV)",
                source.name(),
                match csv_for_header {
                    true => "--header (which reads CSV unless --format says otherwise)",
                    false => "its name",
                },
                match csv_for_header {
                    true => " --header",
                    false => "",
                }
            ),
        }
        .into());
    }
    // CSV read as text (stdin, or a file whose name says nothing, without --format): every
    // line would fail at its first field, 22P02, with no word of CSV (cli43 F6); of one column,
    // it would load, its quotes in the values, a NULL as an empty string, a value of two lines
    // as two rows, exit 0 (types74 F2).
    if let Statements::Table {
        format: None | Some(Format::Text),
        format_given: false,
        ..
    } = &t.statements
        && let (Some(front), Some(columns)) = (&source.front, &plan.file_columns)
        && file_start::csv_sign(front, columns.len())
        && !start.binary
    {
        return Err(Fatal {
            exit: Exit::Usage,
            server: None,
            message: match columns.len() {
                1 => format!(
                    "{} is read as text COPY data, but its lines are CSV (a value quoted as \
                     only CSV quotes one: a \"\" or a comma inside, a line break, or \"\", CSV's \
                     empty string), which text would load with its quotes in the values and \
                     a value of two lines as two rows, so nothing was sent; give --format csv \
                     (or --format text if it is text)",
                    source.name()
                ),
                _ => format!(
                    "{} is read as text COPY data, but its lines are CSV (commas, not tabs, \
                     split each into the table's columns), which text would fail at their \
                     first field; give --format csv (with --header if its first line names \
                     the columns)",
                    source.name()
                ),
            },
        }
        .into());
    }
    // The same lines under --format csv given, where no server parses them (a file from a
    // file): a file is copied as it is, no format converted — the "conversion" wrote the text
    // bytes to a *.csv, counted as CSV's rows (549 of 1000), exit 0 (files40 F8).
    if let Statements::Table {
        format: Some(Format::Csv),
        format_given: true,
        ..
    } = &t.statements
        && t.destinations.iter().all(|d| !d.is_server())
        && let Some(front) = &source.front
        && let columns = (plan.file_columns.as_ref().map(Vec::len))
            .or_else(|| tab_fields_alike(front))
            .unwrap_or(1)
        && let Some(sign) = file_start::text_sign(front, columns)
        && !start.binary
    {
        return Err(Fatal {
            exit: Exit::Usage,
            server: None,
            message: format!(
                "{} holds {sign}: text COPY data, not CSV as --format csv says; a file is copied \
                 to a file as it is, in its own format (copyman converts nothing without a \
                 server): give --format text, or copy it into a table and out again as CSV",
                source.name()
            ),
        }
        .into());
    }
    let empty = source.front.as_deref().is_none_or(<[u8]>::is_empty);
    if let Some(binary) = read_as(t, &reading, &start, source.name(), empty)? {
        *plan = crate::plan::plan(&binary, source_conn, dests)?;
        if plan.format.is_some() {
            plan.format_reason = Some(format!(
                "{} starts with the PGCOPY signature",
                source.name()
            ));
        }
    }
    for (dest, receive) in dests.iter_mut().zip(&plan.receive) {
        dest.receive.clone_from(receive);
    }
    // Before the header's check, which would say a generated column's label names none. `copy`'s
    // from a `--receive` that lists no columns (files50 F4's second command), or every one the
    // table loads.
    let loads = match (&plan.file_columns, &t.statements) {
        (Some(columns), _) => Some((columns.clone(), plan.generated.clone())),
        (None, Statements::Raw { .. }) => receive_generated(dests),
        _ => None,
    };
    if let Some((columns, generated)) = &loads
        && let Some(fields) = start.header.as_ref().or(start.first_line.as_ref())
        && let Some(refused) = generated_fields(source, &reading.layout, columns, generated, fields)
    {
        return Err(refused.into());
    }
    check_header(t, &start, source.name(), plan, dests)?;
    Ok(start)
}

/// A table's generated columns, each with its place among its columns (1-based).
type Generated = Vec<(usize, String)>;

/// The columns a `--receive` loads (the first server destination's) where it lists none, or
/// lists every column of its table COPY loads in the table's order, and its table's generated
/// columns, each with its place among the table's columns (1-based), which COPY leaves out:
/// `None` where it lists others or the table cannot be looked up.
fn receive_generated(dests: &mut [Dest<'_>]) -> Option<(Vec<String>, Generated)> {
    let dest = dests
        .iter_mut()
        .find(|d| d.conn.is_some() && d.receive.is_some())?;
    let sql = dest.receive.clone()?;
    let listed = file_start::copy_columns(&sql)?;
    let (_, relation) = copy_table_relation(dest.conn.as_mut()?, &sql)?;
    let columns: Vec<String> = (relation.columns.iter())
        .filter(|c| !c.generated)
        .map(|c| c.name.as_str().to_owned())
        .collect();
    // (A list of them all, in order, loads what none does.)
    if listed.is_some_and(|listed| listed != columns) {
        return None;
    }
    let generated = (relation.columns.iter().enumerate())
        .filter(|(_, c)| c.generated)
        .map(|(i, c)| (i + 1, c.name.as_str().to_owned()))
        .collect();
    Some((columns, generated))
}

/// Refuses a file whose first line (its header, or its first row: `fields`) holds a field for
/// each of the destination's generated columns ([`Plan::generated`](crate::plan::Plan)) besides
/// the `columns` COPY loads (written where they were plain columns): every row would fail,
/// 22P04 "extra data after last expected column", which says nothing of why (files50 F4;
/// recheck50 F2: CSV, one row and a header too). The fields to keep are said, with `cut`.
fn generated_fields(
    source: &FileSource,
    layout: &Layout,
    columns: &[String],
    generated: &[(usize, String)],
    fields: &[Option<String>],
) -> Option<Fatal> {
    let fields = fields.len();
    if generated.is_empty() || fields != columns.len() + generated.len() {
        return None;
    }
    let name = source.name();
    let keep: Vec<String> = (1..=fields)
        .filter(|i| !generated.iter().any(|(at, _)| at == i))
        .map(|i| i.to_string())
        .collect();
    let names: Vec<&str> = generated.iter().map(|(_, n)| n.as_str()).collect();
    let (is, field) = match names.len() {
        1 => ("is a generated column", "that field"),
        _ => ("are generated columns", "those fields"),
    };
    // Quoted for a shell, the delimiter and the file's name (files67 F10: a `'` delimiter
    // left an unterminated quote, `./my gen.csv` was cut as two files).
    let delimited = |delimiter: u8| {
        format!(
            "cut -d{} -f{}",
            shell_word(&char::from(delimiter).to_string()),
            keep.join(",")
        )
    };
    let cut = match layout {
        Layout::Csv { delimiter, .. } => delimited(*delimiter),
        Layout::Text {
            delimiter: b'\t', ..
        } => format!("cut -f{}", keep.join(",")),
        Layout::Text { delimiter, .. } => delimited(*delimiter),
        _ => format!("keep fields {}", keep.join(",")),
    };
    let way = match source.stdin {
        true => format!("… | {cut} | copyman … --from -"),
        false => format!("{cut} {} | copyman … --from -", shell_word(name)),
    };
    // cut splits at every delimiter, quoted ones too.
    let way = match layout {
        Layout::Csv { .. } => format!("{way}, where no field holds the delimiter; else a CSV tool"),
        _ => way,
    };
    Some(Fatal {
        exit: Exit::Usage,
        server: None,
        message: format!(
            "{name}: its lines have {fields} fields and the COPY loads {} columns ({}): {} {is} \
             on the destination, which COPY never loads (the file was written where {} a plain \
             column), so every row would fail (22P04, extra data after last expected column) \
             and nothing was sent; cut {field} out ({way}), or copy into a table where {} not \
             generated",
            columns.len(),
            columns.join(", "),
            names.join(", "),
            if names.len() == 1 {
                "it was"
            } else {
                "they were"
            },
            if names.len() == 1 {
                "it is"
            } else {
                "they are"
            },
        ),
    })
}

/// How many fields tabs split the complete lines of `front` that hold no quote into, where
/// that is the same for all of them (two at least) and more than one: a table's columns, where
/// no server says them (a file copied to a file).
fn tab_fields_alike(front: &[u8]) -> Option<usize> {
    let complete = &front[..front.iter().rposition(|b| *b == b'\n')?];
    let mut counts = (complete.split(|b| *b == b'\n'))
        .filter(|line| !line.contains(&b'"'))
        .map(|line| line.split(|b| *b == b'\t').count());
    let n = counts.next()?;
    let mut lines = 1;
    for count in counts {
        if count != n {
            return None;
        }
        lines += 1;
    }
    (n > 1 && lines > 1).then_some(n)
}

/// An input refused with the way in ([`compressed`], [`no_copy_data`]): its name (a file's
/// path, or stdin, which a command cannot be given by name), and whether it was to be read as
/// CSV for its name, which stdin has not (followed without `--format csv`, the way loaded a CSV
/// as text: its quotes stored, exit 0).
pub(crate) struct Refused<'a> {
    pub(crate) name: &'a str,
    pub(crate) stdin: bool,
    pub(crate) csv: bool,
}

impl Refused<'_> {
    /// The command line that feeds the input through `file_command` (given its name) or
    /// `stdin_command` into copyman.
    fn way_in(&self, file_command: &str, stdin_command: &str) -> String {
        let format = if self.csv { " --format csv" } else { "" };
        match self.stdin {
            true => format!("… | {stdin_command} | copyman … --from -{format}"),
            false => format!(
                "{file_command} {} | copyman … --from -{format}",
                shell_word(self.name)
            ),
        }
    }
}

/// The refusal of `input` compressed with `compression` ([`Compression::of`] in copyman-core):
/// exit 2, what it is, that nothing was sent, and the command that decompresses it on its way
/// in.
/// A pipe (stdin, a FIFO) that ended inside its header line: what wrote it failed half way,
/// and no row came; refused as a row cut short is.
fn header_cut(name: &str) -> String {
    format!(
        "{name} ended in the middle of its header line (no line end after it): what wrote it \
         failed half way, most likely, and no row came (if that is all the data, end its \
         header line, or give it as a file)"
    )
}

pub(crate) fn compressed(compression: Compression, input: &Refused<'_>) -> Fatal {
    let (tool, name) = (compression.name(), input.name);
    let pipe = input.way_in(compression.decompress(), compression.decompress_stdin());
    // A workbook is a zip archive of XML: its rows come out as CSV from the program it is.
    let workbook = match compression {
        Compression::Zip => "; a spreadsheet (.xlsx, .ods) is one: save it as CSV instead",
        _ => "",
    };
    Fatal {
        exit: Exit::Usage,
        server: None,
        message: format!(
            "{name} is {tool}-compressed data (it starts with {tool}'s signature): COPY would \
             read the compressed bytes as rows, so nothing was sent; decompress it on its way \
             in: {pipe}{workbook}"
        ),
    }
}

/// `word` as a shell reads it back: as it is when it holds nothing a shell would take apart,
/// else in single quotes (a `'` in it as `'\''`).
pub(crate) fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+,:@%=".contains(&b));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// The refusal of source file `path`, which cannot be opened (`e`): exit 2 where it does not
/// exist or may not be read (the command's to mend: a script that retries a failed copy, exit
/// 1, retried a typo), 1 for anything else; a bare word said as psql would take it.
fn unopenable(t: &Transfer, path: &Path, e: &io::Error) -> Fatal {
    let name = path.to_string_lossy();
    // As `--to WORD` says it: psql takes a bare word for a database name.
    let missing = e.kind() == io::ErrorKind::NotFound;
    // psql's `\copy … from stdin` words (files67 F14: the hint was `dbname=stdin`).
    let hint = if missing && ["stdin", "pstdin"].contains(&name.to_ascii_lowercase().as_str()) {
        " (stdin is written - here: --from -)".to_owned()
    } else if missing && crate::conn::names_a_host(&name) {
        format!(" (a server is `host={name}`)")
    } else if missing && !name.contains(['/', '.']) {
        format!(" (a database is `dbname={name}`)")
    } else {
        String::new()
    };
    // A path through a file, a loop of links, a name too long: the command's too (files67
    // F15: exit 1, "the copy failed").
    let exit = match e.kind() {
        io::ErrorKind::NotFound
        | io::ErrorKind::PermissionDenied
        | io::ErrorKind::NotADirectory
        | io::ErrorKind::InvalidFilename => Exit::Usage,
        _ if e.raw_os_error() == Some(libc::ELOOP) => Exit::Usage,
        _ => Exit::CopyFailed,
    };
    let message = format!("cannot open source file {}: {e}{hint}", t.source.display());
    source_fatal(exit, message)
}

/// What ends the run, about the source file: its document names the source, the file (as a
/// server's refusal names it: ops54 F3, recheck56 F4).
fn source_fatal(exit: Exit, message: String) -> Fatal {
    let info = report::ErrorInfo {
        sqlstate: None,
        message: message.clone(),
    };
    Fatal {
        exit,
        server: Some(("source".to_owned(), info)),
        message,
    }
}

/// Refuses, before any server is asked anything, a regular file source that is compressed
/// (its first bytes, [`Compression::of`]); stdin and FIFOs are refused on their first read
/// ([`FileSource::examine_start`]), in the same words; and a directory (its open succeeds, its
/// first read fails: the run failed once connected, the dry run passed). A file that cannot be
/// read is left to the run's open, which says why.
///
/// # Errors
/// [`compressed`], or a directory (exit 2).
pub(crate) fn refuse_compressed(t: &Transfer) -> Result<(), Fatal> {
    let Endpoint::File(path) = &t.source else {
        return Ok(());
    };
    if std::fs::metadata(path).is_ok_and(|m| m.is_dir()) {
        return Err(source_fatal(
            Exit::Usage,
            format!(
                "source file {} is a directory: give a file of COPY data",
                t.source.display()
            ),
        ));
    }
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => {}
        // Missing, or in a directory it may not search: said before connecting, as the run's
        // open would say it once connected.
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied
            ) =>
        {
            return Err(unopenable(t, path, &e));
        }
        _ => return Ok(()),
    }
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            return Err(unopenable(t, path, &e));
        }
        Err(_) => return Ok(()),
    };
    let longest = Compression::LONGEST.max(Foreign::LONGEST);
    let mut start = Vec::with_capacity(longest);
    if file.take(longest as u64).read_to_end(&mut start).is_err() {
        return Ok(());
    }
    // Read as CSV for its name (`x.csv.gz`, a UTF-16 `x.csv`) where no format was given: the
    // way in says so (`Refused::csv`).
    let guessed = matches!(
        t.statements,
        Statements::Table {
            format: None | Some(Format::Csv),
            format_given: false,
            ..
        }
    );
    let csv_named = |name: Option<&std::ffi::OsStr>| {
        guessed
            && name
                .and_then(|n| Path::new(n).extension())
                .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
    };
    let name = t.source.display();
    let input = |csv| Refused {
        name: &name,
        stdin: false,
        csv,
    };
    // Read to the end or to the longest signature: it can tell.
    match (Compression::of(&start, true), Foreign::of(&start)) {
        // `x.csv.gz`, or `x.csv` holding compressed bytes (files63 F13).
        (Some(Some(compression)), _) => Err(compressed(
            compression,
            &input(csv_named(path.file_stem()) || csv_named(path.file_name())),
        )),
        (_, Some(foreign)) => Err(no_copy_data(foreign, &input(csv_named(path.file_name())))),
        _ => Ok(()),
    }
}

/// The refusal of input that is no COPY data ([`Foreign`]), with the way in: UTF-16 or UTF-32
/// text (its NUL bytes failed the copy, 22021, and a header's labels were said to be "beyond
/// ASCII"), converted by `iconv`; pg_dump's output (an archive failed on a NUL byte, a script's
/// SQL was loaded as rows), restored by pg_restore or psql.
pub(crate) fn no_copy_data(foreign: Foreign, input: &Refused<'_>) -> Fatal {
    let name = input.name;
    let message = match foreign {
        Foreign::WideText(encoding) => {
            let convert = format!("iconv -f {encoding} -t UTF-8");
            let pipe = input.way_in(&convert, &convert);
            format!(
                "{name} is {encoding} text (it starts with its byte order mark), which \
                 PostgreSQL reads in no encoding, so nothing was sent; convert it on its way in: \
                 {pipe}"
            )
        }
        Foreign::WideTextUnmarked(encoding) => {
            let convert = format!("iconv -f {encoding} -t UTF-8");
            let pipe = input.way_in(&convert, &convert);
            format!(
                "{name} is {encoding} text without a byte order mark (every other byte is NUL), \
                 which PostgreSQL reads in no encoding, so nothing was sent; convert it on its \
                 way in: {pipe}"
            )
        }
        Foreign::NotText { at, kind } => format!(
            "{name} is not text: it holds a NUL byte (at byte {at}), which PostgreSQL text holds \
             in no encoding, so nothing was sent{}",
            kind.map_or_else(
                || "; is it the file meant (a database, a spreadsheet, an archive)?".to_owned(),
                |kind| format!(": it is {kind}")
            )
        ),
        Foreign::CopyStatement => format!(
            "{name} begins with a `COPY … FROM stdin;` line, the statement of a pg_dump \
             script's section, not COPY data (it would be loaded as a row, or fail as one), so \
             nothing was sent: leave that line out ({}); the column list it names is the \
             --columns to give",
            input.way_in("tail -n +2", "tail -n +2")
        ),
        Foreign::PgDumpArchive => format!(
            "{name} is a pg_dump archive (it starts with PGDMP), not COPY data, so nothing was \
             sent: restore its data with pg_restore (pg_restore --data-only --table TABLE \
             --dbname …), then copy from the database it went into"
        ),
        _ => format!(
            "{name} is a pg_dump script, not COPY data (its SQL would be loaded as rows), so \
             nothing was sent: run it with psql, then copy from the database it went into (a \
             table's rows are its lines between `COPY … FROM stdin;` and the `\\.` after them)"
        ),
    };
    Fatal {
        exit: Exit::Usage,
        server: None,
        message,
    }
}

/// What [`check_start`] found, in the words of `--dry-run`'s plan.
pub(crate) fn describe_start(t: &Transfer, start: &Start, plan: &Plan) -> String {
    let format = if start.binary {
        "starts with the PGCOPY signature: read as binary COPY data".to_owned()
    } else {
        match (plan.format, reading(t).declared) {
            (Some(format), _) => format!("read as {}", format.name()),
            (None, Declared::Unknown) => "read as its --receive says".to_owned(),
            (None, declared) => format!("read as {}", declared.name()),
        }
    };
    let mut said = format;
    if start.bom {
        said.push_str("; its UTF-8 byte order mark is not sent");
    }
    if let Some(fields) = &start.header {
        let names: Vec<&str> = fields
            .iter()
            .map(|f| f.as_deref().unwrap_or("NULL"))
            .collect();
        said.push_str(&format!(
            "; its header ({}) checked against the columns",
            names.join(", ")
        ));
    }
    said
}

/// Refuses a header line whose fields would load into other columns than they name (see
/// [`file_start::check_header`]), before anything is sent: `table` against the plan's columns,
/// `copy` against each server destination's `--receive` (its column list, else its table's
/// columns, asked of that server).
///
/// # Errors
/// A usage error (exit 2) naming the file, the first mismatch and the column list that loads it
/// by its header.
pub(crate) fn check_header(
    t: &Transfer,
    start: &Start,
    name: &str,
    plan: &Plan,
    dests: &mut [Dest<'_>],
) -> Result<(), Fatal> {
    if let Some(fields) = &start.first_line {
        // A header asked for in an encoding that embeds ASCII bytes in its characters (SJIS,
        // BIG5, GBK) is not split from the data: the server skips it (enc45 F1: it was refused
        // as a header given without --header).
        if header_asked(t) {
            return Ok(());
        }
        return check_first_line(t, fields, name, plan, dests);
    }
    let Some(fields) = &start.header else {
        return Ok(());
    };
    // An empty file (or a blank first line) has no header to check or to say: nothing is
    // skipped but a line end (it said "its header (NULL) names no column").
    if let [field] = fields.as_slice()
        && field.as_deref().is_none_or(str::is_empty)
    {
        return Ok(());
    }
    // More fields than the COPY reads: every row would fail (22P04), not load elsewhere.
    let refuse = |mismatch: HeaderMismatch, fix: String| Fatal {
        exit: Exit::Usage,
        server: None,
        message: format!(
            "{name}: {mismatch}: {}, so nothing was sent; {fix}",
            if fields.len() > mismatch.columns.len() {
                "every row would fail (22P04, extra data after last expected column)"
            } else {
                "its values would load into the wrong columns"
            }
        ),
    };
    // Where the COPY's columns are a list the user gave (--columns, a --receive's): a field
    // naming none of them may name a column the list leaves out (recheck42 F5).
    let listed = match &t.statements {
        Statements::Table { copy, .. } => !copy.columns.is_empty(),
        Statements::Raw { .. } => true,
    };
    let add = match &t.statements {
        Statements::Table { .. } if listed => "add it to --columns where the table has it",
        Statements::Table { .. } => "add the column",
        Statements::Raw { .. } => "add it to the --receive's columns where the table has it",
    };
    // More fields than the COPY reads, some naming no column: no column list loads them (COPY
    // cannot skip a field), and every row would fail, not load elsewhere (files42 F1: the
    // advice, --columns, was then refused).
    let extra_fields = |columns: &[String]| -> Option<Fatal> {
        let unnamed: Vec<String> = (fields.iter().enumerate())
            .filter(|(_, f)| !names_one(f, columns))
            .map(|(i, f)| format!("field {} ({})", i + 1, f.as_deref().unwrap_or("")))
            .collect();
        // (A spreadsheet's empty columns past the table's are said below.)
        let empty_past = (fields.iter().skip(columns.len()))
            .all(|f| f.as_deref().is_none_or(|f| f.trim().is_empty()));
        (fields.len() > columns.len() && !unnamed.is_empty() && !empty_past).then(|| Fatal {
            exit: Exit::Usage,
            server: None,
            message: format!(
                "{name}: the header has {} fields and the COPY reads {} columns: {} {} no \
                 column {}, and COPY cannot skip a field, so every row would fail (22P04, extra \
                 data after last expected column); nothing was sent: {add}, load into a table \
                 that has it, or drop the field before loading",
                fields.len(),
                columns.len(),
                unnamed.join(", "),
                if unnamed.len() == 1 { "names" } else { "name" },
                if listed { "it reads" } else { "of the table" },
            ),
        })
    };
    // Labels beyond ASCII in an encoding copyman cannot decode (U+FFFD): which columns they
    // name cannot be told, and loading by position could put every value in another column.
    // Read as UTF8 by default: bytes that are not UTF-8 there are most likely another
    // encoding's, which the server would refuse too (22021) — that is the way out, not a
    // column list (files42 F5 advised --columns, after which the server failed on line 1).
    let default_encoding = t.safety.encoding.is_none()
        && match &t.statements {
            Statements::Table { .. } => true,
            Statements::Raw { receive, .. } => (receive.iter().flatten())
                .all(|sql| statement::representation(sql).is_none_or(|r| r.encoding.is_none())),
        };
    let unreadable = || Fatal {
        exit: Exit::Usage,
        server: None,
        message: if default_encoding {
            format!(
                "{name}: its header ({}) is not UTF-8, the encoding it is read in by default: \
                 give its encoding with --encoding (e.g. --encoding LATIN1)",
                shown(fields)
            )
        } else {
            format!(
                "{name}: its header ({}) has labels beyond ASCII that copyman cannot read in \
                 its encoding, so it cannot tell which columns they name; give the file's \
                 columns in its order (--columns, or a column list in the --receive)",
                shown(fields)
            )
        },
    };
    let undecoded = fields.iter().flatten().any(|f| f.contains('\u{fffd}'));
    if let Statements::Table { copy, .. } = &t.statements {
        let Some(columns) = &plan.file_columns else {
            return Ok(());
        };
        // A header that names no column may be free labels, or a first row of data given
        // `--header` by mistake (skipped, not loaded): said, with what was skipped.
        // (A table without columns has a header of none: nothing to name.)
        if !columns.is_empty() && !fields.iter().any(|f| names_one(f, columns)) {
            if undecoded && copy.columns.is_empty() && fields.len() == columns.len() {
                return Err(unreadable());
            }
            let format = reading(t).declared.name();
            if let Some(refused) = split_otherwise(name, fields, columns, &copy.table, format) {
                return Err(refused);
            }
            report::warn(format_args!(
                "{name}: its header ({}) names no column: it is skipped as a header, not \
                 loaded (if it is data, leave out --header)",
                shown(fields)
            ));
        } else if fields.len() == columns.len() {
            // Some fields name their columns, others none: loaded by position all the same,
            // said (files63 F7: `id,foo,bar` into (id, a, b) without a word).
            let unnamed: Vec<String> = (fields.iter().zip(columns))
                .filter(|(f, _)| !names_one(f, columns))
                .map(|(f, c)| {
                    let label = f.as_deref().unwrap_or_default();
                    format!("{label:?} into {}", file_start::column_name(c))
                })
                .collect();
            if !unnamed.is_empty() {
                report::warn(format_args!(
                    "{name}: {} of its header's fields {} no column of the table: loaded by \
                     position ({})",
                    unnamed.len(),
                    if unnamed.len() == 1 { "names" } else { "name" },
                    unnamed.join(", ")
                ));
            }
        }
        return file_start::check_header(fields, columns).map_err(|mismatch| {
            if mismatch.by_header.is_none()
                && let Some(refused) = extra_fields(columns)
            {
                return refused;
            }
            let fix = match &mismatch.by_header {
                Some(names) => format!("load it by its header with {}", columns_option(names)),
                // A spreadsheet's empty columns past the table's (`a,b,c,,`): its rows have
                // them too, which no --columns can name (it advised --columns, which gave the
                // same refusal).
                None if fields.len() > columns.len()
                    && fields[columns.len()..]
                        .iter()
                        .all(|f| f.as_deref().is_none_or(|f| f.trim().is_empty())) =>
                {
                    format!(
                        "its fields past the {} columns are empty (a spreadsheet's empty \
                         columns), and its rows have them too: save it without them, or, where \
                         no field holds a comma, cut them on its way in (cut -d, -f1-{} {} | \
                         copyman … --from - --format csv --header)",
                        columns.len(),
                        columns.len(),
                        shell_word(name)
                    )
                }
                None => "name the file's columns in its order with --columns".to_owned(),
            };
            refuse(mismatch, fix)
        });
    }
    let servers = dests.iter().filter(|d| d.conn.is_some()).count();
    let mut said_no_column = false;
    for (i, dest) in dests.iter_mut().enumerate() {
        let (Some(sql), Some(conn)) = (dest.receive.clone(), dest.conn.as_mut()) else {
            continue;
        };
        let columns = match file_start::copy_columns(&sql) {
            Some(Some(columns)) => columns,
            Some(None) => match table_columns(conn, &sql) {
                Some(columns) => columns,
                None => continue,
            },
            None => continue,
        };
        if !said_no_column && !columns.is_empty() && !fields.iter().any(|f| names_one(f, &columns))
        {
            let listed = matches!(file_start::copy_columns(&sql), Some(Some(_)));
            if undecoded && !listed && fields.len() == columns.len() {
                return Err(unreadable());
            }
            // Not skipped under HEADER MATCH: the server fails it (files67 F3: said skipped,
            // then failed by the server after connecting everywhere).
            if statement::header_must_match(&sql) {
                return Err(Fatal {
                    exit: Exit::Usage,
                    server: None,
                    message: format!(
                        "{name}: its header ({}) names none of the columns ({}) the --receive \
                         of destination {} loads, which its HEADER MATCH requires (the server \
                         fails it, SQLSTATE 22P04): if its first line is data, leave HEADER out \
                         of the --receive",
                        shown(fields),
                        (columns.iter())
                            .map(|c| file_start::column_name(c))
                            .collect::<Vec<_>>()
                            .join(", "),
                        i + 1
                    ),
                });
            }
            said_no_column = true;
            report::warn(format_args!(
                "{name}: its header ({}) names no column: it is skipped as a header, not loaded \
                 (if it is data, leave HEADER out of the --receive)",
                shown(fields)
            ));
        }
        if let Err(mismatch) = file_start::check_header(fields, &columns) {
            if mismatch.by_header.is_none()
                && let Some(refused) = extra_fields(&columns)
            {
                return Err(refused);
            }
            let which = if servers > 1 {
                format!(" for destination {} ({})", i + 1, dest.endpoint.display())
            } else {
                String::new()
            };
            let fix = match mismatch
                .by_header
                .as_ref()
                .and_then(|names| file_start::with_columns(&sql, names))
            {
                // Quoted for a shell: a quoted column name's double quotes stay in it.
                Some(fixed) => format!(
                    "load it by its header{which} with --receive '{}'",
                    fixed.replace('\'', r"'\''")
                ),
                None => format!("give the file's columns in its order in the --receive{which}"),
            };
            return Err(refuse(mismatch, fix));
        }
    }
    Ok(())
}

/// Whether a header field names one of `columns` (but for ASCII case and blanks).
/// A header of one label that is the columns' names split by another delimiter than the
/// format's (a tab-separated file read as CSV, a spreadsheet's `;`): its rows would not load as
/// fields either. Refused with the way that reads them (it was said to name no column, "if it
/// is data, leave out --header").
fn split_otherwise(
    name: &str,
    fields: &[Option<String>],
    columns: &[String],
    table: &impl std::fmt::Display,
    format: &str,
) -> Option<Fatal> {
    let [Some(label)] = fields else {
        return None;
    };
    let (delimiter, said) = [('\t', "a tab"), (';', "';'"), ('|', "'|'"), (',', "','")]
        .into_iter()
        .find(|(d, _)| {
            let labels: Vec<Option<String>> = label.split(*d).map(|l| Some(l.to_owned())).collect();
            labels.len() > 1 && labels.iter().all(|l| names_one(l, columns))
        })?;
    let way = match delimiter {
        '\t' => "read it as text: --format text --header (tab-separated data is COPY's text \
                  format)"
            .to_owned(),
        ',' => "read it as CSV: --format csv --header".to_owned(),
        // In the format it is read in (a text file's NULLs stay NULL), quoted for a shell.
        d => format!(
            "load it with its delimiter: copyman copy --from {} --to … --receive {}",
            shell_word(name),
            shell_word(&format!(
                "COPY {table} FROM STDIN (FORMAT {format}, HEADER, DELIMITER '{d}')"
            ))
        ),
    };
    Some(Fatal {
        exit: Exit::Usage,
        server: None,
        message: format!(
            "{name}: its header ({label}) is the columns' names split by {said}, which the \
             format read does not split on: its rows would not load as fields either, so \
             nothing was sent; {way}"
        ),
    })
}

fn names_one(field: &Option<String>, columns: &[String]) -> bool {
    let field = field.as_deref().unwrap_or_default();
    // As the header check reads a label (`person.last_name`, `Last Name`), or any column's but
    // for case (two columns alike but for case name none alone).
    file_start::column_named(field, columns).is_some()
        || columns.iter().any(|c| c.eq_ignore_ascii_case(field.trim()))
}

/// `--columns a,b` naming `names` as a shell takes them (quoted where a name is).
fn columns_option(names: &[String]) -> String {
    let list: Vec<String> = names.iter().map(|n| file_start::column_name(n)).collect();
    let list = list.join(",");
    if list.contains(['"', ' ']) {
        format!("--columns '{list}'")
    } else {
        format!("--columns {list}")
    }
}

/// A line's fields as said: `1, Ann`, NULL for the NULL string.
fn shown(fields: &[Option<String>]) -> String {
    let line: Vec<&str> = fields
        .iter()
        .map(|f| f.as_deref().unwrap_or("NULL"))
        .collect();
    line.join(", ")
}

/// Refuses a first line read as a row that names the columns the COPY reads (a header given
/// without `--header`): it was loaded as data, or failed on its first typed column with a
/// message that did not say why. Columns named in the command (`--columns`, a `--receive`'s
/// column list) load it as a row.
///
/// # Errors
/// A usage error (exit 2) naming the file and the line.
fn check_first_line(
    t: &Transfer,
    fields: &[Option<String>],
    name: &str,
    plan: &Plan,
    dests: &mut [Dest<'_>],
) -> Result<(), Fatal> {
    let refuse = |hint: &str| Fatal {
        exit: Exit::Usage,
        server: None,
        message: format!(
            "{name}: its first line ({}) names the columns: a header, which would be loaded as \
             a row, so nothing was sent; {hint}",
            shown(fields)
        ),
    };
    // A *.csv file guessed CSV by its name whose first line is one field with tabs in it, for
    // several columns: text data (a one-column table would load its NULLs as `\N` strings).
    if let Statements::Table {
        format: Some(Format::Csv),
        format_given: false,
        ..
    } = &t.statements
        && let (Some(columns), [Some(only)]) = (&plan.file_columns, fields)
        && columns.len() > 1
        && only.contains('\t')
    {
        return Err(Fatal {
            exit: Exit::Usage,
            server: None,
            message: format!(
                "{name} is read as CSV for its name, but its first line has tabs and no comma: \
                 text COPY data, whose NULLs and escapes CSV would load as other values; give \
                 --format text"
            ),
        });
    }
    match &t.statements {
        Statements::Table { copy, format, .. } => match &plan.file_columns {
            Some(columns)
                if copy.columns.is_empty() && file_start::names_columns(fields, columns) =>
            {
                // A text header is read from PostgreSQL 15; for an older server a text file's
                // line is left out before copyman reads it.
                let text_header = dests.iter().filter_map(|d| d.conn.as_ref()).all(|conn| {
                    conn.session()
                        .server_version_num()
                        .is_some_and(|v| v >= 150_000)
                });
                // Naming some of the columns, or in another order: its rows are read by it.
                let by_header = file_start::check_header(fields, columns)
                    .err()
                    .and_then(|mismatch| mismatch.by_header);
                let columns = by_header
                    .as_deref()
                    .map(|names| format!(" {}", columns_option(names)))
                    .unwrap_or_default();
                let skip = if *format == Some(Format::Csv) {
                    format!("give --header{columns} to skip it")
                } else if text_header {
                    format!("give --header --format text{columns} to skip it")
                } else if name == "stdin" {
                    format!("leave it out (… | tail -n +2 | copyman … --from -{columns})")
                } else {
                    format!(
                        "leave it out (tail -n +2 {} | copyman … --from -{columns})",
                        shell_word(name)
                    )
                };
                Err(refuse(&if by_header.is_some() {
                    format!("{skip}, reading the rows by the columns it names")
                } else {
                    format!("{skip} (or name the columns with --columns to load it as a row)")
                }))
            }
            _ => Ok(()),
        },
        Statements::Raw { .. } => {
            for dest in dests.iter_mut() {
                let (Some(sql), Some(conn)) = (dest.receive.clone(), dest.conn.as_mut()) else {
                    continue;
                };
                // A column list in the statement loads the line as a row, as it says.
                if !matches!(file_start::copy_columns(&sql), Some(None)) {
                    continue;
                }
                if let Some(columns) = table_columns(conn, &sql)
                    && file_start::names_columns(fields, &columns)
                {
                    // Naming some of the columns, or in another order: its rows are read by it.
                    let by_header = file_start::check_header(fields, &columns)
                        .err()
                        .and_then(|mismatch| mismatch.by_header)
                        .and_then(|names| file_start::with_columns(&sql, &names));
                    return Err(refuse(&match by_header {
                        Some(fixed) => format!(
                            "add HEADER to the options of the --receive to skip it, and read \
                             the rows by the columns it names: '{}' with HEADER",
                            fixed.replace('\'', r"'\''")
                        ),
                        None => "add HEADER to the --receive to skip it (or a column list to \
                                 load it as a row)"
                            .to_owned(),
                    }));
                }
            }
            Ok(())
        }
    }
}

/// The columns a `COPY table FROM STDIN` without a column list reads on `conn`'s server: its
/// table's stored columns that are not generated; `None` when they cannot be told (the COPY
/// itself then says what is wrong).
fn table_columns(conn: &mut copyman_sync::Connection, sql: &str) -> Option<Vec<String>> {
    let relation = copy_relation(conn, sql)?;
    Some(
        relation
            .columns
            .iter()
            .map(|c| c.name.as_str().to_owned())
            .collect(),
    )
}

/// The relation a `COPY table …` statement names on `conn`'s server, as its catalog describes
/// it, with the columns the COPY reads or writes, in its order: its column list's, else the
/// table's stored columns that are not generated; `None` when it cannot be told (a query, a
/// table or a column the server does not have: the COPY itself says what is wrong).
pub(crate) fn copy_relation(
    conn: &mut copyman_sync::Connection,
    sql: &str,
) -> Option<crate::sql::Relation> {
    copy_relation_named(conn, sql).map(|(_, relation)| relation)
}

/// [`copy_relation`], with the table's name as its server resolves it (schema-qualified).
pub(crate) fn copy_relation_named(
    conn: &mut copyman_sync::Connection,
    sql: &str,
) -> Option<(crate::sql::TableName, crate::sql::Relation)> {
    copy_relation_generating(conn, sql).map(|(table, relation, ..)| (table, relation))
}

/// Why a `COPY table …` statement's table or a column of its list is not on `conn`'s server
/// (42P01, 3F000, 42703), as its COPY would fail at its start; `None` when they are there, or
/// that cannot be told.
pub(crate) fn copy_relation_missing(
    conn: &mut copyman_sync::Connection,
    sql: &str,
) -> Option<report::ErrorInfo> {
    let name = statement::copy_table(sql)?;
    let found = conn.query(&crate::sql::relation_name_query(name)).ok()?;
    let Some(row) = found.into_iter().next() else {
        // Not there: the server's own words, as its COPY would say them.
        let cast = format!("SELECT {}::pg_catalog.regclass", crate::sql::literal(name));
        let error = crate::run::describe_sync(&conn.query(&cast).err()?);
        return matches!(error.sqlstate.as_deref(), Some("42P01" | "3F000")).then_some(error);
    };
    let mut parts = row.into_iter();
    let (schema, table) = (parts.next()?, parts.next()??);
    let table = crate::sql::TableName::from_parts(schema, table);
    let relation = copyman_job::plan::lookup(conn, &table).ok()??;
    let listed = file_start::copy_columns(sql).flatten()?;
    let missing = (listed.iter()).find(|n| {
        relation
            .column(&crate::sql::Ident::new(n.as_str()))
            .is_none()
    })?;
    Some(report::ErrorInfo {
        sqlstate: Some("42703".to_owned()),
        message: format!(
            "column {} of relation {table} does not exist",
            crate::sql::Ident::new(missing.as_str())
        ),
    })
}

/// The table a `COPY table …` statement names, as `conn`'s server reads the name (`U&"…"`,
/// quotes, case, the search_path), and every column of it.
fn copy_table_relation(
    conn: &mut copyman_sync::Connection,
    sql: &str,
) -> Option<(crate::sql::TableName, crate::sql::Relation)> {
    let query = crate::sql::relation_name_query(statement::copy_table(sql)?);
    let row = conn.query(&query).ok()?.into_iter().next()?;
    let mut parts = row.into_iter();
    let (schema, name) = (parts.next()?, parts.next()??);
    let table = crate::sql::TableName::from_parts(schema, name);
    let relation = copyman_job::plan::lookup(conn, &table).ok()??;
    Some((table, relation))
}

/// [`copy_relation_named`], with the names of the table's generated columns, which its COPY
/// leaves out (where the statement lists none): a name there that the other end writes or reads
/// at another place is a value landing in another column. And those its column list leaves out
/// that a row without them cannot fill (no default, NOT NULL or a domain that refuses NULL):
/// a `COPY … FROM` of it fails every row (23502).
pub(crate) fn copy_relation_generating(
    conn: &mut copyman_sync::Connection,
    sql: &str,
) -> Option<(
    crate::sql::TableName,
    crate::sql::Relation,
    Vec<String>,
    Vec<String>,
)> {
    let (table, mut relation) = copy_table_relation(conn, sql)?;
    let generated = (relation.columns.iter())
        .filter(|c| c.generated)
        .map(|c| c.name.as_str().to_owned())
        .collect();
    let listed = file_start::copy_columns(sql).flatten();
    let unfilled = match &listed {
        Some(names) => (relation.columns.iter())
            .filter(|c| {
                !c.generated && !c.fills_itself && !names.iter().any(|n| n == c.name.as_str())
            })
            .map(|c| c.name.to_string())
            .collect(),
        None => Vec::new(),
    };
    relation.columns = match listed {
        Some(names) => names
            .iter()
            .map(|n| {
                relation
                    .columns
                    .iter()
                    .find(|c| c.name.as_str() == n)
                    .cloned()
            })
            .collect::<Option<_>>()?,
        None => relation
            .columns
            .into_iter()
            .filter(|c| !c.generated)
            .collect(),
    };
    Some((table, relation, generated, unfilled))
}

/// The client encoding the servers will read the data in: `--encoding`, else the destinations'
/// `client_encoding` (they all share it), else UTF8.
fn client_encoding(t: &Transfer) -> String {
    file_encoding(t).0
}

/// The encoding a file or stdin endpoint is read or written in, and where that comes from, as
/// psql's `\copy` takes it: `--encoding`, else the server sessions' `client_encoding`
/// (`PGCLIENTENCODING`, a CONN's), else UTF8 (conn48 F2: one from PGCLIENTENCODING was said
/// "(--encoding)", with "leave out --encoding" as the way).
pub(crate) fn file_encoding(t: &Transfer) -> (String, &'static str) {
    if let Some(encoding) = &t.safety.encoding {
        return (encoding.clone(), "--encoding");
    }
    let session = (t.destinations.iter().chain([&t.source])).find_map(|d| match d {
        Endpoint::Server(spec) => Some(spec.client_encoding()),
        _ => None,
    });
    match session {
        Some(encoding) if encoding != "UTF8" => (
            encoding,
            "the sessions' client_encoding, from PGCLIENTENCODING or a CONN",
        ),
        _ => ("UTF8".to_owned(), "the default"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_compressed_file_is_named_as_a_shell_reads_it() {
        let file = |name| Refused {
            name,
            stdin: false,
            csv: false,
        };
        let stdin = Refused {
            name: "stdin",
            stdin: true,
            csv: false,
        };
        let said = |name| compressed(Compression::Gzip, &file(name)).message;
        assert!(said("/tmp/x.csv.gz").ends_with(": gzip -dc /tmp/x.csv.gz | copyman … --from -"));
        assert!(
            said("/tmp/my x's.gz").ends_with(r"gzip -dc '/tmp/my x'\''s.gz' | copyman … --from -")
        );
        assert!(
            compressed(Compression::Xz, &stdin)
                .message
                .ends_with(": … | xz -dc | copyman … --from -")
        );
        let zip = compressed(Compression::Zip, &file("/tmp/t.xlsx")).message;
        assert!(
            zip.ends_with(
                ": unzip -p /tmp/t.xlsx | copyman … --from -; a spreadsheet (.xlsx, .ods) is \
                 one: save it as CSV instead"
            ),
            "{zip}"
        );
        let zip = compressed(Compression::Zip, &stdin).message;
        assert!(zip.contains(": … | funzip | copyman … --from -;"), "{zip}");
        // Read as CSV for its name, which stdin has not: the way says the format.
        let csv = Refused {
            csv: true,
            ..file("/tmp/x.csv.gz")
        };
        assert!(
            compressed(Compression::Gzip, &csv)
                .message
                .ends_with("gzip -dc /tmp/x.csv.gz | copyman … --from - --format csv")
        );
    }

    #[test]
    fn scan_modes() {
        let raw = |sql: &str| Statements::Raw {
            send: None,
            receive: vec![Some(sql.to_owned()), None],
        };
        let mode = |sql: &str| scan(&raw(sql)).mode;
        let counts = |sql: &str| scan(&raw(sql)).count_rows;
        let header = |sql: &str| scan(&raw(sql)).header;
        assert_eq!(mode("COPY t FROM STDIN"), Mode::Text);
        assert!(counts("COPY t FROM STDIN"));
        assert_eq!(mode("COPY t FROM STDIN (FORMAT text)"), Mode::Text);
        // CSV and its header are read as the server reads them, and counted.
        assert_eq!(mode("copy t from stdin (format csv)"), Mode::CSV);
        assert_eq!(mode("COPY t FROM STDIN WITH CSV HEADER"), Mode::CSV);
        assert!(counts("COPY t FROM STDIN WITH CSV HEADER"));
        assert!(header("COPY t FROM STDIN WITH CSV HEADER"));
        assert_eq!(
            mode(r"COPY t FROM STDIN (FORMAT csv, QUOTE '''', ESCAPE '\')"),
            Mode::Csv {
                quote: b'\'',
                escape: b'\\'
            }
        );
        // Names are names: a table called csv_log or header_log is text, without a header.
        assert_eq!(mode("COPY csv_log FROM STDIN"), Mode::Text);
        assert!(counts("COPY header_log FROM STDIN") && !header("COPY header_log FROM STDIN"));
        assert!(counts("COPY t FROM STDIN (FORMAT text, HEADER)"));
        assert!(header("COPY t FROM STDIN (FORMAT text, HEADER)"));
        // A WHERE drops rows on purpose, as a trigger may: the count is checked all the same
        // (as with a server source), --allow-count-mismatch accepts it.
        assert!(counts("COPY t FROM STDIN WHERE a > 1"));
        // An encoding of its own: scanned in it (its characters stepped over whole), counted.
        let sjis = "COPY t FROM STDIN (ENCODING 'SJIS')";
        assert!(counts(sjis));
        assert_eq!(mode(sjis), Mode::Text);
        assert_eq!(scan(&raw(sjis)).encoding.as_deref(), Some("SJIS"));
        let csv = "COPY t FROM STDIN (FORMAT csv, ENCODING 'UTF8')";
        assert_eq!(mode(csv), Mode::CSV);
        assert!(counts(csv));
    }
}
