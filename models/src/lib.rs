//! Exhaustive model checking of the **real** `reauth` coordinator with
//! [stateright](https://docs.rs/stateright).
//!
//! The model state wraps the real [`Coordinator`] (no re-implementation) together with
//! the [`Oracle`] that checks the guarantees of `docs/contract.md` after every step and the bookkeeping of
//! the environment. The environment's nondeterminism is the action set: a new request,
//! each in-flight request answered 200 / 401 / 500, each outstanding refresh answered
//! with success (rotating or not), rejection or a transient failure — or never (its
//! deadline fires when time jumps) — cancel, force_refresh, logout, login, time jumping to
//! the next deadline, time passing a token's expiry, and (bounds `host_inputs`) transport
//! errors, a request that opts out of refresh, and restoring stored credentials.
//!
//! Every state is also probed without a transition: host misuse (an unknown request, a
//! never-issued attempt, an empty token, a bad status) must be refused and change nothing
//! (G9), the same input on a clone must give the same batch (G11), and a cooperative host
//! must bring every open request to its terminal command within a bound (G7).

use std::fmt;
use std::hash::{Hash, Hasher};

use reauth::{
    AttemptId, Command, Config, Coordinator, Credentials, Input, LogoutReason, RefreshFailure,
    RefreshWindow, RequestId, RequestOptions, Timestamp,
};
use reauth_testkit::harness::Harness;
use reauth_testkit::oracle::{Oracle, Snapshot};
use stateright::{Checker, Model, Property};

/// How large a world to explore.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Bounds {
    /// Requests the environment submits in total.
    pub requests: u8,
    /// Refresh cycles allowed per window (`refresh_window.max_refreshes`); one more is
    /// excessive and logs out.
    pub cycles: u32,
    /// Transient retries per cycle (`max_retries`).
    pub retries: u32,
    /// Replays per request (`max_replays_per_request`).
    pub replays: u32,
    /// Logouts and logins the environment may perform (each at most this many).
    pub sessions: u8,
    /// Cancels the environment may perform.
    pub cancels: u8,
    /// Times the environment lets a token run into its expiry skew.
    pub expiries: u8,
    /// Whether the first request is a one-shot (non-replayable) request.
    pub one_shot: bool,
    /// `max_pending`: below `requests` to reach `QueueFull`.
    pub max_pending: u32,
    /// The v2 host inputs (rules 17–19): requests in flight may fail with a transport
    /// error, the last request opts out of refresh, and after a logout the host may
    /// restore (`begin_restore`, then `login` or `restore_failed`).
    pub host_inputs: bool,
}

/// The default bounds: 3 requests and every dimension but the one-shot request and the
/// v2 host inputs.
const DEFAULT_BOUNDS: Bounds = Bounds {
    requests: 3,
    cycles: 2,
    retries: 1,
    replays: 1,
    sessions: 1,
    cancels: 1,
    expiries: 1,
    one_shot: false,
    max_pending: 2,
    host_inputs: false,
};

impl Default for Bounds {
    fn default() -> Self {
        DEFAULT_BOUNDS
    }
}

/// Named bounds, each exploring one dimension fully; together they reach every rule.
/// The state counts are pinned by `tests/check.rs`.
pub const PRESETS: [(&str, Bounds); 6] = [
    (
        // Three concurrent requests through 401 storms, two refresh cycles and the window,
        // one transient retry per cycle, deadlines, late adoption, wait timeouts.
        "storm",
        Bounds {
            requests: 3,
            cycles: 2,
            retries: 1,
            replays: 1,
            sessions: 0,
            cancels: 0,
            expiries: 0,
            one_shot: false,
            max_pending: 3,
            host_inputs: false,
        },
    ),
    (
        // Logout and login at every point, with retries, and a one-slot queue.
        "sessions",
        Bounds {
            requests: 2,
            cycles: 2,
            retries: 1,
            replays: 1,
            sessions: 1,
            cancels: 0,
            expiries: 0,
            one_shot: false,
            max_pending: 1,
            host_inputs: false,
        },
    ),
    (
        // Everything the host can do to a session: cancel, expiry, force, logout, login.
        "lifecycle",
        Bounds {
            requests: 2,
            cycles: 2,
            retries: 0,
            replays: 1,
            sessions: 1,
            cancels: 1,
            expiries: 1,
            one_shot: false,
            max_pending: 1,
            host_inputs: false,
        },
    ),
    (
        // A one-shot request among replayable ones, and a budget of two replays.
        "one-shot",
        Bounds {
            requests: 3,
            cycles: 3,
            retries: 0,
            replays: 2,
            sessions: 0,
            cancels: 0,
            expiries: 1,
            one_shot: true,
            max_pending: 3,
            host_inputs: false,
        },
    ),
    (
        // The v2 host inputs: transport errors at every point, a request that opts out of
        // refresh, restoring after a logout (requests wait for the stored credentials),
        // with an expiry. A transport error or an opted-out 401 leaves the same state as
        // a 200 would, so those transitions are checked by the oracle but merge with
        // others; the property tests show they are reached.
        "host-inputs",
        Bounds {
            requests: 3,
            cycles: 2,
            retries: 0,
            replays: 1,
            sessions: 1,
            cancels: 0,
            expiries: 1,
            one_shot: false,
            max_pending: 2,
            host_inputs: true,
        },
    ),
    (
        // Every dimension at once, with 3 requests: the default bounds (logout + login,
        // cancel, force, expiry, 2 cycles, a retry, a replay, a queue of 2) plus a
        // one-shot first request and the host inputs (a last request that opts out of
        // refresh, transport errors, restoring). About 7 million states and 6–7 minutes
        // on 2 cores depth first (`check --preset all --dfs`); pinned by an ignored test
        // in `tests/check.rs`, not run by CI.
        "all",
        Bounds {
            one_shot: true,
            host_inputs: true,
            ..DEFAULT_BOUNDS
        },
    ),
];

