//! The driver's routing: every request gets exactly one outcome — its own command, a wake,
//! the caller's answer, an abandon or a close — a wake only ever reaches a request that
//! waits, and every step survives the wire encoding unchanged. Hand-written cases first,
//! then a property test that drives many callers in random interleavings and holds each
//! step to these rules and the core's own counters.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use reauth::{
    AttemptId, Config, Credentials, FailReason, Generation, LogoutReason, RefreshFailure,
    RequestId, RequestOptions, RouteKey,
};
use reauth_host::wire::{self, OWN_CALLERS_ANSWER, OWN_COMPLETE, OWN_FAIL, OWN_SEND, OWN_WAIT};
use reauth_host::{Driver, DriverError, Own, Step, Wake};

fn logged_in() -> Driver {
    let d = Driver::new(Config::default()).expect("config");
    d.login(0, Credentials::new("at-1").with_refresh_token("rt-1"))
        .expect("login");
    d
}

fn token(own: &Own) -> &str {
    match own {
        Own::Send { access_token, .. } => access_token.expose(),
        other => panic!("expected a send, got {other:?}"),
    }
}

#[test]
fn the_steady_state_is_one_step_per_event_with_nothing_but_its_own_command() {
    let d = Driver::new(Config::default()).expect("config");
    let step = d
        .login(
            0,
            Credentials::new("at-1")
                .with_refresh_token("rt-1")
                .with_expires_in_ms(3_600_000),
        )
        .expect("login");
    // Nothing waits: no timer (expiry is checked when a request is submitted).
    assert!(step.is_own_only(), "{step:?}");
    assert_eq!(d.deadline(), Ok(None));
    let (id, step) = d.submit(1, RequestOptions::default()).expect("submit");
    assert_eq!(token(&step.own), "at-1");
    assert!(step.is_own_only(), "{step:?}");
    let step = d.response::<&str>(2, id, 200, &[]).expect("response");
    assert_eq!(step.own, Own::Complete);
    assert!(step.is_own_only(), "{step:?}");
    for now in 3..100 {
        let (id, step) = d.submit(now, RequestOptions::default()).expect("submit");
        assert!(step.is_own_only(), "{step:?}");
        assert_eq!(
            wire::pack(&step, Some(id), Generation(1)).map(|p| p & 0x1ff),
            Some(i64::from(OWN_SEND)),
            "no more bytes, no deadline: one integer"
        );
        let step = d.response::<&str>(now, id, 200, &[]).expect("response");
        assert!(step.is_own_only() && step.own == Own::Complete);
    }
}

