//! One destination through a run: its transaction (server) or temporary file (file, stdout),
//! committed or discarded at the end.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use copyman_core::commit::Action;
use copyman_core::fault::ReceiverId;
use copyman_core::stall::{EndpointId, StallTimer, Stalled};
use copyman_core::{BoxError, EndpointError};
use copyman_sync::{CallReceiver, Connection, Receiver, StatementReceiver};

use crate::args::Endpoint;
use crate::conn;
use crate::file_source::FILE_CHUNK;
use crate::report::{self, ErrorInfo, Exit, Fatal};
use crate::run::describe_sync;
use crate::signals;

/// One destination through the run.
pub(crate) struct Dest<'e> {
    pub(crate) endpoint: &'e Endpoint,
    pub(crate) conn: Option<Connection>,
    pub(crate) sink: Option<FileSink>,
    pub(crate) receive: Option<String>,
    /// `--truncate`: the statement that empties its table first, in its transaction.
    pub(crate) truncate: Option<String>,
    /// A binary copy's check that the columns still have the planned types (after the
    /// truncate, before the COPY).
    pub(crate) guard: Option<String>,
    pub(crate) rows: Option<u64>,
    pub(crate) error: Option<ErrorInfo>,
    /// It failed because the reader of its pipe (stdout, a FIFO) went away.
    pub(crate) broken_pipe: bool,
    /// When its transaction (or file) was committed or discarded.
    pub(crate) ended: Option<Instant>,
    /// Bytes that went out on stdout though the run failed: they cannot be taken back.
    pub(crate) sent_anyway: u64,
    /// How those bytes end for a COPY reading them: in a mark that fails it ([`Cut::mark`]),
    /// or cut short unmarked (its reader never took the mark).
    pub(crate) marked_cut: Option<CutEnd>,
    /// What its report says besides its status (`--allow-count-mismatch`: another count).
    pub(crate) warning: Option<String>,
    /// What its server is (system identifier and database), where it said: the order in which
    /// the destinations' transactions take their locks ([`crate::run`]).
    pub(crate) identity: Option<String>,
}

impl<'e> Dest<'e> {
    pub(crate) fn new(endpoint: &'e Endpoint) -> Self {
        Self {
            endpoint,
            conn: None,
            sink: None,
            receive: None,
            truncate: None,
            guard: None,
            rows: None,
            error: None,
            broken_pipe: false,
            ended: None,
            sent_anyway: 0,
            marked_cut: None,
            warning: None,
            identity: None,
        }
    }

    /// Its transaction: `BEGIN`, and its `--truncate`.
    pub(crate) fn begin(&mut self) -> Result<(), copyman_sync::Error> {
        if let Some(conn) = self.conn.as_mut() {
            conn.execute("BEGIN")?;
            if let Some(sql) = &self.truncate {
                conn.execute(sql)?;
            }
            if let Some(sql) = &self.guard {
                conn.execute(sql)?;
            }
        }
        Ok(())
    }

    /// Marks it failed with `error`, unless it already failed (the first error stands).
    pub(crate) fn fail(&mut self, error: &EndpointError) {
        if self.error.is_none() {
            self.broken_pipe = !self.endpoint.is_server() && report::is_broken_pipe(&**error);
            let mut said = report::describe(&**error);
            let rename = self.sink.as_ref().and_then(|s| s.rename.as_ref());
            said.message.push_str(&no_room_beside(rename, &**error));
            self.error = Some(said);
        }
    }

    /// Marks it failed with the error of its [`Dest::begin`]. A `--truncate` that PostgreSQL
    /// refuses because other tables reference the table (0A000) comes with the server's hint to
    /// use `TRUNCATE … CASCADE`, which would empty those tables too: copyman says what it does
    /// instead.
    pub(crate) fn fail_begun(&mut self, error: &copyman_sync::Error) {
        let mut info = describe_sync(error);
        if self.truncate.is_some() && info.sqlstate.as_deref() == Some("0A000") {
            info.message = format!(
                "{} (copyman never truncates with CASCADE: the tables that reference it would \
                 lose their rows; empty them together yourself, then copy without --truncate)",
                info.message
            );
        }
        self.fail_with(info);
    }

    /// Gives up a `BEGIN`, `TRUNCATE` or type guard that `--stall-timeout` ended (a lock it
    /// waits for, a server that stopped answering), as a job gives up a stalled session: its
    /// statement cancelled and its session closed. Left running, the run's end waited for it
    /// (for ever behind a prepared transaction's lock), and the other destinations' COMMITs
    /// with it. Its transaction ends with its session: nothing of it committed.
    pub(crate) fn give_up_stalled(&mut self, error: &copyman_sync::Error) {
        let stalled =
            matches!(error, copyman_sync::Error::Io(e) if copyman_core::stall::is_timeout(e));
        if !stalled {
            return;
        }
        let Some(conn) = self.conn.take() else {
            return;
        };
        let said = match conn.cancel() {
            Ok(()) => "its statement was cancelled".to_owned(),
            Err(e) => format!(
                "cancelling its statement failed ({}); its session was closed",
                describe_sync(&e)
            ),
        };
        drop(conn);
        if let Some(error) = &mut self.error {
            error.message = format!("{}; {said}", error.message);
        }
    }

    pub(crate) fn fail_with(&mut self, error: ErrorInfo) {
        if self.error.is_none() {
            self.error = Some(error);
        }
    }

    /// Leaves it out of the run (`--keep-going`: refused before anything was sent to it, as
    /// read-only, with other columns, unable to prepare under `--atomic`): failed with `error`,
    /// said, and its session closed, as a destination that could not be reached.
    pub(crate) fn leave_out(&mut self, i: usize, error: ErrorInfo) {
        report::warn(format_args!(
            "destination {} ({}): {}; left out (--keep-going)",
            i + 1,
            self.endpoint.display(),
            error.message
        ));
        self.fail_with(error);
        self.conn = None;
    }

    /// Its receiver for one attempt at the copy.
    pub(crate) fn receiver(&mut self) -> Box<dyn Receiver + '_> {
        match (&mut self.conn, &mut self.sink) {
            (Some(conn), _) => Box::new(StatementReceiver::new(
                conn,
                self.receive.clone().unwrap_or_default(),
            )),
            (None, Some(sink)) => Box::new(CallReceiver::new(move |lines: &[Bytes]| {
                for line in lines {
                    sink.write_all(line)?;
                }
                Ok::<(), BoxError>(())
            })),
            (None, None) => unreachable!("a destination is a server or a file"),
        }
    }

    pub(crate) fn rollback(&mut self) {
        // A connection the server closed, or one whose transaction ended, has nothing to roll
        // back (core says which from its transaction status).
        if let Some(conn) = self.conn.as_mut()
            && conn.is_ready()
            && Action::Rollback.is_due(conn.session().transaction_status())
        {
            let _ = conn.execute("ROLLBACK");
        }
    }

    pub(crate) fn discard(&mut self) {
        self.rollback();
        if let Some(sink) = self.sink.take() {
            (self.sent_anyway, self.marked_cut) = sink.discard();
        }
    }

    /// Whether what it received can still be taken back before its commit: a server's
    /// transaction, a file written beside its name; not stdout or a pipe, which got it already.
    pub(crate) fn can_roll_back(&self) -> bool {
        self.conn.is_some() || self.sink.as_ref().is_some_and(|s| s.rename.is_some())
    }

    /// Writes out what a file destination holds in its buffer, and makes a file written beside
    /// its name durable, before any destination commits: a file that cannot take the data
    /// (`/dev/full`, a full disk, a pipe whose reader left) fails here, as the copy's own writes
    /// do, not after a server destination committed the rows. A failure marks it failed.
    pub(crate) fn seal(&mut self) -> Result<(), ()> {
        let (Some(sink), None) = (self.sink.as_mut(), &self.error) else {
            return Ok(());
        };
        let rename = sink.rename.clone();
        sink.seal().map_err(|e| {
            self.broken_pipe = report::is_broken_pipe(&e);
            let beside = no_room_beside(rename.as_ref(), &e);
            self.fail_with(ErrorInfo {
                sqlstate: None,
                message: format!("cannot write {}: {e}{beside}", self.endpoint.display()),
            });
        })
    }

    pub(crate) fn commit(&mut self) -> Result<(), ErrorInfo> {
        if let Some(conn) = self.conn.as_mut() {
            conn.execute("COMMIT").map_err(|e| describe_sync(&e))?;
        }
        if let Some(sink) = self.sink.take() {
            sink.commit().map_err(|e| ErrorInfo {
                sqlstate: None,
                message: format!("cannot write {}: {e}", self.endpoint.display()),
            })?;
        }
        Ok(())
    }
}

