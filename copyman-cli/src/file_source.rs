//! Files and stdin as the source of a copy.
//!
//! A thread reads the file in large chunks and hands them over a small bounded channel, so the
//! copy never sits in a blocking `read` it cannot leave: while it waits for the next chunk it
//! notices a signal ([`signals`]) and a source that moved no byte for `--stall-timeout`.
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
//! which lines are rows (CSV, HEADER, WHERE, ENCODING) gives no count: the destinations' counts
//! must then agree with each other.

use std::fs::File;
use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use copyman_core::{BoxError, Chunk};
use copyman_sync::{Producer, Protocol};
use copyman_wire::binary::End;
use copyman_wire::eod::{Encoding, EndOfDataScanner, Mode};

use crate::args::{Endpoint, Statements, Transfer};
use crate::report::{Exit, Fatal};
use crate::signals;
use crate::sql::Format;

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
    done: bool,
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
        let (send, chunks) = mpsc::sync_channel(READ_AHEAD);
        let read = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&read);
        thread::Builder::new()
            .name("copyman-file-source".to_owned())
            .spawn(move || read_chunks(reader, &send, &counter))
            .map_err(|e| Fatal {
                exit: Exit::CopyFailed,
                message: format!("cannot start reading {name}: {e}"),
            })?;
        Ok(Self {
            name,
            chunks,
            read,
            scanner,
            count_rows: scan.count_rows,
            stall_timeout: t.safety.stall_timeout,
            done: false,
        })
    }

    /// The producer for one attempt at the copy.
    pub(crate) fn producer(&mut self) -> FileProducer<'_> {
        FileProducer { source: self }
    }
}

/// The reading thread: fills chunks of [`FILE_CHUNK`] bytes (a shorter last one) and sends them
/// until the end, an error, or the copy going away.
fn read_chunks(
    mut reader: Box<dyn Read + Send>,
    send: &mpsc::SyncSender<io::Result<Vec<u8>>>,
    counter: &AtomicU64,
) {
    loop {
        let mut buf = vec![0; FILE_CHUNK];
        let mut filled = 0;
        let mut end = false;
        while filled < buf.len() {
            match reader.read(&mut buf[filled..]) {
                Ok(0) => {
                    end = true;
                    break;
                }
                Ok(n) => {
                    filled += n;
                    counter.fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = send.send(Err(e));
                    return;
                }
            }
        }
        if filled > 0 {
            buf.truncate(filled);
            if send.send(Ok(buf)).is_err() {
                return;
            }
        }
        if end {
            // Dropping the sender tells the copy this was all.
            return;
        }
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
        let mut last_read = source.read.load(Ordering::Relaxed);
        let mut last_move = Instant::now();
        loop {
            match source.chunks.recv_timeout(POLL) {
                Ok(Ok(buf)) => {
                    if let Some(marker) = source.scanner.feed(&buf) {
                        return Err(format!(
                            "line {} of {} {} `\\.`, the end-of-data marker: the rows after it \
                             would be lost",
                            marker.line,
                            source.name,
                            if marker.alone { "is" } else { "ends in" }
                        )
                        .into());
                    }
                    return Ok(Some(Chunk::lines(vec![Bytes::from(buf)])));
                }
                Ok(Err(e)) => return Err(format!("cannot read {}: {e}", source.name).into()),
                Err(RecvTimeoutError::Disconnected) => {
                    if let End::Truncated { tuples } = source.scanner.binary_end() {
                        return Err(format!(
                            "{} ends without binary COPY's end marker (after {}): truncated?",
                            source.name,
                            crate::progress::rows(tuples)
                        )
                        .into());
                    }
                    source.done = true;
                    return Ok(None);
                }
                Err(RecvTimeoutError::Timeout) => {
                    if let Some(signal) = signals::received() {
                        return Err(format!("interrupted by {}", signals::name(signal)).into());
                    }
                    let read = source.read.load(Ordering::Relaxed);
                    if read != last_read {
                        last_read = read;
                        last_move = Instant::now();
                    } else if let Some(limit) =
                        source.stall_timeout.filter(|&l| last_move.elapsed() >= l)
                    {
                        return Err(format!(
                            "{} stalled for {} s: no byte moved (--stall-timeout)",
                            source.name,
                            limit.as_secs_f64()
                        )
                        .into());
                    }
                }
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
            // COPY knows three formats: a statement that says nothing of CSV or binary is text.
            // A table named `csv_log` errs on the side of the weaker scan, which still finds a
            // line that is exactly `\.`; one named `header_log` gives no count, which the
            // destinations' agreeing counts replace.
            let says = |words: &[&str]| {
                receive.iter().flatten().any(|sql| {
                    let upper = sql.to_ascii_uppercase();
                    words.iter().any(|word| upper.contains(word))
                })
            };
            let plain = !says(&["CSV", "BINARY"]);
            Scan {
                mode: if plain { Mode::Text } else { Mode::Lines },
                header: false,
                count_rows: plain && !says(&["HEADER", "WHERE", "ENCODING"]),
            }
        }
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
        assert_eq!(mode("COPY t FROM STDIN"), Mode::Text);
        assert!(counts("COPY t FROM STDIN"));
        assert_eq!(mode("COPY t FROM STDIN (FORMAT text)"), Mode::Text);
        assert_eq!(mode("copy t from stdin (format csv)"), Mode::Lines);
        assert_eq!(mode("COPY t FROM STDIN WITH CSV HEADER"), Mode::Lines);
        assert!(!counts("COPY t FROM STDIN WITH CSV HEADER"));
        assert_eq!(mode("COPY csv_log FROM STDIN"), Mode::Lines);
        assert!(!counts("COPY t FROM STDIN (FORMAT text, HEADER)"));
        assert!(!counts("COPY t FROM STDIN WHERE a > 1"));
        assert!(!counts("COPY t FROM STDIN (ENCODING 'SJIS')"));
    }
}