#[test]
fn a_401_storm_waits_for_one_refresh_and_wakes_every_waiter_with_the_new_token() {
    let d = logged_in();
    let (a, _) = d.submit(1, RequestOptions::default()).expect("a");
    let (b, _) = d.submit(1, RequestOptions::default()).expect("b");
    let step = d.response::<&str>(2, a, 401, &[]).expect("a 401");
    assert_eq!(step.own, Own::Wait);
    assert_eq!(step.refreshes.len(), 1);
    assert!(
        step.deadline_changed,
        "a refresh has a deadline: the timer must look"
    );
    assert!(d.deadline().expect("deadline").is_some());
    let (attempt, rt) = step.refreshes[0].clone();
    assert_eq!(rt.expose(), "rt-1");
    let step = d.response::<&str>(2, b, 401, &[]).expect("b 401");
    assert_eq!(step.own, Own::Wait);
    assert!(step.refreshes.is_empty(), "one refresh");
    let (c, step) = d.submit(3, RequestOptions::default()).expect("c waits too");
    assert_eq!(step.own, Own::Wait);
    let step = d
        .refresh_succeeded(
            4,
            attempt,
            Credentials::new("at-2").with_refresh_token("rt-2"),
        )
        .expect("refreshed");
    assert_eq!(
        step.own,
        Own::Wait,
        "the refresh result is about no request"
    );
    let woken: Vec<(RequestId, &str)> = step
        .wakes
        .iter()
        .map(|(id, w)| match w {
            Wake::Send { access_token, .. } => (*id, access_token.expose()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(woken, vec![(a, "at-2"), (b, "at-2"), (c, "at-2")], "FIFO");
    // On the wire: one token entry for the three wakes.
    let packed = wire::pack(&step, None, Generation(1)).expect("packed");
    let mut bytes = Vec::new();
    wire::encode_more(&step, Generation(1), &mut bytes);
    let decoded = wire::decode(packed, Some(&bytes)).expect("decoded");
    assert_eq!(decoded.tokens, vec![(2, "at-2".to_owned())]);
    assert_eq!(decoded.wakes.len(), 3);
    for id in [a, b, c] {
        assert_eq!(
            d.response::<&str>(5, id, 200, &[]).expect("200").own,
            Own::Complete
        );
    }
}

#[test]
fn the_wire_layout_is_pinned() {
    // The Python, Kotlin and Swift decoders read these bits and bytes: a change on both
    // sides of the Rust round trip must still fail here.
    let d = logged_in();
    let (id, step) = d.submit(1, RequestOptions::default()).expect("submit");
    assert_eq!(id, RequestId(1));
    assert_eq!(wire::pack(&step, Some(id), Generation(1)), Some(1 | 1 << 9));
    let only_deadline = Step {
        own: Own::Wait,
        wakes: vec![],
        refreshes: vec![],
        logout: None,
        deadline_changed: true,
    };
    assert_eq!(
        wire::pack(&only_deadline, None, Generation(0)),
        Some(1 << 8)
    );
    let failed = Step {
        own: Own::Fail(FailReason::WaitTimeout),
        ..only_deadline.clone()
    };
    assert_eq!(
        wire::pack(&failed, Some(RequestId(3)), Generation(0)),
        Some(3 | 7 << 3 | 1 << 8 | 3 << 9)
    );
    let decoded = wire::decode(3 | 7 << 3, None).expect("decoded");
    assert_eq!(decoded.own_reason, Some(FailReason::WaitTimeout));
    let full = Step {
        own: Own::Send {
            access_token: reauth::Secret::new("at"),
            generation: Generation(2),
        },
        wakes: vec![(RequestId(9), Wake::Fail(FailReason::Transport))],
        refreshes: vec![(AttemptId(4), reauth::Secret::new("rt"))],
        logout: Some(LogoutReason::NoRefreshToken),
        deadline_changed: false,
    };
    assert_eq!(
        wire::pack(&full, Some(RequestId(1)), Generation(1)),
        Some(1 | 1 << 7 | 1 << 9)
    );
    let mut bytes = Vec::new();
    wire::encode_more(&full, Generation(1), &mut bytes);
    let mut expected = Vec::new();
    expected.extend_from_slice(&2u64.to_le_bytes()); // own generation
    expected.extend_from_slice(&1u16.to_le_bytes()); // tokens
    expected.extend_from_slice(&1u16.to_le_bytes()); // refreshes
    expected.extend_from_slice(&1u32.to_le_bytes()); // wakes
    expected.push(3); // logout: 1 + NoRefreshToken (2)
    expected.extend_from_slice(&2u64.to_le_bytes());
    expected.extend_from_slice(&2u32.to_le_bytes());
    expected.extend_from_slice(b"at");
    expected.extend_from_slice(&4u64.to_le_bytes());
    expected.extend_from_slice(&2u32.to_le_bytes());
    expected.extend_from_slice(b"rt");
    expected.extend_from_slice(&9u64.to_le_bytes());
    expected.extend_from_slice(&[3, 8]); // fail, Transport
    expected.extend_from_slice(&0u64.to_le_bytes());
    assert_eq!(bytes, expected);
}

#[test]
fn insufficient_scope_is_the_callers_answer_and_never_refreshes() {
    let d = logged_in();
    let (id, _) = d.submit(1, RequestOptions::default()).expect("submit");
    let step = d
        .response(
            2,
            id,
            401,
            &[r#"Bearer realm="api", error="insufficient_scope", scope="admin""#],
        )
        .expect("answered");
    assert_eq!(step.own, Own::CallersAnswer);
    assert!(step.refreshes.is_empty());
    // invalid_token (or no challenge) is a refresh trigger.
    let (id, _) = d.submit(3, RequestOptions::default()).expect("submit");
    let step = d
        .response(4, id, 401, &[r#"Bearer error="invalid_token""#])
        .expect("answered");
    assert_eq!((step.own, step.refreshes.len()), (Own::Wait, 1));
    // A challenge on a status that is no refresh status is an ordinary response.
    let stats = d.with(|core| *core.stats()).expect("stats");
    assert_eq!((stats.cancelled, stats.refresh_attempts), (1, 1));
}

#[test]
fn an_abandoned_request_is_a_transport_error_in_flight_a_cancel_waiting_and_nothing_after() {
    let d = logged_in();
    let (flying, _) = d.submit(1, RequestOptions::default()).expect("submit");
    let (waiting, _) = d.submit(1, RequestOptions::default()).expect("submit");
    d.response::<&str>(2, waiting, 401, &[]).expect("waits");
    let step = d.abandon(3, flying).expect("abandon");
    assert_eq!(
        step.own,
        Own::Wait,
        "its caller is gone: nothing routed to it"
    );
    assert!(step.wakes.is_empty());
    d.abandon(3, waiting).expect("abandon");
    d.abandon(3, waiting).expect("twice: nothing");
    // A request that ended (Complete) is gone: abandoning it is nothing, not an input.
    let fresh = logged_in();
    let (done, _) = fresh.submit(1, RequestOptions::default()).expect("submit");
    assert_eq!(
        fresh.response::<&str>(2, done, 200, &[]).expect("200").own,
        Own::Complete
    );
    let step = fresh.abandon(3, done).expect("an ended request: nothing");
    assert!(step.own == Own::Wait && step.is_own_only(), "{step:?}");
    d.abandon(3, RequestId(999)).expect("unknown: nothing");
    let stats = d.with(|core| *core.stats()).expect("stats");
    assert_eq!((stats.failed.transport, stats.cancelled), (1, 1));
    assert_eq!(d.with(|core| core.open_requests()).expect("open"), 0);
}

#[test]
fn close_wakes_every_waiter_refuses_later_inputs_and_drops_late_responses() {
    let d = logged_in();
    let (flying, _) = d.submit(1, RequestOptions::default()).expect("submit");
    let (a, _) = d.submit(1, RequestOptions::default()).expect("submit");
    d.response::<&str>(2, a, 401, &[]).expect("waits");
    let (b, step) = d.submit(3, RequestOptions::default()).expect("waits too");
    assert_eq!(step.own, Own::Wait);
    let step = d.close(4).expect("close");
    assert_eq!(step.wakes, vec![(a, Wake::Closed), (b, Wake::Closed)]);
    assert_eq!(
        d.response::<&str>(5, flying, 200, &[]),
        Err(DriverError::Closed)
    );
    assert_eq!(
        d.submit(5, RequestOptions::default()).map(|(id, _)| id),
        Err(DriverError::Closed)
    );
    assert_eq!(d.timeout(5), Err(DriverError::Closed));
    assert_eq!(d.close(6).expect("again").wakes, vec![], "idempotent");
    assert_eq!(d.deadline(), Ok(None), "no timer after close");
    assert!(d.is_closed());
    assert_eq!(d.with(|core| core.open_requests()).expect("open"), 0);
}

#[test]
fn a_refused_login_changes_nothing_and_a_rejected_refresh_logs_out_once() {
    let d = logged_in();
    assert!(d.login(1, Credentials::new("bad\r\ntoken")).is_err());
    let (id, step) = d.submit(2, RequestOptions::default()).expect("submit");
    assert_eq!(token(&step.own), "at-1", "the session kept its token");
    let step = d.response::<&str>(3, id, 401, &[]).expect("401");
    let attempt: AttemptId = step.refreshes[0].0;
    let step = d
        .refresh_failed(4, attempt, RefreshFailure::Rejected)
        .expect("rejected");
    assert_eq!(
        step.wakes,
        vec![(id, Wake::Fail(FailReason::RefreshRejected))]
    );
    assert_eq!(step.logout, Some(LogoutReason::RefreshRejected));
}

// ----- many callers, random interleavings ---------------------------------------------

#[derive(Clone, Debug)]
enum Act {
    Submit {
        replayable: bool,
        refresh: bool,
        route: u8,
    },
    Respond {
        pick: usize,
        status: u16,
        scope: bool,
    },
    Abandon {
        pick: usize,
    },
    RefreshOk {
        fresh: bool,
    },
    RefreshTransient,
    RefreshRejected,
    Timeout {
        ms: u64,
    },
    ForceRefresh,
    Login,
    Logout,
}

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        6 => (any::<bool>(), any::<bool>(), 0u8..3).prop_map(|(r, f, route)| Act::Submit {
            replayable: r || route == 0,
            refresh: f || route != 1,
            route,
        }),
        8 => (any::<usize>(), prop::sample::select(vec![200u16, 200, 401, 401, 403, 500]), prop::bool::weighted(0.1))
            .prop_map(|(pick, status, scope)| Act::Respond { pick, status, scope }),
        1 => any::<usize>().prop_map(|pick| Act::Abandon { pick }),
        3 => any::<bool>().prop_map(|fresh| Act::RefreshOk { fresh }),
        1 => Just(Act::RefreshTransient),
        1 => Just(Act::RefreshRejected),
        2 => (1u64..120_000).prop_map(|ms| Act::Timeout { ms }),
        1 => Just(Act::ForceRefresh),
        1 => Just(Act::Login),
        1 => Just(Act::Logout),
    ]
}

/// What the host knows of each request: sent (awaiting its response), waiting (for a
/// wake), or ended (how).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Known {
    Sent(Generation),
    Waiting,
    Ended(&'static str),
}

#[derive(Default)]
struct Host {
    requests: BTreeMap<RequestId, Known>,
    attempts: BTreeSet<AttemptId>,
    completed: u64,
    callers_answers: u64,
    abandoned_waiting: u64,
    fails: BTreeMap<&'static str, u64>,
    logouts: u64,
    issued: u64,
    /// The core's deadline as the steps said it moved.
    deadline: Option<u64>,
}

impl Host {
    fn end(&mut self, id: RequestId, how: &'static str) {
        let before = self.requests.insert(id, Known::Ended(how));
        assert!(
            matches!(before, Some(Known::Sent(_) | Known::Waiting)),
            "{id:?} ended twice or was never open: {before:?} then {how}"
        );
    }

    /// Carries out a step about `subject` (if any), checking the routing rules and the
    /// wire encoding.
    fn carry(&mut self, step: &Step, subject: Option<RequestId>, known: Generation) {
        self.carry_step(step, subject, known);
    }

    /// Whether the step's deadline flag says what the core's deadline did.
    fn deadline_moved(&mut self, step: &Step, now: Option<u64>) {
        assert_eq!(step.deadline_changed, now != self.deadline, "{step:?}");
        self.deadline = now;
    }

    fn carry_step(&mut self, step: &Step, subject: Option<RequestId>, known: Generation) {
        let packed = wire::pack(step, subject, known).expect("packed");
        let mut bytes = Vec::new();
        wire::encode_more(step, known, &mut bytes);
        let more = wire::needs_more(step, known);
        let decoded = wire::decode(packed, more.then_some(&bytes[..])).expect("decodes");
        assert_eq!(decoded.id, subject.map_or(0, |id| id.0));
        assert_eq!(decoded.deadline_changed, step.deadline_changed);
        assert_eq!(decoded.wakes.len(), if more { step.wakes.len() } else { 0 });
        assert_eq!(
            decoded.refreshes.len(),
            if more { step.refreshes.len() } else { 0 }
        );
        assert_eq!(decoded.logout, step.logout);

        for (id, wake) in &step.wakes {
            assert_ne!(Some(*id), subject, "the subject's command is its own");
            assert_eq!(
                self.requests.get(id),
                Some(&Known::Waiting),
                "a wake for {id:?}, which does not wait: {wake:?}"
            );
            let w = decoded
                .wakes
                .iter()
                .find(|w| w.0 == id.0)
                .expect("on the wire");
            match wake {
                Wake::Send {
                    access_token,
                    generation,
                } => {
                    assert_eq!(w.1, wire::WAKE_SEND);
                    let t = decoded.tokens.iter().find(|t| t.0 == generation.0);
                    assert_eq!(t.map(|t| t.1.as_str()), Some(access_token.expose()));
                    self.requests.insert(*id, Known::Sent(*generation));
                }
                Wake::Complete => {
                    self.completed += 1;
                    self.end(*id, "complete");
                }
                Wake::Fail(reason) => {
                    assert_eq!(w.2, Some(*reason));
                    *self.fails.entry(reason.as_str()).or_default() += 1;
                    self.end(*id, "fail");
                }
                Wake::Closed => panic!("closed before close()"),
            }
        }
        for (attempt, _) in &step.refreshes {
            assert!(self.attempts.insert(*attempt), "one refresh per attempt");
        }
        if step.logout.is_some() {
            self.logouts += 1;
        }
        let Some(id) = subject else {
            assert_eq!(step.own, Own::Wait);
            return;
        };
        match &step.own {
            Own::Wait => {
                assert_eq!(decoded.own, OWN_WAIT);
                self.requests.insert(id, Known::Waiting);
            }
            Own::Send {
                access_token,
                generation,
            } => {
                assert_eq!(decoded.own, OWN_SEND);
                if *generation != known {
                    assert!(more, "a new token comes in the bytes");
                    assert_eq!(decoded.own_generation, generation.0);
                    let t = decoded.tokens.iter().find(|t| t.0 == generation.0);
                    assert_eq!(t.map(|t| t.1.as_str()), Some(access_token.expose()));
                }
                self.requests.insert(id, Known::Sent(*generation));
            }
            Own::Complete => {
                assert_eq!(decoded.own, OWN_COMPLETE);
                self.completed += 1;
                self.end(id, "complete");
            }
            Own::Fail(reason) => {
                assert_eq!((decoded.own, decoded.own_reason), (OWN_FAIL, Some(*reason)));
                *self.fails.entry(reason.as_str()).or_default() += 1;
                self.end(id, "fail");
            }
            Own::CallersAnswer => {
                assert_eq!(decoded.own, OWN_CALLERS_ANSWER);
                self.callers_answers += 1;
                self.end(id, "callers answer");
            }
        }
    }

    fn open(&self, sent: bool) -> Vec<RequestId> {
        self.requests
            .iter()
            .filter(|(_, k)| match k {
                Known::Sent(_) => sent,
                Known::Waiting => !sent,
                Known::Ended(_) => false,
            })
            .map(|(id, _)| *id)
            .collect()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn every_request_ends_exactly_once_and_wakes_reach_only_waiters(
        acts in prop::collection::vec(act(), 1..160),
        known in 0u64..4,
    ) {
        let d = Driver::new(Config::default().with_max_retries(2)).expect("config");
        let mut h = Host::default();
        let mut now = 1;
        let known = Generation(known);
        let step = d.login(now, Credentials::new("at-0").with_refresh_token("rt-0")).expect("login");
        h.carry(&step, None, known);
                    h.deadline_moved(&step, d.with(reauth::Coordinator::poll_timeout).expect("deadline"));
        for a in acts {
            now += 1;
            match a {
                Act::Submit { replayable, refresh, route } => {
                    let mut options = RequestOptions::default().with_replayable(replayable).with_refresh(refresh);
                    if let Some(route) = RouteKey::new(u32::from(route)) {
                        options = options.with_route(route);
                    }
                    let (id, step) = d.submit(now, options).expect("submit");
                    h.requests.insert(id, Known::Waiting); // open from here on
                    h.carry(&step, Some(id), known);
                    h.deadline_moved(&step, d.with(reauth::Coordinator::poll_timeout).expect("deadline"));
                }
                Act::Respond { pick, status, scope } => {
                    let sent = h.open(true);
                    if sent.is_empty() { continue; }
                    let id = sent[pick % sent.len()];
                    let challenge: &[&str] = if scope { &[r#"Bearer error="insufficient_scope""#] } else { &[] };
                    let step = d.response(now, id, status, challenge).expect("in flight");
                    h.carry(&step, Some(id), known);
                    h.deadline_moved(&step, d.with(reauth::Coordinator::poll_timeout).expect("deadline"));
                }
                Act::Abandon { pick } => {
                    let mut open = h.open(true);
                    open.extend(h.open(false));
                    if open.is_empty() { continue; }
                    let id = open[pick % open.len()];
                    let waiting = h.requests.get(&id) == Some(&Known::Waiting);
                    let step = d.abandon(now, id).expect("abandon");
                    h.end(id, "abandoned");
                    h.abandoned_waiting += u64::from(waiting);
                    h.carry(&step, None, known);
                    h.deadline_moved(&step, d.with(reauth::Coordinator::poll_timeout).expect("deadline"));
                }
                Act::RefreshOk { fresh } => {
                    let Some(&attempt) = h.attempts.iter().next() else { continue };
                    h.attempts.remove(&attempt);
                    h.issued += 1;
                    let creds = Credentials::new(format!("at-{}", h.issued))
                        .with_refresh_token(format!("rt-{}", h.issued))
                        .with_expires_in_ms(if fresh { 3_600_000 } else { 1_000 });
                    match d.refresh_succeeded(now, attempt, creds) {
                        Ok(step) => {
                            h.carry(&step, None, known);
                            h.deadline_moved(&step, d.with(reauth::Coordinator::poll_timeout).expect("deadline"));
                        }
                        Err(DriverError::Input(_)) => {} // an attempt the core abandoned
                        Err(e) => panic!("{e}"),
                    }
                }
                Act::RefreshTransient | Act::RefreshRejected => {
                    let Some(&attempt) = h.attempts.iter().next() else { continue };
                    h.attempts.remove(&attempt);
                    let failure = if matches!(a, Act::RefreshRejected) {
                        RefreshFailure::Rejected
                    } else {
                        RefreshFailure::Transient { retry_after_ms: None }
                    };
                    match d.refresh_failed(now, attempt, failure) {
                        Ok(step) => {
                            h.carry(&step, None, known);
                            h.deadline_moved(&step, d.with(reauth::Coordinator::poll_timeout).expect("deadline"));
                        }
                        Err(DriverError::Input(_)) => {}
                        Err(e) => panic!("{e}"),
                    }
                }
                Act::Timeout { ms } => {
                    now += ms;
                    let step = d.timeout(now).expect("timeout");
                    h.carry(&step, None, known);
                    h.deadline_moved(&step, d.with(reauth::Coordinator::poll_timeout).expect("deadline"));
                }
                Act::ForceRefresh => {
                    let step = d.force_refresh(now).expect("force");
                    h.carry(&step, None, known);
                    h.deadline_moved(&step, d.with(reauth::Coordinator::poll_timeout).expect("deadline"));
                }
                Act::Login => {
                    h.issued += 1;
                    let creds = Credentials::new(format!("at-{}", h.issued)).with_refresh_token(format!("rt-{}", h.issued));
                    let step = d.login(now, creds).expect("login");
                    h.carry(&step, None, known);
                    h.deadline_moved(&step, d.with(reauth::Coordinator::poll_timeout).expect("deadline"));
                }
                Act::Logout => {
                    let step = d.logout(now).expect("logout");
                    h.carry(&step, None, known);
                    h.deadline_moved(&step, d.with(reauth::Coordinator::poll_timeout).expect("deadline"));
                }
            }
        }
        // Close: every waiter is woken once; the ones in flight are cancelled.
        let waiting: Vec<RequestId> = h.open(false);
        let in_flight = h.open(true);
        let step = d.close(now + 1).expect("close");
        prop_assert_eq!(step.wakes.iter().map(|(id, _)| *id).collect::<Vec<_>>(), waiting.clone());
        prop_assert!(step.wakes.iter().all(|(_, w)| *w == Wake::Closed));

        // What the host saw is what the core counted.
        let stats = d.with(|core| *core.stats()).expect("stats");
        let submitted = h.requests.len() as u64;
        prop_assert_eq!(stats.submitted, submitted);
        prop_assert_eq!(stats.completed, h.completed);
        let f = &stats.failed;
        for (name, counted) in [
            ("not_logged_in", f.not_logged_in), ("logged_out", f.logged_out),
            ("refresh_rejected", f.refresh_rejected), ("refresh_unavailable", f.refresh_unavailable),
            ("excessive_refresh", f.excessive_refresh), ("unauthorized", f.unauthorized),
            ("queue_full", f.queue_full), ("wait_timeout", f.wait_timeout),
        ] {
            prop_assert_eq!(h.fails.get(name).copied().unwrap_or(0), counted, "{}", name);
        }
        // Transport failures are the abandoned requests that were in flight.
        let abandoned = h.requests.values().filter(|k| **k == Known::Ended("abandoned")).count() as u64;
        prop_assert_eq!(f.transport, abandoned - h.abandoned_waiting + h.fails.get("transport").copied().unwrap_or(0));
        prop_assert_eq!(
            stats.cancelled,
            h.callers_answers + h.abandoned_waiting + (waiting.len() + in_flight.len()) as u64
        );
        prop_assert_eq!(d.with(|core| core.open_requests()).expect("open"), 0);
    }
}

#[test]
fn a_restore_holds_requests_until_the_store_answers() {
    // Found: the waiting request goes out with the restored token when login comes.
    let d = Driver::new(Config::default()).expect("config");
    assert!(d.begin_restore(0).expect("begin").is_own_only());
    let (id, step) = d.submit(1, RequestOptions::default()).expect("submit");
    assert_eq!(step.own, Own::Wait);
    let step = d
        .login(2, Credentials::new("at-1").with_refresh_token("rt-1"))
        .expect("login");
    assert!(
        matches!(&step.wakes[..], [(woken, Wake::Send { access_token, .. })] if *woken == id && access_token.expose() == "at-1"),
        "{step:?}"
    );
    // Nothing stored: the waiting request fails NotLoggedIn, no logout.
    let d = Driver::new(Config::default()).expect("config");
    d.begin_restore(0).expect("begin");
    let (id, _) = d.submit(1, RequestOptions::default()).expect("submit");
    let step = d.restore_failed(2).expect("restore failed");
    assert_eq!(step.wakes, vec![(id, Wake::Fail(FailReason::NotLoggedIn))]);
    assert_eq!(step.logout, None);
}
