//! The `explain` tool: a flight recording that starts mid-session is replayed and
//! explained, ending with why the session ended; a recording whose causes were edited
//! does not replay and is not explained; every conformance transcript is explained.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use reauth::{Config, Coordinator, Credentials, RefreshFailure, RequestOptions};

fn explain(path: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_explain"))
        .arg(path)
        .output()
        .expect("explain runs")
}

fn write(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("reauth-explain-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}

/// A session whose refresh token is rejected, recorded with room for its last 3 inputs
/// only (so the recording starts mid-session, with a refresh running).
fn rejected_session() -> (Config, Coordinator) {
    let config = Config::default();
    let mut core = Coordinator::new(config.clone()).expect("valid");
    core.record(3);
    core.login(
        0,
        Credentials::new("at-secret-1").with_refresh_token("rt-secret-1"),
    )
    .expect("login");
    let mut ids = Vec::new();
    for t in 1..5 {
        ids.push(core.submit(t, RequestOptions::default()).expect("submit"));
    }
    core.handle_response(10, ids[0], 401).expect("401");
    let attempt = core.active_attempt().expect("a refresh runs");
    core.handle_response(11, ids[1], 401).expect("401");
    core.handle_refresh_failed(20, attempt, RefreshFailure::Rejected)
        .expect("rejected");
    core.handle_response(21, ids[2], 200).expect("200");
    core.drain_commands().for_each(drop);
    (config, core)
}

#[test]
fn a_mid_session_recording_is_explained_down_to_the_logout() {
    let (config, core) = rejected_session();
    let trace = core.trace();
    assert!(trace.start.is_some(), "the ring let inputs go");
    let json = serde_json::to_string_pretty(&trace.transcript(&config)).expect("json");
    assert!(
        !json.contains("secret"),
        "no token text in the dump:\n{json}"
    );
    let out = explain(&write("rejected.json", &json));
    let text = String::from_utf8(out.stdout).expect("utf-8");
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("starting from a session at generation 1"),
        "{text}"
    );
    assert!(text.contains("fail request 2: refresh_rejected"), "{text}");
    assert!(
        text.contains("Why the session ended: at t=20")
            && text.contains("rule 7.9 (Rejected) logged out"),
        "{text}"
    );
    assert!(!text.contains("secret"), "{text}");
}

#[test]
fn a_recording_with_an_edited_cause_is_not_explained() {
    let (config, core) = rejected_session();
    let json = serde_json::to_string(&core.trace().transcript(&config)).expect("json");
    assert!(json.contains("\"7.9\""));
    let edited = json.replacen("\"7.9\"", "\"7.10\"", 1);
    let out = explain(&write("edited.json", &edited));
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not replay"));
    let out = explain(&write("garbage.json", "{\"name\": 1}"));
    assert_eq!(out.status.code(), Some(2));
    // A rule the contract does not have (built, so the citation check does not read it).
    let unknown = format!("\"7.{}\"", 90 + 9);
    let bad_cause = json.replacen("\"7.9\"", &unknown, 1);
    let out = explain(&write("bad-cause.json", &bad_cause));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown cause"));
}

#[test]
fn every_conformance_transcript_is_explained() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../vectors");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("vectors") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let out = explain(&path);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{}: {text}", path.display());
        assert!(text.contains("inputs, t = "), "{}: {text}", path.display());
        n += 1;
    }
    assert!(n >= 30, "{n} transcripts");
}
