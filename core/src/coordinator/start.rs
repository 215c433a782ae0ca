//! The state a recording starts from ([`Start`]): the machine's whole behavioural state
//! as plain data, taken from a coordinator and turned back into one, checked.

use std::collections::{BTreeSet, VecDeque};

use super::*;
use crate::command::RouteKey;
use crate::stats::Stats;
use crate::trace::StartError;

/// The state a recording starts from: everything the machine's behaviour depends on, in
/// the terms of `docs/contract.md` (generations, attempts, the refresh cycle, the window,
/// the waiting order). Tokens are the recording's placeholders. It follows the core's
/// state closely and may change with it; [`Coordinator::resume`] checks it.
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(rename_all = "snake_case", deny_unknown_fields)
)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Start {
    /// The clock (the largest `now` seen).
    pub now: Timestamp,
    /// The id the next `submit` gets.
    pub next_request: u64,
    /// The generation the next accepted credentials get.
    pub next_generation: u64,
    /// The attempt the next `Refresh` carries.
    pub next_attempt: u64,
    /// The counters.
    pub stats: Stats,
    /// Logged out, restoring, or a session.
    pub phase: StartPhase,
    /// The open requests, by increasing id.
    pub requests: Vec<OpenRequest>,
}

/// The phase of a [`Start`].
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(rename_all = "snake_case", deny_unknown_fields)
)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartPhase {
    /// No session.
    LoggedOut,
    /// Stored credentials are being read (rule 18); `waiting` in order.
    Restoring {
        /// The requests waiting for them, oldest first.
        waiting: Vec<RequestId>,
    },
    /// A session.
    LoggedIn(Box<StartSession>),
}

/// A session in a [`Start`].
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(rename_all = "snake_case", deny_unknown_fields)
)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartSession {
    /// The access token (a placeholder).
    #[cfg_attr(
        feature = "serde",
        serde(serialize_with = "crate::trace::token_text::serialize")
    )]
    pub access_token: Secret,
    /// The refresh token (a placeholder), if any.
    #[cfg_attr(
        feature = "serde",
        serde(serialize_with = "crate::trace::token_text::option::serialize")
    )]
    pub refresh_token: Option<Secret>,
    /// The current generation.
    pub generation: Generation,
    /// The generation the session started with (rule 12).
    pub first_generation: Generation,
    /// The generation whose credentials brought the refresh token.
    pub refresh_token_from: Generation,
    /// When the current credentials arrived.
    pub received_at: Timestamp,
    /// When the access token expires.
    pub expires_at: Option<Timestamp>,
    /// When it enters its expiry skew.
    pub refresh_at: Option<Timestamp>,
    /// Why the token must not be sent again, if it must not (§4.6).
    pub bad: Option<KnownBad>,
    /// The refresh cycle.
    pub cycle: StartCycle,
    /// Attempts from this number on are adoptable (rule 11).
    pub adoptable_from: u64,
    /// Start times of the cycles in the refresh window (rule 7), oldest first.
    pub window: Vec<Timestamp>,
    /// The window entry of the cycle that brought the current credentials (rule 7).
    pub counted_start: Option<Timestamp>,
    /// Routes that refused the current token (rule 20).
    pub refusing: Vec<RouteKey>,
    /// The requests waiting for a refresh, oldest first.
    pub waiting: Vec<RequestId>,
}

/// Why a token is known bad (§4.6).
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(rename_all = "snake_case", deny_unknown_fields)
)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KnownBad {
    /// Refused, or the host forced a refresh.
    Refused,
    /// The last refresh cycle gave up (rule 10).
    GaveUp,
}

/// The refresh cycle of a [`StartSession`].
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(rename_all = "snake_case", deny_unknown_fields)
)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartCycle {
    /// No refresh runs.
    Idle,
    /// `attempt` is out, `retries` transient failures so far, abandoned at `deadline`.
    InFlight {
        /// What the cycle knows.
        run: StartRun,
        /// The active attempt.
        attempt: u64,
        /// Transient failures retried.
        retries: u32,
        /// Its deadline.
        deadline: Timestamp,
    },
    /// Backing off until `until` (rule 10).
    Backoff {
        /// What the cycle knows.
        run: StartRun,
        /// Transient failures retried.
        retries: u32,
        /// The end of the backoff.
        until: Timestamp,
    },
    /// A rejection held until `until` (rule 9).
    Held {
        /// What the cycle knows.
        run: StartRun,
        /// When the rejection stands.
        until: Timestamp,
    },
}

