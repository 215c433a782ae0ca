//! Property tests: random interleavings of every input — hostile host behaviour included
//! (unknown ids, duplicate responses, results for old or never-issued attempts, invalid
//! tokens and statuses, time going backwards, bursts) — with the guarantees G1–G11 of
//! `docs/contract.md` §9 checked after every step by an independent observer.
//!
//! Cases: `PROPTEST_CASES` (default 1 000 per property).

use proptest::prelude::*;
use reauth::{Command, Config, Input, MAX_TIMESTAMP, RefreshWindow};
use reauth_testkit::harness::{Harness, HostAction as Action};

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000)
}

fn config() -> impl Strategy<Value = Config> {
    (
        prop_oneof![8 => Just(vec![401]), 8 => Just(vec![401, 403]), 1 => Just(vec![])],
        0u64..5_000,
        0u32..3,
        (1u32..6, 500u64..60_000),
        (1u64..1_000, 0u32..4),
        (50u64..5_000, 1u32..8, 100u64..20_000),
        0u64..3_000,
    )
        .prop_map(
            |(
                statuses,
                skew,
                replays,
                (max_refreshes, window_ms),
                (backoff, retries),
                (timeout, pending, wait),
                min_age,
            )| {
                Config::default()
                    .with_refresh_statuses(statuses)
                    .with_expiry_skew_ms(skew)
                    .with_max_replays_per_request(replays)
                    .with_refresh_window(RefreshWindow::new(max_refreshes, window_ms))
                    .with_initial_backoff_ms(backoff)
                    .with_max_backoff_ms(backoff * 8)
                    .with_max_retries(retries)
                    .with_refresh_timeout_ms(timeout)
                    .with_max_pending(pending)
                    .with_max_wait_ms(wait)
                    .with_min_token_age_ms(min_age)
            },
        )
}

/// A token lifetime: none, short (expiry refreshes, the window), or anything in `u64`
/// (§3.5: lifetimes past the end of the clock).
fn lifetime() -> impl Strategy<Value = Option<u64>> + Clone {
    prop_oneof![
        2 => Just(None),
        6 => (0u64..20_000).prop_map(Some),
        1 => any::<u64>().prop_map(Some),
        1 => Just(Some(u64::MAX)),
    ]
}

/// How far the host's clock moves: mostly milliseconds, sometimes any jump up to the end
/// of the clock (§3.5).
fn tick() -> impl Strategy<Value = u64> {
    prop_oneof![
        12 => 0u64..8_000,
        1 => any::<u64>(),
        1 => (MAX_TIMESTAMP - 100_000)..=MAX_TIMESTAMP,
    ]
}

/// A `now` a broken clock helper returns: past the end of the clock (refused) or any
/// value at all.
fn bad_clock() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(u64::MAX),
        Just(MAX_TIMESTAMP + 1),
        (MAX_TIMESTAMP + 1)..=u64::MAX,
        any::<u64>(),
    ]
}

