//! The cost of one request's whole life — submit → Send → 200 → Complete — through the
//! C ABI versus the same cycle through the Rust `SharedCoordinator`, next to the floor
//! any thread-safe host pays (one lock, one map insert and remove). Criterion reports
//! each; the ratios to the floor are what to compare across machines
//! (`examples/budget.rs`, run by `scripts/bench`, gives repeatable instruction counts of
//! the same cycles).
//!
//! ```text
//! cargo bench -p reauth-ffi --bench cycle
//! ```

mod support;

use std::collections::HashMap;
use std::sync::Mutex;

use criterion::{Criterion, criterion_group, criterion_main};

fn cycle(c: &mut Criterion) {
    let mut group = c.benchmark_group("request_cycle");

    let floor = Mutex::new(HashMap::<u64, u64>::new());
    let mut next = 0u64;
    group.bench_function("floor: lock + map insert/remove", |b| {
        b.iter(|| {
            next += 1;
            support::floor_cycle(&floor, next);
        })
    });

    let shared = support::rust_coordinator();
    let mut batch = Vec::with_capacity(8);
    group.bench_function("rust: SharedCoordinator", |b| {
        b.iter(|| support::rust_cycle(&shared, &mut batch))
    });

    let co = support::c_coordinator();
    let list = support::c_list();
    group.bench_function("c abi: reauth_submit + reauth_handle_response", |b| {
        b.iter(|| support::c_cycle(co, list))
    });
    group.finish();
    support::c_free(co, list);
}

criterion_group!(benches, cycle);
criterion_main!(benches);
