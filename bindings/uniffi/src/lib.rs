//! UniFFI bindings of [`reauth`]: the one layer that Python, Kotlin and Swift share.
//!
//! One [`Coordinator`] object wraps the thread-safe [`reauth::SharedCoordinator`]. Every
//! input is a synchronous `&self` method that applies the input under the lock and
//! returns exactly the batch of [`Command`]s it produced — no callbacks into foreign code,
//! so no lock is ever held across a foreign call. The host carries the commands out in
//! order, re-arms its one timer from [`Coordinator::poll_timeout`] and calls
//! [`Coordinator::handle_timeout`] when it fires (`docs/contract.md` §5, the call order).
//!
//! Tokens never cross as plain fields: a [`Token`] is an object whose `Debug`/`Display`
//! (Python `repr`/`str`, Kotlin `toString`, Swift `description`) is redacted; call
//! [`Token::expose`] to put it on the wire. Errors carry the core's human message, which
//! never contains token text.

use std::sync::Arc;

use reauth::{
    AttemptId, ConfigError, Credentials as CoreCredentials, InputError, RefreshWindow, RequestId,
    RequestOptions as CoreOptions, RouteKey, Secret, SharedCoordinator, SharedError,
};

uniffi::setup_scaffolding!();

mod driver;
mod host;
mod jni;
pub use driver::*;
pub use host::*;

/// Why an input was refused. The input changed nothing. The message is the core's human
/// one and never contains token text.
#[derive(Debug, thiserror::Error, uniffi::Error)]
#[uniffi(flat_error)]
#[non_exhaustive]
pub enum ReauthError {
    /// The request id was never issued, or its request already ended.
    #[error("unknown request {0}")]
    UnknownRequest(i64),
    /// The request is waiting for a refresh: nothing of it is in flight.
    #[error("request {0} is not awaiting a response")]
    NotInFlight(i64),
    /// The refresh attempt was never issued.
    #[error("unknown refresh attempt {0}")]
    UnknownAttempt(i64),
    /// An empty, whitespace-only, over-long or control-character token.
    #[error("invalid credentials: {0}")]
    InvalidCredentials(String),
    /// An HTTP status outside 100..=599.
    #[error("invalid http status {0} (must be in 100..=599)")]
    InvalidStatus(i32),
    /// A `now` past the end of the clock (`max_timestamp()`).
    #[error("time {0} is past the end of the clock (max_timestamp)")]
    InvalidTime(i64),
    /// A configuration value outside its documented range.
    #[error("invalid config: {0}")]
    InvalidConfig(String),
    /// A negative duration, or another argument outside its range.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A route key outside 1..=4294967295 (use `route_key(name)`).
    #[error("invalid route key: route keys are in 1..=4294967295 (route_key(name) makes one)")]
    InvalidRoute,
    /// An earlier call panicked while holding the coordinator's lock (a bug): the
    /// coordinator refuses every further input.
    #[error("coordinator lock poisoned by a panic")]
    Poisoned,
    /// The driver was closed: the request was not sent, or its response dropped.
    #[error("reauth is closed")]
    Closed,
    /// A driver handle that was never issued, or was freed.
    #[error("unknown driver handle {0}")]
    UnknownDriver(u64),
    /// Not a transcript, or a start state the core refuses (`resume`,
    /// `explain_transcript`).
    #[error("invalid transcript: {0}")]
    InvalidTranscript(String),
    /// The transcript does not replay: an explanation would rest on something the core
    /// does not do.
    #[error("{0}")]
    TranscriptMismatch(String),
}

// The conversions from the core's enums in this file list every variant, with no wildcard
// arm: those enums are exhaustive on purpose, so a new variant fails to compile here until
// it has its own variant, instead of being reported under another one's name.

impl From<InputError> for ReauthError {
    fn from(e: InputError) -> Self {
        match e {
            InputError::UnknownRequest(id) => ReauthError::UnknownRequest(signed(id.0)),
            InputError::NotInFlight(id) => ReauthError::NotInFlight(signed(id.0)),
            InputError::UnknownAttempt(a) => ReauthError::UnknownAttempt(signed(a.0)),
            InputError::InvalidCredentials(c) => ReauthError::InvalidCredentials(c.to_string()),
            InputError::InvalidStatus(s) => ReauthError::InvalidStatus(i32::from(s)),
            InputError::InvalidTime(t) => ReauthError::InvalidTime(signed(t)),
        }
    }
}

impl From<SharedError> for ReauthError {
    fn from(e: SharedError) -> Self {
        match e {
            SharedError::Input(e) => e.into(),
            SharedError::Poisoned => ReauthError::Poisoned,
        }
    }
}

impl From<ConfigError> for ReauthError {
    fn from(e: ConfigError) -> Self {
        ReauthError::InvalidConfig(e.to_string())
    }
}

// Numbers cross as signed integers — Kotlin `Long`/`Int`, Swift `Int64`/`Int32`, Java
// without unsigned types — and are checked here: a negative time, id or duration is
// refused like any other bad input.

/// A value the core produced (ids, counters, times: all far below 2^63).
pub(crate) fn signed(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) fn time(now: i64) -> Result<u64, ReauthError> {
    u64::try_from(now).map_err(|_| ReauthError::InvalidTime(now))
}

