//! A TLS client session over a socket that may not block: the one place both adapters take their
//! rustls IO rules from.
//!
//! [`TlsClient`] holds rustls' sans-IO client and moves its records through any socket given to
//! each call as `io::Read + io::Write` — a `std` socket in blocking or non-blocking mode, or a
//! tokio socket's `try_read`/`try_write` — so copyman-sync and copyman-async speak TLS alike. The
//! socket is never owned here: this crate opens none.
//!
//! The rules, each decided once here:
//!
//! - Records are read from the socket only when no decrypted byte waits
//!   ([`TlsClient::try_read`]): a driver that polls the socket must never leave plaintext unseen
//!   in rustls.
//! - A socket that ends without a TLS close_notify is a plain end (a server that exits does so;
//!   PostgreSQL's messages carry their own lengths, so no truncation goes unnoticed).
//! - Bytes rustls took count as written ([`TlsClient::try_write`]): they go out now as far as the
//!   socket allows, the rest first thing on the next call, which reports an error sending them —
//!   never the call that took them, whose caller would write them twice.
//! - Answers rustls owes the server (alerts, key updates) go out opportunistically, whenever the
//!   session reads.
//!
//! The SSLRequest that comes before the handshake stays the adapters' (one byte of answer read,
//! exactly: CVE-2021-23222), with [`negotiate`](crate::negotiate) deciding on it.

use std::fmt;
use std::io::{self, Read, Write};
use std::sync::Arc;

use rustls::{ClientConfig, ClientConnection};

use crate::{TlsError, server_end_point, server_name};

/// A TLS client session whose records go through a socket lent to each call.
///
/// Every call that touches the socket treats `WouldBlock` as "not now": a blocking socket whose
/// read or write timeout fires says the same, so the caller checks its own deadline.
pub struct TlsClient {
    conn: ClientConnection,
    /// Bytes of records written to the socket so far.
    sent: u64,
}

impl fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the session's state: it holds its keys.
        f.debug_struct("TlsClient")
            .field("handshaking", &self.conn.is_handshaking())
            .finish_non_exhaustive()
    }
}

impl TlsClient {
    /// A session with `config` that verifies the server as `host` (when the configuration
    /// verifies names), to start right after the server's `S`.
    ///
    /// # Errors
    /// [`TlsError::Settings`]: `host` is no valid server name, or rustls refused the
    /// configuration.
    pub fn new(config: &Arc<ClientConfig>, host: &str) -> Result<Self, TlsError> {
        let conn = ClientConnection::new(Arc::clone(config), server_name(host)?)
            .map_err(|e| TlsError::Settings(format!("TLS: {e}")))?;
        Ok(Self { conn, sent: 0 })
    }

    /// One step of the handshake: sends what the session holds, then reads and takes in the
    /// server's records. `Ok(true)` once the handshake is done and every record of it went out;
    /// `Ok(false)` to call again when the socket is ready (writable if
    /// [`wants_flush`](Self::wants_flush), else readable).
    ///
    /// # Errors
    /// The socket's; `UnexpectedEof` when the server closed it; `InvalidData` wrapping rustls'
    /// error (a certificate that does not verify, a protocol error), after the alert that says
    /// why went out if it could. [`TlsError::handshake`] words them all.
    pub fn handshake(&mut self, sock: &mut (impl Read + Write)) -> io::Result<bool> {
        if !self.try_flush(sock)? {
            return Ok(false);
        }
        if !self.conn.is_handshaking() {
            return Ok(true);
        }
        match self.conn.read_tls(sock) {
            Ok(0) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection during the TLS handshake",
            )),
            Ok(_) => {
                self.process(sock)?;
                // What came may end the handshake with nothing more to read (a TLS 1.2 server's
                // Finished comes after ours): done now, or the caller would wait for a server
                // that waits for us.
                Ok(self.try_flush(sock)? && !self.conn.is_handshaking())
            }
            // Nothing now (or a signal): the caller waits for the socket, or its deadline.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// The channel-binding hash (tls-server-end-point) of the server's certificate, once the
    /// handshake is done: for SCRAM-SHA-256-PLUS.
    pub fn server_end_point(&self) -> Option<Vec<u8>> {
        let chain = self.conn.peer_certificates()?;
        server_end_point(chain.first()?)
    }

