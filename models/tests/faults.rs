//! The checker has teeth: with a deliberate bug switched on, it finds a counterexample
//! for the property the bug breaks, and prints it as a readable event list.
//!
//! ```text
//! RUSTFLAGS="--cfg reauth_faults" cargo test -p reauth-models --test faults \
//!     --target-dir target/faults -- --nocapture
//! ```
#![cfg(reauth_faults)]

use reauth::Fault;
use reauth_models::{Bounds, check_with_fault};

fn small() -> Bounds {
    Bounds {
        requests: 2,
        cycles: 2,
        retries: 0,
        replays: 1,
        sessions: 1,
        cancels: 0,
        expiries: 0,
        one_shot: false,
        max_pending: 2,
        host_inputs: false,
    }
}

fn finds(fault: Fault, property: &str) {
    finds_within(small(), fault, property);
}

fn finds_within(bounds: Bounds, fault: Fault, property: &str) {
    // One thread: strict breadth-first order, so the counterexample is a shortest one.
    let report = check_with_fault(bounds, fault, 1);
    let found = report
        .counterexamples
        .iter()
        .find(|(name, _)| *name == property);
    let Some((_, trace)) = found else {
        panic!(
            "{fault:?}: no counterexample for {property:?}; found {:?}",
            report
                .counterexamples
                .iter()
                .map(|(n, _)| n)
                .collect::<Vec<_>>()
        );
    };
    println!(
        "{fault:?} breaks \"{property}\":\n  {}\n",
        trace.join("\n  ")
    );
    assert!(
        trace.len() >= 2,
        "a trace has at least one event and the verdict"
    );
}

#[test]
fn missing_generation_check_refreshes_on_a_stale_401() {
    finds(Fault::NoGenerationCheck, "rule 4 stale 401 never refreshes");
}

#[test]
fn second_refresh_while_one_runs_breaks_single_flight() {
    finds(Fault::SecondRefreshWhileRunning, "G1 single flight");
}

#[test]
fn late_result_after_logout_breaks_logout_finality() {
    finds(Fault::AcceptAfterLogout, "G6 logout is final");
}

#[test]
fn ignoring_the_replay_budget_breaks_boundedness() {
    finds(Fault::NoReplayBudget, "G5 bounded");
}

#[test]
fn counting_expiry_refreshes_in_the_window_logs_a_healthy_session_out() {
    // A token that lived its life is refreshed; two refusals later the faulty window is
    // full and logs out, which rule 7 does not allow.
    let bounds = Bounds {
        expiries: 1,
        sessions: 0,
        ..small()
    };
    finds_within(
        bounds,
        Fault::WindowCountsExpiry,
        "every other rule the oracle checks",
    );
}

#[test]
fn logging_out_on_a_retrys_rejection_loses_the_rotation() {
    // Attempt 1 is abandoned at its deadline, the retry is rejected (the server rotated
    // the refresh token for attempt 1): the faulty core logs out at once instead of
    // waiting for attempt 1's late success.
    let bounds = Bounds {
        retries: 1,
        sessions: 0,
        ..small()
    };
    finds_within(bounds, Fault::LogoutBehindRetry, "G8 rotation safety");
}

#[test]
fn handing_every_refusal_back_is_caught() {
    // The oracle allows a `Complete` only where a rule hands the response back (a status
    // that is not a refresh status, rules 14, 19, 20): a checker that accepted any
    // `Complete` let this whole class of bug through.
    finds(Fault::HandBackRefusal, "every other rule the oracle checks");
}