pub(crate) fn request(id: i64) -> Result<RequestId, ReauthError> {
    u64::try_from(id)
        .map(RequestId)
        .map_err(|_| ReauthError::UnknownRequest(id))
}

pub(crate) fn attempt_id(attempt: i64) -> Result<AttemptId, ReauthError> {
    u64::try_from(attempt)
        .map(AttemptId)
        .map_err(|_| ReauthError::UnknownAttempt(attempt))
}

pub(crate) fn status(status: i32) -> Result<u16, ReauthError> {
    u16::try_from(status).map_err(|_| ReauthError::InvalidStatus(status))
}

fn config_value<T: TryFrom<i64>>(field: &str, value: i64) -> Result<T, ReauthError> {
    T::try_from(value).map_err(|_| {
        ReauthError::InvalidConfig(format!("{field} must not be negative, got {value}"))
    })
}

impl ReauthError {
    /// The stable snake_case kind, as in transcripts (`"unknown_request"`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            ReauthError::UnknownRequest(_) => "unknown_request",
            ReauthError::NotInFlight(_) => "not_in_flight",
            ReauthError::UnknownAttempt(_) => "unknown_attempt",
            ReauthError::InvalidCredentials(_) => "invalid_credentials",
            ReauthError::InvalidStatus(_) => "invalid_status",
            ReauthError::InvalidTime(_) => "invalid_time",
            ReauthError::InvalidConfig(_) => "invalid_config",
            ReauthError::InvalidArgument(_) => "invalid_argument",
            ReauthError::InvalidRoute => "invalid_route",
            ReauthError::Poisoned => "poisoned",
            ReauthError::Closed => "closed",
            ReauthError::UnknownDriver(_) => "unknown_driver",
            ReauthError::InvalidTranscript(_) => "invalid_transcript",
            ReauthError::TranscriptMismatch(_) => "transcript_mismatch",
        }
    }
}

/// A token. Its `Debug`/`Display` never show the text; [`expose`](Token::expose) does.
#[derive(uniffi::Object)]
#[uniffi::export(Debug, Display, Eq)]
pub struct Token(pub(crate) Secret);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Token(<redacted>, {} bytes)", self.0.len())
    }
}

impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted token>")
    }
}

impl PartialEq for Token {
    fn eq(&self, other: &Self) -> bool {
        self.0.expose() == other.0.expose()
    }
}
impl Eq for Token {}

#[uniffi::export]
impl Token {
    /// Wraps a token read from storage (for the store recipe: `plan_refresh`,
    /// `stored_to_credentials`). Not checked here; the coordinator checks tokens where
    /// they are used.
    #[uniffi::constructor]
    pub fn new(text: String) -> Arc<Self> {
        Arc::new(Token(Secret::new(text)))
    }

    /// The token text, to put on the wire (`Authorization: Bearer …`) or in storage.
    pub fn expose(&self) -> String {
        self.0.expose().to_owned()
    }

    /// Its length in bytes.
    pub fn byte_len(&self) -> i64 {
        signed(self.0.len() as u64)
    }
}

pub(crate) fn token(secret: &Secret) -> Arc<Token> {
    Arc::new(Token(secret.clone()))
}

/// Credentials from the token endpoint or from storage. `Debug`/`Display` redact the
/// tokens.
#[derive(uniffi::Object)]
#[uniffi::export(Debug, Display)]
pub struct Credentials(pub(crate) CoreCredentials);

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The core's `Debug` redacts both tokens.
        self.0.fmt(f)
    }
}

impl std::fmt::Display for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Credentials(access_token=<redacted>, refresh_token={}, expires_in_ms={:?})",
            if self.0.refresh_token.is_some() {
                "<redacted>"
            } else {
                "None"
            },
            self.0.expires_in_ms
        )
    }
}

#[uniffi::export]
impl Credentials {
    /// `access_token`, optionally a `refresh_token` (in a refresh result, none means "keep
    /// the previous one") and the access token's lifetime in ms from the input's `now`.
    /// The tokens are checked when the credentials are used (`login`,
    /// `handle_refresh_succeeded`); a negative lifetime is refused here.
    #[uniffi::constructor(default(refresh_token = None, expires_in_ms = None))]
    pub fn new(
        access_token: String,
        refresh_token: Option<String>,
        expires_in_ms: Option<i64>,
    ) -> Result<Arc<Self>, ReauthError> {
        let mut c = CoreCredentials::new(access_token);
        if let Some(r) = refresh_token {
            c = c.with_refresh_token(r);
        }
        if let Some(e) = expires_in_ms {
            let e = u64::try_from(e).map_err(|_| {
                ReauthError::InvalidCredentials(format!("expires_in_ms is negative ({e})"))
            })?;
            c = c.with_expires_in_ms(e);
        }
        Ok(Arc::new(Credentials(c)))
    }

    /// The access token.
    pub fn access_token(&self) -> Arc<Token> {
        token(&self.0.access_token)
    }

    /// The refresh token, if any.
    pub fn refresh_token(&self) -> Option<Arc<Token>> {
        self.0.refresh_token.as_ref().map(token)
    }

