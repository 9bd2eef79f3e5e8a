//! One raw connection's operations, sans IO: the endpoint machine both adapters pump.
//!
//! An [`Endpoint`] owns a connection's [`Session`] and knows what each operation means on it:
//! a statement (its rows, its count, its error), the start of a COPY, the end of a COPY IN
//! (CopyDone and the server's verdict, or CopyFail after realigning the frame the server is
//! inside), the drain of an aborted COPY OUT (with a cancel, when the server still streams),
//! the server's error noticed in the middle of a COPY IN, and what dropping an endpoint in the
//! middle of its COPY must do. An adapter only moves bytes:
//!
//! ```text
//! loop {
//!     let step = endpoint.poll();
//!     while let Some(bytes) = endpoint.poll_transmit() { write all of bytes }
//!     match step {
//!         Step::Read => read the socket into endpoint.handle_input (EOF: handle_eof),
//!         Step::SendCancel => send session().cancel_request() on a new connection,
//!         Step::Done(outcome) => return outcome,
//!     }
//! }
//! ```
//!
//! The COPY data itself never goes through the endpoint: the producer's bytes go from the socket
//! to a [`CopyOutSource`], the receivers' straight from the manager
//! to their sockets.

use bytes::Bytes;
use copyman_wire::realign::Completion;

use crate::ready::{ReadyWait, WaitStep};
use crate::session::{Event, QUERY_CANCELED, Session, SessionError, State};
use crate::source::{Abort as SourceAbort, CopyOutSource};
use crate::start::{CopyStart, StartStep, Started};
use crate::statement::Direction;

/// What the adapter does next ([`Endpoint::poll`]), once it has written out
/// [`Endpoint::poll_transmit`] (a poll may queue bytes: a statement that starts after an
/// abandoned operation ended).
#[derive(Debug)]
#[must_use]
// An outcome is moved once per operation, never per row.
#[allow(clippy::large_enum_variant)]
pub enum Step {
    /// Read from the socket and hand the bytes to [`Endpoint::handle_input`] (its end to
    /// [`Endpoint::handle_eof`]); then poll again.
    Read,
    /// Send the session's [`cancel_request`](Session::cancel_request) on a new connection to the
    /// same server; then poll again.
    SendCancel,
    /// The operation is over.
    Done(Result<Outcome, SessionError>),
}

/// A row of a statement's result, as text (`None` for NULL).
pub type Row = Vec<Option<String>>;

/// What an operation gave.
#[derive(Debug, Default)]
#[non_exhaustive]
pub enum Outcome {
    /// Nothing to report: the session is ready (a drain, a CopyFail, a wait).
    #[default]
    Ready,
    /// A statement ran: its rows (text, `None` for NULL) and the count its last command tag ends
    /// with (`INSERT 0 5` → 5).
    Statement {
        /// The rows.
        rows: Vec<Row>,
        /// The count of the last command tag that has one.
        count: Option<u64>,
    },
    /// A COPY started ([`Endpoint::start_copy`]).
    Started(Box<Started>),
    /// A COPY IN completed ([`Endpoint::complete_copy`]) with its `COPY n`.
    Completed(Option<u64>),
}

/// What an adapter must do with an endpoint dropped in the middle of its COPY
/// ([`Endpoint::abandon_copy_in`], [`Endpoint::abandon_copy_out`]).
#[derive(Debug, PartialEq, Eq)]
#[must_use]
pub enum Abandon {
    /// Nothing: no COPY runs, or its end is already on its way.
    Nothing,
    /// Write these bytes without blocking (they realign the frame and fail the COPY); if they do
    /// not all go out now, close the socket.
    Write(Bytes),
    /// Send the session's cancel request from the background (the session drains the COPY OUT;
    /// the connection's next operation waits for the rest); close the socket if that cannot be
    /// done.
    Cancel,
    /// Close the socket: the server then aborts the COPY and the transaction around it.
    Close,
}

/// The reason a dropped COPY IN gives the server.
pub const DROPPED: &str = "copyman: the copy was dropped before it finished";

