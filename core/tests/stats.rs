//! `stats()` counts exactly what the command stream shows.

use reauth::{
    Command, Config, Coordinator, Credentials, FailReason, RefreshFailure, RequestOptions,
};

#[test]
fn counters_match_a_known_session() {
    let mut core = Coordinator::new(Config::default().with_max_retries(1)).expect("valid");
    core.submit(0, RequestOptions::default()).expect("submit"); // not logged in
    core.login(0, Credentials::new("a1").with_refresh_token("r1"))
        .expect("login");
    let a = core.submit(1, RequestOptions::default()).expect("submit");
    let b = core.submit(1, RequestOptions::default()).expect("submit");
    let c = core.submit(1, RequestOptions::default()).expect("submit");
    core.handle_response(2, a, 401).expect("401");
    core.handle_response(2, b, 401).expect("401");
    core.handle_response(2, c, 500).expect("500");
    core.handle_refresh_failed(
        3,
        reauth::AttemptId(1),
        RefreshFailure::Transient {
            retry_after_ms: None,
        },
    )
    .expect("transient");
    core.handle_timeout(10_000).expect("handle_timeout"); // backoff over: attempt 2
    core.handle_refresh_succeeded(10_001, reauth::AttemptId(2), Credentials::new("a2"))
        .expect("adopted");
    core.handle_refresh_failed(10_002, reauth::AttemptId(1), RefreshFailure::Rejected)
        .expect("stale: ignored");
    core.handle_response(10_003, a, 200).expect("200");
    core.cancel(10_004, b).expect("cancel");
    core.logout(10_005).expect("logout");
    let commands: Vec<Command> = core.drain_commands().collect();
    assert_eq!(commands.len(), 12, "{commands:#?}");

    let s = core.stats();
    assert_eq!(
        (s.submitted, s.sent, s.replayed, s.completed, s.cancelled),
        (4, 3, 2, 2, 1)
    );
    assert_eq!(s.failed.get(FailReason::NotLoggedIn), 1);
    assert_eq!(s.failed.total(), 1);
    assert_eq!(s.unauthorized_responses, 2);
    assert_eq!((s.refresh_cycles, s.refresh_attempts), (1, 2));
    assert_eq!(
        (s.refresh_succeeded, s.refresh_rejected, s.refresh_transient),
        (1, 0, 1)
    );
    assert_eq!(
        (s.refresh_timeouts, s.refresh_results_ignored, s.logouts),
        (0, 1, 1)
    );
}