    /// The access token's lifetime in ms, if the server said.
    pub fn expires_in_ms(&self) -> Option<i64> {
        self.0.expires_in_ms.map(signed)
    }
}

/// The behaviour's settings (`docs/contract.md`: defaults in §7's rules, ranges in §8).
/// Every field has the contract's default; `refresh_statuses = None` means `[401]`.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct Config {
    /// Statuses that mean "the access token was refused" (None: `[401]`; `[]`: none).
    #[uniffi(default = None)]
    pub refresh_statuses: Option<Vec<i32>>,
    /// Refresh this long before the access token expires (at most half its lifetime).
    #[uniffi(default = 30000)]
    pub expiry_skew_ms: i64,
    /// An expiry refresh of a token younger than this counts in the refresh window.
    #[uniffi(default = 500)]
    pub min_token_age_ms: i64,
    /// Replays per request after a refresh.
    #[uniffi(default = 1)]
    pub max_replays_per_request: i32,
    /// Refresh cycles that look like a loop allowed per window, then `Logout`.
    #[uniffi(default = 5)]
    pub refresh_window_max_refreshes: i32,
    /// The refresh window's length.
    #[uniffi(default = 30000)]
    pub refresh_window_ms: i64,
    /// First backoff after a transient refresh failure.
    #[uniffi(default = 500)]
    pub initial_backoff_ms: i64,
    /// Largest backoff (also caps `Retry-After`).
    #[uniffi(default = 30000)]
    pub max_backoff_ms: i64,
    /// Transient failures retried per cycle before giving up (no logout).
    #[uniffi(default = 3)]
    pub max_retries: i32,
    /// An unanswered refresh attempt counts as transient after this long.
    #[uniffi(default = 30000)]
    pub refresh_timeout_ms: i64,
    /// Requests that may wait for a refresh; more fail `QueueFull`.
    #[uniffi(default = 1024)]
    pub max_pending: i32,
    /// How long a request may wait for a refresh before `WaitTimeout`.
    #[uniffi(default = 60000)]
    pub max_wait_ms: i64,
}

impl Config {
    fn to_core(&self) -> Result<reauth::Config, ReauthError> {
        let mut c = reauth::Config::default()
            .with_expiry_skew_ms(config_value("expiry_skew_ms", self.expiry_skew_ms)?)
            .with_min_token_age_ms(config_value("min_token_age_ms", self.min_token_age_ms)?)
            .with_max_replays_per_request(config_value(
                "max_replays_per_request",
                self.max_replays_per_request.into(),
            )?)
            .with_refresh_window(RefreshWindow::new(
                config_value(
                    "refresh_window_max_refreshes",
                    self.refresh_window_max_refreshes.into(),
                )?,
                config_value("refresh_window_ms", self.refresh_window_ms)?,
            ))
            .with_initial_backoff_ms(config_value("initial_backoff_ms", self.initial_backoff_ms)?)
            .with_max_backoff_ms(config_value("max_backoff_ms", self.max_backoff_ms)?)
            .with_max_retries(config_value("max_retries", self.max_retries.into())?)
            .with_refresh_timeout_ms(config_value("refresh_timeout_ms", self.refresh_timeout_ms)?)
            .with_max_pending(config_value("max_pending", self.max_pending.into())?)
            .with_max_wait_ms(config_value("max_wait_ms", self.max_wait_ms)?);
        if let Some(statuses) = &self.refresh_statuses {
            let statuses = statuses
                .iter()
                .map(|&s| {
                    u16::try_from(s).map_err(|_| {
                        ReauthError::InvalidConfig(format!(
                            "refresh status {s} is not in 400..=599"
                        ))
                    })
                })
                .collect::<Result<Vec<u16>, _>>()?;
            c = c.with_refresh_statuses(statuses);
        }
        Ok(c)
    }

    fn from_core(c: &reauth::Config) -> Self {
        let small = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
        Config {
            refresh_statuses: Some(c.refresh_statuses.iter().map(|&s| i32::from(s)).collect()),
            expiry_skew_ms: signed(c.expiry_skew_ms),
            min_token_age_ms: signed(c.min_token_age_ms),
            max_replays_per_request: small(c.max_replays_per_request),
            refresh_window_max_refreshes: small(c.refresh_window.max_refreshes),
            refresh_window_ms: signed(c.refresh_window.window_ms),
            initial_backoff_ms: signed(c.initial_backoff_ms),
            max_backoff_ms: signed(c.max_backoff_ms),
            max_retries: small(c.max_retries),
            refresh_timeout_ms: signed(c.refresh_timeout_ms),
            max_pending: small(c.max_pending),
            max_wait_ms: signed(c.max_wait_ms),
        }
    }
}

/// The contract's default configuration, as the core defines it (the foreign `Config()`
/// defaults are the same values; a test checks it).
#[uniffi::export]
pub fn default_config() -> Config {
    Config::from_core(&reauth::Config::default())
}

