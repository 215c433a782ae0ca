//! An independent checker of the guarantees of `docs/contract.md` §9.
//!
//! [`Oracle`] watches what a host sees — each input, its result, the command batch, the
//! public getters — keeps its own books, and reports the first guarantee a step breaks.
//! It shares no code with the state machine it checks. The property tests, the model
//! checker and the fuzzer all run every step through it; a host's own tests can too.
//!
//! ```
//! use reauth_testkit::oracle::{Oracle, Snapshot};
//! use reauth::{Config, Coordinator, Credentials, Input};
//!
//! let mut core = Coordinator::new(Config::default())?;
//! let mut oracle = Oracle::new(Config::default());
//! let input = Input::Login { credentials: Credentials::new("at").with_refresh_token("rt") };
//! let before = Snapshot::of(&core);
//! let result = core.apply(0, input.clone());
//! let batch: Vec<_> = core.drain_commands().collect();
//! oracle.step(&core, &before, 0, &input, &result, &batch)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::hash::{Hash, Hasher};

use reauth::{
    AttemptId, Command, Config, Coordinator, Credentials, FailReason, Generation, Input,
    InputError, LogoutReason, MAX_TIMESTAMP, RefreshFailure, RequestId, RequestOptions, RouteKey,
    Secret, Stats, Timestamp,
};

/// Routes remembered as refusing one token (contract rule 20).
const REFUSING_ROUTES_REMEMBERED: usize = 16;

/// The observable state that an `Err` must leave untouched (G9). Take it just before each
/// input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    stats: Stats,
    now: Timestamp,
    timeout: Option<Timestamp>,
    logged_in: bool,
    generation: Option<Generation>,
    waiting: usize,
    open: usize,
    /// Requests in flight (open minus waiting): cheap to read on every step.
    in_flight: usize,
    next_attempt: AttemptId,
    active: Option<AttemptId>,
    refreshing: bool,
}

impl Snapshot {
    /// Reads `core`'s public getters.
    pub fn of(core: &Coordinator) -> Self {
        Snapshot {
            stats: *core.stats(),
            now: core.now(),
            timeout: core.poll_timeout(),
            logged_in: core.is_logged_in(),
            generation: core.generation(),
            waiting: core.waiting(),
            open: core.open_requests(),
            in_flight: core.open_requests() - core.waiting(),
            next_attempt: core.next_attempt(),
            active: core.active_attempt(),
            refreshing: core.is_refreshing(),
        }
    }
}

/// The guarantee checker. Feed it every step with [`Oracle::step`]. Its `Debug` output
/// leaves out the token texts it keeps for the G10 check.
#[derive(Clone, Default)]
pub struct Oracle {
    config: Config,
    now: Timestamp,
    submitted: HashSet<RequestId>,
    terminal: HashSet<RequestId>,
    cancelled: HashSet<RequestId>,
    /// Submitted, neither ended nor cancelled (kept in order, for cheap listing).
    open: BTreeSet<RequestId>,
    sent: HashSet<RequestId>,
    /// Request → generation of its last Send/Replay, until its response is reported.
    in_flight: BTreeMap<RequestId, Generation>,
    last_401: HashMap<RequestId, Generation>,
    replays: HashMap<RequestId, u32>,
    bad: HashSet<Generation>,
    logged_in: bool,
    /// Between `begin_restore` (while logged out) and `login`, `restore_failed` or
    /// `logout` (rule 18).
    restoring: bool,
    /// Requests submitted with `refresh: false` (rule 19).
    no_refresh: HashSet<RequestId>,
    /// Requests submitted non-replayable (rule 14).
    one_shot: HashSet<RequestId>,
    /// The route each request named (rule 20).
    routes: HashMap<RequestId, RouteKey>,
    /// Requests waiting because their own refusal of the current token asked for a
    /// refresh, and those that went out again with the token that refresh brought.
    refused_waiting: HashSet<RequestId>,
    fresh: HashSet<RequestId>,
    /// Routes that refused the current token although it was fresh for them (rule 20).
    refusing: Vec<RouteKey>,
    /// This step's request whose refusal is the route's, not the token's (rule 20).
    endpoint_refusal: Option<RequestId>,
    /// The window entry of the cycle that brought the current token, if it counted: it
    /// leaves the window once a request is accepted with that token (rule 7, v2).
    counted_start: Option<Timestamp>,
    generation: Option<Generation>,
    max_generation: u64,
    access_token: Option<String>,
    refresh_token: Option<String>,
    refresh_at: Option<Timestamp>,
    /// When the current credentials arrived, and when their access token expires.
    received_at: Timestamp,
    expires_at: Option<Timestamp>,
    /// Why the current generation needs a refresh, as the command stream and the inputs
    /// show it (decides whether its cycle counts in the window, rule 7).
    mark: Option<Mark>,
    /// The attempt the host believes is running, and its deadline.
    active: Option<(AttemptId, Timestamp)>,
    attempts: HashMap<AttemptId, (Option<Generation>, u64)>,
    max_attempt: u64,
    epoch: u64,
    /// The first generation of the current session: a request sent with an older one
    /// belongs to a session that ended (rule 12).
    session_start: Option<Generation>,
    /// Requests waiting for a refresh, in the order the contract releases or fails them,
    /// with the time each may wait until (rule 15). Derived from the command stream.
    waiting: VecDeque<(RequestId, Timestamp)>,
    /// Start times of the cycles in the session, derived from the command stream.
    cycle_starts: Vec<Timestamp>,
    /// The running cycle, as the command stream shows it.
    cycle: Option<CycleBook>,
    cycles_seen: u64,
    /// Every token text ever handed to the core (G10).
    secrets: HashSet<String>,
    steps: u64,
}

/// A refresh cycle as the host sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
struct CycleBook {
    /// `Refresh` commands of this cycle so far.
    attempts: u32,
    /// After a transient failure: no retry may be emitted before this time (rule 10).
    backoff_until: Option<Timestamp>,
    /// An attempt of this cycle was abandoned at its deadline, unanswered: its success
    /// may still come (rule 9 / G8).
    abandoned: bool,
    /// After a rejection held for an abandoned attempt: the session ends at this time
    /// unless that attempt delivers first (rule 9).
    held_until: Option<Timestamp>,
    /// The cycle's window entry, if it counted (rule 7).
    counted_at: Option<Timestamp>,
}

