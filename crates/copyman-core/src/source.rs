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
use crate::session::{Event, Session, SessionError};

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
        }
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
        self.handle_read(session, buf)
    }

    /// Handles one read from the socket: `buf[..HEADROOM]` is reserved, the rest was read.
    ///
    /// # Errors
    /// A malformed stream ([`SessionError::Wire`]), or the session's error: the server's
    /// ErrorResponse ([`SessionError::Db`]) ends the COPY OUT.
    pub fn handle_read(
        &mut self,
        session: &mut Session,
        mut buf: BytesMut,
    ) -> Result<(), SessionError> {
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
        while let Some(event) = session.poll_event() {
            match event {
                Event::CopyData(bytes) => {
                    // Copy data resumed after a notice: back to the framer.
                    self.handle_stream_bytes(session, &bytes)?;
                }
                Event::CommandComplete { rows, .. } => self.count = rows,
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
                    self.items.push_back(SourceItem::End { count: self.count });
                }
                // Notices, parameter changes and notifications do not stop the COPY.
                _ => {}
            }
        }
        Ok(())
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

    /// Aborts the COPY OUT: hands the session what it needs to parse the rest of the stream from a
    /// message boundary (realignment) and switches it to draining. The caller also sends the
    /// session's cancel request on a new connection, then reads the socket into the session until
    /// it is ready.
    ///
    /// # Errors
    /// The session's, if it cannot drain (e.g. its connection is closed).
    pub fn abort(&mut self, session: &mut Session) -> Result<(), SessionError> {
        if self.mode == Mode::Ended {
            return Ok(());
        }
        let resume = match self.mode {
            Mode::Stream => realign::resume(self.framer.position()),
            // The session already holds the stream at a message boundary.
            _ => realign::Resume::default(),
        };
        self.mode = Mode::Ended;
        self.items.clear();
        session.abort_copy_out(resume.as_slice())
    }
}