    /// Reads decrypted bytes: those waiting, else records from `sock` until some come. `Ok(0)`
    /// at the end of the session (with or without close_notify); `WouldBlock` when `sock` has
    /// nothing now.
    ///
    /// # Errors
    /// The socket's; `InvalidData` for records rustls refuses.
    pub fn try_read(
        &mut self,
        sock: &mut (impl Read + Write),
        buf: &mut [u8],
    ) -> io::Result<usize> {
        let mut at_end = false;
        loop {
            match self.conn.reader().read(buf) {
                Ok(n) => return Ok(n),
                // Nothing decrypted is waiting, and the socket is at its end.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && at_end => return Ok(0),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // A server that exits closes the socket without a TLS close_notify; for the
                // protocol above, whose messages carry their own lengths, that is a plain end.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            // Answers rustls owes the server (alerts, key updates) go out if they can.
            let _ = self.try_flush(sock);
            at_end = self.conn.read_tls(sock)? == 0;
            self.process(sock)?;
        }
    }

    /// Takes bytes to encrypt and send, once what earlier calls took has gone out (`WouldBlock`
    /// while it has not). What is taken goes out now as far as `sock` allows, the rest first on
    /// the next call or [`try_flush`](Self::try_flush), which report an error sending it; this
    /// call took the bytes, so it reports none.
    ///
    /// # Errors
    /// Sending what earlier calls took failed (nothing of `buf` was taken then).
    pub fn try_write(&mut self, sock: &mut (impl Read + Write), buf: &[u8]) -> io::Result<usize> {
        if !self.try_flush(sock)? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = self.conn.writer().write(buf)?;
        let _ = self.try_flush(sock);
        Ok(n)
    }

    /// Sends the records the session holds: `true` once none is left, `false` when `sock` takes
    /// no more now.
    ///
    /// # Errors
    /// The socket's; `WriteZero` for a socket that takes nothing.
    pub fn try_flush(&mut self, sock: &mut (impl Read + Write)) -> io::Result<bool> {
        while self.conn.wants_write() {
            match self.conn.write_tls(sock) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.sent += n as u64,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Bytes of records written to the socket so far, handshake included: it moves while
    /// records go out even when no new plaintext is taken (a stall rule's sign of life on a slow
    /// link).
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Whether records wait to be sent ([`try_flush`](Self::try_flush)).
    pub fn wants_flush(&self) -> bool {
        self.conn.wants_write()
    }

    /// Whether [`try_read`](Self::try_read) has something without reading the socket: decrypted
    /// bytes, the session's end, or an error. A driver waits for the socket only when not.
    pub fn has_input(&mut self) -> bool {
        match self.conn.process_new_packets() {
            Ok(state) => state.plaintext_bytes_to_read() > 0 || state.peer_has_closed(),
            Err(_) => true,
        }
    }

    /// Takes in the records read; on rustls' error, the alert that says why goes out if it can.
    fn process(&mut self, sock: &mut (impl Read + Write)) -> io::Result<()> {
        if let Err(e) = self.conn.process_new_packets() {
            let _ = self.try_flush(sock);
            return Err(io::Error::new(io::ErrorKind::InvalidData, e));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use rustls::ServerConnection;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    use super::*;

    const CA: &str = include_str!("../testdata/ca.pem");
    const SERVER_CERT: &str = include_str!("../testdata/server.pem");
    const SERVER_KEY: &str = include_str!("../testdata/server-key.pem");
    /// Self-signed and `CA:TRUE`, for `localhost` and 127.0.0.1: PostgreSQL's documented recipe.
    const SELF_SIGNED: &str = include_str!("../testdata/self-signed.pem");
    const SELF_SIGNED_KEY: &str = include_str!("../testdata/self-signed-key.pem");
    /// X.509 version 1 for `localhost`, signed by a version 3 root: PostgreSQL's documented CA
    /// recipe as OpenSSL 3.0 makes it (`openssl x509 -req` without extensions).
    const V1_ROOT: &str = include_str!("../testdata/v1-root.pem");
    const V1_SERVER: &str = include_str!("../testdata/v1-server.pem");
    const V1_SERVER_KEY: &str = include_str!("../testdata/v1-server-key.pem");
    /// Self-signed for `CN=localhost` without a subjectAltName: PostgreSQL's documented
    /// self-signed recipe (`openssl req -new -x509 -subj "/CN=…"`).
    const CN_ONLY: &str = include_str!("../testdata/cn-only.pem");
    const CN_ONLY_KEY: &str = include_str!("../testdata/cn-only-key.pem");

    /// One end of an in-memory socket: it gives what was put in it (`WouldBlock` when empty,
    /// 0 once closed) and takes up to `room` bytes (`WouldBlock` when full).
    #[derive(Default)]
    struct Socket {
        incoming: VecDeque<u8>,
        outgoing: Vec<u8>,
        room: usize,
        closed: bool,
        reads: usize,
        /// The next write is interrupted by a signal.
        interrupt: bool,
    }

    impl Read for Socket {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.reads += 1;
            if self.incoming.is_empty() {
                return match self.closed {
                    true => Ok(0),
                    false => Err(io::ErrorKind::WouldBlock.into()),
                };
            }
            self.incoming.read(buf)
        }
    }

    impl Write for Socket {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if std::mem::take(&mut self.interrupt) {
                return Err(io::ErrorKind::Interrupted.into());
            }
            let n = buf.len().min(self.room);
            if n == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.room -= n;
            self.outgoing.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A client on an in-memory socket and the rustls server at its other end.
    struct Pair {
        client: TlsClient,
        socket: Socket,
        server: ServerConnection,
    }

    impl Pair {
        fn new() -> Self {
            Self::with_server_versions(rustls::DEFAULT_VERSIONS)
        }

        /// A pair whose server speaks only these protocol versions.
        fn with_server_versions(versions: &[&'static rustls::SupportedProtocolVersion]) -> Self {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let mut roots = rustls::RootCertStore::empty();
            roots
                .add(CertificateDer::from_pem_slice(CA.as_bytes()).unwrap())
                .unwrap();
            let client = ClientConfig::builder_with_provider(Arc::clone(&provider))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth();
            let chain = vec![CertificateDer::from_pem_slice(SERVER_CERT.as_bytes()).unwrap()];
            let key = PrivateKeyDer::from_pem_slice(SERVER_KEY.as_bytes()).unwrap();
            let server = rustls::ServerConfig::builder_with_provider(provider)
                .with_protocol_versions(versions)
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(chain, key)
                .unwrap();
            Self {
                client: TlsClient::new(&Arc::new(client), "localhost").unwrap(),
                socket: Socket {
                    room: usize::MAX,
                    ..Socket::default()
                },
                server: ServerConnection::new(Arc::new(server)).unwrap(),
            }
        }

        /// A client made from libpq-style `settings` for `host`, and a server presenting
        /// `cert` with `key`.
        fn with_settings(settings: &crate::TlsSettings, host: &str, cert: &str, key: &str) -> Self {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let chain = vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()];
            let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
            // The certificate as it is: rustls' own check of it (`with_single_cert`) reads only
            // X.509 version 3, and a server may present a version 1 one.
            let key = provider.key_provider.load_private_key(key).unwrap();
            let certified = rustls::sign::CertifiedKey::new(chain, key);
            let server = rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(certified)));
            let config = settings.client_config().unwrap().unwrap();
            Self {
                client: TlsClient::new(&config, host).unwrap(),
                socket: Socket {
                    room: usize::MAX,
                    ..Socket::default()
                },
                server: ServerConnection::new(Arc::new(server)).unwrap(),
            }
        }

        /// The handshake to its end: `Ok` once done, else the error as the adapters word it.
        fn try_handshake(&mut self) -> Result<(), String> {
            loop {
                match self.client.handshake(&mut self.socket) {
                    Ok(true) => return Ok(()),
                    Ok(false) => self.exchange_lenient(),
                    Err(e) => return Err(TlsError::handshake("localhost:5432", &e).to_string()),
                }
            }
        }

        /// [`exchange`](Self::exchange), where the server may refuse (an alert from the client).
        fn exchange_lenient(&mut self) {
            let sent = std::mem::take(&mut self.socket.outgoing);
            let mut sent = &sent[..];
            while !sent.is_empty() {
                if self.server.read_tls(&mut sent).is_err()
                    || self.server.process_new_packets().is_err()
                {
                    return;
                }
            }
            let mut answer = Vec::new();
            while self.server.wants_write() {
                self.server.write_tls(&mut answer).unwrap();
            }
            self.socket.incoming.extend(answer);
        }

        /// Carries the client's records to the server, and the server's back to the socket.
        fn exchange(&mut self) {
            let sent = std::mem::take(&mut self.socket.outgoing);
            let mut sent = &sent[..];
            while !sent.is_empty() {
                self.server.read_tls(&mut sent).unwrap();
                self.server.process_new_packets().unwrap();
            }
            let mut answer = Vec::new();
            while self.server.wants_write() {
                self.server.write_tls(&mut answer).unwrap();
            }
            self.socket.incoming.extend(answer);
        }

        fn handshake(&mut self) {
            while !self.client.handshake(&mut self.socket).unwrap() {
                self.exchange();
            }
            self.exchange();
            assert!(!self.server.is_handshaking());
        }

        /// The server sends `bytes` to the client's socket.
        fn server_sends(&mut self, bytes: &[u8]) {
            self.server.writer().write_all(bytes).unwrap();
            self.exchange();
        }

        /// What the server decrypted of the client's.
        fn server_received(&mut self) -> Vec<u8> {
            self.exchange();
            let mut got = Vec::new();
            let _ = self.server.reader().read_to_end(&mut got);
            got
        }
    }

    #[test]
    fn handshake_steps_until_done_and_gives_the_channel_binding_hash() {
        let mut pair = Pair::new();
        assert_eq!(pair.client.server_end_point(), None);
        // Nothing from the server yet: the first step sends the ClientHello and waits.
        assert!(!pair.client.handshake(&mut pair.socket).unwrap());
        assert!(!pair.socket.outgoing.is_empty());
        pair.handshake();
        let der = CertificateDer::from_pem_slice(SERVER_CERT.as_bytes()).unwrap();
        assert_eq!(pair.client.server_end_point(), server_end_point(&der));
        assert!(pair.client.server_end_point().is_some());
    }

    #[test]
    fn a_tls_1_2_handshake_is_done_once_the_servers_finished_is_read() {
        let mut pair = Pair::with_server_versions(&[&rustls::version::TLS12]);
        while !pair.client.handshake(&mut pair.socket).unwrap() {
            // A driver now waits for the socket: writable while records wait to go out, else
            // readable, so the server must have more to say or the wait never ends.
            pair.exchange();
            assert!(
                pair.client.wants_flush() || !pair.socket.incoming.is_empty(),
                "the client waits to read, but the server waits for the client"
            );
        }
        assert_eq!(
            pair.client.conn.protocol_version(),
            Some(rustls::ProtocolVersion::TLSv1_2)
        );
        pair.exchange();
        assert!(!pair.server.is_handshaking());
    }

    #[test]
    fn a_server_that_closes_during_the_handshake_is_an_unexpected_end() {
        let mut pair = Pair::new();
        assert!(!pair.client.handshake(&mut pair.socket).unwrap());
        pair.socket.closed = true;
        let e = pair.client.handshake(&mut pair.socket).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        let e = TlsError::handshake("db:5432", &e);
        assert_eq!(
            e.to_string(),
            "TLS handshake with db:5432 failed: the server closed the connection during the TLS \
             handshake"
        );
    }

    #[test]
    fn a_certificate_for_another_name_fails_and_the_alert_goes_out() {
        let mut pair = Pair::new();
        let config = Arc::new(
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates({
                    let mut roots = rustls::RootCertStore::empty();
                    roots
                        .add(CertificateDer::from_pem_slice(CA.as_bytes()).unwrap())
                        .unwrap();
                    roots
                })
                .with_no_client_auth(),
        );
        pair.client = TlsClient::new(&config, "db.example.com").unwrap();
        let error = loop {
            match pair.client.handshake(&mut pair.socket) {
                Ok(_) => pair.exchange(),
                Err(e) => break e,
            }
        };
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        let said = TlsError::handshake("db", &error).to_string();
        assert!(said.contains("not valid for name"), "{said}");
        // The alert that says why is on its way to the server.
        let alert = std::mem::take(&mut pair.socket.outgoing);
        assert!(pair.server.read_tls(&mut &alert[..]).unwrap() > 0);
        assert!(pair.server.process_new_packets().is_err());
    }

    #[test]
    fn reads_wait_for_records_and_end_without_close_notify() {
        let mut pair = Pair::new();
        pair.handshake();
        let mut buf = [0u8; 64];
        let e = pair
            .client
            .try_read(&mut pair.socket, &mut buf)
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        assert!(!pair.client.has_input());
        pair.server_sends(b"Z\0\0\0\x05I");
        assert_eq!(pair.client.try_read(&mut pair.socket, &mut buf).unwrap(), 6);
        assert_eq!(&buf[..6], b"Z\0\0\0\x05I");
        // The server exits: its socket ends without a close_notify, which is a plain end.
        pair.socket.closed = true;
        assert_eq!(pair.client.try_read(&mut pair.socket, &mut buf).unwrap(), 0);
        assert_eq!(pair.client.try_read(&mut pair.socket, &mut buf).unwrap(), 0);
    }

    #[test]
    fn a_close_notify_is_the_end_and_reported_as_input() {
        let mut pair = Pair::new();
        pair.handshake();
        pair.server.send_close_notify();
        pair.exchange();
        let mut buf = [0u8; 8];
        assert_eq!(pair.client.try_read(&mut pair.socket, &mut buf).unwrap(), 0);
        assert!(pair.client.has_input());
    }

    #[test]
    fn decrypted_bytes_waiting_are_read_before_the_socket() {
        let mut pair = Pair::new();
        pair.handshake();
        pair.server_sends(b"0123456789");
        let mut four = [0u8; 4];
        assert_eq!(
            pair.client.try_read(&mut pair.socket, &mut four).unwrap(),
            4
        );
        assert!(pair.client.has_input());
        // More in the socket, which must not be read while plaintext waits.
        pair.server_sends(b"abc");
        let reads = pair.socket.reads;
        let mut rest = [0u8; 64];
        assert_eq!(
            pair.client.try_read(&mut pair.socket, &mut rest).unwrap(),
            6
        );
        assert_eq!(&rest[..6], b"456789");
        assert_eq!(pair.socket.reads, reads);
        assert_eq!(
            pair.client.try_read(&mut pair.socket, &mut rest).unwrap(),
            3
        );
        assert_eq!(&rest[..3], b"abc");
    }

    #[test]
    fn bytes_taken_count_as_written_and_go_out_on_the_next_call() {
        let mut pair = Pair::new();
        pair.handshake();
        // The socket takes a few bytes only: the record does not fit.
        pair.socket.room = 5;
        assert_eq!(
            pair.client.try_write(&mut pair.socket, b"hello").unwrap(),
            5
        );
        assert!(pair.client.wants_flush());
        let sent = pair.client.sent();
        pair.socket.room = 7;
        assert!(!pair.client.try_flush(&mut pair.socket).unwrap());
        assert_eq!(pair.client.sent(), sent + 7, "part of a record went out");
        // Nothing more is taken until the record went out.
        let e = pair
            .client
            .try_write(&mut pair.socket, b"more")
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        pair.socket.room = usize::MAX;
        assert_eq!(
            pair.client.try_write(&mut pair.socket, b" world").unwrap(),
            6
        );
        assert!(!pair.client.wants_flush());
        assert_eq!(pair.server_received(), b"hello world");
    }

    #[test]
    fn a_write_a_signal_interrupts_is_made_again() {
        let mut pair = Pair::new();
        pair.handshake();
        pair.socket.interrupt = true;
        assert_eq!(pair.client.try_write(&mut pair.socket, b"once").unwrap(), 4);
        assert!(!pair.client.wants_flush());
        assert_eq!(pair.server_received(), b"once");
    }

    #[test]
    fn a_broken_socket_is_reported_by_the_next_call_not_the_one_that_took_the_bytes() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::ErrorKind::ConnectionReset.into())
            }
        }
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut pair = Pair::new();
        pair.handshake();
        assert_eq!(pair.client.try_write(&mut Broken, b"taken").unwrap(), 5);
        let e = pair.client.try_flush(&mut Broken).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
        let e = pair.client.try_write(&mut Broken, b"x").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
        // What was taken still goes out first once the socket works.
        assert_eq!(pair.client.try_write(&mut pair.socket, b"!").unwrap(), 1);
        assert_eq!(pair.server_received(), b"taken!");
    }

    #[test]
    fn a_key_update_the_server_asks_for_goes_out_with_the_next_write() {
        let mut pair = Pair::new();
        pair.handshake();
        pair.server.refresh_traffic_keys().unwrap();
        pair.server_sends(b"after");
        let mut buf = [0u8; 16];
        assert_eq!(pair.client.try_read(&mut pair.socket, &mut buf).unwrap(), 5);
        // rustls keeps its answer for the next record it sends.
        assert_eq!(pair.client.try_write(&mut pair.socket, b"ok").unwrap(), 2);
        assert_eq!(pair.server_received(), b"ok");
        pair.server_sends(b"again");
        assert_eq!(pair.client.try_read(&mut pair.socket, &mut buf).unwrap(), 5);
    }

    #[test]
    fn records_rustls_refuses_are_invalid_data() {
        let mut pair = Pair::new();
        pair.handshake();
        // An application data record with garbage for its ciphertext.
        pair.socket.incoming.extend([23, 3, 3, 0, 32]);
        pair.socket.incoming.extend([0xAA; 32]);
        let e = pair
            .client
            .try_read(&mut pair.socket, &mut [0u8; 8])
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        // The alert that says why went out.
        assert!(!pair.socket.outgoing.is_empty());
    }

    /// A PEM file in the temporary directory, removed when dropped.
    struct PemFile(std::path::PathBuf);

    impl PemFile {
        fn new(name: &str, pem: &str) -> Self {
            let unique = std::hash::BuildHasher::hash_one(
                &std::collections::hash_map::RandomState::new(),
                name,
            );
            let path = std::env::temp_dir().join(format!("copyman-tls-{name}-{unique:x}.pem"));
            std::fs::write(&path, pem).unwrap();
            Self(path)
        }

        fn settings(&self, mode: crate::SslMode) -> crate::TlsSettings {
            crate::TlsSettings {
                mode,
                root_cert: Some(self.0.clone()),
                ..crate::TlsSettings::default()
            }
        }
    }

    impl Drop for PemFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn a_self_signed_server_certificate_given_as_the_root_is_trusted_as_libpq_does() {
        let root = PemFile::new("self-signed", SELF_SIGNED);
        for mode in [
            crate::SslMode::Require,
            crate::SslMode::VerifyCa,
            crate::SslMode::VerifyFull,
        ] {
            for host in ["localhost", "127.0.0.1"] {
                let settings = root.settings(mode);
                let mut pair = Pair::with_settings(&settings, host, SELF_SIGNED, SELF_SIGNED_KEY);
                pair.try_handshake()
                    .unwrap_or_else(|e| panic!("{mode} to {host}: {e}"));
            }
        }
        // verify-full still checks the name; verify-ca does not.
        let settings = root.settings(crate::SslMode::VerifyFull);
        let mut pair =
            Pair::with_settings(&settings, "db.example.com", SELF_SIGNED, SELF_SIGNED_KEY);
        let said = pair.try_handshake().unwrap_err();
        assert!(
            said.starts_with(
                "TLS handshake with localhost:5432 failed: the server's certificate is not valid \
                 for host db.example.com (certificate verify failed: certificate not valid for \
                 name \"db.example.com\"; server certificate for \"localhost\" (and 1 other \
                 name) does not match host name \"db.example.com\")"
            ),
            "{said}"
        );
        let settings = root.settings(crate::SslMode::VerifyCa);
        let mut pair =
            Pair::with_settings(&settings, "db.example.com", SELF_SIGNED, SELF_SIGNED_KEY);
        pair.try_handshake().unwrap();
    }

    #[test]
    fn verify_full_takes_the_common_name_of_a_certificate_without_subject_alt_name() {
        let root = PemFile::new("cn-only", CN_ONLY);
        let settings = root.settings(crate::SslMode::VerifyFull);
        for host in ["localhost", "LOCALHOST"] {
            let mut pair = Pair::with_settings(&settings, host, CN_ONLY, CN_ONLY_KEY);
            pair.try_handshake()
                .unwrap_or_else(|e| panic!("{host}: {e}"));
        }
        for host in ["db.example.com", "127.0.0.1", "a.localhost"] {
            let mut pair = Pair::with_settings(&settings, host, CN_ONLY, CN_ONLY_KEY);
            let said = pair.try_handshake().unwrap_err();
            assert!(said.contains("is not valid for host"), "{host}: {said}");
        }
        // A certificate with a subjectAltName is named by it alone (its CN is localhost too).
        let root = PemFile::new("ca", CA);
        let settings = root.settings(crate::SslMode::VerifyFull);
        let mut pair = Pair::with_settings(&settings, "localhost", SERVER_CERT, SERVER_KEY);
        pair.try_handshake().unwrap();
    }

    #[test]
    fn a_version_1_certificate_is_taken_under_require_and_refused_in_words_when_verified() {
        // require without a root: taken, as libpq takes it (webpki alone refused it).
        let settings = crate::TlsSettings {
            mode: crate::SslMode::Require,
            root_cert: Some("/nonexistent/root.crt".into()),
            ..crate::TlsSettings::default()
        };
        let mut pair = Pair::with_settings(&settings, "localhost", V1_SERVER, V1_SERVER_KEY);
        pair.try_handshake().unwrap();
        // A handshake signed by another key than the certificate's is still refused.
        let mut pair = Pair::with_settings(&settings, "localhost", V1_SERVER, SERVER_KEY);
        assert!(pair.try_handshake().is_err());
        // Verified against its root: refused, in words.
        let root = PemFile::new("v1-root", V1_ROOT);
        for mode in [crate::SslMode::VerifyCa, crate::SslMode::VerifyFull] {
            let mut pair =
                Pair::with_settings(&root.settings(mode), "localhost", V1_SERVER, V1_SERVER_KEY);
            let said = pair.try_handshake().unwrap_err();
            assert!(
                said.contains("the server's certificate is X.509 version 1"),
                "{mode}: {said}"
            );
        }
    }

    #[test]
    fn a_certificate_no_root_signed_is_said_in_words_with_the_file() {
        // The CA's server certificate against the self-signed one as the root.
        let root = PemFile::new("self-signed", SELF_SIGNED);
        let settings = root.settings(crate::SslMode::VerifyFull);
        let mut pair = Pair::with_settings(&settings, "localhost", SERVER_CERT, SERVER_KEY);
        assert_eq!(
            pair.try_handshake().unwrap_err(),
            format!(
                "TLS handshake with localhost:5432 failed: the server's certificate is not signed \
                 by a root in sslrootcert={} (certificate verify failed: \
                 invalid peer certificate: UnknownIssuer)",
                root.0.display()
            )
        );
        // The self-signed certificate against another root: webpki refuses its CA:TRUE first.
        let ca = PemFile::new("ca", CA);
        let settings = ca.settings(crate::SslMode::VerifyCa);
        let mut pair = Pair::with_settings(&settings, "localhost", SELF_SIGNED, SELF_SIGNED_KEY);
        let said = pair.try_handshake().unwrap_err();
        assert!(
            said.contains(&format!(
                "the server's certificate is a CA certificate (CA:TRUE) that is not itself one of \
                 the roots in sslrootcert={} (certificate verify failed: ",
                ca.0.display()
            )),
            "{said}"
        );
    }

    #[test]
    fn under_prefer_a_client_key_others_may_read_fails_the_tls_attempt_in_libpqs_words() {
        // Made (a server without TLS would never see it), then the handshake refused with the
        // key's error as libpq's initialize_SSL says it, before any certificate of the client.
        let cert = PemFile::new("deferred-client-crt", SERVER_CERT);
        let key = PemFile::new("deferred-client-key", SERVER_KEY);
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key.0, std::fs::Permissions::from_mode(0o644)).unwrap();
        for mode in [crate::SslMode::Allow, crate::SslMode::Prefer] {
            let settings = crate::TlsSettings {
                cert: Some(cert.0.clone()),
                key: Some(key.0.clone()),
                ..crate::TlsSettings::new(mode)
            };
            let mut pair = Pair::with_settings(&settings, "localhost", SERVER_CERT, SERVER_KEY);
            assert_eq!(
                pair.try_handshake().unwrap_err(),
                format!(
                    "private key file \"{}\" has group or world access; file must have \
                     permissions u=rw (0600) or less if owned by the current user, or permissions \
                     u=rw,g=r (0640) or less if owned by root",
                    key.0.display()
                ),
                "{mode}"
            );
        }
    }
}