/// Syncs the directory that holds `path` (a rename into it, or a file created there, is
/// durable once it is).
fn sync_directory_of(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

/// What a full disk (ENOSPC, EDQUOT) in `error` means for a file replaced through a temporary
/// copy beside it (`rename`: the temporary file and the file): the new copy needs room beside
/// the old file, which stays until the rename (`df` showed room for the data, and the message
/// named the old file only). Empty for other errors, and for what is written directly.
fn no_room_beside(
    rename: Option<&(PathBuf, PathBuf)>,
    error: &(dyn std::error::Error + 'static),
) -> String {
    let Some((temp, path)) = rename else {
        return String::new();
    };
    let mut next = Some(error);
    let mut full = false;
    while let Some(e) = next {
        full |= (e.downcast_ref::<io::Error>())
            .and_then(io::Error::raw_os_error)
            .is_some_and(|code| code == libc::ENOSPC || code == libc::EDQUOT);
        next = e.source();
    }
    // Only where the old file is a part of the room that ran out: at least as large as what
    // the new copy held when the disk filled (a 12-byte old file beside 900 KiB was advised
    // removed, and `--to - > FILE` filled the disk alike: files40 F6).
    let size = |p: &Path| fs::metadata(p).map(|m| m.len());
    let old_counts = match (size(path), size(temp)) {
        (Ok(old), Ok(new)) => old >= new,
        (Ok(_), Err(_)) => true,
        (Err(_), _) => false,
    };
    match full && old_counts {
        true => format!(
            " (the new copy is written beside the old file, as {}, and replaces it once \
             everything committed: the disk has no room for both; remove the old file first, \
             or write it in place through stdout: --to - > FILE)",
            temp.display()
        ),
        false => String::new(),
    }
}

/// A file destination: a regular file is written to a temporary file beside it and renamed into
/// place on commit, so a failed copy leaves an existing file as it was. Stdout and what is not a
/// regular file (`/dev/null`, a pipe, `/dev/stdout`: see [`FileTarget`]) are written directly. A
/// symbolic link is written through, as `cp` and shells do: the temporary file and the rename are
/// beside the link's target ([`resolve`]), the link stays.
pub(crate) struct FileSink {
    pub(crate) out: BufWriter<Out>,
    /// The temporary file and its final name.
    pub(crate) rename: Option<(PathBuf, PathBuf)>,
    /// How it is named, until its first bytes are written ([`FileSink::write_all`]).
    unwritten: Option<String>,
}

/// Where a file destination's bytes go.
pub(crate) struct Out {
    to: To,
    /// A pipe, a FIFO or a socket (whose reader may stop reading): each write first waits for
    /// room there, looking at signals and at the stall timeout (`Some(limit)`) meanwhile, and
    /// writes no more than fits, so that it never blocks: a reader that reads nothing would
    /// otherwise hold the run, deaf to a signal, for as long as it lives. With whether it is a
    /// pipe or FIFO (else a socket).
    waits: Option<(bool, Option<Duration>)>,
    /// Bytes the descriptor took (`write(2)` said so): what a reader got, whatever failed after.
    taken: u64,
    /// Where in the text, CSV or binary data the bytes taken end, for [`FileSink::discard`]'s
    /// mark of a cut ([`Cut`]); `None`: not followed (a file replaced by its rename).
    cut: Option<Cut>,
    /// What an exit at once marks ([`mark_at_exit`]), kept under its lock by each write.
    marking: Option<Arc<Mutex<Marking>>>,
}

/// COPY data written directly (stdout, a pipe), as an exit at once finds it: the bytes its
/// descriptor took and where they end ([`mark_at_exit`]).
struct Marking {
    /// A duplicate of its descriptor.
    to: File,
    /// What it is called (`stdout`, a path).
    name: String,
    taken: u64,
    cut: Option<Cut>,
    /// Complete, or its end marked: written no more.
    ended: bool,
    /// Its end is to be marked by the failed run's [`FileSink::discard`], which waits for the
    /// reader to make room (without this lock): an exit at once marks it instead, if it can.
    pending: bool,
}

/// Every output an exit at once marks ([`mark_at_exit`]).
static MARKINGS: Mutex<Vec<Arc<Mutex<Marking>>>> = Mutex::new(Vec::new());

/// Marks the end of each output of COPY data written directly that is neither complete nor
/// marked yet, as a failed run's [`FileSink::discard`] does, for an exit at once (a SIGQUIT, a
/// second signal): the reader of a pipe got a clean end of data, and `… | psql -c "COPY …"`
/// committed part of the table, exit 0, while copyman said "nothing committed" (signals67 F1).
/// A write under way is waited for a moment; a reader that takes nothing for a second gets no
/// mark. Returns what each output cut is called, the bytes it took, and how a reader fails on
/// its end where it is marked (CSV cut inside a quoted value, binary inside a field, need none:
/// their readers fail on that).
pub(crate) fn mark_at_exit() -> Vec<(String, u64, Option<CutEnd>)> {
    let all: Vec<Arc<Mutex<Marking>>> = match MARKINGS.try_lock() {
        Ok(all) => all.clone(),
        Err(_) => return Vec::new(),
    };
    let mut marked = Vec::new();
    for one in all {
        let until = Instant::now() + Duration::from_secs(1);
        let mut m = loop {
            match one.try_lock() {
                Ok(m) => break Some(m),
                Err(std::sync::TryLockError::Poisoned(p)) => break Some(p.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) if Instant::now() < until => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(std::sync::TryLockError::WouldBlock) => break None,
            }
        };
        let Some(m) = m.as_deref_mut() else { continue };
        let cut = match (m.ended, m.pending, m.cut) {
            (false, _, Some(cut)) | (true, true, Some(cut)) => cut,
            _ => continue,
        };
        let mark = cut.mark_after(m.taken);
        (m.ended, m.pending) = (true, false);
        // (One that takes nothing more, its reader gone, is read by none.)
        let end = match (mark.is_empty(), write_paced(&mut m.to, &mark)) {
            (true, _) => None,
            (false, Ok(())) => Some(CutEnd::Marked(cut.fails())),
            (false, Err(e)) if e.kind() == io::ErrorKind::WouldBlock => Some(CutEnd::Unmarked),
            (false, Err(_)) => None,
        };
        marked.push((m.name.clone(), m.taken, end));
    }
    marked
}

/// `mutex`'s guard, poisoned or not (a panicking writer leaves what it wrote).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The most a pipe with room takes at once without blocking (`PIPE_BUF`): a mark is written in
/// pieces of it, so that a reader that stops taking it is waited for a while, not for ever.
const PIPE_PIECE: usize = 4096;

/// Writes `bytes` to `file` a [`PIPE_PIECE`] at a time, each once there is room for it within
/// a second: `WouldBlock` where a piece found none (its reader stopped reading), `BrokenPipe`
/// where its reader is gone.
fn write_paced(file: &mut File, bytes: &[u8]) -> io::Result<()> {
    for piece in bytes.chunks(PIPE_PIECE) {
        room_within(file, Duration::from_secs(1))?;
        file.write_all(piece)?;
    }
    Ok(())
}

/// Waits up to `limit` for `file` to take a write: an error of kind `BrokenPipe` where its
/// reader is gone (or it failed), `WouldBlock` where the time ran out.
fn room_within(file: &File, limit: Duration) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let mut poll = libc::pollfd {
        fd: file.as_raw_fd(),
        events: libc::POLLOUT,
        revents: 0,
    };
    let ms = libc::c_int::try_from(limit.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: one `pollfd` on this stack frame, its count 1, for the call only.
    match unsafe { libc::poll(&raw mut poll, 1, ms) } {
        1 if poll.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 => {
            Err(io::ErrorKind::BrokenPipe.into())
        }
        1 if poll.revents & libc::POLLOUT != 0 => Ok(()),
        _ => Err(io::ErrorKind::WouldBlock.into()),
    }
}

/// Where text or CSV COPY data written to a pipe or stdout stands after the bytes its reader
/// took: what a mark that makes any COPY reading it fail must follow ([`Cut::mark`]).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Cut {
    /// Text: how many backslashes end the bytes taken (an odd number escapes what comes next).
    Text { backslashes: usize },
    /// CSV: its QUOTE and ESCAPE bytes, whether the bytes taken end inside a quoted value, and
    /// just after an ESCAPE there.
    Csv {
        quote: u8,
        escape: u8,
        quoted: bool,
        escaped: bool,
    },
    /// Binary: where in its structure the bytes taken end ([`Binary`]).
    Binary(Binary),
    /// Text or CSV, which the run cannot tell (a file or stdin passed through with no
    /// statement): followed as both, text's backslashes and whether a CSV value quoted with `"`
    /// (`double`) or with `'` (`single`, a reader's `QUOTE ''''`) is open, so that its mark
    /// fails either reader (recheck70 F7: CSV marked as text was read as one more row; recheck71
    /// F1: one quoting with `'` read the mark's `"` as data).
    Either {
        backslashes: usize,
        double: bool,
        single: bool,
    },
}

/// Where binary COPY data taken so far ends: in its header, a tuple's field count, a field's
/// length or data, or after its trailer. A reader of binary COPY takes an end of data where a
/// tuple's field count begins (or half way into it) for the data's end, the trailer or not:
/// cut there, `… --format binary | psql -c "COPY … (FORMAT binary)"` committed a part of the
/// table, exit 0 (signals67 F13). Inside a field, its end fails the reader already.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Binary {
    at: BinaryAt,
    /// Bytes of the part being read still to come.
    left: u32,
    /// The count or length being read, its bytes so far (high first).
    word: u32,
    /// Fields of the tuple being read still to come.
    fields: u16,
    /// The last tuple's field count.
    count: Option<u16>,
}

/// The part of binary COPY data being read ([`Binary`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BinaryAt {
    /// The signature and the flags (15 bytes).
    Fixed,
    /// The header extension's length (4 bytes), then the extension.
    ExtensionLength,
    Extension,
    /// A tuple's field count (2 bytes; -1: the trailer).
    Count,
    /// A field's length (4 bytes; -1: NULL), then its data.
    Length,
    Data,
    /// After the trailer.
    Trailer,
}

impl Binary {
    fn new() -> Self {
        Self {
            at: BinaryAt::Fixed,
            left: 15,
            word: 0,
            fields: 0,
            count: None,
        }
    }

    /// Starts reading `at`, `left` bytes of it.
    fn to(&mut self, at: BinaryAt, left: u32) {
        (self.at, self.left, self.word) = (at, left, 0);
    }

    /// The next field of the tuple, or the next tuple's count.
    fn next_field(&mut self) {
        match self.fields {
            0 => self.to(BinaryAt::Count, 2),
            _ => self.to(BinaryAt::Length, 4),
        }
    }

    /// The part read whole: on to the next.
    fn read(&mut self) {
        match self.at {
            BinaryAt::Fixed => self.to(BinaryAt::ExtensionLength, 4),
            BinaryAt::ExtensionLength => match self.word {
                0 => self.to(BinaryAt::Count, 2),
                length => self.to(BinaryAt::Extension, length),
            },
            BinaryAt::Extension => self.to(BinaryAt::Count, 2),
            BinaryAt::Count => match self.word as u16 {
                0xFFFF => self.to(BinaryAt::Trailer, 0),
                count => {
                    (self.count, self.fields) = (Some(count), count);
                    self.next_field();
                }
            },
            BinaryAt::Length => match self.word as i32 {
                length if length > 0 => self.to(BinaryAt::Data, length.unsigned_abs()),
                _ => {
                    self.fields -= 1;
                    self.next_field();
                }
            },
            BinaryAt::Data => {
                self.fields -= 1;
                self.next_field();
            }
            BinaryAt::Trailer => {}
        }
    }

    fn took(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() && self.at != BinaryAt::Trailer {
            match self.at {
                BinaryAt::ExtensionLength | BinaryAt::Count | BinaryAt::Length => {
                    self.word = self.word << 8 | u32::from(bytes[0]);
                    (bytes, self.left) = (&bytes[1..], self.left - 1);
                }
                _ => {
                    let n = bytes.len().min(self.left as usize);
                    (bytes, self.left) = (&bytes[n..], self.left - n as u32);
                }
            }
            if self.left == 0 {
                self.read();
            }
        }
    }

    /// A field count no tuple of the table has (32767, or where one byte of the count went
    /// out already, one the last tuple's is not), where the bytes end where a count begins or
    /// after the trailer; nothing elsewhere (a reader fails on the header or a field cut).
    fn mark(&self) -> Vec<u8> {
        match self.at {
            BinaryAt::Count if self.left == 2 => vec![0x7F, 0xFF],
            BinaryAt::Count => {
                let high = (self.word as u16) << 8;
                let low = match self.count == Some(high | 0xFE) {
                    true => 0xFD,
                    false => 0xFE,
                };
                vec![low as u8]
            }
            BinaryAt::Trailer => vec![0x7F, 0xFF],
            _ => Vec::new(),
        }
    }
}

impl Cut {
    /// How COPY data in the representation `r` is followed: text, CSV with one-byte QUOTE and
    /// ESCAPE, binary.
    pub(crate) fn of(r: &copyman_core::statement::Representation) -> Option<Self> {
        match (r.format.as_str(), r.quote.as_bytes(), r.escape.as_bytes()) {
            ("text", ..) => Some(Self::Text { backslashes: 0 }),
            ("binary", ..) => Some(Self::Binary(Binary::new())),
            ("csv", &[quote], &[escape]) => Some(Self::Csv {
                quote,
                escape,
                quoted: false,
                escaped: false,
            }),
            _ => None,
        }
    }

    /// Data of a format the run does not know: text or CSV ([`Cut::Either`]).
    pub(crate) fn either() -> Self {
        Self::Either {
            backslashes: 0,
            double: false,
            single: false,
        }
    }

    /// Follows the bytes a reader took.
    fn took(&mut self, bytes: &[u8]) {
        let ending = |bytes: &[u8], backslashes: usize| {
            let ending = bytes.iter().rev().take_while(|&&b| b == b'\\').count();
            match ending == bytes.len() {
                true => backslashes + ending,
                false => ending,
            }
        };
        match self {
            Self::Binary(binary) => binary.took(bytes),
            Self::Text { backslashes } => *backslashes = ending(bytes, *backslashes),
            // (A quote that is its own escape: a doubled one inside a value toggles twice.)
            Self::Either {
                backslashes,
                double,
                single,
            } => {
                *backslashes = ending(bytes, *backslashes);
                let odd = |quote: u8| bytes.iter().filter(|&&b| b == quote).count() % 2 == 1;
                *double ^= odd(b'"');
                *single ^= odd(b'\'');
            }
            Self::Csv {
                quote,
                escape,
                quoted,
                escaped,
            } => {
                for &b in bytes {
                    if !*quoted {
                        *quoted = b == *quote;
                    } else if *escaped {
                        *escaped = false;
                    } else if b == *escape && escape != quote {
                        *escaped = true;
                    } else if b == *quote {
                        *quoted = false;
                    }
                }
            }
        }
    }

    /// The words of [`Cut::mark`]'s line, as the run's report quotes them.
    pub(crate) const WORDS: &str = "copyman: the copy failed here: this data is cut short";

    /// The words of the mark of a run that failed before any data ([`mark_unopened_stdout`]).
    pub(crate) const UNSENT: &str = "copyman: the run failed before any data was sent";

    /// What follows [`Cut::mark`] of data of unknown format ([`Cut::mark_after`]), on its line,
    /// so that a CSV reader of any one-byte QUOTE, DELIMITER and ESCAPE fails: every byte but
    /// NUL (psql drops what follows one on its line), LF and CR, each [`Self::RUN`] times in a
    /// row, 0xFF first (no UTF-8, EUC, SJIS, BIG5 or GB18030 text holds it: a reader in those
    /// fails at once). A run of even length leaves a reader's quote as it found it: a QUOTE
    /// run toggles it an even number of times, and an ESCAPE run escapes its own bytes in
    /// pairs, not the next run's first — only the line's byte before the tail may escape the
    /// first run (0xFF: no mark ends with one, so its first run is no ESCAPE run passing an
    /// escape on), whose state then holds to the end. So a reader in a quoted value at its end
    /// fails there ("unterminated CSV quoted field"), and one that is not meets its DELIMITER
    /// run unquoted: more fields than a table may have (1 600). (recheck74 F1: a "whole lines"
    /// reader, `QUOTE E'\x01', DELIMITER E'\x02'`, loaded the mark; `,;|\t` covered four
    /// delimiters.)
    ///
    /// The usual DELIMITERs and QUOTEs come next, so that what a pipe holds (64 KiB: 40 runs)
    /// fails them where a reader not reading yet is given up before the rest.
    fn unreadable() -> Vec<u8> {
        const FIRST: [u8; 11] = [
            0xFF, 0x01, 0x02, b'\t', b',', b';', b'|', b' ', b'"', b'\'', 0x1F,
        ];
        let rest = (1..0xFF).filter(|b| ![b'\n', b'\r'].contains(b) && !FIRST.contains(b));
        FIRST
            .into_iter()
            .chain(rest)
            .flat_map(|b| [b; Self::RUN])
            .collect()
    }

