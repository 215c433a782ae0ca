//! The host conformance table (`tests/host-vectors/`, format in its README): every
//! token-endpoint answer, challenge and route there, read by this crate with the outcome
//! the table states. Every binding replays the same files.

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use reauth::{Secret, TokenKind};
use reauth_host::{BearerError, TokenAnswer, bearer_error, read_token_response, route_name};
use serde_json::Value;

fn load(name: &str) -> Value {
    let path = format!(
        "{}/../tests/host-vectors/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The body a case describes: `body` (text) or `body_base64`, padded with spaces to
/// `pad_to` bytes.
fn body(case: &Value) -> Vec<u8> {
    let mut body = match (case.get("body"), case.get("body_base64")) {
        (Some(Value::String(text)), None) => text.as_bytes().to_vec(),
        (None, Some(Value::String(b64))) => base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("base64"),
        _ => panic!("a case has body or body_base64: {case}"),
    };
    if let Some(n) = case.get("pad_to").and_then(Value::as_u64) {
        body.resize(usize::try_from(n).expect("size"), b' ');
    }
    body
}

fn text(v: Option<&Secret>) -> Value {
    v.map_or(Value::Null, |s| Value::String(s.expose().to_owned()))
}

/// The answer as the table writes it.
fn observed(answer: &TokenAnswer) -> Value {
    match answer {
        TokenAnswer::Succeeded { credentials, .. } => {
            assert!(credentials.validate().is_ok());
            serde_json::json!({
                "outcome": "succeeded",
                "access_token": credentials.access_token.expose(),
                "refresh_token": text(credentials.refresh_token.as_ref()),
                "expires_in_ms": credentials.expires_in_ms,
            })
        }
        TokenAnswer::Rejected { error } => {
            serde_json::json!({"outcome": "rejected", "error": error})
        }
        TokenAnswer::Transient {
            retry_after_ms,
            problem,
            rotated_refresh_token,
        } => {
            if let Some(r) = rotated_refresh_token {
                assert!(r.validate(TokenKind::Refresh).is_ok());
            }
            serde_json::json!({
                "outcome": "transient",
                "retry_after_ms": retry_after_ms,
                "problem": problem.code(),
                "rotated_refresh_token": text(rotated_refresh_token.as_ref()),
            })
        }
    }
}

#[test]
fn token_responses() {
    let table = load("token-responses.json");
    let sent = Secret::new(table["sent_refresh_token"].as_str().expect("sent"));
    let wall = SystemTime::UNIX_EPOCH
        + Duration::from_millis(table["wall_now_ms"].as_u64().expect("wall_now_ms"));
    let cases = table["cases"].as_array().expect("cases");
    assert!(cases.len() >= 45, "the table lost cases");
    let mut failures = Vec::new();
    for case in cases {
        let status = u16::try_from(case["status"].as_u64().expect("status")).expect("u16");
        let answer = read_token_response(
            status,
            case.get("retry_after").and_then(Value::as_str),
            &body(case),
            &sent,
            wall,
        );
        let got = observed(&answer);
        if got != case["expect"] {
            failures.push(format!(
                "{}: expected {}, got {got}",
                case["name"], case["expect"]
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn challenges() {
    for case in load("challenges.json")["cases"].as_array().expect("cases") {
        let values: Vec<&str> = case["www_authenticate"]
            .as_array()
            .expect("values")
            .iter()
            .map(|v| v.as_str().expect("text"))
            .collect();
        let got = bearer_error(values.iter().copied());
        let name = got.map(|e| match e {
            BearerError::InvalidToken => "invalid_token",
            BearerError::InsufficientScope => "insufficient_scope",
            BearerError::InvalidRequest => "invalid_request",
            BearerError::Other => "other",
        });
        assert_eq!(name, case["bearer_error"].as_str(), "{case}");
        assert_eq!(
            got.is_some_and(BearerError::is_callers_answer),
            case["callers_answer"].as_bool().expect("bool"),
            "{case}"
        );
    }
}

#[test]
fn routes() {
    for case in load("routes.json")["cases"].as_array().expect("cases") {
        let s = |k: &str| case[k].as_str().expect(k);
        let port = case["port"]
            .as_u64()
            .map(|p| u16::try_from(p).expect("port"));
        let name = route_name(s("method"), s("scheme"), s("host"), port, s("path"));
        assert_eq!(name, s("name"), "{case}");
        assert_eq!(
            u64::from(reauth::RouteKey::from_name(&name).get()),
            case["route_key"].as_u64().expect("key"),
            "{case}"
        );
    }
}
