//! A `proptest-state-machine` reference model: the rules of `docs/contract.md` §7, written
//! again as plainly as possible (vectors and linear scans, no clock), predicts the exact
//! command batch of every input; the real coordinator must produce it byte for byte.
//!
//! The model runs with time frozen, no expiry and `max_retries = 0` (a transient failure
//! exhausts at once), so every rule that needs no clock is compared exactly: 3–6, 8, 9,
//! 10 (exhaustion), 11 (staleness), 12–14, 16, cancel and force_refresh. The timed rules
//! (2, 7, 10 backoff, 11 deadline, 15) are covered by the transcripts and by the
//! observer in `guarantees.rs`.

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};
use reauth::{
    AttemptId, Config, Coordinator, Credentials, FailReason, Generation, Input, LogoutReason,
    RefreshFailure, RefreshWindow, RequestId, RequestOptions,
};
use reauth_testkit::transcript::CommandRecord;

#[derive(Clone, Debug)]
struct Req {
    replayable: bool,
    sent: bool,
    replays: u32,
    epoch: u64,
    in_flight: Option<u64>,
}

#[derive(Clone, Debug)]
struct Model {
    max_replays: u32,
    logged_in: bool,
    generation: u64,
    next_generation: u64,
    access: String,
    refresh: Option<String>,
    known_bad: bool,
    active: Option<u64>,
    next_attempt: u64,
    adoptable_from: u64,
    next_id: u64,
    epoch: u64,
    queue: Vec<u64>,
    reqs: BTreeMap<u64, Req>,
    tokens: u64,
    expected: Vec<CommandRecord>,
}

#[derive(Clone, Debug)]
enum Step {
    Login {
        access: String,
        refresh: Option<String>,
    },
    Submit {
        replayable: bool,
    },
    Respond {
        id: u64,
        status: u16,
    },
    RefreshOk {
        attempt: u64,
        access: String,
        refresh: Option<String>,
    },
    Rejected {
        attempt: u64,
    },
    Transient {
        attempt: u64,
    },
    Cancel {
        id: u64,
    },
    ForceRefresh,
    Logout,
}

impl Model {
    fn emit(&mut self, c: CommandRecord) {
        self.expected.push(c);
    }

    fn transmit(&mut self, id: u64) {
        let (generation, access, epoch) = (self.generation, self.access.clone(), self.epoch);
        let r = self.reqs.get_mut(&id).expect("open");
        r.in_flight = Some(generation);
        r.epoch = epoch;
        let c = if r.sent {
            CommandRecord::Replay {
                id: RequestId(id),
                access_token: access,
                generation: Generation(generation),
            }
        } else {
            CommandRecord::Send {
                id: RequestId(id),
                access_token: access,
                generation: Generation(generation),
            }
        };
        r.sent = true;
        self.emit(c);
    }

    fn dispatch(&mut self, id: u64) {
        if self.active.is_some() {
            self.queue.push(id);
        } else if self.known_bad {
            self.queue.push(id);
            self.start_cycle();
        } else {
            self.transmit(id);
        }
    }

    fn start_cycle(&mut self) {
        match self.refresh.clone() {
            None => self.end(LogoutReason::NoRefreshToken, FailReason::LoggedOut),
            Some(token) => {
                let attempt = self.next_attempt;
                self.next_attempt += 1;
                self.active = Some(attempt);
                self.emit(CommandRecord::Refresh {
                    attempt: AttemptId(attempt),
                    refresh_token: token,
                });
            }
        }
    }

    fn fail(&mut self, id: u64, reason: FailReason) {
        self.reqs.remove(&id);
        self.emit(CommandRecord::Fail {
            id: RequestId(id),
            reason,
        });
    }

    fn fail_queue(&mut self, reason: FailReason) {
        for id in std::mem::take(&mut self.queue) {
            self.fail(id, reason);
        }
    }

    fn release(&mut self) {
        for id in std::mem::take(&mut self.queue) {
            self.transmit(id);
        }
    }

    fn end(&mut self, reason: LogoutReason, fail: FailReason) {
        self.fail_queue(fail);
        self.logged_in = false;
        self.epoch += 1;
        self.active = None;
        self.adoptable_from = self.next_attempt;
        self.emit(CommandRecord::Logout { reason });
    }

    fn install(&mut self, access: String, refresh: Option<String>) {
        self.logged_in = true;
        self.generation = self.next_generation;
        self.next_generation += 1;
        self.access = access;
        self.refresh = refresh;
        self.known_bad = false;
        self.active = None;
        self.adoptable_from = self.next_attempt;
    }

    fn in_flight(&self) -> Vec<u64> {
        self.reqs
            .iter()
            .filter(|(_, r)| r.in_flight.is_some())
            .map(|(&id, _)| id)
            .collect()
    }
}