/// Why copyman closed a connection whose COPY FROM STDIN it had to abandon ([`Abandon::Close`]):
/// both adapters' `Error::Closed` say it, in these words, on every later call. Said of every
/// such close — a copy that failed there (its server gone, a stall, an error), was given up or
/// was dropped — not only of a drop (lib46 F2: a destination whose server shut down was said to
/// have been "abandoned", as if the caller's code had dropped it).
pub const ABANDONED_COPY_IN: &str = "its COPY FROM STDIN ended midway (the copy failed there, or \
     was given up or dropped) and could not be failed on the connection, so copyman closed it: \
     nothing of it commits";

/// Why copyman closed a connection whose server took no byte of its COPY FROM STDIN for the
/// copy's stall timeout: given up without waiting for an answer (a CopyFail's, a ROLLBACK's)
/// that a frozen network path holds back as long as it is frozen; the server ends the
/// transaction once it hears of the close.
pub const STALLED_COPY_IN: &str =
    "its server took no byte of a COPY FROM STDIN for the stall timeout";

/// Why copyman closed a connection whose server sent no byte of its COPY TO STDOUT for the
/// copy's stall timeout, as [`STALLED_COPY_IN`]: a cancel's answer would wait as long as a
/// frozen path is frozen.
pub const STALLED_COPY_OUT: &str =
    "its server sent no byte of a COPY TO STDOUT for the stall timeout";

/// Why copyman closed a connection whose server, at the end of a copy, had not read all the data
/// it was sent and read no more of it for the stall timeout (its `pg_stat_progress_copy`, a
/// watchdog's look): its backend frozen, or the network path to it lost — a wait for its answer
/// that nothing else bounds (the end of a COPY is never timed: its answer may take long).
pub const STALLED_UNREAD: &str = "its server read no more of the COPY data it was sent for the \
     stall timeout, and had not read it all (its backend frozen, the network path to it lost, or \
     one row taking it longer than that)";

/// Why copyman closed a connection interrupted while it waited for its server, which then moved
/// no byte for the interrupt's grace ([`crate::stall::GraceExpired`]): given up, as
/// [`STALLED_COPY_IN`], since whatever is sent next (a ROLLBACK) would wait on the same silent
/// socket; the server ends the transaction once it hears of the close.
pub const GIVEN_UP_AFTER_INTERRUPT: &str =
    "its server moved no byte for the interrupt's grace: given up";

/// Why copyman closed a connection whose COPY TO STDOUT it had to abandon ([`Abandon::Close`]),
/// as [`ABANDONED_COPY_IN`].
pub const ABANDONED_COPY_OUT: &str = "its COPY TO STDOUT ended midway (the copy failed, or was \
     given up or dropped) and could not be cancelled on the connection, so copyman closed it";

/// The most realignment filler an abandon writes without waiting; a larger frame is ended by
/// closing the socket instead.
const ABANDON_LIMIT: u64 = 64 * 1024;

/// What a wait for ReadyForQuery keeps of the events on its way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keep {
    /// Rows, counts and the server's error: a statement whose rows are wanted.
    Results,
    /// Counts and the server's error, not rows: a statement run for its effect, or a CopyDone's
    /// verdict (a large SELECT run with `execute` must not fill memory with rows nobody reads).
    Count,
    /// Nothing: the operation's outcome is decided already (a drain, a CopyFail's 57014).
    Nothing,
    /// A failed COPY IN's answer, where it ended on a frame's boundary: nothing but an error of
    /// the server's own — one it raised on the rows before the CopyFail reached it (a duplicate
    /// key the copy had not read yet, blocked writing elsewhere), not the CopyFail's echo
    /// (57014, quoting the CopyFail's reason; a 57014 of its own, a statement timeout, is its
    /// own). Said, the destination is told failed of it, not rolled back for the others
    /// (files42 F4).
    OwnError,
}

#[derive(Debug)]
enum Op {
    Idle,
    Wait {
        wait: ReadyWait,
        keep: Keep,
        rows: Vec<Row>,
        count: Option<u64>,
        error: Option<SessionError>,
        /// Reported once the session is ready: the server failed the COPY IN before CopyDone.
        then_fail: Option<SessionError>,
        completed: bool,
        /// Send a cancel before anything else (a COPY OUT that still streams).
        cancel_first: bool,
    },
    Start(CopyStart),
}

