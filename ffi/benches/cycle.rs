//! The cost of one request's whole life — submit → Send → 200 → Complete — through the
//! C ABI versus the same cycle through the Rust `SharedCoordinator`, next to the floor
//! any thread-safe host pays (one lock, one map insert and remove). Criterion reports
//! each; the ratios to the floor are what to compare across machines.
//!
//! ```text
//! cargo bench -p reauth-ffi --bench cycle
//! ```

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Mutex;

use criterion::{Criterion, criterion_group, criterion_main};
use reauth::{Config, Credentials, RequestOptions, SharedCoordinator};
use reauth_ffi::*;

fn cycle(c: &mut Criterion) {
    let mut group = c.benchmark_group("request_cycle");

    let floor = Mutex::new(HashMap::<u64, u64>::new());
    let mut next = 0u64;
    group.bench_function("floor: lock + map insert/remove", |b| {
        b.iter(|| {
            next += 1;
            floor.lock().expect("lock").insert(next, next);
            black_box(floor.lock().expect("lock").remove(&next));
        })
    });

    let shared = SharedCoordinator::new(Config::default()).expect("valid");
    shared
        .login(0, Credentials::new("at-1").with_refresh_token("rt-1"))
        .expect("login");
    group.bench_function("rust: SharedCoordinator", |b| {
        b.iter(|| {
            let (id, sent) = shared.submit(1, RequestOptions::default()).expect("submit");
            black_box(sent);
            black_box(shared.handle_response(2, id, 200).expect("response"));
        })
    });

    let mut config = std::mem::MaybeUninit::<reauth_config>::uninit();
    let mut co: *mut reauth_coordinator = std::ptr::null_mut();
    // SAFETY: valid out-pointers; the handle lives until the end of the function.
    unsafe {
        reauth_config_default(config.as_mut_ptr());
        assert_eq!(
            reauth_coordinator_new(config.as_ptr(), &mut co),
            reauth_status::REAUTH_STATUS_OK
        );
        let (at, rt) = (b"at-1", b"rt-1");
        let creds = reauth_credentials {
            access_token: at.as_ptr(),
            access_token_len: at.len(),
            refresh_token: rt.as_ptr(),
            refresh_token_len: rt.len(),
            has_expires_in: false,
            expires_in_ms: 0,
        };
        let mut out = std::ptr::null_mut();
        assert_eq!(
            reauth_login(co, 0, &creds, &mut out),
            reauth_status::REAUTH_STATUS_OK
        );
        reauth_commands_free(out);
    }
    group.bench_function("c abi: reauth_submit + reauth_handle_response", |b| {
        b.iter(|| {
            let mut id = 0u64;
            let mut out = std::ptr::null_mut();
            let mut command = std::mem::MaybeUninit::<reauth_command>::uninit();
            // SAFETY: valid handle and out-pointers, as a C caller would pass them.
            unsafe {
                reauth_submit(co, 1, true, &mut id, &mut out);
                reauth_commands_get(out, 0, command.as_mut_ptr());
                black_box(command.assume_init());
                reauth_commands_free(out);
                reauth_handle_response(co, 2, id, 200, &mut out);
                black_box(reauth_commands_len(out));
                reauth_commands_free(out);
            }
        })
    });
    group.finish();
    // SAFETY: created above, freed once.
    unsafe { reauth_coordinator_free(co) };
}

criterion_group!(benches, cycle);
criterion_main!(benches);
