#![no_main]
use copyman_wire::fuzzing::{StreamInput, lines};
libfuzzer_sys::fuzz_target!(|input: StreamInput| lines(&input));
