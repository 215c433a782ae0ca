//! Conformance transcripts: the format, the replay and the explanation live in the core
//! (`reauth::trace::transcript`, features `serde` and `trace`) so that every binding uses
//! them; the test kit names them here.
//!
//! [`CommandRecord`] is the one place where a token is turned into plain text on
//! purpose: transcripts compare the exact token each command carries. Use it for test
//! vectors and bug reports with test tokens only, never for logging production traffic.

pub use reauth::trace::CommandRecord;
pub use reauth::trace::transcript::{
    ExplainError, Mismatch, Outcome, Step, Transcript, explain, replay,
};

/// Reads the transcript at `path`: the message of a file that cannot be read or is not a
/// transcript (the JSON error names the line and column), for the tools' exit status 2.
pub fn load(path: &str) -> Result<Transcript, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: cannot read: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("{path}: not a valid transcript: {e}"))
}
