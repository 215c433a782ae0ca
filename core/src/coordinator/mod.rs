//! The state machine. Every transition lives in this file, so the whole machine can be
//! read in one place; the containers it keeps its state in (the request table, the
//! command queue, the status set) and its canonical hash live in the submodules.
//!
//! Methods come in the four kinds of quinn-proto's `Connection`: getters (`&self`),
//! `handle_*` for things that happened, mutators for what the application wants, and
//! `poll_*` for what the host must do next.
//!
//! # Rules → code
//!
//! Rule and guarantee numbers are those of `docs/contract.md` (§7 rules, §9 guarantees);
//! each rule's code below carries its number. The table is generated from
//! [`crate::rules::RULES`] (`core/tests/contract.rs` checks it).
//!
//! | rule | name | where |
//! | --- | --- | --- |
//! | 7.1 | Fresh token | [`Engine::dispatch`] |
//! | 7.2 | Proactive refresh | [`Engine::dispatch`], [`Engine::start_cycle`] |
//! | 7.3 | Join, never duplicate | [`Engine::dispatch`] |
//! | 7.4 | Stale 401 | [`Coordinator::refused`], [`Engine::dispatch`] |
//! | 7.5 | Current 401 | [`Coordinator::refused`], [`Engine::dispatch`] |
//! | 7.6 | Replay budget | [`Coordinator::refused`] |
//! | 7.7 | Refresh window: loops, not lifetimes | [`Engine::start_cycle`], [`Session::accepted`] |
//! | 7.8 | Success | [`Coordinator::handle_refresh_succeeded`], [`Engine::release_waiting`] |
//! | 7.9 | Rejected | [`Coordinator::handle_refresh_failed`], [`Coordinator::handle_timeout`], [`Coordinator::end_session`] |
//! | 7.10 | Transient | [`Engine::retry_or_give_up`], [`Coordinator::handle_timeout`] |
//! | 7.11 | Deadline and staleness | [`Coordinator::handle_timeout`], [`Coordinator::handle_refresh_succeeded`], [`Coordinator::handle_refresh_failed`] |
//! | 7.12 | Logout is final | [`Coordinator::end_session`], [`Coordinator::refused`] |
//! | 7.13 | No refresh token | [`Engine::start_cycle`], [`Engine::issue_attempt`] |
//! | 7.14 | One-shot requests | [`Coordinator::refused`] |
//! | 7.15 | Bounded waiting | [`Engine::wait`], [`Engine::expire_waiting`] |
//! | 7.16 | Logged out | [`Coordinator::submit`] |
//! | 7.17 | Transport errors | [`Coordinator::handle_transport_error`] |
//! | 7.18 | Restoring | [`Coordinator::begin_restore`], [`Coordinator::restore_failed`], [`Coordinator::submit`], [`Coordinator::install`] |
//! | 7.19 | Refresh opt-out | [`Coordinator::refused`] |
//! | 7.20 | A refusing endpoint costs the request, not the session | [`Coordinator::refused`] |
//!
//! # The state as types
//!
//! [`Phase`] is `LoggedOut`, `Restoring` or `LoggedIn(Session)`; everything that exists
//! only during a session — the tokens, the refresh [`Cycle`], the refresh window, the list
//! of waiting requests — lives inside [`Session`], so "a refresh while logged out" cannot
//! be written. What only a running cycle knows (its window entry, an abandoned attempt)
//! lives in the cycle's variants ([`Run`]), so it cannot outlive the cycle. A request is
//! in the table only with a place: waiting exactly when its entry says
//! [`RequestState::Waiting`], in flight with the generation it was sent with otherwise
//! (what it is apart from that is its [`Ticket`]); the waiting list is threaded through
//! those entries (FIFO, O(1) unlink on cancel), so there is no second structure to keep
//! in step.

use std::collections::VecDeque;
use std::hash::Hash;

use crate::command::{
    AttemptId, Command, FailReason, Generation, LogoutReason, MAX_TIMESTAMP, RefreshFailure,
    RequestId, RequestOptions, RouteKey, Timestamp,
};
use crate::config::Config;
use crate::credentials::{Credentials, Secret};
use crate::error::{ConfigError, InputError};
#[cfg(feature = "trace")]
use crate::input::Input;
use crate::stats::Stats;
#[cfg(feature = "trace")]
use crate::trace::{Cause, Recorder};

mod hash;
mod outbox;
#[cfg(feature = "trace")]
mod recording;
mod requests;
#[cfg(feature = "trace")]
mod start;
mod status_set;

#[cfg(feature = "trace")]
pub use start::{
    KnownBad, OpenProgress, OpenRequest, OpenState, Start, StartCycle, StartPhase, StartRun,
    StartSession,
};

use outbox::Outbox;
use requests::{KEPT, Requests};
use status_set::StatusSet;

/// Whether the deliberate bug `$fault` is switched on. Always `false` unless the build
/// sets `--cfg reauth_faults` (never a Cargo feature, so no dependent can switch it on),
/// so the hooks below compile to nothing.
#[cfg(reauth_faults)]
macro_rules! fault {
    ($engine:expr, $fault:ident) => {
        $engine.fault == Some(Fault::$fault)
    };
}
#[cfg(not(reauth_faults))]
macro_rules! fault {
    ($engine:expr, $fault:ident) => {
        false
    };
}

/// The machine carries out `cause` from here on: what the flight recorder notes with each
/// command (feature `trace`; nothing without it).
#[cfg(feature = "trace")]
macro_rules! because {
    ($engine:expr, $cause:expr) => {
        $engine.because($cause)
    };
}
#[cfg(not(feature = "trace"))]
macro_rules! because {
    ($engine:expr, $cause:expr) => {
        ()
    };
}

/// The token-refresh coordinator: a deterministic, sans-IO state machine.
///
/// It never reads a clock, performs I/O, spawns threads or draws random numbers; the
/// same inputs always give the same commands. Wrap it in
/// [`SharedCoordinator`](crate::SharedCoordinator) to call it from many threads.
///
/// # Call order (the host's obligations)
///
/// - After **every** input — a mutator ([`login`](Self::login), [`submit`](Self::submit),
///   [`cancel`](Self::cancel), [`force_refresh`](Self::force_refresh),
///   [`logout`](Self::logout)) or a `handle_*` call — the host MUST drain
///   [`poll_command`](Self::poll_command) and carry the commands out in order, then
///   re-arm its one timer from [`poll_timeout`](Self::poll_timeout).
/// - When that timer fires the host MUST call [`handle_timeout`](Self::handle_timeout).
///   Early, late or repeated calls are harmless.
/// - Every `Send`/`Replay` MUST be answered with
///   [`handle_response`](Self::handle_response) or [`cancel`](Self::cancel); every
///   `Refresh` with [`handle_refresh_succeeded`](Self::handle_refresh_succeeded) or
///   [`handle_refresh_failed`](Self::handle_refresh_failed) — or left unanswered, in which
///   case its deadline counts as a transient failure.
/// - `now` is milliseconds on the host's monotonic clock; an earlier `now` than one
///   already seen is clamped, never an error.
///
/// `Clone` copies the state (tokens are shared, not copied): model checkers and tests
/// fork it to explore alternatives. `Hash` feeds the behavioural state into a hasher —
/// two coordinators that hash alike answer every future input alike up to the token
/// texts, which are never hashed (a token is named by the generation it arrived with).
#[derive(Clone, Debug)]
pub struct Coordinator {
    phase: Phase,
    engine: Engine,
}