/// Why the current generation may not be sent (§4.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Mark {
    /// A current-generation refusal or a forced refresh: its cycle counts in the window.
    Refused,
    /// The last cycle gave up on transient failures: the next cycle does not count.
    GaveUp,
}

/// What a refresh result or a timeout did to the active attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AttemptEnd {
    None,
    /// The rejection ends the session now (rule 9).
    Rejected,
    /// The rejection is held: an abandoned attempt may still deliver (rule 9 / G8).
    Held,
    /// A transient failure (or the deadline) with retries left; the delay the contract
    /// asks for before the next `Refresh`.
    Backoff(u64),
    /// A transient failure of the cycle's last allowed attempt.
    GiveUp,
}

/// A verdict that begins with "rule N" names the rule too, from the rules table
/// (`reauth::rules`): "rule 9 (Rejected): …".
fn cite(verdict: &str) -> String {
    let Some(rest) = verdict.strip_prefix("rule ") else {
        return verdict.to_owned();
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    match digits.parse().ok().and_then(reauth::rules::rule) {
        Some(rule) => format!("rule {digits} ({}){}", rule.name, &rest[digits.len()..]),
        None => verdict.to_owned(),
    }
}

/// What the checks of one step share: the input, its result and batch, the books as they
/// were before it, and what the bookkeeping before the batch concluded.
#[derive(Clone, Copy)]
struct Step<'a> {
    input: &'a Input,
    result: &'a Result<Option<RequestId>, InputError>,
    batch: &'a [Command],
    logged_in_before: bool,
    restoring_before: bool,
    generation_before: Option<Generation>,
    epoch_before: u64,
    /// The request this input is about, while it belongs to the running session.
    current: Option<RequestId>,
    /// How the input ended the active attempt, if it did.
    end: AttemptEnd,
    /// A 401 for a request sent with an older generation (rule 4).
    stale_401: bool,
    /// For a refresh success: whether it must be adopted (rule 11).
    adoption_expected: Option<bool>,
    /// The batch's `Logout`, if any.
    logout: Option<LogoutReason>,
    /// `Refresh` commands in the batch.
    refreshes: u32,
}

impl std::fmt::Debug for Oracle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oracle")
            .field("steps", &self.steps)
            .field("logged_in", &self.logged_in)
            .field("generation", &self.generation)
            .field("open", &self.open())
            .field("in_flight", &self.in_flight_ids())
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

/// One value's hash, for order-independent sums.
pub(crate) fn digest(value: &impl Hash) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    value.hash(&mut h);
    h.finish()
}

fn text(s: &reauth::Secret) -> String {
    s.expose().to_owned()
}

impl Oracle {
    /// An oracle for a coordinator created with `config`.
    pub fn new(config: Config) -> Self {
        Oracle {
            config,
            ..Oracle::default()
        }
    }

    /// Requests the host still expects a terminal command for, in increasing order.
    pub fn open(&self) -> Vec<RequestId> {
        self.open.iter().copied().collect()
    }

    /// How many requests the host still expects a terminal command for.
    pub fn open_count(&self) -> usize {
        self.open.len()
    }

    /// The oldest request sent and not yet answered.
    pub fn first_in_flight(&self) -> Option<RequestId> {
        self.in_flight.keys().next().copied()
    }

    /// Requests sent and not yet answered, in increasing order.
    pub fn in_flight_ids(&self) -> Vec<RequestId> {
        let mut v: Vec<RequestId> = self.in_flight.keys().copied().collect();
        v.sort();
        v
    }

    /// The generation request `id` was last sent with, while it awaits a response.
    pub fn in_flight_generation(&self, id: RequestId) -> Option<Generation> {
        self.in_flight.get(&id).copied()
    }

    /// How many refresh attempts the core has issued.
    pub fn issued_attempts(&self) -> u64 {
        self.max_attempt
    }

    /// The attempt the host should consider running (issued, not answered, not past its
    /// deadline at the last timeout), if any.
    pub fn active_attempt(&self) -> Option<AttemptId> {
        self.active.map(|(a, _)| a)
    }

    /// Rule 20: whether a refusal of the current token for `id` is its route's, not the
    /// token's — the route refused this token before, or the token is fresh from the
    /// refresh the request's own refusal asked for and its replays are spent. Records the
    /// route in the second case.
    fn route_refusal(&mut self, id: RequestId) -> bool {
        let route = self.routes.get(&id).copied();
        if route.is_some_and(|r| self.refusing.contains(&r)) {
            return true;
        }
        let spent =
            self.replays.get(&id).copied().unwrap_or(0) >= self.config.max_replays_per_request;
        if !(self.fresh.contains(&id) && spent) {
            return false;
        }
        if let Some(route) = route
            && self.refusing.len() < REFUSING_ROUTES_REMEMBERED
        {
            self.refusing.push(route);
        }
        true
    }

    /// Whether a rejection is held while an abandoned attempt may still deliver (rule 9).
    pub fn holding_rejection(&self) -> bool {
        self.cycle.is_some_and(|c| c.held_until.is_some())
    }

    /// Whether the command stream says a session exists.
    pub fn logged_in(&self) -> bool {
        self.logged_in
    }

