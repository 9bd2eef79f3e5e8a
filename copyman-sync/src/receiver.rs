//! Receivers: where the COPY data goes.

use std::io::Write;

use bytes::Bytes;
use copyman_core::local::{CallReceiver, CopyInStatement, NullReceiver, completed, lines};
use copyman_core::start::DataFormat;
use copyman_core::statement::Direction;
use copyman_core::{BoxError, Data, Protocol};
use copyman_wire::realign::Completion;

use crate::connection::Connection;
use crate::poll::{READABLE, WRITABLE};
use crate::{Error, Interrupter, PollSocket};

/// A transmit that failed after `written` bytes of its data went out.
#[derive(Debug)]
pub struct TransmitError {
    /// What went wrong.
    pub error: BoxError,
    /// Bytes of the data that were written before the failure.
    pub written: usize,
}

impl<E: Into<BoxError>> From<E> for TransmitError {
    fn from(error: E) -> Self {
        Self {
            error: error.into(),
            written: 0,
        }
    }
}

impl TransmitError {
    fn written(self, written: usize) -> Self {
        Self { written, ..self }
    }
}

/// A destination of COPY data for a [`CopyManager`](crate::CopyManager).
///
/// The manager calls `start` once, `transmit` for each cycle's data (and again with what is still
/// owed when the receiver is reconciled), then exactly one of `complete` or `fail`.
pub trait Receiver {
    /// The protocol of the data it takes.
    fn protocol(&self) -> Protocol;

    /// Starts receiving. The default does nothing, for receivers with nothing to start.
    ///
    /// # Errors
    /// Whatever keeps it from starting; the copy then fails.
    fn start(&mut self) -> Result<(), BoxError> {
        Ok(())
    }

    /// Takes one cycle's data.
    ///
    /// # Errors
    /// A failure, with how much of the data went out: the receiver faults and leaves the copy.
    fn transmit(&mut self, data: &Data) -> Result<(), TransmitError>;

    /// Commits what it received; returns its `COPY n` if it has one.
    ///
    /// Receivers without a server (lines or nothing: [`Protocol::Chunks`], [`Protocol::Null`]:
    /// a file, a writer, a callback) complete before any receiver that commits a server's COPY
    /// (one of PQv3 data, or a client-bound one: [`Receiver::completes_a_server`]), and one
    /// failing there fails those, so that nothing commits anywhere. A receiver of the caller's
    /// that takes PQv3 data is taken for a server's: it completes beside them, and its failure
    /// then comes after theirs may have committed (see the copy's "All or nothing").
    ///
    /// # Errors
    /// The commit failed: the copy fails.
    fn complete(&mut self) -> Result<Option<u64>, BoxError>;

    /// Sends the end of its data (CopyDone) without waiting for the server's answer, so that a
    /// driver ends every receiver's COPY at once and their servers finish them side by side
    /// (foreign-key checks, triggers at the end of the statement); `true` if it did, and
    /// [`Receiver::complete`] then waits for the answer. The default sends nothing: `complete`
    /// does it all.
    ///
    /// # Errors
    /// The end could not be sent: the commit failed, as [`Receiver::complete`]'s would.
    fn begin_complete(&mut self) -> Result<bool, BoxError> {
        Ok(false)
    }

    /// Discards what it received: first sends `completion` (realignment, PQv3 receivers), then
    /// fails its COPY with `reason`, leaving its connection usable.
    ///
    /// # Errors
    /// Its connection could not be made usable again.
    fn fail(&mut self, reason: &str, completion: &Completion) -> Result<(), BoxError>;

    copyman_core::receiver_items!();

