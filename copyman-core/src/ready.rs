//! Following a session to its next ReadyForQuery: what each event on the way means, decided once
//! for both adapters.
//!
//! A statement that starts a COPY TO STDOUT nobody reads (a raw `execute("COPY big TO STDOUT")`,
//! a COPY in the wrong direction) is cancelled, not read to its end: the session asks for it
//! with [`Event::CancelNeeded`], and [`ReadyWait::poll`] turns that into
//! [`WaitStep::SendCancel`], which an adapter cannot mistake for an event to pass on.

use crate::session::{Event, Session, SessionError, State};

/// What the caller of [`ReadyWait::poll`] must do next.
#[derive(Debug)]
#[must_use]
#[non_exhaustive]
// `Event` is as large as the session's own events (a `DbError` inline): moved once per server
// message, never per CopyData frame; boxing it would allocate for every row of a query.
#[allow(clippy::large_enum_variant)]
pub enum WaitStep {
    /// An event of the operation for the caller: a row, a command tag, the server's error, a
    /// notice, a parameter change. Poll again.
    Event(Event),
    /// Send the session's cancel request on a new connection, then poll again.
    SendCancel,
    /// Write what the session has to send, read the socket into the session, then poll again.
    ReadMore,
    /// The session is ready again: `Ok`, or the operation's failure on the client side (a COPY
    /// in the wrong direction, no COPY at all, [`SessionError::UnexpectedCopy`]). `Err` also when
    /// the connection closed ([`Event::Closed`]).
    Done(Result<(), SessionError>),
}

/// Follows a session to its next ReadyForQuery (the end of startup or of an operation).
///
/// ```no_run
/// use copyman_core::ready::{ReadyWait, WaitStep};
/// use copyman_core::session::Session;
/// # fn io(_: &mut Session) {}
/// # fn cancel(_: &Session) {}
/// # fn f(session: &mut Session) -> Result<(), copyman_core::session::SessionError> {
/// let mut wait = ReadyWait::new();
/// loop {
///     match wait.poll(session) {
///         WaitStep::Event(event) => println!("{event:?}"),
///         WaitStep::SendCancel => cancel(session),
///         WaitStep::ReadMore => io(session),
///         WaitStep::Done(result) => break result,
///         _ => unreachable!(),
///     }
/// }
/// # }
/// ```
#[derive(Debug, Default)]
pub struct ReadyWait {
    failure: Option<SessionError>,
}

impl ReadyWait {
    /// A wait that starts now.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the session's next event and says what to do.
    pub fn poll(&mut self, session: &mut Session) -> WaitStep {
        loop {
            let Some(event) = session.poll_event() else {
                return WaitStep::ReadMore;
            };
            return match event {
                Event::Ready(_) => WaitStep::Done(self.failure.take().map_or(Ok(()), Err)),
                Event::Closed(e) => WaitStep::Done(Err(e)),
                // Failed on our side: go on to ReadyForQuery, then report it.
                Event::Failed(e) => {
                    self.failure.get_or_insert(e);
                    continue;
                }
                // A COPY OUT nobody reads: the server must stop it (reading it all could take
                // hours), so the session drains it after a cancel. Not once its end was read
                // already (its ReadyForQuery came with it): a cancel then has nothing to stop,
                // and one sent late could meet the session's next statement.
                Event::CancelNeeded if session.state() == State::Ready => continue,
                Event::CancelNeeded => WaitStep::SendCancel,
                other => WaitStep::Event(other),
            };
        }
    }
}
