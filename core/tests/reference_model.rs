//! A `proptest-state-machine` reference model: the rules of `docs/contract.md` §7, written
//! again as plainly as possible (vectors and linear scans, no clock), predicts the exact
//! command batch of every input; the real coordinator must produce it byte for byte.
//!
//! The model runs with time frozen, no expiry and `max_retries = 0` (a transient failure
//! exhausts at once), so every rule that needs no clock is compared exactly: 3–6, 8, 9,
//! 10 (exhaustion), 11 (staleness), 12–14, 16, cancel and force_refresh. The timed rules
//! (2, 7, 10 backoff, 11 deadline, 15) are covered by the transcripts and by the
//! observer in `guarantees.rs`.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};
use reauth::{
    AttemptId, Config, Coordinator, Credentials, FailReason, Generation, Input, LogoutReason,
    RefreshFailure, RefreshWindow, RequestId, RequestOptions,
};
use reauth_testkit::transcript::CommandRecord;

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

/// Where a request is, in the contract's words.
#[derive(Clone, Debug, PartialEq)]
enum Place {
    /// Waiting for a refresh (§7.2, 7.3, 7.5).
    Waiting,
    /// Sent with this generation during this session; a response is due.
    Sent { generation: u64, session: u64 },
}

#[derive(Clone, Debug)]
struct Request {
    replayable: bool,
    /// Whether it ever went out: its next transmission is a `Replay`.
    went_out: bool,
    replays: u32,
    place: Place,
    /// Its own refusal of the current token asked for the refresh it waits for.
    asked_for_refresh: bool,
    /// It went out with the token that refresh brought (rule 20).
    has_token_it_asked_for: bool,
}

/// The state as the contract describes it. Deliberately not the core's shape: generations
/// are known bad as a *set* (§4.6), every attempt remembers the session and generation it
/// started from (§7.11, "staleness, precisely"), sessions are numbered, and a request's
/// place is an enum.
#[derive(Clone, Debug)]
struct Model {
    max_replays: u32,
    /// The current session's number, or `None` when logged out (§7.12).
    session: Option<u64>,
    sessions_started: u64,
    generation: u64,
    generations_issued: u64,
    access: String,
    refresh: Option<String>,
    bad: BTreeSet<u64>,
    /// Attempt → (session, generation) it started from.
    attempts: BTreeMap<u64, (u64, u64)>,
    /// The attempt whose result counts as the refresh's outcome (§7.11).
    active: Option<u64>,
    requests: BTreeMap<u64, Request>,
    /// FIFO order of the waiting requests.
    waiting: Vec<u64>,
    ids_issued: u64,
    tokens: u64,
    expected: Vec<CommandRecord>,
}

impl Model {
    fn out(&mut self, c: CommandRecord) {
        self.expected.push(c);
    }

    /// The token must not be used: its generation is known bad (§4.6, G3).
    fn token_unusable(&self) -> bool {
        self.bad.contains(&self.generation)
    }

    /// Sends or replays `id` with the current token; `refreshed`: an adopted refresh
    /// brought that token just now.
    fn go_out(&mut self, id: u64, refreshed: bool) {
        let (generation, session) = (self.generation, self.session.unwrap_or(0));
        let access = self.access.clone();
        let r = self.requests.get_mut(&id).expect("open");
        r.place = Place::Sent {
            generation,
            session,
        };
        r.has_token_it_asked_for = refreshed && r.asked_for_refresh;
        r.asked_for_refresh = false;
        let replay = std::mem::replace(&mut r.went_out, true);
        let (id, generation) = (RequestId(id), Generation(generation));
        self.out(if replay {
            CommandRecord::Replay {
                id,
                access_token: access,
                generation,
            }
        } else {
            CommandRecord::Send {
                id,
                access_token: access,
                generation,
            }
        });
    }

    /// Rules 1–3 and 5 for a request that wants to go out now.
    fn wants_out(&mut self, id: u64) {
        if self.active.is_some() {
            // Rule 3: a refresh runs (no backoff in this model): join it.
            self.wait(id);
        } else if self.token_unusable() {
            // Rules 2 and 5: wait, and one refresh starts.
            self.wait(id);
            self.refresh_needed();
        } else {
            // Rule 1.
            self.go_out(id, false);
        }
    }

