//! Framing and re-blocking throughput, against a `memcpy` of the same bytes.
//!
//! Every workload is an 8 MiB stream of CopyData frames (bodies of 8 B, 100 B, 8 KiB, 1 MiB, or a
//! mix) processed in 64 KiB chunks, the read size of the copy loop. Per workload, one criterion
//! group with `Throughput::Bytes` of the stream and three functions:
//!
//! * `memcpy`: each chunk is copied (`copy_from_slice`) into a work buffer behind `HEADROOM`
//!   bytes. This is the baseline, and also what a `read` into the buffer costs at the least.
//! * `advance`: `Framer::advance` over each chunk, read in place (no copy).
//! * `copy+reblock`: each chunk copied into the work buffer as for `memcpy`, then
//!   `Framer::reblock` on it. Re-blocking rewrites its buffer, so every chunk must be restored
//!   before it is re-blocked; doing that with the same copy as the baseline keeps the comparison
//!   honest: re-blocking's own cost is `copy+reblock − memcpy`. (In the copy loop the copy is the
//!   `read` into the buffer, which happens whether we re-block or not.)
//!
//! After the criterion groups (only under `cargo bench`, not when `cargo test` runs this target),
//! a summary table measures the same three loops with `std::time::Instant` (best of several
//! rounds) and prints `advance / memcpy` and `(copy+reblock − memcpy) / memcpy` against the goals:
//! framing 100 B rows ≤ 0.25× memcpy and re-blocking them ≤ 1.5×; 8 B rows ≤ 1.5× and ≤ 3×.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use copyman_wire::message::encode_copy_data;
use copyman_wire::{Framer, HEADROOM};
use criterion::{Criterion, Throughput};

/// The read size of the copy loop.
const READ: usize = 64 * 1024;

/// Bytes in each workload's stream.
const STREAM: usize = 8 << 20;

/// Bytes in the streams of the DRAM-bound summary rows.
const LARGE: usize = 64 << 20;

/// A stream of frames and its name.
struct Workload {
    name: &'static str,
    /// Goals (framing, re-blocking) as multiples of memcpy, where the issue sets them.
    goals: Option<(f64, f64)>,
    stream: Vec<u8>,
}

/// A row-like body: `len - 1` digits and a newline.
fn body(len: usize, seed: usize) -> Vec<u8> {
    let mut out: Vec<u8> = (0..len).map(|i| b'0' + ((i + seed) % 10) as u8).collect();
    if let Some(last) = out.last_mut() {
        *last = b'\n';
    }
    out
}

/// CopyData frames with bodies of the sizes `sizes` yields, until the stream holds `total` bytes.
fn stream_of(total: usize, mut sizes: impl FnMut() -> usize) -> Vec<u8> {
    let mut out = BytesMut::with_capacity(total + (2 << 20));
    let mut seed = 0;
    while out.len() < total {
        encode_copy_data(&body(sizes(), seed), &mut out).expect("small frames");
        seed += 1;
    }
    out.to_vec()
}

fn workloads() -> Vec<Workload> {
    // The mix: mostly short rows, some medium, a few large (xorshift, fixed seed).
    let mut x: u32 = 0x9e37_79b9;
    let mixed = move || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        match x % 100 {
            0..70 => 1 + (x >> 8) as usize % 200,
            70..95 => 200 + (x >> 8) as usize % 1800,
            _ => 8192 + (x >> 8) as usize % (56 * 1024),
        }
    };
    vec![
        Workload {
            name: "8 B",
            goals: Some((1.5, 3.0)),
            stream: stream_of(STREAM, || 8),
        },
        Workload {
            name: "100 B",
            goals: Some((0.25, 1.5)),
            stream: stream_of(STREAM, || 100),
        },
        Workload {
            name: "8 KiB",
            goals: None,
            stream: stream_of(STREAM, || 8 * 1024),
        },
        Workload {
            name: "1 MiB",
            goals: None,
            stream: stream_of(STREAM, || 1 << 20),
        },
        Workload {
            name: "mixed",
            goals: None,
            stream: stream_of(STREAM, mixed),
        },
    ]
}

/// A work buffer: `HEADROOM` bytes, then room for one read.
fn work_buffer() -> Vec<u8> {
    vec![0; HEADROOM + READ]
}

/// The baseline: copy every chunk into the work buffer.
fn memcpy(stream: &[u8], work: &mut [u8]) {
    for chunk in stream.chunks(READ) {
        work[HEADROOM..HEADROOM + chunk.len()].copy_from_slice(chunk);
        black_box(&mut *work);
    }
}

/// Follow the frames over every chunk, in place.
fn advance(stream: &[u8]) -> u64 {
    let mut framer = Framer::new();
    for chunk in stream.chunks(READ) {
        let walk = framer
            .advance(black_box(chunk))
            .expect("a well-formed stream");
        let _ = black_box(walk);
    }
    framer.frames()
}

/// Copy every chunk into the work buffer (as the baseline does), then re-block it.
fn copy_reblock(stream: &[u8], work: &mut [u8]) -> usize {
    let mut framer = Framer::new();
    let mut payload = 0;
    for chunk in stream.chunks(READ) {
        work[HEADROOM..HEADROOM + chunk.len()].copy_from_slice(chunk);
        let out = framer
            .reblock(&mut work[..HEADROOM + chunk.len()])
            .expect("a well-formed stream");
        payload += out.payload;
        black_box(&work[out.frame]);
    }
    payload
}

