//! G10: no token text in any `Debug` or `Display` output of any public type that holds
//! one, nor in any error.

use reauth::{
    Command, Config, Coordinator, Credentials, Generation, Input, RequestOptions, Secret,
    SharedCoordinator,
};

const ACCESS: &str = "zzACCESSzz";
const REFRESH: &str = "zzREFRESHzz";
const ROTATED: &str = "zzROTATEDzz";

fn assert_clean(what: &str, shown: String) {
    for token in [ACCESS, REFRESH, ROTATED] {
        assert!(!shown.contains(token), "{what} shows a token: {shown}");
    }
}

#[test]
fn no_public_type_prints_a_token() {
    let credentials = Credentials::new(ACCESS).with_refresh_token(REFRESH);
    let secret = Secret::new(ACCESS);
    assert_clean("Secret", format!("{secret:?} {secret} {secret:#?}"));
    assert_clean("Credentials", format!("{credentials:?} {credentials:#?}"));
    let input = Input::Login {
        credentials: credentials.clone(),
    };
    assert_clean("Input", format!("{input:?}"));

    let mut core = Coordinator::new(Config::default()).expect("valid");
    core.login(0, credentials.clone()).expect("login");
    let id = core.submit(1, RequestOptions::default()).expect("submit");
    core.handle_response(2, id, 401).expect("401");
    let attempt = core.active_attempt().expect("refreshing");
    core.handle_refresh_succeeded(
        3,
        attempt,
        Credentials::new("a2").with_refresh_token(ROTATED),
    )
    .expect("adopted");
    let commands: Vec<Command> = core.drain_commands().collect();
    assert!(
        commands
            .iter()
            .any(|c| matches!(c, Command::StoreCredentials { .. }))
    );
    for c in &commands {
        assert_clean("Command", format!("{c:?} {c:#?}"));
    }
    assert_clean("Coordinator", format!("{core:?} {core:#?}"));
    let store = Command::StoreCredentials {
        credentials,
        generation: Generation(1),
        expires_at: Some(60_000),
    };
    assert_clean("StoreCredentials", format!("{store:?}"));

    let shared = SharedCoordinator::from_coordinator(core);
    assert_clean("SharedCoordinator", format!("{shared:?}"));
    let err = shared
        .login(4, Credentials::new(format!("{ACCESS} with space")))
        .expect_err("whitespace is refused");
    assert_clean("error", format!("{err} {err:?}"));
}

#[test]
fn tokens_are_shared_not_copied() {
    let mut core = Coordinator::new(Config::default()).expect("valid");
    core.login(0, Credentials::new(ACCESS).with_refresh_token(REFRESH))
        .expect("login");
    let a = core.submit(1, RequestOptions::default()).expect("submit");
    let b = core.submit(1, RequestOptions::default()).expect("submit");
    let tokens: Vec<Secret> = core
        .drain_commands()
        .filter_map(|c| match c {
            Command::Send { access_token, .. } => Some(access_token),
            _ => None,
        })
        .collect();
    assert_eq!(tokens.len(), 2, "{a} and {b} were sent");
    assert!(
        std::ptr::eq(tokens[0].expose(), tokens[1].expose()),
        "one buffer for every command"
    );
}