/// The bounds of a preset, by name.
pub fn preset(name: &str) -> Option<Bounds> {
    PRESETS.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
}

/// Token lifetime in the model, and the clock constants the config uses.
const LIFETIME_MS: u64 = 10_000;
const REFRESH_TIMEOUT_MS: u64 = 1_000;
const BACKOFF_MS: u64 = 100;
const MAX_WAIT_MS: u64 = 1_500;

impl Bounds {
    /// The coordinator configuration these bounds imply.
    pub fn config(&self) -> Config {
        Config::default()
            .with_refresh_statuses(vec![401])
            .with_expiry_skew_ms(2_000)
            // Ages that matter stay 0 and 1 (a smaller state space); the property tests
            // draw the age limit freely.
            .with_min_token_age_ms(1)
            .with_max_replays_per_request(self.replays)
            .with_refresh_window(RefreshWindow::new(self.cycles, 1_000_000))
            .with_initial_backoff_ms(BACKOFF_MS)
            .with_max_backoff_ms(BACKOFF_MS * 4)
            .with_max_retries(self.retries)
            .with_refresh_timeout_ms(REFRESH_TIMEOUT_MS)
            .with_max_pending(self.max_pending)
            .with_max_wait_ms(MAX_WAIT_MS)
    }
}

/// One choice of the environment.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// A new request (one-shot if the bounds say so and it is the first).
    Submit,
    /// The API answers request `id` with `status`.
    Respond {
        /// The request.
        id: RequestId,
        /// 200, 401 or 500.
        status: u16,
    },
    /// The token endpoint returns tokens for `attempt`; `rotate` also returns a new
    /// refresh token.
    RefreshSucceeds {
        /// The attempt answered.
        attempt: AttemptId,
        /// Whether the refresh token rotates.
        rotate: bool,
    },
    /// The token endpoint refuses the grant for `attempt`.
    RefreshRejected(AttemptId),
    /// A network error for `attempt`.
    RefreshTransient(AttemptId),
    /// The caller cancels `id`.
    Cancel(RequestId),
    /// The host forces a refresh.
    ForceRefresh,
    /// The user logs out.
    Logout,
    /// The user logs in (again).
    Login,
    /// Time jumps to the core's next deadline.
    Timeout,
    /// Time passes until the current token is inside its expiry skew.
    TokenExpires,
    /// The request in flight failed without an HTTP status.
    TransportError(RequestId),
    /// The host starts reading stored credentials.
    BeginRestore,
    /// Nothing was stored.
    RestoreFailed,
}

