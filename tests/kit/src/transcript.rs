//! Conformance transcripts: a config, then steps of `{at, input, expect}`.
//!
//! The same JSON files in `tests/vectors/` are replayed by the Rust core, the C ABI and
//! every UniFFI language; each must produce identical command batches. The format is
//! documented in `tests/vectors/README.md`.
//!
//! [`CommandRecord`] is the one place where a token is turned into plain text on
//! purpose: transcripts compare the exact token each command carries. Use it for test
//! vectors and bug reports with test tokens only, never for logging production traffic.

use std::fmt;

use reauth::{
    AttemptId, Command, Config, ConfigError, Coordinator, FailReason, Generation, Input,
    LogoutReason, RequestId, Timestamp,
};

/// One transcript file.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transcript {
    /// A short identifier, usually the file name without `.json`.
    pub name: String,
    /// The contract's rules (`"7.5"`) and guarantees (`"G3"`) this transcript shows.
    #[serde(default)]
    pub covers: Vec<String>,
    /// What happens, in a sentence or two.
    pub description: String,
    /// The configuration; omitted fields take their defaults.
    #[serde(default)]
    pub config: Config,
    /// The inputs and the batches they must produce.
    pub steps: Vec<Step>,
}

/// One input and what it must produce.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// The `now` passed with the input.
    pub at: Timestamp,
    /// The input.
    pub input: Input,
    /// The exact batch of commands, in order. Empty when omitted.
    #[serde(default)]
    pub expect: Vec<CommandRecord>,
    /// For a step that must be refused: the [`InputError::kind`](reauth::InputError::kind).
    #[serde(default)]
    pub error: Option<String>,
    /// For `submit`: the id it must return.
    #[serde(default)]
    pub id: Option<RequestId>,
    /// If present, what `poll_timeout()` must return after the step (`null`: nothing).
    #[serde(default, deserialize_with = "present")]
    pub timeout: Option<Option<Timestamp>>,
    /// A comment for readers; ignored.
    #[serde(default)]
    pub note: Option<String>,
}

fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// A command as plain data, tokens included as text (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[allow(missing_docs)] // the fields mirror `Command`'s, documented there
pub enum CommandRecord {
    Send {
        id: RequestId,
        access_token: String,
        generation: Generation,
    },
    Replay {
        id: RequestId,
        access_token: String,
        generation: Generation,
    },
    Refresh {
        attempt: AttemptId,
        refresh_token: String,
    },
    StoreCredentials {
        generation: Generation,
        access_token: String,
        refresh_token: Option<String>,
        #[serde(default)]
        expires_in_ms: Option<u64>,
        #[serde(default)]
        expires_at: Option<Timestamp>,
    },
    Complete {
        id: RequestId,
    },
    Fail {
        id: RequestId,
        reason: FailReason,
    },
    Logout {
        reason: LogoutReason,
    },
}

impl CommandRecord {
    /// The record of `command`, with its tokens as text.
    pub fn exposing_tokens(command: &Command) -> Self {
        match command {
            Command::Send {
                id,
                access_token,
                generation,
            } => CommandRecord::Send {
                id: *id,
                access_token: access_token.expose().to_owned(),
                generation: *generation,
            },
            Command::Replay {
                id,
                access_token,
                generation,
            } => CommandRecord::Replay {
                id: *id,
                access_token: access_token.expose().to_owned(),
                generation: *generation,
            },
            Command::Refresh {
                attempt,
                refresh_token,
            } => CommandRecord::Refresh {
                attempt: *attempt,
                refresh_token: refresh_token.expose().to_owned(),
            },
            Command::StoreCredentials {
                credentials,
                generation,
                expires_at,
            } => CommandRecord::StoreCredentials {
                generation: *generation,
                access_token: credentials.access_token.expose().to_owned(),
                refresh_token: credentials
                    .refresh_token
                    .as_ref()
                    .map(|t| t.expose().to_owned()),
                expires_in_ms: credentials.expires_in_ms,
                expires_at: *expires_at,
            },
            Command::Complete { id } => CommandRecord::Complete { id: *id },
            Command::Fail { id, reason } => CommandRecord::Fail {
                id: *id,
                reason: *reason,
            },
            Command::Logout { reason } => CommandRecord::Logout { reason: *reason },
        }
    }
}

