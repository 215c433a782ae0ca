//! The flight recorder: the last inputs of a coordinator with the commands each produced
//! and the rule that produced each command, kept without any token text, so that an
//! incident ("why was I logged out?") can be replayed exactly and explained afterwards.
//!
//! Switch it on with [`Coordinator::record`]; read it with [`Coordinator::trace`]. Each
//! distinct token becomes a placeholder (`redacted-1`, `redacted-2`, …: valid tokens, so
//! the recording replays): the same token always the same placeholder, so the replay is
//! faithful (the core compares refresh tokens to tell a rotation, §4.4). A recording
//! that no longer reaches back to the coordinator's creation carries the state it starts
//! from ([`Start`]), with the same placeholders.
//!
//! [`Coordinator::record`]: crate::Coordinator::record
//! [`Coordinator::trace`]: crate::Coordinator::trace
//!
//! Memory is bounded by the capacity: the recording holds between `capacity` and
//! `2 × capacity − 1` inputs (at least the last `capacity`), their commands, and the
//! state before the oldest of them. Inputs and commands are kept as plain numbers (a
//! token as the number of its placeholder), in rings allocated when recording starts;
//! once per `capacity` inputs the state is copied as the next starting point.

use std::collections::VecDeque;

mod explain;
#[cfg(feature = "serde")]
mod json;
#[cfg(feature = "serde")]
pub mod transcript;
#[cfg(feature = "serde")]
pub(crate) use json::token_text;
#[cfg(feature = "serde")]
pub use json::{CommandRecord, TraceTranscript};

use crate::command::{
    AttemptId, Command, FailReason, Generation, LogoutReason, RefreshFailure, RequestId,
    RequestOptions, Timestamp,
};
pub use crate::coordinator::{
    KnownBad, OpenProgress, OpenRequest, OpenState, Start, StartCycle, StartPhase, StartRun,
    StartSession,
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
    /// How a transcript writes it: `"7.15"` for rule 15, `"answered"`, `"logged_in"`.
    pub fn code(self) -> String {
        match self {
            Cause::Rule(n) => format!("7.{n}"),
            Cause::Answered => "answered".to_owned(),
            Cause::LoggedIn => "logged_in".to_owned(),
        }
    }

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

/// What [`Coordinator::resume`](crate::Coordinator::resume) refuses: nothing is built.
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

/// What [`Coordinator::trace`](crate::Coordinator::trace) returns: the recorded steps, oldest first, and the state
/// the first of them met.
#[derive(Clone, Debug, Default)]
pub struct Trace {
    /// The state before the first step; `None` when the recording reaches back to the
    /// coordinator's creation (a new coordinator with the same config).
    pub start: Option<Start>,
    /// The recorded inputs, oldest first.
    pub steps: Vec<Step>,
}

/// A token as the recorder keeps it: the number of its placeholder, or which way the
/// core refused it (so that the recorded error replays).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Token {
    Named(u32),
    Empty,
    TooLong,
    Invalid,
}

impl Token {
    /// The placeholder (or a token the core refuses for the same reason).
    fn secret(self) -> Secret {
        match self {
            Token::Named(n) => Secret::new(format!("redacted-{n}")),
            Token::Empty => Secret::new(""),
            Token::TooLong => Secret::new("x".repeat(MAX_TOKEN_LEN + 1)),
            Token::Invalid => Secret::new("redacted invalid"),
        }
    }
}

/// Credentials as the recorder keeps them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tokens {
    access: Token,
    refresh: Option<Token>,
    expires_in_ms: Option<u64>,
}

impl Tokens {
    fn credentials(self) -> Credentials {
        Credentials {
            access_token: self.access.secret(),
            refresh_token: self.refresh.map(Token::secret),
            expires_in_ms: self.expires_in_ms,
        }
    }
}

/// An input as the recorder keeps it: no token text, nothing to free.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Kept {
    Login(Tokens),
    Succeeded(AttemptId, Tokens),
    /// Any other input (none carries a token).
    Plain(PlainInput),
}

