//! The flight recorder (`reauth::trace`): a recording replays exactly — from a new
//! coordinator, or from the state it carries when it starts mid-session — and holds no
//! token text; every command it notes has a cause whose rule may emit that command.
//!
//! Cases: `PROPTEST_CASES` (default 1 000 per property). Feature `trace`:
//! `cargo test -p reauth --features trace --test trace`.
#![cfg(feature = "trace")]

use proptest::prelude::*;
use reauth::rules::RULES;
use reauth::trace::{Cause, Start, StartPhase, Trace};
use reauth::{Command, Config, Coordinator, Secret};
use reauth_testkit::bytes;
use reauth_testkit::harness::Harness;
use reauth_testkit::transcript::{self, Transcript};

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000)
}

fn kind(command: &Command) -> &'static str {
    match command {
        Command::Send { .. } => "Send",
        Command::Replay { .. } => "Replay",
        Command::Refresh { .. } => "Refresh",
        Command::StoreCredentials { .. } => "StoreCredentials",
        Command::Complete { .. } => "Complete",
        Command::Fail { .. } => "Fail",
        Command::Logout { .. } => "Logout",
    }
}

/// The state of `core` as a recording would start from it, tokens left out.
fn state(core: &Coordinator) -> Option<Start> {
    let mut copy = core.clone();
    copy.record(1);
    let mut start = copy.trace().start?;
    if let StartPhase::LoggedIn(session) = &mut start.phase {
        session.access_token = Secret::new("-");
        session.refresh_token = session.refresh_token.as_ref().map(|_| Secret::new("-"));
    }
    Some(start)
}

/// Replays `trace` on a coordinator with `config`: every step must return what it
/// returned live and produce the same commands (placeholders included), and the replay
/// must end in the state `live` is in.
fn replays(config: &Config, trace: &Trace, live: &Coordinator) -> Result<(), String> {
    let mut core = match &trace.start {
        Some(start) => Coordinator::resume(config.clone(), start)
            .map_err(|e| format!("the start state is refused: {e}"))?,
        None => Coordinator::new(config.clone()).map_err(|e| e.to_string())?,
    };
    for (i, step) in trace.steps.iter().enumerate() {
        let result = core.apply(step.at, step.input.clone());
        if result != step.result {
            return Err(format!(
                "step {i} {:?}: {result:?}, recorded {:?}",
                step.input, step.result
            ));
        }
        let batch: Vec<Command> = core.drain_commands().collect();
        let recorded: Vec<Command> = step.commands.iter().map(|(c, _)| c.clone()).collect();
        if batch != recorded {
            return Err(format!(
                "step {i} {:?}: {batch:?}\nrecorded {recorded:?}",
                step.input
            ));
        }
    }
    if state(&core) != state(live) {
        return Err(format!(
            "the replay ends in another state:\n{:?}\nlive:\n{:?}",
            state(&core),
            state(live)
        ));
    }
    Ok(())
}

/// Every command's cause is set and allows that command.
fn causes_allow(trace: &Trace) -> Result<(), String> {
    for step in &trace.steps {
        for (command, cause) in &step.commands {
            let kind = kind(command);
            let allowed = match cause {
                Cause::Rule(n) => RULES
                    .iter()
                    .find(|r| r.number == *n)
                    .is_some_and(|r| r.emits.contains(&kind)),
                Cause::Answered => kind == "Complete",
                Cause::LoggedIn => matches!(kind, "Send" | "Replay"),
            };
            if !allowed {
                return Err(format!("{kind} noted with {cause} after {:?}", step.input));
            }
        }
    }
    Ok(())
}

