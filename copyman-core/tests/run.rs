//! Deterministic tests of [`CopyRun`]: the start of a copy, what each call waits for, the result
//! kept, and the bytes receivers hold — what both adapters' `CopyManager` follow.

use std::collections::VecDeque;
use std::io;
use std::time::Duration;

use bytes::Bytes;
use copyman_core::run::{CopyRun, Order, Progress, Report, Step};
use copyman_core::session::CopyFormat;
use copyman_core::stall::{EndpointId, Stalled};
use copyman_core::start::{DataFormat, FormatMismatch, RepresentationMismatch};
use copyman_core::statement::representation;
use copyman_core::{Chunk, Config, Data, Fault, Input, Protocol, ReceiverId, ReceiverOutcome};

const R0: ReceiverId = ReceiverId(0);
const R1: ReceiverId = ReceiverId(1);
const R2: ReceiverId = ReceiverId(2);

/// Endpoints in memory: what each does when ordered, and the orders it was given.
#[derive(Default)]
struct Endpoints {
    receivers: usize,
    producer_format: Option<DataFormat>,
    producer_cannot_start: bool,
    receiver_formats: Vec<(ReceiverId, DataFormat)>,
    cannot_start: Vec<ReceiverId>,
    /// The endpoints that cannot start fail with an IO timeout (a COPY whose start response did
    /// not come: its table locked by another session).
    start_times_out: bool,
    /// Chunks of lines the producer hands in, each `rows` lines of 4 bytes.
    chunks: VecDeque<Vec<Bytes>>,
    /// A receiver whose transmits fail.
    failing: Option<ReceiverId>,
    /// The producer's reads fail.
    producer_fails: bool,
    /// Its transmits fail with an IO timeout (a socket that took nothing for its timeout).
    timing_out: bool,
    /// A receiver whose completion fails with an IO timeout.
    complete_times_out: Option<ReceiverId>,
    /// While this receiver transmits, that one's server reports an error.
    error_during: Option<(ReceiverId, ReceiverId)>,
    /// Results are held until the driver waits (an adapter with IO in flight) instead of given
    /// at once.
    defer: bool,
    held: VecDeque<Report>,
    log: Vec<String>,
}

impl Endpoints {
    fn new(receivers: usize, chunks: usize) -> Self {
        Self {
            receivers,
            chunks: (0..chunks)
                .map(|c| {
                    (0..3)
                        .map(|r| Bytes::from(format!("{c}{r}{r}\n")))
                        .collect()
                })
                .collect(),
            ..Self::default()
        }
    }

    fn run(&self, config: Config) -> CopyRun {
        let receivers = (0..self.receivers).map(|_| Protocol::Chunks);
        CopyRun::new(Protocol::Chunks, receivers, config, |_| Default::default())
    }

    fn carry_out(&mut self, order: Order) -> Vec<Report> {
        self.log.push(match &order {
            Order::StartReceiver(id) => format!("start {id}"),
            Order::StartProducer { .. } => "start producer".into(),
            Order::ReadProducer => "read".into(),
            Order::Transmit { receiver, .. } => format!("transmit {receiver}"),
            Order::Complete { receiver } => format!("complete {receiver}"),
            Order::Fail { receiver, .. } => format!("fail {receiver}"),
            Order::CancelProducer => "cancel producer".into(),
            other => format!("{other:?}"),
        });
        let report: Report = match order {
            Order::StartReceiver(id) => {
                let format = self
                    .receiver_formats
                    .iter()
                    .find(|(r, _)| *r == id)
                    .map(|(_, f)| f.clone());
                let result = match self.cannot_start.contains(&id) {
                    true if self.start_times_out => Err(timed_out()),
                    true => Err(format!("receiver {id} cannot start").into()),
                    false => Ok(format),
                };
                Report::started(EndpointId::Receiver(id), result)
            }
            Order::StartProducer { .. } => {
                let result = match self.producer_cannot_start {
                    true if self.start_times_out => Err(timed_out()),
                    true => Err("the producer cannot start".into()),
                    false => Ok(self.producer_format.clone()),
                };
                Report::started(EndpointId::Producer, result)
            }
            Order::ReadProducer if self.producer_fails => {
                Input::ProducerError("division by zero".into()).into()
            }
            Order::ReadProducer => match self.chunks.pop_front() {
                Some(lines) => Input::ProducerData(Chunk::lines(lines)).into(),
                None => Input::ProducerEnd { count: None }.into(),
            },
            Order::Transmit { receiver, data } => {
                assert!(matches!(data, Data::Lines(_)));
                let mut reports = Vec::new();
                if let Some((during, erring)) = self.error_during
                    && during == receiver
                {
                    self.error_during = None;
                    reports.push(
                        Input::ReceiverError {
                            receiver: erring,
                            error: format!("receiver {erring}'s server said no").into(),
                            written: 0,
                        }
                        .into(),
                    );
                }
                reports.push(match self.failing == Some(receiver) {
                    true => Input::ReceiverError {
                        receiver,
                        error: match self.timing_out {
                            true => Box::new(io::Error::from(io::ErrorKind::TimedOut)),
                            false => format!("receiver {receiver} broke").into(),
                        },
                        written: 0,
                    }
                    .into(),
                    false => Input::Transmitted { receiver }.into(),
                });
                return reports;
            }
            Order::Complete { receiver } => Input::ReceiverDone {
                receiver,
                result: match self.complete_times_out == Some(receiver) {
                    true => Err(Box::new(io::Error::from(io::ErrorKind::TimedOut))),
                    false => Ok(None),
                },
            }
            .into(),
            Order::Fail { receiver, .. } => Input::ReceiverDone {
                receiver,
                result: Ok(None),
            }
            .into(),
            Order::CancelProducer => Input::ProducerDone { result: Ok(()) }.into(),
            other => unreachable!("{other:?}"),
        };
        vec![report]
    }