    /// Steps checked so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Feeds into `state`, canonically, every fact the oracle's *future* verdicts depend
    /// on, so that a model checker which merges two histories with equal fingerprints
    /// loses no violation. History that can no longer affect a verdict is left out: ended
    /// requests, the generation of a superseded 401 (a replay needs a new 401 first),
    /// counters the core's own hash already holds. Token texts are not hashed.
    ///
    /// Request ids are not hashed either: open requests are fed in as a multiset of their
    /// records (sent, generation in flight, replays, place and deadline in the waiting
    /// list), so two states that differ only by a renaming of open requests fingerprint
    /// alike. Requests are interchangeable — every action and every check treats each
    /// open request alike — so this is a sound symmetry reduction.
    pub fn fingerprint<H: Hasher>(&self, state: &mut H) {
        let mut records = 0u64;
        for id in self.open() {
            let replays = self.replays.get(&id).copied().unwrap_or(0);
            let waiting = self.waiting.iter().position(|(w, _)| *w == id);
            let deadline = waiting.and_then(|i| self.waiting.get(i)).map(|(_, t)| *t);
            let record = (
                self.sent.contains(&id),
                self.in_flight.get(&id),
                replays,
                waiting,
                deadline,
                self.no_refresh.contains(&id),
                (
                    self.routes.get(&id),
                    self.refused_waiting.contains(&id),
                    self.fresh.contains(&id),
                ),
            );
            records = records.wrapping_add(digest(&record));
        }
        (self.open_count(), records).hash(state);
        let current_bad = self.generation.is_some_and(|g| self.bad.contains(&g));
        (
            self.logged_in,
            self.restoring,
            self.generation,
            self.max_generation,
            self.refresh_at,
        )
            .hash(state);
        let age = (self.now - self.received_at).min(self.config.min_token_age_ms);
        let expires = self.refresh_token.is_none().then_some(self.expires_at);
        (age, expires, self.mark).hash(state);
        (current_bad, self.epoch).hash(state);
        (self.active, self.max_attempt).hash(state);
        let adoptable: BTreeSet<AttemptId> = self
            .attempts
            .iter()
            .filter(|(_, (g, epoch))| *g == self.generation && *epoch == self.epoch)
            .map(|(a, _)| *a)
            .collect();
        adoptable.hash(state);
        self.cycle_starts.hash(state);
        (self.cycle, self.waiting.len(), self.session_start).hash(state);
        (&self.refusing, self.counted_start).hash(state);
        self.now.hash(state);
    }

    /// Checks one step: `input` at `at` gave `result` and `batch`; `before` was taken just
    /// before the input. Returns the first broken guarantee, prefixed with its name
    /// (`"G3: …"`) or the rule it concerns. The checks come in the order a reader follows
    /// a step: the books before the batch (a method per input), what the batch says as a
    /// whole, each command against the rule that allows it (a method per command), the
    /// books after the batch, and the core's getters against the books.
    pub fn step(
        &mut self,
        core: &Coordinator,
        before: &Snapshot,
        at: Timestamp,
        input: &Input,
        result: &Result<Option<RequestId>, InputError>,
        batch: &[Command],
    ) -> Result<(), String> {
        self.steps += 1;
        self.endpoint_refusal = None;
        let mut cx = Step {
            input,
            result,
            batch,
            logged_in_before: self.logged_in,
            restoring_before: self.restoring,
            generation_before: self.generation,
            epoch_before: self.epoch,
            current: None,
            end: AttemptEnd::None,
            stale_401: false,
            adoption_expected: None,
            logout: None,
            refreshes: 0,
        };
        match input {
            Input::Login { credentials } | Input::RefreshSucceeded { credentials, .. } => {
                self.secrets.insert(text(&credentials.access_token));
                if let Some(r) = &credentials.refresh_token {
                    self.secrets.insert(text(r));
                }
            }
            _ => {}
        }
        let verdict = match result {
            Err(e) => self.on_error(core, before, e, batch),
            Ok(_) => {
                self.now = self.now.max(at);
                self.check_batch(core, &mut cx)
            }
        };
        verdict.map_err(|e| cite(&e))
    }

    /// G9: errors change nothing.
    fn on_error(
        &self,
        core: &Coordinator,
        before: &Snapshot,
        e: &InputError,
        batch: &[Command],
    ) -> Result<(), String> {
        if !batch.is_empty() {
            return Err(format!("G9: {e} came with commands {batch:?}"));
        }
        let after = Snapshot::of(core);
        if &after != before {
            return Err(format!("G9: {e} changed state:\n{before:?}\n{after:?}"));
        }
        self.check_secret_free(&format!("{e} {e:?}"))
    }

    /// A batch the core returned, in the order a reader follows it.
    fn check_batch(&mut self, core: &Coordinator, cx: &mut Step<'_>) -> Result<(), String> {
        let cx_batch = cx.batch;
        self.before_batch(core, cx)?;
        self.expect_from_batch(cx)?;
        self.check_logout(cx)?;
        for (index, command) in cx_batch.iter().enumerate() {
            self.check_secret_free(&format!("{command:?}"))?;
            match command {
                Command::Send {
                    id,
                    access_token,
                    generation,
                }
                | Command::Replay {
                    id,
                    access_token,
                    generation,
                } => self.on_transmit(cx, command, *id, access_token, *generation)?,
                Command::Refresh {
                    attempt,
                    refresh_token,
                } => self.on_refresh(cx, command, *attempt, refresh_token)?,
                Command::StoreCredentials {
                    credentials,
                    generation,
                    expires_at,
                } => self.on_store(cx, index, credentials, *generation, *expires_at)?,
                Command::Complete { id } => self.on_complete(cx, command, *id)?,
                Command::Fail { id, reason } => self.on_fail(cx, command, *id, *reason)?,
                Command::Logout { .. } => self.on_logout(cx, index)?,
            }
        }
        self.after_batch(cx)?;
        self.after_attempt(cx)?;
        self.agrees_with(core)
    }

    /// The books before the batch: what the input itself changes, and what it is about.
    fn before_batch(&mut self, core: &Coordinator, cx: &mut Step<'_>) -> Result<(), String> {
        match cx.input {
            Input::Login { credentials } => self.on_login(core, cx, credentials),
            Input::Submit { options } => self.on_submit(cx, options),
            Input::Response { id, status } => self.on_response(cx, *id, *status),
            Input::TransportError { id } => self.on_transport_error(cx, *id),
            input => self.on_other_input(cx, input),
        }
    }

    /// `login` (rules 8, 13, 18).
    fn on_login(
        &mut self,
        core: &Coordinator,
        cx: &mut Step<'_>,
        credentials: &Credentials,
    ) -> Result<(), String> {
        let Step {
            batch,
            logged_in_before,
            ..
        } = *cx;
        self.logged_in = true;
        self.restoring = false;
        self.refusing.clear();
        self.counted_start = None;
        self.active = None;
        self.cycle = None;
        self.access_token = Some(text(&credentials.access_token));
        self.refresh_token = credentials.refresh_token.as_ref().map(text);
        self.set_lifetime(credentials.expires_in_ms);
        // A login whose token needs a refresh it cannot get ends in the same batch
        // (rule 13), so the generation is read from the core only if it still runs.
        let ended = batch.iter().any(|c| matches!(c, Command::Logout { .. }));
        let g = match core.generation() {
            Some(g) => g,
            None if ended => Generation(self.max_generation + 1),
            None => return Err("login did not log in".into()),
        };
        if !logged_in_before {
            self.session_start = Some(g);
        }
        self.new_generation(g)?;
        Ok(())
    }