/// What the last transition did that a `sometimes` property looks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Event {
    /// Nothing notable.
    #[default]
    Plain,
    /// A refresh success released three or more waiting requests.
    ReleasedThree,
    /// A refresh success released at least one waiting request.
    Released,
    /// `Logout { ExcessiveRefresh }`.
    Excessive,
    /// An abandoned attempt's late success was adopted.
    LateAdoption,
    /// The user logged out while a refresh was running.
    LogoutDuringRefresh,
    /// `Logout { RefreshRejected }`.
    Rejected,
    /// Transient retries exhausted: `Fail { RefreshUnavailable }`.
    Exhausted,
    /// A stale 401 was replayed without a refresh.
    StaleReplay,
    /// A request failed with `WaitTimeout`.
    WaitTimeout,
    /// A request failed with `QueueFull`.
    QueueFull,
    /// A request failed with `Unauthorized`.
    Unauthorized,
    /// A one-shot request got its 401 (`Complete`) and a refresh started anyway.
    OneShot401,
    /// A late success was adopted while a retry's rejection was held for it (rule 9).
    HeldAdoption,
    /// A held rejection stood: nothing delivered in time, `Logout { RefreshRejected }`.
    HeldRejected,
    /// A login released requests that waited while restoring (rule 18).
    Restored,
    /// `restore_failed` failed requests that waited (rule 18).
    RestoreFailed,
}

/// A state of the world: the real core, the oracle's books, the environment's counters.
#[derive(Clone)]
pub struct State {
    /// The real coordinator.
    pub core: Coordinator,
    oracle: Oracle,
    now: Timestamp,
    submitted: u8,
    /// Refresh attempts issued and not answered yet.
    owed: Vec<AttemptId>,
    logouts: u8,
    logins: u8,
    cancels: u8,
    expiries: u8,
    forced: bool,
    restores: u8,
    /// The first guarantee broken on the way here, if any.
    pub violation: Option<String>,
    /// What the last transition did.
    pub event: Event,
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("State")
            .field("now", &self.now)
            .field("logged_in", &self.core.is_logged_in())
            .field("generation", &self.core.generation())
            .field("refreshing", &self.core.is_refreshing())
            .field("waiting", &self.core.waiting())
            .field("in_flight", &self.core.in_flight_ids())
            .field("owed_attempts", &self.owed)
            .field("violation", &self.violation)
            .finish()
    }
}

impl Hash for State {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.core.hash(h);
        self.oracle.fingerprint(h);
        // Cycles that do not count in the window (after a give-up, on expiry) are
        // bounded by the model through this count (`RefreshModel::actions`).
        self.core.stats().refresh_cycles.hash(h);
        (self.now, self.submitted, &self.owed).hash(h);
        (
            self.logouts,
            self.logins,
            self.cancels,
            self.expiries,
            self.forced,
            self.restores,
        )
            .hash(h);
        self.violation.hash(h);
        // The event too: a `sometimes` property looks at it, and merging two states that
        // differ only by it would make what is reached depend on thread timing.
        self.event.hash(h);
    }
}

/// The state's fingerprint as one number.
fn digest(s: &State) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

impl PartialEq for State {
    fn eq(&self, other: &Self) -> bool {
        digest(self) == digest(other)
    }
}

impl Eq for State {}

fn login_credentials(n: u8) -> Credentials {
    Credentials::new(format!("login-access-{n}"))
        .with_refresh_token(format!("login-refresh-{n}"))
        .with_expires_in_ms(LIFETIME_MS)
}

fn refresh_credentials(attempt: AttemptId, rotate: bool) -> Credentials {
    let c = Credentials::new(format!("access-{attempt}")).with_expires_in_ms(LIFETIME_MS);
    if rotate {
        c.with_refresh_token(format!("refresh-{attempt}"))
    } else {
        c
    }
}

/// The model: bounds plus the configuration they imply.
#[derive(Clone, Debug)]
pub struct RefreshModel {
    /// The bounds.
    pub bounds: Bounds,
    config: Config,
    #[cfg(reauth_faults)]
    fault: Option<reauth::Fault>,
}

impl RefreshModel {
    /// A model with `bounds`.
    pub fn new(bounds: Bounds) -> Self {
        RefreshModel {
            config: bounds.config(),
            bounds,
            #[cfg(reauth_faults)]
            fault: None,
        }
    }

    /// The input an action means in `state`.
    fn input(&self, state: &State, action: &Action) -> (Timestamp, Input) {
        let now = state.now;
        let input = match action {
            Action::Submit => Input::Submit {
                options: RequestOptions::default()
                    .with_replayable(!(self.bounds.one_shot && state.submitted == 0))
                    .with_refresh(
                        !(self.bounds.host_inputs && state.submitted + 1 == self.bounds.requests),
                    ),
            },
            Action::TransportError(id) => Input::TransportError { id: *id },
            Action::BeginRestore => Input::BeginRestore,
            Action::RestoreFailed => Input::RestoreFailed,
            Action::Respond { id, status } => Input::Response {
                id: *id,
                status: *status,
            },
            Action::RefreshSucceeds { attempt, rotate } => Input::RefreshSucceeded {
                attempt: *attempt,
                credentials: refresh_credentials(*attempt, *rotate),
            },
            Action::RefreshRejected(attempt) => Input::RefreshFailed {
                attempt: *attempt,
                failure: RefreshFailure::Rejected,
            },
            Action::RefreshTransient(attempt) => Input::RefreshFailed {
                attempt: *attempt,
                failure: RefreshFailure::Transient {
                    retry_after_ms: None,
                },
            },
            Action::Cancel(id) => Input::Cancel { id: *id },
            Action::ForceRefresh => Input::ForceRefresh,
            Action::Logout => Input::Logout,
            Action::Login => Input::Login {
                credentials: login_credentials(state.logins + 1),
            },
            Action::Timeout => {
                let at = state.core.poll_timeout().unwrap_or(now).max(now);
                return (at, Input::Timeout);
            }
            Action::TokenExpires => return (now + LIFETIME_MS, Input::Timeout),
        };
        (now, input)
    }

