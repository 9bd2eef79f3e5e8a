//! A deterministic, seeded harness for the sans-IO [`Manager`], in the style of quinn-proto's
//! test `Pair`: a scripted producer and scripted receivers carry out the manager's orders, and
//! every step checks the manager's invariants.
//!
//! Orders are collected as the manager gives them and carried out when it says
//! [`Output::Wait`] (one at a time, in FIFO or seeded random order, the way a concurrent adapter's
//! IO completes), or at once ([`Schedule::Eager`], the way a blocking adapter works).

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use copyman_core::manager::{
    Chunk, Config, Data, Event, Input, Manager, Output, Protocol, ReceiverId, Summary,
};
use copyman_core::{BoxError, CopyFail};
use copyman_wire::Framer;
use copyman_wire::realign::Completion;

/// Steps after which a run is declared stuck.
const STEP_LIMIT: usize = 200_000;

/// A scripted error, as an endpoint raises it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScriptError(pub(crate) String);

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ScriptError {}

fn boxed(message: &str) -> BoxError {
    Box::new(ScriptError(message.to_owned()))
}

// ---------------------------------------------------------------------------------------------
// PQv3 helpers and the reference parser.

/// The CopyData frames carrying `bodies`, one frame each.
pub(crate) fn frames<B: AsRef<[u8]>>(bodies: &[B]) -> Vec<u8> {
    let mut out = BytesMut::new();
    for body in bodies {
        let body = body.as_ref();
        out.put_u8(b'd');
        out.put_u32(u32::try_from(body.len() + 4).unwrap());
        out.put_slice(body);
    }
    out.to_vec()
}

/// `stream` split at `cuts` (offsets, any order, duplicates give empty chunks).
pub(crate) fn split(stream: &[u8], cuts: &[usize]) -> Vec<Bytes> {
    let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(stream.len())).collect();
    cuts.sort_unstable();
    let stream = Bytes::copy_from_slice(stream);
    let mut chunks = Vec::new();
    let mut at = 0;
    for cut in cuts {
        chunks.push(stream.slice(at..cut));
        at = cut;
    }
    chunks.push(stream.slice(at..));
    chunks
}

/// The reference parser: the bodies of `buf` if it is exactly a sequence of whole CopyData
/// frames, or where and why it is not.
pub(crate) fn parse_frames(buf: &[u8]) -> Result<Vec<&[u8]>, String> {
    let mut bodies = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        if buf[at] != b'd' {
            return Err(format!(
                "byte {at}: type {:?} is not CopyData",
                char::from(buf[at])
            ));
        }
        if at + 5 > buf.len() {
            return Err(format!(
                "byte {at}: header cut after {} bytes",
                buf.len() - at
            ));
        }
        let len = u32::from_be_bytes(buf[at + 1..at + 5].try_into().unwrap()) as usize;
        if len < 4 {
            return Err(format!("byte {at}: length {len} below 4"));
        }
        let end = at + 1 + len;
        if end > buf.len() {
            return Err(format!(
                "byte {at}: body cut, {} of {} bytes",
                buf.len() - at - 5,
                len - 4
            ));
        }
        bodies.push(&buf[at + 5..end]);
        at = end;
    }
    Ok(bodies)
}

/// The payloads of a stream of whole frames, concatenated.
pub(crate) fn payload(buf: &[u8]) -> Vec<u8> {
    parse_frames(buf).expect("whole frames").concat()
}

// ---------------------------------------------------------------------------------------------
// The scripted producer.

/// One read of the scripted producer.
#[derive(Debug, Clone)]
pub(crate) enum Read {
    /// The read delivers this chunk.
    Chunk(Chunk),
    /// The read fails.
    Error(String),
}

/// A producer following a script of reads, then its end.
#[derive(Debug)]
pub(crate) struct ScriptedProducer {
    pub(crate) protocol: Protocol,
    pub(crate) script: VecDeque<Read>,
    /// The `COPY n` given with the end.
    pub(crate) count: Option<u64>,
    /// What a cancel reports.
    pub(crate) cancel_error: Option<String>,
    // Records.
    pub(crate) reads: usize,
    pub(crate) delivered: Vec<Chunk>,
    pub(crate) errors: usize,
    pub(crate) ended: bool,
    pub(crate) cancels: usize,
}