/// The inputs without tokens.
#[derive(Clone, Copy, Debug)]
pub(crate) enum PlainInput {
    Submit(RequestOptions),
    Response(RequestId, u16),
    Failed(AttemptId, RefreshFailure),
    TransportError(RequestId),
    Timeout,
    Cancel(RequestId),
    ForceRefresh,
    Logout,
    BeginRestore,
    RestoreFailed,
}

impl Kept {
    fn input(self) -> Input {
        match self {
            Kept::Login(t) => Input::Login {
                credentials: t.credentials(),
            },
            Kept::Succeeded(attempt, t) => Input::RefreshSucceeded {
                attempt,
                credentials: t.credentials(),
            },
            Kept::Plain(p) => match p {
                PlainInput::Submit(options) => Input::Submit { options },
                PlainInput::Response(id, status) => Input::Response { id, status },
                PlainInput::Failed(attempt, failure) => Input::RefreshFailed { attempt, failure },
                PlainInput::TransportError(id) => Input::TransportError { id },
                PlainInput::Timeout => Input::Timeout,
                PlainInput::Cancel(id) => Input::Cancel { id },
                PlainInput::ForceRefresh => Input::ForceRefresh,
                PlainInput::Logout => Input::Logout,
                PlainInput::BeginRestore => Input::BeginRestore,
                PlainInput::RestoreFailed => Input::RestoreFailed,
            },
        }
    }
}

/// A command as the recorder keeps it, with its cause.
#[derive(Clone, Copy, Debug)]
struct Noted {
    command: NotedCommand,
    cause: Cause,
}

#[derive(Clone, Copy, Debug)]
enum NotedCommand {
    Send(RequestId, Token, Generation),
    Replay(RequestId, Token, Generation),
    Refresh(AttemptId, Token),
    Store {
        generation: Generation,
        tokens: Tokens,
        expires_at: Option<Timestamp>,
    },
    Complete(RequestId),
    Fail(RequestId, FailReason),
    Logout(LogoutReason),
}

impl NotedCommand {
    fn command(self) -> Command {
        match self {
            NotedCommand::Send(id, t, generation) => Command::Send {
                id,
                access_token: t.secret(),
                generation,
            },
            NotedCommand::Replay(id, t, generation) => Command::Replay {
                id,
                access_token: t.secret(),
                generation,
            },
            NotedCommand::Refresh(attempt, t) => Command::Refresh {
                attempt,
                refresh_token: t.secret(),
            },
            NotedCommand::Store {
                generation,
                tokens,
                expires_at,
            } => Command::StoreCredentials {
                credentials: tokens.credentials(),
                generation,
                expires_at,
            },
            NotedCommand::Complete(id) => Command::Complete { id },
            NotedCommand::Fail(id, reason) => Command::Fail { id, reason },
            NotedCommand::Logout(reason) => Command::Logout { reason },
        }
    }
}

/// One input in the ring; its commands are the next `commands` entries of the command
/// ring.
#[derive(Clone, Copy, Debug)]
struct Entry {
    at: Timestamp,
    input: Kept,
    result: Result<Option<RequestId>, InputError>,
    commands: u32,
}

/// The recorder inside a coordinator.
///
/// It keeps between `capacity` and `2 × capacity` inputs after a checkpoint: the state
/// (tokens replaced) before the oldest of them. Every `capacity` inputs it copies the
/// coordinator's state as the next checkpoint; once `2 × capacity` inputs are kept, the
/// older checkpoint and the inputs before the newer one go. The rings are allocated
/// once; a checkpoint copies the state (its requests and window), once per `capacity`
/// inputs.
#[derive(Clone, Debug)]
pub(crate) struct Recorder {
    /// An input is being recorded (its own method calls are not recorded again).
    pub(crate) busy: bool,
    capacity: usize,
    entries: VecDeque<Entry>,
    commands: VecDeque<Noted>,
    /// Commands of the input being recorded.
    pending: u32,
    /// The state before the oldest entry, or `None` for a new coordinator's.
    base: Option<Box<Start>>,
    /// The state after the first `capacity` entries, once they are in: the next base.
    next: Option<(usize, Box<Start>)>,
    /// The placeholders of the session's current access and refresh tokens.
    access: Option<Token>,
    refresh: Option<Token>,
    /// Those of the credentials of the input being recorded, if it brings any; they
    /// become the session's when the core installs the credentials.
    incoming: Option<(Token, Option<Token>)>,
    /// Placeholders given so far.
    given: u32,
}