    /// An adapter's drive loop, for one call.
    fn drive<T>(&mut self, run: &mut CopyRun, mut poll: impl FnMut(&mut CopyRun) -> Step<T>) -> T {
        loop {
            match poll(run) {
                Step::Order(order) => {
                    for report in self.carry_out(order) {
                        match self.defer {
                            true => self.held.push_back(report),
                            false => run.report(report),
                        }
                    }
                }
                Step::Wait => run.report(
                    self.held
                        .pop_front()
                        .expect("core waits only for IO under way"),
                ),
                Step::Ready(done) => return done,
            }
        }
    }

    fn logged(&self, prefix: &str) -> Vec<&str> {
        self.log
            .iter()
            .map(String::as_str)
            .filter(|l| l.starts_with(prefix))
            .collect()
    }
}

fn timed_out() -> copyman_core::BoxError {
    Box::new(io::Error::from(io::ErrorKind::TimedOut))
}

#[test]
fn every_receiver_starts_before_the_producer() {
    let mut io = Endpoints::new(3, 1);
    let mut run = io.run(Config::default());
    io.drive(&mut run, CopyRun::poll_started).unwrap();
    assert_eq!(
        io.log,
        ["start 0", "start 1", "start 2", "start producer"],
        "receivers first, then the producer, and no data before"
    );
}

#[test]
fn the_receivers_starts_are_ordered_together_for_an_adapter_that_runs_them_at_once() {
    let mut io = Endpoints::new(3, 0);
    io.defer = true;
    let mut run = io.run(Config::default());
    // Every start order comes before the first wait.
    let mut orders = Vec::new();
    loop {
        match run.poll_started() {
            Step::Order(order) => orders.push(order),
            Step::Wait => break,
            Step::Ready(_) => panic!("ready before any endpoint started"),
        }
    }
    let starts: Vec<_> = orders.iter().map(Order::endpoint).collect();
    assert_eq!(
        starts,
        [R0, R1, R2].map(EndpointId::Receiver),
        "the producer waits for the receivers"
    );
}

#[test]
fn a_receiver_that_cannot_start_fails_the_copy_after_every_receiver_was_tried() {
    let mut io = Endpoints::new(3, 1);
    io.cannot_start = vec![R1];
    let mut run = io.run(Config::default());
    let fail = io.drive(&mut run, CopyRun::poll_started).unwrap_err();
    assert_eq!(io.logged("start"), ["start 0", "start 1", "start 2"]);
    assert!(io.logged("read").is_empty(), "no data moved");
    let faulted: Vec<_> = fail.receiver_faults.iter().map(|(id, _)| *id).collect();
    assert_eq!(faulted, [R1]);
    assert!(
        fail.receiver_faults[0]
            .1
            .to_string()
            .contains("cannot start")
    );
    // Every receiver's COPY that may have started is failed; none completed.
    assert_eq!(io.logged("fail"), ["fail 0", "fail 1", "fail 2"]);
    assert!(io.logged("complete").is_empty());
    assert!(
        run.result().is_some_and(Result::is_err),
        "the result is kept"
    );
}

