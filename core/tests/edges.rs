//! The edges that mutation testing found untested: each test here fails when the named
//! comparison, bound or call is changed (see `scripts/mutants`).

use reauth::{
    Command, Config, Coordinator, Credentials, FailReason, LogoutReason, RefreshWindow, RequestId,
    RequestOptions, RouteKey, SharedCoordinator,
};

fn refreshes(batch: &[Command]) -> usize {
    batch
        .iter()
        .filter(|c| matches!(c, Command::Refresh { .. }))
        .count()
}

fn attempt_of(batch: &[Command]) -> reauth::AttemptId {
    batch
        .iter()
        .find_map(|c| match c {
            Command::Refresh { attempt, .. } => Some(*attempt),
            _ => None,
        })
        .expect("a refresh")
}

/// Rule 7: an expiry refresh counts in the window only when the token it replaces is
/// younger than `min_token_age_ms` — strictly. With one refresh allowed per window, the
/// expiry cycle that starts at exactly that age must not count, so the refusal after it
/// still gets its refresh; one millisecond younger, it counts and the refusal logs out.
#[test]
fn rule_7_an_expiry_refresh_at_exactly_the_minimum_age_does_not_count() {
    let run = |lifetime_ms: u64| -> Vec<Command> {
        let config = Config::default()
            .with_expiry_skew_ms(0)
            .with_min_token_age_ms(1_000)
            .with_refresh_window(RefreshWindow::new(1, 30_000));
        let mut core = Coordinator::new(config).expect("valid");
        core.login(
            0,
            Credentials::new("at-1")
                .with_refresh_token("rt-1")
                .with_expires_in_ms(lifetime_ms),
        )
        .expect("login");
        // At its expiry the token is `lifetime_ms` old: the request waits for a refresh.
        let id = core
            .submit(lifetime_ms, RequestOptions::default())
            .expect("submit");
        let batch: Vec<Command> = core.drain_commands().collect();
        let attempt = attempt_of(&batch);
        core.handle_refresh_succeeded(
            lifetime_ms + 1,
            attempt,
            Credentials::new("at-2")
                .with_refresh_token("rt-2")
                .with_expires_in_ms(600_000),
        )
        .expect("adopted");
        core.drain_commands().for_each(drop);
        // The new token is refused: a refresh that counts.
        core.handle_response(lifetime_ms + 2, id, 401).expect("401");
        core.drain_commands().collect()
    };
    let at_the_minimum = run(1_000);
    assert_eq!(
        refreshes(&at_the_minimum),
        1,
        "a token exactly min_token_age_ms old was no loop: {at_the_minimum:?}"
    );
    let younger = run(999);
    assert!(
        younger.contains(&Command::Logout {
            reason: LogoutReason::ExcessiveRefresh
        }),
        "a token younger than min_token_age_ms counted: {younger:?}"
    );
}

/// Rule 20: at most 16 routes are remembered as refusing one token. Seventeen requests on
/// seventeen routes are refused by the token, wait for the refresh, and are refused again
/// with the fresh one: the first sixteen routes are remembered (a later request on one of
/// them fails at once, no refresh), the seventeenth is not (a later request on it costs a
/// refresh, as without a route key).
#[test]
fn rule_20_remembers_sixteen_refusing_routes_and_no_more() {
    let mut core = Coordinator::new(Config::default()).expect("valid");
    core.login(
        0,
        Credentials::new("at-1")
            .with_refresh_token("rt-1")
            .with_expires_in_ms(600_000),
    )
    .expect("login");
    let route = |i: u32| RouteKey::new(100 + i).expect("non-zero");
    let ids: Vec<RequestId> = (0..17)
        .map(|i| {
            core.submit(10, RequestOptions::default().with_route(route(i)))
                .expect("submit")
        })
        .collect();
    core.drain_commands().for_each(drop);
    let mut attempt = None;
    for &id in &ids {
        core.handle_response(20, id, 401).expect("401");
        for c in core.drain_commands() {
            if let Command::Refresh { attempt: a, .. } = c {
                attempt = Some(a);
            }
        }
    }
    core.handle_refresh_succeeded(
        30,
        attempt.expect("one refresh"),
        Credentials::new("at-2")
            .with_refresh_token("rt-2")
            .with_expires_in_ms(600_000),
    )
    .expect("adopted");
    core.drain_commands().for_each(drop);
    for &id in &ids {
        core.handle_response(40, id, 401)
            .expect("401 with the fresh token");
        let batch: Vec<Command> = core.drain_commands().collect();
        assert_eq!(
            batch,
            [Command::Fail {
                id,
                reason: FailReason::Unauthorized
            }],
            "a route refusing a fresh token fails its request, no refresh"
        );
    }
    let refused_again = |core: &mut Coordinator, i: u32| -> Vec<Command> {
        let id = core
            .submit(50, RequestOptions::default().with_route(route(i)))
            .expect("submit");
        core.drain_commands().for_each(drop);
        core.handle_response(60, id, 401).expect("401");
        core.drain_commands().collect()
    };
    let remembered = refused_again(&mut core, 15);
    assert!(
        matches!(
            remembered.as_slice(),
            [Command::Fail {
                reason: FailReason::Unauthorized,
                ..
            }]
        ),
        "the sixteenth route is remembered: {remembered:?}"
    );
    let forgotten = refused_again(&mut core, 16);
    assert_eq!(
        refreshes(&forgotten),
        1,
        "the seventeenth route is not remembered: {forgotten:?}"
    );
}

/// `RouteKey`: the number it was made with, and 32-bit FNV-1a for a name (its published
/// test vectors), so that a key computed elsewhere from the same name agrees.
#[test]
fn route_keys_are_fnv_1a_of_the_name() {
    assert_eq!(RouteKey::new(7).map(RouteKey::get), Some(7));
    assert_eq!(RouteKey::new(0), None);
    assert_eq!(RouteKey::from_name("").get(), 0x811c_9dc5);
    assert_eq!(RouteKey::from_name("a").get(), 0xe40c_292c);
    assert_eq!(RouteKey::from_name("foobar").get(), 0xbf9c_f968);
    assert_eq!(
        RouteKey::from_name("GET /admin/users"),
        RouteKey::from_name("GET /admin/users")
    );
}

/// The thread-safe wrapper hands back each input's batch: a transport error fails the
/// request (rule 17); a restore holds requests (rule 18) and its failure fails them.
#[test]
fn the_shared_wrapper_returns_the_batches_of_its_rarer_inputs() {
    let shared = SharedCoordinator::new(Config::default()).expect("valid");
    shared
        .login(0, Credentials::new("at").with_refresh_token("rt"))
        .expect("login");
    let (id, _) = shared.submit(1, RequestOptions::default()).expect("submit");
    assert_eq!(
        shared.handle_transport_error(2, id).expect("accepted"),
        [Command::Fail {
            id,
            reason: FailReason::Transport
        }]
    );

    let shared = SharedCoordinator::new(Config::default()).expect("valid");
    assert_eq!(shared.begin_restore(0).expect("accepted"), []);
    let (id, waits) = shared.submit(1, RequestOptions::default()).expect("submit");
    assert_eq!(waits, [], "a request waits while credentials are restored");
    assert_eq!(
        shared.restore_failed(2).expect("accepted"),
        [Command::Fail {
            id,
            reason: FailReason::NotLoggedIn
        }]
    );
}