    /// How many times each byte stands in a row in [`Self::unreadable`]: even, and more than a
    /// table's 1 600 columns.
    const RUN: usize = 1602;

    /// The words of the mark of a dry run ([`mark_unopened_stdout`]), which sends no data.
    pub(crate) const DRY_RUN: &str = "copyman: a dry run sends no data";

    /// What to write after the bytes taken so that a COPY reading them fails rather than load
    /// the rows before the cut as if they were all (files65 F21: a failed `copyman … --to - |
    /// copyman … --from -` committed 131 072 rows of 149 999, exit 0): in text a `\.` (an end
    /// marker with more after it: "end-of-copy marker corrupt"), in CSV a quote that no quote
    /// closes ("unterminated CSV quoted field"); nothing inside a quoted CSV value, whose end
    /// of data fails so already. No line end: copyman reading it from a pipe refuses that too.
    pub(crate) fn mark(&self) -> Vec<u8> {
        const WORDS: &[u8] = Cut::WORDS.as_bytes();
        let text = |backslashes: usize| {
            let mut mark = match backslashes % 2 {
                1 => b"\\\\.".to_vec(),
                _ => b"\\.".to_vec(),
            };
            mark.extend_from_slice(WORDS);
            mark
        };
        match *self {
            Self::Text { backslashes } => text(backslashes),
            // Text's, then each quote a CSV reader opens and never closes (none where a value
            // quoted with it is open, whose end fails so already; a reader of one quote takes
            // the other for data, and `\.` too).
            Self::Either {
                backslashes,
                double,
                single,
            } => {
                let mut mark = text(backslashes);
                if !double {
                    mark.push(b'"');
                }
                if !single {
                    mark.push(b'\'');
                }
                mark
            }
            Self::Csv { quoted: true, .. } => Vec::new(),
            Self::Csv { quote, .. } => [&[quote][..], WORDS].concat(),
            Self::Binary(binary) => binary.mark(),
        }
    }

    /// [`Cut::mark`] after `taken` bytes: where nothing went out, on a second line too — a
    /// reader that skips a first line as a header (`COPY … (FORMAT csv, HEADER)`) skipped a
    /// one-line mark, and committed an empty table (recheck68 F10). The first line holds no
    /// quote: a header is read as a CSV line, and a quote there would pair with the second's.
    pub(crate) fn mark_after(&self, taken: u64) -> Vec<u8> {
        let mark = self.mark();
        match (taken, self) {
            // (Text read as CSV too where nothing went out: its reader's format is not known
            // to fail on a text mark.)
            (0, Self::Text { .. }) => Self::either().mark_after(0),
            (0, Self::Either { .. }) => on_two_lines(
                &Self::Text { backslashes: 0 }.mark(),
                [mark, Self::unreadable()].concat(),
            ),
            (0, Self::Csv { quoted: false, .. }) => on_two_lines(Self::WORDS.as_bytes(), mark),
            // Data of unknown format cut where its quotes were followed: a CSV reader whose
            // ESCAPE is not its QUOTE (`ESCAPE '\'`) reads `\"` as data where the count took
            // it for a value closed, and the mark's quote closed its value (recheck72 F2: the
            // row before the cut loaded, the mark in it, exit 0). A byte no UTF-8 text holds
            // fails a UTF-8 reader however it quotes; in a one-byte encoding, a tail no
            // QUOTE, DELIMITER and ESCAPE read (recheck73 F2, recheck74 F1).
            (_, Self::Either { .. }) => [mark, Self::unreadable()].concat(),
            _ => mark,
        }
    }

    /// How a COPY reading data ending in [`Cut::mark`] fails, in words.
    pub(crate) fn fails(&self) -> String {
        match self {
            Self::Binary(_) => "on a tuple of a field count no table has".to_owned(),
            _ => format!("on the line \"{}\"", Self::WORDS),
        }
    }
}

/// A mark on two lines, `first` then `mark` ([`Cut::mark_after`]).
fn on_two_lines(first: &[u8], mark: Vec<u8>) -> Vec<u8> {
    [first, b"\n", &mark[..]].concat()
}

/// Where the bytes are written: the file, or a duplicate of stdout's descriptor — not Rust's
/// `Stdout`, whose line buffer kept a row's tail to write at exit (into a pipe whose reader was
/// not reading, after the run had failed).
struct To(File);

impl Out {
    fn new(to: To, give_up: Option<Duration>) -> Self {
        use std::os::fd::AsRawFd;

        let waits = pipe_kind(to.0.as_raw_fd()).map(|pipe| (pipe, give_up));
        Self {
            to,
            waits,
            taken: 0,
            cut: None,
            marking: None,
        }
    }

    fn fd(&self) -> i32 {
        use std::os::fd::AsRawFd;

        self.to.0.as_raw_fd()
    }
}

/// Stdout as a destination of this run: not one, one ([`stdout_is_a_destination`]), or opened
/// ([`FileSink::open`]).
static STDOUT: AtomicU8 = AtomicU8::new(0);
const STDOUT_GIVEN: u8 = 1;
const STDOUT_OPENED: u8 = 2;

/// The QUOTE of the CSV a `--send` declares for stdout, where not `"` ([`stdout_quotes_with`]).
static STDOUT_QUOTE: AtomicU8 = AtomicU8::new(b'"');

/// The `--send`'s CSV quotes with `quote`: the mark of a run that sends no data opens a value
/// with it, where a reader of that format sees a quote (recheck69 F12: `QUOTE "'"` read the
/// mark's `"` as a character, and loaded it as a row, exit 0).
pub(crate) fn stdout_quotes_with(quote: u8) {
    STDOUT_QUOTE.store(quote, Ordering::SeqCst);
}

/// This run writes COPY data to stdout (`--to -`), or its command line says so (a run refused
/// for its arguments, a dry run: [`stdout_named`]).
pub(crate) fn stdout_is_a_destination() {
    let _ = STDOUT.compare_exchange(0, STDOUT_GIVEN, Ordering::SeqCst, Ordering::SeqCst);
}

/// Whether this run's command line gives stdout as a destination (`--to -`, `--to=-`, a path
/// that names it: `/dev/stdout`, `/dev/fd/1`), read before the arguments are checked: a run
/// refused for them marks it too (recheck68 F2: a typo in an option left the pipe empty, and
/// `| psql -c 'TRUNCATE t' -c 'COPY t FROM STDIN'` emptied the table, exit 0).
/// Only `table` and `copy` write COPY data (recheck68 F15: `recover --to - --json` printed the
/// mark, not its document).
pub(crate) fn stdout_named(args: impl IntoIterator<Item = std::ffi::OsString>) -> bool {
    const STDOUT: [&str; 4] = ["-", "/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"];
    let mut after_to = false;
    let mut copies = false;
    for arg in args {
        if arg == "--" {
            return false;
        }
        if !copies {
            // The subcommand: `table` or `copy`, or a word clap refuses (`tabel`, a table's
            // name with the subcommand left out: recheck69 F4, the pipe was left unmarked).
            match arg.to_str() {
                Some("recover" | "demo" | "help") => return false,
                Some(word) if !word.starts_with('-') => copies = true,
                _ => {}
            }
            continue;
        }
        let given = match arg.to_str() {
            Some(arg) if after_to => Some(arg),
            Some(arg) => arg.strip_prefix("--to="),
            None => None,
        };
        if given.is_some_and(|given| STDOUT.contains(&given)) {
            return true;
        }
        after_to = arg == "--to";
    }
    false
}

/// Whether stdout is (or was named as) a destination of this run: its `--json` document would
/// go where the data goes (recheck68 F3: the refusal of `--json` with `--to -` wrote its
/// document into the pipe, loaded as 19 rows).
pub(crate) fn stdout_carries_data() -> bool {
    STDOUT.load(Ordering::SeqCst) != 0
}

/// A destination written directly is a pipe, a FIFO or a socket (`>(…)`, `/dev/fd/N`, a FIFO's
/// name): a reader takes what it gets as the data ([`pipe_carries_data`]).
static PIPE_OPENED: AtomicBool = AtomicBool::new(false);

/// Whether stdout, or another destination written directly that is a pipe, a FIFO or a
/// socket, carries this run's data to a reader (recheck72 F3: an empty input into `>(psql …)`
/// exited 0 with nothing written, and the reader emptied its table, where into stdout it
/// failed and was marked).
pub(crate) fn pipe_carries_data() -> bool {
    stdout_carries_data() || PIPE_OPENED.load(Ordering::SeqCst)
}

/// Marks stdout, a destination of a run that failed before it was opened, where it is a pipe, a
/// FIFO or a socket: its reader got an empty stream, which a COPY reads as an empty table
/// (recheck67 F16: `| psql -c 'TRUNCATE t' -c 'COPY t FROM STDIN'` emptied the table, exit 0,
/// of a run that could not connect). `"'\.` fails a COPY reading it as text (an end marker with
/// more after it) and as CSV (a quote no quote closes) alike; binary data lacks its signature.
/// A reader that takes nothing for a second gets none.
pub(crate) fn mark_unopened_stdout() {
    mark_stdout_unused(Cut::UNSENT, "before the run failed");
}

/// Marks stdout, given as a destination of a dry run, as [`mark_unopened_stdout`] does: a dry
/// run sends no data, and `--dry-run` added to a pipeline to see its plan first emptied the
/// table its reader loads (recheck68 F4).
pub(crate) fn mark_dry_run_stdout() {
    mark_stdout_unused(Cut::DRY_RUN, "from a dry run");
}

/// Writes a mark of `words` to stdout, given as a destination and never opened, where it is a
/// pipe, a FIFO or a socket; said `when` nothing went out.
fn mark_stdout_unused(words: &str, when: &str) {
    use std::os::fd::{AsFd, AsRawFd};
    if STDOUT.load(Ordering::SeqCst) != STDOUT_GIVEN {
        return;
    }
    let Ok(fd) = io::stdout().as_fd().try_clone_to_owned() else {
        return;
    };
    let mut out = File::from(fd);
    if pipe_kind(out.as_raw_fd()).is_none() {
        return;
    }
    // (`\.` fails a text reader, and a CSV one on the second line's open quote, even where
    // the first is skipped as a header: the `--send`'s quote, or `"` and `'` where none is
    // known — a command line refused before it was read may declare either.)
    let quotes = match STDOUT_QUOTE.load(Ordering::SeqCst) {
        b'"' => b"\"'".to_vec(),
        quote => vec![quote],
    };
    // (And a tail no CSV reader of other one-byte QUOTEs and DELIMITERs reads: recheck74 F1.)
    let mark = on_two_lines(
        format!("\\.{words}").as_bytes(),
        [
            &quotes[..],
            format!("\\.{words}").as_bytes(),
            &Cut::unreadable(),
        ]
        .concat(),
    );
    if write_paced(&mut out, &mark).is_ok() {
        report::warn(format_args!(
            "nothing went out to stdout {when} but a mark that fails a COPY reading it \
             (\"{words}\"), so that an empty stream is not taken for an empty table"
        ));
    }
}

/// How the end of data cut short on stdout or a pipe was left for its reader
/// ([`FileSink::discard`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CutEnd {
    /// Marked: how a COPY reading it fails ([`Cut::fails`]).
    Marked(String),
    /// Its reader never took the mark (it read nothing for the run's `--stall-timeout`, or for
    /// the second an exit at once waits): a COPY reading it may load the rows before the cut
    /// as the whole.
    Unmarked,
}