/// What a running cycle knows.
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(rename_all = "snake_case", deny_unknown_fields)
)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StartRun {
    /// Its window entry, if it counted (rule 7).
    pub counted_at: Option<Timestamp>,
    /// An attempt of it was abandoned at its deadline (rule 9).
    pub abandoned: bool,
}

/// An open request of a [`Start`].
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(rename_all = "snake_case", deny_unknown_fields)
)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenRequest {
    /// Its id.
    pub id: RequestId,
    /// It may be sent again.
    pub replayable: bool,
    /// A refusal of it may start or wait for a refresh (rule 19).
    pub refresh: bool,
    /// Replays so far.
    pub replays: u8,
    /// How far it got.
    pub progress: OpenProgress,
    /// Its route (rule 20).
    pub route: Option<RouteKey>,
    /// Waiting until this deadline, or in flight.
    pub state: OpenState,
}

/// How far an [`OpenRequest`] got.
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenProgress {
    /// Never went out (its first transmission is a `Send`).
    New,
    /// Went out (any further one is a `Replay`).
    Sent,
    /// Its own refusal of the current generation made it wait for a refresh (rule 20).
    Refused,
    /// Went out again with the token that refresh brought (rule 20).
    Fresh,
}

/// Where an [`OpenRequest`] is.
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(rename_all = "snake_case", deny_unknown_fields)
)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenState {
    /// Waiting, at most until `deadline`.
    Waiting {
        /// When it fails `WaitTimeout`.
        deadline: Timestamp,
    },
    /// In flight with `generation`.
    InFlight {
        /// The generation it was sent with.
        generation: Generation,
    },
}

impl Start {
    /// Whether this is the state of a new coordinator (nothing happened yet).
    pub(crate) fn is_new(&self) -> bool {
        self.now == 0
            && (self.next_request, self.next_generation, self.next_attempt) == (1, 1, 1)
            && self.stats == Stats::default()
            && self.phase == StartPhase::LoggedOut
            && self.requests.is_empty()
    }

    pub(crate) fn of(core: &Coordinator) -> Start {
        let e = &core.engine;
        let list = |waiting: &WaitList| {
            let mut ids = Vec::with_capacity(waiting.len as usize);
            let mut link = waiting.head;
            while let Some(id) = link.map(Linked::id) {
                ids.push(id);
                link = match e.requests.get(id).map(|r| r.state) {
                    Some(RequestState::Waiting { next, .. }) => next,
                    _ => None,
                };
            }
            ids
        };
        let phase = match &core.phase {
            Phase::LoggedOut => StartPhase::LoggedOut,
            Phase::Restoring(waiting) => StartPhase::Restoring {
                waiting: list(waiting),
            },
            Phase::LoggedIn(s) => StartPhase::LoggedIn(Box::new(StartSession {
                access_token: s.access_token.clone(),
                refresh_token: s.refresh_token.clone(),
                generation: s.generation,
                first_generation: s.first_generation,
                refresh_token_from: s.refresh_token_from,
                received_at: s.received_at,
                expires_at: s.expires_at,
                refresh_at: s.refresh_at,
                bad: s.bad.map(|b| match b {
                    Bad::Refused => KnownBad::Refused,
                    Bad::GaveUp => KnownBad::GaveUp,
                }),
                cycle: match s.cycle {
                    Cycle::Idle => StartCycle::Idle,
                    Cycle::InFlight {
                        run,
                        attempt,
                        retries,
                        deadline,
                    } => StartCycle::InFlight {
                        run: run.into(),
                        attempt: attempt.0,
                        retries,
                        deadline,
                    },
                    Cycle::Backoff {
                        run,
                        retries,
                        until,
                    } => StartCycle::Backoff {
                        run: run.into(),
                        retries,
                        until,
                    },
                    Cycle::Held { run, until } => StartCycle::Held {
                        run: run.into(),
                        until,
                    },
                },
                adoptable_from: s.adoptable_from,
                window: s.window.iter().copied().collect(),
                counted_start: s.counted_start,
                refusing: s.refusing.clone(),
                waiting: list(&s.waiting),
            })),
        };
        let mut requests: Vec<OpenRequest> = e
            .requests
            .iter()
            .map(|(id, r)| OpenRequest {
                id,
                replayable: r.ticket.replayable,
                refresh: r.ticket.refresh,
                replays: r.ticket.replays,
                progress: match r.ticket.progress {
                    Progress::New => OpenProgress::New,
                    Progress::Sent => OpenProgress::Sent,
                    Progress::Refused => OpenProgress::Refused,
                    Progress::Fresh => OpenProgress::Fresh,
                },
                route: r.ticket.route,
                state: match r.state {
                    RequestState::Waiting { deadline, .. } => OpenState::Waiting { deadline },
                    RequestState::InFlight { generation } => OpenState::InFlight { generation },
                },
            })
            .collect();
        requests.sort_by_key(|r| r.id);
        Start {
            now: e.now,
            next_request: e.next_request,
            next_generation: e.next_generation,
            next_attempt: e.next_attempt,
            stats: e.stats,
            phase,
            requests,
        }
    }
}