/// Replays a transcript (JSON: a flight recording, or any `tests/vectors` file) and
/// explains it as a timeline with the contract rule behind each command and why the
/// session ended. `InvalidTranscript` for a file that is not one, `TranscriptMismatch`
/// (with every differing step) for one that does not replay.
#[uniffi::export]
pub fn explain_transcript(json: String) -> Result<String, ReauthError> {
    use reauth::trace::transcript::{ExplainError, Transcript, explain};
    let transcript: Transcript =
        serde_json::from_str(&json).map_err(|e| ReauthError::InvalidTranscript(e.to_string()))?;
    explain(&transcript).map_err(|e| match e {
        ExplainError::Start(e) => ReauthError::InvalidTranscript(e.to_string()),
        ExplainError::DoesNotReplay(mismatches) => ReauthError::TranscriptMismatch(format!(
            "the transcript does not replay ({} of {} steps differ):\n{}",
            mismatches.len(),
            transcript.steps.len(),
            mismatches
                .iter()
                .map(ToString::to_string)
                .collect::<String>()
        )),
    })
}

/// The largest `now` an input may carry (2^53 − 1 ms).
#[uniffi::export]
pub fn max_timestamp() -> i64 {
    signed(reauth::MAX_TIMESTAMP)
}

/// A route key for a route template such as `"GET /users/{id}"` (stable FNV-1a hash,
/// never 0): pass it in [`RequestOptions::route`] so that an endpoint refusing a fresh
/// token costs one refresh per token, not one per request (rule 7.20).
#[uniffi::export]
pub fn route_key(name: String) -> i64 {
    i64::from(RouteKey::from_name(&name).get())
}

/// How a request may be handled.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct RequestOptions {
    /// Whether the body can be sent again (false for a consumed stream): a refusal then
    /// ends it with `Complete` instead of a replay (rule 7.14).
    #[uniffi(default = true)]
    pub replayable: bool,
    /// Whether a refusal of it may start or wait for a refresh (false: the caller gets the
    /// refusal, rule 7.19).
    #[uniffi(default = true)]
    pub refresh: bool,
    /// The route it goes to (`route_key(name)`), if named (rule 7.20); 0 is refused.
    #[uniffi(default = None)]
    pub route: Option<i64>,
}

impl RequestOptions {
    fn to_core(&self) -> Result<CoreOptions, ReauthError> {
        let mut o = CoreOptions::default()
            .with_replayable(self.replayable)
            .with_refresh(self.refresh);
        if let Some(route) = self.route {
            let key = u32::try_from(route).ok().and_then(RouteKey::new);
            o = o.with_route(key.ok_or(ReauthError::InvalidRoute)?);
        }
        Ok(o)
    }
}

/// Why a request failed (`Command::Fail`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum FailReason {
    /// Submitted while logged out (rule 7.16).
    NotLoggedIn,
    /// The session ended (logout) while it waited or after a 401.
    LoggedOut,
    /// The refresh it waited for was rejected.
    RefreshRejected,
    /// The refresh it waited for gave up after transient failures (no logout).
    RefreshUnavailable,
    /// Too many refresh cycles in the window.
    ExcessiveRefresh,
    /// Refused again after its replays; hand the caller the response.
    Unauthorized,
    /// Too many requests waiting (`max_pending`).
    QueueFull,
    /// Waited longer than `max_wait_ms`.
    WaitTimeout,
    /// The host reported a transport error for it; hand the caller that error.
    Transport,
}

impl From<reauth::FailReason> for FailReason {
    fn from(r: reauth::FailReason) -> Self {
        use reauth::FailReason as F;
        match r {
            F::NotLoggedIn => FailReason::NotLoggedIn,
            F::LoggedOut => FailReason::LoggedOut,
            F::RefreshRejected => FailReason::RefreshRejected,
            F::RefreshUnavailable => FailReason::RefreshUnavailable,
            F::ExcessiveRefresh => FailReason::ExcessiveRefresh,
            F::Unauthorized => FailReason::Unauthorized,
            F::QueueFull => FailReason::QueueFull,
            F::WaitTimeout => FailReason::WaitTimeout,
            F::Transport => FailReason::Transport,
        }
    }
}

/// Why the session ended (`Command::Logout`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum LogoutReason {
    /// The application called `logout`.
    Requested,
    /// The token endpoint rejected the refresh token.
    RefreshRejected,
    /// A refresh was needed and the session has no refresh token.
    NoRefreshToken,
    /// Too many refresh cycles in the window.
    ExcessiveRefresh,
}

impl From<reauth::LogoutReason> for LogoutReason {
    fn from(r: reauth::LogoutReason) -> Self {
        use reauth::LogoutReason as L;
        match r {
            L::Requested => LogoutReason::Requested,
            L::RefreshRejected => LogoutReason::RefreshRejected,
            L::NoRefreshToken => LogoutReason::NoRefreshToken,
            L::ExcessiveRefresh => LogoutReason::ExcessiveRefresh,
        }
    }
}

/// How a refresh attempt failed.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum RefreshFailure {
    /// The token endpoint refused the refresh token (RFC 6749 §5.2 `invalid_grant` and
    /// the like): the session ends.
    Rejected,
    /// A network problem, a 5xx, a 429 or a timeout: back off and retry, never log out.
    Transient {
        /// The server's `Retry-After`, in ms, if it sent one.
        retry_after_ms: Option<i64>,
    },
}