#[test]
fn a_producer_that_cannot_start_fails_the_copy() {
    let mut io = Endpoints::new(2, 1);
    io.producer_cannot_start = true;
    let mut run = io.run(Config::default());
    let fail = io.drive(&mut run, CopyRun::poll_started).unwrap_err();
    assert!(fail.producer_fault.is_some());
    assert!(fail.receiver_faults.is_empty());
    assert_eq!(io.logged("fail"), ["fail 0", "fail 1"]);
}

#[test]
fn a_receiver_whose_format_differs_from_the_producers_fails_the_start() {
    let mut io = Endpoints::new(2, 1);
    io.producer_format = Some(CopyFormat::Text.into());
    io.receiver_formats = vec![
        (R0, CopyFormat::Text.into()),
        (R1, CopyFormat::Binary.into()),
    ];
    let mut run = io.run(Config::default());
    let fail = io.drive(&mut run, CopyRun::poll_started).unwrap_err();
    let (id, error) = &fail.receiver_faults[0];
    assert_eq!(*id, R1);
    assert!(
        error.get_ref().downcast_ref::<FormatMismatch>().is_some(),
        "{error}"
    );
    assert!(io.logged("read").is_empty(), "no data moved");
}

/// The data format of a statement, as a session whose client_encoding is UTF8 reads it.
fn of(sql: &str) -> DataFormat {
    let rep = representation(sql).map(|r| r.in_session(Some("UTF8")));
    let format = match rep.as_ref().map(|r| r.format.as_str()) {
        Some("binary") => CopyFormat::Binary,
        _ => CopyFormat::Text,
    };
    DataFormat::new(format, rep)
}

/// The representation mismatch a receiver's start failed with.
fn representation_mismatch(fail: &copyman_core::CopyFail, id: ReceiverId) -> String {
    let (_, error) = fail
        .receiver_faults
        .iter()
        .find(|(r, _)| *r == id)
        .unwrap_or_else(|| panic!("receiver {id} refused: {fail}"));
    let mismatch = error.get_ref().downcast_ref::<RepresentationMismatch>();
    mismatch.unwrap_or_else(|| panic!("{error}")).to_string()
}

#[test]
fn a_receiver_reading_another_representation_than_the_producers_fails_the_start() {
    let mut io = Endpoints::new(3, 1);
    io.producer_format = Some(of("COPY t TO STDOUT"));
    io.receiver_formats = vec![
        (R0, of("COPY t FROM STDIN (ENCODING 'unicode')")),
        (R1, of("COPY t FROM STDIN (FORMAT csv)")),
        (R2, of("COPY t FROM STDIN WITH NULL AS ''")),
    ];
    let mut run = io.run(Config::default());
    let fail = io.drive(&mut run, CopyRun::poll_started).unwrap_err();
    assert_eq!(fail.receiver_faults.len(), 2, "{fail}");
    assert_eq!(
        representation_mismatch(&fail, R1),
        "the COPY FROM STDIN reads FORMAT csv, but the COPY TO STDOUT writes FORMAT text: its \
         rows would be read as another format (NULLs, empty strings and escapes changed without \
         an error); give both ends the same FORMAT and options"
    );
    assert!(
        representation_mismatch(&fail, R2)
            .starts_with("the COPY FROM STDIN reads FORMAT text, NULL ''")
    );
    assert!(io.logged("read").is_empty(), "no data moved");
    assert!(io.logged("complete").is_empty(), "nothing completed");
    assert_eq!(io.logged("fail"), ["fail 0", "fail 1", "fail 2"]);
    // An encoding of its own is named.
    let mut io = Endpoints::new(1, 1);
    io.producer_format = Some(of("COPY t TO STDOUT"));
    io.receiver_formats = vec![(R0, of("COPY t FROM STDIN (ENCODING 'latin1')"))];
    let mut run = io.run(Config::default());
    let fail = io.drive(&mut run, CopyRun::poll_started).unwrap_err();
    assert!(
        representation_mismatch(&fail, R0).starts_with(
            "the COPY FROM STDIN reads FORMAT text, ENCODING 'LATIN1', but the COPY TO STDOUT \
             writes FORMAT text, ENCODING 'UTF8': "
        ),
        "{fail}"
    );
    // Said as an encoding's difference, with its own way out (lib38 F10: it spoke of NULLs
    // and escapes, and of making the statements' options the same).
    let said = representation_mismatch(&fail, R0);
    assert!(
        said.contains("decoded as another encoding")
            && said.contains("client_encoding")
            && !said.contains("NULLs"),
        "{said}"
    );
    assert_eq!(io.logged("cancel"), ["cancel producer"]);
}