    fn wait(&mut self, id: u64) {
        self.requests.get_mut(&id).expect("open").place = Place::Waiting;
        self.waiting.push(id);
    }

    /// A refresh is needed and none runs: rule 13 without a refresh token, else a new
    /// attempt (the window never fills in this model).
    fn refresh_needed(&mut self) {
        let Some(token) = self.refresh.clone() else {
            self.session_ends(LogoutReason::NoRefreshToken, FailReason::LoggedOut);
            return;
        };
        let attempt = self.attempts.len() as u64 + 1;
        let session = self.session.expect("a refresh is needed only in a session");
        self.attempts.insert(attempt, (session, self.generation));
        self.active = Some(attempt);
        self.out(CommandRecord::Refresh {
            attempt: AttemptId(attempt),
            refresh_token: token,
        });
    }

    fn ends(&mut self, id: u64, reason: FailReason) {
        self.requests.remove(&id);
        self.out(CommandRecord::Fail {
            id: RequestId(id),
            reason,
        });
    }

    fn every_waiting_request_fails(&mut self, reason: FailReason) {
        for id in std::mem::take(&mut self.waiting) {
            self.ends(id, reason);
        }
    }

    fn every_waiting_request_goes_out(&mut self, refreshed: bool) {
        for id in std::mem::take(&mut self.waiting) {
            self.go_out(id, refreshed);
        }
    }

    /// Rules 9, 12, 13: the waiting fail, then the logout.
    fn session_ends(&mut self, reason: LogoutReason, fail: FailReason) {
        self.every_waiting_request_fails(fail);
        self.session = None;
        self.active = None;
        self.out(CommandRecord::Logout { reason });
    }

    /// New credentials (login or an adopted refresh): a new generation, no refresh runs.
    fn new_credentials(&mut self, access: String, refresh: Option<String>) {
        if self.session.is_none() {
            self.sessions_started += 1;
            self.session = Some(self.sessions_started);
        }
        self.generations_issued += 1;
        self.generation = self.generations_issued;
        self.access = access;
        self.refresh = refresh;
        self.active = None;
    }