impl RefreshFailure {
    pub(crate) fn to_core(&self) -> Result<reauth::RefreshFailure, ReauthError> {
        Ok(match self {
            RefreshFailure::Rejected => reauth::RefreshFailure::Rejected,
            RefreshFailure::Transient { retry_after_ms } => reauth::RefreshFailure::Transient {
                retry_after_ms: retry_after_ms
                    .map(|ms| {
                        u64::try_from(ms).map_err(|_| {
                            ReauthError::InvalidArgument(format!(
                                "retry_after_ms must not be negative, got {ms}"
                            ))
                        })
                    })
                    .transpose()?,
            },
        })
    }
}

/// Something the host must do, in the order given (`docs/contract.md` §6).
#[derive(Debug, uniffi::Enum)]
pub enum Command {
    /// Transmit request `id` for the first time with `access_token`.
    Send {
        /// The request.
        id: i64,
        /// `Authorization: Bearer <access_token.expose()>`.
        access_token: Arc<Token>,
        /// Its generation (for diagnostics).
        generation: i64,
    },
    /// Transmit request `id` again with the new `access_token`.
    Replay {
        /// The request.
        id: i64,
        /// The token to send it with.
        access_token: Arc<Token>,
        /// Its generation.
        generation: i64,
    },
    /// Call the token endpoint with `refresh_token`; report the result with `attempt`.
    Refresh {
        /// The attempt to report with.
        attempt: i64,
        /// The refresh token to send.
        refresh_token: Arc<Token>,
    },
    /// Persist these credentials (the refresh token may have rotated).
    StoreCredentials {
        /// The generation of the access token.
        generation: i64,
        /// The new access token.
        access_token: Arc<Token>,
        /// The refresh token now in use, if the session has one.
        refresh_token: Option<Arc<Token>>,
        /// The lifetime the server stated; do not persist it (see `expires_at`).
        expires_in_ms: Option<i64>,
        /// When the access token expires on the clock of `now`: persist
        /// `wall_clock_now + (expires_at - now)` (`docs/contract.md` §12.1).
        expires_at: Option<i64>,
    },
    /// Request `id` is done: hand the caller its last response.
    Complete {
        /// The request.
        id: i64,
    },
    /// Request `id` failed.
    Fail {
        /// The request.
        id: i64,
        /// Why.
        reason: FailReason,
    },
    /// The session ended: clear stored credentials.
    Logout {
        /// Why.
        reason: LogoutReason,
    },
}

impl From<reauth::Command> for Command {
    fn from(c: reauth::Command) -> Self {
        use reauth::Command as C;
        match c {
            C::Send {
                id,
                access_token,
                generation,
            } => Command::Send {
                id: signed(id.0),
                access_token: Arc::new(Token(access_token)),
                generation: signed(generation.0),
            },
            C::Replay {
                id,
                access_token,
                generation,
            } => Command::Replay {
                id: signed(id.0),
                access_token: Arc::new(Token(access_token)),
                generation: signed(generation.0),
            },
            C::Refresh {
                attempt,
                refresh_token,
            } => Command::Refresh {
                attempt: signed(attempt.0),
                refresh_token: Arc::new(Token(refresh_token)),
            },
            C::StoreCredentials {
                credentials,
                generation,
                expires_at,
            } => Command::StoreCredentials {
                generation: signed(generation.0),
                access_token: token(&credentials.access_token),
                refresh_token: credentials.refresh_token.as_ref().map(token),
                expires_in_ms: credentials.expires_in_ms.map(signed),
                expires_at: expires_at.map(signed),
            },
            C::Complete { id } => Command::Complete { id: signed(id.0) },
            C::Fail { id, reason } => Command::Fail {
                id: signed(id.0),
                reason: reason.into(),
            },
            C::Logout { reason } => Command::Logout {
                reason: reason.into(),
            },
        }
    }
}

/// What `submit` returns: the new request's id and the batch.
#[derive(Debug, uniffi::Record)]
pub struct Submitted {
    /// The request's id, for every later input about it.
    pub id: i64,
    /// `Send` at once, nothing (it waits), or `Fail`.
    pub commands: Vec<Command>,
}

/// Counts of failed requests by reason.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
#[allow(missing_docs)] // one counter per `FailReason`, documented there
pub struct FailCounts {
    pub not_logged_in: i64,
    pub logged_out: i64,
    pub refresh_rejected: i64,
    pub refresh_unavailable: i64,
    pub excessive_refresh: i64,
    pub unauthorized: i64,
    pub queue_full: i64,
    pub wait_timeout: i64,
    pub transport: i64,
}

/// Counters since the coordinator was created.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
#[allow(missing_docs)] // the fields mirror `reauth::Stats`, documented there
pub struct Stats {
    pub submitted: i64,
    pub sent: i64,
    pub replayed: i64,
    pub completed: i64,
    pub failed: FailCounts,
    pub cancelled: i64,
    pub unauthorized_responses: i64,
    pub refresh_cycles: i64,
    pub refresh_attempts: i64,
    pub refresh_succeeded: i64,
    pub refresh_rejected: i64,
    pub refresh_transient: i64,
    pub refresh_timeouts: i64,
    pub refresh_results_ignored: i64,
    pub logouts: i64,
}

