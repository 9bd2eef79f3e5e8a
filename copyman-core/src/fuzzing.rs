//! The logic of the `session` cargo-fuzz target in `fuzz/`: the target is a three-line shim over
//! [`session`].
//!
//! Not a public API, and only built with the `fuzzing` feature, which brings the SCRAM server
//! side (`hmac`, `sha2`, `base64`: the versions postgres-protocol already uses) and
//! `arbitrary`.
//!
//! The session is put in a chosen [`Stage`] by a correct scripted server, then fed arbitrary
//! server bytes in arbitrary chunks, exactly as the documented drive loop does (during a COPY
//! OUT the CopyData goes through a [`Framer`] and only the rest reaches the session). A failed
//! check panics: that is how a fuzz target reports a bug.

use std::ops::Range;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use copyman_wire::realign::resume;
use copyman_wire::{Framer, WireError};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::session::{Event, Session, SessionError, StartupConfig, State};

/// What the server bytes are fed after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Nothing: the bytes are the server's first answer to the StartupMessage.
    Startup,
    /// The authentication request of the [`Auth`] (AuthenticationOk for trust).
    Authenticating,
    /// A SCRAM offer; the bytes then start the server-first-message after `r=` and the client's
    /// nonce (the first `param` bytes of the stream complete that AuthenticationSASLContinue).
    ScramFirst,
    /// A SCRAM offer and a correct server-first-message: the bytes are the server-final.
    ScramFinal,
    /// A whole startup: the session is Ready.
    Ready,
    /// A whole startup and a `query()`.
    Query,
    /// A whole startup, a `copy_out()` and its CopyOutResponse.
    CopyOut,
    /// A whole startup, a `copy_in()` and its CopyInResponse; after `param` (scaled) bytes the
    /// driver calls `copy_done()` (odd `param`) or `copy_fail()`.
    CopyIn,
    /// As [`Stage::CopyOut`], and after `param` (scaled) bytes the driver aborts the COPY OUT
    /// with the framer's realignment; the rest is drained.
    Draining,
    /// A whole startup, a `copy_in()`, its CopyInResponse and `copy_done()`.
    CopyInEnding,
    /// A whole startup and a `copy_in()`: the bytes are the server's answer.
    CopyInPending,
    /// A whole startup and a `copy_out()`: the bytes are the server's answer.
    CopyOutPending,
}

impl Stage {
    /// Every stage, in the order of their input byte values.
    pub const ALL: [Self; 12] = [
        Self::Startup,
        Self::Authenticating,
        Self::ScramFirst,
        Self::ScramFinal,
        Self::Ready,
        Self::Query,
        Self::CopyOut,
        Self::CopyIn,
        Self::Draining,
        Self::CopyInEnding,
        Self::CopyInPending,
        Self::CopyOutPending,
    ];

    /// The stage an input byte selects (modulo the number of stages).
    pub fn from_byte(b: u8) -> Self {
        Self::ALL[usize::from(b) % Self::ALL.len()]
    }
}

/// How the scripted server authenticates the session, and what its configuration holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// No password configured; the server sends AuthenticationOk at once.
    Trust,
    /// Cleartext password.
    Cleartext,
    /// MD5 password.
    Md5,
    /// SCRAM-SHA-256.
    Scram,
}

impl Auth {
    /// Every method, in the order of their input byte values.
    pub const ALL: [Self; 4] = [Self::Trust, Self::Cleartext, Self::Md5, Self::Scram];

    /// The method an input byte selects (modulo the number of methods).
    pub fn from_byte(b: u8) -> Self {
        Self::ALL[usize::from(b) % Self::ALL.len()]
    }
}

/// The input of the `session` target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInput {
    /// Chunk sizes, used in turn: 0 is an empty chunk.
    pub chunks: [u8; 8],
    /// The [`Stage`] ([`Stage::from_byte`]).
    pub stage: u8,
    /// The [`Auth`] ([`Auth::from_byte`]).
    pub auth: u8,
    /// The stage's parameter.
    pub param: u8,
    /// The server's bytes.
    pub stream: Vec<u8>,
}

