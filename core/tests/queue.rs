//! The waiting list and the request table at scale, the getters, and the counters that
//! no other test pins down (each was a surviving mutant once).

use reauth::{
    AttemptId, Command, Config, Coordinator, Credentials, FailReason, InputError, RefreshFailure,
    RequestId, RequestOptions,
};

fn logged_in(config: Config) -> Coordinator {
    let mut core = Coordinator::new(config).expect("valid config");
    core.login(0, Credentials::new("at-1").with_refresh_token("rt-1"))
        .expect("login");
    core
}

fn drain(core: &mut Coordinator) -> Vec<Command> {
    core.drain_commands().collect()
}

#[test]
fn cancelling_most_waiting_requests_keeps_the_rest_in_fifo_order() {
    let mut core = logged_in(
        Config::default()
            .with_max_pending(10_000)
            .with_refresh_timeout_ms(100_000),
    );
    core.force_refresh(1).expect("force_refresh");
    let ids: Vec<RequestId> = (0..1_000)
        .map(|i| {
            core.submit(2 + i, RequestOptions::default())
                .expect("submit")
        })
        .collect();
    let batch = drain(&mut core);
    assert!(
        matches!(batch.as_slice(), [Command::Refresh { .. }]),
        "{batch:?}"
    );
    assert_eq!(core.waiting(), 1_000);
    // Cancel nine in ten, the oldest first among them, in an interleaved order.
    let (keep, cancel): (Vec<RequestId>, Vec<RequestId>) =
        ids.iter().partition(|id| id.0 % 10 == 0);
    for (n, id) in cancel.iter().enumerate() {
        core.cancel(2_000, *id)
            .expect("waiting requests can be cancelled");
        assert_eq!(core.waiting(), 1_000 - n - 1);
    }
    assert_eq!((core.waiting(), core.open_requests()), (100, 100));
    assert_eq!(core.stats().cancelled, 900);
    // The first live waiting request sets the wait deadline (submitted at 2 + 9 = 11).
    let first = keep[0];
    assert_eq!(first, RequestId(10));
    assert_eq!(core.poll_timeout(), Some(11 + 60_000));
    core.handle_refresh_succeeded(3_000, AttemptId(1), Credentials::new("at-2"))
        .expect("adopted");
    let released: Vec<RequestId> = drain(&mut core)
        .into_iter()
        .filter_map(|c| match c {
            Command::Send { id, .. } => Some(id),
            Command::StoreCredentials { .. } => None,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(released, keep, "the survivors go out, oldest first");
    assert_eq!(core.waiting(), 0);
    for id in keep {
        assert!(core.is_in_flight(id));
        core.handle_response(4_000, id, 200).expect("200");
    }
    assert_eq!(core.open_requests(), 0);
}

#[test]
fn waiting_requests_time_out_oldest_first_and_cancelled_ones_never_fire() {
    let mut core = logged_in(
        Config::default()
            .with_max_wait_ms(1_000)
            .with_refresh_timeout_ms(100_000),
    );
    core.force_refresh(0).expect("force_refresh");
    let a = core.submit(10, RequestOptions::default()).expect("submit");
    let b = core.submit(20, RequestOptions::default()).expect("submit");
    let c = core.submit(30, RequestOptions::default()).expect("submit");
    drain(&mut core);
    core.cancel(15, a).expect("cancel");
    assert_eq!(core.poll_timeout(), Some(1_020), "b is now the oldest");
    core.handle_timeout(1_019).expect("handle_timeout");
    assert!(drain(&mut core).is_empty(), "early: nothing fires");
    core.handle_timeout(1_025).expect("handle_timeout");
    assert_eq!(
        drain(&mut core),
        [Command::Fail {
            id: b,
            reason: FailReason::WaitTimeout
        }]
    );
    assert_eq!(core.poll_timeout(), Some(1_030));
    core.handle_timeout(5_000).expect("handle_timeout");
    assert_eq!(
        drain(&mut core),
        [Command::Fail {
            id: c,
            reason: FailReason::WaitTimeout
        }]
    );
    assert_eq!(core.stats().failed.get(FailReason::WaitTimeout), 2);
    assert!(core.is_refreshing(), "the refresh itself goes on");
}

#[test]
fn a_request_left_in_flight_survives_ten_thousand_newer_ones() {
    let mut core = logged_in(Config::default());
    let straggler = core.submit(1, RequestOptions::default()).expect("submit");
    drain(&mut core);
    for t in 0..10_000 {
        let id = core
            .submit(2 + t, RequestOptions::default())
            .expect("submit");
        drain(&mut core);
        core.handle_response(2 + t, id, 200).expect("200");
        drain(&mut core);
    }
    assert_eq!(core.open_requests(), 1);
    assert_eq!(core.in_flight_ids(), [straggler]);
    core.handle_response(20_000, straggler, 200)
        .expect("still known");
    assert_eq!(drain(&mut core), [Command::Complete { id: straggler }]);
    assert_eq!(
        core.handle_response(20_001, straggler, 200),
        Err(InputError::UnknownRequest(straggler))
    );
}

#[test]
fn getters_follow_the_session() {
    let mut core = Coordinator::new(Config::default()).expect("valid");
    assert_eq!(core.now(), 0);
    assert!(!core.is_refreshing() && !core.is_logged_in());
    core.login(500, Credentials::new("at").with_refresh_token("rt"))
        .expect("login");
    assert_eq!(core.now(), 500);
    core.handle_timeout(400).expect("handle_timeout");
    assert_eq!(core.now(), 500, "time never goes back");
    let id = core.submit(600, RequestOptions::default()).expect("submit");
    assert!(core.is_in_flight(id));
    assert!(!core.is_in_flight(RequestId(id.0 + 1)));
    core.handle_response(700, id, 401).expect("401");
    assert!(core.is_refreshing());
    assert!(!core.is_in_flight(id), "it waits for the refresh");
    assert_eq!(core.active_attempt(), Some(AttemptId(1)));
    assert_eq!(core.next_attempt(), AttemptId(2));
    core.handle_refresh_failed(
        800,
        AttemptId(1),
        RefreshFailure::Transient {
            retry_after_ms: Some(5_000),
        },
    )
    .expect("transient");
    assert!(core.is_refreshing(), "a backoff is part of the refresh");
    assert_eq!(core.active_attempt(), None);
    assert_eq!(
        core.poll_timeout(),
        Some(5_800),
        "Retry-After wins over 500 ms"
    );
    core.logout(900).expect("logout");
    assert!(!core.is_refreshing() && core.generation().is_none());
}

#[test]
fn refresh_counters_count_rejections_timeouts_and_ignored_results() {
    let mut core = logged_in(
        Config::default()
            .with_refresh_timeout_ms(1_000)
            .with_max_retries(1),
    );
    core.force_refresh(0).expect("force_refresh");
    let id = core.submit(0, RequestOptions::default()).expect("submit");
    core.handle_timeout(1_000).expect("handle_timeout"); // attempt 1 abandoned
    core.handle_timeout(1_500).expect("handle_timeout"); // backoff over: attempt 2
    core.handle_refresh_failed(1_600, AttemptId(1), RefreshFailure::Rejected)
        .expect("late failure of an abandoned attempt: ignored");
    core.drain_commands().for_each(drop);
    core.handle_refresh_failed(1_700, AttemptId(2), RefreshFailure::Rejected)
        .expect("rejected");
    // Rule 9: attempt 1 was abandoned unanswered, so the rejection is held for
    // `refresh_timeout_ms` in case it delivers a rotated token; then it stands.
    assert!(core.is_logged_in() && core.is_refreshing());
    assert_eq!(core.poll_timeout(), Some(2_700));
    assert_eq!(core.drain_commands().count(), 0);
    core.handle_timeout(2_699).expect("early");
    assert!(core.is_logged_in());
    core.handle_timeout(2_700).expect("held rejection stands");
    assert!(!core.is_logged_in());
    let s = *core.stats();
    assert_eq!(
        (s.refresh_timeouts, s.refresh_transient, s.refresh_rejected),
        (1, 1, 1)
    );
    assert_eq!((s.refresh_results_ignored, s.refresh_attempts), (1, 2));
    assert_eq!(s.failed.get(FailReason::RefreshRejected), 1);
    // Results after the logout are ignored and counted: a success and a failure.
    core.handle_refresh_succeeded(2_800, AttemptId(2), Credentials::new("late"))
        .expect("ignored");
    core.handle_refresh_failed(
        2_900,
        AttemptId(1),
        RefreshFailure::Transient {
            retry_after_ms: None,
        },
    )
    .expect("ignored");
    assert_eq!(core.stats().refresh_results_ignored, 3);
    assert!(drain(&mut core).contains(&Command::Fail {
        id,
        reason: FailReason::RefreshRejected
    }));
}

#[test]
fn tokens_up_to_65536_bytes_are_accepted_and_longer_ones_refused() {
    let mut core = Coordinator::new(Config::default()).expect("valid");
    let longest = "t".repeat(65_536);
    core.login(
        0,
        Credentials::new(longest.clone()).with_refresh_token(longest),
    )
    .expect("65 536 bytes is the limit, inclusive");
    let too_long = Credentials::new("t".repeat(65_537));
    assert!(matches!(
        core.login(1, too_long),
        Err(InputError::InvalidCredentials(_))
    ));
}
