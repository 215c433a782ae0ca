//! One request cycle (submit → Send → 200 → Complete) three ways, shared by the criterion
//! bench (`benches/cycle.rs`) and the instruction counter (`examples/cycle_count.rs`).

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Mutex;

use reauth::{Config, Credentials, RequestOptions, SharedCoordinator};
use reauth_ffi::*;

/// The floor any thread-safe host pays per request: one lock and one map insert, one
/// lock and one map remove.
pub fn floor_cycle(map: &Mutex<HashMap<u64, u64>>, i: u64) {
    map.lock().expect("lock").insert(i, i);
    black_box(map.lock().expect("lock").remove(&i));
}

/// A logged-in Rust wrapper.
pub fn rust_coordinator() -> SharedCoordinator {
    let shared = SharedCoordinator::new(Config::default()).expect("valid");
    shared
        .login(0, Credentials::new("at-1").with_refresh_token("rt-1"))
        .expect("login");
    shared
}

/// One cycle through the Rust wrapper, reusing the caller's `batch`.
pub fn rust_cycle(shared: &SharedCoordinator, batch: &mut Vec<reauth::Command>) {
    let id = shared
        .run_into(batch, |c| {
            c.submit(1, RequestOptions::default()).expect("submit")
        })
        .expect("submit");
    black_box(&batch);
    batch.clear();
    shared
        .run_into(batch, |c| c.handle_response(2, id, 200))
        .expect("unpoisoned")
        .expect("response");
    black_box(&batch);
    batch.clear();
}

/// A logged-in coordinator created through the C ABI; free it with [`c_free`].
pub fn c_coordinator() -> *mut reauth_coordinator {
    let mut config = std::mem::MaybeUninit::<reauth_config>::uninit();
    let mut co: *mut reauth_coordinator = std::ptr::null_mut();
    let (at, rt) = (b"at-1", b"rt-1");
    let creds = reauth_credentials {
        access_token: at.as_ptr(),
        access_token_len: at.len(),
        refresh_token: rt.as_ptr(),
        refresh_token_len: rt.len(),
        has_expires_in: 0,
        expires_in_ms: 0,
    };
    // SAFETY: valid out-pointers and credentials, as a C caller would pass them.
    unsafe {
        reauth_config_default(config.as_mut_ptr());
        assert_eq!(
            reauth_coordinator_new(config.as_ptr(), &mut co),
            reauth_status::REAUTH_STATUS_OK
        );
        let out = reauth_commands_new();
        assert_eq!(
            reauth_login(co, 0, &creds, out),
            reauth_status::REAUTH_STATUS_OK
        );
        reauth_commands_free(out);
    }
    co
}

/// One cycle through the C ABI, reading the Send as a C host would, with the thread's
/// one reusable list (as the header recommends).
pub fn c_cycle(co: *mut reauth_coordinator, out: *mut reauth_commands) {
    let mut id = 0u64;
    let mut command = std::mem::MaybeUninit::<reauth_command>::uninit();
    // SAFETY: a live handle from `c_coordinator`, a live list and valid out-pointers.
    unsafe {
        reauth_submit(co, 1, REAUTH_SUBMIT_DEFAULT, 0, &mut id, out);
        reauth_commands_get(out, 0, command.as_mut_ptr());
        black_box(command.assume_init());
        reauth_handle_response(co, 2, id, 200, out);
        black_box(reauth_commands_len(out));
    }
}

/// The thread's reusable command list.
pub fn c_list() -> *mut reauth_commands {
    let list = reauth_commands_new();
    assert!(!list.is_null());
    list
}

/// Frees what [`c_coordinator`] and [`c_list`] made.
pub fn c_free(co: *mut reauth_coordinator, list: *mut reauth_commands) {
    // SAFETY: created by `c_coordinator` and `c_list`, freed once.
    unsafe {
        reauth_commands_free(list);
        reauth_coordinator_free(co);
    }
}