/// Runs the decoded actions, switching the recorder on after the first `on_after`.
fn run(data: &[u8], capacity: usize, on_after: usize) -> Result<(Config, Harness, usize), String> {
    let (config, actions) = bytes::decode(data, 400);
    let mut h = Harness::new(config.clone()).map_err(|e| e.to_string())?;
    let on_after = on_after.min(actions.len());
    let n = actions.len();
    let mut from = 0;
    for (i, action) in actions.into_iter().enumerate() {
        if i == on_after {
            h.core.record(capacity);
            from = h.log.len();
        }
        h.run(action)?;
    }
    if on_after == n {
        h.core.record(capacity);
        from = h.log.len();
    }
    let recorded = h.log.len() - from;
    Ok((config, h, recorded))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn a_recording_replays_exactly_and_names_a_rule_for_every_command(
        data in prop::collection::vec(any::<u8>(), 0..1_500),
        capacity in 1usize..40,
        on_after in prop_oneof![Just(0usize), 0usize..60],
    ) {
        let (config, h, recorded) = run(&data, capacity, on_after).map_err(TestCaseError::fail)?;
        let trace = h.core.trace();
        // At least the last `capacity` inputs, fewer than twice as many.
        prop_assert!(trace.steps.len() >= recorded.min(capacity));
        prop_assert!(trace.steps.len() < 2 * capacity);
        replays(&config, &trace, &h.core).map_err(TestCaseError::fail)?;
        causes_allow(&trace).map_err(TestCaseError::fail)?;
        // The explanation ends (no token of any kind makes it loop) with its verdict.
        let explained = trace.explain(&config);
        prop_assert!(explained.contains(" inputs, t = "));
        prop_assert!(explained.contains("Why the session ended") || explained.contains("did not end"));
        // As a transcript (JSON), it replays in the test kit's replayer too, causes
        // included.
        let json = serde_json::to_string(&trace.transcript(&config)).expect("serializes");
        let transcript: Transcript = serde_json::from_str(&json)
            .map_err(|e| TestCaseError::fail(format!("{e}: {json}")))?;
        let mismatches = transcript::replay(&transcript)
            .map_err(|e| TestCaseError::fail(format!("{e}: {json}")))?;
        prop_assert!(mismatches.is_empty(), "{}\n{}", json, mismatches.iter().map(|m| m.to_string()).collect::<String>());
    }
}

#[test]
fn a_new_coordinators_recording_starts_from_nothing() {
    let mut core = Coordinator::new(Config::default()).expect("valid");
    core.record(8);
    core.login(
        0,
        reauth::Credentials::new("at-1").with_refresh_token("rt-1"),
    )
    .expect("login");
    let trace = core.trace();
    assert!(trace.start.is_none());
    assert_eq!(trace.steps.len(), 1);
}

/// The recording keeps every input until it holds twice its capacity, then the older
/// half goes; causes print with their rule's name; a refused over-long token replays as
/// one refused for the same reason.
#[test]
fn the_ring_keeps_between_capacity_and_twice_it() {
    let config = Config::default();
    let mut core = Coordinator::new(config.clone()).expect("valid");
    core.record(4);
    let long = "x".repeat(reauth::MAX_TOKEN_LEN + 1);
    assert!(core.login(0, reauth::Credentials::new(long)).is_err());
    core.login(0, reauth::Credentials::new("at-1"))
        .expect("login");
    for t in 1..=5 {
        core.submit(t, reauth::RequestOptions::default())
            .expect("submit");
    }
    assert_eq!(core.trace().steps.len(), 7, "fewer than 8 inputs: all kept");
    replays(&config, &core.trace(), &core).expect("replays from creation");
    core.submit(6, reauth::RequestOptions::default())
        .expect("submit");
    let trace = core.trace();
    assert_eq!(trace.steps.len(), 4, "at 8 the older half goes");
    assert!(trace.start.is_some());
    replays(&config, &trace, &core).expect("replays from its start");
    assert_eq!(Cause::Rule(9).to_string(), "rule 7.9 (Rejected)");
    assert_eq!(Cause::Rule(9).rule().map(|r| r.name), Some("Rejected"));
    assert_eq!(Cause::Answered.code(), "answered");
}