struct Reference;

impl ReferenceStateMachine for Reference {
    type State = Model;
    type Transition = Step;

    fn init_state() -> BoxedStrategy<Model> {
        (0u32..3)
            .prop_map(|max_replays| Model {
                max_replays,
                logged_in: false,
                generation: 0,
                next_generation: 1,
                access: String::new(),
                refresh: None,
                known_bad: false,
                active: None,
                next_attempt: 1,
                adoptable_from: 1,
                next_id: 1,
                epoch: 0,
                queue: Vec::new(),
                reqs: BTreeMap::new(),
                tokens: 0,
                expected: Vec::new(),
            })
            .boxed()
    }

    fn transitions(s: &Model) -> BoxedStrategy<Step> {
        let t = s.tokens + 1;
        let access = format!("a{t}");
        let refresh = format!("r{t}");
        let in_flight = s.in_flight();
        let open: Vec<u64> = s.reqs.keys().copied().collect();
        let mut options: Vec<(u32, BoxedStrategy<Step>)> = vec![
            (
                2,
                prop::bool::weighted(0.9)
                    .prop_map(move |r| Step::Login {
                        access: access.clone(),
                        refresh: r.then(|| refresh.clone()),
                    })
                    .boxed(),
            ),
            (
                8,
                prop::bool::weighted(0.85)
                    .prop_map(|replayable| Step::Submit { replayable })
                    .boxed(),
            ),
            (1, Just(Step::ForceRefresh).boxed()),
            (1, Just(Step::Logout).boxed()),
        ];
        let (a2, r2) = (format!("a{t}"), format!("r{t}"));
        let active = s.active;
        let issued = s.next_attempt;
        if issued > 1 {
            // Results for the active attempt mostly, for older ones sometimes.
            options.push((
                5,
                (1..issued, any::<bool>(), prop::bool::weighted(0.7))
                    .prop_map(move |(old, rotate, use_active)| Step::RefreshOk {
                        attempt: if use_active {
                            active.unwrap_or(old)
                        } else {
                            old
                        },
                        access: a2.clone(),
                        refresh: rotate.then(|| r2.clone()),
                    })
                    .boxed(),
            ));
            options.push((
                1,
                (1..issued)
                    .prop_map(move |a| Step::Rejected {
                        attempt: active.unwrap_or(a),
                    })
                    .boxed(),
            ));
            options.push((
                1,
                (1..issued)
                    .prop_map(move |a| Step::Transient {
                        attempt: active.unwrap_or(a),
                    })
                    .boxed(),
            ));
        }
        if !in_flight.is_empty() {
            options.push((
                10,
                (
                    prop::sample::select(in_flight),
                    prop_oneof![Just(200u16), Just(401), Just(401)],
                )
                    .prop_map(|(id, status)| Step::Respond { id, status })
                    .boxed(),
            ));
        }
        if !open.is_empty() {
            options.push((
                1,
                prop::sample::select(open)
                    .prop_map(|id| Step::Cancel { id })
                    .boxed(),
            ));
        }
        prop::strategy::Union::new_weighted(options).boxed()
    }

    fn preconditions(s: &Model, step: &Step) -> bool {
        match step {
            Step::Respond { id, .. } => s.reqs.get(id).is_some_and(|r| r.in_flight.is_some()),
            Step::Cancel { id } => s.reqs.contains_key(id),
            Step::RefreshOk { attempt, .. }
            | Step::Rejected { attempt }
            | Step::Transient { attempt } => *attempt >= 1 && *attempt < s.next_attempt,
            _ => true,
        }
    }

