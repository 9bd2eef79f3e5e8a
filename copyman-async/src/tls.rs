//! TLS on a tokio socket: copyman-tls' [`TlsClient`] driven by the socket's readiness.
//!
//! The receiver reads the server's messages while it writes CopyData, through a shared reference
//! to the socket and `readable()`/`writable()`/`try_read()`/`try_write()`. [`TlsSocket`] offers
//! exactly that shape: the TLS session sits behind a mutex that is only held inside the
//! non-blocking calls (never across an `.await`), so reading and writing interleave as on a
//! plain socket.

use std::io::{self, Read, Write};
use std::sync::{Mutex, PoisonError};

use copyman_tls::{TlsClient, TlsError};
use tokio::net::TcpStream;

/// Calls `op` until it does not say `WouldBlock`, waiting for `ready` before each call.
pub(crate) async fn when_ready<T, R: Future<Output = io::Result<()>>>(
    mut ready: impl FnMut() -> R,
    mut op: impl FnMut() -> io::Result<T>,
) -> io::Result<T> {
    loop {
        ready().await?;
        match op() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            other => return other,
        }
    }
}

/// A TLS client session over a TCP socket.
pub(crate) struct TlsSocket {
    tcp: TcpStream,
    tls: Mutex<TlsClient>,
}

/// `io::Read`/`io::Write` over a tokio socket's non-blocking calls, for the TLS records.
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

/// The same calls made on the socket itself, without asking tokio whether it is ready (tokio
/// knows only what `epoll` said: see [`TRY_WRITE_EVERY`](copyman_core::stall::TRY_WRITE_EVERY)).
pub(crate) struct Unasked<'a>(pub(crate) &'a TcpStream);

impl Read for Unasked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.try_read(buf)
    }
}

impl Write for Unasked<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        crate::connection::send(socket2::SockRef::from(self.0), buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl TlsSocket {
    /// The TCP socket under it (for a [`Closer`](crate::Closer)'s duplicate).
    pub(crate) fn socket_ref(&self) -> socket2::SockRef<'_> {
        socket2::SockRef::from(&self.tcp)
    }

    /// Runs the TLS handshake of `tls` on `tcp` (right after the server's `S`).
    pub(crate) async fn handshake(
        tcp: TcpStream,
        mut tls: TlsClient,
        target: &str,
    ) -> Result<Self, TlsError> {
        let failed = |e: io::Error| TlsError::handshake(target, &e);
        while !tls.handshake(&mut NonBlocking(&tcp)).map_err(failed)? {
            let ready = match tls.wants_flush() {
                true => tcp.writable().await,
                false => tcp.readable().await,
            };
            ready.map_err(failed)?;
        }
        let tls = Mutex::new(tls);
        Ok(Self { tcp, tls })
    }

    /// Runs `f` on the TLS session and the socket (never across an `.await`).
    fn with<T>(&self, f: impl FnOnce(&mut TlsClient, &mut NonBlocking<'_>) -> T) -> T {
        let mut tls = self.tls.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut tls, &mut NonBlocking(&self.tcp))
    }

    /// The channel-binding hash of the server certificate, once the handshake is done.
    pub(crate) fn server_end_point(&self) -> Option<Vec<u8>> {
        self.with(|tls, _| tls.server_end_point())
    }

    /// Whether every byte taken has gone out to the socket.
    pub(crate) fn is_flushed(&self) -> bool {
        !self.with(|tls, _| tls.wants_flush())
    }

    /// Bytes of records written to the socket so far.
    pub(crate) fn sent(&self) -> u64 {
        self.with(|tls, _| tls.sent())
    }

    /// Sends what is buffered without waiting; `WouldBlock` when some is left.
    pub(crate) fn try_flush(&self) -> io::Result<()> {
        match self.with(|tls, tcp| tls.try_flush(tcp))? {
            true => Ok(()),
            false => Err(io::ErrorKind::WouldBlock.into()),
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

    /// Reads decrypted bytes without waiting ([`TlsClient::try_read`]).
    pub(crate) fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.with(|tls, tcp| tls.try_read(tcp, buf))
    }

    /// Takes bytes to encrypt and send without waiting ([`TlsClient::try_write`]).
    pub(crate) fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        self.with(|tls, tcp| tls.try_write(tcp, buf))
    }

    /// [`try_write`](Self::try_write), or [`try_flush`](Self::try_flush) when `buf` is empty,
    /// tried on the socket whether or not tokio saw it writable.
    pub(crate) fn try_write_unasked(&self, buf: &[u8]) -> io::Result<usize> {
        let mut tls = self.tls.lock().unwrap_or_else(PoisonError::into_inner);
        let tcp = &mut Unasked(&self.tcp);
        match buf.is_empty() {
            true => match tls.try_flush(tcp)? {
                true => Ok(0),
                false => Err(io::ErrorKind::WouldBlock.into()),
            },
            false => tls.try_write(tcp, buf),
        }
    }

    /// Waits until [`try_read`](Self::try_read) may have something: decrypted bytes are at hand,
    /// or the socket has more.
    pub(crate) async fn readable(&self) -> io::Result<()> {
        if self.with(|tls, _| tls.has_input()) {
            return Ok(());
        }
        self.tcp.readable().await
    }

    /// Waits until the socket takes more bytes.
    pub(crate) async fn writable(&self) -> io::Result<()> {
        self.tcp.writable().await
    }
}