impl From<reauth::Stats> for Stats {
    fn from(s: reauth::Stats) -> Self {
        let f = s.failed;
        Stats {
            submitted: signed(s.submitted),
            sent: signed(s.sent),
            replayed: signed(s.replayed),
            completed: signed(s.completed),
            failed: FailCounts {
                not_logged_in: signed(f.not_logged_in),
                logged_out: signed(f.logged_out),
                refresh_rejected: signed(f.refresh_rejected),
                refresh_unavailable: signed(f.refresh_unavailable),
                excessive_refresh: signed(f.excessive_refresh),
                unauthorized: signed(f.unauthorized),
                queue_full: signed(f.queue_full),
                wait_timeout: signed(f.wait_timeout),
                transport: signed(f.transport),
            },
            cancelled: signed(s.cancelled),
            unauthorized_responses: signed(s.unauthorized_responses),
            refresh_cycles: signed(s.refresh_cycles),
            refresh_attempts: signed(s.refresh_attempts),
            refresh_succeeded: signed(s.refresh_succeeded),
            refresh_rejected: signed(s.refresh_rejected),
            refresh_transient: signed(s.refresh_transient),
            refresh_timeouts: signed(s.refresh_timeouts),
            refresh_results_ignored: signed(s.refresh_results_ignored),
            logouts: signed(s.logouts),
        }
    }
}

/// The token-refresh coordinator, safe to call from any thread. Each input returns the
/// commands it produced; carry them out in order, then re-arm the one timer from
/// [`poll_timeout`](Self::poll_timeout) (`docs/contract.md` §5, the call order).
#[derive(Debug, uniffi::Object)]
pub struct Coordinator {
    inner: SharedCoordinator,
}

type Batch = Result<Vec<Command>, ReauthError>;

fn batch(result: Result<reauth::Batch, SharedError>) -> Batch {
    Ok(result?.into_iter().map(Command::from).collect())
}

#[uniffi::export]
impl Coordinator {
    /// A logged-out coordinator; `InvalidConfig` if a value is out of range.
    #[uniffi::constructor(default(config))]
    pub fn new(config: Config) -> Result<Arc<Self>, ReauthError> {
        Ok(Arc::new(Coordinator {
            inner: SharedCoordinator::new(config.to_core()?)?,
        }))
    }

    /// A coordinator in the state a flight recording starts from (its `start`, as JSON),
    /// to replay the recording; `InvalidTranscript` if the core refuses that state.
    #[uniffi::constructor]
    pub fn resume(config: Config, start_json: String) -> Result<Arc<Self>, ReauthError> {
        let start: reauth::trace::Start = serde_json::from_str(&start_json)
            .map_err(|e| ReauthError::InvalidTranscript(e.to_string()))?;
        let core = reauth::Coordinator::resume(config.to_core()?, &start)
            .map_err(|e| ReauthError::InvalidTranscript(e.to_string()))?;
        Ok(Arc::new(Coordinator {
            inner: SharedCoordinator::from_coordinator(core),
        }))
    }

    /// Starts the flight recorder: at least the last `capacity` inputs (fewer than twice
    /// as many) are kept with their commands and the rule behind each, tokens replaced by
    /// placeholders; 0 stops it.
    pub fn record(&self, capacity: u32) -> Result<(), ReauthError> {
        self.inner.with(|core| core.record(capacity as usize))?;
        Ok(())
    }

    /// The flight recording as a transcript (JSON, the `tests/vectors` format): it
    /// replays the incident in every reauth replayer. Empty steps when the recorder is
    /// off.
    pub fn trace_json(&self) -> Result<String, ReauthError> {
        let (json, _) = self.inner.with(|core| {
            serde_json::to_string(&core.trace().transcript(core.config())).unwrap_or_default()
        })?;
        Ok(json)
    }

    /// The causes the recorder noted for the commands of the last input (`"7.9"`,
    /// `"answered"`, `"logged_in"`; empty when it is off): what a replayer compares with
    /// a recording's `causes` at each step.
    pub fn last_causes(&self) -> Result<Vec<String>, ReauthError> {
        let (causes, _) = self.inner.with(|core| {
            core.last_causes()
                .into_iter()
                .map(reauth::trace::Cause::code)
                .collect()
        })?;
        Ok(causes)
    }

    /// The flight recording as a timeline: each input, each command and the contract
    /// rule behind it, then why the session ended.
    pub fn explain(&self) -> Result<String, ReauthError> {
        let (text, _) = self
            .inner
            .with(|core| core.trace().explain(core.config()))?;
        Ok(text)
    }

    /// Starts a session (or replaces its credentials from outside). Emits no
    /// `StoreCredentials`: the host already holds these.
    pub fn login(&self, now: i64, credentials: Arc<Credentials>) -> Batch {
        let now = time(now)?;
        batch(self.inner.login(now, credentials.0.clone()))
    }

