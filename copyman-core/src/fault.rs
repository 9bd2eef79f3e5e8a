//! Faults and failures, in the vocabulary of py-postgresql's copyman.
//!
//! * [`ReceiverFault`]: one or more receivers failed during a cycle and left the copy; the others
//!   go on. A faulted receiver may be reconciled.
//! * [`ProducerFault`]: the producer failed; nothing changed, the caller may go on or abort.
//! * [`CopyFail`]: the copy as a whole failed; nothing was completed on any receiver that was
//!   still in it, and every connection still alive was handed back usable.

use std::error::Error;
use std::fmt;
use std::sync::Arc;

/// Identifies a receiver of a [`Manager`](crate::manager::Manager): the order in which it was
/// added, from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReceiverId(pub usize);

impl fmt::Display for ReceiverId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An endpoint's error, as the adapters hand it in.
pub type BoxError = Box<dyn Error + Send + Sync + 'static>;

/// An endpoint's error, shared between the fault that reported it and the copy's summary.
pub type SharedError = Arc<dyn Error + Send + Sync + 'static>;

/// Receivers failed during a cycle and were removed from the copy.
///
/// The copy can go on with the remaining receivers; a faulted receiver rejoins only through
/// reconcile. If nothing is done about it, the faulted receiver's COPY is failed when the copy
/// finishes, so it commits nothing.
#[derive(Debug, Clone)]
pub struct ReceiverFault {
    /// Each failed receiver with its error, in the order the errors arrived.
    pub faults: Vec<(ReceiverId, SharedError)>,
}

impl ReceiverFault {
    /// The error of `receiver`, if it is among the faults (`faults[receiver]` in py-postgresql's
    /// copyman).
    pub fn get(&self, receiver: ReceiverId) -> Option<&SharedError> {
        self.faults
            .iter()
            .find(|(id, _)| *id == receiver)
            .map(|(_, e)| e)
    }
}

impl fmt::Display for ReceiverFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.faults.as_slice() {
            [(id, error)] => write!(f, "receiver {id} faulted: {error}"),
            faults => {
                write!(f, "{} receivers faulted", faults.len())?;
                for (id, error) in faults {
                    write!(f, "; receiver {id}: {error}")?;
                }
                Ok(())
            }
        }
    }
}

// The errors are listed in Display (there may be several), so none is repeated as the source.
impl Error for ReceiverFault {}

/// The producer failed. The manager changed nothing: the caller may continue or abort.
#[derive(Debug, Clone)]
pub struct ProducerFault {
    /// The producer's error.
    pub error: SharedError,
}

impl fmt::Display for ProducerFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("producer raised an error")
    }
}

impl Error for ProducerFault {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&*self.error)
    }
}

/// A fault reported by a cycle: `Fault` in py-postgresql's copyman.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Fault {
    /// One or more receivers failed.
    #[error(transparent)]
    Receiver(#[from] ReceiverFault),
    /// The producer failed.
    #[error(transparent)]
    Producer(#[from] ProducerFault),
}

/// The copy failed: every receiver still in it had its COPY failed, the producer was cancelled.
#[derive(Debug, Clone)]
pub struct CopyFail {
    /// Why the copy failed ("no receivers", "copy stopped before the producer's end", …).
    pub reason: String,
    /// Receivers whose completion or abort failed, with their errors.
    pub receiver_faults: Vec<(ReceiverId, SharedError)>,
    /// The producer's error on exit, if it had one.
    pub producer_fault: Option<SharedError>,
}

impl CopyFail {
    /// The exit error of `receiver`, if it had one.
    pub fn receiver_fault(&self, receiver: ReceiverId) -> Option<&SharedError> {
        self.receiver_faults
            .iter()
            .find(|(id, _)| *id == receiver)
            .map(|(_, e)| e)
    }
}

impl fmt::Display for CopyFail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)?;
        for (id, error) in &self.receiver_faults {
            write!(f, "; receiver {id}: {error}")?;
        }
        if let Some(error) = &self.producer_fault {
            write!(f, "; producer: {error}")?;
        }
        Ok(())
    }
}

// Display already lists every error, so none is repeated as the source.
impl Error for CopyFail {}

/// A receiver's `COPY n` differs from the producer's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "row count mismatch: the producer sent {producer} row{}, the receiver stored {receiver}",
    if *.producer == 1 { "" } else { "s" }
)]
pub struct CountMismatch {
    /// The producer's `COPY n`.
    pub producer: u64,
    /// The receiver's `COPY n`.
    pub receiver: u64,
}