/// A deliberate bug (only with `RUSTFLAGS="--cfg reauth_faults"`), so the model checker
/// can prove it catches it. Never set that flag in a build that ships.
#[cfg(reauth_faults)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fault {
    /// Rule 4 broken: every 401 is treated as one of the current generation, so a stale
    /// 401 starts a second refresh for one expiry.
    NoGenerationCheck,
    /// Rule 3 / G1 broken: a request that needs a refresh starts another one even while
    /// one is running.
    SecondRefreshWhileRunning,
    /// Rule 12 / G6 broken: a refresh success that arrives after logout logs back in.
    AcceptAfterLogout,
    /// Rule 6 / G5 broken: the per-request replay budget is ignored.
    NoReplayBudget,
    /// Rule 7 broken the v1 way: every refresh cycle counts in the window, also one that
    /// only replaces a token that lived its life, so short-lived tokens log a healthy
    /// session out.
    WindowCountsExpiry,
    /// Rule 9 / G8 broken the v1 way: the rejection of a retry logs out at once, although
    /// an abandoned attempt of the same cycle may still deliver the rotated token.
    LogoutBehindRetry,
    /// Rules 4–6 broken the naive way: every refusal is handed back to its caller as it
    /// is — no refresh, no replay.
    HandBackRefusal,
}

/// Logged out, restoring (stored credentials are being read; requests wait for them), or
/// a session with everything that exists only during one.
// The session is kept inline: a coordinator is logged in nearly all its life, and a box
// would cost an allocation per login and an indirection on every input.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
enum Phase {
    LoggedOut,
    Restoring(WaitList),
    LoggedIn(Session),
}

/// One session: from `login` to `Logout`.
#[derive(Clone, Debug)]
struct Session {
    access_token: Secret,
    refresh_token: Option<Secret>,
    generation: Generation,
    /// The generation the session started with. A request in flight with an older one was
    /// sent in a session that has ended (rule 12).
    first_generation: Generation,
    /// The generation whose credentials brought the current refresh token (for `Hash`).
    refresh_token_from: Generation,
    /// When the current credentials arrived.
    received_at: Timestamp,
    /// When the access token expires; `None` if it never does.
    expires_at: Option<Timestamp>,
    /// From this time on the token is inside its expiry skew; `None` if it never expires.
    refresh_at: Option<Timestamp>,
    /// Why the current token must not be sent again (G3), if it must not.
    bad: Option<Bad>,
    cycle: Cycle,
    /// Attempts numbered from here on were issued with the current generation: their
    /// success is adopted (rule 11). Moves on every generation change.
    adoptable_from: u64,
    /// Start times of the refresh cycles inside the current window (rule 7).
    window: VecDeque<Timestamp>,
    /// The window entry of the cycle that brought the current credentials, if it counted:
    /// taken out of the window once a request is accepted with them (rule 7, v2).
    counted_start: Option<Timestamp>,
    /// Routes that refused the current token although it was fresh for them (rule 20).
    refusing: Vec<RouteKey>,
    /// Requests waiting for a refresh, oldest first (threaded through the request table).
    waiting: WaitList,
}

impl Session {
    /// Rule 7 (v2): a request was accepted with the current token: the cycle that brought
    /// it, if it counted, leaves the window.
    #[cold]
    fn accepted(&mut self) {
        if let Some(start) = self.counted_start.take()
            && let Some(i) = self.window.iter().position(|&t| t == start)
        {
            self.window.remove(i);
            // An idle coordinator holds no window memory (one allocation per refresh
            // cycle instead, which is rare).
            if self.window.is_empty() {
                self.window = VecDeque::new();
            }
        }
    }

    /// Whether the current token may not be sent at `now`, and why (§4.6, rules 2, 13).
    fn need(&self, now: Timestamp) -> Option<Trigger> {
        match self.bad {
            Some(Bad::Refused) => Some(Trigger::Refused),
            Some(Bad::GaveUp) => Some(Trigger::Retry),
            None => {
                // Rule 13: without a refresh token the skew buys nothing, so the token is
                // used until it expires.
                let at = if self.refresh_token.is_some() {
                    self.refresh_at
                } else {
                    self.expires_at
                };
                at.is_some_and(|at| now >= at).then_some(Trigger::Expiry)
            }
        }
    }
}

/// Why a generation is known bad (§4.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Bad {
    /// A request sent with it got a refresh status, or the host forced a refresh.
    Refused,
    /// The last refresh cycle gave up (rule 10).
    GaveUp,
}

/// What a refresh cycle is started for; decides whether it counts in the window (rule 7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Trigger {
    /// The token was refused (or forced bad): counts.
    Refused,
    /// The token reached its expiry skew: counts only if it arrived less than
    /// `min_token_age_ms` ago.
    Expiry,
    /// The previous cycle gave up on a network problem: never counts (a network problem
    /// never logs out).
    Retry,
}

/// The refresh cycle. Every state but `Idle` is "a refresh is running" (rule 3), and
/// carries what only a running cycle knows ([`Run`]), so none of it outlives the cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Cycle {
    Idle,
    InFlight {
        run: Run,
        attempt: AttemptId,
        /// Transient failures already retried in this cycle.
        retries: u32,
        deadline: Timestamp,
    },
    Backoff {
        run: Run,
        retries: u32,
        until: Timestamp,
    },
    /// The active attempt was rejected while an abandoned one may still succeed: wait
    /// for it until `until`, then end the session (rule 9).
    Held {
        run: Run,
        until: Timestamp,
    },
}

/// What a running cycle knows besides its stage (16 bytes: a cycle stays small).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Run {
    /// Its window entry — its start time — if `counted`; 0 otherwise, so that equal runs
    /// compare and hash alike.
    start: Timestamp,
    /// It counted in the window (rule 7).
    counted: bool,
    /// An attempt of it was abandoned at its deadline without an answer: its success may
    /// still arrive (rule 9 holds a rejection for it).
    abandoned: bool,
}

impl Run {
    /// A run starting at `now`, counted in the window or not.
    fn new(now: Timestamp, counted: bool) -> Self {
        Run {
            start: if counted { now } else { 0 },
            counted,
            abandoned: false,
        }
    }

    /// Its window entry, if it counted.
    fn window_entry(self) -> Option<Timestamp> {
        self.counted.then_some(self.start)
    }
}

impl Cycle {
    fn is_running(self) -> bool {
        !matches!(self, Cycle::Idle)
    }

    /// The running cycle's bookkeeping; `None` when idle.
    fn run(self) -> Option<Run> {
        match self {
            Cycle::Idle => None,
            Cycle::InFlight { run, .. } | Cycle::Backoff { run, .. } | Cycle::Held { run, .. } => {
                Some(run)
            }
        }
    }

    fn deadline(self) -> Option<Timestamp> {
        match self {
            Cycle::Idle => None,
            Cycle::InFlight { deadline, .. } => Some(deadline),
            Cycle::Backoff { until, .. } | Cycle::Held { until, .. } => Some(until),
        }
    }
}

/// The ends of the waiting list.
#[derive(Clone, Copy, Debug, Default)]
struct WaitList {
    head: Option<Linked>,
    tail: Option<Linked>,
    len: u32,
}

/// A waiting request as a link of the waiting list: its id, never 0 (ids start at 1), so
/// that an absent link costs no space and a request stays 40 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Linked(std::num::NonZeroU64);

impl Linked {
    fn of(id: RequestId) -> Option<Linked> {
        std::num::NonZeroU64::new(id.0).map(Linked)
    }

    fn id(self) -> RequestId {
        RequestId(self.0.get())
    }
}

/// What the core keeps of one open request: what it is and how far it got, and where it
/// is — a request enters the table only once it waits or goes out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Request {
    ticket: Ticket,
    state: RequestState,
}

/// A request apart from where it is: its options and how far it got.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Ticket {
    replayable: bool,
    /// Whether a refresh status for it may start or wait for a refresh (rule 19).
    refresh: bool,
    replays: u8,
    progress: Progress,
    /// The route it goes to, if the host named it (rule 20).
    route: Option<RouteKey>,
}