/// Writes `mark` after the data cut short on `out` (`name`: what it is called), waiting for
/// its reader to make room however long it takes but for the run's `--stall-timeout`: a first
/// signal does not end this wait, as it ends a wait to write data (recheck67 F1: a reader not
/// reading when the run was stopped got no mark, and `| psql -c "COPY …"` committed part of
/// the table with a cut-short last row, exit 0); a second exits at once. Said after a second
/// and every 10 s. The mark is shorter than `PIPE_BUF`: a pipe with a free slot takes it whole.
/// Written under `marking`'s lock, unless an exit at once took it over ([`Marking::pending`]).
/// Whether it was written (`Some(false)`: its reader never made room for it), or `None` where
/// the output takes nothing more (its reader gone, a full device): none reads a part then.
fn take_mark(
    out: &mut Out,
    mark: &[u8],
    name: &str,
    marking: Option<&Mutex<Marking>>,
) -> Option<bool> {
    let give_up = out.waits.and_then(|(_, give_up)| give_up);
    let started = Instant::now();
    let mut say_at = Duration::from_secs(1);
    let mut rest = mark;
    signals::marking_end(Some(name));
    let _said = Unmark;
    while !rest.is_empty() {
        let room = room_within(&out.to.0, Duration::from_millis(100));
        // Its reader gone: none reads a part of it.
        if room
            .as_ref()
            .is_err_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
        {
            return None;
        }
        if room.is_ok() {
            let mut m = marking.map(lock);
            if m.as_ref().is_some_and(|m| !m.pending) {
                return Some(false);
            }
            // (A piece a pipe with room takes whole: a write of all of it would block until
            // its reader took it all, however long, with no word.)
            let written = out.to.0.write(&rest[..rest.len().min(PIPE_PIECE)]);
            if let Some(m) = m.as_deref_mut()
                && matches!(written, Ok(n) if n == rest.len())
            {
                m.pending = false;
            }
            drop(m);
            match written {
                Ok(0) => return None,
                Ok(n) => rest = &rest[n..],
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) => {}
                Err(_) => return None,
            }
            continue;
        }
        let waited = started.elapsed();
        if give_up.is_some_and(|limit| waited >= limit) {
            return Some(false);
        }
        // (After a signal, its reminders say it.)
        if waited >= say_at
            && signals::received().is_none()
            && let Some(words) = signals::marking_end_words()
        {
            say_at += Duration::from_secs(10);
            crate::progress::println(&format!(
                "copyman: waiting {} s for {words} (SIGQUIT, or a signal given twice, exits \
                 without it{})",
                waited.as_secs(),
                match give_up {
                    Some(limit) => format!("; --stall-timeout after {} s", limit.as_secs()),
                    None => String::new(),
                }
            ));
        }
    }
    Some(true)
}

/// Clears [`signals::marking_end`] when dropped.
struct Unmark;

impl Drop for Unmark {
    fn drop(&mut self) {
        signals::marking_end(None);
    }
}

/// What kind of pipe descriptor `fd` is: `Some(true)` a pipe or FIFO, `Some(false)` a socket,
/// `None` anything else (a regular file, a device: written as it comes).
fn pipe_kind(fd: i32) -> Option<bool> {
    // SAFETY: `fstat` writes one `stat` into the zeroed struct it is given, which lives on this
    // stack frame for the call; any descriptor number is a valid argument (EBADF otherwise).
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::fstat(fd, &raw mut stat) } != 0 {
        return None;
    }
    match stat.st_mode & libc::S_IFMT {
        libc::S_IFIFO => Some(true),
        libc::S_IFSOCK => Some(false),
        _ => None,
    }
}

/// How many bytes can surely be written to `fd` without blocking, if it is a `pipe` or FIFO (0
/// if that is not known, or for a socket): its slots (of a page each) less those the bytes its reader has not read may
/// occupy (one more than they fill: the one being read is freed only once read to its end).
fn room(fd: i32, pipe: bool) -> usize {
    const PAGE: usize = libc::PIPE_BUF;
    if !pipe {
        return 0;
    }
    // SAFETY: `F_GETPIPE_SZ` takes no argument beyond the descriptor and returns the pipe's
    // capacity (or -1); no memory is passed.
    let size = unsafe { libc::fcntl(fd, libc::F_GETPIPE_SZ) };
    let mut unread: libc::c_int = 0;
    // SAFETY: `FIONREAD` writes one `int` (the bytes not yet read) to the pointer, which points
    // to `unread` on this stack frame for the call.
    let asked = unsafe { libc::ioctl(fd, libc::FIONREAD, &raw mut unread) };
    let (Ok(size), Ok(unread)) = (usize::try_from(size), usize::try_from(unread)) else {
        return 0;
    };
    if asked != 0 {
        return 0;
    }
    let used = unread.div_ceil(PAGE) + 1;
    (size / PAGE).saturating_sub(used) * PAGE
}

/// Core's stall rule for a wait of this file's (`give_up`: `--stall-timeout`), started now.
fn stall_timer(endpoint: EndpointId, give_up: Option<Duration>) -> Option<StallTimer> {
    give_up.map(|limit| StallTimer::new(endpoint, limit, Instant::now()))
}

/// Whether the wait `timer` bounds moved no byte for its whole limit (core's rule), now.
fn stalled(timer: Option<&StallTimer>) -> Option<Stalled> {
    timer?.handle_timeout(Instant::now()).err()
}

/// Waits until `fd` can take a write: a signal ends the wait (an error saying so), and so does
/// `give_up` passing without room (`TimedOut`: its reader read nothing for that long).
fn wait_for_room(fd: i32, give_up: Option<Duration>) -> io::Result<()> {
    signals::waiting_for_reader(true);
    let waited = wait_for_room_said(fd, give_up);
    signals::waiting_for_reader(false);
    waited
}

/// Writes all of `bytes` to `out` (stdout, stderr), waiting for room where its descriptor was
/// left non-blocking by whoever opened it (a CI runner's pipe) rather than losing them: the
/// wait ends with the reader reading, or a signal, as a blocking write's would.
///
/// # Errors
/// The write's, or a signal's during the wait.
pub(crate) fn write_all_waiting<W: Write + std::os::fd::AsRawFd>(
    out: &mut W,
    mut bytes: &[u8],
) -> io::Result<()> {
    while !bytes.is_empty() {
        match out.write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                wait_for_room(out.as_raw_fd(), None)?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// [`wait_for_room`], while the watch says whose reader is waited for.
fn wait_for_room_said(fd: i32, give_up: Option<Duration>) -> io::Result<()> {
    let timer = stall_timer(EndpointId::Receiver(ReceiverId(0)), give_up);
    loop {
        let mut poll = libc::pollfd {
            fd,
            events: libc::POLLOUT,
            revents: 0,
        };
        // SAFETY: `poll` reads and writes the one `pollfd` it is given (count 1), which lives on
        // this stack frame for the call.
        let ready = unsafe { libc::poll(&raw mut poll, 1, 100) };
        if ready > 0 {
            // Writable, or an error or hang-up that the write itself then reports.
            return Ok(());
        }
        if ready < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        if let Some(signal) = signals::received() {
            // Not `ErrorKind::Interrupted`: `write_all` retries that.
            return Err(io::Error::other(format!(
                "interrupted by {} while waiting for its reader to read (the pipe was full)",
                signals::name(signal)
            )));
        }
        if let Some(stalled) = stalled(timer.as_ref()) {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "its reader read nothing for {} s (--stall-timeout)",
                    stalled.timeout.as_secs_f64()
                ),
            ));
        }
    }
}

impl Write for Out {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let buf = match self.waits {
            Some((pipe, give_up)) if !buf.is_empty() => {
                let fd = self.fd();
                let mut fits = room(fd, pipe);
                if fits == 0 {
                    // `poll` says writable once a slot is free (for a socket: room for a
                    // `PIPE_BUF` write): that much goes without blocking.
                    wait_for_room(fd, give_up)?;
                    fits = room(fd, pipe).max(libc::PIPE_BUF);
                }
                &buf[..buf.len().min(fits)]
            }
            _ => buf,
        };
        loop {
            // Written and followed under its lock: an exit at once marks what was taken.
            let marking = self.marking.as_ref().map(|m| lock(m));
            if marking.as_ref().is_some_and(|m| m.ended) {
                return Err(io::Error::other("its end is marked: the run exits"));
            }
            let written = self.to.0.write(buf);
            match written {
                // A descriptor left non-blocking by whoever opened it (a CI runner's pipe): the
                // write waits for room as a blocking one would.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    drop(marking);
                    let give_up = self.waits.and_then(|(_, give_up)| give_up);
                    wait_for_room(self.fd(), give_up)?;
                }
                other => {
                    if let Ok(n) = &other {
                        self.taken += *n as u64;
                        if let Some(cut) = &mut self.cut {
                            cut.took(&buf[..*n]);
                        }
                        if let Some(mut m) = marking {
                            (m.taken, m.cut) = (self.taken, self.cut);
                        }
                    }
                    return other;
                }
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.to.0.flush()
    }
}

impl FileSink {
    /// Opens the destination: stdout, a file written directly (a FIFO's reader waited for,
    /// said unless `quiet`, up to `give_up`), or a temporary file beside the file it is to
    /// replace.
    pub(crate) fn open(
        endpoint: &Endpoint,
        quiet: bool,
        give_up: Option<Duration>,
    ) -> io::Result<Self> {
        let (out, rename) = match endpoint {
            Endpoint::File(path) => match target(path)? {
                FileTarget::Direct => {
                    let file = open_direct(path, quiet, give_up)?;
                    if file.metadata().is_ok_and(|meta| {
                        use std::os::unix::fs::FileTypeExt;
                        meta.file_type().is_fifo() || meta.file_type().is_socket()
                    }) {
                        PIPE_OPENED.store(true, Ordering::SeqCst);
                    }
                    (To(file), None)
                }
                FileTarget::Replace { path, existing } => {
                    say_leftovers(&path);
                    let (temp, file) = create_temp(&path, existing.is_some())?;
                    signals::register_temp(&temp);
                    if let Some(old) = &existing
                        && let Err(e) = take_owner_and_mode(&file, old)
                    {
                        drop(file);
                        let _ = fs::remove_file(&temp);
                        signals::unregister_temp(&temp);
                        return Err(e);
                    }
                    // Its ACL and other extended attributes too, as writing it in place keeps
                    // them: a reader its ACL let in lost the file (files40 F7).
                    if existing.is_some() {
                        for (name, e) in keep_xattrs(&file, &path) {
                            report::warn(format_args!(
                                "--to {}: its extended attribute {name}{} could not be kept on \
                                 the new copy ({e})",
                                conn::redact(&path.to_string_lossy()),
                                if name.starts_with("system.posix_acl") {
                                    " (its ACL: who else may read or write it)"
                                } else {
                                    ""
                                }
                            ));
                        }
                    }
                    (To(file), Some((temp, path)))
                }
            },
            _ => {
                use std::os::fd::AsFd;
                STDOUT.store(STDOUT_OPENED, Ordering::SeqCst);
                (
                    To(File::from(io::stdout().as_fd().try_clone_to_owned()?)),
                    None,
                )
            }
        };
        Ok(Self {
            out: BufWriter::with_capacity(FILE_CHUNK, Out::new(out, give_up)),
            rename,
            unwritten: Some(endpoint.display()),
        })
    }

