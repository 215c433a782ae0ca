//! Property tests: random interleavings of every input — hostile host behaviour included
//! (unknown ids, duplicate responses, results for old or never-issued attempts, invalid
//! tokens and statuses, time going backwards, bursts) — with the guarantees G1–G11 of
//! SPEC.md section 9 checked after every step by an independent observer.
//!
//! Cases: `PROPTEST_CASES` (default 1 000 per property).

use proptest::prelude::*;
use reauth::oracle::{Oracle, Snapshot};
use reauth::{
    AttemptId, Command, Config, Coordinator, Credentials, Input, RefreshFailure, RefreshWindow,
    RequestId, RequestOptions, Timestamp,
};

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000)
}

#[derive(Clone, Debug)]
enum Action {
    Login {
        refresh: bool,
        expires: Option<u64>,
    },
    Submit {
        replayable: bool,
    },
    Burst {
        n: u8,
    },
    Respond {
        pick: usize,
        status: u16,
    },
    RespondBogus {
        id: u64,
        status: u16,
    },
    RefreshOk {
        pick: usize,
        rotate: bool,
        expires: Option<u64>,
        valid: bool,
    },
    RefreshRejected {
        pick: usize,
    },
    RefreshTransient {
        pick: usize,
        retry_after: Option<u64>,
    },
    Tick {
        ms: u64,
    },
    Backwards {
        ms: u64,
    },
    Timeout,
    Cancel {
        pick: usize,
    },
    ForceRefresh,
    Logout,
}

fn config() -> impl Strategy<Value = Config> {
    (
        prop_oneof![Just(vec![401]), Just(vec![401, 403])],
        0u64..5_000,
        0u32..3,
        (1u32..6, 500u64..60_000),
        (1u64..1_000, 0u32..4),
        (50u64..5_000, 1u32..8, 100u64..20_000),
    )
        .prop_map(
            |(
                statuses,
                skew,
                replays,
                (max_refreshes, window_ms),
                (backoff, retries),
                (timeout, pending, wait),
            )| {
                Config {
                    refresh_statuses: statuses,
                    expiry_skew_ms: skew,
                    max_replays_per_request: replays,
                    refresh_window: RefreshWindow {
                        max_refreshes,
                        window_ms,
                    },
                    initial_backoff_ms: backoff,
                    max_backoff_ms: backoff * 8,
                    max_retries: retries,
                    refresh_timeout_ms: timeout,
                    max_pending: pending,
                    max_wait_ms: wait,
                }
            },
        )
}

fn action() -> impl Strategy<Value = Action> {
    let expires = prop_oneof![Just(None), (0u64..20_000).prop_map(Some)];
    prop_oneof![
        2 => (prop::bool::weighted(0.9), expires.clone())
            .prop_map(|(refresh, expires)| Action::Login { refresh, expires }),
        10 => prop::bool::weighted(0.85).prop_map(|replayable| Action::Submit { replayable }),
        1 => (1u8..40).prop_map(|n| Action::Burst { n }),
        12 => (any::<usize>(), prop_oneof![Just(200u16), Just(401), Just(403), Just(500)])
            .prop_map(|(pick, status)| Action::Respond { pick, status }),
        1 => (0u64..64, prop_oneof![Just(200u16), Just(401), Just(0), Just(99), Just(600), Just(u16::MAX)])
            .prop_map(|(id, status)| Action::RespondBogus { id, status }),
        5 => (any::<usize>(), any::<bool>(), expires, prop::bool::weighted(0.95))
            .prop_map(|(pick, rotate, expires, valid)| Action::RefreshOk { pick, rotate, expires, valid }),
        1 => any::<usize>().prop_map(|pick| Action::RefreshRejected { pick }),
        3 => (any::<usize>(), prop_oneof![Just(None), (0u64..100_000).prop_map(Some)])
            .prop_map(|(pick, retry_after)| Action::RefreshTransient { pick, retry_after }),
        4 => (0u64..8_000).prop_map(|ms| Action::Tick { ms }),
        1 => (0u64..5_000).prop_map(|ms| Action::Backwards { ms }),
        4 => Just(Action::Timeout),
        2 => any::<usize>().prop_map(|pick| Action::Cancel { pick }),
        1 => Just(Action::ForceRefresh),
        1 => Just(Action::Logout),
    ]
}