    /// A request wants to go out: its id and `Send`, nothing (it waits) or `Fail`.
    #[uniffi::method(default(options))]
    pub fn submit(&self, now: i64, options: RequestOptions) -> Result<Submitted, ReauthError> {
        let now = time(now)?;
        let options = options.to_core()?;
        let (id, commands) = self.inner.submit(now, options)?;
        Ok(Submitted {
            id: signed(id.0),
            commands: commands.into_iter().map(Command::from).collect(),
        })
    }

    /// The HTTP status of the last `Send`/`Replay` of `id`.
    pub fn handle_response(&self, now: i64, id: i64, status: i32) -> Batch {
        let (now, id, status) = (time(now)?, request(id)?, self::status(status)?);
        batch(self.inner.handle_response(now, id, status))
    }

    /// The last `Send`/`Replay` of `id` failed without a status (rule 7.17).
    pub fn handle_transport_error(&self, now: i64, id: i64) -> Batch {
        let (now, id) = (time(now)?, request(id)?);
        batch(self.inner.handle_transport_error(now, id))
    }

    /// Refresh `attempt` returned credentials.
    pub fn handle_refresh_succeeded(
        &self,
        now: i64,
        attempt: i64,
        credentials: Arc<Credentials>,
    ) -> Batch {
        let (now, attempt) = (time(now)?, attempt_id(attempt)?);
        batch(
            self.inner
                .handle_refresh_succeeded(now, attempt, credentials.0.clone()),
        )
    }

    /// Refresh `attempt` failed.
    pub fn handle_refresh_failed(&self, now: i64, attempt: i64, failure: RefreshFailure) -> Batch {
        let (now, attempt) = (time(now)?, attempt_id(attempt)?);
        let failure = failure.to_core()?;
        batch(self.inner.handle_refresh_failed(now, attempt, failure))
    }

    /// The timer armed from `poll_timeout` fired (early or repeated calls are harmless).
    pub fn handle_timeout(&self, now: i64) -> Batch {
        batch(self.inner.handle_timeout(time(now)?))
    }

    /// The caller no longer wants `id`.
    pub fn cancel(&self, now: i64, id: i64) -> Batch {
        let (now, id) = (time(now)?, request(id)?);
        batch(self.inner.cancel(now, id))
    }

    /// The host knows the token is bad: the next request waits for a refresh.
    pub fn force_refresh(&self, now: i64) -> Batch {
        batch(self.inner.force_refresh(time(now)?))
    }

    /// The user logs out: waiting requests fail, then `Logout { Requested }`.
    pub fn logout(&self, now: i64) -> Batch {
        batch(self.inner.logout(time(now)?))
    }

    /// Stored credentials are being read: requests wait for them (rule 7.18).
    pub fn begin_restore(&self, now: i64) -> Batch {
        batch(self.inner.begin_restore(time(now)?))
    }

    /// Nothing was stored: the requests that waited fail `NotLoggedIn`.
    pub fn restore_failed(&self, now: i64) -> Batch {
        batch(self.inner.restore_failed(time(now)?))
    }

    /// When to call `handle_timeout` next, or None.
    pub fn poll_timeout(&self) -> Result<Option<i64>, ReauthError> {
        Ok(self.inner.poll_timeout()?.map(signed))
    }

    /// Counters since creation.
    pub fn stats(&self) -> Result<Stats, ReauthError> {
        Ok(self.inner.stats()?.into())
    }

    /// The configuration in force.
    pub fn config(&self) -> Result<Config, ReauthError> {
        self.read(|c| Config::from_core(c.config()))
    }

    /// Whether a session exists.
    pub fn is_logged_in(&self) -> Result<bool, ReauthError> {
        self.read(|c| c.is_logged_in())
    }

    /// Whether stored credentials are being restored.
    pub fn is_restoring(&self) -> Result<bool, ReauthError> {
        self.read(|c| c.is_restoring())
    }

    /// Whether a refresh cycle is running.
    pub fn is_refreshing(&self) -> Result<bool, ReauthError> {
        self.read(|c| c.is_refreshing())
    }

    /// The generation of the current credentials, if logged in.
    pub fn generation(&self) -> Result<Option<i64>, ReauthError> {
        self.read(|c| c.generation().map(|g| signed(g.0)))
    }

    /// Requests the core knows: waiting or awaiting a response.
    pub fn open_requests(&self) -> Result<i64, ReauthError> {
        self.read(|c| signed(c.open_requests() as u64))
    }

    /// Whether request `id` awaits a response (it went out and nothing was reported).
    pub fn is_in_flight(&self, id: i64) -> Result<bool, ReauthError> {
        let id = request(id)?;
        self.read(|c| c.is_in_flight(id))
    }

    /// Requests waiting for a refresh (or for stored credentials).
    pub fn waiting(&self) -> Result<i64, ReauthError> {
        self.read(|c| signed(c.waiting() as u64))
    }
}