/// The core's transcript replay reports a tampered step as expected versus actual, and
/// its explanation of a recording uses the recording's own causes and placeholders (a
/// transcript without causes is recorded anew).
#[test]
fn transcripts_replay_and_explain_through_the_core() {
    use reauth::trace::transcript::{ExplainError, explain, replay};
    let config = Config::default();
    let mut core = Coordinator::new(config.clone()).expect("valid");
    core.login(
        0,
        reauth::Credentials::new("at-0").with_refresh_token("rt-0"),
    )
    .expect("login");
    core.record(3);
    core.login(
        1,
        reauth::Credentials::new("at-1").with_refresh_token("rt-1"),
    )
    .expect("login");
    let ids: Vec<_> = (2..6)
        .map(|t| {
            core.submit(t, reauth::RequestOptions::default())
                .expect("submit")
        })
        .collect();
    core.handle_response(10, ids[0], 401).expect("401");
    let attempt = core.active_attempt().expect("a refresh runs");
    core.handle_response(11, ids[1], 401).expect("401");
    core.handle_refresh_failed(20, attempt, reauth::RefreshFailure::Rejected)
        .expect("rejected");
    core.drain_commands().for_each(drop);
    let json = serde_json::to_string(&core.trace().transcript(&config)).expect("json");
    assert!(
        json.contains("redacted-3"),
        "the second login's placeholders: {json}"
    );
    let transcript: Transcript = serde_json::from_str(&json).expect("a transcript");
    assert!(replay(&transcript).expect("replays").is_empty());
    let explained = explain(&transcript).expect("explained");
    assert!(
        explained.contains("rule 7.9 (Rejected) logged out"),
        "{explained}"
    );
    assert!(
        explained.contains("with redacted-4"),
        "its own placeholders: {explained}"
    );
    // A tampered cause: the replay says which step, expected and actual.
    let tampered: Transcript =
        serde_json::from_str(&json.replacen("\"7.9\"", "\"7.10\"", 1)).expect("a transcript");
    let mismatches = replay(&tampered).expect("replays");
    assert_eq!(mismatches.len(), 1);
    let rejected = transcript
        .steps
        .iter()
        .position(|step| step.causes.contains(&Cause::Rule(9)))
        .expect("the rejection");
    assert_eq!(mismatches[0].step, rejected + 1, "steps count from 1");
    let shown = mismatches[0].to_string();
    assert!(
        shown.contains("expected")
            && shown.contains("actual")
            && shown.contains("rule 7.10")
            && shown.contains("logout { reason: refresh_rejected }"),
        "{shown}"
    );
    assert!(matches!(explain(&tampered), Err(ExplainError::DoesNotReplay(m)) if m.len() == 1));
    // A vector has no causes: explained from a recording made while replaying it.
    let vector: Transcript = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/vectors/rule-09-refresh-rejected-logs-out.json"
        ))
        .expect("vector"),
    )
    .expect("a transcript");
    let explained = explain(&vector).expect("explained");
    assert!(
        explained.contains("rule 7.9 (Rejected) logged out"),
        "{explained}"
    );
}

/// One text as both tokens of a login, then as the refresh token of the next: one
/// placeholder throughout, so the recorded `Refresh` replays (a review found two).
#[test]
fn a_text_in_both_roles_keeps_one_placeholder() {
    let config = Config::default();
    let mut core = Coordinator::new(config.clone()).expect("valid");
    core.record(8);
    core.login(0, reauth::Credentials::new("T").with_refresh_token("T"))
        .expect("login");
    core.login(1, reauth::Credentials::new("U").with_refresh_token("T"))
        .expect("login");
    core.force_refresh(2).expect("force");
    core.submit(3, reauth::RequestOptions::default())
        .expect("submit");
    core.drain_commands().for_each(drop);
    replays(&config, &core.trace(), &core).expect("replays");
}