/// Drives the core and the observer together.
struct Harness {
    core: Coordinator,
    observer: Oracle,
    clock: Timestamp,
    tokens: u64,
    log: Vec<(Timestamp, Input)>,
    outputs: Vec<Vec<Command>>,
}

impl Harness {
    fn new(config: Config) -> Self {
        Harness {
            core: Coordinator::new(config.clone()).expect("generated configs are valid"),
            observer: Oracle::new(config),
            clock: 0,
            tokens: 0,
            log: Vec::new(),
            outputs: Vec::new(),
        }
    }

    fn token(&mut self, kind: &str) -> String {
        self.tokens += 1;
        format!("zq{kind}{}x", self.tokens)
    }

    fn input(&mut self, at: Timestamp, input: Input) -> Result<Option<RequestId>, String> {
        let before = Snapshot::of(&self.core);
        self.log.push((at, input.clone()));
        let result = self.core.apply(at, input.clone());
        let batch: Vec<Command> = self.core.drain_commands().collect();
        self.observer
            .step(&self.core, &before, at, &input, &result, &batch)
            .map_err(|e| format!("step {} {input:?} at {at}: {e}", self.log.len()))?;
        self.outputs.push(batch);
        Ok(result.ok().flatten())
    }

    fn pick_attempt(&self, pick: usize) -> AttemptId {
        // Mostly the active or a recent attempt; sometimes an old or never-issued one.
        let issued = self.observer.issued_attempts();
        match (pick % 8, self.observer.active_attempt()) {
            (0..=4, Some(a)) => a,
            _ => AttemptId((pick as u64 / 8) % (issued + 2)),
        }
    }

    fn credentials(&mut self, rotate: bool, expires: Option<u64>, valid: bool) -> Credentials {
        let access = if valid {
            self.token("a")
        } else {
            String::new()
        };
        let mut c = Credentials::new(access);
        if rotate {
            c = c.with_refresh_token(self.token("r"));
        }
        c.expires_in_ms = expires;
        c
    }

    fn run(&mut self, action: Action) -> Result<(), String> {
        let now = self.clock;
        let input = match action {
            Action::Login { refresh, expires } => {
                let c = self.credentials(refresh, expires, true);
                Input::Login { credentials: c }
            }
            Action::Submit { replayable } => Input::Submit {
                options: RequestOptions { replayable },
            },
            Action::Burst { n } => {
                for _ in 0..n {
                    self.input(
                        now,
                        Input::Submit {
                            options: RequestOptions::default(),
                        },
                    )?;
                }
                return Ok(());
            }
            Action::Respond { pick, status } => {
                let ids = self.observer.in_flight_ids();
                if ids.is_empty() {
                    return Ok(());
                }
                Input::Response {
                    id: ids[pick % ids.len()],
                    status,
                }
            }
            Action::RespondBogus { id, status } => Input::Response {
                id: RequestId(id),
                status,
            },
            Action::RefreshOk {
                pick,
                rotate,
                expires,
                valid,
            } => {
                let attempt = self.pick_attempt(pick);
                let credentials = self.credentials(rotate, expires, valid);
                Input::RefreshSucceeded {
                    attempt,
                    credentials,
                }
            }
            Action::RefreshRejected { pick } => Input::RefreshFailed {
                attempt: self.pick_attempt(pick),
                failure: RefreshFailure::Rejected,
            },
            Action::RefreshTransient { pick, retry_after } => Input::RefreshFailed {
                attempt: self.pick_attempt(pick),
                failure: RefreshFailure::Transient {
                    retry_after_ms: retry_after,
                },
            },
            Action::Tick { ms } => {
                self.clock += ms;
                return Ok(());
            }
            Action::Backwards { ms } => {
                // The host's clock reading goes back (threads racing for the lock).
                let at = self.clock.saturating_sub(ms);
                self.input(at, Input::Timeout)?;
                return Ok(());
            }
            Action::Timeout => {
                if let Some(t) = self.core.poll_timeout() {
                    self.clock = self.clock.max(t);
                }
                Input::Timeout
            }
            Action::Cancel { pick } => {
                let open = self.observer.open();
                let id = if open.is_empty() || pick % 5 == 0 {
                    RequestId((pick as u64) % 64)
                } else {
                    open[pick % open.len()]
                };
                Input::Cancel { id }
            }
            Action::ForceRefresh => Input::ForceRefresh,
            Action::Logout => Input::Logout,
        };
        self.input(self.clock, input).map(|_| ())
    }

