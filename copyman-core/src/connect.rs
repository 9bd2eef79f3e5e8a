//! libpq's `connect_timeout`: one deadline for the whole attempt to connect to one host.
//!
//! As in libpq, the time limit covers everything an attempt on one address does — the TCP
//! connect, the SSLRequest and TLS handshake (and the plain retry that `sslmode=prefer` or
//! `allow` may make on the same address), the startup and authentication — and it is a deadline,
//! not a limit per system call: a server that trickles a byte now and then still runs out of it.
//! When it passes, the attempt fails with [`TimeoutExpired`] ("timeout expired") and the next
//! host, if any, is tried with a deadline of its own.
//!
//! The adapters read the clock (the time elapsed since the attempt on a host began) and arm their
//! sockets or timers; what is left, and when it is over, is computed here.
//!
//! Unlike libpq, a timeout below 2 seconds is taken as given (libpq raises it to 2).

use std::io;
use std::time::Duration;

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

/// The deadline of one host's connection attempt, on the attempt's own clock: the adapter notes
/// when the attempt on a host began and hands in the time elapsed since (core reads no clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    limit: Option<Duration>,
}

impl Deadline {
    /// The deadline of an attempt with `connect_timeout`, or none. A timeout of zero means none,
    /// as in libpq.
    pub fn new(connect_timeout: Option<Duration>) -> Self {
        Self {
            limit: connect_timeout.filter(|t| !t.is_zero()),
        }
    }

    /// How long after its start the attempt expires, if it does.
    pub fn limit(&self) -> Option<Duration> {
        self.limit
    }

    /// The time left `elapsed` after the attempt began, to arm a socket timeout or a timer with:
    /// `Ok(None)` without a deadline.
    ///
    /// # Errors
    /// [`TimeoutExpired`] (as an IO error) once the deadline has passed.
    pub fn remaining(&self, elapsed: Duration) -> io::Result<Option<Duration>> {
        match self.limit {
            None => Ok(None),
            Some(limit) => match limit.checked_sub(elapsed) {
                Some(left) if !left.is_zero() => Ok(Some(left)),
                _ => Err(TimeoutExpired::io()),
            },
        }
    }

    /// Whether the deadline has passed `elapsed` after the attempt began.
    pub fn expired(&self, elapsed: Duration) -> bool {
        self.limit.is_some_and(|limit| elapsed >= limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_deadline_for_the_whole_attempt() {
        let deadline = Deadline::new(Some(Duration::from_secs(2)));
        assert_eq!(
            deadline.remaining(Duration::from_millis(500)).unwrap(),
            Some(Duration::from_millis(1500))
        );
        let expired = deadline.remaining(Duration::from_secs(2)).unwrap_err();
        assert!(TimeoutExpired::is(&expired));
        assert_eq!(expired.to_string(), "timeout expired");
        assert!(deadline.expired(Duration::from_secs(3)));
        assert!(!deadline.expired(Duration::from_secs(1)));
        let none = Deadline::new(Some(Duration::ZERO));
        assert_eq!(none.remaining(Duration::from_secs(99)).unwrap(), None);
    }
}