impl fmt::Display for CommandRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandRecord::Send {
                id,
                access_token,
                generation,
            } => {
                write!(
                    f,
                    "send {{ id: {id}, access_token: {access_token:?}, generation: {generation} }}"
                )
            }
            CommandRecord::Replay {
                id,
                access_token,
                generation,
            } => {
                write!(
                    f,
                    "replay {{ id: {id}, access_token: {access_token:?}, generation: {generation} }}"
                )
            }
            CommandRecord::Refresh {
                attempt,
                refresh_token,
            } => {
                write!(
                    f,
                    "refresh {{ attempt: {attempt}, refresh_token: {refresh_token:?} }}"
                )
            }
            CommandRecord::StoreCredentials {
                generation,
                access_token,
                refresh_token,
                expires_in_ms,
                expires_at,
            } => write!(
                f,
                "store_credentials {{ generation: {generation}, access_token: {access_token:?}, refresh_token: {refresh_token:?}, expires_in_ms: {expires_in_ms:?}, expires_at: {expires_at:?} }}"
            ),
            CommandRecord::Complete { id } => write!(f, "complete {{ id: {id} }}"),
            CommandRecord::Fail { id, reason } => {
                write!(f, "fail {{ id: {id}, reason: {reason} }}")
            }
            CommandRecord::Logout { reason } => write!(f, "logout {{ reason: {reason} }}"),
        }
    }
}

/// What one step did, or was expected to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The batch of commands.
    pub commands: Vec<CommandRecord>,
    /// The error kind, if the input was refused.
    pub error: Option<String>,
    /// For `submit`, the id (only compared when the transcript gives one).
    pub id: Option<RequestId>,
    /// `poll_timeout()` after the step (only compared when the transcript gives one).
    pub timeout: Option<Option<Timestamp>>,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(error) = &self.error {
            writeln!(f, "      error: {error}")?;
        }
        if let Some(id) = self.id {
            writeln!(f, "      id: {id}")?;
        }
        if let Some(timeout) = self.timeout {
            match timeout {
                Some(t) => writeln!(f, "      timeout: {t}")?,
                None => writeln!(f, "      timeout: none")?,
            }
        }
        if self.commands.is_empty() {
            writeln!(f, "      (no commands)")?;
        }
        for c in &self.commands {
            writeln!(f, "      {c}")?;
        }
        Ok(())
    }
}

/// A step whose outcome differs from the transcript.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// 1-based step number.
    pub step: usize,
    /// The step's `at`.
    pub at: Timestamp,
    /// The input's name.
    pub input: &'static str,
    /// What the transcript says.
    pub expected: Outcome,
    /// What the core did.
    pub actual: Outcome,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "  step {} (at {}, {}):", self.step, self.at, self.input)?;
        writeln!(f, "    expected:")?;
        write!(f, "{}", self.expected)?;
        writeln!(f, "    actual:")?;
        write!(f, "{}", self.actual)
    }
}

/// Replays `transcript` on a fresh coordinator; returns every step that differs.
/// Later steps still run after a mismatch (with the core's real state), so one report
/// shows everything.
pub fn replay(transcript: &Transcript) -> Result<Vec<Mismatch>, ConfigError> {
    let mut core = Coordinator::new(transcript.config.clone())?;
    let mut mismatches = Vec::new();
    for (index, step) in transcript.steps.iter().enumerate() {
        let result = core.apply(step.at, step.input.clone());
        let commands: Vec<CommandRecord> = core
            .drain_commands()
            .map(|c| CommandRecord::exposing_tokens(&c))
            .collect();
        let (id, error) = match result {
            Ok(id) => (id, None),
            Err(e) => (None, Some(e.kind().to_owned())),
        };
        let actual = Outcome {
            commands,
            error,
            id: step.id.and(id),
            timeout: step.timeout.map(|_| core.poll_timeout()),
        };
        let expected = Outcome {
            commands: step.expect.clone(),
            error: step.error.clone(),
            id: step.id,
            timeout: step.timeout,
        };
        if actual != expected {
            mismatches.push(Mismatch {
                step: index + 1,
                at: step.at,
                input: step.input.name(),
                expected,
                actual,
            });
        }
    }
    Ok(mismatches)
}
