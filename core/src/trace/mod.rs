//! The flight recorder: the last inputs of a coordinator with the commands each produced
//! and the rule that produced each command, kept without any token text, so that an
//! incident ("why was I logged out?") can be replayed exactly and explained afterwards.
//!
//! Switch it on with [`Coordinator::record`]; read it with [`Coordinator::trace`]. Each
//! distinct token becomes a placeholder (`redacted-1`, `redacted-2`, …: valid tokens, so the recording replays): the same token
//! always the same placeholder, so the replay is faithful (the core compares refresh
//! tokens, rule 11's rotation bookkeeping). A recording that no longer reaches back to
//! the coordinator's creation carries the state it starts from ([`Start`]), with the
//! same placeholders.
//!
//! Memory is bounded by the capacity: a ring of inputs, a ring of their commands, and a
//! second coordinator that lags behind the ring (it takes each input the ring lets go
//! of, so it always holds the state the recording starts from). Once both rings are
//! full, recording allocates only for a new token's placeholder.

use std::collections::VecDeque;

mod explain;
#[cfg(feature = "serde")]
mod json;
#[cfg(feature = "serde")]
pub(crate) use json::token_text;
#[cfg(feature = "serde")]
pub use json::{CommandRecord, TraceTranscript};

use crate::command::{Command, RequestId, Timestamp};
use crate::coordinator::Coordinator;
pub use crate::coordinator::{
    KnownBad, OpenRequest, OpenState, Start, StartCycle, StartPhase, StartRun, StartSession,
};
use crate::credentials::{Credentials, CredentialsError, MAX_TOKEN_LEN, Secret, TokenKind};
use crate::error::InputError;
use crate::input::Input;
use crate::rules::{Rule, rule};

/// Why the core emitted a command: the rule of `docs/contract.md` §7 that carried it out,
/// or one of the two things the contract says outside its rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cause {
    /// A rule of §7, by number (see [`crate::rules::RULES`]).
    Rule(u8),
    /// §6 `Complete`: a response whose status is not a refresh status goes back to its
    /// caller as it is.
    Answered,
    /// §6 `login`: requests that waited for a refresh go out with the credentials
    /// logged in.
    LoggedIn,
}

impl Cause {
    /// The rule, for [`Cause::Rule`].
    pub fn rule(self) -> Option<&'static Rule> {
        match self {
            Cause::Rule(n) => rule(n),
            Cause::Answered | Cause::LoggedIn => None,
        }
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cause::Rule(n) => match rule(*n) {
                Some(r) => write!(f, "rule 7.{n} ({})", r.name),
                None => write!(f, "rule 7.{n}"),
            },
            Cause::Answered => f.write_str("§6 (a status that is not a refresh status)"),
            Cause::LoggedIn => f.write_str("§6 (login releases the waiting requests)"),
        }
    }
}

/// What [`Coordinator::resume`] refuses: nothing is built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    /// The config is outside its ranges.
    #[error(transparent)]
    Config(#[from] crate::error::ConfigError),
    /// A token of the session is not a valid token.
    #[error(transparent)]
    Credentials(#[from] crate::credentials::CredentialsError),
    /// The state is one the machine cannot be in.
    #[error("inconsistent start state: {0}")]
    Inconsistent(String),
}

/// One recorded input: when, what (tokens replaced by placeholders), what it returned, and
/// the commands it produced, each with its cause.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// The `now` passed with the input.
    pub at: Timestamp,
    /// The input, its tokens replaced by placeholders.
    pub input: Input,
    /// What the input returned: the new id for a `submit`, or the error.
    pub result: Result<Option<RequestId>, InputError>,
    /// The batch, tokens replaced by placeholders, each command with the rule that
    /// emitted it.
    pub commands: Vec<(Command, Cause)>,
}

