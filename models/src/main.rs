//! `reauth-models check`: model-check the real coordinator within bounds and print the
//! properties, the state count, the time, and any counterexample as an event list.
//!
//! ```text
//! cargo run --release -p reauth-models -- check [--requests N] [--cycles N] [--retries N]
//!     [--replays N] [--sessions N] [--cancels N] [--expiries N] [--max-pending N]
//!     [--one-shot] [--host-inputs] [--threads N] [--dfs]
//!     [--preset storm|sessions|lifecycle|one-shot|host-inputs|all]
//! ```
//! Flags apply in order, so `--preset storm --requests 4` widens a preset. `--dfs`
//! explores depth first (same states and verdicts, far less memory: for the largest bounds).
//! Built with `RUSTFLAGS="--cfg reauth_faults"`, `--fault NAME` switches on a deliberate
//! bug (`no-generation-check`, `second-refresh`, `accept-after-logout`, `no-replay-budget`,
//! `hand-back-refusal`).

use std::process::ExitCode;

use reauth_models::{Bounds, Report, SAFETY};

fn usage() -> ExitCode {
    eprintln!(
        "usage: reauth-models check [--requests N] [--cycles N] [--retries N] [--replays N] \
         [--sessions N] [--cancels N] [--expiries N] [--max-pending N] [--one-shot] [--host-inputs] \
         [--threads N] [--dfs] [--preset storm|sessions|lifecycle|one-shot|host-inputs|all]{}",
        if cfg!(reauth_faults) {
            " [--fault NAME]"
        } else {
            ""
        }
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() != Some("check") {
        return usage();
    }
    let mut bounds = Bounds::default();
    let mut threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut depth_first = false;
    #[cfg(reauth_faults)]
    let mut fault = None;
    while let Some(flag) = args.next() {
        if flag == "--one-shot" {
            bounds.one_shot = true;
            continue;
        }
        if flag == "--host-inputs" {
            bounds.host_inputs = true;
            continue;
        }
        if flag == "--dfs" {
            depth_first = true;
            continue;
        }
        let Some(value) = args.next() else {
            return usage();
        };
        if flag == "--preset" {
            match reauth_models::preset(&value) {
                Some(b) => bounds = b,
                None => return usage(),
            }
            continue;
        }
        #[cfg(reauth_faults)]
        if flag == "--fault" {
            fault = Some(match value.as_str() {
                "no-generation-check" => reauth::Fault::NoGenerationCheck,
                "second-refresh" => reauth::Fault::SecondRefreshWhileRunning,
                "accept-after-logout" => reauth::Fault::AcceptAfterLogout,
                "no-replay-budget" => reauth::Fault::NoReplayBudget,
                "hand-back-refusal" => reauth::Fault::HandBackRefusal,
                _ => return usage(),
            });
            continue;
        }
        let Ok(n) = value.parse::<u32>() else {
            return usage();
        };
        let small = u8::try_from(n).unwrap_or(u8::MAX);
        match flag.as_str() {
            "--requests" => bounds.requests = small,
            "--cycles" => bounds.cycles = n,
            "--retries" => bounds.retries = n,
            "--replays" => bounds.replays = n,
            "--sessions" => bounds.sessions = small,
            "--cancels" => bounds.cancels = small,
            "--expiries" => bounds.expiries = small,
            "--max-pending" => bounds.max_pending = n,
            "--threads" => threads = n as usize,
            _ => return usage(),
        }
    }
    println!("checking the real coordinator within {bounds:?}");
    #[cfg(reauth_faults)]
    let report = match fault {
        Some(f) => {
            println!("with injected fault {f:?}");
            reauth_models::check_with_fault(bounds, f, threads)
        }
        None if depth_first => reauth_models::check_depth_first(bounds, threads),
        None => reauth_models::check(bounds, threads),
    };
    #[cfg(not(reauth_faults))]
    let report = if depth_first {
        reauth_models::check_depth_first(bounds, threads)
    } else {
        reauth_models::check(bounds, threads)
    };
    print_report(&report)
}

fn print_report(r: &Report) -> ExitCode {
    println!(
        "explored {} unique states ({} generated, depth {}) in {:.1?}",
        r.unique_states, r.states, r.max_depth, r.elapsed
    );
    for name in SAFETY {
        let failed = r.counterexamples.iter().any(|(n, _)| *n == name);
        println!("  {} always: {name}", if failed { "FAIL" } else { "ok  " });
    }
    for name in &r.unreached {
        println!("  MISS sometimes: {name} (not reachable within these bounds)");
    }
    for (name, lines) in &r.counterexamples {
        println!("\ncounterexample for \"{name}\":");
        for line in lines {
            println!("  {line}");
        }
    }
    if r.counterexamples.is_empty() {
        println!("all safety properties hold");
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