fn action() -> impl Strategy<Value = Action> {
    let expires = lifetime();
    prop_oneof![
        2 => (prop::bool::weighted(0.9), expires.clone())
            .prop_map(|(refresh, expires)| Action::Login { refresh, expires }),
        10 => (prop::bool::weighted(0.85), prop::bool::weighted(0.9), prop_oneof![2 => Just(0u8), 1 => 1u8..=3])
            .prop_map(|(replayable, refresh, route)| Action::Submit { replayable, refresh, route }),
        1 => (1u8..40).prop_map(|n| Action::Burst { n }),
        12 => (any::<usize>(), prop_oneof![Just(200u16), Just(401), Just(403), Just(500)])
            .prop_map(|(pick, status)| Action::Respond { pick, status }),
        1 => (0u64..64, prop_oneof![Just(200u16), Just(401), Just(0), Just(99), Just(600), Just(u16::MAX)])
            .prop_map(|(id, status)| Action::RespondBogus { id, status }),
        5 => (any::<usize>(), any::<bool>(), expires, prop::bool::weighted(0.95))
            .prop_map(|(pick, rotate, expires, valid)| Action::RefreshOk { pick, rotate, expires, valid }),
        1 => any::<usize>().prop_map(|pick| Action::RefreshRejected { pick }),
        3 => (any::<usize>(), prop_oneof![Just(None), (0u64..100_000).prop_map(Some), any::<u64>().prop_map(Some)])
            .prop_map(|(pick, retry_after)| Action::RefreshTransient { pick, retry_after }),
        4 => tick().prop_map(|ms| Action::Tick { ms }),
        1 => (bad_clock(), any::<bool>()).prop_map(|(at, submit)| Action::BadClock { at, submit }),
        1 => (0u64..5_000).prop_map(|ms| Action::Backwards { ms }),
        4 => Just(Action::Timeout),
        2 => any::<usize>().prop_map(|pick| Action::Cancel { pick }),
        1 => Just(Action::ForceRefresh),
        1 => Just(Action::Logout),
        2 => any::<usize>().prop_map(|pick| Action::TransportError { pick }),
        1 => Just(Action::BeginRestore),
        1 => Just(Action::RestoreFailed),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    /// G1–G10 after every step of a random (and partly hostile) host, then G7 and G11.
    #[test]
    fn guarantees_hold_for_every_interleaving(
        config in config(),
        actions in prop::collection::vec(action(), 1..150),
    ) {
        let mut h = Harness::new(config).expect("generated configs are valid");
        for action in actions {
            if let Err(e) = h.run(action) {
                prop_assert!(false, "{}", e);
            }
        }
        if let Err(e) = h.settle() {
            prop_assert!(false, "{}", e);
        }
        if let Err(e) = h.replay_is_identical() {
            prop_assert!(false, "{}", e);
        }
        let shown = format!("{:?}", h.core);
        prop_assert!(h.oracle.check_secret_free(&shown).is_ok(), "G10: {}", shown);
    }

    /// Sessions that start logged in and mostly get well-formed answers, so the deep
    /// states (long refresh chains, window exhaustion, backoff chains) are reached often.
    #[test]
    fn guarantees_hold_in_long_logged_in_sessions(
        config in config(),
        expires in prop_oneof![Just(None), (1_000u64..20_000).prop_map(Some), any::<u64>().prop_map(Some)],
        actions in prop::collection::vec(action(), 50..300),
    ) {
        let mut h = Harness::new(config).expect("generated configs are valid");
        let credentials = h.credentials(true, expires, true);
        if let Err(e) = h.input(0, Input::Login { credentials }) {
            prop_assert!(false, "{}", e);
        }
        for action in actions {
            if matches!(action, Action::Logout | Action::RespondBogus { .. }) {
                continue;
            }
            if let Err(e) = h.run(action) {
                prop_assert!(false, "{}", e);
            }
        }
        if let Err(e) = h.settle() {
            prop_assert!(false, "{}", e);
        }
    }
}

/// The generator reaches every outcome: each fail reason, each logout reason, deadline
/// expiries, ignored stale results. If a change to the strategies made a branch
/// unreachable, the properties above would pass vacuously; this test notices.
#[test]
fn random_hosts_reach_every_outcome() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    use reauth::{FailReason, LogoutReason};
    use std::collections::BTreeSet;

    let mut runner = TestRunner::deterministic();
    let strategy = (config(), prop::collection::vec(action(), 1..150));
    let mut fails = BTreeSet::new();
    let mut logouts = BTreeSet::new();
    let (mut timeouts, mut ignored, mut late_adoptions) = (0, 0, 0);
    // Rule 18: a login releases requests that waited while restoring; rule 19: a refusal
    // of a request that opted out completes.
    let (mut restored, mut opted_out) = (0, 0);
    for _ in 0..400 {
        let (config, actions) = strategy.new_tree(&mut runner).expect("strategy").current();
        let mut h = Harness::new(config).expect("generated configs are valid");
        for action in actions {
            h.run(action).expect("guarantees hold");
        }
        for c in h.outputs.iter().flatten() {
            match c {
                Command::Fail { reason, .. } => {
                    fails.insert(*reason);
                }
                Command::Logout { reason } => {
                    logouts.insert(*reason);
                }
                _ => {}
            }
        }
        let s = h.core.stats();
        timeouts += s.refresh_timeouts;
        ignored += s.refresh_results_ignored;
        // A success adopted for an attempt older than the newest issued: a late one.
        let mut newest = 0;
        let (mut restoring, mut logged_in) = (false, false);
        let mut no_refresh = std::collections::HashSet::new();
        let mut id = 0;
        for ((_, input), batch) in h.log.iter().zip(&h.outputs) {
            match input {
                Input::BeginRestore if !logged_in => restoring = true,
                Input::Login { .. } => {
                    if restoring && batch.iter().any(|c| matches!(c, Command::Send { .. })) {
                        restored += 1;
                    }
                    (restoring, logged_in) = (false, true);
                }
                Input::RestoreFailed | Input::Logout => restoring = false,
                Input::Submit { options } => {
                    id += 1;
                    if !options.refresh {
                        no_refresh.insert(id);
                    }
                }
                Input::Response {
                    id: r,
                    status: 401 | 403,
                } if no_refresh.contains(&r.0) && batch == &[Command::Complete { id: *r }] => {
                    opted_out += 1;
                }
                _ => {}
            }
            if batch.iter().any(|c| matches!(c, Command::Logout { .. })) {
                logged_in = false;
            }
            if let Input::RefreshSucceeded { attempt, .. } = input
                && matches!(batch.first(), Some(Command::StoreCredentials { .. }))
                && attempt.0 < newest
            {
                late_adoptions += 1;
            }
            for c in batch {
                if let Command::Refresh { attempt, .. } = c {
                    newest = attempt.0;
                }
            }
        }
    }
    assert_eq!(
        fails,
        FailReason::ALL.into_iter().collect(),
        "fail reasons reached"
    );
    let all_logouts: BTreeSet<LogoutReason> = [
        LogoutReason::Requested,
        LogoutReason::RefreshRejected,
        LogoutReason::NoRefreshToken,
        LogoutReason::ExcessiveRefresh,
    ]
    .into_iter()
    .collect();
    assert_eq!(logouts, all_logouts, "logout reasons reached");
    assert!(
        timeouts > 0 && ignored > 0 && late_adoptions > 0 && restored > 0 && opted_out > 0,
        "{timeouts} {ignored} {late_adoptions} {restored} {opted_out}"
    );
}

