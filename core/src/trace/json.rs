//! A recording as a transcript (`tests/vectors/README.md`): the format every replayer
//! reads, extended with where the recording starts (`start`) and the cause of each
//! command (`causes`). Tokens in it are the recording's placeholders.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Cause, Start, Step, Trace};
use crate::command::{
    AttemptId, Command, FailReason, Generation, LogoutReason, RefreshFailure, RequestId,
    RequestOptions, Timestamp,
};
use crate::config::Config;
use crate::credentials::{Credentials, Secret};
use crate::input::Input;

impl Trace {
    /// The recording as a transcript, ready for any serde format (JSON:
    /// `serde_json::to_string(&trace.transcript(core.config()))`).
    pub fn transcript<'a>(&'a self, config: &'a Config) -> TraceTranscript<'a> {
        TraceTranscript {
            name: "trace",
            description: format!(
                "A flight recording of the last {} inputs, tokens replaced by placeholders.",
                self.steps.len()
            ),
            config,
            start: self.start.as_ref(),
            steps: self.steps.iter().map(StepRecord::of).collect(),
        }
    }
}

/// A recording in the transcript format (see [`Trace::transcript`]).
#[derive(Serialize)]
pub struct TraceTranscript<'a> {
    name: &'static str,
    description: String,
    config: &'a Config,
    #[serde(skip_serializing_if = "Option::is_none")]
    start: Option<&'a Start>,
    steps: Vec<StepRecord<'a>>,
}

#[derive(Serialize)]
struct StepRecord<'a> {
    at: Timestamp,
    input: InputRecord<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<RequestId>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    expect: Vec<CommandRecord>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    causes: Vec<Cause>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'static str>,
}

impl<'a> StepRecord<'a> {
    fn of(step: &'a Step) -> Self {
        let (id, error) = match &step.result {
            Ok(id) => (*id, None),
            Err(e) => (None, Some(e.kind())),
        };
        StepRecord {
            at: step.at,
            input: InputRecord::of(&step.input),
            id,
            expect: step
                .commands
                .iter()
                .map(|(c, _)| CommandRecord::exposing_tokens(c))
                .collect(),
            causes: step.commands.iter().map(|(_, cause)| *cause).collect(),
            error,
        }
    }
}

/// An input as the transcript writes it, tokens (placeholders) as text.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum InputRecord<'a> {
    Login {
        credentials: CredentialsRecord<'a>,
    },
    Submit {
        options: RequestOptions,
    },
    Response {
        id: RequestId,
        status: u16,
    },
    RefreshSucceeded {
        attempt: AttemptId,
        credentials: CredentialsRecord<'a>,
    },
    RefreshFailed {
        attempt: AttemptId,
        failure: RefreshFailure,
    },
    TransportError {
        id: RequestId,
    },
    Timeout,
    Cancel {
        id: RequestId,
    },
    ForceRefresh,
    Logout,
    BeginRestore,
    RestoreFailed,
}

#[derive(Serialize)]
struct CredentialsRecord<'a> {
    access_token: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_in_ms: Option<u64>,
}

impl<'a> CredentialsRecord<'a> {
    fn of(c: &'a Credentials) -> Self {
        CredentialsRecord {
            access_token: c.access_token.expose(),
            refresh_token: c.refresh_token.as_ref().map(Secret::expose),
            expires_in_ms: c.expires_in_ms,
        }
    }
}

impl<'a> InputRecord<'a> {
    fn of(input: &'a Input) -> Self {
        match input {
            Input::Login { credentials } => InputRecord::Login {
                credentials: CredentialsRecord::of(credentials),
            },
            Input::Submit { options } => InputRecord::Submit { options: *options },
            Input::Response { id, status } => InputRecord::Response {
                id: *id,
                status: *status,
            },
            Input::RefreshSucceeded {
                attempt,
                credentials,
            } => InputRecord::RefreshSucceeded {
                attempt: *attempt,
                credentials: CredentialsRecord::of(credentials),
            },
            Input::RefreshFailed { attempt, failure } => InputRecord::RefreshFailed {
                attempt: *attempt,
                failure: *failure,
            },
            Input::TransportError { id } => InputRecord::TransportError { id: *id },
            Input::Timeout => InputRecord::Timeout,
            Input::Cancel { id } => InputRecord::Cancel { id: *id },
            Input::ForceRefresh => InputRecord::ForceRefresh,
            Input::Logout => InputRecord::Logout,
            Input::BeginRestore => InputRecord::BeginRestore,
            Input::RestoreFailed => InputRecord::RestoreFailed,
        }
    }
}

/// A cause in a transcript: `"7.15"` for rule 15, `"answered"`, `"logged_in"`.
impl Serialize for Cause {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.code())
    }
}

impl<'de> Deserialize<'de> for Cause {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        match text.as_str() {
            "answered" => Ok(Cause::Answered),
            "logged_in" => Ok(Cause::LoggedIn),
            rule => rule
                .strip_prefix("7.")
                // Digits only, as written: no sign, no leading zero.
                .filter(|n| n.bytes().all(|b| b.is_ascii_digit()) && !n.starts_with('0'))
                .and_then(|n| n.parse::<u8>().ok())
                .filter(|n| crate::rules::rule(*n).is_some())
                .map(Cause::Rule)
                .ok_or_else(|| {
                    serde::de::Error::custom(format!(
                        "unknown cause {rule:?} (\"7.1\" to \"7.20\", \"answered\", \"logged_in\")"
                    ))
                }),
        }
    }
}

/// A placeholder token as text (the start state's tokens).
pub(crate) mod token_text {
    use serde::Serializer;

    use crate::credentials::Secret;

    pub(crate) fn serialize<S: Serializer>(token: &Secret, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(token.expose())
    }

    pub(crate) mod option {
        use serde::Serializer;

        use crate::credentials::Secret;

        pub(crate) fn serialize<S: Serializer>(
            token: &Option<Secret>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match token {
                Some(token) => s.serialize_some(token.expose()),
                None => s.serialize_none(),
            }
        }
    }
}

/// A command as plain data, tokens included as text: in a trace they are placeholders;
/// for test vectors, test tokens. Never build one from production commands to log them.
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

impl CommandRecord {
    /// The command this record describes, its tokens built from their text.
    pub fn to_command(&self) -> Command {
        match self {
            CommandRecord::Send {
                id,
                access_token,
                generation,
            } => Command::Send {
                id: *id,
                access_token: Secret::new(access_token.as_str()),
                generation: *generation,
            },
            CommandRecord::Replay {
                id,
                access_token,
                generation,
            } => Command::Replay {
                id: *id,
                access_token: Secret::new(access_token.as_str()),
                generation: *generation,
            },
            CommandRecord::Refresh {
                attempt,
                refresh_token,
            } => Command::Refresh {
                attempt: *attempt,
                refresh_token: Secret::new(refresh_token.as_str()),
            },
            CommandRecord::StoreCredentials {
                generation,
                access_token,
                refresh_token,
                expires_in_ms,
                expires_at,
            } => Command::StoreCredentials {
                credentials: Credentials {
                    access_token: Secret::new(access_token.as_str()),
                    refresh_token: refresh_token.as_deref().map(Secret::new),
                    expires_in_ms: *expires_in_ms,
                },
                generation: *generation,
                expires_at: *expires_at,
            },
            CommandRecord::Complete { id } => Command::Complete { id: *id },
            CommandRecord::Fail { id, reason } => Command::Fail {
                id: *id,
                reason: *reason,
            },
            CommandRecord::Logout { reason } => Command::Logout { reason: *reason },
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
