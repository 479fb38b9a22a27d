//! The ClientHello parsers on arbitrary bytes: they must never panic, and whatever they make
//! of the bytes must keep the invariants the property tests check
//! (`crates/sesscache-hello/tests/support/invariants.rs`, shared through `#[path]`).

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../crates/sesscache-hello/tests/support/invariants.rs"]
mod invariants;

fuzz_target!(|data: &[u8]| invariants::check(data));