    /// Applies one input to `state` through the oracle. Returns the batch.
    fn step(state: &mut State, at: Timestamp, input: Input) -> Result<Vec<Command>, String> {
        let before = Snapshot::of(&state.core);
        let mut twin = state.core.clone();
        let result = state.core.apply(at, input.clone());
        let batch: Vec<Command> = state.core.drain_commands().collect();
        // G11: the same input on an identical core gives the same batch.
        let twin_result = twin.apply(at, input.clone());
        let twin_batch: Vec<Command> = twin.drain_commands().collect();
        if twin_result != result || twin_batch != batch {
            return Err("G11: the same input on an identical state gave a different batch".into());
        }
        state
            .oracle
            .step(&state.core, &before, at, &input, &result, &batch)?;
        state.now = state.now.max(at);
        for c in &batch {
            if let Command::Refresh { attempt, .. } = c {
                state.owed.push(*attempt);
            }
        }
        Ok(batch)
    }

    /// G9 on every state: each kind of misuse is refused and changes nothing.
    fn probe_misuse(state: &State) -> Result<(), String> {
        let next_attempt = state.core.next_attempt();
        let in_flight = state.core.in_flight_ids();
        let mut probes = vec![
            Input::Response {
                id: RequestId(u64::MAX),
                status: 200,
            },
            Input::Cancel {
                id: RequestId(u64::MAX),
            },
            Input::RefreshSucceeded {
                attempt: next_attempt,
                credentials: Credentials::new("x"),
            },
            Input::RefreshFailed {
                attempt: AttemptId(0),
                failure: RefreshFailure::Rejected,
            },
            Input::Login {
                credentials: Credentials::new(""),
            },
        ];
        if let Some(&id) = in_flight.first() {
            probes.push(Input::Response { id, status: 600 });
        }
        if let Some(&attempt) = state.owed.first() {
            probes.push(Input::RefreshSucceeded {
                attempt,
                credentials: Credentials::new("with space"),
            });
        }
        for input in probes {
            let mut probe = state.clone();
            let before = Snapshot::of(&probe.core);
            let result = probe.core.apply(probe.now + 1, input.clone());
            let batch: Vec<Command> = probe.core.drain_commands().collect();
            match result {
                Err(_) => probe.oracle.step(
                    &probe.core,
                    &before,
                    probe.now + 1,
                    &input,
                    &result,
                    &batch,
                )?,
                Ok(_) => return Err(format!("G9: misuse {} accepted", input.name())),
            }
        }
        Ok(())
    }

    /// G7: from `state`, a host that answers every command (200s, successful refreshes)
    /// and lets time pass brings every open request to its terminal command within the
    /// bound [`Harness::settle`] computes from the config — the same check the property
    /// tests and the fuzzer make.
    fn settles(state: &State) -> bool {
        Harness::from_parts(state.core.clone(), state.oracle.clone(), state.now)
            .settle()
            .is_ok()
    }
}

