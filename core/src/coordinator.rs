//! The state machine. Every transition lives in this file, so the whole machine can be
//! read in one place.
//!
//! Methods come in the four kinds of quinn-proto's `Connection`: getters (`&self`),
//! `handle_*` for things that happened, mutators for what the application wants, and
//! `poll_*` for what the host must do next. After **every** input the host MUST drain
//! [`Coordinator::poll_command`] and re-arm its timer from [`Coordinator::poll_timeout`].

use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};

use crate::command::{
    AttemptId, Command, FailReason, Generation, LogoutReason, RefreshFailure, RequestId,
    RequestOptions, Timestamp,
};
use crate::config::Config;
use crate::credentials::{Credentials, Secret};
use crate::error::{ConfigError, InputError};
use crate::stats::Stats;

/// Whether the deliberate bug `$fault` is switched on. Always `false` without the
/// `fault-injection` feature, so the hooks below compile to nothing.
#[cfg(feature = "fault-injection")]
macro_rules! fault {
    ($core:ident, $fault:ident) => {
        $core.fault == Some(Fault::$fault)
    };
}
#[cfg(not(feature = "fault-injection"))]
macro_rules! fault {
    ($core:ident, $fault:ident) => {
        false
    };
}

/// The token-refresh coordinator: a deterministic, sans-IO state machine.
///
/// It never reads a clock, performs I/O, spawns threads or draws random numbers; the
/// same inputs always give the same commands. Wrap it in
/// [`SharedCoordinator`](crate::SharedCoordinator) to call it from many threads.
///
/// `Clone` copies the state (tokens are shared, not copied): model checkers and tests
/// fork it to explore alternatives.
#[derive(Clone, Debug)]
pub struct Coordinator {
    config: Config,
    /// Largest `now` seen; earlier times are clamped to it.
    now: Timestamp,
    session: Option<Session>,
    /// Bumped by every logout. A request remembers the epoch it was sent in, so a 401
    /// from an earlier session is never replayed with a later session's token.
    epoch: u64,
    next_request: u64,
    next_generation: u64,
    next_attempt: u64,
    /// Attempts numbered from here on were issued with the current generation in the
    /// current epoch: their success is adopted (rule 11). Moves on every generation
    /// change and every logout.
    adoptable_from: u64,
    requests: HashMap<RequestId, Request>,
    /// Requests waiting for a refresh, oldest first. May hold ids that were cancelled or
    /// timed out since (skipped when drained); `queued` counts the live ones.
    queue: VecDeque<Waiting>,
    queued: usize,
    refresh: Refresh,
    /// Start times of the refresh cycles inside the current window (rule 7).
    window: VecDeque<Timestamp>,
    commands: VecDeque<Command>,
    stats: Stats,
    #[cfg(feature = "fault-injection")]
    fault: Option<Fault>,
}

/// A deliberate bug (feature `fault-injection`), so the model checker and the property
/// tests can prove they catch it. Never enable the feature in a build that ships.
#[cfg(feature = "fault-injection")]
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
}

#[derive(Clone, Debug)]
struct Session {
    access_token: Secret,
    refresh_token: Option<Secret>,
    generation: Generation,
    /// From this time on the token is inside its expiry skew; `None` if it never expires.
    refresh_at: Option<Timestamp>,
    /// A request got a refresh status with this generation, or the host forced a
    /// refresh: the token must not be sent again (G3).
    known_bad: bool,
}

impl Session {
    fn needs_refresh(&self, now: Timestamp) -> bool {
        self.known_bad || self.refresh_at.is_some_and(|at| now >= at)
    }
}

#[derive(Clone, Debug)]
struct Request {
    replayable: bool,
    /// Whether it ever went out (decides `Send` versus `Replay`).
    sent: bool,
    replays: u32,
    /// The epoch it was submitted or last sent in.
    epoch: u64,
    state: RequestState,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RequestState {
    Queued,
    InFlight { generation: Generation },
}

#[derive(Clone, Copy, Debug)]
struct Waiting {
    id: RequestId,
    deadline: Timestamp,
}

/// The refresh cycle. `InFlight` and `Backoff` are "a refresh is running" (rule 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refresh {
    Idle,
    InFlight {
        attempt: AttemptId,
        /// Transient failures already retried in this cycle.
        retries: u32,
        deadline: Timestamp,
    },
    Backoff {
        retries: u32,
        until: Timestamp,
    },
}