impl From<Run> for StartRun {
    fn from(run: Run) -> Self {
        StartRun {
            counted_at: run.window_entry(),
            abandoned: run.abandoned,
        }
    }
}

impl StartRun {
    fn run(self) -> Run {
        Run {
            start: self.counted_at.unwrap_or(0),
            counted: self.counted_at.is_some(),
            abandoned: self.abandoned,
        }
    }
}

impl Coordinator {
    /// The state the coordinator is in, as plain data (tokens included as they are:
    /// the recorder takes it from a coordinator that holds only placeholders).
    pub(crate) fn start(&self) -> Start {
        Start::of(self)
    }

    /// A coordinator in the state `start` describes, with `config` — where a recording
    /// that begins mid-session begins. Checked: a state the machine cannot reach in a way
    /// that would break it (a waiting list naming a request that does not wait, an id
    /// not yet issued, a generation from the future, a clock past its end…) is an error,
    /// and nothing is built.
    pub fn resume(config: Config, start: &Start) -> Result<Coordinator, StartError> {
        let mut core = Coordinator::new(config)?;
        check(&core.engine.config, start)?;
        let e = &mut core.engine;
        e.now = start.now;
        e.next_request = start.next_request;
        e.next_generation = start.next_generation;
        e.next_attempt = start.next_attempt;
        e.stats = start.stats;
        for r in &start.requests {
            let progress = match r.progress {
                OpenProgress::New => Progress::New,
                OpenProgress::Sent => Progress::Sent,
                OpenProgress::Refused => Progress::Refused,
                OpenProgress::Fresh => Progress::Fresh,
            };
            let ticket = Ticket {
                replayable: r.replayable,
                refresh: r.refresh,
                replays: r.replays,
                progress,
                route: r.route,
            };
            let state = match r.state {
                OpenState::InFlight { generation } => RequestState::InFlight { generation },
                OpenState::Waiting { deadline } => RequestState::Waiting {
                    deadline,
                    prev: None,
                    next: None,
                },
            };
            e.requests.insert(r.id, Request { ticket, state });
        }
        core.phase = match &start.phase {
            StartPhase::LoggedOut => Phase::LoggedOut,
            StartPhase::Restoring { waiting } => Phase::Restoring(link(e, waiting)),
            StartPhase::LoggedIn(s) => Phase::LoggedIn(Session {
                access_token: s.access_token.clone(),
                refresh_token: s.refresh_token.clone(),
                generation: s.generation,
                first_generation: s.first_generation,
                refresh_token_from: s.refresh_token_from,
                received_at: s.received_at,
                expires_at: s.expires_at,
                refresh_at: s.refresh_at,
                bad: s.bad.map(|b| match b {
                    KnownBad::Refused => Bad::Refused,
                    KnownBad::GaveUp => Bad::GaveUp,
                }),
                cycle: match s.cycle {
                    StartCycle::Idle => Cycle::Idle,
                    StartCycle::InFlight {
                        run,
                        attempt,
                        retries,
                        deadline,
                    } => Cycle::InFlight {
                        run: run.run(),
                        attempt: AttemptId(attempt),
                        retries,
                        deadline,
                    },
                    StartCycle::Backoff {
                        run,
                        retries,
                        until,
                    } => Cycle::Backoff {
                        run: run.run(),
                        retries,
                        until,
                    },
                    StartCycle::Held { run, until } => Cycle::Held {
                        run: run.run(),
                        until,
                    },
                },
                adoptable_from: s.adoptable_from,
                window: s.window.iter().copied().collect::<VecDeque<_>>(),
                counted_start: s.counted_start,
                refusing: s.refusing.clone(),
                waiting: link(e, &s.waiting),
            }),
        };
        Ok(core)
    }
}