    /// `submit` (rules 15, 16, 18; its options for rules 14, 19, 20).
    fn on_submit(&mut self, cx: &mut Step<'_>, options: &RequestOptions) -> Result<(), String> {
        let Step {
            result,
            batch,
            logged_in_before,
            restoring_before,
            ..
        } = *cx;
        let id = result
            .as_ref()
            .ok()
            .copied()
            .flatten()
            .ok_or("submit gave no id")?;
        self.open.insert(id);
        if !self.submitted.insert(id) {
            return Err(format!("submit reused id {id}"));
        }
        if !options.refresh {
            self.no_refresh.insert(id);
        }
        if let Some(route) = options.route {
            self.routes.insert(id, route);
        }
        if !options.replayable {
            self.one_shot.insert(id);
        }
        if !logged_in_before && !restoring_before {
            let want = [Command::Fail {
                id,
                reason: FailReason::NotLoggedIn,
            }];
            if batch != want {
                return Err(format!("rule 16: submit while logged out gave {batch:?}"));
            }
        }
        if restoring_before
            && batch.iter().any(|c| {
                !matches!(
                    c,
                    Command::Fail {
                        reason: FailReason::QueueFull,
                        ..
                    }
                )
            })
        {
            return Err(format!("rule 18: submit while restoring gave {batch:?}"));
        }
        cx.current = (logged_in_before || restoring_before).then_some(id);
        Ok(())
    }

    /// A response: rules 4, 5, 6, 7, 12, 14, 19 and 20 decide what it may do.
    fn on_response(&mut self, cx: &mut Step<'_>, id: RequestId, status: u16) -> Result<(), String> {
        let Step {
            batch,
            logged_in_before,
            generation_before,
            ..
        } = *cx;
        let (id, status) = (&id, &status);
        let g = self
            .in_flight
            .remove(id)
            .ok_or(format!("core accepted a response for {id}, not in flight"))?;
        let refused = self.config.is_refresh_status(*status);
        if refused && self.no_refresh.contains(id) {
            // Rule 19: completes as is; nothing else happens.
            if batch != [Command::Complete { id: *id }] {
                return Err(format!(
                    "rule 19: a refusal of a request without refresh gave {batch:?}"
                ));
            }
        } else if refused
            && logged_in_before
            && generation_before == Some(g)
            && self.route_refusal(*id)
        {
            // Rule 20: the route's refusal, not the token's: the request ends, the
            // token stays good, nothing else happens.
            let want = if !self.one_shot.contains(id) {
                Command::Fail {
                    id: *id,
                    reason: FailReason::Unauthorized,
                }
            } else {
                Command::Complete { id: *id }
            };
            if batch != [want] {
                return Err(format!(
                    "rule 20: a route's refusal of a working token gave {batch:?}"
                ));
            }
            self.endpoint_refusal = Some(*id);
            self.last_401.insert(*id, g);
            cx.current = Some(*id);
        } else if refused {
            self.bad.insert(g);
            if logged_in_before && generation_before == Some(g) {
                self.mark = Some(Mark::Refused);
                // Rule 20 watches what happens to its replay.
                self.refused_waiting.insert(*id);
            }
            self.last_401.insert(*id, g);
            cx.stale_401 = logged_in_before && generation_before.is_some_and(|c| g < c);
            let same_session = self.session_start.is_some_and(|start| g >= start);
            if logged_in_before && same_session {
                cx.current = Some(*id);
            }
        } else if *status < 500
            && logged_in_before
            && generation_before == Some(g)
            && let Some(start) = self.counted_start.take()
            && let Some(i) = self.cycle_starts.iter().position(|&t| t == start)
        {
            // Rule 7 (v2): the token the counted cycle brought was accepted.
            self.cycle_starts.remove(i);
        }
        Ok(())
    }

    /// A transport error (rule 17).
    fn on_transport_error(&mut self, cx: &Step<'_>, id: RequestId) -> Result<(), String> {
        let batch = cx.batch;
        let id = &id;
        self.in_flight.remove(id).ok_or(format!(
            "core accepted a transport error for {id}, not in flight"
        ))?;
        let want = [Command::Fail {
            id: *id,
            reason: FailReason::Transport,
        }];
        if batch != want {
            return Err(format!("rule 17: a transport error gave {batch:?}"));
        }
        Ok(())
    }

    /// The remaining inputs: restore, cancel, force refresh, refresh failures and timeouts
    /// (rules 9, 10, 11, 18).
    fn on_other_input(&mut self, cx: &mut Step<'_>, input: &Input) -> Result<(), String> {
        match input {
            Input::BeginRestore if !self.logged_in => self.restoring = true,
            Input::RestoreFailed | Input::Logout => self.restoring = false,
            Input::Cancel { id } => {
                self.in_flight.remove(id);
                self.waiting.retain(|(w, _)| w != id);
                self.open.remove(id);
                if !self.cancelled.insert(*id) || self.terminal.contains(id) {
                    return Err(format!("core accepted cancel of ended request {id}"));
                }
            }
            Input::ForceRefresh if self.logged_in && self.cycle.is_none() => {
                self.mark = Some(Mark::Refused);
            }
            Input::RefreshFailed { attempt, failure }
                if self.active.is_some_and(|(a, _)| a == *attempt) =>
            {
                self.active = None;
                cx.end = match failure {
                    RefreshFailure::Rejected if self.cycle.is_some_and(|c| c.abandoned) => {
                        let until = self.later(self.config.refresh_timeout_ms);
                        if let Some(cycle) = &mut self.cycle {
                            cycle.held_until = Some(until);
                        }
                        AttemptEnd::Held
                    }
                    RefreshFailure::Rejected => AttemptEnd::Rejected,
                    RefreshFailure::Transient { retry_after_ms } => {
                        self.transient_end(*retry_after_ms)
                    }
                };
            }
            Input::Timeout
                if self
                    .active
                    .is_some_and(|(_, deadline)| deadline <= self.now) =>
            {
                self.active = None; // abandoned at its deadline: a transient failure
                if let Some(cycle) = &mut self.cycle {
                    cycle.abandoned = true;
                }
                cx.end = self.transient_end(None);
            }
            Input::Timeout
                if self
                    .cycle
                    .is_some_and(|c| c.held_until.is_some_and(|t| t <= self.now)) =>
            {
                // Rule 9: the held rejection stands.
                cx.end = AttemptEnd::Rejected;
            }
            _ => {}
        }
        Ok(())
    }

