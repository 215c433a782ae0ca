//! The ABI from Rust: what JavaScript relies on, checked without a JavaScript engine.

use super::*;

fn put(parts: &[&str]) -> Vec<i32> {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    let ptr = reauth_in(u32::try_from(total).expect("small"));
    let mut at = 0;
    for p in parts {
        // SAFETY: reauth_in gave room for every part, back to back.
        unsafe { std::ptr::copy_nonoverlapping(p.as_ptr(), ptr.add(at), p.len()) };
        at += p.len();
    }
    parts
        .iter()
        .map(|p| i32::try_from(p.len()).expect("small"))
        .collect()
}

fn out() -> Vec<u8> {
    // SAFETY: the out buffer holds reauth_out_len() bytes until the next call.
    unsafe { std::slice::from_raw_parts(reauth_out_ptr(), reauth_out_len() as usize) }.to_vec()
}

fn error() -> String {
    String::from_utf8(out()).expect("utf-8")
}

#[test]
fn a_bad_config_is_an_error_with_the_cores_message() {
    let len = put(&[r#"{"max_retries": 1000000}"#]);
    assert_eq!(core_new(len[0]), -1.0);
    assert!(
        error().starts_with("config\nmax_retries must be in"),
        "{}",
        error()
    );
    let len = put(&[r#"{"nonsense": 1}"#]);
    assert_eq!(core_new(len[0]), -1.0);
    assert!(error().starts_with("config\nunknown field"), "{}", error());
}

#[test]
fn a_login_and_a_request_encode_their_commands() {
    let len = put(&["{}"]);
    let h = core_new(len[0]) as u32;
    let len = put(&["at-1", "rt-1"]);
    assert_eq!(core_login(h, 0.0, len[0], len[1], 60_000.0), 0.0);
    assert_eq!(out(), 0u32.to_le_bytes());
    let id = core_submit(h, 1.0, 1, 1, 0);
    assert_eq!(id, 1.0);
    let bytes = out();
    assert_eq!(bytes[..5], [1, 0, 0, 0, kind::SEND]);
    assert_eq!(f64::from_le_bytes(bytes[5..13].try_into().expect("8")), 1.0);
    assert_eq!(&bytes[bytes.len() - 4..], b"at-1");
    // An unknown request: the transcripts' kind, nothing changed.
    assert_eq!(core_response(h, 2.0, 9.0, 200), -1.0);
    assert_eq!(error(), "unknown_request\nunknown request 9");
    core_free(h);
    assert_eq!(
        core_poll_timeout(h),
        -1.0,
        "an unknown handle is an error, not NONE"
    );
    assert!(error().starts_with("invalid_argument\nunknown handle"));
}

#[test]
fn tokens_with_line_breaks_are_refused_and_change_nothing() {
    let len = put(&["{}"]);
    let h = core_new(len[0]) as u32;
    let len = put(&["at\r\n1", "rt"]);
    assert_eq!(core_login(h, 0.0, len[0], len[1], -1.0), -1.0);
    assert!(error().starts_with("invalid_credentials\n"), "{}", error());
    assert_eq!(core_state(h), 0.0);
    assert!(error().contains("\"logged_in\":false"));
}

#[test]
fn a_driver_steady_state_is_one_number() {
    let len = put(&["{}"]);
    let h = driver_new(len[0]) as u32;
    let len = put(&["at-1", "rt-1"]);
    let packed = driver_login(h, 0.0, len[0], len[1], 60_000.0, 0.0);
    assert!(packed >= 0.0);
    let packed = driver_submit(h, 1.0, 1, 1, 0, 0.0);
    // Own send, more (the token, unknown to JavaScript yet), id 1.
    assert_eq!(packed as i64 & 7, i64::from(wire::OWN_SEND));
    assert_eq!(packed as i64 >> 9, 1);
    let packed = driver_submit(h, 1.0, 1, 1, 0, 1.0);
    assert_eq!(packed as i64 & 0x7f, i64::from(wire::OWN_SEND));
    assert_eq!(
        packed as i64 & (1 << 7),
        0,
        "no bytes when the token is known"
    );
    assert!(driver_response(h, 2.0, 2.0, 200, 0, 1.0) >= 0.0);
    assert_eq!(driver_response(h, 2.0, 2.0, 200, 0, 1.0), -1.0);
    assert!(error().starts_with("not_in_flight\n") || error().starts_with("unknown_request\n"));
    assert_eq!(
        driver_tick(h, 3, 3.0, 1.0).max(0.0),
        driver_tick(h, 3, 3.0, 1.0).max(0.0)
    );
    assert_eq!(driver_submit(h, 4.0, 1, 1, 0, 1.0), -1.0);
    assert!(error().starts_with("closed\n"));
    driver_free(h);
}

#[test]
fn the_store_recipe_and_the_token_answer_cross() {
    // A sibling rotated: adopt its credentials.
    let len = put(&["rt-1", "at-2", "rt-2"]);
    assert_eq!(
        store_recipe(0, len[0], len[1], len[2], 2_000_000.0, 1_000_000.0),
        0.0
    );
    let bytes = out();
    assert_eq!(bytes[0], 1, "adopt");
    // A rejection: the error code.
    let len = put(&[r#"{"error":"invalid_grant"}"#, "rt-1"]);
    assert_eq!(read_token_response(400, -1, len[0], len[1], 0.0), 0.0);
    let bytes = out();
    assert_eq!(bytes[0], 1);
    assert_eq!(&bytes[5..], b"invalid_grant");
}

#[test]
fn bad_utf8_and_overruns_are_argument_errors() {
    let ptr = reauth_in(2);
    // SAFETY: two bytes of room.
    unsafe { std::ptr::copy_nonoverlapping([0xff_u8, 0xfe].as_ptr(), ptr, 2) };
    assert_eq!(route_key(2), -1.0);
    assert_eq!(
        error(),
        "invalid_argument\nthe route name is not valid UTF-8"
    );
    assert_eq!(route_key(3), -1.0);
    assert_eq!(
        error(),
        "invalid_argument\nthe arguments overrun the in buffer"
    );
}

#[test]
fn no_deadline_is_none_not_an_error() {
    let len = put(&["{}"]);
    let h = core_new(len[0]) as u32;
    assert_eq!(core_poll_timeout(h), NONE);
    let len = put(&["{}"]);
    let d = driver_new(len[0]) as u32;
    assert_eq!(driver_deadline(d), NONE);
    let len = put(&["soon"]);
    assert_eq!(retry_after_ms(len[0], 0.0), NONE);
    driver_free(d);
    core_free(h);
}
