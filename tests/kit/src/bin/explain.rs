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

use reauth::Coordinator;
use reauth::trace::{Step, Trace};
use reauth_testkit::transcript::{Transcript, replay};

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
        Ok(mismatches) if !mismatches.is_empty() => {
            eprintln!(
                "{path}: does not replay ({} of {} steps differ); not explained:",
                mismatches.len(),
                transcript.steps.len()
            );
            for m in mismatches {
                eprint!("{m}");
            }
            return ExitCode::from(1);
        }
        Ok(_) => {}
    }
    let trace = match recorded(&transcript).transpose() {
        Some(trace) => trace,
        None => rerecorded(&transcript),
    };
    let trace = match trace {
        Ok(trace) => trace,
        Err(e) => {
            eprintln!("{path}: {e}");
            return ExitCode::from(2);
        }
    };
    print!("{}", trace.explain(&transcript.config));
    ExitCode::SUCCESS
}

/// The recording the file holds, if it gives a cause for every command (a flight
/// recording; the replay above checked them against the core's), with the results the
/// core returns for its inputs.
fn recorded(transcript: &Transcript) -> Result<Option<Trace>, reauth::trace::StartError> {
    let complete = transcript.steps.iter().any(|s| !s.causes.is_empty())
        && transcript
            .steps
            .iter()
            .all(|s| s.causes.len() == s.expect.len());
    if !complete {
        return Ok(None);
    }
    let mut core = start(transcript)?;
    let mut steps = Vec::with_capacity(transcript.steps.len());
    for s in &transcript.steps {
        let result = core.apply(s.at, s.input.clone());
        core.drain_commands().for_each(drop);
        steps.push(Step {
            at: s.at,
            input: s.input.clone(),
            result,
            commands: s
                .expect
                .iter()
                .zip(&s.causes)
                .map(|(c, cause)| (c.to_command(), *cause))
                .collect(),
        });
    }
    Ok(Some(Trace {
        start: transcript.start.clone(),
        steps,
    }))
}

fn start(transcript: &Transcript) -> Result<Coordinator, reauth::trace::StartError> {
    match &transcript.start {
        Some(start) => Coordinator::resume(transcript.config.clone(), start),
        None => Ok(Coordinator::new(transcript.config.clone())?),
    }
}

/// A transcript without causes, replayed with the recorder on.
fn rerecorded(transcript: &Transcript) -> Result<Trace, reauth::trace::StartError> {
    let mut core = start(transcript)?;
    core.record(transcript.steps.len().max(1));
    for s in &transcript.steps {
        let _ = core.apply(s.at, s.input.clone());
        core.drain_commands().for_each(drop);
    }
    Ok(core.trace())
}