/// Zero bytes of realignment filler, sent a slice at a time.
static ZEROS: [u8; 8192] = [0; 8192];

/// A raw connection's session with the operation running on it. See the [module](self).
#[derive(Debug)]
pub struct Endpoint {
    session: Session,
    op: Op,
    /// An operation asked for while the session still finished an abandoned one.
    next: Option<Pending>,
    /// Bytes to send before the session's own (a realignment header).
    realign: Option<Bytes>,
    /// Zero bytes of realignment filler still to send after `realign`.
    filler: u64,
    /// During a COPY IN: the server ended it with this error; nothing sent since counts.
    copy_in_error: Option<SessionError>,
    /// The COPY is being failed: its realignment went to the transmit queue (and a CopyFail, if
    /// the server was still copying); an abandon must not send them again.
    failing: bool,
    /// The reason of the last CopyFail sent: the server's echo of it (57014, its message quoting
    /// the reason) is no error of its own; a 57014 that does not quote it is (a statement timeout
    /// or a cancel of the destination's own that beat the CopyFail).
    fail_reason: String,
    /// Reads taken ([`Endpoint::handle_input`], [`Endpoint::handle_eof`]).
    reads: u64,
    /// What became of an operation abandoned under way that the next one waited for
    /// ([`Endpoint::take_abandoned`]).
    abandoned: Option<Result<Option<u64>, SessionError>>,
}

#[derive(Debug)]
enum Pending {
    Query(String, Keep),
    Start(String, Direction),
}

/// Refuses a statement that reads as one COPY of either direction before it is sent: the
/// server would start it, the session make it give it up, and a transaction around it abort.
fn refuse_copy(sql: &str) -> Result<(), SessionError> {
    for direction in [Direction::ToStdout, Direction::FromStdin] {
        if crate::statement::check(sql, direction).is_ok() {
            return Err(SessionError::CopyNotSent {
                got: direction.describe(),
            });
        }
    }
    Ok(())
}

impl Endpoint {
    /// An endpoint on a session (connected or still in its startup).
    pub fn new(session: Session) -> Self {
        Self {
            session,
            op: Op::Idle,
            next: None,
            realign: None,
            filler: 0,
            copy_in_error: None,
            failing: false,
            fail_reason: String::new(),
            reads: 0,
            abandoned: None,
        }
    }

    /// What became of an operation its caller abandoned under way (an endpoint dropped after its
    /// COPY's CopyDone went out: a copy dropped during its finish), as the next operation read
    /// it while it waited for its end: `Ok(Some(n))` its count (`COPY n`: in autocommit, those
    /// rows are committed), `Err` the server's error that ended it (nothing of it committed).
    /// `None` when none ended so since the last call, or nothing more than its end is known (a
    /// COPY failed on its drop). The connection read it and went on: without this it was
    /// thrown away, and the caller could not tell a committed COPY from a failed one (lib62
    /// F1).
    pub fn take_abandoned(&mut self) -> Option<Result<Option<u64>, SessionError>> {
        self.abandoned.take()
    }

    /// The session underneath.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The session underneath, for what the endpoint does not decide (a COPY OUT's data path).
    pub fn session_mut(&mut self) -> &mut Session {
        &mut self.session
    }

