//! The host's half read against the RFCs' own examples and hostile answers (table-driven),
//! then property tests: no answer panics, and a rotated refresh token in a 200 is never
//! dropped, whatever else is in the answer.

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use proptest::prelude::*;
use reauth::{RefreshFailure, Secret};
use reauth_host::{
    ClientAuth, MAX_TOKEN_RESPONSE_BYTES, Problem, TokenAnswer, TokenEndpoint, read_token_response,
};

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

fn sent() -> Secret {
    Secret::new("tGzv3JOkF0XG5Qx2TlKWIA")
}

fn read(status: u16, body: &str) -> TokenAnswer {
    read_token_response(status, None, body.as_bytes(), &sent(), now())
}

#[test]
fn rfc_6749_section_6_refresh_request_with_basic_authentication() {
    // RFC 6749 §6's example request: client s6BhdRkqt3, secret gX1fBat3bV (§2.3.1).
    let endpoint = TokenEndpoint::new("https://server.example.com/token", "s6BhdRkqt3")
        .with_client_secret("gX1fBat3bV")
        .with_auth(ClientAuth::Basic);
    let r = endpoint.refresh_request(&sent());
    assert_eq!(
        r.body.expose(),
        "grant_type=refresh_token&refresh_token=tGzv3JOkF0XG5Qx2TlKWIA"
    );
    let header = |name| {
        r.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.expose().to_owned())
    };
    assert_eq!(
        header("Authorization").as_deref(),
        Some("Basic czZCaGRSa3F0MzpnWDFmQmF0M2JW")
    );
    assert_eq!(
        header("Content-Type").as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert!(!format!("{r:?}").contains("tGzv3") && !format!("{r:?}").contains("czZC"));
    assert!(!format!("{endpoint:?}").contains("gX1fBat3bV"));
}

#[test]
fn refresh_request_in_the_body_is_form_encoded() {
    let r = TokenEndpoint::new("https://a/token", "my app&x")
        .with_client_secret("s=1+2")
        .refresh_request(&Secret::new("r+/="));
    assert_eq!(
        r.body.expose(),
        "grant_type=refresh_token&refresh_token=r%2B%2F%3D&client_id=my+app%26x&client_secret=s%3D1%2B2"
    );
    assert!(r.headers.iter().all(|(n, _)| *n != "Authorization"));
    // A public client sends its id, no secret (§3.2.1), even when Basic is asked for.
    let public = TokenEndpoint::new("https://a/token", "app").with_auth(ClientAuth::Basic);
    assert_eq!(
        public.refresh_request(&Secret::new("r")).body.expose(),
        "grant_type=refresh_token&refresh_token=r&client_id=app"
    );
}

#[test]
fn retry_after_is_read_on_transient_answers() {
    let a = read_token_response(503, Some("2"), b"busy", &sent(), now());
    assert_eq!(
        a.failure(),
        Some(RefreshFailure::Transient {
            retry_after_ms: Some(2_000)
        })
    );
    let date = httpdate_in(7);
    let a = read_token_response(429, Some(&date), b"", &sent(), now());
    assert_eq!(
        a.failure(),
        Some(RefreshFailure::Transient {
            retry_after_ms: Some(7_000)
        })
    );
    let a = read_token_response(
        400,
        Some("9"),
        br#"{"error":"invalid_grant"}"#,
        &sent(),
        now(),
    );
    assert_eq!(a.failure(), Some(RefreshFailure::Rejected));
}

fn httpdate_in(seconds: u64) -> String {
    // RFC 9110 IMF-fixdate, seconds after now(): 2023-11-14 22:13:20 UTC + seconds.
    assert!(seconds < 40);
    format!("Tue, 14 Nov 2023 22:13:{:02} GMT", 20 + seconds)
}

#[test]
fn an_oversized_body_is_refused_unread() {
    let mut body = br#"{"access_token":"a","refresh_token":"r2","x":""#.to_vec();
    body.resize(MAX_TOKEN_RESPONSE_BYTES + 1, b'x');
    assert!(matches!(
        read_token_response(200, None, &body, &sent(), now()),
        TokenAnswer::Transient {
            problem: Problem::TooLarge,
            ..
        }
    ));
}

#[test]
fn problems_never_show_token_text() {
    for body in [
        r#"{"access_token":"SECRETa b","refresh_token":"SECRETr2"}"#,
        r#"{"access_token":"SECRETa","refresh_token":"SECRET r2"}"#,
        r#"{"access_token":"SECRETa","token_type":"SECRET"}"#,
    ] {
        let a = read(200, body);
        let shown = format!("{a:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        if let TokenAnswer::Transient { problem, .. } = &a {
            assert!(!problem.to_string().contains("SECRET"));
        }
    }
}

