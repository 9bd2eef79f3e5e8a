//! The driver feeds receivers concurrently: a destination that stops taking data does not hold
//! the others back, within the manager's window, and it is timed out by `poll(2)`'s deadline.
//!
//! The receivers here are sockets the test owns (one end of a Unix socket pair each), so what
//! each destination took is known exactly, without a server's timing in the way.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use bytes::Bytes;
use copyman_core::BoxError;
use copyman_sync::{
    CopyManager, Data, Fault, IteratorProducer, Options, PollSocket, Protocol, Receiver,
    ReceiverId, ReceiverOutcome, Stalled, TransmitError,
};
use copyman_wire::realign::Completion;

/// A PQv3 receiver writing into a socket, counting the bytes the socket took.
struct SocketReceiver {
    socket: UnixStream,
    taken: Arc<AtomicUsize>,
}

impl Receiver for SocketReceiver {
    fn protocol(&self) -> Protocol {
        Protocol::PQv3
    }

    fn start(&mut self) -> Result<(), BoxError> {
        Ok(())
    }

    fn transmit(&mut self, data: &Data) -> Result<(), TransmitError> {
        let Data::PQv3(bytes) = data else {
            unreachable!("a PQv3 receiver gets PQv3 data")
        };
        self.socket.set_nonblocking(false)?;
        self.socket.write_all(bytes)?;
        self.taken.fetch_add(bytes.len(), Ordering::SeqCst);
        Ok(())
    }

    fn complete(&mut self) -> Result<Option<u64>, BoxError> {
        Ok(None)
    }

    fn fail(&mut self, _reason: &str, _completion: &Completion) -> Result<(), BoxError> {
        Ok(())
    }

    fn poll_socket(&self) -> Option<PollSocket> {
        Some(PollSocket::new(self.socket.as_raw_fd()))
    }

    fn try_write(&mut self, bytes: &[u8]) -> Result<usize, BoxError> {
        self.socket.set_nonblocking(true)?;
        match self.socket.write(bytes) {
            Ok(n) => {
                self.taken.fetch_add(n, Ordering::SeqCst);
                Ok(n)
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(0),
            Err(e) => Err(e.into()),
        }
    }
}

const CHUNK: usize = 64 * 1024;
const CHUNKS: usize = 200;

/// Chunks of one 64 KiB line each.
fn chunks() -> impl Iterator<Item = Vec<Bytes>> {
    (0..CHUNKS).map(|i| {
        let mut line = vec![b'a' + (i % 26) as u8; CHUNK - 1];
        line.push(b'\n');
        vec![Bytes::from(line)]
    })
}

#[test]
fn a_stalled_destination_does_not_hold_back_the_others_and_is_timed_out() {
    // Receiver 0's peer never reads: its socket fills and stays full. Receiver 1's peer reads
    // everything. Receiver 0 comes first, so a driver writing in order with blocking writes would
    // never get past it to receiver 1.
    let (stalled, stalled_peer) = UnixStream::pair().unwrap();
    let (flowing, mut flowing_peer) = UnixStream::pair().unwrap();
    let reader = thread::spawn(move || {
        let mut total = 0;
        let mut buf = vec![0; 1 << 16];
        loop {
            match flowing_peer.read(&mut buf) {
                Ok(0) => return total,
                Ok(n) => total += n,
                Err(e) => panic!("reading the flowing destination: {e}"),
            }
        }
    });
    let (stalled_taken, flowing_taken) = (Arc::default(), Arc::default());
    let receivers: Vec<Box<dyn Receiver>> = vec![
        Box::new(SocketReceiver {
            socket: stalled,
            taken: Arc::clone(&stalled_taken),
        }),
        Box::new(SocketReceiver {
            socket: flowing,
            taken: Arc::clone(&flowing_taken),
        }),
    ];
    // 2 s: the flowing destination's reader thread is never held that long by a loaded machine.
    let options = Options::default().with_stall_timeout(Duration::from_secs(2));
    let mut copy =
        CopyManager::start_with(IteratorProducer::new(chunks()), receivers, options).unwrap();
    let mut faults = Vec::new();
    for progress in &mut copy {
        if let Err(Fault::Receiver(fault)) = progress {
            // By the time the stalled destination is given up, the flowing one took everything
            // the stalled one did, the chunk it is stuck in and the next: it was never held back.
            let stalled = stalled_taken.load(Ordering::SeqCst);
            let flowing = flowing_taken.load(Ordering::SeqCst);
            let stuck_in = stalled / (CHUNK + 5);
            assert!(
                flowing >= (stuck_in + 2) * (CHUNK + 5),
                "the flowing destination took {flowing} bytes, the stalled one {stalled}"
            );
            faults.extend(fault.faults);
        }
    }
    assert_eq!(faults.len(), 1, "{faults:?}");
    let (id, error) = &faults[0];
    assert_eq!(*id, ReceiverId(0));
    assert!(error.is::<Stalled>(), "a poll deadline, named: {error}");
    let summary = copy.finish().expect("the flowing destination completes");
    assert!(matches!(
        summary.receivers[0].1,
        ReceiverOutcome::Faulted(_)
    ));
    assert!(matches!(
        summary.receivers[1].1,
        ReceiverOutcome::Completed(None)
    ));
    // Every byte of every chunk reached the flowing destination, framed: 5 header bytes each.
    drop(stalled_peer);
    assert_eq!(flowing_taken.load(Ordering::SeqCst), CHUNKS * (CHUNK + 5));
    // `finish` consumed the copy and closed its sockets: the reader saw the end of its stream.
    assert_eq!(reader.join().unwrap(), CHUNKS * (CHUNK + 5));
}
