//! Errors: host misuse. Protocol outcomes are commands, never errors.

use crate::command::{AttemptId, RequestId, Timestamp};
use crate::credentials::CredentialsError;

/// The host called an input wrongly. **On `Err`, nothing changed**: no state, no
/// statistics, no commands.
///
/// Exhaustive on purpose, unlike the other error types (not `#[non_exhaustive]`): each
/// kind is part of the contract (`docs/contract.md` §8; its [`kind`](Self::kind) names
/// appear in transcripts) and has its own status or error in every binding, so a new
/// kind is a contract change every binding must handle. Adding one must fail to compile
/// wherever a binding converts it, not be reported under another kind's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// The request id was never issued, already ended, or was cancelled. After a
    /// `cancel` this is expected for a late response: ignore it.
    #[error("unknown request {0}")]
    UnknownRequest(RequestId),
    /// The request is waiting for a refresh, so no response can be due for it: the host
    /// reported a response twice or for the wrong id.
    #[error("request {0} is not awaiting a response")]
    NotInFlight(RequestId),
    /// No `Refresh` command ever carried this attempt: the host mixed up attempts.
    #[error("unknown refresh attempt {0}")]
    UnknownAttempt(AttemptId),
    /// The credentials are unusable (empty token, control characters, too long). For a
    /// refresh result, report the refresh as failed instead.
    #[error("invalid credentials: {0}")]
    InvalidCredentials(#[from] CredentialsError),
    /// The status is not an HTTP status (100..=599). Report a network error as a
    /// failure of the caller's request instead of calling `handle_response`.
    #[error("invalid http status {0}")]
    InvalidStatus(u16),
    /// `now` is past [`MAX_TIMESTAMP`](crate::MAX_TIMESTAMP): the host's clock returned an
    /// error value or is not in milliseconds.
    #[error("time {0} is past the end of the clock (MAX_TIMESTAMP)")]
    InvalidTime(Timestamp),
}

impl InputError {
    /// A stable snake_case name for the variant (used by transcripts and bindings).
    pub fn kind(&self) -> &'static str {
        match self {
            InputError::UnknownRequest(_) => "unknown_request",
            InputError::NotInFlight(_) => "not_in_flight",
            InputError::UnknownAttempt(_) => "unknown_attempt",
            InputError::InvalidCredentials(_) => "invalid_credentials",
            InputError::InvalidStatus(_) => "invalid_status",
            InputError::InvalidTime(_) => "invalid_time",
        }
    }
}

/// A [`Config`](crate::Config) field is outside its range.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `refresh_statuses` lists more than 16 statuses.
    #[error("refresh_statuses lists more than 16 statuses")]
    TooManyRefreshStatuses,
    /// A refresh status is not a 4xx or 5xx status.
    #[error("refresh status {0} is not in 400..=599")]
    InvalidRefreshStatus(u16),
    /// A refresh status is listed twice.
    #[error("refresh status {0} is listed twice")]
    DuplicateRefreshStatus(u16),
    /// A numeric field is outside its range.
    #[error("{field} must be in {min}..={max}, got {value}")]
    OutOfRange {
        /// The field's name.
        field: &'static str,
        /// The value given.
        value: u64,
        /// The smallest allowed value.
        min: u64,
        /// The largest allowed value.
        max: u64,
    },
}