/// How far a request got (one byte, so that a request stays 40 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Progress {
    /// Never went out (its first transmission is a `Send`).
    New,
    /// Went out (any further one is a `Replay`).
    Sent,
    /// Its own refusal of the current generation made it wait for a refresh.
    Refused,
    /// Went out again with the token that refresh brought (rule 20: if that token is
    /// refused for it too, the refusal is the route's, not the token's).
    Fresh,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum RequestState {
    /// Waiting for a refresh; `prev`/`next` link the session's waiting list.
    Waiting {
        deadline: Timestamp,
        prev: Option<Linked>,
        next: Option<Linked>,
    },
    /// Sent with `generation`; a response is due.
    InFlight { generation: Generation },
}

/// A session ends: waiting requests fail with `fail`, then `Logout { reason }`.
#[derive(Clone, Copy, Debug)]
struct Ending {
    reason: LogoutReason,
    fail: FailReason,
}

/// Everything outside the phase: configuration, clock, counters, the request table and
/// the outputs. Methods that need the session take it as an argument, so they can only
/// be called while one exists.
#[derive(Clone, Debug)]
struct Engine {
    config: Config,
    /// `config.refresh_statuses` as a bit set (one test per response instead of a scan).
    refresh_statuses: StatusSet,
    /// Largest `now` seen; earlier times are clamped to it.
    now: Timestamp,
    next_request: u64,
    next_generation: u64,
    next_attempt: u64,
    requests: Requests,
    commands: Outbox,
    stats: Stats,
    /// The rule the machine is carrying out: what the recorder notes with each command.
    #[cfg(feature = "trace")]
    cause: Cause,
    /// The flight recorder, when on (`Coordinator::record`).
    #[cfg(feature = "trace")]
    recorder: Option<Box<Recorder>>,
    #[cfg(reauth_faults)]
    fault: Option<Fault>,
}