/// What [`Coordinator::trace`] returns: the recorded steps, oldest first, and the state
/// the first of them met.
#[derive(Clone, Debug)]
pub struct Trace {
    /// The state before the first step; `None` when the recording reaches back to the
    /// coordinator's creation (a new coordinator with the same config).
    pub start: Option<Start>,
    /// The recorded inputs, oldest first.
    pub steps: Vec<Step>,
}

/// One input in the ring; its commands are the next `commands` entries of the command
/// ring.
#[derive(Clone, Debug)]
struct Entry {
    at: Timestamp,
    input: Input,
    result: Result<Option<RequestId>, InputError>,
    commands: usize,
}

/// The recorder inside a coordinator.
#[derive(Clone, Debug)]
pub(crate) struct Recorder {
    /// An input is being recorded (its own method calls are not recorded again).
    pub(crate) busy: bool,
    capacity: usize,
    entries: VecDeque<Entry>,
    commands: VecDeque<(Command, Cause)>,
    /// Commands of the input being recorded.
    pending: usize,
    /// Where the recording starts: a coordinator that took every input the ring let go
    /// of (placeholders for tokens), or none while nothing was let go of.
    lag: Box<Coordinator>,
    lagging: bool,
    /// The placeholders of the session's current access and refresh tokens.
    access: Option<Secret>,
    refresh: Option<Secret>,
    /// Those of the credentials of the input being recorded, if it brings any; they
    /// become the session's when the core installs the credentials.
    incoming: Option<(Secret, Option<Secret>)>,
    /// Placeholders given so far.
    given: u64,
    /// The placeholder of a token that is too long (made once).
    too_long: Option<Secret>,
}

impl Recorder {
    /// A recorder for the last `capacity` inputs; [`Recorder::starting_from`] says where
    /// it starts.
    pub(crate) fn new(capacity: usize, blank: Coordinator) -> Self {
        Recorder {
            busy: false,
            capacity,
            entries: VecDeque::with_capacity(capacity),
            commands: VecDeque::with_capacity(capacity.saturating_mul(2)),
            pending: 0,
            lag: Box::new(blank),
            lagging: false,
            access: None,
            refresh: None,
            incoming: None,
            given: 0,
            too_long: None,
        }
    }

    fn placeholder(&mut self) -> Secret {
        self.given += 1;
        Secret::new(format!("redacted-{}", self.given))
    }

    /// The placeholder for `token`, which arrives while the session holds `access` and
    /// `refresh` (the same token keeps its placeholder). A token the core refuses gets
    /// one it refuses for the same reason, so the recorded error replays.
    fn name(
        &mut self,
        token: &Secret,
        kind: TokenKind,
        held: (Option<&Secret>, Option<&Secret>),
    ) -> Secret {
        match token.validate(kind) {
            Ok(()) => {}
            Err(CredentialsError::EmptyToken(_)) => return Secret::new(""),
            Err(CredentialsError::InvalidTokenCharacter(_)) => {
                return Secret::new("redacted invalid");
            }
            Err(CredentialsError::TokenTooLong(_)) => {
                return self
                    .too_long
                    .get_or_insert_with(|| Secret::new("x".repeat(MAX_TOKEN_LEN + 1)))
                    .clone();
            }
        }
        match held {
            (Some(a), _) if a == token => self.access.clone(),
            (_, Some(r)) if r == token => self.refresh.clone(),
            _ => None,
        }
        .unwrap_or_else(|| self.placeholder())
    }

    /// The input with its tokens replaced; `held` are the session's tokens. Its
    /// credentials' placeholders wait for [`Recorder::installed`].
    pub(crate) fn redact(
        &mut self,
        input: &Input,
        held: (Option<&Secret>, Option<&Secret>),
    ) -> Input {
        let mut redact = |credentials: &Credentials| {
            let access = self.name(&credentials.access_token, TokenKind::Access, held);
            let refresh = credentials
                .refresh_token
                .as_ref()
                .map(|r| self.name(r, TokenKind::Refresh, held));
            self.incoming = Some((access.clone(), refresh.clone()));
            Credentials {
                access_token: access,
                refresh_token: refresh,
                expires_in_ms: credentials.expires_in_ms,
            }
        };
        match input {
            Input::Login { credentials } => Input::Login {
                credentials: redact(credentials),
            },
            Input::RefreshSucceeded {
                attempt,
                credentials,
            } => Input::RefreshSucceeded {
                attempt: *attempt,
                credentials: redact(credentials),
            },
            other => other.clone(),
        }
    }