impl ScriptedProducer {
    fn new(protocol: Protocol, chunks: Vec<Chunk>) -> Self {
        let count = Some(chunks.iter().map(|c| c.messages).sum());
        Self {
            protocol,
            script: chunks.into_iter().map(Read::Chunk).collect(),
            count,
            cancel_error: None,
            reads: 0,
            delivered: Vec::new(),
            errors: 0,
            ended: false,
            cancels: 0,
        }
    }

    /// A PQv3 producer delivering `chunks` of a CopyData stream; each chunk counts the frames it
    /// completes and the payload bytes it carries.
    pub(crate) fn pqv3(chunks: Vec<Bytes>) -> Self {
        let mut framer = Framer::new();
        let chunks = chunks
            .into_iter()
            .map(|bytes| {
                let walk = framer.advance(&bytes).expect("a well-formed stream");
                Chunk::pqv3(bytes, walk.frames as u64, walk.payload as u64)
            })
            .collect();
        Self::new(Protocol::PQv3, chunks)
    }

    /// A Chunks producer delivering these chunks of lines.
    pub(crate) fn lines<L: AsRef<[u8]>>(chunks: &[Vec<L>]) -> Self {
        let chunks = chunks
            .iter()
            .map(|lines| {
                let lines: Vec<Bytes> = lines
                    .iter()
                    .map(|l| Bytes::copy_from_slice(l.as_ref()))
                    .collect();
                Chunk::lines(lines)
            })
            .collect();
        Self::new(Protocol::Chunks, chunks)
    }

    /// A null producer delivering `reads` empty chunks.
    pub(crate) fn null(reads: usize) -> Self {
        Self::new(Protocol::Null, (0..reads).map(|_| Chunk::null()).collect())
    }

    /// The `index`-th read (from 0) fails with `message`; the script then goes on.
    pub(crate) fn error_at(mut self, index: usize, message: &str) -> Self {
        let index = index.min(self.script.len());
        self.script.insert(index, Read::Error(message.to_owned()));
        self
    }

    /// Ends with this `COPY n`.
    pub(crate) fn count(mut self, count: Option<u64>) -> Self {
        self.count = count;
        self
    }

    /// A cancel fails with `message`.
    pub(crate) fn cancel_error(mut self, message: &str) -> Self {
        self.cancel_error = Some(message.to_owned());
        self
    }

    /// Messages and payload bytes delivered so far.
    pub(crate) fn delivered_totals(&self) -> (u64, u64) {
        self.delivered
            .iter()
            .fold((0, 0), |(m, b), c| (m + c.messages, b + c.bytes))
    }
}

// ---------------------------------------------------------------------------------------------
// The scripted receivers.

/// A receiver following a script, recording everything it transmitted.
#[derive(Debug)]
pub(crate) struct ScriptedReceiver {
    pub(crate) protocol: Protocol,
    /// Fail the k-th transmit (from 1) after writing w bytes of it.
    pub(crate) faults: Vec<(usize, usize)>,
    /// Those faults are its server's error with this SQLSTATE (a `DbError`), not its own.
    pub(crate) server_error: Option<String>,
    /// Never acknowledge a transmit (until released).
    pub(crate) hold: bool,
    /// The `COPY n` reported on Complete; `None` echoes the producer's count.
    pub(crate) count: Option<Option<u64>>,
    /// Complete fails with this.
    pub(crate) complete_error: Option<String>,
    /// Fail fails with this.
    pub(crate) fail_error: Option<String>,
    // Records.
    /// Every PQv3 byte that went out, in order (partial writes included).
    pub(crate) wire: Vec<u8>,
    /// Every line transmitted, in order.
    pub(crate) lines: Vec<Bytes>,
    /// Null transmits.
    pub(crate) nulls: usize,
    /// Every transmit's data, as given.
    pub(crate) transmits: Vec<Data>,
    /// Errors it raised while transmitting.
    pub(crate) errors: Vec<String>,
    /// Its Complete, with the count it reported.
    pub(crate) completed: Option<Option<u64>>,
    /// Its Fail, with the reason and completion.
    pub(crate) failed: Option<(Arc<str>, Completion)>,
    /// Complete and Fail orders received.
    pub(crate) endings: usize,
}

impl ScriptedReceiver {
    pub(crate) fn new(protocol: Protocol) -> Self {
        Self {
            protocol,
            faults: Vec::new(),
            server_error: None,
            hold: false,
            count: None,
            complete_error: None,
            fail_error: None,
            wire: Vec::new(),
            lines: Vec::new(),
            nulls: 0,
            transmits: Vec::new(),
            errors: Vec::new(),
            completed: None,
            failed: None,
            endings: 0,
        }
    }