impl Coordinator {
    /// A logged-out coordinator. Fails if `config` is outside its documented ranges.
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Coordinator {
            phase: Phase::LoggedOut,
            engine: Engine {
                refresh_statuses: StatusSet::of(&config.refresh_statuses),
                config,
                now: 0,
                next_request: 1,
                next_generation: 1,
                next_attempt: 1,
                // Room for one request and one command from the start: an idle
                // coordinator holds that much and a request cycle allocates nothing.
                requests: Requests {
                    slots: VecDeque::with_capacity(KEPT),
                    ..Requests::default()
                },
                commands: Outbox {
                    buffer: Vec::with_capacity(KEPT),
                    ..Outbox::default()
                },
                stats: Stats::default(),
                #[cfg(feature = "trace")]
                cause: Cause::Rule(0),
                #[cfg(feature = "trace")]
                recorder: None,
                #[cfg(reauth_faults)]
                fault: None,
            },
        })
    }

    /// Switches on one deliberate bug (only with `--cfg reauth_faults`).
    #[cfg(reauth_faults)]
    pub fn inject_fault(&mut self, fault: Fault) {
        self.engine.fault = Some(fault);
    }

    // ----- getters -------------------------------------------------------------------

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.engine.config
    }

    /// Counters since creation.
    pub fn stats(&self) -> &Stats {
        &self.engine.stats
    }

    /// The largest `now` seen so far.
    pub fn now(&self) -> Timestamp {
        self.engine.now
    }

    /// Whether a session exists (between `login` and `Logout`).
    pub fn is_logged_in(&self) -> bool {
        matches!(self.phase, Phase::LoggedIn(_))
    }

    /// The generation of the current credentials, if logged in.
    pub fn generation(&self) -> Option<Generation> {
        self.session().map(|s| s.generation)
    }

    /// Whether a refresh cycle is running (a call in flight or a backoff).
    pub fn is_refreshing(&self) -> bool {
        self.session().is_some_and(|s| s.cycle.is_running())
    }

    /// The refresh attempt whose result the core is waiting for, if any.
    pub fn active_attempt(&self) -> Option<AttemptId> {
        match self.session()?.cycle {
            Cycle::InFlight { attempt, .. } => Some(attempt),
            _ => None,
        }
    }

    /// Requests waiting for a refresh, or for stored credentials while restoring.
    pub fn waiting(&self) -> usize {
        match &self.phase {
            Phase::LoggedOut => 0,
            Phase::Restoring(waiting) => waiting.len as usize,
            Phase::LoggedIn(s) => s.waiting.len as usize,
        }
    }

    /// Whether stored credentials are being restored ([`begin_restore`](Self::begin_restore)
    /// was called and neither `login` nor [`restore_failed`](Self::restore_failed) yet).
    pub fn is_restoring(&self) -> bool {
        matches!(self.phase, Phase::Restoring(_))
    }

    /// Requests the core knows: waiting or awaiting a response.
    pub fn open_requests(&self) -> usize {
        self.engine.requests.len()
    }

    /// Whether `id` awaits a response (it went out and nothing was reported yet).
    pub fn is_in_flight(&self, id: RequestId) -> bool {
        self.engine
            .requests
            .get(id)
            .is_some_and(|r| matches!(r.state, RequestState::InFlight { .. }))
    }

    /// The ids awaiting a response, in increasing order (for tests and diagnostics;
    /// allocates). For the test kit and the model checker: not part of the documented API.
    #[doc(hidden)]
    pub fn in_flight_ids(&self) -> Vec<RequestId> {
        self.engine
            .requests
            .iter()
            .filter(|(_, r)| matches!(r.state, RequestState::InFlight { .. }))
            .map(|(id, _)| id)
            .collect()
    }

    /// The next attempt id the core will issue; every smaller non-zero id was issued. For
    /// the test kit and the model checker: not part of the documented API.
    #[doc(hidden)]
    pub fn next_attempt(&self) -> AttemptId {
        AttemptId(self.engine.next_attempt)
    }

    fn session(&self) -> Option<&Session> {
        match &self.phase {
            Phase::LoggedIn(s) => Some(s),
            Phase::LoggedOut | Phase::Restoring(_) => None,
        }
    }

    // ----- poll ----------------------------------------------------------------------

    /// The next command to carry out, in order. The host MUST drain this after every
    /// input.
    #[must_use = "every command must be carried out by the host"]
    #[inline]
    pub fn poll_command(&mut self) -> Option<Command> {
        self.engine.commands.pop_front()
    }

    /// All pending commands, in order.
    pub fn drain_commands(&mut self) -> impl Iterator<Item = Command> + '_ {
        std::iter::from_fn(|| self.poll_command())
    }

    /// Appends all pending commands to `batch`, in order (no allocation when `batch` has
    /// room).
    pub fn drain_commands_into(&mut self, batch: &mut Vec<Command>) {
        self.engine.commands.drain_into(batch);
    }

    /// The earliest time at which [`handle_timeout`](Self::handle_timeout) has work to
    /// do, or `None`. Call it after every input and arm one timer for it; an early or
    /// spurious `handle_timeout` is harmless.
    #[must_use = "arm a timer for this deadline"]
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let session = match &self.phase {
            Phase::LoggedOut => return None,
            Phase::Restoring(waiting) => return self.engine.waiting_deadline(waiting),
            Phase::LoggedIn(session) => session,
        };
        let wait = self.engine.waiting_deadline(&session.waiting);
        match (session.cycle.deadline(), wait) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    // ----- mutators: what the application wants ---------------------------------------

    /// Starts a session, or replaces the credentials from outside (re-login, another
    /// process rotated them). A running refresh becomes stale (its result will be
    /// ignored); waiting requests go out with the new token (also those that waited while
    /// restoring, rule 18) — unless it is already inside its expiry skew, in which case
    /// they wait on and one `Refresh` starts. Emits no `StoreCredentials`: the host already
    /// holds these credentials.
    pub fn login(&mut self, now: Timestamp, credentials: Credentials) -> Result<(), InputError> {
        #[cfg(feature = "trace")]
        if self.engine.recording() {
            return self.recorded(now, Input::Login { credentials }).map(drop);
        }
        check_time(now)?;
        credentials.validate()?;
        self.engine.advance(now);
        // Rule 18: requests that waited while restoring go out; otherwise those that
        // waited for a refresh go out with the credentials logged in.
        because!(
            self.engine,
            match self.phase {
                Phase::Restoring(_) => Cause::Rule(18),
                _ => Cause::LoggedIn,
            }
        );
        self.install(credentials);
        if let Phase::LoggedIn(session) = &mut self.phase {
            match session.need(self.engine.now) {
                // G3: a token that arrives already inside its skew (credentials restored
                // after they expired in storage) is not sent; the waiting requests wait on
                // for one refresh (rule 2).
                Some(trigger) if session.waiting.len > 0 => {
                    let ending = self.engine.start_cycle(session, trigger);
                    self.finish(ending);
                }
                _ => self.engine.release_waiting(session, false),
            }
        }
        Ok(())
    }

    /// A request wants to go out; returns its id. Emits `Send` at once when the token is
    /// fresh; queues it (and starts one refresh if none runs) when the token is known bad
    /// or inside its expiry skew; queues it while restoring (rule 18);
    /// `Fail { NotLoggedIn }` without a session. The only error is a `now` past
    /// [`MAX_TIMESTAMP`].
    pub fn submit(
        &mut self,
        now: Timestamp,
        options: RequestOptions,
    ) -> Result<RequestId, InputError> {
        #[cfg(feature = "trace")]
        if self.engine.recording() {
            return self
                .recorded(now, Input::Submit { options })
                .map(|id| id.unwrap_or(RequestId(0)));
        }
        check_time(now)?;
        let engine = &mut self.engine;
        engine.advance(now);
        let id = RequestId(engine.next_request);
        engine.next_request += 1;
        engine.stats.submitted += 1;
        let request = Ticket {
            replayable: options.replayable,
            refresh: options.refresh,
            replays: 0,
            progress: Progress::New,
            route: options.route,
        };
        let session = match &mut self.phase {
            Phase::LoggedIn(session) => session,
            Phase::Restoring(waiting) => {
                // Rule 18: wait for the stored credentials.
                engine.wait(waiting, id, request);
                return Ok(id);
            }
            Phase::LoggedOut => {
                because!(engine, Cause::Rule(16));
                engine.fail(id, FailReason::NotLoggedIn);
                return Ok(id);
            }
        };
        because!(engine, Cause::Rule(1));
        let ending = engine.dispatch(session, id, request);
        self.finish(ending);
        Ok(id)
    }

    /// The caller no longer wants `id`. A waiting request is dropped silently; one in
    /// flight is forgotten (its late response is `Err(UnknownRequest)`, which the host may
    /// ignore). Never cancels a refresh.
    pub fn cancel(&mut self, now: Timestamp, id: RequestId) -> Result<(), InputError> {
        #[cfg(feature = "trace")]
        if self.engine.recording() {
            return self.recorded(now, Input::Cancel { id }).map(drop);
        }
        check_time(now)?;
        let request = *self
            .engine
            .requests
            .get(id)
            .ok_or(InputError::UnknownRequest(id))?;
        self.engine.advance(now);
        if let RequestState::Waiting { prev, next, .. } = request.state {
            match &mut self.phase {
                Phase::LoggedIn(session) => self.engine.unlink(&mut session.waiting, prev, next),
                Phase::Restoring(waiting) => self.engine.unlink(waiting, prev, next),
                Phase::LoggedOut => {}
            }
        }
        self.engine.requests.remove(id);
        self.engine.stats.cancelled += 1;
        Ok(())
    }

    /// The host knows the token is bad (a push said it was revoked): the next request
    /// waits for a refresh instead of using it. Does nothing while logged out or while a
    /// refresh already runs (its result replaces the token anyway).
    pub fn force_refresh(&mut self, now: Timestamp) -> Result<(), InputError> {
        #[cfg(feature = "trace")]
        if self.engine.recording() {
            return self.recorded(now, Input::ForceRefresh).map(drop);
        }
        check_time(now)?;
        self.engine.advance(now);
        if let Phase::LoggedIn(session) = &mut self.phase
            && !session.cycle.is_running()
        {
            session.bad = Some(Bad::Refused);
        }
        Ok(())
    }

    /// The user logs out: waiting requests `Fail { LoggedOut }`, then `Logout { Requested }`.
    /// Requests in flight still get their response (`Complete`, or `Fail { LoggedOut }`
    /// for a 401). While restoring, it ends the restoring the same way (the host must not
    /// log in with what it was reading). Does nothing when already logged out.
    pub fn logout(&mut self, now: Timestamp) -> Result<(), InputError> {
        #[cfg(feature = "trace")]
        if self.engine.recording() {
            return self.recorded(now, Input::Logout).map(drop);
        }
        check_time(now)?;
        self.engine.advance(now);
        because!(
            self.engine,
            match self.phase {
                Phase::Restoring(_) => Cause::Rule(18),
                _ => Cause::Rule(12),
            }
        );
        self.end_session(Ending {
            reason: LogoutReason::Requested,
            fail: FailReason::LoggedOut,
        });
        Ok(())
    }

    /// The host starts reading stored credentials (an asynchronous keychain read at
    /// start-up): until [`login`](Self::login) or [`restore_failed`](Self::restore_failed),
    /// submitted requests wait for them instead of failing `NotLoggedIn` — at most
    /// `max_pending` of them, each at most `max_wait_ms` (rule 18). Does nothing while a
    /// session exists or a restore is already under way.
    pub fn begin_restore(&mut self, now: Timestamp) -> Result<(), InputError> {
        #[cfg(feature = "trace")]
        if self.engine.recording() {
            return self.recorded(now, Input::BeginRestore).map(drop);
        }
        check_time(now)?;
        self.engine.advance(now);
        if let Phase::LoggedOut = self.phase {
            self.phase = Phase::Restoring(WaitList::default());
        }
        Ok(())
    }

    /// Nothing was stored, or it could not be read: the requests that waited for it
    /// `Fail { NotLoggedIn }`, FIFO, and the coordinator is logged out (no `Logout`: there
    /// was no session). Does nothing unless restoring.
    pub fn restore_failed(&mut self, now: Timestamp) -> Result<(), InputError> {
        #[cfg(feature = "trace")]
        if self.engine.recording() {
            return self.recorded(now, Input::RestoreFailed).map(drop);
        }
        check_time(now)?;
        self.engine.advance(now);
        if let Phase::Restoring(mut waiting) = self.phase {
            self.phase = Phase::LoggedOut;
            because!(self.engine, Cause::Rule(18));
            self.engine
                .fail_waiting(&mut waiting, FailReason::NotLoggedIn);
        }
        Ok(())
    }

    // ----- handle_*: things that happened ---------------------------------------------

    /// The last `Send`/`Replay` of `id` failed without an HTTP status (connection reset,
    /// DNS, TLS, a timeout of the host's HTTP client): `Fail { Transport }` ends it, and
    /// the host hands the caller the error it got (rule 17). Never retried by the core
    /// (only the host knows whether the request is idempotent) and never a reason to
    /// refresh.
    pub fn handle_transport_error(
        &mut self,
        now: Timestamp,
        id: RequestId,
    ) -> Result<(), InputError> {
        #[cfg(feature = "trace")]
        if self.engine.recording() {
            return self.recorded(now, Input::TransportError { id }).map(drop);
        }
        check_time(now)?;
        let request = self
            .engine
            .requests
            .get(id)
            .ok_or(InputError::UnknownRequest(id))?;
        if !matches!(request.state, RequestState::InFlight { .. }) {
            return Err(InputError::NotInFlight(id));
        }
        self.engine.advance(now);
        because!(self.engine, Cause::Rule(17));
        self.engine.fail(id, FailReason::Transport);
        Ok(())
    }

    /// The host got HTTP `status` for the last `Send`/`Replay` of `id`.
    pub fn handle_response(
        &mut self,
        now: Timestamp,
        id: RequestId,
        status: u16,
    ) -> Result<(), InputError> {
        #[cfg(feature = "trace")]
        if self.engine.recording() {
            return self.recorded(now, Input::Response { id, status }).map(drop);
        }
        check_time(now)?;
        if !(100..=599).contains(&status) {
            return Err(InputError::InvalidStatus(status));
        }
        let engine = &mut self.engine;
        let request = *engine
            .requests
            .get(id)
            .ok_or(InputError::UnknownRequest(id))?;
        let RequestState::InFlight { generation } = request.state else {
            return Err(InputError::NotInFlight(id));
        };
        engine.advance(now);
        if engine.refresh_statuses.contains(status) {
            self.refused(id, request, generation);
            return Ok(());
        }
        if status < 500
            && let Phase::LoggedIn(session) = &mut self.phase
            && session.counted_start.is_some()
            && generation == session.generation
        {
            // Rule 7 (v2): the server accepted the token the counted cycle brought, so
            // that cycle was no loop.
            session.accepted();
        }
        because!(engine, Cause::Answered);
        engine.complete(id);
        Ok(())
    }

    /// `handle_response` with one of the refresh statuses for `id`, in flight with
    /// `generation` (rules 4, 5, 6, 12, 14, 19, 20).
    fn refused(&mut self, id: RequestId, mut request: Request, generation: Generation) {
        let engine = &mut self.engine;
        engine.stats.unauthorized_responses += 1;
        if !request.ticket.refresh || fault!(engine, HandBackRefusal) {
            // Rule 19: the caller gets the refusal; no refresh, the token stays good.
            because!(engine, Cause::Rule(19));
            engine.complete(id);
            return;
        }
        let session = match &mut self.phase {
            Phase::LoggedIn(s) if generation >= s.first_generation => s,
            _ => {
                // Rule 12: a 401 from a session that has ended is never replayed.
                because!(engine, Cause::Rule(12));
                engine.fail(id, FailReason::LoggedOut);
                return;
            }
        };
        let current = generation == session.generation || fault!(engine, NoGenerationCheck);
        let exhausted = u32::from(request.ticket.replays) >= engine.config.max_replays_per_request
            && !fault!(engine, NoReplayBudget);
        if current {
            // Rule 20: the token is refused for this request although it works — the
            // route refused it before, or it is fresh from a refresh this request's own
            // refusal asked for and the replay budget is spent. The request's cost, not
            // the session's: the token is not marked bad and no refresh starts.
            let route_refuses = request
                .ticket
                .route
                .is_some_and(|route| session.refusing.contains(&route));
            if route_refuses || (request.ticket.progress == Progress::Fresh && exhausted) {
                if let Some(route) = request.ticket.route
                    && !route_refuses
                    && session.refusing.len() < MAX_REFUSING_ROUTES
                {
                    session.refusing.push(route);
                }
                because!(engine, Cause::Rule(20));
                if request.ticket.replayable {
                    engine.fail(id, FailReason::Unauthorized);
                } else {
                    engine.complete(id);
                }
                return;
            }
            // Rule 5 / G3: never send this generation again.
            session.bad = Some(Bad::Refused);
        }
        if !request.ticket.replayable {
            // Rule 14: the caller gets the 401; a refresh still starts for the others.
            because!(engine, Cause::Rule(14));
            engine.complete(id);
            if current && !session.cycle.is_running() {
                let ending = engine.start_cycle(session, Trigger::Refused);
                self.finish(ending);
            }
            return;
        }
        if exhausted {
            // Rule 6: rejected even with a fresh token. The generation stays known bad,
            // so the next request refreshes first.
            because!(engine, Cause::Rule(6));
            engine.fail(id, FailReason::Unauthorized);
            return;
        }
        request.ticket.replays = request.ticket.replays.saturating_add(1);
        if current {
            // It waits for the refresh its refusal asks for (rule 20 watches its replay).
            request.ticket.progress = Progress::Refused;
        }
        // Rule 4 (stale: replay now unless a refresh is needed or running) and rule 5
        // (current: the generation is known bad, so dispatch queues it and starts one
        // refresh unless one runs).
        because!(engine, Cause::Rule(if current { 5 } else { 4 }));
        let ending = engine.dispatch(session, id, request.ticket);
        self.finish(ending);
    }

    /// The refresh call `attempt` returned `credentials`. Adopted iff the attempt was
    /// started with the current generation in the current session; otherwise ignored
    /// (`Ok`, no commands, counted in [`Stats::refresh_results_ignored`]). On adoption:
    /// `StoreCredentials`, then every waiting request goes out in FIFO order.
    pub fn handle_refresh_succeeded(
        &mut self,
        now: Timestamp,
        attempt: AttemptId,
        credentials: Credentials,
    ) -> Result<(), InputError> {
        #[cfg(feature = "trace")]
        if self.engine.recording() {
            return self
                .recorded(
                    now,
                    Input::RefreshSucceeded {
                        attempt,
                        credentials,
                    },
                )
                .map(drop);
        }
        check_time(now)?;
        self.engine.check_attempt(attempt)?;
        credentials.validate()?;
        self.engine.advance(now);
        let credentials = match &self.phase {
            // Rule 11: adopted iff issued with the current generation of this session.
            Phase::LoggedIn(session) if attempt.0 >= session.adoptable_from => Credentials {
                // §4.4: a success without a refresh token keeps the previous one.
                refresh_token: credentials
                    .refresh_token
                    .or_else(|| session.refresh_token.clone()),
                ..credentials
            },
            Phase::LoggedOut if fault!(self.engine, AcceptAfterLogout) => credentials,
            _ => {
                self.engine.stats.refresh_results_ignored += 1;
                return Ok(());
            }
        };
        let counted = match &self.phase {
            Phase::LoggedIn(session) => session.cycle.run().and_then(Run::window_entry),
            _ => None,
        };
        // Rule 11 adopts a late success of an abandoned attempt; rule 8 the active one's.
        #[cfg(feature = "trace")]
        let late = match &self.phase {
            Phase::LoggedIn(_) => self.active_attempt() != Some(attempt),
            _ => true,
        };
        because!(self.engine, Cause::Rule(if late { 11 } else { 8 }));
        let generation = self.install(credentials.clone());
        self.engine.stats.refresh_succeeded += 1;
        // `install` always leaves a session.
        if let Phase::LoggedIn(session) = &mut self.phase {
            session.counted_start = counted;
            self.engine.emit(Command::StoreCredentials {
                credentials,
                generation,
                expires_at: session.expires_at,
            });
            // Rule 8, with the token the refresh brought (rule 20 watches the replays).
            self.engine.release_waiting(session, true);
        }
        Ok(())
    }

    /// The refresh call `attempt` failed. Acted on only for the active attempt; a failure
    /// of any other attempt is ignored (`Ok`, no commands, counted). A rejection ends the
    /// session (rule 9) — unless an earlier attempt of the cycle was abandoned at its
    /// deadline and may still deliver a rotated token: then it is held for
    /// `refresh_timeout_ms` and stands only if nothing is adopted by then.
    pub fn handle_refresh_failed(
        &mut self,
        now: Timestamp,
        attempt: AttemptId,
        failure: RefreshFailure,
    ) -> Result<(), InputError> {
        #[cfg(feature = "trace")]
        if self.engine.recording() {
            return self
                .recorded(now, Input::RefreshFailed { attempt, failure })
                .map(drop);
        }
        check_time(now)?;
        self.engine.check_attempt(attempt)?;
        let engine = &mut self.engine;
        engine.advance(now);
        let (session, run, retries) = match &mut self.phase {
            Phase::LoggedIn(session) => match session.cycle {
                Cycle::InFlight {
                    run,
                    attempt: active,
                    retries,
                    ..
                } if active == attempt => (session, run, retries),
                // Rule 11: a failure of any attempt but the active one is ignored.
                _ => {
                    engine.stats.refresh_results_ignored += 1;
                    return Ok(());
                }
            },
            Phase::LoggedOut | Phase::Restoring(_) => {
                engine.stats.refresh_results_ignored += 1;
                return Ok(());
            }
        };
        match failure {
            RefreshFailure::Rejected => {
                engine.stats.refresh_rejected += 1;
                if run.abandoned && !fault!(engine, LogoutBehindRetry) {
                    // Rule 9 / G8: the server may have rotated the refresh token for an
                    // abandoned attempt of this cycle and refused the retry's copy of the
                    // old one. Wait (bounded) for that attempt's late success.
                    session.cycle = Cycle::Held {
                        run,
                        until: deadline(engine.now, engine.config.refresh_timeout_ms),
                    };
                } else {
                    // Rule 9.
                    because!(engine, Cause::Rule(9));
                    self.end_session(Ending {
                        reason: LogoutReason::RefreshRejected,
                        fail: FailReason::RefreshRejected,
                    });
                }
            }
            RefreshFailure::Transient { retry_after_ms } => {
                // Rule 10.
                because!(engine, Cause::Rule(10));
                engine.stats.refresh_transient += 1;
                engine.retry_or_give_up(session, run, retries, retry_after_ms);
            }
        }
        Ok(())
    }

    /// Time passed: fails requests that waited past `max_wait_ms` (FIFO), then fires the
    /// refresh deadline (a transient failure) or the end of a backoff (the next
    /// `Refresh`). Early or repeated calls are harmless.
    pub fn handle_timeout(&mut self, now: Timestamp) -> Result<(), InputError> {
        #[cfg(feature = "trace")]
        if self.engine.recording() {
            return self.recorded(now, Input::Timeout).map(drop);
        }
        check_time(now)?;
        let engine = &mut self.engine;
        engine.advance(now);
        let session = match &mut self.phase {
            Phase::LoggedIn(session) => session,
            Phase::Restoring(waiting) => {
                engine.expire_waiting(waiting);
                return Ok(());
            }
            Phase::LoggedOut => return Ok(()),
        };
        // Rule 15: waiting too long.
        engine.expire_waiting(&mut session.waiting);
        match session.cycle {
            Cycle::InFlight {
                run,
                retries,
                deadline,
                ..
            } if deadline <= engine.now => {
                // Rule 11: the attempt is abandoned; its late success may still be
                // adopted, its late failure is ignored.
                let run = Run {
                    abandoned: true,
                    ..run
                };
                because!(engine, Cause::Rule(10));
                engine.stats.refresh_timeouts += 1;
                engine.stats.refresh_transient += 1;
                engine.retry_or_give_up(session, run, retries, None);
            }
            Cycle::Backoff {
                run,
                retries,
                until,
            } if until <= engine.now => {
                // Rule 10: the backoff is over.
                because!(engine, Cause::Rule(10));
                let ending = engine.issue_attempt(session, run, retries);
                self.finish(ending);
            }
            Cycle::Held { until, .. } if until <= engine.now => {
                // Rule 9: no abandoned attempt delivered in time; the rejection stands.
                because!(self.engine, Cause::Rule(9));
                self.end_session(Ending {
                    reason: LogoutReason::RefreshRejected,
                    fail: FailReason::RefreshRejected,
                });
            }
            _ => {}
        }
        Ok(())
    }

    // ----- transitions on the phase ------------------------------------------------------

    /// Accepts credentials as the session's new ones (starting a session if there is
    /// none); returns their generation. Any running refresh becomes stale.
    fn install(&mut self, credentials: Credentials) -> Generation {
        let engine = &mut self.engine;
        let generation = Generation(engine.next_generation);
        engine.next_generation += 1;
        let now = engine.now;
        // §3.5: a lifetime past the end of the clock is cut there, so no sum overflows.
        let lifetime = credentials.expires_in_ms.map(|l| l.min(MAX_TIMESTAMP));
        let expires_at = lifetime.map(|lifetime| deadline(now, lifetime));
        let refresh_at = lifetime.map(|lifetime| {
            // Rule 2: the skew is at most half the lifetime, so short-lived tokens are
            // still used.
            let skew = engine.config.expiry_skew_ms.min(lifetime / 2);
            deadline(now, lifetime - skew)
        });
        let adoptable_from = engine.next_attempt;
        #[cfg(feature = "trace")]
        if let Some(recorder) = engine.recorder.as_mut() {
            // §4.4: a success without a refresh token keeps the one in use.
            let kept = match &self.phase {
                Phase::LoggedIn(s) => credentials.refresh_token == s.refresh_token,
                _ => false,
            };
            recorder.installed(kept);
        }
        match &mut self.phase {
            Phase::LoggedIn(session) => {
                if credentials.refresh_token != session.refresh_token {
                    session.refresh_token_from = generation;
                }
                session.access_token = credentials.access_token;
                session.refresh_token = credentials.refresh_token;
                session.generation = generation;
                session.received_at = now;
                session.expires_at = expires_at;
                session.refresh_at = refresh_at;
                session.bad = None;
                session.cycle = Cycle::Idle;
                session.counted_start = None;
                session.refusing.clear();
                session.adoptable_from = adoptable_from;
            }
            phase @ (Phase::LoggedOut | Phase::Restoring(_)) => {
                // Rule 18: requests that waited while restoring wait on in the session.
                let waiting = match phase {
                    Phase::Restoring(waiting) => *waiting,
                    _ => WaitList::default(),
                };
                *phase = Phase::LoggedIn(Session {
                    access_token: credentials.access_token,
                    refresh_token: credentials.refresh_token,
                    generation,
                    first_generation: generation,
                    refresh_token_from: generation,
                    received_at: now,
                    expires_at,
                    refresh_at,
                    bad: None,
                    cycle: Cycle::Idle,
                    adoptable_from,
                    window: VecDeque::new(),
                    counted_start: None,
                    refusing: Vec::new(),
                    waiting,
                });
            }
        }
        generation
    }

    /// Ends the session, if any (rules 9, 12, 13, 7): waiting requests fail, then
    /// `Logout`. Dropping the session drops its tokens, which zeroizes them.
    /// A `logout` while restoring ends the restoring the same way.
    fn end_session(&mut self, ending: Ending) {
        let mut waiting = match std::mem::replace(&mut self.phase, Phase::LoggedOut) {
            Phase::LoggedIn(session) => session.waiting,
            Phase::Restoring(waiting) => waiting,
            Phase::LoggedOut => return,
        };
        // The caller said why for a requested logout or a rejection: rule 9 or 12 (or 18
        // while restoring).
        match ending.reason {
            LogoutReason::NoRefreshToken => because!(self.engine, Cause::Rule(13)),
            LogoutReason::ExcessiveRefresh => because!(self.engine, Cause::Rule(7)),
            LogoutReason::Requested | LogoutReason::RefreshRejected => {}
        }
        self.engine.fail_waiting(&mut waiting, ending.fail);
        self.engine.stats.logouts += 1;
        self.engine.emit(Command::Logout {
            reason: ending.reason,
        });
    }

    fn finish(&mut self, ending: Option<Ending>) {
        if let Some(ending) = ending {
            self.end_session(ending);
        }
    }
}

