//! Every `InputError` variant: the input is refused, and state, statistics, timers and
//! pending commands are exactly as before (G9). Also: every `ConfigError` path refuses
//! to build a coordinator.

use reauth::{
    AttemptId, Command, Config, ConfigError, Coordinator, Credentials, CredentialsError, Input,
    InputError, MAX_TIMESTAMP, RefreshFailure, RequestId, RequestOptions, SharedCoordinator,
    SharedError, TokenKind,
};
use reauth_testkit::oracle::Snapshot;

/// A coordinator in a busy state: logged in, a refresh running, one request waiting, one
/// in flight, one attempt issued.
fn busy() -> (Coordinator, RequestId, RequestId, AttemptId) {
    let mut core = Coordinator::new(Config::default()).expect("valid");
    core.login(
        0,
        Credentials::new("at-1")
            .with_refresh_token("rt-1")
            .with_expires_in_ms(600_000),
    )
    .expect("login");
    let waiting = core.submit(10, RequestOptions::default()).expect("submit");
    let in_flight = core.submit(11, RequestOptions::default()).expect("submit");
    core.handle_response(20, waiting, 401).expect("401");
    let commands: Vec<Command> = core.drain_commands().collect();
    let attempt = commands
        .iter()
        .find_map(|c| match c {
            Command::Refresh { attempt, .. } => Some(*attempt),
            _ => None,
        })
        .expect("a refresh started");
    (core, waiting, in_flight, attempt)
}

fn refused(input: Input, want: InputError) {
    let (mut core, ..) = busy();
    let before = Snapshot::of(&core);
    let got = core
        .apply(5_000, input.clone())
        .expect_err("must be refused");
    assert_eq!(got, want, "{input:?}");
    assert_eq!(core.poll_command(), None, "{input:?} emitted a command");
    assert_eq!(Snapshot::of(&core), before, "{input:?} changed state");
}

#[test]
fn a_time_past_the_end_of_the_clock_changes_nothing() {
    // §3.5: every input refuses it, whatever else it carries.
    for at in [MAX_TIMESTAMP + 1, u64::MAX] {
        let (mut core, waiting, in_flight, attempt) = busy();
        let inputs = [
            Input::Submit {
                options: RequestOptions::default(),
            },
            Input::Timeout,
            Input::ForceRefresh,
            Input::Logout,
            Input::Cancel { id: waiting },
            Input::Response {
                id: in_flight,
                status: 401,
            },
            Input::Login {
                credentials: Credentials::new("at-9"),
            },
            Input::RefreshSucceeded {
                attempt,
                credentials: Credentials::new("at-9"),
            },
            Input::RefreshFailed {
                attempt,
                failure: RefreshFailure::Rejected,
            },
        ];
        for input in inputs {
            let before = Snapshot::of(&core);
            let got = core.apply(at, input.clone()).expect_err("must be refused");
            assert_eq!(got, InputError::InvalidTime(at), "{input:?}");
            assert_eq!(got.kind(), "invalid_time");
            assert_eq!(core.poll_command(), None, "{input:?} emitted a command");
            assert_eq!(Snapshot::of(&core), before, "{input:?} changed state");
        }
        // The end of the clock itself is a valid time.
        core.handle_timeout(MAX_TIMESTAMP).expect("valid");
        assert_eq!(core.now(), MAX_TIMESTAMP);
    }
}

#[test]
fn unknown_request_changes_nothing() {
    refused(
        Input::Response {
            id: RequestId(999),
            status: 200,
        },
        InputError::UnknownRequest(RequestId(999)),
    );
    refused(
        Input::Cancel { id: RequestId(0) },
        InputError::UnknownRequest(RequestId(0)),
    );
}

#[test]
fn not_in_flight_changes_nothing() {
    let (_, waiting, ..) = busy();
    refused(
        Input::Response {
            id: waiting,
            status: 200,
        },
        InputError::NotInFlight(waiting),
    );
}

