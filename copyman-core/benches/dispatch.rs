//! The manager's own cost per cycle: one producer chunk dispatched to N receivers, with every
//! order carried out at once (null IO), so what is measured is the state machine alone.

use bytes::Bytes;
use copyman_core::{Chunk, Config, Event, Input, Manager, Output, Protocol};
use criterion::{BenchmarkId, Criterion, Throughput};

/// One 64 KiB re-blocked frame, as the fast path hands the manager per read.
fn frame() -> Bytes {
    let mut frame = vec![0u8; 64 * 1024];
    frame[0] = b'd';
    frame[1..5].copy_from_slice(&(64 * 1024u32 - 1).to_be_bytes());
    Bytes::from(frame)
}

/// Runs a whole copy of `chunks` chunks to `receivers` receivers of `protocol`.
fn copy(chunks: usize, receivers: usize, protocol: Protocol, window: usize) -> u64 {
    let data = frame();
    let mut manager = Manager::new(Protocol::PQv3, Config::with_window(window));
    for _ in 0..receivers {
        manager.add_receiver(protocol).expect("before the start");
    }
    let mut sent = 0;
    loop {
        match manager.poll_output() {
            Output::ReadProducer => {
                let input = if sent < chunks {
                    sent += 1;
                    Input::ProducerData(Chunk::pqv3(data.clone(), 1000, data.len() as u64))
                } else {
                    Input::ProducerEnd {
                        count: Some(1000 * chunks as u64),
                    }
                };
                manager.handle_input(input).expect("asked for");
            }
            Output::Transmit { receiver, .. } => {
                manager
                    .handle_input(Input::Transmitted { receiver })
                    .expect("asked for");
            }
            Output::Complete { receiver } => manager
                .handle_input(Input::ReceiverDone {
                    receiver,
                    result: Ok(None),
                })
                .expect("asked for"),
            Output::EndOfCopy => manager.handle_input(Input::Finish).expect("at the end"),
            Output::Event(Event::Finished(result)) => {
                return result.expect("a clean copy").messages;
            }
            Output::Done => unreachable!("Finished comes first"),
            _ => {}
        }
    }
}

fn dispatch(c: &mut Criterion) {
    let mut group = c.benchmark_group("manager dispatch, 1000 chunks of 64 KiB");
    group.throughput(Throughput::Elements(1000));
    for receivers in [1, 3, 8] {
        for (name, protocol) in [("pqv3", Protocol::PQv3), ("null", Protocol::Null)] {
            group.bench_with_input(BenchmarkId::new(name, receivers), &receivers, |b, &n| {
                b.iter(|| copy(1000, n, protocol, 4));
            });
        }
    }
    group.finish();
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    dispatch(&mut criterion);
    criterion.final_summary();
}
