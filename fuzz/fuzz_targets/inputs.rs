//! Decodes arbitrary bytes into a config and a sequence of host actions — hostile ones
//! included — drives the real coordinator with them, and checks the guarantees of `docs/contract.md`
//! after every step (the oracle), then liveness (G7) and determinism (G11) at the end.
//! The byte format is `reauth_testkit::bytes`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reauth_testkit::bytes;

fuzz_target!(|data: &[u8]| {
    if let Err(violation) = bytes::check(data, |_| {}) {
        panic!("{violation}");
    }
});