    /// G7: a host that answers every command (200s, successful refreshes) and lets time
    /// pass brings every open request to its terminal command within a bounded number
    /// of inputs.
    fn settle(&mut self) -> Result<(), String> {
        for _ in 0..10_000 {
            if self.observer.open().is_empty() {
                return if self.core.open_requests() == 0 {
                    Ok(())
                } else {
                    Err("G7: the core holds requests the host considers ended".into())
                };
            }
            if let Some(&id) = self.observer.in_flight_ids().first() {
                self.input(self.clock, Input::Response { id, status: 200 })?;
            } else if let Some(attempt) = self.observer.active_attempt() {
                let credentials = self.credentials(true, None, true);
                self.input(
                    self.clock,
                    Input::RefreshSucceeded {
                        attempt,
                        credentials,
                    },
                )?;
            } else if let Some(t) = self.core.poll_timeout() {
                self.clock = self.clock.max(t);
                self.input(self.clock, Input::Timeout)?;
            } else {
                return Err(format!(
                    "G7: requests {:?} wait, and the core wants nothing (no command, no timer)",
                    self.observer.open()
                ));
            }
        }
        Err("G7: not settled after 10 000 inputs".into())
    }

    /// G11: the same inputs on a fresh core give the same commands.
    fn replay_is_identical(&self) -> Result<(), String> {
        let mut fresh = Coordinator::new(self.core.config().clone()).expect("valid config");
        for (i, (at, input)) in self.log.iter().enumerate() {
            let _ = fresh.apply(*at, input.clone());
            let batch: Vec<Command> = fresh.drain_commands().collect();
            if batch != self.outputs[i] {
                return Err(format!("G11: step {} differs on replay", i + 1));
            }
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    /// G1–G10 after every step of a random (and partly hostile) host, then G7 and G11.
    #[test]
    fn guarantees_hold_for_every_interleaving(
        config in config(),
        actions in prop::collection::vec(action(), 1..150),
    ) {
        let mut h = Harness::new(config);
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
        prop_assert!(h.observer.check_secret_free(&shown).is_ok(), "G10: {}", shown);
    }

    /// Sessions that start logged in and mostly get well-formed answers, so the deep
    /// states (long refresh chains, window exhaustion, backoff chains) are reached often.
    #[test]
    fn guarantees_hold_in_long_logged_in_sessions(
        config in config(),
        expires in prop_oneof![Just(None), (1_000u64..20_000).prop_map(Some)],
        actions in prop::collection::vec(action(), 50..300),
    ) {
        let mut h = Harness::new(config);
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
    for _ in 0..400 {
        let (config, actions) = strategy.new_tree(&mut runner).expect("strategy").current();
        let mut h = Harness::new(config);
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
        for ((_, input), batch) in h.log.iter().zip(&h.outputs) {
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
        timeouts > 0 && ignored > 0 && late_adoptions > 0,
        "{timeouts} {ignored} {late_adoptions}"
    );
}