/// §3.5: `duration` after `now`, or the end of the clock if that comes first. Both are at
/// most `MAX_TIMESTAMP`, so the sum cannot overflow, and a deadline past the end of the
/// clock fires at its end instead of never.
fn deadline(now: Timestamp, duration: u64) -> Timestamp {
    (now + duration.min(MAX_TIMESTAMP)).min(MAX_TIMESTAMP)
}

/// §3.5: a `now` past the end of the clock is refused (G9: nothing changes).
fn check_time(now: Timestamp) -> Result<(), InputError> {
    if now > MAX_TIMESTAMP {
        Err(InputError::InvalidTime(now))
    } else {
        Ok(())
    }
}

impl Engine {
    /// Queues `command`.
    #[cfg(not(feature = "trace"))]
    #[inline(always)]
    fn emit(&mut self, command: Command) {
        self.commands.push_back(command);
    }

    fn advance(&mut self, now: Timestamp) {
        self.now = self.now.max(now);
    }

    fn check_attempt(&self, attempt: AttemptId) -> Result<(), InputError> {
        if attempt.0 == 0 || attempt.0 >= self.next_attempt {
            Err(InputError::UnknownAttempt(attempt))
        } else {
            Ok(())
        }
    }

    /// Rules 1, 2, 3: sends `id` now, or makes it wait behind a running or needed refresh.
    #[inline(always)]
    fn dispatch(
        &mut self,
        session: &mut Session,
        id: RequestId,
        request: Ticket,
    ) -> Option<Ending> {
        if session.cycle.is_running() {
            // Rule 3: join the running refresh.
            self.wait(&mut session.waiting, id, request);
            if fault!(self, SecondRefreshWhileRunning)
                && let Some(trigger) = session.need(self.now)
            {
                return self.start_cycle(session, trigger);
            }
            None
        } else if let Some(trigger) = session.need(self.now) {
            // Rule 2 (and rule 5 for a 401, whose generation is now known bad).
            self.wait(&mut session.waiting, id, request);
            self.start_cycle(session, trigger)
        } else {
            // Rule 1.
            self.transmit(session, id, request, false);
            None
        }
    }