    /// Writes `data`. Text or CSV data that begins with U+FEFF (its first value's first
    /// character) is said: a reader takes those bytes for a UTF-8 byte order mark and drops
    /// them, copyman reading the file too (types69 F7: a round trip lost it, exit 0).
    pub(crate) fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        if !data.is_empty()
            && let Some(name) = self.unwritten.take()
            && data.starts_with(&copyman_core::file_start::UTF8_BOM)
        {
            report::warn(format_args!(
                "--to {name}: the data begins with the character U+FEFF (its first value's \
                 first), whose bytes a reader of the file takes for a UTF-8 byte order mark \
                 and drops, copyman too: that character would be lost there"
            ));
        }
        self.out.write_all(data)
    }

    /// The file it replaces and that file's size, where it replaces one that holds something,
    /// and nothing was written to take its place — or, where the input held no rows (`no_rows`),
    /// less than it holds: a CSV header alone (recheck67 F18: a producer that failed after its
    /// header replaced a 100 001-line file with that line, exit 0).
    pub(crate) fn empties(&self, no_rows: bool) -> Option<(&Path, u64)> {
        let (_, path) = self.rename.as_ref()?;
        let written = self.out.get_ref().taken + self.out.buffer().len() as u64;
        let size = fs::metadata(path).ok()?.len();
        (size > written && (written == 0 || no_rows)).then_some((path.as_path(), size))
    }

    /// Written directly (stdout, a pipe), data of this representation ([`Cut::of`]) is marked
    /// where a failed run cut it ([`FileSink::discard`]).
    /// `name`: what the run's words call it (`stdout`, a path).
    pub(crate) fn mark_cuts(&mut self, cut: Option<Cut>, name: &str) {
        if self.rename.is_some() {
            return;
        }
        let out = self.out.get_mut();
        out.cut = cut;
        if let (Some(_), Ok(to)) = (cut, out.to.0.try_clone()) {
            let marking = Arc::new(Mutex::new(Marking {
                to,
                name: name.to_owned(),
                taken: 0,
                cut,
                ended: false,
                pending: false,
            }));
            lock(&MARKINGS).push(Arc::clone(&marking));
            out.marking = Some(marking);
        }
    }

    /// Writes out its buffer, and makes a temporary file durable ([`Dest::seal`]).
    fn seal(&mut self) -> io::Result<()> {
        self.out.flush()?;
        match &self.rename {
            Some(_) => self.out.get_ref().to.0.sync_all(),
            None => Ok(()),
        }
    }

    /// Flushes (what came after [`FileSink::seal`]: nothing), and renames the temporary file
    /// into place.
    ///
    /// # Errors
    /// What failed, in words. A temporary file that could not be written to its end is removed;
    /// one that holds the complete copy but could not be renamed is kept and named (the copy may
    /// have committed elsewhere: it is the only complete copy of what they got).
    pub(crate) fn commit(mut self) -> Result<(), String> {
        let written = self.seal();
        // Complete: an exit at once marks it no more.
        if let Some(m) = self.out.get_mut().marking.take() {
            lock(&m).ended = true;
        }
        let Some((temp, path)) = self.rename.take() else {
            return written.map_err(|e| e.to_string());
        };
        if let Err(e) = written {
            let _ = fs::remove_file(&temp);
            signals::unregister_temp(&temp);
            return Err(e.to_string());
        }
        let renamed = fs::rename(&temp, &path);
        // Renamed, or kept on purpose: either way no signal may remove it now.
        signals::unregister_temp(&temp);
        renamed.map_err(|e| {
            // Kept only where it still is (recheck46 F6: said kept, removed meanwhile).
            let kept = temp.exists();
            let temp = conn::redact(&temp.to_string_lossy());
            match kept {
                true => format!(
                    "cannot rename {temp} onto it: {e}; the complete copy is kept in {temp}: \
                     move it into place, or remove it"
                ),
                false => format!(
                    "cannot rename {temp} onto it: {e}; that file is gone (removed by another \
                     program): the copy is not written there"
                ),
            }
        })?;
        // The rename is the directory's change: made durable before the run ends, as
        // PostgreSQL's durable_rename does (an OS crash could bring the old file back beside
        // servers that committed the new rows, after a run that exited 0).
        sync_directory_of(&path).map_err(|e| {
            format!(
                "it was renamed into place, but its directory could not be made durable ({e}): \
                 an OS crash may bring the old file back"
            )
        })
    }

    /// Removes the temporary file; returns the bytes that went out anyway where there is none
    /// (stdout, a pipe: what its descriptor took is out already — part of a large row too;
    /// what is buffered is dropped), and how a reader fails on their end where it is marked cut
    /// ([`Cut::mark`], [`Cut::fails`]).
    pub(crate) fn discard(mut self) -> (u64, Option<CutEnd>) {
        // What is still buffered never goes out: the copy failed, and a reader that is not
        // reading would hold the failed run while it waited for room (dropping a `BufWriter`
        // writes its buffer; taking it apart does not).
        let (mut out, _) = self.out.into_parts();
        if let Some((temp, _)) = self.rename.take() {
            let _ = fs::remove_file(&temp);
            signals::unregister_temp(&temp);
            return (0, None);
        }
        let taken = out.taken;
        // Marked here, not again at an exit at once (nor here if that marked it already).
        let marking = out.marking.take();
        let mut name = "-".to_owned();
        if let Some(m) = &marking {
            let mut m = lock(m);
            if m.ended {
                return (
                    taken,
                    (m.cut.as_ref()).map(|cut| CutEnd::Marked(cut.fails())),
                );
            }
            (m.ended, m.pending) = (true, true);
            name.clone_from(&m.name);
        }
        // The mark, whatever went out — nothing, too: an empty stream read downstream is an
        // empty table, committed (files67 F16: `COPY 0`, exit 0, of a run that failed).
        let cut = out.cut.take();
        let mark = (cut.as_ref())
            .map(|cut| cut.mark_after(taken))
            .filter(|mark| !mark.is_empty());
        let marked = mark.and_then(|mark| take_mark(&mut out, &mark, &name, marking.as_deref()));
        let end = match (marked, &cut) {
            (Some(true), Some(cut)) => Some(CutEnd::Marked(cut.fails())),
            (Some(false), _) => Some(CutEnd::Unmarked),
            _ => None,
        };
        (taken, end)
    }
}

/// How a file destination is written.
#[derive(Debug)]
pub(crate) enum FileTarget {
    /// Not a regular file — a pipe, a device, a directory (refused when opened), or a name of an
    /// open file (`/dev/stdout`, `/dev/fd/N`, `/proc/self/fd/N`: a link of `/proc`, whatever it
    /// leads to): opened and written directly, as `-` is. What was written cannot be taken back.
    Direct,
    /// A regular file, or none yet: written beside `path` (the end of the destination's links)
    /// and renamed onto it. `existing`: the file there now.
    Replace {
        path: PathBuf,
        existing: Option<fs::Metadata>,
    },
}

/// How writing to `path` is done (see [`FileTarget`]).
///
/// # Errors
/// Its links cannot be followed ([`resolve`]), or what it names cannot be looked at (a directory
/// on the way that is not one, or that we may not search).
pub(crate) fn target(path: &Path) -> io::Result<FileTarget> {
    let (resolved, open_file) = follow(path)?;
    if open_file {
        return Ok(FileTarget::Direct);
    }
    match fs::metadata(&resolved) {
        Ok(meta) if !meta.is_file() => Ok(FileTarget::Direct),
        Ok(meta) => Ok(FileTarget::Replace {
            path: resolved,
            existing: Some(meta),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(FileTarget::Replace {
            path: resolved,
            existing: None,
        }),
        Err(e) => Err(e),
    }
}

/// Opens a destination that is written directly ([`FileTarget::Direct`]). A name of one of our
/// own descriptors (`/dev/stdout`, `/dev/fd/N`, `/proc/self/fd/N`) is that descriptor, duplicated:
/// written as `-` writes fd 1, at its offset and with its flags (opening the name would open the
/// file again, at its start: `copyman … --to /dev/stdout > log` would overwrite what the shell
/// writes to `log` after it). A FIFO is opened as [`open_fifo`] says. Anything else is opened to
/// be appended to, never truncated (a pipe or a device has no end to append at: the same as
/// writing).
fn open_direct(path: &Path, quiet: bool, give_up: Option<Duration>) -> io::Result<File> {
    use std::os::fd::{FromRawFd, OwnedFd};

    if let Some(fd) = own_descriptor(path) {
        // SAFETY: `F_DUPFD_CLOEXEC` takes an integer and makes a new descriptor (the lowest free
        // one from 3) on what `fd` is open on, or fails with EBADF; no memory is passed.
        let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
        if dup < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `dup` is open (fcntl just made it) and nothing else owns it: the `File` closes
        // it, once.
        return Ok(File::from(unsafe { OwnedFd::from_raw_fd(dup) }));
    }
    if is_fifo(path) {
        return open_fifo(path, FifoEnd::Write, quiet, give_up);
    }
    OpenOptions::new().append(true).open(path)
}

/// Whether the destination file `path` is a terminal: one of our own descriptors that is one
/// (`/dev/stdout`, `/dev/fd/2`: written as `-` writes fd 1) or a character device that is one
/// (`/dev/tty`, `/dev/pts/N`). Only a destination written directly is looked at (a FIFO never
/// is one, and is not opened here).
pub(crate) fn is_terminal(path: &Path) -> bool {
    use std::io::IsTerminal;
    use std::os::unix::fs::FileTypeExt;

    let direct = matches!(target(path), Ok(FileTarget::Direct));
    let device = own_descriptor(path).is_some()
        || fs::metadata(path).is_ok_and(|m| m.file_type().is_char_device());
    direct && device && open_direct(path, true, None).is_ok_and(|f| f.is_terminal())
}

/// How often the wait for a FIFO's other end looks whether a signal came.
const FIFO_SIGNAL_CHECK: Duration = Duration::from_millis(100);

/// How long the open of a FIFO waits for its other end before it says so: one that comes at
/// once (a reader already there, a writer started with copyman) is not worth a word.
const FIFO_SAY_AFTER: Duration = Duration::from_secs(1);

/// Which end of a FIFO copyman opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FifoEnd {
    /// Its writing end, for a destination: the open waits for a reader.
    Write,
    /// Its reading end, for a source: the open waits for a writer.
    Read,
}

impl FifoEnd {
    /// Who the open waits for.
    fn other(self) -> &'static str {
        match self {
            Self::Write => "reader",
            Self::Read => "writer",
        }
    }
}

/// Whether `path` is a FIFO (following links).
pub(crate) fn is_fifo(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|meta| std::os::unix::fs::FileTypeExt::is_fifo(&meta.file_type()))
}

/// Opens the FIFO `path` at `end`, for a destination or a source alike. Opening a FIFO blocks
/// until its other end is opened too, so it is opened (blocking, as a shell redirection would)
/// on a thread of its own, and waited for here: when the other end has not come after
/// [`FIFO_SAY_AFTER`], "waiting for a reader of FIFO PATH" (a writer, for a source) is said on
/// stderr once (unless `quiet`); a signal during the wait ends it (an `Interrupted` error: the
/// run then stops, nothing committed), which a blocked `open` in this thread would not (the
/// signal handler restarts it); so does `give_up` (`--stall-timeout`) passing with no other end
/// (a `TimedOut` error): a FIFO no one opens moves no byte.
pub(crate) fn open_fifo(
    path: &Path,
    end: FifoEnd,
    quiet: bool,
    give_up: Option<Duration>,
) -> io::Result<File> {
    use std::sync::mpsc::{self, RecvTimeoutError};

    let interrupted = |signal: i32| {
        io::Error::new(
            io::ErrorKind::Interrupted,
            format!(
                "interrupted by {} while waiting for a {} of the FIFO",
                signals::name(signal),
                end.other()
            ),
        )
    };
    if let Some(signal) = signals::received() {
        return Err(interrupted(signal));
    }
    let (opened, wait) = mpsc::channel();
    let fifo = path.to_owned();
    std::thread::Builder::new()
        .name("copyman-fifo".to_owned())
        .spawn(move || {
            // The run may have stopped waiting (a signal): then no one receives this, and the
            // file, opened late, is closed here (its other end reads or writes an end of file).
            let _ = opened.send(match end {
                FifoEnd::Write => OpenOptions::new().append(true).open(&fifo),
                FifoEnd::Read => File::open(&fifo),
            });
        })?;
    let since = Instant::now();
    let endpoint = match end {
        FifoEnd::Write => EndpointId::Receiver(ReceiverId(0)),
        FifoEnd::Read => EndpointId::Producer,
    };
    let timer = stall_timer(endpoint, give_up);
    let mut said = quiet;
    // What it waits for: said here after a while, and by the watch (not the servers' wait
    // that it holds up) until it ends.
    let what = format!(
        "waiting for a {} of FIFO {}",
        end.other(),
        conn::redact(&path.to_string_lossy())
    );
    struct Said;
    impl Drop for Said {
        fn drop(&mut self) {
            signals::waiting_for_fifo(None);
        }
    }
    signals::waiting_for_fifo(Some(what.clone()));
    let _said = Said;
    loop {
        match wait.recv_timeout(FIFO_SIGNAL_CHECK) {
            Ok(file) => return file,
            Err(RecvTimeoutError::Timeout) => {
                if let Some(signal) = signals::received() {
                    return Err(interrupted(signal));
                }
                if let Some(stalled) = stalled(timer.as_ref()) {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "no {} of the FIFO came in {} s (--stall-timeout)",
                            end.other(),
                            stalled.timeout.as_secs_f64()
                        ),
                    ));
                }
                if !said && since.elapsed() >= FIFO_SAY_AFTER {
                    said = true;
                    crate::progress::println(&format!("copyman: {what}"));
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(io::Error::other(
                    "the thread opening it ended without a word",
                ));
            }
        }
    }
}

/// The descriptor number `path` names as one of this process's, whether or not it is open:
/// [`own_descriptor`], or `/dev/fd/N`, `/proc/self/fd/N` for an `N` not open (their link does
/// not exist then, so [`own_descriptor`] does not know them).
pub(crate) fn named_descriptor(path: &Path) -> Option<i32> {
    own_descriptor(path).or_else(|| {
        let fd = path.file_name()?.to_str()?.parse::<i32>().ok()?;
        let dir = fs::canonicalize(path.parent()?).ok()?;
        let ours = Path::new("/proc")
            .join(std::process::id().to_string())
            .join("fd");
        (dir == ours).then_some(fd)
    })
}