impl Model for RefreshModel {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        #[allow(unused_mut)]
        let mut core = Coordinator::new(self.config.clone()).expect("model configs are valid");
        #[cfg(reauth_faults)]
        if let Some(fault) = self.fault {
            core.inject_fault(fault);
        }
        let mut state = State {
            core,
            oracle: Oracle::new(self.config.clone()),
            now: 0,
            submitted: 0,
            owed: Vec::new(),
            logouts: 0,
            logins: 0,
            cancels: 0,
            expiries: 0,
            forced: false,
            restores: 0,
            violation: None,
            event: Event::Plain,
        };
        let login = Input::Login {
            credentials: login_credentials(0),
        };
        if let Err(e) = Self::step(&mut state, 0, login) {
            state.violation = Some(e);
        }
        vec![state]
    }

    fn actions(&self, state: &State, actions: &mut Vec<Action>) {
        if state.violation.is_some() {
            return;
        }
        let b = &self.bounds;
        // The window bounds the cycles that look like a loop; cycles after a give-up or
        // on expiry do not count in it (rule 7), so the model bounds all cycles by the
        // window's size: once that many have started it explores no further (the state
        // itself is still checked; an input that would exceed the window logs out
        // without starting a cycle, so that logout stays reachable).
        if state.core.stats().refresh_cycles > u64::from(b.cycles) {
            return;
        }
        if state.submitted < b.requests {
            actions.push(Action::Submit);
        }
        for id in state.oracle.in_flight_ids() {
            for status in [200, 401, 500] {
                actions.push(Action::Respond { id, status });
            }
            if b.host_inputs {
                actions.push(Action::TransportError(id));
            }
        }
        if b.host_inputs {
            let logged_out = !state.core.is_logged_in() && !state.core.is_restoring();
            if logged_out && state.restores < b.sessions && state.logouts > 0 {
                actions.push(Action::BeginRestore);
            }
            if state.core.is_restoring() {
                actions.push(Action::RestoreFailed);
            }
        }
        for &attempt in &state.owed {
            actions.push(Action::RefreshSucceeds {
                attempt,
                rotate: true,
            });
            actions.push(Action::RefreshSucceeds {
                attempt,
                rotate: false,
            });
            actions.push(Action::RefreshRejected(attempt));
            actions.push(Action::RefreshTransient(attempt));
        }
        if state.cancels < b.cancels {
            for id in state.oracle.open() {
                actions.push(Action::Cancel(id));
            }
        }
        if !state.forced && state.core.is_logged_in() {
            actions.push(Action::ForceRefresh);
        }
        if state.logouts < b.sessions && state.core.is_logged_in() {
            actions.push(Action::Logout);
        }
        if state.logins < b.sessions && state.logouts > 0 {
            actions.push(Action::Login);
        }
        if state.core.poll_timeout().is_some() {
            actions.push(Action::Timeout);
        }
        if state.expiries < b.expiries && state.core.is_logged_in() {
            actions.push(Action::TokenExpires);
        }
    }

    fn next_state(&self, last: &State, action: Action) -> Option<State> {
        let mut s = last.clone();
        s.event = Event::Plain;
        let before = Before {
            refreshing: s.core.is_refreshing(),
            active: s.core.active_attempt(),
            restoring: s.core.is_restoring(),
            held: s.oracle.holding_rejection(),
        };
        match &action {
            Action::Submit => s.submitted += 1,
            Action::RefreshSucceeds { attempt, .. }
            | Action::RefreshRejected(attempt)
            | Action::RefreshTransient(attempt) => s.owed.retain(|a| a != attempt),
            Action::Cancel(_) => s.cancels += 1,
            Action::ForceRefresh => s.forced = true,
            Action::Logout => s.logouts += 1,
            Action::Login => s.logins += 1,
            Action::TokenExpires => s.expiries += 1,
            Action::BeginRestore => s.restores += 1,
            Action::Respond { .. }
            | Action::Timeout
            | Action::TransportError(_)
            | Action::RestoreFailed => {}
        }
        let (at, input) = self.input(last, &action);
        let stale_401 = matches!(&input, Input::Response { status: 401, id } if last.oracle_generation(*id) < last.core.generation());
        match Self::step(&mut s, at, input) {
            Err(e) => s.violation = Some(e),
            Ok(batch) => {
                s.event = classify(&action, &batch, &before, stale_401);
                if let Err(e) = Self::probe_misuse(&s) {
                    s.violation = Some(e);
                } else if !Self::settles(&s) {
                    s.violation =
                        Some("G7: a cooperative host does not settle every request".into());
                }
            }
        }
        Some(s)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        properties()
    }

    fn format_action(&self, action: &Action) -> String {
        describe(action)
    }
}

impl State {
    fn oracle_generation(&self, id: RequestId) -> Option<reauth::Generation> {
        self.oracle.in_flight_generation(id)
    }
}

/// What the state was just before the action, for [`classify`].
struct Before {
    refreshing: bool,
    active: Option<AttemptId>,
    restoring: bool,
    /// A retry's rejection was held (rule 9).
    held: bool,
}