#[test]
fn without_the_producers_representation_receivers_are_compared_with_each_other() {
    let mut io = Endpoints::new(3, 1);
    io.receiver_formats = vec![
        (R1, of("COPY t FROM STDIN (FORMAT csv)")),
        (R2, of("COPY t FROM STDIN")),
    ];
    let mut run = io.run(Config::default());
    let fail = io.drive(&mut run, CopyRun::poll_started).unwrap_err();
    assert_eq!(fail.receiver_faults.len(), 1, "{fail}");
    assert!(
        representation_mismatch(&fail, R2).starts_with(
            "the COPY FROM STDIN reads FORMAT text, but receiver 1's COPY FROM STDIN reads FORMAT \
             csv: "
        ),
        "{fail}"
    );
    assert!(io.logged("complete").is_empty(), "nothing completed");
}

#[test]
fn spellings_of_one_representation_start() {
    let mut io = Endpoints::new(3, 2);
    io.producer_format = Some(of("copy t to stdout with csv"));
    io.receiver_formats = vec![
        (R0, of("COPY t FROM STDIN (FORMAT 'csv', ENCODING 'UTF-8')")),
        (R1, of(r#"COPY t FROM STDIN CSV QUOTE '"' ESCAPE E'\x22'"#)),
        (R2, CopyFormat::Text.into()),
    ];
    let mut run = io.run(Config::default());
    io.drive(&mut run, CopyRun::poll_started).unwrap();
    assert_eq!(io.drive(&mut run, CopyRun::poll_run).unwrap().messages, 6);
}

#[test]
fn a_copy_runs_to_its_summary_and_finishing_again_gives_it_again() {
    let mut io = Endpoints::new(2, 3);
    let mut run = io.run(Config::default());
    io.drive(&mut run, CopyRun::poll_started).unwrap();
    let summary = io.drive(&mut run, CopyRun::poll_run).unwrap();
    assert_eq!(summary.messages, 9);
    assert!(summary.receivers.iter().all(|(_, o)| o.is_completed()));
    run.finish();
    let again = io.drive(&mut run, CopyRun::poll_finished).unwrap();
    assert_eq!(again.messages, 9);
    assert_eq!(
        io.logged("complete").len(),
        2,
        "each receiver completed once"
    );
    assert!(io.drive(&mut run, CopyRun::poll_progress).is_none());
}

#[test]
fn run_ends_the_copy_at_a_receiver_fault_unless_keep_going() {
    for keep_going in [false, true] {
        let mut io = Endpoints::new(2, 3);
        io.failing = Some(R1);
        let mut run = io.run(Config::default().with_keep_going(keep_going));
        io.drive(&mut run, CopyRun::poll_started).unwrap();
        let result = io.drive(&mut run, CopyRun::poll_run);
        match keep_going {
            false => {
                let fail = result.unwrap_err();
                assert!(io.logged("complete").is_empty(), "nothing completed");
                assert!(matches!(fail.receivers[1].1, ReceiverOutcome::Faulted(_)));
            }
            true => {
                let summary = result.unwrap();
                assert_eq!(summary.messages, 9);
                assert_eq!(io.logged("complete"), ["complete 0"]);
                assert!(matches!(
                    summary.receivers[1].1,
                    ReceiverOutcome::Faulted(_)
                ));
            }
        }
    }
}

#[test]
fn the_stall_rule_is_cores_an_io_timeout_is_a_stall_except_while_completing() {
    let mut io = Endpoints::new(3, 2);
    io.failing = Some(R1);
    io.timing_out = true;
    io.complete_times_out = Some(R2);
    let config = Config::default().with_keep_going(true);
    let mut run = io
        .run(config)
        .with_stall_timeout(Some(Duration::from_secs(5)));
    io.drive(&mut run, CopyRun::poll_started).unwrap();
    // Keep-going: receiver 0 completes, so the copy does, with the others' outcomes.
    let summary = io.drive(&mut run, CopyRun::poll_run).unwrap();
    // The transmit's timeout is receiver 1's stall, named as such whatever the adapter said.
    let ReceiverOutcome::Faulted(stalled) = &summary.receivers[1].1 else {
        panic!("receiver 1 faulted: {:?}", summary.receivers[1]);
    };
    let stalled = stalled
        .get_ref()
        .downcast_ref::<Stalled>()
        .expect("a stall");
    assert_eq!(stalled.endpoint, EndpointId::Receiver(R1));
    // Completing is never a stall: the timeout stays the IO error it was.
    let ReceiverOutcome::Failed(completing) = &summary.receivers[2].1 else {
        panic!("receiver 2 failed: {:?}", summary.receivers[2]);
    };
    assert!(completing.get_ref().is::<io::Error>(), "{completing}");
    assert!(summary.receivers[0].1.is_success());

    // Without a stall timeout the same errors stay IO errors.
    let mut io = Endpoints::new(2, 2);
    io.failing = Some(R1);
    io.timing_out = true;
    let mut run = io.run(Config::default());
    io.drive(&mut run, CopyRun::poll_started).unwrap();
    let fail = io.drive(&mut run, CopyRun::poll_run).unwrap_err();
    let ReceiverOutcome::Faulted(error) = &fail.receivers[1].1 else {
        panic!("receiver 1 faulted: {:?}", fail.receivers[1]);
    };
    assert!(error.get_ref().is::<io::Error>(), "{error}");
}

#[test]
fn a_reconcile_keeps_another_receivers_fault_for_the_progress_stream() {
    let mut io = Endpoints::new(3, 2);
    io.failing = Some(R0);
    let mut run = io.run(Config::default());
    io.drive(&mut run, CopyRun::poll_started).unwrap();
    let first: Option<Progress> = io.drive(&mut run, CopyRun::poll_progress);
    let Some(Err(Fault::Receiver(fault))) = first else {
        panic!("receiver 0's fault first, got {first:?}");
    };
    assert!(fault.get(R0).is_some());
    // Receiver 0 is mended; while it transmits what it owes, receiver 2's server says no.
    io.failing = None;
    io.error_during = Some((R0, R2));
    run.reconcile(R0).unwrap();
    io.drive(&mut run, |run| run.poll_reconciled(R0))
        .expect("receiver 2's fault is not receiver 0's reconcile failing");
    assert_eq!(run.live_receivers(), [R0, R1]);
    // The fault the reconcile met comes next in the stream.
    let next = io.drive(&mut run, CopyRun::poll_progress);
    let Some(Err(Fault::Receiver(fault))) = next else {
        panic!("receiver 2's fault, got {next:?}");
    };
    assert!(fault.get(R2).is_some() && fault.get(R0).is_none());
}

#[test]
fn a_receiver_that_fails_again_while_reconciling_stays_out() {
    let mut io = Endpoints::new(2, 2);
    io.failing = Some(R0);
    let mut run = io.run(Config::default());
    io.drive(&mut run, CopyRun::poll_started).unwrap();
    assert!(matches!(
        io.drive(&mut run, CopyRun::poll_progress),
        Some(Err(_))
    ));
    run.reconcile(R0).unwrap();
    let again = io.drive(&mut run, |run| run.poll_reconciled(R0));
    assert!(again.unwrap_err().receiver_fault().is_some());
    assert_eq!(run.live_receivers(), [R1]);
    assert!(
        run.reconcile(R1).is_err(),
        "a live receiver has nothing to reconcile"
    );
}

#[test]
fn receivers_hold_at_most_a_window_of_chunks_and_nothing_at_the_end() {
    let mut io = Endpoints::new(2, 20);
    io.defer = true;
    let window = 3;
    let mut run = io.run(Config::with_window(window));
    io.drive(&mut run, CopyRun::poll_started).unwrap();
    let summary = io.drive(&mut run, CopyRun::poll_run).unwrap();
    assert_eq!(summary.messages, 60);
    let chunk = 3 * 4;
    assert!(run.peak_buffered() >= chunk, "chunks were held");
    assert!(
        run.peak_buffered() <= window * chunk,
        "{}",
        run.peak_buffered()
    );
    assert_eq!(run.buffered_bytes(), 0);
}

#[test]
fn a_start_that_times_out_is_the_endpoints_stall() {
    // A receiver whose COPY waits for a lock: its start is its stall, named, and the copy fails.
    let mut io = Endpoints::new(2, 1);
    io.cannot_start = vec![R1];
    io.start_times_out = true;
    let mut run = io
        .run(Config::default())
        .with_stall_timeout(Some(Duration::from_secs(2)));
    let fail = io.drive(&mut run, CopyRun::poll_started).unwrap_err();
    let (id, error) = &fail.receiver_faults[0];
    assert_eq!(*id, R1);
    let stalled = error
        .get_ref()
        .downcast_ref::<Stalled>()
        .unwrap_or_else(|| panic!("a stall: {error}"));
    assert_eq!(stalled.endpoint, EndpointId::Receiver(R1));
    assert_eq!(
        error.to_string(),
        "receiver 1 stalled: no byte moved for 2s"
    );

    // A source whose COPY waits (a lock, or its first rows take long): the producer's stall.
    let mut io = Endpoints::new(1, 1);
    io.producer_cannot_start = true;
    io.start_times_out = true;
    let mut run = io
        .run(Config::default())
        .with_stall_timeout(Some(Duration::from_secs(2)));
    let fail = io.drive(&mut run, CopyRun::poll_started).unwrap_err();
    let error = fail.producer_fault.expect("the producer's fault");
    assert_eq!(error.to_string(), "producer stalled: no byte moved for 2s");

    // Without a stall timeout it stays the IO error it was.
    let mut io = Endpoints::new(1, 1);
    io.cannot_start = vec![R0];
    io.start_times_out = true;
    let mut run = io.run(Config::default());
    let fail = io.drive(&mut run, CopyRun::poll_started).unwrap_err();
    assert!(fail.receiver_faults[0].1.get_ref().is::<io::Error>());
}

#[test]
fn the_progress_ends_after_a_producer_fault_is_given_once() {
    let mut io = Endpoints::new(2, 3);
    io.producer_fails = true;
    let mut run = io.run(Config::default());
    io.drive(&mut run, CopyRun::poll_started).unwrap();
    let first = io.drive(&mut run, CopyRun::poll_progress);
    assert!(matches!(first, Some(Err(Fault::Producer(_)))), "{first:?}");
    // Not the same fault again (a loop that logs faults and goes on would spin for ever).
    assert!(io.drive(&mut run, CopyRun::poll_progress).is_none());
    assert!(io.drive(&mut run, CopyRun::poll_progress).is_none());
    run.finish();
    let fail = io.drive(&mut run, CopyRun::poll_finished).unwrap_err();
    assert!(fail.producer_fault.is_some());
}

/// What a copy waits for is the orders out, readable from a clone of its handle (a watchdog's,
/// on another thread): the producer while its read is out, a receiver while its transmit is
/// out (its socket takes no more), and nothing once each was reported.
#[test]
fn under_way_names_the_endpoints_whose_orders_are_out() {
    let mut io = Endpoints::new(2, 1);
    let mut run = io.run(Config::default());
    let under_way = run.under_way();
    io.drive(&mut run, CopyRun::poll_started).unwrap();
    let waits = |u: &copyman_core::run::UnderWay| (u.producer(), u.receivers().collect::<Vec<_>>());
    assert_eq!(waits(&under_way), (false, vec![]), "every start reported");
    let Step::Order(Order::ReadProducer) = run.poll_progress() else {
        panic!("a read first")
    };
    assert_eq!(waits(&under_way), (true, vec![]), "its data awaited");
    run.report(Input::ProducerData(Chunk::lines(vec![Bytes::from_static(
        b"1\n",
    )])));
    assert_eq!(waits(&under_way), (false, vec![]));
    let mut transmits = Vec::new();
    while let Step::Order(order) = run.poll_progress() {
        match order {
            Order::Transmit { receiver, .. } => transmits.push(receiver),
            Order::ReadProducer => break,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(transmits, [R0, R1]);
    assert_eq!(waits(&under_way).1, [R0, R1], "both sockets written to");
    run.report(Input::Transmitted { receiver: R0 });
    assert_eq!(
        waits(&under_way).1,
        [R1],
        "receiver 1 has not taken its data"
    );
    assert!(!under_way.completing());
}