    /// Arms (`Some`) or clears (`None`) the copy's stall timeout
    /// ([`Options::stall_timeout`](crate::Options::stall_timeout)): from now on, IO that moves no
    /// byte for that long fails with a timeout error (`WouldBlock` or `TimedOut`), which the
    /// manager reports as a stall of this receiver. A copy arms it before [`Receiver::start`],
    /// so a start that waits that long for its server (a table another session locked) stalls
    /// too. [`Receiver::complete`] must not be timed out. The default does nothing: an
    /// in-process receiver does not stall on a socket.
    ///
    /// # Errors
    /// The timeout could not be set.
    fn set_stall_timeout(&mut self, timeout: Option<std::time::Duration>) -> Result<(), BoxError> {
        let _ = timeout;
        Ok(())
    }

    /// The copy was interrupted ([`CopyManager::interrupter`](crate::CopyManager::interrupter))
    /// and its server moved no byte for the interrupt's grace: a receiver on a connection closes
    /// it at once, saying so ([`copyman_core::endpoint::GIVEN_UP_AFTER_INTERRUPT`]), not as a
    /// stall timeout the caller may not have set. The default: [`Receiver::stalled`].
    fn given_up(&mut self) {
        self.stalled();
    }

    /// Lets `interrupter` (its copy's, [`CopyManager::interrupter`](crate::CopyManager::interrupter))
    /// cut this receiver's blocking waits for its server — the CopyFail of an abort — where its
    /// connection has no interrupter of its own: once interrupted, a frozen server is given up
    /// after [`INTERRUPT_GRACE`](crate::INTERRUPT_GRACE), not waited for. The default does
    /// nothing.
    fn share_interrupter(&mut self, interrupter: &Interrupter) {
        let _ = interrupter;
    }

    /// Sets the interrupter that cuts this receiver's blocking waits for its server (the answer
    /// to its CopyFail), returning the one it had: a copy's drop lends its own while it gives the
    /// copy up, whatever the connection was given (an interrupter of the caller's, which the
    /// drop does not fire), and gives the old one back. The default (no connection of its own)
    /// keeps none.
    fn swap_interrupter(&mut self, interrupter: Option<Interrupter>) -> Option<Interrupter> {
        let _ = interrupter;
        None
    }

    /// The interrupter its connection was given
    /// ([`Connection::set_interrupter`](crate::Connection::set_interrupter)), not one its copy
    /// lent it: the copy takes it as its own, so that interrupting it interrupts the copy's
    /// transfers too (which wait in the copy's own `poll(2)`, not in the connection's). The
    /// default: none.
    fn interrupter(&self) -> Option<Interrupter> {
        None
    }

    /// The socket a driver may wait on with `poll(2)` to feed this receiver without blocking,
    /// through [`Receiver::try_write`] and [`Receiver::read_server`], while it feeds others.
    /// `None` (the default): the receiver is fed with the blocking [`Receiver::transmit`] only.
    fn poll_socket(&self) -> Option<PollSocket> {
        None
    }

    /// Writes, without blocking, what the receiver takes now of `bytes` (what is left of a
    /// transmit's PQv3 data) and returns how many bytes it took: 0 when it takes none now (wait
    /// until [`Receiver::poll_socket`] is writable). Called only when `poll_socket` is `Some`; the
    /// default refuses.
    ///
    /// # Errors
    /// The write failed (the server's error when it said why): the receiver faults.
    fn try_write(&mut self, bytes: &[u8]) -> Result<usize, BoxError> {
        let _ = bytes;
        Err(Error::State("this receiver cannot write without blocking").into())
    }

    /// Sends, without blocking, what the receiver still holds of the data it took (TLS records
    /// rustls has not written yet): `true` once nothing is held, `false` when the socket takes
    /// no more now (wait until [`Receiver::poll_socket`] is writable). A driver calls it after the
    /// last [`Receiver::try_write`] of a transmit, whose data is not sent until this says so. The
    /// default holds nothing.
    ///
    /// # Errors
    /// The write failed: the receiver faults.
    fn try_flush(&mut self) -> Result<bool, BoxError> {
        Ok(true)
    }