    pub(crate) fn pqv3() -> Self {
        Self::new(Protocol::PQv3)
    }

    pub(crate) fn chunks() -> Self {
        Self::new(Protocol::Chunks)
    }

    pub(crate) fn null() -> Self {
        Self::new(Protocol::Null)
    }

    /// Fails its `k`-th transmit (from 1) after writing `w` bytes of it.
    pub(crate) fn fail_on(mut self, k: usize, w: usize) -> Self {
        self.faults.push((k, w));
        self
    }

    /// Its faults are its server's error `code` (a `DbError`).
    pub(crate) fn server_error(mut self, code: &str) -> Self {
        self.server_error = Some(code.to_owned());
        self
    }

    /// Never acknowledges a transmit.
    pub(crate) fn hold(mut self) -> Self {
        self.hold = true;
        self
    }

    /// Reports this `COPY n` on Complete.
    pub(crate) fn count(mut self, count: Option<u64>) -> Self {
        self.count = Some(count);
        self
    }

    pub(crate) fn complete_error(mut self, message: &str) -> Self {
        self.complete_error = Some(message.to_owned());
        self
    }

    pub(crate) fn fail_error(mut self, message: &str) -> Self {
        self.fail_error = Some(message.to_owned());
        self
    }

    /// What its server saw before the CopyFail: the bytes written, then the completion.
    pub(crate) fn wire_at_fail(&self) -> Vec<u8> {
        let mut wire = self.wire.clone();
        if let Some((_, completion)) = &self.failed {
            wire.extend_from_slice(&completion.to_vec());
        }
        wire
    }
}

// ---------------------------------------------------------------------------------------------
// The harness.

/// When orders are carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Schedule {
    /// As soon as given (a blocking adapter).
    Eager,
    /// On Wait, oldest first.
    Fifo,
    /// On Wait, a seeded random one.
    Random(u64),
}

/// An order given by the manager and not yet carried out.
#[derive(Debug, Clone)]
pub(crate) enum Order {
    Read,
    Transmit(ReceiverId, Data),
    Complete(ReceiverId),
    Fail(ReceiverId, Arc<str>, Completion),
    Cancel,
}

impl Order {
    fn receiver(&self) -> Option<ReceiverId> {
        match self {
            Self::Transmit(r, _) | Self::Complete(r) | Self::Fail(r, _, _) => Some(*r),
            Self::Read | Self::Cancel => None,
        }
    }
}

/// What the harness saw, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Log {
    /// A producer read was carried out.
    Read,
    /// A transmit of this many bytes (lines: their lengths) was carried out.
    Transmit(ReceiverId, usize),
    Complete(ReceiverId),
    Fail(ReceiverId),
    Cancel,
    Progress(u64, u64),
    ReceiverFault(Vec<ReceiverId>),
    ProducerFault,
    Reconciled(ReceiverId),
    Finished,
}

/// Why [`Harness::drive`] stopped.
#[derive(Debug)]
pub(crate) enum Stop {
    Event(Event),
    EndOfCopy,
    Done,
    /// Wait with nothing the harness may carry out (held receivers only).
    Stalled,
}

/// The seeded xorshift the harness schedules with.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// A manager wired to a scripted producer and scripted receivers.
#[derive(Debug)]
pub(crate) struct Harness {
    pub(crate) manager: Manager,
    pub(crate) window: usize,
    pub(crate) producer: ScriptedProducer,
    pub(crate) receivers: Vec<ScriptedReceiver>,
    pub(crate) ids: Vec<ReceiverId>,
    schedule: Schedule,
    rng: Rng,
    outstanding: Vec<Order>,
    pub(crate) events: Vec<Event>,
    pub(crate) log: Vec<Log>,
    pub(crate) finished: Option<Result<Summary, CopyFail>>,
    steps: usize,
}

impl Harness {
    pub(crate) fn new(
        producer: ScriptedProducer,
        receivers: Vec<ScriptedReceiver>,
        window: usize,
        schedule: Schedule,
    ) -> Self {
        Self::with_config(producer, receivers, Config::with_window(window), schedule)
    }