/// The checkers have teeth: with a deliberate bug switched on (`--cfg reauth_faults`,
/// run by `scripts/test`), the property test above and the fuzz target's check each find
/// it on their own, with the oracle's verdict (not G11's: a replay on a fresh core, which
/// has no fault, differs from any faulty run).
#[cfg(reauth_faults)]
mod teeth {
    use super::{action, config};
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config as RunnerConfig, TestError, TestRunner};
    use reauth::Fault;
    use reauth_testkit::bytes;
    use reauth_testkit::harness::Harness;

    /// Every fault; the match fails to compile when a fault is added and not listed.
    const FAULTS: [Fault; 7] = [
        Fault::NoGenerationCheck,
        Fault::SecondRefreshWhileRunning,
        Fault::AcceptAfterLogout,
        Fault::NoReplayBudget,
        Fault::WindowCountsExpiry,
        Fault::LogoutBehindRetry,
        Fault::HandBackRefusal,
    ];
    const _EVERY_FAULT_LISTED: fn(Fault) = |fault| match fault {
        Fault::NoGenerationCheck
        | Fault::SecondRefreshWhileRunning
        | Fault::AcceptAfterLogout
        | Fault::NoReplayBudget
        | Fault::WindowCountsExpiry
        | Fault::LogoutBehindRetry
        | Fault::HandBackRefusal => {}
    };

    fn oracle_verdict(fault: Fault, verdict: String) -> String {
        assert!(
            !verdict.starts_with("G11"),
            "{fault:?}: only the fresh-core replay noticed: {verdict}"
        );
        verdict
    }

    #[test]
    fn the_property_test_finds_each_fault() {
        for fault in FAULTS {
            let mut runner = TestRunner::new(RunnerConfig {
                cases: 1_000,
                failure_persistence: None,
                ..RunnerConfig::default()
            });
            let strategy = (config(), prop::collection::vec(action(), 1..150));
            let outcome = runner.run(&strategy, |(config, actions)| {
                let mut h = Harness::new(config).expect("generated configs are valid");
                h.core.inject_fault(fault);
                for action in actions {
                    h.run(action).map_err(TestCaseError::fail)?;
                }
                h.settle().map_err(TestCaseError::fail)?;
                Ok(())
            });
            match outcome {
                Err(TestError::Fail(verdict, _)) => {
                    let verdict = oracle_verdict(fault, verdict.to_string());
                    println!("{fault:?}: {verdict}");
                }
                other => panic!("{fault:?}: the property test found nothing: {other:?}"),
            }
        }
    }

    #[test]
    fn the_fuzz_targets_check_finds_each_fault() {
        // The fuzzer starts from the transcript seeds; then random bytes, as a fuzzer
        // without coverage feedback would try them.
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/seeds");
        let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(dir)
            .expect("fuzz/seeds")
            .map(|e| std::fs::read(e.expect("seed").path()).expect("seed"))
            .collect();
        assert!(seeds.len() >= 30, "{} seeds", seeds.len());
        let mut runner = TestRunner::deterministic();
        let random = prop::collection::vec(any::<u8>(), 0..2_048);
        for _ in 0..10_000 {
            seeds.push(random.new_tree(&mut runner).expect("bytes").current());
        }
        for fault in FAULTS {
            let found = seeds.iter().enumerate().find_map(|(i, data)| {
                bytes::check(data, |h| h.core.inject_fault(fault))
                    .err()
                    .map(|v| (i, v))
            });
            let Some((i, verdict)) = found else {
                panic!("{fault:?}: no seed and none of 10 000 random inputs breaks a guarantee");
            };
            let verdict = oracle_verdict(fault, verdict);
            println!("{fault:?}: input {i}: {verdict}");
        }
    }
}
