//! CVE-2021-23222: bytes a man in the middle slips in right after the server's `S` (before the
//! TLS handshake) are never taken for the server's words. The connection reads exactly one byte
//! of answer to its SSLRequest, so whatever follows goes to TLS, which refuses it.

use copyman_sync::{Connection, Error};
use copyman_testkit::proxy::{Direction, Fault, Proxy};
use copyman_testkit::{Auth, Cluster};

#[test]
fn bytes_injected_after_the_ssl_answer_fail_the_handshake() {
    let cluster = Cluster::builder().auth(Auth::ScramSha256).tls().start();
    let proxy = Proxy::for_cluster(&cluster);
    let conninfo = format!(
        "{} sslmode=require connect_timeout=10",
        proxy.conninfo(&cluster, "postgres")
    );
    // AuthenticationOk and ReadyForQuery in plain text: what the attacker would have the client
    // believe the server said.
    let forged = b"R\0\0\0\x08\0\0\0\0Z\0\0\0\x05I".to_vec();
    proxy.after_bytes(Direction::ServerToClient, 1, Fault::Garbage(forged));
    let err = Connection::connect_str(&conninfo).expect_err("the forged bytes are refused");
    assert!(
        matches!(err, Error::Tls(_)) && err.to_string().contains("TLS handshake with"),
        "{err}"
    );
    // The same path without the forged bytes connects over TLS.
    assert!(!proxy.armed(Direction::ServerToClient));
    let mut conn = Connection::connect_str(&conninfo).expect("connects without the injection");
    assert!(conn.is_tls());
    assert_eq!(conn.query("SELECT 1").unwrap(), [[Some("1".to_owned())]]);
}