impl SessionInput {
    /// Bytes in front of the stream: the chunk sizes, the stage, the auth and the parameter.
    pub const PREFIX_LEN: usize = 11;

    /// The fuzzer input that `arbitrary` decodes to `self`: the prefix fields in order, then the
    /// stream. For writing seeds.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::PREFIX_LEN + self.stream.len());
        out.extend_from_slice(&self.chunks);
        out.extend_from_slice(&[self.stage, self.auth, self.param]);
        out.extend_from_slice(&self.stream);
        out
    }

    /// The input from its fixed-size prefix (zero-filled if short) and its stream.
    pub fn from_parts(prefix: [u8; Self::PREFIX_LEN], stream: Vec<u8>) -> Self {
        let mut chunks = [0; 8];
        chunks.copy_from_slice(&prefix[..8]);
        Self {
            chunks,
            stage: prefix[8],
            auth: prefix[9],
            param: prefix[10],
            stream,
        }
    }
}

// Written by hand: the derived impl of `arbitrary` 1.5 would put a continuation byte before every
// stream byte, and real captures would not be seeds.
impl<'a> arbitrary::Arbitrary<'a> for SessionInput {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let mut prefix = [0; Self::PREFIX_LEN];
        u.fill_buffer(&mut prefix)?;
        let len = u.arbitrary_len::<u8>()?;
        Ok(Self::from_parts(prefix, u.bytes(len)?.to_vec()))
    }

    fn arbitrary_take_rest(mut u: arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let mut prefix = [0; Self::PREFIX_LEN];
        u.fill_buffer(&mut prefix)?;
        Ok(Self::from_parts(prefix, u.take_rest().to_vec()))
    }
}

/// The `session` target.
///
/// Checks: no panic; the session never holds more than it was given (`buffered_len()`, the
/// input-side memory bound); every failure is clean: `handle_input` fails exactly when the
/// session is over, with the error that [`Event::Closed`] carried, that event is the last, every
/// later call returns the same error, and the state is Closed or Failed; the driver's own calls
/// (`copy_done`, `copy_fail`, `abort_copy_out`) succeed or are refused as documented; and the
/// outcome (events, bytes sent, state, frames) is the same whether the stream comes in the
/// input's chunks or in one piece.
pub fn session(input: &SessionInput) {
    let stage = Stage::from_byte(input.stage);
    let auth = Auth::from_byte(input.auth);
    let stream = &input.stream[..];
    let (prefix, stream) = match stage {
        Stage::ScramFirst => stream.split_at(usize::from(input.param).min(stream.len())),
        _ => (&[][..], stream),
    };
    // Where the driver acts (CopyIn, Draining): both runs cut the stream there.
    let action = match stage {
        Stage::CopyIn | Stage::Draining => Some(usize::from(input.param) * stream.len() / 255),
        _ => None,
    };
    let chunked = cut(chunk_ranges(stream.len(), &input.chunks), action);
    let whole = cut(std::iter::once(0..stream.len()).collect(), action);
    let a = run(stage, auth, input.param, prefix, stream, &chunked, action);
    let b = run(stage, auth, input.param, prefix, stream, &whole, action);
    // Any SASL exchange, also one the fuzzed server asked for, sends a random nonce.
    let scram = [&a.sent, &b.sent].iter().any(|sent| {
        sent.windows(8)
            .any(|w| w == b"n,,n=,r=" || w == b"c=biws,r")
    }) || auth == Auth::Scram
        || matches!(stage, Stage::ScramFirst | Stage::ScramFinal);
    assert_eq!(a.events, b.events, "the same events in chunks and whole");
    assert_eq!(a.log, b.log, "the same driver calls in chunks and whole");
    assert_eq!(a.state, b.state, "the same state in chunks and whole");
    assert_eq!(a.frames, b.frames, "the same frames in chunks and whole");
    assert_eq!(a.wire_error, b.wire_error);
    assert_eq!(a.ended_early, b.ended_early);
    if !scram {
        // SCRAM messages carry a random nonce. A session that fails drops what it had not sent
        // yet (the connection is over): fed whole, it had the chance to send less.
        if a.ended_early {
            assert!(
                a.sent.starts_with(&b.sent),
                "chunks sent {:?}, whole {:?}",
                a.sent,
                b.sent
            );
        } else {
            assert_eq!(a.sent, b.sent, "the same bytes sent in chunks and whole");
        }
    }
}

