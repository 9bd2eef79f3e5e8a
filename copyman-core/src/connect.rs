//! libpq's `connect_timeout`: one deadline for the whole attempt to connect to one host.
//!
//! As in libpq, the time limit covers everything an attempt on one address does — the TCP
//! connect, the SSLRequest and TLS handshake (and the plain retry that `sslmode=prefer` or
//! `allow` may make on the same address), the startup and authentication — and it is a deadline,
//! not a limit per system call: a server that trickles a byte now and then still runs out of it.
//! When it passes, the attempt fails with [`TimeoutExpired`] ("timeout expired") and the next
//! host, if any, is tried with a deadline of its own.
//!
//! The adapters read the clock and arm their sockets or timers; the deadline is computed here.
//!
//! Unlike libpq, a timeout below 2 seconds is taken as given (libpq raises it to 2).

use std::io;
use std::time::{Duration, Instant};

/// The error of an attempt that ran out of its `connect_timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("timeout expired")]
pub struct TimeoutExpired;

impl TimeoutExpired {
    /// As an IO error of kind [`io::ErrorKind::TimedOut`] whose text is "timeout expired".
    pub fn io() -> io::Error {
        io::Error::new(io::ErrorKind::TimedOut, Self)
    }

    /// Whether `error` is this one.
    pub fn is(error: &io::Error) -> bool {
        error.get_ref().is_some_and(|e| e.is::<Self>())
    }
}

/// The deadline of one host's connection attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    at: Option<Instant>,
}

impl Deadline {
    /// The deadline of an attempt that starts at `now`: `now + connect_timeout`, or none. A
    /// timeout of zero means none, as in libpq.
    pub fn start(now: Instant, connect_timeout: Option<Duration>) -> Self {
        Self {
            at: connect_timeout
                .filter(|t| !t.is_zero())
                .and_then(|t| now.checked_add(t)),
        }
    }

    /// When it expires, if it does.
    pub fn at(&self) -> Option<Instant> {
        self.at
    }

    /// The time left at `now`, to arm a socket timeout or a timer with: `Ok(None)` without a
    /// deadline.
    ///
    /// # Errors
    /// [`TimeoutExpired`] (as an IO error) once the deadline has passed.
    pub fn remaining(&self, now: Instant) -> io::Result<Option<Duration>> {
        match self.at {
            None => Ok(None),
            Some(at) => match at.checked_duration_since(now) {
                Some(left) if !left.is_zero() => Ok(Some(left)),
                _ => Err(TimeoutExpired::io()),
            },
        }
    }

    /// Whether the deadline has passed at `now`.
    pub fn expired(&self, now: Instant) -> bool {
        self.at.is_some_and(|at| now >= at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_deadline_for_the_whole_attempt() {
        let start = Instant::now();
        let deadline = Deadline::start(start, Some(Duration::from_secs(2)));
        assert_eq!(
            deadline
                .remaining(start + Duration::from_millis(500))
                .unwrap(),
            Some(Duration::from_millis(1500))
        );
        let expired = deadline
            .remaining(start + Duration::from_secs(2))
            .unwrap_err();
        assert!(TimeoutExpired::is(&expired));
        assert_eq!(expired.to_string(), "timeout expired");
        assert!(deadline.expired(start + Duration::from_secs(3)));
        let none = Deadline::start(start, Some(Duration::ZERO));
        assert_eq!(
            none.remaining(start + Duration::from_secs(99)).unwrap(),
            None
        );
    }
}