    /// As [`Harness::new`], with a whole manager configuration (policies included).
    pub(crate) fn with_config(
        producer: ScriptedProducer,
        receivers: Vec<ScriptedReceiver>,
        config: Config,
        schedule: Schedule,
    ) -> Self {
        let window = config.window;
        let mut manager = Manager::new(producer.protocol, config);
        let ids = receivers
            .iter()
            .map(|r| {
                manager
                    .add_receiver(r.protocol)
                    .expect("added before the start")
            })
            .collect();
        let seed = match schedule {
            Schedule::Random(seed) => seed | 1,
            _ => 1,
        };
        Self {
            manager,
            window,
            producer,
            receivers,
            ids,
            schedule,
            rng: Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
            outstanding: Vec::new(),
            events: Vec::new(),
            log: Vec::new(),
            finished: None,
            steps: 0,
        }
    }

    pub(crate) fn rx(&self, r: ReceiverId) -> &ScriptedReceiver {
        &self.receivers[r.0]
    }

    /// Lets a held receiver acknowledge its transmits.
    pub(crate) fn release(&mut self, r: ReceiverId) {
        self.receivers[r.0].hold = false;
    }

    /// Gives the manager an input the harness did not produce itself.
    pub(crate) fn input(&mut self, input: Input) {
        self.manager
            .handle_input(input)
            .expect("the manager accepts the input");
    }

    /// The receiver's server reports an error while nothing is out for it (an ErrorResponse read
    /// between transmits); only for a live receiver. Whether it was reported.
    pub(crate) fn server_error(&mut self, r: ReceiverId) -> bool {
        if !self.manager.is_live(r) || self.outstanding.iter().any(|o| o.receiver() == Some(r)) {
            return false;
        }
        let message = format!("receiver {r}: server error");
        self.receivers[r.0].errors.push(message.clone());
        self.input(Input::ReceiverError {
            receiver: r,
            error: boxed(&message),
            written: 0,
        });
        true
    }

    /// Orders given and not carried out.
    pub(crate) fn outstanding(&self) -> &[Order] {
        &self.outstanding
    }

    /// The Progress reports so far.
    pub(crate) fn progress(&self) -> Vec<(u64, u64)> {
        self.log
            .iter()
            .filter_map(|l| match l {
                Log::Progress(m, b) => Some((*m, *b)),
                _ => None,
            })
            .collect()
    }

    /// One `poll_output`, and what the harness does with it; `Some` when the caller must act.
    pub(crate) fn step(&mut self) -> Option<Stop> {
        self.steps += 1;
        assert!(self.steps < STEP_LIMIT, "the copy makes no progress");
        let output = self.manager.poll_output();
        let stop = match output {
            Output::ReadProducer => {
                assert!(self.finished.is_none(), "read after Finished");
                assert!(
                    !self
                        .outstanding
                        .iter()
                        .any(|o| matches!(o, Order::Read | Order::Cancel)),
                    "a second producer order while one is out"
                );
                assert!(!self.producer.ended, "read after the producer's end");
                self.order(Order::Read);
                None
            }
            Output::Transmit { receiver, data } => {
                assert!(self.finished.is_none(), "transmit after Finished");
                assert_eq!(
                    data.protocol(),
                    self.rx(receiver).protocol,
                    "data in the wrong protocol"
                );
                assert!(
                    self.rx(receiver).endings == 0,
                    "transmit after the receiver ended"
                );
                self.order(Order::Transmit(receiver, data));
                None
            }
            Output::Complete { receiver } => {
                assert!(
                    self.producer.ended,
                    "Complete before the producer reached its end"
                );
                assert!(
                    self.manager.pending(receiver) == 0,
                    "Complete with data pending"
                );
                self.order(Order::Complete(receiver));
                None
            }
            Output::Fail {
                receiver,
                reason,
                completion,
            } => {
                if self.rx(receiver).protocol != Protocol::PQv3 {
                    assert!(completion.is_empty(), "realignment for a non-PQv3 receiver");
                }
                self.order(Order::Fail(receiver, reason, completion));
                None
            }
            Output::CancelProducer => {
                assert!(!self.producer.ended, "cancel of a producer that ended");
                assert!(
                    !self
                        .outstanding
                        .iter()
                        .any(|o| matches!(o, Order::Read | Order::Cancel)),
                    "cancel while a producer order is out"
                );
                assert_eq!(self.producer.cancels, 0, "a second cancel");
                self.order(Order::Cancel);
                None
            }
            Output::Event(event) => {
                self.record(&event);
                Some(Stop::Event(event))
            }
            Output::Wait => match self.pick() {
                Some(index) => {
                    let order = self.outstanding.remove(index);
                    self.execute(order);
                    None
                }
                None => Some(Stop::Stalled),
            },
            Output::EndOfCopy => {
                assert!(
                    self.outstanding.is_empty(),
                    "EndOfCopy with orders out: {:?}",
                    self.outstanding
                );
                Some(Stop::EndOfCopy)
            }
            Output::Done => {
                assert!(self.finished.is_some(), "Done before Finished");
                Some(Stop::Done)
            }
            other => panic!("unknown output {other:?}"),
        };
        self.check_invariants();
        stop
    }