/// How descriptor `fd` of this process is open: its access mode (`O_RDONLY`, `O_WRONLY`,
/// `O_RDWR`), or `None` when it is not open.
pub(crate) fn descriptor_access(fd: i32) -> Option<i32> {
    // SAFETY: `fcntl(F_GETFL)` only reads the status flags of a descriptor number of this
    // process; any integer is a valid argument (one not open fails with EBADF), and no memory
    // is passed.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    (flags != -1).then_some(flags & libc::O_ACCMODE)
}

/// The descriptor number `path` names when it is one of this process's: a link
/// `/proc/PID/fd/N` (or `/proc/PID/task/TID/fd/N`) of our own PID, however reached
/// (`/dev/stdout` → `/proc/self/fd/1`, `/dev/fd/N` → `/proc/self/fd/N`).
pub(crate) fn own_descriptor(path: &Path) -> Option<i32> {
    let (link, true) = follow(path).ok()? else {
        return None;
    };
    let fd = link.file_name()?.to_str()?.parse::<i32>().ok()?;
    let dir = fs::canonicalize(link.parent()?).ok()?;
    let parts: Vec<_> = dir
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let pid = std::process::id().to_string();
    let ours = match parts.as_slice() {
        [root, proc, p, last] => root == "/" && proc == "proc" && *p == pid && last == "fd",
        [root, proc, p, task, _, last] => {
            root == "/" && proc == "proc" && *p == pid && task == "task" && last == "fd"
        }
        _ => false,
    };
    ours.then_some(fd)
}

/// What a run would refuse about its file destinations when it opens them, found before it
/// connects anywhere (a real run and `--dry-run` alike), without creating, truncating or
/// opening anything but an existing file to replace, opened for writing without truncating and
/// closed: psql's `\copy` could not open one we may not write either, and the rename would
/// replace a file (another user's, or a read-only one) that its directory lets us replace but
/// not write ([`refuse_same_file`] runs first). A file to be replaced or created needs a directory that exists and
/// that we may write and search (its temporary file is created there); a name of a directory is
/// refused; another file written directly (a device) must be writable; a FIFO is not opened
/// (that would wait for its reader). Checked with `faccessat(AT_EACCESS)`: as the process's
/// effective user, read-only file systems included.
///
/// Returns, for `keep_going`, the destinations a real run would drop (index, why); without it
/// the first such destination is an error.
///
/// # Errors
/// [`Fatal`] with exit 2, naming it.
pub(crate) fn refuse_unopenable(
    destinations: &[Endpoint],
    keep_going: bool,
) -> Result<Vec<(usize, String)>, Fatal> {
    let mut dropped = Vec::new();
    for (i, endpoint) in destinations.iter().enumerate() {
        let Endpoint::File(path) = endpoint else {
            continue;
        };
        let Err(why) = would_open(path) else {
            continue;
        };
        if !keep_going {
            return Err(Fatal {
                exit: Exit::Usage,
                server: None,
                message: format!(
                    "destination {} {}: cannot write it: {why}: nothing copied",
                    i + 1,
                    endpoint.display()
                ),
            });
        }
        dropped.push((i, format!("cannot write it: {why}")));
    }
    Ok(dropped)
}

/// Whether [`FileSink::open`] would open `path` (see [`refuse_unopenable`]); why not, in words.
fn would_open(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::FileTypeExt;

    if own_descriptor(path).is_some() {
        // Our own descriptor, duplicated: open already.
        return Ok(());
    }
    // `newdir/` (as `cp x newdir/` means a directory), `newdir/.`: a directory's name, whether
    // it exists or not (a missing one failed the rename after the servers had committed).
    let bytes = std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str());
    if [&b"/"[..], b"/.", b"/.."]
        .iter()
        .any(|end| bytes.ends_with(end))
        || bytes == b"."
        || bytes == b".."
    {
        return Err(
            "it names a directory (it ends in / or a dot component): give the file's name"
                .to_owned(),
        );
    }
    match target(path).map_err(|e| e.to_string())? {
        FileTarget::Direct => {
            let meta = fs::metadata(path).map_err(|e| e.to_string())?;
            if meta.is_dir() {
                Err(io::Error::from_raw_os_error(libc::EISDIR).to_string())
            } else if meta.file_type().is_fifo() {
                Ok(())
            } else {
                access(path, libc::W_OK).map_err(|e| e.to_string())
            }
        }
        FileTarget::Replace { path, existing } => {
            // Asked, not opened for writing: a program watching the file for the close of a
            // write (inotify's IN_CLOSE_WRITE: "the export is ready") took the old file for a
            // new one before any row was copied (files39 F13).
            if existing.is_some() {
                if inode_flags(&path).is_some_and(|f| f & (FS_APPEND_FL | FS_IMMUTABLE_FL) != 0) {
                    return Err(
                        "it is append-only or immutable (chattr +a or +i, lsattr shows \
                                it), so it cannot be replaced"
                            .to_owned(),
                    );
                }
                access(&path, libc::W_OK).map_err(|e| e.to_string())?;
            }
            let dir = path
                .parent()
                .filter(|dir| !dir.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let dir_meta = fs::metadata(dir);
            let shown = conn::redact(&dir.to_string_lossy());
            match &dir_meta {
                Ok(meta) if !meta.is_dir() => Err(io::Error::from_raw_os_error(libc::ENOTDIR)),
                Ok(_) => access(dir, libc::W_OK | libc::X_OK),
                Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
            }
            .map_err(|e| {
                // A file of ours to write, in a directory we may not: in place it can be.
                let in_place = existing.is_some() && access(&path, libc::W_OK).is_ok();
                let way = if in_place {
                    "; write it in place through stdout (--to - > FILE)"
                } else {
                    ""
                };
                format!("cannot create a file in its directory {shown}: {e}{way}")
            })?;
            match (existing, dir_meta) {
                (Some(old), Ok(dir_meta)) => replaceable(&path, &old, &dir_meta, &shown),
                _ => Ok(()),
            }
        }
    }
}

/// Whether an existing file `old` in its directory (`dir`, shown as `shown`) can be replaced by
/// a rename onto it, which is how a file destination is written: not a mount point (a file
/// bind-mounted there, as `docker run -v` mounts one: EBUSY), nor, in a sticky directory
/// (`/tmp`), a file whose owner and directory's owner are both others (EPERM) — found after
/// the copy, when servers had committed. Such a file is written in place through stdout.
fn replaceable(
    path: &Path,
    old: &fs::Metadata,
    dir: &fs::Metadata,
    shown: &str,
) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;

    let in_place = "copyman writes a new file beside it and renames it onto the old one; write \
                    it in place through stdout (--to - > FILE), or to a new name";
    if old.dev() != dir.dev() || is_mount_point(path) {
        return Err(format!(
            "it is a mount point (a file mounted onto its name), which cannot be replaced: \
             {in_place}"
        ));
    }
    // SAFETY: geteuid has no preconditions, touches no memory of ours and cannot fail.
    let me = unsafe { libc::geteuid() };
    if dir.mode() & libc::S_ISVTX != 0 && me != 0 && old.uid() != me && dir.uid() != me {
        return Err(format!(
            "its directory {shown} is sticky (+t, as /tmp is) and neither the file nor the \
             directory is yours, so it cannot be replaced: {in_place}"
        ));
    }
    Ok(())
}

/// Whether `path` is where something is mounted ([`mounts`]): a file bind-mounted from the same
/// file system has its directory's device.
fn is_mount_point(path: &Path) -> bool {
    let Ok(path) = fs::canonicalize(path) else {
        return false;
    };
    mounts().iter().any(|(point, _)| *point == path)
}

/// The kind of file system `dir` is on where it is held in memory (`tmpfs`, `ramfs`): what it
/// holds is gone at the host's reboot (the longest mount point of [`mounts`] that holds it);
/// `None` where it is not, or cannot be told.
pub(crate) fn held_in_memory(dir: &Path) -> Option<String> {
    let dir = fs::canonicalize(dir).ok()?;
    let mounts = mounts();
    let (_, kind) = (mounts.iter())
        .filter(|(point, _)| dir.starts_with(point))
        .max_by_key(|(point, _)| point.as_os_str().len())?;
    matches!(kind.as_str(), "tmpfs" | "ramfs").then(|| kind.clone())
}

/// Every mount point `/proc/self/mountinfo` lists (its fifth field, with `\ooo` escapes) and the
/// kind of its file system (the field after `-`), in its order; none where it cannot be read.
fn mounts() -> Vec<(PathBuf, String)> {
    use std::os::unix::ffi::OsStrExt;

    let Ok(mounts) = fs::read("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let unescape = |field: &[u8]| {
        let mut out = Vec::with_capacity(field.len());
        let mut i = 0;
        while i < field.len() {
            let octal = field.get(i + 1..i + 4).filter(|_| field[i] == b'\\');
            match octal.and_then(|o| u8::from_str_radix(std::str::from_utf8(o).ok()?, 8).ok()) {
                Some(byte) => {
                    out.push(byte);
                    i += 4;
                }
                None => {
                    out.push(field[i]);
                    i += 1;
                }
            }
        }
        out
    };
    mounts
        .split(|&b| b == b'\n')
        .filter_map(|line| {
            let fields: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
            let dash = fields.iter().position(|f| *f == b"-")?;
            let kind = String::from_utf8_lossy(fields.get(dash + 1)?).into_owned();
            let point = std::ffi::OsStr::from_bytes(&unescape(fields.get(4)?)).to_owned();
            Some((PathBuf::from(point), kind))
        })
        .collect()
}

/// `FS_APPEND_FL` and `FS_IMMUTABLE_FL` of `<linux/fs.h>` (not in libc): a file that only grows,
/// or never changes; neither can be renamed onto (EPERM).
const FS_APPEND_FL: libc::c_long = 0x20;
const FS_IMMUTABLE_FL: libc::c_long = 0x10;

/// The inode flags of `path` (`lsattr`'s), where it can be opened for reading and its file system
/// keeps them.
fn inode_flags(path: &Path) -> Option<libc::c_long> {
    use std::os::fd::AsRawFd;

    let file = File::open(path).ok()?;
    let mut flags: libc::c_long = 0;
    // SAFETY: `file` is an open descriptor for the call; FS_IOC_GETFLAGS writes one int (at most
    // the c_long it is declared as) into `flags`, which lives across the call.
    let done = unsafe { libc::ioctl(file.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut flags) };
    (done == 0).then_some(flags)
}

/// `faccessat(AT_FDCWD, path, mode, AT_EACCESS)`: whether the effective user may.
fn access(path: &Path, mode: libc::c_int) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;

    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // SAFETY: `c_path` is a NUL-terminated string alive for the call; no other memory is passed.
    if unsafe { libc::faccessat(libc::AT_FDCWD, c_path.as_ptr(), mode, libc::AT_EACCESS) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Gives a temporary file the owner (where we may: as root) and the permission bits of the file
/// it is to replace, as writing that file in place (psql's `\copy`) would keep them.
fn take_owner_and_mode(file: &File, old: &fs::Metadata) -> io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    let now = file.metadata()?;
    if (now.uid(), now.gid()) != (old.uid(), old.gid()) {
        // Only root may give a file away; another user may still give it its group. Neither is
        // an error: the file then belongs to who ran the copy, as any file it creates.
        if std::os::unix::fs::fchown(file, Some(old.uid()), Some(old.gid())).is_err() {
            let _ = std::os::unix::fs::fchown(file, None, Some(old.gid()));
        }
    }
    file.set_permissions(fs::Permissions::from_mode(old.mode() & 0o777))
}

/// Copies the extended attributes of `from` — a POSIX ACL is two of them
/// (`system.posix_acl_access`, `system.posix_acl_default`), `user.*`, a security label — to
/// `file`, as `cp -a` keeps them; those that could not be set, with why (listing or reading
/// `from`'s failing: none, as a file system without them).
fn keep_xattrs(file: &File, from: &Path) -> Vec<(String, io::Error)> {
    use std::os::fd::AsRawFd;
    use std::os::unix::ffi::OsStrExt;

    let Ok(c_path) = std::ffi::CString::new(from.as_os_str().as_bytes()) else {
        return Vec::new();
    };
    // SAFETY: `c_path` is a NUL-terminated path alive for the call; `buf` is null with `len` 0
    // (the size asked) or points to `len` writable bytes (`read_sized`).
    let names = read_sized(|buf, len| unsafe { libc::listxattr(c_path.as_ptr(), buf.cast(), len) });
    let mut failed = Vec::new();
    for name in names.unwrap_or_default().split(|&b| b == 0) {
        let Ok(c_name) = std::ffi::CString::new(name) else {
            continue;
        };
        if name.is_empty() {
            continue;
        }
        // SAFETY: as above; `c_name` is a NUL-terminated name alive for the call.
        let value = read_sized(|buf, len| unsafe {
            libc::getxattr(c_path.as_ptr(), c_name.as_ptr(), buf.cast(), len)
        });
        let Some(value) = value else { continue };
        // SAFETY: `file` is open for the call; `c_name` is NUL-terminated and `value` holds
        // `value.len()` readable bytes, both alive for the call.
        let set = unsafe {
            libc::fsetxattr(
                file.as_raw_fd(),
                c_name.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            )
        };
        if set != 0 {
            failed.push((
                String::from_utf8_lossy(name).into_owned(),
                io::Error::last_os_error(),
            ));
        }
    }
    failed
}

