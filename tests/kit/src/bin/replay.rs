//! Replays conformance transcripts and reports every step whose commands differ.
//!
//! ```text
//! cargo run -p reauth-testkit --bin replay -- tests/vectors/rule-05-current-401.json [more.json …]
//! ```
//!
//! Exit status: 0 when every step matches, 1 on a mismatch, 2 when a file cannot be read
//! or is not a valid transcript (the JSON error names the line and column).

use std::process::ExitCode;

use reauth_testkit::transcript::{Transcript, replay};

fn main() -> ExitCode {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    if paths.is_empty() || paths.iter().any(|p| p == "-h" || p == "--help") {
        eprintln!("usage: replay TRANSCRIPT.json [TRANSCRIPT.json …]");
        return ExitCode::from(2);
    }
    let mut mismatched = false;
    for path in &paths {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) => {
                eprintln!("{path}: cannot read: {e}");
                return ExitCode::from(2);
            }
        };
        let transcript: Transcript = match serde_json::from_str(&text) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("{path}: not a valid transcript: {e}");
                return ExitCode::from(2);
            }
        };
        match replay(&transcript) {
            Err(e) => {
                eprintln!("{path}: invalid config or start state: {e}");
                return ExitCode::from(2);
            }
            Ok(mismatches) if mismatches.is_empty() => {
                println!("ok       {path} ({} steps)", transcript.steps.len());
            }
            Ok(mismatches) => {
                mismatched = true;
                println!(
                    "MISMATCH {path}: {} of {} steps differ",
                    mismatches.len(),
                    transcript.steps.len()
                );
                for m in mismatches {
                    print!("{m}");
                }
            }
        }
    }
    if mismatched {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