    /// Bytes to write to the socket, in order, until `None` (never empty).
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        if let Some(header) = self.realign.take() {
            return Some(header);
        }
        if self.filler > 0 {
            let n = usize::try_from(self.filler)
                .unwrap_or(usize::MAX)
                .min(ZEROS.len());
            self.filler -= n as u64;
            return Some(Bytes::from_static(&ZEROS[..n]));
        }
        self.session.poll_transmit()
    }

    /// Bytes read from the socket.
    ///
    /// # Errors
    /// The session's terminal error (a protocol violation, a FATAL error).
    pub fn handle_input(&mut self, bytes: &[u8]) -> Result<(), SessionError> {
        self.reads += 1;
        self.session.handle_input(bytes)
    }

    /// The socket's end (EOF, or a failed read: the connection is gone).
    pub fn handle_eof(&mut self) {
        self.reads += 1;
        self.session.handle_eof();
    }

    /// How many reads (bytes, or the socket's end) the endpoint has taken: a caller that read
    /// while it wrote (copyman-sync waits to write and reads at once) knows by it that a
    /// [`Step::Read`] polled before may already be answered, and polls again.
    pub fn reads(&self) -> u64 {
        self.reads
    }

    /// Waits for the session to be ready: the end of the startup, or of whatever runs.
    pub fn wait_ready(&mut self) {
        self.op = Self::wait(Keep::Nothing);
    }

    /// Runs `sql` (simple query): [`Outcome::Statement`], or the server's error.
    ///
    /// # Errors
    /// The session is closed, `sql` holds a NUL byte, or it reads as a COPY of either
    /// direction ([`SessionError::CopyNotSent`]: a COPY runs as a copy's endpoint).
    pub fn query(&mut self, sql: &str) -> Result<(), SessionError> {
        refuse_copy(sql)?;
        self.begin(Pending::Query(sql.to_owned(), Keep::Results))
    }

    /// Runs `sql` for its effect: [`Outcome::Statement`] with the count and no rows (they are
    /// read and dropped), or the server's error.
    ///
    /// # Errors
    /// As [`Endpoint::query`].
    pub fn execute(&mut self, sql: &str) -> Result<(), SessionError> {
        refuse_copy(sql)?;
        self.begin(Pending::Query(sql.to_owned(), Keep::Count))
    }

    /// Sends a COPY statement (checked first: nothing is sent for a statement of the wrong
    /// kind) and follows it to the start of its COPY: [`Outcome::Started`].
    ///
    /// # Errors
    /// A statement of the wrong kind; the session is closed.
    pub fn start_copy(&mut self, sql: &str, direction: Direction) -> Result<(), SessionError> {
        self.begin(Pending::Start(sql.to_owned(), direction))
    }

    /// The server's words in the middle of a COPY IN, read since the last call (after
    /// [`Endpoint::handle_input`]): an error ends the COPY, and every later call reports it
    /// again, since the server ignores whatever is sent after it.
    ///
    /// # Errors
    /// The server's error that ended the COPY, or the end of the connection.
    pub fn copy_in_status(&mut self) -> Result<(), SessionError> {
        if self.copy_in_error.is_none() {
            while let Some(event) = self.session.poll_event() {
                match event {
                    Event::Error(e) => {
                        self.copy_in_error
                            .get_or_insert(SessionError::Db(Box::new(e)));
                    }
                    Event::Closed(e) => {
                        self.copy_in_error.get_or_insert(e);
                    }
                    // Notices stay queued on the session; the rest does not matter mid-COPY.
                    _ => {}
                }
            }
        }
        self.copy_in_error.clone().map_or(Ok(()), Err)
    }

    /// Ends the COPY IN: CopyDone, then the server's verdict, [`Outcome::Completed`] with its
    /// `COPY n`, or its error. A COPY the server already failed reports that error, once the
    /// session is ready again.
    ///
    /// # Errors
    /// The session is closed, or no COPY IN runs.
    pub fn complete_copy(&mut self) -> Result<(), SessionError> {
        let failed = self.copy_in_status().err();
        self.copy_in_error = None;
        if failed.is_none() {
            self.session.copy_done()?;
        }
        let mut op = Self::wait(Keep::Count);
        if let Op::Wait {
            then_fail,
            completed,
            ..
        } = &mut op
        {
            *then_fail = failed;
            *completed = true;
        }
        self.op = op;
        Ok(())
    }

    /// Whether the answer to this COPY IN's CopyDone is its commit: its session was in no
    /// transaction block when the COPY began (autocommit). Then only that answer says whether
    /// the rows committed, and it is waited for whatever comes; inside a transaction it commits
    /// nothing, and an interrupt may give its wait up as any other (the transaction's end says).
    ///
    /// ```
    /// use copyman_core::endpoint::Endpoint;
    /// use copyman_core::session::{Session, StartupConfig};
    ///
    /// // Before any ReadyForQuery the session is taken as idle: its COPY would autocommit.
    /// let endpoint = Endpoint::new(Session::new(StartupConfig::new("postgres")));
    /// assert!(endpoint.completion_commits());
    /// ```
    pub fn completion_commits(&self) -> bool {
        self.session.transaction_status() == crate::session::TransactionStatus::Idle
    }

    /// Fails the COPY IN so that nothing of it is kept: finishes the frame the server is inside
    /// (`completion`, the realignment of the data sent so far), then CopyFail with `reason`, then
    /// waits for the server's answer (57014, expected and not reported; where no frame had to be
    /// finished, an error the server raised of its own before the CopyFail reached it, which
    /// the COPY's status had not reported yet, is the outcome: the COPY failed of it — after a
    /// filler, an error may be the filler's). A COPY the server
    /// already failed only gets its frame finished (the server drops it) and the server's
    /// ReadyForQuery waited for; on a connection that is gone nothing is done.
    ///
    /// # Errors
    /// `reason` holds a NUL byte.
    pub fn fail_copy(&mut self, reason: &str, completion: &Completion) -> Result<(), SessionError> {
        self.copy_in_error = None;
        let state = self.session.state();
        if matches!(state, State::Closed | State::Failed) {
            self.op = Op::Idle;
            return Ok(());
        }
        // A frame sent in part is finished first, whatever the server made of the COPY: it reads
        // CopyData as whole messages (and drops them once it failed the COPY), so without the
        // rest it would take what comes next, a CopyFail or the next statement, for it.
        let header = completion.header();
        self.realign = (!header.is_empty()).then(|| Bytes::copy_from_slice(header));
        self.filler = completion.filler;
        self.failing = true;
        let abandoned_start = matches!(self.op, Op::Start(_));
        match state {
            State::CopyIn => {
                self.session.copy_fail(reason)?;
                self.fail_reason = crate::session::copy_fail_reason(reason).into_owned();
            }
            // The server failed the COPY and is ready: only the realignment goes out.
            State::Ready => {
                self.op = Op::Idle;
                return Ok(());
            }
            _ => {}
        }
        // An error of the server's own is its outcome only where no frame was finished: the
        // filler is data the server reads (zeros, refused as 22021 or a bad binary field
        // before the CopyFail is read), so an error after it may be copyman's own doing
        // (recheck42b F2: a destination that did nothing wrong was said failed of it).
        let keep = match completion.is_empty() {
            true => Keep::OwnError,
            false => Keep::Nothing,
        };
        self.op = Self::wait(keep);
        if abandoned_start {
            self.cancel_abandoned_start();
        }
        Ok(())
    }

    /// Waits for a COPY OUT the [`CopyOutSource`] aborted to
    /// drain, after a cancel if `cancel` (the server still streams).
    pub fn drain_copy_out(&mut self, cancel: bool) {
        self.op = Self::wait(Keep::Nothing);
        if let Op::Wait { cancel_first, .. } = &mut self.op {
            *cancel_first = cancel;
        }
    }

    /// What to do with the connection when its COPY IN endpoint is dropped midway: only CopyDone
    /// commits a COPY, so it must be failed — by writing its realignment and a CopyFail now,
    /// without waiting (the connection's next operation reads the answer), or by closing the
    /// socket when that cannot be done at once (`flushed`: no message is half written to the
    /// socket — what waits in [`Endpoint::poll_transmit`] is whole messages, which the next
    /// operation sends first; `completion`: the realignment of the CopyData sent).
    pub fn abandon_copy_in(&mut self, completion: &Completion, flushed: bool) -> Abandon {
        match self.session.state() {
            State::Closed | State::Failed => Abandon::Nothing,
            // The server failed the COPY already (it is ready, or its ReadyForQuery is on the
            // way) and drops CopyData as whole messages: a frame sent in part is finished, or
            // the next statement would be taken for the rest of it.
            State::Ready | State::Query if !self.failing && !completion.is_empty() => {
                match completion.len() > ABANDON_LIMIT || !flushed {
                    true => Abandon::Close,
                    false => Abandon::Write(completion.to_vec().into()),
                }
            }
            State::Ready => Abandon::Nothing,
            State::CopyIn if !self.failing => {
                if completion.len() > ABANDON_LIMIT || !flushed {
                    return Abandon::Close;
                }
                if self.session.copy_fail(DROPPED).is_err() {
                    return Abandon::Close;
                }
                let mut bytes = completion.to_vec();
                while let Some(message) = self.session.poll_transmit() {
                    bytes.extend_from_slice(&message);
                }
                Abandon::Write(bytes.into())
            }
            // Its COPY statement went out and the server has not answered (a lock it waits
            // for): it would start the COPY once it can and wait for data for as long as the
            // connection is not used again, holding its locks and transaction. Closed.
            State::Query if matches!(self.op, Op::Start(_)) => Abandon::Close,
            // The server already failed the COPY, or a CopyDone or CopyFail went out whole: the
            // next operation reads the answer.
            State::Query | State::CopyInEnding if flushed => Abandon::Nothing,
            _ => Abandon::Close,
        }
    }

    /// What to do with the connection when its COPY OUT producer is dropped midway, where
    /// nothing can be waited for: the session is switched to draining (`source`, the producer's
    /// source if its COPY started, tells where the stream stands), and a server that still
    /// streams must be cancelled.
    pub fn abandon_copy_out(&mut self, source: Option<&mut CopyOutSource>) -> Abandon {
        if matches!(
            self.session.state(),
            State::Ready | State::Closed | State::Failed | State::Draining
        ) {
            return Abandon::Nothing;
        }
        let step = match source {
            Some(source) => source.abort(&mut self.session),
            None => self
                .session
                .abort_copy_out(&[])
                .map(|()| SourceAbort::Drain { cancel: true }),
        };
        match step {
            Ok(SourceAbort::Done | SourceAbort::Drain { cancel: false }) => Abandon::Nothing,
            Ok(SourceAbort::Drain { cancel: true }) => Abandon::Cancel,
            Err(_) => Abandon::Close,
        }
    }

    /// The next thing to do for the operation under way.
    pub fn poll(&mut self) -> Step {
        loop {
            let step = match &mut self.op {
                Op::Idle => return Step::Done(Ok(Outcome::Ready)),
                Op::Start(start) => match start.poll(&mut self.session) {
                    Ok(StartStep::Started(started)) => {
                        self.copy_in_error = None;
                        self.failing = false;
                        Step::Done(Ok(Outcome::Started(Box::new(started))))
                    }
                    Ok(StartStep::SendCancel) => return Step::SendCancel,
                    Ok(_) => return Step::Read,
                    Err(e) => Step::Done(Err(e)),
                },
                Op::Wait { cancel_first, .. } if *cancel_first => {
                    *cancel_first = false;
                    return Step::SendCancel;
                }
                Op::Wait {
                    wait,
                    keep,
                    rows,
                    count,
                    error,
                    then_fail,
                    completed,
                    ..
                } => match wait.poll(&mut self.session) {
                    // A COPY IN nobody wants any more started all the same (its start was
                    // abandoned while the statement waited): it is failed, not fed.
                    WaitStep::Event(Event::CopyInStarted { .. }) if *keep == Keep::Nothing => {
                        match self.session.copy_fail(DROPPED) {
                            Ok(()) => continue,
                            Err(e) => Step::Done(Err(e)),
                        }
                    }
                    WaitStep::Event(event) => {
                        match (&*keep, event) {
                            (Keep::Nothing, _) => {}
                            (Keep::OwnError, Event::Error(e))
                                if e.code != QUERY_CANCELED
                                    || !e.message.contains(self.fail_reason.as_str()) =>
                            {
                                *error = Some(SessionError::Db(Box::new(e)));
                            }
                            (Keep::OwnError, _) => {}
                            (Keep::Results, Event::Row(row)) => rows.push(row),
                            (_, Event::CommandComplete { rows: Some(n), .. }) => *count = Some(n),
                            (_, Event::Error(e)) => *error = Some(SessionError::Db(Box::new(e))),
                            _ => {}
                        }
                        continue;
                    }
                    WaitStep::SendCancel => return Step::SendCancel,
                    WaitStep::Done(Err(e)) => Step::Done(Err(e)),
                    WaitStep::Done(Ok(())) => {
                        let result = match (then_fail.take(), error.take()) {
                            (Some(e), _) | (None, Some(e)) => Err(e),
                            _ if *completed => Ok(Outcome::Completed(*count)),
                            _ if matches!(keep, Keep::Results | Keep::Count) => {
                                Ok(Outcome::Statement {
                                    rows: std::mem::take(rows),
                                    count: *count,
                                })
                            }
                            _ => Ok(Outcome::Ready),
                        };
                        Step::Done(result)
                    }
                    // The session is already ready (its ReadyForQuery was read with the error
                    // that ended a COPY IN): nothing more will come.
                    _ if matches!(self.session.state(), State::Ready)
                        && matches!(keep, Keep::Nothing | Keep::OwnError) =>
                    {
                        Step::Done(error.take().map_or(Ok(Outcome::Ready), Err))
                    }
                    _ if matches!(self.session.state(), State::Ready) && then_fail.is_some() => {
                        Step::Done(Err(then_fail.take().expect("checked")))
                    }
                    _ => return Step::Read,
                },
            };
            self.op = Op::Idle;
            if self.session.state() == State::Ready
                && let Some(next) = self.next.take()
            {
                // The abandoned operation is over, its outcome kept for whoever asks
                // ([`Endpoint::take_abandoned`]): the one asked for starts now.
                self.abandoned = match step {
                    Step::Done(Ok(Outcome::Completed(n) | Outcome::Statement { count: n, .. })) => {
                        Some(Ok(n))
                    }
                    Step::Done(Err(e)) => Some(Err(e)),
                    _ => None,
                };
                if let Err(e) = self.start(next) {
                    return Step::Done(Err(e));
                }
                continue;
            }
            self.next = None;
            return step;
        }
    }

    fn wait(keep: Keep) -> Op {
        Op::Wait {
            wait: ReadyWait::new(),
            keep,
            rows: Vec::new(),
            count: None,
            error: None,
            then_fail: None,
            completed: false,
            cancel_first: false,
        }
    }

    /// Starts `op` now, or once an operation whose outcome nobody wants any more (abandoned by a
    /// dropped endpoint) has finished.
    fn begin(&mut self, op: Pending) -> Result<(), SessionError> {
        if let State::Query | State::CopyInEnding | State::Draining = self.session.state() {
            let abandoned_start = matches!(self.op, Op::Start(_));
            // A wait under way goes on (a CopyDone's: the count or the error it ends with is
            // kept, [`Endpoint::take_abandoned`]), without the rows nobody will read; anything
            // else is waited out.
            match &mut self.op {
                Op::Wait { keep, rows, .. } => {
                    if *keep == Keep::Results {
                        *keep = Keep::Count;
                        rows.clear();
                    }
                }
                _ => self.op = Self::wait(Keep::Nothing),
            }
            if abandoned_start {
                self.cancel_abandoned_start();
            }
            self.next = Some(op);
            return Ok(());
        }
        self.start(op)
    }

    /// The op under way (a wait now) ends a COPY whose start was abandoned while its statement
    /// waited for the server (a table another session locked, first rows that take long: the
    /// stall rule gave up on it): nobody wants that COPY, so the server is cancelled rather than
    /// waited for. A COPY TO STDOUT that starts all the same is drained, a COPY FROM STDIN
    /// failed ([`Endpoint::poll`]).
    fn cancel_abandoned_start(&mut self) {
        if self.session.state() != State::Query {
            return;
        }
        // Refused (and nothing done) unless the statement is a COPY TO STDOUT's.
        let _ = self.session.abort_copy_out(&[]);
        if let Op::Wait { cancel_first, .. } = &mut self.op {
            *cancel_first = true;
        }
    }

    fn start(&mut self, op: Pending) -> Result<(), SessionError> {
        // Events of an earlier operation (say its ReadyForQuery, read together with the error
        // that ended a COPY) must not be taken for this one's.
        if self.session.state() == State::Ready {
            while self.session.poll_event().is_some() {}
        }
        self.op = match op {
            Pending::Query(sql, keep) => {
                self.session.query(&sql)?;
                Self::wait(keep)
            }
            Pending::Start(sql, direction) => {
                Op::Start(CopyStart::begin(&mut self.session, &sql, direction)?)
            }
        };
        Ok(())
    }
}