#[test]
fn an_off_recorder_holds_nothing() {
    let mut core = Coordinator::new(Config::default()).expect("valid");
    core.login(0, reauth::Credentials::new("at-1"))
        .expect("login");
    let trace = core.trace();
    assert!(trace.start.is_none() && trace.steps.is_empty());
    core.record(4);
    core.record(0);
    core.submit(1, reauth::RequestOptions::default())
        .expect("submit");
    assert!(core.trace().steps.is_empty());
}

/// Every token text a trace holds: its inputs', its commands' and its start's.
fn texts(trace: &Trace) -> Vec<String> {
    fn credentials(out: &mut Vec<String>, c: &reauth::Credentials) {
        out.push(c.access_token.expose().to_owned());
        out.extend(c.refresh_token.iter().map(|r| r.expose().to_owned()));
    }
    let mut out = Vec::new();
    for step in &trace.steps {
        match &step.input {
            reauth::Input::Login { credentials: c }
            | reauth::Input::RefreshSucceeded { credentials: c, .. } => credentials(&mut out, c),
            _ => {}
        }
        for (command, _) in &step.commands {
            match command {
                Command::Send { access_token, .. } | Command::Replay { access_token, .. } => {
                    out.push(access_token.expose().to_owned())
                }
                Command::Refresh { refresh_token, .. } => {
                    out.push(refresh_token.expose().to_owned())
                }
                Command::StoreCredentials { credentials: c, .. } => credentials(&mut out, c),
                _ => {}
            }
        }
    }
    if let Some(Start {
        phase: StartPhase::LoggedIn(s),
        ..
    }) = &trace.start
    {
        out.push(s.access_token.expose().to_owned());
        out.extend(s.refresh_token.iter().map(|r| r.expose().to_owned()));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    /// Token texts of every shape — JSON, base64, URLs, the placeholders themselves —
    /// never reach a recording (a real token equal to a placeholder's text is the one
    /// exception it cannot tell apart, and the check allows it).
    #[test]
    fn a_recording_holds_no_token_text(
        tokens in prop::collection::vec(
            prop_oneof![
                "[A-Za-z0-9._~+/-]{1,40}=*",
                Just("redacted-1".to_owned()),
                Just("{\"access_token\":\"x\"}".to_owned()),
                Just("https://example.com/?t=abc".to_owned()),
            ],
            4..12,
        ),
        capacity in 1usize..16,
        on_after in 0usize..6,
    ) {
        let mut core = Coordinator::new(Config::default()).expect("valid");
        let mut t = tokens.iter().cycle();
        let mut next = || t.next().expect("cycle").clone();
        for i in 0..tokens.len() {
            if i == on_after {
                core.record(capacity);
            }
            let now = i as u64 * 1_000;
            match i % 4 {
                0 => core
                    .login(now, reauth::Credentials::new(next()).with_refresh_token(next()))
                    .expect("login"),
                1 => {
                    let id = core.submit(now, reauth::RequestOptions::default()).expect("submit");
                    let _ = core.handle_response(now, id, 401);
                }
                2 => {
                    if let Some(attempt) = core.active_attempt() {
                        core.handle_refresh_succeeded(
                            now,
                            attempt,
                            reauth::Credentials::new(next()).with_refresh_token(next()),
                        )
                        .expect("success");
                    }
                }
                _ => {
                    core.submit(now, reauth::RequestOptions::default()).expect("submit");
                }
            }
            core.drain_commands().for_each(drop);
        }
        let trace = core.trace();
        // Tokens that repeat, also across roles (an access token equal to a refresh
        // token), keep one placeholder: the recording still replays.
        if on_after < tokens.len() {
            replays(&Config::default(), &trace, &core).map_err(TestCaseError::fail)?;
        }
        let placeholder = |t: &str| t.strip_prefix("redacted-").is_some_and(|n| n.parse::<u64>().is_ok());
        for text in texts(&trace) {
            let leaked = tokens.iter().any(|t| *t == text && !placeholder(t));
            prop_assert!(!leaked, "a token text is in the recording");
        }
        let shown = format!("{trace:?}");
        prop_assert!(!shown.contains("example.com"), "{}", shown);
    }
}

/// A start state changed at random (as a hostile or corrupted file would): `resume`
/// refuses it or gives a coordinator that takes any further input without a panic or a
/// hang, and settles.
fn perturb(start: &mut Start, picks: &[u64]) {
    let mut p = picks.iter().copied().cycle();
    let mut next = || p.next().unwrap_or(0);
    match next() % 12 {
        0 => start.now = next(),
        1 => start.next_request = next() % 64,
        2 => start.next_generation = next() % 8,
        3 => start.next_attempt = next() % 8,
        4 => {
            if let Some(r) = start.requests.first_mut() {
                r.id = reauth::RequestId(next() % 64);
            }
        }
        5 => {
            if let Some(r) = start.requests.last_mut() {
                r.state = match next() % 2 {
                    0 => reauth::trace::OpenState::Waiting { deadline: next() },
                    _ => reauth::trace::OpenState::InFlight {
                        generation: reauth::Generation(next() % 8),
                    },
                };
            }
        }
        6 => start.requests.truncate((next() % 4) as usize),
        _ => {
            if let StartPhase::LoggedIn(s) = &mut start.phase {
                match next() % 8 {
                    0 => s.generation = reauth::Generation(next() % 8),
                    1 => s.first_generation = reauth::Generation(next() % 8),
                    2 => s.window.push(next()),
                    3 => s.waiting.push(reauth::RequestId(next() % 64)),
                    4 => s.waiting.clear(),
                    5 => s.adoptable_from = next() % 8,
                    6 => s.counted_start = Some(next()),
                    _ => {
                        s.cycle = reauth::trace::StartCycle::InFlight {
                            run: reauth::trace::StartRun {
                                counted_at: Some(next() % 4_000),
                                abandoned: next() % 2 == 0,
                            },
                            attempt: next() % 8,
                            retries: (next() % 4) as u32,
                            deadline: next(),
                        }
                    }
                }
            } else {
                start.phase = StartPhase::Restoring {
                    waiting: vec![reauth::RequestId(next() % 64)],
                };
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn a_corrupted_start_is_refused_or_harmless(
        data in prop::collection::vec(any::<u8>(), 0..800),
        picks in prop::collection::vec(any::<u64>(), 1..12),
        more in prop::collection::vec(any::<u8>(), 0..400),
    ) {
        let (config, h, _) = run(&data, 2, 0).map_err(TestCaseError::fail)?;
        let Some(mut start) = h.core.trace().start else {
            return Ok(());
        };
        perturb(&mut start, &picks);
        let Ok(core) = Coordinator::resume(config, &start) else {
            return Ok(());
        };
        // Whatever was accepted takes hostile inputs (the harness's oracle is not
        // consulted: a made-up state need not satisfy its books) without a panic.
        let (_, actions) = bytes::decode(&more, 200);
        let mut h = Harness::new(core.config().clone()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        h.core = core;
        for action in actions {
            let _ = h.run(action);
        }
        let _ = h.core.trace();
        for _ in 0..1_000 {
            if h.core.open_requests() == 0 {
                break;
            }
            let now = h.core.now();
            let _ = h.core.handle_timeout(now.saturating_add(120_000).min(reauth::MAX_TIMESTAMP));
            h.core.drain_commands().for_each(drop);
            if let Some(attempt) = h.core.active_attempt() {
                let _ = h.core.handle_refresh_failed(now, attempt, reauth::RefreshFailure::Rejected);
            }
            for id in h.core.in_flight_ids() {
                let _ = h.core.handle_response(now, id, 200);
            }
            h.core.drain_commands().for_each(drop);
        }
    }
}

/// A cause is written one way only: "7.N" for a rule the contract has, "answered",
/// "logged_in".
#[test]
fn causes_parse_strictly() {
    let parse = |text: &str| serde_json::from_str::<Cause>(&format!("\"{text}\""));
    assert_eq!(parse("7.9").expect("a rule"), Cause::Rule(9));
    assert_eq!(parse("7.20").expect("a rule"), Cause::Rule(20));
    assert_eq!(parse("answered").expect("§6"), Cause::Answered);
    assert_eq!(parse("logged_in").expect("§6"), Cause::LoggedIn);
    // Rules the contract does not have, built so the citation check does not read them.
    let (zero, unknown) = (format!("7.{}", 0), format!("7.{}", 20 + 1));
    for bad in [
        "7.01", "7.+1", "7.-1", "7.", "7", "9", "Answered", "", &zero, &unknown,
    ] {
        assert!(parse(bad).is_err(), "{bad:?} was accepted");
    }
}

/// `resume` refuses states the machine cannot be in, each with its reason (a review
/// found these accepted).
#[test]
fn resume_refuses_unreachable_states() {
    use reauth::trace::{OpenProgress, StartCycle};
    let config = Config::default();
    let mut core = Coordinator::new(config.clone()).expect("valid");
    core.login(
        0,
        reauth::Credentials::new("at-1").with_refresh_token("rt-1"),
    )
    .expect("login");
    let first = core
        .submit(1, reauth::RequestOptions::default())
        .expect("submit");
    core.submit(2, reauth::RequestOptions::default())
        .expect("submit");
    core.handle_response(3, first, 401).expect("401");
    core.drain_commands().for_each(drop);
    core.record(1);
    core.handle_timeout(4).expect("timer");
    core.handle_timeout(5).expect("timer");
    let start = core.trace().start.expect("mid-session");
    Coordinator::resume(config.clone(), &start).expect("the real state is accepted");
    let refused = |change: &dyn Fn(&mut Start), why: &str| {
        let mut s = start.clone();
        change(&mut s);
        let error = Coordinator::resume(config.clone(), &s)
            .expect_err(why)
            .to_string();
        assert!(error.contains(why), "{error:?} does not say {why:?}");
    };
    fn session(s: &mut Start, change: impl FnOnce(&mut reauth::trace::StartSession)) {
        match &mut s.phase {
            StartPhase::LoggedIn(session) => change(session),
            _ => panic!("a session"),
        }
    }
    let accepted = |change: &dyn Fn(&mut Start), what: &str| {
        let mut s = start.clone();
        change(&mut s);
        Coordinator::resume(config.clone(), &s).unwrap_or_else(|e| panic!("{what}: {e}"));
    };
    // Each condition on its own, at its edge where it has one.
    refused(&|s| s.next_generation = 0, "count from 1");
    refused(&|s| s.next_attempt = 0, "count from 1");
    accepted(
        &|s| s.stats.submitted = reauth::MAX_TIMESTAMP,
        "a counter at 2^53 - 1",
    );
    refused(
        &|s| s.stats.submitted = reauth::MAX_TIMESTAMP + 1,
        "past 2^53",
    );
    refused(&|s| s.requests[0].id = reauth::RequestId(0), "id is 0");
    refused(
        &|s| s.requests[1].id = reauth::RequestId(s.next_request),
        "not yet issued",
    );
    refused(
        &|s| {
            let again = s.requests[1];
            s.requests.push(again);
        },
        "or repeated",
    );
    let in_flight = |s: &mut Start, g: u64| {
        s.requests[1].state = reauth::trace::OpenState::InFlight {
            generation: reauth::Generation(g),
        };
    };
    refused(&|s| in_flight(s, 0), "generation not yet given");
    refused(
        &|s| in_flight(s, s.next_generation),
        "generation not yet given",
    );
    let generations = |s: &mut Start, g: u64, first: u64, from: u64| {
        s.next_generation = 6;
        session(s, |session| {
            session.generation = reauth::Generation(g);
            session.first_generation = reauth::Generation(first);
            session.refresh_token_from = reauth::Generation(from);
        });
    };
    accepted(&|s| generations(s, 5, 1, 5), "generations in order");
    for (g, first, from) in [
        (0, 1, 1),
        (6, 1, 1),
        (5, 0, 1),
        (5, 6, 1),
        (5, 1, 0),
        (5, 1, 6),
        (3, 4, 1),
        (3, 1, 4),
    ] {
        refused(
            &|s| generations(s, g, first, from),
            "session generation is 0, from the future, or out of order",
        );
    }
    refused(
        &|s| session(s, |session| session.window = vec![2, 1]),
        "window is out of order",
    );
    refused(
        &|s| session(s, |session| session.window = vec![1; 6]),
        "over its bound",
    );
    let routes = |n: u32| {
        (1..=n)
            .map(|r| reauth::RouteKey::new(r).expect("non-zero"))
            .collect::<Vec<_>>()
    };
    accepted(
        &|s| session(s, |session| session.refusing = routes(16)),
        "16 refusing routes",
    );
    refused(
        &|s| session(s, |session| session.refusing = routes(17)),
        "more refusing routes than are remembered",
    );
    refused(
        &|s| session(s, |session| session.adoptable_from = 0),
        "adoptable attempts",
    );
    accepted(
        &|s| {
            let next = s.next_attempt;
            session(s, |session| session.adoptable_from = next);
        },
        "adoptable from the next attempt",
    );
    refused(
        &|s| {
            let next = s.next_attempt;
            session(s, |session| session.adoptable_from = next + 1);
        },
        "adoptable attempts",
    );
    let cycle = |s: &mut Start, attempt: u64, deadline: u64, counted_at: Option<u64>| {
        session(s, |session| {
            session.cycle = StartCycle::InFlight {
                run: reauth::trace::StartRun {
                    counted_at,
                    abandoned: false,
                },
                attempt,
                retries: 0,
                deadline,
            };
        });
    };
    accepted(
        &|s| cycle(s, 1, reauth::MAX_TIMESTAMP, None),
        "attempt 1 out",
    );
    refused(&|s| cycle(s, 0, 10, None), "active attempt is not issued");
    refused(
        &|s| cycle(s, s.next_attempt, 10, None),
        "active attempt is not issued",
    );
    refused(
        &|s| cycle(s, 1, reauth::MAX_TIMESTAMP + 1, None),
        "active attempt is not issued, or its deadline",
    );
    refused(
        &|s| {
            session(s, |session| session.window = vec![3]);
            cycle(s, 1, 10, Some(2));
        },
        "window entry is not in the window",
    );
    refused(
        &|s| {
            let later = s.now + 1;
            session(s, |session| session.window = vec![later]);
            cycle(s, 1, 10, Some(later));
        },
        "after now",
    );
    refused(&|s| s.next_request = u64::MAX, "past 2^53");
    refused(&|s| s.stats.submitted = u64::MAX, "past 2^53");
    refused(
        &|s| s.requests[0].replays = 200,
        "replayed more than its budget",
    );
    refused(
        &|s| {
            s.requests[1].progress = OpenProgress::New;
            s.requests[1].replays = 1;
        },
        "replayed more than its budget, or before it went out",
    );
    refused(
        &|s| session(s, |session| session.cycle = StartCycle::Idle),
        "requests wait for a refresh while none runs",
    );
    refused(
        &|s| {
            let route = reauth::RouteKey::new(7).expect("non-zero");
            session(s, |session| session.refusing = vec![route, route]);
        },
        "one twice",
    );
    refused(
        &|s| {
            session(s, |session| {
                session.expires_at = Some(10);
                session.refresh_at = Some(20);
            });
        },
        "skew after it expires",
    );
}