    /// `fresh`: a refresh just brought the token (rule 20 tells the requests whose own
    /// refusal asked for it).
    fn transmit(&mut self, session: &Session, id: RequestId, mut ticket: Ticket, fresh: bool) {
        let replay = Self::go_out(&mut ticket, fresh);
        let state = RequestState::InFlight {
            generation: session.generation,
        };
        self.requests.put(id, Request { ticket, state });
        self.send(id, replay, session);
    }

    /// Marks a request as going out; whether it is a replay.
    #[inline]
    fn go_out(ticket: &mut Ticket, fresh: bool) -> bool {
        let replay = ticket.progress != Progress::New;
        ticket.progress = match ticket.progress {
            Progress::Refused if fresh => Progress::Fresh,
            _ => Progress::Sent,
        };
        replay
    }

    /// Emits the `Send` (or, for a `replay`, the `Replay`) of `id` with the session's token.
    #[inline(always)]
    fn send(&mut self, id: RequestId, replay: bool, session: &Session) {
        let (access_token, generation) = (session.access_token.clone(), session.generation);
        let command = if replay {
            self.stats.replayed += 1;
            Command::Replay {
                id,
                access_token,
                generation,
            }
        } else {
            self.stats.sent += 1;
            Command::Send {
                id,
                access_token,
                generation,
            }
        };
        self.emit(command);
    }

