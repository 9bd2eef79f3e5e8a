//! Getting a COPY started: the statement checked and sent, then the session followed to its
//! CopyOutResponse or CopyInResponse — or to the reason there is none.
//!
//! Both adapters start both directions through [`CopyStart`], so what the session's events mean
//! at the start of a COPY is decided once; the adapters only write, read and send cancels.

use bytes::BytesMut;

use crate::session::{Event, Session, SessionError};
use crate::statement::{self, Direction};

/// What the caller must do for a [`CopyStart`] to go on.
#[derive(Debug)]
#[must_use]
#[non_exhaustive]
pub enum StartStep {
    /// Write what the session has to send, read the socket into the session, then poll again.
    ReadMore,
    /// Send the session's cancel request on a new connection, then poll again.
    SendCancel,
    /// The COPY started.
    Started(Started),
}

/// A COPY that started.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Started {
    /// COPY OUT stream bytes the session read past the CopyOutResponse.
    pub early: Option<BytesMut>,
    /// A COPY OUT that ended in the same read as its start (no rows): its `COPY n`.
    pub ended: Option<Option<u64>>,
}

/// Follows a session from a COPY statement to the start of its COPY.
///
/// ```no_run
/// use copyman_core::session::Session;
/// use copyman_core::start::{CopyStart, StartStep};
/// use copyman_core::statement::Direction;
/// # fn io(_: &mut Session) {}
/// # fn f(session: &mut Session) -> Result<(), copyman_core::session::SessionError> {
/// let mut start = CopyStart::begin(session, "COPY t FROM STDIN", Direction::FromStdin)?;
/// let started = loop {
///     match start.poll(session)? {
///         StartStep::ReadMore => io(session), // flush the session's output, read into it
///         StartStep::SendCancel => { /* cancel request on a new connection */ }
///         StartStep::Started(started) => break started,
///         _ => unreachable!(),
///     }
/// };
/// # drop(started); Ok(()) }
/// ```
#[derive(Debug)]
pub struct CopyStart {
    started: bool,
    error: Option<SessionError>,
    early: Option<BytesMut>,
    count: Option<u64>,
}

impl CopyStart {
    /// Checks `sql` for `direction` and, if it is that COPY, queues it on `session`.
    ///
    /// # Errors
    /// [`SessionError::Statement`] for a statement of the wrong kind (nothing is queued), or the
    /// session's error if it cannot run a statement now.
    pub fn begin(
        session: &mut Session,
        sql: &str,
        direction: Direction,
    ) -> Result<Self, SessionError> {
        // Read the statement as this server will: its strings' backslashes depend on it.
        let standard_strings = session.parameter("standard_conforming_strings") != Some("off");
        statement::check_with(sql, direction, standard_strings)?;
        match direction {
            Direction::ToStdout => session.copy_out(sql)?,
            Direction::FromStdin => session.copy_in(sql)?,
        }
        Ok(Self {
            started: false,
            error: None,
            early: None,
            count: None,
        })
    }

    /// Takes the session's events and says what to do next.
    ///
    /// # Errors
    /// Why the COPY did not start: the server's error (a missing table, a permission), a
    /// statement that turned out not to be the expected COPY, a closed connection. The session
    /// is ready again afterwards unless it closed.
    pub fn poll(&mut self, session: &mut Session) -> Result<StartStep, SessionError> {
        while let Some(event) = session.poll_event() {
            match event {
                Event::CopyOutStarted { .. } | Event::CopyInStarted { .. } => self.started = true,
                Event::CopyData(bytes) => match &mut self.early {
                    Some(early) => early.extend_from_slice(&bytes),
                    None => self.early = Some(bytes),
                },
                Event::Error(e) => self.error = Some(SessionError::Db(Box::new(e))),
                Event::Failed(e) => self.error = Some(e),
                Event::Closed(e) => return Err(e),
                Event::CancelNeeded => return Ok(StartStep::SendCancel),
                // A COPY OUT of no rows can be over in the read that starts it: the session took
                // its CopyDone, CommandComplete and ReadyForQuery with the CopyOutResponse.
                Event::CommandComplete { rows, .. } if self.started => self.count = rows,
                Event::Ready(_) if self.started && self.error.is_none() => {
                    let early = self.early.take();
                    return Ok(StartStep::Started(Started {
                        early,
                        ended: Some(self.count),
                    }));
                }
                Event::Ready(_) => {
                    return Err(self.error.take().unwrap_or_else(|| {
                        SessionError::protocol("the statement ended without starting a COPY")
                    }));
                }
                // Notices and parameter changes do not matter to the start.
                _ => {}
            }
        }
        if self.started {
            Ok(StartStep::Started(Started {
                early: self.early.take(),
                ended: None,
            }))
        } else {
            Ok(StartStep::ReadMore)
        }
    }
}
