//! Decodes arbitrary bytes into a config and a sequence of host actions — hostile ones
//! included — drives the real coordinator with them, and checks the guarantees of `docs/contract.md`
//! after every step (the oracle), then liveness (G7) and determinism (G11) at the end.
//! The byte format is `reauth_testkit::bytes`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reauth_testkit::bytes;
use reauth_testkit::harness::Harness;

fuzz_target!(|data: &[u8]| {
    let (config, actions) = bytes::decode(data, 2_000);
    let mut harness = Harness::new(config).expect("every decoded config is valid");
    for action in actions {
        if let Err(violation) = harness.run(action) {
            panic!("{violation}");
        }
    }
    if let Err(violation) = harness.settle() {
        panic!("{violation}");
    }
    if let Err(violation) = harness.replay_is_identical() {
        panic!("{violation}");
    }
});