impl Recorder {
    /// A recorder for the last `capacity` inputs (at least 1).
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Recorder {
            busy: false,
            capacity,
            // Bounded by what a caller may ask for reasonably; the rings grow to
            // `2 × capacity` entries at most.
            entries: VecDeque::with_capacity(capacity.saturating_mul(2).min(4_096)),
            commands: VecDeque::with_capacity(capacity.saturating_mul(2).min(4_096)),
            pending: 0,
            base: None,
            next: None,
            access: None,
            refresh: None,
            incoming: None,
            given: 0,
        }
    }

    /// The placeholder for `token`, which arrives while the session holds `held` (the
    /// same token keeps its placeholder; a refused one is kept as its reason).
    fn name(
        &mut self,
        token: &Secret,
        kind: TokenKind,
        held: (Option<&Secret>, Option<&Secret>),
        beside: Option<(&Secret, Token)>,
    ) -> Token {
        match token.validate(kind) {
            Ok(()) => {}
            Err(CredentialsError::EmptyToken(_)) => return Token::Empty,
            Err(CredentialsError::InvalidTokenCharacter(_)) => return Token::Invalid,
            Err(CredentialsError::TokenTooLong(_)) => return Token::TooLong,
        }
        // The same text, the same placeholder: as a token the session holds (in either
        // role), or as the access token arriving with it.
        let known = [held.0.zip(self.access), held.1.zip(self.refresh), beside];
        known
            .into_iter()
            .flatten()
            .find_map(|(text, placeholder)| (text == token).then_some(placeholder))
            .unwrap_or_else(|| {
                self.given += 1;
                Token::Named(self.given)
            })
    }

    fn tokens(
        &mut self,
        credentials: &Credentials,
        held: (Option<&Secret>, Option<&Secret>),
    ) -> Tokens {
        let access = self.name(&credentials.access_token, TokenKind::Access, held, None);
        let beside = Some((&credentials.access_token, access));
        let refresh = credentials
            .refresh_token
            .as_ref()
            .map(|r| self.name(r, TokenKind::Refresh, held, beside));
        self.incoming = Some((access, refresh));
        Tokens {
            access,
            refresh,
            expires_in_ms: credentials.expires_in_ms,
        }
    }

    /// The input as kept; `held` are the session's tokens. Its credentials'
    /// placeholders wait for [`Recorder::installed`].
    fn keep(&mut self, input: &Input, held: (Option<&Secret>, Option<&Secret>)) -> Kept {
        match input {
            Input::Login { credentials } => Kept::Login(self.tokens(credentials, held)),
            Input::RefreshSucceeded {
                attempt,
                credentials,
            } => Kept::Succeeded(*attempt, self.tokens(credentials, held)),
            Input::Submit { options } => Kept::Plain(PlainInput::Submit(*options)),
            Input::Response { id, status } => Kept::Plain(PlainInput::Response(*id, *status)),
            Input::RefreshFailed { attempt, failure } => {
                Kept::Plain(PlainInput::Failed(*attempt, *failure))
            }
            Input::TransportError { id } => Kept::Plain(PlainInput::TransportError(*id)),
            Input::Timeout => Kept::Plain(PlainInput::Timeout),
            Input::Cancel { id } => Kept::Plain(PlainInput::Cancel(*id)),
            Input::ForceRefresh => Kept::Plain(PlainInput::ForceRefresh),
            Input::Logout => Kept::Plain(PlainInput::Logout),
            Input::BeginRestore => Kept::Plain(PlainInput::BeginRestore),
            Input::RestoreFailed => Kept::Plain(PlainInput::RestoreFailed),
        }
    }

    /// The input with its tokens replaced (for a state copied when recording starts).
    pub(crate) fn redact(
        &mut self,
        input: &Input,
        held: (Option<&Secret>, Option<&Secret>),
    ) -> Input {
        self.keep(input, held).input()
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
        let access = self.access.unwrap_or(Token::Invalid);
        let refresh = self.refresh.unwrap_or(Token::Invalid);
        let command = match command {
            Command::Send { id, generation, .. } => NotedCommand::Send(*id, access, *generation),
            Command::Replay { id, generation, .. } => {
                NotedCommand::Replay(*id, access, *generation)
            }
            Command::Refresh { attempt, .. } => NotedCommand::Refresh(*attempt, refresh),
            Command::StoreCredentials {
                credentials,
                generation,
                expires_at,
            } => NotedCommand::Store {
                generation: *generation,
                tokens: Tokens {
                    access,
                    refresh: credentials.refresh_token.as_ref().map(|_| refresh),
                    expires_in_ms: credentials.expires_in_ms,
                },
                expires_at: *expires_at,
            },
            Command::Complete { id } => NotedCommand::Complete(*id),
            Command::Fail { id, reason } => NotedCommand::Fail(*id, *reason),
            Command::Logout { reason } => NotedCommand::Logout(*reason),
        };
        self.commands.push_back(Noted { command, cause });
        self.pending += 1;
    }

    /// Starts recording `input` (before the core applies it).
    pub(crate) fn begin(
        &mut self,
        input: &Input,
        held: (Option<&Secret>, Option<&Secret>),
    ) -> Kept {
        self.pending = 0;
        self.keep(input, held)
    }

    /// The input is done: it goes into the ring (and the older half goes once the newer
    /// one is full). Returns whether the recorder wants a checkpoint of the state now
    /// ([`Recorder::checkpoint`]).
    pub(crate) fn finish(
        &mut self,
        at: Timestamp,
        input: Kept,
        result: Result<Option<RequestId>, InputError>,
    ) -> bool {
        self.incoming = None;
        self.entries.push_back(Entry {
            at,
            input,
            result,
            commands: std::mem::take(&mut self.pending),
        });
        self.roll();
        self.next.is_none() && self.entries.len() == self.capacity
    }

    /// The state after the newest entry (tokens replaced): the next base; once the
    /// entries after it fill the capacity, the entries before it go.
    pub(crate) fn checkpoint(&mut self, state: Start) {
        self.next = Some((self.entries.len(), Box::new(state)));
    }

    /// Drops the older half once the newer one is full.
    fn roll(&mut self) {
        let Some((at, _)) = &self.next else {
            return;
        };
        if self.entries.len() < *at + self.capacity {
            return;
        }
        let Some((at, state)) = self.next.take() else {
            return;
        };
        let gone: usize = self.entries.range(..at).map(|e| e.commands as usize).sum();
        self.entries.drain(..at);
        self.commands.drain(..gone.min(self.commands.len()));
        self.base = Some(state);
    }

    /// The placeholders of the session's tokens (to replace them in a copied state).
    pub(crate) fn session_tokens(&self) -> (Option<Secret>, Option<Secret>) {
        (
            self.access.map(Token::secret),
            self.refresh.map(Token::secret),
        )
    }

    /// The causes of the commands of the last input recorded.
    pub(crate) fn last_causes(&self) -> Vec<Cause> {
        let n = self.entries.back().map_or(0, |e| e.commands as usize);
        let skip = self.commands.len().saturating_sub(n);
        self.commands.iter().skip(skip).map(|n| n.cause).collect()
    }

    /// The recording so far.
    pub(crate) fn trace(&self) -> Trace {
        let mut commands = self.commands.iter();
        let steps = self
            .entries
            .iter()
            .map(|e| Step {
                at: e.at,
                input: e.input.input(),
                result: e.result,
                commands: commands
                    .by_ref()
                    .take(e.commands as usize)
                    .map(|n| (n.command.command(), n.cause))
                    .collect(),
            })
            .collect();
        Trace {
            start: self.base.as_deref().cloned(),
            steps,
        }
    }

    /// Starts the recording from `state` (the coordinator's now, tokens replaced), or
    /// from a new coordinator's.
    pub(crate) fn starting_from(mut self, state: Option<Start>) -> Self {
        self.base = state.map(Box::new);
        self
    }
}
