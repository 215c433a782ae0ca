//! Explains a flight recording (or any transcript): each input, each command it produced
//! and the contract rule that produced it, then why the session ended.
//!
//! ```text
//! cargo run -p reauth-testkit --bin explain -- trace.json
//! ```
//!
//! A recording carries the cause of each command as the core noted it; the file is
//! replayed first (from its start state) and the causes checked against the core's, so an
//! explanation never rests on a file that does not replay. A transcript without causes
//! is replayed with the core's recorder on, which supplies them (its tokens then appear
//! as placeholders).
//!
//! Exit status: 0 explained, 1 the file does not replay, 2 unreadable or not a transcript.

use std::process::ExitCode;

use reauth_testkit::transcript::{ExplainError, explain, load};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [path] = args.as_slice() else {
        eprintln!("usage: explain TRACE.json");
        return ExitCode::from(2);
    };
    if path == "-h" || path == "--help" {
        eprintln!("usage: explain TRACE.json");
        return ExitCode::from(2);
    }
    let transcript = match load(path) {
        Ok(t) => t,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    match explain(&transcript) {
        Ok(timeline) => {
            print!("{timeline}");
            ExitCode::SUCCESS
        }
        Err(ExplainError::Start(e)) => {
            eprintln!("{path}: invalid config or start state: {e}");
            ExitCode::from(2)
        }
        Err(ExplainError::DoesNotReplay(mismatches)) => {
            eprintln!(
                "{path}: does not replay ({} of {} steps differ); not explained:",
                mismatches.len(),
                transcript.steps.len()
            );
            for m in mismatches {
                eprint!("{m}");
            }
            ExitCode::from(1)
        }
    }
}
