//! TLS on a tokio socket: rustls' sans-IO client driven by the socket's readiness.
//!
//! The receiver reads the server's messages while it writes CopyData, through a shared reference
//! to the socket and `readable()`/`writable()`/`try_read()`/`try_write()`. [`TlsSocket`] offers
//! exactly that shape: the rustls state sits behind a mutex that is only held inside the
//! non-blocking calls (never across an `.await`), so reading and writing interleave as on a
//! plain socket.

use std::io::{self, Read, Write};
use std::sync::{Mutex, MutexGuard, PoisonError};

use copyman_tls::TlsError;
use copyman_tls::rustls::ClientConnection;
use tokio::net::TcpStream;

/// A TLS client session over a TCP socket.
pub(crate) struct TlsSocket {
    tcp: TcpStream,
    tls: Mutex<ClientConnection>,
}

/// `io::Read`/`io::Write` over a tokio socket's non-blocking calls, for rustls' record IO.
struct NonBlocking<'a>(&'a TcpStream);

impl Read for NonBlocking<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.try_read(buf)
    }
}

impl Write for NonBlocking<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl TlsSocket {
    /// Runs the TLS handshake of `tls` on `tcp` (right after the server's `S`).
    pub(crate) async fn handshake(
        tcp: TcpStream,
        tls: ClientConnection,
        target: &str,
    ) -> Result<Self, TlsError> {
        let socket = Self {
            tcp,
            tls: Mutex::new(tls),
        };
        let failed = |e: &io::Error| TlsError::handshake(target, e);
        loop {
            socket.flush().await.map_err(|e| failed(&e))?;
            if !socket.lock().is_handshaking() {
                return Ok(socket);
            }
            socket.tcp.readable().await.map_err(|e| failed(&e))?;
            let mut tls = socket.lock();
            match tls.read_tls(&mut NonBlocking(&socket.tcp)) {
                Ok(0) => {
                    return Err(failed(&io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the server closed the connection during the TLS handshake",
                    )));
                }
                Ok(_) => {
                    if let Err(e) = tls.process_new_packets() {
                        // Tell the server why (an alert), then give up.
                        let _ = socket.try_flush_locked(&mut tls);
                        return Err(TlsError::Handshake {
                            target: target.to_owned(),
                            reason: e.to_string(),
                        });
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(failed(&e)),
            }
        }
    }

    /// The server certificate (DER), once the handshake is done.
    pub(crate) fn peer_certificate(&self) -> Option<Vec<u8>> {
        let tls = self.lock();
        tls.peer_certificates()
            .and_then(|chain| chain.first())
            .map(|cert| cert.to_vec())
    }

    fn lock(&self) -> MutexGuard<'_, ClientConnection> {
        self.tls.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends buffered TLS records without waiting: `true` when none are left.
    fn try_flush_locked(&self, tls: &mut ClientConnection) -> io::Result<bool> {
        while tls.wants_write() {
            match tls.write_tls(&mut NonBlocking(&self.tcp)) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Whether every byte taken has gone out to the socket.
    pub(crate) fn is_flushed(&self) -> bool {
        !self.lock().wants_write()
    }

    /// Sends what is buffered without waiting; `WouldBlock` when some is left.
    pub(crate) fn try_flush(&self) -> io::Result<()> {
        if self.try_flush_locked(&mut self.lock())? {
            Ok(())
        } else {
            Err(io::ErrorKind::WouldBlock.into())
        }
    }

    /// Sends what is buffered. Cancel-safe: what is not sent stays buffered.
    pub(crate) async fn flush(&self) -> io::Result<()> {
        loop {
            match self.try_flush() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.tcp.writable().await?,
                other => return other,
            }
        }
    }

    /// Reads decrypted bytes without waiting: `WouldBlock` when none are at hand, 0 at the end.
    pub(crate) fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut tls = self.lock();
        loop {
            match tls.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // A server that exits closes the socket without a TLS close_notify; for the
                // protocol above, whose messages carry their own lengths, that is a plain end.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            // Nothing decrypted is waiting: read more records (WouldBlock ends this).
            tls.read_tls(&mut NonBlocking(&self.tcp))?;
            tls.process_new_packets()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            // Answers rustls owes the server (alerts, key updates) go out with the next write
            // at the latest.
            let _ = self.try_flush_locked(&mut tls);
        }
    }

    /// Takes bytes to encrypt and send without waiting: `WouldBlock` while earlier ones have not
    /// gone out yet. Bytes taken go out now as far as the socket allows, the rest first thing
    /// on the next call (or [`flush`](Self::flush)): an error sending them is reported there,
    /// never as this call's, which took them.
    pub(crate) fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        let mut tls = self.lock();
        if !self.try_flush_locked(&mut tls)? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = tls.writer().write(buf)?;
        let _ = self.try_flush_locked(&mut tls);
        Ok(n)
    }

    /// Waits until [`try_read`](Self::try_read) may have something: decrypted bytes are at hand,
    /// or the socket has more.
    pub(crate) async fn readable(&self) -> io::Result<()> {
        let ready = match self.lock().process_new_packets() {
            Ok(state) => state.plaintext_bytes_to_read() > 0 || state.peer_has_closed(),
            Err(_) => true,
        };
        if ready {
            return Ok(());
        }
        self.tcp.readable().await
    }

    /// Waits until the socket takes more bytes.
    pub(crate) async fn writable(&self) -> io::Result<()> {
        self.tcp.writable().await
    }
}
