//! Replays conformance transcripts and reports every step whose commands differ.
//!
//! ```text
//! cargo run -p reauth-testkit --bin replay -- tests/vectors/rule-05-current-401.json [more.json …]
//! ```
//!
//! Exit status: 0 when every step matches, 1 on a mismatch, 2 when a file cannot be read
//! or is not a valid transcript (the JSON error names the line and column).

use std::process::ExitCode;

use reauth_testkit::transcript::{load, replay};

fn main() -> ExitCode {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    if paths.is_empty() || paths.iter().any(|p| p == "-h" || p == "--help") {
        eprintln!("usage: replay TRANSCRIPT.json [TRANSCRIPT.json …]");
        return ExitCode::from(2);
    }
    let mut mismatched = false;
    for path in &paths {
        let transcript = match load(path) {
            Ok(t) => t,
            Err(message) => {
                eprintln!("{message}");
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