fn classify(action: &Action, batch: &[Command], before: &Before, stale_401: bool) -> Event {
    let Before {
        refreshing: refreshing_before,
        active: active_before,
        restoring: restoring_before,
        held,
    } = *before;
    let released = batch
        .iter()
        .filter(|c| matches!(c, Command::Send { .. } | Command::Replay { .. }))
        .count();
    let stored = matches!(batch.first(), Some(Command::StoreCredentials { .. }));
    let has = |f: &dyn Fn(&Command) -> bool| batch.iter().any(f);
    let failed = |reason: reauth::FailReason| {
        batch
            .iter()
            .any(|c| matches!(c, Command::Fail { reason: r, .. } if *r == reason))
    };
    if held && stored && matches!(action, Action::RefreshSucceeds { .. }) {
        return Event::HeldAdoption;
    }
    if held && matches!(action, Action::Timeout) && has(&|c| matches!(c, Command::Logout { .. })) {
        return Event::HeldRejected;
    }
    if matches!(action, Action::Login) && restoring_before && released > 0 {
        return Event::Restored;
    }
    if matches!(action, Action::RestoreFailed) && failed(reauth::FailReason::NotLoggedIn) {
        return Event::RestoreFailed;
    }
    if has(&|c| {
        matches!(
            c,
            Command::Logout {
                reason: LogoutReason::ExcessiveRefresh
            }
        )
    }) {
        Event::Excessive
    } else if has(&|c| {
        matches!(
            c,
            Command::Logout {
                reason: LogoutReason::RefreshRejected
            }
        )
    }) {
        Event::Rejected
    } else if matches!(action, Action::Logout) && refreshing_before {
        Event::LogoutDuringRefresh
    } else if stored
        && matches!(action, Action::RefreshSucceeds { attempt, .. } if Some(*attempt) != active_before)
    {
        Event::LateAdoption
    } else if stored && released >= 3 {
        Event::ReleasedThree
    } else if stored && released > 0 {
        Event::Released
    } else if has(&|c| {
        matches!(
            c,
            Command::Fail {
                reason: reauth::FailReason::RefreshUnavailable,
                ..
            }
        )
    }) {
        Event::Exhausted
    } else if has(&|c| {
        matches!(
            c,
            Command::Fail {
                reason: reauth::FailReason::WaitTimeout,
                ..
            }
        )
    }) {
        Event::WaitTimeout
    } else if has(&|c| {
        matches!(
            c,
            Command::Fail {
                reason: reauth::FailReason::QueueFull,
                ..
            }
        )
    }) {
        Event::QueueFull
    } else if has(&|c| {
        matches!(
            c,
            Command::Fail {
                reason: reauth::FailReason::Unauthorized,
                ..
            }
        )
    }) {
        Event::Unauthorized
    } else if matches!(action, Action::Respond { status: 401, .. })
        && has(&|c| matches!(c, Command::Complete { .. }))
        && has(&|c| matches!(c, Command::Refresh { .. }))
    {
        Event::OneShot401
    } else if stale_401
        && has(&|c| matches!(c, Command::Replay { .. }))
        && !has(&|c| matches!(c, Command::Refresh { .. }))
    {
        Event::StaleReplay
    } else {
        Event::Plain
    }
}

/// A readable line for an action (counterexample traces).
pub fn describe(action: &Action) -> String {
    match action {
        Action::Submit => "submit a request".into(),
        Action::Respond { id, status } => format!("API answers request {id} with {status}"),
        Action::RefreshSucceeds {
            attempt,
            rotate: true,
        } => {
            format!("refresh attempt {attempt} succeeds (refresh token rotated)")
        }
        Action::RefreshSucceeds {
            attempt,
            rotate: false,
        } => {
            format!("refresh attempt {attempt} succeeds (refresh token kept)")
        }
        Action::RefreshRejected(a) => format!("refresh attempt {a} is rejected (invalid_grant)"),
        Action::RefreshTransient(a) => format!("refresh attempt {a} fails transiently"),
        Action::Cancel(id) => format!("caller cancels request {id}"),
        Action::ForceRefresh => "host forces a refresh".into(),
        Action::Logout => "user logs out".into(),
        Action::Login => "user logs in again".into(),
        Action::Timeout => "time jumps to the next deadline".into(),
        Action::TokenExpires => "time passes into the token's expiry skew".into(),
        Action::TransportError(id) => format!("request {id} fails without an HTTP status"),
        Action::BeginRestore => "app starts reading stored credentials".into(),
        Action::RestoreFailed => "nothing was stored".into(),
    }
}

macro_rules! guarantee {
    ($fn_name:ident, $prefix:literal) => {
        fn $fn_name(_: &RefreshModel, s: &State) -> bool {
            // "G1" must not take "G10: …" or "G11: …" for its own.
            !s.violation.as_deref().is_some_and(|v| {
                v.strip_prefix($prefix)
                    .is_some_and(|rest| !rest.starts_with(|c: char| c.is_ascii_digit()))
            })
        }
    };
}

