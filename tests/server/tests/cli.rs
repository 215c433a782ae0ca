//! The server binary prints its address on the first line, serves, and exits when its
//! standard input closes — the contract tests in other languages rely on.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn prints_its_address_serves_and_exits_when_stdin_closes() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_reauth-testserver"))
        .args(["--access-ttl-ms", "1000"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the server");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("first line");
    let url = first
        .trim()
        .strip_prefix("listening on ")
        .expect("the first line names the address")
        .to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let http = reqwest::Client::new();
        let token: serde_json::Value = http
            .post(format!("{url}/oauth/token"))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .expect("token endpoint")
            .json()
            .await
            .expect("json");
        assert_eq!(token["token_type"], "Bearer");
        assert_eq!(
            token["expires_in"], 1,
            "an integer number of seconds (RFC 6749 A.14)"
        );
        assert!(token["expires_in"].is_u64());
        let bad = http
            .get(format!("{url}/api/me"))
            .bearer_auth("nope")
            .send()
            .await
            .expect("api");
        assert_eq!(bad.status(), 401);
        assert!(
            bad.headers()["www-authenticate"]
                .to_str()
                .expect("ascii")
                .contains("invalid_token")
        );
        let refused = http
            .post(format!("{url}/oauth/token"))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", "never-issued"),
            ])
            .send()
            .await
            .expect("token endpoint");
        assert_eq!(refused.status(), 400);
        let body: serde_json::Value = refused.json().await.expect("json");
        assert_eq!(body["error"], "invalid_grant");
    });

    drop(child.stdin.take()); // close stdin: the server must exit
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not exit after stdin closed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn refuses_a_fault_rate_that_is_not_a_share_or_an_absurd_duration_and_names_the_flag() {
    for (flag, value) in [
        ("--token-5xx-rate", "NaN"),
        ("--token-429-rate", "inf"),
        ("--dropped-connection-rate", "-0.1"),
        ("--lost-response-rate", "1.5"),
        // Durations: an instant that far ahead overflowed the clock on the first login.
        ("--access-ttl-ms", "18446744073709551615"),
        ("--access-ttl-ms", "0"),
        ("--refresh-latency-ms", "18446744073709551615"),
        ("--reuse-grace-ms", "18446744073709551615"),
    ] {
        // stdin is closed at once: a server that started would exit 0 right away.
        let out = Command::new(env!("CARGO_BIN_EXE_reauth-testserver"))
            .arg(format!("{flag}={value}"))
            .stdin(Stdio::null())
            .output()
            .expect("run the server");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{flag}={value}: {stderr}");
        assert!(out.stdout.is_empty(), "{flag}={value}: never listened");
        assert!(stderr.contains(flag), "{flag}={value}: {stderr}");
    }
}