impl Coordinator {
    fn read<T>(&self, f: impl FnOnce(&reauth::Coordinator) -> T) -> Result<T, ReauthError> {
        let (value, commands) = self.inner.with(|c| f(c))?;
        debug_assert!(commands.is_empty(), "a getter produces no commands");
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_foreign_defaults_are_the_contracts() {
        // `Config()` in a foreign language takes the `#[uniffi(default = …)]` literals
        // written above each field (the attribute takes only literals): read them from
        // this file and hold them to the core's `Config::default()`.
        let source = include_str!("lib.rs");
        let start = source.find("pub struct Config {").expect("the record");
        let body = &source[start..start + source[start..].find("\n}").expect("its end")];
        let mut literals = std::collections::BTreeMap::new();
        let mut pending = None;
        for line in body.lines().skip(1).map(str::trim) {
            if let Some(v) = line
                .strip_prefix("#[uniffi(default = ")
                .and_then(|v| v.strip_suffix(")]"))
            {
                pending = Some(v.to_owned());
            } else if let Some(field) = line.strip_prefix("pub ").and_then(|l| l.split(':').next())
            {
                let value = pending
                    .take()
                    .unwrap_or_else(|| panic!("{field} has no default"));
                literals.insert(field.to_owned(), value);
            }
        }
        let core = default_config();
        let want = [
            ("expiry_skew_ms", core.expiry_skew_ms.to_string()),
            ("min_token_age_ms", core.min_token_age_ms.to_string()),
            (
                "max_replays_per_request",
                core.max_replays_per_request.to_string(),
            ),
            (
                "refresh_window_max_refreshes",
                core.refresh_window_max_refreshes.to_string(),
            ),
            ("refresh_window_ms", core.refresh_window_ms.to_string()),
            ("initial_backoff_ms", core.initial_backoff_ms.to_string()),
            ("max_backoff_ms", core.max_backoff_ms.to_string()),
            ("max_retries", core.max_retries.to_string()),
            ("refresh_timeout_ms", core.refresh_timeout_ms.to_string()),
            ("max_pending", core.max_pending.to_string()),
            ("max_wait_ms", core.max_wait_ms.to_string()),
            // None stands for the core's `[401]`.
            ("refresh_statuses", "None".to_owned()),
        ];
        assert_eq!(
            literals.len(),
            want.len(),
            "every field is held: {literals:?}"
        );
        for (field, value) in want {
            assert_eq!(literals.get(field), Some(&value), "the default of {field}");
        }
        assert_eq!(core.refresh_statuses, Some(vec![401]));
        // And they build the core's default config.
        let foreign = Config {
            refresh_statuses: None,
            ..core
        };
        assert_eq!(foreign.to_core().expect("valid"), reauth::Config::default());
    }

    #[test]
    fn every_input_error_keeps_its_kind_and_message() {
        let core = Coordinator::new(default_config()).expect("valid");
        let e = core.handle_response(1, 7, 200).expect_err("unknown");
        assert_eq!(
            (e.kind(), e.to_string().as_str()),
            ("unknown_request", "unknown request 7")
        );
        let e = core.handle_response(1, 7, 600).expect_err("status");
        assert_eq!(e.kind(), "invalid_status");
        let e = core.handle_timeout(max_timestamp() + 1).expect_err("time");
        assert_eq!(e.kind(), "invalid_time");
        let e = core
            .submit(
                1,
                RequestOptions {
                    replayable: true,
                    refresh: true,
                    route: Some(0),
                },
            )
            .expect_err("route 0");
        assert_eq!(e.kind(), "invalid_route");
        let e = Coordinator::new(Config {
            max_pending: 0,
            ..default_config()
        })
        .expect_err("config");
        assert_eq!(e.kind(), "invalid_config");
        assert!(e.to_string().contains("max_pending"));
        // Negative numbers are refused like any other bad input.
        assert_eq!(
            core.handle_timeout(-1).expect_err("time").kind(),
            "invalid_time"
        );
        assert_eq!(
            core.cancel(1, -1).expect_err("id").kind(),
            "unknown_request"
        );
        assert_eq!(
            core.handle_refresh_failed(1, -1, RefreshFailure::Rejected)
                .expect_err("attempt")
                .kind(),
            "unknown_attempt"
        );
        assert_eq!(
            core.handle_response(1, 1, 70_000)
                .expect_err("status")
                .kind(),
            "invalid_status"
        );
        let e = Coordinator::new(Config {
            max_wait_ms: -5,
            ..default_config()
        })
        .expect_err("negative config");
        assert_eq!(
            e.to_string(),
            "invalid config: max_wait_ms must not be negative, got -5"
        );
        assert!(Credentials::new("at".into(), None, Some(-1)).is_err());
    }

    #[test]
    fn commands_and_credentials_never_show_token_text() {
        let core = Coordinator::new(default_config()).expect("valid");
        let credentials =
            Credentials::new("at-SECRET".into(), Some("rt-SECRET".into()), Some(60_000))
                .expect("valid");
        assert!(!format!("{credentials:?} {credentials}").contains("SECRET"));
        core.login(0, credentials).expect("login");
        let sent = core.submit(1, default_options()).expect("submit");
        let shown = format!("{sent:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        let Command::Send { access_token, .. } = &sent.commands[0] else {
            panic!("a fresh token sends: {shown}");
        };
        assert_eq!(access_token.expose(), "at-SECRET");
        assert_eq!(access_token.to_string(), "<redacted token>");
    }

    fn default_options() -> RequestOptions {
        RequestOptions {
            replayable: true,
            refresh: true,
            route: None,
        }
    }
}