    /// Rule 15: appends `id` to the waiting list, or fails it with `QueueFull`.
    #[inline(always)]
    fn wait(&mut self, waiting: &mut WaitList, id: RequestId, ticket: Ticket) {
        if waiting.len >= self.config.max_pending {
            because!(self, Cause::Rule(15));
            self.fail(id, FailReason::QueueFull);
            return;
        }
        let tail = waiting.tail;
        let state = RequestState::Waiting {
            deadline: deadline(self.now, self.config.max_wait_ms),
            prev: tail,
            next: None,
        };
        self.requests.put(id, Request { ticket, state });
        self.set_link(tail, Side::Next, Linked::of(id), &mut waiting.head);
        waiting.tail = Linked::of(id);
        waiting.len += 1;
    }

    /// Sets the `side` link of waiting request `of` to `to`; no `of` stands for the
    /// list's end, whose `end` field is set instead.
    #[inline(always)]
    fn set_link(
        &mut self,
        of: Option<Linked>,
        side: Side,
        to: Option<Linked>,
        end: &mut Option<Linked>,
    ) {
        let Some(of) = of else {
            *end = to;
            return;
        };
        if let Some(Request {
            state: RequestState::Waiting { prev, next, .. },
            ..
        }) = self.requests.get_mut(of.id())
        {
            match side {
                Side::Prev => *prev = to,
                Side::Next => *next = to,
            }
        }
    }

    /// Takes the entry between `prev` and `next` out of the waiting list.
    fn unlink(&mut self, waiting: &mut WaitList, prev: Option<Linked>, next: Option<Linked>) {
        self.set_link(prev, Side::Next, next, &mut waiting.head);
        self.set_link(next, Side::Prev, prev, &mut waiting.tail);
        waiting.len -= 1;
    }

    /// Removes the oldest waiting request from the list (it stays in the table).
    fn pop_waiting(&mut self, waiting: &mut WaitList) -> Option<(RequestId, Request)> {
        let id = waiting.head?.id();
        let request = *self.requests.get(id)?;
        let RequestState::Waiting { prev, next, .. } = request.state else {
            return None;
        };
        self.unlink(waiting, prev, next);
        Some((id, request))
    }

    fn waiting_deadline(&self, waiting: &WaitList) -> Option<Timestamp> {
        match self.requests.get(waiting.head?.id())?.state {
            RequestState::Waiting { deadline, .. } => Some(deadline),
            RequestState::InFlight { .. } => None,
        }
    }

    /// Rule 8: every waiting request goes out with the session's token, in FIFO order.
    /// `fresh`: a refresh just brought the session's token.
    fn release_waiting(&mut self, session: &mut Session, fresh: bool) {
        // The whole list goes: walk it once instead of unlinking entry by entry.
        let mut next = std::mem::take(&mut session.waiting).head;
        while let Some(id) = next.map(Linked::id)
            && let Some(request) = self.requests.get_mut(id)
        {
            let RequestState::Waiting { next: after, .. } = request.state else {
                break;
            };
            next = after;
            let replay = Self::go_out(&mut request.ticket, fresh);
            request.state = RequestState::InFlight {
                generation: session.generation,
            };
            self.send(id, replay, session);
        }
    }

    fn fail_waiting(&mut self, waiting: &mut WaitList, reason: FailReason) {
        while let Some((id, _)) = self.pop_waiting(waiting) {
            self.fail(id, reason);
        }
    }

    /// Rule 15: fails the requests that waited past `max_wait_ms` (the list is in
    /// deadline order).
    fn expire_waiting(&mut self, waiting: &mut WaitList) {
        while self
            .waiting_deadline(waiting)
            .is_some_and(|deadline| deadline <= self.now)
        {
            let Some((id, _)) = self.pop_waiting(waiting) else {
                break;
            };
            because!(self, Cause::Rule(15));
            self.fail(id, FailReason::WaitTimeout);
        }
    }