    /// Steps until the caller must act: an event, EndOfCopy, Done or a stall.
    pub(crate) fn drive(&mut self) -> Stop {
        loop {
            if let Some(stop) = self.step() {
                return stop;
            }
        }
    }

    /// Drives until the copy is over, going on past every fault and finishing at EndOfCopy.
    pub(crate) fn drive_to_end(&mut self) -> Result<Summary, CopyFail> {
        loop {
            match self.drive() {
                Stop::Event(Event::Finished(result)) => {
                    self.assert_done();
                    return result;
                }
                Stop::Event(_) => {}
                Stop::EndOfCopy => self.input(Input::Finish),
                Stop::Done => panic!("Done without Finished"),
                Stop::Stalled => panic!("stalled: {:?}", self.outstanding),
            }
        }
    }

    /// After Finished: every later poll says Done.
    pub(crate) fn assert_done(&mut self) {
        for _ in 0..3 {
            assert!(matches!(self.step(), Some(Stop::Done)));
        }
        assert!(self.manager.is_finished());
    }

    fn order(&mut self, order: Order) {
        if let Some(r) = order.receiver() {
            assert!(
                !self.outstanding.iter().any(|o| o.receiver() == Some(r)),
                "a second order for receiver {r} while one is out"
            );
        }
        if self.schedule == Schedule::Eager && !self.held(&order) {
            self.execute(order);
        } else {
            self.outstanding.push(order);
        }
    }

    fn held(&self, order: &Order) -> bool {
        matches!(order, Order::Transmit(r, _) if self.rx(*r).hold)
    }

    fn pick(&mut self) -> Option<usize> {
        let ready: Vec<usize> = (0..self.outstanding.len())
            .filter(|&i| !self.held(&self.outstanding[i]))
            .collect();
        match (ready.len(), self.schedule) {
            (0, _) => None,
            (_, Schedule::Random(_)) => Some(ready[self.rng.below(ready.len())]),
            _ => Some(ready[0]),
        }
    }

    fn execute(&mut self, order: Order) {
        let input = match order {
            Order::Read => {
                self.log.push(Log::Read);
                self.producer.reads += 1;
                match self.producer.script.pop_front() {
                    Some(Read::Chunk(chunk)) => {
                        self.producer.delivered.push(chunk.clone());
                        Input::ProducerData(chunk)
                    }
                    Some(Read::Error(message)) => {
                        self.producer.errors += 1;
                        Input::ProducerError(boxed(&message))
                    }
                    None => {
                        self.producer.ended = true;
                        Input::ProducerEnd {
                            count: self.producer.count,
                        }
                    }
                }
            }
            Order::Cancel => {
                self.log.push(Log::Cancel);
                self.producer.cancels += 1;
                let result = self
                    .producer
                    .cancel_error
                    .as_deref()
                    .map_or(Ok(()), |m| Err(boxed(m)));
                Input::ProducerDone { result }
            }
            Order::Transmit(receiver, data) => self.transmit(receiver, data),
            Order::Complete(receiver) => {
                self.log.push(Log::Complete(receiver));
                let producer_count = self.producer.count;
                let rx = &mut self.receivers[receiver.0];
                rx.endings += 1;
                let result = match &rx.complete_error {
                    Some(message) => Err(boxed(message)),
                    None => Ok(rx.count.unwrap_or(producer_count)),
                };
                if let Ok(count) = &result {
                    rx.completed = Some(*count);
                }
                Input::ReceiverDone { receiver, result }
            }
            Order::Fail(receiver, reason, completion) => {
                self.log.push(Log::Fail(receiver));
                let rx = &mut self.receivers[receiver.0];
                rx.endings += 1;
                rx.failed = Some((reason, completion));
                let result = rx.fail_error.as_deref().map_or(Ok(None), |m| Err(boxed(m)));
                Input::ReceiverDone { receiver, result }
            }
        };
        self.manager
            .handle_input(input)
            .expect("the manager accepts what it asked for");
    }