/// What `call(buf, len)` fills in, `listxattr`'s and `getxattr`'s way: called with a null buffer
/// to learn the size, then with one of that size (again if it grew meanwhile, ERANGE); `None`
/// on another error.
fn read_sized(call: impl Fn(*mut u8, usize) -> isize) -> Option<Vec<u8>> {
    for _ in 0..4 {
        let size = usize::try_from(call(std::ptr::null_mut(), 0)).ok()?;
        let mut buf = vec![0u8; size];
        match usize::try_from(call(buf.as_mut_ptr(), buf.len())) {
            Ok(got) => {
                buf.truncate(got);
                return Some(buf);
            }
            Err(_) if io::Error::last_os_error().raw_os_error() == Some(libc::ERANGE) => {}
            Err(_) => return None,
        }
    }
    None
}

/// The longest file name (`NAME_MAX` of Linux and the BSDs).
const NAME_MAX: usize = 255;

/// Creates the temporary file beside `path`: a new file (`O_EXCL`: never a file or link already
/// there, whoever put it there), under a name no one can foretell, tried again under another on
/// the rare collision. `private`: created `0600` (its mode is set to the replaced file's next);
/// else with the mode a new file gets (`0666` less the umask, as psql's).
fn create_temp(path: &Path, private: bool) -> io::Result<(PathBuf, File)> {
    use std::os::unix::fs::OpenOptionsExt;

    for _ in 0..64 {
        let temp = temp_path(path);
        let created = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(if private { 0o600 } else { 0o666 })
            .open(&temp);
        match created {
            Ok(file) => return Ok((temp, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "no free name for a temporary file beside it",
    ))
}

/// Says each temporary file an earlier run left beside `path` ([`temp_path`]'s name, of a
/// process that is gone: one killed with SIGKILL, which nothing can catch), for the user to
/// remove: a hidden copy of the file, which `ls` does not show, kept for good. Not removed
/// here: a process of that number on another machine sharing the directory may still write
/// it.
fn say_leftovers(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let prefix = format!(".{}.copyman-", name.to_string_lossy());
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let file_name = file_name.to_string_lossy();
        let Some(pid) = (file_name.strip_prefix(&prefix))
            .filter(|_| file_name.ends_with(".tmp"))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<i32>().ok())
        else {
            continue;
        };
        // SAFETY: `kill` with signal 0 sends nothing: it only asks whether a process of that
        // number exists (ESRCH when none does); no memory is passed.
        let gone = unsafe { libc::kill(pid, 0) } == -1
            && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        if gone {
            report::warn(format_args!(
                "{}: an earlier run's temporary file {} is left beside it (its process {pid} \
                 is gone, killed where nothing could remove it): remove it",
                path.display(),
                dir.join(&*file_name).display()
            ));
        }
    }
}

/// `dir/.name.copyman-PID-RANDOM.tmp` beside `path`, within [`NAME_MAX`] bytes (a long name is
/// shortened), RANDOM from the standard library's randomly keyed hasher over the time and a
/// counter: a new one on every call.
pub(crate) fn temp_path(path: &Path) -> PathBuf {
    use std::hash::{BuildHasher, Hash, Hasher};
    use std::os::unix::ffi::OsStrExt;
    use std::sync::atomic::{AtomicU64, Ordering};

    static CALLS: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    CALLS.fetch_add(1, Ordering::Relaxed).hash(&mut hasher);
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
        .hash(&mut hasher);
    let suffix = format!(
        ".copyman-{}-{:016x}.tmp",
        std::process::id(),
        hasher.finish()
    );
    let name = path
        .file_name()
        .map(OsStrExt::as_bytes)
        .unwrap_or(b"copyman");
    let room = NAME_MAX - 1 - suffix.len();
    let mut keep = name.len().min(room);
    // Not in the middle of a character, where the name is UTF-8.
    if let Ok(text) = std::str::from_utf8(name) {
        while !text.is_char_boundary(keep) {
            keep -= 1;
        }
    }
    let mut temp = Vec::with_capacity(NAME_MAX);
    temp.push(b'.');
    temp.extend_from_slice(&name[..keep]);
    temp.extend_from_slice(suffix.as_bytes());
    path.with_file_name(std::ffi::OsStr::from_bytes(&temp))
}

/// Where writing to `path` lands: `path`, or the end of the chain of symbolic links it starts (a
/// relative link read from the link's directory). The target need not exist (a dangling link is
/// written through, creating its target, as `cp` does).
///
/// # Errors
/// A link cannot be read, or the chain is longer than 40 links (the kernel's limit).
pub(crate) fn resolve(path: &Path) -> io::Result<PathBuf> {
    follow(path).map(|(path, _)| path)
}

/// [`resolve`], which stops at a link of `/proc` (`/dev/stdout` leads to `/proc/self/fd/1`): such
/// a link names an open file (`pipe:[…]`, a file since deleted), not a path; `true` then.
fn follow(path: &Path) -> io::Result<(PathBuf, bool)> {
    use std::os::unix::fs::MetadataExt;

    let procfs = fs::metadata("/proc/self").ok().map(|m| m.dev());
    let mut path = path.to_path_buf();
    for _ in 0..40 {
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                if procfs == Some(meta.dev()) {
                    return Ok((path, true));
                }
                let target = fs::read_link(&path)?;
                // An absolute target replaces the directory it is joined to.
                path = match path.parent() {
                    Some(dir) => dir.join(target),
                    None => target,
                };
            }
            _ => return Ok((path, false)),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{}: too many levels of symbolic links", path.display()),
    ))
}

/// Whether `path` names what stdout is (the same file, pipe or socket), other than a character
/// device (`/dev/null`, a terminal: writing it twice keeps nothing twice).
pub(crate) fn is_stdout(path: &Path) -> bool {
    same_file_as(path, stdout_identity())
}

/// Whether `path` names what stderr is, as [`is_stdout`] tells it of stdout (fd 2 read through
/// `/dev/fd/2`, whose link leads to what it is open on: stderr is only ever written by
/// `progress::write_stderr`).
pub(crate) fn is_stderr(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;

    let stderr = fs::metadata("/dev/fd/2").ok();
    same_file_as(path, stderr.map(|meta| (meta.dev(), meta.ino())))
}

/// Whether `path` names the file of device and inode `stdio` (other than a character device).
fn same_file_as(path: &Path, stdio: Option<(u64, u64)>) -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    let (Some(stdio), Ok(meta)) = (stdio, fs::metadata(path)) else {
        return false;
    };
    !meta.file_type().is_char_device() && (meta.dev(), meta.ino()) == stdio
}

/// The device and inode of the regular file or FIFO a source reads: its path's, or what stdin
/// is redirected from (a pipe too; `None` for a server, a terminal).
pub(crate) fn source_identity(source: &Endpoint) -> Option<(u64, u64)> {
    use std::os::fd::AsFd;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    let meta = match source {
        Endpoint::File(path) => fs::metadata(path).ok()?,
        Endpoint::Stdio => {
            let fd = io::stdin().as_fd().try_clone_to_owned().ok()?;
            File::from(fd).metadata().ok()?
        }
        _ => return None,
    };
    (meta.is_file() || meta.file_type().is_fifo()).then(|| (meta.dev(), meta.ino()))
}

/// The device and inode of what fd 1 is open on (`fstat`, through a duplicate of it).
fn stdout_identity() -> Option<(u64, u64)> {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;

    let fd = io::stdout().as_fd().try_clone_to_owned().ok()?;
    let meta = File::from(fd).metadata().ok()?;
    Some((meta.dev(), meta.ino()))
}

/// The file a destination path writes, however it is spelled (`./x`, `/tmp/d/x`, a link to it):
/// its directory made canonical, joined with its name. `None` for what cannot be told (a
/// directory that does not exist: opening it fails later, named).
fn file_identity(path: &Path) -> Option<PathBuf> {
    let path = resolve(path).ok()?;
    let name = path.file_name()?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    Some(fs::canonicalize(dir).ok()?.join(name))
}

