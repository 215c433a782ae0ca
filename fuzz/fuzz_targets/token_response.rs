//! The token-response reader (`reauth-host`, contract §12.3) on arbitrary answers: a
//! status from the first two bytes, the rest as the body. Checks that it never panics,
//! succeeds only on a 200 with credentials the core accepts, rejects only a 400/401, keeps
//! only usable rotations, never shows the sent token in a problem, is deterministic, and
//! never drops a rotated refresh token from a 200 that is one well-formed JSON object with
//! a single usable `refresh_token`.
#![no_main]

use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use reauth::{Secret, TokenKind};
use reauth_host::{TokenAnswer, read_token_response};

const SENT: &str = "SENT-refresh-token";

fn status(head: [u8; 2]) -> u16 {
    match head[0] {
        0..100 => 200,
        100..140 => 400,
        140..170 => 401,
        170..190 => 503,
        190..200 => 429,
        _ => 100 + u16::from(head[1]) * 2 % 500,
    }
}

/// The refresh token a strict reader finds in `body` when it is one JSON object with
/// exactly one `refresh_token` member that is a usable token other than the sent one.
fn strict_rotation(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text).ok()?;
    // serde_json keeps the last of duplicate keys: only a body naming the key once counts.
    if text.matches("refresh_token").count() != 1 || text.contains('\\') {
        return None;
    }
    let token = map.get("refresh_token")?.as_str()?;
    let usable = !token.is_empty()
        && token.len() <= reauth::MAX_TOKEN_LEN
        && token.bytes().all(|b| (0x21..0x7f).contains(&b));
    (usable && token != SENT).then(|| token.to_owned())
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let status = status([data[0], data[1]]);
    let body = &data[2..];
    let sent = Secret::new(SENT);
    let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let answer = read_token_response(status, None, body, &sent, wall);
    let shown = format!("{answer:?}");
    let kept = match &answer {
        TokenAnswer::Succeeded { credentials, note } => {
            assert_eq!(status, 200);
            assert!(credentials.validate().is_ok(), "{shown}");
            assert!(note.as_ref().is_none_or(|n| !n.to_string().contains(SENT)));
            credentials
                .refresh_token
                .as_ref()
                .map(|r| r.expose().to_owned())
        }
        TokenAnswer::Rejected { error } => {
            assert!(matches!(status, 400 | 401) && !error.is_empty(), "{shown}");
            None
        }
        TokenAnswer::Transient {
            problem,
            rotated_refresh_token,
            ..
        } => {
            assert!(!problem.to_string().contains(SENT));
            if let Some(r) = rotated_refresh_token {
                assert!(r.validate(TokenKind::Refresh).is_ok() && r.expose() != SENT);
                assert_eq!(status, 200);
            }
            rotated_refresh_token
                .as_ref()
                .map(|r| r.expose().to_owned())
        }
    };
    assert!(!shown.contains(SENT), "{shown}");
    let again = read_token_response(status, None, body, &sent, wall);
    assert_eq!(shown, format!("{again:?}"), "deterministic");
    if status == 200
        && let Some(rotated) = strict_rotation(body)
    {
        assert_eq!(
            kept.as_deref(),
            Some(rotated.as_str()),
            "a rotation was dropped: {shown}"
        );
    }
});
