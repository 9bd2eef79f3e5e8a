#![no_main]
use copyman_core::fuzzing::{SessionInput, session};
libfuzzer_sys::fuzz_target!(|input: SessionInput| session(&input));
