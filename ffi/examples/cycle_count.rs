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

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Mutex;

use reauth::{Config, Credentials, RequestOptions, SharedCoordinator};
use reauth_ffi::*;

fn main() {
    let mut args = std::env::args().skip(1);
    let way = args.next().unwrap_or_default();
    let n: u64 = args.next().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    match way.as_str() {
        "floor" => {
            let map = Mutex::new(HashMap::<u64, u64>::new());
            for i in 0..n {
                map.lock().expect("lock").insert(i, i);
                black_box(map.lock().expect("lock").remove(&i));
            }
        }
        "rust" => {
            let shared = SharedCoordinator::new(Config::default()).expect("valid");
            shared
                .login(0, Credentials::new("at-1").with_refresh_token("rt-1"))
                .expect("login");
            for _ in 0..n {
                let (id, batch) = shared.submit(1, RequestOptions::default()).expect("submit");
                black_box(batch);
                black_box(shared.handle_response(2, id, 200).expect("response"));
            }
        }
        "c" => {
            let mut config = std::mem::MaybeUninit::<reauth_config>::uninit();
            let mut co: *mut reauth_coordinator = std::ptr::null_mut();
            // SAFETY: valid out-pointers and a live handle, as a C caller would use them.
            unsafe {
                reauth_config_default(config.as_mut_ptr());
                reauth_coordinator_new(config.as_ptr(), &mut co);
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
                reauth_login(co, 0, &creds, &mut out);
                reauth_commands_free(out);
                for _ in 0..n {
                    let mut id = 0u64;
                    let mut command = std::mem::MaybeUninit::<reauth_command>::uninit();
                    reauth_submit(co, 1, true, &mut id, &mut out);
                    reauth_commands_get(out, 0, command.as_mut_ptr());
                    black_box(command.assume_init());
                    reauth_commands_free(out);
                    reauth_handle_response(co, 2, id, 200, &mut out);
                    black_box(reauth_commands_len(out));
                    reauth_commands_free(out);
                }
                reauth_coordinator_free(co);
            }
        }
        _ => eprintln!("usage: cycle_count floor|rust|c N"),
    }
}