/// A member value of any kind, including what strict parsers refuse (`NaN`, `1e400`,
/// bare words) — but balanced: a body that is not an object at all is not an answer.
fn junk() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("null".to_owned()),
        Just("NaN".to_owned()),
        Just("1e400".to_owned()),
        Just("-3".to_owned()),
        Just("\"\\u0000\"".to_owned()),
        Just("\"a b\"".to_owned()),
        "[a-z0-9 ]{0,12}".prop_map(|s| format!("\"{s}\"")),
        "[0-9]{1,25}",
        "[0-9a-z,]{0,16}".prop_map(|s| format!("[{s}]")),
        "[a-z]{1,5}".prop_map(|s| format!("{{\"{s}\":[{{}}],\"refresh_token\":1}}")),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("access_token".to_owned()),
        Just("token_type".to_owned()),
        Just("expires_in".to_owned()),
        Just("scope".to_owned()),
        "[a-z_]{1,10}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// The default route hashes the name as it spells it, allocating nothing: the key is
    /// the key of the name, for any parts (non-ASCII, IPv6, odd ports, queries).
    #[test]
    fn the_default_route_is_the_key_of_the_route_name(
        method in "[a-zA-Z]{0,8}", scheme in "(?i)(https?|wss?|ftp|)", host in "\\PC{0,20}",
        port in proptest::option::of(prop_oneof![Just(80u16), Just(443u16), any::<u16>()]), path in "\\PC{0,30}",
    ) {
        prop_assert_eq!(
            reauth_host::default_route(&method, &scheme, &host, port, &path),
            reauth::RouteKey::from_name(&reauth_host::route_name(&method, &scheme, &host, port, &path))
        );
    }

    /// Any bytes, any status: an answer, never a panic; success only on a 200 and only
    /// with credentials the core accepts.
    #[test]
    fn any_answer_is_classified(status in 100u16..600, body in proptest::collection::vec(any::<u8>(), 0..300)) {
        match read_token_response(status, None, &body, &sent(), now()) {
            TokenAnswer::Succeeded { credentials, .. } => {
                prop_assert_eq!(status, 200);
                prop_assert!(credentials.validate().is_ok());
            }
            TokenAnswer::Rejected { error } => prop_assert!(matches!(status, 400 | 401) && !error.is_empty()),
            TokenAnswer::Transient { rotated_refresh_token, .. } => {
                prop_assert!(rotated_refresh_token.is_none_or(|r| r.validate(reauth::TokenKind::Refresh).is_ok()));
            }
        }
    }

    /// A 200 whose one `refresh_token` is a usable new token keeps it, whatever the
    /// other members are (duplicated, garbage, non-JSON numbers): as the credentials'
    /// refresh token, or as the rotation to keep.
    #[test]
    fn a_rotation_in_a_200_is_never_dropped(
        rotated in "[A-Za-z0-9._~+/-]{1,40}",
        before in proptest::collection::vec((key(), junk()), 0..5),
        after in proptest::collection::vec((key(), junk()), 0..5),
    ) {
        prop_assume!(rotated != sent().expose());
        let member = |(k, v): &(String, String)| format!("\"{k}\":{v}");
        let mut parts: Vec<String> = before.iter().map(member).collect();
        parts.push(format!("\"refresh_token\":\"{rotated}\""));
        parts.extend(after.iter().map(member));
        let body = format!("{{{}}}", parts.join(","));
        let kept = match read(200, &body) {
            TokenAnswer::Succeeded { credentials, .. } => credentials.refresh_token.map(|r| r.expose().to_owned()),
            TokenAnswer::Transient { rotated_refresh_token, .. } => rotated_refresh_token.map(|r| r.expose().to_owned()),
            TokenAnswer::Rejected { .. } => None,
        };
        prop_assert_eq!(kept.as_deref(), Some(rotated.as_str()), "{}", body);
    }
}

#[test]
fn basic_authentication_form_encodes_both_parts() {
    // RFC 6749 §2.3.1: id and secret are form-encoded (Appendix B) before base64.
    let r = TokenEndpoint::new("https://a/token", "my app&x:1")
        .with_client_secret("s=1+2:é")
        .with_auth(ClientAuth::Basic)
        .refresh_request(&Secret::new("r"));
    let header = r
        .headers
        .iter()
        .find(|(n, _)| *n == "Authorization")
        .map(|(_, v)| v.expose().to_owned());
    let pair = "my+app%26x%3A1:s%3D1%2B2%3A%C3%A9";
    assert_eq!(
        header,
        Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        ))
    );
}

#[test]
fn an_answer_used_despite_its_lifetime_says_so() {
    for body in [
        r#"{"access_token":"a","expires_in":1,"expires_in":2}"#,
        r#"{"access_token":"a","expires_in":-1}"#,
        r#"{"access_token":"a","expires_in":NaN}"#,
    ] {
        let a = read_token_response(200, None, body.as_bytes(), &sent(), now());
        assert!(
            matches!(
                &a,
                TokenAnswer::Succeeded { credentials, note: Some(Problem::LifetimeIgnored) }
                    if credentials.expires_in_ms.is_none()
            ),
            "{body}: {a:?}"
        );
    }
}
