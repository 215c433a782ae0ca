//! Whole sessions against simulated servers: the refresh window (rule 7) catches loops,
//! not token lifetimes, and a session without a refresh token uses its token until it
//! expires (rule 13). Deterministic event-driven simulations, one simulated hour each.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use reauth::{
    Command, Config, Coordinator, Credentials, LogoutReason, RequestId, RequestOptions, Stats,
    Timestamp,
};

const HOUR_MS: u64 = 3_600_000;
const LATENCY_MS: u64 = 40;
const REFRESH_LATENCY_MS: u64 = 120;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    /// The host's timer (the core's `poll_timeout`).
    Timer,
    /// The app submits a request.
    Submit,
    /// The server answers request `id`, sent with `generation`.
    Answer { id: u64, generation: u64 },
    /// The token endpoint answers `attempt`.
    Refreshed { attempt: u64 },
}

/// What the simulated API server does.
#[derive(Clone, Copy)]
enum Server {
    /// Accepts every token its generation allows (tokens expire server-side on time).
    Honest,
    /// Refuses every token, however fresh (a loop: e.g. a clock skew of a year).
    RefusesEverything,
    /// Honest, except that every second request goes to an endpoint that answers 403 to
    /// every token (a permission problem); `keyed`: the host names that route (rule 20).
    OneEndpointRefuses { keyed: bool },
}

struct Run {
    stats: Stats,
    logouts: Vec<(Timestamp, LogoutReason)>,
    /// When each generation's token arrived.
    issued: Vec<Timestamp>,
    completed: u64,
}

/// Runs one session for `duration` with tokens of `lifetime` ms, `rate` requests a second.
fn simulate(
    config: Config,
    lifetime: u64,
    rate: u64,
    server: Server,
    refresh_token: bool,
    duration: u64,
) -> Run {
    let mut core = Coordinator::new(config).expect("valid config");
    let credentials = |n: u64| {
        let c = Credentials::new(format!("at-{n}")).with_expires_in_ms(lifetime);
        if refresh_token {
            c.with_refresh_token(format!("rt-{n}"))
        } else {
            c
        }
    };
    core.login(0, credentials(0)).expect("login");
    let mut run = Run {
        stats: Stats::default(),
        logouts: Vec::new(),
        issued: vec![0],
        completed: 0,
    };
    let mut events = BinaryHeap::new();
    let interval = 1_000 / rate;
    events.push(Reverse((interval, Event::Submit)));
    let mut timer: Option<Timestamp> = None;
    let mut tokens = 1;
    let mut to_refusing_endpoint = std::collections::HashSet::new();
    let mut submits = 0u64;
    let admin = reauth::RouteKey::from_name("GET /admin/users");
    while let Some(Reverse((now, event))) = events.pop() {
        if now > duration {
            break;
        }
        match event {
            Event::Submit => {
                submits += 1;
                let refusing = matches!(server, Server::OneEndpointRefuses { .. })
                    && submits.is_multiple_of(2);
                let mut options = RequestOptions::default();
                if refusing && matches!(server, Server::OneEndpointRefuses { keyed: true }) {
                    options = options.with_route(admin);
                }
                let id = core.submit(now, options).expect("valid time");
                if refusing {
                    to_refusing_endpoint.insert(id.0);
                }
                events.push(Reverse((now + interval, Event::Submit)));
            }
            Event::Answer { id, generation } => {
                // Each generation's token is valid for `lifetime` after it was issued.
                let issued = run.issued[generation as usize - 1];
                let honest = !matches!(server, Server::RefusesEverything);
                let status = if to_refusing_endpoint.contains(&id) {
                    403
                } else if honest && now < issued + lifetime {
                    200
                } else {
                    401
                };
                // A cancelled or logged-out request may be unknown by now: fine.
                let _ = core.handle_response(now, RequestId(id), status);
            }
            Event::Refreshed { attempt } => {
                let _ = core.handle_refresh_succeeded(
                    now,
                    reauth::AttemptId(attempt),
                    credentials(tokens),
                );
                tokens += 1;
            }
            Event::Timer => {
                if timer == Some(now) {
                    timer = None;
                    core.handle_timeout(now).expect("valid time");
                }
            }
        }
        while let Some(command) = core.poll_command() {
            match command {
                Command::Send { id, generation, .. } | Command::Replay { id, generation, .. } => {
                    events.push(Reverse((
                        now + LATENCY_MS,
                        Event::Answer {
                            id: id.0,
                            generation: generation.0,
                        },
                    )));
                }
                Command::Refresh { attempt, .. } => events.push(Reverse((
                    now + REFRESH_LATENCY_MS,
                    Event::Refreshed { attempt: attempt.0 },
                ))),
                Command::StoreCredentials { generation, .. } => {
                    assert_eq!(generation.0 as usize, run.issued.len() + 1);
                    run.issued.push(now);
                }
                Command::Complete { .. } => run.completed += 1,
                Command::Fail { .. } => {}
                Command::Logout { reason } => run.logouts.push((now, reason)),
            }
        }
        if let Some(at) = core.poll_timeout()
            && timer != Some(at)
        {
            timer = Some(at);
            events.push(Reverse((at, Event::Timer)));
        }
        if !core.is_logged_in() {
            break;
        }
    }
    run.stats = *core.stats();
    run
}

