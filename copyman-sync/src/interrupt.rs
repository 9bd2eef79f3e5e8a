//! [`Interrupter`]: cuts a copy's or a connection's waits short from another thread.

use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::poll::{self, Watch};

/// What the handles of one interruption share.
#[derive(Debug)]
struct InterruptShared {
    interrupted: AtomicBool,
    /// Written a byte by `interrupt`: every `poll(2)` that watches `woken` wakes.
    wake: UnixStream,
    /// Never read: once written, it stays readable, for every waiter (the flag says it all).
    woken: UnixStream,
}

/// Interrupts a [`CopyManager`](crate::CopyManager) ([`CopyManager::interrupter`]) or the
/// waits of a [`Connection`](crate::Connection) ([`Connection::set_interrupter`]) from another
/// thread (a signal's, a watchdog's): from then on every IO under way that moves nothing for
/// [`INTERRUPT_GRACE`](crate::INTERRUPT_GRACE) is given up. In a copy, a transmit or a producer
/// read is stalled, its endpoint closed and its fault reported, so that the copy's next step
/// returns even where a server stopped reading or sending (a frozen backend, a network path
/// lost): the caller, which then aborts the copy, fails the other endpoints' COPYs at once
/// (they roll back and release their locks) instead of waiting on the frozen one; the abort's
/// own CopyFail to a frozen receiver is given up after the grace too (the copy lends its
/// interrupter to the receivers' connections that have none). On a connection, a wait for its
/// server's answer ends with an error of kind `TimedOut`. An endpoint that keeps moving is not
/// touched, and a copy that keeps moving runs on: the interrupt only ends waits (stop the copy
/// by aborting it). The one-call [`CopyBuilder::run`](crate::CopyBuilder::run) and
/// [`transfer`](crate::transfer) hand out no copy to ask: give the interrupter to the
/// endpoints' [`Connection`](crate::Connection)s before (a copy takes the first it finds as its
/// own), or set a stall timeout.
///
/// [`CopyManager::interrupter`]: crate::CopyManager::interrupter
/// [`Connection::set_interrupter`]: crate::Connection::set_interrupter
///
/// ```no_run
/// use copyman_sync::{Connection, CopyManager, StatementProducer, StatementReceiver};
///
/// let mut source = Connection::connect_str("host=127.0.0.1 user=postgres dbname=app")?;
/// let mut dest = Connection::connect_str("host=10.0.0.2 user=postgres dbname=app")?;
/// let mut copy = CopyManager::builder(StatementProducer::new(&mut source, "COPY t TO STDOUT"))
///     .to(StatementReceiver::new(&mut dest, "COPY t FROM STDIN"))
///     .start()?;
/// let interrupter = copy.interrupter()?;
/// std::thread::spawn(move || {
///     std::thread::sleep(std::time::Duration::from_secs(60));
///     interrupter.interrupt();
/// });
/// let failed = loop {
///     match copy.next() {
///         Some(Ok(_)) => {}
///         Some(Err(_)) => break true,
///         None => break false,
///     }
/// };
/// if failed {
///     // A frozen endpoint given up: the others' COPYs are failed at once.
///     eprintln!("{}", copy.abort("interrupted"));
/// } else {
///     let summary = copy.finish()?;
///     println!("{} rows", summary.producer_count.unwrap_or(0));
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Interrupter(Arc<InterruptShared>);

impl Interrupter {
    /// A new interruption, not interrupted yet, to give to connections
    /// ([`Connection::set_interrupter`](crate::Connection::set_interrupter)).
    ///
    /// # Errors
    /// The socket pair that wakes a waiting `poll(2)` could not be made (no file descriptors
    /// left).
    pub fn new() -> io::Result<Self> {
        let (wake, woken) = UnixStream::pair()?;
        wake.set_nonblocking(true)?;
        woken.set_nonblocking(true)?;
        Ok(Self(Arc::new(InterruptShared {
            interrupted: AtomicBool::new(false),
            wake,
            woken,
        })))
    }

    /// Interrupts (again: nothing more).
    pub fn interrupt(&self) {
        if !self.0.interrupted.swap(true, Ordering::SeqCst) {
            // Non-blocking: a full socket already holds a wake-up.
            let _ = (&self.0.wake).write(&[1]);
        }
    }

    /// Whether [`interrupt`](Self::interrupt) was called.
    pub fn is_interrupted(&self) -> bool {
        self.0.interrupted.load(Ordering::SeqCst)
    }

    /// What a `poll(2)` watches to wake at the interrupt: readable from then on.
    pub(crate) fn watch(&self) -> Watch {
        Watch::new(self.0.woken.as_raw_fd(), poll::READABLE)
    }
}