    /// Bytes of records the receiver wrote to its socket for the data it took (TLS records), so
    /// far: a driver takes a change as bytes moved (the stall rule), the data's own count
    /// ([`Receiver::try_write`]'s) being where they went in, not out (copyman-async's
    /// `Written::moved`). The default writes the data as it is: 0.
    fn records_sent(&self) -> u64 {
        0
    }

    /// Reads, without blocking, what the server said (a driver calls it when
    /// [`Receiver::poll_socket`] is readable, and now and then while it writes without waiting).
    /// The default does nothing.
    ///
    /// # Errors
    /// The server ended the COPY (its error), or the connection is lost: the receiver faults.
    fn read_server(&mut self) -> Result<(), BoxError> {
        Ok(())
    }
}

/// Receives into a `COPY … FROM STDIN` on a raw [`Connection`]: the fast path.
///
/// Under a [`CopyManager`](crate::CopyManager) its socket (TCP, TLS over TCP, or Unix) is
/// written without blocking: the driver writes what the socket takes (under TLS: what
/// rustls takes, then its records as the socket takes them) and waits with `poll(2)` on every
/// receiver at once, so a slow destination never idles the others. The socket is read whenever
/// `poll` says the server sent something, and at least once per cycle, so an error the server
/// reports (a bad row, a constraint) becomes a fault of this receiver within a cycle or two, not
/// at the end. Through [`Receiver::transmit`] the data of each cycle goes out whole (the call
/// waits with `poll(2)` while the socket takes nothing), after which the socket is read without
/// blocking.
#[derive(Debug)]
pub struct StatementReceiver<'c> {
    conn: &'c mut Connection,
    /// Its statement, format and the CopyData stream it sent: copyman-core's half.
    copy: CopyInStatement,
    /// Its CopyDone is out ([`Receiver::begin_complete`]).
    ending: bool,
    /// Its connection carries its copy's interrupter ([`Receiver::share_interrupter`]), to take
    /// off when it is dropped.
    lent: bool,
}

impl<'c> StatementReceiver<'c> {
    /// A receiver running `statement` (a `COPY … FROM STDIN`) on `conn`.
    pub fn new(conn: &'c mut Connection, statement: impl Into<String>) -> Self {
        let copy = CopyInStatement::new(statement);
        Self {
            conn,
            copy,
            ending: false,
            lent: false,
        }
    }

    /// The server's error that ended the COPY, if it sent one (read already).
    fn copy_in_status(&mut self) -> Result<(), Error> {
        Ok(self.conn.endpoint.copy_in_status()?)
    }

    /// Takes what the server said during the COPY; an error ends it.
    fn check_server(&mut self) -> Result<(), Error> {
        let polled = self.conn.poll_server();
        self.copy_in_status()?;
        polled
    }

    /// `error` of a write, or the server's, which may have said why it stopped reading.
    fn write_error(&mut self, error: std::io::Error) -> Error {
        self.check_server().err().unwrap_or(Error::Io(error))
    }

    /// Writes `bytes` whole, then under TLS the records rustls holds of them, as a driver does
    /// with [`Receiver::try_write`] and [`Receiver::try_flush`], waiting for the socket whenever
    /// it takes nothing now and reading meanwhile what the server says (a server blocked
    /// writing to us, a trigger's notice per row, reads nothing more until we read; its error
    /// ends the write); then reads what the server said.
    fn write_data(&mut self, bytes: &[u8]) -> Result<(), TransmitError> {
        let mut written = 0;
        loop {
            let step = match bytes.get(written..) {
                Some(rest) if !rest.is_empty() => self.try_write(rest),
                _ => match self.conn.stream.try_flush() {
                    Ok(true) => break,
                    Ok(false) => Ok(0),
                    Err(e) => Err(self.write_error(e).into()),
                },
            };
            let waited = match step {
                Ok(0) => self.conn.wait(READABLE | WRITABLE),
                Ok(n) => {
                    written += n;
                    continue;
                }
                Err(error) => return Err(TransmitError { error, written }),
            };
            if let Err(e) = waited {
                let error = self.write_error(e).into();
                return Err(TransmitError { error, written });
            }
            if let Err(e) = self.check_server() {
                return Err(TransmitError::from(e).written(written));
            }
        }
        let error = |e| TransmitError::from(e).written(written);
        self.check_server().map_err(error)
    }
}