#[test]
fn short_lived_tokens_never_log_a_healthy_session_out() {
    for lifetime in [2_000, 5_000, 10_000] {
        for rate in [1, 5, 20] {
            let run = simulate(
                Config::default(),
                lifetime,
                rate,
                Server::Honest,
                true,
                HOUR_MS,
            );
            let label = format!("{lifetime} ms tokens, {rate} req/s");
            assert_eq!(run.logouts, [], "{label}");
            // One refresh per token: each token is used for at least half its life (the
            // skew is at most half the lifetime), and replaced once.
            let cycles = run.stats.refresh_cycles;
            assert!(
                cycles >= HOUR_MS / lifetime && cycles <= 2 * HOUR_MS / lifetime + 1,
                "{label}: {cycles} cycles"
            );
            assert_eq!(run.stats.refresh_attempts, cycles, "{label}: no retries");
            assert_eq!(run.stats.unauthorized_responses, 0, "{label}: no 401");
            assert!(
                run.completed >= HOUR_MS / 1_000 * rate - rate,
                "{label}: {} completed",
                run.completed
            );
        }
    }
}

#[test]
fn a_server_that_refuses_every_token_ends_in_excessive_refresh() {
    let config = Config::default();
    let max = u64::from(config.refresh_window.max_refreshes);
    let run = simulate(config, 60_000, 5, Server::RefusesEverything, true, HOUR_MS);
    assert_eq!(run.logouts.len(), 1);
    let (at, reason) = run.logouts[0];
    assert_eq!(reason, LogoutReason::ExcessiveRefresh);
    assert_eq!(run.stats.refresh_cycles, max, "within max_refreshes cycles");
    assert!(at < 5_000, "a loop is caught within seconds: {at} ms");
}

#[test]
fn tokens_that_arrive_already_expiring_are_a_loop() {
    // The server hands out tokens that live 10 ms: each is inside its skew at once, so
    // every refresh replaces a token younger than `min_token_age_ms` and counts.
    let config = Config::default();
    let max = u64::from(config.refresh_window.max_refreshes);
    let run = simulate(config, 10, 20, Server::Honest, true, HOUR_MS);
    assert_eq!(
        run.logouts.iter().map(|l| l.1).collect::<Vec<_>>(),
        [LogoutReason::ExcessiveRefresh]
    );
    assert_eq!(run.stats.refresh_cycles, max);
}

#[test]
fn without_a_refresh_token_the_token_is_used_until_it_expires() {
    // A 60 s token and no refresh token: sent at 45 s (inside the 30 s skew, but a skew
    // buys nothing without a refresh token), and the session ends with the first request
    // after expiry.
    let run = simulate(Config::default(), 60_000, 1, Server::Honest, false, HOUR_MS);
    assert_eq!(run.logouts.len(), 1);
    let (at, reason) = run.logouts[0];
    assert_eq!(reason, LogoutReason::NoRefreshToken);
    assert!((60_000..61_000).contains(&at), "logged out at {at}");
    assert_eq!(run.completed, 59, "every request before expiry completed");
    assert_eq!(run.stats.unauthorized_responses, 0);
}

#[test]
fn one_refusing_endpoint_costs_its_requests_not_the_session() {
    // Contract v2, rule 20: 1 request a second for an hour, every second one to an endpoint
    // that answers 403 to every token; 403 is a refresh status. Default window (5 per
    // 30 s): in v1 the session was logged out within seconds.
    let config = Config::default().with_refresh_statuses([401, 403]);
    let lifetime = 600_000;
    for keyed in [false, true] {
        let run = simulate(
            config.clone(),
            lifetime,
            1,
            Server::OneEndpointRefuses { keyed },
            true,
            HOUR_MS,
        );
        let label = if keyed {
            "with a route key"
        } else {
            "without a route key"
        };
        assert_eq!(run.logouts, [], "{label}");
        let to_endpoint = HOUR_MS / 1_000 / 2;
        let failed = run.stats.failed.get(reauth::FailReason::Unauthorized);
        assert!(
            failed >= to_endpoint - 1,
            "{label}: {failed} refused requests"
        );
        assert!(
            run.completed >= to_endpoint - 1,
            "{label}: {} completed",
            run.completed
        );
        let cycles = run.stats.refresh_cycles;
        let generations = run.issued.len() as u64;
        if keyed {
            // At most one refresh per token for the endpoint, plus one per lifetime.
            let expiry = 2 * HOUR_MS / lifetime + 1;
            assert!(cycles <= 2 * expiry, "{label}: {cycles} cycles");
        } else {
            // One refresh per request to the endpoint, never a logout.
            assert!(
                cycles <= to_endpoint + 2 * HOUR_MS / lifetime + 1,
                "{label}: {cycles} cycles"
            );
        }
        println!(
            "{label}: {cycles} refresh cycles, {generations} tokens, {failed} refused, {} completed",
            run.completed
        );
    }
}
