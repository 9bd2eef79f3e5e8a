#![no_main]
use copyman_wire::fuzzing::{StreamInput, framer};
libfuzzer_sys::fuzz_target!(|input: StreamInput| framer(&input));