/// Cuts `0..len` into chunks sized from `sizes` in turn (0 makes an empty chunk; all 0: one
/// chunk).
fn chunk_ranges(len: usize, sizes: &[u8; 8]) -> Vec<Range<usize>> {
    if sizes.iter().all(|&s| s == 0) {
        return std::iter::once(0..len).collect();
    }
    let mut ranges = Vec::new();
    let mut start = 0;
    for &size in sizes.iter().cycle() {
        if start == len {
            break;
        }
        let end = (start + usize::from(size)).min(len);
        ranges.push(start..end);
        start = end;
    }
    ranges
}

/// Splits the range holding `at` inside it, so that a chunk ends there.
fn cut(ranges: Vec<Range<usize>>, at: Option<usize>) -> Vec<Range<usize>> {
    let Some(at) = at else { return ranges };
    ranges
        .into_iter()
        .flat_map(|r| {
            if r.start < at && at < r.end {
                vec![r.start..at, at..r.end]
            } else {
                vec![r]
            }
        })
        .collect()
}

/// What a run came to.
#[derive(Debug)]
struct Outcome {
    events: Vec<Event>,
    log: Vec<String>,
    sent: Vec<u8>,
    state: State,
    frames: u64,
    wire_error: Option<WireError>,
    /// The session ended before the end of the stream.
    ended_early: bool,
}

fn run(
    stage: Stage,
    auth: Auth,
    param: u8,
    prefix: &[u8],
    stream: &[u8],
    ranges: &[Range<usize>],
    action: Option<usize>,
) -> Outcome {
    let scram_stage = matches!(stage, Stage::ScramFirst | Stage::ScramFinal);
    let password = (auth != Auth::Trust || scram_stage).then(|| PASSWORD.to_vec());
    let mut config = StartupConfig::new("alice");
    config.database = Some("shop".into());
    config.password = password;
    let mut d = Driver::new(config);
    d.setup(stage, auth, prefix);
    // The scripted part is not compared: the fuzzed part starts here.
    d.events.clear();
    d.sent.clear();
    let mut action = action;
    for range in ranges {
        if action == Some(range.start) {
            action = None;
            d.act(stage, param);
        }
        d.feed(&stream[range.clone()]);
    }
    if action.is_some() {
        d.act(stage, param);
    }
    // The end of the stream: the socket closes.
    let ended_early = d.closed.is_some();
    d.session.handle_eof();
    d.drain();
    let state = d.session.state();
    assert!(matches!(state, State::Closed | State::Failed), "{state}");
    assert!(d.closed.is_some(), "the end of the stream ends the session");
    assert!(d.session.handle_input(b"Z\0\0\0\x05I").is_err());
    Outcome {
        events: d.events,
        log: d.log,
        sent: d.sent,
        state,
        frames: d.framer.frames(),
        wire_error: d.wire_error,
        ended_early,
    }
}

const PASSWORD: &[u8] = b"pencil";

/// A driver as documented on [`Session`], with checks.
struct Driver {
    session: Session,
    framer: Framer,
    framing: bool,
    /// Bytes given to the session, resume bytes included.
    fed: usize,
    /// Events (CopyData excepted: it goes back to the framer, split as the input was).
    events: Vec<Event>,
    /// What the driver's own calls returned.
    log: Vec<String>,
    sent: Vec<u8>,
    /// The framer failed: a real driver fails the COPY and closes the connection.
    wire_error: Option<WireError>,
    /// The error [`Event::Closed`] carried.
    closed: Option<SessionError>,
}