impl Receiver for StatementReceiver<'_> {
    fn protocol(&self) -> Protocol {
        Protocol::PQv3
    }

    fn format(&self) -> Option<DataFormat> {
        self.copy.format()
    }

    fn start(&mut self) -> Result<(), BoxError> {
        let started = self
            .conn
            .start_copy(self.copy.begin(), Direction::FromStdin)?;
        self.copy.started(&started);
        Ok(())
    }

    fn transmit(&mut self, data: &Data) -> Result<(), TransmitError> {
        self.copy_in_status()?;
        self.write_data(CopyInStatement::take(data)?)
    }

    fn begin_complete(&mut self) -> Result<bool, BoxError> {
        // Completing is never timed out, by the copy's stall timeout or the caller's: the end of
        // a COPY may run long (its triggers, its constraints). The caller's is back for what
        // follows.
        self.conn.set_copy_timeout(None);
        self.conn.endpoint.complete_copy().map_err(Error::Session)?;
        self.ending = true;
        let interruptible = !self.conn.endpoint.completion_commits();
        self.conn.untimed(interruptible, Connection::flush)?;
        Ok(true)
    }

    fn complete(&mut self) -> Result<Option<u64>, BoxError> {
        if !self.ending {
            self.begin_complete()?;
        }
        // Its answer commits (autocommit): waited for whatever comes, only it says whether the
        // rows committed. Inside a transaction it commits nothing: an interrupt gives the wait
        // up as any other (a frozen path after the data held a stopped run for ever).
        let commits = self.conn.endpoint.completion_commits();
        let answer = self.conn.untimed(!commits, Connection::drive);
        // No answer where the answer is the commit: in doubt (core's rule).
        let answer = answer.map_err(|e| {
            let db = e.db_error().cloned();
            copyman_core::fault::completion_error(commits, db.as_ref(), e.into())
        })?;
        Ok(completed(answer))
    }

    fn fail(&mut self, reason: &str, completion: &Completion) -> Result<(), BoxError> {
        let failing = self.conn.endpoint.fail_copy(reason, completion);
        failing.map_err(Error::Session)?;
        let failed = self.conn.drive().map(drop);
        // Its answer did not come (the copy's stall timeout, a lost path): the connection would
        // hand its next call that wait, unbounded (a caller's ROLLBACK hung behind a frozen
        // backend). Closed, as copyman-async's is: the server aborts the COPY and its
        // transaction; the next call says why.
        if failed.is_err() && !self.conn.is_ready() {
            self.conn.cancel_detached();
            self.conn.close(copyman_core::endpoint::ABANDONED_COPY_IN);
        }
        Ok(failed?)
    }

    fn set_stall_timeout(&mut self, timeout: Option<std::time::Duration>) -> Result<(), BoxError> {
        self.conn.set_copy_timeout(timeout);
        Ok(())
    }

    fn share_interrupter(&mut self, interrupter: &Interrupter) {
        if self.conn.interrupter().is_none() {
            self.conn.set_interrupter(Some(interrupter.clone()));
            self.lent = true;
        }
    }

    fn interrupter(&self) -> Option<Interrupter> {
        self.conn.interrupter().filter(|_| !self.lent).cloned()
    }

    fn swap_interrupter(&mut self, interrupter: Option<Interrupter>) -> Option<Interrupter> {
        let had = self.conn.take_interrupter();
        self.conn.set_interrupter(interrupter);
        had
    }

    fn stalled(&mut self) {
        // Its backend may wait on a lock (a trigger's), holding its own, which the close alone
        // does not end.
        self.conn.cancel_detached();
        self.conn.close(copyman_core::endpoint::STALLED_COPY_IN);
    }

    fn given_up(&mut self) {
        self.conn.cancel_detached();
        self.conn
            .close(copyman_core::endpoint::GIVEN_UP_AFTER_INTERRUPT);
    }

    fn poll_socket(&self) -> Option<PollSocket> {
        self.conn.poll_socket()
    }

    fn try_write(&mut self, bytes: &[u8]) -> Result<usize, BoxError> {
        self.copy_in_status()?;
        loop {
            let error = match self.conn.stream.write(bytes) {
                Ok(0) if !bytes.is_empty() => Error::Io(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.copy.sent(&bytes[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(0),
                Err(e) => self.write_error(e),
            };
            return Err(error.into());
        }
    }

    fn try_flush(&mut self) -> Result<bool, BoxError> {
        Ok(self.conn.stream.try_flush()?)
    }

    fn records_sent(&self) -> u64 {
        self.conn.stream.records_sent()
    }

    fn read_server(&mut self) -> Result<(), BoxError> {
        Ok(self.check_server()?)
    }
}

impl Drop for StatementReceiver<'_> {
    fn drop(&mut self) {
        // Only CopyDone commits a COPY: one dropped midway is failed or its connection closed.
        self.conn.abandon_copy_in(&self.copy);
        if self.lent {
            self.conn.set_interrupter(None);
        }
    }
}

impl<F: FnMut(&[Bytes]) -> Result<(), BoxError>> Receiver for CallReceiver<F> {
    fn protocol(&self) -> Protocol {
        Protocol::Chunks
    }

    fn transmit(&mut self, data: &Data) -> Result<(), TransmitError> {
        Ok(self.call(data)?)
    }

    fn complete(&mut self) -> Result<Option<u64>, BoxError> {
        Ok(None)
    }

    fn fail(&mut self, _reason: &str, _completion: &Completion) -> Result<(), BoxError> {
        Ok(())
    }
}

impl Receiver for NullReceiver {
    fn protocol(&self) -> Protocol {
        Protocol::Null
    }

    fn transmit(&mut self, _data: &Data) -> Result<(), TransmitError> {
        Ok(())
    }

    fn complete(&mut self) -> Result<Option<u64>, BoxError> {
        Ok(None)
    }

    fn fail(&mut self, _reason: &str, _completion: &Completion) -> Result<(), BoxError> {
        Ok(())
    }
}

/// Receives into a `COPY … FROM STDIN` run through an existing `postgres` transaction
/// (`copy_in`): the convenient path for applications that hold pooled connections. Its COPY
/// commits with the transaction, which the caller commits once the copy succeeded (outside a
/// transaction block it is refused: see [`ClientReceiver::new`]).
///
/// Completing calls the writer's `finish` (its `COPY n` is checked against the producer's);
/// failing drops the writer unfinished, which makes the client abort the COPY — when the client
/// is next used: the `postgres` crate drives its connection only inside its calls, so until then
/// the server's session stays in its COPY (holding its locks and transaction). Use the client
/// (or drop it) as soon as the copy returns.
///
/// TLS is the client's own: connect it with a TLS connector (`postgres-openssl`,
/// `postgres-native-tls`, or `tokio-postgres-rustls`' `MakeRustlsConnect` built from the rustls
/// `ClientConfig` that [`copyman_tls::TlsSettings::client_config`] makes from libpq's settings);
/// copyman sees only the rows.
///
/// Its statement's FORMAT and options are compared with the other ends' before any data moves,
/// as a raw endpoint's are (one copyman cannot read is refused), and so are its client's
/// `DateStyle`, `IntervalStyle` and `client_encoding`, asked when it is made (a `DateStyle` of `SQL, DMY` writes `02/12/2026`, which an ISO reader takes for
/// the 12th of February: refused). The client's other settings are its own: copyman cannot pin
/// them as it pins a [`Connection`](crate::Connection)'s, so the text it reads follows them:
/// give the client the settings `copyman_core::session::PORTABILITY_SETTINGS` lists
/// (`extra_float_digits=3`, `array_nulls=on`, …), as its connection's options.
///
/// The copy's stall timeout ([`Options::stall_timeout`](crate::Options::stall_timeout)) cannot
/// bound it: `postgres::CopyInWriter` blocks in its writes and has no timeout to set, so a
/// destination that stops reading (a row lock held by another session) holds the whole copy
/// until it reads again, and its COPY starts in [`ClientReceiver::new`], before the copy does.
/// Bound it on the server (`statement_timeout`, `lock_timeout`), or use a
/// [`StatementReceiver`] (or copyman-async's `ClientReceiver`, whose writes can be timed out).
pub struct ClientReceiver<'c> {
    writer: Option<postgres::CopyInWriter<'c>>,
    /// What its statement says of its data (its client reads the server's answer).
    format: Option<DataFormat>,
}