/// Threads `ids` (checked: each waits, once) into a waiting list.
fn link(e: &mut Engine, ids: &[RequestId]) -> WaitList {
    let mut list = WaitList::default();
    for &id in ids {
        let tail = list.tail;
        if let Some(r) = e.requests.get_mut(id) {
            r.state = match r.state {
                RequestState::Waiting { deadline, .. } => RequestState::Waiting {
                    deadline,
                    prev: tail,
                    next: None,
                },
                other => other,
            };
        }
        if let Some(t) = tail.map(Linked::id)
            && let Some(r) = e.requests.get_mut(t)
            && let RequestState::Waiting { next, .. } = &mut r.state
        {
            *next = Linked::of(id);
        }
        if list.head.is_none() {
            list.head = Linked::of(id);
        }
        list.tail = Linked::of(id);
        list.len += 1;
    }
    list
}

/// Every counter of `stats`.
fn counters(stats: &Stats) -> [u64; 23] {
    let f = &stats.failed;
    [
        stats.submitted,
        stats.sent,
        stats.replayed,
        stats.completed,
        stats.cancelled,
        stats.unauthorized_responses,
        stats.refresh_cycles,
        stats.refresh_attempts,
        stats.refresh_succeeded,
        stats.refresh_rejected,
        stats.refresh_transient,
        stats.refresh_timeouts,
        stats.refresh_results_ignored,
        stats.logouts,
        f.not_logged_in,
        f.logged_out,
        f.refresh_rejected,
        f.refresh_unavailable,
        f.excessive_refresh,
        f.unauthorized,
        f.queue_full,
        f.wait_timeout,
        f.transport,
    ]
}

/// What [`Coordinator::resume`] refuses.
fn check(config: &Config, s: &Start) -> Result<(), StartError> {
    let bad = |what: &str| Err(StartError::Inconsistent(what.to_owned()));
    if s.now > MAX_TIMESTAMP {
        return bad("now is past the end of the clock");
    }
    if s.next_request == 0 || s.next_generation == 0 || s.next_attempt == 0 {
        return bad("the next request, generation and attempt count from 1");
    }
    // Counters a core could not reach in the clock's lifetime would overflow.
    if [s.next_request, s.next_generation, s.next_attempt]
        .into_iter()
        .chain(counters(&s.stats))
        .any(|n| n > MAX_TIMESTAMP)
    {
        return bad("a counter is past 2^53 - 1");
    }
    let mut ids = BTreeSet::new();
    for r in &s.requests {
        if r.id.0 == 0 || r.id.0 >= s.next_request || !ids.insert(r.id) {
            return bad("an open request's id is 0, not yet issued, or repeated");
        }
        if u32::from(r.replays) > config.max_replays_per_request
            || r.progress == OpenProgress::New && r.replays > 0
        {
            return bad("an open request was replayed more than its budget, or before it went out");
        }
        match r.state {
            OpenState::InFlight { generation } => {
                if generation.0 == 0
                    || generation.0 >= s.next_generation
                    || r.progress == OpenProgress::New
                {
                    return bad(
                        "a request in flight never went out, or has a generation not yet given",
                    );
                }
            }
            OpenState::Waiting { deadline } => {
                if deadline > MAX_TIMESTAMP {
                    return bad("a waiting request's deadline is past the end of the clock");
                }
            }
        }
    }
    let waiting: Vec<RequestId> = s
        .requests
        .iter()
        .filter(|r| matches!(r.state, OpenState::Waiting { .. }))
        .map(|r| r.id)
        .collect();
    let listed: &[RequestId] = match &s.phase {
        StartPhase::LoggedOut => &[],
        StartPhase::Restoring { waiting } => waiting,
        StartPhase::LoggedIn(session) => {
            check_session(config, s, session)?;
            &session.waiting
        }
    };
    let mut sorted = listed.to_vec();
    sorted.sort();
    if sorted != waiting {
        return bad("the waiting list does not name each waiting request once");
    }
    if listed.len() > config.max_pending as usize {
        return bad("more requests wait than max_pending allows");
    }
    let deadlines: std::collections::BTreeMap<RequestId, Timestamp> = s
        .requests
        .iter()
        .filter_map(|r| match r.state {
            OpenState::Waiting { deadline } => Some((r.id, deadline)),
            OpenState::InFlight { .. } => None,
        })
        .collect();
    let deadline = |id: &RequestId| deadlines.get(id);
    if listed.windows(2).any(|w| deadline(&w[0]) > deadline(&w[1])) {
        return bad("the waiting list is not in deadline order");
    }
    Ok(())
}