impl Driver {
    fn new(config: StartupConfig) -> Self {
        let mut d = Self {
            session: Session::new(config),
            framer: Framer::new(),
            framing: false,
            fed: 0,
            events: Vec::new(),
            log: Vec::new(),
            sent: Vec::new(),
            wire_error: None,
            closed: None,
        };
        d.drain();
        assert!(d.closed.is_none(), "a valid configuration");
        d.sent.clear();
        d
    }

    /// Everything the session queued since the last call.
    fn take_sent(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.sent)
    }

    /// A scripted server's bytes, which must be accepted.
    fn script(&mut self, bytes: &[u8]) {
        self.feed(bytes);
        assert!(self.closed.is_none(), "the scripted server is correct");
    }

    /// Puts the session in `stage`.
    fn setup(&mut self, stage: Stage, auth: Auth, prefix: &[u8]) {
        match stage {
            Stage::Startup => return,
            Stage::Authenticating => {
                match auth {
                    Auth::Trust => self.script(&auth_message(0, &[])),
                    Auth::Cleartext => self.script(&auth_message(3, &[])),
                    Auth::Md5 => self.script(&auth_message(5, b"salt")),
                    Auth::Scram => self.script(&sasl_offer()),
                }
                return;
            }
            Stage::ScramFirst | Stage::ScramFinal => {
                self.script(&sasl_offer());
                let mut server = ScramServer::new(&self.take_sent());
                if stage == Stage::ScramFinal {
                    self.script(&server.first());
                } else {
                    let body = [b"r=", server.client_nonce.as_bytes(), prefix].concat();
                    // The fuzzed part of the message: the session may refuse it.
                    self.feed(&auth_message(11, &body));
                }
                return;
            }
            _ => {}
        }
        match auth {
            Auth::Trust => {}
            Auth::Cleartext => self.script(&auth_message(3, &[])),
            Auth::Md5 => self.script(&auth_message(5, b"salt")),
            Auth::Scram => {
                self.script(&sasl_offer());
                let mut server = ScramServer::new(&self.take_sent());
                self.script(&server.first());
                let last = server.last(&self.take_sent());
                self.script(&last);
            }
        }
        self.script(&auth_message(0, &[]));
        self.script(&startup_tail());
        assert_eq!(self.session.state(), State::Ready);
        match stage {
            Stage::Query => self.session.query("SELECT 1").expect("ready"),
            Stage::CopyOut | Stage::Draining | Stage::CopyOutPending => {
                self.session.copy_out("COPY t TO STDOUT").expect("ready");
            }
            Stage::CopyIn | Stage::CopyInEnding | Stage::CopyInPending => {
                self.session.copy_in("COPY t FROM STDIN").expect("ready");
            }
            _ => {}
        }
        self.drain();
        match stage {
            Stage::CopyOut | Stage::Draining => {
                self.script(&message(b'H', &[0, 0, 1, 0, 0]));
                assert_eq!(self.session.state(), State::CopyOut);
            }
            Stage::CopyIn | Stage::CopyInEnding => {
                self.script(&message(b'G', &[0, 0, 1, 0, 0]));
                assert_eq!(self.session.state(), State::CopyIn);
                if stage == Stage::CopyInEnding {
                    self.session.copy_done().expect("in a COPY IN");
                    self.drain();
                }
            }
            _ => {}
        }
    }

    /// The driver's own call at the action point.
    fn act(&mut self, stage: Stage, param: u8) {
        let state = self.session.state();
        let result = match stage {
            Stage::CopyIn if param % 2 == 1 => self.session.copy_done(),
            Stage::CopyIn => self.session.copy_fail("copyman: fuzzing"),
            Stage::Draining => {
                let realign = if self.framing {
                    resume(self.framer.position())
                } else {
                    resume(copyman_wire::Position::Boundary)
                };
                self.fed += realign.as_slice().len();
                self.framing = false;
                self.session.abort_copy_out(realign.as_slice())
            }
            _ => return,
        };
        self.log.push(format!("{state}: {result:?}"));
        match result {
            Err(SessionError::Misuse { state: at, .. }) => {
                // Refused, as documented, and nothing else happened.
                assert_eq!(at, state);
                assert!(!matches!(state, State::CopyIn | State::CopyOut));
                assert_eq!(self.session.state(), state);
                self.drain();
            }
            // Done, or the terminal error (`after` checks which).
            result => self.after(result),
        }
    }

    /// Server bytes, routed as the documented drive loop does.
    fn feed(&mut self, chunk: &[u8]) {
        if self.wire_error.is_some() {
            return;
        }
        if !self.framing {
            return self.give_session(chunk);
        }
        match self.framer.advance(chunk) {
            Ok(walk) => {
                if let Some(stop) = walk.stop {
                    self.framing = false;
                    self.give_session(&chunk[stop..]);
                }
            }
            Err(e) => self.wire_error = Some(e),
        }
    }

    fn give_session(&mut self, bytes: &[u8]) {
        self.fed += bytes.len();
        let result = self.session.handle_input(bytes);
        self.after(result);
    }

    /// Checks a call's result and drains the session.
    fn after(&mut self, result: Result<(), SessionError>) {
        let handed_back = self.drain();
        match result {
            Ok(()) => assert!(self.closed.is_none(), "a call after the end must fail"),
            Err(e) => {
                assert_eq!(Some(&e), self.closed.as_ref(), "the error Closed carried");
                assert!(!e.to_string().is_empty());
                // Sticky: the same error again, and nothing else happens.
                assert_eq!(self.session.handle_input(b"\0"), Err(e));
                assert!(self.session.poll_event().is_none());
                assert!(self.session.poll_transmit().is_none());
            }
        }
        if self.closed.is_some() {
            assert!(matches!(
                self.session.state(),
                State::Closed | State::Failed
            ));
            assert_eq!(self.session.buffered_len(), 0);
        }
        for bytes in handed_back {
            self.framer.resume();
            self.framing = true;
            self.feed(&bytes);
        }
    }

    /// Takes the session's output and events; returns the CopyData handed back.
    fn drain(&mut self) -> Vec<Vec<u8>> {
        // The input-side memory bound: never more than was given.
        assert!(
            self.session.buffered_len() <= self.fed,
            "buffered {} of {} bytes fed",
            self.session.buffered_len(),
            self.fed
        );
        while let Some(bytes) = self.session.poll_transmit() {
            assert!(!bytes.is_empty());
            self.sent.extend_from_slice(&bytes);
        }
        let mut handed_back = Vec::new();
        while let Some(event) = self.session.poll_event() {
            assert!(
                self.closed.is_none(),
                "Closed is the last event, got {event:?}"
            );
            match event {
                Event::CopyData(bytes) => {
                    assert_eq!(bytes.first(), Some(&copyman_wire::COPY_DATA));
                    assert_eq!(
                        self.session.buffered_len(),
                        0,
                        "nothing held after CopyData"
                    );
                    self.fed -= bytes.len();
                    handed_back.push(bytes.to_vec());
                }
                Event::Closed(e) => {
                    assert!(!e.to_string().is_empty());
                    self.closed = Some(e.clone());
                    self.events.push(Event::Closed(e));
                }
                event => self.events.push(event),
            }
        }
        handed_back
    }
}