    fn apply(mut s: Model, step: &Step) -> Model {
        s.expected.clear();
        s.tokens += 1;
        match step.clone() {
            Step::Login { access, refresh } => {
                s.install(access, refresh);
                s.release();
            }
            Step::Submit { replayable } => {
                let id = s.next_id;
                s.next_id += 1;
                if !s.logged_in {
                    s.emit(CommandRecord::Fail {
                        id: RequestId(id),
                        reason: FailReason::NotLoggedIn,
                    });
                } else {
                    let epoch = s.epoch;
                    s.reqs.insert(
                        id,
                        Req {
                            replayable,
                            sent: false,
                            replays: 0,
                            epoch,
                            in_flight: None,
                        },
                    );
                    s.dispatch(id);
                }
            }
            Step::Respond { id, status } => {
                let r = s.reqs.get_mut(&id).expect("precondition: in flight");
                let g = r.in_flight.take().expect("precondition: in flight");
                let (replayable, replays, epoch) = (r.replayable, r.replays, r.epoch);
                if status != 401 {
                    s.reqs.remove(&id);
                    s.emit(CommandRecord::Complete { id: RequestId(id) });
                } else if !s.logged_in || epoch != s.epoch {
                    s.fail(id, FailReason::LoggedOut);
                } else {
                    let current = g == s.generation;
                    if current {
                        s.known_bad = true;
                    }
                    if !replayable {
                        s.reqs.remove(&id);
                        s.emit(CommandRecord::Complete { id: RequestId(id) });
                        if current && s.active.is_none() {
                            s.start_cycle();
                        }
                    } else if replays >= s.max_replays {
                        s.fail(id, FailReason::Unauthorized);
                    } else {
                        s.reqs.get_mut(&id).expect("open").replays += 1;
                        s.dispatch(id);
                    }
                }
            }
            Step::RefreshOk {
                attempt,
                access,
                refresh,
            } => {
                if s.logged_in && attempt >= s.adoptable_from {
                    let refresh = refresh.or(s.refresh.clone());
                    s.install(access.clone(), refresh.clone());
                    let generation = Generation(s.generation);
                    s.emit(CommandRecord::StoreCredentials {
                        generation,
                        access_token: access,
                        refresh_token: refresh,
                        expires_in_ms: None,
                    });
                    s.release();
                }
            }
            Step::Rejected { attempt } => {
                if s.active == Some(attempt) {
                    s.end(LogoutReason::RefreshRejected, FailReason::RefreshRejected);
                }
            }
            Step::Transient { attempt } => {
                if s.active == Some(attempt) {
                    s.active = None;
                    s.known_bad = true;
                    s.fail_queue(FailReason::RefreshUnavailable);
                }
            }
            Step::Cancel { id } => {
                s.reqs.remove(&id);
                s.queue.retain(|&q| q != id);
            }
            Step::ForceRefresh => {
                if s.logged_in && s.active.is_none() {
                    s.known_bad = true;
                }
            }
            Step::Logout => {
                if s.logged_in {
                    s.end(LogoutReason::Requested, FailReason::LoggedOut);
                }
            }
        }
        s
    }
}

struct RealCore;

impl StateMachineTest for RealCore {
    type SystemUnderTest = Coordinator;
    type Reference = Reference;

    fn init_test(model: &Model) -> Coordinator {
        Coordinator::new(
            Config::default()
                .with_max_replays_per_request(model.max_replays)
                .with_max_retries(0)
                .with_refresh_window(RefreshWindow::new(10_000, 1)),
        )
        .expect("valid config")
    }

    fn apply(mut core: Coordinator, model: &Model, step: Step) -> Coordinator {
        let credentials = |access: String, refresh: Option<String>| {
            let c = Credentials::new(access);
            match refresh {
                Some(r) => c.with_refresh_token(r),
                None => c,
            }
        };
        let input = match step {
            Step::Login { access, refresh } => Input::Login {
                credentials: credentials(access, refresh),
            },
            Step::Submit { replayable } => Input::Submit {
                options: RequestOptions::default().with_replayable(replayable),
            },
            Step::Respond { id, status } => Input::Response {
                id: RequestId(id),
                status,
            },
            Step::RefreshOk {
                attempt,
                access,
                refresh,
            } => Input::RefreshSucceeded {
                attempt: AttemptId(attempt),
                credentials: credentials(access, refresh),
            },
            Step::Rejected { attempt } => Input::RefreshFailed {
                attempt: AttemptId(attempt),
                failure: RefreshFailure::Rejected,
            },
            Step::Transient { attempt } => Input::RefreshFailed {
                attempt: AttemptId(attempt),
                failure: RefreshFailure::Transient {
                    retry_after_ms: None,
                },
            },
            Step::Cancel { id } => Input::Cancel { id: RequestId(id) },
            Step::ForceRefresh => Input::ForceRefresh,
            Step::Logout => Input::Logout,
        };
        core.apply(0, input)
            .expect("the model only generates valid inputs");
        let batch: Vec<CommandRecord> = core
            .drain_commands()
            .map(|c| CommandRecord::exposing_tokens(&c))
            .collect();
        assert_eq!(
            batch, model.expected,
            "the core's batch differs from the model's"
        );
        core
    }

    fn check_invariants(core: &Coordinator, model: &Model) {
        assert_eq!(core.is_logged_in(), model.logged_in);
        assert_eq!(core.open_requests(), model.reqs.len());
        assert_eq!(core.waiting(), model.queue.len());
        assert_eq!(core.active_attempt().map(|a| a.0), model.active);
        let in_flight: Vec<u64> = core.in_flight_ids().iter().map(|id| id.0).collect();
        assert_eq!(in_flight, model.in_flight());
    }
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000)
}

prop_state_machine! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    /// The real core produces exactly the model's batch for every input.
    #[test]
    fn core_matches_reference_model(sequential 1..120 => RealCore);
}
