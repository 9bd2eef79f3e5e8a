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
//! The same walk counts the rows the servers will load, and the producer gives that count to the
//! manager as its `COPY n`: each destination's count must match it, as a server source's must
//! (`--allow-count-mismatch` to accept otherwise). A `copy` statement whose options can change
//! which lines are rows, or how they are read (CSV, HEADER, ENCODING), gives no count: the destinations' counts
//! must then agree with each other.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use copyman_core::{BoxError, Chunk};
use copyman_sync::{PollSocket, Producer, Protocol};
use copyman_wire::binary::End;
use copyman_wire::eod::{Encoding, EndOfDataScanner, Mode};

use crate::args::{Endpoint, Statements, Transfer};
use crate::report::{Exit, Fatal};
use crate::signals;
use crate::sql::Format;
use copyman_core::statement;

/// Bytes read from a file source per chunk: each becomes one CopyData message for the servers.
pub(crate) const FILE_CHUNK: usize = 256 * 1024;

/// How often a wait for the next chunk looks at signals and the stall timeout.
const POLL: Duration = Duration::from_millis(100);

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
    done: bool,
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
    /// Opens `t`'s source (a file or stdin) and starts reading it.
    ///
    /// # Errors
    /// The file cannot be opened.
    pub(crate) fn open(t: &Transfer) -> Result<Self, Fatal> {
        let (reader, name): (Box<dyn Read + Send>, String) = match &t.source {
            Endpoint::File(path) => (
                Box::new(File::open(path).map_err(|e| Fatal {
                    exit: Exit::CopyFailed,
                    message: format!("cannot open source file {}: {e}", t.source.display()),
                })?),
                t.source.display(),
            ),
            _ => (Box::new(io::stdin()), "stdin".to_owned()),
        };
        let scan = scan(&t.statements);
        let scanner = EndOfDataScanner::new(scan.mode)
            .with_header(scan.header)
            .with_encoding(Encoding::from_name(&client_encoding(t)));
        let cannot_start = |e: io::Error| Fatal {
            exit: Exit::CopyFailed,
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
            count_rows: scan.count_rows,
            stall_timeout: t.safety.stall_timeout,
            waiting: None,
            wakeups,
            wakeup,
            stop,
            done: false,
        })
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
        if let Some(marker) = self.scanner.feed(&buf) {
            return Err(format!(
                "line {} of {} {} `\\.`, the end-of-data marker: the rows after it would be lost",
                marker.line,
                self.name,
                if marker.alone { "is" } else { "ends in" }
            )
            .into());
        }
        Ok(Some(Chunk::lines(vec![Bytes::from(buf)])))
    }

    /// The thread reached the end: the copy's end, unless binary data was cut short.
    fn end(&mut self) -> Result<Option<Chunk>, BoxError> {
        if let End::Truncated { tuples } = self.scanner.binary_end() {
            return Err(format!(
                "{} ends without binary COPY's end marker (after {}): truncated?",
                self.name,
                crate::progress::rows(tuples)
            )
            .into());
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Scan {
    mode: Mode,
    /// The first line is a header.
    header: bool,
    /// The rows the scanner counts are the rows the servers will read (binary data's tuples
    /// always are).
    count_rows: bool,
}

/// How the servers will read the data: `table`'s statements are copyman's own (text, or CSV with
/// the default QUOTE and ESCAPE); a `copy` statement that says nothing of CSV or binary is text,
/// others are scanned as lines.
fn scan(statements: &Statements) -> Scan {
    match statements {
        // The default for a file source is text (plan's `default_format`).
        Statements::Table { format, copy, .. } => match format {
            None | Some(Format::Text) => Scan {
                mode: Mode::Text,
                header: false,
                count_rows: true,
            },
            Some(Format::Csv) => Scan {
                mode: Mode::CSV,
                header: copy.header,
                count_rows: true,
            },
            Some(_) => Scan {
                mode: Mode::Lines,
                header: false,
                count_rows: true,
            },
        },
        Statements::Raw { receive, .. } => {
            // Every --receive reads the data alike (args.rs refuses otherwise): the first says
            // how, as core reads its options. What cannot be told is scanned for a line that is
            // exactly `\.` and gives no count (the destinations' counts must then agree); an
            // ENCODING of its own too (the scanner steps through the session's encoding).
            let first = receive.iter().flatten().next();
            let rep = first.and_then(|sql| statement::representation(sql));
            let header = first.and_then(|sql| statement::has_header(sql));
            let single = |s: &str| <[u8; 1]>::try_from(s.as_bytes()).ok().map(|[b]| b);
            let counted = |mode| Scan {
                mode,
                header: header.unwrap_or(false),
                count_rows: true,
            };
            match (rep, header) {
                (Some(rep), Some(_)) if rep.encoding.is_none() => match rep.format.as_str() {
                    "text" => counted(Mode::Text),
                    "csv" => match (single(&rep.quote), single(&rep.escape)) {
                        (Some(quote), Some(escape)) => counted(Mode::Csv { quote, escape }),
                        _ => uncounted(),
                    },
                    // Binary data's tuples are counted whatever the mode.
                    _ => Scan {
                        mode: Mode::Lines,
                        header: false,
                        count_rows: true,
                    },
                },
                _ => uncounted(),
            }
        }
    }
}

/// Data whose reading cannot be told: scanned for a line that is exactly `\.`, not counted.
fn uncounted() -> Scan {
    Scan {
        mode: Mode::Lines,
        header: false,
        count_rows: false,
    }
}

/// The client encoding the servers will read the data in: `--encoding`, else the destinations'
/// `client_encoding` (they all share it), else UTF8.
fn client_encoding(t: &Transfer) -> String {
    t.safety.encoding.clone().unwrap_or_else(|| {
        t.destinations
            .iter()
            .find_map(|d| match d {
                Endpoint::Server(spec) => Some(spec.client_encoding()),
                _ => None,
            })
            .unwrap_or_else(|| "UTF8".to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
        // An encoding of its own: not scanned in it, not counted.
        assert!(!counts("COPY t FROM STDIN (ENCODING 'SJIS')"));
        assert_eq!(mode("COPY t FROM STDIN (ENCODING 'SJIS')"), Mode::Lines);
    }
}
