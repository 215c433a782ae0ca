//! Writes one fuzzer seed per conformance transcript, so fuzzing starts from every rule's
//! scenario:
//!
//! ```text
//! cargo run -p reauth-testkit --example fuzz_seeds -- tests/vectors fuzz/seeds
//! ```
//!
//! Each transcript step becomes the host action that reproduces it against the harness
//! (clock moves become `Tick`/`Backwards`, ids and attempts become the picks that select
//! them), encoded in the fuzzer's byte format (`reauth_testkit::bytes`).

use std::path::Path;
use std::process::ExitCode;

use reauth::{Input, RefreshFailure};
use reauth_testkit::bytes;
use reauth_testkit::harness::{Harness, HostAction, pick_of};
use reauth_testkit::transcript::Transcript;

fn translate(t: &Transcript) -> Vec<HostAction> {
    let mut h = Harness::new(t.config.clone()).expect("transcript configs are valid");
    let mut actions = Vec::new();
    for step in &t.steps {
        // The format holds 16-bit times: long waits become several ticks.
        while step.at > h.clock {
            let tick = HostAction::Tick {
                ms: (step.at - h.clock).min(65_535),
            };
            h.run(tick.clone()).expect("a tick breaks nothing");
            actions.push(tick);
        }
        let attempt_pick = |h: &Harness, attempt: u64| {
            if h.oracle.active_attempt().map(|a| a.0) == Some(attempt) {
                0
            } else {
                attempt as usize * 8 + 5
            }
        };
        let action = match &step.input {
            Input::Login { credentials } => HostAction::Login {
                refresh: credentials.refresh_token.is_some(),
                expires: credentials.expires_in_ms.map(|e| e.min(65_535)),
            },
            Input::Submit { options } => HostAction::Submit {
                replayable: options.replayable,
                refresh: options.refresh,
                route: options.route.map_or(0, |r| (r.get() % 4) as u8),
            },
            Input::Response { id, status } => {
                match h.oracle.in_flight_ids().iter().position(|i| i == id) {
                    Some(pick) if [200, 401, 403, 500].contains(status) => HostAction::Respond {
                        pick,
                        status: *status,
                    },
                    _ => HostAction::RespondBogus {
                        id: id.0,
                        status: *status,
                    },
                }
            }
            Input::RefreshSucceeded {
                attempt,
                credentials,
            } => HostAction::RefreshOk {
                pick: attempt_pick(&h, attempt.0),
                rotate: credentials.refresh_token.is_some(),
                expires: credentials.expires_in_ms.map(|e| e.min(65_535)),
                valid: !credentials.access_token.is_empty(),
            },
            Input::RefreshFailed {
                attempt,
                failure: RefreshFailure::Rejected,
            } => HostAction::RefreshRejected {
                pick: attempt_pick(&h, attempt.0),
            },
            Input::RefreshFailed {
                attempt,
                failure: RefreshFailure::Transient { retry_after_ms },
            } => HostAction::RefreshTransient {
                pick: attempt_pick(&h, attempt.0),
                retry_after: retry_after_ms.map(|r| r.min(u64::from(u32::MAX))),
            },
            Input::Timeout if step.at < h.clock => HostAction::Backwards {
                ms: h.clock - step.at,
            },
            Input::Timeout => HostAction::Timeout,
            Input::Cancel { id } => HostAction::Cancel {
                pick: pick_of(&h.oracle.open(), *id),
            },
            Input::TransportError { id } => HostAction::TransportError {
                pick: pick_of(&h.oracle.in_flight_ids(), *id),
            },
            Input::ForceRefresh => HostAction::ForceRefresh,
            Input::Logout => HostAction::Logout,
            Input::BeginRestore => HostAction::BeginRestore,
            Input::RestoreFailed => HostAction::RestoreFailed,
        };
        if let Err(e) = h.run(action.clone()) {
            panic!("{}: {e}", t.name);
        }
        actions.push(action);
    }
    actions
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [from, to] = args.as_slice() else {
        eprintln!("usage: fuzz_seeds TRANSCRIPT_DIR SEED_DIR");
        return ExitCode::from(2);
    };
    std::fs::create_dir_all(to).expect("seed directory");
    let mut paths: Vec<_> = std::fs::read_dir(from)
        .expect("transcript directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    for path in paths {
        let text = std::fs::read_to_string(&path).expect("readable");
        let t: Transcript = serde_json::from_str(&text).expect("valid transcript");
        let actions = translate(&t);
        let data = bytes::encode(&t.config, &actions);
        let (_, decoded) = bytes::decode(&data, usize::MAX);
        assert_eq!(decoded, actions, "{}: the byte format round-trips", t.name);
        std::fs::write(Path::new(to).join(&t.name), &data).expect("writable");
        println!(
            "{:<55} {:>3} actions, {:>4} bytes",
            t.name,
            actions.len(),
            data.len()
        );
    }
    ExitCode::SUCCESS
}
