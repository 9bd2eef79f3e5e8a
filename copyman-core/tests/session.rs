//! The PQv3 session machine against scripted servers: byte streams built by hand, fed whole and
//! one byte at a time (both must give the same events), and the client's bytes checked.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use copyman_core::session::{
    ChannelBinding, CopyFormat, DbError, Event, Session, SessionError, StartupConfig, State,
    TransactionStatus, parse_server_version,
};
use copyman_wire::{Framer, Position, realign};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

// -- Server messages --------------------------------------------------------------------------

fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend_from_slice(&u32::try_from(body.len() + 4).unwrap().to_be_bytes());
    out.extend_from_slice(body);
    out
}

fn cstr(s: &str) -> Vec<u8> {
    let mut out = s.as_bytes().to_vec();
    out.push(0);
    out
}

fn auth(code: i32, data: &[u8]) -> Vec<u8> {
    let mut body = code.to_be_bytes().to_vec();
    body.extend_from_slice(data);
    msg(b'R', &body)
}

fn auth_ok() -> Vec<u8> {
    auth(0, &[])
}

fn ready(status: u8) -> Vec<u8> {
    msg(b'Z', &[status])
}

fn param(name: &str, value: &str) -> Vec<u8> {
    msg(b'S', &[cstr(name), cstr(value)].concat())
}

fn key_data(process_id: i32, secret: i32) -> Vec<u8> {
    msg(
        b'K',
        &[process_id.to_be_bytes(), secret.to_be_bytes()].concat(),
    )
}

fn command_complete(tag: &str) -> Vec<u8> {
    msg(b'C', &cstr(tag))
}

fn fields(fields: &[(u8, &str)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (kind, value) in fields {
        body.push(*kind);
        body.extend(cstr(value));
    }
    body.push(0);
    body
}

fn error_response(f: &[(u8, &str)]) -> Vec<u8> {
    msg(b'E', &fields(f))
}

fn error(severity: &str, code: &str, message: &str) -> Vec<u8> {
    error_response(&[
        (b'S', severity),
        (b'V', severity),
        (b'C', code),
        (b'M', message),
    ])
}

fn canceled() -> Vec<u8> {
    error("ERROR", "57014", "canceling statement due to user request")
}

fn notice(message: &str) -> Vec<u8> {
    msg(
        b'N',
        &fields(&[(b'S', "NOTICE"), (b'C', "00000"), (b'M', message)]),
    )
}

fn notification(process_id: i32, channel: &str, payload: &str) -> Vec<u8> {
    msg(
        b'A',
        &[
            process_id.to_be_bytes().to_vec(),
            cstr(channel),
            cstr(payload),
        ]
        .concat(),
    )
}

fn copy_response(tag: u8, format: u8, columns: i16) -> Vec<u8> {
    let mut body = vec![format];
    body.extend_from_slice(&columns.to_be_bytes());
    for _ in 0..columns {
        body.extend_from_slice(&i16::from(format).to_be_bytes());
    }
    msg(tag, &body)
}

fn copy_out_response(columns: i16) -> Vec<u8> {
    copy_response(b'H', 0, columns)
}

fn copy_in_response(columns: i16) -> Vec<u8> {
    copy_response(b'G', 0, columns)
}

fn copy_data(data: &[u8]) -> Vec<u8> {
    msg(b'd', data)
}

fn copy_done() -> Vec<u8> {
    msg(b'c', &[])
}

fn row_description(names: &[&str]) -> Vec<u8> {
    let mut body = i16::try_from(names.len()).unwrap().to_be_bytes().to_vec();
    for name in names {
        body.extend(cstr(name));
        body.extend_from_slice(&0u32.to_be_bytes()); // table oid
        body.extend_from_slice(&0i16.to_be_bytes()); // column
        body.extend_from_slice(&25u32.to_be_bytes()); // text
        body.extend_from_slice(&(-1i16).to_be_bytes());
        body.extend_from_slice(&(-1i32).to_be_bytes());
        body.extend_from_slice(&0i16.to_be_bytes());
    }
    msg(b'T', &body)
}

fn data_row(values: &[Option<&str>]) -> Vec<u8> {
    let mut body = i16::try_from(values.len()).unwrap().to_be_bytes().to_vec();
    for value in values {
        match value {
            None => body.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(v) => {
                body.extend_from_slice(&i32::try_from(v.len()).unwrap().to_be_bytes());
                body.extend_from_slice(v.as_bytes());
            }
        }
    }
    msg(b'D', &body)
}

/// What a server sends after AuthenticationOk.
fn startup_tail() -> Vec<u8> {
    [
        param("server_version", "15.18 (Debian 15.18-1.pgdg120+1)"),
        param("client_encoding", "UTF8"),
        param("DateStyle", "ISO, MDY"),
        key_data(4242, -7),
        ready(b'I'),
    ]
    .concat()
}

// -- Client messages --------------------------------------------------------------------------

/// Everything the session queued for the socket.
fn sent(session: &mut Session) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(bytes) = session.poll_transmit() {
        out.extend_from_slice(&bytes);
    }
    out
}

/// Splits tagged frontend messages into (tag, body).
fn frontend_messages(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let len = u32::from_be_bytes(bytes[1..5].try_into().unwrap()) as usize;
        out.push((bytes[0], bytes[5..1 + len].to_vec()));
        bytes = &bytes[1 + len..];
    }
    out
}

/// The parameters of a StartupMessage.
fn startup_parameters(bytes: &[u8]) -> Vec<(String, String)> {
    let len = u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
    assert_eq!(len, bytes.len(), "one startup message");
    assert_eq!(&bytes[4..8], &196_608u32.to_be_bytes(), "protocol 3.0");
    let strings: Vec<String> = bytes[8..len - 1]
        .split(|&b| b == 0)
        .map(|s| String::from_utf8(s.to_vec()).unwrap())
        .collect();
    assert_eq!(bytes[len - 1], 0);
    let strings = &strings[..strings.len() - 1]; // the split after the last NUL
    strings
        .chunks(2)
        .map(|kv| (kv[0].clone(), kv[1].clone()))
        .collect()
}

// -- Feeding ----------------------------------------------------------------------------------

fn events(session: &mut Session) -> Vec<Event> {
    std::iter::from_fn(|| session.poll_event()).collect()
}

/// Feeds `input` in `chunk`-byte pieces and collects the events. Errors are left to the
/// events (`Event::Closed`) and to the caller.
fn feed(session: &mut Session, input: &[u8], chunk: usize) -> Vec<Event> {
    let mut out = Vec::new();
    for piece in input.chunks(chunk.max(1)) {
        let _ = session.handle_input(piece);
        out.extend(events(session));
    }
    out
}

/// Runs `make` then feeds `input` whole and byte by byte: both must give the same events and
/// the same bytes to send. Returns the session fed whole, its events and what it sent after
/// `make`.
#[track_caller]
fn run(make: impl Fn() -> Session, input: &[u8]) -> (Session, Vec<Event>, Vec<u8>) {
    let mut whole = make();
    let before = sent(&mut whole);
    let whole_events = feed(&mut whole, input, usize::MAX);
    let whole_sent = sent(&mut whole);
    let mut bytewise = make();
    assert_eq!(sent(&mut bytewise), before);
    let bytewise_events = feed(&mut bytewise, input, 1);
    assert_eq!(
        whole_events, bytewise_events,
        "same events whole and byte by byte"
    );
    assert_eq!(
        sent(&mut bytewise),
        whole_sent,
        "same output whole and byte by byte"
    );
    assert_eq!(whole.state(), bytewise.state());
    (whole, whole_events, whole_sent)
}

fn config() -> StartupConfig {
    let mut config = StartupConfig::new("alice");
    config.database = Some("shop".into());
    config
}

fn with_password(password: &str) -> StartupConfig {
    let mut config = config();
    config.password = Some(password.as_bytes().to_vec());
    config
}

/// A session through a trust startup, with its startup events drained.
fn ready_session() -> Session {
    let mut session = Session::new(config());
    let _ = sent(&mut session);
    session
        .handle_input(&[auth_ok(), startup_tail()].concat())
        .unwrap();
    assert_eq!(
        events(&mut session),
        vec![Event::Ready(TransactionStatus::Idle)]
    );
    session
}

fn session_running(op: impl Fn(&mut Session)) -> impl Fn() -> Session {
    move || {
        let mut session = ready_session();
        op(&mut session);
        session
    }
}

fn closed(events: &[Event]) -> &SessionError {
    match events.last() {
        Some(Event::Closed(error)) => error,
        other => panic!("expected Event::Closed last, got {other:?}"),
    }
}

fn db(error: &SessionError) -> &DbError {
    error
        .db_error()
        .unwrap_or_else(|| panic!("expected a database error, got {error:?}"))
}

fn complete(tag: &str, rows: Option<u64>) -> Event {
    Event::CommandComplete {
        tag: tag.into(),
        rows,
    }
}

const IDLE: Event = Event::Ready(TransactionStatus::Idle);

// -- Startup and authentication ---------------------------------------------------------------