#[test]
fn unknown_attempt_changes_nothing() {
    let (_, _, _, attempt) = busy();
    let next = AttemptId(attempt.0 + 1);
    refused(
        Input::RefreshSucceeded {
            attempt: next,
            credentials: Credentials::new("at-2"),
        },
        InputError::UnknownAttempt(next),
    );
    refused(
        Input::RefreshFailed {
            attempt: AttemptId(0),
            failure: RefreshFailure::Rejected,
        },
        InputError::UnknownAttempt(AttemptId(0)),
    );
}

#[test]
fn invalid_credentials_change_nothing() {
    let (_, _, _, attempt) = busy();
    let cases = [
        (
            Credentials::new(""),
            CredentialsError::EmptyToken(TokenKind::Access),
        ),
        (
            Credentials::new("a").with_refresh_token(""),
            CredentialsError::EmptyToken(TokenKind::Refresh),
        ),
        (
            Credentials::new("a b"),
            CredentialsError::InvalidTokenCharacter(TokenKind::Access),
        ),
        (
            Credentials::new("a\nb"),
            CredentialsError::InvalidTokenCharacter(TokenKind::Access),
        ),
        (
            Credentials::new("x".repeat(70_000)),
            CredentialsError::TokenTooLong(TokenKind::Access),
        ),
    ];
    for (credentials, why) in cases {
        refused(
            Input::Login {
                credentials: credentials.clone(),
            },
            InputError::InvalidCredentials(why),
        );
        refused(
            Input::RefreshSucceeded {
                attempt,
                credentials,
            },
            InputError::InvalidCredentials(why),
        );
    }
}

#[test]
fn invalid_status_changes_nothing() {
    let (_, _, in_flight, _) = busy();
    for status in [0, 99, 600, u16::MAX] {
        refused(
            Input::Response {
                id: in_flight,
                status,
            },
            InputError::InvalidStatus(status),
        );
    }
}

#[test]
fn error_messages_are_terse_and_name_no_token() {
    let e = InputError::InvalidCredentials(CredentialsError::EmptyToken(TokenKind::Refresh));
    assert_eq!(e.to_string(), "invalid credentials: refresh token is empty");
    assert_eq!(e.kind(), "invalid_credentials");
    assert_eq!(
        InputError::UnknownRequest(RequestId(7)).to_string(),
        "unknown request 7"
    );
    assert_eq!(
        InputError::InvalidStatus(600).to_string(),
        "invalid http status 600"
    );
}

#[test]
fn shared_wrapper_reports_input_errors_and_changes_nothing() {
    let shared = SharedCoordinator::new(Config::default()).expect("valid");
    shared
        .login(0, Credentials::new("at").with_refresh_token("rt"))
        .expect("login");
    let before = shared.stats().expect("stats");
    assert_eq!(
        shared.handle_response(1, RequestId(42), 200),
        Err(SharedError::Input(InputError::UnknownRequest(RequestId(
            42
        ))))
    );
    assert_eq!(shared.stats().expect("stats"), before);
}

#[test]
fn absurd_configs_are_refused() {
    let cases: [(Config, &str); 5] = [
        (
            Config::default().with_refresh_statuses((400..417).collect::<Vec<u16>>()),
            "refresh_statuses lists more than 16 statuses",
        ),
        (
            Config::default().with_refresh_statuses(vec![302]),
            "refresh status 302 is not in 400..=599",
        ),
        (
            Config::default().with_max_pending(0),
            "max_pending must be in 1..=1000000, got 0",
        ),
        (
            Config::default().with_max_wait_ms(u64::MAX),
            "max_wait_ms must be in 1..=86400000, got 18446744073709551615",
        ),
        (
            Config::default().with_max_retries(1_000),
            "max_retries must be in 0..=100, got 1000",
        ),
    ];
    for (config, message) in cases {
        let err: ConfigError = Coordinator::new(config).expect_err("absurd");
        assert_eq!(err.to_string(), message);
    }
}