guarantee!(g1, "G1");
guarantee!(g2, "G2");
guarantee!(g3, "G3");
guarantee!(g4, "G4");
guarantee!(g5, "G5");
guarantee!(g6, "G6");
guarantee!(g7, "G7");
guarantee!(g8, "G8");
guarantee!(g9, "G9");
guarantee!(g10, "G10");
guarantee!(g11, "G11");
guarantee!(rule4, "rule 4");
guarantee!(rule11, "rule 11");

fn consistent(_: &RefreshModel, s: &State) -> bool {
    s.violation.is_none()
}

macro_rules! reached {
    ($fn_name:ident, $event:ident) => {
        fn $fn_name(_: &RefreshModel, s: &State) -> bool {
            s.event == Event::$event
        }
    };
}

reached!(released_three, ReleasedThree);
reached!(excessive, Excessive);
reached!(late_adoption, LateAdoption);
reached!(logout_during_refresh, LogoutDuringRefresh);
reached!(rejected, Rejected);
reached!(exhausted, Exhausted);
reached!(stale_replay, StaleReplay);
reached!(wait_timeout, WaitTimeout);
reached!(unauthorized, Unauthorized);
reached!(queue_full, QueueFull);
reached!(one_shot_401, OneShot401);
reached!(held_adoption, HeldAdoption);
reached!(held_rejected, HeldRejected);
reached!(restored, Restored);
reached!(restore_failed, RestoreFailed);

/// Names of the `always` properties, in the order they are checked.
pub const SAFETY: [&str; 14] = [
    "G1 single flight",
    "G2 exactly one terminal command",
    "G3 no known-bad token",
    "G4 progress",
    "G5 bounded",
    "G6 logout is final",
    "G7 liveness (a cooperative host settles everything)",
    "G8 rotation safety",
    "G9 errors change nothing",
    "G10 secrets stay secret",
    "G11 determinism",
    "rule 4 stale 401 never refreshes",
    "rule 11 stale results ignored",
    "every other rule the oracle checks",
];

fn properties() -> Vec<Property<RefreshModel>> {
    vec![
        Property::always(SAFETY[0], g1),
        Property::always(SAFETY[1], g2),
        Property::always(SAFETY[2], g3),
        Property::always(SAFETY[3], g4),
        Property::always(SAFETY[4], g5),
        Property::always(SAFETY[5], g6),
        Property::always(SAFETY[6], g7),
        Property::always(SAFETY[7], g8),
        Property::always(SAFETY[8], g9),
        Property::always(SAFETY[9], g10),
        Property::always(SAFETY[10], g11),
        Property::always(SAFETY[11], rule4),
        Property::always(SAFETY[12], rule11),
        Property::always(SAFETY[13], consistent),
        Property::sometimes(
            "refresh success releases 3 waiting requests",
            released_three,
        ),
        Property::sometimes("excessive refresh logs out", excessive),
        Property::sometimes("late success adopted after its deadline", late_adoption),
        Property::sometimes("logout during a refresh", logout_during_refresh),
        Property::sometimes("rejected refresh logs out", rejected),
        Property::sometimes("transient retries exhausted", exhausted),
        Property::sometimes("stale 401 replayed without refresh", stale_replay),
        Property::sometimes("request times out waiting", wait_timeout),
        Property::sometimes("replay budget exhausted", unauthorized),
        Property::sometimes("queue full", queue_full),
        Property::sometimes(
            "one-shot request gets its 401, refresh starts",
            one_shot_401,
        ),
        Property::sometimes(
            "a retry's rejection is held and the abandoned attempt's rotation adopted",
            held_adoption,
        ),
        Property::sometimes(
            "a held rejection stands after refresh_timeout_ms",
            held_rejected,
        ),
        Property::sometimes(
            "login releases requests that waited while restoring",
            restored,
        ),
        Property::sometimes("restore_failed fails the waiting requests", restore_failed),
    ]
}

