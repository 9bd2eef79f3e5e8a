//! Getting a COPY started: the statement checked and sent, then the session followed to its
//! CopyOutResponse or CopyInResponse — or to the reason there is none.
//!
//! Both adapters start both directions through [`CopyStart`], so what the session's events mean
//! at the start of a COPY is decided once; the adapters only write, read and send cancels.

use bytes::BytesMut;

use crate::ReceiverId;
use crate::session::{CopyFormat, Event, Session, SessionError};
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
    /// The overall format the server announced in its CopyOutResponse or CopyInResponse.
    pub format: Option<CopyFormat>,
}

/// A receiver's COPY does not take the format its producer's COPY sends.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the COPY FROM STDIN takes {receiver} data but the COPY TO STDOUT sends {producer} data: \
     give both the same FORMAT (text and csv go together, binary only with binary)"
)]
pub struct FormatMismatch {
    /// What the producer's COPY sends: `text` (text or CSV) or `binary`.
    pub producer: &'static str,
    /// What the receiver's COPY takes.
    pub receiver: &'static str,
}

fn format_name(format: CopyFormat) -> &'static str {
    match format {
        CopyFormat::Binary => "binary",
        _ => "text",
    }
}

/// The receivers whose COPY's format differs from the producer's, as their servers announced
/// them once every COPY started and before any data is sent: text (or CSV) data in a binary
/// COPY, or binary data in a text one, is refused, or worse, stored as something else. An
/// endpoint that does not know its format (`None`: files, callbacks, client-bound endpoints)
/// is not compared.
///
/// ```
/// use copyman_core::ReceiverId;
/// use copyman_core::session::CopyFormat;
/// use copyman_core::start::check_formats;
///
/// let receivers = [(ReceiverId(0), Some(CopyFormat::Text)), (ReceiverId(1), Some(CopyFormat::Binary))];
/// let refused = check_formats(Some(CopyFormat::Text), receivers);
/// assert_eq!(refused.len(), 1);
/// assert_eq!(refused[0].0, ReceiverId(1));
/// ```
pub fn check_formats(
    producer: Option<CopyFormat>,
    receivers: impl IntoIterator<Item = (ReceiverId, Option<CopyFormat>)>,
) -> Vec<(ReceiverId, FormatMismatch)> {
    let Some(producer) = producer else {
        return Vec::new();
    };
    receivers
        .into_iter()
        .filter_map(|(id, format)| {
            let format = format?;
            (format != producer).then(|| {
                (
                    id,
                    FormatMismatch {
                        producer: format_name(producer),
                        receiver: format_name(format),
                    },
                )
            })
        })
        .collect()
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
    format: Option<CopyFormat>,
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
            format: None,
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
                Event::CopyOutStarted { format, .. } | Event::CopyInStarted { format, .. } => {
                    self.started = true;
                    self.format = Some(format);
                }
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
                        format: self.format,
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
                format: self.format,
            }))
        } else {
            Ok(StartStep::ReadMore)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_must_agree_when_known() {
        let text = Some(CopyFormat::Text);
        let binary = Some(CopyFormat::Binary);
        let receivers = [
            (ReceiverId(0), text),
            (ReceiverId(1), binary),
            (ReceiverId(2), None),
        ];
        assert_eq!(
            check_formats(text, receivers),
            [(
                ReceiverId(1),
                FormatMismatch {
                    producer: "text",
                    receiver: "binary"
                }
            )]
        );
        let refused = check_formats(binary, receivers);
        assert_eq!(
            refused.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
            [ReceiverId(0)]
        );
        assert_eq!(
            refused[0].1.to_string(),
            "the COPY FROM STDIN takes text data but the COPY TO STDOUT sends binary data: give \
             both the same FORMAT (text and csv go together, binary only with binary)"
        );
        // A producer that does not know its format is not compared.
        assert!(check_formats(None, receivers).is_empty());
    }
}
