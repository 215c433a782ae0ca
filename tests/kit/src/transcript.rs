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