fn check_session(config: &Config, s: &Start, session: &StartSession) -> Result<(), StartError> {
    let bad = |what: &str| Err(StartError::Inconsistent(what.to_owned()));
    Credentials {
        access_token: session.access_token.clone(),
        refresh_token: session.refresh_token.clone(),
        expires_in_ms: None,
    }
    .validate()?;
    let g = |g: Generation| g.0 >= 1 && g.0 < s.next_generation;
    if !g(session.generation)
        || !g(session.first_generation)
        || !g(session.refresh_token_from)
        || session.first_generation > session.generation
        || session.refresh_token_from > session.generation
    {
        return bad("a session generation is 0, from the future, or out of order");
    }
    let times = [session.received_at]
        .into_iter()
        .chain(session.window.iter().copied())
        .chain(session.counted_start);
    if times.into_iter().any(|t| t > s.now) {
        return bad("a time of the session is after now");
    }
    let later = [session.expires_at, session.refresh_at];
    if later.into_iter().flatten().any(|t| t > MAX_TIMESTAMP) {
        return bad("an expiry is past the end of the clock");
    }
    if session.window.windows(2).any(|w| w[0] > w[1])
        || session.window.len() > config.refresh_window.max_refreshes as usize
    {
        return bad("the refresh window is out of order or over its bound");
    }
    if session.refusing.len() > MAX_REFUSING_ROUTES
        || session
            .refusing
            .iter()
            .map(|r| r.get())
            .collect::<BTreeSet<_>>()
            .len()
            != session.refusing.len()
    {
        return bad("more refusing routes than are remembered, or one twice");
    }
    if let (Some(refresh_at), Some(expires_at)) = (session.refresh_at, session.expires_at)
        && refresh_at > expires_at
    {
        return bad("the token enters its skew after it expires");
    }
    if session.adoptable_from == 0 || session.adoptable_from > s.next_attempt {
        return bad("adoptable attempts start at an attempt not yet issued");
    }
    let run = match session.cycle {
        StartCycle::Idle => None,
        StartCycle::InFlight {
            run,
            attempt,
            deadline,
            ..
        } => {
            if attempt == 0 || attempt >= s.next_attempt || deadline > MAX_TIMESTAMP {
                return bad("the active attempt is not issued, or its deadline is past the clock");
            }
            Some(run)
        }
        StartCycle::Backoff { run, until, .. } | StartCycle::Held { run, until } => {
            if until > MAX_TIMESTAMP {
                return bad("a deadline is past the end of the clock");
            }
            Some(run)
        }
    };
    if run.is_some() && session.refresh_token.is_none() {
        return bad("a refresh runs without a refresh token");
    }
    if run.is_none() && !session.waiting.is_empty() {
        return bad("requests wait for a refresh while none runs");
    }
    if let StartCycle::InFlight { retries, .. } | StartCycle::Backoff { retries, .. } =
        session.cycle
        && retries > config.max_retries
    {
        return bad("a refresh cycle retried more often than max_retries allows");
    }
    if run
        .and_then(|r| r.counted_at)
        .is_some_and(|t| t > s.now || !session.window.contains(&t))
    {
        return bad("a running cycle's window entry is not in the window");
    }
    Ok(())
}