// -- The scripted server ------------------------------------------------------------------------

fn message(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = u32::try_from(body.len() + 4).expect("small scripted messages");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(body);
    out
}

fn auth_message(code: i32, data: &[u8]) -> Vec<u8> {
    message(b'R', &[&code.to_be_bytes()[..], data].concat())
}

fn sasl_offer() -> Vec<u8> {
    auth_message(10, b"SCRAM-SHA-256\0\0")
}

fn startup_tail() -> Vec<u8> {
    [
        message(b'S', b"server_version\x0015.18\0"),
        message(b'S', b"client_encoding\0UTF8\0"),
        message(b'K', &[0, 0, 0x10, 0x92, 0xff, 0xff, 0xff, 0xf9]),
        message(b'Z', b"I"),
    ]
    .concat()
}

/// The body of the one `p` message in `sent`.
fn password_message(sent: &[u8]) -> &[u8] {
    assert_eq!(sent.first(), Some(&b'p'), "a password message");
    let len = u32::from_be_bytes([sent[1], sent[2], sent[3], sent[4]]) as usize;
    assert_eq!(sent.len(), len + 1, "one message");
    &sent[5..]
}

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// The server side of a SCRAM-SHA-256 exchange (a few iterations: fuzzing wants speed).
struct ScramServer {
    client_first_bare: String,
    client_nonce: String,
    server_first: String,
}