#[test]
fn trust_startup_sends_portability_settings_and_becomes_ready() {
    let input = [auth_ok(), notice("welcome"), startup_tail()].concat();
    let make = || {
        let mut config = config();
        config.application_name = Some("copyman-test".into());
        config.extra.push(("TimeZone".into(), "UTC".into()));
        config.extra.push(("extra_float_digits".into(), "2".into()));
        Session::new(config)
    };
    let mut session = make();
    assert_eq!(session.state(), State::Startup);
    let params = startup_parameters(&sent(&mut session));
    let get = |name: &str| {
        params
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>()
    };
    assert_eq!(get("user"), ["alice"]);
    assert_eq!(get("database"), ["shop"]);
    assert_eq!(get("application_name"), ["copyman-test"]);
    assert_eq!(get("client_encoding"), ["UTF8"]);
    assert_eq!(get("DateStyle"), ["ISO"]);
    assert_eq!(get("IntervalStyle"), ["postgres"]);
    assert_eq!(get("TimeZone"), ["UTC"]);
    // An explicit setting replaces the default one; each name goes once.
    assert_eq!(get("extra_float_digits"), ["2"]);

    let (session, events, out) = run(make, &input);
    assert!(out.is_empty(), "trust needs no answer");
    assert_eq!(events.len(), 2);
    assert!(
        matches!(&events[0], Event::Notice(n) if n.message == "welcome" && n.severity == "NOTICE")
    );
    assert_eq!(events[1], IDLE);
    assert_eq!(session.state(), State::Ready);
    assert_eq!(
        session.parameter("server_version"),
        Some("15.18 (Debian 15.18-1.pgdg120+1)")
    );
    assert_eq!(session.parameter("DateStyle"), Some("ISO, MDY"));
    assert_eq!(session.server_version_num(), Some(150_018));
    assert_eq!(session.backend_key(), Some((4242, -7)));
    let cancel = session.cancel_request().unwrap();
    assert_eq!(
        cancel.as_ref(),
        [
            16u32.to_be_bytes(),
            80_877_102u32.to_be_bytes(),
            4242i32.to_be_bytes(),
            (-7i32).to_be_bytes()
        ]
        .concat()
    );
}

#[test]
fn cleartext_password_is_sent_as_password_message() {
    let input = [auth(3, &[]), auth_ok(), startup_tail()].concat();
    let (session, events, out) = run(|| Session::new(with_password("s3cret")), &input);
    assert_eq!(frontend_messages(&out), vec![(b'p', cstr("s3cret"))]);
    assert_eq!(events, vec![IDLE]);
    assert_eq!(session.state(), State::Ready);
}

#[test]
fn md5_password_answer_is_md5_hash_of_user_password_salt() {
    let salt = [0x2a, 0x3d, 0x8f, 0xe0];
    let mut session = Session::new(with_password("s3cret"));
    let _ = sent(&mut session);
    session.handle_input(&auth(5, &salt)).unwrap();
    assert_eq!(session.state(), State::Authenticating);
    let expected = postgres_protocol::authentication::md5_hash(b"alice", b"s3cret", salt);
    assert_eq!(
        frontend_messages(&sent(&mut session)),
        vec![(b'p', cstr(&expected))]
    );

    let input = [auth(5, &salt), auth_ok(), startup_tail()].concat();
    let (_, events, out) = run(|| Session::new(with_password("s3cret")), &input);
    assert_eq!(frontend_messages(&out), vec![(b'p', cstr(&expected))]);
    assert_eq!(events, vec![IDLE]);
}

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).unwrap();
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// PBKDF2-HMAC-SHA-256 with one block: SCRAM's Hi().
fn hi(password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
    let mut u = hmac(password, &[salt, &[0, 0, 0, 1]].concat());
    let mut out = u.clone();
    for _ in 1..iterations {
        u = hmac(password, &u);
        out.iter_mut().zip(&u).for_each(|(o, x)| *o ^= x);
    }
    out
}

/// The server side of a SCRAM-SHA-256 exchange, verifying the client's proof and its channel
/// binding: the GS2 header it must send (`n,,` no TLS, `y,,` TLS but no binding offered,
/// `p=tls-server-end-point,,` bound) and the binding data it must prove.
struct ScramServer {
    gs2_header: &'static str,
    binding_data: Vec<u8>,
    password: &'static str,
    salt: Vec<u8>,
    iterations: u32,
    client_first_bare: String,
    server_first: String,
}

impl ScramServer {
    /// Reads the SASLInitialResponse and answers the server-first-message.
    fn first(&mut self, client: &[u8]) -> Vec<u8> {
        let messages = frontend_messages(client);
        assert_eq!(messages.len(), 1);
        let (tag, body) = &messages[0];
        assert_eq!(*tag, b'p');
        let mechanism_end = body.iter().position(|&b| b == 0).unwrap();
        let expected: &[u8] = if self.gs2_header.starts_with("p=") {
            b"SCRAM-SHA-256-PLUS"
        } else {
            b"SCRAM-SHA-256"
        };
        assert_eq!(&body[..mechanism_end], expected);
        let data = &body[mechanism_end + 5..];
        let len = i32::from_be_bytes(
            body[mechanism_end + 1..mechanism_end + 5]
                .try_into()
                .unwrap(),
        );
        assert_eq!(usize::try_from(len).unwrap(), data.len());
        let first = std::str::from_utf8(data).unwrap();
        // Empty user name: the server uses the startup user.
        let bare = first
            .strip_prefix(self.gs2_header)
            .unwrap_or_else(|| panic!("gs2 header {:?} in {first:?}", self.gs2_header));
        let client_nonce = bare.strip_prefix("n=,r=").unwrap();
        self.client_first_bare = bare.to_owned();
        self.server_first = format!(
            "r={client_nonce}SERVERNONCE,s={},i={}",
            BASE64.encode(&self.salt),
            self.iterations
        );
        auth(11, self.server_first.as_bytes())
    }

    /// Checks the client-final-message's proof and answers the server-final-message.
    fn last(&self, client: &[u8]) -> Vec<u8> {
        let messages = frontend_messages(client);
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].0, b'p');
        let final_message = String::from_utf8(messages[0].1.clone()).unwrap();
        let (without_proof, proof) = final_message.rsplit_once(",p=").unwrap();
        let binding = [self.gs2_header.as_bytes(), &self.binding_data].concat();
        let expected_c = format!("c={},r=", BASE64.encode(binding));
        assert!(without_proof.starts_with(&expected_c), "{without_proof}");
        let auth_message = format!(
            "{},{},{}",
            self.client_first_bare, self.server_first, without_proof
        );
        let salted = hi(self.password.as_bytes(), &self.salt, self.iterations);
        let client_key = hmac(&salted, b"Client Key");
        let stored_key = Sha256::digest(&client_key).to_vec();
        let signature = hmac(&stored_key, auth_message.as_bytes());
        let expected: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(k, s)| k ^ s)
            .collect();
        assert_eq!(
            BASE64.decode(proof).unwrap(),
            expected,
            "the client proves the password"
        );
        let server_key = hmac(&salted, b"Server Key");
        let server_signature = hmac(&server_key, auth_message.as_bytes());
        auth(
            12,
            format!("v={}", BASE64.encode(server_signature)).as_bytes(),
        )
    }
}

fn sasl_offer(mechanisms: &[&str]) -> Vec<u8> {
    let mut data: Vec<u8> = mechanisms.iter().flat_map(|m| cstr(m)).collect();
    data.push(0);
    auth(10, &data)
}