    /// What the batch says as a whole: an adoption expected (rule 11), a logout, a held
    /// rejection that must stay silent (rule 9), and whether the input's own request now
    /// waits.
    fn expect_from_batch(&mut self, cx: &mut Step<'_>) -> Result<(), String> {
        let Step {
            input,
            batch,
            logged_in_before,
            generation_before,
            epoch_before,
            ..
        } = *cx;
        cx.adoption_expected = match input {
            Input::RefreshSucceeded { attempt, .. } => {
                let (g, epoch) = *self
                    .attempts
                    .get(attempt)
                    .ok_or(format!("core accepted unknown attempt {attempt}"))?;
                Some(logged_in_before && epoch == epoch_before && g == generation_before)
            }
            _ => None,
        };
        cx.logout = batch.iter().find_map(|c| match c {
            Command::Logout { reason } => Some(*reason),
            _ => None,
        });
        if cx.end == AttemptEnd::Held && !batch.is_empty() {
            return Err(format!(
                "G8: a retry's rejection ended the session while an abandoned attempt could \
                 still deliver the rotated refresh token: {batch:?}"
            ));
        }
        // The input's own request waits (rule 2, 3, 5, 15) unless the batch sends it, ends
        // it without it ever waiting, or refuses it a place.
        if let Some(id) = cx.current {
            let handled = batch.iter().any(|c| match c {
                Command::Send { id: i, .. }
                | Command::Replay { id: i, .. }
                | Command::Complete { id: i } => *i == id,
                Command::Fail { id: i, reason } => {
                    *i == id && matches!(reason, FailReason::QueueFull | FailReason::Unauthorized)
                }
                _ => false,
            });
            if !handled {
                let until = self.later(self.config.max_wait_ms);
                self.waiting.push_back((id, until));
            }
        }
        Ok(())
    }

    /// Which `Logout` this input may cause, and why (rules 7, 9, 12, 13).
    fn check_logout(&self, cx: &Step<'_>) -> Result<(), String> {
        let Step { input, batch, .. } = *cx;
        if let Some(reason) = cx.logout {
            let allowed = match reason {
                LogoutReason::Requested => matches!(input, Input::Logout),
                LogoutReason::RefreshRejected => cx.end == AttemptEnd::Rejected,
                LogoutReason::NoRefreshToken => self.refresh_token.is_none(),
                LogoutReason::ExcessiveRefresh => {
                    self.recent_cycles() >= self.config.refresh_window.max_refreshes as usize
                }
            };
            if !allowed {
                return Err(format!(
                    "Logout {{ {reason} }} not allowed by its rule: {input:?} gave {batch:?}"
                ));
            }
        }
        if cx.end == AttemptEnd::Rejected && cx.logout != Some(LogoutReason::RefreshRejected) {
            return Err(format!("rule 9: a rejection did not log out: {batch:?}"));
        }

        Ok(())
    }

    /// A `Send` or `Replay` (G3, G4, G5, G6; rules 3, 6, 20).
    fn on_transmit(
        &mut self,
        cx: &Step<'_>,
        command: &Command,
        id: RequestId,
        access_token: &Secret,
        generation: Generation,
    ) -> Result<(), String> {
        let Step { input, batch, .. } = *cx;
        let (id, generation) = (&id, &generation);
        let replay = matches!(command, Command::Replay { .. });
        // Rule 20: a request whose refusal asked for a refresh goes out with the
        // token that refresh brought.
        let fresh = self.refused_waiting.remove(id)
            && matches!(batch.first(), Some(Command::StoreCredentials { .. }));
        if fresh {
            self.fresh.insert(*id);
        } else {
            self.fresh.remove(id);
        }
        if !self.logged_in {
            return Err(format!("G6: {command:?} while logged out"));
        }
        self.check_open(*id, command)?;
        if self.in_flight.contains_key(id) {
            return Err(format!("{command:?} for a request already in flight"));
        }
        self.take_waiting(*id, command)?;
        if self.bad.contains(generation) {
            return Err(format!("G3: {command:?} with a known-bad generation"));
        }
        if Some(*generation) != self.generation
            || self.access_token.as_deref() != Some(access_token.expose())
        {
            return Err(format!("{command:?} does not carry the current token"));
        }
        if replay {
            if !self.sent.contains(id) {
                return Err(format!("{command:?}: replay of a request never sent"));
            }
            let n = self.replays.entry(*id).or_default();
            *n += 1;
            if *n > self.config.max_replays_per_request {
                return Err(format!("G5: request {id} replayed {n} times"));
            }
            if let Some(g) = self.last_401.get(id)
                && generation <= g
            {
                return Err(format!("G4: {command:?} after a 401 of generation {g}"));
            }
        } else {
            if !self.sent.insert(*id) {
                return Err(format!("{command:?}: Send twice"));
            }
            if matches!(input, Input::Submit { .. } | Input::Login { .. }) && self.expiring() {
                return Err(format!("G3: {command:?} inside the expiry skew"));
            }
        }
        self.in_flight.insert(*id, *generation);
        Ok(())
    }

    /// A `Refresh` (G1, G6, G8; rules 7, 10).
    fn on_refresh(
        &mut self,
        cx: &mut Step<'_>,
        command: &Command,
        attempt: AttemptId,
        refresh_token: &Secret,
    ) -> Result<(), String> {
        let attempt = &attempt;
        cx.refreshes += 1;
        if !self.logged_in {
            return Err(format!("G6: {command:?} while logged out"));
        }
        if let Some((a, _)) = self.active {
            return Err(format!("G1: {command:?} while attempt {a} is active"));
        }
        if self.refresh_token.as_deref() != Some(refresh_token.expose()) {
            return Err(format!("G8: {command:?} without the newest refresh token"));
        }
        if attempt.0 != self.max_attempt + 1 {
            return Err(format!("{command:?}: attempts must count up by one"));
        }
        self.max_attempt = attempt.0;
        self.attempts
            .insert(*attempt, (self.generation, self.epoch));
        self.active = Some((*attempt, self.later(self.config.refresh_timeout_ms)));
        self.start_attempt(command)?;
        Ok(())
    }

