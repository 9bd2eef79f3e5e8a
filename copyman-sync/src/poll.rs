//! `poll(2)`: the one system call std does not wrap, for the driver's multiplexing and for every
//! wait of a connection's non-blocking socket.

use std::io;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("fd", &self.fd.fd)
            .field("events", &self.fd.events)
            .field("revents", &self.fd.revents)
            .finish()
    }
}

/// Readable (or the peer said something: data, an error, end of stream).
pub(crate) const READABLE: i16 = libc::POLLIN;
/// Writable: the socket takes bytes now.
pub(crate) const WRITABLE: i16 = libc::POLLOUT;
/// What the kernel reports whether asked or not: an error or a hang-up on the socket, which the
/// next read or write turns into its error (or end of stream).
const TROUBLE: i16 = libc::POLLERR | libc::POLLHUP | libc::POLLNVAL;

/// One socket to wait on and what happened to it.
#[derive(Clone, Copy)]
#[repr(transparent)]
pub(crate) struct Watch {
    fd: libc::pollfd,
}

impl Watch {
    /// Waits on `fd` for `events` ([`READABLE`], [`WRITABLE`] or both).
    pub(crate) fn new(fd: RawFd, events: i16) -> Self {
        Self {
            fd: libc::pollfd {
                fd,
                events,
                revents: 0,
            },
        }
    }

    /// It can be read (or its read will say why not).
    pub(crate) fn readable(&self) -> bool {
        self.fd.revents & (READABLE | TROUBLE) != 0
    }

    /// It can be written (or its write will say why not).
    pub(crate) fn writable(&self) -> bool {
        self.fd.revents & (WRITABLE | TROUBLE) != 0
    }

    /// Something it waits for happened (or trouble).
    pub(crate) fn ready(&self) -> bool {
        self.fd.revents != 0
    }
}

/// Waits until one of `watches` is ready, or `timeout` passed (`None`: for ever), and returns
/// how many are ready (0: the timeout passed). A signal ends the wait early with 0 as well.
pub(crate) fn wait(watches: &mut [Watch], timeout: Option<Duration>) -> io::Result<usize> {
    let timeout = match timeout {
        // Rounded up: a wait that ends a little early would find the deadline not yet passed.
        Some(t) => i32::try_from(t.as_nanos().div_ceil(1_000_000)).unwrap_or(i32::MAX),
        None => -1,
    };
    let count = libc::nfds_t::try_from(watches.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "too many sockets to poll"))?;
    // SAFETY: `Watch` is `#[repr(transparent)]` over `libc::pollfd`, so `watches` is a live,
    // exclusively borrowed array of exactly `count` initialised `pollfd` structs for the whole
    // call; poll(2) reads their `fd` and `events`, writes only their `revents` (a plain integer,
    // any value valid), and keeps no pointer after it returns. A closed or invalid descriptor is
    // reported as POLLNVAL, never undefined behaviour.
    let ready = unsafe { libc::poll(watches.as_mut_ptr().cast::<libc::pollfd>(), count, timeout) };
    if ready < 0 {
        let error = io::Error::last_os_error();
        if error.kind() == io::ErrorKind::Interrupted {
            return Ok(0);
        }
        return Err(error);
    }
    Ok(usize::try_from(ready).unwrap_or(0))
}

/// Waits until `fd` is ready for `events` ([`READABLE`], [`WRITABLE`] or both; an error or a
/// hang-up counts as ready), or `deadline` passed (`None`: for ever): whether it is ready. A
/// signal does not end the wait.
pub(crate) fn wait_one(fd: RawFd, events: i16, deadline: Option<Instant>) -> io::Result<bool> {
    let mut watch = [Watch::new(fd, events)];
    loop {
        let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if wait(&mut watch, timeout)? > 0 {
            return Ok(true);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(false);
        }
    }
}