fn criterion_groups(c: &mut Criterion, workloads: &[Workload]) {
    for workload in workloads {
        let stream = &workload.stream[..];
        let mut work = work_buffer();
        let mut group = c.benchmark_group(format!("framer/{}", workload.name));
        group.throughput(Throughput::Bytes(stream.len() as u64));
        group.bench_function("memcpy", |b| b.iter(|| memcpy(stream, &mut work)));
        group.bench_function("advance", |b| b.iter(|| advance(stream)));
        group.bench_function("copy+reblock", |b| {
            b.iter(|| copy_reblock(stream, &mut work))
        });
        group.finish();
    }
}

/// Best time per run of `f` over `rounds` rounds of about `round` each.
fn best(rounds: usize, round: Duration, mut f: impl FnMut()) -> Duration {
    // Calibrate: how many runs fill a round.
    let start = Instant::now();
    f();
    let once = start.elapsed().max(Duration::from_nanos(1));
    let runs = (round.as_nanos() / once.as_nanos()).clamp(1, 10_000) as u32;
    (0..rounds)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..runs {
                f();
            }
            start.elapsed() / runs
        })
        .min()
        .expect("at least one round")
}

/// The floor of any header-hopping framer: a bare loop from length field to length field over
/// the whole stream (no chunks, no state, no checks). Its cost per frame is the latency of the
/// load → add → load chain, which no amount of tuning of the framer can go below.
fn hop(stream: &[u8]) -> u64 {
    let (mut at, mut frames) = (0, 0);
    while at + 5 <= stream.len() {
        let len = u32::from_be_bytes([
            stream[at + 1],
            stream[at + 2],
            stream[at + 3],
            stream[at + 4],
        ]);
        at += 1 + len as usize;
        frames += 1;
    }
    frames
}

/// Prints one row per workload: ratios to memcpy and costs per frame.
fn summary(title: &str, workloads: &[Workload], quick: bool) {
    let (rounds, round) = if quick {
        (5, Duration::from_millis(20))
    } else {
        (15, Duration::from_millis(60))
    };
    println!();
    println!("{title}; best of {rounds} rounds (Instant)");
    println!(
        "{:<7} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}  goal (advance, reblock)",
        "bodies",
        "memcpy",
        "advance",
        "reblock",
        "floor",
        "advance",
        "reblock",
        "advance",
        "reblock",
    );
    println!(
        "{:<7} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "", "GB/s", "/memcpy", "/memcpy", "/memcpy", "ns/frame", "ns/frame", "GB/s", "GB/s"
    );
    for workload in workloads {
        let stream = &workload.stream[..];
        let frames = advance(stream) as f64;
        let mut work = work_buffer();
        let secs = |d: Duration| d.as_secs_f64();
        let copy = secs(best(rounds, round, || memcpy(stream, &mut work)));
        let framing = secs(best(rounds, round, || {
            black_box(advance(stream));
        }));
        let copy_and_reblock = secs(best(rounds, round, || {
            black_box(copy_reblock(stream, &mut work));
        }));
        let floor = secs(best(rounds, round, || {
            black_box(hop(black_box(stream)));
        }));
        // Re-blocking's own cost: the copy that restores each chunk is the baseline itself.
        let reblock = (copy_and_reblock - copy).max(0.0);
        let (advance_ratio, reblock_ratio) = (framing / copy, reblock / copy);
        let goal = match workload.goals {
            Some((a, r)) => {
                let mark = |ok: bool| if ok { "ok" } else { "MISS" };
                format!(
                    "≤{a} {}, ≤{r} {}",
                    mark(advance_ratio <= a),
                    mark(reblock_ratio <= r)
                )
            }
            None => "-".to_owned(),
        };
        let gbps = |t: f64| stream.len() as f64 / t / 1e9;
        println!(
            "{:<7} {:>8.1} {:>9.3} {:>9.3} {:>9.3} {:>9.2} {:>9.2} {:>9.1} {:>9.1}  {goal}",
            workload.name,
            gbps(copy),
            advance_ratio,
            reblock_ratio,
            floor / copy,
            framing / frames * 1e9,
            reblock / frames * 1e9,
            gbps(framing),
            gbps(reblock),
        );
    }
}

fn main() {
    let workloads = workloads();
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
        .configure_from_args();
    criterion_groups(&mut criterion, &workloads);
    criterion.final_summary();
    // `cargo bench` passes `--bench`; `cargo test` running this target does not.
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--bench") {
        let quick = args.iter().any(|a| a == "--quick");
        summary(
            "framer summary: 64 KiB chunks of 8 MiB streams (cache-resident here)",
            &workloads,
            quick,
        );
        // The same rows with streams larger than a usual last-level cache, so that memcpy reads
        // from DRAM as a kernel copying socket buffers often does.
        let large = [
            Workload {
                name: "8 B",
                goals: Some((1.5, 3.0)),
                stream: stream_of(LARGE, || 8),
            },
            Workload {
                name: "100 B",
                goals: Some((0.25, 1.5)),
                stream: stream_of(LARGE, || 100),
            },
        ];
        summary(
            "framer summary: 64 KiB chunks of 64 MiB streams (DRAM-bound)",
            &large,
            quick,
        );
        println!(
            "reblock = (copy+reblock) − memcpy, each chunk restored by the baseline's own copy; \
             floor = a bare header hop over the stream (the latency bound of any hopping framer)"
        );
    }
}