    /// The core installs the credentials of the input being recorded: their placeholders
    /// are the session's now (a success without a refresh token keeps the previous one,
    /// §4.4, so `kept` says whether the refresh token stayed).
    pub(crate) fn installed(&mut self, kept: bool) {
        if let Some((access, refresh)) = self.incoming.take() {
            self.access = Some(access);
            if !kept {
                self.refresh = refresh;
            }
        }
    }

    /// A command of the input being recorded, emitted for `cause`.
    pub(crate) fn command(&mut self, command: &Command, cause: Cause) {
        let hidden = |p: &Option<Secret>| p.clone().unwrap_or_else(|| Secret::new("redacted"));
        let command = match command {
            Command::Send { id, generation, .. } => Command::Send {
                id: *id,
                access_token: hidden(&self.access),
                generation: *generation,
            },
            Command::Replay { id, generation, .. } => Command::Replay {
                id: *id,
                access_token: hidden(&self.access),
                generation: *generation,
            },
            Command::Refresh { attempt, .. } => Command::Refresh {
                attempt: *attempt,
                refresh_token: hidden(&self.refresh),
            },
            Command::StoreCredentials {
                credentials,
                generation,
                expires_at,
            } => Command::StoreCredentials {
                credentials: Credentials {
                    access_token: hidden(&self.access),
                    refresh_token: credentials
                        .refresh_token
                        .as_ref()
                        .map(|_| hidden(&self.refresh)),
                    expires_in_ms: credentials.expires_in_ms,
                },
                generation: *generation,
                expires_at: *expires_at,
            },
            other => other.clone(),
        };
        self.commands.push_back((command, cause));
        self.pending += 1;
    }

    /// The input is done: it goes into the ring; the oldest goes to the lagging
    /// coordinator when the ring is full.
    pub(crate) fn finish(
        &mut self,
        at: Timestamp,
        input: Input,
        result: Result<Option<RequestId>, InputError>,
    ) {
        self.incoming = None;
        self.entries.push_back(Entry {
            at,
            input,
            result,
            commands: std::mem::take(&mut self.pending),
        });
        // Commands are bounded too: twice the capacity, or the last batch if larger.
        while self.entries.len() > self.capacity
            || (self.entries.len() > 1 && self.commands.len() > self.capacity.saturating_mul(2))
        {
            let Some(oldest) = self.entries.pop_front() else {
                break;
            };
            self.commands
                .drain(..oldest.commands.min(self.commands.len()));
            if oldest.result.is_ok() {
                // Deterministic: the same input gives the same result here.
                let _ = self.lag.apply(oldest.at, oldest.input);
                self.lag.discard_commands();
            }
            self.lagging = true;
        }
    }

    /// The recording so far.
    pub(crate) fn trace(&self) -> Trace {
        let mut commands = self.commands.iter();
        let steps = self
            .entries
            .iter()
            .map(|e| Step {
                at: e.at,
                input: e.input.clone(),
                result: e.result,
                commands: commands.by_ref().take(e.commands).cloned().collect(),
            })
            .collect();
        Trace {
            start: self.lagging.then(|| self.lag.start()),
            steps,
        }
    }

    /// Starts the recording from `lag`, the coordinator's state now with its tokens
    /// replaced; `lagging`: that state is not a new coordinator's.
    pub(crate) fn starting_from(mut self, lag: Coordinator, lagging: bool) -> Self {
        self.lag = Box::new(lag);
        self.lagging = lagging;
        self
    }
}