impl Refresh {
    fn is_running(self) -> bool {
        !matches!(self, Refresh::Idle)
    }

    fn deadline(self) -> Option<Timestamp> {
        match self {
            Refresh::Idle => None,
            Refresh::InFlight { deadline, .. } => Some(deadline),
            Refresh::Backoff { until, .. } => Some(until),
        }
    }
}

impl Coordinator {
    /// A logged-out coordinator. Fails if `config` is outside its documented ranges.
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Coordinator {
            window: VecDeque::with_capacity(config.refresh_window.max_refreshes.min(64) as usize),
            config,
            now: 0,
            session: None,
            epoch: 0,
            next_request: 1,
            next_generation: 1,
            next_attempt: 1,
            adoptable_from: 1,
            requests: HashMap::new(),
            queue: VecDeque::new(),
            queued: 0,
            refresh: Refresh::Idle,
            commands: VecDeque::new(),
            stats: Stats::default(),
            #[cfg(feature = "fault-injection")]
            fault: None,
        })
    }

    /// Switches on one deliberate bug (feature `fault-injection`).
    #[cfg(feature = "fault-injection")]
    pub fn inject_fault(&mut self, fault: Fault) {
        self.fault = Some(fault);
    }

    /// Feeds the whole behavioural state into `state`, canonically: two coordinators that
    /// hash alike answer every future input alike. Statistics and undrained commands are
    /// left out. Token texts do go into the hasher; use it for model checking, never to
    /// publish a hash. Costs O(n log n) in the open requests.
    pub fn fingerprint<H: Hasher>(&self, state: &mut H) {
        self.now.hash(state);
        match &self.session {
            None => 0u8.hash(state),
            Some(s) => {
                1u8.hash(state);
                s.access_token.expose().hash(state);
                s.refresh_token.as_ref().map(|t| t.expose()).hash(state);
                (s.generation, s.refresh_at, s.known_bad).hash(state);
            }
        }
        (self.epoch, self.next_request, self.next_generation).hash(state);
        (self.next_attempt, self.adoptable_from).hash(state);
        let mut requests: Vec<_> = self.requests.iter().collect();
        requests.sort_unstable_by_key(|(id, _)| **id);
        for (id, r) in requests {
            (id, r.replayable, r.sent, r.replays, r.epoch).hash(state);
            match r.state {
                RequestState::Queued => 0u64.hash(state),
                RequestState::InFlight { generation } => generation.hash(state),
            }
        }
        for w in self.queue.iter().filter(|w| self.is_queued(w.id)) {
            (w.id, w.deadline).hash(state);
        }
        match self.refresh {
            Refresh::Idle => 0u8.hash(state),
            Refresh::InFlight {
                attempt,
                retries,
                deadline,
            } => (1u8, attempt, retries, deadline).hash(state),
            Refresh::Backoff { retries, until } => (2u8, retries, until).hash(state),
        }
        self.window.hash(state);
    }

    // ----- getters -------------------------------------------------------------------

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Counters since creation.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The largest `now` seen so far.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// Whether a session exists (between `login` and `Logout`).
    pub fn is_logged_in(&self) -> bool {
        self.session.is_some()
    }

    /// The generation of the current credentials, if logged in.
    pub fn generation(&self) -> Option<Generation> {
        self.session.as_ref().map(|s| s.generation)
    }

    /// Whether a refresh cycle is running (a call in flight or a backoff).
    pub fn is_refreshing(&self) -> bool {
        self.refresh.is_running()
    }

    /// The refresh attempt whose result the core is waiting for, if any.
    pub fn active_attempt(&self) -> Option<AttemptId> {
        match self.refresh {
            Refresh::InFlight { attempt, .. } => Some(attempt),
            _ => None,
        }
    }

    /// Requests waiting for a refresh.
    pub fn waiting(&self) -> usize {
        self.queued
    }

    /// Requests the core knows: waiting or awaiting a response.
    pub fn open_requests(&self) -> usize {
        self.requests.len()
    }

    /// Whether `id` awaits a response (it went out and nothing was reported yet).
    pub fn is_in_flight(&self, id: RequestId) -> bool {
        self.requests
            .get(&id)
            .is_some_and(|r| matches!(r.state, RequestState::InFlight { .. }))
    }

    /// The ids awaiting a response, in increasing order (for tests and diagnostics;
    /// allocates).
    pub fn in_flight_ids(&self) -> Vec<RequestId> {
        let mut ids: Vec<RequestId> = self
            .requests
            .iter()
            .filter(|(_, r)| matches!(r.state, RequestState::InFlight { .. }))
            .map(|(&id, _)| id)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// The next attempt id the core will issue; every smaller non-zero id was issued.
    pub fn next_attempt(&self) -> AttemptId {
        AttemptId(self.next_attempt)
    }

    // ----- poll ----------------------------------------------------------------------

    /// The next command to carry out, in order. The host MUST drain this after every
    /// input.
    pub fn poll_command(&mut self) -> Option<Command> {
        self.commands.pop_front()
    }

    /// All pending commands, in order.
    pub fn drain_commands(&mut self) -> std::collections::vec_deque::Drain<'_, Command> {
        self.commands.drain(..)
    }

    /// The earliest time at which [`handle_timeout`](Self::handle_timeout) has work to
    /// do, or `None`. Call it after every input and arm one timer for it; an early or
    /// spurious `handle_timeout` is harmless.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let wait = self.queue.front().map(|w| w.deadline);
        match (self.refresh.deadline(), wait) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    // ----- mutators: what the application wants ---------------------------------------

    /// Starts a session, or replaces the credentials from outside (re-login, another
    /// process rotated them). A running refresh becomes stale (its result will be
    /// ignored); waiting requests go out with the new token. Emits no `StoreCredentials`:
    /// the host already holds these credentials.
    pub fn login(&mut self, now: Timestamp, credentials: Credentials) -> Result<(), InputError> {
        credentials.validate()?;
        self.advance(now);
        self.install(credentials);
        self.release_queue();
        Ok(())
    }

    /// A request wants to go out; returns its id. Emits `Send` at once when the token is
    /// fresh; queues it (and starts one refresh if none runs) when the token is known bad
    /// or inside its expiry skew; `Fail { NotLoggedIn }` without a session.
    pub fn submit(&mut self, now: Timestamp, options: RequestOptions) -> RequestId {
        self.advance(now);
        let id = RequestId(self.next_request);
        self.next_request += 1;
        self.stats.submitted += 1;
        if self.session.is_none() {
            self.fail(id, FailReason::NotLoggedIn);
            return id;
        }
        self.requests.insert(
            id,
            Request {
                replayable: options.replayable,
                sent: false,
                replays: 0,
                epoch: self.epoch,
                state: RequestState::Queued,
            },
        );
        self.dispatch(id);
        id
    }

    /// The caller no longer wants `id`. A waiting request is dropped silently; one in
    /// flight is forgotten (its late response is `Err(UnknownRequest)`, which the host may
    /// ignore). Never cancels a refresh.
    pub fn cancel(&mut self, now: Timestamp, id: RequestId) -> Result<(), InputError> {
        let request = self
            .requests
            .get(&id)
            .ok_or(InputError::UnknownRequest(id))?;
        let was_queued = request.state == RequestState::Queued;
        self.advance(now);
        self.requests.remove(&id);
        self.stats.cancelled += 1;
        if was_queued {
            self.queued -= 1;
            self.compact_queue();
        }
        Ok(())
    }

    /// The host knows the token is bad (a push said it was revoked): the next request
    /// waits for a refresh instead of using it. Does nothing while logged out or while a
    /// refresh already runs (its result replaces the token anyway).
    pub fn force_refresh(&mut self, now: Timestamp) {
        self.advance(now);
        if let Some(session) = &mut self.session
            && !self.refresh.is_running()
        {
            session.known_bad = true;
        }
    }

    /// The user logs out: waiting requests `Fail { LoggedOut }`, then `Logout { Requested }`.
    /// Requests in flight still get their response (`Complete`, or `Fail { LoggedOut }`
    /// for a 401). Does nothing when already logged out.
    pub fn logout(&mut self, now: Timestamp) {
        self.advance(now);
        if self.session.is_some() {
            self.end_session(LogoutReason::Requested, FailReason::LoggedOut);
        }
    }

    // ----- handle_*: things that happened ---------------------------------------------

    /// The host got HTTP `status` for the last `Send`/`Replay` of `id`.
    pub fn handle_response(
        &mut self,
        now: Timestamp,
        id: RequestId,
        status: u16,
    ) -> Result<(), InputError> {
        if !(100..=599).contains(&status) {
            return Err(InputError::InvalidStatus(status));
        }
        let request = self
            .requests
            .get(&id)
            .ok_or(InputError::UnknownRequest(id))?;
        let RequestState::InFlight { generation } = request.state else {
            return Err(InputError::NotInFlight(id));
        };
        let (replayable, replays, epoch) = (request.replayable, request.replays, request.epoch);
        self.advance(now);

        if !self.config.is_refresh_status(status) {
            self.complete(id);
            return Ok(());
        }
        self.stats.unauthorized_responses += 1;
        let Some(session) = self.session.as_mut().filter(|_| epoch == self.epoch) else {
            // Rule 12: a 401 from a session that has ended is never replayed.
            self.fail(id, FailReason::LoggedOut);
            return Ok(());
        };
        let current = generation == session.generation || fault!(self, NoGenerationCheck);
        if current {
            session.known_bad = true; // G3: never send this generation again.
        }
        if !replayable {
            // Rule 14: the caller gets the 401; a refresh still starts for the others.
            self.complete(id);
            if current && !self.refresh.is_running() {
                self.start_cycle();
            }
            return Ok(());
        }
        if replays >= self.config.max_replays_per_request && !fault!(self, NoReplayBudget) {
            // Rule 6: rejected even with a fresh token. The generation stays known bad,
            // so the next request refreshes first.
            self.fail(id, FailReason::Unauthorized);
            return Ok(());
        }
        if let Some(request) = self.requests.get_mut(&id) {
            request.replays += 1;
        }
        // Rule 4 (stale: replay now unless a refresh is needed or running) and rule 5
        // (current: the generation is known bad, so dispatch queues it and starts one
        // refresh unless one runs).
        self.dispatch(id);
        Ok(())
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
        self.check_attempt(attempt)?;
        credentials.validate()?;
        self.advance(now);
        if self.session.is_none() && fault!(self, AcceptAfterLogout) {
            let generation = self.install(credentials.clone());
            self.commands.push_back(Command::StoreCredentials {
                credentials,
                generation,
            });
            return Ok(());
        }
        let Some(session) = self
            .session
            .as_ref()
            .filter(|_| attempt.0 >= self.adoptable_from)
        else {
            self.stats.refresh_results_ignored += 1;
            return Ok(());
        };
        let credentials = Credentials {
            refresh_token: credentials
                .refresh_token
                .or_else(|| session.refresh_token.clone()),
            ..credentials
        };
        let generation = self.install(credentials.clone());
        self.stats.refresh_succeeded += 1;
        self.commands.push_back(Command::StoreCredentials {
            credentials,
            generation,
        });
        self.release_queue();
        Ok(())
    }

    /// The refresh call `attempt` failed. Acted on only for the active attempt; a failure
    /// of any other attempt is ignored (`Ok`, no commands, counted).
    pub fn handle_refresh_failed(
        &mut self,
        now: Timestamp,
        attempt: AttemptId,
        failure: RefreshFailure,
    ) -> Result<(), InputError> {
        self.check_attempt(attempt)?;
        self.advance(now);
        let Refresh::InFlight {
            attempt: active,
            retries,
            ..
        } = self.refresh
        else {
            self.stats.refresh_results_ignored += 1;
            return Ok(());
        };
        if active != attempt {
            self.stats.refresh_results_ignored += 1;
            return Ok(());
        }
        match failure {
            RefreshFailure::Rejected => {
                self.stats.refresh_rejected += 1;
                self.end_session(LogoutReason::RefreshRejected, FailReason::RefreshRejected);
            }
            RefreshFailure::Transient { retry_after_ms } => {
                self.stats.refresh_transient += 1;
                self.retry_or_give_up(retries, retry_after_ms);
            }
        }
        Ok(())
    }

    /// Time passed: fails requests that waited past `max_wait_ms` (FIFO), then fires the
    /// refresh deadline (a transient failure) or the end of a backoff (the next
    /// `Refresh`). Early or repeated calls are harmless.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.advance(now);
        while let Some(&Waiting { id, deadline }) = self.queue.front() {
            if deadline > self.now {
                break;
            }
            self.queue.pop_front();
            if self.is_queued(id) {
                self.queued -= 1;
                self.fail(id, FailReason::WaitTimeout);
            }
        }
        self.compact_queue();
        match self.refresh {
            Refresh::InFlight {
                retries, deadline, ..
            } if deadline <= self.now => {
                // Rule 11: the attempt is abandoned; its late success may still be
                // adopted, its late failure is ignored.
                self.stats.refresh_timeouts += 1;
                self.stats.refresh_transient += 1;
                self.retry_or_give_up(retries, None);
            }
            Refresh::Backoff { retries, until } if until <= self.now => {
                self.issue_attempt(retries);
            }
            _ => {}
        }
    }

    // ----- transitions ------------------------------------------------------------------

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

    /// Accepts credentials as the new session; returns their generation. Any running
    /// refresh becomes stale.
    fn install(&mut self, credentials: Credentials) -> Generation {
        let generation = Generation(self.next_generation);
        self.next_generation += 1;
        let refresh_at = credentials.expires_in_ms.map(|lifetime| {
            let skew = self.config.expiry_skew_ms.min(lifetime / 2);
            self.now.saturating_add(lifetime - skew)
        });
        self.session = Some(Session {
            access_token: credentials.access_token,
            refresh_token: credentials.refresh_token,
            generation,
            refresh_at,
            known_bad: false,
        });
        self.refresh = Refresh::Idle;
        self.adoptable_from = self.next_attempt;
        generation
    }

    /// Sends `id` now, or queues it behind a running or needed refresh.
    fn dispatch(&mut self, id: RequestId) {
        let Some(session) = &self.session else {
            unreachable!("dispatch is only called while logged in")
        };
        if fault!(self, SecondRefreshWhileRunning)
            && self.refresh.is_running()
            && session.needs_refresh(self.now)
        {
            self.enqueue(id);
            self.start_cycle();
            return;
        }
        if self.refresh.is_running() {
            self.enqueue(id);
        } else if session.needs_refresh(self.now) {
            self.enqueue(id);
            self.start_cycle();
        } else {
            self.transmit(id);
        }
    }

    fn transmit(&mut self, id: RequestId) {
        let session = self
            .session
            .as_ref()
            .expect("transmit is only called while logged in");
        let request = self
            .requests
            .get_mut(&id)
            .expect("transmit is called for open requests");
        let (access_token, generation) = (session.access_token.clone(), session.generation);
        let replay = request.sent;
        request.sent = true;
        request.epoch = self.epoch;
        request.state = RequestState::InFlight { generation };
        self.commands.push_back(if replay {
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
        });
    }

    fn enqueue(&mut self, id: RequestId) {
        if self.queued >= self.config.max_pending as usize {
            self.fail(id, FailReason::QueueFull);
            return;
        }
        let request = self
            .requests
            .get_mut(&id)
            .expect("enqueue is called for open requests");
        request.state = RequestState::Queued;
        self.queue.push_back(Waiting {
            id,
            deadline: self.now.saturating_add(self.config.max_wait_ms),
        });
        self.queued += 1;
    }

    /// Starts a refresh cycle (rules 2, 5, 7, 13). The caller checked none is running.
    fn start_cycle(&mut self) {
        let session = self
            .session
            .as_ref()
            .expect("a cycle starts only while logged in");
        if session.refresh_token.is_none() {
            self.end_session(LogoutReason::NoRefreshToken, FailReason::LoggedOut);
            return;
        }
        let window_ms = self.config.refresh_window.window_ms;
        while self
            .window
            .front()
            .is_some_and(|&t| t.saturating_add(window_ms) <= self.now)
        {
            self.window.pop_front();
        }
        if self.window.len() >= self.config.refresh_window.max_refreshes as usize {
            self.end_session(LogoutReason::ExcessiveRefresh, FailReason::ExcessiveRefresh);
            return;
        }
        self.window.push_back(self.now);
        self.stats.refresh_cycles += 1;
        self.issue_attempt(0);
    }

    fn issue_attempt(&mut self, retries: u32) {
        let session = self
            .session
            .as_ref()
            .expect("attempts are issued only while logged in");
        let refresh_token = session
            .refresh_token
            .clone()
            .expect("a cycle starts only with a refresh token");
        let attempt = AttemptId(self.next_attempt);
        self.next_attempt += 1;
        self.refresh = Refresh::InFlight {
            attempt,
            retries,
            deadline: self.now.saturating_add(self.config.refresh_timeout_ms),
        };
        self.stats.refresh_attempts += 1;
        self.commands.push_back(Command::Refresh {
            attempt,
            refresh_token,
        });
    }

    /// A transient failure of the active attempt (rule 10).
    fn retry_or_give_up(&mut self, retries: u32, retry_after_ms: Option<u64>) {
        if retries >= self.config.max_retries {
            self.refresh = Refresh::Idle;
            if let Some(session) = &mut self.session {
                // G3: the next need starts a new cycle; nothing is sent with this token.
                session.known_bad = true;
            }
            self.fail_queue(FailReason::RefreshUnavailable);
            return;
        }
        let exponential = self
            .config
            .initial_backoff_ms
            .saturating_mul(1u64.checked_shl(retries).unwrap_or(u64::MAX));
        let delay = exponential
            .max(retry_after_ms.unwrap_or(0))
            .min(self.config.max_backoff_ms);
        self.refresh = Refresh::Backoff {
            retries: retries + 1,
            until: self.now.saturating_add(delay),
        };
    }

    /// Ends the session: waiting requests fail with `fail`, then `Logout { reason }`.
    fn end_session(&mut self, reason: LogoutReason, fail: FailReason) {
        self.fail_queue(fail);
        self.session = None; // drops the tokens, which zeroizes them
        self.epoch += 1;
        self.refresh = Refresh::Idle;
        self.adoptable_from = self.next_attempt;
        self.window.clear();
        self.stats.logouts += 1;
        self.commands.push_back(Command::Logout { reason });
    }

    /// Empties the queue, calling `each` for every live entry in FIFO order.
    fn drain_queue(&mut self, mut each: impl FnMut(&mut Self, RequestId)) {
        let mut queue = std::mem::take(&mut self.queue);
        for Waiting { id, .. } in queue.drain(..) {
            if self.is_queued(id) {
                each(self, id);
            }
        }
        self.queued = 0;
        self.queue = queue; // keep the allocation
    }

    fn release_queue(&mut self) {
        self.drain_queue(Self::transmit);
    }

    fn fail_queue(&mut self, reason: FailReason) {
        self.drain_queue(|core, id| core.fail(id, reason));
    }

    fn is_queued(&self, id: RequestId) -> bool {
        self.requests
            .get(&id)
            .is_some_and(|r| r.state == RequestState::Queued)
    }

    /// Drops cancelled and timed-out entries from the front (so `poll_timeout` is exact)
    /// and, when they make up most of the queue, from everywhere (bounded memory).
    fn compact_queue(&mut self) {
        while let Some(front) = self.queue.front() {
            if self.is_queued(front.id) {
                break;
            }
            self.queue.pop_front();
        }
        if self.queue.len() > 2 * self.queued + 16 {
            let requests = &self.requests;
            self.queue.retain(|w| {
                requests
                    .get(&w.id)
                    .is_some_and(|r| r.state == RequestState::Queued)
            });
        }
    }

    fn complete(&mut self, id: RequestId) {
        self.requests.remove(&id);
        self.stats.completed += 1;
        self.commands.push_back(Command::Complete { id });
    }

    fn fail(&mut self, id: RequestId, reason: FailReason) {
        self.requests.remove(&id);
        self.stats.failed.bump(reason);
        self.commands.push_back(Command::Fail { id, reason });
    }
}
