//! The producer side of a raw COPY OUT: bytes read from the source's socket in, chunks out.
//!
//! [`CopyOutSource`] is what a `StatementProducer` is made of, minus the socket: the
//! [`Framer`] follows the source's CopyData frames in each read and re-blocks them into one frame
//! (or leaves them as the server sent them, when lines are wanted); at the first message that is
//! not CopyData it hands the rest of the read to the [`Session`], which deals with notices and the
//! end of the COPY (`c`, `C`, `Z`) or an error, and gives back any CopyData that follows a notice.

use std::collections::VecDeque;

use bytes::BytesMut;
use copyman_wire::{Framer, HEADROOM, realign};

use crate::manager::Chunk;
use crate::session::{CopyFormat, Event, Session, SessionError, State};
use crate::start::Started;

/// What a [`CopyOutSource`] has for the manager.
#[derive(Debug)]
#[must_use]
#[non_exhaustive]
pub enum SourceItem {
    /// COPY data: whole CopyData frames when re-blocking, the server's bytes as read otherwise.
    Chunk(Chunk),
    /// The COPY OUT ended and the session is ready again; `count` is the server's `COPY n`.
    End {
        /// Rows the server says it sent.
        count: Option<u64>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Socket bytes are CopyData stream: they go through the framer.
    Stream,
    /// The framer stopped: socket bytes go to the session until it gives CopyData back or ends.
    Messages,
    /// The COPY OUT is over.
    Ended,
}

/// The sans-IO producer of a raw session's COPY OUT.
///
/// Drive it with the bytes read from the session's socket, each read in a buffer with
/// [`HEADROOM`] bytes reserved in front:
///
/// ```no_run
/// use bytes::BytesMut;
/// use copyman_core::session::Session;
/// use copyman_core::source::{CopyOutSource, SourceItem};
/// use copyman_wire::HEADROOM;
/// # fn read(_: &mut [u8]) -> usize { 0 }
/// # fn f(session: &mut Session) -> Result<(), Box<dyn std::error::Error>> {
/// let mut source = CopyOutSource::new(true);
/// let mut buf = BytesMut::new();
/// loop {
///     while let Some(item) = source.poll_item() {
///         match item {
///             SourceItem::Chunk(chunk) => { /* hand to the manager */ }
///             SourceItem::End { count } => return Ok(()),
///             _ => {}
///         }
///     }
///     buf.clear();
///     buf.resize(HEADROOM + 64 * 1024, 0);
///     let n = read(&mut buf[HEADROOM..]);
///     buf.truncate(HEADROOM + n);
///     source.handle_read(session, buf.split())?;
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct CopyOutSource {
    framer: Framer,
    reblock: bool,
    mode: Mode,
    count: Option<u64>,
    items: VecDeque<SourceItem>,
    /// The COPY's end (ReadyForQuery after CommandComplete) was read.
    end_seen: bool,
    /// The failure that ended the COPY, repeated to every later caller.
    failed: Option<SessionError>,
    /// A text COPY: its data's dates, intervals and timestamps follow the session's styles.
    text: bool,
    /// The pinned settings asked after the COPY in its Query ([`Started::asked_after`]).
    asked_after: Option<crate::session::Unreported>,
}

/// What aborting a COPY OUT leaves the caller to do; see [`CopyOutSource::abort`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Abort {
    /// Nothing: the session is ready again, or its connection is gone.
    Done,
    /// Read the socket into the session until it is ready, after sending its cancel request on a
    /// new connection when `cancel` is true (the server is still streaming).
    Drain {
        /// Whether the server must be told to stop.
        cancel: bool,
    },
}

impl CopyOutSource {
    /// A source that re-blocks (`reblock`) or hands on the server's frames as read.
    pub fn new(reblock: bool) -> Self {
        Self {
            framer: Framer::new(),
            reblock,
            mode: Mode::Stream,
            count: None,
            items: VecDeque::new(),
            end_seen: false,
            failed: None,
            text: true,
            asked_after: None,
        }
    }