impl std::fmt::Debug for ClientReceiver<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientReceiver").finish_non_exhaustive()
    }
}

impl<'c> ClientReceiver<'c> {
    /// Starts `statement` on `client`, a `postgres::Transaction` (or a client inside a
    /// transaction block): its COPY commits when the caller commits the transaction, once the
    /// copy succeeded.
    ///
    /// The statement is checked first: one that is not `COPY … FROM STDIN` is refused before
    /// anything is sent (the client would run it, then fail). A client outside a transaction
    /// block is refused ([`NEEDS_A_TRANSACTION`](copyman_core::client::NEEDS_A_TRANSACTION)):
    /// the `postgres` crate reports the COPY's `COPY n` before its commit, and a commit that
    /// fails (a deferred constraint) nowhere.
    ///
    /// # Errors
    /// A statement of the wrong kind ([`Error::Session`] with
    /// [`SessionError::Statement`](copyman_core::session::SessionError::Statement)); the
    /// client's, e.g. the server's error for a bad statement. After a server's error here the
    /// client may be out of step with its server (`postgres`'s `copy_in` leaves the answer's
    /// end unread: its next query fails with an unexpected message): drop it, or have a pool
    /// discard it, rather than use it again.
    pub fn new<C: postgres::GenericClient>(
        client: &'c mut C,
        statement: &str,
    ) -> Result<Self, Error> {
        copyman_core::statement::check(statement, Direction::FromStdin)
            .map_err(|e| Error::Session(e.into()))?;
        let format = crate::producer::client_format(client, statement)?;
        use copyman_core::client::{TRANSACTION_PROBE, TRANSACTION_PROBE_END};
        Error::in_a_transaction(client.batch_execute(TRANSACTION_PROBE))?;
        client.batch_execute(TRANSACTION_PROBE_END)?;
        Ok(Self {
            writer: Some(client.copy_in(statement)?),
            format: Some(format),
        })
    }
}

impl Receiver for ClientReceiver<'_> {
    copyman_core::client_endpoint_items!();

    // Its completion is its client's `finish`: its server's COPY ends, and commits with the
    // caller's transaction.
    fn completes_a_server(&self) -> bool {
        true
    }

    fn transmit(&mut self, data: &Data) -> Result<(), TransmitError> {
        let writer = self
            .writer
            .as_mut()
            .ok_or(Error::State("the COPY is over"))?;
        // The client's writer gathers the lines into its own CopyData messages.
        for line in lines(data, "a client receiver")? {
            writer.write_all(line).map_err(Error::Io)?;
        }
        Ok(())
    }

    fn complete(&mut self) -> Result<Option<u64>, BoxError> {
        let writer = self.writer.take().ok_or(Error::State("the COPY is over"))?;
        Ok(Some(writer.finish().map_err(Error::from)?))
    }

    fn fail(&mut self, _reason: &str, _completion: &Completion) -> Result<(), BoxError> {
        // Dropping an unfinished writer makes the client send CopyFail.
        self.writer = None;
        Ok(())
    }
}
