//! Runs N request cycles (submit → Send → 200 → Complete) one way, for instruction
//! counting under `valgrind --tool=callgrind`, which is repeatable where wall time on a
//! shared machine is not:
//!
//! ```text
//! cargo build --release -p reauth-ffi --example cycle_count
//! for way in floor rust c; do
//!   valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/cycle_count $way 100000
//! done   # compare the "Collected" totals (minus the N=0 baseline) per cycle
//! ```

#[path = "../benches/support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::sync::Mutex;

fn main() {
    let mut args = std::env::args().skip(1);
    let way = args.next().unwrap_or_default();
    let n: u64 = args.next().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    match way.as_str() {
        "floor" => {
            let map = Mutex::new(HashMap::new());
            (0..n).for_each(|i| support::floor_cycle(&map, i));
        }
        "rust" => {
            let shared = support::rust_coordinator();
            (0..n).for_each(|_| support::rust_cycle(&shared));
        }
        "c" => {
            let co = support::c_coordinator();
            (0..n).for_each(|_| support::c_cycle(co));
            // SAFETY: created above, freed once.
            unsafe { reauth_ffi::reauth_coordinator_free(co) };
        }
        _ => eprintln!("usage: cycle_count floor|rust|c N"),
    }
}