    /// `StoreCredentials` (G6, G8; rule 11; §6).
    fn on_store(
        &mut self,
        cx: &Step<'_>,
        index: usize,
        credentials: &Credentials,
        generation: Generation,
        expires_at: Option<Timestamp>,
    ) -> Result<(), String> {
        let Step {
            input,
            batch,
            logged_in_before,
            ..
        } = *cx;
        let (generation, expires_at) = (&generation, &expires_at);
        if !logged_in_before {
            return Err(format!(
                "G6: a refresh result resurrected a logged-out session: {batch:?}"
            ));
        }
        let Input::RefreshSucceeded {
            credentials: given, ..
        } = input
        else {
            return Err(format!("StoreCredentials for {input:?}"));
        };
        if index != 0 || cx.adoption_expected != Some(true) {
            return Err(format!(
                "rule 11: StoreCredentials for a stale refresh result: {input:?}"
            ));
        }
        let want_refresh = given
            .refresh_token
            .as_ref()
            .map(text)
            .or(self.refresh_token.clone());
        if credentials.refresh_token.as_ref().map(text) != want_refresh {
            return Err("G8: stored refresh token is not the newest".into());
        }
        self.access_token = Some(text(&credentials.access_token));
        self.refresh_token = want_refresh;
        self.set_lifetime(credentials.expires_in_ms);
        if *expires_at != self.expires_at {
            return Err(format!(
                "§6: StoreCredentials says the token expires at {expires_at:?}, \
                 it expires at {:?}",
                self.expires_at
            ));
        }
        self.active = None;
        self.counted_start = self.cycle.and_then(|c| c.counted_at);
        self.cycle = None;
        self.refusing.clear();
        self.new_generation(*generation)?;
        Ok(())
    }

    /// A `Complete`: only where a rule hands the response back.
    fn on_complete(
        &mut self,
        cx: &Step<'_>,
        command: &Command,
        id: RequestId,
    ) -> Result<(), String> {
        let id = &id;
        self.check_open(*id, command)?;
        self.check_complete(cx, *id)?;
        self.terminal.insert(*id);
        self.open.remove(id);
        self.in_flight.remove(id);
        Ok(())
    }

    /// A `Fail`: its reason must be the one its rule gives.
    fn on_fail(
        &mut self,
        cx: &Step<'_>,
        command: &Command,
        id: RequestId,
        reason: FailReason,
    ) -> Result<(), String> {
        let input = cx.input;
        let (id, reason) = (&id, &reason);
        self.check_open(*id, command)?;
        let waited = self.take_waiting(*id, command)?;
        self.check_fail_reason(input, cx.current, *id, *reason, waited, cx.end, cx.logout)?;
        self.terminal.insert(*id);
        self.open.remove(id);
        self.in_flight.remove(id);
        Ok(())
    }

    /// A `Logout`: last in its batch, only while a session (or a restore) runs.
    fn on_logout(&mut self, cx: &Step<'_>, index: usize) -> Result<(), String> {
        let Step {
            batch,
            logged_in_before,
            restoring_before,
            ..
        } = *cx;
        if !logged_in_before && !restoring_before {
            return Err("Logout while logged out".into());
        }
        if index + 1 != batch.len() {
            return Err(format!("Logout is not last in {batch:?}"));
        }
        self.logged_in = false;
        self.generation = None;
        self.session_start = None;
        self.active = None;
        self.cycle = None;
        self.epoch += 1;
        self.cycle_starts.clear();
        Ok(())
    }

    /// Batches that release or fail every waiting request leave none behind (rules 7, 8, 9,
    /// 10, 12, 13, 18), and a timeout none past its deadline (rule 15).
    fn after_batch(&mut self, cx: &Step<'_>) -> Result<(), String> {
        let Step {
            input,
            batch,
            restoring_before,
            ..
        } = *cx;
        let everything_goes = (matches!(input, Input::Login { .. }) && cx.refreshes == 0)
            || (restoring_before && matches!(input, Input::RestoreFailed))
            || cx.adoption_expected == Some(true)
            || cx.logout.is_some()
            || cx.end == AttemptEnd::GiveUp;
        if everything_goes && !self.waiting.is_empty() {
            return Err(format!(
                "requests {:?} still wait after {input:?} gave {batch:?}",
                self.waiting
            ));
        }
        if matches!(input, Input::Timeout)
            && let Some((id, until)) = self.waiting.front()
            && *until <= self.now
        {
            return Err(format!(
                "rule 15: request {id} waits past {until} at {}",
                self.now
            ));
        }
        Ok(())
    }

    /// How the attempt ended (rules 4, 10, 11; G1).
    fn after_attempt(&mut self, cx: &Step<'_>) -> Result<(), String> {
        let Step {
            batch,
            generation_before,
            ..
        } = *cx;
        match cx.end {
            AttemptEnd::Backoff(delay) if self.logged_in => {
                let until = self.later(delay);
                if let Some(cycle) = &mut self.cycle {
                    cycle.backoff_until = Some(until);
                }
            }
            AttemptEnd::GiveUp => {
                // Rule 10 / G3: the generation stays known bad.
                self.cycle = None;
                if let Some(g) = self.generation {
                    self.bad.insert(g);
                    self.mark = Some(Mark::GaveUp);
                }
            }
            _ => {}
        }
        if cx.refreshes > 0 && cx.stale_401 {
            let current = generation_before.ok_or("a stale 401 implies a session")?;
            let token_needs_refresh =
                self.bad.contains(&current) || self.mark.is_some() || self.expiring();
            if !token_needs_refresh {
                return Err(format!("rule 4: a stale 401 started a refresh: {batch:?}"));
            }
        }
        if cx.refreshes > 1 {
            return Err(format!(
                "G1: {} Refresh commands in one batch",
                cx.refreshes
            ));
        }
        if cx.adoption_expected == Some(true)
            && !matches!(batch.first(), Some(Command::StoreCredentials { .. }))
        {
            return Err(format!(
                "rule 11 / G8: accepted refresh result discarded: {batch:?}"
            ));
        }
        Ok(())
    }