    /// The source of a COPY OUT that [`CopyStart`](crate::start::CopyStart) saw start.
    ///
    /// # Errors
    /// As [`CopyOutSource::handle_read`], for stream bytes the session already held.
    pub fn started(
        reblock: bool,
        started: Started,
        session: &mut Session,
    ) -> Result<Self, SessionError> {
        let mut source = Self::new(reblock);
        source.text = started.format != Some(CopyFormat::Binary);
        source.asked_after = started.asked_after;
        if let Some(early) = started.early {
            source.handle_stream_bytes(session, &early)?;
        }
        if let Some(count) = started.ended {
            source.mode = Mode::Ended;
            source.end(count);
        }
        Ok(source)
    }

    fn end(&mut self, count: Option<u64>) {
        self.count = count;
        self.end_seen = true;
        self.items.push_back(SourceItem::End { count });
    }

    /// The server's `COPY n`, once the end was read.
    pub fn count(&self) -> Option<u64> {
        self.count
    }

    /// The failure that ended the COPY, if one did: the caller must not read the socket again
    /// (it would wait on an idle connection) and reports this error instead.
    pub fn failure(&self) -> Option<&SessionError> {
        self.failed.as_ref()
    }

    /// The socket reached its end in the middle of the COPY.
    pub fn handle_eof(&mut self, session: &mut Session) -> SessionError {
        session.handle_eof();
        self.mode = Mode::Ended;
        self.failed.get_or_insert(SessionError::Closed).clone()
    }

    /// Starts with bytes the session already read past the CopyOutResponse (its
    /// `Event::CopyData` right after `CopyOutStarted`).
    ///
    /// # Errors
    /// As [`CopyOutSource::handle_read`].
    pub fn handle_stream_bytes(
        &mut self,
        session: &mut Session,
        bytes: &[u8],
    ) -> Result<(), SessionError> {
        let mut buf = BytesMut::with_capacity(HEADROOM + bytes.len());
        buf.resize(HEADROOM, 0);
        buf.extend_from_slice(bytes);
        self.framer.resume();
        self.mode = Mode::Stream;
        self.read(session, buf)
    }

    /// Handles one read from the socket: `buf[..HEADROOM]` is reserved, the rest was read.
    ///
    /// # Errors
    /// A malformed stream ([`SessionError::Wire`]), or the session's error: the server's
    /// ErrorResponse ([`SessionError::Db`]) ends the COPY OUT.
    pub fn handle_read(
        &mut self,
        session: &mut Session,
        buf: BytesMut,
    ) -> Result<(), SessionError> {
        if let Some(failed) = &self.failed {
            return Err(failed.clone());
        }
        let result = self.read(session, buf);
        if let Err(error) = &result {
            // Refused mid-stream, the server still sends: an abort cancels it.
            if !matches!(error, SessionError::OutputChanged { .. }) {
                self.mode = Mode::Ended;
            }
            self.failed = Some(error.clone());
        }
        result
    }

    fn read(&mut self, session: &mut Session, mut buf: BytesMut) -> Result<(), SessionError> {
        match self.mode {
            Mode::Ended => Ok(()),
            Mode::Messages => {
                session.handle_input(&buf[HEADROOM.min(buf.len())..])?;
                self.drain_session(session)
            }
            Mode::Stream => {
                let (data, messages, payload, stop) = if self.reblock {
                    let out = self.framer.reblock(&mut buf).map_err(SessionError::Wire)?;
                    (out.frame.clone(), out.frames, out.payload, out.stop)
                } else {
                    let walk = self
                        .framer
                        .advance(&buf[HEADROOM..])
                        .map_err(SessionError::Wire)?;
                    let end = walk.stop.map_or(buf.len(), |s| s + HEADROOM);
                    (
                        HEADROOM..end,
                        walk.frames,
                        walk.payload,
                        walk.stop.map(|s| s + HEADROOM),
                    )
                };
                let tail = stop.map(|stop| buf.split_off(stop));
                if !data.is_empty() || messages > 0 {
                    let bytes = buf.freeze().slice(data);
                    self.items.push_back(SourceItem::Chunk(Chunk::pqv3(
                        bytes,
                        messages as u64,
                        payload as u64,
                    )));
                }
                if let Some(tail) = tail {
                    self.mode = Mode::Messages;
                    session.handle_input(&tail)?;
                    self.drain_session(session)?;
                }
                Ok(())
            }
        }
    }