    fn sent_ids(&self) -> Vec<u64> {
        self.requests
            .iter()
            .filter(|(_, r)| matches!(r.place, Place::Sent { .. }))
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
                session: None,
                sessions_started: 0,
                generation: 0,
                generations_issued: 0,
                access: String::new(),
                refresh: None,
                bad: BTreeSet::new(),
                attempts: BTreeMap::new(),
                active: None,
                requests: BTreeMap::new(),
                waiting: Vec::new(),
                ids_issued: 0,
                tokens: 0,
                expected: Vec::new(),
            })
            .boxed()
    }

    fn transitions(s: &Model) -> BoxedStrategy<Step> {
        let t = s.tokens + 1;
        let access = format!("a{t}");
        let refresh = format!("r{t}");
        let in_flight = s.sent_ids();
        let open: Vec<u64> = s.requests.keys().copied().collect();
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
        let issued = s.attempts.len() as u64 + 1;
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
            Step::Respond { id, .. } => s
                .requests
                .get(id)
                .is_some_and(|r| matches!(r.place, Place::Sent { .. })),
            Step::Cancel { id } => s.requests.contains_key(id),
            Step::RefreshOk { attempt, .. }
            | Step::Rejected { attempt }
            | Step::Transient { attempt } => s.attempts.contains_key(attempt),
            _ => true,
        }
    }

    fn apply(mut s: Model, step: &Step) -> Model {
        s.expected.clear();
        s.tokens += 1;
        match step.clone() {
            Step::Login { access, refresh } => {
                // §5 login: new credentials; a running refresh becomes stale; the waiting
                // go out with the new token.
                s.new_credentials(access, refresh);
                s.every_waiting_request_goes_out(false);
            }
            Step::Submit { replayable } => {
                s.ids_issued += 1;
                let id = s.ids_issued;
                if s.session.is_none() {
                    // Rule 16.
                    s.out(CommandRecord::Fail {
                        id: RequestId(id),
                        reason: FailReason::NotLoggedIn,
                    });
                } else {
                    s.requests.insert(
                        id,
                        Request {
                            replayable,
                            went_out: false,
                            replays: 0,
                            place: Place::Waiting,
                            asked_for_refresh: false,
                            has_token_it_asked_for: false,
                        },
                    );
                    s.wants_out(id);
                }
            }
            Step::Respond { id, status } => {
                let r = s.requests.get(&id).expect("precondition: sent").clone();
                let Place::Sent {
                    generation,
                    session,
                } = r.place
                else {
                    unreachable!("precondition: sent")
                };
                if status != 401 {
                    s.requests.remove(&id);
                    s.out(CommandRecord::Complete { id: RequestId(id) });
                } else if s.session != Some(session) {
                    // Rule 12: a 401 from a session that ended.
                    s.ends(id, FailReason::LoggedOut);
                } else {
                    let current = generation == s.generation;
                    if current && r.has_token_it_asked_for && r.replays >= s.max_replays {
                        // Rule 20: refused again with the token its own refusal asked
                        // for, and no replay left: the request's cost; the token stays.
                        if r.replayable {
                            s.ends(id, FailReason::Unauthorized);
                        } else {
                            s.requests.remove(&id);
                            s.out(CommandRecord::Complete { id: RequestId(id) });
                        }
                        return s;
                    }
                    if current {
                        s.bad.insert(generation); // rule 5
                    }
                    if !r.replayable {
                        // Rule 14.
                        s.requests.remove(&id);
                        s.out(CommandRecord::Complete { id: RequestId(id) });
                        if current && s.active.is_none() {
                            s.refresh_needed();
                        }
                    } else if r.replays >= s.max_replays {
                        s.ends(id, FailReason::Unauthorized); // rule 6
                    } else {
                        // Rules 4 and 5.
                        let r = s.requests.get_mut(&id).expect("open");
                        r.replays += 1;
                        r.asked_for_refresh = current;
                        s.wants_out(id);
                    }
                }
            }
            Step::RefreshOk {
                attempt,
                access,
                refresh,
            } => {
                // Rule 11, precisely: adopted iff its session still runs and its
                // generation is still current.
                let (session, generation) = s.attempts[&attempt];
                if s.session == Some(session) && s.generation == generation {
                    let refresh = refresh.or(s.refresh.clone()); // rule 8 / §4.4
                    s.new_credentials(access.clone(), refresh.clone());
                    let generation = Generation(s.generation);
                    s.out(CommandRecord::StoreCredentials {
                        generation,
                        access_token: access,
                        refresh_token: refresh,
                        expires_in_ms: None,
                        expires_at: None,
                    });
                    s.every_waiting_request_goes_out(true);
                }
            }
            Step::Rejected { attempt } => {
                if s.active == Some(attempt) {
                    // Rule 9.
                    s.session_ends(LogoutReason::RefreshRejected, FailReason::RefreshRejected);
                }
            }
            Step::Transient { attempt } => {
                if s.active == Some(attempt) {
                    // Rule 10 with no retries left: the cycle gives up, the session stays,
                    // the generation stays known bad.
                    s.active = None;
                    s.bad.insert(s.generation);
                    s.every_waiting_request_fails(FailReason::RefreshUnavailable);
                }
            }
            Step::Cancel { id } => {
                s.requests.remove(&id);
                s.waiting.retain(|&w| w != id);
            }
            Step::ForceRefresh => {
                if s.session.is_some() && s.active.is_none() {
                    s.bad.insert(s.generation);
                }
            }
            Step::Logout => {
                if s.session.is_some() {
                    s.session_ends(LogoutReason::Requested, FailReason::LoggedOut);
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
        assert_eq!(core.is_logged_in(), model.session.is_some());
        assert_eq!(core.open_requests(), model.requests.len());
        assert_eq!(core.waiting(), model.waiting.len());
        assert_eq!(core.active_attempt().map(|a| a.0), model.active);
        let in_flight: Vec<u64> = core.in_flight_ids().iter().map(|id| id.0).collect();
        assert_eq!(in_flight, model.sent_ids());
        if model.session.is_some() {
            assert_eq!(core.generation(), Some(Generation(model.generation)));
        }
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