/// The outcome of one check.
#[derive(Debug)]
pub struct Report {
    /// Unique states explored.
    pub unique_states: usize,
    /// States generated (including revisits).
    pub states: usize,
    /// Longest path.
    pub max_depth: usize,
    /// Wall time.
    pub elapsed: std::time::Duration,
    /// Safety properties that failed, with their counterexample as readable lines.
    pub counterexamples: Vec<(&'static str, Vec<String>)>,
    /// `sometimes` properties with no example found (unreachable under these bounds).
    pub unreached: Vec<&'static str>,
}

/// Explores every state within `bounds` (breadth first, `threads` threads).
pub fn check(bounds: Bounds, threads: usize) -> Report {
    check_model(RefreshModel::new(bounds), threads, Order::BreadthFirst)
}

/// Like [`check`], depth first: the same states and verdicts, but memory stays small
/// (a stack of one path's pending states and a set of fingerprints instead of a whole
/// frontier of states) — the order for the largest bounds. `max_depth` is then the
/// longest path taken, not the shortest distance. Prints the states explored so far to
/// stderr once a minute (such runs take long).
pub fn check_depth_first(bounds: Bounds, threads: usize) -> Report {
    check_model(RefreshModel::new(bounds), threads, Order::DepthFirst)
}

/// The order in which states are explored.
#[derive(Clone, Copy)]
enum Order {
    BreadthFirst,
    DepthFirst,
}

impl RefreshModel {
    /// A model whose coordinators all carry `fault`.
    #[cfg(reauth_faults)]
    pub fn new_with_fault(bounds: Bounds, fault: reauth::Fault) -> Self {
        let mut model = RefreshModel::new(bounds);
        model.fault = Some(fault);
        model
    }
}

/// Like [`check`], with a deliberate bug switched on in every coordinator.
#[cfg(reauth_faults)]
pub fn check_with_fault(bounds: Bounds, fault: reauth::Fault, threads: usize) -> Report {
    check_model(
        RefreshModel::new_with_fault(bounds, fault),
        threads,
        Order::BreadthFirst,
    )
}

fn check_model(model: RefreshModel, threads: usize, order: Order) -> Report {
    let start = std::time::Instant::now();
    let builder = model.clone().checker().threads(threads.max(1));
    let checker: Box<dyn Checker<RefreshModel>> = match order {
        Order::BreadthFirst => Box::new(builder.spawn_bfs().join()),
        Order::DepthFirst => {
            let checker = builder.spawn_dfs();
            let mut minutes = 0;
            while !checker.is_done() {
                std::thread::sleep(std::time::Duration::from_millis(200));
                if start.elapsed().as_secs() / 60 > minutes {
                    minutes += 1;
                    eprintln!(
                        "  {minutes} min: {} unique states so far",
                        checker.unique_state_count()
                    );
                }
            }
            Box::new(checker.join())
        }
    };
    let mut counterexamples = Vec::new();
    let mut unreached = Vec::new();
    for p in properties() {
        let found = checker.discovery(p.name).is_some();
        match (p.expectation, found) {
            (stateright::Expectation::Always, true) => {
                counterexamples.push((p.name, shortest_counterexample(&model, p.name)));
            }
            (stateright::Expectation::Sometimes, false) => unreached.push(p.name),
            _ => {}
        }
    }
    Report {
        unique_states: checker.unique_state_count(),
        states: checker.state_count(),
        max_depth: checker.max_depth(),
        elapsed: start.elapsed(),
        counterexamples,
        unreached,
    }
}

/// stateright 0.31 keeps the *last* violating state it visits for an `always` property,
/// so a full run reports a long path. A plain breadth-first search over the same model,
/// stopping at the first state that breaks `property`, gives a shortest counterexample.
fn shortest_counterexample(model: &RefreshModel, property: &'static str) -> Vec<String> {
    use std::collections::{HashSet, VecDeque};
    let condition = properties()
        .into_iter()
        .find(|p| p.name == property)
        .map(|p| p.condition)
        .expect("a known property");
    let mut seen = HashSet::new();
    let mut queue: VecDeque<(State, Vec<Action>)> = model
        .init_states()
        .into_iter()
        .map(|s| (s, Vec::new()))
        .collect();
    let mut actions = Vec::new();
    while let Some((state, path)) = queue.pop_front() {
        if !condition(model, &state) {
            let verdict = state.violation.clone().unwrap_or_default();
            let mut lines: Vec<String> = path
                .iter()
                .enumerate()
                .map(|(i, a)| format!("{:>2}. {}", i + 1, describe(a)))
                .collect();
            lines.push(format!("    => {verdict}"));
            return lines;
        }
        model.actions(&state, &mut actions);
        for action in actions.drain(..) {
            if let Some(next) = model.next_state(&state, action.clone())
                && seen.insert(digest(&next))
            {
                let mut next_path = path.clone();
                next_path.push(action);
                queue.push_back((next, next_path));
            }
        }
    }
    vec![format!(
        "(no counterexample on the second search for {property})"
    )]
}