const SALT: &[u8] = b"0123456789abcdef";
const ITERATIONS: u32 = 8;

impl ScramServer {
    /// From the client's SASLInitialResponse.
    fn new(sent: &[u8]) -> Self {
        let body = password_message(sent);
        let first = body
            .strip_prefix(b"SCRAM-SHA-256\0")
            .expect("SCRAM-SHA-256");
        let first = std::str::from_utf8(&first[4..]).expect("ASCII");
        let bare = first.strip_prefix("n,,").expect("no channel binding");
        let nonce = bare.strip_prefix("n=,r=").expect("a nonce");
        Self {
            client_first_bare: bare.to_owned(),
            client_nonce: nonce.to_owned(),
            server_first: String::new(),
        }
    }

    /// The server-first-message.
    fn first(&mut self) -> Vec<u8> {
        self.server_first = format!(
            "r={}SERVERNONCE,s={},i={ITERATIONS}",
            self.client_nonce,
            BASE64.encode(SALT)
        );
        auth_message(11, self.server_first.as_bytes())
    }

    /// The server-final-message for the client-final-message in `sent`.
    fn last(&self, sent: &[u8]) -> Vec<u8> {
        let final_message = std::str::from_utf8(password_message(sent)).expect("ASCII");
        let (without_proof, _) = final_message.rsplit_once(",p=").expect("a proof");
        let auth_message_text = format!(
            "{},{},{}",
            self.client_first_bare, self.server_first, without_proof
        );
        let mut u = hmac(PASSWORD, &[SALT, &[0, 0, 0, 1]].concat());
        let mut salted = u.clone();
        for _ in 1..ITERATIONS {
            u = hmac(PASSWORD, &u);
            salted.iter_mut().zip(&u).for_each(|(o, x)| *o ^= x);
        }
        let server_key = hmac(&salted, b"Server Key");
        let signature = hmac(&server_key, auth_message_text.as_bytes());
        // The client's proof is not checked: only the client checks anything here.
        auth_message(12, format!("v={}", BASE64.encode(signature)).as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(stage: Stage, auth: Auth, param: u8, stream: &[u8]) -> SessionInput {
        let stage = Stage::ALL.iter().position(|s| *s == stage).unwrap() as u8;
        let auth = Auth::ALL.iter().position(|a| *a == auth).unwrap() as u8;
        SessionInput {
            chunks: [1, 3, 0, 7, 2, 5, 11, 4],
            stage,
            auth,
            param,
            stream: stream.to_vec(),
        }
    }

    /// Every stage and method reaches its fuzzed part with a plausible server.
    #[test]
    fn every_stage_and_method() {
        let done = [
            message(b'd', b"1\n"),
            message(b'N', b"SNOTICE\0C00000\0Mhello\0\0"),
            message(b'd', b"2\n"),
            message(b'c', b""),
            message(b'C', b"COPY 2\0"),
            message(b'Z', b"I"),
        ]
        .concat();
        for stage in Stage::ALL {
            for auth in Auth::ALL {
                for param in [0, 7, 100, 255] {
                    session(&input(stage, auth, param, &done));
                    session(&input(stage, auth, param, b""));
                    session(&input(stage, auth, param, b"d\xff\xff\xff\xff"));
                }
            }
        }
    }

    #[test]
    fn to_bytes_is_the_arbitrary_layout() {
        use arbitrary::{Arbitrary, Unstructured};

        let input = input(Stage::Draining, Auth::Md5, 9, b"Z\0\0\0\x05I");
        let bytes = input.to_bytes();
        let decoded = SessionInput::arbitrary_take_rest(Unstructured::new(&bytes)).unwrap();
        assert_eq!(decoded, input);
    }
}