    /// Every waiting or in-flight request is known to the core, and nothing more; its
    /// session and counters agree with the command stream.
    fn agrees_with(&self, core: &Coordinator) -> Result<(), String> {
        let open = self.open_count();
        if core.open_requests() != open {
            return Err(format!(
                "core holds {} open requests, host expects {open}",
                core.open_requests()
            ));
        }
        if core.waiting() != self.waiting.len() {
            return Err(format!(
                "core says {} requests wait, the command stream says {}",
                core.waiting(),
                self.waiting.len()
            ));
        }
        if core.is_logged_in() != self.logged_in
            || core.generation() != self.generation
            || core.is_restoring() != self.restoring
        {
            return Err("session state differs from the command stream".into());
        }
        // The core's counters agree with what the command stream shows.
        let s = core.stats();
        let failed = s.failed.total();
        if s.completed + failed != self.terminal.len() as u64 {
            return Err("stats: terminal commands miscounted".into());
        }
        if s.sent != self.sent.len() as u64 || s.refresh_attempts != self.max_attempt {
            return Err("stats: sends or refresh attempts miscounted".into());
        }
        if s.refresh_cycles != self.cycles_seen {
            return Err(format!(
                "stats: {} refresh cycles, the command stream shows {}",
                s.refresh_cycles, self.cycles_seen
            ));
        }
        Ok(())
    }

    /// A `Refresh`: a retry of the running cycle (after its backoff, rule 10) or the start
    /// of a new one (counted against the window, rule 7).
    fn start_attempt(&mut self, command: &Command) -> Result<(), String> {
        match &mut self.cycle {
            Some(cycle) => {
                let until = cycle
                    .backoff_until
                    .take()
                    .ok_or(format!("{command:?}: a second refresh in a running cycle"))?;
                if self.now < until {
                    return Err(format!(
                        "rule 10: {command:?} at {} before its backoff ends at {until}",
                        self.now
                    ));
                }
                cycle.attempts += 1;
                if cycle.attempts > self.config.max_retries + 1 {
                    return Err("G5: more transient retries than max_retries".into());
                }
            }
            None => {
                // Rule 7: a refusal counts, a retry after a give-up does not, an expiry
                // counts only for a token younger than `min_token_age_ms`.
                let counts = match self.mark {
                    Some(Mark::Refused) => true,
                    Some(Mark::GaveUp) => false,
                    None => self.now - self.received_at < self.config.min_token_age_ms,
                };
                if counts {
                    if self.recent_cycles() >= self.config.refresh_window.max_refreshes as usize {
                        return Err(format!(
                            "G5: {command:?} starts one cycle more than the window allows"
                        ));
                    }
                    self.cycle_starts.push(self.now);
                }
                self.cycle = Some(CycleBook {
                    attempts: 1,
                    counted_at: counts.then_some(self.now),
                    ..CycleBook::default()
                });
                self.cycles_seen += 1;
            }
        }
        Ok(())
    }

    /// Cycles started within the window that ends now (rule 7).
    fn recent_cycles(&self) -> usize {
        let window = self.config.refresh_window.window_ms;
        self.cycle_starts
            .iter()
            .filter(|&&t| self.now - t < window)
            .count()
    }

    /// A transient failure of the active attempt: the backoff the contract asks for, or
    /// the end of the cycle when it was the last allowed attempt (rule 10).
    fn transient_end(&self, retry_after_ms: Option<u64>) -> AttemptEnd {
        let attempts = self.cycle.map_or(1, |c| c.attempts);
        if attempts > self.config.max_retries {
            return AttemptEnd::GiveUp;
        }
        let exponential =
            (0..attempts - 1).fold(self.config.initial_backoff_ms, |d, _| d.saturating_mul(2));
        let delay = exponential
            .max(retry_after_ms.unwrap_or(0))
            .min(self.config.max_backoff_ms);
        AttemptEnd::Backoff(delay)
    }

    /// Takes `id` off the waiting list, which must release and fail in FIFO order.
    /// Returns until when it could wait, if it was waiting.
    fn take_waiting(
        &mut self,
        id: RequestId,
        command: &Command,
    ) -> Result<Option<Timestamp>, String> {
        match self.waiting.iter().position(|(w, _)| *w == id) {
            None => Ok(None),
            Some(0) => Ok(self.waiting.pop_front().map(|(_, until)| until)),
            Some(_) => Err(format!(
                "FIFO: {command:?} before {:?}, which waited longer",
                self.waiting.front().map(|(w, _)| *w)
            )),
        }
    }

    /// Each `FailReason` only where its rule allows it.
    #[allow(clippy::too_many_arguments)]
    fn check_fail_reason(
        &self,
        input: &Input,
        current: Option<RequestId>,
        id: RequestId,
        reason: FailReason,
        waited_until: Option<Timestamp>,
        end: AttemptEnd,
        logout: Option<LogoutReason>,
    ) -> Result<(), String> {
        let waited = waited_until.is_some();
        let refused = |i: &RequestId| matches!(input, Input::Response { id: r, status } if r == i && self.config.is_refresh_status(*status));
        let allowed = match reason {
            // Rule 16 (checked exactly above).
            // Rules 16 and 18.
            FailReason::NotLoggedIn => {
                matches!(input, Input::Submit { .. })
                    || (waited && matches!(input, Input::RestoreFailed))
            }
            // Rule 17 (checked exactly above).
            FailReason::Transport => matches!(input, Input::TransportError { id: i } if *i == id),
            // Rules 12 and 13.
            FailReason::LoggedOut => {
                (waited
                    && matches!(
                        logout,
                        Some(LogoutReason::Requested | LogoutReason::NoRefreshToken)
                    ))
                    || (refused(&id) && current.is_none())
            }
            // Rule 9.
            FailReason::RefreshRejected => {
                waited
                    && end == AttemptEnd::Rejected
                    && logout == Some(LogoutReason::RefreshRejected)
            }
            // Rule 10: never with a logout.
            FailReason::RefreshUnavailable => {
                waited && end == AttemptEnd::GiveUp && logout.is_none()
            }
            // Rule 7.
            FailReason::ExcessiveRefresh => {
                waited && logout == Some(LogoutReason::ExcessiveRefresh)
            }
            // Rules 6 and 20.
            FailReason::Unauthorized => {
                refused(&id)
                    && (self.replays.get(&id).copied().unwrap_or(0)
                        >= self.config.max_replays_per_request
                        || self.endpoint_refusal == Some(id))
            }
            // Rule 15.
            FailReason::QueueFull => {
                current == Some(id) && self.waiting.len() >= self.config.max_pending as usize
            }
            FailReason::WaitTimeout => {
                matches!(input, Input::Timeout) && waited_until.is_some_and(|t| t <= self.now)
            }
        };
        if allowed {
            Ok(())
        } else {
            Err(format!(
                "Fail {{ {id}, {reason} }} not allowed by its rule after {input:?}"
            ))
        }
    }