    /// Takes the session's events after it was given non-CopyData bytes.
    fn drain_session(&mut self, session: &mut Session) -> Result<(), SessionError> {
        // A setting its data is written in changed: the rows after it would be read as other
        // values. Said once the events at hand are taken: the COPY's end among them means the
        // server is done (nothing to cancel).
        let mut changed = None;
        let drained = self.take_events(session, &mut changed);
        match changed {
            Some(error) => Err(error),
            None => drained,
        }
    }

    fn take_events(
        &mut self,
        session: &mut Session,
        changed: &mut Option<SessionError>,
    ) -> Result<(), SessionError> {
        while let Some(event) = session.poll_event() {
            match event {
                Event::CopyData(bytes) => {
                    // Copy data resumed after a notice: back to the framer.
                    self.handle_stream_bytes(session, &bytes)?;
                }
                // (The COPY's: not the question's after it.)
                Event::CommandComplete { tag, rows } if tag.starts_with("COPY") => {
                    self.count = rows;
                }
                // The pinned settings asked after it: one a function its query ran set wrote
                // the rows after that otherwise (recheck70 F1).
                Event::Row(row) => {
                    if let Some((name, value)) =
                        (self.asked_after.as_ref()).and_then(|after| after.first_changed(&row))
                    {
                        changed.get_or_insert(SessionError::OutputChanged { name, value });
                    }
                }
                Event::Error(error) => {
                    self.mode = Mode::Ended;
                    // The session goes on to ReadyForQuery by itself; the copy is over.
                    return Err(SessionError::Db(Box::new(error)));
                }
                Event::Failed(error) | Event::Closed(error) => {
                    self.mode = Mode::Ended;
                    return Err(error);
                }
                Event::Ready(_) => {
                    self.mode = Mode::Ended;
                    let count = self.count;
                    self.end(count);
                }
                Event::ParameterChanged { name, value } if self.shapes_data(&name) => {
                    changed.get_or_insert(SessionError::OutputChanged { name, value });
                }
                // Notices, other parameter changes and notifications do not stop the COPY.
                _ => {}
            }
        }
        Ok(())
    }

    /// Whether the server setting `name` shapes this COPY's data: its encoding, and a text
    /// COPY's dates, intervals and timestamps (a binary COPY's are the same in every style).
    fn shapes_data(&self, name: &str) -> bool {
        let styles = ["DateStyle", "IntervalStyle", "TimeZone"];
        name.eq_ignore_ascii_case("client_encoding")
            || (self.text && styles.iter().any(|s| s.eq_ignore_ascii_case(name)))
    }

    /// The next item, if one is ready; `None` means read more from the socket (or, after
    /// [`SourceItem::End`], nothing more will come).
    pub fn poll_item(&mut self) -> Option<SourceItem> {
        self.items.pop_front()
    }

    /// Whether the COPY OUT is over.
    pub fn is_ended(&self) -> bool {
        self.mode == Mode::Ended && self.items.is_empty()
    }

    /// Aborts the COPY OUT and says what the caller must still do to have the session ready.
    ///
    /// * The COPY's end was already read (perhaps with items not yet taken): nothing, the session
    ///   took its ReadyForQuery. A connection that is gone: nothing either.
    /// * A failure (the server's error) ended the COPY: drain, no cancel — the server is already
    ///   on its way to ReadyForQuery.
    /// * The server is still streaming: the session gets what it needs to parse the rest of the
    ///   stream from a message boundary (realignment) and switches to draining; drain after a
    ///   cancel.
    ///
    /// # Errors
    /// The session's, if it cannot drain.
    pub fn abort(&mut self, session: &mut Session) -> Result<Abort, SessionError> {
        self.items.clear();
        if self.end_seen || matches!(session.state(), State::Closed | State::Failed) {
            self.mode = Mode::Ended;
            return Ok(Abort::Done);
        }
        if self.mode == Mode::Ended {
            return Ok(Abort::Drain { cancel: false });
        }
        let resume = match self.mode {
            Mode::Stream => realign::resume(self.framer.position()),
            // The session already holds the stream at a message boundary.
            _ => realign::Resume::default(),
        };
        self.mode = Mode::Ended;
        session.abort_copy_out(resume.as_slice())?;
        Ok(Abort::Drain { cancel: true })
    }
}