    fn transmit(&mut self, receiver: ReceiverId, data: Data) -> Input {
        let rx = &mut self.receivers[receiver.0];
        rx.transmits.push(data.clone());
        let k = rx.transmits.len();
        let fault = rx.faults.iter().find(|(on, _)| *on == k).map(|&(_, w)| w);
        let len = data.len();
        self.log.push(Log::Transmit(receiver, len));
        match (fault, &data) {
            (None, Data::PQv3(bytes)) => rx.wire.extend_from_slice(bytes),
            (None, Data::Lines(lines)) => rx.lines.extend(lines.iter().cloned()),
            (None, Data::Null) => rx.nulls += 1,
            (Some(w), Data::PQv3(bytes)) => {
                let written = w.min(bytes.len());
                rx.wire.extend_from_slice(&bytes[..written]);
                let message = format!("receiver {receiver} failed on transmit {k}");
                rx.errors.push(message.clone());
                let error = match &rx.server_error {
                    Some(code) => {
                        let mut error = copyman_core::session::DbError::default();
                        error.severity = "ERROR".into();
                        error.code = code.clone();
                        error.message = message;
                        Box::new(error)
                    }
                    None => boxed(&message),
                };
                return Input::ReceiverError {
                    receiver,
                    error,
                    written,
                };
            }
            // A writer's lines: its first `w` bytes taken, the line they end in cut.
            (Some(w), Data::Lines(lines)) => {
                let mut left = w;
                for line in lines.iter() {
                    let take = left.min(line.len());
                    if take > 0 {
                        rx.lines.push(line.slice(..take));
                    }
                    left -= take;
                }
                let message = format!("receiver {receiver} failed on transmit {k}");
                rx.errors.push(message.clone());
                return Input::ReceiverError {
                    receiver,
                    error: boxed(&message),
                    written: w - left,
                };
            }
            (Some(_), _) => {
                let message = format!("receiver {receiver} failed on transmit {k}");
                rx.errors.push(message.clone());
                return Input::ReceiverError {
                    receiver,
                    error: boxed(&message),
                    written: 0,
                };
            }
            (None, _) => panic!("unknown data {data:?}"),
        }
        Input::Transmitted { receiver }
    }

    fn record(&mut self, event: &Event) {
        self.events.push(event.clone());
        match event {
            Event::Progress { messages, bytes } => self.log.push(Log::Progress(*messages, *bytes)),
            Event::ReceiverFault(fault) => {
                assert!(!fault.faults.is_empty(), "an empty ReceiverFault");
                for (r, _) in &fault.faults {
                    assert!(
                        !self.manager.is_live(*r),
                        "a faulted receiver is still live"
                    );
                }
                self.log.push(Log::ReceiverFault(
                    fault.faults.iter().map(|(r, _)| *r).collect(),
                ));
            }
            Event::ProducerFault(_) => self.log.push(Log::ProducerFault),
            Event::Reconciled(r) => {
                assert!(
                    self.manager.is_live(*r),
                    "a reconciled receiver is not live"
                );
                assert_eq!(
                    self.manager.pending(*r),
                    0,
                    "a reconciled receiver still owes data"
                );
                self.log.push(Log::Reconciled(*r));
            }
            Event::Finished(result) => {
                assert!(self.finished.is_none(), "Finished twice");
                assert!(
                    self.outstanding.is_empty(),
                    "Finished with orders out: {:?}",
                    self.outstanding
                );
                for (i, rx) in self.receivers.iter().enumerate() {
                    assert_eq!(rx.endings, 1, "receiver {i} was not ended exactly once");
                }
                assert!(
                    self.producer.ended || self.producer.cancels == 1,
                    "the producer neither ended nor was cancelled"
                );
                if let Ok(summary) = result {
                    assert!(self.producer.ended, "success before the producer's end");
                    assert_eq!(
                        (summary.messages, summary.bytes),
                        self.producer.delivered_totals()
                    );
                }
                self.log.push(Log::Finished);
                self.finished = Some(result.clone());
            }
            other => panic!("unknown event {other:?}"),
        }
    }

    fn check_invariants(&self) {
        let reads = self
            .outstanding
            .iter()
            .filter(|o| matches!(o, Order::Read))
            .count();
        assert!(reads <= 1, "{reads} producer reads out");
        for &r in &self.ids {
            let out = self
                .outstanding
                .iter()
                .filter(|o| o.receiver() == Some(r))
                .count();
            assert!(out <= 1, "{out} orders out for receiver {r}");
            if self.manager.is_live(r) {
                let pending = self.manager.pending(r);
                assert!(
                    pending <= self.window,
                    "receiver {r} has {pending} chunks pending"
                );
            }
        }
    }
}