/// Refuses a file given twice as a destination (by different paths, or through a link): the two
/// would share one temporary file and the second rename would fail after the first. Refuses as
/// well a path that is stdout (`/dev/stdout`, `/dev/fd/1`, the file or pipe stdout is) given with
/// `-`: its reader would get every row twice. A character device (`/dev/null`, a terminal) may be
/// given any number of times: it is written directly and keeps nothing.
///
/// Refuses too a source file (or a stdin redirected from one) that is the file stdout or a
/// destination writes to (`--from f --to - >> f`, `--to /dev/fd/3 3>>f`, `--to f`): the copy
/// would read the rows it writes, for ever, until the disk is full.
///
/// # Errors
/// [`Fatal`] with exit 2, naming both.
pub(crate) fn refuse_same_file(source: &Endpoint, destinations: &[Endpoint]) -> Result<(), Fatal> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    let stdio = destinations
        .iter()
        .position(|d| matches!(d, Endpoint::Stdio));
    let writes_stdout = stdio.is_some()
        || destinations
            .iter()
            .any(|d| matches!(d, Endpoint::File(path) if is_stdout(path)));
    let read = source_identity(source);
    // The destination that writes the source's file: stdout, or a path (a descriptor's,
    // `/dev/fd/3`, or the file's own name).
    let writes_source = read.and_then(|read| {
        if writes_stdout && stdout_identity() == Some(read) {
            return Some("stdout".to_owned());
        }
        destinations.iter().find_map(|d| match d {
            Endpoint::File(path)
                if fs::metadata(path).is_ok_and(|m| (m.dev(), m.ino()) == read) =>
            {
                Some(d.display())
            }
            _ => None,
        })
    });
    if let Some(writer) = writes_source {
        // A FIFO's only writer would be copyman's own destination, opened after the source.
        let fifo = matches!(source, Endpoint::File(path) if is_fifo(path));
        let source = match source {
            Endpoint::Stdio => "(stdin)".to_owned(),
            other => other.display(),
        };
        return Err(Fatal {
            exit: Exit::Usage,
            server: None,
            message: if fifo {
                format!(
                    "the source {source} is the FIFO {writer} writes to: copyman would wait \
                     for itself; give the FIFO once, and its other end to another program"
                )
            } else {
                format!(
                    "the source {source} is the file {writer} writes to: copyman would read \
                     the rows it writes, for ever; write them to another file"
                )
            },
        });
    }
    let mut seen: Vec<(PathBuf, usize)> = Vec::new();
    for (i, endpoint) in destinations.iter().enumerate() {
        let Endpoint::File(path) = endpoint else {
            continue;
        };
        if let Some(first) = stdio
            && is_stdout(path)
        {
            let (first, second) = (first.min(i), first.max(i));
            return Err(Fatal {
                exit: Exit::Usage,
                server: None,
                message: format!(
                    "destinations {} ({}) and {} ({}) are both stdout: give it once",
                    first + 1,
                    destinations[first].display(),
                    second + 1,
                    destinations[second].display(),
                ),
            });
        }
        let Some(identity) = file_identity(path) else {
            continue;
        };
        if fs::metadata(&identity).is_ok_and(|m| m.file_type().is_char_device()) {
            continue;
        }
        // The same path, or another name of the same existing file (a hard link).
        let same = |other: &PathBuf| {
            *other == identity
                || match (fs::metadata(other), fs::metadata(&identity)) {
                    (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
                    _ => false,
                }
        };
        if let Some((_, first)) = seen.iter().find(|(p, _)| same(p)) {
            return Err(Fatal {
                exit: Exit::Usage,
                server: None,
                message: format!(
                    "destinations {} ({}) and {} ({}) are the same file, {}: give it once",
                    first + 1,
                    destinations[*first].display(),
                    i + 1,
                    endpoint.display(),
                    conn::redact(&identity.to_string_lossy())
                ),
            });
        }
        seen.push((identity, i));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    /// Binary data is followed through its header, tuples and trailer, whatever the chunks: its
    /// mark is a field count no table has where a count begins (or half of one went out) and
    /// after the trailer, nothing inside the header or a field (its reader fails there).
    #[test]
    fn binary_data_is_marked_where_a_reader_would_take_its_end() {
        let mut data = b"PGCOPY\n\xff\r\n\0".to_vec();
        data.extend([0, 0, 0, 0, 0, 0, 0, 2, 0xAA, 0xBB]);
        let header = data.len();
        let tuple = [0u8, 2, 0, 0, 0, 1, b'a', 0xFF, 0xFF, 0xFF, 0xFF];
        data.extend(tuple);
        data.extend(tuple);
        data.extend([0xFF, 0xFF]);
        let boundaries = [header, header + tuple.len(), header + 2 * tuple.len()];
        for k in 0..=data.len() {
            let mut cut = Binary::new();
            // In chunks of 3 bytes: the same as whole.
            for chunk in data[..k].chunks(3) {
                cut.took(chunk);
            }
            let mark = cut.mark();
            let expected: &[u8] = if boundaries.contains(&k) || k == data.len() {
                &[0x7F, 0xFF]
            } else if boundaries.iter().any(|b| k == b + 1) {
                &[0xFE]
            } else {
                &[]
            };
            assert_eq!(mark, expected, "cut after {k} bytes");
        }
    }

    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// The mark of a cut follows where the bytes taken end: after an odd number of
    /// backslashes in text (one escapes the next byte), inside a quoted CSV value (nothing: its
    /// end fails already), after an ESCAPE there.
    #[test]
    fn a_cut_is_marked_by_where_the_data_stopped() {
        let text = |chunks: &[&[u8]]| {
            let mut cut = Cut::Text { backslashes: 0 };
            chunks.iter().for_each(|c| cut.took(c));
            cut.mark()
        };
        assert!(text(&[b"1\ta\n"]).starts_with(b"\\.copyman: "));
        assert!(text(&[b"1\ta\\"]).starts_with(b"\\\\.copyman: "));
        assert!(text(&[b"1\ta\\", b"\\"]).starts_with(b"\\.copyman: "));
        assert!(text(&[b"1\ta\\", b"\\", b"\\"]).starts_with(b"\\\\.copyman: "));
        let csv = |escape: u8, chunks: &[&[u8]]| {
            let mut cut = Cut::Csv {
                quote: b'"',
                escape,
                quoted: false,
                escaped: false,
            };
            chunks.iter().for_each(|c| cut.took(c));
            cut.mark()
        };
        assert!(csv(b'"', &[b"1,\"a\"\"b\"\n"]).starts_with(b"\"copyman: "));
        assert!(csv(b'"', &[b"1,\"a\"", b"\"b"]).is_empty());
        assert!(csv(b'"', &[b"1,\"two\nlines"]).is_empty());
        assert!(csv(b'\\', &[b"1,\"a\\\"b\"\n"]).starts_with(b"\""));
        assert!(csv(b'\\', &[b"1,\"a\\", b"\"b"]).is_empty());
        // Nothing went out: on two lines, the first without a quote, which a header line's
        // reading would pair with the second's (recheck68 F10).
        let start = Cut::Csv {
            quote: b'"',
            escape: b'"',
            quoted: false,
            escaped: false,
        };
        let mark = start.mark_after(0);
        let (first, second) = mark.split_at(mark.iter().position(|&b| b == b'\n').unwrap());
        assert!(!first.contains(&b'"') && second.starts_with(b"\n\"copyman: "));
        assert_eq!(start.mark_after(5), start.mark());
        let text = Cut::Text { backslashes: 0 }.mark_after(0);
        assert!(text.starts_with(b"\\.copyman: ") && text.ends_with(&Cut::unreadable()));
        // Text or CSV, unknown: text's mark, and each quote that opens a CSV value where none
        // quoted with it is open (recheck70 F7; `'` too, recheck71 F1).
        let either = |chunks: &[&[u8]]| {
            let mut cut = Cut::either();
            chunks.iter().for_each(|c| cut.took(c));
            cut.mark()
        };
        assert!(
            either(&[b"1,a\n"]).starts_with(b"\\.copyman: ")
                && either(&[b"1,a\n"]).ends_with(b"short\"'")
        );
        assert!(either(&[b"1,\"a\"\"b"]).starts_with(b"\\.copyman: "));
        assert!(either(&[b"1,\"a\"\"b"]).ends_with(b"short'"));
        assert!(either(&[b"1,'a"]).ends_with(b"short\""));
        assert!(either(&[b"1\ta\\"]).starts_with(b"\\\\.copyman: "));
        // Cut where a CSV reader with `ESCAPE '\'` is in a value the count took for closed: a
        // byte no reader takes, after the quotes (recheck72 F2, recheck73 F2).
        let mut cut = Cut::either();
        cut.took(b"1,\"say \\\"h");
        let mark = cut.mark_after(12);
        let tail = [&b"short\"'"[..], &Cut::unreadable()].concat();
        assert!(mark.ends_with(&tail), "{}", mark.escape_ascii());
        assert!(Cut::unreadable().starts_with(&[0xFF; Cut::RUN]));
        let nothing = Cut::either().mark_after(0);
        let (first, second) = nothing.split_at(nothing.iter().position(|&b| b == b'\n').unwrap());
        assert!(!first.contains(&b'"') && first.starts_with(b"\\."));
        assert!(second.ends_with(&tail));
    }

    /// Whether PostgreSQL's CSV reading (`CopyReadLineText`'s quote tracking, then
    /// `CopyReadAttributesCSV`'s fields) of `data`, one-byte `quote`, `delimiter` and `escape`,
    /// into a table of `columns` columns, loads it without an error: every line's quotes close
    /// on it, and no line holds more fields than the table.
    fn pg_csv_loads(data: &[u8], quote: u8, delimiter: u8, escape: u8, columns: usize) -> bool {
        // Lines, as the line reader ends them (an escape equal to the quote is no escape).
        let line_escape = (escape != quote).then_some(escape);
        let (mut lines, mut start, mut in_quote, mut last_was_esc) = (Vec::new(), 0, false, false);
        for (i, &c) in data.iter().enumerate() {
            if in_quote && Some(c) == line_escape {
                last_was_esc = !last_was_esc;
            }
            if c == quote && !last_was_esc {
                in_quote = !in_quote;
            }
            if Some(c) != line_escape {
                last_was_esc = false;
            }
            if c == b'\n' && !in_quote {
                lines.push(&data[start..i]);
                start = i + 1;
            }
        }
        lines.push(&data[start..]);
        lines.iter().filter(|l| !l.is_empty()).all(|line| {
            let (mut fields, mut i) = (1, 0);
            while i < line.len() {
                let c = line[i];
                i += 1;
                if c == delimiter {
                    fields += 1;
                } else if c == quote {
                    loop {
                        let Some(&c) = line.get(i) else {
                            return false; // unterminated CSV quoted field
                        };
                        i += 1;
                        if c == escape && line.get(i).is_some_and(|&n| n == escape || n == quote) {
                            i += 1;
                        } else if c == quote {
                            break;
                        }
                    }
                }
            }
            fields <= columns
        })
    }

    /// The tail of the mark of data of unknown format fails a CSV reader of any QUOTE,
    /// DELIMITER and ESCAPE, in a quoted value or not, after an ESCAPE or not (recheck74 F1: a
    /// reader of `QUOTE E'\x01', DELIMITER E'\x02'` loaded the mark as a row).
    #[test]
    fn the_unknown_formats_mark_fails_a_csv_reader_of_any_quote_and_delimiter() {
        let tail = Cut::unreadable();
        // A fair sample of every kind of byte: controls, the usual, `\`, high ones, 0xFF.
        let bytes = [
            0x01, 0x02, b'\t', b'"', b'\'', b',', b'\\', 0x7F, 0xFE, 0xFF,
        ];
        let mut tried = 0;
        for quote in bytes {
            for delimiter in bytes.into_iter().filter(|&d| d != quote) {
                for escape in [quote, b'\\', 0xFF, delimiter] {
                    // Out of a value, inside a quoted one, just after its ESCAPE there; and
                    // nothing sent.
                    for before in [&b"1,x"[..], &[quote], &[quote, escape], b""] {
                        let data = [b"1\n", before].concat();
                        let mut cut = Cut::either();
                        cut.took(&data);
                        let data = match before.is_empty() {
                            true => cut.mark_after(0),
                            false => [&data[..], &cut.mark_after(data.len() as u64)].concat(),
                        };
                        assert!(data.ends_with(&tail));
                        assert!(
                            !pg_csv_loads(&data, quote, delimiter, escape, 1600),
                            "QUOTE {quote:#x} DELIMITER {delimiter:#x} ESCAPE {escape:#x} after \
                             {before:x?}"
                        );
                        tried += 1;
                    }
                }
            }
        }
        assert!(tried > 1000);
        // The model is no straw man: the mark's old tail loaded under this reader.
        let old = [&b",;|\t".repeat(1601)[..], b"\n"].concat();
        assert!(pg_csv_loads(&old, 0x01, 0x02, 0x01, 1));
    }

    /// A full disk met by the temporary copy beside an existing file says so, and the ways out
    /// (files39 F2: "cannot write FILE: No space left on device" where the data fitted).
    #[test]
    fn a_full_disk_beside_the_old_file_is_said_as_such() {
        let dir = std::env::temp_dir().join(format!("copyman-room-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let (old, temp) = (dir.join("out.txt"), dir.join(".out.txt.copyman-1-0.tmp"));
        let rename = (temp.clone(), old.clone());
        let full = io::Error::from_raw_os_error(libc::ENOSPC);
        // No old file: the data itself did not fit; nothing to add.
        assert_eq!(no_room_beside(Some(&rename), &full), "");
        // An old file far smaller than what the new copy held when the disk filled: removing
        // it makes no room; the data itself did not fit (files40 F6).
        fs::write(&old, "old").unwrap();
        fs::write(&temp, "many new rows").unwrap();
        assert_eq!(no_room_beside(Some(&rename), &full), "");
        fs::write(&old, "old rows, as many").unwrap();
        let said = no_room_beside(Some(&rename), &full);
        assert!(
            said.contains("the disk has no room for both")
                && said.contains(&temp.display().to_string())
                && said.contains("--to - > FILE"),
            "{said}"
        );
        // Other errors, and files written directly, are said as they are.
        let denied = io::Error::from_raw_os_error(libc::EACCES);
        assert_eq!(no_room_beside(Some(&rename), &denied), "");
        assert_eq!(no_room_beside(None, &full), "");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn temporary_names_fit_and_differ() {
        let long = format!("/d/{}", "n".repeat(NAME_MAX));
        let a = temp_path(Path::new(&long));
        let b = temp_path(Path::new(&long));
        assert_ne!(a, b, "a new name on every call");
        let name = a.file_name().unwrap().to_str().unwrap();
        assert!(name.len() <= NAME_MAX, "{}", name.len());
        assert!(name.starts_with(".nnn"), "{name}");
        assert!(
            name.contains(&format!(".copyman-{}-", std::process::id())),
            "{name}"
        );
        assert_eq!(a.parent(), Some(Path::new("/d")));

        // Shortened between characters, never inside one.
        let accented = format!("/d/{}", "é".repeat(127));
        let temp = temp_path(Path::new(&accented));
        let name = temp.file_name().unwrap();
        assert!(name.as_bytes().len() <= NAME_MAX);
        assert!(name.to_str().is_some(), "{name:?}");

        let short = temp_path(Path::new("out.txt"));
        assert!(short.to_str().unwrap().starts_with(".out.txt.copyman-"));
    }

    #[test]
    fn names_of_our_descriptors_are_written_directly() {
        assert!(follow(Path::new("/proc/self/fd/2")).unwrap().1);
        assert_eq!(own_descriptor(Path::new("/proc/self/fd/2")), Some(2));
        assert_eq!(own_descriptor(Path::new("/dev/fd/2")), Some(2));
        assert!(matches!(
            target(Path::new("/dev/fd/2")).unwrap(),
            FileTarget::Direct
        ));
        // A plain path is written beside and renamed.
        assert!(!follow(Path::new("/nonexistent/x")).unwrap().1);
        assert_eq!(own_descriptor(Path::new("/nonexistent/x")), None);
        assert!(matches!(
            target(Path::new("/nonexistent-dir-copyman/x")),
            Ok(FileTarget::Replace { existing: None, .. })
        ));
    }

    #[test]
    fn a_temporary_file_is_always_a_new_one() {
        let dir = std::env::temp_dir().join(format!("copyman-dest-unit-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let target = dir.join("out.txt");
        let (temp, file) = create_temp(&target, true).unwrap();
        assert_eq!(file.metadata().unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(temp.parent(), Some(dir.as_path()));
        let (other, _) = create_temp(&target, false).unwrap();
        assert_ne!(temp, other);
        fs::remove_dir_all(&dir).unwrap();
    }
}