    /// Starts a refresh cycle (rules 2, 5, 7, 13). The caller checked none is running.
    fn start_cycle(&mut self, session: &mut Session, trigger: Trigger) -> Option<Ending> {
        if session.refresh_token.is_none() {
            // Rule 13.
            return Some(Ending {
                reason: LogoutReason::NoRefreshToken,
                fail: FailReason::LoggedOut,
            });
        }
        // Rule 7: at most `max_refreshes` cycles that look like a loop start within any
        // window. Every `now` is at or after every start time kept (the clock is clamped).
        let window_ms = self.config.refresh_window.window_ms;
        while session
            .window
            .front()
            .is_some_and(|&t| self.now - t >= window_ms)
        {
            session.window.pop_front();
        }
        let counts = match trigger {
            Trigger::Refused => true,
            Trigger::Expiry => self.now - session.received_at < self.config.min_token_age_ms,
            Trigger::Retry => false,
        } || fault!(self, WindowCountsExpiry);
        if counts {
            if session.window.len() >= self.config.refresh_window.max_refreshes as usize {
                return Some(Ending {
                    reason: LogoutReason::ExcessiveRefresh,
                    fail: FailReason::ExcessiveRefresh,
                });
            }
            session.window.push_back(self.now);
        }
        self.stats.refresh_cycles += 1;
        // Rule 5 for a current 401, 14 for a one-shot one's; otherwise the token is known
        // bad or inside its skew (rule 2).
        #[cfg(feature = "trace")]
        if !matches!(self.cause, Cause::Rule(5 | 14)) {
            because!(self, Cause::Rule(2));
        }
        self.issue_attempt(session, Run::new(self.now, counts), 0)
    }

    /// Emits one `Refresh` with the newest refresh token (G8).
    fn issue_attempt(&mut self, session: &mut Session, run: Run, retries: u32) -> Option<Ending> {
        let Some(refresh_token) = session.refresh_token.clone() else {
            // Rule 13 (a cycle starts only with a refresh token, and a session keeps its
            // refresh token while a cycle runs; said here rather than assumed).
            return Some(Ending {
                reason: LogoutReason::NoRefreshToken,
                fail: FailReason::LoggedOut,
            });
        };
        let attempt = AttemptId(self.next_attempt);
        self.next_attempt += 1;
        session.cycle = Cycle::InFlight {
            run,
            attempt,
            retries,
            deadline: deadline(self.now, self.config.refresh_timeout_ms),
        };
        self.stats.refresh_attempts += 1;
        self.emit(Command::Refresh {
            attempt,
            refresh_token,
        });
        None
    }

    /// Rule 10: a transient failure of the active attempt — back off, or give up after
    /// `max_retries` (waiting requests `Fail { RefreshUnavailable }`, no logout).
    fn retry_or_give_up(
        &mut self,
        session: &mut Session,
        run: Run,
        retries: u32,
        retry_after_ms: Option<u64>,
    ) {
        if retries >= self.config.max_retries {
            session.cycle = Cycle::Idle;
            // G3: the next need starts a new cycle; nothing is sent with this token.
            session.bad = Some(Bad::GaveUp);
            because!(self, Cause::Rule(10));
            self.fail_waiting(&mut session.waiting, FailReason::RefreshUnavailable);
            return;
        }
        let exponential = self
            .config
            .initial_backoff_ms
            .saturating_mul(1u64.checked_shl(retries).unwrap_or(u64::MAX));
        let delay = exponential
            .max(retry_after_ms.unwrap_or(0))
            .min(self.config.max_backoff_ms);
        session.cycle = Cycle::Backoff {
            run,
            retries: retries + 1,
            until: deadline(self.now, delay),
        };
    }

    #[inline(always)]
    fn complete(&mut self, id: RequestId) {
        self.requests.remove(id);
        self.stats.completed += 1;
        self.emit(Command::Complete { id });
    }

    fn fail(&mut self, id: RequestId, reason: FailReason) {
        self.requests.remove(id);
        self.stats.failed.bump(reason);
        self.emit(Command::Fail { id, reason });
    }
}

/// Which link of a waiting request [`Engine::set_link`] sets.
#[derive(Clone, Copy)]
enum Side {
    Prev,
    Next,
}

/// Routes remembered as refusing the current token (rule 20); beyond this, a further
/// route's refusals cost one refresh per request, as without a route key.
const MAX_REFUSING_ROUTES: usize = 16;

#[cfg(test)]
mod tests {
    use super::requests::LARGE;
    use super::*;

    /// A batch taken in part keeps its order when more commands arrive before the rest
    /// is taken, polled or drained.
    #[test]
    fn a_batch_taken_in_part_keeps_its_order() {
        for drain in [false, true] {
            let mut core = Coordinator::new(Config::default()).expect("valid");
            core.login(0, Credentials::new("at-1").with_refresh_token("rt-1"))
                .expect("login");
            core.force_refresh(1).expect("force_refresh");
            let a = core.submit(1, RequestOptions::default()).expect("submit");
            let b = core.submit(1, RequestOptions::default()).expect("submit");
            let attempt = core.active_attempt().expect("a refresh runs");
            core.drain_commands().for_each(drop);
            core.handle_refresh_succeeded(2, attempt, Credentials::new("at-2"))
                .expect("adopted");
            // StoreCredentials, Send a, Send b: the host takes the first only.
            assert!(matches!(
                core.poll_command(),
                Some(Command::StoreCredentials { .. })
            ));
            let c = core.submit(3, RequestOptions::default()).expect("submit");
            let rest: Vec<Option<RequestId>> = if drain {
                let mut batch = Vec::new();
                core.drain_commands_into(&mut batch);
                batch.iter().map(Command::request_id).collect()
            } else {
                core.drain_commands().map(|c| c.request_id()).collect()
            };
            assert_eq!(rest, [Some(a), Some(b), Some(c)], "drained: {drain}");
        }
    }

    /// Up to `LARGE` commands and open requests, emptied buffers keep their capacity: a
    /// steady load never reallocates.
    #[test]
    fn a_steady_load_keeps_its_buffers() {
        let mut core = Coordinator::new(Config::default()).expect("valid");
        core.login(0, Credentials::new("at").with_refresh_token("rt"))
            .expect("login");
        let ids: Vec<RequestId> = (0..LARGE)
            .map(|_| core.submit(1, RequestOptions::default()).expect("submit"))
            .collect();
        assert_eq!(core.engine.commands.buffer.capacity(), LARGE);
        assert_eq!(core.engine.requests.slots.capacity(), LARGE);
        while core.poll_command().is_some() {}
        for id in ids {
            core.handle_response(2, id, 200).expect("200");
            assert!(core.poll_command().is_some());
        }
        assert!(core.poll_command().is_none());
        assert_eq!(core.engine.commands.buffer.capacity(), LARGE, "kept");
        assert_eq!(core.engine.requests.slots.capacity(), LARGE, "kept");
    }

    #[test]
    fn drained_queues_give_their_memory_back() {
        let mut core = Coordinator::new(Config::default().with_max_pending(1_000)).expect("valid");
        core.login(0, Credentials::new("at").with_refresh_token("rt"))
            .expect("login");
        let ids: Vec<RequestId> = (0..100)
            .map(|_| core.submit(1, RequestOptions::default()).expect("submit"))
            .collect();
        assert!(core.engine.commands.buffer.capacity() >= 100);
        while core.poll_command().is_some() {}
        assert!(
            core.engine.commands.buffer.capacity() <= KEPT,
            "poll_command shrinks"
        );
        for id in &ids {
            core.handle_response(2, *id, 200).expect("200");
        }
        let mut batch = Vec::new();
        core.drain_commands_into(&mut batch);
        assert_eq!(batch.len(), 100);
        assert!(core.engine.commands.buffer.capacity() <= LARGE);
        assert!(
            core.engine.requests.slots.capacity() <= KEPT,
            "the ring shrinks"
        );
        let id = core.submit(3, RequestOptions::default()).expect("submit");
        assert_eq!(core.poll_command().and_then(|c| c.request_id()), Some(id));
    }
}