/// A full SCRAM exchange with the server's input fed in `chunk`-byte pieces.
fn scram_exchange(chunk: usize, tamper_final: bool) -> (Session, Vec<Event>) {
    let server = ScramServer {
        gs2_header: "n,,",
        binding_data: Vec::new(),
        password: "pencil",
        salt: b"0123456789abcdef".to_vec(),
        iterations: 4096,
        client_first_bare: String::new(),
        server_first: String::new(),
    };
    let session = Session::new(with_password("pencil"));
    let offer = sasl_offer(&["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]);
    scram_exchange_with(server, session, &offer, chunk, tamper_final)
}

/// A SCRAM exchange of `session` with `server`, after the server offered `offer`.
fn scram_exchange_with(
    mut server: ScramServer,
    mut session: Session,
    offer: &[u8],
    chunk: usize,
    tamper_final: bool,
) -> (Session, Vec<Event>) {
    let _ = sent(&mut session);
    let mut all = feed(&mut session, offer, chunk);
    assert_eq!(session.state(), State::Authenticating);
    let server_first = server.first(&sent(&mut session));
    all.extend(feed(&mut session, &server_first, chunk));
    let mut server_final = server.last(&sent(&mut session));
    if tamper_final {
        let last = server_final.len() - 2;
        server_final[last] = if server_final[last] == b'A' {
            b'B'
        } else {
            b'A'
        };
    }
    all.extend(feed(
        &mut session,
        &[server_final, auth_ok(), startup_tail()].concat(),
        chunk,
    ));
    (session, all)
}

#[test]
fn scram_sha_256_full_exchange_proves_password_and_checks_server() {
    let (session, events) = scram_exchange(usize::MAX, false);
    assert_eq!(events, vec![IDLE]);
    assert_eq!(session.state(), State::Ready);
    let (bytewise, bytewise_events) = scram_exchange(1, false);
    assert_eq!(bytewise_events, events);
    assert_eq!(bytewise.state(), State::Ready);
}

#[test]
fn scram_with_a_wrong_server_signature_fails_authentication() {
    let (mut session, events) = scram_exchange(usize::MAX, true);
    let error = closed(&events).clone();
    assert!(
        matches!(&error, SessionError::Auth { reason } if reason.contains("proof")),
        "{error}"
    );
    assert_eq!(session.state(), State::Failed);
    assert_eq!(session.query("SELECT 1"), Err(error));
}

#[test]
fn scram_plus_only_needs_tls() {
    let (session, events, _) = run(
        || Session::new(with_password("x")),
        &sasl_offer(&["SCRAM-SHA-256-PLUS"]),
    );
    let error = closed(&events);
    assert!(error.to_string().contains("SCRAM-SHA-256-PLUS"), "{error}");
    assert!(error.to_string().contains("TLS"), "{error}");
    assert_eq!(session.state(), State::Failed);
}

fn scram_server(gs2_header: &'static str, binding_data: &[u8]) -> ScramServer {
    ScramServer {
        gs2_header,
        binding_data: binding_data.to_vec(),
        password: "pencil",
        salt: b"fedcba9876543210".to_vec(),
        iterations: 4096,
        client_first_bare: String::new(),
        server_first: String::new(),
    }
}

/// A session on a TLS connection whose server certificate hashes to `hash`.
fn tls_session(binding: ChannelBinding, hash: &[u8]) -> Session {
    let mut config = with_password("pencil");
    config.channel_binding = binding;
    let mut session = Session::new(config);
    session.set_tls_server_end_point(hash.to_vec());
    session
}

#[test]
fn scram_over_tls_binds_to_the_server_certificate() {
    let hash = [0xab; 32];
    for chunk in [usize::MAX, 1] {
        let (session, events) = scram_exchange_with(
            scram_server("p=tls-server-end-point,,", &hash),
            tls_session(ChannelBinding::Prefer, &hash),
            &sasl_offer(&["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]),
            chunk,
            false,
        );
        assert_eq!(events, vec![IDLE]);
        assert!(session.channel_bound());
        // Required binding is satisfied by it.
        let (session, events) = scram_exchange_with(
            scram_server("p=tls-server-end-point,,", &hash),
            tls_session(ChannelBinding::Require, &hash),
            &sasl_offer(&["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]),
            chunk,
            false,
        );
        assert_eq!(events, vec![IDLE]);
        assert!(session.channel_bound());
    }
}

#[test]
fn scram_over_tls_without_plus_on_offer_says_it_could_bind() {
    // 'y': a server that does support binding (and so was tampered with) refuses this.
    let (session, events) = scram_exchange_with(
        scram_server("y,,", b""),
        tls_session(ChannelBinding::Prefer, &[1; 32]),
        &sasl_offer(&["SCRAM-SHA-256"]),
        usize::MAX,
        false,
    );
    assert_eq!(events, vec![IDLE]);
    assert!(!session.channel_bound());
}

#[test]
fn channel_binding_disable_never_binds() {
    let (session, events) = scram_exchange_with(
        scram_server("n,,", b""),
        tls_session(ChannelBinding::Disable, &[1; 32]),
        &sasl_offer(&["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]),
        usize::MAX,
        false,
    );
    assert_eq!(events, vec![IDLE]);
    assert!(!session.channel_bound());
}

#[test]
fn required_channel_binding_refuses_every_unbound_authentication() {
    let required = || {
        let mut config = with_password("pencil");
        config.channel_binding = ChannelBinding::Require;
        Session::new(config)
    };
    for (what, input) in [
        ("trust", [auth_ok(), startup_tail()].concat()),
        ("cleartext", auth(3, b"")),
        ("md5", auth(5, &[1, 2, 3, 4])),
        ("plain SCRAM", sasl_offer(&["SCRAM-SHA-256"])),
        (
            "SCRAM-PLUS without TLS",
            sasl_offer(&["SCRAM-SHA-256-PLUS"]),
        ),
    ] {
        let (session, events, output) = run(required, &input);
        let error = closed(&events);
        assert!(
            matches!(error, SessionError::Auth { .. })
                && error.to_string().contains("channel binding"),
            "{what}: {error}"
        );
        assert_eq!(session.state(), State::Failed, "{what}");
        // Not a byte of the password went out.
        assert!(
            !frontend_messages(&output)
                .iter()
                .any(|(tag, _)| *tag == b'p'),
            "{what}: answered"
        );
    }
    // Also on TLS when the server does not offer PLUS.
    let (_, events, _) = run(
        || tls_session(ChannelBinding::Require, &[1; 32]),
        &sasl_offer(&["SCRAM-SHA-256"]),
    );
    assert!(closed(&events).to_string().contains("channel binding"));
}

#[test]
fn authentication_ok_before_scram_completes_is_refused() {
    let mut session = Session::new(with_password("x"));
    let _ = sent(&mut session);
    session
        .handle_input(&sasl_offer(&["SCRAM-SHA-256"]))
        .unwrap();
    let error = session.handle_input(&auth_ok()).unwrap_err();
    assert!(matches!(error, SessionError::Auth { .. }), "{error}");
}

#[test]
fn wrong_password_at_startup_is_a_db_error_and_closes() {
    let input = [
        auth(3, &[]),
        error(
            "FATAL",
            "28P01",
            "password authentication failed for user \"alice\"",
        ),
    ]
    .concat();
    let (mut session, events, _) = run(|| Session::new(with_password("nope")), &input);
    assert_eq!(events.len(), 1);
    let error = closed(&events).clone();
    assert_eq!(db(&error).code, "28P01");
    assert!(db(&error).is_fatal());
    assert_eq!(
        error.to_string(),
        "FATAL:  28P01: password authentication failed for user \"alice\""
    );
    assert_eq!(session.state(), State::Closed);
    assert_eq!(session.handle_input(b"anything"), Err(error.clone()));
    session.handle_eof();
    assert_eq!(session.poll_event(), None, "Closed is the last event");
}

#[test]
fn unknown_database_at_startup_is_a_db_error() {
    let input = error("FATAL", "3D000", "database \"shop\" does not exist");
    let (session, events, _) = run(|| Session::new(config()), &input);
    assert_eq!(db(closed(&events)).code, "3D000");
    assert_eq!(session.state(), State::Closed);
}

/// A postmaster that could not start a backend answers at once in the old protocol's form (`E`,
/// its text, a NUL): said in its words, as libpq says them — it was "protocol violation by the
/// server: message 'E' announces 1668249964 bytes" (conn40 F5). Split anywhere, it waits for its
/// end; a protocol-3 error there is read as before.
#[test]
fn a_fork_failure_at_startup_is_said_in_the_servers_words() {
    let input = b"Ecould not fork new process for connection: Resource temporarily unavailable\n\0";
    for split in [input.len(), 1, 5, 40] {
        let mut session = Session::new(config());
        let _ = session.poll_transmit();
        let (first, rest) = input.split_at(split);
        let mut outcome = session.handle_input(first);
        if outcome.is_ok() && !rest.is_empty() {
            outcome = session.handle_input(rest);
        }
        let error = outcome.unwrap_err();
        assert_eq!(
            error.to_string(),
            "FATAL:  could not fork new process for connection: Resource temporarily unavailable",
            "split at {split}"
        );
        assert_eq!(session.state(), State::Closed);
    }
}

#[test]
fn no_password_when_the_server_asks_for_one() {
    let (session, events, out) = run(|| Session::new(config()), &auth(5, &[1, 2, 3, 4]));
    assert!(out.is_empty());
    assert_eq!(
        closed(&events).to_string(),
        "password required by the server (md5) but none given"
    );
    assert_eq!(session.state(), State::Failed);
    let (_, events, _) = run(|| Session::new(config()), &auth(3, &[]));
    assert_eq!(
        closed(&events).to_string(),
        "password required by the server (cleartext) but none given"
    );
}

#[test]
fn unsupported_authentication_method_is_named() {
    let (_, events, _) = run(|| Session::new(with_password("x")), &auth(7, &[]));
    assert_eq!(
        closed(&events).to_string(),
        "unsupported authentication method: GSS"
    );
    let (_, events, _) = run(|| Session::new(with_password("x")), &auth(9, &[]));
    assert_eq!(
        closed(&events).to_string(),
        "unsupported authentication method: SSPI"
    );
    let (_, events, _) = run(
        || Session::new(with_password("x")),
        &sasl_offer(&["OAUTHBEARER"]),
    );
    assert!(closed(&events).to_string().contains("OAUTHBEARER"));
}

#[test]
fn eof_mid_startup_closes_the_session() {
    let mut session = Session::new(config());
    let _ = sent(&mut session);
    session
        .handle_input(&[auth_ok(), param("server_version", "16.4")].concat())
        .unwrap();
    session
        .handle_input(&param("TimeZone", "UTC")[..4])
        .unwrap();
    session.handle_eof();
    assert_eq!(
        events(&mut session),
        vec![Event::Closed(SessionError::Closed)]
    );
    assert_eq!(session.state(), State::Closed);
    assert_eq!(session.query("SELECT 1"), Err(SessionError::Closed));
    assert_eq!(session.handle_input(b"Z"), Err(SessionError::Closed));
    assert_eq!(session.copy_done(), Err(SessionError::Closed));
    session.handle_eof();
    assert_eq!(session.poll_event(), None);
}

/// A server stopped at once (or after another backend's crash) sends a WARNING 57P01 or
/// 57P02, then closes the socket: the session keeps that notice, which says no backend of it
/// stays (jobs72 F1); its end is still a connection's end, not an answer (a COMMIT it cut short
/// is in doubt).
#[test]
fn a_notice_that_the_server_ends_the_session_is_kept() {
    let mut session = ready_session();
    session.handle_input(&notice("hello")).unwrap();
    assert!(session.ending_notice().is_none());
    let ending = msg(
        b'N',
        &fields(&[
            (b'S', "WARNING"),
            (b'V', "WARNING"),
            (b'C', "57P01"),
            (
                b'M',
                "terminating connection due to immediate shutdown command",
            ),
        ]),
    );
    session.handle_input(&ending).unwrap();
    assert_eq!(
        session.ending_notice().map(|n| n.code.as_str()),
        Some("57P01")
    );
    session.handle_eof();
    assert_eq!(closed(&events(&mut session)), &SessionError::Closed);
}

#[test]
fn startup_parameter_with_nul_fails_the_session() {
    let mut config = config();
    config.extra.push(("search_path".into(), "a\0b".into()));
    let mut session = Session::new(config);
    assert_eq!(session.state(), State::Failed);
    assert!(session.poll_transmit().is_none());
    assert!(matches!(
        events(&mut session)[..],
        [Event::Closed(SessionError::NulByte { .. })]
    ));
}

#[test]
fn debug_redacts_the_password() {
    let config = with_password("hunter2");
    assert!(!format!("{config:?}").contains("hunter2"));
    let session = Session::new(config);
    assert!(!format!("{session:?}").contains("hunter2"));
}

#[test]
fn server_version_numbers() {
    assert_eq!(
        parse_server_version("15.18 (Debian 15.18-1.pgdg120+1)"),
        Some(150_018)
    );
    assert_eq!(parse_server_version("9.6.24"), Some(90_624));
    assert_eq!(parse_server_version("16beta1"), Some(160_000));
    assert_eq!(parse_server_version("10.1"), Some(100_001));
    assert_eq!(parse_server_version("nope"), None);
}

// -- Simple query -----------------------------------------------------------------------------

#[test]
fn simple_query_with_rows_and_command_tags() {
    let make = session_running(|s| s.query("SELECT a, b FROM t; INSERT ...; BEGIN").unwrap());
    let mut probe = make();
    assert_eq!(
        frontend_messages(&sent(&mut probe)),
        vec![(b'Q', cstr("SELECT a, b FROM t; INSERT ...; BEGIN"))]
    );
    assert_eq!(probe.state(), State::Query);
    let input = [
        row_description(&["a", "b"]),
        data_row(&[Some("1"), None]),
        data_row(&[Some("2"), Some("x\u{e9}")]),
        command_complete("SELECT 2"),
        command_complete("INSERT 0 5"),
        command_complete("BEGIN"),
        ready(b'T'),
    ]
    .concat();
    let (session, events, _) = run(make, &input);
    assert_eq!(
        events,
        vec![
            Event::Row(vec![Some("1".into()), None]),
            Event::Row(vec![Some("2".into()), Some("x\u{e9}".into())]),
            complete("SELECT 2", Some(2)),
            complete("INSERT 0 5", Some(5)),
            complete("BEGIN", None),
            Event::Ready(TransactionStatus::InTransaction),
        ]
    );
    assert_eq!(
        session.transaction_status(),
        TransactionStatus::InTransaction
    );
    assert_eq!(session.state(), State::Ready);
    // The names of the result columns, kept until the next operation.
    assert_eq!(session.result_columns(), ["a", "b"]);
}

#[test]
fn error_in_query_then_ready() {
    let input = [
        error_response(&[
            (b'S', "ERROR"),
            (b'V', "ERROR"),
            (b'C', "42P01"),
            (b'M', "relation \"nope\" does not exist"),
            (b'P', "15"),
            (b'H', "Check the spelling."),
        ]),
        ready(b'E'),
    ]
    .concat();
    let (mut session, events, _) = run(
        session_running(|s| s.query("SELECT * FROM nope").unwrap()),
        &input,
    );
    let [Event::Error(error), Event::Ready(TransactionStatus::Failed)] = &events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(error.code, "42P01");
    assert_eq!(error.position, Some(15));
    assert!(!error.is_fatal());
    assert_eq!(
        error.to_string(),
        "ERROR:  42P01: relation \"nope\" does not exist\nHINT:  Check the spelling."
    );
    // The session is usable again.
    session.query("ROLLBACK").unwrap();
}

/// A session whose `client_encoding` is LATIN1 (two LATIN1 servers' data passed as it is):
/// its notices and errors are read in LATIN1 (a value in an error's context was printed as
/// U+FFFDs, types66 F14).
#[test]
fn messages_are_read_in_the_sessions_client_encoding() {
    let latin1 = |tag: u8, severity: &str, text: &[u8]| {
        let mut body = [b"S", severity.as_bytes(), b"\0C22001\0M"].concat();
        body.extend_from_slice(text);
        body.extend_from_slice(b"\0\0");
        msg(tag, &body)
    };
    let input = [
        param("client_encoding", "LATIN1"),
        latin1(b'N', "NOTICE", b"caf\xe9"),
        latin1(b'E', "ERROR", b"column v: \"Zo\xeb\""),
        ready(b'E'),
    ]
    .concat();
    let (_, events, _) = run(session_running(|s| s.query("SELECT").unwrap()), &input);
    let [_, Event::Notice(notice), Event::Error(error), _] = &events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(notice.message, "café");
    assert_eq!(error.message, "column v: \"Zoë\"");
}

#[test]
fn empty_query_and_notices_and_parameter_changes() {
    let input = [
        notice("hello"),
        msg(b'I', &[]),
        param("TimeZone", "UTC"),
        notification(7, "chan", "payload"),
        ready(b'I'),
    ]
    .concat();
    let (session, events, _) = run(session_running(|s| s.query("").unwrap()), &input);
    assert!(matches!(&events[0], Event::Notice(n) if n.message == "hello"));
    assert_eq!(
        events[1..],
        [
            Event::ParameterChanged {
                name: "TimeZone".into(),
                value: "UTC".into()
            },
            Event::Notification {
                process_id: 7,
                channel: "chan".into(),
                payload: "payload".into()
            },
            IDLE,
        ]
    );
    assert_eq!(session.parameter("TimeZone"), Some("UTC"));
}

#[test]
fn operations_in_the_wrong_state_are_misuse_and_not_sticky() {
    let mut session = ready_session();
    assert_eq!(
        session.copy_done(),
        Err(SessionError::Misuse {
            operation: "copy_done",
            state: State::Ready
        })
    );
    assert_eq!(
        session.abort_copy_out(&[]).unwrap_err().to_string(),
        "abort_copy_out is not allowed in state ready"
    );
    assert!(matches!(
        session.query("a\0b"),
        Err(SessionError::NulByte { .. })
    ));
    assert!(
        session.poll_transmit().is_none(),
        "nothing half-encoded goes out"
    );
    session.query("SELECT 1").unwrap();
    assert!(matches!(
        session.query("SELECT 2"),
        Err(SessionError::Misuse {
            state: State::Query,
            ..
        })
    ));
}

#[test]
fn query_that_starts_a_copy_is_refused() {
    let make = session_running(|s| s.query("COPY t FROM STDIN").unwrap());
    let mut probe = make();
    let _ = sent(&mut probe);
    probe.handle_input(&copy_in_response(1)).unwrap();
    let messages = frontend_messages(&sent(&mut probe));
    assert_eq!(messages[0].0, b'f');
    let input = [copy_in_response(1), canceled(), ready(b'I')].concat();
    let (_, events, _) = run(make, &input);
    assert_eq!(
        events,
        vec![
            Event::Failed(SessionError::UnexpectedCopy {
                got: "COPY FROM STDIN",
                completed: false,
            }),
            IDLE
        ]
    );
}

// -- COPY OUT ---------------------------------------------------------------------------------

/// A driver of a COPY OUT as an adapter does it: raw bytes to the framer while it follows
/// CopyData, to the session otherwise.
#[derive(Default)]
struct CopyOutDriver {
    framer: Framer,
    framing: bool,
    /// The bytes the framer took (what receivers would get).
    framed: Vec<u8>,
    /// Events other than CopyData.
    events: Vec<Event>,
    /// How many CopyData events the session gave back.
    handbacks: usize,
}

impl CopyOutDriver {
    fn route(&mut self, session: &mut Session, chunk: &[u8]) {
        if self.framing {
            let walk = self.framer.advance(chunk).unwrap();
            let end = walk.stop.unwrap_or(chunk.len());
            self.framed.extend_from_slice(&chunk[..end]);
            match walk.stop {
                Some(stop) => {
                    self.framing = false;
                    session.handle_input(&chunk[stop..]).unwrap();
                }
                None => return,
            }
        } else {
            session.handle_input(chunk).unwrap();
        }
        self.drain(session);
    }

    fn drain(&mut self, session: &mut Session) {
        while let Some(event) = session.poll_event() {
            match event {
                Event::CopyData(bytes) => {
                    assert!(
                        !self.framing,
                        "CopyData only while the session has the stream"
                    );
                    assert_eq!(session.buffered_len(), 0, "the session keeps nothing back");
                    self.handbacks += 1;
                    self.framer.resume();
                    self.framing = true;
                    self.route(session, &bytes);
                }
                event => self.events.push(event),
            }
        }
    }

    fn feed(&mut self, session: &mut Session, input: &[u8], chunk: usize) {
        for piece in input.chunks(chunk.max(1)) {
            self.route(session, piece);
        }
    }
}

/// Runs a COPY OUT of `input` through a driver fed in `chunk`-byte pieces.
fn copy_out_run(input: &[u8], chunk: usize) -> (Session, CopyOutDriver) {
    let mut session = ready_session();
    session.copy_out("COPY t TO STDOUT").unwrap();
    assert_eq!(
        frontend_messages(&sent(&mut session)),
        vec![(b'Q', cstr("COPY t TO STDOUT"))]
    );
    let mut driver = CopyOutDriver::default();
    driver.feed(&mut session, input, chunk);
    (session, driver)
}

#[test]
fn copy_out_with_notice_parameter_and_notification_mid_stream() {
    let frames_before = [copy_data(b"1\tone\n"), copy_data(b"2\ttwo\n")].concat();
    let frames_after = copy_data(b"3\tthree\n");
    let input = [
        copy_out_response(2),
        frames_before.clone(),
        notice("mid-stream"),
        param("application_name", "renamed"),
        notification(9, "c", "p"),
        frames_after.clone(),
        copy_done(),
        command_complete("COPY 3"),
        ready(b'I'),
    ]
    .concat();
    let (session, whole) = copy_out_run(&input, usize::MAX);
    let (_, bytewise) = copy_out_run(&input, 1);
    assert_eq!(whole.events, bytewise.events);
    assert_eq!(whole.framed, bytewise.framed);
    assert_eq!(
        whole.framed,
        [frames_before, frames_after].concat(),
        "the framer gets every frame"
    );
    assert_eq!(whole.framer.frames(), 3);
    // Whole: the bytes after H come back once, and again after the notices.
    assert_eq!(whole.handbacks, 2);
    assert!(matches!(&whole.events[1], Event::Notice(n) if n.message == "mid-stream"));
    assert_eq!(
        whole.events[0],
        Event::CopyOutStarted {
            format: CopyFormat::Text,
            columns: 2
        }
    );
    assert_eq!(
        whole.events[2..],
        [
            Event::ParameterChanged {
                name: "application_name".into(),
                value: "renamed".into()
            },
            Event::Notification {
                process_id: 9,
                channel: "c".into(),
                payload: "p".into()
            },
            complete("COPY 3", Some(3)),
            IDLE,
        ]
    );
    assert_eq!(session.state(), State::Ready);
}

#[test]
fn copy_out_bytes_after_copy_out_response_come_back_as_copy_data() {
    let frames = [copy_data(b"a\n"), copy_data(b"b\n")].concat();
    let mut session = ready_session();
    session.copy_out("COPY t TO STDOUT").unwrap();
    // H, the frames and the first bytes of the next header, all in one read.
    let mut read = [copy_out_response(1), frames.clone()].concat();
    read.extend_from_slice(b"d\0\0");
    session.handle_input(&read).unwrap();
    assert_eq!(session.state(), State::CopyOut);
    assert_eq!(session.buffered_len(), 0);
    let expected_back = [frames.as_slice(), b"d\0\0"].concat();
    assert_eq!(
        events(&mut session),
        vec![
            Event::CopyOutStarted {
                format: CopyFormat::Text,
                columns: 1
            },
            Event::CopyData(expected_back[..].into()),
        ]
    );
}

#[test]
fn copy_out_of_an_empty_table_needs_no_framer() {
    let input = [
        copy_response(b'H', 1, 3),
        copy_done(),
        command_complete("COPY 0"),
        ready(b'I'),
    ]
    .concat();
    let (_, whole) = copy_out_run(&input, usize::MAX);
    let (_, bytewise) = copy_out_run(&input, 1);
    assert_eq!(whole.events, bytewise.events);
    assert_eq!(whole.handbacks, 0);
    assert_eq!(
        whole.events,
        vec![
            Event::CopyOutStarted {
                format: CopyFormat::Binary,
                columns: 3
            },
            complete("COPY 0", Some(0)),
            IDLE
        ]
    );
}

#[test]
fn copy_out_error_mid_stream_then_ready() {
    let input = [
        copy_out_response(1),
        copy_data(b"1\n"),
        error("ERROR", "22012", "division by zero"),
        ready(b'I'),
    ]
    .concat();
    let (_, whole) = copy_out_run(&input, usize::MAX);
    let (_, bytewise) = copy_out_run(&input, 1);
    assert_eq!(whole.events, bytewise.events);
    assert!(matches!(&whole.events[1], Event::Error(e) if e.code == "22012"));
    assert_eq!(whole.events[2], IDLE);
}

/// Feeds `prefix` to a COPY OUT through a driver, aborts with the framer's realignment, then
/// feeds `rest` in `chunk`-byte pieces straight to the session (the framer is out of the loop).
fn abort_run(
    prefix: &[u8],
    expected: Position,
    rest: &[u8],
    chunk: usize,
) -> (Session, Vec<Event>) {
    let mut session = ready_session();
    session.copy_out("COPY t TO STDOUT").unwrap();
    let _ = sent(&mut session);
    let mut driver = CopyOutDriver::default();
    driver.feed(&mut session, prefix, usize::MAX);
    assert_eq!(driver.framer.position(), expected);
    session
        .abort_copy_out(realign::resume(driver.framer.position()).as_slice())
        .unwrap();
    assert_eq!(session.state(), State::Draining);
    let mut events = driver.events;
    events.extend(feed(&mut session, rest, chunk));
    (session, events)
}

#[track_caller]
fn check_abort(prefix: &[u8], expected: Position, rest: &[u8]) {
    let (session, whole) = abort_run(prefix, expected, rest, usize::MAX);
    let (_, bytewise) = abort_run(prefix, expected, rest, 1);
    assert_eq!(whole, bytewise);
    assert_eq!(
        whole[0],
        Event::CopyOutStarted {
            format: CopyFormat::Text,
            columns: 1
        }
    );
    assert!(
        matches!(&whole[1], Event::Error(e) if e.code == "57014"),
        "{whole:?}"
    );
    assert_eq!(whole[2..], [IDLE]);
    assert_eq!(session.state(), State::Ready);
    assert_eq!(session.buffered_len(), 0);
}

fn canceled_end() -> Vec<u8> {
    [canceled(), ready(b'I')].concat()
}

#[test]
fn abort_copy_out_on_a_boundary() {
    let prefix = [copy_out_response(1), copy_data(b"1\n")].concat();
    let rest = [copy_data(b"2\n"), copy_data(b"3\n"), canceled_end()].concat();
    check_abort(&prefix, Position::Boundary, &rest);
}

#[test]
fn abort_copy_out_inside_a_header() {
    let next = copy_data(b"22\n");
    let prefix = [copy_out_response(1), copy_data(b"1\n"), next[..3].to_vec()].concat();
    let rest = [next[3..].to_vec(), copy_data(b"3\n"), canceled_end()].concat();
    check_abort(
        &prefix,
        Position::Header {
            len: [0, 0, 0, 0],
            seen: 2,
        },
        &rest,
    );
    // Only the type byte seen.
    let prefix = [copy_out_response(1), next[..1].to_vec()].concat();
    let rest = [next[1..].to_vec(), canceled_end()].concat();
    check_abort(
        &prefix,
        Position::Header {
            len: [0; 4],
            seen: 0,
        },
        &rest,
    );
}

#[test]
fn abort_copy_out_inside_a_body() {
    let next = copy_data(b"a long row\n");
    let prefix = [copy_out_response(1), next[..8].to_vec()].concat();
    let rest = [
        next[8..].to_vec(),
        copy_done(),
        command_complete("COPY 1"),
        canceled_end(),
    ]
    .concat();
    // The COPY ended before the cancel landed: its completion is reported too.
    let (_, events) = abort_run(&prefix, Position::Body { remaining: 8 }, &rest, 1);
    assert_eq!(events[1], complete("COPY 1", Some(1)));
    let rest = [next[8..].to_vec(), canceled_end()].concat();
    check_abort(&prefix, Position::Body { remaining: 8 }, &rest);
}

#[test]
fn abort_copy_out_while_a_notice_is_half_read() {
    let n = notice("half");
    let prefix = [copy_out_response(1), copy_data(b"1\n"), n[..7].to_vec()].concat();
    let rest = [n[7..].to_vec(), copy_data(b"2\n"), canceled_end()].concat();
    let (session, whole) = abort_run(&prefix, Position::Stopped { tag: b'N' }, &rest, usize::MAX);
    let (_, bytewise) = abort_run(&prefix, Position::Stopped { tag: b'N' }, &rest, 1);
    assert_eq!(whole, bytewise);
    assert!(matches!(&whole[1], Event::Notice(n) if n.message == "half"));
    assert!(matches!(&whole[2], Event::Error(e) if e.code == "57014"));
    assert_eq!(whole[3], IDLE);
    assert_eq!(session.state(), State::Ready);
}

#[test]
fn abort_copy_out_inside_a_huge_frame_keeps_memory_bounded() {
    const ANNOUNCED: u32 = 100 * 1024 * 1024;
    let mut header = vec![b'd'];
    header.extend_from_slice(&(ANNOUNCED + 4).to_be_bytes());
    let first_body = vec![b'x'; 1000];
    let prefix = [copy_out_response(1), header, first_body].concat();

    let mut session = ready_session();
    session.copy_out("COPY big TO STDOUT").unwrap();
    let mut driver = CopyOutDriver::default();
    driver.feed(&mut session, &prefix, usize::MAX);
    let position = driver.framer.position();
    assert_eq!(
        position,
        Position::Body {
            remaining: ANNOUNCED - 1000
        }
    );
    session
        .abort_copy_out(realign::resume(position).as_slice())
        .unwrap();
    assert!(session.buffered_len() <= 5);

    // The rest of the body in 64 KiB reads; the last read carries the end of the frame, another
    // frame and the cancel's answer.
    let piece = vec![b'y'; 64 * 1024];
    let mut left = (ANNOUNCED - 1000) as usize;
    while left > piece.len() {
        session.handle_input(&piece).unwrap();
        assert_eq!(
            session.buffered_len(),
            0,
            "body bytes are skipped, not kept"
        );
        left -= piece.len();
    }
    let last = [vec![b'y'; left], copy_data(b"more\n"), canceled_end()].concat();
    session.handle_input(&last).unwrap();
    let events = events(&mut session);
    assert!(matches!(&events[..], [Event::Error(e), IDLE] if e.code == "57014"));
    assert_eq!(session.state(), State::Ready);
}

#[test]
fn draining_skips_huge_frames_whatever_their_size() {
    // A frame announcing 1.5 GiB (more than the whole-message limit) is skipped while draining.
    let announced: u32 = 3 << 29;
    let mut input = vec![b'd'];
    input.extend_from_slice(&(announced + 4).to_be_bytes());
    let mut session = ready_session();
    session.copy_out("COPY t TO STDOUT").unwrap();
    session.handle_input(&copy_out_response(1)).unwrap();
    session.abort_copy_out(&[]).unwrap();
    session.handle_input(&input).unwrap();
    let piece = vec![0u8; 1 << 20];
    let mut left = announced as usize;
    while left > 0 {
        let n = left.min(piece.len());
        session.handle_input(&piece[..n]).unwrap();
        left -= n;
    }
    assert_eq!(session.buffered_len(), 0);
    session.handle_input(&canceled_end()).unwrap();
    assert_eq!(session.state(), State::Ready);
}

#[test]
fn copy_out_of_a_statement_that_is_not_a_copy() {
    let input = [
        row_description(&["?column?"]),
        data_row(&[Some("1")]),
        command_complete("SELECT 1"),
        ready(b'I'),
    ]
    .concat();
    let (session, events, _) = run(session_running(|s| s.copy_out("SELECT 1").unwrap()), &input);
    // Its rows come as a query's do (a question before a COPY in the same Query is read so).
    assert_eq!(
        events,
        vec![
            Event::Row(vec![Some("1".into())]),
            complete("SELECT 1", Some(1)),
            Event::Failed(SessionError::NotCopy {
                tag: "SELECT 1".into()
            }),
            IDLE
        ]
    );
    assert_eq!(
        SessionError::NotCopy {
            tag: "SELECT 1".into()
        }
        .to_string(),
        "statement is not a COPY (server answered SELECT 1)"
    );
    assert_eq!(session.state(), State::Ready);
}

#[test]
fn copy_out_of_a_failing_statement_reports_only_the_server_error() {
    let input = [error("ERROR", "42601", "syntax error"), ready(b'I')].concat();
    let (_, events, _) = run(
        session_running(|s| s.copy_out("COPY t TO").unwrap()),
        &input,
    );
    assert!(matches!(&events[..], [Event::Error(e), IDLE] if e.code == "42601"));
}

#[test]
fn copy_out_that_started_copy_in_is_failed_by_the_session() {
    let input = [
        copy_in_response(1),
        error(
            "ERROR",
            "57014",
            "COPY from stdin failed: copyman: expected COPY ... TO STDOUT, got COPY FROM STDIN",
        ),
        ready(b'I'),
    ]
    .concat();
    let (session, events, out) = run(
        session_running(|s| s.copy_out("COPY t FROM STDIN").unwrap()),
        &input,
    );
    assert_eq!(
        frontend_messages(&out),
        vec![(
            b'f',
            cstr("copyman: expected COPY ... TO STDOUT, got COPY FROM STDIN")
        )]
    );
    let wrong = SessionError::WrongDirection {
        expected: "COPY TO STDOUT",
        got: "COPY FROM STDIN",
    };
    assert_eq!(events, vec![Event::Failed(wrong.clone()), IDLE]);
    assert_eq!(
        wrong.to_string(),
        "statement started COPY FROM STDIN but a COPY TO STDOUT was expected"
    );
    assert_eq!(session.state(), State::Ready);
}

#[test]
fn copy_out_response_with_copy_both_is_a_protocol_error() {
    let (session, events, _) = run(
        session_running(|s| s.copy_out("START_REPLICATION").unwrap()),
        &copy_response(b'W', 0, 0),
    );
    assert!(matches!(closed(&events), SessionError::Protocol { .. }));
    assert_eq!(session.state(), State::Failed);
}

// -- COPY IN ----------------------------------------------------------------------------------

#[test]
fn copy_in_success_reports_the_count() {
    let make = session_running(|s| s.copy_in("COPY t FROM STDIN").unwrap());
    let (mut session, events, out) = run(make, &copy_in_response(2));
    assert_eq!(
        events,
        vec![Event::CopyInStarted {
            format: CopyFormat::Text,
            columns: 2
        }]
    );
    assert!(out.is_empty());
    assert_eq!(session.state(), State::CopyIn);
    session.copy_done().unwrap();
    assert_eq!(sent(&mut session), copy_done());
    assert_eq!(session.state(), State::CopyInEnding);
    let rest = [command_complete("COPY 3"), ready(b'I')].concat();
    assert_eq!(
        feed(&mut session, &rest, 1),
        vec![complete("COPY 3", Some(3)), IDLE]
    );
    assert_eq!(session.state(), State::Ready);
}

#[test]
fn copy_in_error_mid_stream_then_copy_done_sends_nothing() {
    let bad_row = error_response(&[
        (b'S', "ERROR"),
        (b'V', "ERROR"),
        (b'C', "22P02"),
        (b'M', "invalid input syntax for type bigint: \"x\""),
        (b'W', "COPY t, line 2, column id: \"x\""),
    ]);
    let input = [copy_in_response(1), notice("careful"), bad_row, ready(b'I')].concat();
    let (mut session, events, _) = run(
        session_running(|s| s.copy_in("COPY t FROM STDIN").unwrap()),
        &input,
    );
    assert_eq!(events.len(), 4);
    assert!(matches!(&events[1], Event::Notice(_)));
    let Event::Error(error) = &events[2] else {
        panic!("{events:?}")
    };
    assert_eq!(
        error.context.as_deref(),
        Some("COPY t, line 2, column id: \"x\"")
    );
    assert!(
        error
            .to_string()
            .ends_with("\nCONTEXT:  COPY t, line 2, column id: \"x\"")
    );
    assert_eq!(events[3], IDLE);
    // It is legal (and useless) to end the failed COPY: nothing goes out.
    session.copy_done().unwrap();
    session.copy_fail("late").unwrap();
    assert!(session.poll_transmit().is_none());
    assert_eq!(session.state(), State::Ready);
}

#[test]
fn copy_in_error_before_ready_then_copy_done_waits() {
    let mut session = ready_session();
    session.copy_in("COPY t FROM STDIN").unwrap();
    let _ = sent(&mut session);
    session
        .handle_input(
            &[
                copy_in_response(1),
                error("ERROR", "23505", "duplicate key"),
            ]
            .concat(),
        )
        .unwrap();
    assert_eq!(session.state(), State::Query);
    session.copy_done().unwrap();
    assert!(session.poll_transmit().is_none());
    session.handle_input(&ready(b'I')).unwrap();
    assert!(matches!(
        &events(&mut session)[..],
        [Event::CopyInStarted { .. }, Event::Error(_), IDLE]
    ));
}

#[test]
fn copy_fail_sends_the_reason_and_gets_the_error() {
    let mut session = ready_session();
    session.copy_in("COPY t FROM STDIN").unwrap();
    let _ = sent(&mut session);
    session.handle_input(&copy_in_response(1)).unwrap();
    // A NUL byte, which a C string cannot carry, is written `\x00` (files65 F1: refused,
    // the COPY given up by closing its connection).
    session.copy_fail("producer\0failed").unwrap();
    assert_eq!(
        frontend_messages(&sent(&mut session)),
        vec![(b'f', cstr("producer\\x00failed"))]
    );
    assert_eq!(session.state(), State::CopyInEnding);
    let rest = [
        error("ERROR", "57014", "COPY from stdin failed: producer failed"),
        ready(b'I'),
    ]
    .concat();
    let events = feed(&mut session, &rest, 1);
    assert!(
        matches!(&events[..], [Event::CopyInStarted { .. }, Event::Error(e), IDLE] if e.code == "57014")
    );
}

#[test]
fn copy_in_that_started_copy_out_asks_for_a_cancel_and_drains() {
    let make = session_running(|s| s.copy_in("COPY t TO STDOUT").unwrap());
    let mut probe = make();
    let _ = sent(&mut probe);
    probe
        .handle_input(&[copy_out_response(1), copy_data(b"1\n")].concat())
        .unwrap();
    assert_eq!(events(&mut probe), vec![Event::CancelNeeded]);
    assert_eq!(probe.state(), State::Draining);
    assert_eq!(probe.buffered_len(), 0);

    let input = [
        copy_out_response(1),
        copy_data(b"1\n"),
        copy_data(b"2\n"),
        canceled(),
        ready(b'I'),
    ]
    .concat();
    let (session, events, out) = run(make, &input);
    assert!(out.is_empty(), "the cancel goes on another connection");
    let wrong = SessionError::WrongDirection {
        expected: "COPY FROM STDIN",
        got: "COPY TO STDOUT",
    };
    assert_eq!(
        events,
        vec![Event::CancelNeeded, Event::Failed(wrong), IDLE]
    );
    assert_eq!(session.state(), State::Ready);
}

#[test]
fn copy_in_of_a_statement_that_is_not_a_copy() {
    let input = [command_complete("CREATE TABLE"), ready(b'I')].concat();
    let (_, events, _) = run(
        session_running(|s| s.copy_in("CREATE TABLE t ()").unwrap()),
        &input,
    );
    assert_eq!(
        events,
        vec![
            complete("CREATE TABLE", None),
            Event::Failed(SessionError::NotCopy {
                tag: "CREATE TABLE".into()
            }),
            IDLE
        ]
    );
}

// -- Failures ---------------------------------------------------------------------------------

#[test]
fn fatal_error_closes_and_is_sticky() {
    let input = error(
        "FATAL",
        "57P01",
        "terminating connection due to administrator command",
    );
    let (mut session, events, _) = run(
        session_running(|s| s.query("SELECT pg_sleep(10)").unwrap()),
        &input,
    );
    assert_eq!(events.len(), 1);
    let error = closed(&events).clone();
    assert_eq!(db(&error).code, "57P01");
    assert_eq!(session.state(), State::Closed);
    assert_eq!(session.handle_input(&ready(b'I')), Err(error.clone()));
    assert_eq!(session.query("SELECT 1"), Err(error.clone()));
    assert_eq!(session.copy_out("COPY t TO STDOUT"), Err(error.clone()));
    assert_eq!(session.copy_fail("x"), Err(error.clone()));
    session.handle_eof();
    assert_eq!(session.poll_event(), None);
    assert!(session.poll_transmit().is_none());
}

#[test]
fn fatal_error_while_idle_closes() {
    let mut session = ready_session();
    let error = session
        .handle_input(&error("FATAL", "57P01", "bye"))
        .unwrap_err();
    assert_eq!(db(&error).code, "57P01");
    assert_eq!(events(&mut session), vec![Event::Closed(error)]);
}

#[test]
fn eof_during_copy_in_closes() {
    let mut session = ready_session();
    session.copy_in("COPY t FROM STDIN").unwrap();
    session.handle_input(&copy_in_response(1)).unwrap();
    let _ = events(&mut session);
    session.handle_eof();
    assert_eq!(
        events(&mut session),
        vec![Event::Closed(SessionError::Closed)]
    );
    assert_eq!(session.copy_done(), Err(SessionError::Closed));
}

#[test]
fn malformed_length_is_a_protocol_error() {
    let (session, events, _) = run(
        session_running(|s| s.query("SELECT 1").unwrap()),
        b"Z\0\0\0\x02I",
    );
    let error = closed(&events);
    assert!(matches!(error, SessionError::Protocol { .. }));
    assert!(error.to_string().contains("invalid length 2"), "{error}");
    assert_eq!(session.state(), State::Failed);
}

#[test]
fn oversized_message_is_refused_before_buffering() {
    let mut session = ready_session();
    session.query("SELECT big").unwrap();
    let mut header = vec![b'D'];
    header.extend_from_slice(&((1u32 << 30) + 5).to_be_bytes());
    let error = session.handle_input(&header).unwrap_err();
    assert!(error.to_string().contains("1 GiB"), "{error}");
    assert_eq!(session.buffered_len(), 0);
}

#[test]
fn malformed_bodies_are_protocol_errors_not_panics() {
    let cases: Vec<Vec<u8>> = vec![
        msg(b'D', &[0, 1, 0, 0, 0, 9, b'x']), // value longer than the row
        msg(b'D', &[0xff, 0xff]),             // negative column count
        msg(b'E', b"Sboom"),                  // field not terminated
        msg(b'C', b"SELECT 1"),               // tag not terminated
        msg(b'Z', b"X"),                      // unknown transaction status
        msg(b'Z', b"II"),                     // trailing bytes
        msg(b'H', &[7, 0, 0]),                // unknown copy format
        msg(b'A', &[0, 0]),                   // too short
    ];
    for case in cases {
        let (session, events, _) = run(session_running(|s| s.query("SELECT 1").unwrap()), &case);
        assert!(
            matches!(closed(&events), SessionError::Protocol { .. }),
            "{case:?}: {events:?}"
        );
        assert_eq!(session.state(), State::Failed);
    }
}

#[test]
fn unknown_message_type_is_a_protocol_error() {
    let (_, events, _) = run(
        session_running(|s| s.query("SELECT 1").unwrap()),
        &msg(b'?', b"x"),
    );
    assert_eq!(
        closed(&events).to_string(),
        "protocol violation by the server: unexpected message '?' in state query"
    );
    // An authentication request after startup is as unexpected.
    let mut session = ready_session();
    let error = session.handle_input(&auth_ok()).unwrap_err();
    assert!(matches!(error, SessionError::Protocol { .. }), "{error}");
}

#[test]
fn terminate_queues_goodbye_and_closes() {
    let mut session = ready_session();
    session.terminate();
    assert_eq!(sent(&mut session), msg(b'X', &[]));
    assert_eq!(session.state(), State::Closed);
    session.handle_input(b"ignored").unwrap();
    session.handle_eof();
    assert_eq!(session.poll_event(), None, "a goodbye is no failure");
    assert!(matches!(
        session.query("SELECT 1"),
        Err(SessionError::Misuse {
            state: State::Closed,
            ..
        })
    ));
}

#[test]
fn db_error_display_reads_like_psql_verbose() {
    let body = fields(&[
        (b'S', "ERROR"),
        (b'V', "ERROR"),
        (b'C', "23505"),
        (
            b'M',
            "duplicate key value violates unique constraint \"t_pkey\"",
        ),
        (b'D', "Key (id)=(1) already exists."),
        (b'H', "Use another id."),
        (b'W', "COPY t, line 1"),
        (b's', "public"),
        (b't', "t"),
        (b'n', "t_pkey"),
        (b'F', "nbtinsert.c"),
        (b'L', "666"),
        (b'R', "_bt_check_unique"),
        (b'Z', "an unknown field type is ignored"),
    ]);
    let mut session = ready_session();
    session.query("COPY").unwrap();
    session.handle_input(&msg(b'E', &body)).unwrap();
    let [Event::Error(error)] = &events(&mut session)[..] else {
        panic!()
    };
    assert_eq!(
        error.to_string(),
        "ERROR:  23505: duplicate key value violates unique constraint \"t_pkey\"\n\
         DETAIL:  Key (id)=(1) already exists.\n\
         HINT:  Use another id.\n\
         CONTEXT:  COPY t, line 1"
    );
    assert_eq!(error.constraint.as_deref(), Some("t_pkey"));
    assert_eq!(error.table.as_deref(), Some("t"));
    assert_eq!(error.schema.as_deref(), Some("public"));
    assert_eq!(error.line, Some(666));
    let as_session = SessionError::Db(Box::new(error.clone()));
    assert_eq!(as_session.to_string(), error.to_string(), "transparent");
}

#[test]
fn errors_are_send_and_sync() {
    fn check<T: Send + Sync + std::error::Error + 'static>() {}
    check::<SessionError>();
    check::<DbError>();
    fn send<T: Send>() {}
    send::<Session>();
}

/// A COPY OUT whose cancel came after its end (`COPY n`, no error): said completed, its
/// transaction still open, not "given up … aborted" (lib49 F2: a COMMIT after it committed).
#[test]
fn query_whose_copy_out_ends_before_its_cancel_says_it_completed() {
    let input = [
        copy_out_response(1),
        copy_data(b"1\n"),
        command_complete("COPY 1"),
        ready(b'T'),
    ]
    .concat();
    let (session, events, _) = run(
        session_running(|s| s.query("BEGIN; COPY t TO STDOUT").unwrap()),
        &input,
    );
    let failed = events.iter().find_map(|e| match e {
        Event::Failed(error) => Some(error),
        _ => None,
    });
    let Some(
        error @ SessionError::UnexpectedCopy {
            completed: true, ..
        },
    ) = failed
    else {
        panic!("{events:?}");
    };
    let said = error.to_string();
    assert!(
        said.contains("ran to its end before the cancel") && !said.contains("aborted"),
        "{said}"
    );
    assert_eq!(
        session.transaction_status(),
        TransactionStatus::InTransaction
    );
}

#[test]
fn query_that_starts_a_copy_out_asks_for_a_cancel() {
    let input = [
        copy_out_response(1),
        copy_data(b"1\n"),
        canceled(),
        ready(b'I'),
    ]
    .concat();
    let (_, events, out) = run(
        session_running(|s| s.query("COPY t TO STDOUT").unwrap()),
        &input,
    );
    assert!(out.is_empty());
    assert_eq!(
        events,
        vec![
            Event::CancelNeeded,
            Event::Failed(SessionError::UnexpectedCopy {
                got: "COPY TO STDOUT",
                completed: false,
            }),
            IDLE
        ]
    );
}

#[test]
fn abort_copy_out_before_the_copy_out_response() {
    let make = session_running(|s| {
        s.copy_out("COPY t TO STDOUT").unwrap();
        s.abort_copy_out(&[]).unwrap();
    });
    let input = [
        copy_out_response(1),
        copy_data(b"1\n"),
        canceled(),
        ready(b'I'),
    ]
    .concat();
    let (session, events, _) = run(make, &input);
    assert!(
        matches!(&events[..], [Event::Error(e), IDLE] if e.code == "57014"),
        "{events:?}"
    );
    assert_eq!(session.state(), State::Ready);
}

/// Found by the network-fault proxy: two garbage bytes at a CopyData boundary read as a message
/// of type '0' announcing ~812 MB, and the session buffered the stream waiting for its body.
#[test]
fn garbage_header_during_copy_out_is_refused_before_buffering() {
    let mut session = ready_session();
    session.copy_out("COPY t TO STDOUT").unwrap();
    session.handle_input(&copy_out_response(1)).unwrap();
    while session.poll_event().is_some() {}
    let mut garbage = b"00".to_vec();
    garbage.extend_from_slice(&[0x64, 0, 0, 1, 2, 3]);
    let error = session.handle_input(&garbage).unwrap_err();
    assert!(matches!(error, SessionError::Protocol { .. }), "{error}");
    assert!(
        error.to_string().contains("unexpected message '0'"),
        "{error}"
    );
    assert_eq!(session.buffered_len(), 0);
}

#[test]
fn small_message_types_cannot_announce_large_bodies() {
    for tag in [b'C', b'E', b'N', b'Z', b'S'] {
        let mut session = ready_session();
        session.query("SELECT 1").unwrap();
        let mut header = vec![tag];
        header.extend_from_slice(&(100u32 << 20).to_be_bytes());
        let error = session.handle_input(&header).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("more than such a message can hold"),
            "{error}"
        );
        assert_eq!(session.buffered_len(), 0);
    }
    // A DataRow may be large during a query, but not during a COPY OUT.
    let mut session = ready_session();
    session.copy_out("COPY t TO STDOUT").unwrap();
    session.handle_input(&copy_out_response(1)).unwrap();
    let mut header = vec![b'D'];
    header.extend_from_slice(&(100u32 << 20).to_be_bytes());
    assert!(session.handle_input(&header).is_err());
    assert_eq!(session.buffered_len(), 0);
}

/// Notices and notifications are kept for the caller whatever the driver does with the events
/// (a COPY OUT's notices are met by `CopyOutSource`, which passes them by), with the command tag
/// and the bytes read.
#[test]
fn notices_and_notifications_are_kept_for_the_caller() {
    let input = [
        notice("first"),
        notification(7, "chan", "payload"),
        command_complete("INSERT 0 5"),
        notice("second"),
        ready(b'I'),
    ]
    .concat();
    let (mut session, _, _) = run(session_running(|s| s.query("INSERT …").unwrap()), &input);
    let notices: Vec<_> = session
        .take_notices()
        .into_iter()
        .map(|n| n.message)
        .collect();
    assert_eq!(notices, ["first", "second"]);
    assert!(session.take_notices().is_empty(), "taken means taken");
    let notifications = session.take_notifications();
    assert_eq!(notifications.len(), 1);
    assert_eq!(
        (notifications[0].process_id, &*notifications[0].channel),
        (7, "chan")
    );
    assert_eq!(session.command_tag(), Some("INSERT 0 5"));
    assert!(session.received_bytes() >= input.len() as u64);
    assert_eq!(session.dropped_messages(), 0);
}

/// Kept notices are bounded in bytes as well as in number: two hundred notices of 50 kB each
/// keep at most `KEPT_NOTICE_BYTES` of them, the rest counted as dropped; taken, the room is back.
/// Notices a lost session kept come first in the one that takes its place.
#[test]
fn kept_notices_are_bounded_in_bytes_and_carried_over_in_order() {
    use copyman_core::session::KEPT_NOTICE_BYTES;
    const SIZE: usize = 50_000;
    let big = "x".repeat(SIZE);
    let mut input: Vec<u8> = (0..200).flat_map(|_| notice(&big)).collect();
    input.extend(command_complete("INSERT 0 1"));
    input.extend(ready(b'I'));
    let (mut session, _, _) = run(session_running(|s| s.query("INSERT …").unwrap()), &input);
    let kept = session.take_notices();
    assert!(!kept.is_empty() && kept.len() < 200, "{}", kept.len());
    assert!(kept.len() * SIZE <= KEPT_NOTICE_BYTES);
    assert_eq!(session.dropped_messages(), 200 - kept.len() as u64);

    let input = [notice("later"), command_complete("INSERT 0 1"), ready(b'I')].concat();
    let (mut next, _, _) = run(session_running(|s| s.query("INSERT …").unwrap()), &input);
    let earlier = vec![kept[0].clone(), kept[1].clone()];
    next.keep_earlier_notices(earlier);
    let messages: Vec<usize> = next
        .take_notices()
        .iter()
        .map(|n| n.message.len())
        .collect();
    assert_eq!(messages, [SIZE, SIZE, 5]);
}

/// More notices than are kept (a trigger's per row): the oldest are dropped, counted, so that
/// the latest — a COMMIT's WARNING — are kept, and `notices_since` gives a statement's own
/// (the first ten thousand were kept and the rest dropped, lib44 F2).
#[test]
fn the_newest_notices_are_kept_and_a_statements_own_are_told() {
    use copyman_core::session::KEPT_MESSAGES;
    let many = KEPT_MESSAGES + 2_500;
    let mut input: Vec<u8> = (0..many)
        .flat_map(|i| notice(&format!("row {i}")))
        .collect();
    input.extend(command_complete("COPY 1"));
    input.extend(ready(b'T'));
    let (mut session, _, _) = run(session_running(|s| s.query("INSERT …").unwrap()), &input);
    let mark = session.notice_mark();
    let input = [
        notice("look at me"),
        command_complete("COMMIT"),
        ready(b'I'),
    ]
    .concat();
    session.query("COMMIT").unwrap();
    session.handle_input(&input).unwrap();
    while session.poll_event().is_some() {}
    let own: Vec<&str> = (session.notices_since(mark).iter())
        .map(|n| n.message.as_str())
        .collect();
    assert_eq!(own, ["look at me"]);
    let kept = session.take_notices();
    assert!(kept.len() <= KEPT_MESSAGES, "{}", kept.len());
    assert_eq!(kept.last().map(|n| n.message.as_str()), Some("look at me"));
    assert_eq!(
        kept.first().map(|n| n.message.clone()),
        Some(format!("row {}", many + 1 - kept.len()))
    );
    assert_eq!(session.dropped_messages(), (many + 1 - kept.len()) as u64);
}

/// A plain query that starts a COPY OUT: core's `ReadyWait` says to send the cancel (the driver
/// cannot take it for an event to pass on), then reports the refusal once the session is ready.
#[test]
fn ready_wait_cancels_a_copy_out_nobody_reads() {
    use copyman_core::ready::{ReadyWait, WaitStep};
    let mut session = session_running(|s| s.query("COPY big TO STDOUT").unwrap())();
    let _ = sent(&mut session);
    let mut wait = ReadyWait::new();
    assert!(matches!(wait.poll(&mut session), WaitStep::ReadMore));
    session
        .handle_input(&[copy_out_response(1), copy_data(b"1\n")].concat())
        .unwrap();
    assert!(matches!(wait.poll(&mut session), WaitStep::SendCancel));
    assert!(matches!(wait.poll(&mut session), WaitStep::ReadMore));
    session
        .handle_input(&[copy_data(b"2\n"), canceled(), ready(b'I')].concat())
        .unwrap();
    match wait.poll(&mut session) {
        WaitStep::Done(Err(SessionError::UnexpectedCopy { got, completed })) => {
            assert_eq!(got, "COPY TO STDOUT");
            assert!(!completed);
        }
        other => panic!("the refusal after ReadyForQuery: {other:?}"),
    }
    assert_eq!(session.state(), State::Ready);
}

/// A COPY OUT whose end came with its start (read in one go): nothing to cancel, and no
/// cancel sent that could meet the session's next statement.
#[test]
fn ready_wait_sends_no_cancel_for_a_copy_out_already_over() {
    use copyman_core::ready::{ReadyWait, WaitStep};
    let mut session = session_running(|s| s.query("COPY one TO STDOUT").unwrap())();
    let _ = sent(&mut session);
    let mut wait = ReadyWait::new();
    session
        .handle_input(
            &[
                copy_out_response(1),
                copy_data(b"1\n"),
                copy_done(),
                command_complete("COPY 1"),
                ready(b'I'),
            ]
            .concat(),
        )
        .unwrap();
    loop {
        match wait.poll(&mut session) {
            WaitStep::SendCancel => panic!("a cancel for a COPY already over"),
            WaitStep::ReadMore => panic!("everything was read"),
            WaitStep::Done(done) => {
                assert!(matches!(
                    done,
                    Err(SessionError::UnexpectedCopy {
                        completed: true,
                        ..
                    })
                ));
                break;
            }
            _ => {}
        }
    }
}

/// A statement beyond ASCII is UTF-8: refused, nothing sent, where the session's
/// `client_encoding` would read its bytes as other characters (a `WHERE nm = 'é'` matched no row
/// under LATIN1, `<>` every row, and so under SQL_ASCII into a LATIN1 database); sent under
/// UTF8, or SQL_ASCII into a UTF8 or SQL_ASCII database; ASCII goes anywhere.
#[test]
fn a_statement_beyond_ascii_is_refused_where_the_client_encoding_is_not_utf8() {
    let sql = "SELECT 1 WHERE 'é' <> ''";
    let mut utf8 = ready_session();
    utf8.query(sql).unwrap();
    assert!(!sent(&mut utf8).is_empty());
    for (encoding, server, refused) in [
        ("LATIN1", "LATIN1", true),
        ("EUC_JP", "UTF8", true),
        ("SQL_ASCII", "UTF8", false),
        ("SQL_ASCII", "SQL_ASCII", false),
        // Unconverted, its UTF-8 bytes are LATIN1 characters to that database.
        ("SQL_ASCII", "LATIN1", true),
    ] {
        let mut session = ready_session();
        session
            .handle_input(
                &[
                    param("client_encoding", encoding),
                    param("server_encoding", server),
                ]
                .concat(),
            )
            .unwrap();
        let said = session.query(sql);
        match said {
            Err(SessionError::NotUtf8 { client_encoding }) if refused => {
                assert_eq!(client_encoding, encoding);
                assert!(sent(&mut session).is_empty(), "{encoding}: nothing sent");
                // The session is usable: ASCII goes.
                session.query("SELECT 1").unwrap();
            }
            Ok(()) if !refused => {}
            other => panic!("{encoding}: {other:?}"),
        }
    }
}