    /// A `Complete` hands the caller the response its request got, so only that request's
    /// own response can complete it: one with a status that is not a refresh status, or a
    /// refusal handed back as it is because the request asked for no refresh (rule 19) or
    /// cannot be sent again (rules 14 and 20) — the latter only within the running session
    /// (rule 12: a refusal from a session that ended fails with `LoggedOut`). Every other
    /// refusal is replayed, waits for a refresh or fails with a reason.
    fn check_complete(&self, cx: &Step<'_>, id: RequestId) -> Result<(), String> {
        let input = cx.input;
        let allowed = match input {
            Input::Response { id: r, status } if *r == id => {
                !self.config.is_refresh_status(*status)
                    || self.no_refresh.contains(&id)
                    || (self.one_shot.contains(&id) && cx.current == Some(id))
            }
            _ => false,
        };
        if allowed {
            Ok(())
        } else {
            Err(format!(
                "Complete {{ {id} }} not allowed by a rule after {input:?}: a refusal of a \
                 replayable request that may refresh is never handed back"
            ))
        }
    }

    /// New credentials arrived now with this lifetime (§4.5; a lifetime past the end of
    /// the clock is cut there, §3.5).
    fn set_lifetime(&mut self, expires_in_ms: Option<u64>) {
        self.received_at = self.now;
        self.expires_at = expires_in_ms.map(|l| self.later(l));
        self.refresh_at =
            expires_in_ms.map(|l| self.later(l - self.config.expiry_skew_ms.min(l / 2)));
        self.mark = None;
    }

    /// `ms` from now, or the end of the clock if that comes first (§3.5).
    fn later(&self, ms: u64) -> Timestamp {
        self.now.saturating_add(ms).min(MAX_TIMESTAMP)
    }

    /// Whether the current token may not be sent for its age: inside its skew, or —
    /// without a refresh token, where the skew buys nothing — expired (rules 2, 13).
    fn expiring(&self) -> bool {
        let at = if self.refresh_token.is_some() {
            self.refresh_at
        } else {
            self.expires_at
        };
        at.is_some_and(|t| self.now >= t)
    }

    fn new_generation(&mut self, g: Generation) -> Result<(), String> {
        if g.0 <= self.max_generation {
            return Err(format!(
                "generation {g} is not newer than {}",
                self.max_generation
            ));
        }
        self.max_generation = g.0;
        self.generation = Some(g);
        Ok(())
    }

    fn check_open(&self, id: RequestId, command: &Command) -> Result<(), String> {
        if !self.submitted.contains(&id) {
            return Err(format!("{command:?} for a request never submitted"));
        }
        if self.terminal.contains(&id) {
            return Err(format!(
                "G2: {command:?} after the request's terminal command"
            ));
        }
        if self.cancelled.contains(&id) {
            return Err(format!("G2: {command:?} after the request was cancelled"));
        }
        Ok(())
    }

    /// G10: `shown` (any formatted output) contains no token the core was ever given.
    pub fn check_secret_free(&self, shown: &str) -> Result<(), String> {
        match self
            .secrets
            .iter()
            .find(|s| !s.is_empty() && shown.contains(s.as_str()))
        {
            Some(_) => Err(format!("G10: a token appears in output: {shown}")),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Oracle, Snapshot, cite};
    use reauth::{
        Command, Config, Coordinator, Credentials, FailReason, Input, RequestId, RequestOptions,
    };

    /// Rule 12: a refusal that arrives after the session ended is `Fail { LoggedOut }`,
    /// also for a request that cannot be replayed; the oracle refuses a `Complete` for it.
    #[test]
    fn a_one_shot_refusal_from_an_ended_session_is_not_handed_back() {
        fn step(
            core: &mut Coordinator,
            oracle: &mut Oracle,
            at: u64,
            input: &Input,
            shown: Option<&[Command]>,
        ) -> Result<Vec<Command>, String> {
            let before = Snapshot::of(core);
            let result = core.apply(at, input.clone());
            let batch: Vec<Command> = core.drain_commands().collect();
            oracle.step(core, &before, at, input, &result, shown.unwrap_or(&batch))?;
            Ok(batch)
        }
        let config = Config::default();
        let mut core = Coordinator::new(config.clone()).expect("valid");
        let mut oracle = Oracle::new(config);
        // Token texts no command's `Debug` contains by chance (G10 looks for them).
        let login = Input::Login {
            credentials: Credentials::new("zqat1x").with_refresh_token("zqrt1x"),
        };
        step(&mut core, &mut oracle, 0, &login, None).expect("login");
        let submit = Input::Submit {
            options: RequestOptions::default().with_replayable(false),
        };
        step(&mut core, &mut oracle, 1, &submit, None).expect("submit");
        step(&mut core, &mut oracle, 2, &Input::Logout, None).expect("logout");
        let refused = Input::Response {
            id: RequestId(1),
            status: 401,
        };
        let forged = [Command::Complete { id: RequestId(1) }];
        let (mut probe_core, mut probe_oracle) = (core.clone(), oracle.clone());
        let verdict = step(
            &mut probe_core,
            &mut probe_oracle,
            3,
            &refused,
            Some(&forged),
        );
        assert!(verdict.is_err(), "a Complete was accepted: {verdict:?}");
        let batch = step(&mut core, &mut oracle, 3, &refused, None).expect("the core's answer");
        assert_eq!(
            batch,
            [Command::Fail {
                id: RequestId(1),
                reason: FailReason::LoggedOut
            }]
        );
    }

    #[test]
    fn a_verdict_names_its_rule_from_the_rules_table() {
        assert_eq!(
            cite("rule 9: a rejection did not log out"),
            "rule 9 (Rejected): a rejection did not log out"
        );
        assert_eq!(
            cite("rule 11 / G8: discarded"),
            "rule 11 (Deadline and staleness) / G8: discarded"
        );
        // Built, so that the repository's citation check does not read it as one.
        let unknown = format!("rule {}: no such rule", 99);
        assert_eq!(cite(&unknown), unknown);
        assert_eq!(cite("G3: a known-bad token"), "G3: a known-bad token");
    }
}
